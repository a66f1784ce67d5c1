/*
 * store_batch.c - the group commit (store_batch.h): queued requests become one log
 * entry each (one RocksDB key per request, not per record) in one atomic
 * WriteBatch with the version high-water mark; under the head's lock their
 * records are folded into the active head first, and rolled back if the write
 * fails, so a reader never sees a record that is not committed.
 * A batch owns its WriteBatch and arrays; store_batch_free releases them.
 */
#include "temporis/data/store_batch.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <rocksdb/c.h>

#include "store_core.h"
#include "store_head.h"
#include "temporis/base/buf.h"
#include "temporis/base/clock.h"
#include "temporis/base/err.h"
#include "temporis/base/log.h"
#include "temporis/data/codec.h"

#define STAGED_INITIAL 64
#define OWN_INITIAL (64u << 10)
#define U32_LEN 4
#define U64_LEN 8
#define BYTE_BITS 8

/* One queued request; records queued one by one live in the batch's own buffer. */
struct staged {
	uint32_t source_id;
	uint32_t count;
	uint64_t version;
	const uint8_t *packed;         /* borrowed; NULL: own bytes at own_off */
	size_t own_off;
	size_t len;
};

struct store_batch {
	rocksdb_writebatch_t *wb;
	struct staged *staged;
	size_t nstaged, staged_cap;
	struct buf own;
	uint64_t max_version;
	size_t count;                  /* records queued */
	size_t operands;               /* groups of the last commit */
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
	free(b->staged);
	buf_free(&b->own);
	free(b);
}

void store_batch_clear(struct store_batch *b)
{
	rocksdb_writebatch_clear(b->wb);
	b->nstaged = 0;
	buf_reset(&b->own);
	b->max_version = 0;
	b->count = 0;
	b->operands = 0;
}

static struct staged *stage(struct store_batch *b)
{
	void *p = b->staged;

	if (vec_reserve(&p, &b->staged_cap, b->nstaged + 1, sizeof(*b->staged), STAGED_INITIAL))
		return NULL;
	b->staged = p;
	return &b->staged[b->nstaged++];
}

static bool records_valid(const uint8_t *packed, size_t len, uint32_t count)
{
	const uint8_t *p = packed, *end = packed + len;
	struct rec r;

	for (uint32_t i = 0; i < count; i++)
		if ((p = rec_decode(p, end, &r)) == NULL)
			return false;
	return p == end;
}

