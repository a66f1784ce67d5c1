/*
 * admin.c - the writer's admin Unix socket: listening socket set-up, the accept and
 * connection threads, and every admin op (catalog changes, reads, status, backup).
 *
 * Owns the server threads' state (one server per process) and the buffer the catalog
 * is encoded into before it is published to shared memory. Ops reply with the shapes
 * of api.md; an error is {"error": message, "code": code}.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4, pipe2 */
#endif
#include "temporis/daemon/admin.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "temporis/base/log.h"
#include "temporis/ipc/admin_msg.h"
#include "temporis/ipc/proto.h"
#include "temporis/data/record.h"

#define ADMIN_MAX_CONNS 64                /* concurrent connection threads */
#define ADMIN_IDLE_TIMEOUT_MS (30 * 1000) /* a connection may sit idle this long */
#define ADMIN_STOP_WAIT_S 5               /* admin_stop waits this long for connections */
#define ADMIN_ACCEPT_BACKOFF_US 100000    /* out of fds: pause before accepting again */
#define ADMIN_DIR_MODE 0700
#define ADMIN_SOCKET_MODE 0600
#define ADMIN_BIND_UMASK 0177
#define ADMIN_ERR_MAX 512
#define ENCODE_INITIAL_CAP (64u << 10)
#define DOUBLE_DIGITS_MIN 15 /* %.15g is exact for most decimal input */
#define DOUBLE_DIGITS_MAX 17 /* %.17g always round-trips */
#define DOUBLE_TEXT_MAX 40
#define JSON_OUT_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

#define CODE_NOT_FOUND "not_found"
#define CODE_EXISTS "exists"
#define CODE_INVALID "invalid"
#define CODE_FAILED "failed"
#define CODE_BAD_REQUEST "bad_request"

#define MSG_INTERNAL "Internal error."
#define MSG_NAME_RULE                                                                              \
	"Invalid name: use 1-48 characters, start with a lowercase letter, then lowercase "        \
	"letters, digits or underscores."
#define MSG_ACCOUNT_NOT_FOUND "Account not found."
#define MSG_SOURCE_NOT_FOUND "Data source not found."

typedef struct json_object json;

/* ------------------------------------------------------------------ replies */

/* Add val under key, taking ownership of val even on failure. 0 or -1. */
static int add_val(json *o, const char *key, json *val)
{
	if (val == NULL)
		return -1;
	if (json_object_object_add(o, key, val) != 0) {
		json_object_put(val);
		return -1;
	}
	return 0;
}

static int add_str(json *o, const char *key, const char *s)
{
	return add_val(o, key, json_object_new_string(s));
}

static int add_int(json *o, const char *key, int64_t v)
{
	return add_val(o, key, json_object_new_int64(v));
}

static int add_bool(json *o, const char *key, bool v)
{
	return add_val(o, key, json_object_new_boolean(v));
}

