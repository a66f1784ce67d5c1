/*
 * promql_parse.c - PromQL text to an AST (promql_int.h), with Prometheus 2.42's
 * grammar and precedence and its type checks (checkAST), by recursive descent.
 * Constructs of PromQL this engine does not evaluate are refused here, by name, so
 * evaluation never meets one. Nodes live in the caller's arena; regexes are listed
 * in the query for pq_query_free.
 */
#include "promql_int.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "temporis/data/series_labels.h"

#define REGEX_ERR_MAX 128

/* Binary operator precedence, lowest first, as Prometheus's grammar orders them. */
enum prec { P_NONE, P_OR, P_AND, P_CMP, P_ADD, P_MUL, P_POW };

struct parser {
	struct pq_lexer lx;
	struct pq_token cur;
	struct pq_arena *a;
	struct pq_err *e;
	const char *q;
	struct pq_query *qr;
};

static const char *const aggregations[] = {"sum", "avg", "min", "max", "count", "topk",
					   "stddev", "stdvar", "bottomk", "quantile",
					   "count_values", "group", NULL};
static const char *const keywords[] = {"by", "without", "bool", "on", "ignoring",
				       "group_left", "group_right", "offset", "and", "or",
				       "unless", "atan2", "start", "end", NULL};
static const struct {
	const char *name;
	enum pq_func fn;
} functions[] = {
	{"rate", F_RATE}, {"irate", F_IRATE}, {"increase", F_INCREASE}, {"delta", F_DELTA},
	{"avg_over_time", F_AVG_OT}, {"min_over_time", F_MIN_OT}, {"max_over_time", F_MAX_OT},
	{"sum_over_time", F_SUM_OT}, {"count_over_time", F_COUNT_OT},
};
/* Prometheus 2.42's other functions: known, so refused as unsupported, not unknown. */
static const char *const other_functions[] = {
	"abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
	"ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh", "days_in_month",
	"day_of_month", "day_of_week", "day_of_year", "deg", "deriv", "exp", "floor",
	"histogram_count", "histogram_sum", "histogram_fraction", "histogram_quantile",
	"holt_winters", "hour", "idelta", "label_replace", "label_join", "last_over_time", "ln",
	"log10", "log2", "minute", "month", "pi", "predict_linear", "present_over_time",
	"quantile_over_time", "rad", "resets", "round", "scalar", "sgn", "sin", "sinh", "sort",
	"sort_desc", "sqrt", "stddev_over_time", "stdvar_over_time", "tan", "tanh", "time",
	"timestamp", "vector", "year", NULL};

const char *pq_type_name(enum pq_type t)
{
	switch (t) {
	case PQ_SCALAR:
		return "scalar";
	case PQ_VECTOR:
		return "instant vector";
	case PQ_MATRIX:
		return "range vector";
	case PQ_STRING:
		return "string";
	}
	return "unknown";
}

static void next(struct parser *p)
{
	p->cur = pq_lex(&p->lx);
}

static bool failed(const struct parser *p)
{
	return p->e->status != PROMQL_OK;
}

static bool is_word(const struct parser *p, const char *w)
{
	return p->cur.type == T_IDENT && strlen(w) == p->cur.len &&
	       strncasecmp(p->q + p->cur.pos, w, p->cur.len) == 0;
}

static int word_index(const struct parser *p, const char *const *list)
{
	for (int i = 0; list[i] != NULL; i++)
		if (is_word(p, list[i]))
			return i;
	return -1;
}

static void *error_at(struct parser *p, size_t pos, const char *msg)
{
	pq_parse_error(p->e, p->q, pos, "%s", msg);
	return NULL;
}

