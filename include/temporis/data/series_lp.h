/*
 * series_lp.h - a series name back to line protocol (series_lp.c): the series key and
 * field that POST /write maps to exactly that name again. A name that came in as line
 * protocol, measurement_field{tag="value",...}, goes back as
 * "measurement,tag=value,... field=" with line protocol's escapes, split at the last
 * '_' before the labels. A name no line can produce (a JSON-API name such as cpu.load
 * or one with no '_', a tag value holding a newline, ...) is refused with the reason.
 */
#ifndef TEMPORIS_DATA_SERIES_LP_H
#define TEMPORIS_DATA_SERIES_LP_H

#include <stddef.h>

#include "temporis/base/buf.h"

struct ingest_lp;

/*
 * Append "measurement[,tag=value...] field=" for name[0..len) to out. Every key is
 * proved by parsing it with check (a parser of its own: its last result is replaced),
 * so what is appended is exactly what /write reads back as name. 0; or -1 with
 * *why set (a static text) and out as it was; or -2 when memory ran out.
 */
int series_lp_key(struct ingest_lp *check, const char *name, size_t len, struct buf *out,
		  const char **why);

#endif
