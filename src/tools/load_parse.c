/*
 * load_parse.c - input parsing for temporis-load: CSV lines (quotes, delimiter, column
 * mapping by header name or index; a quoted field may hold newlines, so a record may span
 * physical lines) and NDJSON lines (json-c), and the number typing rule shared by both (an
 * integer literal stays an integer, anything else is a finite double); and the
 * line-protocol splitter, which finds logical lines without parsing them.
 * Owns the parser's reusable field buffers, json-c tokener and buffer for a CSV record
 * continued in a quoted field, and the splitter's buffer for a line continued in a string;
 * one parser or splitter per input stream.
 */
#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "temporis/base/buf.h"
#include "temporis/base/err.h"
#include "temporis/tools/load_parse.h"

#define NCOLS 3 /* timestamp, name, value */
enum { COL_TS = 0, COL_NAME = 1, COL_VALUE = 2 };
#define FIELDS_INITIAL 8
#define UTF8_BOM "\xEF\xBB\xBF"
#define UTF8_BOM_LEN 3
#define NUM_TEXT_MAX 128 /* longer numeric text is not a value anyone writes */

struct field {
	size_t off, len; /* into parser->text */
};

/* Where a CSV record's scan is. A double quote opens a quoted field only as the first byte
 * of a field; inside, "" is one quote and any other quote closes the field (what may follow
 * it is split_quoted's to judge). */
enum csv_part { CSV_FIELD_START, CSV_UNQUOTED, CSV_QUOTED, CSV_QUOTE_SEEN };

struct load_parser {
	enum load_format fmt;
	char delimiter;
	bool header;
	bool want_header;   /* the next non-blank line is the header */
	char *names[NCOLS]; /* column given by header name, else NULL */
	long index[NCOLS];  /* 0-based column, -1 until the header resolves it */
	struct buf text;    /* unquoted field text of the current line */
	struct field *fields;
	size_t nfields, fieldcap;
	struct json_tokener *tok;
	struct json_object *obj; /* current NDJSON record; rec->name points into it */
	enum load_time_unit unit;
	/* A CSV record whose quoted field is still open at the end of a physical line: */
	struct buf record;  /* its physical lines so far, line ends included */
	enum csv_part part; /* the scan at the end of what record holds */
	bool pending;       /* record holds an unfinished record */
	uint64_t line;      /* physical lines fed since the reset */
	uint64_t first;     /* where the pending record starts */
	uint64_t quote_line; /* where its open quote opened */
};

void load_parser_set_time_unit(struct load_parser *p, enum load_time_unit unit)
{
	p->unit = unit;
}

/* ---- timestamps ---- */

#define SECONDS_PLAUSIBLE_MAX INT64_C(100000000000) /* 1e11 s: the year 5138 */
#define SECS_PER_DAY 86400
#define SECS_PER_HOUR 3600
#define SECS_PER_MIN 60

/* An integer timestamp in the parser's unit, as Unix seconds (floor). 0, or -1 with err. */
static int seconds_of(const struct load_parser *p, int64_t t, int64_t *out, char *err,
		      size_t errlen)
{
	static const int64_t per_s[] = { [LOAD_TIME_AUTO] = 1, [LOAD_TIME_S] = 1,
					 [LOAD_TIME_MS] = 1000, [LOAD_TIME_US] = 1000000,
					 [LOAD_TIME_NS] = 1000000000 };
	int64_t d = per_s[p->unit], q = t / d;

	if (p->unit == LOAD_TIME_AUTO && (t >= SECONDS_PLAUSIBLE_MAX || t <= -SECONDS_PLAUSIBLE_MAX)) {
		err_set(err, errlen, "timestamp %lld is past the year 5000 as seconds: it looks like "
			"milliseconds or finer; pass --time-unit ms, us or ns (or --time-unit s to "
			"store it as it is)", (long long)t);
		return -1;
	}
	if (t % d != 0 && t < 0)
		q--;  /* floor, also before 1970 */
	*out = q;
	return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static bool digits(const char *s, size_t n, unsigned *out)
{
	unsigned v = 0;

	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*out = v;
	return true;
}

/* "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)" as Unix seconds (the fraction dropped). */
static bool rfc3339(const char *s, size_t n, int64_t *out)
{
	static const unsigned mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	unsigned y, mo, d, h, mi, se, oh = 0, om = 0;
	size_t i = 19;
	int64_t t;
	int sign = 0;

	if (n < 20 || s[4] != '-' || s[7] != '-' || strchr("Tt ", s[10]) == NULL || s[13] != ':' ||
	    s[16] != ':' || !digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
	    !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &se))
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
	    (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))) || h > 23 ||
	    mi > 59 || se > 60)
		return false;
	if (s[i] == '.') {
		for (i++; i < n && isdigit((unsigned char)s[i]); i++)
			;
		if (i == 20)
			return false;  /* a dot without digits */
	}
	if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
		i++;
	} else if (i + 6 == n && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':' &&
		   digits(s + i + 1, 2, &oh) && digits(s + i + 4, 2, &om) && oh <= 23 && om <= 59) {
		sign = s[i] == '+' ? 1 : -1;
		i += 6;
	} else {
		return false;
	}
	if (i != n)
		return false;
	t = days_from_civil(y, mo, d) * SECS_PER_DAY + (int64_t)h * SECS_PER_HOUR +
	    (int64_t)mi * SECS_PER_MIN + se;
	*out = t - sign * ((int64_t)oh * SECS_PER_HOUR + (int64_t)om * SECS_PER_MIN);
	return true;
}

