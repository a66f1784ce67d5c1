/*
 * metrics.c - GET /metrics: the Prometheus text exposition of the whole server.
 *
 * Owns the meaning of the metrics counters in shared memory (route labels, status
 * codes, records-per-commit bounds) and the rendering. Everything is summed over
 * processes and worker slots; no tenant or source name is ever part of the output.
 */
#include "temporis/http/serve_metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "temporis/http/server.h"
#include "temporis/daemon/worker.h"

#define TEXT_INITIAL 8192
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

static enum metric_route route_label_of(enum route_id route)
{
	switch (route) {
	case ROUTE_INGEST: return METRIC_ROUTE_INGEST;
	case ROUTE_SOURCES_LIST: case ROUTE_SOURCES_CREATE: return METRIC_ROUTE_SOURCES;
	case ROUTE_SOURCE_GET: return METRIC_ROUTE_SOURCE;
	case ROUTE_SOURCE_ARCHIVE: case ROUTE_SOURCE_UNARCHIVE: return METRIC_ROUTE_ARCHIVE;
	case ROUTE_SOURCE_SERIES: return METRIC_ROUTE_SERIES;
	case ROUTE_SOURCE_RECORDS: return METRIC_ROUTE_RECORDS;
	case ROUTE_HEALTHZ: return METRIC_ROUTE_HEALTHZ;
	case ROUTE_METRICS: return METRIC_ROUTE_METRICS;
	default: return METRIC_ROUTE_OTHER;
	}
}

static unsigned status_index(int status)
{
	unsigned i = 0;

	while (i < STATUS_KNOWN && status_codes[i] != status)
		i++;
	return i;
}

void metrics_count(struct worker *w, enum route_id route, int status)
{
	struct shm_worker_stats *ws = &w->shm->hdr->worker_stats[w->index];

	atomic_fetch_add_explicit(&ws->requests[route_label_of(route)][status_index(status)], 1,
				  memory_order_relaxed);
}

void metrics_bytes_received(struct worker *w, size_t len)
{
	struct shm_worker_stats *ws = &w->shm->hdr->worker_stats[w->index];

	atomic_fetch_add_explicit(&ws->ingest_bytes, len, memory_order_relaxed);
}

/* ---- the text: a growing buffer; a failed append poisons it ---- */

struct text {
	char *buf;
	size_t len, cap;
	bool failed;
};

static void text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->failed = true;
			return;
		}
		if ((size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = t->cap * 2 + (size_t)n;
		char *grown = realloc(t->buf, cap);

		if (grown == NULL) {
			t->failed = true;
			return;
		}
		t->buf = grown;
		t->cap = cap;
	}
}

static void family(struct text *t, const char *name, const char *type, const char *help)
{
	text_add(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metric(struct text *t, const char *name, const char *type, const char *help,
		   uint64_t value)
{
	family(t, name, type, help);
	text_add(t, "%s %" PRIu64 "\n", name, value);
}

/* ---- the families ---- */

static uint64_t load(_Atomic uint64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

/* Only pairs that ever happened: a route never called adds no series. */
static void requests_family(struct text *t, struct shm_header *hdr)
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
				text_add(t, "%s{route=\"%s\",status=\"%d\"} %" PRIu64 "\n", name,
					 route_labels[r], status_codes[s], sum);
			else
				text_add(t, "%s{route=\"%s\",status=\"other\"} %" PRIu64 "\n", name,
					 route_labels[r], sum);
		}
	}
}

/* buckets has nbounds + 1 counters (the last is +Inf); bounds are divided by scale. */
static void histogram(struct text *t, const char *name, const char *help,
		      const uint64_t *bounds, unsigned nbounds, double scale,
		      _Atomic uint64_t *buckets, double sum)
{
	uint64_t cumulative = 0;

	family(t, name, "histogram", help);
	for (unsigned i = 0; i < nbounds; i++) {
		cumulative += load(&buckets[i]);
		text_add(t, "%s_bucket{le=\"%.10g\"} %" PRIu64 "\n", name, (double)bounds[i] / scale,
			 cumulative);
	}
	cumulative += load(&buckets[nbounds]);
	text_add(t, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, cumulative);
	text_add(t, "%s_sum %.6f\n%s_count %" PRIu64 "\n", name, sum, name, cumulative);
}

static void counters(struct text *t, struct shm_stats *st, struct shm_header *hdr)
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
	metric(t, "temporis_worker_restarts_total", "counter", "Worker processes respawned.",
	       load(&st->worker_restarts));
	metric(t, "temporis_writer_restarts_total", "counter", "Writer processes respawned.",
	       load(&st->writer_restarts));
}

static void gauges(struct text *t, const struct shm *shm)
{
	const struct shm_header *hdr = shm->hdr;
	time_t now = time(NULL);

	metric(t, "temporis_workers", "gauge", "HTTP worker processes running.",
	       atomic_load_explicit(&shm->hdr->workers_running, memory_order_relaxed));
	family(t, "temporis_ring_fill_ratio", "gauge",
	       "Fill of the fullest ring lane (uncommitted requests), 0 to 1.");
	text_add(t, "temporis_ring_fill_ratio %.6f\n", shm_ring_fill(shm));
	metric(t, "temporis_ring_lane_bytes", "gauge", "Capacity of one ring lane (one per worker).",
	       hdr->lane_capacity);
	metric(t, "temporis_uptime_seconds", "gauge", "Seconds since the server started.",
	       now > hdr->started_at ? (uint64_t)(now - hdr->started_at) : 0);
}

char *metrics_render(const struct shm *shm, size_t *len)
{
	struct shm_stats *st = &shm->hdr->stats;
	struct text t = { .buf = malloc(TEXT_INITIAL), .cap = TEXT_INITIAL };

	if (t.buf == NULL)
		return NULL;
	requests_family(&t, shm->hdr);
	counters(&t, st, shm->hdr);
	gauges(&t, shm);
	histogram(&t, "temporis_commit_latency_seconds",
		  "Time to write one group commit (WriteBatch + WAL).", shm_lat_bounds_us,
		  SHM_LAT_BUCKETS, US_PER_S, st->commit_lat,
		  (double)load(&st->commit_us_sum) / US_PER_S);
	histogram(&t, "temporis_commit_batch_records", "Records written by one group commit.",
		  shm_batch_bounds, SHM_BATCH_BUCKETS, 1.0, st->commit_batch,
		  (double)load(&st->records_committed));
	if (t.failed) {
		free(t.buf);
		return NULL;
	}
	*len = t.len;
	return t.buf;
}

void metrics_serve(struct worker *w, struct http_req *req)
{
	size_t len;
	char *text;

	text = metrics_render(w->shm, &len);
	if (text == NULL) {
		metrics_count(w, ROUTE_METRICS, 500);
		http_respond_error(req, 500, "Internal server error.", NULL);
		return;
	}
	/* Counted after rendering: a scrape shows the scrapes before it. */
	metrics_count(w, ROUTE_METRICS, 200);
	http_respond(req, 200, CONTENT_TYPE, NULL, text, len);
	free(text);
}
