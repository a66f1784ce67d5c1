/*
 * test_catalog.c - the catalog against a real RocksDB store in a temporary directory:
 * persistence across reopen, the persisted records' JSON and their checks on load,
 * name rules, token secrecy, ownership, and the worker snapshot (round trip, lookups,
 * strict rejection of malformed bytes).
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "temporis/data/catalog.h"
#include "temporis/data/store.h"

#define NFTW_FDS 16
#define ROUND_TRIP_SOURCES 100
#define BIG_ACCOUNTS 3
#define BIG_COUNT 1000
#define BIG_SNAP_BYTES (16 + BIG_ACCOUNTS * 64 + BIG_COUNT * 36 + BIG_COUNT * 80)
#define FUZZ_ROUNDS 20000
#define FUZZ_SEED 12345u

struct fx {
	char dir[64];
	struct store *st;
	struct catalog *c;
};

static void fx_open(struct fx *f)
{
	char err[256];

	assert_int_equal(store_open(f->dir, CFG_SYNC_WAL, &f->st, err, sizeof(err)), 0);
	if (catalog_open(f->st, &f->c, err, sizeof(err)) != 0)
		fail_msg("catalog_open: %s", err);
}

static void fx_close(struct fx *f)
{
	catalog_close(f->c);
	store_close(f->st);
	f->c = NULL;
	f->st = NULL;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_catalog.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	fx_open(f);
	*state = f;
	return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (f->c != NULL)
		fx_close(f);
	assert_int_equal(nftw(f->dir, rm_entry, NFTW_FDS, FTW_DEPTH | FTW_PHYS), 0);
	free(f);
	return 0;
}

/* Encodes the catalog and decodes it as a worker would. */
static struct catalog_snap *snapshot(struct catalog *c)
{
	size_t n = catalog_encode(c, NULL, 0);
	uint8_t *buf = malloc(n);

	assert_non_null(buf);
	assert_int_equal(catalog_encode(c, buf, n), n);
	struct catalog_snap *s = catalog_snap_decode(buf, n);
	free(buf);
	assert_non_null(s);
	return s;
}

static const struct catalog_account *resolve(const struct catalog_snap *s, const char *token)
{
	uint8_t h[CATALOG_HASH_LEN];

	assert_int_equal(catalog_token_hash(token, strlen(token), h), 0);
	return catalog_snap_token(s, h);
}

static void make_account(struct catalog *c, const char *name, char token[CATALOG_TOKEN_LEN + 1],
			 struct catalog_account *a)
{
	struct catalog_token t;

	assert_int_equal(catalog_account_create(c, name, a, token, &t), CAT_OK);
}

/* ------------------------------------------------------------------ tests */

static void test_catalog_survives_reopen(void **state)
{
	struct fx *f = *state;
	char tok1[CATALOG_TOKEN_LEN + 1], tok2[CATALOG_TOKEN_LEN + 1];
	struct catalog_account acme, zeta, got;
	struct catalog_token t2;
	struct catalog_source s1, s2, out;

	make_account(f->c, "acme", tok1, &acme);
	make_account(f->c, "zeta", tok2, &zeta);
	assert_int_equal(acme.id, 1);
	assert_int_equal(zeta.id, 2);
	assert_int_equal(catalog_token_create(f->c, "acme", "ci", tok2, &t2), CAT_OK);
	assert_int_equal(catalog_source_create(f->c, "acme", "store_metrics", &s1), CAT_OK);
	assert_int_equal(catalog_source_create(f->c, "zeta", "grid_load_eu", &s2), CAT_OK);
	assert_int_equal(s1.id, 1);
	assert_int_equal(s2.id, 2);
	assert_int_equal(catalog_source_set_archived(f->c, "zeta", "grid_load_eu", true, NULL),
			 CAT_OK);
	assert_int_equal(catalog_token_revoke(f->c, "acme", t2.id), CAT_OK);

	fx_close(f);
	fx_open(f);

	assert_int_equal(catalog_account_find(f->c, "acme", &got), CAT_OK);
	assert_int_equal(got.id, acme.id);
	assert_int_equal(got.created_at, acme.created_at);
	assert_int_equal(catalog_account_by_id(f->c, zeta.id, &got), CAT_OK);
	assert_string_equal(got.name, "zeta");
	assert_int_equal(catalog_source_find(f->c, "acme", "store_metrics", &out), CAT_OK);
	assert_int_equal(out.id, s1.id);
	assert_false(out.archived);
	assert_int_equal(out.created_at, s1.created_at);
	assert_int_equal(catalog_source_find(f->c, "zeta", "grid_load_eu", &out), CAT_OK);
	assert_int_equal(out.id, s2.id);
	assert_int_equal(out.account_id, zeta.id);
	assert_true(out.archived);
	assert_true(store_source_exists(f->st, s1.id));

	struct catalog_snap *s = snapshot(f->c);
	assert_non_null(resolve(s, tok1));
	assert_null(resolve(s, tok2)); /* revoked before the reopen */
	catalog_snap_free(s);

	/* ids continue after the highest one loaded */
	struct catalog_account third;
	struct catalog_source s3;
	make_account(f->c, "third", tok1, &third);
	assert_int_equal(third.id, 3);
	assert_int_equal(catalog_source_create(f->c, "third", "x", &s3), CAT_OK);
	assert_int_equal(s3.id, 3);
}

