/*
 * ingest_prom.h - a Prometheus remote_write 1.0 request body (snappy block format around
 * a protobuf WriteRequest, src/data/prompb.proto) decoded into packed records (record.h),
 * the same all-or-nothing result the JSON ingest gives (struct ingest_result, ingest.h).
 * Series are named in Prometheus's text form (series_name.h); samples become REC_DOUBLE
 * records at whole Unix seconds.
 */
#ifndef TEMPORIS_DATA_INGEST_PROM_H
#define TEMPORIS_DATA_INGEST_PROM_H

#include <stddef.h>
#include <stdint.h>

#include "temporis/data/ingest.h"

/* What the last ingest_prom_parse saw; all zero after any call that did not answer 0. */
struct ingest_prom_stats {
	uint32_t series;                 /* timeseries in the request */
	uint32_t samples;                /* samples packed as records (== out->nrecords) */
	uint32_t skipped_stale;          /* Prometheus staleness markers, not stored */
	uint32_t skipped_nonfinite;      /* other NaNs and +-Inf: the JSON read API has no form */
};

/* Reusable: its buffers grow, never shrink, and are freed by ingest_prom_free. */
struct ingest_prom;

/* NULL on allocation failure. */
struct ingest_prom *ingest_prom_new(void);
void ingest_prom_free(struct ingest_prom *p);

/*
 * Decode body[0..len) (snappy block format, NOT framed, then protobuf WriteRequest).
 * Fills *out (data_source stays NULL/0: the caller knows the source); what it points to
 * is owned by p and stays valid until the next call or ingest_prom_free. Returns
 * out->status: 0; 400 (bad snappy, bad protobuf, a series that cannot be named: detail
 * says which); 413 (decompressed size over max_decoded, a WriteRequest that would take
 * too much memory to unpack, or the limits in lim); or -1 if memory ran out (the caller
 * answers 500).
 */
int ingest_prom_parse(struct ingest_prom *p, const uint8_t *body, size_t len, size_t max_decoded,
		      const struct ingest_limits *lim, struct ingest_result *out);

/* Counts of the last ingest_prom_parse on p; owned by p. */
const struct ingest_prom_stats *ingest_prom_last_stats(const struct ingest_prom *p);

#endif
