/*
 * fdcount.c - open and allowed file descriptors of this process (fdcount.h).
 */
#include "temporis/base/fdcount.h"

#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <sys/resource.h>

#define SELF_FD_DIR "/proc/self/fd"

int fd_count_self(uint64_t *out)
{
	DIR *d = opendir(SELF_FD_DIR);
	struct dirent *e;
	uint64_t n = 0;
	int saved;

	if (d == NULL)
		return -1;
	errno = 0;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	saved = errno;
	if (closedir(d) != 0 || saved != 0) {
		errno = saved ? saved : errno;
		return -1;
	}
	/* The directory's own descriptor was open while it was read. */
	*out = n > 0 ? n - 1 : 0;
	return 0;
}

int fd_limit_self(uint64_t *out)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -1;
	*out = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
	return 0;
}
