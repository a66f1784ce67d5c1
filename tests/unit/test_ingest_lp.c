/*
 * test_ingest_lp.c - the InfluxDB line-protocol parser (src/data/ingest_lp.c): every
 * syntax feature, each error with its exact detail and line number, the series names
 * it builds (tags sorted, values escaped), precisions, limits (413), and one parser
 * reused across many bodies. The payload is always read back with rec_decode.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "temporis/data/ingest_lp.h"
#include "temporis/data/record.h"
#include "temporis/data/series_name.h"

#define DEFAULT_MAX_RECORDS 100000
#define DEFAULT_MAX_PAYLOAD (16u << 20)
#define NOW_S 1718841600
#define NS_PER_S 1000000000ll
#define REUSE_ROUNDS 10000
#define WARM_ROUNDS 10
#define BIG_LINES 100000
#define BIG_TAGS 10
#define BIG_LINE_MAX 256
#define MANY_TAGS 20
#define WIDE_TAGS 50
#define WIDE_VALUE_LEN 40
#define LONG_LINE_X 100
#define TEXT_MAX 1024
#define TOO_MANY "Too many records in one request."
#define TOO_LARGE "Request body too large."
#define BAD_NAME "series name is not valid UTF-8 without control characters"

static const struct ingest_limits default_limits = {
	.max_records = DEFAULT_MAX_RECORDS,
	.max_payload = DEFAULT_MAX_PAYLOAD,
};

struct fixture {
	struct ingest_lp *p;
	struct ingest_result r;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	f->p = ingest_lp_new();
	if (f->p == NULL)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	ingest_lp_free(f->p);
	free(f);
	return 0;
}

/* The body is handed over in an exact-size heap copy, so ASan catches any overread. */
static int parse_full(struct fixture *f, const char *body, size_t len, enum lp_precision prec,
		      const struct ingest_limits *lim)
{
	char *copy = malloc(len > 0 ? len : 1);
	int rc;

	assert_non_null(copy);
	memcpy(copy, body, len);
	rc = ingest_lp_parse(f->p, copy, len, prec, NOW_S, lim, &f->r);
	free(copy);
	assert_int_equal(rc, f->r.status);
	return rc;
}

static int parse_prec(struct fixture *f, const char *body, enum lp_precision prec)
{
	return parse_full(f, body, strlen(body), prec, &default_limits);
}

static int parse(struct fixture *f, const char *body)
{
	return parse_prec(f, body, LP_NS);
}

static void expect_valid(struct fixture *f, const char *body, uint32_t nrecords)
{
	assert_int_equal(parse(f, body), 0);
	assert_null(f->r.data_source);
	assert_int_equal(f->r.data_source_len, 0);
	assert_int_equal(f->r.nrecords, nrecords);
}

/* The whole detail, and no payload. */
static void expect_error(struct fixture *f, const char *body, int status, const char *detail)
{
	assert_int_equal(parse(f, body), status);
	assert_string_equal(f->r.detail, detail);
	assert_true(strlen(f->r.detail) < INGEST_DETAIL_MAX);
	assert_null(f->r.payload);
	assert_int_equal(f->r.payload_len, 0);
	assert_int_equal(f->r.nrecords, 0);
}

/* A one-line body's 400: "line 1: unable to parse 'BODY': reason". */
static void expect_bad_line(struct fixture *f, const char *line, const char *reason)
{
	char detail[2 * TEXT_MAX];

	snprintf(detail, sizeof(detail), "line 1: unable to parse '%s': %s", line, reason);
	expect_error(f, line, 400, detail);
}

/* Record idx of the last valid result; every record before it must decode too. */
static struct rec decoded(struct fixture *f, uint32_t idx)
{
	const uint8_t *p = f->r.payload, *end = f->r.payload + f->r.payload_len;
	struct rec r;

