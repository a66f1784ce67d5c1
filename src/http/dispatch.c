/*
 * dispatch.c - from a request head to its handler. In order: the route (404, or 405
 * with Allow), the Bearer token when the row needs one (401), then the row's head
 * handler (e.g. 415 for an ingest Content-Encoding we do not read), the body, and the
 * row's body handler. Owns each request's struct req_ctx, from head to answer; every
 * answer a handler sends is counted under its row's /metrics label on the way out.
 */
#include "temporis/http/dispatch.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "temporis/data/catalog.h"
#include "temporis/http/handler.h"
#include "temporis/http/routes.h"
#include "temporis/http/serve_metrics.h"

#define BEARER "Bearer"
#define ALLOW_HEADER_MAX (ROUTE_ALLOW_MAX + sizeof("Allow: \r\n"))

/*
 * A Bearer token of an account in the catalog snapshot: its id and name go into ctx.
 * The scheme is case-insensitive (RFC 9110); the token is looked up by its SHA-256,
 * compared in constant time by the snapshot. Otherwise answers 401.
 */
static bool authenticate(struct handler_env *env, struct http_req *req, struct req_ctx *ctx)
{
	const char *auth = http_header(req, "Authorization");
	const struct catalog_snap *snap;
	const struct catalog_account *acct;
	uint8_t hash[CATALOG_HASH_LEN];
	const char *token;

	if (auth == NULL) {
		http_respond_error(req, 401, "Missing access token.", NULL);
		return false;
	}
	if (strncasecmp(auth, BEARER, strlen(BEARER)) != 0 || auth[strlen(BEARER)] != ' ')
		goto invalid;
	token = auth + strlen(BEARER);
	while (*token == ' ')
		token++;
	if (*token == '\0' || catalog_token_hash(token, strlen(token), hash) < 0)
		goto invalid;
	snap = handler_snapshot(env);
	acct = snap ? catalog_snap_token(snap, hash) : NULL;
	if (acct == NULL)
		goto invalid;
	ctx->account_id = acct->id;
	memcpy(ctx->account_name, acct->name, sizeof(ctx->account_name));
	return true;
invalid:
	http_respond_error(req, 401, "Invalid access token.", NULL);
	return false;
}

/* No row's path is 404; a row's path with another method is 405 naming the methods. */
static void respond_unrouted(struct http_req *req, const struct route_match *m)
{
	char allow[ALLOW_HEADER_MAX];

	if (m->id == ROUTE_NOT_FOUND) {
		http_respond_error(req, 404, "Not found.", NULL);
		return;
	}
	snprintf(allow, sizeof(allow), "Allow: %s\r\n", m->allow);
	http_respond_error(req, 405, "Method not allowed.", allow);
}

static void on_head(struct http_req *req, void *arg)
{
	struct handler_env *env = arg;
	struct req_ctx *ctx = calloc(1, sizeof(*ctx));
	struct route_match m;

	if (ctx == NULL) {
		http_respond_error(req, 500, "Internal server error.", NULL);
		return;
	}
	req->user = ctx;
	route_match(req->method, req->path, &m);
	if (m.row == NULL) {
		respond_unrouted(req, &m);
		return;
	}
	ctx->row = m.row;
	memcpy(ctx->name, m.name, m.name_len + 1);
	ctx->name_len = m.name_len;
	if (m.row->auth && !authenticate(env, req, ctx))
		return;
	if (m.row->on_head)
		m.row->on_head(env, req);
}

static void on_body(struct http_req *req, void *arg)
{
	struct req_ctx *ctx = req->user;

	/* A row without a body handler answers from the head, so no body reaches here. */
	assert(ctx->row != NULL && ctx->row->on_body != NULL);
	ctx->row->on_body(arg, req);
}

static void ctx_free(struct http_req *req)
{
	free(req->user);
	req->user = NULL;
}

/* Every answer of a handler passes here: count it, then the request is over for us. */
static void on_respond(struct http_req *req, int status, void *arg)
{
	struct handler_env *env = arg;
	struct req_ctx *ctx = req->user;
	enum metric_route label = ctx && ctx->row ? ctx->row->label : METRIC_ROUTE_OTHER;

	if (label != ROUTE_NOT_COUNTED)
		metrics_count(env->stats, label, status);
	ctx_free(req);
}

static void on_abort(struct http_req *req, void *arg)
{
	struct req_ctx *ctx = req->user;

	if (ctx == NULL)
		return;
	if (ctx->pending != NULL)
		ctx->forget(ctx->pending);
	ctx_free(req);
}

const struct http_handler_ops dispatch_ops = {
	.on_head = on_head,
	.on_body = on_body,
	.on_abort = on_abort,
	.on_respond = on_respond,
};
