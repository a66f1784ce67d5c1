/*
 * test_ingest.c - the ingest body validator (src/data/ingest.c) against SPEC section 3,
 * checks 5-7: JSON validity (400), schema texts with indexes (422), limits (413),
 * exact integer/double handling, and the packed payload read back with rec_decode.
 * The single-pass fast path (src/data/ingest_fast.c) is held to the json-c reference
 * (ingest_parse_reference) on hand-picked and generated bodies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "temporis/data/ingest.h"
#include "temporis/data/ingest_fast.h"
#include "temporis/data/record.h"

#define BODY_MAX (1 << 20)
#define DEFAULT_MAX_RECORDS 100000
#define DEFAULT_MAX_PAYLOAD (16u << 20)
#define DEEP_NESTING 10000
#define REUSE_ROUNDS 10000
#define DIFF_VALID_BODIES 400
#define DIFF_MUTANTS_PER_BODY 3
#define DIFF_MAX_RECORDS 8
#define DIFF_MAX_MUTATIONS 3
#define DIFF_SEED 0x9E3779B97F4A7C15ull
#define BIG_COUNT 2000
#define BENCH_RECORD "{\"timestamp\":1795557369,\"name\":\"s050\",\"value\":123.25}"
#define GOOD_RECORD "{\"timestamp\":1718841600,\"name\":\"orders\",\"value\":42}"
#define BAD_JSON "Request body is not valid JSON."
#define RANGE_AT3 "records[3].value must be an integer within the 64-bit range."
#define NUMBER_AT3 "records[3].value must be a number."
#define TS_AT3 "records[3].timestamp must be an integer."
#define NAME_AT3 "records[3].name must be a non-empty string of at most 4096 bytes " \
	"without control characters."

static const struct ingest_limits default_limits = {
	.max_records = DEFAULT_MAX_RECORDS,
	.max_payload = DEFAULT_MAX_PAYLOAD,
};

struct fixture {
	struct ingest_parser *p;
	struct ingest_result r;
	char *body;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	f->p = ingest_parser_new();
	f->body = malloc(BODY_MAX);
	if (f->p == NULL || f->body == NULL)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	ingest_parser_free(f->p);
	free(f->body);
	free(f);
	return 0;
}

/* The body is handed over in an exact-size heap copy, so ASan catches any overread. */
static int parse_len(struct fixture *f, const char *body, size_t len, const struct ingest_limits *lim)
{
	char *copy = malloc(len > 0 ? len : 1);
	int rc;

	assert_non_null(copy);
	memcpy(copy, body, len);
	rc = ingest_parse(f->p, copy, len, lim, &f->r);
	free(copy);
	return rc;
}

static int parse(struct fixture *f, const char *body)
{
	return parse_len(f, body, strlen(body), &default_limits);
}

/* {"data_source":"s","records":[ GOOD x ngood, last ]} into f->body. */
static const char *with_records(struct fixture *f, int ngood, const char *last)
{
	size_t off = 0;
	int i;

	off += (size_t)snprintf(f->body + off, BODY_MAX - off, "{\"data_source\":\"s\",\"records\":[");
	for (i = 0; i < ngood; i++)
		off += (size_t)snprintf(f->body + off, BODY_MAX - off, "%s%s", i ? "," : "", GOOD_RECORD);
	if (last != NULL)
		off += (size_t)snprintf(f->body + off, BODY_MAX - off, "%s%s", ngood ? "," : "", last);
	snprintf(f->body + off, BODY_MAX - off, "]}");
	assert_true(off < BODY_MAX - 2);
	return f->body;
}

static void expect_status(struct fixture *f, const char *body, int status, const char *detail)
{
	int rc = parse(f, body);

	assert_int_equal(rc, status);
	assert_int_equal(f->r.status, status);
	if (detail != NULL)
		assert_string_equal(f->r.detail, detail);
}

/* The record is the 4th of its request (index 3). */
static void expect_at3(struct fixture *f, const char *record, int status, const char *detail)
{
	expect_status(f, with_records(f, 3, record), status, detail);
}

/* Decode record idx of the last valid result. */
static struct rec decoded(struct fixture *f, uint32_t idx)
{
	const uint8_t *p = f->r.payload, *end = f->r.payload + f->r.payload_len;
	struct rec r;
	uint32_t i;

	memset(&r, 0, sizeof(r));
	for (i = 0; i <= idx; i++) {
		p = rec_decode(p, end, &r);
		assert_non_null(p);
	}
	return r;
}

static void assert_all_decode(struct fixture *f)
{
	const uint8_t *p = f->r.payload, *end = f->r.payload + f->r.payload_len;
	struct rec r;
	uint32_t n = 0;

	while (p != end) {
		p = rec_decode(p, end, &r);
		assert_non_null(p);
		n++;
	}
	assert_int_equal(n, f->r.nrecords);
}

static int64_t single_int_value(struct fixture *f, const char *value_literal)
{
	char rec[512];
	struct rec r;

	snprintf(rec, sizeof(rec), "{\"timestamp\":1,\"name\":\"n\",\"value\":%s}", value_literal);
	expect_status(f, with_records(f, 0, rec), 0, NULL);
	r = decoded(f, 0);
	assert_int_equal(r.type, REC_INT);
	return r.v.i;
}

static double single_double_value(struct fixture *f, const char *value_literal)
{
	char rec[512];
	struct rec r;

	snprintf(rec, sizeof(rec), "{\"timestamp\":1,\"name\":\"n\",\"value\":%s}", value_literal);
	expect_status(f, with_records(f, 0, rec), 0, NULL);
	r = decoded(f, 0);
	assert_int_equal(r.type, REC_DOUBLE);
	return r.v.d;
}

static void test_valid_request_packs_records_in_order(void **state)
{
	struct fixture *f = *state;
	struct rec r;

	expect_status(f, "{\"data_source\":\"store_metrics\",\"records\":["
		      "{\"timestamp\":1718841600,\"name\":\"orders\",\"value\":42},"
		      "{\"timestamp\":-5,\"name\":\"temp\\u00e9\",\"value\":-1.25},"
		      "{\"timestamp\":1718841600,\"name\":\"orders\",\"value\":43}]}", 0, NULL);
	assert_string_equal(f->r.data_source, "store_metrics");
	assert_int_equal(f->r.data_source_len, strlen("store_metrics"));
	assert_int_equal(f->r.nrecords, 3);
	assert_int_equal(f->r.payload_len, 3 * REC_WIRE_FIXED + 6 + 6 + 6);
	r = decoded(f, 0);
	assert_int_equal(r.ts, 1718841600);
	assert_int_equal(r.type, REC_INT);
	assert_int_equal(r.v.i, 42);
	assert_int_equal(r.name_len, 6);
	assert_memory_equal(r.name, "orders", 6);
	r = decoded(f, 1);
	assert_int_equal(r.ts, -5);
	assert_int_equal(r.type, REC_DOUBLE);
	assert_true(r.v.d == -1.25);
	assert_memory_equal(r.name, "temp\xc3\xa9", 6);
	/* Repeated keys are all kept, in order: the writer makes the last one win. */
	r = decoded(f, 2);
	assert_int_equal(r.ts, 1718841600);
	assert_int_equal(r.v.i, 43);
	assert_all_decode(f);
}