	memset(&r, 0, sizeof(r));
	assert_true(idx < f->r.nrecords);
	for (uint32_t i = 0; i <= idx; i++) {
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

	memset(&r, 0, sizeof(r));
	while (p != end) {
		p = rec_decode(p, end, &r);
		assert_non_null(p);
		assert_true(series_name_ok(r.name, r.name_len));
		n++;
	}
	assert_int_equal(n, f->r.nrecords);
}

static void assert_name(const struct rec *r, const char *name)
{
	assert_int_equal(r->name_len, strlen(name));
	assert_memory_equal(r->name, name, r->name_len);
}

/* The single record of a one-field body. */
static struct rec only_record(struct fixture *f, const char *body)
{
	expect_valid(f, body, 1);
	return decoded(f, 0);
}

static double only_double(struct fixture *f, const char *body)
{
	struct rec r = only_record(f, body);

	assert_int_equal(r.type, REC_DOUBLE);
	return r.v.d;
}

static int64_t only_int(struct fixture *f, const char *body)
{
	struct rec r = only_record(f, body);

	assert_int_equal(r.type, REC_INT);
	return r.v.i;
}

static int64_t only_ts(struct fixture *f, const char *body, enum lp_precision prec)
{
	assert_int_equal(parse_prec(f, body, prec), 0);
	assert_int_equal(f->r.nrecords, 1);
	return decoded(f, 0).ts;
}

static void test_simple_line_is_one_double_record(void **state)
{
	struct fixture *f = *state;
	struct rec r;

	expect_valid(f, "cpu value=1.5 1718841600000000000\n", 1);
	assert_int_equal(f->r.payload_len, REC_WIRE_FIXED + strlen("cpu_value"));
	r = decoded(f, 0);
	assert_name(&r, "cpu_value");
	assert_int_equal(r.type, REC_DOUBLE);
	assert_true(r.v.d == 1.5);
	assert_int_equal(r.ts, 1718841600);
}

static void test_each_numeric_field_is_a_record_named_with_sorted_tags(void **state)
{
	struct fixture *f = *state;
	struct rec r;

	expect_valid(f, "cpu,region=eu,host=a usage=1i,idle=2.5,note=\"x\" 1000000000\n"
		     "mem free=3u\n", 3);
	r = decoded(f, 0);
	assert_name(&r, "cpu_usage{host=\"a\",region=\"eu\"}");
	assert_int_equal(r.type, REC_INT);
	assert_int_equal(r.v.i, 1);
	assert_int_equal(r.ts, 1);
	r = decoded(f, 1);
	assert_name(&r, "cpu_idle{host=\"a\",region=\"eu\"}");
	assert_int_equal(r.type, REC_DOUBLE);
	assert_true(r.v.d == 2.5);
	assert_int_equal(r.ts, 1);
	r = decoded(f, 2);
	assert_name(&r, "mem_free");
	assert_int_equal(r.v.i, 3);
	assert_int_equal(r.ts, NOW_S);
	assert_all_decode(f);
}

static void test_tag_order_does_not_change_the_series(void **state)
{
	struct fixture *f = *state;
	struct rec r;

	r = only_record(f, "cpu,b=2,a=1 v=1");
	assert_name(&r, "cpu_v{a=\"1\",b=\"2\"}");
	r = only_record(f, "cpu,a=1,b=2 v=1");
	assert_name(&r, "cpu_v{a=\"1\",b=\"2\"}");
	r = only_record(f, "cpu,zz=1,a=2,m=3,b=4 v=1");
	assert_name(&r, "cpu_v{a=\"2\",b=\"4\",m=\"3\",zz=\"1\"}");
}

static void test_measurement_escapes(void **state)
{
	struct fixture *f = *state;
	struct rec r;

	r = only_record(f, "my\\ meas\\,x v=1");
	assert_name(&r, "my meas,x_v");
	/* A backslash before a byte that needs no escape stays. */
	r = only_record(f, "a\\b v=1");
	assert_name(&r, "a\\b_v");
	r = only_record(f, "a\\= v=1");
	assert_name(&r, "a\\=_v");
	/* "\\" is one backslash, so a name can end in one. */
	r = only_record(f, "a\\\\b v=1");
	assert_name(&r, "a\\b_v");
	r = only_record(f, "a\\\\ v=1");
	assert_name(&r, "a\\_v");
	r = only_record(f, "a\\,b,t=1 v=1");
	assert_name(&r, "a,b_v{t=\"1\"}");
	r = only_record(f, "=m v=1");
	assert_name(&r, "=m_v");
}

static void test_tag_and_field_key_escapes(void **state)
{
	struct fixture *f = *state;
	struct rec r;

	r = only_record(f, "m,k\\ 1=v\\,1\\=x f\\=k\\ 2\\,=1");
	assert_name(&r, "m_f=k 2,{k 1=\"v,1=x\"}");
	r = only_record(f, "m,p=a\\b f\\x=1");
	assert_name(&r, "m_f\\x{p=\"a\\\\b\"}");
	/* Quotes are plain bytes in keys and tag values. */
	r = only_record(f, "m,\"k\"=\"v\" \"f\"=1");
	assert_name(&r, "m_\"f\"{\"k\"=\"\\\"v\\\"\"}");
}

/* The built name escapes '"' and '\' in tag values as Prometheus does. */
static void test_tag_values_escaped_in_the_name(void **state)
{
	struct fixture *f = *state;
	struct rec r;

	r = only_record(f, "m,q=say\"hi\" v=1");
	assert_name(&r, "m_v{q=\"say\\\"hi\\\"\"}");
	r = only_record(f, "m,p=C:\\\\dir v=1");
	assert_name(&r, "m_v{p=\"C:\\\\dir\"}");
	r = only_record(f, "m,p=C:\\\\ v=1");
	assert_name(&r, "m_v{p=\"C:\\\\\"}");
	r = only_record(f, "m,p=a\\ b\\,c v=1");
	assert_name(&r, "m_v{p=\"a b,c\"}");
}

static void test_floats_in_influx_syntax(void **state)
{
	struct fixture *f = *state;

	assert_true(only_double(f, "m v=1") == 1.0);
	assert_true(only_double(f, "m v=1.5") == 1.5);
	assert_true(only_double(f, "m v=-1e3") == -1000.0);
	assert_true(only_double(f, "m v=1.") == 1.0);
	assert_true(only_double(f, "m v=.5") == 0.5);
	assert_true(only_double(f, "m v=-.5") == -0.5);
	assert_true(only_double(f, "m v=1e5") == 1e5);
	assert_true(only_double(f, "m v=-0.5") == -0.5);
	assert_true(only_double(f, "m v=1E+2") == 100.0);
	assert_true(only_double(f, "m v=25e-2") == 0.25);
	assert_true(only_double(f, "m v=007") == 7.0);
	assert_true(only_double(f, "m v=0.1") == 0.1);
	assert_true(only_double(f, "m v=1.7976931348623157e308") == 1.7976931348623157e308);
	assert_true(only_double(f, "m v=123456789012345678901234567890") == 123456789012345678901234567890.0);
	assert_true(only_double(f, "m v=0.1000000000000000055511151231257827021181583404541015625"
				   "00000000000000000000") == 0.1);
	/* Underflow rounds to zero, as in InfluxDB; overflow is refused (below). */
	assert_true(only_double(f, "m v=1e-400") == 0.0);
}

static void test_integers_unsigned_and_booleans(void **state)
{
	struct fixture *f = *state;
	static const char *const truths[] = { "t", "T", "true", "True", "TRUE" };
	static const char *const falsehoods[] = { "f", "F", "false", "False", "FALSE" };
	char body[TEXT_MAX];

	assert_int_equal(only_int(f, "m v=42i"), 42);
	assert_int_equal(only_int(f, "m v=-0i"), 0);
	assert_int_equal(only_int(f, "m v=9223372036854775807i"), INT64_MAX);
	assert_int_equal(only_int(f, "m v=-9223372036854775808i"), INT64_MIN);
	assert_int_equal(only_int(f, "m v=0u"), 0);
	assert_int_equal(only_int(f, "m v=9223372036854775807u"), INT64_MAX);
	for (size_t i = 0; i < sizeof(truths) / sizeof(truths[0]); i++) {
		snprintf(body, sizeof(body), "m v=%s", truths[i]);
		assert_int_equal(only_int(f, body), 1);
		snprintf(body, sizeof(body), "m v=%s", falsehoods[i]);
		assert_int_equal(only_int(f, body), 0);
	}
}

static void test_string_fields_are_skipped(void **state)
{
	struct fixture *f = *state;
	struct rec r;

	r = only_record(f, "m s=\"a b,c=d e\",v=1,t=\"\"");
	assert_name(&r, "m_v");
	/* A line of strings only is valid and adds nothing. */
	expect_valid(f, "m s=\"only\"\nm a=\"x\",b=\"y\" 5\n", 0);
	assert_int_equal(f->r.payload_len, 0);
	/* A string's backslash escapes only '"' and '\'. */
	r = only_record(f, "m s=\"x\\\\\",v=1");
	assert_name(&r, "m_v");
	r = only_record(f, "m s=\"a\\nb\\\"c\",v=2");
	assert_true(r.v.d == 2.0);
}

static void test_quoted_string_may_span_lines(void **state)
{
	struct fixture *f = *state;
	const char *body = "m s=\"line1\nline2 \\\"q\\\" \\\\\",v=2 5000000000\nm v=3\n";
	struct rec r;

	expect_valid(f, body, 2);
	r = decoded(f, 0);
	assert_name(&r, "m_v");
	assert_true(r.v.d == 2.0);
	assert_int_equal(r.ts, 5);
	r = decoded(f, 1);
	assert_true(r.v.d == 3.0);
	assert_int_equal(r.ts, NOW_S);
	/* Line numbers count every '\n', those inside strings too. */
	expect_error(f, "m s=\"a\nb\nc\",v=1\nm v=\n", 400,
		     "line 4: unable to parse 'm v=': missing field value");
}

static void test_crlf_comments_and_blank_lines(void **state)
{
	struct fixture *f = *state;
	struct rec r;

	expect_valid(f, "# comment\r\n\r\n  \t \r\ncpu v=1 1000000000\r\n  # cpu v=9\n"
		     "cpu v=2\r\ncpu v=3 3000000000\r", 3);
	r = decoded(f, 0);
	assert_true(r.v.d == 1.0);
	assert_int_equal(r.ts, 1);
	r = decoded(f, 1);
	assert_true(r.v.d == 2.0);
	assert_int_equal(r.ts, NOW_S);
	r = decoded(f, 2);
	assert_int_equal(r.ts, 3);
	/* Blanks around the sections, a tab before the timestamp, no final newline. */
	expect_valid(f, "   cpu  v=1i,w=t   7000000000  \ncpu v=1\t8000000000", 3);
	assert_int_equal(decoded(f, 0).ts, 7);
	assert_int_equal(decoded(f, 2).ts, 8);
	/* A '\r' elsewhere is a plain byte. */
	expect_error(f, "cpu v=1\rx", 400, "line 1: unable to parse 'cpu v=1?x': invalid number");
}

static void test_empty_bodies_are_valid(void **state)
{
	struct fixture *f = *state;
	struct ingest_result r;

	expect_valid(f, "", 0);
	expect_valid(f, "\n\n\r\n", 0);
	expect_valid(f, "# only a comment", 0);
	expect_valid(f, "#\n# cpu v=\n", 0);
	assert_int_equal(ingest_lp_parse(f->p, NULL, 0, LP_NS, NOW_S, &default_limits, &r), 0);
	assert_int_equal(r.nrecords, 0);
}

static void test_precision_parse(void **state)
{
	static const struct {
		const char *text;
		enum lp_precision prec;
	} good[] = {
		{ "ns", LP_NS }, { "n", LP_NS }, { "", LP_NS }, { "u", LP_US }, { "us", LP_US },
		{ "\xc2\xb5", LP_US }, { "ms", LP_MS }, { "s", LP_S }, { "m", LP_M }, { "h", LP_H },
	};
	static const char *const bad[] = { "x", "NS", "sec", "mss", "S", " s", "s ", "\xce\xbc" };
	enum lp_precision p;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		p = LP_H;
		assert_int_equal(lp_precision_parse(good[i].text, &p), 0);
		assert_int_equal(p, good[i].prec);
	}
	p = LP_H;
	assert_int_equal(lp_precision_parse(NULL, &p), 0);
	assert_int_equal(p, LP_NS);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p = LP_M;
		assert_int_equal(lp_precision_parse(bad[i], &p), -1);
		assert_int_equal(p, LP_M);
	}
}

