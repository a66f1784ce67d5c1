/*
 * test_promql.c - the PromQL engine (src/data/promql_*.c) over an in-memory store:
 * the parser's accepted forms and refusals, selectors and the lookback, the range
 * functions with values worked out from Prometheus 2.42's algorithm (and checked
 * against its promtool), aggregations, operators, offset, range queries, the
 * metadata calls, series names read back as labels, limits and value formatting.
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

#include "temporis/data/promql.h"
#include "temporis/data/series_labels.h"
#include "../../src/data/promql_int.h"

#define MS 1000
#define MAX_POINTS 16
#define BIG_LIMIT 100000
#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

struct mem_series {
	const char *name;
	size_t n;
	int64_t ts[MAX_POINTS];   /* seconds */
	double v[MAX_POINTS];
};

struct mem_store {
	const struct mem_series *s;
	size_t n;
	int points_calls;
	int fail;
};

/* Every 15s from 0, as promtool's input_series with interval 15s. */
static const struct mem_series base[] = {
	{"c{instance=\"a\",job=\"api\"}", 5, {0, 15, 30, 45, 60}, {0, 10, 20, 30, 40}},
	{"c{instance=\"b\",job=\"api\"}", 5, {0, 15, 30, 45, 60}, {5, 15, 3, 8, 20}},
	{"c{instance=\"a\",job=\"web\"}", 5, {0, 15, 30, 45, 60}, {100, 110, 120, 130, 140}},
	{"g{instance=\"a\"}", 5, {0, 15, 30, 45, 60}, {1, 5, 2, 8, 3}},
	{"g{instance=\"b\"}", 3, {0, 15, 30}, {4, 4, 9}},
	{"cpu.load", 2, {0, 60}, {0.5, 0.25}},
	{"host-1/disk", 1, {60}, {7}},
	{"9lives", 1, {60}, {9}},
};

static int mem_each(void *arg, promql_series_cb cb, void *cbarg)
{
	const struct mem_store *m = arg;

	if (m->fail)
		return -1;
	for (size_t i = 0; i < m->n; i++) {
		const struct mem_series *s = &m->s[i];

		if (s->n > 0 && cb(s->name, strlen(s->name), s->ts[0], s->ts[s->n - 1], cbarg) != 0)
			break;
	}
	return 0;
}

static int mem_points(void *arg, const char *name, size_t len, int64_t first, int64_t last,
		      promql_point_cb cb, void *cbarg)
{
	struct mem_store *m = arg;

	m->points_calls++;
	for (size_t i = 0; i < m->n; i++) {
		const struct mem_series *s = &m->s[i];

		if (strlen(s->name) != len || memcmp(s->name, name, len) != 0)
			continue;
		for (size_t j = 0; j < s->n; j++)
			if (s->ts[j] >= first && s->ts[j] <= last && cb(s->ts[j], s->v[j], cbarg) != 0)
				return 0;
	}
	return 0;
}

static struct mem_store mem = {base, sizeof(base) / sizeof(base[0]), 0, 0};
static const struct promql_store store = {&mem, mem_each, mem_points};
static struct promql_limits limits = {BIG_LIMIT, BIG_LIMIT};

static void use(const struct mem_series *s, size_t n)
{
	mem.s = s;
	mem.n = n;
	mem.points_calls = 0;
	mem.fail = 0;
	limits = (struct promql_limits){BIG_LIMIT, BIG_LIMIT};
}

static int reset(void **state)
{
	use(base, sizeof(base) / sizeof(base[0]));
	return 0;
}

/* The body as text (caller frees), and its status. */
static char *body_text(struct json_object *body, int status, int *status_out)
{
	char *text;

	assert_non_null(body);
	text = strdup(json_object_to_json_string_ext(body, JSON_FLAGS));
	assert_non_null(text);
	json_object_put(body);
	*status_out = status;
	return text;
}

static char *instant(const char *q, int64_t t_s, int *status)
{
	int st = 0;
	struct json_object *b = promql_query_instant(&store, &limits, q, strlen(q), t_s * MS, &st);

	return body_text(b, st, status);
}

static char *range(const char *q, int64_t start_s, int64_t end_s, int64_t step_s, int *status)
{
	int st = 0;
	struct json_object *b = promql_query_range(&store, &limits, q, strlen(q), start_s * MS,
						   end_s * MS, step_s * MS, &st);

	return body_text(b, st, status);
}

static void expect_instant(const char *q, int64_t t_s, const char *json)
{
	int st;
	char *got = instant(q, t_s, &st);

	if (strcmp(got, json) != 0)
		print_error("query %s\n got %s\nwant %s\n", q, got, json);
	assert_string_equal(got, json);
	assert_int_equal(st, 200);
	free(got);
}

