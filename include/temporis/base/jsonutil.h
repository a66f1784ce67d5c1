/*
 * jsonutil.h - the json-c helpers every module shares: building objects where a
 * failed constructor or add is one error path, reading typed members, parsing a
 * buffer strictly and whole, and doubles written so they read back bit for bit.
 */
#ifndef TEMPORIS_BASE_JSONUTIL_H
#define TEMPORIS_BASE_JSONUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "temporis/base/buf.h"

/* Add val under key, taking ownership of val even on failure (NULL = a failed
 * constructor). 0 or -1. */
int ju_add(struct json_object *o, const char *key, struct json_object *val);
int ju_add_str(struct json_object *o, const char *key, const char *s);
int ju_add_strn(struct json_object *o, const char *key, const char *s, size_t n);
int ju_add_int(struct json_object *o, const char *key, int64_t v);
int ju_add_bool(struct json_object *o, const char *key, bool v);

/* The member's value if it has that type, else NULL. */
const char *ju_str(struct json_object *o, const char *key);
struct json_object *ju_arr(struct json_object *o, const char *key);
/* The integer member (within int64), or dflt when absent or not an integer. */
int64_t ju_int_or(struct json_object *o, const char *key, int64_t dflt);

/*
 * Parse exactly text[0..len) as one JSON value in json-c's strict mode (no
 * trailing bytes); NULL if it is not valid JSON or memory ran out.
 */
struct json_object *ju_parse(const char *text, size_t len);

/*
 * A double as the shortest decimal text that reads back to the same bits, kept
 * recognisably a double ("42.0", "-0.0"), so a reader never mistakes it for an int.
 */
struct json_object *ju_double(double d);
/* JSON text written straight into a buffer, for answers too large to build as objects. */
#define JU_DOUBLE_TEXT_MAX 40
/* ju_double's text into out (JU_DOUBLE_TEXT_MAX bytes, NUL-terminated); its length.
 * Every format that writes numbers (the records answer, the export) uses this one. A
 * non-finite double, which JSON cannot hold (nor is one ever stored), is "null". */
size_t ju_double_text(double d, char *out);
/* Append s[0..len) as a JSON string literal (quotes and escapes included). 0, or -1
 * when memory runs out (out->failed is then set). */
int ju_write_string(struct buf *out, const char *s, size_t len);

#endif
