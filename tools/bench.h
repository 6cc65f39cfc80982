/*
 * bench.h: the benchmark framework behind `reel bench NAME|all`.
 *
 * Output contract. Every measurement is exactly one JSON object on one line
 * of stdout, written by reel_bench_emit():
 *
 *   {"bench": "log", "metric": "...", "value": N, "unit": "...",
 *    "baseline": N or null, "ratio": N or null}
 *
 * ratio is value / baseline, whatever the direction of "better": a metric
 * where lower is better (latency) says so in its name ("..._vs_baseline").
 * Progress and explanations go to stderr, so stdout stays machine-readable.
 *
 * Method. Machines are noisy: each measurement runs ctx->rounds times and
 * the median is reported. Baselines are measured in the same run, on the
 * same disk, interleaved with the measurement they belong to.
 *
 * Registry. REEL_BENCH_LIST below is the whole registry: adding a benchmark
 * is one XX(...) line here plus its file tools/bench_<name>.c defining
 * `int reel_bench_<name>(const reel_bench_ctx_t *ctx)`.
 *
 * Exit status of `reel bench`: 0 when every benchmark ran and its checks
 * held; 2 on bad usage or when a benchmark failed (an append failed,
 * offsets were not dense, an I/O error...).
 */
#ifndef REEL_TOOLS_BENCH_H
#define REEL_TOOLS_BENCH_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* XX(name, one-line description). Order is the order of `reel bench all`. */
#define REEL_BENCH_LIST(XX)                                                               \
    XX(log, "durable appends (group commit), 1 MiB records, sync latency, reads, zstd")    \
    XX(views, "rebuild: the log folded into the LMDB views, against read+decode alone")   \
    XX(http, "reeld over loopback: GET a profile, durable likes and follows; vs Redis")   \
    XX(tools, "reel export to JSON lines vs zstd -d; loadgen straight to a data dir")      \
    XX(render, "claim + complete round trips through reeld's HTTP, 32 worker threads")     \
    XX(feed, "For You pages and the ANN index vs hnswlib, memory per post")                \
    XX(feed_quality, "MovieLens 100K at a temporal cut: For You vs popularity and item kNN") \
    XX(soak, "mixed HTTP load, render workers, a log stream for --minutes N: RSS, fds, p99")

/* What a benchmark gets from the framework. */
typedef struct reel_bench_ctx {
    const char *dir;    /* this benchmark's scratch directory: exists, empty,
                         * removed with everything in it afterwards */
    const char *filter; /* NULL, or run only parts whose name contains it */
    bool quick;         /* --quick: short runs, small data (CI smoke) */
    bool keep;          /* --keep: leave data behind for inspection */
    uint32_t rounds;    /* repeats of each measurement; the median is kept */
    double minutes;     /* --minutes N (soak); 0: the benchmark's default */
} reel_bench_ctx_t;

/* A benchmark returns 0, or 2 when it failed (message already on stderr). */
typedef int (*reel_bench_fn)(const reel_bench_ctx_t *ctx);

#define REEL__BENCH_DECLARE(name, help) int reel_bench_##name(const reel_bench_ctx_t *ctx);
REEL_BENCH_LIST(REEL__BENCH_DECLARE)
#undef REEL__BENCH_DECLARE

/* Prints one result line to stdout. baseline < 0 (or NaN) means none:
 * "baseline" and "ratio" are then null. */
void reel_bench_emit(const char *bench, const char *metric, double value, const char *unit,
                     double baseline);

/* True when the part named `part` should run under ctx->filter. */
bool reel_bench_want(const reel_bench_ctx_t *ctx, const char *part);

/* Median of n values (n >= 1); sorts values in place. */
double reel_bench_median(double *values, uint32_t n);

/* The p-quantile (0 <= p <= 1, nearest rank) of n sorted samples. */
uint64_t reel_bench_percentile(const uint64_t *sorted, uint32_t n, double p);

/* Sorts n samples ascending. */
void reel_bench_sort_u64(uint64_t *samples, uint32_t n);

/* Monotonic clock in nanoseconds. */
uint64_t reel_bench_now_ns(void);

/* ---- child processes: reeld and the programs make builds beside reel ---- */

/* How long a started reeld gets to print its "listening on" line. */
#define REEL_BENCH_START_MS 15000

/* The directory of this binary (build/: reeld and reel-render are there).
 * 0, or -1. */
int reel_bench_exe_dir(char *dir, size_t len);

/* Forks and execs argv[0] (a path), stdout to out (truncated), stderr
 * appended to err, stdin /dev/null; the child dies with us. Its pid, or -1. */
pid_t reel_bench_spawn(const char *const *argv, const char *out, const char *err);

/* SIGTERM, up to wait_ms for it to exit, then SIGKILL. The exit status, or
 * -1 when it had to be killed or a signal ended it (or pid <= 0). */
int reel_bench_stop(pid_t pid, int wait_ms);

/* A reeld a benchmark started. */
typedef struct reel_bench_reeld {
    pid_t pid;
    int port;
    char url[64];                     /* http://127.0.0.1:PORT */
    char out[PATH_MAX], err[PATH_MAX]; /* its stdout and stderr */
} reel_bench_reeld_t;

/* Starts reeld (beside this binary) on dir/reeld-data, --listen
 * 127.0.0.1:0 and the arguments extra (NULL-terminated, may be NULL), and
 * waits (REEL_BENCH_START_MS at most) for its "listening on" line. 0, or -1
 * with the reason on stderr, after `bench` (the benchmark's name). */
int reel_bench_reeld_start(const char *bench, const char *dir, const char *const *extra,
                           reel_bench_reeld_t *out);

/* Makes path = parent/name and creates that directory (it must not exist).
 * Returns 0 or -errno. path holds path_size bytes. */
int reel_bench_mkdir(const char *parent, const char *name, char *path, uint32_t path_size);

/* Removes path and everything under it. Returns 0 or -errno. */
int reel_bench_rmtree(const char *path);

/* Removes a part's data directory, unless ctx->keep. */
void reel_bench_cleanup(const reel_bench_ctx_t *ctx, const char *path);

#endif /* REEL_TOOLS_BENCH_H */
