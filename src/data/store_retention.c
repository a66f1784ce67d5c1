/*
 * store_retention.c - the disk side of a source's retention (store.h): expired
 * partitions deleted as one key range at the start of the source's family, then
 * compacted away. The read side, the cutoff every read applies, is in store_read.c;
 * the cutoffs themselves live in the source table (store_core.c).
 *
 * Why a range: a record key is 0x01 | partition | name | 0x00 | bucket (codec.h),
 * so every record of a partition below the cutoff's sorts before the first key of
 * the cutoff's partition, whatever its series. The series index (0x02 | name) sorts
 * after every record key and is left as it is: its first partition may then name
 * one that is gone, which the reads allow for (store_read.c, series_edges).
 */
#include <inttypes.h>

#include <rocksdb/c.h>

#include "store_core.h"
#include "temporis/base/err.h"
#include "temporis/base/log.h"
#include "temporis/data/codec.h"

#define SST_BYTES_PROP "rocksdb.total-sst-files-size"
/* Rewrite the range's bottommost files too, but only those it overlaps. */
#define BOTTOMMOST_FORCE_OPTIMIZED 3

static uint64_t sst_bytes(struct store *st, rocksdb_column_family_handle_t *cf)
{
	uint64_t n = 0;

	if (rocksdb_property_int_cf(st->db, cf, SST_BYTES_PROP, &n) != 0)
		return 0;
	return n;
}

/* The compaction of [lo, hi): the C API reports no error (a failure shows on the
 * next write or read, and the next pass compacts again). */
static int compact(struct store *st, rocksdb_column_family_handle_t *cf, const uint8_t *lo,
		   size_t lolen, const uint8_t *hi, size_t hilen)
{
	rocksdb_compactoptions_t *co = rocksdb_compactoptions_create();

	if (co == NULL)
		return -1;
	rocksdb_compactoptions_set_bottommost_level_compaction(co, BOTTOMMOST_FORCE_OPTIMIZED);
	rocksdb_compact_range_cf_opt(st->db, cf, co, (const char *)lo, lolen, (const char *)hi,
				     hilen);
	rocksdb_compactoptions_destroy(co);
	return 0;
}

int store_source_trim(struct store *st, uint32_t source_id, int64_t cutoff, uint64_t *freed,
		      char *err, size_t errlen)
{
	uint8_t lo[1] = { CODEC_KEY_RECORD }, hi[CODEC_KEY_PREFIX_LEN];
	rocksdb_column_family_handle_t *cf = store_source_cf(st, source_id);
	size_t hilen;
	uint64_t before, after;
	char *rerr = NULL;

	*freed = 0;
	if (cf == NULL) {
		err_set(err, errlen, "no family for source %" PRIu32, source_id);
		return -1;
	}
	if (cutoff == STORE_NO_CUTOFF)
		return 0;
	/* [0x01, first key of cutoff's partition): only partitions wholly expired */
	hilen = codec_key_partition_start(hi, codec_partition(cutoff));
	before = sst_bytes(st, cf);
	/* Whole files first (no rewrite); then one tombstone over what is left. The C
	 * API's file deletion includes the end key, but hi is a bare partition prefix,
	 * shorter than any record key: no file holds it. */
	rocksdb_delete_file_in_range_cf(st->db, cf, (const char *)lo, sizeof(lo),
					(const char *)hi, hilen, &rerr);
	if (store_take_rerr(rerr, "delete files in range", err, errlen) != 0)
		return -1;
	rocksdb_delete_range_cf(st->db, st->wopts, cf, (const char *)lo, sizeof(lo),
				(const char *)hi, hilen, &rerr);
	if (store_take_rerr(rerr, "delete range", err, errlen) != 0)
		return -1;
	if (compact(st, cf, lo, sizeof(lo), hi, hilen) != 0) {
		err_set(err, errlen, "compaction: out of memory");
		return -1;
	}
	after = sst_bytes(st, cf);
	*freed = before > after ? before - after : 0;
	return 0;
}
