/*
 * test_route.c - the public API's routing table (what each route needs and counts
 * as), path patterns, and query-parameter decoding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "temporis/http/routes.h"
#include "temporis/http/uri.h"

#define QBUF 64

static struct route_match m;

static enum route_id route(enum http_method method, const char *path)
{
	route_match(method, path, &m);
	return m.id;
}

static void test_healthz_and_metrics_answer_get_and_head(void **state)
{
	assert_int_equal(route(HTTP_GET, "/healthz"), ROUTE_HEALTHZ);
	assert_int_equal(route(HTTP_HEAD, "/healthz"), ROUTE_HEALTHZ);
	assert_int_equal(route(HTTP_GET, "/metrics"), ROUTE_METRICS);
	assert_int_equal(route(HTTP_HEAD, "/metrics"), ROUTE_METRICS);
	assert_int_equal(route(HTTP_POST, "/healthz"), ROUTE_METHOD_NOT_ALLOWED);
	assert_string_equal(m.allow, "GET");
	assert_int_equal(route(HTTP_DELETE, "/metrics"), ROUTE_METHOD_NOT_ALLOWED);
	assert_string_equal(m.allow, "GET");
}

static void test_ingest_is_post_only(void **state)
{
	assert_int_equal(route(HTTP_POST, "/v1/data_sources/ingest"), ROUTE_INGEST);
	assert_int_equal(route(HTTP_GET, "/v1/data_sources/ingest"), ROUTE_METHOD_NOT_ALLOWED);
	assert_string_equal(m.allow, "POST");
	assert_int_equal(route(HTTP_PUT, "/v1/data_sources/ingest"), ROUTE_METHOD_NOT_ALLOWED);
	assert_string_equal(m.allow, "POST");
}

static void test_sources_collection_lists_and_creates(void **state)
{
	assert_int_equal(route(HTTP_GET, "/v1/data_sources"), ROUTE_SOURCES_LIST);
	assert_int_equal(route(HTTP_HEAD, "/v1/data_sources"), ROUTE_SOURCES_LIST);
	assert_int_equal(route(HTTP_POST, "/v1/data_sources"), ROUTE_SOURCES_CREATE);
	assert_int_equal(route(HTTP_DELETE, "/v1/data_sources"), ROUTE_METHOD_NOT_ALLOWED);
	assert_string_equal(m.allow, "GET, POST");
	assert_int_equal(route(HTTP_OTHER, "/v1/data_sources"), ROUTE_METHOD_NOT_ALLOWED);
	assert_string_equal(m.allow, "GET, POST");
}

static void test_source_routes_carry_the_name(void **state)
{
	assert_int_equal(route(HTTP_GET, "/v1/data_sources/grid_load"), ROUTE_SOURCE_GET);
	assert_string_equal(m.name, "grid_load");
	assert_int_equal(m.name_len, 9);
	assert_int_equal(route(HTTP_HEAD, "/v1/data_sources/grid_load"), ROUTE_SOURCE_GET);
	assert_int_equal(route(HTTP_POST, "/v1/data_sources/a/archive"), ROUTE_SOURCE_ARCHIVE);
	assert_string_equal(m.name, "a");
	assert_int_equal(route(HTTP_POST, "/v1/data_sources/a/unarchive"), ROUTE_SOURCE_UNARCHIVE);
	assert_int_equal(route(HTTP_GET, "/v1/data_sources/s1/series"), ROUTE_SOURCE_SERIES);
	assert_string_equal(m.name, "s1");
	assert_int_equal(route(HTTP_HEAD, "/v1/data_sources/s1/series"), ROUTE_SOURCE_SERIES);
	assert_int_equal(route(HTTP_GET, "/v1/data_sources/s1/records"), ROUTE_SOURCE_RECORDS);
	assert_int_equal(route(HTTP_HEAD, "/v1/data_sources/s1/records"), ROUTE_SOURCE_RECORDS);
}

static void test_wrong_method_on_source_routes_names_allow(void **state)
{
	assert_int_equal(route(HTTP_POST, "/v1/data_sources/x"), ROUTE_METHOD_NOT_ALLOWED);
	assert_string_equal(m.allow, "GET, PATCH");
	assert_int_equal(route(HTTP_DELETE, "/v1/data_sources/x"), ROUTE_METHOD_NOT_ALLOWED);
	assert_string_equal(m.allow, "GET, PATCH");
	assert_int_equal(route(HTTP_PATCH, "/v1/data_sources/x"), ROUTE_SOURCE_UPDATE);
	assert_string_equal(m.name, "x");
	assert_int_equal(route(HTTP_GET, "/v1/data_sources/x/archive"), ROUTE_METHOD_NOT_ALLOWED);
	assert_string_equal(m.allow, "POST");
	assert_int_equal(route(HTTP_HEAD, "/v1/data_sources/x/unarchive"),
			 ROUTE_METHOD_NOT_ALLOWED);
	assert_string_equal(m.allow, "POST");
	assert_int_equal(route(HTTP_POST, "/v1/data_sources/x/series"), ROUTE_METHOD_NOT_ALLOWED);
	assert_string_equal(m.allow, "GET");
	assert_int_equal(route(HTTP_PUT, "/v1/data_sources/x/records"), ROUTE_METHOD_NOT_ALLOWED);
	assert_string_equal(m.allow, "GET");
}

static void test_unknown_paths_are_not_found(void **state)
{
	static const char *const paths[] = {
		"", "/healthz/", "/metrics/x", "/v1", "/v1/", "/v1/data_sources/",
		"/v1/data_sourcesX", "/v1/data_sources//series", "/v1/data_sources/x/",
		"/v1/data_sources/x/series/", "/v1/data_sources/x/other", "/v1/data_sources/x/y/z",
		"/v1/data_sources/ingest/", "/V1/data_sources", "/v2/data_sources",
	};

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		assert_int_equal(route(HTTP_GET, paths[i]), ROUTE_NOT_FOUND);
		assert_null(m.allow);
		assert_int_equal(route(HTTP_POST, paths[i]), ROUTE_NOT_FOUND);
	}
}

static void test_dashboard_paths_are_static_get_only(void **state)
{
	static const char *const paths[] = {
		"/", "/static/app.js", "/static/", "/javascript/dygraphs/dygraph.min.js",
		"/static/../etc/passwd",
	};

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		assert_int_equal(route(HTTP_GET, paths[i]), ROUTE_STATIC);
		assert_int_equal(route(HTTP_HEAD, paths[i]), ROUTE_STATIC);
		assert_int_equal(route(HTTP_POST, paths[i]), ROUTE_METHOD_NOT_ALLOWED);
		assert_string_equal(m.allow, "GET");
	}
}

static void test_near_dashboard_paths_are_not_found(void **state)
{
	static const char *const paths[] = {
		"//", "/static", "/staticx/a.js", "/javascript", "/index.html", "/Static/app.js",
	};

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		assert_int_equal(route(HTTP_GET, paths[i]), ROUTE_NOT_FOUND);
}

static void test_source_name_is_percent_decoded(void **state)
{
	assert_int_equal(route(HTTP_GET, "/v1/data_sources/a%5Fb%2fc"), ROUTE_SOURCE_GET);
	assert_string_equal(m.name, "a_b/c");
	assert_int_equal(m.name_len, 5);
	assert_int_equal(route(HTTP_GET, "/v1/data_sources/a+b/series"), ROUTE_SOURCE_SERIES);
	assert_string_equal(m.name, "a+b");
	assert_int_equal(route(HTTP_GET, "/v1/data_sources/%41"), ROUTE_SOURCE_GET);
	assert_string_equal(m.name, "A");
}

static void test_malformed_or_long_names_are_not_found(void **state)
{
	char path[ROUTE_NAME_MAX * 3 + 64];
	char name[ROUTE_NAME_MAX + 2];

	assert_int_equal(route(HTTP_GET, "/v1/data_sources/a%2"), ROUTE_NOT_FOUND);
	assert_int_equal(route(HTTP_GET, "/v1/data_sources/a%zz"), ROUTE_NOT_FOUND);
	assert_int_equal(route(HTTP_GET, "/v1/data_sources/%"), ROUTE_NOT_FOUND);
	assert_int_equal(route(HTTP_GET, "/v1/data_sources/a%00b"), ROUTE_NOT_FOUND);

	memset(name, 'a', ROUTE_NAME_MAX);
	name[ROUTE_NAME_MAX] = '\0';
	snprintf(path, sizeof(path), "/v1/data_sources/%s", name);
	assert_int_equal(route(HTTP_GET, path), ROUTE_SOURCE_GET);
	assert_int_equal(m.name_len, ROUTE_NAME_MAX);

	name[ROUTE_NAME_MAX] = 'a';
	name[ROUTE_NAME_MAX + 1] = '\0';
	snprintf(path, sizeof(path), "/v1/data_sources/%s/series", name);
	assert_int_equal(route(HTTP_GET, path), ROUTE_NOT_FOUND);

	/* 255 decoded bytes written as %61 each: long on the wire, fits once decoded. */
	strcpy(path, "/v1/data_sources/");
	for (int i = 0; i < ROUTE_NAME_MAX; i++)
		strcat(path, "%61");
	assert_int_equal(route(HTTP_GET, path), ROUTE_SOURCE_GET);
	assert_int_equal(m.name_len, ROUTE_NAME_MAX);
}

