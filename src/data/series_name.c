/*
 * series_name.c - series names in Prometheus's text form, and the name rule
 * (series_name.h). Owns nothing: it writes into the caller's buffer.
 */
#include "temporis/data/series_name.h"

#include <string.h>

#include "temporis/data/ingest_fast.h"
#include "temporis/data/record.h"

/* Insertion sort: label sets are short, and it is stable. */
void series_labels_sort(struct series_label *labels, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct series_label cur = labels[i];
		size_t j = i;

		while (j > 0) {
			const struct series_label *prev = &labels[j - 1];
			size_t common = prev->name_len < cur.name_len ? prev->name_len : cur.name_len;
			int c = memcmp(prev->name, cur.name, common);

			if (c < 0 || (c == 0 && prev->name_len <= cur.name_len))
				break;
			labels[j] = labels[j - 1];
			j--;
		}
		labels[j] = cur;
	}
}

/* Append n bytes at dst + *len while they fit in cap; *len always advances. */
static void put(char *dst, size_t cap, size_t *len, const char *s, size_t n)
{
	if (*len < cap)
		memcpy(dst + *len, s, cap - *len < n ? cap - *len : n);
	*len += n;
}

static void put_value(char *dst, size_t cap, size_t *len, const char *v, size_t n)
{
	size_t run = 0;

	for (size_t i = 0; i < n; i++) {
		const char *esc = v[i] == '\\' ? "\\\\" : v[i] == '"' ? "\\\"" : v[i] == '\n' ? "\\n"
											 : NULL;

		if (esc == NULL)
			continue;
		put(dst, cap, len, v + run, i - run);
		put(dst, cap, len, esc, 2);
		run = i + 1;
	}
	put(dst, cap, len, v + run, n - run);
}

size_t series_name_format(char *dst, size_t cap, const char *metric, size_t metric_len,
			  const struct series_label *labels, size_t n)
{
	size_t len = 0;

	put(dst, cap, &len, metric, metric_len);
	for (size_t i = 0; i < n; i++) {
		put(dst, cap, &len, i == 0 ? "{" : ",", 1);
		put(dst, cap, &len, labels[i].name, labels[i].name_len);
		put(dst, cap, &len, "=\"", 2);
		put_value(dst, cap, &len, labels[i].value, labels[i].value_len);
		put(dst, cap, &len, "\"", 1);
	}
	if (n > 0)
		put(dst, cap, &len, "}", 1);
	return len;
}

bool series_name_ok(const char *name, size_t n)
{
	const unsigned char *s = (const unsigned char *)name;
	size_t i = 0, k;

	if (n == 0 || n > REC_NAME_MAX)
		return false;
	while (i < n) {
		if (s[i] < 0x80) {
			if (s[i] < 0x20 || s[i] == 0x7F)
				return false;
			i++;
			continue;
		}
		k = ingest_utf8_seq_len(s + i, n - i);
		if (k == 0 || ingest_utf8_is_c1(s + i, k))
			return false;
		i += k;
	}
	return true;
}