static json *error_reply(const char *code, const char *msg)
{
	json *o = json_object_new_object();

	if (o == NULL)
		return NULL;
	if (add_str(o, "error", msg) < 0 || add_str(o, "code", code) < 0) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static json *internal_error(void)
{
	return error_reply(CODE_FAILED, MSG_INTERNAL);
}

/* A reply object under construction that failed part-way is an internal error. */
static json *finish(json *o, int rc)
{
	if (rc == 0 && o != NULL)
		return o;
	json_object_put(o);
	return internal_error();
}

static json *catalog_error(enum catalog_rc rc, const char *exists_msg, const char *missing_msg)
{
	switch (rc) {
	case CAT_EXISTS:
		return error_reply(CODE_EXISTS, exists_msg);
	case CAT_NOT_FOUND:
		return error_reply(CODE_NOT_FOUND, missing_msg);
	case CAT_INVALID:
		return error_reply(CODE_INVALID, MSG_NAME_RULE);
	default:
		return internal_error();
	}
}

/* For lookups of (account, thing): say which of the two is missing. */
static json *missing_reply(struct admin_ctx *ctx, const char *account, const char *thing_msg)
{
	struct catalog_account a;

	if (catalog_account_find(ctx->catalog, account, &a) == CAT_NOT_FOUND)
		return error_reply(CODE_NOT_FOUND, MSG_ACCOUNT_NOT_FOUND);
	return error_reply(CODE_NOT_FOUND, thing_msg);
}

/*
 * A double as the shortest decimal text that reads back to the same bits, kept
 * recognisably a double ("42.0", "-0.0") so a reader never mistakes it for an int.
 */
static json *double_json(double d)
{
	char text[DOUBLE_TEXT_MAX];

	if (!isfinite(d))
		return json_object_new_double(d);
	for (int prec = DOUBLE_DIGITS_MIN; prec <= DOUBLE_DIGITS_MAX; prec++) {
		snprintf(text, sizeof(text), "%.*g", prec, d);
		if (strtod(text, NULL) == d)
			break;
	}
	if (strpbrk(text, ".e") == NULL)
		strcat(text, ".0");
	return json_object_new_double_s(d, text);
}

/* ------------------------------------------------------------------ arguments */

/*
 * A string argument. Absent (or null) is fine when optional (*out = NULL);
 * otherwise *reply gets a bad_request and -1 is returned.
 */
static int arg_str(json *req, const char *key, bool required, const char **out, json **reply)
{
	char msg[ADMIN_ERR_MAX];
	json *v = NULL;

	*out = NULL;
	if (!json_object_object_get_ex(req, key, &v) || v == NULL) {
		if (!required)
			return 0;
		snprintf(msg, sizeof(msg), "%s is required.", key);
		*reply = error_reply(CODE_BAD_REQUEST, msg);
		return -1;
	}
	if (!json_object_is_type(v, json_type_string)) {
		snprintf(msg, sizeof(msg), "%s must be a string.", key);
		*reply = error_reply(CODE_BAD_REQUEST, msg);
		return -1;
	}
	*out = json_object_get_string(v);
	return 0;
}

/* ------------------------------------------------------------------ catalog ops */

static pthread_mutex_t publish_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *publish_buf; /* guarded by publish_lock; lives for the process */
static size_t publish_cap;

/*
 * Encode and publish under one lock: concurrent mutations may each publish, but
 * every encode sees the catalog as it is now, so the last snapshot out is current,
 * and shm_catalog_publish only ever has one caller at a time.
 */
int admin_publish_catalog(struct admin_ctx *ctx)
{
	size_t need;
	int rc = -1;

	pthread_mutex_lock(&publish_lock);
	for (;;) {
		need = catalog_encode(ctx->catalog, publish_buf, publish_cap);
		if (need > 0 && need <= publish_cap)
			break;
		if (need == 0) {
			log_error("admin: catalog encoding failed");
			goto out;
		}
		size_t cap = need > ENCODE_INITIAL_CAP ? need * 2 : ENCODE_INITIAL_CAP;
		uint8_t *grown = realloc(publish_buf, cap);

		if (grown == NULL) {
			log_error("admin: out of memory encoding the catalog");
			goto out;
		}
		publish_buf = grown;
		publish_cap = cap;
	}
	if (shm_catalog_publish(ctx->shm, publish_buf, need) < 0) {
		log_error("admin: cannot publish the catalog (%zu bytes): %s", need,
		          strerror(errno));
		goto out;
	}
	rc = 0;
out:
	pthread_mutex_unlock(&publish_lock);
	return rc;
}

static json *source_json(const char *account, const struct catalog_source *s)
{
	json *o = json_object_new_object();
	int rc;

	if (o == NULL)
		return internal_error();
	rc = add_str(o, "account", account);
	rc = rc ? rc : add_str(o, "name", s->name);
	rc = rc ? rc : add_bool(o, "archived", s->archived);
	rc = rc ? rc : add_int(o, "created_at", s->created_at);
	return finish(o, rc);
}

static json *op_account_create(struct admin_ctx *ctx, json *req)
{
	char token[CATALOG_TOKEN_LEN + 1];
	struct catalog_account acct;
	struct catalog_token tok;
	enum catalog_rc crc;
	const char *name;
	json *reply = NULL;
	int rc;

	if (arg_str(req, "name", true, &name, &reply) < 0)
		return reply;
	crc = catalog_account_create(ctx->catalog, name, &acct, token, &tok);
	if (crc != CAT_OK)
		return catalog_error(crc, "Account already exists.", MSG_ACCOUNT_NOT_FOUND);
	if (admin_publish_catalog(ctx) < 0)
		rc = -1;
	else if ((reply = json_object_new_object()) == NULL)
		rc = -1;
	else {
		rc = add_str(reply, "account", acct.name);
		rc = rc ? rc : add_str(reply, "token", token);
		rc = rc ? rc : add_str(reply, "token_id", tok.id);
	}
	explicit_bzero(token, sizeof(token));
	return finish(reply, rc);
}

/* Collects catalog listing callbacks into a JSON array. */
struct list_acc {
	json *arr;
	bool failed;
};

static void list_push(struct list_acc *acc, json *o, int rc)
{
	if (rc != 0 || o == NULL || json_object_array_add(acc->arr, o) != 0) {
		json_object_put(o);
		acc->failed = true;
	}
}

static void account_item(const struct catalog_account *a, void *arg)
{
	json *o = json_object_new_object();
	int rc = -1;

	if (o != NULL) {
		rc = add_str(o, "name", a->name);
		rc = rc ? rc : add_int(o, "created_at", a->created_at);
	}
	list_push(arg, o, rc);
}

/* Wrap a filled list as {key: [...]}; consumes acc->arr. */
static json *list_reply(const char *key, struct list_acc *acc)
{
	json *o;

	if (acc->failed) {
		json_object_put(acc->arr);
		return internal_error();
	}
	o = json_object_new_object();
	if (o == NULL) {
		json_object_put(acc->arr);
		return internal_error();
	}
	return finish(o, add_val(o, key, acc->arr));
}

static json *op_account_list(struct admin_ctx *ctx, json *req)
{
	struct list_acc acc = {.arr = json_object_new_array()};

	if (acc.arr == NULL)
		return internal_error();
	catalog_each_account(ctx->catalog, account_item, &acc);
	return list_reply("accounts", &acc);
}

static json *op_token_create(struct admin_ctx *ctx, json *req)
{
	char token[CATALOG_TOKEN_LEN + 1];
	struct catalog_token tok;
	const char *account, *label;
	enum catalog_rc crc;
	json *reply = NULL;
	int rc;

	if (arg_str(req, "account", true, &account, &reply) < 0 ||
	    arg_str(req, "label", false, &label, &reply) < 0)
		return reply;
	if (label == NULL)
		label = "";
	if (strlen(label) > CATALOG_LABEL_MAX)
		return error_reply(CODE_INVALID, "Label is too long.");
	crc = catalog_token_create(ctx->catalog, account, label, token, &tok);
	if (crc != CAT_OK)
		return catalog_error(crc, "Token already exists.", MSG_ACCOUNT_NOT_FOUND);
	if (admin_publish_catalog(ctx) < 0)
		rc = -1;
	else if ((reply = json_object_new_object()) == NULL)
		rc = -1;
	else {
		rc = add_str(reply, "token", token);
		rc = rc ? rc : add_str(reply, "token_id", tok.id);
	}
	explicit_bzero(token, sizeof(token));
	return finish(reply, rc);
}

/* Revoked tokens are gone as far as the operator is concerned: not listed. */
static void token_item(const struct catalog_token *t, void *arg)
{
	json *o;
	int rc = -1;

	if (t->revoked)
		return;
	o = json_object_new_object();
	if (o != NULL) {
		rc = add_str(o, "id", t->id);
		rc = rc ? rc : add_str(o, "label", t->label);
		rc = rc ? rc : add_int(o, "created_at", t->created_at);
	}
	list_push(arg, o, rc);
}

static json *op_token_list(struct admin_ctx *ctx, json *req)
{
	struct list_acc acc = {0};
	enum catalog_rc crc;
	const char *account;
	json *reply = NULL;

	if (arg_str(req, "account", true, &account, &reply) < 0)
		return reply;
	acc.arr = json_object_new_array();
	if (acc.arr == NULL)
		return internal_error();
	crc = catalog_each_token(ctx->catalog, account, token_item, &acc);
	if (crc != CAT_OK) {
		json_object_put(acc.arr);
		return catalog_error(crc, "", MSG_ACCOUNT_NOT_FOUND);
	}
	return list_reply("tokens", &acc);
}

static json *op_token_revoke(struct admin_ctx *ctx, json *req)
{
	const char *account, *token_id;
	enum catalog_rc crc;
	json *reply = NULL;
	int rc;

	if (arg_str(req, "account", true, &account, &reply) < 0 ||
	    arg_str(req, "token_id", true, &token_id, &reply) < 0)
		return reply;
	crc = catalog_token_revoke(ctx->catalog, account, token_id);
	if (crc == CAT_NOT_FOUND)
		return missing_reply(ctx, account, "Token not found.");
	if (crc != CAT_OK)
		return catalog_error(crc, "", "Token not found.");
	if (admin_publish_catalog(ctx) < 0)
		return internal_error();
	reply = json_object_new_object();
	if (reply == NULL)
		return internal_error();
	rc = add_str(reply, "account", account);
	rc = rc ? rc : add_str(reply, "token_id", token_id);
	rc = rc ? rc : add_bool(reply, "revoked", true);
	return finish(reply, rc);
}

static json *op_source_create(struct admin_ctx *ctx, json *req)
{
	struct catalog_source src;
	const char *account, *name;
	enum catalog_rc crc;
	json *reply = NULL;

	if (arg_str(req, "account", true, &account, &reply) < 0 ||
	    arg_str(req, "name", true, &name, &reply) < 0)
		return reply;
	crc = catalog_source_create(ctx->catalog, account, name, &src);
	if (crc != CAT_OK)
		return catalog_error(crc, "Data source already exists.", MSG_ACCOUNT_NOT_FOUND);
	if (admin_publish_catalog(ctx) < 0)
		return internal_error();
	return source_json(account, &src);
}

static json *source_set_archived(struct admin_ctx *ctx, json *req, bool archived)
{
	struct catalog_source src;
	const char *account, *name;
	enum catalog_rc crc;
	json *reply = NULL;

	if (arg_str(req, "account", true, &account, &reply) < 0 ||
	    arg_str(req, "name", true, &name, &reply) < 0)
		return reply;
	crc = catalog_source_set_archived(ctx->catalog, account, name, archived, &src);
	if (crc == CAT_NOT_FOUND)
		return missing_reply(ctx, account, MSG_SOURCE_NOT_FOUND);
	if (crc != CAT_OK)
		return catalog_error(crc, "", MSG_SOURCE_NOT_FOUND);
	if (admin_publish_catalog(ctx) < 0)
		return internal_error();
	return source_json(account, &src);
}

static json *op_source_archive(struct admin_ctx *ctx, json *req)
{
	return source_set_archived(ctx, req, true);
}

static json *op_source_unarchive(struct admin_ctx *ctx, json *req)
{
	return source_set_archived(ctx, req, false);
}

static json *op_source_get(struct admin_ctx *ctx, json *req)
{
	struct catalog_source src;
	const char *account, *name;
	enum catalog_rc crc;
	json *reply = NULL;

	if (arg_str(req, "account", true, &account, &reply) < 0 ||
	    arg_str(req, "name", true, &name, &reply) < 0)
		return reply;
	crc = catalog_source_find(ctx->catalog, account, name, &src);
	if (crc == CAT_NOT_FOUND)
		return missing_reply(ctx, account, MSG_SOURCE_NOT_FOUND);
	if (crc != CAT_OK)
		return catalog_error(crc, "", MSG_SOURCE_NOT_FOUND);
	return source_json(account, &src);
}

static void source_item(const struct catalog_account *owner, const struct catalog_source *s,
                        void *arg)
{
	json *o = source_json(owner->name, s);

	/* source_json answers an error object when it fails. */
	list_push(arg, o, json_object_object_get_ex(o, "error", NULL) ? -1 : 0);
}

static json *op_source_list(struct admin_ctx *ctx, json *req)
{
	struct list_acc acc = {0};
	enum catalog_rc crc;
	const char *account;
	json *reply = NULL;

	if (arg_str(req, "account", false, &account, &reply) < 0)
		return reply;
	acc.arr = json_object_new_array();
	if (acc.arr == NULL)
		return internal_error();
	crc = catalog_each_source(ctx->catalog, account, source_item, &acc);
	if (crc != CAT_OK) {
		json_object_put(acc.arr);
		return catalog_error(crc, "", MSG_ACCOUNT_NOT_FOUND);
	}
	return list_reply("data_sources", &acc);
}

/* ------------------------------------------------------------------ status, backup */

static json *op_status(struct admin_ctx *ctx, json *req)
{
	struct shm_header *hdr = ctx->shm->hdr;
	int64_t uptime = (int64_t)time(NULL) - hdr->started_at;
	json *reply = json_object_new_object();
	int rc;

	if (reply == NULL)
		return internal_error();
	rc = add_int(reply, "workers", atomic_load(&hdr->workers_running));
	rc = rc ? rc : add_int(reply, "writer_pid", atomic_load(&hdr->writer_pid));
	rc = rc ? rc : add_val(reply, "ring_fill", double_json(shm_ring_fill(ctx->shm)));
	rc = rc ? rc
	        : add_int(reply, "records_committed",
	                  (int64_t)atomic_load(&hdr->stats.records_committed));
	rc = rc ? rc : add_int(reply, "uptime_s", uptime > 0 ? uptime : 0);
	return finish(reply, rc);
}

static json *op_backup(struct admin_ctx *ctx, json *req)
{
	char err[ADMIN_ERR_MAX] = "";
	const char *dir;
	json *reply = NULL;

	if (arg_str(req, "dir", true, &dir, &reply) < 0)
		return reply;
	/* The writer's working directory means nothing to the operator. */
	if (dir[0] != '/')
		return error_reply(CODE_BAD_REQUEST, "dir must be an absolute path.");
	if (store_checkpoint(ctx->store, dir, err, sizeof(err)) < 0) {
		log_error("admin: backup failed: %s", err);
		return error_reply(CODE_FAILED, err[0] ? err : MSG_INTERNAL);
	}
	log_info("admin: backup written");
	reply = json_object_new_object();
	if (reply == NULL)
		return internal_error();
	return finish(reply, add_str(reply, "backup", dir));
}

/* ------------------------------------------------------------------ reads */

static int record_item(const struct rec *r, void *arg)
{
	struct list_acc *acc = arg;
	json *o = json_object_new_object();
	int rc = -1;

	if (o != NULL) {
		rc = add_int(o, "timestamp", r->ts);
		rc = rc ? rc : add_val(o, "name", json_object_new_string_len(r->name, r->name_len));
		rc = rc ? rc
		        : add_val(o, "value",
		                  r->type == REC_INT ? json_object_new_int64(r->v.i)
		                                     : double_json(r->v.d));
	}
	list_push(acc, o, rc);
	return acc->failed ? 1 : 0;
}

/* Archived sources stay readable; another account's source is simply not found. */
static json *find_readable(struct admin_ctx *ctx, const char *account, const char *name,
                           struct catalog_source *src)
{
	enum catalog_rc crc = catalog_source_find(ctx->catalog, account, name, src);

	if (crc == CAT_OK)
		return NULL;
	if (crc == CAT_FAILED)
		return internal_error();
	return error_reply(CODE_NOT_FOUND, MSG_SOURCE_NOT_FOUND);
}

static json *op_records(struct admin_ctx *ctx, json *req)
{
	struct list_acc acc = {0};
	struct records_query q;
	struct catalog_source src;
	const char *account, *source, *detail;
	json *reply = NULL;
	bool more = false;
	int64_t start, end, next_ts = 0;
	char cursor[DOUBLE_TEXT_MAX];
	int rc;

	if ((detail = records_query_from_op(req, &q, &account, &source)) != NULL)
		return error_reply(CODE_BAD_REQUEST, detail);
	if ((reply = find_readable(ctx, account, source, &src)) != NULL)
		return reply;
	acc.arr = json_object_new_array();
	if (acc.arr == NULL)
		return internal_error();
	records_query_range(&q, &start, &end);
	if (store_scan(ctx->store, src.id, q.series, q.series_len, start, end, q.limit,
	               record_item, &acc, &more, &next_ts) < 0)
		acc.failed = true;
	reply = list_reply("records", &acc);
	if (json_object_object_get_ex(reply, "error", NULL))
		return reply;
	if (more) {
		snprintf(cursor, sizeof(cursor), "%" PRId64, next_ts);
		rc = add_str(reply, "next_cursor", cursor);
	} else {
		rc = json_object_object_add(reply, "next_cursor", NULL);
	}
	return finish(reply, rc);
}

static int series_item(const char *name, size_t name_len, int64_t first, int64_t last, void *arg)
{
	struct list_acc *acc = arg;
	json *o = json_object_new_object();
	int rc = -1;

	if (o != NULL) {
		rc = add_val(o, "name", json_object_new_string_len(name, (int)name_len));
		rc = rc ? rc : add_int(o, "first_timestamp", first);
		rc = rc ? rc : add_int(o, "last_timestamp", last);
	}
	list_push(acc, o, rc);
	return acc->failed ? 1 : 0;
}

static json *op_series(struct admin_ctx *ctx, json *req)
{
	struct list_acc acc = {0};
	struct catalog_source src;
	const char *account, *source;
	json *reply = NULL;

	if (arg_str(req, "account", true, &account, &reply) < 0 ||
	    arg_str(req, "source", true, &source, &reply) < 0)
		return reply;
	if ((reply = find_readable(ctx, account, source, &src)) != NULL)
		return reply;
	acc.arr = json_object_new_array();
	if (acc.arr == NULL)
		return internal_error();
	if (store_series(ctx->store, src.id, series_item, &acc) < 0)
		acc.failed = true;
	return list_reply("series", &acc);
}

/* ------------------------------------------------------------------ dispatch */

typedef json *(*admin_op_fn)(struct admin_ctx *ctx, json *req);

static const struct {
	const char *name;
	admin_op_fn fn;
} admin_ops[] = {
    {"account_create", op_account_create},
    {"account_list", op_account_list},
    {"token_create", op_token_create},
    {"token_list", op_token_list},
    {"token_revoke", op_token_revoke},
    {"source_create", op_source_create},
    {"source_archive", op_source_archive},
    {"source_unarchive", op_source_unarchive},
    {"source_get", op_source_get},
    {"source_list", op_source_list},
    {"status", op_status},
    {"backup", op_backup},
    {"records", op_records},
    {"series", op_series},
};

json *admin_execute(struct admin_ctx *ctx, json *req)
{
	json *op = NULL;
	const char *name;

	if (!json_object_is_type(req, json_type_object))
		return error_reply(CODE_BAD_REQUEST, "Request must be a JSON object.");
	if (!json_object_object_get_ex(req, "op", &op) ||
	    !json_object_is_type(op, json_type_string))
		return error_reply(CODE_BAD_REQUEST, "op must be a string.");
	name = json_object_get_string(op);
	for (size_t i = 0; i < sizeof(admin_ops) / sizeof(admin_ops[0]); i++)
		if (strcmp(name, admin_ops[i].name) == 0)
			return admin_ops[i].fn(ctx, req);
	return error_reply(CODE_BAD_REQUEST, "Unknown op.");
}

/* ------------------------------------------------------------------ listening socket */

static int fill_addr(const char *path, struct sockaddr_un *addr, char *err, size_t errlen)
{
	size_t len = strlen(path);

	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	if (len == 0 || len >= sizeof(addr->sun_path)) {
		snprintf(err, errlen, "admin socket path \"%s\" is empty or longer than %zu bytes",
		         path, sizeof(addr->sun_path) - 1);
		return -1;
	}
	memcpy(addr->sun_path, path, len + 1);
	return 0;
}

/* 1 if a server answers at addr, 0 if nobody does, -1 if we cannot tell. */
static int socket_is_live(const struct sockaddr_un *addr)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int rc;

	if (fd < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0)
		rc = 1;
	else if (errno == ECONNREFUSED || errno == ENOENT)
		rc = 0;
	else
		rc = errno == EAGAIN ? 1 : -1;
	close(fd);
	return rc;
}

