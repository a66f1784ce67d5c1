/*
 * codec.h - the on-disk format of records: what the bytes of a record key and of a
 * bucket value mean, and the last-write-wins fold the merge operator applies to
 * them. Pure functions over caller-owned memory; no RocksDB, no I/O, no logging
 * (codec_merge alone allocates: its result).
 */
#ifndef TEMPORIS_CODEC_H
#define TEMPORIS_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "temporis/data/record.h"

/*
 * Format "2" (stored by the store as its format marker).
 *
 * Records are stored per time bucket of 2^CODEC_BUCKET_BITS seconds, so one group
 * commit writes one merge operand per (source, series, bucket) instead of one per
 * record. bucket(ts) = ts with the low CODEC_BUCKET_BITS bits cleared (a floor,
 * also for negative ts); offset = ts - bucket(ts).
 *   key   = series name | 0x00 | big-endian(bucket XOR sign bit)
 *   value = entries sorted by strictly increasing offset, each CODEC_ENTRY_LEN bytes:
 *           offset u8 | version LE64 | type u8 | value 8 bytes (int64 LE / double bits)
 * Under a bytewise comparator one series is contiguous and time-ordered (negative
 * timestamps included) and "a" never mixes with "ab". Folding keeps, per offset, the
 * entry with the highest version (ties: the later one), so the outcome never depends
 * on the order merges are applied, flushed or compacted.
 *
 * The version high-water mark, stored next to the records, is CODEC_HWM_LEN bytes
 * of LE64.
 */
#define CODEC_FORMAT "2"
#define CODEC_BUCKET_BITS 8        /* 256-second buckets */
#define CODEC_BUCKET_SPAN (1u << CODEC_BUCKET_BITS)
#define CODEC_ENTRY_LEN 18         /* one record inside a bucket value */
#define CODEC_VALUE_MAX (CODEC_BUCKET_SPAN * CODEC_ENTRY_LEN)
#define CODEC_KEY_SUFFIX_LEN 9     /* separator + big-endian bucket */
#define CODEC_KEY_MAX (REC_NAME_MAX + CODEC_KEY_SUFFIX_LEN)
#define CODEC_HWM_LEN 8

/* ---- time buckets ---- */

int64_t codec_bucket(int64_t ts);
uint8_t codec_offset(int64_t ts);

/* ---- keys (dst has room for CODEC_KEY_MAX bytes; name_len <= REC_NAME_MAX) ---- */

/* The key of (name, bucket); returns its length. */
size_t codec_key_encode(uint8_t *dst, const char *name, size_t name_len, int64_t bucket);
/* Name length of a record key, or -1 if the bytes are not one. */
ssize_t codec_key_name_len(const uint8_t *key, size_t klen);
/* The bucket of a record key (codec_key_name_len accepted it). */
int64_t codec_key_bucket(const uint8_t *key, size_t klen);
/* name | 0x00 | 0xFF..: no key of the series is greater. Returns its length. */
size_t codec_key_series_max(uint8_t *dst, const char *name, size_t name_len);
/* name | 0x01: greater than every key of the series, smaller than any other
 * name's keys that sort after it. Returns its length. */
size_t codec_key_series_end(uint8_t *dst, const char *name, size_t name_len);

/* ---- entries (CODEC_ENTRY_LEN bytes) and bucket values ---- */

/* r's entry at version; r->ts gives the offset, the bucket lives in the key. */
void codec_entry_encode(uint8_t *dst, uint64_t version, const struct rec *r);
uint64_t codec_entry_version(const uint8_t *e);
/* Fills out->ts, type and v (not the name) from an entry of a checked value. */
void codec_entry_decode(const uint8_t *e, int64_t bucket, struct rec *out);

/* Number of entries of a well-formed bucket value, -1 for anything else: the
 * length, an unknown type, offsets not strictly increasing. */
ssize_t codec_value_entries(const uint8_t *val, size_t vlen);
/* Entry i of a value checked by codec_value_entries: out->ts, type and v. */
void codec_value_decode(const uint8_t *val, size_t i, int64_t bucket, struct rec *out);
/* The record at ts in the value of ts's bucket: 1 found (out filled as by
 * codec_entry_decode), 0 absent, -1 the value is not well formed. */
int codec_value_find(const uint8_t *val, size_t vlen, int64_t ts, struct rec *out);

/* ---- folding: last write wins by version, per offset ---- */

#define CODEC_WORD_BITS 64
#define CODEC_SLOT_WORDS (CODEC_BUCKET_SPAN / CODEC_WORD_BITS)

/*
 * The winner per offset of one bucket while entries are offered oldest to newest:
 * the merge operator and the batch use the same table, so a bucket folded in a
 * batch equals the same records merged one by one. The table points into the
 * offered entries, which must outlive it until the drain. Only `used` needs
 * clearing (codec_slots_reset); entry[o] is read only when bit o of used is set.
 */
struct codec_slots {
	uint64_t used[CODEC_SLOT_WORDS];
	const uint8_t *entry[CODEC_BUCKET_SPAN];
};

void codec_slots_reset(struct codec_slots *t);
/* Entries must be offered oldest first: on equal versions the later one wins. */
void codec_slots_offer(struct codec_slots *t, const uint8_t *e);
/* Offers every entry of a value; -1 (nothing offered) if it is not well formed. */
int codec_slots_offer_value(struct codec_slots *t, const uint8_t *val, size_t vlen);
/* Number of offsets that hold a winner. */
size_t codec_slots_count(const struct codec_slots *t);
/* Writes the winners in offset order (a well-formed value, up to CODEC_VALUE_MAX
 * bytes) and empties the table; returns the bytes written. */
size_t codec_slots_drain(struct codec_slots *t, uint8_t *dst);

/*
 * What the merge operator does: folds existing (NULL if none) and ops[0..nops),
 * oldest first, into one value in O(n + CODEC_BUCKET_SPAN), without sorting.
 * 0 with *out (malloc'd, the caller frees) and *out_len; an empty input gives
 * *out NULL and *out_len 0. -1 with errno EINVAL (a value or operand is not well
 * formed) or ENOMEM; then *out is NULL.
 */
int codec_merge(const char *existing, size_t existing_len, const char *const *ops,
		const size_t *op_lens, size_t nops, uint8_t **out, size_t *out_len);

/* ---- the version high-water mark ---- */

void codec_hwm_encode(uint8_t dst[CODEC_HWM_LEN], uint64_t hwm);
/* 0, or -1 if vlen is not CODEC_HWM_LEN. */
int codec_hwm_decode(const uint8_t *val, size_t vlen, uint64_t *hwm);

#endif
