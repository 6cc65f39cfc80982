/*
 * test_verify.c: the whole-log check (engine/verify.h) on logs built with
 * the real API: several 64 KiB segments, the older ones compressed by
 * reel_log_seal, the newer ones left plain (no_compress), and the active
 * one last. Each negative test damages one file the way a disk or an
 * operator would and expects the finding to name that file, the offset
 * and the byte; the live tests verify while a writer holds the log.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/common.h"
#include "engine/io.h"
#include "engine/log.h"
#include "engine/record.h"
#include "engine/segment.h"
#include "engine/verify.h"
#include "engine/zseg.h"
#include "tests/harness.h"

#define SEG_SIZE (64u << 10)
#define GROUP 8u            /* records per append group */
#define COMPRESSED_GROUPS 60u /* written first, then sealed and compressed */
#define PLAIN_GROUPS 60u    /* then written with no_compress */
#define TOTAL ((COMPRESSED_GROUPS + PLAIN_GROUPS) * GROUP)
#define NAMES_MAX 256

static char dir[PATH_MAX];

static void setup(void)
{
    reel_test_tmpdir(dir, sizeof(dir), "verify");
}

static void teardown(void)
{
    reel_test_rmtree(dir);
}

TestSuite(verify, .init = setup, .fini = teardown, .timeout = 60);

static reel_log_t *open_log(bool no_compress)
{
    reel_log_options_t o = {.segment_size = SEG_SIZE, .no_compress = no_compress};
    reel_log_t *log;
    char err[256];
    int rc = reel_log_open(dir, &o, &log, err, sizeof(err));
    cr_assert_eq(rc, 0, "open: %s (%s)", reel_strerror(rc), err);
    return log;
}

/* Appends groups [from, from + n) of GROUP records each; payloads of
 * 100..400 bytes that name their record. */
static void append_groups(reel_log_t *log, uint64_t from, uint64_t n)
{
    static uint8_t bufs[GROUP][400];
    reel_log_entry_t e[GROUP];
    for (uint64_t g = from; g < from + n; g++) {
        for (uint32_t k = 0; k < GROUP; k++) {
            uint64_t off = g * GROUP + k;
            uint32_t len = (uint32_t)(100 + off * 37 % 300);
            memset(bufs[k], (int)('a' + off % 26), len);
            snprintf((char *)bufs[k], 16, "ev-%08llu", (unsigned long long)off);
            e[k] = (reel_log_entry_t){(uint16_t)(1 + off % 5), len, bufs[k]};
        }
        uint64_t first;
        int rc = reel_log_append_group(log, e, GROUP, 0, &first);
        cr_assert_eq(rc, 0, "append: %s", reel_strerror(rc));
        cr_assert_eq(first, g * GROUP);
    }
}

/* The standard log: compressed segments, then sealed plain ones, then the
 * active plain segment holding the newest records. */
static void build_log(void)
{
    reel_log_t *log = open_log(false);
    append_groups(log, 0, COMPRESSED_GROUPS);
    cr_assert_eq(reel_log_seal(log), 0);
    cr_assert_eq(reel_log_close(log), 0);
    log = open_log(true);
    append_groups(log, COMPRESSED_GROUPS, PLAIN_GROUPS);
    cr_assert_eq(reel_log_end(log), TOTAL);
    cr_assert_eq(reel_log_close(log), 0);
}

/* Names in dir ending in suffix, sorted (so by first offset). */
static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static size_t list_names(const char *suffix, char **names)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0, sl = strlen(suffix);
    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len > sl && strcmp(e->d_name + len - sl, suffix) == 0 && n < NAMES_MAX)
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(*names), name_cmp);
    return n;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
}

static void path_of(char *buf, const char *name)
{
    snprintf(buf, PATH_MAX, "%s/%s", dir, name);
}

