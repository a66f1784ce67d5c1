/*
 * test_store.c - unit tests of the store against a real RocksDB in a mkdtemp()
 * directory: last-write-wins merges across flush/compaction/reopen, value round
 * trips, scans, series, many sources, the version high-water mark, the catalog
 * family, checkpoints and concurrency. test_store_format.c covers the buckets.
 */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "store_fixture.h"
/* the trim test compares the family's raw bytes: the store's private handle */
#include "../../src/data/store_core.h"
#include "temporis/data/codec.h"
#include "temporis/data/store.h"
#include "temporis/data/store_batch.h"
#include "temporis/data/store_read.h"

/* ---- last write wins ---- */

#define LWW_KEYS 20
#define LWW_VERSIONS 30
#define LWW_CHUNKS 7
#define LWW_FLUSH_AFTER_CHUNK 3

static void lww_key(char *name, size_t len, int key)
{
	snprintf(name, len, "k%d", key);
}

static void check_lww(struct store *st)
{
	char name[16];

	for (int k = 0; k < LWW_KEYS; k++) {
		lww_key(name, sizeof(name), k);
		assert_int_equal(get_int(st, SRC, name, (int64_t)k - LWW_KEYS / 2),
				 lww_value(k, LWW_VERSIONS));
	}
}

static void test_lww_highest_version_wins_shuffled(void **state)
{
	struct fixture *f = *state;
	static struct op ops[LWW_KEYS * LWW_VERSIONS];
	size_t n = 0, per_chunk;
	struct store_batch *b = store_batch_new();
	char name[16];

	assert_non_null(b);
	for (int k = 0; k < LWW_KEYS; k++)
		for (uint64_t v = 1; v <= LWW_VERSIONS; v++)
			ops[n++] = (struct op){ k, v };
	shuffle(ops, n, 12345);
	per_chunk = (n + LWW_CHUNKS - 1) / LWW_CHUNKS;
	for (size_t i = 0; i < n; i++) {
		struct rec r;

		lww_key(name, sizeof(name), ops[i].key);
		r = int_rec(name, (int64_t)ops[i].key - LWW_KEYS / 2,
			    lww_value(ops[i].key, ops[i].version));
		assert_int_equal(store_batch_merge(f->st, b, SRC, ops[i].version, &r), 0);
		if ((i + 1) % per_chunk == 0 || i + 1 == n) {
			commit(f->st, b);
			/* Older operands end up in SST files, newer ones in the memtable. */
			if ((i + 1) / per_chunk == LWW_FLUSH_AFTER_CHUNK)
				assert_int_equal(store_flush(f->st), 0);
		}
	}
	store_batch_free(b);
	check_lww(f->st);
	reopen_store(f);
	check_lww(f->st);
	assert_int_equal(store_flush(f->st), 0);
	check_lww(f->st);
	assert_int_equal(store_compact(f->st), 0);
	check_lww(f->st);
	reopen_store(f);
	check_lww(f->st);
}

static void test_equal_versions_later_operand_wins(void **state)
{
	struct fixture *f = *state;
	struct store_batch *b = store_batch_new();
	struct rec r;

	assert_non_null(b);
	for (int64_t v = 1; v <= 3; v++) {
		r = int_rec("dup", 0, v);
		assert_int_equal(store_batch_merge(f->st, b, SRC, 5, &r), 0);
	}
	assert_int_equal(store_batch_count(b), 3);
	commit(f->st, b);
	store_batch_free(b);
	assert_int_equal(get_int(f->st, SRC, "dup", 0), 3);

	/* A later commit at the same version wins over the stored value too... */
	assert_int_equal(store_flush(f->st), 0);
	put1(f->st, SRC, 5, int_rec("dup", 0, 4));
	assert_int_equal(get_int(f->st, SRC, "dup", 0), 4);
	/* ...but a lower version never does. */
	put1(f->st, SRC, 4, int_rec("dup", 0, 99));
	assert_int_equal(store_compact(f->st), 0);
	assert_int_equal(get_int(f->st, SRC, "dup", 0), 4);
	reopen_store(f);
	assert_int_equal(get_int(f->st, SRC, "dup", 0), 4);
}

/* ---- encoding ---- */

static void test_values_round_trip(void **state)
{
	struct fixture *f = *state;
	const int64_t ints[] = { 0, -1, INT64_MIN, INT64_MAX, (INT64_C(1) << 53) + 1 };
	const double dbls[] = { 0.1, -0.0, 1e308, 5e-324 };
	const size_t ni = sizeof(ints) / sizeof(ints[0]);
	const size_t nd = sizeof(dbls) / sizeof(dbls[0]);
	struct rec out;

	for (size_t i = 0; i < ni; i++)
		put1(f->st, SRC, 1, int_rec("i", (int64_t)i, ints[i]));
	for (size_t i = 0; i < nd; i++)
		put1(f->st, SRC, 1, dbl_rec("d", (int64_t)i, dbls[i]));
	reopen_store(f);
	for (size_t i = 0; i < ni; i++) {
		assert_int_equal(store_get(f->st, SRC, "i", 1, (int64_t)i, &out), 1);
		assert_int_equal(out.type, REC_INT);
		assert_true(out.v.i == ints[i]);
	}
	for (size_t i = 0; i < nd; i++) {
		assert_int_equal(store_get(f->st, SRC, "d", 1, (int64_t)i, &out), 1);
		assert_int_equal(out.type, REC_DOUBLE);
		assert_memory_equal(&out.v.d, &dbls[i], sizeof(double));
	}
	assert_int_equal(store_get(f->st, SRC, "d", 1, 1, &out), 1);
	assert_true(signbit(out.v.d));
	assert_int_equal(store_get(f->st, SRC, "d", 1, 99, &out), 0);
	assert_int_equal(store_get(f->st, SRC, "x", 1, 0, &out), 0);
}