static void test_timestamps_floor_to_seconds_in_each_precision(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(only_ts(f, "m v=1 1999999999", LP_NS), 1);
	assert_int_equal(only_ts(f, "m v=1 -1", LP_NS), -1);
	assert_int_equal(only_ts(f, "m v=1 -1000000000", LP_NS), -1);
	assert_int_equal(only_ts(f, "m v=1 -1000000001", LP_NS), -2);
	assert_int_equal(only_ts(f, "m v=1 0", LP_NS), 0);
	assert_int_equal(only_ts(f, "m v=1 9223372036854775807", LP_NS), 9223372036);
	assert_int_equal(only_ts(f, "m v=1 -9223372036854775808", LP_NS), -9223372037);
	assert_int_equal(only_ts(f, "m v=1 1500000", LP_US), 1);
	assert_int_equal(only_ts(f, "m v=1 -1", LP_US), -1);
	assert_int_equal(only_ts(f, "m v=1 2999", LP_MS), 2);
	assert_int_equal(only_ts(f, "m v=1 -1", LP_MS), -1);
	assert_int_equal(only_ts(f, "m v=1 -5", LP_S), -5);
	assert_int_equal(only_ts(f, "m v=1 1718841600", LP_S), 1718841600);
	assert_int_equal(only_ts(f, "m v=1 2", LP_M), 120);
	assert_int_equal(only_ts(f, "m v=1 -1", LP_H), -3600);
	assert_int_equal(only_ts(f, "m v=1 153722867280912930", LP_M), 9223372036854775800);
	/* No timestamp: the server's time, already in seconds, whatever the precision. */
	assert_int_equal(only_ts(f, "m v=1", LP_H), NOW_S);
	assert_int_equal(only_ts(f, "m v=1 ", LP_MS), NOW_S);
}

