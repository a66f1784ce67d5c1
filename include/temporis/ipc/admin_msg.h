/*
 * admin_msg.h - the messages of the admin socket (frames are proto.h).
 *
 * A request is {"op": NAME, ...}; a reply is the op's object, or
 * {"error": message, "code": CODE}. The codes are one table here: the writer sets
 * them, temporisctl prints the message, and the workers turn them into HTTP statuses.
 * The records query is one typed struct, encoded by the worker that parsed the URL and
 * decoded (and checked by the same rules) by the writer that runs it.
 */
#ifndef TEMPORIS_IPC_ADMIN_MSG_H
#define TEMPORIS_IPC_ADMIN_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "temporis/data/downsample.h"
#include "temporis/data/record.h"

struct json_object;

enum admin_code {
	ADMIN_NOT_FOUND,                 /* no such account, source or token: 404 */
	ADMIN_EXISTS,                    /* the name is taken: 409 */
	ADMIN_INVALID,                   /* a name or label breaks the rules: 422 */
	ADMIN_BAD_REQUEST,               /* a malformed request: 422 */
	ADMIN_FAILED,                    /* storage or system failure: 500 */
	ADMIN_BUSY,                      /* too many at once: 503, retry later */
};

/*
 * The admin socket serves the workers' calls and temporisctl. All workers together
 * hold at most ADMIN_WORKER_CONNS connections to it (each its share; a call beyond it
 * waits its turn). The writer keeps ADMIN_OPERATOR_CONNS connections for everyone
 * else (temporisctl): the workers' connections have slots of their own, so however
 * many clients read, the operator always gets in.
 */
#define ADMIN_WORKER_CONNS 64
#define ADMIN_OPERATOR_CONNS 16

/* {"error": msg, "code": name of code}; NULL when out of memory. */
struct json_object *admin_error(enum admin_code code, const char *msg);
/*
 * A reply that is the HTTP response body itself, body[0..len) with this status (100..599),
 * framed as proto.h says: the worker relays it without parsing, so a large answer is
 * formatted once, as text, by the writer. A string object; NULL when out of memory.
 */
struct json_object *admin_body_reply(int status, const char *body, size_t len);
/* Whether a reply is a body (admin_body_reply) rather than a JSON object. */
bool admin_reply_is_body(const char *frame, size_t len);

/* The code of an error reply (ADMIN_FAILED when it names none we know). */
enum admin_code admin_reply_code(struct json_object *reply);
/* The HTTP status a worker answers for an error of this code. */
int admin_code_status(enum admin_code code);

/* ---- the records query: GET /v1/data_sources/{name}/records ---- */

#define RECORDS_LIMIT_DEFAULT 1000
#define RECORDS_LIMIT_MAX 10000
/* The widest bucket of a downsampled read: 1000 Julian years of seconds. Wider asks no
 * question a chart needs, and keeps step far from the int64 edges. */
#define RECORDS_STEP_MAX INT64_C(31557600000)

struct records_query {
	char series[REC_NAME_MAX + 1];   /* NUL-terminated; series_len bytes */
	size_t series_len;
	bool has_start, has_end, has_cursor;
	int64_t start;                   /* inclusive */
	int64_t end;                     /* exclusive */
	int64_t cursor;                  /* the timestamp to resume from: replaces start */
	uint32_t limit;                  /* 1..RECORDS_LIMIT_MAX: records, or buckets */
	int64_t step;                    /* seconds per bucket, 1..RECORDS_STEP_MAX; 0: raw */
	enum ds_agg agg;                 /* with step; DS_NONE: raw */
};

/* The query's fields: every one is set from text by the same rules on both sides. */
enum records_field { RQ_SERIES, RQ_START, RQ_END, RQ_LIMIT, RQ_CURSOR, RQ_STEP, RQ_AGG };

/* Defaults: the whole time range, RECORDS_LIMIT_DEFAULT records. */
void records_query_init(struct records_query *q);
/*
 * Set one field from its text (a URL query value or an op member): integers are
 * strict decimal int64 (an optional '-', digits, nothing else), limit is
 * 1..RECORDS_LIMIT_MAX, step 1..RECORDS_STEP_MAX, agg exactly one of DS_AGG_NAMES.
 * NULL when set, else the 422 detail ("limit must be ...").
 */
const char *records_query_set(struct records_query *q, enum records_field field,
			      const char *text, size_t len);
/*
 * The rules between fields, once all are set: step and agg come together (a
 * downsampled read) or not at all. NULL when they hold, else the 422 detail.
 */
const char *records_query_check(const struct records_query *q);
/*
 * The range to scan, both bounds inclusive: from the cursor if set, else start,
 * to end - 1, or through INT64_MAX when end was not given (so a record at
 * INT64_MAX is readable). False when the range is empty.
 */
bool records_query_range(const struct records_query *q, int64_t *first, int64_t *last);

/* The "records" op for a source of account; NULL when out of memory. */
struct json_object *records_query_to_op(const struct records_query *q, const char *account,
					const char *source, size_t source_len);
/*
 * Decode a "records" op into *q; *account and *source are borrowed from req. NULL
 * when it is well formed, else the detail of its first bad member ("series is
 * required.").
 */
const char *records_query_from_op(struct json_object *req, struct records_query *q,
				  const char **account, const char **source);

/* ---- the export pages: GET /v1/data_sources/{name}/export ---- */

/*
 * {"op": "export", "account", "source", optional "series" (one series only),
 *  "start"/"end" (integers, end exclusive), "after": {"name", "ts"} (the cursor: go on
 *  in that series from that timestamp), "limit" (records, 1..EXPORT_PAGE_MAX),
 *  "line": true on a line-protocol export's first page (refuse it, ADMIN_INVALID,
 *  naming the first series line protocol cannot name)}
 * -> {"series": [{"name", "points": [ts, value, ts, value, ...]}, ...] in name order,
 *     each ascending by time, "next": the cursor of the next page, or null: the last}
 * Ints stay JSON integers, doubles are written with a '.' or an exponent (ju_double).
 */
#define EXPORT_PAGE_MAX 100000

#endif
