/*
 * test_ingest.c - the ingest body validator (src/ingest.c) against SPEC section 3,
 * checks 5-7: JSON validity (400), schema texts with indexes (422), limits (413),
 * exact integer/double handling, and the packed payload read back with rec_decode.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "temporis/ingest.h"
#include "temporis/record.h"

#define BODY_MAX (1 << 20)
#define DEFAULT_MAX_RECORDS 100000
#define DEFAULT_MAX_PAYLOAD (16u << 20)
#define DEEP_NESTING 10000
#define REUSE_ROUNDS 10000
#define GOOD_RECORD "{\"timestamp\":1718841600,\"name\":\"orders\",\"value\":42}"
#define BAD_JSON "Request body is not valid JSON."
#define RANGE_AT3 "records[3].value must be an integer within the 64-bit range."
#define NUMBER_AT3 "records[3].value must be a number."
#define TS_AT3 "records[3].timestamp must be an integer."
#define NAME_AT3 "records[3].name must be a non-empty string of at most 256 bytes " \
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
	};
	char rec[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(rec, sizeof(rec), "{\"timestamp\":1,\"name\":%s,\"value\":1}", bad[i]);
		expect_at3(f, rec, 422, NAME_AT3);
	}
	expect_at3(f, "{\"timestamp\":1,\"value\":1}", 422, NAME_AT3);
}

static void test_name_length_limit_is_256_bytes(void **state)
{
	struct fixture *f = *state;
	char name[REC_NAME_MAX + 2], rec[1024];
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

	/* The limit counts bytes, not characters: 128 two-byte characters fit. */
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
		      "\"tag\":-0000009223372036854775809e0,\"value\":-9223372036854775808,"
		      "\"t\":1E-99999999999999999999}]}", 0, NULL);
	assert_int_equal(decoded(f, 0).ts, INT64_MIN);
	assert_int_equal(decoded(f, 0).v.i, INT64_MIN);
	assert_memory_equal(decoded(f, 0).name, "-99999999999999999999\"", 22);
	/* Leading zeros (a json-c leniency) do not make an exact value out of range. */
	assert_int_equal(single_int_value(f, "-09223372036854775808"), INT64_MIN);
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
		T(test_name_length_limit_is_256_bytes),
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
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
