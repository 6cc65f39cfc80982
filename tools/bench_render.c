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
 * tools/http_client.c), loop: POST /v1/render/claim, then complete every
 * task claimed with a video_uri and duration_ms, until a claim comes back
 * empty. Nothing is rendered: this measures the queue. The modes
 * (rb_modes): claims of max 1 (the reference worker), max 8 with one
 * completion request a task, and max 8 and 16 with a claim's completions
 * as the lines of one POST /v1/batch (a GPU worker that renders a batch of
 * clips at once). The modes run interleaved, one round of each in turn.
 *
 * Checks. Every completion's answer (each line of a batch) must be 200
 * with a post_id; a 409 counts as a conflict and fails the round, as does
 * any other answer. After each round every task queued in it must read
 * back (GET /v1/generations/{id}) completed on its first attempt with its
 * post: with n answers 200 for n tasks, each was completed exactly once
 * (rb_verify).
 *
 * Figures (median of the rounds): tasks completed per second (claim and
 * completion both durable: at least two group-committed writes a task),
 * with the max 1 mode of the same run as the baseline of the others, and
 * the p50/p99 of one task's share of its claim and completions. On
 * stderr, per round, what the engine's /metrics say: commands a batch,
 * judging time a command, durable wait and views commit a batch.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "tools/bench.h"
/* The reference worker's HTTP client (in reel and reel-render both), so
 * the benchmark speaks to reeld exactly as the worker does. */
#include "tools/http_client.h"

#define RB_WORKERS 32u
#define RB_REQUEST_TIMEOUT_MS 30000u
#define RB_BATCH_LINES 8192u
#define RB_TASKS_FULL 20000u
#define RB_TASKS_QUICK 2000u
#define RB_ROUNDS_MAX 16u
/* The largest claim of a mode (rb_modes). */
#define RB_CLAIM_MAX 16u
/* Tasks are spread over this many users: a user's quota check counts the
 * user's generations in the window (reel_views_quota scans them), so one
 * user with 100,000 generations would make the seeding quadratic. */
#define RB_USERS 1024u

typedef reel_bench_reeld_t rb_server_t; /* reeld, started by tools/bench.c */

/* Queues n generations for users 1..RB_USERS through /v1/batch; their ids
 * go to ids[0..n). Every line must be answered 202 with its id. */
static int rb_seed(reel_client_t *c, uint32_t n, uint64_t *ids)
{
    static uint32_t seq; /* spreads every round's tasks over the users */
    size_t cap = (size_t)RB_BATCH_LINES * 96u;
    char *lines = malloc(cap);
    int rc = lines ? 0 : -ENOMEM;
    for (uint32_t done = 0; rc == 0 && done < n;) {
        size_t len = 0;
        uint32_t k = 0, got = 0;
        for (; k < RB_BATCH_LINES && done + k < n; k++)
            len += (size_t)snprintf(lines + len, cap - len,
                                    "{\"op\":\"POST /v1/generations\",\"body\":{\"user\":%u,"
                                    "\"prompt\":\"bench clip %u\"}}\n", 1u + seq++ % RB_USERS,
                                    done + k);
        reel_client_resp_t r;
        rc = reel_client_request(c, "POST", "/v1/batch", lines, len, 120000u, &r);
        for (const char *p = rc == 0 && r.status == 200 ? r.body : "";
             got < k && strncmp(p, "{\"status\":202,", 14) == 0; got++) {
            const char *g = strstr(p, "\"generation_id\":");
            const char *nl = strchr(p, '\n');
            if (g == NULL || nl == NULL || g > nl)
                break;
            ids[done + got] = strtoull(g + 16, NULL, 10);
            p = nl + 1;
        }
        if (rc == 0 && got != k) {
            fprintf(stderr, "bench render: seeding: %d, %u of %u queued: %.200s\n", r.status,
                    got, k, r.body);
            rc = -EPROTO;
        }
        done += k;
    }
    free(lines);
    return rc;
}

