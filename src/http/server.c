/*
 * server.c - the workers' HTTP/1.1 server on libevent bufferevents.
 *
 * Owns every client connection of one worker (struct http_conn): its bufferevent, its
 * single timer, the head and body buffers reused across keep-alive requests, and the
 * lingering close that lets a client read an early error before its socket is dropped.
 * The request syntax itself is parse.c's.
 */
#include "temporis/http/server.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "temporis/base/buf.h"
#include "temporis/base/log.h"
#include "temporis/http/parse.h"
#include "temporis/http/response.h"

/* Input buffered while a request is out of our hands; enough to notice EOF. */
#define HTTP_READ_HIGH_WM (64 * 1024)
/* A body buffer that grew past this is freed once the connection is idle. */
#define HTTP_BODY_KEEP_MAX (1024 * 1024)
/* Lingering close: how long and how much input we discard after the last response. */
#define HTTP_LINGER_TIMEOUT_S 2
#define HTTP_DRAIN_GRACE_S 1      /* idle connections at stop: wait this long for a request */
#define HTTP_LINGER_MAX_BYTES (8 * 1024 * 1024)
/* Lingering/refused connections allowed at least this many slots besides the active ones. */
#define HTTP_LINGER_MIN_SLOTS 64
/* Longest chunk-size or trailer line. */
#define HTTP_LINE_MAX 4096
#define HTTP_ACCEPT_RETRY_US (100 * 1000)
#define MAKE_ROOM_PEEK_MAX 4      /* oldest waiting connections looked at to make room */
#define HTTP_ERROR_BODY_MAX 512   /* an error body besides its detail's escaped bytes */
#define JSON_ESCAPED_MAX 6        /* bytes one detail byte may become: \u00XX */
/* Largest single copy out of an evbuffer (evbuffer_remove returns int). */
#define HTTP_COPY_STEP (1024 * 1024)
#define HTTP_DEFAULT_MAX_HEADER (16 * 1024)
/* First head buffer of a connection; it grows to the largest head seen. */
#define HTTP_HEAD_INITIAL 1024

#define HTTP_CONTINUE "HTTP/1.1 100 Continue\r\n\r\n"

enum conn_state {
	CONN_IDLE,      /* keep-alive wait: nothing of a request received yet */
	CONN_HEAD,      /* reading the request head */
	CONN_BODY,      /* reading the request body */
	CONN_HANDLER,   /* the handler owns the request; waiting for http_respond */
	CONN_WRITING,   /* flushing a response */
	CONN_STREAMING, /* a streamed response's body is being made (http_stream_*) */
	CONN_LINGER,    /* write side shut; discarding input until EOF or timeout */
	CONN_CLOSING,   /* close scheduled from a context that must not free */
};

struct http_conn {
	LIST_ENTRY(http_conn) link;
	TAILQ_ENTRY(http_conn) wait_link; /* in srv->waiting while waiting is true */
	bool waiting;                    /* idle, or its head not yet complete */
	bool arrived_with_data;          /* request bytes here before its read: not idle */
	struct http_server *srv;
	struct bufferevent *bev;
	struct event *timer;             /* idle, request deadline, write stall, linger */
	enum conn_state state;
	bool passive;                    /* refused or lingering: counted in npassive */
	bool keep_alive;                 /* the request allows reusing the connection */
	bool must_close;                 /* close after the current response */
	bool peer_eof;
	bool handler_owns;               /* on_head delivered, no response: on_abort owed */
	struct http_req req;             /* points into head; reset per request */
	struct buf head;                 /* head copy + path copy, parsed in place */
	size_t head_scan;                /* where http_head_end resumes */
	struct buf body;                 /* reused across requests on this connection */
	struct http_chunked chunk;       /* where a chunked body's decoding stands */
	size_t out_mark;                 /* output length at the last stall check */
	size_t discarded;                /* bytes thrown away while lingering */
	/* CONN_STREAMING: the producer and whether it waits for the output to drain */
	struct http_stream_ops stream;
	void *stream_arg;
	bool stream_more_due;            /* written since the last on_more: call it */
	bool stream_unframed;            /* HTTP/1.0: no chunks, the close ends the body */
};

