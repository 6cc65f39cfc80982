/*
 * cmd_views.c: `reel rebuild`, `reel replay` and `reel views-hash`: the
 * views as a function of the log (engine/replay.h).
 *
 *   rebuild      throws the views away and folds the whole log into new
 *                ones; refuses while a writer (reeld) holds the log
 *   replay       builds the views as they were before a given offset, or at
 *                a given time, into a new directory, to look at the past
 *   views-hash   a digest of the views' content, to compare live views
 *                with a rebuild
 */
#include "tools/cmds.h"
#include "engine/common.h"
#include "engine/datadir.h"
#include "engine/log.h"
#include "engine/replay.h"
#include "engine/views.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Progress on a terminal: at most this often. */
#define PROGRESS_INTERVAL_NS 100000000ull

typedef struct views_opts {
    const char *data;  /* --data */
    const char *into;  /* replay --into */
    uint64_t to;       /* replay --to */
    bool have_to;
    uint64_t at;       /* replay --at (ms since the epoch) */
    bool have_at;
} views_opts_t;

typedef struct progress {
    bool tty;
    uint64_t start_ns;
    uint64_t last_ns;
    uint64_t from;
} progress_t;

static void progress_cb(void *ctx, uint64_t applied, uint64_t to)
{
    progress_t *p = ctx;
    uint64_t now = reel_mono_ns();
    if (!p->tty || now - p->last_ns < PROGRESS_INTERVAL_NS)
        return;
    p->last_ns = now;
    double secs = (double)(now - p->start_ns) / 1e9;
    double rate = secs > 0 ? (double)(applied - p->from) / secs : 0;
    double left = rate > 0 ? (double)(to - applied) / rate : 0;
    fprintf(stderr, "\r  %" PRIu64 " / %" PRIu64 " events (%3.0f%%), %.0f events/s, %.0f s left   ",
            applied, to, to ? 100.0 * (double)applied / (double)to : 100.0, rate, left);
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-')
        return REEL_EUSAGE;
    *out = v;
    return 0;
}

/* --at: ms since the epoch, or a UTC time YYYY-MM-DDTHH:MM:SS[Z]. */
static int parse_time_ms(const char *s, uint64_t *out)
{
    struct tm tm = {0};
    if (parse_u64(s, out) == 0)
        return 0;
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (end == NULL || (*end != '\0' && strcmp(end, "Z") != 0))
        return REEL_EUSAGE;
    time_t t = timegm(&tm);
    if (t < 0)
        return REEL_EUSAGE;
    *out = (uint64_t)t * 1000u + 999u; /* the whole second is "at" it */
    return 0;
}

static int parse_opts(int argc, char **argv, views_opts_t *o)
{
    *o = (views_opts_t){REEL_DATA_DIR_DEFAULT, NULL, 0, false, 0, false};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (strcmp(a, "--data") == 0 && has_value) {
            o->data = argv[++i];
        } else if (strcmp(a, "--into") == 0 && has_value) {
            o->into = argv[++i];
        } else if (strcmp(a, "--to") == 0 && has_value) {
            if (parse_u64(argv[++i], &o->to) != 0) {
                fprintf(stderr, "reel %s: --to needs an offset (a number)\n", argv[0]);
                return REEL_EUSAGE;
            }
            o->have_to = true;
        } else if (strcmp(a, "--at") == 0 && has_value) {
            if (parse_time_ms(argv[++i], &o->at) != 0) {
                fprintf(stderr, "reel %s: --at needs a time: ms since the epoch, or "
                                "YYYY-MM-DDTHH:MM:SSZ (UTC)\n", argv[0]);
                return REEL_EUSAGE;
            }
            o->have_at = true;
        } else {
            fprintf(stderr, "reel %s: unknown or incomplete argument '%s' (see --help)\n",
                    argv[0], a);
            return REEL_EUSAGE;
        }
    }
    return 0;
}

static void print_hash(reel_views_t *v)
{
    uint8_t h[16];
    int rc = reel_views_hash(v, h);
    if (rc != 0) {
        fprintf(stderr, "reel: hashing the views: %s\n", reel_strerror(rc));
        return;
    }
    for (int i = 0; i < 16; i++)
        printf("%02x", h[i]);
    printf("  applied=%" PRIu64 "\n", reel_views_applied(v));
}

/* Folds the log of data_dir into the views in views_dir up to `to` (or,
 * with at, up to the first event after time *at), then prints the views'
 * hash. Returns the exit status. */
static int fold(const char *cmd, const char *data_dir, const char *views_dir, uint64_t to,
                const uint64_t *at)
{
    char log_dir[PATH_MAX], err[512];
    reel_log_options_t lo = {.read_only = true};
    reel_log_t *log = NULL;
    reel_views_t *v = NULL;
    progress_t p = {isatty(2) != 0, reel_mono_ns(), 0, 0};
    int rc = reel_data_log_path(data_dir, log_dir, sizeof(log_dir));
    if (rc == 0 && (rc = reel_log_open(log_dir, &lo, &log, err, sizeof(err))) != 0)
        fprintf(stderr, "reel %s: %s\n", cmd, err);
    if (rc == 0 && at != NULL && (rc = reel_replay_offset_at(log, *at, &to)) != 0)
        fprintf(stderr, "reel %s: finding time %" PRIu64 ": %s\n", cmd, *at, reel_strerror(rc));
    if (rc == 0 && at != NULL)
        fprintf(stderr, "reel %s: time %" PRIu64 " ms is just before offset %" PRIu64 "\n", cmd,
                *at, to);
    if (rc == 0 && (rc = reel_views_open(views_dir, &v)) != 0)
        fprintf(stderr, "reel %s: %s: %s\n", cmd, views_dir, reel_strerror(rc));
    if (rc == 0) {
        p.from = reel_views_applied(v);
        rc = reel_replay(log, v, to, progress_cb, &p, err, sizeof(err));
        if (p.tty)
            fputs("\n", stderr);
        if (rc != 0)
            fprintf(stderr, "reel %s: %s\n", cmd, err);
    }
    if (rc == 0) {
        double secs = (double)(reel_mono_ns() - p.start_ns) / 1e9;
        uint64_t n = reel_views_applied(v) - p.from;
        fprintf(stderr, "reel %s: applied %" PRIu64 " events in %.2f s (%.0f events/s)\n", cmd, n,
                secs, secs > 0 ? (double)n / secs : 0.0);
        print_hash(v);
    }
    reel_views_close(v);
    reel_log_close(log);
    return rc == 0 ? 0 : 2;
}

