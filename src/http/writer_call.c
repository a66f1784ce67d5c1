/*
 * writer_call.c - asynchronous calls to the writer over the admin socket.
 *
 * RocksDB has one owner, the writer, so every read is a question to it: one short
 * connection per request, in the worker's loop. Each call owns its bufferevent and
 * frees itself once answered, failed or timed out; the request points to it
 * (req_ctx.pending) until then, and a client that leaves only unhooks itself.
 * Beyond this worker's share of the writer's connections a call waits its turn, in
 * order, for at most CALL_WAIT_MS (then 503): many readers at once queue, not fail.
 * A call started with writer_call_start answers a callback instead of a request: the
 * export's pages, asked one after another under a slot the export holds for its life.
 */
#include "temporis/http/writer_call.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "temporis/base/config.h"
#include "temporis/base/jsonutil.h"
#include "temporis/base/log.h"
#include "temporis/http/handler.h"
#include "temporis/http/server.h"
#include "temporis/ipc/admin_msg.h"
#include "temporis/ipc/proto.h"

#define WRITER_CALL_TIMEOUT_S 30
#define CALL_WAIT_MS 5000              /* a call waits this long for a connection */
#define CALL_QUEUE_MAX 4096            /* calls waiting in one worker; more get 503 */
#define MS_PER_S 1000
#define US_PER_MS 1000
#define RETRY_AFTER "Retry-After: 1\r\n"
#define BITS_PER_BYTE 8

struct writer_call {
	struct handler_env *env;
	struct http_req *req;          /* NULL once the client went away */
	struct bufferevent *bev;       /* NULL while it waits for a connection */
	writer_reply_fn *on_reply;     /* NULL: a body call, answered as body_type */
	const char *body_type;
	writer_done_fn *done;          /* writer_call_start's: instead of req and on_reply */
	void *done_arg;
	bool counted;                  /* holds one of env->writer_calls (writer_ask's) */
	struct buf frame;              /* the op, framed, until it is sent */
	struct event *wait;            /* its CALL_WAIT_MS deadline while it waits */
	TAILQ_ENTRY(writer_call) link; /* in env->calls while waiting */
	bool waiting;
};

static void calls_start_waiting(struct handler_env *env);

static void call_free(struct writer_call *c)
{
	struct handler_env *env = c->env;
	bool held = c->counted;        /* it held one of the share's connections */

	if (c->bev)
		bufferevent_free(c->bev);
	if (c->wait)
		event_free(c->wait);
	buf_free(&c->frame);
	free(c);
	if (held) {
		env->writer_calls--;
		calls_start_waiting(env);
	}
}

static void queue_remove(struct writer_call *c)
{
	if (!c->waiting)
		return;
	TAILQ_REMOVE(&c->env->calls, c, link);
	c->env->calls_waiting--;
	c->waiting = false;
	event_del(c->wait);
}

/* This worker's share of ADMIN_WORKER_CONNS. */
static unsigned calls_max(const struct handler_env *env)
{
	unsigned workers = env->cfg->workers > 0 ? (unsigned)env->cfg->workers : 1;

	return ADMIN_WORKER_CONNS / workers > 0 ? ADMIN_WORKER_CONNS / workers : 1;
}

/* req_ctx.forget: the client left; the reply, when it comes, is dropped, and a call
 * still waiting is never made. */
static void call_forget(void *pending)
{
	struct writer_call *c = pending;

	c->req = NULL;
	if (c->waiting) {
		queue_remove(c);
		call_free(c);
	}
}

/* The request this call answers, unhooked from it; NULL if the client left. */
static struct http_req *call_take_req(struct writer_call *c)
{
	struct http_req *req = c->req;

	if (req != NULL)
		((struct req_ctx *)req->user)->pending = NULL;
	c->req = NULL;
	return req;
}

static void call_fail(struct writer_call *c)
{
	struct http_req *req = call_take_req(c);

	if (c->done != NULL) {
		c->done(c->done_arg, NULL);
		call_free(c);
		return;
	}
	if (req != NULL)
		http_respond_error(req, 503, "Server is busy, retry later.", RETRY_AFTER);
	call_free(c);
}

/* The writer's error codes carry their HTTP status; a failure never shows its text. */
void writer_respond_error(struct http_req *req, struct json_object *reply)
{
	int status = admin_code_status(admin_reply_code(reply));
	const char *msg = ju_str(reply, "error");

	if (status == 503)
		http_respond_error(req, 503, "Server is busy, retry later.", RETRY_AFTER);
	else if (status >= 500 || msg == NULL)
		http_respond_error(req, 500, "Internal server error.", NULL);
	else
		http_respond_error(req, status, msg, NULL);
}

