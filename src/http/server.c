/*
 * http.c - the workers' HTTP/1.1 server on libevent bufferevents.
 *
 * Owns every client connection of one worker (struct http_conn): its bufferevent, its
 * single timer, the head and body buffers reused across keep-alive requests, and the
 * lingering close that lets a client read an early error before its socket is dropped.
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

#include "temporis/base/log.h"

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
#define HTTP_ERROR_BODY_MAX 512
/* Largest single copy out of an evbuffer (evbuffer_remove returns int). */
#define HTTP_COPY_STEP (1024 * 1024)
#define HTTP_DEFAULT_MAX_HEADER (16 * 1024)
#define HTTP_HEX_BASE 16
#define HTTP_DEC_BASE 10

#define HTTP_CONTINUE "HTTP/1.1 100 Continue\r\n\r\n"

enum conn_state {
	CONN_IDLE,      /* keep-alive wait: nothing of a request received yet */
	CONN_HEAD,      /* reading the request head */
	CONN_BODY,      /* reading the request body */
	CONN_HANDLER,   /* the handler owns the request; waiting for http_respond */
	CONN_WRITING,   /* flushing a response */
	CONN_LINGER,    /* write side shut; discarding input until EOF or timeout */
	CONN_CLOSING,   /* close scheduled from a context that must not free */
};

enum chunk_state { CHUNK_SIZE, CHUNK_DATA, CHUNK_DATA_END, CHUNK_TRAILER };

struct http_conn {
	LIST_ENTRY(http_conn) link;
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
	char *head;                      /* head copy + path copy, parsed in place */
	size_t head_cap, head_len, head_scan;
	uint8_t *body;                   /* reused across requests on this connection */
	size_t body_len, body_cap;
	enum chunk_state chunk;
	uint64_t chunk_left;
	size_t trailer_bytes;
	size_t out_mark;                 /* output length at the last stall check */
	size_t discarded;                /* bytes thrown away while lingering */
};

struct http_server {
	struct event_base *base;
	struct evconnlistener *listener;
	struct event *retry;             /* re-enables accept after EMFILE and friends */
	struct http_limits lim;
	struct http_handler_ops ops;
	void *arg;
	LIST_HEAD(, http_conn) conns;
	size_t nactive;                  /* counted against max_connections */
	size_t npassive;                 /* refused (503) or lingering */
	size_t pending;
	bool stopping;
};

static int conn_process(struct http_conn *c);

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

static void conn_free(struct http_conn *c)
{
	struct http_server *s = c->srv;

	req_abort(c);
	LIST_REMOVE(c, link);
	if (c->passive)
		s->npassive--;
	else
		s->nactive--;
	event_free(c->timer);
	bufferevent_free(c->bev);
	free(c->head);
	free(c->body);
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

static const char *protocol_detail(int status)
{
	switch (status) {
	case 400: return "Bad request.";
	case 408: return "Request timeout.";
	case 413: return "Request body too large.";
	case 417: return "Expectation failed.";
	case 431: return "Request header fields too large.";
	case 501: return "Transfer-Encoding not supported.";
	case 503: return "Server is busy, retry later.";
	case 505: return "HTTP version not supported.";
	default: return "Internal server error.";
	}
}

const char *http_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 417: return "Expectation Failed";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

int http_error_body(char *buf, size_t cap, const char *detail)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

#define PUT(ch) do { if (n + 1 >= cap) return -1; buf[n++] = (char)(ch); } while (0)
	for (const char *p = "{\"detail\":\""; *p; p++)
		PUT(*p);
	for (const unsigned char *p = (const unsigned char *)detail; *p; p++) {
		if (*p == '"' || *p == '\\') {
			PUT('\\');
			PUT(*p);
		} else if (*p < 0x20) {
			PUT('\\'); PUT('u'); PUT('0'); PUT('0');
			PUT(hex[*p >> 4]);
			PUT(hex[*p & 0xf]);
		} else {
			PUT(*p);
		}
	}
	PUT('"');
	PUT('}');
#undef PUT
	buf[n] = '\0';
	return (int)n;
}

const char *http_header(const struct http_req *req, const char *name)
{
	for (unsigned i = 0; i < req->nheaders; i++)
		if (strcasecmp(req->headers[i].name, name) == 0)
			return req->headers[i].value;
	return NULL;
}

