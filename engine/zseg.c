/*
 * zseg.c: sealed segments compressed with zstd (contract in zseg.h; the
 * byte layout is docs/zseg-format.md, to be merged into FORMAT.md as
 * "Compressed segment").
 *
 * A .zseg is written once, from a plain segment that scans clean, and is
 * never modified. The writer packs the records into blocks, compresses each
 * block as an independent zstd frame and writes the frames back to back
 * after a 4 KiB header block, then an index with one entry per block, then
 * a footer that ends the file:
 *
 *   [header 4096][frame 0][frame 1]...[frame n-1][index n * 32][footer 32]
 *
 * Invariants (cited by number below):
 *   1. A block holds whole records, each at an 8-byte stride with zero
 *      padding: the record bytes of the source, header and payload, byte for
 *      byte, so every checksum and the chain verify as before.
 *   2. A block is started when the next record would take the current one
 *      past REEL_ZBLOCK_RAW_BYTES; so a block holds at most that many bytes,
 *      or exactly one record that is bigger. Hence raw_len <= ZSEG_RAW_MAX.
 *   3. Frames lie back to back from ZSEG_HEADER_SIZE in block order, the
 *      index starts where the last frame ends, and the footer takes the last
 *      ZSEG_FOOTER_SIZE bytes. Every byte outside the frames is covered by a
 *      checksum or must hold a fixed value, and each frame is covered by the
 *      checksum in its index entry: open() checks all but the frames, which
 *      read_block() checks before it decompresses.
 *   4. The file is complete before its name exists: it is written as
 *      zseg_path + ".tmp", fdatasync'd, then renamed. A .zseg that opens is
 *      the whole file the writer meant.
 *
 * Reader checks never trust a length before it is bounded: the header is
 * checksummed and its counts are checked against each other and against the
 * footer, which must lie exactly at the end of the file, before anything is
 * allocated from them. Every allocation is bounded by the file's real size
 * or by ZSEG_RAW_MAX.
 */
#include "engine/zseg.h"
#include "engine/common.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include <zstd.h>

/* Limits of this file (not in limits.h: they follow from it). */

/* Largest stride of one record: its header and the largest payload, rounded
 * up to the record alignment: 4 MiB + 56 bytes. */
#define ZSEG_RECORD_MAX                                                             \
    ((REEL_RECORD_HEADER_SIZE + REEL_RECORD_PAYLOAD_MAX + REEL_RECORD_ALIGN - 1) & \
     ~(REEL_RECORD_ALIGN - 1))
/* Largest raw block (invariant 2): a full block or one record bigger than
 * that, whichever is larger. 4 MiB + 56 bytes with the current limits. */
#define ZSEG_RAW_MAX \
    (ZSEG_RECORD_MAX > REEL_ZBLOCK_RAW_BYTES ? ZSEG_RECORD_MAX : REEL_ZBLOCK_RAW_BYTES)
/* Largest compressed frame: zstd's worst case for the largest raw block. */
#define ZSEG_COMP_MAX ZSTD_COMPRESSBOUND(ZSEG_RAW_MAX)
/* zstd window the reader accepts: 8 MiB covers any frame of ZSEG_RAW_MAX
 * bytes, so a forged frame header cannot make the decoder ask for more. */
#define ZSEG_WINDOW_LOG_MAX 23

/* File layout (docs/zseg-format.md). */
#define ZSEG_MAGIC "REELZSG"         /* 8 bytes with its NUL */
#define ZSEG_FOOTER_MAGIC "REELZEND" /* 8 bytes, no NUL stored */
#define ZSEG_HEADER_SIZE 4096u       /* block 0: the header, then zeros */
#define ZSEG_HEADER_USED 112u        /* header bytes with fields; the rest are zero */
#define ZSEG_HEADER_SUMMED 104u      /* bytes [0, 104) under the header checksum */
#define ZSEG_ENTRY_SIZE 32u          /* one index entry */
#define ZSEG_FOOTER_SIZE 32u
#define ZSEG_NO_BLOCK UINT32_MAX     /* z->cached when no block is decoded */

_Static_assert(ZSEG_RAW_MAX <= UINT32_MAX / 2, "raw_len fits in u32 with room");
_Static_assert(ZSEG_COMP_MAX > ZSEG_RAW_MAX, "compress bound is a constant");
_Static_assert(ZSEG_COMP_MAX <= UINT32_MAX, "compressed length fits in u32");
_Static_assert((1ull << ZSEG_WINDOW_LOG_MAX) >= ZSEG_RAW_MAX, "window covers a block");
_Static_assert(ZSEG_HEADER_SUMMED + 8 == ZSEG_HEADER_USED, "checksum ends the fields");
_Static_assert(ZSEG_HEADER_USED <= ZSEG_HEADER_SIZE, "header fits its block");
_Static_assert(ZSEG_HEADER_SIZE == REEL_SEGMENT_HEADER_SIZE, "same header block as a segment");

