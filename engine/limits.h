/*
 * limits.h: every limit of the engine, in one place, with the arithmetic
 * behind it. A limit that is not here does not exist.
 */
#ifndef REEL_LIMITS_H
#define REEL_LIMITS_H

/* Record header bytes on disk (see FORMAT.md, "Record"). */
#define REEL_RECORD_HEADER_SIZE 56u
/* Records start on 8-byte boundaries so headers can be read in place. */
#define REEL_RECORD_ALIGN 8u
/* Largest payload of one record: 4 MiB. Events are small; large records are
 * for blobs and for the large-record benchmark. */
#define REEL_RECORD_PAYLOAD_MAX (4u << 20)
/* Records in one atomic group (one append request). */
#define REEL_GROUP_RECORDS_MAX 4096u

/* Segment files. The first block holds the segment header; records follow.
 * The write unit (block) is 4 KiB: every batch is padded to it, so a write
 * never touches a block that holds acknowledged records. */
#define REEL_BLOCK_SIZE 4096u
#define REEL_SEGMENT_HEADER_SIZE REEL_BLOCK_SIZE
#define REEL_SEGMENT_SIZE_DEFAULT (64ull << 20)
#define REEL_SEGMENT_SIZE_MIN (64ull << 10)
#define REEL_SEGMENT_SIZE_MAX (1ull << 30)

/* Sparse offset index: one entry per this many bytes of a segment. With
 * 64 MiB segments that is 16384 entries of 16 bytes: 256 KiB per segment. */
#define REEL_INDEX_INTERVAL_BYTES 4096u

/* Group commit. One batch is at most this many bytes (one write, one
 * fdatasync); a batch holds whole append groups. 16 MiB holds three largest
 * records; one write of it takes ~16 ms at 1 GB/s. */
#define REEL_BATCH_BYTES_MAX (16u << 20)
/* Appends waiting for the writer: past this, submit answers REEL_EFULL
 * (the server turns it into 503) instead of queueing without bound. */
#define REEL_QUEUE_RECORDS_MAX 65536u
#define REEL_QUEUE_BYTES_MAX (64u << 20)

/* Segments one log may have open in its table. 1 Mi segments of 64 MiB is
 * 64 TiB of log: well beyond one machine. */
#define REEL_SEGMENTS_MAX (1u << 20)

/* zstd: raw bytes per independently decodable block of a sealed segment. */
#define REEL_ZBLOCK_RAW_BYTES (256u << 10)
#define REEL_ZSTD_LEVEL 3

_Static_assert(REEL_SEGMENT_HEADER_SIZE % REEL_BLOCK_SIZE == 0, "header is whole blocks");
_Static_assert(REEL_RECORD_HEADER_SIZE % REEL_RECORD_ALIGN == 0, "header keeps alignment");
_Static_assert(REEL_SEGMENT_SIZE_MIN % REEL_BLOCK_SIZE == 0, "segments are whole blocks");
_Static_assert(REEL_BATCH_BYTES_MAX >= 2 * (REEL_RECORD_PAYLOAD_MAX + REEL_RECORD_HEADER_SIZE),
               "a batch holds the largest record");
_Static_assert(REEL_ZBLOCK_RAW_BYTES >= REEL_BLOCK_SIZE, "zstd blocks are not tiny");

#endif /* REEL_LIMITS_H */