static void test_sub_second_points_collapse_in_order(void **state)
{
	struct fixture *f = *state;

	expect_valid(f, "m v=1 1000000001\nm v=2 1999999999\n", 2);
	assert_int_equal(decoded(f, 0).ts, 1);
	assert_int_equal(decoded(f, 1).ts, 1);
	/* Packed in order: the writer makes the later line win. */
	assert_true(decoded(f, 1).v.d == 2.0);
}

static void test_timestamp_errors(void **state)
{
	struct fixture *f = *state;

	expect_bad_line(f, "m v=1 12a", "bad timestamp");
	expect_bad_line(f, "m v=1 1.5", "bad timestamp");
	expect_bad_line(f, "m v=1 1 2", "bad timestamp");
	expect_bad_line(f, "m v=1 +1", "bad timestamp");
	expect_bad_line(f, "m v=1 -", "bad timestamp");
	expect_bad_line(f, "m v=1 1,", "bad timestamp");
	expect_bad_line(f, "m v=1 9223372036854775808", "timestamp out of range");
	expect_bad_line(f, "m v=1 -9223372036854775809", "timestamp out of range");
	expect_bad_line(f, "m v=1 99999999999999999999999", "timestamp out of range");
	assert_int_equal(parse_prec(f, "m v=1 153722867280912931", LP_M), 400);
	assert_string_equal(f->r.detail, "line 1: unable to parse 'm v=1 153722867280912931': "
			    "timestamp out of range");
	assert_int_equal(parse_prec(f, "m v=1 -2562047788015216", LP_H), 400);
	assert_string_equal(f->r.detail, "line 1: unable to parse 'm v=1 -2562047788015216': "
			    "timestamp out of range");
}

