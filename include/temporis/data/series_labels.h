/*
 * series_labels.h - a stored series name read back as a Prometheus label set, the
 * inverse of series_name_format for names in Prometheus's text form, and a fixed
 * mapping for every other name (the JSON API stores names such as "cpu.load").
 *
 * The rule, applied to the whole stored name:
 *   - metric{l1="v1",...,lN="vN"} where metric matches [a-zA-Z_:][a-zA-Z0-9_:]*, each
 *     label name matches [a-zA-Z_][a-zA-Z0-9_]* (not "__name__", no name twice) and each
 *     value is a double-quoted string whose only escapes are \\, \" and \n: the labels
 *     __name__=metric plus l1..lN with their values unescaped. "metric" and "metric{}"
 *     alone give just __name__. A label with an empty value is no label (as in
 *     Prometheus, where an empty value and an absent label are the same thing).
 *   - anything else: the one label __name__ = the name with every byte outside
 *     [a-zA-Z0-9_:] replaced by '_', and '_' put in front when it starts with a digit.
 * Two stored names can therefore give the same label set ("cpu.load", "cpu_load");
 * readers must refuse such a selection rather than merge the series (promql.h).
 */
#ifndef TEMPORIS_DATA_SERIES_LABELS_H
#define TEMPORIS_DATA_SERIES_LABELS_H

#include <stdbool.h>
#include <stddef.h>

#include "temporis/data/series_name.h"

#define SERIES_LABELS_METRIC "__name__"

/*
 * A label set, sorted by label name bytewise (so "__name__" sits after upper-case
 * names, as in Prometheus). Names and values point into buf and are NUL-terminated
 * there (a stored name has no NUL, so the lengths and the terminators agree).
 * Zero-initialised is empty; the owner reuses it across names and frees it once.
 */
struct series_labels {
	struct series_label *v;
	size_t n, cap;
	char *buf;
	size_t buf_cap;
};

/*
 * Read name[0..len) back into sl (replacing what it held) by the rule above.
 * 0, or -1 when memory runs out (sl is then empty).
 */
int series_labels_parse(struct series_labels *sl, const char *name, size_t len);

void series_labels_free(struct series_labels *sl);

#endif
