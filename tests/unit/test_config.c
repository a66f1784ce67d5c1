/*
 * test_config.c - unit tests for src/base/config.c: defaults, every key read from a
 * real file (mkstemp), exact "FILE:LINE: message" errors, size suffixes, listen
 * splitting, and that the shipped etc/temporis.conf parses to the defaults.
 * The key table itself and the documents are checked in test_config_keys.c.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "temporis/base/config.h"

#define ERR_MAX 16384
#define TEXT_MAX 16384
#define TMP_PATH_MAX 512
#define KIB (UINT64_C(1) << 10)
#define MIB (UINT64_C(1) << 20)
#define GIB (UINT64_C(1) << 30)
#define SUN_PATH_LEN 108

/* ---- helpers ---- */

static void write_temp(char *path, size_t pathlen, const char *text)
{
	const char *dir = getenv("TMPDIR");
	size_t len = strlen(text), done = 0;
	int fd;

	if (dir == NULL || dir[0] == '\0')
		dir = "/tmp";
	assert_true((size_t)snprintf(path, pathlen, "%s/temporis-cfg-XXXXXX", dir) < pathlen);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	while (done < len) {
		ssize_t n = write(fd, text + done, len - done);

		assert_true(n > 0);
		done += (size_t)n;
	}
	assert_int_equal(close(fd), 0);
}

/* Write text to a temp file, cfg_load it over *cfg, remove it. */
static int load_text(struct cfg *cfg, const char *text, char *path, size_t pathlen, char *err,
		     size_t errlen)
{
	int rc;

	write_temp(path, pathlen, text);
	err[0] = '\0';
	rc = cfg_load(cfg, path, err, errlen);
	assert_int_equal(unlink(path), 0);
	return rc;
}

static void assert_cfg_equal(const struct cfg *a, const struct cfg *b)
{
	assert_string_equal(a->listen, b->listen);
	assert_int_equal(a->workers, b->workers);
	assert_string_equal(a->data_dir, b->data_dir);
	assert_string_equal(a->admin_socket, b->admin_socket);
	assert_int_equal(a->ring_size, b->ring_size);
	assert_int_equal(a->max_body_bytes, b->max_body_bytes);
	assert_int_equal(a->max_records_per_request, b->max_records_per_request);
	assert_int_equal(a->sync, b->sync);
	assert_int_equal(a->enqueue_timeout_ms, b->enqueue_timeout_ms);
	assert_int_equal(a->idle_timeout_s, b->idle_timeout_s);
	assert_int_equal(a->log_level, b->log_level);
	assert_int_equal(a->max_connections, b->max_connections);
	assert_string_equal(a->user, b->user);
	assert_string_equal(a->web_root, b->web_root);
	assert_string_equal(a->web_lib_root, b->web_lib_root);
}

/* A cfg in which every field differs from its default. */
static void poison(struct cfg *cfg)
{
	cfg_defaults(cfg);
	snprintf(cfg->listen, sizeof(cfg->listen), "10.9.8.7:1");
	cfg->workers = cfg->workers == 1 ? 2 : 1;
	snprintf(cfg->data_dir, sizeof(cfg->data_dir), "/poison/data");
	snprintf(cfg->admin_socket, sizeof(cfg->admin_socket), "/poison/sock");
	cfg->ring_size = 3 * MIB;
	cfg->max_body_bytes = 5 * KIB;
	cfg->max_records_per_request = 7;
	cfg->sync = CFG_SYNC_FSYNC;
	cfg->enqueue_timeout_ms = 9;
	cfg->idle_timeout_s = 11;
	cfg->log_level = LOG_ERROR;
	cfg->max_connections = 13;
	snprintf(cfg->user, sizeof(cfg->user), "poison");
	snprintf(cfg->web_root, sizeof(cfg->web_root), "/poison/web");
	snprintf(cfg->web_lib_root, sizeof(cfg->web_lib_root), "/poison/js");
}

static int cpu_workers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	return n > CFG_WORKERS_MAX ? CFG_WORKERS_MAX : (int)n;
}

