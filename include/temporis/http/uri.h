/*
 * uri.h - the request-target's pieces as the API reads them: percent-decoding, path
 * patterns with one captured {name} segment, and query parameters (uri.c). Pure
 * functions over the caller's strings.
 */
#ifndef TEMPORIS_HTTP_URI_H
#define TEMPORIS_HTTP_URI_H

#include <stdbool.h>
#include <stddef.h>

#define URI_NAME_MAX 255                 /* longest {name}, decoded */

/*
 * Percent-decode n bytes of s into out (cap bytes, NUL-terminated); '+' is a space
 * only when plus_is_space (queries). The decoded length, or -1 if malformed, if it
 * decodes a NUL (the result is used as a C string), or if it does not fit.
 */
long uri_decode(const char *s, size_t n, bool plus_is_space, char *out, size_t cap);

/*
 * Does path (not decoded, without the query) match pattern? A pattern is literal text
 * in which "{name}" stands for one non-empty segment (up to the next '/') and a final
 * '*' for any rest, the empty one too. The segment is percent-decoded ('+' stays '+')
 * into name (cap bytes) and *name_len; one that does not decode or fit does not match.
 * *name_len is 0 when the pattern has no {name}.
 */
bool uri_match(const char *pattern, const char *path, char *name, size_t cap, size_t *name_len);

/*
 * Find key in a query string ("a=1&b=2"; the first occurrence wins) and
 * percent-decode its value into buf. Returns the decoded length, -1 if absent,
 * -2 if malformed or longer than cap-1.
 */
long uri_query_param(const char *query, const char *key, char *buf, size_t cap);
/* The same for the occurrence nth (0 is the first) of a key that may repeat
 * ("match[]=a&match[]=b"). */
long uri_query_param_nth(const char *query, const char *key, size_t nth, char *buf, size_t cap);

#endif
