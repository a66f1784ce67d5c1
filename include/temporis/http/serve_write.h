/*
 * serve_write.h - the field's write protocols (serve_write.c): InfluxDB line protocol
 * on POST /write (1.x) and POST /api/v2/write (2.x), GET /ping as InfluxDB answers it,
 * and Prometheus remote_write on POST /api/v1/write. Each decodes its body into packed
 * records and hands them to the ingest path (serve_ingest.h): same token, account,
 * upsert, all-or-nothing and 204-after-commit rules as the JSON API.
 */
#ifndef TEMPORIS_HTTP_SERVE_WRITE_H
#define TEMPORIS_HTTP_SERVE_WRITE_H

struct handler_env;
struct http_req;

/* InfluxDB's clients read errors as {"error": "..."}. */
#define INFLUX_ERROR_KEY "error"
/* The version /ping reports: the 1.x API these routes speak. */
#define INFLUX_COMPAT_VERSION "1.8.10"

/* ?db=SOURCE[&precision=ns|u|ms|s|m|h][&rp=ignored] */
void influx_write_v1(struct handler_env *env, struct http_req *req);
/* ?bucket=SOURCE[&org=ignored][&precision=ns|us|ms|s] */
void influx_write_v2(struct handler_env *env, struct http_req *req);
/* 204 with X-Influxdb-Version and X-Influxdb-Build, as the clients probe. */
void influx_ping(struct handler_env *env, struct http_req *req);

/* 415 unless Content-Encoding is snappy (or absent): remote_write always sends snappy. */
void remote_write_on_head(struct handler_env *env, struct http_req *req);
/* ?data_source=SOURCE or the X-Temporis-Data-Source header. */
void remote_write_on_body(struct handler_env *env, struct http_req *req);

#endif
