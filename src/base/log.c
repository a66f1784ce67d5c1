/*
 * log.c - one line per event on stderr: UTC time, level, process role, message.
 *
 * Lines are formatted into one buffer and written with a single write(2), so lines
 * from the master, the writer and the workers never interleave mid-line.
 */
#include "temporis/base/log.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048
#define LOG_ROLE_MAX 32

static enum log_level log_threshold = LOG_INFO;
static char log_role[LOG_ROLE_MAX] = "temporisd";

static const char *const level_names[] = { "debug", "info", "warn", "error" };

int log_level_parse(const char *word)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcmp(word, level_names[i]) == 0)
			return (int)i;
	return -1;
}

const char *log_level_name(enum log_level level)
{
	if ((unsigned)level >= sizeof(level_names) / sizeof(level_names[0]))
		return "?";
	return level_names[level];
}

void log_set_level(enum log_level level)
{
	log_threshold = level;
}

void log_set_role(const char *role)
{
	snprintf(log_role, sizeof(log_role), "%s", role);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	struct timeval tv;
	struct tm tm;
	size_t n;
	int rc;
	va_list ap;

	if (level < log_threshold)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	rc = snprintf(line + n, sizeof(line) - n, ".%03ldZ %-5s [%s] ", (long)(tv.tv_usec / 1000),
		      log_level_name(level), log_role);
	if (rc > 0)
		n += (size_t)rc;
	if (n < sizeof(line)) {
		va_start(ap, fmt);
		rc = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		va_end(ap);
		if (rc > 0)
			n += (size_t)rc;
	}
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* A failed log write has nowhere to be reported. */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}
