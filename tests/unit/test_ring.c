/*
 * test_ring.c - the shared region and its lanes: wrap-around, back-pressure, status
 * hand-off, a million entries between two processes, a producer killed mid-entry,
 * corruption detection, and the double-buffered catalog snapshot.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "temporis/ipc/ring.h"
#include "temporis/ipc/shm.h"

#define MIB (1ull << 20)
#define PAYLOAD_SPREAD 249u      /* payload sizes vary over [8, 8 + spread) */
#define BIG_PAYLOAD_SPREAD 6000u /* for wrap-around: entries large enough to need pads */
#define MILLION 1000000ull
#define TRANSFER_DEADLINE_S 30 /* generous for sanitizer builds; a plain build needs ~1 s */
#define FULL_ENTRY_LEN 4096u
#define EARLY_DRAIN_EVERY 97u
#define SNAPSHOTS 20000ull
#define PUBLISH_YIELD_EVERY 4u
#define SNAPSHOT_SPREAD 65536u /* snapshot sizes vary over [8, 8 + spread) */

/* ---- helpers ---- */

static void shm_setup(struct shm *shm, uint64_t ring_size, int workers)
{
	struct cfg cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.ring_size = ring_size;
	cfg.workers = workers;
	assert_int_equal(shm_create(&cfg, shm), 0);
}

static uint32_t payload_len_for(uint64_t seq, uint32_t spread)
{
	return 8u + (uint32_t)((seq * 7919u) % spread);
}

static void payload_fill(uint8_t *dst, uint64_t seq, uint32_t len)
{
	memcpy(dst, &seq, sizeof(seq));
	for (uint32_t k = sizeof(seq); k < len; k++)
		dst[k] = (uint8_t)(seq + k);
}

/* true if h is the intact entry for seq */
static bool entry_intact(const struct entry_hdr *h, uint64_t seq, uint32_t spread)
{
	uint32_t len = payload_len_for(seq, spread);
	const uint8_t *pl = entry_payload(h);
	uint64_t got;

	if (h->magic != ENTRY_MAGIC || h->version != seq || h->payload_len != len ||
	    h->len != entry_size(len) || h->nrecords != (uint32_t)seq % 7u || h->source_id != 42u)
		return false;
	memcpy(&got, pl, sizeof(got));
	if (got != seq)
		return false;
	for (uint32_t k = sizeof(seq); k < len; k++)
		if (pl[k] != (uint8_t)(seq + k))
			return false;
	return true;
}

/* Reserve, fill and publish entry seq; false when the lane is full. */
static bool push(struct ring_producer *p, uint64_t seq, uint32_t spread, uint64_t *start)
{
	uint32_t plen = payload_len_for(seq, spread);
	struct entry_hdr *h = ring_reserve(p, entry_size(plen), start);

	if (!h)
		return false;
	h->magic = ENTRY_MAGIC;
	h->len = entry_size(plen);
	h->version = seq;
	h->source_id = 42;
	h->nrecords = (uint32_t)seq % 7u;
	atomic_store_explicit(&h->status, ENTRY_PENDING, memory_order_relaxed);
	h->payload_len = plen;
	payload_fill((uint8_t *)(h + 1), seq, plen);
	ring_publish(p);
	return true;
}

/* Drain lane 0 in one view, checking sequence; returns entries read. */
static uint64_t drain(struct shm *shm, uint64_t *next_seq, uint32_t spread)
{
	struct ring_view v;
	struct entry_hdr *h;
	bool corrupt;
	uint64_t n = 0;

	if (!ring_view_begin(shm, 0, &v))
		return 0;
	while ((h = ring_view_next(&v, &corrupt)) != NULL) {
		assert_true(entry_intact(h, *next_seq, spread));
		ring_entry_finish(h, ENTRY_COMMITTED);
		(*next_seq)++;
		n++;
	}
	assert_false(corrupt);
	ring_view_end(&v);
	return n;
}

