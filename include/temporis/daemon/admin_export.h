/*
 * admin_export.h - the "export" op: one page of a source's records for the worker
 * that streams an export (admin_export.c). The op's members, set by serve_export.c,
 * are described with the page's shape in admin_msg.h.
 */
#ifndef TEMPORIS_DAEMON_ADMIN_EXPORT_H
#define TEMPORIS_DAEMON_ADMIN_EXPORT_H

#include <stdint.h>

#include "temporis/data/store.h"

struct json_object;

/* One page of source source_id as req asks: the page, or an error reply (bad members:
 * ADMIN_BAD_REQUEST; a series line protocol cannot name: ADMIN_INVALID). NULL only
 * when out of memory. */
struct json_object *admin_export_run(struct store *st, uint32_t source_id,
				     struct json_object *req);

#endif
