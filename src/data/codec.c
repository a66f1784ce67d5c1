/*
 * codec.c - the on-disk format of records (codec.h): time buckets, record keys,
 * bucket entries and values, the per-offset last-write-wins fold, and the version
 * high-water mark. The single place that knows what stored bytes mean; pure
 * functions, unit-tested without RocksDB (tests/unit/test_codec.c).
 */
#include "temporis/data/codec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CODEC_U64_LEN 8
#define CODEC_BITS_PER_BYTE 8
#define CODEC_TOP_SHIFT ((CODEC_U64_LEN - 1) * CODEC_BITS_PER_BYTE)
#define CODEC_SEP_LEN 1
#define CODEC_NAME_SEP 0x00
#define CODEC_NAME_AFTER 0x01 /* separator + 1: sorts past every key of a series */
#define CODEC_KEY_BYTE_MAX 0xFF
#define CODEC_TS_FLIP 0x8000000000000000ull
#define CODEC_OFFSET_MASK ((uint64_t)CODEC_BUCKET_SPAN - 1)

/* Where the fields of an entry start. */
#define CODEC_ENTRY_OFFSET_OFF 0
#define CODEC_ENTRY_VERSION_OFF 1
#define CODEC_ENTRY_TYPE_OFF 9
#define CODEC_ENTRY_PAYLOAD_OFF 10

_Static_assert(CODEC_ENTRY_PAYLOAD_OFF + CODEC_U64_LEN == CODEC_ENTRY_LEN,
	       "an entry ends with its 8-byte value");
_Static_assert(CODEC_SEP_LEN + CODEC_U64_LEN == CODEC_KEY_SUFFIX_LEN,
	       "a key ends with the separator and the bucket");
_Static_assert(CODEC_HWM_LEN == CODEC_U64_LEN, "the high-water mark is one LE64");
_Static_assert(CODEC_BUCKET_SPAN - 1 <= UINT8_MAX, "an offset fits its byte");

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < CODEC_U64_LEN; i++)
		p[i] = (uint8_t)(v >> (CODEC_BITS_PER_BYTE * i));
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < CODEC_U64_LEN; i++)
		v |= (uint64_t)p[i] << (CODEC_BITS_PER_BYTE * i);
	return v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < CODEC_U64_LEN; i++)
		p[i] = (uint8_t)(v >> (CODEC_TOP_SHIFT - CODEC_BITS_PER_BYTE * i));
}

static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < CODEC_U64_LEN; i++)
		v = (v << CODEC_BITS_PER_BYTE) | p[i];
	return v;
}

/* ---- time buckets ---- */

/* Clearing low bits of the two's complement form floors, negative ts included. */
int64_t codec_bucket(int64_t ts)
{
	return (int64_t)((uint64_t)ts & ~CODEC_OFFSET_MASK);
}

uint8_t codec_offset(int64_t ts)
{
	return (uint8_t)((uint64_t)ts & CODEC_OFFSET_MASK);
}

/* ---- keys ---- */

/* Flipping the sign bit makes big-endian byte order equal signed numeric order. */
size_t codec_key_encode(uint8_t *dst, const char *name, size_t name_len, int64_t bucket)
{
	memcpy(dst, name, name_len);
	dst[name_len] = CODEC_NAME_SEP;
	put_be64(dst + name_len + CODEC_SEP_LEN, (uint64_t)bucket ^ CODEC_TS_FLIP);
	return name_len + CODEC_KEY_SUFFIX_LEN;
}

ssize_t codec_key_name_len(const uint8_t *key, size_t klen)
{
	size_t nl;

	if (klen <= CODEC_KEY_SUFFIX_LEN || klen > CODEC_KEY_MAX)
		return -1;
	nl = klen - CODEC_KEY_SUFFIX_LEN;
	if (key[nl] != CODEC_NAME_SEP)
		return -1;
	return (ssize_t)nl;
}

int64_t codec_key_bucket(const uint8_t *key, size_t klen)
{
	return (int64_t)(get_be64(key + klen - CODEC_U64_LEN) ^ CODEC_TS_FLIP);
}

size_t codec_key_series_max(uint8_t *dst, const char *name, size_t name_len)
{
	memcpy(dst, name, name_len);
	dst[name_len] = CODEC_NAME_SEP;
	memset(dst + name_len + CODEC_SEP_LEN, CODEC_KEY_BYTE_MAX, CODEC_U64_LEN);
	return name_len + CODEC_KEY_SUFFIX_LEN;
}

size_t codec_key_series_end(uint8_t *dst, const char *name, size_t name_len)
{
	memcpy(dst, name, name_len);
	dst[name_len] = CODEC_NAME_AFTER;
	return name_len + CODEC_SEP_LEN;
}

/* ---- entries and values ---- */

void codec_entry_encode(uint8_t *dst, uint64_t version, const struct rec *r)
{
	uint64_t bits;

	memcpy(&bits, &r->v, sizeof(bits));
	dst[CODEC_ENTRY_OFFSET_OFF] = codec_offset(r->ts);
	put_le64(dst + CODEC_ENTRY_VERSION_OFF, version);
	dst[CODEC_ENTRY_TYPE_OFF] = r->type;
	put_le64(dst + CODEC_ENTRY_PAYLOAD_OFF, bits);
}

uint64_t codec_entry_version(const uint8_t *e)
{
	return get_le64(e + CODEC_ENTRY_VERSION_OFF);
}

