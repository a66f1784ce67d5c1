/*
 * log.h - one-line-per-event logging to stderr, tagged with level and process role.
 *
 * Every process sets its role once after fork (log_set_role); lines look like
 *   2026-11-25T03:14:15.123Z info  [worker 2] listening on 127.0.0.1:8080
 * Never log a token, a request body, or (at info level) a tenant or source name.
 */
#ifndef TEMPORIS_LOG_H
#define TEMPORIS_LOG_H

#include <stdarg.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Parse "debug", "info", "warn", "error"; returns -1 if the word is none of them. */
int log_level_parse(const char *word);
const char *log_level_name(enum log_level level);

void log_set_level(enum log_level level);
/* role is copied; e.g. "master", "writer", "worker 2", "ctl". */
void log_set_role(const char *role);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
