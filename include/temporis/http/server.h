/*
 * http.h - a small HTTP/1.1 server on libevent bufferevents, used by the workers.
 *
 * libevent 2.1's evhttp reads a whole body before any user hook runs and answers
 * oversized bodies, bad requests and header overflows itself in HTML; the SPEC
 * needs its checks in order (auth before size) and JSON on every error. This layer
 * gives the handler the head first (on_head), then the body (on_body), and answers
 * its own protocol errors with the same JSON shape. One request per connection is
 * in progress at a time (pipelined requests wait); keep-alive, Expect:
 * 100-continue, chunked bodies, and per-request deadlines are handled here.
 */
#ifndef TEMPORIS_HTTP_H
#define TEMPORIS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct http_server;
struct http_conn;

enum http_method { HTTP_GET, HTTP_HEAD, HTTP_POST, HTTP_PUT, HTTP_DELETE, HTTP_PATCH,
		   HTTP_OPTIONS, HTTP_OTHER };

#define HTTP_MAX_HEADERS 64

struct http_header {
	const char *name;                /* NUL-terminated, as sent */
	const char *value;               /* NUL-terminated, trimmed */
};

struct http_req {
	struct http_conn *conn;
	enum http_method method;
	const char *method_str;
	const char *target;              /* request-target as sent, NUL-terminated */
	const char *path;                /* target up to '?', NUL-terminated, not decoded */
	const char *query;               /* after '?', NUL-terminated, or NULL */
	int version_minor;               /* HTTP/1.x */
	struct http_header headers[HTTP_MAX_HEADERS];
	unsigned nheaders;
	int64_t content_length;          /* -1 when absent or chunked */
	bool chunked;
	const uint8_t *body;             /* whole body, contiguous; valid until the response */
	size_t body_len;
	void *user;                      /* the handler's per-request state */
};

struct http_handler_ops {
	/*
	 * The head is complete. Respond now with http_respond* (the body, if any, is
	 * then discarded and the connection closed after the response) or return
	 * without responding to receive the body.
	 */
	void (*on_head)(struct http_req *req, void *arg);
	/* The body is complete: respond now or later with http_respond*. */
	void (*on_body)(struct http_req *req, void *arg);
	/* The connection closed before a response: forget req (it is freed after). */
	void (*on_abort)(struct http_req *req, void *arg);
};

struct http_limits {
	size_t max_header_bytes;         /* request line + headers; more is 431 */
	uint64_t max_body_bytes;         /* more is 413 "Request body too large." */
	uint32_t idle_timeout_s;         /* keep-alive idle, and deadline for a whole request */
	uint32_t max_connections;        /* past it, new connections are refused */
};

struct http_server *http_server_new(struct event_base *base, int listen_fd,
				    const struct http_limits *lim,
				    const struct http_handler_ops *ops, void *arg);
/*
 * Serve an already-connected stream socket (e.g. one end of a socketpair, so tests and
 * fuzzers can feed bytes in-process) as if it had been accepted. The server owns fd
 * from then on, on failure too. 0, or -1 when the connection cannot be set up.
 */
int http_server_adopt(struct http_server *s, int fd);
/* Stop accepting; open connections finish their current request, then close. */
void http_server_stop_accepting(struct http_server *s);
/* Requests received and not yet answered. */
size_t http_server_pending(const struct http_server *s);
size_t http_server_connections(const struct http_server *s);
/* Close every connection and free the server. */
void http_server_free(struct http_server *s);

/* Case-insensitive header lookup; NULL if absent. */
const char *http_header(const struct http_req *req, const char *name);

/*
 * Send the response. extra_headers is NULL or complete lines ("Allow: POST\r\n").
 * body may be NULL when len is 0. Content-Length is always set. After this call
 * req must not be used.
 */
void http_respond(struct http_req *req, int status, const char *content_type,
		  const char *extra_headers, const void *body, size_t len);
/* {"detail": detail} with Content-Type: application/json. */
void http_respond_error(struct http_req *req, int status, const char *detail,
			const char *extra_headers);

/* Standard reason phrase ("No Content") for a status code. */
const char *http_reason(int status);
/* Append detail to buf as a JSON string body {"detail":"..."}; returns length or -1. */
int http_error_body(char *buf, size_t cap, const char *detail);

#endif
