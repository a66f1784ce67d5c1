/*
 * store_options.h - private to the store: its RocksDB options (store_options.c).
 */
#ifndef TEMPORIS_STORE_OPTIONS_H
#define TEMPORIS_STORE_OPTIONS_H

#include <stddef.h>
#include "store_core.h"

/* The options of st (store_options.c): 0, or -1 when out of memory. */
int store_options_init(struct store *st, enum cfg_sync sync);

#endif
