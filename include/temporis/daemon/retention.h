/*
 * retention.h - the writer's side of per-source retention: the cutoff of each
 * source (now - its retention), handed to the store that every read applies, and a
 * thread that deletes the expired partitions from disk.
 *
 * One instance per writer process (the writer's store and catalog), started after
 * the catalog is loaded and before the admin socket serves, stopped before either
 * is closed.
 */
#ifndef TEMPORIS_DAEMON_RETENTION_H
#define TEMPORIS_DAEMON_RETENTION_H

#include "temporis/data/catalog.h"
#include "temporis/data/store.h"

/* Every partition wholly expired is deleted this often (and right after a set). */
#define RETENTION_PASS_MS 60000

/* Sets every source's cutoff, then starts the deleting thread. 0 or -1. */
int retention_start(struct store *st, struct catalog *c);
/* Every source's cutoff from the catalog and the clock (the writer: once a second). */
void retention_refresh(void);
/* A retention changed: cutoffs now, and a deleting pass soon. Any thread. */
void retention_kick(void);
/* Waits for a pass in progress (a compaction is not interrupted), then stops. */
void retention_stop(void);

#endif
