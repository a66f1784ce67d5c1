/*
 * writer.c - the writer process: the only owner of RocksDB.
 *
 * Group commit: each pass takes a view of every lane, queues every entry in the
 * views as one request of a store batch (one commit-log key each), commits it once
 * (WAL on, fsync per config), and only then marks the entries committed, advances
 * each lane's committed position, and wakes the lanes' workers, who answer 204.
 * Requests that arrive while a batch commits wait for the next pass, so under load
 * one WAL write acknowledges many requests. A writer killed mid-pass leaves the
 * lanes as they were; its successor commits the same entries again, which is
 * harmless because records are last-write-wins by version and the versions are in
 * the entries.
 *
 * A full disk: ten times a second the writer looks at the free space of data_dir's
 * filesystem; below min_free_disk it tells the workers (shm disk_state), who answer
 * new ingest 507 until space is back. If the store still runs out of space, the
 * pass's entries are answered 507, RocksDB refuses every later write, and the
 * writer fails what reaches it until space is back; then it closes and reopens the
 * store (the commit log replays what was acknowledged) and ingest resumes. Reads go
 * on throughout: RocksDB serves them in its read-only error state.
 *
 * Retention (retention.c): once a second the writer sets every source's read
 * cutoff from the catalog; a thread of its own deletes expired partitions every
 * minute, so a long compaction never holds a commit.
 */
#include "temporis/daemon/writer.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "temporis/daemon/admin.h"
#include "temporis/daemon/admin_ops.h"
#include "temporis/daemon/retention.h"
#include "temporis/data/catalog.h"
#include "temporis/base/buf.h"
#include "temporis/base/clock.h"
#include "temporis/base/fdcount.h"
#include "temporis/base/log.h"
#include "temporis/base/proctitle.h"
#include "temporis/ipc/ring.h"
#include "temporis/data/store.h"
#include "temporis/data/store_batch.h"

#define WRITER_IDLE_WAIT_MS 1000       /* re-check the master and stop flag this often */
#define WRITER_TICK_MS 1000            /* copy the store's state this often */
/* Free space is looked at this often (statvfs costs about a microsecond): between two
 * looks the store must not write more than min_free_disk. */
#define WRITER_DISK_CHECK_MS 100
#define WRITER_REOPEN_FREE_MIN (16ull << 20) /* free bytes before a store out of space reopens */
#define WRITER_ENTRIES_INITIAL 256

struct writer {
	const struct cfg *cfg;
	struct shm *shm;
	const struct server_fds *fds;
	struct store *store;
	struct catalog *catalog;
	struct admin_ctx admin;
	struct store_batch *batch;
	struct ring_view views[CFG_WORKERS_MAX];
	bool viewing[CFG_WORKERS_MAX];
	struct entry_hdr **entries;    /* entries of the current pass, for their status */
	size_t nentries, entries_cap;
	uint64_t stats_at_ms;          /* when tick() last ran */
	uint64_t disk_at_ms;           /* when free space was last looked at */
	bool statvfs_failed;           /* logged once */
};

static volatile sig_atomic_t stop_requested;
static int wake_fd_for_signal = -1;

static void on_stop_signal(int sig)
{
	uint64_t one = 1;
	int saved = errno;

	(void)sig;
	stop_requested = 1;
	if (wake_fd_for_signal >= 0 && write(wake_fd_for_signal, &one, sizeof(one)) < 0) {
		/* The eventfd is nonblocking; a full counter already means "wake up". */
	}
	errno = saved;
}

static int install_signals(const struct server_fds *fds)
{
	struct sigaction sa = { .sa_handler = on_stop_signal };

	wake_fd_for_signal = fds->writer_wake;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) < 0)
		return -1;
	return 0;
}

/* Versions handed out after a restart must beat everything already stored. */
static void raise_next_version(struct shm *shm, uint64_t floor)
{
	uint64_t cur = atomic_load_explicit(&shm->hdr->next_version, memory_order_acquire);

	while (cur < floor &&
	       !atomic_compare_exchange_weak_explicit(&shm->hdr->next_version, &cur, floor,
						      memory_order_acq_rel, memory_order_acquire))
		;
}