static void test_each_route_counts_under_its_label(void **state)
{
	assert_int_equal(route_label(ROUTE_INGEST), METRIC_ROUTE_INGEST);
	assert_int_equal(route_label(ROUTE_SOURCES_LIST), METRIC_ROUTE_SOURCES);
	assert_int_equal(route_label(ROUTE_SOURCES_CREATE), METRIC_ROUTE_SOURCES);
	assert_int_equal(route_label(ROUTE_SOURCE_GET), METRIC_ROUTE_SOURCE);
	assert_int_equal(route_label(ROUTE_SOURCE_ARCHIVE), METRIC_ROUTE_ARCHIVE);
	assert_int_equal(route_label(ROUTE_SOURCE_UNARCHIVE), METRIC_ROUTE_ARCHIVE);
	assert_int_equal(route_label(ROUTE_SOURCE_SERIES), METRIC_ROUTE_SERIES);
	assert_int_equal(route_label(ROUTE_SOURCE_RECORDS), METRIC_ROUTE_RECORDS);
	assert_int_equal(route_label(ROUTE_HEALTHZ), METRIC_ROUTE_HEALTHZ);
	assert_int_equal(route_label(ROUTE_METRICS), METRIC_ROUTE_METRICS);
	assert_int_equal(route_label(ROUTE_STATIC), ROUTE_NOT_COUNTED);
	assert_int_equal(route_label(ROUTE_NOT_FOUND), METRIC_ROUTE_OTHER);
	assert_int_equal(route_label(ROUTE_METHOD_NOT_ALLOWED), METRIC_ROUTE_OTHER);
}

