/*
 * catalog_json.h - the catalog's persisted records: one JSON object per account,
 * token and data source in the store's catalog column family, under the keys
 * "a/" + name, "t/" + token id and "s/" + the source id in ten digits. Building a
 * record and reading one back (with every field and the key checked) live here;
 * the live catalog (catalog.h) decides when to write them.
 */
#ifndef TEMPORIS_DATA_CATALOG_JSON_H
#define TEMPORIS_DATA_CATALOG_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "temporis/data/catalog_snap.h"

struct json_object;

#define CATALOG_KEY_ACCOUNT "a/"
#define CATALOG_KEY_TOKEN "t/"
#define CATALOG_KEY_SOURCE "s/"
#define CATALOG_KEY_MAX 64           /* "a/" + name, "t/" + id, "s/" + 10 digits */

/* Lowercase hex of src[0..n) into dst (2n digits and a NUL): token ids, secrets, hashes. */
void catalog_hex_encode(const uint8_t *src, size_t n, char *dst);

/*
 * The record of an account, token or source, and its key in *key. The token's and
 * source's flag is passed apart, so a change is written before it is made in memory.
 * NULL when out of memory; the caller puts the object.
 */
struct json_object *catalog_json_account(const struct catalog_account *a,
					 char key[CATALOG_KEY_MAX]);
struct json_object *catalog_json_token(const struct catalog_token_hashed *t, bool revoked,
				       char key[CATALOG_KEY_MAX]);
struct json_object *catalog_json_source(const struct catalog_source *s, bool archived,
					char key[CATALOG_KEY_MAX]);

/*
 * Read back a stored record: its key and JSON text. NULL when every field is well
 * formed and the key matches, else what is wrong ("malformed token", "key does not
 * match id"). Whether the account a token or source names exists is the caller's check.
 */
const char *catalog_json_read_account(const char *key, size_t klen, const char *val,
				      size_t vlen, struct catalog_account *out);
const char *catalog_json_read_token(const char *key, size_t klen, const char *val, size_t vlen,
				    struct catalog_token_hashed *out);
const char *catalog_json_read_source(const char *key, size_t klen, const char *val,
				     size_t vlen, struct catalog_source *out);

#endif
