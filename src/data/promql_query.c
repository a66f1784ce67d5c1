/*
 * promql_query.c - /api/v1/query and /api/v1/query_range (promql.h): checks the
 * parameters as Prometheus does, parses, loads every selector's series for the
 * whole time span at once, evaluates step by step (a step's temporaries are freed
 * before the next) and writes the result. Owns the call's arenas and regexes.
 */
#include "promql_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "temporis/base/jsonutil.h"

#define SERIES_INITIAL 16
#define POINTS_INITIAL 16

struct call {
	struct pq_arena perm, step;
	struct pq_err err;
	struct pq_query q;
	struct pq_loader ld;
	struct pq_eval ev;
};

/* One series of a range query's result, gathered across steps. */
struct out_series {
	const struct pq_lset *ls;
	struct pq_point *p;
	size_t n, cap;
};

static void call_init(struct call *c, const struct promql_store *store,
		      const struct promql_limits *limits)
{
	memset(c, 0, sizeof(*c));
	c->err.status = PROMQL_OK;
	c->ld = (struct pq_loader){.store = store, .limits = limits, .arena = &c->perm,
				   .err = &c->err};
	c->ev = (struct pq_eval){.step = &c->step, .err = &c->err};
}

/* The body for how the call ended (result NULL: the error), and the call freed. */
static struct json_object *call_finish(struct call *c, struct json_object *data, int *http_status)
{
	struct json_object *body;

	if (c->err.status == PROMQL_OK && data == NULL)
		pq_oom(&c->err);
	if (c->err.status == PROMQL_OK) {
		body = pq_json_success(data, http_status);
	} else {
		json_object_put(data);
		body = pq_json_error(&c->err, http_status);
	}
	pq_query_free(&c->q);
	pq_arena_free(&c->step);
	pq_arena_free(&c->perm);
	return body;
}

static int64_t sat_sub(int64_t a, int64_t b)
{
	if (b > 0 && a < INT64_MIN + b)
		return INT64_MIN;
	if (b < 0 && a > INT64_MAX + b)
		return INT64_MAX;
	return a - b;
}

/* Every selector's series, with the points evaluation over [start, end] reads. */
static int load_selectors(struct call *c, struct pq_node *n, int64_t start, int64_t end)
{
	for (size_t i = 0; i < 2; i++)
		if (n->args[i] != NULL && load_selectors(c, n->args[i], start, end) < 0)
			return -1;
	if (n->param != NULL && load_selectors(c, n->param, start, end) < 0)
		return -1;
	if (n->kind == N_VSEL || n->kind == N_MSEL) {
		int64_t back = n->kind == N_VSEL ? PQ_LOOKBACK_MS : n->range_ms;
		int64_t lo = sat_sub(sat_sub(start, n->offset_ms), back), hi = sat_sub(end, n->offset_ms);
		const struct pq_node *sel = n;

		return pq_select(&c->ld, &sel, 1, pq_ms_to_first_s(lo), pq_ms_to_last_s(hi), true,
				 &n->sel, &n->nsel);
	}
	if (n->kind == N_CALL) {
		n->produced = pq_alloc_array(&c->perm, n->args[0]->nsel + 1, sizeof(bool));
		if (n->produced == NULL) {
			pq_oom(&c->err);
			return -1;
		}
	}
	return 0;
}

static struct json_object *result_data(const char *type, struct json_object *result)
{
	struct json_object *d = result == NULL ? NULL : json_object_new_object();

	if (d == NULL || ju_add_str(d, "resultType", type) < 0) {
		json_object_put(result);
		json_object_put(d);
		return NULL;
	}
	return ju_add(d, "result", result) < 0 ? (json_object_put(d), NULL) : d;
}

/* {"metric":{...}, key: v}, taking v. */
static struct json_object *series_object(const struct pq_lset *ls, const char *key,
					 struct json_object *v)
{
	struct json_object *o = v == NULL ? NULL : json_object_new_object();

