/*
 * shm.c - the shared-memory region: layout from the config, mapping, the
 * double-buffered catalog snapshot (seqlock per slot) and the commit counters.
 *
 * Owns the mapping (shm_create/shm_destroy). The lanes inside it belong to
 * ring.c; this file only lays them out and stamps their headers.
 */
#include "temporis/ipc/shm.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "temporis/base/buf.h"
#include "temporis/base/clock.h"
#include "temporis/base/log.h"

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock free across processes");

/* Entry and pad lengths are uint32_t, so a lane never grows past 2 GiB. */
#define SHM_LANE_MAX (1ull << 31)
#define SHM_CATALOG_SLOTS 2u
/*
 * How long a reader waits on a current slot that stays odd. The writer only ever
 * rewrites the idle slot, so this means a writer died or memory is damaged; the
 * reader then serves the previous generation instead of hanging.
 */
#define CATALOG_STUCK_MS 250

const uint64_t shm_lat_bounds_us[SHM_LAT_BUCKETS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000,
};

/* Prometheus's client defaults, from 1 ms to 10 s. */
const uint64_t shm_req_lat_bounds_us[SHM_REQ_LAT_BUCKETS] = {
    1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000,
    10000000,
};

const uint64_t shm_batch_bounds[SHM_BATCH_BUCKETS] = {
    1, 5, 10, 50, 100, 500, 1000, 5000, 10000, 50000, 100000, 1000000,
};

/* Serialises publishers inside the writer process (it may publish from several threads). */
static pthread_mutex_t catalog_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t round_up(uint64_t n, uint64_t align)
{
	return (n + align - 1) & ~(align - 1);
}

static uint64_t lane_capacity_for(const struct cfg *cfg)
{
	uint64_t share = cfg->ring_size / (uint64_t)cfg->workers;
	uint64_t cap = SHM_LANE_MIN;

	while (cap * 2 <= share && cap * 2 <= SHM_LANE_MAX)
		cap *= 2;
	return cap;
}

static uint64_t lane_stride(uint64_t capacity)
{
	return round_up(sizeof(struct lane) + capacity, SHM_LINE);
}

static uint64_t catalog_offset(void)
{
	return round_up(sizeof(struct shm_header), SHM_LINE);
}

static uint64_t lanes_offset(void)
{
	return catalog_offset() +
	       SHM_CATALOG_SLOTS * round_up(sizeof(struct shm_catalog_slot), SHM_LINE);
}

size_t shm_layout_size(const struct cfg *cfg, uint64_t *lane_capacity)
{
	if (cfg->workers < 1 || cfg->workers > CFG_WORKERS_MAX)
		return 0;
	uint64_t cap = lane_capacity_for(cfg);

	if (lane_capacity)
		*lane_capacity = cap;
	/* A lane for every possible worker slot, so that SIGHUP can add workers to
	 * a running server. Lanes are sized for the configured workers; a lane that
	 * no worker ever uses is never touched and costs no memory. */
	return (size_t)(lanes_offset() + (uint64_t)CFG_WORKERS_MAX * lane_stride(cap));
}

static void header_init(struct shm_header *hdr, const struct cfg *cfg, uint64_t cap, size_t size)
{
	hdr->magic = SHM_MAGIC;
	hdr->nlanes = CFG_WORKERS_MAX;
	hdr->lane_capacity = cap;
	hdr->total_size = size;
	hdr->catalog_off = catalog_offset();
	hdr->lanes_off = lanes_offset();
	hdr->started_at = (int64_t)time(NULL);
	atomic_store_explicit(&hdr->next_version, 1, memory_order_relaxed);
	atomic_store_explicit(&hdr->catalog_gen, 0, memory_order_relaxed);
	atomic_store_explicit(&hdr->catalog_slot, 0, memory_order_relaxed);
}

