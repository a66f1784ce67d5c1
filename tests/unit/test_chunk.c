/*
 * test_chunk.c - the compressed bucket format and its last-write-wins fold:
 * every value bit and type round-trips whatever encoding a chunk picks, the
 * decoder refuses every malformed or truncated chunk, and the fold keeps the
 * highest version per offset (ties: the later).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "temporis/data/chunk.h"
#include "temporis/data/record.h"

#define SPAN 256
#define MAX_OFF (SPAN - 1)
#define RANDOM_CHUNKS 20000
#define SEED 20261201u

static uint64_t dbits(double d)
{
	uint64_t b;

	memcpy(&b, &d, sizeof(b));
	return b;
}

static struct chunk_entry ent(uint16_t off, uint64_t version, uint8_t type, uint64_t bits)
{
	return (struct chunk_entry){ .version = version, .bits = bits, .off = off, .type = type };
}

/* Encode, decode, and compare every field; returns the encoded length. */
static size_t round_trip(const struct chunk_entry *e, size_t n)
{
	uint8_t buf[8192];
	struct chunk_entry out[SPAN];
	size_t len;

	assert_true(chunk_bound(n) <= sizeof(buf));
	len = chunk_encode(e, n, buf);
	assert_true(len <= chunk_bound(n));
	assert_int_equal(chunk_count(buf, len), n);
	assert_int_equal(chunk_decode(buf, len, MAX_OFF, out, SPAN), n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(out[i].off, e[i].off);
		assert_int_equal(out[i].type, e[i].type);
		assert_true(out[i].version == e[i].version);
		assert_true(out[i].bits == e[i].bits);
	}
	return len;
}

static void test_integers_round_trip_at_the_extremes(void **state)
{
	const int64_t v[] = { 0, -1, 1, INT64_MIN, INT64_MAX, INT64_MIN + 1, 42, -42 };
	struct chunk_entry e[8];

	for (size_t i = 0; i < 8; i++)
		e[i] = ent((uint16_t)(i * 3 + 1), UINT64_MAX - i * 1000, REC_INT, (uint64_t)v[i]);
	round_trip(e, 8);
	e[0] = ent(MAX_OFF, 0, REC_INT, (uint64_t)INT64_MIN);
	round_trip(e, 1);
}

static void test_doubles_keep_every_bit(void **state)
{
	const double v[] = { 0.1, -0.0, 0.0, 1e308, 5e-324, -5e-324, 47.38, 1e-300,
			     123456789012345.6, 2.5, -1.75, 9007199254740993.0 };
	const size_t n = sizeof(v) / sizeof(v[0]);
	struct chunk_entry e[sizeof(v) / sizeof(v[0])];

	for (size_t i = 0; i < n; i++)
		e[i] = ent((uint16_t)(i * 7), 5, REC_DOUBLE, dbits(v[i]));
	round_trip(e, n);
	/* NaN payloads and infinities are not ingested, but the format keeps them too. */
	e[0] = ent(0, 1, REC_DOUBLE, 0x7ff8000000000001ull);
	e[1] = ent(1, 2, REC_DOUBLE, dbits(INFINITY));
	e[2] = ent(2, 3, REC_DOUBLE, dbits(-INFINITY));
	round_trip(e, 3);
}

static void test_short_decimals_are_compact(void **state)
{
	struct chunk_entry e[25];
	size_t len;

	for (int i = 0; i < 25; i++)
		e[i] = ent((uint16_t)(i * 10), 1000 + (uint64_t)i * 100, REC_DOUBLE,
			   dbits(50.0 + (double)(i % 7) * 0.37 - (double)(i % 3) * 0.11));
	len = round_trip(e, 25);
	/* regular offsets: none; versions one byte; mantissa deltas one or two bytes */
	assert_true(len < 25 * 4);
}

static void test_mixed_types_in_one_bucket(void **state)
{
	struct chunk_entry e[5] = {
		ent(0, 9, REC_INT, 7), ent(1, 3, REC_DOUBLE, dbits(7.0)),
		ent(2, 9, REC_INT, (uint64_t)-7), ent(200, 1, REC_DOUBLE, dbits(-0.0)),
		ent(255, 2, REC_INT, 0),
	};

	round_trip(e, 5);
}

static void test_irregular_offsets_and_versions(void **state)
{
	struct chunk_entry e[6] = {
		ent(3, 100, REC_INT, 1), ent(4, 50, REC_INT, 2),   ent(9, 50, REC_INT, 3),
		ent(10, 1u << 31, REC_INT, 4), ent(100, 0, REC_INT, 5), ent(255, UINT64_MAX, REC_INT, 6),
	};

	round_trip(e, 6);
}

