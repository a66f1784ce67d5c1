/*
 * ingest.c - validation of an ingest request body: JSON (400), schema (422), limits (413).
 *
 * Owns one reusable json-c tokener and the parser's buffers: the packed records
 * (record.h wire form), the NUL-terminated data_source copy, and a scratch copy
 * of the body used only on the rare path that disambiguates clamped integers.
 * The single-pass parser (ingest_fast.c) answers first; json-c decides the rest.
 */
#define _GNU_SOURCE /* memmem */
#include "temporis/data/ingest.h"

#include <json-c/json.h>
#include <json-c/json_object_iterator.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "temporis/data/ingest_fast.h"
#include "temporis/data/record.h"
#include "temporis/data/series_name.h"

/* Our documents nest 3 deep; anything far deeper is hostile and answers 400. */
#define INGEST_JSON_DEPTH 32
/* json_tokener_parse_ex takes an int length; larger bodies are fed in pieces. */
#define INGEST_CHUNK_MAX INT_MAX
#define INGEST_SOURCE_MIN_CAP 64
/* The magnitude of INT64_MIN; longer or larger negative literals were clamped. */
#define INT64_MIN_DIGITS "9223372036854775808"
#define INT64_MIN_NDIGITS (sizeof(INT64_MIN_DIGITS) - 1)

#ifdef JSON_TOKENER_VALIDATE_UTF8
#define INGEST_TOKENER_FLAGS (JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8)
#else
#define INGEST_TOKENER_FLAGS JSON_TOKENER_STRICT
#endif

#define DETAIL_BAD_JSON "Request body is not valid JSON."
#define DETAIL_TOO_MANY "Too many records in one request."
#define DETAIL_TOO_LARGE "Request body too large."

/* One idiom for the whole file: every helper returns one of these. */
enum verdict {
	V_NOMEM = -1,
	V_OK = 0,
	V_RECHECK = 1,          /* internal: an INT64_MIN may be a clamped literal */
	V_BAD_JSON = 400,
	V_TOO_LARGE = 413,
	V_SCHEMA = 422,
};

struct ingest_parser {
	struct json_tokener *tok;
	/* Buffers that only grow, reused from request to request. */
	struct ingest_buf payload; /* packed records of the last valid request */
	struct ingest_buf source;  /* data_source of the last valid request, NUL-terminated */
	struct ingest_buf scratch; /* body copy with clamped negatives rewritten (rare path) */
};

/* Running state of one schema pass over the records array. */
struct pack_state {
	const struct ingest_limits *lim;
	bool mins_exact;        /* every INT64_MIN in the tree is a real literal */
	struct json_object *source; /* the data_source string, once checked */
	size_t count;           /* records checked; size_t so no body can wrap it */
	size_t size;            /* packed bytes of all records so far, written or not */
};

struct ingest_parser *ingest_parser_new(void)
{
	struct ingest_parser *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->tok = json_tokener_new_ex(INGEST_JSON_DEPTH);
	if (p->tok == NULL) {
		free(p);
		return NULL;
	}
	json_tokener_set_flags(p->tok, INGEST_TOKENER_FLAGS);
	return p;
}

void ingest_parser_free(struct ingest_parser *p)
{
	if (p == NULL)
		return;
	json_tokener_free(p->tok);
	free(p->payload.data);
	free(p->source.data);
	free(p->scratch.data);
	free(p);
}

/* Grow b geometrically to hold need bytes; old contents are kept. */
static enum verdict reserve(struct ingest_buf *b, size_t need, size_t min_cap)
{
	return ingest_buf_reserve(b, need, min_cap) == 0 ? V_OK : V_NOMEM;
}

static enum verdict fail(struct ingest_result *out, enum verdict v, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum verdict fail(struct ingest_result *out, enum verdict v, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out->detail, sizeof(out->detail), fmt, ap);
	va_end(ap);
	return v;
}

