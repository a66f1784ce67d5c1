/*
 * config.c - reads etc/temporis.conf into a struct cfg: the line syntax
 * (`key = value`, `#` comments, blank lines), duplicate keys, and the defaults.
 * What each key accepts lives in the key table (config_keys.c). A file is parsed
 * into a copy so that a bad file (e.g. on SIGHUP) never half-applies.
 */
#include "temporis/base/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "temporis/base/err.h"

void cfg_defaults(struct cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < cfg_key_count; i++) {
		const struct cfg_key *k = &cfg_key_table[i];

		if (cfg_key_set(k, cfg, k->default_text) < 0) {
			/* A bug in the table; test_config parses every default. */
			log_error("built-in default '%s' of '%s' is invalid", k->default_text,
				  k->name);
			abort();
		}
	}
}

/* ---- the file ---- */

struct parser {
	struct cfg *cfg;             /* the private copy being filled */
	const char *path;
	unsigned line;
	unsigned *set_on;            /* by table row: the line that set it; 0 = not yet */
	char *err;
	size_t errlen;
};

static int is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Trim in place; returns the first non-blank character. */
static char *trim(char *s)
{
	size_t len;

	while (is_blank(*s))
		s++;
	len = strlen(s);
	while (len > 0 && is_blank(s[len - 1]))
		s[--len] = '\0';
	return s;
}

/* '#' starts a comment at the start of a line or after whitespace, so a value
 * such as a path may still contain a '#' of its own. */
static void strip_comment(char *line)
{
	for (size_t i = 0; line[i] != '\0'; i++) {
		if (line[i] == '#' && (i == 0 || is_blank(line[i - 1]))) {
			line[i] = '\0';
			return;
		}
	}
}

static int apply_pair(struct parser *ps, const char *key, const char *value)
{
	const struct cfg_key *k = cfg_key_find(key);
	char expect[CFG_EXPECT_MAX];
	size_t row;

	if (k == NULL) {
		err_set(ps->err, ps->errlen, "%s:%u: unknown key '%s'", ps->path, ps->line, key);
		return -1;
	}
	row = (size_t)(k - cfg_key_table);
	if (ps->set_on[row] != 0) {
		err_set(ps->err, ps->errlen, "%s:%u: duplicate key '%s' (first set on line %u)",
			ps->path, ps->line, key, ps->set_on[row]);
		return -1;
	}
	if (cfg_key_set(k, ps->cfg, value) < 0) {
		cfg_key_expect(k, expect, sizeof(expect));
		err_set(ps->err, ps->errlen, "%s:%u: bad value '%s' for '%s': %s", ps->path,
			ps->line, value, key, expect);
		return -1;
	}
	ps->set_on[row] = ps->line;
	return 0;
}

static int parse_line(struct parser *ps, char *line, size_t len)
{
	char *text, *eq, *key;

	if (strlen(line) != len) {
		err_set(ps->err, ps->errlen, "%s:%u: line contains a NUL byte", ps->path, ps->line);
		return -1;
	}
	strip_comment(line);
	text = trim(line);
	if (text[0] == '\0')
		return 0;
	eq = strchr(text, '=');
	if (eq == NULL || eq == text) {
		err_set(ps->err, ps->errlen, "%s:%u: expected 'key = value'", ps->path, ps->line);
		return -1;
	}
	*eq = '\0';
	key = trim(text);
	return apply_pair(ps, key, trim(eq + 1));
}

static int parse_stream(struct parser *ps, FILE *f)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = -1;

	while ((n = getline(&line, &cap, f)) != -1) {
		ps->line++;
		if (parse_line(ps, line, (size_t)n) < 0)
			goto out;
	}
	/* -1 without EOF is a read error (EISDIR) or getline's ENOMEM. */
	if (ferror(f) || !feof(f)) {
		err_set(ps->err, ps->errlen, "%s: %s", ps->path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	free(line);
	return rc;
}

int cfg_load(struct cfg *cfg, const char *path, char *err, size_t errlen)
{
	struct cfg next = *cfg;
	struct parser ps = { .cfg = &next, .path = path, .err = err, .errlen = errlen };
	FILE *f = fopen(path, "re");
	int rc;

	if (f == NULL) {
		err_set(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	ps.set_on = calloc(cfg_key_count, sizeof(*ps.set_on));
	if (ps.set_on == NULL) {
		err_set(err, errlen, "%s: %s", path, strerror(errno));
		rc = -1;
	} else {
		rc = parse_stream(&ps, f);
	}
	free(ps.set_on);
	/* Read-only stream: a close failure cannot lose data, and the parse
	 * result already says whether the contents were good. */
	if (fclose(f) != 0 && rc == 0)
		log_warn("closing %s: %s", path, strerror(errno));
	if (rc == 0)
		*cfg = next;
	return rc;
}
