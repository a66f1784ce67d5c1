/*
 * catalog.c - the writer's live catalog of accounts, API tokens and data sources:
 * loaded from the store's catalog column family, kept in sorted arrays under one
 * mutex, changed only by the mutations below (each written as its JSON record,
 * catalog_json.h, before it is made in memory), and encoded for the workers as a
 * snapshot (catalog_snap.h).
 */
#include "temporis/data/catalog.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <json-c/json.h>
#include <openssl/crypto.h>

#include "temporis/base/buf.h"
#include "temporis/base/clock.h"
#include "temporis/base/err.h"
#include "temporis/base/log.h"
#include "temporis/data/catalog_json.h"

#define TOKEN_PREFIX "ts_"
#define TOKEN_PREFIX_LEN 3
#define TOKEN_SECRET_BYTES 32
#define TOKEN_ID_BYTES 8
#define TOKEN_ID_ATTEMPTS 8           /* 64-bit ids: a second collision means a broken RNG */
#define DEFAULT_TOKEN_LABEL "default"
#define VEC_INITIAL_CAP 16
#define ERR_MAX 256

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
	struct catalog_token_hashed *toks;
	size_t n_toks, cap_toks;
	struct catalog_source *srcs;
	size_t n_srcs, cap_srcs;
};

/* ---------------------------------------------------------------- helpers */

static bool cstr_name_valid(const char *name)
{
	return name != NULL && catalog_name_valid(name, strnlen(name, CATALOG_NAME_MAX + 1));
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

/* Room for one more element in each array; the arrays only ever grow. 0 or -1. */
static int accts_reserve(struct catalog *c)
{
	void *arr = c->accts;
	int rc = vec_reserve(&arr, &c->cap_accts, c->n_accts + 1, sizeof(*c->accts),
			     VEC_INITIAL_CAP);

	c->accts = arr;
	return rc;
}

static int toks_reserve(struct catalog *c)
{
	void *arr = c->toks;
	int rc = vec_reserve(&arr, &c->cap_toks, c->n_toks + 1, sizeof(*c->toks), VEC_INITIAL_CAP);

	c->toks = arr;
	return rc;
}

static int srcs_reserve(struct catalog *c)
{
	void *arr = c->srcs;
	int rc = vec_reserve(&arr, &c->cap_srcs, c->n_srcs + 1, sizeof(*c->srcs), VEC_INITIAL_CAP);

	c->srcs = arr;
	return rc;
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

static struct catalog_token_hashed *tok_find(struct catalog *c, const char *id)
{
	for (size_t i = 0; i < c->n_toks; i++)
		if (strcmp(c->toks[i].pub.id, id) == 0)
			return &c->toks[i];
	return NULL;
}

/* ------------------------------------------------------ JSON persistence */

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
	char key[CATALOG_KEY_MAX];

	struct json_object *o = catalog_json_account(a, key);

	return put_json(c, key, o);
}

static int persist_token(struct catalog *c, const struct catalog_token_hashed *t, bool revoked)
{
	char key[CATALOG_KEY_MAX];

	struct json_object *o = catalog_json_token(t, revoked, key);

	return put_json(c, key, o);
}

static int persist_source(struct catalog *c, const struct catalog_source *s, bool archived)
{
	char key[CATALOG_KEY_MAX];

	struct json_object *o = catalog_json_source(s, archived, key);

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
	err_set(lc->err, lc->errlen, "catalog record %.*s: %s",
		(int)(klen > CATALOG_KEY_MAX ? CATALOG_KEY_MAX : klen), key, why);
	lc->failed = 1;
	return 1;
}

static int load_account_cb(const char *key, size_t klen, const char *val, size_t vlen, void *arg)
{
	struct load_ctx *lc = arg;
	struct catalog *c = lc->c;
	struct catalog_account a;
	const char *why = catalog_json_read_account(key, klen, val, vlen, &a);

	if (why != NULL)
		return load_fail(lc, key, klen, why);
	if (accts_reserve(c) != 0)
		return load_fail(lc, key, klen, "out of memory");
	c->accts[c->n_accts++] = a;
	return 0;
}

static int load_token_cb(const char *key, size_t klen, const char *val, size_t vlen, void *arg)
{
	struct load_ctx *lc = arg;
	struct catalog *c = lc->c;
	struct catalog_token_hashed t;
	const char *why = catalog_json_read_token(key, klen, val, vlen, &t);

	if (why != NULL)
		return load_fail(lc, key, klen, why);
	if (acct_by_id(c, t.pub.account_id) == NULL)
		return load_fail(lc, key, klen, "unknown account");
	if (toks_reserve(c) != 0)
		return load_fail(lc, key, klen, "out of memory");
	c->toks[c->n_toks++] = t;
	return 0;
}

static int load_source_cb(const char *key, size_t klen, const char *val, size_t vlen, void *arg)
{
	struct load_ctx *lc = arg;
	struct catalog *c = lc->c;
	struct catalog_source s;
	const char *why = catalog_json_read_source(key, klen, val, vlen, &s);

	if (why != NULL)
		return load_fail(lc, key, klen, why);
	if (acct_by_id(c, s.account_id) == NULL)
		return load_fail(lc, key, klen, "unknown account");
	if (srcs_reserve(c) != 0)
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
	const struct catalog_token_hashed *x = a, *y = b;
	return tok_cmp(&x->pub, &y->pub);
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
			err_set(err, errlen, "catalog: duplicate account id %" PRIu32, c->accts[i].id);
			return -1;
		}
		if (c->accts[i].id >= c->next_account_id)
			c->next_account_id = (uint64_t)c->accts[i].id + 1;
	}
	for (size_t i = 0; i < c->n_srcs; i++) {
		if (i > 0 && qcmp_src(&c->srcs[i - 1], &c->srcs[i]) == 0) {
			err_set(err, errlen, "catalog: duplicate source name in one account");
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
		{ CATALOG_KEY_ACCOUNT, load_account_cb },
		{ CATALOG_KEY_TOKEN, load_token_cb },
		{ CATALOG_KEY_SOURCE, load_source_cb },
	};

	for (size_t i = 0; i < sizeof(passes) / sizeof(passes[0]); i++) {
		int rc = store_catalog_scan(c->st, passes[i].prefix, passes[i].cb, &lc);
		if (lc.failed)
			return -1;
		if (rc != 0) {
			err_set(err, errlen, "catalog: scan of the catalog family failed");
			return -1;
		}
	}
	return load_finish(c, err, errlen);
}

