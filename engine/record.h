/*
 * record.h: one log record on disk: a 56-byte header and a payload.
 *
 * Layout (little-endian; FORMAT.md, "Record", is the normative text):
 *
 *   0  u64 checksum       XXH3-64 of header bytes [8, 56)
 *   8  u64 body_checksum  XXH3-64 of the payload
 *  16  u64 prev_checksum  `checksum` of the record before (the hash chain)
 *  24  u64 offset         the record's log offset (0, 1, 2, ...)
 *  32  u64 time_ms        engine time, ms since the Unix epoch
 *  40  u32 length         payload bytes
 *  44  u16 type           event type (0 is reserved)
 *  46  u16 flags          REEL_RECORD_F_*
 *  48  u32 batch_index    position of the record in its write batch
 *  52  u32 reserved       zero
 *  56  payload, then zero padding to the record's stride
 *
 * Invariants:
 *   1. The header checksum covers every other header byte, and so the body
 *      checksum and the chain: a valid header vouches for the whole record
 *      once the body checksum matches.
 *   2. A record's stride is its size rounded up to 8 bytes. Each write batch
 *      is padded with zeros to the next block (REEL_BLOCK_SIZE), so no later
 *      write touches a block that holds an acknowledged record.
 *   3. offset - batch_index is the batch's first offset. Every record before
 *      that was durable before the batch was written: this is how recovery
 *      tells a torn tail from corruption (record_scan in segment.c).
 */
#ifndef REEL_RECORD_H
#define REEL_RECORD_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/limits.h"

/* The record continues an append group: the group ends at the next record
 * without this flag. Recovery never keeps part of a group. */
#define REEL_RECORD_F_GROUP_CONT 0x0001u
#define REEL_RECORD_F_KNOWN REEL_RECORD_F_GROUP_CONT

typedef struct reel_record_header {
    uint64_t checksum;      /* XXH3-64 of the encoded header bytes [8, 56) */
    uint64_t body_checksum; /* XXH3-64 of the payload */
    uint64_t prev_checksum; /* checksum of the previous record, 0 before the first */
    uint64_t offset;        /* log offset */
    uint64_t time_ms;       /* engine time */
    uint32_t length;        /* payload bytes */
    uint16_t type;          /* event type, never 0 */
    uint16_t flags;         /* REEL_RECORD_F_* */
    uint32_t batch_index;   /* offset - batch_index = first offset of its batch */
} reel_record_header_t;

/* A record as readers see it. payload points into the reader's buffer and
 * is valid until the reader moves on. */
typedef struct reel_record {
    uint64_t offset;
    uint64_t time_ms;
    uint16_t type;
    uint16_t flags;
    uint32_t length;
    const uint8_t *payload;
    uint64_t checksum; /* the header checksum, the chain value after it */
} reel_record_t;

/* Encodes header h (its checksum fields are computed here and stored back
 * in h) and the payload into dst. Returns the bytes written, header plus
 * payload; the padding up to the stride is the caller's (zeros). */
uint32_t reel_record_encode(uint8_t *dst, reel_record_header_t *h, const void *payload);

/* Bytes a record occupies on disk, its padding to 8 bytes included. */
static inline uint64_t reel_record_stride(uint32_t length)
{
    return ((uint64_t)REEL_RECORD_HEADER_SIZE + length + REEL_RECORD_ALIGN - 1) &
           ~(uint64_t)(REEL_RECORD_ALIGN - 1);
}

/* Decodes and checks the header at src. Returns 0, or REEL_ECORRUPT when the
 * header checksum, a reserved field or a flag is wrong. */
int reel_record_decode_header(const uint8_t *src, reel_record_header_t *out);

/* Checks the payload against the header's body checksum. */
bool reel_record_body_ok(const reel_record_header_t *h, const uint8_t *payload);

/* True when the bytes at pos (a position in a segment, not at a block
 * boundary) up to the block boundary, or the first 56 of them, are zero:
 * the padding that ends a batch. A batch can end fewer than 56 bytes before
 * a boundary, so only the bytes before the boundary count; a record never
 * starts with zeros there (its first 8 bytes are its checksum). */
bool reel_record_is_padding(const uint8_t *p, uint64_t pos);

/* True when all n bytes are zero (never-written space). */
bool reel_bytes_zero(const uint8_t *p, uint64_t n);

#endif /* REEL_RECORD_H */
