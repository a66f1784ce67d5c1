/*
 * http_read.c - the read and management routes (/metrics lives in metrics.c).
 *
 * RocksDB has one owner, the writer, so every read is a question to it over the
 * admin socket: one short connection per request, asynchronous in the worker's
 * loop. A read starts after every 204 this server sent before it, and the writer
 * answers from the database that already holds those commits, so it sees them.
 * Scoping to the caller's account happens here, against the catalog snapshot,
 * before anything is asked.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "temporis/base/jsonutil.h"
#include "temporis/base/log.h"
#include "temporis/ipc/admin_msg.h"
#include "temporis/ipc/proto.h"
#include "temporis/daemon/worker.h"

#define READ_CALL_TIMEOUT_S 30
#define QUERY_VALUE_MAX 512
#define RETRY_AFTER "Retry-After: 1\r\n"
#define JSON_TYPE "application/json"

struct read_call {
	struct worker *w;
	struct http_req *req;          /* NULL once the client went away */
	struct bufferevent *bev;
	enum route_id route;
};

static void call_free(struct read_call *c)
{
	if (c->bev)
		bufferevent_free(c->bev);
	free(c);
}

static void respond_json(struct http_req *req, int status, struct json_object *body)
{
	size_t len;
	const char *text = json_object_to_json_string_length(body, JSON_C_TO_STRING_PLAIN, &len);

	if (text == NULL)
		worker_respond_error(req, 500, "Internal server error.", NULL);
	else
		worker_respond(req, status, JSON_TYPE, NULL, text, len);
}

static void strip_account(struct json_object *obj)
{
	if (json_object_is_type(obj, json_type_object))
		json_object_object_del(obj, "account");
}

/* The writer's error codes carry their HTTP status; a failure never shows its text. */
static void respond_error_reply(struct http_req *req, struct json_object *reply)
{
	int status = admin_code_status(admin_reply_code(reply));
	const char *msg = ju_str(reply, "error");

	if (status >= 500 || msg == NULL)
		worker_respond_error(req, 500, "Internal server error.", NULL);
	else
		worker_respond_error(req, status, msg, NULL);
}

/* GET /v1/data_sources/{name}: the object from the snapshot plus its series. */
static void respond_source(struct worker *w, struct http_req *req, struct json_object *reply)
{
	struct req_ctx *ctx = req->user;
	const struct catalog_source *src;
	struct json_object *obj, *series = NULL;

	worker_refresh_catalog(w);
	src = w->snap ? catalog_snap_source(w->snap, ctx->account_id, ctx->route.name,
					    ctx->route.name_len)
		      : NULL;
	if (src == NULL) {
		worker_respond_error(req, 404, "Data source not found.", NULL);
		return;
	}
	obj = json_object_new_object();
	if (obj == NULL || !json_object_object_get_ex(reply, "series", &series)) {
		json_object_put(obj);
		worker_respond_error(req, 500, "Internal server error.", NULL);
		return;
	}
	json_object_object_add(obj, "name", json_object_new_string(src->name));
	json_object_object_add(obj, "archived", json_object_new_boolean(src->archived));
	json_object_object_add(obj, "created_at", json_object_new_int64(src->created_at));
	json_object_object_add(obj, "series", json_object_get(series));
	respond_json(req, 200, obj);
	json_object_put(obj);
}

static void respond_reply(struct read_call *c, struct json_object *reply)
{
	struct http_req *req = c->req;
	struct json_object *list = NULL;

	((struct req_ctx *)req->user)->call = NULL;
	c->req = NULL;
	if (json_object_object_get_ex(reply, "error", NULL)) {
		respond_error_reply(req, reply);
		return;
	}
	switch (c->route) {
	case ROUTE_SOURCES_LIST:
		if (json_object_object_get_ex(reply, "data_sources", &list))
			for (size_t i = 0; i < json_object_array_length(list); i++)
				strip_account(json_object_array_get_idx(list, i));
		respond_json(req, 200, reply);
		break;
	case ROUTE_SOURCES_CREATE:
		strip_account(reply);
		respond_json(req, 201, reply);
		break;
	case ROUTE_SOURCE_ARCHIVE:
	case ROUTE_SOURCE_UNARCHIVE:
		strip_account(reply);
		respond_json(req, 200, reply);
		break;
	case ROUTE_SOURCE_GET:
		respond_source(c->w, req, reply);
		break;
	default:
		respond_json(req, 200, reply);
		break;
	}
}

