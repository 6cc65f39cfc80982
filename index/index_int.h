/*
 * index_int.h: the index's internals, shared by index.c (state, apply,
 * load), embed.c and rank.c (feed, trending). Not a contract: index.h is.
 *
 * Invariants.
 *  1. Every field below is written only under idx->lock in write mode
 *     (apply, load), except the sessions, which sess_mu guards.
 *  2. A post is in the HNSW graph and in its tags' buckets exactly when it
 *     is public and neither hidden nor deleted (drafts join on publish).
 *  3. ids: posts[p] for p < nposts_cap, users[u] for u < nusers_cap; both
 *     below REEL_IX_POSTS_MAX / REEL_IX_USERS_MAX.
 */
#ifndef REEL_INDEX_INT_H
#define REEL_INDEX_INT_H

#include <pthread.h>
#include <roaring/roaring.h>

#include "index/ann.h"
#include "index/index.h"

#define IX_P_EXISTS 0x01u
#define IX_P_PUBLIC 0x02u
#define IX_P_HIDDEN 0x04u
#define IX_P_DELETED 0x08u

/* One post: 40 bytes, plus its vector in vecs and its tags in tag_pool.
 * No engagement counts (likes, views, ...): the views keep those, and
 * nothing in the ranking reads them (heat, pop_log and win are what it
 * ranks by). */
typedef struct ix_post {
    uint64_t created_at;  /* engine time of post.created */
    uint32_t author;      /* user id */
    uint32_t tags_off;    /* first tag id in idx->tag_pool */
    uint8_t ntags;        /* tag ids there */
    uint8_t flags;        /* IX_P_* */
    uint16_t top_pos[3];  /* slot + 1 in the rising, popular, windowed heaps; 0: not in */
    float heat_log;       /* ln(heat * e^((t - epoch)/tau)): see heat_now() */
    float pop_log;        /* the same with the popularity half-life: see pop_now() */
    float win;            /* explicit engagement in the window (REEL_IX_WINDOW_MS) */
} ix_post_t;
_Static_assert(sizeof(ix_post_t) == 40, "a post's row is 40 bytes (bytes_per_post)");

/* One user's profile. */
typedef struct ix_user {
    float *interest;            /* dim floats (decayed sum), NULL until first signal */
    uint64_t interest_at;       /* engine time the decay was applied to */
    uint64_t tags_at;           /* same, for tag_w */
    uint32_t ntags;             /* affinities kept */
    uint32_t tag_id[REEL_IX_USER_TAGS];
    float tag_w[REEL_IX_USER_TAGS];
    roaring_bitmap_t *following;  /* users followed */
    roaring_bitmap_t *blocks;     /* users this one blocked */
    roaring_bitmap_t *blocked_by; /* users who blocked this one */
    roaring_bitmap_t *hidden;     /* creators hidden (hide_creator) */
    roaring_bitmap_t *excluded;   /* posts viewed, liked, not_interested */
    uint32_t *posts;            /* own posts, ascending id */
    uint32_t nposts, posts_cap;
    bool deleted;
} ix_user_t;

/* A tag: its name and a ring of time buckets of post ids. */
typedef struct ix_tag {
    char *name;
    uint32_t len;
    uint64_t bucket_no[REEL_IX_TAG_BUCKETS]; /* created_at / BUCKET_MS of slot */
    roaring_bitmap_t *bm[REEL_IX_TAG_BUCKETS];
} ix_tag_t;

/* A feed session: what a for_you cursor stands for. */
typedef struct ix_session {
    uint64_t id;           /* 0: free slot */
    uint64_t user;
    uint64_t pages;
    roaring_bitmap_t *served;
    uint32_t nlast;        /* authors of the last items served, oldest first */
    uint32_t last[REEL_IX_AUTHOR_WINDOW - 1];
} ix_session_t;

