/*
 * bench_views.c: `reel bench views`: folding the log into the LMDB views.
 *
 *   rebuild   events per second that reel_replay folds into fresh views
 *             (reel rebuild's rate), against reading and decoding the same
 *             events without applying them (the baseline: what the log and
 *             the codec alone cost), in the same run.
 *
 *   ingest    durable, materialised ingest: commands through the engine
 *             (validate against the views, append to the log, wait for the
 *             sync, commit the views), 4096 in flight, events per second,
 *             against the same mix written as plain LMDB puts (one put per
 *             event, a commit per 4096 like the engine's largest batch,
 *             MDB_NOMETASYNC) in the same run.
 *   profile_reads  profiles (a user with counts) from one thread in one
 *             snapshot, by random id, against raw mdb_get of as many keys.
 *
 * The worlds are synthetic and deterministic (seeded): users, then
 * follows, likes, views, posts and comments among them in the mix of a
 * social app (views and likes most). Generations join the mix with the
 * render queue.
 */
#include "tools/bench.h"
#include "engine/common.h"
#include "engine/event.h"
#include "engine/log.h"
#include "engine/reel.h"
#include "engine/replay.h"
#include "engine/views.h"

#include <limits.h>
#include <lmdb.h>
#include <pthread.h>
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

/* ---- ingest ---- */

#define INGEST_INFLIGHT 4096u
#define INGEST_USERS 5000u
#define BASELINE_COMMIT_EVERY 4096u /* the engine's largest batch (engine_int.h) */

typedef struct ingest {
    reel_engine_t *e;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint32_t inflight;
    uint64_t failed;    /* answers that were not a success */
    reel_cmd_req_t *slots;
} ingest_t;

static void ingest_cb(reel_cmd_req_t *req)
{
    ingest_t *in = req->data;
    pthread_mutex_lock(&in->mu);
    if (req->res.status >= 500)
        in->failed++;
    in->inflight--;
    pthread_cond_signal(&in->cv);
    pthread_mutex_unlock(&in->mu);
}

/* Command i of the ingest mix: 40 % views, 30 % likes, 15 % follows,
 * 8 % posts, 7 % comments, among INGEST_USERS users. */
static void ingest_cmd(uint64_t *rng, uint64_t posts_hint, reel_cmd_t *c)
{
    uint64_t a = 1 + rnd(rng) % INGEST_USERS, b = 1 + rnd(rng) % INGEST_USERS;
    uint64_t p = 1 + rnd(rng) % (posts_hint ? posts_hint : 1);
    uint64_t pick = rnd(rng) % 100;
    memset(c, 0, sizeof(*c));
    c->args.user = a;
    c->args.post = p;
    if (pick < 40) {
        c->kind = REEL_CMD_VIEW;
        c->args.watch_ms = rnd(rng) % 30000;
    } else if (pick < 70) {
        c->kind = REEL_CMD_LIKE;
    } else if (pick < 85) {
        c->kind = REEL_CMD_FOLLOW;
        c->args.target = b == a ? 1 + b % INGEST_USERS : b;
    } else if (pick < 93) {
        c->kind = REEL_CMD_POST_CREATE;
        c->args.video_uri = (reel_str_t){"file:///clip.gif", 16};
        c->args.prompt = (reel_str_t){"a dachshund surfing at dawn", 27};
    } else {
        c->kind = REEL_CMD_COMMENT_CREATE;
        c->args.text = (reel_str_t){"the ears!", 9};
    }
}

static int submit_slot(ingest_t *in, uint32_t slot, uint64_t *rng, uint64_t posts_hint)
{
    reel_cmd_req_t *req = &in->slots[slot];
    pthread_mutex_lock(&in->mu);
    while (in->inflight >= INGEST_INFLIGHT)
        pthread_cond_wait(&in->cv, &in->mu);
    in->inflight++;
    pthread_mutex_unlock(&in->mu);
    ingest_cmd(rng, posts_hint, &req->cmd);
    req->cb = ingest_cb;
    req->data = in;
    int rc;
    while ((rc = reel_engine_submit(in->e, req)) == REEL_EFULL)
        sched_yield();
    return rc;
}

static void ingest_drain(ingest_t *in)
{
    pthread_mutex_lock(&in->mu);
    while (in->inflight > 0)
        pthread_cond_wait(&in->cv, &in->mu);
    pthread_mutex_unlock(&in->mu);
}

/* Runs n commands through the engine; returns events appended per second. */
static int ingest_run(ingest_t *in, uint64_t n, uint64_t seed, uint64_t posts_hint, double *rate)
{
    uint64_t rng = seed, end0 = reel_log_end(reel_engine_log(in->e));
    uint64_t t0 = reel_bench_now_ns();
    int rc = 0;
    for (uint64_t i = 0; i < n && rc == 0; i++)
        rc = submit_slot(in, (uint32_t)(i % INGEST_INFLIGHT), &rng, posts_hint);
    ingest_drain(in);
    uint64_t events = reel_log_end(reel_engine_log(in->e)) - end0;
    *rate = (double)events / ((double)(reel_bench_now_ns() - t0) / 1e9);
    return rc != 0 ? rc : in->failed ? REEL_EFAILED : 0;
}

