/*
 * test_load.c - unit tests for temporis-load's input parsing (CSV, NDJSON, number typing),
 * the line-protocol splitter, and request body building (load_parse.c, load_batch.c).
 * JSON bodies are checked by parsing them back with json-c, the same parser the server
 * uses; line-protocol bodies byte for byte, since they must be the input unchanged.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>
#include <zlib.h>

#include "temporis/base/buf.h"
#include "temporis/tools/load_batch.h"
#include "temporis/tools/load_parse.h"

#define GUNZIP_WINDOW_BITS (15 + 16)

static struct load_parser *csv_parser(const char *t, const char *n, const char *v, bool header,
                                      char delimiter)
{
	struct load_csv_opts o = {.delimiter = delimiter, .header = header, .columns = {t, n, v}};
	char err[LOAD_ERR_MAX];
	struct load_parser *p = load_parser_new(LOAD_CSV, &o, err, sizeof(err));

	assert_non_null(p);
	return p;
}

static enum load_status feed(struct load_parser *p, const char *line, struct load_record *rec,
                             char *err)
{
	return load_parser_line(p, line, strlen(line), rec, err, LOAD_ERR_MAX);
}

static void assert_name(const struct load_record *rec, const char *want)
{
	assert_int_equal(rec->name_len, strlen(want));
	assert_memory_equal(rec->name, want, rec->name_len);
}

/* ---- numbers ---- */

static void test_integer_literal_stays_integer(void **state)
{
	struct load_value v;

	assert_int_equal(load_number_parse("42", 2, &v), 0);
	assert_true(v.is_int);
	assert_int_equal(v.i, 42);
	assert_int_equal(load_number_parse(" -9223372036854775808 ", 22, &v), 0);
	assert_true(v.is_int);
	assert_true(v.i == INT64_MIN);
	assert_int_equal(load_number_parse("9223372036854775807", 19, &v), 0);
	assert_true(v.i == INT64_MAX);
}

static void test_non_integer_number_becomes_double(void **state)
{
	struct load_value v;

	assert_int_equal(load_number_parse("3.0", 3, &v), 0);
	assert_false(v.is_int);
	assert_true(v.d == 3.0);
	assert_int_equal(load_number_parse("1e3", 3, &v), 0);
	assert_false(v.is_int);
	assert_true(v.d == 1000.0);
	assert_int_equal(load_number_parse("-0.1", 4, &v), 0);
	assert_true(v.d == -0.1);
}

static void test_nan_inf_and_words_are_not_numbers(void **state)
{
	static const char *const bad[] = {"nan", "NaN", "inf", "-Infinity", "1e400", "0x10",
	                                  "abc", "",    "  ",  "1.2.3",     "12abc", "1,5"};
	struct load_value v;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(load_number_parse(bad[i], strlen(bad[i]), &v), -1);
}

static void test_integer_outside_int64_is_rejected(void **state)
{
	struct load_value v;

	assert_int_equal(load_number_parse("9223372036854775808", 19, &v), -1);
	assert_int_equal(load_number_parse("-9223372036854775809", 20, &v), -1);
}

static void test_double_format_round_trips_exactly(void **state)
{
	static const double vals[] = {
	    0.1,   1.0 / 3.0, -2.5e-308, 1.7976931348623157e308, 3.0, -0.0, 123456789012345678.0,
	    5e-324};
	char buf[LOAD_NUM_MAX];

	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		struct load_value v = {.is_int = false, .d = vals[i]}, back;
		size_t n = load_value_format(&v, buf);
		assert_int_equal(n, strlen(buf));
		assert_non_null(strpbrk(buf, ".eE")); /* stays a double in JSON */
		assert_int_equal(load_number_parse(buf, n, &back), 0);
		assert_false(back.is_int);
		assert_memory_equal(&back.d, &vals[i], sizeof(double));
	}
}

static void test_integer_format_has_no_decimal_point(void **state)
{
	struct load_value v = {.is_int = true, .i = INT64_MIN};
	char buf[LOAD_NUM_MAX];

	load_value_format(&v, buf);
	assert_string_equal(buf, "-9223372036854775808");
}

/* ---- CSV ---- */

static void test_csv_header_maps_columns_by_name(void **state)
{
	struct load_parser *p = csv_parser("ts", "series", "v", true, ',');
	struct load_record rec;
	char err[LOAD_ERR_MAX];

	assert_int_equal(feed(p, "v,extra,series,ts\n", &rec, err), LOAD_SKIP);
	assert_int_equal(feed(p, "1.5,zzz,orders,1718841600\n", &rec, err), LOAD_RECORD);
	assert_true(rec.timestamp == 1718841600);
	assert_name(&rec, "orders");
	assert_false(rec.value.is_int);
	assert_true(rec.value.d == 1.5);
	load_parser_free(p);
}

static void test_csv_columns_by_index_and_no_header(void **state)
{
	struct load_parser *p = csv_parser("3", "1", "2", false, ',');
	struct load_record rec;
	char err[LOAD_ERR_MAX];

	assert_int_equal(feed(p, "temp,7,100", &rec, err), LOAD_RECORD);
	assert_true(rec.timestamp == 100);
	assert_name(&rec, "temp");
	assert_true(rec.value.is_int);
	assert_int_equal(rec.value.i, 7);
	load_parser_free(p);
}

static void test_csv_no_header_defaults_to_first_three_columns(void **state)
{
	struct load_parser *p = csv_parser(NULL, NULL, NULL, false, ',');
	struct load_record rec;
	char err[LOAD_ERR_MAX];

	assert_int_equal(feed(p, "5,a,6", &rec, err), LOAD_RECORD);
	assert_true(rec.timestamp == 5);
	assert_name(&rec, "a");
	load_parser_free(p);
}

static void test_csv_no_header_rejects_column_names(void **state)
{
	struct load_csv_opts o = {
	    .delimiter = ',', .header = false, .columns = {"ts", "name", "value"}};
	char err[LOAD_ERR_MAX];

	assert_null(load_parser_new(LOAD_CSV, &o, err, sizeof(err)));
	assert_non_null(strstr(err, "header"));
}