static void test_revoked_token_no_longer_resolves(void **state)
{
	struct fx *f = *state;
	char tok[CATALOG_TOKEN_LEN + 1];
	struct catalog_account a;
	struct catalog_token t;

	assert_int_equal(catalog_account_create(f->c, "acme", &a, tok, &t), CAT_OK);
	struct catalog_snap *s = snapshot(f->c);
	const struct catalog_account *who = resolve(s, tok);
	assert_non_null(who);
	assert_int_equal(who->id, a.id);
	assert_string_equal(who->name, "acme");
	catalog_snap_free(s);

	assert_int_equal(catalog_token_revoke(f->c, "acme", t.id), CAT_OK);
	s = snapshot(f->c);
	assert_null(resolve(s, tok));
	catalog_snap_free(s);
}

static void test_seed_names(void **state)
{
	struct fx *f = *state;
	char n48[CATALOG_NAME_MAX + 2];
	char tok[CATALOG_TOKEN_LEN + 1];
	struct catalog_account a;

	memset(n48, 'a', sizeof(n48));
	n48[CATALOG_NAME_MAX] = '\0';
	assert_true(catalog_name_valid("store_metrics", 13));
	assert_true(catalog_name_valid("grid_load_eu", 12));
	assert_false(catalog_name_valid("Store-Metrics", 13));
	assert_false(catalog_name_valid("2024data", 8));
	assert_false(catalog_name_valid("", 0));
	assert_false(catalog_name_valid("_x", 2));
	assert_false(catalog_name_valid("a\0b", 3));
	assert_true(catalog_name_valid(n48, CATALOG_NAME_MAX));
	make_account(f->c, "acme", tok, &a);
	assert_int_equal(catalog_source_create(f->c, "acme", n48, NULL), CAT_OK);
	n48[CATALOG_NAME_MAX] = 'a'; /* 49 characters */
	n48[CATALOG_NAME_MAX + 1] = '\0';
	assert_false(catalog_name_valid(n48, CATALOG_NAME_MAX + 1));
	assert_int_equal(catalog_source_create(f->c, "acme", n48, NULL), CAT_INVALID);
	assert_int_equal(catalog_source_create(f->c, "acme", "Store-Metrics", NULL), CAT_INVALID);
	assert_int_equal(catalog_source_create(f->c, "acme", "", NULL), CAT_INVALID);
	assert_int_equal(catalog_account_create(f->c, "2024data", NULL, tok, NULL), CAT_INVALID);
	assert_int_equal(catalog_account_create(f->c, n48, NULL, tok, NULL), CAT_INVALID);
	assert_int_equal(catalog_account_create(f->c, "acme", NULL, tok, NULL), CAT_EXISTS);
}

static void test_duplicate_source_exists(void **state)
{
	struct fx *f = *state;
	char tok[CATALOG_TOKEN_LEN + 1];
	struct catalog_account a;

	make_account(f->c, "acme", tok, &a);
	assert_int_equal(catalog_source_create(f->c, "acme", "orders", NULL), CAT_OK);
	uint64_t gen = catalog_generation(f->c);
	assert_int_equal(catalog_source_create(f->c, "acme", "orders", NULL), CAT_EXISTS);
	assert_int_equal(catalog_generation(f->c), gen);
}

static void test_source_in_unknown_account_not_found(void **state)
{
	struct fx *f = *state;

	assert_int_equal(catalog_source_create(f->c, "ghost", "orders", NULL), CAT_NOT_FOUND);
	assert_int_equal(catalog_source_find(f->c, "ghost", "orders", NULL), CAT_NOT_FOUND);
	assert_int_equal(catalog_source_set_archived(f->c, "ghost", "orders", true, NULL),
			 CAT_NOT_FOUND);
	assert_int_equal(catalog_token_create(f->c, "ghost", NULL, (char[CATALOG_TOKEN_LEN + 1]){ 0 },
					      NULL),
			 CAT_NOT_FOUND);
	assert_int_equal(catalog_each_source(f->c, "ghost", NULL, NULL), CAT_NOT_FOUND);
}

static void test_same_source_name_in_two_accounts_is_isolated(void **state)
{
	struct fx *f = *state;
	char ta[CATALOG_TOKEN_LEN + 1], tb[CATALOG_TOKEN_LEN + 1];
	struct catalog_account a, b;
	struct catalog_source sa, sb;

	make_account(f->c, "acme", ta, &a);
	make_account(f->c, "bravo", tb, &b);
	assert_int_equal(catalog_source_create(f->c, "acme", "orders", &sa), CAT_OK);
	assert_int_equal(catalog_source_create(f->c, "bravo", "orders", &sb), CAT_OK);
	assert_int_not_equal(sa.id, sb.id);
	assert_int_equal(catalog_source_create(f->c, "acme", "only_acme", NULL), CAT_OK);

	struct catalog_snap *s = snapshot(f->c);
	const struct catalog_account *who = resolve(s, tb);
	assert_non_null(who);
	assert_int_equal(who->id, b.id);
	const struct catalog_source *src = catalog_snap_source(s, who->id, "orders", 6);
	assert_non_null(src);
	assert_int_equal(src->id, sb.id);
	assert_null(catalog_snap_source(s, who->id, "only_acme", 9));
	src = catalog_snap_source(s, a.id, "only_acme", 9);
	assert_non_null(src);
	assert_int_equal(src->account_id, a.id);
	assert_int_equal(catalog_snap_source(s, a.id, "orders", 6)->id, sa.id);
	/* the length decides, not a NUL: "ordersX" cut to 6 is "orders", "orde" is nothing */
	assert_non_null(catalog_snap_source(s, a.id, "ordersX", 6));
	assert_null(catalog_snap_source(s, a.id, "orders", 4));
	assert_null(catalog_snap_source(s, a.id, "orders\0", 7));
	catalog_snap_free(s);
}

