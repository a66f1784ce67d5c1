/*
 * routes.c - the public API's route table and its matching (routes.h). The table is
 * the one place that knows every route: its method and path, whether it needs a
 * token, what /metrics counts it as, and the handlers that answer it. The API's
 * routes and errors are README's and man/temporisd.8's.
 */
#include "temporis/http/routes.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "temporis/base/clock.h"
#include "temporis/base/config.h"
#include "temporis/http/handler.h"
#include "temporis/http/serve_export.h"
#include "temporis/http/serve_ingest.h"
#include "temporis/http/serve_metrics.h"
#include "temporis/http/serve_prom.h"
#include "temporis/http/serve_sources.h"
#include "temporis/http/serve_static.h"
#include "temporis/http/serve_write.h"
#include "temporis/http/server.h"
#include "temporis/ipc/shm.h"

#define HEALTHZ_BODY "{\"status\":\"ok\"}"
#define HEALTHZ_BODY_MAX 256
#define ALLOW_SEPARATOR ", "

/* ---- the handlers that only need part of the environment ---- */

/* 200 while ingest can be stored; 503 with the reason while the writer is stalled or
 * the disk is full. */
static void healthz(struct handler_env *env, struct http_req *req)
{
	uint32_t disk = atomic_load_explicit(&env->shm->hdr->disk_state, memory_order_acquire);
	uint64_t free_bytes = atomic_load_explicit(&env->shm->hdr->stats.disk_free_bytes,
						   memory_order_relaxed);
	uint64_t beat = atomic_load_explicit(&env->shm->hdr->writer_beat_ms, memory_order_relaxed);
	uint64_t now = mono_ms();
	char body[HEALTHZ_BODY_MAX];
	int n;

	if (beat != 0 && now > beat && now - beat > SHM_WRITER_STALL_MS) {
		n = snprintf(body, sizeof(body), "{\"status\":\"writer_stalled\",\"detail\":\"The "
			     "writer has made no progress for %" PRIu64 " ms: ingest waits, then "
			     "answers 503; see the server's log.\"}", now - beat);
		if (n > 0 && (size_t)n < sizeof(body))
			http_respond(req, 503, "application/json", NULL, body, (size_t)n);
		else
			http_respond_error(req, 500, "Internal server error.", NULL);
		return;
	}
	if (disk == SHM_DISK_OK) {
		http_respond(req, 200, "application/json", NULL, HEALTHZ_BODY, strlen(HEALTHZ_BODY));
		return;
	}
	if (disk == SHM_DISK_LOW)
		n = snprintf(body, sizeof(body), "{\"status\":\"disk_full\",\"detail\":\"%" PRIu64
			     " bytes free on the data directory's filesystem, below min_free_disk = %"
			     PRIu64 ": ingest answers 507 until space is freed.\"}", free_bytes,
			     env->cfg->min_free_disk);
	else
		n = snprintf(body, sizeof(body), "{\"status\":\"disk_full\",\"detail\":\"The store "
			     "ran out of space (%" PRIu64 " bytes free): ingest answers 507 until "
			     "space is freed; the store then reopens by itself.\"}", free_bytes);
	if (n < 0 || (size_t)n >= sizeof(body)) {
		http_respond_error(req, 500, "Internal server error.", NULL);
		return;
	}
	http_respond(req, 503, "application/json", NULL, body, (size_t)n);
}

static void metrics(struct handler_env *env, struct http_req *req)
{
	metrics_serve(req, env->shm);
}

static void dashboard(struct handler_env *env, struct http_req *req)
{
	static_serve(req, env->cfg->web_root, env->cfg->web_lib_root);
}

/* ---- the table ---- */

/*
 * In match order: the first row whose pattern matches a path names its resource
 * (so /v1/data_sources/ingest is never a source called "ingest"). The dashboard's
 * files need no token (they hold no data; the page asks for one itself) and are not
 * counted in /metrics.
 */
