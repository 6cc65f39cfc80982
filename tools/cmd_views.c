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
#include "tools/tool_util.h"

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

typedef struct views_opts {
    const char *data;  /* --data */
    const char *into;  /* replay --into, views-hash --into */
    uint64_t to;       /* replay --to */
    bool have_to;
    uint64_t at;       /* replay --at (ms since the epoch) */
    bool have_at;
} views_opts_t;

/* The fold's progress line (tools/tool_util.h: on a terminal, or forced
 * with REEL_PROGRESS=1): events applied of those to apply. */
typedef struct fold_progress {
    tool_progress_t line;
    uint64_t from; /* the views' applied offset when the fold began */
} fold_progress_t;

static void progress_cb(void *ctx, uint64_t applied, uint64_t to)
{
    fold_progress_t *p = ctx;
    p->line.total = to > p->from ? to - p->from : 0;
    tool_progress_draw(&p->line, applied - p->from);
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

/* Whether a is one of the space-separated words of list. */
static bool takes_opt(const char *list, const char *a)
{
    size_t n = strlen(a);
    for (const char *p = strstr(list, a); p != NULL; p = strstr(p + 1, a))
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return true;
    return false;
}

/* Fills o from argv. `takes` lists the options the command accepts
 * besides --data ("--into --to --at"); any other is refused with a
 * message. Returns 0 or REEL_EUSAGE. */
static int parse_opts(int argc, char **argv, const char *takes, views_opts_t *o)
{
    *o = (views_opts_t){REEL_DATA_DIR_DEFAULT, NULL, 0, false, 0, false};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc && argv[i + 1][0] != '\0';
        if (strncmp(a, "--", 2) == 0 && strcmp(a, "--data") != 0 && !takes_opt(takes, a)) {
            fprintf(stderr, "reel %s: %s is not an option of reel %s (see reel %s --help)\n",
                    argv[0], a, argv[0], argv[0]);
            return REEL_EUSAGE;
        }
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

/* Opens DATA_DIR/log read-only (never creating it); prints the error. */
static int open_log(const char *cmd, const char *data_dir, reel_log_t **log)
{
    char name[32];
    snprintf(name, sizeof(name), "reel %s", cmd);
    return tool_log_open_ro(name, data_dir, log);
}

/* Folds log into the views in views_dir from their applied offset up to
 * `to` (UINT64_MAX: the end), then prints the views' hash. Returns the
 * exit status. */
static int fold(const char *cmd, reel_log_t *log, const char *views_dir, uint64_t to)
{
    char err[512] = "";
    reel_views_t *v = NULL;
    fold_progress_t p;
    uint64_t t0 = reel_mono_ns();
    int rc = reel_views_open(views_dir, &v);
    if (rc != 0) {
        fprintf(stderr, "reel %s: %s: %s\n", cmd, views_dir, reel_strerror(rc));
        return 2;
    }
    p.from = reel_views_applied(v);
    tool_progress_start(&p.line, "events", 0);
    rc = reel_replay(log, v, to, progress_cb, &p, err, sizeof(err));
    uint64_t n = reel_views_applied(v) - p.from;
    tool_progress_end(&p.line, n);
    if (rc != 0) {
        fprintf(stderr, "reel %s: %s\n", cmd, err[0] != '\0' ? err : reel_strerror(rc));
    } else {
        double secs = (double)(reel_mono_ns() - t0) / 1e9;
        fprintf(stderr, "reel %s: applied %" PRIu64 " events in %.2f s (%.0f events/s)\n", cmd, n,
                secs, secs > 0 ? (double)n / secs : 0.0);
        print_hash(v);
    }
    reel_views_close(v);
    return rc == 0 ? 0 : 2;
}

int reel_cmd_rebuild(int argc, char **argv)
{
    views_opts_t o;
    char views_dir[PATH_MAX], log_dir[PATH_MAX];
    struct stat st;
    reel_log_t *log = NULL;
    if (argc > 1 && strcmp(argv[1], "--help") == 0) {
        printf("usage: reel rebuild [--data DIR]\n\n"
               "Rebuilds DIR/views from DIR/log: drops the views and applies every event\n"
               "again, then prints the views' hash (as reel views-hash). Refuses while\n"
               "reeld (or anything else) writes the log, and leaves the views as they were\n"
               "when the log cannot be read. On a terminal a progress line shows the rate\n"
               "and the time left. Exit: 0 done, 2 error.\n");
        return 0;
    }
    if (parse_opts(argc, argv, "", &o) != 0)
        return 2;
    /* A directory without a log is no data directory: never create one. */
    if (reel_data_log_path(o.data, log_dir, sizeof(log_dir)) != 0 || stat(log_dir, &st) != 0 ||
        !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "reel rebuild: %s: no log there (%s is missing)\n", o.data, log_dir);
        return 2;
    }
    int lock = reel_data_lock(o.data);
    if (lock < 0) {
        fprintf(stderr, "reel rebuild: %s: %s\n", o.data,
                lock == REEL_ELOCKED ? "the log is in use by a writer (stop reeld first)"
                                     : reel_strerror(lock));
        return 2;
    }
    /* The log first: a log that cannot be read keeps the old views. */
    int rc = open_log("rebuild", o.data, &log);
    if (rc == 0 && (rc = reel_data_views_path(o.data, views_dir, sizeof(views_dir))) == 0 &&
        (rc = reel_data_views_remove(views_dir)) != 0)
        fprintf(stderr, "reel rebuild: %s: %s\n", views_dir, reel_strerror(rc));
    int status = rc == 0 ? fold("rebuild", log, views_dir, UINT64_MAX) : 2;
    if (log != NULL)
        (void)reel_log_close(log);
    reel_data_unlock(lock);
    return status;
}

/* Makes path a new directory (*created) or accepts it empty; else
 * -ENOTEMPTY or -errno. */
static int fresh_dir(const char *path, bool *created)
{
    *created = false;
    if (mkdir(path, 0755) == 0) {
        *created = true;
        return 0;
    }
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

/* The offset replay folds up to: --to (at most the log's end), or the
 * first offset after --at. Prints why not. */
static int replay_target(reel_log_t *log, const views_opts_t *o, uint64_t *to)
{
    uint64_t end = reel_log_end(log);
    if (!o->have_at) {
        if (o->to > end) {
            fprintf(stderr, "reel replay: --to %" PRIu64 " is past the end of the log (%" PRIu64
                            " events; --to %" PRIu64 " folds them all)\n", o->to, end, end);
            return REEL_EUSAGE;
        }
        *to = o->to;
        return 0;
    }
    int rc = reel_replay_offset_at(log, o->at, to);
    if (rc != 0)
        fprintf(stderr, "reel replay: finding time %" PRIu64 ": %s\n", o->at, reel_strerror(rc));
    else
        fprintf(stderr, "reel replay: time %" PRIu64 " ms is just before offset %" PRIu64 "\n",
                o->at, *to);
    return rc;
}

int reel_cmd_replay(int argc, char **argv)
{
    views_opts_t o;
    reel_log_t *log = NULL;
    uint64_t to = 0;
    bool created = false;
    if (argc > 1 && strcmp(argv[1], "--help") == 0) {
        printf("usage: reel replay (--to OFFSET | --at TIME) --into OUTDIR [--data DIR]\n\n"
               "Builds the views as they were just before the event at OFFSET (events\n"
               "0..OFFSET-1 applied; OFFSET at most the log's end), or as they stood at\n"
               "TIME (every event of engine time <= TIME applied; TIME is ms since the\n"
               "epoch or YYYY-MM-DDTHH:MM:SSZ, UTC, that second included), into OUTDIR, a\n"
               "new or empty directory, and prints their hash. Reads DIR/log only: it may\n"
               "run beside reeld. Read the result with the views API, reel views-hash\n"
               "--into OUTDIR, or compare hashes. On a terminal a progress line shows the\n"
               "rate and the time left. On an error OUTDIR is left as it was (a directory\n"
               "replay made is removed). Exit: 0 done, 2 error.\n");
        return 0;
    }
    if (parse_opts(argc, argv, "--into --to --at", &o) != 0)
        return 2;
    if (o.have_to == o.have_at || o.into == NULL) {
        fprintf(stderr, "reel replay: one of --to OFFSET or --at TIME, and --into OUTDIR, are "
                        "required\n");
        return 2;
    }
    int rc = open_log("replay", o.data, &log);
    if (rc == 0)
        rc = replay_target(log, &o, &to);
    if (rc == 0 && (rc = fresh_dir(o.into, &created)) != 0)
        fprintf(stderr, "reel replay: %s: %s\n", o.into,
                rc == -ENOTEMPTY ? "not empty (replay never overwrites)" : reel_strerror(rc));
    int status = rc == 0 ? fold("replay", log, o.into, to) : 2;
    if (rc == 0 && status != 0) { /* leave OUTDIR as it was */
        (void)reel_data_views_remove(o.into);
        if (created)
            (void)rmdir(o.into);
    }
    if (log != NULL)
        (void)reel_log_close(log);
    return status;
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
               "live views and a rebuild from the same log print the same digest. Reads\n"
               "through one LMDB snapshot: it may run beside reeld. Exit: 0 done, 2 error.\n");
        return 0;
    }
    if (parse_opts(argc, argv, "--into", &o) != 0)
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
