/*
 * response.c - the text of a response (RFC 9112): its head, the reason phrase of its
 * status, the JSON error body {"detail": ...} every error carries, and the details of
 * the errors the HTTP layer answers itself. Pure functions; the caller owns the bytes.
 */
#include "temporis/http/response.h"

#include <string.h>

#define HEX_BASE 16
#define STATUS_FIRST_FINAL 200           /* below: informational, no body */

const char *http_protocol_detail(int status)
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
	case 507: return "Insufficient Storage";
	default: return "Unknown";
	}
}

int http_error_body(char *buf, size_t cap, const char *key, const char *detail)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

#define PUT(ch) do { if (n + 1 >= cap) return -1; buf[n++] = (char)(ch); } while (0)
	PUT('{');
	PUT('"');
	for (const char *p = key ? key : HTTP_ERROR_KEY; *p; p++)
		PUT(*p);
	PUT('"');
	PUT(':');
	PUT('"');
	for (const unsigned char *p = (const unsigned char *)detail; *p; p++) {
		if (*p == '"' || *p == '\\') {
			PUT('\\');
			PUT(*p);
		} else if (*p < ' ') {
			PUT('\\'); PUT('u'); PUT('0'); PUT('0');
			PUT(hex[*p / HEX_BASE]);
			PUT(hex[*p % HEX_BASE]);
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

bool http_status_has_body(int status)
{
	return status >= STATUS_FIRST_FINAL && status != 204 && status != 304;
}

int http_response_head(struct buf *out, int status, const char *ctype, size_t len,
		       const char *connection, const char *extra)
{
	buf_printf(out, "HTTP/1.1 %d %s\r\n", status, http_reason(status));
	if (ctype)
		buf_printf(out, "Content-Type: %s\r\n", ctype);
	if (http_status_has_body(status) && len == HTTP_BODY_CHUNKED)
		buf_printf(out, "Transfer-Encoding: chunked\r\n");
	else if (http_status_has_body(status) && len != HTTP_BODY_TO_CLOSE)
		buf_printf(out, "Content-Length: %zu\r\n", len);
	if (connection)
		buf_printf(out, "Connection: %s\r\n", connection);
	if (extra)
		buf_append(out, extra, strlen(extra));
	buf_append(out, "\r\n", strlen("\r\n"));
	return out->failed ? -1 : 0;
}
