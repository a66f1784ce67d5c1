/*
 * test_store_format.c - unit tests of the bucket format through the real store:
 * one merge operand per (source, series, bucket), timestamps at bucket edges,
 * last write wins per offset in any apply order, and what the store does with
 * databases of another format and with corrupt bucket values (raw RocksDB writes).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <math.h>

#include <cmocka.h>
#include <rocksdb/c.h>

#include "store_fixture.h"
#include "temporis/data/codec.h"
#include "temporis/data/store.h"
#include "temporis/data/store_batch.h"
#include "temporis/data/store_read.h"

/* ---- time buckets ---- */

#define FOLD_SERIES 100
#define FOLD_SECONDS 10
#define FOLD_BASE_TS 1700000768 /* a multiple of the bucket span: 10 seconds share one bucket */
#define SRC2 2u
#define MEMTABLE_ENTRIES "rocksdb.num-entries-active-mem-table"

static uint64_t memtable_entries(struct store *st, uint32_t src)
{
	uint64_t n = 0;

	assert_int_equal(store_source_property_int(st, src, MEMTABLE_ENTRIES, &n), 0);
	return n;
}

static void queue_fold_body(struct store *st, struct store_batch *b, uint32_t src)
{
	char name[16];

	for (int s = 0; s < FOLD_SERIES; s++) {
		snprintf(name, sizeof(name), "s%03d", s);
		for (int64_t t = 0; t < FOLD_SECONDS; t++) {
			struct rec r = int_rec(name, FOLD_BASE_TS + t, s * 1000 + t);

			assert_int_equal(store_batch_merge(st, b, src, 1, &r), 0);
		}
	}
}

static void test_batch_folds_records_into_one_operand_per_series_bucket(void **state)
{
	struct fixture *f = *state;
	struct store_batch *b = store_batch_new();
	char name[16], err[ERR_LEN] = "";
	uint64_t dummy;

	assert_non_null(b);
	assert_int_equal(FOLD_BASE_TS % (1 << CODEC_BUCKET_BITS), 0);
	assert_true(memtable_entries(f->st, SRC) == 0);
	queue_fold_body(f->st, b, SRC);
	assert_int_equal(store_batch_count(b), FOLD_SERIES * FOLD_SECONDS);
	assert_int_equal(store_batch_operands(b), 0);
	if (store_batch_commit(f->st, b, err, sizeof(err)) != 0)
		fail_msg("commit: %s", err);
	assert_int_equal(store_batch_operands(b), FOLD_SERIES);
	/* Committed records sit in the commit log and the head until a seal writes
	 * them into the family: one operand per series bucket. */
	assert_true(memtable_entries(f->st, SRC) == 0);
	assert_int_equal(store_seal(f->st), 0);
	/* ...and the series index learns each series once */
	assert_true(memtable_entries(f->st, SRC) == FOLD_SERIES + FOLD_SERIES);
	store_batch_clear(b);
	assert_int_equal(store_batch_operands(b), 0);
	for (int s = 0; s < FOLD_SERIES; s++) {
		snprintf(name, sizeof(name), "s%03d", s);
		for (int64_t t = 0; t < FOLD_SECONDS; t++)
			assert_int_equal(get_int(f->st, SRC, name, FOLD_BASE_TS + t), s * 1000 + t);
	}
	/* The same series and bucket in two sources are two operands; a reused batch
	 * starts from zero groups. */
	assert_int_equal(store_source_create(f->st, SRC2, err, sizeof(err)), 0);
	queue_fold_body(f->st, b, SRC);
	queue_fold_body(f->st, b, SRC2);
	commit_keep(f->st, b);
	assert_int_equal(store_batch_operands(b), 2 * FOLD_SERIES);
	store_batch_free(b);
	assert_int_equal(store_seal(f->st), 0);
	assert_true(memtable_entries(f->st, SRC2) == FOLD_SERIES + FOLD_SERIES);
	assert_int_equal(store_source_property_int(f->st, 99, MEMTABLE_ENTRIES, &dummy), -1);
	assert_int_equal(store_source_property_int(f->st, SRC, "rocksdb.no-such-property",
						   &dummy),
			 -1);
}

