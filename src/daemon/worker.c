/*
 * worker.c - an HTTP worker process: its event loop, routing and authentication,
 * the catalog snapshot it reads from shared memory, commit wake-ups, and drain.
 *
 * A worker owns one lane of the ring (its slot index) and its own copy of the
 * catalog snapshot; it never touches RocksDB. Ingest goes through the lane
 * (http_ingest.c); reads are asked of the writer (http_read.c).
 */
#include "temporis/daemon/worker.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "temporis/base/log.h"
#include "temporis/http/serve_metrics.h"
#include "temporis/base/proctitle.h"
#include "temporis/http/serve_static.h"

#define WORKER_MAX_HEADER_BYTES (64u * 1024u)
#define DRAIN_CHECK_MS 50
#define BEARER "Bearer"

static struct worker the_worker;

void worker_refresh_catalog(struct worker *w)
{
	struct catalog_snap *snap;
	int rc = shm_catalog_fetch(w->shm, &w->cat_gen, &w->cat_buf, &w->cat_cap, &w->cat_len);

	if (rc <= 0) {
		if (rc < 0)
			log_error("catalog fetch: out of memory");
		return;
	}
	snap = catalog_snap_decode(w->cat_buf, w->cat_len);
	if (snap == NULL) {
		log_error("catalog snapshot %llu is malformed; keeping the previous one",
			  (unsigned long long)w->cat_gen);
		return;
	}
	catalog_snap_free(w->snap);
	w->snap = snap;
}

static void ctx_free(struct http_req *req)
{
	free(req->user);
	req->user = NULL;
}

/* The route is known only while the req_ctx lives: count before freeing it. */
static void count_and_free(struct http_req *req, int status)
{
	struct req_ctx *ctx = req->user;

	metrics_count(&the_worker, ctx ? ctx->route.id : ROUTE_NOT_FOUND, status);
	ctx_free(req);
}

void worker_respond(struct http_req *req, int status, const char *content_type,
		    const char *extra_headers, const void *body, size_t len)
{
	count_and_free(req, status);
	http_respond(req, status, content_type, extra_headers, body, len);
	worker_check_drained(&the_worker);
}

void worker_respond_error(struct http_req *req, int status, const char *detail,
			  const char *extra_headers)
{
	count_and_free(req, status);
	http_respond_error(req, status, detail, extra_headers);
	worker_check_drained(&the_worker);
}

/*
 * SPEC section 3 checks 2 and 3. The scheme is case-insensitive (RFC 9110); the
 * token is looked up by its SHA-256, compared in constant time by the snapshot.
 */
static bool authenticate(struct worker *w, struct http_req *req, struct req_ctx *ctx)
{
	const char *auth = http_header(req, "Authorization");
	const char *token;
	uint8_t hash[CATALOG_HASH_LEN];
	const struct catalog_account *acct;

	if (auth == NULL) {
		worker_respond_error(req, 401, "Missing access token.", NULL);
		return false;
	}
	if (strncasecmp(auth, BEARER, strlen(BEARER)) != 0 || auth[strlen(BEARER)] != ' ')
		goto invalid;
	token = auth + strlen(BEARER);
	while (*token == ' ')
		token++;
	if (*token == '\0' || catalog_token_hash(token, strlen(token), hash) < 0)
		goto invalid;
	worker_refresh_catalog(w);
	acct = w->snap ? catalog_snap_token(w->snap, hash) : NULL;
	if (acct == NULL)
		goto invalid;
	ctx->account_id = acct->id;
	memcpy(ctx->account_name, acct->name, sizeof(ctx->account_name));
	return true;
invalid:
	worker_respond_error(req, 401, "Invalid access token.", NULL);
	return false;
}

static bool encoding_supported(const struct http_req *req)
{
	const char *enc = http_header(req, "Content-Encoding");

	return enc == NULL || enc[0] == '\0' || strcasecmp(enc, "identity") == 0 ||
	       strcasecmp(enc, "gzip") == 0;
}

static void on_head(struct http_req *req, void *arg)
{
	struct worker *w = arg;
	struct req_ctx *ctx = calloc(1, sizeof(*ctx));
	char allow[64];

	if (ctx == NULL) {
		metrics_count(w, ROUTE_NOT_FOUND, 500);
		http_respond_error(req, 500, "Internal server error.", NULL);
		return;
	}
	req->user = ctx;
	route_match(req->method, req->path, &ctx->route);
	switch (ctx->route.id) {
	case ROUTE_NOT_FOUND:
		worker_respond_error(req, 404, "Not found.", NULL);
		return;
	case ROUTE_METHOD_NOT_ALLOWED:
		snprintf(allow, sizeof(allow), "Allow: %s\r\n", ctx->route.allow);
		worker_respond_error(req, 405, "Method not allowed.", allow);
		return;
	case ROUTE_HEALTHZ:
		worker_respond(req, 200, "application/json", NULL, "{\"status\":\"ok\"}", 15);
		return;
	case ROUTE_METRICS:
		ctx_free(req);
		metrics_serve(w, req);
		return;
	case ROUTE_STATIC:
		/* The dashboard's files hold no data: the page asks for a token itself. */
		ctx_free(req);
		static_serve(req, w->cfg->web_root, w->cfg->web_lib_root);
		worker_check_drained(w);
		return;
	default:
		break;
	}
	if (!authenticate(w, req, ctx))
		return;
	if (ctx->route.id == ROUTE_INGEST && !encoding_supported(req))
		worker_respond_error(req, 415, "Unsupported Content-Encoding.", NULL);
}

