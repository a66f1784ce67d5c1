/*
 * store_head.c - the store's commit log and head (store_core.h).
 *
 * A commit writes each request to the log family (one key per request) and folds
 * its records into the active head. The sealer thread swaps a full head out, writes
 * it into the source families as one compressed merge operand per (series, bucket)
 * together with the deletion of the log it covered, and hands the memory back.
 * Reads fold the heads over what RocksDB holds. At open the log left by the last
 * run (killed or stopped before a seal) is folded back into the active head.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "store_core.h"
#include "store_head.h"
#include "store_index.h"
#include "store_seal.h"
#include "temporis/base/buf.h"
#include "temporis/base/clock.h"
#include "temporis/base/err.h"
#include "temporis/base/log.h"
#include "temporis/data/record.h"

/* When the active head is sealed: whichever comes first. */
#define SEAL_LOG_BYTES (64ull << 20)   /* log written into it: bounds recovery */
#define SEAL_RECORDS 3000000ull        /* records in it: bounds memory */
#define SEAL_AGE_MS 60000ull           /* age of its oldest record: data settles */
/* Commits wait while the active head holds this many times the above and a seal runs. */
#define HEAD_ROOM_FACTOR 4
#define SEALER_TICK_MS 200
#define ADD_WINDOW 512                 /* records decoded ahead of the head's lookups */
#define SEALER_THREAD_NAME "sealer"
#define SEAL_RETRY_FIRST_MS 100
#define SEAL_RETRY_MAX_MS 5000
#define NS_PER_MS 1000000l
#define MS_PER_S 1000l
#define U32_LEN 4
#define U64_LEN 8
#define BYTE_BITS 8

static uint64_t get_le(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (BYTE_BITS * i);
	return v;
}

static uint64_t log_seq(const uint8_t *key)
{
	uint64_t v = 0;

	for (int i = 0; i < STORE_LOG_KEY_LEN; i++)
		v = (v << BYTE_BITS) | key[i];
	return v;
}

/* ---- records into the head ---- */

int store_head_add_records(struct head *h, uint32_t source_id, uint64_t version,
			   const uint8_t *packed, size_t len, uint32_t count)
{
	static _Thread_local struct head_item items[ADD_WINDOW];
	const uint8_t *p = packed, *end = packed + len;
	struct rec r;
	size_t n = 0;

	for (uint32_t i = 0; i < count; i++)
		if ((p = rec_decode(p, end, &r)) == NULL)
			return -1;
	if (p != end)
		return -1;
	/* A window at a time: the head looks several records ahead within it. */
	for (p = packed; p != end;) {
		struct head_item *it = &items[n++];

		p = rec_decode(p, end, &r);
		*it = (struct head_item){ .name = r.name, .name_len = r.name_len,
					  .bucket = codec_bucket(r.ts) };
		codec_entry_of(&r, version, &it->e);
		if ((n == ADD_WINDOW || p == end) && head_add_many(h, source_id, items, n) != 0)
			return -2;
		if (n == ADD_WINDOW)
			n = 0;
	}
	return 0;
}

/* ---- lifetime ---- */

int store_heads_init(struct store *st, char *err, size_t errlen)
{
	struct store_heads *hs = &st->heads;
	pthread_condattr_t attr;

	if (pthread_mutex_init(&hs->lock, NULL) != 0 || pthread_condattr_init(&attr) != 0) {
		err_set(err, errlen, "cannot create the head's lock");
		return -1;
	}
	/* Timed waits measure intervals: the monotonic clock. */
	if (pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
	    pthread_cond_init(&hs->changed, &attr) != 0) {
		pthread_condattr_destroy(&attr);
		err_set(err, errlen, "cannot create the head's condition");
		return -1;
	}
	pthread_condattr_destroy(&attr);
	hs->ready = true;
	hs->active = head_new();
	hs->spare = head_new();
	hs->index = store_index_cache_new();
	if (hs->active == NULL || hs->spare == NULL || hs->index == NULL) {
		err_set(err, errlen, "out of memory for the head");
		return -1;
	}
	return 0;
}

