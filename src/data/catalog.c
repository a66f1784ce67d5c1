/*
 * catalog.c - accounts, API tokens and data sources.
 *
 * Writer side: the live catalog, persisted as JSON records in the store's catalog
 * column family and mirrored in sorted in-memory arrays under one mutex. Worker side:
 * the immutable snapshot decoded from catalog_encode()'s bytes, with hash tables.
 */
#include "temporis/data/catalog.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "temporis/base/log.h"

#define TOKEN_PREFIX "ts_"
#define TOKEN_PREFIX_LEN 3
#define TOKEN_SECRET_BYTES 32
#define TOKEN_ID_BYTES 8
#define TOKEN_ID_ATTEMPTS 8           /* 64-bit ids: a second collision means a broken RNG */
#define HASH_HEX_LEN (CATALOG_HASH_LEN * 2)
#define DEFAULT_TOKEN_LABEL "default"

#define KEY_ACCOUNT "a/"
#define KEY_TOKEN "t/"
#define KEY_SOURCE "s/"
#define KEY_MAX 64                    /* "a/" + name, "t/" + id, "s/" + 10 digits */
#define SOURCE_KEY_FMT "s/%010" PRIu32

#define SNAP_MAGIC "TCS1"
#define SNAP_MAGIC_LEN 4
#define SNAP_ACCOUNT_MIN (4 + 8 + 1 + 1)          /* id, created_at, len, >= 1 name byte */
#define SNAP_TOKEN_SIZE (4 + CATALOG_HASH_LEN)    /* account_id, hash */
#define SNAP_SOURCE_MIN (4 + 4 + 1 + 8 + 1 + 1)   /* id, account, archived, created, len, name */
#define TABLE_MIN 2
#define VEC_INITIAL_CAP 16
#define ERR_MAX 256

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

struct tok_rec {
	struct catalog_token pub;
	uint8_t hash[CATALOG_HASH_LEN];
};

/*
 * Invariants (under lock): accts sorted by name, srcs by (account_id, name), toks by
 * (created_at, id). Every token and source references an account in accts.
 */
struct catalog {
	struct store *st;
	pthread_mutex_t lock;
	uint64_t generation;
	uint64_t next_account_id;
	uint64_t next_source_id;
	struct catalog_account *accts;
	size_t n_accts, cap_accts;
	struct tok_rec *toks;
	size_t n_toks, cap_toks;
	struct catalog_source *srcs;
	size_t n_srcs, cap_srcs;
};

/* ---------------------------------------------------------------- helpers */

bool catalog_name_valid(const char *name, size_t len)
{
	if (name == NULL || len == 0 || len > CATALOG_NAME_MAX)
		return false;
	if (name[0] < 'a' || name[0] > 'z')
		return false;
	for (size_t i = 1; i < len; i++) {
		char ch = name[i];
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_';
		if (!ok)
			return false;
	}
	return true;
}

static bool cstr_name_valid(const char *name)
{
	return name != NULL && catalog_name_valid(name, strnlen(name, CATALOG_NAME_MAX + 1));
}

int catalog_token_hash(const char *token, size_t len, uint8_t out[CATALOG_HASH_LEN])
{
	unsigned int outlen = 0;

	if (EVP_Digest(token, len, out, &outlen, EVP_sha256(), NULL) != 1)
		return -1;
	return outlen == CATALOG_HASH_LEN ? 0 : -1;
}

static int random_bytes(uint8_t *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = getrandom(buf + got, len - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		got += (size_t)n;
	}
	return 0;
}

static void hex_encode(const uint8_t *src, size_t n, char *dst)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		dst[2 * i] = digits[src[i] >> 4];
		dst[2 * i + 1] = digits[src[i] & 0xf];
	}
	dst[2 * n] = '\0';
}

static int hex_nibble(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
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
		dst[i] = (uint8_t)(hi << 4 | lo);
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

static int now_seconds(int64_t *out)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
		return -1;
	*out = (int64_t)ts.tv_sec;
	return 0;
}

