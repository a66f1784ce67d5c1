/*
 * ingest.h - validation of an ingest request body: valid JSON (400), the schema
 * (422 naming the field and index), and the limits (413), in that order.
 *
 * Parses the body with json-c in strict mode, checks the schema record by record,
 * and packs the records (record.h) into the parser's reusable buffer, ready to be
 * copied into a ring entry. All-or-nothing: any error means no payload.
 * A single-pass parser (ingest_fast.h) answers the common cases without json-c.
 */
#ifndef TEMPORIS_INGEST_H
#define TEMPORIS_INGEST_H

#include <stddef.h>
#include <stdint.h>

#define INGEST_DETAIL_MAX 256

struct ingest_limits {
	uint32_t max_records;            /* more is 413 "Too many records in one request." */
	size_t max_payload;              /* packed bytes that fit one ring entry; more is 413 */
};

struct ingest_result {
	int status;                      /* 0 = valid; else 400, 413 or 422 */
	char detail[INGEST_DETAIL_MAX];  /* the answer's detail text when status != 0 */
	const char *data_source;         /* NUL-terminated; owned by the parser */
	size_t data_source_len;
	uint32_t nrecords;
	const uint8_t *payload;          /* packed records; owned by the parser */
	size_t payload_len;
};

struct ingest_parser;

/* NULL on allocation failure. The parser reuses its tokener and buffers. */
struct ingest_parser *ingest_parser_new(void);
void ingest_parser_free(struct ingest_parser *p);

/*
 * Validate body[0..len). Fills *out; what it points to stays valid until the next
 * call or ingest_parser_free. Returns out->status, or -1 if memory ran out
 * (the caller answers 500).
 */
int ingest_parse(struct ingest_parser *p, const char *body, size_t len,
		 const struct ingest_limits *lim, struct ingest_result *out);

/*
 * The json-c path alone, with the same contract as ingest_parse. It is the
 * reference the tests and the fuzzer hold ingest_parse to: both must give the
 * same status, detail, data_source and payload bytes for every body.
 */
int ingest_parse_reference(struct ingest_parser *p, const char *body, size_t len,
			   const struct ingest_limits *lim, struct ingest_result *out);

#endif
