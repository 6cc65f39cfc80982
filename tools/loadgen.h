/*
 * loadgen.h: `reel loadgen`, a synthetic world deterministic from a seed
 * (tools/loadgen.c), written straight to a data directory or sent to a
 * running reeld (tools/loadgen_http.c); `reel bench tools` drives the
 * first.
 *
 * The world. Users 1..N are ranked by popularity: user k draws followers
 * and authorship with weight 1/k^s (Zipf, s = 1.0 for follows, 0.9 for
 * authorship), so at the defaults (100,000 users, 1,000,000 events, of
 * which ~470,000 first follows) the first creators have tens of
 * thousands of followers (seed 1: 33,498, 18,425, 12,502; the test
 * loadgen::default_world_has_creators_with_tens_of_thousands). Topics (LG_TOPICS of
 * them, each with a few words) have Zipf interest too; every user has a
 * favourite topic. A post belongs to its author's topic (mostly): its
 * prompt is made of the topic's words and its tags are the topic's name
 * and one word, so embeddings can be derived from the text. Posts come
 * in generation bursts (generation.requested, .claimed, then .completed
 * with its post.created in one group), at most LG_GEN_PER_DAY per user
 * and calendar day (so never over the API's 30 in any 24 h); past that,
 * and for a share of posts, a post is created directly. Some posts remix
 * an earlier one (remix_root kept). Between posts come views (watch time
 * and completion), likes (never twice), comments, feedback and more
 * follows (never twice, never oneself), in proportions set by the mix.
 *
 * Times come from a synthetic clock: the events spread evenly over
 * --days days from --start (ms, default 2026-01-01T00:00:00Z); every
 * event of an append group carries the group's first time. So the same
 * options give the same events, groups and times: the same log records
 * and the same views (reel views-hash).
 */
#ifndef REEL_TOOLS_LOADGEN_H
#define REEL_TOOLS_LOADGEN_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/event.h"

/* 2026-01-01T00:00:00Z in ms. */
#define LG_START_MS_DEFAULT 1767225600000ull
/* Generations one user starts per calendar day at most (half the API's
 * rolling 24 h quota of 30: a 24 h window spans two calendar days). */
#define LG_GEN_PER_DAY 15u
/* Topics of the world. */
#define LG_TOPICS 24u

/* What the mix draws between posts, by weight. */
typedef enum lg_action {
    LG_VIEW = 0,
    LG_LIKE,
    LG_COMMENT,
    LG_FEEDBACK,
    LG_FOLLOW,
    LG_ACTIONS
} lg_action_t;

typedef struct lg_opts {
    uint64_t seed;
    uint64_t users;       /* 1..2^31 */
    uint64_t posts;       /* posts over the whole run */
    uint64_t events;      /* events in all (users, first follows, activity) */
    uint64_t follows;     /* first follows per user, on average */
    uint64_t start_ms;    /* the synthetic clock's start */
    uint64_t days;        /* the span of the events */
    uint32_t group;       /* events per append group (--data) */
    uint32_t mix[LG_ACTIONS]; /* weights */
    uint32_t gen_pct;     /* share of posts made through generations, % */
    uint32_t remix_pct;   /* share of posts that remix an earlier one, % */
} lg_opts_t;

/* Defaults: 100,000 users, 20,000 posts, 1,000,000 events, 20 follows
 * (bounded to half the events after the users: ~4.5 a user), so the
 * first creators have tens of thousands of followers. */
void lg_opts_default(lg_opts_t *o);
/* Whether o is in range; prints why not. Returns 0 or REEL_EUSAGE. */
int lg_opts_check(const lg_opts_t *o);
/* --mix view=60,like=25,...; 0 or REEL_EUSAGE (message printed). */
int lg_parse_mix(const char *s, lg_opts_t *o);

typedef struct lg_world lg_world_t;

/* Allocates the world (its tables scale with users, posts, events).
 * Returns 0, REEL_EUSAGE (options out of range; message printed) or
 * -ENOMEM. */
int lg_world_new(const lg_opts_t *o, lg_world_t **out);
void lg_world_free(lg_world_t *w);

/* The next event into *ev (its strings valid until the next call) with
 * its time; *joined: it must go in the same append group as the one
 * before (a post.created after its generation.completed). Returns false
 * when the world has made its o->events events. */
bool lg_world_next(lg_world_t *w, reel_event_t *ev, uint64_t *at_ms, bool *joined);
/* Events made so far. */
uint64_t lg_world_made(const lg_world_t *w);

/* Writes the world into the empty data directory dir: the log, appended
 * directly in large groups with many in flight, then (views) the views
 * folded from it. *log_ns: time of the log part. Returns 0 or an error
 * (message printed). */
int lg_write_data(const lg_opts_t *o, const char *dir, bool views, bool quiet,
                  uint64_t *log_ns, uint64_t *views_ns);

/* Sends the world to a running reeld (tools/loadgen_http.c). */
int lg_run_server(const lg_opts_t *o, const char *url, uint32_t conns, const char *token);

#endif /* REEL_TOOLS_LOADGEN_H */
