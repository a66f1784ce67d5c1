/*
 * store_fixture.h - what test_store.c and test_store_format.c share: a store opened
 * in a mkdtemp() directory per test (setup/teardown), and helpers that write and
 * read records through it, failing the test on any error.
 */
#ifndef TEMPORIS_TEST_STORE_FIXTURE_H
#define TEMPORIS_TEST_STORE_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "temporis/data/record.h"
#include "temporis/data/store.h"
#include "temporis/data/store_batch.h"

#define ERR_LEN 512
#define ROOT_LEN 64
#define PATH_LEN 128
#define MAX_SEEN 64
#define SRC 1u

struct fixture {
	char root[ROOT_LEN];
	char db[PATH_LEN];
	struct store *st;
};

/* cmocka group setup/teardown: a fresh store with source SRC, removed afterwards. */
int setup(void **state);
int teardown(void **state);
void open_store(struct fixture *f);
void reopen_store(struct fixture *f);

struct rec int_rec(const char *name, int64_t ts, int64_t v);
struct rec dbl_rec(const char *name, int64_t ts, double v);
/* Commits b and clears it. */
void commit(struct store *st, struct store_batch *b);
/* Commits and keeps the batch built, so its operand count can be read. */
void commit_keep(struct store *st, struct store_batch *b);
/* Commits one record in its own batch. */
void put1(struct store *st, uint32_t src, uint64_t version, struct rec r);
/* The int stored at (name, ts), which must be there. */
int64_t get_int(struct store *st, uint32_t src, const char *name, int64_t ts);

/* A (key, version) pair of the last-write-wins tests, and its distinct value. */
struct op {
	int key;
	uint64_t version;
};

int64_t lww_value(int key, uint64_t version);
void shuffle(struct op *ops, size_t n, unsigned seed);

/* Records given to a store_rec_cb (collect), stopping after stop_after if set. */
struct seen {
	size_t n;
	int64_t ts[MAX_SEEN];
	int64_t v[MAX_SEEN];
	size_t stop_after; /* 0 = never stop */
};

int collect(const struct rec *r, void *arg);

/* Series given to a store_series_cb (collect_series). */
struct series_seen {
	size_t n;
	char names[MAX_SEEN][8];
	int64_t first[MAX_SEEN], last[MAX_SEEN];
};

int collect_series(const char *name, size_t len, int64_t first, int64_t last, void *arg);

#endif
