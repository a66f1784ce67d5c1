/*
 * codec.c - the on-disk format of records (codec.h): time buckets, record keys,
 * bucket values (chunks, chunk.c) and the format "2" values the migration reads,
 * the per-offset last-write-wins fold, and the version high-water mark. The single place that knows what stored bytes mean; pure
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
#define CODEC_TS_FLIP 0x8000000000000000ull
#define CODEC_OFFSET_MASK ((uint64_t)CODEC_BUCKET_SPAN - 1)
#define CODEC_PARTITION_MASK ((UINT64_C(1) << CODEC_PARTITION_BITS) - 1)

/* Where the fields of a format "2" entry start. */
#define LEGACY_OFFSET_OFF 0
#define LEGACY_VERSION_OFF 1
#define LEGACY_TYPE_OFF 9
#define LEGACY_PAYLOAD_OFF 10

_Static_assert(LEGACY_PAYLOAD_OFF + CODEC_U64_LEN == CODEC_LEGACY_ENTRY_LEN,
	       "a format 2 entry ends with its 8-byte value");
_Static_assert(1 + CODEC_U64_LEN == CODEC_KEY_PREFIX_LEN, "a key starts with tag and partition");
_Static_assert(CODEC_SEP_LEN + 1 == CODEC_KEY_SUFFIX_LEN,
	       "a key ends with the separator and the bucket index");
_Static_assert(CODEC_SEP_LEN + CODEC_U64_LEN == CODEC_LEGACY_KEY_SUFFIX_LEN,
	       "a format 2 key ends with the separator and the bucket");
_Static_assert(CODEC_PARTITION_BITS - CODEC_BUCKET_BITS <= 8, "a bucket index fits its byte");
_Static_assert(CODEC_HWM_LEN == CODEC_U64_LEN, "the high-water mark is one LE64");
_Static_assert(CODEC_BUCKET_SPAN - 1 <= CHUNK_OFFSET_MAX, "an offset fits a chunk entry");
_Static_assert(CODEC_BUCKET_SPAN % CODEC_WORD_BITS == 0, "the fold's bitmap covers the span");

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

/* ---- time buckets and partitions ---- */

/* Clearing low bits of the two's complement form floors, negative ts included. */
int64_t codec_bucket(int64_t ts)
{
	return (int64_t)((uint64_t)ts & ~CODEC_OFFSET_MASK);
}

uint16_t codec_offset(int64_t ts)
{
	return (uint16_t)((uint64_t)ts & CODEC_OFFSET_MASK);
}

int64_t codec_partition(int64_t ts)
{
	return (int64_t)((uint64_t)ts & ~CODEC_PARTITION_MASK);
}

/* ---- record keys ---- */

/* Flipping the sign bit makes big-endian byte order equal signed numeric order. */
size_t codec_key_partition_start(uint8_t *dst, int64_t partition)
{
	dst[0] = CODEC_KEY_RECORD;
	put_be64(dst + 1, (uint64_t)partition ^ CODEC_TS_FLIP);
	return CODEC_KEY_PREFIX_LEN;
}

size_t codec_key_series_prefix(uint8_t *dst, int64_t partition, const char *name,
			       size_t name_len)
{
	size_t n = codec_key_partition_start(dst, partition);

	memcpy(dst + n, name, name_len);
	dst[n + name_len] = CODEC_NAME_SEP;
	return n + name_len + CODEC_SEP_LEN;
}

size_t codec_key_encode(uint8_t *dst, const char *name, size_t name_len, int64_t bucket)
{
	size_t n = codec_key_series_prefix(dst, codec_partition(bucket), name, name_len);

	dst[n] = (uint8_t)(((uint64_t)bucket & CODEC_PARTITION_MASK) >> CODEC_BUCKET_BITS);
	return n + 1;
}

ssize_t codec_key_name_len(const uint8_t *key, size_t klen)
{
	size_t nl;

	if (klen <= CODEC_KEY_PREFIX_LEN + CODEC_KEY_SUFFIX_LEN || klen > CODEC_KEY_MAX ||
	    key[0] != CODEC_KEY_RECORD)
		return -1;
	nl = klen - CODEC_KEY_PREFIX_LEN - CODEC_KEY_SUFFIX_LEN;
	if (key[klen - CODEC_KEY_SUFFIX_LEN] != CODEC_NAME_SEP)
		return -1;
	return (ssize_t)nl;
}

const char *codec_key_name(const uint8_t *key)
{
	return (const char *)key + CODEC_KEY_PREFIX_LEN;
}

int64_t codec_key_partition(const uint8_t *key)
{
	return (int64_t)(get_be64(key + 1) ^ CODEC_TS_FLIP);
}

int64_t codec_key_bucket(const uint8_t *key, size_t klen)
{
	return (int64_t)((uint64_t)codec_key_partition(key) |
			 (uint64_t)key[klen - 1] << CODEC_BUCKET_BITS);
}