struct http_server {
	struct event_base *base;
	struct evconnlistener *listener;
	struct event *retry;             /* re-enables accept after EMFILE and friends */
	struct http_limits lim;
	struct http_handler_ops ops;
	void *arg;
	LIST_HEAD(, http_conn) conns;
	/* Active connections with no request handed over (idle keep-alive, or a head
	 * still arriving), oldest first: at max_connections the oldest one is closed
	 * to let a new client in, as nginx reuses idle connections. */
	TAILQ_HEAD(, http_conn) waiting;
	size_t nactive;                  /* counted against max_connections */
	size_t npassive;                 /* refused (503) or lingering */
	size_t pending;
	bool stopping;
	struct buf out_head;             /* a response head being formatted, reused */
	struct buf out_json;             /* an error body being formatted, reused */
};

/* ---- small helpers ---------------------------------------------------- */

static void conn_arm(struct http_conn *c, uint32_t seconds)
{
	struct timeval tv = { .tv_sec = seconds, .tv_usec = 0 };

	if (seconds == 0) {
		if (event_del(c->timer) < 0)
			log_warn("http: cannot cancel a connection timer");
		return;
	}
	if (evtimer_add(c->timer, &tv) < 0)
		log_error("http: cannot arm a connection timer");
}

static void conn_read_limit(struct http_conn *c, size_t high)
{
	bufferevent_setwatermark(c->bev, EV_READ, 0, high);
}

static void req_take(struct http_conn *c)
{
	c->handler_owns = true;
	c->srv->pending++;
}

static void req_release(struct http_conn *c)
{
	c->handler_owns = false;
	c->srv->pending--;
}

/* The handler hears of every request it saw in on_head exactly once: a response or this. */
static void req_abort(struct http_conn *c)
{
	if (!c->handler_owns)
		return;
	req_release(c);
	if (c->srv->ops.on_abort)
		c->srv->ops.on_abort(&c->req, c->srv->arg);
}

static size_t linger_slots(const struct http_server *s)
{
	return s->lim.max_connections > HTTP_LINGER_MIN_SLOTS ? s->lim.max_connections
							      : HTTP_LINGER_MIN_SLOTS;
}

static void wait_enter(struct http_conn *c)
{
	if (c->passive || c->waiting || c->arrived_with_data)
		return;
	TAILQ_INSERT_TAIL(&c->srv->waiting, c, wait_link);
	c->waiting = true;
}

static void wait_leave(struct http_conn *c)
{
	if (!c->waiting)
		return;
	TAILQ_REMOVE(&c->srv->waiting, c, wait_link);
	c->waiting = false;
}

/* A stream cut short by the connection: its producer hears of it once. */
static void stream_close(struct http_conn *c)
{
	if (c->state != CONN_STREAMING)
		return;
	c->state = CONN_CLOSING;
	if (c->stream.on_close)
		c->stream.on_close(&c->req, c->stream_arg);
}

static void conn_free(struct http_conn *c)
{
	struct http_server *s = c->srv;

	stream_close(c);
	req_abort(c);
	wait_leave(c);
	LIST_REMOVE(c, link);
	if (c->passive)
		s->npassive--;
	else
		s->nactive--;
	event_free(c->timer);
	bufferevent_free(c->bev);
	buf_free(&c->head);
	buf_free(&c->body);
	free(c);
}

/* Used where the caller's stack still references c (inside handler callbacks). */
static void conn_schedule_close(struct http_conn *c)
{
	c->state = CONN_CLOSING;
	if (bufferevent_disable(c->bev, EV_READ | EV_WRITE) < 0)
		log_warn("http: cannot disable a connection");
	event_active(c->timer, EV_TIMEOUT, 1);
}

/* ---- responses -------------------------------------------------------- */

static int write_head(struct evbuffer *out, struct http_conn *c, int status,
		      const char *ctype, const char *extra, size_t len)
{
	struct buf *head = &c->srv->out_head;
	const char *connection = NULL;

	if (c->must_close)
		connection = "close";
	else if (c->req.version_minor == 0)
		connection = "keep-alive";   /* HTTP/1.0 closes unless told otherwise */
	buf_reset(head);
	if (http_response_head(head, status, ctype, len, connection, extra) < 0)
		return -1;
	return evbuffer_add(out, head->data, head->len);
}

