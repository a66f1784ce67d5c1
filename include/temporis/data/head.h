/*
 * head.h - the records committed since the last seal, in memory.
 *
 * Every committed request is first written to the store's log column family (one
 * key per request), so that a commit costs RocksDB one key, not one per record.
 * The head holds the same records grouped per (source, series, bucket), ready to
 * be sealed: each group becomes one compressed merge operand (chunk.h) of its
 * record key, written together with the deletion of the log it came from. Reads
 * fold the head's entries over what RocksDB holds, by version.
 *
 * A head is not thread-safe: the store guards the active one with its lock; a
 * frozen head (being sealed) is only read.
 */
#ifndef TEMPORIS_DATA_HEAD_H
#define TEMPORIS_DATA_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "temporis/data/chunk.h"

struct head;

struct head *head_new(void);
void head_free(struct head *h);
/* Forget every record, keeping the memory for reuse. */
void head_clear(struct head *h);

/*
 * Add one record of source_id with its version; bucket and offset are the
 * caller's (the store's bucket rule). 0, or -1 when memory runs out (the head
 * is then unchanged by this call).
 */
int head_add(struct head *h, uint32_t source_id, const char *name, size_t name_len,
	     int64_t bucket, const struct chunk_entry *e);

/* One record for head_add_many; hash is the head's scratch. */
struct head_item {
	const char *name;
	uint16_t name_len;
	int64_t bucket;
	struct chunk_entry e;
	uint64_t hash;
};

/*
 * Add n records of source_id at once (faster: their lookups overlap). 0, or -1
 * when memory runs out, and then nothing of them was added.
 */
int head_add_many(struct head *h, uint32_t source_id, struct head_item *items, size_t n);

/* Records added, and series groups (source, series, bucket) they fall in. */
size_t head_records(const struct head *h);
size_t head_groups(const struct head *h);
/* Approximate heap bytes held. */
size_t head_bytes(const struct head *h);

/*
 * A mark before a commit's records are added; rollback removes everything added
 * since (the commit failed). Marks do not nest; head_mark also ends the last one.
 */
void head_mark(struct head *h);
void head_rollback(struct head *h);
/* Groups that records added since the mark fell in (new ones and old ones). */
size_t head_groups_since_mark(const struct head *h);

/* ---- reads ---- */

/* The entries of one (source, series, bucket) in the order added; NULL when none. */
typedef void (*head_entry_cb)(const struct chunk_entry *e, void *arg);
bool head_each_entry(const struct head *h, uint32_t source_id, const char *name,
		     size_t name_len, int64_t bucket, head_entry_cb cb, void *arg);

/*
 * The buckets of one series within [lo, hi], ascending, into out (room for cap);
 * returns how many there are (possibly more than cap: call again with more room).
 */
size_t head_buckets(const struct head *h, uint32_t source_id, const char *name,
		    size_t name_len, int64_t lo, int64_t hi, int64_t *out, size_t cap);

/* Every series of source_id in the head, in no particular order, with the first
 * and last timestamp it holds. Non-zero from cb stops. */
typedef int (*head_series_cb)(const char *name, size_t name_len, int64_t first_ts,
			      int64_t last_ts, void *arg);
int head_each_series(const struct head *h, uint32_t source_id, head_series_cb cb, void *arg);

/* The hash of a series (source, name) the head's table uses; shared with the
 * sealer's index cache, which keys the same pairs. */
uint64_t head_name_hash(uint32_t source_id, const char *name, size_t len);

/* ---- sealing ---- */

/*
 * Every group in (source_id, series name, bucket) order, i.e. RocksDB key order
 * within each source, its entries folded last-write-wins (highest version; ties:
 * the later) into ascending offsets. out is scratch for 2 * span entries. Non-zero
 * from cb stops and is returned (-1 also when memory runs out). One sealer at a time.
 */
typedef int (*head_group_cb)(uint32_t source_id, const char *name, size_t name_len,
			     int64_t bucket, const struct chunk_entry *entries, size_t n,
			     void *arg);
int head_each_group(struct head *h, struct chunk_entry *out, size_t span, head_group_cb cb,
		    void *arg);

#endif
