/*
 * serve_export.c - the export of a data source (serve_export.h). Owns each export's
 * job: its query, the writer's cursor, the page being encoded and its slot of the
 * worker's writer connections, from the request until the stream ends or the client
 * leaves. One page (EXPORT_PAGE_RECORDS records) is in memory at a time: the next is
 * asked only once the connection's output has drained (server.h's streams), so the
 * worker's memory does not grow with the source.
 */
#include "temporis/http/serve_export.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "temporis/base/buf.h"
#include "temporis/base/jsonutil.h"
#include "temporis/base/log.h"
#include "temporis/data/ingest_lp.h"
#include "temporis/data/series_lp.h"
#include "temporis/http/handler.h"
#include "temporis/http/server.h"
#include "temporis/http/uri.h"
#include "temporis/http/writer_call.h"
#include "temporis/ipc/admin_msg.h"

/*
 * Records per page, by measurement (1 M records of 4,000 series as NDJSON, one worker,
 * release build, 2 shared cores): 16-17 s at 1,000 a page, 5.9-6.0 s at 5,000, 4.0-5.0 s
 * at 20,000, with the worker's peak RSS 19.2, 19.2 and 22.8 MB. Each page costs the writer
 * a walk of the heads' series besides its records, so small pages are slow; a page of
 * 20,000 costs a few MB.
 */
#define EXPORT_PAGE_RECORDS 20000
#define EXPORT_OUT_INITIAL (256 * 1024)
#define QUERY_VALUE_MAX (REC_NAME_MAX + 1)
#define INT64_TEXT_MAX 24
#define JSON_ESCAPE_MAX 6                /* bytes one name byte may become: \u00XX */
#define RETRY_AFTER "Retry-After: 1\r\n"

#define CSV_HEADER "timestamp,name,value\r\n"

enum export_format { FMT_NDJSON, FMT_CSV, FMT_LINE };

static const struct {
	const char *name;
	const char *ctype;
} formats[] = {
	[FMT_NDJSON] = { "ndjson", "application/x-ndjson" },
	[FMT_CSV] = { "csv", "text/csv; charset=utf-8; header=present" },
	[FMT_LINE] = { "line", "text/plain; charset=utf-8" },
};

struct export_job {
	struct handler_env *env;
	struct http_req *req;
	enum export_format fmt;
	bool has_start, has_end;
	int64_t start, end;
	char *only;                      /* name=: the one series, or NULL */
	char account[CATALOG_NAME_MAX + 1];
	char *source;
	struct buf cursor;               /* the next page's series ("" before the first) */
	int64_t cursor_ts;
	bool has_cursor;
	struct writer_call *call;        /* the page asked for, or NULL */
	bool streaming;                  /* the head went out: errors can only cut the body */
	struct buf out;                  /* one page's text, reused */
	struct buf name;                 /* the current series as this format writes it */
	struct ingest_lp *lp;            /* line: proves each series' key */
	uint64_t records, skipped;
	bool nomem;                      /* the query could not be kept */
};

static void job_free(struct export_job *job)
{
	if (job->skipped > 0)
		log_warn("export of %s: %" PRIu64 " records of series created during the export "
			 "have no line-protocol name and were left out", job->source, job->skipped);
	writer_call_cancel(job->call);
	writer_slot_release(job->env);
	ingest_lp_free(job->lp);
	buf_free(&job->cursor);
	buf_free(&job->out);
	buf_free(&job->name);
	free(job->only);
	free(job->source);
	free(job);
}

/* ---- the formats ---- */

static void put_int(struct buf *b, int64_t v)
{
	char text[INT64_TEXT_MAX];
	int n = snprintf(text, sizeof(text), "%" PRId64, v);

	buf_append(b, text, (size_t)n);
}

/* Integers as integers; doubles with the fewest digits that read back to the same bits,
 * always with a '.' or an exponent so that no reader takes them for integers. */
static void put_value(struct buf *b, struct json_object *v, bool line)
{
	char text[JU_DOUBLE_TEXT_MAX];

	if (json_object_is_type(v, json_type_int)) {
		put_int(b, json_object_get_int64(v));
		if (line)
			buf_append(b, "i", 1);
		return;
	}
	buf_append(b, text, ju_double_text(json_object_get_double(v), text));
}