/* "unexpected <what the token is>" as the message, at the token. */
static void *unexpected(struct parser *p, const char *context)
{
	const struct pq_token *t = &p->cur;

	if (failed(p))
		return NULL;
	if (t->type == T_EOF)
		pq_parse_error(p->e, p->q, t->pos, "unexpected end of input%s", context);
	else
		pq_parse_error(p->e, p->q, t->pos, "unexpected \"%.*s\"%s", (int)t->len,
			       p->q + t->pos, context);
	return NULL;
}

static struct pq_node *new_node(struct parser *p, enum pq_kind kind, enum pq_type type,
				size_t pos)
{
	struct pq_node *n = pq_alloc(p->a, sizeof(*n));

	if (n == NULL) {
		pq_oom(p->e);
		return NULL;
	}
	n->kind = kind;
	n->type = type;
	n->pos = pos;
	return n;
}

static struct pq_node *parse_expr(struct parser *p, enum prec min);

/* ---- label matchers ---- */

/* RE2 syntax that POSIX extended regexes would read differently: refused. */
static const char *regex_unsupported(const char *re)
{
	bool in_class = false;

	for (const char *c = re; *c != '\0'; c++) {
		if (in_class) {
			if (*c == '\\')
				return "a backslash inside [...]";
			if (*c == ']' && c[-1] != '[' && !(c[-1] == '^' && c[-2] == '['))
				in_class = false;
			continue;
		}
		if (*c == '[') {
			in_class = true;
			if (c[1] == '^')
				c++;
			if (c[1] == ']')
				c++;
		} else if (*c == '\\') {
			if (c[1] == '\0' || isalnum((unsigned char)c[1]))
				return "escapes such as \\d, \\s, \\w or \\b";
			c++;
		} else if (*c == '(' && c[1] == '?') {
			return "groups with flags, (?...)";
		} else if (strchr("*+?}", *c) != NULL && c[1] == '?') {
			return "lazy quantifiers";
		}
	}
	return NULL;
}

static int compile_regex(struct parser *p, struct pq_matcher *m, size_t pos)
{
	const char *why = regex_unsupported(m->value);
	size_t vlen = strlen(m->value);
	char *anchored = pq_alloc(p->a, vlen + sizeof("^()$"));
	int rc;

	if (why != NULL) {
		pq_parse_error(p->e, p->q, pos,
			       "unsupported regular expression %s: %s (regexes here are POSIX "
			       "extended)",
			       m->value, why);
		return -1;
	}
	if (anchored == NULL) {
		pq_oom(p->e);
		return -1;
	}
	memcpy(anchored, "^(", 2);
	memcpy(anchored + 2, m->value, vlen);
	memcpy(anchored + 2 + vlen, ")$", 3);
	rc = regcomp(&m->re, anchored, REG_EXTENDED | REG_NOSUB);
	if (rc != 0) {
		char why_re[REGEX_ERR_MAX];

		regerror(rc, &m->re, why_re, sizeof(why_re));
		pq_parse_error(p->e, p->q, pos, "error parsing regexp %s: %s", m->value, why_re);
		return -1;
	}
	/* Listed only once compiled: pq_query_free frees exactly the listed ones. */
	m->next_regex = p->qr->regexes;
	p->qr->regexes = m;
	return 0;
}

bool pq_matcher_matches(const struct pq_matcher *m, const char *value)
{
	switch (m->type) {
	case M_EQ:
		return strcmp(m->value, value) == 0;
	case M_NEQ:
		return strcmp(m->value, value) != 0;
	case M_RE:
		return regexec(&m->re, value, 0, NULL, 0) == 0;
	case M_NRE:
		return regexec(&m->re, value, 0, NULL, 0) != 0;
	}
	return false;
}

/* A label name: an identifier (keywords too) without ':'. */
static bool label_name_token(const struct parser *p)
{
	return p->cur.type == T_IDENT && memchr(p->q + p->cur.pos, ':', p->cur.len) == NULL;
}

