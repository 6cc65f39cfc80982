/*
 * test_zseg.c: compressed sealed segments (engine/zseg.h).
 *
 * Each test builds plain segment images itself (segment header, records at
 * 8-byte strides with a correct chain, zero padding to a block where a
 * batch would end), compresses them through the sync backend, and reads
 * everything back; the negative tests damage the source or the .zseg byte
 * by byte and expect REEL_ECORRUPT / REEL_ECHAIN / REEL_EVERSION, never a
 * crash. The .zseg layout the damage tests rely on is docs/zseg-format.md.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "engine/common.h"
#include "engine/io.h"
#include "engine/record.h"
#include "engine/segment.h"
#include "engine/zseg.h"
#include "tests/harness.h"

/* .zseg layout constants the damage tests need (docs/zseg-format.md). */
#define ZH_SIZE 4096u
#define ZH_SUMMED 104u
#define ZENTRY 32u
#define ZFOOTER 32u

/* One record as the test wrote it. */
typedef struct trec {
    uint64_t time_ms;
    uint64_t checksum;
    uint32_t length;
    uint16_t type;
    uint16_t flags;
    uint8_t *payload;
} trec_t;

/* A plain segment image under construction. */
typedef struct tseg {
    reel_segment_header_t hdr;
    uint8_t *image;         /* hdr.segment_size bytes */
    uint64_t pos;           /* where the next record goes */
    uint64_t next_offset;
    uint64_t last_checksum; /* chain value for the next record */
    uint64_t last_time_ms;
    uint32_t count;
    uint32_t cap;
    trec_t *recs;
} tseg_t;

static uint64_t stride8(uint32_t length)
{
    return reel_align_up((uint64_t)REEL_RECORD_HEADER_SIZE + length, REEL_RECORD_ALIGN);
}

static void tseg_init(tseg_t *t, uint64_t size, uint64_t first_offset, uint64_t prev_checksum)
{
    memset(t, 0, sizeof(*t));
    t->hdr = (reel_segment_header_t){REEL_FORMAT_VERSION, REEL_BLOCK_SIZE, size, first_offset,
                                     prev_checksum, 1760000000000ull};
    t->image = calloc(1, size);
    cr_assert_not_null(t->image);
    reel_segment_header_encode(t->image, &t->hdr);
    t->pos = REEL_SEGMENT_HEADER_SIZE;
    t->next_offset = first_offset;
    t->last_checksum = prev_checksum;
}

static bool tseg_fits(const tseg_t *t, uint32_t len)
{
    return t->pos + stride8(len) <= t->hdr.segment_size;
}

/* Appends one record; the chain value comes from t->last_checksum. */
static void tseg_add(tseg_t *t, const void *payload, uint32_t len, uint16_t flags)
{
    cr_assert(tseg_fits(t, len), "test segment too small");
    if (t->count == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 256;
        t->recs = realloc(t->recs, t->cap * sizeof(trec_t));
        cr_assert_not_null(t->recs);
    }
    uint64_t time_ms = 1760000000000ull + t->next_offset * 3;
    uint16_t type = (uint16_t)(1 + t->next_offset % 7);
    reel_record_header_t h = {.prev_checksum = t->last_checksum, .offset = t->next_offset,
                              .time_ms = time_ms, .length = len, .type = type, .flags = flags};
    reel_record_encode(t->image + t->pos, &h, payload);
    trec_t *r = &t->recs[t->count++];
    *r = (trec_t){time_ms, h.checksum, len, type, flags, malloc(len ? len : 1)};
    memcpy(r->payload, payload, len);
    t->pos += stride8(len);
    t->next_offset++;
    t->last_checksum = h.checksum;
    t->last_time_ms = time_ms;
}

/* Zero padding to the next block, as after a write batch. */
static void tseg_pad_block(tseg_t *t)
{
    t->pos = reel_align_up(t->pos, REEL_BLOCK_SIZE);
}

static void tseg_free(tseg_t *t)
{
    for (uint32_t i = 0; i < t->count; i++)
        free(t->recs[i].payload);
    free(t->recs);
    free(t->image);
}

static void tseg_write(const tseg_t *t, const char *path)
{
    cr_assert_eq(reel_test_write_file(path, t->image, t->hdr.segment_size), 0);
}

