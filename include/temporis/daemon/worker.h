/*
 * worker.h - an HTTP worker process and the state its request handlers share.
 *
 * worker.c runs the process (event loop, catalog refresh, wake-ups, shutdown);
 * http_ingest.c handles POST /v1/data_sources/ingest through the ring;
 * http_read.c handles the read and management routes by asking the writer.
 */
#ifndef TEMPORIS_WORKER_H
#define TEMPORIS_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "temporis/data/catalog_snap.h"
#include "temporis/base/config.h"
#include "temporis/http/server.h"
#include "temporis/data/ingest.h"
#include "temporis/daemon/fds.h"
#include "temporis/ipc/ring.h"
#include "temporis/http/routes.h"
#include "temporis/ipc/shm.h"

struct event;
struct event_base;
struct ack_wait;

struct worker {
	struct event_base *base;
	const struct cfg *cfg;
	struct shm *shm;
	const struct server_fds *fds;
	unsigned index;
	struct ring_producer prod;
	struct http_server *http;
	struct ingest_parser *parser;
	struct event *wake_ev;            /* our lane's eventfd: the writer committed */
	struct event *room_timer;         /* earliest enqueue deadline */
	struct event *master_ev;          /* master pipe EOF */
	struct event *sigterm_ev;
	struct event *drain_ev;           /* periodic drain check once stopping */
	bool stopping;

	/* Catalog snapshot, refreshed from shared memory before each request. */
	uint64_t cat_gen;
	uint8_t *cat_buf;
	size_t cat_cap, cat_len;
	struct catalog_snap *snap;

	/* Published entries waiting for their commit, in lane order. */
	struct ack_wait *acks_head, *acks_tail;
	/* Validated requests waiting for room in the lane, oldest first. */
	struct ack_wait *room_head, *room_tail;

	uint8_t *inflate_buf;             /* gzip bodies, reused */
	size_t inflate_cap;
};

/* Per-request state hung on http_req.user. */
struct req_ctx {
	struct route_match route;
	/* The snapshot may be replaced between head and body: keep ids, not pointers. */
	uint32_t account_id;
	char account_name[CATALOG_NAME_MAX + 1];
	struct ack_wait *wait;            /* ingest: the entry this request waits on */
	struct read_call *call;           /* reads: the writer call in flight */
};

/* Runs in the forked child; never returns. */
void worker_main(const struct cfg *cfg, struct shm *shm, const struct server_fds *fds,
		 unsigned index) __attribute__((noreturn));

/* worker.c */
void worker_refresh_catalog(struct worker *w);
/* Answer req and free its req_ctx; req must not be used afterwards. */
void worker_respond(struct http_req *req, int status, const char *content_type,
		    const char *extra_headers, const void *body, size_t len);
void worker_respond_error(struct http_req *req, int status, const char *detail,
			  const char *extra_headers);
/* Shutdown can finish once nothing waits on us. */
void worker_check_drained(struct worker *w);

/* http_ingest.c */
void ingest_on_body(struct worker *w, struct http_req *req);
void ingest_on_abort(struct worker *w, struct http_req *req);
void ingest_on_commit(struct worker *w);   /* the lane's committed position moved */
void ingest_on_room_timer(struct worker *w);
void ingest_fail_all(struct worker *w);    /* shutdown: answer what still waits for room */
size_t ingest_waiting(const struct worker *w);

/* http_read.c */
void read_on_body(struct worker *w, struct http_req *req);
void read_on_abort(struct worker *w, struct http_req *req);

#endif
