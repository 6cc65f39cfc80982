/*
 * limits.h: every limit and constant of the feed index, in one place, with
 * the arithmetic behind it. A bound of the index that is not here does not
 * exist. Ranking weights live in rank.c (one scoring function) and are
 * documented in docs/RANKING.md.
 */
#ifndef REEL_INDEX_LIMITS_H
#define REEL_INDEX_LIMITS_H

/* Ids the index keeps. Post and user ids are dense (the engine assigns
 * 1, 2, ...), so tables are arrays indexed by id, and roaring bitmaps (32-bit)
 * hold them. 16 Mi posts and 16 Mi users: far beyond one process's feed
 * (at ~200 bytes a post that is ~3.2 GiB). Events about larger ids are
 * counted (reel_index_stats.dropped) and otherwise ignored. */
#define REEL_IX_POSTS_MAX (1u << 24)
#define REEL_IX_USERS_MAX (1u << 24)
/* Distinct tags: 1 Mi; more are dropped from the tag index (the posts stay). */
#define REEL_IX_TAGS_MAX (1u << 20)
/* Embedding dimension: the engine's bound (REEL_DIM_MAX is 1024); vectors
 * are int8 so 1 KiB a post at most. */
#define REEL_IX_DIM_MAX 1024u
#define REEL_IX_DIM_DEFAULT 64u

/* Tag index: one roaring bitmap of post ids per tag per time bucket of
 * 6 h; the newest 28 buckets (7 days) are kept per tag, older ones freed.
 * Trending windows longer than 7 days see 7 days. */
#define REEL_IX_TAG_BUCKET_MS (6ull * 3600 * 1000)
#define REEL_IX_TAG_BUCKETS 28u

/* A user's tag affinities: the 32 strongest (decayed) are kept; a new tag
 * replaces the weakest. */
#define REEL_IX_USER_TAGS 32u
/* Half-life of interests (vector and tag affinities), engine time: 7 days. */
#define REEL_IX_INTEREST_HALF_LIFE_MS (7ull * 24 * 3600 * 1000)
/* Half-life of a post's engagement heat ("rising"): 6 h. */
#define REEL_IX_HEAT_HALF_LIFE_MS (6ull * 3600 * 1000)
/* Half-life of a post's popularity (its explicit engagement: likes,
 * remixes, comments, decayed slowly: "popular these weeks"): 10 days
 * (tuned on MovieLens 100K, docs/RANKING.md: 7 to 15 days score alike;
 * a 30-day half-life is worse). */
#define REEL_IX_POP_HALF_LIFE_MS (10ull * 24 * 3600 * 1000)
/* Popular posts tracked: the 512 most popular (as rising). */
#define REEL_IX_POPULAR_MAX 512u
/* Windowed popularity: a post's explicit engagement (like 1, remix 2,
 * comment 0.5) in the last 30 days of engine time, counted exactly from a
 * ring of those events (at most 4 Mi: when full, the oldest leaves the
 * window early); the 512 largest are tracked (as popular). */
#define REEL_IX_WINDOW_MS (30ull * 24 * 3600 * 1000)
#define REEL_IX_WINDOW_EVENTS_MAX (1u << 22)
#define REEL_IX_WINDOWED_MAX 512u
/* Freshness decay of a post (score): half-life 24 h. */
#define REEL_IX_FRESH_HALF_LIFE_MS (24ull * 3600 * 1000)
/* Rising posts tracked: the 512 hottest (a linear scan per engagement
 * event: 512 compares). */
#define REEL_IX_RISING_MAX 512u

/* Online learning rate: a like or completed view moves the post's vector
 * by 5% towards the engaging user's interest (then renormalised). */
#define REEL_IX_LEARN_RATE 0.05f

/* ANN (HNSW): M links a node per upper layer, 2M at layer 0; efConstruction
 * 100; a graph holds at most 4 Mi nodes. The index keeps recent posts in two
 * generations of REEL_IX_ANN_GEN_NODES nodes each (index.c, "ANN
 * generations"): when the newer fills, the older is dropped and a new one
 * starts, so the graphs always hold the newest 2 to 4 Mi posts. Layers at
 * most 16 (P(level >= 16) = M^-16). */
