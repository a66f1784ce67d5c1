/*
 * load_batch.c - request bodies for temporis-load. A batch is the ingest JSON text
 * {"data_source":...,"records":[...]} written record by record, or line-protocol lines
 * joined by newlines, into one growing buffer that is reused from batch to batch, plus the
 * input line of each record or line; load_lp_target names the /write request they go to;
 * load_gzip compresses a finished body for Content-Encoding: gzip; and the texts that name
 * a batch in messages (its line range, why and when it is retried).
 */
#include <assert.h>
#include <errno.h>
#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "temporis/base/buf.h"
#include "temporis/base/jsonutil.h"
#include "temporis/tools/load_batch.h"

#define BYTES_PER_RECORD_GUESS 64  /* initial capacity (also per line); the buffer grows */
#define GZIP_WINDOW_BITS (15 + 16) /* 32 KiB window, +16 selects the gzip wrapper */
#define GZIP_MEM_LEVEL 8
/* The loader is single-threaded: the fastest level keeps compression from being the
 * bottleneck, and JSON with repeated keys compresses well at any level. */
#define GZIP_LEVEL Z_BEST_SPEED
#define HEX_DIGITS "0123456789abcdef"
#define NIBBLE_BITS 4
#define NIBBLE_MASK 0xf

size_t load_value_format(const struct load_value *v, char *buf)
{
	int n;

	if (v->is_int)
		return (size_t)snprintf(buf, LOAD_NUM_MAX, "%" PRId64, v->i);
	n = snprintf(buf, LOAD_NUM_MAX, "%.17g", v->d);
	/* "3" would come back from the server as an integer: keep it a double */
	if (!strpbrk(buf, ".eE") && n + 2 < LOAD_NUM_MAX) {
		memcpy(buf + n, ".0", 3);
		n += 2;
	}
	return (size_t)n;
}

static const char body_head[] = "{\"data_source\":";
static const char body_records[] = ",\"records\":[";
static const char record_value[] = ",\"value\":";
static const char body_tail[] = "]}";

int load_batch_init(struct load_batch *b, const char *source, size_t max_records)
{
	memset(b, 0, sizeof(*b));
	b->max = max_records;
	b->lines = malloc((max_records ? max_records : 1) * sizeof(*b->lines));
	b->spans = malloc((max_records ? max_records : 1) * sizeof(*b->spans));
	if (!b->lines || !b->spans || max_records > SIZE_MAX / BYTES_PER_RECORD_GUESS ||
	    buf_reserve(&b->body, max_records * BYTES_PER_RECORD_GUESS, BYTES_PER_RECORD_GUESS) < 0)
		goto fail;
	if (buf_append(&b->head, body_head, sizeof(body_head) - 1) < 0 ||
	    ju_write_string(&b->head, source, strlen(source)) < 0 ||
	    buf_append(&b->head, body_records, sizeof(body_records) - 1) < 0 ||
	    buf_reserve(&b->body, b->head.len, 0) < 0)
		goto fail;
	load_batch_reset(b, NULL);
	return 0;
fail:
	load_batch_free(b);
	return -1;
}

void load_batch_free(struct load_batch *b)
{
	buf_free(&b->body);
	buf_free(&b->head);
	free(b->lines);
	free(b->spans);
	memset(b, 0, sizeof(*b));
}

int load_batch_init_lines(struct load_batch *b, size_t max_lines)
{
	size_t n = max_lines ? max_lines : 1;

	memset(b, 0, sizeof(*b));
	b->max = max_lines;
	b->line_protocol = true;
	b->lines = malloc(n * sizeof(*b->lines));
	b->spans = malloc(n * sizeof(*b->spans));
	if (!b->lines || !b->spans || n > SIZE_MAX / BYTES_PER_RECORD_GUESS ||
	    buf_reserve(&b->body, n * BYTES_PER_RECORD_GUESS, BYTES_PER_RECORD_GUESS) < 0) {
		load_batch_free(b);
		return -1;
	}
	load_batch_reset(b, NULL);
	return 0;
}

void load_batch_reset(struct load_batch *b, const char *file)
{
	/* init reserved room for the head and capacity never shrinks */
	assert(b->body.cap >= b->head.len && b->body.data);
	buf_reset(&b->body);
	if (b->head.len)
		memcpy(b->body.data, b->head.data, b->head.len);
	b->body.len = b->head.len;
	b->count = 0;
	b->file = file;
	b->finished = false;
}

bool load_batch_full(const struct load_batch *b)
{
	return b->count >= b->max;
}

int load_batch_add(struct load_batch *b, const struct load_record *rec)
{
	char num[LOAD_NUM_MAX];
	size_t vn;

	if (b->count >= b->max || b->finished || b->line_protocol)
		return -1;
	vn = load_value_format(&rec->value, num);
	if (buf_printf(&b->body, "%s{\"timestamp\":%" PRId64 ",\"name\":", b->count ? "," : "",
	               rec->timestamp) < 0 ||
	    ju_write_string(&b->body, rec->name, rec->name_len) < 0 ||
	    buf_append(&b->body, record_value, sizeof(record_value) - 1) < 0 ||
	    buf_append(&b->body, num, vn) < 0 || buf_append(&b->body, "}", 1) < 0)
		return -1;
	b->lines[b->count] = rec->line;
	b->spans[b->count] = rec->spans ? rec->spans : 1;
	b->count++;
	return 0;
}