/* One index entry, decoded. */
typedef struct zentry {
    uint64_t first_offset; /* offset of the block's first record */
    uint64_t file_pos;     /* file position of its zstd frame */
    uint32_t comp_len;     /* frame bytes */
    uint32_t raw_len;      /* packed record bytes once decompressed */
    uint64_t checksum;     /* XXH3-64 of the frame bytes */
} zentry_t;

/* The header, decoded. */
typedef struct zheader {
    reel_zseg_info_t info;    /* what get_info reports (file_bytes, blocks too) */
    uint64_t index_pos;       /* file position of the index */
    uint32_t src_block_size;  /* of the source segment, kept for tools */
    uint64_t src_segment_size;
    uint64_t src_created_ms;
} zheader_t;

struct reel_zseg {
    reel_io_t *io;      /* borrowed: must outlive z */
    int fd;             /* the .zseg, read only; -1 when not open */
    zheader_t hdr;      /* checked by open */
    zentry_t *entries;  /* hdr.info.blocks entries, checked by open */
    uint8_t *comp;      /* one frame: comp_cap bytes */
    uint8_t *raw;       /* one decoded block: raw_cap bytes */
    uint32_t comp_cap;  /* largest comp_len in the index */
    uint32_t raw_cap;   /* largest raw_len in the index */
    uint32_t cached;    /* block whose bytes are in raw, or ZSEG_NO_BLOCK */
    ZSTD_DCtx *dctx;    /* reused for every block */
};

/* Reads exactly len bytes at off. A short read means the file is shorter
 * than its own header says: corruption, not an I/O error. */
static int read_exact(reel_io_t *io, int fd, void *buf, size_t len, uint64_t off)
{
    ssize_t n = io->read(io, fd, buf, len, off);
    if (n < 0)
        return (int)n;
    return (size_t)n == len ? 0 : REEL_ECORRUPT;
}

/* ---- header, index entries and footer: encoding ---- */

static void header_encode(uint8_t *b, const zheader_t *h)
{
    const reel_zseg_info_t *i = &h->info;
    memset(b, 0, ZSEG_HEADER_SIZE);
    memcpy(b, ZSEG_MAGIC, 8);
    reel_store_u32(b + 8, REEL_FORMAT_VERSION);
    reel_store_u32(b + 12, i->blocks);
    reel_store_u64(b + 16, i->first_offset);
    reel_store_u64(b + 24, i->next_offset);
    reel_store_u64(b + 32, i->prev_checksum);
    reel_store_u64(b + 40, i->last_checksum);
    reel_store_u64(b + 48, i->last_time_ms);
    reel_store_u64(b + 56, i->raw_bytes);
    reel_store_u64(b + 64, h->index_pos);
    reel_store_u64(b + 72, i->file_bytes);
    reel_store_u32(b + 80, h->src_block_size);
    reel_store_u32(b + 84, 0); /* reserved */
    reel_store_u64(b + 88, h->src_segment_size);
    reel_store_u64(b + 96, h->src_created_ms);
    reel_store_u64(b + ZSEG_HEADER_SUMMED, XXH3_64bits(b, ZSEG_HEADER_SUMMED));
}

static void entry_encode(uint8_t *p, const zentry_t *e)
{
    reel_store_u64(p + 0, e->first_offset);
    reel_store_u64(p + 8, e->file_pos);
    reel_store_u32(p + 16, e->comp_len);
    reel_store_u32(p + 20, e->raw_len);
    reel_store_u64(p + 24, e->checksum);
}

static void entry_decode(const uint8_t *p, zentry_t *e)
{
    e->first_offset = reel_load_u64(p + 0);
    e->file_pos = reel_load_u64(p + 8);
    e->comp_len = reel_load_u32(p + 16);
    e->raw_len = reel_load_u32(p + 20);
    e->checksum = reel_load_u64(p + 24);
}

static void footer_encode(uint8_t *p, uint64_t index_pos, uint32_t blocks, uint64_t index_sum)
{
    reel_store_u64(p + 0, index_pos);
    reel_store_u32(p + 8, blocks);
    reel_store_u32(p + 12, 0); /* reserved */
    reel_store_u64(p + 16, index_sum);
    memcpy(p + 24, ZSEG_FOOTER_MAGIC, 8);
}

/* ---- reader: header, footer and index checks ---- */