static void call_fail(struct read_call *c)
{
	struct http_req *req = c->req;

	if (req != NULL) {
		((struct req_ctx *)req->user)->call = NULL;
		worker_respond_error(req, 503, "Server is busy, retry later.", RETRY_AFTER);
	}
	call_free(c);
}

static void on_call_read(struct bufferevent *bev, void *arg)
{
	struct read_call *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	uint8_t hdr[PROTO_HDR_LEN];
	uint32_t len;
	struct json_object *reply;
	const char *text;

	if (evbuffer_copyout(in, hdr, sizeof(hdr)) < (ev_ssize_t)sizeof(hdr))
		return;
	len = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 |
	      (uint32_t)hdr[3] << 24;
	if (len > PROTO_MAX_FRAME) {
		call_fail(c);
		return;
	}
	if (evbuffer_get_length(in) < sizeof(hdr) + len)
		return;
	text = (const char *)evbuffer_pullup(in, (ev_ssize_t)(sizeof(hdr) + len));
	reply = text ? ju_parse(text + sizeof(hdr), len) : NULL;
	if (reply == NULL) {
		log_error("malformed reply from the writer");
		call_fail(c);
		return;
	}
	if (c->req != NULL)
		respond_reply(c, reply);
	json_object_put(reply);
	call_free(c);
}

static void on_call_event(struct bufferevent *bev, short what, void *arg)
{
	struct read_call *c = arg;

	if (what & BEV_EVENT_CONNECTED)
		return;
	log_warn("the writer did not answer a read (%s)",
		 what & BEV_EVENT_TIMEOUT ? "timeout" : "connection closed");
	call_fail(c);
}

static int call_send(struct read_call *c, struct json_object *op)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = READ_CALL_TIMEOUT_S };
	size_t len;
	const char *text = json_object_to_json_string_length(op, JSON_C_TO_STRING_PLAIN, &len);
	uint8_t hdr[PROTO_HDR_LEN] = { (uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16),
				       (uint8_t)(len >> 24) };
	const char *path = c->w->cfg->admin_socket;

	if (text == NULL || strlen(path) >= sizeof(addr.sun_path))
		return -1;
	memcpy(addr.sun_path, path, strlen(path) + 1);
	c->bev = bufferevent_socket_new(c->w->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL)
		return -1;
	bufferevent_setcb(c->bev, on_call_read, NULL, on_call_event, c);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return -1;
	if (bufferevent_write(c->bev, hdr, sizeof(hdr)) < 0 ||
	    bufferevent_write(c->bev, text, len) < 0 ||
	    bufferevent_enable(c->bev, EV_READ | EV_WRITE) < 0)
		return -1;
	return 0;
}

/* Ask the writer; the answer comes back through respond_reply. Consumes op. */
static void ask_writer(struct worker *w, struct http_req *req, struct json_object *op)
{
	struct req_ctx *ctx = req->user;
	struct read_call *c = calloc(1, sizeof(*c));

	if (c == NULL || op == NULL) {
		free(c);
		json_object_put(op);
		worker_respond_error(req, 500, "Internal server error.", NULL);
		return;
	}
	c->w = w;
	c->req = req;
	c->route = ctx->route.id;
	if (call_send(c, op) < 0) {
		log_error("cannot reach the writer at %s: %s", w->cfg->admin_socket,
			  strerror(errno));
		json_object_put(op);
		c->req = NULL;
		call_free(c);
		worker_respond_error(req, 503, "Server is busy, retry later.", RETRY_AFTER);
		return;
	}
	json_object_put(op);
	ctx->call = c;
}

static struct json_object *new_op(const char *name, const struct req_ctx *ctx, bool source)
{
	struct json_object *op = json_object_new_object();