size_t codec_key_records_end(uint8_t *dst)
{
	dst[0] = CODEC_KEY_RECORD + 1;
	return 1;
}

/* ---- the series index ---- */

size_t codec_index_key(uint8_t *dst, const char *name, size_t name_len)
{
	dst[0] = CODEC_KEY_INDEX;
	memcpy(dst + 1, name, name_len);
	return name_len + 1;
}

ssize_t codec_index_name_len(const uint8_t *key, size_t klen)
{
	if (klen < 2 || klen > REC_NAME_MAX + 1 || key[0] != CODEC_KEY_INDEX)
		return -1;
	return (ssize_t)(klen - 1);
}

void codec_index_encode(uint8_t dst[CODEC_INDEX_VALUE_LEN], int64_t first, int64_t last)
{
	put_le64(dst, (uint64_t)first);
	put_le64(dst + CODEC_U64_LEN, (uint64_t)last);
}

int codec_index_decode(const uint8_t *val, size_t vlen, int64_t *first, int64_t *last)
{
	if (vlen != CODEC_INDEX_VALUE_LEN)
		return -1;
	*first = (int64_t)get_le64(val);
	*last = (int64_t)get_le64(val + CODEC_U64_LEN);
	return *first <= *last ? 0 : -1;
}

/* ---- format "2" keys ---- */

int codec_legacy_key(const uint8_t *key, size_t klen, size_t *name_len, int64_t *bucket)
{
	/* A name never starts with 0x01 or 0x02 (control characters are refused). */
	if (klen <= CODEC_LEGACY_KEY_SUFFIX_LEN || klen > REC_NAME_MAX + CODEC_LEGACY_KEY_SUFFIX_LEN ||
	    key[0] <= CODEC_KEY_INDEX)
		return 0;
	*name_len = klen - CODEC_LEGACY_KEY_SUFFIX_LEN;
	if (key[*name_len] != CODEC_NAME_SEP)
		return 0;
	*bucket = (int64_t)(get_be64(key + *name_len + CODEC_SEP_LEN) ^ CODEC_TS_FLIP);
	return 1;
}

/* ---- entries and values ---- */

void codec_entry_of(const struct rec *r, uint64_t version, struct chunk_entry *e)
{
	e->version = version;
	memcpy(&e->bits, &r->v, sizeof(e->bits));
	e->off = codec_offset(r->ts);
	e->type = r->type;
}

void codec_rec_of(const struct chunk_entry *e, int64_t bucket, struct rec *out)
{
	out->ts = (int64_t)((uint64_t)bucket | e->off);
	out->type = e->type;
	memcpy(&out->v, &e->bits, sizeof(e->bits));
}

size_t codec_value_bound(size_t n)
{
	return chunk_bound(n);
}

size_t codec_value_encode(const struct chunk_entry *e, size_t n, uint8_t *dst)
{
	return chunk_encode(e, n, dst);
}

ssize_t codec_value_decode(const uint8_t *val, size_t vlen, struct chunk_entry *out)
{
	return chunk_decode(val, vlen, CODEC_BUCKET_SPAN - 1, out, CODEC_BUCKET_SPAN);
}

/* Entries are sorted by offset: a binary search. */
int codec_value_find(const uint8_t *val, size_t vlen, int64_t ts, struct rec *out)
{
	struct chunk_entry e[CODEC_BUCKET_SPAN];
	ssize_t n = codec_value_decode(val, vlen, e);
	uint16_t off = codec_offset(ts);
	size_t lo = 0, hi;

	if (n < 0)
		return -1;
	for (hi = (size_t)n; lo < hi;) {
		size_t mid = lo + (hi - lo) / 2;

		if (e[mid].off == off) {
			codec_rec_of(&e[mid], codec_bucket(ts), out);
			return 1;
		}
		if (e[mid].off < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

ssize_t codec_legacy_decode(const uint8_t *val, size_t vlen, struct chunk_entry *out)
{
	size_t n = vlen / CODEC_LEGACY_ENTRY_LEN;

	if (vlen == 0 || vlen % CODEC_LEGACY_ENTRY_LEN != 0 || n > CODEC_BUCKET_SPAN)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *e = val + i * CODEC_LEGACY_ENTRY_LEN;

		out[i] = (struct chunk_entry){ .version = get_le64(e + LEGACY_VERSION_OFF),
					       .bits = get_le64(e + LEGACY_PAYLOAD_OFF),
					       .off = e[LEGACY_OFFSET_OFF],
					       .type = e[LEGACY_TYPE_OFF] };
		if (out[i].type != REC_INT && out[i].type != REC_DOUBLE)
			return -1;
		if (i > 0 && out[i].off <= out[i - 1].off)
			return -1;
	}
	return (ssize_t)n;
}

/* ---- folding ---- */

void codec_fold_init(struct codec_fold *f)
{
	memset(f->used, 0, sizeof(f->used));
	f->f = (struct chunk_fold){ .span = CODEC_BUCKET_SPAN, .used = f->used,
				    .slots = f->slots, .count = 0 };
}

void codec_fold_offer(struct codec_fold *f, const struct chunk_entry *e)
{
	chunk_fold_offer(&f->f, e);
}

int codec_fold_offer_value(struct codec_fold *f, const uint8_t *val, size_t vlen, bool legacy)
{
	struct chunk_entry e[CODEC_BUCKET_SPAN];
	ssize_t n = legacy ? codec_legacy_decode(val, vlen, e) : codec_value_decode(val, vlen, e);

	if (n < 0)
		return -1;
	for (ssize_t i = 0; i < n; i++)
		chunk_fold_offer(&f->f, &e[i]);
	return 0;
}

size_t codec_fold_count(const struct codec_fold *f)
{
	return f->f.count;
}

size_t codec_fold_drain(struct codec_fold *f, struct chunk_entry *out)
{
	return chunk_fold_drain(&f->f, out);
}

/* Legacy merges write format "2" values, as the operands they fold. */
static size_t legacy_encode(const struct chunk_entry *e, size_t n, uint8_t *dst)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t *p = dst + i * CODEC_LEGACY_ENTRY_LEN;

		p[LEGACY_OFFSET_OFF] = (uint8_t)e[i].off;
		put_le64(p + LEGACY_VERSION_OFF, e[i].version);
		p[LEGACY_TYPE_OFF] = e[i].type;
		put_le64(p + LEGACY_PAYLOAD_OFF, e[i].bits);
	}
	return n * CODEC_LEGACY_ENTRY_LEN;
}

