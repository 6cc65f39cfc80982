/*
 * bench_feed_quality.c: `reel bench feed_quality` (issue 6, "Proof"): the
 * For You feed's quality on real data, against three baselines computed in
 * the same run from the same data.
 *
 * Data: MovieLens 100K from ../shared/data/ml-100k (relative to the working
 * directory, or to the project root, two levels above the reel binary); absent: the
 * benchmark says so on stderr, prints nothing on stdout and succeeds.
 * Mapping (../shared/data/README.md, tools/import_read.h, whose reader this
 * uses): a user is a user, a movie a post by its own creator tagged with its
 * genres, created at its first rating; every rating a completed view, a
 * rating of 4 or 5 also a like.
 *
 * Method. The ratings are sorted by time and cut at the time of the
 * 80%-th (80,000th): every command before it is replayed, with its own
 * times, through an engine (trust_client_time) whose on_apply is
 * reel_index_apply, so the index is exactly what reeld would have at that
 * moment ("now" is the last pre-cut event). For each user with likes at or
 * after the cut, the held-out set is those likes, and each method's list of
 * 20 is scored:
 *   recall@20 = |list and held-out| / |held-out|
 *   nDCG@10   = sum_{i<10, list[i] held-out} 1/log2(i+2) / IDCG (binary
 *               relevance, IDCG over min(10, |held-out|) hits),
 * averaged over those users. Methods:
 *   feed      the first for_you page of 20 (reel_index_feed, with a views
 *             snapshot, as reeld serves it: exploration slots included);
 *   pop_all   the posts with most likes before the cut;
 *   pop_30d   the posts with most likes in the 30 days (engine time) before
 *             the cut (ties: all-time likes);
 *   item_knn  item-to-item kNN on likes: score(j) = sum over the user's
 *             pre-cut likes i of co(i,j) / sqrt(n_i n_j) (cosine on co-like
 *             counts); users without pre-cut likes get nothing.
 * Every baseline skips what the user rated (viewed) before the cut, as the
 * feed does. Users who appear only after the cut are counted (the feed
 * answers them as a new user; the popularity baselines as anyone).
 *
 * Output (JSON lines, bench.h): recall20 and ndcg10 with the strongest
 * baseline on that metric as baseline; then each baseline on its own
 * (recall20_vs_pop_all, ...: value = feed, baseline = that one); the users
 * evaluated; the feed's catalogue coverage (distinct posts on the pages /
 * posts that exist at the cut). Deterministic: no rounds (ctx->rounds is
 * ignored: the same data and seed give the same figures).
 */
#include "tools/bench.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/common.h"
#include "engine/reel.h"
#include "index/index.h"
#include "tools/import_read.h"

#define TOPN 20u
#define NDCG_K 10u
#define CUT_SHARE 0.8
#define RECENT_MS (30ull * 24 * 3600 * 1000)
/* Commands in flight (as reel import: two of the engine's batches). */
#define WINDOW 8192u

enum { M_FEED, M_POP_ALL, M_POP_30D, M_KNN, M_N };
static const char *const m_name[M_N] = {"feed", "pop_all", "pop_30d", "item_knn"};

/* ---- finding the data ---- */

static bool is_dir_with(const char *dir, const char *file)
{
    char p[PATH_MAX];
    struct stat st;
    return snprintf(p, sizeof p, "%s/%s", dir, file) < (int)sizeof p && stat(p, &st) == 0 &&
           S_ISREG(st.st_mode);
}

/* ../shared/data/ml-100k from the working directory, else from the
 * project root (two levels above this executable: ROOT/build/reel). */
static bool find_data(char *out, size_t cap)
{
    snprintf(out, cap, "../shared/data/ml-100k");
    if (is_dir_with(out, "u.data"))
        return true;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return false;
    exe[n] = 0;
    for (int up = 0; up < 2; up++) {
        char *slash = strrchr(exe, '/');
        if (slash == NULL)
            return false;
        *slash = 0;
    }
    if (snprintf(out, cap, "%s/../shared/data/ml-100k", exe) >= (int)cap)
        return false;
    return is_dir_with(out, "u.data");
}