static void test_csv_quoted_fields_with_delimiter_and_escaped_quote(void **state)
{
	struct load_parser *p = csv_parser(NULL, NULL, NULL, true, ',');
	struct load_record rec;
	char err[LOAD_ERR_MAX];

	assert_int_equal(feed(p, "\"timestamp\",\"name\",\"value\"", &rec, err), LOAD_SKIP);
	assert_int_equal(feed(p, "\"10\",\"a,b \"\"c\"\"\",\"2\"", &rec, err), LOAD_RECORD);
	assert_name(&rec, "a,b \"c\"");
	assert_true(rec.timestamp == 10);
	assert_true(rec.value.is_int);
	assert_int_equal(feed(p, "11,\"\",3", &rec, err), LOAD_RECORD);
	assert_name(&rec, "");
	load_parser_free(p);
}

static void test_csv_other_delimiter_and_crlf(void **state)
{
	struct load_parser *p = csv_parser(NULL, NULL, NULL, true, ';');
	struct load_record rec;
	char err[LOAD_ERR_MAX];

	assert_int_equal(feed(p, "timestamp;name;value\r\n", &rec, err), LOAD_SKIP);
	assert_int_equal(feed(p, "1;x,y;2.25\r\n", &rec, err), LOAD_RECORD);
	assert_name(&rec, "x,y");
	assert_true(rec.value.d == 2.25);
	assert_int_equal(feed(p, "\r\n", &rec, err), LOAD_SKIP);
	load_parser_free(p);
}

static void test_csv_header_with_bom_and_missing_column(void **state)
{
	struct load_parser *p = csv_parser(NULL, NULL, NULL, true, ',');
	struct load_record rec;
	char err[LOAD_ERR_MAX];

	assert_int_equal(feed(p, "\xEF\xBB\xBFtimestamp,name,value", &rec, err), LOAD_SKIP);
	load_parser_reset(p);
	assert_int_equal(feed(p, "timestamp,name,val", &rec, err), LOAD_ERROR);
	assert_string_equal(err, "no column named 'value' in the header");
	load_parser_free(p);
}

static void test_csv_bad_lines_say_what_is_wrong(void **state)
{
	struct load_parser *p = csv_parser(NULL, NULL, NULL, false, ',');
	struct load_record rec;
	char err[LOAD_ERR_MAX];

	assert_int_equal(feed(p, "1,a,abc", &rec, err), LOAD_ERROR);
	assert_string_equal(err, "value is not a number");
	assert_int_equal(feed(p, "1,a,NaN", &rec, err), LOAD_ERROR);
	assert_string_equal(err, "value is not a number");
	assert_int_equal(feed(p, "1.5,a,1", &rec, err), LOAD_ERROR);
	assert_string_equal(err, "timestamp is not an integer or an RFC 3339 time");
	assert_int_equal(feed(p, "1,a", &rec, err), LOAD_ERROR);
	assert_string_equal(err, "expected at least 3 fields, found 2");
	assert_int_equal(feed(p, "1,\"a\"b,1", &rec, err), LOAD_ERROR);
	assert_string_equal(err, "unexpected character after a closing quote");
	assert_int_equal(feed(p, "1,a,99999999999999999999", &rec, err), LOAD_ERROR);
	assert_string_equal(err, "value is an integer outside the 64-bit range");
	load_parser_free(p);
}

/* RFC 4180: a quoted field goes on over line ends (kept in the field, \r\n too) and "" in it
 * is one quote; the record is named by the line it starts on and the lines it spans. A
 * blank line inside the quotes is part of the field, not a skipped line. */
static void test_csv_quoted_newlines_join_physical_lines(void **state)
{
	struct load_parser *p = csv_parser("time", "name", "value", true, ',');
	struct load_parser *c = csv_parser("time", "comment", "value", true, ',');
	static const char *const lines[] = {"time,name,value,comment\n",
	                                    "10,\"x,y\",2,\"line one\n",
	                                    "\"\"two\"\"\r\n",
	                                    "\n",
	                                    "three\"\n",
	                                    "11,b,3,plain\n"};
	struct load_record rec;
	char err[LOAD_ERR_MAX];

	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(load_parser_line(p, lines[i], strlen(lines[i]), &rec, err,
		                                  sizeof(err)),
		                 LOAD_SKIP);
		assert_int_equal(load_parser_line(c, lines[i], strlen(lines[i]), &rec, err,
		                                  sizeof(err)),
		                 LOAD_SKIP);
	}
	assert_int_equal(load_parser_line(c, lines[4], strlen(lines[4]), &rec, err, sizeof(err)),
	                 LOAD_RECORD);
	assert_name(&rec, "line one\n\"two\"\r\n\nthree");
	assert_int_equal(rec.line, 2);
	assert_int_equal(rec.spans, 4);
	assert_int_equal(load_parser_line(p, lines[4], strlen(lines[4]), &rec, err, sizeof(err)),
	                 LOAD_RECORD);
	assert_name(&rec, "x,y");
	assert_true(rec.timestamp == 10 && rec.value.is_int && rec.value.i == 2);
	assert_int_equal(rec.line, 2);
	assert_int_equal(rec.spans, 4);
	assert_int_equal(load_parser_line(p, lines[5], strlen(lines[5]), &rec, err, sizeof(err)),
	                 LOAD_RECORD);
	assert_name(&rec, "b");
	assert_int_equal(rec.line, 6);
	assert_int_equal(rec.spans, 1);
	assert_int_equal(load_parser_end(p, &rec.line, err, sizeof(err)), 0);
	/* fed without line ends, the joined field has "\n" where they were */
	assert_int_equal(feed(c, "12,x,5,\"a", &rec, err), LOAD_SKIP);
	assert_int_equal(feed(c, "b\"", &rec, err), LOAD_RECORD);
	assert_name(&rec, "a\nb");
	load_parser_free(p);
	load_parser_free(c);
}

