/*
 * head.c - the records committed since the last seal (head.h).
 *
 * Owns arrays that only grow, reused across seals: series (one per source and
 * name, in a hash table), groups (one per series and bucket, in a second hash table
 * and chained per series), blocks of a group's records (chained per group, oldest
 * first: a seal reads a group's records a block at a time, not one cache miss each),
 * the versions of the requests they came from, and the arena of series names. A
 * commit that fails is rolled back: everything added since the mark is removed,
 * newest first, which keeps linear probing intact.
 */
#include "temporis/data/head.h"

#include <stdlib.h>
#include <string.h>

#include "temporis/base/buf.h"
#include "temporis/data/codec.h"

#define NONE UINT32_MAX
#define HASH_INITIAL 1024          /* slots; tables are kept at most half full */
#define HASH_LOAD_DIV 2
#define BLOCKS_INITIAL 1024
#define REQS_INITIAL 256
#define BLOCK_ENTRIES 7                /* 7 x 16 bytes and the chain: two cache lines */
#define PREFETCH_SLOT 12               /* records ahead, per stage of the lookup */
#define PREFETCH_SERIES 8
#define PREFETCH_GROUP 4
#define GROUPS_INITIAL 1024
#define NAMES_INITIAL (64u << 10)
#define TOUCHED_INITIAL 256
#define MIX_MUL 0x9e3779b97f4a7c15ull

struct series {
	uint64_t hash;
	uint32_t source_id;
	uint32_t name_off;
	uint32_t name_len;
	uint32_t first_group;          /* newest group first */
	uint32_t last_group;           /* the group the previous record went to */
};

struct group {
	int64_t bucket;
	uint32_t series;
	uint32_t first, last;          /* blocks, oldest to newest */
	uint32_t next_in_series;
	uint32_t touched;              /* the mark generation that last saved it */
};

/* A record without its version: the request it came from holds that. */
struct hentry {
	uint64_t bits;
	uint32_t req;                  /* index into reqs */
	uint16_t off;
	uint8_t type;
};

struct block {
	struct hentry e[BLOCK_ENTRIES];
	uint32_t next;                 /* the group's next block, or NONE */
	uint8_t n;
};

/* An old group as it was at the mark. */
struct saved {
	uint32_t group, last;
	uint8_t last_n;
};

struct table {
	uint32_t *slots;               /* index + 1; 0 = empty */
	size_t cap;
};

struct head {
	struct series *series;
	size_t nseries, series_cap;
	struct group *groups;
	size_t ngroups, groups_cap;
	struct block *blocks;
	size_t nblocks, blocks_cap;
	uint64_t *reqs;                /* the version of each request added */
	size_t nreqs, reqs_cap;
	size_t nrecs;
	char *names;
	size_t names_len, names_cap;
	struct table series_tab, group_tab;
	/* rollback */
	size_t mark_series, mark_groups, mark_blocks, mark_reqs, mark_recs, mark_names;
	uint32_t generation;
	struct saved *saved;
	size_t nsaved, saved_cap;
	/* sealing: group indexes in key order */
	uint32_t *order;
	size_t order_cap;
};

/* ---- hashing ---- */

/* Eight bytes at a time, then a final mix: names are hashed once per record. */
uint64_t head_name_hash(uint32_t source_id, const char *name, size_t len)
{
	uint64_t h = ((uint64_t)source_id << 32 | len) * MIX_MUL, w;
	size_t i = 0;

	for (; i + sizeof(w) <= len; i += sizeof(w)) {
		memcpy(&w, name + i, sizeof(w));
		h = (h ^ w) * MIX_MUL;
		h ^= h >> 32;
	}
	if (i < len) {
		w = 0;
		memcpy(&w, name + i, len - i);
		h = (h ^ w) * MIX_MUL;
	}
	return h ^ (h >> 29);
}

static uint64_t group_hash(uint32_t series, int64_t bucket)
{
	uint64_t x = ((uint64_t)series << 32) ^ (uint64_t)bucket;

	x *= MIX_MUL;
	return x ^ (x >> 29);
}

