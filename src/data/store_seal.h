/*
 * store_seal.h - private to the store: a frozen head written into the source
 * families (store_seal.c).
 */
#ifndef TEMPORIS_STORE_SEAL_H
#define TEMPORIS_STORE_SEAL_H

#include <stddef.h>
#include <stdint.h>
#include "store_core.h"
#include "temporis/data/head.h"

/* Files a seal builds in the database directory and ingests; left over by a crash,
 * they are removed at open. */
#define STORE_SEAL_FILE_PREFIX "seal-"
#define STORE_SEAL_FILE_SUFFIX ".sst"

/*
 * Write head h into the source families, then delete the log it covers (family
 * log, below log_end) and flush that family. 0, or -1 with err set: nothing is
 * lost, the log still holds it all, and sealing the same head again is harmless.
 */
int store_seal_head(struct store *st, struct head *h, unsigned log, uint64_t log_end,
		    char *err, size_t errlen);

#endif
