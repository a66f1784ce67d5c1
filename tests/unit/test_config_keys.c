/*
 * test_config_keys.c - unit tests for the key table (src/base/config_keys.c):
 * the generated "expected ..." texts, the rows' fields and defaults, which keys
 * apply on SIGHUP, and that etc/temporis.conf and man/temporis.conf.5 document
 * exactly the table's keys with its defaults, as make installs them (gen/).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "temporis/base/config.h"

/* The Makefile passes the install's directories, as it does to config_keys.c. */
#if !defined(DATADIR) || !defined(LOCALSTATEDIR) || !defined(RUNSTATEDIR)
#error "DATADIR, LOCALSTATEDIR and RUNSTATEDIR come from AM_CPPFLAGS"
#endif

#define PATH_TEXT_MAX 4096
#define VALUE_TEXT_MAX 512
#define KEY_TEXT_MAX 64

/* The documents as make install installs them: the sources' @datadir@,
 * @localstatedir@ ... filled in by make (Makefile.am, PATH_SUBST_DOCS), line for
 * line, so a line number below is also the source's. */
#define CONF_INSTALLED "gen/etc/temporis.conf"
#define MAN_INSTALLED "gen/man/temporis.conf.5"

/* ---- the table ---- */

static void test_bad_value_texts_are_generated_from_the_ranges(void **state)
{
	/* The texts before the table existed, written out by hand for every key. */
	static const struct { const char *key, *text; } before[] = {
		{ "listen", "expected host:port with port 1-65535 (IPv6 as [addr]:port)" },
		{ "workers", "expected auto or 1-64" },
		{ "data_dir", "expected a path shorter than 4096 bytes" },
		{ "admin_socket", "expected a path shorter than 108 bytes" },
		{ "ring_size", "expected a size from 1M to 64G (suffix K, M or G)" },
		{ "max_body_bytes", "expected a size from 1K to 1G (suffix K, M or G)" },
		{ "max_records_per_request", "expected an integer 1-10000000" },
		{ "sync", "expected wal or fsync" },
		{ "enqueue_timeout_ms", "expected an integer 0-600000" },
		{ "commit_timeout_ms", "expected an integer 0-600000" },
		{ "idle_timeout_s", "expected an integer 1-86400" },
		{ "header_timeout_s", "expected an integer 1-3600" },
		{ "log_level", "expected debug, info, warn or error" },
		{ "max_connections", "expected an integer 1-1000000" },
		{ "user", "expected \"\" or a user name matching [a-z_][a-z0-9_-]{0,31}" },
		{ "web_root", "expected a path shorter than 4096 bytes" },
		{ "web_lib_root", "expected a path shorter than 4096 bytes" },
		/* keys added since, through the table alone (commit_timeout_ms, header_timeout_s above) */
		{ "min_free_disk", "expected a size from 0 to 1024G (suffix K, M or G)" },
		{ "query_max_series", "expected an integer 1-100000000" },
		{ "query_max_points", "expected an integer 1-1000000000" },
		{ "default_retention",
		  "expected a duration with a unit s, m, h, d or w (30d), or 0 or forever" },
	};
	char text[CFG_EXPECT_MAX];

	assert_int_equal(cfg_key_count, sizeof(before) / sizeof(before[0]));
	for (size_t i = 0; i < sizeof(before) / sizeof(before[0]); i++) {
		const struct cfg_key *k = cfg_key_find(before[i].key);

		assert_non_null(k);
		cfg_key_expect(k, text, sizeof(text));
		assert_string_equal(text, before[i].text);
	}
}

static void test_expect_text_is_truncated_not_overrun(void **state)
{
	char text[8];

	memset(text, 'x', sizeof(text));
	cfg_key_expect(cfg_key_find("log_level"), text, sizeof(text));
	assert_string_equal(text, "expecte");
	cfg_key_expect(cfg_key_find("ring_size"), text, sizeof(text));
	assert_string_equal(text, "expecte");
}

static void test_key_names_are_unique(void **state)
{
	for (size_t i = 0; i < cfg_key_count; i++) {
		assert_ptr_equal(cfg_key_find(cfg_key_table[i].name), &cfg_key_table[i]);
		assert_non_null(cfg_key_table[i].doc);
	}
	assert_null(cfg_key_find("Listen"));
	assert_null(cfg_key_find(""));
}