static double now_s(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		abort();
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- layout ---- */

static void test_layout_sizes(void **state)
{
	static const struct {
		uint64_t ring;
		int workers;
		uint64_t want_cap;
	} cases[] = {
	    {64 * MIB, 1, 64 * MIB}, {64 * MIB, 3, 16 * MIB}, {100 * MIB, 3, 32 * MIB},
	    {64 * MIB, 64, 1 * MIB}, {1 * MIB, 4, 1 * MIB},   {0, 2, 1 * MIB},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct shm shm;
		uint64_t cap = 0;
		size_t size;

		memset(&shm, 0, sizeof(shm));
		struct cfg cfg = {.ring_size = cases[i].ring, .workers = cases[i].workers};
		size = shm_layout_size(&cfg, &cap);
		assert_int_equal(cap, cases[i].want_cap);
		assert_int_equal(cap & (cap - 1), 0);
		shm_setup(&shm, cases[i].ring, cases[i].workers);
		assert_int_equal(shm.size, size);
		assert_int_equal(shm.hdr->magic, SHM_MAGIC);
		assert_int_equal(shm.hdr->nlanes, (uint32_t)CFG_WORKERS_MAX);
		assert_int_equal(shm.hdr->lane_capacity, cap);
		assert_int_equal(shm.hdr->total_size, size);
		assert_int_equal(atomic_load(&shm.hdr->next_version), 1);
		assert_int_equal(shm.hdr->catalog_off % SHM_LINE, 0);
		assert_int_equal(shm.hdr->lanes_off % SHM_LINE, 0);
		assert_true(shm.hdr->catalog_off >= sizeof(struct shm_header));
		assert_true((uint8_t *)shm_catalog_slot(&shm, 1) >=
		            (uint8_t *)shm_catalog_slot(&shm, 0) + sizeof(struct shm_catalog_slot));
		assert_true(shm.hdr->lanes_off >=
		            shm.hdr->catalog_off + 2 * sizeof(struct shm_catalog_slot));
		for (unsigned l = 0; l < shm.hdr->nlanes; l++) {
			struct lane *lane = shm_lane(&shm, l);
			uint8_t *end = lane->data + cap;

			assert_int_equal((uintptr_t)lane % SHM_LINE, 0);
			assert_int_equal((uintptr_t)lane->data % SHM_LINE, 0);
			assert_int_equal(lane->magic, SHM_LANE_MAGIC);
			assert_int_equal(lane->index, l);
			assert_true(end <= (uint8_t *)shm.base + shm.size);
			if (l + 1 < shm.hdr->nlanes)
				assert_true(end <= (uint8_t *)shm_lane(&shm, l + 1));
		}
		shm_destroy(&shm);
		assert_null(shm.base);
	}
}

static void test_layout_rejects_zero_workers(void **state)
{
	struct cfg cfg = {.ring_size = 64 * MIB, .workers = 0};
	struct shm shm;

	assert_int_equal(shm_layout_size(&cfg, NULL), 0);
	errno = 0;
	assert_int_equal(shm_create(&cfg, &shm), -1);
	assert_int_equal(errno, EINVAL);
}

/* ---- single-process ring behaviour ---- */

/* A pad precedes start iff start is not where the previous entry ended. */
static unsigned check_pad(struct ring_producer *p, uint64_t prev_end, uint64_t start)
{
	if (start == prev_end)
		return 0;
	struct entry_hdr *pad = ring_entry_at(p, prev_end);

	assert_int_equal(start & (p->cap - 1), 0);
	assert_int_equal(pad->magic, ENTRY_PAD_MAGIC);
	assert_int_equal(pad->len, start - prev_end);
	return 1;
}

static void test_wrap_around(void **state)
{
	struct shm shm;
	struct ring_producer p;
	uint64_t seq = 0, consumed = 0, prev_end = 0, start;
	unsigned pads = 0;

	shm_setup(&shm, 1 * MIB, 1);
	ring_producer_init(&p, &shm, 0);
	assert_int_equal(ring_max_entry(&p), 1 * MIB);
	while (p.tail < 6 * p.cap) {
		if (push(&p, seq, BIG_PAYLOAD_SPREAD, &start)) {
			pads += check_pad(&p, prev_end, start);
			prev_end = start + entry_size(payload_len_for(seq, BIG_PAYLOAD_SPREAD));
			seq++;
			/* First laps: drain early so pads go out with their entry; later
			 * laps: fill up, so pads also go out alone ahead of a big entry. */
			if (p.tail < 3 * p.cap && seq % EARLY_DRAIN_EVERY == 0) {
				drain(&shm, &consumed, BIG_PAYLOAD_SPREAD);
				ring_release(&p, ring_committed(&p));
			}
			continue;
		}
		assert_int_equal(errno, EAGAIN);
		assert_true(drain(&shm, &consumed, BIG_PAYLOAD_SPREAD) > 0 || p.tail != prev_end);
		ring_release(&p, ring_committed(&p));
	}
	drain(&shm, &consumed, BIG_PAYLOAD_SPREAD);
	assert_int_equal(consumed, seq);
	assert_true(pads >= 5);
	assert_int_equal(ring_committed(&p), p.tail);
	shm_destroy(&shm);
}

static void test_full_lane_refuses_then_recovers(void **state)
{
	struct shm shm;
	struct ring_producer p;
	struct ring_view v;
	struct entry_hdr *h;
	uint64_t start, n = 0;
	bool corrupt;

	shm_setup(&shm, 1 * MIB, 1);
	ring_producer_init(&p, &shm, 0);
	while ((h = ring_reserve(&p, FULL_ENTRY_LEN, &start)) != NULL) {
		h->magic = ENTRY_MAGIC;
		h->len = FULL_ENTRY_LEN;
		h->payload_len = 0;
		ring_publish(&p);
		n++;
	}
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(n, p.cap / FULL_ENTRY_LEN);
	assert_int_equal(ring_used(&p), p.cap);

	assert_true(ring_view_begin(&shm, 0, &v));
	while ((h = ring_view_next(&v, &corrupt)) != NULL)
		ring_entry_finish(h, ENTRY_COMMITTED);
	assert_false(corrupt);
	/* Space is reusable only once committed and released by the producer. */
	assert_null(ring_reserve(&p, FULL_ENTRY_LEN, &start));
	ring_view_end(&v);
	assert_null(ring_reserve(&p, FULL_ENTRY_LEN, &start));
	ring_release(&p, ring_committed(&p));
	assert_int_equal(ring_used(&p), 0);
	assert_non_null(ring_reserve(&p, FULL_ENTRY_LEN, &start));
	assert_int_equal(start, n * FULL_ENTRY_LEN);
	ring_publish(&p);

	errno = 0;
	assert_null(ring_reserve(&p, (uint32_t)(p.cap + ENTRY_ALIGN), &start));
	assert_int_equal(errno, EMSGSIZE);
	shm_destroy(&shm);
}

static void test_lane_sized_entry_fits_after_pad(void **state)
{
	struct shm shm;
	struct ring_producer p;
	uint64_t consumed = 0, start;
	struct entry_hdr *h;

	shm_setup(&shm, 1 * MIB, 1);
	ring_producer_init(&p, &shm, 0);
	assert_true(push(&p, 0, PAYLOAD_SPREAD, &start));
	assert_int_equal(drain(&shm, &consumed, PAYLOAD_SPREAD), 1);
	ring_release(&p, ring_committed(&p));
	/* The tail sits mid-buffer: the first try can only lay down the pad. */
	assert_null(ring_reserve(&p, (uint32_t)p.cap, &start));
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(drain(&shm, &consumed, PAYLOAD_SPREAD), 0);
	ring_release(&p, ring_committed(&p));
	h = ring_reserve(&p, (uint32_t)p.cap, &start);
	assert_non_null(h);
	assert_int_equal(start, p.cap);
	shm_destroy(&shm);
}

static void test_status_visible_after_commit(void **state)
{
	struct shm shm;
	struct ring_producer p;
	struct ring_view v;
	uint64_t s0, s1;
	bool corrupt;

	shm_setup(&shm, 1 * MIB, 2);
	ring_producer_init(&p, &shm, 1);
	assert_true(push(&p, 0, PAYLOAD_SPREAD, &s0));
	assert_true(push(&p, 1, PAYLOAD_SPREAD, &s1));
	assert_int_equal(atomic_load(&ring_entry_at(&p, s0)->status), ENTRY_PENDING);
	assert_false(ring_view_begin(&shm, 0, &v)); /* the other lane is untouched */

	assert_true(ring_view_begin(&shm, 1, &v));
	ring_entry_finish(ring_view_next(&v, &corrupt), ENTRY_COMMITTED);
	ring_entry_finish(ring_view_next(&v, &corrupt), ENTRY_FAILED);
	assert_null(ring_view_next(&v, &corrupt));
	assert_false(corrupt);
	assert_int_equal(ring_committed(&p), 0);
	ring_view_end(&v);

	assert_int_equal(ring_committed(&p), p.tail);
	assert_int_equal(atomic_load_explicit(&ring_entry_at(&p, s0)->status, memory_order_acquire),
	                 ENTRY_COMMITTED);
	assert_int_equal(atomic_load_explicit(&ring_entry_at(&p, s1)->status, memory_order_acquire),
	                 ENTRY_FAILED);
	assert_false(ring_view_begin(&shm, 1, &v));
	shm_destroy(&shm);
}

/* ---- a million entries between two processes ---- */

struct inflight {
	uint64_t *start;
	size_t mask, head, tail;
};

/*
 * Read the status of every committed entry, then release: up to the first entry
 * still unread, or everything committed when none is (which also frees pads).
 * Returns -1 if a committed entry does not say COMMITTED.
 */
static int reap(struct ring_producer *p, struct inflight *q)
{
	uint64_t c = ring_committed(p);

	while (q->head != q->tail) {
		struct entry_hdr *h = ring_entry_at(p, q->start[q->head & q->mask]);
		if (q->start[q->head & q->mask] + h->len > c)
			break;
		if (atomic_load_explicit(&h->status, memory_order_acquire) != ENTRY_COMMITTED)
			return -1;
		q->head++;
	}
	uint64_t pos = c;

	if (q->head != q->tail && q->start[q->head & q->mask] < c)
		pos = q->start[q->head & q->mask];
	ring_release(p, pos);
	return 0;
}

static int produce_million(struct shm *shm)
{
	struct ring_producer p;
	struct inflight q = {.head = 0, .tail = 0};
	double deadline = now_s() + TRANSFER_DEADLINE_S;
	uint64_t start;

	ring_producer_init(&p, shm, 0);
	q.mask = p.cap / sizeof(struct entry_hdr) - 1;
	q.start = calloc(q.mask + 1, sizeof(uint64_t));
	if (!q.start)
		return 1;
	for (uint64_t seq = 0; seq < MILLION; seq++) {
		while (!push(&p, seq, PAYLOAD_SPREAD, &start)) {
			if (reap(&p, &q) != 0 || now_s() > deadline)
				return 2;
			sched_yield();
		}
		q.start[q.tail++ & q.mask] = start;
	}
	while (q.head != q.tail) {
		if (reap(&p, &q) != 0 || now_s() > deadline)
			return 3;
		sched_yield();
	}
	free(q.start);
	return 0;
}

/* Returns NULL on success, else what went wrong. */
static const char *consume_million(struct shm *shm)
{
	double deadline = now_s() + TRANSFER_DEADLINE_S;
	uint64_t seq = 0;
	struct ring_view v;
	struct entry_hdr *h;
	bool corrupt;

	while (seq < MILLION) {
		if (!ring_view_begin(shm, 0, &v)) {
			if (now_s() > deadline)
				return "timed out";
			sched_yield();
			continue;
		}
		while ((h = ring_view_next(&v, &corrupt)) != NULL) {
			if (!entry_intact(h, seq, PAYLOAD_SPREAD))
				return "entry lost, reordered or damaged";
			ring_entry_finish(h, ENTRY_COMMITTED);
			seq++;
		}
		if (corrupt)
			return "corrupt header";
		ring_view_end(&v);
	}
	return NULL;
}

static void test_million_entries_across_processes(void **state)
{
	struct shm shm;
	int status;
	double t0 = now_s();

	shm_setup(&shm, 1 * MIB, 1);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0)
		_exit(produce_million(&shm));
	const char *err = consume_million(&shm);
	if (err)
		kill(child, SIGKILL);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_null(err);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	print_message("1M entries across processes in %.2f s\n", now_s() - t0);
	shm_destroy(&shm);
}