/* Room for need items; the n existing ones are rehashed. */
static int table_grow(struct table *t, size_t n, size_t need,
		      uint64_t (*hash_of)(const struct head *, uint32_t), const struct head *h)
{
	size_t cap = t->cap ? t->cap * 2 : HASH_INITIAL;
	uint32_t *slots;

	while (cap < need * HASH_LOAD_DIV)
		cap *= 2;
	slots = calloc(cap, sizeof(*slots));
	if (slots == NULL)
		return -1;
	/* Index order: a newer item never sits on an older one's probe path. */
	for (uint32_t i = 0; i < n; i++) {
		size_t s = hash_of(h, i) & (cap - 1);

		while (slots[s] != 0)
			s = (s + 1) & (cap - 1);
		slots[s] = i + 1;
	}
	free(t->slots);
	t->slots = slots;
	t->cap = cap;
	return 0;
}

static uint64_t series_hash_of(const struct head *h, uint32_t i)
{
	return h->series[i].hash;
}

static uint64_t group_hash_of(const struct head *h, uint32_t i)
{
	return group_hash(h->groups[i].series, h->groups[i].bucket);
}

/* Clears the slot holding index i (only ever the newest item: probing stays intact). */
static void table_remove(struct table *t, uint64_t hash, uint32_t i)
{
	for (size_t s = hash & (t->cap - 1);; s = (s + 1) & (t->cap - 1)) {
		if (t->slots[s] == i + 1) {
			t->slots[s] = 0;
			return;
		}
		if (t->slots[s] == 0)
			return;
	}
}

/* ---- lifetime ---- */

struct head *head_new(void)
{
	return calloc(1, sizeof(struct head));
}

void head_free(struct head *h)
{
	if (h == NULL)
		return;
	free(h->series);
	free(h->groups);
	free(h->blocks);
	free(h->reqs);
	free(h->names);
	free(h->series_tab.slots);
	free(h->group_tab.slots);
	free(h->saved);
	free(h->order);
	free(h);
}

void head_clear(struct head *h)
{
	if (h->series_tab.slots != NULL)
		memset(h->series_tab.slots, 0, h->series_tab.cap * sizeof(uint32_t));
	if (h->group_tab.slots != NULL)
		memset(h->group_tab.slots, 0, h->group_tab.cap * sizeof(uint32_t));
	h->nseries = h->ngroups = h->nblocks = h->nreqs = h->nrecs = h->names_len = 0;
	h->mark_series = h->mark_groups = h->mark_blocks = h->mark_reqs = h->mark_recs = 0;
	h->mark_names = 0;
	h->nsaved = 0;
}

size_t head_records(const struct head *h)
{
	return h->nrecs;
}

size_t head_groups(const struct head *h)
{
	return h->ngroups;
}

size_t head_bytes(const struct head *h)
{
	return h->series_cap * sizeof(struct series) + h->groups_cap * sizeof(struct group) +
	       h->blocks_cap * sizeof(struct block) + h->reqs_cap * sizeof(uint64_t) +
	       h->names_cap +
	       (h->series_tab.cap + h->group_tab.cap) * sizeof(uint32_t);
}

/* ---- lookups ---- */

static const char *series_name(const struct head *h, const struct series *s)
{
	return h->names + s->name_off;
}

static int64_t series_find(const struct head *h, uint32_t source_id, const char *name,
			   size_t len, uint64_t hash, size_t *slot)
{
	const struct table *t = &h->series_tab;

	if (t->cap == 0)
		return -1;
	for (size_t s = hash & (t->cap - 1);; s = (s + 1) & (t->cap - 1)) {
		uint32_t v = t->slots[s];
		const struct series *se;

		if (v == 0) {
			*slot = s;
			return -1;
		}
		se = &h->series[v - 1];
		if (se->hash == hash && se->source_id == source_id && se->name_len == len &&
		    memcmp(series_name(h, se), name, len) == 0)
			return v - 1;
	}
}