static int parse_matcher(struct parser *p, struct pq_matcher *m)
{
	size_t pos = p->cur.pos;

	if (!label_name_token(p)) {
		unexpected(p, " in label matching, expected label");
		return -1;
	}
	m->name = pq_strndup(p->a, p->q + p->cur.pos, p->cur.len);
	m->name_len = p->cur.len;
	if (m->name == NULL) {
		pq_oom(p->e);
		return -1;
	}
	next(p);
	switch (p->cur.type) {
	case T_EQL:
		m->type = M_EQ;
		break;
	case T_NEQ:
		m->type = M_NEQ;
		break;
	case T_EQL_REGEX:
		m->type = M_RE;
		break;
	case T_NEQ_REGEX:
		m->type = M_NRE;
		break;
	default:
		unexpected(p, " in label matching, expected label matching operator");
		return -1;
	}
	next(p);
	if (p->cur.type != T_STRING) {
		unexpected(p, " in label matching, expected string");
		return -1;
	}
	m->value = p->cur.str;
	if (strlen(m->value) != p->cur.str_len) {
		/* Stored values never hold a NUL; C string matching would stop at it. */
		error_at(p, p->cur.pos, "a label matcher's value must not contain a NUL byte");
		return -1;
	}
	next(p);
	if (m->type == M_RE || m->type == M_NRE)
		return compile_regex(p, m, pos);
	return 0;
}

/* Room for one more matcher in n (the array of pointers grows; matchers stay put). */
static struct pq_matcher *add_matcher(struct parser *p, struct pq_node *n, size_t *cap)
{
	struct pq_matcher *m = pq_alloc(p->a, sizeof(*m));

	if (m != NULL && n->nm == *cap) {
		struct pq_matcher **grown = pq_alloc_array(p->a, *cap * 2 + 4, sizeof(*grown));

		if (grown != NULL && n->nm > 0)
			memcpy(grown, n->m, n->nm * sizeof(*grown));
		n->m = grown;
		*cap = *cap * 2 + 4;
	}
	if (m == NULL || n->m == NULL) {
		pq_oom(p->e);
		return NULL;
	}
	n->m[n->nm++] = m;
	return m;
}

/* {m1, m2, ...} after the current '{'; appends to the node's matchers. */
static int parse_matchers(struct parser *p, struct pq_node *n, size_t *cap)
{
	next(p);
	while (p->cur.type != T_RBRACE) {
		struct pq_matcher *m = add_matcher(p, n, cap);

		if (m == NULL || parse_matcher(p, m) < 0)
			return -1;
		if (p->cur.type == T_COMMA)
			next(p);
		else if (p->cur.type != T_RBRACE)
			return unexpected(p, " in label matching, expected \",\" or \"}\""), -1;
	}
	next(p);
	return 0;
}

static int check_selector(struct parser *p, struct pq_node *n, size_t *cap, const char *metric,
			  size_t mlen)
{
	bool nonempty = false;

	for (size_t i = 0; i < n->nm; i++) {
		if (metric != NULL && strcmp(n->m[i]->name, SERIES_LABELS_METRIC) == 0) {
			pq_parse_error(p->e, p->q, n->pos,
				       "metric name must not be set twice: \"%.*s\" or \"%s\"",
				       (int)mlen, metric, n->m[i]->value);
			return -1;
		}
	}
	if (metric != NULL) {
		struct pq_matcher *m = add_matcher(p, n, cap);

		if (m == NULL)
			return -1;
		*m = (struct pq_matcher){.type = M_EQ, .name = SERIES_LABELS_METRIC,
					 .name_len = sizeof(SERIES_LABELS_METRIC) - 1,
					 .value = pq_strndup(p->a, metric, mlen)};
		if (m->value == NULL) {
			pq_oom(p->e);
			return -1;
		}
	}
	for (size_t i = 0; i < n->nm; i++)
		nonempty |= !pq_matcher_matches(n->m[i], "");
	if (!nonempty) {
		error_at(p, n->pos, "vector selector must contain at least one non-empty matcher");
		return -1;
	}
	return 0;
}