/* Decodes block 0. Checksum before version, as the segment header does:
 * a damaged version field is corruption, not a newer format. */
static int header_decode(const uint8_t *b, zheader_t *h)
{
    reel_zseg_info_t *i = &h->info;
    if (memcmp(b, ZSEG_MAGIC, 8) != 0)
        return REEL_ECORRUPT;
    if (XXH3_64bits(b, ZSEG_HEADER_SUMMED) != reel_load_u64(b + ZSEG_HEADER_SUMMED))
        return REEL_ECORRUPT;
    if (reel_load_u32(b + 8) != REEL_FORMAT_VERSION)
        return REEL_EVERSION;
    if (reel_load_u32(b + 84) != 0 ||
        !reel_bytes_zero(b + ZSEG_HEADER_USED, ZSEG_HEADER_SIZE - ZSEG_HEADER_USED))
        return REEL_ECORRUPT;
    i->blocks = reel_load_u32(b + 12);
    i->first_offset = reel_load_u64(b + 16);
    i->next_offset = reel_load_u64(b + 24);
    i->prev_checksum = reel_load_u64(b + 32);
    i->last_checksum = reel_load_u64(b + 40);
    i->last_time_ms = reel_load_u64(b + 48);
    i->raw_bytes = reel_load_u64(b + 56);
    h->index_pos = reel_load_u64(b + 64);
    i->file_bytes = reel_load_u64(b + 72);
    h->src_block_size = reel_load_u32(b + 80);
    h->src_segment_size = reel_load_u64(b + 88);
    h->src_created_ms = reel_load_u64(b + 96);
    return 0;
}

/* The header's numbers agree with each other. A checksummed header that
 * fails here was written by a broken writer; either way it is corrupt. */
static int header_check(const zheader_t *h)
{
    const reel_zseg_info_t *i = &h->info;
    if (h->src_block_size != REEL_BLOCK_SIZE || h->src_segment_size < REEL_SEGMENT_SIZE_MIN ||
        h->src_segment_size > REEL_SEGMENT_SIZE_MAX || h->src_segment_size % REEL_BLOCK_SIZE != 0)
        return REEL_ECORRUPT;
    /* The records came from the source's record area, each >= 56 bytes. */
    if (i->raw_bytes > h->src_segment_size - REEL_SEGMENT_HEADER_SIZE)
        return REEL_ECORRUPT;
    if (i->next_offset < i->first_offset)
        return REEL_ECORRUPT;
    uint64_t records = i->next_offset - i->first_offset;
    if (records > i->raw_bytes / REEL_RECORD_HEADER_SIZE || i->blocks > records)
        return REEL_ECORRUPT;
    if (records == 0 && (i->blocks != 0 || i->raw_bytes != 0 || i->last_time_ms != 0 ||
                         i->last_checksum != i->prev_checksum))
        return REEL_ECORRUPT;
    if (records != 0 && i->blocks == 0)
        return REEL_ECORRUPT;
    /* Invariant 3: frames, then the index, then the footer, nothing else. */
    if (h->index_pos < ZSEG_HEADER_SIZE + (uint64_t)i->blocks ||
        h->index_pos - ZSEG_HEADER_SIZE > (uint64_t)i->blocks * ZSEG_COMP_MAX)
        return REEL_ECORRUPT;
    if (i->file_bytes < h->index_pos ||
        i->file_bytes - h->index_pos != (uint64_t)i->blocks * ZSEG_ENTRY_SIZE + ZSEG_FOOTER_SIZE)
        return REEL_ECORRUPT;
    return 0;
}

/* Reads the footer, which must end the file exactly where the header says
 * it does: a truncated or extended file fails here, before any allocation
 * sized by the header. Returns the index checksum in *index_sum. */
static int footer_load(reel_zseg_t *z, uint64_t *index_sum)
{
    const zheader_t *h = &z->hdr;
    uint8_t f[ZSEG_FOOTER_SIZE + 1]; /* one byte more: there must be none */
    uint64_t at = h->info.file_bytes - ZSEG_FOOTER_SIZE;
    ssize_t n = z->io->read(z->io, z->fd, f, sizeof(f), at);
    if (n < 0)
        return (int)n;
    if ((size_t)n != ZSEG_FOOTER_SIZE)
        return REEL_ECORRUPT;
    if (memcmp(f + 24, ZSEG_FOOTER_MAGIC, 8) != 0 || reel_load_u64(f) != h->index_pos ||
        reel_load_u32(f + 8) != h->info.blocks || reel_load_u32(f + 12) != 0)
        return REEL_ECORRUPT;
    *index_sum = reel_load_u64(f + 16);
    return 0;
}

