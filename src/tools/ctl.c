/*
 * ctl.c - temporisctl, the operator CLI: accounts, tokens, data sources, status, backup.
 *
 * Turns one command line into one admin request frame on temporisd's admin Unix
 * socket, then prints the reply: human-readable text, or with --json the reply
 * object itself. Exit 0 on success, 1 on an error, 2 on wrong usage.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "temporis/base/buf.h"
#include "temporis/base/config.h"
#include "temporis/base/duration.h"
#include "temporis/base/jsonutil.h"
#include "temporis/ipc/proto.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "dev"
#endif
#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG SYSCONFDIR "/temporis/temporis.conf"

#define EXIT_USAGE 2
#define CTL_REPLY_TIMEOUT_MS (10 * 60 * 1000) /* a backup of a large store takes a while */
#define CTL_MSG_MAX 1024
#define CMD_FIELDS_MAX 2
#define TABLE_COLS_MAX 6
#define TABLE_ROWS_INITIAL 16
#define TIME_TEXT_MAX 32
#define SECS_PER_MIN 60
#define SECS_PER_HOUR 3600
#define SECS_PER_DAY 86400
#define PERCENT 100.0
#define LABEL_EQ "--label="
#define RETENTION_EQ "--retention="

typedef struct json_object json;

struct opts {
	const char *config;
	const char *socket;
	bool json;
};

enum cmd_flags {
	CMD_LABEL = 1,    /* accepts --label TEXT */
	CMD_ABS_PATH = 2, /* the last field is a path, sent absolute */
	CMD_SIZES = 4,    /* asks for the sources' sizes on disk too */
	CMD_RETENTION = 8,  /* accepts --retention DURATION */
	CMD_NEEDS_RETENTION = 16, /* and requires it */
};

/* The values of a command's named options; NULL when not given. */
struct named {
	const char *label, *retention;
};

typedef void (*print_fn)(json *reply);

/* One command: positional arguments fill fields in order, the first nreq required. */
struct command {
	const char *group;
	const char *verb; /* NULL: a one-word command */
	const char *op;
	const char *fields[CMD_FIELDS_MAX];
	int nreq, nfields;
	unsigned flags;
	print_fn print;
};

/* ------------------------------------------------------------------ output helpers */

/* A reply's text field as printed: one that is missing (or not a string) prints as nothing. */
static const char *field_text(json *o, const char *key)
{
	const char *s = ju_str(o, key);

	return s != NULL ? s : "";
}

/* Unix seconds as ISO-8601 UTC. */
static const char *iso_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "%lld", (long long)t);
	return buf;
}

/* A table printed with aligned columns; cells are copied, control characters masked. */
struct table {
	size_t ncols, nrows, cap; /* cap counts cells, ncols per row */
	char **cells;
	size_t width[TABLE_COLS_MAX];
	bool failed;
};

static void table_row(struct table *t, const char *const *row)
{
	void *cells = t->cells;

	if (t->failed || t->ncols > TABLE_COLS_MAX) {
		t->failed = true;
		return;
	}
	if (vec_reserve(&cells, &t->cap, (t->nrows + 1) * t->ncols, sizeof(*t->cells),
	                TABLE_ROWS_INITIAL * t->ncols) != 0) {
		t->failed = true;
		return;
	}
	t->cells = cells;
	for (size_t c = 0; c < t->ncols; c++) {
		char *cell = strdup(row[c]);
		size_t len;

		if (cell == NULL) {
			while (c-- > 0)
				free(t->cells[t->nrows * t->ncols + c]);
			t->failed = true;
			return;
		}
		/* A label is free text: keep it from moving the terminal around. */
		for (char *p = cell; *p; p++)
			if (iscntrl((unsigned char)*p))
				*p = '?';
		len = strlen(cell);
		if (len > t->width[c])
			t->width[c] = len;
		t->cells[t->nrows * t->ncols + c] = cell;
	}
	t->nrows++;
}