void store_heads_free(struct store *st)
{
	struct store_heads *hs = &st->heads;

	head_free(hs->active);
	head_free(hs->frozen);
	head_free(hs->spare);
	hs->active = hs->frozen = hs->spare = NULL;
	store_index_cache_free(hs->index);
	hs->index = NULL;
	pthread_cond_destroy(&hs->changed);
	pthread_mutex_destroy(&hs->lock);
	hs->ready = false;
}

/* One log entry back into the active head; -1 (err set) if it is malformed. */
static int replay_entry(struct store *st, const uint8_t *k, size_t klen, const uint8_t *v,
			size_t vlen, char *err, size_t errlen)
{
	uint32_t source_id, count;
	uint64_t version;
	int rc;

	if (klen != STORE_LOG_KEY_LEN || vlen < STORE_LOG_HDR_LEN) {
		err_set(err, errlen, "the commit log holds a malformed entry (%zu bytes)", vlen);
		return -1;
	}
	source_id = (uint32_t)get_le(v, U32_LEN);
	version = get_le(v + U32_LEN, U64_LEN);
	count = (uint32_t)get_le(v + U32_LEN + U64_LEN, U32_LEN);
	if (store_source_cf(st, source_id) == NULL) {
		err_set(err, errlen, "commit log entry %" PRIu64 " is for source %" PRIu32
			", which has no column family", log_seq(k), source_id);
		return -1;
	}
	rc = store_head_add_records(st->heads.active, source_id, version, v + STORE_LOG_HDR_LEN,
				    vlen - STORE_LOG_HDR_LEN, count);
	if (rc != 0) {
		err_set(err, errlen, rc == -1 ? "commit log entry %" PRIu64 " is malformed"
					      : "out of memory replaying log entry %" PRIu64,
			log_seq(k));
		return -1;
	}
	if (log_seq(k) >= st->log_next)
		st->log_next = log_seq(k) + 1;
	st->heads.active_log_bytes += vlen;
	if (atomic_load(&st->hwm) < version)
		atomic_store(&st->hwm, version);
	return 0;
}

static int replay_log(struct store *st, rocksdb_column_family_handle_t *cf, size_t *entries,
		      char *err, size_t errlen)
{
	rocksdb_iterator_t *it = rocksdb_create_iterator_cf(st->db, st->ropts, cf);
	int rc = 0;

	if (it == NULL) {
		err_set(err, errlen, "cannot read the commit log");
		return -1;
	}
	for (rocksdb_iter_seek_to_first(it); rc == 0 && rocksdb_iter_valid(it);
	     rocksdb_iter_next(it)) {
		size_t klen, vlen;
		const char *k = rocksdb_iter_key(it, &klen);
		const char *v = rocksdb_iter_value(it, &vlen);

		rc = replay_entry(st, (const uint8_t *)k, klen, (const uint8_t *)v, vlen, err,
				  errlen);
		(*entries)++;
	}
	if (rc == 0 && store_iter_status(it, "log replay") != 0) {
		err_set(err, errlen, "cannot read the commit log");
		rc = -1;
	}
	rocksdb_iter_destroy(it);
	return rc;
}

/* Both logs: what one holds is older than the other's, and versions decide anyway. */
int store_heads_replay(struct store *st, char *err, size_t errlen)
{
	uint64_t t0 = mono_ms();
	size_t entries = 0;

	for (unsigned l = 0; l < STORE_LOGS; l++)
		if (replay_log(st, st->cf_log[l], &entries, err, errlen) != 0)
			return -1;
	if (entries > 0) {
		st->heads.active_since_ms = mono_ms();
		log_info("store: %zu committed requests (%zu records) taken back from the log in "
			 "%llu ms", entries, head_records(st->heads.active),
			 (unsigned long long)(st->heads.active_since_ms - t0));
	}
	return 0;
}

/* ---- sealing ---- */

static bool seal_due(const struct store_heads *hs, uint64_t now)
{
	if (head_records(hs->active) == 0)
		return false;
	return hs->seal_wanted || hs->stopping || hs->active_log_bytes >= SEAL_LOG_BYTES ||
	       head_records(hs->active) >= SEAL_RECORDS ||
	       now - hs->active_since_ms >= SEAL_AGE_MS;
}

