/*
 * parse.c - HTTP/1.1 request syntax (parse.h): the head's end, the request line,
 * header fields and body framing, parsed in place in the caller's buffer, and the
 * lines of a chunked body. Pure functions; owns nothing.
 */
#include "temporis/http/parse.h"

#include <string.h>
#include <strings.h>

#define HEX_BASE 16
#define DEC_BASE 10
#define VERSION_PREFIX "HTTP/"
#define ASCII_DEL 0x7f

/* ---- header lookup ---- */

const char *http_header(const struct http_req *req, const char *name)
{
	for (unsigned i = 0; i < req->nheaders; i++)
		if (strcasecmp(req->headers[i].name, name) == 0)
			return req->headers[i].value;
	return NULL;
}

bool http_header_has_token(const struct http_req *req, const char *name, const char *token)
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

/* ---- the head ---- */

size_t http_head_end(const char *p, size_t n, size_t *scan)
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

		if ((ch < ' ' && ch != '\t') || ch == ASCII_DEL)
			return false;
	}
	return true;
}

static bool is_target(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || (unsigned char)*s == ASCII_DEL)
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

static bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

/* "HTTP/d.d": 0 and the minor version for 1.0/1.1, 505 for other versions, 400 else. */
static int parse_version(const char *v, int *minor)
{
	size_t plen = strlen(VERSION_PREFIX);
	const char *d = v + plen;        /* "d.d" */

	if (strncmp(v, VERSION_PREFIX, plen) != 0 || !is_digit(d[0]) || d[1] != '.' ||
	    !is_digit(d[2]) || d[3] != '\0')
		return 400;
	if (d[0] != '1' || (d[2] != '0' && d[2] != '1'))
		return 505;
	*minor = d[2] - '0';
	return 0;
}

/* copy: where the NUL-terminated copy of the target that becomes the path goes. */
static int parse_request_line(struct http_req *req, char *line, char *copy)
{
	char *target, *version, *q;
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
		if (n > (INT64_MAX - (*v - '0')) / DEC_BASE)
			return -1;
		n = n * DEC_BASE + (*v - '0');
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
		*keep_alive = !http_header_has_token(req, "Connection", "close");
	else
		*keep_alive = http_header_has_token(req, "Connection", "keep-alive");
	return 0;
}

int http_parse_head(char *head, size_t len, struct http_req *req, bool *keep_alive)
{
	char *line = head, *end = head + len;
	bool first = true;

	if (memchr(head, '\0', len))
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
		st = first ? parse_request_line(req, line, end + 1) : parse_header_line(req, line);
		if (st)
			return st;
		first = false;
		line = nl + 1;
	}
	if (first)
		return 400;
	return parse_framing(req, keep_alive);
}

/* ---- bodies ---- */

int http_body_check(const struct http_req *req, uint64_t max_body, bool *send_continue)
{
	const char *expect = http_header(req, "Expect");

	if (req->content_length > 0 && (uint64_t)req->content_length > max_body)
		return 413;
	if (expect && strcasecmp(expect, "100-continue") != 0)
		return 417;
	*send_continue = expect != NULL && req->version_minor == 1;
	return 0;
}

static int hex_digit(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + DEC_BASE;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + DEC_BASE;
	return -1;
}

/* A chunk-size line: 0 with *size set, 400 if malformed, 413 if the size exceeds room. */
static int parse_chunk_size(const char *line, uint64_t room, uint64_t *size)
{
	const char *p = line;
	uint64_t n = 0;
	int d;

	if (hex_digit(*p) < 0)
		return 400;
	for (; (d = hex_digit(*p)) >= 0; p++) {
		if (n > room / HEX_BASE)
			return 413;
		n = n * HEX_BASE + (uint64_t)d;
	}
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '\0' && *p != ';')
		return 400;
	if (n > room)
		return 413;
	*size = n;
	return 0;
}

int http_chunked_line(struct http_chunked *d, const char *line, size_t len, uint64_t room,
		      size_t max_trailer)
{
	uint64_t size = 0;
	int st;

	switch (d->part) {
	case HTTP_CHUNK_SIZE:
		st = parse_chunk_size(line, room, &size);
		if (st)
			return st;
		d->left = size;
		d->part = size == 0 ? HTTP_CHUNK_TRAILER : HTTP_CHUNK_DATA;
		return 0;
	case HTTP_CHUNK_DATA_END:
		if (len > 0)
			return 400;
		d->part = HTTP_CHUNK_SIZE;
		return 0;
	case HTTP_CHUNK_TRAILER:
		/* Trailers are read and ignored, within the header budget. */
		d->trailer_bytes += len;
		if (d->trailer_bytes > max_trailer)
			return 431;
		if (len == 0)
			d->part = HTTP_CHUNK_DONE;
		return 0;
	default:
		return 400;              /* no line is due: data, or past the end */
	}
}

void http_chunked_data(struct http_chunked *d, uint64_t n)
{
	d->left -= n;
	if (d->left == 0)
		d->part = HTTP_CHUNK_DATA_END;
}