/* Is token one of the comma-separated elements of any `name` header? */
static bool header_has_token(const struct http_req *req, const char *name, const char *token)
{
	size_t tlen = strlen(token);

	for (unsigned i = 0; i < req->nheaders; i++) {
		const char *p = req->headers[i].value;

		if (strcasecmp(req->headers[i].name, name) != 0)
			continue;
		while (*p) {
			size_t n;

			while (*p == ' ' || *p == '\t' || *p == ',')
				p++;
			n = strcspn(p, ", \t");
			if (n == tlen && strncasecmp(p, token, n) == 0)
				return true;
			p += n;
		}
	}
	return false;
}

/* ---- responses -------------------------------------------------------- */

static int write_head(struct evbuffer *out, struct http_conn *c, int status,
		      const char *ctype, const char *extra, size_t len)
{
	bool no_length = status < 200 || status == 204 || status == 304;

	if (evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", status, http_reason(status)) < 0)
		return -1;
	if (ctype && evbuffer_add_printf(out, "Content-Type: %s\r\n", ctype) < 0)
		return -1;
	if (!no_length && evbuffer_add_printf(out, "Content-Length: %zu\r\n", len) < 0)
		return -1;
	if (c->must_close) {
		if (evbuffer_add_printf(out, "Connection: close\r\n") < 0)
			return -1;
	} else if (c->req.version_minor == 0) {
		if (evbuffer_add_printf(out, "Connection: keep-alive\r\n") < 0)
			return -1;
	}
	if (extra && evbuffer_add(out, extra, strlen(extra)) < 0)
		return -1;
	return evbuffer_add(out, "\r\n", 2);
}

/* Queue a response for the current request; the write callback finishes it. */
static void conn_write_response(struct http_conn *c, int status, const char *ctype,
				const char *extra, const void *body, size_t len)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	bool send_body = c->req.method != HTTP_HEAD && status >= 200 && status != 204 &&
			 status != 304;

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

static void conn_write_json(struct http_conn *c, int status, const char *detail,
			    const char *extra)
{
	char small[HTTP_ERROR_BODY_MAX];
	char *buf = small;
	size_t cap = sizeof(small);
	int n = http_error_body(buf, cap, detail);

	if (n < 0) {
		/* Worst case every byte becomes \u00XX, plus the braces and key. */
		cap = strlen(detail) * 6 + sizeof(small);
		buf = malloc(cap);
		n = buf ? http_error_body(buf, cap, detail) : -1;
	}
	if (n < 0) {
		log_error("http: cannot build an error body");
		conn_schedule_close(c);
	} else {
		conn_write_response(c, status, "application/json", extra, buf, (size_t)n);
	}
	if (buf != small)
		free(buf);
}

/* A protocol error answered by this layer: the request is over and so is the connection. */
static void conn_fail(struct http_conn *c, int status)
{
	req_abort(c);
	c->must_close = true;
	conn_write_json(c, status, protocol_detail(status), NULL);
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
	if (respond_begin(req, status))
		conn_write_json(req->conn, status, detail, extra_headers);
}

/* ---- head parsing ----------------------------------------------------- */

static bool is_tchar(unsigned char ch)
{
	if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
		return true;
	return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static bool is_token(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (!is_tchar((unsigned char)*s))
			return false;
	return true;
}

static bool is_field_value(const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return false;
	}
	return true;
}

static bool is_target(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s == 0x7f)
			return false;
	return true;
}

static enum http_method method_of(const char *m)
{
	static const struct { const char *name; enum http_method id; } methods[] = {
		{ "GET", HTTP_GET }, { "HEAD", HTTP_HEAD }, { "POST", HTTP_POST },
		{ "PUT", HTTP_PUT }, { "DELETE", HTTP_DELETE }, { "PATCH", HTTP_PATCH },
		{ "OPTIONS", HTTP_OPTIONS },
	};

	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(m, methods[i].name) == 0)
			return methods[i].id;
	return HTTP_OTHER;
}

/* "HTTP/d.d": 0 and the minor version for 1.0/1.1, 505 for other versions, 400 else. */
static int parse_version(const char *v, int *minor)
{
	if (strncmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
	    v[7] < '0' || v[7] > '9' || v[8] != '\0')
		return 400;
	if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
		return 505;
	*minor = v[7] - '0';
	return 0;
}

static int parse_request_line(struct http_conn *c, char *line)
{
	struct http_req *req = &c->req;
	char *target, *version, *copy, *q;
	int st;

	target = strchr(line, ' ');
	if (!target)
		return 400;
	*target++ = '\0';
	version = strchr(target, ' ');
	if (!version)
		return 400;
	*version++ = '\0';
	if (!is_token(line) || !is_target(target))
		return 400;
	st = parse_version(version, &req->version_minor);
	if (st)
		return st;
	req->method_str = line;
	req->method = method_of(line);
	req->target = target;
	/* The path is split off a copy so that target stays as sent. */
	copy = c->head + c->head_len + 1;
	strcpy(copy, target);
	q = strchr(copy, '?');
	if (q)
		*q++ = '\0';
	req->path = copy;
	req->query = q;
	return 0;
}