int codec_merge(const char *existing, size_t existing_len, const char *const *ops,
		const size_t *op_lens, size_t nops, bool legacy, uint8_t **out, size_t *out_len)
{
	struct codec_fold fold;
	struct chunk_entry won[CODEC_BUCKET_SPAN];
	size_t n;

	*out = NULL;
	*out_len = 0;
	codec_fold_init(&fold);
	if (existing != NULL &&
	    codec_fold_offer_value(&fold, (const uint8_t *)existing, existing_len, legacy) != 0)
		goto corrupt;
	for (size_t i = 0; i < nops; i++)
		if (codec_fold_offer_value(&fold, (const uint8_t *)ops[i], op_lens[i], legacy) != 0)
			goto corrupt;
	n = codec_fold_drain(&fold, won);
	if (n == 0)
		return 0;
	*out = malloc(legacy ? n * CODEC_LEGACY_ENTRY_LEN : codec_value_bound(n));
	if (*out == NULL) {
		errno = ENOMEM;
		return -1;
	}
	*out_len = legacy ? legacy_encode(won, n, *out) : codec_value_encode(won, n, *out);
	return 0;
corrupt:
	errno = EINVAL;
	return -1;
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static int64_t max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

int codec_index_merge(const char *existing, size_t existing_len, const char *const *ops,
		      const size_t *op_lens, size_t nops, uint8_t **out, size_t *out_len)
{
	int64_t first = INT64_MAX, last = INT64_MIN, f, l;
	bool any = false;

	*out = NULL;
	*out_len = 0;
	if (existing != NULL) {
		if (codec_index_decode((const uint8_t *)existing, existing_len, &first, &last) != 0)
			goto corrupt;
		any = true;
	}
	for (size_t i = 0; i < nops; i++) {
		if (codec_index_decode((const uint8_t *)ops[i], op_lens[i], &f, &l) != 0)
			goto corrupt;
		first = min64(first, f);
		last = max64(last, l);
		any = true;
	}
	if (!any)
		return 0;
	if ((*out = malloc(CODEC_INDEX_VALUE_LEN)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	codec_index_encode(*out, first, last);
	*out_len = CODEC_INDEX_VALUE_LEN;
	return 0;
corrupt:
	errno = EINVAL;
	return -1;
}

bool codec_value_ok(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	struct chunk_entry e[CODEC_BUCKET_SPAN];
	int64_t first, last;

	if (klen > 0 && key[0] == CODEC_KEY_INDEX)
		return codec_index_decode(val, vlen, &first, &last) == 0;
	if (klen > 0 && key[0] == CODEC_KEY_RECORD)
		return codec_value_decode(val, vlen, e) >= 0;
	return codec_legacy_decode(val, vlen, e) >= 0;
}

int codec_merge_key(const uint8_t *key, size_t klen, const char *existing, size_t existing_len,
		    const char *const *ops, const size_t *op_lens, size_t nops, uint8_t **out,
		    size_t *out_len)
{
	if (klen > 0 && key[0] == CODEC_KEY_INDEX)
		return codec_index_merge(existing, existing_len, ops, op_lens, nops, out, out_len);
	return codec_merge(existing, existing_len, ops, op_lens, nops,
			   klen == 0 || key[0] != CODEC_KEY_RECORD, out, out_len);
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