static void test_only_workers_and_log_level_apply_on_sighup(void **state)
{
	for (size_t i = 0; i < cfg_key_count; i++) {
		const struct cfg_key *k = &cfg_key_table[i];
		bool reload = strcmp(k->name, "workers") == 0 || strcmp(k->name, "log_level") == 0;

		if ((k->applies == CFG_APPLY_RELOAD) != reload)
			fail_msg("'%s' applies %s", k->name,
				 k->applies == CFG_APPLY_RELOAD ? "on SIGHUP" : "after a restart");
	}
}

static void test_default_retention_reads_durations(void **state)
{
	static const struct { const char *text; uint64_t secs; } good[] = {
		{ "0", 0 }, { "forever", 0 }, { "90", 90 }, { "90s", 90 }, { "15m", 900 },
		{ "12h", 43200 }, { "30d", 2592000 }, { "2w", 1209600 },
		{ "31557600000s", 31557600000u },
	};
	static const char *const bad[] = { "", "d", "7x", "-1d", "1.5d", "7 d", "7D", "Forever",
					   "31557600001", "365251d", "99999999999999999999d" };
	const struct cfg_key *k = cfg_key_find("default_retention");
	struct cfg cfg;

	assert_non_null(k);
	cfg_defaults(&cfg);
	assert_int_equal(cfg.default_retention_s, 0);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(cfg_key_set(k, &cfg, good[i].text), 0);
		assert_int_equal(cfg.default_retention_s, good[i].secs);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (cfg_key_set(k, &cfg, bad[i]) == 0)
			fail_msg("'%s' was taken as a duration", bad[i]);
}

static void test_every_default_is_a_valid_value(void **state)
{
	struct cfg cfg, defaults;

	cfg_defaults(&defaults);
	for (size_t i = 0; i < cfg_key_count; i++) {
		const struct cfg_key *k = &cfg_key_table[i];

		memset(&cfg, 0, sizeof(cfg));
		if (cfg_key_set(k, &cfg, k->default_text) != 0)
			fail_msg("default '%s' of '%s' is rejected", k->default_text, k->name);
		assert_false(cfg_key_differs(k, &cfg, &defaults));
	}
}

static bool is_string_type(enum cfg_type type)
{
	return type == CFG_TYPE_PATH || type == CFG_TYPE_LISTEN || type == CFG_TYPE_USER;
}

static void test_rows_fit_their_fields(void **state)
{
	for (size_t i = 0; i < cfg_key_count; i++) {
		const struct cfg_key *k = &cfg_key_table[i];

		assert_true(k->offset + k->size <= sizeof(struct cfg));
		assert_true(k->min <= k->max || k->type == CFG_TYPE_ENUM);
		if (k->type == CFG_TYPE_PATH || k->type == CFG_TYPE_USER)
			assert_true(k->max <= k->size); /* room for the NUL too */
		else if (!is_string_type(k->type))
			assert_true(k->size == sizeof(uint64_t) ||
				    (k->size == sizeof(uint32_t) && k->max <= UINT32_MAX));
		assert_true((k->type == CFG_TYPE_ENUM) == (k->words != NULL));
	}
}

static void test_enum_words_are_the_stored_values(void **state)
{
	const struct cfg_key *sync = cfg_key_find("sync"), *level = cfg_key_find("log_level");
	struct cfg cfg;

	cfg_defaults(&cfg);
	assert_string_equal(sync->words[CFG_SYNC_WAL], "wal");
	assert_string_equal(sync->words[CFG_SYNC_FSYNC], "fsync");
	assert_null(sync->words[CFG_SYNC_FSYNC + 1]);
	for (int l = LOG_DEBUG; l <= LOG_ERROR; l++) {
		assert_string_equal(level->words[l], log_level_name((enum log_level)l));
		assert_int_equal(cfg_key_set(level, &cfg, level->words[l]), 0);
		assert_int_equal(cfg.log_level, l);
	}
	assert_null(level->words[LOG_ERROR + 1]);
}