static void test_empty_records_is_valid_with_no_payload(void **state)
{
	struct fixture *f = *state;

	expect_status(f, "{\"data_source\":\"s\",\"records\":[]}", 0, NULL);
	assert_int_equal(f->r.nrecords, 0);
	assert_int_equal(f->r.payload_len, 0);
	assert_string_equal(f->r.data_source, "s");
}

static void test_unknown_fields_are_ignored(void **state)
{
	struct fixture *f = *state;

	expect_status(f, "{\"x\":[1,{\"y\":null}],\"data_source\":\"s\",\"extra\":true,\"records\":"
		      "[{\"unit\":\"ms\",\"timestamp\":7,\"tags\":{\"a\":[1e999,-99999999999999999999]},"
		      "\"name\":\"n\",\"value\":1}]}", 0, NULL);
	assert_int_equal(f->r.nrecords, 1);
	assert_int_equal(decoded(f, 0).ts, 7);
}

static void test_duplicate_keys_last_wins(void **state)
{
	struct fixture *f = *state;

	expect_status(f, "{\"data_source\":\"a\",\"data_source\":\"b\",\"records\":[{\"timestamp\":1,"
		      "\"name\":\"n\",\"value\":1,\"value\":2.5}]}", 0, NULL);
	assert_string_equal(f->r.data_source, "b");
	assert_int_equal(decoded(f, 0).type, REC_DOUBLE);
	assert_true(decoded(f, 0).v.d == 2.5);
	/* An earlier valid value does not rescue a later invalid one. */
	expect_at3(f, "{\"timestamp\":1,\"name\":\"n\",\"value\":1,\"value\":\"1\"}", 422, NUMBER_AT3);
}

static void test_document_shape_errors(void **state)
{
	struct fixture *f = *state;

	expect_status(f, "[]", 422, "Request body must be a JSON object.");
	expect_status(f, "\"x\"", 422, "Request body must be a JSON object.");
	expect_status(f, "123", 422, "Request body must be a JSON object.");
	expect_status(f, "null", 422, "Request body must be a JSON object.");
	expect_status(f, "{}", 422, "data_source must be a string.");
	expect_status(f, "{\"data_source\":1,\"records\":[]}", 422, "data_source must be a string.");
	expect_status(f, "{\"data_source\":null,\"records\":[]}", 422, "data_source must be a string.");
	/* data_source is checked before records. */
	expect_status(f, "{\"records\":7}", 422, "data_source must be a string.");
	expect_status(f, "{\"data_source\":\"s\"}", 422, "records must be a list.");
	expect_status(f, "{\"data_source\":\"s\",\"records\":{}}", 422, "records must be a list.");
	expect_status(f, "{\"data_source\":\"s\",\"records\":null}", 422, "records must be a list.");
	expect_at3(f, "[]", 422, "records[3] must be an object.");
	expect_at3(f, "\"r\"", 422, "records[3] must be an object.");
	expect_at3(f, "null", 422, "records[3] must be an object.");
	expect_status(f, with_records(f, 0, "1"), 422, "records[0] must be an object.");
}

static void test_timestamp_must_be_int64_integer(void **state)
{
	struct fixture *f = *state;
	const char *bad[] = {
		"1718841600.5", "\"1718841600\"", "true", "null", "1e3", "1.0", "[]", "{}",
		"9223372036854775808", "18446744073709551615", "18446744073709551616",
		"-9223372036854775809", "-100000000000000000000000000000", "1e400",
	};
	char rec[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(rec, sizeof(rec), "{\"timestamp\":%s,\"name\":\"n\",\"value\":1}", bad[i]);
		expect_at3(f, rec, 422, TS_AT3);
	}
	expect_at3(f, "{\"name\":\"n\",\"value\":1}", 422, TS_AT3);
}

static void test_timestamp_int64_boundaries_accepted(void **state)
{
	struct fixture *f = *state;

	expect_status(f, with_records(f, 0, "{\"timestamp\":9223372036854775807,\"name\":\"n\",\"value\":1}"),
		      0, NULL);
	assert_int_equal(decoded(f, 0).ts, INT64_MAX);
	expect_status(f, with_records(f, 0, "{\"timestamp\":-9223372036854775808,\"name\":\"n\",\"value\":1}"),
		      0, NULL);
	assert_int_equal(decoded(f, 0).ts, INT64_MIN);
	expect_status(f, with_records(f, 0, "{\"timestamp\":0,\"name\":\"n\",\"value\":1}"), 0, NULL);
	assert_int_equal(decoded(f, 0).ts, 0);
}

static void test_name_errors(void **state)
{
	struct fixture *f = *state;
	const char *bad[] = {
		"\"\"", "1", "null", "[\"n\"]", "\"a\\u0000b\"", "\"\\u0001\"", "\"a\\u001fb\"",
		"\"a\\u007fb\"", "\"a\\nb\"", "\"a\tb\"", "\"a\x7f\"",
		/* C1 control characters, raw and escaped */
		"\"a\xc2\x85\"", "\"\xc2\x9b\"", "\"\xc2\x80x\"", "\"a\\u0085\"", "\"\\u009f\"",
	};
	char rec[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(rec, sizeof(rec), "{\"timestamp\":1,\"name\":%s,\"value\":1}", bad[i]);
		expect_at3(f, rec, 422, NAME_AT3);
	}
	expect_at3(f, "{\"timestamp\":1,\"value\":1}", 422, NAME_AT3);
}

static void test_name_length_limit_is_rec_name_max_bytes(void **state)
{
	struct fixture *f = *state;
	char name[REC_NAME_MAX + 2], rec[REC_NAME_MAX + 256];
	size_t i;

	memset(name, 'a', sizeof(name));
	name[REC_NAME_MAX] = '\0';
	snprintf(rec, sizeof(rec), "{\"timestamp\":1,\"name\":\"%s\",\"value\":1}", name);
	expect_status(f, with_records(f, 0, rec), 0, NULL);
	assert_int_equal(decoded(f, 0).name_len, REC_NAME_MAX);
	assert_memory_equal(decoded(f, 0).name, name, REC_NAME_MAX);

	name[REC_NAME_MAX] = 'a';
	name[REC_NAME_MAX + 1] = '\0';
	snprintf(rec, sizeof(rec), "{\"timestamp\":1,\"name\":\"%s\",\"value\":1}", name);
	expect_at3(f, rec, 422, NAME_AT3);

	/* The limit counts bytes, not characters: REC_NAME_MAX / 2 two-byte characters fit. */
	for (i = 0; i < REC_NAME_MAX; i += 2)
		memcpy(name + i, "\xc3\xa9", 2);
	name[REC_NAME_MAX] = '\0';
	snprintf(rec, sizeof(rec), "{\"timestamp\":1,\"name\":\"%s\",\"value\":1}", name);
	expect_status(f, with_records(f, 0, rec), 0, NULL);
	snprintf(rec, sizeof(rec), "{\"timestamp\":1,\"name\":\"%s\\u00e9\",\"value\":1}", name);
	expect_at3(f, rec, 422, NAME_AT3);
}