static int64_t group_find(const struct head *h, uint32_t series, int64_t bucket, size_t *slot)
{
	const struct table *t = &h->group_tab;

	if (t->cap == 0)
		return -1;
	for (size_t s = group_hash(series, bucket) & (t->cap - 1);; s = (s + 1) & (t->cap - 1)) {
		uint32_t v = t->slots[s];

		if (v == 0) {
			*slot = s;
			return -1;
		}
		if (h->groups[v - 1].series == series && h->groups[v - 1].bucket == bucket)
			return v - 1;
	}
}

/* ---- adding ---- */

/* Room for n more records (names_bytes of new names at most): every array and both
 * tables, so that nothing moves while they are added. 0 or -1. */
static int reserve(struct head *h, size_t n, size_t names_bytes)
{
	void *p;

	p = h->series;
	if (vec_reserve(&p, &h->series_cap, h->nseries + n, sizeof(*h->series), GROUPS_INITIAL))
		return -1;
	h->series = p;
	p = h->groups;
	if (vec_reserve(&p, &h->groups_cap, h->ngroups + n, sizeof(*h->groups), GROUPS_INITIAL))
		return -1;
	h->groups = p;
	p = h->blocks;
	if (vec_reserve(&p, &h->blocks_cap, h->nblocks + n, sizeof(*h->blocks), BLOCKS_INITIAL))
		return -1;
	h->blocks = p;
	p = h->reqs;
	if (vec_reserve(&p, &h->reqs_cap, h->nreqs + n, sizeof(*h->reqs), REQS_INITIAL))
		return -1;
	h->reqs = p;
	p = h->names;
	if (vec_reserve(&p, &h->names_cap, h->names_len + names_bytes, 1, NAMES_INITIAL))
		return -1;
	h->names = p;
	p = h->saved;
	if (vec_reserve(&p, &h->saved_cap, h->nsaved + n, sizeof(*h->saved), TOUCHED_INITIAL))
		return -1;
	h->saved = p;
	if ((h->nseries + n) * HASH_LOAD_DIV > h->series_tab.cap &&
	    table_grow(&h->series_tab, h->nseries, h->nseries + n, series_hash_of, h) != 0)
		return -1;
	if ((h->ngroups + n) * HASH_LOAD_DIV > h->group_tab.cap &&
	    table_grow(&h->group_tab, h->ngroups, h->ngroups + n, group_hash_of, h) != 0)
		return -1;
	return 0;
}

static uint32_t series_get(struct head *h, uint32_t source_id, const char *name, size_t len,
			   uint64_t hash)
{
	size_t slot = 0;
	int64_t i = series_find(h, source_id, name, len, hash, &slot);
	struct series *s;

	if (i >= 0)
		return (uint32_t)i;
	s = &h->series[h->nseries];
	*s = (struct series){ .hash = hash, .source_id = source_id,
			      .name_off = (uint32_t)h->names_len, .name_len = (uint32_t)len,
			      .first_group = NONE, .last_group = NONE };
	memcpy(h->names + h->names_len, name, len);
	h->names_len += len;
	h->series_tab.slots[slot] = (uint32_t)++h->nseries;
	return (uint32_t)(h->nseries - 1);
}

static uint32_t group_get(struct head *h, uint32_t si, int64_t bucket)
{
	struct series *s = &h->series[si];
	size_t slot = 0;
	int64_t i;
	struct group *g;

	if (s->last_group != NONE && h->groups[s->last_group].bucket == bucket)
		return s->last_group;
	i = group_find(h, si, bucket, &slot);
	if (i < 0) {
		g = &h->groups[h->ngroups];
		*g = (struct group){ .bucket = bucket, .series = si, .first = NONE, .last = NONE,
				     .next_in_series = s->first_group,
				     .touched = h->generation };
		s->first_group = (uint32_t)h->ngroups;
		h->group_tab.slots[slot] = (uint32_t)++h->ngroups;
		i = (int64_t)(h->ngroups - 1);
	}
	s->last_group = (uint32_t)i;
	return (uint32_t)i;
}

