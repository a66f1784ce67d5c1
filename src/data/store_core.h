/*
 * store_core.h - private to src/data/store*.c: the struct store behind the handle
 * of store.h, and what every file of the store shares (store_core.c): RocksDB
 * error reporting, the table of source families, the commit log's format, and the
 * heads' hand-off between the committer, the sealer and readers (store_head.c
 * runs it). Nothing outside the store includes it; each other store file has its
 * own private header (store_head.h, store_seal.h, store_index.h, store_migrate.h,
 * store_options.h).
 */
#ifndef TEMPORIS_STORE_CORE_H
#define TEMPORIS_STORE_CORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rocksdb/c.h>

#include "temporis/data/codec.h"
#include "temporis/data/head.h"
#include "temporis/base/config.h"
#include "temporis/data/store.h"
#include "store_control.h"

/* Default family keys: the version high-water mark (codec_hwm_encode's bytes) and
 * the on-disk format marker (CODEC_FORMAT). */
#define STORE_HWM_KEY "version_hwm"
#define STORE_FORMAT_KEY "format"

/*
 * The commit log: one key per committed request, in one of two log families
 * ("log_0", "log_1"): the active head's commits go to one, and a seal empties the
 * other, whose head it writes out, in its last write; flushed at once, that family's
 * memtable then leaves nothing but the deletion on disk. So the log never reaches
 * an SST file while a seal keeps up.
 *   key   = big-endian u64 log sequence number (increasing in commit order)
 *   value = u32 source id LE | u64 version LE | u32 record count LE | packed records
 *           (the wire form of record.h, as the request's ring entry holds them)
 */
#define STORE_LOGS 2
#define STORE_LOG_KEY_LEN 8
#define STORE_LOG_HDR_LEN 16

/* Families that are not sources: default, catalog and the logs. */
#define STORE_FIXED_CFS (2 + STORE_LOGS)

struct index_cache;

struct source_cf {
	uint32_t id;
	rocksdb_column_family_handle_t *cf;
	int64_t cutoff;                /* reads hide records older than this (store.h) */
};

/* Heads and their hand-off between the committer, the sealer and readers. */
struct store_heads {
	pthread_mutex_t lock;          /* guards everything below */
	pthread_cond_t changed;        /* a seal ended, readers left, work arrived */
	struct head *active;           /* commits fold into it (under lock) */
	struct head *frozen;           /* being sealed: read-only; NULL when none */
	struct head *spare;            /* cleared, for the next swap */
	uint64_t frozen_log_end;       /* the frozen head holds the log below this */
	unsigned active_log;           /* the log family the active head's commits go to */
	uint64_t sealed_log_end;       /* the log below this is sealed (this run) */
	uint64_t active_log_bytes;     /* log written into the active head */
	uint64_t active_since_ms;      /* when the active head got its first record */
	bool seal_wanted;              /* store_seal asked for one now */
	bool stopping;
	int failures;                  /* seals failed in a row (retried with back-off) */
	/* Scans hold one of two reader counts for their duration; a frozen head is only
	 * cleared after the count of the epoch it was sealed in drops to zero. */
	unsigned epoch;
	unsigned readers[2];
	pthread_t sealer;
	bool sealer_running;
	bool ready;                    /* lock, condition and heads exist */
	struct index_cache *index;     /* the sealer's: what the series index holds */
	/* what /metrics and tests see */
	_Atomic uint64_t seals, seal_failures, sealed_records, room_waits, seal_files;
};

struct store {
	char dir[CFG_PATH_MAX];        /* the database directory */
	rocksdb_t *db;
	rocksdb_options_t *opts;       /* source families; owns the merge operator */
	rocksdb_options_t *log_opts;   /* the log family: no merge, no compression */
	rocksdb_writeoptions_t *wopts;
	rocksdb_writeoptions_t *catalog_wopts;
	rocksdb_readoptions_t *ropts;
	rocksdb_column_family_handle_t *cf_default;
	rocksdb_column_family_handle_t *cf_catalog;
	rocksdb_column_family_handle_t *cf_log[STORE_LOGS];
	bool accept_data_loss;         /* STORE_OPEN_ACCEPT_DATA_LOSS */
	bool opened;                   /* store_open_ex succeeded */
	struct store_control control;  /* the MANIFEST as last recorded (store_control.h) */
	bool control_failed;           /* its last update failed (logged) */
	/* Written by the commit thread only; read from any thread. */
	_Atomic uint64_t hwm;
	uint64_t log_next;             /* the next log sequence (commit thread) */
	struct store_heads heads;
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
/* The same, and the source's read cutoff (STORE_NO_CUTOFF if none) in *cutoff. */
rocksdb_column_family_handle_t *store_source_cf_cutoff(struct store *st, uint32_t source_id,
						       int64_t *cutoff);

/* Reports a RocksDB error string (if any) as "what: error" and frees it; returns -1
 * if there was one, else 0. */
int store_take_rerr(char *rerr, const char *what, char *err, size_t errlen);
/* Whether a RocksDB error text is the filesystem's ENOSPC. */
bool store_rerr_is_nospace(const char *rerr);

/* -1 (and logs "store: what: error") if the iterator stopped on an error rather
 * than at the end, else 0. */
int store_iter_status(rocksdb_iterator_t *it, const char *what);

/* Every source family's handle and the count, copied under the table lock; the
 * caller frees the array. NULL when out of memory. */
rocksdb_column_family_handle_t **store_source_cfs(struct store *st, size_t *n);
/* Every family's handle (default, catalog, logs, sources), likewise, so maintenance
 * can run without blocking the commit path. */
rocksdb_column_family_handle_t **store_all_cfs(struct store *st, size_t *n);
/* Adds a handle the table then owns. Caller holds table_lock. 0 or -1 (ENOMEM). */
int store_table_insert(struct store *st, uint32_t source_id,
		       rocksdb_column_family_handle_t *cf);

/* The commit log's key of sequence number seq. */
void store_log_key(uint8_t key[STORE_LOG_KEY_LEN], uint64_t seq);

#endif
