/*
 * response.h - the text of a response: its head, reason phrases, the JSON error
 * body, and the details of the HTTP layer's own errors (response.c).
 */
#ifndef TEMPORIS_HTTP_RESPONSE_H
#define TEMPORIS_HTTP_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>

#include "temporis/base/buf.h"

/* Standard reason phrase ("No Content") for a status code; "Unknown" if unlisted. */
const char *http_reason(int status);
/* The member an error body names its text with, unless the request says otherwise. */
#define HTTP_ERROR_KEY "detail"
/* Write {"KEY": detail} (JSON-escaped, NUL-terminated) into buf; its length or -1. key is a
 * plain member name (no escaping); NULL is HTTP_ERROR_KEY. */
int http_error_body(char *buf, size_t cap, const char *key, const char *detail);
/* The detail the HTTP layer sends with its own error status ("Bad request." for 400). */
const char *http_protocol_detail(int status);

/* Does a response of this status carry a body and a Content-Length? Not 1xx, 204, 304. */
bool http_status_has_body(int status);
/* len values of http_response_head for a body of unknown length (a streamed one). */
#define HTTP_BODY_CHUNKED ((size_t)-1)      /* Transfer-Encoding: chunked (HTTP/1.1) */
#define HTTP_BODY_TO_CLOSE ((size_t)-2)     /* no length: the body ends with the connection */

/*
 * Append a response head to out: the status line, Content-Type when ctype is set,
 * Content-Length: len when the status has a body (or the HTTP_BODY_* above), Connection when connection is set
 * ("close", "keep-alive"), extra (NULL or complete lines), and the blank line.
 * 0, or -1 when memory ran out (out->failed).
 */
int http_response_head(struct buf *out, int status, const char *ctype, size_t len,
		       const char *connection, const char *extra);

#endif
