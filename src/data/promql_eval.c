/*
 * promql_eval.c - a parsed query's value at one evaluation time (promql_int.h),
 * with Prometheus 2.42's semantics: selectors with the 5m lookback, the range
 * functions (extrapolatedRate, instantValue, the *_over_time family), aggregations
 * (topk with Go's heap and insertion sort), scalar and vector-scalar operators.
 * Values are built in the per-step arena; they point at the loaded series.
 */
#include "promql_int.h"

#include <math.h>
#include <string.h>

#define MS_PER_S 1000.0
#define NS_PER_MS 1000000
#define NS_PER_S 1e9
#define EXTRAPOLATION_SLACK 1.1   /* extrapolatedRate's threshold, in average intervals */

static int oom(struct pq_eval *ev)
{
	pq_oom(ev->err);
	return -1;
}

/* Index of the first point with t >= lo. */
static size_t first_at_or_after(const struct pq_series *s, int64_t lo)
{
	size_t a = 0, b = s->n;

	while (a < b) {
		size_t m = a + (b - a) / 2;

		if (s->p[m].t < lo)
			a = m + 1;
		else
			b = m;
	}
	return a;
}

/* Index past the last point with t <= hi. */
static size_t past_at_or_before(const struct pq_series *s, int64_t hi)
{
	size_t a = 0, b = s->n;

	while (a < b) {
		size_t m = a + (b - a) / 2;

		if (s->p[m].t <= hi)
			a = m + 1;
		else
			b = m;
	}
	return a;
}

static int new_vector(struct pq_eval *ev, size_t cap, struct pq_value *out)
{
	*out = (struct pq_value){.type = PQ_VECTOR};
	out->vec = pq_alloc_array(ev->step, cap > 0 ? cap : 1, sizeof(*out->vec));
	return out->vec == NULL ? oom(ev) : 0;
}

/* Prometheus refuses any step whose vector holds one label set twice. */
static int refuse_duplicates(struct pq_eval *ev, const struct pq_value *v)
{
	struct pq_lmap seen = {0};
	size_t idx;

	for (size_t i = 0; i < v->n; i++) {
		int rc = pq_lmap_put(ev->step, &seen, v->vec[i].ls, i, &idx);

		if (rc < 0)
			return oom(ev);
		if (rc == 1) {
			pq_fail(ev->err, PROMQL_EXECUTION,
				"vector cannot contain metrics with the same labelset");
			return -1;
		}
	}
	return 0;
}

/* The latest sample of each series within [t - offset - 5m, t - offset]. */
static int eval_vector_selector(struct pq_eval *ev, const struct pq_node *n, int64_t t,
				struct pq_value *out)
{
	int64_t hi = t - n->offset_ms, lo = hi - PQ_LOOKBACK_MS;

	if (new_vector(ev, n->nsel, out) < 0)
		return -1;
	for (size_t i = 0; i < n->nsel; i++) {
		const struct pq_series *s = &n->sel[i];
		size_t end = past_at_or_before(s, hi);

		if (end > 0 && s->p[end - 1].t >= lo)
			out->vec[out->n++] = (struct pq_sample){s->ls, s->p[end - 1].v};
	}
	return 0;
}

/* Each series' samples within [t - offset - range, t - offset]. */
static int eval_matrix_selector(struct pq_eval *ev, const struct pq_node *n, int64_t t,
				struct pq_value *out)
{
	int64_t hi = t - n->offset_ms, lo = hi - n->range_ms;

	*out = (struct pq_value){.type = PQ_MATRIX};
	out->mat = pq_alloc_array(ev->step, n->nsel > 0 ? n->nsel : 1, sizeof(*out->mat));
	if (out->mat == NULL)
		return oom(ev);
	for (size_t i = 0; i < n->nsel; i++) {
		const struct pq_series *s = &n->sel[i];
		size_t a = first_at_or_after(s, lo), b = past_at_or_before(s, hi);

		if (b > a)
			out->mat[out->n++] = (struct pq_range){s->ls, s->p + a, b - a, i};
	}
	return 0;
}