static void json_string(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t run = 0;

	buf_append(b, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[JSON_ESCAPE_MAX] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF] };

		if (c != '"' && c != '\\' && c >= 0x20)
			continue;
		buf_append(b, s + run, i - run);
		if (c == '"' || c == '\\') {
			esc[1] = (char)c;
			buf_append(b, esc, 2);
		} else {
			buf_append(b, esc, sizeof(esc));
		}
		run = i + 1;
	}
	buf_append(b, s + run, n - run);
	buf_append(b, "\"", 1);
}

/* RFC 4180: a field with a comma, quote or line break, or edge blanks, is quoted, and
 * its quotes doubled. */
static void csv_field(struct buf *b, const char *s, size_t n)
{
	bool quote = n > 0 && (s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' || s[n - 1] == '\t');
	size_t run = 0;

	for (size_t i = 0; i < n && !quote; i++)
		quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
	if (!quote) {
		buf_append(b, s, n);
		return;
	}
	buf_append(b, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '"')
			continue;
		buf_append(b, s + run, i + 1 - run);
		buf_append(b, "\"", 1);
		run = i + 1;
	}
	buf_append(b, s + run, n - run);
	buf_append(b, "\"", 1);
}

/* The series' name as the format writes it into job->name; false: leave it out. */
static bool series_prefix(struct export_job *job, const char *name, size_t len)
{
	const char *why = NULL;

	buf_reset(&job->name);
	switch (job->fmt) {
	case FMT_NDJSON:
		buf_append(&job->name, ",\"name\":", strlen(",\"name\":"));
		json_string(&job->name, name, len);
		buf_append(&job->name, ",\"value\":", strlen(",\"value\":"));
		return true;
	case FMT_CSV:
		buf_append(&job->name, ",", 1);
		csv_field(&job->name, name, len);
		buf_append(&job->name, ",", 1);
		return true;
	case FMT_LINE:
		/* checked before the first page; only a series created since can fail */
		return series_lp_key(job->lp, name, len, &job->name, &why) == 0;
	}
	return false;
}

static void put_record(struct export_job *job, struct json_object *ts, struct json_object *v)
{
	struct buf *b = &job->out;

	switch (job->fmt) {
	case FMT_NDJSON:
		buf_append(b, "{\"timestamp\":", strlen("{\"timestamp\":"));
		put_int(b, json_object_get_int64(ts));
		buf_append(b, job->name.data, job->name.len);
		put_value(b, v, false);
		buf_append(b, "}\n", 2);
		break;
	case FMT_CSV:
		put_int(b, json_object_get_int64(ts));
		buf_append(b, job->name.data, job->name.len);
		put_value(b, v, false);
		buf_append(b, "\r\n", 2);
		break;
	case FMT_LINE:
		buf_append(b, job->name.data, job->name.len);
		put_value(b, v, true);
		buf_append(b, " ", 1);
		put_int(b, json_object_get_int64(ts));
		buf_append(b, "\n", 1);
		break;
	}
}

/* One page of the writer's reply into job->out. -1 when the reply is malformed. */
static int encode_page(struct export_job *job, struct json_object *series)
{
	for (size_t i = 0; i < json_object_array_length(series); i++) {
		struct json_object *s = json_object_array_get_idx(series, i);
		struct json_object *pts = ju_arr(s, "points");
		const char *name = ju_str(s, "name");
		size_t n = pts ? json_object_array_length(pts) : 0;

		if (name == NULL || pts == NULL || n % 2 != 0)
			return -1;
		if (!series_prefix(job, name, strlen(name))) {
			job->skipped += n / 2;
			continue;
		}
		for (size_t k = 0; k < n; k += 2)
			put_record(job, json_object_array_get_idx(pts, k),
				   json_object_array_get_idx(pts, k + 1));
		job->records += n / 2;
	}
	return job->out.failed || job->name.failed ? -1 : 0;
}

/* ---- the pages ---- */

static void on_page(void *arg, struct json_object *reply);

static struct json_object *page_op(const struct export_job *job)
{
	struct json_object *op = json_object_new_object(), *after = NULL;
	int rc = op ? 0 : -1;