static int parse_header_line(struct http_req *req, char *line)
{
	char *colon, *v;
	size_t n;

	if (*line == ' ' || *line == '\t')
		return 400;                  /* obs-fold */
	colon = strchr(line, ':');
	if (!colon)
		return 400;
	*colon = '\0';
	if (!is_token(line))
		return 400;
	v = colon + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	n = strlen(v);
	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		v[--n] = '\0';
	if (!is_field_value(v))
		return 400;
	if (req->nheaders >= HTTP_MAX_HEADERS)
		return 431;
	req->headers[req->nheaders].name = line;
	req->headers[req->nheaders].value = v;
	req->nheaders++;
	return 0;
}

static int parse_content_length(const char *v, int64_t *out)
{
	int64_t n = 0;

	if (*v == '\0')
		return -1;
	for (; *v; v++) {
		if (*v < '0' || *v > '9')
			return -1;
		if (n > (INT64_MAX - (*v - '0')) / HTTP_DEC_BASE)
			return -1;
		n = n * HTTP_DEC_BASE + (*v - '0');
	}
	*out = n;
	return 0;
}

/* Body framing from Content-Length / Transfer-Encoding, and keep-alive. */
static int parse_framing(struct http_req *req, bool *keep_alive)
{
	int64_t cl = -1;

	for (unsigned i = 0; i < req->nheaders; i++) {
		const char *name = req->headers[i].name, *v = req->headers[i].value;
		int64_t n;

		if (strcasecmp(name, "Content-Length") == 0) {
			if (parse_content_length(v, &n) < 0 || (cl >= 0 && n != cl))
				return 400;
			cl = n;
		} else if (strcasecmp(name, "Transfer-Encoding") == 0) {
			if (strcasecmp(v, "chunked") != 0)
				return 501;
			if (req->chunked)
				return 400;
			req->chunked = true;
		}
	}
	if (req->chunked && cl >= 0)
		return 400;
	req->content_length = req->chunked ? -1 : cl;
	if (req->version_minor == 1)
		*keep_alive = !header_has_token(req, "Connection", "close");
	else
		*keep_alive = header_has_token(req, "Connection", "keep-alive");
	return 0;
}

/* Parse c->head (head_len bytes, ending with the blank line); 0 or an error status. */
static int parse_head(struct http_conn *c)
{
	char *line = c->head, *end = c->head + c->head_len;
	bool first = true;

	if (memchr(c->head, '\0', c->head_len))
		return 400;
	while (line < end) {
		char *nl = memchr(line, '\n', (size_t)(end - line));
		int st;

		if (!nl)
			return 400;
		*nl = '\0';
		if (nl > line && nl[-1] == '\r')
			nl[-1] = '\0';
		if (*line == '\0')
			break;
		st = first ? parse_request_line(c, line) : parse_header_line(&c->req, line);
		if (st)
			return st;
		first = false;
		line = nl + 1;
	}
	if (first)
		return 400;
	return parse_framing(&c->req, &c->keep_alive);
}

/* Offset just past the blank line ending the head, or 0; *scan resumes the search. */
static size_t find_head_end(const char *p, size_t n, size_t *scan)
{
	size_t i;

	for (i = *scan; i < n; i++) {
		if (p[i] != '\n')
			continue;
		if (i + 1 >= n)
			break;
		if (p[i + 1] == '\n')
			return i + 2;
		if (p[i + 1] == '\r') {
			if (i + 2 >= n)
				break;
			if (p[i + 2] == '\n')
				return i + 3;
		}
	}
	*scan = i;
	return 0;
}

static int head_store(struct http_conn *c, const char *p, size_t len)
{
	/* Room for the head, its NUL, and a NUL-terminated copy of the target. */
	size_t need = 2 * len + 2;

	if (need > c->head_cap) {
		char *n = realloc(c->head, need);

		if (!n)
			return -1;
		c->head = n;
		c->head_cap = need;
	}
	memcpy(c->head, p, len);
	c->head[len] = '\0';
	c->head_len = len;
	return 0;
}

/* ---- body reading ----------------------------------------------------- */

static int body_reserve(struct http_conn *c, size_t need)
{
	size_t cap = c->body_cap * 2;
	uint8_t *n;

	if (need <= c->body_cap)
		return 0;
	if (cap > c->srv->lim.max_body_bytes)
		cap = (size_t)c->srv->lim.max_body_bytes;
	if (cap < need)
		cap = need;
	n = realloc(c->body, cap);
	if (!n)
		return -1;
	c->body = n;
	c->body_cap = cap;
	return 0;
}

