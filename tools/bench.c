/*
 * bench.c: `reel bench NAME|all [--quick] [--dir DIR] [--rounds N]
 * [--filter PART] [--keep]`: the registry, the scratch directory, and the
 * helpers every benchmark shares (bench.h has the output contract).
 *
 * Scratch data. Each run makes a fresh directory, DIR/reel-bench.XXXXXX
 * (DIR defaults to /tmp), and gives each benchmark its own subdirectory in
 * it. Everything is removed at the end, also after a failed benchmark,
 * unless --keep. Benchmarks measure the disk under DIR: point --dir at the
 * file system the data will live on.
 */
#include "tools/bench.h"
#include "tools/cmds.h"
#include "engine/common.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct bench_def {
    const char *name;
    reel_bench_fn run;
    const char *help;
} bench_def_t;

static const bench_def_t benches[] = {
#define REEL__BENCH_ENTRY(name, help) {#name, reel_bench_##name, help},
    REEL_BENCH_LIST(REEL__BENCH_ENTRY)
#undef REEL__BENCH_ENTRY
};

/* Rounds per measurement: the median of 5 shrugs off two bad rounds on a
 * noisy machine; --quick is a smoke test of the whole path. */
enum { ROUNDS_FULL = 5, ROUNDS_QUICK = 1, ROUNDS_MAX = 99 };

typedef struct bench_args {
    const char *name;   /* a benchmark's name or "all" */
    const char *dir;    /* parent of the scratch directory */
    const char *filter; /* --filter, or NULL */
    bool quick;
    bool keep;          /* --keep: leave the scratch directory */
    uint32_t rounds;    /* 0: the default for the mode */
    double minutes;     /* --minutes, 0: none */
} bench_args_t;

static void usage(FILE *f)
{
    fprintf(f, "usage: reel bench NAME|all [--quick] [--dir DIR] [--rounds N] "
               "[--filter PART] [--keep] [--minutes N]\n"
               "  One JSON object per line on stdout:\n"
               "  {\"bench\", \"metric\", \"value\", \"unit\", \"baseline\", \"ratio\"};\n"
               "  ratio = value / baseline (for latencies lower is better).\n"
               "  --quick   short runs (seconds); default: %u rounds, median reported\n"
               "  --dir     where the scratch directory goes (default /tmp); removed after\n"
               "  --filter  run only the parts whose name contains PART\n"
               "  --minutes how long soak runs (default 10; --quick 0.5)\n\nbenchmarks:\n",
            (unsigned)ROUNDS_FULL);
    for (uint32_t i = 0; i < REEL_ARRAY_LEN(benches); i++)
        fprintf(f, "  %-8s %s\n", benches[i].name, benches[i].help);
}

/* Parses argv into out; on a bad argument names it on stderr. */
static int parse_args(int argc, char **argv, bench_args_t *out)
{
    *out = (bench_args_t){.dir = "/tmp"};
    int i = 1;
    int rc = 0;
    const char *opt = NULL; /* the option whose value is bad */
    for (; i < argc && rc == 0; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (strcmp(a, "--quick") == 0) {
            out->quick = true;
        } else if (strcmp(a, "--keep") == 0) {
            out->keep = true;
        } else if (strcmp(a, "--dir") == 0 && has_value) {
            out->dir = argv[++i];
        } else if (strcmp(a, "--filter") == 0 && has_value) {
            out->filter = argv[++i];
        } else if (strcmp(a, "--minutes") == 0 && has_value) {
            char *end;
            out->minutes = strtod(argv[++i], &end);
            if (*end != '\0' || !(out->minutes > 0.0) || out->minutes > 10080.0)
                rc = REEL_EUSAGE, opt = a;
        } else if (strcmp(a, "--rounds") == 0 && has_value) {
            char *end;
            unsigned long n = strtoul(argv[++i], &end, 10);
            if (*end != '\0' || n == 0 || n > ROUNDS_MAX)
                rc = REEL_EUSAGE, opt = a;
            out->rounds = (uint32_t)n;
        } else if (a[0] != '-' && out->name == NULL) {
            out->name = a;
        } else {
            rc = REEL_EUSAGE;
        }
    }
    if (rc != 0 && opt != NULL)
        fprintf(stderr, "reel bench: bad value '%s' for %s\n", argv[i - 1], opt);
    else if (rc != 0)
        fprintf(stderr, "reel bench: unknown or incomplete argument '%s'\n", argv[i - 1]);
    else if (out->name == NULL)
        fprintf(stderr, "reel bench: which benchmark? (a NAME, or all)\n");
    return rc != 0 || out->name == NULL ? REEL_EUSAGE : 0;
}

