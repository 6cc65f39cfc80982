/*
 * test_cli.c: the `reel` binary's dump and verify subcommands, run as a
 * user would run them: fork and exec $REEL_BIN/reel on a log built with
 * the real API, then check the exit status (0 whole, 1 damaged, 2 error or
 * usage, 3 torn tail) and what it printed.
 *
 * REEL_BIN is the build directory (the Makefile sets it); ./build when
 * unset, for a run by hand from the repository root.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <jansson.h>

#include "engine/common.h"
#include "engine/datadir.h"
#include "engine/event.h"
#include "engine/log.h"
#include "engine/record.h"
#include "engine/segment.h"
#include "tests/harness.h"

#define SEG_SIZE (64u << 10)
#define GROUP 8u
#define GROUPS 100u
#define TOTAL (GROUPS * GROUP)
#define NAMES_MAX 256

static char tmp[PATH_MAX];       /* scratch: the data directory and the outputs */
static char data_dir[PATH_MAX + 8];  /* the data directory the CLI is given */
static char dir[PATH_MAX + 16];  /* the log inside it */

static void setup(void)
{
    reel_test_tmpdir(tmp, sizeof(tmp), "cli");
    snprintf(data_dir, sizeof(data_dir), "%s/data", tmp);
    snprintf(dir, sizeof(dir), "%s/" REEL_DATA_LOG_SUBDIR, data_dir);
    if (mkdir(data_dir, 0755) != 0)
        abort();
}

static void teardown(void)
{
    reel_test_rmtree(tmp);
}

TestSuite(cli, .init = setup, .fini = teardown, .timeout = 60);

typedef reel_test_run_t run_t;
#define run_reel(...) reel_test_reel_run(tmp, __VA_ARGS__)
#define run_free reel_test_run_free

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++)
        n += *s == '\n';
    return n;
}

/* A log of TOTAL records: the first half in compressed segments, the rest
 * plain (the last of them active). Payload i starts "ev-%08d". */