/* A value key k rejects: a path of exactly max bytes, or text no other type takes. */
static void bad_value_of(const struct cfg_key *k, char *out, size_t len)
{
	if (k->type != CFG_TYPE_PATH) {
		assert_true((size_t)snprintf(out, len, "\x01 bad") < len);
		return;
	}
	assert_true(k->max < len);
	memset(out, 'p', k->max);
	out[0] = '/';
	out[k->max] = '\0';
}

static void test_set_failure_leaves_the_field_untouched(void **state)
{
	static struct cfg cfg, before;
	static char bad[CFG_PATH_MAX + 1];

	cfg_defaults(&cfg);
	before = cfg;
	for (size_t i = 0; i < cfg_key_count; i++) {
		const struct cfg_key *k = &cfg_key_table[i];

		bad_value_of(k, bad, sizeof(bad));
		if (cfg_key_set(k, &cfg, "") != -1 || cfg_key_set(k, &cfg, bad) != -1)
			fail_msg("'%s' accepted a bad value", k->name);
		assert_memory_equal(&cfg, &before, sizeof(cfg));
	}
}

static void test_differs_and_copy_work_one_key_at_a_time(void **state)
{
	const struct cfg_key *dir = cfg_key_find("data_dir"), *ring = cfg_key_find("ring_size");
	struct cfg a, b;

	cfg_defaults(&a);
	b = a;
	assert_int_equal(cfg_key_set(dir, &b, "/srv/a-long-directory-name"), 0);
	assert_int_equal(cfg_key_set(ring, &b, "2G"), 0);
	assert_true(cfg_key_differs(dir, &a, &b));
	assert_true(cfg_key_differs(ring, &a, &b));
	cfg_key_copy(dir, &a, &b);
	assert_string_equal(a.data_dir, "/srv/a-long-directory-name");
	assert_false(cfg_key_differs(dir, &a, &b));
	assert_true(cfg_key_differs(ring, &a, &b)); /* not copied */
	/* A shorter string leaves old bytes after its NUL; the value is equal. */
	assert_int_equal(cfg_key_set(dir, &a, "/srv"), 0);
	b = a;
	memset(b.data_dir + strlen("/srv") + 1, 'z', 4);
	assert_false(cfg_key_differs(dir, &a, &b));
}

/* configure's --localstatedir, --runstatedir and --datadir move the defaults. */
static void test_path_defaults_follow_the_configured_directories(void **state)
{
	assert_string_equal(cfg_key_find("data_dir")->default_text, LOCALSTATEDIR "/lib/temporis");
	assert_string_equal(cfg_key_find("admin_socket")->default_text,
			    RUNSTATEDIR "/temporis/admin.sock");
	assert_string_equal(cfg_key_find("web_root")->default_text, DATADIR "/temporis/dashboard");
}

/* ---- the documents ---- */

/* A source file split into lines (in place); line[i] has no '\n'. */
struct text {
	char *buf;
	char **line;
	size_t count;
};

/* Read relpath below the build tree, where make wrote it. */
static void text_read(struct text *t, const char *relpath)
{
	const char *top = getenv("top_builddir");
	char path[PATH_TEXT_MAX];
	size_t len = 0, cap = 0, n;
	FILE *f;

	if (top == NULL || top[0] == '\0')
		top = ".";
	assert_true((size_t)snprintf(path, sizeof(path), "%s/%s", top, relpath) < sizeof(path));
	f = fopen(path, "r");
	if (f == NULL)
		fail_msg("cannot open %s", path);
	t->buf = NULL;
	do {
		cap = cap ? cap * 2 : BUFSIZ;
		t->buf = realloc(t->buf, cap + 1);
		assert_non_null(t->buf);
		n = fread(t->buf + len, 1, cap - len, f);
		len += n;
	} while (len == cap);
	assert_int_equal(ferror(f), 0);
	assert_int_equal(fclose(f), 0);
	t->buf[len] = '\0';
	t->line = calloc(len + 1, sizeof(*t->line));
	assert_non_null(t->line);
	t->count = 0;
	for (char *p = t->buf; *p != '\0';) {
		char *nl = strchr(p, '\n');

		t->line[t->count++] = p;
		if (nl == NULL)
			break;
		*nl = '\0';
		p = nl + 1;
	}
}