/* Timestamps around bucket and partition edges: INT64_MIN/MAX, -300..-1, 250..260,
 * 1019..1029 and 65531..65541. */
#define EDGE_NEG_FIRST (-300)
#define EDGE_POS_FIRST 250
#define EDGE_POS_LAST 260
#define EDGE_WIDTH 5
#define EDGE_BUCKET 1024
#define EDGE_PARTITION 65536
#define EDGE_MAX 360

struct ts_list {
	size_t n;
	int64_t ts[EDGE_MAX];
	int64_t v[EDGE_MAX];
};

static int64_t edge_value(int64_t ts)
{
	return ts ^ INT64_C(0x5a5a5a5a);
}

/* The edge set in ascending order. */
static void edge_set(struct ts_list *l)
{
	l->n = 0;
	l->ts[l->n++] = INT64_MIN;
	l->ts[l->n++] = INT64_MIN + 1;
	for (int64_t t = EDGE_NEG_FIRST; t < 0; t++)
		l->ts[l->n++] = t;
	for (int64_t t = EDGE_POS_FIRST; t <= EDGE_POS_LAST; t++)
		l->ts[l->n++] = t;
	for (int64_t t = EDGE_BUCKET - EDGE_WIDTH; t <= EDGE_BUCKET + EDGE_WIDTH; t++)
		l->ts[l->n++] = t;
	for (int64_t t = EDGE_PARTITION - EDGE_WIDTH; t <= EDGE_PARTITION + EDGE_WIDTH; t++)
		l->ts[l->n++] = t;
	l->ts[l->n++] = INT64_MAX - 1;
	l->ts[l->n++] = INT64_MAX;
	for (size_t i = 0; i < l->n; i++)
		l->v[i] = edge_value(l->ts[i]);
}

/* Writes the edge set into series name, shuffled, committing every chunk records. */
static void load_edges(struct store *st, const char *name, size_t chunk, unsigned seed)
{
	static struct ts_list l;
	struct store_batch *b = store_batch_new();

	assert_non_null(b);
	edge_set(&l);
	srand(seed);
	for (size_t i = l.n - 1; i > 0; i--) {
		size_t j = (size_t)rand() % (i + 1);
		int64_t t = l.ts[i];

		l.ts[i] = l.ts[j];
		l.ts[j] = t;
	}
	for (size_t i = 0; i < l.n; i++) {
		struct rec r = int_rec(name, l.ts[i], edge_value(l.ts[i]));

		assert_int_equal(store_batch_merge(st, b, SRC, 1, &r), 0);
		if ((i + 1) % chunk == 0 || i + 1 == l.n)
			commit(st, b);
	}
	store_batch_free(b);
}

static int collect_list(const struct rec *r, void *arg)
{
	struct ts_list *l = arg;

	assert_true(l->n < EDGE_MAX);
	assert_int_equal(r->type, REC_INT);
	l->ts[l->n] = r->ts;
	l->v[l->n] = r->v.i;
	l->n++;
	return 0;
}

/* Pages through [start, end) with limit, resuming at next_ts; appends to got. */
static void page_all(struct store *st, const char *name, int64_t start, int64_t end,
		     uint32_t limit, struct ts_list *got)
{
	bool more;
	int64_t next;

	got->n = 0;
	if (end == INT64_MIN)
		return;  /* nothing is below the smallest timestamp */
	do {
		size_t before = got->n;

		more = false;
		/* the store's bounds are inclusive */
		assert_int_equal(store_scan(st, SRC, name, strlen(name), start, end - 1, limit,
					    collect_list, got, &more, &next),
				 0);
		if (more) {
			assert_int_equal(got->n - before, limit);
			assert_true(next > got->ts[got->n - 1] && next < end);
			start = next;
		}
	} while (more);
}