static void expect_range(const char *q, int64_t start, int64_t end, int64_t step,
			 const char *json)
{
	int st;
	char *got = range(q, start, end, step, &st);

	if (strcmp(got, json) != 0)
		print_error("query %s\n got %s\nwant %s\n", q, got, json);
	assert_string_equal(got, json);
	assert_int_equal(st, 200);
	free(got);
}

/* An error body: its type and message (compared as the decoded JSON strings). */
static void expect_body_error(struct json_object *b, int st, int status, const char *type,
			      const char *msg)
{
	struct json_object *v;

	assert_non_null(b);
	assert_int_equal(json_object_object_length(b), 3);
	assert_true(json_object_object_get_ex(b, "status", &v));
	assert_string_equal(json_object_get_string(v), "error");
	assert_true(json_object_object_get_ex(b, "errorType", &v));
	assert_string_equal(json_object_get_string(v), type);
	assert_true(json_object_object_get_ex(b, "error", &v));
	if (strcmp(json_object_get_string(v), msg) != 0)
		print_error(" got %s\nwant %s\n", json_object_get_string(v), msg);
	assert_string_equal(json_object_get_string(v), msg);
	assert_int_equal(st, status);
	json_object_put(b);
}

static void expect_error(const char *q, int64_t t_s, int status, const char *type,
			 const char *msg)
{
	int st = 0;
	struct json_object *b = promql_query_instant(&store, &limits, q, strlen(q), t_s * MS, &st);

	expect_body_error(b, st, status, type, msg);
}

static void expect_bad(const char *q, const char *msg)
{
	char full[1024];

	snprintf(full, sizeof(full), "invalid parameter \"query\": %s", msg);
	expect_error(q, 60, 400, "bad_data", full);
}

/* One-sample instant vector: its value text, for checks of computed values. */
static void expect_one(const char *q, int64_t t_s, const char *metric, const char *value)
{
	char want[1024];

	snprintf(want, sizeof(want),
		 "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":"
		 "%s,\"value\":[%lld,\"%s\"]}]}}",
		 metric, (long long)t_s, value);
	expect_instant(q, t_s, want);
}

static void expect_empty(const char *q, int64_t t_s)
{
	expect_instant(q, t_s,
		       "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}");
}

#define API_A "{\"instance\":\"a\",\"job\":\"api\"}"
#define API_B "{\"instance\":\"b\",\"job\":\"api\"}"
#define WEB_A "{\"instance\":\"a\",\"job\":\"web\"}"
#define VEC(...) "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[" __VA_ARGS__ "]}}"
#define MAT(...) "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[" __VA_ARGS__ "]}}"
#define S(metric, t, v) "{\"metric\":" metric ",\"value\":[" #t ",\"" v "\"]}"

/* ---- parser ---- */

static void test_parse_accepts_the_supported_forms(void **state)
{
	static const char *const ok[] = {
		"1", "-1", "+1", "1e3", "0x1f", "017", ".5", "Inf", "-inf", "NaN", "1 + 2 * 3",
		"2 ^ 3 ^ 2", "(1)", "c", "c{}", "{__name__=\"c\"}", "{__name__=~\"c|g\"}",
		"c{job=\"api\", instance!='b',}", "c{job=~`a.*`}", "c{job!~\"x\"}", "c[5m]",
		"c[1h30m]", "c offset 5m", "c[5m] offset 1h", "c offset -5m", "rate(c[5m])",
		"rate((c[5m]))", "sum(c)", "SUM(c)", "sum by (job) (c)", "sum(c) by (job)",
		"sum without (instance, job) (c)", "topk(2, c)", "topk by (job) (1, c)",
		"c > bool 1", "1 == bool 1", "-c", "- -c", "c * -1", "# a comment\nc",
		"count_over_time(c[1m]) / 2", "sum by (on, bool) (c)",
	};
	struct pq_arena a = {0};

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct pq_err e = {.status = PROMQL_OK};
		struct pq_query q;
		int rc = pq_parse(&a, &e, ok[i], strlen(ok[i]), &q);

		if (rc != 0)
			print_error("%s: %s\n", ok[i], e.msg);
		assert_int_equal(rc, 0);
		pq_query_free(&q);
	}
	pq_arena_free(&a);
}

static void test_parse_numbers_and_precedence(void **state)
{
	(void)state;
	expect_instant("0x1f", 60, "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[60,\"31\"]}}");
	expect_instant("017 + 1e3", 60, "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[60,\"1015\"]}}");
	expect_instant("-2 ^ 2", 60, "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[60,\"-4\"]}}");
	expect_instant("2 ^ 3 ^ 2", 60, "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[60,\"512\"]}}");
	expect_instant("1 + 2 * 3 - 4 / 2", 60, "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[60,\"5\"]}}");
	expect_instant("7 % 4 == bool 3", 60, "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[60,\"1\"]}}");
	expect_instant("-Inf", 60, "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[60,\"-Inf\"]}}");
	expect_instant("nan", 60, "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[60,\"NaN\"]}}");
}

