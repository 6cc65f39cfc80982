/*
 * rank.c: the feed and trending tags (index.h; docs/RANKING.md is the
 * reference). A for_you page is: candidates from seven sources (followed
 * users, ANN over the interest vector, top tags, rising, popular, windowed,
 * exploration; a newest-first backfill when they run short), the
 * contract's filters,
 * one scoring function (score_candidate), then a greedy pick per position
 * with diversity (the author rule, author and topic decay) and exploration
 * slots.
 */
#include "index/index_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/common.h"

#define LN2 0.69314718055994530942

/* ---- the scoring function: signals and weights (docs/RANKING.md) ---- */

enum { SIG_SIM, SIG_TAG, SIG_SOCIAL, SIG_ENG, SIG_FRESH, SIG_N };
static const char *const sig_name[SIG_N] = {"similarity", "tag_affinity", "social",
                                            "engagement", "freshness"};
static const float sig_weight[SIG_N] = {1.0f, 0.5f, 0.4f, 3.0f, 0.15f};
/* Engagement: the post's windowed popularity (explicit engagement in the
 * last 30 days of engine time) over the largest one's plus POP_PRIOR:
 * relative, and
 * small while the whole catalogue has little engagement (a new server, a
 * quiet week), so that a handful of likes does not outrank taste. */
#define POP_PRIOR 20.0f
/* Diversity: the n-th item of an author on a page (0-based) is scaled by
 * (1 - AUTHOR_FLOOR) * 0.5^n + AUTHOR_FLOOR (X's DiversityDiscountProvider);
 * the n-th of a main tag (the post's first) by TOPIC_DECAY^n. */
#define AUTHOR_FLOOR 0.25f
#define TOPIC_DECAY 0.95f

/* Candidate sources (bits). */
#define SRC_FOLLOWING 0x01u
#define SRC_ANN 0x02u
#define SRC_TAGS 0x04u
#define SRC_RISING 0x08u
#define SRC_EXPLORE 0x10u
#define SRC_BACKFILL 0x20u
#define SRC_POPULAR 0x40u
#define SRC_WINDOWED 0x80u

#define SET_CAP (4u * REEL_IX_CAND_MAX)
_Static_assert((SET_CAP & (SET_CAP - 1)) == 0, "the candidate set's size is a power of two");

typedef struct cand {
    uint32_t post;
    uint32_t author;
    uint32_t topic;     /* first tag id, UINT32_MAX: none */
    uint8_t src;        /* SRC_* */
    bool taken;         /* placed, or refused by the views check */
    uint16_t aslot;     /* its author's slot in page_state_t (assemble) */
    uint16_t tslot;     /* its topic's slot in page_state_t (assemble) */
    float score;
    float part[SIG_N];  /* weighted contributions */
} cand_t;

typedef struct feed {
    reel_index_t *idx;
    uint64_t user;
    const ix_user_t *u;
    const roaring_bitmap_t *served;
    cand_t c[REEL_IX_CAND_MAX];
    uint32_t n;
    uint32_t set[SET_CAP];     /* post + 1 -> present; 0 empty */
    uint32_t set_at[SET_CAP];  /* its index in c */
    bool has_interest;
    int8_t q8[REEL_IX_DIM_MAX];
    float qs;
    float interest[REEL_IX_DIM_MAX];
    float tag_max;             /* largest |affinity| of the user */
    float win_max;             /* the largest windowed popularity */
    uint64_t rng;
} feed_t;

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static bool has(const roaring_bitmap_t *bm, uint64_t v)
{
    return bm != NULL && v < (1ull << 32) && roaring_bitmap_contains(bm, (uint32_t)v);
}

/* The contract's filters, from the index's state. */
static bool eligible(const feed_t *f, uint32_t p)
{
    const ix_post_t *post = ix_post(f->idx, p);
    if (post == NULL || !ix_visible(post) || post->author == f->user)
        return false;
    if (has(f->idx->users_deleted, post->author))
        return false;
    if (f->u != NULL && (has(f->u->blocks, post->author) || has(f->u->blocked_by, post->author) ||
                         has(f->u->hidden, post->author) || has(f->u->excluded, p)))
        return false;
    return !has(f->served, p);
}

