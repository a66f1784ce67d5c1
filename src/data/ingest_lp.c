/*
 * ingest_lp.c - InfluxDB line protocol to packed records (ingest_lp.h), in one pass.
 *
 * Owns the parser's reusable buffers: the packed records, the unescaped tag parts of
 * the current line, the tag arrays, and the series name being built. Once they are
 * warm, nothing is allocated per line or per record.
 */
#include "temporis/data/ingest_lp.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "temporis/base/buf.h"
#include "temporis/data/ingest_fast.h"
#include "temporis/data/record.h"
#include "temporis/data/series_name.h"

/* The same texts as the JSON path (ingest.c): one condition, one answer. */
#define DETAIL_TOO_MANY "Too many records in one request."
#define DETAIL_TOO_LARGE "Request body too large."

/* A reason fits whole: with the longest line number and quote the detail still fits. */
#define LP_REASON_MAX 128
#define LP_DETAIL_FORMAT "line %zu: unable to parse '%s': %s"
#define LP_LINE_NO_DIGITS 20       /* a size_t */
_Static_assert(sizeof(LP_DETAIL_FORMAT) + LP_LINE_NO_DIGITS + LP_DETAIL_LINE_MAX + sizeof("...") +
		       LP_REASON_MAX <= INGEST_DETAIL_MAX,
	       "an error detail always fits INGEST_DETAIL_MAX");
#define LP_TAGS_MIN_CAP 16
#define LP_SCRATCH_MIN_CAP 256
/* Room for a float literal and its NUL on the stack; longer ones go through the scratch. */
#define LP_NUM_BUF 64
#define LP_POW10_MAX 22            /* 10^22 is the largest exact power of ten */
#define LP_EXACT_DIGITS 19         /* at most this many digits cannot overflow uint64 */
#define LP_EXACT_MANTISSA (1ull << 53)
#define DECIMAL_BASE 10
#define NS_PER_S 1000000000
#define US_PER_S 1000000
#define MS_PER_S 1000
#define S_PER_M 60
#define S_PER_H 3600

_Static_assert(REC_NAME_MAX <= UINT16_MAX, "a record's name length is a uint16_t");

/* One idiom for the whole file: every helper returns one of these. */
enum verdict {
	V_NOMEM = -1,
	V_OK = 0,
	V_BAD = 400,
	V_TOO_LARGE = 413,
};

/* Which bytes end a token of each kind (unless a backslash escapes them). */
enum char_class {
	C_MEAS = 1,                /* a measurement: ',' ' ' '\n', and '\\' starts an escape */
	C_KEY = 2,                 /* a tag key, tag value or field key: also '=' */
	C_VALUE = 4,               /* a number, boolean or timestamp: ',' ' ' '\t' '\n' */
	C_ODD = 8,                 /* in a name: not printable ASCII, or '"' (escaped in values) */
};

static const unsigned char char_class[256] = {
	[0x00 ... 0x08] = C_ODD,
	['\t'] = C_VALUE | C_ODD,
	['\n'] = C_MEAS | C_KEY | C_VALUE,
	[0x0B ... 0x1F] = C_ODD,
	[' '] = C_MEAS | C_KEY | C_VALUE,
	['"'] = C_ODD,
	[','] = C_MEAS | C_KEY | C_VALUE,
	['='] = C_KEY,
	['\\'] = C_MEAS | C_KEY,
	[0x7F ... 0xFF] = C_ODD,
};

/*
 * What a name token held besides plain bytes (printable ASCII but '"' and '\'). A
 * plain token obeys the name rule and needs no escaping: the common case skips both.
 */
enum token_seen {
	TOK_ESCAPED = 1,           /* a backslash: unescape it */
	TOK_ODD = 2,               /* a C_ODD byte: check it (series_name_ok), escape it */
};

/* Where a tag's escaped parts sit in the scratch buffer while the tag set is read. */
struct tag_offsets {
	size_t name, value;
};

struct ingest_lp {
	struct ingest_buf payload;     /* packed records of the last valid body */
	struct ingest_buf scratch;     /* the line's unescaped tag parts; long float literals */
	struct series_label *tags;     /* the line's tags, then sorted */
	struct tag_offsets *offsets;   /* parallel to tags; tags_cap entries too */
	size_t tags_cap, offsets_cap;
	char name[REC_NAME_MAX];       /* measurement '_' field key, then the labels */
	char labels[REC_NAME_MAX];     /* the line's {tag="value",...}, a prefix if longer */
};