/* The request of a record: records of one request come one after the other. */
static uint32_t request_of(struct head *h, uint64_t version)
{
	if (h->nreqs == h->mark_reqs || h->reqs[h->nreqs - 1] != version)
		h->reqs[h->nreqs++] = version;
	return (uint32_t)(h->nreqs - 1);
}

static uint32_t block_new(struct head *h)
{
	struct block *b = &h->blocks[h->nblocks];

	b->next = NONE;
	b->n = 0;
	return (uint32_t)h->nblocks++;
}

/* One record; the arrays and tables have room (reserve). */
static void add_one(struct head *h, uint32_t source_id, const struct head_item *it)
{
	uint32_t gi = group_get(h, series_get(h, source_id, it->name, it->name_len, it->hash),
				it->bucket);
	struct group *g = &h->groups[gi];
	struct block *b;

	if (g->touched != h->generation) {
		/* An old group: remember its end so a rollback can cut it back. */
		h->saved[h->nsaved++] = (struct saved){ gi, g->last, h->blocks[g->last].n };
		g->touched = h->generation;
	}
	if (g->last == NONE) {
		g->first = g->last = block_new(h);
	} else if (h->blocks[g->last].n == BLOCK_ENTRIES) {
		uint32_t bi = block_new(h);

		h->blocks[g->last].next = bi;
		g->last = bi;
	}
	b = &h->blocks[g->last];
	b->e[b->n++] = (struct hentry){ .bits = it->e.bits, .req = request_of(h, it->e.version),
					.off = it->e.off, .type = it->e.type };
	h->nrecs++;
}

/*
 * Records are looked up a few ahead of the one being added: the slot of record
 * i + PREFETCH_SLOT, the series that slot names for i + PREFETCH_SERIES, and that
 * series' last group and name for i + PREFETCH_GROUP, so the cache misses of many
 * records overlap instead of queueing one after another.
 */
static void prefetch_ahead(const struct head *h, const struct head_item *items, size_t i,
			   size_t n)
{
	size_t mask = h->series_tab.cap - 1;
	uint32_t v;

	if (i + PREFETCH_SLOT < n)
		__builtin_prefetch(&h->series_tab.slots[items[i + PREFETCH_SLOT].hash & mask]);
	if (i + PREFETCH_SERIES < n &&
	    (v = h->series_tab.slots[items[i + PREFETCH_SERIES].hash & mask]) != 0)
		__builtin_prefetch(&h->series[v - 1]);
	if (i + PREFETCH_GROUP < n &&
	    (v = h->series_tab.slots[items[i + PREFETCH_GROUP].hash & mask]) != 0) {
		const struct series *s = &h->series[v - 1];

		__builtin_prefetch(h->names + s->name_off);
		if (s->last_group != NONE && s->last_group < h->ngroups)
			__builtin_prefetch(&h->groups[s->last_group]);
	}
}

int head_add_many(struct head *h, uint32_t source_id, struct head_item *items, size_t n)
{
	size_t names = 0;

	for (size_t i = 0; i < n; i++) {
		items[i].hash = head_name_hash(source_id, items[i].name, items[i].name_len);
		names += items[i].name_len;
	}
	if (n == 0 || reserve(h, n, names) != 0)
		return n == 0 ? 0 : -1;
	for (size_t i = 0; i < n; i++) {
		prefetch_ahead(h, items, i, n);
		add_one(h, source_id, &items[i]);
	}
	return 0;
}

int head_add(struct head *h, uint32_t source_id, const char *name, size_t name_len,
	     int64_t bucket, const struct chunk_entry *e)
{
	struct head_item it = { .name = name, .name_len = (uint16_t)name_len, .bucket = bucket,
				.e = *e };

	return head_add_many(h, source_id, &it, 1);
}