/* Prometheus 2.42's extrapolatedRate, operation for operation (same float results). */
static bool extrapolated_rate(const struct pq_node *sel, const struct pq_range *r, int64_t t,
			      bool counter, bool rate, double *out)
{
	const struct pq_point *p = r->p, *last = &r->p[r->n - 1];
	int64_t range_start = t - (sel->range_ms + sel->offset_ms), range_end = t - sel->offset_ms;
	double result, prev, to_start, to_end, sampled, average, threshold, interval, factor;

	if (r->n < 2)
		return false;
	result = last->v - p[0].v;
	prev = p[0].v;
	for (size_t i = 1; i < r->n && counter; i++) {
		if (p[i].v < prev)
			result += prev;
		prev = p[i].v;
	}
	to_start = (double)(p[0].t - range_start) / MS_PER_S;
	to_end = (double)(range_end - last->t) / MS_PER_S;
	sampled = (double)(last->t - p[0].t) / MS_PER_S;
	average = sampled / (double)(r->n - 1);
	if (counter && result > 0 && p[0].v >= 0) {
		/* A counter cannot go below zero: extrapolate no further back than that. */
		double to_zero = sampled * (p[0].v / result);

		if (to_zero < to_start)
			to_start = to_zero;
	}
	threshold = average * EXTRAPOLATION_SLACK;
	interval = sampled;
	interval += to_start < threshold ? to_start : average / 2;
	interval += to_end < threshold ? to_end : average / 2;
	factor = interval / sampled;
	if (rate)  /* Go's Duration.Seconds(): whole seconds plus the nanoseconds */
		factor /= (double)(sel->range_ms / 1000) + (double)(sel->range_ms % 1000 * NS_PER_MS) / NS_PER_S;
	*out = result * factor;
	return true;
}

/* Prometheus's instantValue (irate). */
static bool instant_rate(const struct pq_range *r, double *out)
{
	const struct pq_point *last, *prev;
	int64_t interval;

	if (r->n < 2)
		return false;
	last = &r->p[r->n - 1];
	prev = &r->p[r->n - 2];
	*out = last->v < prev->v ? last->v : last->v - prev->v;
	interval = last->t - prev->t;
	if (interval == 0)
		return false;
	*out /= (double)interval / MS_PER_S;
	return true;
}

/* Go's kahanSumInc, with Neumaier's improvement. */
static double kahan_inc(double inc, double sum, double *c)
{
	double t = sum + inc;

	if (fabs(sum) >= fabs(inc))
		*c += (sum - t) + inc;
	else
		*c += (inc - t) + sum;
	return t;
}

static double sum_over_time(const struct pq_range *r)
{
	double sum = 0, c = 0;

	for (size_t i = 0; i < r->n; i++)
		sum = kahan_inc(r->p[i].v, sum, &c);
	return isinf(sum) ? sum : sum + c;
}

static double avg_over_time(const struct pq_range *r)
{
	double mean = 0, count = 0, c = 0;

	for (size_t i = 0; i < r->n; i++) {
		double v = r->p[i].v;

		count++;
		if (isinf(mean)) {
			if (isinf(v) && (mean > 0) == (v > 0))
				continue;  /* Inf of the same sign: the mean is right already */
			if (!isinf(v) && !isnan(v))
				continue;  /* subtracting an infinite mean would give NaN */
		}
		mean = kahan_inc(v / count - mean / count, mean, &c);
	}
	return isinf(mean) ? mean : mean + c;
}

static double min_max_over_time(const struct pq_range *r, bool max)
{
	double m = r->p[0].v;

	for (size_t i = 0; i < r->n; i++) {
		double v = r->p[i].v;

		if ((max ? v > m : v < m) || isnan(m))
			m = v;
	}
	return m;
}

static bool apply_function(const struct pq_node *n, const struct pq_range *r, int64_t t,
			   double *v)
{
	const struct pq_node *sel = n->args[0];

	switch (n->fn) {
	case F_RATE:
		return extrapolated_rate(sel, r, t, true, true, v);
	case F_INCREASE:
		return extrapolated_rate(sel, r, t, true, false, v);
	case F_DELTA:
		return extrapolated_rate(sel, r, t, false, false, v);
	case F_IRATE:
		return instant_rate(r, v);
	case F_AVG_OT:
		*v = avg_over_time(r);
		return true;
	case F_MIN_OT:
		*v = min_max_over_time(r, false);
		return true;
	case F_MAX_OT:
		*v = min_max_over_time(r, true);
		return true;
	case F_SUM_OT:
		*v = sum_over_time(r);
		return true;
	case F_COUNT_OT:
		*v = (double)r->n;
		return true;
	}
	return false;
}

