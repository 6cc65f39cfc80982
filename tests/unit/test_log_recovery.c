/*
 * test_log_recovery.c: what open() does with damaged logs. A torn tail
 * (damage in the last batch, with nothing durable after it) is cut back to
 * the last whole group; damage anywhere a later durable record proves was
 * acknowledged is corruption, and open refuses with a message naming the
 * segment and offset.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/common.h"
#include "engine/log.h"
#include "engine/record.h"
#include "engine/segment.h"
#include "tests/harness.h"

static char dir[PATH_MAX];

static void setup(void)
{
    reel_test_tmpdir(dir, sizeof(dir), "recov");
}

static void teardown(void)
{
    reel_test_rmtree(dir);
}

TestSuite(recovery, .init = setup, .fini = teardown, .timeout = 60);

static int try_open(reel_log_t **log, char *err, size_t len)
{
    reel_log_options_t o = {.segment_size = 64 << 10, .no_compress = true};
    return reel_log_open(dir, &o, log, err, len);
}

static reel_log_t *must_open(void)
{
    reel_log_t *log;
    char err[512];
    int rc = try_open(&log, err, sizeof(err));
    cr_assert_eq(rc, 0, "open: %s: %s", reel_strerror(rc), err);
    return log;
}

/* n records, one batch each (synchronous appends), payload "rec-<i>...". */
static void make_log(int n)
{
    reel_log_t *log = must_open();
    for (int i = 0; i < n; i++) {
        char buf[200];
        int len = snprintf(buf, sizeof(buf), "rec-%d-%0120d", i, i);
        cr_assert_eq(reel_log_append(log, 5, buf, (uint32_t)len, NULL), 0);
    }
    cr_assert_eq(reel_log_close(log), 0);
}

/* Path of the segment file with the largest (last) first offset. */
static void last_segment(char *path)
{
    DIR *d = opendir(dir);
    char best[64] = "";
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint64_t first;
        if (reel_segment_parse_name(e->d_name, ".seg", &first) && strcmp(e->d_name, best) > 0)
            snprintf(best, sizeof(best), "%s", e->d_name);
    }
    closedir(d);
    cr_assert(best[0] != '\0');
    snprintf(path, PATH_MAX, "%s/%s", dir, best);
}

/* Byte position of record `offset` in the segment image, or 0. */
static uint64_t find_record(const uint8_t *img, size_t size, uint64_t offset)
{
    for (uint64_t pos = REEL_SEGMENT_HEADER_SIZE; pos + REEL_RECORD_HEADER_SIZE <= size; pos += 8) {
        reel_record_header_t h;
        if (reel_record_decode_header(img + pos, &h) == 0 && h.offset == offset)
            return pos;
    }
    return 0;
}

static void patch_file(const char *path, uint64_t pos, const void *bytes, size_t len)
{
    int fd = open(path, O_WRONLY);
    cr_assert(fd >= 0);
    cr_assert_eq(pwrite(fd, bytes, len, (off_t)pos), (ssize_t)len);
    close(fd);
}

static uint64_t record_pos(const char *path, uint64_t offset, uint8_t **img, size_t *size)
{
    cr_assert_eq(reel_test_read_file(path, img, size), 0);
    uint64_t pos = find_record(*img, *size, offset);
    cr_assert_neq(pos, 0, "record %lu not found", (unsigned long)offset);
    return pos;
}

static void expect_end(uint64_t end)
{
    reel_log_t *log = must_open();
    cr_assert_eq(reel_log_end(log), end);
    reel_log_iter_t *it;
    reel_record_t rec;
    cr_assert_eq(reel_log_iter_open(log, 0, &it), 0);
    for (uint64_t i = 0; i < end; i++)
        cr_assert_eq(reel_log_iter_next(it, &rec), 0, "record %lu", (unsigned long)i);
    cr_assert_eq(reel_log_iter_next(it, &rec), REEL_EEND);
    reel_log_iter_close(it);
    reel_log_close(log);
}