/* Under lock: the active head becomes the frozen one. */
static void swap_heads(struct store *st)
{
	struct store_heads *hs = &st->heads;

	hs->frozen = hs->active;
	hs->active = hs->spare;
	hs->spare = NULL;
	hs->frozen_log_end = st->log_next;
	hs->active_log ^= 1u;
	hs->active_log_bytes = 0;
	hs->active_since_ms = 0;
}

/* Under lock: the frozen head's records are in RocksDB; free it once no scan that
 * could have missed them there still reads it. */
static void retire_frozen(struct store_heads *hs)
{
	unsigned old = hs->epoch;

	hs->epoch ^= 1u;
	while (hs->readers[old] > 0)
		pthread_cond_wait(&hs->changed, &hs->lock);
	atomic_fetch_add(&hs->sealed_records, head_records(hs->frozen));
	head_clear(hs->frozen);
	hs->spare = hs->frozen;
	hs->frozen = NULL;
	hs->sealed_log_end = hs->frozen_log_end;
	atomic_fetch_add(&hs->seals, 1);
	hs->failures = 0;
	pthread_cond_broadcast(&hs->changed);
}

static void timed_wait(struct store_heads *hs, uint64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(ms / MS_PER_S);
	ts.tv_nsec += (long)(ms % MS_PER_S) * NS_PER_MS;
	if (ts.tv_nsec >= MS_PER_S * NS_PER_MS) {
		ts.tv_sec++;
		ts.tv_nsec -= MS_PER_S * NS_PER_MS;
	}
	pthread_cond_timedwait(&hs->changed, &hs->lock, &ts);
}

static uint64_t retry_delay(int failures)
{
	uint64_t ms = SEAL_RETRY_FIRST_MS;

	for (int i = 1; i < failures && ms < SEAL_RETRY_MAX_MS; i++)
		ms *= 2;
	return ms < SEAL_RETRY_MAX_MS ? ms : SEAL_RETRY_MAX_MS;
}

/* Under lock, with a frozen head: seal it (unlocked meanwhile). False to stop. */
static bool seal_frozen(struct store *st)
{
	struct store_heads *hs = &st->heads;
	char err[512];
	uint64_t t0;
	int rc;

	pthread_mutex_unlock(&hs->lock);
	t0 = mono_ms();
	rc = store_seal_head(st, hs->frozen, hs->active_log ^ 1u, hs->frozen_log_end, err, sizeof(err));
	log_debug("store: sealed %zu records in %zu buckets in %llu ms", head_records(hs->frozen),
		  head_groups(hs->frozen), (unsigned long long)(mono_ms() - t0));
	pthread_mutex_lock(&hs->lock);
	if (rc == 0) {
		retire_frozen(hs);
		return true;
	}
	hs->failures++;
	atomic_fetch_add(&hs->seal_failures, 1);
	log_error("store: seal of %zu records failed (%s); the commit log keeps them, retrying",
		  head_records(hs->frozen), err);
	pthread_cond_broadcast(&hs->changed);
	if (hs->stopping)
		return false;
	timed_wait(hs, retry_delay(hs->failures));
	return true;
}

static void *sealer_main(void *arg)
{
	struct store *st = arg;
	struct store_heads *hs = &st->heads;

	/* RocksDB counts per-operation statistics per thread unless told not to;
	 * nothing reads them, and they cost the sealer's writes dearly. */
	rocksdb_set_perf_level(rocksdb_disable);
	/* Its own name in top -H and perf: "writer" is the commit thread. */
	if (prctl(PR_SET_NAME, SEALER_THREAD_NAME) != 0)
		log_debug("store: cannot name the sealer thread");
	pthread_mutex_lock(&hs->lock);
	for (;;) {
		if (hs->frozen == NULL && seal_due(hs, mono_ms()))
			swap_heads(st);
		if (hs->frozen != NULL) {
			if (!seal_frozen(st))
				break;
			continue;
		}
		if (hs->stopping)
			break;
		timed_wait(hs, SEALER_TICK_MS);
	}
	pthread_mutex_unlock(&hs->lock);
	return NULL;
}