int catalog_open(struct store *st, struct catalog **out, char *err, size_t errlen)
{
	struct catalog *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		err_set(err, errlen, "catalog: out of memory");
		return -1;
	}
	c->st = st;
	int prc = pthread_mutex_init(&c->lock, NULL);
	if (prc != 0) {
		err_set(err, errlen, "catalog: mutex: %s", strerror(prc));
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
				      struct catalog_token_hashed *t)
{
	uint8_t secret[TOKEN_SECRET_BYTES];
	uint8_t idb[TOKEN_ID_BYTES];
	enum catalog_rc rc = CAT_FAILED;
	int attempt;

	for (attempt = 0; attempt < TOKEN_ID_ATTEMPTS; attempt++) {
		if (random_bytes(idb, sizeof(idb)) != 0)
			goto out;
		catalog_hex_encode(idb, sizeof(idb), t->pub.id);
		if (tok_find(c, t->pub.id) == NULL)
			break;
	}
	if (attempt == TOKEN_ID_ATTEMPTS || random_bytes(secret, sizeof(secret)) != 0)
		goto out;
	memcpy(token, TOKEN_PREFIX, TOKEN_PREFIX_LEN);
	catalog_hex_encode(secret, sizeof(secret), token + TOKEN_PREFIX_LEN);
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
	struct catalog_token_hashed t;

	memset(&t, 0, sizeof(t));
	t.pub.account_id = a->id;
	snprintf(t.pub.label, sizeof(t.pub.label), "%s", label);
	if (wall_time_s(&t.pub.created_at) != 0 || toks_reserve(c) != 0)
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
	if (wall_time_s(&a.created_at) != 0 || accts_reserve(c) != 0 ||
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
	struct catalog_token_hashed *t = a != NULL ? tok_find(c, token_id) : NULL;
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
				  const char *name, int64_t retention_s,
				  struct catalog_source *out)
{
	struct catalog_source s;
	char err[ERR_MAX];

	if (c->next_source_id > UINT32_MAX)
		return CAT_FAILED;
	memset(&s, 0, sizeof(s));
	s.id = (uint32_t)c->next_source_id;
	s.account_id = a->id;
	s.retention_s = retention_s;
	snprintf(s.name, sizeof(s.name), "%s", name);
	if (wall_time_s(&s.created_at) != 0 || srcs_reserve(c) != 0)
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
	return catalog_source_create_with(c, account, name, 0, out);
}

enum catalog_rc catalog_source_create_with(struct catalog *c, const char *account,
					   const char *name, int64_t retention_s,
					   struct catalog_source *out)
{
	enum catalog_rc rc;

	if (!cstr_name_valid(name) || retention_s < 0)
		return CAT_INVALID;
	lock(c);
	struct catalog_account *a = acct_find(c, account);
	if (a == NULL)
		rc = CAT_NOT_FOUND;
	else if (src_find(c, a->id, name) != NULL)
		rc = CAT_EXISTS;
	else
		rc = source_add(c, a, name, retention_s, out);
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

enum catalog_rc catalog_source_set_retention(struct catalog *c, const char *account,
					     const char *name, int64_t retention_s,
					     struct catalog_source *out)
{
	enum catalog_rc rc = CAT_NOT_FOUND;

	if (retention_s < 0)
		return CAT_INVALID;
	lock(c);
	struct catalog_account *a = acct_find(c, account);
	struct catalog_source *s = a != NULL ? src_find(c, a->id, name) : NULL;
	if (s == NULL)
		goto out;
	rc = CAT_OK;
	if (s->retention_s != retention_s) {
		struct catalog_source changed = *s;

		changed.retention_s = retention_s;
		if (persist_source(c, &changed, changed.archived) != 0) {
			rc = CAT_FAILED;
			goto out;
		}
		*s = changed;
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

/* --------------------------------------------------------------- snapshot */

size_t catalog_encode(struct catalog *c, uint8_t *buf, size_t cap)
{
	lock(c);
	const struct catalog_snap_parts parts = {
		.accts = c->accts, .n_accts = c->n_accts,
		.toks = c->toks, .n_toks = c->n_toks,
		.srcs = c->srcs, .n_srcs = c->n_srcs,
	};
	size_t n = catalog_snap_encode(&parts, buf, cap);
	unlock(c);
	return n;
}
