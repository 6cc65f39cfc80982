/*
 * index.c: the index's state, apply (the engine's on_apply), load and
 * stats (index.h). Ranking is in rank.c.
 */
#include "index/index_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "engine/common.h"

/* Profile weights of each signal (docs/RANKING.md, "Profiles"). */
#define W_CREATE 1.0f
#define W_LIKE 1.0f
#define W_COMPLETE 0.7f
#define W_REMIX 1.0f
#define W_SEE_MORE 0.5f
#define W_SEE_LESS -0.5f
#define W_NOT_INTERESTED -1.0f
/* Heat added to a post by each engagement. */
#define H_LIKE 1.0f
#define H_COMPLETE 0.7f
#define H_REMIX 2.0f
#define H_COMMENT 0.5f

#define LN2 0.69314718055994530942

/* ---- ANN generations ----
 *
 * The graph is over recent posts, and an HNSW graph cannot forget a node
 * (removal only marks it). So the index keeps two graphs: posts go into
 * the newer; when it is full (ann_gen_nodes nodes), the older is dropped,
 * the newer becomes the older, and a new empty one takes the posts. A
 * search asks both and merges. Both together hold the newest ann_gen_nodes
 * to 2 * ann_gen_nodes posts that were visible when they joined; a post
 * older than that is found by the feed's other sources, never by the ANN. */

static int ann_generation_open(reel_index_t *idx, reel_ann_t **out)
{
    int rc = reel_ann_open(&idx->vecs, REEL_IX_ANN_M, REEL_IX_ANN_EF_CONSTRUCTION,
                           idx->seed + idx->ann_gens, out);
    if (rc == 0) {
        reel_ann_limit(*out, idx->ann_gen_nodes);
        idx->ann_gens++;
    }
    return rc;
}

static int ann_add(reel_index_t *idx, uint32_t p)
{
    int rc = reel_ann_insert(idx->ann, p);
    if (rc != -ENOSPC)
        return rc;
    reel_ann_t *fresh;
    if ((rc = ann_generation_open(idx, &fresh)) != 0)
        return rc;
    reel_ann_close(idx->ann_old);
    idx->ann_old = idx->ann;
    idx->ann = fresh;
    return reel_ann_insert(fresh, p);
}

static void ann_remove(reel_index_t *idx, uint32_t p)
{
    reel_ann_remove(idx->ann, p);
    if (idx->ann_old != NULL)
        reel_ann_remove(idx->ann_old, p);
}

int reel__ix_ann_search(const reel_index_t *idx, const float *x, size_t k, size_t ef,
                        reel_ann_hit_t *out, size_t *n_out)
{
    reel_ann_hit_t a[REEL_IX_ANN_K_MAX], b[REEL_IX_ANN_K_MAX];
    size_t na = 0, nb = 0;
    if (idx->ann_old == NULL)
        return reel_ann_search(idx->ann, x, k, ef, out, n_out);
    int rc = reel_ann_search(idx->ann, x, k, ef, a, &na);
    if (rc == 0)
        rc = reel_ann_search(idx->ann_old, x, k, ef, b, &nb);
    if (rc != 0)
        return rc;
    /* A post is live in one graph at most (it joins the newer only when
     * it is not visible, and so not live, in either), so no duplicates. */
    size_t i = 0, j = 0, n = 0;
    while (n < k && (i < na || j < nb))
        out[n++] = j >= nb || (i < na && a[i].sim >= b[j].sim) ? a[i++] : b[j++];
    *n_out = n;
    return 0;
}

/* ---- open, close ---- */

int reel_index_open(const reel_index_options_t *opts, reel_index_t **out)
{
    if (out == NULL)
        return REEL_EUSAGE;
    uint32_t dim = opts && opts->dim ? opts->dim : REEL_IX_DIM_DEFAULT;
    if (dim > REEL_IX_DIM_MAX)
        return REEL_EUSAGE;
    reel_index_t *idx = calloc(1, sizeof(*idx));
    if (idx == NULL)
        return -ENOMEM;
    idx->dim = dim;
    idx->seed = opts && opts->seed ? opts->seed : 0x7265656c;
    idx->next_session = 1;
    idx->ann_gen_nodes = opts && opts->ann_generation_nodes ? opts->ann_generation_nodes
                                                             : REEL_IX_ANN_GEN_NODES;
    if (idx->ann_gen_nodes > REEL_IX_ANN_NODES_MAX) {
        free(idx);
        return REEL_EUSAGE;
    }
    int rc = reel_vecs_init(&idx->vecs, dim);
    if (rc == 0)
        rc = ann_generation_open(idx, &idx->ann);
    idx->sessions = calloc(REEL_IX_SESSIONS_MAX, sizeof(ix_session_t));
    if (rc == 0 && idx->sessions == NULL)
        rc = -ENOMEM;
    if (rc != 0) {
        reel_ann_close(idx->ann);
        reel_vecs_free(&idx->vecs);
        free(idx->sessions);
        free(idx);
        return rc;
    }
    pthread_rwlock_init(&idx->lock, NULL);
    pthread_mutex_init(&idx->sess_mu, NULL);
    *out = idx;
    return 0;
}