static void build_log(void)
{
    static uint8_t bufs[GROUP][300];
    reel_log_entry_t e[GROUP];
    char err[256];
    reel_log_t *log;
    for (int phase = 0; phase < 2; phase++) {
        reel_log_options_t o = {.segment_size = SEG_SIZE, .no_compress = phase == 1};
        int rc = reel_log_open(dir, &o, &log, err, sizeof(err));
        cr_assert_eq(rc, 0, "open: %s", err);
        for (uint64_t g = phase * GROUPS / 2; g < (phase + 1) * GROUPS / 2; g++) {
            for (uint32_t k = 0; k < GROUP; k++) {
                uint64_t off = g * GROUP + k;
                uint32_t len = (uint32_t)(80 + off % 200);
                memset(bufs[k], 'q', len);
                snprintf((char *)bufs[k], 16, "ev-%08llu", (unsigned long long)off);
                e[k] = (reel_log_entry_t){(uint16_t)(1 + off % 5), len, bufs[k]};
            }
            cr_assert_eq(reel_log_append_group(log, e, GROUP, 0, NULL), 0);
        }
        if (phase == 0)
            cr_assert_eq(reel_log_seal(log), 0);
        cr_assert_eq(reel_log_close(log), 0);
    }
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The plain segment files, sorted by first offset. */
static size_t list_plain(char **names)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;
    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL) {
        uint64_t first;
        if (reel_segment_parse_name(e->d_name, ".seg", &first) && n < NAMES_MAX)
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

/* Position, offset and end of the last record of a plain segment image
 * before `stop` records (all when stop is 0): records start at block 1,
 * 8-byte strides, a zero header mid-block is batch padding. */
static void find_record(const uint8_t *img, size_t len, size_t want, uint64_t *pos,
                        uint64_t *offset, uint64_t *end)
{
    uint64_t p = REEL_SEGMENT_HEADER_SIZE;
    size_t n = 0;
    while (p + REEL_RECORD_HEADER_SIZE <= len) {
        reel_record_header_t h;
        if (reel_bytes_zero(img + p, REEL_RECORD_HEADER_SIZE)) {
            if (p % REEL_BLOCK_SIZE == 0)
                break;
            p = reel_align_up(p, REEL_BLOCK_SIZE);
            continue;
        }
        cr_assert_eq(reel_record_decode_header(img + p, &h), 0);
        *pos = p;
        *offset = h.offset;
        *end = p + reel_record_stride(h.length);
        if (++n == want)
            return;
        p = *end;
    }
    cr_assert(want == 0, "segment has fewer than %zu records", want);
}

/* Flips a payload byte of the 20th record of a sealed plain segment;
 * returns its file name (caller frees), offset and position. */
static char *corrupt_sealed(uint64_t *offset, uint64_t *pos)
{
    char *names[NAMES_MAX], path[PATH_MAX * 2];
    uint8_t *img;
    size_t len;
    uint64_t end;
    size_t n = list_plain(names);
    cr_assert_geq(n, 2);
    snprintf(path, sizeof(path), "%s/%s", dir, names[0]);
    cr_assert_eq(reel_test_read_file(path, &img, &len), 0);
    find_record(img, len, 20, pos, offset, &end);
    img[*pos + REEL_RECORD_HEADER_SIZE + 30] ^= 0x01;
    cr_assert_eq(reel_test_write_file(path, img, len), 0);
    free(img);
    char *victim = strdup(names[0]);
    free_names(names, n);
    return victim;
}

Test(cli, verify_whole_log_exits_0)
{
    build_log();
    run_t r = run_reel("verify", "--data", data_dir, NULL);
    cr_assert_eq(r.status, 0, "out: %s err: %s", r.out, r.err);
    cr_assert(strstr(r.out, "status:      whole") != NULL, "%s", r.out);
    cr_assert(strstr(r.out, "records:     800 (offsets 0..799)") != NULL, "%s", r.out);
    cr_assert(strstr(r.out, "compression: ") != NULL && strstr(r.out, "x (") != NULL, "%s", r.out);
    run_free(&r);
    r = run_reel("verify", "--json", "--data=", NULL);
    cr_assert_eq(r.status, 2, "an empty --data= is bad usage");
    run_free(&r);
    r = run_reel("verify", "--json", "--data", data_dir, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_eq(count_lines(r.out), 1);
    cr_assert(strstr(r.out, "\"status\":\"whole\"") != NULL, "%s", r.out);
    cr_assert(strstr(r.out, "\"records\":800") != NULL, "%s", r.out);
    cr_assert(strstr(r.out, "\"next_offset\":800") != NULL, "%s", r.out);
    run_free(&r);
}

Test(cli, verify_corruption_exits_1_and_names_the_place)
{
    uint64_t offset, pos;
    char want[128];
    build_log();
    char *victim = corrupt_sealed(&offset, &pos);
    run_t r = run_reel("verify", "--data", data_dir, NULL);
    cr_assert_eq(r.status, 1, "out: %s err: %s", r.out, r.err);
    cr_assert(strstr(r.out, victim) != NULL, "names %s: %s", victim, r.out);
    snprintf(want, sizeof(want), "offset %llu, byte %llu", (unsigned long long)offset,
             (unsigned long long)pos);
    cr_assert(strstr(r.out, want) != NULL, "wants '%s': %s", want, r.out);
    cr_assert(strstr(r.out, "CORRUPT") != NULL, "%s", r.out);
    run_free(&r);
    r = run_reel("verify", "--data", data_dir, "--json", NULL);
    cr_assert_eq(r.status, 1);
    snprintf(want, sizeof(want), "\"bad_offset\":%llu", (unsigned long long)offset);
    cr_assert(strstr(r.out, want) != NULL, "wants '%s': %s", want, r.out);
    cr_assert(strstr(r.out, "\"status\":\"corrupt\"") != NULL, "%s", r.out);
    run_free(&r);
    /* dump cannot open it: an error, exit 2, and a pointer to verify. */
    r = run_reel("dump", "--data", data_dir, NULL);
    cr_assert_eq(r.status, 2, "out: %s err: %s", r.out, r.err);
    cr_assert(strstr(r.err, victim) != NULL, "%s", r.err);
    cr_assert(strstr(r.err, "reel verify") != NULL, "%s", r.err);
    run_free(&r);
    free(victim);
}

Test(cli, verify_missing_segment_exits_1)
{
    char *names[NAMES_MAX], path[PATH_MAX * 2];
    build_log();
    size_t n = list_plain(names);
    cr_assert_geq(n, 3);
    snprintf(path, sizeof(path), "%s/%s", dir, names[1]);
    cr_assert_eq(unlink(path), 0);
    run_t r = run_reel("verify", "--data", data_dir, NULL);
    cr_assert_eq(r.status, 1, "out: %s err: %s", r.out, r.err);
    cr_assert(strstr(r.out, "MISSING") != NULL, "%s", r.out);
    cr_assert(strstr(r.out, names[2]) != NULL, "%s", r.out);
    run_free(&r);
    free_names(names, n);
}

Test(cli, verify_torn_tail_exits_3)
{
    char *names[NAMES_MAX], path[PATH_MAX * 2], want[64];
    uint8_t *img;
    size_t len;
    uint64_t pos, offset, end;
    build_log();
    size_t n = list_plain(names);
    snprintf(path, sizeof(path), "%s/%s", dir, names[n - 1]);
    cr_assert_eq(reel_test_read_file(path, &img, &len), 0);
    find_record(img, len, 0, &pos, &offset, &end);
    cr_assert_eq(offset, TOTAL - 1);
    memset(img + end, 0x77, 24); /* a partial, never acknowledged write */
    cr_assert_eq(reel_test_write_file(path, img, len), 0);
    free(img);
    run_t r = run_reel("verify", "--data", data_dir, NULL);
    cr_assert_eq(r.status, 3, "out: %s err: %s", r.out, r.err);
    cr_assert(strstr(r.out, "torn tail") != NULL, "%s", r.out);
    snprintf(want, sizeof(want), "offset %u", TOTAL);
    cr_assert(strstr(r.out, want) != NULL, "%s", r.out);
    run_free(&r);
    /* dump opens read-only and shows every acknowledged record. */
    r = run_reel("dump", "--data", data_dir, "--json", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_eq(count_lines(r.out), TOTAL);
    run_free(&r);
    free_names(names, n);
}

Test(cli, verify_usage_and_errors_exit_2)
{
    char absent[PATH_MAX * 2];
    snprintf(absent, sizeof(absent), "%s/absent", tmp);
    run_t r = run_reel("verify", "--data", absent, NULL);
    cr_assert_eq(r.status, 2, "out: %s err: %s", r.out, r.err);
    cr_assert(strstr(r.err, "absent") != NULL, "%s", r.err);
    run_free(&r);
    r = run_reel("verify", "--bogus", NULL);
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err, "--bogus") != NULL, "%s", r.err);
    run_free(&r);
    r = run_reel("verify", "--help", NULL);
    cr_assert_eq(r.status, 0);
    cr_assert(strstr(r.out, "exit status") != NULL && strstr(r.out, "  3 ") != NULL, "%s",
              r.out);
    run_free(&r);
}

/* Checks one --json line of dump: the keys in order and offset i. */
static void check_json_line(const char *line, size_t len, uint64_t i)
{
    char head[64], hex[32];
    snprintf(head, sizeof(head), "{\"offset\":%llu,\"type\":%llu,\"at\":",
             (unsigned long long)i, (unsigned long long)(1 + i % 5));
    cr_assert(strncmp(line, head, strlen(head)) == 0, "line %llu: %.*s",
              (unsigned long long)i, (int)len, line);
    cr_assert(len > 2 && line[len - 1] == '}', "line %llu ends the object", (unsigned long long)i);
    cr_assert(memmem(line, len, ",\"size\":", 8) != NULL);
    cr_assert(memmem(line, len, ",\"flags\":", 9) != NULL);
    /* "ev-%08llu" in hex: 65 76 2d, then the digits. */
    char name[16];
    snprintf(name, sizeof(name), "ev-%08llu", (unsigned long long)i);
    for (int k = 0; k < 11; k++)
        snprintf(hex + 2 * k, 3, "%02x", (unsigned char)name[k]);
    cr_assert(memmem(line, len, hex, 22) != NULL, "payload of %llu", (unsigned long long)i);
}

Test(cli, dump_json_has_one_line_per_record)
{
    build_log();
    run_t r = run_reel("dump", "--data", data_dir, "--json", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_eq(count_lines(r.out), TOTAL);
    const char *line = r.out;
    for (uint64_t i = 0; i < TOTAL; i++) {
        const char *nl = strchr(line, '\n');
        cr_assert_not_null(nl);
        check_json_line(line, (size_t)(nl - line), i);
        cr_assert(memmem(line, (size_t)(nl - line), "\"truncated\":true", 16) != NULL,
                  "payloads of 80+ bytes are cut to 64");
        line = nl + 1;
    }
    run_free(&r);
    r = run_reel("dump", "--data", data_dir, "--json", "--full", "--from", "5", "--limit", "3", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_eq(count_lines(r.out), 3);
    cr_assert(strstr(r.out, "truncated") == NULL, "%s", r.out);
    check_json_line(r.out, (size_t)(strchr(r.out, '\n') - r.out), 5);
    run_free(&r);
}

Test(cli, dump_text_range_and_limit)
{
    build_log();
    run_t r = run_reel("dump", "--data", data_dir, "--from", "10", "--to", "20", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_eq(count_lines(r.out), 10);
    cr_assert(strncmp(r.out, "offset=10 type=1 at=", 20) == 0, "%s", r.out);
    cr_assert(strstr(r.out, "Z size=") != NULL, "ISO-8601 UTC time: %s", r.out);
    cr_assert(strstr(r.out, "payload=65762d") != NULL, "%s", r.out);
    cr_assert(strstr(r.out, "...\n") != NULL, "long payloads are cut: %s", r.out);
    cr_assert(strstr(r.out, "offset=20 ") == NULL, "--to is exclusive");
    run_free(&r);
    r = run_reel("dump", "--data", data_dir, "--limit=4", "--from=790", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_eq(count_lines(r.out), 4);
    run_free(&r);
    r = run_reel("dump", "--data", data_dir, "--from", "5000", NULL);
    cr_assert_eq(r.status, 0, "past the end: nothing to print");
    cr_assert_eq(count_lines(r.out), 0);
    run_free(&r);
}

Test(cli, dump_bad_numbers_and_paths_exit_2)
{
    const char *bad[][2] = {
        {"--from", "abc"}, {"--limit", "-1"}, {"--to", "12x"},
        {"--from", ""},    {"--limit", "99999999999999999999999"},
    };
    char absent[PATH_MAX * 2];
    build_log();
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        run_t r = run_reel("dump", "--data", data_dir, bad[i][0], bad[i][1], NULL);
        cr_assert_eq(r.status, 2, "%s %s", bad[i][0], bad[i][1]);
        cr_assert(strstr(r.err, "not a number") != NULL, "%s", r.err);
        cr_assert_eq(count_lines(r.out), 0);
        run_free(&r);
    }
    run_t r = run_reel("dump", "--data", data_dir, "--from", NULL);
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err, "needs a value") != NULL, "%s", r.err);
    run_free(&r);
    snprintf(absent, sizeof(absent), "%s/absent", tmp);
    r = run_reel("dump", "--data", absent, NULL);
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err, "absent") != NULL, "%s", r.err);
    run_free(&r);
    r = run_reel("dump", "--help", NULL);
    cr_assert_eq(r.status, 0);
    cr_assert(strstr(r.out, "--json") != NULL, "%s", r.out);
    run_free(&r);
}