/* A bad value in a record that spans lines is reported with all of its lines. */
static void test_csv_error_in_a_joined_record_names_its_lines(void **state)
{
	struct load_parser *p = csv_parser(NULL, NULL, NULL, false, ',');
	struct load_record rec;
	char err[LOAD_ERR_MAX];

	assert_int_equal(feed(p, "1,a,1", &rec, err), LOAD_RECORD);
	assert_int_equal(feed(p, "2,a,zz,\"x", &rec, err), LOAD_SKIP);
	assert_int_equal(feed(p, "y\"", &rec, err), LOAD_ERROR);
	assert_string_equal(err, "value is not a number");
	assert_int_equal(rec.line, 2);
	assert_int_equal(rec.spans, 2);
	assert_int_equal(feed(p, "3,\"a\"b,1", &rec, err), LOAD_ERROR);
	assert_string_equal(err, "unexpected character after a closing quote");
	assert_int_equal(rec.line, 4);
	load_parser_free(p);
}

/* A quote left open: at the end of the input, or past LOAD_CSV_CONTINUED_MAX, an error
 * naming the line where that quote opened (not where its record started). */
static void test_csv_unclosed_quote_is_an_error_at_its_line(void **state)
{
	enum { CHUNK = 64 * 1024 };
	struct load_parser *p = csv_parser(NULL, NULL, NULL, true, ',');
	struct load_record rec;
	char err[LOAD_ERR_MAX], *chunk = malloc(CHUNK + 1);
	uint64_t line = 0;
	enum load_status st = LOAD_SKIP;

	assert_non_null(chunk);
	assert_int_equal(feed(p, "timestamp,name,value,note", &rec, err), LOAD_SKIP);
	assert_int_equal(feed(p, "1,a,1,\"x", &rec, err), LOAD_SKIP);
	assert_int_equal(feed(p, "y\",\"open", &rec, err), LOAD_SKIP);
	assert_int_equal(feed(p, "still open", &rec, err), LOAD_SKIP);
	assert_int_equal(load_parser_end(p, &line, err, sizeof(err)), -1);
	assert_int_equal(line, 3);
	assert_string_equal(err, "the quoted field opened on this line is not closed at the end "
	                         "of the input");
	load_parser_reset(p);
	assert_int_equal(load_parser_end(p, &line, err, sizeof(err)), 0);

	memset(chunk, 'x', CHUNK);
	chunk[CHUNK] = '\n';
	assert_int_equal(feed(p, "timestamp,name,value", &rec, err), LOAD_SKIP);
	assert_int_equal(feed(p, "1,\"stray,1", &rec, err), LOAD_SKIP);
	for (int i = 0; i < LOAD_CSV_CONTINUED_MAX / CHUNK + 1 && st == LOAD_SKIP; i++)
		st = load_parser_line(p, chunk, CHUNK + 1, &rec, err, sizeof(err));
	assert_int_equal(st, LOAD_ERROR);
	assert_int_equal(rec.line, 2);
	assert_non_null(strstr(err, "not closed within 1048576 bytes"));
	free(chunk);
	load_parser_free(p);
}

/* More fields than the parser starts with and a line longer than its first buffer: both
 * grow, and the record comes out whole. */
static void test_csv_wide_and_long_lines_are_read_whole(void **state)
{
	enum { WIDE = 40, NAME_LEN = 5000 };
	struct load_parser *p = csv_parser("40", "39", "1", false, ',');
	struct load_record rec;
	char err[LOAD_ERR_MAX], *line = malloc(WIDE * 4 + NAME_LEN + 16), *o = line;

	assert_non_null(line);
	o += sprintf(o, "-7");
	for (int f = 2; f < WIDE - 1; f++)
		o += sprintf(o, ",%d", f);
	*o++ = ',';
	*o++ = '"';
	memset(o, 'n', NAME_LEN);
	o += NAME_LEN;
	sprintf(o, "\",123");
	assert_int_equal(feed(p, line, &rec, err), LOAD_RECORD);
	assert_true(rec.timestamp == 123);
	assert_int_equal(rec.name_len, NAME_LEN);
	assert_true(rec.name[0] == 'n' && rec.name[NAME_LEN - 1] == 'n');
	assert_true(rec.value.is_int && rec.value.i == -7);
	free(line);
	load_parser_free(p);
}

/* ---- NDJSON ---- */

static struct load_parser *ndjson_parser(void)
{
	char err[LOAD_ERR_MAX];
	struct load_parser *p = load_parser_new(LOAD_NDJSON, NULL, err, sizeof(err));

	assert_non_null(p);
	return p;
}

/* Timestamps: units, the plausibility check, RFC 3339. */
static void test_timestamp_units_and_rfc3339(void **state)
{
	static const struct {
		enum load_time_unit unit;
		const char *ts;
		int64_t want;
	} ok[] = {
	    {LOAD_TIME_AUTO, "1718841600", 1718841600},
	    {LOAD_TIME_AUTO, "-5", -5},
	    {LOAD_TIME_S, "1718841600000", 1718841600000},
	    {LOAD_TIME_MS, "1718841600999", 1718841600},
	    {LOAD_TIME_MS, "-1", -1},      /* floor, before 1970 too */
	    {LOAD_TIME_US, "1718841600000001", 1718841600},
	    {LOAD_TIME_NS, "1718841600123456789", 1718841600},
	    {LOAD_TIME_AUTO, "\"2024-06-20T00:00:00Z\"", 1718841600},
	    {LOAD_TIME_MS, "\"2024-06-20T02:30:00.75+02:30\"", 1718841600},
	    {LOAD_TIME_AUTO, "\"1969-12-31T23:59:59z\"", -1},
	    {LOAD_TIME_AUTO, "\"2000-02-29 12:00:00-01:00\"", 951829200},
	};
	struct load_record rec;
	char line[256], err[LOAD_ERR_MAX];

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct load_parser *p = ndjson_parser();

		load_parser_set_time_unit(p, ok[i].unit);
		snprintf(line, sizeof(line), "{\"timestamp\":%s,\"name\":\"a\",\"value\":1}", ok[i].ts);
		assert_int_equal(feed(p, line, &rec, err), LOAD_RECORD);
		assert_true(rec.timestamp == ok[i].want);
		load_parser_free(p);
	}
	/* milliseconds read as seconds: refused, saying what to do */
	struct load_parser *p = csv_parser("timestamp", "name", "value", true, ',');

	assert_int_equal(feed(p, "timestamp,name,value", &rec, err), LOAD_SKIP);
	assert_int_equal(feed(p, "1718841600000,a,1", &rec, err), LOAD_ERROR);
	assert_non_null(strstr(err, "--time-unit ms"));
	assert_int_equal(feed(p, "2024-06-20T00:00:00Z,a,1", &rec, err), LOAD_RECORD);
	assert_true(rec.timestamp == 1718841600);
	assert_int_equal(feed(p, "2024-13-01T00:00:00Z,a,1", &rec, err), LOAD_ERROR);
	load_parser_free(p);
}

