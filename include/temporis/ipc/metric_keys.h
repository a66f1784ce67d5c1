/*
 * metric_keys.h - the keys of the per-worker request counters in shared memory:
 * the route labels of /metrics and the HTTP statuses counted one by one. Each list
 * is written once here; the counter array (shm.h), the route table (routes.c) and
 * the exposition (serve_metrics.c) all follow from it.
 */
#ifndef TEMPORIS_IPC_METRIC_KEYS_H
#define TEMPORIS_IPC_METRIC_KEYS_H

/* X(ID, "label"): every route label, in counter order; "other" is 404s and 405s. */
#define METRIC_ROUTE_LABELS(X)                                                     \
	X(INGEST, "ingest") X(SOURCES, "sources") X(SOURCE, "source")              \
	X(SERIES, "series") X(RECORDS, "records") X(ARCHIVE, "archive")            \
	X(HEALTHZ, "healthz") X(METRICS, "metrics") X(INFLUX, "influx_write")          \
	X(PING, "ping") X(REMOTE_WRITE, "remote_write") X(PROM_QUERY, "prometheus_api") \
	X(EXPORT, "export") \
	X(OTHER, "other")

enum metric_route {
#define METRIC_ROUTE_ENUM(id, label) METRIC_ROUTE_##id,
	METRIC_ROUTE_LABELS(METRIC_ROUTE_ENUM)
#undef METRIC_ROUTE_ENUM
	METRIC_ROUTES                    /* how many labels */
};

/* X(code): every status this server answers; any other is counted as "other". */
#define METRIC_STATUS_CODES(X)                                                      \
	X(200) X(201) X(204) X(400) X(401) X(404) X(405) X(408) X(409) X(413) X(415) \
	X(417) X(422) X(431) X(500) X(501) X(503) X(505) \
	X(507)

enum metric_status {
#define METRIC_STATUS_ENUM(code) METRIC_STATUS_##code,
	METRIC_STATUS_CODES(METRIC_STATUS_ENUM)
#undef METRIC_STATUS_ENUM
	METRIC_STATUS_OTHER,             /* the column after the known codes */
	METRIC_STATUSES                  /* how many columns */
};

#endif
