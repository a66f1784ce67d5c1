/*
 * downsample.c - the aggregates of one bucket of a downsampled read (downsample.h).
 * Owns nothing: the caller holds the struct ds_bucket, fed one record at a time.
 */
#include "temporis/data/downsample.h"

#include <string.h>

static const char *const agg_names[] = {
	[DS_NONE] = "", [DS_AVG] = "avg", [DS_MIN] = "min",
	[DS_MAX] = "max", [DS_LAST] = "last", [DS_COUNT] = "count",
};
#define NAGGS (sizeof(agg_names) / sizeof(agg_names[0]))

/* 2^63 as a double: the first double above every int64. */
#define TWO_POW_63 9223372036854775808.0

const char *ds_agg_name(enum ds_agg agg)
{
	return (size_t)agg < NAGGS ? agg_names[agg] : "";
}

int ds_agg_parse(const char *text, size_t len, enum ds_agg *out)
{
	for (size_t i = DS_AVG; i < NAGGS; i++)
		if (strlen(agg_names[i]) == len && memcmp(agg_names[i], text, len) == 0) {
			*out = (enum ds_agg)i;
			return 0;
		}
	return -1;
}

int64_t ds_bucket_start(int64_t ts, int64_t step)
{
	int64_t rem = ts % step;     /* C truncates: rem has the sign of ts */

	if (rem < 0) {
		rem += step;          /* now 0 < rem < step: ts - rem is the multiple below */
		if (ts < INT64_MIN + rem)
			return INT64_MIN;
	}
	return ts - rem;
}

/* An int64 against a double, exactly: (double)i rounds, so ties are settled in int64. */
static int int_double_cmp(int64_t i, double d)
{
	double di = (double)i;

	if (d >= TWO_POW_63)
		return -1;
	if (d < -TWO_POW_63)
		return 1;
	if (di != d)
		return di < d ? -1 : 1;
	/* di == d: d is a whole number within int64, so the cast is exact */
	return i < (int64_t)d ? -1 : i > (int64_t)d;
}

int ds_value_cmp(const struct rec *a, const struct rec *b)
{
	if (a->type == REC_INT && b->type == REC_INT)
		return a->v.i < b->v.i ? -1 : a->v.i > b->v.i;
	if (a->type == REC_DOUBLE && b->type == REC_DOUBLE)
		return a->v.d < b->v.d ? -1 : a->v.d > b->v.d;
	if (a->type == REC_INT)
		return int_double_cmp(a->v.i, b->v.d);
	return -int_double_cmp(b->v.i, a->v.d);
}

static long double as_long_double(const struct rec *r)
{
	return r->type == REC_INT ? (long double)r->v.i : (long double)r->v.d;
}

void ds_bucket_begin(struct ds_bucket *b, enum ds_agg agg, int64_t start, const struct rec *r)
{
	b->start = start;
	b->count = 1;
	b->sum = agg == DS_AVG ? as_long_double(r) : 0;
	b->pick.type = r->type;
	b->pick.v = r->v;
}

void ds_bucket_add(struct ds_bucket *b, enum ds_agg agg, const struct rec *r)
{
	b->count++;
	switch (agg) {
	case DS_AVG:
		b->sum += as_long_double(r);
		return;
	case DS_MIN:
		if (ds_value_cmp(r, &b->pick) >= 0)
			return;
		break;
	case DS_MAX:
		if (ds_value_cmp(r, &b->pick) <= 0)
			return;
		break;
	case DS_LAST:
		break;
	case DS_NONE:
	case DS_COUNT:
		return;
	}
	b->pick.type = r->type;
	b->pick.v = r->v;
}

void ds_bucket_value(const struct ds_bucket *b, enum ds_agg agg, struct rec *out)
{
	switch (agg) {
	case DS_AVG:
		out->type = REC_DOUBLE;
		out->v.d = (double)(b->sum / (long double)b->count);
		return;
	case DS_COUNT:
		out->type = REC_INT;
		out->v.i = (int64_t)b->count;
		return;
	default:
		out->type = b->pick.type;
		out->v = b->pick.v;
		return;
	}
}
