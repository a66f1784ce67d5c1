/*
 * store_control.h - private to the store: the control file (store_control.c), a
 * record kept outside RocksDB of the MANIFEST this server last saw, so that a
 * damaged or replaced MANIFEST is refused before RocksDB opens it (and deletes, as
 * obsolete, every file the damaged one no longer lists).
 */
#ifndef TEMPORIS_STORE_CONTROL_H
#define TEMPORIS_STORE_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#define STORE_CONTROL_FILE "temporis.control"

/* What the control file holds: the MANIFEST's name, a length of it already seen,
 * and the CRC-32 of its bytes up to that length (RocksDB only appends to it). */
struct store_control {
	char manifest[64];
	uint64_t len;
	uint32_t crc;
};

/*
 * Before RocksDB opens dir: the MANIFEST the control file names must still hold the
 * bytes recorded. 0 (also when there is no control file yet, or RocksDB has moved on
 * to a newer MANIFEST and removed the recorded one), or -1 with err naming the file
 * and what to do.
 */
int store_control_check(const char *dir, char *err, size_t errlen);

/*
 * Record the current MANIFEST (extending *c from what it already covers); the file
 * is replaced atomically and synced. Call after the open, now and then while open,
 * and after the close. 0, or -1 with err.
 */
int store_control_update(const char *dir, struct store_control *c, char *err, size_t errlen);

#endif