static void test_parse_refusals_name_the_construct(void **state)
{
	(void)state;
	expect_bad("{job=~\".*\"}", "1:1: parse error: vector selector must contain at least one non-empty matcher");
	expect_bad("{job=\"\"}", "1:1: parse error: vector selector must contain at least one non-empty matcher");
	expect_bad("", "1:1: parse error: no expression found in input");
	expect_bad("histogram_quantile(0.9, c)", "1:1: parse error: unsupported function \"histogram_quantile\"");
	expect_bad("foo(c)", "1:1: parse error: unknown function with name \"foo\"");
	expect_bad("c + g", "1:3: parse error: vector-vector binary operations are not supported");
	expect_bad("c and g", "1:3: parse error: set operator \"and\" is not supported");
	expect_bad("c + on(job) g", "1:5: parse error: vector matching (on) is not supported: vector-vector binary operations are not supported");
	expect_bad("rate(c[5m:1m])", "1:7: parse error: subqueries are not supported");
	expect_bad("c @ 100", "1:3: parse error: the @ modifier is not supported");
	expect_bad("stddev(c)", "1:1: parse error: unsupported aggregation \"stddev\"");
	expect_bad("1 == 1", "1:3: parse error: comparisons between scalars must use BOOL modifier");
	expect_bad("c + bool 1", "1:3: parse error: bool modifier can only be used on comparison operators");
	expect_bad("rate(c)", "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector");
	expect_bad("rate(c[1m], c[1m])", "1:1: parse error: expected 1 argument(s) in call to \"rate\", got 2");
	expect_bad("sum(c[1m])", "1:5: parse error: expected type instant vector in aggregation expression, got range vector");
	expect_bad("topk(c)", "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2, got 1");
	expect_bad("c[1m] + 1", "1:1: parse error: binary expression must contain only scalar and instant vector types");
	expect_bad("\"foo\"", "1:1: parse error: string results are not supported");
	expect_bad("c{job=~\"(\"}", "1:3: parse error: error parsing regexp (: Unmatched ( or \\(");
	expect_bad("c{job=~\"\\\\d\"}", "1:3: parse error: unsupported regular expression \\d: escapes such as \\d, \\s, \\w or \\b (regexes here are POSIX extended)");
	expect_bad("c{job=~\"(?i)a\"}", "1:3: parse error: unsupported regular expression (?i)a: groups with flags, (?...) (regexes here are POSIX extended)");
	expect_bad("c{__name__=\"g\"}", "1:1: parse error: metric name must not be set twice: \"c\" or \"g\"");
	expect_bad("(c)[5m]", "1:1: parse error: ranges only allowed for vector selectors");
	expect_bad("sum(c) offset 5m", "1:8: parse error: offset modifier must be preceded by an instant vector selector or range vector selector or a subquery");
	expect_bad("c offset 1m offset 2m", "1:13: parse error: offset may not be set multiple times");
	expect_bad("c[5x]", "1:3: parse error: bad number or duration syntax: \"5x\"");
	expect_bad("c{job=\"a}", "1:7: parse error: unterminated quoted string: '\"'");
	expect_bad("c}", "1:2: parse error: unexpected \"}\"");
	expect_bad("c{job=\"a\\x00\"}", "1:7: parse error: a label matcher's value must not contain a NUL byte");
	expect_bad("-c[1m]", "1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got \"range vector\"");
}

/* ---- selectors ---- */

static void test_selectors_each_matcher_type(void **state)
{
	(void)state;
	expect_one("c{job=\"web\"}", 60, "{\"__name__\":\"c\",\"instance\":\"a\",\"job\":\"web\"}", "140");
	expect_one("c{job!=\"api\"}", 60, "{\"__name__\":\"c\",\"instance\":\"a\",\"job\":\"web\"}", "140");
	expect_one("c{job=~\"w.b\"}", 60, "{\"__name__\":\"c\",\"instance\":\"a\",\"job\":\"web\"}", "140");
	expect_empty("c{job=~\"w\"}", 60); /* anchored */
	expect_one("c{job!~\"a.*\"}", 60, "{\"__name__\":\"c\",\"instance\":\"a\",\"job\":\"web\"}", "140");
	expect_one("{__name__=~\"g\",instance=\"b\"}", 30, "{\"__name__\":\"g\",\"instance\":\"b\"}", "9");
	/* An absent label matches "": only g has no job. */
	expect_instant("{__name__=~\"c|g\",job=\"\"}", 60,
		       VEC(S("{\"__name__\":\"g\",\"instance\":\"a\"}", 60, "3") ","
			   S("{\"__name__\":\"g\",\"instance\":\"b\"}", 60, "9")));
}

static void test_lookback_is_closed_at_five_minutes(void **state)
{
	(void)state;
	/* g{instance="b"} last point at 30s: seen at 330s exactly, gone at 331s. */
	expect_one("g{instance=\"b\"}", 330, "{\"__name__\":\"g\",\"instance\":\"b\"}", "9");
	expect_empty("g{instance=\"b\"}", 331);
	/* Not before its first point. */
	expect_empty("host_1_disk", 59);
}