/* Users and a first set of posts, so the mix has something to act on. */
static int ingest_seed(ingest_t *in)
{
    char handles[64][16];
    for (uint32_t u = 0; u < INGEST_USERS; u++) {
        reel_cmd_req_t *req = &in->slots[u % INGEST_INFLIGHT];
        char *h = handles[u % 64];
        pthread_mutex_lock(&in->mu);
        while (in->inflight >= 64) /* the handle buffers are reused per 64 */
            pthread_cond_wait(&in->cv, &in->mu);
        in->inflight++;
        pthread_mutex_unlock(&in->mu);
        int len = snprintf(h, 16, "u%u", u);
        *req = (reel_cmd_req_t){.cmd = {.kind = REEL_CMD_USER_CREATE,
                                        .args = {.handle = {h, (uint32_t)len}}},
                                .cb = ingest_cb, .data = in};
        int rc = reel_engine_submit(in->e, req);
        if (rc != 0)
            return rc;
    }
    ingest_drain(in);
    double ignored;
    return ingest_run(in, 20000, 99, 1, &ignored);
}

/* The baseline: the same number of events as plain LMDB puts, one per
 * event, keys like the views' (be64 pairs), a commit per 4096. */
static int baseline_puts(const char *dir, uint64_t n, double *rate)
{
    MDB_env *env;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    uint64_t rng = 5, t0;
    int rc = mdb_env_create(&env);
    if (rc == 0)
        rc = mdb_env_set_mapsize(env, 4ull << 30);
    if (rc == 0)
        rc = mdb_env_open(env, dir, MDB_NOMETASYNC, 0644);
    t0 = reel_bench_now_ns();
    for (uint64_t i = 0; rc == 0 && i < n; i++) {
        if (txn == NULL && (rc = mdb_txn_begin(env, NULL, 0, &txn)) == 0)
            rc = mdb_dbi_open(txn, NULL, 0, &dbi);
        uint8_t key[16], val[8] = {0};
        uint64_t a = rnd(&rng) % INGEST_USERS, b = rnd(&rng) % 200000;
        for (int k = 0; k < 8; k++) {
            key[k] = (uint8_t)(a >> (56 - 8 * k));
            key[8 + k] = (uint8_t)(b >> (56 - 8 * k));
        }
        MDB_val kv = {sizeof(key), key}, vv = {sizeof(val), val};
        if (rc == 0)
            rc = mdb_put(txn, dbi, &kv, &vv, 0);
        if (rc == 0 && (i + 1) % BASELINE_COMMIT_EVERY == 0) {
            rc = mdb_txn_commit(txn);
            txn = NULL;
        }
    }
    if (txn != NULL)
        rc = rc == 0 ? mdb_txn_commit(txn) : (mdb_txn_abort(txn), rc);
    *rate = (double)n / ((double)(reel_bench_now_ns() - t0) / 1e9);
    mdb_env_close(env);
    return rc == 0 ? 0 : -EIO;
}

#define READS_N 1000000u

/* Profiles (user with counts) read from one thread in one snapshot, by
 * random id: per second. */
static int read_profiles(reel_engine_t *e, double *rate)
{
    reel_views_txn_t *t;
    reel_user_view_t u;
    uint64_t rng = 11, found = 0;
    int rc = reel_engine_read_begin(e, &t);
    if (rc != 0)
        return rc;
    uint64_t t0 = reel_bench_now_ns();
    for (uint32_t i = 0; i < READS_N && rc == 0; i++) {
        rc = reel_views_get_user(t, 1 + rnd(&rng) % INGEST_USERS, &u);
        found += rc == 0;
        rc = rc == REEL_ENOTFOUND ? 0 : rc;
    }
    *rate = (double)READS_N / ((double)(reel_bench_now_ns() - t0) / 1e9);
    reel_views_read_end(t);
    return rc == 0 && found == 0 ? REEL_ENOTFOUND : rc;
}

/* The baseline: raw mdb_get of 16-byte keys in the LMDB baseline's
 * environment, as many, from one thread in one snapshot. */
