/*
 * store_impl.h - private to src/data/store*.c: the struct store behind the handle
 * of store.h and the helpers its three files share (source lookup, RocksDB error
 * reporting). Nothing outside src/data/store*.c includes it.
 */
#ifndef TEMPORIS_STORE_IMPL_H
#define TEMPORIS_STORE_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <rocksdb/c.h>

#include "temporis/data/store.h"

/* Default family key of the version high-water mark (codec_hwm_encode's bytes). */
#define STORE_HWM_KEY "version_hwm"

struct source_cf {
	uint32_t id;
	rocksdb_column_family_handle_t *cf;
};

struct store {
	rocksdb_t *db;
	rocksdb_options_t *opts; /* owns the merge operator (shared_ptr inside) */
	rocksdb_writeoptions_t *wopts;
	rocksdb_writeoptions_t *catalog_wopts;
	rocksdb_readoptions_t *ropts;
	rocksdb_column_family_handle_t *cf_default;
	rocksdb_column_family_handle_t *cf_catalog;
	/* Written by the commit thread only; read from any thread. */
	_Atomic uint64_t hwm;
	/* Sorted by id. Handles are never freed before store_close, so a looked-up
	 * handle stays valid after the lock is dropped; only the array moves. */
	pthread_mutex_t table_lock;
	struct source_cf *sources;
	size_t nsources, cap;
	/* Serializes source creation without holding table_lock during the slow part. */
	pthread_mutex_t create_lock;
};

/* The column family of a source, or NULL if it has none. Any thread. */
rocksdb_column_family_handle_t *store_source_cf(struct store *st, uint32_t source_id);

/* Reports a RocksDB error string (if any) as "what: error" and frees it; returns -1
 * if there was one, else 0. */
int store_take_rerr(char *rerr, const char *what, char *err, size_t errlen);

/* -1 (and logs "store: what: error") if the iterator stopped on an error rather
 * than at the end, else 0. */
int store_iter_status(rocksdb_iterator_t *it, const char *what);

#endif