/* ---- scans ---- */

/* Records of [start, last], both inclusive. */
static void scan(struct store *st, const char *name, int64_t start, int64_t last,
		 uint32_t limit, struct seen *s, bool *more, int64_t *next_ts)
{
	memset(s, 0, sizeof(*s));
	assert_int_equal(store_scan(st, SRC, name, strlen(name), start, last, limit, collect, s,
				    more, next_ts),
			 0);
}

static void test_scan_orders_negative_timestamps(void **state)
{
	struct fixture *f = *state;
	const int64_t shuffled[] = { 1000, INT64_MIN, -1, INT64_MAX, 0, INT64_MIN + 1, 1, -1000,
				     INT64_MAX - 1 };
	const int64_t sorted[] = { INT64_MIN, INT64_MIN + 1, -1000, -1, 0, 1, 1000,
				   INT64_MAX - 1, INT64_MAX };
	const size_t n = sizeof(sorted) / sizeof(sorted[0]);
	struct seen s;
	bool more = true;
	int64_t next = 0;

	for (size_t i = 0; i < n; i++)
		put1(f->st, SRC, 1, int_rec("neg", shuffled[i], shuffled[i]));
	scan(f->st, "neg", INT64_MIN, INT64_MAX, 100, &s, &more, &next);
	assert_int_equal(s.n, n);
	assert_false(more);
	for (size_t i = 0; i < n; i++) {
		assert_true(s.ts[i] == sorted[i]);
		assert_true(s.v[i] == sorted[i]);
	}
}

static void test_scan_bounds_are_inclusive(void **state)
{
	struct fixture *f = *state;
	struct seen s;
	bool more;
	int64_t next;

	for (int64_t t = 0; t < 10; t++)
		put1(f->st, SRC, 1, int_rec("r", t, t * 10));
	scan(f->st, "r", 2, 4, 100, &s, &more, &next);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.ts[0], 2);
	assert_int_equal(s.ts[2], 4);
	assert_int_equal(s.v[2], 40);
	assert_false(more);
	scan(f->st, "r", 5, 5, 100, &s, &more, &next);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.v[0], 50);
	scan(f->st, "r", 5, 4, 100, &s, &more, &next);
	assert_int_equal(s.n, 0);
	scan(f->st, "r", 7, 3, 100, &s, &more, &next);
	assert_int_equal(s.n, 0);
	assert_false(more);
	/* A callback that stops early ends the scan without error. */
	memset(&s, 0, sizeof(s));
	s.stop_after = 2;
	assert_int_equal(store_scan(f->st, SRC, "r", 1, 0, 9, 100, collect, &s, &more, &next),
			 0);
	assert_int_equal(s.n, 2);
}

static void test_scan_limit_paginates_with_next_ts(void **state)
{
	struct fixture *f = *state;
	struct seen s;
	bool more;
	int64_t next, start = -15, got = 0;
	int pages = 0;

	for (int64_t t = -5; t < 5; t++)
		put1(f->st, SRC, 1, int_rec("p", t * 3, t));
	do {
		scan(f->st, "p", start, 99, 3, &s, &more, &next);
		for (size_t i = 0; i < s.n; i++)
			assert_int_equal(s.v[i], got + (int64_t)i - 5);
		got += (int64_t)s.n;
		pages++;
		if (more) {
			assert_int_equal(s.n, 3);
			assert_true(next > s.ts[s.n - 1]);
			start = next;
		}
	} while (more);
	assert_int_equal(got, 10);
	assert_int_equal(pages, 4);
	/* Exactly limit records in range: no further page. */
	scan(f->st, "p", -15, -7, 3, &s, &more, &next);
	assert_int_equal(s.n, 3);
	assert_false(more);
	scan(f->st, "p", -15, 99, 1, &s, &more, &next);
	assert_true(more);
	assert_int_equal(next, -12);
}

/* ---- series ---- */
static void test_prefix_series_never_mix(void **state)
{
	struct fixture *f = *state;
	struct series_seen ss = { 0 };
	struct seen s;
	bool more;
	int64_t next;

	put1(f->st, SRC, 1, int_rec("ab", 5, 50));
	put1(f->st, SRC, 1, int_rec("a", 3, 30));
	put1(f->st, SRC, 1, int_rec("ab", -7, -70));
	put1(f->st, SRC, 1, int_rec("a", 9, 90));
	put1(f->st, SRC, 1, int_rec("b", INT64_MAX, 1));
	put1(f->st, SRC, 1, int_rec("b", INT64_MIN, 2));
	scan(f->st, "a", INT64_MIN, INT64_MAX, 100, &s, &more, &next);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.v[0], 30);
	assert_int_equal(s.v[1], 90);
	scan(f->st, "ab", INT64_MIN, INT64_MAX, 100, &s, &more, &next);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.v[0], -70);
	assert_int_equal(s.v[1], 50);

	assert_int_equal(store_series(f->st, SRC, collect_series, &ss), 0);
	assert_int_equal(ss.n, 3);
	assert_string_equal(ss.names[0], "a");
	assert_string_equal(ss.names[1], "ab");
	assert_string_equal(ss.names[2], "b");
	assert_int_equal(ss.first[0], 3);
	assert_int_equal(ss.last[0], 9);
	assert_int_equal(ss.first[1], -7);
	assert_int_equal(ss.last[1], 5);
	assert_true(ss.first[2] == INT64_MIN);
	assert_true(ss.last[2] == INT64_MAX);
}

