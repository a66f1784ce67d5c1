/*
 * serve_sources.c - the read and management routes of data sources.
 *
 * Every answer comes from the writer (writer_call.c), the only owner of RocksDB. A
 * read starts after every 204 this server sent before it, and the writer answers from
 * the database that already holds those commits, so it sees them. Scoping to the
 * caller's account happens here, against the catalog snapshot, before anything is asked.
 */
#include "temporis/http/serve_sources.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "temporis/base/jsonutil.h"
#include "temporis/http/handler.h"
#include "temporis/http/server.h"
#include "temporis/http/uri.h"
#include "temporis/http/writer_call.h"
#include "temporis/ipc/admin_msg.h"

#define QUERY_VALUE_MAX (REC_NAME_MAX + 1)  /* the longest value: a series name */
#define JSON_TYPE "application/json"

/* ---- answers ---- */

static void respond_json(struct http_req *req, int status, struct json_object *body)
{
	size_t len;
	const char *text = json_object_to_json_string_length(body, JSON_C_TO_STRING_PLAIN, &len);

	if (text == NULL)
		http_respond_error(req, 500, "Internal server error.", NULL);
	else
		http_respond(req, status, JSON_TYPE, NULL, text, len);
}

static void strip_account(struct json_object *obj)
{
	if (json_object_is_type(obj, json_type_object))
		json_object_object_del(obj, "account");
}

/* The series, as the writer answers them; its retention_s is for reply_source. */
static void reply_series(struct handler_env *env, struct http_req *req, struct json_object *reply)
{
	if (json_object_is_type(reply, json_type_object))
		json_object_object_del(reply, "retention_s");
	respond_json(req, 200, reply);
}

static void reply_list(struct handler_env *env, struct http_req *req, struct json_object *reply)
{
	struct json_object *list = ju_arr(reply, "data_sources");

	if (list != NULL)
		for (size_t i = 0; i < json_object_array_length(list); i++)
			strip_account(json_object_array_get_idx(list, i));
	respond_json(req, 200, reply);
}

static void reply_created(struct handler_env *env, struct http_req *req,
			  struct json_object *reply)
{
	strip_account(reply);
	respond_json(req, 201, reply);
}

static void reply_archived(struct handler_env *env, struct http_req *req,
			   struct json_object *reply)
{
	strip_account(reply);
	respond_json(req, 200, reply);
}

/* GET /v1/data_sources/{name}: the object from the snapshot plus its series. */
static void reply_source(struct handler_env *env, struct http_req *req,
			 struct json_object *reply)
{
	struct req_ctx *ctx = req->user;
	const struct catalog_source *src = handler_source(env, ctx, ctx->name, ctx->name_len);
	struct json_object *obj, *series = ju_arr(reply, "series");

	if (src == NULL) {
		http_respond_error(req, 404, "Data source not found.", NULL);
		return;
	}
	obj = json_object_new_object();
	if (series == NULL || ju_add_str(obj, "name", src->name) < 0 ||
	    ju_add_bool(obj, "archived", src->archived) < 0 ||
	    ju_add_int(obj, "created_at", src->created_at) < 0 ||
	    ju_add_int(obj, "retention_s", ju_int_or(reply, "retention_s", 0)) < 0 ||
	    ju_add(obj, "series", json_object_get(series)) < 0) {
		json_object_put(obj);
		http_respond_error(req, 500, "Internal server error.", NULL);
		return;
	}
	respond_json(req, 200, obj);
	json_object_put(obj);
}

/* ---- questions ---- */

/* {"op": name, "account": the caller's, "name": {name} when named}; NULL if out of memory. */
static struct json_object *new_op(const char *name, const struct req_ctx *ctx, bool named)
{
	struct json_object *op = json_object_new_object();

	if (ju_add_str(op, "op", name) < 0 || ju_add_str(op, "account", ctx->account_name) < 0 ||
	    (named && ju_add_strn(op, "name", ctx->name, ctx->name_len) < 0)) {
		json_object_put(op);
		return NULL;
	}
	return op;
}

/* Add val to op; on failure op is gone: NULL, which writer_ask answers with a 500. */
static struct json_object *op_with(struct json_object *op, const char *key,
				   struct json_object *val)
{
	if (op == NULL || ju_add(op, key, val) < 0) {
		json_object_put(op);
		return NULL;
	}
	return op;
}

/* The {name} of the path is a source of the caller's account; else answers 404. */
static bool source_visible(struct handler_env *env, struct http_req *req)
{
	struct req_ctx *ctx = req->user;

	if (handler_source(env, ctx, ctx->name, ctx->name_len) != NULL)
		return true;
	http_respond_error(req, 404, "Data source not found.", NULL);
	return false;
}

/* The series of the path's source; the answer goes to on_reply. */
static void ask_series(struct handler_env *env, struct http_req *req, writer_reply_fn *on_reply)
{
	struct req_ctx *ctx = req->user;

	if (!source_visible(env, req))
		return;
	writer_ask(env, req,
		   op_with(new_op("series", ctx, false), "source",
			   json_object_new_string_len(ctx->name, (int)ctx->name_len)),
		   on_reply);
}

static void ask_named(struct handler_env *env, struct http_req *req, const char *op_name)
{
	if (source_visible(env, req))
		writer_ask(env, req, new_op(op_name, req->user, true), reply_archived);
}

/* ---- the routes ---- */

void sources_list(struct handler_env *env, struct http_req *req)
{
	writer_ask(env, req, new_op("source_list", req->user, false), reply_list);
}