static int eval_call(struct pq_eval *ev, const struct pq_node *n, int64_t t, struct pq_value *out)
{
	struct pq_value m;

	if (eval_matrix_selector(ev, n->args[0], t, &m) < 0 || new_vector(ev, m.n, out) < 0)
		return -1;
	for (size_t i = 0; i < m.n; i++) {
		double v;

		if (!apply_function(n, &m.mat[i], t, &v))
			continue;
		out->vec[out->n].ls = pq_lset_drop_name(ev->step, m.mat[i].ls);
		if (out->vec[out->n].ls == NULL)
			return oom(ev);
		out->vec[out->n++].v = v;
		if (n->produced != NULL)
			n->produced[m.mat[i].series] = true;
	}
	return refuse_duplicates(ev, out);
}

/* ---- aggregations ---- */

struct group {
	const struct pq_lset *ls;
	double value, mean, count;
	struct pq_sample *heap;       /* topk: the k largest, smallest first */
	size_t nheap;
};

/* The labels a sample is grouped by: by (...) keeps those, without (...) drops those
 * and __name__. */
static const struct pq_lset *group_labels(struct pq_eval *ev, const struct pq_node *n,
					  const struct pq_lset *ls)
{
	struct pq_lset *g = pq_alloc(ev->step, sizeof(*g) + ls->n * sizeof(g->l[0]));

	if (g == NULL)
		return NULL;
	for (size_t i = 0; i < ls->n; i++) {
		const struct series_label *l = &ls->l[i];
		bool listed = false;

		for (size_t k = 0; k < n->ngrouping && !listed; k++)
			listed = n->grouping_len[k] == l->name_len &&
				 memcmp(n->grouping[k], l->name, l->name_len) == 0;
		if (n->without && (listed || strcmp(l->name, "__name__") == 0))
			continue;
		if (!n->without && !listed)
			continue;
		g->l[g->n++] = *l;
	}
	return g;
}

/* vectorByValueHeap.Less: NaN sorts first. */
static bool heap_less(const struct pq_sample *h, size_t i, size_t j)
{
	return isnan(h[i].v) || h[i].v < h[j].v;
}

static void heap_swap(struct pq_sample *h, size_t i, size_t j)
{
	struct pq_sample x = h[i];

	h[i] = h[j];
	h[j] = x;
}

/* Go's container/heap up and down, so ties end up where Prometheus puts them. */
static void heap_up(struct pq_sample *h, long j)
{
	for (;;) {
		long i = (j - 1) / 2;

		if (i == j || !heap_less(h, (size_t)j, (size_t)i))
			break;
		heap_swap(h, (size_t)i, (size_t)j);
		j = i;
	}
}

static bool heap_down(struct pq_sample *h, long i0, long n)
{
	long i = i0;

	for (;;) {
		long j1 = 2 * i + 1, j = j1;

		if (j1 >= n || j1 < 0)
			break;
		if (j1 + 1 < n && heap_less(h, (size_t)(j1 + 1), (size_t)j1))
			j = j1 + 1;
		if (!heap_less(h, (size_t)j, (size_t)i))
			break;
		heap_swap(h, (size_t)i, (size_t)j);
		i = j;
	}
	return i > i0;
}

static void topk_add(struct group *g, int64_t k, const struct pq_sample *s)
{
	if ((int64_t)g->nheap < k) {
		g->heap[g->nheap++] = *s;
		heap_up(g->heap, (long)g->nheap - 1);
	} else if (g->heap[0].v < s->v || (isnan(g->heap[0].v) && !isnan(s->v))) {
		g->heap[0] = *s;
		if (k > 1 && !heap_down(g->heap, 0, (long)g->nheap))
			heap_up(g->heap, 0);
	}
}

/* sort.Sort(sort.Reverse(heap)): Go's pdqsort is an insertion sort up to 12 elements. */
static void topk_sort(struct group *g)
{
	for (size_t i = 1; i < g->nheap; i++)
		for (size_t j = i; j > 0 && heap_less(g->heap, j - 1, j); j--)
			heap_swap(g->heap, j, j - 1);
}

static void group_add(const struct pq_node *n, struct group *g, const struct pq_sample *s,
		      int64_t k)
{
	switch (n->agg) {
	case A_SUM:
		g->value += s->v;
		break;
	case A_AVG:
		g->count++;
		if (isinf(g->mean)) {
			if (isinf(s->v) && (g->mean > 0) == (s->v > 0))
				break;
			if (!isinf(s->v) && !isnan(s->v))
				break;
		}
		g->mean += s->v / g->count - g->mean / g->count;
		break;
	case A_MIN:
		if (g->value > s->v || isnan(g->value))
			g->value = s->v;
		break;
	case A_MAX:
		if (g->value < s->v || isnan(g->value))
			g->value = s->v;
		break;
	case A_COUNT:
		g->count++;
		break;
	case A_TOPK:
		topk_add(g, k, s);
		break;
	}
}