/* One entry's own bounds (invariant 2). */
static bool entry_ok(const zentry_t *e)
{
    return e->comp_len > 0 && e->comp_len <= ZSEG_COMP_MAX && e->raw_len >= REEL_RECORD_HEADER_SIZE &&
           e->raw_len <= ZSEG_RAW_MAX && e->raw_len % REEL_RECORD_ALIGN == 0;
}

/* The entries tile the file and the offsets (invariant 3): frames back to
 * back from the header to the index, first offsets strictly increasing from
 * the header's first_offset, each block holding no more records than its
 * bytes can (56 bytes at least each), raw lengths summing to raw_bytes. */
static int entries_check(const reel_zseg_t *z)
{
    const reel_zseg_info_t *i = &z->hdr.info;
    uint64_t pos = ZSEG_HEADER_SIZE, raw = 0;
    for (uint32_t b = 0; b < i->blocks; b++) {
        const zentry_t *e = &z->entries[b];
        uint64_t end = b + 1 < i->blocks ? z->entries[b + 1].first_offset : i->next_offset;
        if (!entry_ok(e) || e->file_pos != pos)
            return REEL_ECORRUPT;
        if (b == 0 && e->first_offset != i->first_offset)
            return REEL_ECORRUPT;
        if (end <= e->first_offset || end - e->first_offset > e->raw_len / REEL_RECORD_HEADER_SIZE)
            return REEL_ECORRUPT;
        pos += e->comp_len;
        raw += e->raw_len;
    }
    if (pos != z->hdr.index_pos || raw != i->raw_bytes)
        return REEL_ECORRUPT;
    return 0;
}

/* Reads the index (its size is bounded: the footer read proved the file
 * holds it), checks its checksum and decodes it into z->entries. */
static int index_load(reel_zseg_t *z, uint64_t index_sum)
{
    static const uint8_t none[1] = {0};
    uint32_t blocks = z->hdr.info.blocks;
    size_t len = (size_t)blocks * ZSEG_ENTRY_SIZE;
    if (blocks == 0)
        return XXH3_64bits(none, 0) == index_sum ? 0 : REEL_ECORRUPT;
    uint8_t *buf = malloc(len);
    z->entries = malloc((size_t)blocks * sizeof(zentry_t));
    if (buf == NULL || z->entries == NULL) {
        free(buf);
        return -ENOMEM;
    }
    int rc = read_exact(z->io, z->fd, buf, len, z->hdr.index_pos);
    if (rc == 0 && XXH3_64bits(buf, len) != index_sum)
        rc = REEL_ECORRUPT;
    for (uint32_t b = 0; rc == 0 && b < blocks; b++)
        entry_decode(buf + (size_t)b * ZSEG_ENTRY_SIZE, &z->entries[b]);
    free(buf);
    return rc == 0 ? entries_check(z) : rc;
}

/* Sizes the block buffers to the largest block in the index (bounded by
 * entry_ok) and makes the decompression context. */
static int buffers_alloc(reel_zseg_t *z)
{
    for (uint32_t b = 0; b < z->hdr.info.blocks; b++) {
        if (z->entries[b].comp_len > z->comp_cap)
            z->comp_cap = z->entries[b].comp_len;
        if (z->entries[b].raw_len > z->raw_cap)
            z->raw_cap = z->entries[b].raw_len;
    }
    if (z->hdr.info.blocks == 0)
        return 0; /* nothing to read, ever */
    z->comp = malloc(z->comp_cap);
    z->raw = malloc(z->raw_cap);
    z->dctx = ZSTD_createDCtx();
    if (z->comp == NULL || z->raw == NULL || z->dctx == NULL)
        return -ENOMEM;
    size_t zr = ZSTD_DCtx_setParameter(z->dctx, ZSTD_d_windowLogMax, ZSEG_WINDOW_LOG_MAX);
    return ZSTD_isError(zr) ? -ENOMEM : 0;
}

static int open_checked(reel_zseg_t *z)
{
    uint8_t block[ZSEG_HEADER_SIZE];
    uint64_t index_sum = 0;
    int rc = read_exact(z->io, z->fd, block, sizeof(block), 0);
    if (rc == 0)
        rc = header_decode(block, &z->hdr);
    if (rc == 0)
        rc = header_check(&z->hdr);
    if (rc == 0)
        rc = footer_load(z, &index_sum);
    if (rc == 0)
        rc = index_load(z, index_sum);
    if (rc == 0)
        rc = buffers_alloc(z);
    return rc;
}