#define REEL_IX_ANN_M 12u
#define REEL_IX_ANN_EF_CONSTRUCTION 100u
#define REEL_IX_ANN_NODES_MAX (1u << 22)
#define REEL_IX_ANN_GEN_NODES (1u << 21)
#define REEL_IX_ANN_LEVELS_MAX 16u
/* Results one ANN query returns at most, and its search width bound. */
#define REEL_IX_ANN_K_MAX 1024u
#define REEL_IX_ANN_EF_MAX 2048u

/* Feed. A page holds 200 items at most (the API's max). */
#define REEL_IX_PAGE_MAX 200u
/* Candidates per source and in all (X scores <= 500 per source, ~1500 in
 * all). */
#define REEL_IX_CAND_FOLLOWING_MAX 400u
#define REEL_IX_CAND_ANN 200u
#define REEL_IX_CAND_TAGS_TOP 5u   /* the user's strongest tags used */
#define REEL_IX_CAND_PER_TAG 80u
#define REEL_IX_CAND_RISING 100u
#define REEL_IX_CAND_POPULAR 200u
#define REEL_IX_CAND_WINDOWED 200u
#define REEL_IX_CAND_EXPLORE 64u
#define REEL_IX_CAND_MAX 2048u
/* Followees scanned per page (newest follows are not privileged: the
 * followee bitmap is scanned in id order, up to this many). */
#define REEL_IX_FOLLOWEES_SCAN_MAX 2000u
/* Posts per followee taken as candidates: the newest 4. */
#define REEL_IX_CAND_PER_FOLLOWEE 4u
/* Exploration draws from the newest 10,000 posts. */
#define REEL_IX_EXPLORE_WINDOW 10000u
/* Backfill: when the sources leave a page short, posts are scanned newest
 * first, at most this many ids a page. */
#define REEL_IX_BACKFILL_SCAN_MAX 20000u
/* Post ids the following feed walks back per followee per page. */
#define REEL_IX_FOLLOWING_SCAN_PER_AUTHOR 64u

/* Feed sessions (the for_you cursor): a ring of 64 Ki sessions; session
 * id s lives in slot s % REEL_IX_SESSIONS_MAX until 64 Ki newer sessions
 * evict it (then its cursor starts a new session). A session serves 5,000
 * posts at most (then next_cursor is null): 25 pages of 200. */
#define REEL_IX_SESSIONS_MAX (1u << 16)
#define REEL_IX_SESSION_SERVED_MAX 5000u

/* Diversity: the contract's rule, 2 items of an author in any 10
 * consecutive ones. */
#define REEL_IX_AUTHOR_WINDOW 10u
#define REEL_IX_AUTHOR_PER_WINDOW 2u

/* Start-up: reel_index_load replays at most the newest 1 Mi events of the
 * log (engagement, profiles, views seen), and of those only the ones within
 * 7 days of engine time of the newest. */
#define REEL_IX_LOAD_EVENTS_MAX (1u << 20)
#define REEL_IX_LOAD_WINDOW_MS (7ull * 24 * 3600 * 1000)

/* Reasons per item with explain. */
#define REEL_IX_REASONS_MAX 8u
/* Trending tags per answer. */
#define REEL_IX_TRENDING_MAX 200u

_Static_assert(REEL_IX_POSTS_MAX <= (1ull << 32), "post ids fit roaring's 32 bits");
_Static_assert(REEL_IX_USERS_MAX <= (1ull << 32), "user ids fit roaring's 32 bits");
_Static_assert(REEL_IX_ANN_NODES_MAX <= REEL_IX_POSTS_MAX, "nodes are posts");
_Static_assert(REEL_IX_ANN_GEN_NODES <= REEL_IX_ANN_NODES_MAX, "a generation is one graph");
_Static_assert(REEL_IX_CAND_FOLLOWING_MAX + REEL_IX_CAND_ANN +
                       REEL_IX_CAND_TAGS_TOP * REEL_IX_CAND_PER_TAG + REEL_IX_CAND_RISING +
                       REEL_IX_CAND_POPULAR +
                       REEL_IX_CAND_EXPLORE + REEL_IX_PAGE_MAX <= REEL_IX_CAND_MAX,
               "every source (and a page of backfill) fits the candidate set");
_Static_assert(REEL_IX_CAND_ANN <= REEL_IX_ANN_K_MAX, "an ANN query gives the ANN share");
_Static_assert(REEL_IX_SESSION_SERVED_MAX >= 2 * REEL_IX_PAGE_MAX, "a session holds pages");

#endif /* REEL_INDEX_LIMITS_H */
