/*
 * shm.h - the shared-memory region: its layout, computed once from the config.
 *
 * The master maps it (MAP_SHARED | MAP_ANONYMOUS) before forking, so every child
 * sees it at the same address. It holds plain data and atomics only, no heap
 * pointers. Layout, every part aligned to SHM_LINE:
 *
 *   +----------------------------+ 0
 *   | struct shm_header          |  magic, sizes, version counter, counters,
 *   |   worker_stats[slot]       |  per-worker-slot request counters
 *   +----------------------------+ catalog_off
 *   | struct shm_catalog_slot 0  |  seqlock + encoded catalog snapshot
 *   | struct shm_catalog_slot 1  |  (double buffer: writer fills the idle one)
 *   +----------------------------+ lanes_off
 *   | struct lane 0 | data 0     |  one single-producer lane per worker slot,
 *   | struct lane 1 | data 1     |  lane_capacity bytes of entries each
 *   | ...                        |
 *   +----------------------------+ total
 */
#ifndef TEMPORIS_SHM_H
#define TEMPORIS_SHM_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "temporis/base/config.h"
#include "temporis/ipc/metric_keys.h"

#define SHM_LINE 64
#define SHM_MAGIC 0x54454d504f524953ull  /* "TEMPORIS" */
#define SHM_LANE_MAGIC 0x4c414e45u       /* "LANE" */
#define SHM_CATALOG_SLOT_BYTES (8u << 20) /* encoded catalog snapshot room */
#define SHM_LANE_MIN (1u << 20)          /* smallest lane, bytes */

/* Commit latency histogram buckets (upper bounds, microseconds); +Inf is implied. */
#define SHM_LAT_BUCKETS 12
extern const uint64_t shm_lat_bounds_us[SHM_LAT_BUCKETS];
/* Records per group commit histogram buckets (upper bounds); +Inf is implied. */
#define SHM_BATCH_BUCKETS 12
extern const uint64_t shm_batch_bounds[SHM_BATCH_BUCKETS];
/* Request duration histogram buckets (upper bounds, microseconds), per route; +Inf implied. */
#define SHM_REQ_LAT_BUCKETS 13
extern const uint64_t shm_req_lat_bounds_us[SHM_REQ_LAT_BUCKETS];
/* The request counters: one row per route label, one column per status (metric_keys.h). */
#define SHM_METRIC_ROUTES METRIC_ROUTES
#define SHM_METRIC_STATUSES METRIC_STATUSES

/* A writer whose beat (shm_header.writer_beat_ms) is older than this is stalled. */
#define SHM_WRITER_STALL_MS 5000

/* Whether ingest can be stored (shm_header.disk_state). */
enum shm_disk_state {
	SHM_DISK_OK = 0,
	SHM_DISK_LOW = 1,      /* free space below min_free_disk: refused before the store fills */
	SHM_DISK_NOSPACE = 2,  /* the store reported no space; reopened once space is back */
};

struct shm_stats {
	/* Open descriptors of the master and the writer, each its own (fdcount.h), and
	 * their limit, refreshed about once a second. */
	_Atomic uint64_t master_open_fds, writer_open_fds, max_fds;
	_Atomic uint64_t records_committed;
	_Atomic uint64_t entries_committed;
	_Atomic uint64_t commits;             /* WriteBatches written */
	_Atomic uint64_t commit_failures;
	_Atomic uint64_t commit_us_sum;
	_Atomic uint64_t commit_lat[SHM_LAT_BUCKETS + 1];
	_Atomic uint64_t worker_restarts;
	_Atomic uint64_t writer_restarts;
	_Atomic uint64_t busy_rejections;     /* 503 answers */
	_Atomic uint64_t commit_timeouts;     /* 503 answers past commit_timeout_ms */
	/* Group commits by records in the batch (shm_batch_bounds), +Inf last. */
	_Atomic uint64_t commit_batch[SHM_BATCH_BUCKETS + 1];
	/* The store's state, as the writer last copied it (about once a second):
	 * the fields of struct store_stats (store.h), stored whole. */
	_Atomic uint64_t store_head_records, store_seals, store_seal_failures;
	_Atomic uint64_t store_sealed_records, store_seal_files, store_room_waits;
	_Atomic uint64_t store_sst_bytes, store_pending_compaction_bytes, store_memtable_bytes;
	_Atomic uint64_t store_wal_bytes;
	_Atomic uint64_t store_write_stopped, store_delayed_write_rate;
	/* The data directory's filesystem, as the writer last looked (about once a second). */
	_Atomic uint64_t disk_free_bytes;
	_Atomic uint64_t disk_full_rejections; /* 507 answers */
};

/*
 * Counters of the worker in one slot (lane index), so no two processes ever add
 * to the same cache line. The slot's worker adds with relaxed fetch_add (plain
 * counters: nothing is ordered by them, and a retiring worker overlapping its
 * successor still counts exactly); /metrics sums every slot. They outlive a respawn
 * of the slot's worker, so the totals stay monotonic as Prometheus expects.
 * Index meanings (route label, status code) are the lists of metric_keys.h.
 */
