/*
 * reads.h: the API's reads (GET endpoints over the views), answered on the
 * caller's thread from one short read snapshot each. No libuv: the
 * server, tools and tests can call it.
 *
 * Feeds: kind=following is the posts of followed users, newest first, from
 * the views. kind=for_you and trending tags come from the recommendation
 * index (index/index.h, docs/RANKING.md) when the context has one; without
 * it (tools, tests of the reads alone) for_you is the views fallback of
 * feed.h and trending is empty.
 */
#ifndef REEL_SERVER_READS_H
#define REEL_SERVER_READS_H

#include <stdint.h>

#include "engine/reel.h"
#include "server/jbuf.h"
#include "server/route.h"

struct reel_index;

typedef struct reel_reads_ctx {
    reel_engine_t *engine;
    uint32_t invites_per_user;    /* for a profile's invites_left */
    uint32_t generations_per_day; /* for quotas */
    struct reel_index *index;     /* for_you and trending; NULL: none */
} reel_reads_ctx_t;

/* Answers the read route m into out (a 200 body): 0, or -1 with err (400,
 * 404, 503). */
int reel_reads_serve(const reel_reads_ctx_t *ctx, const reel_route_match_t *m, reel_jbuf_t *out,
                     reel_api_err_t *err);

/* The engine's clock now: the wall clock, never before the newest event. */
uint64_t reel_reads_now_ms(reel_engine_t *e);

#endif /* REEL_SERVER_READS_H */
