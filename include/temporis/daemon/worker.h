/*
 * worker.h - an HTTP worker process (worker.c): its event loop, its wake-ups from the
 * writer and the master, and its drain at shutdown. What its request handlers share
 * is http/handler.h; the route table is http/routes.h.
 */
#ifndef TEMPORIS_DAEMON_WORKER_H
#define TEMPORIS_DAEMON_WORKER_H

#include "temporis/base/config.h"
#include "temporis/daemon/fds.h"
#include "temporis/ipc/shm.h"

/* Runs in the forked child for worker slot index; never returns. */
void worker_main(const struct cfg *cfg, struct shm *shm, const struct server_fds *fds,
		 unsigned index) __attribute__((noreturn));

#endif