static void call_reply(struct writer_call *c, struct json_object *reply)
{
	struct http_req *req = call_take_req(c);

	if (req == NULL)
		return;
	if (json_object_object_get_ex(reply, "error", NULL))
		writer_respond_error(req, reply);
	else if (c->on_reply != NULL)
		c->on_reply(c->env, req, reply);
	else
		http_respond_error(req, 500, "Internal server error.", NULL);
}

/* A body reply (admin_body_reply), relayed as it is. */
static void call_body(struct writer_call *c, const char *frame, size_t len)
{
	struct http_req *req = call_take_req(c);
	int status = (frame[1] - '0') * 100 + (frame[2] - '0') * 10 + (frame[3] - '0');

	if (req != NULL)
		http_respond(req, status, c->body_type, NULL, frame + PROTO_BODY_HDR_LEN,
			     len - PROTO_BODY_HDR_LEN);
}

static uint32_t frame_len(const uint8_t hdr[PROTO_HDR_LEN])
{
	uint32_t len = 0;

	for (unsigned i = PROTO_HDR_LEN; i-- > 0;)
		len = len << BITS_PER_BYTE | hdr[i];
	return len;
}

static void on_call_read(struct bufferevent *bev, void *arg)
{
	struct writer_call *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	uint8_t hdr[PROTO_HDR_LEN];
	uint32_t len;
	struct json_object *reply;
	const char *text;

	if (evbuffer_copyout(in, hdr, sizeof(hdr)) < (ev_ssize_t)sizeof(hdr))
		return;
	len = frame_len(hdr);
	if (len > PROTO_MAX_FRAME) {
		call_fail(c);
		return;
	}
	if (evbuffer_get_length(in) < sizeof(hdr) + len)
		return;
	text = (const char *)evbuffer_pullup(in, (ev_ssize_t)(sizeof(hdr) + len));
	if (text != NULL && c->body_type != NULL && admin_reply_is_body(text + sizeof(hdr), len)) {
		call_body(c, text + sizeof(hdr), len);
		call_free(c);
		return;
	}
	reply = text ? ju_parse(text + sizeof(hdr), len) : NULL;
	if (reply == NULL) {
		log_error("malformed reply from the writer");
		call_fail(c);
		return;
	}
	if (c->done != NULL)
		c->done(c->done_arg, reply);
	else
		call_reply(c, reply);
	json_object_put(reply);
	call_free(c);
}

static void on_call_event(struct bufferevent *bev, short what, void *arg)
{
	struct writer_call *c = arg;

	if (what & BEV_EVENT_CONNECTED)
		return;
	log_warn("the writer did not answer a read (%s)",
		 what & BEV_EVENT_TIMEOUT ? "timeout" : "connection closed");
	call_fail(c);
}

/* Frame op into c->frame. 0 or -1. */
static int call_frame(struct writer_call *c, struct json_object *op)
{
	size_t len;
	const char *text = json_object_to_json_string_length(op, JSON_C_TO_STRING_PLAIN, &len);
	uint8_t hdr[PROTO_HDR_LEN];

	if (text == NULL || len > PROTO_MAX_FRAME)
		return -1;
	for (unsigned i = 0; i < PROTO_HDR_LEN; i++)
		hdr[i] = (uint8_t)(len >> (BITS_PER_BYTE * i));
	if (buf_append(&c->frame, hdr, sizeof(hdr)) < 0 || buf_append(&c->frame, text, len) < 0)
		return -1;
	return 0;
}

/* Connect and send; a counted call then holds one of the share's connections. 0 or -1. */
static int call_send(struct writer_call *c, bool counted)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = WRITER_CALL_TIMEOUT_S };
	const char *path = c->env->cfg->admin_socket;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(addr.sun_path, path, strlen(path) + 1);
	c->bev = bufferevent_socket_new(c->env->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL)
		return -1;
	if (counted) {
		c->env->writer_calls++;
		c->counted = true;
	}
	bufferevent_setcb(c->bev, on_call_read, NULL, on_call_event, c);
	if (bufferevent_set_timeouts(c->bev, &tv, &tv) < 0 ||
	    bufferevent_socket_connect(c->bev, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    bufferevent_write(c->bev, c->frame.data, c->frame.len) < 0 ||
	    bufferevent_enable(c->bev, EV_READ | EV_WRITE) < 0)
		return -1;
	buf_free(&c->frame);
	return 0;
}

