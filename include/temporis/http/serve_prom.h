/*
 * serve_prom.h - the Prometheus HTTP API under /prometheus/{data_source}/api/v1/, what
 * Grafana's Prometheus data source and promtool call (serve_prom.c): query,
 * query_range, series, labels, label/NAME/values (answered by the writer's PromQL
 * engine), status/buildinfo, and empty metadata, query_exemplars, rules and alerts.
 * GET with the parameters in the query, or POST with them form-encoded in the body too.
 */
#ifndef TEMPORIS_HTTP_SERVE_PROM_H
#define TEMPORIS_HTTP_SERVE_PROM_H

#define PROM_ERROR_KEY "error"           /* Prometheus's error bodies' message member */
#define PROM_COMPAT_VERSION "2.42.0"     /* the Prometheus API version answered */

struct handler_env;
struct http_req;

void prom_api(struct handler_env *env, struct http_req *req);

#endif
