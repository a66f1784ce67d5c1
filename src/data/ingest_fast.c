/*
 * ingest_fast.c - strict single-pass parser for ingest bodies (ingest_fast.h).
 *
 * Owns nothing but the grammar: the caller owns the payload buffer it packs into.
 * Its ACCEPT/413 set is a strict subset of what the json-c path (ingest.c) answers
 * the same way; escapes, duplicates, odd numbers and every error are UNSURE.
 */
#include "temporis/data/ingest_fast.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "temporis/base/buf.h"
#include "temporis/data/record.h"

/* Containers nested deeper than this are left to json-c (its limit is 32). */
#define FAST_MAX_DEPTH 16
/* Root object, records array, record: an ignored field inside a record sits at this level. */
#define FAST_RECORD_DEPTH 3
/* Room for a double literal and its NUL; longer literals are left to json-c. */
#define FAST_NUM_BUF 64
/* 19 decimal digits always fit a uint64_t; 20 may not. */
#define FAST_INT_MAX_DIGITS 19
#define FAST_POW10_MAX 22          /* 10^22 is the largest exact power of ten */
#define FAST_EXACT_DIGITS 19       /* at most this many digits cannot overflow uint64 */
#define FAST_EXACT_MANTISSA (1ull << 53)
#define DECIMAL_BASE 10

#define KEY_IS(k, n, lit) ((n) == sizeof(lit) - 1 && memcmp((k), (lit), sizeof(lit) - 1) == 0)

/* Which record fields were seen, to catch duplicates and missing fields. */
enum field_bit {
	F_TIMESTAMP = 1,
	F_NAME = 2,
	F_VALUE = 4,
	F_ALL = F_TIMESTAMP | F_NAME | F_VALUE,
};

struct fast_state {
	const unsigned char *p;   /* next unread byte */
	const unsigned char *end;
	const struct ingest_limits *lim;
	struct ingest_buf *payload;
	size_t count;             /* records checked; size_t so no body can wrap it */
	size_t size;              /* packed bytes of all records so far, written or not */
};

struct number {
	bool is_double;           /* the literal has a fraction or an exponent */
	int64_t i;
	double d;
};

int ingest_buf_reserve(struct ingest_buf *b, size_t need, size_t min_cap)
{
	void *data = b->data;
	int rc = vec_reserve(&data, &b->cap, need, 1, min_cap);

	b->data = data;
	return rc;
}

static inline void skip_ws(struct fast_state *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
		s->p++;
}

/* Consume c after optional whitespace; false (nothing consumed but whitespace) if absent. */
static inline bool eat(struct fast_state *s, unsigned char c)
{
	skip_ws(s);
	if (s->p < s->end && *s->p == c) {
		s->p++;
		return true;
	}
	return false;
}

static inline bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* Printable ASCII that ends nothing: everything else in a string needs a closer look. */
static inline bool is_plain(unsigned char c)
{
	return c >= 0x20 && c < 0x7F && c != '"' && c != '\\';
}

size_t ingest_utf8_seq_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xBF;
	size_t len, i;

	if (c >= 0xC2 && c <= 0xDF)
		len = 2;
	else if (c >= 0xE0 && c <= 0xEF)
		len = 3;
	else if (c >= 0xF0 && c <= 0xF4)
		len = 4;
	else
		return 0;
	if (c == 0xE0)
		lo = 0xA0;
	else if (c == 0xED)
		hi = 0x9F;
	else if (c == 0xF0)
		lo = 0x90;
	else if (c == 0xF4)
		hi = 0x8F;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return len;
}

/*
 * A string after optional whitespace, returned as its raw bytes. Backslashes,
 * control characters (C0, DEL and C1), and invalid UTF-8 are UNSURE: the bytes are then exactly
 * what json-c would hold, and valid as a name too (apart from its length).
 */
static enum ingest_fast_status scan_string(struct fast_state *s, const unsigned char **str,
					   size_t *n)
{
	const unsigned char *q, *start;
	size_t k;

	if (!eat(s, '"'))
		return INGEST_FAST_UNSURE;
	start = q = s->p;
	for (;;) {
		while (q < s->end && is_plain(*q))
			q++;
		if (q == s->end)
			return INGEST_FAST_UNSURE;
		if (*q == '"')
			break;
		if (*q < 0x80)
			return INGEST_FAST_UNSURE;
		k = ingest_utf8_seq_len(q, (size_t)(s->end - q));
		if (k == 0 || ingest_utf8_is_c1(q, k))
			return INGEST_FAST_UNSURE;
		q += k;
	}
	*str = start;
	*n = (size_t)(q - start);
	s->p = q + 1;
	return INGEST_FAST_ACCEPT;
}