static float tag_aff(const feed_t *f, uint32_t tag)
{
    for (uint32_t i = 0; i < f->u->ntags; i++)
        if (f->u->tag_id[i] == tag)
            return f->u->tag_w[i];
    return 0;
}

/* THE scoring function: a weighted sum of five signals, each in [-1, 1]
 * or [0, 1] (docs/RANKING.md, "Score"). */
static void score_candidate(const feed_t *f, cand_t *c)
{
    const reel_index_t *idx = f->idx;
    const ix_post_t *p = &idx->posts[c->post];
    float sig[SIG_N] = {0};
    if (f->has_interest)
        sig[SIG_SIM] = reel_vecs_sim_q(&idx->vecs, f->q8, f->qs, c->post);
    if (f->u != NULL && f->tag_max > 0) {
        float s = 0;
        for (uint32_t i = 0; i < p->ntags; i++)
            s += tag_aff(f, idx->tag_pool[p->tags_off + i]) / f->tag_max;
        sig[SIG_TAG] = s > 1 ? 1 : s < -1 ? -1 : s;
    }
    if (f->u != NULL && has(f->u->following, p->author)) {
        const ix_user_t *a = ix_user(idx, p->author);
        sig[SIG_SOCIAL] = a != NULL && has(a->following, f->user) ? 1.0f : 0.67f;
    }
    sig[SIG_ENG] = p->win / (f->win_max + POP_PRIOR);
    uint64_t age = idx->now_ms > p->created_at ? idx->now_ms - p->created_at : 0;
    sig[SIG_FRESH] = (float)exp(-(double)age * LN2 / (double)REEL_IX_FRESH_HALF_LIFE_MS);
    c->score = 0;
    for (int i = 0; i < SIG_N; i++) {
        c->part[i] = sig_weight[i] * sig[i];
        c->score += c->part[i];
    }
}

static void cand_add(feed_t *f, uint32_t p, uint8_t src)
{
    uint32_t s = (uint32_t)((p * 0x9e3779b1u) & (SET_CAP - 1));
    for (; f->set[s] != 0; s = (s + 1) & (SET_CAP - 1)) {
        if (f->set[s] == p + 1) {
            f->c[f->set_at[s]].src |= src;
            return;
        }
    }
    if (f->n >= REEL_IX_CAND_MAX || !eligible(f, p))
        return;
    f->set[s] = p + 1;
    f->set_at[s] = f->n;
    const ix_post_t *post = &f->idx->posts[p];
    cand_t *c = &f->c[f->n++];
    memset(c, 0, sizeof(*c));
    c->post = p;
    c->author = post->author;
    c->topic = post->ntags ? f->idx->tag_pool[post->tags_off] : UINT32_MAX;
    c->src = src;
}

/* ---- candidate sources ---- */

static void src_following(feed_t *f)
{
    if (f->u == NULL || f->u->following == NULL)
        return;
    uint32_t start = f->n, scanned = 0;
    roaring_uint32_iterator_t *it = roaring_create_iterator(f->u->following);
    if (it == NULL)
        return;
    for (; it->has_value && scanned < REEL_IX_FOLLOWEES_SCAN_MAX &&
           f->n - start < REEL_IX_CAND_FOLLOWING_MAX;
         roaring_advance_uint32_iterator(it), scanned++) {
        const ix_user_t *a = ix_user(f->idx, it->current_value);
        if (a == NULL)
            continue;
        uint32_t got = 0;
        for (uint32_t i = a->nposts; i > 0 && got < REEL_IX_CAND_PER_FOLLOWEE &&
                                     a->nposts - i < 4 * REEL_IX_CAND_PER_FOLLOWEE;
             i--) {
            uint32_t before = f->n;
            cand_add(f, a->posts[i - 1], SRC_FOLLOWING);
            got += f->n > before;
        }
    }
    roaring_free_uint32_iterator(it);
}

static int src_ann(feed_t *f)
{
    if (!f->has_interest)
        return 0;
    reel_ann_hit_t hits[REEL_IX_CAND_ANN];
    size_t n = 0;
    int rc = reel__ix_ann_search(f->idx, f->interest, REEL_IX_CAND_ANN, 2 * REEL_IX_CAND_ANN,
                                 hits, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) /* the rows' misses overlap */
        __builtin_prefetch(&f->idx->posts[hits[i].id]);
    for (size_t i = 0; rc == 0 && i < n; i++)
        cand_add(f, hits[i].id, SRC_ANN);
    return rc;
}