static void test_range_selector_instant_query_is_a_matrix(void **state)
{
	(void)state;
	expect_instant("g{instance=\"b\"}[30s]", 45,
		       MAT("{\"metric\":{\"__name__\":\"g\",\"instance\":\"b\"},\"values\":[[15,\"4\"],[30,\"9\"]]}"));
}

/* ---- functions: values from Prometheus 2.42 (promtool agrees) ---- */

static void test_rate_increase_delta_irate(void **state)
{
	(void)state;
	/* All five points in [0, 60]; api/a starts at 0: the zero-point clamp leaves no
	 * extrapolation backwards; 40 over 60s. */
	expect_instant("rate(c[1m])", 60,
		       VEC(S(API_A, 60, "0.6666666666666666") "," S(WEB_A, 60, "0.6666666666666666")
			   "," S(API_B, 60, "0.5")));
	/* Counter reset (15 -> 3) counted: 15 + 20 - 5 = 30. */
	expect_one("increase(c{instance=\"b\"}[1m])", 60, API_B, "30");
	/* Extrapolation to a boundary within 1.1 average intervals: [20s, 60s] holds
	 * 30..60, 10s to the start: (30 + 10 + 0) / 30 * 20. */
	expect_one("increase(c{job=\"api\",instance=\"a\"}[40s])", 60, API_A, "26.666666666666664");
	/* Farther than 1.1 intervals: half an interval only (60 + 7.5) / 60 * 40 / 120. */
	expect_one("rate(c{job=\"web\"}[2m])", 60, WEB_A, "0.375");
	/* Clamp at zero: api/a would extrapolate below 0, so it starts at its zero. */
	expect_one("rate(c{job=\"api\",instance=\"a\"}[2m])", 60, API_A, "0.3333333333333333");
	expect_one("delta(c{instance=\"b\"}[2m])", 60, API_B, "16.875");
	expect_instant("delta(g[1m])", 60,
		       VEC(S("{\"instance\":\"a\"}", 60, "2") "," S("{\"instance\":\"b\"}", 60, "6.25")));
	expect_one("irate(c{instance=\"b\"}[1m])", 60, API_B, "0.8");
	expect_instant("irate(g[1m])", 60,
		       VEC(S("{\"instance\":\"a\"}", 60, "0.2") ","
			   S("{\"instance\":\"b\"}", 60, "0.3333333333333333")));
	expect_one("rate(c{instance=\"b\"}[1m])", 100, API_B, "0.36666666666666664");
	/* Fewer than two samples: no output. */
	expect_empty("rate(host_1_disk[5m])", 60);
}

static void test_over_time_functions(void **state)
{
	(void)state;
	expect_one("avg_over_time(g{instance=\"b\"}[1m])", 60, "{\"instance\":\"b\"}", "5.666666666666667");
	expect_one("avg_over_time(g{instance=\"a\"}[1m])", 60, "{\"instance\":\"a\"}", "3.8");
	expect_one("min_over_time(g{instance=\"a\"}[1m])", 60, "{\"instance\":\"a\"}", "1");
	expect_one("max_over_time(g{instance=\"a\"}[1m])", 60, "{\"instance\":\"a\"}", "8");
	expect_one("sum_over_time(g{instance=\"a\"}[1m])", 60, "{\"instance\":\"a\"}", "19");
	expect_one("count_over_time(g{instance=\"a\"}[1m])", 60, "{\"instance\":\"a\"}", "5");
	expect_one("count_over_time(g{instance=\"a\"}[30s] offset 15s)", 60, "{\"instance\":\"a\"}", "3");
}

static const struct mem_series kahan[] = {
	{"k", 4, {0, 15, 30, 45}, {1, 1e100, 1, -1e100}},
};

static void test_over_time_uses_kahan_summation(void **state)
{
	(void)state;
	use(kahan, 1);
	expect_one("sum_over_time(k[1m])", 45, "{}", "2");
	expect_one("avg_over_time(k[1m])", 45, "{}",
		     "-242833611528216130000000000000000000000000000000000000000000000000000000000000000000");
}

/* ---- aggregations ---- */

static void test_aggregations_by_and_without(void **state)
{
	(void)state;
	expect_one("sum(c)", 60, "{}", "200");
	expect_instant("sum by (job) (c)", 60,
		       VEC(S("{\"job\":\"api\"}", 60, "60") "," S("{\"job\":\"web\"}", 60, "140")));
	expect_instant("sum(c) without (instance)", 60,
		       VEC(S("{\"job\":\"api\"}", 60, "60") "," S("{\"job\":\"web\"}", 60, "140")));
	expect_instant("avg(c) by (job)", 60,
		       VEC(S("{\"job\":\"api\"}", 60, "30") "," S("{\"job\":\"web\"}", 60, "140")));
	expect_one("min(c)", 60, "{}", "20");
	expect_instant("max by (instance) (c)", 60,
		       VEC(S("{\"instance\":\"a\"}", 60, "140") "," S("{\"instance\":\"b\"}", 60, "20")));
	expect_one("count(c)", 60, "{}", "3");
	expect_one("count by (__name__) (c)", 60, "{\"__name__\":\"c\"}", "3");
	/* by a label nobody has: one group without it */
	expect_one("sum by (zone) (c)", 60, "{}", "200");
}

