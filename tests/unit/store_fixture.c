/*
 * store_fixture.c - the shared fixture and helpers of the store's unit tests
 * (store_fixture.h): every helper fails the running test on an error.
 */
#define _GNU_SOURCE
#include "store_fixture.h"

#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "temporis/data/store_read.h"

#define NFTW_FDS 16

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

void open_store(struct fixture *f)
{
	char err[ERR_LEN] = "";

	f->st = NULL;
	if (store_open(f->db, CFG_SYNC_WAL, &f->st, err, sizeof(err)) != 0)
		fail_msg("store_open: %s", err);
}

void reopen_store(struct fixture *f)
{
	store_close(f->st);
	open_store(f);
}

int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[ERR_LEN] = "";

	assert_non_null(f);
	snprintf(f->root, sizeof(f->root), "/tmp/test_store.XXXXXX");
	assert_non_null(mkdtemp(f->root));
	snprintf(f->db, sizeof(f->db), "%s/db", f->root);
	open_store(f);
	assert_int_equal(store_source_create(f->st, SRC, err, sizeof(err)), 0);
	*state = f;
	return 0;
}

int teardown(void **state)
{
	struct fixture *f = *state;

	store_close(f->st);
	assert_int_equal(nftw(f->root, rm_entry, NFTW_FDS, FTW_DEPTH | FTW_PHYS), 0);
	free(f);
	return 0;
}

struct rec int_rec(const char *name, int64_t ts, int64_t v)
{
	struct rec r = { .ts = ts, .type = REC_INT, .name = name,
			 .name_len = (uint16_t)strlen(name) };

	r.v.i = v;
	return r;
}

struct rec dbl_rec(const char *name, int64_t ts, double v)
{
	struct rec r = { .ts = ts, .type = REC_DOUBLE, .name = name,
			 .name_len = (uint16_t)strlen(name) };

	r.v.d = v;
	return r;
}

void commit(struct store *st, struct store_batch *b)
{
	char err[ERR_LEN] = "";

	if (store_batch_commit(st, b, err, sizeof(err)) != 0)
		fail_msg("commit: %s", err);
	store_batch_clear(b);
}

/* Commits and keeps the batch built, so its operand count can be read. */
void commit_keep(struct store *st, struct store_batch *b)
{
	char err[ERR_LEN] = "";

	if (store_batch_commit(st, b, err, sizeof(err)) != 0)
		fail_msg("commit: %s", err);
}

/* Commits one record in its own batch. */
void put1(struct store *st, uint32_t src, uint64_t version, struct rec r)
{
	struct store_batch *b = store_batch_new();

	assert_non_null(b);
	assert_int_equal(store_batch_merge(st, b, src, version, &r), 0);
	commit(st, b);
	store_batch_free(b);
}

int64_t get_int(struct store *st, uint32_t src, const char *name, int64_t ts)
{
	struct rec out;

	assert_int_equal(store_get(st, src, name, strlen(name), ts, &out), 1);
	assert_int_equal(out.type, REC_INT);
	assert_int_equal(out.ts, ts);
	return out.v.i;
}

int64_t lww_value(int key, uint64_t version)
{
	return (int64_t)version * 1000 + key;
}

void shuffle(struct op *ops, size_t n, unsigned seed)
{
	srand(seed);
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = (size_t)rand() % (i + 1);
		struct op t = ops[i];

		ops[i] = ops[j];
		ops[j] = t;
	}
}

int collect(const struct rec *r, void *arg)
{
	struct seen *s = arg;

	assert_true(s->n < MAX_SEEN);
	s->ts[s->n] = r->ts;
	s->v[s->n] = r->v.i;
	s->n++;
	return s->stop_after != 0 && s->n == s->stop_after;
}

int collect_series(const char *name, size_t len, int64_t first, int64_t last, void *arg)
{
	struct series_seen *s = arg;

	assert_true(s->n < MAX_SEEN && len < sizeof(s->names[0]));
	memcpy(s->names[s->n], name, len);
	s->names[s->n][len] = '\0';
	s->first[s->n] = first;
	s->last[s->n] = last;
	s->n++;
	return 0;
}