static void test_matched_row_names_its_token_rule_and_handlers(void **state)
{
	static const struct {
		enum http_method method;
		const char *path;
		bool auth;
	} cases[] = {
		{ HTTP_GET, "/healthz", false },         { HTTP_HEAD, "/metrics", false },
		{ HTTP_GET, "/static/app.js", false },   { HTTP_POST, "/v1/data_sources/ingest", true },
		{ HTTP_GET, "/v1/data_sources", true },  { HTTP_POST, "/v1/data_sources", true },
		{ HTTP_GET, "/v1/data_sources/a", true }, { HTTP_GET, "/v1/data_sources/a/records", true },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		route(cases[i].method, cases[i].path);
		assert_non_null(m.row);
		assert_int_equal(m.row->id, m.id);
		assert_int_equal(m.row->auth, cases[i].auth);
		/* A row without a body handler must answer from the head. */
		assert_true(m.row->on_body != NULL || m.row->on_head != NULL);
	}
	assert_int_equal(route(HTTP_GET, "/nope"), ROUTE_NOT_FOUND);
	assert_null(m.row);
	assert_int_equal(route(HTTP_PUT, "/healthz"), ROUTE_METHOD_NOT_ALLOWED);
	assert_null(m.row);
}

static void test_patterns_capture_one_decoded_segment(void **state)
{
	char name[ROUTE_NAME_MAX + 1];
	size_t len = 99;

	assert_true(uri_match("/a/{name}/b", "/a/x%20y/b", name, sizeof(name), &len));
	assert_string_equal(name, "x y");
	assert_int_equal(len, 3);
	assert_false(uri_match("/a/{name}/b", "/a//b", name, sizeof(name), &len));
	assert_false(uri_match("/a/{name}/b", "/a/x/b/", name, sizeof(name), &len));
	assert_false(uri_match("/a/{name}", "/a/x%zz", name, sizeof(name), &len));
	assert_false(uri_match("/a/{name}", "/a/toolong", name, 4, &len));
	assert_true(uri_match("/a", "/a", name, sizeof(name), &len));
	assert_int_equal(len, 0);
	assert_false(uri_match("/a", "/a/", name, sizeof(name), &len));
	assert_true(uri_match("/p/*", "/p/", name, sizeof(name), &len));
	assert_true(uri_match("/p/*", "/p/q/../r", name, sizeof(name), &len));
	assert_false(uri_match("/p/*", "/p", name, sizeof(name), &len));
}