int reel_zseg_open(reel_io_t *io, const char *path, reel_zseg_t **out)
{
    REEL_ASSERT(io != NULL);
    REEL_ASSERT(out != NULL);
    reel_zseg_t *z = calloc(1, sizeof(*z));
    if (z == NULL)
        return -ENOMEM;
    z->io = io;
    z->cached = ZSEG_NO_BLOCK;
    z->fd = io->open(io, path, O_RDONLY, 0);
    if (z->fd < 0) {
        int rc = z->fd;
        free(z);
        return rc;
    }
    int rc = open_checked(z);
    if (rc != 0) {
        reel_zseg_close(z);
        return rc;
    }
    *out = z;
    return 0;
}

void reel_zseg_close(reel_zseg_t *z)
{
    if (z == NULL)
        return;
    if (z->fd >= 0)
        (void)z->io->close(z->io, z->fd); /* read only: nothing to lose */
    ZSTD_freeDCtx(z->dctx);
    free(z->entries);
    free(z->comp);
    free(z->raw);
    free(z);
}

void reel_zseg_get_info(const reel_zseg_t *z, reel_zseg_info_t *out)
{
    REEL_ASSERT(z != NULL);
    *out = z->hdr.info;
}

/* ---- reader: blocks and records ---- */

int reel_zseg_find_block(const reel_zseg_t *z, uint64_t offset, uint32_t *block)
{
    const reel_zseg_info_t *i = &z->hdr.info;
    if (offset < i->first_offset || offset >= i->next_offset)
        return REEL_ENOTFOUND;
    REEL_ASSERT(i->blocks > 0); /* header_check: records imply blocks */
    /* The last block whose first offset is <= offset: it is in [lo, hi). */
    uint32_t lo = 0, hi = i->blocks;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (z->entries[mid].first_offset <= offset)
            lo = mid;
        else
            hi = mid;
    }
    REEL_ASSERT(z->entries[lo].first_offset <= offset);
    *block = lo;
    return 0;
}

/* Reads, checks and decompresses block b into z->raw, always from the file
 * (verify relies on that). The frame checksum is checked before zstd sees a
 * byte, and the frame must decode to exactly raw_len bytes. */
static int block_load(reel_zseg_t *z, uint32_t b)
{
    const zentry_t *e = &z->entries[b];
    REEL_ASSERT(e->comp_len <= z->comp_cap);
    REEL_ASSERT(e->raw_len <= z->raw_cap);
    z->cached = ZSEG_NO_BLOCK; /* raw is about to change */
    int rc = read_exact(z->io, z->fd, z->comp, e->comp_len, e->file_pos);
    if (rc != 0)
        return rc;
    if (XXH3_64bits(z->comp, e->comp_len) != e->checksum)
        return REEL_ECORRUPT;
    size_t n = ZSTD_decompressDCtx(z->dctx, z->raw, e->raw_len, z->comp, e->comp_len);
    if (ZSTD_isError(n) || n != e->raw_len)
        return REEL_ECORRUPT;
    z->cached = b;
    return 0;
}

int reel_zseg_read_block(reel_zseg_t *z, uint32_t block, const uint8_t **raw, uint32_t *raw_len,
                         uint64_t *first_offset)
{
    REEL_ASSERT(z != NULL);
    REEL_ASSERT(block < z->hdr.info.blocks);
    /* The file never changes, so a block already decoded is still good. */
    if (z->cached != block) {
        int rc = block_load(z, block);
        if (rc != 0)
            return rc;
    }
    *raw = z->raw;
    *raw_len = z->entries[block].raw_len;
    *first_offset = z->entries[block].first_offset;
    return 0;
}

int reel_zseg_next_record(const uint8_t *raw, uint32_t raw_len, uint32_t *pos, reel_record_t *rec,
                          uint64_t *prev_checksum)
{
    uint32_t at = *pos;
    reel_record_header_t h;
    if (at == raw_len)
        return REEL_EEND;
    if (at > raw_len || at % REEL_RECORD_ALIGN != 0 || raw_len - at < REEL_RECORD_HEADER_SIZE)
        return REEL_ECORRUPT;
    if (reel_record_decode_header(raw + at, &h) != 0)
        return REEL_ECORRUPT;
    uint64_t stride = reel_record_stride(h.length);
    if (stride > raw_len - at)
        return REEL_ECORRUPT;
    const uint8_t *payload = raw + at + REEL_RECORD_HEADER_SIZE;
    if (!reel_record_body_ok(&h, payload))
        return REEL_ECORRUPT;
    /* Invariant 1: padding is zero, so every raw byte is accounted for. */
    if (!reel_bytes_zero(payload + h.length, stride - REEL_RECORD_HEADER_SIZE - h.length))
        return REEL_ECORRUPT;
    *rec = (reel_record_t){h.offset, h.time_ms, h.type, h.flags, h.length, payload, h.checksum};
    if (prev_checksum != NULL)
        *prev_checksum = h.prev_checksum;
    *pos = at + (uint32_t)stride;
    return 0;
}

