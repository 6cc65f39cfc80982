/*
 * cmd_verify.c: `reel verify`, the whole-log check (engine/verify.h) as a
 * command: a report, and an exit status that scripts can act on.
 *
 * Exit status (cmds.h; 3 is verify's own):
 *   0  the log is whole;
 *   1  it is not: corruption, a broken hash chain, a missing segment or an
 *      unreadable format version, named by segment file, offset and byte;
 *   2  bad usage, or the check could not run (no such directory, I/O);
 *   3  whole but for a torn tail: a partial last batch that was never
 *      acknowledged, which the next writable open cuts.
 * It never changes the log and takes no lock: it may run beside a writer.
 */
#include "tools/cmds.h"
#include "tools/tool_util.h"
#include "engine/common.h"
#include "engine/datadir.h"
#include "engine/log.h"
#include "engine/verify.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <limits.h>
#include <dirent.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VERIFY_EXIT_WHOLE 0
#define VERIFY_EXIT_DAMAGED 1
#define VERIFY_EXIT_ERROR 2
#define VERIFY_EXIT_TORN 3

typedef struct verify_opts {
    const char *dir; /* --data, default ./data */
    bool json;       /* one JSON object instead of text */
} verify_opts_t;

static void verify_usage(FILE *f)
{
    fprintf(f,
            "usage: reel verify [--data DIR] [--json]\n"
            "\n"
            "Checks the whole log: every segment follows the one before (offsets\n"
            "and hash chain), every record of every plain segment, every block and\n"
            "record of every compressed segment. Changes nothing and takes no lock,\n"
            "so it may run beside a writer.\n"
            "\n"
            "  --data DIR   the data directory; the log is DIR/log (default ./data)\n"
            "  --json       print the report as one JSON object\n"
            "\n"
            "exit status:\n"
            "  0  the log is whole\n"
            "  1  it is not: corruption, a broken hash chain, a missing segment or an\n"
            "     unsupported format version (the report names the segment file,\n"
            "     the offset and the byte)\n"
            "  2  bad usage, or the check could not run (no such directory, I/O error)\n"
            "  3  whole but for a torn tail: a partial last batch that was never\n"
            "     acknowledged; the next writable open cuts it\n");
}

/* Fills o from argv. Returns 0, 1 when --help was printed, or REEL_EUSAGE. */
static int verify_parse(int argc, char **argv, verify_opts_t *o)
{
    *o = (verify_opts_t){"./data", false};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            verify_usage(stdout);
            return 1;
        } else if (strcmp(a, "--json") == 0) {
            o->json = true;
        } else if (strncmp(a, "--data=", 7) == 0 && a[7] != '\0') {
            o->dir = a + 7;
        } else if (strcmp(a, "--data") == 0 && i + 1 < argc && argv[i + 1][0] != '\0') {
            o->dir = argv[++i];
        } else if (strcmp(a, "--data") == 0 || strncmp(a, "--data=", 7) == 0) {
            fprintf(stderr, "reel verify: --data needs a directory\n");
            return REEL_EUSAGE;
        } else {
            fprintf(stderr, "reel verify: unknown argument '%s' (see reel verify --help)\n", a);
            return REEL_EUSAGE;
        }
    }
    return 0;
}

static int exit_code(int status)
{
    if (status == 0)
        return VERIFY_EXIT_WHOLE;
    if (status == REEL_ETORN)
        return VERIFY_EXIT_TORN;
    if (status == REEL_ECORRUPT || status == REEL_ECHAIN || status == REEL_EMISSING ||
        status == REEL_EVERSION)
        return VERIFY_EXIT_DAMAGED;
    return VERIFY_EXIT_ERROR; /* -errno: the check did not run to the end */
}

/* "whole", "torn", "corrupt", ... for the report. */
static const char *status_word(int status)
{
    switch (status) {
    case 0:
        return "whole";
    case REEL_ETORN:
        return "torn";
    case REEL_ECORRUPT:
        return "corrupt";
    case REEL_ECHAIN:
        return "chain";
    case REEL_EMISSING:
        return "missing";
    case REEL_EVERSION:
        return "version";
    default:
        return "error";
    }
}

static void print_counts(const char *dir, const reel_verify_report_t *r)
{
    printf("log:         %s\n", dir);
    printf("segments:    %" PRIu64 " (%" PRIu64 " plain, %" PRIu64 " compressed)\n",
           r->segments, r->plain_segments, r->zseg_segments);
    if (r->records > 0)
        printf("records:     %" PRIu64 " (offsets 0..%" PRIu64 ")\n", r->records,
               r->next_offset - 1);
    else
        printf("records:     0\n");
    printf("raw bytes:   %" PRIu64 " (records, without block padding)\n", r->raw_bytes);
    printf("file bytes:  %" PRIu64 "\n", r->file_bytes);
    if (r->zseg_file_bytes > 0)
        printf("compression: %.2fx (%" PRIu64 " raw bytes in %" PRIu64
               " bytes of compressed segments)\n",
               (double)r->zseg_raw_bytes / (double)r->zseg_file_bytes, r->zseg_raw_bytes,
               r->zseg_file_bytes);
    else
        printf("compression: none (no compressed segments)\n");
    if (r->leftover_plain > 0)
        printf("note:        %" PRIu64 " .seg file(s) left beside their .zseg (compression "
               "finished; the next writable open removes them)\n",
               r->leftover_plain);
}