/* Whether the CLI name matches a registry name: '-' in the CLI stands for
 * '_' in C names (`reel bench feed-quality` runs feed_quality). */
static bool name_matches(const char *reg, const char *cli)
{
    for (; *reg != '\0' && *cli != '\0'; reg++, cli++)
        if (*reg != *cli && !(*reg == '_' && *cli == '-'))
            return false;
    return *reg == *cli;
}

static const bench_def_t *find_bench(const char *name)
{
    for (uint32_t i = 0; i < REEL_ARRAY_LEN(benches); i++) {
        if (name_matches(benches[i].name, name))
            return &benches[i];
    }
    return NULL;
}

/* Runs one benchmark in its own subdirectory of the scratch directory. */
static int run_one(const bench_def_t *b, const bench_args_t *args, const char *scratch)
{
    char dir[PATH_MAX];
    int rc = reel_bench_mkdir(scratch, b->name, dir, sizeof(dir));
    if (rc < 0) {
        fprintf(stderr, "reel bench: %s/%s: %s\n", scratch, b->name, reel_strerror(rc));
        return 2;
    }
    reel_bench_ctx_t ctx = {
        .dir = dir,
        .filter = args->filter,
        .quick = args->quick,
        .keep = args->keep,
        .rounds = args->rounds ? args->rounds : args->quick ? ROUNDS_QUICK : ROUNDS_FULL,
        .minutes = args->minutes,
    };
    REEL_ASSERT(ctx.rounds >= 1);
    REEL_ASSERT(ctx.rounds <= ROUNDS_MAX);
    fprintf(stderr, "reel bench: %s (%s, %u round%s, data in %s)\n", b->name,
            ctx.quick ? "quick" : "full", (unsigned)ctx.rounds, ctx.rounds > 1 ? "s" : "", dir);
    uint64_t t0 = reel_bench_now_ns();
    int status = b->run(&ctx);
    fprintf(stderr, "reel bench: %s %s in %.1f s\n", b->name, status == 0 ? "done" : "FAILED",
            (double)(reel_bench_now_ns() - t0) / 1e9);
    return status == 0 ? 0 : 2;
}

int reel_cmd_bench(int argc, char **argv)
{
    bench_args_t args;
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (parse_args(argc, argv, &args) < 0) {
        usage(stderr);
        return 2;
    }
    bool all = strcmp(args.name, "all") == 0;
    const bench_def_t *only = all ? NULL : find_bench(args.name);
    if (!all && only == NULL) {
        fprintf(stderr, "reel bench: no benchmark named '%s'\n", args.name);
        usage(stderr);
        return 2;
    }
    char scratch[PATH_MAX];
    int n = snprintf(scratch, sizeof(scratch), "%s/reel-bench.XXXXXX", args.dir);
    if (n < 0 || (size_t)n >= sizeof(scratch) || mkdtemp(scratch) == NULL) {
        fprintf(stderr, "reel bench: cannot make a scratch directory in %s: %s\n", args.dir,
                strerror(errno));
        return 2;
    }
    int status = 0;
    for (uint32_t i = 0; i < REEL_ARRAY_LEN(benches) && status == 0; i++) {
        /* soak runs for minutes: only when named, never as part of all */
        if ((all && strcmp(benches[i].name, "soak") != 0) || &benches[i] == only)
            status = run_one(&benches[i], &args, scratch);
    }
    if (args.keep) {
        fprintf(stderr, "reel bench: kept %s\n", scratch);
    } else if (reel_bench_rmtree(scratch) < 0) {
        fprintf(stderr, "reel bench: could not remove %s\n", scratch);
    }
    return status;
}

