/*
 * store_read.c - reads of stored records (store_read.h): a point get, a paged scan
 * of one series' time range, and the list of a source's series. Each bucket read is
 * RocksDB's value folded with the head's entries of that bucket (records committed
 * but not yet sealed), by version. A value that is not well formed fails the read
 * (logged) rather than being skipped.
 */
#include "temporis/data/store_read.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <rocksdb/c.h>

#include "store_impl.h"
#include "temporis/base/log.h"
#include "temporis/data/codec.h"

static void log_corrupt(size_t vlen)
{
	log_error("store: corrupt bucket value (%zu bytes)", vlen);
}

/*
 * The records of one bucket: stored (NULL if RocksDB holds none) folded with the
 * heads' entries. Returns how many into out (CODEC_BUCKET_SPAN of room), -1 if the
 * stored value is corrupt. The heads are read first: anything they lose meanwhile
 * is in RocksDB already (a seal writes before it retires a head).
 */
static ssize_t bucket_records(struct store *st, uint32_t source_id, const char *name,
			      size_t len, int64_t bucket, const uint8_t *stored, size_t slen,
			      struct chunk_entry *out)
{
	static _Thread_local struct codec_fold heads, all;
	struct chunk_entry won[CODEC_BUCKET_SPAN];
	size_t nwon = 0;

	codec_fold_init(&heads);
	if (store_heads_fold(st, source_id, name, len, bucket, &heads))
		nwon = codec_fold_drain(&heads, won);
	codec_fold_init(&all);
	if (stored != NULL && codec_fold_offer_value(&all, stored, slen, false) != 0) {
		log_corrupt(slen);
		return -1;
	}
	for (size_t i = 0; i < nwon; i++)
		codec_fold_offer(&all, &won[i]);
	return (ssize_t)codec_fold_drain(&all, out);
}

int store_get(struct store *st, uint32_t source_id, const char *name, size_t name_len,
	      int64_t ts, struct rec *out)
{
	static _Thread_local struct codec_fold heads;
	uint8_t key[CODEC_KEY_MAX];
	rocksdb_column_family_handle_t *cf = store_source_cf(st, source_id);
	struct chunk_entry won[CODEC_BUCKET_SPAN], e[CODEC_BUCKET_SPAN];
	size_t klen, vlen = 0, nwon = 0;
	char *rerr = NULL, *val;
	ssize_t n;

	if (cf == NULL || name_len == 0 || name_len > REC_NAME_MAX)
		return -1;
	codec_fold_init(&heads);
	if (store_heads_fold(st, source_id, name, name_len, codec_bucket(ts), &heads))
		nwon = codec_fold_drain(&heads, won);
	klen = codec_key_encode(key, name, name_len, codec_bucket(ts));
	val = rocksdb_get_cf(st->db, st->ropts, cf, (const char *)key, klen, &vlen, &rerr);
	if (rerr != NULL) {
		log_error("store: get: %s", rerr);
		rocksdb_free(rerr);
		return -1;
	}
	codec_fold_init(&heads);
	n = 0;
	if (val != NULL && codec_fold_offer_value(&heads, (const uint8_t *)val, vlen, false) != 0)
		n = -1;
	if (val != NULL)
		rocksdb_free(val);
	if (n < 0) {
		log_corrupt(vlen);
		return -1;
	}
	for (size_t i = 0; i < nwon; i++)
		codec_fold_offer(&heads, &won[i]);
	n = (ssize_t)codec_fold_drain(&heads, e);
	for (ssize_t i = 0; i < n; i++)
		if (e[i].off == codec_offset(ts)) {
			codec_rec_of(&e[i], codec_bucket(ts), out);
			return 1;
		}
	return 0;
}

/* ---- scans ---- */

struct scan_ctx {
	struct store *st;
	uint32_t source_id;
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
	struct chunk_entry e[CODEC_BUCKET_SPAN];
	ssize_t n = bucket_records(c->st, c->source_id, c->name, c->name_len, bucket, val, vlen, e);

	if (n < 0)
		return -1;
	for (ssize_t i = 0; i < n; i++) {
		struct rec r = { .name = c->name, .name_len = (uint16_t)c->name_len };

		codec_rec_of(&e[i], bucket, &r);
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

/* RocksDB's buckets and the heads' in one ascending walk. */
static int scan_iter(rocksdb_iterator_t *it, struct scan_ctx *c, const int64_t *hb, size_t nhb)
{
	size_t i = 0;

	for (;;) {
		bool have_key = rocksdb_iter_valid(it);
		size_t klen = 0, vlen = 0;
		const uint8_t *k = have_key ? (const uint8_t *)rocksdb_iter_key(it, &klen) : NULL;
		const uint8_t *v;
		int64_t kb = 0, b;
		int rc;

		if (have_key) {
			if (codec_key_name_len(k, klen) != (ssize_t)c->name_len)
				return -1; /* bounds keep us inside the series */
			kb = codec_key_bucket(k, klen);
		}
		if (!have_key && i == nhb)
			break;
		b = !have_key ? hb[i] : i == nhb ? kb : kb < hb[i] ? kb : hb[i];
		v = have_key && kb == b ? (const uint8_t *)rocksdb_iter_value(it, &vlen) : NULL;
		rc = scan_bucket(c, b, v, vlen);
		if (rc != 0)
			return rc < 0 ? -1 : 0;
		if (have_key && kb == b)
			rocksdb_iter_next(it);
		if (i < nhb && hb[i] == b)
			i++;
	}
	return store_iter_status(it, "scan");
}

static int scan_range(struct scan_ctx *c, rocksdb_column_family_handle_t *cf)
{
	uint8_t lo[CODEC_KEY_MAX], hi[CODEC_KEY_MAX];
	size_t lolen = codec_key_encode(lo, c->name, c->name_len, codec_bucket(c->start));
	size_t hilen = codec_key_series_end(hi, c->name, c->name_len);
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	rocksdb_iterator_t *it;
	int64_t *hb = NULL;
	size_t nhb = 0;
	int rc = -1;

	if (ro == NULL)
		return -1;
	if (store_heads_buckets(c->st, c->source_id, c->name, c->name_len, codec_bucket(c->start),
				codec_bucket(c->end - 1), &hb, &nhb) != 0)
		goto out;
	/* The read options keep pointers to lo/hi: both outlive the iterator. */
	rocksdb_readoptions_set_iterate_lower_bound(ro, (const char *)lo, lolen);
	rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)hi, hilen);
	it = rocksdb_create_iterator_cf(c->st->db, ro, cf);
	if (it == NULL)
		goto out;
	rocksdb_iter_seek(it, (const char *)lo, lolen);
	rc = scan_iter(it, c, hb, nhb);
	rocksdb_iter_destroy(it);
out:
	free(hb);
	rocksdb_readoptions_destroy(ro);
	return rc;
}

