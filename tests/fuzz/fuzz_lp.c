/*
 * fuzz_lp.c - libFuzzer target for ingest_lp_parse (InfluxDB line protocol).
 *
 * Each input is a body, parsed by one reused parser with roomy limits and with tiny
 * ones (the 413 paths), under two precisions. A valid result must decode back, record
 * by record, into exactly nrecords wire records filling payload_len bytes, every name
 * obeying series_name_ok. The limits are held to their word: a valid body parsed
 * again with limits of exactly its size is valid with the same bytes, one record less
 * is 413.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "temporis/data/ingest_lp.h"
#include "temporis/data/record.h"
#include "temporis/data/series_name.h"

#define ROOMY_MAX_RECORDS 100000
#define ROOMY_MAX_PAYLOAD (4 * 1024 * 1024)
#define TINY_MAX_RECORDS 3
#define TINY_MAX_PAYLOAD 64
#define FUZZ_NOW_S 1718841600

static struct ingest_lp *parser;

static void check_result(int rc, const struct ingest_result *r, const struct ingest_limits *lim)
{
	const uint8_t *p, *end;
	uint32_t n = 0;
	struct rec rec;

	if (rc < 0)
		return;                      /* out of memory: the caller answers 500 */
	check(rc == r->status);
	check(r->data_source == NULL && r->data_source_len == 0);
	if (rc != 0) {
		check(rc == 400 || rc == 413);
		check(memchr(r->detail, '\0', sizeof(r->detail)) != NULL && r->detail[0] != '\0');
		check(rc != 400 || strncmp(r->detail, "line ", strlen("line ")) == 0);
		check(r->payload == NULL && r->payload_len == 0 && r->nrecords == 0);
		return;
	}
	check(r->nrecords <= lim->max_records && r->payload_len <= lim->max_payload);
	check(r->payload_len == 0 || r->payload != NULL);
	p = r->payload;
	end = p ? p + r->payload_len : p;
	while (p != end) {
		p = rec_decode(p, end, &rec);
		check(p != NULL);
		check(series_name_ok(rec.name, rec.name_len));
		n++;
	}
	check(n == r->nrecords);
}

static void *dup_bytes(const void *src, size_t n)
{
	void *copy = malloc(n > 0 ? n : 1);

	check(copy != NULL);
	if (n > 0)
		memcpy(copy, src, n);
	return copy;
}

/* A valid body fits limits of exactly its size, byte for byte, and not one record less. */
static void check_limits_exact(const uint8_t *data, size_t size, enum lp_precision prec,
			       const struct ingest_result *valid)
{
	struct ingest_limits exact = { valid->nrecords, valid->payload_len };
	uint8_t *payload = dup_bytes(valid->payload, valid->payload_len);
	size_t payload_len = valid->payload_len;
	struct ingest_result r;
	int rc;

	rc = ingest_lp_parse(parser, (const char *)data, size, prec, FUZZ_NOW_S, &exact, &r);
	if (rc >= 0) {
		check(rc == 0 && r.payload_len == payload_len);
		check(payload_len == 0 || memcmp(r.payload, payload, payload_len) == 0);
	}
	if (exact.max_records > 0) {
		exact.max_records--;
		rc = ingest_lp_parse(parser, (const char *)data, size, prec, FUZZ_NOW_S, &exact,
				     &r);
		check(rc < 0 || rc == 413);
	}
	free(payload);
}

static void parse_with(const uint8_t *data, size_t size, enum lp_precision prec,
		       const struct ingest_limits *lim, bool recheck)
{
	struct ingest_result r;
	int rc;

	rc = ingest_lp_parse(parser, (const char *)data, size, prec, FUZZ_NOW_S, lim, &r);
	check_result(rc, &r, lim);
	if (rc == 0 && recheck)
		check_limits_exact(data, size, prec, &r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct ingest_limits roomy = { ROOMY_MAX_RECORDS, ROOMY_MAX_PAYLOAD };
	static const struct ingest_limits tiny = { TINY_MAX_RECORDS, TINY_MAX_PAYLOAD };
	enum lp_precision other = (enum lp_precision)(size % (LP_H + 1));

	if (parser == NULL) {
		parser = ingest_lp_new();
		check(parser != NULL);
	}
	parse_with(data, size, LP_NS, &roomy, true);
	parse_with(data, size, other, &roomy, false);
	parse_with(data, size, other, &tiny, false);
	return 0;
}