/* Digits at *q; false if there are none. */
static inline bool skip_digits(const unsigned char **q, const unsigned char *end)
{
	const unsigned char *start = *q;

	while (*q < end && is_digit(**q))
		(*q)++;
	return *q != start;
}

/*
 * Clinger's fast path: a literal whose digits form an integer m <= 2^53 and whose
 * decimal exponent e has |e| <= 22 is exactly m * 10^e or m / 10^-e, both operands
 * exact doubles, so one IEEE operation gives the correctly rounded result: the same
 * bits strtod gives. Anything else returns false and goes to strtod.
 */
static bool fast_double(const unsigned char *lit, size_t n, double *d)
{
	static const double pow10[FAST_POW10_MAX + 1] = {
		1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
		1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
	};
	const unsigned char *p = lit, *end = lit + n;
	uint64_t m = 0;
	int exp = 0, digits = 0, eval = 0;
	bool neg = p < end && *p == '-', eneg = false;

	if (neg)
		p++;
	for (; p < end && is_digit(*p); p++, digits++)
		m = m * DECIMAL_BASE + (uint64_t)(*p - '0');
	if (p < end && *p == '.')
		for (p++; p < end && is_digit(*p); p++, digits++, exp--)
			m = m * DECIMAL_BASE + (uint64_t)(*p - '0');
	if (p < end) {                  /* 'e' or 'E', the grammar is already checked */
		p++;
		eneg = *p == '-';
		if (*p == '+' || *p == '-')
			p++;
		for (; p < end && eval <= FAST_POW10_MAX; p++)
			eval = eval * DECIMAL_BASE + (*p - '0');
		if (p < end)
			return false;
		exp += eneg ? -eval : eval;
	}
	if (digits > FAST_EXACT_DIGITS || m > FAST_EXACT_MANTISSA || exp < -FAST_POW10_MAX ||
	    exp > FAST_POW10_MAX)
		return false;
	*d = exp < 0 ? (double)m / pow10[-exp] : (double)m * pow10[exp];
	if (neg)
		*d = -*d;
	return true;
}

/*
 * Convert a fraction/exponent literal exactly as json-c does (strtod), so the bits
 * match: Clinger's fast path first, strtod otherwise. Under/overflow (ERANGE) and
 * anything not finite are left to json-c. The daemon never calls setlocale; were
 * the decimal point ever not '.', strtod would stop early and the literal would go
 * to json-c too (slower, never wrong).
 */
static enum ingest_fast_status convert_double(const unsigned char *lit, size_t n, double *d)
{
	char buf[FAST_NUM_BUF];
	char *endp;

	if (fast_double(lit, n, d))
		return INGEST_FAST_ACCEPT;
	if (n >= sizeof(buf))
		return INGEST_FAST_UNSURE;
	memcpy(buf, lit, n);
	buf[n] = '\0';
	errno = 0;
	*d = strtod(buf, &endp);
	if (endp != buf + n || errno == ERANGE || !isfinite(*d))
		return INGEST_FAST_UNSURE;
	return INGEST_FAST_ACCEPT;
}

/* An integer literal's magnitude was read by hand; it must fit int64_t, and "-0" is json-c's. */
static enum ingest_fast_status convert_int(bool neg, const unsigned char *digits, size_t n,
					   int64_t *v)
{
	uint64_t mag = 0;
	size_t i;

	if (n > FAST_INT_MAX_DIGITS)
		return INGEST_FAST_UNSURE;
	for (i = 0; i < n; i++)
		mag = mag * DECIMAL_BASE + (uint64_t)(digits[i] - '0');
	if (neg) {
		if (mag == 0 || mag > (uint64_t)INT64_MAX + 1)
			return INGEST_FAST_UNSURE;
		*v = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
	} else {
		if (mag > (uint64_t)INT64_MAX)
			return INGEST_FAST_UNSURE;
		*v = (int64_t)mag;
	}
	return INGEST_FAST_ACCEPT;
}

/* A number in plain JSON grammar (no leading zeros, no "1.", no "+1"), after whitespace. */
static enum ingest_fast_status scan_number(struct fast_state *s, struct number *num)
{
	const unsigned char *q, *start, *digits;
	bool neg;