static void test_syntax_errors_name_the_reason(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *line, *reason;
	} cases[] = {
		{ "cpu", "missing fields" },
		{ "cpu,host=a", "missing fields" },
		{ "cpu ", "missing fields" },
		{ "cpu,host=a  ", "missing fields" },
		{ ",host=a v=1", "missing measurement" },
		{ "cpu,=a v=1", "missing tag key" },
		{ "cpu, v=1", "missing tag key" },
		{ "cpu,host v=1", "missing tag value" },
		{ "cpu,host,a=b v=1", "missing tag value" },
		{ "cpu,host= v=1", "missing tag value" },
		{ "cpu,host=,a=b v=1", "missing tag value" },
		{ "cpu,host=a=b v=1", "invalid tag format" },
		{ "cpu,host==b v=1", "invalid tag format" },
		{ "cpu,a=1,b=2,a=3 v=1", "duplicate tags" },
		{ "cpu =1", "missing field key" },
		{ "cpu v=1,=2", "missing field key" },
		{ "cpu v=1,", "missing field key" },
		{ "cpu v", "invalid field format" },
		{ "cpu v=1,w", "invalid field format" },
		{ "cpu v=\"a\"x", "invalid field format" },
		{ "cpu v=", "missing field value" },
		{ "cpu v=,w=1", "missing field value" },
		{ "cpu v= 1", "missing field value" },
		{ "cpu v=\"abc", "unbalanced quotes" },
		{ "cpu v=\"a\\\"", "unbalanced quotes" },
		{ "cpu v=tru", "invalid boolean" },
		{ "cpu v=truE", "invalid boolean" },
		{ "cpu v=t1", "invalid boolean" },
		{ "cpu v=9223372036854775808i", "integer value out of the int64 range" },
		{ "cpu v=-9223372036854775809i", "integer value out of the int64 range" },
		{ "cpu v=9223372036854775808u",
		  "unsigned value above 9223372036854775807 cannot be stored" },
		{ "cpu v=18446744073709551616u",
		  "unsigned value above 9223372036854775807 cannot be stored" },
		{ "cpu v=1e400", "float value out of range" },
		{ "cpu v=-1e400", "float value out of range" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_bad_line(f, cases[i].line, cases[i].reason);
}

/* strtod would take most of these; line protocol does not. */
static void test_numbers_outside_influx_syntax_are_invalid(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[] = {
		"inf", "-inf", "Infinity", "nan", "NaN", "0x10", "0x1p3", "1.5.5", "1e", "1e+",
		"--1", "+1", "-", ".", "-.", "e5", "1i5", "1.5i", "1e5i", "-1u", "1.0u", "1_000",
		"abc", "1ii", "1iu", "i", "u", "-i",
	};
	char line[TEXT_MAX];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(line, sizeof(line), "cpu v=%s", bad[i]);
		assert_int_equal(parse(f, line), 400);
		assert_non_null(strstr(f->r.detail, "invalid number"));
		assert_null(f->r.payload);
	}
	/* A NUL byte is a byte like any other: here, not a digit. */
	assert_int_equal(parse_full(f, "cpu v=1\0", strlen("cpu v=1") + 1, LP_NS, &default_limits),
			 400);
	assert_string_equal(f->r.detail, "line 1: unable to parse 'cpu v=1?': invalid number");
}

