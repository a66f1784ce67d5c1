/*
 * store_core.c - what every file of the store shares (store_core.h): RocksDB's
 * error strings, the table of source families (id -> handle, guarded by
 * table_lock), and the commit log's key.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <rocksdb/c.h>

#include "store_core.h"
#include "temporis/base/buf.h"
#include "temporis/base/err.h"
#include "temporis/base/log.h"

#define STORE_TABLE_INITIAL 16
#define BYTE_BITS 8

/* ---- RocksDB errors ---- */

/* RocksDB states ENOSPC as its status text: "IO error: No space left on device: ...". */
bool store_rerr_is_nospace(const char *rerr)
{
	return strstr(rerr, "No space left on device") != NULL || strstr(rerr, "NoSpace") != NULL;
}

int store_take_rerr(char *rerr, const char *what, char *err, size_t errlen)
{
	if (rerr == NULL)
		return 0;
	err_set(err, errlen, "%s: %s", what, rerr);
	rocksdb_free(rerr);
	return -1;
}

int store_iter_status(rocksdb_iterator_t *it, const char *what)
{
	char *rerr = NULL;

	rocksdb_iter_get_error(it, &rerr);
	if (rerr == NULL)
		return 0;
	log_error("store: %s: %s", what, rerr);
	rocksdb_free(rerr);
	return -1;
}

/* ---- source handle table ---- */

/* Index of the first entry with id >= source_id. Caller holds table_lock. */
static size_t table_lower_bound(const struct store *st, uint32_t source_id)
{
	size_t lo = 0, hi = st->nsources;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (st->sources[mid].id < source_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

rocksdb_column_family_handle_t *store_source_cf_cutoff(struct store *st, uint32_t source_id,
						       int64_t *cutoff)
{
	rocksdb_column_family_handle_t *cf = NULL;
	size_t i;

	*cutoff = STORE_NO_CUTOFF;
	pthread_mutex_lock(&st->table_lock);
	i = table_lower_bound(st, source_id);
	if (i < st->nsources && st->sources[i].id == source_id) {
		cf = st->sources[i].cf;
		*cutoff = st->sources[i].cutoff;
	}
	pthread_mutex_unlock(&st->table_lock);
	return cf;
}

rocksdb_column_family_handle_t *store_source_cf(struct store *st, uint32_t source_id)
{
	int64_t cutoff;

	return store_source_cf_cutoff(st, source_id, &cutoff);
}

int store_source_set_cutoff(struct store *st, uint32_t source_id, int64_t cutoff)
{
	int rc = -1;
	size_t i;

	pthread_mutex_lock(&st->table_lock);
	i = table_lower_bound(st, source_id);
	if (i < st->nsources && st->sources[i].id == source_id) {
		st->sources[i].cutoff = cutoff;
		rc = 0;
	}
	pthread_mutex_unlock(&st->table_lock);
	return rc;
}

int64_t store_source_cutoff(struct store *st, uint32_t source_id)
{
	int64_t cutoff;

	(void)store_source_cf_cutoff(st, source_id, &cutoff); /* unknown: no cutoff */
	return cutoff;
}

int store_table_insert(struct store *st, uint32_t source_id,
		       rocksdb_column_family_handle_t *cf)
{
	void *arr = st->sources;
	size_t i;

	if (vec_reserve(&arr, &st->cap, st->nsources + 1, sizeof(st->sources[0]),
			STORE_TABLE_INITIAL) != 0)
		return -1;
	st->sources = arr;
	i = table_lower_bound(st, source_id);
	memmove(&st->sources[i + 1], &st->sources[i],
		(st->nsources - i) * sizeof(st->sources[0]));
	st->sources[i].id = source_id;
	st->sources[i].cf = cf;
	st->sources[i].cutoff = STORE_NO_CUTOFF;
	st->nsources++;
	return 0;
}

rocksdb_column_family_handle_t **store_all_cfs(struct store *st, size_t *n)
{
	rocksdb_column_family_handle_t **cfs;

	pthread_mutex_lock(&st->table_lock);
	cfs = malloc((st->nsources + STORE_FIXED_CFS) * sizeof(*cfs));
	if (cfs != NULL) {
		cfs[0] = st->cf_default;
		cfs[1] = st->cf_catalog;
		for (unsigned l = 0; l < STORE_LOGS; l++)
			cfs[2 + l] = st->cf_log[l];
		for (size_t i = 0; i < st->nsources; i++)
			cfs[i + STORE_FIXED_CFS] = st->sources[i].cf;
		*n = st->nsources + STORE_FIXED_CFS;
	}
	pthread_mutex_unlock(&st->table_lock);
	return cfs;
}

rocksdb_column_family_handle_t **store_source_cfs(struct store *st, size_t *n)
{
	rocksdb_column_family_handle_t **cfs;

	pthread_mutex_lock(&st->table_lock);
	cfs = malloc((st->nsources ? st->nsources : 1) * sizeof(*cfs));
	if (cfs != NULL) {
		for (size_t i = 0; i < st->nsources; i++)
			cfs[i] = st->sources[i].cf;
		*n = st->nsources;
	}
	pthread_mutex_unlock(&st->table_lock);
	return cfs;
}

/* ---- the commit log ---- */

void store_log_key(uint8_t key[STORE_LOG_KEY_LEN], uint64_t seq)
{
	for (int i = 0; i < STORE_LOG_KEY_LEN; i++)
		key[i] = (uint8_t)(seq >> (BYTE_BITS * (STORE_LOG_KEY_LEN - 1 - i)));
}