static void table_print_free(struct table *t)
{
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			const char *cell = t->cells[r * t->ncols + c];

			if (c + 1 < t->ncols)
				printf("%-*s  ", (int)t->width[c], cell);
			else
				printf("%s\n", cell);
		}
	}
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	if (t->failed)
		fprintf(stderr, "temporisctl: out of memory, list truncated\n");
}

/* ------------------------------------------------------------------ printers */

static void print_account_created(json *r)
{
	printf("account %s created\n", field_text(r, "account"));
	printf("token %s (shown once, store it now)\n", field_text(r, "token"));
	printf("token id %s\n", field_text(r, "token_id"));
}

static void print_token_created(json *r)
{
	printf("token %s (shown once, store it now)\n", field_text(r, "token"));
	printf("token id %s\n", field_text(r, "token_id"));
}

static void print_accounts(json *r)
{
	static const char *const head[] = {"NAME", "CREATED"};
	struct table t = {.ncols = 2};
	json *list = ju_arr(r, "accounts");
	char when[TIME_TEXT_MAX];

	table_row(&t, head);
	for (size_t i = 0; list && i < json_object_array_length(list); i++) {
		json *a = json_object_array_get_idx(list, i);
		const char *row[] = {field_text(a, "name"),
		                     iso_time(ju_int_or(a, "created_at", 0), when, sizeof(when))};

		table_row(&t, row);
	}
	table_print_free(&t);
}

static void print_tokens(json *r)
{
	static const char *const head[] = {"ID", "LABEL", "CREATED"};
	struct table t = {.ncols = 3};
	json *list = ju_arr(r, "tokens");
	char when[TIME_TEXT_MAX];

	table_row(&t, head);
	for (size_t i = 0; list && i < json_object_array_length(list); i++) {
		json *k = json_object_array_get_idx(list, i);
		const char *row[] = {field_text(k, "id"), field_text(k, "label"),
		                     iso_time(ju_int_or(k, "created_at", 0), when, sizeof(when))};

		table_row(&t, row);
	}
	table_print_free(&t);
}

static void print_revoked(json *r)
{
	printf("token %s of account %s revoked\n", field_text(r, "token_id"),
	       field_text(r, "account"));
}

static void print_source(json *r, const char *what)
{
	printf("data source %s of account %s %s\n", field_text(r, "name"), field_text(r, "account"),
	       what);
}

static void print_source_created(json *r)
{
	print_source(r, "created");
}

static void print_archived(json *r)
{
	print_source(r, "archived");
}

static void print_unarchived(json *r)
{
	print_source(r, "unarchived");
}

/* A retention as an operator writes it: "30d", or "forever" for 0. */
static const char *retention_text(json *s, char buf[DURATION_TEXT_MAX])
{
	int64_t secs = ju_int_or(s, "retention_s", 0);

	if (secs <= 0)
		return "forever";
	duration_format(secs, buf);
	return buf;
}

static void print_source_set(json *r)
{
	char ret[DURATION_TEXT_MAX];

	printf("data source %s of account %s keeps %s\n", field_text(r, "name"),
	       field_text(r, "account"), retention_text(r, ret));
}

static void print_source_detail(json *r)
{
	char when[TIME_TEXT_MAX], ret[DURATION_TEXT_MAX];

	printf("account    %s\n", field_text(r, "account"));
	printf("name       %s\n", field_text(r, "name"));
	printf("archived   %s\n",
	       json_object_get_boolean(json_object_object_get(r, "archived")) ? "yes" : "no");
	printf("created    %s\n", iso_time(ju_int_or(r, "created_at", 0), when, sizeof(when)));
	printf("retention  %s\n", retention_text(r, ret));
}

#define BYTES_TEXT_MAX 32
#define BYTES_STEP 1024.0

/* 1536 -> "1.5 KiB": sizes as an operator reads them. */
static const char *bytes_text(int64_t n, char *out, size_t cap)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)(n > 0 ? n : 0);
	size_t u = 0;

	while (v >= BYTES_STEP && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= BYTES_STEP;
		u++;
	}
	if (u == 0)
		snprintf(out, cap, "%lld B", (long long)(n > 0 ? n : 0));
	else
		snprintf(out, cap, "%.1f %s", v, units[u]);
	return out;
}