static void test_random_chunks_round_trip(void **state)
{
	struct chunk_entry e[SPAN];

	srand(SEED);
	for (int c = 0; c < RANDOM_CHUNKS; c++) {
		size_t n = 0;
		int kind = rand() % 4;

		for (int off = rand() % 8; off < SPAN && n < SPAN; off += 1 + rand() % 12) {
			uint64_t bits = ((uint64_t)rand() << 42) ^ ((uint64_t)rand() << 21) ^
					(uint64_t)rand();
			uint8_t type = kind == 0 ? REC_INT : kind == 1 ? REC_DOUBLE
							 : (rand() & 1 ? REC_INT : REC_DOUBLE);

			if (kind == 3 && type == REC_DOUBLE)
				bits = dbits((double)(rand() % 100000) / 100.0);
			e[n++] = ent((uint16_t)off, (uint64_t)rand() * (uint64_t)(rand() % 3), type,
				     bits);
		}
		if (n > 0)
			round_trip(e, n);
	}
}

static void test_malformed_chunks_are_refused(void **state)
{
	struct chunk_entry e[4] = { ent(1, 1, REC_INT, 10), ent(5, 2, REC_DOUBLE, dbits(0.5)),
				    ent(9, 3, REC_INT, 30), ent(200, 4, REC_DOUBLE, dbits(1e-3)) };
	struct chunk_entry out[SPAN];
	uint8_t buf[512], bad[520];
	size_t len = chunk_encode(e, 4, buf);

	/* every truncation and one trailing byte */
	for (size_t cut = 0; cut < len; cut++)
		assert_int_equal(chunk_decode(buf, cut, MAX_OFF, out, SPAN), -1);
	memcpy(bad, buf, len);
	bad[len] = 0;
	assert_int_equal(chunk_decode(bad, len + 1, MAX_OFF, out, SPAN), -1);
	/* wrong magic, more entries than room, offsets beyond the bucket */
	memcpy(bad, buf, len);
	bad[0] ^= 0xff;
	assert_int_equal(chunk_decode(bad, len, MAX_OFF, out, SPAN), -1);
	assert_int_equal(chunk_count(bad, len), -1);
	assert_int_equal(chunk_decode(buf, len, MAX_OFF, out, 3), -1);
	assert_int_equal(chunk_decode(buf, len, 199, out, SPAN), -1);
	/* unknown flags */
	memcpy(bad, buf, len);
	bad[2] |= 0x80;
	assert_int_equal(chunk_decode(bad, len, MAX_OFF, out, SPAN), -1);
	/* and the whole thing still decodes */
	assert_int_equal(chunk_decode(buf, len, MAX_OFF, out, SPAN), 4);
}

static void test_fold_keeps_highest_version_ties_to_later(void **state)
{
	uint64_t used[SPAN / 64] = { 0 };
	struct chunk_entry slots[SPAN], out[SPAN];
	struct chunk_fold f = { .span = SPAN, .used = used, .slots = slots };
	const struct chunk_entry offers[] = {
		ent(10, 9, REC_INT, 90), ent(10, 3, REC_INT, 30),   /* higher first: kept */
		ent(11, 3, REC_INT, 31), ent(11, 9, REC_INT, 91),   /* higher last: kept */
		ent(12, 5, REC_INT, 51), ent(12, 5, REC_INT, 52),   /* equal: the later */
		ent(2, 1, REC_DOUBLE, dbits(-0.0)),                 /* a neighbour */
	};

	for (size_t i = 0; i < sizeof(offers) / sizeof(offers[0]); i++)
		chunk_fold_offer(&f, &offers[i]);
	assert_int_equal(chunk_fold_drain(&f, out), 4);
	assert_int_equal(out[0].off, 2);
	assert_true(out[0].bits == dbits(-0.0));
	assert_int_equal(out[1].bits, 90);
	assert_int_equal(out[2].bits, 91);
	assert_int_equal(out[3].bits, 52);
	/* drained means empty */
	assert_int_equal(chunk_fold_drain(&f, out), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_integers_round_trip_at_the_extremes),
		cmocka_unit_test(test_doubles_keep_every_bit),
		cmocka_unit_test(test_short_decimals_are_compact),
		cmocka_unit_test(test_mixed_types_in_one_bucket),
		cmocka_unit_test(test_irregular_offsets_and_versions),
		cmocka_unit_test(test_random_chunks_round_trip),
		cmocka_unit_test(test_malformed_chunks_are_refused),
		cmocka_unit_test(test_fold_keeps_highest_version_ties_to_later),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