/* ---- a producer killed mid-entry ---- */

static void half_write_then_wait(struct shm *shm, int ready_fd)
{
	struct ring_producer p;
	uint64_t start;

	ring_producer_init(&p, shm, 0);
	for (uint64_t seq = 0; seq < 3; seq++)
		if (!push(&p, seq, PAYLOAD_SPREAD, &start))
			_exit(1);
	struct entry_hdr *h = ring_reserve(&p, entry_size(200), &start);
	if (!h)
		_exit(1);
	h->magic = ENTRY_MAGIC;
	h->len = entry_size(200);
	h->version = 3;
	memset(h + 1, 0xAB, 100);
	if (write(ready_fd, "x", 1) != 1)
		_exit(1);
	for (;;)
		pause();
}

static void test_killed_producer_never_publishes_half(void **state)
{
	struct shm shm;
	struct ring_producer p;
	struct ring_view v;
	int fds[2], status;
	char c;
	uint64_t seq = 0, start;
	bool corrupt;

	shm_setup(&shm, 1 * MIB, 1);
	assert_int_equal(pipe(fds), 0);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0)
		half_write_then_wait(&shm, fds[1]);
	close(fds[1]);
	assert_int_equal(read(fds[0], &c, 1), 1);
	assert_int_equal(kill(child, SIGKILL), 0);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFSIGNALED(status));
	close(fds[0]);
	assert_int_equal(atomic_load(&shm_lane(&shm, 0)->producer_pid), child);

	/* The writer's view holds the three complete entries and nothing more. */
	assert_true(ring_view_begin(&shm, 0, &v));
	while (ring_view_next(&v, &corrupt) != NULL)
		seq++;
	assert_false(corrupt);
	assert_int_equal(seq, 3);

	/* A respawned producer adopts the lane: queued entries stay, the half one is gone. */
	ring_producer_init(&p, &shm, 0);
	assert_int_equal(atomic_load(&shm_lane(&shm, 0)->producer_pid), getpid());
	assert_true(push(&p, 3, PAYLOAD_SPREAD, &start));
	seq = 0;
	assert_int_equal(drain(&shm, &seq, PAYLOAD_SPREAD), 4);
	assert_int_equal(ring_committed(&p), p.tail);
	shm_destroy(&shm);
}