static void print_sources(json *r)
{
	static const char *const head[] = {"ACCOUNT", "NAME",      "ARCHIVED",
					   "CREATED", "RETENTION", "ON DISK"};
	struct table t = {.ncols = 6};
	json *list = ju_arr(r, "data_sources");
	char when[TIME_TEXT_MAX], size[BYTES_TEXT_MAX], ret[DURATION_TEXT_MAX];

	table_row(&t, head);
	for (size_t i = 0; list && i < json_object_array_length(list); i++) {
		json *s = json_object_array_get_idx(list, i);
		bool archived = json_object_get_boolean(json_object_object_get(s, "archived"));
		const char *row[] = {field_text(s, "account"), field_text(s, "name"),
		                     archived ? "yes" : "no",
		                     iso_time(ju_int_or(s, "created_at", 0), when, sizeof(when)),
		                     retention_text(s, ret),
		                     bytes_text(ju_int_or(s, "sst_bytes", 0), size, sizeof(size))};

		table_row(&t, row);
	}
	table_print_free(&t);
}

static void print_status(json *r)
{
	int64_t up = ju_int_or(r, "uptime_s", 0);
	json *fill = json_object_object_get(r, "ring_fill");

	printf("workers            %lld\n", (long long)ju_int_or(r, "workers", 0));
	printf("writer pid         %lld\n", (long long)ju_int_or(r, "writer_pid", 0));
	printf("ring fill          %.1f%%\n", json_object_get_double(fill) * PERCENT);
	char a[BYTES_TEXT_MAX], b[BYTES_TEXT_MAX];

	printf("records committed  %lld since start\n",
	       (long long)ju_int_or(r, "records_committed", 0));
	printf("store              %s in SST files, %s in memtables, %lld records not sealed yet\n",
	       bytes_text(ju_int_or(r, "store_sst_bytes", 0), a, sizeof(a)),
	       bytes_text(ju_int_or(r, "store_memtable_bytes", 0), b, sizeof(b)),
	       (long long)ju_int_or(r, "head_records", 0));
	printf("disk free          %s (%s)\n", bytes_text(ju_int_or(r, "disk_free_bytes", 0), a,
						       sizeof(a)), field_text(r, "disk_state"));
	printf("uptime             %lldd %02lldh %02lldm %02llds\n", (long long)(up / SECS_PER_DAY),
	       (long long)(up % SECS_PER_DAY / SECS_PER_HOUR),
	       (long long)(up % SECS_PER_HOUR / SECS_PER_MIN), (long long)(up % SECS_PER_MIN));
}

static void print_backup(json *r)
{
	printf("backup written to %s\n", field_text(r, "backup"));
}

static const struct command commands[] = {
    {"account", "create", "account_create", {"name"}, 1, 1, 0, print_account_created},
    {"account", "list", "account_list", {NULL}, 0, 0, 0, print_accounts},
    {"token", "create", "token_create", {"account"}, 1, 1, CMD_LABEL, print_token_created},
    {"token", "list", "token_list", {"account"}, 1, 1, 0, print_tokens},
    {"token", "revoke", "token_revoke", {"account", "token_id"}, 2, 2, 0, print_revoked},
    {"source", "create", "source_create", {"account", "name"}, 2, 2, CMD_RETENTION,
     print_source_created},
    {"source", "list", "source_list", {"account"}, 0, 1, CMD_SIZES, print_sources},
    {"source", "get", "source_get", {"account", "name"}, 2, 2, 0, print_source_detail},
    {"source", "set", "source_set", {"account", "name"}, 2, 2,
     CMD_RETENTION | CMD_NEEDS_RETENTION, print_source_set},
    {"source", "archive", "source_archive", {"account", "name"}, 2, 2, 0, print_archived},
    {"source", "unarchive", "source_unarchive", {"account", "name"}, 2, 2, 0, print_unarchived},
    {"status", NULL, "status", {NULL}, 0, 0, 0, print_status},
    {"backup", NULL, "backup", {"dir"}, 1, 1, CMD_ABS_PATH, print_backup},
};

