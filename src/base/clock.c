/*
 * clock.c - monotonic and wall-clock time (clock.h). Owns nothing.
 */
#include "temporis/base/clock.h"

#include <time.h>

#define MS_PER_S 1000u
#define US_PER_S 1000000u
#define NS_PER_MS 1000000u
#define NS_PER_US 1000u

static struct timespec mono_now(void)
{
	struct timespec ts = { 0, 0 };

	/* CLOCK_MONOTONIC cannot fail on Linux; zero would only shorten a wait. */
	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts;
}

uint64_t mono_ms(void)
{
	struct timespec ts = mono_now();

	return (uint64_t)ts.tv_sec * MS_PER_S + (uint64_t)ts.tv_nsec / NS_PER_MS;
}

uint64_t mono_us(void)
{
	struct timespec ts = mono_now();

	return (uint64_t)ts.tv_sec * US_PER_S + (uint64_t)ts.tv_nsec / NS_PER_US;
}

int wall_time_s(int64_t *out)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
		return -1;
	*out = (int64_t)ts.tv_sec;
	return 0;
}
