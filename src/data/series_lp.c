/*
 * series_lp.c - series names back to line protocol (series_lp.h): the inverse of what
 * ingest_lp.c builds, proved on each name by ingest_lp.c itself. Owns nothing: it
 * writes into the caller's buffer.
 */
#include "temporis/data/series_lp.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "temporis/data/ingest_lp.h"
#include "temporis/data/record.h"

/* What a one-record line needs after the key to be parsed: a value and a timestamp. */
#define PROBE_TAIL "0i 0"

#define WHY_NO_FIELD "the metric has no '_' between a measurement and a field"
#define WHY_NO_LINE "no line of line protocol maps to this name"

/* The labels' end when name[brace..len) is {key="value",...} as series_name_format
 * writes it, else 0. */
static size_t labels_valid(const char *name, size_t len, size_t brace)
{
	size_t i = brace + 1;

	if (len - brace < 2 || name[len - 1] != '}')
		return 0;
	while (i < len - 1) {
		size_t key = i;

		while (i < len && name[i] != '=' && name[i] != '"' && name[i] != ',')
			i++;
		if (i == key || i + 1 >= len || name[i] != '=' || name[i + 1] != '"')
			return 0;
		for (i += 2; i < len && name[i] != '"'; i++)
			if (name[i] == '\\' && ++i == len)
				return 0;
		if (i >= len - 1)
			return 0;
		i++;                         /* the closing quote */
		if (name[i] == ',')
			i++;
		else if (i != len - 1)
			return 0;
	}
	return i == len - 1 ? len : 0;
}

/* Append s[0..n) with a backslash before each byte line protocol would end a token at. */
static void put_escaped(struct buf *out, const char *s, size_t n, const char *special)
{
	size_t run = 0;

	for (size_t i = 0; i < n; i++) {
		if (strchr(special, s[i]) == NULL || s[i] == '\0')
			continue;
		buf_append(out, s + run, i - run);
		buf_append(out, "\\", 1);
		run = i;
	}
	buf_append(out, s + run, n - run);
}

/* Each label of name[brace..) as ",key=value": Prometheus's escapes undone, line
 * protocol's applied. -1 when a value cannot be a tag value. */
static int put_tags(struct buf *out, const char *name, size_t len, size_t brace)
{
	size_t i = brace + 1;

	while (i < len - 1) {
		size_t key = i;

		while (name[i] != '=')
			i++;
		buf_append(out, ",", 1);
		put_escaped(out, name + key, i - key, "\\, =");
		buf_append(out, "=", 1);
		i += 2;
		if (name[i] == '"')
			return -1;               /* line protocol has no empty tag value */
		for (; name[i] != '"'; i++) {
			char c = name[i];

			if (c == '\\') {
				c = name[++i];
				if (c == 'n')
					return -1;       /* a newline ends a line, escaped or not */
			}
			put_escaped(out, &c, 1, "\\, =");
		}
		i++;
		if (name[i] == ',')
			i++;
	}
	return 0;
}

/* Whether out[from..) followed by a value and timestamp reads back as name. */
static int proves(struct ingest_lp *check, struct buf *out, size_t from, const char *name,
		  size_t len)
{
	const struct ingest_limits lim = { .max_records = 1, .max_payload = 2 * REC_NAME_MAX };
	struct ingest_result res;
	struct rec r;
	size_t key_end = out->len;
	int rc;

	if (buf_append(out, PROBE_TAIL, strlen(PROBE_TAIL)) < 0)
		return -2;
	rc = ingest_lp_parse(check, out->data + from, out->len - from, LP_S, 0, &lim, &res);
	out->len = key_end;
	if (rc < 0)
		return -2;
	if (rc != 0 || res.nrecords != 1 ||
	    rec_decode(res.payload, res.payload + res.payload_len, &r) == NULL)
		return -1;
	return r.name_len == len && memcmp(r.name, name, len) == 0 ? 0 : -1;
}

int series_lp_key(struct ingest_lp *check, const char *name, size_t len, struct buf *out,
		  const char **why)
{
	const char *brace = memchr(name, '{', len);
	size_t from = out->len, mlen = len, under;
	int rc;

	if (brace != NULL && labels_valid(name, len, (size_t)(brace - name)) == len)
		mlen = (size_t)(brace - name);
	for (under = mlen; under > 0 && name[under - 1] != '_'; under--)
		continue;
	if (under <= 1 || under == mlen) {
		*why = WHY_NO_FIELD;
		return -1;
	}
	put_escaped(out, name, under - 1, "\\, ");
	if (mlen < len && put_tags(out, name, len, mlen) < 0) {
		out->len = from;
		*why = WHY_NO_LINE;
		return -1;
	}
	buf_append(out, " ", 1);
	put_escaped(out, name + under, mlen - under, "\\, =");
	buf_append(out, "=", 1);
	if (out->failed)
		return -2;
	rc = proves(check, out, from, name, len);
	if (rc == -1) {
		out->len = from;
		*why = WHY_NO_LINE;
	}
	return rc;
}
