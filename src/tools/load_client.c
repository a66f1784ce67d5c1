/*
 * load_client.c - temporis-load's HTTP client: POSTs batches to /v1/data_sources/ingest (or
 * line protocol to /write) over a few keep-alive libevent evhttp connections, retrying what
 * is safe to retry (both are idempotent upserts) with jittered exponential back-off. Owns
 * the connection slots, each with the one batch it sends; memory stays bounded because a
 * slot asks for input only when it is free.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "temporis/base/buf.h"
#include "temporis/base/clock.h"
#include "temporis/tools/load_batch.h"
#include "temporis/tools/load_client.h"

#define INGEST_PATH "/v1/data_sources/ingest"
#define HOST_MAX 256
#define PORT_TEXT_MAX 16 /* ":65535" and the NUL, with room to spare */
#define HTTP_DEFAULT_PORT 80
#define REQUEST_TIMEOUT_S 120    /* per request; the server answers 503 long before this */
#define RESPONSE_MAX_BYTES 65536 /* error bodies are one short JSON object */
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 10000
#define RETRY_AFTER_MAX_S 60 /* never let a server park us longer than this per attempt */
#define DETAIL_MAX 512
#define EXCERPT_MAX (DETAIL_MAX / 4) /* of a response body that is not our JSON */
#define MSG_MAX 1024
#define MS_PER_S 1000
#define RETRY_SAY_EVERY_US 1000000 /* at most one retry message a second */
#define US_PER_MS 1000
#define US_PER_S 1000000
#define HTTP_SUCCESS_MIN 200
#define HTTP_SUCCESS_END 300
#define HTTP_REQUEST_TIMEOUT_CODE 408
#define HTTP_BAD_REQUEST_CODE 400
#define HTTP_TOO_LARGE_CODE 413
#define HTTP_TOO_MANY_CODE 429
#define HTTP_SERVER_ERROR_MIN 500

enum slot_state { SLOT_IDLE, SLOT_SENDING, SLOT_WAITING };

/* One connection and the batch it owns until the server accepts it (or we give up). */
struct slot {
	struct load_client *c;
	struct evhttp_connection *evcon;
	struct load_batch batch;
	struct buf gz; /* the batch's body compressed, with gzip */
	enum slot_state state;
	long attempt;  /* retries of the current batch so far */
	int body_refs; /* body chunks libevent still references (see body_released) */
	struct event *retry_ev;
	enum evhttp_request_error conn_err;
	bool has_conn_err;
	int conn_errno;    /* the socket's errno when the error callback ran */
	uint64_t sent_us;  /* mono_us() when the request was made */
	char last_error[MSG_MAX];
};

struct load_client {
	struct load_client_opts o;
	struct load_client_hooks h;
	struct event_base *base;
	struct event *pump_ev;
	char host[HOST_MAX];
	char host_header[HOST_MAX + PORT_TEXT_MAX]; /* "host:port" */
	int port;
	char *path; /* the request target: PREFIX + the ingest path, or PREFIX/write?... */
	char *auth; /* "Bearer TOKEN"; wiped when freed */
	struct slot *slots;
	int inflight; /* slots not idle */
	bool fatal, drained;
	uint64_t sent, rejected, requests, retries;
	uint64_t retry_said_us;  /* mono_us() of the last retry message, 0 before any */
	uint64_t retries_unsaid; /* retries since then that had no message of their own */
};