	if (o == NULL || ju_add(o, "metric", pq_json_metric(ls)) < 0) {
		json_object_put(v);
		json_object_put(o);
		return NULL;
	}
	return ju_add(o, key, v) < 0 ? (json_object_put(o), NULL) : o;
}

static struct json_object *points_array(const struct pq_point *p, size_t n)
{
	struct json_object *a = json_object_new_array_ext((int)n);

	for (size_t i = 0; a != NULL && i < n; i++) {
		if (pq_json_append(a, pq_json_point(p[i].t, p[i].v)) < 0) {
			json_object_put(a);
			return NULL;
		}
	}
	return a;
}

static struct json_object *instant_result(const struct pq_value *v, int64_t t)
{
	struct json_object *r;

	if (v->type == PQ_SCALAR)
		return result_data("scalar", pq_json_point(t, v->scalar));
	r = json_object_new_array_ext((int)v->n);
	for (size_t i = 0; r != NULL && i < v->n; i++) {
		struct json_object *s;

		if (v->type == PQ_VECTOR)
			s = series_object(v->vec[i].ls, "value", pq_json_point(t, v->vec[i].v));
		else
			s = series_object(v->mat[i].ls, "values", points_array(v->mat[i].p, v->mat[i].n));
		if (pq_json_append(r, s) < 0) {
			json_object_put(r);
			return NULL;
		}
	}
	return result_data(v->type == PQ_VECTOR ? "vector" : "matrix", r);
}

struct json_object *promql_query_instant(const struct promql_store *store,
					 const struct promql_limits *limits, const char *query,
					 size_t len, int64_t time_ms, int *http_status)
{
	struct call c;
	struct pq_value v;
	struct json_object *data = NULL;

	call_init(&c, store, limits);
	if (pq_parse(&c.perm, &c.err, query, len, &c.q) < 0) {
		pq_err_param(&c.err, "query");
		return call_finish(&c, NULL, http_status);
	}
	if (load_selectors(&c, c.q.root, time_ms, time_ms) == 0 &&
	    pq_eval_at(&c.ev, c.q.root, time_ms, &v) == 0)
		data = instant_result(&v, time_ms);
	return call_finish(&c, data, http_status);
}

/* Range query parameters, checked in Prometheus's order and words. 0 or -1. */
static int check_range(struct pq_err *e, int64_t start, int64_t end, int64_t step)
{
	if (end < start) {
		pq_fail(e, PROMQL_BAD_DATA,
			"invalid parameter \"end\": end timestamp must not be before start time");
		return -1;
	}
	if (step <= 0) {
		pq_fail(e, PROMQL_BAD_DATA,
			"invalid parameter \"step\": zero or negative query resolution step widths "
			"are not accepted. Try a positive integer");
		return -1;
	}
	if (((uint64_t)end - (uint64_t)start) / (uint64_t)step > PQ_MAX_STEPS) {
		pq_fail(e, PROMQL_BAD_DATA,
			"exceeded maximum resolution of 11,000 points per timeseries. Try decreasing "
			"the query resolution (?step=XX)");
		return -1;
	}
	return 0;
}

struct gather {
	struct pq_arena *a;
	struct pq_lmap map;
	struct out_series *s;
	size_t n, cap;
};

static struct out_series *gather_series(struct gather *g, const struct pq_lset *ls)
{
	struct pq_lset *copy;
	size_t idx;

	if (pq_lmap_get(&g->map, ls, &idx) == 1)
		return &g->s[idx];
	if (g->n == g->cap) {
		size_t cap = g->cap == 0 ? SERIES_INITIAL : g->cap * 2;
		struct out_series *grown = pq_alloc_array(g->a, cap, sizeof(*grown));

		if (grown == NULL)
			return NULL;
		if (g->n > 0)
			memcpy(grown, g->s, g->n * sizeof(*grown));
		g->s = grown;
		g->cap = cap;
	}
	/* The step's label set dies with the step; its strings live in the call's arena. */
	copy = pq_alloc(g->a, sizeof(*copy) + ls->n * sizeof(copy->l[0]));
	if (copy == NULL)
		return NULL;
	memcpy(copy, ls, sizeof(*copy) + ls->n * sizeof(copy->l[0]));
	if (pq_lmap_put(g->a, &g->map, copy, g->n, &idx) < 0)
		return NULL;
	g->s[g->n] = (struct out_series){.ls = copy};
	return &g->s[g->n++];
}

