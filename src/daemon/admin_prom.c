/*
 * admin_prom.c - the "prom" op (admin_prom.h): the PromQL engine's store is the
 * writer's, read on the admin connection's thread like any read; the engine's answer
 * goes back as the body the worker relays. Owns nothing past the call.
 */
#include "temporis/daemon/admin_prom.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "temporis/base/jsonutil.h"
#include "temporis/data/promql.h"
#include "temporis/data/record.h"
#include "temporis/data/store_read.h"
#include "temporis/ipc/admin_msg.h"

#define MATCH_MAX 256                  /* match[] selectors of one call */
#define JSON_OUT_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

struct source_view {
	struct store *st;
	uint32_t id;
};

static int view_series(void *arg, promql_series_cb cb, void *cbarg)
{
	struct source_view *v = arg;

	return store_series(v->st, v->id, cb, cbarg);
}

struct point_feed {
	promql_point_cb cb;
	void *cbarg;
};

static int feed_point(const struct rec *r, void *arg)
{
	struct point_feed *f = arg;

	return f->cb(r->ts, r->type == REC_INT ? (double)r->v.i : r->v.d, f->cbarg);
}

static int view_points(void *arg, const char *name, size_t len, int64_t first, int64_t last,
		       promql_point_cb cb, void *cbarg)
{
	struct source_view *v = arg;
	struct point_feed f = { .cb = cb, .cbarg = cbarg };
	bool more = false;
	int64_t next = 0;

	return store_scan(v->st, v->id, name, len, first, last, UINT32_MAX, feed_point, &f, &more,
			  &next);
}

/* An int64 member, or dflt when absent; false when present but not an integer. */
static bool member_ms(struct json_object *req, const char *key, int64_t dflt, int64_t *out)
{
	struct json_object *v;

	*out = dflt;
	if (!json_object_object_get_ex(req, key, &v))
		return true;
	if (!json_object_is_type(v, json_type_int))
		return false;
	*out = json_object_get_int64(v);
	return true;
}

/* match[] into the arrays; the count, or -1 when malformed. */
static long member_match(struct json_object *req, const char **sel, size_t *len)
{
	struct json_object *arr, *v;
	size_t n;

	if (!json_object_object_get_ex(req, "match", &arr))
		return 0;
	if (!json_object_is_type(arr, json_type_array))
		return -1;
	n = json_object_array_length(arr);
	if (n > MATCH_MAX)
		return -1;
	for (size_t i = 0; i < n; i++) {
		v = json_object_array_get_idx(arr, i);
		if (!json_object_is_type(v, json_type_string))
			return -1;
		sel[i] = json_object_get_string(v);
		len[i] = (size_t)json_object_get_string_len(v);
	}
	return (long)n;
}

static struct json_object *bad(const char *msg)
{
	return admin_error(ADMIN_BAD_REQUEST, msg);
}

static struct json_object *as_body(struct json_object *answer, int status)
{
	size_t len;
	const char *text;
	struct json_object *reply;

	if (answer == NULL)
		return NULL;
	text = json_object_to_json_string_length(answer, JSON_OUT_FLAGS, &len);
	reply = text != NULL ? admin_body_reply(status, text, len) : NULL;
	json_object_put(answer);
	return reply;
}

struct json_object *admin_prom_run(struct store *st, uint32_t source_id, const struct cfg *cfg,
				   struct json_object *req)
{
	struct source_view view = { .st = st, .id = source_id };
	struct promql_store store = { .arg = &view, .each_series = view_series,
				      .points = view_points };
	struct promql_limits lim = { .max_series = cfg->query_max_series,
				     .max_points = cfg->query_max_points };
	const char *call = ju_str(req, "call"), *query = ju_str(req, "query");
	const char *label = ju_str(req, "label");
	const char *sel[MATCH_MAX];
	size_t sel_len[MATCH_MAX];
	int64_t t, start, end, step;
	long nmatch = member_match(req, sel, sel_len);
	int status = 500;
	struct json_object *answer;

	if (call == NULL)
		return bad("call is required.");
	if (nmatch < 0)
		return bad("match must be an array of at most 256 strings.");
	if (!member_ms(req, "time_ms", 0, &t) || !member_ms(req, "start_ms", INT64_MIN, &start) ||
	    !member_ms(req, "end_ms", INT64_MAX, &end) || !member_ms(req, "step_ms", 0, &step))
		return bad("time_ms, start_ms, end_ms and step_ms must be integers.");
	if (strcmp(call, "query") == 0 && query != NULL)
		answer = promql_query_instant(&store, &lim, query, strlen(query), t, &status);
	else if (strcmp(call, "query_range") == 0 && query != NULL)
		answer = promql_query_range(&store, &lim, query, strlen(query), start, end, step,
					    &status);
	else if (strcmp(call, "series") == 0)
		answer = promql_series(&store, &lim, sel, sel_len, (size_t)nmatch, start, end,
				       &status);
	else if (strcmp(call, "labels") == 0)
		answer = promql_labels(&store, &lim, sel, sel_len, (size_t)nmatch, start, end,
				       &status);
	else if (strcmp(call, "label_values") == 0 && label != NULL)
		answer = promql_label_values(&store, &lim, label, strlen(label), sel, sel_len,
					     (size_t)nmatch, start, end, &status);
	else
		return bad("call must be query or query_range (with query), series, labels, or "
			   "label_values (with label).");
	return as_body(answer, status);
}
