/*
 * store_batch.h - the writer's group commit. The requests queued in a batch are
 * written atomically, each as one entry of the commit log, together with the new
 * version high-water mark; their records then sit in the store's head, which reads
 * see at once, until the sealer writes them into their sources' families as one
 * compressed merge operand per (source, series, bucket) (store_core.h).
 *
 * A batch is used by one thread at a time; its owner frees it with store_batch_free.
 */
#ifndef TEMPORIS_STORE_BATCH_H
#define TEMPORIS_STORE_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "temporis/data/record.h"
#include "temporis/data/store.h"

struct store_batch;

struct store_batch *store_batch_new(void);
void store_batch_free(struct store_batch *b);
void store_batch_clear(struct store_batch *b);
/*
 * Queue one request: count records packed in the wire form of record.h, all at
 * version. The bytes are borrowed until the commit. 0, or -1 with nothing queued
 * (errno EINVAL: no column family for source_id, or the bytes are not exactly
 * count valid records; ENOMEM).
 */
int store_batch_add(struct store *st, struct store_batch *b, uint32_t source_id,
		    uint64_t version, const uint8_t *packed, size_t len, uint32_t count);
/* Queue a last-write-wins merge of one record; -1 if source_id has no column family. */
int store_batch_merge(struct store *st, struct store_batch *b, uint32_t source_id,
		      uint64_t version, const struct rec *r);
/* Number of records queued since the last clear. */
size_t store_batch_count(const struct store_batch *b);
/*
 * Number of merge operands the batch's records become when sealed: one per
 * (source, series, bucket). Valid once the batch has been committed (0 before that,
 * and after a clear).
 */
size_t store_batch_operands(const struct store_batch *b);
/*
 * Write the batch atomically (WAL on; fsync'd when the store was opened with
 * CFG_SYNC_FSYNC), together with the new version high-water mark. The batch is
 * left intact; clear it before reuse. 0, or -1 with err (nothing of it
 * acknowledged), or STORE_NOSPACE with err when the filesystem had no room: then
 * RocksDB refuses every later write too, until the store is closed and opened
 * again with space free.
 */
#define STORE_NOSPACE (-2)
int store_batch_commit(struct store *st, struct store_batch *b, char *err, size_t errlen);

#endif
