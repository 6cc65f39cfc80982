/*
 * bench_render.c: `reel bench render` (issue 7, "Speed"): claim plus
 * complete round trips through HTTP against a fresh reeld, with 32
 * concurrent workers.
 *
 * Setup. reeld is the binary beside this one, started on a free loopback
 * port with a fresh data directory and --generations-per-day high enough
 * for the run. Each round first queues its tasks (POST /v1/generations
 * lines through /v1/batch, not timed), then 32 worker threads, each with
 * its own keep-alive connection (the reference worker's client,
 * tools/render/client.c), loop: POST /v1/render/claim (max 1), then POST
 * /v1/render/{id}/complete with a video_uri and duration_ms, until a claim
 * comes back empty. Nothing is rendered: this measures the queue.
 *
 * Figures (median of the rounds): tasks completed per second (claim and
 * completion both durable: two group-committed writes a task), and the
 * p50/p99 of one task's two round trips. A 409, or a task completed twice,
 * fails the benchmark.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tools/bench.h"
/* The reference worker's HTTP client (in reel and reel-render both), so
 * the benchmark speaks to reeld exactly as the worker does. */
#include "tools/http_client.h"

#define RB_WORKERS 32u
#define RB_START_TIMEOUT_MS 15000
#define RB_REQUEST_TIMEOUT_MS 30000u
#define RB_BATCH_LINES 8192u
#define RB_TASKS_FULL 20000u
#define RB_TASKS_QUICK 2000u
#define RB_ROUNDS_MAX 16u
/* Tasks are spread over this many users: a user's quota check counts the
 * user's generations in the window (reel_views_quota scans them), so one
 * user with 100,000 generations would make the seeding quadratic. */
#define RB_USERS 1024u

typedef struct rb_server {
    pid_t pid;
    int port;
    char url[64];
} rb_server_t;

static void rb_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Starts reeld (beside this binary) on dir/reeld-data; waits (bounded)
 * for its "listening on" line. */
