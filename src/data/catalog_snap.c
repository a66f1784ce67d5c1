/*
 * catalog_snap.c - the catalog snapshot: its byte format, the encoder the writer feeds
 * with its arrays (under its lock), and the decoder every worker runs on the bytes in
 * shared memory, building open-addressing tables for O(1) token and source lookups.
 * Also the rules both sides share: the name rule and the token hash.
 */
#include "temporis/data/catalog_snap.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

/*
 * Snapshot layout, little-endian, no padding:
 *   "TCS1" | u32 n_accounts | u32 n_tokens | u32 n_sources
 *   n_accounts x { u32 id | i64 created_at | u8 name_len | name }
 *   n_tokens   x { u32 account_id | 32-byte SHA-256 }          (live tokens only)
 *   n_sources  x { u32 id | u32 account_id | u8 archived | i64 created_at | u8 name_len | name }
 */
#define SNAP_MAGIC "TCS1"
#define SNAP_MAGIC_LEN 4
#define SNAP_COUNT_BYTES 4
#define SNAP_ID_BYTES 4
#define SNAP_TIME_BYTES 8
#define SNAP_FLAG_BYTES 1
#define SNAP_NAME_LEN_BYTES 1
/* The smallest encoded entries (names are at least one byte): they bound the counts. */
#define SNAP_ACCOUNT_MIN (SNAP_ID_BYTES + SNAP_TIME_BYTES + SNAP_NAME_LEN_BYTES + 1)
#define SNAP_TOKEN_SIZE (SNAP_ID_BYTES + CATALOG_HASH_LEN)
#define SNAP_SOURCE_MIN                                                                    \
	(2 * SNAP_ID_BYTES + SNAP_FLAG_BYTES + SNAP_TIME_BYTES + SNAP_NAME_LEN_BYTES + 1)
#define TABLE_MIN 2

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

/* ------------------------------------------------------------- shared rules */

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

int catalog_token_hash(const char *token, size_t len, uint8_t out[CATALOG_HASH_LEN])
{
	unsigned int outlen = 0;

	if (EVP_Digest(token, len, out, &outlen, EVP_sha256(), NULL) != 1)
		return -1;
	return outlen == CATALOG_HASH_LEN ? 0 : -1;
}

/* ---------------------------------------------------------------- encoding */

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
		b[i] = (uint8_t)(v >> (CHAR_BIT * i));
	w_bytes(w, b, width);
}

static void w_name(struct wbuf *w, const char *name)
{
	size_t n = strlen(name);

	w_u64(w, n, SNAP_NAME_LEN_BYTES);
	w_bytes(w, name, n);
}

static void encode_body(const struct catalog_snap_parts *parts, struct wbuf *w)
{
	for (size_t i = 0; i < parts->n_accts; i++) {
		const struct catalog_account *a = &parts->accts[i];
		w_u64(w, a->id, SNAP_ID_BYTES);
		w_u64(w, (uint64_t)a->created_at, SNAP_TIME_BYTES);
		w_name(w, a->name);
	}
	for (size_t i = 0; i < parts->n_toks; i++) {
		const struct catalog_token_hashed *t = &parts->toks[i];
		if (t->pub.revoked)
			continue;
		w_u64(w, t->pub.account_id, SNAP_ID_BYTES);
		w_bytes(w, t->hash, CATALOG_HASH_LEN);
	}
	for (size_t i = 0; i < parts->n_srcs; i++) {
		const struct catalog_source *s = &parts->srcs[i];
		w_u64(w, s->id, SNAP_ID_BYTES);
		w_u64(w, s->account_id, SNAP_ID_BYTES);
		w_u64(w, s->archived ? 1 : 0, SNAP_FLAG_BYTES);
		w_u64(w, (uint64_t)s->created_at, SNAP_TIME_BYTES);
		w_name(w, s->name);
	}
}

size_t catalog_snap_encode(const struct catalog_snap_parts *parts, uint8_t *buf, size_t cap)
{
	struct wbuf w = { .p = buf, .cap = cap, .len = 0 };
	size_t live = 0;

	for (size_t i = 0; i < parts->n_toks; i++)
		if (!parts->toks[i].pub.revoked)
			live++;
	w_bytes(&w, SNAP_MAGIC, SNAP_MAGIC_LEN);
	w_u64(&w, parts->n_accts, SNAP_COUNT_BYTES);
	w_u64(&w, live, SNAP_COUNT_BYTES);
	w_u64(&w, parts->n_srcs, SNAP_COUNT_BYTES);
	encode_body(parts, &w);
	return w.len;
}

/* ---------------------------------------------------------------- decoding */


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
		v |= (uint64_t)b[i] << (CHAR_BIT * i);
	return v;
}

static bool r_name(struct rbuf *r, char dst[CATALOG_NAME_MAX + 1])
{
	size_t n = (size_t)r_uint(r, SNAP_NAME_LEN_BYTES);

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
		a->id = (uint32_t)r_uint(r, SNAP_ID_BYTES);
		a->created_at = (int64_t)r_uint(r, SNAP_TIME_BYTES);
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
		uint32_t acct_id = (uint32_t)r_uint(r, SNAP_ID_BYTES);
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
		src->id = (uint32_t)r_uint(r, SNAP_ID_BYTES);
		src->account_id = (uint32_t)r_uint(r, SNAP_ID_BYTES);
		uint64_t archived = r_uint(r, SNAP_FLAG_BYTES);
		src->archived = archived == 1;
		src->created_at = (int64_t)r_uint(r, SNAP_TIME_BYTES);
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
	s->n_accts = (uint32_t)r_uint(r, SNAP_COUNT_BYTES);
	s->n_toks = (uint32_t)r_uint(r, SNAP_COUNT_BYTES);
	s->n_srcs = (uint32_t)r_uint(r, SNAP_COUNT_BYTES);
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
