/*
 * admin_ops.h - the operations of the admin socket, run in the writer, the only
 * process that holds RocksDB: accounts, tokens and data sources, status, backup, and
 * the records, series and Prometheus API reads the workers forward. Catalog changes are published to
 * shared memory before the reply, so they are in force for the very next request on
 * every worker.
 */
#ifndef TEMPORIS_DAEMON_ADMIN_OPS_H
#define TEMPORIS_DAEMON_ADMIN_OPS_H

#include "temporis/base/config.h"
#include "temporis/data/catalog.h"
#include "temporis/data/store.h"
#include "temporis/ipc/shm.h"

struct json_object;

/* What the ops work on: the writer's store, catalog and shared region (all borrowed). */
struct admin_ctx {
	struct store *store;
	struct catalog *catalog;
	struct shm *shm;
	const struct cfg *cfg;
};

/* Run one request; returns a new reply object (never NULL unless out of memory). */
struct json_object *admin_execute(struct admin_ctx *ctx, struct json_object *req);

/* Encode the catalog and publish it to shared memory. 0 or -1. */
int admin_publish_catalog(struct admin_ctx *ctx);

#endif
