/*
 * serve_ingest.h - POST /v1/data_sources/ingest through this worker's lane of the
 * ring (serve_ingest.c): the route's handlers, bound in routes.c, and the entry
 * points the worker process calls as its loop sees commits, deadlines and shutdown.
 */
#ifndef TEMPORIS_HTTP_SERVE_INGEST_H
#define TEMPORIS_HTTP_SERVE_INGEST_H

#include <stdbool.h>
#include <stddef.h>

#include "temporis/data/ingest.h"

struct handler_env;
struct http_req;

/* After authentication: 415 for a Content-Encoding other than gzip or identity. */
void ingest_on_head(struct handler_env *env, struct http_req *req);
/* Validate the body, publish it into the lane, answer 204 once it is committed. */
void ingest_on_body(struct handler_env *env, struct http_req *req);

/* What every write protocol shares (serve_write.c's too). */
/* The request body, gunzipped when Content-Encoding says gzip; false once answered
 * (400 bad gzip, 413 past max_body_bytes, 500). */
bool ingest_body(struct handler_env *env, struct http_req *req, const char **body, size_t *len);
/* The limits a body's packed records must fit: records per request, one ring entry. */
struct ingest_limits ingest_limits_of(const struct handler_env *env);
/*
 * Answer a body a decoder returned rc for (ingest_parse, ingest_lp_parse,
 * ingest_prom_parse): 500 when it ran out of memory (rc < 0), its status and detail when
 * it refused the body; else store res's records in the account's data source called
 * source: 404 when there is none, 409 when archived, 507 while the disk is full, else
 * 204 once committed (at once for no records), 503 when there is no room in time.
 * Answers req in all cases.
 */
void ingest_submit(struct handler_env *env, struct http_req *req, int rc,
		   const struct ingest_result *res, const char *source, size_t source_len);

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
