/*
 * bench_feed.c: `reel bench feed` (issue 6): the recommendation index on a
 * generated world, fed straight through reel_index_apply (no log, no
 * views: this measures the index alone).
 *
 * World (seeded): 50 topics of 8 words; posts of 3 words of a topic and
 * its tag, authors Zipf-skewed; every user follows 20 Zipf-skewed authors
 * and has 2 favourite topics, and likes or watches to the end posts of
 * them (5 engagements a user). Full: 1,000,000 posts and 100,000 users;
 * --quick: 20,000 and 2,000.
 *
 * Metrics (one JSON line each):
 *  - feed_build_s: seconds to apply the world;
 *  - for_you_page20_p50_us / _p99_us: first pages of 20 for random users,
 *    one thread;
 *  - ann_qps_at_recall95: HNSW queries per second (k 10; the median of 5
 *    passes over the 200 queries) at the smallest ef
 *    (of 16..1024, steps of about 1.5: EF_STEPS) whose recall@10 against exact search on the
 *    same vectors is at least 0.95, over the posts' vectors with topic
 *    queries; baseline: the exact scan's queries per second;
 *  - ann_recall10: the recall reached;
 *  - bytes_per_post (post table, vectors, tags, HNSW) and
 *    bytes_per_post_total (profiles, bitmaps, sessions included).
 *  - hnswlib_qps_at_recall95: hnswlib (Debian libhnswlib-dev, through
 *    tools/hnswlib_shim.cpp, built only when its header exists) on the same
 *    vectors (ours, as stored: dequantised int8), the same queries, the
 *    same exact answers and recall rule, the same M (12) and
 *    efConstruction (100): queries per second at the smallest ef of
 *    EF_STEPS reaching recall@10 0.95; and ann_qps_vs_hnswlib: ours at
 *    recall 0.95 against it as baseline (the ratio ours / hnswlib).
 *    Without hnswlib: skipped, said on stderr, baseline null.
 */
#include "tools/bench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/common.h"
#include "index/ann.h"
#include "index/index.h"

#ifdef REEL_HAVE_HNSWLIB
/* tools/hnswlib_shim.cpp */
void *reel_hnsw_build(const float *vecs, const uint32_t *ids, size_t n, size_t dim, size_t m,
                      size_t efc, uint64_t seed);
size_t reel_hnsw_query(void *h, const float *q, size_t k, size_t ef, uint32_t *ids);
void reel_hnsw_free(void *h);
#endif

#define TOPICS 50u
#define WORDS 8u
#define FOLLOWS 20u
#define ENGAGE 5u

static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double unit(uint64_t *s)
{
    return (double)(rnd(s) >> 11) / 9007199254740992.0;
}

/* 1..n, skewed towards 1 (a Zipf-like power law). */
static uint64_t skewed(uint64_t *s, uint64_t n)
{
    return 1 + (uint64_t)((double)n * pow(unit(s), 3.0)) % n;
}

static void prompt_of(uint64_t post, char *buf, size_t cap)
{
    uint64_t t = post % TOPICS, s = post * 2654435761u;
    snprintf(buf, cap, "t%lluw%llu t%lluw%llu t%lluw%llu take", (unsigned long long)t,
             (unsigned long long)(s % WORDS), (unsigned long long)t,
             (unsigned long long)((s >> 8) % WORDS), (unsigned long long)t,
             (unsigned long long)((s >> 16) % WORDS));
}

typedef struct world {
    uint64_t posts, users, offset, at;
    reel_event_t buf[1024];
    uint32_t n;
    char prompts[1024][64];
    char tags[1024][16];
} world_t;

static void flush(reel_index_t *idx, world_t *w)
{
    reel_index_apply(idx, w->buf, w->n);
    w->n = 0;
}

static reel_event_t *push(reel_index_t *idx, world_t *w, uint16_t type)
{
    if (w->n == 1024)
        flush(idx, w);
    reel_event_t *e = &w->buf[w->n++];
    memset(e, 0, sizeof(*e));
    e->type = type;
    e->offset = w->offset++;
    e->at = w->at;
    return e;
}

