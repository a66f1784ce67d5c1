/*
 * admin_ops.c - every op of the admin socket, run by the writer: accounts, tokens and
 * data sources (each change published to shared memory before the reply), status,
 * backup, and the reads the workers forward (records, series, the Prometheus API).
 * Owns the buffer the catalog is encoded into before it is published. A reply is the
 * op's object, or {"error": message, "code": code} (admin_msg.h).
 */
#include "temporis/daemon/admin_ops.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <pthread.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "temporis/base/buf.h"
#include "temporis/base/clock.h"
#include "temporis/base/duration.h"
#include "temporis/base/jsonutil.h"
#include "temporis/base/log.h"
#include "temporis/daemon/admin_export.h"
#include "temporis/daemon/admin_prom.h"
#include "temporis/daemon/retention.h"
#include "temporis/data/downsample.h"
#include "temporis/data/record.h"
#include "temporis/data/store_read.h"
#include "temporis/ipc/admin_msg.h"

#define ADMIN_ERR_MAX 512
#define ENCODE_INITIAL_CAP (64u << 10)

#define MSG_INTERNAL "Internal error."
#define MSG_NAME_RULE                                                                              \
	"Invalid name: use 1-48 characters, start with a lowercase letter, then lowercase "        \
	"letters, digits or underscores."
#define MSG_ACCOUNT_NOT_FOUND "Account not found."
#define MSG_SOURCE_NOT_FOUND "Data source not found."
#define MSG_RETENTION_RULE                                                                   \
	"retention must be a duration: an integer with a unit s, m, h, d or w (30d), "        \
	"a number of seconds, or 0 or \"forever\" to keep everything; at most 1000 years."

typedef struct json_object json;

/* ------------------------------------------------------------------ replies */

static json *internal_error(void)
{
	return admin_error(ADMIN_FAILED, MSG_INTERNAL);
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
		return admin_error(ADMIN_EXISTS, exists_msg);
	case CAT_NOT_FOUND:
		return admin_error(ADMIN_NOT_FOUND, missing_msg);
	case CAT_INVALID:
		return admin_error(ADMIN_INVALID, MSG_NAME_RULE);
	default:
		return internal_error();
	}
}

/* For lookups of (account, thing): say which of the two is missing. */
static json *missing_reply(struct admin_ctx *ctx, const char *account, const char *thing_msg)
{
	struct catalog_account a;

	if (catalog_account_find(ctx->catalog, account, &a) == CAT_NOT_FOUND)
		return admin_error(ADMIN_NOT_FOUND, MSG_ACCOUNT_NOT_FOUND);
	return admin_error(ADMIN_NOT_FOUND, thing_msg);
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
		*reply = admin_error(ADMIN_BAD_REQUEST, msg);
		return -1;
	}
	if (!json_object_is_type(v, json_type_string)) {
		snprintf(msg, sizeof(msg), "%s must be a string.", key);
		*reply = admin_error(ADMIN_BAD_REQUEST, msg);
		return -1;
	}
	*out = json_object_get_string(v);
	return 0;
}

/* ------------------------------------------------------------------ catalog ops */

/* A mutex that fails means our own state is corrupt: stop rather than race. */
static void publish_mutex(int rc)
{
	if (rc != 0) {
		log_error("admin: publish mutex: %s", strerror(rc));
		abort();
	}
}

static pthread_mutex_t publish_lock = PTHREAD_MUTEX_INITIALIZER;
static void *publish_buf; /* guarded by publish_lock; grows, and lives for the process */
static size_t publish_cap;

/* Encode the catalog into publish_buf, growing it; the byte count, or 0. Under publish_lock. */
static size_t encode_catalog(struct admin_ctx *ctx)
{
	for (;;) {
		size_t need = catalog_encode(ctx->catalog, publish_buf, publish_cap);

		if (need == 0) {
			log_error("admin: catalog encoding failed");
			return 0;
		}
		if (need <= publish_cap)
			return need;
		if (vec_reserve(&publish_buf, &publish_cap, need, 1, ENCODE_INITIAL_CAP) < 0) {
			log_error("admin: out of memory encoding the catalog");
			return 0;
		}
	}
}

