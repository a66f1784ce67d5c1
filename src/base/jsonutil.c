/*
 * jsonutil.c - json-c helpers shared by every module (jsonutil.h). Owns nothing:
 * objects returned are the caller's (json_object_put).
 */
#include "temporis/base/jsonutil.h"

#include <limits.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOUBLE_DIGITS_MIN 15 /* %.15g is exact for most decimal input */
#define DOUBLE_DIGITS_MAX 17 /* %.17g always round-trips */
#define HEX_DIGITS "0123456789abcdef"
#define ESCAPE_MAX 6          /* bytes of the longest escape, \u00XX */
#define JSON_CONTROL_END 0x20 /* JSON strings must escape the bytes below this */
#define ASCII_DEL 0x7f        /* DEL, escaped as well */
#define NIBBLE_BITS 4
#define NIBBLE_MASK 0xf

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
size_t ju_double_text(double d, char *out)
{
	size_t n;

	if (!isfinite(d)) {
		memcpy(out, "null", sizeof("null"));
		return sizeof("null") - 1;
	}
	for (int prec = DOUBLE_DIGITS_MIN; prec <= DOUBLE_DIGITS_MAX; prec++) {
		snprintf(out, JU_DOUBLE_TEXT_MAX, "%.*g", prec, d);
		if (strtod(out, NULL) == d)
			break;
	}
	n = strlen(out);
	if (strpbrk(out, ".e") == NULL) {
		memcpy(out + n, ".0", sizeof(".0"));
		n += sizeof(".0") - 1;
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

int ju_write_string(struct buf *out, const char *s, size_t len)
{
	char *o;

	/* worst case every byte becomes \u00XX, plus the quotes */
	if (out->failed || len > (SIZE_MAX - 2) / ESCAPE_MAX ||
	    buf_reserve(out, len * ESCAPE_MAX + 2, 0) < 0) {
		out->failed = true;
		return -1;
	}
	o = out->data + out->len;
	*o++ = '"';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			*o++ = '\\';
			*o++ = (char)c;
		} else if (c < JSON_CONTROL_END || c == ASCII_DEL) {
			*o++ = '\\';
			*o++ = 'u';
			*o++ = '0';
			*o++ = '0';
			*o++ = HEX_DIGITS[c >> NIBBLE_BITS];
			*o++ = HEX_DIGITS[c & NIBBLE_MASK];
		} else {
			*o++ = (char)c;
		}
	}
	*o++ = '"';
	out->len = (size_t)(o - out->data);
	return 0;
}
