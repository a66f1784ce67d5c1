/*
 * serve_write.c - the field's write protocols (serve_write.h). The source comes from
 * the query (db, bucket, data_source) rather than the body; the body is decoded by
 * the data layer (ingest_lp.c, ingest_prom.c) into the same packed records the JSON
 * API produces, and ingest_submit (serve_ingest.c) does the rest. Owns nothing: the
 * decoders are the environment's.
 */
#include "temporis/http/serve_write.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "temporis/base/clock.h"
#include "temporis/data/ingest_lp.h"
#include "temporis/data/ingest_prom.h"
#include "temporis/http/handler.h"
#include "temporis/http/serve_ingest.h"
#include "temporis/http/serve_metrics.h"
#include "temporis/http/server.h"
#include "temporis/http/uri.h"

#define PING_HEADERS                                                                     \
	"X-Influxdb-Version: " INFLUX_COMPAT_VERSION "\r\n"                              \
	"X-Influxdb-Build: OSS\r\n"
#define SOURCE_HEADER "X-Temporis-Data-Source"
#define PRECISION_MAX 8

/*
 * The data source named by the query parameter param (or, when header is set and the
 * parameter absent, by that header) into name; false once answered 400 (absent or
 * malformed).
 */
static bool source_param(struct http_req *req, const char *param, const char *header,
			 char *name, size_t cap, size_t *len)
{
	const char *h = header ? http_header(req, header) : NULL;
	long n = req->query ? uri_query_param(req->query, param, name, cap) : -1;
	char detail[128];

	if (n == -1 && h != NULL) {
		n = strlen(h) < cap ? (long)strlen(h) : -2;   /* too long: no source's name */
		if (n >= 0)
			memcpy(name, h, (size_t)n + 1);
	}
	if (n > 0) {
		*len = (size_t)n;
		return true;
	}
	if (n == -2)
		snprintf(detail, sizeof(detail), "?%s= is not a data source name (malformed, or "
			 "longer than %d bytes).", param, URI_NAME_MAX);
	else if (header)
		snprintf(detail, sizeof(detail), "The data source is required: ?%s=SOURCE or the "
			 "%s header.", param, header);
	else
		snprintf(detail, sizeof(detail), "The data source is required: ?%s=SOURCE.", param);
	http_respond_error(req, 400, detail, NULL);
	return false;
}

/* Line protocol with the source in param: the body, its precision, then the records. */
static void influx_write(struct handler_env *env, struct http_req *req, const char *param)
{
	char source[URI_NAME_MAX + 1], precision[PRECISION_MAX];
	struct ingest_limits lim = ingest_limits_of(env);
	struct ingest_result res;
	enum lp_precision prec = LP_NS;
	size_t source_len, len;
	const char *body;
	int64_t now;
	long n;
	int rc;

	metrics_bytes_received(env->stats, req->body_len);
	if (!source_param(req, param, NULL, source, sizeof(source), &source_len))
		return;
	n = req->query ? uri_query_param(req->query, "precision", precision, sizeof(precision))
		       : -1;
	if (n == -2 || (n >= 0 && lp_precision_parse(precision, &prec) < 0)) {
		http_respond_error(req, 400, "precision must be one of ns, u (us), ms, s, m, h.",
				   NULL);
		return;
	}
	if (!ingest_body(env, req, &body, &len))
		return;
	if (wall_time_s(&now) < 0) {
		http_respond_error(req, 500, "Internal server error.", NULL);
		return;
	}
	rc = ingest_lp_parse(env->lp, body, len, prec, now, &lim, &res);
	ingest_submit(env, req, rc, &res, source, source_len);
}

void influx_write_v1(struct handler_env *env, struct http_req *req)
{
	influx_write(env, req, "db");
}

void influx_write_v2(struct handler_env *env, struct http_req *req)
{
	influx_write(env, req, "bucket");
}

void influx_ping(struct handler_env *env, struct http_req *req)
{
	(void)env;
	http_respond(req, 204, NULL, PING_HEADERS, NULL, 0);
}

void remote_write_on_head(struct handler_env *env, struct http_req *req)
{
	const char *enc = http_header(req, "Content-Encoding");

	(void)env;
	if (enc != NULL && enc[0] != '\0' && strcasecmp(enc, "snappy") != 0)
		http_respond_error(req, 415, "Unsupported Content-Encoding: remote_write bodies "
				   "are snappy-compressed protobuf.", NULL);
}

void remote_write_on_body(struct handler_env *env, struct http_req *req)
{
	char source[URI_NAME_MAX + 1];
	struct ingest_limits lim = ingest_limits_of(env);
	struct ingest_result res;
	size_t source_len;
	int rc;

	metrics_bytes_received(env->stats, req->body_len);
	if (!source_param(req, "data_source", SOURCE_HEADER, source, sizeof(source), &source_len))
		return;
	rc = ingest_prom_parse(env->prom, req->body, req->body_len, env->cfg->max_body_bytes, &lim,
			       &res);
	ingest_submit(env, req, rc, &res, source, source_len);
}