static void test_series_of_empty_source_is_empty(void **state)
{
	struct fixture *f = *state;
	struct series_seen ss = { 0 };

	assert_int_equal(store_series(f->st, SRC, collect_series, &ss), 0);
	assert_int_equal(ss.n, 0);
}

/* ---- sources, hwm, catalog ---- */

/*
 * RocksDB 7.8.3 rewrites and re-parses the whole OPTIONS file on every column
 * family creation (also inside DB::Open with create_missing_column_families),
 * so creating N sources costs O(N^2): under 2 minutes for 1,000 here. The
 * default is the full scale; the sanitizer pass of scripts/test, where RocksDB
 * runs several times slower, sets TEMPORIS_TEST_SOURCES lower.
 */
#define MANY_SOURCES_DEFAULT 1000
#define MANY_SOURCES_ENV "TEMPORIS_TEST_SOURCES"
#define MANY_BASE 100u

static uint32_t many_sources(void)
{
	const char *env = getenv(MANY_SOURCES_ENV);
	long n = env ? strtol(env, NULL, 10) : 0;

	return n > 0 ? (uint32_t)n : MANY_SOURCES_DEFAULT;
}

static void test_many_sources_survive_reopen(void **state)
{
	struct fixture *f = *state;
	const uint32_t n = many_sources();
	char err[ERR_LEN] = "";
	struct store_batch *b;

	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(store_source_create(f->st, MANY_BASE + i, err, sizeof(err)), 0);
	reopen_store(f);
	b = store_batch_new();
	assert_non_null(b);
	for (uint32_t i = 0; i < n; i++) {
		struct rec r = int_rec("m", 1, (int64_t)i);

		assert_true(store_source_exists(f->st, MANY_BASE + i));
		assert_int_equal(store_source_create(f->st, MANY_BASE + i, err, sizeof(err)), 0);
		assert_int_equal(store_batch_merge(f->st, b, MANY_BASE + i, 1, &r), 0);
	}
	assert_false(store_source_exists(f->st, MANY_BASE + n));
	commit(f->st, b);
	store_batch_free(b);
	reopen_store(f);
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(get_int(f->st, MANY_BASE + i, "m", 1), (int64_t)i);
	/* One more after the reopen lands in the table before the existing ids. */
	assert_int_equal(store_source_create(f->st, MANY_BASE - 1, err, sizeof(err)), 0);
	assert_true(store_source_exists(f->st, MANY_BASE - 1));
	assert_true(store_source_exists(f->st, SRC));
}

static void test_version_hwm_survives_reopen(void **state)
{
	struct fixture *f = *state;
	struct store_batch *b = store_batch_new();
	struct rec r = int_rec("h", 0, 0);

	assert_non_null(b);
	assert_true(store_version_hwm(f->st) == 0);
	assert_int_equal(store_batch_merge(f->st, b, SRC, 7, &r), 0);
	assert_int_equal(store_batch_merge(f->st, b, SRC, 42, &r), 0);
	assert_int_equal(store_batch_merge(f->st, b, SRC, 3, &r), 0);
	commit(f->st, b);
	assert_true(store_version_hwm(f->st) == 42);
	/* A batch of lower versions never moves the mark back. */
	assert_int_equal(store_batch_merge(f->st, b, SRC, 10, &r), 0);
	commit(f->st, b);
	assert_true(store_version_hwm(f->st) == 42);
	store_batch_free(b);
	reopen_store(f);
	assert_true(store_version_hwm(f->st) == 42);
	assert_int_equal(get_int(f->st, SRC, "h", 0), 0);
}

static void test_commit_leaves_batch_intact_for_retry(void **state)
{
	struct fixture *f = *state;
	struct store_batch *b = store_batch_new();
	struct rec r = int_rec("t", 0, 1);
	char err[ERR_LEN] = "";

	assert_non_null(b);
	assert_int_equal(store_batch_merge(f->st, b, SRC, 8, &r), 0);
	assert_int_equal(store_batch_commit(f->st, b, err, sizeof(err)), 0);
	assert_int_equal(store_batch_count(b), 1);
	assert_int_equal(store_batch_commit(f->st, b, err, sizeof(err)), 0);
	assert_true(store_version_hwm(f->st) == 8);
	store_batch_clear(b);
	assert_int_equal(store_batch_count(b), 0);
	store_batch_free(b);
	assert_int_equal(get_int(f->st, SRC, "t", 0), 1);
}

struct kv_seen {
	size_t n;
	char keys[MAX_SEEN][16];
	char vals[MAX_SEEN][16];
	size_t stop_after;
};

