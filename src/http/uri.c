/*
 * uri.c - percent-decoding, path patterns and query parameters of the API's
 * request-targets (uri.h). Pure functions over the caller's strings; owns nothing.
 */
#include "temporis/http/uri.h"

#include <string.h>

#define HEX_BASE 16
#define DEC_BASE 10
#define NAME_HOLE "{name}"
#define ANY_REST '*'

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

long uri_decode(const char *s, size_t n, bool plus_is_space, char *out, size_t cap)
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

/* The literal part of a pattern (no {name}) against the rest of a path. */
static bool literal_match(const char *pattern, const char *path)
{
	size_t n = strlen(pattern);

	if (n > 0 && pattern[n - 1] == ANY_REST)
		return strncmp(path, pattern, n - 1) == 0;
	return strcmp(path, pattern) == 0;
}

bool uri_match(const char *pattern, const char *path, char *name, size_t cap, size_t *name_len)
{
	const char *hole = strstr(pattern, NAME_HOLE);
	size_t before, seg;
	long len;

	*name_len = 0;
	if (hole == NULL)
		return literal_match(pattern, path);
	before = (size_t)(hole - pattern);
	if (strncmp(path, pattern, before) != 0)
		return false;
	path += before;
	seg = strcspn(path, "/");
	if (seg == 0)
		return false;
	len = uri_decode(path, seg, false, name, cap);
	if (len < 0 || !literal_match(hole + strlen(NAME_HOLE), path + seg))
		return false;
	*name_len = (size_t)len;
	return true;
}

long uri_query_param_nth(const char *query, const char *key, size_t nth, char *buf, size_t cap)
{
	size_t klen = strlen(key);

	while (query && *query) {
		size_t pair = strcspn(query, "&");
		size_t name = strcspn(query, "=&");
		char decoded[URI_NAME_MAX + 1];
		long dlen = uri_decode(query, name, true, decoded, sizeof(decoded));

		if (dlen >= 0 && (size_t)dlen == klen && memcmp(decoded, key, klen) == 0 &&
		    nth-- == 0) {
			const char *v = name < pair ? query + name + 1 : query + pair;
			size_t vlen = (size_t)(query + pair - v);
			long r = uri_decode(v, vlen, true, buf, cap);

			return r < 0 ? -2 : r;
		}
		query += pair;
		if (*query == '&')
			query++;
	}
	return -1;
}

long uri_query_param(const char *query, const char *key, char *buf, size_t cap)
{
	return uri_query_param_nth(query, key, 0, buf, cap);
}
