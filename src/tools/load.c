/*
 * load.c - temporis-load, the bulk history loader: streams CSV/NDJSON input, cuts it into
 * batches (load_batch.c) and POSTs them to /v1/data_sources/ingest over a few keep-alive
 * libevent evhttp connections, retrying what is safe to retry (ingest is an idempotent
 * upsert). Owns the options, the event loop, the connection slots and the progress line.
 * Memory stays bounded: each slot holds one batch, input is read only when a slot is free.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <ctype.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "temporis/base/buf.h"
#include "temporis/tools/load_batch.h"
#include "temporis/tools/load_parse.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "dev"
#endif

#define PROG "temporis-load"
#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define DEFAULT_URL "http://127.0.0.1:8080"
#define INGEST_PATH "/v1/data_sources/ingest"
#define DEFAULT_BATCH 5000
#define MAX_BATCH 1000000
#define DEFAULT_CONCURRENCY 4
#define MAX_CONCURRENCY 256
#define DEFAULT_RETRIES 10
#define MAX_RETRIES 1000
#define HTTP_DEFAULT_PORT 80
#define REQUEST_TIMEOUT_S 120    /* per request; the server answers 503 long before this */
#define RESPONSE_MAX_BYTES 65536 /* error bodies are one short JSON object */
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 10000
#define RETRY_AFTER_MAX_S 60 /* never let a server park us longer than this per attempt */
#define TOKEN_MAX 4096
#define DETAIL_MAX 512
#define MSG_MAX 1024
#define PROGRESS_TTY_MS 200
#define PROGRESS_PLAIN_S 5
#define BAR_WIDTH 24
#define MS_PER_S 1000
#define US_PER_MS 1000
#define NS_PER_S 1000000000.0
#define SECS_PER_MIN 60
#define HTTP_SUCCESS_MIN 200
#define HTTP_SUCCESS_END 300
#define HTTP_REQUEST_TIMEOUT_CODE 408
#define HTTP_TOO_LARGE_CODE 413
#define HTTP_TOO_MANY_CODE 429
#define HTTP_SERVER_ERROR_MIN 500

struct opts {
	const char *url, *token_file, *source;
	enum load_format fmt;
	bool fmt_set, gzip, quiet;
	long batch, concurrency, retries;
	struct load_csv_opts csv;
	char *columns; /* owns the strings csv.columns[] point into */
	char **files;
	int nfiles;
};

struct input {
	char *const *files;
	int nfiles, next;
	FILE *fp;
	const char *name;
	struct load_parser *parser[2]; /* indexed by enum load_format */
	struct load_parser *cur;
	uint64_t line;
	char *buf;
	size_t bufcap;
	bool done;
	uint64_t bytes_read, bytes_total; /* bytes_total 0: unknown (a pipe) */
};

enum slot_state { SLOT_IDLE, SLOT_SENDING, SLOT_WAITING };

struct loader;

/* One connection and the batch it owns until the server accepts it (or we give up). */
struct slot {
	struct loader *ld;
	struct evhttp_connection *evcon;
	struct load_batch batch;
	struct buf gz; /* the batch's body compressed, with --gzip */
	enum slot_state state;
	long attempt;  /* retries of the current batch so far */
	int body_refs; /* body chunks libevent still references (see body_released) */
	struct event *retry_ev;
	enum evhttp_request_error conn_err;
	bool has_conn_err;
	char last_error[MSG_MAX];
};

struct loader {
	const struct opts *o;
	struct event_base *base;
	struct event *pump_ev, *progress_ev;
	char host[256];
	int port;
	char *path;
	char *auth;
	struct slot *slots;
	int inflight; /* slots not idle */
	struct input in;
	bool fatal, tty, progress_shown;
	uint64_t records_sent, requests, retries;
	struct timespec start;
};

