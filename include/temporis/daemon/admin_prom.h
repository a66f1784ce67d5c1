/*
 * admin_prom.h - the "prom" op: one call of the Prometheus HTTP API (query,
 * query_range, series, labels, label_values) on one data source, run in the writer
 * by the PromQL engine (promql.h) over the store (admin_prom.c). The answer is
 * Prometheus's own body, relayed by the worker as it is (admin_body_reply).
 *
 * The op's members, set by the worker that parsed the request (serve_prom.c):
 *   "call": "query" | "query_range" | "series" | "labels" | "label_values"
 *   "query": PromQL text (query, query_range)
 *   "time_ms" (query); "start_ms", "end_ms", "step_ms" (query_range; start and end
 *   also bound the other three when given)
 *   "match": [selector, ...] (series: at least one; labels, label_values: optional)
 *   "label": the label name (label_values)
 */
#ifndef TEMPORIS_DAEMON_ADMIN_PROM_H
#define TEMPORIS_DAEMON_ADMIN_PROM_H

#include <stdint.h>

#include "temporis/base/config.h"
#include "temporis/data/store.h"

struct json_object;

/* Run the call of req on source source_id; a body reply, or an error reply (bad
 * members: ADMIN_BAD_REQUEST). NULL only when out of memory. */
struct json_object *admin_prom_run(struct store *st, uint32_t source_id, const struct cfg *cfg,
				   struct json_object *req);

#endif