static void test_topk_keeps_labels_in_prometheus_order(void **state)
{
	(void)state;
	expect_instant("topk(2, c)", 60,
		       VEC(S("{\"__name__\":\"c\",\"instance\":\"a\",\"job\":\"web\"}", 60, "140") ","
			   S("{\"__name__\":\"c\",\"instance\":\"a\",\"job\":\"api\"}", 60, "40")));
	expect_instant("topk by (job) (1, c)", 60,
		       VEC(S("{\"__name__\":\"c\",\"instance\":\"a\",\"job\":\"api\"}", 60, "40") ","
			   S("{\"__name__\":\"c\",\"instance\":\"a\",\"job\":\"web\"}", 60, "140")));
	expect_empty("topk(0, c)", 60);
	expect_error("topk(NaN, c)", 60, 422, "execution", "Scalar value NaN overflows int64");
}

/* ---- operators ---- */

static void test_scalar_and_vector_operators(void **state)
{
	(void)state;
	expect_one("c{instance=\"b\"} * 2", 60, API_B, "40");
	expect_one("2 - c{instance=\"b\"}", 60, API_B, "-18");
	expect_one("c{instance=\"b\"} % 7", 60, API_B, "6");
	expect_one("c{instance=\"b\"} ^ 2", 60, API_B, "400");
	expect_one("c{instance=\"b\"} / 0", 60, API_B, "+Inf");
	expect_one("-c{instance=\"b\"}", 60, API_B, "-20");
	expect_one("+c{instance=\"b\"}", 60, "{\"__name__\":\"c\",\"instance\":\"b\",\"job\":\"api\"}", "20");
	/* Filtering comparisons keep the name and the vector's value, on either side. */
	expect_instant("30 < c", 60,
		       VEC(S("{\"__name__\":\"c\",\"instance\":\"a\",\"job\":\"api\"}", 60, "40") ","
			   S("{\"__name__\":\"c\",\"instance\":\"a\",\"job\":\"web\"}", 60, "140")));
	expect_instant("c > bool 20", 60,
		       VEC(S(API_A, 60, "1") "," S(WEB_A, 60, "1") "," S(API_B, 60, "0")));
	expect_instant("1 > bool 2", 60, "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[60,\"0\"]}}");
	expect_instant("(1 + 2) * 3", 60, "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[60,\"9\"]}}");
}

static const struct mem_series twins[] = {
	{"a{x=\"1\"}", 2, {0, 30}, {1, 2}},
	{"b{x=\"1\"}", 2, {0, 30}, {1, 2}},
};

static void test_same_labelset_after_dropping_the_name_fails(void **state)
{
	(void)state;
	use(twins, 2);
	expect_error("{x=\"1\"} * 2", 30, 422, "execution",
		     "vector cannot contain metrics with the same labelset");
	expect_error("rate({x=\"1\"}[1m])", 30, 422, "execution",
		     "vector cannot contain metrics with the same labelset");
	/* Filtering keeps the names apart. */
	expect_instant("{x=\"1\"} > 1", 30,
		       VEC(S("{\"__name__\":\"a\",\"x\":\"1\"}", 30, "2") ","
			   S("{\"__name__\":\"b\",\"x\":\"1\"}", 30, "2")));
}

static void test_offset_moves_the_window_back(void **state)
{
	(void)state;
	expect_one("c{instance=\"b\"} offset 30s", 60, "{\"__name__\":\"c\",\"instance\":\"b\",\"job\":\"api\"}", "3");
	expect_one("rate(c{instance=\"b\"}[30s] offset 15s)", 60, API_B, "0.26666666666666666");
	expect_one("increase(c{job=\"web\"}[1m] offset 30s)", 60, WEB_A, "25");
	expect_one("c{instance=\"b\"} offset -30s", 30, "{\"__name__\":\"c\",\"instance\":\"b\",\"job\":\"api\"}", "20");
}

/* ---- range queries ---- */