int shm_create(const struct cfg *cfg, struct shm *out)
{
	uint64_t cap;
	size_t size = shm_layout_size(cfg, &cap);

	if (size == 0) {
		errno = EINVAL;
		return -1;
	}
	/* Anonymous shared memory is zero-filled and committed page by page on first touch. */
	void *base = mmap(NULL, size, PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		return -1;
	out->base = base;
	out->size = size;
	out->hdr = base;
	header_init(out->hdr, cfg, cap, size);
	for (unsigned i = 0; i < out->hdr->nlanes; i++) {
		struct lane *lane = shm_lane(out, i);

		lane->magic = SHM_LANE_MAGIC;
		lane->index = i;
		atomic_store_explicit(&lane->tail, 0, memory_order_relaxed);
		atomic_store_explicit(&lane->committed, 0, memory_order_relaxed);
		atomic_store_explicit(&lane->producer_pid, 0, memory_order_relaxed);
	}
	return 0;
}

void shm_destroy(struct shm *shm)
{
	if (shm->base && munmap(shm->base, shm->size) != 0)
		log_warn("munmap of the shared region failed: %s", strerror(errno));
	shm->base = NULL;
	shm->hdr = NULL;
	shm->size = 0;
}

struct lane *shm_lane(const struct shm *shm, unsigned index)
{
	assert(index < shm->hdr->nlanes);
	uint64_t off = shm->hdr->lanes_off + (uint64_t)index * lane_stride(shm->hdr->lane_capacity);

	return (struct lane *)((uint8_t *)shm->base + off);
}

struct shm_catalog_slot *shm_catalog_slot(const struct shm *shm, unsigned index)
{
	assert(index < SHM_CATALOG_SLOTS);
	uint64_t off =
	    shm->hdr->catalog_off + index * round_up(sizeof(struct shm_catalog_slot), SHM_LINE);

	return (struct shm_catalog_slot *)((uint8_t *)shm->base + off);
}

/* Seqlock write of one slot. Caller holds catalog_lock. */
static void slot_write(struct shm_catalog_slot *slot, const uint8_t *bytes, size_t len)
{
	uint64_t s = atomic_load_explicit(&slot->seq, memory_order_relaxed);
	/* An odd seq left by a writer that died mid-write: move on so readers see a change. */
	uint64_t odd = (s & 1) ? s + 2 : s + 1;

	atomic_store_explicit(&slot->seq, odd, memory_order_release);
	/* Keeps the copy below from being seen before the odd seq. */
	atomic_thread_fence(memory_order_seq_cst);
	slot->len = len;
	memcpy(slot->bytes, bytes, len);
	atomic_store_explicit(&slot->seq, odd + 1, memory_order_release);
}

int shm_catalog_publish(struct shm *shm, const uint8_t *bytes, size_t len)
{
	if (len > SHM_CATALOG_SLOT_BYTES) {
		errno = EMSGSIZE;
		return -1;
	}
	int rc = pthread_mutex_lock(&catalog_lock);
	if (rc != 0) {
		errno = rc;
		return -1;
	}
	struct shm_header *hdr = shm->hdr;
	unsigned idle = 1u - atomic_load_explicit(&hdr->catalog_slot, memory_order_relaxed);

	slot_write(shm_catalog_slot(shm, idle), bytes, len);
	/* Slot before gen: a reader that sees the new gen also sees the new slot. */
	atomic_store_explicit(&hdr->catalog_slot, idle, memory_order_release);
	atomic_fetch_add_explicit(&hdr->catalog_gen, 1, memory_order_release);
	rc = pthread_mutex_unlock(&catalog_lock);
	if (rc != 0) {
		errno = rc;
		return -1;
	}
	return 0;
}

enum slot_read_result { SLOT_COPIED, SLOT_BUSY, SLOT_TORN, SLOT_NOMEM };

/* One seqlock read attempt of slot into *buf. */
static enum slot_read_result slot_read_once(struct shm_catalog_slot *slot, uint8_t **buf,
                                            size_t *cap, size_t *len)
{
	uint64_t s1 = atomic_load_explicit(&slot->seq, memory_order_acquire);

	if (s1 & 1)
		return SLOT_BUSY;
	size_t n = slot->len;
	/* A torn len can be anything; never trust it for an allocation. */
	if (n > SHM_CATALOG_SLOT_BYTES)
		return SLOT_TORN;
	/* Never NULL, even for an empty snapshot: the caller decodes what it holds. */
	if (vec_reserve((void **)buf, cap, n ? n : 1, 1, n ? n : 1) != 0)
		return SLOT_NOMEM;
	memcpy(*buf, slot->bytes, n);
	atomic_thread_fence(memory_order_acquire);
	if (atomic_load_explicit(&slot->seq, memory_order_relaxed) != s1)
		return SLOT_TORN;
	*len = n;
	return SLOT_COPIED;
}

/* The current slot stayed odd: serve the other one without claiming its generation. */
static int catalog_fallback(struct shm *shm, unsigned stuck, uint8_t **buf, size_t *cap,
                            size_t *len)
{
	log_warn("catalog slot %u stays mid-write; serving the previous snapshot", stuck);
	enum slot_read_result r = slot_read_once(shm_catalog_slot(shm, 1u - stuck), buf, cap, len);

	if (r == SLOT_NOMEM)
		return -1;
	return r == SLOT_COPIED ? 1 : 0;
}

int shm_catalog_fetch(struct shm *shm, uint64_t *gen, uint8_t **buf, size_t *cap, size_t *len)
{
	struct shm_header *hdr = shm->hdr;
	int64_t busy_since = -1;

	for (;;) {
		uint64_t g = atomic_load_explicit(&hdr->catalog_gen, memory_order_acquire);
		if (g == *gen)
			return 0;
		unsigned idx = atomic_load_explicit(&hdr->catalog_slot, memory_order_acquire);
		enum slot_read_result r = slot_read_once(shm_catalog_slot(shm, idx), buf, cap, len);

		if (r == SLOT_NOMEM)
			return -1;
		/* A newer publication raced the copy: take that one instead. */
		if (atomic_load_explicit(&hdr->catalog_gen, memory_order_acquire) != g ||
		    atomic_load_explicit(&hdr->catalog_slot, memory_order_acquire) != idx) {
			busy_since = -1;
			continue;
		}
		if (r == SLOT_COPIED) {
			*gen = g;
			return 1;
		}
		if (r == SLOT_BUSY) {
			int64_t now = (int64_t)mono_ms();
			if (busy_since < 0)
				busy_since = now;
			else if (now - busy_since > CATALOG_STUCK_MS)
				return catalog_fallback(shm, idx, buf, cap, len);
		}
		sched_yield();
	}
}

void shm_stats_commit(struct shm *shm, uint64_t records, uint64_t entries, uint64_t micros)
{
	struct shm_stats *st = &shm->hdr->stats;
	unsigned bucket = 0, batch = 0;

	while (bucket < SHM_LAT_BUCKETS && micros > shm_lat_bounds_us[bucket])
		bucket++;
	while (batch < SHM_BATCH_BUCKETS && records > shm_batch_bounds[batch])
		batch++;
	atomic_fetch_add_explicit(&st->records_committed, records, memory_order_relaxed);
	atomic_fetch_add_explicit(&st->entries_committed, entries, memory_order_relaxed);
	atomic_fetch_add_explicit(&st->commits, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&st->commit_us_sum, micros, memory_order_relaxed);
	atomic_fetch_add_explicit(&st->commit_lat[bucket], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&st->commit_batch[batch], 1, memory_order_relaxed);
}

double shm_ring_fill(const struct shm *shm)
{
	uint64_t fullest = 0;

	for (unsigned i = 0; i < shm->hdr->nlanes; i++) {
		struct lane *l = shm_lane(shm, i);
		/* committed first: tail only grows after it, so tail >= committed. */
		uint64_t committed = atomic_load_explicit(&l->committed, memory_order_acquire);
		uint64_t tail = atomic_load_explicit(&l->tail, memory_order_acquire);
		uint64_t used = tail > committed ? tail - committed : 0;

		if (used > fullest)
			fullest = used;
	}
	if (fullest > shm->hdr->lane_capacity)
		fullest = shm->hdr->lane_capacity;
	return (double)fullest / (double)shm->hdr->lane_capacity;
}