/* Take over a stale socket of ours at path; refuse anything else. */
static int clear_stale(const char *path, const struct sockaddr_un *addr, char *err, size_t errlen)
{
	struct stat st;
	int live;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "admin socket %s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "admin socket %s exists and is not a socket", path);
		return -1;
	}
	if (st.st_uid != geteuid()) {
		snprintf(err, errlen, "admin socket %s is owned by another user (uid %u)", path,
		         (unsigned)st.st_uid);
		return -1;
	}
	live = socket_is_live(addr);
	if (live != 0) {
		snprintf(err, errlen,
		         live > 0 ? "admin socket %s is in use"
		                  : "admin socket %s: cannot tell whether it is in use",
		         path);
		return -1;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		snprintf(err, errlen, "cannot remove stale admin socket %s: %s", path,
		         strerror(errno));
		return -1;
	}
	return 0;
}

/* mkdir -p of path's parent directory, new levels mode 0700. */
static int make_parent(const char *path, char *err, size_t errlen)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return 0;
	*slash = '\0';
	for (char *p = dir + 1;; p++) {
		bool last = *p == '\0';

		if (*p != '/' && !last)
			continue;
		*p = '\0';
		if (mkdir(dir, ADMIN_DIR_MODE) < 0 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create directory %s: %s", dir,
			         strerror(errno));
			return -1;
		}
		if (last)
			return 0;
		*p = '/';
	}
}