static void print_text(const char *dir, const reel_verify_report_t *r)
{
    /* A check that could not start has nothing to count. */
    if (exit_code(r->status) != VERIFY_EXIT_ERROR || r->segments > 0)
        print_counts(dir, r);
    if (r->status == 0) {
        printf("status:      whole\n");
    } else if (r->status == REEL_ETORN) {
        printf("status:      torn tail in %s at offset %" PRIu64 ", byte %" PRIu64 ": %s\n",
               r->file, r->bad_offset, r->bad_pos, r->why);
        printf("             an unfinished last batch that was never acknowledged; the next\n"
               "             writable open cuts it. Every acknowledged record is intact.\n");
    } else if (exit_code(r->status) == VERIFY_EXIT_DAMAGED) {
        printf("status:      NOT WHOLE (%s): %s at offset %" PRIu64 ", byte %" PRIu64 ": %s\n",
               reel_err_name(r->status), r->file, r->bad_offset, r->bad_pos, r->why);
        printf("             the records before offset %" PRIu64 " were checked and are whole\n",
               r->next_offset);
    } else {
        printf("status:      the check could not finish: %s\n", r->why);
    }
}

/* s as a JSON string. jansson wants UTF-8 and a path or a message may
 * hold any bytes: those that are not ASCII become '?'. */
static json_t *json_ascii(const char *s)
{
    size_t len = strlen(s);
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return NULL;
    for (size_t i = 0; i <= len; i++)
        copy[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
    json_t *j = json_string(copy);
    free(copy);
    return j;
}

/* Adds the numbers of the report to o. */
static void json_counts(json_t *o, const reel_verify_report_t *r)
{
    const struct {
        const char *key;
        uint64_t value;
    } n[] = {
        {"segments", r->segments},           {"plain_segments", r->plain_segments},
        {"zseg_segments", r->zseg_segments}, {"leftover_plain", r->leftover_plain},
        {"records", r->records},             {"raw_bytes", r->raw_bytes},
        {"file_bytes", r->file_bytes},       {"zseg_raw_bytes", r->zseg_raw_bytes},
        {"zseg_file_bytes", r->zseg_file_bytes}, {"next_offset", r->next_offset},
        {"last_time_ms", r->last_time_ms},   {"attempts", r->attempts},
    };
    for (size_t i = 0; i < sizeof(n) / sizeof(n[0]); i++)
        json_object_set_new(o, n[i].key, json_integer((json_int_t)n[i].value));
    json_object_set_new(o, "compression_ratio",
                        r->zseg_file_bytes > 0
                            ? json_real((double)r->zseg_raw_bytes / (double)r->zseg_file_bytes)
                            : json_null());
}

/* The report as one JSON object on one line. */
static int print_json(const char *dir, const reel_verify_report_t *r)
{
    json_t *o = json_object();
    if (o == NULL)
        return -ENOMEM;
    json_object_set_new(o, "dir", json_ascii(dir));
    json_object_set_new(o, "status", json_string(status_word(r->status)));
    json_object_set_new(o, "code", json_integer(r->status));
    json_counts(o, r);
    if (r->status != 0) {
        json_object_set_new(o, "file", json_ascii(r->file));
        json_object_set_new(o, "bad_offset", json_integer((json_int_t)r->bad_offset));
        json_object_set_new(o, "bad_pos", json_integer((json_int_t)r->bad_pos));
        json_object_set_new(o, "why", json_ascii(r->why));
    }
    int rc = json_dumpf(o, stdout, JSON_COMPACT);
    json_decref(o);
    putchar('\n');
    return rc == 0 ? 0 : -EIO;
}

/* The log's segment files' total size: the progress line's 100 %. */
static uint64_t log_bytes(const char *log_dir)
{
    uint64_t total = 0;
    DIR *d = opendir(log_dir);
    struct dirent *e;
    struct stat st;
    char path[PATH_MAX + 300];
    while (d != NULL && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        bool seg = (n > 4 && strcmp(e->d_name + n - 4, ".seg") == 0) ||
                   (n > 5 && strcmp(e->d_name + n - 5, ".zseg") == 0);
        snprintf(path, sizeof path, "%s/%s", log_dir, e->d_name);
        if (seg && stat(path, &st) == 0)
            total += (uint64_t)st.st_size;
    }
    if (d != NULL)
        closedir(d);
    return total;
}

static void verify_progress(void *ctx, const reel_verify_report_t *rep)
{
    tool_progress_draw(ctx, rep->file_bytes);
}

int reel_cmd_verify(int argc, char **argv)
{
    verify_opts_t o;
    reel_verify_report_t rep;
    int rc = verify_parse(argc, argv, &o);
    if (rc != 0)
        return rc > 0 ? VERIFY_EXIT_WHOLE : VERIFY_EXIT_ERROR;
    char log_dir[PATH_MAX];
    if (reel_data_log_path(o.dir, log_dir, sizeof(log_dir)) != 0) {
        fprintf(stderr, "reel verify: %s: path too long\n", o.dir);
        return 2;
    }
    tool_progress_t prog;
    tool_progress_start(&prog, "bytes", log_bytes(log_dir));
    int status = reel_log_verify_progress(log_dir, &rep, prog.on ? verify_progress : NULL, &prog);
    tool_progress_end(&prog, rep.file_bytes);
    if (o.json) {
        if (print_json(o.dir, &rep) != 0)
            fprintf(stderr, "reel verify: could not write the JSON report\n");
    } else {
        print_text(o.dir, &rep);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "reel verify: writing the report failed\n");
        return VERIFY_EXIT_ERROR;
    }
    if (exit_code(status) == VERIFY_EXIT_ERROR)
        fprintf(stderr, "reel verify: %s\n", rep.why);
    return exit_code(status);
}
