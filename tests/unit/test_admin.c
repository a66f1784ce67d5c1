/*
 * test_admin.c - the admin socket: every op's reply through admin_execute against a
 * real store, catalog and shared region; catalog publication; the listening socket's
 * safety checks; frame I/O; and a real server round-trip over the Unix socket.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nftw */
#endif
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "temporis/base/clock.h"
#include "temporis/daemon/admin.h"
#include "temporis/daemon/admin_ops.h"
#include "temporis/daemon/retention.h"
#include "temporis/data/downsample.h"
#include "temporis/ipc/admin_msg.h"
#include "temporis/ipc/proto.h"
#include "temporis/data/store_batch.h"

#define TEST_RING_SIZE (1u << 20)
#define OTHER_UID 65534
#define ERR_MAX 512
#define STOP_MAX_MS 3000
#define RM_FDS 16
#define CONN_TRY_MAX 200 /* well above the server's connection cap */

struct fixture {
	char dir[64];
	char db[128];
	struct cfg cfg;
	struct store *store;
	struct catalog *catalog;
	struct shm shm;
	struct admin_ctx ctx;
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void rm_tree(const char *dir)
{
	if (nftw(dir, rm_entry, RM_FDS, FTW_DEPTH | FTW_PHYS) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[ERR_MAX];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_admin.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->db, sizeof(f->db), "%s/db", f->dir);
	cfg_defaults(&f->cfg);
	f->cfg.workers = 1;
	f->cfg.ring_size = TEST_RING_SIZE;
	assert_int_equal(store_open(f->db, CFG_SYNC_WAL, &f->store, err, sizeof(err)), 0);
	assert_int_equal(catalog_open(f->store, &f->catalog, err, sizeof(err)), 0);
	assert_int_equal(shm_create(&f->cfg, &f->shm), 0);
	f->ctx = (struct admin_ctx){
	    .store = f->store, .catalog = f->catalog, .shm = &f->shm, .cfg = &f->cfg};
	assert_int_equal(admin_publish_catalog(&f->ctx), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	shm_destroy(&f->shm);
	catalog_close(f->catalog);
	store_close(f->store);
	rm_tree(f->dir);
	free(f);
	return 0;
}

/* ------------------------------------------------------------------ helpers */

/* A body reply (the records) as the object its text holds; any other reply as it is. */
static struct json_object *body_decoded(struct json_object *reply)
{
	const char *text = json_object_get_string(reply);
	size_t len = (size_t)json_object_get_string_len(reply);
	struct json_object *obj;

	if (!json_object_is_type(reply, json_type_string))
		return reply;
	assert_true(admin_reply_is_body(text, len));
	assert_memory_equal(text + 1, "200", 3);
	obj = json_tokener_parse(text + PROTO_BODY_HDR_LEN);
	assert_non_null(obj);
	json_object_put(reply);
	return obj;
}

/* Run the request given as JSON text; the caller puts the reply. */
static struct json_object *run(struct fixture *f, const char *text)
{
	struct json_object *req = json_tokener_parse(text);
	struct json_object *reply;

	assert_non_null(req);
	reply = admin_execute(&f->ctx, req);
	json_object_put(req);
	assert_non_null(reply);
	return body_decoded(reply);
}

static const char *str_of(struct json_object *o, const char *key)
{
	struct json_object *v;

	assert_true(json_object_object_get_ex(o, key, &v));
	assert_true(json_object_is_type(v, json_type_string));
	return json_object_get_string(v);
}

static int64_t int_of(struct json_object *o, const char *key)
{
	struct json_object *v;

	assert_true(json_object_object_get_ex(o, key, &v));
	assert_true(json_object_is_type(v, json_type_int));
	return json_object_get_int64(v);
}

static struct json_object *arr_of(struct json_object *o, const char *key)
{
	struct json_object *v;

	assert_true(json_object_object_get_ex(o, key, &v));
	assert_true(json_object_is_type(v, json_type_array));
	return v;
}

static void assert_ok(struct json_object *reply)
{
	if (json_object_object_get_ex(reply, "error", NULL))
		fail_msg("unexpected error reply %s", json_object_to_json_string(reply));
}

/* Assert an error reply with this code (and message, unless NULL); puts the reply. */
static void expect_error(struct fixture *f, const char *req, const char *code, const char *msg)
{
	struct json_object *reply = run(f, req);

	assert_int_equal(json_object_object_length(reply), 2);
	assert_string_equal(str_of(reply, "code"), code);
	if (msg != NULL)
		assert_string_equal(str_of(reply, "error"), msg);
	json_object_put(reply);
}

static void run_ok(struct fixture *f, const char *req)
{
	struct json_object *reply = run(f, req);

	assert_ok(reply);
	json_object_put(reply);
}

/* Create an account; its first token (secret) into token. */
static void make_account(struct fixture *f, const char *name, char *token, size_t len)
{
	char req[256];
	struct json_object *reply;

	snprintf(req, sizeof(req), "{\"op\":\"account_create\",\"name\":\"%s\"}", name);
	reply = run(f, req);
	assert_ok(reply);
	if (token != NULL)
		snprintf(token, len, "%s", str_of(reply, "token"));
	json_object_put(reply);
}

static void make_source(struct fixture *f, const char *account, const char *name)
{
	char req[256];

	snprintf(req, sizeof(req), "{\"op\":\"source_create\",\"account\":\"%s\",\"name\":\"%s\"}",
	         account, name);
	run_ok(f, req);
}

static uint32_t source_id(struct fixture *f, const char *account, const char *name)
{
	struct catalog_source src;

	assert_int_equal(catalog_source_find(f->catalog, account, name, &src), CAT_OK);
	return src.id;
}

static void commit_recs(struct fixture *f, uint32_t sid, const struct rec *recs, size_t n)
{
	struct store_batch *b = store_batch_new();
	char err[ERR_MAX];

	assert_non_null(b);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(store_batch_merge(f->store, b, sid, i + 1, &recs[i]), 0);
	assert_int_equal(store_batch_commit(f->store, b, err, sizeof(err)), 0);
	store_batch_free(b);
}

static struct rec int_rec(const char *name, int64_t ts, int64_t v)
{
	return (struct rec){
	    .ts = ts, .type = REC_INT, .v.i = v, .name = name, .name_len = (uint16_t)strlen(name)};
}

static struct rec dbl_rec(const char *name, int64_t ts, double v)
{
	return (struct rec){.ts = ts,
	                    .type = REC_DOUBLE,
	                    .v.d = v,
	                    .name = name,
	                    .name_len = (uint16_t)strlen(name)};
}

static const char *plain(struct json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	                                             JSON_C_TO_STRING_NOSLASHESCAPE);
}

/* ------------------------------------------------------------------ accounts, tokens */

static void test_account_create_returns_token_once_and_rejects_duplicates(void **state)
{
	struct fixture *f = *state;
	struct json_object *reply = run(f, "{\"op\":\"account_create\",\"name\":\"acme\"}");

	assert_ok(reply);
	assert_int_equal(json_object_object_length(reply), 3);
	assert_string_equal(str_of(reply, "account"), "acme");
	assert_int_equal(strlen(str_of(reply, "token")), CATALOG_TOKEN_LEN);
	assert_memory_equal(str_of(reply, "token"), "ts_", 3);
	assert_int_equal(strlen(str_of(reply, "token_id")), CATALOG_TOKEN_ID_LEN);
	json_object_put(reply);

	expect_error(f, "{\"op\":\"account_create\",\"name\":\"acme\"}", "exists",
	             "Account already exists.");
	expect_error(f, "{\"op\":\"account_create\",\"name\":\"Acme\"}", "invalid",
	             "Invalid name: use 1-48 characters, start with a lowercase letter, then "
	             "lowercase letters, digits or underscores.");
	expect_error(f, "{\"op\":\"account_create\"}", "bad_request", "name is required.");
	expect_error(f, "{\"op\":\"account_create\",\"name\":7}", "bad_request",
	             "name must be a string.");
}

static void test_account_list_names_accounts_with_created_at(void **state)
{
	struct fixture *f = *state;
	struct json_object *reply, *accts, *a;
	int64_t now = (int64_t)time(NULL);

	make_account(f, "zeta", NULL, 0);
	make_account(f, "acme", NULL, 0);
	reply = run(f, "{\"op\":\"account_list\"}");
	assert_ok(reply);
	accts = arr_of(reply, "accounts");
	assert_int_equal(json_object_array_length(accts), 2);
	a = json_object_array_get_idx(accts, 0);
	assert_int_equal(json_object_object_length(a), 2);
	assert_string_equal(str_of(a, "name"), "acme");
	assert_true(int_of(a, "created_at") >= now - 5 && int_of(a, "created_at") <= now + 5);
	assert_string_equal(str_of(json_object_array_get_idx(accts, 1), "name"), "zeta");
	json_object_put(reply);
}

static void test_token_create_list_revoke(void **state)
{
	struct fixture *f = *state;
	struct json_object *reply, *toks, *t;
	char id[CATALOG_TOKEN_ID_LEN + 1];
	char req[256];
	char label[CATALOG_LABEL_MAX + 2];

	make_account(f, "acme", NULL, 0);
	reply = run(f, "{\"op\":\"token_create\",\"account\":\"acme\",\"label\":\"ci\"}");
	assert_ok(reply);
	assert_int_equal(json_object_object_length(reply), 2);
	assert_memory_equal(str_of(reply, "token"), "ts_", 3);
	snprintf(id, sizeof(id), "%s", str_of(reply, "token_id"));
	json_object_put(reply);

	reply = run(f, "{\"op\":\"token_list\",\"account\":\"acme\"}");
	assert_ok(reply);
	toks = arr_of(reply, "tokens");
	assert_int_equal(json_object_array_length(toks), 2);
	/* Same-second tokens may list in either order. */
	t = json_object_array_get_idx(toks, 0);
	if (strcmp(str_of(t, "id"), id) != 0)
		t = json_object_array_get_idx(toks, 1);
	assert_int_equal(json_object_object_length(t), 3);
	assert_string_equal(str_of(t, "id"), id);
	assert_string_equal(str_of(t, "label"), "ci");
	assert_true(int_of(t, "created_at") > 0);
	t = json_object_array_get_idx(toks, t == json_object_array_get_idx(toks, 0) ? 1 : 0);
	assert_string_equal(str_of(t, "label"), "default");
	json_object_put(reply);

	snprintf(req, sizeof(req),
	         "{\"op\":\"token_revoke\",\"account\":\"acme\",\"token_id\":\"%s\"}", id);
	reply = run(f, req);
	assert_ok(reply);
	assert_int_equal(json_object_object_length(reply), 3);
	assert_string_equal(str_of(reply, "account"), "acme");
	assert_string_equal(str_of(reply, "token_id"), id);
	assert_true(json_object_get_boolean(json_object_object_get(reply, "revoked")));
	json_object_put(reply);

	reply = run(f, "{\"op\":\"token_list\",\"account\":\"acme\"}");
	assert_int_equal(json_object_array_length(arr_of(reply, "tokens")), 1);
	json_object_put(reply);

	memset(label, 'x', sizeof(label) - 1);
	label[sizeof(label) - 1] = '\0';
	snprintf(req, sizeof(req),
	         "{\"op\":\"token_create\",\"account\":\"acme\",\"label\":\"%s\"}", label);
	expect_error(f, req, "invalid", "Label is too long.");
	expect_error(f, "{\"op\":\"token_create\",\"account\":\"nobody\"}", "not_found",
	             "Account not found.");
	expect_error(f, "{\"op\":\"token_list\",\"account\":\"nobody\"}", "not_found",
	             "Account not found.");
	expect_error(
	    f, "{\"op\":\"token_revoke\",\"account\":\"acme\",\"token_id\":\"0000000000000000\"}",
	    "not_found", "Token not found.");
	expect_error(f, "{\"op\":\"token_revoke\",\"account\":\"nobody\",\"token_id\":\"00\"}",
	             "not_found", "Account not found.");
	expect_error(f, "{\"op\":\"token_create\",\"account\":\"acme\",\"label\":1}", "bad_request",
	             "label must be a string.");
}

/* ------------------------------------------------------------------ sources */

static void assert_source(struct json_object *o, const char *account, const char *name,
                          bool archived)
{
	/* A listed source also says what it takes on disk; a created or archived one not. */
	bool sized = json_object_object_get_ex(o, "sst_bytes", NULL);

	assert_int_equal(json_object_object_length(o), sized ? 6 : 5);
	assert_int_equal(int_of(o, "retention_s"), 0);
	if (sized)
		assert_true(int_of(o, "sst_bytes") >= 0);
	assert_string_equal(str_of(o, "account"), account);
	assert_string_equal(str_of(o, "name"), name);
	assert_true(json_object_is_type(json_object_object_get(o, "archived"), json_type_boolean));
	assert_int_equal(json_object_get_boolean(json_object_object_get(o, "archived")), archived);
	assert_true(int_of(o, "created_at") > 0);
}

static void test_source_ops_reply_the_source_object(void **state)
{
	struct fixture *f = *state;
	struct json_object *reply;

	make_account(f, "acme", NULL, 0);
	reply = run(f, "{\"op\":\"source_create\",\"account\":\"acme\",\"name\":\"grid_load_eu\"}");
	assert_source(reply, "acme", "grid_load_eu", false);
	json_object_put(reply);
	reply =
	    run(f, "{\"op\":\"source_archive\",\"account\":\"acme\",\"name\":\"grid_load_eu\"}");
	assert_source(reply, "acme", "grid_load_eu", true);
	json_object_put(reply);
	reply =
	    run(f, "{\"op\":\"source_archive\",\"account\":\"acme\",\"name\":\"grid_load_eu\"}");
	assert_source(reply, "acme", "grid_load_eu", true);
	json_object_put(reply);
	reply = run(f, "{\"op\":\"source_get\",\"account\":\"acme\",\"name\":\"grid_load_eu\"}");
	assert_source(reply, "acme", "grid_load_eu", true);
	json_object_put(reply);
	reply =
	    run(f, "{\"op\":\"source_unarchive\",\"account\":\"acme\",\"name\":\"grid_load_eu\"}");
	assert_source(reply, "acme", "grid_load_eu", false);
	json_object_put(reply);

	expect_error(f, "{\"op\":\"source_create\",\"account\":\"acme\",\"name\":\"grid_load_eu\"}",
	             "exists", "Data source already exists.");
	expect_error(f, "{\"op\":\"source_create\",\"account\":\"acme\",\"name\":\"2024data\"}",
	             "invalid", NULL);
	expect_error(f, "{\"op\":\"source_create\",\"account\":\"nobody\",\"name\":\"x\"}",
	             "not_found", "Account not found.");
	expect_error(f, "{\"op\":\"source_archive\",\"account\":\"acme\",\"name\":\"nope\"}",
	             "not_found", "Data source not found.");
	expect_error(f, "{\"op\":\"source_get\",\"account\":\"acme\",\"name\":\"nope\"}",
	             "not_found", "Data source not found.");
	expect_error(f, "{\"op\":\"source_unarchive\",\"account\":\"nobody\",\"name\":\"x\"}",
	             "not_found", "Account not found.");
	expect_error(f, "{\"op\":\"source_create\",\"account\":\"acme\"}", "bad_request",
	             "name is required.");
}

static void test_source_list_all_or_one_account(void **state)
{
	struct fixture *f = *state;
	struct json_object *reply, *list;

	make_account(f, "acme", NULL, 0);
	make_account(f, "beta", NULL, 0);
	make_source(f, "acme", "orders");
	make_source(f, "beta", "orders");
	make_source(f, "beta", "clicks");

	/* The public API's list: no sizes. */
	reply = run(f, "{\"op\":\"source_list\"}");
	assert_ok(reply);
	assert_int_equal(json_object_object_length(reply), 1);
	list = arr_of(reply, "data_sources");
	assert_int_equal(json_object_array_length(list), 3);
	assert_false(json_object_object_get_ex(json_object_array_get_idx(list, 0), "sst_bytes", NULL));
	assert_source(json_object_array_get_idx(list, 0), "acme", "orders", false);
	json_object_put(reply);

	/* temporisctl's: with each source's size on disk. */
	reply = run(f, "{\"op\":\"source_list\",\"sizes\":true}");
	list = arr_of(reply, "data_sources");
	assert_int_equal(json_object_array_length(list), 3);
	for (size_t i = 0; i < 3; i++)
		assert_true(json_object_object_get_ex(json_object_array_get_idx(list, i), "sst_bytes",
						      NULL));
	assert_source(json_object_array_get_idx(list, 0), "acme", "orders", false);
	json_object_put(reply);

	reply = run(f, "{\"op\":\"source_list\",\"account\":\"beta\"}");
	list = arr_of(reply, "data_sources");
	assert_int_equal(json_object_array_length(list), 2);
	assert_source(json_object_array_get_idx(list, 0), "beta", "clicks", false);
	assert_source(json_object_array_get_idx(list, 1), "beta", "orders", false);
	json_object_put(reply);

	expect_error(f, "{\"op\":\"source_list\",\"account\":\"nobody\"}", "not_found",
	             "Account not found.");
}

/* ------------------------------------------------------------------ publication */

/* The snapshot workers would see now. Caller frees. */
static struct catalog_snap *fetch_snap(struct fixture *f, uint64_t *gen)
{
	uint8_t *buf = NULL;
	size_t cap = 0, len = 0;
	struct catalog_snap *snap;