/* Make room for one more element of size elem in *arr. */
static int vec_reserve(void **arr, size_t *cap, size_t n, size_t elem)
{
	if (n < *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : VEC_INITIAL_CAP;
	if (ncap > SIZE_MAX / elem)
		return -1;
	void *p = realloc(*arr, ncap * elem);
	if (p == NULL)
		return -1;
	*arr = p;
	*cap = ncap;
	return 0;
}

static void vec_insert(void *arr, size_t *n, size_t pos, const void *item, size_t elem)
{
	uint8_t *base = arr;

	memmove(base + (pos + 1) * elem, base + pos * elem, (*n - pos) * elem);
	memcpy(base + pos * elem, item, elem);
	(*n)++;
}

/* ---------------------------------------------------------- sorted lookups */

static size_t acct_lower(const struct catalog *c, const char *name)
{
	size_t lo = 0, hi = c->n_accts;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(c->accts[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct catalog_account *acct_find(struct catalog *c, const char *name)
{
	if (!cstr_name_valid(name))
		return NULL;
	size_t i = acct_lower(c, name);
	if (i < c->n_accts && strcmp(c->accts[i].name, name) == 0)
		return &c->accts[i];
	return NULL;
}

static struct catalog_account *acct_by_id(struct catalog *c, uint32_t id)
{
	for (size_t i = 0; i < c->n_accts; i++)
		if (c->accts[i].id == id)
			return &c->accts[i];
	return NULL;
}

static int src_cmp(uint32_t acct_a, const char *name_a, uint32_t acct_b, const char *name_b)
{
	if (acct_a != acct_b)
		return acct_a < acct_b ? -1 : 1;
	return strcmp(name_a, name_b);
}

static size_t src_lower(const struct catalog *c, uint32_t account_id, const char *name)
{
	size_t lo = 0, hi = c->n_srcs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (src_cmp(c->srcs[mid].account_id, c->srcs[mid].name, account_id, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct catalog_source *src_find(struct catalog *c, uint32_t account_id, const char *name)
{
	if (!cstr_name_valid(name))
		return NULL;
	size_t i = src_lower(c, account_id, name);
	if (i < c->n_srcs && src_cmp(c->srcs[i].account_id, c->srcs[i].name, account_id, name) == 0)
		return &c->srcs[i];
	return NULL;
}

static int tok_cmp(const struct catalog_token *a, const struct catalog_token *b)
{
	if (a->created_at != b->created_at)
		return a->created_at < b->created_at ? -1 : 1;
	return strcmp(a->id, b->id);
}

static size_t tok_lower(const struct catalog *c, const struct catalog_token *t)
{
	size_t lo = 0, hi = c->n_toks;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (tok_cmp(&c->toks[mid].pub, t) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct tok_rec *tok_find(struct catalog *c, const char *id)
{
	for (size_t i = 0; i < c->n_toks; i++)
		if (strcmp(c->toks[i].pub.id, id) == 0)
			return &c->toks[i];
	return NULL;
}

/* ------------------------------------------------------ JSON persistence */

/* Adds v to o; v is released on failure so callers need one cleanup path. */
static int jadd(struct json_object *o, const char *key, struct json_object *v)
{
	if (v == NULL)
		return -1;
	if (json_object_object_add(o, key, v) != 0) {
		json_object_put(v);
		return -1;
	}
	return 0;
}

/* Takes ownership of obj (NULL is a failed build). */
static int put_json(struct catalog *c, const char *key, struct json_object *obj)
{
	char err[ERR_MAX];
	int rc = -1;

	if (obj == NULL)
		goto out;
	size_t vlen = 0;
	const char *val = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN, &vlen);
	if (val == NULL)
		goto out;
	if (store_catalog_put(c->st, key, strlen(key), val, vlen, err, sizeof(err)) != 0) {
		log_error("catalog: write failed: %s", err);
		goto out;
	}
	rc = 0;
out:
	json_object_put(obj);
	return rc;
}

static int persist_account(struct catalog *c, const struct catalog_account *a)
{
	char key[KEY_MAX];
	struct json_object *o = json_object_new_object();

	if (o == NULL)
		return -1;
	snprintf(key, sizeof(key), KEY_ACCOUNT "%s", a->name);
	if (jadd(o, "id", json_object_new_int64(a->id)) != 0 ||
	    jadd(o, "name", json_object_new_string(a->name)) != 0 ||
	    jadd(o, "created_at", json_object_new_int64(a->created_at)) != 0) {
		json_object_put(o);
		return -1;
	}
	return put_json(c, key, o);
}

static int persist_token(struct catalog *c, const struct tok_rec *t, bool revoked)
{
	char key[KEY_MAX];
	char hex[HASH_HEX_LEN + 1];
	struct json_object *o = json_object_new_object();

	if (o == NULL)
		return -1;
	snprintf(key, sizeof(key), KEY_TOKEN "%s", t->pub.id);
	hex_encode(t->hash, CATALOG_HASH_LEN, hex);
	if (jadd(o, "id", json_object_new_string(t->pub.id)) != 0 ||
	    jadd(o, "account_id", json_object_new_int64(t->pub.account_id)) != 0 ||
	    jadd(o, "label", json_object_new_string(t->pub.label)) != 0 ||
	    jadd(o, "created_at", json_object_new_int64(t->pub.created_at)) != 0 ||
	    jadd(o, "hash", json_object_new_string(hex)) != 0 ||
	    jadd(o, "revoked", json_object_new_boolean(revoked)) != 0) {
		json_object_put(o);
		return -1;
	}
	return put_json(c, key, o);
}

static int persist_source(struct catalog *c, const struct catalog_source *s, bool archived)
{
	char key[KEY_MAX];
	struct json_object *o = json_object_new_object();

	if (o == NULL)
		return -1;
	snprintf(key, sizeof(key), SOURCE_KEY_FMT, s->id);
	if (jadd(o, "id", json_object_new_int64(s->id)) != 0 ||
	    jadd(o, "account_id", json_object_new_int64(s->account_id)) != 0 ||
	    jadd(o, "name", json_object_new_string(s->name)) != 0 ||
	    jadd(o, "archived", json_object_new_boolean(archived)) != 0 ||
	    jadd(o, "created_at", json_object_new_int64(s->created_at)) != 0) {
		json_object_put(o);
		return -1;
	}
	return put_json(c, key, o);
}

/* ------------------------------------------------------------- loading */

struct load_ctx {
	struct catalog *c;
	char *err;
	size_t errlen;
	int failed;
};

static int load_fail(struct load_ctx *lc, const char *key, size_t klen, const char *why)
{
	snprintf(lc->err, lc->errlen, "catalog record %.*s: %s", (int)(klen > KEY_MAX ? KEY_MAX : klen),
		 key, why);
	lc->failed = 1;
	return 1;
}

static struct json_object *parse_object(const char *val, size_t vlen)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *obj = NULL;

	if (tok == NULL || vlen > INT_MAX)
		goto out;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	obj = json_tokener_parse_ex(tok, val, (int)vlen);
	if (obj != NULL && (json_tokener_get_error(tok) != json_tokener_success ||
			    json_tokener_get_parse_end(tok) != vlen ||
			    !json_object_is_type(obj, json_type_object))) {
		json_object_put(obj);
		obj = NULL;
	}
out:
	if (tok != NULL)
		json_tokener_free(tok);
	return obj;
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

static int parse_account(struct json_object *o, struct catalog_account *a)
{
	int64_t id;

	if (get_int(o, "id", 1, UINT32_MAX, &id) != 0 ||
	    get_str(o, "name", a->name, sizeof(a->name)) != 0 || !cstr_name_valid(a->name) ||
	    get_int(o, "created_at", INT64_MIN, INT64_MAX, &a->created_at) != 0)
		return -1;
	a->id = (uint32_t)id;
	return 0;
}

static int load_account_cb(const char *key, size_t klen, const char *val, size_t vlen, void *arg)
{
	struct load_ctx *lc = arg;
	struct catalog *c = lc->c;
	struct catalog_account a;
	struct json_object *o = parse_object(val, vlen);
	int bad = o == NULL || parse_account(o, &a) != 0;

	json_object_put(o);
	if (bad)
		return load_fail(lc, key, klen, "malformed account");
	if (klen != strlen(KEY_ACCOUNT) + strlen(a.name) ||
	    memcmp(key + strlen(KEY_ACCOUNT), a.name, strlen(a.name)) != 0)
		return load_fail(lc, key, klen, "key does not match name");
	if (vec_reserve((void **)&c->accts, &c->cap_accts, c->n_accts, sizeof(a)) != 0)
		return load_fail(lc, key, klen, "out of memory");
	c->accts[c->n_accts++] = a;
	return 0;
}

static int parse_token(struct json_object *o, struct tok_rec *t)
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

static int load_token_cb(const char *key, size_t klen, const char *val, size_t vlen, void *arg)
{
	struct load_ctx *lc = arg;
	struct catalog *c = lc->c;
	struct tok_rec t;
	struct json_object *o = parse_object(val, vlen);
	int bad = o == NULL || parse_token(o, &t) != 0;

	json_object_put(o);
	if (bad)
		return load_fail(lc, key, klen, "malformed token");
	if (klen != strlen(KEY_TOKEN) + CATALOG_TOKEN_ID_LEN ||
	    memcmp(key + strlen(KEY_TOKEN), t.pub.id, CATALOG_TOKEN_ID_LEN) != 0)
		return load_fail(lc, key, klen, "key does not match id");
	if (acct_by_id(c, t.pub.account_id) == NULL)
		return load_fail(lc, key, klen, "unknown account");
	if (vec_reserve((void **)&c->toks, &c->cap_toks, c->n_toks, sizeof(t)) != 0)
		return load_fail(lc, key, klen, "out of memory");
	c->toks[c->n_toks++] = t;
	return 0;
}

static int parse_source(struct json_object *o, struct catalog_source *s)
{
	int64_t id, acct;

	if (get_int(o, "id", 1, UINT32_MAX, &id) != 0 ||
	    get_int(o, "account_id", 1, UINT32_MAX, &acct) != 0 ||
	    get_str(o, "name", s->name, sizeof(s->name)) != 0 || !cstr_name_valid(s->name) ||
	    get_bool(o, "archived", &s->archived) != 0 ||
	    get_int(o, "created_at", INT64_MIN, INT64_MAX, &s->created_at) != 0)
		return -1;
	s->id = (uint32_t)id;
	s->account_id = (uint32_t)acct;
	return 0;
}

static int load_source_cb(const char *key, size_t klen, const char *val, size_t vlen, void *arg)
{
	struct load_ctx *lc = arg;
	struct catalog *c = lc->c;
	struct catalog_source s;
	char want[KEY_MAX];
	struct json_object *o = parse_object(val, vlen);
	int bad = o == NULL || parse_source(o, &s) != 0;

	json_object_put(o);
	if (bad)
		return load_fail(lc, key, klen, "malformed source");
	int wlen = snprintf(want, sizeof(want), SOURCE_KEY_FMT, s.id);
	if (wlen < 0 || klen != (size_t)wlen || memcmp(key, want, klen) != 0)
		return load_fail(lc, key, klen, "key does not match id");
	if (acct_by_id(c, s.account_id) == NULL)
		return load_fail(lc, key, klen, "unknown account");
	if (vec_reserve((void **)&c->srcs, &c->cap_srcs, c->n_srcs, sizeof(s)) != 0)
		return load_fail(lc, key, klen, "out of memory");
	c->srcs[c->n_srcs++] = s;
	return 0;
}

/* qsort's pointer must not be NULL even when n is 0 (glibc declares it nonnull). */
static void sort_vec(void *arr, size_t n, size_t elem, int (*cmp)(const void *, const void *))
{
	if (n > 1)
		qsort(arr, n, elem, cmp);
}

static int qcmp_acct(const void *a, const void *b)
{
	return strcmp(((const struct catalog_account *)a)->name,
		      ((const struct catalog_account *)b)->name);
}

static int qcmp_src(const void *a, const void *b)
{
	const struct catalog_source *x = a, *y = b;
	return src_cmp(x->account_id, x->name, y->account_id, y->name);
}

static int qcmp_tok(const void *a, const void *b)
{
	return tok_cmp(&((const struct tok_rec *)a)->pub, &((const struct tok_rec *)b)->pub);
}

/* Sorts what was loaded, checks uniqueness and derives the next ids. */
static int load_finish(struct catalog *c, char *err, size_t errlen)
{
	sort_vec(c->accts, c->n_accts, sizeof(*c->accts), qcmp_acct);
	sort_vec(c->srcs, c->n_srcs, sizeof(*c->srcs), qcmp_src);
	sort_vec(c->toks, c->n_toks, sizeof(*c->toks), qcmp_tok);
	c->next_account_id = 1;
	c->next_source_id = 1;
	for (size_t i = 0; i < c->n_accts; i++) {
		if (acct_by_id(c, c->accts[i].id) != &c->accts[i]) {
			snprintf(err, errlen, "catalog: duplicate account id %" PRIu32, c->accts[i].id);
			return -1;
		}
		if (c->accts[i].id >= c->next_account_id)
			c->next_account_id = (uint64_t)c->accts[i].id + 1;
	}
	for (size_t i = 0; i < c->n_srcs; i++) {
		if (i > 0 && qcmp_src(&c->srcs[i - 1], &c->srcs[i]) == 0) {
			snprintf(err, errlen, "catalog: duplicate source name in one account");
			return -1;
		}
		if (c->srcs[i].id >= c->next_source_id)
			c->next_source_id = (uint64_t)c->srcs[i].id + 1;
	}
	return 0;
}

static int load_all(struct catalog *c, char *err, size_t errlen)
{
	struct load_ctx lc = { .c = c, .err = err, .errlen = errlen, .failed = 0 };
	static const struct {
		const char *prefix;
		store_kv_cb cb;
	} passes[] = {
		/* accounts first: tokens and sources are checked against them */
		{ KEY_ACCOUNT, load_account_cb },
		{ KEY_TOKEN, load_token_cb },
		{ KEY_SOURCE, load_source_cb },
	};

	for (size_t i = 0; i < sizeof(passes) / sizeof(passes[0]); i++) {
		int rc = store_catalog_scan(c->st, passes[i].prefix, passes[i].cb, &lc);
		if (lc.failed)
			return -1;
		if (rc != 0) {
			snprintf(err, errlen, "catalog: scan of the catalog family failed");
			return -1;
		}
	}
	return load_finish(c, err, errlen);
}

int catalog_open(struct store *st, struct catalog **out, char *err, size_t errlen)
{
	struct catalog *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		snprintf(err, errlen, "catalog: out of memory");
		return -1;
	}
	c->st = st;
	int prc = pthread_mutex_init(&c->lock, NULL);
	if (prc != 0) {
		snprintf(err, errlen, "catalog: mutex: %s", strerror(prc));
		free(c);
		return -1;
	}
	if (load_all(c, err, errlen) != 0) {
		catalog_close(c);
		return -1;
	}
	*out = c;
	return 0;
}

void catalog_close(struct catalog *c)
{
	if (c == NULL)
		return;
	/* the secrets never live here, but hashes are worth not leaving in freed memory */
	if (c->toks != NULL)
		OPENSSL_cleanse(c->toks, c->cap_toks * sizeof(*c->toks));
	free(c->accts);
	free(c->toks);
	free(c->srcs);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* -------------------------------------------------------------- mutations */

static void lock(struct catalog *c)
{
	int rc = pthread_mutex_lock(&c->lock);
	if (rc != 0) {
		log_error("catalog: mutex lock: %s", strerror(rc));
		abort(); /* a broken mutex means our own state is corrupt */
	}
}

static void unlock(struct catalog *c)
{
	int rc = pthread_mutex_unlock(&c->lock);
	if (rc != 0) {
		log_error("catalog: mutex unlock: %s", strerror(rc));
		abort();
	}
}

/* Fills the secret and a fresh, unused id and hash; the caller holds the lock. */
static enum catalog_rc token_generate(struct catalog *c, char token[CATALOG_TOKEN_LEN + 1],
				      struct tok_rec *t)
{
	uint8_t secret[TOKEN_SECRET_BYTES];
	uint8_t idb[TOKEN_ID_BYTES];
	enum catalog_rc rc = CAT_FAILED;
	int attempt;

	for (attempt = 0; attempt < TOKEN_ID_ATTEMPTS; attempt++) {
		if (random_bytes(idb, sizeof(idb)) != 0)
			goto out;
		hex_encode(idb, sizeof(idb), t->pub.id);
		if (tok_find(c, t->pub.id) == NULL)
			break;
	}
	if (attempt == TOKEN_ID_ATTEMPTS || random_bytes(secret, sizeof(secret)) != 0)
		goto out;
	memcpy(token, TOKEN_PREFIX, TOKEN_PREFIX_LEN);
	hex_encode(secret, sizeof(secret), token + TOKEN_PREFIX_LEN);
	if (catalog_token_hash(token, CATALOG_TOKEN_LEN, t->hash) != 0)
		goto out;
	rc = CAT_OK;
out:
	OPENSSL_cleanse(secret, sizeof(secret));
	if (rc != CAT_OK)
		OPENSSL_cleanse(token, CATALOG_TOKEN_LEN + 1);
	return rc;
}

/* Creates, persists and indexes a token of account a; the caller holds the lock. */
static enum catalog_rc token_add(struct catalog *c, const struct catalog_account *a,
				 const char *label, char token[CATALOG_TOKEN_LEN + 1],
				 struct catalog_token *out)
{
	struct tok_rec t;

	memset(&t, 0, sizeof(t));
	t.pub.account_id = a->id;
	snprintf(t.pub.label, sizeof(t.pub.label), "%s", label);
	if (now_seconds(&t.pub.created_at) != 0 ||
	    vec_reserve((void **)&c->toks, &c->cap_toks, c->n_toks, sizeof(t)) != 0)
		return CAT_FAILED;
	enum catalog_rc rc = token_generate(c, token, &t);
	if (rc != CAT_OK)
		return rc;
	if (persist_token(c, &t, false) != 0) {
		OPENSSL_cleanse(token, CATALOG_TOKEN_LEN + 1);
		return CAT_FAILED;
	}
	vec_insert(c->toks, &c->n_toks, tok_lower(c, &t.pub), &t, sizeof(t));
	c->generation++;
	if (out != NULL)
		*out = t.pub;
	return CAT_OK;
}

static enum catalog_rc account_add(struct catalog *c, const char *name,
				   struct catalog_account **out)
{
	struct catalog_account a;

	if (!cstr_name_valid(name))
		return CAT_INVALID;
	if (acct_find(c, name) != NULL)
		return CAT_EXISTS;
	if (c->next_account_id > UINT32_MAX)
		return CAT_FAILED;
	memset(&a, 0, sizeof(a));
	a.id = (uint32_t)c->next_account_id;
	snprintf(a.name, sizeof(a.name), "%s", name);
	if (now_seconds(&a.created_at) != 0 ||
	    vec_reserve((void **)&c->accts, &c->cap_accts, c->n_accts, sizeof(a)) != 0 ||
	    persist_account(c, &a) != 0)
		return CAT_FAILED;
	size_t pos = acct_lower(c, name);
	vec_insert(c->accts, &c->n_accts, pos, &a, sizeof(a));
	c->next_account_id++;
	c->generation++;
	*out = &c->accts[pos];
	return CAT_OK;
}

/*
 * If the first token cannot be written the account still exists (it is persisted)
 * and the caller sees CAT_FAILED; `token create` recovers from that.
 */
enum catalog_rc catalog_account_create(struct catalog *c, const char *name,
				       struct catalog_account *acct,
				       char token[CATALOG_TOKEN_LEN + 1],
				       struct catalog_token *tok)
{
	struct catalog_account *a = NULL;

	lock(c);
	enum catalog_rc rc = account_add(c, name, &a);
	if (rc == CAT_OK) {
		if (acct != NULL)
			*acct = *a;
		rc = token_add(c, a, DEFAULT_TOKEN_LABEL, token, tok);
	}
	unlock(c);
	return rc;
}

enum catalog_rc catalog_token_create(struct catalog *c, const char *account, const char *label,
				     char token[CATALOG_TOKEN_LEN + 1], struct catalog_token *tok)
{
	enum catalog_rc rc = CAT_NOT_FOUND;

	if (label == NULL)
		label = "";
	if (strnlen(label, CATALOG_LABEL_MAX + 1) > CATALOG_LABEL_MAX)
		return CAT_INVALID;
	lock(c);
	struct catalog_account *a = acct_find(c, account);
	if (a != NULL)
		rc = token_add(c, a, label, token, tok);
	unlock(c);
	return rc;
}

enum catalog_rc catalog_token_revoke(struct catalog *c, const char *account, const char *token_id)
{
	enum catalog_rc rc = CAT_NOT_FOUND;

	if (token_id == NULL)
		return CAT_NOT_FOUND;
	lock(c);
	struct catalog_account *a = acct_find(c, account);
	struct tok_rec *t = a != NULL ? tok_find(c, token_id) : NULL;
	if (t == NULL || t->pub.account_id != a->id)
		goto out;
	rc = CAT_OK;
	if (t->pub.revoked)
		goto out;
	if (persist_token(c, t, true) != 0) {
		rc = CAT_FAILED;
		goto out;
	}
	t->pub.revoked = true;
	c->generation++;
out:
	unlock(c);
	return rc;
}

/* The caller holds the lock and has checked name validity and uniqueness. */
static enum catalog_rc source_add(struct catalog *c, const struct catalog_account *a,
				  const char *name, struct catalog_source *out)
{
	struct catalog_source s;
	char err[ERR_MAX];

	if (c->next_source_id > UINT32_MAX)
		return CAT_FAILED;
	memset(&s, 0, sizeof(s));
	s.id = (uint32_t)c->next_source_id;
	s.account_id = a->id;
	snprintf(s.name, sizeof(s.name), "%s", name);
	if (now_seconds(&s.created_at) != 0 ||
	    vec_reserve((void **)&c->srcs, &c->cap_srcs, c->n_srcs, sizeof(s)) != 0)
		return CAT_FAILED;
	/* family before record: a crash in between leaves only an unused empty family */
	if (store_source_create(c->st, s.id, err, sizeof(err)) != 0) {
		log_error("catalog: creating source family %" PRIu32 ": %s", s.id, err);
		return CAT_FAILED;
	}
	if (persist_source(c, &s, false) != 0)
		return CAT_FAILED;
	vec_insert(c->srcs, &c->n_srcs, src_lower(c, s.account_id, s.name), &s, sizeof(s));
	c->next_source_id++;
	c->generation++;
	if (out != NULL)
		*out = s;
	return CAT_OK;
}

enum catalog_rc catalog_source_create(struct catalog *c, const char *account, const char *name,
				      struct catalog_source *out)
{
	enum catalog_rc rc;

	if (!cstr_name_valid(name))
		return CAT_INVALID;
	lock(c);
	struct catalog_account *a = acct_find(c, account);
	if (a == NULL)
		rc = CAT_NOT_FOUND;
	else if (src_find(c, a->id, name) != NULL)
		rc = CAT_EXISTS;
	else
		rc = source_add(c, a, name, out);
	unlock(c);
	return rc;
}

enum catalog_rc catalog_source_set_archived(struct catalog *c, const char *account,
					    const char *name, bool archived,
					    struct catalog_source *out)
{
	enum catalog_rc rc = CAT_NOT_FOUND;

	lock(c);
	struct catalog_account *a = acct_find(c, account);
	struct catalog_source *s = a != NULL ? src_find(c, a->id, name) : NULL;
	if (s == NULL)
		goto out;
	rc = CAT_OK;
	if (s->archived != archived) {
		if (persist_source(c, s, archived) != 0) {
			rc = CAT_FAILED;
			goto out;
		}
		s->archived = archived;
		c->generation++;
	}
	if (out != NULL)
		*out = *s;
out:
	unlock(c);
	return rc;
}

/* ---------------------------------------------------------------- lookups */

enum catalog_rc catalog_source_find(struct catalog *c, const char *account, const char *name,
				    struct catalog_source *out)
{
	enum catalog_rc rc = CAT_NOT_FOUND;

	lock(c);
	struct catalog_account *a = acct_find(c, account);
	struct catalog_source *s = a != NULL ? src_find(c, a->id, name) : NULL;
	if (s != NULL) {
		if (out != NULL)
			*out = *s;
		rc = CAT_OK;
	}
	unlock(c);
	return rc;
}

enum catalog_rc catalog_account_find(struct catalog *c, const char *account,
				     struct catalog_account *out)
{
	enum catalog_rc rc = CAT_NOT_FOUND;

	lock(c);
	struct catalog_account *a = acct_find(c, account);
	if (a != NULL) {
		if (out != NULL)
			*out = *a;
		rc = CAT_OK;
	}
	unlock(c);
	return rc;
}

enum catalog_rc catalog_account_by_id(struct catalog *c, uint32_t id, struct catalog_account *out)
{
	enum catalog_rc rc = CAT_NOT_FOUND;

	lock(c);
	struct catalog_account *a = acct_by_id(c, id);
	if (a != NULL) {
		if (out != NULL)
			*out = *a;
		rc = CAT_OK;
	}
	unlock(c);
	return rc;
}

void catalog_each_account(struct catalog *c, catalog_account_cb cb, void *arg)
{
	lock(c);
	for (size_t i = 0; i < c->n_accts; i++)
		cb(&c->accts[i], arg);
	unlock(c);
}

enum catalog_rc catalog_each_token(struct catalog *c, const char *account, catalog_token_cb cb,
				   void *arg)
{
	enum catalog_rc rc = CAT_NOT_FOUND;

	lock(c);
	struct catalog_account *a = acct_find(c, account);
	if (a != NULL) {
		for (size_t i = 0; i < c->n_toks; i++)
			if (c->toks[i].pub.account_id == a->id)
				cb(&c->toks[i].pub, arg);
		rc = CAT_OK;
	}
	unlock(c);
	return rc;
}

/* The caller holds the lock. */
static void each_source_of(struct catalog *c, const struct catalog_account *a,
			   catalog_source_cb cb, void *arg)
{
	for (size_t i = src_lower(c, a->id, ""); i < c->n_srcs && c->srcs[i].account_id == a->id;
	     i++)
		cb(a, &c->srcs[i], arg);
}

enum catalog_rc catalog_each_source(struct catalog *c, const char *account,
				    catalog_source_cb cb, void *arg)
{
	enum catalog_rc rc = CAT_OK;

	lock(c);
	if (account == NULL) {
		for (size_t i = 0; i < c->n_accts; i++)
			each_source_of(c, &c->accts[i], cb, arg);
	} else {
		struct catalog_account *a = acct_find(c, account);
		if (a != NULL)
			each_source_of(c, a, cb, arg);
		else
			rc = CAT_NOT_FOUND;
	}
	unlock(c);
	return rc;
}

uint64_t catalog_generation(struct catalog *c)
{
	lock(c);
	uint64_t g = c->generation;
	unlock(c);
	return g;
}

/* --------------------------------------------------------------- encoding */

/*
 * Snapshot layout, little-endian, no padding:
 *   "TCS1" | u32 n_accounts | u32 n_tokens | u32 n_sources
 *   n_accounts x { u32 id | i64 created_at | u8 name_len | name }
 *   n_tokens   x { u32 account_id | 32-byte SHA-256 }          (live tokens only)
 *   n_sources  x { u32 id | u32 account_id | u8 archived | i64 created_at | u8 name_len | name }
 */
struct wbuf {
	uint8_t *p;
	size_t cap;
	size_t len;  /* bytes needed so far; writes past cap are counted, not stored */
};

static void w_bytes(struct wbuf *w, const void *src, size_t n)
{
	if (w->len <= w->cap && n <= w->cap - w->len)
		memcpy(w->p + w->len, src, n);
	w->len += n;
}

static void w_u64(struct wbuf *w, uint64_t v, size_t width)
{
	uint8_t b[sizeof(v)];

	for (size_t i = 0; i < width; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	w_bytes(w, b, width);
}

static void w_name(struct wbuf *w, const char *name)
{
	size_t n = strlen(name);

	w_u64(w, n, 1);
	w_bytes(w, name, n);
}

static void encode_body(struct catalog *c, struct wbuf *w)
{
	for (size_t i = 0; i < c->n_accts; i++) {
		w_u64(w, c->accts[i].id, 4);
		w_u64(w, (uint64_t)c->accts[i].created_at, 8);
		w_name(w, c->accts[i].name);
	}
	for (size_t i = 0; i < c->n_toks; i++) {
		if (c->toks[i].pub.revoked)
			continue;
		w_u64(w, c->toks[i].pub.account_id, 4);
		w_bytes(w, c->toks[i].hash, CATALOG_HASH_LEN);
	}
	for (size_t i = 0; i < c->n_srcs; i++) {
		const struct catalog_source *s = &c->srcs[i];
		w_u64(w, s->id, 4);
		w_u64(w, s->account_id, 4);
		w_u64(w, s->archived ? 1 : 0, 1);
		w_u64(w, (uint64_t)s->created_at, 8);
		w_name(w, s->name);
	}
}

size_t catalog_encode(struct catalog *c, uint8_t *buf, size_t cap)
{
	struct wbuf w = { .p = buf, .cap = cap, .len = 0 };
	size_t live = 0;

	lock(c);
	for (size_t i = 0; i < c->n_toks; i++)
		if (!c->toks[i].pub.revoked)
			live++;
	w_bytes(&w, SNAP_MAGIC, SNAP_MAGIC_LEN);
	w_u64(&w, c->n_accts, 4);
	w_u64(&w, live, 4);
	w_u64(&w, c->n_srcs, 4);
	encode_body(c, &w);
	unlock(c);
	return w.len;
}

/* --------------------------------------------------------------- snapshot */

struct snap_token {
	uint8_t hash[CATALOG_HASH_LEN];
	uint32_t acct;                 /* index into accts */
};

/* Tables hold index + 1 (0 = empty slot); size is a power of two >= 2n, so probes end. */
struct catalog_snap {
	struct catalog_account *accts;
	struct snap_token *toks;
	struct catalog_source *srcs;
	uint32_t n_accts, n_toks, n_srcs;
	uint32_t *acct_tab, *tok_tab, *src_tab;
	size_t acct_mask, tok_mask, src_mask;
};

struct rbuf {
	const uint8_t *p;
	size_t len;
	size_t off;
	bool bad;   /* sticky: once a read overruns, every later read fails */
};

static bool r_bytes(struct rbuf *r, void *dst, size_t n)
{
	if (r->bad || n > r->len - r->off) {
		r->bad = true;
		return false;
	}
	memcpy(dst, r->p + r->off, n);
	r->off += n;
	return true;
}

static uint64_t r_uint(struct rbuf *r, size_t width)
{
	uint8_t b[sizeof(uint64_t)] = { 0 };
	uint64_t v = 0;

	if (!r_bytes(r, b, width))
		return 0;
	for (size_t i = 0; i < width; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

static bool r_name(struct rbuf *r, char dst[CATALOG_NAME_MAX + 1])
{
	size_t n = (size_t)r_uint(r, 1);

	if (r->bad || n == 0 || n > CATALOG_NAME_MAX || !r_bytes(r, dst, n))
		return false;
	dst[n] = '\0';
	return catalog_name_valid(dst, n);
}

static uint64_t mix64(uint64_t x)
{
	/* splitmix64 finaliser: spreads sequential ids over the whole table */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static uint64_t source_key_hash(uint32_t account_id, const char *name, size_t len)
{
	uint64_t h = FNV_OFFSET;

	for (size_t i = 0; i < len; i++) {
		h ^= (uint8_t)name[i];
		h *= FNV_PRIME;
	}
	return mix64(h ^ account_id);
}

static uint64_t token_key_hash(const uint8_t hash[CATALOG_HASH_LEN])
{
	uint64_t h = 0;

	/* a SHA-256 is already uniform: its first 8 bytes are a fine table hash */
	memcpy(&h, hash, sizeof(h));
	return h;
}

static uint32_t *table_new(size_t n, size_t *mask)
{
	size_t size = TABLE_MIN;

	while (size < 2 * n)
		size *= 2;
	*mask = size - 1;
	return calloc(size, sizeof(uint32_t));
}

static const struct catalog_account *snap_account(const struct catalog_snap *s, uint32_t id,
						  uint32_t *index)
{
	for (size_t i = mix64(id) & s->acct_mask;; i = (i + 1) & s->acct_mask) {
		uint32_t slot = s->acct_tab[i];
		if (slot == 0)
			return NULL;
		if (s->accts[slot - 1].id == id) {
			if (index != NULL)
				*index = slot - 1;
			return &s->accts[slot - 1];
		}
	}
}

static int decode_accounts(struct catalog_snap *s, struct rbuf *r)
{
	for (uint32_t i = 0; i < s->n_accts; i++) {
		struct catalog_account *a = &s->accts[i];
		a->id = (uint32_t)r_uint(r, 4);
		a->created_at = (int64_t)r_uint(r, 8);
		if (!r_name(r, a->name) || a->id == 0 || snap_account(s, a->id, NULL) != NULL)
			return -1;
		size_t h = mix64(a->id) & s->acct_mask;
		while (s->acct_tab[h] != 0)
			h = (h + 1) & s->acct_mask;
		s->acct_tab[h] = i + 1;
	}
	return 0;
}

static int decode_tokens(struct catalog_snap *s, struct rbuf *r)
{
	for (uint32_t i = 0; i < s->n_toks; i++) {
		struct snap_token *t = &s->toks[i];
		uint32_t acct_id = (uint32_t)r_uint(r, 4);
		if (!r_bytes(r, t->hash, CATALOG_HASH_LEN) ||
		    snap_account(s, acct_id, &t->acct) == NULL ||
		    catalog_snap_token(s, t->hash) != NULL)
			return -1;
		size_t h = token_key_hash(t->hash) & s->tok_mask;
		while (s->tok_tab[h] != 0)
			h = (h + 1) & s->tok_mask;
		s->tok_tab[h] = i + 1;
	}
	return 0;
}

static int decode_sources(struct catalog_snap *s, struct rbuf *r)
{
	for (uint32_t i = 0; i < s->n_srcs; i++) {
		struct catalog_source *src = &s->srcs[i];
		src->id = (uint32_t)r_uint(r, 4);
		src->account_id = (uint32_t)r_uint(r, 4);
		uint64_t archived = r_uint(r, 1);
		src->archived = archived == 1;
		src->created_at = (int64_t)r_uint(r, 8);
		if (!r_name(r, src->name) || archived > 1 || src->id == 0 ||
		    snap_account(s, src->account_id, NULL) == NULL)
			return -1;
		size_t len = strlen(src->name);
		if (catalog_snap_source(s, src->account_id, src->name, len) != NULL)
			return -1;
		size_t h = source_key_hash(src->account_id, src->name, len) & s->src_mask;
		while (s->src_tab[h] != 0)
			h = (h + 1) & s->src_mask;
		s->src_tab[h] = i + 1;
	}
	return 0;
}

/* Reads the counts and allocates; counts are bounded by the bytes that remain. */
static int snap_alloc(struct catalog_snap *s, struct rbuf *r)
{
	char magic[SNAP_MAGIC_LEN];

	if (!r_bytes(r, magic, SNAP_MAGIC_LEN) || memcmp(magic, SNAP_MAGIC, SNAP_MAGIC_LEN) != 0)
		return -1;
	s->n_accts = (uint32_t)r_uint(r, 4);
	s->n_toks = (uint32_t)r_uint(r, 4);
	s->n_srcs = (uint32_t)r_uint(r, 4);
	size_t left = r->len - r->off;
	if (r->bad || s->n_accts > left / SNAP_ACCOUNT_MIN || s->n_toks > left / SNAP_TOKEN_SIZE ||
	    s->n_srcs > left / SNAP_SOURCE_MIN)
		return -1;
	s->accts = calloc(s->n_accts ? s->n_accts : 1, sizeof(*s->accts));
	s->toks = calloc(s->n_toks ? s->n_toks : 1, sizeof(*s->toks));
	s->srcs = calloc(s->n_srcs ? s->n_srcs : 1, sizeof(*s->srcs));
	s->acct_tab = table_new(s->n_accts, &s->acct_mask);
	s->tok_tab = table_new(s->n_toks, &s->tok_mask);
	s->src_tab = table_new(s->n_srcs, &s->src_mask);
	if (s->accts == NULL || s->toks == NULL || s->srcs == NULL || s->acct_tab == NULL ||
	    s->tok_tab == NULL || s->src_tab == NULL)
		return -1;
	return 0;
}

struct catalog_snap *catalog_snap_decode(const uint8_t *buf, size_t len)
{
	struct rbuf r = { .p = buf, .len = len, .off = 0, .bad = false };
	struct catalog_snap *s = calloc(1, sizeof(*s));

	if (s == NULL || buf == NULL)
		goto fail;
	if (snap_alloc(s, &r) != 0 || decode_accounts(s, &r) != 0 || decode_tokens(s, &r) != 0 ||
	    decode_sources(s, &r) != 0 || r.bad || r.off != r.len)
		goto fail;
	return s;
fail:
	catalog_snap_free(s);
	return NULL;
}

void catalog_snap_free(struct catalog_snap *s)
{
	if (s == NULL)
		return;
	free(s->accts);
	if (s->toks != NULL)
		OPENSSL_cleanse(s->toks, (s->n_toks ? s->n_toks : 1) * sizeof(*s->toks));
	free(s->toks);
	free(s->srcs);
	free(s->acct_tab);
	free(s->tok_tab);
	free(s->src_tab);
	free(s);
}

const struct catalog_account *catalog_snap_token(const struct catalog_snap *s,
						 const uint8_t hash[CATALOG_HASH_LEN])
{
	for (size_t i = token_key_hash(hash) & s->tok_mask;; i = (i + 1) & s->tok_mask) {
		uint32_t slot = s->tok_tab[i];
		if (slot == 0)
			return NULL;
		const struct snap_token *t = &s->toks[slot - 1];
		if (CRYPTO_memcmp(t->hash, hash, CATALOG_HASH_LEN) == 0)
			return &s->accts[t->acct];
	}
}

const struct catalog_source *catalog_snap_source(const struct catalog_snap *s,
						 uint32_t account_id, const char *name,
						 size_t len)
{
	if (name == NULL || len == 0 || len > CATALOG_NAME_MAX)
		return NULL;
	for (size_t i = source_key_hash(account_id, name, len) & s->src_mask;;
	     i = (i + 1) & s->src_mask) {
		uint32_t slot = s->src_tab[i];
		if (slot == 0)
			return NULL;
		const struct catalog_source *src = &s->srcs[slot - 1];
		/* names are NUL-free, so a name with an embedded NUL differs in length */
		if (src->account_id == account_id &&
		    strnlen(src->name, sizeof(src->name)) == len && memcmp(src->name, name, len) == 0)
			return src;
	}
}
