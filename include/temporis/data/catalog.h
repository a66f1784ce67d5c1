/*
 * catalog.h - the writer's live catalog of accounts, tokens and data sources.
 *
 * Persisted in the store's catalog column family, changed under its own lock, and
 * encoded after each change into the snapshot the workers read (catalog_snap.h,
 * which also holds the structs and the name rule). Tokens are "ts_" + 256 random
 * bits from getrandom, shown once, and stored only as their SHA-256.
 */
#ifndef TEMPORIS_DATA_CATALOG_H
#define TEMPORIS_DATA_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "temporis/data/catalog_snap.h"
#include "temporis/data/store.h"

enum catalog_rc {
	CAT_OK = 0,
	CAT_EXISTS,                      /* name already taken */
	CAT_NOT_FOUND,                   /* no such account, token or source */
	CAT_INVALID,                     /* name breaks the rules, label too long */
	CAT_FAILED,                      /* storage or system failure */
};

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
/* Creates the source's column family too; its retention is 0 (forever). */
enum catalog_rc catalog_source_create(struct catalog *c, const char *account, const char *name,
				      struct catalog_source *out);
/* The same with a retention (seconds, 0 = forever; CAT_INVALID if negative). */
enum catalog_rc catalog_source_create_with(struct catalog *c, const char *account,
					   const char *name, int64_t retention_s,
					   struct catalog_source *out);
/* Sets the retention of a source (persisted). */
enum catalog_rc catalog_source_set_retention(struct catalog *c, const char *account,
					     const char *name, int64_t retention_s,
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
 * must grow it.
 */
size_t catalog_encode(struct catalog *c, uint8_t *buf, size_t cap);
/* Bumped by every successful mutation. */
uint64_t catalog_generation(struct catalog *c);

#endif
