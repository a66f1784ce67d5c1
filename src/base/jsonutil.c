/*
 * jsonutil.c - json-c helpers shared by every module (jsonutil.h). Owns nothing:
 * objects returned are the caller's (json_object_put).
 */
#include "temporis/base/jsonutil.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOUBLE_DIGITS_MIN 15 /* %.15g is exact for most decimal input */
#define DOUBLE_DIGITS_MAX 17 /* %.17g always round-trips */

int ju_add(struct json_object *o, const char *key, struct json_object *val)
{
	if (val == NULL)
		return -1;
	if (o == NULL || json_object_object_add(o, key, val) != 0) {
		json_object_put(val);
		return -1;
	}
	return 0;
}

int ju_add_str(struct json_object *o, const char *key, const char *s)
{
	return ju_add(o, key, json_object_new_string(s));
}

int ju_add_strn(struct json_object *o, const char *key, const char *s, size_t n)
{
	if (n > INT_MAX)
		return -1;
	return ju_add(o, key, json_object_new_string_len(s, (int)n));
}

int ju_add_int(struct json_object *o, const char *key, int64_t v)
{
	return ju_add(o, key, json_object_new_int64(v));
}

int ju_add_bool(struct json_object *o, const char *key, bool v)
{
	return ju_add(o, key, json_object_new_boolean(v));
}

const char *ju_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

struct json_object *ju_arr(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_array))
		return NULL;
	return v;
}

int64_t ju_int_or(struct json_object *o, const char *key, int64_t dflt)
{
	struct json_object *v;
	int64_t x;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return dflt;
	x = json_object_get_int64(v);
	/* json-c clamps integers above INT64_MAX: those are out of range. */
	if (x == INT64_MAX && json_object_get_uint64(v) > (uint64_t)INT64_MAX)
		return dflt;
	return x;
}

struct json_object *ju_parse(const char *text, size_t len)
{
	struct json_tokener *tok;
	struct json_object *obj;

	if (len == 0 || len > INT_MAX || (tok = json_tokener_new()) == NULL)
		return NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	obj = json_tokener_parse_ex(tok, text, (int)len);
	if (obj != NULL && (json_tokener_get_error(tok) != json_tokener_success ||
			    json_tokener_get_parse_end(tok) != len)) {
		json_object_put(obj);
		obj = NULL;
	}
	json_tokener_free(tok);
	return obj;
}

/*
 * The fewest significant digits that read back as d: any decimal of at most 15
 * digits survives a trip through a double (DBL_DIG), so %.15g already is the shortest
 * when one that short exists, and %.17g always reads back.
 */
size_t ju_double_text(double d, char text[JU_DOUBLE_TEXT_MAX])
{
	size_t n;

	for (int prec = DOUBLE_DIGITS_MIN; prec <= DOUBLE_DIGITS_MAX; prec++) {
		snprintf(text, JU_DOUBLE_TEXT_MAX, "%.*g", prec, d);
		if (strtod(text, NULL) == d)
			break;
	}
	n = strlen(text);
	if (isfinite(d) && strpbrk(text, ".e") == NULL) {
		memcpy(text + n, ".0", sizeof(".0"));
		n += strlen(".0");
	}
	return n;
}

struct json_object *ju_double(double d)
{
	char text[JU_DOUBLE_TEXT_MAX];

	if (!isfinite(d))
		return json_object_new_double(d);
	ju_double_text(d, text);
	return json_object_new_double_s(d, text);
}