	if (op == NULL)
		return NULL;
	json_object_object_add(op, "op", json_object_new_string(name));
	json_object_object_add(op, "account", json_object_new_string(ctx->account_name));
	if (source)
		json_object_object_add(op, "name",
				       json_object_new_string_len(ctx->route.name,
								  (int)ctx->route.name_len));
	return op;
}

static bool source_visible(struct worker *w, struct http_req *req)
{
	struct req_ctx *ctx = req->user;

	worker_refresh_catalog(w);
	if (w->snap && catalog_snap_source(w->snap, ctx->account_id, ctx->route.name,
					   ctx->route.name_len))
		return true;
	worker_respond_error(req, 404, "Data source not found.", NULL);
	return false;
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
};

/* NULL when the query is valid, else the 422 detail. */
static const char *records_query_parse(const struct http_req *req, struct records_query *q)
{
	char buf[QUERY_VALUE_MAX];
	long n = req->query ? route_query_param(req->query, "name", buf, sizeof(buf)) : -1;
	const char *detail;

	records_query_init(q);
	if (n <= 0 || (detail = records_query_set(q, RQ_SERIES, buf, (size_t)n)) != NULL)
		return "name is required.";
	for (size_t i = 0; i < sizeof(records_params) / sizeof(records_params[0]); i++) {
		n = route_query_param(req->query, records_params[i].param, buf, sizeof(buf));
		if (n == -1)
			continue;
		detail = n < 0 ? records_query_set(q, records_params[i].field, "", 0)
			       : records_query_set(q, records_params[i].field, buf, (size_t)n);
		if (detail != NULL)
			return detail;
	}
	return NULL;
}

static void get_records(struct worker *w, struct http_req *req)
{
	struct req_ctx *ctx = req->user;
	struct records_query q;
	const char *detail = records_query_parse(req, &q);

	if (detail != NULL) {
		worker_respond_error(req, 422, detail, NULL);
		return;
	}
	if (!source_visible(w, req))
		return;
	/* answers 500 itself when the op is NULL */
	ask_writer(w, req, records_query_to_op(&q, ctx->account_name, ctx->route.name,
					       ctx->route.name_len));
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
static void create_source(struct worker *w, struct http_req *req)
{
	struct json_object *body, *name, *op;
	const char *detail;
	int status;

	name = create_body_name(req, &body, &status, &detail);
	if (name == NULL) {
		json_object_put(body);
		worker_respond_error(req, status, detail, NULL);
		return;
	}
	op = new_op("source_create", req->user, false);
	if (op != NULL)
		json_object_object_add(op, "name", json_object_get(name));
	json_object_put(body);
	ask_writer(w, req, op);
}

void read_on_body(struct worker *w, struct http_req *req)
{
	struct req_ctx *ctx = req->user;

	switch (ctx->route.id) {
	case ROUTE_SOURCE_RECORDS:
		get_records(w, req);
		break;
	case ROUTE_SOURCE_SERIES:
	case ROUTE_SOURCE_GET:
		if (source_visible(w, req)) {
			struct json_object *op = new_op("series", ctx, false);

			if (op != NULL)
				json_object_object_add(
					op, "source",
					json_object_new_string_len(ctx->route.name,
								   (int)ctx->route.name_len));
			ask_writer(w, req, op);
		}
		break;
	case ROUTE_SOURCES_LIST:
		ask_writer(w, req, new_op("source_list", ctx, false));
		break;
	case ROUTE_SOURCES_CREATE:
		create_source(w, req);
		break;
	case ROUTE_SOURCE_ARCHIVE:
	case ROUTE_SOURCE_UNARCHIVE:
		if (source_visible(w, req))
			ask_writer(w, req,
				   new_op(ctx->route.id == ROUTE_SOURCE_ARCHIVE ? "source_archive"
										: "source_unarchive",
					  ctx, true));
		break;
	default:
		worker_respond_error(req, 404, "Not found.", NULL);
		break;
	}
}

void read_on_abort(struct worker *w, struct http_req *req)
{
	struct req_ctx *ctx = req->user;

	/* The writer's answer, when it comes, is dropped with the call. */
	ctx->call->req = NULL;
	ctx->call = NULL;
}