/*
 * Parse exactly one JSON value from body into *root (NULL for a JSON null).
 * json-c cannot tell that a body ending inside a number (or a bare literal) is
 * complete and reports "continue"; a final NUL byte tells it the input is over,
 * which accepts `123` but still rejects `{"a":1`. A success that stops short of
 * len means an embedded NUL byte.
 */
static enum verdict parse_json(struct json_tokener *tok, const char *body, size_t len,
			       struct json_object **root)
{
	enum json_tokener_error err = json_tokener_continue;
	size_t off = 0;

	*root = NULL;
	json_tokener_reset(tok);
	while (off < len && err == json_tokener_continue) {
		size_t n = len - off > INGEST_CHUNK_MAX ? INGEST_CHUNK_MAX : len - off;

		*root = json_tokener_parse_ex(tok, body + off, (int)n);
		err = json_tokener_get_error(tok);
		if (err == json_tokener_continue)
			off += n;
	}
	if (err == json_tokener_continue) {
		*root = json_tokener_parse_ex(tok, "", 1);
		err = json_tokener_get_error(tok);
		off = len;
	} else {
		off += json_tokener_get_parse_end(tok);
	}
	if (err == json_tokener_success && off == len)
		return V_OK;
	json_object_put(*root);
	*root = NULL;
	return V_BAD_JSON;
}

static inline bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* One number at *pp in JSON's grammar, -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?. */
static bool number_ok(const unsigned char **pp, const unsigned char *end)
{
	const unsigned char *p = *pp;

	if (p < end && *p == '-')
		p++;
	if (p == end || !is_digit(*p))
		return false;
	if (*p == '0')
		p++;
	else
		while (p < end && is_digit(*p))
			p++;
	if (p < end && *p == '.') {
		if (++p == end || !is_digit(*p))
			return false;
		while (p < end && is_digit(*p))
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (p == end || !is_digit(*p))
			return false;
		while (p < end && is_digit(*p))
			p++;
	}
	if (p < end && is_digit(*p))
		return false;  /* a leading zero: "01" */
	*pp = p;
	return true;
}

/*
 * json-c also takes numbers JSON does not have, even in strict mode: "1.", "01",
 * "-01", "1.e5". Every number outside the strings of a body json-c accepted is held
 * to the grammar (json-c has judged the rest). Only the bodies the single-pass
 * parser left to json-c pay for this.
 */
static bool numbers_strict(const char *body, size_t len)
{
	const unsigned char *p = (const unsigned char *)body, *end = p + len;

	while (p < end) {
		if (*p == '"') {
			for (p++; p < end && *p != '"'; p++)
				if (*p == '\\')
					p++;
			p++;
		} else if (*p == '-' || is_digit(*p)) {
			if (!number_ok(&p, end))
				return false;
		} else {
			p++;
		}
	}
	return true;
}

/* json-c 0.16 accepts NaN, Infinity and -Infinity even in strict mode. */
static bool is_nonfinite_literal(struct json_object *o)
{
	double d = json_object_get_double(o);
	const char *text;

	if (isnan(d))
		return true;
	if (!isinf(d))
		return false;
	/* 1e400 overflows to inf too, but is a number literal (a schema error). */
	text = json_object_get_string(o);
	if (text == NULL)
		return true;
	if (*text == '-')
		text++;
	return !(*text >= '0' && *text <= '9');
}

/* Recursion is bounded by the tokener's depth limit. */
static bool tree_has_nonfinite_literal(struct json_object *o)
{
	struct json_object_iterator it, end;
	size_t i, n;

	switch (json_object_get_type(o)) {
	case json_type_double:
		return is_nonfinite_literal(o);
	case json_type_array:
		n = json_object_array_length(o);
		for (i = 0; i < n; i++)
			if (tree_has_nonfinite_literal(json_object_array_get_idx(o, i)))
				return true;
		return false;
	case json_type_object:
		it = json_object_iter_begin(o);
		end = json_object_iter_end(o);
		for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it))
			if (tree_has_nonfinite_literal(json_object_iter_peek_value(&it)))
				return true;
		return false;
	default:
		return false;
	}
}