static void test_ndjson_keeps_value_types(void **state)
{
	struct load_parser *p = ndjson_parser();
	struct load_record rec;
	char err[LOAD_ERR_MAX];

	assert_int_equal(feed(p, "{\"timestamp\":7,\"name\":\"a\\\"b\",\"value\":3}\n", &rec, err),
	                 LOAD_RECORD);
	assert_true(rec.timestamp == 7);
	assert_name(&rec, "a\"b");
	assert_true(rec.value.is_int);
	assert_int_equal(rec.value.i, 3);
	assert_int_equal(
	    feed(p, " {\"value\":3.0,\"name\":\"x\",\"timestamp\":8,\"extra\":[]} ", &rec, err),
	    LOAD_RECORD);
	assert_false(rec.value.is_int);
	assert_true(rec.value.d == 3.0);
	assert_int_equal(feed(p, "   \r\n", &rec, err), LOAD_SKIP);
	load_parser_free(p);
}

static void test_ndjson_bad_lines_say_what_is_wrong(void **state)
{
	static const struct {
		const char *line, *err;
	} cases[] = {
	    {"{\"timestamp\":1,\"name\":\"a\",\"value\":\"1\"}", "value is not a number"},
	    {"{\"timestamp\":1,\"name\":\"a\",\"value\":NaN}", "value is not a number"},
	    {"{\"timestamp\":1,\"name\":\"a\"}", "value is not a number"},
	    {"{\"timestamp\":1.5,\"name\":\"a\",\"value\":1}",
	     "timestamp is not an integer or an RFC 3339 time"},
	    {"{\"timestamp\":\"2024-02-30T00:00:00Z\",\"name\":\"a\",\"value\":1}",
	     "timestamp is not an integer or an RFC 3339 time"},
	    {"{\"timestamp\":1,\"name\":2,\"value\":1}", "name is not a string"},
	    {"{\"timestamp\":1,\"name\":\"a\",\"value\":18446744073709551615}",
	     "value is an integer outside the 64-bit range"},
	    {"{\"timestamp\":1,", "not valid JSON"},
	    {"[1,2,3]", "line is not a JSON object"},
	    {"{\"timestamp\":1,\"name\":\"a\",\"value\":1} x",
	     "unexpected text after the JSON object"},
	};
	struct load_parser *p = ndjson_parser();
	struct load_record rec;
	char err[LOAD_ERR_MAX];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(feed(p, cases[i].line, &rec, err), LOAD_ERROR);
		assert_string_equal(err, cases[i].err);
	}
	/* the parser recovers after an error */
	assert_int_equal(feed(p, "{\"timestamp\":1,\"name\":\"a\",\"value\":1}", &rec, err),
	                 LOAD_RECORD);
	load_parser_free(p);
}

/* ---- batches ---- */

static struct json_object *parse_body(const struct load_batch *b)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *j;

	assert_non_null(tok);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	j = json_tokener_parse_ex(tok, b->body.data, (int)b->body.len);
	assert_non_null(j);
	assert_int_equal(json_tokener_get_parse_end(tok), b->body.len);
	json_tokener_free(tok);
	return j;
}

static struct json_object *record_at(struct json_object *body, size_t k)
{
	struct json_object *records;

	assert_true(json_object_object_get_ex(body, "records", &records));
	return json_object_array_get_idx(records, k);
}

static void test_batch_body_is_the_ingest_json(void **state)
{
	struct load_batch b;
	struct load_record r1 = {.timestamp = 1718841600,
	                         .name = "orders",
	                         .name_len = 6,
	                         .value = {.is_int = true, .i = 42},
	                         .line = 2};
	struct load_record r2 = {.timestamp = -5,
	                         .name = "a\"\\\n\x01z",
	                         .name_len = 6,
	                         .value = {.is_int = false, .d = 3.0},
	                         .line = 9,
	                         .spans = 3};
	struct json_object *j, *f;

	assert_int_equal(load_batch_init(&b, "store_metrics", 2), 0);
	load_batch_reset(&b, "in.csv");
	assert_int_equal(load_batch_add(&b, &r1), 0);
	assert_false(load_batch_full(&b));
	assert_int_equal(load_batch_add(&b, &r2), 0);
	assert_true(load_batch_full(&b));
	assert_int_equal(load_batch_add(&b, &r1), -1);
	assert_int_equal(load_batch_finish(&b), 0);
	j = parse_body(&b);
	assert_true(json_object_object_get_ex(j, "data_source", &f));
	assert_string_equal(json_object_get_string(f), "store_metrics");
	assert_true(json_object_object_get_ex(record_at(j, 0), "value", &f));
	assert_true(json_object_is_type(f, json_type_int));
	assert_int_equal(json_object_get_int64(f), 42);
	assert_true(json_object_object_get_ex(record_at(j, 1), "value", &f));
	assert_true(json_object_is_type(f, json_type_double));
	assert_true(json_object_object_get_ex(record_at(j, 1), "name", &f));
	assert_int_equal(json_object_get_string_len(f), 6);
	assert_memory_equal(json_object_get_string(f), "a\"\\\n\x01z", 6);
	assert_true(json_object_object_get_ex(record_at(j, 1), "timestamp", &f));
	assert_int_equal(json_object_get_int64(f), -5);
	assert_int_equal(b.lines[0], 2);
	assert_int_equal(b.lines[1], 9);
	assert_int_equal(load_batch_last_line(&b), 11); /* the record on lines 9-11 */
	json_object_put(j);
	load_batch_free(&b);
}