static void test_query_param_missing_and_empty(void **state)
{
	char buf[QBUF];

	assert_int_equal(uri_query_param(NULL, "name", buf, sizeof(buf)), -1);
	assert_int_equal(uri_query_param("", "name", buf, sizeof(buf)), -1);
	assert_int_equal(uri_query_param("start=1&end=2", "name", buf, sizeof(buf)), -1);
	assert_int_equal(uri_query_param("names=x&nam=y", "name", buf, sizeof(buf)), -1);
	assert_int_equal(uri_query_param("name=", "name", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	assert_int_equal(uri_query_param("a=1&name&b=2", "name", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
}

static void test_query_param_decodes_plus_and_escapes(void **state)
{
	char buf[QBUF];

	assert_int_equal(uri_query_param("name=cpu+load", "name", buf, sizeof(buf)), 8);
	assert_string_equal(buf, "cpu load");
	assert_int_equal(uri_query_param("x=1&name=a%2Bb%20c%c3%A9", "name", buf, sizeof(buf)),
			 7);
	assert_string_equal(buf, "a+b c\xc3\xa9");
	assert_int_equal(uri_query_param("start=-5&limit=10", "limit", buf, sizeof(buf)), 2);
	assert_string_equal(buf, "10");
	assert_int_equal(uri_query_param("na%6De=v", "name", buf, sizeof(buf)), 1);
	assert_string_equal(buf, "v");
	assert_int_equal(uri_query_param("name=a=b", "name", buf, sizeof(buf)), 3);
	assert_string_equal(buf, "a=b");
}

static void test_query_param_first_occurrence_wins(void **state)
{
	char buf[QBUF];

	assert_int_equal(uri_query_param("name=first&name=second", "name", buf, sizeof(buf)), 5);
	assert_string_equal(buf, "first");
	assert_int_equal(uri_query_param("&&name=x&", "name", buf, sizeof(buf)), 1);
	assert_string_equal(buf, "x");
}

static void test_query_param_malformed_or_too_long(void **state)
{
	char buf[QBUF];
	char big[QBUF + 16];

	assert_int_equal(uri_query_param("name=%4", "name", buf, sizeof(buf)), -2);
	assert_int_equal(uri_query_param("name=%g1&x=1", "name", buf, sizeof(buf)), -2);
	assert_int_equal(uri_query_param("name=a%00", "name", buf, sizeof(buf)), -2);
	assert_int_equal(uri_query_param("name=abcd", "name", buf, 4), -2);
	assert_int_equal(uri_query_param("name=abc", "name", buf, 4), 3);
	assert_string_equal(buf, "abc");
	assert_int_equal(uri_query_param("name=", "name", buf, 0), -2);

	strcpy(big, "name=");
	memset(big + 5, 'x', QBUF);
	big[5 + QBUF] = '\0';
	assert_int_equal(uri_query_param(big, "name", buf, sizeof(buf)), -2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_healthz_and_metrics_answer_get_and_head),
		cmocka_unit_test(test_ingest_is_post_only),
		cmocka_unit_test(test_sources_collection_lists_and_creates),
		cmocka_unit_test(test_source_routes_carry_the_name),
		cmocka_unit_test(test_wrong_method_on_source_routes_names_allow),
		cmocka_unit_test(test_unknown_paths_are_not_found),
		cmocka_unit_test(test_dashboard_paths_are_static_get_only),
		cmocka_unit_test(test_near_dashboard_paths_are_not_found),
		cmocka_unit_test(test_source_name_is_percent_decoded),
		cmocka_unit_test(test_malformed_or_long_names_are_not_found),
		cmocka_unit_test(test_each_route_counts_under_its_label),
		cmocka_unit_test(test_matched_row_names_its_token_rule_and_handlers),
		cmocka_unit_test(test_patterns_capture_one_decoded_segment),
		cmocka_unit_test(test_query_param_missing_and_empty),
		cmocka_unit_test(test_query_param_decodes_plus_and_escapes),
		cmocka_unit_test(test_query_param_first_occurrence_wins),
		cmocka_unit_test(test_query_param_malformed_or_too_long),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
