/*
 * bench_views.c: `reel bench views`: folding the log into the LMDB views.
 *
 *   rebuild   events per second that reel_replay folds into fresh views
 *             (reel rebuild's rate), against reading and decoding the same
 *             events without applying them (the baseline: what the log and
 *             the codec alone cost), in the same run.
 *
 * The world is synthetic and deterministic (seeded): 2% users, then
 * follows, likes, views, posts and comments among them in the mix of a
 * social app (views and likes most). Ingest through commands (validate,
 * log, views) comes with the command writer.
 */
#include "tools/bench.h"
#include "engine/common.h"
#include "engine/event.h"
#include "engine/log.h"
#include "engine/replay.h"
#include "engine/views.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GROUP_EVENTS 256u
#define ROUNDS_MAX 16u

static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Event i of the world. Strings point into static storage. */
static void world_event(uint64_t i, uint64_t users, uint64_t *posts, uint64_t *rng,
                        reel_event_t *ev)
{
    static char handle[32];
    static const char text[] = "so good, the dachshund at the end";
    uint64_t a = 1 + rnd(rng) % users, b = 1 + rnd(rng) % users;
    uint64_t pick = rnd(rng) % 100;
    memset(ev, 0, sizeof(*ev));
    if (i < users) {
        int n = snprintf(handle, sizeof(handle), "user%llu", (unsigned long long)i + 1);
        *ev = (reel_event_t){.type = REEL_EV_USER_CREATED, .user = i + 1,
                             .handle = {handle, (uint32_t)n}};
    } else if (pick < 6 || *posts == 0) {
        *ev = (reel_event_t){.type = REEL_EV_POST_CREATED, .post = ++*posts, .user = a,
                             .visibility = {"public", 6}, .prompt = {"a dachshund surfing", 19}};
    } else if (pick < 20) {
        *ev = (reel_event_t){.type = REEL_EV_FOLLOW_CREATED, .user = a, .target = b};
    } else if (pick < 55) {
        *ev = (reel_event_t){.type = REEL_EV_LIKE_CREATED, .user = a, .post = 1 + rnd(rng) % *posts};
    } else if (pick < 95) {
        *ev = (reel_event_t){.type = REEL_EV_VIEW_RECORDED, .user = a,
                             .post = 1 + rnd(rng) % *posts, .watch_ms = rnd(rng) % 30000};
    } else {
        *ev = (reel_event_t){.type = REEL_EV_COMMENT_CREATED, .comment = i, .user = a,
                             .post = 1 + rnd(rng) % *posts, .text = {text, sizeof(text) - 1}};
    }
}

/* Appends n events of the world to the log in log_dir, in groups. */
static int build_world(const char *log_dir, uint64_t n)
{
    reel_log_t *log;
    char err[256];
    reel_log_options_t o = {.no_compress = false};
    static uint8_t bufs[GROUP_EVENTS][512];
    reel_log_entry_t entries[GROUP_EVENTS];
    uint64_t rng = 7, posts = 0, users = n / 50 + 1;
    int rc = reel_log_open(log_dir, &o, &log, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "bench views: %s\n", err);
        return rc;
    }
    for (uint64_t i = 0; i < n && rc == 0;) {
        uint32_t k = 0;
        for (; k < GROUP_EVENTS && i < n; k++, i++) {
            reel_event_t ev;
            world_event(i, users, &posts, &rng, &ev);
            int len = reel_event_encode(&ev, bufs[k], sizeof(bufs[k]));
            REEL_ASSERT(len > 0);
            entries[k] = (reel_log_entry_t){ev.type, (uint32_t)len, bufs[k]};
        }
        rc = reel_log_append_group(log, entries, k, 0, NULL);
    }
    if (rc == 0)
        rc = reel_log_seal(log); /* readers meet compressed segments, as in life */
    int rc_close = reel_log_close(log);
    return rc != 0 ? rc : rc_close;
}

/* Reads and decodes every event (no views): the baseline rate. */
static int read_decode(reel_log_t *log, uint64_t n, double *rate)
{
    reel_log_iter_t *it;
    reel_record_t rec;
    reel_event_t ev;
    uint64_t t0 = reel_bench_now_ns(), seen = 0;
    int rc = reel_log_iter_open(log, 0, &it);
    while (rc == 0 && (rc = reel_log_iter_next(it, &rec)) == 0) {
        if ((rc = reel_event_decode(rec.type, rec.payload, rec.length, &ev)) != 0)
            break;
        seen++;
    }
    reel_log_iter_close(it);
    if (rc != REEL_EEND || seen != n)
        return rc == 0 ? REEL_ECORRUPT : rc;
    *rate = (double)n / ((double)(reel_bench_now_ns() - t0) / 1e9);
    return 0;
}

/* Folds the whole log into fresh views in dir/views-<round>. */
static int rebuild_once(const reel_bench_ctx_t *ctx, reel_log_t *log, uint32_t round, double *rate)
{
    char name[32], path[PATH_MAX], err[256];
    reel_views_t *v;
    snprintf(name, sizeof(name), "views-%u", round);
    int rc = reel_bench_mkdir(ctx->dir, name, path, sizeof(path));
    if (rc == 0)
        rc = reel_views_open(path, &v);
    if (rc != 0)
        return rc;
    uint64_t t0 = reel_bench_now_ns();
    rc = reel_replay(log, v, UINT64_MAX, NULL, NULL, err, sizeof(err));
    uint64_t ns = reel_bench_now_ns() - t0;
    if (rc != 0)
        fprintf(stderr, "bench views: replay: %s\n", err);
    *rate = (double)reel_views_applied(v) / ((double)ns / 1e9);
    reel_views_close(v);
    return rc;
}

int reel_bench_views(const reel_bench_ctx_t *ctx)
{
    char log_dir[PATH_MAX];
    double rebuild[ROUNDS_MAX], base[ROUNDS_MAX];
    uint64_t n = ctx->quick ? 200000 : 2000000;
    uint32_t rounds = ctx->rounds < ROUNDS_MAX ? ctx->rounds : ROUNDS_MAX;
    reel_log_t *log = NULL;
    reel_log_options_t ro = {.read_only = true};
    if (!reel_bench_want(ctx, "rebuild"))
        return 0;
    fprintf(stderr, "bench views: building a world of %llu events\n", (unsigned long long)n);
    int rc = reel_bench_mkdir(ctx->dir, "log", log_dir, sizeof(log_dir));
    if (rc == 0)
        rc = build_world(log_dir, n);
    if (rc == 0)
        rc = reel_log_open(log_dir, &ro, &log, NULL, 0);
    for (uint32_t r = 0; rc == 0 && r < rounds; r++) {
        rc = read_decode(log, n, &base[r]);
        if (rc == 0)
            rc = rebuild_once(ctx, log, r, &rebuild[r]);
        if (rc == 0)
            fprintf(stderr, "  round %u: rebuild %.0f events/s, read+decode %.0f events/s\n",
                    r + 1, rebuild[r], base[r]);
    }
    reel_log_close(log);
    if (rc != 0) {
        fprintf(stderr, "bench views: failed: %s\n", reel_strerror(rc));
        return 2;
    }
    reel_bench_emit("views", "rebuild", reel_bench_median(rebuild, rounds), "events/s",
                    reel_bench_median(base, rounds));
    return 0;
}