/* Queue a response for the current request; the write callback finishes it. */
static void conn_write_response(struct http_conn *c, int status, const char *ctype,
				const char *extra, const void *body, size_t len)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	bool send_body = c->req.method != HTTP_HEAD && http_status_has_body(status);

	wait_leave(c);
	if (!c->keep_alive || c->peer_eof || c->srv->stopping)
		c->must_close = true;
	if (write_head(out, c, status, ctype, extra, len) < 0)
		goto fail;
	if (send_body && len > 0 && evbuffer_add(out, body, len) < 0)
		goto fail;
	c->state = CONN_WRITING;
	c->out_mark = evbuffer_get_length(out);
	conn_read_limit(c, HTTP_READ_HIGH_WM);
	conn_arm(c, c->srv->lim.idle_timeout_s);
	return;
fail:
	log_error("http: cannot queue a %d response", status);
	conn_schedule_close(c);
}

static void conn_write_json(struct http_conn *c, int status, const char *key,
			    const char *detail, const char *extra)
{
	struct buf *body = &c->srv->out_json;
	int n = -1;

	buf_reset(body);
	/* Worst case every byte becomes \u00XX, plus the braces and key. */
	if (buf_reserve(body, strlen(detail) * JSON_ESCAPED_MAX + HTTP_ERROR_BODY_MAX, 0) == 0)
		n = http_error_body(body->data, body->cap, key, detail);
	if (n < 0) {
		log_error("http: cannot build an error body");
		conn_schedule_close(c);
		return;
	}
	conn_write_response(c, status, "application/json", extra, body->data, (size_t)n);
}

/* A protocol error answered by this layer: the request is over and so is the connection. */
static void conn_fail(struct http_conn *c, int status)
{
	const char *key = c->req.error_key;   /* set by a handler's on_head, if it got that far */

	req_abort(c);
	c->must_close = true;
	conn_write_json(c, status, key, http_protocol_detail(status), NULL);
}

/* The handler's response starts here; false if req is not awaiting one. */
static bool respond_begin(struct http_req *req, int status)
{
	struct http_conn *c = req->conn;

	if (!c->handler_owns) {
		log_error("http: response %d to a request that is not pending", status);
		return false;
	}
	req_release(c);
	if (c->srv->ops.on_respond)
		c->srv->ops.on_respond(req, status, c->srv->arg);
	/* Answered before its body was read: the body is never read, so the stream is lost. */
	if (c->state == CONN_BODY ||
	    (c->state == CONN_HEAD && (req->chunked || req->content_length > 0)))
		c->must_close = true;
	return true;
}

void http_respond(struct http_req *req, int status, const char *content_type,
		  const char *extra_headers, const void *body, size_t len)
{
	if (respond_begin(req, status))
		conn_write_response(req->conn, status, content_type, extra_headers, body, len);
}

void http_respond_error(struct http_req *req, int status, const char *detail,
			const char *extra_headers)
{
	const char *key = req->error_key;    /* respond_begin lets the handler go */

	if (respond_begin(req, status))
		conn_write_json(req->conn, status, key, detail, extra_headers);
}

/* ---- streamed responses ------------------------------------------------ */

#define CHUNK_HEAD_MAX 24                /* "%zx\r\n" of any size_t */

int http_stream_start(struct http_req *req, int status, const char *content_type,
		      const char *extra_headers, const struct http_stream_ops *ops, void *arg)
{
	struct http_conn *c = req->conn;
	bool unframed = req->version_minor == 0;

	if (!respond_begin(req, status))
		return -1;
	if (req->method == HTTP_HEAD || !http_status_has_body(status)) {
		conn_write_response(c, status, content_type, extra_headers, NULL,
				    unframed ? HTTP_BODY_TO_CLOSE : HTTP_BODY_CHUNKED);
		return -1;
	}
	wait_leave(c);
	/* HTTP/1.0 has no chunks: the body ends where the connection does. */
	if (unframed || !c->keep_alive || c->peer_eof || c->srv->stopping)
		c->must_close = true;
	if (write_head(bufferevent_get_output(c->bev), c, status, content_type, extra_headers,
		       unframed ? HTTP_BODY_TO_CLOSE : HTTP_BODY_CHUNKED) < 0) {
		log_error("http: cannot queue a streamed %d response", status);
		conn_schedule_close(c);
		return -1;
	}
	c->state = CONN_STREAMING;
	c->stream = *ops;
	c->stream_arg = arg;
	c->stream_more_due = false;
	c->stream_unframed = unframed;
	c->out_mark = evbuffer_get_length(bufferevent_get_output(c->bev));
	/* The write callback now means "below the low watermark", not "all flushed". */
	bufferevent_setwatermark(c->bev, EV_WRITE, HTTP_STREAM_LOW_WM, 0);
	conn_read_limit(c, HTTP_READ_HIGH_WM);
	conn_arm(c, c->srv->lim.idle_timeout_s);
	return 0;
}

