/*
 * test_head.c - the in-memory head of committed records: grouping per (source,
 * series, bucket), reads of one bucket and of a series' buckets, the seal order
 * (RocksDB key order) with last-write-wins folding, and rollback of a failed
 * commit leaving exactly what was there before it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "temporis/data/head.h"
#include "temporis/data/record.h"

#define SPAN 256
#define MANY_SERIES 50000
#define NAME_MAX_LEN 32

static struct chunk_entry ent(uint16_t off, uint64_t version, int64_t v)
{
	return (struct chunk_entry){ .version = version, .bits = (uint64_t)v, .off = off,
				     .type = REC_INT };
}

static void add(struct head *h, uint32_t src, const char *name, int64_t bucket,
		struct chunk_entry e)
{
	assert_int_equal(head_add(h, src, name, strlen(name), bucket, &e), 0);
}

struct seen {
	size_t n;
	int64_t v[64];
};

static void collect(const struct chunk_entry *e, void *arg)
{
	struct seen *s = arg;

	s->v[s->n++] = (int64_t)e->bits;
}

struct sealed {
	size_t groups, entries;
	char keys[64][48];
	int64_t last_value;
};

static int on_group(uint32_t src, const char *name, size_t len, int64_t bucket,
		    const struct chunk_entry *e, size_t n, void *arg)
{
	struct sealed *s = arg;

	if (s->groups < 64)
		snprintf(s->keys[s->groups], sizeof(s->keys[0]), "%u/%.*s/%lld", src, (int)len, name,
			 (long long)bucket);
	s->groups++;
	s->entries += n;
	for (size_t i = 1; i < n; i++)
		assert_true(e[i].off > e[i - 1].off);
	s->last_value = n ? (int64_t)e[n - 1].bits : 0;
	return 0;
}

static void test_groups_and_reads(void **state)
{
	struct head *h = head_new();
	struct seen s = { 0 };
	int64_t buckets[8];

	assert_non_null(h);
	add(h, 1, "cpu", 0, ent(5, 1, 50));
	add(h, 1, "cpu", 256, ent(0, 2, 60));
	add(h, 1, "cpu", 0, ent(6, 3, 51));
	add(h, 2, "cpu", 0, ent(5, 4, 99));     /* another source, same name */
	add(h, 1, "cpux", -256, ent(1, 5, 7));  /* a longer name, a negative bucket */
	assert_int_equal(head_records(h), 5);
	assert_int_equal(head_groups(h), 4);
	assert_true(head_each_entry(h, 1, "cpu", 3, 0, collect, &s));
	assert_int_equal(s.n, 2);
	assert_int_equal(s.v[0], 50);
	assert_int_equal(s.v[1], 51);
	assert_false(head_each_entry(h, 1, "cpu", 3, 512, collect, &s));
	assert_false(head_each_entry(h, 3, "cpu", 3, 0, collect, &s));
	assert_int_equal(head_buckets(h, 1, "cpu", 3, INT64_MIN, INT64_MAX, buckets, 8), 2);
	assert_int_equal(buckets[0], 0);
	assert_int_equal(buckets[1], 256);
	assert_int_equal(head_buckets(h, 1, "cpu", 3, 1, INT64_MAX, buckets, 8), 1);
	assert_int_equal(buckets[0], 256);
	head_free(h);
}

static void test_seal_order_and_fold(void **state)
{
	struct head *h = head_new();
	struct chunk_entry scratch[2 * SPAN];
	struct sealed s = { 0 };

	assert_non_null(h);
	add(h, 2, "a", 0, ent(1, 1, 1));
	add(h, 1, "ab", 0, ent(1, 1, 1));
	add(h, 1, "a", 256, ent(1, 1, 1));
	add(h, 1, "a", -256, ent(1, 1, 1));
	add(h, 1, "a", 0, ent(7, 9, 90));
	add(h, 1, "a", 0, ent(7, 3, 30));       /* lower version: loses */
	add(h, 1, "a", 0, ent(8, 5, 51));
	add(h, 1, "a", 0, ent(8, 5, 52));       /* equal version: the later wins */
	assert_int_equal(head_each_group(h, scratch, SPAN, on_group, &s), 0);
	assert_int_equal(s.groups, 5);
	assert_string_equal(s.keys[0], "1/a/-256");
	assert_string_equal(s.keys[1], "1/a/0");
	assert_string_equal(s.keys[2], "1/a/256");
	assert_string_equal(s.keys[3], "1/ab/0");
	assert_string_equal(s.keys[4], "2/a/0");
	assert_int_equal(s.entries, 6);
	head_free(h);
}

