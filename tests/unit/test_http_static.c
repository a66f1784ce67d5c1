/*
 * test_http_static.c - the dashboard's static files (src/http/serve_static.c): the URL
 * map, path-traversal and symlink confinement, file types, size cap, validators,
 * on real files in a mkdtemp() directory that the test removes.
 */
#define _GNU_SOURCE /* nftw */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cmocka.h>

#include "temporis/http/serve_static.h"

#define PATH_CAP 512
#define NFTW_FDS 16
#define INDEX_TEXT "<!doctype html><title>t</title>"
#define APP_TEXT "console.log(1);"
#define LIB_TEXT "/* dygraphs */"
#define SECRET_TEXT "secret"

struct tree {
	char top[PATH_CAP];              /* removed at the end */
	char web[PATH_CAP];              /* top/web */
	char lib[PATH_CAP];              /* top/lib */
};

static struct tree t;

static void path_of(char *out, const char *rel)
{
	assert_true((size_t)snprintf(out, PATH_CAP, "%s/%s", t.top, rel) < PATH_CAP);
}

static void put(const char *rel, const char *text)
{
	char path[PATH_CAP];
	FILE *f;

	path_of(path, rel);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void make_dir(const char *rel)
{
	char path[PATH_CAP];

	path_of(path, rel);
	assert_int_equal(mkdir(path, 0755), 0);
}

static void make_link(const char *target, const char *rel)
{
	char path[PATH_CAP];

	path_of(path, rel);
	assert_int_equal(symlink(target, path), 0);
}

/*
 * top/web/{index.html, app.js, style.css, .hidden, sub/, escape -> ../secret.txt,
 *          alias.js -> app.js}
 * top/lib/dygraphs/{dygraph.min.js, dist -> .}
 * top/secret.txt
 */
static int setup(void **state)
{
	const char *dir = getenv("TMPDIR");

	if (dir == NULL || dir[0] == '\0')
		dir = "/tmp";
	snprintf(t.top, sizeof(t.top), "%s/temporis-static-XXXXXX", dir);
	if (mkdtemp(t.top) == NULL)
		return -1;
	path_of(t.web, "web");
	path_of(t.lib, "lib");
	make_dir("web");
	make_dir("web/sub");
	make_dir("lib");
	make_dir("lib/dygraphs");
	put("web/index.html", INDEX_TEXT);
	put("web/app.js", APP_TEXT);
	put("web/style.css", "body{}");
	put("web/.hidden", SECRET_TEXT);
	put("secret.txt", SECRET_TEXT);
	put("lib/dygraphs/dygraph.min.js", LIB_TEXT);
	make_link("../secret.txt", "web/escape.txt");
	make_link("app.js", "web/alias.js");
	make_link(".", "lib/dygraphs/dist");
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int teardown(void **state)
{
	/* FTW_PHYS: the links that point out of the tree are removed, not followed. */
	return nftw(t.top, rm_entry, NFTW_FDS, FTW_DEPTH | FTW_PHYS);
}

static enum static_result open_url(const char *url, struct static_file *f)
{
	return static_open(t.web, t.lib, url, f);
}

static void assert_serves(const char *url, const char *text, const char *type)
{
	struct static_file f;

	assert_int_equal(open_url(url, &f), STATIC_OK);
	assert_int_equal(f.len, strlen(text));
	assert_memory_equal(f.data, text, f.len);
	assert_string_equal(f.content_type, type);
	static_file_free(&f);
}

static void assert_not_found(const char *url)
{
	struct static_file f;

	if (open_url(url, &f) != STATIC_NOT_FOUND)
		fail_msg("%s was not refused", url);
	assert_null(f.data);
}

static void test_index_and_static_names_map_to_web_root(void **state)
{
	assert_serves("/", INDEX_TEXT, "text/html; charset=utf-8");
	assert_serves("/static/index.html", INDEX_TEXT, "text/html; charset=utf-8");
	assert_serves("/static/app.js", APP_TEXT, "text/javascript; charset=utf-8");
	assert_serves("/static/style.css", "body{}", "text/css; charset=utf-8");
}

static void test_javascript_prefix_maps_to_lib_root(void **state)
{
	assert_serves("/javascript/dygraphs/dygraph.min.js", LIB_TEXT,
		      "text/javascript; charset=utf-8");
	/* Debian's dygraphs has dist -> . : a link that stays inside the root is fine. */
	assert_serves("/javascript/dygraphs/dist/dygraph.min.js", LIB_TEXT,
		      "text/javascript; charset=utf-8");
	assert_not_found("/static/dygraphs/dygraph.min.js");
	assert_not_found("/javascript/app.js");
}

static void test_dot_segments_and_odd_bytes_are_not_found(void **state)
{
	static const char *const urls[] = {
		"/static/../secret.txt", "/static/..", "/static/./app.js", "/static/.hidden",
		"/javascript/dygraphs/../../secret.txt", "/javascript/../web/app.js",
		"/static/%2e%2e/secret.txt", "/static/app%2ejs", "/static/..\\secret.txt",
		"/static/sub\\..\\app.js", "/static//app.js", "/static/", "/javascript/",
		"/static/app.js/", "/static/app.js?x", "/static/a pp.js", "/index.html",
		"/static", "/staticapp.js", "",
	};

	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++)
		assert_not_found(urls[i]);
}

static void test_symlink_out_of_root_is_not_found(void **state)
{
	assert_not_found("/static/escape.txt");
	assert_serves("/static/alias.js", APP_TEXT, "text/javascript; charset=utf-8");
}

static void test_directories_and_missing_files_are_not_found(void **state)
{
	char fifo[PATH_CAP];

	assert_not_found("/static/sub");
	assert_not_found("/javascript/dygraphs");
	assert_not_found("/static/missing.js");
	path_of(fifo, "web/pipe.js");
	assert_int_equal(mkfifo(fifo, 0600), 0);
	/* A FIFO would block a reader forever: only regular files are served. */
	assert_not_found("/static/pipe.js");
	assert_int_equal(unlink(fifo), 0);
}

static void test_missing_or_empty_root_is_not_found(void **state)
{
	struct static_file f;

	assert_int_equal(static_open("/nonexistent/temporis/web", t.lib, "/", &f),
			 STATIC_NOT_FOUND);
	assert_int_equal(static_open("", t.lib, "/", &f), STATIC_NOT_FOUND);
	assert_int_equal(static_open(t.web, "", "/javascript/dygraphs/dygraph.min.js", &f),
			 STATIC_NOT_FOUND);
}

static void test_file_over_the_cap_is_too_large(void **state)
{
	char path[PATH_CAP];
	struct static_file f;
	int fd;

	path_of(path, "web/big.js");
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)STATIC_FILE_MAX + 1), 0);
	assert_int_equal(close(fd), 0);
	assert_int_equal(open_url("/static/big.js", &f), STATIC_TOO_LARGE);
	assert_null(f.data);
	assert_int_equal(truncate(path, (off_t)STATIC_FILE_MAX), 0);
	assert_int_equal(open_url("/static/big.js", &f), STATIC_OK);
	assert_int_equal(f.len, STATIC_FILE_MAX);
	static_file_free(&f);
	assert_int_equal(unlink(path), 0);
}

