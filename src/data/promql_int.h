/*
 * promql_int.h - what the PromQL engine's files share (promql.h is the interface):
 * the per-call arena, the error every stage reports into, tokens, the AST, label
 * sets and the values evaluation passes around.
 */
#ifndef TEMPORIS_DATA_PROMQL_INT_H
#define TEMPORIS_DATA_PROMQL_INT_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "temporis/data/promql.h"
#include "temporis/data/series_name.h"

#define PQ_ERR_MAX 512
#define PQ_LOOKBACK_MS (5 * 60 * 1000)  /* Prometheus's default lookback delta */
#define PQ_MAX_STEPS 11000              /* Prometheus's query_range resolution limit */

/* ---- memory: an arena per call (or per step); nothing in it is freed alone ---- */
struct pq_block;
struct pq_arena {
	struct pq_block *head;
};
void *pq_alloc(struct pq_arena *a, size_t size);        /* zeroed; NULL when out of memory */
void *pq_alloc_array(struct pq_arena *a, size_t n, size_t size);
char *pq_strndup(struct pq_arena *a, const char *s, size_t n);
void pq_arena_reset(struct pq_arena *a);   /* frees all but the first block, keeps it */
void pq_arena_free(struct pq_arena *a);

/* ---- errors: the first one reported wins ---- */
struct pq_err {
	enum promql_status status;             /* PROMQL_OK until an error */
	char msg[PQ_ERR_MAX];
};
void pq_fail(struct pq_err *e, enum promql_status status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void pq_oom(struct pq_err *e);
/* Prefix the message with invalid parameter "param": as Prometheus's API does. */
void pq_err_param(struct pq_err *e, const char *param);

/* ---- tokens ---- */
enum pq_tok {
	T_EOF, T_ERROR, T_IDENT, T_NUMBER, T_STRING, T_DURATION,
	T_LPAREN, T_RPAREN, T_LBRACE, T_RBRACE, T_LBRACK, T_RBRACK, T_COMMA, T_COLON, T_AT,
	T_ADD, T_SUB, T_MUL, T_DIV, T_MOD, T_POW,
	T_EQLC, T_NEQ, T_GTR, T_LSS, T_GTE, T_LTE,       /* comparisons */
	T_EQL, T_EQL_REGEX, T_NEQ_REGEX,
};

struct pq_token {
	enum pq_tok type;
	size_t pos, len;                         /* bytes of the query */
	char *str;                               /* T_STRING: unescaped, NUL-terminated */
	size_t str_len;
};

struct pq_lexer {
	const char *q;
	size_t len, pos;
	int bracket_depth;                       /* inside [...]: durations and ':' */
	struct pq_arena *arena;
	struct pq_err *err;
};
/* The next token; T_ERROR (err set) on a lexical error. */
struct pq_token pq_lex(struct pq_lexer *lx);
/* Go's ParseInt(s, 0, 64) then ParseFloat, as PromQL reads a number. 0 or -1. */
int pq_parse_number(const char *s, size_t n, double *v);
/* A PromQL duration ("1h30m", units y w d h m s ms in that order) in ms. 0 or -1. */
int pq_parse_promql_duration(const char *s, size_t n, int64_t *ms);
/* "1:5:" for byte pos of q, as Prometheus prefixes a parse error. */
void pq_parse_error(struct pq_err *e, const char *q, size_t pos, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* ---- labels ---- */
/* A label set sorted by name; names and values are NUL-terminated and outlive it. */
struct pq_lset {
	size_t n;
	struct series_label l[];
};
extern const struct pq_lset pq_lset_empty;
int pq_lset_cmp(const struct pq_lset *a, const struct pq_lset *b);  /* labels.Compare */
bool pq_lset_equal(const struct pq_lset *a, const struct pq_lset *b);
uint64_t pq_lset_hash(const struct pq_lset *ls);
/* The label's value, "" when absent (as a matcher sees it). */
const char *pq_lset_get(const struct pq_lset *ls, const char *name, size_t len);
/* Without __name__ (the same set when it has none); NULL when out of memory. */
const struct pq_lset *pq_lset_drop_name(struct pq_arena *a, const struct pq_lset *ls);

/* A set of label sets, each with the index the caller gave it. */
struct pq_lmap_ent {
	uint64_t hash;
	const struct pq_lset *ls;
	size_t idx;
};
struct pq_lmap {
	struct pq_lmap_ent *e;
	size_t cap, n;
};
/* 1 and *idx = its index when ls is there, else 0. */
int pq_lmap_get(const struct pq_lmap *m, const struct pq_lset *ls, size_t *idx);
/* 1 and *idx = its index when ls is there; else adds it as new_idx, 0; -1 out of memory. */
int pq_lmap_put(struct pq_arena *a, struct pq_lmap *m, const struct pq_lset *ls, size_t new_idx,
		size_t *idx);

/* ---- the AST ---- */
enum pq_type { PQ_SCALAR, PQ_VECTOR, PQ_MATRIX, PQ_STRING };
enum pq_kind { N_NUMBER, N_STRING, N_VSEL, N_MSEL, N_CALL, N_AGG, N_BINARY, N_UNARY, N_PAREN };
enum pq_match { M_EQ, M_NEQ, M_RE, M_NRE };
enum pq_func {
	F_RATE, F_IRATE, F_INCREASE, F_DELTA,
	F_AVG_OT, F_MIN_OT, F_MAX_OT, F_SUM_OT, F_COUNT_OT,
};
enum pq_aggop { A_SUM, A_AVG, A_MIN, A_MAX, A_COUNT, A_TOPK };

struct pq_matcher {
	enum pq_match type;
	const char *name;                        /* NUL-terminated */
	size_t name_len;
	const char *value;                       /* NUL-terminated */
	regex_t re;                              /* M_RE, M_NRE: freed with the query */
	struct pq_matcher *next_regex;           /* the query's list of compiled regexes */
};

struct pq_point {
	int64_t t;                               /* ms */
	double v;
};

/* One selected series: its labels, its stored name (to read it), its points. */
struct pq_series {
	const struct pq_lset *ls;
	const char *name;
	size_t name_len;
	struct pq_point *p;
	size_t n, cap;
};

struct pq_node {
	enum pq_kind kind;
	enum pq_type type;
	size_t pos;                              /* where it starts in the query */
	double num;                              /* N_NUMBER */
	/* N_VSEL, N_MSEL: the matchers, the range and offset, the series loaded */
	struct pq_matcher **m;
	size_t nm;
	int64_t range_ms, offset_ms;
	struct pq_series *sel;
	size_t nsel;
	/* N_CALL: fn(args[0]); which input series gave output (range queries) */
	enum pq_func fn;
	bool *produced;
	/* N_AGG: op by/without (grouping) (param, args[0]) */
	enum pq_aggop agg;
	bool without;
	const char **grouping;
	size_t *grouping_len;
	size_t ngrouping;
	/* N_BINARY: args[0] op args[1]; N_UNARY: op args[0] */
	enum pq_tok op;
	bool return_bool;
	struct pq_node *args[2];
	struct pq_node *param;
};

/* A parsed query; its regexes are freed by pq_query_free, everything else by the arena. */
struct pq_query {
	struct pq_node *root;
	struct pq_matcher *regexes;
};
/* Parse q[0..len) into qr (memory from a). 0, or -1 with a bad_data error in e. */
int pq_parse(struct pq_arena *a, struct pq_err *e, const char *q, size_t len, struct pq_query *qr);
/* A series selector (match[]) alone: root is its N_VSEL. */
int pq_parse_selector(struct pq_arena *a, struct pq_err *e, const char *q, size_t len,
		      struct pq_query *qr);
void pq_query_free(struct pq_query *qr);
bool pq_matcher_matches(const struct pq_matcher *m, const char *value);
const char *pq_type_name(enum pq_type t);

/* ---- selecting and loading series (promql_select.c) ---- */
struct pq_loader {
	const struct promql_store *store;
	const struct promql_limits *limits;
	struct pq_arena *arena;
	struct pq_err *err;
	size_t nseries, npoints;                 /* selected and loaded so far, per call */
};
/*
 * The series matching any of the selectors sels[0..nsels) (N_VSEL or N_MSEL nodes;
 * none: every series)
 * with a point in [first_s, last_s], refusing two that share a label set; with
 * load, their points in that window too. 0, or -1 with the error set.
 */
int pq_select(struct pq_loader *ld, const struct pq_node *const *sels, size_t nsels,
	      int64_t first_s, int64_t last_s, bool load, struct pq_series **out, size_t *nout);
/* The store's seconds that cover [lo_ms, hi_ms]. */
int64_t pq_ms_to_first_s(int64_t ms);
int64_t pq_ms_to_last_s(int64_t ms);

/* ---- values (promql_eval.c) ---- */
struct pq_sample {
	const struct pq_lset *ls;
	double v;
};
struct pq_range {
	const struct pq_lset *ls;
	const struct pq_point *p;
	size_t n;
	size_t series;                           /* index in the selector's sel */
};
struct pq_value {
	enum pq_type type;
	double scalar;
	struct pq_sample *vec;                   /* PQ_VECTOR */
	struct pq_range *mat;                    /* PQ_MATRIX */
	size_t n;
};

struct pq_eval {
	struct pq_arena *step;                   /* reset after each evaluation step */
	struct pq_err *err;
};
/* The value of n at t (ms). 0, or -1 with the error set. */
int pq_eval_at(struct pq_eval *ev, const struct pq_node *n, int64_t t, struct pq_value *out);
/* After a range query: the functions' outputs, over all steps, must not share a label
 * set (Prometheus checks each function's whole matrix). 0 or -1. */
int pq_eval_check_functions(struct pq_eval *ev, struct pq_arena *a, const struct pq_node *n);

/* ---- output (promql_json.c) ---- */
/* Go's strconv.FormatFloat(v, 'f', -1, 64), and NaN, +Inf, -Inf. dst >= PQ_FLOAT_MAX. */
#define PQ_FLOAT_MAX 400
void pq_format_float(char *dst, size_t cap, double v);
struct json_object *pq_json_time(int64_t ms);
/* Append v to arr, taking v even on failure (NULL = a failed constructor). 0 or -1. */
int pq_json_append(struct json_object *arr, struct json_object *v);
struct json_object *pq_json_point(int64_t ms, double v);
struct json_object *pq_json_metric(const struct pq_lset *ls);
/* {"status":"success","data":data} (takes data) or the error body; sets *http_status. */
struct json_object *pq_json_success(struct json_object *data, int *http_status);
struct json_object *pq_json_error(const struct pq_err *e, int *http_status);

#endif