static int collect_kv(const char *k, size_t klen, const char *v, size_t vlen, void *arg)
{
	struct kv_seen *s = arg;

	assert_true(s->n < MAX_SEEN && klen < 16 && vlen < 16);
	memcpy(s->keys[s->n], k, klen);
	s->keys[s->n][klen] = '\0';
	memcpy(s->vals[s->n], v, vlen);
	s->vals[s->n][vlen] = '\0';
	s->n++;
	return s->stop_after != 0 && s->n == s->stop_after;
}

static void catalog_put(struct store *st, const char *k, const char *v)
{
	char err[ERR_LEN] = "";

	if (store_catalog_put(st, k, strlen(k), v, strlen(v), err, sizeof(err)) != 0)
		fail_msg("catalog put: %s", err);
}

static void test_catalog_put_scan_prefix(void **state)
{
	struct fixture *f = *state;
	struct kv_seen s = { 0 };

	catalog_put(f->st, "b/1", "four");
	catalog_put(f->st, "a/2", "two");
	catalog_put(f->st, "ab/1", "three");
	catalog_put(f->st, "a/1", "one");
	catalog_put(f->st, "a/2", "TWO");
	reopen_store(f);
	assert_int_equal(store_catalog_scan(f->st, "a/", collect_kv, &s), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.keys[0], "a/1");
	assert_string_equal(s.vals[0], "one");
	assert_string_equal(s.keys[1], "a/2");
	assert_string_equal(s.vals[1], "TWO");
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_catalog_scan(f->st, "", collect_kv, &s), 0);
	assert_int_equal(s.n, 4);
	assert_string_equal(s.keys[3], "b/1");
	memset(&s, 0, sizeof(s));
	s.stop_after = 1;
	assert_int_equal(store_catalog_scan(f->st, "a", collect_kv, &s), 0);
	assert_int_equal(s.n, 1);
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_catalog_scan(f->st, "c", collect_kv, &s), 0);
	assert_int_equal(s.n, 0);
}

static int never_called(const struct rec *r, void *arg)
{
	fail_msg("callback on unknown source");
	return 1;
}

static void test_unknown_source_merge_fails(void **state)
{
	struct fixture *f = *state;
	struct store_batch *b = store_batch_new();
	struct rec r = int_rec("u", 0, 1);
	struct series_seen ss = { 0 };
	char err[ERR_LEN] = "";
	bool more;
	int64_t next;

	assert_non_null(b);
	assert_false(store_source_exists(f->st, 99));
	assert_int_equal(store_batch_merge(f->st, b, 99, 1, &r), -1);
	assert_int_equal(store_batch_count(b), 0);
	assert_int_equal(store_get(f->st, 99, "u", 1, 0, &r), -1);
	assert_int_equal(store_scan(f->st, 99, "u", 1, 0, 10, 10, never_called, NULL, &more,
				    &next),
			 -1);
	assert_int_equal(store_series(f->st, 99, collect_series, &ss), -1);
	/* Creating is idempotent and makes the source writable. */
	assert_int_equal(store_source_create(f->st, 99, err, sizeof(err)), 0);
	assert_int_equal(store_source_create(f->st, 99, err, sizeof(err)), 0);
	assert_true(store_source_exists(f->st, 99));
	assert_int_equal(store_batch_merge(f->st, b, 99, 1, &r), 0);
	commit(f->st, b);
	store_batch_free(b);
	assert_int_equal(get_int(f->st, 99, "u", 0), 1);
}

static void test_checkpoint_opens(void **state)
{
	struct fixture *f = *state;
	char cp[PATH_LEN], err[ERR_LEN] = "";
	struct store *copy = NULL;

	put1(f->st, SRC, 77, int_rec("c", -3, 12));
	catalog_put(f->st, "k", "v");
	snprintf(cp, sizeof(cp), "%s/cp", f->root);
	if (store_checkpoint(f->st, cp, err, sizeof(err)) != 0)
		fail_msg("checkpoint: %s", err);
	assert_int_not_equal(store_checkpoint(f->st, cp, err, sizeof(err)), 0);
	/* Writes after the checkpoint do not reach it. */
	put1(f->st, SRC, 78, int_rec("c", -3, 13));
	if (store_open(cp, CFG_SYNC_WAL, &copy, err, sizeof(err)) != 0)
		fail_msg("open checkpoint: %s", err);
	assert_true(store_source_exists(copy, SRC));
	assert_int_equal(get_int(copy, SRC, "c", -3), 12);
	assert_true(store_version_hwm(copy) == 77);
	store_close(copy);
}

static void test_open_error_is_reported(void **state)
{
	struct fixture *f = *state;
	char path[PATH_LEN], err[ERR_LEN] = "";
	struct store *other = NULL;
	FILE *fp;

	/* The directory is locked by the open store. */
	assert_int_equal(store_open(f->db, CFG_SYNC_WAL, &other, err, sizeof(err)), -1);
	assert_true(strlen(err) > 0);
	/* A regular file where the directory should be. */
	snprintf(path, sizeof(path), "%s/file", f->root);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fclose(fp), 0);
	err[0] = '\0';
	assert_int_equal(store_open(path, CFG_SYNC_WAL, &other, err, sizeof(err)), -1);
	assert_true(strlen(err) > 0);
	assert_null(other);
}

/* ---- concurrency: source creation while the commit path runs ---- */

#define CONCURRENT_SOURCES 50
#define CONCURRENT_COMMITS 200