static void test_first_bad_line_is_reported_with_its_number(void **state)
{
	struct fixture *f = *state;

	expect_error(f, "cpu v=1\ncpu v=2\ncpu,host=a value=\ncpu v=\n", 400,
		     "line 3: unable to parse 'cpu,host=a value=': missing field value");
	/* Comments, blank lines and CRLF count as lines. */
	expect_error(f, "# c\r\n\r\nm v=1\r\nm v=x\r\n", 400,
		     "line 4: unable to parse 'm v=x': invalid number");
	/* Only the line is quoted, from its first non-blank byte, without its "\r\n". */
	expect_error(f, "m v=1\n  \tm v=1 x\r\nm v=2\n", 400,
		     "line 2: unable to parse 'm v=1 x': bad timestamp");
}

static void test_error_quote_is_cut_and_sanitised(void **state)
{
	struct fixture *f = *state;
	char body[TEXT_MAX], detail[TEXT_MAX], x[LONG_LINE_X + 1];

	memset(x, 'x', LONG_LINE_X);
	x[LONG_LINE_X] = '\0';
	snprintf(body, sizeof(body), "m,t=%s v=", x);
	snprintf(detail, sizeof(detail), "line 1: unable to parse '%.*s...': missing field value",
		 LP_DETAIL_LINE_MAX, body);
	expect_error(f, body, 400, detail);
	/* Exactly LP_DETAIL_LINE_MAX bytes are quoted whole. */
	snprintf(body, sizeof(body), "m v=%.*s", LP_DETAIL_LINE_MAX - (int)strlen("m v="), x);
	expect_bad_line(f, body, "invalid number");
	expect_error(f, "m\x01,t=\xc3\xa9\x7f v=", 400,
		     "line 1: unable to parse 'm?,t=??? v=': missing field value");
	/* A long detail (a cut line, a line number, a long reason) still fits. */
	memset(body, '\n', sizeof(body));
	snprintf(body + sizeof(body) - sizeof(x) - sizeof(" v=1e999"),
		 sizeof(x) + sizeof(" v=1e999"), "%s v=1e999", x);
	assert_int_equal(parse(f, body), 400);
	assert_int_equal(strncmp(f->r.detail, "line 915: ", strlen("line 915: ")), 0);
	assert_true(strlen(f->r.detail) < INGEST_DETAIL_MAX);
	assert_non_null(strstr(f->r.detail, "...': float value out of range"));
}

static void test_name_longer_than_rec_name_max_is_refused(void **state)
{
	struct fixture *f = *state;
	char body[REC_NAME_MAX + TEXT_MAX], detail[TEXT_MAX], m[REC_NAME_MAX + 1];

	/* measurement + "_v" is exactly REC_NAME_MAX bytes: fits. */
	memset(m, 'a', REC_NAME_MAX);
	m[REC_NAME_MAX - 2] = '\0';
	snprintf(body, sizeof(body), "%s v=1", m);
	expect_valid(f, body, 1);
	assert_int_equal(decoded(f, 0).name_len, REC_NAME_MAX);
	/* One byte more is refused, with the name's length. */
	m[REC_NAME_MAX - 2] = 'a';
	m[REC_NAME_MAX - 1] = '\0';
	snprintf(body, sizeof(body), "%s v=1", m);
	snprintf(detail, sizeof(detail), "line 1: unable to parse '%.*s...': series name of %d bytes"
		 " is longer than %d bytes", LP_DETAIL_LINE_MAX, body, REC_NAME_MAX + 1, REC_NAME_MAX);
	expect_error(f, body, 400, detail);
	/* Through the tags too, a '"' counted as the name writes it (\"). */
	m[0] = '"';
	m[REC_NAME_MAX - 9] = '\0';
	snprintf(body, sizeof(body), "m,t=%s v=1", m);
	assert_int_equal(parse(f, body), 400);
	snprintf(detail, sizeof(detail), "series name of %d bytes is longer than %d bytes",
		 REC_NAME_MAX - 9 + 1 + (int)strlen("m_v{t=\"\"}"), REC_NAME_MAX);
	assert_non_null(strstr(f->r.detail, detail));
	/* A string field has no series: its long name is no error. */
	memset(m, 'a', REC_NAME_MAX);
	m[REC_NAME_MAX] = '\0';
	snprintf(body, sizeof(body), "%s s=\"x\"", m);
	expect_valid(f, body, 0);
}

