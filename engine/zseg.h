/*
 * zseg.h: sealed segments compressed with zstd, "%020llu.zseg".
 *
 * A sealed segment's records are packed (8-byte aligned, as in a plain
 * segment, without block padding) into blocks of about
 * REEL_ZBLOCK_RAW_BYTES raw bytes, each holding whole records and each
 * compressed as an independent zstd frame, so a read at any offset
 * decompresses one block. An index (first offset and file position of each
 * block) and a footer at the end make the lookup a binary search.
 * FORMAT.md, "Compressed segment", gives every byte.
 *
 * Records keep their original headers and checksums byte for byte, so the
 * hash chain and every checksum verify the same after compression.
 */
#ifndef REEL_ZSEG_H
#define REEL_ZSEG_H

#include <stdint.h>

#include "engine/io.h"
#include "engine/record.h"
#include "engine/segment.h"

typedef struct reel_zseg reel_zseg_t;

typedef struct reel_zseg_info {
    uint64_t first_offset;  /* offset of the first record */
    uint64_t next_offset;   /* one past the last record */
    uint64_t prev_checksum; /* chain value entering the segment */
    uint64_t last_checksum; /* chain value after the last record */
    uint64_t last_time_ms;
    uint64_t raw_bytes;     /* packed record bytes before compression */
    uint64_t file_bytes;    /* size of the .zseg file */
    uint32_t blocks;
} reel_zseg_info_t;

/* Compresses the plain sealed segment at seg_path into zseg_path: writes
 * zseg_path + ".tmp", fdatasyncs it, renames it, fsyncs the directory.
 * The source must scan clean (every record whole, chain intact). Does not
 * remove seg_path. Errors: REEL_ECORRUPT/REEL_ECHAIN from the scan, -errno. */
int reel_zseg_compress(reel_io_t *io, const char *seg_path, const char *zseg_path);

/* Opens a .zseg: reads and checks its footer and index (not the blocks).
 * Errors: REEL_ECORRUPT, REEL_EVERSION, -errno. */
int reel_zseg_open(reel_io_t *io, const char *path, reel_zseg_t **out);
void reel_zseg_close(reel_zseg_t *z);
void reel_zseg_get_info(const reel_zseg_t *z, reel_zseg_info_t *out);

/* Index of the block holding offset (first_offset <= offset < next_offset),
 * or REEL_ENOTFOUND. */
int reel_zseg_find_block(const reel_zseg_t *z, uint64_t offset, uint32_t *block);
/* Decompresses block into a buffer owned by z (valid until the next call on
 * z); checks the compressed bytes' checksum first. The raw bytes are packed
 * records. Errors: REEL_ECORRUPT, -errno. */
int reel_zseg_read_block(reel_zseg_t *z, uint32_t block, const uint8_t **raw, uint32_t *raw_len,
                         uint64_t *first_offset);

/* Walks the packed records of a raw block: returns 0 and the record at
 * *pos (advancing *pos), REEL_EEND at the end of the block, or
 * REEL_ECORRUPT. Checks header and body checksums, not order or chain. */
int reel_zseg_next_record(const uint8_t *raw, uint32_t raw_len, uint32_t *pos, reel_record_t *rec,
                          uint64_t *prev_checksum);

/* Decompresses every block and checks every record, the offsets and the
 * chain, against the expected entering chain value. Fills s as the plain
 * scan does (status 0, REEL_ECORRUPT or REEL_ECHAIN, bad_offset, why). */
int reel_zseg_verify(reel_zseg_t *z, reel_scan_t *s);

#endif /* REEL_ZSEG_H */