/* Load text (from defaults); expect failure with "PATH" + suffix, cfg untouched. */
static void assert_load_error(const char *text, const char *suffix)
{
	struct cfg cfg, before;
	char path[TMP_PATH_MAX], *err = malloc(ERR_MAX), *want = malloc(ERR_MAX);

	assert_non_null(err);
	assert_non_null(want);
	poison(&cfg);
	before = cfg;
	assert_int_equal(load_text(&cfg, text, path, sizeof(path), err, ERR_MAX), -1);
	snprintf(want, ERR_MAX, "%s%s", path, suffix);
	assert_string_equal(err, want);
	assert_cfg_equal(&cfg, &before);
	free(err);
	free(want);
}

static void assert_bad_value(const char *key, const char *value, const char *expect)
{
	char *text = malloc(TEXT_MAX), *suffix = malloc(ERR_MAX);

	assert_non_null(text);
	assert_non_null(suffix);
	snprintf(text, TEXT_MAX, "%s = %s\n", key, value);
	snprintf(suffix, ERR_MAX, ":1: bad value '%s' for '%s': %s", value, key, expect);
	assert_load_error(text, suffix);
	free(text);
	free(suffix);
}

static void load_ok(struct cfg *cfg, const char *text)
{
	char path[TMP_PATH_MAX], err[ERR_MAX];

	if (load_text(cfg, text, path, sizeof(path), err, sizeof(err)) != 0)
		fail_msg("unexpected error: %s", err);
}

static uint64_t size_of(const char *text)
{
	uint64_t n = 0;

	assert_int_equal(cfg_parse_size(text, &n), 0);
	return n;
}

/* ---- defaults and successful parsing ---- */

static void test_defaults_are_the_documented_values(void **state)
{
	struct cfg cfg;

	cfg_defaults(&cfg);
	assert_string_equal(cfg.listen, "127.0.0.1:8080");
	assert_int_equal(cfg.workers, cpu_workers());
	assert_string_equal(cfg.data_dir, LOCALSTATEDIR "/lib/temporis");
	assert_string_equal(cfg.admin_socket, RUNSTATEDIR "/temporis/admin.sock");
	assert_int_equal(cfg.ring_size, 64 * MIB);
	assert_int_equal(cfg.max_body_bytes, 16 * MIB);
	assert_int_equal(cfg.max_records_per_request, 100000);
	assert_int_equal(cfg.sync, CFG_SYNC_WAL);
	assert_int_equal(cfg.enqueue_timeout_ms, 2000);
	assert_int_equal(cfg.idle_timeout_s, 60);
	assert_int_equal(cfg.log_level, LOG_INFO);
	assert_int_equal(cfg.max_connections, 1024);
	assert_string_equal(cfg.user, "");
	assert_string_equal(cfg.web_lib_root, "/usr/share/javascript");
}

static void test_default_web_root_is_the_installed_dashboard(void **state)
{
	struct cfg cfg;
	const char *suffix = "/temporis/dashboard";
	size_t len;

	cfg_defaults(&cfg);
	len = strlen(cfg.web_root);
	assert_true(cfg.web_root[0] == '/');
	assert_true(len > strlen(suffix));
	assert_string_equal(cfg.web_root + len - strlen(suffix), suffix);
}

