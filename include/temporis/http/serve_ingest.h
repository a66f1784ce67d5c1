/*
 * serve_ingest.h - POST /v1/data_sources/ingest through this worker's lane of the
 * ring (serve_ingest.c): the route's handlers, bound in routes.c, and the entry
 * points the worker process calls as its loop sees commits, deadlines and shutdown.
 */
#ifndef TEMPORIS_HTTP_SERVE_INGEST_H
#define TEMPORIS_HTTP_SERVE_INGEST_H

#include <stddef.h>

struct handler_env;
struct http_req;

/* After authentication: 415 for a Content-Encoding other than gzip or identity. */
void ingest_on_head(struct handler_env *env, struct http_req *req);
/* Validate the body, publish it into the lane, answer 204 once it is committed. */
void ingest_on_body(struct handler_env *env, struct http_req *req);

/* The writer moved the lane's committed position: answer what committed, use the room. */
void ingest_on_commit(struct handler_env *env);
/* env->timer fired: 503 to the requests that waited too long for room in the lane
 * (enqueue_timeout_ms) or for their commit (commit_timeout_ms). */
void ingest_on_timer(struct handler_env *env);
/* Shutdown: 503 to what still waits for room (published entries still commit). */
void ingest_fail_all(struct handler_env *env);
/* Requests waiting for a commit or for room; the worker drains until none. */
size_t ingest_waiting(const struct handler_env *env);

#endif
