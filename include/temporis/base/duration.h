/*
 * duration.h - durations as an operator writes them ("30d", "12h", "0", "forever"):
 * the one parser behind the default_retention key, temporisctl and the HTTP API,
 * and its canonical text. Pure functions; no allocation.
 */
#ifndef TEMPORIS_BASE_DURATION_H
#define TEMPORIS_BASE_DURATION_H

#include <stddef.h>
#include <stdint.h>

/* The longest duration accepted: 1000 years, as the records route's step. */
#define DURATION_MAX_S INT64_C(31557600000)
/* "forever" and its NUL: the longest text duration_format writes is shorter. */
#define DURATION_TEXT_MAX 24
/* What a bad value is told, word for word, wherever a duration is read. */
#define DURATION_EXPECT \
	"a duration: an integer with a unit s, m, h, d or w (30d), or 0 or forever for no limit"

/*
 * text[0..len): digits and one unit among s m h d w (minutes, hours, days, weeks;
 * a bare number is seconds), or "0" / "forever" for none (0). At most
 * DURATION_MAX_S seconds. 0 with *seconds, or -1 if the text is not one.
 */
int duration_parse(const char *text, size_t len, int64_t *seconds);

/* The text of the largest unit, days at most, that divides seconds exactly ("30d",
 * "14d", "90m"; "0" for none), into buf (DURATION_TEXT_MAX bytes). */
void duration_format(int64_t seconds, char buf[DURATION_TEXT_MAX]);

#endif