static void say(struct loader *ld, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Every message goes through here so that a TTY progress line is cleared first. */
static void say(struct loader *ld, const char *fmt, ...)
{
	va_list ap;

	if (ld && ld->progress_shown) {
		fputs("\r\033[K", stderr);
		ld->progress_shown = false;
	}
	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static double elapsed_s(const struct loader *ld)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - ld->start.tv_sec) +
	       (double)(now.tv_nsec - ld->start.tv_nsec) / NS_PER_S;
}

/* ---- options ------------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: " PROG " [OPTIONS] --source NAME [FILE...]\n"
	    "Loads (timestamp, name, value) records from CSV or NDJSON files (stdin when no FILE\n"
	    "or FILE is -) into a data source of a temporis server.\n\n"
	    "  --source NAME          data source to write into (required)\n"
	    "  --url URL              server (default " DEFAULT_URL ")\n"
	    "  --token-file PATH      file holding the access token (else $TEMPORIS_TOKEN)\n"
	    "  --format csv|ndjson    input format (default: by extension .csv/.ndjson/.jsonl,\n"
	    "                         else csv)\n"
	    "  --batch N              records per request (default %d)\n"
	    "  --concurrency N        parallel connections (default %d)\n"
	    "  --gzip                 send gzip-compressed request bodies\n"
	    "  --csv-columns T,N,V    timestamp,name,value columns by header name or 1-based "
	    "index\n"
	    "                         (default timestamp,name,value)\n"
	    "  --no-header            CSV input has no header line (columns 1,2,3 by default)\n"
	    "  --delimiter C          CSV field delimiter (default ','; 'tab' for a tab)\n"
	    "  --retries N            retries per request on connection errors, 408, 429, 5xx\n"
	    "                         (default %d)\n"
	    "  --quiet                no progress and no summary\n"
	    "  --help, --version\n\n"
	    "Exit status: 0 all records accepted, 1 bad input or a server/network error,\n"
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
	else {
		say(NULL, "--format must be csv or ndjson");
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
	return 0;
}

/* The token from --token-file (first line, trimmed) or $TEMPORIS_TOKEN; never printed. */
static char *read_token(const struct opts *o)
{
	char buf[TOKEN_MAX];
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
	return strndup(t, n);
}

/* ---- target --------------------------------------------------------------------------- */

/* Host, port and request path from --url; only plain http (put TLS in a proxy). */
static int setup_target(struct loader *ld, const char *url)
{
	struct evhttp_uri *uri = evhttp_uri_parse(url);
	const char *scheme, *host, *path;
	size_t plen;
	int rc = -1;

	if (!uri) {
		say(NULL, "--url %s is not a valid URL", url);
		return -1;
	}
	scheme = evhttp_uri_get_scheme(uri);
	host = evhttp_uri_get_host(uri);
	if (!scheme || strcasecmp(scheme, "http") || !host || !*host) {
		say(NULL, "--url must look like http://HOST[:PORT][/PREFIX] (got %s)", url);
		goto out;
	}
	if (snprintf(ld->host, sizeof(ld->host), "%s", host) >= (int)sizeof(ld->host)) {
		say(NULL, "--url host name is too long");
		goto out;
	}
	ld->port = evhttp_uri_get_port(uri) > 0 ? evhttp_uri_get_port(uri) : HTTP_DEFAULT_PORT;
	path = evhttp_uri_get_path(uri) ? evhttp_uri_get_path(uri) : "";
	for (plen = strlen(path); plen > 0 && path[plen - 1] == '/'; plen--)
		;
	if (asprintf(&ld->path, "%.*s%s", (int)plen, path, INGEST_PATH) < 0) {
		ld->path = NULL;
		say(NULL, "out of memory");
		goto out;
	}
	rc = 0;
out:
	evhttp_uri_free(uri);
	return rc;
}

/* ---- input ---------------------------------------------------------------------------- */

static enum load_format format_for(const struct opts *o, const char *file)
{
	const char *dot = strrchr(file, '.');

