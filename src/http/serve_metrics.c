/*
 * serve_metrics.c - GET /metrics: the Prometheus text exposition of the whole server,
 * and the counting of requests into a worker slot's counters.
 *
 * The counters' keys are metric_keys.h's lists; the writer's commit counters are
 * shm.c's. Everything is summed over processes and worker slots; no tenant or source
 * name is ever part of the output.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include "temporis/http/serve_metrics.h"

#include <assert.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "temporis/base/buf.h"
#include "temporis/http/server.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "dev"
#endif
#define TEXT_INITIAL 8192
#define SERVER_PIDS_MAX (CFG_WORKERS_MAX + 8)  /* the master, the writer, the workers */
#define PROC_TEXT_MAX 4096
#define STAT_UTIME 11   /* fields of /proc/PID/stat after "(comm) ", from 0: 14th, */
#define STAT_STIME 12   /* 15th, */
#define STAT_RSS 21     /* 24th */
#define US_PER_S 1e6
#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

static const char *const route_labels[METRIC_ROUTES] = {
#define LABEL_TEXT(id, label) [METRIC_ROUTE_##id] = label,
	METRIC_ROUTE_LABELS(LABEL_TEXT)
#undef LABEL_TEXT
};

/* The statuses counted one by one; any other is counted in the last column. */
static const int status_codes[METRIC_STATUS_OTHER] = {
#define STATUS_CODE(code) [METRIC_STATUS_##code] = code,
	METRIC_STATUS_CODES(STATUS_CODE)
#undef STATUS_CODE
};
#define STATUS_KNOWN METRIC_STATUS_OTHER

/* ---- counting ---- */

static unsigned status_index(int status)
{
	unsigned i = 0;

	while (i < STATUS_KNOWN && status_codes[i] != status)
		i++;
	return i;
}

void metrics_count(struct shm_worker_stats *ws, enum metric_route route, int status)
{
	assert(route < METRIC_ROUTES);
	atomic_fetch_add_explicit(&ws->requests[route][status_index(status)], 1,
				  memory_order_relaxed);
}

void metrics_duration(struct shm_worker_stats *ws, enum metric_route route, uint64_t micros)
{
	unsigned bucket = 0;

	assert(route < METRIC_ROUTES);
	while (bucket < SHM_REQ_LAT_BUCKETS && micros > shm_req_lat_bounds_us[bucket])
		bucket++;
	atomic_fetch_add_explicit(&ws->duration[route][bucket], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&ws->duration_us_sum[route], micros, memory_order_relaxed);
}

void metrics_bytes_received(struct shm_worker_stats *ws, size_t len)
{
	atomic_fetch_add_explicit(&ws->ingest_bytes, len, memory_order_relaxed);
}

/* ---- the text: a struct buf; a failed append poisons it and the render fails ---- */

