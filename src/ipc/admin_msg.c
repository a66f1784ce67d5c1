/*
 * admin_msg.c - the admin socket's error codes and the typed records query
 * (admin_msg.h). Owns the one table of codes and the one set of query rules.
 */
#include "temporis/ipc/admin_msg.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "temporis/base/jsonutil.h"
#include "temporis/ipc/proto.h"

#define STR_(x) #x
#define STR(x) STR_(x)
#define INT64_TEXT_MAX 24

static const struct {
	const char *name;
	int status;
} codes[] = {
	[ADMIN_NOT_FOUND] = { "not_found", 404 },
	[ADMIN_EXISTS] = { "exists", 409 },
	[ADMIN_INVALID] = { "invalid", 422 },
	[ADMIN_BAD_REQUEST] = { "bad_request", 422 },
	[ADMIN_FAILED] = { "failed", 500 },
	[ADMIN_BUSY] = { "busy", 503 },
};
#define NCODES (sizeof(codes) / sizeof(codes[0]))

struct json_object *admin_body_reply(int status, const char *body, size_t len)
{
	struct json_object *o;
	char *text;

	if (status < 100 || status > 599 || len > PROTO_MAX_FRAME - PROTO_BODY_HDR_LEN)
		return NULL;
	text = malloc(PROTO_BODY_HDR_LEN + len);
	if (text == NULL)
		return NULL;
	text[0] = PROTO_BODY_MARK;
	text[1] = (char)('0' + status / 100);
	text[2] = (char)('0' + status / 10 % 10);
	text[3] = (char)('0' + status % 10);
	memcpy(text + PROTO_BODY_HDR_LEN, body, len);
	o = json_object_new_string_len(text, (int)(PROTO_BODY_HDR_LEN + len));
	free(text);
	return o;
}

bool admin_reply_is_body(const char *frame, size_t len)
{
	return len >= PROTO_BODY_HDR_LEN && frame[0] == PROTO_BODY_MARK &&
	       frame[1] >= '1' && frame[1] <= '5' && frame[2] >= '0' && frame[2] <= '9' &&
	       frame[3] >= '0' && frame[3] <= '9';
}

struct json_object *admin_error(enum admin_code code, const char *msg)
{
	struct json_object *o = json_object_new_object();

	if (o == NULL)
		return NULL;
	if (ju_add_str(o, "error", msg) < 0 || ju_add_str(o, "code", codes[code].name) < 0) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

enum admin_code admin_reply_code(struct json_object *reply)
{
	const char *name = ju_str(reply, "code");