	if (o->fmt_set)
		return o->fmt;
	if (dot && (!strcmp(dot, ".ndjson") || !strcmp(dot, ".jsonl")))
		return LOAD_NDJSON;
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
	for (int f = LOAD_CSV; f <= LOAD_NDJSON; f++) {
		in->parser[f] = load_parser_new((enum load_format)f, &o->csv, err, sizeof(err));
		if (!in->parser[f]) {
			say(NULL, "%s", err);
			return -1;
		}
	}
	in->bytes_total = input_total(in);
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
}

/* Open the next input; 0 opened, 1 no more input, -1 error (printed). */
static int input_open_next(struct loader *ld, struct input *in)
{
	const char *file;

	if (in->next >= in->nfiles) {
		in->done = true;
		return 1;
	}
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
	in->cur = in->parser[format_for(ld->o, strcmp(file, "-") ? file : "")];
	load_parser_reset(in->cur);
	in->line = 0;
	return 0;
}

/* Read one line of the current input into rec; 1 record, 0 end of this input, -1 error. */
static int input_record(struct loader *ld, struct input *in, struct load_record *rec)
{
	char err[LOAD_ERR_MAX];
	ssize_t n;

	for (;;) {
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
		switch (load_parser_line(in->cur, in->buf, (size_t)n, rec, err, sizeof(err))) {
		case LOAD_RECORD:
			return 1;
		case LOAD_SKIP:
			continue;
		case LOAD_ERROR:
			say(ld, "%s:%" PRIu64 ": %s", in->name, in->line, err);
			return -1;
		}
	}
}

/* Fill b with up to --batch records; a batch never spans two inputs, so its line range
 * names one file. 0 ok (b->count may be 0 at the end of all input), -1 error (printed). */
static int fill_batch(struct loader *ld, struct load_batch *b)
{
	struct input *in = &ld->in;
	struct load_record rec;
	int rc;

	load_batch_reset(b, NULL);
	while (!load_batch_full(b)) {
		if (!in->fp) {
			if (b->count > 0)
				return 0;
			rc = input_open_next(ld, in);
			if (rc != 0)
				return rc < 0 ? -1 : 0;
		}
		rc = input_record(ld, in, &rec);
		if (rc < 0)
			return -1;
		if (rc == 0) {
			input_close(in);
			continue;
		}
		b->file = in->name;
		if (load_batch_add(b, &rec, in->line) < 0) {
			say(ld, "out of memory");
			return -1;
		}
	}
	return 0;
}

/* ---- requests ------------------------------------------------------------------------- */

static void schedule_pump(struct loader *ld)
{
	event_active(ld->pump_ev, EV_TIMEOUT, 0);
}

static void slot_idle(struct slot *s)
{
	if (s->state != SLOT_IDLE)
		s->ld->inflight--;
	s->state = SLOT_IDLE;
	schedule_pump(s->ld);
}

/* libevent sends the body from our buffer without copying it; the slot's batch may only be
 * rebuilt once libevent has let go of it (normally long before the response arrives). */
static void body_released(const void *data, size_t len, void *arg)
{
	struct slot *s = arg;

	s->body_refs--;
	if (s->body_refs == 0 && s->state == SLOT_IDLE)
		schedule_pump(s->ld);
}

static void request_done(struct evhttp_request *req, void *arg);

static void request_error(enum evhttp_request_error err, void *arg)
{
	struct slot *s = arg;

	s->conn_err = err;
	s->has_conn_err = true;
}

static int add_headers(struct loader *ld, struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	char host[sizeof(ld->host) + 16];

	snprintf(host, sizeof(host), "%s:%d", ld->host, ld->port);
	if (evhttp_add_header(h, "Host", host) < 0 ||
	    evhttp_add_header(h, "Authorization", ld->auth) < 0 ||
	    evhttp_add_header(h, "Content-Type", "application/json") < 0 ||
	    (ld->o->gzip && evhttp_add_header(h, "Content-Encoding", "gzip") < 0))
		return -1;
	return 0;
}