static int bind_listen(const char *path, const struct sockaddr_un *addr, char *err, size_t errlen)
{
	struct stat st;
	mode_t old_mask;
	int fd, rc;

	/* No SOCK_CLOEXEC: the writer inherits this fd across fork (no exec). */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0) {
		snprintf(err, errlen, "admin socket: %s", strerror(errno));
		return -1;
	}
	/* The umask closes the window between bind and chmod. */
	old_mask = umask(ADMIN_BIND_UMASK);
	rc = bind(fd, (const struct sockaddr *)addr, sizeof(*addr));
	umask(old_mask);
	if (rc < 0) {
		snprintf(err, errlen, "cannot bind admin socket %s: %s", path, strerror(errno));
		goto fail_nounlink;
	}
	if (chmod(path, ADMIN_SOCKET_MODE) < 0 || lstat(path, &st) < 0) {
		snprintf(err, errlen, "admin socket %s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISSOCK(st.st_mode) || (st.st_mode & 0777) != ADMIN_SOCKET_MODE) {
		snprintf(err, errlen, "admin socket %s: mode is %o, not %o", path,
		         (unsigned)(st.st_mode & 0777), (unsigned)ADMIN_SOCKET_MODE);
		goto fail;
	}
	if (listen(fd, SOMAXCONN) < 0) {
		snprintf(err, errlen, "cannot listen on admin socket %s: %s", path,
		         strerror(errno));
		goto fail;
	}
	return fd;
fail:
	unlink(path);
fail_nounlink:
	close(fd);
	return -1;
}

