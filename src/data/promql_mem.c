/*
 * promql_mem.c - the PromQL engine's arena and error reporting (promql_int.h).
 * An arena owns every block it hands out; one free (or reset) releases them all,
 * so evaluation never frees piecemeal and never leaks on an error path.
 */
#include "promql_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK_SIZE (64 * 1024)
#define ALIGN 16

struct pq_block {
	struct pq_block *next;
	size_t cap, used;
	_Alignas(ALIGN) unsigned char data[];
};

void *pq_alloc(struct pq_arena *a, size_t size)
{
	struct pq_block *b = a->head;
	size_t need = (size + ALIGN - 1) & ~(size_t)(ALIGN - 1);
	void *p;

	if (need < size)
		return NULL;
	if (b == NULL || b->cap - b->used < need) {
		size_t cap = need > BLOCK_SIZE ? need : BLOCK_SIZE;

		if (cap > SIZE_MAX - sizeof(*b))
			return NULL;
		b = malloc(sizeof(*b) + cap);
		if (b == NULL)
			return NULL;
		b->cap = cap;
		b->used = 0;
		/* A big one-off block goes behind the current one, which keeps its room. */
		if (a->head != NULL && cap > BLOCK_SIZE) {
			b->next = a->head->next;
			a->head->next = b;
		} else {
			b->next = a->head;
			a->head = b;
		}
	}
	p = b->data + b->used;
	b->used += need;
	memset(p, 0, size);
	return p;
}

void *pq_alloc_array(struct pq_arena *a, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size)
		return NULL;
	return pq_alloc(a, n * size);
}

char *pq_strndup(struct pq_arena *a, const char *s, size_t n)
{
	char *d = n == SIZE_MAX ? NULL : pq_alloc(a, n + 1);

	if (d != NULL && n > 0)
		memcpy(d, s, n);
	return d;
}

void pq_arena_reset(struct pq_arena *a)
{
	struct pq_block *keep = a->head;

	if (keep == NULL)
		return;
	a->head = keep->next;
	pq_arena_free(a);
	keep->next = NULL;
	keep->used = 0;
	a->head = keep;
}

void pq_arena_free(struct pq_arena *a)
{
	while (a->head != NULL) {
		struct pq_block *next = a->head->next;

		free(a->head);
		a->head = next;
	}
}

void pq_fail(struct pq_err *e, enum promql_status status, const char *fmt, ...)
{
	va_list ap;

	if (e->status != PROMQL_OK)
		return;
	e->status = status;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
}

void pq_oom(struct pq_err *e)
{
	pq_fail(e, PROMQL_INTERNAL, "out of memory");
}

void pq_err_param(struct pq_err *e, const char *param)
{
	char prefix[PQ_ERR_MAX];
	size_t plen, mlen = strlen(e->msg);
	int n = snprintf(prefix, sizeof(prefix), "invalid parameter \"%s\": ", param);

	if (n < 0 || (size_t)n >= sizeof(prefix))
		return;
	plen = (size_t)n;
	if (plen + mlen >= sizeof(e->msg))
		mlen = sizeof(e->msg) - plen - 1;
	memmove(e->msg + plen, e->msg, mlen);
	memcpy(e->msg, prefix, plen);
	e->msg[plen + mlen] = '\0';
}