static void text_free(struct text *t)
{
	free(t->line);
	free(t->buf);
}

static bool mentions(const struct text *t, size_t from, size_t to, const char *word)
{
	for (size_t i = from; i < to; i++)
		if (strstr(t->line[i], word) != NULL)
			return true;
	return false;
}

/* Each table key documented exactly once: seen[] counts by row. */
static void assert_each_key_once(const unsigned *seen, const char *doc)
{
	for (size_t i = 0; i < cfg_key_count; i++)
		if (seen[i] != 1)
			fail_msg("%s documents '%s' %u times", doc, cfg_key_table[i].name, seen[i]);
}

/* A key line of etc/temporis.conf: "key = value", or "# key = value" (a key
 * commented out, which no key should be: every default is the installed one). */
static bool conf_entry(const char *line, bool *commented, char *key, const char **value)
{
	size_t n = 0;

	*commented = strncmp(line, "# ", 2) == 0;
	if (*commented)
		line += 2;
	while ((line[n] >= 'a' && line[n] <= 'z') || line[n] == '_')
		n++;
	if (n == 0 || n >= KEY_TEXT_MAX || strncmp(line + n, " = ", 3) != 0)
		return false;
	memcpy(key, line, n);
	key[n] = '\0';
	*value = line + n + 3;
	return true;
}

/* The comment paragraph above line i: back to the previous blank line. */
static size_t paragraph_start(const struct text *t, size_t i)
{
	while (i > 0 && t->line[i - 1][0] != '\0')
		i--;
	return i;
}

static void check_conf_entry(const struct text *t, size_t i, const struct cfg_key *k,
			     bool commented, const char *value)
{
	bool reload = k->applies == CFG_APPLY_RELOAD;

	if (strcmp(value, k->default_text) != 0)
		fail_msg("etc/temporis.conf:%zu: %s = %s, but the default is %s", i + 1, k->name,
			 value, k->default_text);
	if (commented)
		fail_msg("etc/temporis.conf:%zu: %s should not be commented out", i + 1, k->name);
	if (mentions(t, paragraph_start(t, i), i, "SIGHUP") != reload)
		fail_msg("etc/temporis.conf:%zu: the text on %s should %ssay SIGHUP applies it",
			 i + 1, k->name, reload ? "" : "not ");
}

static void test_conf_documents_every_key_with_its_default(void **state)
{
	struct text t;
	unsigned *seen = calloc(cfg_key_count, sizeof(*seen));
	char key[KEY_TEXT_MAX];
	const char *value;
	bool commented;

	assert_non_null(seen);
	text_read(&t, CONF_INSTALLED);
	for (size_t i = 0; i < t.count; i++) {
		const struct cfg_key *k;

		if (!conf_entry(t.line[i], &commented, key, &value))
			continue;
		k = cfg_key_find(key);
		if (k == NULL)
			fail_msg("etc/temporis.conf:%zu: '%s' is not a key", i + 1, key);
		seen[k - cfg_key_table]++;
		check_conf_entry(&t, i, k, commented, value);
	}
	assert_each_key_once(seen, "etc/temporis.conf");
	text_free(&t);
	free(seen);
}

/* roff escapes in a default: \(dq is '"', \- is '-', \fX (font) is nothing. */
static void unescape_roff(const char *in, char *out, size_t len)
{
	size_t n = 0;

	while (*in != '\0' && n + 1 < len) {
		if (strncmp(in, "\\(dq", 4) == 0) {
			out[n++] = '"';
			in += 4;
		} else if (strncmp(in, "\\f", 2) == 0 && in[2] != '\0') {
			in += 3;
		} else if (strncmp(in, "\\-", 2) == 0) {
			out[n++] = '-';
			in += 2;
		} else {
			out[n++] = *in++;
		}
	}
	out[n] = '\0';
}