int store_sealer_start(struct store *st, char *err, size_t errlen)
{
	int rc = pthread_create(&st->heads.sealer, NULL, sealer_main, st);

	if (rc != 0) {
		err_set(err, errlen, "cannot start the sealer: %s", strerror(rc));
		return -1;
	}
	st->heads.sealer_running = true;
	return 0;
}

void store_heads_close(struct store *st)
{
	struct store_heads *hs = &st->heads;

	if (hs->sealer_running) {
		pthread_mutex_lock(&hs->lock);
		hs->stopping = true;
		pthread_cond_broadcast(&hs->changed);
		pthread_mutex_unlock(&hs->lock);
		pthread_join(hs->sealer, NULL);
		hs->sealer_running = false;
	}
}

int store_seal(struct store *st)
{
	struct store_heads *hs = &st->heads;
	uint64_t target, failures;
	int rc = 0;

	pthread_mutex_lock(&hs->lock);
	/* Everything committed before this call: the log below target. */
	target = st->log_next;
	failures = atomic_load(&hs->seal_failures);
	while (hs->frozen != NULL ||
	       (head_records(hs->active) > 0 && hs->sealed_log_end < target)) {
		hs->seal_wanted = true;
		pthread_cond_broadcast(&hs->changed);
		pthread_cond_wait(&hs->changed, &hs->lock);
		if (atomic_load(&hs->seal_failures) != failures) {
			rc = -1;
			break;
		}
	}
	hs->seal_wanted = false;
	pthread_mutex_unlock(&hs->lock);
	return rc;
}

/* ---- the commit thread ---- */

void store_heads_stats(struct store *st, struct store_stats *out)
{
	struct store_heads *hs = &st->heads;

	pthread_mutex_lock(&hs->lock);
	out->head_records = head_records(hs->active) +
			    (hs->frozen != NULL ? head_records(hs->frozen) : 0);
	pthread_mutex_unlock(&hs->lock);
	out->seals = atomic_load(&hs->seals);
	out->seal_failures = atomic_load(&hs->seal_failures);
	out->sealed_records = atomic_load(&hs->sealed_records);
	out->seal_files = atomic_load(&hs->seal_files);
	out->room_waits = atomic_load(&hs->room_waits);
}

void store_heads_committed(struct store *st, uint64_t log_bytes)
{
	struct store_heads *hs = &st->heads;

	if (hs->active_since_ms == 0)
		hs->active_since_ms = mono_ms();
	hs->active_log_bytes += log_bytes;
	if (hs->frozen == NULL && seal_due(hs, mono_ms()))
		pthread_cond_broadcast(&hs->changed);
}

void store_heads_wait_room(struct store *st)
{
	struct store_heads *hs = &st->heads;

	/* The caller holds the lock. A failing seal lets the head grow: commits go on. */
	while (hs->frozen != NULL && hs->failures == 0 && !hs->stopping &&
	       (hs->active_log_bytes >= HEAD_ROOM_FACTOR * SEAL_LOG_BYTES ||
		head_records(hs->active) >= HEAD_ROOM_FACTOR * SEAL_RECORDS)) {
		atomic_fetch_add(&hs->room_waits, 1);
		pthread_cond_wait(&hs->changed, &hs->lock);
	}
}

/* ---- readers ---- */

unsigned store_read_begin(struct store *st)
{
	struct store_heads *hs = &st->heads;
	unsigned e;

	pthread_mutex_lock(&hs->lock);
	e = hs->epoch;
	hs->readers[e]++;
	pthread_mutex_unlock(&hs->lock);
	return e;
}

void store_read_end(struct store *st, unsigned epoch)
{
	struct store_heads *hs = &st->heads;

	pthread_mutex_lock(&hs->lock);
	if (--hs->readers[epoch] == 0)
		pthread_cond_broadcast(&hs->changed);
	pthread_mutex_unlock(&hs->lock);
}

static void offer_entry(const struct chunk_entry *e, void *arg)
{
	codec_fold_offer(arg, e);
}

bool store_heads_fold(struct store *st, uint32_t source_id, const char *name, size_t len,
		      int64_t bucket, struct codec_fold *f)
{
	struct store_heads *hs = &st->heads;
	bool found = false;

	pthread_mutex_lock(&hs->lock);
	if (hs->frozen != NULL)
		found = head_each_entry(hs->frozen, source_id, name, len, bucket, offer_entry, f);
	if (head_each_entry(hs->active, source_id, name, len, bucket, offer_entry, f))
		found = true;
	pthread_mutex_unlock(&hs->lock);
	return found;
}