static void assert_range(const struct ts_list *all, int64_t start, int64_t end,
			 const struct ts_list *got)
{
	size_t k = 0;

	for (size_t i = 0; i < all->n; i++) {
		if (all->ts[i] < start || all->ts[i] >= end)
			continue;
		assert_true(k < got->n);
		assert_true(got->ts[k] == all->ts[i]);
		assert_true(got->v[k] == all->v[i]);
		k++;
	}
	assert_int_equal(k, got->n);
}

static void check_edges(struct store *st, const char *name)
{
	static const int64_t points[] = { INT64_MIN, INT64_MIN + 1, INT64_MIN + 2, -300, -290,
					  -257, -256, -255, -1, 0, 1, 250, 255, 256,
					  257, 260, 261, 1023, 1024, 1025, 65535, 65536, 65537,
					  INT64_MAX - 1, INT64_MAX };
	const size_t np = sizeof(points) / sizeof(points[0]);
	static struct ts_list all, got;

	edge_set(&all);
	for (size_t i = 0; i < all.n; i++)
		assert_true(get_int(st, SRC, name, all.ts[i]) == all.v[i]);
	for (uint32_t limit = 1; limit <= all.n; limit++) {
		page_all(st, name, INT64_MIN, INT64_MAX, limit, &got);
		assert_int_equal(got.n, all.n - 1); /* end is exclusive: INT64_MAX is out */
		assert_range(&all, INT64_MIN, INT64_MAX, &got);
	}
	for (size_t i = 0; i < np; i++)
		for (size_t j = i + 1; j < np; j++) {
			page_all(st, name, points[i], points[j], 7, &got);
			assert_range(&all, points[i], points[j], &got);
		}
}

static void test_bucket_edges_read_back_in_one_batch_and_across_batches(void **state)
{
	struct fixture *f = *state;
	struct series_seen ss = { 0 };

	load_edges(f->st, "one", EDGE_MAX, 1);
	load_edges(f->st, "each", 1, 2);
	load_edges(f->st, "chunk", 13, 3);
	check_edges(f->st, "one");
	check_edges(f->st, "each");
	check_edges(f->st, "chunk");
	assert_int_equal(store_flush(f->st), 0);
	assert_int_equal(store_compact(f->st), 0);
	reopen_store(f);
	check_edges(f->st, "each");
	assert_int_equal(store_series(f->st, SRC, collect_series, &ss), 0);
	assert_int_equal(ss.n, 3);
	for (size_t i = 0; i < ss.n; i++) {
		assert_true(ss.first[i] == INT64_MIN);
		assert_true(ss.last[i] == INT64_MAX);
	}
}

static void test_series_first_last_inside_buckets(void **state)
{
	struct fixture *f = *state;
	struct series_seen ss = { 0 };

	put1(f->st, SRC, 1, int_rec("x", 300, 1));
	put1(f->st, SRC, 1, int_rec("x", -3, 1));
	put1(f->st, SRC, 1, int_rec("x", 290, 1));
	put1(f->st, SRC, 1, int_rec("x", -200, 1));
	assert_int_equal(store_series(f->st, SRC, collect_series, &ss), 0);
	assert_int_equal(ss.n, 1);
	assert_int_equal(ss.first[0], -200);
	assert_int_equal(ss.last[0], 300);
}

/* ---- last write wins per offset inside a bucket ---- */

static void merge1(struct store *st, struct store_batch *b, uint64_t version, struct rec r)
{
	assert_int_equal(store_batch_merge(st, b, SRC, version, &r), 0);
}

