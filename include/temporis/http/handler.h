/*
 * handler.h - what every request handler shares: the worker's environment (config,
 * shared memory, its lane of the ring, the ingest parser, its catalog snapshot, the
 * ingest requests waiting on the lane) and each request's context (handler.c).
 * The worker process (daemon/worker.c) owns the environment and runs its loop.
 */
#ifndef TEMPORIS_HTTP_HANDLER_H
#define TEMPORIS_HTTP_HANDLER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "temporis/base/buf.h"
#include "temporis/base/config.h"
#include "temporis/data/catalog.h"
#include "temporis/http/uri.h"
#include "temporis/ipc/ring.h"
#include "temporis/ipc/shm.h"

struct event;
struct event_base;
struct ingest_parser;
struct ingest_lp;
struct ingest_prom;
struct ack_wait;
struct writer_call;
struct route;

struct handler_env {
	struct event_base *base;
	const struct cfg *cfg;
	struct shm *shm;
	struct shm_worker_stats *stats;  /* this worker slot's request counters */
	unsigned index;                  /* the worker slot, which is its lane */
	int writer_wake;                 /* eventfd: the lane has new entries */
	struct ring_producer prod;
	struct ingest_parser *parser;    /* the JSON API's bodies */
	struct ingest_lp *lp;            /* InfluxDB line protocol */
	struct ingest_prom *prom;        /* Prometheus remote_write */
	struct event *timer;             /* the worker's; fires ingest_on_timer */
	/* writer_call.c's: its connections to the writer now, and the calls waiting for one */
	unsigned writer_calls;
	TAILQ_HEAD(writer_call_queue, writer_call) calls;
	unsigned calls_waiting;

	/* Catalog snapshot, refreshed from shared memory before it is read. */
	uint64_t cat_gen;
	uint8_t *cat_buf;
	size_t cat_cap, cat_len;
	struct catalog_snap *snap;

	/* serve_ingest.c's: published entries waiting for their commit, in lane order,
	 * and validated requests waiting for room in the lane, oldest first. acks_due:
	 * the first of acks whose commit deadline has not passed (NULL: none). */
	struct ack_wait *acks_head, *acks_tail, *acks_due;
	struct ack_wait *room_head, *room_tail;
	struct buf inflate;              /* gzip bodies, reused */
};

/*
 * Per-request state on http_req.user, from the head to the answer: dispatch.c
 * allocates it and frees it when the request is answered or the client leaves.
 */
struct req_ctx {
	const struct route *row;         /* routes.h; NULL for 404 and 405 */
	uint64_t start_us;               /* mono_us() when the head was complete */
	char name[URI_NAME_MAX + 1];     /* the path's {name}, percent-decoded */
	size_t name_len;
	/* The snapshot may be replaced between head and body: keep ids, not pointers. */
	uint32_t account_id;
	char account_name[CATALOG_NAME_MAX + 1];
	/* Work in flight that will answer later (an ingest wait, a writer call), or NULL;
	 * if the client leaves first, forget(pending) drops the answer, not the work. */
	void *pending;
	void (*forget)(void *pending);
};

/* Set up env for worker slot index (parser, lane, first snapshot). 0 or -1. */
int handler_env_init(struct handler_env *env, struct event_base *base, const struct cfg *cfg,
		     struct shm *shm, unsigned index, int writer_wake);
/* The current catalog snapshot (fetched again if the writer published one), or NULL. */
const struct catalog_snap *handler_snapshot(struct handler_env *env);
/* The data source name of the request's account in the current snapshot, or NULL. */
const struct catalog_source *handler_source(struct handler_env *env, const struct req_ctx *ctx,
					    const char *name, size_t len);

#endif
