/*
 * test_parse.c - HTTP/1.1 request syntax without a socket: where a head ends, the
 * request line and header fields, body framing and keep-alive, what the head asks of
 * its body, and the lines of a chunked body (src/http/parse.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "temporis/http/parse.h"

#define HEAD_MAX 8192
#define NO_LIMIT UINT64_MAX

static char head[HTTP_HEAD_ROOM(HEAD_MAX)];
static struct http_req req;
static bool keep_alive;

/* Parse text as a complete head, the way server.c hands one over. */
static int parse(const char *text)
{
	size_t len = strlen(text);

	assert_true(len <= HEAD_MAX);
	memcpy(head, text, len + 1);
	memset(&req, 0, sizeof(req));
	req.content_length = -1;
	keep_alive = false;
	return http_parse_head(head, len, &req, &keep_alive);
}

static void test_head_ends_at_the_first_blank_line(void **state)
{
	const char *crlf = "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /next";
	const char *lf = "GET / HTTP/1.1\nHost: a\n\nrest";
	size_t scan = 0;

	assert_int_equal(http_head_end(crlf, strlen(crlf), &scan), 27);
	scan = 0;
	assert_int_equal(http_head_end(lf, strlen(lf), &scan), 24);
}

static void test_head_end_resumes_where_it_stopped(void **state)
{
	const char *text = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
	size_t scan = 0;

	assert_int_equal(http_head_end(text, 20, &scan), 0);
	assert_true(scan > 0 && scan <= 20);
	assert_int_equal(http_head_end(text, 26, &scan), 0);
	assert_int_equal(http_head_end(text, strlen(text), &scan), strlen(text));
}

static void test_request_line_and_fields_are_split_in_place(void **state)
{
	assert_int_equal(parse("POST /v1/x?a=1&b HTTP/1.1\r\nHost:  h \r\nX-Y:\tz\t\r\n\r\n"), 0);
	assert_int_equal(req.method, HTTP_POST);
	assert_string_equal(req.method_str, "POST");
	assert_string_equal(req.target, "/v1/x?a=1&b");
	assert_string_equal(req.path, "/v1/x");
	assert_string_equal(req.query, "a=1&b");
	assert_int_equal(req.version_minor, 1);
	assert_int_equal(req.nheaders, 2);
	assert_string_equal(http_header(&req, "host"), "h");
	assert_string_equal(http_header(&req, "X-Y"), "z");
	assert_null(http_header(&req, "Content-Length"));
	assert_int_equal(req.content_length, -1);
	assert_false(req.chunked);
}

static void test_unknown_methods_are_other_and_no_query_is_null(void **state)
{
	assert_int_equal(parse("BREW /pot HTTP/1.1\r\n\r\n"), 0);
	assert_int_equal(req.method, HTTP_OTHER);
	assert_string_equal(req.method_str, "BREW");
	assert_null(req.query);
	assert_int_equal(parse("HEAD / HTTP/1.0\n\n"), 0);
	assert_int_equal(req.method, HTTP_HEAD);
	assert_int_equal(req.version_minor, 0);
}

static void test_malformed_heads_are_400(void **state)
{
	static const char *const heads[] = {
		"\r\n\r\n",
		"GET /\r\n\r\n",
		"GET  / HTTP/1.1\r\n\r\n",
		"G(T / HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1\r\nNo colon\r\n\r\n",
		"GET / HTTP/1.1\r\nBad name: x\r\n\r\n",
		"GET / HTTP/1.1\r\nA: 1\r\n folded\r\n\r\n",
		"GET / HTTP/1.1\r\nA: b\x01\r\n\r\n",
		"GET / HTTP/1.x\r\n\r\n",
		"GET / http/1.1\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
		"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n",
		"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
	};

	for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++)
		assert_int_equal(parse(heads[i]), 400);
}

static void test_a_nul_byte_anywhere_is_400(void **state)
{
	static const char text[] = "GET / HTTP/1.1\r\nA: b\0c\r\n\r\n";

	memcpy(head, text, sizeof(text));
	memset(&req, 0, sizeof(req));
	assert_int_equal(http_parse_head(head, sizeof(text) - 1, &req, &keep_alive), 400);
}

static void test_versions_and_codings_we_do_not_speak(void **state)
{
	assert_int_equal(parse("GET / HTTP/2.0\r\n\r\n"), 505);
	assert_int_equal(parse("GET / HTTP/1.2\r\n\r\n"), 505);
	assert_int_equal(parse("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"), 501);
}

static void test_too_many_fields_is_431(void **state)
{
	char text[HEAD_MAX];
	size_t n = (size_t)snprintf(text, sizeof(text), "GET / HTTP/1.1\r\n");

	for (int i = 0; i <= HTTP_MAX_HEADERS; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "H%d: v\r\n", i);
	snprintf(text + n, sizeof(text) - n, "\r\n");
	assert_int_equal(parse(text), 431);
}

static void test_framing_reads_length_or_chunked(void **state)
{
	assert_int_equal(parse("POST / HTTP/1.1\r\nContent-Length: 42\r\n\r\n"), 0);
	assert_int_equal(req.content_length, 42);
	assert_int_equal(parse("POST / HTTP/1.1\r\ncontent-length: 7\r\nContent-Length: 7\r\n\r\n"),
			 0);
	assert_int_equal(req.content_length, 7);
	assert_int_equal(parse("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n"), 0);
	assert_true(req.chunked);
	assert_int_equal(req.content_length, -1);
}