/* One parse: the position, the current line, and what was packed so far. */
struct lp_state {
	struct ingest_lp *lp;
	const unsigned char *body, *p, *end;
	const unsigned char *line;     /* first non-blank byte of the current line */
	const struct ingest_limits *lim;
	enum lp_precision prec;
	int64_t now_s;
	struct ingest_result *out;
	size_t count, size;            /* records and packed bytes so far, written or not */
	size_t line_first;             /* payload offset of the line's first record */
	size_t line_written;           /* records of the line written (within the limits) */
	size_t scratch_used;
	size_t mlen;                   /* unescaped measurement length, name[0..mlen) if it fits */
	size_t labels_len;             /* full length of the labels part */
	unsigned tags_seen;            /* enum token_seen of all the line's tag parts */
	bool tags_ascending;           /* keys came strictly sorted (and so without duplicates) */
	bool meas_ok, labels_ok;       /* those parts obey the name rule on their own */
};

int lp_precision_parse(const char *text, enum lp_precision *out)
{
	static const struct {
		const char *text;
		enum lp_precision prec;
	} units[] = {
		{ "", LP_NS }, { "ns", LP_NS }, { "n", LP_NS }, { "u", LP_US }, { "us", LP_US },
		{ "\xc2\xb5", LP_US }, { "ms", LP_MS }, { "s", LP_S }, { "m", LP_M }, { "h", LP_H },
	};

	if (text == NULL) {
		*out = LP_NS;
		return 0;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(text, units[i].text) == 0) {
			*out = units[i].prec;
			return 0;
		}
	}
	return -1;
}

struct ingest_lp *ingest_lp_new(void)
{
	return calloc(1, sizeof(struct ingest_lp));
}

void ingest_lp_free(struct ingest_lp *p)
{
	if (p == NULL)
		return;
	free(p->payload.data);
	free(p->scratch.data);
	free(p->tags);
	free(p->offsets);
	free(p);
}

/* The line as the detail quotes it: cut, and every byte outside printable ASCII a '?'. */
static void quote_line(const struct lp_state *s, char *text)
{
	const unsigned char *at = s->p > s->line ? s->p : s->line;
	const unsigned char *eol = memchr(at, '\n', (size_t)(s->end - at));
	size_t n, shown;

	if (eol == NULL)
		eol = s->end;
	if (eol > s->line && eol[-1] == '\r')
		eol--;
	n = (size_t)(eol - s->line);
	shown = n > LP_DETAIL_LINE_MAX ? LP_DETAIL_LINE_MAX : n;
	for (size_t i = 0; i < shown; i++)
		text[i] = s->line[i] >= 0x20 && s->line[i] < 0x7F ? (char)s->line[i] : '?';
	strcpy(text + shown, n > shown ? "..." : "");
}