static int find_secret_cb(const char *key, size_t klen, const char *val, size_t vlen, void *arg)
{
	const char *secret = arg;
	size_t n = strlen(secret);

	assert_null(memmem(key, klen, secret, n));
	assert_null(memmem(val, vlen, secret, n));
	return 0;
}

static void test_token_format_and_hash_only_stored(void **state)
{
	struct fx *f = *state;
	char tok[CATALOG_TOKEN_LEN + 1], tok2[CATALOG_TOKEN_LEN + 1];
	struct catalog_account a;
	struct catalog_token t;
	regex_t re;

	assert_int_equal(regcomp(&re, "^ts_[0-9a-f]{64}$", REG_EXTENDED | REG_NOSUB), 0);
	assert_int_equal(catalog_account_create(f->c, "acme", &a, tok, &t), CAT_OK);
	assert_int_equal(catalog_token_create(f->c, "acme", "ci", tok2, NULL), CAT_OK);
	assert_int_equal(regexec(&re, tok, 0, NULL, 0), 0);
	assert_int_equal(regexec(&re, tok2, 0, NULL, 0), 0);
	regfree(&re);
	assert_int_equal(strlen(tok), CATALOG_TOKEN_LEN);
	assert_string_not_equal(tok, tok2);
	assert_int_equal(strlen(t.id), CATALOG_TOKEN_ID_LEN);
	assert_string_equal(t.label, "default");

	/* neither the whole token nor its random part appears anywhere in the store */
	assert_int_equal(store_catalog_scan(f->st, "", find_secret_cb, tok), 0);
	assert_int_equal(store_catalog_scan(f->st, "", find_secret_cb, tok + 3), 0);
	assert_int_equal(store_catalog_scan(f->st, "", find_secret_cb, tok2 + 3), 0);

	struct catalog_snap *s = snapshot(f->c);
	assert_non_null(resolve(s, tok));
	assert_non_null(resolve(s, tok2));
	assert_null(resolve(s, "ts_0000000000000000000000000000000000000000000000000000000000000000"));
	catalog_snap_free(s);
}

/*
 * Through the real store: every source is a RocksDB column family, and RocksDB rewrites
 * its OPTIONS file for all families on each create (O(n) each), so this stays modest;
 * the 1000-entry scale is covered by the hand-built snapshot below.
 */
static void test_snapshot_round_trip_sources(void **state)
{
	struct fx *f = *state;
	char tok[CATALOG_TOKEN_LEN + 1], name[CATALOG_NAME_MAX + 1];
	struct catalog_account a[2];
	struct catalog_source made[ROUND_TRIP_SOURCES];

	make_account(f->c, "acme", tok, &a[0]);
	make_account(f->c, "bravo", tok, &a[1]);
	for (int i = 0; i < ROUND_TRIP_SOURCES; i++) {
		snprintf(name, sizeof(name), "src_%d", i);
		assert_int_equal(catalog_source_create(f->c, a[i % 2].name, name, &made[i]), CAT_OK);
		if (i % 7 == 0)
			assert_int_equal(catalog_source_set_archived(f->c, a[i % 2].name, name, true,
								     &made[i]),
					 CAT_OK);
	}
	struct catalog_snap *s = snapshot(f->c);
	for (int i = 0; i < ROUND_TRIP_SOURCES; i++) {
		snprintf(name, sizeof(name), "src_%d", i);
		const struct catalog_source *src =
			catalog_snap_source(s, a[i % 2].id, name, strlen(name));
		assert_non_null(src);
		assert_int_equal(src->id, made[i].id);
		assert_int_equal(src->account_id, a[i % 2].id);
		assert_int_equal(src->archived, i % 7 == 0);
		assert_int_equal(src->created_at, made[i].created_at);
		assert_string_equal(src->name, name);
		assert_null(catalog_snap_source(s, a[(i + 1) % 2].id, name, strlen(name)));
	}
	assert_non_null(resolve(s, tok));
	catalog_snap_free(s);
}

/* A test-side writer of the documented snapshot layout (see catalog_snap.c). */
struct sbuf {
	uint8_t *p;
	size_t len;
};

static void put_le(struct sbuf *b, uint64_t v, int width)
{
	for (int i = 0; i < width; i++)
		b->p[b->len++] = (uint8_t)(v >> (8 * i));
}

static void put_name(struct sbuf *b, const char *name)
{
	put_le(b, strlen(name), 1);
	memcpy(b->p + b->len, name, strlen(name));
	b->len += strlen(name);
}