/* ------------------------------------------------------------------ usage, errors */

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: temporisctl [--config FILE | --socket PATH] [--json] COMMAND\n"
	    "\n"
	    "commands:\n"
	    "  account create NAME                 create an account and its first token\n"
	    "  account list\n"
	    "  token create ACCOUNT [--label TEXT] create a token (shown once)\n"
	    "  token list ACCOUNT                  ids, labels, creation times\n"
	    "  token revoke ACCOUNT TOKEN_ID\n"
	    "  source create ACCOUNT NAME [--retention DURATION]\n"
	    "  source list [ACCOUNT]\n"
	    "  source get ACCOUNT NAME\n"
	    "  source set ACCOUNT NAME --retention DURATION   (30d, 12h, 2w; 0 or forever: keep all)\n"
	    "  source archive ACCOUNT NAME\n"
	    "  source unarchive ACCOUNT NAME\n"
	    "  status                              workers, ring fill, records, disk, uptime\n"
	    "  backup DIR                          RocksDB checkpoint into DIR (must not exist)\n"
	    "\n"
	    "options:\n"
	    "  --config FILE   read admin_socket from FILE (default %s)\n"
	    "  --socket PATH   the admin socket of temporisd\n"
	    "  --json          print the reply as one JSON object\n"
	    "  --help, --version\n",
	    DEFAULT_CONFIG);
}

/* Report an error the way the output mode asks for; returns exit status 1. */
static int fail(const struct opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(const struct opts *o, const char *fmt, ...)
{
	char msg[CTL_MSG_MAX];
	va_list ap;
	json *e;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!o->json) {
		fprintf(stderr, "temporisctl: %s\n", msg);
		return EXIT_FAILURE;
	}
	e = json_object_new_object();
	if (e == NULL || ju_add_str(e, "error", msg) != 0) {
		printf("{\"error\":\"out of memory\"}\n");
	} else {
		printf("%s\n", json_object_to_json_string_ext(
		                   e, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	}
	json_object_put(e);
	return EXIT_FAILURE;
}

/* ------------------------------------------------------------------ command line */

/* Global options. 0 go on, 1 answered (--help/--version), -1 usage error. */
static int parse_options(int argc, char **argv, struct opts *o)
{
	enum {
		OPT_HELP = 'h',
		OPT_VERSION = 'V',
		OPT_JSON = 'j',
		OPT_CONFIG = 'c',
		OPT_SOCKET = 's'
	};
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, OPT_CONFIG},
	    {"socket", required_argument, NULL, OPT_SOCKET},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"help", no_argument, NULL, OPT_HELP},
	    {"version", no_argument, NULL, OPT_VERSION},
	    {NULL, 0, NULL, 0},
	};
	int c;

	/* '+': stop at the command, whose own arguments follow; ':' reports a missing value. */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_CONFIG:
			o->config = optarg;
			break;
		case OPT_SOCKET:
			o->socket = optarg;
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case OPT_HELP:
			usage(stdout);
			return 1;
		case OPT_VERSION:
			printf("temporisctl %s\n", PACKAGE_VERSION);
			return 1;
		case ':':
			fprintf(stderr, "temporisctl: option %s needs a value\n", argv[optind - 1]);
			return -1;
		default:
			fprintf(stderr, "temporisctl: unknown option %s\n", argv[optind - 1]);
			return -1;
		}
	}
	if (o->config != NULL && o->socket != NULL) {
		fprintf(stderr, "temporisctl: --config and --socket are exclusive\n");
		return -1;
	}
	return 0;
}

/* Says which word was not understood, before the usage. */
static void unknown_command(int argc, char **argv)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[0], commands[i].group) == 0) {
			if (argc > 1)
				fprintf(stderr, "temporisctl: unknown command '%s %s'\n", argv[0], argv[1]);
			else
				fprintf(stderr, "temporisctl: '%s' needs a subcommand\n", argv[0]);
			return;
		}
	fprintf(stderr, "temporisctl: unknown command '%s'\n", argv[0]);
}

