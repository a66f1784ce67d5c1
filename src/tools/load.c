/*
 * load.c - temporis-load, the bulk history loader: the command line, the input files read
 * line by line into batches (load_parse.c, load_batch.c) when the HTTP client
 * (load_client.c) has a free connection, and stderr: messages, the progress line and the
 * summary. CSV and NDJSON become ingest records; line protocol is sent as it is, line by
 * line. Owns the options, the input, the event loop and the exit status.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <ctype.h>
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "temporis/base/clock.h"
#include "temporis/tools/load_batch.h"
#include "temporis/tools/load_client.h"
#include "temporis/tools/load_parse.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "dev"
#endif

#define PROG "temporis-load"
#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define DEFAULT_URL "http://127.0.0.1:8080"
#define DEFAULT_BATCH 5000
#define MAX_BATCH 1000000
#define DEFAULT_CONCURRENCY 4
#define MAX_CONCURRENCY 256
#define DEFAULT_RETRIES 10
#define MAX_RETRIES 1000
#define TOKEN_MAX 4096
#define PROGRESS_TTY_MS 200
#define PROGRESS_PLAIN_S 5
#define BAR_WIDTH 24
#define US_PER_MS 1000
#define US_PER_S 1000000.0
#define SECS_PER_MIN 60
#define PERCENT 100
#define REJECTED_TEXT_MAX 48 /* ", N rejected" with any uint64 N */

struct opts {
	const char *url, *token_file, *source;
	enum load_format fmt;
	bool fmt_set, gzip, quiet;
	bool line_protocol; /* every input is line protocol: the run POSTs to /write */
	long batch, concurrency, retries;
	struct load_csv_opts csv;
	enum load_time_unit unit;
	char *columns; /* owns the strings csv.columns[] point into */
	char **files;
	int nfiles;
};

struct input {
	char *const *files;
	int nfiles, next;
	FILE *fp;
	const char *name;
	struct load_parser *parser[LOAD_NDJSON + 1]; /* one per enum load_format */
	struct load_parser *cur;
	struct load_lp *lp; /* the line-protocol splitter, in a line_protocol run */
	uint64_t line;
	char *buf; /* getline's, reused for every line */
	size_t bufcap;
	uint64_t bytes_read, bytes_total; /* bytes_total 0: unknown (a pipe) */
};

struct loader {
	const struct opts *o;
	struct event_base *base;
	struct event *progress_ev;
	struct load_client *client;
	struct input in;
	bool tty, progress_shown;
	bool context_noted; /* the CONTEXT-DATABASE note was printed */
	const char *unit;   /* what a batch counts, for messages: "records" or "lines" */
	uint64_t start_us;  /* mono_us() when loading started */
};