/* A realistic event: mostly repeated keys and vocabulary, some unique ids. */
static uint32_t json_event(char *buf, size_t cap, uint64_t i, uint64_t *rng)
{
    static const char *kinds[] = {"order.created", "order.paid", "order.shipped", "cart.updated",
                                  "user.signed_in"};
    static const char *countries[] = {"DE", "FR", "US", "GB", "NL", "ES"};
    uint64_t r = reel_test_rand(rng);
    int n = snprintf(buf, cap,
                     "{\"event\":\"%s\",\"order_id\":\"ord_%08llu\",\"customer\":{\"id\":\"cus_%06u\","
                     "\"email\":\"user%u@example.com\",\"country\":\"%s\"},\"items\":[{\"sku\":"
                     "\"SKU-%05u\",\"qty\":%u,\"price_cents\":%u}],\"currency\":\"EUR\",\"ts\":"
                     "\"2026-03-%02uT%02u:%02u:%02u.%03uZ\",\"source\":\"web\",\"session\":\"%016llx\"}",
                     kinds[r % 5], (unsigned long long)i, (unsigned)(r >> 8) % 50000,
                     (unsigned)(r >> 8) % 50000, countries[(r >> 24) % 6],
                     (unsigned)(r >> 28) % 2000, 1 + (unsigned)(r >> 40) % 5,
                     100 + (unsigned)(r >> 44) % 90000, 1 + (unsigned)(i / 86400) % 28,
                     (unsigned)(i / 3600) % 24, (unsigned)(i / 60) % 60, (unsigned)i % 60,
                     (unsigned)(r >> 52) % 1000, (unsigned long long)reel_test_rand(rng));
    cr_assert(n > 0 && (size_t)n < cap);
    return (uint32_t)n;
}

static void random_bytes(uint8_t *p, size_t n, uint64_t *rng)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)reel_test_rand(rng);
}

/* Fills t with JSON events up to about fill bytes of the record area,
 * padding to a block every 7 records as batches would. */
static void fill_json(tseg_t *t, uint64_t fill, uint64_t *rng)
{
    char buf[1024];
    while (t->pos < REEL_SEGMENT_HEADER_SIZE + fill) {
        uint32_t n = json_event(buf, sizeof(buf), t->next_offset, rng);
        if (!tseg_fits(t, n))
            break;
        tseg_add(t, buf, n, 0);
        if (t->count % 7 == 0)
            tseg_pad_block(t);
    }
}

static reel_io_t *io_new(void)
{
    reel_io_t *io = NULL;
    cr_assert_eq(reel_io_sync_create(&io), 0);
    return io;
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    return (uint64_t)st.st_size;
}

static uint32_t dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    uint32_t n = 0;
    cr_assert_not_null(d);
    while ((de = readdir(d)) != NULL)
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* Byte-level access to a .zseg for the damage tests. */
static void file_pread(const char *path, void *buf, size_t len, uint64_t off)
{
    int fd = open(path, O_RDONLY);
    cr_assert(fd >= 0);
    cr_assert_eq(pread(fd, buf, len, (off_t)off), (ssize_t)len);
    close(fd);
}

static void file_pwrite(const char *path, const void *buf, size_t len, uint64_t off)
{
    int fd = open(path, O_WRONLY);
    cr_assert(fd >= 0);
    cr_assert_eq(pwrite(fd, buf, len, (off_t)off), (ssize_t)len);
    close(fd);
}

static void file_xor(const char *path, uint64_t off, uint8_t mask)
{
    uint8_t b;
    file_pread(path, &b, 1, off);
    b ^= mask;
    file_pwrite(path, &b, 1, off);
}

static uint64_t file_u64(const char *path, uint64_t off)
{
    uint8_t b[8];
    file_pread(path, b, 8, off);
    return reel_load_u64(b);
}

static void file_store_u64(const char *path, uint64_t off, uint64_t v)
{
    uint8_t b[8];
    reel_store_u64(b, v);
    file_pwrite(path, b, 8, off);
}

/* Recomputes the header checksum after a test changed a header field. */
static void rehash_header(const char *path)
{
    uint8_t h[ZH_SUMMED];
    file_pread(path, h, sizeof(h), 0);
    file_store_u64(path, ZH_SUMMED, XXH3_64bits(h, sizeof(h)));
}

/* Compresses t in dir and returns the .zseg path in zpath. */
static void compress_to(reel_io_t *io, const tseg_t *t, const char *dir, char *zpath, size_t cap)
{
    char spath[512];
    snprintf(spath, sizeof(spath), "%s/seg", dir);
    snprintf(zpath, cap, "%s/seg.zseg", dir);
    tseg_write(t, spath);
    int rc = reel_zseg_compress(io, spath, zpath);
    cr_assert_eq(rc, 0, "compress: %s", reel_err_name(rc));
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.tmp", zpath);
    cr_assert(!file_exists(tmp), ".tmp left behind");
    cr_assert(file_exists(spath), "the source must stay");
}