/* A record's place in a plain segment file. */
typedef struct rec_pos {
    uint64_t pos;
    uint64_t offset;
    uint32_t length;
} rec_pos_t;

/* Walks the records of a plain segment image as the scan does: 8-byte
 * strides, a zero header mid-block is padding, at a block start the end. */
static size_t walk_records(const uint8_t *img, size_t len, rec_pos_t *out, size_t max)
{
    size_t n = 0;
    uint64_t pos = REEL_SEGMENT_HEADER_SIZE;
    while (pos + REEL_RECORD_HEADER_SIZE <= len && n < max) {
        reel_record_header_t h;
        if (reel_record_is_padding(img + pos, pos)) {
            pos = reel_align_up(pos, REEL_BLOCK_SIZE);
            continue;
        }
        if (reel_bytes_zero(img + pos, REEL_RECORD_HEADER_SIZE))
            break;
        if (reel_record_decode_header(img + pos, &h) != 0)
            break;
        out[n++] = (rec_pos_t){pos, h.offset, h.length};
        pos += reel_record_stride(h.length);
    }
    return n;
}

static void flip_byte(const char *name, uint64_t pos)
{
    char path[PATH_MAX];
    uint8_t *data;
    size_t len;
    path_of(path, name);
    cr_assert_eq(reel_test_read_file(path, &data, &len), 0);
    cr_assert_lt(pos, len);
    data[pos] ^= 0x5a;
    cr_assert_eq(reel_test_write_file(path, data, len), 0);
    free(data);
}

static uint64_t name_first(const char *name)
{
    return strtoull(name, NULL, 10);
}

static void expect_whole(reel_verify_report_t *rep)
{
    int rc = reel_log_verify(dir, rep);
    cr_assert_eq(rc, 0, "verify: %s: %s %s", reel_err_name(rc), rep->file, rep->why);
    cr_assert_eq(rep->status, 0);
    cr_assert_str_empty(rep->file);
    cr_assert_str_empty(rep->why);
}

Test(verify, whole_log_with_compressed_and_plain_segments)
{
    reel_verify_report_t rep;
    char *z[NAMES_MAX], *p[NAMES_MAX];
    build_log();
    size_t nz = list_names(".zseg", z), np = list_names(".seg", p);
    cr_assert_geq(nz, 3, "some compressed segments");
    cr_assert_geq(np, 3, "some plain segments");
    expect_whole(&rep);
    cr_assert_eq(rep.segments, nz + np);
    cr_assert_eq(rep.zseg_segments, nz);
    cr_assert_eq(rep.plain_segments, np);
    cr_assert_eq(rep.leftover_plain, 0);
    cr_assert_eq(rep.records, TOTAL);
    cr_assert_eq(rep.next_offset, TOTAL);
    cr_assert_gt(rep.last_time_ms, 0);
    cr_assert_eq(rep.attempts, 1);
    cr_assert_eq(rep.plain_segments * SEG_SIZE + rep.zseg_file_bytes, rep.file_bytes);
    cr_assert_gt(rep.zseg_raw_bytes, rep.zseg_file_bytes, "repetitive payloads compress");
    /* Raw bytes are the records' strides: between 156 and 456 bytes each. */
    cr_assert_geq(rep.raw_bytes, (uint64_t)TOTAL * 156);
    cr_assert_leq(rep.raw_bytes, (uint64_t)TOTAL * 456);
    free_names(z, nz);
    free_names(p, np);
}

Test(verify, empty_and_absent_directories)
{
    reel_verify_report_t rep;
    expect_whole(&rep);
    cr_assert_eq(rep.segments, 0);
    cr_assert_eq(rep.records, 0);
    char absent[PATH_MAX + 8];
    snprintf(absent, sizeof(absent), "%s/nope", dir);
    cr_assert_eq(reel_log_verify(absent, &rep), -ENOENT);
    cr_assert_eq(rep.status, -ENOENT);
    cr_assert(strstr(rep.why, "nope") != NULL, "%s", rep.why);
}