static const struct route routes[] = {
	{ .id = ROUTE_HEALTHZ, .method = HTTP_GET, .pattern = "/healthz",
	  .label = METRIC_ROUTE_HEALTHZ, .on_head = healthz },
	{ .id = ROUTE_METRICS, .method = HTTP_GET, .pattern = "/metrics",
	  .label = METRIC_ROUTE_METRICS, .on_head = metrics },
	{ .id = ROUTE_STATIC, .method = HTTP_GET, .pattern = "/",
	  .label = ROUTE_NOT_COUNTED, .on_head = dashboard },
	{ .id = ROUTE_STATIC, .method = HTTP_GET, .pattern = "/static/*",
	  .label = ROUTE_NOT_COUNTED, .on_head = dashboard },
	{ .id = ROUTE_STATIC, .method = HTTP_GET, .pattern = "/javascript/*",
	  .label = ROUTE_NOT_COUNTED, .on_head = dashboard },
	{ .id = ROUTE_INGEST, .method = HTTP_POST, .pattern = "/v1/data_sources/ingest",
	  .auth = ROUTE_AUTH_BEARER, .label = METRIC_ROUTE_INGEST,
	  .on_head = ingest_on_head, .on_body = ingest_on_body },
	{ .id = ROUTE_SOURCES_LIST, .method = HTTP_GET, .pattern = "/v1/data_sources",
	  .auth = ROUTE_AUTH_BEARER, .label = METRIC_ROUTE_SOURCES, .on_body = sources_list },
	{ .id = ROUTE_SOURCES_CREATE, .method = HTTP_POST, .pattern = "/v1/data_sources",
	  .auth = ROUTE_AUTH_BEARER, .label = METRIC_ROUTE_SOURCES, .on_body = sources_create },
	{ .id = ROUTE_SOURCE_GET, .method = HTTP_GET, .pattern = "/v1/data_sources/{name}",
	  .auth = ROUTE_AUTH_BEARER, .label = METRIC_ROUTE_SOURCE, .on_body = source_get },
	{ .id = ROUTE_SOURCE_UPDATE, .method = HTTP_PATCH, .pattern = "/v1/data_sources/{name}",
	  .auth = ROUTE_AUTH_BEARER, .label = METRIC_ROUTE_SOURCE, .on_body = source_update },
	{ .id = ROUTE_SOURCE_ARCHIVE, .method = HTTP_POST,
	  .pattern = "/v1/data_sources/{name}/archive",
	  .auth = ROUTE_AUTH_BEARER, .label = METRIC_ROUTE_ARCHIVE, .on_body = source_archive },
	{ .id = ROUTE_SOURCE_UNARCHIVE, .method = HTTP_POST,
	  .pattern = "/v1/data_sources/{name}/unarchive",
	  .auth = ROUTE_AUTH_BEARER, .label = METRIC_ROUTE_ARCHIVE, .on_body = source_unarchive },
	{ .id = ROUTE_SOURCE_SERIES, .method = HTTP_GET,
	  .pattern = "/v1/data_sources/{name}/series",
	  .auth = ROUTE_AUTH_BEARER, .label = METRIC_ROUTE_SERIES, .on_body = source_series },
	{ .id = ROUTE_SOURCE_RECORDS, .method = HTTP_GET,
	  .pattern = "/v1/data_sources/{name}/records",
	  .auth = ROUTE_AUTH_BEARER, .label = METRIC_ROUTE_RECORDS, .on_body = source_records },
	{ .id = ROUTE_SOURCE_EXPORT, .method = HTTP_GET,
	  .pattern = "/v1/data_sources/{name}/export",
	  .auth = ROUTE_AUTH_BEARER, .label = METRIC_ROUTE_EXPORT, .on_body = source_export },
	/* The field's write protocols: their clients read errors as {"error": ...}. */
	{ .id = ROUTE_INFLUX_WRITE, .method = HTTP_POST, .pattern = "/write",
	  .auth = ROUTE_AUTH_FIELD, .error_key = INFLUX_ERROR_KEY, .label = METRIC_ROUTE_INFLUX,
	  .on_head = ingest_on_head, .on_body = influx_write_v1 },
	{ .id = ROUTE_INFLUX_WRITE, .method = HTTP_POST, .pattern = "/api/v2/write",
	  .auth = ROUTE_AUTH_FIELD, .error_key = INFLUX_ERROR_KEY, .label = METRIC_ROUTE_INFLUX,
	  .on_head = ingest_on_head, .on_body = influx_write_v2 },
	{ .id = ROUTE_INFLUX_PING, .method = HTTP_GET, .pattern = "/ping",
	  .error_key = INFLUX_ERROR_KEY, .label = METRIC_ROUTE_PING, .on_head = influx_ping },
	{ .id = ROUTE_REMOTE_WRITE, .method = HTTP_POST, .pattern = "/api/v1/write",
	  .auth = ROUTE_AUTH_FIELD, .label = METRIC_ROUTE_REMOTE_WRITE,
	  .on_head = remote_write_on_head, .on_body = remote_write_on_body },
	{ .id = ROUTE_PROM_API, .method = HTTP_GET, .pattern = "/prometheus/{name}/api/v1/*",
	  .auth = ROUTE_AUTH_FIELD, .error_key = PROM_ERROR_KEY, .label = METRIC_ROUTE_PROM_QUERY,
	  .on_body = prom_api },
	{ .id = ROUTE_PROM_API, .method = HTTP_POST, .pattern = "/prometheus/{name}/api/v1/*",
	  .auth = ROUTE_AUTH_FIELD, .error_key = PROM_ERROR_KEY, .label = METRIC_ROUTE_PROM_QUERY,
	  .on_body = prom_api },
};

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* ---- matching ---- */