/* Events print as the JSON /v1/log gives; --raw shows the stored bytes. */
Test(cli, dump_shows_events_as_json)
{
    reel_log_t *log;
    uint8_t buf[256];
    reel_event_t ev = {.type = REEL_EV_USER_CREATED, .user = 7, .handle = {"dachs", 5},
                       .display_name = {"Dachs \"Hund\"", 12}};
    reel_event_t follow = {.type = REEL_EV_FOLLOW_CREATED, .user = 7, .target = 9};
    cr_assert_eq(reel_log_open(dir, NULL, &log, NULL, 0), 0);
    int n = reel_event_encode(&ev, buf, sizeof(buf));
    cr_assert_gt(n, 0);
    cr_assert_eq(reel_log_append(log, ev.type, buf, (uint32_t)n, NULL), 0);
    n = reel_event_encode(&follow, buf, sizeof(buf));
    cr_assert_eq(reel_log_append(log, follow.type, buf, (uint32_t)n, NULL), 0);
    cr_assert_eq(reel_log_close(log), 0);

    run_t r = run_reel("dump", "--data", data_dir, "--json", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_eq(count_lines(r.out), 2);
    cr_assert(strstr(r.out, "\"type\":\"user.created\"") != NULL, "%s", r.out);
    cr_assert(strstr(r.out, "\"display_name\":\"Dachs \\\"Hund\\\"\"") != NULL, "%s", r.out);
    cr_assert(strstr(r.out, "{\"offset\":1,\"type\":\"follow.created\",") != NULL, "%s", r.out);
    cr_assert(strstr(r.out, "\"user_id\":7,\"target\":9}") != NULL, "%s", r.out);
    run_free(&r);
    r = run_reel("dump", "--data", data_dir, "--raw", NULL);
    cr_assert_eq(r.status, 0);
    cr_assert(strstr(r.out, "type=5 ") != NULL && strstr(r.out, "payload=010709") != NULL, "%s",
              r.out);
    run_free(&r);
}

/* The first file of the log dir whose name ends with ext, sorted. */
static char *first_file(const char *ext)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char *best = NULL;
    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL) {
        uint64_t first;
        if (reel_segment_parse_name(e->d_name, ext, &first) &&
            (best == NULL || strcmp(e->d_name, best) < 0)) {
            free(best);
            best = strdup(e->d_name);
        }
    }
    closedir(d);
    cr_assert_not_null(best, "no %s file", ext);
    return best;
}