/* metric, metric{...} or {...}: the current token is the name or '{'. */
static struct pq_node *parse_selector(struct parser *p)
{
	struct pq_node *n = new_node(p, N_VSEL, PQ_VECTOR, p->cur.pos);
	const char *metric = NULL;
	size_t mlen = 0, cap = 0;

	if (n == NULL)
		return NULL;
	if (p->cur.type == T_IDENT) {
		metric = p->q + p->cur.pos;
		mlen = p->cur.len;
		next(p);
	}
	if (p->cur.type == T_LBRACE && parse_matchers(p, n, &cap) < 0)
		return NULL;
	if (failed(p) || check_selector(p, n, &cap, metric, mlen) < 0)
		return NULL;
	return n;
}

/* (l1, l2, ...) of by/without; the current token is '('. */
static int parse_grouping(struct parser *p, struct pq_node *n)
{
	size_t cap = 0;

	if (p->cur.type != T_LPAREN)
		return unexpected(p, " in grouping opts, expected \"(\""), -1;
	next(p);
	while (p->cur.type != T_RPAREN) {
		if (!label_name_token(p))
			return unexpected(p, " in grouping opts, expected label"), -1;
		if (n->ngrouping == cap) {
			const char **g = pq_alloc_array(p->a, cap * 2 + 4, sizeof(*g));
			size_t *gl = pq_alloc_array(p->a, cap * 2 + 4, sizeof(*gl));

			if (g == NULL || gl == NULL)
				return pq_oom(p->e), -1;
			if (cap > 0) {
				memcpy(g, n->grouping, cap * sizeof(*g));
				memcpy(gl, n->grouping_len, cap * sizeof(*gl));
			}
			n->grouping = g;
			n->grouping_len = gl;
			cap = cap * 2 + 4;
		}
		n->grouping_len[n->ngrouping] = p->cur.len;
		n->grouping[n->ngrouping] = pq_strndup(p->a, p->q + p->cur.pos, p->cur.len);
		if (n->grouping[n->ngrouping++] == NULL)
			return pq_oom(p->e), -1;
		next(p);
		if (p->cur.type == T_COMMA)
			next(p);
		else if (p->cur.type != T_RPAREN)
			return unexpected(p, " in grouping opts, expected \",\" or \")\""), -1;
	}
	next(p);
	return 0;
}

/* by (...) or without (...), if there; 1 when it was, 0 when not, -1 on error. */
static int parse_modifier(struct parser *p, struct pq_node *n)
{
	if (!is_word(p, "by") && !is_word(p, "without"))
		return 0;
	n->without = is_word(p, "without");
	next(p);
	return parse_grouping(p, n) < 0 ? -1 : 1;
}

/* (a, b, ...) of a call or an aggregation; the current token is '('. */
static int parse_args(struct parser *p, struct pq_node **args, size_t max, size_t *nargs)
{
	*nargs = 0;
	next(p);
	while (p->cur.type != T_RPAREN) {
		struct pq_node *a = parse_expr(p, P_NONE);

		if (a == NULL)
			return -1;
		if (*nargs < max)
			args[*nargs] = a;
		(*nargs)++;
		if (p->cur.type == T_COMMA)
			next(p);
		else if (p->cur.type != T_RPAREN)
			return unexpected(p, " in call, expected \",\" or \")\""), -1;
	}
	next(p);
	return 0;
}

