/*
 * ann.c: the int8 vector store and the HNSW graph (ann.h).
 */
#include "index/ann.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/common.h"

/* ---- vectors ---- */

/* The int8 dot product. Integer sums are exact in any order, so the SIMD
 * version answers the very same value as the scalar one: similarities,
 * and so rankings and graphs, do not depend on the CPU. */
static int32_t dot8(const int8_t *a, const int8_t *b, uint32_t n)
{
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    uint32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++)
        s0 += a[i] * b[i];
    return s0 + s1 + s2 + s3;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* AVX2: 16 bytes at a time sign-extended to int16, multiplied and added in
 * pairs to int32 (vpmaddwd: |q| <= 127, so a pair is at most 32,258). The
 * scalar loop took 47% of a page's time (perf, `reel bench feed`); this is
 * 4 iterations at dim 64. */
__attribute__((target("avx2"))) static int32_t dot8_avx2(const int8_t *a, const int8_t *b,
                                                         uint32_t n)
{
    __m256i acc = _mm256_setzero_si256();
    uint32_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i x = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(a + i)));
        __m256i y = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(b + i)));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(x, y));
    }
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    int32_t r = _mm_cvtsi128_si32(s);
    for (; i < n; i++)
        r += a[i] * b[i];
    return r;
}

static int32_t (*dot8_best(void))(const int8_t *, const int8_t *, uint32_t)
{
    return __builtin_cpu_supports("avx2") ? dot8_avx2 : dot8;
}
#else
static int32_t (*dot8_best(void))(const int8_t *, const int8_t *, uint32_t)
{
    return dot8;
}
#endif

int reel_vecs_init(reel_vecs_t *v, uint32_t dim)
{
    if (v == NULL || dim == 0 || dim > REEL_IX_DIM_MAX)
        return REEL_EUSAGE;
    memset(v, 0, sizeof(*v));
    v->dim = dim;
    v->dot = dot8_best();
    REEL_ASSERT(v->dot != NULL);
    return 0;
}

void reel_vecs_free(reel_vecs_t *v)
{
    if (v == NULL)
        return;
    free(v->q);
    free(v->scale);
    memset(v, 0, sizeof(*v));
}

int reel_vecs_reserve(reel_vecs_t *v, uint32_t id, uint32_t max_ids)
{
    if (id >= max_ids)
        return REEL_EUSAGE;
    if (id < v->cap)
        return 0;
    uint64_t cap = v->cap ? v->cap : 1024;
    while (cap <= id)
        cap *= 2;
    if (cap > max_ids)
        cap = max_ids;
    /* Rows aligned to 64 bytes (realloc gives 16): a search touches one
     * cache line per vector at dim 64, not two. */
    size_t bytes = ((size_t)cap * v->dim + 63) & ~(size_t)63;
    int8_t *q = aligned_alloc(64, bytes);
    if (q == NULL)
        return -ENOMEM;
    if (v->cap > 0)
        memcpy(q, v->q, (size_t)v->cap * v->dim);
    free(v->q);
    v->q = q;
    float *s = realloc(v->scale, (size_t)cap * sizeof(float));
    if (s == NULL)
        return -ENOMEM;
    v->scale = s;
    memset(v->q + (size_t)v->cap * v->dim, 0, bytes - (size_t)v->cap * v->dim);
    memset(v->scale + v->cap, 0, (size_t)(cap - v->cap) * sizeof(float));
    v->cap = (uint32_t)cap;
    return 0;
}