static int bucket_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* Appends h's buckets of the series in [lo, hi]; -1 when memory runs out. */
static int collect_buckets(const struct head *h, uint32_t source_id, const char *name,
			   size_t len, int64_t lo, int64_t hi, int64_t **out, size_t *n,
			   size_t *cap)
{
	size_t want = head_buckets(h, source_id, name, len, lo, hi, NULL, 0);
	void *p = *out;

	if (want == 0)
		return 0;
	if (vec_reserve(&p, cap, *n + want, sizeof(int64_t), want) != 0)
		return -1;
	*out = p;
	*n += head_buckets(h, source_id, name, len, lo, hi, *out + *n, want);
	return 0;
}

int store_heads_buckets(struct store *st, uint32_t source_id, const char *name, size_t len,
			int64_t lo, int64_t hi, int64_t **out, size_t *n)
{
	struct store_heads *hs = &st->heads;
	size_t cap = 0, w = 0;
	int rc;

	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&hs->lock);
	rc = collect_buckets(hs->active, source_id, name, len, lo, hi, out, n, &cap);
	if (rc == 0 && hs->frozen != NULL)
		rc = collect_buckets(hs->frozen, source_id, name, len, lo, hi, out, n, &cap);
	pthread_mutex_unlock(&hs->lock);
	if (rc != 0 || *n == 0)
		return rc;
	qsort(*out, *n, sizeof(**out), bucket_cmp);
	for (size_t i = 0; i < *n; i++)
		if (w == 0 || (*out)[w - 1] != (*out)[i])
			(*out)[w++] = (*out)[i];
	*n = w;
	return 0;
}

struct series_acc {
	struct head_series *items;
	size_t n, cap;
	int failed;
};

static int collect_series(const char *name, size_t len, int64_t first, int64_t last, void *arg)
{
	struct series_acc *a = arg;
	void *p = a->items;
	char *copy;

	if (vec_reserve(&p, &a->cap, a->n + 1, sizeof(*a->items), 64) != 0) {
		a->failed = 1;
		return 1;
	}
	a->items = p;
	copy = malloc(len ? len : 1);
	if (copy == NULL) {
		a->failed = 1;
		return 1;
	}
	memcpy(copy, name, len);
	a->items[a->n++] = (struct head_series){ .name = copy, .len = len, .first = first,
						 .last = last };
	return 0;
}

static int series_cmp(const void *pa, const void *pb)
{
	const struct head_series *a = pa, *b = pb;
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->name, b->name, n);

	if (c != 0)
		return c;
	return a->len < b->len ? -1 : a->len > b->len;
}

int store_heads_series(struct store *st, uint32_t source_id, struct head_series **out,
		       size_t *n)
{
	struct store_heads *hs = &st->heads;
	struct series_acc a = { 0 };
	size_t w = 0;

	pthread_mutex_lock(&hs->lock);
	head_each_series(hs->active, source_id, collect_series, &a);
	if (!a.failed && hs->frozen != NULL)
		head_each_series(hs->frozen, source_id, collect_series, &a);
	pthread_mutex_unlock(&hs->lock);
	if (a.failed) {
		store_heads_series_free(a.items, a.n);
		return -1;
	}
	if (a.n > 1)  /* qsort's array must not be NULL, even for 0 */
		qsort(a.items, a.n, sizeof(*a.items), series_cmp);
	for (size_t i = 0; i < a.n; i++) {
		if (w > 0 && series_cmp(&a.items[w - 1], &a.items[i]) == 0) {
			struct head_series *k = &a.items[w - 1];

			k->first = a.items[i].first < k->first ? a.items[i].first : k->first;
			k->last = a.items[i].last > k->last ? a.items[i].last : k->last;
			free(a.items[i].name);
			continue;
		}
		a.items[w++] = a.items[i];
	}
	*out = a.items;
	*n = w;
	return 0;
}

void store_heads_series_free(struct head_series *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(s[i].name);
	free(s);
}