	for (size_t i = 0; name != NULL && i < NCODES; i++)
		if (strcmp(name, codes[i].name) == 0)
			return (enum admin_code)i;
	return ADMIN_FAILED;
}

int admin_code_status(enum admin_code code)
{
	return (size_t)code < NCODES ? codes[code].status : 500;
}

/* ---- the records query ---- */

#define DETAIL_START "start must be an integer."
#define DETAIL_END "end must be an integer."
#define DETAIL_LIMIT "limit must be an integer between 1 and " STR(RECORDS_LIMIT_MAX) "."
#define DETAIL_CURSOR "cursor is invalid."
#define DETAIL_STEP                                                                        \
	"step must be an integer number of seconds between 1 and " STR(RECORDS_STEP_MAX_TEXT) \
	" (1000 years)."
#define DETAIL_AGG "agg must be one of " DS_AGG_NAMES "."
#define DETAIL_STEP_ALONE "step needs agg, one of " DS_AGG_NAMES "."
#define DETAIL_AGG_ALONE "agg needs step, the seconds per bucket."
/* RECORDS_STEP_MAX as the digits a client reads (INT64_C would show in STR()). */
#define RECORDS_STEP_MAX_TEXT 31557600000
_Static_assert(RECORDS_STEP_MAX == RECORDS_STEP_MAX_TEXT, "the step detail names the limit");

void records_query_init(struct records_query *q)
{
	memset(q, 0, sizeof(*q));
	q->start = INT64_MIN;
	q->end = INT64_MAX;
	q->limit = RECORDS_LIMIT_DEFAULT;
}

/* An optional '-' and decimal digits within int64, and nothing else. */
static int strict_int64(const char *text, size_t len, int64_t *out)
{
	uint64_t mag = 0, limit = (uint64_t)INT64_MAX;
	size_t i = 0;
	bool neg = false;

	if (len > 0 && text[0] == '-') {
		neg = true;
		limit += 1;
		i = 1;
	}
	if (i == len)
		return -1;
	for (; i < len; i++) {
		unsigned d = (unsigned)(text[i] - '0');

		if (d > 9 || mag > (limit - d) / 10)
			return -1;
		mag = mag * 10 + d;
	}
	*out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
	return 0;
}

const char *records_query_set(struct records_query *q, enum records_field field,
			      const char *text, size_t len)
{
	int64_t v;

	switch (field) {
	case RQ_SERIES:
		if (len == 0 || len > REC_NAME_MAX || memchr(text, '\0', len) != NULL)
			return "name is required.";
		memcpy(q->series, text, len);
		q->series[len] = '\0';
		q->series_len = len;
		return NULL;
	case RQ_START:
		if (strict_int64(text, len, &q->start) < 0)
			return DETAIL_START;
		q->has_start = true;
		return NULL;
	case RQ_END:
		if (strict_int64(text, len, &q->end) < 0)
			return DETAIL_END;
		q->has_end = true;
		return NULL;
	case RQ_LIMIT:
		if (strict_int64(text, len, &v) < 0 || v < 1 || v > RECORDS_LIMIT_MAX)
			return DETAIL_LIMIT;
		q->limit = (uint32_t)v;
		return NULL;
	case RQ_CURSOR:
		if (strict_int64(text, len, &q->cursor) < 0)
			return DETAIL_CURSOR;
		q->has_cursor = true;
		return NULL;
	case RQ_STEP:
		if (strict_int64(text, len, &v) < 0 || v < 1 || v > RECORDS_STEP_MAX)
			return DETAIL_STEP;
		q->step = v;
		return NULL;
	case RQ_AGG:
		if (ds_agg_parse(text, len, &q->agg) < 0)
			return DETAIL_AGG;
		return NULL;
	}
	return "invalid query.";
}

const char *records_query_check(const struct records_query *q)
{
	if (q->step != 0 && q->agg == DS_NONE)
		return DETAIL_STEP_ALONE;
	if (q->agg != DS_NONE && q->step == 0)
		return DETAIL_AGG_ALONE;
	return NULL;
}

bool records_query_range(const struct records_query *q, int64_t *first, int64_t *last)
{
	*first = q->has_cursor ? q->cursor : q->start;
	if (!q->has_end) {
		*last = INT64_MAX;   /* no end: through the largest timestamp, inclusive */
		return true;
	}
	if (q->end == INT64_MIN)
		return false;        /* nothing is below the smallest timestamp */
	*last = q->end - 1;
	return *first <= *last;
}

struct json_object *records_query_to_op(const struct records_query *q, const char *account,
					const char *source, size_t source_len)
{
	struct json_object *op = json_object_new_object();
	char cursor[INT64_TEXT_MAX];
	int rc;

	if (op == NULL)
		return NULL;
	rc = ju_add_str(op, "op", "records");
	rc = rc ? rc : ju_add_str(op, "account", account);
	rc = rc ? rc : ju_add_strn(op, "source", source, source_len);
	rc = rc ? rc : ju_add_strn(op, "series", q->series, q->series_len);
	if (rc == 0 && q->has_start)
		rc = ju_add_int(op, "start", q->start);
	if (rc == 0 && q->has_end)
		rc = ju_add_int(op, "end", q->end);
	if (rc == 0)
		rc = ju_add_int(op, "limit", q->limit);
	if (rc == 0 && q->step != 0)
		rc = ju_add_int(op, "step", q->step);
	if (rc == 0 && q->agg != DS_NONE)
		rc = ju_add_str(op, "agg", ds_agg_name(q->agg));
	if (rc == 0 && q->has_cursor) {
		snprintf(cursor, sizeof(cursor), "%" PRId64, q->cursor);
		rc = ju_add_str(op, "cursor", cursor);
	}
	if (rc != 0) {
		json_object_put(op);
		return NULL;
	}
	return op;
}

/* A string member: 0 and *out (NULL when absent), or -1 when it is not a string. */
static int member_str(struct json_object *req, const char *key, const char **out, size_t *len)
{
	struct json_object *v = NULL;

	*out = NULL;
	*len = 0;
	if (!json_object_object_get_ex(req, key, &v) || v == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return -1;
	*out = json_object_get_string(v);
	*len = (size_t)json_object_get_string_len(v);
	return 0;
}

/* Required string members and their details, by key. */
#define REQUIRED_STR(req, key, out, len)                                                  \
	(member_str(req, key, out, len) < 0 ? key " must be a string."                        \
	 : *(out) == NULL                   ? key " is required."                             \
					    : NULL)

/* An optional integer member, set through its text so both sides share the rules. */
static const char *member_int(struct json_object *req, const char *key,
			      struct records_query *q, enum records_field field,
			      const char *bad)
{
	struct json_object *v = NULL;
	char text[INT64_TEXT_MAX];
	int64_t x;

	if (!json_object_object_get_ex(req, key, &v) || v == NULL)
		return NULL;
	if (!json_object_is_type(v, json_type_int))
		return bad;
	x = json_object_get_int64(v);
	/* json-c clamps integers above INT64_MAX: those are out of range. */
	if (x == INT64_MAX && json_object_get_uint64(v) > (uint64_t)INT64_MAX)
		return bad;
	snprintf(text, sizeof(text), "%" PRId64, x);
	return records_query_set(q, field, text, strlen(text));
}

const char *records_query_from_op(struct json_object *req, struct records_query *q,
				  const char **account, const char **source)
{
	const char *s, *detail;
	size_t len;

	records_query_init(q);
	if ((detail = REQUIRED_STR(req, "account", account, &len)) != NULL ||
	    (detail = REQUIRED_STR(req, "source", source, &len)) != NULL ||
	    (detail = REQUIRED_STR(req, "series", &s, &len)) != NULL)
		return detail;
	if (records_query_set(q, RQ_SERIES, s, len) != NULL)
		return "series is invalid.";
	if (member_str(req, "cursor", &s, &len) < 0)
		return "cursor must be a string.";
	if (s != NULL && (detail = records_query_set(q, RQ_CURSOR, s, len)) != NULL)
		return detail;
	if ((detail = member_int(req, "start", q, RQ_START, DETAIL_START)) != NULL ||
	    (detail = member_int(req, "end", q, RQ_END, DETAIL_END)) != NULL ||
	    (detail = member_int(req, "limit", q, RQ_LIMIT, DETAIL_LIMIT)) != NULL ||
	    (detail = member_int(req, "step", q, RQ_STEP, DETAIL_STEP)) != NULL)
		return detail;
	if (member_str(req, "agg", &s, &len) < 0)
		return DETAIL_AGG;
	if (s != NULL && (detail = records_query_set(q, RQ_AGG, s, len)) != NULL)
		return detail;
	return records_query_check(q);
}
