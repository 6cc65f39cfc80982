/*
 * feed.h: GET /v1/users/{id}/feed. kind=following: posts of followed users,
 * newest first (ties: lower post id), merged from each followee's listing
 * (at most SRV_FEED_FOLLOWEES_MAX followees, newest follows first), from
 * the views. kind=for_you (the default): ranked by the recommendation index
 * (index/index.h, docs/RANKING.md) when there is one; without it (the reads
 * used outside reeld) a fallback that applies the contract's
 * filters (public, visible, not the user's own, no block either way, not
 * liked, not marked not_interested or hide_creator on that post) to the
 * newest posts by id, scanning at most SRV_FEED_SCAN_MAX ids a page;
 * followed authors score 1, others 0.5. Views are not filtered yet: the
 * views hold no per-user view list.
 */
#ifndef REEL_SERVER_FEED_H
#define REEL_SERVER_FEED_H

#include "engine/views.h"
#include "server/jbuf.h"
#include "server/route.h"

struct reel_index;

/* 0 with the page in b, 1 with err (400, 404), or a negative views error.
 * idx: the index ranking for_you (NULL: the fallback). */
int reel_feed_serve(reel_views_txn_t *t, struct reel_index *idx, const reel_route_match_t *m,
                    reel_jbuf_t *b, reel_api_err_t *err);

#endif /* REEL_SERVER_FEED_H */
