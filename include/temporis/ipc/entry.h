/*
 * entry.h - the header of one ring entry: one accepted ingest request.
 *
 * A worker writes the header and its packed records (record.h) into its lane,
 * then publishes; the writer reads it, commits it, writes status, and only then
 * advances the lane's committed position. Entries are 8-byte aligned.
 */
#ifndef TEMPORIS_ENTRY_H
#define TEMPORIS_ENTRY_H

#include <stdatomic.h>
#include <stdint.h>

#define ENTRY_MAGIC 0x31454e54u      /* "TNE1": an entry */
#define ENTRY_PAD_MAGIC 0x44415054u  /* "TPAD": skip to the lane's start */
#define ENTRY_ALIGN 8u

enum entry_status {
	ENTRY_PENDING = 0,
	ENTRY_COMMITTED = 1,
	ENTRY_FAILED = 2,                /* storage failure: the worker answers 500 */
	ENTRY_NOSPACE = 3,               /* the store had no space: the worker answers 507 */
};

struct entry_hdr {
	uint32_t magic;                  /* ENTRY_MAGIC or ENTRY_PAD_MAGIC */
	uint32_t len;                    /* whole entry, header included, multiple of 8 */
	uint64_t version;                /* last-write-wins version of every record in it */
	uint32_t source_id;              /* data source (column family) */
	uint32_t nrecords;
	_Atomic uint32_t status;         /* enum entry_status; stored by the writer (release) */
	uint32_t payload_len;            /* bytes of packed records after the header */
};

_Static_assert(sizeof(struct entry_hdr) == 32, "entry header is 32 bytes");

static inline uint32_t entry_size(uint32_t payload_len)
{
	return (uint32_t)((sizeof(struct entry_hdr) + payload_len + ENTRY_ALIGN - 1) &
			  ~(uint64_t)(ENTRY_ALIGN - 1));
}

static inline const uint8_t *entry_payload(const struct entry_hdr *h)
{
	return (const uint8_t *)(h + 1);
}

#endif