static void test_every_key_is_read_from_file(void **state)
{
	struct cfg cfg;

	cfg_defaults(&cfg);
	load_ok(&cfg, "listen = 0.0.0.0:9090\n"
		      "workers = 3\n"
		      "data_dir = /srv/temporis/data\n"
		      "admin_socket = /tmp/t.sock\n"
		      "ring_size = 2G\n"
		      "max_body_bytes = 512K\n"
		      "max_records_per_request = 42\n"
		      "sync = fsync\n"
		      "enqueue_timeout_ms = 0\n"
		      "idle_timeout_s = 5\n"
		      "log_level = debug\n"
		      "max_connections = 77\n"
		      "user = temporis\n"
		      "web_root = /srv/temporis/web\n"
		      "web_lib_root = /opt/js\n");
	assert_string_equal(cfg.listen, "0.0.0.0:9090");
	assert_int_equal(cfg.workers, 3);
	assert_string_equal(cfg.data_dir, "/srv/temporis/data");
	assert_string_equal(cfg.admin_socket, "/tmp/t.sock");
	assert_int_equal(cfg.ring_size, 2 * GIB);
	assert_int_equal(cfg.max_body_bytes, 512 * KIB);
	assert_int_equal(cfg.max_records_per_request, 42);
	assert_int_equal(cfg.sync, CFG_SYNC_FSYNC);
	assert_int_equal(cfg.enqueue_timeout_ms, 0);
	assert_int_equal(cfg.idle_timeout_s, 5);
	assert_int_equal(cfg.log_level, LOG_DEBUG);
	assert_int_equal(cfg.max_connections, 77);
	assert_string_equal(cfg.user, "temporis");
	assert_string_equal(cfg.web_root, "/srv/temporis/web");
	assert_string_equal(cfg.web_lib_root, "/opt/js");
}

static void test_keys_missing_from_file_keep_their_values(void **state)
{
	struct cfg cfg, want;

	poison(&cfg);
	want = cfg;
	load_ok(&cfg, "workers = 5\nlog_level = warn\n");
	want.workers = 5;
	want.log_level = LOG_WARN;
	assert_cfg_equal(&cfg, &want);
}

static void test_empty_file_changes_nothing(void **state)
{
	struct cfg cfg, want;

	poison(&cfg);
	want = cfg;
	load_ok(&cfg, "");
	assert_cfg_equal(&cfg, &want);
}

static void test_workers_auto_equals_cpu_count(void **state)
{
	struct cfg cfg;

	cfg_defaults(&cfg);
	cfg.workers = 0;
	load_ok(&cfg, "workers = auto\n");
	assert_int_equal(cfg.workers, cpu_workers());
	assert_in_range(cfg.workers, 1, CFG_WORKERS_MAX);
}

static void test_comments_blank_lines_and_whitespace_are_ignored(void **state)
{
	struct cfg cfg;

	cfg_defaults(&cfg);
	load_ok(&cfg, "# a whole-line comment\n"
		      "\n"
		      "   \t\n"
		      "   # indented comment = with equals\n"
		      "\t  workers\t=\t7   \n"
		      "sync=fsync\n"
		      "log_level = warn # trailing comment\n"
		      "max_connections = 9\t# after a tab\n"
		      "idle_timeout_s    =    30");
	assert_int_equal(cfg.workers, 7);
	assert_int_equal(cfg.sync, CFG_SYNC_FSYNC);
	assert_int_equal(cfg.log_level, LOG_WARN);
	assert_int_equal(cfg.max_connections, 9);
	assert_int_equal(cfg.idle_timeout_s, 30);
}

static void test_hash_inside_value_is_part_of_value(void **state)
{
	struct cfg cfg;

	cfg_defaults(&cfg);
	load_ok(&cfg, "data_dir = /srv/a#b # the comment\n");
	assert_string_equal(cfg.data_dir, "/srv/a#b");
}

static void test_crlf_line_endings_are_accepted(void **state)
{
	struct cfg cfg;

	cfg_defaults(&cfg);
	load_ok(&cfg, "workers = 2\r\nuser = www-data\r\n");
	assert_int_equal(cfg.workers, 2);
	assert_string_equal(cfg.user, "www-data");
}

static void test_ipv6_listen_is_accepted(void **state)
{
	struct cfg cfg;

	cfg_defaults(&cfg);
	load_ok(&cfg, "listen = [::1]:8443\n");
	assert_string_equal(cfg.listen, "[::1]:8443");
	load_ok(&cfg, "listen = [::]:80\n");
	assert_string_equal(cfg.listen, "[::]:80");
	load_ok(&cfg, "listen = [2001:db8::17]:65535\n");
	assert_string_equal(cfg.listen, "[2001:db8::17]:65535");
	load_ok(&cfg, "listen = localhost:1\n");
	assert_string_equal(cfg.listen, "localhost:1");
}