/* ---- verify ---- */

/* Records a failure in s. bad_pos is the file position of the frame that
 * holds the bad record (a .zseg has no per-record file position). */
__attribute__((format(printf, 4, 5))) static int verify_fail(reel_scan_t *s, int rc,
                                                             uint64_t bad_pos, const char *fmt, ...)
{
    va_list ap;
    s->status = rc;
    s->bad_pos = bad_pos;
    s->bad_offset = s->next_offset;
    va_start(ap, fmt);
    vsnprintf(s->why, sizeof(s->why), fmt, ap);
    va_end(ap);
    return rc;
}

/* Checks every record of block b: whole, dense offsets, the chain. */
static int verify_block(reel_zseg_t *z, uint32_t b, reel_scan_t *s)
{
    const zentry_t *e = &z->entries[b];
    reel_record_t rec;
    uint64_t prev = 0;
    uint32_t pos = 0;
    int rc = block_load(z, b);
    if (rc != 0)
        return verify_fail(s, rc, e->file_pos, "block %" PRIu32 ": %s", b, reel_strerror(rc));
    if (e->first_offset != s->next_offset)
        return verify_fail(s, REEL_ECORRUPT, e->file_pos,
                           "block %" PRIu32 " starts at offset %" PRIu64 ", expected %" PRIu64, b,
                           e->first_offset, s->next_offset);
    while ((rc = reel_zseg_next_record(z->raw, e->raw_len, &pos, &rec, &prev)) == 0) {
        if (rec.offset != s->next_offset)
            return verify_fail(s, REEL_ECORRUPT, e->file_pos,
                               "record has offset %" PRIu64 ", expected %" PRIu64, rec.offset,
                               s->next_offset);
        if (prev != s->last_checksum)
            return verify_fail(s, REEL_ECHAIN, e->file_pos,
                               "hash chain broken before offset %" PRIu64, rec.offset);
        s->next_offset = rec.offset + 1;
        s->last_checksum = rec.checksum;
        s->last_time_ms = rec.time_ms;
        s->records++;
    }
    s->end_pos += pos;
    if (rc != REEL_EEND)
        return verify_fail(s, rc, e->file_pos, "bad record at byte %" PRIu32 " of block %" PRIu32,
                           pos, b);
    return 0;
}

int reel_zseg_verify(reel_zseg_t *z, reel_scan_t *s)
{
    REEL_ASSERT(z != NULL);
    REEL_ASSERT(s != NULL);
    const reel_zseg_info_t *i = &z->hdr.info;
    memset(s, 0, sizeof(*s));
    s->next_offset = i->first_offset;
    s->last_checksum = i->prev_checksum;
    for (uint32_t b = 0; b < i->blocks; b++) {
        if (verify_block(z, b, s) != 0)
            return s->status;
    }
    /* The blocks agree with one another; now they must agree with the
     * header, which readers trust for the segment's extent and chain. */
    if (s->next_offset != i->next_offset || s->last_checksum != i->last_checksum ||
        s->last_time_ms != i->last_time_ms || s->end_pos != i->raw_bytes)
        return verify_fail(s, REEL_ECORRUPT, z->hdr.index_pos,
                           "records end at offset %" PRIu64 ", the header says %" PRIu64
                           " (or the last checksum, time or size differ)",
                           s->next_offset, i->next_offset);
    REEL_ASSERT(s->records == i->next_offset - i->first_offset);
    return 0;
}

/* ---- writer ---- */

/* The state of one compression: the source image, the block being filled
 * and the index so far. */
typedef struct zpack {
    reel_io_t *io;          /* borrowed */
    int fd;                 /* the .tmp file, -1 when closed */
    const uint8_t *image;   /* the source segment image */
    ZSTD_CCtx *cctx;        /* reused for every block */
    uint8_t *raw;           /* the block being filled: ZSEG_RAW_MAX bytes */
    uint8_t *comp;          /* its frame: comp_cap bytes */
    size_t comp_cap;        /* ZSTD_compressBound(ZSEG_RAW_MAX) */
    uint32_t raw_len;       /* bytes in raw */
    uint64_t raw_first;     /* offset of raw's first record */
    uint64_t raw_bytes;     /* bytes in the blocks written so far */
    uint64_t next_offset;   /* one past the last record packed */
    uint64_t file_pos;      /* where the next frame goes */
    zentry_t *entries;      /* the index so far */
    uint32_t blocks;        /* entries used */
    uint32_t entries_cap;   /* entries allocated */
} zpack_t;

