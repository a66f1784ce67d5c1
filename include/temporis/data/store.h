/*
 * store.h - RocksDB storage, owned by the writer process alone: open/close, the
 * data sources' column families, the version high-water mark, the catalog family
 * and maintenance. Batches are in store_batch.h, reads in store_read.h, and what
 * the stored bytes mean in codec.h.
 *
 * One column family per data source ("src_<id>"), one "catalog" column family,
 * and the default family for store metadata (the version high-water mark and the
 * on-disk format marker "format" = CODEC_FORMAT). Every family's merge operator
 * folds record operands as codec_merge does.
 *
 * Thread safety: the commit path (store_batch_*) runs on one thread; reads, catalog
 * access and source creation may run concurrently on others.
 */
#ifndef TEMPORIS_STORE_H
#define TEMPORIS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "temporis/base/config.h"

struct store;

/*
 * Open or create dir; every existing column family is reopened with the merge operator.
 * A new database gets the format marker (synced); an existing one without it (an
 * older temporisd's) is refused with an err that says so.
 */
int store_open(const char *dir, enum cfg_sync sync, struct store **out, char *err, size_t errlen);

/*
 * The commit log (RocksDB's write-ahead log) may end in a torn record after a crash:
 * that tail is dropped, as it was never acknowledged. Damage before the end is
 * refused (store_open fails with an err that names it and says what to do), unless
 * the flag below says to keep what precedes the damage and drop the rest.
 */
#define STORE_OPEN_ACCEPT_DATA_LOSS 1u
int store_open_ex(const char *dir, enum cfg_sync sync, unsigned flags, struct store **out,
		  char *err, size_t errlen);

/*
 * Now and then (the writer: about once a second): record what RocksDB's MANIFEST
 * holds by now in the control file outside RocksDB, against which the next open
 * checks it (a damaged MANIFEST is refused before RocksDB would delete the files it
 * no longer lists). A failure is logged, not returned.
 */
void store_maintain(struct store *st);
void store_close(struct store *st);

/* Create the column family of a data source; 0 if created or already there. */
int store_source_create(struct store *st, uint32_t source_id, char *err, size_t errlen);
bool store_source_exists(struct store *st, uint32_t source_id);

/*
 * Retention. A source's cutoff hides every record with a timestamp below it from
 * every read of store_read.h (points, scans, the series and their first
 * timestamps), records still in the head included: the one place the rule is
 * applied. STORE_NO_CUTOFF (the default of every source, also after an open) hides
 * nothing. The writer sets it from the catalog (daemon/retention.c). Any thread;
 * -1 for an unknown source.
 */
#define STORE_NO_CUTOFF INT64_MIN
int store_source_set_cutoff(struct store *st, uint32_t source_id, int64_t cutoff);
int64_t store_source_cutoff(struct store *st, uint32_t source_id);

/*
 * Deletes from disk every partition of the source wholly below cutoff (the keys
 * 0x01 | partition < codec_partition(cutoff): one contiguous range at the start of
 * its family): the SST files wholly inside it are dropped, one range delete covers
 * the rest, and a compaction of the range frees the bytes (it blocks: call it off
 * the commit path). Records at or above cutoff's partition are never touched, and
 * records the head seals later into the deleted range are left for the next call.
 * 0, or -1 with err (nothing acknowledged and not expired is lost either way; the
 * caller retries later). *freed gets the family's SST bytes before minus after.
 */
int store_source_trim(struct store *st, uint32_t source_id, int64_t cutoff, uint64_t *freed,
		      char *err, size_t errlen);

/* Highest version ever committed (persisted; 0 on a new store). */
uint64_t store_version_hwm(struct store *st);

/* Catalog column family: small key/value records, every write synced. */
int store_catalog_put(struct store *st, const char *key, size_t klen, const char *val,
		      size_t vlen, char *err, size_t errlen);
typedef int (*store_kv_cb)(const char *key, size_t klen, const char *val, size_t vlen,
			   void *arg);
/* Every catalog record whose key starts with prefix, in key order. Non-zero from cb stops. */
int store_catalog_scan(struct store *st, const char *prefix, store_kv_cb cb, void *arg);

/*
 * Seal now: every record committed before the call is written into its source's
 * family (and out of the commit log) when it returns 0; -1 if a seal failed (the
 * log keeps the records; the sealer retries).
 */
int store_seal(struct store *st);

/* What the commit log, the head and the sealer did since open, and RocksDB's state. */
struct store_stats {
	uint64_t head_records;         /* committed, not sealed yet */
	uint64_t seals, seal_failures; /* seals done, seals failed (each is retried) */
	uint64_t sealed_records;
	uint64_t seal_files;           /* files a seal built and ingested whole */
	uint64_t room_waits;           /* commits that waited for a seal to make room */
	/* RocksDB's, over every family */
	uint64_t sst_bytes;            /* live SST files */
	uint64_t pending_compaction_bytes;
	uint64_t memtable_bytes;
	uint64_t wal_bytes;            /* RocksDB's write-ahead log files (what a restart replays) */
	uint64_t write_stopped;        /* 1 while RocksDB stops writes */
	uint64_t delayed_write_rate;   /* bytes/s RocksDB slows writes to; 0 when it does not */
};
/* Walks every family: about once a second, not per commit. */
void store_stats_get(struct store *st, struct store_stats *out);

/* Maintenance (tests, backup): flush seals first. */
int store_flush(struct store *st);
int store_compact(struct store *st);
/* An integer RocksDB property of a source's family, e.g.
 * "rocksdb.num-entries-active-mem-table". 0 or -1 (unknown source or property). */
int store_source_property_int(struct store *st, uint32_t source_id, const char *prop,
			      uint64_t *out);
/* A consistent RocksDB checkpoint into dir (which must not exist) while writes go on. */
int store_checkpoint(struct store *st, const char *dir, char *err, size_t errlen);

#endif