static void test_batch_reuse_starts_empty(void **state)
{
	struct load_batch b;
	struct load_record r = {
	    .timestamp = 1, .name = "n", .name_len = 1, .value = {.is_int = true, .i = 1}};
	struct json_object *j, *records;

	assert_int_equal(load_batch_init(&b, "s", 1000), 0);
	for (int i = 0; i < 1000; i++) {
		r.line = (uint64_t)i + 1;
		assert_int_equal(load_batch_add(&b, &r), 0);
	}
	assert_int_equal(load_batch_finish(&b), 0);
	load_batch_reset(&b, "next");
	assert_int_equal(b.count, 0);
	assert_int_equal(load_batch_finish(&b), 0);
	j = parse_body(&b);
	assert_true(json_object_object_get_ex(j, "records", &records));
	assert_int_equal(json_object_array_length(records), 0);
	json_object_put(j);
	load_batch_free(&b);
}

static void test_batch_doubles_round_trip_through_json(void **state)
{
	static const double vals[] = {0.1, 1e21, 2.0, -1.0 / 7.0, 4.9406564584124654e-324};
	struct load_batch b;
	struct json_object *j, *f;

	assert_int_equal(load_batch_init(&b, "s", 8), 0);
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		struct load_record r = {.timestamp = (int64_t)i,
		                        .name = "d",
		                        .name_len = 1,
		                        .value = {.is_int = false, .d = vals[i]}};
		assert_int_equal(load_batch_add(&b, &r), 0);
	}
	assert_int_equal(load_batch_finish(&b), 0);
	j = parse_body(&b);
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		assert_true(json_object_object_get_ex(record_at(j, i), "value", &f));
		assert_true(json_object_is_type(f, json_type_double));
		double d = json_object_get_double(f);
		assert_memory_equal(&d, &vals[i], sizeof(d));
	}
	json_object_put(j);
	load_batch_free(&b);
}

static void test_gzip_body_inflates_to_the_original(void **state)
{
	static const char text[] = "{\"data_source\":\"s\",\"records\":[]}";
	char out[sizeof(text) * 2];
	struct buf gz = {0};
	z_stream zs;

	assert_int_equal(load_gzip(text, sizeof(text) - 1, &gz), 0);
	assert_true(gz.len > 2 && (unsigned char)gz.data[0] == 0x1f &&
	            (unsigned char)gz.data[1] == 0x8b);
	memset(&zs, 0, sizeof(zs));
	assert_int_equal(inflateInit2(&zs, GUNZIP_WINDOW_BITS), Z_OK);
	zs.next_in = (Bytef *)gz.data;
	zs.avail_in = (uInt)gz.len;
	zs.next_out = (Bytef *)out;
	zs.avail_out = sizeof(out);
	assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
	assert_int_equal(zs.total_out, sizeof(text) - 1);
	assert_memory_equal(out, text, sizeof(text) - 1);
	inflateEnd(&zs);
	buf_free(&gz);
}

/* A record far larger than the batch's first guess grows the body; the finished body is a
 * C string of exactly body.len bytes. */
static void test_batch_grows_past_its_guess_and_ends_in_nul(void **state)
{
	enum { NAME_LEN = 10000 };
	char *name = malloc(NAME_LEN);
	struct load_batch b;
	struct json_object *j, *f;

	assert_non_null(name);
	memset(name, 'q', NAME_LEN);
	struct load_record r = {
	    .timestamp = 7, .name = name, .name_len = NAME_LEN, .value = {.is_int = true, .i = 1}};
	assert_int_equal(load_batch_init(&b, "s", 2), 0);
	assert_int_equal(load_batch_add(&b, &r), 0);
	assert_int_equal(load_batch_finish(&b), 0);
	assert_int_equal(b.body.data[b.body.len], '\0');
	assert_int_equal(strlen(b.body.data), b.body.len);
	j = parse_body(&b);
	assert_true(json_object_object_get_ex(record_at(j, 0), "name", &f));
	assert_int_equal(json_object_get_string_len(f), NAME_LEN);
	json_object_put(j);
	load_batch_free(&b);
	free(name);
}

/* gunzip gz into out (of outlen bytes); the inflated length. */
static size_t gunzip(const struct buf *gz, char *out, size_t outlen)
{
	z_stream zs;
	size_t n;

	memset(&zs, 0, sizeof(zs));
	assert_int_equal(inflateInit2(&zs, GUNZIP_WINDOW_BITS), Z_OK);
	zs.next_in = (Bytef *)gz->data;
	zs.avail_in = (uInt)gz->len;
	zs.next_out = (Bytef *)out;
	zs.avail_out = (uInt)outlen;
	assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
	n = zs.total_out;
	inflateEnd(&zs);
	return n;
}

/* The slot's gzip buffer is reused from batch to batch: each body replaces the last. */
static void test_gzip_into_a_used_buffer_replaces_it(void **state)
{
	enum { LONG_LEN = 100000 };
	static const char short_text[] = "{\"data_source\":\"s\",\"records\":[]}";
	char *long_text = malloc(LONG_LEN), *out = malloc(LONG_LEN);
	struct buf gz = {0};

	assert_non_null(long_text);
	assert_non_null(out);
	for (size_t i = 0; i < LONG_LEN; i++)
		long_text[i] = (char)('a' + (i * 7919) % 26);
	assert_int_equal(load_gzip(long_text, LONG_LEN, &gz), 0);
	assert_int_equal(gunzip(&gz, out, LONG_LEN), LONG_LEN);
	assert_memory_equal(out, long_text, LONG_LEN);
	assert_int_equal(load_gzip(short_text, sizeof(short_text) - 1, &gz), 0);
	assert_int_equal(gunzip(&gz, out, LONG_LEN), sizeof(short_text) - 1);
	assert_memory_equal(out, short_text, sizeof(short_text) - 1);
	buf_free(&gz);
	free(long_text);
	free(out);
}

/* ---- line protocol ---- */

#define LP_OUT_MAX 16
#define LP_TEXT_MAX 256

struct lp_out {
	uint64_t line;
	uint32_t spans;
	char text[LP_TEXT_MAX];
};

/* Feed text physical line by physical line (each with its "\n") to lp; the data lines
 * into out[] and their count into *n. The status of the first error, else LOAD_RECORD. */
