/*
 * store_batch.h - the writer's group commit: records queued in a batch are folded
 * per (source, series, bucket) into one merge operand each (codec.h) and written
 * atomically with the new version high-water mark.
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

#endif
