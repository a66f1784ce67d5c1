/*
 * promql_select.c - which stored series a query's selectors pick, and their points
 * (promql_int.h). Every series name is read back as labels (series_labels.h); two
 * selected names with one label set fail the call rather than merge. The series and
 * points limits are checked as each series and point arrives, before more is built.
 * Everything kept lives in the loader's arena.
 */
#include "promql_int.h"

#include <stdlib.h>
#include <string.h>

#include "temporis/data/series_labels.h"

#define SERIES_INITIAL 16
#define POINTS_INITIAL 16
#define MS_PER_S 1000
#define NAME_SHOWN_MAX 200  /* bytes of a stored name quoted in an error */

struct selecting {
	struct pq_loader *ld;
	const struct pq_node *const *sels;
	size_t nsels;
	int64_t first_s, last_s;
	struct series_labels sl;
	struct pq_series *out;
	size_t n, cap;
};

int64_t pq_ms_to_first_s(int64_t ms)
{
	if (ms == INT64_MIN)
		return INT64_MIN;
	return ms / MS_PER_S + (ms % MS_PER_S > 0 ? 1 : 0);
}

int64_t pq_ms_to_last_s(int64_t ms)
{
	if (ms == INT64_MAX)
		return INT64_MAX;
	return ms / MS_PER_S - (ms % MS_PER_S < 0 ? 1 : 0);
}

static const char *label_value(const struct series_labels *sl, const char *name, size_t len)
{
	for (size_t i = 0; i < sl->n; i++)
		if (sl->v[i].name_len == len && memcmp(sl->v[i].name, name, len) == 0)
			return sl->v[i].value;
	return "";
}

static bool selector_matches(const struct pq_node *sel, const struct series_labels *sl)
{
	for (size_t i = 0; i < sel->nm; i++) {
		const struct pq_matcher *m = sel->m[i];

		if (!pq_matcher_matches(m, label_value(sl, m->name, m->name_len)))
			return false;
	}
	return true;
}

/* The parsed labels and the stored name, copied into the arena as the next series. */
static int keep_series(struct selecting *s, const char *name, size_t len)
{
	struct pq_arena *a = s->ld->arena;
	struct pq_lset *ls = pq_alloc(a, sizeof(*ls) + s->sl.n * sizeof(ls->l[0]));
	struct pq_series *sr;

	if (s->n == s->cap) {
		size_t cap = s->cap == 0 ? SERIES_INITIAL : s->cap * 2;
		struct pq_series *grown = pq_alloc_array(a, cap, sizeof(*grown));

		if (grown == NULL)
			return -1;
		if (s->n > 0)
			memcpy(grown, s->out, s->n * sizeof(*grown));
		s->out = grown;
		s->cap = cap;
	}
	if (ls == NULL)
		return -1;
	ls->n = s->sl.n;
	for (size_t i = 0; i < s->sl.n; i++) {
		const struct series_label *l = &s->sl.v[i];

		ls->l[i] = (struct series_label){pq_strndup(a, l->name, l->name_len), l->name_len,
						 pq_strndup(a, l->value, l->value_len), l->value_len};
		if (ls->l[i].name == NULL || ls->l[i].value == NULL)
			return -1;
	}
	sr = &s->out[s->n];
	*sr = (struct pq_series){.ls = ls, .name = pq_strndup(a, name, len), .name_len = len};
	if (sr->name == NULL)
		return -1;
	s->n++;
	return 0;
}

static int on_series(const char *name, size_t len, int64_t first_ts, int64_t last_ts, void *arg)
{
	struct selecting *s = arg;
	struct pq_loader *ld = s->ld;
	bool match = s->nsels == 0;

	if (last_ts < s->first_s || first_ts > s->last_s)
		return 0;
	if (series_labels_parse(&s->sl, name, len) < 0) {
		pq_oom(ld->err);
		return 1;
	}
	for (size_t i = 0; i < s->nsels && !match; i++)
		match = selector_matches(s->sels[i], &s->sl);
	if (!match)
		return 0;
	if (ld->nseries >= ld->limits->max_series) {
		pq_fail(ld->err, PROMQL_EXECUTION,
			"the query selects more than %zu series (the limit max_series): narrow the "
			"selector or the time range",
			ld->limits->max_series);
		return 1;
	}
	ld->nseries++;
	if (keep_series(s, name, len) < 0) {
		pq_oom(ld->err);
		return 1;
	}
	return 0;
}

