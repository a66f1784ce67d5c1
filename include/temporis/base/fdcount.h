/*
 * fdcount.h - the file descriptors this process has open, and may open (fdcount.c).
 * Each of the server's processes counts its own and publishes the figure: they are not
 * dumpable, so none may look into another's /proc/PID/fd.
 */
#ifndef TEMPORIS_BASE_FDCOUNT_H
#define TEMPORIS_BASE_FDCOUNT_H

#include <stdint.h>

/* Descriptors open in this process now (from /proc/self/fd). 0, or -1 with errno. */
int fd_count_self(uint64_t *out);
/* This process's soft RLIMIT_NOFILE. 0, or -1 with errno. */
int fd_limit_self(uint64_t *out);

#endif