int load_batch_add_line(struct load_batch *b, const char *text, size_t len, uint64_t line,
                        uint32_t spans)
{
	if (b->count >= b->max || b->finished || !b->line_protocol)
		return -1;
	if ((b->count && buf_append(&b->body, "\n", 1) < 0) || buf_append(&b->body, text, len) < 0)
		return -1;
	b->lines[b->count] = line;
	b->spans[b->count] = spans;
	b->count++;
	return 0;
}

uint64_t load_batch_last_line(const struct load_batch *b)
{
	if (b->count == 0)
		return 0;
	return b->lines[b->count - 1] + (b->spans ? b->spans[b->count - 1] - 1 : 0);
}

/* Only on the error path: a walk over the batch's lines is cheap next to a request. */
uint64_t load_batch_body_line(const struct load_batch *b, uint64_t k)
{
	for (size_t i = 0; i < b->count && k > 0; i++) {
		uint64_t n = b->spans ? b->spans[i] : 1;
		if (k <= n)
			return b->lines[i] + (k - 1);
		k -= n;
	}
	return 0;
}

int load_batch_finish(struct load_batch *b)
{
	const char *tail = b->line_protocol ? "" : body_tail;

	/* the NUL goes in with the tail but is not counted: body.len is the request's length */
	if (buf_append(&b->body, tail, strlen(tail) + 1) < 0)
		return -1;
	b->body.len--;
	b->finished = true;
	return 0;
}

const char *load_lp_precision(enum load_time_unit unit)
{
	switch (unit) {
	case LOAD_TIME_S:
		return "s";
	case LOAD_TIME_MS:
		return "ms";
	case LOAD_TIME_US:
		return "u";
	case LOAD_TIME_AUTO:
	case LOAD_TIME_NS:
		break;
	}
	return "ns";
}

/* RFC 3986's unreserved characters stand for themselves; every other byte is %XX. */
static int percent_encode(struct buf *out, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[3] = {'%', HEX_DIGITS[c >> NIBBLE_BITS], HEX_DIGITS[c & NIBBLE_MASK]};
		int rc = isalnum(c) || strchr("-._~", c) ? buf_append(out, s, 1)
		                                         : buf_append(out, esc, sizeof(esc));
		if (rc < 0)
			return -1;
	}
	return 0;
}

int load_lp_target(struct buf *out, const char *prefix, size_t prefix_len, const char *source,
                   enum load_time_unit unit)
{
	static const char write_db[] = "/write?db=", precision[] = "&precision=";
	const char *p = load_lp_precision(unit);

	if (buf_append(out, prefix, prefix_len) < 0 ||
	    buf_append(out, write_db, sizeof(write_db) - 1) < 0 ||
	    percent_encode(out, source) < 0 ||
	    buf_append(out, precision, sizeof(precision) - 1) < 0 ||
	    buf_append(out, p, strlen(p) + 1) < 0)
		return -1;
	out->len--; /* the NUL is there but not counted */
	return 0;
}

int load_gzip(const char *in, size_t inlen, struct buf *out)
{
	z_stream zs;
	uLong bound;
	int rc = -1;

	if (inlen > UINT_MAX)
		return -1;
	memset(&zs, 0, sizeof(zs));
	if (deflateInit2(&zs, GZIP_LEVEL, Z_DEFLATED, GZIP_WINDOW_BITS, GZIP_MEM_LEVEL,
	                 Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	bound = deflateBound(&zs, (uLong)inlen);
	buf_reset(out);
	if (bound > UINT_MAX || buf_reserve(out, bound, 0) < 0)
		goto out;
	zs.next_in = (Bytef *)(uintptr_t)in;
	zs.avail_in = (uInt)inlen;
	zs.next_out = (Bytef *)out->data;
	zs.avail_out = (uInt)bound;
	if (deflate(&zs, Z_FINISH) != Z_STREAM_END)
		goto out;
	out->len = zs.total_out;
	rc = 0;
out:
	deflateEnd(&zs); /* only frees the stream: the outcome is already known */
	return rc;
}

/* ---- messages ------------------------------------------------------------------------ */

#define MS_PER_S_F 1000.0

void load_batch_where(const struct load_batch *b, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s:LINES %" PRIu64 "-%" PRIu64, b->file ? b->file : "?",
	         b->count ? b->lines[0] : 0, load_batch_last_line(b));
}

const char *load_conn_reason(int sys_errno, bool timed_out)
{
	if (timed_out || sys_errno == ETIMEDOUT)
		return "timed out";
	switch (sys_errno) {
	case ECONNREFUSED:
		return "connection refused";
	case ECONNRESET:
	case EPIPE:
		return "connection reset";
	case EHOSTUNREACH:
		return "host unreachable";
	case ENETUNREACH:
		return "network unreachable";
	case 0:
		return "connection closed";
	default:
		return "connection failed";
	}
}

void load_retry_text(const struct load_batch *b, long attempt, long retries, long delay_ms,
                     const char *reason, uint64_t unsaid, char *out, size_t outlen)
{
	char where[LOAD_WHERE_MAX], more[LOAD_WHERE_MAX] = "";

	load_batch_where(b, where, sizeof(where));
	if (unsaid)
		snprintf(more, sizeof(more), "; %" PRIu64 " more %s not shown", unsaid,
		         unsaid == 1 ? "retry" : "retries");
	snprintf(out, outlen, "%s: %s (attempt %ld of %ld, retrying in %.1f s%s)", where, reason,
	         attempt, retries + 1, (double)delay_ms / MS_PER_S_F, more);
}
