/*
 * ring.c - the lock-free lanes between workers (producers) and the writer (consumer).
 *
 * Each lane is single-producer/single-consumer: the worker alone writes tail, the
 * writer alone writes committed and entry status. Positions only grow; an entry
 * never straddles the buffer end (a pad entry fills the gap instead).
 */
#include "temporis/ipc/ring.h"

#include <assert.h>
#include <errno.h>
#include <unistd.h>

#include "temporis/base/log.h"

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock free across processes");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock free across processes");

/* A pad carries only magic and len: the smallest entry-like thing in a lane. */
#define PAD_MIN_LEN 8u

static uint8_t *lane_at(struct lane *lane, uint64_t cap, uint64_t pos)
{
	return lane->data + (pos & (cap - 1));
}

/* ---- producer ---- */

void ring_producer_init(struct ring_producer *p, struct shm *shm, unsigned index)
{
	p->lane = shm_lane(shm, index);
	assert(p->lane->magic == SHM_LANE_MAGIC && p->lane->index == index);
	p->cap = shm->hdr->lane_capacity;
	/* Whatever a previous producer published stays queued; anything it reserved
	 * but never published lies above tail and is simply overwritten. */
	p->tail = atomic_load_explicit(&p->lane->tail, memory_order_acquire);
	p->released = atomic_load_explicit(&p->lane->committed, memory_order_acquire);
	/* Broken only by damaged memory; the writer then skips to tail and a respawn recovers. */
	assert(p->tail >= p->released && p->tail - p->released <= p->cap);
	p->reserved_pos = p->tail;
	p->reserved_len = 0;
	atomic_store_explicit(&p->lane->producer_pid, (int32_t)getpid(), memory_order_relaxed);
}

uint64_t ring_max_entry(const struct ring_producer *p)
{
	return p->cap;
}

static void pad_write(struct ring_producer *p, uint64_t pad)
{
	struct entry_hdr *h = (struct entry_hdr *)lane_at(p->lane, p->cap, p->tail);

	/* A pad may be only 8 bytes long: touch magic and len, nothing else. */
	h->magic = ENTRY_PAD_MAGIC;
	h->len = (uint32_t)pad;
}

/*
 * The pad fits but the entry after it does not. Publish the pad alone, so the
 * next attempt starts at the buffer's beginning; otherwise an entry larger than
 * half the lane could wait forever for a tail offset that never comes.
 */
static void pad_publish(struct ring_producer *p, uint64_t pad)
{
	pad_write(p, pad);
	p->tail += pad;
	p->reserved_pos = p->tail;
	atomic_store_explicit(&p->lane->tail, p->tail, memory_order_release);
}

struct entry_hdr *ring_reserve(struct ring_producer *p, uint32_t len, uint64_t *start)
{
	assert(p->reserved_len == 0);
	assert(len % ENTRY_ALIGN == 0 && len >= sizeof(struct entry_hdr));
	if (len > ring_max_entry(p)) {
		errno = EMSGSIZE;
		return NULL;
	}
	uint64_t free_bytes = p->cap - (p->tail - p->released);
	uint64_t to_end = p->cap - (p->tail & (p->cap - 1));
	uint64_t pad = to_end < len ? to_end : 0;

	if (pad + len > free_bytes) {
		if (pad > 0 && pad <= free_bytes)
			pad_publish(p, pad);
		errno = EAGAIN;
		return NULL;
	}
	if (pad > 0)
		pad_write(p, pad);
	p->reserved_pos = p->tail + pad;
	p->reserved_len = len;
	*start = p->reserved_pos;
	return (struct entry_hdr *)lane_at(p->lane, p->cap, p->reserved_pos);
}

uint64_t ring_publish(struct ring_producer *p)
{
	assert(p->reserved_len != 0);
	p->tail = p->reserved_pos + p->reserved_len;
	p->reserved_pos = p->tail;
	p->reserved_len = 0;
	/* Release: the header, payload and any pad before it are visible before tail. */
	atomic_store_explicit(&p->lane->tail, p->tail, memory_order_release);
	return p->tail;
}