struct shm_worker_stats {
	alignas(SHM_LINE) _Atomic uint64_t requests[SHM_METRIC_ROUTES][SHM_METRIC_STATUSES];
	_Atomic uint64_t ingest_bytes;        /* request bodies as received */
	/* From a request's complete head to its answer being queued, per route label. */
	_Atomic uint64_t duration[SHM_METRIC_ROUTES][SHM_REQ_LAT_BUCKETS + 1];
	_Atomic uint64_t duration_us_sum[SHM_METRIC_ROUTES];
	_Atomic uint64_t open_fds;            /* the slot's worker's, about once a second */
};

struct shm_header {
	uint64_t magic;
	uint32_t nlanes;
	uint32_t reserved;
	uint64_t lane_capacity;               /* power of two */
	uint64_t total_size;
	uint64_t catalog_off;
	uint64_t lanes_off;
	int64_t started_at;                   /* Unix seconds, master start */

	/* Next last-write-wins version; fetch_add by producers. The writer raises it
	 * above the store's persisted high-water mark before setting writer_ready. */
	alignas(SHM_LINE) _Atomic uint64_t next_version;
	_Atomic uint32_t writer_ready;        /* 1 once the store is open and serving */
	_Atomic int32_t writer_pid;
	/* mono_ms() of the writer's last turn of its loop (at least once a second while
	 * it is well): a stale beat is a writer that stopped making progress. */
	_Atomic uint64_t writer_beat_ms;
	_Atomic uint32_t workers_running;
	/* enum shm_disk_state, stored by the writer: not DISK_OK, ingest answers 507. It
	 * outlives a writer's restart, so a successor starts from what was last seen. */
	_Atomic uint32_t disk_state;

	/* Catalog publication: gen counts snapshots; slot says which one is current. */
	alignas(SHM_LINE) _Atomic uint64_t catalog_gen;
	_Atomic uint32_t catalog_slot;

	alignas(SHM_LINE) struct shm_stats stats;
	struct shm_worker_stats worker_stats[CFG_WORKERS_MAX];  /* by lane index */
};

struct shm_catalog_slot {
	/* Seqlock: odd while the writer rewrites the slot. Readers copy, then
	 * re-check seq; a change means the copy is torn and must be retried. */
	alignas(SHM_LINE) _Atomic uint64_t seq;
	uint64_t len;
	alignas(SHM_LINE) uint8_t bytes[SHM_CATALOG_SLOT_BYTES];
};

/*
 * One single-producer/single-consumer lane. Positions are byte offsets that only
 * grow (64 bits never wrap); the data index is pos & (capacity - 1).
 * Invariant: committed <= tail <= committed + capacity.
 */
struct lane {
	uint32_t magic;
	uint32_t index;
	/* Producer (the worker in this slot) stores with release after writing an
	 * entry; the writer loads with acquire before reading entries below it. */
	alignas(SHM_LINE) _Atomic uint64_t tail;
	/* The writer stores with release after the entries below it are committed and
	 * their status written; the producer loads with acquire before reading status
	 * or reusing space. */
	alignas(SHM_LINE) _Atomic uint64_t committed;
	alignas(SHM_LINE) _Atomic int32_t producer_pid;
	alignas(SHM_LINE) uint8_t data[];
};

struct shm {
	struct shm_header *hdr;
	void *base;
	size_t size;
};

/* Size needed for cfg: CFG_WORKERS_MAX lanes, each sized for cfg->workers. */
size_t shm_layout_size(const struct cfg *cfg, uint64_t *lane_capacity);
/* Map and initialise the region. 0 or -1 with errno. */
int shm_create(const struct cfg *cfg, struct shm *out);
void shm_destroy(struct shm *shm);
struct lane *shm_lane(const struct shm *shm, unsigned index);
struct shm_catalog_slot *shm_catalog_slot(const struct shm *shm, unsigned index);

/* Writer: publish an encoded catalog snapshot (seqlock into the idle slot). */
int shm_catalog_publish(struct shm *shm, const uint8_t *bytes, size_t len);
/*
 * Reader: if the generation differs from *gen, copy the current snapshot into
 * *buf (grown with realloc as needed, caller frees), set *len and *gen, return 1.
 * 0 when unchanged; -1 on allocation failure.
 */
int shm_catalog_fetch(struct shm *shm, uint64_t *gen, uint8_t **buf, size_t *cap, size_t *len);

/*
 * Fill of the fullest lane, 0..1: a worker answers 503 when its own lane stays
 * full, so the fullest lane is what predicts back-pressure.
 */
double shm_ring_fill(const struct shm *shm);

/* One group commit succeeded: its records, entries and latency, and the histograms
 * of latency and of records per commit. */
void shm_stats_commit(struct shm *shm, uint64_t records, uint64_t entries, uint64_t micros);

#endif