/*
 * Invalid UTF-8: bytes json-c's own check catches (stray continuation, truncated
 * sequence, 0xFF) make the body invalid JSON (400); well-formed-looking but invalid
 * sequences it lets through (overlong, surrogate, above U+10FFFF) fail our name check (422).
 */
static void test_invalid_utf8_name(void **state)
{
	struct fixture *f = *state;
	const char *json_level[] = { "\xff", "\x80", "a\xe2\x82", "\xf8\x88\x80\x80\x80" };
	const char *schema_level[] = { "\xc0\x80", "\xc1\xbf", "\xe0\x80\xaf", "\xed\xa0\x80",
				       "\xf4\x90\x80\x80", "\xf0\x80\x80\x80" };
	const char *valid[] = { "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xef\xbf\xbd",
				"\xf4\x8f\xbf\xbf", "\xed\x9f\xbf" };
	char rec[256];
	size_t i;

	for (i = 0; i < sizeof(json_level) / sizeof(json_level[0]); i++) {
		snprintf(rec, sizeof(rec), "{\"timestamp\":1,\"name\":\"%s\",\"value\":1}", json_level[i]);
		expect_at3(f, rec, 400, BAD_JSON);
	}
	for (i = 0; i < sizeof(schema_level) / sizeof(schema_level[0]); i++) {
		snprintf(rec, sizeof(rec), "{\"timestamp\":1,\"name\":\"%s\",\"value\":1}", schema_level[i]);
		expect_at3(f, rec, 422, NAME_AT3);
	}
	for (i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
		snprintf(rec, sizeof(rec), "{\"timestamp\":1,\"name\":\"%s\",\"value\":1}", valid[i]);
		expect_status(f, with_records(f, 0, rec), 0, NULL);
		assert_memory_equal(decoded(f, 0).name, valid[i], strlen(valid[i]));
	}
	/* json-c turns an escaped lone surrogate into U+FFFD, which is valid. */
	expect_status(f, with_records(f, 0, "{\"timestamp\":1,\"name\":\"\\ud800\",\"value\":1}"), 0, NULL);
	assert_memory_equal(decoded(f, 0).name, "\xef\xbf\xbd", 3);
}

/* Just past the C1 block (U+00A0, no-break space) is an ordinary character. */
static void test_name_after_c1_is_valid(void **state)
{
	struct fixture *f = *state;

	expect_status(f, with_records(f, 0, "{\"timestamp\":1,\"name\":\"a\xc2\xa0\",\"value\":1}"),
		      0, NULL);
	expect_status(f, with_records(f, 0, "{\"timestamp\":1,\"name\":\"\\u00a0\",\"value\":1}"),
		      0, NULL);
}

