/*
 * load_batch.h - temporis-load's request bodies (load_batch.c): records appended as the
 * ingest JSON text {"data_source":...,"records":[...]} into one reused buffer, or
 * line-protocol lines joined by newlines for /write; the input line of each record or line
 * kept for messages; the /write target; and gzip for Content-Encoding: gzip.
 */
#ifndef TEMPORIS_TOOLS_LOAD_BATCH_H
#define TEMPORIS_TOOLS_LOAD_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "temporis/base/buf.h"
#include "temporis/tools/load_parse.h"

/*
 * A batch: the ingest body {"data_source":...,"records":[...]} built as text while records
 * arrive (no allocation per record), plus the input line of every record so that a server
 * error naming records[K] can be traced back to FILE:LINE, and how many physical lines each
 * spans (a CSV record with quoted newlines spans several). A line-protocol batch
 * (load_batch_init_lines) holds data lines instead, joined by "\n", with their lines and
 * spans, so that the server's "line K" can be traced back the same way. The
 * caller owns the struct; the buffers are allocated by load_batch_init(_lines) and freed by
 * load_batch_free.
 */
struct load_batch {
	struct buf body;  /* the request body (NUL-terminated after load_batch_finish) */
	size_t count;     /* records (line protocol: data lines) in the batch */
	size_t max;       /* records or lines per batch */
	uint64_t *lines;  /* where records[k] (line protocol: data line k) starts */
	uint32_t *spans;  /* physical lines of records[k] or data line k */
	const char *file; /* input name for messages; not owned */
	struct buf head;  /* {"data_source":...,"records":[ that starts every body, built once;
	                     empty for line protocol */
	bool line_protocol;
	bool finished;
};

int load_batch_init(struct load_batch *b, const char *source, size_t max_records);
/* A line-protocol batch of up to max_lines data lines. 0, or -1 when memory runs out. */
int load_batch_init_lines(struct load_batch *b, size_t max_lines);
void load_batch_free(struct load_batch *b);
/* Empty the batch for reuse (keeps the buffers). */
void load_batch_reset(struct load_batch *b, const char *file);
/* Append one record, read from input lines rec->line to rec->line + rec->spans - 1 (spans 0
 * counts as 1). -1 on allocation failure, when the batch is full or is a line-protocol
 * batch. */
int load_batch_add(struct load_batch *b, const struct load_record *rec);
/* Append one data line, text[0..len) without its last line end, starting on input line line
 * and spanning spans physical lines. -1 on allocation failure, when the batch is full or is
 * not a line-protocol batch. */
int load_batch_add_line(struct load_batch *b, const char *text, size_t len, uint64_t line,
                        uint32_t spans);
bool load_batch_full(const struct load_batch *b);
/* The last input line the batch covers (0 when it is empty). */
uint64_t load_batch_last_line(const struct load_batch *b);
/* The input line of line k (1-based, counting every "\n") of a line-protocol body, as the
 * server numbers lines in its errors; 0 when the body has no line k. */
uint64_t load_batch_body_line(const struct load_batch *b, uint64_t k);
/* Close the JSON text; after this body.data[0..body.len) is the request body. -1 on
 * allocation failure. */
int load_batch_finish(struct load_batch *b);

/* Format a value as JSON: integers as integers, doubles with %.17g and always a '.' or an
 * exponent so the server keeps them doubles. buf must hold LOAD_NUM_MAX bytes. */
#define LOAD_NUM_MAX 40
size_t load_value_format(const struct load_value *v, char *buf);

/* The precision parameter of /write for a --time-unit: s, ms, u, ns; LOAD_TIME_AUTO is
 * ns, line protocol's default. */
const char *load_lp_precision(enum load_time_unit unit);
/* Append the line-protocol request target to out: prefix[0..prefix_len) (the URL's path,
 * without a trailing '/') + "/write?db=SOURCE&precision=P", source percent-encoded. 0, or
 * -1 when memory runs out (out->failed is then set). */
int load_lp_target(struct buf *out, const char *prefix, size_t prefix_len, const char *source,
                   enum load_time_unit unit);

/* gzip-compress in[0..inlen) into out, replacing what it held (its memory is reused).
 * Returns 0, -1 on failure. */
int load_gzip(const char *in, size_t inlen, struct buf *out);

/* ---- messages ---- */

#define LOAD_WHERE_MAX 1024 /* a batch's "FILE:LINES A-B", and room for a file name */

/* "FILE:LINES 1201-1300", the input lines of batch b, for messages. */
void load_batch_where(const struct load_batch *b, char *out, size_t outlen);
/* A connection error as a user reads it: "connection refused", "connection reset", "timed
 * out" ... from the socket's errno (0: the server closed the connection) and whether the
 * request hit its timeout. A static string. */
const char *load_conn_reason(int sys_errno, bool timed_out);
/* The line said when batch b is retried after its attempt N failed: "FILE:LINES A-B: REASON
 * (attempt N of M, retrying in D s)", M being retries + 1, with "; K more retries not shown"
 * inside the parentheses when unsaid is K > 0 (the client says at most one a second). */
void load_retry_text(const struct load_batch *b, long attempt, long retries, long delay_ms,
                     const char *reason, uint64_t unsaid, char *out, size_t outlen);

#endif
