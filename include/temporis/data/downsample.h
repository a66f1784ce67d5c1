/*
 * downsample.h - one bucket of a downsampled read: the aggregates (avg, min, max, last,
 * count) of the records whose timestamps share floor(ts / step) * step. Plain values, no
 * allocation: the reader keeps one struct ds_bucket and feeds it record by record.
 */
#ifndef TEMPORIS_DOWNSAMPLE_H
#define TEMPORIS_DOWNSAMPLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "temporis/data/record.h"

/* DS_NONE: a raw read. The others in the order their names are listed to clients. */
enum ds_agg { DS_NONE = 0, DS_AVG, DS_MIN, DS_MAX, DS_LAST, DS_COUNT };

/* The aggregates by name, as a client writes them ("avg, min, max, last, count"). */
#define DS_AGG_NAMES "avg, min, max, last, count"

/* The name of agg ("" for DS_NONE). */
const char *ds_agg_name(enum ds_agg agg);
/* Exactly one of the names, lowercase: 0 and *out, else -1. */
int ds_agg_parse(const char *text, size_t len, enum ds_agg *out);

/*
 * The start of ts's bucket, floor(ts / step) * step (step >= 1), also for negative
 * timestamps. The one bucket whose multiple of step lies below INT64_MIN starts at
 * INT64_MIN: it holds the smallest timestamps, and no int64 names its true start.
 */
int64_t ds_bucket_start(int64_t ts, int64_t step);

/*
 * -1, 0 or 1 as a's value is below, equal to or above b's, compared exactly as numbers
 * (an int64 and a double too, beyond 2^53). Values are finite: ingest refuses the rest.
 */
int ds_value_cmp(const struct rec *a, const struct rec *b);

struct ds_bucket {
	int64_t start;
	uint64_t count;
	long double sum;                 /* avg: exact for int64 sums below 2^64 (x86-64) */
	struct rec pick;                 /* min, max or last so far: its type and value */
};

/* Open b at start with its first record r. */
void ds_bucket_begin(struct ds_bucket *b, enum ds_agg agg, int64_t start, const struct rec *r);
/* Fold in a later record of the same bucket (records come in time order). */
void ds_bucket_add(struct ds_bucket *b, enum ds_agg agg, const struct rec *r);
/*
 * The bucket's answer in out->type and out->v: avg a double, count an integer, min, max
 * and last the chosen record's own type (on a tie min and max keep the earlier record).
 */
void ds_bucket_value(const struct ds_bucket *b, enum ds_agg agg, struct rec *out);

#endif