int store_scan(struct store *st, uint32_t source_id, const char *name, size_t name_len,
	       int64_t start, int64_t end, uint32_t limit, store_rec_cb cb, void *arg,
	       bool *more, int64_t *next_ts)
{
	rocksdb_column_family_handle_t *cf = store_source_cf(st, source_id);
	struct scan_ctx c = { st, source_id, name, name_len, start, end, limit, 0,
			      cb, arg, more, next_ts };
	unsigned epoch;
	int rc;

	*more = false;
	if (cf == NULL || name_len == 0 || name_len > REC_NAME_MAX)
		return -1;
	if (start >= end)
		return 0;
	/* Held for the whole scan: a head sealed meanwhile stays readable until the end. */
	epoch = store_read_begin(st);
	rc = scan_range(&c, cf);
	store_read_end(st, epoch);
	return rc;
}

/* ---- the series of a source ---- */

/* Timestamp of the first (or last) record of the bucket the iterator stands on; -1 corrupt. */
static int iter_edge_ts(rocksdb_iterator_t *it, bool last, int64_t *ts)
{
	struct chunk_entry e[CODEC_BUCKET_SPAN];
	size_t klen, vlen;
	const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
	const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vlen);
	ssize_t n = codec_value_decode(v, vlen, e);
	struct rec r;

	if (n <= 0) {
		log_corrupt(vlen);
		return -1;
	}
	codec_rec_of(&e[last ? n - 1 : 0], codec_key_bucket(k, klen), &r);
	*ts = r.ts;
	return 0;
}

struct series_walk {
	store_series_cb cb;
	void *arg;
	struct head_series *hs;        /* the heads' series, in key order */
	size_t nhs, next;
	bool stop;
};

static int name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	return c != 0 ? c : alen < blen ? -1 : alen > blen;
}

/* Gives (name, first, last), after every head-only series that sorts before it. */
static int emit(struct series_walk *w, const char *name, size_t len, int64_t first, int64_t last)
{
	while (w->next < w->nhs) {
		struct head_series *h = &w->hs[w->next];
		int c = name_cmp(h->name, h->len, name, len);

		if (c > 0)
			break;
		w->next++;
		if (c == 0) {
			first = h->first < first ? h->first : first;
			last = h->last > last ? h->last : last;
			break;
		}
		if (w->cb(h->name, h->len, h->first, h->last, w->arg) != 0) {
			w->stop = true;
			return 0;
		}
	}
	if (w->cb(name, len, first, last, w->arg) != 0)
		w->stop = true;
	return 0;
}

/*
 * One series per step: its first bucket is where the iterator stands; seeking back
 * from the largest possible key of the name gives its last; seeking to the end of
 * the series' keys skips the rest of it.
 */
static int series_step(rocksdb_iterator_t *it, struct series_walk *w)
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
	if (emit(w, name, (size_t)nl, first, last) != 0 || w->stop)
		return 0;
	plen = codec_key_series_end(probe, name, (size_t)nl);
	rocksdb_iter_seek(it, (const char *)probe, plen);
	return 0;
}

static int series_iter(struct store *st, rocksdb_column_family_handle_t *cf,
		       struct series_walk *w)
{
	rocksdb_iterator_t *it = rocksdb_create_iterator_cf(st->db, st->ropts, cf);
	int rc = 0;

	if (it == NULL)
		return -1;
	rocksdb_iter_seek_to_first(it);
	while (rc == 0 && !w->stop && rocksdb_iter_valid(it))
		rc = series_step(it, w);
	if (rc == 0)
		rc = store_iter_status(it, "series");
	rocksdb_iter_destroy(it);
	for (; rc == 0 && !w->stop && w->next < w->nhs; w->next++) {
		struct head_series *h = &w->hs[w->next];

		if (w->cb(h->name, h->len, h->first, h->last, w->arg) != 0)
			w->stop = true;
	}
	return rc;
}

int store_series(struct store *st, uint32_t source_id, store_series_cb cb, void *arg)
{
	rocksdb_column_family_handle_t *cf = store_source_cf(st, source_id);
	struct series_walk w = { .cb = cb, .arg = arg };
	unsigned epoch;
	int rc = -1;

	if (cf == NULL)
		return -1;
	epoch = store_read_begin(st);
	if (store_heads_series(st, source_id, &w.hs, &w.nhs) == 0) {
		rc = series_iter(st, cf, &w);
		store_heads_series_free(w.hs, w.nhs);
	}
	store_read_end(st, epoch);
	return rc;
}