static void test_range_query_steps_from_start(void **state)
{
	(void)state;
	expect_range("g{instance=\"a\"}", 7, 67, 20,
		     MAT("{\"metric\":{\"__name__\":\"g\",\"instance\":\"a\"},\"values\":"
			 "[[7,\"1\"],[27,\"5\"],[47,\"8\"],[67,\"3\"]]}"));
	/* The end need not be a step: the last step is the last one <= end. */
	expect_range("sum(c)", 0, 70, 30,
		     MAT("{\"metric\":{},\"values\":[[0,\"105\"],[30,\"143\"],[60,\"200\"]]}"));
	expect_range("1 + 1", 0, 30, 15,
		     MAT("{\"metric\":{},\"values\":[[0,\"2\"],[15,\"2\"],[30,\"2\"]]}"));
	/* Series sorted by labels; a series only has the steps where it has a value. */
	expect_range("g", 30, 400, 300,
		     MAT("{\"metric\":{\"__name__\":\"g\",\"instance\":\"a\"},\"values\":[[30,\"2\"],[330,\"3\"]]},"
			 "{\"metric\":{\"__name__\":\"g\",\"instance\":\"b\"},\"values\":[[30,\"9\"],[330,\"9\"]]}"));
}

static void expect_range_error(const char *q, int64_t start, int64_t end, int64_t step,
			       const char *msg)
{
	int st = 0;
	struct json_object *b = promql_query_range(&store, &limits, q, strlen(q), start * MS,
						   end * MS, step * MS, &st);

	expect_body_error(b, st, 400, "bad_data", msg);
}

static void test_range_query_refusals(void **state)
{
	int st;
	char *body;

	(void)state;
	expect_range_error("1", 0, 11001, 1,
			   "exceeded maximum resolution of 11,000 points per timeseries. Try "
			   "decreasing the query resolution (?step=XX)");
	body = range("1", 0, 11000, 1, &st);
	assert_int_equal(st, 200);
	free(body);
	expect_range_error("1", 10, 0, 1,
			   "invalid parameter \"end\": end timestamp must not be before start time");
	expect_range_error("1", 0, 10, 0,
			   "invalid parameter \"step\": zero or negative query resolution step "
			   "widths are not accepted. Try a positive integer");
	expect_range_error("c[5m]", 0, 10, 1,
			   "invalid parameter \"query\": invalid expression type \"range vector\" "
			   "for range query, must be Scalar or instant Vector");
	expect_range_error("c +", 0, 10, 1,
			   "invalid parameter \"query\": 1:4: parse error: unexpected end of input");
}

/* rate over a range query: the same label set from two names at different steps is
 * still one matrix with a label set twice, which Prometheus refuses. */
static const struct mem_series relay[] = {
	{"a{x=\"1\"}", 3, {0, 15, 30}, {1, 2, 3}},
	{"b{x=\"1\"}", 3, {500, 515, 530}, {1, 2, 3}},
};

static void test_range_query_function_output_checked_over_all_steps(void **state)
{
	int st = 0;
	struct json_object *b;
	const char *q = "rate({x=\"1\"}[1m])";

	(void)state;
	use(relay, 2);
	b = promql_query_range(&store, &limits, q, strlen(q), 0, 600 * MS, 30 * MS, &st);
	expect_body_error(b, st, 422, "execution", "vector cannot contain metrics with the same labelset");
}

/* ---- names, metadata, limits ---- */

static const struct mem_series clash[] = {
	{"cpu_load", 1, {60}, {1}},
	{"cpu.load", 1, {60}, {2}},
};

static void test_json_api_names_and_collisions(void **state)
{
	(void)state;
	expect_one("cpu_load", 60, "{\"__name__\":\"cpu_load\"}", "0.25");
	expect_one("host_1_disk", 60, "{\"__name__\":\"host_1_disk\"}", "7");
	expect_one("_9lives", 60, "{\"__name__\":\"_9lives\"}", "9");
	use(clash, 2);
	expect_error("cpu_load", 60, 422, "execution",
		     "the stored series \"cpu.load\" and \"cpu_load\" read as the same labels; "
		     "select only one of them");
	/* Outside the window neither is selected: no conflict. */
	expect_empty("cpu_load", 30);
}

/* The body as text; *st (set by the call that made b) must be want_status. */
static char *meta_text(struct json_object *b, const int *st, int want_status)
{
	int got;
	char *text = body_text(b, *st, &got);

	assert_int_equal(got, want_status);
	return text;
}