static void test_keep_alive_follows_version_and_connection(void **state)
{
	assert_int_equal(parse("GET / HTTP/1.1\r\n\r\n"), 0);
	assert_true(keep_alive);
	assert_int_equal(parse("GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n"), 0);
	assert_false(keep_alive);
	assert_int_equal(parse("GET / HTTP/1.0\r\n\r\n"), 0);
	assert_false(keep_alive);
	assert_int_equal(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), 0);
	assert_true(keep_alive);
}

static void test_header_tokens_are_comma_separated(void **state)
{
	assert_int_equal(parse("GET / HTTP/1.1\r\nConnection: a,b\r\nConnection: upgrade\r\n\r\n"),
			 0);
	assert_true(http_header_has_token(&req, "connection", "B"));
	assert_true(http_header_has_token(&req, "Connection", "upgrade"));
	assert_false(http_header_has_token(&req, "Connection", "a,b"));
	assert_false(http_header_has_token(&req, "Upgrade", "a"));
}

static void test_body_check_limits_size_and_expectations(void **state)
{
	bool cont = true;

	assert_int_equal(parse("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n"), 0);
	assert_int_equal(http_body_check(&req, 10, &cont), 413);
	assert_int_equal(http_body_check(&req, 11, &cont), 0);
	assert_false(cont);
	assert_int_equal(parse("POST / HTTP/1.1\r\nContent-Length: 1\r\nExpect: 100-Continue\r\n\r\n"),
			 0);
	assert_int_equal(http_body_check(&req, 10, &cont), 0);
	assert_true(cont);
	assert_int_equal(parse("POST / HTTP/1.0\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\n"),
			 0);
	assert_int_equal(http_body_check(&req, 10, &cont), 0);
	assert_false(cont);
	assert_int_equal(parse("POST / HTTP/1.1\r\nContent-Length: 1\r\nExpect: coffee\r\n\r\n"), 0);
	assert_int_equal(http_body_check(&req, 10, &cont), 417);
}

static int line(struct http_chunked *d, const char *text, uint64_t room)
{
	return http_chunked_line(d, text, strlen(text), room, 16);
}

static void test_chunked_body_walks_size_data_end_trailer(void **state)
{
	struct http_chunked d = { 0 };

	assert_int_equal(line(&d, "1a;name=value", NO_LIMIT), 0);
	assert_int_equal(d.part, HTTP_CHUNK_DATA);
	assert_int_equal(d.left, 26);
	http_chunked_data(&d, 20);
	assert_int_equal(d.part, HTTP_CHUNK_DATA);
	http_chunked_data(&d, 6);
	assert_int_equal(d.part, HTTP_CHUNK_DATA_END);
	assert_int_equal(line(&d, "", NO_LIMIT), 0);
	assert_int_equal(d.part, HTTP_CHUNK_SIZE);
	assert_int_equal(line(&d, "0 ", NO_LIMIT), 0);
	assert_int_equal(d.part, HTTP_CHUNK_TRAILER);
	assert_int_equal(line(&d, "X-Sum: 1", NO_LIMIT), 0);
	assert_int_equal(d.part, HTTP_CHUNK_TRAILER);
	assert_int_equal(line(&d, "", NO_LIMIT), 0);
	assert_int_equal(d.part, HTTP_CHUNK_DONE);
}

static void test_chunk_lines_that_break_the_rules(void **state)
{
	struct http_chunked d = { 0 };

	assert_int_equal(line(&d, "", NO_LIMIT), 400);
	assert_int_equal(line(&d, "x1", NO_LIMIT), 400);
	assert_int_equal(line(&d, "1 x", NO_LIMIT), 400);
	assert_int_equal(line(&d, "11", 16), 413);
	assert_int_equal(line(&d, "ffffffffffffffffffff", NO_LIMIT), 413);
	assert_int_equal(line(&d, "10", 16), 0);
	http_chunked_data(&d, 16);
	assert_int_equal(line(&d, "junk", NO_LIMIT), 400);
	d = (struct http_chunked){ .part = HTTP_CHUNK_TRAILER };
	assert_int_equal(line(&d, "A: 0123456789", NO_LIMIT), 0);
	assert_int_equal(line(&d, "B: 1", NO_LIMIT), 431);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_head_ends_at_the_first_blank_line),
		cmocka_unit_test(test_head_end_resumes_where_it_stopped),
		cmocka_unit_test(test_request_line_and_fields_are_split_in_place),
		cmocka_unit_test(test_unknown_methods_are_other_and_no_query_is_null),
		cmocka_unit_test(test_malformed_heads_are_400),
		cmocka_unit_test(test_a_nul_byte_anywhere_is_400),
		cmocka_unit_test(test_versions_and_codings_we_do_not_speak),
		cmocka_unit_test(test_too_many_fields_is_431),
		cmocka_unit_test(test_framing_reads_length_or_chunked),
		cmocka_unit_test(test_keep_alive_follows_version_and_connection),
		cmocka_unit_test(test_header_tokens_are_comma_separated),
		cmocka_unit_test(test_body_check_limits_size_and_expectations),
		cmocka_unit_test(test_chunked_body_walks_size_data_end_trailer),
		cmocka_unit_test(test_chunk_lines_that_break_the_rules),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
