/*
 * index.h: the recommendation index: what ranks GET /v1/users/{id}/feed and
 * /v1/tags/trending in milliseconds, kept in memory and current with the log.
 * docs/RANKING.md is the reference for the ranking (signals, sources,
 * diversity, exploration); this header is the module's contract.
 *
 * What it keeps (all bounded: index/limits.h):
 *  - per post: author, time, flags, tags, engagement (a decayed "heat",
 *    popularity and windowed popularity; not the counts, which the views
 *    keep), and a vector: the
 *    client's embedding, or one derived from the prompt's words, word pairs
 *    and the tags by feature hashing (reel_index_embed), L2-normalised and
 *    quantised to int8 with a scale. Vectors learn online (Monolith-style):
 *    a like or a completed view moves the post 5% towards the user's
 *    interest vector.
 *  - a tag index: per tag, a roaring bitmap of post ids per 6 h bucket.
 *  - per user: an interest vector and tag affinities with exponential decay
 *    in engine time (pulled towards what they create, like, remix, watch to
 *    the end, see_more; pushed away by see_less and not_interested), the
 *    hidden creators, follows and blocks, and every post viewed, liked or
 *    marked not_interested (a roaring bitmap, kept for good: a feed never
 *    shows those).
 *  - an HNSW graph over public, visible posts (index/ann.h).
 *  - feed sessions: the for_you cursor names a session whose served posts
 *    are a bitmap, so pages never repeat a post.
 *
 * "Now" is the engine's clock: the time of the newest applied event, so a
 * replayed world ranks as it did then.
 *
 * Lifecycle (reeld):
 *    reel_index_open(&opts, &idx);
 *    reel_engine_open(dir, {.on_apply = reel_index_apply, .on_apply_ctx = idx}, &eng);
 *    reel_engine_read_begin(eng, &t);
 *    reel_index_load(idx, t, reel_engine_log(eng));   -- before writes are taken
 *    reel_views_read_end(t);
 *    ... serve: reel_index_feed / reel_index_trending on the loop thread ...
 *    reel_engine_close(eng); reel_index_close(idx);
 * Events whose offset is below the log's end at load are ignored by apply
 * (they are in the loaded state already), so load must run before the
 * engine takes commands (then no event is lost or counted twice).
 *
 * Threads. reel_index_apply runs on the engine's writer thread (on_apply)
 * and takes the index's rwlock in write mode for the group; feed and
 * trending take it in read mode, so any number of readers (the loop thread,
 * benchmarks) rank at once and never see half a group. Feed sessions have
 * a mutex of their own (a read may start a session). A feed holds the
 * read lock for the whole page (~1 ms): apply waits at most that long.
 * Neither lock is held while calling the engine; views reads use the
 * caller's snapshot t, which never waits for the writer.
 *
 * Errors: 0, REEL_EUSAGE (bad arguments), -ENOMEM; load also the log's and
 * views' errors. Apply cannot fail: an event it cannot index (ids beyond
 * the bounds, no memory) is counted in reel_index_stats.dropped.
 */
#ifndef REEL_INDEX_INDEX_H
#define REEL_INDEX_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/event.h"
#include "engine/log.h"
#include "engine/views.h"
#include "index/limits.h"

typedef struct reel_index reel_index_t;

typedef struct reel_index_options {
    uint32_t dim;   /* vector dimension (the engine's --dim); 0: 64 */
    uint64_t seed;  /* exploration and HNSW levels; 0: a fixed default */
    uint32_t ann_generation_nodes; /* nodes of one ANN generation (tests);
                                    * 0: REEL_IX_ANN_GEN_NODES */
} reel_index_options_t;

/* Creates an empty index. Errors: REEL_EUSAGE (dim over REEL_IX_DIM_MAX,
 * ann_generation_nodes over REEL_IX_ANN_NODES_MAX),
 * -ENOMEM. */
int reel_index_open(const reel_index_options_t *opts, reel_index_t **out);
/* Frees everything. NULL is a no-op. No apply or read may be running. */
void reel_index_close(reel_index_t *idx);

/* Folds evs[0..n) (one appended group, offsets ascending) into the index:
 * the signature of reel_engine_apply_cb, so ctx is the index. Events below
 * the offset reached by load are skipped. Never fails (see Errors). */
void reel_index_apply(void *ctx, const reel_event_t *evs, size_t n);

/* Builds the state at start from snapshot t: every post with its body
 * (vector, tags) and counts, users, follows, likes (as seen posts); then
 * replays the recent window of log (the newest REEL_IX_LOAD_EVENTS_MAX
 * events, those within REEL_IX_LOAD_WINDOW_MS of the newest) for what the
 * views do not keep: engagement heat, interest vectors and tag affinities,
 * posts viewed, not_interested, hidden creators, blocks (blocks older than
 * the window are checked against t at query time). log may be NULL (views
 * only). Must run on an empty index, before the engine takes commands.
 * Errors: REEL_EUSAGE, -ENOMEM, views and log errors. */