static void test_lww_inside_one_batch_and_across_batches(void **state)
{
	struct fixture *f = *state;
	struct store_batch *b = store_batch_new();

	assert_non_null(b);
	merge1(f->st, b, 9, int_rec("w", 10, 90));  /* higher version first */
	merge1(f->st, b, 3, int_rec("w", 10, 30));
	merge1(f->st, b, 3, int_rec("w", 11, 31));  /* higher version last */
	merge1(f->st, b, 9, int_rec("w", 11, 91));
	merge1(f->st, b, 5, int_rec("w", 12, 51));  /* equal versions: later wins */
	merge1(f->st, b, 5, int_rec("w", 12, 52));
	merge1(f->st, b, 1, int_rec("w", 13, 13));  /* a neighbour is left alone */
	commit(f->st, b);
	assert_int_equal(get_int(f->st, SRC, "w", 10), 90);
	assert_int_equal(get_int(f->st, SRC, "w", 11), 91);
	assert_int_equal(get_int(f->st, SRC, "w", 12), 52);
	assert_int_equal(get_int(f->st, SRC, "w", 13), 13);
	assert_int_equal(store_flush(f->st), 0);
	merge1(f->st, b, 8, int_rec("w", 10, 80));  /* lower: loses to the stored one */
	merge1(f->st, b, 10, int_rec("w", 11, 100)); /* higher: wins */
	merge1(f->st, b, 5, int_rec("w", 12, 53));  /* equal: the later commit wins */
	commit(f->st, b);
	store_batch_free(b);
	for (int pass = 0; pass < 2; pass++) {
		assert_int_equal(get_int(f->st, SRC, "w", 10), 90);
		assert_int_equal(get_int(f->st, SRC, "w", 11), 100);
		assert_int_equal(get_int(f->st, SRC, "w", 12), 53);
		assert_int_equal(get_int(f->st, SRC, "w", 13), 13);
		assert_int_equal(store_compact(f->st), 0);
		reopen_store(f);
	}
}

#define ORDER_FIRST_TS 200
#define ORDER_TS 112 /* 200..311 spans the bucket edge at 256 */
#define ORDER_VERSIONS 8
#define ORDER_CHUNKS 9

static void check_order(struct store *st)
{
	static struct ts_list got;

	for (int64_t t = 0; t < ORDER_TS; t++)
		assert_int_equal(get_int(st, SRC, "o", ORDER_FIRST_TS + t),
				 lww_value((int)t, ORDER_VERSIONS));
	page_all(st, "o", INT64_MIN, INT64_MAX, ORDER_TS, &got);
	assert_int_equal(got.n, ORDER_TS);
	for (size_t i = 0; i < got.n; i++) {
		assert_int_equal(got.ts[i], ORDER_FIRST_TS + (int64_t)i);
		assert_int_equal(got.v[i], lww_value((int)i, ORDER_VERSIONS));
	}
}

static void test_lww_per_offset_independent_of_apply_order(void **state)
{
	struct fixture *f = *state;
	static struct op ops[ORDER_TS * ORDER_VERSIONS];
	struct store_batch *b = store_batch_new();
	size_t n = 0, per_chunk;

	assert_non_null(b);
	for (int t = 0; t < ORDER_TS; t++)
		for (uint64_t v = 1; v <= ORDER_VERSIONS; v++)
			ops[n++] = (struct op){ t, v };
	shuffle(ops, n, 777);
	per_chunk = (n + ORDER_CHUNKS - 1) / ORDER_CHUNKS;
	for (size_t i = 0; i < n; i++) {
		merge1(f->st, b, ops[i].version,
		       int_rec("o", ORDER_FIRST_TS + ops[i].key,
			       lww_value(ops[i].key, ops[i].version)));
		if ((i + 1) % per_chunk != 0 && i + 1 != n)
			continue;
		commit(f->st, b);
		/* Operands spread over SST files, compacted output and the memtable. */
		if ((i + 1) / per_chunk % 3 == 0)
			assert_int_equal(store_flush(f->st), 0);
		if ((i + 1) / per_chunk == ORDER_CHUNKS / 2)
			assert_int_equal(store_compact(f->st), 0);
	}
	store_batch_free(b);
	check_order(f->st);
	assert_int_equal(store_flush(f->st), 0);
	check_order(f->st);
	assert_int_equal(store_compact(f->st), 0);
	check_order(f->st);
	reopen_store(f);
	check_order(f->st);
}

/* ---- raw RocksDB access: older databases and corrupt values ---- */

#define MERGE_NAME_V2 "temporis.lww.v2"

static char *refuse_full_merge(void *state, const char *key, size_t klen, const char *ex,
			       size_t exlen, const char *const *ops, const size_t *lens, int n,
			       unsigned char *success, size_t *new_len)
{
	*success = 0;
	return NULL;
}