/* Issue (or re-issue) the slot's finished batch. -1: could not even start it. */
static int slot_request(struct slot *s)
{
	struct loader *ld = s->ld;
	struct evhttp_request *req = evhttp_request_new(request_done, s);
	const struct buf *body = ld->o->gzip ? &s->gz : &s->batch.body;

	if (!req)
		return -1;
	evhttp_request_set_error_cb(req, request_error);
	s->has_conn_err = false;
	if (add_headers(ld, req) < 0 ||
	    evbuffer_add_reference(evhttp_request_get_output_buffer(req), body->data, body->len,
	                           body_released, s) < 0) {
		evhttp_request_free(req);
		return -1;
	}
	s->body_refs++;
	s->state = SLOT_SENDING;
	/* libevent owns req from here on, also when this fails */
	return evhttp_make_request(s->evcon, req, EVHTTP_REQ_POST, ld->path);
}

/* Give up: no new batches, no further retries; requests on the wire may still finish. */
static void stop_loading(struct loader *ld)
{
	ld->fatal = true;
	for (long i = 0; i < ld->o->concurrency; i++) {
		struct slot *s = &ld->slots[i];
		if (s->state == SLOT_WAITING) {
			evtimer_del(s->retry_ev);
			slot_idle(s);
		}
	}
	schedule_pump(ld);
}

static int slot_send(struct slot *s)
{
	struct loader *ld = s->ld;

	if (load_batch_finish(&s->batch) < 0 ||
	    (ld->o->gzip &&
	     load_gzip(s->batch.body.data, s->batch.body.len, &s->gz) < 0)) {
		say(ld, "out of memory while building a request");
		return -1;
	}
	s->attempt = 0;
	ld->inflight++;
	s->state = SLOT_SENDING;
	if (slot_request(s) < 0) {
		say(ld, "cannot start a request to %s:%d", ld->host, ld->port);
		slot_idle(s);
		return -1;
	}
	return 0;
}

/* The event loop's only producer: fill every free slot with a batch and send it. Runs from
 * its own event so that callbacks never rebuild a buffer libevent is still using. */
static void pump(evutil_socket_t fd, short what, void *arg)
{
	struct loader *ld = arg;

	for (long i = 0; i < ld->o->concurrency && !ld->fatal && !ld->in.done; i++) {
		struct slot *s = &ld->slots[i];
		if (s->state != SLOT_IDLE || s->body_refs > 0)
			continue;
		if (fill_batch(ld, &s->batch) < 0 || (s->batch.count > 0 && slot_send(s) < 0)) {
			stop_loading(ld);
			break;
		}
	}
	if ((ld->fatal || ld->in.done) && ld->inflight == 0)
		event_base_loopexit(ld->base, NULL);
}

/* ---- responses ------------------------------------------------------------------------ */

static const char *conn_error_text(const struct slot *s)
{
	if (!s->has_conn_err)
		return "connection failed";
	switch (s->conn_err) {
	case EVREQ_HTTP_TIMEOUT:
		return "request timed out";
	case EVREQ_HTTP_EOF:
		return "connection refused or closed";
	case EVREQ_HTTP_INVALID_HEADER:
		return "invalid response from the server";
	case EVREQ_HTTP_BUFFER_ERROR:
		return "connection error";
	case EVREQ_HTTP_REQUEST_CANCEL:
		return "request cancelled";
	case EVREQ_HTTP_DATA_TOO_LONG:
		return "response too large";
	}
	return "connection failed";
}