/* The 400 of the current line: "line N: unable to parse 'TEXT': REASON". */
static enum verdict bad(const struct lp_state *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static enum verdict bad(const struct lp_state *s, const char *fmt, ...)
{
	char reason[LP_REASON_MAX], text[LP_DETAIL_LINE_MAX + sizeof("...")];
	const unsigned char *q = s->body;
	size_t line_no = 1;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	/* Counted only now: the error path may be slow, the valid one may not. */
	while ((q = memchr(q, '\n', (size_t)(s->line - q))) != NULL) {
		line_no++;
		q++;
	}
	quote_line(s, text);
	snprintf(s->out->detail, sizeof(s->out->detail), LP_DETAIL_FORMAT, line_no, text, reason);
	return V_BAD;
}

static inline bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static inline void skip_blanks(struct lp_state *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t'))
		s->p++;
}

/* The line ends at '\n', at "\r\n", or where the body does (with or without a '\r'). */
static inline bool at_eol(const struct lp_state *s)
{
	return s->p == s->end || *s->p == '\n' ||
	       (*s->p == '\r' && (s->p + 1 == s->end || s->p[1] == '\n'));
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SWAR_ONES 0x0101010101010101ull
#define SWAR_HIGHS 0x8080808080808080ull
#define SWAR_BYTES 8

/*
 * The high bit of each byte of w equal to c. Only the lowest one is sure (a borrow
 * may mark bytes above it): that is the one skip_plain wants.
 */
static inline uint64_t swar_eq(uint64_t w, unsigned char c)
{
	uint64_t t = w ^ (SWAR_ONES * c);

	return (t - SWAR_ONES) & ~t & SWAR_HIGHS;
}

/*
 * The first byte at p a name token must look at: below '!' (blanks, '\n' and other
 * controls), '"', ',', '=', '\\', or 0x7F and above. Eight bytes a step: tokens are
 * short and many, and a byte loop pays a mispredicted exit for each one.
 */
static inline const unsigned char *skip_plain(const unsigned char *p, const unsigned char *end)
{
	while (end - p >= SWAR_BYTES) {
		uint64_t w, hit;

		memcpy(&w, p, sizeof(w));
		hit = ((w - SWAR_ONES * '!') & ~w & SWAR_HIGHS) | (((w + SWAR_ONES) | w) & SWAR_HIGHS) |
		      swar_eq(w, '"') | swar_eq(w, ',') | swar_eq(w, '=') | swar_eq(w, '\\');
		if (hit != 0)
			return p + (__builtin_ctzll(hit) / SWAR_BYTES);
		p += SWAR_BYTES;
	}
	while (p < end && !(char_class[*p] & (C_MEAS | C_KEY | C_ODD)))
		p++;
	return p;
}
#else
static inline const unsigned char *skip_plain(const unsigned char *p, const unsigned char *end)
{
	while (p < end && !(char_class[*p] & (C_MEAS | C_KEY | C_ODD)))
		p++;
	return p;
}
#endif

/*
 * The end of the name token at p: the first byte of class cls no backslash escapes.
 * A backslash escapes any byte but '\n' (a line always ends there). *seen tells what
 * the token held besides plain bytes (enum token_seen).
 */
static inline const unsigned char *scan_token(const unsigned char *p, const unsigned char *end,
					      unsigned cls, unsigned *seen)
{
	*seen = 0;
	for (;;) {
		p = skip_plain(p, end);
		if (p == end)
			return p;
		if (*p == '\\') {
			/* Escaped or not, an odd byte is still one the name rule must see. */
			*seen |= TOK_ESCAPED;
			if (p + 1 < end && p[1] != '\n') {
				*seen |= char_class[p[1]] & C_ODD ? TOK_ODD : 0;
				p++;
			}
			p++;
		} else if (char_class[*p] & cls) {
			return p;
		} else {
			*seen |= char_class[*p] & C_ODD ? TOK_ODD : 0;
			p++;          /* odd, or '=' in a measurement */
		}
	}
}

/* A number, boolean or timestamp at s->p; a '\r' that ends the line is not part of it. */
static inline const unsigned char *value_end(const struct lp_state *s)
{
	const unsigned char *q = s->p;

	while (q < s->end && !(char_class[*q] & C_VALUE))
		q++;
	if (q > s->p && q[-1] == '\r' && (q == s->end || *q == '\n'))
		q--;
	return q;
}

/*
 * Write src[0..n) unescaped into dst[0..cap) and return its full length (which may be
 * more than cap). "\\", "\," and "\ " are escapes everywhere, "\=" in keys and tag
 * values only (cls C_KEY); any other backslash is a literal one, as in InfluxDB.
 */
static size_t unescape(char *dst, size_t cap, const unsigned char *src, size_t n, unsigned cls)
{
	size_t i = 0, len = 0;

	while (i < n) {
		unsigned char c = src[i++];

		if (c == '\\' && i < n &&
		    (src[i] == '\\' || src[i] == ',' || src[i] == ' ' ||
		     (src[i] == '=' && cls == C_KEY)))
			c = src[i++];
		if (len < cap)
			dst[len] = (char)c;
		len++;
	}
	return len;
}

/* The measurement into name[0..mlen) (if it fits); s->p then sits on the ',' or ' ' after it. */
static enum verdict parse_measurement(struct lp_state *s)
{
	const unsigned char *start = s->p;
	char *name = s->lp->name;
	unsigned seen;
	size_t n;

	if (*s->p == ',')
		return bad(s, "missing measurement");
	s->p = scan_token(s->p, s->end, C_MEAS, &seen);
	if (s->p == s->end || *s->p == '\n')
		return bad(s, "missing fields");
	n = (size_t)(s->p - start);
	if (seen & TOK_ESCAPED)
		s->mlen = unescape(name, REC_NAME_MAX, start, n, C_MEAS);
	else if ((s->mlen = n) <= REC_NAME_MAX)
		memcpy(name, start, n);
	s->meas_ok = s->mlen < REC_NAME_MAX &&
		     (!(seen & TOK_ODD) || series_name_ok(name, s->mlen));
	if (s->mlen < REC_NAME_MAX)
		name[s->mlen] = '_';
	return V_OK;
}

/*
 * The tag part at start..s->p: borrowed from the body when it holds no escape, else
 * unescaped into the scratch buffer; then *ptr is NULL and *off says where, resolved
 * once the whole tag set is read (the scratch may move while it grows).
 */
static inline enum verdict keep_part(struct lp_state *s, const unsigned char *start,
				     unsigned seen, const char **ptr, size_t *len, size_t *off)
{
	struct ingest_buf *b = &s->lp->scratch;
	size_t n = (size_t)(s->p - start);

	s->tags_seen |= seen;
	if (!(seen & TOK_ESCAPED)) {
		*ptr = (const char *)start;
		*len = n;
		return V_OK;
	}
	if (ingest_buf_reserve(b, s->scratch_used + n, LP_SCRATCH_MIN_CAP) != 0)
		return V_NOMEM;
	*ptr = NULL;
	*off = s->scratch_used;
	*len = unescape((char *)b->data + *off, n, start, n, C_KEY);
	s->scratch_used += *len;
	return V_OK;
}

/*
 * Whether a's name sorts strictly before b's (series_labels_sort's order). A name still
 * in the scratch buffer (NULL) is not compared: the tags are then sorted in full.
 */
static inline bool key_before(const struct series_label *a, const struct series_label *b)
{
	size_t common = a->name_len < b->name_len ? a->name_len : b->name_len;

	if (a->name == NULL || b->name == NULL)
		return false;
	/* Keys are short: a byte loop beats a call to memcmp. */
	for (size_t i = 0; i < common; i++) {
		if (a->name[i] != b->name[i])
			return (unsigned char)a->name[i] < (unsigned char)b->name[i];
	}
	return a->name_len < b->name_len;
}

/* Tag i, key=value, at s->p (after its ','); s->p then sits on the ',' or ' ' after it. */
static enum verdict parse_tag(struct lp_state *s, size_t i)
{
	struct ingest_lp *lp = s->lp;
	const unsigned char *start = s->p;
	enum verdict v;
	unsigned seen;

	if (i >= lp->tags_cap &&
	    vec_reserve((void **)&lp->tags, &lp->tags_cap, i + 1, sizeof(*lp->tags),
			LP_TAGS_MIN_CAP) != 0)
		return V_NOMEM;
	if (i >= lp->offsets_cap &&
	    vec_reserve((void **)&lp->offsets, &lp->offsets_cap, i + 1, sizeof(*lp->offsets),
			LP_TAGS_MIN_CAP) != 0)
		return V_NOMEM;
	s->p = scan_token(s->p, s->end, C_KEY, &seen);
	if (s->p == start)
		return bad(s, "missing tag key");
	if (s->p == s->end || *s->p != '=')
		return bad(s, "missing tag value");
	v = keep_part(s, start, seen, &lp->tags[i].name, &lp->tags[i].name_len,
		      &lp->offsets[i].name);
	if (v != V_OK)
		return v;
	if (i > 0 && s->tags_ascending)
		s->tags_ascending = key_before(&lp->tags[i - 1], &lp->tags[i]);
	start = ++s->p;
	s->p = scan_token(s->p, s->end, C_KEY, &seen);
	if (s->p == start && (s->p == s->end || *s->p != '='))
		return bad(s, "missing tag value");
	if (s->p == s->end || *s->p == '\n')
		return bad(s, "missing fields");
	if (*s->p == '=')
		return bad(s, "invalid tag format");
	return keep_part(s, start, seen, &lp->tags[i].value, &lp->tags[i].value_len,
			 &lp->offsets[i].value);
}

/*
 * Append n bytes at dst + *at. Tag parts are short: up to 16 bytes go as two words
 * that may overlap (fixed-size memcpy compiles to plain moves), not through a call
 * or a byte loop. Only dst[*at, *at + n) is written.
 */
static inline void put_short(char *dst, size_t *at, const char *src, size_t n)
{
	char *d = dst + *at;
	uint64_t w0, w1;
	uint32_t h0, h1;

	if (n >= sizeof(w0) && n <= 2 * sizeof(w0)) {
		memcpy(&w0, src, sizeof(w0));
		memcpy(&w1, src + n - sizeof(w1), sizeof(w1));
		memcpy(d, &w0, sizeof(w0));
		memcpy(d + n - sizeof(w1), &w1, sizeof(w1));
	} else if (n >= sizeof(h0) && n < sizeof(w0)) {
		memcpy(&h0, src, sizeof(h0));
		memcpy(&h1, src + n - sizeof(h1), sizeof(h1));
		memcpy(d, &h0, sizeof(h0));
		memcpy(d + n - sizeof(h1), &h1, sizeof(h1));
	} else if (n > 2 * sizeof(w0)) {
		memcpy(d, src, n);
	} else {
		for (size_t i = 0; i < n; i++)
			d[i] = src[i];
	}
	*at += n;
}

/*
 * series_name_format's {name="value",...} for labels of plain bytes only, which it
 * would copy verbatim: the same bytes, by memcpy. Nothing is written when the labels
 * do not fit cap (the name is then refused for its length, which is returned).
 */
static size_t format_plain_labels(char *dst, size_t cap, const struct series_label *t, size_t n)
{
	size_t len = 1, at = 0;      /* the closing '}'; each label adds its own opener */

	for (size_t i = 0; i < n; i++)
		len += t[i].name_len + t[i].value_len + sizeof("{=\"\"") - 1;
	if (len > cap)
		return len;
	for (size_t i = 0; i < n; i++) {
		dst[at++] = i == 0 ? '{' : ',';
		put_short(dst, &at, t[i].name, t[i].name_len);
		dst[at++] = '=';
		dst[at++] = '"';
		put_short(dst, &at, t[i].value, t[i].value_len);
		dst[at++] = '"';
	}
	dst[at] = '}';
	return len;
}

/* The n tags read: resolve, sort, refuse duplicates, and format the labels part once. */
static enum verdict finish_tags(struct lp_state *s, size_t n)
{
	struct ingest_lp *lp = s->lp;
	const char *scratch = (const char *)lp->scratch.data;

	s->labels_len = 0;
	s->labels_ok = true;
	if (n == 0)
		return V_OK;
	for (size_t i = 0; i < n && (s->tags_seen & TOK_ESCAPED); i++) {
		if (lp->tags[i].name == NULL)
			lp->tags[i].name = scratch + lp->offsets[i].name;
		if (lp->tags[i].value == NULL)
			lp->tags[i].value = scratch + lp->offsets[i].value;
	}
	/* Most clients send tags sorted already (InfluxDB asks them to). */
	if (!s->tags_ascending) {
		series_labels_sort(lp->tags, n);
		for (size_t i = 1; i < n; i++) {
			if (lp->tags[i].name_len == lp->tags[i - 1].name_len &&
			    memcmp(lp->tags[i].name, lp->tags[i - 1].name, lp->tags[i].name_len) == 0)
				return bad(s, "duplicate tags");
		}
	}
	if (s->tags_seen == 0) {
		s->labels_len = format_plain_labels(lp->labels, REC_NAME_MAX, lp->tags, n);
		return V_OK;
	}
	/* Unescaped bytes may need escaping (a '\\' is now one '\'), odd ones a check. */
	s->labels_len = series_name_format(lp->labels, REC_NAME_MAX, "", 0, lp->tags, n);
	s->labels_ok = s->labels_len <= REC_NAME_MAX &&
		       (!(s->tags_seen & TOK_ODD) || series_name_ok(lp->labels, s->labels_len));
	return V_OK;
}

/* The measurement and the tag set, up to the ' ' before the fields. */
static enum verdict parse_series_key(struct lp_state *s)
{
	enum verdict v = parse_measurement(s);
	size_t n = 0;

	if (v != V_OK)
		return v;
	s->scratch_used = 0;
	s->tags_seen = 0;
	s->tags_ascending = true;
	while (*s->p == ',') {
		s->p++;
		v = parse_tag(s, n++);
		if (v != V_OK)
			return v;
	}
	return finish_tags(s, n);
}

/*
 * Clinger's fast path: digits forming an integer m <= 2^53 and a decimal exponent e
 * with |e| <= 22 make m * 10^e (or m / 10^-e) of two exact doubles, so one IEEE
 * operation gives the correctly rounded result, the bits strtod gives. The syntax is
 * already checked. False: ask strtod.
 */
static bool exact_double(const unsigned char *p, const unsigned char *end, double *d)
{
	static const double pow10[LP_POW10_MAX + 1] = {
		1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
		1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
	};
	uint64_t m = 0;
	int digits = 0, exp = 0, e = 0;
	bool neg = *p == '-', frac = false, eneg;

	p += neg;
	for (; p < end && *p != 'e' && *p != 'E'; p++) {
		if (*p == '.') {
			frac = true;
			continue;
		}
		if (++digits > LP_EXACT_DIGITS)
			return false;
		m = m * DECIMAL_BASE + (uint64_t)(*p - '0');
		exp -= frac;
	}
	if (p < end) {
		p++;
		eneg = *p == '-';
		p += *p == '+' || *p == '-';
		for (; p < end; p++) {
			if (e > LP_POW10_MAX)
				return false;
			e = e * DECIMAL_BASE + (*p - '0');
		}
		exp += eneg ? -e : e;
	}
	if (m > LP_EXACT_MANTISSA || exp < -LP_POW10_MAX || exp > LP_POW10_MAX)
		return false;
	*d = exp < 0 ? (double)m / pow10[-exp] : (double)m * pow10[exp];
	if (neg)
		*d = -*d;
	return true;
}

/*
 * InfluxDB's float syntax, -?(d+(.d*)?|.d+)([eE][+-]?d+)?, checked by hand: strtod
 * would also take hex, "inf" and "nan", which line protocol does not have.
 */
static bool is_float_syntax(const unsigned char *p, const unsigned char *end)
{
	size_t digits = 0;

	p += p < end && *p == '-';
	for (; p < end && is_digit(*p); p++)
		digits++;
	if (p < end && *p == '.')
		for (p++; p < end && is_digit(*p); p++)
			digits++;
	if (digits == 0)
		return false;
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		p += p < end && (*p == '+' || *p == '-');
		if (p == end || !is_digit(*p))
			return false;
		while (p < end && is_digit(*p))
			p++;
	}
	return p == end;
}

/*
 * A float field: the exact fast path, else strtod on a NUL-terminated copy. Overflow
 * is refused (the store has no infinities); underflow rounds to zero or a subnormal,
 * as InfluxDB does. The daemon never calls setlocale, so strtod's decimal point is '.'.
 */
static enum verdict to_double(struct lp_state *s, const unsigned char *lit, size_t n, double *d)
{
	char local[LP_NUM_BUF], *buf = local, *endp;

	if (!is_float_syntax(lit, lit + n))
		return bad(s, "invalid number");
	if (exact_double(lit, lit + n, d))
		return V_OK;
	if (n >= sizeof(local)) {
		if (ingest_buf_reserve(&s->lp->scratch, n + 1, LP_SCRATCH_MIN_CAP) != 0)
			return V_NOMEM;
		buf = (char *)s->lp->scratch.data;
	}
	memcpy(buf, lit, n);
	buf[n] = '\0';
	*d = strtod(buf, &endp);
	if (endp != buf + n)
		return bad(s, "invalid number");
	if (!isfinite(*d))
		return bad(s, "float value out of range");
	return V_OK;
}

enum int_parse { INT_OK, INT_SYNTAX, INT_RANGE };

/* Decimal digits [p, end), at least one, as a uint64_t; the syntax is judged before the range. */
static enum int_parse parse_u64(const unsigned char *p, const unsigned char *end, uint64_t *out)
{
	uint64_t v = 0;
	bool over = false;

	if (p == end)
		return INT_SYNTAX;
	if (end - p <= LP_EXACT_DIGITS) {  /* cannot overflow: no check per digit */
		for (; p < end; p++) {
			if (!is_digit(*p))
				return INT_SYNTAX;
			v = v * DECIMAL_BASE + (uint64_t)(*p - '0');
		}
		*out = v;
		return INT_OK;
	}
	for (; p < end; p++) {
		unsigned digit = (unsigned)(*p - '0');

		if (!is_digit(*p))
			return INT_SYNTAX;
		if (v > (UINT64_MAX - digit) / DECIMAL_BASE)
			over = true;
		v = v * DECIMAL_BASE + digit;
	}
	*out = v;
	return over ? INT_RANGE : INT_OK;
}

/* -?digits within the int64 range. */
static enum int_parse parse_i64(const unsigned char *p, const unsigned char *end, int64_t *out)
{
	bool neg = p < end && *p == '-';
	uint64_t mag = 0;
	enum int_parse r = parse_u64(p + neg, end, &mag);

	if (r != INT_OK)
		return r;
	if (mag > (uint64_t)INT64_MAX + neg)
		return INT_RANGE;
	if (!neg)
		*out = (int64_t)mag;
	else
		*out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
	return INT_OK;
}

/* InfluxDB's ten spellings of a boolean, stored as the integers 1 and 0. */
static bool parse_bool(const unsigned char *p, size_t n, int64_t *v)
{
	static const struct {
		const char *word;
		int64_t value;
	} words[] = {
		{ "t", 1 }, { "T", 1 }, { "true", 1 }, { "True", 1 }, { "TRUE", 1 },
		{ "f", 0 }, { "F", 0 }, { "false", 0 }, { "False", 0 }, { "FALSE", 0 },
	};

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (strlen(words[i].word) == n && memcmp(p, words[i].word, n) == 0) {
			*v = words[i].value;
			return true;
		}
	}
	return false;
}

