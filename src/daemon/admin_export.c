/*
 * admin_export.c - the "export" op (admin_export.h): one page of a source's records,
 * walked across series in name order from a cursor, for the worker that streams the
 * export (serve_export.c); and, for a line-protocol export, the check that every
 * series in range has a line-protocol name before the first byte is sent. Owns
 * nothing past the call.
 */
#include "temporis/daemon/admin_export.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "temporis/base/buf.h"
#include "temporis/base/jsonutil.h"
#include "temporis/data/ingest_lp.h"
#include "temporis/data/record.h"
#include "temporis/data/series_lp.h"
#include "temporis/data/store_read.h"
#include "temporis/ipc/admin_msg.h"

#define ADMIN_ERR_MAX 512
#define MSG_INTERNAL "Internal error."

typedef struct json_object json;

static json *internal_error(void)
{
	return admin_error(ADMIN_FAILED, MSG_INTERNAL);
}

/* A string member into *out (NULL when absent and not required); NULL, or the error
 * reply. */
static json *member_str(json *o, const char *key, bool required, const char **out)
{
	char msg[ADMIN_ERR_MAX];
	json *v = NULL;

	*out = NULL;
	if (!json_object_object_get_ex(o, key, &v) || v == NULL) {
		if (!required)
			return NULL;
		snprintf(msg, sizeof(msg), "%s is required.", key);
		return admin_error(ADMIN_BAD_REQUEST, msg);
	}
	if (!json_object_is_type(v, json_type_string)) {
		snprintf(msg, sizeof(msg), "%s must be a string.", key);
		return admin_error(ADMIN_BAD_REQUEST, msg);
	}
	*out = json_object_get_string(v);
	return NULL;
}

#define EXPORT_WHY_MAX (REC_NAME_MAX * 2 + ADMIN_ERR_MAX)

/* One page of an export (admin_msg.h): the series walked, the records collected. */
struct export_page {
	struct store *st;
	uint32_t source_id;
	int64_t first, last;             /* the range, both inclusive */
	const char *only;                /* "series": this one alone, else NULL */
	size_t only_len;
	const char *after;               /* the cursor's series, else NULL */
	size_t after_len;
	int64_t after_ts;
	uint32_t limit, given;
	json *series;                    /* the reply's array */
	json *points;                    /* the current series' [ts, v, ...], or NULL */
	const char *name;                /* the series being scanned */
	size_t name_len;
	json *next;                      /* the cursor, once the page is full */
	bool failed;
	/* the line-protocol check */
	struct ingest_lp *lp;
	struct buf key;
	char why[EXPORT_WHY_MAX];
};

static bool same_name(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen == blen && memcmp(a, b, alen) == 0;
}

/* Whether a series with records in [first, last] may hold some of the page's range. */
static bool in_range(const struct export_page *p, int64_t first, int64_t last)
{
	return last >= p->first && first <= p->last;
}

static int export_point(const struct rec *r, void *arg)
{
	struct export_page *p = arg;
	json *o;

	if (p->points == NULL) {
		o = json_object_new_object();
		p->points = json_object_new_array();
		if (o == NULL || p->points == NULL || ju_add_strn(o, "name", p->name, p->name_len) ||
		    ju_add(o, "points", p->points) || json_object_array_add(p->series, o)) {
			json_object_put(o);
			p->failed = true;
			return 1;
		}
	}
	if (json_object_array_add(p->points, json_object_new_int64(r->ts)) != 0 ||
	    json_object_array_add(p->points, r->type == REC_INT ? json_object_new_int64(r->v.i)
								: ju_double(r->v.d)) != 0) {
		p->failed = true;
		return 1;
	}
	p->given++;
	return 0;
}

static int export_cursor(struct export_page *p, const char *name, size_t len, int64_t ts)
{
	p->next = json_object_new_object();
	if (p->next == NULL || ju_add_strn(p->next, "name", name, len) || ju_add_int(p->next, "ts", ts))
		p->failed = true;
	return 1;
}

/* store_series_from's callback: the series' records in range, as many as fit. */
static int export_series(const char *name, size_t len, int64_t first, int64_t last, void *arg)
{
	struct export_page *p = arg;
	int64_t from = p->first, next_ts = 0;
	bool more = false;

	if (p->only != NULL && !same_name(name, len, p->only, p->only_len))
		return 1;                    /* past the one series asked for */
	if (!in_range(p, first, last))
		return 0;
	if (p->after != NULL && same_name(name, len, p->after, p->after_len) && p->after_ts > from)
		from = p->after_ts;
	if (from > p->last)
		return 0;
	if (p->given == p->limit)
		return export_cursor(p, name, len, from);
	p->name = name;
	p->name_len = len;
	p->points = NULL;
	if (store_scan(p->st, p->source_id, name, len, from, p->last, p->limit - p->given,
		       export_point, p, &more, &next_ts) < 0)
		p->failed = true;
	if (p->failed)
		return 1;
	return more ? export_cursor(p, name, len, next_ts) : 0;
}