static void check_info(const reel_zseg_t *z, const tseg_t *t, const char *zpath)
{
    reel_zseg_info_t info;
    reel_zseg_get_info(z, &info);
    cr_assert_eq(info.first_offset, t->hdr.first_offset);
    cr_assert_eq(info.next_offset, t->next_offset);
    cr_assert_eq(info.prev_checksum, t->hdr.prev_checksum);
    cr_assert_eq(info.last_checksum, t->last_checksum);
    cr_assert_eq(info.last_time_ms, t->last_time_ms);
    cr_assert_eq(info.file_bytes, file_size(zpath));
    uint64_t raw = 0;
    for (uint32_t i = 0; i < t->count; i++)
        raw += stride8(t->recs[i].length);
    cr_assert_eq(info.raw_bytes, raw);
    cr_assert_eq(info.blocks == 0, t->count == 0);
}

static void check_record(const reel_record_t *rec, const trec_t *w, uint64_t offset)
{
    cr_assert_eq(rec->offset, offset);
    cr_assert_eq(rec->time_ms, w->time_ms);
    cr_assert_eq(rec->type, w->type);
    cr_assert_eq(rec->flags, w->flags);
    cr_assert_eq(rec->length, w->length);
    cr_assert_eq(rec->checksum, w->checksum);
    cr_assert_eq(memcmp(rec->payload, w->payload, w->length), 0, "payload of %llu",
                 (unsigned long long)offset);
}

/* Walks every block and record, then looks every offset up by find_block,
 * then point-reads a sample of offsets as a reader would. Returns the
 * largest block's raw length. */
static uint32_t check_contents(reel_zseg_t *z, const tseg_t *t)
{
    reel_zseg_info_t info;
    reel_zseg_get_info(z, &info);
    uint32_t *block_of = calloc(t->count + 1, sizeof(uint32_t));
    uint64_t expect = t->hdr.first_offset, prev_sum = t->hdr.prev_checksum;
    uint32_t raw_max = 0;
    for (uint32_t b = 0; b < info.blocks; b++) {
        const uint8_t *raw;
        uint32_t raw_len, pos = 0;
        uint64_t first, prev;
        reel_record_t rec;
        cr_assert_eq(reel_zseg_read_block(z, b, &raw, &raw_len, &first), 0);
        cr_assert_eq(first, expect);
        raw_max = raw_len > raw_max ? raw_len : raw_max;
        int rc;
        while ((rc = reel_zseg_next_record(raw, raw_len, &pos, &rec, &prev)) == 0) {
            uint64_t i = expect - t->hdr.first_offset;
            check_record(&rec, &t->recs[i], expect);
            cr_assert_eq(prev, prev_sum, "chain at %llu", (unsigned long long)expect);
            prev_sum = rec.checksum;
            block_of[i] = b;
            expect++;
        }
        cr_assert_eq(rc, REEL_EEND, "block %u: %s", b, reel_err_name(rc));
        cr_assert_eq(pos, raw_len);
    }
    cr_assert_eq(expect, t->next_offset);
    for (uint64_t o = t->hdr.first_offset; o < t->next_offset; o++) {
        uint32_t b = UINT32_MAX;
        cr_assert_eq(reel_zseg_find_block(z, o, &b), 0);
        cr_assert_eq(b, block_of[o - t->hdr.first_offset], "find_block(%llu)",
                     (unsigned long long)o);
    }
    uint32_t b;
    cr_assert_eq(reel_zseg_find_block(z, t->next_offset, &b), REEL_ENOTFOUND);
    if (t->hdr.first_offset > 0)
        cr_assert_eq(reel_zseg_find_block(z, t->hdr.first_offset - 1, &b), REEL_ENOTFOUND);
    cr_assert_eq(reel_zseg_find_block(z, UINT64_MAX, &b), REEL_ENOTFOUND);
    free(block_of);
    return raw_max;
}

/* Point read of one offset: find_block, read_block, walk to it. */
static void point_read(reel_zseg_t *z, const tseg_t *t, uint64_t offset)
{
    uint32_t b, raw_len, pos = 0;
    const uint8_t *raw;
    uint64_t first;
    reel_record_t rec;
    cr_assert_eq(reel_zseg_find_block(z, offset, &b), 0);
    cr_assert_eq(reel_zseg_read_block(z, b, &raw, &raw_len, &first), 0);
    do {
        cr_assert_eq(reel_zseg_next_record(raw, raw_len, &pos, &rec, NULL), 0);
    } while (rec.offset < offset);
    check_record(&rec, &t->recs[offset - t->hdr.first_offset], offset);
}

static void check_verify_ok(reel_zseg_t *z, const tseg_t *t)
{
    reel_scan_t s;
    int rc = reel_zseg_verify(z, &s);
    cr_assert_eq(rc, 0, "verify: %s (%s)", reel_err_name(rc), s.why);
    cr_assert_eq(s.status, 0);
    cr_assert_eq(s.records, t->count);
    cr_assert_eq(s.next_offset, t->next_offset);
    cr_assert_eq(s.last_checksum, t->last_checksum);
    cr_assert_eq(s.last_time_ms, t->last_time_ms);
}