/*
 * Encode and publish under one lock: concurrent mutations may each publish, but
 * every encode sees the catalog as it is now, so the last snapshot out is current,
 * and shm_catalog_publish only ever has one caller at a time.
 */
int admin_publish_catalog(struct admin_ctx *ctx)
{
	size_t need;
	int rc = -1;

	publish_mutex(pthread_mutex_lock(&publish_lock));
	need = encode_catalog(ctx);
	if (need == 0)
		goto out;
	if (shm_catalog_publish(ctx->shm, publish_buf, need) < 0) {
		log_error("admin: cannot publish the catalog (%zu bytes): %s", need,
		          strerror(errno));
		goto out;
	}
	rc = 0;
out:
	publish_mutex(pthread_mutex_unlock(&publish_lock));
	return rc;
}

static json *source_json(const char *account, const struct catalog_source *s)
{
	json *o = json_object_new_object();
	int rc;

	if (o == NULL)
		return internal_error();
	rc = ju_add_str(o, "account", account);
	rc = rc ? rc : ju_add_str(o, "name", s->name);
	rc = rc ? rc : ju_add_bool(o, "archived", s->archived);
	rc = rc ? rc : ju_add_int(o, "created_at", s->created_at);
	rc = rc ? rc : ju_add_int(o, "retention_s", s->retention_s);
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
		rc = ju_add_str(reply, "account", acct.name);
		rc = rc ? rc : ju_add_str(reply, "token", token);
		rc = rc ? rc : ju_add_str(reply, "token_id", tok.id);
	}
	explicit_bzero(token, sizeof(token));
	return finish(reply, rc);
}

