/*
 * serve_prom.c - the Prometheus HTTP API (serve_prom.h). The worker reads the call and
 * its parameters as Prometheus does (times as float seconds or RFC 3339, durations as
 * "5m" or float seconds, repeated match[]), checks the source against the caller's
 * account, and asks the writer's "prom" op (admin_prom.h), whose answer is already
 * Prometheus's body. Errors found here have Prometheus's shape too:
 * {"status":"error","errorType":"bad_data","error":"..."}. Owns nothing past a request.
 */
#include "temporis/http/serve_prom.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "temporis/base/clock.h"
#include "temporis/base/jsonutil.h"
#include "temporis/data/promql.h"
#include "temporis/http/handler.h"
#include "temporis/http/server.h"
#include "temporis/http/uri.h"
#include "temporis/http/writer_call.h"

#define JSON_TYPE "application/json"
#define FORM_TYPE "application/x-www-form-urlencoded"
#define API_PREFIX "/prometheus/"
#define API_PATH "/api/v1/"
#define MATCH_PARAM "match[]"
#define MATCH_MAX 256                    /* as the writer's op takes them */
#define MS_PER_S 1000
#define MSG_MAX 512

#define BUILDINFO                                                                          \
	"{\"status\":\"success\",\"data\":{\"version\":\"" PROM_COMPAT_VERSION "\","        \
	"\"revision\":\"temporis\",\"branch\":\"\",\"buildUser\":\"\",\"buildDate\":\"\","   \
	"\"goVersion\":\"\"}}"

/* The calls answered here with nothing: this server keeps no metric metadata,
 * exemplars, recording or alerting rules. */
static const struct {
	const char *call;
	const char *body;
} empty_calls[] = {
	{ "metadata", "{\"status\":\"success\",\"data\":{}}" },
	{ "query_exemplars", "{\"status\":\"success\",\"data\":[]}" },
	{ "rules", "{\"status\":\"success\",\"data\":{\"groups\":[]}}" },
	{ "alerts", "{\"status\":\"success\",\"data\":{\"alerts\":[]}}" },
	{ "status/buildinfo", BUILDINFO },
};

/* A request's parameters: the form body's (POST) and the URL query's. */
struct params {
	const char *query;               /* the URL's, or NULL */
	char *form;                      /* the body's, NUL-terminated, or NULL */
	size_t cap;                      /* room any one decoded value needs */
};

static void prom_error(struct http_req *req, int status, const char *type, const char *msg)
{
	struct json_object *o = json_object_new_object();
	const char *text = NULL;
	size_t len = 0;

	if (o != NULL && ju_add_str(o, "status", "error") == 0 &&
	    ju_add_str(o, "errorType", type) == 0 && ju_add_str(o, "error", msg) == 0)
		text = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
	if (text != NULL)
		http_respond(req, status, JSON_TYPE, NULL, text, len);
	else
		http_respond_error(req, 500, "Internal server error.", NULL);
	json_object_put(o);
}

static void bad_data(struct http_req *req, const char *msg)
{
	prom_error(req, 400, "bad_data", msg);
}

/* Occurrence nth of key into a new string (*out; NULL when absent). 0, or -1 malformed. */
static int param_nth(const struct params *p, const char *key, size_t nth, char **out)
{
	size_t in_form = 0;
	long n = -1;
	char *buf = malloc(p->cap);

	*out = NULL;
	if (buf == NULL)
		return -1;
	/* the body's occurrences first, then the URL's, as Prometheus's ParseForm */
	if (p->form != NULL) {
		while (uri_query_param_nth(p->form, key, in_form, buf, p->cap) != -1 && in_form <= nth)
			in_form++;
		if (nth < in_form)
			n = uri_query_param_nth(p->form, key, nth, buf, p->cap);
	}
	if (n == -1 && p->query != NULL)
		n = uri_query_param_nth(p->query, key, nth - in_form, buf, p->cap);
	if (n < 0) {
		free(buf);
		return n == -1 ? 0 : -1;
	}
	*out = buf;
	return 0;
}