/* The tree walk is skipped unless the body could hold such a literal at all. */
static bool has_nonfinite_literal(const char *body, size_t len, struct json_object *root)
{
	if (memmem(body, len, "NaN", strlen("NaN")) == NULL &&
	    memmem(body, len, "Infinity", strlen("Infinity")) == NULL)
		return false;
	return tree_has_nonfinite_literal(root);
}

/*
 * json-c clamps integer literals: above UINT64_MAX to UINT64_MAX (still beyond
 * int64, so detectable) and below INT64_MIN to INT64_MIN (indistinguishable from
 * an exact INT64_MIN). The latter is resolved by the caller's recheck.
 */
static enum verdict read_int64(struct json_object *o, bool mins_exact, bool *in_range, int64_t *v)
{
	*v = json_object_get_int64(o);
	*in_range = !(*v == INT64_MAX && json_object_get_uint64(o) > (uint64_t)INT64_MAX);
	if (*in_range && *v == INT64_MIN && !mins_exact)
		return V_RECHECK;
	return V_OK;
}

static enum verdict check_timestamp(struct json_object *r, const struct pack_state *st,
				    size_t idx, struct rec *rec, struct ingest_result *out)
{
	struct json_object *o;
	bool in_range;

	if (!json_object_object_get_ex(r, "timestamp", &o) || !json_object_is_type(o, json_type_int))
		return fail(out, V_SCHEMA, "records[%zu].timestamp must be an integer.", idx);
	if (read_int64(o, st->mins_exact, &in_range, &rec->ts) == V_RECHECK)
		return V_RECHECK;
	if (!in_range)
		return fail(out, V_SCHEMA, "records[%zu].timestamp must be an integer.", idx);
	return V_OK;
}

static enum verdict check_name(struct json_object *r, size_t idx, struct rec *rec,
			       struct ingest_result *out)
{
	struct json_object *o;
	int len;

	if (!json_object_object_get_ex(r, "name", &o) || !json_object_is_type(o, json_type_string))
		goto bad;
	len = json_object_get_string_len(o);
	rec->name = json_object_get_string(o);
	if (len < 0 || !series_name_ok(rec->name, (size_t)len))
		goto bad;
	rec->name_len = (uint16_t)len;
	return V_OK;
bad:
	return fail(out, V_SCHEMA, "records[%zu].name must be a non-empty string of at most %d "
		    "bytes without control characters.", idx, REC_NAME_MAX);
}

static enum verdict check_value(struct json_object *r, const struct pack_state *st,
				size_t idx, struct rec *rec, struct ingest_result *out)
{
	struct json_object *o;
	bool in_range;

	if (!json_object_object_get_ex(r, "value", &o))
		goto not_number;
	if (json_object_is_type(o, json_type_int)) {
		rec->type = REC_INT;
		if (read_int64(o, st->mins_exact, &in_range, &rec->v.i) == V_RECHECK)
			return V_RECHECK;
		if (!in_range)
			return fail(out, V_SCHEMA, "records[%zu].value must be an integer "
				    "within the 64-bit range.", idx);
		return V_OK;
	}
	if (!json_object_is_type(o, json_type_double))
		goto not_number;
	rec->type = REC_DOUBLE;
	rec->v.d = json_object_get_double(o);
	if (!isfinite(rec->v.d))
		goto not_number;
	return V_OK;
not_number:
	return fail(out, V_SCHEMA, "records[%zu].value must be a number.", idx);
}

/* Validate one record and, while the request still fits the limits, pack it. */
static enum verdict check_record(struct ingest_parser *p, struct json_object *r,
				 struct pack_state *st, struct ingest_result *out)
{
	size_t idx = st->count;
	struct rec rec = { 0 }; /* keeps gcc -O2 -Wmaybe-uninitialized quiet */
	enum verdict v;