int http_stream_write(struct http_req *req, const void *data, size_t len)
{
	struct http_conn *c = req->conn;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	char head[CHUNK_HEAD_MAX];
	int n;

	if (c->state != CONN_STREAMING)
		return -1;
	if (len == 0)
		return 0;
	n = snprintf(head, sizeof(head), "%zx\r\n", len);
	if ((!c->stream_unframed &&
	     (n < 0 || (size_t)n >= sizeof(head) || evbuffer_add(out, head, (size_t)n) < 0)) ||
	    evbuffer_add(out, data, len) < 0 ||
	    (!c->stream_unframed && evbuffer_add(out, "\r\n", 2) < 0)) {
		log_error("http: cannot queue %zu bytes of a streamed response", len);
		http_stream_abort(req);
		return -1;
	}
	c->stream_more_due = true;
	c->out_mark = evbuffer_get_length(out);
	return 0;
}

void http_stream_end(struct http_req *req)
{
	static const char last_chunk[] = "0\r\n\r\n";
	struct http_conn *c = req->conn;
	struct evbuffer *out = bufferevent_get_output(c->bev);

	if (c->state != CONN_STREAMING)
		return;
	if (!c->stream_unframed && evbuffer_add(out, last_chunk, strlen(last_chunk)) < 0) {
		http_stream_abort(req);
		return;
	}
	c->state = CONN_WRITING;
	c->stream_more_due = false;
	c->out_mark = evbuffer_get_length(out);
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	/* An empty output gets no write callback: finish the response from the loop. */
	if (c->out_mark == 0)
		bufferevent_trigger(c->bev, EV_WRITE, BEV_TRIG_DEFER_CALLBACKS);
}

void http_stream_abort(struct http_req *req)
{
	struct http_conn *c = req->conn;

	if (c->state != CONN_STREAMING)
		return;
	c->stream.on_close = NULL;           /* the producer knows: it is the caller */
	conn_schedule_close(c);
}

/* The output drained below the watermark: the producer may add more. */
static void stream_drained(struct http_conn *c)
{
	if (!c->stream_more_due)
		return;
	c->stream_more_due = false;
	conn_arm(c, c->srv->lim.idle_timeout_s);
	if (c->stream.on_more)
		c->stream.on_more(&c->req, c->stream_arg);
}

/* Copy the head out of the input, with the room http_parse_head needs. */
static int head_store(struct http_conn *c, const char *p, size_t len)
{
	buf_reset(&c->head);
	if (buf_reserve(&c->head, HTTP_HEAD_ROOM(len), HTTP_HEAD_INITIAL) < 0)
		return -1;
	memcpy(c->head.data, p, len);
	c->head.data[len] = '\0';
	c->head.len = len;
	return 0;
}

/* ---- body reading ----------------------------------------------------- */

/*
 * Room for need bytes of body in all. A body of known length is allocated at its size
 * the first time; chunks grow it by doubling. need never exceeds max_body_bytes.
 */
static int body_reserve(struct http_conn *c, size_t need)
{
	return buf_reserve(&c->body, need - c->body.len, need);
}

static int body_copy(struct http_conn *c, struct evbuffer *in, size_t n)
{
	while (n > 0) {
		size_t step = n < HTTP_COPY_STEP ? n : HTTP_COPY_STEP;

		if (evbuffer_remove(in, c->body.data + c->body.len, step) != (int)step)
			return -1;
		c->body.len += step;
		n -= step;
	}
	return 0;
}

static void conn_body_done(struct http_conn *c)
{
	static const uint8_t no_body[1];

	/* Never NULL, so handlers can pass it straight to a parser. */
	c->req.body = c->body.data ? (const uint8_t *)c->body.data : no_body;
	c->req.body_len = c->body.len;
	c->state = CONN_HANDLER;
	conn_arm(c, 0);
	conn_read_limit(c, HTTP_READ_HIGH_WM);
	c->srv->ops.on_body(&c->req, c->srv->arg);
}