uint64_t ring_committed(const struct ring_producer *p)
{
	/* Acquire: pairs with ring_view_end, so statuses below it are readable. */
	return atomic_load_explicit(&p->lane->committed, memory_order_acquire);
}

void ring_release(struct ring_producer *p, uint64_t pos)
{
	assert(pos >= p->released);
	assert(pos <= ring_committed(p));
	p->released = pos;
}

struct entry_hdr *ring_entry_at(const struct ring_producer *p, uint64_t start)
{
	return (struct entry_hdr *)lane_at(p->lane, p->cap, start);
}

uint64_t ring_used(const struct ring_producer *p)
{
	return p->tail - p->released;
}

/* ---- consumer ---- */

bool ring_view_begin(struct shm *shm, unsigned index, struct ring_view *v)
{
	v->lane = shm_lane(shm, index);
	v->cap = shm->hdr->lane_capacity;
	/* Only the consumer writes committed, so relaxed reads our own last store. */
	v->from = atomic_load_explicit(&v->lane->committed, memory_order_relaxed);
	/* Acquire: pairs with ring_publish; entries below tail are complete. */
	v->to = atomic_load_explicit(&v->lane->tail, memory_order_acquire);
	v->cursor = v->from;
	return v->from != v->to;
}

static struct entry_hdr *view_corrupt(struct ring_view *v, bool *corrupt, const char *why)
{
	log_error("ring lane %u corrupt at position %llu (view %llu..%llu): %s", v->lane->index,
	          (unsigned long long)v->cursor, (unsigned long long)v->from,
	          (unsigned long long)v->to, why);
	*corrupt = true;
	return NULL;
}

/* Checks a pad at the cursor; returns NULL if sound, else why not. */
static const char *pad_check(const struct entry_hdr *h, uint64_t avail, uint64_t to_end)
{
	if (h->len % ENTRY_ALIGN != 0 || h->len < PAD_MIN_LEN)
		return "pad length misaligned or too short";
	if (h->len != to_end)
		return "pad does not end at the buffer end";
	if (h->len > avail)
		return "pad extends past the published tail";
	return NULL;
}

/* Checks an entry at the cursor; returns NULL if sound, else why not. */
static const char *entry_check(const struct entry_hdr *h, uint64_t avail, uint64_t to_end)
{
	if (h->len % ENTRY_ALIGN != 0 || h->len < sizeof(struct entry_hdr))
		return "entry length misaligned or too short";
	if (h->len > avail)
		return "entry extends past the published tail";
	if (h->len > to_end)
		return "entry crosses the buffer end";
	if ((uint64_t)sizeof(struct entry_hdr) + h->payload_len > h->len)
		return "payload longer than the entry";
	return NULL;
}

struct entry_hdr *ring_view_next(struct ring_view *v, bool *corrupt)
{
	*corrupt = false;
	if (v->to < v->from || v->to - v->from > v->cap)
		return view_corrupt(v, corrupt, "tail out of range");
	while (v->cursor != v->to) {
		uint64_t avail = v->to - v->cursor;
		uint64_t to_end = v->cap - (v->cursor & (v->cap - 1));

		if (v->cursor % ENTRY_ALIGN != 0 || avail < PAD_MIN_LEN)
			return view_corrupt(v, corrupt, "position misaligned");
		struct entry_hdr *h = (struct entry_hdr *)lane_at(v->lane, v->cap, v->cursor);
		const char *why;

		if (h->magic == ENTRY_PAD_MAGIC) {
			why = pad_check(h, avail, to_end);
			if (why)
				return view_corrupt(v, corrupt, why);
			v->cursor += h->len;
			continue;
		}
		if (h->magic != ENTRY_MAGIC)
			return view_corrupt(v, corrupt, "bad magic");
		why = entry_check(h, avail, to_end);
		if (why)
			return view_corrupt(v, corrupt, why);
		v->cursor += h->len;
		return h;
	}
	return NULL;
}

void ring_entry_finish(struct entry_hdr *h, enum entry_status status)
{
	atomic_store_explicit(&h->status, (uint32_t)status, memory_order_release);
}

void ring_view_end(struct ring_view *v)
{
	/* Release: statuses written above are visible to a producer that sees committed. */
	atomic_store_explicit(&v->lane->committed, v->to, memory_order_release);
}
