/*
 * promql_json.c - the bodies of Prometheus's HTTP API (promql_int.h): the success
 * and error envelopes, metrics as label objects, sample values written as Go's
 * strconv.FormatFloat(v, 'f', -1, 64) writes them, timestamps as seconds.
 */
#include "promql_int.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "temporis/base/jsonutil.h"

#define DIGITS_MAX 17         /* a double never needs more significant digits */
#define E_TEXT_MAX 40
#define TIME_TEXT_MAX 32
#define MS_PER_S 1000

/* Shortest digits that read back to v (as Go's shortest formatting finds them) and
 * the decimal exponent of the first one. */
static size_t shortest_digits(double v, char *digits, int *exp10)
{
	char e[E_TEXT_MAX];
	size_t nd = 0;
	char *p;

	for (int prec = 0; prec < DIGITS_MAX; prec++) {
		snprintf(e, sizeof(e), "%.*e", prec, v);
		if (strtod(e, NULL) == v)
			break;
	}
	for (p = e; *p != 'e'; p++)
		if (*p >= '0' && *p <= '9')
			digits[nd++] = *p;
	*exp10 = atoi(p + 1);
	return nd;
}

void pq_format_float(char *dst, size_t cap, double v)
{
	char digits[E_TEXT_MAX];
	size_t nd, len = 0;
	int exp10, point;

	if (isnan(v)) {
		snprintf(dst, cap, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(dst, cap, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	if (v == 0) {
		snprintf(dst, cap, signbit(v) ? "-0" : "0");
		return;
	}
	nd = shortest_digits(fabs(v), digits, &exp10);
	point = exp10 + 1;      /* digits before the decimal point */
	if (cap < PQ_FLOAT_MAX) {
		snprintf(dst, cap, "%.17g", v);
		return;
	}
	if (v < 0)
		dst[len++] = '-';
	if (point <= 0) {
		dst[len++] = '0';
		dst[len++] = '.';
		for (int i = 0; i < -point; i++)
			dst[len++] = '0';
		memcpy(dst + len, digits, nd);
		len += nd;
	} else if ((size_t)point >= nd) {
		memcpy(dst + len, digits, nd);
		len += nd;
		for (size_t i = nd; i < (size_t)point; i++)
			dst[len++] = '0';
	} else {
		memcpy(dst + len, digits, (size_t)point);
		len += (size_t)point;
		dst[len++] = '.';
		memcpy(dst + len, digits + point, nd - (size_t)point);
		len += nd - (size_t)point;
	}
	dst[len] = '\0';
}

/* Seconds with the milliseconds as up to 3 decimals: 1718841600, 1718841600.5. */
struct json_object *pq_json_time(int64_t ms)
{
	char text[TIME_TEXT_MAX];
	uint64_t abs_ms = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
	unsigned frac = (unsigned)(abs_ms % MS_PER_S);
	int len = snprintf(text, sizeof(text), "%s%" PRIu64, ms < 0 ? "-" : "", abs_ms / MS_PER_S);

	if (frac != 0) {
		len += snprintf(text + len, sizeof(text) - (size_t)len, ".%03u", frac);
		while (text[len - 1] == '0')
			text[--len] = '\0';
	}
	return json_object_new_double_s((double)ms / MS_PER_S, text);
}

int pq_json_append(struct json_object *arr, struct json_object *v)
{
	if (v == NULL)
		return -1;
	if (json_object_array_add(arr, v) != 0) {
		json_object_put(v);
		return -1;
	}
	return 0;
}

/* [seconds, "value"] */
struct json_object *pq_json_point(int64_t ms, double v)
{
	struct json_object *a = json_object_new_array_ext(2);
	char text[PQ_FLOAT_MAX];

	if (a == NULL)
		return NULL;
	pq_format_float(text, sizeof(text), v);
	if (pq_json_append(a, pq_json_time(ms)) < 0 ||
	    pq_json_append(a, json_object_new_string(text)) < 0) {
		json_object_put(a);
		return NULL;
	}
	return a;
}

struct json_object *pq_json_metric(const struct pq_lset *ls)
{
	struct json_object *o = json_object_new_object();

	if (o == NULL)
		return NULL;
	for (size_t i = 0; i < ls->n; i++) {
		if (ju_add_strn(o, ls->l[i].name, ls->l[i].value, ls->l[i].value_len) < 0) {
			json_object_put(o);
			return NULL;
		}
	}
	return o;
}

struct json_object *pq_json_success(struct json_object *data, int *http_status)
{
	struct json_object *o = data == NULL ? NULL : json_object_new_object();

	if (o == NULL || ju_add_str(o, "status", "success") < 0) {
		json_object_put(data);
		json_object_put(o);
		return NULL;
	}
	if (ju_add(o, "data", data) < 0) {      /* takes data even when it fails */
		json_object_put(o);
		return NULL;
	}
	*http_status = PROMQL_OK;
	return o;
}

static const char *error_type(enum promql_status status)
{
	switch (status) {
	case PROMQL_BAD_DATA:
		return "bad_data";
	case PROMQL_EXECUTION:
		return "execution";
	default:
		return "internal";
	}
}

struct json_object *pq_json_error(const struct pq_err *e, int *http_status)
{
	struct json_object *o = json_object_new_object();
	enum promql_status status = e->status == PROMQL_OK ? PROMQL_INTERNAL : e->status;

	if (o == NULL || ju_add_str(o, "status", "error") < 0 ||
	    ju_add_str(o, "errorType", error_type(status)) < 0 ||
	    ju_add_str(o, "error", e->msg) < 0) {
		json_object_put(o);
		return NULL;
	}
	*http_status = status;
	return o;
}