static void build(reel_index_t *idx, world_t *w)
{
    uint64_t rng = 1;
    w->at = 1780000000000ull;
    for (uint64_t u = 1; u <= w->users; u++)
        for (uint32_t k = 0; k < FOLLOWS; k++) {
            reel_event_t *e = push(idx, w, REEL_EV_FOLLOW_CREATED);
            e->user = u;
            e->target = skewed(&rng, w->users);
        }
    uint64_t step = 7ull * 24 * 3600 * 1000 / w->posts;
    for (uint64_t p = 1; p <= w->posts; p++) {
        w->at += step;
        reel_event_t *e = push(idx, w, REEL_EV_POST_CREATED);
        uint32_t slot = w->n - 1;
        prompt_of(p, w->prompts[slot], sizeof(w->prompts[slot]));
        snprintf(w->tags[slot], sizeof(w->tags[slot]), "topic%llu",
                 (unsigned long long)(p % TOPICS));
        e->post = p;
        e->user = skewed(&rng, w->users);
        e->prompt = (reel_str_t){w->prompts[slot], (uint32_t)strlen(w->prompts[slot])};
        e->ntags = 1;
        e->tags[0] = (reel_str_t){w->tags[slot], (uint32_t)strlen(w->tags[slot])};
        e->visibility = (reel_str_t){"public", 6};
    }
    for (uint64_t i = 0; i < w->users * ENGAGE; i++) {
        uint64_t u = 1 + rnd(&rng) % w->users;
        uint64_t topic = (u * 7 + (rnd(&rng) & 1) * 13) % TOPICS;
        uint64_t p = topic + TOPICS * (rnd(&rng) % (w->posts / TOPICS));
        if (p == 0)
            continue;
        w->at += 10;
        reel_event_t *e = push(idx, w, (i & 1) ? REEL_EV_LIKE_CREATED : REEL_EV_VIEW_RECORDED);
        e->user = u;
        e->post = p;
        e->completed = true;
        e->watch_ms = 5000;
    }
    flush(idx, w);
}

/* FNV-1a over the pages' items, for the digest that shows a change of the
 * ranking's code left the pages as they were. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static int bench_pages(reel_index_t *idx, const world_t *w, uint32_t n)
{
    uint64_t *ns = malloc(sizeof(uint64_t) * n), rng = 99, digest = 0xcbf29ce484222325ull;
    reel_feed_item_t items[20];
    if (ns == NULL)
        return 2;
    for (uint32_t i = 0; i < n; i++) {
        reel_feed_page_t pg = {.items = items};
        uint64_t u = 1 + rnd(&rng) % w->users, t0 = reel_bench_now_ns();
        int rc = reel_index_feed(idx, NULL, u, REEL_FEED_FOR_YOU, 20, NULL, false, &pg);
        ns[i] = reel_bench_now_ns() - t0;
        if (rc != 0 || pg.n != 20) {
            fprintf(stderr, "bench feed: page of user %llu: rc %d, %zu items\n",
                    (unsigned long long)u, rc, pg.n);
            free(ns);
            return 2;
        }
        for (size_t k = 0; k < pg.n; k++) {
            digest = fnv(digest, &items[k].post, sizeof(items[k].post));
            digest = fnv(digest, &items[k].score, sizeof(items[k].score));
        }
    }
    fprintf(stderr, "bench feed: pages digest %016llx (same world, same code of ranking: same digest)\n",
            (unsigned long long)digest);
    reel_bench_sort_u64(ns, n);
    reel_bench_emit("feed", "for_you_page20_p50_us", reel_bench_percentile(ns, n, 0.5) / 1e3, "us", -1);
    reel_bench_emit("feed", "for_you_page20_p99_us", reel_bench_percentile(ns, n, 0.99) / 1e3, "us", -1);
    free(ns);
    return 0;
}

/* The search widths tried, for both graphs, smallest first. Steps of 1.5
 * rather than 2: with doubling, a graph at recall 0.947 at ef 128 was
 * timed at ef 256 (half its speed) against one at 0.965 at ef 128, and
 * the ratio said more about the grid than about the graphs. */
static const size_t ef_steps[] = {16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024};
#define EF_STEPS (sizeof(ef_steps) / sizeof(ef_steps[0]))

