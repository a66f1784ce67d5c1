/*
 * store.h - RocksDB storage, owned by the writer process alone.
 *
 * One column family per data source ("src_<id>"), one "catalog" column family,
 * and the default family for store metadata (the version high-water mark and the
 * on-disk format marker "format" = CODEC_FORMAT).
 *
 * Records are stored in the format of codec.h (one key per series and time
 * bucket); every family's merge operator folds operands as codec_merge does.
 *
 * Thread safety: the commit path (batch_*) runs on one thread; reads, catalog access
 * and source creation may run concurrently on others.
 */
#ifndef TEMPORIS_STORE_H
#define TEMPORIS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "temporis/base/config.h"
#include "temporis/data/record.h"

struct store;
struct store_batch;

/*
 * Open or create dir; every existing column family is reopened with the merge operator.
 * A new database gets the format marker (synced); an existing one without it (an
 * older temporisd's) is refused with an err that says so.
 */
int store_open(const char *dir, enum cfg_sync sync, struct store **out, char *err, size_t errlen);
void store_close(struct store *st);

/* Create the column family of a data source; 0 if created or already there. */
int store_source_create(struct store *st, uint32_t source_id, char *err, size_t errlen);
bool store_source_exists(struct store *st, uint32_t source_id);

/* Highest version ever committed (persisted; 0 on a new store). */
uint64_t store_version_hwm(struct store *st);

struct store_batch *store_batch_new(void);
void store_batch_free(struct store_batch *b);
void store_batch_clear(struct store_batch *b);
/* Queue a last-write-wins merge of r; -1 if source_id has no column family. */
int store_batch_merge(struct store *st, struct store_batch *b, uint32_t source_id,
		      uint64_t version, const struct rec *r);
/* Number of records queued since the last clear. */
size_t store_batch_count(const struct store_batch *b);
/*
 * Number of merge operands the batch writes: one per (source, series, bucket).
 * Valid once the batch has been committed (0 before that, and after a clear).
 */
size_t store_batch_operands(const struct store_batch *b);
/*
 * Write the batch atomically (WAL on; fsync'd when the store was opened with
 * CFG_SYNC_FSYNC), together with the new version high-water mark. The batch is
 * left intact; clear it before reuse. 0 or -1 with err.
 */
int store_batch_commit(struct store *st, struct store_batch *b, char *err, size_t errlen);

/* Point read: 1 found (out->ts/type/v filled, out->name untouched), 0 absent, -1 error. */
int store_get(struct store *st, uint32_t source_id, const char *name, size_t name_len,
	      int64_t ts, struct rec *out);

/* Called per record in time order; return non-zero to stop early. */
typedef int (*store_rec_cb)(const struct rec *r, void *arg);
/*
 * Records of one series with start <= ts < end, at most limit of them, ascending.
 * *more is set when records remain in range after the last one given, and then
 * *next_ts is the timestamp to resume from (use it as the next start).
 * 0 or -1 (unknown source or storage error).
 */
int store_scan(struct store *st, uint32_t source_id, const char *name, size_t name_len,
	       int64_t start, int64_t end, uint32_t limit, store_rec_cb cb, void *arg,
	       bool *more, int64_t *next_ts);

/* Called per series in name order with its first and last timestamp. Non-zero stops. */
typedef int (*store_series_cb)(const char *name, size_t name_len, int64_t first,
			       int64_t last, void *arg);
int store_series(struct store *st, uint32_t source_id, store_series_cb cb, void *arg);

/* Catalog column family: small key/value records, every write synced. */
int store_catalog_put(struct store *st, const char *key, size_t klen, const char *val,
		      size_t vlen, char *err, size_t errlen);
typedef int (*store_kv_cb)(const char *key, size_t klen, const char *val, size_t vlen,
			   void *arg);
/* Every catalog record whose key starts with prefix, in key order. Non-zero from cb stops. */
int store_catalog_scan(struct store *st, const char *prefix, store_kv_cb cb, void *arg);

/* Maintenance (tests, backup). */
int store_flush(struct store *st);
int store_compact(struct store *st);
/* An integer RocksDB property of a source's family, e.g.
 * "rocksdb.num-entries-active-mem-table". 0 or -1 (unknown source or property). */
int store_source_property_int(struct store *st, uint32_t source_id, const char *prop,
			      uint64_t *out);
/* A consistent RocksDB checkpoint into dir (which must not exist) while writes go on. */
int store_checkpoint(struct store *st, const char *dir, char *err, size_t errlen);

#endif
