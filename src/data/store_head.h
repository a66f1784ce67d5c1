/*
 * store_head.h - private to the store: the commit log's replay, the heads, the
 * sealer thread and the readers' hold on the heads (store_head.c).
 */
#ifndef TEMPORIS_STORE_HEAD_H
#define TEMPORIS_STORE_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "store_core.h"
#include "temporis/data/codec.h"
#include "temporis/data/head.h"

/* ---- the log ---- */

/*
 * Every record of packed[0..len) (count records of the wire form) as a head entry
 * of source_id at version: 0, -1 if the bytes do not hold exactly count valid
 * records (nothing added), -2 if memory ran out (some may have been added: roll back).
 */
int store_head_add_records(struct head *h, uint32_t source_id, uint64_t version,
			   const uint8_t *packed, size_t len, uint32_t count);

/* ---- the head and the sealer (store_head.c) ---- */

int store_heads_init(struct store *st, char *err, size_t errlen);
/* Fold the log left by the last run into the active head (at open). */
int store_heads_replay(struct store *st, char *err, size_t errlen);
int store_sealer_start(struct store *st, char *err, size_t errlen);
/* Seal what is left (unless seals are failing) and stop the sealer; then free. */
void store_heads_close(struct store *st);
void store_heads_free(struct store *st);
/* The commit thread committed log_bytes into the active head (it holds the lock). */
void store_heads_committed(struct store *st, uint64_t log_bytes);
/* The commit thread waits here while the head is full and a seal still runs. */
void store_heads_wait_room(struct store *st);

/* The heads' and the sealer's part of store_stats. */
void store_heads_stats(struct store *st, struct store_stats *out);

/* A reader's hold on the heads for the duration of a scan. */
unsigned store_read_begin(struct store *st);
void store_read_end(struct store *st, unsigned epoch);
/*
 * Fold the heads' entries of one bucket (the frozen head's, then the active one's)
 * into f. True if any was found. Takes the heads' lock itself.
 */
bool store_heads_fold(struct store *st, uint32_t source_id, const char *name, size_t len,
		      int64_t bucket, struct codec_fold *f);

/* ---- what reads see of the heads ---- */

/* The series' buckets in [lo, hi] in the heads, ascending and unique (malloc'd). */
int store_heads_buckets(struct store *st, uint32_t source_id, const char *name, size_t len,
			int64_t lo, int64_t hi, int64_t **out, size_t *n);

/* A source's series in the heads, in key order, each with its first and last
 * timestamp there; free with store_heads_series_free. 0 or -1 (out of memory). */
struct head_series {
	char *name;
	size_t len;
	int64_t first, last;
};
int store_heads_series(struct store *st, uint32_t source_id, struct head_series **out,
		       size_t *n);
void store_heads_series_free(struct head_series *s, size_t n);

#endif