/* HNSW over the posts' derived vectors; queries are topic vectors. */
static int bench_ann(uint64_t n, uint32_t dim)
{
    /* Each width is timed PASSES times over the Q queries, the median
     * reported: one pass at a wide ef is a tenth of a second, which a busy
     * machine's noise swamps. */
    enum { Q = 200, K = 10, PASSES = 5 };
    reel_vecs_t v;
    reel_ann_t *a = NULL;
    char pr[64];
    float x[REEL_IX_DIM_MAX];
    int rc = reel_vecs_init(&v, dim);
    if (rc == 0)
        rc = reel_vecs_reserve(&v, (uint32_t)n, (uint32_t)n + 1);
    if (rc == 0)
        rc = reel_ann_open(&v, 0, 0, 7, &a);
    for (uint64_t p = 1; rc == 0 && p <= n; p++) {
        prompt_of(p, pr, sizeof pr);
        reel_index_embed(pr, strlen(pr), NULL, 0, dim, x);
        reel_vecs_set(&v, (uint32_t)p, x);
        rc = reel_ann_insert(a, (uint32_t)p);
    }
    static float qv[Q][REEL_IX_DIM_MAX];
    static reel_ann_hit_t exact[Q][K];
    uint64_t rng = 5, t0 = reel_bench_now_ns();
    for (int q = 0; rc == 0 && q < Q; q++) {
        prompt_of(1 + rnd(&rng) % n, pr, sizeof pr);
        reel_index_embed(pr, strlen(pr), NULL, 0, dim, qv[q]);
        for (uint32_t i = 0; i < dim; i++) /* a user is near a topic, not on a post */
            qv[q][i] += (float)(unit(&rng) - 0.5) * 0.3f;
        reel_vecs_exact(&v, qv[q], (uint32_t)n, NULL, K, exact[q]);
    }
    double exact_qps = Q / ((reel_bench_now_ns() - t0) / 1e9), recall = 0, qps = 0;
    for (size_t e = 0; rc == 0 && e < EF_STEPS && recall < 0.95; e++) {
        size_t ef = ef_steps[e];
        size_t hit = 0;
        double pass_qps[PASSES];
        for (int pass = 0; rc == 0 && pass < PASSES; pass++) {
            hit = 0;
            t0 = reel_bench_now_ns();
            for (int q = 0; rc == 0 && q < Q; q++) {
                reel_ann_hit_t got[K];
                size_t ng = 0;
                rc = reel_ann_search(a, qv[q], K, ef, got, &ng);
                for (size_t i = 0; i < ng; i++)
                    for (size_t j = 0; j < K; j++) /* ties: count equal similarity as a hit */
                        if (got[i].id == exact[q][j].id || got[i].sim >= exact[q][K - 1].sim) {
                            hit++;
                            break;
                        }
            }
            pass_qps[pass] = Q / ((reel_bench_now_ns() - t0) / 1e9);
        }
        qps = reel_bench_median(pass_qps, PASSES);
        recall = (double)hit / (Q * K);
        fprintf(stderr, "bench feed: ann ef %zu recall@10 %.3f, %.0f q/s\n", ef, recall, qps);
    }
    double h_qps = -1;
#ifdef REEL_HAVE_HNSWLIB
    double h_recall = 0;
    if (rc == 0) {
        float *fv = malloc(sizeof(float) * dim * n);
        uint32_t *ids = malloc(sizeof(uint32_t) * n);
        void *h = NULL;
        if (fv != NULL && ids != NULL) {
            for (uint64_t p = 1; p <= n; p++) {
                reel_vecs_get(&v, (uint32_t)p, fv + (p - 1) * dim);
                ids[p - 1] = (uint32_t)p;
            }
            t0 = reel_bench_now_ns();
            h = reel_hnsw_build(fv, ids, n, dim, 12, 100, 7);
            fprintf(stderr, "bench feed: hnswlib built over %llu vectors in %.1f s\n",
                    (unsigned long long)n, (reel_bench_now_ns() - t0) / 1e9);
        }
        for (size_t e = 0; h != NULL && e < EF_STEPS && h_recall < 0.95; e++) {
            size_t ef = ef_steps[e];
            size_t hit = 0;
            double pass_qps[PASSES];
            for (int pass = 0; pass < PASSES; pass++) {
                /* Timed: the searches alone (the recall check, a
                 * quantisation and 10 similarities a query, was timed with
                 * them before; ours are timed with their check of 100
                 * compares, which is noise). */
                uint32_t got[Q][K];
                size_t ng[Q];
                t0 = reel_bench_now_ns();
                for (int q = 0; q < Q; q++)
                    ng[q] = reel_hnsw_query(h, qv[q], K, ef, got[q]);
                pass_qps[pass] = Q / ((reel_bench_now_ns() - t0) / 1e9);
                hit = 0;
                for (int q = 0; q < Q; q++) {
                    int8_t q8[REEL_IX_DIM_MAX];
                    float qs;
                    reel_vecs_query(&v, qv[q], q8, &qs);
                    for (size_t i = 0; i < ng[q]; i++) {
                        float s = reel_vecs_sim_q(&v, q8, qs, got[q][i]);
                        for (size_t j = 0; j < K; j++) /* the same rule as ours */
                            if (got[q][i] == exact[q][j].id || s >= exact[q][K - 1].sim) {
                                hit++;
                                break;
                            }
                    }
                }
            }
            h_qps = reel_bench_median(pass_qps, PASSES);
            h_recall = (double)hit / (Q * K);
            fprintf(stderr, "bench feed: hnswlib ef %zu recall@10 %.3f, %.0f q/s\n", ef, h_recall,
                    h_qps);
        }
        if (h == NULL)
            fprintf(stderr, "bench feed: hnswlib failed to build: baseline skipped\n");
        else if (h_recall < 0.95)
            h_qps = -1;
        reel_hnsw_free(h);
        free(fv);
        free(ids);
    }
#else
    fprintf(stderr, "bench feed: hnswlib baseline skipped (no /usr/include/hnswlib/hnswlib.h "
                    "at build time: apt-get install libhnswlib-dev, rebuild)\n");
#endif
    if (rc == 0) {
        reel_bench_emit("feed", "ann_qps_vs_hnswlib", recall >= 0.95 ? qps : -1, "q/s", h_qps);
        if (h_qps >= 0)
            reel_bench_emit("feed", "hnswlib_qps_at_recall95", h_qps, "q/s", -1);
    }
    if (rc == 0) {
        /* Not reached: say so under another name rather than mislabel it. */
        if (recall < 0.95)
            fprintf(stderr, "bench feed: recall 0.95 not reached by ef 1024 (duplicate "
                            "vectors: see docs/RANKING.md, ANN)\n");
        reel_bench_emit("feed", recall >= 0.95 ? "ann_qps_at_recall95" : "ann_qps_at_ef1024", qps,
                        "q/s", exact_qps);
        reel_bench_emit("feed", "ann_recall10", recall, "ratio", -1);
        reel_bench_emit("feed", "ann_graph_bytes_per_node", (double)reel_ann_bytes(a) / (double)n,
                        "bytes", -1);
    }
    reel_ann_close(a);
    reel_vecs_free(&v);
    return rc == 0 ? 0 : 2;
}