float reel_vec_normalize(float *x, uint32_t n)
{
    double ss = 0;
    for (uint32_t i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    float norm = (float)sqrt(ss);
    if (norm > 0 && isfinite(norm))
        for (uint32_t i = 0; i < n; i++)
            x[i] /= norm;
    else
        memset(x, 0, sizeof(float) * n);
    return norm;
}

/* Quantises unit vector x into q8 with *scale (0 for a zero vector). */
static void quantize(const float *x, uint32_t dim, int8_t *q8, float *scale)
{
    float mx = 0;
    for (uint32_t i = 0; i < dim; i++)
        mx = fabsf(x[i]) > mx ? fabsf(x[i]) : mx;
    if (!(mx > 0)) {
        memset(q8, 0, dim);
        *scale = 0;
        return;
    }
    float s = mx / 127.0f;
    for (uint32_t i = 0; i < dim; i++) {
        long r = lrintf(x[i] / s);
        q8[i] = (int8_t)(r > 127 ? 127 : r < -127 ? -127 : r);
    }
    *scale = s;
}

void reel_vecs_query(const reel_vecs_t *v, const float *x, int8_t *q8, float *qscale)
{
    float tmp[REEL_IX_DIM_MAX];
    REEL_ASSERT(v->dim <= REEL_IX_DIM_MAX);
    memcpy(tmp, x, sizeof(float) * v->dim);
    reel_vec_normalize(tmp, v->dim);
    quantize(tmp, v->dim, q8, qscale);
}

void reel_vecs_set(reel_vecs_t *v, uint32_t id, const float *x)
{
    REEL_ASSERT(id < v->cap);
    reel_vecs_query(v, x, v->q + (size_t)id * v->dim, &v->scale[id]);
}

void reel_vecs_get(const reel_vecs_t *v, uint32_t id, float *out)
{
    REEL_ASSERT(id < v->cap);
    const int8_t *q = v->q + (size_t)id * v->dim;
    for (uint32_t i = 0; i < v->dim; i++)
        out[i] = q[i] * v->scale[id];
}

float reel_vecs_sim_q(const reel_vecs_t *v, const int8_t *q8, float qscale, uint32_t id)
{
    REEL_ASSERT(id < v->cap);
    return (float)v->dot(q8, v->q + (size_t)id * v->dim, v->dim) * qscale * v->scale[id];
}

float reel_vecs_sim(const reel_vecs_t *v, uint32_t a, uint32_t b)
{
    REEL_ASSERT(a < v->cap);
    return reel_vecs_sim_q(v, v->q + (size_t)a * v->dim, v->scale[a], b);
}

size_t reel_vecs_exact(const reel_vecs_t *v, const float *x, uint32_t last,
                       bool (*skip)(uint32_t id), size_t k, reel_ann_hit_t *out)
{
    int8_t q8[REEL_IX_DIM_MAX];
    float qs;
    size_t n = 0;
    REEL_ASSERT(k >= 1 && k <= REEL_IX_ANN_K_MAX && last < v->cap);
    reel_vecs_query(v, x, q8, &qs);
    for (uint32_t id = 1; id <= last; id++) {
        if (skip != NULL && skip(id))
            continue;
        float s = reel_vecs_sim_q(v, q8, qs, id);
        if (n == k && s <= out[k - 1].sim)
            continue;
        size_t j = n < k ? n++ : k - 1; /* insertion into the sorted top k */
        for (; j > 0 && out[j - 1].sim < s; j--)
            out[j] = out[j - 1];
        out[j] = (reel_ann_hit_t){id, s};
    }
    return n;
}

/* ---- HNSW ---- */

#define NONE UINT32_MAX

struct reel_ann {
    const reel_vecs_t *vecs;
    uint32_t m;          /* links per upper layer */
    uint32_t m0;         /* links at layer 0 (2m) */
    uint32_t efc;        /* efConstruction */
    double ml;           /* 1 / ln(m) */
    uint64_t rng;        /* splitmix64 state */
    uint32_t n, cap;     /* nodes, room */
    uint32_t nodes_max;  /* the bound on n (reel_ann_limit) */
    uint32_t *ids;       /* node -> id */
    uint8_t *levels;     /* node -> top layer */
    uint8_t *dead;       /* node -> removed */
    uint32_t *links0;    /* node * (1 + m0): count, then links */
    uint32_t **upper;    /* node -> layers 1..level, each (1 + m) */
    uint32_t *node_of;   /* id -> node, NONE */
    uint32_t node_of_cap;
    uint32_t entry;      /* entry node, NONE when empty */
    uint32_t top;        /* entry's level */
    uint32_t live;       /* nodes not removed */
};

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

int reel_ann_open(const reel_vecs_t *vecs, uint32_t m, uint32_t ef_construction, uint64_t seed,
                  reel_ann_t **out)
{
    if (vecs == NULL || out == NULL || m == 1 || m > 64)
        return REEL_EUSAGE;
    reel_ann_t *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return -ENOMEM;
    a->vecs = vecs;
    a->m = m ? m : REEL_IX_ANN_M;
    a->m0 = 2 * a->m;
    a->efc = ef_construction ? ef_construction : REEL_IX_ANN_EF_CONSTRUCTION;
    if (a->efc > REEL_IX_ANN_EF_MAX)
        a->efc = REEL_IX_ANN_EF_MAX;
    a->ml = 1.0 / log((double)a->m);
    a->rng = seed ? seed : 0x5eed;
    a->entry = NONE;
    a->nodes_max = REEL_IX_ANN_NODES_MAX;
    *out = a;
    return 0;
}

void reel_ann_limit(reel_ann_t *a, uint32_t nodes_max)
{
    REEL_ASSERT(nodes_max >= 1 && nodes_max <= REEL_IX_ANN_NODES_MAX && nodes_max >= a->n);
    a->nodes_max = nodes_max;
}

void reel_ann_close(reel_ann_t *a)
{
    if (a == NULL)
        return;
    for (uint32_t i = 0; i < a->n; i++)
        free(a->upper[i]);
    free(a->ids);
    free(a->levels);
    free(a->dead);
    free(a->links0);
    free(a->upper);
    free(a->node_of);
    free(a);
}

uint32_t reel_ann_nodes(const reel_ann_t *a)
{
    return a->n;
}

uint64_t reel_ann_bytes(const reel_ann_t *a)
{
    uint64_t b = sizeof(*a) + (uint64_t)a->cap * (4 + 1 + 1 + 4 * (1 + a->m0) + sizeof(void *));
    b += (uint64_t)a->node_of_cap * 4;
    for (uint32_t i = 0; i < a->n; i++)
        b += (uint64_t)a->levels[i] * 4 * (1 + a->m);
    return b;
}

static uint32_t *links_at(const reel_ann_t *a, uint32_t node, uint32_t level)
{
    if (level == 0)
        return a->links0 + (size_t)node * (1 + a->m0);
    REEL_ASSERT(level <= a->levels[node]);
    return a->upper[node] + (size_t)(level - 1) * (1 + a->m);
}

static float sim_nodes(const reel_ann_t *a, uint32_t x, uint32_t y)
{
    return reel_vecs_sim(a->vecs, a->ids[x], a->ids[y]);
}

/* A query during a search: the quantised vector. */
typedef struct query {
    const int8_t *q8;
    float qs;
} query_t;

static float sim_q(const reel_ann_t *a, const query_t *q, uint32_t node)
{
    return reel_vecs_sim_q(a->vecs, q->q8, q->qs, a->ids[node]);
}

/* Binary heaps of (sim, node): max-heap (best first) when max, else min. */
typedef struct heap {
    reel_ann_hit_t *h;
    uint32_t n, cap;
    bool max;
} heap_t;

static bool above(const heap_t *hp, uint32_t i, uint32_t j)
{
    return hp->max ? hp->h[i].sim > hp->h[j].sim : hp->h[i].sim < hp->h[j].sim;
}

static void heap_swap(heap_t *hp, uint32_t i, uint32_t j)
{
    reel_ann_hit_t t = hp->h[i];
    hp->h[i] = hp->h[j];
    hp->h[j] = t;
}

static void heap_push(heap_t *hp, uint32_t node, float sim)
{
    REEL_ASSERT(hp->n < hp->cap);
    uint32_t i = hp->n++;
    hp->h[i] = (reel_ann_hit_t){node, sim};
    while (i > 0 && above(hp, i, (i - 1) / 2)) {
        heap_swap(hp, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static reel_ann_hit_t heap_pop(heap_t *hp)
{
    REEL_ASSERT(hp->n > 0);
    reel_ann_hit_t top = hp->h[0];
    hp->h[0] = hp->h[--hp->n];
    uint32_t i = 0;
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, b = i;
        if (l < hp->n && above(hp, l, b))
            b = l;
        if (r < hp->n && above(hp, r, b))
            b = r;
        if (b == i)
            break;
        heap_swap(hp, i, b);
        i = b;
    }
    return top;
}

/* Scratch of one search: heaps and the visited bit set. */
typedef struct search {
    heap_t cand;     /* max-heap: the frontier */
    heap_t res;      /* min-heap: the ef best */
    uint64_t *seen;  /* bit per node */
    uint32_t ef;
} search_t;

static int search_init(search_t *s, const reel_ann_t *a, uint32_t ef)
{
    memset(s, 0, sizeof(*s));
    s->ef = ef;
    /* The frontier holds at most every node pushed once: bounded by the
     * links of the nodes popped; ef * (1 + m0) covers a search of width ef. */
    uint32_t ccap = ef * (1 + a->m0) + 1;
    s->cand = (heap_t){malloc(sizeof(reel_ann_hit_t) * ccap), 0, ccap, true};
    s->res = (heap_t){malloc(sizeof(reel_ann_hit_t) * (ef + 1)), 0, ef + 1, false};
    s->seen = calloc((a->n + 63) / 64 + 1, 8);
    if (s->cand.h == NULL || s->res.h == NULL || s->seen == NULL)
        return -ENOMEM;
    return 0;
}

static void search_free(search_t *s)
{
    free(s->cand.h);
    free(s->res.h);
    free(s->seen);
}

static bool visit(search_t *s, uint32_t node)
{
    uint64_t bit = 1ull << (node & 63);
    if (s->seen[node >> 6] & bit)
        return false;
    s->seen[node >> 6] |= bit;
    return true;
}

static void search_reset(search_t *s, const reel_ann_t *a)
{
    s->cand.n = 0;
    s->res.n = 0;
    memset(s->seen, 0, ((a->n + 63) / 64 + 1) * 8);
}

/* Layer search from entry ep (Algorithm 2): afterwards s->res holds the ef
 * best nodes (live ones only when live_only; the routing uses all). */
static void search_layer(const reel_ann_t *a, search_t *s, const query_t *q, uint32_t ep,
                         uint32_t level, bool live_only)
{
    float d = sim_q(a, q, ep);
    visit(s, ep);
    heap_push(&s->cand, ep, d);
    if (!live_only || !a->dead[ep])
        heap_push(&s->res, ep, d);
    while (s->cand.n > 0) {
        reel_ann_hit_t c = heap_pop(&s->cand);
        if (s->res.n >= s->ef && c.sim < s->res.h[0].sim)
            break;
        /* The unvisited neighbours first, their rows prefetched, then the
         * similarities: the misses (id map, vector, scale) of a list
         * overlap instead of coming one after the other (at 1M nodes the
         * graph and vectors are far beyond the caches). */
        const uint32_t *l = links_at(a, c.id, level);
        uint32_t fresh[1 + 2 * 64], nf = 0;
        REEL_ASSERT(l[0] <= a->m0);
        for (uint32_t i = 1; i <= l[0]; i++)
            if (visit(s, l[i])) {
                fresh[nf++] = l[i];
                __builtin_prefetch(&a->ids[l[i]]);
            }
        for (uint32_t i = 0; i < nf; i++) {
            uint32_t id = a->ids[fresh[i]];
            __builtin_prefetch(a->vecs->q + (size_t)id * a->vecs->dim);
            __builtin_prefetch(&a->vecs->scale[id]);
        }
        for (uint32_t i = 0; i < nf; i++) {
            uint32_t nb = fresh[i];
            float ds = sim_q(a, q, nb);
            if (s->res.n < s->ef || ds > s->res.h[0].sim) {
                if (s->cand.n < s->cand.cap)
                    heap_push(&s->cand, nb, ds);
                if (!live_only || !a->dead[nb]) {
                    heap_push(&s->res, nb, ds);
                    if (s->res.n > s->ef)
                        heap_pop(&s->res);
                }
            }
        }
    }
}

/* Greedy descent (ef 1) from ep at level; returns the closest node. */
static uint32_t greedy(const reel_ann_t *a, const query_t *q, uint32_t ep, uint32_t level)
{
    float best = sim_q(a, q, ep);
    for (bool moved = true; moved;) {
        moved = false;
        const uint32_t *l = links_at(a, ep, level);
        for (uint32_t i = 1; i <= l[0]; i++) {
            float d = sim_q(a, q, l[i]);
            if (d > best) {
                best = d;
                ep = l[i];
                moved = true;
            }
        }
    }
    return ep;
}

static int cmp_hit_desc(const void *x, const void *y)
{
    const reel_ann_hit_t *p = x, *q = y;
    if (p->sim != q->sim)
        return p->sim > q->sim ? -1 : 1;
    return p->id < q->id ? -1 : p->id > q->id;
}

/* Whether nodes x and y have the very same stored vector. */
static bool same_vec(const reel_ann_t *a, uint32_t x, uint32_t y)
{
    uint32_t ix = a->ids[x], iy = a->ids[y], dim = a->vecs->dim;
    return a->vecs->scale[ix] == a->vecs->scale[iy] &&
           memcmp(a->vecs->q + (size_t)ix * dim, a->vecs->q + (size_t)iy * dim, dim) == 0;
}

/* A similarity to the base this high is a copy of it (quantised unit
 * vectors: identical ones give 1 within rounding). */
#define SAME_SIM 0.9995f

/* Candidates select_neighbors takes at most: a search's ef (connect) or a
 * full list and one more (add_link). */
#define SELECT_MAX (REEL_IX_ANN_EF_MAX + 2 * 64 + 2)

/* The neighbour heuristic (Algorithm 4, keepPrunedConnections): from
 * c[0..n) (sorted best first by similarity to base), keep a candidate
 * when it is at least as similar to the base as to every one kept, at most
 * mmax; then fill the list up to mmax with the pruned ones, best first.
 *
 * A tie keeps (as hnswlib: prune only when strictly closer to a kept
 * one). In int8 with feature-hashed vectors ties are common: vectors of
 * as many words have the same scale, and dots are integers. Pruning on a
 * tie, as this did, cut long links: recall@10 at ef 128 on the 200,000
 * posts of `reel bench feed` 0.947 -> 0.969 (hnswlib 0.965), ef 64 0.917
 * -> 0.925. The test compares sim_wo_x on both sides, exact for a tie.
 *
 * Twins of the base (similarity SAME_SIM or more: copies, posts with the
 * same prompt) are kept, at most half the list, and prune nothing: a twin
 * is the base as far as geometry goes, so every other candidate is about
 * as similar to it as to the base, and the test above, a tie, pruned all
 * of them: a node among copies kept one copy and, through the fill, its
 * nearest posts only, never a long link (recall@10 0.84 at ef 128 on the
 * 200,000 posts of `reel bench feed`, where hnswlib, which keeps ties,
 * reached 0.965). The half keeps room for the diverse links among many
 * copies.
 *
 * The fill is what makes identical vectors work: a copy of a kept
 * neighbour is always pruned by the heuristic (its similarity to the kept
 * one is 1), so without it a node among many copies keeps a list of one
 * or two links and the copies fall apart into chains the search cannot
 * walk (recall@10 0.62 on 20 copies of each vector, ann_recall_duplicates).
 * Returns how many, moved to the front of c (heuristic ones first). */
/* x's similarity to y without x's scale (common to both sides of the
 * heuristic's test, so it cancels): the integer dot times y's scale, so
 * that equal dots and scales compare equal, exactly. reel_vecs_sim's
 * (dot * s_x) * s_y against (dot * s_b) * s_x rounds differently and made
 * a tie a coin toss. */
static float sim_wo_x(const reel_ann_t *a, uint32_t x, uint32_t y)
{
    const reel_vecs_t *v = a->vecs;
    const int8_t *qx = v->q + (size_t)a->ids[x] * v->dim, *qy = v->q + (size_t)a->ids[y] * v->dim;
    return (float)v->dot(qx, qy, v->dim) * v->scale[a->ids[y]];
}

static uint32_t select_neighbors(const reel_ann_t *a, uint32_t base, reel_ann_hit_t *c, uint32_t n,
                                 uint32_t mmax)
{
    REEL_ASSERT(n <= SELECT_MAX);
    REEL_ASSERT(mmax >= 2);
    static _Thread_local reel_ann_hit_t pruned[SELECT_MAX];
    uint32_t kept = 0, np = 0, twins = 0;
    for (uint32_t i = 0; i < n; i++) {
        bool twin = c[i].sim >= SAME_SIM;
        bool good = kept < mmax && (!twin || twins < mmax / 2);
        float to_base = good && !twin && kept > 0 ? sim_wo_x(a, c[i].id, base) : 0;
        for (uint32_t j = 0; j < kept && good && !twin; j++)
            good = c[j].sim >= SAME_SIM || sim_wo_x(a, c[i].id, c[j].id) <= to_base;
        if (good) {
            twins += twin;
            c[kept++] = c[i];
        } else if (np < mmax) {
            pruned[np++] = c[i];
        }
        if (kept == mmax)
            break;
    }
    /* Fill: first the pruned that are not a copy of a neighbour already
     * kept (copies of the base itself are welcome: they link the copies
     * together), then any. */
    uint32_t first = kept;
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t i = 0; i < np && kept < mmax; i++) {
            if (pruned[i].id == NONE)
                continue;
            bool copy = false;
            for (uint32_t j = 0; pass == 0 && j < first && !copy; j++)
                copy = same_vec(a, pruned[i].id, c[j].id) && !(pruned[i].sim >= SAME_SIM);
            if (copy)
                continue;
            c[kept++] = pruned[i];
            pruned[i].id = NONE;
        }
    return kept;
}

static int grow(reel_ann_t *a)
{
    if (a->n < a->cap)
        return 0;
    if (a->cap >= a->nodes_max)
        return -ENOSPC;
    uint32_t cap = a->cap ? a->cap * 2 : 1024;
    if (cap > a->nodes_max)
        cap = a->nodes_max;
    uint32_t *ids = realloc(a->ids, sizeof(uint32_t) * cap);
    if (ids == NULL)
        return -ENOMEM;
    a->ids = ids;
    uint8_t *lv = realloc(a->levels, cap);
    if (lv == NULL)
        return -ENOMEM;
    a->levels = lv;
    uint8_t *dd = realloc(a->dead, cap);
    if (dd == NULL)
        return -ENOMEM;
    a->dead = dd;
    uint32_t *l0 = realloc(a->links0, sizeof(uint32_t) * (1 + a->m0) * (size_t)cap);
    if (l0 == NULL)
        return -ENOMEM;
    a->links0 = l0;
    uint32_t **up = realloc(a->upper, sizeof(uint32_t *) * cap);
    if (up == NULL)
        return -ENOMEM;
    a->upper = up;
    a->cap = cap;
    return 0;
}

static int map_id(reel_ann_t *a, uint32_t id)
{
    if (id < a->node_of_cap)
        return 0;
    uint64_t cap = a->node_of_cap ? a->node_of_cap : 1024;
    while (cap <= id)
        cap *= 2;
    uint32_t *m = realloc(a->node_of, sizeof(uint32_t) * cap);
    if (m == NULL)
        return -ENOMEM;
    for (uint64_t i = a->node_of_cap; i < cap; i++)
        m[i] = NONE;
    a->node_of = m;
    a->node_of_cap = (uint32_t)cap;
    return 0;
}

/* Adds the link node -> nb at level, pruning nb's... (the caller passes
 * the side to change): when full, the heuristic picks among old + new. */
static void add_link(reel_ann_t *a, uint32_t from, uint32_t to, uint32_t level,
                     reel_ann_hit_t *scratch)
{
    uint32_t mmax = level == 0 ? a->m0 : a->m;
    uint32_t *l = links_at(a, from, level);
    for (uint32_t i = 1; i <= l[0]; i++)
        if (l[i] == to)
            return;
    if (l[0] < mmax) {
        l[++l[0]] = to;
        return;
    }
    uint32_t n = 0;
    for (uint32_t i = 1; i <= l[0]; i++)
        scratch[n++] = (reel_ann_hit_t){l[i], sim_nodes(a, from, l[i])};
    scratch[n++] = (reel_ann_hit_t){to, sim_nodes(a, from, to)};
    qsort(scratch, n, sizeof(*scratch), cmp_hit_desc);
    uint32_t k = select_neighbors(a, from, scratch, n, mmax);
    l[0] = k;
    for (uint32_t i = 0; i < k; i++)
        l[1 + i] = scratch[i].id;
}

/* Links node (level lv) into layers min(lv, top)..0 from entry ep. */
static int connect(reel_ann_t *a, uint32_t node, uint32_t lv, uint32_t ep, const query_t *q)
{
    search_t s;
    reel_ann_hit_t *w = malloc(sizeof(*w) * (a->efc + a->m0 + 2));
    int rc = w == NULL ? -ENOMEM : search_init(&s, a, a->efc);
    if (rc != 0) {
        free(w);
        return rc;
    }
    for (int32_t lc = (int32_t)(lv < a->top ? lv : a->top); lc >= 0; lc--) {
        search_reset(&s, a);
        search_layer(a, &s, q, ep, (uint32_t)lc, false);
        uint32_t n = 0;
        while (s.res.n > 0)
            w[n++] = heap_pop(&s.res);
        qsort(w, n, sizeof(*w), cmp_hit_desc);
        ep = w[0].id;
        uint32_t mmax = lc == 0 ? a->m0 : a->m;
        uint32_t k = select_neighbors(a, node, w, n, a->m < mmax ? a->m : mmax);
        uint32_t *l = links_at(a, node, (uint32_t)lc);
        l[0] = k;
        for (uint32_t i = 0; i < k; i++)
            l[1 + i] = w[i].id;
        for (uint32_t i = 0; i < k; i++)
            add_link(a, l[1 + i], node, (uint32_t)lc, w + k);
    }
    search_free(&s);
    free(w);
    return 0;
}

int reel_ann_insert(reel_ann_t *a, uint32_t id)
{
    REEL_ASSERT(id < a->vecs->cap);
    int rc = map_id(a, id);
    if (rc != 0)
        return rc;
    uint32_t node = a->node_of[id];
    if (node != NONE) {
        if (a->dead[node]) {
            a->dead[node] = 0;
            a->live++;
        }
        return 0;
    }
    if ((rc = grow(a)) != 0)
        return rc;
    double u = ((double)(splitmix(&a->rng) >> 11) + 1.0) / 9007199254740993.0;
    uint32_t lv = (uint32_t)(-log(u) * a->ml);
    if (lv >= REEL_IX_ANN_LEVELS_MAX)
        lv = REEL_IX_ANN_LEVELS_MAX - 1;
    node = a->n;
    a->upper[node] = NULL;
    if (lv > 0) {
        a->upper[node] = calloc((size_t)lv * (1 + a->m), sizeof(uint32_t));
        if (a->upper[node] == NULL)
            return -ENOMEM;
    }
    a->ids[node] = id;
    a->levels[node] = (uint8_t)lv;
    a->dead[node] = 0;
    a->links0[(size_t)node * (1 + a->m0)] = 0;
    a->n++;
    a->live++;
    a->node_of[id] = node;
    if (a->entry == NONE) {
        a->entry = node;
        a->top = lv;
        return 0;
    }
    query_t q = {a->vecs->q + (size_t)id * a->vecs->dim, a->vecs->scale[id]};
    uint32_t ep = a->entry;
    for (uint32_t lc = a->top; lc > lv; lc--)
        ep = greedy(a, &q, ep, lc);
    if ((rc = connect(a, node, lv, ep, &q)) != 0)
        return rc;
    if (lv > a->top) {
        a->top = lv;
        a->entry = node;
    }
    return 0;
}

void reel_ann_remove(reel_ann_t *a, uint32_t id)
{
    if (id >= a->node_of_cap || a->node_of[id] == NONE)
        return;
    uint32_t node = a->node_of[id];
    if (!a->dead[node]) {
        a->dead[node] = 1;
        REEL_ASSERT(a->live > 0);
        a->live--;
    }
}

bool reel_ann_contains(const reel_ann_t *a, uint32_t id)
{
    return id < a->node_of_cap && a->node_of[id] != NONE && !a->dead[a->node_of[id]];
}

int reel_ann_search(const reel_ann_t *a, const float *x, size_t k, size_t ef,
                    reel_ann_hit_t *out, size_t *n_out)
{
    if (a == NULL || x == NULL || out == NULL || n_out == NULL || k == 0 ||
        k > REEL_IX_ANN_K_MAX)
        return REEL_EUSAGE;
    *n_out = 0;
    if (a->entry == NONE || a->live == 0)
        return 0;
    if (ef < k)
        ef = k;
    if (ef > REEL_IX_ANN_EF_MAX)
        ef = REEL_IX_ANN_EF_MAX;
    int8_t q8[REEL_IX_DIM_MAX];
    query_t q = {q8, 0};
    reel_vecs_query(a->vecs, x, q8, &q.qs);
    uint32_t ep = a->entry;
    for (uint32_t lc = a->top; lc > 0; lc--)
        ep = greedy(a, &q, ep, lc);
    search_t s;
    int rc = search_init(&s, a, (uint32_t)ef);
    if (rc != 0) {
        search_free(&s);
        return rc;
    }
    search_layer(a, &s, &q, ep, 0, true);
    size_t n = s.res.n;
    while (s.res.n > k)
        heap_pop(&s.res);
    n = s.res.n;
    for (size_t i = n; i > 0; i--) {
        reel_ann_hit_t h = heap_pop(&s.res);
        out[i - 1] = (reel_ann_hit_t){a->ids[h.id], h.sim};
    }
    *n_out = n;
    search_free(&s);
    return 0;
}