static int remember_entry(struct writer *w, struct entry_hdr *h)
{
	void *entries = w->entries;

	if (vec_reserve(&entries, &w->entries_cap, w->nentries + 1, sizeof(*w->entries),
			WRITER_ENTRIES_INITIAL) < 0)
		return -1;
	w->entries = entries;
	w->entries[w->nentries++] = h;
	return 0;
}

/*
 * Queue the entries of one lane's view, each as one request of the batch; an entry
 * that cannot be stored (no such source, records that do not decode, or no memory
 * to queue it) fails alone, and nothing of it is queued.
 */
static size_t take_lane(struct writer *w, unsigned lane, uint64_t *records)
{
	struct ring_view *v = &w->views[lane];
	struct entry_hdr *h;
	bool corrupt = false;
	size_t taken = 0;

	while ((h = ring_view_next(v, &corrupt)) != NULL) {
		if (remember_entry(w, h) < 0) {
			log_error("lane %u: cannot remember an entry: %s", lane, strerror(errno));
			ring_entry_finish(h, ENTRY_FAILED);
			continue;
		}
		if (store_batch_add(w->store, w->batch, h->source_id, h->version, entry_payload(h),
				    h->payload_len, h->nrecords) < 0) {
			log_error("lane %u: entry with %u records for source %u cannot be stored (%s)",
				  lane, h->nrecords, h->source_id,
				  errno == ENOMEM ? "out of memory" : "malformed or unknown source");
			w->nentries--;
			ring_entry_finish(h, ENTRY_FAILED);
			continue;
		}
		*records += h->nrecords;
		taken++;
	}
	if (corrupt)
		log_error("lane %u: corrupt entry header at %llu; skipping to %llu", lane,
			  (unsigned long long)v->cursor, (unsigned long long)v->to);
	return taken;
}