/* The newest posts of the user's strongest tags, newest bucket first. */
static void src_tags(feed_t *f)
{
    if (f->u == NULL)
        return;
    uint32_t order[REEL_IX_USER_TAGS], n = 0;
    for (uint32_t i = 0; i < f->u->ntags; i++)
        if (f->u->tag_w[i] > 0)
            order[n++] = i;
    for (uint32_t i = 1; i < n; i++) /* insertion sort, strongest first */
        for (uint32_t j = i; j > 0 && f->u->tag_w[order[j]] > f->u->tag_w[order[j - 1]]; j--) {
            uint32_t x = order[j];
            order[j] = order[j - 1];
            order[j - 1] = x;
        }
    uint64_t bnow = f->idx->now_ms / REEL_IX_TAG_BUCKET_MS;
    for (uint32_t k = 0; k < n && k < REEL_IX_CAND_TAGS_TOP; k++) {
        const ix_tag_t *t = &f->idx->tags[f->u->tag_id[order[k]]];
        uint32_t got = 0;
        for (uint32_t back = 0; back < REEL_IX_TAG_BUCKETS && got < REEL_IX_CAND_PER_TAG; back++) {
            if (back > bnow)
                break;
            uint32_t slot = (uint32_t)((bnow - back) % REEL_IX_TAG_BUCKETS);
            if (t->bm[slot] == NULL || t->bucket_no[slot] != bnow - back)
                continue;
            uint64_t card = roaring_bitmap_get_cardinality(t->bm[slot]);
            uint32_t want = REEL_IX_CAND_PER_TAG - got;
            uint32_t take = card < want ? (uint32_t)card : want;
            uint32_t ids[REEL_IX_CAND_PER_TAG];
            if (take == 0 || !roaring_bitmap_range_uint32_array(t->bm[slot], card - take, take, ids))
                continue;
            for (uint32_t i = take; i > 0; i--)
                cand_add(f, ids[i - 1], SRC_TAGS);
            got += take;
        }
    }
}

static int cmp_rising(const void *x, const void *y)
{
    const ix_rising_t *a = x, *b = y;
    if (a->heat_log != b->heat_log)
        return a->heat_log > b->heat_log ? -1 : 1;
    return a->post < b->post ? -1 : a->post > b->post;
}

static void src_rising(feed_t *f)
{
    ix_rising_t r[REEL_IX_RISING_MAX];
    uint32_t n = f->idx->nrising;
    memcpy(r, f->idx->rising, sizeof(r[0]) * n);
    qsort(r, n, sizeof(r[0]), cmp_rising);
    for (uint32_t i = 0; i < n && i < REEL_IX_CAND_RISING; i++)
        cand_add(f, r[i].post, SRC_RISING);
}

/* The most popular posts (explicit engagement, 10-day half-life),
 * REEL_IX_CAND_POPULAR of them that pass the filters. */
static void src_popular(feed_t *f)
{
    ix_rising_t r[REEL_IX_POPULAR_MAX];
    uint32_t n = f->idx->npopular, start = f->n;
    memcpy(r, f->idx->popular, sizeof(r[0]) * n);
    qsort(r, n, sizeof(r[0]), cmp_rising);
    for (uint32_t i = 0; i < n && f->n - start < REEL_IX_CAND_POPULAR; i++)
        cand_add(f, r[i].post, SRC_POPULAR);
}

/* The posts with the most explicit engagement in the window (30 days),
 * REEL_IX_CAND_WINDOWED of them that pass the filters; sets win_max. */
static void src_windowed(feed_t *f)
{
    ix_rising_t r[REEL_IX_WINDOWED_MAX];
    uint32_t n = f->idx->nwindowed, start = f->n;
    memcpy(r, f->idx->windowed, sizeof(r[0]) * n);
    qsort(r, n, sizeof(r[0]), cmp_rising);
    f->win_max = n > 0 ? r[0].heat_log : 0.0f;
    for (uint32_t i = 0; i < n && f->n - start < REEL_IX_CAND_WINDOWED; i++)
        cand_add(f, r[i].post, SRC_WINDOWED);
}