/* Runs verify (text and --json) and dump on the damaged log: verify exits
 * 1 naming the file, dump exits 2 pointing to verify, and whatever dump
 * printed before it stopped are whole records in order. */
static void expect_damage_reported(const char *victim)
{
    run_t r = run_reel("verify", "--data", data_dir, NULL);
    cr_assert_eq(r.status, 1, "out: %s err: %s", r.out, r.err);
    cr_assert(strstr(r.out, "NOT WHOLE") != NULL && strstr(r.out, victim) != NULL, "%s", r.out);
    run_free(&r);
    r = run_reel("verify", "--data", data_dir, "--json", NULL);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.out, "\"bad_offset\":") != NULL && strstr(r.out, victim) != NULL, "%s",
              r.out);
    run_free(&r);
    r = run_reel("dump", "--data", data_dir, "--json", NULL);
    cr_assert_eq(r.status, 2, "out: %.300s err: %s", r.out, r.err);
    cr_assert(strstr(r.err, "reel verify") != NULL, "%s", r.err);
    size_t n = count_lines(r.out);
    cr_assert_lt(n, TOTAL);
    const char *line = r.out;
    for (uint64_t i = 0; i < n; i++) {
        const char *nl = strchr(line, '\n');
        check_json_line(line, (size_t)(nl - line), i);
        line = nl + 1;
    }
    run_free(&r);
}

