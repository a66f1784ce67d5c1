/*
 * fds.h - the descriptors the master creates before forking and every child inherits.
 */
#ifndef TEMPORIS_DAEMON_FDS_H
#define TEMPORIS_DAEMON_FDS_H

#include "temporis/base/config.h"

struct server_fds {
	int listen_fd;                        /* public HTTP socket, listening */
	int admin_fd;                         /* admin Unix socket, listening */
	int writer_wake;                      /* eventfd: workers -> writer, "entries published" */
	int worker_wake[CFG_WORKERS_MAX];     /* eventfd per lane: writer -> worker, "committed" */
	int master_pipe;                      /* read end; EOF when the master is gone */
};

#endif