/* Random posts among the newest REEL_IX_EXPLORE_WINDOW ids (seeded by
 * user, session and page: a page is reproducible). */
static void src_explore(feed_t *f)
{
    uint32_t hi = f->idx->max_post;
    uint32_t lo = hi > REEL_IX_EXPLORE_WINDOW ? hi - REEL_IX_EXPLORE_WINDOW : 0;
    uint32_t start = f->n;
    for (uint32_t tries = 0; hi > 0 && tries < 4 * REEL_IX_CAND_EXPLORE &&
                             f->n - start < REEL_IX_CAND_EXPLORE;
         tries++)
        cand_add(f, lo + 1 + (uint32_t)(splitmix(&f->rng) % (hi - lo)), SRC_EXPLORE);
}

/* Newest first, when the sources leave fewer than want candidates. */
static void src_backfill(feed_t *f, uint32_t want)
{
    uint32_t scanned = 0;
    for (uint32_t p = f->idx->max_post; p > 0 && f->n < want && scanned < REEL_IX_BACKFILL_SCAN_MAX;
         p--, scanned++)
        cand_add(f, p, SRC_BACKFILL);
}

/* ---- sessions ---- */

/* The session of cursor (or a new one): sess_mu is held. */
static ix_session_t *session_get(reel_index_t *idx, uint64_t user, const reel_feed_cursor_t *cur)
{
    if (cur != NULL && cur->a != 0) {
        ix_session_t *s = &idx->sessions[cur->a % REEL_IX_SESSIONS_MAX];
        if (s->id == cur->a && s->user == user)
            return s;
    }
    uint64_t id = idx->next_session++;
    ix_session_t *s = &idx->sessions[id % REEL_IX_SESSIONS_MAX];
    if (s->served == NULL)
        s->served = roaring_bitmap_create();
    else
        roaring_bitmap_clear(s->served);
    if (s->served == NULL)
        return NULL;
    s->id = id;
    s->user = user;
    s->pages = 0;
    s->nlast = 0;
    return s;
}

/* ---- page assembly ---- */

/* The views' word on post p for user (what the load window may miss). */
static int views_ok(reel_views_txn_t *t, uint64_t user, uint32_t p, uint32_t author, bool *ok)
{
    reel_post_view_t pv;
    bool blocked = false, liked = false;
    uint8_t fb = 0;
    *ok = false;
    int rc = reel_views_get_post(t, p, &pv);
    if (rc == REEL_ENOTFOUND)
        return 0;
    if (rc == 0 && (!pv.public || pv.hidden || pv.author != author))
        return 0;
    if (rc == 0)
        rc = reel_views_is_blocked(t, user, author, &blocked);
    if (rc == 0)
        rc = reel_views_get_feedback(t, user, p, &fb);
    if (rc == 0)
        rc = reel_views_liked(t, p, user, &liked);
    *ok = rc == 0 && !blocked && !liked &&
          (fb & (REEL_FEEDBACK_NOT_INTERESTED | REEL_FEEDBACK_HIDE_CREATOR)) == 0;
    return rc;
}

/* Distinct authors (and topics) among the candidates: at most one each. */
#define SLOTS_MAX REEL_IX_CAND_MAX
_Static_assert(SLOTS_MAX <= UINT16_MAX, "slots fit cand_t's uint16_t");
#define SLOT_NONE UINT16_MAX

/* What diversity and the author rule need, kept as counts per author and
 * topic slot so that scoring a candidate for a position is O(1): the scans
 * of the page's authors and topics for every candidate at every position
 * were a fifth of a page's time (perf, `reel bench feed`). The counts are
 * exactly what the scans counted, so the page is the same. */
typedef struct page_state {
    uint32_t authors[REEL_IX_AUTHOR_WINDOW - 1 + REEL_IX_PAGE_MAX]; /* session's last, then page */
    uint16_t aslot[REEL_IX_AUTHOR_WINDOW - 1 + REEL_IX_PAGE_MAX];   /* their slots, SLOT_NONE */
    uint32_t nauthors;
    uint16_t a_page[SLOTS_MAX]; /* items of the author on this page */
    uint16_t a_win[SLOTS_MAX];  /* items of the author among the last 9 */
    uint16_t t_page[SLOTS_MAX]; /* items of the topic on this page */
    /* Slot lookup while slots are assigned: open addressing, key + 1. */
    uint32_t key[2 * SLOTS_MAX];
    uint16_t val[2 * SLOTS_MAX];
} page_state_t;