int reel_cmd_rebuild(int argc, char **argv)
{
    views_opts_t o;
    char views_dir[PATH_MAX];
    if (argc > 1 && strcmp(argv[1], "--help") == 0) {
        printf("usage: reel rebuild [--data DIR]\n\n"
               "Rebuilds DIR/views from DIR/log: drops the views and applies every event\n"
               "again, then prints the views' hash (as reel views-hash). Refuses while\n"
               "reeld (or anything else) writes the log. Exit: 0 done, 2 error.\n");
        return 0;
    }
    if (parse_opts(argc, argv, &o) != 0 || o.into != NULL || o.have_to || o.have_at)
        return 2;
    int lock = reel_data_lock(o.data);
    if (lock < 0) {
        fprintf(stderr, "reel rebuild: %s: %s\n", o.data,
                lock == REEL_ELOCKED ? "the log is in use by a writer (stop reeld first)"
                                     : reel_strerror(lock));
        return 2;
    }
    int rc = reel_data_views_path(o.data, views_dir, sizeof(views_dir));
    if (rc == 0)
        rc = reel_data_views_remove(views_dir);
    int status = 2;
    if (rc != 0)
        fprintf(stderr, "reel rebuild: %s: %s\n", views_dir, reel_strerror(rc));
    else
        status = fold("rebuild", o.data, views_dir, UINT64_MAX, NULL);
    reel_data_unlock(lock);
    return status;
}

/* True when path does not exist (it is created) or is an empty directory. */
static int fresh_dir(const char *path)
{
    if (mkdir(path, 0755) == 0)
        return 0;
    if (errno != EEXIST)
        return REEL_ERR(errno);
    DIR *d = opendir(path);
    if (d == NULL)
        return REEL_ERR(errno);
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            rc = -ENOTEMPTY;
    closedir(d);
    return rc;
}

int reel_cmd_replay(int argc, char **argv)
{
    views_opts_t o;
    if (argc > 1 && strcmp(argv[1], "--help") == 0) {
        printf("usage: reel replay (--to OFFSET | --at TIME) --into OUTDIR [--data DIR]\n\n"
               "Builds the views as they were just before the event at OFFSET (events\n"
               "0..OFFSET-1 applied), or as they stood at TIME (every event of engine\n"
               "time <= TIME applied; TIME is ms since the epoch or YYYY-MM-DDTHH:MM:SSZ,\n"
               "UTC, that second included), into OUTDIR, a new or empty directory, and\n"
               "prints their hash. Reads DIR/log only: it may run beside reeld. Read the\n"
               "result with the views API, reel views-hash --into OUTDIR, or compare\n"
               "hashes. Exit: 0 done, 2 error.\n");
        return 0;
    }
    if (parse_opts(argc, argv, &o) != 0)
        return 2;
    if (o.have_to == o.have_at || o.into == NULL) {
        fprintf(stderr, "reel replay: one of --to OFFSET or --at TIME, and --into OUTDIR, are "
                        "required\n");
        return 2;
    }
    int rc = fresh_dir(o.into);
    if (rc != 0) {
        fprintf(stderr, "reel replay: %s: %s\n", o.into,
                rc == -ENOTEMPTY ? "not empty (replay never overwrites)" : reel_strerror(rc));
        return 2;
    }
    return fold("replay", o.data, o.into, o.to, o.have_at ? &o.at : NULL);
}

int reel_cmd_views_hash(int argc, char **argv)
{
    views_opts_t o;
    char views_dir[PATH_MAX];
    reel_views_t *v;
    if (argc > 1 && strcmp(argv[1], "--help") == 0) {
        printf("usage: reel views-hash [--data DIR] [--into VIEWSDIR]\n\n"
               "Prints a digest (XXH3-128) of every view's content in DIR/views (or in\n"
               "VIEWSDIR, e.g. a reel replay result) and the log offset it has applied:\n"
               "live views and a rebuild from the same log print the same digest.\n"
               "Exit: 0 done, 2 error.\n");
        return 0;
    }
    if (parse_opts(argc, argv, &o) != 0 || o.have_to)
        return 2;
    int rc = 0;
    if (o.into != NULL)
        snprintf(views_dir, sizeof(views_dir), "%s", o.into);
    else
        rc = reel_data_views_path(o.data, views_dir, sizeof(views_dir));
    struct stat st;
    if (rc == 0 && stat(views_dir, &st) != 0)
        rc = REEL_ERR(errno); /* never create views just to hash them */
    if (rc == 0)
        rc = reel_views_open(views_dir, &v);
    if (rc != 0) {
        fprintf(stderr, "reel views-hash: %s: %s\n", views_dir, reel_strerror(rc));
        return 2;
    }
    print_hash(v);
    reel_views_close(v);
    return 0;
}
