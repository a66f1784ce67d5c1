/*
 * serve_export.h - GET /v1/data_sources/{name}/export (serve_export.c): every record
 * of a source, or of one series, streamed as NDJSON, CSV or InfluxDB line protocol
 * in pages asked from the writer one after another, in constant memory.
 */
#ifndef TEMPORIS_HTTP_SERVE_EXPORT_H
#define TEMPORIS_HTTP_SERVE_EXPORT_H

struct handler_env;
struct http_req;

void source_export(struct handler_env *env, struct http_req *req);

#endif