int reel_bench_feed(const reel_bench_ctx_t *ctx)
{
    world_t *w = calloc(1, sizeof(*w));
    reel_index_t *idx = NULL;
    reel_index_options_t o = {.dim = 64, .seed = 3};
    if (w == NULL || reel_index_open(&o, &idx) != 0) {
        free(w);
        return 2;
    }
    w->posts = ctx->quick ? 20000 : 1000000;
    w->users = ctx->quick ? 2000 : 100000;
    int rc = 0;
    uint64_t t0 = reel_bench_now_ns();
    build(idx, w);
    reel_bench_emit("feed", "feed_build_s", (reel_bench_now_ns() - t0) / 1e9, "s", -1);
    reel_index_stats_t st;
    reel_index_stats(idx, &st);
    fprintf(stderr, "bench feed: %llu posts, %llu users, %llu ann nodes, %llu dropped\n",
            (unsigned long long)st.posts, (unsigned long long)st.users,
            (unsigned long long)st.ann_nodes, (unsigned long long)st.dropped);
    reel_bench_emit("feed", "bytes_per_post", (double)st.bytes_posts / (double)st.posts, "bytes", -1);
    reel_bench_emit("feed", "bytes_per_post_total", (double)st.bytes_total / (double)st.posts,
                    "bytes", -1);
    if (reel_bench_want(ctx, "pages"))
        rc = bench_pages(idx, w, ctx->quick ? 200 : 2000);
    reel_index_close(idx);
    if (rc == 0 && reel_bench_want(ctx, "ann"))
        rc = bench_ann(w->posts > 200000 ? 200000 : w->posts, 64);
    free(w);
    return rc;
}