static void test_name_must_be_utf8_without_controls(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[] = {
		"\xff v=1", "m\xc3 v=1", "m,t=\xc0\x80 v=1", "m,t=a\tb v=1", "m f\xc2\x85=1",
		"m,t=\xed\xa0\x80 v=1", "m\x7f v=1", "m,t=\x01 v=1", "\xf4\x90\x80\x80 v=1",
		/* A backslash does not make the byte after it any more valid (fuzzer find). */
		"m f\\\x9f=1", "m,t=\\\x01 v=1", "m\\\xff v=1", "m,\\\xc2\x85=a v=1",
	};
	char detail[TEXT_MAX];
	struct rec r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(f, bad[i]), 400);
		snprintf(detail, sizeof(detail), "': %s", BAD_NAME);
		assert_non_null(strstr(f->r.detail, detail));
		assert_int_equal(strncmp(f->r.detail, "line 1: ", strlen("line 1: ")), 0);
	}
	r = only_record(f, "temp\xc3\xa9,lieu=\xe2\x82\xac v\xf0\x9f\x98\x80=1");
	assert_name(&r, "temp\xc3\xa9_v\xf0\x9f\x98\x80{lieu=\"\xe2\x82\xac\"}");
	/* No numeric field, no name to check. */
	expect_valid(f, "\xff s=\"x\"", 0);
}

static void test_limits_are_413_and_inclusive(void **state)
{
	struct fixture *f = *state;
	const char *body = "m a=1,b=2\nm c=3\n";
	const size_t payload = 3 * (REC_WIRE_FIXED + strlen("m_a"));
	struct ingest_limits lim = { .max_records = 3, .max_payload = payload };

	assert_int_equal(parse_full(f, body, strlen(body), LP_NS, &lim), 0);
	assert_int_equal(f->r.nrecords, 3);
	assert_int_equal(f->r.payload_len, payload);
	assert_all_decode(f);
	lim.max_records = 2;
	assert_int_equal(parse_full(f, body, strlen(body), LP_NS, &lim), 413);
	assert_string_equal(f->r.detail, TOO_MANY);
	assert_null(f->r.payload);
	lim.max_records = 3;
	lim.max_payload = payload - 1;
	assert_int_equal(parse_full(f, body, strlen(body), LP_NS, &lim), 413);
	assert_string_equal(f->r.detail, TOO_LARGE);
	assert_int_equal(f->r.payload_len, 0);
	/* Both exceeded: the count is named, as for JSON bodies. */
	lim.max_records = 1;
	assert_int_equal(parse_full(f, body, strlen(body), LP_NS, &lim), 413);
	assert_string_equal(f->r.detail, TOO_MANY);
	/* A bad line anywhere beats the limits. */
	body = "m a=1,b=2\nm c=3\nm d=\n";
	assert_int_equal(parse_full(f, body, strlen(body), LP_NS, &lim), 400);
	assert_string_equal(f->r.detail, "line 3: unable to parse 'm d=': missing field value");
}

static void test_many_tags_and_escaped_tags_grow_the_buffers(void **state)
{
	struct fixture *f = *state;
	char body[TEXT_MAX * 4], name[TEXT_MAX];
	size_t off = 0, noff = 0;
	struct rec r;

	/* More tags than the first capacity, given in reverse order. */
	off += (size_t)snprintf(body + off, sizeof(body) - off, "m");
	for (int i = MANY_TAGS - 1; i >= 0; i--)
		off += (size_t)snprintf(body + off, sizeof(body) - off, ",k%02d=%d", i, i);
	snprintf(body + off, sizeof(body) - off, " v=1\n");
	noff += (size_t)snprintf(name, sizeof(name), "m_v");
	for (int i = 0; i < MANY_TAGS; i++)
		noff += (size_t)snprintf(name + noff, sizeof(name) - noff, "%sk%02d=\"%d\"",
					 i ? "," : "{", i, i);
	snprintf(name + noff, sizeof(name) - noff, "}");
	r = only_record(f, body);
	assert_name(&r, name);
	/* Escaped values far past the scratch buffer's first capacity (a string-only line). */
	off = (size_t)snprintf(body, sizeof(body), "m");
	for (int i = 0; i < WIDE_TAGS; i++) {
		off += (size_t)snprintf(body + off, sizeof(body) - off, ",k%02d=", i);
		for (int j = 0; j < WIDE_VALUE_LEN / 2; j++)
			off += (size_t)snprintf(body + off, sizeof(body) - off, "\\ ");
	}
	off += (size_t)snprintf(body + off, sizeof(body) - off, " s=\"x\"\nm,a=\\,,b=\\= v=1\n");
	assert_true(off < sizeof(body) - 1);
	expect_valid(f, body, 1);
	r = decoded(f, 0);
	assert_name(&r, "m_v{a=\",\",b=\"=\"}");
}