/* The "detail" of a JSON error body, else a short excerpt of whatever came back. */
static void response_detail(struct evhttp_request *req, char *out, size_t outlen)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *text = (const char *)evbuffer_pullup(in, -1);
	const char *reason = evhttp_request_get_response_code_line(req);
	struct json_tokener *tok = NULL;
	struct json_object *j = NULL, *d;

	snprintf(out, outlen, "%s", reason ? reason : "");
	if (!text || len == 0 || len > INT_MAX)
		return;
	tok = json_tokener_new();
	if (!tok)
		return;
	j = json_tokener_parse_ex(tok, text, (int)len);
	if (j && json_object_object_get_ex(j, "detail", &d) &&
	    json_object_is_type(d, json_type_string))
		snprintf(out, outlen, "%s", json_object_get_string(d));
	else
		snprintf(out, outlen, "%.*s", (int)(len < DETAIL_MAX / 4 ? len : DETAIL_MAX / 4),
		         text);
	json_object_put(j);
	json_tokener_free(tok);
}

/* "FILE:LINES 1201-1300" for the batch of slot s. */
static void batch_where(const struct slot *s, char *out, size_t outlen)
{
	const struct load_batch *b = &s->batch;

	snprintf(out, outlen, "%s:LINES %" PRIu64 "-%" PRIu64, b->file ? b->file : "?",
	         b->count ? b->lines[0] : 0, b->count ? b->lines[b->count - 1] : 0);
}

static bool retryable(int code)
{
	return code == 0 || code == HTTP_REQUEST_TIMEOUT_CODE || code == HTTP_TOO_MANY_CODE ||
	       code >= HTTP_SERVER_ERROR_MIN;
}

/* Exponential back-off with jitter (so the connections do not retry in lockstep), but never
 * sooner than the server's Retry-After. */
static long backoff_ms(long attempt, struct evhttp_request *req)
{
	long base = BACKOFF_FIRST_MS, ms;
	const char *ra =
	    req ? evhttp_find_header(evhttp_request_get_input_headers(req), "Retry-After") : NULL;

	for (long i = 1; i < attempt && base < BACKOFF_MAX_MS; i++)
		base *= 2;
	if (base > BACKOFF_MAX_MS)
		base = BACKOFF_MAX_MS;
	ms = base / 2 + random() % (base / 2 + 1);
	if (ra) {
		char *end;
		long secs = strtol(ra, &end, 10);
		if (end != ra && secs > 0) {
			if (secs > RETRY_AFTER_MAX_S)
				secs = RETRY_AFTER_MAX_S;
			if (secs * MS_PER_S > ms)
				ms = secs * MS_PER_S;
		}
	}
	return ms;
}

static void retry_fire(evutil_socket_t fd, short what, void *arg)
{
	struct slot *s = arg;

	if (s->ld->fatal) {
		slot_idle(s);
		return;
	}
	if (slot_request(s) < 0) {
		say(s->ld, "cannot start a request to %s:%d", s->ld->host, s->ld->port);
		stop_loading(s->ld);
		slot_idle(s);
	}
}

static void retry_or_give_up(struct slot *s, int code, const char *detail,
                             struct evhttp_request *req)
{
	struct loader *ld = s->ld;
	char where[MSG_MAX];
	long ms;

	if (code)
		snprintf(s->last_error, sizeof(s->last_error), "%d %s", code, detail);
	else
		snprintf(s->last_error, sizeof(s->last_error), "%s", detail);
	if (ld->fatal) {
		slot_idle(s);
		return;
	}
	if (s->attempt >= ld->o->retries) {
		batch_where(s, where, sizeof(where));
		say(ld, "%s: giving up after %ld attempts: %s", where, s->attempt + 1,
		    s->last_error);
		stop_loading(ld);
		slot_idle(s);
		return;
	}
	s->attempt++;
	ld->retries++;
	ms = backoff_ms(s->attempt, req);
	struct timeval tv = {.tv_sec = ms / MS_PER_S, .tv_usec = (ms % MS_PER_S) * US_PER_MS};
	s->state = SLOT_WAITING;
	if (evtimer_add(s->retry_ev, &tv) < 0) {
		say(ld, "cannot schedule a retry");
		stop_loading(ld);
		slot_idle(s);
	}
}

