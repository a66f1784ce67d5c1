/*
 * routes.h - the public API's route table: each row binds a method and a path pattern
 * to whether a token is needed, the /metrics label its answers count under, and its
 * handlers (routes.c). Adding a route is one row there plus its handler.
 */
#ifndef TEMPORIS_HTTP_ROUTES_H
#define TEMPORIS_HTTP_ROUTES_H

#include <stdbool.h>
#include <stddef.h>

#include "temporis/http/parse.h"
#include "temporis/http/uri.h"
#include "temporis/ipc/metric_keys.h"

struct handler_env;

/* The routes; a route may span several rows (the dashboard's three prefixes). */
enum route_id {
	ROUTE_NOT_FOUND = 0,             /* no row's path: 404 {"detail":"Not found."} */
	ROUTE_METHOD_NOT_ALLOWED,        /* a row's path, no row's method: 405 with Allow */
	ROUTE_INGEST,                    /* POST /v1/data_sources/ingest */
	ROUTE_SOURCES_LIST,              /* GET  /v1/data_sources */
	ROUTE_SOURCES_CREATE,            /* POST /v1/data_sources */
	ROUTE_SOURCE_GET,                /* GET  /v1/data_sources/{name} */
	ROUTE_SOURCE_ARCHIVE,            /* POST /v1/data_sources/{name}/archive */
	ROUTE_SOURCE_UNARCHIVE,          /* POST /v1/data_sources/{name}/unarchive */
	ROUTE_SOURCE_SERIES,             /* GET  /v1/data_sources/{name}/series */
	ROUTE_SOURCE_RECORDS,            /* GET  /v1/data_sources/{name}/records */
	ROUTE_SOURCE_EXPORT,             /* GET  /v1/data_sources/{name}/export (streamed) */
	ROUTE_HEALTHZ,                   /* GET  /healthz */
	ROUTE_METRICS,                   /* GET  /metrics */
	ROUTE_STATIC,                    /* GET  /, /static/..., /javascript/... (dashboard) */
	ROUTE_INFLUX_WRITE,              /* POST /write (1.x), /api/v2/write (2.x): line protocol */
	ROUTE_INFLUX_PING,               /* GET  /ping: what InfluxDB clients probe */
	ROUTE_REMOTE_WRITE,              /* POST /api/v1/write: Prometheus remote_write */
	ROUTE_PROM_API,                  /* GET|POST /prometheus/{name}/api/v1/...: queries */
	ROUTE_SOURCE_UPDATE,             /* PATCH /v1/data_sources/{name}: {"retention": ...} */
};

/* How a row's requests prove their account. */
enum route_auth {
	ROUTE_AUTH_NONE = 0,
	ROUTE_AUTH_BEARER,               /* Authorization: Bearer TOKEN */
	/* Also as the field's clients send it: "Token TOKEN", HTTP Basic with the token as
	 * the password, or InfluxDB 1.x's ?u=USER&p=TOKEN query. */
	ROUTE_AUTH_FIELD,
};

/* The label of a row whose answers /metrics does not count. */
#define ROUTE_NOT_COUNTED METRIC_ROUTES

/* A handler answers req (req->user is its struct req_ctx, handler.h) now or later. */
typedef void route_handler(struct handler_env *env, struct http_req *req);

struct route {
	enum route_id id;
	enum http_method method;         /* HTTP_GET also admits HEAD */
	const char *pattern;             /* uri_match(): literal, {name}, final '*' */
	enum route_auth auth;
	const char *error_key;           /* error bodies' member; NULL: "detail" */
	enum metric_route label;         /* or ROUTE_NOT_COUNTED */
	route_handler *on_head;          /* after auth; may answer from the head alone */
	route_handler *on_body;          /* the body is complete; NULL if on_head always answers */
};

#define ROUTE_NAME_MAX URI_NAME_MAX
#define ROUTE_ALLOW_MAX 64

struct route_match {
	enum route_id id;
	const struct route *row;         /* the matched row; NULL for 404 and 405 */
	const char *allow;               /* 405: the Allow header's value (in allow_text) */
	char allow_text[ROUTE_ALLOW_MAX];
	char name[ROUTE_NAME_MAX + 1];   /* {name}, percent-decoded, NUL-terminated */
	size_t name_len;
};

/*
 * Match path (without the query, not decoded) against the table. The first row
 * whose pattern matches names the resource; a row of that pattern with the method
 * is the route, else it is ROUTE_METHOD_NOT_ALLOWED with the pattern's methods in
 * allow ("GET, POST"). No row's pattern: ROUTE_NOT_FOUND.
 */
void route_match(enum http_method method, const char *path, struct route_match *out);

/* The /metrics label route id counts under ("other" for 404 and 405). */
enum metric_route route_label(enum route_id id);

#endif