/* A single parameter; false once answered 400 (malformed, or absent when required). */
static bool param(struct http_req *req, const struct params *p, const char *key, bool required,
		  char **out)
{
	char msg[MSG_MAX];

	if (param_nth(p, key, 0, out) < 0) {
		snprintf(msg, sizeof(msg), "invalid parameter \"%s\": malformed percent-encoding",
			 key);
		bad_data(req, msg);
		return false;
	}
	if (*out == NULL && required) {
		snprintf(msg, sizeof(msg), "invalid parameter \"%s\": missing", key);
		bad_data(req, msg);
		return false;
	}
	return true;
}

/* A time parameter into op as key_ms (absent: dflt_ms, or nothing when dflt is NULL). */
static bool time_param(struct http_req *req, const struct params *p, const char *name,
		       bool required, const int64_t *dflt_ms, struct json_object *op,
		       const char *key_ms)
{
	char *text, msg[MSG_MAX];
	int64_t ms;
	bool ok;

	if (!param(req, p, name, required, &text))
		return false;
	if (text == NULL) {
		if (dflt_ms == NULL)
			return true;
		ms = *dflt_ms;
	} else if (promql_parse_time(text, strlen(text), &ms) < 0) {
		snprintf(msg, sizeof(msg), "invalid parameter \"%s\": cannot parse \"%.200s\" to a "
			 "valid timestamp", name, text);
		free(text);
		bad_data(req, msg);
		return false;
	}
	free(text);
	ok = ju_add(op, key_ms, json_object_new_int64(ms)) == 0;
	if (!ok)
		http_respond_error(req, 500, "Internal server error.", NULL);
	return ok;
}

static bool step_param(struct http_req *req, const struct params *p, struct json_object *op)
{
	char *text, msg[MSG_MAX];
	int64_t ms;

	if (!param(req, p, "step", true, &text))
		return false;
	if (promql_parse_duration(text, strlen(text), &ms) < 0) {
		snprintf(msg, sizeof(msg), "invalid parameter \"step\": cannot parse \"%.200s\" to a "
			 "valid duration", text);
		free(text);
		bad_data(req, msg);
		return false;
	}
	free(text);
	if (ju_add(op, "step_ms", json_object_new_int64(ms)) < 0) {
		http_respond_error(req, 500, "Internal server error.", NULL);
		return false;
	}
	return true;
}

/* A string parameter into op under the same name. */
static bool text_param(struct http_req *req, const struct params *p, const char *name,
		       struct json_object *op)
{
	char *text;
	int rc;

	if (!param(req, p, name, true, &text))
		return false;
	rc = ju_add_str(op, name, text);
	free(text);
	if (rc < 0)
		http_respond_error(req, 500, "Internal server error.", NULL);
	return rc == 0;
}

/* Every match[] into op's "match" array; at least one when required. */
static bool match_params(struct http_req *req, const struct params *p, bool required,
			 struct json_object *op)
{
	struct json_object *arr = json_object_new_array();
	char *text;
	size_t n = 0;

	if (arr == NULL || ju_add(op, "match", arr) < 0) {
		http_respond_error(req, 500, "Internal server error.", NULL);
		return false;
	}
	for (;;) {
		if (param_nth(p, MATCH_PARAM, n, &text) < 0) {
			bad_data(req, "invalid parameter \"match[]\": malformed percent-encoding");
			return false;
		}
		if (text == NULL)
			break;
		if (++n > MATCH_MAX) {
			free(text);
			bad_data(req, "too many match[] selectors: at most 256");
			return false;
		}
		if (json_object_array_add(arr, json_object_new_string(text)) < 0) {
			free(text);
			http_respond_error(req, 500, "Internal server error.", NULL);
			return false;
		}
		free(text);
	}
	if (n == 0 && required) {
		bad_data(req, "no match[] parameter provided");
		return false;
	}
	return true;
}

/* The call's parameters into op; false once answered. */
static bool call_params(struct http_req *req, const struct params *p, const char *call,
			struct json_object *op)
{
	int64_t now_s, now_ms;

