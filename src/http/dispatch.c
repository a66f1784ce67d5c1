/*
 * dispatch.c - from a request head to its handler. In order: the route (404, or 405
 * with Allow), the token when the row needs one (401; Bearer, and for the field's
 * write protocols the schemes their clients send too), then the row's head
 * handler (e.g. 415 for an ingest Content-Encoding we do not read), the body, and the
 * row's body handler. Owns each request's struct req_ctx, from head to answer; every
 * answer a handler sends is counted under its row's /metrics label on the way out.
 */
#include "temporis/http/dispatch.h"

#include <assert.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "temporis/base/clock.h"
#include "temporis/data/catalog.h"
#include "temporis/http/handler.h"
#include "temporis/http/routes.h"
#include "temporis/http/serve_metrics.h"
#include "temporis/http/uri.h"

#define ALLOW_HEADER_MAX (ROUTE_ALLOW_MAX + sizeof("Allow: \r\n"))
/* The longest credentials we decode: a token is far shorter. */
#define CREDENTIALS_MAX 512
#define BASE64_DECODED_MAX(n) ((n) / 4 * 3)

/* "SCHEME credentials" with the scheme case-insensitive (RFC 9110): the credentials, or NULL. */
static const char *after_scheme(const char *auth, const char *scheme)
{
	size_t n = strlen(scheme);

	if (strncasecmp(auth, scheme, n) != 0 || auth[n] != ' ')
		return NULL;
	auth += n;
	while (*auth == ' ')
		auth++;
	return auth;
}

/* HTTP Basic "user:password" in base64: the password (the token) into out, or false. */
static bool basic_password(const char *b64, char *out, size_t cap)
{
	unsigned char raw[BASE64_DECODED_MAX(CREDENTIALS_MAX) + 1];
	size_t n = strlen(b64), plen;
	int len;
	const unsigned char *colon;

	if (n == 0 || n > CREDENTIALS_MAX || n % 4 != 0)
		return false;
	len = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)n);
	if (len < 0)
		return false;
	/* EVP_DecodeBlock counts the padding's zero bytes: take them off. */
	for (size_t i = n; i > 0 && b64[i - 1] == '='; i--)
		len--;
	colon = len > 0 ? memchr(raw, ':', (size_t)len) : NULL;
	if (colon == NULL)
		return false;
	plen = (size_t)len - (size_t)(colon + 1 - raw);
	if (plen >= cap || memchr(colon + 1, '\0', plen) != NULL)
		return false;
	memcpy(out, colon + 1, plen);
	out[plen] = '\0';
	return true;
}

/*
 * The token the request presents, into out: "Bearer TOKEN" always; for the field's
 * protocols (ROUTE_AUTH_FIELD) also "Token TOKEN", HTTP Basic with the token as the
 * password, and ?p=TOKEN. 1 found, 0 none presented, -1 presented but malformed.
 */
static int token_of(const struct http_req *req, enum route_auth mode, char *out, size_t cap)
{
	const char *auth = http_header(req, "Authorization");
	const char *cred;

	if (auth != NULL) {
		cred = after_scheme(auth, "Bearer");
		if (cred == NULL && mode == ROUTE_AUTH_FIELD)
			cred = after_scheme(auth, "Token");
		if (cred != NULL) {
			if (*cred == '\0' || strlen(cred) >= cap)
				return -1;
			strcpy(out, cred);
			return 1;
		}
		if (mode == ROUTE_AUTH_FIELD && (cred = after_scheme(auth, "Basic")) != NULL)
			return basic_password(cred, out, cap) && out[0] != '\0' ? 1 : -1;
		return -1;
	}
	if (mode == ROUTE_AUTH_FIELD && req->query != NULL) {
		long n = uri_query_param(req->query, "p", out, cap);

		if (n > 0)
			return 1;
		if (n != -1)
			return -1;
	}
	return 0;
}

/*
 * The token of an account in the catalog snapshot: its id and name go into ctx. The
 * token is looked up by its SHA-256, compared in constant time by the snapshot.
 * Otherwise answers 401.
 */
static bool authenticate(struct handler_env *env, struct http_req *req, struct req_ctx *ctx,
			 enum route_auth mode)
{
	const struct catalog_snap *snap;
	const struct catalog_account *acct;
	uint8_t hash[CATALOG_HASH_LEN];
	char token[CREDENTIALS_MAX];
	int found = token_of(req, mode, token, sizeof(token));

	if (found == 0) {
		http_respond_error(req, 401, "Missing access token.", NULL);
		return false;
	}
	if (found < 0 || catalog_token_hash(token, strlen(token), hash) < 0)
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
	ctx->start_us = mono_us();
	route_match(req->method, req->path, &m);
	if (m.row == NULL) {
		respond_unrouted(req, &m);
		return;
	}
	ctx->row = m.row;
	req->error_key = m.row->error_key;
	memcpy(ctx->name, m.name, m.name_len + 1);
	ctx->name_len = m.name_len;
	if (m.row->auth != ROUTE_AUTH_NONE && !authenticate(env, req, ctx, m.row->auth))
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

	if (label != ROUTE_NOT_COUNTED) {
		metrics_count(env->stats, label, status);
		if (ctx != NULL)
			metrics_duration(env->stats, label, mono_us() - ctx->start_us);
	}
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