static void read_fixed_body(struct http_conn *c, struct evbuffer *in)
{
	size_t need = (size_t)c->req.content_length - c->body.len;
	size_t avail = evbuffer_get_length(in);

	if (body_copy(c, in, avail < need ? avail : need) < 0) {
		conn_fail(c, 500);
		return;
	}
	if (c->body.len == (size_t)c->req.content_length)
		conn_body_done(c);
}

/* One line without its end into buf: 1 read, 0 incomplete, -1 longer than cap - 1. */
static int take_line(struct evbuffer *in, char *buf, size_t cap, size_t *len)
{
	size_t eol_len = 0;
	struct evbuffer_ptr p = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);

	if (p.pos < 0)
		return evbuffer_get_length(in) >= cap ? -1 : 0;
	if ((size_t)p.pos >= cap)
		return -1;
	if (evbuffer_remove(in, buf, (size_t)p.pos) != (int)p.pos ||
	    evbuffer_drain(in, eol_len) < 0)
		return -1;
	buf[p.pos] = '\0';
	*len = (size_t)p.pos;
	return 1;
}

static int chunk_data(struct http_conn *c, struct evbuffer *in)
{
	size_t avail = evbuffer_get_length(in);
	size_t n = c->chunk.left < avail ? (size_t)c->chunk.left : avail;

	if (n == 0)
		return 0;
	if (body_copy(c, in, n) < 0) {
		conn_fail(c, 500);
		return -1;
	}
	http_chunked_data(&c->chunk, n);
	return 1;
}

/* One step of a chunked body: 1 to go on, 0 to wait or when done, -1 after an error. */
static int chunk_step(struct http_conn *c, struct evbuffer *in)
{
	char line[HTTP_LINE_MAX];
	size_t len = 0;
	int r, st;

	if (c->chunk.part == HTTP_CHUNK_DATA)
		return chunk_data(c, in);
	r = take_line(in, line, sizeof(line), &len);
	if (r == 0)
		return 0;
	st = r < 0 ? 400
		   : http_chunked_line(&c->chunk, line, len,
				       c->srv->lim.max_body_bytes - c->body.len,
				       c->srv->lim.max_header_bytes);
	if (st == 0 && c->chunk.part == HTTP_CHUNK_DATA &&
	    body_reserve(c, c->body.len + (size_t)c->chunk.left) < 0)
		st = 500;
	if (st) {
		conn_fail(c, st);
		return -1;
	}
	if (c->chunk.part != HTTP_CHUNK_DONE)
		return 1;
	conn_body_done(c);
	return 0;
}

static void read_chunked_body(struct http_conn *c, struct evbuffer *in)
{
	while (chunk_step(c, in) > 0)
		continue;
}

/* After on_head returned without a response: check size and Expect, then read. */
static int conn_body_begin(struct http_conn *c)
{
	struct http_req *req = &c->req;
	bool send_continue = false;
	int st = http_body_check(req, c->srv->lim.max_body_bytes, &send_continue);

	if (st == 0 && send_continue &&
	    evbuffer_add(bufferevent_get_output(c->bev), HTTP_CONTINUE, strlen(HTTP_CONTINUE)) < 0)
		st = 500;
	if (st == 0 && req->content_length > 0 && body_reserve(c, (size_t)req->content_length) < 0)
		st = 500;
	if (st) {
		conn_fail(c, st);
		return -1;
	}
	c->chunk = (struct http_chunked){ .part = HTTP_CHUNK_SIZE };
	c->state = CONN_BODY;
	return 1;
}

/* ---- the connection state machine -------------------------------------- */

static void skip_blank_lines(struct evbuffer *in)
{
	char ch;

	/* RFC 9112 2.2: ignore empty lines before a request line (old clients send CRLF after a body). */
	while (evbuffer_copyout(in, &ch, 1) == 1 && (ch == '\r' || ch == '\n'))
		if (evbuffer_drain(in, 1) < 0)
			return;
}

static int conn_head_done(struct http_conn *c)
{
	struct http_server *s = c->srv;

	wait_leave(c);
	/* The body's deadline, for the rest of the request. */
	conn_arm(c, s->lim.idle_timeout_s);
	req_take(c);
	if (s->ops.on_head)
		s->ops.on_head(&c->req, s->arg);
	if (c->state != CONN_HEAD)
		return 0;                    /* answered in on_head */
	if (c->req.chunked || c->req.content_length > 0)
		return conn_body_begin(c);
	conn_body_done(c);
	return 0;
}