/* The line-protocol check's callback: stops at the first series no line can name. */
static int export_check_series(const char *name, size_t len, int64_t first, int64_t last,
			       void *arg)
{
	struct export_page *p = arg;
	const char *why = NULL;
	int rc;

	if (p->only != NULL && !same_name(name, len, p->only, p->only_len))
		return 1;
	if (!in_range(p, first, last))
		return 0;
	buf_reset(&p->key);
	rc = series_lp_key(p->lp, name, len, &p->key, &why);
	if (rc == -2)
		p->failed = true;
	else if (rc == -1)
		snprintf(p->why, sizeof(p->why), "Series %.*s cannot be exported as line protocol: "
			 "%s; export this source as ndjson or csv.", (int)len, name, why);
	return rc != 0;
}

/* NULL when every series in range has a line-protocol name, else the error reply. */
static json *export_check_line(struct export_page *p)
{
	json *reply = NULL;
	int rc;

	p->lp = ingest_lp_new();
	if (p->lp == NULL)
		return internal_error();
	rc = store_series_from(p->st, p->source_id, p->only ? p->only : "", p->only_len,
			       export_check_series, p);
	if (rc < 0 || p->failed)
		reply = internal_error();
	else if (p->why[0] != '\0')
		reply = admin_error(ADMIN_INVALID, p->why);
	ingest_lp_free(p->lp);
	buf_free(&p->key);
	return reply;
}

/* An optional integer member into *out: -1 when it is there but not an int64. */
static int member_int64(json *req, const char *key, int64_t *out, bool *has)
{
	json *v = NULL;

	*has = json_object_object_get_ex(req, key, &v) && v != NULL;
	if (!*has)
		return 0;
	if (!json_object_is_type(v, json_type_int))
		return -1;
	*out = json_object_get_int64(v);
	return 0;
}

/* The page's arguments from req; NULL, or the error reply. */
static json *export_args(struct export_page *p, json *req)
{
	int64_t start = INT64_MIN, end = INT64_MAX, limit = 0;
	bool has_start, has_end, has_limit, has_ts;
	json *after = NULL, *reply = NULL;

	if ((reply = member_str(req, "series", false, &p->only)) != NULL)
		return reply;
	p->only_len = p->only ? strlen(p->only) : 0;
	if (member_int64(req, "start", &start, &has_start) < 0 ||
	    member_int64(req, "end", &end, &has_end) < 0 ||
	    member_int64(req, "limit", &limit, &has_limit) < 0 || !has_limit || limit < 1 ||
	    limit > EXPORT_PAGE_MAX)
		return admin_error(ADMIN_BAD_REQUEST, "start, end and limit must be integers.");
	/* end is exclusive; without one the range runs through INT64_MAX itself */
	p->first = start;
	p->last = !has_end ? INT64_MAX : end == INT64_MIN ? INT64_MIN : end - 1;
	if (has_end && end == INT64_MIN)
		p->first = INT64_MAX;        /* nothing is below the smallest timestamp: empty */
	p->limit = (uint32_t)limit;
	if (json_object_object_get_ex(req, "after", &after) && after != NULL) {
		if ((reply = member_str(after, "name", true, &p->after)) != NULL)
			return reply;
		p->after_len = strlen(p->after);
		if (member_int64(after, "ts", &p->after_ts, &has_ts) < 0 || !has_ts)
			return admin_error(ADMIN_BAD_REQUEST, "after.ts must be an integer.");
	}
	return NULL;
}

json *admin_export_run(struct store *st, uint32_t source_id, json *req)
{
	struct export_page p = { .st = st, .source_id = source_id };
	const char *from;
	json *reply;
	size_t from_len;
	int rc;

	if ((reply = export_args(&p, req)) != NULL)
		return reply;
	if (json_object_get_boolean(json_object_object_get(req, "line")) &&
	    (reply = export_check_line(&p)) != NULL)
		return reply;
	p.series = json_object_new_array();
	if (p.series == NULL)
		return internal_error();
	from = p.after ? p.after : p.only ? p.only : "";
	from_len = p.after ? p.after_len : p.only_len;
	if (p.first <= p.last &&
	    store_series_from(st, source_id, from, from_len, export_series, &p) < 0)
		p.failed = true;
	reply = json_object_new_object();
	rc = -1;
	if (!p.failed && reply != NULL) {
		rc = ju_add(reply, "series", p.series);   /* takes p.series, even on failure */
		p.series = NULL;
	}
	/* JSON null: the last page */
	if (rc == 0) {
		rc = json_object_object_add(reply, "next", p.next);
		if (rc == 0)
			p.next = NULL;
	}
	json_object_put(p.series);
	json_object_put(p.next);
	if (rc == 0)
		return reply;
	json_object_put(reply);
	return internal_error();
}