static int read_baseline(const char *dir, double *rate)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    uint64_t rng = 5;
    int rc = mdb_env_create(&env);
    if (rc == 0)
        rc = mdb_env_open(env, dir, MDB_RDONLY, 0644);
    if (rc == 0)
        rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (rc == 0 && (rc = mdb_dbi_open(txn, NULL, 0, &dbi)) != 0)
        mdb_txn_abort(txn);
    uint64_t t0 = reel_bench_now_ns();
    for (uint32_t i = 0; rc == 0 && i < READS_N; i++) {
        uint8_t key[16];
        uint64_t a = rnd(&rng) % INGEST_USERS, b = rnd(&rng) % 200000;
        for (int k = 0; k < 8; k++) {
            key[k] = (uint8_t)(a >> (56 - 8 * k));
            key[8 + k] = (uint8_t)(b >> (56 - 8 * k));
        }
        MDB_val kv = {sizeof(key), key}, vv;
        int g = mdb_get(txn, dbi, &kv, &vv);
        rc = g == MDB_NOTFOUND ? 0 : g;
    }
    *rate = (double)READS_N / ((double)(reel_bench_now_ns() - t0) / 1e9);
    if (rc == 0)
        mdb_txn_abort(txn);
    mdb_env_close(env);
    return rc == 0 ? 0 : -EIO;
}

/* Where the writer's time went (the seed included): what to work on. */
static void ingest_report(reel_engine_t *e)
{
    reel_engine_stats_t st;
    reel_engine_stats(e, &st);
    double b = st.batches ? (double)st.batches : 1.0;
    fprintf(stderr, "  writer: %llu batches, %.0f commands and %.0f events a batch; per batch "
            "judging %.0f us, waiting for the log %.0f us, committing the views %.0f us\n",
            (unsigned long long)st.batches, (double)st.commands / b, (double)st.events / b,
            (double)st.judge_ns / b / 1e3, (double)st.durable_wait_ns / b / 1e3,
            (double)st.views_commit_ns / b / 1e3);
}

static int bench_ingest(const reel_bench_ctx_t *ctx)
{
    uint64_t n = ctx->quick ? 100000 : 1000000;
    uint32_t rounds = ctx->rounds < ROUNDS_MAX ? ctx->rounds : ROUNDS_MAX;
    double eng_rate[ROUNDS_MAX], base_rate[ROUNDS_MAX], read_rate[ROUNDS_MAX], read_base[ROUNDS_MAX];
    int rc = 0;
    for (uint32_t r = 0; rc == 0 && r < rounds; r++) {
        char name[32], data[PATH_MAX], lmdb_dir[PATH_MAX], err[256];
        ingest_t in = {0};
        snprintf(name, sizeof(name), "ingest-%u", r);
        rc = reel_bench_mkdir(ctx->dir, name, data, sizeof(data));
        snprintf(name, sizeof(name), "lmdb-%u", r);
        if (rc == 0)
            rc = reel_bench_mkdir(ctx->dir, name, lmdb_dir, sizeof(lmdb_dir));
        pthread_mutex_init(&in.mu, NULL);
        pthread_cond_init(&in.cv, NULL);
        in.slots = calloc(INGEST_INFLIGHT, sizeof(*in.slots));
        if (rc == 0 && (rc = reel_engine_open(data, NULL, &in.e, err, sizeof(err))) != 0)
            fprintf(stderr, "bench views: %s\n", err);
        if (rc == 0)
            rc = ingest_seed(&in);
        if (rc == 0)
            rc = ingest_run(&in, n, 1000 + r, 1000, &eng_rate[r]);
        if (rc == 0)
            rc = read_profiles(in.e, &read_rate[r]);
        if (rc == 0)
            ingest_report(in.e);
        reel_engine_close(in.e);
        free(in.slots);
        if (rc == 0)
            rc = baseline_puts(lmdb_dir, (uint64_t)(eng_rate[r] > 0 ? n : n), &base_rate[r]);
        if (rc == 0)
            rc = read_baseline(lmdb_dir, &read_base[r]);
        if (rc == 0)
            fprintf(stderr, "  round %u: ingest %.0f events/s, plain LMDB puts %.0f/s; profiles "
                    "%.0f reads/s, raw mdb_get %.0f/s\n", r + 1, eng_rate[r], base_rate[r],
                    read_rate[r], read_base[r]);
    }
    if (rc != 0) {
        fprintf(stderr, "bench views: ingest failed: %s\n", reel_strerror(rc));
        return 2;
    }
    reel_bench_emit("views", "ingest", reel_bench_median(eng_rate, rounds), "events/s",
                    reel_bench_median(base_rate, rounds));
    reel_bench_emit("views", "profile_reads", reel_bench_median(read_rate, rounds), "reads/s",
                    reel_bench_median(read_base, rounds));
    return 0;
}

int reel_bench_views(const reel_bench_ctx_t *ctx)
{
    char log_dir[PATH_MAX];
    double rebuild[ROUNDS_MAX], base[ROUNDS_MAX];
    uint64_t n = ctx->quick ? 200000 : 2000000;
    uint32_t rounds = ctx->rounds < ROUNDS_MAX ? ctx->rounds : ROUNDS_MAX;
    reel_log_t *log = NULL;
    reel_log_options_t ro = {.read_only = true};
    if (reel_bench_want(ctx, "ingest") && bench_ingest(ctx) != 0)
        return 2;
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
