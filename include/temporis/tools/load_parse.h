/*
 * load_parse.h - temporis-load's input side (load_parse.c): CSV or NDJSON lines in, typed
 * records out (a CSV record may span lines: RFC 4180 quoted fields may hold newlines). CSV columns are mapped by header name or 1-based index; a value keeps
 * its JSON type (an integer literal stays an integer, anything else is a finite double).
 * InfluxDB line protocol is not parsed but split: physical lines in, logical lines out.
 */
#ifndef TEMPORIS_TOOLS_LOAD_PARSE_H
#define TEMPORIS_TOOLS_LOAD_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOAD_ERR_MAX 256 /* size of an error message buffer (message without FILE:LINE) */

enum load_format { LOAD_CSV, LOAD_NDJSON, LOAD_LINE };

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
	uint64_t line;  /* input line the record starts on; LOAD_ERROR: the line concerned */
	uint32_t spans; /* physical lines it spans (1 + newlines in quoted fields) */
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

/*
 * The unit of integer timestamps in the input; the server stores Unix seconds, so finer
 * units are divided (floor): points within one second collapse onto it, last write
 * winning. LOAD_TIME_AUTO is seconds, refusing values past the year 5000 (|t| >= 1e11),
 * which are milliseconds or finer read as seconds. RFC 3339 strings
 * ("2024-06-20T00:00:00Z", offsets, fractions dropped) are accepted in every unit.
 */
enum load_time_unit { LOAD_TIME_AUTO, LOAD_TIME_S, LOAD_TIME_MS, LOAD_TIME_US, LOAD_TIME_NS };
void load_parser_set_time_unit(struct load_parser *p, enum load_time_unit unit);

/* Start a new input (the next file): the next line is a header again (CSV with header). */
void load_parser_reset(struct load_parser *p);

/*
 * Feed the next physical line, its line terminator already removed or not (a trailing "\n"
 * or "\r\n" is ignored). LOAD_RECORD fills rec; LOAD_SKIP for a header or blank line, and
 * for a CSV line that ends inside a quoted field (RFC 4180: the field goes on, newline
 * included, on the next line; "" inside quotes is one "); LOAD_ERROR fills err with a
 * message such as "value is not a number" (the caller adds FILE:rec->line, or the lines
 * rec->line to rec->line + rec->spans - 1). Lines are counted from the last reset.
 */
enum load_status load_parser_line(struct load_parser *p, const char *line, size_t len,
                                  struct load_record *rec, char *err, size_t errlen);
/* A CSV record still open in a quoted field after this many bytes is a stray quote, not one
 * field; the same limit as a line-protocol string (LOAD_LP_CONTINUED_MAX). */
#define LOAD_CSV_CONTINUED_MAX (1024 * 1024)
/* At the end of the input: 0, or -1 with err and *line (where the quote opened) when a CSV
 * quoted field is still open. */
int load_parser_end(struct load_parser *p, uint64_t *line, char *err, size_t errlen);

/*
 * InfluxDB line protocol. The server parses it (POST /write); the loader sends the input's
 * lines as they are and only needs to know where a logical line ends (a double-quoted
 * string field value may hold newlines), which lines are not data (blank lines, '#'
 * comments, and the DDL section of an influx_inspect export: everything from "# DDL" to
 * "# DML"), and on which input line each logical line starts, so that the server's
 * "line K" can be named as FILE:LINE. One splitter per input stream.
 */
struct load_lp;

struct load_lp_line {
	/* LOAD_RECORD: the logical line without its last line end, physical line ends inside
	 * a string kept as they were. Points into the line fed (one physical line) or into the
	 * splitter; valid until the next call. */
	const char *text;
	size_t len;
	uint64_t line;  /* LOAD_RECORD: input line it starts on; LOAD_ERROR: line concerned */
	uint32_t spans; /* LOAD_RECORD: physical lines it spans (1 + quoted newlines) */
	/* LOAD_SKIP of a "# CONTEXT-DATABASE: NAME" header: NAME (not NUL-terminated),
	 * pointing into the line fed; else NULL. */
	const char *context_db;
	size_t context_db_len;
};

/* A logical line still open in a string after this many bytes is a stray quote, not one
 * string (InfluxDB's own limit for a string field is 64 KiB). */
#define LOAD_LP_CONTINUED_MAX (1024 * 1024)

/* NULL when memory runs out. */
struct load_lp *load_lp_new(void);
void load_lp_free(struct load_lp *lp);
/* Start a new input: line 1 next, outside a DDL section, no string open. */
void load_lp_reset(struct load_lp *lp);
/* Feed the next physical line (its "\n" or "\r\n" included or not). LOAD_RECORD fills out
 * with a complete data line; LOAD_SKIP when there is nothing to send yet (not data, or a
 * line that goes on in a string); LOAD_ERROR fills err (the caller adds FILE:out->line). */
enum load_status load_lp_feed(struct load_lp *lp, const char *line, size_t len,
                              struct load_lp_line *out, char *err, size_t errlen);
/* At the end of the input: 0, or -1 with err and *line when a string is still open. */
int load_lp_end(struct load_lp *lp, uint64_t *line, char *err, size_t errlen);

#endif
