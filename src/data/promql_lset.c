/*
 * promql_lset.c - label sets as the PromQL engine compares, hashes and groups them
 * (promql_int.h): Prometheus's labels.Compare order, and a set of label sets that
 * keeps the index each was first given (for groups and output series).
 */
#include "promql_int.h"

#include <string.h>

#include "temporis/data/series_labels.h"

#define FNV_OFFSET 14695981039346656037ull
#define FNV_PRIME 1099511628211ull
#define LMAP_INITIAL 16
#define LABEL_SEP 0xff                  /* no byte of UTF-8 text: separates unambiguously */

const struct pq_lset pq_lset_empty = {0};

static int bytes_cmp(const char *a, size_t an, const char *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);

	if (c != 0)
		return c < 0 ? -1 : 1;
	return an < bn ? -1 : an > bn ? 1 : 0;
}

int pq_lset_cmp(const struct pq_lset *a, const struct pq_lset *b)
{
	size_t n = a->n < b->n ? a->n : b->n;

	for (size_t i = 0; i < n; i++) {
		const struct series_label *x = &a->l[i], *y = &b->l[i];
		int c = bytes_cmp(x->name, x->name_len, y->name, y->name_len);

		if (c == 0)
			c = bytes_cmp(x->value, x->value_len, y->value, y->value_len);
		if (c != 0)
			return c;
	}
	return a->n < b->n ? -1 : a->n > b->n ? 1 : 0;
}

bool pq_lset_equal(const struct pq_lset *a, const struct pq_lset *b)
{
	return a == b || (a->n == b->n && pq_lset_cmp(a, b) == 0);
}

static uint64_t fnv(uint64_t h, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * FNV_PRIME;
	return (h ^ LABEL_SEP) * FNV_PRIME;
}

uint64_t pq_lset_hash(const struct pq_lset *ls)
{
	uint64_t h = FNV_OFFSET;

	for (size_t i = 0; i < ls->n; i++) {
		h = fnv(h, ls->l[i].name, ls->l[i].name_len);
		h = fnv(h, ls->l[i].value, ls->l[i].value_len);
	}
	return h;
}

const char *pq_lset_get(const struct pq_lset *ls, const char *name, size_t len)
{
	for (size_t i = 0; i < ls->n; i++)
		if (ls->l[i].name_len == len && memcmp(ls->l[i].name, name, len) == 0)
			return ls->l[i].value;
	return "";
}

const struct pq_lset *pq_lset_drop_name(struct pq_arena *a, const struct pq_lset *ls)
{
	const size_t mlen = sizeof(SERIES_LABELS_METRIC) - 1;
	struct pq_lset *out;
	size_t at = ls->n;

	for (size_t i = 0; i < ls->n; i++)
		if (ls->l[i].name_len == mlen && memcmp(ls->l[i].name, SERIES_LABELS_METRIC, mlen) == 0)
			at = i;
	if (at == ls->n)
		return ls;
	out = pq_alloc(a, sizeof(*out) + (ls->n - 1) * sizeof(out->l[0]));
	if (out == NULL)
		return NULL;
	memcpy(out->l, ls->l, at * sizeof(out->l[0]));
	memcpy(out->l + at, ls->l + at + 1, (ls->n - at - 1) * sizeof(out->l[0]));
	out->n = ls->n - 1;
	return out;
}

static int lmap_grow(struct pq_arena *a, struct pq_lmap *m)
{
	size_t cap = m->cap == 0 ? LMAP_INITIAL : m->cap * 2;
	struct pq_lmap_ent *e = pq_alloc_array(a, cap, sizeof(*e));

	if (e == NULL || cap < m->cap)
		return -1;
	for (size_t i = 0; i < m->cap; i++) {
		size_t j;

		if (m->e[i].ls == NULL)
			continue;
		for (j = m->e[i].hash & (cap - 1); e[j].ls != NULL; j = (j + 1) & (cap - 1))
			;
		e[j] = m->e[i];
	}
	m->e = e;              /* the old table stays in the arena until it is freed */
	m->cap = cap;
	return 0;
}

int pq_lmap_put(struct pq_arena *a, struct pq_lmap *m, const struct pq_lset *ls, size_t new_idx,
		size_t *idx)
{
	uint64_t h = pq_lset_hash(ls);
	size_t j;

	if ((m->n + 1) * 2 > m->cap && lmap_grow(a, m) < 0)
		return -1;
	for (j = h & (m->cap - 1); m->e[j].ls != NULL; j = (j + 1) & (m->cap - 1)) {
		if (m->e[j].hash == h && pq_lset_equal(m->e[j].ls, ls)) {
			*idx = m->e[j].idx;
			return 1;
		}
	}
	m->e[j] = (struct pq_lmap_ent){h, ls, new_idx};
	m->n++;
	*idx = new_idx;
	return 0;
}

int pq_lmap_get(const struct pq_lmap *m, const struct pq_lset *ls, size_t *idx)
{
	uint64_t h;

	if (m->cap == 0)
		return 0;
	h = pq_lset_hash(ls);
	for (size_t j = h & (m->cap - 1); m->e[j].ls != NULL; j = (j + 1) & (m->cap - 1)) {
		if (m->e[j].hash == h && pq_lset_equal(m->e[j].ls, ls)) {
			*idx = m->e[j].idx;
			return 1;
		}
	}
	return 0;
}