/* A 4xx that retrying cannot fix: say which input lines it concerns, and if the server
 * named a record ("records[3].value ..."), that record's own line. */
static void report_rejection(const struct slot *s, int code, const char *detail)
{
	char where[MSG_MAX], hint[MSG_MAX] = "";
	const char *r = strstr(detail, "records[");
	unsigned long k;

	batch_where(s, where, sizeof(where));
	if (r && sscanf(r, "records[%lu]", &k) == 1 && k < s->batch.count)
		snprintf(hint, sizeof(hint), " (record at %s:%" PRIu64 ")", s->batch.file,
		         s->batch.lines[k]);
	else if (code == HTTP_TOO_LARGE_CODE)
		snprintf(hint, sizeof(hint), " (try a smaller --batch)");
	say(s->ld, "%s: %d %s%s", where, code, detail, hint);
}

static void request_done(struct evhttp_request *req, void *arg)
{
	struct slot *s = arg;
	struct loader *ld = s->ld;
	int code = req ? evhttp_request_get_response_code(req) : 0;
	char detail[DETAIL_MAX];

	ld->requests++;
	if (code >= HTTP_SUCCESS_MIN && code < HTTP_SUCCESS_END) {
		ld->records_sent += s->batch.count;
		slot_idle(s);
		return;
	}
	if (code == 0)
		snprintf(detail, sizeof(detail), "%s (%s:%d)", conn_error_text(s), ld->host,
		         ld->port);
	else
		response_detail(req, detail, sizeof(detail));
	if (retryable(code)) {
		retry_or_give_up(s, code, detail, req);
		return;
	}
	report_rejection(s, code, detail);
	stop_loading(ld);
	slot_idle(s);
}

/* ---- progress ------------------------------------------------------------------------- */

static void progress_tty(struct loader *ld, double el, double rate)
{
	char bar[BAR_WIDTH + 1];
	double frac;
	long eta;
	int filled;

	if (ld->in.bytes_total == 0) {
		fprintf(stderr, "\r%" PRIu64 " records  %.0f records/s  %" PRIu64 " retries\033[K",
		        ld->records_sent, rate, ld->retries);
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
	        "\r[%s] %3d%%  %" PRIu64 " records  %.0f records/s  %" PRIu64
	        " retries  ETA %ld:%02ld\033[K",
	        bar, (int)(frac * 100), ld->records_sent, rate, ld->retries, eta / SECS_PER_MIN,
	        eta % SECS_PER_MIN);
	ld->progress_shown = true;
}

static void progress_tick(evutil_socket_t fd, short what, void *arg)
{
	struct loader *ld = arg;
	double el = elapsed_s(ld);
	double rate = el > 0 ? (double)ld->records_sent / el : 0;

	if (ld->tty) {
		progress_tty(ld, el, rate);
	} else if (ld->in.bytes_total) {
		fprintf(stderr, PROG ": %" PRIu64 " records sent, %.0f records/s, %d%% read\n",
		        ld->records_sent, rate,
		        (int)(100.0 * (double)ld->in.bytes_read / (double)ld->in.bytes_total));
	} else {
		fprintf(stderr, PROG ": %" PRIu64 " records sent, %.0f records/s\n",
		        ld->records_sent, rate);
	}
	fflush(stderr);
}

static void summary(struct loader *ld)
{
	double el = elapsed_s(ld);

	say(ld,
	    "%" PRIu64 " records, %" PRIu64 " requests, %" PRIu64 " retries, %.2f s, %.0f "
	    "records/s",
	    ld->records_sent, ld->requests, ld->retries, el,
	    el > 0 ? (double)ld->records_sent / el : 0.0);
}

