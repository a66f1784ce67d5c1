/*
 * proctitle.c - process titles shown by ps: "temporisd: writer", "temporisd: worker 2".
 *
 * Linux shows /proc/PID/cmdline, the argv area. To write a longer title than the
 * original command line, the environment strings that follow argv in memory are
 * copied to the heap first and the whole contiguous area is reused (as nginx's
 * ngx_setproctitle.c and PostgreSQL's ps_status.c do). The short name (comm) is
 * set with PR_SET_NAME as well.
 */
#include "temporis/base/proctitle.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

extern char **environ;

static char *title_area;
static size_t title_len;

void proctitle_init(int argc, char **argv)
{
	char *end;
	size_t n = 0;
	char **env_copy;

	if (argc <= 0 || argv == NULL || argv[0] == NULL)
		return;
	end = argv[0] + strlen(argv[0]) + 1;
	for (int i = 1; i < argc; i++)
		if (argv[i] == end)
			end = argv[i] + strlen(argv[i]) + 1;
	for (; environ != NULL && environ[n] != NULL; n++)
		if (environ[n] == end)
			end = environ[n] + strlen(environ[n]) + 1;

	env_copy = calloc(n + 1, sizeof(*env_copy));
	if (env_copy == NULL)
		return;  /* keep the original title: cosmetic only */
	for (size_t i = 0; i < n; i++) {
		env_copy[i] = strdup(environ[i]);
		if (env_copy[i] == NULL) {
			while (i-- > 0)
				free(env_copy[i]);
			free(env_copy);
			return;
		}
	}
	environ = env_copy;
	title_area = argv[0];
	title_len = (size_t)(end - argv[0]);
	for (int i = 1; i < argc; i++)
		argv[i] = NULL;
}

void proctitle_set(const char *fmt, ...)
{
	char title[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(title, sizeof(title), fmt, ap);
	va_end(ap);
	/* comm is 15 bytes: keep the role, which follows "temporisd: " */
	const char *comm = strncmp(title, "temporisd: ", 11) == 0 ? title + 11 : title;
	(void)prctl(PR_SET_NAME, comm, 0, 0, 0);  /* cosmetic: failure changes nothing */
	if (title_area == NULL || title_len < 2)
		return;
	memset(title_area, 0, title_len);
	snprintf(title_area, title_len, "%s", title);
}