static void vsay(struct loader *ld, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void say(struct loader *ld, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Every message goes through here so that a TTY progress line is cleared first. */
static void vsay(struct loader *ld, const char *fmt, va_list ap)
{
	if (ld && ld->progress_shown) {
		fputs("\r\033[K", stderr);
		ld->progress_shown = false;
	}
	fputs(PROG ": ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static void say(struct loader *ld, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(ld, fmt, ap);
	va_end(ap);
}

static double elapsed_s(const struct loader *ld)
{
	return (double)(mono_us() - ld->start_us) / US_PER_S;
}

/* ---- options ------------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: " PROG " [OPTIONS] --source NAME [FILE...]\n"
	    "Loads (timestamp, name, value) records from CSV or NDJSON files, or InfluxDB line\n"
	    "protocol files, into a data source of a temporis server (stdin when no FILE or\n"
	    "FILE is -).\n\n"
	    "  --source NAME          data source to write into (required)\n"
	    "  --url URL              server (default " DEFAULT_URL ")\n"
	    "  --token-file PATH      file holding the access token (else $TEMPORIS_TOKEN)\n"
	    "  --format F             input format: csv, ndjson or line (InfluxDB line protocol,\n"
	    "                         sent as it is to /write; comments and an export's DDL\n"
	    "                         are skipped); default by extension: .ndjson/.jsonl,\n"
	    "                         .lp/.line, else csv\n"
	    "  --batch N              records (line protocol: lines) per request (default %d)\n"
	    "  --concurrency N        parallel connections (default %d)\n"
	    "  --gzip                 send gzip-compressed request bodies\n"
	    "  --csv-columns T,N,V    timestamp,name,value columns by header name or 1-based "
	    "index\n"
	    "                         (default timestamp,name,value)\n"
	    "  --no-header            CSV input has no header line (columns 1,2,3 by default)\n"
	    "  --delimiter C          CSV field delimiter (default ','; 'tab' for a tab)\n"
	    "  --time-unit s|ms|us|ns integer timestamps are in this unit (default: seconds,\n"
	    "                         refusing values past the year 5000; line protocol: ns);\n"
	    "                         RFC 3339 times (2024-06-20T00:00:00Z) are accepted in\n"
	    "                         CSV and NDJSON\n"
	    "  --retries N            retries per request on connection errors, 408, 429, 5xx\n"
	    "                         (default %d)\n"
	    "  --quiet                no progress and no summary\n"
	    "  --help, --version\n\n"
	    "Exit status: 0 all records (lines) accepted, 1 bad input or a server/network error,\n"
	    "2 wrong usage or no token.\n",
	    DEFAULT_BATCH, DEFAULT_CONCURRENCY, DEFAULT_RETRIES);
}

static int parse_long(const char *opt, const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		say(NULL, "%s must be an integer between %ld and %ld", opt, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_columns(struct opts *o, const char *spec)
{
	char *save = NULL, *tok;
	int n = 0;

	free(o->columns);
	o->columns = strdup(spec);
	if (!o->columns) {
		say(NULL, "out of memory");
		return -1;
	}
	for (tok = strtok_r(o->columns, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (n == 3)
			break;
		o->csv.columns[n++] = tok;
	}
	if (n != 3 || tok) {
		say(NULL, "--csv-columns needs three columns: TIMESTAMP,NAME,VALUE");
		return -1;
	}
	return 0;
}

static int parse_time_unit(struct opts *o, const char *s)
{
	static const char *const words[] = { [LOAD_TIME_S] = "s", [LOAD_TIME_MS] = "ms",
					     [LOAD_TIME_US] = "us", [LOAD_TIME_NS] = "ns" };

	for (size_t i = LOAD_TIME_S; i < sizeof(words) / sizeof(words[0]); i++)
		if (strcmp(s, words[i]) == 0) {
			o->unit = (enum load_time_unit)i;
			return 0;
		}
	fprintf(stderr, PROG ": --time-unit must be s, ms, us or ns, not '%s'\n", s);
	return -1;
}

static int parse_delimiter(struct opts *o, const char *s)
{
	if (!strcmp(s, "tab") || !strcmp(s, "\\t"))
		o->csv.delimiter = '\t';
	else if (strlen(s) == 1 && s[0] != '"' && s[0] != '\n' && s[0] != '\r')
		o->csv.delimiter = s[0];
	else {
		say(NULL, "--delimiter must be one character (or 'tab')");
		return -1;
	}
	return 0;
}

static int parse_format(struct opts *o, const char *s)
{
	if (!strcmp(s, "csv"))
		o->fmt = LOAD_CSV;
	else if (!strcmp(s, "ndjson") || !strcmp(s, "jsonl"))
		o->fmt = LOAD_NDJSON;
	else if (!strcmp(s, "line"))
		o->fmt = LOAD_LINE;
	else {
		say(NULL, "--format must be csv, ndjson or line");
		return -1;
	}
	o->fmt_set = true;
	return 0;
}

enum {
	OPT_URL = 256,
	OPT_TOKEN_FILE,
	OPT_SOURCE,
	OPT_FORMAT,
	OPT_BATCH,
	OPT_CONCURRENCY,
	OPT_GZIP,
	OPT_COLUMNS,
	OPT_NO_HEADER,
	OPT_DELIMITER,
	OPT_TIME_UNIT,
	OPT_RETRIES,
	OPT_QUIET,
	OPT_HELP,
	OPT_VERSION
};

static const struct option long_opts[] = {
    {"url", required_argument, NULL, OPT_URL},
    {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
    {"source", required_argument, NULL, OPT_SOURCE},
    {"format", required_argument, NULL, OPT_FORMAT},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"concurrency", required_argument, NULL, OPT_CONCURRENCY},
    {"gzip", no_argument, NULL, OPT_GZIP},
    {"csv-columns", required_argument, NULL, OPT_COLUMNS},
    {"no-header", no_argument, NULL, OPT_NO_HEADER},
    {"delimiter", required_argument, NULL, OPT_DELIMITER},
    {"time-unit", required_argument, NULL, OPT_TIME_UNIT},
    {"retries", required_argument, NULL, OPT_RETRIES},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* One option; 0 go on, 1 answered (--help/--version), -1 usage error. */
static int apply_option(struct opts *o, int c, const char *arg)
{
	switch (c) {
	case OPT_URL:
		o->url = arg;
		return 0;
	case OPT_TOKEN_FILE:
		o->token_file = arg;
		return 0;
	case OPT_SOURCE:
		o->source = arg;
		return 0;
	case OPT_FORMAT:
		return parse_format(o, arg);
	case OPT_BATCH:
		return parse_long("--batch", arg, 1, MAX_BATCH, &o->batch);
	case OPT_CONCURRENCY:
		return parse_long("--concurrency", arg, 1, MAX_CONCURRENCY, &o->concurrency);
	case OPT_GZIP:
		o->gzip = true;
		return 0;
	case OPT_COLUMNS:
		return parse_columns(o, arg);
	case OPT_NO_HEADER:
		o->csv.header = false;
		return 0;
	case OPT_DELIMITER:
		return parse_delimiter(o, arg);
	case OPT_TIME_UNIT:
		return parse_time_unit(o, arg);
	case OPT_RETRIES:
		return parse_long("--retries", arg, 0, MAX_RETRIES, &o->retries);
	case OPT_QUIET:
		o->quiet = true;
		return 0;
	case OPT_HELP:
		usage(stdout);
		return 1;
	case OPT_VERSION:
		printf(PROG " %s\n", PACKAGE_VERSION);
		return 1;
	default:
		return -1;
	}
}

static enum load_format format_for(const struct opts *o, const char *file);

/* Line protocol goes to another endpoint in another body: a run is all line protocol or
 * none. 0, or -1 (printed) for a mix. */
static int choose_protocol(struct opts *o)
{
	int lines = 0;

	for (int i = 0; i < o->nfiles; i++)
		lines += format_for(o, strcmp(o->files[i], "-") ? o->files[i] : "") == LOAD_LINE;
	if (lines > 0 && lines < o->nfiles) {
		say(NULL, "line-protocol files (.lp, .line) cannot be loaded together with CSV or "
		          "NDJSON; load them in separate runs, or pass --format");
		return -1;
	}
	o->line_protocol = o->nfiles ? lines > 0 : o->fmt_set && o->fmt == LOAD_LINE;
	return 0;
}

/* 0 go on, 1 answered (--help/--version), -1 usage error (message printed). */
static int parse_opts(struct opts *o, int argc, char **argv)
{
	int c, rc;

	*o = (struct opts){.url = DEFAULT_URL,
	                   .batch = DEFAULT_BATCH,
	                   .concurrency = DEFAULT_CONCURRENCY,
	                   .retries = DEFAULT_RETRIES,
	                   .csv = {.delimiter = ',', .header = true}};
	while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
		rc = apply_option(o, c, optarg);
		if (rc != 0)
			return rc;
	}
	if (!o->source) {
		say(NULL, "--source NAME is required");
		return -1;
	}
	o->files = argv + optind;
	o->nfiles = argc - optind;
	return choose_protocol(o);
}

/* The token from --token-file (first line, trimmed) or $TEMPORIS_TOKEN; never printed. */
static char *read_token(const struct opts *o)
{
	char buf[TOKEN_MAX], *token;
	const char *t = NULL;
	size_t n;

	if (o->token_file) {
		FILE *f = fopen(o->token_file, "r");
		if (!f) {
			say(NULL, "cannot open token file %s: %s", o->token_file, strerror(errno));
			return NULL;
		}
		t = fgets(buf, sizeof(buf), f);
		fclose(f);
		if (!t)
			buf[0] = '\0';
		t = buf;
	} else {
		t = getenv("TEMPORIS_TOKEN");
	}
	if (!t) {
		say(NULL, "no access token: use --token-file PATH or set TEMPORIS_TOKEN");
		return NULL;
	}
	while (isspace((unsigned char)*t))
		t++;
	for (n = strlen(t); n > 0 && isspace((unsigned char)t[n - 1]); n--)
		;
	if (n == 0) {
		say(NULL, "the access token is empty");
		return NULL;
	}
	token = strndup(t, n);
	if (!token)
		say(NULL, "out of memory");
	return token;
}

/* ---- input ---------------------------------------------------------------------------- */

static enum load_format format_for(const struct opts *o, const char *file)
{
	const char *dot = strrchr(file, '.');

	if (o->fmt_set)
		return o->fmt;
	if (dot && (!strcmp(dot, ".ndjson") || !strcmp(dot, ".jsonl")))
		return LOAD_NDJSON;
	if (dot && (!strcmp(dot, ".lp") || !strcmp(dot, ".line")))
		return LOAD_LINE;
	return LOAD_CSV;
}

/* Total bytes when every input is a regular file (for the ETA), else 0. */
static uint64_t input_total(const struct input *in)
{
	uint64_t total = 0;
	struct stat st;

	for (int i = 0; i < in->nfiles; i++) {
		int rc = strcmp(in->files[i], "-") ? stat(in->files[i], &st) : fstat(0, &st);
		if (rc < 0 || !S_ISREG(st.st_mode))
			return 0;
		total += (uint64_t)st.st_size;
	}
	return total;
}

static char *const stdin_only[] = {"-"};

static int input_init(struct input *in, const struct opts *o)
{
	char err[LOAD_ERR_MAX];

	memset(in, 0, sizeof(*in));
	in->files = o->nfiles ? o->files : stdin_only;
	in->nfiles = o->nfiles ? o->nfiles : 1;
	in->bytes_total = input_total(in);
	if (o->line_protocol) {
		in->lp = load_lp_new();
		if (!in->lp) {
			say(NULL, "out of memory");
			return -1;
		}
		return 0;
	}
	for (int f = LOAD_CSV; f <= LOAD_NDJSON; f++) {
		in->parser[f] = load_parser_new((enum load_format)f, &o->csv, err, sizeof(err));
		if (!in->parser[f]) {
			say(NULL, "%s", err);
			return -1;
		}
		load_parser_set_time_unit(in->parser[f], o->unit);
	}
	return 0;
}

static void input_close(struct input *in)
{
	if (in->fp && in->fp != stdin)
		fclose(in->fp);
	in->fp = NULL;
}

static void input_free(struct input *in)
{
	input_close(in);
	free(in->buf);
	load_parser_free(in->parser[LOAD_CSV]);
	load_parser_free(in->parser[LOAD_NDJSON]);
	load_lp_free(in->lp);
}

/* Open the next input; 0 opened, 1 no more input, -1 error (printed). */
static int input_open_next(struct loader *ld, struct input *in)
{
	const char *file;

	if (in->next >= in->nfiles)
		return 1;
	file = in->files[in->next++];
	if (!strcmp(file, "-")) {
		in->fp = stdin;
		in->name = "<stdin>";
	} else {
		in->fp = fopen(file, "r");
		in->name = file;
		if (!in->fp) {
			say(ld, "%s: %s", file, strerror(errno));
			return -1;
		}
	}
	if (in->lp) {
		load_lp_reset(in->lp);
	} else {
		in->cur = in->parser[format_for(ld->o, strcmp(file, "-") ? file : "")];
		load_parser_reset(in->cur);
	}
	in->line = 0;
	return 0;
}

/* The next physical line of the current input into in->buf: its length, 0 at the end of
 * this input, -1 on a read error (printed). */
static ssize_t input_line(struct loader *ld, struct input *in)
{
	ssize_t n;

	errno = 0;
	n = getline(&in->buf, &in->bufcap, in->fp);
	if (n < 0) {
		if (ferror(in->fp)) {
			say(ld, "%s: read error: %s", in->name, strerror(errno));
			return -1;
		}
		return 0;
	}
	in->line++;
	in->bytes_read += (uint64_t)n;
	return n;
}

/* A bad record: FILE:LINE, or FILE:LINES A-B for one that spans lines (a CSV record with
 * newlines in a quoted field), the style of a batch's line range. */
static void record_error(struct loader *ld, const struct load_record *rec, const char *err)
{
	if (rec->spans > 1)
		say(ld, "%s:LINES %" PRIu64 "-%" PRIu64 ": %s", ld->in.name, rec->line,
		    rec->line + rec->spans - 1, err);
	else
		say(ld, "%s:%" PRIu64 ": %s", ld->in.name, rec->line, err);
}

/* Read the next record of the current input into rec (a CSV record may take several
 * physical lines); 1 record, 0 end of this input, -1 error (printed). */
static int input_record(struct loader *ld, struct input *in, struct load_record *rec)
{
	char err[LOAD_ERR_MAX];
	ssize_t n;

	for (;;) {
		n = input_line(ld, in);
		if (n < 0)
			return -1;
		if (n == 0) {
			if (load_parser_end(in->cur, &rec->line, err, sizeof(err)) == 0)
				return 0;
			say(ld, "%s:%" PRIu64 ": %s", in->name, rec->line, err);
			return -1;
		}
		switch (load_parser_line(in->cur, in->buf, (size_t)n, rec, err, sizeof(err))) {
		case LOAD_RECORD:
			return 1;
		case LOAD_SKIP:
			continue;
		case LOAD_ERROR:
			record_error(ld, rec, err);
			return -1;
		}
	}
}

/* A "# CONTEXT-DATABASE: NAME" header of an export: the data goes to --source all the
 * same; say so once if the export came from another database. */
static void context_note(struct loader *ld, const struct load_lp_line *l)
{
	const char *src = ld->o->source;

	if (ld->context_noted ||
	    (l->context_db_len == strlen(src) && !memcmp(l->context_db, src, l->context_db_len)))
		return;
	ld->context_noted = true;
	say(ld, "%s:%" PRIu64 ": note: CONTEXT-DATABASE is '%.*s'; loading into --source %s",
	    ld->in.name, l->line, (int)l->context_db_len, l->context_db, src);
}

/* Read the next data line of the current input into l (pointing into in->buf or the
 * splitter); 1 line, 0 end of this input, -1 error (printed). */
static int input_lp_line(struct loader *ld, struct input *in, struct load_lp_line *l)
{
	char err[LOAD_ERR_MAX];
	enum load_status st;
	ssize_t n;

	for (;;) {
		n = input_line(ld, in);
		if (n < 0)
			return -1;
		if (n == 0) {
			if (load_lp_end(in->lp, &l->line, err, sizeof(err)) == 0)
				return 0;
			break;
		}
		st = load_lp_feed(in->lp, in->buf, (size_t)n, l, err, sizeof(err));
		if (st == LOAD_RECORD)
			return 1;
		if (st == LOAD_ERROR)
			break;
		if (l->context_db)
			context_note(ld, l);
	}
	say(ld, "%s:%" PRIu64 ": %s", in->name, l->line, err);
	return -1;
}

/* Open the next input when none is open; 0 one is open, 1 no more input, -1 error. A batch
 * never spans two inputs, so its line range names one file: with a non-empty batch the
 * answer is 1 at the end of an input. */
static int input_ready(struct loader *ld, const struct load_batch *b)
{
	if (ld->in.fp)
		return 0;
	if (b->count > 0)
		return 1;
	return input_open_next(ld, &ld->in);
}

/* The next record (or line-protocol line) of the open input into b: 1 added, 0 the input
 * ended, -1 error (printed). */
static int add_next(struct loader *ld, struct input *in, struct load_batch *b)
{
	struct load_lp_line l;
	struct load_record rec;
	int rc = ld->o->line_protocol ? input_lp_line(ld, in, &l) : input_record(ld, in, &rec);

	if (rc <= 0)
		return rc;
	b->file = in->name;
	rc = ld->o->line_protocol ? load_batch_add_line(b, l.text, l.len, l.line, l.spans)
				  : load_batch_add(b, &rec);
	if (rc < 0) {
		say(ld, "out of memory");
		return -1;
	}
	return 1;
}

/* The client's fill hook: b with up to --batch records (or lines); a batch never spans two
 * inputs, so its line range names one file. 0 ok (b->count is 0 at the end of all input),
 * -1 error (printed). */
static int fill_batch(void *arg, struct load_batch *b)
{
	struct loader *ld = arg;
	struct input *in = &ld->in;
	int rc;

	load_batch_reset(b, NULL);
	while (!load_batch_full(b)) {
		rc = input_ready(ld, b);
		if (rc != 0)
			return rc < 0 ? -1 : 0;
		rc = add_next(ld, in, b);
		if (rc < 0)
			return -1;
		if (rc == 0)
			input_close(in);
	}
	return 0;
}

/* ---- progress ------------------------------------------------------------------------- */

static void progress_tty(struct loader *ld, const struct load_stats *st, double el, double rate)
{
	char bar[BAR_WIDTH + 1];
	double frac;
	long eta;
	int filled;

	if (ld->in.bytes_total == 0) {
		fprintf(stderr, "\r%" PRIu64 " %s  %.0f %s/s  %" PRIu64 " retries\033[K", st->sent,
		        ld->unit, rate, ld->unit, st->retries);
		ld->progress_shown = true;
		return;
	}
	frac = (double)ld->in.bytes_read / (double)ld->in.bytes_total;
	if (frac > 1)
		frac = 1;
	filled = (int)(frac * BAR_WIDTH);
	memset(bar, '#', (size_t)filled);
	memset(bar + filled, '.', (size_t)(BAR_WIDTH - filled));
	bar[BAR_WIDTH] = '\0';
	eta = frac > 0 ? (long)(el * (1 - frac) / frac) : 0;
	fprintf(stderr,
	        "\r[%s] %3d%%  %" PRIu64 " %s  %.0f %s/s  %" PRIu64 " retries  ETA %ld:%02ld\033[K",
	        bar, (int)(frac * PERCENT), st->sent, ld->unit, rate, ld->unit, st->retries,
	        eta / SECS_PER_MIN, eta % SECS_PER_MIN);
	ld->progress_shown = true;
}

static void progress_tick(evutil_socket_t fd, short what, void *arg)
{
	struct loader *ld = arg;
	struct load_stats st;
	double el = elapsed_s(ld), rate;

	load_client_stats(ld->client, &st);
	rate = el > 0 ? (double)st.sent / el : 0;
	if (ld->tty) {
		progress_tty(ld, &st, el, rate);
	} else if (ld->in.bytes_total) {
		fprintf(stderr, PROG ": %" PRIu64 " %s sent, %.0f %s/s, %d%% read\n", st.sent,
		        ld->unit, rate, ld->unit,
		        (int)((double)PERCENT * (double)ld->in.bytes_read /
		              (double)ld->in.bytes_total));
	} else {
		fprintf(stderr, PROG ": %" PRIu64 " %s sent, %.0f %s/s\n", st.sent, ld->unit, rate,
		        ld->unit);
	}
	fflush(stderr);
}

/* "N records, ..." (line protocol: "N lines, ...": the server makes the records, one per
 * numeric field, and does not say how many); what the server refused only if anything. */
static void summary(struct loader *ld, const struct load_stats *st)
{
	double el = elapsed_s(ld);
	char rejected[REJECTED_TEXT_MAX] = "";

	if (st->rejected)
		snprintf(rejected, sizeof(rejected), ", %" PRIu64 " rejected", st->rejected);
	say(ld, "%" PRIu64 " %s%s, %" PRIu64 " requests, %" PRIu64 " retries, %.2f s, %.0f %s/s",
	    st->sent, ld->unit, rejected, st->requests, st->retries, el,
	    el > 0 ? (double)st->sent / el : 0.0, ld->unit);
}

/* ---- set-up and main ------------------------------------------------------------------- */

static void say_hook(void *arg, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void say_hook(void *arg, const char *fmt, va_list ap)
{
	vsay(arg, fmt, ap);
}

/* The HTTP client for the options; NULL after saying why (a bad --url). */
static struct load_client *client_new(struct loader *ld)
{
	const struct opts *o = ld->o;
	struct load_client_opts co = {.url = o->url,
	                              .source = o->source,
	                              .batch = (size_t)o->batch,
	                              .concurrency = o->concurrency,
	                              .retries = o->retries,
	                              .gzip = o->gzip,
	                              .line_protocol = o->line_protocol,
	                              .unit = o->unit};
	struct load_client_hooks hooks = {.fill = fill_batch, .vsay = say_hook, .arg = ld};

	return load_client_new(&co, &hooks);
}

static int loader_init(struct loader *ld, const char *token)
{
	struct timeval tick = {.tv_sec = 0, .tv_usec = PROGRESS_TTY_MS * US_PER_MS};

	ld->tty = isatty(STDERR_FILENO);
	if (!ld->tty)
		tick = (struct timeval){.tv_sec = PROGRESS_PLAIN_S};
	ld->base = event_base_new();
	if (!ld->base)
		return -1;
	ld->progress_ev = event_new(ld->base, -1, EV_PERSIST, progress_tick, ld);
	if (!ld->progress_ev || load_client_open(ld->client, ld->base, token) < 0)
		return -1;
	if (!ld->o->quiet && event_add(ld->progress_ev, &tick) < 0)
		return -1;
	return 0;
}

static void loader_free(struct loader *ld)
{
	/* the client's events and connections live on the base: they go first */
	load_client_free(ld->client);
	if (ld->progress_ev)
		event_free(ld->progress_ev);
	if (ld->base)
		event_base_free(ld->base);
	input_free(&ld->in);
}

static int run(struct loader *ld)
{
	struct load_stats st;

	ld->start_us = mono_us();
	load_client_start(ld->client);
	if (event_base_dispatch(ld->base) < 0) {
		say(ld, "event loop failed");
		return EXIT_FAIL;
	}
	load_client_stats(ld->client, &st);
	if (!ld->o->quiet)
		summary(ld, &st);
	if (!st.failed && !st.drained) {
		/* only if libevent kept a body reference forever; never report that as success */
		say(ld, "stopped before the end of the input");
		return EXIT_FAIL;
	}
	return st.failed ? EXIT_FAIL : EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct loader ld;
	char *token = NULL;
	int status = EXIT_USAGE, rc;

	memset(&ld, 0, sizeof(ld));
	ld.o = &o;
	rc = parse_opts(&o, argc, argv);
	if (rc != 0) {
		status = rc > 0 ? EXIT_SUCCESS : EXIT_USAGE;
		goto out;
	}
	ld.unit = o.line_protocol ? "lines" : "records";
	ld.client = client_new(&ld);
	if (!ld.client || input_init(&ld.in, &o) < 0)
		goto out;
	token = read_token(&o);
	if (!token)
		goto out;
	status = EXIT_FAIL;
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR || loader_init(&ld, token) < 0) {
		say(NULL, "cannot set up: %s", errno ? strerror(errno) : "out of memory");
		goto out;
	}
	/* the retry back-off's jitter: different for loaders started together */
	srandom((unsigned)time(NULL) ^ (unsigned)getpid());
	status = run(&ld);
out:
	loader_free(&ld);
	if (token)
		explicit_bzero(token, strlen(token));
	free(token);
	free(o.columns);
	return status;
}