static void test_rollback_restores_the_mark(void **state)
{
	struct head *h = head_new();
	struct chunk_entry scratch[2 * SPAN];
	struct sealed before = { 0 }, after = { 0 };
	struct seen s = { 0 };
	char name[NAME_MAX_LEN];

	assert_non_null(h);
	head_mark(h);
	add(h, 1, "x", 0, ent(1, 1, 10));
	add(h, 1, "y", 0, ent(1, 1, 20));
	head_mark(h);                            /* the commit above succeeded */
	add(h, 1, "x", 0, ent(2, 2, 11));       /* an old group grows */
	add(h, 1, "x", 256, ent(2, 2, 12));     /* an old series gets a new bucket */
	for (int i = 0; i < MANY_SERIES; i++) {  /* new series, enough to regrow the tables */
		snprintf(name, sizeof(name), "s%d", i);
		add(h, 1, name, 0, ent(0, 2, i));
	}
	head_rollback(h);
	assert_int_equal(head_records(h), 2);
	assert_int_equal(head_groups(h), 2);
	assert_true(head_each_entry(h, 1, "x", 1, 0, collect, &s));
	assert_int_equal(s.n, 1);
	assert_false(head_each_entry(h, 1, "x", 1, 256, collect, &s));
	assert_false(head_each_entry(h, 1, "s7", 2, 0, collect, &s));
	/* and it keeps working: the same adds again land where they should */
	add(h, 1, "x", 0, ent(2, 2, 11));
	add(h, 1, "s7", 2, ent(0, 2, 7));
	s.n = 0;
	assert_true(head_each_entry(h, 1, "x", 1, 0, collect, &s));
	assert_int_equal(s.n, 2);
	assert_int_equal(s.v[1], 11);
	assert_int_equal(head_each_group(h, scratch, SPAN, on_group, &after), 0);
	assert_int_equal(after.groups, 3);
	head_clear(h);
	assert_int_equal(head_records(h), 0);
	assert_int_equal(head_each_group(h, scratch, SPAN, on_group, &before), 0);
	assert_int_equal(before.groups, 0);
	head_free(h);
}

static int count_series(const char *name, size_t len, int64_t first, int64_t last, void *arg)
{
	(*(size_t *)arg)++;
	assert_true(first <= last);
	return 0;
}

static void test_many_series(void **state)
{
	struct head *h = head_new();
	char name[NAME_MAX_LEN];
	size_t n = 0;
	struct seen s = { 0 };

	assert_non_null(h);
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < MANY_SERIES; i++) {
			snprintf(name, sizeof(name), "cpu.usage_user.host_%d", i);
			add(h, 1, name, (int64_t)round * 256, ent(0, (uint64_t)round, i));
		}
	assert_int_equal(head_records(h), 3 * MANY_SERIES);
	assert_int_equal(head_groups(h), 3 * MANY_SERIES);
	assert_int_equal(head_each_series(h, 1, count_series, &n), 0);
	assert_int_equal(n, MANY_SERIES);
	assert_true(head_each_entry(h, 1, "cpu.usage_user.host_4242", 24, 512, collect, &s));
	assert_int_equal(s.v[0], 4242);
	head_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_groups_and_reads),
		cmocka_unit_test(test_seal_order_and_fold),
		cmocka_unit_test(test_rollback_restores_the_mark),
		cmocka_unit_test(test_many_series),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