Test(verify, payload_byte_flipped_in_a_sealed_plain_segment)
{
    reel_verify_report_t rep;
    char *p[NAMES_MAX], path[PATH_MAX];
    rec_pos_t recs[512];
    uint8_t *img;
    size_t len;
    build_log();
    size_t np = list_names(".seg", p);
    cr_assert_geq(np, 3);
    const char *victim = p[np / 2]; /* sealed: not the last */
    path_of(path, victim);
    cr_assert_eq(reel_test_read_file(path, &img, &len), 0);
    size_t n = walk_records(img, len, recs, 512);
    free(img);
    cr_assert_gt(n, 10);
    rec_pos_t r = recs[n / 2];
    cr_assert_eq(recs[0].offset, name_first(victim));
    flip_byte(victim, r.pos + REEL_RECORD_HEADER_SIZE + r.length / 2);
    cr_assert_eq(reel_log_verify(dir, &rep), REEL_ECORRUPT, "%s", rep.why);
    cr_assert_str_eq(rep.file, victim);
    cr_assert_eq(rep.bad_offset, r.offset);
    cr_assert_eq(rep.bad_pos, r.pos);
    cr_assert_eq(rep.next_offset, r.offset, "records before it were checked");
    cr_assert(strstr(rep.why, "payload checksum") != NULL, "%s", rep.why);
    free_names(p, np);
}

Test(verify, byte_flipped_in_a_compressed_block)
{
    reel_verify_report_t rep;
    char *z[NAMES_MAX];
    build_log();
    size_t nz = list_names(".zseg", z);
    cr_assert_geq(nz, 3);
    const char *victim = z[nz / 2];
    flip_byte(victim, REEL_SEGMENT_HEADER_SIZE + 20); /* inside the first frame */
    cr_assert_eq(reel_log_verify(dir, &rep), REEL_ECORRUPT, "%s", rep.why);
    cr_assert_str_eq(rep.file, victim);
    cr_assert_eq(rep.bad_offset, name_first(victim), "the block's first offset");
    cr_assert_eq(rep.bad_pos, REEL_SEGMENT_HEADER_SIZE, "the frame's position");
    free_names(z, nz);
}

Test(verify, deleted_middle_segment_is_missing)
{
    reel_verify_report_t rep;
    char *p[NAMES_MAX], path[PATH_MAX];
    build_log();
    size_t np = list_names(".seg", p);
    cr_assert_geq(np, 3);
    path_of(path, p[1]);
    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(reel_log_verify(dir, &rep), REEL_EMISSING, "%s", rep.why);
    cr_assert_str_eq(rep.file, p[2], "names the segment after the gap");
    cr_assert_eq(rep.bad_offset, name_first(p[1]), "the first missing offset");
    cr_assert(strstr(rep.why, "missing") != NULL, "%s", rep.why);
    cr_assert_eq(rep.next_offset, name_first(p[1]));
    free_names(p, np);
}

Test(verify, deleted_first_segment_is_missing)
{
    reel_verify_report_t rep;
    char *z[NAMES_MAX], path[PATH_MAX];
    build_log();
    size_t nz = list_names(".zseg", z);
    path_of(path, z[0]);
    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(reel_log_verify(dir, &rep), REEL_EMISSING, "%s", rep.why);
    cr_assert_str_eq(rep.file, z[1]);
    cr_assert_eq(rep.bad_offset, 0);
    free_names(z, nz);
}

/* Rewrites a plain segment's header through f (valid checksum after). */
static void rewrite_header(const char *name, void (*f)(reel_segment_header_t *h))
{
    char path[PATH_MAX];
    uint8_t *img;
    size_t len;
    reel_segment_header_t h;
    path_of(path, name);
    cr_assert_eq(reel_test_read_file(path, &img, &len), 0);
    cr_assert_eq(reel_segment_header_decode(img, &h), 0);
    f(&h);
    reel_segment_header_encode(img, &h);
    cr_assert_eq(reel_test_write_file(path, img, len), 0);
    free(img);
}

