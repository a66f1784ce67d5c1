/*
 * ingest_lp.h - InfluxDB line-protocol bodies (the /write endpoints): one pass over the
 * body, every numeric field packed as one record (record.h), ready for a ring entry.
 *
 * measurement[,tag=value...] field=value[,field=value...] [timestamp]
 * A field becomes the series measurement_field{tag="value",...} (series_name.h: tags
 * sorted by key, values escaped as Prometheus escapes them, no braces without tags).
 * The store keeps numbers; string fields are skipped: they are checked, not stored.
 */
#ifndef TEMPORIS_DATA_INGEST_LP_H
#define TEMPORIS_DATA_INGEST_LP_H

#include <stddef.h>
#include <stdint.h>

#include "temporis/data/ingest.h"

/* The unit of the timestamps of one body (the `precision` query parameter). */
enum lp_precision { LP_NS, LP_US, LP_MS, LP_S, LP_M, LP_H };

/* Bytes of a bad line quoted in an error detail; a longer line is cut and ends in "...". */
#define LP_DETAIL_LINE_MAX 64

/*
 * "ns"/"n", "u"/"us"/"µ" (UTF-8), "ms", "s", "m", "h": 0 and *out. NULL or "": 0 and
 * LP_NS, line protocol's default. Anything else: -1, *out untouched.
 */
int lp_precision_parse(const char *text, enum lp_precision *out);

/* A reusable parser: its buffers grow to the largest body seen and never shrink. */
struct ingest_lp;

/* NULL on allocation failure. */
struct ingest_lp *ingest_lp_new(void);
void ingest_lp_free(struct ingest_lp *p);

/*
 * Parse body[0..len) and fill *out (data_source stays NULL: the caller knows the source
 * from the query). What out points to is owned by p and valid until the next call.
 * Returns out->status:
 *   0    every line is valid; out->payload holds out->nrecords packed records, in order
 *        (a later line's point for the same series and second wins at the writer);
 *   400  the first bad line: "line N: unable to parse 'TEXT': REASON" (N counts '\n'
 *        from 1, TEXT is the line cut to LP_DETAIL_LINE_MAX bytes, every byte outside
 *        printable ASCII shown as '?'); a bad line anywhere beats the limits;
 *   413  more than lim->max_records records, or more than lim->max_payload packed bytes;
 *   -1   memory ran out (the caller answers 500); *out is zeroed.
 * All-or-nothing: on any error there is no payload.
 * Timestamps are integers in prec units, floored to Unix seconds (-1 ns is second -1);
 * a line without one is stamped now_s (Unix seconds).
 */
int ingest_lp_parse(struct ingest_lp *p, const char *body, size_t len, enum lp_precision prec,
		    int64_t now_s, const struct ingest_limits *lim, struct ingest_result *out);

#endif