/* Compresses, opens and checks everything; returns the largest raw block. */
static uint32_t roundtrip(const tseg_t *t, const char *dir, char *zpath, size_t cap)
{
    reel_io_t *io = io_new();
    reel_zseg_t *z = NULL;
    compress_to(io, t, dir, zpath, cap);
    int rc = reel_zseg_open(io, zpath, &z);
    cr_assert_eq(rc, 0, "open: %s", reel_err_name(rc));
    check_info(z, t, zpath);
    uint32_t raw_max = check_contents(z, t);
    for (uint64_t o = t->hdr.first_offset; o < t->next_offset; o += 1 + o % 37)
        point_read(z, t, o);
    check_verify_ok(z, t);
    reel_zseg_close(z);
    reel_io_destroy(io);
    return raw_max;
}

/* A multi-block segment: JSON events and random payloads of many sizes,
 * a zero-length payload, and one ~1 MiB record in the middle. */
static void build_multi_block(tseg_t *t, uint64_t *rng)
{
    static uint8_t buf[1u << 20];
    tseg_init(t, 4ull << 20, 5000, 0x1234abcdull);
    tseg_add(t, "", 0, 0);
    fill_json(t, 600u << 10, rng);
    for (int i = 0; i < 200; i++) {
        uint32_t n = (uint32_t)(reel_test_rand(rng) % 6000);
        random_bytes(buf, n, rng);
        tseg_add(t, buf, n, (uint16_t)(i % 3 == 0 ? REEL_RECORD_F_GROUP_CONT : 0));
    }
    tseg_add(t, "x", 1, 0); /* ends the group */
    tseg_pad_block(t);
    random_bytes(buf, sizeof(buf) - 100, rng);
    tseg_add(t, buf, sizeof(buf) - 100, 0);
    fill_json(t, (3u << 20) - 4096, rng);
}

Test(zseg, roundtrip_small_json)
{
    char dir[256], zpath[512];
    tseg_t t;
    uint64_t rng = 1;
    reel_test_tmpdir(dir, sizeof(dir), "zseg");
    tseg_init(&t, 256u << 10, 1000, 0xabcull);
    fill_json(&t, 200u << 10, &rng);
    cr_assert(t.count > 300);
    roundtrip(&t, dir, zpath, sizeof(zpath));
    cr_assert_eq(dir_entries(dir), 2); /* seg and seg.zseg */
    tseg_free(&t);
    reel_test_rmtree(dir);
}

Test(zseg, roundtrip_many_blocks_and_big_record)
{
    char dir[256], zpath[512];
    tseg_t t;
    uint64_t rng = 2;
    reel_zseg_info_t info;
    reel_zseg_t *z;
    reel_io_t *io = io_new();
    reel_test_tmpdir(dir, sizeof(dir), "zseg");
    build_multi_block(&t, &rng);
    uint32_t raw_max = roundtrip(&t, dir, zpath, sizeof(zpath));
    /* The ~1 MiB record gets a block to itself; no other block is larger
     * than the target size. */
    cr_assert_eq(raw_max, stride8((1u << 20) - 100));
    cr_assert_eq(reel_zseg_open(io, zpath, &z), 0);
    reel_zseg_get_info(z, &info);
    cr_assert(info.blocks >= 6, "blocks = %u", info.blocks);
    uint32_t big_block, before, after;
    uint64_t big = 0;
    for (uint32_t i = 0; i < t.count; i++)
        big = t.recs[i].length > (1u << 19) ? t.hdr.first_offset + i : big;
    cr_assert_eq(reel_zseg_find_block(z, big, &big_block), 0);
    cr_assert_eq(reel_zseg_find_block(z, big - 1, &before), 0);
    cr_assert_eq(reel_zseg_find_block(z, big + 1, &after), 0);
    cr_assert_eq(before + 1, big_block);
    cr_assert_eq(after, big_block + 1);
    reel_zseg_close(z);
    reel_io_destroy(io);
    tseg_free(&t);
    reel_test_rmtree(dir);
}

Test(zseg, largest_record)
{
    char dir[256], zpath[512];
    tseg_t t;
    uint64_t rng = 3;
    uint8_t *buf = malloc(REEL_RECORD_PAYLOAD_MAX);
    reel_test_tmpdir(dir, sizeof(dir), "zseg");
    tseg_init(&t, 8ull << 20, 0, 0);
    tseg_add(&t, "a", 1, 0);
    random_bytes(buf, REEL_RECORD_PAYLOAD_MAX, &rng);
    tseg_add(&t, buf, REEL_RECORD_PAYLOAD_MAX, 0);
    tseg_add(&t, "b", 1, 0);
    uint32_t raw_max = roundtrip(&t, dir, zpath, sizeof(zpath));
    cr_assert_eq(raw_max, stride8(REEL_RECORD_PAYLOAD_MAX));
    free(buf);
    tseg_free(&t);
    reel_test_rmtree(dir);
}

