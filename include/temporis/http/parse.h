/*
 * parse.h - HTTP/1.1 request syntax (RFC 9112): where a head ends, the request line,
 * the header fields, the body framing they announce, and chunked bodies' lines. Pure
 * functions over the caller's bytes; nothing here reads a socket or allocates.
 * server.c feeds them from its connections; tests and fuzzers can call them directly.
 */
#ifndef TEMPORIS_HTTP_PARSE_H
#define TEMPORIS_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http_conn;

enum http_method { HTTP_GET, HTTP_HEAD, HTTP_POST, HTTP_PUT, HTTP_DELETE, HTTP_PATCH,
		   HTTP_OPTIONS, HTTP_OTHER };

#define HTTP_MAX_HEADERS 64

struct http_header {
	const char *name;                /* NUL-terminated, as sent */
	const char *value;               /* NUL-terminated, trimmed */
};

/* A request: the head's fields point into the buffer http_parse_head parsed in place. */
struct http_req {
	struct http_conn *conn;          /* server.c's connection */
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
	/* The member of this request's error bodies, the HTTP layer's own too: NULL is
	 * "detail"; a handler of a protocol whose clients read another sets it in on_head. */
	const char *error_key;
};

/* Bytes a head of len bytes needs to be parsed in place: itself, a NUL, a target copy. */
#define HTTP_HEAD_ROOM(len) (2 * (len) + 2)

/*
 * Offset just past the blank line that ends a head in p[0..n) (CRLF or bare LF line
 * ends), or 0 if it is not there yet; *scan (0 at first) resumes the search next time.
 */
size_t http_head_end(const char *p, size_t n, size_t *scan);

/*
 * Parse a complete head in place: head holds len bytes ending with the blank line,
 * then a NUL, in a buffer of HTTP_HEAD_ROOM(len) bytes (the path is split off a copy of
 * the target, so the target stays as sent). Fills req's request line, headers,
 * content_length and chunked, and *keep_alive from the version and Connection.
 * 0, or the status to answer: 400 malformed, 431 too many fields, 501 a
 * Transfer-Encoding other than chunked, 505 a version other than HTTP/1.0 and 1.1.
 */
int http_parse_head(char *head, size_t len, struct http_req *req, bool *keep_alive);

/*
 * What the head asks before its body is read: 0 to read it, with *send_continue set
 * when an HTTP/1.1 client waits for "100 Continue" (HTTP/1.0 ones do not know it);
 * 413 when Content-Length exceeds max_body; 417 for an Expect other than 100-continue.
 */
int http_body_check(const struct http_req *req, uint64_t max_body, bool *send_continue);

/* Where the decoding of a chunked body stands; zero-initialised is its start. */
enum http_chunk_part {
	HTTP_CHUNK_SIZE,                 /* a chunk-size line is next */
	HTTP_CHUNK_DATA,                 /* left bytes of chunk data are next */
	HTTP_CHUNK_DATA_END,             /* the empty line after a chunk's data is next */
	HTTP_CHUNK_TRAILER,              /* trailer fields, until an empty line */
	HTTP_CHUNK_DONE,                 /* the body is complete */
};

struct http_chunked {
	enum http_chunk_part part;
	uint64_t left;                   /* data bytes still to come in this chunk */
	size_t trailer_bytes;            /* trailer field bytes so far */
};

/*
 * Take one line of a chunked body, without its line end, in any part but DATA: a
 * chunk size (hex digits, optional blanks, optional ";extensions"; room is how many
 * more body bytes are allowed), the empty line after a chunk's data, or a trailer
 * field (read and ignored, max_trailer bytes in all). 0, or the status to answer:
 * 400 malformed, 413 a chunk past room, 431 trailers past max_trailer.
 */
int http_chunked_line(struct http_chunked *d, const char *line, size_t len, uint64_t room,
		      size_t max_trailer);
/* n bytes (at most d->left) of the current chunk's data arrived. */
void http_chunked_data(struct http_chunked *d, uint64_t n);

/* Case-insensitive header lookup; NULL if absent. */
const char *http_header(const struct http_req *req, const char *name);
/* Is token one of the comma-separated elements of any `name` header (case-insensitive)? */
bool http_header_has_token(const struct http_req *req, const char *name, const char *token);

#endif
