/*
 * series_labels.c - a stored series name read back as labels (series_labels.h).
 * Owns the caller's struct series_labels buffers, which it grows and reuses.
 */
#include "temporis/data/series_labels.h"

#include <stdlib.h>
#include <string.h>

#include "temporis/base/buf.h"

#define LABELS_INITIAL 8
#define BUF_INITIAL 256
#define METRIC_LEN (sizeof(SERIES_LABELS_METRIC) - 1)

static bool is_alpha_(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Length of the name starting at s[0..n) ([a-zA-Z_(:)][a-zA-Z0-9_(:)]*), 0 if none. */
static size_t scan_name(const char *s, size_t n, bool colon)
{
	size_t i = 0;

	while (i < n && (is_alpha_(s[i]) || (colon && s[i] == ':') || (i > 0 && is_digit(s[i]))))
		i++;
	return i;
}

/* Room for need labels and buf_need bytes. 0 or -1. */
static int reserve(struct series_labels *sl, size_t need, size_t buf_need)
{
	void *v = sl->v, *b = sl->buf;
	size_t bcap = sl->buf_cap;

	if (vec_reserve(&v, &sl->cap, need, sizeof(*sl->v), LABELS_INITIAL) < 0)
		return -1;
	sl->v = v;
	if (vec_reserve(&b, &bcap, buf_need, 1, BUF_INITIAL) < 0)
		return -1;
	sl->buf = b;
	sl->buf_cap = bcap;
	return 0;
}

/* Copy s[0..n) into the buffer at *used, NUL-terminated; returns where it went. */
static char *put(struct series_labels *sl, size_t *used, const char *s, size_t n)
{
	char *dst = sl->buf + *used;

	memcpy(dst, s, n);
	dst[n] = '\0';
	*used += n + 1;
	return dst;
}

static void add(struct series_labels *sl, const char *name, size_t nlen, const char *value,
		size_t vlen)
{
	sl->v[sl->n++] = (struct series_label){name, nlen, value, vlen};
}

/*
 * The quoted value at s[0..n) (s[0] is '"'): unescapes it into the buffer and returns
 * the bytes consumed, or 0 when it is not a value of the text form.
 */
static size_t parse_value(struct series_labels *sl, size_t *used, const char *s, size_t n,
			  const char **out, size_t *out_len)
{
	char *dst = sl->buf + *used;
	size_t i = 1, len = 0;

	if (n == 0 || s[0] != '"')
		return 0;
	while (i < n && s[i] != '"') {
		if (s[i] == '\\') {
			if (i + 1 >= n)
				return 0;
			char e = s[i + 1];

			if (e != '\\' && e != '"' && e != 'n')
				return 0;
			dst[len++] = e == 'n' ? '\n' : e;
			i += 2;
			continue;
		}
		dst[len++] = s[i++];
	}
	if (i >= n)
		return 0;
	dst[len] = '\0';
	*used += len + 1;
	*out = dst;
	*out_len = len;
	return i + 1;
}

static bool name_taken(const struct series_labels *sl, const char *name, size_t len)
{
	for (size_t i = 0; i < sl->n; i++)
		if (sl->v[i].name_len == len && memcmp(sl->v[i].name, name, len) == 0)
			return true;
	return false;
}

/* The text form; false (sl half-filled) when the name does not follow it. */
static bool parse_text(struct series_labels *sl, const char *s, size_t n)
{
	size_t used = 0, mlen = scan_name(s, n, true), i;
	const char *metric;

	if (mlen == 0)
		return false;
	metric = put(sl, &used, s, mlen);
	add(sl, put(sl, &used, SERIES_LABELS_METRIC, METRIC_LEN), METRIC_LEN, metric, mlen);
	if (mlen == n)
		return true;
	if (s[mlen] != '{' || s[n - 1] != '}')
		return false;
	i = mlen + 1;
	if (i == n - 1)
		return true;
	for (;;) {
		size_t nl = scan_name(s + i, n - i, false), vl, vlen, used_name;
		const char *name, *value;

		if (nl == 0 || i + nl >= n || s[i + nl] != '=' || name_taken(sl, s + i, nl))
			return false;
		used_name = used;
		name = put(sl, &used, s + i, nl);
		i += nl + 1;
		vl = parse_value(sl, &used, s + i, n - i, &value, &vlen);
		if (vl == 0)
			return false;
		i += vl;
		if (vlen == 0)
			used = used_name; /* an empty value is no label */
		else
			add(sl, name, nl, value, vlen);
		if (i == n - 1)
			return s[i] == '}';
		if (s[i] != ',')
			return false;
		i++;
	}
}

/* Every other name: one __name__ label, the name made a valid metric name. */
static void parse_other(struct series_labels *sl, const char *s, size_t n)
{
	size_t used = 0;
	const char *mname = put(sl, &used, SERIES_LABELS_METRIC, METRIC_LEN);
	char *v = sl->buf + used;
	size_t len = 0;

	if (n > 0 && is_digit(s[0]))
		v[len++] = '_';
	for (size_t i = 0; i < n; i++)
		v[len++] = is_alpha_(s[i]) || is_digit(s[i]) || s[i] == ':' ? s[i] : '_';
	v[len] = '\0';
	sl->n = 0;
	add(sl, mname, METRIC_LEN, v, len);
}

int series_labels_parse(struct series_labels *sl, const char *name, size_t len)
{
	/* Unescaping only shrinks: every string fits in len bytes plus its NUL, and a
	 * label takes at least 5 bytes of the name (,a="") */
	size_t max_labels = len / 5 + 2;

	sl->n = 0;
	if (reserve(sl, max_labels, 2 * len + 2 * max_labels + METRIC_LEN + 4) < 0)
		return -1;
	if (!parse_text(sl, name, len)) {
		parse_other(sl, name, len);
		return 0;
	}
	series_labels_sort(sl->v, sl->n);
	return 0;
}

void series_labels_free(struct series_labels *sl)
{
	free(sl->v);
	free(sl->buf);
	*sl = (struct series_labels){0};
}
