/*
 * metrics.h - the Prometheus exposition served on GET /metrics, and the counters
 * behind it that are not plain shm_stats fields: requests by route and status and
 * ingest bytes (per worker slot). The writer's commit counters are shm_stats_commit's.
 * Every figure is an aggregate: no account, token or data source name is ever a label.
 */
#ifndef TEMPORIS_METRICS_H
#define TEMPORIS_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "temporis/http/routes.h"
#include "temporis/ipc/shm.h"

struct worker;
struct http_req;

/* Worker: one answered request of route with HTTP status (any code; unknown ones
 * are counted as status="other"). */
void metrics_count(struct worker *w, enum route_id route, int status);
/* Worker: an ingest request body of len bytes arrived (as sent, before gunzip). */
void metrics_bytes_received(struct worker *w, size_t len);

/*
 * The exposition text (Prometheus text format 0.0.4) of the whole server, in a
 * malloc'd buffer the caller frees; NULL on allocation failure.
 */
char *metrics_render(const struct shm *shm, size_t *len);
/* Worker: answer GET /metrics (counted as route="metrics" itself). */
void metrics_serve(struct worker *w, struct http_req *req);

#endif