static int series_cmp(const void *a, const void *b)
{
	const struct pq_series *x = a, *y = b;

	return pq_lset_cmp(x->ls, y->ls);
}

/* Sorted by labels; two neighbours with one label set are one series twice. */
static int refuse_collisions(struct pq_loader *ld, struct pq_series *s, size_t n)
{
	if (n > 1)
		qsort(s, n, sizeof(*s), series_cmp);
	for (size_t i = 1; i < n; i++) {
		const struct pq_series *a = &s[i - 1], *b = &s[i];

		if (pq_lset_cmp(a->ls, b->ls) != 0)
			continue;
		if (memcmp(a->name, b->name, a->name_len < b->name_len ? a->name_len : b->name_len) > 0) {
			a = &s[i];   /* name them in byte order, whatever order qsort left */
			b = &s[i - 1];
		}
		pq_fail(ld->err, PROMQL_EXECUTION,
			"the stored series \"%.*s\" and \"%.*s\" read as the same labels; "
			"select only one of them",
			(int)(a->name_len < NAME_SHOWN_MAX ? a->name_len : NAME_SHOWN_MAX), a->name,
			(int)(b->name_len < NAME_SHOWN_MAX ? b->name_len : NAME_SHOWN_MAX), b->name);
		return -1;
	}
	return 0;
}

struct loading {
	struct pq_loader *ld;
	struct pq_series *s;
	int64_t first_s, last_s;
};

static int on_point(int64_t ts, double v, void *arg)
{
	struct loading *l = arg;
	struct pq_loader *ld = l->ld;
	struct pq_series *s = l->s;

	if (ts < l->first_s || ts > l->last_s)
		return 0;       /* outside what was asked: not ours to read */
	if (s->n > 0 && ts * MS_PER_S <= s->p[s->n - 1].t) {
		pq_fail(ld->err, PROMQL_INTERNAL, "the store returned the points of \"%.*s\" out of order",
			(int)(s->name_len < NAME_SHOWN_MAX ? s->name_len : NAME_SHOWN_MAX), s->name);
		return 1;
	}
	if (ld->npoints >= ld->limits->max_points) {
		pq_fail(ld->err, PROMQL_EXECUTION,
			"the query loads more than %zu samples (the limit max_points): narrow the "
			"selector or the time range",
			ld->limits->max_points);
		return 1;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap == 0 ? POINTS_INITIAL : s->cap * 2;
		struct pq_point *grown = pq_alloc_array(ld->arena, cap, sizeof(*grown));

		if (grown == NULL) {
			pq_oom(ld->err);
			return 1;
		}
		if (s->n > 0)
			memcpy(grown, s->p, s->n * sizeof(*grown));
		s->p = grown;
		s->cap = cap;
	}
	ld->npoints++;
	s->p[s->n++] = (struct pq_point){ts * MS_PER_S, v};
	return 0;
}

static int load_points(struct pq_loader *ld, struct pq_series *s, int64_t first_s, int64_t last_s)
{
	struct loading l = {ld, s, first_s, last_s};
	int rc = ld->store->points(ld->store->arg, s->name, s->name_len, first_s, last_s, on_point,
				   &l);

	if (ld->err->status != PROMQL_OK)
		return -1;
	if (rc != 0) {
		pq_fail(ld->err, PROMQL_INTERNAL, "storage error reading the points of a series");
		return -1;
	}
	return 0;
}

int pq_select(struct pq_loader *ld, const struct pq_node *const *sels, size_t nsels,
	      int64_t first_s, int64_t last_s, bool load, struct pq_series **out, size_t *nout)
{
	struct selecting s = {.ld = ld, .sels = sels, .nsels = nsels, .first_s = first_s,
			      .last_s = last_s};
	int rc;

	*out = NULL;
	*nout = 0;
	if (first_s > last_s)
		return 0;
	rc = ld->store->each_series(ld->store->arg, on_series, &s);
	series_labels_free(&s.sl);
	if (ld->err->status != PROMQL_OK)
		return -1;
	if (rc != 0) {
		pq_fail(ld->err, PROMQL_INTERNAL, "storage error listing the series");
		return -1;
	}
	if (refuse_collisions(ld, s.out, s.n) < 0)
		return -1;
	for (size_t i = 0; load && i < s.n; i++)
		if (load_points(ld, &s.out[i], first_s, last_s) < 0)
			return -1;
	*out = s.out;
	*nout = s.n;
	return 0;
}