static void token_secret(int i, char *out, size_t cap)
{
	snprintf(out, cap, "ts_%064d", i);
}

/* dup: source 3 reuses source 0's (account, name) key. */
static struct sbuf build_big_snapshot(bool dup)
{
	struct sbuf b = { malloc(BIG_SNAP_BYTES), 0 };
	char name[CATALOG_NAME_MAX + 1], secret[CATALOG_TOKEN_LEN + 1];
	uint8_t h[CATALOG_HASH_LEN];

	assert_non_null(b.p);
	memcpy(b.p, "TCS1", 4);
	b.len = 4;
	put_le(&b, BIG_ACCOUNTS, 4);
	put_le(&b, BIG_COUNT, 4);
	put_le(&b, BIG_COUNT, 4);
	for (int a = 1; a <= BIG_ACCOUNTS; a++) {
		snprintf(name, sizeof(name), "acct_%d", a);
		put_le(&b, (uint64_t)a, 4);
		put_le(&b, (uint64_t)(1000 + a), 8);
		put_name(&b, name);
	}
	for (int i = 0; i < BIG_COUNT; i++) {
		token_secret(i, secret, sizeof(secret));
		assert_int_equal(catalog_token_hash(secret, strlen(secret), h), 0);
		put_le(&b, (uint64_t)(1 + i % BIG_ACCOUNTS), 4);
		memcpy(b.p + b.len, h, sizeof(h));
		b.len += sizeof(h);
	}
	for (int i = 0; i < BIG_COUNT; i++) {
		snprintf(name, sizeof(name), "src_%d", dup && i == BIG_ACCOUNTS ? 0 : i / BIG_ACCOUNTS);
		put_le(&b, (uint64_t)(i + 1), 4);
		put_le(&b, (uint64_t)(1 + i % BIG_ACCOUNTS), 4);
		put_le(&b, i % 7 == 0, 1);
		put_le(&b, (uint64_t)-i, 8); /* negative created_at must survive too */
		put_name(&b, name);
	}
	assert_true(b.len <= BIG_SNAP_BYTES);
	return b;
}

static void test_snapshot_lookups_over_1000_sources_and_tokens(void **state)
{
	struct sbuf b = build_big_snapshot(false);
	char name[CATALOG_NAME_MAX + 1], secret[CATALOG_TOKEN_LEN + 1];
	struct catalog_snap *s = catalog_snap_decode(b.p, b.len);

	assert_non_null(s);
	for (int i = 0; i < BIG_COUNT; i++) {
		uint32_t acct = (uint32_t)(1 + i % BIG_ACCOUNTS);
		snprintf(name, sizeof(name), "src_%d", i / BIG_ACCOUNTS);
		const struct catalog_source *src = catalog_snap_source(s, acct, name, strlen(name));
		assert_non_null(src);
		assert_int_equal(src->id, i + 1);
		assert_int_equal(src->account_id, acct);
		assert_int_equal(src->archived, i % 7 == 0);
		assert_int_equal(src->created_at, -i);
		token_secret(i, secret, sizeof(secret));
		const struct catalog_account *who = resolve(s, secret);
		assert_non_null(who);
		assert_int_equal(who->id, acct);
		assert_int_equal(who->created_at, 1000 + acct);
	}
	assert_null(catalog_snap_source(s, BIG_ACCOUNTS + 1, "src_0", 5));
	token_secret(BIG_COUNT, secret, sizeof(secret));
	assert_null(resolve(s, secret));
	catalog_snap_free(s);
	free(b.p);

	b = build_big_snapshot(true);
	assert_null(catalog_snap_decode(b.p, b.len));
	free(b.p);
}

/* One account "acme", one live token, one source "s1": byte offsets are fixed. */
#define SMALL_LEN 89
#define OFF_COUNT_ACCTS 4
#define OFF_COUNT_SRCS 12
#define OFF_ACCT_NAME_LEN 28
#define OFF_ACCT_NAME 29
#define OFF_TOKEN_ACCT 33
#define OFF_SRC_ACCT 73
#define OFF_SRC_ARCHIVED 77
#define OFF_SRC_NAME_LEN 86

static size_t small_snapshot(struct catalog *c, uint8_t *buf, size_t cap)
{
	char tok[CATALOG_TOKEN_LEN + 1];
	struct catalog_account a;

	make_account(c, "acme", tok, &a);
	assert_int_equal(catalog_source_create(c, "acme", "s1", NULL), CAT_OK);
	size_t n = catalog_encode(c, buf, cap);
	assert_int_equal(n, SMALL_LEN);
	return n;
}

/* Copies good, applies one byte change at off, and expects decode to refuse it. */
static void expect_rejected(const uint8_t *good, size_t n, size_t off, uint8_t byte)
{
	uint8_t bad[SMALL_LEN + 1];

	memcpy(bad, good, n);
	bad[off] = byte;
	assert_null(catalog_snap_decode(bad, n));
}

