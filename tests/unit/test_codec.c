/*
 * test_codec.c - unit tests of src/data/codec.c, the on-disk record format, with
 * no RocksDB at all (not even on the link line): bucket arithmetic, key order and
 * decoding, entry and value round trips, value validation, the format "2" values
 * the migration reads, and the last-write-wins fold.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "temporis/data/codec.h"

#define SPAN ((int64_t)CODEC_BUCKET_SPAN)
#define PART ((int64_t)1 << CODEC_PARTITION_BITS)
#define MAX_KEYS 128
#define MAX_OPS 4

static struct rec int_rec(const char *name, int64_t ts, int64_t v)
{
	struct rec r = { .ts = ts, .type = REC_INT, .name = name,
			 .name_len = (uint16_t)strlen(name) };

	r.v.i = v;
	return r;
}

static struct rec dbl_rec(int64_t ts, double v)
{
	struct rec r = { .ts = ts, .type = REC_DOUBLE, .name = "d", .name_len = 1 };

	r.v.d = v;
	return r;
}

/* ---- time buckets ---- */

static void test_bucket_is_a_floor_and_offset_the_rest(void **state)
{
	static const int64_t ts[] = { 0,	 1,	    SPAN - 1, SPAN,	SPAN + 1,  -1,
				      -SPAN,	 -SPAN - 1, INT64_MIN, INT64_MIN + 1, INT64_MAX,
				      INT64_MAX - SPAN };

	for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++) {
		int64_t b = codec_bucket(ts[i]);
		uint16_t off = codec_offset(ts[i]);

		assert_true(b <= ts[i]);
		assert_true((uint64_t)b % CODEC_BUCKET_SPAN == 0);
		assert_true((uint64_t)ts[i] - (uint64_t)b == off);
	}
	assert_true(codec_bucket(-1) == -SPAN);
	assert_int_equal(codec_offset(-1), SPAN - 1);
	assert_true(codec_bucket(-SPAN - 1) == -2 * SPAN);
	assert_true(codec_bucket(SPAN - 1) == 0);
	assert_true(codec_bucket(SPAN) == SPAN);
	assert_true(codec_bucket(INT64_MIN) == INT64_MIN);
	assert_int_equal(codec_offset(INT64_MIN), 0);
	assert_true(codec_bucket(INT64_MAX) == INT64_MAX - (SPAN - 1));
	assert_int_equal(codec_offset(INT64_MAX), SPAN - 1);
	/* Partitions floor the same way, and hold whole buckets. */
	for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++) {
		assert_true(codec_partition(ts[i]) <= codec_bucket(ts[i]));
		assert_true((uint64_t)codec_partition(ts[i]) % (uint64_t)PART == 0);
		assert_true(codec_partition(codec_bucket(ts[i])) == codec_partition(ts[i]));
	}
	assert_true(codec_partition(-1) == -PART);
	assert_true(codec_partition(PART - 1) == 0);
}

/* ---- keys ---- */

struct key {
	uint8_t b[CODEC_KEY_MAX];
	size_t len;
};

/* RocksDB's default (bytewise) comparator. */
static int key_cmp(const struct key *a, const struct key *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->b, b->b, n);

	if (c != 0)
		return c;
	return a->len < b->len ? -1 : a->len > b->len;
}

static void encode(struct key *k, const char *name, int64_t bucket)
{
	k->len = codec_key_encode(k->b, name, strlen(name), bucket);
}

static void test_key_order_is_partition_then_name_then_bucket(void **state)
{
	/* All three lists ascending: partitions and buckets as signed numbers, names
	 * bytewise. Keys generated in (partition, name, bucket) order. */
	static const int64_t partitions[] = { INT64_MIN, -2 * PART, -PART, 0, PART,
					      INT64_MAX - (PART - 1) };
	static const char *const names[] = { "a", "a.b", "aa", "ab", "s\xc3\xa9rie" };
	static const int64_t offsets[] = { 0, SPAN, PART - SPAN };
	const size_t np = sizeof(partitions) / sizeof(partitions[0]);
	const size_t nn = sizeof(names) / sizeof(names[0]);
	/* buckets within a partition, if a partition has more than one */
	const size_t no = PART > SPAN ? sizeof(offsets) / sizeof(offsets[0]) : 1;
	static struct key keys[MAX_KEYS];
	size_t n = 0;

	assert_true(np * nn * no <= MAX_KEYS);
	for (size_t p = 0; p < np; p++)
		for (size_t i = 0; i < nn; i++)
			for (size_t j = 0; j < no; j++)
				encode(&keys[n++], names[i], partitions[p] + offsets[j]);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++) {
			int c = key_cmp(&keys[i], &keys[j]);

			assert_int_equal(c < 0, i < j);
			assert_int_equal(c == 0, i == j);
		}
}