/* A number literal: 12i (int64), 12u (stored as int64 when it fits), else a float. */
static enum verdict parse_number(struct lp_state *s, const unsigned char *lit, size_t n,
				 struct rec *rec)
{
	enum int_parse r;
	uint64_t u = 0;

	switch (lit[n - 1]) {
	case 'i':
		rec->type = REC_INT;
		r = parse_i64(lit, lit + n - 1, &rec->v.i);
		if (r == INT_RANGE)
			return bad(s, "integer value out of the int64 range");
		return r == INT_OK ? V_OK : bad(s, "invalid number");
	case 'u':
		r = parse_u64(lit, lit + n - 1, &u);
		if (r == INT_SYNTAX)
			return bad(s, "invalid number");
		if (r == INT_RANGE || u > (uint64_t)INT64_MAX)
			return bad(s, "unsigned value above %" PRId64 " cannot be stored", INT64_MAX);
		rec->type = REC_INT;
		rec->v.i = (int64_t)u;
		return V_OK;
	default:
		rec->type = REC_DOUBLE;
		return to_double(s, lit, n, &rec->v.d);
	}
}

/* The string field at s->p (its opening '"'), skipped; "\"" and "\\" are its escapes. */
static enum verdict skip_string(struct lp_state *s)
{
	const unsigned char *q = s->p + 1;