static void test_series_labels_and_label_values(void **state)
{
	const char *m[] = {"c{job=\"api\"}", "g{instance=\"b\"}", "{job=~\".*\"}"};
	size_t ml[] = {strlen(m[0]), strlen(m[1]), strlen(m[2])};
	struct json_object *b;
	int st = 0;
	char *t;

	(void)state;
	t = meta_text(promql_series(&store, &limits, m, ml, 2, INT64_MIN, INT64_MAX, &st), &st, 200);
	assert_string_equal(t, "{\"status\":\"success\",\"data\":[{\"__name__\":\"c\",\"instance\":\"a\",\"job\":\"api\"},"
			       "{\"__name__\":\"c\",\"instance\":\"b\",\"job\":\"api\"},{\"__name__\":\"g\",\"instance\":\"b\"}]}");
	free(t);
	t = meta_text(promql_labels(&store, &limits, NULL, NULL, 0, INT64_MIN, INT64_MAX, &st), &st, 200);
	assert_string_equal(t, "{\"status\":\"success\",\"data\":[\"__name__\",\"instance\",\"job\"]}");
	free(t);
	t = meta_text(promql_label_values(&store, &limits, "__name__", 8, NULL, NULL, 0, INT64_MIN,
					  INT64_MAX, &st), &st, 200);
	assert_string_equal(t, "{\"status\":\"success\",\"data\":[\"_9lives\",\"c\",\"cpu_load\",\"g\",\"host_1_disk\"]}");
	free(t);
	t = meta_text(promql_label_values(&store, &limits, "job", 3, m, ml, 1, INT64_MIN, INT64_MAX,
					  &st), &st, 200);
	assert_string_equal(t, "{\"status\":\"success\",\"data\":[\"api\"]}");
	free(t);
	/* Bounded by first/last times: nothing has a point after 60s; g{b} ends at 30s. */
	t = meta_text(promql_labels(&store, &limits, NULL, NULL, 0, 61 * MS, INT64_MAX, &st), &st, 200);
	assert_string_equal(t, "{\"status\":\"success\",\"data\":[]}");
	free(t);
	t = meta_text(promql_series(&store, &limits, m + 1, ml + 1, 1, 31 * MS, 100 * MS, &st), &st, 200);
	assert_string_equal(t, "{\"status\":\"success\",\"data\":[]}");
	free(t);
	b = promql_series(&store, &limits, NULL, NULL, 0, INT64_MIN, INT64_MAX, &st);
	expect_body_error(b, st, 400, "bad_data", "no match[] parameter provided");
	b = promql_series(&store, &limits, m + 2, ml + 2, 1, INT64_MIN, INT64_MAX, &st);
	expect_body_error(b, st, 400, "bad_data",
			  "invalid parameter \"match[]\": 1:1: parse error: vector selector must "
			  "contain at least one non-empty matcher");
	b = promql_label_values(&store, &limits, "a-b", 3, NULL, NULL, 0, INT64_MIN, INT64_MAX, &st);
	expect_body_error(b, st, 400, "bad_data", "invalid label name: \"a-b\"");
}

static void test_limits_fail_while_loading(void **state)
{
	(void)state;
	limits.max_series = 2;
	expect_error("c", 60, 422, "execution",
		     "the query selects more than 2 series (the limit max_series): narrow the "
		     "selector or the time range");
	assert_int_equal(mem.points_calls, 0);
	limits.max_series = BIG_LIMIT;
	limits.max_points = 4;
	expect_error("g{instance=\"a\"}", 60, 422, "execution",
		     "the query loads more than 4 samples (the limit max_points): narrow the "
		     "selector or the time range");
	limits.max_points = 5;
	expect_one("g{instance=\"a\"}", 60, "{\"__name__\":\"g\",\"instance\":\"a\"}", "3");
	/* A series with no point in the window is never read. */
	mem.points_calls = 0;
	expect_empty("host_1_disk", 30);
	assert_int_equal(mem.points_calls, 0);
	mem.fail = 1;
	expect_error("c", 60, 500, "internal", "storage error listing the series");
}

/* ---- formatting, parameters, names ---- */

static void expect_float(double v, const char *text)
{
	char got[PQ_FLOAT_MAX];

	pq_format_float(got, sizeof(got), v);
	assert_string_equal(got, text);
}

static void test_values_formatted_as_go_does(void **state)
{
	char got[PQ_FLOAT_MAX];

	(void)state;
	expect_float(0.1, "0.1");
	expect_float(1e21, "1000000000000000000000");
	expect_float(1e-7, "0.0000001");
	expect_float(123.456, "123.456");
	expect_float(-2.5, "-2.5");
	expect_float(0, "0");
	expect_float(-0.0, "-0");
	expect_float(1.0 / 3, "0.3333333333333333");
	expect_float(NAN, "NaN");
	expect_float(INFINITY, "+Inf");
	expect_float(-INFINITY, "-Inf");
	pq_format_float(got, sizeof(got), 5e-324);
	assert_int_equal(strlen(got), 2 + 323 + 1);
	assert_string_equal(got + strlen(got) - 2, "05");
	pq_format_float(got, sizeof(got), 1.7976931348623157e308);
	assert_int_equal(strlen(got), 309);
	assert_memory_equal(got, "17976931348623157", 17);
	expect_instant("0.5", 1718841600,
		       "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1718841600,\"0.5\"]}}");
}

static void test_timestamps_in_seconds_with_milliseconds(void **state)
{
	int st = 0;
	struct json_object *b = promql_query_instant(&store, &limits, "1", 1, 1718841600500, &st);
	char *t = body_text(b, st, &st);

	(void)state;
	assert_string_equal(t, "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1718841600.5,\"1\"]}}");
	free(t);
	b = pq_json_time(-1230);
	assert_string_equal(json_object_to_json_string(b), "-1.23");
	json_object_put(b);
	b = pq_json_time(1718841600007);
	assert_string_equal(json_object_to_json_string(b), "1718841600.007");
	json_object_put(b);
}