static void trim(const char **s, size_t *len)
{
	while (*len > 0 && isspace((unsigned char)**s)) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && isspace((unsigned char)(*s)[*len - 1]))
		(*len)--;
}

/* Only these characters may appear in a decimal number; this keeps strtod from accepting
 * "nan", "inf", hex floats and the like. */
static bool decimal_chars(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!isdigit((unsigned char)s[i]) && !strchr("+-.eE", s[i]))
			return false;
	return true;
}

static bool integer_literal(const char *s, size_t len)
{
	size_t i = (len > 0 && (s[0] == '-' || s[0] == '+')) ? 1 : 0;

	if (i == len)
		return false;
	for (; i < len; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

int load_number_parse(const char *s, size_t len, struct load_value *out)
{
	char tmp[NUM_TEXT_MAX];
	char *end;

	trim(&s, &len);
	if (len == 0 || len >= sizeof(tmp) || !decimal_chars(s, len)) {
		errno = EINVAL;
		return -1;
	}
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	errno = 0;
	if (integer_literal(tmp, len)) {
		long long v = strtoll(tmp, &end, 10);
		if (errno == ERANGE)
			return -1;
		out->is_int = true;
		out->i = v;
		out->d = 0;
		return 0;
	}
	double d = strtod(tmp, &end);
	if (*end != '\0' || !isfinite(d)) {
		errno = EINVAL;
		return -1;
	}
	out->is_int = false;
	out->i = 0;
	out->d = d;
	return 0;
}

/* "12" -> 11 (0-based); anything that is not a positive decimal -> -1. */
static long column_index(const char *spec)
{
	char *end;
	long v;

	if (!*spec || !integer_literal(spec, strlen(spec)) || spec[0] == '-' || spec[0] == '+')
		return -1;
	errno = 0;
	v = strtol(spec, &end, 10);
	if (errno || v < 1 || v > INT32_MAX)
		return -1;
	return v - 1;
}

static int parser_columns(struct load_parser *p, const struct load_csv_opts *csv, char *err,
                          size_t errlen)
{
	static const char *const defaults[NCOLS] = {"timestamp", "name", "value"};

	for (int c = 0; c < NCOLS; c++) {
		const char *spec = csv->columns[c] ? csv->columns[c] : defaults[c];
		p->index[c] = column_index(spec);
		if (p->index[c] >= 0)
			continue;
		if (!csv->header && !csv->columns[c]) {
			p->index[c] = c; /* no header, default mapping: columns 1,2,3 */
			continue;
		}
		if (!csv->header) {
			err_set(err, errlen, "column '%s' needs a header line (use an index)",
			        spec);
			return -1;
		}
		if (!*spec) {
			err_set(err, errlen, "empty column name");
			return -1;
		}
		p->names[c] = strdup(spec);
		if (!p->names[c]) {
			err_set(err, errlen, "out of memory");
			return -1;
		}
	}
	return 0;
}

/* Room for need fields; the array only grows, so a warm parser does not allocate. */
static int reserve_fields(struct load_parser *p, size_t need)
{
	void *fields = p->fields;
	int rc = vec_reserve(&fields, &p->fieldcap, need, sizeof(*p->fields), FIELDS_INITIAL);

	p->fields = fields;
	return rc;
}

struct load_parser *load_parser_new(enum load_format fmt, const struct load_csv_opts *csv,
                                    char *err, size_t errlen)
{
	struct load_parser *p = calloc(1, sizeof(*p));

	if (!p) {
		err_set(err, errlen, "out of memory");
		return NULL;
	}
	p->fmt = fmt;
	if (fmt == LOAD_NDJSON) {
		p->tok = json_tokener_new();
		if (!p->tok) {
			err_set(err, errlen, "out of memory");
			goto fail;
		}
		/* trailing text is checked by hand for a clearer message */
		json_tokener_set_flags(p->tok,
		                       JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS);
		return p;
	}
	p->delimiter = csv->delimiter;
	p->header = csv->header;
	if (parser_columns(p, csv, err, errlen) < 0)
		goto fail;
	if (reserve_fields(p, FIELDS_INITIAL) < 0) {
		err_set(err, errlen, "out of memory");
		goto fail;
	}
	load_parser_reset(p);
	return p;
fail:
	load_parser_free(p);
	return NULL;
}

void load_parser_free(struct load_parser *p)
{
	if (!p)
		return;
	for (int c = 0; c < NCOLS; c++)
		free(p->names[c]);
	buf_free(&p->text);
	buf_free(&p->record);
	free(p->fields);
	if (p->obj)
		json_object_put(p->obj);
	if (p->tok)
		json_tokener_free(p->tok);
	free(p);
}

void load_parser_reset(struct load_parser *p)
{
	p->want_header = p->fmt == LOAD_CSV && p->header;
	buf_reset(&p->record);
	p->pending = false;
	p->part = CSV_FIELD_START;
	p->line = 0;
	p->first = 0;
	p->quote_line = 0;
	for (int c = 0; c < NCOLS && p->fmt == LOAD_CSV; c++)
		if (p->names[c])
			p->index[c] = -1;
}

static int push_field(struct load_parser *p, size_t off, size_t len)
{
	if (reserve_fields(p, p->nfields + 1) < 0)
		return -1;
	p->fields[p->nfields].off = off;
	p->fields[p->nfields].len = len;
	p->nfields++;
	return 0;
}

/* One quoted field starting at line[*i] == '"'; unescaped into p->text at *o. Afterwards *i is
 * at the delimiter or the end of the line. */
static int split_quoted(struct load_parser *p, const char *line, size_t len, size_t *i, size_t *o,
                        char *err, size_t errlen)
{
	for ((*i)++;; (*i)++) {
		if (*i >= len) {
			err_set(err, errlen, "unterminated quoted field");
			return -1;
		}
		if (line[*i] != '"') {
			p->text.data[(*o)++] = line[*i];
			continue;
		}
		if (*i + 1 < len && line[*i + 1] == '"') {
			p->text.data[(*o)++] = '"';
			(*i)++;
			continue;
		}
		(*i)++;
		if (*i < len && line[*i] != p->delimiter) {
			err_set(err, errlen, "unexpected character after a closing quote");
			return -1;
		}
		return 0;
	}
}

/* Split a CSV line into p->fields; field text is copied (unquoted) into p->text, which
 * unquoting only shortens, so the line's length is all the room it needs. */
static int split_csv(struct load_parser *p, const char *line, size_t len, char *err, size_t errlen)
{
	size_t i = 0, o = 0;

	buf_reset(&p->text);
	if (buf_reserve(&p->text, len, 0) < 0) {
		err_set(err, errlen, "out of memory");
		return -1;
	}
	p->nfields = 0;
	for (;;) {
		size_t start = o;
		if (i < len && line[i] == '"') {
			if (split_quoted(p, line, len, &i, &o, err, errlen) < 0)
				return -1;
		} else {
			while (i < len && line[i] != p->delimiter)
				p->text.data[o++] = line[i++];
		}
		if (push_field(p, start, o - start) < 0) {
			err_set(err, errlen, "out of memory");
			return -1;
		}
		if (i >= len) {
			p->text.len = o;
			return 0;
		}
		i++; /* the delimiter */
	}
}

static int resolve_header(struct load_parser *p, char *err, size_t errlen)
{
	for (int c = 0; c < NCOLS; c++) {
		if (!p->names[c])
			continue;
		for (size_t f = 0; f < p->nfields && p->index[c] < 0; f++) {
			const char *s = p->text.data + p->fields[f].off;
			size_t n = p->fields[f].len;
			if (f == 0 && n >= UTF8_BOM_LEN && !memcmp(s, UTF8_BOM, UTF8_BOM_LEN)) {
				s += UTF8_BOM_LEN;
				n -= UTF8_BOM_LEN;
			}
			trim(&s, &n);
			if (n == strlen(p->names[c]) && !memcmp(s, p->names[c], n))
				p->index[c] = (long)f;
		}
		if (p->index[c] < 0) {
			err_set(err, errlen, "no column named '%s' in the header", p->names[c]);
			return -1;
		}
	}
	p->want_header = false;
	return 0;
}

static enum load_status csv_record(struct load_parser *p, struct load_record *rec, char *err,
                                   size_t errlen)
{
	long need = 0;
	struct load_value ts;
	const struct field *f;

	for (int c = 0; c < NCOLS; c++)
		if (p->index[c] + 1 > need)
			need = p->index[c] + 1;
	if ((long)p->nfields < need) {
		err_set(err, errlen, "expected at least %ld fields, found %zu", need, p->nfields);
		return LOAD_ERROR;
	}
	f = &p->fields[p->index[COL_TS]];
	if (load_number_parse(p->text.data + f->off, f->len, &ts) == 0 && ts.is_int) {
		if (seconds_of(p, ts.i, &rec->timestamp, err, errlen) < 0)
			return LOAD_ERROR;
	} else if (!rfc3339(p->text.data + f->off, f->len, &rec->timestamp)) {
		err_set(err, errlen, "timestamp is not an integer or an RFC 3339 time");
		return LOAD_ERROR;
	}
	f = &p->fields[p->index[COL_NAME]];
	rec->name = p->text.data + f->off;
	rec->name_len = f->len;
	f = &p->fields[p->index[COL_VALUE]];
	if (load_number_parse(p->text.data + f->off, f->len, &rec->value) < 0) {
		err_set(err, errlen,
		        errno == ERANGE ? "value is an integer outside the 64-bit range"
		                        : "value is not a number");
		return LOAD_ERROR;
	}
	return LOAD_RECORD;
}

/* json-c clamps out-of-range integers to INT64_MIN/MAX; a value parsed as a uint64 above
 * INT64_MAX is how the positive overflow shows. */
static bool json_int64_exact(struct json_object *o)
{
	return json_object_get_int64(o) != INT64_MAX ||
	       json_object_get_uint64(o) <= (uint64_t)INT64_MAX;
}

static enum load_status json_fields(const struct load_parser *p, struct json_object *o,
                                    struct load_record *rec, char *err, size_t errlen)
{
	struct json_object *ts, *name, *value;

	if (!json_object_object_get_ex(o, "timestamp", &ts) ||
	    !((json_object_is_type(ts, json_type_int) && json_int64_exact(ts)) ||
	      (json_object_is_type(ts, json_type_string) &&
	       rfc3339(json_object_get_string(ts), (size_t)json_object_get_string_len(ts),
		       &rec->timestamp)))) {
		err_set(err, errlen, "timestamp is not an integer or an RFC 3339 time");
		return LOAD_ERROR;
	}
	if (json_object_is_type(ts, json_type_int) &&
	    seconds_of(p, json_object_get_int64(ts), &rec->timestamp, err, errlen) < 0)
		return LOAD_ERROR;
	if (!json_object_object_get_ex(o, "name", &name) ||
	    !json_object_is_type(name, json_type_string)) {
		err_set(err, errlen, "name is not a string");
		return LOAD_ERROR;
	}
	if (!json_object_object_get_ex(o, "value", &value)) {
		err_set(err, errlen, "value is not a number");
		return LOAD_ERROR;
	}
	rec->name = json_object_get_string(name);
	rec->name_len = (size_t)json_object_get_string_len(name);
	if (json_object_is_type(value, json_type_int)) {
		if (!json_int64_exact(value)) {
			err_set(err, errlen, "value is an integer outside the 64-bit range");
			return LOAD_ERROR;
		}
		rec->value = (struct load_value){.is_int = true, .i = json_object_get_int64(value)};
	} else if (json_object_is_type(value, json_type_double) &&
	           isfinite(json_object_get_double(value))) {
		rec->value =
		    (struct load_value){.is_int = false, .d = json_object_get_double(value)};
	} else {
		err_set(err, errlen, "value is not a number");
		return LOAD_ERROR;
	}
	return LOAD_RECORD;
}

static enum load_status ndjson_record(struct load_parser *p, const char *line, size_t len,
                                      struct load_record *rec, char *err, size_t errlen)
{
	size_t end;

	if (p->obj) {
		json_object_put(p->obj);
		p->obj = NULL;
	}
	json_tokener_reset(p->tok);
	p->obj = json_tokener_parse_ex(p->tok, line, (int)len);
	end = json_tokener_get_parse_end(p->tok);
	if (!p->obj || json_tokener_get_error(p->tok) != json_tokener_success) {
		err_set(err, errlen, "not valid JSON");
		return LOAD_ERROR;
	}
	for (; end < len; end++)
		if (!isspace((unsigned char)line[end])) {
			err_set(err, errlen, "unexpected text after the JSON object");
			return LOAD_ERROR;
		}
	if (!json_object_is_type(p->obj, json_type_object)) {
		err_set(err, errlen, "line is not a JSON object");
		return LOAD_ERROR;
	}
	return json_fields(p, p->obj, rec, err, errlen);
}

/* The length of line[0..len) without its "\n" or "\r\n". */
static size_t chomp(const char *line, size_t len)
{
	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	return len;
}

/* Go on scanning s[0..n) of a CSV record from p->part. Only whether a quote is open at the
 * end matters, so a line without a double quote that does not start inside one is done. */
static void csv_scan(struct load_parser *p, const char *s, size_t n)
{
	enum csv_part part = p->part;

	if (part != CSV_QUOTED && !memchr(s, '"', n))
		return;
	for (size_t i = 0; i < n; i++) {
		switch (part) {
		case CSV_FIELD_START:
			if (s[i] == '"') {
				part = CSV_QUOTED;
				p->quote_line = p->line;
			} else if (s[i] != p->delimiter) {
				part = CSV_UNQUOTED;
			}
			break;
		case CSV_UNQUOTED:
			if (s[i] == p->delimiter)
				part = CSV_FIELD_START;
			break;
		case CSV_QUOTED:
			if (s[i] == '"')
				part = CSV_QUOTE_SEEN;
			break;
		case CSV_QUOTE_SEEN: /* "" is an escaped quote, else the quote closed the field */
			part = s[i] == '"'           ? CSV_QUOTED
			       : s[i] == p->delimiter ? CSV_FIELD_START
			                              : CSV_UNQUOTED;
			break;
		}
	}
	p->part = part;
}

/* The next physical line line[0..len) (body: without its line end) of a CSV input. While a
 * quoted field is open the line is kept in p->record and the answer is LOAD_SKIP; when the
 * record is complete LOAD_RECORD with *text[0..*tlen) the record without its last line end
 * (the line itself, or p->record) and rec->line, rec->spans where it is. */
static enum load_status csv_join(struct load_parser *p, const char *line, size_t len,
                                 size_t body, const char **text, size_t *tlen,
                                 struct load_record *rec, char *err, size_t errlen)
{
	if (!p->pending) {
		p->part = CSV_FIELD_START;
		csv_scan(p, line, body);
		if (p->part != CSV_QUOTED) {
			*text = line;
			*tlen = body;
			return LOAD_RECORD;
		}
		buf_reset(&p->record);
		p->pending = true;
		p->first = p->line;
	} else {
		csv_scan(p, line, body);
	}
	if (buf_append(&p->record, line, body) < 0)
		goto oom;
	if (p->part != CSV_QUOTED) {
		p->pending = false;
		rec->line = p->first;
		rec->spans = (uint32_t)(p->line - p->first + 1);
		*text = p->record.data;
		*tlen = p->record.len;
		return LOAD_RECORD;
	}
	/* the line end is part of the quoted field; one fed without it was a "\n" */
	if (buf_append(&p->record, body < len ? line + body : "\n", body < len ? len - body : 1) < 0)
		goto oom;
	if (p->record.len <= LOAD_CSV_CONTINUED_MAX)
		return LOAD_SKIP;
	p->pending = false;
	rec->line = p->quote_line;
	err_set(err, errlen,
	        "the quoted field opened on this line is not closed within %d bytes "
	        "(a stray '\"'?)",
	        LOAD_CSV_CONTINUED_MAX);
	return LOAD_ERROR;
oom:
	p->pending = false;
	err_set(err, errlen, "out of memory");
	return LOAD_ERROR;
}

enum load_status load_parser_line(struct load_parser *p, const char *line, size_t len,
                                  struct load_record *rec, char *err, size_t errlen)
{
	size_t body = chomp(line, len), tlen = body;
	const char *text = line, *t;
	enum load_status st;

	p->line++;
	rec->line = p->line;
	rec->spans = 1;
	if (p->fmt == LOAD_CSV) {
		st = csv_join(p, line, len, body, &text, &tlen, rec, err, errlen);
		if (st != LOAD_RECORD)
			return st;
	}
	t = text;
	len = tlen;
	trim(&t, &len);
	if (len == 0)
		return LOAD_SKIP;
	if (tlen > INT32_MAX) {
		err_set(err, errlen, "line too long");
		return LOAD_ERROR;
	}
	if (p->fmt == LOAD_NDJSON)
		return ndjson_record(p, text, tlen, rec, err, errlen);
	if (split_csv(p, text, tlen, err, errlen) < 0)
		return LOAD_ERROR;
	if (p->want_header)
		return resolve_header(p, err, errlen) < 0 ? LOAD_ERROR : LOAD_SKIP;
	return csv_record(p, rec, err, errlen);
}

int load_parser_end(struct load_parser *p, uint64_t *line, char *err, size_t errlen)
{
	if (!p->pending)
		return 0;
	*line = p->quote_line;
	err_set(err, errlen,
	        "the quoted field opened on this line is not closed at the end of the input");
	return -1;
}

/* ---- line protocol ---- */

#define LP_CONTEXT_DB "CONTEXT-DATABASE:"

/* Where a line's scan is. A double quote opens a string only as the first byte of a field
 * value (after the '=' of a field key); in the series key (measurement and tags) and in
 * field keys it is an ordinary byte, and a backslash escapes the byte after it. */
enum lp_part { LP_SERIES_KEY, LP_FIELDS, LP_STRING, LP_TIMESTAMP };

struct load_lp {
	struct buf text; /* a logical line continued in a string: its physical lines so far */
	uint64_t line;   /* physical lines fed since the reset */
	uint64_t first;  /* where the pending logical line starts */
	uint32_t spans;  /* physical lines of the pending logical line */
	enum lp_part part;
	bool pending; /* text holds a logical line whose string is still open */
	bool in_ddl;  /* between "# DDL" and "# DML" */
};

struct load_lp *load_lp_new(void)
{
	struct load_lp *lp = calloc(1, sizeof(*lp));

	if (lp)
		load_lp_reset(lp);
	return lp;
}

void load_lp_free(struct load_lp *lp)
{
	if (!lp)
		return;
	buf_free(&lp->text);
	free(lp);
}

void load_lp_reset(struct load_lp *lp)
{
	buf_reset(&lp->text);
	lp->line = 0;
	lp->first = 0;
	lp->spans = 0;
	lp->part = LP_SERIES_KEY;
	lp->pending = false;
	lp->in_ddl = false;
}

/* Go on scanning s[0..n) from lp->part. Only strings matter here: the scan stops at the
 * timestamp, and a line without a double quote cannot open one. Escapes as InfluxDB reads
 * them: in a string only \" and \\ are escapes, elsewhere a backslash takes the next byte. */
static void lp_scan(struct load_lp *lp, const char *s, size_t n)
{
	enum lp_part part = lp->part;

	if (part != LP_STRING && !memchr(s, '"', n))
		return;
	for (size_t i = 0; i < n && part != LP_TIMESTAMP; i++) {
		switch (part) {
		case LP_SERIES_KEY:
			if (s[i] == '\\')
				i++;
			else if (s[i] == ' ')
				part = LP_FIELDS;
			break;
		case LP_FIELDS:
			if (s[i] == '\\')
				i++;
			else if (s[i] == ' ')
				part = LP_TIMESTAMP;
			else if (s[i] == '=' && i + 1 < n && s[i + 1] == '"') {
				part = LP_STRING;
				i++; /* the opening quote */
			}
			break;
		case LP_STRING:
			if (s[i] == '\\' && i + 1 < n && (s[i + 1] == '"' || s[i + 1] == '\\'))
				i++;
			else if (s[i] == '"')
				part = LP_FIELDS;
			break;
		case LP_TIMESTAMP:
			break;
		}
	}
	lp->part = part;
}

/* Does the trimmed comment text t (after its '#') say exactly word? */
static bool comment_is(const char *t, size_t n, const char *word)
{
	return n == strlen(word) && !memcmp(t, word, n);
}

/* A '#' line: the export's section markers switch the DDL section on and off; a
 * CONTEXT-DATABASE header is handed to the caller. */
static void lp_comment(struct load_lp *lp, const char *t, size_t n, struct load_lp_line *out)
{
	const size_t key = sizeof(LP_CONTEXT_DB) - 1;

	t++;
	n--;
	trim(&t, &n);
	if (comment_is(t, n, "DDL")) {
		lp->in_ddl = true;
	} else if (comment_is(t, n, "DML")) {
		lp->in_ddl = false;
	} else if (n >= key && !memcmp(t, LP_CONTEXT_DB, key)) {
		t += key;
		n -= key;
		trim(&t, &n);
		out->context_db = t;
		out->context_db_len = n;
	}
}

/* The next physical line of a logical line whose string is open. */
static enum load_status lp_continue(struct load_lp *lp, const char *line, size_t len, size_t body,
                                    struct load_lp_line *out, char *err, size_t errlen)
{
	if (buf_append(&lp->text, line, len) < 0) {
		err_set(err, errlen, "out of memory");
		return LOAD_ERROR;
	}
	lp->spans++;
	lp_scan(lp, line, body);
	if (lp->part == LP_STRING) {
		if (lp->text.len <= LOAD_LP_CONTINUED_MAX)
			return LOAD_SKIP;
		out->line = lp->first;
		err_set(err, errlen,
		        "the string field opened on this line is not closed within %d bytes "
		        "(a stray '\"'?)",
		        LOAD_LP_CONTINUED_MAX);
		return LOAD_ERROR;
	}
	lp->pending = false;
	out->text = lp->text.data;
	out->len = lp->text.len - (len - body); /* without the last line end */
	out->line = lp->first;
	out->spans = lp->spans;
	return LOAD_RECORD;
}

enum load_status load_lp_feed(struct load_lp *lp, const char *line, size_t len,
                              struct load_lp_line *out, char *err, size_t errlen)
{
	size_t body = chomp(line, len), n = body;
	const char *t = line;

	memset(out, 0, sizeof(*out));
	lp->line++;
	out->line = lp->line;
	if (lp->pending)
		return lp_continue(lp, line, len, body, out, err, errlen);
	trim(&t, &n);
	if (n == 0)
		return LOAD_SKIP;
	if (t[0] == '#') {
		lp_comment(lp, t, n, out);
		return LOAD_SKIP;
	}
	if (lp->in_ddl)
		return LOAD_SKIP; /* CREATE DATABASE ..., CREATE RETENTION POLICY ... */
	lp->part = LP_SERIES_KEY;
	lp_scan(lp, t, body - (size_t)(t - line));
	if (lp->part != LP_STRING) {
		out->text = line;
		out->len = body;
		out->spans = 1;
		return LOAD_RECORD;
	}
	buf_reset(&lp->text);
	if (buf_append(&lp->text, line, len) < 0) {
		err_set(err, errlen, "out of memory");
		return LOAD_ERROR;
	}
	lp->pending = true;
	lp->first = lp->line;
	lp->spans = 1;
	return LOAD_SKIP;
}

int load_lp_end(struct load_lp *lp, uint64_t *line, char *err, size_t errlen)
{
	if (!lp->pending)
		return 0;
	*line = lp->first;
	err_set(err, errlen,
	        "the string field opened on this line is not closed at the end of "
	        "the input");
	return -1;
}