	if (strcmp(call, "query") == 0) {
		if (wall_time_s(&now_s) < 0) {
			http_respond_error(req, 500, "Internal server error.", NULL);
			return false;
		}
		now_ms = now_s * MS_PER_S;
		return text_param(req, p, "query", op) &&
		       time_param(req, p, "time", false, &now_ms, op, "time_ms");
	}
	if (strcmp(call, "query_range") == 0)
		return text_param(req, p, "query", op) &&
		       time_param(req, p, "start", true, NULL, op, "start_ms") &&
		       time_param(req, p, "end", true, NULL, op, "end_ms") && step_param(req, p, op);
	return match_params(req, p, strcmp(call, "series") == 0, op) &&
	       time_param(req, p, "start", false, NULL, op, "start_ms") &&
	       time_param(req, p, "end", false, NULL, op, "end_ms");
}

/* The call named by the path's rest: query, query_range, series, labels, or
 * label_values with the label into *label (decoded). NULL when it is none of them. */
static const char *call_of(const char *rest, char *label, size_t cap)
{
	static const char *const plain[] = { "query", "query_range", "series", "labels" };
	const char *end;

	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		if (strcmp(rest, plain[i]) == 0)
			return plain[i];
	if (strncmp(rest, "label/", strlen("label/")) != 0)
		return NULL;
	rest += strlen("label/");
	end = strchr(rest, '/');
	if (end == NULL || end == rest || strcmp(end, "/values") != 0 ||
	    uri_decode(rest, (size_t)(end - rest), false, label, cap) <= 0)
		return NULL;
	return "label_values";
}

static bool is_form(const struct http_req *req)
{
	const char *type = http_header(req, "Content-Type");

	return type != NULL && strncasecmp(type, FORM_TYPE, strlen(FORM_TYPE)) == 0;
}

void prom_api(struct handler_env *env, struct http_req *req)
{
	struct req_ctx *ctx = req->user;
	struct params p = { .query = req->query };
	const char *rest = strstr(req->path + strlen(API_PREFIX), API_PATH), *call;
	struct json_object *op;
	char label[URI_NAME_MAX + 1], msg[MSG_MAX];

	if (rest == NULL) {
		prom_error(req, 404, "not_found", "Not found.");
		return;
	}
	rest += strlen(API_PATH);
	for (size_t i = 0; i < sizeof(empty_calls) / sizeof(empty_calls[0]); i++) {
		if (strcmp(rest, empty_calls[i].call) == 0) {
			http_respond(req, 200, JSON_TYPE, NULL, empty_calls[i].body,
				     strlen(empty_calls[i].body));
			return;
		}
	}
	call = call_of(rest, label, sizeof(label));
	if (call == NULL) {
		snprintf(msg, sizeof(msg), "unsupported API call \"%.200s\": this server answers "
			 "query, query_range, series, labels, label/NAME/values and "
			 "status/buildinfo", rest);
		prom_error(req, 404, "not_found", msg);
		return;
	}
	if (handler_source(env, ctx, ctx->name, ctx->name_len) == NULL) {
		prom_error(req, 404, "not_found", "Data source not found.");
		return;
	}
	/* a decoded value is never longer than its encoded text */
	p.cap = (req->query ? strlen(req->query) : 0) + 1;
	if (req->method == HTTP_POST && is_form(req) && req->body_len > 0) {
		p.form = malloc(req->body_len + 1);
		if (p.form == NULL) {
			http_respond_error(req, 500, "Internal server error.", NULL);
			return;
		}
		memcpy(p.form, req->body, req->body_len);
		p.form[req->body_len] = '\0';
		p.cap += req->body_len;
	}
	op = json_object_new_object();
	if (op == NULL || ju_add_str(op, "op", "prom") < 0 ||
	    ju_add_str(op, "account", ctx->account_name) < 0 ||
	    ju_add_strn(op, "source", ctx->name, ctx->name_len) < 0 ||
	    ju_add_str(op, "call", call) < 0 ||
	    (strcmp(call, "label_values") == 0 && ju_add_str(op, "label", label) < 0)) {
		json_object_put(op);
		free(p.form);
		http_respond_error(req, 500, "Internal server error.", NULL);
		return;
	}
	if (!call_params(req, &p, call, op)) {
		json_object_put(op);
		free(p.form);
		return;
	}
	free(p.form);
	writer_ask_body(env, req, op, JSON_TYPE);
}