static void say(const struct load_client_hooks *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Every message goes to the caller, which owns stderr and its progress line. */
static void say(const struct load_client_hooks *h, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	h->vsay(h->arg, fmt, ap);
	va_end(ap);
}

/* ---- target --------------------------------------------------------------------------- */

/* c->path for the URL's path prefix[0..plen). 0, or -1 when memory runs out. */
static int target_path(struct load_client *c, const char *prefix, size_t plen)
{
	struct buf t = {0};

	if (!c->o.line_protocol) {
		if (asprintf(&c->path, "%.*s%s", (int)plen, prefix, INGEST_PATH) < 0) {
			c->path = NULL;
			return -1;
		}
		return 0;
	}
	if (load_lp_target(&t, prefix, plen, c->o.source, c->o.unit) < 0) {
		buf_free(&t);
		return -1;
	}
	c->path = t.data; /* NUL-terminated by load_lp_target; freed with the client */
	return 0;
}

/* Host, port and request path from the URL; only plain http (put TLS in a proxy). */
static int setup_target(struct load_client *c, const char *url)
{
	struct evhttp_uri *uri = evhttp_uri_parse(url);
	const char *scheme, *host, *path;
	size_t plen;
	int rc = -1;

	if (!uri) {
		say(&c->h, "--url %s is not a valid URL", url);
		return -1;
	}
	scheme = evhttp_uri_get_scheme(uri);
	host = evhttp_uri_get_host(uri);
	if (!scheme || strcasecmp(scheme, "http") || !host || !*host) {
		say(&c->h, "--url must look like http://HOST[:PORT][/PREFIX] (got %s)", url);
		goto out;
	}
	if (snprintf(c->host, sizeof(c->host), "%s", host) >= (int)sizeof(c->host)) {
		say(&c->h, "--url host name is too long");
		goto out;
	}
	c->port = evhttp_uri_get_port(uri) > 0 ? evhttp_uri_get_port(uri) : HTTP_DEFAULT_PORT;
	/* cannot truncate: the buffer has room for any host that fits c->host and a port */
	snprintf(c->host_header, sizeof(c->host_header), "%s:%d", c->host, c->port);
	path = evhttp_uri_get_path(uri) ? evhttp_uri_get_path(uri) : "";
	for (plen = strlen(path); plen > 0 && path[plen - 1] == '/'; plen--)
		;
	if (target_path(c, path, plen) < 0) {
		say(&c->h, "out of memory");
		goto out;
	}
	rc = 0;
out:
	evhttp_uri_free(uri);
	return rc;
}

/* ---- requests ------------------------------------------------------------------------- */

static void schedule_pump(struct load_client *c)
{
	event_active(c->pump_ev, EV_TIMEOUT, 0);
}

static void slot_idle(struct slot *s)
{
	if (s->state != SLOT_IDLE)
		s->c->inflight--;
	s->state = SLOT_IDLE;
	schedule_pump(s->c);
}

/* libevent sends the body from our buffer without copying it; the slot's batch may only be
 * rebuilt once libevent has let go of it (normally long before the response arrives). */
static void body_released(const void *data, size_t len, void *arg)
{
	struct slot *s = arg;

	s->body_refs--;
	if (s->body_refs == 0 && s->state == SLOT_IDLE)
		schedule_pump(s->c);
}

static void request_done(struct evhttp_request *req, void *arg);

static void request_error(enum evhttp_request_error err, void *arg)
{
	struct slot *s = arg;

	/* libevent restores the socket error before calling us: keep it for the message */
	s->conn_errno = errno;
	s->conn_err = err;
	s->has_conn_err = true;
}

static int add_headers(struct load_client *c, struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	if (evhttp_add_header(h, "Host", c->host_header) < 0 ||
	    evhttp_add_header(h, "Authorization", c->auth) < 0 ||
	    evhttp_add_header(h, "Content-Type",
	                      c->o.line_protocol ? "text/plain; charset=utf-8"
	                                         : "application/json") < 0 ||
	    (c->o.gzip && evhttp_add_header(h, "Content-Encoding", "gzip") < 0))
		return -1;
	return 0;
}

/* Issue (or re-issue) the slot's finished batch. -1: could not even start it. */
static int slot_request(struct slot *s)
{
	struct load_client *c = s->c;
	struct evhttp_request *req = evhttp_request_new(request_done, s);
	const struct buf *body = c->o.gzip ? &s->gz : &s->batch.body;

	if (!req)
		return -1;
	evhttp_request_set_error_cb(req, request_error);
	s->has_conn_err = false;
	s->conn_errno = 0;
	s->sent_us = mono_us();
	if (add_headers(c, req) < 0 ||
	    evbuffer_add_reference(evhttp_request_get_output_buffer(req), body->data, body->len,
	                           body_released, s) < 0) {
		evhttp_request_free(req);
		return -1;
	}
	s->body_refs++;
	s->state = SLOT_SENDING;
	/* libevent owns req from here on, also when this fails */
	return evhttp_make_request(s->evcon, req, EVHTTP_REQ_POST, c->path);
}

/* Give up: no new batches, no further retries; requests on the wire may still finish. */
static void stop_loading(struct load_client *c)
{
	c->fatal = true;
	for (long i = 0; i < c->o.concurrency; i++) {
		struct slot *s = &c->slots[i];
		if (s->state == SLOT_WAITING) {
			/* a timer that fires anyway finds the client stopped and the slot idle */
			(void)evtimer_del(s->retry_ev);
			slot_idle(s);
		}
	}
	schedule_pump(c);
}

static int slot_send(struct slot *s)
{
	struct load_client *c = s->c;

	if (load_batch_finish(&s->batch) < 0 ||
	    (c->o.gzip && load_gzip(s->batch.body.data, s->batch.body.len, &s->gz) < 0)) {
		say(&c->h, "out of memory while building a request");
		return -1;
	}
	s->attempt = 0;
	c->inflight++;
	s->state = SLOT_SENDING;
	if (slot_request(s) < 0) {
		say(&c->h, "cannot start a request to %s:%d", c->host, c->port);
		slot_idle(s);
		return -1;
	}
	return 0;
}

/* Leave the loop; loopexit needs memory for its event, loopbreak does not. */
static void leave_loop(struct load_client *c)
{
	if (event_base_loopexit(c->base, NULL) < 0 && event_base_loopbreak(c->base) < 0)
		say(&c->h, "cannot stop the event loop");
}

/* The event loop's only producer: fill every free slot with a batch and send it. Runs from
 * its own event so that callbacks never rebuild a buffer libevent is still using. */
static void pump(evutil_socket_t fd, short what, void *arg)
{
	struct load_client *c = arg;

	for (long i = 0; i < c->o.concurrency && !c->fatal && !c->drained; i++) {
		struct slot *s = &c->slots[i];
		if (s->state != SLOT_IDLE || s->body_refs > 0)
			continue;
		if (c->h.fill(c->h.arg, &s->batch) < 0) {
			stop_loading(c);
			break;
		}
		if (s->batch.count == 0) {
			c->drained = true;
			break;
		}
		if (slot_send(s) < 0) {
			stop_loading(c);
			break;
		}
	}
	if ((c->fatal || c->drained) && c->inflight == 0)
		leave_loop(c);
}

/* ---- responses ------------------------------------------------------------------------ */

/* Why a request got no response. A connect that fails reaches request_done without the
 * error callback, and libevent's clean-up has overwritten errno by then (ENOTCONN, from its
 * shutdown()): a connect that failed before the request timeout is reported as refused,
 * which is what a server that is down or restarting looks like. */
static const char *conn_error_text(const struct slot *s)
{
	if (!s->has_conn_err)
		return load_conn_reason(ECONNREFUSED, mono_us() - s->sent_us >=
		                                          (uint64_t)REQUEST_TIMEOUT_S * US_PER_S);
	switch (s->conn_err) {
	case EVREQ_HTTP_TIMEOUT:
		return load_conn_reason(s->conn_errno, true);
	case EVREQ_HTTP_EOF:
	case EVREQ_HTTP_BUFFER_ERROR:
		return load_conn_reason(s->conn_errno, false);
	case EVREQ_HTTP_INVALID_HEADER:
		return "invalid response from the server";
	case EVREQ_HTTP_REQUEST_CANCEL:
		return "request cancelled";
	case EVREQ_HTTP_DATA_TOO_LONG:
		return "response too large";
	}
	return "connection failed";
}

/* The "detail" of a JSON error body ("error" in /write's InfluxDB shape), else a short
 * excerpt of whatever came back. */
static void response_detail(struct evhttp_request *req, char *out, size_t outlen)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *text = (const char *)evbuffer_pullup(in, -1);
	const char *reason = evhttp_request_get_response_code_line(req);
	struct json_tokener *tok = NULL;
	struct json_object *j = NULL, *d;

	snprintf(out, outlen, "%s", reason ? reason : "");
	if (!text || len == 0 || len > INT_MAX)
		return;
	tok = json_tokener_new();
	if (!tok)
		return;
	j = json_tokener_parse_ex(tok, text, (int)len);
	if (j &&
	    (json_object_object_get_ex(j, "detail", &d) ||
	     json_object_object_get_ex(j, "error", &d)) &&
	    json_object_is_type(d, json_type_string))
		snprintf(out, outlen, "%s", json_object_get_string(d));
	else
		snprintf(out, outlen, "%.*s", (int)(len < EXCERPT_MAX ? len : EXCERPT_MAX), text);
	json_object_put(j);
	json_tokener_free(tok);
}