/* Compresses the filled block, writes its frame and adds its entry. */
static int pack_flush(zpack_t *p)
{
    REEL_ASSERT(p->raw_len > 0);
    REEL_ASSERT(p->raw_len <= ZSEG_RAW_MAX);
    if (p->blocks == p->entries_cap) {
        uint32_t cap = p->entries_cap == 0 ? 64 : p->entries_cap * 2;
        zentry_t *grown = realloc(p->entries, (size_t)cap * sizeof(zentry_t));
        if (grown == NULL)
            return -ENOMEM;
        p->entries = grown;
        p->entries_cap = cap;
    }
    size_t n = ZSTD_compressCCtx(p->cctx, p->comp, p->comp_cap, p->raw, p->raw_len,
                                 REEL_ZSTD_LEVEL);
    /* With a bound-sized buffer zstd fails only to allocate. */
    if (ZSTD_isError(n))
        return -ENOMEM;
    REEL_ASSERT(n <= ZSEG_COMP_MAX);
    int rc = p->io->write(p->io, p->fd, p->comp, n, p->file_pos);
    if (rc != 0)
        return rc;
    p->entries[p->blocks++] = (zentry_t){p->raw_first, p->file_pos, (uint32_t)n, p->raw_len,
                                         XXH3_64bits(p->comp, n)};
    p->file_pos += n;
    p->raw_bytes += p->raw_len;
    p->raw_len = 0;
    return 0;
}

/* Scan callback: packs one whole record (invariants 1 and 2). The scan
 * has checked it; a non-zero return stops the scan with that status. */
static int pack_record(void *ctx, const reel_record_t *rec, uint64_t pos)
{
    zpack_t *p = ctx;
    uint32_t used = REEL_RECORD_HEADER_SIZE + rec->length;
    uint32_t stride = (uint32_t)reel_record_stride(rec->length);
    REEL_ASSERT(stride <= ZSEG_RECORD_MAX);
    REEL_ASSERT(rec->offset == p->next_offset);
    if (p->raw_len > 0 && p->raw_len + stride > REEL_ZBLOCK_RAW_BYTES) {
        int rc = pack_flush(p);
        if (rc != 0)
            return rc;
    }
    if (p->raw_len == 0)
        p->raw_first = rec->offset;
    memcpy(p->raw + p->raw_len, p->image + pos, used);
    /* The source's padding is zero by contract; write zeros regardless so
     * the .zseg's padding rule holds whatever the source held there. */
    memset(p->raw + p->raw_len + used, 0, stride - used);
    p->raw_len += stride;
    p->next_offset = rec->offset + 1;
    return 0;
}

/* Writes the index and footer together, then the header at byte 0. */
static int pack_finish(zpack_t *p, const reel_segment_header_t *src, const reel_scan_t *s)
{
    size_t len = (size_t)p->blocks * ZSEG_ENTRY_SIZE;
    uint8_t *buf = malloc(len + ZSEG_FOOTER_SIZE);
    uint8_t header[ZSEG_HEADER_SIZE];
    if (buf == NULL)
        return -ENOMEM;
    for (uint32_t b = 0; b < p->blocks; b++)
        entry_encode(buf + (size_t)b * ZSEG_ENTRY_SIZE, &p->entries[b]);
    footer_encode(buf + len, p->file_pos, p->blocks, XXH3_64bits(buf, len));
    int rc = p->io->write(p->io, p->fd, buf, len + ZSEG_FOOTER_SIZE, p->file_pos);
    free(buf);
    if (rc != 0)
        return rc;
    zheader_t h = {
        .info = {src->first_offset, s->next_offset, src->prev_checksum, s->last_checksum,
                 s->last_time_ms, p->raw_bytes, p->file_pos + len + ZSEG_FOOTER_SIZE, p->blocks},
        .index_pos = p->file_pos,
        .src_block_size = src->block_size,
        .src_segment_size = src->segment_size,
        .src_created_ms = src->created_ms,
    };
    REEL_ASSERT(header_check(&h) == 0); /* the reader must accept what we write */
    header_encode(header, &h);
    rc = p->io->write(p->io, p->fd, header, sizeof(header), 0);
    return rc != 0 ? rc : p->io->datasync(p->io, p->fd);
}

