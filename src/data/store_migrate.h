/*
 * store_migrate.h - private to the store: the migration of a format "2" database
 * at open (store_migrate.c).
 */
#ifndef TEMPORIS_STORE_MIGRATE_H
#define TEMPORIS_STORE_MIGRATE_H

#include <stddef.h>
#include "store_core.h"

/* Rewrite every record family in this format and then set the marker. */
int store_migrate(struct store *st, const char *dir, char *err, size_t errlen);

#endif
