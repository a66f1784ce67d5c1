/*
 * store_read.c - reads of stored records (store_read.h): a point get, a paged scan
 * of one series' time range, and the list of a source's series. Each bucket read is
 * RocksDB's value folded with the head's entries of that bucket (records committed
 * but not yet sealed), by version. A value that is not well formed fails the read
 * (logged) rather than being skipped.
 *
 * Retention: every read here hides the records below its source's cutoff
 * (store.h), stored or in a head, before anything is given: a point below it is
 * absent, a scan starts at it, a series with nothing left is not listed and its
 * first timestamp is the oldest one left. The admin ops (records, downsampled
 * records, series, export) and the Prometheus API all read through these.
 */
#include "temporis/data/store_read.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <rocksdb/c.h>

#include "store_core.h"
#include "store_head.h"
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
	int64_t cutoff;
	rocksdb_column_family_handle_t *cf = store_source_cf_cutoff(st, source_id, &cutoff);
	struct chunk_entry won[CODEC_BUCKET_SPAN], e[CODEC_BUCKET_SPAN];
	size_t klen, vlen = 0, nwon = 0;
	char *rerr = NULL, *val;
	ssize_t n;

	if (cf == NULL || name_len == 0 || name_len > REC_NAME_MAX)
		return -1;
	if (ts < cutoff)
		return 0;
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
	int64_t start, last;           /* both inclusive */
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
		if (r.ts > c->last)
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

/*
 * The stored buckets of one series in ascending order, partition by partition:
 * a seek to the series' prefix in the current partition either lands on its keys,
 * or on a later key whose partition is the next one worth a seek. So a scan costs
 * one or two seeks per partition that holds anything, however wide its range.
 */
struct series_cursor {
	rocksdb_iterator_t *it;
	const char *name;
	size_t len;
	int64_t p, last;               /* the partition sought, and the range's last one */
	bool done;
};

static void cursor_seek(struct series_cursor *c, int64_t p, int64_t from_bucket)
{
	uint8_t key[CODEC_KEY_MAX];
	size_t klen = p == codec_partition(from_bucket)
			      ? codec_key_encode(key, c->name, c->len, from_bucket)
			      : codec_key_series_prefix(key, p, c->name, c->len);

	c->p = p;
	rocksdb_iter_seek(c->it, (const char *)key, klen);
}

/* The next partition after p, or false past the range (or the last possible one). */
static bool cursor_next_partition(struct series_cursor *c)
{
	const int64_t step = INT64_C(1) << CODEC_PARTITION_BITS;

	if (c->p >= c->last || c->p > INT64_MAX - step)
		return false;
	cursor_seek(c, c->p + step, c->p + step);
	return true;
}

/* True when the iterator stands on a bucket of the series (in range); else done. */
static bool cursor_valid(struct series_cursor *c)
{
	while (!c->done) {
		size_t klen;
		const uint8_t *k;
		int64_t kp;

		if (!rocksdb_iter_valid(c->it))
			break;
		k = (const uint8_t *)rocksdb_iter_key(c->it, &klen);
		if (codec_key_name_len(k, klen) < 0 || (kp = codec_key_partition(k)) > c->last)
			break;
		if (kp == c->p) {
			if ((size_t)codec_key_name_len(k, klen) == c->len &&
			    memcmp(codec_key_name(k), c->name, c->len) == 0)
				return true;
			if (!cursor_next_partition(c))
				break;  /* past our name in p: nothing more of it there */
		} else {
			cursor_seek(c, kp, kp);  /* p holds nothing of it: jump to the next */
		}
	}
	c->done = true;
	return false;
}

/* RocksDB's buckets and the heads' in one ascending walk. */
static int scan_iter(struct series_cursor *cur, struct scan_ctx *c, const int64_t *hb,
		     size_t nhb)
{
	size_t i = 0;

	for (;;) {
		bool have_key = cursor_valid(cur);
		size_t klen = 0, vlen = 0;
		const uint8_t *k = have_key ? (const uint8_t *)rocksdb_iter_key(cur->it, &klen) : NULL;
		const uint8_t *v;
		int64_t kb = have_key ? codec_key_bucket(k, klen) : 0, b;
		int rc;

		if (!have_key && i == nhb)
			break;
		b = !have_key ? hb[i] : i == nhb ? kb : kb < hb[i] ? kb : hb[i];
		v = have_key && kb == b ? (const uint8_t *)rocksdb_iter_value(cur->it, &vlen) : NULL;
		rc = scan_bucket(c, b, v, vlen);
		if (rc != 0)
			return rc < 0 ? -1 : 0;
		if (have_key && kb == b)
			rocksdb_iter_next(cur->it);
		if (i < nhb && hb[i] == b)
			i++;
	}
	return store_iter_status(cur->it, "scan");
}