static void test_series_prefix_fences_a_series_in_its_partition(void **state)
{
	struct key lo_a, hi_a, lo_ab, pre_a, pre_ab, next_part, idx, end;

	encode(&lo_a, "a", PART);
	encode(&hi_a, "a", 2 * PART - SPAN);
	encode(&lo_ab, "ab", PART);
	encode(&next_part, "a", 2 * PART);
	pre_a.len = codec_key_series_prefix(pre_a.b, PART, "a", 1);
	pre_ab.len = codec_key_series_prefix(pre_ab.b, PART, "ab", 2);
	/* Every key of "a" in the partition starts with its prefix, "ab"'s do not. */
	assert_memory_equal(lo_a.b, pre_a.b, pre_a.len);
	assert_memory_equal(hi_a.b, pre_a.b, pre_a.len);
	assert_true(memcmp(lo_ab.b, pre_a.b, pre_a.len) != 0);
	assert_true(key_cmp(&pre_a, &lo_a) < 0 && key_cmp(&hi_a, &pre_ab) < 0);
	/* and the next partition starts after every key of this one */
	pre_a.len = codec_key_partition_start(pre_a.b, 2 * PART);
	assert_int_equal(pre_a.len, CODEC_KEY_PREFIX_LEN);
	assert_true(key_cmp(&lo_ab, &pre_a) < 0 && key_cmp(&pre_a, &next_part) < 0);
	/* record keys end before the index, which starts with 0x02 */
	end.len = codec_key_records_end(end.b);
	idx.len = codec_index_key(idx.b, "a", 1);
	encode(&hi_a, "zzz", INT64_MAX);
	assert_true(key_cmp(&hi_a, &end) < 0 && key_cmp(&end, &idx) <= 0);
}

static void test_key_decodes_to_name_partition_and_bucket(void **state)
{
	static const int64_t buckets[] = { INT64_MIN, -SPAN, 0, SPAN, PART + 3 * SPAN,
					   INT64_MAX - (SPAN - 1) };
	static char longest[REC_NAME_MAX + 1];
	struct key k;

	for (size_t i = 0; i < sizeof(buckets) / sizeof(buckets[0]); i++) {
		encode(&k, "cpu.load", buckets[i]);
		assert_int_equal(k.len, strlen("cpu.load") + CODEC_KEY_PREFIX_LEN +
						CODEC_KEY_SUFFIX_LEN);
		assert_int_equal(codec_key_name_len(k.b, k.len), strlen("cpu.load"));
		assert_memory_equal(codec_key_name(k.b), "cpu.load", strlen("cpu.load"));
		assert_true(codec_key_bucket(k.b, k.len) == buckets[i]);
		assert_true(codec_key_partition(k.b) == codec_partition(buckets[i]));
	}
	/* The exact bytes: 0x01 | BE(partition ^ sign bit) | name | 0x00 | bucket index
	 * (1024-second partitions of one bucket: the index is 0). */
	_Static_assert(CODEC_PARTITION_BITS == 10 && CODEC_BUCKET_BITS == 10, "bytes below");
	encode(&k, "x", -SPAN);
	assert_memory_equal(k.b, "\x01\x7f\xff\xff\xff\xff\xff\xfc\0x\0\0", k.len);
	encode(&k, "x", PART + 2 * SPAN);
	assert_memory_equal(k.b, "\x01\x80\0\0\0\0\0\x0c\0x\0\0", k.len);

	memset(longest, 'n', REC_NAME_MAX);
	encode(&k, longest, 0);
	assert_int_equal(k.len, CODEC_KEY_MAX);
	assert_int_equal(codec_key_name_len(k.b, k.len), REC_NAME_MAX);
	/* Not record keys: no name, too long, no separator, another tag. */
	assert_int_equal(codec_key_name_len(k.b, CODEC_KEY_PREFIX_LEN + CODEC_KEY_SUFFIX_LEN), -1);
	assert_int_equal(codec_key_name_len(k.b, CODEC_KEY_MAX + 1), -1);
	k.b[CODEC_KEY_MAX - CODEC_KEY_SUFFIX_LEN] = 'n';
	assert_int_equal(codec_key_name_len(k.b, k.len), -1);
	assert_int_equal(codec_key_name_len((const uint8_t *)"version_hwm", 11), -1);
	assert_int_equal(codec_key_name_len((const uint8_t *)"\x02name\0\0\0\0\0\0\0\0", 13), -1);
}

