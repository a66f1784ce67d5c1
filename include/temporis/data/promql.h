/*
 * promql.h - a PromQL engine over any store: a subset of PromQL evaluated with
 * Prometheus 2.42's semantics, answering with the bodies of Prometheus's HTTP API
 * (/api/v1/query, query_range, series, labels, label/<name>/values). Pure: no HTTP,
 * no globals; each call owns its memory and frees it before returning, so calls may
 * run on several threads at once (over a store that allows it).
 *
 * Series: the store's series names are read back as labels by series_labels.h.
 * Supported: number and string literals, vector selectors with = != =~ !~ (POSIX
 * extended regexes, anchored), range selectors, offset, rate irate increase delta,
 * avg/min/max/sum/count_over_time, sum avg min max count topk with by/without,
 * + - * / % ^ and == != > < >= <= (bool) between scalars and vectors, unary minus.
 * Anything else is refused as bad_data naming the construct.
 */
#ifndef TEMPORIS_DATA_PROMQL_H
#define TEMPORIS_DATA_PROMQL_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

/* Return non-zero to stop the enumeration. */
typedef int (*promql_series_cb)(const char *name, size_t len, int64_t first_ts, int64_t last_ts,
				void *cbarg);
typedef int (*promql_point_cb)(int64_t ts, double v, void *cbarg);

/* What the engine reads; the caller implements it over the store. Times in seconds. */
struct promql_store {
	void *arg;
	/* Every series of the one data source being queried, any order, each with the
	 * time of its first and last point. 0, or -1 on a storage error. */
	int (*each_series)(void *arg, promql_series_cb cb, void *cbarg);
	/* The points of one series with first <= ts <= last, ascending. 0 or -1. */
	int (*points)(void *arg, const char *name, size_t len, int64_t first, int64_t last,
		      promql_point_cb cb, void *cbarg);
};

/* Per call: series selected (summed over the query's selectors), samples loaded.
 * A call that would pass one fails with an execution error (422); 0 allows none. */
struct promql_limits {
	size_t max_series;
	size_t max_points;
};

enum promql_status {
	PROMQL_OK = 200,
	PROMQL_BAD_DATA = 400,
	PROMQL_EXECUTION = 422,
	PROMQL_INTERNAL = 500,
};

/*
 * Each returns the whole response body, {"status":"success","data":...} or
 * {"status":"error","errorType":"bad_data"|"execution"|"internal","error":"..."},
 * and sets *http_status; the caller owns the object (json_object_put). NULL only
 * when memory ran out. Times in milliseconds.
 */
struct json_object *promql_query_instant(const struct promql_store *store,
					 const struct promql_limits *limits, const char *query,
					 size_t len, int64_t time_ms, int *http_status);
struct json_object *promql_query_range(const struct promql_store *store,
				       const struct promql_limits *limits, const char *query,
				       size_t len, int64_t start_ms, int64_t end_ms, int64_t step_ms,
				       int *http_status);

/*
 * The metadata calls. match[0..nmatch) are series selectors (match_len[i] bytes
 * each); a series counts when it matches any of them and has a point in
 * [start_ms, end_ms] by its first/last times (INT64_MIN / INT64_MAX: unbounded).
 * promql_series needs at least one selector; the other two take nmatch 0 as "all".
 * data: the label sets, sorted; the label names, sorted; the label's values, sorted.
 */
struct json_object *promql_series(const struct promql_store *store,
				  const struct promql_limits *limits, const char *const *match,
				  const size_t *match_len, size_t nmatch, int64_t start_ms,
				  int64_t end_ms, int *http_status);
struct json_object *promql_labels(const struct promql_store *store,
				  const struct promql_limits *limits, const char *const *match,
				  const size_t *match_len, size_t nmatch, int64_t start_ms,
				  int64_t end_ms, int *http_status);
struct json_object *promql_label_values(const struct promql_store *store,
					const struct promql_limits *limits, const char *label,
					size_t label_len, const char *const *match,
					const size_t *match_len, size_t nmatch, int64_t start_ms,
					int64_t end_ms, int *http_status);

/*
 * Request parameters as Prometheus reads them: a time is float Unix seconds
 * ("1718841600.5", rounded to the millisecond) or RFC 3339 ("2024-06-20T00:00:00Z",
 * "...T02:00:00.5+02:00"); a duration is "5m", "1h30m" (PromQL units) or float
 * seconds. 0, or -1 when the text is none of these.
 */
int promql_parse_time(const char *text, size_t len, int64_t *ms);
int promql_parse_duration(const char *text, size_t len, int64_t *ms);

#endif