/* "FILE:LINES 1201-1300" for the batch of slot s. */
static void batch_where(const struct slot *s, char *out, size_t outlen)
{
	load_batch_where(&s->batch, out, outlen);
}

static bool retryable(int code)
{
	return code == 0 || code == HTTP_REQUEST_TIMEOUT_CODE || code == HTTP_TOO_MANY_CODE ||
	       code >= HTTP_SERVER_ERROR_MIN;
}

/* Exponential back-off with jitter (so the connections do not retry in lockstep), but never
 * sooner than the server's Retry-After. */
static long backoff_ms(long attempt, struct evhttp_request *req)
{
	long base = BACKOFF_FIRST_MS, ms;
	const char *ra =
	    req ? evhttp_find_header(evhttp_request_get_input_headers(req), "Retry-After") : NULL;

	for (long i = 1; i < attempt && base < BACKOFF_MAX_MS; i++)
		base *= 2;
	if (base > BACKOFF_MAX_MS)
		base = BACKOFF_MAX_MS;
	ms = base / 2 + random() % (base / 2 + 1);
	if (ra) {
		char *end;
		long secs = strtol(ra, &end, 10);
		if (end != ra && secs > 0) {
			if (secs > RETRY_AFTER_MAX_S)
				secs = RETRY_AFTER_MAX_S;
			if (secs * MS_PER_S > ms)
				ms = secs * MS_PER_S;
		}
	}
	return ms;
}