Test(zseg, empty_segment)
{
    char dir[256], zpath[512];
    tseg_t t;
    reel_test_tmpdir(dir, sizeof(dir), "zseg");
    tseg_init(&t, 64u << 10, 777, 0x55ull);
    roundtrip(&t, dir, zpath, sizeof(zpath));
    cr_assert_eq(file_size(zpath), ZH_SIZE + ZFOOTER);
    tseg_free(&t);
    reel_test_rmtree(dir);
}

Test(zseg, compression_ratio_json)
{
    char dir[256], zpath[512];
    tseg_t t;
    uint64_t rng = 4;
    reel_zseg_info_t info;
    reel_zseg_t *z;
    reel_io_t *io = io_new();
    reel_test_tmpdir(dir, sizeof(dir), "zseg");
    tseg_init(&t, 4ull << 20, 0, 0);
    fill_json(&t, (4u << 20) - 8192, &rng);
    compress_to(io, &t, dir, zpath, sizeof(zpath));
    cr_assert_eq(reel_zseg_open(io, zpath, &z), 0);
    reel_zseg_get_info(z, &info);
    double ratio = (double)info.raw_bytes / (double)info.file_bytes;
    fprintf(stderr,
            "zseg ratio: %u JSON events, %llu raw record bytes -> %llu .zseg bytes in %u blocks: "
            "%.2fx (segment file %llu bytes: %.2fx)\n",
            t.count, (unsigned long long)info.raw_bytes, (unsigned long long)info.file_bytes,
            info.blocks, ratio, (unsigned long long)t.hdr.segment_size,
            (double)t.hdr.segment_size / (double)info.file_bytes);
    cr_assert(ratio > 2.0, "ratio %.2f", ratio);
    reel_zseg_close(z);
    reel_io_destroy(io);
    tseg_free(&t);
    reel_test_rmtree(dir);
}

/* ---- damage to the .zseg ---- */

/* A .zseg of several blocks for the damage tests. */
static void make_zseg(const char *dir, char *zpath, size_t cap, tseg_t *t, uint64_t seed)
{
    reel_io_t *io = io_new();
    uint64_t rng = seed;
    tseg_init(t, 1u << 20, 42, 0x77ull);
    fill_json(t, 900u << 10, &rng);
    compress_to(io, t, dir, zpath, cap);
    reel_io_destroy(io);
}

static int open_rc(const char *zpath)
{
    reel_io_t *io = io_new();
    reel_zseg_t *z = NULL;
    int rc = reel_zseg_open(io, zpath, &z);
    cr_assert(rc == 0 ? z != NULL : true);
    reel_zseg_close(z);
    reel_io_destroy(io);
    return rc;
}

Test(zseg, flipped_frame_byte)
{
    char dir[256], zpath[512];
    tseg_t t;
    reel_io_t *io = io_new();
    reel_zseg_t *z;
    reel_scan_t s;
    const uint8_t *raw;
    uint32_t raw_len;
    uint64_t first;
    reel_test_tmpdir(dir, sizeof(dir), "zseg");
    make_zseg(dir, zpath, sizeof(zpath), &t, 5);
    uint64_t index_pos = file_u64(zpath, file_size(zpath) - ZFOOTER);
    file_xor(zpath, ZH_SIZE + 20, 0x40);   /* in block 0's frame */
    file_xor(zpath, index_pos - 3, 0x01);  /* in the last block's frame */
    /* open checks the index, not the frames. */
    cr_assert_eq(reel_zseg_open(io, zpath, &z), 0);
    reel_zseg_info_t info;
    reel_zseg_get_info(z, &info);
    cr_assert(info.blocks >= 3);
    cr_assert_eq(reel_zseg_read_block(z, 0, &raw, &raw_len, &first), REEL_ECORRUPT);
    cr_assert_eq(reel_zseg_read_block(z, 1, &raw, &raw_len, &first), 0, "block 1 is intact");
    cr_assert_eq(reel_zseg_read_block(z, info.blocks - 1, &raw, &raw_len, &first),
                 REEL_ECORRUPT);
    cr_assert_eq(reel_zseg_verify(z, &s), REEL_ECORRUPT);
    cr_assert_eq(s.status, REEL_ECORRUPT);
    cr_assert_eq(s.bad_offset, t.hdr.first_offset);
    cr_assert_eq(s.bad_pos, ZH_SIZE);
    cr_assert(s.why[0] != '\0');
    fprintf(stderr, "verify of a damaged frame: %s\n", s.why);
    reel_zseg_close(z);
    reel_io_destroy(io);
    tseg_free(&t);
    reel_test_rmtree(dir);
}