	for (;;) {
		while (q < s->end && *q != '"' && *q != '\\')
			q++;
		if (q == s->end) {
			s->p = q;
			return bad(s, "unbalanced quotes");
		}
		if (*q == '"')
			break;
		q += q + 1 < s->end && (q[1] == '"' || q[1] == '\\') ? 2 : 1;
	}
	s->p = q + 1;
	if (!at_eol(s) && *s->p != ',' && *s->p != ' ' && *s->p != '\t')
		return bad(s, "invalid field format");
	return V_OK;
}

/* The value after a field's '='; *stored is false for a string, which is skipped. */
static enum verdict parse_value(struct lp_state *s, struct rec *rec, bool *stored)
{
	const unsigned char *start = s->p;
	size_t n;

	*stored = false;
	if (s->p < s->end && *s->p == '"')
		return skip_string(s);
	s->p = value_end(s);
	n = (size_t)(s->p - start);
	if (n == 0)
		return bad(s, "missing field value");
	*stored = true;
	switch (*start) {
	case 't':
	case 'T':
	case 'f':
	case 'F':
		rec->type = REC_INT;
		return parse_bool(start, n, &rec->v.i) ? V_OK : bad(s, "invalid boolean");
	default:
		return parse_number(s, start, n, rec);
	}
}