static int scan_range(struct scan_ctx *c, rocksdb_column_family_handle_t *cf)
{
	uint8_t lo[CODEC_KEY_MAX], hi[CODEC_KEY_MAX];
	int64_t first_bucket = codec_bucket(c->start), last_bucket = codec_bucket(c->last);
	size_t lolen = codec_key_partition_start(lo, codec_partition(first_bucket));
	size_t hilen = codec_key_records_end(hi);
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	struct series_cursor cur = { .name = c->name, .len = c->name_len,
				     .last = codec_partition(last_bucket) };
	int64_t *hb = NULL;
	size_t nhb = 0;
	int rc = -1;

	if (ro == NULL)
		return -1;
	if (store_heads_buckets(c->st, c->source_id, c->name, c->name_len, first_bucket,
				last_bucket, &hb, &nhb) != 0)
		goto out;
	/* The read options keep pointers to lo/hi: both outlive the iterator. */
	rocksdb_readoptions_set_iterate_lower_bound(ro, (const char *)lo, lolen);
	rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)hi, hilen);
	cur.it = rocksdb_create_iterator_cf(c->st->db, ro, cf);
	if (cur.it == NULL)
		goto out;
	cursor_seek(&cur, codec_partition(first_bucket), first_bucket);
	rc = scan_iter(&cur, c, hb, nhb);
	rocksdb_iter_destroy(cur.it);
out:
	free(hb);
	rocksdb_readoptions_destroy(ro);
	return rc;
}

int store_scan(struct store *st, uint32_t source_id, const char *name, size_t name_len,
	       int64_t start, int64_t last, uint32_t limit, store_rec_cb cb, void *arg,
	       bool *more, int64_t *next_ts)
{
	int64_t cutoff;
	rocksdb_column_family_handle_t *cf = store_source_cf_cutoff(st, source_id, &cutoff);
	struct scan_ctx c = { st, source_id, name, name_len, start, last, limit, 0,
			      cb, arg, more, next_ts };
	unsigned epoch;
	int rc;

	*more = false;
	if (cf == NULL || name_len == 0 || name_len > REC_NAME_MAX)
		return -1;
	if (c.start < cutoff)
		c.start = cutoff;
	if (c.start > last)
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

/* Whether the iterator stands on a record key of the series in partition p. */
static bool on_series(rocksdb_iterator_t *it, int64_t p, const char *name, size_t len)
{
	size_t klen;
	const uint8_t *k;

	if (!rocksdb_iter_valid(it))
		return false;
	k = (const uint8_t *)rocksdb_iter_key(it, &klen);
	return (size_t)codec_key_name_len(k, klen) == len && codec_key_partition(k) == p &&
	       memcmp(codec_key_name(k), name, len) == 0;
}

/* A first timestamp not known from the index: give() looks it up. */
#define SERIES_FIRST_UNKNOWN INT64_MIN

/*
 * The last record of the series in its last partition and the first in its first
 * (what the index says): 1, *first SERIES_FIRST_UNKNOWN when the first partition
 * is below the cutoff or gone; 0 when the last partition is gone (records vanish
 * only by retention, a prefix of the key space: then nothing of the series is
 * stored); -1 if a value is corrupt.
 */
static int series_edges(rocksdb_iterator_t *it, const char *name, size_t len, int64_t first_p,
			int64_t last_p, int64_t cutoff, int64_t *first, int64_t *last)
{
	uint8_t key[CODEC_KEY_MAX];
	size_t klen = codec_key_series_prefix(key, last_p, name, len);

	key[klen++] = UINT8_MAX; /* past every bucket index */
	rocksdb_iter_seek_for_prev(it, (const char *)key, klen);
	if (!on_series(it, last_p, name, len))
		return 0;
	if (iter_edge_ts(it, true, last) != 0)
		return -1;
	*first = SERIES_FIRST_UNKNOWN;
	if (first_p < codec_partition(cutoff))
		return 1;
	klen = codec_key_series_prefix(key, first_p, name, len);
	rocksdb_iter_seek(it, (const char *)key, klen);
	if (on_series(it, first_p, name, len) && iter_edge_ts(it, false, first) != 0)
		return -1;
	return 1;
}

struct series_walk {
	struct store *st;
	uint32_t source_id;
	int64_t cutoff;                /* the source's (store.h) */
	store_series_cb cb;
	void *arg;
	const char *from;              /* the first name given, or a lower one ("" for all) */
	size_t from_len;
	struct head_series *hs;        /* the heads' series, in name order */
	size_t nhs, next;
	bool stop, failed;
};

struct first_found {
	int64_t ts;
	bool found;
};

static int first_item(const struct rec *r, void *arg)
{
	struct first_found *f = arg;

	f->ts = r->ts;
	f->found = true;
	return 1;
}

/* The series' first timestamp from `from` on, heads included: 1, 0 if none, -1 error. */
static int first_from(struct series_walk *w, const char *name, size_t len, int64_t from,
		      int64_t last, int64_t *first)
{
	rocksdb_column_family_handle_t *cf = store_source_cf(w->st, w->source_id);
	struct first_found f = { 0, false };
	bool more = false;
	int64_t next_ts;
	struct scan_ctx c = { w->st, w->source_id, name, len, from, last, 1, 0,
			      first_item, &f, &more, &next_ts };

	if (cf == NULL || scan_range(&c, cf) != 0)
		return -1;
	*first = f.ts;
	return f.found ? 1 : 0;
}

/* A series to the caller as the cutoff leaves it: left out when nothing is left,
 * its first timestamp the oldest one left. */
static void give(struct series_walk *w, const char *name, size_t len, int64_t first, int64_t last)
{
	if (last < w->cutoff)
		return;
	if (first < w->cutoff || first == SERIES_FIRST_UNKNOWN) {
		int rc = first_from(w, name, len, w->cutoff, last, &first);

		if (rc < 0)
			w->failed = w->stop = true;
		if (rc <= 0)
			return;
	}
	if (w->cb(name, len, first, last, w->arg) != 0)
		w->stop = true;
}

static int name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	return c != 0 ? c : alen < blen ? -1 : alen > blen;
}