/* Every record of a group, oldest first, with its request's version. */
static void group_each(const struct head *h, const struct group *g,
		       void (*cb)(const struct chunk_entry *e, void *arg), void *arg)
{
	for (uint32_t bi = g->first; bi != NONE; bi = h->blocks[bi].next) {
		const struct block *b = &h->blocks[bi];

		for (unsigned i = 0; i < b->n; i++) {
			struct chunk_entry e = { .version = h->reqs[b->e[i].req], .bits = b->e[i].bits,
						 .off = b->e[i].off, .type = b->e[i].type };

			cb(&e, arg);
		}
	}
}

/* ---- rollback ---- */

void head_mark(struct head *h)
{
	h->mark_series = h->nseries;
	h->mark_groups = h->ngroups;
	h->mark_blocks = h->nblocks;
	h->mark_reqs = h->nreqs;
	h->mark_recs = h->nrecs;
	h->mark_names = h->names_len;
	h->nsaved = 0;
	/* New groups carry the new generation: they are removed, not cut back. */
	h->generation++;
}

size_t head_groups_since_mark(const struct head *h)
{
	return (h->ngroups - h->mark_groups) + h->nsaved;
}

void head_rollback(struct head *h)
{
	for (size_t i = h->nsaved; i-- > 0;) {
		struct group *g = &h->groups[h->saved[i].group];

		g->last = h->saved[i].last;
		h->blocks[g->last].next = NONE;
		h->blocks[g->last].n = h->saved[i].last_n;
	}
	while (h->ngroups > h->mark_groups) {
		uint32_t gi = (uint32_t)--h->ngroups;
		struct group *g = &h->groups[gi];

		table_remove(&h->group_tab, group_hash(g->series, g->bucket), gi);
		h->series[g->series].first_group = g->next_in_series;
		if (h->series[g->series].last_group == gi)
			h->series[g->series].last_group = NONE;
	}
	while (h->nseries > h->mark_series) {
		uint32_t si = (uint32_t)--h->nseries;

		table_remove(&h->series_tab, h->series[si].hash, si);
	}
	h->nblocks = h->mark_blocks;
	h->nreqs = h->mark_reqs;
	h->nrecs = h->mark_recs;
	h->names_len = h->mark_names;
	h->nsaved = 0;
}

/* ---- reads ---- */

static int64_t series_lookup(const struct head *h, uint32_t source_id, const char *name,
			     size_t len)
{
	size_t slot;

	return series_find(h, source_id, name, len, head_name_hash(source_id, name, len), &slot);
}

bool head_each_entry(const struct head *h, uint32_t source_id, const char *name,
		     size_t name_len, int64_t bucket, head_entry_cb cb, void *arg)
{
	int64_t si = series_lookup(h, source_id, name, name_len), gi;
	size_t slot;

	if (si < 0 || (gi = group_find(h, (uint32_t)si, bucket, &slot)) < 0)
		return false;
	group_each(h, &h->groups[gi], cb, arg);
	return true;
}

static int bucket_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

size_t head_buckets(const struct head *h, uint32_t source_id, const char *name,
		    size_t name_len, int64_t lo, int64_t hi, int64_t *out, size_t cap)
{
	int64_t si = series_lookup(h, source_id, name, name_len);
	size_t n = 0;

	if (si < 0)
		return 0;
	for (uint32_t g = h->series[si].first_group; g != NONE; g = h->groups[g].next_in_series) {
		int64_t b = h->groups[g].bucket;

		if (b < lo || b > hi)
			continue;
		if (n < cap)
			out[n] = b;
		n++;
	}
	if (n > 1 && n <= cap)  /* qsort's array must not be NULL, even for 0 */
		qsort(out, n, sizeof(*out), bucket_cmp);
	return n;
}