static void test_parser_reuse_keeps_memory_flat(void **state)
{
	struct fixture *f = *state;
	const char *valid = "cpu,host=a,dc=x usage=1i,idle=2.5 1000000000\nmem,host=\\ b free=3u\n";
	const char *invalid = "cpu,host=a usage=1i\ncpu,host=a idle=\n";
	size_t vlen = strlen(valid), ilen = strlen(invalid);
	char *vcopy = malloc(vlen), *icopy = malloc(ilen);
	const uint8_t *payload = NULL;
	size_t in_use = 0;

	assert_non_null(vcopy);
	assert_non_null(icopy);
	memcpy(vcopy, valid, vlen);
	memcpy(icopy, invalid, ilen);
	for (int i = 0; i < REUSE_ROUNDS + WARM_ROUNDS; i++) {
		if (i == WARM_ROUNDS)
			in_use = mallinfo2().uordblks;
		assert_int_equal(ingest_lp_parse(f->p, vcopy, vlen, LP_NS, NOW_S, &default_limits,
						 &f->r), 0);
		assert_int_equal(f->r.nrecords, 3);
		assert_int_equal(decoded(f, 0).ts, 1);
		assert_int_equal(decoded(f, 2).v.i, 3);
		if (i >= WARM_ROUNDS)
			assert_ptr_equal(f->r.payload, payload);
		payload = f->r.payload;
		assert_int_equal(ingest_lp_parse(f->p, icopy, ilen, LP_NS, NOW_S, &default_limits,
						 &f->r), 400);
		assert_string_equal(f->r.detail,
				    "line 2: unable to parse 'cpu,host=a idle=': missing field value");
	}
	/* Warm buffers are reused: the heap holds exactly what it held after warming up. */
	assert_int_equal(mallinfo2().uordblks, in_use);
	free(vcopy);
	free(icopy);
}

/* The largest body a request carries: 100k lines of 10 tags each (no timing asserted). */
static void test_big_body_of_many_tagged_lines(void **state)
{
	struct fixture *f = *state;
	size_t cap = (size_t)BIG_LINES * BIG_LINE_MAX, off = 0;
	char *body = malloc(cap), name[BIG_LINE_MAX];
	struct rec r;

	assert_non_null(body);
	for (int i = 0; i < BIG_LINES; i++) {
		off += (size_t)snprintf(body + off, cap - off, "cpu");
		for (int t = BIG_TAGS - 1; t >= 0; t--)
			off += (size_t)snprintf(body + off, cap - off, ",t%d=v%d", t, (i + t) % 97);
		off += (size_t)snprintf(body + off, cap - off, " usage=%d.5 %d000000000\n", i, i);
	}
	assert_int_equal(parse_full(f, body, off, LP_NS, &default_limits), 0);
	assert_int_equal(f->r.nrecords, BIG_LINES);
	r = decoded(f, BIG_LINES - 1);
	assert_int_equal(r.ts, BIG_LINES - 1);
	assert_true(r.v.d == BIG_LINES - 1 + 0.5);
	off = (size_t)snprintf(name, sizeof(name), "cpu_usage");
	for (int t = 0; t < BIG_TAGS; t++)
		off += (size_t)snprintf(name + off, sizeof(name) - off, "%st%d=\"v%d\"",
					t ? "," : "{", t, (BIG_LINES - 1 + t) % 97);
	snprintf(name + off, sizeof(name) - off, "}");
	assert_name(&r, name);
	assert_all_decode(f);
	free(body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_simple_line_is_one_double_record),
		T(test_each_numeric_field_is_a_record_named_with_sorted_tags),
		T(test_tag_order_does_not_change_the_series),
		T(test_measurement_escapes),
		T(test_tag_and_field_key_escapes),
		T(test_tag_values_escaped_in_the_name),
		T(test_floats_in_influx_syntax),
		T(test_integers_unsigned_and_booleans),
		T(test_string_fields_are_skipped),
		T(test_quoted_string_may_span_lines),
		T(test_crlf_comments_and_blank_lines),
		T(test_empty_bodies_are_valid),
		T(test_precision_parse),
		T(test_timestamps_floor_to_seconds_in_each_precision),
		T(test_sub_second_points_collapse_in_order),
		T(test_timestamp_errors),
		T(test_syntax_errors_name_the_reason),
		T(test_numbers_outside_influx_syntax_are_invalid),
		T(test_first_bad_line_is_reported_with_its_number),
		T(test_error_quote_is_cut_and_sanitised),
		T(test_name_longer_than_rec_name_max_is_refused),
		T(test_name_must_be_utf8_without_controls),
		T(test_limits_are_413_and_inclusive),
		T(test_many_tags_and_escaped_tags_grow_the_buffers),
		T(test_parser_reuse_keeps_memory_flat),
		T(test_big_body_of_many_tagged_lines),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
