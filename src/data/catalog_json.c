/*
 * catalog_json.c - the catalog's persisted JSON records (catalog_json.h): building
 * the record of an account, token or source, and reading one back with every field
 * and its key checked. Owns nothing: objects returned are the caller's.
 */
#include "temporis/data/catalog_json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "temporis/base/jsonutil.h"

#define SOURCE_KEY_FMT CATALOG_KEY_SOURCE "%010" PRIu32
#define HASH_HEX_LEN (CATALOG_HASH_LEN * 2)
#define HEX_DIGIT_BITS 4
#define HEX_DIGIT_MASK 0xf
#define HEX_LETTER_BASE 10

#define WHY_ACCOUNT "malformed account"
#define WHY_TOKEN "malformed token"
#define WHY_SOURCE "malformed source"
#define WHY_KEY_NAME "key does not match name"
#define WHY_KEY_ID "key does not match id"

/* ------------------------------------------------------------------ hex */

void catalog_hex_encode(const uint8_t *src, size_t n, char *dst)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		dst[2 * i] = digits[src[i] >> HEX_DIGIT_BITS];
		dst[2 * i + 1] = digits[src[i] & HEX_DIGIT_MASK];
	}
	dst[2 * n] = '\0';
}

static int hex_nibble(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + HEX_LETTER_BASE;
	return -1;
}

/* Lowercase hex only: what we write is the only form we accept back. */
static int hex_decode(const char *src, size_t n, uint8_t *dst)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hex_nibble(src[2 * i]);
		int lo = hex_nibble(src[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		dst[i] = (uint8_t)(hi << HEX_DIGIT_BITS | lo);
	}
	return 0;
}

static bool token_id_valid(const char *id, size_t len)
{
	if (len != CATALOG_TOKEN_ID_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if (hex_nibble(id[i]) < 0)
			return false;
	return true;
}

/* ------------------------------------------------------------------ building */

/* o when every add succeeded, else NULL (o is put). */
static struct json_object *built(struct json_object *o, int rc)
{
	if (rc == 0)
		return o;
	json_object_put(o);
	return NULL;
}

struct json_object *catalog_json_account(const struct catalog_account *a,
					 char key[CATALOG_KEY_MAX])
{
	struct json_object *o = json_object_new_object();
	int rc;

	if (o == NULL)
		return NULL;
	snprintf(key, CATALOG_KEY_MAX, CATALOG_KEY_ACCOUNT "%s", a->name);
	rc = ju_add_int(o, "id", a->id);
	rc = rc ? rc : ju_add_str(o, "name", a->name);
	rc = rc ? rc : ju_add_int(o, "created_at", a->created_at);
	return built(o, rc);
}

struct json_object *catalog_json_token(const struct catalog_token_hashed *t, bool revoked,
				       char key[CATALOG_KEY_MAX])
{
	char hex[HASH_HEX_LEN + 1];
	struct json_object *o = json_object_new_object();
	int rc;

	if (o == NULL)
		return NULL;
	snprintf(key, CATALOG_KEY_MAX, CATALOG_KEY_TOKEN "%s", t->pub.id);
	catalog_hex_encode(t->hash, CATALOG_HASH_LEN, hex);
	rc = ju_add_str(o, "id", t->pub.id);
	rc = rc ? rc : ju_add_int(o, "account_id", t->pub.account_id);
	rc = rc ? rc : ju_add_str(o, "label", t->pub.label);
	rc = rc ? rc : ju_add_int(o, "created_at", t->pub.created_at);
	rc = rc ? rc : ju_add_str(o, "hash", hex);
	rc = rc ? rc : ju_add_bool(o, "revoked", revoked);
	return built(o, rc);
}

struct json_object *catalog_json_source(const struct catalog_source *s, bool archived,
					char key[CATALOG_KEY_MAX])
{
	struct json_object *o = json_object_new_object();
	int rc;

	if (o == NULL)
		return NULL;
	snprintf(key, CATALOG_KEY_MAX, SOURCE_KEY_FMT, s->id);
	rc = ju_add_int(o, "id", s->id);
	rc = rc ? rc : ju_add_int(o, "account_id", s->account_id);
	rc = rc ? rc : ju_add_str(o, "name", s->name);
	rc = rc ? rc : ju_add_bool(o, "archived", archived);
	rc = rc ? rc : ju_add_int(o, "created_at", s->created_at);
	rc = rc ? rc : ju_add_int(o, "retention_s", s->retention_s);
	return built(o, rc);
}

/* ------------------------------------------------------------------ reading */

/* The record as a JSON object (strict, the whole value), or NULL. */
static struct json_object *parse_object(const char *val, size_t vlen)
{
	struct json_object *o = ju_parse(val, vlen);

	if (o != NULL && !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static int get_int(struct json_object *o, const char *key, int64_t min, int64_t max, int64_t *out)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return -1;
	errno = 0;
	int64_t x = json_object_get_int64(v);
	if (errno != 0 || x < min || x > max)
		return -1;
	*out = x;
	return 0;
}

/* Copies a string field of at most cap-1 bytes with no embedded NUL. */
static int get_str(struct json_object *o, const char *key, char *dst, size_t cap)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return -1;
	size_t len = (size_t)json_object_get_string_len(v);
	const char *s = json_object_get_string(v);
	if (s == NULL || len >= cap || memchr(s, '\0', len) != NULL)
		return -1;
	memcpy(dst, s, len);
	dst[len] = '\0';
	return 0;
}

static int get_bool(struct json_object *o, const char *key, bool *out)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_boolean))
		return -1;
	*out = json_object_get_boolean(v);
	return 0;
}