/* A KEYS entry's tag line: `.BR key " (default " value )`. */
static bool man_entry(const char *line, char *key, char *value, size_t vlen)
{
	static const char tag[] = ".BR ", mid[] = " \" (default \" ", end[] = " )";
	const char *p = line + strlen(tag), *space, *v;
	char raw[VALUE_TEXT_MAX];
	size_t vl;

	if (strncmp(line, tag, strlen(tag)) != 0 || (space = strchr(p, ' ')) == NULL ||
	    (size_t)(space - p) >= KEY_TEXT_MAX || strncmp(space, mid, strlen(mid)) != 0)
		return false;
	v = space + strlen(mid);
	vl = strlen(v);
	if (vl < strlen(end) || strcmp(v + vl - strlen(end), end) != 0 ||
	    vl - strlen(end) >= sizeof(raw))
		return false;
	memcpy(key, p, (size_t)(space - p));
	key[space - p] = '\0';
	memcpy(raw, v, vl - strlen(end));
	raw[vl - strlen(end)] = '\0';
	unescape_roff(raw, value, vlen);
	return true;
}

static size_t man_next_entry(const struct text *t, size_t i)
{
	while (i < t->count && strcmp(t->line[i], ".TP") != 0 &&
	       strncmp(t->line[i], ".SH", 3) != 0)
		i++;
	return i;
}

/* Line tp is a ".TP" of the KEYS section; returns the line after its entry. */
static size_t check_man_entry(const struct text *t, size_t tp, unsigned *seen)
{
	char key[KEY_TEXT_MAX], value[VALUE_TEXT_MAX];
	const struct cfg_key *k;
	size_t end;

	if (tp + 1 >= t->count || !man_entry(t->line[tp + 1], key, value, sizeof(value)))
		fail_msg("man/temporis.conf.5:%zu: not `.BR key \" (default \" value )`", tp + 2);
	k = cfg_key_find(key);
	if (k == NULL)
		fail_msg("man/temporis.conf.5:%zu: '%s' is not a key", tp + 2, key);
	seen[k - cfg_key_table]++;
	if (strcmp(value, k->default_text) != 0)
		fail_msg("man/temporis.conf.5:%zu: %s (default %s), but the default is %s", tp + 2,
			 key, value, k->default_text);
	end = man_next_entry(t, tp + 2);
	if (mentions(t, tp + 2, end, "SIGHUP") != (k->applies == CFG_APPLY_RELOAD))
		fail_msg("man/temporis.conf.5:%zu: the text on %s should %ssay SIGHUP applies it",
			 tp + 2, key, k->applies == CFG_APPLY_RELOAD ? "" : "not ");
	return end;
}

static void test_man_page_documents_every_key_with_its_default(void **state)
{
	struct text t;
	unsigned *seen = calloc(cfg_key_count, sizeof(*seen));
	size_t i = 0;

	assert_non_null(seen);
	text_read(&t, MAN_INSTALLED);
	while (i < t.count && strcmp(t.line[i], ".SH KEYS") != 0)
		i++;
	if (i == t.count)
		fail_msg("man/temporis.conf.5 has no .SH KEYS section");
	i = man_next_entry(&t, i + 1);
	while (i < t.count && strcmp(t.line[i], ".TP") == 0)
		i = check_man_entry(&t, i, seen);
	assert_each_key_once(seen, "man/temporis.conf.5");
	text_free(&t);
	free(seen);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_value_texts_are_generated_from_the_ranges),
		cmocka_unit_test(test_expect_text_is_truncated_not_overrun),
		cmocka_unit_test(test_key_names_are_unique),
		cmocka_unit_test(test_only_workers_and_log_level_apply_on_sighup),
		cmocka_unit_test(test_every_default_is_a_valid_value),
		cmocka_unit_test(test_default_retention_reads_durations),
		cmocka_unit_test(test_rows_fit_their_fields),
		cmocka_unit_test(test_enum_words_are_the_stored_values),
		cmocka_unit_test(test_set_failure_leaves_the_field_untouched),
		cmocka_unit_test(test_differs_and_copy_work_one_key_at_a_time),
		cmocka_unit_test(test_path_defaults_follow_the_configured_directories),
		cmocka_unit_test(test_conf_documents_every_key_with_its_default),
		cmocka_unit_test(test_man_page_documents_every_key_with_its_default),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
