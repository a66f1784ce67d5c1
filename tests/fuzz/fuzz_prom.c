/*
 * fuzz_prom.c - libFuzzer target for ingest_prom_parse (remote_write bodies).
 *
 * Each input is a body as sent (snappy block format around a WriteRequest), parsed by
 * one reused parser with roomy limits, then with tiny ones and with a decompressed-size
 * limit one byte short: a valid result must decode fully into nrecords finite REC_DOUBLE
 * records whose names pass series_name_ok, and the tighter limits may only turn it into
 * exactly the 413 they imply. The custom mutator mutates the protobuf inside the snappy
 * block (and sometimes the raw bytes), so the fuzzer reaches past the decompressor.
 */
#include <math.h>
#include <snappy-c.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "temporis/data/ingest_prom.h"
#include "temporis/data/record.h"
#include "temporis/data/series_name.h"

#define ROOMY_MAX_RECORDS 100000
#define ROOMY_MAX_PAYLOAD (4 * 1024 * 1024)
#define ROOMY_MAX_DECODED (1024 * 1024)
#define TINY_MAX_RECORDS 3
#define TINY_MAX_PAYLOAD 64
#define MUTATE_DECODED_MAX 65536
#define RAW_MUTATION_ONE_IN 4        /* how often the snappy bytes themselves are mutated */

/* libFuzzer's hooks; LLVMFuzzerMutate is absent from the gcc-built replay, never called there. */
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size) __attribute__((weak));
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);

static struct ingest_prom *parser;

static void check_error(int rc, const struct ingest_result *r)
{
	check(rc == 400 || rc == 413);
	check(memchr(r->detail, '\0', sizeof(r->detail)) != NULL && r->detail[0] != '\0');
	check(r->nrecords == 0 && r->payload == NULL && r->payload_len == 0);
	check(ingest_prom_last_stats(parser)->samples == 0);
}

static void check_valid(const struct ingest_result *r, const struct ingest_limits *lim)
{
	const uint8_t *p = r->payload, *end;
	uint32_t n = 0;
	struct rec rec;

	check(r->data_source == NULL && r->data_source_len == 0);
	check(r->nrecords <= lim->max_records && r->payload_len <= lim->max_payload);
	check(r->payload_len == 0 || r->payload != NULL);
	check(ingest_prom_last_stats(parser)->samples == r->nrecords);
	end = p ? p + r->payload_len : p;
	while (p != end) {
		p = rec_decode(p, end, &rec);
		check(p != NULL);
		check(rec.type == REC_DOUBLE && isfinite(rec.v.d));
		check(series_name_ok(rec.name, rec.name_len));
		n++;
	}
	check(n == r->nrecords);
}

/* Returns the status, or -1 (out of memory: the caller answers 500). */
static int parse_checked(const uint8_t *data, size_t size, size_t max_decoded,
			 const struct ingest_limits *lim, struct ingest_result *r)
{
	int rc = ingest_prom_parse(parser, data, size, max_decoded, lim, r);

	if (rc < 0)
		return rc;
	check(rc == r->status);
	if (rc == 0)
		check_valid(r, lim);
	else
		check_error(rc, r);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct ingest_limits roomy = { ROOMY_MAX_RECORDS, ROOMY_MAX_PAYLOAD };
	static const struct ingest_limits tiny = { TINY_MAX_RECORDS, TINY_MAX_PAYLOAD };
	struct ingest_result r;
	uint32_t nrecords;
	size_t payload_len, dlen;
	int rc;

	if (parser == NULL) {
		parser = ingest_prom_new();
		check(parser != NULL);
	}
	if (parse_checked(data, size, ROOMY_MAX_DECODED, &roomy, &r) != 0)
		return 0;
	nrecords = r.nrecords;
	payload_len = r.payload_len;
	/* Valid with roomy limits: tiny ones can only make it the 413 they imply. */
	rc = parse_checked(data, size, ROOMY_MAX_DECODED, &tiny, &r);
	if (rc >= 0) {
		if (nrecords > TINY_MAX_RECORDS)
			check(rc == 413 && strcmp(r.detail, "Too many records in one request.") == 0);
		else if (payload_len > TINY_MAX_PAYLOAD)
			check(rc == 413 && strcmp(r.detail, "Request body too large.") == 0);
		else
			check(rc == 0 && r.nrecords == nrecords && r.payload_len == payload_len);
	}
	check(snappy_uncompressed_length((const char *)data, size, &dlen) == SNAPPY_OK);
	if (dlen > 0) {
		rc = parse_checked(data, size, dlen - 1, &roomy, &r);
		check(rc < 0 || (rc == 413 &&
				 strcmp(r.detail, "Decompressed request body too large.") == 0));
	}
	return 0;
}

/* Mutate the WriteRequest inside the snappy block; raw bytes now and then, or if it is not one. */
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
	static char decoded[MUTATE_DECODED_MAX];
	static char packed[MUTATE_DECODED_MAX + MUTATE_DECODED_MAX / 6 + 64];
	size_t n, out = sizeof(packed);

	if (seed % RAW_MUTATION_ONE_IN == 0 ||
	    snappy_uncompressed_length((const char *)data, size, &n) != SNAPPY_OK ||
	    n > sizeof(decoded) ||
	    snappy_uncompress((const char *)data, size, decoded, &n) != SNAPPY_OK)
		return LLVMFuzzerMutate(data, size, max_size);
	n = LLVMFuzzerMutate((uint8_t *)decoded, n, sizeof(decoded));
	if (snappy_max_compressed_length(n) > sizeof(packed) ||
	    snappy_compress(decoded, n, packed, &out) != SNAPPY_OK || out > max_size)
		return LLVMFuzzerMutate(data, size, max_size);
	memcpy(data, packed, out);
	return out;
}