static void test_index_keys_values_and_their_merge(void **state)
{
	uint8_t k[CODEC_KEY_MAX], a[CODEC_INDEX_VALUE_LEN], b[CODEC_INDEX_VALUE_LEN];
	const char *ops[] = { (const char *)a, (const char *)b };
	size_t lens[] = { sizeof(a), sizeof(b) }, len, klen;
	int64_t first, last;
	uint8_t *out;

	klen = codec_index_key(k, "cpu", 3);
	assert_int_equal(klen, 4);
	assert_int_equal(codec_index_name_len(k, klen), 3);
	assert_int_equal(codec_index_name_len(k, 1), -1);
	codec_index_encode(a, -PART, 0);
	codec_index_encode(b, PART, 3 * PART);
	assert_int_equal(codec_merge_key(k, klen, NULL, 0, ops, lens, 2, &out, &len), 0);
	assert_int_equal(codec_index_decode(out, len, &first, &last), 0);
	assert_true(first == -PART && last == 3 * PART);
	free(out);
	/* a value whose first is after its last, or of another length, is corrupt */
	codec_index_encode(a, PART, 0);
	assert_int_equal(codec_index_decode(a, sizeof(a), &first, &last), -1);
	assert_int_equal(codec_index_decode(b, sizeof(b) - 1, &first, &last), -1);
	errno = 0;
	assert_int_equal(codec_merge_key(k, klen, NULL, 0, ops, lens, 2, &out, &len), -1);
	assert_int_equal(errno, EINVAL);
}

static void test_legacy_keys_are_told_apart(void **state)
{
	uint8_t k[64];
	size_t nl;
	int64_t bucket;

	memcpy(k, "cpu\0\x80\0\0\0\0\0\x01\0", 12);
	assert_int_equal(codec_legacy_key(k, 12, &nl, &bucket), 1);
	assert_int_equal(nl, 3);
	assert_true(bucket == 256); /* format 2's buckets were 256 seconds */
	/* record and index keys are never format 2 keys */
	k[0] = CODEC_KEY_RECORD;
	assert_int_equal(codec_legacy_key(k, 12, &nl, &bucket), 0);
	k[0] = CODEC_KEY_INDEX;
	assert_int_equal(codec_legacy_key(k, 12, &nl, &bucket), 0);
	assert_int_equal(codec_legacy_key((const uint8_t *)"cpu", 3, &nl, &bucket), 0);
}

/* ---- entries ---- */

/* r at version through an entry and a one-entry value, and back. */
static void round_trip(const struct rec *r, uint64_t version)
{
	struct chunk_entry e, dec[CODEC_BUCKET_SPAN];
	uint8_t val[64];
	struct rec out = { .name = "untouched", .name_len = 9 };
	size_t len;

	codec_entry_of(r, version, &e);
	assert_int_equal(e.off, codec_offset(r->ts));
	assert_int_equal(e.type, r->type);
	assert_true(e.version == version);
	assert_true(codec_value_bound(1) <= sizeof(val));
	len = codec_value_encode(&e, 1, val);
	assert_int_equal(codec_value_decode(val, len, dec), 1);
	codec_rec_of(&dec[0], codec_bucket(r->ts), &out);
	assert_true(out.ts == r->ts);
	assert_int_equal(out.type, r->type);
	assert_memory_equal(&out.v, &r->v, sizeof(out.v));
	assert_string_equal(out.name, "untouched");
	assert_true(dec[0].version == version);
	assert_int_equal(codec_value_find(val, len, r->ts, &out), 1);
	assert_memory_equal(&out.v, &r->v, sizeof(out.v));
}