Test(zseg, truncated_or_extended_file)
{
    char dir[256], zpath[512];
    tseg_t t;
    reel_test_tmpdir(dir, sizeof(dir), "zseg");
    make_zseg(dir, zpath, sizeof(zpath), &t, 6);
    uint64_t size = file_size(zpath);
    uint64_t cuts[] = {size - 1, size - ZFOOTER, size - ZFOOTER - 1, size / 2, ZH_SIZE + 1,
                       ZH_SIZE, ZH_SIZE - 1, 100, 0};
    uint8_t *orig;
    size_t len;
    cr_assert_eq(reel_test_read_file(zpath, &orig, &len), 0);
    for (size_t i = 0; i < REEL_ARRAY_LEN(cuts); i++) {
        cr_assert_eq(truncate(zpath, (off_t)cuts[i]), 0);
        cr_assert_eq(open_rc(zpath), REEL_ECORRUPT, "cut to %llu", (unsigned long long)cuts[i]);
        cr_assert_eq(reel_test_write_file(zpath, orig, len), 0);
    }
    cr_assert_eq(open_rc(zpath), 0);
    cr_assert_eq(truncate(zpath, (off_t)size + 1), 0); /* one byte of trailing garbage */
    cr_assert_eq(open_rc(zpath), REEL_ECORRUPT);
    free(orig);
    tseg_free(&t);
    reel_test_rmtree(dir);
}

/* Every byte outside the frames is checked at open: flip each one of the
 * header fields, a sample of the header's zero tail, and every byte of the
 * index and footer. */
Test(zseg, every_metadata_byte_is_checked)
{
    char dir[256], zpath[512];
    tseg_t t;
    reel_test_tmpdir(dir, sizeof(dir), "zseg");
    make_zseg(dir, zpath, sizeof(zpath), &t, 7);
    uint64_t size = file_size(zpath);
    uint64_t index_pos = file_u64(zpath, size - ZFOOTER);
    cr_assert_eq((size - ZFOOTER - index_pos) % ZENTRY, 0);
    uint32_t tried = 0;
    for (uint64_t off = 0; off < size; off++) {
        bool meta = off < 112 || (off < ZH_SIZE && off % 97 == 0) || off >= index_pos;
        if (!meta)
            continue;
        for (uint8_t mask = 0x01; mask != 0; mask = (uint8_t)(mask << 3)) {
            file_xor(zpath, off, mask);
            int rc = open_rc(zpath);
            cr_assert_eq(rc, REEL_ECORRUPT, "flip 0x%02x at byte %llu: %s", mask,
                         (unsigned long long)off, reel_err_name(rc));
            file_xor(zpath, off, mask);
            tried++;
        }
    }
    cr_assert_eq(open_rc(zpath), 0);
    fprintf(stderr, "metadata flips rejected: %u\n", tried);
    tseg_free(&t);
    reel_test_rmtree(dir);
}

Test(zseg, version_mismatch)
{
    char dir[256], zpath[512];
    tseg_t t;
    uint8_t v[4];
    reel_test_tmpdir(dir, sizeof(dir), "zseg");
    make_zseg(dir, zpath, sizeof(zpath), &t, 8);
    reel_store_u32(v, REEL_FORMAT_VERSION + 1);
    file_pwrite(zpath, v, 4, 8);
    rehash_header(zpath);
    cr_assert_eq(open_rc(zpath), REEL_EVERSION);
    tseg_free(&t);
    reel_test_rmtree(dir);
}

/* A frame damaged behind consistent checksums (as a buggy writer would
 * leave it) still fails: zstd or the record checksums catch it. */
Test(zseg, damaged_frame_with_matching_checksums)
{
    char dir[256], zpath[512];
    tseg_t t;
    uint64_t rng = 9;
    uint8_t buf[3000];
    reel_io_t *io = io_new();
    reel_zseg_t *z;
    reel_scan_t s;
    reel_test_tmpdir(dir, sizeof(dir), "zseg");
    /* Random payloads: zstd stores them as raw blocks, so the flip lands in
     * a record's bytes, not in zstd's own structure. */
    tseg_init(&t, 256u << 10, 0, 0);
    for (int i = 0; i < 40; i++) {
        random_bytes(buf, sizeof(buf), &rng);
        tseg_add(&t, buf, sizeof(buf), 0);
    }
    compress_to(io, &t, dir, zpath, sizeof(zpath));
    uint64_t size = file_size(zpath), index_pos = file_u64(zpath, size - ZFOOTER);
    cr_assert_eq(size - ZFOOTER - index_pos, ZENTRY, "one block");
    file_xor(zpath, ZH_SIZE + (index_pos - ZH_SIZE) / 2, 0x10);
    uint8_t *frame = malloc(index_pos - ZH_SIZE), entry[ZENTRY];
    file_pread(zpath, frame, index_pos - ZH_SIZE, ZH_SIZE);
    file_store_u64(zpath, index_pos + 24, XXH3_64bits(frame, index_pos - ZH_SIZE));
    file_pread(zpath, entry, ZENTRY, index_pos);
    file_store_u64(zpath, size - ZFOOTER + 16, XXH3_64bits(entry, ZENTRY));
    cr_assert_eq(reel_zseg_open(io, zpath, &z), 0);
    int rc = reel_zseg_verify(z, &s);
    cr_assert_eq(rc, REEL_ECORRUPT, "verify: %s", reel_err_name(rc));
    fprintf(stderr, "verify of a damaged record: %s\n", s.why);
    reel_zseg_close(z);
    free(frame);
    reel_io_destroy(io);
    tseg_free(&t);
    reel_test_rmtree(dir);
}