static char *refuse_partial_merge(void *state, const char *key, size_t klen,
				  const char *const *ops, const size_t *lens, int n,
				  unsigned char *success, size_t *new_len)
{
	*success = 0;
	return NULL;
}

static void no_delete(void *state, const char *v, size_t len)
{
}

static void no_destroy(void *state)
{
}

static const char *v2_name(void *state)
{
	return MERGE_NAME_V2;
}

/*
 * Writes one key of family cf_name in the closed database dir with RocksDB alone,
 * as a put or as a merge operand. The merge operator only lends its name: the
 * write never calls it.
 */
static void raw_write(const char *dir, const char *cf_name, const uint8_t *key, size_t klen,
		      const uint8_t *val, size_t vlen, bool merge)
{
	rocksdb_options_t *opts = rocksdb_options_create();
	rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
	rocksdb_column_family_handle_t *h[8];
	const rocksdb_options_t *cf_opts[8];
	char *rerr = NULL, **names;
	size_t n = 0, pick = SIZE_MAX;
	rocksdb_t *db;

	rocksdb_options_set_merge_operator(
		opts, rocksdb_mergeoperator_create(NULL, no_destroy, refuse_full_merge,
						   refuse_partial_merge, no_delete, v2_name));
	names = rocksdb_list_column_families(opts, dir, &n, &rerr);
	assert_null(rerr);
	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++) {
		cf_opts[i] = opts;
		if (strcmp(names[i], cf_name) == 0)
			pick = i;
	}
	assert_true(pick < n);
	db = rocksdb_open_column_families(opts, dir, (int)n, (const char *const *)names, cf_opts,
					  h, &rerr);
	assert_null(rerr);
	if (merge)
		rocksdb_merge_cf(db, wo, h[pick], (const char *)key, klen, (const char *)val,
				 vlen, &rerr);
	else
		rocksdb_put_cf(db, wo, h[pick], (const char *)key, klen, (const char *)val, vlen,
			       &rerr);
	assert_null(rerr);
	for (size_t i = 0; i < n; i++)
		rocksdb_column_family_handle_destroy(h[i]);
	rocksdb_close(db);
	rocksdb_list_column_families_destroy(names, n);
	rocksdb_writeoptions_destroy(wo);
	rocksdb_options_destroy(opts);
}

/*
 * The store's key of (name, bucket), built here independently of src/data/codec.c:
 * 0x01 | BE64(partition ^ sign bit) | name | 0x00 | bucket index in the partition,
 * with 65,536-second partitions of 1,024-second buckets.
 */
static size_t bucket_key(uint8_t *dst, const char *name, int64_t bucket)
{
	size_t nl = strlen(name);
	uint64_t flipped = ((uint64_t)bucket & ~0xffffull) ^ 0x8000000000000000ull;

	dst[0] = 1;
	for (int i = 0; i < 8; i++)
		dst[1 + i] = (uint8_t)(flipped >> (56 - 8 * i));
	memcpy(dst + 9, name, nl);
	dst[9 + nl] = 0;
	dst[10 + nl] = (uint8_t)(((uint64_t)bucket & 0xffff) >> 10);
	return nl + 11;
}

/* The key format 2 gave (name, bucket): name | 0x00 | BE64(bucket ^ sign bit). */
static size_t legacy_key(uint8_t *dst, const char *name, int64_t bucket)
{
	size_t nl = strlen(name);
	uint64_t flipped = (uint64_t)bucket ^ 0x8000000000000000ull;

	memcpy(dst, name, nl);
	dst[nl] = 0;
	for (int i = 0; i < 8; i++)
		dst[nl + 1 + i] = (uint8_t)(flipped >> (56 - 8 * i));
	return nl + 1 + 8;
}