/* topk's k at t: a scalar that must fit an int64 (then truncated, as Go converts). */
static int topk_k(struct pq_eval *ev, const struct pq_node *n, int64_t t, int64_t *k)
{
	struct pq_value p;

	if (pq_eval_at(ev, n->param, t, &p) < 0)
		return -1;
	if (!(p.scalar >= -9223372036854775808.0 && p.scalar < 9223372036854775808.0)) {
		char text[PQ_FLOAT_MAX];

		pq_format_float(text, sizeof(text), p.scalar);
		pq_fail(ev->err, PROMQL_EXECUTION, "Scalar value %s overflows int64", text);
		return -1;
	}
	*k = (int64_t)p.scalar;
	return 0;
}

static int emit_groups(struct pq_eval *ev, const struct pq_node *n, struct group *g, size_t ng,
		       size_t nin, struct pq_value *out)
{
	if (new_vector(ev, n->agg == A_TOPK ? nin : ng, out) < 0)
		return -1;
	for (size_t i = 0; i < ng; i++) {
		double v = g[i].value;

		if (n->agg == A_TOPK) {
			topk_sort(&g[i]);
			for (size_t j = 0; j < g[i].nheap; j++)
				out->vec[out->n++] = g[i].heap[j];
			continue;
		}
		if (n->agg == A_AVG)
			v = g[i].mean;
		else if (n->agg == A_COUNT)
			v = g[i].count;
		out->vec[out->n++] = (struct pq_sample){g[i].ls, v};
	}
	return 0;
}

static int eval_aggregation(struct pq_eval *ev, const struct pq_node *n, int64_t t,
			    struct pq_value *out)
{
	struct pq_value in;
	struct pq_lmap groups = {0};
	struct group *g;
	size_t ng = 0;
	int64_t k = 0;

	if (n->agg == A_TOPK && topk_k(ev, n, t, &k) < 0)
		return -1;
	if (pq_eval_at(ev, n->args[0], t, &in) < 0)
		return -1;
	if (n->agg == A_TOPK && k < 1)
		return new_vector(ev, 0, out);
	g = pq_alloc_array(ev->step, in.n > 0 ? in.n : 1, sizeof(*g));
	if (g == NULL)
		return oom(ev);
	for (size_t i = 0; i < in.n; i++) {
		const struct pq_sample *s = &in.vec[i];
		const struct pq_lset *ls = group_labels(ev, n, s->ls);
		size_t idx;
		int rc = ls == NULL ? -1 : pq_lmap_put(ev->step, &groups, ls, ng, &idx);

		if (rc < 0)
			return oom(ev);
		if (rc == 1) {
			group_add(n, &g[idx], s, k);
			continue;
		}
		g[ng] = (struct group){.ls = ls, .value = s->v, .mean = s->v, .count = 1};
		if (n->agg == A_TOPK) {
			size_t cap = (uint64_t)k < in.n ? (size_t)k : in.n;

			g[ng].heap = pq_alloc_array(ev->step, cap, sizeof(*g[ng].heap));
			if (g[ng].heap == NULL)
				return oom(ev);
			g[ng].heap[0] = *s;
			g[ng].nheap = 1;
		}
		ng++;
	}
	return emit_groups(ev, n, g, ng, in.n, out);
}

/* ---- operators ---- */

static bool is_comparison(enum pq_tok op)
{
	return op >= T_EQLC && op <= T_LTE;
}

/* vectorElemBinop: the value, and whether a comparison keeps the element. */
static double binop(enum pq_tok op, double l, double r, bool *keep)
{
	*keep = true;
	switch (op) {
	case T_ADD:
		return l + r;
	case T_SUB:
		return l - r;
	case T_MUL:
		return l * r;
	case T_DIV:
		return l / r;
	case T_POW:
		return pow(l, r);
	case T_MOD:
		return fmod(l, r);
	case T_EQLC:
		*keep = l == r;
		break;
	case T_NEQ:
		*keep = l != r;
		break;
	case T_GTR:
		*keep = l > r;
		break;
	case T_LSS:
		*keep = l < r;
		break;
	case T_GTE:
		*keep = l >= r;
		break;
	case T_LTE:
		*keep = l <= r;
		break;
	default:
		break;
	}
	return l;
}

