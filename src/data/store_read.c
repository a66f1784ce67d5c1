/*
 * store_read.c - reads of stored records (store_read.h): a point get, a paged scan
 * of one series' time range, and the list of a source's series. RocksDB iterators
 * walk the keys; codec.h says what each key and bucket value holds. A value that is
 * not well formed fails the read (logged) rather than being skipped.
 */
#include "temporis/data/store_read.h"

#include <stdbool.h>
#include <string.h>

#include <rocksdb/c.h>

#include "store_impl.h"
#include "temporis/base/log.h"
#include "temporis/data/codec.h"

static void log_corrupt(size_t vlen)
{
	log_error("store: corrupt bucket value (%zu bytes)", vlen);
}

int store_get(struct store *st, uint32_t source_id, const char *name, size_t name_len,
	      int64_t ts, struct rec *out)
{
	uint8_t key[CODEC_KEY_MAX];
	rocksdb_column_family_handle_t *cf = store_source_cf(st, source_id);
	size_t klen, vlen = 0;
	char *rerr = NULL, *val;
	int rc;

	if (cf == NULL || name_len == 0 || name_len > REC_NAME_MAX)
		return -1;
	klen = codec_key_encode(key, name, name_len, codec_bucket(ts));
	val = rocksdb_get_cf(st->db, st->ropts, cf, (const char *)key, klen, &vlen, &rerr);
	if (rerr != NULL) {
		log_error("store: get: %s", rerr);
		rocksdb_free(rerr);
		return -1;
	}
	if (val == NULL)
		return 0;
	rc = codec_value_find((const uint8_t *)val, vlen, ts, out);
	if (rc < 0)
		log_corrupt(vlen);
	rocksdb_free(val);
	return rc;
}

struct scan_ctx {
	const char *name;
	size_t name_len;
	int64_t start, end;
	uint32_t limit, given;
	store_rec_cb cb;
	void *arg;
	bool *more;
	int64_t *next_ts;
};

/* Gives the bucket's records in range: 1 when the scan is over, 0 to go on, -1 error. */
static int scan_bucket(struct scan_ctx *c, int64_t bucket, const uint8_t *val, size_t vlen)
{
	ssize_t n = codec_value_entries(val, vlen);

	if (n < 0) {
		log_corrupt(vlen);
		return -1;
	}
	for (ssize_t i = 0; i < n; i++) {
		struct rec r = { .name = c->name, .name_len = (uint16_t)c->name_len };

		codec_value_decode(val, (size_t)i, bucket, &r);
		if (r.ts < c->start)
			continue;
		if (r.ts >= c->end)
			return 1;
		if (c->given == c->limit) {
			*c->more = true;
			*c->next_ts = r.ts;
			return 1;
		}
		c->given++;
		if (c->cb(&r, c->arg) != 0)
			return 1;
	}
	return 0;
}

static int scan_iter(rocksdb_iterator_t *it, struct scan_ctx *c)
{
	for (; rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
		const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vlen);
		int rc;

		if (codec_key_name_len(k, klen) != (ssize_t)c->name_len)
			return -1; /* bounds keep us inside the series */
		rc = scan_bucket(c, codec_key_bucket(k, klen), v, vlen);
		if (rc != 0)
			return rc < 0 ? -1 : 0;
	}
	return store_iter_status(it, "scan");
}