/* Packs the clean-scanning image into the open .tmp file and syncs it. */
static int pack_image(zpack_t *p, const reel_segment_header_t *src)
{
    reel_scan_t s;
    p->cctx = ZSTD_createCCtx();
    p->raw = malloc(ZSEG_RAW_MAX);
    p->comp_cap = ZSTD_compressBound(ZSEG_RAW_MAX);
    p->comp = malloc(p->comp_cap);
    if (p->cctx == NULL || p->raw == NULL || p->comp == NULL)
        return -ENOMEM;
    p->next_offset = src->first_offset;
    p->file_pos = ZSEG_HEADER_SIZE;
    /* Not the last segment: every bad record is corruption, never a torn
     * tail, and an unfinished group fails the scan. */
    int rc = reel_segment_scan(p->image, src->segment_size, src, false, pack_record, p, &s);
    if (rc != 0)
        return rc;
    if (p->raw_len > 0 && (rc = pack_flush(p)) != 0)
        return rc;
    REEL_ASSERT(p->next_offset == s.next_offset);
    REEL_ASSERT(p->raw_bytes <= s.end_pos - REEL_SEGMENT_HEADER_SIZE);
    return pack_finish(p, src, &s);
}

/* Reads the whole source segment; its header gives its size. */
static int source_read(reel_io_t *io, const char *path, reel_segment_header_t *hdr,
                       uint8_t **image)
{
    uint8_t block[REEL_SEGMENT_HEADER_SIZE];
    int fd = io->open(io, path, O_RDONLY, 0);
    if (fd < 0)
        return fd;
    int rc = read_exact(io, fd, block, sizeof(block), 0);
    if (rc == 0)
        rc = reel_segment_header_decode(block, hdr);
    if (rc == 0) {
        *image = malloc(hdr->segment_size); /* <= REEL_SEGMENT_SIZE_MAX */
        rc = *image == NULL ? -ENOMEM : read_exact(io, fd, *image, hdr->segment_size, 0);
    }
    (void)io->close(io, fd); /* read only: nothing to lose */
    if (rc != 0) {
        free(*image);
        *image = NULL;
    }
    return rc;
}

/* zseg_path + ".tmp", and the directory that holds zseg_path. */
static int paths_make(const char *zseg_path, char **tmp, char **dir)
{
    size_t len = strlen(zseg_path);
    const char *slash = strrchr(zseg_path, '/');
    *tmp = malloc(len + 5);
    *dir = malloc(len + 2);
    if (*tmp == NULL || *dir == NULL) {
        free(*tmp);
        free(*dir);
        *tmp = *dir = NULL;
        return -ENOMEM;
    }
    memcpy(*tmp, zseg_path, len);
    memcpy(*tmp + len, ".tmp", 5);
    if (slash == NULL) {
        memcpy(*dir, ".", 2);
    } else if (slash == zseg_path) {
        memcpy(*dir, "/", 2);
    } else {
        memcpy(*dir, zseg_path, (size_t)(slash - zseg_path));
        (*dir)[slash - zseg_path] = '\0';
    }
    return 0;
}

/* Writes the whole .tmp file (invariant 4): create, pack, sync, close. */
static int tmp_write(reel_io_t *io, const char *tmp, const reel_segment_header_t *src,
                     const uint8_t *image)
{
    zpack_t p = {.io = io, .image = image};
    p.fd = io->open(io, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (p.fd < 0)
        return p.fd;
    int rc = pack_image(&p, src);
    int rc_close = io->close(io, p.fd);
    ZSTD_freeCCtx(p.cctx);
    free(p.raw);
    free(p.comp);
    free(p.entries);
    return rc != 0 ? rc : rc_close;
}

int reel_zseg_compress(reel_io_t *io, const char *seg_path, const char *zseg_path)
{
    reel_segment_header_t src;
    uint8_t *image = NULL;
    char *tmp = NULL, *dir = NULL;
    REEL_ASSERT(io != NULL);
    int rc = paths_make(zseg_path, &tmp, &dir);
    if (rc != 0)
        return rc;
    rc = source_read(io, seg_path, &src, &image);
    if (rc == 0)
        rc = tmp_write(io, tmp, &src, image);
    free(image);
    if (rc == 0)
        rc = io->rename(io, tmp, zseg_path);
    /* On failure no .tmp survives, not even a stale one from an earlier
     * crash: nothing else is left to undo (it may not exist: ENOENT). */
    if (rc != 0)
        (void)io->unlink(io, tmp);
    /* After the rename the .zseg is whole and synced (invariant 4); if the
     * directory sync fails its name may not survive a crash, which the
     * caller learns from rc and answers by keeping seg_path. */
    if (rc == 0)
        rc = reel_io_fsync_dir(io, dir);
    free(tmp);
    free(dir);
    return rc;
}
