/*
 * codec.h - the on-disk format of records: what the bytes of a record key and of a
 * bucket value mean, and the last-write-wins fold the merge operator applies to
 * them. Pure functions over caller-owned memory; no RocksDB, no I/O, no logging
 * (codec_merge alone allocates: its result).
 */
#ifndef TEMPORIS_CODEC_H
#define TEMPORIS_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "temporis/data/chunk.h"
#include "temporis/data/record.h"

/*
 * Format "3" (stored by the store as its format marker; a format "2" store is
 * migrated when it opens).
 *
 * Records are stored per time bucket of 2^CODEC_BUCKET_BITS seconds, and buckets per
 * partition of 2^CODEC_PARTITION_BITS seconds. bucket(ts) and partition(ts) clear the
 * low bits of ts (a floor, also for negative ts); the offset is ts - bucket(ts).
 *   record key = 0x01 | BE64(partition XOR sign bit) | name | 0x00 | u8 bucket index
 *                (the bucket's place in its partition)
 *   value      = one chunk (chunk.h): the bucket's entries (offset, version, type,
 *                value bits) in strictly increasing offset order, compressed
 *   index key  = 0x02 | name: the first and the last partition the series has records
 *                in (LE64 each), kept by the merge operator as (min, max)
 * Under a bytewise comparator a partition's keys are contiguous, so data that
 * arrives in time order lands at the end of the key space and compactions do not
 * rewrite what is older; within a partition a series is contiguous and
 * time-ordered and "a" never mixes with "ab". A partition is one bucket: a seal's
 * file then overlaps what is already stored only in the newest bucket, whatever the
 * number of series, so compaction rewrites a bucket while it fills and then never
 * again (with 64-bucket partitions it rewrote the whole partition at every seal:
 * compaction debt grew without bound under sustained load, scripts/bench
 * --sustained). The bucket index byte stays, always 0, so the width can change. Every merge operand of a record key is
 * a chunk too. Folding keeps, per offset, the entry with the highest version (ties:
 * the later one), so the outcome never depends on the order merges are applied,
 * flushed or compacted.
 *
 * Format "2" stored name | 0x00 | BE64(bucket XOR sign bit) with plain values of
 * CODEC_LEGACY_ENTRY_LEN bytes per entry (offset u8 | version LE64 | type u8 | value
 * 8 bytes); such keys start with a name's first byte, never 0x01 or 0x02.
 * codec_legacy_* reads them for the migration, and the merge operator folds them by
 * their old rules until it has run.
 *
 * The version high-water mark, stored next to the records, is CODEC_HWM_LEN bytes
 * of LE64.
 */
#define CODEC_FORMAT "3"
#define CODEC_FORMAT_LEGACY "2"
#define CODEC_MERGE_NAME "temporis.lww.v3"
#define CODEC_BUCKET_BITS 10       /* 1024-second buckets */
#define CODEC_BUCKET_SPAN (1u << CODEC_BUCKET_BITS)
#define CODEC_PARTITION_BITS 10    /* 1024-second partitions: one bucket each */
#define CODEC_LEGACY_ENTRY_LEN 18
#define CODEC_KEY_RECORD 0x01
#define CODEC_KEY_INDEX 0x02
/* tag + partition, then name, then separator + bucket index */
#define CODEC_KEY_PREFIX_LEN 9
#define CODEC_KEY_SUFFIX_LEN 2
#define CODEC_KEY_MAX (CODEC_KEY_PREFIX_LEN + REC_NAME_MAX + CODEC_KEY_SUFFIX_LEN)
#define CODEC_LEGACY_KEY_SUFFIX_LEN 9
#define CODEC_INDEX_VALUE_LEN 16
#define CODEC_HWM_LEN 8

/* ---- time buckets and partitions ---- */

int64_t codec_bucket(int64_t ts);
uint16_t codec_offset(int64_t ts);
int64_t codec_partition(int64_t ts);

/* ---- record keys (dst has room for CODEC_KEY_MAX bytes; name_len <= REC_NAME_MAX) ---- */

/* The key of (name, bucket); returns its length. */
size_t codec_key_encode(uint8_t *dst, const char *name, size_t name_len, int64_t bucket);
/* Name length of a record key, or -1 if the bytes are not one. */
ssize_t codec_key_name_len(const uint8_t *key, size_t klen);
/* The name, partition and bucket of a record key (codec_key_name_len accepted it). */
const char *codec_key_name(const uint8_t *key);
int64_t codec_key_partition(const uint8_t *key);
int64_t codec_key_bucket(const uint8_t *key, size_t klen);
/* The first key of a partition (every record key of it is >= this). Returns 9. */
size_t codec_key_partition_start(uint8_t *dst, int64_t partition);
/* 0x01 | partition | name | 0x00: every key of the series in that partition starts
 * with it, and no other key does. Returns its length. */
size_t codec_key_series_prefix(uint8_t *dst, int64_t partition, const char *name,
			       size_t name_len);
/* The first byte after every record key: an iterator's upper bound. */
size_t codec_key_records_end(uint8_t *dst);