static void test_range_limits_are_inclusive(void **state)
{
	struct cfg cfg;

	cfg_defaults(&cfg);
	load_ok(&cfg, "workers = 1\nring_size = 1M\nmax_body_bytes = 1K\n"
		      "max_records_per_request = 1\nenqueue_timeout_ms = 0\n"
		      "idle_timeout_s = 1\nmax_connections = 1\n");
	assert_int_equal(cfg.workers, 1);
	assert_int_equal(cfg.ring_size, MIB);
	assert_int_equal(cfg.max_body_bytes, KIB);
	assert_int_equal(cfg.max_records_per_request, 1);
	assert_int_equal(cfg.enqueue_timeout_ms, 0);
	assert_int_equal(cfg.idle_timeout_s, 1);
	assert_int_equal(cfg.max_connections, 1);
	load_ok(&cfg, "workers = 64\nring_size = 64G\nmax_body_bytes = 1G\n"
		      "max_records_per_request = 10000000\nenqueue_timeout_ms = 600000\n"
		      "idle_timeout_s = 86400\nmax_connections = 1000000\n");
	assert_int_equal(cfg.workers, 64);
	assert_int_equal(cfg.ring_size, 64 * GIB);
	assert_int_equal(cfg.max_body_bytes, GIB);
	assert_int_equal(cfg.max_records_per_request, 10000000);
	assert_int_equal(cfg.enqueue_timeout_ms, 600000);
	assert_int_equal(cfg.idle_timeout_s, 86400);
	assert_int_equal(cfg.max_connections, 1000000);
}

static void test_admin_socket_of_107_bytes_is_accepted(void **state)
{
	struct cfg cfg;
	char text[TEXT_MAX], path[SUN_PATH_LEN];

	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	snprintf(text, sizeof(text), "admin_socket = %s\n", path);
	cfg_defaults(&cfg);
	load_ok(&cfg, text);
	assert_string_equal(cfg.admin_socket, path);
}

static void test_user_empty_quotes_mean_no_user(void **state)
{
	struct cfg cfg;

	cfg_defaults(&cfg);
	load_ok(&cfg, "user = _svc-1\n");
	assert_string_equal(cfg.user, "_svc-1");
	load_ok(&cfg, "user = \"\"\n");
	assert_string_equal(cfg.user, "");
}

/* ---- sizes ---- */

static void test_size_suffixes_are_powers_of_1024(void **state)
{
	assert_int_equal(size_of("0"), 0);
	assert_int_equal(size_of("123"), 123);
	assert_int_equal(size_of("1K"), KIB);
	assert_int_equal(size_of("1k"), KIB);
	assert_int_equal(size_of("3M"), 3 * MIB);
	assert_int_equal(size_of("3m"), 3 * MIB);
	assert_int_equal(size_of("5G"), 5 * GIB);
	assert_int_equal(size_of("5g"), 5 * GIB);
	assert_int_equal(size_of("007K"), 7 * KIB);
	assert_int_equal(size_of("18446744073709551615"), UINT64_MAX);
	assert_int_equal(size_of("17179869183G"), (UINT64_C(17179869183) << 30));
}

static void test_size_overflow_is_rejected(void **state)
{
	uint64_t n = 99;

	assert_int_equal(cfg_parse_size("18446744073709551616", &n), -1);
	assert_int_equal(cfg_parse_size("99999999999999999999999", &n), -1);
	assert_int_equal(cfg_parse_size("17179869184G", &n), -1);
	assert_int_equal(cfg_parse_size("17592186044416M", &n), -1);
	assert_int_equal(cfg_parse_size("18014398509481984K", &n), -1);
	assert_int_equal(n, 99);
	assert_bad_value("ring_size", "17179869184G",
			 "expected a size from 1M to 64G (suffix K, M or G)");
	assert_bad_value("max_body_bytes", "99999999999999999999999",
			 "expected a size from 1K to 1G (suffix K, M or G)");
}

