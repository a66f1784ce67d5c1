/*
 * serve_metrics.h - the Prometheus exposition served on GET /metrics, and the counters
 * behind it that are not plain shm_stats fields: requests by route label and status,
 * and ingest bytes, per worker slot. The writer's commit counters are shm_stats_commit's.
 * Every figure is an aggregate: no account, token or data source name is ever a label.
 */
#ifndef TEMPORIS_HTTP_SERVE_METRICS_H
#define TEMPORIS_HTTP_SERVE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "temporis/ipc/metric_keys.h"
#include "temporis/ipc/shm.h"

struct http_req;

/* One answered request of route with HTTP status (unlisted codes count as "other"),
 * in the counters of one worker slot. */
void metrics_count(struct shm_worker_stats *ws, enum metric_route route, int status);
/* One answered request of route took micros, from its complete head to its answer. */
void metrics_duration(struct shm_worker_stats *ws, enum metric_route route, uint64_t micros);
/* An ingest request body of len bytes arrived (as sent, before gunzip). */
void metrics_bytes_received(struct shm_worker_stats *ws, size_t len);

/*
 * The exposition text (Prometheus text format 0.0.4) of the whole server, in a
 * malloc'd NUL-terminated buffer of *len bytes the caller frees; NULL when out of memory.
 */
char *metrics_render(const struct shm *shm, size_t *len);
/* Answer GET /metrics for req with the exposition of shm. */
void metrics_serve(struct http_req *req, const struct shm *shm);

#endif