/* The record's packed bytes go out only while the body still fits its limits. */
static enum verdict pack_record(struct lp_state *s, const struct rec *rec)
{
	struct ingest_buf *b = &s->lp->payload;
	size_t wire = rec_wire_size(rec);

	s->count++;
	s->size += wire;
	if (s->count > s->lim->max_records || s->size > s->lim->max_payload)
		return V_OK;             /* 413 unless a later line is bad: keep checking */
	if (s->size > b->cap && ingest_buf_reserve(b, s->size, INGEST_PAYLOAD_MIN_CAP) != 0)
		return V_NOMEM;
	rec_encode(b->data + s->size - wire, rec);
	s->line_written++;
	return V_OK;
}

/*
 * A numeric field's record: name measurement_key{labels} (its timestamp comes later,
 * stamp_line). The parts are checked apart: each ends before an ASCII byte ('_', '{')
 * or the name's end, so the name obeys series_name_ok exactly when every part does.
 */
static enum verdict emit_record(struct lp_state *s, const unsigned char *key, size_t klen,
				unsigned seen, struct rec *rec)
{
	struct ingest_lp *lp = s->lp;
	size_t at = s->mlen + 1;
	size_t room = at < REC_NAME_MAX ? REC_NAME_MAX - at : 0;
	char *fkey = lp->name + (room > 0 ? at : 0);
	size_t flen, total;

	if (seen & TOK_ESCAPED)
		flen = unescape(fkey, room, key, klen, C_KEY);
	else if ((flen = klen) <= room)
		memcpy(fkey, key, klen);
	total = at + flen + s->labels_len;
	if (total > REC_NAME_MAX)
		return bad(s, "series name of %zu bytes is longer than %d bytes", total,
			   (int)REC_NAME_MAX);
	if (!s->meas_ok || !s->labels_ok || ((seen & TOK_ODD) && !series_name_ok(fkey, flen)))
		return bad(s, "series name is not valid UTF-8 without control characters");
	memcpy(fkey + flen, lp->labels, s->labels_len);
	rec->name = lp->name;
	rec->name_len = (uint16_t)total;
	return pack_record(s, rec);
}