/* Exactly once. The workers counted n answers 200 and no 409; here every
 * one of the round's n tasks must read back as completed, on its first
 * attempt (no lease lapsed), with its post. n completions answered 200
 * that leave n distinct tasks completed complete each exactly once: a
 * task completed twice would leave another without its 200. (The log's
 * generation.completed events would say it directly, but /v1/log answers
 * are chunked and the shared client cannot read a chunked answer that
 * arrives in more than one read: tools/http_client.c, dechunk().) */
static int rb_verify(reel_client_t *c, const uint64_t *ids, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        char path[64];
        reel_client_resp_t r;
        snprintf(path, sizeof(path), "/v1/generations/%llu", (unsigned long long)ids[i]);
        int rc = reel_client_request(c, "GET", path, NULL, 0, RB_REQUEST_TIMEOUT_MS, &r);
        if (rc != 0)
            return rc;
        if (r.status != 200 || strstr(r.body, "\"status\":\"completed\"") == NULL ||
            strstr(r.body, "\"attempts\":1,") == NULL || strstr(r.body, "\"post_id\":null") ||
            strstr(r.body, "\"post_id\":") == NULL) {
            fprintf(stderr, "bench render: task %llu is not completed once: %d %.200s\n",
                    (unsigned long long)ids[i], r.status, r.body);
            return -EPROTO;
        }
    }
    return 0;
}

/* The engine's counters of /metrics that say where a round's time went. */
typedef struct rb_engine_stats {
    double batches;     /* command batches of the engine's writer */
    double commands;    /* commands judged */
    double judge_s;     /* judging the rules, views session included */
    double durable_s;   /* waiting for the log's group commits */
    double commit_s;    /* the views' LMDB commits */
} rb_engine_stats_t;

static double rb_metric(const char *text, const char *name)
{
    const char *p = strstr(text, name);
    return p ? strtod(p + strlen(name), NULL) : 0.0;
}

static void rb_engine_stats(reel_client_t *c, rb_engine_stats_t *st)
{
    reel_client_resp_t r;
    memset(st, 0, sizeof(*st));
    if (reel_client_request(c, "GET", "/metrics", NULL, 0, RB_REQUEST_TIMEOUT_MS, &r) != 0 ||
        r.status != 200)
        return;
    st->batches = rb_metric(r.body, "\nreeld_engine_batches_total ");
    st->commands = rb_metric(r.body, "\nreeld_engine_commands_total ");
    st->judge_s = rb_metric(r.body, "{phase=\"judge\"} ");
    st->durable_s = rb_metric(r.body, "{phase=\"durable_wait\"} ");
    st->commit_s = rb_metric(r.body, "{phase=\"views_commit\"} ");
}

/* reeld's CPU time (user and system, all threads) in seconds, from
 * /proc/PID/stat; -1 when unreadable. */
static double rb_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    unsigned long long utime, stime;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    size_t len = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f != NULL)
        fclose(f);
    buf[len] = '\0';
    const char *p = strrchr(buf, ')'); /* the name may hold spaces */
    if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                            &utime, &stime) != 2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* This process's CPU time (the worker threads, during a drain) in seconds. */