/* Collects catalog listing callbacks into a JSON array. */
struct list_acc {
	json *arr;
	bool failed;
	struct store *store;             /* for per-source sizes ("sizes": true); NULL: none */
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
		rc = ju_add_str(o, "name", a->name);
		rc = rc ? rc : ju_add_int(o, "created_at", a->created_at);
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
	return finish(o, ju_add(o, key, acc->arr));
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
		return admin_error(ADMIN_INVALID, "Label is too long.");
	crc = catalog_token_create(ctx->catalog, account, label, token, &tok);
	if (crc != CAT_OK)
		return catalog_error(crc, "Token already exists.", MSG_ACCOUNT_NOT_FOUND);
	if (admin_publish_catalog(ctx) < 0)
		rc = -1;
	else if ((reply = json_object_new_object()) == NULL)
		rc = -1;
	else {
		rc = ju_add_str(reply, "token", token);
		rc = rc ? rc : ju_add_str(reply, "token_id", tok.id);
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
		rc = ju_add_str(o, "id", t->id);
		rc = rc ? rc : ju_add_str(o, "label", t->label);
		rc = rc ? rc : ju_add_int(o, "created_at", t->created_at);
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
	rc = ju_add_str(reply, "account", account);
	rc = rc ? rc : ju_add_str(reply, "token_id", token_id);
	rc = rc ? rc : ju_add_bool(reply, "revoked", true);
	return finish(reply, rc);
}

/*
 * The "retention" argument: a duration text (duration.h) or a non-negative integer
 * of seconds. 1 with *seconds, 0 when absent, -1 with *reply (a 422) when bad.
 */
static int arg_retention(json *req, int64_t *seconds, json **reply)
{
	json *v = NULL;
	int64_t n;

	if (!json_object_object_get_ex(req, "retention", &v) || v == NULL)
		return 0;
	if (json_object_is_type(v, json_type_string) &&
	    duration_parse(json_object_get_string(v), (size_t)json_object_get_string_len(v),
			   seconds) == 0)
		return 1;
	if (json_object_is_type(v, json_type_int)) {
		errno = 0;
		n = json_object_get_int64(v);
		if (errno == 0 && n >= 0 && n <= DURATION_MAX_S) {
			*seconds = n;
			return 1;
		}
	}
	*reply = admin_error(ADMIN_INVALID, MSG_RETENTION_RULE);
	return -1;
}

static json *op_source_create(struct admin_ctx *ctx, json *req)
{
	struct catalog_source src;
	const char *account, *name;
	enum catalog_rc crc;
	int64_t retention = ctx->cfg != NULL ? (int64_t)ctx->cfg->default_retention_s : 0;
	json *reply = NULL;

	if (arg_str(req, "account", true, &account, &reply) < 0 ||
	    arg_str(req, "name", true, &name, &reply) < 0 ||
	    arg_retention(req, &retention, &reply) < 0)
		return reply;
	crc = catalog_source_create_with(ctx->catalog, account, name, retention, &src);
	if (crc != CAT_OK)
		return catalog_error(crc, "Data source already exists.", MSG_ACCOUNT_NOT_FOUND);
	if (admin_publish_catalog(ctx) < 0)
		return internal_error();
	if (retention > 0)
		retention_kick();
	return source_json(account, &src);
}

/* {"account", "name", "retention"}: the source's retention from now on. Its expired
 * records are hidden before the reply, and deleted from disk by a pass that starts
 * at once (retention.c). */
static json *op_source_set(struct admin_ctx *ctx, json *req)
{
	struct catalog_source src;
	const char *account, *name;
	enum catalog_rc crc;
	int64_t retention = 0;
	json *reply = NULL;
	int has;

	if (arg_str(req, "account", true, &account, &reply) < 0 ||
	    arg_str(req, "name", true, &name, &reply) < 0 ||
	    (has = arg_retention(req, &retention, &reply)) < 0)
		return reply;
	if (has == 0)
		return admin_error(ADMIN_INVALID, "retention is required: " MSG_RETENTION_RULE);
	crc = catalog_source_set_retention(ctx->catalog, account, name, retention, &src);
	if (crc == CAT_NOT_FOUND)
		return missing_reply(ctx, account, MSG_SOURCE_NOT_FOUND);
	if (crc != CAT_OK)
		return catalog_error(crc, "", MSG_SOURCE_NOT_FOUND);
	retention_kick();
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
	struct list_acc *acc = arg;
	json *o = source_json(owner->name, s);
	uint64_t sst = 0;
	int rc;

	/* source_json answers an error object when it fails. */
	rc = json_object_object_get_ex(o, "error", NULL) ? -1 : 0;
	/* What its sealed records take on disk; records not sealed yet are in the log. */
	if (rc == 0 && acc->store != NULL) {
		if (store_source_property_int(acc->store, s->id, "rocksdb.total-sst-files-size",
					      &sst) != 0)
			sst = 0;
		rc = ju_add_int(o, "sst_bytes", (int64_t)sst);
	}
	list_push(acc, o, rc);
}

static json *op_source_list(struct admin_ctx *ctx, json *req)
{
	struct list_acc acc = {0};
	enum catalog_rc crc;
	const char *account;
	json *reply = NULL;

	if (arg_str(req, "account", false, &account, &reply) < 0)
		return reply;
	/* Sizes are for the operator (temporisctl asks for them), not the public API. */
	if (json_object_get_boolean(json_object_object_get(req, "sizes")))
		acc.store = ctx->store;
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

static const char *disk_state_text(uint32_t state)
{
	switch (state) {
	case SHM_DISK_OK:
		return "ok";
	case SHM_DISK_LOW:
		return "below_min_free_disk";
	default:
		return "store_out_of_space";
	}
}

/* The store's share of status: disk use, free space, what waits for a seal. */
static int status_store(struct admin_ctx *ctx, json *reply)
{
	struct shm_header *hdr = ctx->shm->hdr;
	struct store_stats s;
	int rc;

	store_stats_get(ctx->store, &s);
	rc = ju_add_int(reply, "store_sst_bytes", (int64_t)s.sst_bytes);
	rc = rc ? rc : ju_add_int(reply, "store_memtable_bytes", (int64_t)s.memtable_bytes);
	rc = rc ? rc : ju_add_int(reply, "head_records", (int64_t)s.head_records);
	rc = rc ? rc : ju_add_int(reply, "disk_free_bytes",
				  (int64_t)atomic_load(&hdr->stats.disk_free_bytes));
	rc = rc ? rc : ju_add_str(reply, "disk_state", disk_state_text(atomic_load(&hdr->disk_state)));
	return rc;
}

static json *op_status(struct admin_ctx *ctx, json *req)
{
	struct shm_header *hdr = ctx->shm->hdr;
	json *reply;
	int64_t now, uptime;
	int rc;

	/* An unreadable clock reports no uptime rather than failing the whole status. */
	uptime = wall_time_s(&now) == 0 ? now - hdr->started_at : 0;
	reply = json_object_new_object();
	if (reply == NULL)
		return internal_error();
	rc = ju_add_int(reply, "workers", atomic_load(&hdr->workers_running));
	rc = rc ? rc : ju_add_int(reply, "writer_pid", atomic_load(&hdr->writer_pid));
	rc = rc ? rc : ju_add(reply, "ring_fill", ju_double(shm_ring_fill(ctx->shm)));
	rc = rc ? rc
	        : ju_add_int(reply, "records_committed",
	                     (int64_t)atomic_load(&hdr->stats.records_committed));
	rc = rc ? rc : ju_add_int(reply, "uptime_s", uptime > 0 ? uptime : 0);
	rc = rc ? rc : status_store(ctx, reply);
	return finish(reply, rc);
}

/* The server, not temporisctl, writes the backup: say as whom. */
static json *backup_denied(const char *dir, const char *err)
{
	char msg[ADMIN_ERR_MAX + 256];
	struct passwd *pw = getpwuid(geteuid());

	snprintf(msg, sizeof(msg), "%s. The server writes the backup itself, as user %s (uid %u): "
		 "that user needs write access to the directory that is to hold %s.", err,
		 pw != NULL ? pw->pw_name : "?", (unsigned)geteuid(), dir);
	return admin_error(ADMIN_FAILED, msg);
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
		return admin_error(ADMIN_BAD_REQUEST, "dir must be an absolute path.");
	if (store_checkpoint(ctx->store, dir, err, sizeof(err)) < 0) {
		log_error("admin: backup failed: %s", err);
		if (strstr(err, "Permission denied") != NULL)
			return backup_denied(dir, err);
		return admin_error(ADMIN_FAILED, err[0] ? err : MSG_INTERNAL);
	}
	log_info("admin: backup written");
	reply = json_object_new_object();
	if (reply == NULL)
		return internal_error();
	return finish(reply, ju_add_str(reply, "backup", dir));
}

/* ------------------------------------------------------------------ reads */

/* Archived sources stay readable; another account's source is simply not found. */
static json *find_readable(struct admin_ctx *ctx, const char *account, const char *name,
                           struct catalog_source *src)
{
	enum catalog_rc crc = catalog_source_find(ctx->catalog, account, name, src);

	if (crc == CAT_OK)
		return NULL;
	if (crc == CAT_FAILED)
		return internal_error();
	return admin_error(ADMIN_NOT_FOUND, MSG_SOURCE_NOT_FOUND);
}

/* The readable source req names by "account" and "source": NULL with *src set, or the
 * error reply. */
static json *readable_of(struct admin_ctx *ctx, json *req, struct catalog_source *src)
{
	const char *account, *source;
	json *reply = NULL;

	if (arg_str(req, "account", true, &account, &reply) < 0 ||
	    arg_str(req, "source", true, &source, &reply) < 0)
		return reply;
	return find_readable(ctx, account, source, src);
}

/* The records answer as text: built once here, relayed unparsed by the worker. */
struct records_text {
	struct buf out;
	size_t n;
};

#define TEXT(lit) (lit), sizeof(lit) - 1

/* One record of the reply: {"timestamp", "name", "value"}, raw or a bucket. */
static void record_push(struct records_text *t, int64_t ts, const char *name, size_t name_len,
                        const struct rec *v)
{
	char num[JU_DOUBLE_TEXT_MAX];
	size_t len;

	if (t->n++ > 0)
		buf_append(&t->out, TEXT(","));
	buf_printf(&t->out, "{\"timestamp\":%" PRId64 ",\"name\":", ts);
	ju_write_string(&t->out, name, name_len);
	buf_append(&t->out, TEXT(",\"value\":"));
	if (v->type == REC_INT) {
		buf_printf(&t->out, "%" PRId64 "}", v->v.i);
	} else {
		len = ju_double_text(v->v.d, num);
		buf_append(&t->out, num, len);
		buf_append(&t->out, TEXT("}"));
	}
}

static int record_item(const struct rec *r, void *arg)
{
	struct records_text *t = arg;

	record_push(t, r->ts, r->name, r->name_len, r);
	return t->out.failed ? 1 : 0;
}

/*
 * A downsampled read, fed by store_scan: one struct ds_bucket open at a time, one reply
 * record per finished bucket, nothing allocated per record. The scan is stopped by the
 * first record of bucket limit + 1, whose bucket start is then the next cursor: that
 * bucket is whole on the next page, so pages of buckets give what one big page would.
 */
struct bucket_walk {
	struct records_text *t;
	const struct records_query *q;
	struct ds_bucket b;
	bool open;                       /* b holds at least one record */
	uint32_t given;                  /* buckets in the reply */
	bool more;
	int64_t next_cursor;             /* the start of the first bucket not given */
};

static void bucket_give(struct bucket_walk *w)
{
	struct rec v;

	ds_bucket_value(&w->b, w->q->agg, &v);
	record_push(w->t, w->b.start, w->q->series, w->q->series_len, &v);
	w->given++;
	w->open = false;
}

static int bucket_item(const struct rec *r, void *arg)
{
	struct bucket_walk *w = arg;
	int64_t start = ds_bucket_start(r->ts, w->q->step);

	if (w->open && start == w->b.start) {
		ds_bucket_add(&w->b, w->q->agg, r);
		return 0;
	}
	if (w->open)
		bucket_give(w);
	if (w->t->out.failed)
		return 1;
	if (w->given == w->q->limit) {
		w->more = true;
		w->next_cursor = start;
		return 1;
	}
	ds_bucket_begin(&w->b, w->q->agg, start, r);
	w->open = true;
	return 0;
}

/*
 * The buckets of [first, last]. store_scan counts records against its limit: a scan
 * that stops there mid-bucket goes on from where it stopped, so only the bucket limit
 * ends the walk. 0 or -1.
 */
static int scan_buckets(struct admin_ctx *ctx, uint32_t source_id,
                        const struct records_query *q, int64_t first, int64_t last,
                        struct bucket_walk *w)
{
	bool more = true;
	int64_t next = first;

	while (more && !w->more && !w->t->out.failed) {
		if (store_scan(ctx->store, source_id, q->series, q->series_len, next, last,
		               UINT32_MAX, bucket_item, w, &more, &next) < 0)
			return -1;
	}
	if (w->open && !w->t->out.failed)
		bucket_give(w);
	return 0;
}

/* The page's records into t, and whether (and where) more remain. 0 or -1. */
static int records_page(struct admin_ctx *ctx, uint32_t source_id, const struct records_query *q,
                        struct records_text *t, bool *more, int64_t *next_cursor)
{
	struct bucket_walk w = { .t = t, .q = q };
	int64_t first, last;

	*more = false;
	if (!records_query_range(q, &first, &last))
		return 0;
	if (q->agg == DS_NONE)
		return store_scan(ctx->store, source_id, q->series, q->series_len, first, last,
		                  q->limit, record_item, t, more, next_cursor);
	if (scan_buckets(ctx, source_id, q, first, last, &w) < 0)
		return -1;
	*more = w.more;
	*next_cursor = w.next_cursor;
	return 0;
}

static json *op_records(struct admin_ctx *ctx, json *req)
{
	struct records_text t = {0};
	struct records_query q;
	struct catalog_source src;
	const char *account, *source, *detail;
	json *reply = NULL;
	bool more = false;
	int64_t next_ts = 0;

	if ((detail = records_query_from_op(req, &q, &account, &source)) != NULL)
		return admin_error(ADMIN_BAD_REQUEST, detail);
	if ((reply = find_readable(ctx, account, source, &src)) != NULL)
		return reply;
	buf_append(&t.out, TEXT("{\"records\":["));
	if (records_page(ctx, src.id, &q, &t, &more, &next_ts) < 0) {
		buf_free(&t.out);
		return internal_error();
	}
	if (more)
		buf_printf(&t.out, "],\"next_cursor\":\"%" PRId64 "\"}", next_ts);
	else
		buf_append(&t.out, TEXT("],\"next_cursor\":null}"));   /* the last page */
	reply = t.out.failed ? internal_error() : admin_body_reply(200, t.out.data, t.out.len);
	buf_free(&t.out);
	return reply != NULL ? reply : internal_error();
}

static int series_item(const char *name, size_t name_len, int64_t first, int64_t last, void *arg)
{
	struct list_acc *acc = arg;
	json *o = json_object_new_object();
	int rc = -1;

	if (o != NULL) {
		rc = ju_add_strn(o, "name", name, name_len);
		rc = rc ? rc : ju_add_int(o, "first_timestamp", first);
		rc = rc ? rc : ju_add_int(o, "last_timestamp", last);
	}
	list_push(acc, o, rc);
	return acc->failed ? 1 : 0;
}

static json *op_series(struct admin_ctx *ctx, json *req)
{
	struct list_acc acc = {0};
	struct catalog_source src;
	json *reply;

	if ((reply = readable_of(ctx, req, &src)) != NULL)
		return reply;
	acc.arr = json_object_new_array();
	if (acc.arr == NULL)
		return internal_error();
	if (store_series(ctx->store, src.id, series_item, &acc) < 0)
		acc.failed = true;
	reply = list_reply("series", &acc);
	/* GET /v1/data_sources/{name} takes the retention from here: the writer's alone */
	if (!json_object_object_get_ex(reply, "error", NULL) &&
	    ju_add_int(reply, "retention_s", src.retention_s) < 0) {
		json_object_put(reply);
		return internal_error();
	}
	return reply;
}

/* One page of an export of a source of the account (admin_export.h). */
static json *op_export(struct admin_ctx *ctx, json *req)
{
	struct catalog_source src;
	json *reply;

	if ((reply = readable_of(ctx, req, &src)) != NULL)
		return reply;
	reply = admin_export_run(ctx->store, src.id, req);
	return reply != NULL ? reply : internal_error();
}

/* One call of the Prometheus API on a source of the account (admin_prom.h). */
static json *op_prom(struct admin_ctx *ctx, json *req)
{
	struct catalog_source src;
	json *reply;

	if ((reply = readable_of(ctx, req, &src)) != NULL)
		return reply;
	reply = admin_prom_run(ctx->store, src.id, ctx->cfg, req);
	return reply != NULL ? reply : internal_error();
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
    {"source_set", op_source_set},
    {"source_list", op_source_list},
    {"status", op_status},
    {"backup", op_backup},
    {"records", op_records},
    {"series", op_series},
    {"prom", op_prom},
    {"export", op_export},
};

json *admin_execute(struct admin_ctx *ctx, json *req)
{
	json *op = NULL;
	const char *name;

	if (!json_object_is_type(req, json_type_object))
		return admin_error(ADMIN_BAD_REQUEST, "Request must be a JSON object.");
	if (!json_object_object_get_ex(req, "op", &op) ||
	    !json_object_is_type(op, json_type_string))
		return admin_error(ADMIN_BAD_REQUEST, "op must be a string.");
	name = json_object_get_string(op);
	for (size_t i = 0; i < sizeof(admin_ops) / sizeof(admin_ops[0]); i++)
		if (strcmp(name, admin_ops[i].name) == 0)
			return admin_ops[i].fn(ctx, req);
	return admin_error(ADMIN_BAD_REQUEST, "Unknown op.");
}