static void test_empty_file_is_served_empty(void **state)
{
	put("web/empty.txt", "");
	assert_serves("/static/empty.txt", "", "text/plain; charset=utf-8");
}

static void test_content_type_follows_extension(void **state)
{
	assert_string_equal(static_content_type("a/b.HTML"), "text/html; charset=utf-8");
	assert_string_equal(static_content_type("dygraph.min.js.map"), "application/json");
	assert_string_equal(static_content_type("x.svg"), "image/svg+xml");
	assert_string_equal(static_content_type("x.png"), "image/png");
	assert_string_equal(static_content_type("README"), "application/octet-stream");
	assert_string_equal(static_content_type("a.d/README"), "application/octet-stream");
	assert_string_equal(static_content_type("x.exe"), "application/octet-stream");
}

static void test_etag_changes_when_the_file_changes(void **state)
{
	struct static_file a, b;

	assert_int_equal(open_url("/static/style.css", &a), STATIC_OK);
	assert_true(a.etag[0] == '"' && a.etag[strlen(a.etag) - 1] == '"');
	assert_true(strlen(a.last_modified) > 0);
	assert_true(strstr(a.last_modified, " GMT") != NULL);
	put("web/style.css", "body{color:red}");
	assert_int_equal(open_url("/static/style.css", &b), STATIC_OK);
	assert_string_not_equal(a.etag, b.etag);
	static_file_free(&a);
	static_file_free(&b);
}

static void test_if_none_match_accepts_lists_weak_tags_and_star(void **state)
{
	const char *tag = "\"c-1a\"";

	assert_true(static_etag_matches("\"c-1a\"", tag));
	assert_true(static_etag_matches("W/\"c-1a\"", tag));
	assert_true(static_etag_matches("\"x\", \"c-1a\"", tag));
	assert_true(static_etag_matches("\"x\",W/\"c-1a\" ", tag));
	assert_true(static_etag_matches("*", tag));
	assert_false(static_etag_matches(NULL, tag));
	assert_false(static_etag_matches("", tag));
	assert_false(static_etag_matches("\"c-1b\"", tag));
	assert_false(static_etag_matches("c-1a", tag));
	assert_false(static_etag_matches("\"c-1a\"x", tag));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_index_and_static_names_map_to_web_root),
		cmocka_unit_test(test_javascript_prefix_maps_to_lib_root),
		cmocka_unit_test(test_dot_segments_and_odd_bytes_are_not_found),
		cmocka_unit_test(test_symlink_out_of_root_is_not_found),
		cmocka_unit_test(test_directories_and_missing_files_are_not_found),
		cmocka_unit_test(test_missing_or_empty_root_is_not_found),
		cmocka_unit_test(test_file_over_the_cap_is_too_large),
		cmocka_unit_test(test_empty_file_is_served_empty),
		cmocka_unit_test(test_content_type_follows_extension),
		cmocka_unit_test(test_etag_changes_when_the_file_changes),
		cmocka_unit_test(test_if_none_match_accepts_lists_weak_tags_and_star),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