static void family(struct buf *t, const char *name, const char *type, const char *help)
{
	buf_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metric(struct buf *t, const char *name, const char *type, const char *help,
		   uint64_t value)
{
	family(t, name, type, help);
	buf_printf(t, "%s %" PRIu64 "\n", name, value);
}

/* ---- the families ---- */

static uint64_t load(_Atomic uint64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

/* Only pairs that ever happened: a route never called adds no series. */
static void requests_family(struct buf *t, struct shm_header *hdr)
{
	const char *name = "temporis_http_requests_total";

	family(t, name, "counter", "HTTP requests answered by the workers, by route and status.");
	for (unsigned r = 0; r < SHM_METRIC_ROUTES; r++) {
		for (unsigned s = 0; s < SHM_METRIC_STATUSES; s++) {
			uint64_t sum = 0;

			for (unsigned slot = 0; slot < CFG_WORKERS_MAX; slot++)
				sum += load(&hdr->worker_stats[slot].requests[r][s]);
			if (sum == 0)
				continue;
			if (s < STATUS_KNOWN)
				buf_printf(t, "%s{route=\"%s\",status=\"%d\"} %" PRIu64 "\n", name,
					 route_labels[r], status_codes[s], sum);
			else
				buf_printf(t, "%s{route=\"%s\",status=\"other\"} %" PRIu64 "\n", name,
					 route_labels[r], sum);
		}
	}
}

/* buckets has nbounds + 1 counters (the last is +Inf); bounds are divided by scale. */
static void histogram(struct buf *t, const char *name, const char *help,
		      const uint64_t *bounds, unsigned nbounds, double scale,
		      _Atomic uint64_t *buckets, double sum)
{
	uint64_t cumulative = 0;

	family(t, name, "histogram", help);
	for (unsigned i = 0; i < nbounds; i++) {
		cumulative += load(&buckets[i]);
		buf_printf(t, "%s_bucket{le=\"%.10g\"} %" PRIu64 "\n", name, (double)bounds[i] / scale,
			 cumulative);
	}
	cumulative += load(&buckets[nbounds]);
	buf_printf(t, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, cumulative);
	buf_printf(t, "%s_sum %.6f\n%s_count %" PRIu64 "\n", name, sum, name, cumulative);
}

/* Per route, summed over the worker slots; a route never answered adds no series. */
static void durations_family(struct buf *t, struct shm_header *hdr)
{
	const char *name = "temporis_http_request_duration_seconds";

	family(t, name, "histogram", "Time from a request's complete head to its answer, by "
	       "route (an ingest request's includes waiting for its commit).");
	for (unsigned r = 0; r < SHM_METRIC_ROUTES; r++) {
		uint64_t counts[SHM_REQ_LAT_BUCKETS + 1] = { 0 }, sum_us = 0, cumulative = 0;

		for (unsigned slot = 0; slot < CFG_WORKERS_MAX; slot++) {
			struct shm_worker_stats *ws = &hdr->worker_stats[slot];

			for (unsigned b = 0; b <= SHM_REQ_LAT_BUCKETS; b++)
				counts[b] += load(&ws->duration[r][b]);
			sum_us += load(&ws->duration_us_sum[r]);
		}
		for (unsigned b = 0; b <= SHM_REQ_LAT_BUCKETS; b++)
			cumulative += counts[b];
		if (cumulative == 0)
			continue;
		cumulative = 0;
		for (unsigned b = 0; b < SHM_REQ_LAT_BUCKETS; b++) {
			cumulative += counts[b];
			buf_printf(t, "%s_bucket{route=\"%s\",le=\"%.10g\"} %" PRIu64 "\n", name,
				   route_labels[r], (double)shm_req_lat_bounds_us[b] / US_PER_S,
				   cumulative);
		}
		cumulative += counts[SHM_REQ_LAT_BUCKETS];
		buf_printf(t, "%s_bucket{route=\"%s\",le=\"+Inf\"} %" PRIu64 "\n", name,
			   route_labels[r], cumulative);
		buf_printf(t, "%s_sum{route=\"%s\"} %.6f\n%s_count{route=\"%s\"} %" PRIu64 "\n",
			   name, route_labels[r], (double)sum_us / US_PER_S, name, route_labels[r],
			   cumulative);
	}
}

static void counters(struct buf *t, struct shm_stats *st, struct shm_header *hdr)
{
	uint64_t bytes = 0;

	for (unsigned slot = 0; slot < CFG_WORKERS_MAX; slot++)
		bytes += load(&hdr->worker_stats[slot].ingest_bytes);
	metric(t, "temporis_ingest_bytes_received_total", "counter",
	       "Ingest request body bytes received (as sent, before gzip decoding).", bytes);
	metric(t, "temporis_records_committed_total", "counter", "Records committed to storage.",
	       load(&st->records_committed));
	metric(t, "temporis_requests_committed_total", "counter",
	       "Ingest requests committed to storage.", load(&st->entries_committed));
	metric(t, "temporis_commits_total", "counter", "Group commits written.", load(&st->commits));
	metric(t, "temporis_commit_failures_total", "counter",
	       "Group commits that failed (answered 500).", load(&st->commit_failures));
	metric(t, "temporis_busy_rejections_total", "counter",
	       "Ingest requests answered 503 because the ring was full.", load(&st->busy_rejections));
	metric(t, "temporis_commit_timeouts_total", "counter",
	       "Ingest requests answered 503 after commit_timeout_ms without a commit (they may "
	       "still be stored).", load(&st->commit_timeouts));
	metric(t, "temporis_disk_full_rejections_total", "counter",
	       "Ingest requests answered 507 before the ring because the disk was full.",
	       load(&st->disk_full_rejections));
	metric(t, "temporis_worker_restarts_total", "counter", "Worker processes respawned.",
	       load(&st->worker_restarts));
	metric(t, "temporis_writer_restarts_total", "counter", "Writer processes respawned.",
	       load(&st->writer_restarts));
}

/* What the writer last copied from the store (about once a second). */
static void store_family(struct buf *t, struct shm_stats *st)
{
	metric(t, "temporis_store_head_records", "gauge",
	       "Records committed and not yet sealed into their source's family (the commit log "
	       "holds them).", load(&st->store_head_records));
	metric(t, "temporis_store_seals_total", "counter", "Seals of the head done.",
	       load(&st->store_seals));
	metric(t, "temporis_store_seal_failures_total", "counter",
	       "Seals that failed (the commit log keeps their records; the seal is retried).",
	       load(&st->store_seal_failures));
	metric(t, "temporis_store_sealed_records_total", "counter",
	       "Records sealed into the source families.", load(&st->store_sealed_records));
	metric(t, "temporis_store_seal_files_total", "counter",
	       "Files seals built and ingested whole.", load(&st->store_seal_files));
	metric(t, "temporis_store_room_waits_total", "counter",
	       "Group commits that waited for a seal to make room in the head.",
	       load(&st->store_room_waits));
	metric(t, "temporis_store_sst_bytes", "gauge", "Bytes of the store's live SST files.",
	       load(&st->store_sst_bytes));
	metric(t, "temporis_store_pending_compaction_bytes", "gauge",
	       "Bytes RocksDB estimates compaction still has to rewrite.",
	       load(&st->store_pending_compaction_bytes));
	metric(t, "temporis_store_memtable_bytes", "gauge", "Bytes of the store's memtables.",
	       load(&st->store_memtable_bytes));
	metric(t, "temporis_store_wal_bytes", "gauge",
	       "Bytes of the store's write-ahead log files: what a restart replays.",
	       load(&st->store_wal_bytes));
	metric(t, "temporis_store_write_stopped", "gauge",
	       "1 while RocksDB stops writes (compaction far behind), else 0.",
	       load(&st->store_write_stopped));
	metric(t, "temporis_store_delayed_write_rate_bytes", "gauge",
	       "Bytes per second RocksDB slows writes to while compaction catches up; 0 when "
	       "it does not.", load(&st->store_delayed_write_rate));
}

static void gauges(struct buf *t, const struct shm *shm)
{
	const struct shm_header *hdr = shm->hdr;
	time_t now = time(NULL);

	metric(t, "temporis_disk_free_bytes", "gauge",
	       "Bytes free on the data directory's filesystem, as the writer last looked.",
	       atomic_load_explicit(&shm->hdr->stats.disk_free_bytes, memory_order_relaxed));
	metric(t, "temporis_disk_full", "gauge",
	       "0 while ingest is stored; 1 below min_free_disk; 2 after the store ran out of "
	       "space, until it reopens.",
	       atomic_load_explicit(&hdr->disk_state, memory_order_relaxed));
	metric(t, "temporis_workers", "gauge", "HTTP worker processes running.",
	       atomic_load_explicit(&shm->hdr->workers_running, memory_order_relaxed));
	family(t, "temporis_ring_fill_ratio", "gauge",
	       "Fill of the fullest ring lane (uncommitted requests), 0 to 1.");
	buf_printf(t, "temporis_ring_fill_ratio %.6f\n", shm_ring_fill(shm));
	metric(t, "temporis_ring_lane_bytes", "gauge", "Capacity of one ring lane (one per worker).",
	       hdr->lane_capacity);
	metric(t, "temporis_uptime_seconds", "gauge", "Seconds since the server started.",
	       now > hdr->started_at ? (uint64_t)(now - hdr->started_at) : 0);
}

/* ---- the server's processes, from /proc ---- */

static ssize_t read_text(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (f == NULL)
		return -1;
	n = fread(buf, 1, cap - 1, f);
	fclose(f);
	buf[n] = '\0';
	return (ssize_t)n;
}

/* The master (this worker's parent) and its children: the writer and the workers. */
static size_t server_pids(pid_t *pids, size_t cap)
{
	pid_t master = getppid();
	char path[64], text[PROC_TEXT_MAX], *p, *end;
	size_t n = 0;

	pids[n++] = master;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)master, (int)master);
	if (read_text(path, text, sizeof(text)) < 0)
		return n;
	for (p = text; n < cap; p = end) {
		long v = strtol(p, &end, 10);

		if (end == p)
			break;
		pids[n++] = (pid_t)v;
	}
	return n;
}

