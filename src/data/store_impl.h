/*
 * store_impl.h - private to src/data/store*.c: the struct store behind the handle
 * of store.h and what its files share: source lookup, RocksDB error reporting, the
 * commit log's format, and the head (records since the last seal) with the
 * sealer's hand-off and the readers' grace period. Nothing else includes it.
 */
#ifndef TEMPORIS_STORE_IMPL_H
#define TEMPORIS_STORE_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rocksdb/c.h>

#include "temporis/data/codec.h"
#include "temporis/data/head.h"
#include "temporis/data/store.h"

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

struct source_cf {
	uint32_t id;
	rocksdb_column_family_handle_t *cf;
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

/* The options of st (store_options.c): 0, or -1 when out of memory. */
int store_options_init(struct store *st, enum cfg_sync sync);

/* The column family of a source, or NULL if it has none. Any thread. */
rocksdb_column_family_handle_t *store_source_cf(struct store *st, uint32_t source_id);

/* Reports a RocksDB error string (if any) as "what: error" and frees it; returns -1
 * if there was one, else 0. */
int store_take_rerr(char *rerr, const char *what, char *err, size_t errlen);

/* -1 (and logs "store: what: error") if the iterator stopped on an error rather
 * than at the end, else 0. */
int store_iter_status(rocksdb_iterator_t *it, const char *what);

/* Flush every family's memtable and wait (no seal first). 0 or -1. */
int store_flush_all(struct store *st);
/* Every source family's handle and the count, copied under the table lock; the
 * caller frees the array. NULL when out of memory. */
rocksdb_column_family_handle_t **store_source_cfs(struct store *st, size_t *n);

/* ---- the migration from format "2" (store_migrate.c) ---- */

/* Rewrite every record family in this format and then set the marker. */
int store_migrate(struct store *st, const char *dir, char *err, size_t errlen);

/* ---- the log (store_head.c) ---- */

void store_log_key(uint8_t key[STORE_LOG_KEY_LEN], uint64_t seq);
/*
 * Every record of packed[0..len) (count records of the wire form) as a head entry
 * of source_id at version: 0, -1 if the bytes do not hold exactly count valid
 * records (nothing added), -2 if memory ran out (some may have been added: roll back).
 */
int store_head_add_records(struct head *h, uint32_t source_id, uint64_t version,
			   const uint8_t *packed, size_t len, uint32_t count);

/* ---- the head and the sealer (store_head.c) ---- */

int store_heads_init(struct store *st, char *err, size_t errlen);
/* Fold the log left by the last run into the active head (at open). */
int store_heads_replay(struct store *st, char *err, size_t errlen);
int store_sealer_start(struct store *st, char *err, size_t errlen);
/* Seal what is left (unless seals are failing) and stop the sealer; then free. */
void store_heads_close(struct store *st);
void store_heads_free(struct store *st);
/* The commit thread committed log_bytes into the active head (it holds the lock). */
void store_heads_committed(struct store *st, uint64_t log_bytes);
/* The commit thread waits here while the head is full and a seal still runs. */
void store_heads_wait_room(struct store *st);

/* The heads' and the sealer's part of store_stats. */
void store_heads_stats(struct store *st, struct store_stats *out);

/* A reader's hold on the heads for the duration of a scan. */
unsigned store_read_begin(struct store *st);
void store_read_end(struct store *st, unsigned epoch);
/*
 * Fold the heads' entries of one bucket (the frozen head's, then the active one's)
 * into f. True if any was found. Takes the heads' lock itself.
 */
bool store_heads_fold(struct store *st, uint32_t source_id, const char *name, size_t len,
		      int64_t bucket, struct codec_fold *f);

/* ---- the series index (store_index.c) ---- */

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

/* ---- writing a frozen head out (store_seal.c) ---- */

/* Files a seal builds in the database directory and ingests; left over by a crash,
 * they are removed at open. */
#define STORE_SEAL_FILE_PREFIX "seal-"
#define STORE_SEAL_FILE_SUFFIX ".sst"

/*
 * Write head h into the source families, then delete the log it covers (family
 * log, below log_end) and flush that family. 0, or -1 with err set: nothing is
 * lost, the log still holds it all, and sealing the same head again is harmless.
 */
int store_seal_head(struct store *st, struct head *h, unsigned log, uint64_t log_end,
		    char *err, size_t errlen);

/* The series' buckets in [lo, hi] in the heads, ascending and unique (malloc'd). */
int store_heads_buckets(struct store *st, uint32_t source_id, const char *name, size_t len,
			int64_t lo, int64_t hi, int64_t **out, size_t *n);

/* A source's series in the heads, in key order, each with its first and last
 * timestamp there; free with store_heads_series_free. 0 or -1 (out of memory). */
struct head_series {
	char *name;
	size_t len;
	int64_t first, last;
};
int store_heads_series(struct store *st, uint32_t source_id, struct head_series **out,
		       size_t *n);
void store_heads_series_free(struct head_series *s, size_t n);

#endif