/* Returns 1 when the head was parsed and reading goes on, else 0. */
static int conn_read_head(struct http_conn *c, struct evbuffer *in)
{
	size_t max = c->srv->lim.max_header_bytes, avail, window, end = 0;
	const char *p;
	int st;

	if (c->arrived_with_data) {
		/* read at last: from now on it may make room like any other */
		c->arrived_with_data = false;
		wait_enter(c);
	}
	if (c->state == CONN_IDLE)
		skip_blank_lines(in);
	avail = evbuffer_get_length(in);
	if (avail == 0)
		return 0;
	if (c->state == CONN_IDLE) {
		/* The head's deadline starts with its first byte; a head that trickles in
		 * (slowloris) is answered 408 after header_timeout_s. */
		c->state = CONN_HEAD;
		c->head_scan = 0;
		conn_arm(c, c->srv->lim.header_timeout_s);
	}
	window = avail < max ? avail : max;
	p = (const char *)evbuffer_pullup(in, (ev_ssize_t)window);
	if (!p)
		st = 500;
	else if ((end = http_head_end(p, window, &c->head_scan)) == 0)
		st = avail >= max ? 431 : 0;
	else if (head_store(c, p, end) < 0 || evbuffer_drain(in, end) < 0)
		st = 500;
	else
		st = http_parse_head(c->head.data, c->head.len, &c->req, &c->keep_alive);
	if (st) {
		conn_fail(c, st);
		return 0;
	}
	if (end == 0)
		return 0;
	return conn_head_done(c);
}

/* Parse and dispatch buffered input until a request is handed over or input runs out. */
static int conn_process(struct http_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);

	for (;;) {
		if (c->state == CONN_IDLE || c->state == CONN_HEAD) {
			if (conn_read_head(c, in) <= 0)
				return 0;
		} else if (c->state == CONN_BODY) {
			if (c->req.chunked)
				read_chunked_body(c, in);
			else
				read_fixed_body(c, in);
			return 0;
		} else {
			return 0;
		}
	}
}

static void conn_reset(struct http_conn *c)
{
	memset(&c->req, 0, sizeof(c->req));
	c->req.conn = c;
	c->req.content_length = -1;
	c->keep_alive = false;
	c->head_scan = 0;
	buf_reset(&c->body);
	if (c->body.cap > HTTP_BODY_KEEP_MAX)
		buf_free(&c->body);
	c->state = CONN_IDLE;
	conn_read_limit(c, 0);
	conn_arm(c, c->srv->lim.idle_timeout_s);
	wait_enter(c);
}

static void conn_discard(struct http_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t n = evbuffer_get_length(in);

	if (evbuffer_drain(in, n) < 0) {
		conn_free(c);
		return;
	}
	c->discarded += n;
	if (c->discarded > HTTP_LINGER_MAX_BYTES)
		conn_free(c);
}

/*
 * Closing right after the response would make the kernel answer unread input with an
 * RST, which can destroy the response before the client reads it. So shut the write
 * side and read-and-discard until the client closes, for a bounded time and volume.
 */