static void break_chain(reel_segment_header_t *h)
{
    h->prev_checksum ^= 1;
}

static void bump_version(reel_segment_header_t *h)
{
    h->version = REEL_FORMAT_VERSION + 1;
}

Test(verify, chain_broken_between_segments)
{
    reel_verify_report_t rep;
    char *p[NAMES_MAX];
    build_log();
    size_t np = list_names(".seg", p);
    rewrite_header(p[1], break_chain);
    cr_assert_eq(reel_log_verify(dir, &rep), REEL_ECHAIN, "%s", rep.why);
    cr_assert_str_eq(rep.file, p[1]);
    cr_assert_eq(rep.bad_offset, name_first(p[1]));
    cr_assert_eq(rep.bad_pos, 0);
    free_names(p, np);
}

Test(verify, unknown_format_version)
{
    reel_verify_report_t rep;
    char *p[NAMES_MAX];
    build_log();
    size_t np = list_names(".seg", p);
    rewrite_header(p[0], bump_version);
    cr_assert_eq(reel_log_verify(dir, &rep), REEL_EVERSION, "%s", rep.why);
    cr_assert_str_eq(rep.file, p[0]);
    free_names(p, np);
}

Test(verify, truncated_plain_segment_is_corrupt)
{
    reel_verify_report_t rep;
    char *p[NAMES_MAX], path[PATH_MAX];
    build_log();
    size_t np = list_names(".seg", p);
    path_of(path, p[0]);
    cr_assert_eq(truncate(path, SEG_SIZE / 2), 0);
    cr_assert_eq(reel_log_verify(dir, &rep), REEL_ECORRUPT, "%s", rep.why);
    cr_assert_str_eq(rep.file, p[0]);
    cr_assert(strstr(rep.why, "short file") != NULL, "%s", rep.why);
    free_names(p, np);
}

/* Garbage right after the last record of the active segment: a partial
 * batch, so a torn tail; acknowledged records are all there. */
static void tear_tail(char *victim, size_t len)
{
    char *p[NAMES_MAX], path[PATH_MAX];
    rec_pos_t recs[512];
    uint8_t *img;
    size_t flen;
    size_t np = list_names(".seg", p);
    snprintf(victim, len, "%s", p[np - 1]);
    path_of(path, victim);
    cr_assert_eq(reel_test_read_file(path, &img, &flen), 0);
    size_t n = walk_records(img, flen, recs, 512);
    cr_assert_gt(n, 0);
    cr_assert_eq(recs[n - 1].offset, TOTAL - 1);
    uint64_t end = recs[n - 1].pos + reel_record_stride(recs[n - 1].length);
    memset(img + end, 0xab, 40); /* no valid record header: a torn write */
    cr_assert_eq(reel_test_write_file(path, img, flen), 0);
    free(img);
    free_names(p, np);
}

Test(verify, garbage_after_the_last_record_is_a_torn_tail)
{
    reel_verify_report_t rep;
    char victim[64];
    build_log();
    tear_tail(victim, sizeof(victim));
    cr_assert_eq(reel_log_verify(dir, &rep), REEL_ETORN, "%s", rep.why);
    cr_assert_str_eq(rep.file, victim);
    cr_assert_eq(rep.bad_offset, TOTAL);
    cr_assert_eq(rep.records, TOTAL, "acknowledged records intact");
    cr_assert_eq(rep.next_offset, TOTAL);
    cr_assert_eq(rep.attempts, 2, "looked twice: a live writer could explain it");
    /* A writable open cuts it; then the log is whole. */
    cr_assert_eq(reel_log_close(open_log(true)), 0);
    expect_whole(&rep);
    cr_assert_eq(rep.next_offset, TOTAL);
}

