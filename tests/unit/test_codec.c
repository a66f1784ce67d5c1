/*
 * test_codec.c - unit tests of src/data/codec.c, the on-disk record format, with
 * no RocksDB at all (not even on the link line): bucket arithmetic, key order and
 * decoding, entry round trips, value validation, and the last-write-wins fold.
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
#define MAX_KEYS 64
#define MAX_OPS 4
/* Byte positions inside an entry, spelled out here independently of codec.c. */
#define E_OFFSET 0
#define E_TYPE 9

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
		uint8_t off = codec_offset(ts[i]);

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

static void test_key_order_is_name_then_signed_bucket(void **state)
{
	/* Both lists ascending: names bytewise, buckets as signed numbers. */
	static const char *const names[] = { "a", "a.b", "aa", "ab", "b", "s\xc3\xa9rie" };
	static const int64_t buckets[] = { INT64_MIN, INT64_MIN + SPAN, -2 * SPAN, -SPAN, 0,
					   SPAN, 2 * SPAN, INT64_MAX - (SPAN - 1) };
	const size_t nn = sizeof(names) / sizeof(names[0]);
	const size_t nb = sizeof(buckets) / sizeof(buckets[0]);
	static struct key keys[MAX_KEYS];
	size_t n = 0;

	assert_true(nn * nb <= MAX_KEYS);
	for (size_t i = 0; i < nn; i++)
		for (size_t j = 0; j < nb; j++)
			encode(&keys[n++], names[i], buckets[j]);
	/* Generated in (name, bucket) order, so every pair compares the same way. */
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++) {
			int c = key_cmp(&keys[i], &keys[j]);

			assert_int_equal(c < 0, i < j);
			assert_int_equal(c == 0, i == j);
		}
}

static void test_prefix_name_never_mixes_and_series_bounds_fence_it(void **state)
{
	struct key lo_a, hi_a, lo_ab, hi_ab, max_a, end_a;

	encode(&lo_a, "a", INT64_MIN);
	encode(&hi_a, "a", INT64_MAX - (SPAN - 1));
	encode(&lo_ab, "ab", INT64_MIN);
	encode(&hi_ab, "ab", INT64_MAX - (SPAN - 1));
	max_a.len = codec_key_series_max(max_a.b, "a", 1);
	end_a.len = codec_key_series_end(end_a.b, "a", 1);
	/* Every key of "a" sorts before every key of "ab". */
	assert_true(key_cmp(&hi_a, &lo_ab) < 0);
	assert_true(key_cmp(&lo_a, &hi_a) < 0 && key_cmp(&lo_ab, &hi_ab) < 0);
	/* series_max is the greatest possible key of "a"; series_end lies past all of
	 * them and before "ab". */
	assert_true(key_cmp(&hi_a, &max_a) <= 0);
	assert_true(key_cmp(&max_a, &end_a) < 0);
	assert_true(key_cmp(&end_a, &lo_ab) < 0);
	assert_int_equal(max_a.len, 1 + CODEC_KEY_SUFFIX_LEN);
	assert_int_equal(codec_key_name_len(max_a.b, max_a.len), 1);
}

static void test_key_decodes_to_name_and_bucket(void **state)
{
	static const int64_t buckets[] = { INT64_MIN, -SPAN, 0, SPAN, INT64_MAX - (SPAN - 1) };
	static char longest[REC_NAME_MAX + 1];
	struct key k;

	for (size_t i = 0; i < sizeof(buckets) / sizeof(buckets[0]); i++) {
		encode(&k, "cpu.load", buckets[i]);
		assert_int_equal(k.len, strlen("cpu.load") + CODEC_KEY_SUFFIX_LEN);
		assert_int_equal(codec_key_name_len(k.b, k.len), strlen("cpu.load"));
		assert_memory_equal(k.b, "cpu.load", strlen("cpu.load"));
		assert_true(codec_key_bucket(k.b, k.len) == buckets[i]);
	}
	/* The exact bytes: name | 0x00 | big-endian(bucket ^ sign bit). */
	encode(&k, "x", -SPAN);
	assert_memory_equal(k.b, "x\0\x7f\xff\xff\xff\xff\xff\xff\x00", k.len);
	encode(&k, "x", 0);
	assert_memory_equal(k.b, "x\0\x80\0\0\0\0\0\0\0", k.len);

	memset(longest, 'n', REC_NAME_MAX);
	encode(&k, longest, 0);
	assert_int_equal(k.len, CODEC_KEY_MAX);
	assert_int_equal(codec_key_name_len(k.b, k.len), REC_NAME_MAX);
	/* Not record keys: no name, too long, no separator. */
	assert_int_equal(codec_key_name_len(k.b, CODEC_KEY_SUFFIX_LEN), -1);
	assert_int_equal(codec_key_name_len(k.b, CODEC_KEY_MAX + 1), -1);
	k.b[REC_NAME_MAX] = 'n';
	assert_int_equal(codec_key_name_len(k.b, k.len), -1);
	assert_int_equal(codec_key_name_len((const uint8_t *)"version_hwm", 11), -1);
}