static void test_snapshot_rejects_truncated_and_garbage(void **state)
{
	struct fx *f = *state;
	uint8_t good[SMALL_LEN + 1];
	size_t n = small_snapshot(f->c, good, sizeof(good));

	struct catalog_snap *s = catalog_snap_decode(good, n);
	assert_non_null(s);
	catalog_snap_free(s);
	for (size_t len = 0; len < n; len++)
		assert_null(catalog_snap_decode(good, len));
	good[n] = 0;
	assert_null(catalog_snap_decode(good, n + 1));              /* trailing byte */
	assert_null(catalog_snap_decode(NULL, 0));
	expect_rejected(good, n, 0, 'X');                          /* magic */
	expect_rejected(good, n, OFF_COUNT_ACCTS, 2);              /* count beyond data */
	expect_rejected(good, n, OFF_COUNT_ACCTS + 3, 0xff);       /* huge count */
	expect_rejected(good, n, OFF_COUNT_SRCS, 0);               /* bytes left over */
	expect_rejected(good, n, OFF_ACCT_NAME_LEN, CATALOG_NAME_MAX + 1);
	expect_rejected(good, n, OFF_ACCT_NAME_LEN, 0);
	expect_rejected(good, n, OFF_ACCT_NAME, 'A');              /* invalid name */
	expect_rejected(good, n, OFF_ACCT_NAME + 1, '-');
	expect_rejected(good, n, OFF_TOKEN_ACCT, 9);               /* unknown account */
	expect_rejected(good, n, OFF_SRC_ACCT, 9);
	expect_rejected(good, n, OFF_SRC_ARCHIVED, 2);
	expect_rejected(good, n, OFF_SRC_NAME_LEN, 3);
}

/* Random corruption must never crash, leak or read out of bounds (run under ASan). */
static void test_snapshot_survives_random_corruption(void **state)
{
	struct fx *f = *state;
	uint8_t good[SMALL_LEN], bad[SMALL_LEN];
	size_t n = small_snapshot(f->c, good, sizeof(good));
	unsigned seed = FUZZ_SEED;

	for (int i = 0; i < FUZZ_ROUNDS; i++) {
		memcpy(bad, good, n);
		int flips = 1 + rand_r(&seed) % 4;
		for (int k = 0; k < flips; k++)
			bad[(size_t)rand_r(&seed) % n] = (uint8_t)rand_r(&seed);
		size_t len = (size_t)rand_r(&seed) % (n + 1);
		struct catalog_snap *s = catalog_snap_decode(bad, len);
		if (s != NULL) {
			uint8_t h[CATALOG_HASH_LEN] = { 0 };
			(void)catalog_snap_token(s, h);
			(void)catalog_snap_source(s, 1, "s1", 2);
			catalog_snap_free(s);
		}
	}
}

static void test_generation_bumps_on_mutation(void **state)
{
	struct fx *f = *state;
	char tok[CATALOG_TOKEN_LEN + 1];
	struct catalog_account a;
	struct catalog_token t;
	uint64_t g = catalog_generation(f->c);

	make_account(f->c, "acme", tok, &a);
	assert_true(catalog_generation(f->c) > g);
	g = catalog_generation(f->c);
	assert_int_equal(catalog_token_create(f->c, "acme", "x", tok, &t), CAT_OK);
	assert_true(catalog_generation(f->c) > g);
	g = catalog_generation(f->c);
	assert_int_equal(catalog_source_create(f->c, "acme", "orders", NULL), CAT_OK);
	assert_true(catalog_generation(f->c) > g);
	g = catalog_generation(f->c);
	assert_int_equal(catalog_source_set_archived(f->c, "acme", "orders", true, NULL), CAT_OK);
	assert_true(catalog_generation(f->c) > g);
	g = catalog_generation(f->c);
	assert_int_equal(catalog_token_revoke(f->c, "acme", t.id), CAT_OK);
	assert_true(catalog_generation(f->c) > g);
	g = catalog_generation(f->c);
	/* failures and no-ops leave it alone */
	assert_int_equal(catalog_source_create(f->c, "acme", "orders", NULL), CAT_EXISTS);
	assert_int_equal(catalog_account_create(f->c, "Bad", NULL, tok, NULL), CAT_INVALID);
	assert_int_equal(catalog_token_revoke(f->c, "acme", t.id), CAT_OK);
	assert_int_equal(catalog_generation(f->c), g);
}

static void test_archive_idempotent(void **state)
{
	struct fx *f = *state;
	char tok[CATALOG_TOKEN_LEN + 1];
	struct catalog_account a;
	struct catalog_source s;

	make_account(f->c, "acme", tok, &a);
	assert_int_equal(catalog_source_create(f->c, "acme", "orders", NULL), CAT_OK);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(catalog_source_set_archived(f->c, "acme", "orders", true, &s), CAT_OK);
		assert_true(s.archived);
	}
	struct catalog_snap *snap = snapshot(f->c);
	assert_true(catalog_snap_source(snap, a.id, "orders", 6)->archived);
	catalog_snap_free(snap);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(catalog_source_set_archived(f->c, "acme", "orders", false, &s),
				 CAT_OK);
		assert_false(s.archived);
	}
	assert_int_equal(catalog_source_set_archived(f->c, "acme", "nope", false, &s),
			 CAT_NOT_FOUND);
}

struct tok_list {
	int n;
	char ids[4][CATALOG_TOKEN_ID_LEN + 1];
	char labels[4][CATALOG_LABEL_MAX + 1];
	bool revoked[4];
};