static int check_aggregation(struct parser *p, struct pq_node *n, struct pq_node **args,
			     size_t nargs)
{
	size_t want = n->agg == A_TOPK ? 2 : 1;

	if (nargs != want) {
		pq_parse_error(p->e, p->q, n->pos,
			       "wrong number of arguments for aggregate expression provided, "
			       "expected %zu, got %zu",
			       want, nargs);
		return -1;
	}
	n->args[0] = args[want - 1];
	n->param = want == 2 ? args[0] : NULL;
	if (n->args[0]->type != PQ_VECTOR) {
		pq_parse_error(p->e, p->q, n->args[0]->pos,
			       "expected type instant vector in aggregation expression, got %s",
			       pq_type_name(n->args[0]->type));
		return -1;
	}
	if (n->param != NULL && n->param->type != PQ_SCALAR) {
		pq_parse_error(p->e, p->q, n->param->pos,
			       "expected type scalar in aggregation parameter, got %s",
			       pq_type_name(n->param->type));
		return -1;
	}
	return 0;
}

static struct pq_node *parse_aggregation(struct parser *p, int which)
{
	static const enum pq_aggop ops[] = {A_SUM, A_AVG, A_MIN, A_MAX, A_COUNT, A_TOPK};
	struct pq_node *n = new_node(p, N_AGG, PQ_VECTOR, p->cur.pos), *args[2];
	size_t nargs;
	int pre;

	if (n == NULL)
		return NULL;
	if ((size_t)which >= sizeof(ops) / sizeof(ops[0])) {
		pq_parse_error(p->e, p->q, p->cur.pos, "unsupported aggregation \"%.*s\"",
			       (int)p->cur.len, p->q + p->cur.pos);
		return NULL;
	}
	n->agg = ops[which];
	next(p);
	pre = parse_modifier(p, n);
	if (pre < 0)
		return NULL;
	if (p->cur.type != T_LPAREN)
		return unexpected(p, " in aggregation, expected \"(\"");
	if (parse_args(p, args, 2, &nargs) < 0)
		return NULL;
	if (pre == 0 && parse_modifier(p, n) < 0)
		return NULL;
	if (check_aggregation(p, n, args, nargs) < 0)
		return NULL;
	return n;
}

static struct pq_node *parse_call(struct parser *p)
{
	struct pq_node *n = new_node(p, N_CALL, PQ_VECTOR, p->cur.pos), *args[1];
	size_t i, nargs, nlen = p->cur.len;
	const char *name = p->q + p->cur.pos;

	if (n == NULL)
		return NULL;
	for (i = 0; i < sizeof(functions) / sizeof(functions[0]); i++)
		if (strlen(functions[i].name) == nlen && memcmp(functions[i].name, name, nlen) == 0)
			break;
	if (i == sizeof(functions) / sizeof(functions[0])) {
		bool known = false;

		for (size_t k = 0; other_functions[k] != NULL; k++)
			known |= strlen(other_functions[k]) == nlen &&
				 memcmp(other_functions[k], name, nlen) == 0;
		pq_parse_error(p->e, p->q, n->pos,
			       known ? "unsupported function \"%.*s\""
				     : "unknown function with name \"%.*s\"",
			       (int)nlen, name);
		return NULL;
	}
	n->fn = functions[i].fn;
	next(p);
	if (parse_args(p, args, 1, &nargs) < 0)
		return NULL;
	if (nargs != 1) {
		pq_parse_error(p->e, p->q, n->pos,
			       "expected 1 argument(s) in call to \"%.*s\", got %zu", (int)nlen, name,
			       nargs);
		return NULL;
	}
	if (args[0]->type != PQ_MATRIX) {
		pq_parse_error(p->e, p->q, args[0]->pos,
			       "expected type range vector in call to function \"%.*s\", got %s",
			       (int)nlen, name, pq_type_name(args[0]->type));
		return NULL;
	}
	while (args[0]->kind == N_PAREN)
		args[0] = args[0]->args[0];
	n->args[0] = args[0];
	return n;
}

/* Whether '(' follows the current token (an identifier then names a function). */
static bool call_follows(const struct parser *p)
{
	size_t i = p->cur.pos + p->cur.len;

	while (i < p->lx.len && strchr(" \t\r\n", p->q[i]) != NULL && p->q[i] != '\0')
		i++;
	return i < p->lx.len && p->q[i] == '(';
}