/* One field, key=value; s->p then sits on the ',' or blank after it, or at the line's end. */
static enum verdict parse_field(struct lp_state *s)
{
	const unsigned char *key = s->p;
	struct rec rec = { 0 };
	enum verdict v;
	unsigned seen;
	size_t klen;
	bool stored;

	s->p = scan_token(s->p, s->end, C_KEY, &seen);
	if (s->p == key)
		return bad(s, "missing field key");
	if (s->p == s->end || *s->p != '=')
		return bad(s, "invalid field format");
	klen = (size_t)(s->p - key);
	s->p++;
	v = parse_value(s, &rec, &stored);
	if (v != V_OK || !stored)
		return v;
	return emit_record(s, key, klen, seen, &rec);
}

static enum verdict parse_fields(struct lp_state *s)
{
	enum verdict v;

	skip_blanks(s);
	if (at_eol(s))
		return bad(s, "missing fields");
	for (;;) {
		v = parse_field(s);
		if (v != V_OK || s->p == s->end || *s->p != ',')
			return v;
		s->p++;
	}
}

static bool mul_seconds(int64_t t, int64_t k, int64_t *sec)
{
	if (t > INT64_MAX / k || t < INT64_MIN / k)
		return false;
	*sec = t * k;
	return true;
}

/* A timestamp in prec units as Unix seconds, floored: -1 ns is in second -1. */
static bool to_seconds(int64_t t, enum lp_precision prec, int64_t *sec)
{
	int64_t per;

	switch (prec) {
	case LP_NS:
		per = NS_PER_S;
		break;
	case LP_US:
		per = US_PER_S;
		break;
	case LP_MS:
		per = MS_PER_S;
		break;
	case LP_S:
		*sec = t;
		return true;
	case LP_M:
		return mul_seconds(t, S_PER_M, sec);
	case LP_H:
		return mul_seconds(t, S_PER_H, sec);
	default:
		return false;
	}
	*sec = t / per - (t % per < 0);
	return true;
}