int admin_listen(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un addr;

	if (fill_addr(path, &addr, err, errlen) < 0 || clear_stale(path, &addr, err, errlen) < 0 ||
	    make_parent(path, err, errlen) < 0)
		return -1;
	return bind_listen(path, &addr, err, errlen);
}

/* ------------------------------------------------------------------ server threads */

/*
 * One server per process. lock guards everything below it; conn_fds lists open
 * connections so admin_stop can shut their read side (a blocked read then sees EOF)
 * and a connection thread leaves its slot before it closes the fd.
 */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t idle; /* broadcast when nconns drops to 0 */
	struct admin_ctx *ctx;
	int listen_fd;
	int wake[2]; /* admin_stop -> accept thread */
	pthread_t accept_thread;
	bool running;
	unsigned nconns;
	int conn_fds[ADMIN_MAX_CONNS]; /* -1: free */
} srv = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .idle = PTHREAD_COND_INITIALIZER,
    .wake = {-1, -1},
};

static int send_reply(int fd, json *reply)
{
	const char *text = json_object_to_json_string_ext(reply, JSON_OUT_FLAGS);

	if (text == NULL)
		return -1;
	return proto_write_frame(fd, text, strlen(text));
}

static void send_error(int fd, const char *code, const char *msg)
{
	json *reply = error_reply(code, msg);

	if (reply != NULL && send_reply(fd, reply) < 0)
		log_debug("admin: cannot send an error reply: %s", strerror(errno));
	json_object_put(reply);
}