Test(recovery, garbage_after_the_last_record_is_a_torn_tail)
{
    char path[PATH_MAX];
    uint8_t *img;
    size_t size;
    make_log(40);
    last_segment(path);
    uint64_t pos = record_pos(path, 39, &img, &size);
    uint64_t end = pos + reel_record_stride(reel_load_u32(img + pos + 40));
    uint8_t junk[3000];
    uint64_t st = 7;
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)reel_test_rand(&st);
    patch_file(path, end, junk, sizeof(junk));
    expect_end(40);
    free(img);
    /* The cut zeroed the junk, so appends go on and reopen cleanly. */
    cr_assert_eq(reel_test_read_file(path, &img, &size), 0);
    cr_assert(reel_bytes_zero(img + end, sizeof(junk)), "torn bytes zeroed");
    free(img);
    reel_log_t *log = must_open();
    cr_assert_eq(reel_log_append(log, 1, "after", 5, NULL), 0);
    reel_log_close(log);
    expect_end(41);
}

Test(recovery, damaged_last_batch_is_cut_as_torn)
{
    char path[PATH_MAX];
    uint8_t *img;
    size_t size;
    make_log(40);
    last_segment(path);
    uint64_t pos = record_pos(path, 39, &img, &size);
    uint8_t flip = img[pos + REEL_RECORD_HEADER_SIZE + 3] ^ 0x40;
    patch_file(path, pos + REEL_RECORD_HEADER_SIZE + 3, &flip, 1);
    free(img);
    expect_end(39);
}

Test(recovery, damage_before_a_durable_record_is_corruption)
{
    char path[PATH_MAX], err[512];
    uint8_t *img;
    size_t size;
    reel_log_t *log;
    make_log(40);
    last_segment(path);
    uint64_t first;
    cr_assert(reel_segment_parse_name(strrchr(path, '/') + 1, ".seg", &first));
    uint64_t victim = first + 2;
    uint64_t pos = record_pos(path, victim, &img, &size);
    uint8_t flip = img[pos + REEL_RECORD_HEADER_SIZE + 5] ^ 0x01;
    patch_file(path, pos + REEL_RECORD_HEADER_SIZE + 5, &flip, 1);
    free(img);
    int rc = try_open(&log, err, sizeof(err));
    cr_assert_eq(rc, REEL_ECORRUPT, "%s", reel_strerror(rc));
    char want[64];
    snprintf(want, sizeof(want), "offset %lu", (unsigned long)victim);
    cr_assert(strstr(err, want) != NULL, "message names the offset: %s", err);
    cr_assert(strstr(err, strrchr(path, '/') + 1) != NULL, "message names the segment: %s", err);
    cr_assert(strstr(err, "durable record follows") != NULL, "%s", err);
}

Test(recovery, a_lost_write_in_the_middle_is_corruption)
{
    char path[PATH_MAX], err[512];
    uint8_t *img;
    size_t size;
    reel_log_t *log;
    make_log(40);
    last_segment(path);
    uint64_t first;
    cr_assert(reel_segment_parse_name(strrchr(path, '/') + 1, ".seg", &first));
    uint64_t pos = record_pos(path, first + 1, &img, &size);
    uint8_t zeros[REEL_RECORD_HEADER_SIZE] = {0};
    patch_file(path, pos, zeros, sizeof(zeros));
    free(img);
    cr_assert_eq(try_open(&log, err, sizeof(err)), REEL_ECORRUPT, "%s", err);
}

Test(recovery, damage_in_a_sealed_segment_is_corruption)
{
    char path[PATH_MAX], err[512];
    uint8_t *img;
    size_t size;
    reel_log_t *log;
    make_log(40); /* one record per 4 KiB block: 15 per 64 KiB segment */
    snprintf(path, sizeof(path), "%s/%020d.seg", dir, 0);
    uint64_t pos = record_pos(path, 14, &img, &size); /* the segment's last record */
    uint8_t flip = img[pos + REEL_RECORD_HEADER_SIZE] ^ 0x80;
    patch_file(path, pos + REEL_RECORD_HEADER_SIZE, &flip, 1);
    free(img);
    cr_assert_eq(try_open(&log, err, sizeof(err)), REEL_ECORRUPT, "%s", err);
    cr_assert(strstr(err, "offset 14") != NULL, "%s", err);
}

