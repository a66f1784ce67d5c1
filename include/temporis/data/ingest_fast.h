/*
 * ingest_fast.h - the single-pass fast path for ingest bodies (in front of json-c).
 *
 * Walks the body once, checks the schema and packs the records (record.h) straight
 * into a caller-owned, reusable buffer: no DOM, no allocation per record. It only
 * answers what it is sure of; anything unusual is INGEST_FAST_UNSURE, and the
 * caller (ingest_parse) then asks the json-c path for the exact status and detail.
 */
#ifndef TEMPORIS_INGEST_FAST_H
#define TEMPORIS_INGEST_FAST_H

#include <stddef.h>

#include "temporis/data/ingest.h"

enum ingest_fast_status {
	INGEST_FAST_NOMEM = -1,   /* the payload buffer could not grow */
	INGEST_FAST_ACCEPT = 0,   /* valid: what the json-c path would accept, byte for byte */
	INGEST_FAST_UNSURE = 1,   /* not decided here: ask the json-c path */
	INGEST_FAST_TOO_MANY = 2, /* valid JSON and schema, but more than max_records */
	INGEST_FAST_TOO_LARGE = 3 /* valid JSON and schema, but packed bytes over max_payload */
};

/* First capacity of the packed-records buffer; it doubles from there. */
#define INGEST_PAYLOAD_MIN_CAP 4096

/* A heap buffer that only grows (geometrically); the owner frees data. */
struct ingest_buf {
	unsigned char *data;
	size_t cap;
};

/* Make b hold at least need bytes (min_cap the first time), keeping its contents. 0 or -1. */
int ingest_buf_reserve(struct ingest_buf *b, size_t need, size_t min_cap);

/*
 * Length of the strict UTF-8 sequence at s[0..n) (no overlongs, surrogates or
 * code points above U+10FFFF), 0 if it is not one. Shared with ingest.c's name check.
 */
size_t ingest_utf8_seq_len(const unsigned char *s, size_t n);
/* Whether the k-byte sequence at s is a C1 control character (U+0080 to U+009F):
 * control characters, refused in names like the C0 ones. */
static inline int ingest_utf8_is_c1(const unsigned char *s, size_t k)
{
	return k == 2 && s[0] == 0xC2 && s[1] < 0xA0;
}

struct ingest_fast_result {
	const char *data_source;  /* points into the body: raw bytes, no escapes, no NUL */
	size_t data_source_len;
	size_t nrecords;
	size_t payload_len;       /* packed bytes at payload->data (ACCEPT only) */
};

/*
 * Parse body[0..len). On ACCEPT, payload->data holds out->payload_len packed bytes.
 * On any other status the payload buffer's contents are unspecified and *out is
 * only meaningful for nrecords/payload_len of TOO_MANY/TOO_LARGE.
 */
enum ingest_fast_status ingest_fast_parse(const char *body, size_t len,
					  const struct ingest_limits *lim,
					  struct ingest_buf *payload,
					  struct ingest_fast_result *out);

#endif