static struct pq_node *parse_number(struct parser *p)
{
	struct pq_node *n = new_node(p, N_NUMBER, PQ_SCALAR, p->cur.pos);
	const char *s = p->q + p->cur.pos;

	if (n == NULL)
		return NULL;
	if (p->cur.type == T_IDENT)
		n->num = tolower((unsigned char)s[0]) == 'i' ? INFINITY : NAN;
	else if (pq_parse_number(s, p->cur.len, &n->num) < 0)
		return error_at(p, p->cur.pos, "bad number syntax");
	next(p);
	return n;
}

static struct pq_node *parse_identifier(struct parser *p)
{
	int which = word_index(p, aggregations);

	if (is_word(p, "inf") || is_word(p, "nan"))
		return parse_number(p);
	if (which >= 0)
		return parse_aggregation(p, which);
	if (word_index(p, keywords) >= 0)
		return unexpected(p, "");
	if (call_follows(p))
		return parse_call(p);
	return parse_selector(p);
}

static struct pq_node *parse_paren(struct parser *p)
{
	struct pq_node *n = new_node(p, N_PAREN, PQ_SCALAR, p->cur.pos);

	if (n == NULL)
		return NULL;
	next(p);
	n->args[0] = parse_expr(p, P_NONE);
	if (n->args[0] == NULL)
		return NULL;
	if (p->cur.type != T_RPAREN)
		return unexpected(p, ", expected \")\"");
	next(p);
	n->type = n->args[0]->type;
	return n;
}

static struct pq_node *parse_primary(struct parser *p)
{
	struct pq_node *n;

	switch (p->cur.type) {
	case T_NUMBER:
		return parse_number(p);
	case T_STRING:
		n = new_node(p, N_STRING, PQ_STRING, p->cur.pos);
		if (n != NULL)
			next(p);
		return n;
	case T_IDENT:
		return parse_identifier(p);
	case T_LBRACE:
		return parse_selector(p);
	case T_LPAREN:
		return parse_paren(p);
	default:
		return unexpected(p, "");
	}
}

/* A duration token (optionally after '-' when signed) in ms; -1 on error. */
static int parse_duration_token(struct parser *p, bool signed_ok, int64_t *ms)
{
	bool neg = false;

	if (signed_ok && p->cur.type == T_SUB) {
		neg = true;
		next(p);
	}
	if (p->cur.type != T_DURATION) {
		unexpected(p, ", expected duration");
		return -1;
	}
	if (pq_parse_promql_duration(p->q + p->cur.pos, p->cur.len, ms) < 0) {
		pq_parse_error(p->e, p->q, p->cur.pos, "not a valid duration string: \"%.*s\"",
			       (int)p->cur.len, p->q + p->cur.pos);
		return -1;
	}
	if (neg)
		*ms = -*ms;
	next(p);
	return 0;
}

/* [range] after a selector; the current token is '['. */
static struct pq_node *parse_range(struct parser *p, struct pq_node *n)
{
	size_t pos = p->cur.pos;

	next(p);
	if (p->cur.type == T_COLON)
		return error_at(p, pos, "subqueries are not supported");
	if (parse_duration_token(p, false, &n->range_ms) < 0)
		return NULL;
	if (p->cur.type == T_COLON)
		return error_at(p, pos, "subqueries are not supported");
	if (p->cur.type != T_RBRACK)
		return unexpected(p, " in subquery or range selector, expected \"]\"");
	if (n->kind != N_VSEL)
		return error_at(p, n->pos, "ranges only allowed for vector selectors");
	if (n->offset_ms != 0)
		return unexpected(p, "");
	next(p);
	n->kind = N_MSEL;
	n->type = PQ_MATRIX;
	return n;
}

/* [range], offset d and @ t after an expression. */
static struct pq_node *parse_postfix(struct parser *p, struct pq_node *n)
{
	bool offset_set = false;