static void collect_token(const struct catalog_token *t, void *arg)
{
	struct tok_list *l = arg;

	assert_true(l->n < 4);
	snprintf(l->ids[l->n], sizeof(l->ids[0]), "%s", t->id);
	snprintf(l->labels[l->n], sizeof(l->labels[0]), "%s", t->label);
	l->revoked[l->n] = t->revoked;
	l->n++;
}

static void test_token_list_and_revoke_ownership(void **state)
{
	struct fx *f = *state;
	char tok[CATALOG_TOKEN_LEN + 1], long_label[CATALOG_LABEL_MAX + 2];
	struct catalog_account a, b;
	struct catalog_token t0, t1, tb;
	struct tok_list l = { 0 };

	assert_int_equal(catalog_account_create(f->c, "acme", &a, tok, &t0), CAT_OK);
	assert_int_equal(catalog_account_create(f->c, "bravo", &b, tok, &tb), CAT_OK);
	assert_int_equal(catalog_token_create(f->c, "acme", NULL, tok, &t1), CAT_OK);
	assert_string_equal(t1.label, "");
	memset(long_label, 'x', sizeof(long_label));
	long_label[CATALOG_LABEL_MAX + 1] = '\0';
	assert_int_equal(catalog_token_create(f->c, "acme", long_label, tok, NULL), CAT_INVALID);
	long_label[CATALOG_LABEL_MAX] = '\0';
	assert_int_equal(catalog_token_create(f->c, "bravo", long_label, tok, NULL), CAT_OK);

	/* another account's token id is not found, and stays live */
	assert_int_equal(catalog_token_revoke(f->c, "acme", tb.id), CAT_NOT_FOUND);
	assert_int_equal(catalog_token_revoke(f->c, "acme", "0123456789abcdef"), CAT_NOT_FOUND);
	assert_int_equal(catalog_token_revoke(f->c, "ghost", t0.id), CAT_NOT_FOUND);
	assert_int_equal(catalog_token_revoke(f->c, "acme", t1.id), CAT_OK);
	assert_int_equal(catalog_token_revoke(f->c, "acme", t1.id), CAT_OK);

	assert_int_equal(catalog_each_token(f->c, "acme", collect_token, &l), CAT_OK);
	assert_int_equal(l.n, 2);
	/* creation order; t0 and t1 may share a second, then ids decide */
	bool t0_first = t0.created_at < t1.created_at ||
			(t0.created_at == t1.created_at && strcmp(t0.id, t1.id) < 0);
	assert_string_equal(l.ids[t0_first ? 0 : 1], t0.id);
	assert_string_equal(l.labels[t0_first ? 0 : 1], "default");
	assert_true(l.revoked[t0_first ? 1 : 0]);
	assert_false(l.revoked[t0_first ? 0 : 1]);
	assert_int_equal(catalog_each_token(f->c, "ghost", collect_token, &l), CAT_NOT_FOUND);
}

struct name_list {
	int n;
	char names[8][2 * CATALOG_NAME_MAX + 2];
};

static void collect_account(const struct catalog_account *a, void *arg)
{
	struct name_list *l = arg;

	assert_true(l->n < 8);
	snprintf(l->names[l->n++], sizeof(l->names[0]), "%s", a->name);
}

static void collect_source(const struct catalog_account *owner, const struct catalog_source *s,
			   void *arg)
{
	struct name_list *l = arg;

	assert_true(l->n < 8);
	assert_int_equal(owner->id, s->account_id);
	snprintf(l->names[l->n++], sizeof(l->names[0]), "%s/%s", owner->name, s->name);
}

static void test_listing_is_in_name_order(void **state)
{
	struct fx *f = *state;
	char tok[CATALOG_TOKEN_LEN + 1];
	struct catalog_account a;
	struct name_list accts = { 0 }, all = { 0 }, one = { 0 };

	make_account(f->c, "zeta", tok, &a); /* id order differs from name order */
	make_account(f->c, "acme", tok, &a);
	assert_int_equal(catalog_source_create(f->c, "zeta", "b", NULL), CAT_OK);
	assert_int_equal(catalog_source_create(f->c, "acme", "z", NULL), CAT_OK);
	assert_int_equal(catalog_source_create(f->c, "zeta", "a", NULL), CAT_OK);
	assert_int_equal(catalog_source_create(f->c, "acme", "y", NULL), CAT_OK);

	catalog_each_account(f->c, collect_account, &accts);
	assert_int_equal(accts.n, 2);
	assert_string_equal(accts.names[0], "acme");
	assert_string_equal(accts.names[1], "zeta");
	assert_int_equal(catalog_each_source(f->c, NULL, collect_source, &all), CAT_OK);
	assert_int_equal(all.n, 4);
	assert_string_equal(all.names[0], "acme/y");
	assert_string_equal(all.names[1], "acme/z");
	assert_string_equal(all.names[2], "zeta/a");
	assert_string_equal(all.names[3], "zeta/b");
	assert_int_equal(catalog_each_source(f->c, "zeta", collect_source, &one), CAT_OK);
	assert_int_equal(one.n, 2);
	assert_string_equal(one.names[0], "zeta/a");
}