/* An explicit engagement in the window: post, time (s), weight. */
typedef struct ix_win_ev {
    uint32_t post;
    uint32_t at_s;
    float w;
} ix_win_ev_t;

typedef struct ix_rising {
    uint32_t post;
    float heat_log;
} ix_rising_t;

struct reel_index {
    pthread_rwlock_t lock;
    uint32_t dim;
    uint64_t seed;
    uint64_t now_ms;        /* newest applied event's time */
    uint64_t epoch_ms;      /* heat_log's zero (the first event's time) */
    bool epoch_set;
    uint64_t next_offset;   /* apply skips offsets below */
    uint64_t dropped;

    ix_post_t *posts;
    uint32_t posts_cap;
    uint32_t max_post;      /* largest post id seen */
    uint64_t nposts;
    reel_vecs_t vecs;
    reel_ann_t *ann;        /* the newer ANN generation: posts go in here */
    reel_ann_t *ann_old;    /* the older one, or NULL (index.c, "ANN generations") */
    uint32_t ann_gen_nodes; /* nodes of one generation */
    uint64_t ann_gens;      /* generations started */

    uint32_t *tag_pool;     /* tag ids of every post, appended */
    uint64_t tag_pool_n, tag_pool_cap;
    ix_tag_t *tags;         /* by tag id */
    uint32_t ntags, tags_cap;
    uint32_t *tag_hash;     /* open addressing: tag id + 1, 0 empty */
    uint32_t tag_hash_cap;

    ix_user_t **users;
    uint32_t users_cap;
    uint64_t nusers;
    /* Deleted users (as ix_user_t.deleted): what the feed's filter asks of
     * every candidate's author, without loading the author's profile (that
     * load, a cache miss a candidate, was half of cand_add: perf). NULL
     * until a user is deleted. */
    roaring_bitmap_t *users_deleted;

    /* Top lists: min-heaps by value (a post's slot in ix_post_t.top_pos). */
    ix_rising_t rising[REEL_IX_RISING_MAX];
    uint32_t nrising;
    ix_rising_t popular[REEL_IX_POPULAR_MAX]; /* by pop_log */
    uint32_t npopular;
    ix_rising_t windowed[REEL_IX_WINDOWED_MAX]; /* by win (not a log) */
    uint32_t nwindowed;
    ix_win_ev_t *win_ring;  /* the window's events, oldest at win_head */
    uint32_t win_cap, win_head, win_n;

    pthread_mutex_t sess_mu;
    ix_session_t *sessions; /* REEL_IX_SESSIONS_MAX */
    uint64_t next_session;
};

/* Post p when known, else NULL. */
static inline ix_post_t *ix_post(const reel_index_t *idx, uint64_t p)
{
    if (p == 0 || p >= idx->posts_cap || !(idx->posts[p].flags & IX_P_EXISTS))
        return NULL;
    return &idx->posts[p];
}

static inline ix_user_t *ix_user(const reel_index_t *idx, uint64_t u)
{
    return u < idx->users_cap ? idx->users[u] : NULL;
}

static inline bool ix_visible(const ix_post_t *p)
{
    return (p->flags & (IX_P_EXISTS | IX_P_PUBLIC | IX_P_HIDDEN | IX_P_DELETED)) ==
           (IX_P_EXISTS | IX_P_PUBLIC);
}

/* The post's heat (decayed engagement) at now. */
float reel__ix_heat_now(const reel_index_t *idx, const ix_post_t *p);
/* The post's popularity (engagement decayed with REEL_IX_POP_HALF_LIFE_MS)
 * at now. */
float reel__ix_pop_now(const reel_index_t *idx, const ix_post_t *p);

/* The k posts of both ANN generations most similar to x, best first
 * (reel_ann_search's contract, over the two graphs). */
int reel__ix_ann_search(const reel_index_t *idx, const float *x, size_t k, size_t ef,
                        reel_ann_hit_t *out, size_t *n_out);

#endif /* REEL_INDEX_INT_H */