/* Diversity factors by count: the very powf values the scoring used. */
typedef struct div_table {
    float author[REEL_IX_PAGE_MAX + 1]; /* 0.5^n */
    float topic[REEL_IX_PAGE_MAX + 1];  /* TOPIC_DECAY^n */
} div_table_t;

static div_table_t div_table_make(void)
{
    div_table_t d;
    for (uint32_t n = 0; n <= REEL_IX_PAGE_MAX; n++) {
        d.author[n] = powf(0.5f, (float)n);
        d.topic[n] = powf(TOPIC_DECAY, (float)n);
    }
    return d;
}

/* Slot of key (an author, or a topic with its own key space) in the
 * table, assigned in order of first sight; *next counts them. */
static uint16_t slot_of(page_state_t *ps, uint32_t key, uint16_t *next, bool assign)
{
    uint32_t h = (key * 0x9e3779b1u) & (2 * SLOTS_MAX - 1);
    for (; ps->key[h] != 0; h = (h + 1) & (2 * SLOTS_MAX - 1))
        if (ps->key[h] == key + 1)
            return ps->val[h];
    if (!assign)
        return SLOT_NONE;
    REEL_ASSERT(*next < SLOTS_MAX);
    ps->key[h] = key + 1;
    ps->val[h] = (*next)++;
    return ps->val[h];
}

/* Gives every candidate its author and topic slot (two passes over one
 * table: authors, then topics). */
static void slots_assign(feed_t *f, page_state_t *ps)
{
    uint16_t next = 0;
    for (uint32_t i = 0; i < f->n; i++)
        f->c[i].aslot = slot_of(ps, f->c[i].author, &next, true);
    for (uint32_t i = 0; i < ps->nauthors; i++)
        ps->aslot[i] = slot_of(ps, ps->authors[i], &next, false);
    memset(ps->key, 0, sizeof(ps->key));
    next = 0;
    for (uint32_t i = 0; i < f->n; i++)
        f->c[i].tslot = slot_of(ps, f->c[i].topic, &next, true);
}

/* Whether author may come next: fewer than 2 of the last 9 items. */
static bool author_ok(const page_state_t *ps, const cand_t *c)
{
    return ps->a_win[c->aslot] < REEL_IX_AUTHOR_PER_WINDOW;
}

static float diversity(const page_state_t *ps, const div_table_t *d, const cand_t *c)
{
    uint32_t na = ps->a_page[c->aslot], nt = ps->t_page[c->tslot];
    REEL_ASSERT(na <= REEL_IX_PAGE_MAX);
    REEL_ASSERT(nt <= REEL_IX_PAGE_MAX);
    return ((1.0f - AUTHOR_FLOOR) * d->author[na] + AUTHOR_FLOOR) * d->topic[nt];
}

/* The candidate for the next position: an exploration one when explore
 * (random order), else the best by score times diversity; the author rule
 * holds unless no candidate satisfies it. -1: none left. */
static int32_t pick(const feed_t *f, const page_state_t *ps, const div_table_t *d, bool explore,
                    float *mult)
{
    for (int pass = 0; pass < 2; pass++) {
        bool rule = pass == 0;
        if (explore)
            for (uint32_t i = 0; i < f->n; i++) {
                const cand_t *c = &f->c[i];
                if (!c->taken && (c->src & SRC_EXPLORE) && (!rule || author_ok(ps, c))) {
                    *mult = 1.0f;
                    return (int32_t)i;
                }
            }
        int32_t best = -1;
        float best_eff = 0;
        for (uint32_t i = 0; i < f->n; i++) {
            const cand_t *c = &f->c[i];
            if (c->taken || (rule && !author_ok(ps, c)))
                continue;
            float m = diversity(ps, d, c), eff = c->score * m;
            if (best < 0 || eff > best_eff) {
                best = (int32_t)i;
                best_eff = eff;
                *mult = m;
            }
        }
        if (best >= 0)
            return best;
    }
    return -1;
}