static void user_free(ix_user_t *u)
{
    if (u == NULL)
        return;
    free(u->interest);
    free(u->posts);
    roaring_bitmap_t *bms[] = {u->following, u->blocks, u->blocked_by, u->hidden, u->excluded};
    for (size_t i = 0; i < sizeof(bms) / sizeof(bms[0]); i++)
        if (bms[i] != NULL)
            roaring_bitmap_free(bms[i]);
    free(u);
}

void reel_index_close(reel_index_t *idx)
{
    if (idx == NULL)
        return;
    for (uint32_t i = 0; i < idx->users_cap; i++)
        user_free(idx->users[i]);
    free(idx->users);
    if (idx->users_deleted != NULL)
        roaring_bitmap_free(idx->users_deleted);
    for (uint32_t i = 0; i < idx->ntags; i++) {
        free(idx->tags[i].name);
        for (uint32_t b = 0; b < REEL_IX_TAG_BUCKETS; b++)
            if (idx->tags[i].bm[b] != NULL)
                roaring_bitmap_free(idx->tags[i].bm[b]);
    }
    free(idx->tags);
    free(idx->tag_hash);
    free(idx->tag_pool);
    for (uint32_t i = 0; i < REEL_IX_SESSIONS_MAX; i++)
        if (idx->sessions[i].served != NULL)
            roaring_bitmap_free(idx->sessions[i].served);
    free(idx->sessions);
    reel_ann_close(idx->ann);
    reel_ann_close(idx->ann_old);
    reel_vecs_free(&idx->vecs);
    free(idx->posts);
    free(idx->win_ring);
    pthread_rwlock_destroy(&idx->lock);
    pthread_mutex_destroy(&idx->sess_mu);
    free(idx);
}

/* ---- tables ---- */

static ix_user_t *user_get(reel_index_t *idx, uint64_t id)
{
    if (id == 0 || id >= REEL_IX_USERS_MAX) {
        idx->dropped++;
        return NULL;
    }
    if (id >= idx->users_cap) {
        uint64_t cap = idx->users_cap ? idx->users_cap : 1024;
        while (cap <= id)
            cap *= 2;
        ix_user_t **u = realloc(idx->users, sizeof(*u) * cap);
        if (u == NULL) {
            idx->dropped++;
            return NULL;
        }
        memset(u + idx->users_cap, 0, sizeof(*u) * (cap - idx->users_cap));
        idx->users = u;
        idx->users_cap = (uint32_t)cap;
    }
    if (idx->users[id] == NULL) {
        idx->users[id] = calloc(1, sizeof(ix_user_t));
        if (idx->users[id] == NULL) {
            idx->dropped++;
            return NULL;
        }
        idx->nusers++;
    }
    return idx->users[id];
}

/* *bm, created when missing; NULL without memory. */
static roaring_bitmap_t *bm_get(roaring_bitmap_t **bm)
{
    if (*bm == NULL)
        *bm = roaring_bitmap_create();
    return *bm;
}

static void bm_add(reel_index_t *idx, roaring_bitmap_t **bm, uint64_t v)
{
    if (v >= (1ull << 32) || bm_get(bm) == NULL) {
        idx->dropped++;
        return;
    }
    roaring_bitmap_add(*bm, (uint32_t)v);
}

static void bm_remove(roaring_bitmap_t *bm, uint64_t v)
{
    if (bm != NULL && v < (1ull << 32))
        roaring_bitmap_remove(bm, (uint32_t)v);
}

static int posts_reserve(reel_index_t *idx, uint64_t p)
{
    if (p == 0 || p >= REEL_IX_POSTS_MAX)
        return REEL_EUSAGE;
    if (p >= idx->posts_cap) {
        uint64_t cap = idx->posts_cap ? idx->posts_cap : 1024;
        while (cap <= p)
            cap *= 2;
        ix_post_t *n = realloc(idx->posts, sizeof(*n) * cap);
        if (n == NULL)
            return -ENOMEM;
        memset(n + idx->posts_cap, 0, sizeof(*n) * (cap - idx->posts_cap));
        idx->posts = n;
        idx->posts_cap = (uint32_t)cap;
    }
    return reel_vecs_reserve(&idx->vecs, (uint32_t)p, REEL_IX_POSTS_MAX);
}