/* From /proc/PID/stat, which any process may read of another (the server's processes
 * are not dumpable after dropping root, so /proc/PID/fd of another is closed). */
struct proc_sums {
	double cpu_s;
	uint64_t rss_bytes;
};

static void add_process(pid_t pid, struct proc_sums *s)
{
	char path[64], text[PROC_TEXT_MAX], *p, *tok, *save = NULL;
	unsigned long long utime = 0, stime = 0, rss = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_text(path, text, sizeof(text)) < 0 || (p = strrchr(text, ')')) == NULL)
		return;  /* gone meanwhile */
	tok = strtok_r(p + 1, " ", &save);
	for (int i = 0; tok != NULL; i++, tok = strtok_r(NULL, " ", &save)) {
		if (i == STAT_UTIME)
			utime = strtoull(tok, NULL, 10);
		else if (i == STAT_STIME)
			stime = strtoull(tok, NULL, 10);
		else if (i == STAT_RSS)
			rss = strtoull(tok, NULL, 10);
	}
	s->cpu_s += (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
	s->rss_bytes += (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

static uint64_t open_fds(struct shm_header *hdr)
{
	uint64_t n = load(&hdr->stats.master_open_fds) + load(&hdr->stats.writer_open_fds);

	for (unsigned slot = 0; slot < CFG_WORKERS_MAX; slot++)
		n += load(&hdr->worker_stats[slot].open_fds);
	return n;
}

static void process_family(struct buf *t, const struct shm *shm)
{
	pid_t pids[SERVER_PIDS_MAX];
	size_t n = server_pids(pids, SERVER_PIDS_MAX);
	struct proc_sums s = { 0 };

	for (size_t i = 0; i < n; i++)
		add_process(pids[i], &s);
	family(t, "process_cpu_seconds_total", "counter",
	       "CPU seconds of the server's processes (master, writer, workers) together; a "
	       "respawned process starts again from 0.");
	buf_printf(t, "process_cpu_seconds_total %.2f\n", s.cpu_s);
	metric(t, "process_resident_memory_bytes", "gauge",
	       "Resident memory of the server's processes together (the shared ring counted in "
	       "each process that touched it).", s.rss_bytes);
	metric(t, "process_open_fds", "gauge",
	       "Open file descriptors of the server's processes together (each counts its own "
	       "about once a second).", open_fds(shm->hdr));
	metric(t, "process_max_fds", "gauge",
	       "The open-files limit (RLIMIT_NOFILE) of each of the server's processes.",
	       load(&shm->hdr->stats.max_fds));
	metric(t, "process_start_time_seconds", "gauge",
	       "Start of the server (its master process), in Unix seconds.",
	       shm->hdr->started_at > 0 ? (uint64_t)shm->hdr->started_at : 0);
	family(t, "temporis_build_info", "gauge", "The server's version; always 1.");
	buf_printf(t, "temporis_build_info{version=\"%s\"} 1\n", PACKAGE_VERSION);
}

char *metrics_render(const struct shm *shm, size_t *len)
{
	struct shm_stats *st = &shm->hdr->stats;
	struct buf t = { 0 };

	if (buf_reserve(&t, TEXT_INITIAL, TEXT_INITIAL) < 0)
		return NULL;
	requests_family(&t, shm->hdr);
	durations_family(&t, shm->hdr);
	counters(&t, st, shm->hdr);
	gauges(&t, shm);
	store_family(&t, st);
	process_family(&t, shm);
	histogram(&t, "temporis_commit_latency_seconds",
		  "Time to write one group commit (WriteBatch + WAL).", shm_lat_bounds_us,
		  SHM_LAT_BUCKETS, US_PER_S, st->commit_lat,
		  (double)load(&st->commit_us_sum) / US_PER_S);
	histogram(&t, "temporis_commit_batch_records", "Records written by one group commit.",
		  shm_batch_bounds, SHM_BATCH_BUCKETS, 1.0, st->commit_batch,
		  (double)load(&st->records_committed));
	if (t.failed) {
		buf_free(&t);
		return NULL;
	}
	*len = t.len;
	return t.data;         /* NUL-terminated: the last append was a buf_printf */
}

void metrics_serve(struct http_req *req, const struct shm *shm)
{
	size_t len;
	char *text = metrics_render(shm, &len);

	/* Rendered before the answer is counted: a scrape shows the scrapes before it. */
	if (text == NULL) {
		http_respond_error(req, 500, "Internal server error.", NULL);
		return;
	}
	http_respond(req, 200, CONTENT_TYPE, NULL, text, len);
	free(text);
}
