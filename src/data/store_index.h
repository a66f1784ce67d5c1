/*
 * store_index.h - private to the store: the sealer's cache of what the series
 * index holds (store_index.c).
 */
#ifndef TEMPORIS_STORE_INDEX_H
#define TEMPORIS_STORE_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct index_cache;

struct index_cache *store_index_cache_new(void);
void store_index_cache_free(struct index_cache *c);
/*
 * The sealer writes a bucket of (source, name) in partition: true if an index
 * operand must go with it, which the cache then counts as written; false if the
 * index covers it already. Out of memory, true and nothing remembered.
 */
bool store_index_wanted(struct index_cache *c, uint32_t source_id, const char *name,
			size_t len, int64_t partition);
/* Forget everything (a seal failed: what it counted may not have been written). */
void store_index_cache_reset(struct index_cache *c);

#endif