static int gather_point(struct gather *g, const struct pq_lset *ls, int64_t t, double v)
{
	struct out_series *s = gather_series(g, ls);

	if (s == NULL)
		return -1;
	if (s->n == s->cap) {
		size_t cap = s->cap == 0 ? POINTS_INITIAL : s->cap * 2;
		struct pq_point *grown = pq_alloc_array(g->a, cap, sizeof(*grown));

		if (grown == NULL)
			return -1;
		if (s->n > 0)
			memcpy(grown, s->p, s->n * sizeof(*grown));
		s->p = grown;
		s->cap = cap;
	}
	s->p[s->n++] = (struct pq_point){t, v};
	return 0;
}

static int out_series_cmp(const void *a, const void *b)
{
	const struct out_series *x = a, *y = b;

	return pq_lset_cmp(x->ls, y->ls);
}

static struct json_object *matrix_result(struct gather *g)
{
	struct json_object *r = json_object_new_array_ext((int)g->n);

	if (g->n > 1)
		qsort(g->s, g->n, sizeof(*g->s), out_series_cmp);
	for (size_t i = 0; r != NULL && i < g->n; i++) {
		if (pq_json_append(r, series_object(g->s[i].ls, "values",
						    points_array(g->s[i].p, g->s[i].n))) < 0) {
			json_object_put(r);
			return NULL;
		}
	}
	return result_data("matrix", r);
}

static int eval_steps(struct call *c, struct gather *g, int64_t start, int64_t end, int64_t step)
{
	for (int64_t t = start;; t += step) {
		struct pq_value v;

		pq_arena_reset(&c->step);
		if (pq_eval_at(&c->ev, c->q.root, t, &v) < 0)
			return -1;
		if (v.type == PQ_SCALAR && gather_point(g, &pq_lset_empty, t, v.scalar) < 0)
			return pq_oom(&c->err), -1;
		for (size_t i = 0; v.type == PQ_VECTOR && i < v.n; i++)
			if (gather_point(g, v.vec[i].ls, t, v.vec[i].v) < 0)
				return pq_oom(&c->err), -1;
		if (t > end - step)
			return 0;
	}
}

struct json_object *promql_query_range(const struct promql_store *store,
				       const struct promql_limits *limits, const char *query,
				       size_t len, int64_t start_ms, int64_t end_ms, int64_t step_ms,
				       int *http_status)
{
	struct call c;
	struct gather g = {0};
	struct json_object *data = NULL;

	call_init(&c, store, limits);
	g.a = &c.perm;
	if (check_range(&c.err, start_ms, end_ms, step_ms) < 0)
		return call_finish(&c, NULL, http_status);
	if (pq_parse(&c.perm, &c.err, query, len, &c.q) < 0) {
		pq_err_param(&c.err, "query");
		return call_finish(&c, NULL, http_status);
	}
	if (c.q.root->type != PQ_SCALAR && c.q.root->type != PQ_VECTOR) {
		pq_fail(&c.err, PROMQL_BAD_DATA,
			"invalid parameter \"query\": invalid expression type \"%s\" for range "
			"query, must be Scalar or instant Vector",
			pq_type_name(c.q.root->type));
		return call_finish(&c, NULL, http_status);
	}
	if (load_selectors(&c, c.q.root, start_ms, end_ms) == 0 &&
	    eval_steps(&c, &g, start_ms, end_ms, step_ms) == 0 &&
	    pq_eval_check_functions(&c.ev, &c.step, c.q.root) == 0)
		data = matrix_result(&g);
	return call_finish(&c, data, http_status);
}