static void *create_sources(void *arg)
{
	struct store *st = arg;
	char err[ERR_LEN];

	for (uint32_t i = 0; i < CONCURRENT_SOURCES; i++)
		if (store_source_create(st, 1000 + i, err, sizeof(err)) != 0)
			return arg; /* any non-NULL result reports the failure */
	return NULL;
}

static void test_source_create_concurrent_with_commits(void **state)
{
	struct fixture *f = *state;
	struct store_batch *b = store_batch_new();
	pthread_t th;
	void *res = (void *)1;

	assert_non_null(b);
	assert_int_equal(pthread_create(&th, NULL, create_sources, f->st), 0);
	for (int64_t i = 0; i < CONCURRENT_COMMITS; i++) {
		struct rec r = int_rec("cc", i, i);

		assert_int_equal(store_batch_merge(f->st, b, SRC, (uint64_t)i + 1, &r), 0);
		commit(f->st, b);
	}
	assert_int_equal(pthread_join(th, &res), 0);
	assert_null(res);
	store_batch_free(b);
	for (uint32_t i = 0; i < CONCURRENT_SOURCES; i++)
		assert_true(store_source_exists(f->st, 1000 + i));
	assert_true(store_version_hwm(f->st) == CONCURRENT_COMMITS);
}

/*
 * A writer killed after its commits (no seal, no close): the commit log holds them,
 * and the next open folds them back; a kill during later commits loses none of the
 * earlier ones either, sealed or not.
 */
#define KILL_RECORDS 5000

static void commit_range(struct store *st, int64_t from, int64_t to, uint64_t version)
{
	struct store_batch *b = store_batch_new();

	assert_non_null(b);
	for (int64_t t = from; t < to; t++) {
		struct rec r = int_rec(t % 2 ? "odd" : "even", t, t * 3 + (int64_t)version);

		assert_int_equal(store_batch_merge(st, b, SRC, version, &r), 0);
		if ((t + 1) % 500 == 0)
			commit(st, b);
	}
	commit(st, b);
	store_batch_free(b);
}

static void child_commits_and_dies(struct fixture *f, int64_t from, int64_t to, bool seal)
{
	pid_t pid;
	int status;

	store_close(f->st);
	f->st = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		open_store(f);
		commit_range(f->st, from, to, 7);
		if (seal && store_seal(f->st) != 0)
			_exit(2);
		raise(SIGKILL); /* no close, no exit handlers: killed */
		_exit(3);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	open_store(f);
}

/* The MANIFEST that CURRENT names, as a path in dir. */
static void manifest_path(const char *dir, char *out, size_t cap)
{
	char cur[PATH_LEN + 16], name[64] = "";
	FILE *fp;

	snprintf(cur, sizeof(cur), "%s/CURRENT", dir);
	fp = fopen(cur, "r");
	assert_non_null(fp);
	assert_non_null(fgets(name, sizeof(name), fp));
	fclose(fp);
	name[strcspn(name, "\n")] = '\0';
	snprintf(out, cap, "%s/%s", dir, name);
}

static size_t count_sst(const char *dir)
{
	char cmd[PATH_LEN + 64];
	size_t n = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "ls %s | grep -c '\\.sst$'", dir);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_int_equal(fscanf(p, "%zu", &n), 1);
	pclose(p);
	return n;
}

static void expect_refused(struct fixture *f, const char *what)
{
	char err[1024] = "";
	struct store *st = NULL;

	assert_int_equal(store_open(f->db, CFG_SYNC_WAL, &st, err, sizeof(err)), -1);
	assert_null(st);
	assert_non_null(strstr(err, "MANIFEST"));
	assert_non_null(strstr(err, what));
	assert_non_null(strstr(err, "temporisctl backup"));
}

/*
 * A damaged MANIFEST (XORed in the middle, or truncated) is refused before RocksDB
 * reads it, so no data file is deleted; put back, everything is there.
 */
static void test_damaged_manifest_is_refused_and_nothing_deleted(void **state)
{
	struct fixture *f = *state;
	char path[PATH_LEN + 80];
	unsigned char *orig;
	size_t len, ssts;
	FILE *fp;

	commit_range(f->st, 0, 16000, 7);
	assert_int_equal(store_seal(f->st), 0);
	store_close(f->st);
	f->st = NULL;
	manifest_path(f->db, path, sizeof(path));
	ssts = count_sst(f->db);
	assert_true(ssts > 0);
	fp = fopen(path, "rb");
	assert_non_null(fp);
	orig = malloc(1 << 20);
	assert_non_null(orig);
	len = fread(orig, 1, 1 << 20, fp);
	fclose(fp);
	assert_true(len > 300);

	/* 32 bytes XORed in the middle */
	fp = fopen(path, "r+b");
	assert_non_null(fp);
	for (size_t i = len / 2; i < len / 2 + 32; i++) {
		fseek(fp, (long)i, SEEK_SET);
		fputc(orig[i] ^ 0x55, fp);
	}
	fclose(fp);
	expect_refused(f, "differs from");
	assert_int_equal(count_sst(f->db), ssts);

	/* truncated to 270 bytes */
	assert_int_equal(truncate(path, 270), 0);
	expect_refused(f, "is shorter than");
	assert_int_equal(count_sst(f->db), ssts);

	/* put back: it opens, and every record is there */
	fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(orig, 1, len, fp), len);
	fclose(fp);
	free(orig);
	open_store(f);
	for (int64_t t = 0; t < 16000; t += 101)
		assert_int_equal(get_int(f->st, SRC, t % 2 ? "odd" : "even", t), t * 3 + 7);
}

