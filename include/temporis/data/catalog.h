/*
 * catalog.h - accounts, tokens and data sources.
 *
 * Two halves. The writer owns the live catalog (struct catalog): persisted in the
 * store's catalog column family, mutated under its own lock, and encoded into a
 * compact byte snapshot after each change. Workers decode that snapshot into an
 * immutable struct catalog_snap with O(1) lookups: token hash -> account and
 * (account, source name) -> data source. Tokens are "ts_" + 256 random bits from
 * getrandom, shown once, and stored only as their SHA-256 (OpenSSL libcrypto).
 */
#ifndef TEMPORIS_CATALOG_H
#define TEMPORIS_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "temporis/data/store.h"

#define CATALOG_NAME_MAX 48          /* account and data source names */
#define CATALOG_LABEL_MAX 128        /* token labels */
#define CATALOG_TOKEN_LEN 67         /* "ts_" + 64 hex digits */
#define CATALOG_TOKEN_ID_LEN 16      /* hex digits */
#define CATALOG_HASH_LEN 32

enum catalog_rc {
	CAT_OK = 0,
	CAT_EXISTS,                      /* name already taken */
	CAT_NOT_FOUND,                   /* no such account, token or source */
	CAT_INVALID,                     /* name breaks the rules, label too long */
	CAT_FAILED,                      /* storage or system failure */
};

/* Seeds' rule: ^[a-z][a-z0-9_]{0,47}$. */
bool catalog_name_valid(const char *name, size_t len);
/* SHA-256 of a presented token. 0, or -1 if libcrypto fails. */
int catalog_token_hash(const char *token, size_t len, uint8_t out[CATALOG_HASH_LEN]);

struct catalog_account {
	uint32_t id;
	char name[CATALOG_NAME_MAX + 1];
	int64_t created_at;              /* Unix seconds */
};

struct catalog_token {
	char id[CATALOG_TOKEN_ID_LEN + 1];
	uint32_t account_id;
	char label[CATALOG_LABEL_MAX + 1];
	int64_t created_at;
	bool revoked;
};

struct catalog_source {
	uint32_t id;                     /* column family of its records */
	uint32_t account_id;
	char name[CATALOG_NAME_MAX + 1];
	bool archived;
	int64_t created_at;
};

/* ---- writer side ---- */

struct catalog;

int catalog_open(struct store *st, struct catalog **out, char *err, size_t errlen);
void catalog_close(struct catalog *c);

/* Creates the account and its first token; token receives the secret (NUL-terminated). */
enum catalog_rc catalog_account_create(struct catalog *c, const char *name,
				       struct catalog_account *acct,
				       char token[CATALOG_TOKEN_LEN + 1],
				       struct catalog_token *tok);
enum catalog_rc catalog_token_create(struct catalog *c, const char *account, const char *label,
				     char token[CATALOG_TOKEN_LEN + 1], struct catalog_token *tok);
enum catalog_rc catalog_token_revoke(struct catalog *c, const char *account,
				     const char *token_id);
/* Creates the source's column family too. */
enum catalog_rc catalog_source_create(struct catalog *c, const char *account, const char *name,
				      struct catalog_source *out);
enum catalog_rc catalog_source_set_archived(struct catalog *c, const char *account,
					    const char *name, bool archived,
					    struct catalog_source *out);
enum catalog_rc catalog_source_find(struct catalog *c, const char *account, const char *name,
				    struct catalog_source *out);
enum catalog_rc catalog_account_find(struct catalog *c, const char *account,
				     struct catalog_account *out);
enum catalog_rc catalog_account_by_id(struct catalog *c, uint32_t id,
				      struct catalog_account *out);

/* Listing, in name (accounts, sources) or creation (tokens) order, under the lock. */
typedef void (*catalog_account_cb)(const struct catalog_account *a, void *arg);
typedef void (*catalog_token_cb)(const struct catalog_token *t, void *arg);
typedef void (*catalog_source_cb)(const struct catalog_account *owner,
				  const struct catalog_source *s, void *arg);
void catalog_each_account(struct catalog *c, catalog_account_cb cb, void *arg);
enum catalog_rc catalog_each_token(struct catalog *c, const char *account, catalog_token_cb cb,
				   void *arg);
/* account NULL = every account's sources. */
enum catalog_rc catalog_each_source(struct catalog *c, const char *account,
				    catalog_source_cb cb, void *arg);

/*
 * Encode the current catalog as a snapshot (accounts, live token hashes, sources).
 * Returns the byte count; if it exceeds cap nothing useful is in buf and the caller
 * must grow it. Bumped by every successful mutation: catalog_generation().
 */
size_t catalog_encode(struct catalog *c, uint8_t *buf, size_t cap);
uint64_t catalog_generation(struct catalog *c);

/* ---- worker side ---- */

struct catalog_snap;

/* Decode a snapshot; NULL if the bytes are malformed or memory runs out. */
struct catalog_snap *catalog_snap_decode(const uint8_t *buf, size_t len);
void catalog_snap_free(struct catalog_snap *s);
/* The account a live token hash belongs to (compared in constant time), or NULL. */
const struct catalog_account *catalog_snap_token(const struct catalog_snap *s,
						 const uint8_t hash[CATALOG_HASH_LEN]);
const struct catalog_source *catalog_snap_source(const struct catalog_snap *s,
						 uint32_t account_id, const char *name,
						 size_t len);

#endif
