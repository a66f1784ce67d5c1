/*
 * clock.h - the process-wide time helpers: monotonic time for deadlines and
 * latencies, wall-clock seconds for what is shown or stored (created_at, uptime).
 */
#ifndef TEMPORIS_BASE_CLOCK_H
#define TEMPORIS_BASE_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in milliseconds / microseconds (never fails on Linux). */
uint64_t mono_ms(void);
uint64_t mono_us(void);

/* Unix seconds from CLOCK_REALTIME. 0, or -1 with errno if the clock cannot be read. */
int wall_time_s(int64_t *out);

#endif