static void finish_pass(struct writer *w, enum entry_status status)
{
	uint64_t one = 1;

	for (size_t i = 0; i < w->nentries; i++)
		ring_entry_finish(w->entries[i], status);
	for (unsigned lane = 0; lane < w->shm->hdr->nlanes; lane++) {
		if (!w->viewing[lane])
			continue;
		ring_view_end(&w->views[lane]);
		w->viewing[lane] = false;
		if (write(w->fds->worker_wake[lane], &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_error("wake worker %u: %s", lane + 1, strerror(errno));
	}
	w->nentries = 0;
	store_batch_clear(w->batch);
}

static enum shm_disk_state disk_state(const struct writer *w)
{
	return (enum shm_disk_state)atomic_load_explicit(&w->shm->hdr->disk_state,
							 memory_order_acquire);
}

static void set_disk_state(struct writer *w, enum shm_disk_state s)
{
	atomic_store_explicit(&w->shm->hdr->disk_state, (uint32_t)s, memory_order_release);
}

/* One group commit over every lane. Returns the number of lanes that had work. */
static unsigned commit_pass(struct writer *w)
{
	uint64_t records = 0, t0;
	unsigned busy = 0;
	char err[512];
	int rc;

	for (unsigned lane = 0; lane < w->shm->hdr->nlanes; lane++) {
		w->viewing[lane] = ring_view_begin(w->shm, lane, &w->views[lane]);
		if (!w->viewing[lane])
			continue;
		busy++;
		take_lane(w, lane, &records);
	}
	if (busy == 0)
		return 0;
	if (w->nentries == 0) {
		finish_pass(w, ENTRY_COMMITTED);
		return busy;
	}
	if (disk_state(w) == SHM_DISK_NOSPACE) {
		/* the store refuses writes until it is reopened with space free */
		finish_pass(w, ENTRY_NOSPACE);
		return busy;
	}
	t0 = mono_us();
	rc = store_batch_commit(w->store, w->batch, err, sizeof(err));
	if (rc < 0) {
		log_error("commit of %zu requests failed: %s", w->nentries, err);
		atomic_fetch_add_explicit(&w->shm->hdr->stats.commit_failures, 1,
					  memory_order_relaxed);
		if (rc == STORE_NOSPACE) {
			log_error("the store is out of space: ingest answers 507 until space is "
				  "freed on the filesystem of %s", w->cfg->data_dir);
			set_disk_state(w, SHM_DISK_NOSPACE);
		}
		finish_pass(w, rc == STORE_NOSPACE ? ENTRY_NOSPACE : ENTRY_FAILED);
		return busy;
	}
	shm_stats_commit(w->shm, records, w->nentries, mono_us() - t0);
	finish_pass(w, ENTRY_COMMITTED);
	return busy;
}

static void put(_Atomic uint64_t *dst, uint64_t v)
{
	atomic_store_explicit(dst, v, memory_order_relaxed);
}

/* The store's state for /metrics. */
static void publish_store_stats(struct writer *w)
{
	struct shm_stats *ss = &w->shm->hdr->stats;
	struct store_stats s;

	uint64_t fds;

	if (fd_count_self(&fds) == 0)
		put(&ss->writer_open_fds, fds);
	store_stats_get(w->store, &s);
	put(&ss->store_head_records, s.head_records);
	put(&ss->store_seals, s.seals);
	put(&ss->store_seal_failures, s.seal_failures);
	put(&ss->store_sealed_records, s.sealed_records);
	put(&ss->store_seal_files, s.seal_files);
	put(&ss->store_room_waits, s.room_waits);
	put(&ss->store_sst_bytes, s.sst_bytes);
	put(&ss->store_pending_compaction_bytes, s.pending_compaction_bytes);
	put(&ss->store_memtable_bytes, s.memtable_bytes);
	put(&ss->store_wal_bytes, s.wal_bytes);
	put(&ss->store_write_stopped, s.write_stopped);
	put(&ss->store_delayed_write_rate, s.delayed_write_rate);
}

/* Bytes an unprivileged process may still write on data_dir's filesystem. */
static bool disk_free(struct writer *w, uint64_t *out)
{
	struct statvfs sv;

	if (statvfs(w->cfg->data_dir, &sv) != 0) {
		if (!w->statvfs_failed)
			log_warn("statvfs %s: %s; free space is not checked until it works",
				 w->cfg->data_dir, strerror(errno));
		w->statvfs_failed = true;
		return false;
	}
	w->statvfs_failed = false;
	*out = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
	return true;
}

static int writer_open(struct writer *w);

/* The store after a no-space error: closed, then opened as at start. */
static int reopen_store(struct writer *w)
{
	admin_stop();
	retention_stop();
	catalog_close(w->catalog);
	w->catalog = NULL;
	store_close(w->store);
	w->store = NULL;
	return writer_open(w);
}

/*
 * The free-space check (ten times a second, and after each open): below
 * min_free_disk ingest is refused; after a no-space error of the store, the store is
 * reopened once at least WRITER_REOPEN_FREE_MIN (and min_free_disk) is free.
 */
static void watch_disk(struct writer *w, bool just_opened)
{
	enum shm_disk_state was = disk_state(w), now;
	uint64_t free_bytes = UINT64_MAX;

	if (disk_free(w, &free_bytes))
		put(&w->shm->hdr->stats.disk_free_bytes, free_bytes);
	if (was == SHM_DISK_NOSPACE && !just_opened) {
		if (free_bytes < WRITER_REOPEN_FREE_MIN || free_bytes < w->cfg->min_free_disk)
			return;
		log_info("%" PRIu64 " bytes free on the filesystem of %s: reopening the store",
			 free_bytes, w->cfg->data_dir);
		if (reopen_store(w) != 0) {
			log_error("cannot reopen the store; the writer restarts");
			_exit(1);
		}
		return;
	}
	now = free_bytes < w->cfg->min_free_disk ? SHM_DISK_LOW : SHM_DISK_OK;
	if (now == was)
		return;
	if (now == SHM_DISK_LOW)
		log_warn("%" PRIu64 " bytes free on the filesystem of %s, below min_free_disk = "
			 "%" PRIu64 ": ingest answers 507 until space is freed", free_bytes,
			 w->cfg->data_dir, w->cfg->min_free_disk);
	else
		log_info("%" PRIu64 " bytes free on the filesystem of %s: ingest resumed",
			 free_bytes, w->cfg->data_dir);
	set_disk_state(w, now);
}

/* What the writer does now and then, between passes. */
static void tick(struct writer *w)
{
	uint64_t now = mono_ms();

	if (now - w->disk_at_ms >= WRITER_DISK_CHECK_MS) {
		w->disk_at_ms = now;
		watch_disk(w, false);
	}
	if (now - w->stats_at_ms < WRITER_TICK_MS)
		return;
	w->stats_at_ms = now;
	store_maintain(w->store);
	retention_refresh();
	publish_store_stats(w);
}

static void wait_for_work(struct writer *w)
{
	struct pollfd pfd[2] = {
		{ .fd = w->fds->writer_wake, .events = POLLIN },
		{ .fd = w->fds->master_pipe, .events = POLLIN },
	};
	uint64_t count;

	if (poll(pfd, 2, WRITER_IDLE_WAIT_MS) < 0) {
		if (errno != EINTR)
			log_error("poll: %s", strerror(errno));
		return;
	}
	if (pfd[0].revents & POLLIN) {
		if (read(w->fds->writer_wake, &count, sizeof(count)) < 0 && errno != EAGAIN)
			log_error("read wake-up: %s", strerror(errno));
	}
	if (pfd[1].revents & (POLLIN | POLLHUP)) {
		/* The master is gone: commit what is queued, then stop. */
		stop_requested = 1;
	}
}

static int writer_open(struct writer *w)
{
	char err[1024];

	if (store_open_ex(w->cfg->data_dir, w->cfg->sync,
			  w->cfg->accept_data_loss ? STORE_OPEN_ACCEPT_DATA_LOSS : 0, &w->store, err,
			  sizeof(err)) < 0) {
		log_error("cannot open the store in %s: %s", w->cfg->data_dir, err);
		return -1;
	}
	if (catalog_open(w->store, &w->catalog, err, sizeof(err)) < 0) {
		log_error("cannot load the catalog: %s", err);
		return -1;
	}
	if (w->batch == NULL)
		w->batch = store_batch_new();
	if (w->batch == NULL) {
		log_error("out of memory");
		return -1;
	}
	raise_next_version(w->shm, store_version_hwm(w->store) + 1);
	w->admin = (struct admin_ctx){ .store = w->store, .catalog = w->catalog,
				       .shm = w->shm, .cfg = w->cfg };
	if (admin_publish_catalog(&w->admin) < 0) {
		log_error("cannot publish the catalog");
		return -1;
	}
	/* cutoffs before the first read: the admin socket serves next */
	if (retention_start(w->store, w->catalog) < 0) {
		log_error("cannot start the retention thread");
		return -1;
	}
	if (admin_start(&w->admin, w->fds->admin_fd) < 0) {
		log_error("cannot serve the admin socket");
		return -1;
	}
	/* A store just opened takes writes: its state comes from the free space alone. */
	watch_disk(w, true);
	return 0;
}

void writer_main(const struct cfg *cfg, struct shm *shm, const struct server_fds *fds)
{
	static struct writer w;

	log_set_role("writer");
	proctitle_set("temporisd: writer");
	w.cfg = cfg;
	w.shm = shm;
	w.fds = fds;
	if (install_signals(fds) < 0) {
		log_error("signals: %s", strerror(errno));
		_exit(1);
	}
	if (writer_open(&w) < 0)
		_exit(1);
	/* RocksDB counts per-operation statistics on this thread by default; nothing
	 * reads them, and they cost ~10% of the commit path (scripts/bench profile). */
	rocksdb_set_perf_level(rocksdb_disable);
	atomic_store_explicit(&shm->hdr->writer_pid, (int32_t)getpid(), memory_order_relaxed);
	atomic_store_explicit(&shm->hdr->writer_beat_ms, mono_ms(), memory_order_relaxed);
	atomic_store_explicit(&shm->hdr->writer_ready, 1, memory_order_release);
	log_info("store open in %s (sync = %s)", cfg->data_dir,
		 cfg->sync == CFG_SYNC_FSYNC ? "fsync" : "wal");
	for (;;) {
		atomic_store_explicit(&shm->hdr->writer_beat_ms, mono_ms(), memory_order_relaxed);
		tick(&w);
		if (commit_pass(&w) > 0)
			continue;
		if (stop_requested)
			break;
		wait_for_work(&w);
	}
	admin_stop();
	retention_stop();
	store_batch_free(w.batch);
	catalog_close(w.catalog);
	store_close(w.store);
	free(w.entries);
	log_info("store closed");
	_exit(0);
}