static void test_entry_round_trips_ints_and_double_bits(void **state)
{
	static const int64_t ints[] = { 0, -1, INT64_MIN, INT64_MAX, (INT64_C(1) << 53) + 1 };
	static const double dbls[] = { 0.0, -0.0, 5e-324, 2.2250738585072009e-308, 1e308,
				       -1e308, 0.1 };
	static const int64_t ts[] = { INT64_MIN, -1, 0, SPAN - 1, INT64_MAX };
	static const uint64_t versions[] = { 0, 1, UINT64_MAX };

	for (size_t t = 0; t < sizeof(ts) / sizeof(ts[0]); t++)
		for (size_t v = 0; v < sizeof(versions) / sizeof(versions[0]); v++) {
			for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
				struct rec r = int_rec("i", ts[t], ints[i]);

				round_trip(&r, versions[v]);
			}
			for (size_t i = 0; i < sizeof(dbls) / sizeof(dbls[0]); i++) {
				struct rec r = dbl_rec(ts[t], dbls[i]);

				round_trip(&r, versions[v]);
			}
		}
}

/* The format "2" entry, spelled out byte by byte, as the migration reads it. */
static void test_legacy_entries_are_read_little_endian(void **state)
{
	static const uint8_t v2[2 * CODEC_LEGACY_ENTRY_LEN] = {
		7, 0x11, 0x22, 0, 0, 0, 0, 0, 0, REC_INT, 8, 7, 6, 5, 4, 3, 2, 1,
		9, 1, 0, 0, 0, 0, 0, 0, 0, REC_DOUBLE, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f,
	};
	struct chunk_entry e[CODEC_BUCKET_SPAN];
	uint8_t bad[sizeof(v2)];
	double one = 1.0;

	assert_int_equal(codec_legacy_decode(v2, sizeof(v2), e), 2);
	assert_int_equal(e[0].off, 7);
	assert_true(e[0].version == 0x2211);
	assert_int_equal(e[0].type, REC_INT);
	assert_true(e[0].bits == 0x0102030405060708ull);
	assert_int_equal(e[1].off, 9);
	assert_int_equal(e[1].type, REC_DOUBLE);
	assert_memory_equal(&e[1].bits, &one, sizeof(one));
	/* lengths, types and order are checked as format "2" checked them */
	assert_int_equal(codec_legacy_decode(v2, sizeof(v2) - 1, e), -1);
	assert_int_equal(codec_legacy_decode(v2, 0, e), -1);
	memcpy(bad, v2, sizeof(v2));
	bad[CODEC_LEGACY_ENTRY_LEN] = 7; /* offsets not increasing */
	assert_int_equal(codec_legacy_decode(bad, sizeof(bad), e), -1);
	memcpy(bad, v2, sizeof(v2));
	bad[9] = REC_DOUBLE + 1;
	assert_int_equal(codec_legacy_decode(bad, sizeof(bad), e), -1);
}

/* ---- values ---- */

/* A value of n int entries at offsets first, first + step, ..., into val. */
static size_t make_value(uint8_t *val, size_t n, unsigned first, unsigned step,
			 uint64_t version)
{
	struct chunk_entry e[CODEC_BUCKET_SPAN];

	for (size_t i = 0; i < n; i++) {
		struct rec r = int_rec("v", (int64_t)(first + i * step), (int64_t)i);

		codec_entry_of(&r, version, &e[i]);
	}
	return codec_value_encode(e, n, val);
}

