/*
 * record.h - one observation (timestamp, name, value) and its packed wire form.
 *
 * The wire form is what a worker writes into a ring entry and the writer reads
 * back: little-endian, unaligned, read and written with memcpy only.
 *   int64 ts | uint8 type | 8 bytes value (int64 or IEEE double) | uint16 name_len | name
 */
#ifndef TEMPORIS_RECORD_H
#define TEMPORIS_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define REC_NAME_MAX 4096          /* bytes: the longest series name any protocol may store */
#define REC_WIRE_FIXED 19          /* bytes of a wire record before its name */

enum rec_type { REC_INT = 1, REC_DOUBLE = 2 };

struct rec {
	int64_t ts;
	uint8_t type;                  /* enum rec_type */
	union {
		int64_t i;
		double d;
	} v;
	const char *name;              /* not NUL-terminated; borrowed */
	uint16_t name_len;
};

static inline size_t rec_wire_size(const struct rec *r)
{
	return REC_WIRE_FIXED + (size_t)r->name_len;
}

/* Write r at dst (room for rec_wire_size(r) bytes); returns the byte after it. */
static inline uint8_t *rec_encode(uint8_t *dst, const struct rec *r)
{
	memcpy(dst, &r->ts, 8);
	dst[8] = r->type;
	memcpy(dst + 9, &r->v, 8);
	memcpy(dst + 17, &r->name_len, 2);
	memcpy(dst + REC_WIRE_FIXED, r->name, r->name_len);
	return dst + rec_wire_size(r);
}

/*
 * Read one record from [p, end). out->name points into the buffer.
 * Returns the byte after it, or NULL if the bytes do not hold a whole, valid record.
 */
static inline const uint8_t *rec_decode(const uint8_t *p, const uint8_t *end, struct rec *out)
{
	if (end - p < REC_WIRE_FIXED)
		return NULL;
	memcpy(&out->ts, p, 8);
	out->type = p[8];
	memcpy(&out->v, p + 9, 8);
	memcpy(&out->name_len, p + 17, 2);
	if (out->type != REC_INT && out->type != REC_DOUBLE)
		return NULL;
	if (out->name_len == 0 || out->name_len > REC_NAME_MAX)
		return NULL;
	if ((size_t)(end - p) < rec_wire_size(out))
		return NULL;
	out->name = (const char *)(p + REC_WIRE_FIXED);
	return p + rec_wire_size(out);
}

#endif