/* ---- replay through the engine ---- */

typedef struct replay {
    const reel_import_plan_t *plan;
    reel_cmd_req_t *slots;
    uint64_t *slot_op;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t answered;
    uint64_t refused;
    bool waiting;
} replay_t;

static void replay_cb(reel_cmd_req_t *req)
{
    replay_t *r = req->data;
    pthread_mutex_lock(&r->mu);
    const reel_import_op_t *op = &r->plan->ops[r->slot_op[req - r->slots]];
    uint64_t want = op->kind == REEL_CMD_USER_CREATE   ? op->a
                    : op->kind == REEL_CMD_POST_CREATE ? op->b
                                                       : 0;
    if (req->res.status >= 400 || (want != 0 && req->res.id != want)) {
        if (r->refused++ == 0)
            fprintf(stderr, "bench feed_quality: line %u: %s answered %d (%s), id %llu want %llu\n",
                    op->line, reel_cmd_route(req->cmd.kind), req->res.status, req->res.message,
                    (unsigned long long)req->res.id, (unsigned long long)want);
    }
    r->answered++;
    if (r->waiting)
        pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static void replay_wait(replay_t *r, uint64_t submitted, uint64_t bound)
{
    pthread_mutex_lock(&r->mu);
    while (submitted - r->answered > bound) {
        r->waiting = true;
        pthread_cond_wait(&r->cv, &r->mu);
        r->waiting = false;
    }
    pthread_mutex_unlock(&r->mu);
}

/* The command of op (a fresh directory: engine ids are the plan's). */
static void op_cmd(const reel_import_plan_t *plan, const reel_import_op_t *op, reel_cmd_t *c)
{
    memset(c, 0, sizeof(*c));
    c->kind = (reel_cmd_kind_t)op->kind;
    c->at = op->at_ms;
    switch (c->kind) {
    case REEL_CMD_USER_CREATE:
        c->args.handle = (reel_str_t){plan->handles[op->a], (uint32_t)strlen(plan->handles[op->a])};
        break;
    case REEL_CMD_POST_CREATE: {
        const reel_import_post_t *p = &plan->posts[op->b];
        c->args.user = op->a;
        c->args.prompt = (reel_str_t){p->prompt, p->prompt_len};
        c->args.video_uri = (reel_str_t){p->uri, (uint32_t)strlen(p->uri)};
        c->args.ntags = p->ntags;
        memcpy(c->args.tags, p->tags, p->ntags * sizeof(p->tags[0]));
        break;
    }
    case REEL_CMD_VIEW:
        c->args.user = op->a;
        c->args.post = op->b;
        c->args.watch_ms = REEL_IMPORT_WATCH_MS;
        c->args.completed = true;
        break;
    default: /* LIKE (FOLLOW is not in MovieLens) */
        c->args.user = op->a;
        c->args.post = op->b;
        c->args.target = op->b;
        break;
    }
}

/* Submits ops[0..n) in order; returns the refusals (0: all applied). */
static uint64_t replay(reel_engine_t *e, const reel_import_plan_t *plan, uint64_t n)
{
    replay_t r = {.plan = plan};
    r.slots = calloc(WINDOW, sizeof(*r.slots));
    r.slot_op = calloc(WINDOW, sizeof(*r.slot_op));
    if (r.slots == NULL || r.slot_op == NULL) {
        free(r.slots);
        free(r.slot_op);
        return 1;
    }
    pthread_mutex_init(&r.mu, NULL);
    pthread_cond_init(&r.cv, NULL);
    uint64_t i = 0;
    for (; i < n; i++) {
        replay_wait(&r, i, WINDOW - 1);
        uint32_t s = (uint32_t)(i % WINDOW);
        r.slot_op[s] = i;
        op_cmd(plan, &plan->ops[i], &r.slots[s].cmd);
        r.slots[s].cb = replay_cb;
        r.slots[s].data = &r;
        int rc;
        while ((rc = reel_engine_submit(e, &r.slots[s])) == REEL_EFULL)
            sched_yield();
        if (rc != 0) {
            fprintf(stderr, "bench feed_quality: submit: %s\n", reel_strerror(rc));
            r.refused++;
            break;
        }
    }
    replay_wait(&r, i, 0);
    pthread_cond_destroy(&r.cv);
    pthread_mutex_destroy(&r.mu);
    free(r.slots);
    free(r.slot_op);
    return r.refused;
}

/* ---- metrics ---- */

typedef struct sums {
    double recall, ndcg;
} sums_t;

/* Adds list[0..n)'s recall@20 and nDCG@10 against held[0..nh) (held is a
 * byte per post, 1 for a held-out like). */
static void score_list(const uint32_t *list, uint32_t n, const uint8_t *held, uint32_t nh,
                       sums_t *s)
{
    uint32_t hits = 0;
    double dcg = 0, idcg = 0;
    for (uint32_t i = 0; i < n && i < TOPN; i++)
        if (held[list[i]]) {
            hits++;
            if (i < NDCG_K)
                dcg += 1.0 / log2((double)i + 2.0);
        }
    for (uint32_t i = 0; i < nh && i < NDCG_K; i++)
        idcg += 1.0 / log2((double)i + 2.0);
    s->recall += (double)hits / nh;
    s->ndcg += dcg / idcg;
}

/* The TOPN best posts by score (higher first, ties: lower id), skipping
 * those with skip[p]; score <= 0 never makes a list. */
static uint32_t top_of(const double *score, uint32_t nposts, const uint8_t *skip, uint32_t *out)
{
    uint32_t n = 0;
    for (uint32_t p = 1; p <= nposts; p++) {
        if (skip[p] || !(score[p] > 0))
            continue;
        if (n == TOPN && score[p] <= score[out[n - 1]])
            continue;
        uint32_t j = n < TOPN ? n++ : TOPN - 1;
        for (; j > 0 && score[out[j - 1]] < score[p]; j--)
            out[j] = out[j - 1];
        out[j] = p;
    }
    return n;
}

/* ---- the benchmark ---- */

typedef struct data {
    reel_import_plan_t plan;
    uint64_t ncut;       /* ops before the cut */
    uint64_t cut_ms;
    uint32_t nu, np;     /* local users and posts (1-based) */
    uint32_t *seen_off;  /* CSR by user: posts viewed before the cut */
    uint32_t *seen;
    uint32_t *liked_off; /* CSR by user: posts liked before the cut */
    uint32_t *liked;
    uint32_t *held_off;  /* CSR by user: posts liked at or after the cut */
    uint32_t *held;
    double *pop_all, *pop_30d;
    uint32_t *co;        /* np+1 squared co-like counts */
} data_t;

/* Builds the CSR of (user, post) pairs of ops[from..to) of kind `kind`. */
static int csr(const data_t *d, uint64_t from, uint64_t to, uint8_t kind, uint32_t **off_out,
               uint32_t **val_out)
{
    uint32_t *off = calloc((size_t)d->nu + 2, sizeof(uint32_t));
    if (off == NULL)
        return -ENOMEM;
    uint64_t total = 0;
    for (uint64_t i = from; i < to; i++)
        if (d->plan.ops[i].kind == kind) {
            off[d->plan.ops[i].a + 1]++;
            total++;
        }
    for (uint32_t u = 1; u <= d->nu + 1; u++)
        off[u] += off[u - 1];
    uint32_t *val = malloc(sizeof(uint32_t) * (total + 1));
    uint32_t *fill = calloc((size_t)d->nu + 1, sizeof(uint32_t));
    if (val == NULL || fill == NULL) {
        free(off);
        free(val);
        free(fill);
        return -ENOMEM;
    }
    for (uint64_t i = from; i < to; i++) {
        const reel_import_op_t *op = &d->plan.ops[i];
        if (op->kind == kind)
            val[off[op->a] + fill[op->a]++] = op->b;
    }
    free(fill);
    *off_out = off;
    *val_out = val;
    return 0;
}

static void data_free(data_t *d)
{
    free(d->seen_off);
    free(d->seen);
    free(d->liked_off);
    free(d->liked);
    free(d->held_off);
    free(d->held);
    free(d->pop_all);
    free(d->pop_30d);
    free(d->co);
    reel_import_plan_free(&d->plan);
}

/* The cut, the per-user sets and the baselines' tables. */
static int prepare(data_t *d)
{
    const reel_import_plan_t *pl = &d->plan;
    uint64_t nratings = 0, k = 0;
    for (uint64_t i = 0; i < pl->nops; i++)
        nratings += pl->ops[i].kind == REEL_CMD_VIEW;
    uint64_t want = (uint64_t)((double)nratings * CUT_SHARE);
    for (uint64_t i = 0; i < pl->nops; i++)
        if (pl->ops[i].kind == REEL_CMD_VIEW && k++ == want) {
            d->cut_ms = pl->ops[i].at_ms;
            break;
        }
    while (d->ncut < pl->nops && pl->ops[d->ncut].at_ms < d->cut_ms)
        d->ncut++;
    d->nu = pl->nusers;
    d->np = pl->nposts;
    int rc = csr(d, 0, d->ncut, REEL_CMD_VIEW, &d->seen_off, &d->seen);
    if (rc == 0)
        rc = csr(d, 0, d->ncut, REEL_CMD_LIKE, &d->liked_off, &d->liked);
    if (rc == 0)
        rc = csr(d, d->ncut, pl->nops, REEL_CMD_LIKE, &d->held_off, &d->held);
    d->pop_all = calloc((size_t)d->np + 1, sizeof(double));
    d->pop_30d = calloc((size_t)d->np + 1, sizeof(double));
    d->co = calloc((size_t)(d->np + 1) * (d->np + 1), sizeof(uint32_t));
    if (rc != 0 || d->pop_all == NULL || d->pop_30d == NULL || d->co == NULL)
        return -ENOMEM;
    for (uint64_t i = 0; i < d->ncut; i++) {
        const reel_import_op_t *op = &pl->ops[i];
        if (op->kind != REEL_CMD_LIKE)
            continue;
        d->pop_all[op->b] += 1;
        if (op->at_ms + RECENT_MS >= d->cut_ms)
            d->pop_30d[op->b] += 1;
    }
    /* Ties of the last 30 days go to the all-time count. */
    for (uint32_t p = 1; p <= d->np; p++)
        if (d->pop_30d[p] > 0)
            d->pop_30d[p] += d->pop_all[p] / 1e6;
    for (uint32_t u = 1; u <= d->nu; u++)
        for (uint32_t i = d->liked_off[u]; i < d->liked_off[u + 1]; i++)
            for (uint32_t j = d->liked_off[u]; j < d->liked_off[u + 1]; j++)
                d->co[(size_t)d->liked[i] * (d->np + 1) + d->liked[j]]++;
    return 0;
}

static int feed_page(reel_index_t *idx, reel_engine_t *e, uint32_t user, uint32_t *list,
                     uint32_t *n)
{
    reel_feed_item_t items[TOPN];
    reel_feed_page_t pg = {.items = items};
    reel_views_txn_t *t;
    int rc = reel_engine_read_begin(e, &t);
    if (rc != 0)
        return rc;
    rc = reel_index_feed(idx, t, user, REEL_FEED_FOR_YOU, TOPN, NULL, false, &pg);
    reel_views_read_end(t);
    *n = 0;
    for (size_t i = 0; rc == 0 && i < pg.n; i++)
        list[(*n)++] = (uint32_t)pg.items[i].post;
    return rc;
}

/* Scores every method for every user with held-out likes. */
static int evaluate(const data_t *d, reel_index_t *idx, reel_engine_t *e, sums_t *sum,
                    sums_t *cold, uint32_t *nusers, uint32_t *ncold, uint32_t *covered)
{
    uint8_t *skip = calloc((size_t)d->np + 1, 1), *held = calloc((size_t)d->np + 1, 1);
    uint8_t *shown = calloc((size_t)d->np + 1, 1);
    double *knn = calloc((size_t)d->np + 1, sizeof(double));
    int rc = skip && held && shown && knn ? 0 : -ENOMEM;
    for (uint32_t u = 1; rc == 0 && u <= d->nu; u++) {
        uint32_t nh = d->held_off[u + 1] - d->held_off[u];
        if (nh == 0)
            continue;
        (*nusers)++;
        bool is_cold = d->seen_off[u + 1] == d->seen_off[u];
        *ncold += is_cold;
        sums_t before[M_N];
        memcpy(before, sum, sizeof(before));
        for (uint32_t i = d->held_off[u]; i < d->held_off[u + 1]; i++)
            held[d->held[i]] = 1;
        for (uint32_t i = d->seen_off[u]; i < d->seen_off[u + 1]; i++)
            skip[d->seen[i]] = 1;
        uint32_t list[TOPN], n = 0;
        rc = feed_page(idx, e, u, list, &n);
        if (rc != 0)
            break;
        for (uint32_t i = 0; i < n; i++)
            if (list[i] <= d->np && !shown[list[i]]) {
                shown[list[i]] = 1;
                (*covered)++;
            }
        score_list(list, n, held, nh, &sum[M_FEED]);
        n = top_of(d->pop_all, d->np, skip, list);
        score_list(list, n, held, nh, &sum[M_POP_ALL]);
        n = top_of(d->pop_30d, d->np, skip, list);
        score_list(list, n, held, nh, &sum[M_POP_30D]);
        memset(knn, 0, sizeof(double) * (d->np + 1));
        for (uint32_t i = d->liked_off[u]; i < d->liked_off[u + 1]; i++) {
            uint32_t a = d->liked[i];
            const uint32_t *row = &d->co[(size_t)a * (d->np + 1)];
            double na = row[a];
            for (uint32_t b = 1; b <= d->np; b++)
                if (row[b] != 0 && b != a)
                    knn[b] += row[b] / sqrt(na * d->co[(size_t)b * (d->np + 1) + b]);
        }
        n = top_of(knn, d->np, skip, list);
        score_list(list, n, held, nh, &sum[M_KNN]);
        for (int m = 0; is_cold && m < M_N; m++) {
            cold[m].recall += sum[m].recall - before[m].recall;
            cold[m].ndcg += sum[m].ndcg - before[m].ndcg;
        }
        for (uint32_t i = d->held_off[u]; i < d->held_off[u + 1]; i++)
            held[d->held[i]] = 0;
        for (uint32_t i = d->seen_off[u]; i < d->seen_off[u + 1]; i++)
            skip[d->seen[i]] = 0;
    }
    free(skip);
    free(held);
    free(shown);
    free(knn);
    return rc;
}

static int run(const reel_bench_ctx_t *ctx, data_t *d)
{
    reel_index_t *idx = NULL;
    reel_engine_t *e = NULL;
    reel_index_options_t io = {.dim = 64};
    char err[256] = "";
    int rc = reel_index_open(&io, &idx);
    reel_engine_options_t eo = {.trust_client_time = true, .dim = 64,
                                .on_apply = reel_index_apply, .on_apply_ctx = idx};
    if (rc == 0)
        rc = reel_engine_open(ctx->dir, &eo, &e, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "bench feed_quality: open: %s\n", err[0] ? err : reel_strerror(rc));
        reel_index_close(idx);
        return 2;
    }
    uint64_t t0 = reel_bench_now_ns();
    uint64_t refused = replay(e, &d->plan, d->ncut);
    reel_index_stats_t st;
    reel_index_stats(idx, &st);
    fprintf(stderr,
            "bench feed_quality: replayed %llu of %llu commands (before %llu ms) in %.2f s; "
            "index: %llu posts, %llu users, now %llu ms, %llu dropped\n",
            (unsigned long long)d->ncut, (unsigned long long)d->plan.nops,
            (unsigned long long)d->cut_ms, (reel_bench_now_ns() - t0) / 1e9,
            (unsigned long long)st.posts, (unsigned long long)st.users,
            (unsigned long long)st.now_ms, (unsigned long long)st.dropped);
    sums_t sum[M_N] = {{0, 0}}, cold[M_N] = {{0, 0}};
    uint32_t nusers = 0, ncold = 0, covered = 0;
    if (refused != 0) {
        rc = 2;
    } else {
        t0 = reel_bench_now_ns();
        rc = evaluate(d, idx, e, sum, cold, &nusers, &ncold, &covered);
        if (rc != 0)
            fprintf(stderr, "bench feed_quality: feed: %s\n", reel_strerror(rc));
        else
            fprintf(stderr, "bench feed_quality: %u users with likes after the cut (%u with none "
                            "before it) ranked in %.2f s\n",
                    nusers, ncold, (reel_bench_now_ns() - t0) / 1e9);
    }
    int rc_close = reel_engine_close(e);
    reel_index_close(idx);
    if (rc != 0 || rc_close != 0 || nusers == 0)
        return 2;
    double rec[M_N], nd[M_N];
    for (int m = 0; m < M_N; m++) {
        rec[m] = sum[m].recall / nusers;
        nd[m] = sum[m].ndcg / nusers;
        fprintf(stderr,
                "bench feed_quality: %-8s recall@20 %.4f  nDCG@10 %.4f   (users with history: "
                "%.4f %.4f; new users: %.4f %.4f)\n",
                m_name[m], rec[m], nd[m], (sum[m].recall - cold[m].recall) / (nusers - ncold),
                (sum[m].ndcg - cold[m].ndcg) / (nusers - ncold), cold[m].recall / ncold,
                cold[m].ndcg / ncold);
    }
    int best_r = M_POP_ALL, best_n = M_POP_ALL;
    for (int m = M_POP_ALL; m < M_N; m++) {
        best_r = rec[m] > rec[best_r] ? m : best_r;
        best_n = nd[m] > nd[best_n] ? m : best_n;
    }
    fprintf(stderr, "bench feed_quality: strongest baseline: %s (recall@20), %s (nDCG@10)\n",
            m_name[best_r], m_name[best_n]);
    reel_bench_emit("feed_quality", "recall20", rec[M_FEED], "ratio", rec[best_r]);
    reel_bench_emit("feed_quality", "ndcg10", nd[M_FEED], "ratio", nd[best_n]);
    char name[64];
    for (int m = M_POP_ALL; m < M_N; m++) {
        snprintf(name, sizeof name, "recall20_vs_%s", m_name[m]);
        reel_bench_emit("feed_quality", name, rec[M_FEED], "ratio", rec[m]);
        snprintf(name, sizeof name, "ndcg10_vs_%s", m_name[m]);
        reel_bench_emit("feed_quality", name, nd[M_FEED], "ratio", nd[m]);
    }
    reel_bench_emit("feed_quality", "users", nusers, "users", -1);
    reel_bench_emit("feed_quality", "feed_coverage", (double)covered / (double)st.posts, "ratio",
                    -1);
    return 0;
}

int reel_bench_feed_quality(const reel_bench_ctx_t *ctx)
{
    char dir[PATH_MAX];
    if (!find_data(dir, sizeof dir)) {
        fprintf(stderr, "bench feed_quality: SKIPPED: MovieLens 100K not found "
                        "(../shared/data/ml-100k/u.data, from the working directory or the "
                        "project root); see ../shared/data/README.md\n");
        return 0;
    }
    data_t *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return 2;
    int rc = reel_import_read_movielens(dir, false, stderr, &d->plan);
    if (rc != 0) {
        fprintf(stderr, "bench feed_quality: reading %s: %s\n", dir, reel_strerror(rc));
        free(d);
        return 2;
    }
    fprintf(stderr, "bench feed_quality: %s: %llu lines, %u users, %u posts, %llu commands\n", dir,
            (unsigned long long)d->plan.lines, d->plan.nusers, d->plan.nposts,
            (unsigned long long)d->plan.nops);
    int status = prepare(d) == 0 ? run(ctx, d) : 2;
    data_free(d);
    free(d);
    return status;
}