	rc = rc ? rc : ju_add_str(op, "op", "export");
	rc = rc ? rc : ju_add_str(op, "account", job->account);
	rc = rc ? rc : ju_add_str(op, "source", job->source);
	rc = rc ? rc : ju_add_int(op, "limit", EXPORT_PAGE_RECORDS);
	if (rc == 0 && job->only)
		rc = ju_add_str(op, "series", job->only);
	if (rc == 0 && job->has_start)
		rc = ju_add_int(op, "start", job->start);
	if (rc == 0 && job->has_end)
		rc = ju_add_int(op, "end", job->end);
	if (rc == 0 && job->fmt == FMT_LINE && !job->streaming)
		rc = ju_add_bool(op, "line", true);
	if (rc == 0 && job->has_cursor) {
		after = json_object_new_object();
		rc = after ? 0 : -1;
		rc = rc ? rc : ju_add_strn(after, "name", job->cursor.data, job->cursor.len);
		rc = rc ? rc : ju_add_int(after, "ts", job->cursor_ts);
		rc = rc ? rc : ju_add(op, "after", after);
		after = rc ? after : NULL;
	}
	if (rc != 0) {
		json_object_put(after);
		json_object_put(op);
		return NULL;
	}
	return op;
}

/* Ask the writer for the page at the cursor. False when it cannot be asked. */
static bool ask_page(struct export_job *job)
{
	job->call = writer_call_start(job->env, page_op(job), on_page, job);
	return job->call != NULL;
}

/* The stream cannot go on: the client must see a truncated body, not a short one. */
static void job_fail(struct export_job *job, const char *why)
{
	log_error("export of %s cut after %" PRIu64 " records: %s", job->source, job->records, why);
	if (job->streaming)
		http_stream_abort(job->req);
	else
		http_respond_error(job->req, 503, "Server is busy, retry later.", RETRY_AFTER);
	job_free(job);
}

static void stream_more(struct http_req *req, void *arg)
{
	struct export_job *job = arg;

	if (!ask_page(job))
		job_fail(job, "the writer cannot be reached");
}

static void stream_closed(struct http_req *req, void *arg)
{
	job_free(arg);                   /* cancels the page in flight, if any */
}

static const struct http_stream_ops export_stream = {
	.on_more = stream_more,
	.on_close = stream_closed,
};

/* The first page is good: the 200 and its head go out. False when nothing follows. */
static bool stream_begin(struct export_job *job)
{
	struct req_ctx *ctx = job->req->user;

	ctx->pending = NULL;              /* from now on the stream tells us of the client */
	if (http_stream_start(job->req, 200, formats[job->fmt].ctype, NULL, &export_stream,
			      job) < 0) {
		job_free(job);
		return false;
	}
	job->streaming = true;
	if (job->fmt == FMT_CSV)
		buf_append(&job->out, CSV_HEADER, strlen(CSV_HEADER));
	return true;
}

/* Where the next page starts; false at the last page. -1 when the cursor is malformed. */
static int take_cursor(struct export_job *job, struct json_object *reply)
{
	struct json_object *next = NULL, *ts = NULL;
	const char *name;

	if (!json_object_object_get_ex(reply, "next", &next) || next == NULL)
		return 0;
	name = ju_str(next, "name");
	if (name == NULL || !json_object_object_get_ex(next, "ts", &ts) ||
	    !json_object_is_type(ts, json_type_int))
		return -1;
	buf_reset(&job->cursor);
	if (buf_append(&job->cursor, name, strlen(name)) < 0)
		return -1;
	job->cursor_ts = json_object_get_int64(ts);
	job->has_cursor = true;
	return 1;
}

static void on_page(void *arg, struct json_object *reply)
{
	struct export_job *job = arg;
	struct json_object *series = reply ? ju_arr(reply, "series") : NULL;
	int more;

	job->call = NULL;
	if (reply == NULL) {
		job_fail(job, "the writer did not answer");
		return;
	}
	if (json_object_object_get_ex(reply, "error", NULL) && !job->streaming) {
		((struct req_ctx *)job->req->user)->pending = NULL;
		writer_respond_error(job->req, reply);
		job_free(job);
		return;
	}
	more = series ? take_cursor(job, reply) : -1;
	if (more < 0) {
		job_fail(job, "malformed page from the writer");
		return;
	}
	if (!job->streaming && !stream_begin(job))
		return;
	if (encode_page(job, series) < 0 ||
	    http_stream_write(job->req, job->out.data, job->out.len) < 0) {
		job_fail(job, "cannot encode or queue a page");
		return;
	}
	if (more == 0) {
		http_stream_end(job->req);
		job_free(job);
		return;
	}
	/* Nothing went out (every series of the page was left out): the output will not
	 * drain, so ask for the next page now. */
	more = job->out.len == 0;
	buf_reset(&job->out);
	if (more && !ask_page(job))
		job_fail(job, "the writer cannot be reached");
}