static void test_value_validation_rejects_malformed_bytes(void **state)
{
	static uint8_t val[32768];
	struct chunk_entry e[CODEC_BUCKET_SPAN];
	struct codec_fold f;
	struct rec out;
	size_t len;

	/* A full bucket (every offset once) is the largest value. */
	assert_true(codec_value_bound(CODEC_BUCKET_SPAN) <= sizeof(val));
	len = make_value(val, CODEC_BUCKET_SPAN, 0, 1, 1);
	assert_int_equal(codec_value_decode(val, len, e), CODEC_BUCKET_SPAN);
	/* Every truncation, a trailing byte, an empty value, a format "2" value. */
	for (size_t cut = 0; cut < len; cut += 1 + cut / 8)
		assert_int_equal(codec_value_decode(val, cut, e), -1);
	val[len] = 0;
	assert_int_equal(codec_value_decode(val, len + 1, e), -1);
	len = make_value(val, 3, 10, 1, 1);
	assert_int_equal(codec_value_decode(val, len, e), 3);
	val[0] ^= 0xff;
	assert_int_equal(codec_value_decode(val, len, e), -1);
	/* A value that fails validation is neither searched nor folded. */
	codec_fold_init(&f);
	assert_int_equal(codec_value_find(val, len, 10, &out), -1);
	assert_int_equal(codec_fold_offer_value(&f, val, len, false), -1);
	assert_int_equal(codec_fold_count(&f), 0);
}

static void test_value_find_and_decode_by_timestamp(void **state)
{
	uint8_t val[256];
	size_t len = make_value(val, 4, 3, 5, 1); /* offsets 3, 8, 13, 18 */
	const int64_t bucket = -SPAN;
	struct chunk_entry e[CODEC_BUCKET_SPAN];
	struct rec out;

	assert_int_equal(codec_value_decode(val, len, e), 4);
	for (size_t i = 0; i < 4; i++) {
		int64_t ts = bucket + 3 + 5 * (int64_t)i;

		assert_int_equal(codec_value_find(val, len, ts, &out), 1);
		assert_true(out.ts == ts);
		assert_true(out.v.i == (int64_t)i);
		codec_rec_of(&e[i], bucket, &out);
		assert_true(out.ts == ts);
	}
	assert_int_equal(codec_value_find(val, len, bucket, &out), 0);
	assert_int_equal(codec_value_find(val, len, bucket + 4, &out), 0);
	assert_int_equal(codec_value_find(val, len, bucket + 19, &out), 0);
}

/* ---- folding ---- */

#define VAL_ROOM 512

struct value {
	uint8_t b[VAL_ROOM];
	size_t len;
	size_t n;
	struct chunk_entry e[8];
};

static void put_entry(struct value *v, unsigned off, uint64_t version, int64_t x)
{
	struct rec r = int_rec("f", (int64_t)off, x);

	codec_entry_of(&r, version, &v->e[v->n++]);
	v->len = codec_value_encode(v->e, v->n, v->b);
}

/* The value of the entry at offset off of val (which must hold it). */
static int64_t value_at(const uint8_t *val, size_t len, unsigned off)
{
	struct rec out;

	assert_int_equal(codec_value_find(val, len, (int64_t)off, &out), 1);
	return out.v.i;
}

static ssize_t count_of(const uint8_t *val, size_t len)
{
	struct chunk_entry e[CODEC_BUCKET_SPAN];

	return codec_value_decode(val, len, e);
}

static void fold(const struct value *const *vals, const int *order, size_t n, uint8_t **out,
		 size_t *out_len)
{
	const char *ops[MAX_OPS];
	size_t op_lens[MAX_OPS];

	for (size_t i = 0; i < n; i++) {
		ops[i] = (const char *)vals[order[i]]->b;
		op_lens[i] = vals[order[i]]->len;
	}
	assert_int_equal(codec_merge(NULL, 0, ops, op_lens, n, false, out, out_len), 0);
	assert_non_null(*out);
	assert_true(count_of(*out, *out_len) > 0);
}