static void test_encode_reports_size_when_buffer_small(void **state)
{
	struct fx *f = *state;
	uint8_t buf[SMALL_LEN];
	size_t n = small_snapshot(f->c, buf, sizeof(buf));

	assert_int_equal(catalog_encode(f->c, buf, n - 1), n);
	assert_int_equal(catalog_encode(f->c, NULL, 0), n);
}

/* Whatever bytes an operator puts in a label must not make the catalog unloadable. */
static void test_any_label_bytes_survive_reopen(void **state)
{
	struct fx *f = *state;
	char tok[CATALOG_TOKEN_LEN + 1], labels[2][CATALOG_LABEL_MAX + 1];
	struct catalog_account a;
	struct tok_list l = { 0 };

	make_account(f->c, "acme", tok, &a);
	for (int k = 0; k < 2; k++) {
		for (int i = 0; i < CATALOG_LABEL_MAX; i++) /* every byte value but NUL */
			labels[k][i] = (char)(1 + (k * CATALOG_LABEL_MAX + i) % 255);
		labels[k][CATALOG_LABEL_MAX] = '\0';
		assert_int_equal(catalog_token_create(f->c, "acme", labels[k], tok, NULL), CAT_OK);
	}
	fx_close(f);
	fx_open(f);
	assert_int_equal(catalog_each_token(f->c, "acme", collect_token, &l), CAT_OK);
	assert_int_equal(l.n, 3);
	for (int k = 0; k < 2; k++) {
		bool found = false;
		for (int i = 0; i < l.n; i++)
			found = found || strcmp(l.labels[i], labels[k]) == 0;
		assert_true(found);
	}
}

/* ---- the persisted records: their JSON shape is the on-disk format ---- */

struct record_check {
	const char *key;                 /* the one record expected under the scanned prefix */
	const char *pattern;             /* its whole JSON text, as an extended regex */
	int seen;
};

static int record_cb(const char *key, size_t klen, const char *val, size_t vlen, void *arg)
{
	struct record_check *rc = arg;
	char text[512];
	regex_t re;

	assert_true(vlen < sizeof(text));
	memcpy(text, val, vlen);
	text[vlen] = '\0';
	if (rc->key != NULL) {
		assert_int_equal(klen, strlen(rc->key));
		assert_memory_equal(key, rc->key, klen);
	}
	assert_int_equal(regcomp(&re, rc->pattern, REG_EXTENDED | REG_NOSUB), 0);
	if (regexec(&re, text, 0, NULL, 0) != 0)
		fail_msg("record %.*s is %s", (int)klen, key, text);
	regfree(&re);
	rc->seen++;
	return 0;
}

static void expect_record(struct fx *f, const char *prefix, const char *key, const char *pattern)
{
	struct record_check rc = { .key = key, .pattern = pattern, .seen = 0 };

	assert_int_equal(store_catalog_scan(f->st, prefix, record_cb, &rc), 0);
	assert_int_equal(rc.seen, 1);
}

static void test_records_keep_their_json_shape(void **state)
{
	struct fx *f = *state;
	char tok[CATALOG_TOKEN_LEN + 1];
	struct catalog_account a;

	make_account(f->c, "acme", tok, &a);
	assert_int_equal(catalog_source_create(f->c, "acme", "store_metrics", NULL), CAT_OK);
	assert_int_equal(catalog_source_set_archived(f->c, "acme", "store_metrics", true, NULL),
			 CAT_OK);
	expect_record(f, "a/", "a/acme", "^\\{\"id\":1,\"name\":\"acme\",\"created_at\":[0-9]+\\}$");
	expect_record(f, "t/", NULL,
		      "^\\{\"id\":\"[0-9a-f]{16}\",\"account_id\":1,\"label\":\"default\","
		      "\"created_at\":[0-9]+,\"hash\":\"[0-9a-f]{64}\",\"revoked\":false\\}$");
	expect_record(f, "s/", "s/0000000001",
		      "^\\{\"id\":1,\"account_id\":1,\"name\":\"store_metrics\",\"archived\":true,"
		      "\"created_at\":[0-9]+,\"retention_s\":0\\}$");
}

static void put_record(struct fx *f, const char *key, const char *val)
{
	char err[256];

	if (store_catalog_put(f->st, key, strlen(key), val, strlen(val), err, sizeof(err)) != 0)
		fail_msg("store_catalog_put: %s", err);
}

static void expect_open_fails(struct fx *f, const char *why)
{
	struct catalog *c = NULL;
	char err[256] = "";

	assert_int_not_equal(catalog_open(f->st, &c, err, sizeof(err)), 0);
	assert_null(c);
	assert_string_equal(err, why);
}

static void put_token_record(struct fx *f, const char *hash)
{
	char val[256];

	snprintf(val, sizeof(val),
		 "{\"id\":\"0123456789abcdef\",\"account_id\":1,\"label\":\"\",\"created_at\":0,"
		 "\"hash\":\"%s\",\"revoked\":false}",
		 hash);
	put_record(f, "t/0123456789abcdef", val);
}

