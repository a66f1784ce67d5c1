/*
 * load_batch.h - temporis-load's request bodies (load_batch.c): records appended as the
 * ingest JSON text {"data_source":...,"records":[...]} into one reused buffer, the input
 * line of each record kept for messages, and gzip for Content-Encoding: gzip.
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
 * error naming records[K] can be traced back to FILE:LINE. The caller owns the struct; the
 * buffers are allocated by load_batch_init and freed by load_batch_free.
 */
struct load_batch {
	struct buf body;  /* JSON text (NUL-terminated after load_batch_finish) */
	size_t count;     /* records in the batch */
	size_t max;       /* records per batch */
	uint64_t *lines;  /* input line of records[k] */
	const char *file; /* input name for messages; not owned */
	struct buf head;  /* {"data_source":...,"records":[ that starts every body, built once */
	bool finished;
};

int load_batch_init(struct load_batch *b, const char *source, size_t max_records);
void load_batch_free(struct load_batch *b);
/* Empty the batch for reuse (keeps the buffers). */
void load_batch_reset(struct load_batch *b, const char *file);
/* Append one record read from line. -1 on allocation failure. The batch must not be full. */
int load_batch_add(struct load_batch *b, const struct load_record *rec, uint64_t line);
bool load_batch_full(const struct load_batch *b);
/* Close the JSON text; after this body.data[0..body.len) is the request body. -1 on
 * allocation failure. */
int load_batch_finish(struct load_batch *b);

/* Append a JSON string literal for s[0..len) (quotes and escapes included) to out. 0, or -1
 * when memory runs out (out->failed is then set). */
int load_json_string(struct buf *out, const char *s, size_t len);
/* Format a value as JSON: integers as integers, doubles with %.17g and always a '.' or an
 * exponent so the server keeps them doubles. buf must hold LOAD_NUM_MAX bytes. */
#define LOAD_NUM_MAX 40
size_t load_value_format(const struct load_value *v, char *buf);

/* gzip-compress in[0..inlen) into out, replacing what it held (its memory is reused).
 * Returns 0, -1 on failure. */
int load_gzip(const char *in, size_t inlen, struct buf *out);

#endif
