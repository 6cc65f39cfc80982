/*
 * segment.h: one segment file of the log, and the scan that reads it.
 *
 * A segment is a fixed-size, preallocated (zero-filled) file named by its
 * first offset, "%020llu.seg". Block 0 holds the segment header; records
 * follow from byte REEL_SEGMENT_HEADER_SIZE, each 8-byte aligned. Where a
 * record header would be and the 56 bytes are zero, the rest of that block
 * is padding: the next record, if any, starts at the next block. At a block
 * start, a zero header is the end of the written data.
 *
 * Segment header (little-endian; FORMAT.md, "Segment"):
 *   0  u8[8] magic "REELSEG\0"
 *   8  u32   version (REEL_FORMAT_VERSION)
 *  12  u32   block_size
 *  16  u64   segment_size (file bytes)
 *  24  u64   first_offset
 *  32  u64   prev_checksum (chain value entering the segment)
 *  40  u64   created_ms
 *  48  u64   checksum: XXH3-64 of bytes [0, 48)
 *
 * The scan (reel_segment_scan) walks the records of a segment image and
 * decides, at the first record it cannot accept, whether that is a torn
 * tail or corruption: see the invariants in record.h and FORMAT.md,
 * "Recovery".
 */
#ifndef REEL_SEGMENT_H
#define REEL_SEGMENT_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/record.h"

#define REEL_FORMAT_VERSION 1u
#define REEL_SEGMENT_MAGIC "REELSEG"

typedef struct reel_segment_header {
    uint32_t version;
    uint32_t block_size;
    uint64_t segment_size;
    uint64_t first_offset;
    uint64_t prev_checksum;
    uint64_t created_ms;
} reel_segment_header_t;

/* Encodes into block (REEL_SEGMENT_HEADER_SIZE bytes, zeroed here first). */
void reel_segment_header_encode(uint8_t *block, const reel_segment_header_t *h);
/* Returns 0, REEL_EVERSION (with version set) or REEL_ECORRUPT. */
int reel_segment_header_decode(const uint8_t *block, reel_segment_header_t *out);

/* File name of a segment: "%020llu.seg" into buf (at least 32 bytes). */
void reel_segment_name(char *buf, uint64_t first_offset);
/* Parses a segment file name; returns true and the first offset on match.
 * suffix is ".seg" or ".zseg". */
bool reel_segment_parse_name(const char *name, const char *suffix, uint64_t *first_offset);

/* Called by the scan for each whole record, in order. Returning non-zero
 * stops the scan with that value in status. */
typedef int (*reel_scan_record_cb)(void *ctx, const reel_record_t *rec, uint64_t pos);

typedef struct reel_scan {
    /* out: what the segment holds */
    uint64_t next_offset;   /* one past the last record kept */
    uint64_t end_pos;       /* byte position after the last record kept */
    uint64_t last_checksum; /* chain value after the last record kept */
    uint64_t last_time_ms;  /* time of the last record kept, 0 if none */
    uint64_t records;       /* records kept */
    /* out: what stopped the scan */
    int status;             /* 0: clean end; REEL_ETORN; REEL_ECORRUPT; REEL_ECHAIN */
    uint64_t bad_pos;       /* position of the first bad record */
    uint64_t bad_offset;    /* offset that was expected there */
    uint64_t dirty_end;     /* end of the last non-zero block (torn: zero up to here) */
    char why[160];          /* human text for status */
} reel_scan_t;

/* Scans image[0, size) of a segment whose header is hdr. A bad record in a
 * segment that is not the last is corruption (last == false); in the last
 * segment it is a torn tail unless a later record proves the bad one was
 * durable. Records of an unfinished group at a torn tail are not kept.
 * cb may be NULL. Returns s->status. */
int reel_segment_scan(const uint8_t *image, uint64_t size, const reel_segment_header_t *hdr,
                      bool last, reel_scan_record_cb cb, void *ctx, reel_scan_t *s);

#endif /* REEL_SEGMENT_H */