static int64_t time_of(const char *s)
{
	int64_t ms = 0;

	assert_int_equal(promql_parse_time(s, strlen(s), &ms), 0);
	return ms;
}

static int64_t duration_of(const char *s)
{
	int64_t ms = 0;

	assert_int_equal(promql_parse_duration(s, strlen(s), &ms), 0);
	return ms;
}

static void test_time_and_duration_parameters(void **state)
{
	int64_t ms;

	(void)state;
	assert_int_equal(time_of("1718841600"), 1718841600000);
	assert_int_equal(time_of("1718841600.5"), 1718841600500);
	assert_int_equal(time_of("0.0015"), 2);
	assert_int_equal(time_of("-1.5"), -1500);
	assert_int_equal(time_of("2024-06-20T00:00:00Z"), 1718841600000);
	assert_int_equal(time_of("2024-06-20T02:00:00.5+02:00"), 1718841600500);
	assert_int_equal(time_of("1969-12-31T23:59:59.999Z"), -1);
	assert_int_equal(promql_parse_time("yesterday", 9, &ms), -1);
	assert_int_equal(promql_parse_time("2024-02-30T00:00:00Z", 20, &ms), -1);
	assert_int_equal(promql_parse_time("", 0, &ms), -1);
	assert_int_equal(duration_of("5m"), 300000);
	assert_int_equal(duration_of("1h30m"), 5400000);
	assert_int_equal(duration_of("1.5"), 1500);
	assert_int_equal(duration_of("15"), 15000);
	assert_int_equal(duration_of("100ms"), 100);
	assert_int_equal(promql_parse_duration("5x", 2, &ms), -1);
	assert_int_equal(promql_parse_duration("30m1h", 5, &ms), -1);
	assert_int_equal(promql_parse_duration("", 0, &ms), -1);
}

static void expect_labels(const char *name, const char *want)
{
	struct series_labels sl = {0};
	char got[512];
	size_t len = 0;

	assert_int_equal(series_labels_parse(&sl, name, strlen(name)), 0);
	for (size_t i = 0; i < sl.n; i++)
		len += (size_t)snprintf(got + len, sizeof(got) - len, "%s%s=%s", i ? "|" : "",
					sl.v[i].name, sl.v[i].value);
	assert_string_equal(got, want);
	series_labels_free(&sl);
}

static void test_series_names_read_back_as_labels(void **state)
{
	(void)state;
	expect_labels("up", "__name__=up");
	expect_labels("a:b{Z=\"1\",y=\"x\\\\y\\\"z\\nw\"}", "Z=1|__name__=a:b|y=x\\y\"z\nw");
	expect_labels("m{b=\"1\",a=\"2\"}", "__name__=m|a=2|b=1");
	expect_labels("m{a=\"\"}", "__name__=m");
	expect_labels("m{}", "__name__=m");
	expect_labels("m{__name__=\"x\"}", "__name__=m___name____x__");
	expect_labels("m{a=\"1\",a=\"2\"}", "__name__=m_a__1__a__2__");
	expect_labels("m{a=\"\\t\"}", "__name__=m_a___t__");
	expect_labels("cpu.load", "__name__=cpu_load");
	expect_labels("host-1/disk", "__name__=host_1_disk");
	expect_labels("9lives", "__name__=_9lives");
	expect_labels("m{a=\"1\"", "__name__=m_a__1_");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup(name, reset)
	const struct CMUnitTest tests[] = {
		T(test_parse_accepts_the_supported_forms),
		T(test_parse_numbers_and_precedence),
		T(test_parse_refusals_name_the_construct),
		T(test_selectors_each_matcher_type),
		T(test_lookback_is_closed_at_five_minutes),
		T(test_range_selector_instant_query_is_a_matrix),
		T(test_rate_increase_delta_irate),
		T(test_over_time_functions),
		T(test_over_time_uses_kahan_summation),
		T(test_aggregations_by_and_without),
		T(test_topk_keeps_labels_in_prometheus_order),
		T(test_scalar_and_vector_operators),
		T(test_same_labelset_after_dropping_the_name_fails),
		T(test_offset_moves_the_window_back),
		T(test_range_query_steps_from_start),
		T(test_range_query_refusals),
		T(test_range_query_function_output_checked_over_all_steps),
		T(test_json_api_names_and_collisions),
		T(test_series_labels_and_label_values),
		T(test_limits_fail_while_loading),
		T(test_values_formatted_as_go_does),
		T(test_timestamps_in_seconds_with_milliseconds),
		T(test_time_and_duration_parameters),
		T(test_series_names_read_back_as_labels),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