Test(verify, plain_copy_beside_its_zseg_is_noted)
{
    reel_verify_report_t rep;
    char *p[NAMES_MAX], seg[PATH_MAX], zseg[PATH_MAX];
    reel_io_t *io;
    build_log();
    size_t np = list_names(".seg", p);
    path_of(seg, p[0]);
    snprintf(zseg, sizeof(zseg), "%.*s.zseg", (int)(strlen(seg) - 4), seg);
    cr_assert_eq(reel_io_sync_create(&io), 0);
    cr_assert_eq(reel_zseg_compress(io, seg, zseg), 0); /* a crash before the unlink */
    reel_io_destroy(io);
    expect_whole(&rep);
    cr_assert_eq(rep.leftover_plain, 1);
    cr_assert_eq(rep.segments, rep.plain_segments + rep.zseg_segments);
    cr_assert_eq(rep.records, TOTAL);
    /* The .zseg is the segment: damage in the .seg goes unseen. */
    flip_byte(p[0], REEL_SEGMENT_HEADER_SIZE + 100);
    expect_whole(&rep);
    free_names(p, np);
}

Test(verify, whole_while_another_handle_has_it_open_for_writing)
{
    reel_verify_report_t rep;
    build_log();
    reel_log_t *log = open_log(false);
    append_groups(log, TOTAL / GROUP, 4);
    expect_whole(&rep);
    cr_assert_eq(rep.next_offset, TOTAL + 4 * GROUP);
    cr_assert_eq(reel_log_close(log), 0);
}

/* A writer that appends (rolling over, compressing and unlinking sealed
 * segments as it goes) until told to stop. It records failures rather
 * than asserting: Criterion's asserts belong to the test's own thread. */
typedef struct live {
    reel_log_t *log;
    uint64_t groups;
    int error;
    int stop;
} live_t;

static void *live_writer(void *arg)
{
    live_t *l = arg;
    uint8_t buf[GROUP][200];
    reel_log_entry_t e[GROUP];
    while (!__atomic_load_n(&l->stop, __ATOMIC_ACQUIRE) && l->error == 0) {
        for (uint32_t k = 0; k < GROUP; k++) {
            memset(buf[k], 'x', sizeof(buf[k]));
            e[k] = (reel_log_entry_t){1, (uint32_t)(100 + k * 10), buf[k]};
        }
        l->error = reel_log_append_group(l->log, e, GROUP, 0, NULL);
        l->groups++;
        if (l->error == 0 && l->groups % 40 == 0)
            l->error = reel_log_seal(l->log);
    }
    return NULL;
}

Test(verify, whole_while_a_writer_appends_rolls_over_and_compresses)
{
    reel_verify_report_t rep;
    pthread_t t;
    build_log();
    live_t l = {open_log(false), TOTAL / GROUP, 0, 0};
    cr_assert_eq(pthread_create(&t, NULL, live_writer, &l), 0);
    uint64_t before = 0;
    for (int i = 0; i < 40; i++) {
        int rc = reel_log_verify(dir, &rep);
        cr_assert_eq(rc, 0, "pass %d: %s: %s at %lu: %s", i, reel_err_name(rc), rep.file,
                     (unsigned long)rep.bad_offset, rep.why);
        cr_assert_geq(rep.next_offset, before, "the log only grows");
        cr_assert_eq(rep.next_offset % GROUP, 0, "whole groups only");
        before = rep.next_offset;
    }
    __atomic_store_n(&l.stop, 1, __ATOMIC_RELEASE);
    pthread_join(t, NULL);
    cr_assert_eq(l.error, 0, "writer: %s", reel_strerror(l.error));
    cr_assert_gt(before, TOTAL, "the writer moved on");
    cr_assert_eq(reel_log_close(l.log), 0);
    expect_whole(&rep);
    cr_assert_eq(rep.next_offset, l.groups * GROUP);
}
