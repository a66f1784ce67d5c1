/*
 * duration.c - durations as an operator writes them (duration.h): the parser every
 * reader of a retention uses, and its canonical text. Owns nothing.
 */
#include "temporis/base/duration.h"

#include <stdio.h>
#include <string.h>

#define DECIMAL_BASE 10
#define FOREVER_WORD "forever"

static const struct {
	char unit;
	int64_t seconds;
} units[] = {
	{ 'w', INT64_C(604800) }, { 'd', INT64_C(86400) }, { 'h', INT64_C(3600) },
	{ 'm', INT64_C(60) },     { 's', INT64_C(1) },
};
#define NUNITS (sizeof(units) / sizeof(units[0]))

static int64_t unit_seconds(char c)
{
	for (size_t i = 0; i < NUNITS; i++)
		if (units[i].unit == c)
			return units[i].seconds;
	return 0;
}

int duration_parse(const char *text, size_t len, int64_t *seconds)
{
	int64_t n = 0, unit = 1;
	size_t digits = len;

	if (len == strlen(FOREVER_WORD) && memcmp(text, FOREVER_WORD, len) == 0) {
		*seconds = 0;
		return 0;
	}
	if (len >= 2 && (unit = unit_seconds(text[len - 1])) != 0)
		digits = len - 1;
	else
		unit = 1;
	if (digits == 0)
		return -1;
	for (size_t i = 0; i < digits; i++) {
		if (text[i] < '0' || text[i] > '9')
			return -1;
		n = n * DECIMAL_BASE + (text[i] - '0');
		if (n > DURATION_MAX_S)
			return -1;
	}
	if (n > DURATION_MAX_S / unit)
		return -1;
	*seconds = n * unit;
	return 0;
}

void duration_format(int64_t seconds, char buf[DURATION_TEXT_MAX])
{
	/* from days down: "7d" and "14d" read as typed, never "1w" */
	for (size_t i = 1; seconds > 0 && i < NUNITS; i++)
		if (seconds % units[i].seconds == 0) {
			snprintf(buf, DURATION_TEXT_MAX, "%lld%c",
				 (long long)(seconds / units[i].seconds), units[i].unit);
			return;
		}
	snprintf(buf, DURATION_TEXT_MAX, "0");
}
