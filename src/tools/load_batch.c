/*
 * load_batch.c - request bodies for temporis-load. A batch is the ingest JSON text
 * {"data_source":...,"records":[...]} written record by record into one growing buffer that
 * is reused from batch to batch, plus the input line of each record; load_gzip compresses a
 * finished body for Content-Encoding: gzip.
 */
#include <assert.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "temporis/tools/load_batch.h"

#define BYTES_PER_RECORD_GUESS 64  /* initial capacity; the buffer grows as needed */
#define GZIP_WINDOW_BITS (15 + 16) /* 32 KiB window, +16 selects the gzip wrapper */
#define GZIP_MEM_LEVEL 8
/* The loader is single-threaded: the fastest level keeps compression from being the
 * bottleneck, and JSON with repeated keys compresses well at any level. */
#define GZIP_LEVEL Z_BEST_SPEED
#define HEX_DIGITS "0123456789abcdef"

static int reserve(struct load_batch *b, size_t more)
{
	size_t cap = b->cap ? b->cap : BYTES_PER_RECORD_GUESS;
	char *n;

	if (b->len + more + 1 <= b->cap)
		return 0;
	while (cap < b->len + more + 1) {
		if (cap > SIZE_MAX / 2)
			return -1;
		cap *= 2;
	}
	n = realloc(b->body, cap);
	if (!n)
		return -1;
	b->body = n;
	b->cap = cap;
	return 0;
}

static int append(struct load_batch *b, const char *s, size_t n)
{
	if (reserve(b, n) < 0)
		return -1;
	memcpy(b->body + b->len, s, n);
	b->len += n;
	return 0;
}

int load_json_string(struct load_batch *b, const char *s, size_t len)
{
	/* worst case every byte becomes \u00XX (6 bytes), plus the quotes */
	if (len > (SIZE_MAX - 2) / 6 || reserve(b, len * 6 + 2) < 0)
		return -1;
	char *o = b->body + b->len;
	*o++ = '"';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			*o++ = '\\';
			*o++ = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			*o++ = '\\';
			*o++ = 'u';
			*o++ = '0';
			*o++ = '0';
			*o++ = HEX_DIGITS[c >> 4];
			*o++ = HEX_DIGITS[c & 0xf];
		} else {
			*o++ = (char)c;
		}
	}
	*o++ = '"';
	b->len = (size_t)(o - b->body);
	return 0;
}

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

int load_batch_init(struct load_batch *b, const char *source, size_t max_records)
{
	memset(b, 0, sizeof(*b));
	b->max = max_records;
	b->lines = malloc((max_records ? max_records : 1) * sizeof(*b->lines));
	if (!b->lines || reserve(b, max_records * BYTES_PER_RECORD_GUESS) < 0)
		goto fail;
	if (load_json_string(b, source, strlen(source)) < 0)
		goto fail;
	b->source_json = strndup(b->body, b->len);
	if (!b->source_json || reserve(b, sizeof(body_head) + b->len + sizeof(body_records)) < 0)
		goto fail;
	load_batch_reset(b, NULL);
	return 0;
fail:
	load_batch_free(b);
	return -1;
}

void load_batch_free(struct load_batch *b)
{
	free(b->body);
	free(b->lines);
	free(b->source_json);
	memset(b, 0, sizeof(*b));
}

void load_batch_reset(struct load_batch *b, const char *file)
{
	size_t src = strlen(b->source_json);

	/* init reserved room for this prefix and capacity never shrinks */
	assert(b->cap > sizeof(body_head) + src + sizeof(body_records));
	b->len = 0;
	memcpy(b->body, body_head, sizeof(body_head) - 1);
	b->len += sizeof(body_head) - 1;
	memcpy(b->body + b->len, b->source_json, src);
	b->len += src;
	memcpy(b->body + b->len, body_records, sizeof(body_records) - 1);
	b->len += sizeof(body_records) - 1;
	b->count = 0;
	b->file = file;
	b->finished = false;
}

bool load_batch_full(const struct load_batch *b)
{
	return b->count >= b->max;
}

int load_batch_add(struct load_batch *b, const struct load_record *rec, uint64_t line)
{
	char num[LOAD_NUM_MAX];
	int n;
	size_t vn;

	if (b->count >= b->max || b->finished)
		return -1;
	n = snprintf(num, sizeof(num),
	             "%s{\"timestamp\":%" PRId64 ",\"name\":", b->count ? "," : "", rec->timestamp);
	if (append(b, num, (size_t)n) < 0 || load_json_string(b, rec->name, rec->name_len) < 0 ||
	    append(b, ",\"value\":", sizeof(",\"value\":") - 1) < 0)
		return -1;
	vn = load_value_format(&rec->value, num);
	if (append(b, num, vn) < 0 || append(b, "}", 1) < 0)
		return -1;
	b->lines[b->count++] = line;
	return 0;
}

int load_batch_finish(struct load_batch *b)
{
	if (append(b, "]}", 2) < 0)
		return -1;
	b->body[b->len] = '\0'; /* reserve() always leaves room for it */
	b->finished = true;
	return 0;
}

int load_gzip(const char *in, size_t inlen, char **out, size_t *outcap, size_t *outlen)
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
	if (bound > UINT_MAX)
		goto out;
	if (*outcap < bound) {
		char *n = realloc(*out, bound);
		if (!n)
			goto out;
		*out = n;
		*outcap = bound;
	}
	zs.next_in = (Bytef *)(uintptr_t)in;
	zs.avail_in = (uInt)inlen;
	zs.next_out = (Bytef *)*out;
	zs.avail_out = (uInt)bound;
	if (deflate(&zs, Z_FINISH) != Z_STREAM_END)
		goto out;
	*outlen = zs.total_out;
	rc = 0;
out:
	deflateEnd(&zs);
	return rc;
}
