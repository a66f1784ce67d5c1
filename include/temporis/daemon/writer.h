/*
 * writer.h - the writer process: the only owner of RocksDB.
 */
#ifndef TEMPORIS_WRITER_H
#define TEMPORIS_WRITER_H

#include "temporis/base/config.h"
#include "temporis/daemon/fds.h"
#include "temporis/ipc/shm.h"

/* Runs in the forked child; never returns (exits 0 after a clean drain). */
void writer_main(const struct cfg *cfg, struct shm *shm, const struct server_fds *fds)
	__attribute__((noreturn));

#endif
