/*
 * retention.c - per-source retention in the writer (retention.h): the one rule,
 * cutoff = now - retention, computed here for every source and given to the store,
 * whose reads hide what is below it (store_read.c); and the thread that deletes
 * each source's expired partitions (store_source_trim) every RETENTION_PASS_MS
 * and when kicked. A failed deletion is logged and retried on the next pass: the
 * reads already hide those records, so nothing changes for a client meanwhile.
 */
#include "temporis/daemon/retention.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "temporis/base/buf.h"
#include "temporis/base/clock.h"
#include "temporis/base/log.h"

#define MS_PER_S 1000
#define NS_PER_MS 1000000L
#define IDS_INITIAL 16
#define RETENTION_ERR_MAX 512

/* Guarded by lock: the thread's state. st and c are set before the thread starts
 * and cleared after it stops; the cutoffs themselves are the store's. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct store *st;
	struct catalog *c;
	pthread_t thread;
	bool running, stopping, kicked;
} ret = { .lock = PTHREAD_MUTEX_INITIALIZER };  /* wake: initialised by retention_start */

/* ---- cutoffs ---- */

struct refresh {
	struct store *st;
	int64_t now;
};

static int64_t cutoff_of(int64_t now, int64_t retention_s)
{
	return retention_s > 0 ? now - retention_s : STORE_NO_CUTOFF;
}

static void refresh_one(const struct catalog_account *owner, const struct catalog_source *s,
			void *arg)
{
	struct refresh *r = arg;

	(void)owner;
	if (store_source_set_cutoff(r->st, s->id, cutoff_of(r->now, s->retention_s)) != 0)
		log_warn("retention: source %" PRIu32 " has no family", s->id);
}

static void refresh_with(struct store *st, struct catalog *c)
{
	struct refresh r = { .st = st };

	if (wall_time_s(&r.now) != 0) {
		log_warn("retention: the clock cannot be read (%s); cutoffs unchanged",
			 strerror(errno));
		return;
	}
	if (catalog_each_source(c, NULL, refresh_one, &r) != CAT_OK)
		log_warn("retention: the catalog cannot be listed; cutoffs unchanged");
}

void retention_refresh(void)
{
	if (ret.st != NULL)
		refresh_with(ret.st, ret.c);
}

/* ---- the deleting thread ---- */

struct ids {
	uint32_t *id;
	size_t n, cap;
	bool failed;
};

static void collect_retained(const struct catalog_account *owner,
			     const struct catalog_source *s, void *arg)
{
	struct ids *ids = arg;
	void *arr = ids->id;

	(void)owner;
	if (s->retention_s <= 0)
		return;
	if (vec_reserve(&arr, &ids->cap, ids->n + 1, sizeof(*ids->id), IDS_INITIAL) != 0) {
		ids->failed = true;
		return;
	}
	ids->id = arr;
	ids->id[ids->n++] = s->id;
}

/* One pass: each source with a retention loses its partitions below its cutoff. */
static void trim_pass(struct store *st, struct catalog *c)
{
	struct ids ids = { 0 };
	char err[RETENTION_ERR_MAX];

	refresh_with(st, c);
	if (catalog_each_source(c, NULL, collect_retained, &ids) != CAT_OK || ids.failed)
		log_warn("retention: cannot list the sources; retried in %d s",
			 RETENTION_PASS_MS / MS_PER_S);
	for (size_t i = 0; i < ids.n; i++) {
		int64_t cutoff = store_source_cutoff(st, ids.id[i]);
		uint64_t freed = 0, t0 = mono_ms();

		if (store_source_trim(st, ids.id[i], cutoff, &freed, err, sizeof(err)) != 0) {
			log_warn("retention: source %" PRIu32 ": %s; retried in %d s", ids.id[i], err,
				 RETENTION_PASS_MS / MS_PER_S);
			continue;
		}
		if (freed > 0)
			log_info("retention: source %" PRIu32 ": records before %" PRId64
				 " deleted, %" PRIu64 " SST bytes freed in %" PRIu64 " ms",
				 ids.id[i], cutoff, freed, mono_ms() - t0);
	}
	free(ids.id);
}

static struct timespec deadline_after(int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / MS_PER_S;
	ts.tv_nsec += (long)(ms % MS_PER_S) * NS_PER_MS;
	if (ts.tv_nsec >= MS_PER_S * NS_PER_MS) {
		ts.tv_sec++;
		ts.tv_nsec -= MS_PER_S * NS_PER_MS;
	}
	return ts;
}

static void *trim_thread(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&ret.lock);
	while (!ret.stopping) {
		struct timespec until = deadline_after(RETENTION_PASS_MS);
		int rc = 0;

		while (!ret.stopping && !ret.kicked && rc != ETIMEDOUT)
			rc = pthread_cond_timedwait(&ret.wake, &ret.lock, &until);
		if (ret.stopping)
			break;
		ret.kicked = false;
		pthread_mutex_unlock(&ret.lock);
		trim_pass(ret.st, ret.c);
		pthread_mutex_lock(&ret.lock);
	}
	pthread_mutex_unlock(&ret.lock);
	return NULL;
}

int retention_start(struct store *st, struct catalog *c)
{
	pthread_condattr_t attr;
	int rc;

	ret.st = st;
	ret.c = c;
	ret.stopping = false;
	ret.kicked = true;  /* a first pass at once: what expired while stopped */
	refresh_with(st, c);
	if (pthread_condattr_init(&attr) != 0 ||
	    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
	    pthread_cond_init(&ret.wake, &attr) != 0)
		return -1;
	pthread_condattr_destroy(&attr);
	pthread_mutex_lock(&ret.lock);
	rc = pthread_create(&ret.thread, NULL, trim_thread, NULL);
	ret.running = rc == 0;
	pthread_mutex_unlock(&ret.lock);
	if (rc != 0) {
		log_error("retention: cannot start its thread: %s", strerror(rc));
		pthread_cond_destroy(&ret.wake);
		return -1;
	}
	return 0;
}

void retention_kick(void)
{
	retention_refresh();
	pthread_mutex_lock(&ret.lock);
	if (ret.running) {
		ret.kicked = true;
		pthread_cond_signal(&ret.wake);
	}
	pthread_mutex_unlock(&ret.lock);
}

void retention_stop(void)
{
	if (!ret.running)
		return;
	pthread_mutex_lock(&ret.lock);
	ret.stopping = true;
	pthread_cond_signal(&ret.wake);
	pthread_mutex_unlock(&ret.lock);
	pthread_join(ret.thread, NULL);
	pthread_mutex_lock(&ret.lock);
	ret.running = false;
	pthread_cond_destroy(&ret.wake);
	ret.st = NULL;
	ret.c = NULL;
	pthread_mutex_unlock(&ret.lock);
}