static const char *const method_names[] = {
	[HTTP_GET] = "GET",       [HTTP_HEAD] = "HEAD",     [HTTP_POST] = "POST",
	[HTTP_PUT] = "PUT",       [HTTP_DELETE] = "DELETE", [HTTP_PATCH] = "PATCH",
	[HTTP_OPTIONS] = "OPTIONS",
};

static bool method_is(enum http_method method, enum http_method want)
{
	return method == want || (want == HTTP_GET && method == HTTP_HEAD);
}

/* The methods of every row of pattern, in table order: "GET, POST". */
static void allow_of(const char *pattern, struct route_match *out)
{
	size_t len = 0;

	out->allow_text[0] = '\0';
	for (size_t i = 0; i < NROUTES; i++) {
		int n;

		if (strcmp(routes[i].pattern, pattern) != 0)
			continue;
		n = snprintf(out->allow_text + len, sizeof(out->allow_text) - len, "%s%s",
			     len ? ALLOW_SEPARATOR : "", method_names[routes[i].method]);
		if (n < 0 || (size_t)n >= sizeof(out->allow_text) - len)
			break;               /* the table's longest list fits: never */
		len += (size_t)n;
	}
	out->allow = out->allow_text;
}

void route_match(enum http_method method, const char *path, struct route_match *out)
{
	const struct route *resource = NULL;

	memset(out, 0, sizeof(*out));
	out->id = ROUTE_NOT_FOUND;
	for (size_t i = 0; i < NROUTES; i++) {
		const struct route *r = &routes[i];

		if (resource ? strcmp(r->pattern, resource->pattern) != 0
			     : !uri_match(r->pattern, path, out->name, sizeof(out->name),
					  &out->name_len))
			continue;
		resource = r;
		if (method_is(method, r->method)) {
			out->id = r->id;
			out->row = r;
			if (out->name_len == 0)
				out->name[0] = '\0';    /* left over from a {name} row tried before */
			return;
		}
	}
	if (resource == NULL) {
		out->name[0] = '\0';
		return;
	}
	out->id = ROUTE_METHOD_NOT_ALLOWED;
	allow_of(resource->pattern, out);
}

enum metric_route route_label(enum route_id id)
{
	for (size_t i = 0; i < NROUTES; i++)
		if (routes[i].id == id)
			return routes[i].label;
	return METRIC_ROUTE_OTHER;
}
