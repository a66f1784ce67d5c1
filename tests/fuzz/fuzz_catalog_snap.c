/*
 * fuzz_catalog_snap.c - libFuzzer target for catalog_snap_decode and its lookups.
 *
 * Workers decode whatever bytes sit in shared memory, so the decoder must reject any
 * malformed snapshot cleanly. When it accepts one, an independent reading of the
 * layout (catalog_snap.c's "Snapshot layout" comment) must agree with every lookup: each
 * token hash finds its account, each (account, name) finds its source.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "temporis/data/catalog_snap.h"

#define SNAP_MAGIC_LEN 4
#define SNAP_COUNTS 3
#define ID_BYTES 4
#define TIME_BYTES 8
#define LOOKUP_IDS 4                /* also probe account ids 0..3 with each source name */

struct reader {
	const uint8_t *p;
	size_t left;
};


/* The decoder accepted these bytes, so every read here must succeed. */
static const uint8_t *take(struct reader *r, size_t n)
{
	const uint8_t *at = r->p;

	check(n <= r->left);
	r->p += n;
	r->left -= n;
	return at;
}

static uint32_t take_u32(struct reader *r)
{
	const uint8_t *b = take(r, ID_BYTES);

	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static const char *take_name(struct reader *r, size_t *len)
{
	*len = *take(r, 1);
	return (const char *)take(r, *len);
}

/* Accounts have no public lookup by id; they are reached through tokens. */
static void skip_accounts(struct reader *r, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		size_t len;

		take_u32(r);
		take(r, TIME_BYTES);
		take_name(r, &len);
		check(len >= 1 && len <= CATALOG_NAME_MAX);
	}
}

static void check_tokens(const struct catalog_snap *s, struct reader *r, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		uint32_t acct = take_u32(r);
		uint8_t hash[CATALOG_HASH_LEN];
		const struct catalog_account *a;

		memcpy(hash, take(r, CATALOG_HASH_LEN), CATALOG_HASH_LEN);
		a = catalog_snap_token(s, hash);
		check(a != NULL && a->id == acct);
		/* A one-bit change must not crash; it may only find some other live token. */
		hash[CATALOG_HASH_LEN - 1] ^= 1;
		catalog_snap_token(s, hash);
	}
}

static void check_sources(const struct catalog_snap *s, struct reader *r, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		uint32_t id = take_u32(r), acct = take_u32(r);
		uint8_t archived = *take(r, 1);
		const struct catalog_source *src;
		const char *name;
		size_t len;

		take(r, TIME_BYTES);
		name = take_name(r, &len);
		src = catalog_snap_source(s, acct, name, len);
		check(src != NULL && src->id == id && src->account_id == acct);
		check(src->archived == (archived == 1) && strlen(src->name) == len);
		check(memcmp(src->name, name, len) == 0);
		/* Prefixes and other accounts' ids: lookups that must not crash or overread. */
		catalog_snap_source(s, acct, name, len - 1);
		for (uint32_t other = 0; other < LOOKUP_IDS; other++)
			catalog_snap_source(s, other, name, len);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct catalog_snap *s = catalog_snap_decode(data, size);
	struct reader r = { data, size };
	uint32_t counts[SNAP_COUNTS];

	if (s == NULL)
		return 0;
	take(&r, SNAP_MAGIC_LEN);
	for (int i = 0; i < SNAP_COUNTS; i++)
		counts[i] = take_u32(&r);
	skip_accounts(&r, counts[0]);
	check_tokens(s, &r, counts[1]);
	check_sources(s, &r, counts[2]);
	check(r.left == 0);
	catalog_snap_free(s);
	return 0;
}