/* A record that is not what the catalog writes stops the writer with its key named. */
static void test_malformed_record_refuses_open(void **state)
{
	struct fx *f = *state;
	const char *good = "{\"id\":1,\"name\":\"acme\",\"created_at\":0}";
	char err[256];

	catalog_close(f->c);
	f->c = NULL;
	put_record(f, "a/acme", "{\"id\":1,\"name\":\"acme\",\"created_at\":0}x");
	expect_open_fails(f, "catalog record a/acme: malformed account");
	put_record(f, "a/acme", "[1]");
	expect_open_fails(f, "catalog record a/acme: malformed account");
	put_record(f, "a/acme", "{\"id\":1,\"name\":\"beta\",\"created_at\":0}");
	expect_open_fails(f, "catalog record a/acme: key does not match name");
	put_record(f, "a/acme", good);
	put_record(f, "s/0000000002",
		   "{\"id\":1,\"account_id\":1,\"name\":\"s\",\"archived\":false,\"created_at\":0}");
	expect_open_fails(f, "catalog record s/0000000002: key does not match id");
	put_record(f, "s/0000000002",
		   "{\"id\":2,\"account_id\":9,\"name\":\"s\",\"archived\":false,\"created_at\":0}");
	expect_open_fails(f, "catalog record s/0000000002: unknown account");
	put_record(f, "s/0000000002",
		   "{\"id\":2,\"account_id\":1,\"name\":\"s\",\"archived\":false,\"created_at\":0}");
	/* hashes are lowercase hex, as written: anything else is not ours */
	put_token_record(f, "ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789");
	expect_open_fails(f, "catalog record t/0123456789abcdef: malformed token");
	put_token_record(f, "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
	assert_int_equal(catalog_open(f->st, &f->c, err, sizeof(err)), 0);
	assert_int_equal(catalog_source_find(f->c, "acme", "s", NULL), CAT_OK);
}

/* A retention is persisted; a record written before retention existed reads as 0. */
static void test_source_retention_persists_and_old_records_keep_forever(void **state)
{
	struct fx *f = *state;
	char tok[CATALOG_TOKEN_LEN + 1], err[256];
	struct catalog_account a;
	struct catalog_source s;

	make_account(f->c, "acme", tok, &a);
	assert_int_equal(catalog_source_create_with(f->c, "acme", "weekly", 604800, &s), CAT_OK);
	assert_int_equal(s.retention_s, 604800);
	assert_int_equal(catalog_source_create(f->c, "acme", "plain", &s), CAT_OK);
	assert_int_equal(s.retention_s, 0);
	assert_int_equal(catalog_source_set_retention(f->c, "acme", "plain", 30 * 86400, &s),
			 CAT_OK);
	assert_int_equal(catalog_source_set_retention(f->c, "acme", "plain", -1, NULL),
			 CAT_INVALID);
	assert_int_equal(catalog_source_set_retention(f->c, "acme", "nope", 1, NULL),
			 CAT_NOT_FOUND);
	catalog_close(f->c);
	assert_int_equal(catalog_open(f->st, &f->c, err, sizeof(err)), 0);
	assert_int_equal(catalog_source_find(f->c, "acme", "plain", &s), CAT_OK);
	assert_int_equal(s.retention_s, 30 * 86400);
	assert_int_equal(catalog_source_find(f->c, "acme", "weekly", &s), CAT_OK);
	assert_int_equal(s.retention_s, 604800);

	catalog_close(f->c);
	f->c = NULL;
	put_record(f, "s/0000000001",
		   "{\"id\":1,\"account_id\":1,\"name\":\"weekly\",\"archived\":false,"
		   "\"created_at\":0}");
	assert_int_equal(catalog_open(f->st, &f->c, err, sizeof(err)), 0);
	assert_int_equal(catalog_source_find(f->c, "acme", "weekly", &s), CAT_OK);
	assert_int_equal(s.retention_s, 0);
	catalog_close(f->c);
	f->c = NULL;
	put_record(f, "s/0000000001",
		   "{\"id\":1,\"account_id\":1,\"name\":\"weekly\",\"archived\":false,"
		   "\"created_at\":0,\"retention_s\":-5}");
	expect_open_fails(f, "catalog record s/0000000001: malformed source");
	put_record(f, "s/0000000001",
		   "{\"id\":1,\"account_id\":1,\"name\":\"weekly\",\"archived\":false,"
		   "\"created_at\":0,\"retention_s\":60}");
	assert_int_equal(catalog_open(f->st, &f->c, err, sizeof(err)), 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_catalog_survives_reopen),
		T(test_revoked_token_no_longer_resolves),
		T(test_seed_names),
		T(test_duplicate_source_exists),
		T(test_source_in_unknown_account_not_found),
		T(test_same_source_name_in_two_accounts_is_isolated),
		T(test_token_format_and_hash_only_stored),
		T(test_snapshot_round_trip_sources),
		T(test_snapshot_lookups_over_1000_sources_and_tokens),
		T(test_snapshot_rejects_truncated_and_garbage),
		T(test_snapshot_survives_random_corruption),
		T(test_generation_bumps_on_mutation),
		T(test_archive_idempotent),
		T(test_token_list_and_revoke_ownership),
		T(test_listing_is_in_name_order),
		T(test_any_label_bytes_survive_reopen),
		T(test_encode_reports_size_when_buffer_small),
		T(test_records_keep_their_json_shape),
		T(test_malformed_record_refuses_open),
		T(test_source_retention_persists_and_old_records_keep_forever),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
