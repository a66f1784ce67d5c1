/*
 * err.h - error text for the caller: every function that can fail with a message
 * takes (char *err, size_t errlen) and fills it with err_set.
 */
#ifndef TEMPORIS_BASE_ERR_H
#define TEMPORIS_BASE_ERR_H

#include <stddef.h>

/* printf into err (NUL-terminated, truncated to errlen); a NULL or empty err is ignored. */
void err_set(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
