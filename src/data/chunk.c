/*
 * chunk.c - the compressed bucket format (chunk.h): pure functions over bytes,
 * no allocation. The decoder trusts nothing: every length, offset and flag is
 * checked, so a corrupt value is an error, never a crash or a wrong record.
 */
#include "temporis/data/chunk.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "temporis/data/record.h"

/* Header flags. */
#define F_ALL_INT 0x01u           /* every entry is an integer */
#define F_ALL_DOUBLE 0x02u        /* every entry is a double (neither: a type bitmap) */
#define F_DECIMAL 0x04u           /* doubles are mantissas of a decimal exponent */
#define F_REGULAR 0x08u           /* offsets are off0 + i * step */
#define F_ONE_VERSION 0x10u       /* every entry has the same version */
#define F_KNOWN 0x1fu

#define DEC_MAX 15                /* 10^15: mantissas of short decimals stay < 2^53 */
#define MANTISSA_LIMIT 9007199254740992.0 /* 2^53 */
#define HALF 0.5
#define VARINT_MAX 10
#define XOR_BYTES 8
#define HEADER_MAX (1 + VARINT_MAX + 1 + 1)
#define PER_ENTRY_MAX (3 + VARINT_MAX + VARINT_MAX)
#define BYTE_BITS 8

static const double pow10_table[DEC_MAX + 1] = {
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
};

size_t chunk_bound(size_t n)
{
	return HEADER_MAX + (n + BYTE_BITS - 1) / BYTE_BITS + 2 * VARINT_MAX + n * PER_ENTRY_MAX;
}

/* ---- bytes ---- */

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

/* Two's complement difference as a zig-zag code: small magnitudes, small codes. */
static uint64_t zigzag(uint64_t delta)
{
	return (delta << 1) ^ (uint64_t)((int64_t)delta >> 63);
}

static uint64_t unzigzag(uint64_t z)
{
	return (z >> 1) ^ (0 - (z & 1));
}

struct reader {
	const uint8_t *p, *end;
	bool bad;                 /* sticky: once a read fails, every later one does */
};

static uint64_t get_varint(struct reader *r)
{
	uint64_t v = 0;

	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (r->p == r->end)
			break;
		uint8_t b = *r->p++;

		v |= (uint64_t)(b & 0x7f) << shift;
		if ((b & 0x80) == 0)
			return v;
	}
	r->bad = true;
	return 0;
}

static uint8_t get_byte(struct reader *r)
{
	if (r->p == r->end) {
		r->bad = true;
		return 0;
	}
	return *r->p++;
}

/* ---- choosing the encoding ---- */

static bool decimal_mantissa(uint64_t bits, int e, int64_t *m)
{
	double v, x, back;
	uint64_t back_bits;

	memcpy(&v, &bits, sizeof(v));
	x = v * pow10_table[e];
	if (!(fabs(x) < MANTISSA_LIMIT))
		return false;  /* also NaN and infinities */
	/* Nearest integer; a tie rounded the other way only fails the check below. */
	*m = (int64_t)(x < 0 ? x - HALF : x + HALF);
	back = (double)*m / pow10_table[e];
	memcpy(&back_bits, &back, sizeof(back_bits));
	return back_bits == bits;  /* -0.0 fails here: 0 / p is +0.0 */
}

/*
 * The smallest decimal exponent at which every double is an exact mantissa, or -1.
 * A value exact at e is exact at e + 1 too (same rational, correctly rounded), so
 * the exponent only grows while scanning.
 */
