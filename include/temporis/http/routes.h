/*
 * route.h - maps (method, path) of the public API to a route (SPEC sections 3, 4).
 */
#ifndef TEMPORIS_ROUTE_H
#define TEMPORIS_ROUTE_H

#include <stddef.h>

#include "temporis/http/server.h"

enum route_id {
	ROUTE_NOT_FOUND = 0,             /* 404 {"detail":"Not found."} */
	ROUTE_METHOD_NOT_ALLOWED,        /* known path, wrong method: 405 with allow */
	ROUTE_INGEST,                    /* POST /v1/data_sources/ingest */
	ROUTE_SOURCES_LIST,              /* GET  /v1/data_sources */
	ROUTE_SOURCES_CREATE,            /* POST /v1/data_sources */
	ROUTE_SOURCE_GET,                /* GET  /v1/data_sources/{name} */
	ROUTE_SOURCE_ARCHIVE,            /* POST /v1/data_sources/{name}/archive */
	ROUTE_SOURCE_UNARCHIVE,          /* POST /v1/data_sources/{name}/unarchive */
	ROUTE_SOURCE_SERIES,             /* GET  /v1/data_sources/{name}/series */
	ROUTE_SOURCE_RECORDS,            /* GET  /v1/data_sources/{name}/records */
	ROUTE_HEALTHZ,                   /* GET  /healthz */
	ROUTE_METRICS,                   /* GET  /metrics */
	ROUTE_STATIC,                    /* GET  /, /static/..., /javascript/... (dashboard) */
};

#define ROUTE_NAME_MAX 255

struct route_match {
	enum route_id id;
	const char *allow;               /* the Allow header value for 405 */
	char name[ROUTE_NAME_MAX + 1];   /* {name}, percent-decoded, NUL-terminated */
	size_t name_len;
};

/* path is the request path without the query. GET routes also match HEAD. */
void route_match(enum http_method method, const char *path, struct route_match *out);

/*
 * Find key in a query string ("a=1&b=2") and percent-decode its value into buf.
 * Returns the decoded length, -1 if absent, -2 if malformed or longer than cap-1.
 */
long route_query_param(const char *query, const char *key, char *buf, size_t cap);

#endif