/* Parse and run one frame. NULL only when out of memory. */
static json *handle_frame(struct admin_ctx *ctx, struct json_tokener *tok, const char *buf,
                          size_t len)
{
	json *req, *reply;

	json_tokener_reset(tok);
	req = len > 0 ? json_tokener_parse_ex(tok, buf, (int)len) : NULL;
	if (req == NULL || json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != len) {
		json_object_put(req);
		return error_reply(CODE_BAD_REQUEST, "Request is not valid JSON.");
	}
	reply = admin_execute(ctx, req);
	json_object_put(req);
	return reply;
}

static void conn_serve(struct admin_ctx *ctx, int fd)
{
	struct json_tokener *tok = json_tokener_new();
	char *buf;
	size_t len;

	if (tok == NULL) {
		send_error(fd, CODE_FAILED, MSG_INTERNAL);
		return;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	for (;;) {
		int rc = proto_read_frame(fd, &buf, &len, ADMIN_IDLE_TIMEOUT_MS);
		json *reply;

		if (rc == 1)
			break;
		if (rc < 0) {
			if (errno == EMSGSIZE)
				send_error(fd, CODE_BAD_REQUEST, "Request too large.");
			else if (errno != ETIMEDOUT && errno != ECONNRESET)
				log_warn("admin: connection read failed: %s", strerror(errno));
			break;
		}
		reply = handle_frame(ctx, tok, buf, len);
		free(buf);
		rc = reply != NULL ? send_reply(fd, reply) : -1;
		json_object_put(reply);
		if (rc < 0)
			break;
	}
	json_tokener_free(tok);
}

static void *conn_main(void *arg)
{
	int slot = (int)(intptr_t)arg;
	struct admin_ctx *ctx;
	int fd;

	pthread_mutex_lock(&srv.lock);
	fd = srv.conn_fds[slot];
	ctx = srv.ctx;
	pthread_mutex_unlock(&srv.lock);

	conn_serve(ctx, fd);

	pthread_mutex_lock(&srv.lock);
	srv.conn_fds[slot] = -1;
	if (--srv.nconns == 0)
		pthread_cond_broadcast(&srv.idle);
	pthread_mutex_unlock(&srv.lock);
	close(fd);
	return NULL;
}

/* Register fd in a free slot; the slot index, or -1 when at the cap. */
static int claim_slot(int fd)
{
	int slot = -1;

	pthread_mutex_lock(&srv.lock);
	for (int i = 0; i < ADMIN_MAX_CONNS && slot < 0; i++) {
		if (srv.conn_fds[i] < 0) {
			srv.conn_fds[i] = fd;
			srv.nconns++;
			slot = i;
		}
	}
	pthread_mutex_unlock(&srv.lock);
	return slot;
}

static void release_slot(int slot)
{
	pthread_mutex_lock(&srv.lock);
	srv.conn_fds[slot] = -1;
	if (--srv.nconns == 0)
		pthread_cond_broadcast(&srv.idle);
	pthread_mutex_unlock(&srv.lock);
}

static int spawn_conn(int slot)
{
	pthread_attr_t attr;
	pthread_t th;
	int rc;

	if (pthread_attr_init(&attr) != 0)
		return -1;
	rc = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (rc == 0)
		rc = pthread_create(&th, &attr, conn_main, (void *)(intptr_t)slot);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		errno = rc;
		return -1;
	}
	return 0;
}