static void emit(reel_feed_item_t *it, const cand_t *c, bool explore, float mult, bool explain)
{
    memset(it, 0, sizeof(*it));
    it->post = c->post;
    it->author = c->author;
    it->score = c->score * mult;
    if (!explain)
        return;
    for (int i = 0; i < SIG_N; i++)
        it->reasons[it->nreasons++] = (reel_feed_reason_t){sig_name[i], c->part[i]};
    if (mult < 1.0f)
        it->reasons[it->nreasons++] = (reel_feed_reason_t){"diversity", mult};
    if (explore)
        it->reasons[it->nreasons++] = (reel_feed_reason_t){"exploration", 1.0f};
}

/* c is placed: its author enters the window of the last 9 (the oldest
 * leaves it) and the page's counts. */
static void note(page_state_t *ps, const cand_t *c)
{
    REEL_ASSERT(ps->nauthors < REEL_IX_AUTHOR_WINDOW - 1 + REEL_IX_PAGE_MAX);
    ps->authors[ps->nauthors] = c->author;
    ps->aslot[ps->nauthors++] = c->aslot;
    ps->a_win[c->aslot]++;
    if (ps->nauthors > REEL_IX_AUTHOR_WINDOW - 1) {
        uint16_t out = ps->aslot[ps->nauthors - REEL_IX_AUTHOR_WINDOW];
        if (out != SLOT_NONE) {
            REEL_ASSERT(ps->a_win[out] > 0);
            ps->a_win[out]--;
        }
    }
    ps->a_page[c->aslot]++;
    ps->t_page[c->tslot]++;
}

/* Exploration positions: n_explore = max(1, limit / 10) (rounded) for
 * pages of 2 or more, spread evenly over the lower half of the page (the
 * top half is the best by score): position
 * limit/2 + j * r / n + r / 2n, r = limit - limit/2 (12 and 17 of 20). */
static bool explore_slot(size_t pos, size_t limit)
{
    if (limit < 2)
        return false;
    size_t n = (limit + 5) / 10 ? (limit + 5) / 10 : 1;
    size_t top = limit / 2, rest = limit - top;
    for (size_t j = 0; j < n; j++)
        if (pos == top + j * rest / n + rest / (2 * n))
            return true;
    return false;
}

static int assemble(feed_t *f, ix_session_t *s, reel_views_txn_t *t, size_t limit, bool explain,
                    reel_feed_page_t *out)
{
    page_state_t *ps = calloc(1, sizeof(*ps));
    if (ps == NULL)
        return -ENOMEM;
    memcpy(ps->authors, s->last, sizeof(uint32_t) * s->nlast);
    ps->nauthors = s->nlast;
    slots_assign(f, ps);
    for (uint32_t i = 0; i < ps->nauthors; i++) /* the session's last: all in the window */
        if (ps->aslot[i] != SLOT_NONE)
            ps->a_win[ps->aslot[i]]++;
    const div_table_t d = div_table_make();
    int rc = 0;
    while (out->n < limit && rc == 0) {
        bool explore = explore_slot(out->n, limit);
        float mult = 1.0f;
        int32_t i = pick(f, ps, &d, explore, &mult);
        if (i < 0)
            break;
        cand_t *c = &f->c[i];
        c->taken = true;
        bool ok = true;
        if (t != NULL && (rc = views_ok(t, f->user, c->post, c->author, &ok)) != 0)
            break;
        if (!ok)
            continue;
        emit(&out->items[out->n++], c, explore && (c->src & SRC_EXPLORE), mult, explain);
        note(ps, c);
        roaring_bitmap_add(s->served, c->post);
    }
    uint32_t keep = ps->nauthors < REEL_IX_AUTHOR_WINDOW - 1 ? ps->nauthors : REEL_IX_AUTHOR_WINDOW - 1;
    memcpy(s->last, ps->authors + ps->nauthors - keep, sizeof(uint32_t) * keep);
    s->nlast = keep;
    free(ps);
    return rc;
}

