/*
 * admin.h - the writer's service side of the admin Unix socket.
 *
 * temporisctl and the workers (read and management requests) connect here; each
 * connection runs on its own thread in the writer, the only process that holds
 * RocksDB. Catalog changes are published to shared memory before the reply, so
 * they are in force for the very next request on every worker.
 */
#ifndef TEMPORIS_ADMIN_H
#define TEMPORIS_ADMIN_H

#include "temporis/data/catalog.h"
#include "temporis/base/config.h"
#include "temporis/ipc/shm.h"
#include "temporis/data/store.h"

struct json_object;

struct admin_ctx {
	struct store *store;
	struct catalog *catalog;
	struct shm *shm;
	const struct cfg *cfg;
};

/* Serve listen_fd (already listening) on background threads until admin_stop. */
int admin_start(struct admin_ctx *ctx, int listen_fd);
/* Stop accepting and wait for connection threads to finish. */
void admin_stop(void);

/* Run one request; returns a new reply object (never NULL unless out of memory). */
struct json_object *admin_execute(struct admin_ctx *ctx, struct json_object *req);

/* Encode the catalog and publish it to shared memory. 0 or -1. */
int admin_publish_catalog(struct admin_ctx *ctx);

/*
 * Create (or take over) the admin socket at path: mode 0600, refusing a path owned
 * by another user. Returns the listening fd or -1 with a message in err.
 */
int admin_listen(const char *path, char *err, size_t errlen);

#endif