/* The "name" of a POST /v1/data_sources body, or NULL with *status and *detail set. */
static struct json_object *create_body_name(const struct http_req *req, struct json_object **body,
					    int *status, const char **detail)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *name = NULL;

	*body = NULL;
	*status = 500;
	*detail = "Internal server error.";
	if (tok == NULL)
		return NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	*body = json_tokener_parse_ex(tok, (const char *)req->body, (int)req->body_len);
	if (*body == NULL || json_tokener_get_parse_end(tok) != req->body_len) {
		*status = 400;
		*detail = "Request body is not valid JSON.";
	} else if (!json_object_object_get_ex(*body, "name", &name) ||
		   !json_object_is_type(name, json_type_string)) {
		*status = 422;
		*detail = "name must be a string.";
		name = NULL;
	}
	json_tokener_free(tok);
	return name;
}

/* POST /v1/data_sources {"name": "..."} */
void sources_create(struct handler_env *env, struct http_req *req)
{
	struct json_object *body, *name, *op, *retention = NULL;
	const char *detail;
	int status;

	name = create_body_name(req, &body, &status, &detail);
	if (name == NULL) {
		json_object_put(body);
		http_respond_error(req, status, detail, NULL);
		return;
	}
	op = op_with(new_op("source_create", req->user, false), "name", json_object_get(name));
	/* an optional retention, judged by the writer; else default_retention */
	if (json_object_object_get_ex(body, "retention", &retention) && retention != NULL)
		op = op_with(op, "retention", json_object_get(retention));
	json_object_put(body);
	writer_ask(env, req, op, reply_created);
}

void source_get(struct handler_env *env, struct http_req *req)
{
	ask_series(env, req, reply_source);
}

void source_series(struct handler_env *env, struct http_req *req)
{
	ask_series(env, req, reply_series);
}

/* The "retention" of a PATCH body, or NULL with *status and *detail set. The value
 * itself is the writer's to judge (one parser): a bad one is its 422. */
static struct json_object *update_body_retention(const struct http_req *req,
						 struct json_object **body, int *status,
						 const char **detail)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *v = NULL;

	*body = NULL;
	*status = 500;
	*detail = "Internal server error.";
	if (tok == NULL)
		return NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	*body = json_tokener_parse_ex(tok, (const char *)req->body, (int)req->body_len);
	if (*body == NULL || json_tokener_get_parse_end(tok) != req->body_len) {
		*status = 400;
		*detail = "Request body is not valid JSON.";
	} else if (!json_object_is_type(*body, json_type_object) ||
		   !json_object_object_get_ex(*body, "retention", &v) || v == NULL) {
		*status = 422;
		*detail = "retention is required: a duration such as \"30d\" (units s, m, h, d, "
			  "w), a number of seconds, or 0 or \"forever\" to keep everything.";
		v = NULL;
	}
	json_tokener_free(tok);
	return v;
}

/* PATCH /v1/data_sources/{name} {"retention": "30d"} */
void source_update(struct handler_env *env, struct http_req *req)
{
	struct json_object *body, *retention, *op;
	const char *detail;
	int status;

	if (!source_visible(env, req))
		return;
	retention = update_body_retention(req, &body, &status, &detail);
	if (retention == NULL) {
		json_object_put(body);
		http_respond_error(req, status, detail, NULL);
		return;
	}
	op = op_with(new_op("source_set", req->user, true), "retention", json_object_get(retention));
	json_object_put(body);
	writer_ask(env, req, op, reply_archived);
}

void source_archive(struct handler_env *env, struct http_req *req)
{
	ask_named(env, req, "source_archive");
}

void source_unarchive(struct handler_env *env, struct http_req *req)
{
	ask_named(env, req, "source_unarchive");
}

/* The records query of the URL, by the rules the writer checks it with again. */
static const struct {
	const char *param;
	enum records_field field;
} records_params[] = {
	{ "start", RQ_START },
	{ "end", RQ_END },
	{ "limit", RQ_LIMIT },
	{ "cursor", RQ_CURSOR },
	{ "step", RQ_STEP },
	{ "agg", RQ_AGG },
};

/* NULL when the query is valid, else the 422 detail. */
static const char *records_query_parse(const struct http_req *req, struct records_query *q)
{
	char buf[QUERY_VALUE_MAX];
	long n = req->query ? uri_query_param(req->query, "name", buf, sizeof(buf)) : -1;
	const char *detail;

	records_query_init(q);
	if (n <= 0 || (detail = records_query_set(q, RQ_SERIES, buf, (size_t)n)) != NULL)
		return "name is required.";
	for (size_t i = 0; i < sizeof(records_params) / sizeof(records_params[0]); i++) {
		n = uri_query_param(req->query, records_params[i].param, buf, sizeof(buf));
		if (n == -1)
			continue;
		detail = n < 0 ? records_query_set(q, records_params[i].field, "", 0)
			       : records_query_set(q, records_params[i].field, buf, (size_t)n);
		if (detail != NULL)
			return detail;
	}
	return records_query_check(q);
}

void source_records(struct handler_env *env, struct http_req *req)
{
	struct req_ctx *ctx = req->user;
	struct records_query q;
	const char *detail = records_query_parse(req, &q);

	if (detail != NULL) {
		http_respond_error(req, 422, detail, NULL);
		return;
	}
	if (!source_visible(env, req))
		return;
	/* answers 500 itself when the op is NULL */
	writer_ask_body(env, req,
			records_query_to_op(&q, ctx->account_name, ctx->name, ctx->name_len),
			JSON_TYPE);
}