static void on_body(struct http_req *req, void *arg)
{
	struct worker *w = arg;
	struct req_ctx *ctx = req->user;

	if (ctx->route.id == ROUTE_INGEST) {
		metrics_bytes_received(w, req->body_len);
		ingest_on_body(w, req);
	} else
		read_on_body(w, req);
}

static void on_abort(struct http_req *req, void *arg)
{
	struct worker *w = arg;
	struct req_ctx *ctx = req->user;

	if (ctx == NULL)
		return;
	if (ctx->wait != NULL)
		ingest_on_abort(w, req);
	if (ctx->call != NULL)
		read_on_abort(w, req);
	ctx_free(req);
	worker_check_drained(w);
}

static const struct http_handler_ops handler_ops = {
	.on_head = on_head,
	.on_body = on_body,
	.on_abort = on_abort,
};

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	uint64_t count;

	if (read(fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		log_error("read wake-up: %s", strerror(errno));
	ingest_on_commit(w);
}

static void on_room_timer(evutil_socket_t fd, short what, void *arg)
{
	ingest_on_room_timer(arg);
}

static void on_master_gone(evutil_socket_t fd, short what, void *arg)
{
	/* Nothing left to supervise us: in-flight clients see a reset, never a lie. */
	_exit(0);
}

void worker_check_drained(struct worker *w)
{
	if (!w->stopping || w->http == NULL)
		return;
	if (http_server_pending(w->http) == 0 && http_server_connections(w->http) == 0 &&
	    w->acks_head == NULL && w->room_head == NULL)
		event_base_loopexit(w->base, NULL);
}

static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
	worker_check_drained(arg);
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
	struct worker *w = arg;
	struct timeval tick = { .tv_sec = 0, .tv_usec = DRAIN_CHECK_MS * 1000 };

	if (w->stopping)
		return;
	w->stopping = true;
	log_info("draining");
	http_server_stop_accepting(w->http);
	/* Connections also end by themselves (grace, timeouts): look again now and then. */
	w->drain_ev = event_new(w->base, -1, EV_PERSIST, on_drain_tick, w);
	if (w->drain_ev == NULL || event_add(w->drain_ev, &tick) < 0)
		log_error("cannot watch the drain; stopping when requests are answered");
	worker_check_drained(w);
}

static int add_event(struct worker *w, struct event **ev, evutil_socket_t fd, short what,
		     event_callback_fn cb)
{
	*ev = event_new(w->base, fd, what, cb, w);
	if (*ev == NULL || event_add(*ev, NULL) < 0)
		return -1;
	return 0;
}

static int worker_setup(struct worker *w)
{
	struct http_limits lim = {
		.max_header_bytes = WORKER_MAX_HEADER_BYTES,
		.max_body_bytes = w->cfg->max_body_bytes,
		.idle_timeout_s = w->cfg->idle_timeout_s,
		.max_connections = w->cfg->max_connections,
	};

	w->base = event_base_new();
	w->parser = ingest_parser_new();
	if (w->base == NULL || w->parser == NULL)
		return -1;
	ring_producer_init(&w->prod, w->shm, w->index);
	worker_refresh_catalog(w);
	w->room_timer = evtimer_new(w->base, on_room_timer, w);
	if (w->room_timer == NULL)
		return -1;
	if (add_event(w, &w->wake_ev, w->fds->worker_wake[w->index], EV_READ | EV_PERSIST,
		      on_wake) < 0 ||
	    add_event(w, &w->master_ev, w->fds->master_pipe, EV_READ, on_master_gone) < 0 ||
	    add_event(w, &w->sigterm_ev, SIGTERM, EV_SIGNAL | EV_PERSIST, on_stop_signal) < 0)
		return -1;
	w->http = http_server_new(w->base, w->fds->listen_fd, &lim, &handler_ops, w);
	return w->http == NULL ? -1 : 0;
}

void worker_main(const struct cfg *cfg, struct shm *shm, const struct server_fds *fds,
		 unsigned index)
{
	struct worker *w = &the_worker;
	char role[32];

	snprintf(role, sizeof(role), "worker %u", index + 1);
	log_set_role(role);
	proctitle_set("temporisd: worker %u", index + 1);
	w->cfg = cfg;
	w->shm = shm;
	w->fds = fds;
	w->index = index;
	if (worker_setup(w) < 0) {
		log_error("cannot start: %s", strerror(errno));
		_exit(1);
	}
	if (event_base_dispatch(w->base) < 0)
		log_error("event loop failed");
	ingest_fail_all(w);
	http_server_free(w->http);
	_exit(0);
}