static int body_copy(struct http_conn *c, struct evbuffer *in, size_t n)
{
	while (n > 0) {
		size_t step = n < HTTP_COPY_STEP ? n : HTTP_COPY_STEP;

		if (evbuffer_remove(in, c->body + c->body_len, step) != (int)step)
			return -1;
		c->body_len += step;
		n -= step;
	}
	return 0;
}

static void conn_body_done(struct http_conn *c)
{
	static const uint8_t no_body[1];

	/* Never NULL, so handlers can pass it straight to a parser. */
	c->req.body = c->body ? c->body : no_body;
	c->req.body_len = c->body_len;
	c->state = CONN_HANDLER;
	conn_arm(c, 0);
	conn_read_limit(c, HTTP_READ_HIGH_WM);
	c->srv->ops.on_body(&c->req, c->srv->arg);
}

static void read_fixed_body(struct http_conn *c, struct evbuffer *in)
{
	size_t need = (size_t)c->req.content_length - c->body_len;
	size_t avail = evbuffer_get_length(in);

	if (body_copy(c, in, avail < need ? avail : need) < 0) {
		conn_fail(c, 500);
		return;
	}
	if (c->body_len == (size_t)c->req.content_length)
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

static int hex_digit(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + HTTP_DEC_BASE;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + HTTP_DEC_BASE;
	return -1;
}

/* Returns 1 to go on, 0 to wait for input, -1 after answering an error. */
static int chunk_size_line(struct http_conn *c, struct evbuffer *in)
{
	char line[HTTP_LINE_MAX], *p = line;
	uint64_t size = 0, room = c->srv->lim.max_body_bytes - c->body_len;
	size_t len;
	int r = take_line(in, line, sizeof(line), &len), d;

	if (r <= 0)
		goto bad_or_wait;
	if (hex_digit(*p) < 0)
		goto bad;
	for (; (d = hex_digit(*p)) >= 0; p++) {
		if (size > room / HTTP_HEX_BASE)
			goto too_large;
		size = size * HTTP_HEX_BASE + (uint64_t)d;
	}
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '\0' && *p != ';')
		goto bad;
	if (size > room)
		goto too_large;
	c->chunk_left = size;
	c->chunk = size == 0 ? CHUNK_TRAILER : CHUNK_DATA;
	if (size > 0 && body_reserve(c, c->body_len + (size_t)size) < 0) {
		conn_fail(c, 500);
		return -1;
	}
	return 1;
bad_or_wait:
	if (r == 0)
		return 0;
bad:
	conn_fail(c, 400);
	return -1;
too_large:
	conn_fail(c, 413);
	return -1;
}

static int chunk_data(struct http_conn *c, struct evbuffer *in)
{
	size_t avail = evbuffer_get_length(in);
	size_t n = c->chunk_left < avail ? (size_t)c->chunk_left : avail;

	if (n == 0)
		return 0;
	if (body_copy(c, in, n) < 0) {
		conn_fail(c, 500);
		return -1;
	}
	c->chunk_left -= n;
	if (c->chunk_left == 0)
		c->chunk = CHUNK_DATA_END;
	return 1;
}

static int chunk_line(struct http_conn *c, struct evbuffer *in)
{
	char line[HTTP_LINE_MAX];
	size_t len = 0;
	int r = take_line(in, line, sizeof(line), &len);

	if (r == 0)
		return 0;
	if (r < 0 || (c->chunk == CHUNK_DATA_END && len > 0)) {
		conn_fail(c, 400);
		return -1;
	}
	if (c->chunk == CHUNK_DATA_END) {
		c->chunk = CHUNK_SIZE;
		return 1;
	}
	/* Trailers are read and ignored, within the header budget. */
	c->trailer_bytes += len;
	if (c->trailer_bytes > c->srv->lim.max_header_bytes) {
		conn_fail(c, 431);
		return -1;
	}
	if (len > 0)
		return 1;
	conn_body_done(c);
	return 0;
}

static void read_chunked_body(struct http_conn *c, struct evbuffer *in)
{
	int r;

	do {
		switch (c->chunk) {
		case CHUNK_SIZE:
			r = chunk_size_line(c, in);
			break;
		case CHUNK_DATA:
			r = chunk_data(c, in);
			break;
		default:
			r = chunk_line(c, in);
			break;
		}
	} while (r > 0);
}

