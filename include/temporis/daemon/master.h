/*
 * master.h - the supervising process and what it hands to its children.
 *
 * The master creates every shared resource before forking (listening socket,
 * admin socket, shared-memory region, wake-up eventfds), forks one writer and
 * cfg->workers workers, respawns them when they die, and handles signals.
 */
#ifndef TEMPORIS_MASTER_H
#define TEMPORIS_MASTER_H

#include "temporis/base/config.h"
#include "temporis/ipc/shm.h"

struct server_fds {
	int listen_fd;                        /* public HTTP socket, listening */
	int admin_fd;                         /* admin Unix socket, listening */
	int writer_wake;                      /* eventfd: workers -> writer, "entries published" */
	int worker_wake[CFG_WORKERS_MAX];     /* eventfd per lane: writer -> worker, "committed" */
	int master_pipe;                      /* read end; EOF when the master is gone */
};

/* Run the server until SIGTERM/SIGINT; returns the process exit status. */
int master_run(struct cfg *cfg, const char *cfg_path);

#endif
