/*
 * store_index.c - the series index of each source family: for every series, the
 * first and last partition it has records in (index keys, codec.h). The sealer
 * writes an index operand when a sealed bucket falls outside what it has written
 * for that series before; this cache of what it wrote keeps that to about one
 * operand per series and partition. The sealer thread's alone.
 */
#include <stdlib.h>
#include <string.h>

#include "store_index.h"
#include "temporis/base/buf.h"
#include "temporis/data/head.h"

#define CACHE_SLOTS_INITIAL 4096   /* kept at most half full */
#define CACHE_NAMES_INITIAL (256u << 10)
/* Past this many series the cache starts again empty: at most one extra index
 * operand per series, never a wrong one (operands only widen the range). */
#define CACHE_MAX_SERIES 1000000u

struct known {
	uint64_t hash;
	uint32_t source_id;
	uint32_t name_off, name_len;
	int64_t first, last;           /* partitions already in the index */
};

struct index_cache {
	struct known *items;
	size_t n, cap;
	uint32_t *slots;               /* item + 1; 0 = empty */
	size_t nslots;
	char *names;
	size_t names_len, names_cap;
};

struct index_cache *store_index_cache_new(void)
{
	return calloc(1, sizeof(struct index_cache));
}

void store_index_cache_free(struct index_cache *c)
{
	if (c == NULL)
		return;
	free(c->items);
	free(c->slots);
	free(c->names);
	free(c);
}

static void cache_clear(struct index_cache *c)
{
	if (c->slots != NULL)
		memset(c->slots, 0, c->nslots * sizeof(*c->slots));
	c->n = 0;
	c->names_len = 0;
}

static int cache_grow(struct index_cache *c)
{
	size_t nslots = c->nslots ? c->nslots * 2 : CACHE_SLOTS_INITIAL;
	uint32_t *slots = calloc(nslots, sizeof(*slots));

	if (slots == NULL)
		return -1;
	for (uint32_t i = 0; i < c->n; i++) {
		size_t s = c->items[i].hash & (nslots - 1);

		while (slots[s] != 0)
			s = (s + 1) & (nslots - 1);
		slots[s] = i + 1;
	}
	free(c->slots);
	c->slots = slots;
	c->nslots = nslots;
	return 0;
}

/* The entry of (source, name), created empty if new; NULL when memory runs out. */
static struct known *cache_get(struct index_cache *c, uint32_t source_id, const char *name,
			       size_t len)
{
	uint64_t h = head_name_hash(source_id, name, len);
	void *p;
	size_t s;

	if (c->n >= CACHE_MAX_SERIES)
		cache_clear(c);
	if ((c->n + 1) * 2 > c->nslots && cache_grow(c) != 0)
		return NULL;
	for (s = h & (c->nslots - 1); c->slots[s] != 0; s = (s + 1) & (c->nslots - 1)) {
		struct known *k = &c->items[c->slots[s] - 1];

		if (k->hash == h && k->source_id == source_id && k->name_len == len &&
		    memcmp(c->names + k->name_off, name, len) == 0)
			return k;
	}
	p = c->items;
	if (vec_reserve(&p, &c->cap, c->n + 1, sizeof(*c->items), CACHE_SLOTS_INITIAL / 2) != 0)
		return NULL;
	c->items = p;
	p = c->names;
	if (vec_reserve(&p, &c->names_cap, c->names_len + len, 1, CACHE_NAMES_INITIAL) != 0)
		return NULL;
	c->names = p;
	memcpy(c->names + c->names_len, name, len);
	c->items[c->n] = (struct known){ .hash = h, .source_id = source_id,
					 .name_off = (uint32_t)c->names_len,
					 .name_len = (uint32_t)len, .first = INT64_MAX,
					 .last = INT64_MIN };
	c->names_len += len;
	c->slots[s] = (uint32_t)++c->n;
	return &c->items[c->n - 1];
}

bool store_index_wanted(struct index_cache *c, uint32_t source_id, const char *name,
			size_t len, int64_t partition)
{
	struct known *k = cache_get(c, source_id, name, len);

	if (k == NULL)
		return true;  /* not remembered (no memory): the next seal writes it again */
	if (partition >= k->first && partition <= k->last)
		return false;
	if (partition < k->first)
		k->first = partition;
	if (partition > k->last)
		k->last = partition;
	return true;
}

void store_index_cache_reset(struct index_cache *c)
{
	cache_clear(c);
}