static void expect_unreadable(struct store *st, const char *name)
{
	struct series_seen ss = { 0 };
	struct seen s = { 0 };
	struct rec out;
	bool more;
	int64_t next;

	assert_int_equal(store_get(st, SRC, name, strlen(name), 0, &out), -1);
	assert_int_equal(store_scan(st, SRC, name, strlen(name), 0, 9, 10, collect, &s, &more,
				    &next),
			 -1);
	assert_int_equal(store_series(st, SRC, collect_series, &ss), -1);
}

static void test_corrupt_bucket_values_fail_reads_and_merges(void **state)
{
	struct fixture *f = *state;
	/* Bytes that are no chunk: two 18-byte entries of the old format out of offset
	 * order; then 17 bytes, not even that. */
	static const uint8_t unordered[2 * 18] = { [0] = 5, [9] = REC_INT, [18] = 4,
						  [27] = REC_INT };
	static const uint8_t old_format[18 - 1] = { [8] = REC_INT };
	uint8_t key[64];
	size_t klen;

	store_close(f->st);
	f->st = NULL;
	klen = bucket_key(key, "bad", 0);
	raw_write(f->db, "src_1", key, klen, unordered, sizeof(unordered), false);
	/* and its series index entry, as a seal writes it: partition 0 to 0 */
	{
		static const uint8_t index[16] = { 0 };

		raw_write(f->db, "src_1", (const uint8_t *)"\x02" "bad", 4, index, sizeof(index),
			  false);
	}
	open_store(f);
	expect_unreadable(f->st, "bad");
	/* A good operand on top of the corrupt base: the full merge refuses it. */
	put1(f->st, SRC, 1, int_rec("bad", 1, 1));
	expect_unreadable(f->st, "bad");

	store_close(f->st);
	f->st = NULL;
	klen = bucket_key(key, "worse", 0);
	raw_write(f->db, "src_1", key, klen, old_format, sizeof(old_format), true);
	open_store(f);
	{
		struct rec out;

		assert_int_equal(store_get(f->st, SRC, "worse", 5, 0, &out), -1);
		/* Other series are unaffected. */
		put1(f->st, SRC, 1, int_rec("good", 0, 7));
		assert_int_equal(get_int(f->st, SRC, "good", 0), 7);
	}
}

static void test_open_refuses_database_without_format_marker(void **state)
{
	struct fixture *f = *state;
	char old[PATH_LEN], newer[PATH_LEN], err[ERR_LEN] = "";
	rocksdb_options_t *opts = rocksdb_options_create();
	rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
	struct store *st = NULL;
	char *rerr = NULL, **names;
	size_t n = 0;
	rocksdb_t *db;

	/* A database of another program (or an older temporisd) has no marker. */
	snprintf(old, sizeof(old), "%s/old", f->root);
	rocksdb_options_set_create_if_missing(opts, 1);
	db = rocksdb_open(opts, old, &rerr);
	assert_null(rerr);
	rocksdb_put(db, wo, "version_hwm", 11, "\1\0\0\0\0\0\0\0", 8, &rerr);
	assert_null(rerr);
	rocksdb_close(db);
	assert_int_equal(store_open(old, CFG_SYNC_WAL, &st, err, sizeof(err)), -1);
	assert_null(st);
	assert_non_null(strstr(err, old));
	assert_non_null(strstr(err, "on-disk format is not 3 (written by an older temporisd); "
				    "move it away or start with an empty data_dir"));
	/* ...and is left as it was: no family was added to it. */
	names = rocksdb_list_column_families(opts, old, &n, &rerr);
	assert_null(rerr);
	assert_int_equal(n, 1);
	rocksdb_list_column_families_destroy(names, n);
	rocksdb_writeoptions_destroy(wo);
	rocksdb_options_destroy(opts);

	/* A store database whose marker says another format is refused the same way. */
	snprintf(newer, sizeof(newer), "%s/newer", f->root);
	assert_int_equal(store_open(newer, CFG_SYNC_WAL, &st, err, sizeof(err)), 0);
	store_close(st);
	st = NULL;
	raw_write(newer, "default", (const uint8_t *)"format", 6, (const uint8_t *)"4", 1, false);
	err[0] = '\0';
	assert_int_equal(store_open(newer, CFG_SYNC_WAL, &st, err, sizeof(err)), -1);
	assert_non_null(strstr(err, newer));
	assert_non_null(strstr(err, "on-disk format is not 3"));

	/* A first start that died before writing the marker left default + catalog and
	 * no record family: nothing can be misread, so it opens and gets the marker. */
	{
		char early[PATH_LEN];
		const char *cfn[] = { "default", "catalog" };
		const rocksdb_options_t *cfo[2];
		rocksdb_column_family_handle_t *h[2];
		rocksdb_options_t *o = rocksdb_options_create();

		snprintf(early, sizeof(early), "%s/early", f->root);
		rocksdb_options_set_create_if_missing(o, 1);
		rocksdb_options_set_create_missing_column_families(o, 1);
		cfo[0] = cfo[1] = o;
		db = rocksdb_open_column_families(o, early, 2, cfn, cfo, h, &rerr);
		assert_null(rerr);
		rocksdb_column_family_handle_destroy(h[0]);
		rocksdb_column_family_handle_destroy(h[1]);
		rocksdb_close(db);
		rocksdb_options_destroy(o);
		assert_int_equal(store_open(early, CFG_SYNC_WAL, &st, err, sizeof(err)), 0);
		assert_int_equal(store_source_create(st, SRC, err, sizeof(err)), 0);
		store_close(st);
		st = NULL;
		/* With a record family now, only the written marker lets it open. */
		assert_int_equal(store_open(early, CFG_SYNC_WAL, &st, err, sizeof(err)), 0);
		assert_true(store_source_exists(st, SRC));
		store_close(st);
		st = NULL;
	}

	/* The store's own database reopens, data intact. */
	put1(f->st, SRC, 1, int_rec("keep", 3, 33));
	reopen_store(f);
	assert_int_equal(get_int(f->st, SRC, "keep", 3), 33);
}