	while (n != NULL) {
		if (p->cur.type == T_LBRACK) {
			n = parse_range(p, n);
		} else if (is_word(p, "offset")) {
			if (n->kind != N_VSEL && n->kind != N_MSEL)
				return error_at(p, p->cur.pos,
						"offset modifier must be preceded by an instant vector "
						"selector or range vector selector or a subquery");
			if (offset_set)
				return error_at(p, p->cur.pos, "offset may not be set multiple times");
			next(p);
			if (parse_duration_token(p, true, &n->offset_ms) < 0)
				return NULL;
			offset_set = true;
		} else if (p->cur.type == T_AT) {
			return error_at(p, p->cur.pos, "the @ modifier is not supported");
		} else {
			break;
		}
	}
	return n;
}

/* -x and +x bind tighter than * but looser than ^, as in Prometheus (-2^2 is -4). */
static struct pq_node *parse_unary(struct parser *p)
{
	struct pq_node *n;
	enum pq_tok op = p->cur.type;
	size_t pos = p->cur.pos;

	if (op != T_ADD && op != T_SUB)
		return parse_postfix(p, parse_primary(p));
	next(p);
	n = parse_expr(p, P_POW);
	if (n == NULL)
		return NULL;
	if (n->type != PQ_SCALAR && n->type != PQ_VECTOR) {
		pq_parse_error(p->e, p->q, pos,
			       "unary expression only allowed on expressions of type scalar or "
			       "instant vector, got \"%s\"",
			       pq_type_name(n->type));
		return NULL;
	}
	if (n->kind == N_NUMBER) {
		if (op == T_SUB)
			n->num = -n->num;
		n->pos = pos;
		return n;
	}
	if (op == T_ADD)
		return n;
	{
		struct pq_node *u = new_node(p, N_UNARY, n->type, pos);

		if (u == NULL)
			return NULL;
		u->op = op;
		u->args[0] = n;
		return u;
	}
}

static enum prec binary_prec(const struct parser *p)
{
	switch (p->cur.type) {
	case T_ADD:
	case T_SUB:
		return P_ADD;
	case T_MUL:
	case T_DIV:
	case T_MOD:
		return P_MUL;
	case T_POW:
		return P_POW;
	case T_EQLC:
	case T_NEQ:
	case T_GTR:
	case T_LSS:
	case T_GTE:
	case T_LTE:
		return P_CMP;
	default:
		break;
	}
	if (is_word(p, "or"))
		return P_OR;
	if (is_word(p, "and") || is_word(p, "unless"))
		return P_AND;
	if (is_word(p, "atan2"))
		return P_MUL;
	return P_NONE;
}

static bool is_comparison(enum pq_tok op)
{
	return op >= T_EQLC && op <= T_LTE;
}

/* bool, on/ignoring, group_left/right after an operator: only bool is supported. */
static int parse_binary_modifiers(struct parser *p, struct pq_node *n, size_t op_pos)
{
	if (is_word(p, "bool")) {
		if (!is_comparison(n->op)) {
			error_at(p, op_pos, "bool modifier can only be used on comparison operators");
			return -1;
		}
		n->return_bool = true;
		next(p);
	}
	if (is_word(p, "on") || is_word(p, "ignoring") || is_word(p, "group_left") ||
	    is_word(p, "group_right")) {
		pq_parse_error(p->e, p->q, p->cur.pos,
			       "vector matching (%.*s) is not supported: vector-vector binary "
			       "operations are not supported",
			       (int)p->cur.len, p->q + p->cur.pos);
		return -1;
	}
	return 0;
}