static void test_commits_survive_a_kill_before_the_seal(void **state)
{
	struct fixture *f = *state;
	struct seen s = { 0 };
	bool more;
	int64_t next;

	child_commits_and_dies(f, 0, KILL_RECORDS, true);
	child_commits_and_dies(f, KILL_RECORDS, 2 * KILL_RECORDS, false);
	for (int64_t t = 0; t < 2 * KILL_RECORDS; t += 97)
		assert_int_equal(get_int(f->st, SRC, t % 2 ? "odd" : "even", t), t * 3 + 7);
	assert_int_equal(store_scan(f->st, SRC, "even", 4, 2 * KILL_RECORDS - 20, INT64_MAX, 100,
				    collect, &s, &more, &next),
			 0);
	assert_int_equal(s.n, 10);
	/* Sealed and flushed now, and still all there after a clean reopen. */
	assert_int_equal(store_flush(f->st), 0);
	reopen_store(f);
	for (int64_t t = 1; t < 2 * KILL_RECORDS; t += 101)
		assert_int_equal(get_int(f->st, SRC, t % 2 ? "odd" : "even", t), t * 3 + 7);
}

/*
 * A seal with many buckets of one source builds a file and ingests it whole; a
 * second such seal overwrites half the records (last write wins across files), and
 * a source with few buckets in the same seals takes ordinary writes. All of it reads
 * back, before and after a reopen, and the series index lists every series.
 */
#define WIDE_SERIES 6000
#define SRC_SMALL 2u

static void commit_wide(struct store *st, uint64_t version, int step)
{
	struct store_batch *b = store_batch_new();
	char name[32];

	assert_non_null(b);
	for (int i = 0; i < WIDE_SERIES; i += step) {
		snprintf(name, sizeof(name), "host_%05d", i);
		for (int64_t t = 0; t < 2; t++) {
			struct rec r = int_rec(name, 1700000000 + t * 86400, i * 10 + t + (int64_t)version);

			assert_int_equal(store_batch_merge(st, b, SRC, version, &r), 0);
		}
		if (i % 500 == 0)
			commit(st, b);
	}
	for (int64_t t = 0; t < 3; t++) {
		struct rec r = int_rec("small", t, t + (int64_t)version);

		assert_int_equal(store_batch_merge(st, b, SRC_SMALL, version, &r), 0);
	}
	commit(st, b);
	store_batch_free(b);
}

static int count_series(const char *name, size_t len, int64_t first, int64_t last, void *arg)
{
	size_t *n = arg;

	(void)name;
	(void)len;
	assert_int_equal(first, 1700000000);
	assert_int_equal(last, 1700000000 + 86400);
	(*n)++;
	return 0;
}

static void check_wide(struct store *st)
{
	char name[32];
	size_t n = 0;

	for (int i = 0; i < WIDE_SERIES; i += 7) {
		snprintf(name, sizeof(name), "host_%05d", i);
		assert_int_equal(get_int(st, SRC, name, 1700000000 + 86400),
				 i * 10 + 1 + (i % 2 ? 1 : 2));
	}
	assert_int_equal(get_int(st, SRC_SMALL, "small", 2), 2 + 2);
	assert_int_equal(store_series(st, SRC, count_series, &n), 0);
	assert_int_equal(n, WIDE_SERIES);
}

static void test_wide_seals_ingest_files(void **state)
{
	struct fixture *f = *state;
	char err[ERR_LEN];
	struct store_stats stats;

	assert_int_equal(store_source_create(f->st, SRC_SMALL, err, sizeof(err)), 0);
	commit_wide(f->st, 1, 1);
	assert_int_equal(store_seal(f->st), 0);
	commit_wide(f->st, 2, 2);  /* the even series again, a later version */
	assert_int_equal(store_seal(f->st), 0);
	store_stats_get(f->st, &stats);
	assert_int_equal(stats.seal_files, 2);
	assert_int_equal(stats.head_records, 0);
	assert_int_equal(stats.seal_failures, 0);
	assert_int_equal(stats.sealed_records, 2 * WIDE_SERIES + WIDE_SERIES + 6);
	assert_true(stats.wal_bytes > 0);   /* the commits are in the WAL until a flush */
	check_wide(f->st);
	reopen_store(f);
	check_wide(f->st);
}

/* A seal file left by a crash before its ingestion is removed at open. */
static void test_leftover_seal_file_is_removed(void **state)
{
	struct fixture *f = *state;
	char path[PATH_LEN + 32];
	FILE *fp;

	put1(f->st, SRC, 1, int_rec("a", 5, 50));
	snprintf(path, sizeof(path), "%s/seal-0.sst", f->db);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_true(fputs("half a file", fp) >= 0);
	assert_int_equal(fclose(fp), 0);
	reopen_store(f);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(get_int(f->st, SRC, "a", 5), 50);
}

/* ---- retention ---- */

#define RET_CUTOFF 100000        /* in partition 97; partitions below it are expired */
#define RET_NEW 100500           /* past the cutoff, in its partition */

/* Old and new records of "a", old only of "b", new only of "c"; some sealed, some
 * still in the head (put after the seal). */
