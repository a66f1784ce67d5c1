/*
 * store_batch.c - the group commit (store_batch.h): queued records are grouped per
 * (source, series, bucket) in a hash table as they arrive; at commit each group is
 * folded into one merge operand (codec_slots), the operands are written sorted by
 * key, and the version high-water mark rides in the same atomic WriteBatch.
 * A batch owns its WriteBatch and arrays; store_batch_free releases them.
 */
#include "temporis/data/store_batch.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <rocksdb/c.h>

#include "store_impl.h"
#include "temporis/base/buf.h"
#include "temporis/base/log.h"
#include "temporis/data/codec.h"

/* Batch sizing: first allocations, and the hash table kept at most half full. */
#define STORE_RECS_INITIAL 1024
#define STORE_GROUPS_INITIAL 256
#define STORE_HASH_INITIAL 512
#define STORE_HASH_LOAD_DIV 2
#define STORE_NONE UINT32_MAX /* end of a group's record list */
#define STORE_BATCH_MAX (UINT32_MAX - 1)
#define STORE_FNV_OFFSET 0xcbf29ce484222325ull
#define STORE_FNV_PRIME 0x100000001b3ull

/* One queued record, already encoded as the entry it becomes. */
struct queued_rec {
	uint8_t entry[CODEC_ENTRY_LEN];
	uint32_t next;                 /* next (later) record of its group, or STORE_NONE */
};

/* All records of a batch for one (source, series, bucket): one merge operand. */
struct group {
	rocksdb_column_family_handle_t *cf;
	const uint8_t *key;            /* set by batch_build, when keys stops moving */
	uint64_t hash;
	uint32_t source_id;
	uint32_t key_off, key_len;     /* into keys */
	uint32_t first, last;          /* records, oldest to newest */
	uint32_t slot;                 /* its index in the hash table */
};

/*
 * Records are grouped as they are queued (open-addressing hash table over the
 * groups, linked lists through recs); at commit only the groups are sorted by
 * (source, key), since RocksDB inserts sorted keys into its memtable markedly
 * faster, and each is folded into one operand. Every array is reused across
 * commits, so a warm batch allocates nothing per record.
 */
struct store_batch {
	rocksdb_writebatch_t *wb;
	uint64_t max_version;
	size_t count;                  /* records queued */
	struct queued_rec *recs;
	size_t recs_cap;
	struct group *groups;
	size_t ngroups, groups_cap;
	uint32_t *hash;                /* group index + 1, 0 = empty; power-of-two size */
	size_t hash_cap;
	uint8_t *keys;
	size_t keys_len, keys_cap;
	struct codec_slots slots;      /* empty between groups */
	uint8_t val[CODEC_VALUE_MAX];  /* the operand being built */
	bool built;                    /* wb holds the folded groups */
};

struct store_batch *store_batch_new(void)
{
	struct store_batch *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return NULL;
	b->wb = rocksdb_writebatch_create();
	if (b->wb == NULL) {
		free(b);
		return NULL;
	}
	return b;
}

void store_batch_free(struct store_batch *b)
{
	if (b == NULL)
		return;
	rocksdb_writebatch_destroy(b->wb);
	free(b->recs);
	free(b->groups);
	free(b->hash);
	free(b->keys);
	free(b);
}

/* Empties only the hash slots in use, so a clear costs O(groups), not O(table). */
void store_batch_clear(struct store_batch *b)
{
	for (size_t i = 0; i < b->ngroups; i++)
		b->hash[b->groups[i].slot] = 0;
	rocksdb_writebatch_clear(b->wb);
	b->max_version = 0;
	b->count = 0;
	b->ngroups = 0;
	b->keys_len = 0;
	b->built = false;
}

static uint64_t group_hash(uint32_t source_id, const uint8_t *key, size_t klen)
{
	uint64_t h = STORE_FNV_OFFSET ^ source_id;

	for (size_t i = 0; i < klen; i++) {
		h ^= key[i];
		h *= STORE_FNV_PRIME;
	}
	return h;
}

/* The group of (source_id, key), or NULL and the empty slot where it would go. */
static struct group *group_lookup(struct store_batch *b, uint32_t source_id,
				  const uint8_t *key, size_t klen, uint64_t h, size_t *slot)
{
	size_t mask = b->hash_cap - 1;

	for (size_t i = h & mask;; i = (i + 1) & mask) {
		struct group *g;

		if (b->hash[i] == 0) {
			*slot = i;
			return NULL;
		}
		g = &b->groups[b->hash[i] - 1];
		if (g->hash == h && g->source_id == source_id && g->key_len == klen &&
		    memcmp(b->keys + g->key_off, key, klen) == 0)
			return g;
	}
}

/* Doubles the hash table and reinserts every group. 0 or -1. */
static int hash_grow(struct store_batch *b)
{
	size_t cap = b->hash_cap ? b->hash_cap * 2 : STORE_HASH_INITIAL;
	uint32_t *n = calloc(cap, sizeof(*n));

	if (n == NULL)
		return -1;
	for (size_t gi = 0; gi < b->ngroups; gi++) {
		struct group *g = &b->groups[gi];
		size_t i = g->hash & (cap - 1);

		while (n[i] != 0)
			i = (i + 1) & (cap - 1);
		n[i] = (uint32_t)gi + 1;
		g->slot = (uint32_t)i;
	}
	free(b->hash);
	b->hash = n;
	b->hash_cap = cap;
	return 0;
}

/*
 * Room for one more record, group and key; nothing changes on failure. 0 or -1.
 * vec_reserve leaves an array as it was when it fails, so each is stored back.
 */
