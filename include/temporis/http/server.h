/*
 * server.h - a small HTTP/1.1 server on libevent bufferevents, used by the workers: it
 * gives the handler the head first, then the body, and answers its own protocol errors
 * in JSON (README says why not evhttp). One request per connection is in progress at a
 * time (pipelined requests wait); keep-alive, Expect: 100-continue, chunked bodies and
 * per-request deadlines are handled here.
 */
#ifndef TEMPORIS_HTTP_SERVER_H
#define TEMPORIS_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "temporis/http/parse.h"
#include "temporis/http/response.h"

struct event_base;
struct http_server;

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
	/*
	 * Optional: the handler answers req with status through http_respond*; called
	 * before the response is queued, the last moment req->user is the handler's.
	 * Each request seen in on_head ends in exactly one on_respond or on_abort
	 * (this layer's own protocol errors end in on_abort).
	 */
	void (*on_respond)(struct http_req *req, int status, void *arg);
};

struct http_limits {
	size_t max_header_bytes;         /* request line + headers; more is 431 */
	uint64_t max_body_bytes;         /* more is 413 "Request body too large." */
	uint32_t idle_timeout_s;         /* keep-alive idle, and deadline for a request's body */
	uint32_t header_timeout_s;       /* deadline for a request's head; 0: idle_timeout_s */
	uint32_t max_connections;        /* past it, the oldest idle or unfinished-head
					  * connection is closed, else new ones are refused */
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

/*
 * Streaming responses: a body of unknown length, sent as it is made, with
 * Transfer-Encoding: chunked (to an HTTP/1.0 client: unframed, ending with the
 * connection). The stream's producer is called back for more only once the
 * connection's output has drained below HTTP_STREAM_LOW_WM, so a stream holds at most
 * about that much plus one write in memory however long it runs. A client that
 * closes its side, a write error, and a client that reads nothing for idle_timeout_s
 * while output waits all close the connection and end in on_close.
 */
#define HTTP_STREAM_LOW_WM (64 * 1024)

struct http_stream_ops {
	/*
	 * The output drained below HTTP_STREAM_LOW_WM after an http_stream_write: write
	 * more, end or abort, now or later (nothing is called again until then).
	 */
	void (*on_more)(struct http_req *req, void *arg);
	/* The connection is going away mid-stream: forget req (no more http_stream_*). */
	void (*on_close)(struct http_req *req, void *arg);
};

/*
 * Answer req with status and start its body: the head goes out now (the handler's
 * on_respond sees status here). 0: stream with http_stream_write, then
 * http_stream_end or http_stream_abort. -1: the response is already complete (a HEAD
 * request) or could not be queued (the connection closes); req must not be used and
 * no ops are called.
 */
int http_stream_start(struct http_req *req, int status, const char *content_type,
		      const char *extra_headers, const struct http_stream_ops *ops, void *arg);
/* Queue len bytes as one chunk (nothing for len 0). 0, or -1 when the connection is
 * lost for it (on_close follows from the loop, never from inside this call). */
int http_stream_write(struct http_req *req, const void *data, size_t len);
/* The last chunk (0\r\n\r\n); the connection then goes on as after any response. */
void http_stream_end(struct http_req *req);
/* Close the connection mid-stream, so the client sees a truncated body (no last
 * chunk), never a complete wrong one. on_close is not called. */
void http_stream_abort(struct http_req *req);

#endif