static void conn_close_after_response(struct http_conn *c)
{
	struct http_server *s = c->srv;

	if (c->peer_eof || (!c->passive && s->npassive >= linger_slots(s)) ||
	    shutdown(bufferevent_getfd(c->bev), SHUT_WR) < 0) {
		conn_free(c);
		return;
	}
	if (!c->passive) {
		c->passive = true;
		s->nactive--;
		s->npassive++;
	}
	c->state = CONN_LINGER;
	c->discarded = 0;
	conn_read_limit(c, 0);
	if (bufferevent_disable(c->bev, EV_WRITE) < 0 || bufferevent_enable(c->bev, EV_READ) < 0) {
		conn_free(c);
		return;
	}
	conn_arm(c, HTTP_LINGER_TIMEOUT_S);
	conn_discard(c);
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct http_conn *c = arg;

	if (c->state == CONN_LINGER)
		conn_discard(c);
	else if (c->state <= CONN_BODY)
		conn_process(c);
	/* Otherwise pipelined input waits until the current response is flushed. */
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct http_conn *c = arg;

	if (c->state == CONN_STREAMING) {
		stream_drained(c);
		return;
	}
	if (c->state != CONN_WRITING)
		return;                      /* e.g. a 100 Continue went out */
	if (c->must_close || c->srv->stopping) {
		conn_close_after_response(c);
		return;
	}
	conn_reset(c);
	conn_process(c);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct http_conn *c = arg;

	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
		c->peer_eof = true;
		/* A half-closed client still gets its response; one that closes while a
		 * response streams has left (curl does not half-close): stop it now. */
		if (c->state == CONN_HANDLER || c->state == CONN_WRITING) {
			c->must_close = true;
			return;
		}
	}
	conn_free(c);
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;
	size_t len;

	switch (c->state) {
	case CONN_HEAD:
	case CONN_BODY:
		conn_fail(c, 408);
		break;
	case CONN_WRITING:
		len = evbuffer_get_length(bufferevent_get_output(c->bev));
		if (len < c->out_mark) {
			c->out_mark = len;
			conn_arm(c, c->srv->lim.idle_timeout_s);
		} else {
			conn_free(c);
		}
		break;
	case CONN_STREAMING:
		/* Output waiting that the client does not read is a stall, as for any
		 * response; while the producer works there is no deadline here. */
		len = evbuffer_get_length(bufferevent_get_output(c->bev));
		if (!c->stream_more_due || len < c->out_mark) {
			c->out_mark = len;
			conn_arm(c, c->srv->lim.idle_timeout_s);
		} else {
			conn_free(c);
		}
		break;
	case CONN_HANDLER:
		break;                       /* no deadline while the handler works */
	default:
		conn_free(c);
		break;
	}
}

/* ---- accepting ---------------------------------------------------------- */

static void close_fd(evutil_socket_t fd)
{
	if (close(fd) < 0)
		log_warn("http: close: %s", strerror(errno));
}

/* Whether the peer's first bytes are already in the socket (it sent right away). */
static bool has_data(evutil_socket_t fd)
{
	char byte;

	return recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 1;
}

static struct http_conn *conn_new(struct http_server *s, evutil_socket_t fd, bool passive)
{
	struct http_conn *c = calloc(1, sizeof(*c));

	if (!c) {
		close_fd(fd);
		return NULL;
	}
	c->srv = s;
	c->passive = passive;
	/* A client whose request is already here is not closed to make room before its
	 * first read, however many connections a burst brings in meanwhile. */
	c->arrived_with_data = !passive && has_data(fd);
	c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		close_fd(fd);
		goto fail;
	}
	c->timer = evtimer_new(s->base, conn_timer_cb, c);
	if (!c->timer)
		goto fail;
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	if (bufferevent_enable(c->bev, EV_READ | EV_WRITE) < 0)
		goto fail;
	LIST_INSERT_HEAD(&s->conns, c, link);
	if (passive)
		s->npassive++;
	else
		s->nactive++;
	conn_reset(c);
	return c;
fail:
	log_error("http: cannot set up a connection");
	if (c->timer)
		event_free(c->timer);
	if (c->bev)
		bufferevent_free(c->bev);
	free(c);
	return NULL;
}

/* Close the oldest connection with nothing handed over, to let a new client in.
 * One whose request bytes have arrived since (a burst of accepts runs before any
 * read) is passed over and kept: it is about to be served, not idle. Only the
 * MAKE_ROOM_PEEK_MAX oldest are looked at, so that a flood of trickling clients
 * (each with a byte waiting) costs a few peeks per accept, not a walk of them all:
 * past that the oldest goes whatever it holds. Returns whether one was closed. */
static bool make_room(struct http_server *s)
{
	struct http_conn *c;

	for (unsigned peeks = 0; (c = TAILQ_FIRST(&s->waiting)) != NULL; peeks++) {
		if (peeks >= MAKE_ROOM_PEEK_MAX || !has_data(bufferevent_getfd(c->bev))) {
			conn_free(c);
			return true;
		}
		wait_leave(c);
		c->arrived_with_data = true;     /* back in line once read */
	}
	return false;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
		      int socklen, void *arg)
{
	struct http_server *s = arg;
	int one = 1;
	bool refuse = s->lim.max_connections > 0 && s->nactive >= s->lim.max_connections;
	struct http_conn *c;

	if (refuse && make_room(s))
		refuse = false;
	if (refuse && s->npassive >= linger_slots(s)) {
		close_fd(fd);
		return;
	}
	if (evutil_make_socket_nonblocking(fd) < 0)
		log_warn("http: cannot make a client socket nonblocking");
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		log_warn("http: TCP_NODELAY: %s", strerror(errno));
	c = conn_new(s, fd, refuse);
	if (c && refuse) {
		c->must_close = true;
		conn_write_json(c, 503, NULL, http_protocol_detail(503), "Retry-After: 1\r\n");
	}
}