/* ---- corruption ---- */

enum scribble {
	BAD_MAGIC,
	ODD_LEN,
	SHORT_LEN,
	LEN_PAST_TAIL,
	PAYLOAD_TOO_LONG,
	TAIL_TOO_FAR,
	SCRIBBLES
};

static void scribble(struct shm *shm, struct entry_hdr *h, enum scribble how)
{
	switch (how) {
	case BAD_MAGIC:
		h->magic = 0xdeadbeef;
		break;
	case ODD_LEN:
		h->len += 4;
		break;
	case SHORT_LEN:
		h->len = 16;
		break;
	case LEN_PAST_TAIL:
		h->len += 64;
		break;
	case PAYLOAD_TOO_LONG:
		h->payload_len = h->len;
		break;
	case TAIL_TOO_FAR:
		atomic_store(&shm_lane(shm, 0)->tail, shm->hdr->lane_capacity + 64);
		break;
	case SCRIBBLES:
		break;
	}
}

static void test_corrupt_header_detected(void **state)
{
	for (int how = 0; how < SCRIBBLES; how++) {
		struct shm shm;
		struct ring_producer p;
		struct ring_view v;
		uint64_t s0, s1;
		bool corrupt;

		shm_setup(&shm, 1 * MIB, 1);
		ring_producer_init(&p, &shm, 0);
		assert_true(push(&p, 0, PAYLOAD_SPREAD, &s0));
		assert_true(push(&p, 1, PAYLOAD_SPREAD, &s1));
		scribble(&shm, ring_entry_at(&p, s1), (enum scribble)how);
		assert_true(ring_view_begin(&shm, 0, &v));
		if (how != TAIL_TOO_FAR)
			assert_non_null(ring_view_next(&v, &corrupt));
		assert_null(ring_view_next(&v, &corrupt));
		assert_true(corrupt);
		/* Ending the view skips the damaged bytes; the lane is usable again. */
		ring_view_end(&v);
		assert_false(ring_view_begin(&shm, 0, &v));
		shm_destroy(&shm);
	}
}