static enum load_status lp_split(struct load_lp *lp, const char *text, struct lp_out *out,
                                 size_t *n, char *err)
{
	struct load_lp_line l;

	*n = 0;
	while (*text) {
		const char *nl = strchr(text, '\n');
		size_t len = nl ? (size_t)(nl - text) + 1 : strlen(text);
		enum load_status st = load_lp_feed(lp, text, len, &l, err, LOAD_ERR_MAX);

		text += len;
		if (st == LOAD_ERROR)
			return st;
		if (st == LOAD_SKIP)
			continue;
		assert_true(*n < LP_OUT_MAX && l.len < LP_TEXT_MAX);
		out[*n].line = l.line;
		out[*n].spans = l.spans;
		memcpy(out[*n].text, l.text, l.len);
		out[*n].text[l.len] = '\0';
		(*n)++;
	}
	return LOAD_RECORD;
}

static struct load_lp *lp_new(void)
{
	struct load_lp *lp = load_lp_new();

	assert_non_null(lp);
	return lp;
}

static void assert_lp_line(const struct lp_out *o, uint64_t line, uint32_t spans, const char *text)
{
	assert_int_equal(o->line, line);
	assert_int_equal(o->spans, spans);
	assert_string_equal(o->text, text);
}

/* An influx_inspect export: the header comments, the DDL section and blank lines are not
 * sent; every data line is, unchanged, with its own input line. */
static void test_lp_export_headers_ddl_and_blanks_are_skipped(void **state)
{
	static const char text[] =
	    "# INFLUXDB EXPORT: 1677-09-21T00:12:43Z - 2262-04-11T23:47:16Z\n"
	    "# DDL\n"
	    "CREATE DATABASE telegraf WITH NAME autogen\n"
	    "CREATE RETENTION POLICY rp1 ON telegraf DURATION 1d REPLICATION 1\n"
	    "\n"
	    "# DML\n"
	    "# CONTEXT-DATABASE: telegraf\n"
	    "# CONTEXT-RETENTION-POLICY: autogen\n"
	    "# writing tsm data\n"
	    "cpu,host=a usage=1.5 1600000000000000000\n"
	    "   \t\r\n"
	    "  # an indented comment\n"
	    "mem,host=a free=3i 1600000000000000000\r\n"
	    "  disk free=2";
	struct load_lp *lp = lp_new();
	struct lp_out out[LP_OUT_MAX];
	char err[LOAD_ERR_MAX];
	size_t n;

	assert_int_equal(lp_split(lp, text, out, &n, err), LOAD_RECORD);
	assert_int_equal(n, 3);
	assert_lp_line(&out[0], 10, 1, "cpu,host=a usage=1.5 1600000000000000000");
	assert_lp_line(&out[1], 13, 1, "mem,host=a free=3i 1600000000000000000");
	assert_lp_line(&out[2], 14, 1, "  disk free=2");
	assert_int_equal(load_lp_end(lp, &out[0].line, err, sizeof(err)), 0);
	load_lp_free(lp);
}

/* The next input starts outside a DDL section and at line 1 again. */
static void test_lp_reset_leaves_the_ddl_section(void **state)
{
	struct load_lp *lp = lp_new();
	struct lp_out out[LP_OUT_MAX];
	char err[LOAD_ERR_MAX];
	size_t n;

	assert_int_equal(lp_split(lp, "# DDL\nCREATE DATABASE x\nm v=1\n", out, &n, err),
	                 LOAD_RECORD);
	assert_int_equal(n, 0); /* no "# DML": still DDL */
	load_lp_reset(lp);
	assert_int_equal(lp_split(lp, "\nm v=1\n", out, &n, err), LOAD_RECORD);
	assert_int_equal(n, 1);
	assert_lp_line(&out[0], 2, 1, "m v=1");
	load_lp_free(lp);
}

static void test_lp_context_database_is_handed_to_the_caller(void **state)
{
	static const char *const lines[] = {"# CONTEXT-DATABASE: telegraf\n",
	                                    "#CONTEXT-DATABASE:db2\r\n"};
	static const char *const want[] = {"telegraf", "db2"};
	struct load_lp *lp = lp_new();
	struct load_lp_line l;
	char err[LOAD_ERR_MAX];

	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(load_lp_feed(lp, lines[i], strlen(lines[i]), &l, err, sizeof(err)),
		                 LOAD_SKIP);
		assert_non_null(l.context_db);
		assert_int_equal(l.context_db_len, strlen(want[i]));
		assert_memory_equal(l.context_db, want[i], l.context_db_len);
		assert_int_equal(l.line, i + 1);
	}
	assert_int_equal(load_lp_feed(lp, "# DML\n", 6, &l, err, sizeof(err)), LOAD_SKIP);
	assert_null(l.context_db);
	load_lp_free(lp);
}

/* A newline inside a double-quoted string field continues the logical line, which is sent
 * whole, its inner line ends as they were; \" and \\ are escapes inside the string. */
static void test_lp_quoted_newline_continues_the_line(void **state)
{
	static const char text[] = "log,host=a msg=\"first\n"
	                           "# not a comment: inside the string\n"
	                           "\n"
	                           "last\",n=1i 10\n"
	                           "log msg=\"say \\\"hi\\\"\n"
	                           "there\" 11\r\n"
	                           "log msg=\"ends in a backslash \\\\\" 12\n"
	                           "log msg=\"crlf\r\n"
	                           "inside\"\n"
	                           "log a=1,msg=\"x\",b=2 13\n";
	struct load_lp *lp = lp_new();
	struct lp_out out[LP_OUT_MAX];
	char err[LOAD_ERR_MAX];
	size_t n;

	assert_int_equal(lp_split(lp, text, out, &n, err), LOAD_RECORD);
	assert_int_equal(n, 5);
	assert_lp_line(
	    &out[0], 1, 4,
	    "log,host=a msg=\"first\n# not a comment: inside the string\n\nlast\",n=1i 10");
	assert_lp_line(&out[1], 5, 2, "log msg=\"say \\\"hi\\\"\nthere\" 11");
	assert_lp_line(&out[2], 7, 1, "log msg=\"ends in a backslash \\\\\" 12");
	assert_lp_line(&out[3], 8, 2, "log msg=\"crlf\r\ninside\"");
	assert_lp_line(&out[4], 10, 1, "log a=1,msg=\"x\",b=2 13");
	load_lp_free(lp);
}

/* A double quote opens a string only as a field value: in the measurement, a tag, a field
 * key, after an escaped '=' or in the timestamp it is an ordinary byte. */