static void test_fold_keeps_highest_version_per_offset_in_any_order(void **state)
{
	/* Offset 10 is contested at versions 1, 3, 2; 20 and 30 each appear once. */
	struct value a = { 0 }, b = { 0 }, c = { 0 };
	const struct value *vals[] = { &a, &b, &c };
	static const int perms[][3] = { { 0, 1, 2 }, { 0, 2, 1 }, { 1, 0, 2 },
					{ 1, 2, 0 }, { 2, 0, 1 }, { 2, 1, 0 } };

	put_entry(&a, 10, 1, 100);
	put_entry(&a, 20, 1, 200);
	put_entry(&b, 10, 3, 300);
	put_entry(&c, 10, 2, 400);
	put_entry(&c, 30, 2, 500);
	for (size_t p = 0; p < sizeof(perms) / sizeof(perms[0]); p++) {
		uint8_t *out;
		size_t len;

		fold(vals, perms[p], 3, &out, &len);
		assert_int_equal(count_of(out, len), 3);
		assert_int_equal(value_at(out, len, 10), 300);
		assert_int_equal(value_at(out, len, 20), 200);
		assert_int_equal(value_at(out, len, 30), 500);
		free(out);
	}
}

static void test_fold_equal_versions_later_wins_and_neighbours_stay(void **state)
{
	struct value older = { 0 }, newer = { 0 };
	const struct value *vals[] = { &older, &newer };
	static const int forward[] = { 0, 1 }, backward[] = { 1, 0 };
	uint8_t *out;
	size_t len;

	put_entry(&older, 4, 7, 40);
	put_entry(&older, 5, 7, 50);
	put_entry(&older, 6, 7, 60);
	put_entry(&newer, 5, 7, 55);
	fold(vals, forward, 2, &out, &len);
	assert_int_equal(count_of(out, len), 3);
	assert_int_equal(value_at(out, len, 4), 40);
	assert_int_equal(value_at(out, len, 5), 55);
	assert_int_equal(value_at(out, len, 6), 60);
	free(out);
	fold(vals, backward, 2, &out, &len);
	assert_int_equal(value_at(out, len, 5), 50);
	assert_int_equal(value_at(out, len, 4), 40);
	assert_int_equal(value_at(out, len, 6), 60);
	free(out);
}

static void test_merge_folds_existing_first_and_refuses_corrupt_input(void **state)
{
	struct value base = { 0 }, op = { 0 };
	uint8_t bad[CODEC_LEGACY_ENTRY_LEN - 1] = { 0 };
	const char *ops[1], *bad_ops[2];
	size_t op_lens[1], bad_lens[2];
	uint8_t *out;
	size_t len;

	put_entry(&base, 0, 5, 1);
	put_entry(&base, CODEC_BUCKET_SPAN - 1, 5, 2);
	put_entry(&op, 0, 5, 3); /* equal version, offered after the existing value */
	ops[0] = bad_ops[0] = (const char *)op.b;
	op_lens[0] = bad_lens[0] = op.len;
	bad_ops[1] = (const char *)bad;
	bad_lens[1] = sizeof(bad);
	assert_int_equal(codec_merge((const char *)base.b, base.len, ops, op_lens, 1, false, &out,
				     &len),
			 0);
	assert_int_equal(count_of(out, len), 2);
	assert_int_equal(value_at(out, len, 0), 3);
	assert_int_equal(value_at(out, len, CODEC_BUCKET_SPAN - 1), 2);
	free(out);

	errno = 0;
	assert_int_equal(codec_merge((const char *)bad, sizeof(bad), ops, op_lens, 1, false, &out,
				     &len),
			 -1);
	assert_int_equal(errno, EINVAL);
	assert_null(out);
	errno = 0;
	assert_int_equal(codec_merge(NULL, 0, bad_ops, bad_lens, 2, false, &out, &len), -1);
	assert_int_equal(errno, EINVAL);
	assert_null(out);
	/* Nothing to fold gives nothing. */
	assert_int_equal(codec_merge(NULL, 0, NULL, NULL, 0, false, &out, &len), 0);
	assert_null(out);
	assert_int_equal(len, 0);
}

