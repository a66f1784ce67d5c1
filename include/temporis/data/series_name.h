/*
 * series_name.h - series names in Prometheus's text form, the one form every write
 * protocol maps to: metric{label="value",...}, the labels sorted by name and their
 * values escaped as Prometheus escapes them (\\, \", \n). The same point therefore
 * lands on the same series whatever order its tags or labels came in. Also the name
 * rule every series name obeys, whichever protocol brought it.
 */
#ifndef TEMPORIS_DATA_SERIES_NAME_H
#define TEMPORIS_DATA_SERIES_NAME_H

#include <stdbool.h>
#include <stddef.h>

struct series_label {
	const char *name;                /* not NUL-terminated; borrowed */
	size_t name_len;
	const char *value;               /* raw (unescaped) bytes; borrowed */
	size_t value_len;
};

/* Sort labels[0..n) by name, bytewise; labels of equal names keep their order. */
void series_labels_sort(struct series_label *labels, size_t n);

/*
 * Write metric{labels...} into dst[0..cap) with the labels in the order given (sort
 * them first) and their values escaped; no braces when n is 0. Returns the name's full
 * length; when that is more than cap, dst holds only a prefix (like snprintf, but no
 * NUL is written).
 */
size_t series_name_format(char *dst, size_t cap, const char *metric, size_t metric_len,
			  const struct series_label *labels, size_t n);

/*
 * The rule of every stored series name: 1 to REC_NAME_MAX bytes of strict UTF-8
 * without control characters (C0, DEL or C1).
 */
bool series_name_ok(const char *name, size_t len);

#endif