static void interest_query(feed_t *f)
{
    const reel_index_t *idx = f->idx;
    f->has_interest = false;
    if (f->u == NULL || f->u->interest == NULL)
        return;
    memcpy(f->interest, f->u->interest, sizeof(float) * idx->dim);
    if (reel_vec_normalize(f->interest, idx->dim) > 0) {
        reel_vecs_query(&idx->vecs, f->interest, f->q8, &f->qs);
        f->has_interest = true;
    }
    f->tag_max = 0;
    for (uint32_t i = 0; i < f->u->ntags; i++)
        f->tag_max = fabsf(f->u->tag_w[i]) > f->tag_max ? fabsf(f->u->tag_w[i]) : f->tag_max;
}

static int for_you(reel_index_t *idx, reel_views_txn_t *t, uint64_t user, size_t limit,
                   const reel_feed_cursor_t *cursor, bool explain, reel_feed_page_t *out)
{
    feed_t *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -ENOMEM;
    pthread_mutex_lock(&idx->sess_mu);
    ix_session_t *s = session_get(idx, user, cursor);
    int rc = s == NULL ? -ENOMEM : 0;
    if (rc == 0) {
        f->idx = idx;
        f->user = user;
        f->u = ix_user(idx, user);
        f->served = s->served;
        f->rng = idx->seed ^ (user * 0x9e3779b97f4a7c15ull) ^ (s->id << 20) ^ s->pages;
        interest_query(f);
        src_following(f);
        rc = src_ann(f);
    }
    if (rc == 0) {
        src_tags(f);
        src_rising(f);
        src_popular(f);
        src_windowed(f);
        src_explore(f);
        src_backfill(f, f->n + (uint32_t)limit * 2 > REEL_IX_CAND_MAX ? REEL_IX_CAND_MAX
                                                                      : f->n + (uint32_t)limit * 2);
        for (uint32_t i = 0; i < f->n; i++)
            score_candidate(f, &f->c[i]);
        rc = assemble(f, s, t, limit, explain, out);
    }
    if (rc == 0) {
        s->pages++;
        out->has_next = out->n == limit &&
                        roaring_bitmap_get_cardinality(s->served) + limit <= REEL_IX_SESSION_SERVED_MAX;
        out->next = (reel_feed_cursor_t){s->id, s->pages};
    }
    pthread_mutex_unlock(&idx->sess_mu);
    free(f);
    return rc;
}

/* ---- following ---- */

static int cmp_u32_desc(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return a > b ? -1 : a < b;
}

/* Posts of followed users, newest first (by post id: ids grow with time),
 * from just below cursor b. */
static int following(reel_index_t *idx, uint64_t user, size_t limit,
                     const reel_feed_cursor_t *cursor, reel_feed_page_t *out)
{
    const ix_user_t *u = ix_user(idx, user);
    uint64_t below = cursor != NULL && cursor->b != 0 ? cursor->b : UINT64_MAX;
    if (u == NULL || u->following == NULL)
        return 0;
    uint64_t nf = roaring_bitmap_get_cardinality(u->following);
    if (nf > REEL_IX_FOLLOWEES_SCAN_MAX)
        nf = REEL_IX_FOLLOWEES_SCAN_MAX;
    uint32_t *got = malloc(sizeof(uint32_t) * (nf * (limit + 1) + 1));
    if (got == NULL)
        return -ENOMEM;
    size_t n = 0, scanned = 0;
    bool cut = false;
    roaring_uint32_iterator_t *it = roaring_create_iterator(u->following);
    for (; it != NULL && it->has_value && scanned < nf; roaring_advance_uint32_iterator(it), scanned++) {
        const ix_user_t *a = ix_user(idx, it->current_value);
        if (a == NULL || a->deleted)
            continue;
        size_t lo = 0, hi = a->nposts; /* first index with id >= below */
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (a->posts[mid] < below)
                lo = mid + 1;
            else
                hi = mid;
        }
        size_t took = 0, walked = 0;
        for (size_t i = lo; i > 0 && took <= limit; i--, walked++) {
            if (walked >= REEL_IX_FOLLOWING_SCAN_PER_AUTHOR * (limit + 1)) {
                cut = true;
                break;
            }
            const ix_post_t *p = ix_post(idx, a->posts[i - 1]);
            if (p != NULL && ix_visible(p)) {
                got[n++] = a->posts[i - 1];
                took++;
            }
        }
    }
    roaring_free_uint32_iterator(it);
    qsort(got, n, sizeof(uint32_t), cmp_u32_desc);
    for (size_t i = 0; i < n && out->n < limit; i++) {
        reel_feed_item_t *item = &out->items[out->n++];
        memset(item, 0, sizeof(*item));
        item->post = got[i];
        item->author = idx->posts[got[i]].author;
        item->score = 1.0f;
    }
    out->has_next = out->n == limit && (n > limit || cut);
    if (out->has_next)
        out->next = (reel_feed_cursor_t){0, out->items[out->n - 1].post};
    free(got);
    return 0;
}