static int decimal_exponent(const struct chunk_entry *e, size_t n)
{
	int exp = 0;
	int64_t m;

	for (size_t i = 0; i < n; i++) {
		while (!decimal_mantissa(e[i].bits, exp, &m))
			if (++exp > DEC_MAX)
				return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (!decimal_mantissa(e[i].bits, exp, &m))
			return -1;
	return exp;
}

static unsigned choose_flags(const struct chunk_entry *e, size_t n, int *exp)
{
	unsigned flags = F_ALL_INT | F_ALL_DOUBLE | F_ONE_VERSION | F_REGULAR;

	for (size_t i = 0; i < n; i++) {
		flags &= e[i].type == REC_INT ? ~F_ALL_DOUBLE : ~F_ALL_INT;
		if (e[i].version != e[0].version)
			flags &= ~F_ONE_VERSION;
		if (i >= 2 && e[i].off - e[i - 1].off != e[1].off - e[0].off)
			flags &= ~F_REGULAR;
	}
	if (n < 2)
		flags &= ~F_REGULAR;
	*exp = -1;
	if (flags & F_ALL_DOUBLE) {
		*exp = decimal_exponent(e, n);
		if (*exp >= 0)
			flags |= F_DECIMAL;
	}
	return flags;
}

/* ---- encoding ---- */

static uint8_t *encode_offsets(uint8_t *p, const struct chunk_entry *e, size_t n, unsigned flags)
{
	uint64_t prev_delta = 0;

	p = put_varint(p, e[0].off);
	if (flags & F_REGULAR)
		return put_varint(p, (uint64_t)(e[1].off - e[0].off));
	for (size_t i = 1; i < n; i++) {
		uint64_t delta = (uint64_t)(e[i].off - e[i - 1].off);

		p = put_varint(p, zigzag(delta - prev_delta));
		prev_delta = delta;
	}
	return p;
}

static uint8_t *encode_versions(uint8_t *p, const struct chunk_entry *e, size_t n, unsigned flags)
{
	uint64_t prev_delta = 0;

	p = put_varint(p, e[0].version);
	if (flags & F_ONE_VERSION)
		return p;
	for (size_t i = 1; i < n; i++) {
		uint64_t delta = e[i].version - e[i - 1].version;

		p = put_varint(p, zigzag(delta - prev_delta));
		prev_delta = delta;
	}
	return p;
}

static uint8_t *encode_xor(uint8_t *p, uint64_t x)
{
	unsigned lead = 0, trail = 0;

	if (x == 0) {
		*p++ = (uint8_t)(XOR_BYTES << 4);
		return p;
	}
	while ((x >> (BYTE_BITS * (XOR_BYTES - 1 - lead))) == 0)
		lead++;
	while (((x >> (BYTE_BITS * trail)) & 0xff) == 0)
		trail++;
	*p++ = (uint8_t)(lead << 4 | trail);
	for (unsigned b = trail; b < XOR_BYTES - lead; b++)
		*p++ = (uint8_t)(x >> (BYTE_BITS * b));
	return p;
}

static uint8_t *encode_values(uint8_t *p, const struct chunk_entry *e, size_t n, unsigned flags,
			      int exp)
{
	uint64_t prev = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t v = e[i].bits;

		if (flags & F_DECIMAL) {
			int64_t m = 0;

			(void)decimal_mantissa(e[i].bits, exp, &m); /* checked by decimal_exponent */
			v = (uint64_t)m;
		}
		if (flags & (F_ALL_INT | F_DECIMAL)) {
			p = put_varint(p, zigzag(v - prev));
		} else if (flags & F_ALL_DOUBLE) {
			p = encode_xor(p, v ^ prev);
		} else {
			for (unsigned b = 0; b < XOR_BYTES; b++)
				*p++ = (uint8_t)(v >> (BYTE_BITS * b));
		}
		prev = v;
	}
	return p;
}

size_t chunk_encode(const struct chunk_entry *e, size_t n, uint8_t *dst)
{
	int exp;
	unsigned flags = choose_flags(e, n, &exp);
	uint8_t *p = dst;

	*p++ = CHUNK_MAGIC;
	p = put_varint(p, n);
	*p++ = (uint8_t)flags;
	if (flags & F_DECIMAL)
		*p++ = (uint8_t)exp;
	if ((flags & (F_ALL_INT | F_ALL_DOUBLE)) == 0) {
		memset(p, 0, (n + BYTE_BITS - 1) / BYTE_BITS);
		for (size_t i = 0; i < n; i++)
			if (e[i].type == REC_DOUBLE)
				p[i / BYTE_BITS] |= (uint8_t)(1u << (i % BYTE_BITS));
		p += (n + BYTE_BITS - 1) / BYTE_BITS;
	}
	p = encode_offsets(p, e, n, flags);
	p = encode_versions(p, e, n, flags);
	p = encode_values(p, e, n, flags, exp);
	return (size_t)(p - dst);
}

/* ---- decoding ---- */

struct header {
	size_t n;
	unsigned flags;
	int exp;
	const uint8_t *types;     /* the bitmap of a mixed chunk */
};

static bool read_header(struct reader *r, struct header *h, size_t cap)
{
	uint64_t n;

	if (get_byte(r) != CHUNK_MAGIC)
		return false;
	n = get_varint(r);
	h->flags = get_byte(r);
	if (r->bad || n == 0 || n > cap || (h->flags & ~F_KNOWN) != 0 ||
	    (h->flags & (F_ALL_INT | F_ALL_DOUBLE)) == (F_ALL_INT | F_ALL_DOUBLE))
		return false;
	h->n = (size_t)n;
	h->exp = -1;
	if (h->flags & F_DECIMAL) {
		h->exp = get_byte(r);
		if (!(h->flags & F_ALL_DOUBLE) || h->exp > DEC_MAX)
			return false;
	}
	h->types = NULL;
	if ((h->flags & (F_ALL_INT | F_ALL_DOUBLE)) == 0) {
		size_t bytes = (h->n + BYTE_BITS - 1) / BYTE_BITS;

		if ((size_t)(r->end - r->p) < bytes)
			return false;
		h->types = r->p;
		r->p += bytes;
	}
	return !r->bad && (!(h->flags & F_REGULAR) || h->n >= 2);
}