static double rb_self_cpu_s(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* One way of taking tasks and handing them back. */
typedef struct rb_mode {
    uint32_t max;        /* the claim's max */
    bool batch;          /* a claim's completions in one POST /v1/batch */
    bool claim_in_batch; /* ... whose last line claims the next tasks */
    bool opt_in;         /* runs only when --filter names it */
    const char *name;    /* metrics are NAME_complete_... */
} rb_mode_t;

/* max 1: one claim per task, the reference worker's way; max 8: a claim
 * takes 8 tasks, then 8 completions one request each; batch: a claim of
 * max N, then the N completions as N lines of one /v1/batch, each its own
 * command with its own answer (a GPU worker that renders N clips at once).
 * The first is the baseline of the others' ratios.
 *
 * claim_in_batch: one request a loop, the N completions and the next
 * claim as the lines of one /v1/batch (a claim line answers whole tasks,
 * prompt and cameos included, as POST /v1/render/claim does: checked). */
static const rb_mode_t rb_modes[] = {
    {1, false, false, false, "claim"},
    {8, false, false, false, "claim_max8"},
    {8, true, false, false, "claim_max8_batch"},
    {16, true, false, false, "claim_max16_batch"},
    {8, true, true, false, "claim_in_batch_max8"},
    {16, true, true, false, "claim_in_batch_max16"},
};
#define RB_MODES (sizeof(rb_modes) / sizeof(rb_modes[0]))
_Static_assert(RB_CLAIM_MAX <= 64, "a claim's ids fit the worker's array");

typedef struct rb_worker {
    pthread_t thread;
    const char *url;
    uint32_t index;
    const rb_mode_t *mode;
    uint64_t tasks;       /* completed (200) */
    uint64_t conflicts;   /* 409s */
    int error;            /* first error, 0: none */
    uint64_t *lat_ns;     /* one task's share of a claim and its completions */
    uint32_t nlat, lat_cap;
} rb_worker_t;

/* Claims up to mode->max tasks into ids: their count, or -errno. */
static int rb_claim(rb_worker_t *w, reel_client_t *c, unsigned long long *ids)
{
    char body[128];
    reel_client_resp_t r;
    int n = 0, len = snprintf(body, sizeof(body), "{\"worker\":\"bench-%u\",\"lease_ms\":60000,"
                              "\"max\":%u}", w->index, w->mode->max);
    int rc = reel_client_request(c, "POST", "/v1/render/claim", body, (size_t)len,
                                 RB_REQUEST_TIMEOUT_MS, &r);
    if (rc == 0 && r.status != 200) {
        fprintf(stderr, "bench render: a claim answered %d: %.200s\n", r.status, r.body);
        rc = -EPROTO;
    }
    if (rc != 0)
        return rc;
    for (const char *p = r.body; n < (int)RB_CLAIM_MAX && (p = strstr(p, "\"generation_id\":")) != NULL;
         p++)
        ids[n++] = strtoull(p + 16, NULL, 10);
    return n;
}

/* One completion's answer: 200 with its post, or 409 (a conflict). */
static int rb_answer(rb_worker_t *w, int status, const char *body, const char *end)
{
    if (status == 200 && memmem(body, (size_t)(end - body), "\"post_id\":", 10) == NULL)
        status = 0;
    if (status != 200 && status != 409) {
        fprintf(stderr, "bench render: a completion answered %d: %.*s\n", status,
                (int)(end - body < 200 ? end - body : 200), body);
        return -EPROTO;
    }
    w->tasks += status == 200;
    w->conflicts += status == 409;
    return 0;
}

/* The tasks' completions, one request each. */
static int rb_complete_each(rb_worker_t *w, reel_client_t *c, const unsigned long long *ids,
                            uint32_t nids)
{
    for (uint32_t i = 0; i < nids; i++) {
        char path[64], body[160];
        reel_client_resp_t r;
        snprintf(path, sizeof(path), "/v1/render/%llu/complete", ids[i]);
        int n = snprintf(body, sizeof(body), "{\"worker\":\"bench-%u\",\"video_uri\":"
                         "\"file:///bench/%llu.gif\",\"duration_ms\":1920}", w->index, ids[i]);
        int rc = reel_client_request(c, "POST", path, body, (size_t)n, RB_REQUEST_TIMEOUT_MS, &r);
        if (rc == 0)
            rc = rb_answer(w, r.status, r.body, r.body + r.body_len);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* The ids of a claim's answer (a claim line's body in a batch) between p
 * and end, into ids: their count. */
static int rb_claimed_ids(const char *p, const char *end, unsigned long long *ids)
{
    int n = 0;
    while (n < (int)RB_CLAIM_MAX &&
           (p = memmem(p, (size_t)(end - p), "\"generation_id\":", 16)) != NULL) {
        ids[n++] = strtoull(p + 16, NULL, 10);
        p += 16;
    }
    return n;
}

/* The tasks' completions as the lines of one POST /v1/batch: one answer a
 * line, in order, each checked on its own. With next, the batch's last
 * line claims the next tasks (mode->claim_in_batch): their count, in
 * next. Else 0, or -errno. */
static int rb_complete_batch(rb_worker_t *w, reel_client_t *c, const unsigned long long *ids,
                             uint32_t nids, unsigned long long *next)
{
    char lines[(RB_CLAIM_MAX + 1) * 176];
    size_t len = 0;
    reel_client_resp_t r;
    int claimed = 0;
    for (uint32_t i = 0; i < nids; i++)
        len += (size_t)snprintf(lines + len, sizeof(lines) - len,
                                "{\"op\":\"POST /v1/render/%llu/complete\",\"body\":{\"worker\":"
                                "\"bench-%u\",\"video_uri\":\"file:///bench/%llu.gif\","
                                "\"duration_ms\":1920}}\n", ids[i], w->index, ids[i]);
    if (next != NULL)
        len += (size_t)snprintf(lines + len, sizeof(lines) - len,
                                "{\"op\":\"POST /v1/render/claim\",\"body\":{\"worker\":"
                                "\"bench-%u\",\"lease_ms\":60000,\"max\":%u}}\n", w->index,
                                w->mode->max);
    int rc = reel_client_request(c, "POST", "/v1/batch", lines, len, RB_REQUEST_TIMEOUT_MS, &r);
    if (rc != 0)
        return rc;
    uint32_t i = 0, lines_n = nids + (next != NULL);
    for (const char *p = r.status == 200 ? r.body : ""; rc == 0 && *p != '\0'; i++) {
        const char *nl = strchr(p, '\n');
        if (nl == NULL || i >= lines_n || strncmp(p, "{\"status\":", 10) != 0)
            break;
        if (i < nids)
            rc = rb_answer(w, atoi(p + 10), p, nl);
        else if (atoi(p + 10) == 200)
            claimed = rb_claimed_ids(p, nl, next);
        else
            break;
        if (i == nids && claimed > 0 && memmem(p, (size_t)(nl - p), "\"prompt\":", 9) == NULL) {
            fprintf(stderr, "bench render: a claim line's tasks have no prompt: %.200s\n", p);
            rc = -EPROTO; /* a worker could not render them */
        }
        p = nl + 1;
    }
    if (rc == 0 && i != lines_n) {
        fprintf(stderr, "bench render: a batch of %u lines answered %d, %u lines read: "
                "%.200s\n", lines_n, r.status, i, r.body);
        rc = -EPROTO;
    }
    return rc != 0 ? rc : claimed;
}

static void *rb_worker_main(void *arg)
{
    rb_worker_t *w = arg;
    reel_client_t c;
    unsigned long long ids[RB_CLAIM_MAX], next[RB_CLAIM_MAX];
    uint64_t t0 = reel_bench_now_ns();
    if ((w->error = reel_client_init(&c, w->url, NULL)) != 0)
        return NULL;
    int n = rb_claim(w, &c, ids);
    for (uint32_t spins = 0; n > 0 && spins < 10000000u; spins++) {
        int got = 0;
        if (w->mode->claim_in_batch)
            got = rb_complete_batch(w, &c, ids, (uint32_t)n, next);
        else if (w->mode->batch)
            got = rb_complete_batch(w, &c, ids, (uint32_t)n, NULL);
        else
            got = rb_complete_each(w, &c, ids, (uint32_t)n);
        if (got < 0) {
            n = got;
            break;
        }
        uint64_t t1 = reel_bench_now_ns();
        if (w->nlat < w->lat_cap)
            w->lat_ns[w->nlat++] = (t1 - t0) / (uint64_t)n;
        t0 = t1;
        if (w->mode->claim_in_batch)
            memcpy(ids, next, sizeof(*ids) * (size_t)got);
        n = w->mode->claim_in_batch ? got : rb_claim(w, &c, ids);
    }
    w->error = n < 0 ? n : 0; /* 0: a claim came back empty, this round is done */
    reel_client_free(&c);
    return NULL;
}

/* The workers drain the queue: tasks completed and 409s, samples in lat. */
static int rb_drain(const rb_server_t *s, const rb_mode_t *mode, uint32_t n, uint64_t *lat,
                    uint64_t *tasks, uint64_t *conflicts, uint32_t *nlat)
{
    rb_worker_t w[RB_WORKERS];
    uint32_t started = 0, cap = 2u * n / RB_WORKERS;
    int rc = 0;
    for (; started < RB_WORKERS; started++) {
        w[started] = (rb_worker_t){.url = s->url, .index = started, .mode = mode,
                                   .lat_ns = lat + (size_t)started * cap, .lat_cap = cap};
        if (pthread_create(&w[started].thread, NULL, rb_worker_main, &w[started]) != 0) {
            rc = -EAGAIN;
            break;
        }
    }
    for (uint32_t i = 0; i < started; i++) {
        pthread_join(w[i].thread, NULL);
        *tasks += w[i].tasks;
        *conflicts += w[i].conflicts;
        if (w[i].error != 0 && rc == 0)
            rc = w[i].error;
        memmove(lat + *nlat, w[i].lat_ns, sizeof(*lat) * w[i].nlat); /* compact */
        *nlat += w[i].nlat;
    }
    return rc;
}

typedef struct rb_result {
    double tasks_s, p50_us, p99_us;
    double per_batch;    /* commands per engine batch */
    double judge_us;     /* judging, a command */
    double durable_ms;   /* waiting for the log, a batch */
    double commit_ms;    /* the views' commit, a batch */
    double cpu_us;       /* reeld's CPU time, a task (all its threads) */
    double client_us;    /* the 32 workers' CPU time, a task */
} rb_result_t;

/* One round: n tasks queued, the workers drain them, the log says each
 * was completed exactly once. */
static int rb_round(const rb_server_t *s, reel_client_t *admin, uint32_t n,
                    const rb_mode_t *mode, rb_result_t *res)
{
    uint64_t *lat = malloc(sizeof(*lat) * (size_t)n * 2);
    uint64_t *ids = malloc(sizeof(*ids) * (size_t)n);
    uint64_t tasks = 0, conflicts = 0, t0;
    uint32_t nlat = 0;
    rb_engine_stats_t e0, e1;
    int rc = lat && ids ? rb_seed(admin, n, ids) : -ENOMEM;
    rb_engine_stats(admin, &e0);
    double cpu0 = rb_cpu_s(s->pid), self0 = rb_self_cpu_s();
    t0 = reel_bench_now_ns();
    if (rc == 0)
        rc = rb_drain(s, mode, n, lat, &tasks, &conflicts, &nlat);
    double secs = (double)(reel_bench_now_ns() - t0) / 1e9;
    double cpu1 = rb_cpu_s(s->pid), self1 = rb_self_cpu_s();
    rb_engine_stats(admin, &e1);
    if (rc == 0 && (tasks != n || conflicts != 0)) {
        fprintf(stderr, "bench render: %" PRIu64 " of %u tasks completed, %" PRIu64 " 409s\n",
                tasks, n, conflicts);
        rc = -EPROTO;
    }
    if (rc == 0)
        rc = rb_verify(admin, ids, n);
    if (rc == 0 && nlat > 0) {
        double batches = e1.batches - e0.batches, commands = e1.commands - e0.commands;
        reel_bench_sort_u64(lat, nlat);
        res->tasks_s = (double)tasks / secs;
        res->p50_us = (double)reel_bench_percentile(lat, nlat, 0.50) / 1e3;
        res->p99_us = (double)reel_bench_percentile(lat, nlat, 0.99) / 1e3;
        res->per_batch = batches > 0 ? commands / batches : 0;
        res->judge_us = commands > 0 ? (e1.judge_s - e0.judge_s) * 1e6 / commands : 0;
        res->durable_ms = batches > 0 ? (e1.durable_s - e0.durable_s) * 1e3 / batches : 0;
        res->commit_ms = batches > 0 ? (e1.commit_s - e0.commit_s) * 1e3 / batches : 0;
        res->cpu_us = cpu0 >= 0 && cpu1 >= 0 ? (cpu1 - cpu0) * 1e6 / (double)tasks : -1;
        res->client_us = self0 >= 0 && self1 >= 0 ? (self1 - self0) * 1e6 / (double)tasks : -1;
    }
    free(ids);
    free(lat);
    return rc;
}

/* 1,024 users, each to queue generations for. */
static int rb_users(reel_client_t *admin)
{
    reel_client_resp_t r;
    char *users = malloc((size_t)RB_USERS * 80u);
    size_t ulen = 0;
    if (users == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i < RB_USERS; i++)
        ulen += (size_t)snprintf(users + ulen, 80, "{\"op\":\"POST /v1/users\",\"body\":"
                                 "{\"handle\":\"bench%u\"}}\n", i);
    int rc = reel_client_request(admin, "POST", "/v1/batch", users, ulen, 120000u, &r);
    if (rc == 0 && (r.status != 200 || strstr(r.body, "\"status\":201") == NULL)) {
        fprintf(stderr, "bench render: creating users: %d %.200s\n", r.status, r.body);
        rc = -EPROTO;
    }
    free(users);
    return rc;
}

/* Medians of the rounds, to stdout; the first mode is the baseline of the
 * others' tasks/s. */
static void rb_emit(const bool *run, rb_result_t res[][RB_ROUNDS_MAX], uint32_t rounds)
{
    double base = -1, cpu_base = -1;
    for (uint32_t m = 0; m < RB_MODES; m++) {
        double rate[RB_ROUNDS_MAX], p50[RB_ROUNDS_MAX], p99[RB_ROUNDS_MAX], cpu[RB_ROUNDS_MAX];
        char metric[96];
        if (!run[m])
            continue;
        for (uint32_t i = 0; i < rounds; i++) {
            rate[i] = res[m][i].tasks_s;
            p50[i] = res[m][i].p50_us;
            p99[i] = res[m][i].p99_us;
            cpu[i] = res[m][i].cpu_us;
        }
        double median = reel_bench_median(rate, rounds);
        snprintf(metric, sizeof(metric), "%s_complete_tasks_per_s_32_workers", rb_modes[m].name);
        reel_bench_emit("render", metric, median, "tasks/s", m == 0 ? -1 : base);
        snprintf(metric, sizeof(metric), "%s_complete_p50_us", rb_modes[m].name);
        reel_bench_emit("render", metric, reel_bench_median(p50, rounds), "us", -1);
        snprintf(metric, sizeof(metric), "%s_complete_p99_us", rb_modes[m].name);
        reel_bench_emit("render", metric, reel_bench_median(p99, rounds), "us", -1);
        double cpu_median = reel_bench_median(cpu, rounds);
        snprintf(metric, sizeof(metric), "%s_complete_reeld_cpu_us_per_task_vs_baseline",
                 rb_modes[m].name);
        reel_bench_emit("render", metric, cpu_median, "us", m == 0 ? -1 : cpu_base);
        if (m == 0)
            cpu_base = cpu_median;
        if (m == 0)
            base = median;
    }
}

/* Every round runs each mode once, the modes interleaved, so that a noisy
 * neighbour of the shared machine weighs on each alike. One reeld serves
 * every round and its views grow by each round's tasks (a completion
 * costs more as they grow: docs/RENDER.md), so the mode that starts a
 * round turns: each mode meets small and large views alike. */
static int rb_rounds(const rb_server_t *s, reel_client_t *admin, uint32_t n, const bool *run,
                     rb_result_t res[][RB_ROUNDS_MAX], uint32_t rounds)
{
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && i < rounds; i++) {
        for (uint32_t k = 0; rc == 0 && k < RB_MODES; k++) {
            uint32_t m = (uint32_t)((k + i) % RB_MODES);
            const rb_result_t *x = &res[m][i];
            if (!run[m])
                continue;
            rc = rb_round(s, admin, n, &rb_modes[m], &res[m][i]);
            if (rc == 0)
                fprintf(stderr, "  %-20s round %u: %6.0f tasks/s, a task p50 %5.0f us, p99 %6.0f "
                        "us; CPU a task: reeld %3.0f us, workers %3.0f us; engine: %5.1f "
                        "commands a batch, judge %4.1f us a command, durable wait %.2f ms, views "
                        "commit %.2f ms a batch\n", rb_modes[m].name, i + 1, x->tasks_s,
                        x->p50_us, x->p99_us, x->cpu_us, x->client_us, x->per_batch,
                        x->judge_us, x->durable_ms, x->commit_ms);
        }
    }
    return rc;
}

int reel_bench_render(const reel_bench_ctx_t *ctx)
{
    static rb_result_t res[RB_MODES][RB_ROUNDS_MAX];
    rb_server_t s = {.pid = -1};
    reel_client_t admin;
    bool run[RB_MODES], any = false;
    uint32_t n = ctx->quick ? RB_TASKS_QUICK : RB_TASKS_FULL;
    uint32_t rounds = ctx->rounds < 1 ? 1 : ctx->rounds > RB_ROUNDS_MAX ? RB_ROUNDS_MAX : ctx->rounds;
    for (uint32_t m = 0; m < RB_MODES; m++) {
        char part[64];
        snprintf(part, sizeof(part), "%s_complete", rb_modes[m].name);
        run[m] = rb_modes[m].opt_in
                     ? ctx->filter != NULL && strstr(ctx->filter, "claim_in_batch") != NULL &&
                           reel_bench_want(ctx, part)
                     : reel_bench_want(ctx, "claim_complete") || reel_bench_want(ctx, part);
        any = any || run[m];
    }
    if (!any)
        return 0;
    run[0] = true; /* the baseline runs whenever another mode does */
    signal(SIGPIPE, SIG_IGN);
    static const char *const extra[] = {"--generations-per-day", "100000", NULL};
    if (reel_bench_reeld_start("render", ctx->dir, extra, &s) != 0)
        return 2;
    int rc = reel_client_init(&admin, s.url, NULL);
    if (rc == 0)
        rc = rb_users(&admin);
    fprintf(stderr, "  reeld pid %d on %s; %u worker threads, %u tasks a round, %ld CPUs "
            "online (shared by reeld and the workers)\n", (int)s.pid, s.url, RB_WORKERS, n,
            sysconf(_SC_NPROCESSORS_ONLN));
    if (rc == 0)
        rc = rb_rounds(&s, &admin, n, run, res, rounds);
    if (rc == 0)
        rb_emit(run, res, rounds);
    reel_client_free(&admin);
    int stopped = reel_bench_stop(s.pid, 10000);
    if (rc != 0) {
        fprintf(stderr, "bench render: failed: %s\n", strerror(rc < 0 ? -rc : rc));
        return 2;
    }
    if (stopped != 0)
        fprintf(stderr, "bench render: reeld did not stop cleanly on SIGTERM (%d)\n", stopped);
    return stopped == 0 ? 0 : 2;
}
