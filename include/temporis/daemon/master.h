/*
 * master.h - the supervising process and what it hands to its children.
 *
 * The master creates every shared resource before forking (listening socket,
 * admin socket, shared-memory region, wake-up eventfds), forks one writer and
 * cfg->workers workers, respawns them when they die, and handles signals.
 * What the children inherit is struct server_fds (fds.h).
 */
#ifndef TEMPORIS_MASTER_H
#define TEMPORIS_MASTER_H

#include "temporis/base/config.h"


/* Run the server until SIGTERM/SIGINT; returns the process exit status. */
int master_run(struct cfg *cfg, const char *cfg_path);

#endif
