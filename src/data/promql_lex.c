/*
 * promql_lex.c - PromQL's tokens as Prometheus's lexer cuts them: identifiers (with
 * ':' outside brackets), numbers (decimal, 0x hex, 0 octal, exponents), durations
 * ("5m", "1h30m"), the three kinds of quoted strings with Go's escapes, operators.
 * Also number and duration text as Prometheus reads it, and parse error positions.
 */
#include "promql_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UTF8_MAX 4
#define NUM_TEXT_MAX 128

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_alnum(char c)
{
	return is_alpha(c) || is_digit(c);
}

static int hexval(char c)
{
	if (is_digit(c))
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void pq_parse_error(struct pq_err *e, const char *q, size_t pos, const char *fmt, ...)
{
	size_t line = 1, line_start = 0;
	char msg[PQ_ERR_MAX];
	va_list ap;

	for (size_t i = 0; i < pos; i++) {
		if (q[i] == '\n') {
			line++;
			line_start = i + 1;
		}
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pq_fail(e, PROMQL_BAD_DATA, "%zu:%zu: parse error: %s", line, pos - line_start + 1, msg);
}

static struct pq_token tok(enum pq_tok type, size_t pos, size_t len)
{
	return (struct pq_token){.type = type, .pos = pos, .len = len};
}

static struct pq_token lex_error(struct pq_lexer *lx, size_t pos, const char *what, char c)
{
	if (c != '\0')
		pq_parse_error(lx->err, lx->q, pos, "%s: '%c'", what, c);
	else
		pq_parse_error(lx->err, lx->q, pos, "%s", what);
	return tok(T_ERROR, pos, 0);
}

static size_t utf8_encode(char *dst, unsigned long cp)
{
	if (cp < 0x80) {
		dst[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		dst[0] = (char)(0xC0 | (cp >> 6));
		dst[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		dst[0] = (char)(0xE0 | (cp >> 12));
		dst[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		dst[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	dst[0] = (char)(0xF0 | (cp >> 18));
	dst[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	dst[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	dst[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* One escape at s[i] (after the backslash) into dst; bytes consumed, 0 if invalid. */
static size_t unescape(const char *s, size_t n, char quote, char *dst, size_t *dlen)
{
	static const char simple[] = "a\ab\bf\fn\nr\rt\tv\v\\\\";
	int digits = 0;
	unsigned long cp = 0;

	if (n == 0)
		return 0;
	for (size_t k = 0; simple[k] != '\0'; k += 2) {
		if (s[0] == simple[k]) {
			dst[(*dlen)++] = simple[k + 1];
			return 1;
		}
	}
	if (s[0] == quote) {
		dst[(*dlen)++] = quote;
		return 1;
	}
	if (s[0] >= '0' && s[0] <= '7') {
		if (n < 3)
			return 0;
		for (int k = 0; k < 3; k++) {
			if (s[k] < '0' || s[k] > '7')
				return 0;
			cp = cp * 8 + (unsigned long)(s[k] - '0');
		}
		if (cp > 0xFF)
			return 0;
		dst[(*dlen)++] = (char)cp;
		return 3;
	}
	digits = s[0] == 'x' ? 2 : s[0] == 'u' ? 4 : s[0] == 'U' ? 8 : 0;
	if (digits == 0 || n < (size_t)digits + 1)
		return 0;
	for (int k = 1; k <= digits; k++) {
		if (hexval(s[k]) < 0)
			return 0;
		cp = cp * 16 + (unsigned long)hexval(s[k]);
	}
	if (s[0] == 'x') {
		dst[(*dlen)++] = (char)cp;
	} else {
		if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		*dlen += utf8_encode(dst + *dlen, cp);
	}
	return (size_t)digits + 1;
}

static struct pq_token lex_string(struct pq_lexer *lx)
{
	size_t start = lx->pos, i = start + 1, dlen = 0;
	char quote = lx->q[start];
	char *dst = pq_alloc(lx->arena, lx->len - start + UTF8_MAX);
	struct pq_token t;

	if (dst == NULL) {
		pq_oom(lx->err);
		return tok(T_ERROR, start, 0);
	}
	while (i < lx->len && lx->q[i] != quote) {
		if (lx->q[i] == '\\' && quote != '`') {
			size_t used = unescape(lx->q + i + 1, lx->len - i - 1, quote, dst, &dlen);

			if (used == 0)
				return lex_error(lx, i, "unknown escape sequence", lx->q[i + 1 < lx->len ? i + 1 : i]);
			i += used + 1;
			continue;
		}
		if (lx->q[i] == '\n' && quote != '`')
			return lex_error(lx, start, "unterminated quoted string", quote);
		dst[dlen++] = lx->q[i++];
	}
	if (i >= lx->len)
		return lex_error(lx, start, "unterminated quoted string", quote);
	dst[dlen] = '\0';
	lx->pos = i + 1;
	t = tok(T_STRING, start, lx->pos - start);
	t.str = dst;
	t.str_len = dlen;
	return t;
}

static size_t accept_run(const char *q, size_t len, size_t i, bool hex)
{
	while (i < len && (is_digit(q[i]) || (hex && hexval(q[i]) >= 0)))
		i++;
	return i;
}

/* Prometheus's scanNumber: the end of the number at q[start], or 0 if what follows
 * it is alphanumeric (then it may be a duration). */
static size_t scan_number(const struct pq_lexer *lx, size_t start)
{
	const char *q = lx->q;
	size_t i = start, n = lx->len;
	bool hex = false;

	if (i + 1 < n && q[i] == '0' && (q[i + 1] == 'x' || q[i + 1] == 'X')) {
		hex = true;
		i += 2;
	}
	i = accept_run(q, n, i, hex);
	if (i < n && q[i] == '.')
		i = accept_run(q, n, i + 1, hex);
	if (i < n && (q[i] == 'e' || q[i] == 'E')) {
		i++;
		if (i < n && (q[i] == '+' || q[i] == '-'))
			i++;
		i = accept_run(q, n, i, false);
	}
	return i < n && is_alnum(q[i]) ? 0 : i;
}

/* acceptRemainingDuration after a number: its end, or 0 if not a duration. */
static size_t scan_duration(const struct pq_lexer *lx, size_t i)
{
	const char *q = lx->q;
	size_t n = lx->len;

	i = accept_run(q, n, i, false);
	if (i >= n || strchr("smhdwy", q[i]) == NULL)
		return 0;
	i++;
	if (i < n && q[i] == 's')
		i++;
	while (i < n && is_digit(q[i])) {
		i = accept_run(q, n, i, false);
		if (i >= n || strchr("smhdw", q[i]) == NULL)
			return 0;
		i++;
		if (i < n && q[i] == 's')
			i++;
	}
	return i < n && is_alnum(q[i]) ? 0 : i;
}

static struct pq_token lex_number(struct pq_lexer *lx)
{
	size_t start = lx->pos, end = scan_number(lx, start);

	if (end != 0) {
		lx->pos = end;
		return tok(T_NUMBER, start, end - start);
	}
	end = scan_duration(lx, start);
	if (end == 0) {
		size_t e = start;

		while (e < lx->len && (is_alnum(lx->q[e]) || lx->q[e] == '.'))
			e++;
		pq_parse_error(lx->err, lx->q, start, "bad number or duration syntax: \"%.*s\"",
			       (int)(e - start), lx->q + start);
		return tok(T_ERROR, start, 0);
	}
	lx->pos = end;
	return tok(T_DURATION, start, end - start);
}

static struct pq_token lex_ident(struct pq_lexer *lx)
{
	size_t start = lx->pos, i = start;

	while (i < lx->len &&
	       (is_alnum(lx->q[i]) || (lx->q[i] == ':' && lx->bracket_depth == 0)))
		i++;
	lx->pos = i;
	return tok(T_IDENT, start, i - start);
}

/* Two-character operators first, then one-character ones. */
static struct pq_token lex_operator(struct pq_lexer *lx)
{
	static const struct {
		const char *text;
		enum pq_tok type;
	} ops[] = {
		{"==", T_EQLC}, {"!=", T_NEQ}, {">=", T_GTE}, {"<=", T_LTE}, {"=~", T_EQL_REGEX},
		{"!~", T_NEQ_REGEX}, {"(", T_LPAREN}, {")", T_RPAREN}, {"{", T_LBRACE},
		{"}", T_RBRACE}, {"[", T_LBRACK}, {"]", T_RBRACK}, {",", T_COMMA}, {":", T_COLON},
		{"@", T_AT}, {"+", T_ADD}, {"-", T_SUB}, {"*", T_MUL}, {"/", T_DIV}, {"%", T_MOD},
		{"^", T_POW}, {">", T_GTR}, {"<", T_LSS}, {"=", T_EQL},
	};
	size_t start = lx->pos;

	for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
		size_t l = strlen(ops[k].text);

		if (lx->len - start >= l && memcmp(lx->q + start, ops[k].text, l) == 0) {
			lx->pos += l;
			if (ops[k].type == T_LBRACK)
				lx->bracket_depth++;
			else if (ops[k].type == T_RBRACK && lx->bracket_depth > 0)
				lx->bracket_depth--;
			return tok(ops[k].type, start, l);
		}
	}
	return lex_error(lx, start, "unexpected character", lx->q[start]);
}

struct pq_token pq_lex(struct pq_lexer *lx)
{
	char c;

	for (;;) {
		while (lx->pos < lx->len && strchr(" \t\n\r", lx->q[lx->pos]) != NULL &&
		       lx->q[lx->pos] != '\0')
			lx->pos++;
		if (lx->pos < lx->len && lx->q[lx->pos] == '#') {
			while (lx->pos < lx->len && lx->q[lx->pos] != '\n')
				lx->pos++;
			continue;
		}
		break;
	}
	if (lx->pos >= lx->len)
		return tok(T_EOF, lx->len, 0);
	c = lx->q[lx->pos];
	if (c == '"' || c == '\'' || c == '`')
		return lex_string(lx);
	if (is_digit(c) || (c == '.' && lx->pos + 1 < lx->len && is_digit(lx->q[lx->pos + 1])))
		return lex_number(lx);
	if (is_alpha(c) || (c == ':' && lx->bracket_depth == 0))
		return lex_ident(lx);
	return lex_operator(lx);
}

/* Go's strconv.ParseInt(s, 0, 64): 0x hex, leading-0 octal, else decimal. 0 or -1. */
static int parse_int0(const char *s, double *v)
{
	int base = 10;
	const char *digits = s;
	char *end;
	long long x;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		digits = s + 2;
	} else if (s[0] == '0' && s[1] != '\0') {
		base = 8;
		digits = s + 1;
	}
	if (*digits == '\0')
		return -1;
	for (const char *p = digits; *p != '\0'; p++)
		if (base == 16 ? hexval(*p) < 0 : (*p < '0' || *p > (base == 8 ? '7' : '9')))
			return -1;
	errno = 0;
	x = strtoll(digits, &end, base);
	if (errno != 0 || *end != '\0')
		return -1;
	*v = (double)x;
	return 0;
}

int pq_parse_number(const char *s, size_t n, double *v)
{
	char text[NUM_TEXT_MAX];
	char *end;

	if (n == 0 || n >= sizeof(text))
		return -1;
	memcpy(text, s, n);
	text[n] = '\0';
	if (parse_int0(text, v) == 0)
		return 0;
	/* ParseFloat: decimal only here (a hex float needs a 'p' exponent, which the
	 * lexer never lets through), so strtod's hex reading must not see it. */
	if (strchr(text, 'x') != NULL || strchr(text, 'X') != NULL)
		return -1;
	errno = 0;
	*v = strtod(text, &end);
	if (*end != '\0' || (errno == ERANGE && isinf(*v)))
		return -1;
	return 0;
}

int pq_parse_promql_duration(const char *s, size_t n, int64_t *ms)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = {
		{"y", 365LL * 24 * 3600 * 1000}, {"w", 7LL * 24 * 3600 * 1000},
		{"d", 24LL * 3600 * 1000}, {"h", 3600LL * 1000}, {"m", 60LL * 1000},
		{"s", 1000}, {"ms", 1},
	};
	size_t i = 0, next_unit = 0;
	int64_t total = 0;

	if (n == 1 && s[0] == '0') {
		*ms = 0;
		return 0;
	}
	if (n == 0)
		return -1;
	while (i < n) {
		int64_t x = 0;
		size_t ulen = 0, u;

		if (!is_digit(s[i]))
			return -1;
		while (i < n && is_digit(s[i])) {
			if (x > (INT64_MAX - 9) / 10)
				return -1;
			x = x * 10 + (s[i++] - '0');
		}
		while (i + ulen < n && !is_digit(s[i + ulen]))
			ulen++;
		for (u = next_unit; u < sizeof(units) / sizeof(units[0]); u++)
			if (strlen(units[u].unit) == ulen && memcmp(units[u].unit, s + i, ulen) == 0)
				break;
		if (u == sizeof(units) / sizeof(units[0]))
			return -1;
		if (x > INT64_MAX / units[u].ms || total > INT64_MAX - x * units[u].ms)
			return -1;
		total += x * units[u].ms;
		next_unit = u + 1;
		i += ulen;
	}
	*ms = total;
	return 0;
}