static void retry_fire(evutil_socket_t fd, short what, void *arg)
{
	struct slot *s = arg;

	if (s->c->fatal) {
		slot_idle(s);
		return;
	}
	if (slot_request(s) < 0) {
		say(&s->c->h, "cannot start a request to %s:%d", s->c->host, s->c->port);
		stop_loading(s->c);
		slot_idle(s);
	}
}

/* Say why the batch of s is retried and when: while the server is down or busy every
 * connection retries, so at most one line a second, counting the ones not shown. */
static void say_retry(struct slot *s, long ms)
{
	struct load_client *c = s->c;
	uint64_t now = mono_us();
	char msg[MSG_MAX + LOAD_WHERE_MAX];

	if (c->retry_said_us && now - c->retry_said_us < RETRY_SAY_EVERY_US) {
		c->retries_unsaid++;
		return;
	}
	load_retry_text(&s->batch, s->attempt, c->o.retries, ms, s->last_error, c->retries_unsaid,
	                msg, sizeof(msg));
	c->retry_said_us = now;
	c->retries_unsaid = 0;
	say(&c->h, "%s", msg);
}

static void retry_or_give_up(struct slot *s, int code, const char *detail,
                             struct evhttp_request *req)
{
	struct load_client *c = s->c;
	char where[MSG_MAX];
	struct timeval tv;
	long ms;

	if (code)
		snprintf(s->last_error, sizeof(s->last_error), "%d %s", code, detail);
	else
		snprintf(s->last_error, sizeof(s->last_error), "%s", detail);
	if (c->fatal) {
		slot_idle(s);
		return;
	}
	if (s->attempt >= c->o.retries) {
		batch_where(s, where, sizeof(where));
		say(&c->h, "%s: giving up after %ld attempts: %s", where, s->attempt + 1,
		    s->last_error);
		stop_loading(c);
		slot_idle(s);
		return;
	}
	s->attempt++;
	c->retries++;
	ms = backoff_ms(s->attempt, req);
	say_retry(s, ms);
	tv = (struct timeval){.tv_sec = ms / MS_PER_S, .tv_usec = (ms % MS_PER_S) * US_PER_MS};
	s->state = SLOT_WAITING;
	if (evtimer_add(s->retry_ev, &tv) < 0) {
		say(&c->h, "cannot schedule a retry");
		stop_loading(c);
		slot_idle(s);
	}
}

/* The input line of the line-protocol line a 400 names ("line 3: unable to parse ..."),
 * counted from 1 in the body; 0 when the detail names none. */
static uint64_t rejected_line(const struct load_batch *b, int code, const char *detail)
{
	unsigned long k;

	if (!b->line_protocol || code != HTTP_BAD_REQUEST_CODE ||
	    sscanf(detail, "line %lu:", &k) != 1)
		return 0;
	return load_batch_body_line(b, k);
}

/* A 4xx that retrying cannot fix: say which input lines it concerns, and if the server
 * named a record ("records[3].value ...") or a line ("line 3: ..."), its own line. */