/* Tag id of name (interned, case kept), or UINT32_MAX (bound, memory). */
static uint32_t tag_intern(reel_index_t *idx, const char *name, uint32_t len)
{
    if (idx->tag_hash_cap < 2 * (idx->ntags + 1)) {
        uint32_t cap = idx->tag_hash_cap ? idx->tag_hash_cap * 2 : 1024;
        uint32_t *h = calloc(cap, sizeof(uint32_t));
        if (h == NULL)
            return UINT32_MAX;
        for (uint32_t i = 0; i < idx->ntags; i++) {
            uint64_t x = XXH3_64bits(idx->tags[i].name, idx->tags[i].len);
            uint32_t s = (uint32_t)(x & (cap - 1));
            while (h[s] != 0)
                s = (s + 1) & (cap - 1);
            h[s] = i + 1;
        }
        free(idx->tag_hash);
        idx->tag_hash = h;
        idx->tag_hash_cap = cap;
    }
    uint64_t x = XXH3_64bits(name, len);
    uint32_t s = (uint32_t)(x & (idx->tag_hash_cap - 1));
    for (; idx->tag_hash[s] != 0; s = (s + 1) & (idx->tag_hash_cap - 1)) {
        ix_tag_t *t = &idx->tags[idx->tag_hash[s] - 1];
        if (t->len == len && memcmp(t->name, name, len) == 0)
            return idx->tag_hash[s] - 1;
    }
    if (idx->ntags >= REEL_IX_TAGS_MAX)
        return UINT32_MAX;
    if (idx->ntags == idx->tags_cap) {
        uint32_t cap = idx->tags_cap ? idx->tags_cap * 2 : 256;
        ix_tag_t *t = realloc(idx->tags, sizeof(*t) * cap);
        if (t == NULL)
            return UINT32_MAX;
        idx->tags = t;
        idx->tags_cap = cap;
    }
    ix_tag_t *t = &idx->tags[idx->ntags];
    memset(t, 0, sizeof(*t));
    t->name = malloc(len + 1);
    if (t->name == NULL)
        return UINT32_MAX;
    memcpy(t->name, name, len);
    t->name[len] = 0;
    t->len = len;
    idx->tag_hash[s] = idx->ntags + 1;
    return idx->ntags++;
}

/* Adds (add) or removes post p from its tags' buckets. */
static void tags_index(reel_index_t *idx, uint32_t p, bool add)
{
    ix_post_t *post = &idx->posts[p];
    uint64_t b = post->created_at / REEL_IX_TAG_BUCKET_MS;
    uint32_t slot = (uint32_t)(b % REEL_IX_TAG_BUCKETS);
    for (uint32_t i = 0; i < post->ntags; i++) {
        ix_tag_t *t = &idx->tags[idx->tag_pool[post->tags_off + i]];
        if (!add) {
            if (t->bm[slot] != NULL && t->bucket_no[slot] == b)
                roaring_bitmap_remove(t->bm[slot], p);
            continue;
        }
        if (t->bm[slot] != NULL && t->bucket_no[slot] > b)
            continue; /* older than the ring keeps */
        if (t->bm[slot] != NULL && t->bucket_no[slot] < b)
            roaring_bitmap_clear(t->bm[slot]);
        t->bucket_no[slot] = b;
        if (bm_get(&t->bm[slot]) == NULL) {
            idx->dropped++;
            continue;
        }
        roaring_bitmap_add(t->bm[slot], p);
    }
}

/* Invariant 2: the post joins or leaves the graph and the tag buckets. */
static void visibility_changed(reel_index_t *idx, uint32_t p, bool was_visible)
{
    bool now_visible = ix_visible(&idx->posts[p]);
    if (now_visible == was_visible)
        return;
    if (now_visible) {
        if (ann_add(idx, p) != 0)
            idx->dropped++;
        tags_index(idx, p, true);
    } else {
        ann_remove(idx, p);
        tags_index(idx, p, false);
    }
}

/* ---- heat and rising ---- */

static double tau_heat(void)
{
    return (double)REEL_IX_HEAT_HALF_LIFE_MS / LN2;
}

float reel__ix_heat_now(const reel_index_t *idx, const ix_post_t *p)
{
    if (p->heat_log == -INFINITY)
        return 0;
    double t = ((double)idx->now_ms - (double)idx->epoch_ms) / tau_heat();
    return (float)exp((double)p->heat_log - t);
}

static double tau_pop(void)
{
    return (double)REEL_IX_POP_HALF_LIFE_MS / LN2;
}

float reel__ix_pop_now(const reel_index_t *idx, const ix_post_t *p)
{
    if (p->pop_log == -INFINITY)
        return 0;
    double t = ((double)idx->now_ms - (double)idx->epoch_ms) / tau_pop();
    return (float)exp((double)p->pop_log - t);
}

/* The top lists (rising, popular, windowed): min-heaps by value of at
 * most max posts, each post's slot + 1 in posts[p].top_pos[which], so
 * that an update is O(log max), not a scan. */
enum { TOP_RISING, TOP_POPULAR, TOP_WINDOWED };

static ix_rising_t *top_arr(reel_index_t *idx, int which, uint32_t **n, uint32_t *max)
{
    switch (which) {
    case TOP_RISING:
        *n = &idx->nrising;
        *max = REEL_IX_RISING_MAX;
        return idx->rising;
    case TOP_POPULAR:
        *n = &idx->npopular;
        *max = REEL_IX_POPULAR_MAX;
        return idx->popular;
    default:
        *n = &idx->nwindowed;
        *max = REEL_IX_WINDOWED_MAX;
        return idx->windowed;
    }
}

static void top_put(reel_index_t *idx, ix_rising_t *a, int which, uint32_t i, ix_rising_t e)
{
    a[i] = e;
    idx->posts[e.post].top_pos[which] = (uint16_t)(i + 1);
}