/* During the migration the merge operator folds format "2" operands into one. */
static void test_legacy_merge_folds_format_2(void **state)
{
	uint8_t a[CODEC_LEGACY_ENTRY_LEN] = { 3, 1, 0, 0, 0, 0, 0, 0, 0, REC_INT, 10 };
	uint8_t b[CODEC_LEGACY_ENTRY_LEN] = { 3, 2, 0, 0, 0, 0, 0, 0, 0, REC_INT, 20 };
	const char *ops[] = { (const char *)b, (const char *)a };
	size_t lens[] = { sizeof(b), sizeof(a) };
	struct chunk_entry e[CODEC_BUCKET_SPAN];
	uint8_t *out;
	size_t len;

	assert_int_equal(codec_merge(NULL, 0, ops, lens, 2, true, &out, &len), 0);
	assert_int_equal(len, CODEC_LEGACY_ENTRY_LEN);
	assert_int_equal(codec_legacy_decode(out, len, e), 1);
	assert_true(e[0].bits == 20); /* version 2 wins, whatever the order */
	free(out);
}

static void test_fold_drains_in_offset_order_and_empties(void **state)
{
	static const unsigned offs[] = { 200, 3, CODEC_BUCKET_SPAN - 1, 64, 0, 63, 3 };
	const size_t n = sizeof(offs) / sizeof(offs[0]);
	struct chunk_entry out[CODEC_BUCKET_SPAN];
	struct codec_fold f;
	uint8_t val[1024];
	size_t got, len;

	codec_fold_init(&f);
	for (size_t i = 0; i < n; i++) {
		struct rec r = int_rec("f", (int64_t)offs[i], (int64_t)i);
		struct chunk_entry e;

		codec_entry_of(&r, 1, &e);
		codec_fold_offer(&f, &e);
	}
	assert_int_equal(codec_fold_count(&f), n - 1); /* offset 3 twice */
	got = codec_fold_drain(&f, out);
	assert_int_equal(got, n - 1);
	assert_int_equal(codec_fold_count(&f), 0);
	for (size_t i = 1; i < got; i++)
		assert_true(out[i].off > out[i - 1].off);
	assert_int_equal(out[0].off, 0);
	assert_int_equal(out[got - 1].off, CODEC_BUCKET_SPAN - 1);
	len = codec_value_encode(out, got, val);
	assert_int_equal(value_at(val, len, 3), n - 1); /* the later of two equal versions */
	/* The drained fold is empty: reusing it folds only what is offered next. */
	codec_fold_offer(&f, &out[0]);
	assert_int_equal(codec_fold_drain(&f, out), 1);
}

/* ---- the version high-water mark ---- */

static void test_hwm_round_trips_and_checks_its_length(void **state)
{
	uint8_t enc[CODEC_HWM_LEN];
	uint64_t v = 0;

	codec_hwm_encode(enc, 1);
	assert_memory_equal(enc, "\1\0\0\0\0\0\0\0", CODEC_HWM_LEN);
	codec_hwm_encode(enc, UINT64_MAX - 1);
	assert_int_equal(codec_hwm_decode(enc, sizeof(enc), &v), 0);
	assert_true(v == UINT64_MAX - 1);
	assert_int_equal(codec_hwm_decode(enc, sizeof(enc) - 1, &v), -1);
	assert_int_equal(codec_hwm_decode(enc, 0, &v), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket_is_a_floor_and_offset_the_rest),
		cmocka_unit_test(test_key_order_is_partition_then_name_then_bucket),
		cmocka_unit_test(test_series_prefix_fences_a_series_in_its_partition),
		cmocka_unit_test(test_key_decodes_to_name_partition_and_bucket),
		cmocka_unit_test(test_index_keys_values_and_their_merge),
		cmocka_unit_test(test_legacy_keys_are_told_apart),
		cmocka_unit_test(test_entry_round_trips_ints_and_double_bits),
		cmocka_unit_test(test_legacy_entries_are_read_little_endian),
		cmocka_unit_test(test_value_validation_rejects_malformed_bytes),
		cmocka_unit_test(test_value_find_and_decode_by_timestamp),
		cmocka_unit_test(test_fold_keeps_highest_version_per_offset_in_any_order),
		cmocka_unit_test(test_fold_equal_versions_later_wins_and_neighbours_stay),
		cmocka_unit_test(test_merge_folds_existing_first_and_refuses_corrupt_input),
		cmocka_unit_test(test_legacy_merge_folds_format_2),
		cmocka_unit_test(test_fold_drains_in_offset_order_and_empties),
		cmocka_unit_test(test_hwm_round_trips_and_checks_its_length),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