Test(recovery, a_broken_chain_is_refused)
{
    char path[PATH_MAX], err[512];
    uint8_t *img;
    size_t size;
    reel_log_t *log;
    make_log(40);
    last_segment(path);
    uint64_t first;
    cr_assert(reel_segment_parse_name(strrchr(path, '/') + 1, ".seg", &first));
    uint64_t pos = record_pos(path, first + 3, &img, &size);
    reel_record_header_t h;
    cr_assert_eq(reel_record_decode_header(img + pos, &h), 0);
    uint8_t *payload = malloc(h.length);
    memcpy(payload, img + pos + REEL_RECORD_HEADER_SIZE, h.length);
    h.prev_checksum ^= 1; /* a record that no longer follows its predecessor */
    reel_record_encode(img + pos, &h, payload);
    patch_file(path, pos, img + pos, REEL_RECORD_HEADER_SIZE);
    free(payload);
    free(img);
    cr_assert_eq(try_open(&log, err, sizeof(err)), REEL_ECHAIN, "%s", err);
}

Test(recovery, an_unfinished_group_is_cut_whole)
{
    char path[PATH_MAX];
    uint8_t *img;
    size_t size;
    make_log(10);
    reel_log_t *log = must_open();
    reel_log_entry_t e[3] = {{1, 4, "one!"}, {1, 4, "two!"}, {1, 6, "three!"}};
    cr_assert_eq(reel_log_append_group(log, e, 3, 0, NULL), 0);
    reel_log_close(log);
    last_segment(path);
    uint64_t pos = record_pos(path, 12, &img, &size); /* tear the group's last record */
    uint8_t zeros[REEL_RECORD_HEADER_SIZE] = {0};
    patch_file(path, pos, zeros, sizeof(zeros));
    free(img);
    expect_end(10);
}

Test(recovery, a_missing_segment_is_refused)
{
    char path[PATH_MAX], err[512];
    reel_log_t *log;
    make_log(40);
    snprintf(path, sizeof(path), "%s/%020d.seg", dir, 15);
    cr_assert_eq(unlink(path), 0, "segment 15 exists");
    cr_assert_eq(try_open(&log, err, sizeof(err)), REEL_EMISSING, "%s", err);
    cr_assert(strstr(err, "missing") != NULL, "%s", err);
}

Test(recovery, a_newer_format_version_is_refused_by_name)
{
    char path[PATH_MAX], err[512];
    uint8_t block[REEL_SEGMENT_HEADER_SIZE];
    reel_log_t *log;
    make_log(3);
    snprintf(path, sizeof(path), "%s/%020d.seg", dir, 0);
    reel_segment_header_t h = {REEL_FORMAT_VERSION + 1, REEL_BLOCK_SIZE, 64 << 10, 0, 0, 1};
    reel_segment_header_encode(block, &h);
    patch_file(path, 0, block, sizeof(block));
    cr_assert_eq(try_open(&log, err, sizeof(err)), REEL_EVERSION, "%s", err);
    char want[64];
    snprintf(want, sizeof(want), "version %u", REEL_FORMAT_VERSION + 1);
    cr_assert(strstr(err, want) != NULL, "%s", err);
}

Test(recovery, leftover_temporary_files_are_removed)
{
    char path[PATH_MAX];
    struct stat st;
    make_log(5);
    snprintf(path, sizeof(path), "%s/%020d.seg.tmp", dir, 99);
    cr_assert_eq(reel_test_write_file(path, "half-made", 9), 0);
    expect_end(5);
    cr_assert_neq(stat(path, &st), 0, "tmp file removed");
}

Test(recovery, compressed_and_plain_copy_keeps_the_compressed)
{
    char seg[PATH_MAX], zseg[PATH_MAX];
    uint8_t *img;
    size_t size;
    struct stat st;
    make_log(40);
    snprintf(seg, sizeof(seg), "%s/%020d.seg", dir, 0);
    cr_assert_eq(reel_test_read_file(seg, &img, &size), 0);
    reel_log_options_t o = {.segment_size = 64 << 10};
    reel_log_t *log;
    cr_assert_eq(reel_log_open(dir, &o, &log, NULL, 0), 0);
    cr_assert_eq(reel_log_seal(log), 0);
    reel_log_close(log);
    snprintf(zseg, sizeof(zseg), "%s/%020d.zseg", dir, 0);
    cr_assert_eq(stat(zseg, &st), 0, "compressed");
    /* A crash between the rename of the .zseg and the unlink of the .seg. */
    cr_assert_eq(reel_test_write_file(seg, img, size), 0);
    free(img);
    expect_end(40);
    cr_assert_neq(stat(seg, &st), 0, "plain copy removed");
}