/* Numbers as JSON: integers plainly, others with 4 significant digits;
 * never "nan" or "inf", which JSON lacks. */
static void format_number(char *buf, size_t size, double v)
{
    if (!isfinite(v))
        snprintf(buf, size, "null");
    else if (fabs(v) >= 1000.0 || v == floor(v))
        snprintf(buf, size, "%.0f", v);
    else
        snprintf(buf, size, "%.4g", v);
}

void reel_bench_emit(const char *bench, const char *metric, double value, const char *unit,
                     double baseline)
{
    char v[64], b[64], r[64];
    REEL_ASSERT(bench != NULL);
    REEL_ASSERT(metric != NULL);
    bool has_baseline = isfinite(baseline) && baseline > 0.0;
    format_number(v, sizeof(v), value);
    format_number(b, sizeof(b), has_baseline ? baseline : NAN);
    format_number(r, sizeof(r), has_baseline ? value / baseline : NAN);
    printf("{\"bench\": \"%s\", \"metric\": \"%s\", \"value\": %s, \"unit\": \"%s\", "
           "\"baseline\": %s, \"ratio\": %s}\n",
           bench, metric, v, unit, b, r);
    fflush(stdout);
}

bool reel_bench_want(const reel_bench_ctx_t *ctx, const char *part)
{
    REEL_ASSERT(part != NULL);
    return ctx->filter == NULL || strstr(part, ctx->filter) != NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

double reel_bench_median(double *values, uint32_t n)
{
    REEL_ASSERT(values != NULL);
    REEL_ASSERT(n >= 1);
    qsort(values, n, sizeof(*values), cmp_double);
    if (n % 2 == 1)
        return values[n / 2];
    return (values[n / 2 - 1] + values[n / 2]) / 2.0;
}

void reel_bench_sort_u64(uint64_t *samples, uint32_t n)
{
    REEL_ASSERT(samples != NULL || n == 0);
    qsort(samples, n, sizeof(*samples), cmp_u64);
}

uint64_t reel_bench_percentile(const uint64_t *sorted, uint32_t n, double p)
{
    REEL_ASSERT(n >= 1);
    REEL_ASSERT(p >= 0.0 && p <= 1.0);
    /* Nearest rank: the smallest sample with at least p of them at or below. */
    uint64_t rank = (uint64_t)ceil(p * (double)n);
    uint64_t index = rank == 0 ? 0 : rank - 1;
    return sorted[index < n ? index : n - 1];
}

uint64_t reel_bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int reel_bench_mkdir(const char *parent, const char *name, char *path, uint32_t path_size)
{
    REEL_ASSERT(parent != NULL);
    REEL_ASSERT(name != NULL);
    int n = snprintf(path, path_size, "%s/%s", parent, name);
    if (n < 0 || (uint32_t)n >= path_size)
        return -ENAMETOOLONG;
    return mkdir(path, 0755) < 0 ? REEL_ERR(errno) : 0;
}

static int rmtree_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    int rc = flag == FTW_DP ? rmdir(path) : unlink(path);
    return rc < 0 ? REEL_ERR(errno) : 0;
}

