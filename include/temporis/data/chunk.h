/*
 * chunk.h - the compressed form of one bucket of one series: the value a record
 * key holds on disk, and every merge operand written for it.
 *
 * A chunk is a list of entries in strictly increasing offset order (the
 * timestamp minus its bucket's start), each with its last-write-wins version,
 * its type and its value bits. The encoding keeps every bit exact and is
 * chosen per chunk: regular offsets cost nothing per entry, versions and
 * integers are delta-of-delta / delta zig-zag varints, doubles that are exact
 * short decimals (47.38) are stored as their integer mantissas, other doubles
 * as XOR with the previous one (leading and trailing zero bytes dropped).
 * RocksDB's block compression then squeezes what the varints leave.
 */
#ifndef TEMPORIS_DATA_CHUNK_H
#define TEMPORIS_DATA_CHUNK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CHUNK_MAGIC 0xC3          /* first byte of every chunk */
#define CHUNK_OFFSET_MAX 65535u   /* offsets are < the bucket span, at most this */

struct chunk_entry {
	uint64_t version;
	uint64_t bits;            /* int64 or IEEE double bits, as the type says */
	uint16_t off;             /* timestamp - bucket start */
	uint8_t type;             /* REC_INT or REC_DOUBLE */
};

/* Bytes chunk_encode may write for n entries. */
size_t chunk_bound(size_t n);

/*
 * Encode e[0..n) (n >= 1, offsets strictly increasing, types valid) into dst,
 * which holds chunk_bound(n) bytes. Returns the length written.
 */
size_t chunk_encode(const struct chunk_entry *e, size_t n, uint8_t *dst);

/* The entry count of a chunk from its header, or -1 if the header is malformed. */
ssize_t chunk_count(const uint8_t *src, size_t len);

/*
 * Decode a whole chunk into out (room for cap entries). Returns the entry count,
 * or -1 if the bytes are not exactly one well-formed chunk (bad magic, truncated,
 * trailing bytes, offsets not increasing or over max_off, unknown type, more than
 * cap entries).
 */
ssize_t chunk_decode(const uint8_t *src, size_t len, uint16_t max_off,
		     struct chunk_entry *out, size_t cap);

/*
 * Last-write-wins over one bucket: offer entries oldest first (stored value, then
 * later operands in order); per offset the highest version wins, and on equal
 * versions the later one. Drain writes the winners in offset order and empties
 * the fold. The owner provides span bits of `used` and span slots.
 */
struct chunk_fold {
	size_t span;
	uint64_t *used;
	struct chunk_entry *slots;
	size_t count;
};

void chunk_fold_offer(struct chunk_fold *f, const struct chunk_entry *e);
size_t chunk_fold_drain(struct chunk_fold *f, struct chunk_entry *out);

#endif
