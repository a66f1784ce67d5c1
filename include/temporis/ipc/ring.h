/*
 * ring.h - the lock-free path from workers to the writer.
 *
 * Each worker slot owns one lane of the shared region (shm.h) and is its only
 * producer; the writer is every lane's only consumer. A request becomes one entry
 * (entry.h). A producer that dies mid-write never published its entry, so the
 * writer never sees half an entry; a respawned worker adopts the lane as it is.
 */
#ifndef TEMPORIS_RING_H
#define TEMPORIS_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "temporis/ipc/entry.h"
#include "temporis/ipc/shm.h"

/* ---- producer (one worker) ---- */

struct ring_producer {
	struct lane *lane;
	uint64_t cap;                    /* lane capacity, power of two */
	uint64_t tail;                   /* our copy of lane->tail */
	uint64_t released;               /* space below this is free to reuse */
	uint64_t reserved_pos;           /* start of the reserved, unpublished entry */
	uint32_t reserved_len;           /* 0 when nothing is reserved */
};

/* Adopt lane index (after a respawn, everything published stays queued). */
void ring_producer_init(struct ring_producer *p, struct shm *shm, unsigned index);
/* Largest entry (header included) that can ever fit in this lane. */
uint64_t ring_max_entry(const struct ring_producer *p);
/*
 * Reserve len bytes (entry_size(), a multiple of 8) for one entry; returns where to
 * write the header and payload, or NULL if the lane has no room now (retry after
 * the writer commits and ring_release() frees space). Sets *start to its position.
 */
struct entry_hdr *ring_reserve(struct ring_producer *p, uint32_t len, uint64_t *start);
/* Make the reserved entry visible to the writer; returns its end position. */
uint64_t ring_publish(struct ring_producer *p);
/* Writer's committed position for this lane (acquire). */
uint64_t ring_committed(const struct ring_producer *p);
/* The producer has read the status of every entry below pos: reuse their space. */
void ring_release(struct ring_producer *p, uint64_t pos);
/* Entry header at a position returned by ring_reserve. */
struct entry_hdr *ring_entry_at(const struct ring_producer *p, uint64_t start);
/* Bytes in use (published and not yet released), for metrics. */
uint64_t ring_used(const struct ring_producer *p);

/* ---- consumer (the writer) ---- */

struct ring_view {
	struct lane *lane;
	uint64_t cap;
	uint64_t from;                   /* committed position when the view was taken */
	uint64_t to;                     /* tail at that moment */
	uint64_t cursor;                 /* next entry to read */
};

/* Snapshot what is published and uncommitted in lane index; false if nothing. */
bool ring_view_begin(struct shm *shm, unsigned index, struct ring_view *v);
/*
 * Next entry in the view (pad entries skipped), or NULL at the end. A header with
 * a bad magic or length sets *corrupt and returns NULL: the caller logs it and
 * ends the view, which skips the lane's published bytes.
 */
struct entry_hdr *ring_view_next(struct ring_view *v, bool *corrupt);
/* Set an entry's status (release). */
void ring_entry_finish(struct entry_hdr *h, enum entry_status status);
/* Publish everything in the view as committed (release); wakes nothing itself. */
void ring_view_end(struct ring_view *v);

#endif
