/*
 * promql_meta.c - /api/v1/series, /api/v1/labels and /api/v1/label/<name>/values
 * (promql.h): the series matching match[] selectors within a time span, as label
 * sets, or the label names or one label's values they carry, sorted and unique.
 */
#include "promql_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "temporis/base/jsonutil.h"

struct meta {
	struct pq_arena arena;
	struct pq_err err;
	struct pq_query *q;
	size_t nq;
	struct pq_series *s;
	size_t n;
};

static void meta_free(struct meta *m)
{
	for (size_t i = 0; i < m->nq; i++)
		pq_query_free(&m->q[i]);
	pq_arena_free(&m->arena);
}

static struct json_object *meta_finish(struct meta *m, struct json_object *data, int *http_status)
{
	struct json_object *body;

	if (m->err.status == PROMQL_OK && data == NULL)
		pq_oom(&m->err);
	if (m->err.status == PROMQL_OK) {
		body = pq_json_success(data, http_status);
	} else {
		json_object_put(data);
		body = pq_json_error(&m->err, http_status);
	}
	meta_free(m);
	return body;
}

/* Parse match[] and select the series (none given: all of them). 0 or -1. */
static int meta_select(struct meta *m, const struct promql_store *store,
		       const struct promql_limits *limits, const char *const *match,
		       const size_t *match_len, size_t nmatch, int64_t start_ms, int64_t end_ms)
{
	struct pq_loader ld = {.store = store, .limits = limits, .arena = &m->arena, .err = &m->err};
	const struct pq_node **sels = pq_alloc_array(&m->arena, nmatch + 1, sizeof(*sels));

	m->q = pq_alloc_array(&m->arena, nmatch + 1, sizeof(*m->q));
	if (sels == NULL || m->q == NULL) {
		pq_oom(&m->err);
		return -1;
	}
	for (size_t i = 0; i < nmatch; i++) {
		m->nq++;
		if (pq_parse_selector(&m->arena, &m->err, match[i], match_len[i], &m->q[i]) < 0) {
			pq_err_param(&m->err, "match[]");
			return -1;
		}
		sels[i] = m->q[i].root;
	}
	if (start_ms > end_ms) {
		pq_fail(&m->err, PROMQL_BAD_DATA,
			"invalid parameter \"end\": end timestamp must not be before start time");
		return -1;
	}
	return pq_select(&ld, sels, nmatch, pq_ms_to_first_s(start_ms), pq_ms_to_last_s(end_ms),
			 false, &m->s, &m->n);
}

struct json_object *promql_series(const struct promql_store *store,
				  const struct promql_limits *limits, const char *const *match,
				  const size_t *match_len, size_t nmatch, int64_t start_ms,
				  int64_t end_ms, int *http_status)
{
	struct meta m = {.err.status = PROMQL_OK};
	struct json_object *data = NULL;

	if (nmatch == 0) {
		pq_fail(&m.err, PROMQL_BAD_DATA, "no match[] parameter provided");
		return meta_finish(&m, NULL, http_status);
	}
	if (meta_select(&m, store, limits, match, match_len, nmatch, start_ms, end_ms) < 0)
		return meta_finish(&m, NULL, http_status);
	data = json_object_new_array_ext((int)m.n);
	for (size_t i = 0; data != NULL && i < m.n; i++) {  /* pq_select sorted them */
		if (pq_json_append(data, pq_json_metric(m.s[i].ls)) < 0) {
			json_object_put(data);
			data = NULL;
		}
	}
	return meta_finish(&m, data, http_status);
}

struct text {
	const char *s;
	size_t n;
};

static int text_cmp(const void *a, const void *b)
{
	const struct text *x = a, *y = b;
	int c = memcmp(x->s, y->s, x->n < y->n ? x->n : y->n);

	return c != 0 ? c : x->n < y->n ? -1 : x->n > y->n ? 1 : 0;
}

/* texts[0..n) sorted, each once, as a JSON array of strings. */
static struct json_object *sorted_strings(struct text *t, size_t n)
{
	struct json_object *a = json_object_new_array_ext((int)n);

	if (n > 1)
		qsort(t, n, sizeof(*t), text_cmp);
	for (size_t i = 0; a != NULL && i < n; i++) {
		if (i > 0 && text_cmp(&t[i - 1], &t[i]) == 0)
			continue;
		if (pq_json_append(a, json_object_new_string_len(t[i].s, (int)t[i].n)) < 0) {
			json_object_put(a);
			return NULL;
		}
	}
	return a;
}

struct json_object *promql_labels(const struct promql_store *store,
				  const struct promql_limits *limits, const char *const *match,
				  const size_t *match_len, size_t nmatch, int64_t start_ms,
				  int64_t end_ms, int *http_status)
{
	struct meta m = {.err.status = PROMQL_OK};
	struct text *t;
	size_t nt = 0, total = 0;

	if (meta_select(&m, store, limits, match, match_len, nmatch, start_ms, end_ms) < 0)
		return meta_finish(&m, NULL, http_status);
	for (size_t i = 0; i < m.n; i++)
		total += m.s[i].ls->n;
	t = pq_alloc_array(&m.arena, total + 1, sizeof(*t));
	if (t == NULL)
		return meta_finish(&m, NULL, http_status);
	for (size_t i = 0; i < m.n; i++)
		for (size_t j = 0; j < m.s[i].ls->n; j++)
			t[nt++] = (struct text){m.s[i].ls->l[j].name, m.s[i].ls->l[j].name_len};
	return meta_finish(&m, sorted_strings(t, nt), http_status);
}

static bool label_name_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';

		if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
			return false;
	}
	return n > 0;
}

struct json_object *promql_label_values(const struct promql_store *store,
					const struct promql_limits *limits, const char *label,
					size_t label_len, const char *const *match,
					const size_t *match_len, size_t nmatch, int64_t start_ms,
					int64_t end_ms, int *http_status)
{
	struct meta m = {.err.status = PROMQL_OK};
	struct text *t;
	size_t nt = 0;

	if (!label_name_ok(label, label_len)) {
		pq_fail(&m.err, PROMQL_BAD_DATA, "invalid label name: \"%.*s\"", (int)label_len, label);
		return meta_finish(&m, NULL, http_status);
	}
	if (meta_select(&m, store, limits, match, match_len, nmatch, start_ms, end_ms) < 0)
		return meta_finish(&m, NULL, http_status);
	t = pq_alloc_array(&m.arena, m.n + 1, sizeof(*t));
	if (t == NULL)
		return meta_finish(&m, NULL, http_status);
	for (size_t i = 0; i < m.n; i++) {
		const struct pq_lset *ls = m.s[i].ls;

		for (size_t j = 0; j < ls->n; j++)
			if (ls->l[j].name_len == label_len && memcmp(ls->l[j].name, label, label_len) == 0)
				t[nt++] = (struct text){ls->l[j].value, ls->l[j].value_len};
	}
	return meta_finish(&m, sorted_strings(t, nt), http_status);
}