static int check_binary(struct parser *p, struct pq_node *n, size_t op_pos)
{
	enum pq_type lt = n->args[0]->type, rt = n->args[1]->type;

	if (is_comparison(n->op) && !n->return_bool && lt == PQ_SCALAR && rt == PQ_SCALAR) {
		error_at(p, op_pos, "comparisons between scalars must use BOOL modifier");
		return -1;
	}
	if (lt != PQ_SCALAR && lt != PQ_VECTOR) {
		error_at(p, n->args[0]->pos,
			 "binary expression must contain only scalar and instant vector types");
		return -1;
	}
	if (rt != PQ_SCALAR && rt != PQ_VECTOR) {
		error_at(p, n->args[1]->pos,
			 "binary expression must contain only scalar and instant vector types");
		return -1;
	}
	if (lt == PQ_VECTOR && rt == PQ_VECTOR) {
		error_at(p, op_pos, "vector-vector binary operations are not supported");
		return -1;
	}
	n->type = lt == PQ_VECTOR || rt == PQ_VECTOR ? PQ_VECTOR : PQ_SCALAR;
	return 0;
}

/* Precedence climbing: operators of at least min, left-associative except ^. */
static struct pq_node *parse_expr(struct parser *p, enum prec min)
{
	struct pq_node *lhs = parse_unary(p);

	while (lhs != NULL && !failed(p)) {
		enum prec prec = binary_prec(p);
		size_t op_pos = p->cur.pos;
		struct pq_node *n;

		if (prec == P_NONE || prec < min)
			break;
		if (p->cur.type == T_IDENT) {
			pq_parse_error(p->e, p->q, op_pos, "%s \"%.*s\" is not supported",
				       prec == P_MUL ? "binary operator" : "set operator",
				       (int)p->cur.len, p->q + p->cur.pos);
			return NULL;
		}
		n = new_node(p, N_BINARY, PQ_SCALAR, lhs->pos);
		if (n == NULL)
			return NULL;
		n->op = p->cur.type;
		next(p);
		if (parse_binary_modifiers(p, n, op_pos) < 0)
			return NULL;
		n->args[0] = lhs;
		n->args[1] = parse_expr(p, prec == P_POW ? P_POW : (enum prec)(prec + 1));
		if (n->args[1] == NULL || check_binary(p, n, op_pos) < 0)
			return NULL;
		lhs = n;
	}
	return failed(p) ? NULL : lhs;
}

static void parser_init(struct parser *p, struct pq_arena *a, struct pq_err *e, const char *q,
			size_t len, struct pq_query *qr)
{
	memset(qr, 0, sizeof(*qr));
	*p = (struct parser){.a = a, .e = e, .q = q, .qr = qr};
	p->lx = (struct pq_lexer){.q = q, .len = len, .arena = a, .err = e};
	next(p);
}

int pq_parse(struct pq_arena *a, struct pq_err *e, const char *q, size_t len, struct pq_query *qr)
{
	struct parser p;

	parser_init(&p, a, e, q, len, qr);
	if (p.cur.type == T_EOF) {
		error_at(&p, 0, "no expression found in input");
		return -1;
	}
	qr->root = parse_expr(&p, P_NONE);
	if (qr->root != NULL && p.cur.type != T_EOF)
		unexpected(&p, "");
	if (!failed(&p) && qr->root->type == PQ_STRING)
		error_at(&p, 0, "string results are not supported");
	return failed(&p) ? -1 : 0;
}

int pq_parse_selector(struct pq_arena *a, struct pq_err *e, const char *q, size_t len,
		      struct pq_query *qr)
{
	struct parser p;

	parser_init(&p, a, e, q, len, qr);
	if (p.cur.type != T_IDENT && p.cur.type != T_LBRACE) {
		unexpected(&p, ", expected a series selector");
		return -1;
	}
	qr->root = parse_selector(&p);
	if (qr->root != NULL && p.cur.type != T_EOF)
		unexpected(&p, ", expected end of the series selector");
	return failed(&p) ? -1 : 0;
}

void pq_query_free(struct pq_query *qr)
{
	for (struct pq_matcher *m = qr->regexes; m != NULL; m = m->next_regex)
		regfree(&m->re);
	qr->regexes = NULL;
}