int reel_index_load(reel_index_t *idx, reel_views_txn_t *t, reel_log_t *log);

typedef enum reel_feed_kind {
    REEL_FEED_FOR_YOU = 0,   /* ranked (docs/RANKING.md) */
    REEL_FEED_FOLLOWING = 1, /* followed users' posts, newest first */
} reel_feed_kind_t;

/* The cursor: two integers the server writes as its opaque cursor string
 * (reel_cursor_encode) and parses back. (0, 0): the first page.
 * for_you: (session id, pages served); following: (0, last post id). */
typedef struct reel_feed_cursor {
    uint64_t a;
    uint64_t b;
} reel_feed_cursor_t;

typedef struct reel_feed_reason {
    const char *signal; /* static: "similarity", "tag_affinity", ... */
    float value;        /* its contribution to the score */
} reel_feed_reason_t;

typedef struct reel_feed_item {
    uint64_t post;
    uint64_t author;
    float score;
    uint32_t nreasons; /* 0 unless explain */
    reel_feed_reason_t reasons[REEL_IX_REASONS_MAX];
} reel_feed_item_t;

/* A page: items is the caller's array of at least `limit` entries. */
typedef struct reel_feed_page {
    reel_feed_item_t *items; /* in: the caller's array */
    size_t n;                /* out: items filled */
    bool has_next;           /* out: false: next_cursor is null */
    reel_feed_cursor_t next; /* out: valid when has_next */
} reel_feed_page_t;

/* One page of user's feed. limit 1..REEL_IX_PAGE_MAX (the caller clamps
 * the API's limit). cursor NULL or (0, 0): the first page; for_you starts a
 * new session. t (may be NULL) is the caller's views snapshot: each item
 * chosen is checked against it too (live, public, visible, no block either
 * way, no not_interested or hide_creator on it), which covers what
 * happened before the load window. The server checks that the user exists
 * (404) before. Filters, ordering and cursor semantics: docs/RANKING.md.
 * Errors: REEL_EUSAGE, -ENOMEM, views errors. */
int reel_index_feed(reel_index_t *idx, reel_views_txn_t *t, uint64_t user, reel_feed_kind_t kind,
                    size_t limit, const reel_feed_cursor_t *cursor, bool explain,
                    reel_feed_page_t *out);

/* One trending tag. */
typedef struct reel_trending_tag {
    char tag[REEL_TAG_LEN_MAX + 1]; /* NUL-terminated */
    uint64_t posts;                 /* public, visible posts with the tag in the window */
    double score;                   /* posts + their engagement in the window */
} reel_trending_tag_t;

/* GET /v1/tags/trending: tags of posts created in (now - window_ms, now],
 * highest score first (ties: more posts, then tag bytes), into
 * out[0..limit) (limit 1..REEL_IX_TRENDING_MAX); *n_out says how many.
 * Windows are cut at REEL_IX_TAG_BUCKETS buckets (7 days).
 * Errors: REEL_EUSAGE. */
int reel_index_trending(reel_index_t *idx, uint64_t window_ms, size_t limit,
                        reel_trending_tag_t *out, size_t *n_out);

/* Counters and sizes. */
typedef struct reel_index_stats {
    uint64_t now_ms;       /* engine time of the newest applied event */
    uint64_t next_offset;  /* the offset apply expects next */
    uint64_t posts;        /* posts known (drafts, hidden, deleted included) */
    uint64_t users;        /* users with a profile */
    uint64_t tags;         /* distinct tags */
    uint64_t ann_nodes;    /* nodes in the HNSW graph (deleted ones included) */
    uint64_t dropped;      /* events (or parts) not indexed: bounds, memory */
    uint64_t bytes_posts;  /* memory of the post table, vectors, tags, HNSW */
    uint64_t bytes_total;  /* all of it, roaring bitmaps and profiles included */
} reel_index_stats_t;
void reel_index_stats(reel_index_t *idx, reel_index_stats_t *out);

/* The derived embedding (docs/RANKING.md, "Post vectors"): words of prompt
 * (ASCII letters and digits, lower-cased, 2 bytes or more), each pair of
 * adjacent words, and each tag, hashed (XXH3-64, seed 0) into dim buckets
 * with a hash-given sign; weights word 1, pair 0.5, tag 2; then
 * L2-normalised. All zero (no feature) gives a zero vector. out: dim floats. */
void reel_index_embed(const char *prompt, size_t prompt_len, const reel_str_t *tags,
                      uint32_t ntags, uint32_t dim, float *out);

#endif /* REEL_INDEX_INDEX_H */