static void test_malformed_sizes_are_rejected(void **state)
{
	static const char *const bad[] = { "",   "K",   "-1",  "+1",  "1.5M", "1KB", "1 K",
					   "1T", "0x10", " 1", "1 ", "1KK",  "M1" };
	uint64_t n;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (cfg_parse_size(bad[i], &n) != -1)
			fail_msg("cfg_parse_size accepted '%s'", bad[i]);
}

/* ---- cfg_split_listen ---- */

static void test_split_listen_ipv4_and_hostname(void **state)
{
	char host[CFG_ADDR_MAX], port[16];

	assert_int_equal(cfg_split_listen("127.0.0.1:8080", host, sizeof(host), port, sizeof(port)), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_string_equal(port, "8080");
	assert_int_equal(cfg_split_listen("localhost:1", host, sizeof(host), port, sizeof(port)), 0);
	assert_string_equal(host, "localhost");
	assert_string_equal(port, "1");
}

static void test_split_listen_ipv6_drops_brackets(void **state)
{
	char host[CFG_ADDR_MAX], port[16];

	assert_int_equal(cfg_split_listen("[::1]:8080", host, sizeof(host), port, sizeof(port)), 0);
	assert_string_equal(host, "::1");
	assert_string_equal(port, "8080");
	assert_int_equal(cfg_split_listen("[fe80::1:2]:65535", host, sizeof(host), port,
					  sizeof(port)), 0);
	assert_string_equal(host, "fe80::1:2");
	assert_string_equal(port, "65535");
}

static void test_split_listen_rejects_malformed(void **state)
{
	static const char *const bad[] = {
		"",		"127.0.0.1",   "127.0.0.1:",	"127.0.0.1:0", "127.0.0.1:65536",
		":8080",	"::1:8080",    "[::1]8080",	"[::1]",       "[]:80",
		"[::1:80",	"[zz::1]:80",  "host:80x",	"host:-1",     "ho st:80",
		"[1.2.3.4]:80", "host:+80",
	};
	char host[CFG_ADDR_MAX], port[16];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (cfg_split_listen(bad[i], host, sizeof(host), port, sizeof(port)) != -1)
			fail_msg("cfg_split_listen accepted '%s'", bad[i]);
}

static void test_split_listen_rejects_small_buffers(void **state)
{
	char host[CFG_ADDR_MAX], port[16];

	assert_int_equal(cfg_split_listen("127.0.0.1:80", host, 9, port, sizeof(port)), -1);
	assert_int_equal(cfg_split_listen("127.0.0.1:80", host, 10, port, sizeof(port)), 0);
	assert_int_equal(cfg_split_listen("127.0.0.1:8080", host, sizeof(host), port, 4), -1);
	assert_int_equal(cfg_split_listen("127.0.0.1:8080", host, sizeof(host), port, 5), 0);
}

/* ---- errors ---- */

static void test_unknown_key_reports_file_and_line(void **state)
{
	assert_load_error("# comment\n\nfoo = 1\n", ":3: unknown key 'foo'");
	assert_load_error("Listen = 127.0.0.1:80\n", ":1: unknown key 'Listen'");
}

static void test_duplicate_key_names_first_line(void **state)
{
	assert_load_error("workers = 2\n\n"
			  "listen = 127.0.0.1:1\n"
			  "# again\n"
			  "listen = 127.0.0.1:2\n",
			  ":5: duplicate key 'listen' (first set on line 3)");
}

static void test_line_without_equals_is_rejected(void **state)
{
	assert_load_error("workers = 2\nworkers 3\n", ":2: expected 'key = value'");
	assert_load_error("= 3\n", ":1: expected 'key = value'");
	assert_load_error("  = 3\n", ":1: expected 'key = value'");
}

static void test_empty_value_is_bad_value(void **state)
{
	assert_load_error("workers =\n", ":1: bad value '' for 'workers': expected auto or 1-64");
	assert_load_error("data_dir =   # nothing\n",
			  ":1: bad value '' for 'data_dir': expected a path shorter than 4096 bytes");
	assert_load_error("user =\n", ":1: bad value '' for 'user': "
				      "expected \"\" or a user name matching [a-z_][a-z0-9_-]{0,31}");
}

static void test_error_on_later_line_leaves_cfg_unchanged(void **state)
{
	/* assert_load_error also checks that the valid first lines were not applied. */
	assert_load_error("workers = 3\nsync = fsync\nlog_level = loud\n",
			  ":3: bad value 'loud' for 'log_level': expected debug, info, warn or error");
}

static void test_nul_byte_is_rejected(void **state)
{
	struct cfg cfg;
	char path[TMP_PATH_MAX], err[ERR_MAX], want[ERR_MAX];
	static const char text[] = "user = ab\0cd\n";
	FILE *f;

	write_temp(path, sizeof(path), "");
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, sizeof(text) - 1, f), sizeof(text) - 1);
	assert_int_equal(fclose(f), 0);
	cfg_defaults(&cfg);
	assert_int_equal(cfg_load(&cfg, path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:1: line contains a NUL byte", path);
	assert_string_equal(err, want);
	assert_string_equal(cfg.user, "");
	assert_int_equal(unlink(path), 0);
}

static void test_bad_listen_reports_expectation(void **state)
{
	static const char *const expect =
		"expected host:port with port 1-65535 (IPv6 as [addr]:port)";

	assert_bad_value("listen", "127.0.0.1", expect);
	assert_bad_value("listen", "127.0.0.1:0", expect);
	assert_bad_value("listen", "127.0.0.1:65536", expect);
	assert_bad_value("listen", "::1:8080", expect);
	assert_bad_value("listen", "[::1]", expect);
}

static void test_bad_workers_reports_expectation(void **state)
{
	assert_bad_value("workers", "0", "expected auto or 1-64");
	assert_bad_value("workers", "65", "expected auto or 1-64");
	assert_bad_value("workers", "x", "expected auto or 1-64");
	assert_bad_value("workers", "AUTO", "expected auto or 1-64");
	assert_bad_value("workers", "-1", "expected auto or 1-64");
}

static void test_bad_data_dir_reports_expectation(void **state)
{
	char long_path[CFG_PATH_MAX + 1];

	memset(long_path, 'd', sizeof(long_path) - 1);
	long_path[0] = '/';
	long_path[sizeof(long_path) - 1] = '\0';
	assert_int_equal(strlen(long_path), CFG_PATH_MAX);
	assert_bad_value("data_dir", long_path, "expected a path shorter than 4096 bytes");
}

static void test_bad_web_roots_report_expectation(void **state)
{
	char long_path[CFG_PATH_MAX + 1];

	memset(long_path, 'w', sizeof(long_path) - 1);
	long_path[0] = '/';
	long_path[sizeof(long_path) - 1] = '\0';
	assert_bad_value("web_root", long_path, "expected a path shorter than 4096 bytes");
	assert_bad_value("web_lib_root", long_path, "expected a path shorter than 4096 bytes");
}

static void test_bad_admin_socket_reports_expectation(void **state)
{
	char long_path[SUN_PATH_LEN + 1];

	memset(long_path, 's', sizeof(long_path) - 1);
	long_path[0] = '/';
	long_path[sizeof(long_path) - 1] = '\0';
	assert_int_equal(strlen(long_path), SUN_PATH_LEN);
	assert_bad_value("admin_socket", long_path, "expected a path shorter than 108 bytes");
}

static void test_bad_ring_size_reports_expectation(void **state)
{
	static const char *const expect = "expected a size from 1M to 64G (suffix K, M or G)";

	assert_bad_value("ring_size", "1023K", expect);
	assert_bad_value("ring_size", "65G", expect);
	assert_bad_value("ring_size", "68719476737", expect);
	assert_bad_value("ring_size", "64MB", expect);
	assert_bad_value("ring_size", "big", expect);
}

static void test_bad_max_body_bytes_reports_expectation(void **state)
{
	static const char *const expect = "expected a size from 1K to 1G (suffix K, M or G)";

	assert_bad_value("max_body_bytes", "1023", expect);
	assert_bad_value("max_body_bytes", "1073741825", expect);
	assert_bad_value("max_body_bytes", "2G", expect);
	assert_bad_value("max_body_bytes", "1.5M", expect);
}

static void test_bad_max_records_reports_expectation(void **state)
{
	static const char *const expect = "expected an integer 1-10000000";

	assert_bad_value("max_records_per_request", "0", expect);
	assert_bad_value("max_records_per_request", "10000001", expect);
	assert_bad_value("max_records_per_request", "1K", expect);
	assert_bad_value("max_records_per_request", "4294967297", expect);
}

static void test_bad_sync_reports_expectation(void **state)
{
	assert_bad_value("sync", "always", "expected wal or fsync");
	assert_bad_value("sync", "WAL", "expected wal or fsync");
}

static void test_bad_enqueue_timeout_reports_expectation(void **state)
{
	assert_bad_value("enqueue_timeout_ms", "600001", "expected an integer 0-600000");
	assert_bad_value("enqueue_timeout_ms", "-5", "expected an integer 0-600000");
	assert_bad_value("enqueue_timeout_ms", "2s", "expected an integer 0-600000");
}

static void test_bad_idle_timeout_reports_expectation(void **state)
{
	assert_bad_value("idle_timeout_s", "0", "expected an integer 1-86400");
	assert_bad_value("idle_timeout_s", "86401", "expected an integer 1-86400");
	assert_bad_value("idle_timeout_s", "1 2", "expected an integer 1-86400");
}

static void test_bad_log_level_reports_expectation(void **state)
{
	assert_bad_value("log_level", "verbose", "expected debug, info, warn or error");
	assert_bad_value("log_level", "INFO", "expected debug, info, warn or error");
}

static void test_bad_max_connections_reports_expectation(void **state)
{
	assert_bad_value("max_connections", "0", "expected an integer 1-1000000");
	assert_bad_value("max_connections", "1000001", "expected an integer 1-1000000");
}

static void test_bad_user_reports_expectation(void **state)
{
	static const char *const expect =
		"expected \"\" or a user name matching [a-z_][a-z0-9_-]{0,31}";

	assert_bad_value("user", "Root", expect);
	assert_bad_value("user", "1abc", expect);
	assert_bad_value("user", "-abc", expect);
	assert_bad_value("user", "a b", expect);
	assert_bad_value("user", "abcdefghijklmnopqrstuvwxyz0123456", expect); /* 33 chars */
	assert_bad_value("user", "\"root\"", expect);
}

static void test_missing_file_reports_strerror(void **state)
{
	struct cfg cfg, before;
	char err[ERR_MAX];
	const char *path = "/nonexistent-temporis-dir/temporis.conf";

	poison(&cfg);
	before = cfg;
	assert_int_equal(cfg_load(&cfg, path, err, sizeof(err)), -1);
	assert_string_equal(err, "/nonexistent-temporis-dir/temporis.conf: No such file or directory");
	assert_cfg_equal(&cfg, &before);
}

static void test_directory_reports_strerror(void **state)
{
	struct cfg cfg;
	char err[ERR_MAX], want[ERR_MAX], dir[TMP_PATH_MAX];
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, sizeof(dir), "%s/temporis-cfgdir-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
	assert_non_null(mkdtemp(dir));
	cfg_defaults(&cfg);
	assert_int_equal(cfg_load(&cfg, dir, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: %s", dir, strerror(EISDIR));
	assert_string_equal(err, want);
	assert_int_equal(rmdir(dir), 0);
}

static void test_unreadable_file_reports_strerror(void **state)
{
	struct cfg cfg;
	char path[TMP_PATH_MAX], err[ERR_MAX], want[ERR_MAX];

	if (geteuid() == 0)
		skip(); /* root reads mode-000 files */
	write_temp(path, sizeof(path), "workers = 2\n");
	assert_int_equal(chmod(path, 0), 0);
	cfg_defaults(&cfg);
	assert_int_equal(cfg_load(&cfg, path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: %s", path, strerror(EACCES));
	assert_string_equal(err, want);
	assert_int_equal(unlink(path), 0);
}

/* ---- the shipped file ---- */

/* The file as make install installs it: etc/temporis.conf with the configured
 * directories filled in (Makefile.am, PATH_SUBST_DOCS), in the build tree. */
static void shipped_path(char *path, size_t len)
{
	const char *top = getenv("top_builddir");

	if (top == NULL || top[0] == '\0')
		top = ".";
	assert_true((size_t)snprintf(path, len, "%s/gen/etc/temporis.conf", top) < len);
}

static void test_shipped_config_sets_every_key_to_its_default(void **state)
{
	struct cfg cfg, defaults;
	char path[CFG_PATH_MAX], err[ERR_MAX];

	shipped_path(path, sizeof(path));
	cfg_defaults(&defaults);
	/* Starting from all-different values proves the file names every key. */
	poison(&cfg);
	if (cfg_load(&cfg, path, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_cfg_equal(&cfg, &defaults);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_are_the_documented_values),
		cmocka_unit_test(test_default_web_root_is_the_installed_dashboard),
		cmocka_unit_test(test_every_key_is_read_from_file),
		cmocka_unit_test(test_keys_missing_from_file_keep_their_values),
		cmocka_unit_test(test_empty_file_changes_nothing),
		cmocka_unit_test(test_workers_auto_equals_cpu_count),
		cmocka_unit_test(test_comments_blank_lines_and_whitespace_are_ignored),
		cmocka_unit_test(test_hash_inside_value_is_part_of_value),
		cmocka_unit_test(test_crlf_line_endings_are_accepted),
		cmocka_unit_test(test_ipv6_listen_is_accepted),
		cmocka_unit_test(test_range_limits_are_inclusive),
		cmocka_unit_test(test_admin_socket_of_107_bytes_is_accepted),
		cmocka_unit_test(test_user_empty_quotes_mean_no_user),
		cmocka_unit_test(test_size_suffixes_are_powers_of_1024),
		cmocka_unit_test(test_size_overflow_is_rejected),
		cmocka_unit_test(test_malformed_sizes_are_rejected),
		cmocka_unit_test(test_split_listen_ipv4_and_hostname),
		cmocka_unit_test(test_split_listen_ipv6_drops_brackets),
		cmocka_unit_test(test_split_listen_rejects_malformed),
		cmocka_unit_test(test_split_listen_rejects_small_buffers),
		cmocka_unit_test(test_unknown_key_reports_file_and_line),
		cmocka_unit_test(test_duplicate_key_names_first_line),
		cmocka_unit_test(test_line_without_equals_is_rejected),
		cmocka_unit_test(test_empty_value_is_bad_value),
		cmocka_unit_test(test_error_on_later_line_leaves_cfg_unchanged),
		cmocka_unit_test(test_nul_byte_is_rejected),
		cmocka_unit_test(test_bad_listen_reports_expectation),
		cmocka_unit_test(test_bad_workers_reports_expectation),
		cmocka_unit_test(test_bad_data_dir_reports_expectation),
		cmocka_unit_test(test_bad_web_roots_report_expectation),
		cmocka_unit_test(test_bad_admin_socket_reports_expectation),
		cmocka_unit_test(test_bad_ring_size_reports_expectation),
		cmocka_unit_test(test_bad_max_body_bytes_reports_expectation),
		cmocka_unit_test(test_bad_max_records_reports_expectation),
		cmocka_unit_test(test_bad_sync_reports_expectation),
		cmocka_unit_test(test_bad_enqueue_timeout_reports_expectation),
		cmocka_unit_test(test_bad_idle_timeout_reports_expectation),
		cmocka_unit_test(test_bad_log_level_reports_expectation),
		cmocka_unit_test(test_bad_max_connections_reports_expectation),
		cmocka_unit_test(test_bad_user_reports_expectation),
		cmocka_unit_test(test_missing_file_reports_strerror),
		cmocka_unit_test(test_directory_reports_strerror),
		cmocka_unit_test(test_unreadable_file_reports_strerror),
		cmocka_unit_test(test_shipped_config_sets_every_key_to_its_default),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