/* The optional timestamp, then only blanks up to the line's end. */
static enum verdict parse_timestamp(struct lp_state *s, int64_t *ts)
{
	const unsigned char *start;
	enum int_parse r;
	int64_t t = 0;

	skip_blanks(s);
	if (at_eol(s)) {
		*ts = s->now_s;
		return V_OK;
	}
	start = s->p;
	s->p = value_end(s);
	r = parse_i64(start, s->p, &t);
	if (r == INT_SYNTAX)
		return bad(s, "bad timestamp");
	if (r == INT_RANGE || !to_seconds(t, s->prec, ts))
		return bad(s, "timestamp out of range");
	skip_blanks(s);
	if (!at_eol(s))
		return bad(s, "bad timestamp");
	return V_OK;
}

/* record.h: the name length is the last fixed field, right before the name. */
#define WIRE_NAME_LEN_AT (REC_WIRE_FIXED - sizeof(uint16_t))

/* The line's timestamp comes after its fields: write it into the line's packed records. */
static void stamp_line(struct lp_state *s, int64_t ts)
{
	uint8_t *q = s->lp->payload.data + s->line_first;

	for (size_t i = 0; i < s->line_written; i++) {
		uint16_t name_len;

		memcpy(q, &ts, sizeof(ts));          /* the wire form starts with it */
		memcpy(&name_len, q + WIRE_NAME_LEN_AT, sizeof(name_len));
		q += REC_WIRE_FIXED + name_len;
	}
}

static enum verdict parse_point(struct lp_state *s)
{
	enum verdict v;
	int64_t ts = 0;

	/* Past a limit nothing is written any more, so the line's records (if any) start here. */
	s->line_first = s->size;
	s->line_written = 0;
	v = parse_series_key(s);
	if (v == V_OK)
		v = parse_fields(s);
	if (v == V_OK)
		v = parse_timestamp(s, &ts);
	if (v == V_OK)
		stamp_line(s, ts);
	return v;
}

/* One line: blank, a comment, or a point; s->p then sits at the next line's start. */
static enum verdict parse_line(struct lp_state *s)
{
	enum verdict v = V_OK;

	skip_blanks(s);
	s->line = s->p;
	if (s->p < s->end && *s->p == '#') {
		const unsigned char *nl = memchr(s->p, '\n', (size_t)(s->end - s->p));

		s->p = nl != NULL ? nl : s->end;
	} else if (!at_eol(s)) {
		v = parse_point(s);
	}
	if (v != V_OK)
		return v;
	if (s->p < s->end && *s->p == '\r')
		s->p++;
	if (s->p < s->end && *s->p == '\n')
		s->p++;
	return V_OK;
}

static enum verdict too_large(struct ingest_result *out, const char *detail)
{
	snprintf(out->detail, sizeof(out->detail), "%s", detail);
	return V_TOO_LARGE;
}

int ingest_lp_parse(struct ingest_lp *p, const char *body, size_t len, enum lp_precision prec,
		    int64_t now_s, const struct ingest_limits *lim, struct ingest_result *out)
{
	struct lp_state s = {
		.lp = p,
		.body = (const unsigned char *)body,
		.p = (const unsigned char *)body,
		.end = (const unsigned char *)body,
		.lim = lim,
		.prec = prec,
		.now_s = now_s,
		.out = out,
	};
	enum verdict v = V_OK;

	assert((unsigned)prec <= LP_H);
	memset(out, 0, sizeof(*out));
	if (len > 0)                   /* body may be NULL when len is 0 */
		s.end += len;
	while (v == V_OK && s.p < s.end)
		v = parse_line(&s);
	if (v == V_OK && s.count > lim->max_records)
		v = too_large(out, DETAIL_TOO_MANY);
	else if (v == V_OK && s.size > lim->max_payload)
		v = too_large(out, DETAIL_TOO_LARGE);
	if (v == V_NOMEM) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	if (v == V_OK) {
		out->nrecords = (uint32_t)s.count; /* count <= max_records, a uint32_t */
		out->payload = p->payload.data;
		out->payload_len = s.size;
	}
	out->status = (int)v;
	return out->status;
}