int reel_bench_rmtree(const char *path)
{
    REEL_ASSERT(path != NULL);
    REEL_ASSERT(path[0] != '\0');
    /* FTW_DEPTH: children before their directory; FTW_PHYS: never follow
     * a link out of the scratch directory. */
    return nftw(path, rmtree_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void reel_bench_cleanup(const reel_bench_ctx_t *ctx, const char *path)
{
    REEL_ASSERT(ctx != NULL);
    REEL_ASSERT(path != NULL);
    if (ctx->keep)
        return;
    int rc = reel_bench_rmtree(path);
    if (rc < 0)
        fprintf(stderr, "reel bench: could not remove %s: %s\n", path, reel_strerror(rc));
}

/* ---- child processes ---- */

int reel_bench_exe_dir(char *dir, size_t len)
{
    ssize_t n = readlink("/proc/self/exe", dir, len - 1);
    if (n <= 0)
        return -1;
    dir[n] = '\0';
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        return -1;
    *slash = '\0';
    return 0;
}

static void bench_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

pid_t reel_bench_spawn(const char *const *argv, const char *out, const char *err)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(err, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int fi = open("/dev/null", O_RDONLY);
        if (getppid() != parent || fo < 0 || fe < 0 || fi < 0 || dup2(fo, 1) < 0 ||
            dup2(fe, 2) < 0 || dup2(fi, 0) < 0)
            _exit(127);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

int reel_bench_stop(pid_t pid, int wait_ms)
{
    int ws = 0;
    if (pid <= 0)
        return -1;
    kill(pid, SIGTERM);
    for (int i = 0; i < wait_ms / 10; i++) {
        pid_t r = waitpid(pid, &ws, WNOHANG);
        if (r == pid)
            return WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
        if (r < 0)
            return -1;
        bench_sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &ws, 0);
    return -1;
}

/* The port of a complete "listening on" line in path, or 0. */
static int reeld_listening_port(const char *path)
{
    static const char mark[] = "listening on http://127.0.0.1:";
    char buf[8192];
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t len = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[len] = '\0';
    const char *p = strstr(buf, mark);
    return p != NULL && strchr(p, '\n') != NULL ? atoi(p + strlen(mark)) : 0;
}

int reel_bench_reeld_start(const char *bench, const char *dir, const char *const *extra,
                           reel_bench_reeld_t *s)
{
    enum { ARGS_MAX = 24 };
    char exe[PATH_MAX], bin[PATH_MAX + 8], data[PATH_MAX + 16];
    const char *argv[ARGS_MAX] = {bin, "--data", data, "--listen", "127.0.0.1:0"};
    int argc = 5;
    s->pid = -1;
    s->port = 0;
    if (reel_bench_exe_dir(exe, sizeof(exe)) != 0)
        return -1;
    snprintf(bin, sizeof(bin), "%s/reeld", exe);
    snprintf(data, sizeof(data), "%s/reeld-data", dir);
    snprintf(s->out, sizeof(s->out), "%s/reeld.out", dir);
    snprintf(s->err, sizeof(s->err), "%s/reeld.err", dir);
    if (access(bin, X_OK) != 0) {
        fprintf(stderr, "bench %s: %s is not built (make builds it beside reel)\n", bench, bin);
        return -1;
    }
    for (int i = 0; extra != NULL && extra[i] != NULL; i++) {
        REEL_ASSERT(argc < ARGS_MAX - 1);
        argv[argc++] = extra[i];
    }
    argv[argc] = NULL;
    if ((s->pid = reel_bench_spawn(argv, s->out, s->err)) < 0)
        return -1;
    for (int i = 0; i < REEL_BENCH_START_MS / 10; i++) {
        if ((s->port = reeld_listening_port(s->out)) > 0) {
            snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d", s->port);
            return 0;
        }
        int ws;
        if (waitpid(s->pid, &ws, WNOHANG) == s->pid) {
            fprintf(stderr, "bench %s: reeld exited at start (see %s)\n", bench, s->err);
            s->pid = -1;
            return -1;
        }
        bench_sleep_ms(10);
    }
    fprintf(stderr, "bench %s: reeld did not listen within %d ms\n", bench, REEL_BENCH_START_MS);
    return -1;
}
