/*
 * fuzz_ingest.c - libFuzzer target for ingest_parse (SPEC section 3, checks 5-7).
 *
 * Each input is an ingest body, parsed twice by one reused parser: with roomy limits
 * and with tiny ones (the 413 paths). A valid result must decode back, record by
 * record, into exactly nrecords wire records filling payload_len bytes. Each parse
 * is differential: ingest_parse (fast path first) must give exactly what the json-c
 * reference, ingest_parse_reference, gives: status, detail, data_source, payload.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "temporis/data/ingest.h"
#include "temporis/data/record.h"

#define ROOMY_MAX_RECORDS 100000
#define ROOMY_MAX_PAYLOAD (4 * 1024 * 1024)
#define TINY_MAX_RECORDS 3
#define TINY_MAX_PAYLOAD 64

static struct ingest_parser *parser;

static void check_result(int rc, const struct ingest_result *r, const struct ingest_limits *lim)
{
	const uint8_t *p, *end;
	uint32_t n = 0;
	struct rec rec;

	if (rc < 0)
		return;                      /* out of memory: the caller answers 500 */
	check(rc == r->status);
	if (rc != 0) {
		check(rc == 400 || rc == 413 || rc == 422);
		check(memchr(r->detail, '\0', sizeof(r->detail)) != NULL && r->detail[0] != '\0');
		return;
	}
	/* An escaped NUL (\u0000) is kept in data_source: its length, not strlen, ends it. */
	check(r->data_source != NULL && r->data_source[r->data_source_len] == '\0');
	check(r->nrecords <= lim->max_records && r->payload_len <= lim->max_payload);
	check(r->payload_len == 0 || r->payload != NULL);
	p = r->payload;
	end = p ? p + r->payload_len : p;
	while (p != end) {
		p = rec_decode(p, end, &rec);
		check(p != NULL);
		check(memchr(rec.name, '\0', rec.name_len) == NULL);
		n++;
	}
	check(n == r->nrecords);
}

/* A result copied out of parser memory, which the next parse reuses. */
struct snapshot {
	int rc;
	struct ingest_result r;
	char *source;
	uint8_t *payload;
};

static void *dup_bytes(const void *src, size_t n)
{
	void *copy = malloc(n > 0 ? n : 1);

	check(copy != NULL);
	if (n > 0)
		memcpy(copy, src, n);
	return copy;
}

static void take_snapshot(struct snapshot *snap, int rc, const struct ingest_result *r)
{
	snap->rc = rc;
	snap->r = *r;
	snap->source = r->data_source ? dup_bytes(r->data_source, r->data_source_len + 1) : NULL;
	snap->payload = r->payload ? dup_bytes(r->payload, r->payload_len) : NULL;
}

static void same_as_reference(const struct snapshot *got, int rc, const struct ingest_result *ref)
{
	check(got->rc == rc);
	check(got->r.status == ref->status);
	check(strcmp(got->r.detail, ref->detail) == 0);
	check(got->r.nrecords == ref->nrecords);
	check((got->source == NULL) == (ref->data_source == NULL));
	check(got->r.data_source_len == ref->data_source_len);
	check(got->source == NULL ||
	      memcmp(got->source, ref->data_source, ref->data_source_len + 1) == 0);
	check(got->r.payload_len == ref->payload_len);
	check(ref->payload_len == 0 || memcmp(got->payload, ref->payload, ref->payload_len) == 0);
}

/* Parse with both paths, check the invariants of each and that they agree. */
static void parse_both(const uint8_t *data, size_t size, const struct ingest_limits *lim)
{
	struct ingest_result r;
	struct snapshot fast;
	int rc;

	memset(&r, 0, sizeof(r));
	rc = ingest_parse(parser, (const char *)data, size, lim, &r);
	check_result(rc, &r, lim);
	take_snapshot(&fast, rc, &r);
	memset(&r, 0, sizeof(r));
	rc = ingest_parse_reference(parser, (const char *)data, size, lim, &r);
	check_result(rc, &r, lim);
	/* Out of memory on either side is not a disagreement. */
	if (rc >= 0 && fast.rc >= 0)
		same_as_reference(&fast, rc, &r);
	free(fast.source);
	free(fast.payload);
}


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct ingest_limits roomy = { ROOMY_MAX_RECORDS, ROOMY_MAX_PAYLOAD };
	static const struct ingest_limits tiny = { TINY_MAX_RECORDS, TINY_MAX_PAYLOAD };

	if (parser == NULL) {
		parser = ingest_parser_new();
		check(parser != NULL);
	}
	parse_both(data, size, &roomy);
	parse_both(data, size, &tiny);
	return 0;
}