	if (!json_object_is_type(r, json_type_object))
		return fail(out, V_SCHEMA, "records[%zu] must be an object.", idx);
	v = check_timestamp(r, st, idx, &rec, out);
	if (v == V_OK)
		v = check_name(r, idx, &rec, out);
	if (v == V_OK)
		v = check_value(r, st, idx, &rec, out);
	if (v != V_OK)
		return v;
	st->count++;
	st->size += rec_wire_size(&rec);
	/* A request over a limit is refused whole; stop spending memory on it. */
	if (st->count > st->lim->max_records || st->size > st->lim->max_payload)
		return V_OK;
	if (reserve(&p->payload, st->size, INGEST_PAYLOAD_MIN_CAP) != V_OK)
		return V_NOMEM;
	rec_encode(p->payload.data + st->size - rec_wire_size(&rec), &rec);
	return V_OK;
}

static enum verdict check_document(struct ingest_parser *p, struct json_object *root,
				   struct pack_state *st, struct ingest_result *out)
{
	struct json_object *source, *records;
	size_t i, n;
	enum verdict v;

	if (!json_object_is_type(root, json_type_object))
		return fail(out, V_SCHEMA, "Request body must be a JSON object.");
	if (!json_object_object_get_ex(root, "data_source", &source) ||
	    !json_object_is_type(source, json_type_string))
		return fail(out, V_SCHEMA, "data_source must be a string.");
	st->source = source;
	if (!json_object_object_get_ex(root, "records", &records) ||
	    !json_object_is_type(records, json_type_array))
		return fail(out, V_SCHEMA, "records must be a list.");
	st->count = 0;
	st->size = 0;
	n = json_object_array_length(records);
	for (i = 0; i < n; i++) {
		v = check_record(p, json_object_array_get_idx(records, i), st, out);
		if (v != V_OK)
			return v;
	}
	if (st->count > st->lim->max_records)
		return fail(out, V_TOO_LARGE, DETAIL_TOO_MANY);
	if (st->size > st->lim->max_payload)
		return fail(out, V_TOO_LARGE, DETAIL_TOO_LARGE);
	return V_OK;
}

/* A clamped literal: '-', then more significant digits than INT64_MIN has, or larger ones. */
static bool neg_literal_overflows(const char *digits, size_t n)
{
	while (n > 1 && *digits == '0') {
		digits++;
		n--;
	}
	if (n != INT64_MIN_NDIGITS)
		return n > INT64_MIN_NDIGITS;
	return memcmp(digits, INT64_MIN_DIGITS, INT64_MIN_NDIGITS) > 0;
}

/*
 * In a copy of valid JSON, replace every negative integer literal below INT64_MIN
 * by INT64_MIN's magnitude plus spaces: a positive integer json-c keeps exactly
 * and the schema rejects just as it must reject the original. Returns the count.
 */
static size_t rewrite_clamped_negatives(char *s, size_t len)
{
	size_t i, j, count = 0;
	bool in_string = false;

	for (i = 0; i < len; i++) {
		if (in_string) {
			if (s[i] == '\\')
				i++;
			else if (s[i] == '"')
				in_string = false;
			continue;
		}
		if (s[i] == '"') {
			in_string = true;
			continue;
		}
		/* A '-' after 'e' or 'E' is an exponent sign, not an integer's. */
		if (s[i] != '-' || (i > 0 && (s[i - 1] == 'e' || s[i - 1] == 'E')))
			continue;
		for (j = i + 1; j < len && s[j] >= '0' && s[j] <= '9'; j++)
			;
		if ((j == len || (s[j] != '.' && s[j] != 'e' && s[j] != 'E')) &&
		    neg_literal_overflows(s + i + 1, j - i - 1)) {
			memcpy(s + i, INT64_MIN_DIGITS, INT64_MIN_NDIGITS);
			memset(s + i + INT64_MIN_NDIGITS, ' ', j - i - INT64_MIN_NDIGITS);
			count++;
		}
		i = j - 1;
	}
	return count;
}

/*
 * A record held INT64_MIN, which may have been a clamped literal. If the body
 * has clamped literals, reparse a rewritten copy; either way every INT64_MIN of
 * the (new) tree is then exact. *root is replaced and stays ours to free.
 */