static int batch_reserve(struct store_batch *b, size_t klen)
{
	void *recs = b->recs, *groups = b->groups, *keys = b->keys;
	int rc = 0;

	if (vec_reserve(&recs, &b->recs_cap, b->count + 1, sizeof(*b->recs),
			STORE_RECS_INITIAL) != 0 ||
	    vec_reserve(&groups, &b->groups_cap, b->ngroups + 1, sizeof(*b->groups),
			STORE_GROUPS_INITIAL) != 0 ||
	    vec_reserve(&keys, &b->keys_cap, b->keys_len + klen, 1,
			STORE_GROUPS_INITIAL * CODEC_KEY_MAX) != 0)
		rc = -1;
	b->recs = recs;
	b->groups = groups;
	b->keys = keys;
	if (rc == 0 && (b->ngroups + 1) * STORE_HASH_LOAD_DIV > b->hash_cap)
		rc = hash_grow(b);
	return rc;
}

static struct group *group_get(struct store_batch *b, rocksdb_column_family_handle_t *cf,
			       uint32_t source_id, const uint8_t *key, size_t klen)
{
	uint64_t h = group_hash(source_id, key, klen);
	size_t slot;
	struct group *g = group_lookup(b, source_id, key, klen, h, &slot);

	if (g != NULL)
		return g;
	g = &b->groups[b->ngroups];
	*g = (struct group){ .cf = cf, .hash = h, .source_id = source_id,
			     .key_off = (uint32_t)b->keys_len, .key_len = (uint32_t)klen,
			     .first = STORE_NONE, .last = STORE_NONE, .slot = (uint32_t)slot };
	memcpy(b->keys + b->keys_len, key, klen);
	b->keys_len += klen;
	b->hash[slot] = (uint32_t)++b->ngroups;
	return g;
}

int store_batch_merge(struct store *st, struct store_batch *b, uint32_t source_id,
		      uint64_t version, const struct rec *r)
{
	rocksdb_column_family_handle_t *cf = store_source_cf(st, source_id);
	uint8_t key[CODEC_KEY_MAX];
	uint32_t i = (uint32_t)b->count;
	struct group *g;
	size_t klen;

	if (cf == NULL || r->name_len == 0 || r->name_len > REC_NAME_MAX ||
	    (r->type != REC_INT && r->type != REC_DOUBLE) || b->built ||
	    b->count >= STORE_BATCH_MAX)
		return -1;
	klen = codec_key_encode(key, r->name, r->name_len, codec_bucket(r->ts));
	if (batch_reserve(b, klen) != 0)
		return -1;
	g = group_get(b, cf, source_id, key, klen);
	codec_entry_encode(b->recs[i].entry, version, r);
	b->recs[i].next = STORE_NONE;
	if (g->first == STORE_NONE)
		g->first = i;
	else
		b->recs[g->last].next = i;
	g->last = i;
	if (version > b->max_version)
		b->max_version = version;
	b->count++;
	return 0;
}

size_t store_batch_count(const struct store_batch *b)
{
	return b->count;
}

size_t store_batch_operands(const struct store_batch *b)
{
	return b->built ? b->ngroups : 0;
}

static int group_cmp(const void *pa, const void *pb)
{
	const struct group *a = pa, *b = pb;
	size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
	int c;

	if (a->source_id != b->source_id)
		return a->source_id < b->source_id ? -1 : 1;
	c = memcmp(a->key, b->key, n);
	if (c != 0)
		return c;
	return a->key_len < b->key_len ? -1 : a->key_len > b->key_len;
}

/* Folds a group's records, oldest first, into one operand, like the merge operator. */
static void group_emit(struct store_batch *b, const struct group *g)
{
	size_t len;

	for (uint32_t i = g->first; i != STORE_NONE; i = b->recs[i].next)
		codec_slots_offer(&b->slots, b->recs[i].entry);
	len = codec_slots_drain(&b->slots, b->val);
	rocksdb_writebatch_merge_cf(b->wb, g->cf, (const char *)g->key, g->key_len,
				    (const char *)b->val, len);
}

/* Moves the groups (not the records): the hash table is stale until the next clear. */
static void batch_build(struct store_batch *b)
{
	for (size_t i = 0; i < b->ngroups; i++)
		b->groups[i].key = b->keys + b->groups[i].key_off;
	qsort(b->groups, b->ngroups, sizeof(*b->groups), group_cmp);
	for (size_t i = 0; i < b->ngroups; i++)
		group_emit(b, &b->groups[i]);
	b->built = true;
}

/*
 * The high-water mark rides in the same WriteBatch, so it is durable exactly when
 * the records are. A save point removes it afterwards: the batch stays as the
 * caller built it, ready for a retry.
 */
int store_batch_commit(struct store *st, struct store_batch *b, char *err, size_t errlen)
{
	uint64_t hwm = atomic_load(&st->hwm);
	uint8_t enc[CODEC_HWM_LEN];
	char *rerr = NULL;
	int rc;

	if (b->count == 0)
		return 0;
	if (!b->built)
		batch_build(b);
	if (b->max_version > hwm)
		hwm = b->max_version;
	codec_hwm_encode(enc, hwm);
	rocksdb_writebatch_set_save_point(b->wb);
	rocksdb_writebatch_put_cf(b->wb, st->cf_default, STORE_HWM_KEY, strlen(STORE_HWM_KEY),
				  (const char *)enc, sizeof(enc));
	rocksdb_write(st->db, st->wopts, b->wb, &rerr);
	rc = store_take_rerr(rerr, "write batch", err, errlen);
	rocksdb_writebatch_rollback_to_save_point(b->wb, &rerr);
	if (rerr != NULL) {
		/* Cannot happen with a save point just set; the extra put is harmless. */
		log_error("store: rollback to save point failed: %s", rerr);
		rocksdb_free(rerr);
	}
	if (rc == 0)
		atomic_store(&st->hwm, hwm);
	return rc;
}