static bool decode_offsets(struct reader *r, const struct header *h, uint16_t max_off,
			   struct chunk_entry *out)
{
	uint64_t off = get_varint(r), delta = 0;

	if (h->flags & F_REGULAR) {
		delta = get_varint(r);
		if (delta == 0 || delta > max_off)
			return false;
	}
	for (size_t i = 0; i < h->n; i++) {
		if (i > 0) {
			if (!(h->flags & F_REGULAR))
				delta += unzigzag(get_varint(r));
			if (delta == 0 || delta > max_off)
				return false;
			off += delta;
		}
		if (r->bad || off > max_off)
			return false;
		out[i].off = (uint16_t)off;
	}
	return true;
}

static bool decode_versions(struct reader *r, const struct header *h, struct chunk_entry *out)
{
	uint64_t v = get_varint(r), delta = 0;

	for (size_t i = 0; i < h->n; i++) {
		if (i > 0 && !(h->flags & F_ONE_VERSION)) {
			delta += unzigzag(get_varint(r));
			v += delta;
		}
		out[i].version = v;
	}
	return !r->bad;
}

static uint64_t decode_xor(struct reader *r)
{
	uint8_t ctl = get_byte(r);
	unsigned lead = ctl >> 4, trail = ctl & 0x0f;
	uint64_t x = 0;

	if (lead + trail > XOR_BYTES || (lead + trail == XOR_BYTES && ctl != (XOR_BYTES << 4))) {
		r->bad = true;
		return 0;
	}
	for (unsigned b = trail; b < XOR_BYTES - lead; b++)
		x |= (uint64_t)get_byte(r) << (BYTE_BITS * b);
	return x;
}

static uint64_t decode_raw(struct reader *r)
{
	uint64_t v = 0;

	for (unsigned b = 0; b < XOR_BYTES; b++)
		v |= (uint64_t)get_byte(r) << (BYTE_BITS * b);
	return v;
}

static bool decode_values(struct reader *r, const struct header *h, struct chunk_entry *out)
{
	uint64_t prev = 0;

	for (size_t i = 0; i < h->n; i++) {
		uint64_t v;
		bool dbl = h->types ? (h->types[i / BYTE_BITS] >> (i % BYTE_BITS)) & 1
				    : (h->flags & F_ALL_DOUBLE) != 0;

		if (h->flags & (F_ALL_INT | F_DECIMAL))
			v = prev + unzigzag(get_varint(r));
		else if (h->flags & F_ALL_DOUBLE)
			v = prev ^ decode_xor(r);
		else
			v = decode_raw(r);
		prev = v;
		out[i].type = dbl ? REC_DOUBLE : REC_INT;
		out[i].bits = v;
		if (h->flags & F_DECIMAL) {
			double d = (double)(int64_t)v / pow10_table[h->exp];

			memcpy(&out[i].bits, &d, sizeof(d));
		}
	}
	return !r->bad;
}

ssize_t chunk_count(const uint8_t *src, size_t len)
{
	struct reader r = { src, src + len, false };
	uint64_t n;

	if (get_byte(&r) != CHUNK_MAGIC)
		return -1;
	n = get_varint(&r);
	if (r.bad || n == 0 || n > CHUNK_OFFSET_MAX + 1)
		return -1;
	return (ssize_t)n;
}

ssize_t chunk_decode(const uint8_t *src, size_t len, uint16_t max_off,
		     struct chunk_entry *out, size_t cap)
{
	struct reader r = { src, src + len, false };
	struct header h;

	if (!read_header(&r, &h, cap) || !decode_offsets(&r, &h, max_off, out) ||
	    !decode_versions(&r, &h, out) || !decode_values(&r, &h, out) || r.p != r.end)
		return -1;
	return (ssize_t)h.n;
}

/* ---- last write wins ---- */

#define WORD_BITS 64

void chunk_fold_offer(struct chunk_fold *f, const struct chunk_entry *e)
{
	uint64_t bit = 1ull << (e->off % WORD_BITS);
	uint64_t *word = &f->used[e->off / WORD_BITS];

	if (*word & bit) {
		if (f->slots[e->off].version > e->version)
			return;
	} else {
		*word |= bit;
		f->count++;
	}
	f->slots[e->off] = *e;
}

size_t chunk_fold_drain(struct chunk_fold *f, struct chunk_entry *out)
{
	size_t n = 0, words = (f->span + WORD_BITS - 1) / WORD_BITS;

	for (size_t w = 0; w < words && n < f->count; w++) {
		while (f->used[w] != 0) {
			unsigned off = (unsigned)(w * WORD_BITS) + (unsigned)__builtin_ctzll(f->used[w]);

			out[n++] = f->slots[off];
			f->used[w] &= f->used[w] - 1;
		}
	}
	f->count = 0;
	return n;
}