/* ---- catalog snapshot ---- */

static bool fetched_equals(uint8_t *buf, size_t len, const char *want)
{
	return len == strlen(want) && memcmp(buf, want, len) == 0;
}

static int child_fetches(struct shm *shm, uint64_t gen, const char *want)
{
	uint8_t *buf = NULL;
	size_t cap = 0, len = 0;
	int rc = shm_catalog_fetch(shm, &gen, &buf, &cap, &len);
	int ok = rc == 1 && fetched_equals(buf, len, want);

	free(buf);
	return ok ? 0 : 1;
}

static void run_child(pid_t pid)
{
	int status;

	assert_true(pid >= 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_catalog_publish_fetch(void **state)
{
	struct shm shm;
	uint8_t *buf = NULL;
	size_t cap = 0, len = 0;
	uint64_t gen = 0;
	pid_t pid;

	shm_setup(&shm, 1 * MIB, 1);
	assert_int_equal(shm_catalog_fetch(&shm, &gen, &buf, &cap, &len), 0);
	assert_int_equal(shm_catalog_publish(&shm, (const uint8_t *)"first", 5), 0);
	assert_int_equal(shm_catalog_fetch(&shm, &gen, &buf, &cap, &len), 1);
	assert_true(fetched_equals(buf, len, "first"));
	assert_int_equal(gen, 1);
	assert_int_equal(shm_catalog_fetch(&shm, &gen, &buf, &cap, &len), 0);
	assert_int_equal(shm_catalog_publish(&shm, (const uint8_t *)"second!", 7), 0);
	assert_int_equal(shm_catalog_fetch(&shm, &gen, &buf, &cap, &len), 1);
	assert_true(fetched_equals(buf, len, "second!"));

	/* A forked reader sees the parent's snapshot; the parent sees a child's. */
	pid = fork();
	if (pid == 0)
		_exit(child_fetches(&shm, 0, "second!"));
	run_child(pid);
	pid = fork();
	if (pid == 0)
		_exit(shm_catalog_publish(&shm, (const uint8_t *)"from the writer", 15) != 0);
	run_child(pid);
	assert_int_equal(shm_catalog_fetch(&shm, &gen, &buf, &cap, &len), 1);
	assert_true(fetched_equals(buf, len, "from the writer"));
	assert_int_equal(gen, 3);
	free(buf);
	shm_destroy(&shm);
}

static void test_catalog_too_big_rejected(void **state)
{
	struct shm shm;
	uint8_t *big = calloc(1, SHM_CATALOG_SLOT_BYTES + 1);
	uint8_t *buf = NULL;
	size_t cap = 0, len = 0;
	uint64_t gen = 0;

	assert_non_null(big);
	shm_setup(&shm, 1 * MIB, 1);
	errno = 0;
	assert_int_equal(shm_catalog_publish(&shm, big, SHM_CATALOG_SLOT_BYTES + 1), -1);
	assert_int_equal(errno, EMSGSIZE);
	assert_int_equal(shm_catalog_fetch(&shm, &gen, &buf, &cap, &len), 0);
	big[SHM_CATALOG_SLOT_BYTES - 1] = 0x5a;
	assert_int_equal(shm_catalog_publish(&shm, big, SHM_CATALOG_SLOT_BYTES), 0);
	assert_int_equal(shm_catalog_fetch(&shm, &gen, &buf, &cap, &len), 1);
	assert_int_equal(len, SHM_CATALOG_SLOT_BYTES);
	assert_int_equal(buf[SHM_CATALOG_SLOT_BYTES - 1], 0x5a);
	free(buf);
	free(big);
	shm_destroy(&shm);
}

static void test_catalog_publish_after_writer_died_mid_publish(void **state)
{
	struct shm shm;
	uint8_t *buf = NULL;
	size_t cap = 0, len = 0;
	uint64_t gen = 0;

	shm_setup(&shm, 1 * MIB, 1);
	/* A dead writer left the idle slot odd; the next writer must still publish. */
	atomic_store(&shm_catalog_slot(&shm, 1)->seq, 7);
	assert_int_equal(shm_catalog_publish(&shm, (const uint8_t *)"fresh", 5), 0);
	assert_int_equal(atomic_load(&shm_catalog_slot(&shm, 1)->seq) % 2, 0);
	assert_int_equal(shm_catalog_fetch(&shm, &gen, &buf, &cap, &len), 1);
	assert_true(fetched_equals(buf, len, "fresh"));
	free(buf);
	shm_destroy(&shm);
}

static void test_catalog_fetch_serves_previous_when_current_slot_stuck(void **state)
{
	struct shm shm;
	uint8_t *buf = NULL;
	size_t cap = 0, len = 0;
	uint64_t gen = 0;

	shm_setup(&shm, 1 * MIB, 1);
	assert_int_equal(shm_catalog_publish(&shm, (const uint8_t *)"older", 5), 0);
	assert_int_equal(shm_catalog_publish(&shm, (const uint8_t *)"newer", 5), 0);
	unsigned cur = atomic_load(&shm.hdr->catalog_slot);
	atomic_fetch_add(&shm_catalog_slot(&shm, cur)->seq, 1);
	assert_int_equal(shm_catalog_fetch(&shm, &gen, &buf, &cap, &len), 1);
	assert_true(fetched_equals(buf, len, "older"));
	assert_int_equal(gen, 0); /* not claimed: the next fetch tries again */
	atomic_fetch_add(&shm_catalog_slot(&shm, cur)->seq, 1);
	assert_int_equal(shm_catalog_fetch(&shm, &gen, &buf, &cap, &len), 1);
	assert_true(fetched_equals(buf, len, "newer"));
	assert_int_equal(gen, 2);
	free(buf);
	shm_destroy(&shm);
}

/* Snapshot n: 8 bytes of n, then bytes equal to n's low byte; its length varies with n. */
static size_t snapshot_len(uint64_t n)
{
	return sizeof(n) + (size_t)((n * 7919u) % SNAPSHOT_SPREAD);
}

static int publish_many(struct shm *shm)
{
	uint8_t *snap = malloc(sizeof(uint64_t) + SNAPSHOT_SPREAD);

	if (!snap)
		return 1;
	for (uint64_t n = 1; n <= SNAPSHOTS; n++) {
		memcpy(snap, &n, sizeof(n));
		memset(snap + sizeof(n), (int)(n & 0xff), snapshot_len(n) - sizeof(n));
		if (shm_catalog_publish(shm, snap, snapshot_len(n)) != 0)
			return 1;
		if (n % PUBLISH_YIELD_EVERY == 0)
			sched_yield();
	}
	free(snap);
	return 0;
}

/* Returns the snapshot's number, or 0 if the copy is torn. */
static uint64_t snapshot_check(const uint8_t *buf, size_t len)
{
	uint64_t n;

	if (len < sizeof(n))
		return 0;
	memcpy(&n, buf, sizeof(n));
	if (len != snapshot_len(n))
		return 0;
	for (size_t k = sizeof(n); k < len; k++)
		if (buf[k] != (uint8_t)n)
			return 0;
	return n;
}

static void test_catalog_fetch_never_torn_under_concurrent_publish(void **state)
{
	struct shm shm;
	uint8_t *buf = NULL;
	size_t cap = 0, len = 0;
	uint64_t gen = 0, last = 0, fetches = 0;
	bool torn = false, backwards = false;

	shm_setup(&shm, 1 * MIB, 1);
	pid_t pid = fork();
	if (pid == 0)
		_exit(publish_many(&shm));
	while (last < SNAPSHOTS && !torn) {
		int rc = shm_catalog_fetch(&shm, &gen, &buf, &cap, &len);
		if (rc != 1)
			continue;
		uint64_t n = snapshot_check(buf, len);
		torn = n == 0;
		backwards = backwards || n < last;
		last = n;
		fetches++;
	}
	if (torn)
		kill(pid, SIGKILL);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_false(torn);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_false(backwards);
	assert_int_equal(last, SNAPSHOTS);
	print_message("%llu fetches of %llu snapshots\n", (unsigned long long)fetches,
	              (unsigned long long)SNAPSHOTS);
	free(buf);
	shm_destroy(&shm);
}

static void test_commit_latency_lands_in_its_bucket(void **state)
{
	struct shm shm;
	struct shm_stats *st;

	shm_setup(&shm, 1 * MIB, 1);
	st = &shm.hdr->stats;
	shm_stats_commit(&shm, 10, 2, 100);
	shm_stats_commit(&shm, 5, 1, 101);
	shm_stats_commit(&shm, 1, 1, 2000000);
	assert_int_equal(atomic_load(&st->records_committed), 16);
	assert_int_equal(atomic_load(&st->entries_committed), 4);
	assert_int_equal(atomic_load(&st->commits), 3);
	assert_int_equal(atomic_load(&st->commit_us_sum), 2000201);
	assert_int_equal(atomic_load(&st->commit_lat[0]), 1);
	assert_int_equal(atomic_load(&st->commit_lat[1]), 1);
	assert_int_equal(atomic_load(&st->commit_lat[SHM_LAT_BUCKETS]), 1);
	shm_destroy(&shm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_layout_sizes),
	    cmocka_unit_test(test_layout_rejects_zero_workers),
	    cmocka_unit_test(test_wrap_around),
	    cmocka_unit_test(test_full_lane_refuses_then_recovers),
	    cmocka_unit_test(test_lane_sized_entry_fits_after_pad),
	    cmocka_unit_test(test_status_visible_after_commit),
	    cmocka_unit_test(test_million_entries_across_processes),
	    cmocka_unit_test(test_killed_producer_never_publishes_half),
	    cmocka_unit_test(test_corrupt_header_detected),
	    cmocka_unit_test(test_catalog_publish_fetch),
	    cmocka_unit_test(test_catalog_too_big_rejected),
	    cmocka_unit_test(test_catalog_publish_after_writer_died_mid_publish),
	    cmocka_unit_test(test_catalog_fetch_serves_previous_when_current_slot_stuck),
	    cmocka_unit_test(test_catalog_fetch_never_torn_under_concurrent_publish),
	    cmocka_unit_test(test_commit_latency_lands_in_its_bucket),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
