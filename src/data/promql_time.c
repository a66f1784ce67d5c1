/*
 * promql_time.c - the time and duration request parameters, read as Prometheus's
 * API reads them (promql.h): float seconds rounded to the millisecond, RFC 3339
 * with an optional fraction and a Z or +hh:mm zone, its two special extremes, and
 * PromQL durations.
 */
#include "promql_int.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define TEXT_MAX 64
#define MS_PER_S 1000
#define NS_PER_S 1000000000LL
#define NS_PER_MS 1000000LL
#define SECONDS_PER_DAY 86400
#define TWO_63 9223372036854775808.0
/* Prometheus's MinTime and MaxTime as it formats them, and as milliseconds. */
#define MIN_TIME_TEXT "-292273086-05-16T16:47:06Z"
#define MAX_TIME_TEXT "292277025-08-18T07:12:54.999999999Z"
#define MIN_TIME_MS (-9223309901257974000LL)
#define MAX_TIME_MS 9223309901257974999LL

/* The text as Go's strconv.ParseFloat reads it (decimal; hex floats are not
 * accepted here). 0 or -1. */
static int parse_float(const char *text, size_t len, double *v)
{
	char buf[TEXT_MAX];
	char *end;

	if (len == 0 || len >= sizeof(buf) || memchr(text, 'x', len) != NULL ||
	    memchr(text, 'X', len) != NULL || strchr(" \t\n\r\f\v", text[0]) != NULL)
		return -1;
	memcpy(buf, text, len);
	buf[len] = '\0';
	*v = strtod(buf, &end);
	return *end == '\0' ? 0 : -1;
}

static int digits(const char *s, size_t n, int *out)
{
	int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : days[m - 1];
}

/* The zone at s: Z, or +hh:mm / -hh:mm as seconds east. Bytes used, 0 if invalid. */
static size_t parse_zone(const char *s, size_t n, int64_t *east)
{
	int hh, mm;

	if (n == 1 && s[0] == 'Z') {
		*east = 0;
		return 1;
	}
	if (n != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':' || digits(s + 1, 2, &hh) < 0 ||
	    digits(s + 4, 2, &mm) < 0 || hh > 23 || mm > 59)
		return 0;
	*east = (s[0] == '-' ? -1 : 1) * (int64_t)(hh * 3600 + mm * 60);
	return 6;
}

/* Go's time.Parse(time.RFC3339Nano, s), then milliseconds. 0 or -1. */
static int parse_rfc3339(const char *s, size_t n, int64_t *ms)
{
	int y, mo, d, h, mi, sec;
	size_t i = 19;
	int64_t frac_ns = 0, scale = NS_PER_S, east = 0, secs;

	if (n < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
	    digits(s, 4, &y) < 0 || digits(s + 5, 2, &mo) < 0 || digits(s + 8, 2, &d) < 0 ||
	    digits(s + 11, 2, &h) < 0 || digits(s + 14, 2, &mi) < 0 || digits(s + 17, 2, &sec) < 0)
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59)
		return -1;
	if (s[i] == '.') {
		size_t start = ++i;

		while (i < n && s[i] >= '0' && s[i] <= '9') {
			if (i - start < 9) {
				scale /= 10;
				frac_ns += (s[i] - '0') * scale;
			}
			i++;
		}
		if (i == start)
			return -1;
	}
	if (parse_zone(s + i, n - i, &east) != n - i)
		return -1;
	secs = days_from_civil(y, mo, d) * SECONDS_PER_DAY + h * 3600 + mi * 60 + sec - east;
	*ms = secs * MS_PER_S + frac_ns / NS_PER_MS;
	return 0;
}

int promql_parse_time(const char *text, size_t len, int64_t *ms)
{
	double t, whole, frac;
	int64_t sec, nsec;

	if (parse_float(text, len, &t) == 0) {
		/* Go: s, ns := math.Modf(t); ns = math.Round(ns*1000)/1000;
		 * time.Unix(int64(s), int64(ns*1e9)), then whole milliseconds. */
		if (!isfinite(t) || !(fabs(t) < TWO_63 / MS_PER_S))
			return -1;
		frac = modf(t, &whole);
		frac = round(frac * MS_PER_S) / MS_PER_S;
		sec = (int64_t)whole;
		nsec = (int64_t)(frac * (double)NS_PER_S);
		if (nsec < 0) {
			sec--;
			nsec += NS_PER_S;
		}
		*ms = sec * MS_PER_S + nsec / NS_PER_MS;
		return 0;
	}
	if (len == strlen(MIN_TIME_TEXT) && memcmp(text, MIN_TIME_TEXT, len) == 0) {
		*ms = MIN_TIME_MS;
		return 0;
	}
	if (len == strlen(MAX_TIME_TEXT) && memcmp(text, MAX_TIME_TEXT, len) == 0) {
		*ms = MAX_TIME_MS;
		return 0;
	}
	return parse_rfc3339(text, len, ms);
}

int promql_parse_duration(const char *text, size_t len, int64_t *ms)
{
	double d;

	if (parse_float(text, len, &d) == 0) {
		double ns = d * (double)NS_PER_S;

		if (isnan(ns) || ns >= TWO_63 || ns < -TWO_63)
			return -1;
		*ms = (int64_t)ns / NS_PER_MS;
		return 0;
	}
	return pq_parse_promql_duration(text, len, ms);
}
