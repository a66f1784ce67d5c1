/*
 * serve_sources.h - the read and management routes of data sources (serve_sources.c),
 * bound to their paths in routes.c. Each asks the writer (writer_call.h) once the
 * caller may see the source, and answers from its reply, scoped to the caller's
 * account: no reply ever shows an account.
 */
#ifndef TEMPORIS_HTTP_SERVE_SOURCES_H
#define TEMPORIS_HTTP_SERVE_SOURCES_H

struct handler_env;
struct http_req;

void sources_list(struct handler_env *env, struct http_req *req);     /* GET  /v1/data_sources */
void sources_create(struct handler_env *env, struct http_req *req);   /* POST /v1/data_sources */
void source_get(struct handler_env *env, struct http_req *req);       /* GET  .../{name} */
void source_update(struct handler_env *env, struct http_req *req);    /* PATCH .../{name} */
void source_archive(struct handler_env *env, struct http_req *req);   /* POST .../{name}/archive */
void source_unarchive(struct handler_env *env, struct http_req *req); /* POST .../{name}/unarchive */
void source_series(struct handler_env *env, struct http_req *req);    /* GET  .../{name}/series */
void source_records(struct handler_env *env, struct http_req *req);   /* GET  .../{name}/records */

#endif