/* Accept one connection. -1 when the listening socket is unusable. */
static int accept_one(void)
{
	int fd = accept4(srv.listen_fd, NULL, NULL, SOCK_CLOEXEC);
	int slot;

	if (fd < 0) {
		if (errno == EBADF || errno == EINVAL || errno == ENOTSOCK) {
			log_error("admin: accept failed: %s", strerror(errno));
			return -1;
		}
		if (errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == ENOBUFS) {
			log_warn("admin: accept failed: %s", strerror(errno));
			usleep(ADMIN_ACCEPT_BACKOFF_US);
		}
		return 0;
	}
	slot = claim_slot(fd);
	if (slot < 0) {
		send_error(fd, CODE_FAILED, "too many admin connections");
		close(fd);
		return 0;
	}
	if (spawn_conn(slot) < 0) {
		log_error("admin: cannot start a connection thread: %s", strerror(errno));
		release_slot(slot);
		send_error(fd, CODE_FAILED, MSG_INTERNAL);
		close(fd);
	}
	return 0;
}

static void *accept_main(void *arg)
{
	struct pollfd pfd[2] = {
	    {.fd = srv.listen_fd, .events = POLLIN},
	    {.fd = srv.wake[0], .events = POLLIN},
	};

	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("admin: poll failed: %s", strerror(errno));
			break;
		}
		if (pfd[1].revents != 0)
			break;
		if (pfd[0].revents & POLLIN) {
			if (accept_one() < 0)
				break;
		} else if (pfd[0].revents != 0) {
			log_error("admin: listening socket failed");
			break;
		}
	}
	return NULL;
}