/* Gives (name, first, last), after every head-only series that sorts before it. */
static void emit(struct series_walk *w, const char *name, size_t len, int64_t first, int64_t last)
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
		give(w, h->name, h->len, h->first, h->last);
		if (w->stop)
			return;
	}
	give(w, name, len, first, last);
}

/* One index entry: its series' edges from the records, then given in name order. */
static int series_step(rocksdb_iterator_t *idx, rocksdb_iterator_t *rec, struct series_walk *w)
{
	size_t klen, vlen;
	const uint8_t *k = (const uint8_t *)rocksdb_iter_key(idx, &klen);
	const uint8_t *v = (const uint8_t *)rocksdb_iter_value(idx, &vlen);
	ssize_t nl = codec_index_name_len(k, klen);
	int64_t first_p, last_p, first, last;
	char name[REC_NAME_MAX];
	int rc;

	if (nl < 0 || codec_index_decode(v, vlen, &first_p, &last_p) != 0) {
		log_error("store: corrupt series index entry (%zu bytes)", vlen);
		return -1;
	}
	memcpy(name, k + 1, (size_t)nl);
	rc = series_edges(rec, name, (size_t)nl, first_p, last_p, w->cutoff, &first, &last);
	if (rc < 0)
		return -1;
	if (rc > 0)  /* else a head may hold it: emit gives it with the heads' series */
		emit(w, name, (size_t)nl, first, last);
	return 0;
}

static int series_iter(struct store *st, rocksdb_column_family_handle_t *cf,
		       struct series_walk *w)
{
	uint8_t lo[1] = { CODEC_KEY_INDEX }, hi[1] = { CODEC_KEY_INDEX + 1 };
	uint8_t from[CODEC_KEY_MAX];
	size_t from_len = codec_index_key(from, w->from, w->from_len);
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	rocksdb_iterator_t *idx = NULL, *rec = NULL;
	int rc = -1;

	if (ro == NULL)
		return -1;
	rocksdb_readoptions_set_iterate_lower_bound(ro, (const char *)lo, sizeof(lo));
	rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)hi, sizeof(hi));
	idx = rocksdb_create_iterator_cf(st->db, ro, cf);
	rec = rocksdb_create_iterator_cf(st->db, st->ropts, cf);
	if (idx == NULL || rec == NULL)
		goto out;
	rc = 0;
	for (rocksdb_iter_seek(idx, (const char *)from, from_len);
	     rc == 0 && !w->stop && rocksdb_iter_valid(idx); rocksdb_iter_next(idx))
		rc = series_step(idx, rec, w);
	if (rc == 0 && (store_iter_status(idx, "series") != 0 ||
			store_iter_status(rec, "series") != 0))
		rc = -1;
	for (; rc == 0 && !w->stop && w->next < w->nhs; w->next++) {
		struct head_series *h = &w->hs[w->next];

		give(w, h->name, h->len, h->first, h->last);
	}
	if (rc == 0 && w->failed)
		rc = -1;
out:
	if (idx != NULL)
		rocksdb_iter_destroy(idx);
	if (rec != NULL)
		rocksdb_iter_destroy(rec);
	rocksdb_readoptions_destroy(ro);
	return rc;
}

int store_series(struct store *st, uint32_t source_id, store_series_cb cb, void *arg)
{
	return store_series_from(st, source_id, "", 0, cb, arg);
}

int store_series_from(struct store *st, uint32_t source_id, const char *from, size_t from_len,
		      store_series_cb cb, void *arg)
{
	int64_t cutoff;
	rocksdb_column_family_handle_t *cf = store_source_cf_cutoff(st, source_id, &cutoff);
	struct series_walk w = { .st = st, .source_id = source_id, .cutoff = cutoff, .cb = cb,
				 .arg = arg, .from = from, .from_len = from_len };
	unsigned epoch;
	int rc = -1;

	if (cf == NULL || from_len > REC_NAME_MAX)
		return -1;
	epoch = store_read_begin(st);
	if (store_heads_series(st, source_id, &w.hs, &w.nhs) == 0) {
		/* the index is sought to from; the heads' series below it are passed over too */
		while (w.next < w.nhs &&
		       name_cmp(w.hs[w.next].name, w.hs[w.next].len, from, from_len) < 0)
			w.next++;
		rc = series_iter(st, cf, &w);
		store_heads_series_free(w.hs, w.nhs);
	}
	store_read_end(st, epoch);
	return rc;
}