	assert_int_equal(shm_catalog_fetch(&f->shm, gen, &buf, &cap, &len), 1);
	snap = catalog_snap_decode(buf, len);
	free(buf);
	assert_non_null(snap);
	return snap;
}

static void test_catalog_changes_are_published_before_the_reply(void **state)
{
	struct fixture *f = *state;
	char token[CATALOG_TOKEN_LEN + 1];
	uint8_t hash[CATALOG_HASH_LEN];
	char req[256];
	uint64_t gen = 0, before;
	const struct catalog_account *owner;
	const struct catalog_source *src;
	struct catalog_snap *snap;
	struct json_object *reply;

	make_account(f, "acme", token, sizeof(token));
	snap = fetch_snap(f, &gen);
	assert_int_equal(catalog_token_hash(token, strlen(token), hash), 0);
	owner = catalog_snap_token(snap, hash);
	assert_non_null(owner);
	assert_string_equal(owner->name, "acme");
	assert_null(catalog_snap_source(snap, owner->id, "orders", 6));
	catalog_snap_free(snap);

	before = gen;
	make_source(f, "acme", "orders");
	assert_true(atomic_load(&f->shm.hdr->catalog_gen) > before);
	snap = fetch_snap(f, &gen);
	owner = catalog_snap_token(snap, hash);
	src = catalog_snap_source(snap, owner->id, "orders", 6);
	assert_non_null(src);
	assert_false(src->archived);
	catalog_snap_free(snap);

	run_ok(f, "{\"op\":\"source_archive\",\"account\":\"acme\",\"name\":\"orders\"}");
	snap = fetch_snap(f, &gen);
	owner = catalog_snap_token(snap, hash);
	assert_true(catalog_snap_source(snap, owner->id, "orders", 6)->archived);
	catalog_snap_free(snap);

	reply = run(f, "{\"op\":\"token_list\",\"account\":\"acme\"}");
	snprintf(req, sizeof(req),
	         "{\"op\":\"token_revoke\",\"account\":\"acme\",\"token_id\":\"%s\"}",
	         str_of(json_object_array_get_idx(arr_of(reply, "tokens"), 0), "id"));
	json_object_put(reply);
	run_ok(f, req);
	snap = fetch_snap(f, &gen);
	assert_null(catalog_snap_token(snap, hash));
	catalog_snap_free(snap);
}

static void test_malformed_requests_are_bad_request(void **state)
{
	struct fixture *f = *state;

	expect_error(f, "[1,2]", "bad_request", "Request must be a JSON object.");
	expect_error(f, "{\"name\":\"x\"}", "bad_request", "op must be a string.");
	expect_error(f, "{\"op\":5}", "bad_request", "op must be a string.");
	expect_error(f, "{\"op\":\"drop_everything\"}", "bad_request", "Unknown op.");
	expect_error(f, "{\"op\":\"token_list\",\"account\":null}", "bad_request",
	             "account is required.");
}

/* ------------------------------------------------------------------ reads */

static void test_records_keep_ints_and_doubles_exact(void **state)
{
	struct fixture *f = *state;
	const double dbls[] = {0.1, 5e-324, 1e308, -0.0, 42.0, 1.0 / 3.0};
	const char *dbl_text[] = {"0.1",  "4.94065645841247e-324", "1e+308", "-0.0",
	                          "42.0", "0.3333333333333333"};
	struct rec recs[8];
	struct json_object *reply, *list, *v;
	size_t n = 0;

	make_account(f, "acme", NULL, 0);
	make_source(f, "acme", "m");
	recs[n++] = int_rec("x", -5, INT64_MIN);
	recs[n++] = int_rec("x", 0, INT64_MAX);
	for (size_t i = 0; i < 6; i++)
		recs[n++] = dbl_rec("x", (int64_t)i + 1, dbls[i]);
	commit_recs(f, source_id(f, "acme", "m"), recs, n);

	reply =
	    run(f, "{\"op\":\"records\",\"account\":\"acme\",\"source\":\"m\",\"series\":\"x\"}");
	assert_ok(reply);
	assert_int_equal(json_object_object_length(reply), 2);
	assert_true(json_object_object_get_ex(reply, "next_cursor", &v));
	assert_null(v);
	list = arr_of(reply, "records");
	assert_int_equal(json_object_array_length(list), 8);
	v = json_object_array_get_idx(list, 0);
	assert_int_equal(json_object_object_length(v), 3);
	assert_int_equal(int_of(v, "timestamp"), -5);
	assert_string_equal(str_of(v, "name"), "x");
	assert_int_equal(int_of(v, "value"), INT64_MIN);
	assert_int_equal(int_of(json_object_array_get_idx(list, 1), "value"), INT64_MAX);
	for (size_t i = 0; i < 6; i++) {
		struct json_object *val =
		    json_object_object_get(json_object_array_get_idx(list, i + 2), "value");
		struct json_object *back;
		double d;

		assert_true(json_object_is_type(val, json_type_double));
		assert_string_equal(plain(val), dbl_text[i]);
		/* What a client parses back is the same bits. */
		back = json_tokener_parse(plain(val));
		d = json_object_get_double(back);
		assert_memory_equal(&d, &dbls[i], sizeof(d));
		json_object_put(back);
	}
	json_object_put(reply);
}

static void test_records_paginate_with_cursor(void **state)
{
	struct fixture *f = *state;
	struct json_object *reply, *list, *cur;
	struct rec recs[25];
	char req[256];
	char cursor[32] = "";
	int64_t expect_ts = 100;
	int pages = 0;

	make_account(f, "acme", NULL, 0);
	make_source(f, "acme", "m");
	for (int i = 0; i < 25; i++)
		recs[i] = int_rec("s", 100 + i, i);
	commit_recs(f, source_id(f, "acme", "m"), recs, 25);

	for (;;) {
		snprintf(
		    req, sizeof(req),
		    "{\"op\":\"records\",\"account\":\"acme\",\"source\":\"m\",\"series\":\"s\","
		    "\"limit\":10,\"end\":124%s%s%s}",
		    cursor[0] ? ",\"cursor\":\"" : "", cursor, cursor[0] ? "\"" : "");
		reply = run(f, req);
		assert_ok(reply);
		list = arr_of(reply, "records");
		for (size_t i = 0; i < json_object_array_length(list); i++)
			assert_int_equal(int_of(json_object_array_get_idx(list, i), "timestamp"),
			                 expect_ts++);
		pages++;
		cur = json_object_object_get(reply, "next_cursor");
		if (cur == NULL) {
			json_object_put(reply);
			break;
		}
		assert_true(json_object_is_type(cur, json_type_string));
		snprintf(cursor, sizeof(cursor), "%s", json_object_get_string(cur));
		json_object_put(reply);
	}
	assert_int_equal(pages, 3);
	assert_int_equal(expect_ts, 124); /* end is exclusive */
}

static void test_records_argument_errors(void **state)
{
	struct fixture *f = *state;
	const char *base =
	    "{\"op\":\"records\",\"account\":\"acme\",\"source\":\"m\",\"series\":\"s\"";
	char req[256];

	make_account(f, "acme", NULL, 0);
	make_source(f, "acme", "m");
	run_ok(f, "{\"op\":\"source_archive\",\"account\":\"acme\",\"name\":\"m\"}");
	snprintf(req, sizeof(req), "%s}", base);
	run_ok(f, req); /* archived sources stay readable */
	snprintf(req, sizeof(req), "%s,\"limit\":0}", base);
	expect_error(f, req, "bad_request", "limit must be an integer between 1 and 10000.");
	snprintf(req, sizeof(req), "%s,\"limit\":10001}", base);
	expect_error(f, req, "bad_request", "limit must be an integer between 1 and 10000.");
	snprintf(req, sizeof(req), "%s,\"limit\":1.5}", base);
	expect_error(f, req, "bad_request", "limit must be an integer between 1 and 10000.");
	snprintf(req, sizeof(req), "%s,\"start\":\"1\"}", base);
	expect_error(f, req, "bad_request", "start must be an integer.");
	snprintf(req, sizeof(req), "%s,\"end\":18446744073709551615}", base);
	expect_error(f, req, "bad_request", "end must be an integer.");
	snprintf(req, sizeof(req), "%s,\"cursor\":\"12x\"}", base);
	expect_error(f, req, "bad_request", "cursor is invalid.");
	snprintf(req, sizeof(req), "%s,\"cursor\":\" 12\"}", base);
	expect_error(f, req, "bad_request", "cursor is invalid.");
	snprintf(req, sizeof(req), "%s,\"cursor\":7}", base);
	expect_error(f, req, "bad_request", NULL);
	expect_error(f, "{\"op\":\"records\",\"account\":\"acme\",\"source\":\"m\"}", "bad_request",
	             "series is required.");
	expect_error(f,
	             "{\"op\":\"records\",\"account\":\"acme\",\"source\":\"zz\",\"series\":\"s\"}",
	             "not_found", "Data source not found.");
	make_account(f, "beta", NULL, 0);
	expect_error(f,
	             "{\"op\":\"records\",\"account\":\"beta\",\"source\":\"m\",\"series\":\"s\"}",
	             "not_found", "Data source not found.");
	expect_error(f, "{\"op\":\"series\",\"account\":\"beta\",\"source\":\"m\"}", "not_found",
	             "Data source not found.");
}

static void test_series_lists_first_and_last_timestamps(void **state)
{
	struct fixture *f = *state;
	struct json_object *reply, *list, *s;
	struct rec recs[4];

	make_account(f, "acme", NULL, 0);
	make_source(f, "acme", "m");
	recs[0] = int_rec("b", 7, 1);
	recs[1] = int_rec("a", 30, 1);
	recs[2] = dbl_rec("a", -10, 0.5);
	recs[3] = int_rec("a", 5, 1);
	commit_recs(f, source_id(f, "acme", "m"), recs, 4);

	reply = run(f, "{\"op\":\"series\",\"account\":\"acme\",\"source\":\"m\"}");
	assert_ok(reply);
	list = arr_of(reply, "series");
	assert_int_equal(json_object_array_length(list), 2);
	s = json_object_array_get_idx(list, 0);
	assert_int_equal(json_object_object_length(s), 3);
	assert_string_equal(str_of(s, "name"), "a");
	assert_int_equal(int_of(s, "first_timestamp"), -10);
	assert_int_equal(int_of(s, "last_timestamp"), 30);
	s = json_object_array_get_idx(list, 1);
	assert_string_equal(str_of(s, "name"), "b");
	assert_int_equal(int_of(s, "first_timestamp"), 7);
	assert_int_equal(int_of(s, "last_timestamp"), 7);
	json_object_put(reply);
}

/* ------------------------------------------------------------------ retention */

#define RETENTION_DETAIL                                                                      \
	"retention must be a duration: an integer with a unit s, m, h, d or w (30d), a number " \
	"of seconds, or 0 or \"forever\" to keep everything; at most 1000 years."

static void test_source_set_retention_values_and_errors(void **state)
{
	struct fixture *f = *state;
	struct json_object *reply;

	make_account(f, "acme", NULL, 0);
	reply = run(f, "{\"op\":\"source_create\",\"account\":\"acme\",\"name\":\"m\","
		       "\"retention\":\"1h\"}");
	assert_int_equal(int_of(reply, "retention_s"), 3600);
	json_object_put(reply);
	reply = run(f, "{\"op\":\"source_set\",\"account\":\"acme\",\"name\":\"m\","
		       "\"retention\":\"7d\"}");
	assert_int_equal(int_of(reply, "retention_s"), 7 * 86400);
	json_object_put(reply);
	reply = run(f, "{\"op\":\"source_set\",\"account\":\"acme\",\"name\":\"m\","
		       "\"retention\":90}");
	assert_int_equal(int_of(reply, "retention_s"), 90);
	json_object_put(reply);
	reply = run(f, "{\"op\":\"source_set\",\"account\":\"acme\",\"name\":\"m\","
		       "\"retention\":\"forever\"}");
	assert_int_equal(int_of(reply, "retention_s"), 0);
	json_object_put(reply);
	static const char *const bad[] = { "\"7x\"", "\"\"", "-1", "\"d\"", "1.5", "true",
					   "\"99999999999d\"", "\" 7d\"" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char req[256];

		snprintf(req, sizeof(req), "{\"op\":\"source_set\",\"account\":\"acme\","
			 "\"name\":\"m\",\"retention\":%s}", bad[i]);
		expect_error(f, req, "invalid", RETENTION_DETAIL);
	}
	expect_error(f, "{\"op\":\"source_set\",\"account\":\"acme\",\"name\":\"m\"}",
		     "invalid", "retention is required: " RETENTION_DETAIL);
	expect_error(f, "{\"op\":\"source_set\",\"account\":\"acme\",\"name\":\"x\","
		     "\"retention\":\"1d\"}", "not_found", "Data source not found.");
}

/* Set on a source, a retention hides its old records from the next read. */
static void test_retention_hides_old_records_at_once(void **state)
{
	struct fixture *f = *state;
	struct json_object *reply, *list;
	int64_t now;
	struct rec recs[3];

	assert_int_equal(wall_time_s(&now), 0);
	make_account(f, "acme", NULL, 0);
	make_source(f, "acme", "m");
	recs[0] = int_rec("old", now - 10 * 86400, 1);
	recs[1] = int_rec("a", now - 9 * 86400, 2);
	recs[2] = int_rec("a", now - 3600, 3);
	commit_recs(f, source_id(f, "acme", "m"), recs, 3);
	assert_int_equal(retention_start(f->store, f->catalog), 0);
	run_ok(f, "{\"op\":\"source_set\",\"account\":\"acme\",\"name\":\"m\","
		  "\"retention\":\"7d\"}");
	reply = run(f, "{\"op\":\"series\",\"account\":\"acme\",\"source\":\"m\"}");
	assert_int_equal(int_of(reply, "retention_s"), 7 * 86400);
	list = arr_of(reply, "series");
	assert_int_equal(json_object_array_length(list), 1);
	assert_int_equal(int_of(json_object_array_get_idx(list, 0), "first_timestamp"), now - 3600);
	json_object_put(reply);
	reply = run(f, "{\"op\":\"records\",\"account\":\"acme\",\"source\":\"m\","
		       "\"series\":\"a\"}");
	list = arr_of(reply, "records");
	assert_int_equal(json_object_array_length(list), 1);
	json_object_put(reply);
	retention_stop();
}

/* ------------------------------------------------------------------ downsampled reads */

#define STEP_DETAIL "step must be an integer number of seconds between 1 and 31557600000 (1000 years)."
#define AGG_DETAIL "agg must be one of avg, min, max, last, count."

static void test_records_query_step_and_agg_by_the_same_rules(void **state)
{
	struct records_query q, back;
	struct json_object *op;
	const char *account, *source;

	records_query_init(&q);
	assert_int_equal(q.step, 0);
	assert_int_equal(q.agg, DS_NONE);
	assert_null(records_query_check(&q));
	assert_null(records_query_set(&q, RQ_SERIES, "s", 1));
	assert_string_equal(records_query_set(&q, RQ_STEP, "0", 1), STEP_DETAIL);
	assert_string_equal(records_query_set(&q, RQ_STEP, "-1", 2), STEP_DETAIL);
	assert_string_equal(records_query_set(&q, RQ_STEP, "+5", 2), STEP_DETAIL);
	assert_string_equal(records_query_set(&q, RQ_STEP, "1e3", 3), STEP_DETAIL);
	assert_string_equal(records_query_set(&q, RQ_STEP, "", 0), STEP_DETAIL);
	assert_string_equal(records_query_set(&q, RQ_STEP, "31557600001", 11), STEP_DETAIL);
	assert_int_equal(q.step, 0);
	assert_null(records_query_set(&q, RQ_STEP, "31557600000", 11));
	assert_int_equal(q.step, RECORDS_STEP_MAX);
	assert_string_equal(records_query_check(&q), "step needs agg, one of avg, min, max, last, count.");
	assert_string_equal(records_query_set(&q, RQ_AGG, "AVG", 3), AGG_DETAIL);
	assert_string_equal(records_query_set(&q, RQ_AGG, "av", 2), AGG_DETAIL);
	assert_string_equal(records_query_set(&q, RQ_AGG, "avgx", 4), AGG_DETAIL);
	assert_string_equal(records_query_set(&q, RQ_AGG, "", 0), AGG_DETAIL);
	assert_null(records_query_set(&q, RQ_STEP, "60", 2));
	assert_null(records_query_set(&q, RQ_AGG, "last", 4));
	assert_int_equal(q.agg, DS_LAST);
	assert_null(records_query_check(&q));

	/* what the worker sends, the writer reads back the same */
	op = records_query_to_op(&q, "acme", "m", 1);
	assert_non_null(op);
	assert_null(records_query_from_op(op, &back, &account, &source));
	assert_int_equal(back.step, 60);
	assert_int_equal(back.agg, DS_LAST);
	json_object_put(op);

	records_query_init(&q);
	assert_null(records_query_set(&q, RQ_AGG, "count", 5));
	assert_string_equal(records_query_check(&q), "agg needs step, the seconds per bucket.");
}

static void test_records_op_refuses_bad_step_and_agg(void **state)
{
	struct fixture *f = *state;
	const char *base =
	    "{\"op\":\"records\",\"account\":\"acme\",\"source\":\"m\",\"series\":\"s\"";
	char req[256];

	make_account(f, "acme", NULL, 0);
	make_source(f, "acme", "m");
	snprintf(req, sizeof(req), "%s,\"step\":10,\"agg\":\"max\"}", base);
	run_ok(f, req);
	snprintf(req, sizeof(req), "%s,\"step\":10}", base);
	expect_error(f, req, "bad_request", "step needs agg, one of avg, min, max, last, count.");
	snprintf(req, sizeof(req), "%s,\"agg\":\"min\"}", base);
	expect_error(f, req, "bad_request", "agg needs step, the seconds per bucket.");
	snprintf(req, sizeof(req), "%s,\"step\":0,\"agg\":\"min\"}", base);
	expect_error(f, req, "bad_request", STEP_DETAIL);
	snprintf(req, sizeof(req), "%s,\"step\":\"10\",\"agg\":\"min\"}", base);
	expect_error(f, req, "bad_request", STEP_DETAIL);
	snprintf(req, sizeof(req), "%s,\"step\":1.5,\"agg\":\"min\"}", base);
	expect_error(f, req, "bad_request", STEP_DETAIL);
	snprintf(req, sizeof(req), "%s,\"step\":18446744073709551615,\"agg\":\"min\"}", base);
	expect_error(f, req, "bad_request", STEP_DETAIL);
	snprintf(req, sizeof(req), "%s,\"step\":10,\"agg\":\"median\"}", base);
	expect_error(f, req, "bad_request", AGG_DETAIL);
	snprintf(req, sizeof(req), "%s,\"step\":10,\"agg\":3}", base);
	expect_error(f, req, "bad_request", AGG_DETAIL);
}

/* Buckets of 10 s over -25..35: [-30) 2, [-20) 2, [-10) 2, [0) 3, [30) 1; 20 is empty. */
static void commit_bucket_series(struct fixture *f)
{
	const int64_t ts[] = {-25, -21, -20, -11, -10, -1, 0, 5, 9, 35};
	struct rec recs[10];

	make_account(f, "acme", NULL, 0);
	make_source(f, "acme", "m");
	for (size_t i = 0; i < 10; i++)
		recs[i] = i == 7 ? dbl_rec("s", ts[i], 2.5) : int_rec("s", ts[i], (int64_t)i);
	commit_recs(f, source_id(f, "acme", "m"), recs, 10);
}

static void test_records_downsampled_buckets_keep_types(void **state)
{
	struct fixture *f = *state;
	const int64_t starts[] = {-30, -20, -10, 0, 30};
	struct json_object *reply, *list, *v;
	const char *req = "{\"op\":\"records\",\"account\":\"acme\",\"source\":\"m\",\"series\":\"s\","
	                  "\"step\":10,\"agg\":\"%s\"}";
	char text[256];

	commit_bucket_series(f);
	snprintf(text, sizeof(text), req, "max");
	reply = run(f, text);
	assert_ok(reply);
	list = arr_of(reply, "records");
	assert_int_equal(json_object_array_length(list), 5);
	for (size_t i = 0; i < 5; i++) {
		v = json_object_array_get_idx(list, i);
		assert_int_equal(json_object_object_length(v), 3);
		assert_int_equal(int_of(v, "timestamp"), starts[i]);
		assert_string_equal(str_of(v, "name"), "s");
	}
	/* bucket 0 holds 6, 2.5, 8: max is the int 8 */
	v = json_object_object_get(json_object_array_get_idx(list, 3), "value");
	assert_true(json_object_is_type(v, json_type_int));
	assert_int_equal(json_object_get_int64(v), 8);
	json_object_put(reply);

	snprintf(text, sizeof(text), req, "min");
	reply = run(f, text);
	v = json_object_object_get(json_object_array_get_idx(arr_of(reply, "records"), 3), "value");
	assert_true(json_object_is_type(v, json_type_double));
	assert_string_equal(plain(v), "2.5");
	json_object_put(reply);

	snprintf(text, sizeof(text), req, "avg");
	reply = run(f, text);
	v = json_object_object_get(json_object_array_get_idx(arr_of(reply, "records"), 0), "value");
	assert_true(json_object_is_type(v, json_type_double));
	assert_string_equal(plain(v), "0.5");
	json_object_put(reply);

	snprintf(text, sizeof(text), req, "count");
	reply = run(f, text);
	v = json_object_object_get(json_object_array_get_idx(arr_of(reply, "records"), 3), "value");
	assert_true(json_object_is_type(v, json_type_int));
	assert_int_equal(json_object_get_int64(v), 3);
	json_object_put(reply);
}

static void test_records_downsampled_limit_counts_buckets(void **state)
{
	struct fixture *f = *state;
	const char *req = "{\"op\":\"records\",\"account\":\"acme\",\"source\":\"m\",\"series\":\"s\","
	                  "\"step\":10,\"agg\":\"count\",\"limit\":2%s%s%s}";
	const int64_t starts[] = {-30, -20, -10, 0, 30}, counts[] = {2, 2, 2, 3, 1};
	struct json_object *reply, *list, *cur;
	char text[256], cursor[32] = "";
	size_t seen = 0;

	commit_bucket_series(f);
	for (int pages = 0; pages < 3; pages++) {
		snprintf(text, sizeof(text), req, cursor[0] ? ",\"cursor\":\"" : "", cursor,
		         cursor[0] ? "\"" : "");
		reply = run(f, text);
		assert_ok(reply);
		list = arr_of(reply, "records");
		assert_int_equal(json_object_array_length(list), pages < 2 ? 2 : 1);
		for (size_t i = 0; i < json_object_array_length(list); i++, seen++) {
			assert_int_equal(int_of(json_object_array_get_idx(list, i), "timestamp"),
			                 starts[seen]);
			assert_int_equal(int_of(json_object_array_get_idx(list, i), "value"), counts[seen]);
		}
		cur = json_object_object_get(reply, "next_cursor");
		if (pages < 2) {
			/* the next bucket's start, however far into it its first record is */
			assert_string_equal(json_object_get_string(cur), pages == 0 ? "-10" : "30");
			snprintf(cursor, sizeof(cursor), "%s", json_object_get_string(cur));
		} else {
			assert_null(cur);
		}
		json_object_put(reply);
	}
	assert_int_equal(seen, 5);
}

static void test_bucket_start_floors_and_value_cmp_is_exact(void **state)
{
	struct rec a = {.type = REC_INT}, b = {.type = REC_DOUBLE};

	assert_int_equal(ds_bucket_start(0, 10), 0);
	assert_int_equal(ds_bucket_start(9, 10), 0);
	assert_int_equal(ds_bucket_start(10, 10), 10);
	assert_int_equal(ds_bucket_start(-1, 10), -10);
	assert_int_equal(ds_bucket_start(-10, 10), -10);
	assert_int_equal(ds_bucket_start(-11, 10), -20);
	assert_int_equal(ds_bucket_start(INT64_MAX, 10), INT64_MAX / 10 * 10);
	assert_int_equal(ds_bucket_start(INT64_MIN, 10), INT64_MIN); /* -...810 is below it */
	assert_int_equal(ds_bucket_start(INT64_MIN, 1), INT64_MIN);
	assert_int_equal(ds_bucket_start(INT64_MIN, 2), INT64_MIN);  /* a multiple itself */
	assert_int_equal(ds_bucket_start(INT64_MIN + 7, 10), INT64_MIN);
	assert_int_equal(ds_bucket_start(INT64_MIN + 9, 10), INT64_MIN + 8); /* -...800 */
	a.v.i = (INT64_C(1) << 53) + 1;
	b.v.d = 9007199254740992.0;   /* 2^53: (double)a rounds to it */
	assert_int_equal(ds_value_cmp(&a, &b), 1);
	assert_int_equal(ds_value_cmp(&b, &a), -1);
	a.v.i = INT64_MAX;
	b.v.d = 9223372036854775808.0;
	assert_int_equal(ds_value_cmp(&a, &b), -1);
	a.v.i = INT64_MIN;
	b.v.d = -9223372036854775808.0;
	assert_int_equal(ds_value_cmp(&a, &b), 0);
	a.v.i = 7;
	b.v.d = 7.0;
	assert_int_equal(ds_value_cmp(&a, &b), 0);
	b.v.d = 7.5;
	assert_int_equal(ds_value_cmp(&a, &b), -1);
}

/* ------------------------------------------------------------------ status, backup */

static void test_status_reports_shared_counters(void **state)
{
	struct fixture *f = *state;
	struct shm_header *hdr = f->shm.hdr;
	struct lane *lane = shm_lane(&f->shm, 0);
	struct json_object *reply, *fill;

	atomic_store(&hdr->workers_running, 1);
	atomic_store(&hdr->writer_pid, 4242);
	atomic_store(&hdr->stats.records_committed, 12345);
	atomic_store(&hdr->stats.disk_free_bytes, 777);
	hdr->started_at -= 100;
	atomic_store(&lane->committed, hdr->lane_capacity);
	atomic_store(&lane->tail, hdr->lane_capacity + hdr->lane_capacity / 4);

	reply = run(f, "{\"op\":\"status\"}");
	assert_ok(reply);
	assert_int_equal(json_object_object_length(reply), 10);
	assert_int_equal(int_of(reply, "disk_free_bytes"), 777);
	assert_string_equal(str_of(reply, "disk_state"), "ok");
	assert_true(int_of(reply, "store_sst_bytes") >= 0 && int_of(reply, "head_records") >= 0);
	assert_true(int_of(reply, "store_memtable_bytes") >= 0);
	assert_int_equal(int_of(reply, "workers"), 1);
	assert_int_equal(int_of(reply, "writer_pid"), 4242);
	assert_int_equal(int_of(reply, "records_committed"), 12345);
	assert_true(int_of(reply, "uptime_s") >= 100 && int_of(reply, "uptime_s") < 110);
	fill = json_object_object_get(reply, "ring_fill");
	assert_true(json_object_is_type(fill, json_type_double));
	assert_true(json_object_get_double(fill) == 0.25);
	json_object_put(reply);

	atomic_store(&lane->tail, hdr->lane_capacity);
	reply = run(f, "{\"op\":\"status\"}");
	assert_string_equal(plain(json_object_object_get(reply, "ring_fill")), "0.0");
	json_object_put(reply);
}

static void test_backup_writes_a_checkpoint(void **state)
{
	struct fixture *f = *state;
	struct json_object *reply;
	char req[512], dir[256];
	struct stat st;

	make_account(f, "acme", NULL, 0);
	snprintf(dir, sizeof(dir), "%s/backup1", f->dir);
	snprintf(req, sizeof(req), "{\"op\":\"backup\",\"dir\":\"%s\"}", dir);
	reply = run(f, req);
	assert_ok(reply);
	assert_int_equal(json_object_object_length(reply), 1);
	assert_string_equal(str_of(reply, "backup"), dir);
	json_object_put(reply);
	assert_int_equal(stat(dir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	snprintf(req, sizeof(req), "%s/CURRENT", dir);
	assert_int_equal(access(req, F_OK), 0);

	/* An existing directory is refused with RocksDB's message. */
	snprintf(req, sizeof(req), "{\"op\":\"backup\",\"dir\":\"%s\"}", dir);
	reply = run(f, req);
	assert_string_equal(str_of(reply, "code"), "failed");
	assert_true(strlen(str_of(reply, "error")) > 0);
	json_object_put(reply);
	expect_error(f, "{\"op\":\"backup\",\"dir\":\"rel/dir\"}", "bad_request",
	             "dir must be an absolute path.");
	expect_error(f, "{\"op\":\"backup\"}", "bad_request", "dir is required.");
}

/* ------------------------------------------------------------------ listening socket */

static void test_listen_creates_private_socket_and_parent(void **state)
{
	struct fixture *f = *state;
	char path[256], parent[128], err[ERR_MAX];
	struct stat st;
	int fd;

	snprintf(parent, sizeof(parent), "%s/run/temporis", f->dir);
	snprintf(path, sizeof(path), "%s/admin.sock", parent);
	fd = admin_listen(path, err, sizeof(err));
	assert_true(fd >= 0);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(parent, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	/* Plain socket: inherited by the writer across fork. */
	assert_int_equal(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);

	/* A live server at the path is not taken over. */
	assert_int_equal(admin_listen(path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "is in use"));
	close(fd);

	/* Once its server is gone the stale socket is replaced. */
	fd = admin_listen(path, err, sizeof(err));
	assert_true(fd >= 0);
	close(fd);
}

static void test_listen_refuses_foreign_or_non_socket_paths(void **state)
{
	struct fixture *f = *state;
	char path[256], err[ERR_MAX];
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "%s/foreign.sock", f->dir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(admin_listen(path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a socket"));

	if (geteuid() == 0) {
		/* A socket owned by someone else: theirs, never unlinked. */
		int s = socket(AF_UNIX, SOCK_STREAM, 0);
		struct sockaddr_un addr = {.sun_family = AF_UNIX};

		unlink(path);
		assert_true(strlen(path) < sizeof(addr.sun_path));
		memcpy(addr.sun_path, path, strlen(path) + 1);
		assert_int_equal(bind(s, (struct sockaddr *)&addr, sizeof(addr)), 0);
		close(s);
		assert_int_equal(chown(path, OTHER_UID, OTHER_UID), 0);
		assert_int_equal(admin_listen(path, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "owned by another user"));
		assert_int_equal(lstat(path, &st), 0);
	}
}

/* ------------------------------------------------------------------ frames */

static void test_frames_round_trip_including_empty(void **state)
{
	int sv[2];
	char *buf;
	size_t len;
	const char *msg = "{\"op\":\"status\"}";

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(proto_write_frame(sv[0], msg, strlen(msg)), 0);
	assert_int_equal(proto_write_frame(sv[0], "", 0), 0);
	assert_int_equal(proto_read_frame(sv[1], &buf, &len, 1000), 0);
	assert_int_equal(len, strlen(msg));
	assert_string_equal(buf, msg);
	free(buf);
	assert_int_equal(proto_read_frame(sv[1], &buf, &len, 1000), 0);
	assert_int_equal(len, 0);
	assert_string_equal(buf, "");
	free(buf);

	/* Nothing sent: a timeout, not a hang. */
	assert_int_equal(proto_read_frame(sv[1], &buf, &len, 50), -1);
	assert_int_equal(errno, ETIMEDOUT);
	close(sv[0]);
	assert_int_equal(proto_read_frame(sv[1], &buf, &len, 1000), 1);
	close(sv[1]);
}

static void test_oversized_frames_are_emsgsize(void **state)
{
	const uint8_t hdr[PROTO_HDR_LEN] = {0x01, 0x00, 0x00, 0x04}; /* 64 MiB + 1 */
	const uint8_t partial[] = {0x05, 0x00, 0x00, 0x00, 'a', 'b'};
	int sv[2];
	char *buf;
	size_t len;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(proto_write_frame(sv[0], "x", (size_t)PROTO_MAX_FRAME + 1), -1);
	assert_int_equal(errno, EMSGSIZE);
	assert_int_equal(write(sv[0], hdr, sizeof(hdr)), (ssize_t)sizeof(hdr));
	assert_int_equal(proto_read_frame(sv[1], &buf, &len, 1000), -1);
	assert_int_equal(errno, EMSGSIZE);
	assert_null(buf);
	close(sv[0]);
	close(sv[1]);

	/* A frame cut short by the peer is an error, not a message. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[0], partial, sizeof(partial)), (ssize_t)sizeof(partial));
	close(sv[0]);
	assert_int_equal(proto_read_frame(sv[1], &buf, &len, 1000), -1);
	assert_int_equal(errno, ECONNRESET);
	close(sv[1]);
}

/* ------------------------------------------------------------------ server */

static struct json_object *call(int fd, const char *text)
{
	char *buf;
	size_t len;
	struct json_object *reply;

	assert_int_equal(proto_write_frame(fd, text, strlen(text)), 0);
	assert_int_equal(proto_read_frame(fd, &buf, &len, 5000), 0);
	reply = json_tokener_parse(buf);
	free(buf);
	assert_non_null(reply);
	return reply;
}

static void test_server_serves_many_frames_per_connection(void **state)
{
	struct fixture *f = *state;
	char path[256], err[ERR_MAX];
	struct json_object *reply;
	int lfd, c1, c2;
	uint64_t t0;
	char *buf;
	size_t len;

	snprintf(path, sizeof(path), "%s/admin.sock", f->dir);
	lfd = admin_listen(path, err, sizeof(err));
	assert_true(lfd >= 0);
	assert_int_equal(admin_start(&f->ctx, lfd), 0);

	c1 = proto_connect(path);
	assert_true(c1 >= 0);
	reply = call(c1, "{\"op\":\"account_create\",\"name\":\"acme\"}");
	assert_string_equal(str_of(reply, "account"), "acme");
	json_object_put(reply);
	reply = call(c1, "{\"op\":\"status\"} trailing");
	assert_string_equal(str_of(reply, "code"), "bad_request");
	assert_string_equal(str_of(reply, "error"), "Request is not valid JSON.");
	json_object_put(reply);
	reply = call(c1, "");
	assert_string_equal(str_of(reply, "code"), "bad_request");
	json_object_put(reply);
	reply = call(c1, "{\"op\":\"account_list\"}");
	assert_int_equal(json_object_array_length(arr_of(reply, "accounts")), 1);
	json_object_put(reply);

	/* A second client at the same time; the first stays open and idle. */
	c2 = proto_connect(path);
	assert_true(c2 >= 0);
	reply = call(c2, "{\"op\":\"source_create\",\"account\":\"acme\",\"name\":\"a\"}");
	assert_ok(reply);
	json_object_put(reply);
	close(c2);

	/* Stopping does not wait out the idle timeout of an open connection. */
	t0 = mono_ms();
	admin_stop();
	assert_true(mono_ms() - t0 < STOP_MAX_MS);
	assert_int_equal(proto_read_frame(c1, &buf, &len, 1000), 1);
	close(c1);

	/* The listening socket is the master's: still open after the stop. */
	assert_true(fcntl(lfd, F_GETFD) >= 0);
	close(lfd);
	assert_int_equal(proto_connect("/nonexistent/admin.sock"), -1);
}

static void test_server_refuses_connections_beyond_its_cap(void **state)
{
	struct fixture *f = *state;
	const char *status = "{\"op\":\"status\"}";
	char path[256], err[ERR_MAX];
	int fds[CONN_TRY_MAX];
	int lfd, n, refused = -1;
	char *buf;
	size_t len;

	snprintf(path, sizeof(path), "%s/admin.sock", f->dir);
	lfd = admin_listen(path, err, sizeof(err));
	assert_true(lfd >= 0);
	assert_int_equal(admin_start(&f->ctx, lfd), 0);
	for (n = 0; n < CONN_TRY_MAX && refused < 0; n++) {
		struct json_object *reply;

		fds[n] = proto_connect(path);
		assert_true(fds[n] >= 0);
		/* A refused connection may be closed before this write lands. */
		if (proto_write_frame(fds[n], status, strlen(status)) < 0)
			assert_int_equal(errno, EPIPE);
		assert_int_equal(proto_read_frame(fds[n], &buf, &len, 5000), 0);
		reply = json_tokener_parse(buf);
		free(buf);
		if (json_object_object_get_ex(reply, "error", NULL)) {
			assert_string_equal(str_of(reply, "error"),
					    "too many admin connections; retry later");
			assert_string_equal(str_of(reply, "code"), "busy");  /* a worker answers 503 */
			refused = n;
		}
		json_object_put(reply);
	}
	assert_true(refused > 0);
	/* Every connection up to the cap stays served. */
	assert_int_equal(proto_write_frame(fds[0], status, strlen(status)), 0);
	assert_int_equal(proto_read_frame(fds[0], &buf, &len, 5000), 0);
	assert_null(strstr(buf, "error"));
	free(buf);
	admin_stop();
	for (int i = 0; i < n; i++)
		close(fds[i]);
	close(lfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	    T(test_account_create_returns_token_once_and_rejects_duplicates),
	    T(test_account_list_names_accounts_with_created_at),
	    T(test_token_create_list_revoke),
	    T(test_source_ops_reply_the_source_object),
	    T(test_source_list_all_or_one_account),
	    T(test_source_set_retention_values_and_errors),
	    T(test_retention_hides_old_records_at_once),
	    T(test_catalog_changes_are_published_before_the_reply),
	    T(test_malformed_requests_are_bad_request),
	    T(test_records_keep_ints_and_doubles_exact),
	    T(test_records_paginate_with_cursor),
	    T(test_records_argument_errors),
	    T(test_records_query_step_and_agg_by_the_same_rules),
	    T(test_records_op_refuses_bad_step_and_agg),
	    T(test_records_downsampled_buckets_keep_types),
	    T(test_records_downsampled_limit_counts_buckets),
	    T(test_bucket_start_floors_and_value_cmp_is_exact),
	    T(test_series_lists_first_and_last_timestamps),
	    T(test_status_reports_shared_counters),
	    T(test_backup_writes_a_checkpoint),
	    T(test_listen_creates_private_socket_and_parent),
	    T(test_listen_refuses_foreign_or_non_socket_paths),
	    T(test_frames_round_trip_including_empty),
	    T(test_oversized_frames_are_emsgsize),
	    T(test_server_serves_many_frames_per_connection),
	    T(test_server_refuses_connections_beyond_its_cap),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