int admin_start(struct admin_ctx *ctx, int listen_fd)
{
	sigset_t all, old;
	int rc;

	pthread_mutex_lock(&srv.lock);
	if (srv.running || srv.nconns > 0) {
		pthread_mutex_unlock(&srv.lock);
		errno = EBUSY;
		return -1;
	}
	if (pipe2(srv.wake, O_CLOEXEC) < 0)
		goto fail;
	srv.ctx = ctx;
	srv.listen_fd = listen_fd;
	for (int i = 0; i < ADMIN_MAX_CONNS; i++)
		srv.conn_fds[i] = -1;
	/* Our threads take no signals: the writer's main thread handles them. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&srv.accept_thread, NULL, accept_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		close(srv.wake[0]);
		close(srv.wake[1]);
		errno = rc;
		goto fail;
	}
	srv.running = true;
	pthread_mutex_unlock(&srv.lock);
	return 0;
fail:
	log_error("admin: cannot start: %s", strerror(errno));
	pthread_mutex_unlock(&srv.lock);
	return -1;
}

/* Wake the accept thread and wait for it; the listening fd stays the master's. */
static void stop_accepting(void)
{
	const char byte = 0;

	while (write(srv.wake[1], &byte, 1) < 0 && errno == EINTR)
		;
	pthread_join(srv.accept_thread, NULL);
	close(srv.wake[0]);
	close(srv.wake[1]);
	srv.wake[0] = srv.wake[1] = -1;
}

void admin_stop(void)
{
	struct timespec deadline;

	pthread_mutex_lock(&srv.lock);
	if (!srv.running) {
		pthread_mutex_unlock(&srv.lock);
		return;
	}
	pthread_mutex_unlock(&srv.lock);
	stop_accepting();

	pthread_mutex_lock(&srv.lock);
	/* Idle connections see EOF at once; a request in progress still gets its reply. */
	for (int i = 0; i < ADMIN_MAX_CONNS; i++)
		if (srv.conn_fds[i] >= 0)
			shutdown(srv.conn_fds[i], SHUT_RD);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += ADMIN_STOP_WAIT_S;
	while (srv.nconns > 0)
		if (pthread_cond_timedwait(&srv.idle, &srv.lock, &deadline) == ETIMEDOUT)
			break;
	if (srv.nconns > 0)
		log_warn("admin: %u connection(s) still busy at shutdown", srv.nconns);
	srv.running = false;
	pthread_mutex_unlock(&srv.lock);
}
