/*
 * writer_call.c - asynchronous calls to the writer over the admin socket.
 *
 * RocksDB has one owner, the writer, so every read is a question to it: one short
 * connection per request, in the worker's loop. Each call owns its bufferevent and
 * frees itself once answered, failed or timed out; the request points to it
 * (req_ctx.pending) until then, and a client that leaves only unhooks itself. A
 * call started with writer_call_start answers a callback instead of a request: the
 * export's pages, asked one after another for a response that is already streaming.
 */
#include "temporis/http/writer_call.h"

#include <errno.h>
#include <stdbool.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
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
#define RETRY_AFTER "Retry-After: 1\r\n"
#define BITS_PER_BYTE 8

struct writer_call {
	struct handler_env *env;
	struct http_req *req;          /* NULL once the client went away */
	struct bufferevent *bev;
	writer_reply_fn *on_reply;
	writer_done_fn *done;          /* writer_call_start's: instead of req and on_reply */
	void *done_arg;
	bool counted;                  /* holds one of env->writer_calls (writer_ask's) */
};

static void call_free(struct writer_call *c)
{
	if (c->bev)
		bufferevent_free(c->bev);
	if (c->counted)
		c->env->writer_calls--;
	free(c);
}

/* This worker's share of ADMIN_WORKER_CONNS. */
static unsigned calls_max(const struct handler_env *env)
{
	unsigned workers = env->cfg->workers > 0 ? (unsigned)env->cfg->workers : 1;

	return ADMIN_WORKER_CONNS / workers > 0 ? ADMIN_WORKER_CONNS / workers : 1;
}

/* req_ctx.forget: the client left; the reply, when it comes, is dropped. */
static void call_forget(void *pending)
{
	struct writer_call *c = pending;

	c->req = NULL;
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
	else
		c->on_reply(c->env, req, reply);
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

static int call_send(struct writer_call *c, struct json_object *op)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = WRITER_CALL_TIMEOUT_S };
	size_t len;
	const char *text = json_object_to_json_string_length(op, JSON_C_TO_STRING_PLAIN, &len);
	uint8_t hdr[PROTO_HDR_LEN];
	const char *path = c->env->cfg->admin_socket;

	if (text == NULL || strlen(path) >= sizeof(addr.sun_path))
		return -1;
	for (unsigned i = 0; i < PROTO_HDR_LEN; i++)
		hdr[i] = (uint8_t)(len >> (BITS_PER_BYTE * i));
	memcpy(addr.sun_path, path, strlen(path) + 1);
	c->bev = bufferevent_socket_new(c->env->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL)
		return -1;
	bufferevent_setcb(c->bev, on_call_read, NULL, on_call_event, c);
	if (bufferevent_set_timeouts(c->bev, &tv, &tv) < 0 ||
	    bufferevent_socket_connect(c->bev, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return -1;
	if (bufferevent_write(c->bev, hdr, sizeof(hdr)) < 0 ||
	    bufferevent_write(c->bev, text, len) < 0 ||
	    bufferevent_enable(c->bev, EV_READ | EV_WRITE) < 0)
		return -1;
	return 0;
}

void writer_ask(struct handler_env *env, struct http_req *req, struct json_object *op,
		writer_reply_fn *on_reply)
{
	struct req_ctx *ctx = req->user;
	struct writer_call *c = calloc(1, sizeof(*c));

	if (c == NULL || op == NULL) {
		free(c);
		json_object_put(op);
		http_respond_error(req, 500, "Internal server error.", NULL);
		return;
	}
	if (env->writer_calls >= calls_max(env)) {
		/* the writer's other connections are kept for the operator */
		free(c);
		json_object_put(op);
		http_respond_error(req, 503, "Server is busy, retry later.", RETRY_AFTER);
		return;
	}
	*c = (struct writer_call){ .env = env, .req = req, .on_reply = on_reply, .counted = true };
	env->writer_calls++;
	if (call_send(c, op) < 0) {
		log_error("cannot reach the writer at %s: %s", env->cfg->admin_socket,
			  strerror(errno));
		json_object_put(op);
		c->req = NULL;
		call_free(c);
		http_respond_error(req, 503, "Server is busy, retry later.", RETRY_AFTER);
		return;
	}
	json_object_put(op);
	ctx->pending = c;
	ctx->forget = call_forget;
}

bool writer_slot_take(struct handler_env *env)
{
	if (env->writer_calls >= calls_max(env))
		return false;
	env->writer_calls++;
	return true;
}

void writer_slot_release(struct handler_env *env)
{
	env->writer_calls--;
}

struct writer_call *writer_call_start(struct handler_env *env, struct json_object *op,
				      writer_done_fn *done, void *arg)
{
	struct writer_call *c = op != NULL ? calloc(1, sizeof(*c)) : NULL;

	if (c == NULL) {
		json_object_put(op);
		return NULL;
	}
	*c = (struct writer_call){ .env = env, .done = done, .done_arg = arg };
	if (call_send(c, op) < 0) {
		log_error("cannot reach the writer at %s: %s", env->cfg->admin_socket,
			  strerror(errno));
		json_object_put(op);
		call_free(c);
		return NULL;
	}
	json_object_put(op);
	return c;
}

void writer_call_cancel(struct writer_call *c)
{
	if (c != NULL)
		call_free(c);
}