static void test_lp_quotes_outside_field_values_do_not_open_a_string(void **state)
{
	static const char text[] = "m\"x,tag=\"v v=1 1\n"
	                           "m,tag=a\\ \"b k\"ey=1 2\n"
	                           "m f\\=\"x=1 3\n"
	                           "m v=1 4\"\n"
	                           "m\\ x=\"y v=2\n";
	struct load_lp *lp = lp_new();
	struct lp_out out[LP_OUT_MAX];
	char err[LOAD_ERR_MAX];
	size_t n;

	assert_int_equal(lp_split(lp, text, out, &n, err), LOAD_RECORD);
	assert_int_equal(n, 5);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(out[i].line, i + 1);
	assert_string_equal(out[4].text, "m\\ x=\"y v=2");
	load_lp_free(lp);
}

/* A string still open at the end of the input, or after LOAD_LP_CONTINUED_MAX bytes, is an
 * error naming the line it opened on. */
static void test_lp_unclosed_string_is_an_error_at_its_line(void **state)
{
	enum { CHUNK = 4096 };
	struct load_lp *lp = lp_new();
	struct load_lp_line l;
	struct lp_out out[LP_OUT_MAX];
	char err[LOAD_ERR_MAX], *chunk = malloc(CHUNK + 1);
	uint64_t line = 0;
	size_t n;
	enum load_status st = LOAD_SKIP;

	assert_int_equal(lp_split(lp, "m v=1\nm s=\"open\nstill open\n", out, &n, err),
	                 LOAD_RECORD);
	assert_int_equal(n, 1);
	assert_int_equal(load_lp_end(lp, &line, err, sizeof(err)), -1);
	assert_int_equal(line, 2);
	assert_non_null(strstr(err, "not closed"));

	load_lp_reset(lp);
	assert_int_equal(load_lp_end(lp, &line, err, sizeof(err)), 0);
	assert_non_null(chunk);
	memset(chunk, 'x', CHUNK);
	chunk[CHUNK] = '\n';
	assert_int_equal(load_lp_feed(lp, "\n", 1, &l, err, sizeof(err)), LOAD_SKIP);
	assert_int_equal(load_lp_feed(lp, "m s=\"\n", 6, &l, err, sizeof(err)), LOAD_SKIP);
	for (size_t i = 0; i <= LOAD_LP_CONTINUED_MAX / CHUNK && st == LOAD_SKIP; i++)
		st = load_lp_feed(lp, chunk, CHUNK + 1, &l, err, sizeof(err));
	assert_int_equal(st, LOAD_ERROR);
	assert_int_equal(l.line, 2);
	assert_non_null(strstr(err, "not closed"));
	free(chunk);
	load_lp_free(lp);
}

/* The body is the data lines joined by "\n", byte for byte; the server's "line K" (counting
 * every "\n" of the body) maps back to the input line, also inside a continued line. */
static void test_lp_batch_joins_lines_and_maps_body_lines_to_input(void **state)
{
	static const char want[] = "a v=1 1\nb s=\"x\ny\nz\" 2\nc v=3\r\nd v=4";
	struct load_batch b;
	struct load_record r = {.name = "n", .name_len = 1, .value = {.is_int = true, .i = 1}};

	assert_int_equal(load_batch_init_lines(&b, 4), 0);
	load_batch_reset(&b, "in.lp");
	assert_int_equal(load_batch_last_line(&b), 0);
	assert_int_equal(load_batch_add(&b, &r), -1); /* records do not go into lines */
	assert_int_equal(load_batch_add_line(&b, "a v=1 1", 7, 3, 1), 0);
	assert_int_equal(load_batch_add_line(&b, "b s=\"x\ny\nz\" 2", 13, 5, 3), 0);
	assert_int_equal(load_batch_add_line(&b, "c v=3\r", 6, 10, 1), 0);
	assert_false(load_batch_full(&b));
	assert_int_equal(load_batch_add_line(&b, "d v=4", 5, 12, 1), 0);
	assert_true(load_batch_full(&b));
	assert_int_equal(load_batch_add_line(&b, "e v=5", 5, 13, 1), -1);
	assert_int_equal(load_batch_finish(&b), 0);
	assert_int_equal(b.body.len, sizeof(want) - 1);
	assert_memory_equal(b.body.data, want, sizeof(want));
	assert_int_equal(b.count, 4);
	static const uint64_t input_of[] = {0, 3, 5, 6, 7, 10, 12, 0};
	for (uint64_t k = 0; k < sizeof(input_of) / sizeof(input_of[0]); k++)
		assert_int_equal(load_batch_body_line(&b, k), input_of[k]);
	assert_int_equal(load_batch_last_line(&b), 12);

	/* reused: the next body starts empty, and a continued last line ends the range */
	load_batch_reset(&b, "next.lp");
	assert_int_equal(load_batch_add_line(&b, "q s=\"1\n2\"", 9, 20, 2), 0);
	assert_int_equal(load_batch_finish(&b), 0);
	assert_string_equal(b.body.data, "q s=\"1\n2\"");
	assert_int_equal(load_batch_last_line(&b), 21);
	load_batch_free(&b);
}

/* A JSON batch takes no lines; its line range is the records' lines. */
static void test_json_batch_refuses_lines(void **state)
{
	struct load_batch b;
	struct load_record r = {.name = "n", .name_len = 1, .value = {.is_int = true, .i = 1}};

	assert_int_equal(load_batch_init(&b, "s", 4), 0);
	assert_int_equal(load_batch_add_line(&b, "m v=1", 5, 1, 1), -1);
	r.line = 7;
	assert_int_equal(load_batch_add(&b, &r), 0);
	r.line = 9;
	assert_int_equal(load_batch_add(&b, &r), 0);
	assert_int_equal(load_batch_last_line(&b), 9);
	assert_int_equal(load_batch_body_line(&b, 2), 9);
	load_batch_free(&b);
}

