/*
 * route.h: the routes of API v1 (../shared/API.md): "METHOD /path" with
 * its parameters to a route id, and the query string's values.
 *
 * Writes reuse the engine's command map (REEL_CMD_MAP in engine/reel.h):
 * route REEL_ROUTE_<NAME> of a write has the value of REEL_CMD_<NAME>, so a
 * write's route is its command kind. Reads and the server's own endpoints
 * follow. Matching is pure (no allocation, no I/O): the path's ids are
 * checked here (400 bad_field when not a decimal in 1..2^53-1), an unknown
 * path is 404 not_found and a known path with another method 405
 * method_not_allowed.
 */
#ifndef REEL_SERVER_ROUTE_H
#define REEL_SERVER_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/reel.h"
#include "server/jbuf.h"

/* Reads and the server's endpoints: name, "METHOD /pattern". */
#define REEL_READ_ROUTE_MAP(XX)                                      \
    XX(USER_GET, "GET /v1/users/{id}")                               \
    XX(HANDLE_GET, "GET /v1/handles/{handle}")                       \
    XX(FOLLOWERS, "GET /v1/users/{id}/followers")                    \
    XX(FOLLOWING, "GET /v1/users/{id}/following")                    \
    XX(FRIENDS, "GET /v1/users/{id}/friends")                        \
    XX(CAN_USE, "GET /v1/users/{id}/cameo/can-use")                  \
    XX(APPEARANCES, "GET /v1/users/{id}/cameo/appearances")          \
    XX(GENERATION_GET, "GET /v1/generations/{id}")                   \
    XX(QUOTA, "GET /v1/users/{id}/quota")                            \
    XX(POST_GET, "GET /v1/posts/{id}")                               \
    XX(USER_POSTS, "GET /v1/users/{id}/posts")                       \
    XX(REMIXES, "GET /v1/posts/{id}/remixes")                        \
    XX(COMMENTS, "GET /v1/posts/{id}/comments")                      \
    XX(FEED, "GET /v1/users/{id}/feed")                              \
    XX(LEADERBOARD, "GET /v1/leaderboard")                           \
    XX(TRENDING, "GET /v1/tags/trending")                            \
    XX(LOG, "GET /v1/log")                                           \
    XX(LOG_STREAM, "GET /v1/log/stream")                             \
    XX(BATCH, "POST /v1/batch")                                      \
    XX(HEALTHZ, "GET /healthz")                                      \
    XX(METRICS, "GET /metrics")

typedef enum reel_route {
    REEL_ROUTE_NONE = 0,
#define REEL__ROUTE_ENUM(name, route) REEL_ROUTE_##name,
    REEL_CMD_MAP(REEL__ROUTE_ENUM)
    REEL_READ_ROUTE_MAP(REEL__ROUTE_ENUM)
#undef REEL__ROUTE_ENUM
    REEL_ROUTE_COUNT
} reel_route_t;

_Static_assert((int)REEL_ROUTE_RENDER_FAIL == (int)REEL_CMD_RENDER_FAIL,
               "a write's route is its command kind");

/* A matched request line. */
typedef struct reel_route_match {
    reel_route_t route;
    uint64_t id;         /* {id}: 0 when the pattern has none */
    uint64_t id2;        /* {target}, {grantee}, {owner}, {user}: 0 when none */
    const char *str;     /* {handle}: into the path */
    size_t str_len;
    const char *query;   /* after '?', "" when none (into the url) */
    size_t query_len;
} reel_route_match_t;

/* Matches method and url (the request target). Returns 0 with *m, or a
 * negative value with *err (404, 405, 400 bad_field). */
int reel_route_match(const char *method, const char *url, size_t url_len, reel_route_match_t *m,
                     reel_api_err_t *err);

/* The command kind of a write route, REEL_CMD_NONE for a read. */
reel_cmd_kind_t reel_route_cmd(reel_route_t r);
/* "GET /v1/users/{id}" for metrics and logs; "unknown" for NONE. */
const char *reel_route_name(reel_route_t r);
/* Whether r is under /v1/render/ (the worker scope). */
bool reel_route_is_render(reel_route_t r);

/* Query parameter name (percent-decoded into buf, cap bytes with the NUL):
 * 1 found, 0 absent, -1 too long or bad escape. */
int reel_query_get(const char *query, size_t len, const char *name, char *buf, size_t cap);
/* A decimal u64 query parameter in [lo, hi]: 1 found, 0 absent, or -1 with
 * err (400 bad_field naming it). */
int reel_query_u64(const char *query, size_t len, const char *name, uint64_t lo, uint64_t hi,
                   uint64_t *out, reel_api_err_t *err);
/* `limit` with its default, clamped to max (API: above the max is clamped;
 * 0 or not a number is 400 bad_field). */
int reel_query_limit(const char *query, size_t len, uint64_t def, uint64_t max, uint64_t *out,
                     reel_api_err_t *err);

/* An id (decimal 1..2^53-1, the whole of s[0..n)): true with *out. */
bool reel_parse_id(const char *s, size_t n, uint64_t *out);

/* Cursors are opaque: hex of two u64 (the last entry's sort key). */
void reel_cursor_encode(reel_jbuf_t *b, uint64_t a, uint64_t c);
/* The `cursor` parameter: 0 with (0, 0) when absent, or -1 with err. */
int reel_cursor_get(const char *query, size_t len, uint64_t *a, uint64_t *c,
                    reel_api_err_t *err);

#endif /* REEL_SERVER_ROUTE_H */