/* VectorscalarBinop: vec op scalar, or scalar op vec when swap. */
static int vector_scalar(struct pq_eval *ev, const struct pq_node *n, const struct pq_value *vec,
			 double scalar, bool swap, struct pq_value *out)
{
	bool cmp = is_comparison(n->op);

	if (new_vector(ev, vec->n, out) < 0)
		return -1;
	for (size_t i = 0; i < vec->n; i++) {
		double lv = swap ? scalar : vec->vec[i].v, rv = swap ? vec->vec[i].v : scalar;
		bool keep;
		double v = binop(n->op, lv, rv, &keep);
		const struct pq_lset *ls = vec->vec[i].ls;

		if (cmp && swap)
			v = rv;    /* a comparison keeps the vector's value, whichever side */
		if (n->return_bool) {
			v = keep ? 1 : 0;
			keep = true;
		}
		if (!keep)
			continue;
		if (!cmp || n->return_bool) {
			ls = pq_lset_drop_name(ev->step, ls);
			if (ls == NULL)
				return oom(ev);
		}
		out->vec[out->n++] = (struct pq_sample){ls, v};
	}
	return refuse_duplicates(ev, out);
}

static int eval_binary(struct pq_eval *ev, const struct pq_node *n, int64_t t,
		       struct pq_value *out)
{
	struct pq_value l, r;
	bool keep;

	if (pq_eval_at(ev, n->args[0], t, &l) < 0 || pq_eval_at(ev, n->args[1], t, &r) < 0)
		return -1;
	if (l.type == PQ_SCALAR && r.type == PQ_SCALAR) {
		double v = binop(n->op, l.scalar, r.scalar, &keep);

		*out = (struct pq_value){.type = PQ_SCALAR,
					 .scalar = is_comparison(n->op) ? (keep ? 1 : 0) : v};
		return 0;
	}
	if (l.type == PQ_VECTOR)
		return vector_scalar(ev, n, &l, r.scalar, false, out);
	return vector_scalar(ev, n, &r, l.scalar, true, out);
}

static int eval_unary(struct pq_eval *ev, const struct pq_node *n, int64_t t, struct pq_value *out)
{
	if (pq_eval_at(ev, n->args[0], t, out) < 0)
		return -1;
	if (out->type == PQ_SCALAR) {
		out->scalar = -out->scalar;
		return 0;
	}
	for (size_t i = 0; i < out->n; i++) {
		out->vec[i].v = -out->vec[i].v;
		out->vec[i].ls = pq_lset_drop_name(ev->step, out->vec[i].ls);
		if (out->vec[i].ls == NULL)
			return oom(ev);
	}
	return refuse_duplicates(ev, out);
}

int pq_eval_at(struct pq_eval *ev, const struct pq_node *n, int64_t t, struct pq_value *out)
{
	switch (n->kind) {
	case N_NUMBER:
		*out = (struct pq_value){.type = PQ_SCALAR, .scalar = n->num};
		return 0;
	case N_VSEL:
		return eval_vector_selector(ev, n, t, out);
	case N_MSEL:
		return eval_matrix_selector(ev, n, t, out);
	case N_CALL:
		return eval_call(ev, n, t, out);
	case N_AGG:
		return eval_aggregation(ev, n, t, out);
	case N_BINARY:
		return eval_binary(ev, n, t, out);
	case N_UNARY:
		return eval_unary(ev, n, t, out);
	case N_PAREN:
		return pq_eval_at(ev, n->args[0], t, out);
	case N_STRING:
		break;
	}
	pq_fail(ev->err, PROMQL_INTERNAL, "cannot evaluate this expression");
	return -1;
}

int pq_eval_check_functions(struct pq_eval *ev, struct pq_arena *a, const struct pq_node *n)
{
	struct pq_lmap seen = {0};
	size_t idx;

	for (size_t i = 0; i < 2; i++)
		if (n->args[i] != NULL && pq_eval_check_functions(ev, a, n->args[i]) < 0)
			return -1;
	if (n->param != NULL && pq_eval_check_functions(ev, a, n->param) < 0)
		return -1;
	if (n->kind != N_CALL || n->produced == NULL)
		return 0;
	for (size_t i = 0; i < n->args[0]->nsel; i++) {
		const struct pq_lset *ls;
		int rc;

		if (!n->produced[i])
			continue;
		ls = pq_lset_drop_name(a, n->args[0]->sel[i].ls);
		rc = ls == NULL ? -1 : pq_lmap_put(a, &seen, ls, i, &idx);
		if (rc < 0)
			return oom(ev);
		if (rc == 1) {
			pq_fail(ev->err, PROMQL_EXECUTION,
				"vector cannot contain metrics with the same labelset");
			return -1;
		}
	}
	return 0;
}