/* A name field that also follows the name rule. */
static int get_name(struct json_object *o, const char *key, char dst[CATALOG_NAME_MAX + 1])
{
	if (get_str(o, key, dst, CATALOG_NAME_MAX + 1) != 0)
		return -1;
	return catalog_name_valid(dst, strlen(dst)) ? 0 : -1;
}

static int parse_account(struct json_object *o, struct catalog_account *a)
{
	int64_t id;

	if (get_int(o, "id", 1, UINT32_MAX, &id) != 0 || get_name(o, "name", a->name) != 0 ||
	    get_int(o, "created_at", INT64_MIN, INT64_MAX, &a->created_at) != 0)
		return -1;
	a->id = (uint32_t)id;
	return 0;
}

const char *catalog_json_read_account(const char *key, size_t klen, const char *val,
				      size_t vlen, struct catalog_account *out)
{
	struct json_object *o = parse_object(val, vlen);
	bool bad = o == NULL || parse_account(o, out) != 0;
	size_t plen = strlen(CATALOG_KEY_ACCOUNT), nlen;

	json_object_put(o);
	if (bad)
		return WHY_ACCOUNT;
	nlen = strlen(out->name);
	if (klen != plen + nlen || memcmp(key + plen, out->name, nlen) != 0)
		return WHY_KEY_NAME;
	return NULL;
}

static int parse_token(struct json_object *o, struct catalog_token_hashed *t)
{
	char hex[HASH_HEX_LEN + 1];
	int64_t acct;

	if (get_str(o, "id", t->pub.id, sizeof(t->pub.id)) != 0 ||
	    !token_id_valid(t->pub.id, strlen(t->pub.id)) ||
	    get_int(o, "account_id", 1, UINT32_MAX, &acct) != 0 ||
	    get_str(o, "label", t->pub.label, sizeof(t->pub.label)) != 0 ||
	    get_int(o, "created_at", INT64_MIN, INT64_MAX, &t->pub.created_at) != 0 ||
	    get_str(o, "hash", hex, sizeof(hex)) != 0 || strlen(hex) != HASH_HEX_LEN ||
	    hex_decode(hex, CATALOG_HASH_LEN, t->hash) != 0 ||
	    get_bool(o, "revoked", &t->pub.revoked) != 0)
		return -1;
	t->pub.account_id = (uint32_t)acct;
	return 0;
}

const char *catalog_json_read_token(const char *key, size_t klen, const char *val, size_t vlen,
				    struct catalog_token_hashed *out)
{
	struct json_object *o = parse_object(val, vlen);
	bool bad = o == NULL || parse_token(o, out) != 0;
	size_t plen = strlen(CATALOG_KEY_TOKEN);

	json_object_put(o);
	if (bad)
		return WHY_TOKEN;
	if (klen != plen + CATALOG_TOKEN_ID_LEN ||
	    memcmp(key + plen, out->pub.id, CATALOG_TOKEN_ID_LEN) != 0)
		return WHY_KEY_ID;
	return NULL;
}

static int parse_source(struct json_object *o, struct catalog_source *s)
{
	int64_t id, acct;

	if (get_int(o, "id", 1, UINT32_MAX, &id) != 0 ||
	    get_int(o, "account_id", 1, UINT32_MAX, &acct) != 0 ||
	    get_name(o, "name", s->name) != 0 || get_bool(o, "archived", &s->archived) != 0 ||
	    get_int(o, "created_at", INT64_MIN, INT64_MAX, &s->created_at) != 0)
		return -1;
	/* a catalog written before retention existed has none: forever */
	s->retention_s = 0;
	if (json_object_object_get_ex(o, "retention_s", NULL) &&
	    get_int(o, "retention_s", 0, INT64_MAX, &s->retention_s) != 0)
		return -1;
	s->id = (uint32_t)id;
	s->account_id = (uint32_t)acct;
	return 0;
}

const char *catalog_json_read_source(const char *key, size_t klen, const char *val,
				     size_t vlen, struct catalog_source *out)
{
	char want[CATALOG_KEY_MAX];
	struct json_object *o = parse_object(val, vlen);
	bool bad = o == NULL || parse_source(o, out) != 0;

	json_object_put(o);
	if (bad)
		return WHY_SOURCE;
	int wlen = snprintf(want, sizeof(want), SOURCE_KEY_FMT, out->id);
	if (wlen < 0 || klen != (size_t)wlen || memcmp(key, want, klen) != 0)
		return WHY_KEY_ID;
	return NULL;
}