/* A sealed plain segment cut short in the middle of a record: not a torn
 * tail (later segments follow it), so the log is not whole. */
Test(cli, verify_and_dump_truncated_sealed_segment)
{
    char *names[NAMES_MAX], path[PATH_MAX * 2];
    uint8_t *img;
    size_t len;
    uint64_t pos, offset, end;
    build_log();
    size_t n = list_plain(names);
    cr_assert_geq(n, 2);
    snprintf(path, sizeof(path), "%s/%s", dir, names[0]);
    cr_assert_eq(reel_test_read_file(path, &img, &len), 0);
    find_record(img, len, 20, &pos, &offset, &end);
    free(img);
    cr_assert_eq(truncate(path, (off_t)(pos + REEL_RECORD_HEADER_SIZE + 7)), 0);
    expect_damage_reported(names[0]);
    free_names(names, n);
}

/* A compressed segment with one byte changed inside its blocks. */
Test(cli, verify_and_dump_corrupt_compressed_segment)
{
    char path[PATH_MAX * 2];
    uint8_t *img;
    size_t len;
    build_log();
    char *victim = first_file(".zseg");
    snprintf(path, sizeof(path), "%s/%s", dir, victim);
    cr_assert_eq(reel_test_read_file(path, &img, &len), 0);
    img[len / 3] ^= 0x20;
    cr_assert_eq(reel_test_write_file(path, img, len), 0);
    free(img);
    expect_damage_reported(victim);
    free(victim);
}