/* While the server is down or busy the retry line says why, which attempt and when next. */
static void test_retry_text_says_why_and_when(void **state)
{
	struct load_batch b;
	struct load_record r = {.name = "n", .name_len = 1, .value = {.is_int = true, .i = 1}};
	char msg[LOAD_WHERE_MAX];

	assert_string_equal(load_conn_reason(ECONNREFUSED, false), "connection refused");
	assert_string_equal(load_conn_reason(ECONNRESET, false), "connection reset");
	assert_string_equal(load_conn_reason(EPIPE, false), "connection reset");
	assert_string_equal(load_conn_reason(0, true), "timed out");
	assert_string_equal(load_conn_reason(0, false), "connection closed");
	assert_int_equal(load_batch_init(&b, "s", 4), 0);
	load_batch_reset(&b, "in.csv");
	r.line = 2;
	assert_int_equal(load_batch_add(&b, &r), 0);
	r.line = 5;
	r.spans = 2;
	assert_int_equal(load_batch_add(&b, &r), 0);
	load_retry_text(&b, 1, 10, 100, "connection refused (127.0.0.1:9)", 0, msg, sizeof(msg));
	assert_string_equal(msg, "in.csv:LINES 2-6: connection refused (127.0.0.1:9) (attempt 1 "
	                         "of 11, retrying in 0.1 s)");
	load_retry_text(&b, 3, 10, 1000, "503 Server is busy, retry later.", 7, msg, sizeof(msg));
	assert_string_equal(msg, "in.csv:LINES 2-6: 503 Server is busy, retry later. (attempt 3 "
	                         "of 11, retrying in 1.0 s; 7 more retries not shown)");
	load_retry_text(&b, 2, 2, 2500, "timed out (h:1)", 1, msg, sizeof(msg));
	assert_non_null(strstr(msg, ": timed out (h:1) (attempt 2 of 3, retrying in 2.5 s; 1 more "
	                            "retry not shown)"));
	load_batch_free(&b);
}

static void test_lp_precision_follows_the_time_unit(void **state)
{
	assert_string_equal(load_lp_precision(LOAD_TIME_AUTO), "ns"); /* InfluxDB's default */
	assert_string_equal(load_lp_precision(LOAD_TIME_NS), "ns");
	assert_string_equal(load_lp_precision(LOAD_TIME_US), "u");
	assert_string_equal(load_lp_precision(LOAD_TIME_MS), "ms");
	assert_string_equal(load_lp_precision(LOAD_TIME_S), "s");
}

static void test_lp_target_encodes_the_source(void **state)
{
	static const struct {
		const char *prefix, *source;
		enum load_time_unit unit;
		const char *want;
	} cases[] = {
	    {"", "metrics", LOAD_TIME_AUTO, "/write?db=metrics&precision=ns"},
	    {"/tsdb", "a-b_c.d~e", LOAD_TIME_S, "/tsdb/write?db=a-b_c.d~e&precision=s"},
	    {"", "my db&x=1/é?#%", LOAD_TIME_US,
	     "/write?db=my%20db%26x%3d1%2f%c3%a9%3f%23%25&precision=u"},
	};
	struct buf t = {0};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_reset(&t);
		assert_int_equal(load_lp_target(&t, cases[i].prefix, strlen(cases[i].prefix),
		                                cases[i].source, cases[i].unit),
		                 0);
		assert_int_equal(t.len, strlen(cases[i].want));
		assert_string_equal(t.data, cases[i].want);
	}
	buf_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_integer_literal_stays_integer),
	    cmocka_unit_test(test_non_integer_number_becomes_double),
	    cmocka_unit_test(test_nan_inf_and_words_are_not_numbers),
	    cmocka_unit_test(test_integer_outside_int64_is_rejected),
	    cmocka_unit_test(test_double_format_round_trips_exactly),
	    cmocka_unit_test(test_integer_format_has_no_decimal_point),
	    cmocka_unit_test(test_csv_header_maps_columns_by_name),
	    cmocka_unit_test(test_csv_columns_by_index_and_no_header),
	    cmocka_unit_test(test_csv_no_header_defaults_to_first_three_columns),
	    cmocka_unit_test(test_csv_no_header_rejects_column_names),
	    cmocka_unit_test(test_csv_quoted_fields_with_delimiter_and_escaped_quote),
	    cmocka_unit_test(test_csv_other_delimiter_and_crlf),
	    cmocka_unit_test(test_csv_header_with_bom_and_missing_column),
	    cmocka_unit_test(test_csv_bad_lines_say_what_is_wrong),
	    cmocka_unit_test(test_csv_wide_and_long_lines_are_read_whole),
	    cmocka_unit_test(test_csv_quoted_newlines_join_physical_lines),
	    cmocka_unit_test(test_csv_error_in_a_joined_record_names_its_lines),
	    cmocka_unit_test(test_csv_unclosed_quote_is_an_error_at_its_line),
	    cmocka_unit_test(test_timestamp_units_and_rfc3339),
	    cmocka_unit_test(test_ndjson_keeps_value_types),
	    cmocka_unit_test(test_ndjson_bad_lines_say_what_is_wrong),
	    cmocka_unit_test(test_batch_body_is_the_ingest_json),
	    cmocka_unit_test(test_batch_reuse_starts_empty),
	    cmocka_unit_test(test_batch_doubles_round_trip_through_json),
	    cmocka_unit_test(test_gzip_body_inflates_to_the_original),
	    cmocka_unit_test(test_batch_grows_past_its_guess_and_ends_in_nul),
	    cmocka_unit_test(test_gzip_into_a_used_buffer_replaces_it),
	    cmocka_unit_test(test_lp_export_headers_ddl_and_blanks_are_skipped),
	    cmocka_unit_test(test_lp_reset_leaves_the_ddl_section),
	    cmocka_unit_test(test_lp_context_database_is_handed_to_the_caller),
	    cmocka_unit_test(test_lp_quoted_newline_continues_the_line),
	    cmocka_unit_test(test_lp_quotes_outside_field_values_do_not_open_a_string),
	    cmocka_unit_test(test_lp_unclosed_string_is_an_error_at_its_line),
	    cmocka_unit_test(test_lp_batch_joins_lines_and_maps_body_lines_to_input),
	    cmocka_unit_test(test_json_batch_refuses_lines),
	    cmocka_unit_test(test_retry_text_says_why_and_when),
	    cmocka_unit_test(test_lp_precision_follows_the_time_unit),
	    cmocka_unit_test(test_lp_target_encodes_the_source),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
