/*
 * store_read.h - reads of stored records: one point, one series' time range in
 * pages, and the list of a source's series with their first and last timestamps.
 * Safe on any thread, concurrently with commits.
 */
#ifndef TEMPORIS_STORE_READ_H
#define TEMPORIS_STORE_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "temporis/data/record.h"
#include "temporis/data/store.h"

/* Point read: 1 found (out->ts/type/v filled, out->name untouched), 0 absent, -1 error. */
int store_get(struct store *st, uint32_t source_id, const char *name, size_t name_len,
	      int64_t ts, struct rec *out);

/* Called per record in time order; return non-zero to stop early. */
typedef int (*store_rec_cb)(const struct rec *r, void *arg);
/*
 * Records of one series with start <= ts <= last (both inclusive, so every int64
 * timestamp can be read), at most limit of them, ascending.
 * *more is set when records remain in range after the last one given, and then
 * *next_ts is the timestamp to resume from (use it as the next start).
 * 0 or -1 (unknown source or storage error).
 */
int store_scan(struct store *st, uint32_t source_id, const char *name, size_t name_len,
	       int64_t start, int64_t last, uint32_t limit, store_rec_cb cb, void *arg,
	       bool *more, int64_t *next_ts);

/* Called per series in name order with its first and last timestamp. Non-zero stops. */
typedef int (*store_series_cb)(const char *name, size_t name_len, int64_t first,
			       int64_t last, void *arg);
int store_series(struct store *st, uint32_t source_id, store_series_cb cb, void *arg);
/* The same from the first series whose name is >= from (bytewise): a cursor over the
 * series that costs a seek, not a walk from the first. The callback may scan. */
int store_series_from(struct store *st, uint32_t source_id, const char *from, size_t from_len,
		      store_series_cb cb, void *arg);

#endif