void codec_entry_decode(const uint8_t *e, int64_t bucket, struct rec *out)
{
	uint64_t bits = get_le64(e + CODEC_ENTRY_PAYLOAD_OFF);

	out->ts = (int64_t)((uint64_t)bucket | e[CODEC_ENTRY_OFFSET_OFF]);
	out->type = e[CODEC_ENTRY_TYPE_OFF];
	memcpy(&out->v, &bits, sizeof(bits));
}

ssize_t codec_value_entries(const uint8_t *val, size_t vlen)
{
	size_t n = vlen / CODEC_ENTRY_LEN;

	if (vlen == 0 || vlen % CODEC_ENTRY_LEN != 0 || n > CODEC_BUCKET_SPAN)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *e = val + i * CODEC_ENTRY_LEN;

		if (e[CODEC_ENTRY_TYPE_OFF] != REC_INT && e[CODEC_ENTRY_TYPE_OFF] != REC_DOUBLE)
			return -1;
		if (i > 0 && e[CODEC_ENTRY_OFFSET_OFF] <=
				     e[CODEC_ENTRY_OFFSET_OFF - CODEC_ENTRY_LEN])
			return -1;
	}
	return (ssize_t)n;
}

void codec_value_decode(const uint8_t *val, size_t i, int64_t bucket, struct rec *out)
{
	codec_entry_decode(val + i * CODEC_ENTRY_LEN, bucket, out);
}

/* Entries are sorted by offset: a binary search. */
int codec_value_find(const uint8_t *val, size_t vlen, int64_t ts, struct rec *out)
{
	ssize_t n = codec_value_entries(val, vlen);
	uint8_t off = codec_offset(ts);
	size_t lo = 0, hi;

	if (n < 0)
		return -1;
	for (hi = (size_t)n; lo < hi;) {
		size_t mid = lo + (hi - lo) / 2;
		const uint8_t *e = val + mid * CODEC_ENTRY_LEN;

		if (e[CODEC_ENTRY_OFFSET_OFF] == off) {
			codec_entry_decode(e, codec_bucket(ts), out);
			return 1;
		}
		if (e[CODEC_ENTRY_OFFSET_OFF] < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* ---- folding ---- */

void codec_slots_reset(struct codec_slots *t)
{
	memset(t->used, 0, sizeof(t->used));
}

void codec_slots_offer(struct codec_slots *t, const uint8_t *e)
{
	unsigned off = e[CODEC_ENTRY_OFFSET_OFF];
	uint64_t bit = 1ull << (off % CODEC_WORD_BITS);
	uint64_t *word = &t->used[off / CODEC_WORD_BITS];

	if ((*word & bit) != 0 && codec_entry_version(t->entry[off]) > codec_entry_version(e))
		return;
	*word |= bit;
	t->entry[off] = e;
}

int codec_slots_offer_value(struct codec_slots *t, const uint8_t *val, size_t vlen)
{
	ssize_t n = codec_value_entries(val, vlen);

	if (n < 0)
		return -1;
	for (ssize_t i = 0; i < n; i++)
		codec_slots_offer(t, val + (size_t)i * CODEC_ENTRY_LEN);
	return 0;
}

size_t codec_slots_count(const struct codec_slots *t)
{
	size_t n = 0;

	for (unsigned w = 0; w < CODEC_SLOT_WORDS; w++)
		n += (size_t)__builtin_popcountll(t->used[w]);
	return n;
}

size_t codec_slots_drain(struct codec_slots *t, uint8_t *dst)
{
	size_t len = 0;

	for (unsigned w = 0; w < CODEC_SLOT_WORDS; w++) {
		while (t->used[w] != 0) {
			unsigned off = w * CODEC_WORD_BITS + (unsigned)__builtin_ctzll(t->used[w]);

			memcpy(dst + len, t->entry[off], CODEC_ENTRY_LEN);
			len += CODEC_ENTRY_LEN;
			t->used[w] &= t->used[w] - 1;
		}
	}
	return len;
}

int codec_merge(const char *existing, size_t existing_len, const char *const *ops,
		const size_t *op_lens, size_t nops, uint8_t **out, size_t *out_len)
{
	struct codec_slots t;
	size_t len;

	*out = NULL;
	*out_len = 0;
	codec_slots_reset(&t);
	if (existing != NULL &&
	    codec_slots_offer_value(&t, (const uint8_t *)existing, existing_len) != 0)
		goto corrupt;
	for (size_t i = 0; i < nops; i++)
		if (codec_slots_offer_value(&t, (const uint8_t *)ops[i], op_lens[i]) != 0)
			goto corrupt;
	len = codec_slots_count(&t) * CODEC_ENTRY_LEN;
	if (len == 0)
		return 0;
	if ((*out = malloc(len)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	*out_len = codec_slots_drain(&t, *out);
	return 0;
corrupt:
	errno = EINVAL;
	return -1;
}

/* ---- the version high-water mark ---- */

void codec_hwm_encode(uint8_t dst[CODEC_HWM_LEN], uint64_t hwm)
{
	put_le64(dst, hwm);
}

int codec_hwm_decode(const uint8_t *val, size_t vlen, uint64_t *hwm)
{
	if (vlen != CODEC_HWM_LEN)
		return -1;
	*hwm = get_le64(val);
	return 0;
}