/* A compressed segment cut in half: its footer (the block index) gone. */
Test(cli, verify_and_dump_truncated_compressed_segment)
{
    char path[PATH_MAX * 2];
    struct stat st;
    build_log();
    char *victim = first_file(".zseg");
    snprintf(path, sizeof(path), "%s/%s", dir, victim);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(truncate(path, st.st_size / 2), 0);
    expect_damage_reported(victim);
    free(victim);
}

/* stat on a log with compressed and plain segments: the counts of each,
 * the compression ratio from the .zseg footers, and records that are not
 * events counted apart. */
Test(cli, stat_segments_and_compression_ratio)
{
    build_log();
    run_t r = run_reel("stat", "--data", data_dir, "--json", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    json_error_t je;
    json_t *j = json_loads(r.out, 0, &je);
    cr_assert_not_null(j, "%s: %s", je.text, r.out);
    json_t *segs = json_object_get(j, "segments");
    cr_assert_gt(json_integer_value(json_object_get(segs, "compressed")), 0, "%s", r.out);
    cr_assert_gt(json_integer_value(json_object_get(segs, "plain")), 0, "%s", r.out);
    double ratio = json_real_value(json_object_get(segs, "compression_ratio"));
    cr_assert_gt(ratio, 2.0, "payloads of repeated bytes compress: %s", r.out);
    json_decref(j);
    run_free(&r);
    r = run_reel("stat", "--data", data_dir, NULL);
    cr_assert_eq(r.status, 0);
    cr_assert(strstr(r.out, "compression   ") != NULL && strstr(r.out, "x (records ") != NULL,
              "%s", r.out);
    run_free(&r);
}

/* Every subcommand: --help prints its usage on stdout and exits 0; an
 * unknown argument exits 2 with a message on stderr that names it, and
 * prints nothing on stdout. */
Test(cli, every_subcommand_has_help_and_refuses_unknown_arguments)
{
    const char *cmds[] = {"dump",   "verify",  "stat",       "inspect",  "export", "import",
                          "replay", "rebuild", "views-hash", "loadgen",  "bench",  "io-probe"};
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        char want[64];
        snprintf(want, sizeof(want), "usage: reel %s", cmds[i]);
        run_t r = run_reel(cmds[i], "--help", NULL);
        cr_assert_eq(r.status, 0, "%s --help: %s", cmds[i], r.err);
        cr_assert(strncmp(r.out, want, strlen(want)) == 0, "%s --help: %s", cmds[i], r.out);
        run_free(&r);
        r = run_reel(cmds[i], "--no-such-flag", NULL);
        cr_assert_eq(r.status, 2, "%s --no-such-flag", cmds[i]);
        cr_assert(strstr(r.err, cmds[i]) != NULL, "%s: %s", cmds[i], r.err);
        cr_assert(strstr(r.err, "--no-such-flag") != NULL, "%s names the flag: %s", cmds[i],
                  r.err);
        cr_assert_eq(r.out[0], '\0', "%s printed on stdout: %s", cmds[i], r.out);
        run_free(&r);
    }
    run_t r = run_reel("no-such-command", NULL);
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err, "unknown command") != NULL, "%s", r.err);
    run_free(&r);
}