	skip_ws(s);
	start = q = s->p;
	neg = q < s->end && *q == '-';
	if (neg)
		q++;
	digits = q;
	if (!skip_digits(&q, s->end) || (*digits == '0' && q - digits > 1))
		return INGEST_FAST_UNSURE;
	num->is_double = false;
	if (q < s->end && *q == '.') {
		q++;
		if (!skip_digits(&q, s->end))
			return INGEST_FAST_UNSURE;
		num->is_double = true;
	}
	if (q < s->end && (*q == 'e' || *q == 'E')) {
		q++;
		if (q < s->end && (*q == '+' || *q == '-'))
			q++;
		if (!skip_digits(&q, s->end))
			return INGEST_FAST_UNSURE;
		num->is_double = true;
	}
	s->p = q;
	if (num->is_double)
		return convert_double(start, (size_t)(q - start), &num->d);
	return convert_int(neg, digits, (size_t)(q - digits), &num->i);
}

static enum ingest_fast_status skip_value(struct fast_state *s, int depth);

/* An ignored object or array (the opening byte already consumed) at nesting level depth. */
static enum ingest_fast_status skip_container(struct fast_state *s, int depth, bool is_object)
{
	const unsigned char *key;
	size_t klen;
	enum ingest_fast_status v;

	if (depth > FAST_MAX_DEPTH)
		return INGEST_FAST_UNSURE;
	if (eat(s, is_object ? '}' : ']'))
		return INGEST_FAST_ACCEPT;
	do {
		if (is_object) {
			v = scan_string(s, &key, &klen);
			if (v != INGEST_FAST_ACCEPT)
				return v;
			if (!eat(s, ':'))
				return INGEST_FAST_UNSURE;
		}
		v = skip_value(s, depth);
		if (v != INGEST_FAST_ACCEPT)
			return v;
	} while (eat(s, ','));
	return eat(s, is_object ? '}' : ']') ? INGEST_FAST_ACCEPT : INGEST_FAST_UNSURE;
}

/* A literal word; json-c takes exactly these three in strict mode. */
static enum ingest_fast_status skip_word(struct fast_state *s, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return INGEST_FAST_UNSURE;
	s->p += n;
	return INGEST_FAST_ACCEPT;
}

/*
 * The value of a field we ignore, inside a container at level depth. It is still
 * checked as strictly as a kept one: json-c rejects the body for any error in it.
 */
static enum ingest_fast_status skip_value(struct fast_state *s, int depth)
{
	const unsigned char *str;
	size_t n;
	struct number num;

	skip_ws(s);
	if (s->p == s->end)
		return INGEST_FAST_UNSURE;
	switch (*s->p) {
	case '{':
	case '[':
		s->p++;
		return skip_container(s, depth + 1, s->p[-1] == '{');
	case '"':
		return scan_string(s, &str, &n);
	case 't':
		return skip_word(s, "true");
	case 'f':
		return skip_word(s, "false");
	case 'n':
		return skip_word(s, "null");
	default:
		return scan_number(s, &num);
	}
}

/* The record's packed bytes go out only while the request still fits its limits. */
static enum ingest_fast_status pack_record(struct fast_state *s, const struct rec *rec)
{
	size_t wire = rec_wire_size(rec);

	s->count++;
	s->size += wire;
	if (s->count > s->lim->max_records || s->size > s->lim->max_payload)
		return INGEST_FAST_ACCEPT;
	if (s->size > s->payload->cap &&
	    ingest_buf_reserve(s->payload, s->size, INGEST_PAYLOAD_MIN_CAP) != 0)
		return INGEST_FAST_NOMEM;
	rec_encode(s->payload->data + s->size - wire, rec);
	return INGEST_FAST_ACCEPT;
}

/* One field of a record; *seen gains its bit. */
static enum ingest_fast_status record_field(struct fast_state *s, struct rec *rec, unsigned *seen)
{
	const unsigned char *key, *name;
	size_t klen, nlen;
	struct number num;
	enum ingest_fast_status v;
	unsigned bit;