static void report_rejection(const struct slot *s, int code, const char *detail)
{
	char where[MSG_MAX], hint[MSG_MAX] = "";
	const char *r = strstr(detail, "records[");
	uint64_t line = rejected_line(&s->batch, code, detail);
	unsigned long k;

	batch_where(s, where, sizeof(where));
	if (line)
		snprintf(hint, sizeof(hint), " (line at %s:%" PRIu64 ")", s->batch.file, line);
	else if (!s->batch.line_protocol && r && sscanf(r, "records[%lu]", &k) == 1 &&
	         k < s->batch.count)
		snprintf(hint, sizeof(hint), " (record at %s:%" PRIu64 ")", s->batch.file,
		         s->batch.lines[k]);
	else if (code == HTTP_TOO_LARGE_CODE)
		snprintf(hint, sizeof(hint), " (try a smaller --batch)");
	say(&s->c->h, "%s: %d %s%s", where, code, detail, hint);
}

static void request_done(struct evhttp_request *req, void *arg)
{
	struct slot *s = arg;
	struct load_client *c = s->c;
	int code = req ? evhttp_request_get_response_code(req) : 0;
	char detail[DETAIL_MAX];

	c->requests++;
	if (code >= HTTP_SUCCESS_MIN && code < HTTP_SUCCESS_END) {
		c->sent += s->batch.count;
		slot_idle(s);
		return;
	}
	if (code == 0)
		snprintf(detail, sizeof(detail), "%s (%s:%d)", conn_error_text(s), c->host,
		         c->port);
	else
		response_detail(req, detail, sizeof(detail));
	if (retryable(code)) {
		retry_or_give_up(s, code, detail, req);
		return;
	}
	report_rejection(s, code, detail);
	c->rejected += s->batch.count;
	stop_loading(c);
	slot_idle(s);
}

/* ---- set-up --------------------------------------------------------------------------- */

struct load_client *load_client_new(const struct load_client_opts *o,
                                    const struct load_client_hooks *h)
{
	struct load_client *c = calloc(1, sizeof(*c));

	if (!c) {
		say(h, "out of memory");
		return NULL;
	}
	c->o = *o;
	c->h = *h;
	if (setup_target(c, o->url) < 0) {
		load_client_free(c);
		return NULL;
	}
	return c;
}

static int slot_init(struct load_client *c, struct slot *s)
{
	s->c = c;
	s->evcon = evhttp_connection_base_new(c->base, NULL, c->host, (unsigned short)c->port);
	s->retry_ev = evtimer_new(c->base, retry_fire, s);
	if (!s->evcon || !s->retry_ev)
		return -1;
	if ((c->o.line_protocol ? load_batch_init_lines(&s->batch, c->o.batch)
	                        : load_batch_init(&s->batch, c->o.source, c->o.batch)) < 0)
		return -1;
	evhttp_connection_set_timeout(s->evcon, REQUEST_TIMEOUT_S);
	evhttp_connection_set_max_body_size(s->evcon, RESPONSE_MAX_BYTES);
	return 0;
}

int load_client_open(struct load_client *c, struct event_base *base, const char *token)
{
	c->base = base;
	if (asprintf(&c->auth, "Bearer %s", token) < 0) {
		c->auth = NULL;
		return -1;
	}
	c->pump_ev = event_new(base, -1, 0, pump, c);
	c->slots = calloc((size_t)c->o.concurrency, sizeof(*c->slots));
	if (!c->pump_ev || !c->slots)
		return -1;
	for (long i = 0; i < c->o.concurrency; i++)
		if (slot_init(c, &c->slots[i]) < 0)
			return -1;
	return 0;
}

void load_client_start(struct load_client *c)
{
	schedule_pump(c);
}

void load_client_stats(const struct load_client *c, struct load_stats *out)
{
	*out = (struct load_stats){.sent = c->sent,
	                           .rejected = c->rejected,
	                           .requests = c->requests,
	                           .retries = c->retries,
	                           .failed = c->fatal,
	                           .drained = c->drained};
}

void load_client_free(struct load_client *c)
{
	if (!c)
		return;
	/* connections first: freeing them releases the body references into the slots */
	for (long i = 0; c->slots && i < c->o.concurrency; i++)
		if (c->slots[i].evcon)
			evhttp_connection_free(c->slots[i].evcon);
	for (long i = 0; c->slots && i < c->o.concurrency; i++) {
		struct slot *s = &c->slots[i];
		if (s->retry_ev)
			event_free(s->retry_ev);
		load_batch_free(&s->batch);
		buf_free(&s->gz);
	}
	free(c->slots);
	if (c->pump_ev)
		event_free(c->pump_ev);
	free(c->path);
	if (c->auth)
		explicit_bzero(c->auth, strlen(c->auth));
	free(c->auth);
	free(c);
}