/* ---- entries ---- */

static void round_trip(const struct rec *r, uint64_t version)
{
	uint8_t e[CODEC_ENTRY_LEN];
	struct rec out = { .name = "untouched", .name_len = 9 };

	codec_entry_encode(e, version, r);
	assert_int_equal(e[E_OFFSET], codec_offset(r->ts));
	assert_int_equal(e[E_TYPE], r->type);
	assert_true(codec_entry_version(e) == version);
	codec_entry_decode(e, codec_bucket(r->ts), &out);
	assert_true(out.ts == r->ts);
	assert_int_equal(out.type, r->type);
	assert_memory_equal(&out.v, &r->v, sizeof(out.v));
	assert_string_equal(out.name, "untouched");
	assert_int_equal(codec_value_entries(e, sizeof(e)), 1);
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

static void test_entry_bytes_are_little_endian(void **state)
{
	struct rec r = int_rec("i", SPAN + 7, INT64_C(0x0102030405060708));
	uint8_t e[CODEC_ENTRY_LEN];
	static const uint8_t want[CODEC_ENTRY_LEN] = { 7,    0x11, 0x22, 0, 0, 0, 0, 0, 0,
						       REC_INT, 8,    7,    6, 5, 4, 3, 2, 1 };

	codec_entry_encode(e, 0x2211, &r);
	assert_memory_equal(e, want, sizeof(want));
}

/* ---- values ---- */

/* A value of n entries at offsets first, first + step, ... (types int). */
static size_t make_value(uint8_t *val, size_t n, unsigned first, unsigned step,
			 uint64_t version)
{
	for (size_t i = 0; i < n; i++) {
		struct rec r = int_rec("v", (int64_t)(first + i * step), (int64_t)i);

		codec_entry_encode(val + i * CODEC_ENTRY_LEN, version, &r);
	}
	return n * CODEC_ENTRY_LEN;
}

static void test_value_validation_rejects_bad_lengths_types_and_order(void **state)
{
	static uint8_t val[CODEC_VALUE_MAX + CODEC_ENTRY_LEN];
	size_t len;

	/* A full bucket (every offset once) is the largest well-formed value. */
	len = make_value(val, CODEC_BUCKET_SPAN, 0, 1, 1);
	assert_int_equal(codec_value_entries(val, len), CODEC_BUCKET_SPAN);
	/* Lengths: empty, not a whole number of entries, more entries than offsets. */
	assert_int_equal(codec_value_entries(val, 0), -1);
	assert_int_equal(codec_value_entries(val, CODEC_ENTRY_LEN - 1), -1);
	assert_int_equal(codec_value_entries(val, CODEC_ENTRY_LEN + 1), -1);
	assert_int_equal(codec_value_entries(val, len + CODEC_ENTRY_LEN), -1);
	/* Types: only int and double. */
	len = make_value(val, 3, 10, 1, 1);
	assert_int_equal(codec_value_entries(val, len), 3);
	val[CODEC_ENTRY_LEN + E_TYPE] = 0;
	assert_int_equal(codec_value_entries(val, len), -1);
	val[CODEC_ENTRY_LEN + E_TYPE] = REC_DOUBLE + 1;
	assert_int_equal(codec_value_entries(val, len), -1);
	val[CODEC_ENTRY_LEN + E_TYPE] = REC_DOUBLE;
	assert_int_equal(codec_value_entries(val, len), 3);
	/* Offsets strictly increasing: neither equal nor descending. */
	val[2 * CODEC_ENTRY_LEN + E_OFFSET] = 11;
	assert_int_equal(codec_value_entries(val, len), -1);
	val[2 * CODEC_ENTRY_LEN + E_OFFSET] = 9;
	assert_int_equal(codec_value_entries(val, len), -1);
	/* A value that fails validation is neither searched nor folded. */
	{
		struct codec_slots t;
		struct rec out;

		codec_slots_reset(&t);
		assert_int_equal(codec_value_find(val, len, 10, &out), -1);
		assert_int_equal(codec_slots_offer_value(&t, val, len), -1);
		assert_int_equal(codec_slots_count(&t), 0);
	}
}

static void test_value_find_and_decode_by_timestamp(void **state)
{
	uint8_t val[4 * CODEC_ENTRY_LEN];
	size_t len = make_value(val, 4, 3, 5, 1); /* offsets 3, 8, 13, 18 */
	const int64_t bucket = -SPAN;
	struct rec out;

	for (size_t i = 0; i < 4; i++) {
		int64_t ts = bucket + 3 + 5 * (int64_t)i;

		assert_int_equal(codec_value_find(val, len, ts, &out), 1);
		assert_true(out.ts == ts);
		assert_true(out.v.i == (int64_t)i);
		codec_value_decode(val, i, bucket, &out);
		assert_true(out.ts == ts);
	}
	assert_int_equal(codec_value_find(val, len, bucket, &out), 0);
	assert_int_equal(codec_value_find(val, len, bucket + 4, &out), 0);
	assert_int_equal(codec_value_find(val, len, bucket + 19, &out), 0);
}

/* ---- folding ---- */

static void put_entry(uint8_t *val, size_t i, unsigned off, uint64_t version, int64_t v)
{
	struct rec r = int_rec("f", (int64_t)off, v);

	codec_entry_encode(val + i * CODEC_ENTRY_LEN, version, &r);
}

/* The value of the entry at offset off of val (which must hold it). */
static int64_t value_at(const uint8_t *val, size_t len, unsigned off)
{
	struct rec out;

	assert_int_equal(codec_value_find(val, len, (int64_t)off, &out), 1);
	return out.v.i;
}

static void fold(const uint8_t *const *vals, const size_t *lens, const int *order, size_t n,
		 uint8_t **out, size_t *out_len)
{
	const char *ops[MAX_OPS];
	size_t op_lens[MAX_OPS];

	for (size_t i = 0; i < n; i++) {
		ops[i] = (const char *)vals[order[i]];
		op_lens[i] = lens[order[i]];
	}
	assert_int_equal(codec_merge(NULL, 0, ops, op_lens, n, out, out_len), 0);
	assert_non_null(*out);
	assert_true(codec_value_entries(*out, *out_len) > 0);
}

static void test_fold_keeps_highest_version_per_offset_in_any_order(void **state)
{
	/* Offset 10 is contested at versions 1, 3, 2; 20 and 30 each appear once. */
	uint8_t a[2 * CODEC_ENTRY_LEN], b[CODEC_ENTRY_LEN], c[2 * CODEC_ENTRY_LEN];
	const uint8_t *vals[] = { a, b, c };
	const size_t lens[] = { sizeof(a), sizeof(b), sizeof(c) };
	static const int perms[][3] = { { 0, 1, 2 }, { 0, 2, 1 }, { 1, 0, 2 },
					{ 1, 2, 0 }, { 2, 0, 1 }, { 2, 1, 0 } };

	put_entry(a, 0, 10, 1, 100);
	put_entry(a, 1, 20, 1, 200);
	put_entry(b, 0, 10, 3, 300);
	put_entry(c, 0, 10, 2, 400);
	put_entry(c, 1, 30, 2, 500);
	for (size_t p = 0; p < sizeof(perms) / sizeof(perms[0]); p++) {
		uint8_t *out;
		size_t len;

		fold(vals, lens, perms[p], 3, &out, &len);
		assert_int_equal(codec_value_entries(out, len), 3);
		assert_int_equal(value_at(out, len, 10), 300);
		assert_int_equal(value_at(out, len, 20), 200);
		assert_int_equal(value_at(out, len, 30), 500);
		free(out);
	}
}

static void test_fold_equal_versions_later_wins_and_neighbours_stay(void **state)
{
	uint8_t older[3 * CODEC_ENTRY_LEN], newer[CODEC_ENTRY_LEN];
	const uint8_t *vals[] = { older, newer };
	const size_t lens[] = { sizeof(older), sizeof(newer) };
	static const int forward[] = { 0, 1 }, backward[] = { 1, 0 };
	uint8_t *out;
	size_t len;

	put_entry(older, 0, 4, 7, 40);
	put_entry(older, 1, 5, 7, 50);
	put_entry(older, 2, 6, 7, 60);
	put_entry(newer, 0, 5, 7, 55);
	fold(vals, lens, forward, 2, &out, &len);
	assert_int_equal(codec_value_entries(out, len), 3);
	assert_int_equal(value_at(out, len, 4), 40);
	assert_int_equal(value_at(out, len, 5), 55);
	assert_int_equal(value_at(out, len, 6), 60);
	free(out);
	fold(vals, lens, backward, 2, &out, &len);
	assert_int_equal(value_at(out, len, 5), 50);
	assert_int_equal(value_at(out, len, 4), 40);
	assert_int_equal(value_at(out, len, 6), 60);
	free(out);
}

static void test_merge_folds_existing_first_and_refuses_corrupt_input(void **state)
{
	uint8_t base[2 * CODEC_ENTRY_LEN], op[CODEC_ENTRY_LEN], bad[CODEC_ENTRY_LEN - 1] = { 0 };
	const char *ops[] = { (const char *)op };
	size_t op_lens[] = { sizeof(op) };
	const char *bad_ops[] = { (const char *)op, (const char *)bad };
	size_t bad_lens[] = { sizeof(op), sizeof(bad) };
	uint8_t *out;
	size_t len;

	put_entry(base, 0, 0, 5, 1);
	put_entry(base, 1, CODEC_BUCKET_SPAN - 1, 5, 2);
	put_entry(op, 0, 0, 5, 3); /* equal version, offered after the existing value */
	assert_int_equal(codec_merge((const char *)base, sizeof(base), ops, op_lens, 1, &out,
				     &len),
			 0);
	assert_int_equal(len, 2 * CODEC_ENTRY_LEN);
	assert_int_equal(value_at(out, len, 0), 3);
	assert_int_equal(value_at(out, len, CODEC_BUCKET_SPAN - 1), 2);
	free(out);

	errno = 0;
	assert_int_equal(codec_merge((const char *)bad, sizeof(bad), ops, op_lens, 1, &out, &len),
			 -1);
	assert_int_equal(errno, EINVAL);
	assert_null(out);
	errno = 0;
	assert_int_equal(codec_merge(NULL, 0, bad_ops, bad_lens, 2, &out, &len), -1);
	assert_int_equal(errno, EINVAL);
	assert_null(out);
	/* Nothing to fold gives nothing. */
	assert_int_equal(codec_merge(NULL, 0, NULL, NULL, 0, &out, &len), 0);
	assert_null(out);
	assert_int_equal(len, 0);
}

static void test_slots_drain_in_offset_order_and_empty_the_table(void **state)
{
	static const unsigned offs[] = { 200, 3, CODEC_BUCKET_SPAN - 1, 64, 0, 63, 3 };
	const size_t n = sizeof(offs) / sizeof(offs[0]);
	uint8_t in[sizeof(offs) / sizeof(offs[0])][CODEC_ENTRY_LEN];
	uint8_t out[CODEC_VALUE_MAX];
	struct codec_slots t;
	struct rec r;
	size_t len;

	codec_slots_reset(&t);
	for (size_t i = 0; i < n; i++) {
		put_entry(in[i], 0, offs[i], 1, (int64_t)i);
		codec_slots_offer(&t, in[i]);
	}
	assert_int_equal(codec_slots_count(&t), n - 1); /* offset 3 twice */
	len = codec_slots_drain(&t, out);
	assert_int_equal(len, (n - 1) * CODEC_ENTRY_LEN);
	assert_int_equal(codec_value_entries(out, len), n - 1);
	assert_int_equal(codec_slots_count(&t), 0);
	codec_value_decode(out, 0, 0, &r);
	assert_true(r.ts == 0);
	codec_value_decode(out, n - 2, 0, &r);
	assert_true(r.ts == CODEC_BUCKET_SPAN - 1);
	assert_int_equal(value_at(out, len, 3), n - 1); /* the later of two equal versions */
	/* The drained table is empty: reusing it folds only what is offered next. */
	codec_slots_offer(&t, in[1]);
	assert_int_equal(codec_slots_drain(&t, out), CODEC_ENTRY_LEN);
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
		cmocka_unit_test(test_key_order_is_name_then_signed_bucket),
		cmocka_unit_test(test_prefix_name_never_mixes_and_series_bounds_fence_it),
		cmocka_unit_test(test_key_decodes_to_name_and_bucket),
		cmocka_unit_test(test_entry_round_trips_ints_and_double_bits),
		cmocka_unit_test(test_entry_bytes_are_little_endian),
		cmocka_unit_test(test_value_validation_rejects_bad_lengths_types_and_order),
		cmocka_unit_test(test_value_find_and_decode_by_timestamp),
		cmocka_unit_test(test_fold_keeps_highest_version_per_offset_in_any_order),
		cmocka_unit_test(test_fold_equal_versions_later_wins_and_neighbours_stay),
		cmocka_unit_test(test_merge_folds_existing_first_and_refuses_corrupt_input),
		cmocka_unit_test(test_slots_drain_in_offset_order_and_empty_the_table),
		cmocka_unit_test(test_hwm_round_trips_and_checks_its_length),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