/* The smallest (or largest) timestamp a group holds. */
static int64_t group_edge(const struct head *h, const struct group *g, bool last)
{
	uint16_t off = last ? 0 : UINT16_MAX;

	for (uint32_t bi = g->first; bi != NONE; bi = h->blocks[bi].next)
		for (unsigned i = 0; i < h->blocks[bi].n; i++) {
			uint16_t o = h->blocks[bi].e[i].off;

			if (last ? o > off : o < off)
				off = o;
		}
	return (int64_t)((uint64_t)g->bucket | off);
}

int head_each_series(const struct head *h, uint32_t source_id, head_series_cb cb, void *arg)
{
	for (size_t i = 0; i < h->nseries; i++) {
		const struct series *s = &h->series[i];
		const struct group *first = NULL, *last = NULL;
		int rc;

		if (s->source_id != source_id || s->first_group == NONE)
			continue;
		for (uint32_t g = s->first_group; g != NONE; g = h->groups[g].next_in_series) {
			if (first == NULL || h->groups[g].bucket < first->bucket)
				first = &h->groups[g];
			if (last == NULL || h->groups[g].bucket > last->bucket)
				last = &h->groups[g];
		}
		rc = cb(series_name(h, s), s->name_len, group_edge(h, first, false),
			group_edge(h, last, true), arg);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* ---- sealing ---- */

/* Record key order within a source: partition, name bytes (a shorter name first),
 * then bucket. */
static int key_cmp(const struct head *h, uint32_t a, uint32_t b)
{
	const struct group *ga = &h->groups[a], *gb = &h->groups[b];
	const struct series *sa = &h->series[ga->series], *sb = &h->series[gb->series];
	size_t n = sa->name_len < sb->name_len ? sa->name_len : sb->name_len;
	int64_t pa = codec_partition(ga->bucket), pb = codec_partition(gb->bucket);
	int c;

	if (sa->source_id != sb->source_id)
		return sa->source_id < sb->source_id ? -1 : 1;
	if (pa != pb)
		return pa < pb ? -1 : 1;
	if (ga->series != gb->series) {
		c = memcmp(series_name(h, sa), series_name(h, sb), n);
		if (c != 0)
			return c;
		if (sa->name_len != sb->name_len)
			return sa->name_len < sb->name_len ? -1 : 1;
	}
	return ga->bucket < gb->bucket ? -1 : ga->bucket > gb->bucket;
}

static const struct head *sort_head;   /* qsort has no context argument */

static void offer_fold(const struct chunk_entry *e, void *arg)
{
	chunk_fold_offer(arg, e);
}

static int order_cmp(const void *a, const void *b)
{
	return key_cmp(sort_head, *(const uint32_t *)a, *(const uint32_t *)b);
}

int head_each_group(struct head *h, struct chunk_entry *out, size_t span, head_group_cb cb,
		    void *arg)
{
	uint64_t used[(CHUNK_OFFSET_MAX + 1) / 64];
	struct chunk_fold fold = { .span = span, .used = used, .slots = out };
	struct chunk_entry *winners;
	void *p = h->order;
	int rc = 0;

	if (vec_reserve(&p, &h->order_cap, h->ngroups, sizeof(*h->order), GROUPS_INITIAL) != 0)
		return -1;
	h->order = p;
	for (size_t i = 0; i < h->ngroups; i++)
		h->order[i] = (uint32_t)i;
	sort_head = h;
	if (h->ngroups > 1)  /* qsort's array must not be NULL, even for 0 */
		qsort(h->order, h->ngroups, sizeof(*h->order), order_cmp);
	memset(used, 0, (span + 63) / 64 * sizeof(uint64_t));
	winners = out + span;
	for (size_t i = 0; i < h->ngroups && rc == 0; i++) {
		const struct group *g = &h->groups[h->order[i]];
		const struct series *s = &h->series[g->series];
		size_t n;

		group_each(h, g, offer_fold, &fold);
		n = chunk_fold_drain(&fold, winners);
		rc = cb(s->source_id, series_name(h, s), s->name_len, g->bucket, winners, n, arg);
	}
	return rc;
}