static void accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_server *s = arg;

	if (!s->stopping && evconnlistener_enable(s->listener) < 0)
		log_error("http: cannot re-enable accepting");
}

/* EMFILE and friends would spin the loop: pause accepting briefly instead. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
	struct http_server *s = arg;
	struct timeval tv = { .tv_sec = 0, .tv_usec = HTTP_ACCEPT_RETRY_US };
	int err = EVUTIL_SOCKET_ERROR();

	log_warn("http: accept: %s", evutil_socket_error_to_string(err));
	if (evconnlistener_disable(l) < 0 || evtimer_add(s->retry, &tv) < 0)
		log_error("http: cannot pause accepting");
}

struct http_server *http_server_new(struct event_base *base, int listen_fd,
				    const struct http_limits *lim,
				    const struct http_handler_ops *ops, void *arg)
{
	struct http_server *s = calloc(1, sizeof(*s));

	if (!s)
		goto fail;
	/* Responses go out with writev(2): a client reset must not kill the worker. */
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		goto fail;
	s->base = base;
	s->lim = *lim;
	if (s->lim.max_header_bytes == 0)
		s->lim.max_header_bytes = HTTP_DEFAULT_MAX_HEADER;
	if (s->lim.header_timeout_s == 0)
		s->lim.header_timeout_s = s->lim.idle_timeout_s;
	s->ops = *ops;
	s->arg = arg;
	LIST_INIT(&s->conns);
	TAILQ_INIT(&s->waiting);
	/* libevent's accept loop runs until EAGAIN: a blocking fd would stall this worker. */
	if (evutil_make_socket_nonblocking(listen_fd) < 0)
		goto fail;
	s->retry = evtimer_new(base, accept_retry_cb, s);
	if (!s->retry)
		goto fail;
	/* backlog 0: the master already listens; not close-on-free: the master owns fd. */
	s->listener = evconnlistener_new(base, on_accept, s, LEV_OPT_CLOSE_ON_EXEC, 0, listen_fd);
	if (!s->listener)
		goto fail;
	evconnlistener_set_error_cb(s->listener, on_accept_error);
	return s;
fail:
	log_error("http: cannot start the server: %s", strerror(errno));
	if (s && s->retry)
		event_free(s->retry);
	free(s);
	return NULL;
}

int http_server_adopt(struct http_server *s, int fd)
{
	if (evutil_make_socket_nonblocking(fd) < 0) {
		log_warn("http: cannot make an adopted socket nonblocking");
		close_fd(fd);
		return -1;
	}
	/* conn_new closes fd when it fails, so the fd is ours either way. */
	return conn_new(s, fd, false) ? 0 : -1;
}

void http_server_stop_accepting(struct http_server *s)
{
	struct http_conn *c;

	s->stopping = true;
	if (evconnlistener_disable(s->listener) < 0)
		log_error("http: cannot stop accepting");
	/*
	 * An idle connection may carry a request already on its way (a client that
	 * just connected, or reuses a keep-alive connection): closing it now would
	 * refuse that request. Give it a short grace to arrive; it is then answered
	 * with Connection: close. Busy connections finish their request and close.
	 */
	LIST_FOREACH(c, &s->conns, link) {
		c->must_close = true;
		if (c->state == CONN_IDLE)
			conn_arm(c, HTTP_DRAIN_GRACE_S);
	}
}

size_t http_server_pending(const struct http_server *s)
{
	return s->pending;
}

size_t http_server_connections(const struct http_server *s)
{
	return s->nactive;
}

void http_server_free(struct http_server *s)
{
	if (!s)
		return;
	while (!LIST_EMPTY(&s->conns))
		conn_free(LIST_FIRST(&s->conns));
	evconnlistener_free(s->listener);
	event_free(s->retry);
	buf_free(&s->out_head);
	buf_free(&s->out_json);
	free(s);
}