/* ---- set-up and main ------------------------------------------------------------------- */

static int slot_init(struct loader *ld, struct slot *s)
{
	s->ld = ld;
	s->evcon = evhttp_connection_base_new(ld->base, NULL, ld->host, (unsigned short)ld->port);
	s->retry_ev = evtimer_new(ld->base, retry_fire, s);
	if (!s->evcon || !s->retry_ev ||
	    load_batch_init(&s->batch, ld->o->source, (size_t)ld->o->batch) < 0)
		return -1;
	evhttp_connection_set_timeout(s->evcon, REQUEST_TIMEOUT_S);
	evhttp_connection_set_max_body_size(s->evcon, RESPONSE_MAX_BYTES);
	return 0;
}

static int loader_init(struct loader *ld, const struct opts *o, const char *token)
{
	struct timeval tick = {.tv_sec = 0, .tv_usec = PROGRESS_TTY_MS * US_PER_MS};

	ld->o = o;
	ld->tty = isatty(STDERR_FILENO);
	if (!ld->tty)
		tick = (struct timeval){.tv_sec = PROGRESS_PLAIN_S};
	if (asprintf(&ld->auth, "Bearer %s", token) < 0) {
		ld->auth = NULL;
		return -1;
	}
	ld->base = event_base_new();
	if (!ld->base)
		return -1;
	ld->pump_ev = event_new(ld->base, -1, 0, pump, ld);
	ld->progress_ev = event_new(ld->base, -1, EV_PERSIST, progress_tick, ld);
	ld->slots = calloc((size_t)o->concurrency, sizeof(*ld->slots));
	if (!ld->pump_ev || !ld->progress_ev || !ld->slots)
		return -1;
	for (long i = 0; i < o->concurrency; i++)
		if (slot_init(ld, &ld->slots[i]) < 0)
			return -1;
	if (!o->quiet && event_add(ld->progress_ev, &tick) < 0)
		return -1;
	return 0;
}

static void loader_free(struct loader *ld)
{
	/* connections first: freeing them releases the body references into the slots */
	for (long i = 0; ld->slots && i < ld->o->concurrency; i++)
		if (ld->slots[i].evcon)
			evhttp_connection_free(ld->slots[i].evcon);
	for (long i = 0; ld->slots && i < ld->o->concurrency; i++) {
		struct slot *s = &ld->slots[i];
		if (s->retry_ev)
			event_free(s->retry_ev);
		load_batch_free(&s->batch);
		buf_free(&s->gz);
	}
	free(ld->slots);
	if (ld->pump_ev)
		event_free(ld->pump_ev);
	if (ld->progress_ev)
		event_free(ld->progress_ev);
	if (ld->base)
		event_base_free(ld->base);
	input_free(&ld->in);
	free(ld->path);
	if (ld->auth)
		explicit_bzero(ld->auth, strlen(ld->auth));
	free(ld->auth);
}

static int run(struct loader *ld)
{
	clock_gettime(CLOCK_MONOTONIC, &ld->start);
	schedule_pump(ld);
	if (event_base_dispatch(ld->base) < 0) {
		say(ld, "event loop failed");
		return EXIT_FAIL;
	}
	if (!ld->o->quiet)
		summary(ld);
	if (!ld->fatal && !ld->in.done) {
		/* only if libevent kept a body reference forever; never report that as success */
		say(ld, "stopped before the end of the input");
		return EXIT_FAIL;
	}
	return ld->fatal ? EXIT_FAIL : EXIT_SUCCESS;
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
	if (setup_target(&ld, o.url) < 0 || input_init(&ld.in, &o) < 0)
		goto out;
	token = read_token(&o);
	if (!token)
		goto out;
	status = EXIT_FAIL;
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR || loader_init(&ld, &o, token) < 0) {
		say(NULL, "cannot set up: %s", errno ? strerror(errno) : "out of memory");
		goto out;
	}
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