static const struct command *find_command(int argc, char **argv, int *used)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		const struct command *c = &commands[i];

		if (strcmp(argv[0], c->group) != 0)
			continue;
		if (c->verb == NULL) {
			*used = 1;
			return c;
		}
		if (argc > 1 && strcmp(argv[1], c->verb) == 0) {
			*used = 2;
			return c;
		}
	}
	return NULL;
}

/* "--name VALUE" or "--name=VALUE" (eq is "--name="): 1 taken into *out, 0 not
 * this option, -1 the value is missing. */
static int named_option(int argc, char **argv, int *i, const char *eq, const char **out)
{
	size_t n = strlen(eq) - 1;

	if (strncmp(argv[*i], eq, n) != 0)
		return 0;
	if (argv[*i][n] == '=') {
		*out = argv[*i] + n + 1;
		return 1;
	}
	if (argv[*i][n] != '\0')
		return 0;
	if (++*i == argc)
		return -1;
	*out = argv[*i];
	return 1;
}

/*
 * The command's own arguments: positionals into pos, --label TEXT and --retention
 * DURATION into *nm; a --json here is taken as the global option. 0 or -1 (usage).
 */
static int parse_args(const struct command *c, int argc, char **argv, struct opts *o,
                      const char **pos, int *npos, struct named *nm)
{
	int got;

	*npos = 0;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--json") == 0) {
			o->json = true;
		} else if ((c->flags & CMD_LABEL) &&
			   (got = named_option(argc, argv, &i, LABEL_EQ, &nm->label)) != 0) {
			if (got < 0)
				return -1;
		} else if ((c->flags & CMD_RETENTION) &&
			   (got = named_option(argc, argv, &i, RETENTION_EQ, &nm->retention)) != 0) {
			if (got < 0)
				return -1;
		} else if (a[0] == '-' && a[1] == '-') {
			fprintf(stderr, "temporisctl: unknown option %s\n", a);
			return -1;
		} else if (*npos < c->nfields) {
			pos[(*npos)++] = a;
		} else {
			fprintf(stderr, "temporisctl: unexpected argument %s\n", a);
			return -1;
		}
	}
	if ((c->flags & CMD_NEEDS_RETENTION) && nm->retention == NULL) {
		fprintf(stderr, "temporisctl: %s %s needs --retention DURATION\n", c->group, c->verb);
		return -1;
	}
	return *npos >= c->nreq ? 0 : -1;
}

/* ------------------------------------------------------------------ request */

/* The server's working directory is not ours: send paths absolute. */
static int absolute(const char *path, char *out, size_t len)
{
	char cwd[PATH_MAX];

	if (path[0] == '/')
		return snprintf(out, len, "%s", path) < (int)len ? 0 : -1;
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return -1;
	return snprintf(out, len, "%s/%s", cwd, path) < (int)len ? 0 : -1;
}

static json *build_request(const struct command *c, const char **pos, int npos,
			   const struct named *nm)
{
	char path[PATH_MAX];
	json *req = json_object_new_object();
	int rc;

	if (req == NULL)
		return NULL;
	rc = ju_add_str(req, "op", c->op);
	for (int i = 0; i < npos && rc == 0; i++) {
		const char *val = pos[i];

		if ((c->flags & CMD_ABS_PATH) && i == npos - 1) {
			if (absolute(val, path, sizeof(path)) < 0) {
				rc = -1;
				break;
			}
			val = path;
		}
		rc = ju_add_str(req, c->fields[i], val);
	}
	if (rc == 0 && nm->label != NULL)
		rc = ju_add_str(req, "label", nm->label);
	/* as written: the server reads it (the one parser, duration.h) and says what is wrong */
	if (rc == 0 && nm->retention != NULL)
		rc = ju_add_str(req, "retention", nm->retention);
	if (rc == 0 && (c->flags & CMD_SIZES))
		rc = ju_add(req, "sizes", json_object_new_boolean(1));
	if (rc != 0) {
		json_object_put(req);
		return NULL;
	}
	return req;
}

/* ------------------------------------------------------------------ talking to temporisd */

/* Where the socket's path came from, for the message when it cannot be reached. */
static char path_origin[CFG_PATH_MAX + 64];