static void top_sift(reel_index_t *idx, ix_rising_t *a, uint32_t n, int which, uint32_t i)
{
    ix_rising_t e = a[i];
    while (i > 0 && a[(i - 1) / 2].heat_log > e.heat_log) {
        top_put(idx, a, which, i, a[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && a[c + 1].heat_log < a[c].heat_log)
            c++;
        if (a[c].heat_log >= e.heat_log)
            break;
        top_put(idx, a, which, i, a[c]);
        i = c;
    }
    top_put(idx, a, which, i, e);
}

/* Post p's value in list `which` set to v: kept when among the largest. */
static void top_update(reel_index_t *idx, int which, uint32_t p, float v)
{
    uint32_t *n, max;
    ix_rising_t *a = top_arr(idx, which, &n, &max);
    uint16_t pos = idx->posts[p].top_pos[which];
    if (pos != 0) {
        a[pos - 1].heat_log = v;
        top_sift(idx, a, *n, which, pos - 1u);
    } else if (*n < max) {
        a[*n] = (ix_rising_t){p, v};
        (*n)++;
        top_sift(idx, a, *n, which, *n - 1);
    } else if (a[0].heat_log < v) {
        idx->posts[a[0].post].top_pos[which] = 0;
        a[0] = (ix_rising_t){p, v};
        top_sift(idx, a, *n, which, 0);
    }
}

static void top_remove(reel_index_t *idx, int which, uint32_t p)
{
    uint32_t *n, max;
    ix_rising_t *a = top_arr(idx, which, &n, &max);
    uint16_t pos = idx->posts[p].top_pos[which];
    if (pos == 0)
        return;
    idx->posts[p].top_pos[which] = 0;
    (*n)--;
    if (pos - 1u < *n) {
        a[pos - 1] = a[*n];
        top_sift(idx, a, *n, which, pos - 1u);
    }
}

/* ln(e^h + w e^((at - epoch) / tau)), stably. */
static float log_add(float h, float w, uint64_t at, uint64_t epoch, double tau)
{
    double x = log((double)w) + ((double)at - (double)epoch) / tau;
    double m = h > x ? h : x;
    return (float)(m + log(exp(h - m) + exp(x - m)));
}

/* ---- windowed popularity ---- */

/* The windowed list's entry of p set to v (inserted when among the
 * largest; removed at 0). */
static void win_list_set(reel_index_t *idx, uint32_t p, float v)
{
    if (v > 0)
        top_update(idx, TOP_WINDOWED, p, v);
    else
        top_remove(idx, TOP_WINDOWED, p);
}

/* Drops from the window the events older than REEL_IX_WINDOW_MS before
 * now (and the oldest, to make room, when keep_room and the ring is full). */
static void win_expire(reel_index_t *idx, bool keep_room)
{
    uint64_t now_s = idx->now_ms / 1000, span_s = REEL_IX_WINDOW_MS / 1000;
    while (idx->win_n > 0) {
        ix_win_ev_t *e = &idx->win_ring[idx->win_head];
        if ((uint64_t)e->at_s + span_s > now_s && !(keep_room && idx->win_n == REEL_IX_WINDOW_EVENTS_MAX))
            break;
        ix_post_t *post = &idx->posts[e->post];
        post->win = post->win > e->w ? post->win - e->w : 0;
        win_list_set(idx, e->post, post->win);
        idx->win_head = (idx->win_head + 1) % idx->win_cap;
        idx->win_n--;
    }
}

/* Explicit engagement w on post p at `at` (ms), within the window. */
static void win_add(reel_index_t *idx, uint32_t p, float w, uint64_t at)
{
    if (at + REEL_IX_WINDOW_MS <= idx->now_ms)
        return;
    win_expire(idx, true);
    if (idx->win_n == idx->win_cap) { /* grow: unwrap into a larger ring */
        uint32_t cap = idx->win_cap ? idx->win_cap * 2 : 4096;
        ix_win_ev_t *r = malloc(sizeof(*r) * cap);
        if (r == NULL) {
            idx->dropped++;
            return;
        }
        for (uint32_t i = 0; i < idx->win_n; i++)
            r[i] = idx->win_ring[(idx->win_head + i) % idx->win_cap];
        free(idx->win_ring);
        idx->win_ring = r;
        idx->win_cap = cap;
        idx->win_head = 0;
    }
    idx->win_ring[(idx->win_head + idx->win_n++) % idx->win_cap] =
        (ix_win_ev_t){p, (uint32_t)(at / 1000), w};
    ix_post_t *post = &idx->posts[p];
    post->win += w;
    if (ix_visible(post))
        win_list_set(idx, p, post->win);
}

/* Engagement w on post p at `at`: its heat, and its popularity when
 * explicit (likes, remixes, comments: not completed views). */
static void heat_add(reel_index_t *idx, uint32_t p, float w, uint64_t at, bool explicit_)
{
    ix_post_t *post = &idx->posts[p];
    post->heat_log = log_add(post->heat_log, w, at, idx->epoch_ms, tau_heat());
    if (explicit_) {
        post->pop_log = log_add(post->pop_log, w, at, idx->epoch_ms, tau_pop());
        win_add(idx, p, w, at);
    }
    if (ix_visible(post)) {
        top_update(idx, TOP_RISING, p, post->heat_log);
        top_update(idx, TOP_POPULAR, p, post->pop_log);
    }
}

/* ---- profiles ---- */

static float decay(uint64_t from, uint64_t to)
{
    if (to <= from)
        return 1.0f;
    double tau = (double)REEL_IX_INTEREST_HALF_LIFE_MS / LN2;
    return (float)exp(-((double)(to - from)) / tau);
}

/* Tag affinities of u: decayed to now, then w added to each tag of post. */
static void tags_learn(reel_index_t *idx, ix_user_t *u, const ix_post_t *post, float w)
{
    float f = decay(u->tags_at, idx->now_ms);
    for (uint32_t i = 0; i < u->ntags && f != 1.0f; i++)
        u->tag_w[i] *= f;
    u->tags_at = idx->now_ms;
    for (uint32_t k = 0; k < post->ntags; k++) {
        uint32_t tag = idx->tag_pool[post->tags_off + k];
        uint32_t i = 0, weakest = 0;
        for (; i < u->ntags && u->tag_id[i] != tag; i++)
            if (fabsf(u->tag_w[i]) < fabsf(u->tag_w[weakest]))
                weakest = i;
        if (i == u->ntags) {
            if (u->ntags < REEL_IX_USER_TAGS)
                u->ntags++;
            else if (fabsf(u->tag_w[weakest]) < fabsf(w))
                i = weakest;
            else
                continue;
            u->tag_id[i] = tag;
            u->tag_w[i] = 0;
        }
        u->tag_w[i] += w;
    }
}

/* A signal of weight w from user uid on post p (docs/RANKING.md,
 * "Profiles"): with learn_post, the post's vector first moves towards the
 * user's interest (online learning); then the user's interest (decayed to
 * now) and tag affinities move by w times the post. */
static void learn(reel_index_t *idx, uint64_t uid, uint32_t p, float w, bool learn_post)
{
    ix_user_t *u = user_get(idx, uid);
    ix_post_t *post = ix_post(idx, p);
    if (u == NULL || post == NULL)
        return;
    float pv[REEL_IX_DIM_MAX];
    reel_vecs_get(&idx->vecs, p, pv);
    if (u->interest == NULL) {
        u->interest = calloc(idx->dim, sizeof(float));
        if (u->interest == NULL) {
            idx->dropped++;
            return;
        }
        u->interest_at = idx->now_ms;
    }
    if (learn_post) {
        float uv[REEL_IX_DIM_MAX], nv[REEL_IX_DIM_MAX];
        memcpy(uv, u->interest, sizeof(float) * idx->dim);
        if (reel_vec_normalize(uv, idx->dim) > 0) {
            for (uint32_t i = 0; i < idx->dim; i++)
                nv[i] = pv[i] + REEL_IX_LEARN_RATE * uv[i];
            reel_vecs_set(&idx->vecs, p, nv);
        }
    }
    float f = decay(u->interest_at, idx->now_ms);
    for (uint32_t i = 0; i < idx->dim; i++)
        u->interest[i] = u->interest[i] * f + w * pv[i];
    u->interest_at = idx->now_ms;
    tags_learn(idx, u, post, w);
}

/* ---- apply ---- */

static bool str_is(reel_str_t s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

static void user_posts_add(reel_index_t *idx, uint64_t author, uint32_t p)
{
    ix_user_t *u = user_get(idx, author);
    if (u == NULL)
        return;
    if (u->nposts == u->posts_cap) {
        uint32_t cap = u->posts_cap ? u->posts_cap * 2 : 8;
        uint32_t *n = realloc(u->posts, sizeof(uint32_t) * cap);
        if (n == NULL) {
            idx->dropped++;
            return;
        }
        u->posts = n;
        u->posts_cap = cap;
    }
    u->posts[u->nposts++] = p;
}

/* The post record of post.created (or of the views at load): tags,
 * vector, author's list. Returns false when it cannot be kept. */
static bool post_create(reel_index_t *idx, uint64_t p, uint64_t author, uint64_t created_at,
                        bool public, const reel_str_t *tags, uint32_t ntags, const float *vec)
{
    if (author >= REEL_IX_USERS_MAX || posts_reserve(idx, p) != 0) {
        idx->dropped++;
        return false;
    }
    ix_post_t *post = &idx->posts[p];
    if (post->flags & IX_P_EXISTS)
        return false;
    if (idx->tag_pool_n + ntags > idx->tag_pool_cap) {
        uint64_t cap = idx->tag_pool_cap ? idx->tag_pool_cap * 2 : 4096;
        uint32_t *n = realloc(idx->tag_pool, sizeof(uint32_t) * cap);
        if (n == NULL) {
            idx->dropped++;
            return false;
        }
        idx->tag_pool = n;
        idx->tag_pool_cap = cap;
    }
    memset(post, 0, sizeof(*post));
    post->created_at = created_at;
    post->author = (uint32_t)author;
    post->tags_off = (uint32_t)idx->tag_pool_n;
    for (uint32_t i = 0; i < ntags; i++) {
        uint32_t id = tag_intern(idx, tags[i].ptr, tags[i].len);
        if (id == UINT32_MAX) {
            idx->dropped++;
            continue;
        }
        idx->tag_pool[idx->tag_pool_n++] = id;
        post->ntags++;
    }
    post->flags = IX_P_EXISTS | (public ? IX_P_PUBLIC : 0);
    post->heat_log = -INFINITY;
    post->pop_log = -INFINITY;
    reel_vecs_set(&idx->vecs, (uint32_t)p, vec);
    idx->nposts++;
    if (p > idx->max_post)
        idx->max_post = (uint32_t)p;
    user_posts_add(idx, author, (uint32_t)p);
    visibility_changed(idx, (uint32_t)p, false);
    return true;
}

/* The vector of a post: the client's (when its dimension is the index's)
 * or the derived one. */
static void post_vector(const reel_index_t *idx, uint32_t dim, float (*at)(const void *, uint32_t),
                        const void *src, const char *prompt, size_t prompt_len,
                        const reel_str_t *tags, uint32_t ntags, float *out)
{
    if (dim == idx->dim) {
        for (uint32_t i = 0; i < dim; i++)
            out[i] = at(src, i);
        if (reel_vec_normalize(out, dim) > 0)
            return;
    }
    reel_index_embed(prompt, prompt_len, tags, ntags, idx->dim, out);
}

static float ev_at(const void *ev, uint32_t i)
{
    return reel_event_embedding_at(ev, i);
}

static float body_at(const void *b, uint32_t i)
{
    return reel_post_body_embedding_at(b, i);
}

static void flag_set(reel_index_t *idx, uint64_t p, uint8_t flag)
{
    ix_post_t *post = ix_post(idx, p);
    if (post == NULL || (post->flags & IX_P_DELETED))
        return;
    bool was = ix_visible(post);
    post->flags |= flag;
    visibility_changed(idx, (uint32_t)p, was);
}

static void on_post_created(reel_index_t *idx, const reel_event_t *ev, bool history)
{
    if (!history) {
        float v[REEL_IX_DIM_MAX];
        post_vector(idx, ev->dim, ev_at, ev, ev->prompt.ptr, ev->prompt.len, ev->tags, ev->ntags,
                    v);
        if (!post_create(idx, ev->post, ev->user, ev->at, !str_is(ev->visibility, "draft"),
                         ev->tags, ev->ntags, v))
            return;
    }
    learn(idx, ev->user, (uint32_t)ev->post, W_CREATE, false);
    ix_post_t *parent = ix_post(idx, ev->remix_of);
    if (parent != NULL) {
        heat_add(idx, (uint32_t)ev->remix_of, H_REMIX, ev->at, true);
        learn(idx, ev->user, (uint32_t)ev->remix_of, W_REMIX, true);
    }
}

static void on_feedback(reel_index_t *idx, const reel_event_t *ev)
{
    ix_user_t *u = user_get(idx, ev->user);
    ix_post_t *post = ix_post(idx, ev->post);
    if (u == NULL || post == NULL)
        return;
    if (str_is(ev->kind, "see_less")) {
        learn(idx, ev->user, (uint32_t)ev->post, W_SEE_LESS, false);
    } else if (str_is(ev->kind, "see_more")) {
        learn(idx, ev->user, (uint32_t)ev->post, W_SEE_MORE, false);
    } else if (str_is(ev->kind, "not_interested")) {
        bm_add(idx, &u->excluded, ev->post);
        learn(idx, ev->user, (uint32_t)ev->post, W_NOT_INTERESTED, false);
    } else if (str_is(ev->kind, "hide_creator")) {
        bm_add(idx, &u->hidden, post->author);
    }
}

/* Engagement on a post: heat, exclusion and learning. (The counts are the
 * views' business: the index kept copies that nothing read, 20 bytes a
 * post.) */
static void on_engage(reel_index_t *idx, const reel_event_t *ev)
{
    ix_post_t *post = ix_post(idx, ev->post);
    ix_user_t *u = user_get(idx, ev->user);
    if (post == NULL || u == NULL)
        return;
    switch (ev->type) {
    case REEL_EV_LIKE_CREATED:
        bm_add(idx, &u->excluded, ev->post);
        heat_add(idx, (uint32_t)ev->post, H_LIKE, ev->at, true);
        learn(idx, ev->user, (uint32_t)ev->post, W_LIKE, true);
        break;
    case REEL_EV_VIEW_RECORDED:
        bm_add(idx, &u->excluded, ev->post);
        if (ev->completed) {
            heat_add(idx, (uint32_t)ev->post, H_COMPLETE, ev->at, false);
            learn(idx, ev->user, (uint32_t)ev->post, W_COMPLETE, true);
        }
        break;
    case REEL_EV_COMMENT_CREATED:
        heat_add(idx, (uint32_t)ev->post, H_COMMENT, ev->at, true);
        break;
    default:
        break;
    }
}

/* One event. history: a replay of the load window over state loaded from
 * the views (what the views hold is not counted twice). */
static void apply_one(reel_index_t *idx, const reel_event_t *ev, bool history)
{
    if (ev->at > idx->now_ms)
        idx->now_ms = ev->at;
    if (!idx->epoch_set) {
        idx->epoch_ms = ev->at;
        idx->epoch_set = true;
    }
    win_expire(idx, false);
    ix_user_t *u;
    switch (ev->type) {
    case REEL_EV_POST_CREATED:
        on_post_created(idx, ev, history);
        break;
    case REEL_EV_POST_PUBLISHED:
        if (!history)
            flag_set(idx, ev->post, IX_P_PUBLIC);
        break;
    case REEL_EV_POST_HIDDEN:
        if (!history)
            flag_set(idx, ev->post, IX_P_HIDDEN);
        break;
    case REEL_EV_POST_DELETED:
        if (!history)
            flag_set(idx, ev->post, IX_P_DELETED);
        break;
    case REEL_EV_LIKE_CREATED:
    case REEL_EV_LIKE_REMOVED:
    case REEL_EV_VIEW_RECORDED:
    case REEL_EV_COMMENT_CREATED:
        on_engage(idx, ev);
        break;
    case REEL_EV_FEEDBACK_RECORDED:
        on_feedback(idx, ev);
        break;
    case REEL_EV_FOLLOW_CREATED:
    case REEL_EV_FOLLOW_REMOVED:
        if (history || (u = user_get(idx, ev->user)) == NULL)
            break;
        if (ev->type == REEL_EV_FOLLOW_CREATED)
            bm_add(idx, &u->following, ev->target);
        else
            bm_remove(u->following, ev->target);
        break;
    case REEL_EV_BLOCK_CREATED:
    case REEL_EV_BLOCK_REMOVED: {
        ix_user_t *a = user_get(idx, ev->user), *b = user_get(idx, ev->target);
        if (a == NULL || b == NULL)
            break;
        if (ev->type == REEL_EV_BLOCK_CREATED) {
            bm_add(idx, &a->blocks, ev->target);
            bm_add(idx, &b->blocked_by, ev->user);
        } else {
            bm_remove(a->blocks, ev->target);
            bm_remove(b->blocked_by, ev->user);
        }
        break;
    }
    case REEL_EV_USER_DELETED:
        if ((u = user_get(idx, ev->user)) != NULL) {
            u->deleted = true;
            bm_add(idx, &idx->users_deleted, ev->user);
        }
        break;
    default:
        break;
    }
}

void reel_index_apply(void *ctx, const reel_event_t *evs, size_t n)
{
    reel_index_t *idx = ctx;
    REEL_ASSERT(idx != NULL);
    REEL_ASSERT(n == 0 || evs != NULL);
    pthread_rwlock_wrlock(&idx->lock);
    for (size_t i = 0; i < n; i++) {
        if (evs[i].offset < idx->next_offset)
            continue;
        apply_one(idx, &evs[i], false);
        idx->next_offset = evs[i].offset + 1;
    }
    pthread_rwlock_unlock(&idx->lock);
}

/* ---- load ---- */

static int load_post(reel_index_t *idx, reel_views_txn_t *t, uint64_t id)
{
    reel_post_view_t pv;
    reel_post_body_t body;
    int rc = reel_views_get_post(t, id, &pv);
    if (rc == REEL_ENOTFOUND)
        return 0;
    if (rc == 0)
        rc = reel_views_get_post_body(t, id, &body);
    if (rc == REEL_ENOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    float v[REEL_IX_DIM_MAX];
    post_vector(idx, body.dim, body_at, &body, body.prompt, body.prompt_len, body.tags,
                body.ntags, v);
    if (!post_create(idx, id, pv.author, pv.created_at, pv.public, body.tags, body.ntags, v))
        return 0;
    if (pv.hidden)
        flag_set(idx, id, IX_P_HIDDEN);
    if (pv.created_at > idx->now_ms)
        idx->now_ms = pv.created_at;
    return 0;
}

static int load_user(reel_index_t *idx, reel_views_txn_t *t, uint64_t id)
{
    reel_user_view_t uv;
    int rc = reel_views_get_user(t, id, &uv);
    if (rc == REEL_ENOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    ix_user_t *u = user_get(idx, id);
    if (u == NULL)
        return 0;
    reel_follow_entry_t fs[256];
    size_t n = 0;
    uint64_t cs = 0, ci = 0;
    do {
        rc = reel_views_following(t, id, cs, ci, 256, fs, &n);
        for (size_t i = 0; rc == 0 && i < n; i++)
            bm_add(idx, &u->following, fs[i].user);
        if (n > 0) {
            cs = fs[n - 1].since;
            ci = fs[n - 1].user;
        }
    } while (rc == 0 && n == 256);
    uint64_t ps[256], cur = 0;
    do {
        if (rc == 0)
            rc = reel_views_likes_by_user(t, id, cur, 256, ps, &n);
        for (size_t i = 0; rc == 0 && i < n; i++)
            bm_add(idx, &u->excluded, ps[i]);
        if (n > 0)
            cur = ps[n - 1];
    } while (rc == 0 && n == 256);
    return rc;
}

/* Replays the recent window of the log in history mode. */
static int load_log(reel_index_t *idx, reel_log_t *log)
{
    uint64_t end = reel_log_end(log);
    uint64_t from = end > REEL_IX_LOAD_EVENTS_MAX ? end - REEL_IX_LOAD_EVENTS_MAX : 0;
    uint64_t last = reel_log_last_time_ms(log);
    uint64_t cutoff = last > REEL_IX_LOAD_WINDOW_MS ? last - REEL_IX_LOAD_WINDOW_MS : 0;
    uint64_t win_cutoff = last > REEL_IX_WINDOW_MS ? last - REEL_IX_WINDOW_MS : 0;
    reel_log_iter_t *it;
    int rc = reel_log_iter_open(log, from, &it);
    if (rc != 0)
        return rc;
    reel_record_t rec;
    uint64_t seen = 0;
    while (seen < end - from && (rc = reel_log_iter_next(it, &rec)) == 0) {
        seen++;
        bool win_only = rec.time_ms < cutoff;
        if (win_only && (rec.time_ms < win_cutoff ||
                         (rec.type != REEL_EV_LIKE_CREATED && rec.type != REEL_EV_COMMENT_CREATED &&
                          rec.type != REEL_EV_POST_CREATED)))
            continue;
        reel_event_t ev;
        if (reel_event_decode(rec.type, rec.payload, rec.length, &ev) != 0) {
            idx->dropped++;
            continue;
        }
        ev.offset = rec.offset;
        ev.at = rec.time_ms;
        if (!win_only) {
            apply_one(idx, &ev, true);
            continue;
        }
        /* Older than the load window but within the popularity window:
         * only the windowed count. */
        uint64_t p = ev.type == REEL_EV_POST_CREATED ? ev.remix_of : ev.post;
        float w = ev.type == REEL_EV_LIKE_CREATED      ? H_LIKE
                  : ev.type == REEL_EV_COMMENT_CREATED ? H_COMMENT
                                                       : H_REMIX;
        if (ix_post(idx, p) != NULL)
            win_add(idx, (uint32_t)p, w, ev.at);
    }
    reel_log_iter_close(it);
    if (rc == REEL_EEND || rc == 0)
        rc = 0;
    idx->next_offset = end;
    return rc;
}

int reel_index_load(reel_index_t *idx, reel_views_txn_t *t, reel_log_t *log)
{
    if (idx == NULL || t == NULL)
        return REEL_EUSAGE;
    uint64_t last_post = 0, last_user = 0;
    int rc = reel_views_last_id(t, REEL_VIEWS_ID_POST, &last_post);
    if (rc == 0)
        rc = reel_views_last_id(t, REEL_VIEWS_ID_USER, &last_user);
    pthread_rwlock_wrlock(&idx->lock);
    if (rc == 0 && idx->nposts != 0)
        rc = REEL_EUSAGE;
    if (rc == 0 && log != NULL) {
        uint64_t last = reel_log_last_time_ms(log);
        uint64_t cutoff = last > REEL_IX_LOAD_WINDOW_MS ? last - REEL_IX_LOAD_WINDOW_MS : 0;
        idx->epoch_ms = cutoff;
        idx->epoch_set = true;
    }
    for (uint64_t id = 1; rc == 0 && id <= last_post && id < REEL_IX_POSTS_MAX; id++)
        rc = load_post(idx, t, id);
    for (uint64_t id = 1; rc == 0 && id <= last_user && id < REEL_IX_USERS_MAX; id++)
        rc = load_user(idx, t, id);
    if (rc == 0 && log != NULL)
        rc = load_log(idx, log);
    pthread_rwlock_unlock(&idx->lock);
    return rc;
}

/* ---- stats ---- */

static uint64_t bm_bytes(const roaring_bitmap_t *bm)
{
    return bm == NULL ? 0 : roaring_bitmap_portable_size_in_bytes(bm) + 48;
}

void reel_index_stats(reel_index_t *idx, reel_index_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    pthread_rwlock_rdlock(&idx->lock);
    out->now_ms = idx->now_ms;
    out->next_offset = idx->next_offset;
    out->posts = idx->nposts;
    out->users = idx->nusers;
    out->tags = idx->ntags;
    out->ann_nodes = reel_ann_nodes(idx->ann) + (idx->ann_old ? reel_ann_nodes(idx->ann_old) : 0);
    out->dropped = idx->dropped;
    uint64_t b = (uint64_t)idx->posts_cap * sizeof(ix_post_t) +
                 (uint64_t)idx->vecs.cap * (idx->dim + sizeof(float)) +
                 idx->tag_pool_cap * sizeof(uint32_t) + reel_ann_bytes(idx->ann) +
                 (idx->ann_old ? reel_ann_bytes(idx->ann_old) : 0);
    out->bytes_posts = b;
    for (uint32_t i = 0; i < idx->ntags; i++) {
        b += sizeof(ix_tag_t) + idx->tags[i].len + 1;
        for (uint32_t k = 0; k < REEL_IX_TAG_BUCKETS; k++)
            b += bm_bytes(idx->tags[i].bm[k]);
    }
    b += (uint64_t)idx->tag_hash_cap * 4 + (uint64_t)idx->users_cap * sizeof(void *) +
         bm_bytes(idx->users_deleted);
    for (uint32_t i = 0; i < idx->users_cap; i++) {
        const ix_user_t *u = idx->users[i];
        if (u == NULL)
            continue;
        b += sizeof(*u) + (u->interest ? idx->dim * sizeof(float) : 0) + u->posts_cap * 4u;
        b += bm_bytes(u->following) + bm_bytes(u->blocks) + bm_bytes(u->blocked_by) +
             bm_bytes(u->hidden) + bm_bytes(u->excluded);
    }
    out->bytes_total = b + (uint64_t)REEL_IX_SESSIONS_MAX * sizeof(ix_session_t);
    pthread_rwlock_unlock(&idx->lock);
}