static int rb_reeld_start(const char *dir, rb_server_t *s)
{
    char exe[PATH_MAX], bin[PATH_MAX + 8], data[PATH_MAX], out[PATH_MAX], err[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return -1;
    exe[n] = '\0';
    *strrchr(exe, '/') = '\0';
    snprintf(bin, sizeof(bin), "%s/reeld", exe);
    snprintf(data, sizeof(data), "%s/reeld-data", dir);
    snprintf(out, sizeof(out), "%s/reeld.out", dir);
    snprintf(err, sizeof(err), "%s/reeld.err", dir);
    if (access(bin, X_OK) != 0) {
        fprintf(stderr, "bench render: %s is not built (make builds it beside reel)\n", bin);
        return -1;
    }
    pid_t parent = getpid();
    s->pid = fork();
    if (s->pid < 0)
        return -1;
    if (s->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(err, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (getppid() != parent || fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0)
            _exit(127);
        execl(bin, bin, "--data", data, "--listen", "127.0.0.1:0", "--generations-per-day",
              "100000", (char *)NULL);
        _exit(127);
    }
    static const char mark[] = "listening on http://127.0.0.1:";
    for (int i = 0; i < RB_START_TIMEOUT_MS / 10; i++) {
        char buf[8192];
        FILE *f = fopen(out, "r");
        if (f != NULL) {
            size_t len = fread(buf, 1, sizeof(buf) - 1, f);
            fclose(f);
            buf[len] = '\0';
            const char *p = strstr(buf, mark);
            if (p != NULL && strchr(p, '\n') != NULL) {
                s->port = atoi(p + strlen(mark));
                snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d", s->port);
                return s->port > 0 ? 0 : -1;
            }
        }
        int ws;
        if (waitpid(s->pid, &ws, WNOHANG) == s->pid) {
            fprintf(stderr, "bench render: reeld exited at start (see %s)\n", err);
            s->pid = -1;
            return -1;
        }
        rb_sleep_ms(10);
    }
    fprintf(stderr, "bench render: reeld did not listen within %d ms\n", RB_START_TIMEOUT_MS);
    return -1;
}

/* SIGTERM, then (after 10 s) SIGKILL: its exit status, or -1. */
static int rb_reeld_stop(rb_server_t *s)
{
    int ws = 0;
    if (s->pid <= 0)
        return -1;
    kill(s->pid, SIGTERM);
    for (int i = 0; i < 1000; i++) {
        if (waitpid(s->pid, &ws, WNOHANG) == s->pid)
            return WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
        rb_sleep_ms(10);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &ws, 0);
    return -1;
}

/* Queues n generations for users 1..RB_USERS through /v1/batch. */
static int rb_seed(reel_client_t *c, uint32_t n)
{
    static uint32_t seq; /* spreads every round's tasks over the users */
    size_t cap = (size_t)RB_BATCH_LINES * 96u;
    char *lines = malloc(cap);
    int rc = lines ? 0 : -ENOMEM;
    for (uint32_t done = 0; rc == 0 && done < n;) {
        size_t len = 0;
        uint32_t k = 0;
        for (; k < RB_BATCH_LINES && done + k < n; k++)
            len += (size_t)snprintf(lines + len, cap - len,
                                    "{\"op\":\"POST /v1/generations\",\"body\":{\"user\":%u,"
                                    "\"prompt\":\"bench clip %u\"}}\n", 1u + seq++ % RB_USERS,
                                    done + k);
        reel_client_resp_t r;
        rc = reel_client_request(c, "POST", "/v1/batch", lines, len, 120000u, &r);
        if (rc == 0 && (r.status != 200 || strstr(r.body, "\"status\":4") != NULL ||
                        strstr(r.body, "\"status\":5") != NULL)) {
            fprintf(stderr, "bench render: seeding: %d %.200s\n", r.status, r.body);
            rc = -EPROTO;
        }
        done += k;
    }
    free(lines);
    return rc;
}

typedef struct rb_worker {
    pthread_t thread;
    const char *url;
    uint32_t index;
    uint32_t max;         /* the claim's max */
    uint64_t tasks;       /* completed */
    uint64_t conflicts;   /* 409s */
    int error;            /* first error, 0: none */
    uint64_t *lat_ns;     /* one task's claim + complete */
    uint32_t nlat, lat_cap;
} rb_worker_t;

static void *rb_worker_main(void *arg)
{
    rb_worker_t *w = arg;
    reel_client_t c;
    char body[256], path[64];
    if ((w->error = reel_client_init(&c, w->url, NULL)) != 0)
        return NULL;
    int cn = snprintf(body, sizeof(body), "{\"worker\":\"bench-%u\",\"lease_ms\":60000,"
                      "\"max\":%u}", w->index, w->max);
    for (uint32_t spins = 0; spins < 10000000u; spins++) {
        reel_client_resp_t r;
        unsigned long long ids[64];
        uint32_t nids = 0;
        uint64_t t0 = reel_bench_now_ns();
        int rc = reel_client_request(&c, "POST", "/v1/render/claim", body, (size_t)cn,
                                     RB_REQUEST_TIMEOUT_MS, &r);
        if (rc != 0 || r.status != 200) {
            w->error = rc ? rc : -EPROTO;
            break;
        }
        for (const char *p = r.body; nids < 64 && (p = strstr(p, "\"generation_id\":")) != NULL;
             p++)
            ids[nids++] = strtoull(p + 16, NULL, 10);
        if (nids == 0)
            break; /* the queue is empty: this round is done */
        for (uint32_t i = 0; i < nids && w->error == 0; i++) {
            char cb[256];
            snprintf(path, sizeof(path), "/v1/render/%llu/complete", ids[i]);
            int n = snprintf(cb, sizeof(cb), "{\"worker\":\"bench-%u\",\"video_uri\":"
                             "\"file:///bench/%llu.gif\",\"duration_ms\":1920}", w->index, ids[i]);
            rc = reel_client_request(&c, "POST", path, cb, (size_t)n, RB_REQUEST_TIMEOUT_MS, &r);
            if (rc != 0 || (r.status != 200 && r.status != 409)) {
                w->error = rc ? rc : -EPROTO;
                break;
            }
            w->conflicts += r.status == 409;
            w->tasks += r.status == 200;
        }
        if (w->nlat < w->lat_cap)
            w->lat_ns[w->nlat++] = (reel_bench_now_ns() - t0) / nids;
    }
    reel_client_free(&c);
    return NULL;
}

/* One round: n tasks queued, then the workers drain them. */
static int rb_round(const rb_server_t *s, reel_client_t *admin, uint32_t n, uint32_t max,
                    double *tasks_s, double *p50_us, double *p99_us)
{
    rb_worker_t w[RB_WORKERS];
    uint64_t *lat = malloc(sizeof(*lat) * (size_t)n * 2);
    int rc = lat ? rb_seed(admin, n) : -ENOMEM;
    uint64_t tasks = 0, conflicts = 0, nlat = 0, t0 = reel_bench_now_ns();
    uint32_t started = 0;
    for (; rc == 0 && started < RB_WORKERS; started++) {
        w[started] = (rb_worker_t){.url = s->url, .index = started, .max = max,
                                   .lat_ns = lat + (size_t)started * (2u * n / RB_WORKERS),
                                   .lat_cap = 2u * n / RB_WORKERS};
        if (pthread_create(&w[started].thread, NULL, rb_worker_main, &w[started]) != 0)
            rc = -EAGAIN;
    }
    for (uint32_t i = 0; i < started; i++) {
        pthread_join(w[i].thread, NULL);
        tasks += w[i].tasks;
        conflicts += w[i].conflicts;
        if (w[i].error != 0 && rc == 0)
            rc = w[i].error;
        /* Compact the samples. */
        memmove(lat + nlat, w[i].lat_ns, sizeof(*lat) * w[i].nlat);
        nlat += w[i].nlat;
    }
    double secs = (double)(reel_bench_now_ns() - t0) / 1e9;
    if (rc == 0 && (tasks != n || conflicts != 0)) {
        fprintf(stderr, "bench render: %" PRIu64 " of %u tasks completed, %" PRIu64 " 409s\n",
                tasks, n, conflicts);
        rc = -EPROTO;
    }
    if (rc == 0 && nlat > 0) {
        reel_bench_sort_u64(lat, (uint32_t)nlat);
        *tasks_s = (double)tasks / secs;
        *p50_us = (double)reel_bench_percentile(lat, (uint32_t)nlat, 0.50) / 1e3;
        *p99_us = (double)reel_bench_percentile(lat, (uint32_t)nlat, 0.99) / 1e3;
    }
    free(lat);
    return rc;
}

int reel_bench_render(const reel_bench_ctx_t *ctx)
{
    rb_server_t s = {.pid = -1};
    reel_client_t admin;
    uint32_t n = ctx->quick ? RB_TASKS_QUICK : RB_TASKS_FULL;
    uint32_t rounds = ctx->rounds < 1 ? 1 : ctx->rounds > RB_ROUNDS_MAX ? RB_ROUNDS_MAX : ctx->rounds;
    double rate[RB_ROUNDS_MAX], p50[RB_ROUNDS_MAX], p99[RB_ROUNDS_MAX];
    if (!reel_bench_want(ctx, "claim_complete"))
        return 0;
    signal(SIGPIPE, SIG_IGN);
    if (rb_reeld_start(ctx->dir, &s) != 0)
        return 2;
    int rc = reel_client_init(&admin, s.url, NULL);
    reel_client_resp_t r;
    char *users = malloc((size_t)RB_USERS * 80u);
    size_t ulen = 0;
    for (uint32_t i = 0; users != NULL && i < RB_USERS; i++)
        ulen += (size_t)snprintf(users + ulen, 80, "{\"op\":\"POST /v1/users\",\"body\":"
                                 "{\"handle\":\"bench%u\"}}\n", i);
    if (rc == 0)
        rc = users ? reel_client_request(&admin, "POST", "/v1/batch", users, ulen, 120000u, &r)
                   : -ENOMEM;
    if (rc == 0 && (r.status != 200 || strstr(r.body, "\"status\":201") == NULL))
        rc = -EPROTO;
    free(users);
    fprintf(stderr, "  reeld pid %d on %s; %u worker threads, %u tasks a round, %ld CPUs "
            "online (shared by reeld and the workers)\n", (int)s.pid, s.url, RB_WORKERS, n,
            sysconf(_SC_NPROCESSORS_ONLN));
    /* max 1: one claim per task, the worker's way; max 8: a claim takes 8
     * tasks, and the tasks' latency is a claim's share plus a completion. */
    static const uint32_t maxes[2] = {1, 8};
    for (uint32_t m = 0; rc == 0 && m < 2; m++) {
        for (uint32_t i = 0; rc == 0 && i < rounds; i++) {
            rc = rb_round(&s, &admin, n, maxes[m], &rate[i], &p50[i], &p99[i]);
            if (rc == 0)
                fprintf(stderr, "  max %u, round %u: %.0f tasks/s, a task's round trips p50 "
                        "%.0f us, p99 %.0f us\n", maxes[m], i + 1, rate[i], p50[i], p99[i]);
        }
        if (rc != 0)
            break;
        char metric[96];
        snprintf(metric, sizeof(metric), "claim%s_complete_tasks_per_s_32_workers",
                 m ? "_max8" : "");
        reel_bench_emit("render", metric, reel_bench_median(rate, rounds), "tasks/s", -1);
        snprintf(metric, sizeof(metric), "claim%s_complete_p50_us", m ? "_max8" : "");
        reel_bench_emit("render", metric, reel_bench_median(p50, rounds), "us", -1);
        snprintf(metric, sizeof(metric), "claim%s_complete_p99_us", m ? "_max8" : "");
        reel_bench_emit("render", metric, reel_bench_median(p99, rounds), "us", -1);
    }
    reel_client_free(&admin);
    int stopped = rb_reeld_stop(&s);
    if (rc != 0) {
        fprintf(stderr, "bench render: failed: %s\n", strerror(rc < 0 ? -rc : rc));
        return 2;
    }
    if (stopped != 0)
        fprintf(stderr, "bench render: reeld did not stop cleanly on SIGTERM (%d)\n", stopped);
    return stopped == 0 ? 0 : 2;
}