int store_scan(struct store *st, uint32_t source_id, const char *name, size_t name_len,
	       int64_t start, int64_t end, uint32_t limit, store_rec_cb cb, void *arg,
	       bool *more, int64_t *next_ts)
{
	uint8_t lo[CODEC_KEY_MAX], hi[CODEC_KEY_MAX];
	rocksdb_column_family_handle_t *cf = store_source_cf(st, source_id);
	struct scan_ctx c = { name, name_len, start, end, limit, 0, cb, arg, more, next_ts };
	rocksdb_readoptions_t *ro;
	rocksdb_iterator_t *it;
	size_t lolen, hilen;
	int rc;

	*more = false;
	if (cf == NULL || name_len == 0 || name_len > REC_NAME_MAX)
		return -1;
	if (start >= end)
		return 0;
	lolen = codec_key_encode(lo, name, name_len, codec_bucket(start));
	hilen = codec_key_series_end(hi, name, name_len);
	ro = rocksdb_readoptions_create();
	if (ro == NULL)
		return -1;
	/* The read options keep pointers to lo/hi: both outlive the iterator. */
	rocksdb_readoptions_set_iterate_lower_bound(ro, (const char *)lo, lolen);
	rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)hi, hilen);
	it = rocksdb_create_iterator_cf(st->db, ro, cf);
	if (it == NULL) {
		rocksdb_readoptions_destroy(ro);
		return -1;
	}
	rocksdb_iter_seek(it, (const char *)lo, lolen);
	rc = scan_iter(it, &c);
	rocksdb_iter_destroy(it);
	rocksdb_readoptions_destroy(ro);
	return rc;
}

/* Timestamp of the first (or last) entry of the bucket the iterator stands on; -1 corrupt. */
static int iter_edge_ts(rocksdb_iterator_t *it, bool last, int64_t *ts)
{
	size_t klen, vlen;
	const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
	const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vlen);
	ssize_t n = codec_value_entries(v, vlen);
	struct rec r;

	if (n < 0) {
		log_corrupt(vlen);
		return -1;
	}
	codec_value_decode(v, last ? (size_t)(n - 1) : 0, codec_key_bucket(k, klen), &r);
	*ts = r.ts;
	return 0;
}

/*
 * One series per step: its first bucket is where the iterator stands; seeking back
 * from the largest possible key of the name gives its last; seeking to the end of
 * the series' keys skips the rest of it.
 */
static int series_step(rocksdb_iterator_t *it, store_series_cb cb, void *arg, bool *stop)
{
	char name[REC_NAME_MAX];
	uint8_t probe[CODEC_KEY_MAX];
	size_t klen, plen;
	const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
	ssize_t nl = codec_key_name_len(k, klen);
	int64_t first, last;

	if (nl < 0)
		return -1;
	memcpy(name, k, (size_t)nl);
	if (iter_edge_ts(it, false, &first) != 0)
		return -1;
	plen = codec_key_series_max(probe, name, (size_t)nl);
	rocksdb_iter_seek_for_prev(it, (const char *)probe, plen);
	if (!rocksdb_iter_valid(it))
		return -1; /* the first key is a candidate, so this is an error */
	k = (const uint8_t *)rocksdb_iter_key(it, &klen);
	if (codec_key_name_len(k, klen) != nl || memcmp(k, name, (size_t)nl) != 0)
		return -1;
	if (iter_edge_ts(it, true, &last) != 0)
		return -1;
	if (cb(name, (size_t)nl, first, last, arg) != 0) {
		*stop = true;
		return 0;
	}
	plen = codec_key_series_end(probe, name, (size_t)nl);
	rocksdb_iter_seek(it, (const char *)probe, plen);
	return 0;
}

int store_series(struct store *st, uint32_t source_id, store_series_cb cb, void *arg)
{
	rocksdb_column_family_handle_t *cf = store_source_cf(st, source_id);
	rocksdb_iterator_t *it;
	bool stop = false;
	int rc = 0;

	if (cf == NULL)
		return -1;
	it = rocksdb_create_iterator_cf(st->db, st->ropts, cf);
	if (it == NULL)
		return -1;
	rocksdb_iter_seek_to_first(it);
	while (rc == 0 && !stop && rocksdb_iter_valid(it))
		rc = series_step(it, cb, arg, &stop);
	if (rc == 0)
		rc = store_iter_status(it, "series");
	rocksdb_iter_destroy(it);
	return rc;
}