/* Send c now; when that fails its client gets 503 and c is freed. */
static void call_start(struct writer_call *c)
{
	if (call_send(c, true) == 0)
		return;
	log_error("cannot reach the writer at %s: %s", c->env->cfg->admin_socket,
		  strerror(errno));
	call_fail(c);
}

/* A connection of the share is free: the calls waiting longest go first. */
static void calls_start_waiting(struct handler_env *env)
{
	while (!TAILQ_EMPTY(&env->calls) && env->writer_calls < calls_max(env)) {
		struct writer_call *c = TAILQ_FIRST(&env->calls);

		queue_remove(c);
		call_start(c);
	}
}

static void on_wait_expired(evutil_socket_t fd, short what, void *arg)
{
	struct writer_call *c = arg;

	(void)fd;
	(void)what;
	queue_remove(c);
	call_fail(c);
}

/* Queue c until a connection of the share is free. 0, or -1 (the queue is full). */
static int call_wait(struct writer_call *c)
{
	struct handler_env *env = c->env;
	struct timeval tv = { .tv_sec = CALL_WAIT_MS / MS_PER_S,
			      .tv_usec = CALL_WAIT_MS % MS_PER_S * US_PER_MS };

	if (env->calls_waiting >= CALL_QUEUE_MAX)
		return -1;
	c->wait = evtimer_new(env->base, on_wait_expired, c);
	if (c->wait == NULL || evtimer_add(c->wait, &tv) < 0)
		return -1;
	TAILQ_INSERT_TAIL(&env->calls, c, link);
	env->calls_waiting++;
	c->waiting = true;
	return 0;
}

static void ask(struct handler_env *env, struct http_req *req, struct json_object *op,
		writer_reply_fn *on_reply, const char *body_type)
{
	struct req_ctx *ctx = req->user;
	struct writer_call *c = calloc(1, sizeof(*c));
	int rc;

	if (c == NULL || op == NULL) {
		free(c);
		json_object_put(op);
		http_respond_error(req, 500, "Internal server error.", NULL);
		return;
	}
	*c = (struct writer_call){ .env = env, .req = req, .on_reply = on_reply,
				   .body_type = body_type };
	rc = call_frame(c, op);
	json_object_put(op);
	if (rc < 0) {
		c->req = NULL;
		call_free(c);
		http_respond_error(req, 500, "Internal server error.", NULL);
		return;
	}
	ctx->pending = c;
	ctx->forget = call_forget;
	/* the writer's other connections are kept for the operator: beyond this worker's
	 * share, wait in line */
	if (env->writer_calls < calls_max(env) && TAILQ_EMPTY(&env->calls))
		call_start(c);
	else if (call_wait(c) < 0)
		call_fail(c);
}

void writer_ask(struct handler_env *env, struct http_req *req, struct json_object *op,
		writer_reply_fn *on_reply)
{
	ask(env, req, op, on_reply, NULL);
}

void writer_ask_body(struct handler_env *env, struct http_req *req, struct json_object *op,
		     const char *content_type)
{
	ask(env, req, op, NULL, content_type);
}

bool writer_slot_take(struct handler_env *env)
{
	if (env->writer_calls >= calls_max(env) || !TAILQ_EMPTY(&env->calls))
		return false;
	env->writer_calls++;
	return true;
}

void writer_slot_release(struct handler_env *env)
{
	env->writer_calls--;
	calls_start_waiting(env);
}

struct writer_call *writer_call_start(struct handler_env *env, struct json_object *op,
				      writer_done_fn *done, void *arg)
{
	struct writer_call *c = op != NULL ? calloc(1, sizeof(*c)) : NULL;
	int rc;

	if (c == NULL) {
		json_object_put(op);
		return NULL;
	}
	*c = (struct writer_call){ .env = env, .done = done, .done_arg = arg };
	rc = call_frame(c, op);
	json_object_put(op);
	if (rc < 0 || call_send(c, false) < 0) {
		log_error("cannot reach the writer at %s: %s", env->cfg->admin_socket,
			  strerror(errno));
		call_free(c);
		return NULL;
	}
	return c;
}

void writer_call_cancel(struct writer_call *c)
{
	if (c != NULL)
		call_free(c);
}