/* ---- the series index ---- */

/* 0x02 | name; returns its length. */
size_t codec_index_key(uint8_t *dst, const char *name, size_t name_len);
/* Name length of an index key, or -1 if the bytes are not one. */
ssize_t codec_index_name_len(const uint8_t *key, size_t klen);
void codec_index_encode(uint8_t dst[CODEC_INDEX_VALUE_LEN], int64_t first, int64_t last);
/* 0, or -1 if the value is not one. */
int codec_index_decode(const uint8_t *val, size_t vlen, int64_t *first, int64_t *last);

/* ---- format "2" keys ---- */

/* A format "2" record key: 1 and its name length and bucket, 0 if it is not one. */
int codec_legacy_key(const uint8_t *key, size_t klen, size_t *name_len, int64_t *bucket);

/* ---- entries and bucket values ---- */

/* r's entry at version: its offset in its bucket, its type and value bits. */
void codec_entry_of(const struct rec *r, uint64_t version, struct chunk_entry *e);
/* Fills out->ts, type and v (not the name) from an entry of bucket. */
void codec_rec_of(const struct chunk_entry *e, int64_t bucket, struct rec *out);

/* Bytes a value of n entries may take (codec_value_encode's room). */
size_t codec_value_bound(size_t n);
/* The value of entries e[0..n) (n >= 1, offsets strictly increasing). */
size_t codec_value_encode(const struct chunk_entry *e, size_t n, uint8_t *dst);
/* Decode a value into out (CODEC_BUCKET_SPAN entries of room): the entry count,
 * or -1 if the bytes are not one well-formed value of this format. */
ssize_t codec_value_decode(const uint8_t *val, size_t vlen, struct chunk_entry *out);
/* The record at ts in the value of ts's bucket: 1 found (out filled as by
 * codec_rec_of), 0 absent, -1 the value is not well formed. */
int codec_value_find(const uint8_t *val, size_t vlen, int64_t ts, struct rec *out);
/* A format "2" value, for the migration: the entry count, or -1. */
ssize_t codec_legacy_decode(const uint8_t *val, size_t vlen, struct chunk_entry *out);

/* ---- folding: last write wins by version, per offset ---- */

#define CODEC_WORD_BITS 64
#define CODEC_SLOT_WORDS (CODEC_BUCKET_SPAN / CODEC_WORD_BITS)

/*
 * The winner per offset of one bucket while entries are offered oldest to newest
 * (chunk_fold over a bucket's span). The merge operator, the sealer and the reads
 * use the same rule. Initialise with codec_fold_init; never copy one.
 */
struct codec_fold {
	uint64_t used[CODEC_SLOT_WORDS];
	struct chunk_entry slots[CODEC_BUCKET_SPAN];
	struct chunk_fold f;
};

void codec_fold_init(struct codec_fold *f);
/* Entries must be offered oldest first: on equal versions the later one wins. */
void codec_fold_offer(struct codec_fold *f, const struct chunk_entry *e);
/* Offers every entry of a value (legacy: of format "2"); -1 (nothing offered) if
 * it is not well formed. */
int codec_fold_offer_value(struct codec_fold *f, const uint8_t *val, size_t vlen, bool legacy);
/* Number of offsets that hold a winner. */
size_t codec_fold_count(const struct codec_fold *f);
/* Writes the winners in offset order into out (CODEC_BUCKET_SPAN of room) and
 * empties the fold; returns how many. */
size_t codec_fold_drain(struct codec_fold *f, struct chunk_entry *out);

/*
 * What the merge operator does for a record key: folds existing (NULL if none) and
 * ops[0..nops), oldest first, into one value (of this format; legacy: format "2"
 * values and operands, as a format "2" key holds). 0 with *out (malloc'd, the caller
 * frees) and *out_len; an empty input gives *out NULL and *out_len 0. -1 with errno
 * EINVAL (a value or operand is not well formed) or ENOMEM; then *out is NULL.
 */
int codec_merge(const char *existing, size_t existing_len, const char *const *ops,
		const size_t *op_lens, size_t nops, bool legacy, uint8_t **out, size_t *out_len);
/* The same for an index key: the widest (first, last) of all. */
int codec_index_merge(const char *existing, size_t existing_len, const char *const *ops,
		      const size_t *op_lens, size_t nops, uint8_t **out, size_t *out_len);
/* Whether val is a well-formed value or operand of what the key is. */
bool codec_value_ok(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen);
/* Merge by what the key is: record, index, or format "2" record. */
int codec_merge_key(const uint8_t *key, size_t klen, const char *existing, size_t existing_len,
		    const char *const *ops, const size_t *op_lens, size_t nops, uint8_t **out,
		    size_t *out_len);

/* ---- the version high-water mark ---- */

void codec_hwm_encode(uint8_t dst[CODEC_HWM_LEN], uint64_t hwm);
/* 0, or -1 if vlen is not CODEC_HWM_LEN. */
int codec_hwm_decode(const uint8_t *val, size_t vlen, uint64_t *hwm);

#endif