/* One format "2" entry (18 bytes), built here independently of src/data/codec.c. */
static void v2_entry(uint8_t *p, uint8_t off, uint64_t version, uint8_t type, uint64_t bits)
{
	p[0] = off;
	for (int i = 0; i < 8; i++) {
		p[1 + i] = (uint8_t)(version >> (8 * i));
		p[10 + i] = (uint8_t)(bits >> (8 * i));
	}
	p[9] = type;
}

/* A format "2" store: default (marker "2"), catalog and src_1, as 0.1.0 made them. */
static void make_v2_store(const char *dir)
{
	const char *cfn[] = { "default", "catalog", "src_1" };
	const rocksdb_options_t *cfo[3];
	rocksdb_column_family_handle_t *h[3];
	rocksdb_options_t *o = rocksdb_options_create();
	rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
	char *rerr = NULL;
	rocksdb_t *db;

	rocksdb_options_set_create_if_missing(o, 1);
	rocksdb_options_set_create_missing_column_families(o, 1);
	cfo[0] = cfo[1] = cfo[2] = o;
	db = rocksdb_open_column_families(o, dir, 3, cfn, cfo, h, &rerr);
	assert_null(rerr);
	rocksdb_put_cf(db, wo, h[0], "format", 6, "2", 1, &rerr);
	assert_null(rerr);
	rocksdb_put_cf(db, wo, h[0], "version_hwm", 11, "\x09\0\0\0\0\0\0\0", 8, &rerr);
	assert_null(rerr);
	for (int i = 0; i < 3; i++)
		rocksdb_column_family_handle_destroy(h[i]);
	rocksdb_close(db);
	rocksdb_writeoptions_destroy(wo);
	rocksdb_options_destroy(o);
}

static double stored_double(struct store *st, const char *name, int64_t ts)
{
	struct rec out;

	assert_int_equal(store_get(st, SRC, name, strlen(name), ts, &out), 1);
	assert_int_equal(out.type, REC_DOUBLE);
	return out.v.d;
}

