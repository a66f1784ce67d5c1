/*
 * fuzz_ingest.c - libFuzzer target for ingest_parse (SPEC section 3, checks 5-7).
 *
 * Each input is an ingest body, parsed twice by one reused parser: with roomy limits
 * and with tiny ones (the 413 paths). A valid result must decode back, record by
 * record, into exactly nrecords wire records filling payload_len bytes.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "temporis/ingest.h"
#include "temporis/record.h"

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
	check(r->data_source != NULL && strlen(r->data_source) == r->data_source_len);
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct ingest_limits roomy = { ROOMY_MAX_RECORDS, ROOMY_MAX_PAYLOAD };
	static const struct ingest_limits tiny = { TINY_MAX_RECORDS, TINY_MAX_PAYLOAD };
	struct ingest_result r;
	int rc;

	if (parser == NULL) {
		parser = ingest_parser_new();
		check(parser != NULL);
	}
	memset(&r, 0, sizeof(r));
	rc = ingest_parse(parser, (const char *)data, size, &roomy, &r);
	check_result(rc, &r, &roomy);
	memset(&r, 0, sizeof(r));
	rc = ingest_parse(parser, (const char *)data, size, &tiny, &r);
	check_result(rc, &r, &tiny);
	return 0;
}