/* ---- the request ---- */

/* req_ctx.forget: the client left before the first page. */
static void job_forget(void *pending)
{
	job_free(pending);
}

/* The query into job; NULL, or the 422 detail. */
static const char *export_query(struct export_job *job, const char *query)
{
	struct records_query q;
	char buf[QUERY_VALUE_MAX];
	long n = query ? uri_query_param(query, "format", buf, sizeof(buf)) : -1;
	const char *detail;

	job->fmt = FMT_NDJSON;
	if (n != -1) {
		size_t i = 0;

		while (i < sizeof(formats) / sizeof(formats[0]) &&
		       (n < 0 || strcmp(buf, formats[i].name) != 0))
			i++;
		if (i == sizeof(formats) / sizeof(formats[0]))
			return "format must be ndjson, csv or line.";
		job->fmt = (enum export_format)i;
	}
	records_query_init(&q);
	n = query ? uri_query_param(query, "name", buf, sizeof(buf)) : -1;
	if (n != -1) {
		if (n <= 0 || records_query_set(&q, RQ_SERIES, buf, (size_t)n) != NULL)
			return "name must be a series name of 1 to 4096 bytes.";
		job->only = strdup(buf);
		job->nomem = job->only == NULL;
	}
	n = query ? uri_query_param(query, "start", buf, sizeof(buf)) : -1;
	if (n != -1 && (detail = records_query_set(&q, RQ_START, n < 0 ? "" : buf,
						   n < 0 ? 0 : (size_t)n)) != NULL)
		return detail;
	n = query ? uri_query_param(query, "end", buf, sizeof(buf)) : -1;
	if (n != -1 && (detail = records_query_set(&q, RQ_END, n < 0 ? "" : buf,
						   n < 0 ? 0 : (size_t)n)) != NULL)
		return detail;
	job->has_start = q.has_start;
	job->start = q.start;
	job->has_end = q.has_end;
	job->end = q.end;
	return NULL;
}

void source_export(struct handler_env *env, struct http_req *req)
{
	struct req_ctx *ctx = req->user;
	struct export_job *job = calloc(1, sizeof(*job));
	const char *detail;

	if (job == NULL) {
		http_respond_error(req, 500, "Internal server error.", NULL);
		return;
	}
	*job = (struct export_job){ .env = env, .req = req };
	if ((detail = export_query(job, req->query)) != NULL) {
		free(job->only);
		free(job);
		http_respond_error(req, 422, detail, NULL);
		return;
	}
	if (handler_source(env, ctx, ctx->name, ctx->name_len) == NULL) {
		free(job->only);
		free(job);
		http_respond_error(req, 404, "Data source not found.", NULL);
		return;
	}
	if (!writer_slot_take(env)) {
		free(job->only);
		free(job);
		http_respond_error(req, 503, "Server is busy, retry later.", RETRY_AFTER);
		return;
	}
	memcpy(job->account, ctx->account_name, sizeof(job->account));
	job->source = strndup(ctx->name, ctx->name_len);
	job->lp = job->fmt == FMT_LINE ? ingest_lp_new() : NULL;
	if (job->source == NULL || (job->fmt == FMT_LINE && job->lp == NULL) ||
	    job->nomem ||
	    buf_reserve(&job->out, EXPORT_OUT_INITIAL, EXPORT_OUT_INITIAL) < 0) {
		job_free(job);
		http_respond_error(req, 500, "Internal server error.", NULL);
		return;
	}
	if (!ask_page(job)) {
		job_fail(job, "the writer cannot be reached");
		return;
	}
	ctx->pending = job;
	ctx->forget = job_forget;
}
