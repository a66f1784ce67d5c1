/*
 * load.h - the parts of temporis-load (the bulk history loader) that turn input lines into
 * ingest request bodies: CSV/NDJSON line parsing with number typing (load_parse.c) and the
 * batch that accumulates records as ready-to-send JSON text (load_batch.c). The HTTP client,
 * options and progress live in src/load.c and are not part of this interface.
 */
#ifndef TEMPORIS_LOAD_H
#define TEMPORIS_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOAD_ERR_MAX 256 /* size of an error message buffer (message without FILE:LINE) */

enum load_format { LOAD_CSV, LOAD_NDJSON };

/* A value keeps its JSON type: an integer literal stays an int64, anything else is a double. */
struct load_value {
	bool is_int;
	int64_t i;
	double d;
};

/* One parsed record. name points into the parser and is valid until its next call. */
struct load_record {
	int64_t timestamp;
	const char *name;
	size_t name_len;
	struct load_value value;
};

/* CSV settings. columns[] are 1-based indexes ("2") or header names ("name"), in the order
 * timestamp, name, value; with header == false every column must be an index. */
struct load_csv_opts {
	char delimiter;
	bool header;
	const char *columns[3];
};

enum load_status { LOAD_ERROR = -1, LOAD_SKIP = 0, LOAD_RECORD = 1 };

struct load_parser;

/* Parse a number the way the loader types values: an optional '-' and digits within int64 is
 * an integer; anything else must parse completely with strtod and be finite. Surrounding
 * spaces are ignored. Returns 0, or -1 when the text is not a number (or an integer literal
 * outside int64). */
int load_number_parse(const char *s, size_t len, struct load_value *out);

/* csv is ignored for LOAD_NDJSON. Returns NULL on allocation failure or when a column spec
 * is invalid (then err says why). The parser owns copies of what it needs. */
struct load_parser *load_parser_new(enum load_format fmt, const struct load_csv_opts *csv,
                                    char *err, size_t errlen);
void load_parser_free(struct load_parser *p);

/* Start a new input (the next file): the next line is a header again (CSV with header). */
void load_parser_reset(struct load_parser *p);

/* Feed one line, its line terminator already removed or not (a trailing "\n" or "\r\n" is
 * ignored). LOAD_RECORD fills rec; LOAD_SKIP for a header or blank line; LOAD_ERROR fills err
 * with a message such as "value is not a number" (the caller adds FILE:LINE). */
enum load_status load_parser_line(struct load_parser *p, const char *line, size_t len,
                                  struct load_record *rec, char *err, size_t errlen);

/*
 * A batch: the ingest body {"data_source":...,"records":[...]} built as text while records
 * arrive (no allocation per record), plus the input line of every record so that a server
 * error naming records[K] can be traced back to FILE:LINE. The caller owns the struct; the
 * buffers are allocated by load_batch_init and freed by load_batch_free.
 */
struct load_batch {
	char *body; /* JSON text (NUL-terminated after load_batch_finish) */
	size_t len, cap;
	size_t count;      /* records in the batch */
	size_t max;        /* records per batch */
	uint64_t *lines;   /* input line of records[k] */
	const char *file;  /* input name for messages; not owned */
	char *source_json; /* the escaped "data_source" member, computed once */
	bool finished;
};

int load_batch_init(struct load_batch *b, const char *source, size_t max_records);
void load_batch_free(struct load_batch *b);
/* Empty the batch for reuse (keeps the buffers). */
void load_batch_reset(struct load_batch *b, const char *file);
/* Append one record read from line. -1 on allocation failure. The batch must not be full. */
int load_batch_add(struct load_batch *b, const struct load_record *rec, uint64_t line);
bool load_batch_full(const struct load_batch *b);
/* Close the JSON text; after this body/len is the request body. -1 on allocation failure. */
int load_batch_finish(struct load_batch *b);

/* Append a JSON string literal for s (quotes and escapes included) to the batch text. */
int load_json_string(struct load_batch *b, const char *s, size_t len);
/* Format a value as JSON: integers as integers, doubles with %.17g and always a '.' or an
 * exponent so the server keeps them doubles. buf must hold LOAD_NUM_MAX bytes. */
#define LOAD_NUM_MAX 40
size_t load_value_format(const struct load_value *v, char *buf);

/* gzip-compress in[0..inlen) into *out (malloc'd or grown, capacity in *outcap), setting
 * *outlen. Returns 0, -1 on failure. */
int load_gzip(const char *in, size_t inlen, char **out, size_t *outcap, size_t *outlen);

#endif
