/*
 * catalog_snap.h - the catalog as every process sees it: accounts, tokens and data
 * sources, the name rule, the token hash, and the snapshot the writer publishes in
 * shared memory. The writer encodes its arrays into the snapshot's bytes; each worker
 * decodes them into an immutable struct catalog_snap with O(1) lookups. Nothing here
 * touches RocksDB, so the workers link this alone (the live catalog is catalog.h).
 */
#ifndef TEMPORIS_DATA_CATALOG_SNAP_H
#define TEMPORIS_DATA_CATALOG_SNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CATALOG_NAME_MAX 48          /* account and data source names */
#define CATALOG_LABEL_MAX 128        /* token labels */
#define CATALOG_TOKEN_LEN 67         /* "ts_" + 64 hex digits */
#define CATALOG_TOKEN_ID_LEN 16      /* hex digits */
#define CATALOG_HASH_LEN 32

/*
 * The name rule for accounts and data sources: 1 to 48 characters, a lowercase
 * letter first, then lowercase letters, digits or underscores.
 */
bool catalog_name_valid(const char *name, size_t len);
/* SHA-256 of a presented token (OpenSSL libcrypto). 0, or -1 if libcrypto fails. */
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

/* A token as the writer holds it: what the operator sees, and the hash it is checked by. */
struct catalog_token_hashed {
	struct catalog_token pub;
	uint8_t hash[CATALOG_HASH_LEN];  /* SHA-256 of the secret, which is never kept */
};

struct catalog_source {
	uint32_t id;                     /* column family of its records */
	uint32_t account_id;
	char name[CATALOG_NAME_MAX + 1];
	bool archived;
	int64_t created_at;
	/* Seconds of records kept, 0 = forever. The writer's alone: the snapshot does not
	 * carry it (a worker's copy reads 0), the series op answers it. */
	int64_t retention_s;
};

/* ---- encoding (the writer) ---- */

/* What a snapshot is made of: the writer's arrays, borrowed for one encode. */
struct catalog_snap_parts {
	const struct catalog_account *accts;
	size_t n_accts;
	const struct catalog_token_hashed *toks;   /* revoked ones are left out */
	size_t n_toks;
	const struct catalog_source *srcs;
	size_t n_srcs;
};

/*
 * Encode parts as a snapshot into buf. Returns the byte count; if it exceeds cap,
 * nothing useful is in buf and the caller must grow it and encode again.
 */
size_t catalog_snap_encode(const struct catalog_snap_parts *parts, uint8_t *buf, size_t cap);

/* ---- decoding (the workers) ---- */

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