static void test_format_2_store_is_migrated_at_open(void **state)
{
	struct fixture *f = *state;
	char dir[PATH_LEN], err[ERR_LEN] = "";
	uint8_t key[64], val[3 * 18], op[18];
	double half = 20.5, neg_zero = -0.0;
	uint64_t bits;
	struct store *st = NULL;
	struct seen seen = { 0 };
	bool more;
	int64_t next;
	size_t klen;

	snprintf(dir, sizeof(dir), "%s/v2", f->root);
	make_v2_store(dir);
	/* bucket 0 of "m": 1 -> 10 (v1), 2 -> 20.5 (v2), 3 -> -0.0 (v3); an operand on
	 * top makes 1 -> 11 (v5); bucket 256: 0 -> -7 (v4) */
	klen = legacy_key(key, "m", 0);
	v2_entry(val, 1, 1, REC_INT, 10);
	memcpy(&bits, &half, sizeof(bits));
	v2_entry(val + 18, 2, 2, REC_DOUBLE, bits);
	memcpy(&bits, &neg_zero, sizeof(bits));
	v2_entry(val + 36, 3, 3, REC_DOUBLE, bits);
	raw_write(dir, "src_1", key, klen, val, sizeof(val), false);
	v2_entry(op, 1, 5, REC_INT, 11);
	raw_write(dir, "src_1", key, klen, op, sizeof(op), true);
	klen = legacy_key(key, "m", 256);
	v2_entry(val, 0, 4, REC_INT, (uint64_t)-7);
	raw_write(dir, "src_1", key, klen, val, 18, false);

	if (store_open(dir, CFG_SYNC_WAL, &st, err, sizeof(err)) != 0)
		fail_msg("store_open: %s", err);
	for (int pass = 0; pass < 2; pass++) {
		assert_int_equal(get_int(st, SRC, "m", 1), 11);
		assert_true(stored_double(st, "m", 2) == 20.5);
		assert_true(signbit(stored_double(st, "m", 3)));
		assert_int_equal(get_int(st, SRC, "m", 256), -7);
		seen.n = 0;
		assert_int_equal(store_scan(st, SRC, "m", 1, INT64_MIN, INT64_MAX, 10, collect, &seen,
					    &more, &next),
				 0);
		assert_int_equal(seen.n, pass == 0 ? 4 : 5);
		assert_true(store_version_hwm(st) == (pass == 0 ? 9 : 10));
		/* New writes land next to the migrated records, in the new format. */
		if (pass == 0)
			put1(st, SRC, 10, int_rec("m", 4, 44));
		assert_int_equal(get_int(st, SRC, "m", 4), 44);
		assert_int_equal(store_compact(st), 0);
		store_close(st);
		st = NULL;
		/* Reopened, it is a format 3 store: no migration again, the same records. */
		if (store_open(dir, CFG_SYNC_WAL, &st, err, sizeof(err)) != 0)
			fail_msg("store_open: %s", err);
	}
	store_close(st);
	/* The marker now says 3, and the migration's progress keys are gone. */
	{
		rocksdb_options_t *o = rocksdb_options_create();
		rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
		char *rerr = NULL, *v;
		size_t vlen = 0;
		rocksdb_t *db = rocksdb_open_for_read_only(o, dir, 0, &rerr);

		assert_null(rerr);
		v = rocksdb_get(db, ro, "format", 6, &vlen, &rerr);
		assert_null(rerr);
		assert_non_null(v);
		assert_memory_equal(v, "3", 1);
		rocksdb_free(v);
		v = rocksdb_get(db, ro, "migrated/0", 10, &vlen, &rerr);
		assert_null(v);
		rocksdb_close(db);
		rocksdb_readoptions_destroy(ro);
		rocksdb_options_destroy(o);
	}
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_batch_folds_records_into_one_operand_per_series_bucket),
		T(test_bucket_edges_read_back_in_one_batch_and_across_batches),
		T(test_series_first_last_inside_buckets),
		T(test_lww_inside_one_batch_and_across_batches),
		T(test_lww_per_offset_independent_of_apply_order),
		T(test_corrupt_bucket_values_fail_reads_and_merges),
		T(test_open_refuses_database_without_format_marker),
		T(test_format_2_store_is_migrated_at_open),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