static void retention_records(struct store *st)
{
	put1(st, SRC, 1, int_rec("a", 1000, 1));
	put1(st, SRC, 1, int_rec("a", 5000, 2));
	put1(st, SRC, 1, int_rec("a", RET_CUTOFF - 1, 3));   /* the cutoff's partition, expired */
	put1(st, SRC, 1, int_rec("a", RET_CUTOFF, 4));
	put1(st, SRC, 1, int_rec("b", 2000, 5));
	put1(st, SRC, 1, int_rec("c", RET_NEW, 6));
	assert_int_equal(store_seal(st), 0);
	put1(st, SRC, 2, int_rec("a", 3000, 7));             /* head, expired */
	put1(st, SRC, 2, int_rec("a", RET_NEW, 8));          /* head, kept */
	put1(st, SRC, 2, int_rec("d", 4000, 9));             /* head only, expired */
}

static void test_cutoff_hides_expired_records_from_every_read(void **state)
{
	struct fixture *f = *state;
	struct series_seen ss = { 0 };
	struct seen s;
	struct rec r;
	bool more;
	int64_t next;

	retention_records(f->st);
	assert_int_equal(store_series(f->st, SRC, collect_series, &ss), 0);
	assert_int_equal(ss.n, 4);
	assert_int_equal(store_source_set_cutoff(f->st, SRC, RET_CUTOFF), 0);
	assert_int_equal(store_source_cutoff(f->st, SRC), RET_CUTOFF);
	assert_int_equal(store_source_set_cutoff(f->st, 999, RET_CUTOFF), -1);

	scan(f->st, "a", INT64_MIN, INT64_MAX, 100, &s, &more, &next);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.ts[0], RET_CUTOFF);
	assert_int_equal(s.ts[1], RET_NEW);
	assert_int_equal(s.v[1], 8);
	scan(f->st, "b", INT64_MIN, INT64_MAX, 100, &s, &more, &next);
	assert_int_equal(s.n, 0);
	/* a page that ends before the cutoff is empty, and says nothing is left */
	scan(f->st, "a", 0, RET_CUTOFF - 1, 100, &s, &more, &next);
	assert_int_equal(s.n, 0);
	assert_false(more);
	assert_int_equal(store_get(f->st, SRC, "a", 1, 1000, &r), 0);
	assert_int_equal(store_get(f->st, SRC, "a", 1, 3000, &r), 0);
	assert_int_equal(get_int(f->st, SRC, "a", RET_CUTOFF), 4);

	memset(&ss, 0, sizeof(ss));
	assert_int_equal(store_series(f->st, SRC, collect_series, &ss), 0);
	assert_int_equal(ss.n, 2);        /* b and d have nothing left */
	assert_string_equal(ss.names[0], "a");
	assert_int_equal(ss.first[0], RET_CUTOFF);
	assert_int_equal(ss.last[0], RET_NEW);
	assert_string_equal(ss.names[1], "c");
	assert_int_equal(ss.first[1], RET_NEW);

	/* sealed, the expired head records are hidden the same way */
	assert_int_equal(store_seal(f->st), 0);
	memset(&ss, 0, sizeof(ss));
	assert_int_equal(store_series(f->st, SRC, collect_series, &ss), 0);
	assert_int_equal(ss.n, 2);
	assert_int_equal(ss.first[0], RET_CUTOFF);

	/* no cutoff: everything is back (nothing was deleted) */
	assert_int_equal(store_source_set_cutoff(f->st, SRC, STORE_NO_CUTOFF), 0);
	scan(f->st, "a", INT64_MIN, INT64_MAX, 100, &s, &more, &next);
	assert_int_equal(s.n, 6);
}

#define TRIM_SERIES 40
#define TRIM_PARTITIONS 60
#define TRIM_POINTS 16           /* per series and partition */
#define TRIM_KEEP_FROM 45        /* the cutoff's partition */

static int64_t trim_ts(int p, int i)
{
	return (int64_t)p * CODEC_BUCKET_SPAN + i * (CODEC_BUCKET_SPAN / TRIM_POINTS);
}

static void trim_records(struct store *st)
{
	struct store_batch *b = store_batch_new();
	char name[16];

	assert_non_null(b);
	for (int p = 0; p < TRIM_PARTITIONS; p++) {
		for (int k = 0; k < TRIM_SERIES; k++) {
			snprintf(name, sizeof(name), "s%02d", k);
			for (int i = 0; i < TRIM_POINTS; i++) {
				struct rec r = dbl_rec(name, trim_ts(p, i), p * 1000.5 + k + i);

				assert_int_equal(store_batch_merge(st, b, SRC, 1, &r), 0);
			}
		}
		commit(st, b);
	}
	store_batch_free(b);
	assert_int_equal(store_flush(st), 0);
}

/* FNV-1a of every key and value of the family from key lo on. */
static uint64_t family_hash(struct store *st, const uint8_t *lo, size_t lolen, size_t *nkeys)
{
	rocksdb_iterator_t *it = rocksdb_create_iterator_cf(st->db, st->ropts,
							    store_source_cf(st, SRC));
	uint64_t h = UINT64_C(14695981039346656037);

	*nkeys = 0;
	for (rocksdb_iter_seek(it, (const char *)lo, lolen); rocksdb_iter_valid(it);
	     rocksdb_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
		const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vlen);

		for (size_t i = 0; i < klen; i++)
			h = (h ^ k[i]) * UINT64_C(1099511628211);
		for (size_t i = 0; i < vlen; i++)
			h = (h ^ v[i]) * UINT64_C(1099511628211);
		(*nkeys)++;
	}
	rocksdb_iter_destroy(it);
	return h;
}