/* Numbers JSON does not have are 400, wherever they are (json-c takes them). */
static void test_lenient_numbers_are_not_json(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[] = {
		"{\"timestamp\":1,\"name\":\"n\",\"value\":1.}",
		"{\"timestamp\":1,\"name\":\"n\",\"value\":-01}",
		"{\"timestamp\":01,\"name\":\"n\",\"value\":1}",
		"{\"timestamp\":1,\"name\":\"n\",\"value\":1.e5}",
		"{\"timestamp\":1,\"name\":\"n\",\"value\":00}",
		"{\"timestamp\":1,\"name\":\"n\",\"value\":1,\"x\":[00]}",
		"{\"timestamp\":1,\"name\":\"n\",\"value\":1,\"x\":-0.}",
	};
	static const char *const good[] = {
		"{\"timestamp\":1,\"name\":\"n\",\"value\":-0.0e-0}",
		"{\"timestamp\":0,\"name\":\"n\",\"value\":10.25E+2}",
		"{\"timestamp\":1,\"name\":\"01 1. \\\"00\",\"value\":0}",
		"{\"timestamp\":1,\"name\":\"n\",\"value\":1,\"x\":[0,-0,0.5,\"-01\"]}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_status(f, with_records(f, 0, bad[i]), 400, "Request body is not valid JSON.");
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		expect_status(f, with_records(f, 0, good[i]), 0, NULL);
}

static void test_value_must_be_a_number(void **state)
{
	struct fixture *f = *state;
	const char *bad[] = { "\"42\"", "true", "null", "[]", "{}", "1e400", "-1e400" };
	char rec[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(rec, sizeof(rec), "{\"timestamp\":1,\"name\":\"n\",\"value\":%s}", bad[i]);
		expect_at3(f, rec, 422, NUMBER_AT3);
	}
	expect_at3(f, "{\"timestamp\":1,\"name\":\"n\"}", 422, NUMBER_AT3);
}

static void test_value_integer_outside_int64_rejected(void **state)
{
	struct fixture *f = *state;
	const char *bad[] = {
		"9223372036854775808", "18446744073709551615", "18446744073709551616",
		"100000000000000000000000000000", "-9223372036854775809", "-9223372036854775810",
		"-18446744073709551616", "-100000000000000000000000000000",
	};
	char rec[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(rec, sizeof(rec), "{\"timestamp\":1,\"name\":\"n\",\"value\":%s}", bad[i]);
		expect_at3(f, rec, 422, RANGE_AT3);
	}
}

static void test_value_int64_boundaries_exact(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(single_int_value(f, "9223372036854775807"), INT64_MAX);
	assert_int_equal(single_int_value(f, "-9223372036854775808"), INT64_MIN);
	assert_int_equal(single_int_value(f, "-9223372036854775807"), INT64_MIN + 1);
	assert_int_equal(single_int_value(f, "9007199254740993"), (int64_t)9007199254740993LL);
	assert_int_equal(single_int_value(f, "0"), 0);
	assert_int_equal(single_int_value(f, "-0"), 0);
}

/*
 * json-c clamps -9223372036854775809 to INT64_MIN; an exact INT64_MIN next to a
 * clamped literal elsewhere must still be told apart, wherever each one sits.
 */
static void test_int64_min_told_apart_from_clamped_literal(void **state)
{
	struct fixture *f = *state;

	expect_status(f, "{\"data_source\":\"s\",\"records\":["
		      "{\"timestamp\":-9223372036854775808,\"name\":\"n\",\"value\":-9223372036854775808},"
		      "{\"timestamp\":1,\"name\":\"n\",\"value\":-9223372036854775809}]}",
		      422, "records[1].value must be an integer within the 64-bit range.");
	expect_status(f, "{\"data_source\":\"s\",\"records\":["
		      "{\"timestamp\":-9223372036854775809,\"name\":\"n\",\"value\":-9223372036854775808}]}",
		      422, "records[0].timestamp must be an integer.");
	/* The clamped literal is in an ignored field or inside a string: both exact values stand. */
	expect_status(f, "{\"data_source\":\"s\",\"x\":-99999999999999999999,\"records\":["
		      "{\"timestamp\":-9223372036854775808,\"name\":\"-99999999999999999999\\\"\","
		      "\"tag\":-9223372036854775809e0,\"value\":-9223372036854775808,"
		      "\"t\":1E-99999999999999999999}]}", 0, NULL);
	assert_int_equal(decoded(f, 0).ts, INT64_MIN);
	assert_int_equal(decoded(f, 0).v.i, INT64_MIN);
	assert_memory_equal(decoded(f, 0).name, "-99999999999999999999\"", 22);
	/* Leading zeros are a json-c leniency, not JSON: refused before any range check. */
	expect_status(f, with_records(f, 0, "{\"timestamp\":1,\"name\":\"n\",\"value\":-09223372036854775808}"),
		      400, "Request body is not valid JSON.");
}

static void test_doubles_are_bit_exact(void **state)
{
	struct fixture *f = *state;
	const struct {
		const char *literal;
		double expect;
	} cases[] = {
		{ "0.1", 0.1 }, { "-0.0", -0.0 }, { "1e308", 1e308 }, { "5e-324", 5e-324 },
		{ "1.7976931348623157e308", 1.7976931348623157e308 }, { "2.5E-3", 2.5e-3 },
		{ "1e3", 1000.0 }, { "1.0", 1.0 }, { "9007199254740993.0", 9007199254740992.0 },
		{ "2e-400", 0.0 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double got = single_double_value(f, cases[i].literal);

		assert_memory_equal(&got, &cases[i].expect, sizeof(double));
	}
	assert_true(signbit(single_double_value(f, "-0.0")));
}

static void test_record_fields_checked_in_order(void **state)
{
	struct fixture *f = *state;

	expect_at3(f, "{\"name\":\"\",\"value\":\"x\",\"timestamp\":1.5}", 422, TS_AT3);
	expect_at3(f, "{\"value\":\"x\",\"timestamp\":1,\"name\":\"\"}", 422, NAME_AT3);
	/* The first failing record wins over later ones. */
	expect_status(f, "{\"data_source\":\"s\",\"records\":[" GOOD_RECORD ",{\"timestamp\":1,"
		      "\"name\":\"n\",\"value\":null},{\"timestamp\":null}]}", 422,
		      "records[1].value must be a number.");
}

static void test_invalid_json_beats_schema_error(void **state)
{
	struct fixture *f = *state;

	expect_status(f, "{\"data_source\":1,\"records\":2} x", 400, BAD_JSON);
	expect_status(f, "{\"data_source\":1,\"records\":[NaN]}", 400, BAD_JSON);
	/* NaN in a later record still beats a schema error in an earlier one. */
	expect_status(f, with_records(f, 0, "{\"timestamp\":\"bad\"},{\"timestamp\":1,\"name\":\"n\","
				      "\"value\":NaN}"), 400, BAD_JSON);
}

static void test_schema_error_beats_too_many_records(void **state)
{
	struct fixture *f = *state;
	const struct ingest_limits lim = { .max_records = 2, .max_payload = 1 };

	with_records(f, 5, "{\"timestamp\":1,\"name\":\"n\",\"value\":true}");
	assert_int_equal(parse_len(f, f->body, strlen(f->body), &lim), 422);
	assert_string_equal(f->r.detail, "records[5].value must be a number.");
}

static void test_too_many_records_beats_payload_size(void **state)
{
	struct fixture *f = *state;
	const struct ingest_limits lim = { .max_records = 1, .max_payload = 1 };

	with_records(f, 2, NULL);
	assert_int_equal(parse_len(f, f->body, strlen(f->body), &lim), 413);
	assert_string_equal(f->r.detail, "Too many records in one request.");
}

static void test_limits_are_inclusive(void **state)
{
	struct fixture *f = *state;
	const size_t one = REC_WIRE_FIXED + strlen("orders");
	struct ingest_limits lim = { .max_records = 3, .max_payload = 3 * one };

	with_records(f, 3, NULL);
	assert_int_equal(parse_len(f, f->body, strlen(f->body), &lim), 0);
	assert_int_equal(f->r.nrecords, 3);
	assert_int_equal(f->r.payload_len, 3 * one);
	assert_all_decode(f);

	lim.max_payload = 3 * one - 1;
	assert_int_equal(parse_len(f, f->body, strlen(f->body), &lim), 413);
	assert_string_equal(f->r.detail, "Request body too large.");
	assert_null(f->r.payload);

	lim.max_payload = 3 * one;
	lim.max_records = 2;
	assert_int_equal(parse_len(f, f->body, strlen(f->body), &lim), 413);
	assert_string_equal(f->r.detail, "Too many records in one request.");
}

static void test_trailing_garbage_rejected(void **state)
{
	struct fixture *f = *state;
	const char *bad[] = { "{}x", "{} {}", "{},", "{}]", "{}}", "{}\"", "{}/", "{} //", "{}\x01" };
	static const char with_nul[] = "{\"data_source\":\"s\",\"records\":[]}\0";
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_status(f, bad[i], 400, BAD_JSON);
	assert_int_equal(parse_len(f, with_nul, sizeof(with_nul) - 1, &default_limits), 400);
	assert_int_equal(parse_len(f, "{\"data_source\":\"s\",\"records\":[]} \0 ", 35, &default_limits), 400);
	/* Surrounding whitespace is fine. */
	expect_status(f, " \t\r\n{\"data_source\":\"s\",\"records\":[]}\r\n \t", 0, NULL);
}

/* Every proper prefix of a valid body is truncated JSON; the whole body is valid. */
static void test_truncated_body_rejected(void **state)
{
	struct fixture *f = *state;
	const char *body = with_records(f, 1, "{\"timestamp\":-12,\"name\":\"n\",\"value\":-1.5e-3}");
	size_t len = strlen(body), i;

	for (i = 0; i < len; i++) {
		assert_int_equal(parse_len(f, body, i, &default_limits), 400);
		assert_string_equal(f->r.detail, BAD_JSON);
	}
	assert_int_equal(parse_len(f, body, len, &default_limits), 0);
	assert_int_equal(f->r.nrecords, 2);
	expect_status(f, "", 400, BAD_JSON);
	expect_status(f, "   ", 400, BAD_JSON);
	expect_status(f, "-", 400, BAD_JSON);
	expect_status(f, "1e", 400, BAD_JSON);
	expect_status(f, "\"abc", 400, BAD_JSON);
	expect_status(f, "tru", 400, BAD_JSON);
}

static void test_nan_and_infinity_rejected_as_invalid_json(void **state)
{
	struct fixture *f = *state;
	const char *lits[] = { "NaN", "Infinity", "-Infinity", "nan", "inf", "NAN", "-NaN" };
	char rec[256];
	size_t i;

	for (i = 0; i < sizeof(lits) / sizeof(lits[0]); i++) {
		snprintf(rec, sizeof(rec), "{\"timestamp\":1,\"name\":\"n\",\"value\":%s}", lits[i]);
		expect_at3(f, rec, 400, BAD_JSON);
		snprintf(rec, sizeof(rec), "{\"timestamp\":%s,\"name\":\"n\",\"value\":1}", lits[i]);
		expect_at3(f, rec, 400, BAD_JSON);
		snprintf(rec, sizeof(rec), "{\"timestamp\":1,\"name\":\"n\",\"value\":1,\"x\":[[%s]]}", lits[i]);
		expect_at3(f, rec, 400, BAD_JSON);
	}
	expect_status(f, "NaN", 400, BAD_JSON);
	expect_status(f, "-Infinity", 400, BAD_JSON);
	expect_status(f, "{\"data_source\":\"s\",\"records\":[],\"x\":Infinity}", 400, BAD_JSON);
	/* The words inside strings are just text. */
	expect_status(f, with_records(f, 0, "{\"timestamp\":1,\"name\":\"NaN Infinity\",\"value\":1}"),
		      0, NULL);
}

static void test_deep_nesting_rejected_without_crash(void **state)
{
	struct fixture *f = *state;
	char *deep = malloc(2 * DEEP_NESTING + 1);
	size_t i;

	assert_non_null(deep);
	for (i = 0; i < DEEP_NESTING; i++) {
		deep[i] = '[';
		deep[2 * DEEP_NESTING - 1 - i] = ']';
	}
	assert_int_equal(parse_len(f, deep, DEEP_NESTING, &default_limits), 400);
	assert_int_equal(parse_len(f, deep, 2 * DEEP_NESTING, &default_limits), 400);
	for (i = 0; i < DEEP_NESTING; i++)
		deep[i] = (i % 2) ? '[' : '{';
	assert_int_equal(parse_len(f, deep, DEEP_NESTING, &default_limits), 400);
	free(deep);
	/* Moderate nesting in an ignored field is fine. */
	expect_status(f, "{\"data_source\":\"s\",\"records\":[],\"x\":[[[[[[[[[[{}]]]]]]]]]]}", 0, NULL);
}

static void test_long_data_source_copied_nul_terminated(void **state)
{
	struct fixture *f = *state;
	size_t n = 100000, off;

	off = (size_t)snprintf(f->body, BODY_MAX, "{\"records\":[],\"data_source\":\"");
	memset(f->body + off, 'q', n);
	strcpy(f->body + off + n, "\"}");
	expect_status(f, f->body, 0, NULL);
	assert_int_equal(f->r.data_source_len, n);
	assert_int_equal(strlen(f->r.data_source), n);
	/* An escaped NUL is kept; the length says where the name ends. */
	expect_status(f, "{\"data_source\":\"a\\u0000b\",\"records\":[]}", 0, NULL);
	assert_int_equal(f->r.data_source_len, 3);
	assert_memory_equal(f->r.data_source, "a\0b", 4);
}

static void test_many_records_grow_payload(void **state)
{
	struct fixture *f = *state;
	int n = 5000;

	with_records(f, n, NULL);
	expect_status(f, f->body, 0, NULL);
	assert_int_equal(f->r.nrecords, n);
	assert_int_equal(f->r.payload_len, (size_t)n * (REC_WIRE_FIXED + strlen("orders")));
	assert_all_decode(f);
	assert_int_equal(decoded(f, (uint32_t)n - 1).v.i, 42);
}

/* Run under ASan: any leak on the error paths shows up after 10,000 rounds. */
static void test_parser_reuse_alternating_valid_invalid(void **state)
{
	struct fixture *f = *state;
	const char *invalid[] = {
		/* truncated: records and the body are never closed */
		"{\"data_source\":\"s\",\"records\":[{\"timestamp\":1,\"name\":\"n\",\"value\":[1,2,{}]}",
		"{\"data_source\":\"s\",\"records\":[{\"timestamp\":1,\"name\":\"\",\"value\":1}]}",
		"{\"data_source\":\"s\",\"records\":[{\"timestamp\":1,\"name\":\"n\",\"value\":NaN}]}",
		("{\"data_source\":\"s\",\"records\":[{\"timestamp\":-9223372036854775808,\"name\":\"n\","
		 "\"value\":-9223372036854775809}]}"),
	};
	const int status[] = { 400, 422, 400, 422 };
	char valid[256];
	int i;

	for (i = 0; i < REUSE_ROUNDS; i++) {
		if (i % 2 == 0) {
			snprintf(valid, sizeof(valid), "{\"data_source\":\"src%d\",\"records\":[{\"timestamp\":%d,"
				 "\"name\":\"n\",\"value\":%d.5}," GOOD_RECORD "]}", i, i, i);
			expect_status(f, valid, 0, NULL);
			assert_int_equal(f->r.nrecords, 2);
			assert_int_equal(decoded(f, 0).ts, i);
			assert_true(decoded(f, 0).v.d == i + 0.5);
		} else {
			expect_status(f, invalid[(i / 2) % 4], status[(i / 2) % 4], NULL);
			assert_null(f->r.payload);
		}
	}
}


/* A result copied out of parser memory, which the next parse reuses. */
struct snapshot {
	int rc;
	struct ingest_result r;
	char *source;
	uint8_t *payload;
};

static void take_snapshot(struct snapshot *snap, int rc, const struct ingest_result *r)
{
	snap->rc = rc;
	snap->r = *r;
	snap->source = NULL;
	snap->payload = NULL;
	if (r->data_source != NULL) {
		snap->source = malloc(r->data_source_len + 1);
		assert_non_null(snap->source);
		memcpy(snap->source, r->data_source, r->data_source_len + 1);
	}
	if (r->payload != NULL && r->payload_len > 0) {
		snap->payload = malloc(r->payload_len);
		assert_non_null(snap->payload);
		memcpy(snap->payload, r->payload, r->payload_len);
	}
}

/* ingest_parse and the json-c reference give the same answer, byte for byte. */
static void assert_same_as_reference(struct fixture *f, const char *body, size_t len,
				     const struct ingest_limits *lim)
{
	struct snapshot fast;
	int rc;

	take_snapshot(&fast, parse_len(f, body, len, lim), &f->r);
	rc = ingest_parse_reference(f->p, body, len, lim, &f->r);
	assert_int_equal(fast.rc, rc);
	assert_int_equal(fast.r.status, f->r.status);
	assert_string_equal(fast.r.detail, f->r.detail);
	assert_int_equal(fast.r.nrecords, f->r.nrecords);
	assert_int_equal(fast.r.data_source_len, f->r.data_source_len);
	assert_int_equal(fast.source == NULL, f->r.data_source == NULL);
	if (fast.source != NULL)
		assert_memory_equal(fast.source, f->r.data_source, f->r.data_source_len + 1);
	assert_int_equal(fast.r.payload_len, f->r.payload_len);
	if (fast.payload != NULL)
		assert_memory_equal(fast.payload, f->r.payload, f->r.payload_len);
	free(fast.source);
	free(fast.payload);
}

/* What the fast path alone makes of body: the tests below check it decides, not defers. */
static enum ingest_fast_status fast_verdict(const char *body, const struct ingest_limits *lim)
{
	struct ingest_buf buf = { 0 };
	struct ingest_fast_result fr;
	enum ingest_fast_status v = ingest_fast_parse(body, strlen(body), lim, &buf, &fr);

	free(buf.data);
	return v;
}

static void test_fast_path_decides_common_bodies_and_defers_odd_ones(void **state)
{
	const char *decided[] = {
		"{\"data_source\":\"s\",\"records\":[" BENCH_RECORD "]}",
		"{\"records\":[],\"data_source\":\"\"}",
		" {\"data_source\":\"s\",\"records\":[{\"value\":1,\"name\":\"n\",\"timestamp\":-1}]}\n",
		"{\"x\":[1,{\"y\":null}],\"data_source\":\"s\",\"records\":[{\"t\":true,"
		"\"timestamp\":1,\"name\":\"\xc3\xa9\",\"value\":5e3}]}",
	};
	const char *deferred[] = {
		"{\"data_source\":\"s\\u00e9\",\"records\":[]}",
		"{\"data_source\":\"s\",\"records\":[{\"timestamp\":1,\"name\":\"a\\\"b\",\"value\":1}]}",
		"{\"data_source\":\"s\",\"data_source\":\"s\",\"records\":[]}",
		"{\"data_source\":\"s\",\"records\":[{\"timestamp\":01,\"name\":\"n\",\"value\":1}]}",
		"{\"data_source\":\"s\",\"records\":[{\"timestamp\":1,\"name\":\"n\",\"value\":-0}]}",
		"{\"data_source\":\"s\",\"records\":[{\"timestamp\":1,\"name\":\"n\",\"value\":1e400}]}",
		"{\"data_source\":\"s\",\"records\":[{\"timestamp\":1,\"name\":\"n\",\"value\":1.}]}",
		"{\"data_source\":\"s\",\"records\":[{\"timestamp\":1.0,\"name\":\"n\",\"value\":1}]}",
		"{\"data_source\":\"s\",\"records\":[{\"timestamp\":1,\"name\":\"\",\"value\":1}]}",
		"{\"data_source\":\"s\",\"records\":[]} x",
		"{\"data_source\":\"s\",\"records\":[],\"x\":NaN}",
		"{\"data_source\":\"s\\u0000\",\"records\":[]}",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(decided) / sizeof(decided[0]); i++)
		assert_int_equal(fast_verdict(decided[i], &default_limits), INGEST_FAST_ACCEPT);
	for (i = 0; i < sizeof(deferred) / sizeof(deferred[0]); i++)
		assert_int_equal(fast_verdict(deferred[i], &default_limits), INGEST_FAST_UNSURE);
}

static void test_key_order_is_free(void **state)
{
	struct fixture *f = *state;
	struct rec r;

	expect_status(f, "{\"records\":[{\"value\":123.25,\"name\":\"s050\",\"timestamp\":1795557369},"
		      "{\"name\":\"b\",\"value\":-3,\"timestamp\":2}],\"data_source\":\"bench\"}", 0, NULL);
	assert_string_equal(f->r.data_source, "bench");
	assert_int_equal(f->r.nrecords, 2);
	r = decoded(f, 0);
	assert_int_equal(r.ts, 1795557369);
	assert_int_equal(r.type, REC_DOUBLE);
	assert_true(r.v.d == 123.25);
	assert_memory_equal(r.name, "s050", 4);
	r = decoded(f, 1);
	assert_int_equal(r.ts, 2);
	assert_int_equal(r.type, REC_INT);
	assert_int_equal(r.v.i, -3);
	assert_all_decode(f);
}

static void test_extra_keys_skipped_anywhere(void **state)
{
	struct fixture *f = *state;
	const char *body = "{\"a\":{\"b\":[true,false,null,\"x\",-1.5e-3,{}]},\"data_source\":\"s\","
		"\"records\":[{\"u\":\"ms\",\"timestamp\":7,\"tags\":{\"k\":[[1],[2]]},\"name\":\"n\","
		"\"value\":1,\"z\":[]}],\"\":0}";

	expect_status(f, body, 0, NULL);
	assert_int_equal(f->r.nrecords, 1);
	assert_int_equal(decoded(f, 0).ts, 7);
	assert_int_equal(decoded(f, 0).v.i, 1);
	assert_same_as_reference(f, body, strlen(body), &default_limits);
}

static void test_escapes_answered_by_fallback(void **state)
{
	struct fixture *f = *state;

	expect_status(f, "{\"data\\u005fsource\":\"d\\/s\",\"records\":[{\"timestamp\":1,"
		      "\"na\\u006de\":\"a\\\"b\\u00e9\",\"value\":1}]}", 0, NULL);
	assert_string_equal(f->r.data_source, "d/s");
	assert_int_equal(decoded(f, 0).name_len, 5);
	assert_memory_equal(decoded(f, 0).name, "a\"b\xc3\xa9", 5);
	expect_at3(f, "{\"timestamp\":1,\"name\":\"a\\u0001\",\"value\":1}", 422, NAME_AT3);
	expect_status(f, "{\"data_source\":\"s\",\"records\":[{\"timestamp\":1,\"name\":\"a\\x\","
		      "\"value\":1}]}", 400, BAD_JSON);
}

static void test_integer_edges_through_fast_path(void **state)
{
	struct fixture *f = *state;

	expect_status(f, with_records(f, 0, "{\"timestamp\":-9223372036854775808,\"name\":\"n\","
				      "\"value\":9223372036854775807}"), 0, NULL);
	assert_int_equal(decoded(f, 0).ts, INT64_MIN);
	assert_int_equal(decoded(f, 0).v.i, INT64_MAX);
	expect_status(f, with_records(f, 0, "{\"timestamp\":9223372036854775807,\"name\":\"n\","
				      "\"value\":-9223372036854775808}"), 0, NULL);
	assert_int_equal(decoded(f, 0).ts, INT64_MAX);
	assert_int_equal(decoded(f, 0).v.i, INT64_MIN);
	assert_int_equal(single_int_value(f, "-42"), -42);
	assert_int_equal(single_int_value(f, "-1"), -1);
	/* One past the edges: json-c's answer, reached through the fallback. */
	expect_at3(f, "{\"timestamp\":1,\"name\":\"n\",\"value\":9223372036854775808}", 422, RANGE_AT3);
	expect_at3(f, "{\"timestamp\":-9223372036854775809,\"name\":\"n\",\"value\":1}", 422, TS_AT3);
}

static void test_doubles_through_fast_path_match_strtod(void **state)
{
	struct fixture *f = *state;
	const char *lits[] = { "1e-300", "123.25", "-0.0", "5e3", "0.1", "-2.5E+2", "1.7976931348623157e308",
			       "3.141592653589793238462643383279", "1e22", "123456789012345678.9" };
	size_t i;

	for (i = 0; i < sizeof(lits) / sizeof(lits[0]); i++) {
		double got = single_double_value(f, lits[i]), want = strtod(lits[i], NULL);

		assert_memory_equal(&got, &want, sizeof(double));
	}
	assert_true(signbit(single_double_value(f, "-0.0")));
	assert_true(single_double_value(f, "5e3") == 5000.0);
}

/*
 * Around the exact fast path's edges (2^53 mantissas, 10^22, 15 to 19 digits,
 * trailing zeros, exponents that cancel fractions), every literal gives strtod's bits.
 */
static void test_generated_doubles_match_strtod(void **state)
{
	struct fixture *f = *state;
	static const char *const exps[] = { "", "e0", "e22", "e-22", "e23", "e-23", "E+5", "e-7", "e200" };
	char lit[64];

	srand(4242);
	for (int i = 0; i < 20000; i++) {
		int ndigits = 1 + rand() % 19, point = rand() % (ndigits + 1), len = 0;
		double got, want;

		if (rand() & 1)
			lit[len++] = '-';
		for (int d = 0; d < ndigits; d++) {
			if (d == point && d > 0)
				lit[len++] = '.';
			/* no leading zeros: the grammar refuses them */
			lit[len++] = (char)('0' + (d == 0 ? 1 + rand() % 9 : rand() % 10));
		}
		if (point == 0 || point >= ndigits) {
			lit[len++] = '.';
			lit[len++] = (char)('0' + rand() % 10);
		}
		snprintf(lit + len, sizeof(lit) - (size_t)len, "%s", exps[rand() % 9]);
		got = single_double_value(f, lit);
		want = strtod(lit, NULL);
		assert_memory_equal(&got, &want, sizeof(double));
	}
	/* 2^53 and 2^53 + 1 as mantissas, and ones that need strtod */
	for (const char *const *l = (const char *const[]){ "9007199254740992.0", "9007199254740993.0",
			"900719925474099.3", "4.7380e1", "0.0000000000000000000001", "1.00000000000000011",
			NULL }; *l != NULL; l++) {
		double got = single_double_value(f, *l), want = strtod(*l, NULL);

		assert_memory_equal(&got, &want, sizeof(double));
	}
}

/* BIG_COUNT valid records, then optionally one more record at the end. */
static const char *big_body(struct fixture *f, const char *last)
{
	return with_records(f, BIG_COUNT, last);
}

static void test_all_valid_body_over_limits_is_413(void **state)
{
	struct fixture *f = *state;
	const struct ingest_limits few = { .max_records = BIG_COUNT / 2, .max_payload = DEFAULT_MAX_PAYLOAD };
	const struct ingest_limits small = { .max_records = DEFAULT_MAX_RECORDS, .max_payload = 1000 };

	big_body(f, NULL);
	assert_int_equal(fast_verdict(f->body, &few), INGEST_FAST_TOO_MANY);
	assert_int_equal(parse_len(f, f->body, strlen(f->body), &few), 413);
	assert_string_equal(f->r.detail, "Too many records in one request.");
	assert_null(f->r.payload);
	assert_null(f->r.data_source);
	assert_same_as_reference(f, f->body, strlen(f->body), &few);

	assert_int_equal(fast_verdict(f->body, &small), INGEST_FAST_TOO_LARGE);
	assert_int_equal(parse_len(f, f->body, strlen(f->body), &small), 413);
	assert_string_equal(f->r.detail, "Request body too large.");
	assert_same_as_reference(f, f->body, strlen(f->body), &small);
}

static void test_one_bad_record_makes_big_body_422_not_413(void **state)
{
	struct fixture *f = *state;
	const struct ingest_limits few = { .max_records = BIG_COUNT / 2, .max_payload = DEFAULT_MAX_PAYLOAD };
	char detail[INGEST_DETAIL_MAX];

	big_body(f, "{\"timestamp\":1,\"name\":\"n\",\"value\":\"1\"}");
	assert_int_equal(parse_len(f, f->body, strlen(f->body), &few), 422);
	snprintf(detail, sizeof(detail), "records[%d].value must be a number.", BIG_COUNT);
	assert_string_equal(f->r.detail, detail);
	assert_same_as_reference(f, f->body, strlen(f->body), &few);
}

/* xorshift64*: a fixed seed makes every run test the same bodies. */
static uint64_t rnd(uint64_t *st)
{
	*st ^= *st >> 12;
	*st ^= *st << 25;
	*st ^= *st >> 27;
	return *st * 0x2545F4914F6CDD1Dull;
}

static const char *pick(uint64_t *st, const char *const *from, size_t n)
{
	return from[rnd(st) % n];
}

#define PICK(st, arr) pick((st), (arr), sizeof(arr) / sizeof((arr)[0]))

static const char *const gen_ints[] = {
	"0", "1", "-1", "42", "1795557369", "-1795557369", "9223372036854775807",
	"-9223372036854775808", "9223372036854775808", "-9223372036854775809", "-0", "007",
	"18446744073709551616", "1.0", "1e3",
};
static const char *const gen_values[] = {
	"123.25", "-0.0", "5e3", "1e-300", "0.1", "2.5E-3", "1e308", "1e400", "-1e400", "5e-324",
	"2e-400", "1.", ".5", "+1", "-", "1e", "true", "null", "\"7\"", "[]", "{}", "NaN",
	"123456789.123456789", "-7", "0", "3.0e+10", "1E5", "0e0", "-0e-0",
};
static const char *const gen_names[] = {
	"\"s050\"", "\"n\"", "\"\xc3\xa9t\xc3\xa9\"", "\"\xf0\x9f\x98\x80\"", "\"a\\\"b\"",
	"\"\\u00e9\"", "\"\"", "\"a\tb\"", "\"a\x7f\"", "\"\xc0\x80\"", "\"\xff\"", "1", "null",
	"\"NaN Infinity\"", "\"a\\/b\"",
};
static const char *const gen_sources[] = {
	"\"bench\"", "\"\"", "\"d\\u0000s\"", "\"\xe2\x82\xac\"", "\"a b\"", "7", "\"x\\ny\"",
};
static const char *const gen_extras[] = {
	"true", "false", "null", "[1,[2,{\"a\":\"b\"}]]", "{\"k\":-1.5e-3}", "\"\"", "1e999",
	"-99999999999999999999", "[]", "{}",
};
static const char *const gen_ws[] = { "", "", "", " ", "\n", "\t ", "\r\n" };
static const char mutation_bytes[] = "{}[],:\"\\-+.eE019 \tnx\x80\xc3\xff";

/* Append "key":value (with random whitespace) to buf at *off. */
static void gen_field(uint64_t *st, char *buf, size_t *off, size_t cap, const char *key, const char *val)
{
	*off += (size_t)snprintf(buf + *off, cap - *off, "%s\"%s\"%s:%s%s", PICK(st, gen_ws), key,
				 PICK(st, gen_ws), PICK(st, gen_ws), val);
}

static void gen_record(uint64_t *st, char *buf, size_t *off, size_t cap)
{
	const char *keys[4] = { "timestamp", "name", "value", "extra" };
	const char *vals[4];
	size_t i, j, n = (rnd(st) % 4 == 0) ? 4 : 3;
	bool exotic = rnd(st) % 3 == 0;

	vals[0] = exotic ? PICK(st, gen_ints) : gen_ints[rnd(st) % 8];
	vals[1] = exotic ? PICK(st, gen_names) : gen_names[rnd(st) % 4];
	vals[2] = exotic ? PICK(st, gen_values) : gen_values[rnd(st) % 7];
	vals[3] = PICK(st, gen_extras);
	for (i = n - 1; i > 0; i--) { /* shuffle key order */
		const char *tk, *tv;

		j = rnd(st) % (i + 1);
		tk = keys[i], keys[i] = keys[j], keys[j] = tk;
		tv = vals[i], vals[i] = vals[j], vals[j] = tv;
	}
	*off += (size_t)snprintf(buf + *off, cap - *off, "{");
	for (i = 0; i < n; i++) {
		if (i > 0)
			*off += (size_t)snprintf(buf + *off, cap - *off, ",");
		gen_field(st, buf, off, cap, keys[i], vals[i]);
	}
	*off += (size_t)snprintf(buf + *off, cap - *off, "}");
}

/* A mostly valid body: random key orders, numbers, names, extra fields, whitespace. */
static size_t gen_body(uint64_t *st, char *buf, size_t cap)
{
	size_t off = 0, i, nrec = rnd(st) % (DIFF_MAX_RECORDS + 1);
	bool records_first = rnd(st) % 2;
	char src[64];

	snprintf(src, sizeof(src), "%s", rnd(st) % 4 ? gen_sources[0] : PICK(st, gen_sources));
	off += (size_t)snprintf(buf + off, cap - off, "%s{", PICK(st, gen_ws));
	if (!records_first) {
		gen_field(st, buf, &off, cap, "data_source", src);
		off += (size_t)snprintf(buf + off, cap - off, ",");
	}
	if (rnd(st) % 4 == 0) {
		gen_field(st, buf, &off, cap, "extra", PICK(st, gen_extras));
		off += (size_t)snprintf(buf + off, cap - off, ",");
	}
	off += (size_t)snprintf(buf + off, cap - off, "\"records\":[");
	for (i = 0; i < nrec; i++) {
		if (i > 0)
			off += (size_t)snprintf(buf + off, cap - off, ",%s", PICK(st, gen_ws));
		gen_record(st, buf, &off, cap);
	}
	off += (size_t)snprintf(buf + off, cap - off, "]");
	if (records_first) {
		off += (size_t)snprintf(buf + off, cap - off, ",");
		gen_field(st, buf, &off, cap, "data_source", src);
	}
	off += (size_t)snprintf(buf + off, cap - off, "}%s", PICK(st, gen_ws));
	assert_true(off < cap);
	return off;
}

/* Flip, insert, delete or cut bytes; the result may be anything. */
static size_t mutate(uint64_t *st, char *buf, size_t len, size_t cap)
{
	size_t k, n = 1 + rnd(st) % DIFF_MAX_MUTATIONS, at;

	for (k = 0; k < n && len > 0; k++) {
		at = rnd(st) % len;
		switch (rnd(st) % 4) {
		case 0:
			buf[at] = mutation_bytes[rnd(st) % (sizeof(mutation_bytes) - 1)];
			break;
		case 1:
			if (len + 1 < cap) {
				memmove(buf + at + 1, buf + at, len - at);
				buf[at] = mutation_bytes[rnd(st) % (sizeof(mutation_bytes) - 1)];
				len++;
			}
			break;
		case 2:
			memmove(buf + at, buf + at + 1, len - at - 1);
			len--;
			break;
		default:
			len = at;
			break;
		}
	}
	return len;
}

static void test_fast_path_agrees_with_reference_on_generated_bodies(void **state)
{
	struct fixture *f = *state;
	const struct ingest_limits tiny = { .max_records = 3, .max_payload = 64 };
	struct ingest_buf buf = { 0 };
	struct ingest_fast_result fr;
	char body[8192], mutant[8192];
	uint64_t st = DIFF_SEED;
	size_t i, k, len, mlen, decided = 0;

	for (i = 0; i < DIFF_VALID_BODIES; i++) {
		len = gen_body(&st, body, sizeof(body));
		if (ingest_fast_parse(body, len, &default_limits, &buf, &fr) != INGEST_FAST_UNSURE)
			decided++;
		assert_same_as_reference(f, body, len, &default_limits);
		assert_same_as_reference(f, body, len, &tiny);
		for (k = 0; k < DIFF_MUTANTS_PER_BODY; k++) {
			memcpy(mutant, body, len);
			mlen = mutate(&st, mutant, len, sizeof(mutant));
			assert_same_as_reference(f, mutant, mlen, &default_limits);
			assert_same_as_reference(f, mutant, mlen, &tiny);
		}
	}
	free(buf.data);
	/* The generator must exercise the fast path, not only the fallback. */
	assert_true(decided > DIFF_VALID_BODIES / 4);
	assert_true(decided < DIFF_VALID_BODIES);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_valid_request_packs_records_in_order),
		T(test_empty_records_is_valid_with_no_payload),
		T(test_unknown_fields_are_ignored),
		T(test_duplicate_keys_last_wins),
		T(test_document_shape_errors),
		T(test_timestamp_must_be_int64_integer),
		T(test_timestamp_int64_boundaries_accepted),
		T(test_name_errors),
		T(test_name_after_c1_is_valid),
		T(test_lenient_numbers_are_not_json),
		T(test_name_length_limit_is_rec_name_max_bytes),
		T(test_invalid_utf8_name),
		T(test_value_must_be_a_number),
		T(test_value_integer_outside_int64_rejected),
		T(test_value_int64_boundaries_exact),
		T(test_int64_min_told_apart_from_clamped_literal),
		T(test_doubles_are_bit_exact),
		T(test_record_fields_checked_in_order),
		T(test_invalid_json_beats_schema_error),
		T(test_schema_error_beats_too_many_records),
		T(test_too_many_records_beats_payload_size),
		T(test_limits_are_inclusive),
		T(test_trailing_garbage_rejected),
		T(test_truncated_body_rejected),
		T(test_nan_and_infinity_rejected_as_invalid_json),
		T(test_deep_nesting_rejected_without_crash),
		T(test_long_data_source_copied_nul_terminated),
		T(test_many_records_grow_payload),
		T(test_parser_reuse_alternating_valid_invalid),
		T(test_fast_path_decides_common_bodies_and_defers_odd_ones),
		T(test_key_order_is_free),
		T(test_extra_keys_skipped_anywhere),
		T(test_escapes_answered_by_fallback),
		T(test_integer_edges_through_fast_path),
		T(test_doubles_through_fast_path_match_strtod),
		T(test_all_valid_body_over_limits_is_413),
		T(test_one_bad_record_makes_big_body_422_not_413),
		T(test_fast_path_agrees_with_reference_on_generated_bodies),
		T(test_generated_doubles_match_strtod),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