/* After on_head returned without a response: check size and Expect, then read. */
static int conn_body_begin(struct http_conn *c)
{
	struct http_req *req = &c->req;
	const char *expect = http_header(req, "Expect");

	if (req->content_length > 0 && (uint64_t)req->content_length > c->srv->lim.max_body_bytes) {
		conn_fail(c, 413);
		return -1;
	}
	if (expect && strcasecmp(expect, "100-continue") != 0) {
		conn_fail(c, 417);
		return -1;
	}
	/* HTTP/1.0 clients do not know 100 Continue; RFC 9110 says to ignore it there. */
	if (expect && req->version_minor == 1 &&
	    evbuffer_add(bufferevent_get_output(c->bev), HTTP_CONTINUE,
			 strlen(HTTP_CONTINUE)) < 0) {
		conn_fail(c, 500);
		return -1;
	}
	if (req->content_length > 0 && body_reserve(c, (size_t)req->content_length) < 0) {
		conn_fail(c, 500);
		return -1;
	}
	c->chunk = CHUNK_SIZE;
	c->trailer_bytes = 0;
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

	if (c->state == CONN_IDLE)
		skip_blank_lines(in);
	avail = evbuffer_get_length(in);
	if (avail == 0)
		return 0;
	if (c->state == CONN_IDLE) {
		/* The deadline for the whole request starts with its first byte. */
		c->state = CONN_HEAD;
		c->head_scan = 0;
		conn_arm(c, c->srv->lim.idle_timeout_s);
	}
	window = avail < max ? avail : max;
	p = (const char *)evbuffer_pullup(in, (ev_ssize_t)window);
	if (!p)
		st = 500;
	else if ((end = find_head_end(p, window, &c->head_scan)) == 0)
		st = avail >= max ? 431 : 0;
	else if (head_store(c, p, end) < 0 || evbuffer_drain(in, end) < 0)
		st = 500;
	else
		st = parse_head(c);
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
	c->body_len = 0;
	if (c->body_cap > HTTP_BODY_KEEP_MAX) {
		free(c->body);
		c->body = NULL;
		c->body_cap = 0;
	}
	c->state = CONN_IDLE;
	conn_read_limit(c, 0);
	conn_arm(c, c->srv->lim.idle_timeout_s);
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
		/* A half-closed client still gets its response. */
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
	case CONN_HANDLER:
		break;                       /* no deadline while the handler works */
	default:
		conn_free(c);
		break;
	}
}

/* ---- accepting ---------------------------------------------------------- */

static struct http_conn *conn_new(struct http_server *s, evutil_socket_t fd, bool passive)
{
	struct http_conn *c = calloc(1, sizeof(*c));

	if (!c) {
		if (close(fd) < 0)
			log_warn("http: close: %s", strerror(errno));
		return NULL;
	}
	c->srv = s;
	c->passive = passive;
	c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		if (close(fd) < 0)
			log_warn("http: close: %s", strerror(errno));
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

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
		      int socklen, void *arg)
{
	struct http_server *s = arg;
	int one = 1;
	bool refuse = s->lim.max_connections > 0 && s->nactive >= s->lim.max_connections;
	struct http_conn *c;

	if (refuse && s->npassive >= linger_slots(s)) {
		if (close(fd) < 0)
			log_warn("http: close: %s", strerror(errno));
		return;
	}
	if (evutil_make_socket_nonblocking(fd) < 0)
		log_warn("http: cannot make a client socket nonblocking");
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		log_warn("http: TCP_NODELAY: %s", strerror(errno));
	c = conn_new(s, fd, refuse);
	if (c && refuse) {
		c->must_close = true;
		conn_write_json(c, 503, protocol_detail(503), "Retry-After: 1\r\n");
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
	s->ops = *ops;
	s->arg = arg;
	LIST_INIT(&s->conns);
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
		if (close(fd) < 0)
			log_warn("http: close: %s", strerror(errno));
		return -1;
	}
	/* conn_new closes fd when it fails, so the fd is ours either way. */
	return conn_new(s, fd, false) ? 0 : -1;
}

void http_server_stop_accepting(struct http_server *s)
{
	struct http_conn *c, *next;

	s->stopping = true;
	if (evconnlistener_disable(s->listener) < 0)
		log_error("http: cannot stop accepting");
	/*
	 * An idle connection may carry a request already on its way (a client that
	 * just connected, or reuses a keep-alive connection): closing it now would
	 * refuse that request. Give it a short grace to arrive; it is then answered
	 * with Connection: close. Busy connections finish their request and close.
	 */
	for (c = LIST_FIRST(&s->conns); c; c = next) {
		next = LIST_NEXT(c, link);
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
	free(s);
}