int reel_index_feed(reel_index_t *idx, reel_views_txn_t *t, uint64_t user, reel_feed_kind_t kind,
                    size_t limit, const reel_feed_cursor_t *cursor, bool explain,
                    reel_feed_page_t *out)
{
    if (idx == NULL || out == NULL || out->items == NULL || limit == 0 ||
        limit > REEL_IX_PAGE_MAX || user == 0)
        return REEL_EUSAGE;
    out->n = 0;
    out->has_next = false;
    out->next = (reel_feed_cursor_t){0, 0};
    pthread_rwlock_rdlock(&idx->lock);
    int rc = kind == REEL_FEED_FOLLOWING ? following(idx, user, limit, cursor, out)
                                         : for_you(idx, t, user, limit, cursor, explain, out);
    pthread_rwlock_unlock(&idx->lock);
    return rc;
}

/* ---- trending ---- */

typedef struct trend_acc {
    const reel_index_t *idx;
    uint64_t from, to; /* (from, to] */
    uint64_t posts;
    double score;
} trend_acc_t;

static bool trend_visit(uint32_t p, void *arg)
{
    trend_acc_t *a = arg;
    const ix_post_t *post = ix_post(a->idx, p);
    if (post != NULL && ix_visible(post) && post->created_at > a->from && post->created_at <= a->to) {
        a->posts++;
        a->score += 1.0 + reel__ix_heat_now(a->idx, post);
    }
    return true;
}

static bool trend_above(const reel_trending_tag_t *x, const reel_trending_tag_t *y)
{
    if (x->score != y->score)
        return x->score > y->score;
    if (x->posts != y->posts)
        return x->posts > y->posts;
    return strcmp(x->tag, y->tag) < 0;
}

int reel_index_trending(reel_index_t *idx, uint64_t window_ms, size_t limit,
                        reel_trending_tag_t *out, size_t *n_out)
{
    if (idx == NULL || out == NULL || n_out == NULL || limit == 0 || limit > REEL_IX_TRENDING_MAX)
        return REEL_EUSAGE;
    *n_out = 0;
    pthread_rwlock_rdlock(&idx->lock);
    uint64_t span = (uint64_t)REEL_IX_TAG_BUCKETS * REEL_IX_TAG_BUCKET_MS;
    if (window_ms > span)
        window_ms = span;
    trend_acc_t a = {idx, idx->now_ms > window_ms ? idx->now_ms - window_ms : 0, idx->now_ms, 0, 0};
    uint64_t b_from = a.from / REEL_IX_TAG_BUCKET_MS, b_to = a.to / REEL_IX_TAG_BUCKET_MS;
    for (uint32_t i = 0; i < idx->ntags; i++) {
        const ix_tag_t *t = &idx->tags[i];
        a.posts = 0;
        a.score = 0;
        for (uint32_t k = 0; k < REEL_IX_TAG_BUCKETS; k++)
            if (t->bm[k] != NULL && t->bucket_no[k] >= b_from && t->bucket_no[k] <= b_to)
                roaring_iterate(t->bm[k], trend_visit, &a);
        if (a.posts == 0)
            continue;
        reel_trending_tag_t row = {.posts = a.posts, .score = a.score};
        memcpy(row.tag, t->name, t->len + 1);
        if (*n_out == limit && !trend_above(&row, &out[limit - 1]))
            continue;
        size_t j = *n_out < limit ? (*n_out)++ : limit - 1;
        for (; j > 0 && trend_above(&row, &out[j - 1]); j--)
            out[j] = out[j - 1];
        out[j] = row;
    }
    pthread_rwlock_unlock(&idx->lock);
    return 0;
}
