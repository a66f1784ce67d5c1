/*
 * route.c - maps (method, path) of the public API to a route id, and reads query
 * parameters (SPEC sections 3, 4). Pure functions over the caller's strings; owns nothing.
 */
#include "temporis/http/routes.h"

#include <stdbool.h>
#include <string.h>

#define SOURCES_PREFIX "/v1/data_sources"
/* The dashboard's files; http_static.c maps them to its two roots. */
#define STATIC_INDEX "/"
#define STATIC_PREFIX "/static/"
#define JAVASCRIPT_PREFIX "/javascript/"
#define HEX_BASE 16
#define DEC_BASE 10

#define ALLOW_GET "GET"
#define ALLOW_POST "POST"
#define ALLOW_GET_POST "GET, POST"

/* A sub-resource of /v1/data_sources/{name}: its suffix, method and route. */
struct source_route {
	const char *suffix;
	enum http_method method;         /* HTTP_GET also admits HEAD */
	enum route_id id;
	const char *allow;
};

static const struct source_route source_routes[] = {
	{ "", HTTP_GET, ROUTE_SOURCE_GET, ALLOW_GET },
	{ "/archive", HTTP_POST, ROUTE_SOURCE_ARCHIVE, ALLOW_POST },
	{ "/unarchive", HTTP_POST, ROUTE_SOURCE_UNARCHIVE, ALLOW_POST },
	{ "/series", HTTP_GET, ROUTE_SOURCE_SERIES, ALLOW_GET },
	{ "/records", HTTP_GET, ROUTE_SOURCE_RECORDS, ALLOW_GET },
};

static int hex_value(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + DEC_BASE;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + DEC_BASE;
	return -1;
}

/*
 * Percent-decode n bytes of s into out (cap bytes, NUL-terminated); '+' is a space
 * only in queries. Returns the decoded length, or -1 if malformed, if it decodes a
 * NUL (the result is used as a C string), or if it does not fit.
 */
static long pct_decode(const char *s, size_t n, bool plus_is_space, char *out, size_t cap)
{
	size_t len = 0;

	if (cap == 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];

		if (ch == '%') {
			int hi = i + 2 < n ? hex_value(s[i + 1]) : -1;
			int lo = i + 2 < n ? hex_value(s[i + 2]) : -1;

			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -1;
			ch = (char)(hi * HEX_BASE + lo);
			i += 2;
		} else if (ch == '+' && plus_is_space) {
			ch = ' ';
		}
		if (len + 1 >= cap)
			return -1;
		out[len++] = ch;
	}
	out[len] = '\0';
	return (long)len;
}

static bool method_is(enum http_method method, enum http_method want)
{
	return method == want || (want == HTTP_GET && method == HTTP_HEAD);
}

static void set_route(struct route_match *out, enum http_method method,
		      enum http_method want, enum route_id id, const char *allow)
{
	if (method_is(method, want)) {
		out->id = id;
	} else {
		out->id = ROUTE_METHOD_NOT_ALLOWED;
		out->allow = allow;
	}
}

/* rest is what follows "/v1/data_sources/". */
static void match_source(enum http_method method, const char *rest, struct route_match *out)
{
	size_t seg = strcspn(rest, "/");
	long len;

	if (strcmp(rest, "ingest") == 0) {
		set_route(out, method, HTTP_POST, ROUTE_INGEST, ALLOW_POST);
		return;
	}
	if (seg == 0)
		return;
	len = pct_decode(rest, seg, false, out->name, sizeof(out->name));
	if (len < 0)
		return;
	for (size_t i = 0; i < sizeof(source_routes) / sizeof(source_routes[0]); i++) {
		const struct source_route *r = &source_routes[i];

		if (strcmp(rest + seg, r->suffix) == 0) {
			out->name_len = (size_t)len;
			set_route(out, method, r->method, r->id, r->allow);
			return;
		}
	}
	out->name[0] = '\0';
}

static bool is_static_path(const char *path)
{
	return strcmp(path, STATIC_INDEX) == 0 ||
	       strncmp(path, STATIC_PREFIX, strlen(STATIC_PREFIX)) == 0 ||
	       strncmp(path, JAVASCRIPT_PREFIX, strlen(JAVASCRIPT_PREFIX)) == 0;
}

void route_match(enum http_method method, const char *path, struct route_match *out)
{
	size_t plen = strlen(SOURCES_PREFIX);

	memset(out, 0, sizeof(*out));
	out->id = ROUTE_NOT_FOUND;
	if (strcmp(path, "/healthz") == 0) {
		set_route(out, method, HTTP_GET, ROUTE_HEALTHZ, ALLOW_GET);
	} else if (strcmp(path, "/metrics") == 0) {
		set_route(out, method, HTTP_GET, ROUTE_METRICS, ALLOW_GET);
	} else if (is_static_path(path)) {
		set_route(out, method, HTTP_GET, ROUTE_STATIC, ALLOW_GET);
	} else if (strncmp(path, SOURCES_PREFIX, plen) == 0) {
		const char *rest = path + plen;

		if (*rest == '\0') {
			if (method == HTTP_POST)
				out->id = ROUTE_SOURCES_CREATE;
			else
				set_route(out, method, HTTP_GET, ROUTE_SOURCES_LIST, ALLOW_GET_POST);
		} else if (*rest == '/') {
			match_source(method, rest + 1, out);
		}
	}
}

long route_query_param(const char *query, const char *key, char *buf, size_t cap)
{
	size_t klen = strlen(key);

	while (query && *query) {
		size_t pair = strcspn(query, "&");
		size_t name = strcspn(query, "=&");
		char decoded[ROUTE_NAME_MAX + 1];
		long dlen = pct_decode(query, name, true, decoded, sizeof(decoded));

		if (dlen >= 0 && (size_t)dlen == klen && memcmp(decoded, key, klen) == 0) {
			const char *v = name < pair ? query + name + 1 : query + pair;
			size_t vlen = (size_t)(query + pair - v);
			long r = pct_decode(v, vlen, true, buf, cap);

			return r < 0 ? -2 : r;
		}
		query += pair;
		if (*query == '&')
			query++;
	}
	return -1;
}