static void test_trim_deletes_expired_partitions_and_leaves_newer_identical(void **state)
{
	struct fixture *f = *state;
	int64_t cutoff = trim_ts(TRIM_KEEP_FROM, TRIM_POINTS / 2);
	uint8_t all[1] = { CODEC_KEY_RECORD }, keep[CODEC_KEY_PREFIX_LEN];
	size_t keep_len = codec_key_partition_start(keep, codec_partition(cutoff));
	size_t nkeep_before, nkeep_after, nall;
	uint64_t h_before, h_after, before, after, freed;
	struct series_seen ss = { 0 };
	char err[ERR_LEN];
	struct seen s;
	bool more;
	int64_t next;

	trim_records(f->st);
	h_before = family_hash(f->st, keep, keep_len, &nkeep_before);
	assert_int_equal(store_source_property_int(f->st, SRC, "rocksdb.total-sst-files-size",
						   &before), 0);
	assert_int_equal(store_source_trim(f->st, SRC, cutoff, &freed, err, sizeof(err)), 0);
	assert_int_equal(store_source_property_int(f->st, SRC, "rocksdb.total-sst-files-size",
						   &after), 0);
	print_message("trim: %llu SST bytes before, %llu after (freed %llu)\n",
		      (unsigned long long)before, (unsigned long long)after,
		      (unsigned long long)freed);
	assert_true(after < before / 2);   /* 45 of 60 partitions gone */
	assert_int_equal(freed, before - after);

	/* the newer partitions (the cutoff's included) and the index: the same bytes */
	h_after = family_hash(f->st, keep, keep_len, &nkeep_after);
	assert_int_equal(nkeep_after, nkeep_before);
	assert_true(h_after == h_before);
	/* nothing below: the first record key is the cutoff partition's */
	(void)family_hash(f->st, all, sizeof(all), &nall);
	assert_int_equal(nall, nkeep_before);

	/* Without a cutoff the stale index (first partition 0) is read as it is now:
	 * every series from the cutoff's partition on, the half below the cutoff
	 * included (trim keeps whole partitions), nothing older. */
	assert_int_equal(store_series(f->st, SRC, collect_series, &ss), 0);
	assert_int_equal(ss.n, TRIM_SERIES);
	assert_int_equal(ss.first[0], trim_ts(TRIM_KEEP_FROM, 0));
	assert_int_equal(ss.last[0], trim_ts(TRIM_PARTITIONS - 1, TRIM_POINTS - 1));
	scan(f->st, "s07", INT64_MIN, trim_ts(TRIM_KEEP_FROM, 1), 100, &s, &more, &next);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.ts[0], trim_ts(TRIM_KEEP_FROM, 0));

	/* again, and after a reopen: nothing more goes, the reads stay right */
	assert_int_equal(store_source_trim(f->st, SRC, cutoff, &freed, err, sizeof(err)), 0);
	reopen_store(f);
	h_after = family_hash(f->st, keep, keep_len, &nkeep_after);
	assert_true(h_after == h_before);
	memset(&ss, 0, sizeof(ss));
	assert_int_equal(store_source_set_cutoff(f->st, SRC, cutoff), 0);
	assert_int_equal(store_series(f->st, SRC, collect_series, &ss), 0);
	assert_int_equal(ss.n, TRIM_SERIES);
	assert_int_equal(ss.first[3], trim_ts(TRIM_KEEP_FROM, TRIM_POINTS / 2));
}

static void test_trim_of_unknown_source_or_no_cutoff(void **state)
{
	struct fixture *f = *state;
	char err[ERR_LEN];
	uint64_t freed = 1;

	put1(f->st, SRC, 1, int_rec("a", 5, 50));
	assert_int_equal(store_source_trim(f->st, 999, 10, &freed, err, sizeof(err)), -1);
	assert_int_equal(store_source_trim(f->st, SRC, STORE_NO_CUTOFF, &freed, err, sizeof(err)),
			 0);
	assert_int_equal(freed, 0);
	assert_int_equal(get_int(f->st, SRC, "a", 5), 50);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_lww_highest_version_wins_shuffled),
		T(test_equal_versions_later_operand_wins),
		T(test_values_round_trip),
		T(test_scan_orders_negative_timestamps),
		T(test_scan_bounds_are_inclusive),
		T(test_scan_limit_paginates_with_next_ts),
		T(test_prefix_series_never_mix),
		T(test_series_of_empty_source_is_empty),
		T(test_many_sources_survive_reopen),
		T(test_version_hwm_survives_reopen),
		T(test_commit_leaves_batch_intact_for_retry),
		T(test_catalog_put_scan_prefix),
		T(test_unknown_source_merge_fails),
		T(test_checkpoint_opens),
		T(test_open_error_is_reported),
		T(test_source_create_concurrent_with_commits),
		T(test_damaged_manifest_is_refused_and_nothing_deleted),
		T(test_commits_survive_a_kill_before_the_seal),
		T(test_wide_seals_ingest_files),
		T(test_leftover_seal_file_is_removed),
		T(test_cutoff_hides_expired_records_from_every_read),
		T(test_trim_deletes_expired_partitions_and_leaves_newer_identical),
		T(test_trim_of_unknown_source_or_no_cutoff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