int store_batch_add(struct store *st, struct store_batch *b, uint32_t source_id,
		    uint64_t version, const uint8_t *packed, size_t len, uint32_t count)
{
	struct staged *s;

	if (store_source_cf(st, source_id) == NULL || !records_valid(packed, len, count)) {
		errno = EINVAL;
		return -1;
	}
	if ((s = stage(b)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	*s = (struct staged){ .source_id = source_id, .count = count, .version = version,
			      .packed = packed, .len = len };
	if (version > b->max_version)
		b->max_version = version;
	b->count += count;
	return 0;
}

int store_batch_merge(struct store *st, struct store_batch *b, uint32_t source_id,
		      uint64_t version, const struct rec *r)
{
	struct staged *s = b->nstaged ? &b->staged[b->nstaged - 1] : NULL;
	size_t need = rec_wire_size(r);

	if (store_source_cf(st, source_id) == NULL || r->name_len == 0 ||
	    r->name_len > REC_NAME_MAX || (r->type != REC_INT && r->type != REC_DOUBLE))
		return -1;
	if (buf_reserve(&b->own, need, OWN_INITIAL) != 0)
		return -1;
	/* Consecutive records of one source and version make one log entry. */
	if (s == NULL || s->packed != NULL || s->source_id != source_id || s->version != version) {
		if ((s = stage(b)) == NULL)
			return -1;
		*s = (struct staged){ .source_id = source_id, .version = version,
				      .own_off = b->own.len };
	}
	rec_encode((uint8_t *)b->own.data + b->own.len, r);
	b->own.len += need;
	s->len += need;
	s->count++;
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
	return b->operands;
}

static void put_le(uint8_t *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (BYTE_BITS * i));
}

/* The log entry of one request; its header bytes live in hdr until the write. */
static void log_entry(struct store *st, struct store_batch *b, const struct staged *s,
		      uint64_t seq, uint8_t key[STORE_LOG_KEY_LEN], uint8_t hdr[STORE_LOG_HDR_LEN])
{
	const char *keys[1] = { (const char *)key };
	size_t klens[1] = { STORE_LOG_KEY_LEN };
	const char *vals[2];
	size_t vlens[2] = { STORE_LOG_HDR_LEN, s->len };

	store_log_key(key, seq);
	put_le(hdr, s->source_id, U32_LEN);
	put_le(hdr + U32_LEN, s->version, U64_LEN);
	put_le(hdr + U32_LEN + U64_LEN, s->count, U32_LEN);
	vals[0] = (const char *)hdr;
	vals[1] = s->packed ? (const char *)s->packed : b->own.data + s->own_off;
	rocksdb_writebatch_putv_cf(b->wb, st->cf_log[st->heads.active_log], 1, keys, klens, 2,
				   vals, vlens);
}

/* Under the heads' lock: log entries into wb, records into the active head. */
static int build(struct store *st, struct store_batch *b, uint64_t *log_bytes)
{
	struct head *h = st->heads.active;

	head_mark(h);
	*log_bytes = 0;
	for (size_t i = 0; i < b->nstaged; i++) {
		const struct staged *s = &b->staged[i];
		const uint8_t *packed = s->packed ? s->packed : (const uint8_t *)b->own.data + s->own_off;
		uint8_t key[STORE_LOG_KEY_LEN], hdr[STORE_LOG_HDR_LEN];

		/* putv copies the parts: key and header may live on the stack. */
		log_entry(st, b, s, st->log_next + i, key, hdr);
		if (store_head_add_records(h, s->source_id, s->version, packed, s->len, s->count))
			return -1;
		*log_bytes += STORE_LOG_HDR_LEN + s->len;
	}
	return 0;
}

/*
 * A commit slower than this is logged with where its time went (waiting for the heads'
 * lock or for room, folding into the head, RocksDB's write), at most once a second:
 * the tail of the ingest latency is made of such commits.
 */
#define SLOW_COMMIT_US 20000u
#define SLOW_COMMIT_LOG_EVERY_US 1000000u
#define US_PER_MS 1000u

static void note_slow_commit(const struct store_batch *b, uint64_t t0, uint64_t t_locked,
			     uint64_t t_built, uint64_t t_end)
{
	static uint64_t last_log;

	if (t_end - t0 < SLOW_COMMIT_US || t_end - last_log < SLOW_COMMIT_LOG_EVERY_US)
		return;
	last_log = t_end;
	log_info("store: slow commit of %zu requests: %llu ms (lock and room %llu, head %llu, "
		 "write %llu)", b->nstaged, (unsigned long long)(t_end - t0) / US_PER_MS,
		 (unsigned long long)(t_locked - t0) / US_PER_MS,
		 (unsigned long long)(t_built - t_locked) / US_PER_MS,
		 (unsigned long long)(t_end - t_built) / US_PER_MS);
}

int store_batch_commit(struct store *st, struct store_batch *b, char *err, size_t errlen)
{
	uint64_t hwm = atomic_load(&st->hwm), log_bytes, t0 = mono_us(), t_locked, t_built;
	uint8_t enc[CODEC_HWM_LEN];
	char *rerr = NULL;
	int rc = -1;

	if (b->count == 0)
		return 0;
	rocksdb_writebatch_clear(b->wb);
	if (b->max_version > hwm)
		hwm = b->max_version;
	codec_hwm_encode(enc, hwm);
	pthread_mutex_lock(&st->heads.lock);
	store_heads_wait_room(st);
	t_locked = mono_us();
	if (build(st, b, &log_bytes) != 0) {
		err_set(err, errlen, "out of memory folding the batch into the head");
		goto fail;
	}
	t_built = mono_us();
	rocksdb_writebatch_put_cf(b->wb, st->cf_default, STORE_HWM_KEY, strlen(STORE_HWM_KEY),
				  (const char *)enc, sizeof(enc));
	rocksdb_write(st->db, st->wopts, b->wb, &rerr);
	if (rerr != NULL && store_rerr_is_nospace(rerr))
		rc = STORE_NOSPACE;
	if (store_take_rerr(rerr, "write batch", err, errlen) != 0)
		goto fail;
	b->operands = head_groups_since_mark(st->heads.active);
	st->log_next += b->nstaged;
	atomic_store(&st->hwm, hwm);
	store_heads_committed(st, log_bytes);
	note_slow_commit(b, t0, t_locked, t_built, mono_us());
	rc = 0;
	goto out;
fail:
	head_rollback(st->heads.active);
out:
	pthread_mutex_unlock(&st->heads.lock);
	return rc;
}