	v = scan_string(s, &key, &klen);
	if (v != INGEST_FAST_ACCEPT || !eat(s, ':'))
		return INGEST_FAST_UNSURE;
	if (KEY_IS(key, klen, "timestamp"))
		bit = F_TIMESTAMP;
	else if (KEY_IS(key, klen, "name"))
		bit = F_NAME;
	else if (KEY_IS(key, klen, "value"))
		bit = F_VALUE;
	else
		return skip_value(s, FAST_RECORD_DEPTH);
	/* json-c keeps the last duplicate; which one failed first is its call. */
	if (*seen & bit)
		return INGEST_FAST_UNSURE;
	*seen |= bit;
	if (bit == F_NAME) {
		v = scan_string(s, &name, &nlen);
		if (v != INGEST_FAST_ACCEPT || nlen == 0 || nlen > REC_NAME_MAX)
			return INGEST_FAST_UNSURE;
		rec->name = (const char *)name;
		rec->name_len = (uint16_t)nlen;
		return INGEST_FAST_ACCEPT;
	}
	v = scan_number(s, &num);
	if (v != INGEST_FAST_ACCEPT)
		return v;
	if (bit == F_TIMESTAMP) {
		if (num.is_double)
			return INGEST_FAST_UNSURE;
		rec->ts = num.i;
		return INGEST_FAST_ACCEPT;
	}
	rec->type = num.is_double ? REC_DOUBLE : REC_INT;
	if (num.is_double)
		rec->v.d = num.d;
	else
		rec->v.i = num.i;
	return INGEST_FAST_ACCEPT;
}

static enum ingest_fast_status parse_record(struct fast_state *s)
{
	struct rec rec = { 0 };
	unsigned seen = 0;
	enum ingest_fast_status v;

	if (!eat(s, '{'))
		return INGEST_FAST_UNSURE;
	do {
		v = record_field(s, &rec, &seen);
		if (v != INGEST_FAST_ACCEPT)
			return v;
	} while (eat(s, ','));
	if (!eat(s, '}') || seen != F_ALL)
		return INGEST_FAST_UNSURE;
	return pack_record(s, &rec);
}

static enum ingest_fast_status parse_records(struct fast_state *s)
{
	enum ingest_fast_status v;

	if (!eat(s, '['))
		return INGEST_FAST_UNSURE;
	if (eat(s, ']'))
		return INGEST_FAST_ACCEPT;
	do {
		v = parse_record(s);
		if (v != INGEST_FAST_ACCEPT)
			return v;
	} while (eat(s, ','));
	return eat(s, ']') ? INGEST_FAST_ACCEPT : INGEST_FAST_UNSURE;
}

/* The top-level object: data_source and records in either order, other fields skipped. */
static enum ingest_fast_status parse_root(struct fast_state *s, struct ingest_fast_result *out)
{
	const unsigned char *key, *src;
	size_t klen, slen;
	bool have_source = false, have_records = false;
	enum ingest_fast_status v;

	if (!eat(s, '{'))
		return INGEST_FAST_UNSURE;
	do {
		v = scan_string(s, &key, &klen);
		if (v != INGEST_FAST_ACCEPT || !eat(s, ':'))
			return INGEST_FAST_UNSURE;
		if (KEY_IS(key, klen, "data_source")) {
			if (have_source)
				return INGEST_FAST_UNSURE;
			have_source = true;
			v = scan_string(s, &src, &slen);
			out->data_source = (const char *)src;
			out->data_source_len = slen;
		} else if (KEY_IS(key, klen, "records")) {
			if (have_records)
				return INGEST_FAST_UNSURE;
			have_records = true;
			v = parse_records(s);
		} else {
			v = skip_value(s, 1);
		}
		if (v != INGEST_FAST_ACCEPT)
			return v;
	} while (eat(s, ','));
	if (!eat(s, '}') || !have_source || !have_records)
		return INGEST_FAST_UNSURE;
	return INGEST_FAST_ACCEPT;
}

enum ingest_fast_status ingest_fast_parse(const char *body, size_t len,
					  const struct ingest_limits *lim,
					  struct ingest_buf *payload,
					  struct ingest_fast_result *out)
{
	struct fast_state s = {
		.p = (const unsigned char *)body,
		.end = (const unsigned char *)body + len,
		.lim = lim,
		.payload = payload,
	};
	enum ingest_fast_status v;

	memset(out, 0, sizeof(*out));
	v = parse_root(&s, out);
	if (v != INGEST_FAST_ACCEPT)
		return v;
	skip_ws(&s);
	if (s.p != s.end)
		return INGEST_FAST_UNSURE;
	out->nrecords = s.count;
	out->payload_len = s.size;
	if (s.count > lim->max_records)
		return INGEST_FAST_TOO_MANY;
	if (s.size > lim->max_payload)
		return INGEST_FAST_TOO_LARGE;
	return INGEST_FAST_ACCEPT;
}