/* --socket, else admin_socket of --config FILE, of the default config, or built in. */
static int socket_path(const struct opts *o, struct cfg *cfg, const char **path)
{
	char err[CTL_MSG_MAX];
	const char *file = o->config;

	if (o->socket != NULL) {
		*path = o->socket;
		snprintf(path_origin, sizeof(path_origin), "given by --socket");
		return 0;
	}
	cfg_defaults(cfg);
	if (file == NULL && access(DEFAULT_CONFIG, F_OK) == 0)
		file = DEFAULT_CONFIG;
	if (file != NULL && cfg_load(cfg, file, err, sizeof(err)) < 0)
		return fail(o, "%s", err);
	*path = cfg->admin_socket;
	if (file != NULL)
		snprintf(path_origin, sizeof(path_origin), "admin_socket of %s", file);
	else
		snprintf(path_origin, sizeof(path_origin), "the built-in default; there is no %s",
			 DEFAULT_CONFIG);
	return 0;
}

/* Send req, wait for the reply text (*text, caller frees). 0 or exit status. */
static int exchange(const struct opts *o, const char *path, json *req, char **text)
{
	const char *out = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	size_t len;
	int fd, rc;

	fd = proto_connect(path);
	if (fd < 0)
		return fail(o, "cannot reach temporisd at %s (%s): %s; point temporisctl at the "
			    "server's config with --config FILE, or at its socket with --socket PATH",
			    path, path_origin, strerror(errno));
	if (out == NULL || proto_write_frame(fd, out, strlen(out)) < 0) {
		rc = fail(o, "cannot send to temporisd at %s: %s", path, strerror(errno));
		goto out;
	}
	rc = proto_read_frame(fd, text, &len, CTL_REPLY_TIMEOUT_MS);
	if (rc == 1)
		rc = fail(o, "temporisd at %s closed the connection without a reply", path);
	else if (rc < 0)
		rc = fail(o, "no reply from temporisd at %s: %s", path, strerror(errno));
out:
	close(fd);
	return rc;
}

/* Print a reply; its exit status. */
static int show_reply(const struct opts *o, const struct command *c, const char *text)
{
	json *reply = json_tokener_parse(text);
	json *err;
	int rc = EXIT_SUCCESS;

	if (!json_object_is_type(reply, json_type_object))
		rc = fail(o, "malformed reply from temporisd");
	else if (json_object_object_get_ex(reply, "error", &err))
		rc = fail(o, "%s", json_object_get_string(err));
	else if (o->json)
		printf("%s\n", text);
	else
		c->print(reply);
	json_object_put(reply);
	if (rc == EXIT_SUCCESS && fflush(stdout) != 0)
		rc = EXIT_FAILURE;
	return rc;
}

int main(int argc, char **argv)
{
	const char *pos[CMD_FIELDS_MAX], *path = NULL;
	struct named nm = {NULL, NULL};
	struct opts o = {0};
	const struct command *c;
	struct cfg cfg;
	char *text = NULL;
	int rc, used, npos;
	json *req;

	rc = parse_options(argc, argv, &o);
	if (rc != 0)
		goto usage_or_done;
	c = optind < argc ? find_command(argc - optind, argv + optind, &used) : NULL;
	if (c == NULL && optind < argc)
		unknown_command(argc - optind, argv + optind);
	if (c == NULL ||
	    parse_args(c, argc - optind - used, argv + optind + used, &o, pos, &npos, &nm) < 0) {
		rc = -1;
		goto usage_or_done;
	}
	if ((rc = socket_path(&o, &cfg, &path)) != 0)
		return rc;
	req = build_request(c, pos, npos, &nm);
	if (req == NULL)
		return fail(&o, "cannot build the request: %s", strerror(errno ? errno : ENOMEM));
	rc = exchange(&o, path, req, &text);
	json_object_put(req);
	if (rc == 0)
		rc = show_reply(&o, c, text);
	free(text);
	return rc;
usage_or_done:
	if (rc > 0)
		return EXIT_SUCCESS;
	usage(stderr);
	return EXIT_USAGE;
}