/* A header whose entering chain value does not match the first record. */
Test(zseg, verify_reports_chain_break)
{
    char dir[256], zpath[512];
    tseg_t t;
    reel_io_t *io = io_new();
    reel_zseg_t *z;
    reel_scan_t s;
    reel_test_tmpdir(dir, sizeof(dir), "zseg");
    make_zseg(dir, zpath, sizeof(zpath), &t, 10);
    file_store_u64(zpath, 32, 0x999ull); /* prev_checksum */
    rehash_header(zpath);
    cr_assert_eq(reel_zseg_open(io, zpath, &z), 0);
    cr_assert_eq(reel_zseg_verify(z, &s), REEL_ECHAIN);
    cr_assert_eq(s.status, REEL_ECHAIN);
    cr_assert_eq(s.bad_offset, t.hdr.first_offset);
    cr_assert_eq(s.records, 0);
    reel_zseg_close(z);
    reel_io_destroy(io);
    tseg_free(&t);
    reel_test_rmtree(dir);
}

/* ---- bad sources: compress fails and leaves nothing behind ---- */

static void compress_fails(tseg_t *t, int expect)
{
    char dir[256], spath[512], zpath[512], tmp[600];
    reel_io_t *io = io_new();
    reel_test_tmpdir(dir, sizeof(dir), "zseg");
    snprintf(spath, sizeof(spath), "%s/seg", dir);
    snprintf(zpath, sizeof(zpath), "%s/seg.zseg", dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", zpath);
    tseg_write(t, spath);
    cr_assert_eq(reel_test_write_file(tmp, "stale", 5), 0); /* from an earlier crash */
    int rc = reel_zseg_compress(io, spath, zpath);
    cr_assert_eq(rc, expect, "compress: %s, expected %s", reel_err_name(rc),
                 reel_err_name(expect));
    cr_assert(!file_exists(zpath), "no .zseg");
    cr_assert(!file_exists(tmp), "no .tmp");
    cr_assert_eq(dir_entries(dir), 1);
    reel_io_destroy(io);
    reel_test_rmtree(dir);
}

static void json_source(tseg_t *t, uint64_t seed, uint32_t records)
{
    char buf[1024];
    uint64_t rng = seed;
    tseg_init(t, 256u << 10, 10, 0);
    for (uint32_t i = 0; i < records; i++)
        tseg_add(t, buf, json_event(buf, sizeof(buf), i, &rng), 0);
}

Test(zseg, source_with_broken_chain)
{
    tseg_t t;
    char buf[1024];
    uint64_t rng = 11;
    json_source(&t, 11, 20);
    t.last_checksum ^= 1; /* record 20 does not follow record 19 */
    tseg_add(&t, buf, json_event(buf, sizeof(buf), 20, &rng), 0);
    for (int i = 21; i < 40; i++)
        tseg_add(&t, buf, json_event(buf, sizeof(buf), (uint64_t)i, &rng), 0);
    compress_fails(&t, REEL_ECHAIN);
    tseg_free(&t);
}

Test(zseg, source_with_damaged_payload)
{
    tseg_t t;
    json_source(&t, 12, 50);
    t.image[REEL_SEGMENT_HEADER_SIZE + REEL_RECORD_HEADER_SIZE + 3] ^= 0x20;
    compress_fails(&t, REEL_ECORRUPT);
    tseg_free(&t);
}

Test(zseg, source_with_unfinished_group)
{
    tseg_t t;
    json_source(&t, 13, 30);
    tseg_add(&t, "{}", 2, REEL_RECORD_F_GROUP_CONT);
    compress_fails(&t, REEL_ECORRUPT);
    tseg_free(&t);
}

Test(zseg, source_with_bad_header)
{
    tseg_t t;
    json_source(&t, 14, 30);
    t.image[20] ^= 1;
    compress_fails(&t, REEL_ECORRUPT);
    tseg_free(&t);
}

Test(zseg, missing_source)
{
    char dir[256], spath[512], zpath[512];
    reel_io_t *io = io_new();
    reel_test_tmpdir(dir, sizeof(dir), "zseg");
    snprintf(spath, sizeof(spath), "%s/nope", dir);
    snprintf(zpath, sizeof(zpath), "%s/nope.zseg", dir);
    cr_assert_eq(reel_zseg_compress(io, spath, zpath), -ENOENT);
    cr_assert_eq(reel_zseg_open(io, zpath, &(reel_zseg_t *){NULL}), -ENOENT);
    cr_assert_eq(dir_entries(dir), 0);
    reel_io_destroy(io);
    reel_test_rmtree(dir);
}

/* ---- next_record on hand-made blocks ---- */

Test(zseg, next_record_edges)
{
    uint8_t raw[512] = {0};
    reel_record_header_t h1 = {.prev_checksum = 7, .offset = 3, .time_ms = 9, .length = 5,
                               .type = 2};
    reel_record_encode(raw, &h1, "hello");
    reel_record_header_t h2 = {.prev_checksum = h1.checksum, .offset = 4, .length = 8, .type = 1};
    reel_record_encode(raw + 64, &h2, "12345678");
    uint32_t len = 64 + 64, pos = 0;
    reel_record_t rec;
    uint64_t prev = 0;
    cr_assert_eq(reel_zseg_next_record(raw, len, &pos, &rec, &prev), 0);
    cr_assert_eq(pos, 64);
    cr_assert_eq(prev, 7);
    cr_assert_eq(rec.offset, 3);
    cr_assert_eq(memcmp(rec.payload, "hello", 5), 0);
    cr_assert_eq(reel_zseg_next_record(raw, len, &pos, &rec, &prev), 0);
    cr_assert_eq(prev, h1.checksum);
    cr_assert_eq(pos, len);
    cr_assert_eq(reel_zseg_next_record(raw, len, &pos, &rec, &prev), REEL_EEND);
    /* A block cut inside a record, a header or its padding. */
    for (uint32_t cut = 65; cut < len; cut += 8) {
        pos = 64;
        cr_assert_eq(reel_zseg_next_record(raw, cut, &pos, &rec, NULL), REEL_ECORRUPT);
        cr_assert_eq(pos, 64, "pos does not move on error");
    }
    pos = 4;
    cr_assert_eq(reel_zseg_next_record(raw, len, &pos, &rec, NULL), REEL_ECORRUPT);
    pos = 200;
    cr_assert_eq(reel_zseg_next_record(raw, len, &pos, &rec, NULL), REEL_ECORRUPT);
    raw[56 + 5] = 1; /* padding of the first record */
    pos = 0;
    cr_assert_eq(reel_zseg_next_record(raw, len, &pos, &rec, NULL), REEL_ECORRUPT);
    raw[56 + 5] = 0;
    raw[56 + 2] ^= 1; /* payload */
    cr_assert_eq(reel_zseg_next_record(raw, len, &pos, &rec, NULL), REEL_ECORRUPT);
    raw[56 + 2] ^= 1;
    cr_assert_eq(reel_zseg_next_record(raw, len, &pos, &rec, NULL), 0);
}

/* Random damage anywhere, frames included: open or verify must fail with a
 * format error every time, and never crash or read out of bounds (run it
 * under `make asan`). */
Test(zseg, random_damage_is_always_detected)
{
    char dir[256], zpath[512];
    tseg_t t;
    uint64_t rng = 15;
    uint8_t *orig;
    size_t len;
    reel_io_t *io = io_new();
    reel_test_tmpdir(dir, sizeof(dir), "zseg");
    make_zseg(dir, zpath, sizeof(zpath), &t, 16);
    cr_assert_eq(reel_test_read_file(zpath, &orig, &len), 0);
    for (int round = 0; round < 300; round++) {
        uint32_t flips = 1 + (uint32_t)(reel_test_rand(&rng) % 4);
        for (uint32_t f = 0; f < flips; f++) {
            /* Distinct positions, each flipped once: the file always differs. */
            uint64_t off = (len / flips) * f + reel_test_rand(&rng) % (len / flips);
            file_xor(zpath, off, (uint8_t)(1u << (reel_test_rand(&rng) % 8)));
        }
        reel_zseg_t *z = NULL;
        reel_scan_t s;
        int rc = reel_zseg_open(io, zpath, &z);
        if (rc == 0) {
            rc = reel_zseg_verify(z, &s);
            reel_zseg_close(z);
        }
        cr_assert(rc == REEL_ECORRUPT || rc == REEL_ECHAIN, "round %d: %s", round,
                  reel_err_name(rc));
        cr_assert_eq(reel_test_write_file(zpath, orig, len), 0);
    }
    free(orig);
    reel_io_destroy(io);
    tseg_free(&t);
    reel_test_rmtree(dir);
}