static enum verdict resolve_int64_min(struct ingest_parser *p, const char *body, size_t len,
				      struct json_object **root)
{
	char *copy;

	if (reserve(&p->scratch, len, len) != V_OK)
		return V_NOMEM;
	copy = (char *)p->scratch.data;
	memcpy(copy, body, len);
	if (rewrite_clamped_negatives(copy, len) == 0)
		return V_OK;
	json_object_put(*root);
	/* The copy differs from valid JSON only in number literals; failing is ours. */
	return parse_json(p->tok, copy, len, root) == V_OK ? V_OK : V_NOMEM;
}

/* The tree (or the body) dies before the result does, so the name is copied into parser memory. */
static enum verdict copy_source_bytes(struct ingest_parser *p, const char *src, size_t len,
				      struct ingest_result *out)
{
	if (len == SIZE_MAX || reserve(&p->source, len + 1, INGEST_SOURCE_MIN_CAP) != V_OK)
		return V_NOMEM;
	memcpy(p->source.data, src, len);
	p->source.data[len] = '\0';
	out->data_source = (const char *)p->source.data;
	out->data_source_len = len;
	return V_OK;
}

static enum verdict copy_source(struct ingest_parser *p, struct json_object *source,
				struct ingest_result *out)
{
	int len = json_object_get_string_len(source);

	if (len < 0)
		return V_NOMEM;
	return copy_source_bytes(p, json_object_get_string(source), (size_t)len, out);
}

int ingest_parse_reference(struct ingest_parser *p, const char *body, size_t len,
			   const struct ingest_limits *lim, struct ingest_result *out)
{
	struct pack_state st = { .lim = lim, .mins_exact = false };
	struct json_object *root;
	enum verdict v;

	memset(out, 0, sizeof(*out));
	v = parse_json(p->tok, body, len, &root);
	if (v != V_OK || has_nonfinite_literal(body, len, root) || !numbers_strict(body, len)) {
		v = fail(out, V_BAD_JSON, DETAIL_BAD_JSON);
		goto out;
	}
	v = check_document(p, root, &st, out);
	if (v == V_RECHECK) {
		st.mins_exact = true;
		v = resolve_int64_min(p, body, len, &root);
		if (v == V_OK)
			v = check_document(p, root, &st, out);
	}
	if (v != V_OK)
		goto out;
	v = copy_source(p, st.source, out);
	if (v != V_OK)
		goto out;
	out->nrecords = (uint32_t)st.count; /* count <= max_records, a uint32_t */
	out->payload = p->payload.data;
	out->payload_len = st.size;
out:
	json_object_put(root);
	if (v == V_NOMEM) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	out->status = (int)v;
	return out->status;
}

/* The fast path decides the common cases; every case it is unsure of goes to json-c. */
int ingest_parse(struct ingest_parser *p, const char *body, size_t len,
		 const struct ingest_limits *lim, struct ingest_result *out)
{
	struct ingest_fast_result fast;
	enum verdict v;

	memset(out, 0, sizeof(*out));
	switch (ingest_fast_parse(body, len, lim, &p->payload, &fast)) {
	case INGEST_FAST_ACCEPT:
		v = copy_source_bytes(p, fast.data_source, fast.data_source_len, out);
		if (v != V_OK)
			break;
		out->nrecords = (uint32_t)fast.nrecords; /* <= max_records, a uint32_t */
		out->payload = p->payload.data;
		out->payload_len = fast.payload_len;
		break;
	case INGEST_FAST_TOO_MANY:
		v = fail(out, V_TOO_LARGE, DETAIL_TOO_MANY);
		break;
	case INGEST_FAST_TOO_LARGE:
		v = fail(out, V_TOO_LARGE, DETAIL_TOO_LARGE);
		break;
	case INGEST_FAST_UNSURE:
		return ingest_parse_reference(p, body, len, lim, out);
	case INGEST_FAST_NOMEM:
	default:
		v = V_NOMEM;
		break;
	}
	if (v == V_NOMEM) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	out->status = (int)v;
	return out->status;
}
