/*
 * reads.c: the GET endpoints (reads.h).
 *
 * Each handler runs inside one read snapshot opened by reel_reads_serve and
 * returns 0 (out holds the body), JUDGED (err holds the contract's error)
 * or a negative views error, which becomes 404 (REEL_ENOTFOUND) or 503.
 * Pages are bounded by SRV_PAGE_MAX entries; listings that filter (feeds,
 * friends) also bound the entries they scan.
 */
#include "server/reads.h"
#include "engine/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/feed.h"
#include "index/index.h"
#include "server/limits.h"

#define JUDGED 1
/* A string literal, its length counted by the compiler. */
#define ADD_LIT(b, s) reel_jbuf_add((b), (s), sizeof(s) - 1)

static const char *const policy_names[] = {"only_me", "approved", "mutuals", "everyone"};
static const char *const gen_status_names[] = {"queued", "running", "completed", "failed",
                                               "cancelled"};

uint64_t reel_reads_now_ms(reel_engine_t *e)
{
    uint64_t wall = reel_now_ms();
    uint64_t last = reel_log_last_time_ms(reel_engine_log(e));
    return wall > last ? wall : last;
}

static int not_found(reel_api_err_t *err, const char *what, uint64_t id)
{
    reel_api_err_set(err, 404, "not_found", "", "no %s %llu", what, (unsigned long long)id);
    return JUDGED;
}

/* ---- users ---- */

static void user_json(reel_views_txn_t *t, const reel_reads_ctx_t *ctx, const reel_user_view_t *u,
                      reel_jbuf_t *b)
{
    reel_cameo_view_t cam;
    uint8_t policy = reel_views_get_cameo(t, u->id, &cam) == 0 ? cam.policy : 0;
    uint64_t allowed = ctx->invites_per_user ? ctx->invites_per_user : 4;
    /* The most asked-for answer: built from pieces, no format pass. */
    ADD_LIT(b, "{\"user_id\":");
    reel_jbuf_u64(b, u->id);
    ADD_LIT(b, ",\"handle\":");
    reel_jbuf_str(b, u->handle, u->handle_len);
    ADD_LIT(b, ",\"display_name\":");
    reel_jbuf_str(b, u->display_name, u->display_name_len);
    ADD_LIT(b, ",\"created_at\":");
    reel_jbuf_u64(b, u->created_at);
    ADD_LIT(b, ",\"followers\":");
    reel_jbuf_u64(b, u->followers);
    ADD_LIT(b, ",\"following\":");
    reel_jbuf_u64(b, u->following);
    ADD_LIT(b, ",\"friends\":");
    reel_jbuf_u64(b, u->friends);
    ADD_LIT(b, ",\"posts\":");
    reel_jbuf_u64(b, u->posts);
    ADD_LIT(b, ",\"likes_received\":");
    reel_jbuf_u64(b, u->likes_received);
    ADD_LIT(b, ",\"cameo_policy\":\"");
    reel_jbuf_adds(b, policy < 4 ? policy_names[policy] : "only_me");
    ADD_LIT(b, "\",\"invites_left\":");
    reel_jbuf_u64(b, u->invites < allowed ? allowed - u->invites : 0);
    reel_jbuf_add(b, "}", 1);
}

static int get_user(reel_views_txn_t *t, const reel_reads_ctx_t *ctx, const reel_route_match_t *m,
                    reel_jbuf_t *b, reel_api_err_t *err)
{
    reel_user_view_t u;
    int rc;
    if (m->route == REEL_ROUTE_HANDLE_GET) {
        if (m->str_len > REEL_HANDLE_LEN_MAX) {
            reel_api_err_set(err, 404, "not_found", "", "no such handle");
            return JUDGED;
        }
        rc = reel_views_user_by_handle(t, m->str, m->str_len, &u);
        if (rc == REEL_ENOTFOUND || rc == REEL_EUSAGE) {
            reel_api_err_set(err, 404, "not_found", "", "no user with handle %.*s",
                             (int)m->str_len, m->str);
            return JUDGED;
        }
    } else {
        rc = reel_views_get_user(t, m->id, &u);
        if (rc == REEL_ENOTFOUND)
            return not_found(err, "user", m->id);
    }
    if (rc != 0)
        return rc;
    user_json(t, ctx, &u, b);
    return 0;
}

/* A live user or 404. */
static int need_user(reel_views_txn_t *t, uint64_t id, reel_api_err_t *err)
{
    reel_user_view_t u;
    int rc = reel_views_get_user(t, id, &u);
    if (rc == REEL_ENOTFOUND)
        return not_found(err, "user", id);
    return rc;
}

/* limit and cursor of a list endpoint. */
static int page_args(const reel_route_match_t *m, uint64_t *limit, uint64_t *ca, uint64_t *cb,
                     reel_api_err_t *err)
{
    if (reel_query_limit(m->query, m->query_len, SRV_PAGE_DEFAULT, SRV_PAGE_MAX, limit, err) != 0)
        return JUDGED;
    if (reel_cursor_get(m->query, m->query_len, ca, cb, err) != 0)
        return JUDGED;
    return 0;
}

static void end_page(reel_jbuf_t *b, bool more, uint64_t ca, uint64_t cb)
{
    reel_jbuf_adds(b, "],\"next_cursor\":");
    if (more)
        reel_cursor_encode(b, ca, cb);
    else
        reel_jbuf_adds(b, "null");
    reel_jbuf_adds(b, "}");
}

typedef int (*follow_page_fn)(reel_views_txn_t *, uint64_t, uint64_t, uint64_t, size_t,
                              reel_follow_entry_t *, size_t *);

static int follow_list(reel_views_txn_t *t, const reel_route_match_t *m, reel_jbuf_t *b,
                       reel_api_err_t *err)
{
    reel_follow_entry_t es[SRV_PAGE_MAX + 1];
    uint64_t limit, ca, cb;
    size_t n = 0, shown = 0;
    follow_page_fn fn = m->route == REEL_ROUTE_FOLLOWERS   ? reel_views_followers
                        : m->route == REEL_ROUTE_FOLLOWING ? reel_views_following
                                                           : reel_views_friends;
    int rc = page_args(m, &limit, &ca, &cb, err);
    if (rc == 0)
        rc = need_user(t, m->id, err);
    if (rc == 0)
        rc = fn(t, m->id, ca, cb, limit + 1, es, &n);
    if (rc != 0)
        return rc;
    reel_jbuf_adds(b, "{\"items\":[");
    for (size_t i = 0; i < n && i < limit; i++) {
        reel_user_view_t u;
        if (reel_views_get_user(t, es[i].user, &u) != 0)
            continue;
        reel_jbuf_addf(b, "%s{\"user_id\":%llu,\"handle\":", shown++ ? "," : "",
                       (unsigned long long)u.id);
        reel_jbuf_str(b, u.handle, u.handle_len);
        reel_jbuf_addf(b, ",\"since\":%llu}", (unsigned long long)es[i].since);
    }
    bool more = n > limit;
    end_page(b, more, more ? es[limit - 1].since : 0, more ? es[limit - 1].user : 0);
    return 0;
}

/* ---- cameos ---- */

static int can_use(reel_views_txn_t *t, const reel_route_match_t *m, reel_jbuf_t *b,
                   reel_api_err_t *err)
{
    char buf[32];
    uint64_t grantee;
    bool allowed = false;
    const char *reason = NULL;
    int q = reel_query_get(m->query, m->query_len, "user", buf, sizeof(buf));
    if (q == 0) {
        reel_api_err_set(err, 400, "missing_field", "user", "user is required");
        return JUDGED;
    }
    if (q < 0 || !reel_parse_id(buf, strlen(buf), &grantee)) {
        reel_api_err_set(err, 400, "bad_field", "user", "user must be an integer in 1..2^53-1");
        return JUDGED;
    }
    int rc = reel_engine_can_use(t, m->id, grantee, &allowed, &reason);
    if (rc == REEL_ENOTFOUND) {
        reel_api_err_set(err, 404, "not_found", "", "no such user");
        return JUDGED;
    }
    if (rc != 0)
        return rc;
    reel_jbuf_addf(b, "{\"allowed\":%s,\"reason\":\"%s\"}", allowed ? "true" : "false", reason);
    return 0;
}

static int appearances(reel_views_txn_t *t, const reel_route_match_t *m, reel_jbuf_t *b,
                       reel_api_err_t *err)
{
    reel_appearance_t as[SRV_PAGE_MAX + 1];
    uint64_t limit, ca, cb;
    size_t n = 0;
    int rc = page_args(m, &limit, &ca, &cb, err);
    if (rc == 0)
        rc = need_user(t, m->id, err);
    if (rc == 0)
        rc = reel_views_appearances(t, m->id, cb, limit + 1, as, &n);
    if (rc != 0)
        return rc;
    reel_jbuf_adds(b, "{\"items\":[");
    for (size_t i = 0; i < n && i < limit; i++) {
        reel_jbuf_addf(b, "%s{\"post_id\":%llu,\"author\":%llu,\"visibility\":\"%s\","
                       "\"hidden\":%s}", i ? "," : "", (unsigned long long)as[i].post,
                       (unsigned long long)as[i].author, as[i].public ? "public" : "draft",
                       as[i].hidden ? "true" : "false");
    }
    bool more = n > limit;
    end_page(b, more, 0, more ? as[limit - 1].post : 0);
    return 0;
}

/* ---- generations ---- */

static int generation(reel_views_txn_t *t, const reel_route_match_t *m, reel_jbuf_t *b,
                      reel_api_err_t *err)
{
    reel_generation_view_t g;
    int rc = reel_views_get_generation(t, m->id, &g);
    if (rc == REEL_ENOTFOUND)
        return not_found(err, "generation", m->id);
    if (rc != 0)
        return rc;
    reel_jbuf_addf(b, "{\"generation_id\":%llu,\"user\":%llu,\"status\":\"%s\",\"attempts\":%llu,"
                   "\"worker\":", (unsigned long long)g.id, (unsigned long long)g.user,
                   g.status < 5 ? gen_status_names[g.status] : "unknown",
                   (unsigned long long)g.attempts);
    if (g.worker_len > 0)
        reel_jbuf_str(b, g.worker, g.worker_len);
    else
        reel_jbuf_adds(b, "null");
    reel_jbuf_adds(b, ",\"post_id\":");
    reel_jbuf_id_or_null(b, g.post);
    reel_jbuf_adds(b, "}");
    return 0;
}

static int quota(reel_views_txn_t *t, const reel_reads_ctx_t *ctx, const reel_route_match_t *m,
                 reel_jbuf_t *b, reel_api_err_t *err)
{
    reel_quota_t q;
    uint32_t limit = ctx->generations_per_day ? ctx->generations_per_day : 30;
    int rc = reel_engine_quota(t, m->id, reel_reads_now_ms(ctx->engine), limit, &q);
    if (rc == REEL_ENOTFOUND)
        return not_found(err, "user", m->id);
    if (rc != 0)
        return rc;
    reel_jbuf_addf(b, "{\"used\":%llu,\"limit\":%llu,\"resets_at\":", (unsigned long long)q.used,
                   (unsigned long long)q.limit);
    reel_jbuf_id_or_null(b, q.resets_at);
    reel_jbuf_adds(b, "}");
    return 0;
}

/* ---- posts ---- */

/* The post object of API.md; REEL_ENOTFOUND for a deleted or absent one. */
static int post_json(reel_views_txn_t *t, uint64_t id, reel_jbuf_t *b)
{
    reel_post_view_t p;
    reel_post_body_t body;
    int rc = reel_views_get_post(t, id, &p);
    if (rc == 0)
        rc = reel_views_get_post_body(t, id, &body);
    if (rc != 0)
        return rc;
    reel_jbuf_addf(b, "{\"post_id\":%llu,\"author\":%llu,\"prompt\":", (unsigned long long)p.id,
                   (unsigned long long)p.author);
    reel_jbuf_str(b, body.prompt, body.prompt_len);
    reel_jbuf_adds(b, ",\"tags\":[");
    for (uint32_t i = 0; i < body.ntags; i++) {
        reel_jbuf_adds(b, i ? "," : "");
        reel_jbuf_str(b, body.tags[i].ptr, body.tags[i].len);
    }
    reel_jbuf_adds(b, "],\"video_uri\":");
    reel_jbuf_str(b, body.video_uri, body.video_uri_len);
    reel_jbuf_addf(b, ",\"created_at\":%llu,\"visibility\":\"%s\",\"hidden\":%s,"
                   "\"hidden_reason\":", (unsigned long long)p.created_at,
                   p.public ? "public" : "draft", p.hidden ? "true" : "false");
    if (p.hidden)
        reel_jbuf_str(b, p.hidden_reason, p.hidden_reason_len);
    else
        reel_jbuf_adds(b, "null");
    reel_jbuf_addf(b, ",\"likes\":%llu,\"comments\":%llu,\"remixes\":%llu,\"views\":%llu,"
                   "\"remix_of\":", (unsigned long long)p.likes, (unsigned long long)p.comments,
                   (unsigned long long)p.remixes, (unsigned long long)p.views);
    reel_jbuf_id_or_null(b, p.remix_of);
    reel_jbuf_adds(b, ",\"remix_root\":");
    reel_jbuf_id_or_null(b, p.remix_root);
    reel_jbuf_adds(b, ",\"cameos\":[");
    for (uint32_t i = 0; i < body.ncameos; i++)
        reel_jbuf_addf(b, "%s%llu", i ? "," : "", (unsigned long long)body.cameos[i]);
    reel_jbuf_adds(b, "]}");
    return 0;
}

static int get_post(reel_views_txn_t *t, const reel_route_match_t *m, reel_jbuf_t *b,
                    reel_api_err_t *err)
{
    int rc = post_json(t, m->id, b);
    if (rc == REEL_ENOTFOUND)
        return not_found(err, "post", m->id);
    return rc;
}

static int post_list(reel_views_txn_t *t, const reel_route_match_t *m, reel_jbuf_t *b,
                     reel_api_err_t *err)
{
    reel_post_entry_t es[SRV_PAGE_MAX + 1];
    reel_post_view_t parent;
    uint64_t limit, ca, cb;
    size_t n = 0, shown = 0;
    char flag[8];
    bool own = m->route == REEL_ROUTE_USER_POSTS;
    unsigned flags = 0;
    if (own && reel_query_get(m->query, m->query_len, "include_drafts", flag, sizeof(flag)) > 0 &&
        (strcmp(flag, "1") == 0 || strcmp(flag, "true") == 0))
        flags |= REEL_VIEWS_LIST_DRAFTS;
    int rc = page_args(m, &limit, &ca, &cb, err);
    if (rc == 0 && own)
        rc = need_user(t, m->id, err);
    if (rc == 0 && !own && (rc = reel_views_get_post(t, m->id, &parent)) == REEL_ENOTFOUND)
        return not_found(err, "post", m->id);
    if (rc == 0 && own)
        rc = reel_views_posts_by_author(t, m->id, ca, cb, flags, limit + 1, es, &n);
    else if (rc == 0)
        rc = reel_views_remixes(t, m->id, ca, cb, flags, limit + 1, es, &n);
    if (rc != 0)
        return rc;
    reel_jbuf_adds(b, "{\"items\":[");
    for (size_t i = 0; i < n && i < limit; i++) {
        size_t mark = b->len;
        reel_jbuf_adds(b, shown ? "," : "");
        if (post_json(t, es[i].post, b) != 0)
            b->len = mark; /* raced away: skipped */
        else
            shown++;
    }
    bool more = n > limit;
    end_page(b, more, more ? es[limit - 1].created_at : 0, more ? es[limit - 1].post : 0);
    return 0;
}

static int comments(reel_views_txn_t *t, const reel_route_match_t *m, reel_jbuf_t *b,
                    reel_api_err_t *err)
{
    reel_comment_view_t cs[SRV_PAGE_MAX + 1];
    reel_post_view_t p;
    uint64_t limit, ca, cb;
    size_t n = 0;
    int rc = page_args(m, &limit, &ca, &cb, err);
    if (rc == 0 && (rc = reel_views_get_post(t, m->id, &p)) == REEL_ENOTFOUND)
        return not_found(err, "post", m->id);
    if (rc == 0)
        rc = reel_views_comments(t, m->id, ca, cb, limit + 1, cs, &n);
    if (rc != 0)
        return rc;
    reel_jbuf_adds(b, "{\"items\":[");
    for (size_t i = 0; i < n && i < limit; i++) {
        reel_jbuf_addf(b, "%s{\"comment_id\":%llu,\"author\":%llu,\"text\":", i ? "," : "",
                       (unsigned long long)cs[i].id, (unsigned long long)cs[i].author);
        reel_jbuf_str(b, cs[i].text, cs[i].text_len);
        reel_jbuf_adds(b, ",\"reply_to\":");
        reel_jbuf_id_or_null(b, cs[i].reply_to);
        reel_jbuf_addf(b, ",\"created_at\":%llu}", (unsigned long long)cs[i].created_at);
    }
    bool more = n > limit;
    end_page(b, more, more ? cs[limit - 1].created_at : 0, more ? cs[limit - 1].id : 0);
    return 0;
}

/* ---- rankings ---- */

static int leaderboard(reel_views_txn_t *t, const reel_route_match_t *m, reel_jbuf_t *b,
                       reel_api_err_t *err)
{
    static const char *const boards[] = {"followers", "likes", "remixes", "cameo_uses"};
    reel_leader_t rows[SRV_PAGE_MAX];
    char by[16] = "followers";
    uint64_t limit;
    size_t n = 0, kind = REEL_ARRAY_LEN(boards);
    int q = reel_query_get(m->query, m->query_len, "by", by, sizeof(by));
    for (size_t i = 0; q >= 0 && i < REEL_ARRAY_LEN(boards); i++) {
        if (strcmp(by, boards[i]) == 0)
            kind = i;
    }
    if (kind == REEL_ARRAY_LEN(boards)) {
        reel_api_err_set(err, 400, "bad_field", "by",
                         "by is followers, likes, remixes or cameo_uses");
        return JUDGED;
    }
    if (reel_query_limit(m->query, m->query_len, SRV_PAGE_DEFAULT, SRV_PAGE_MAX, &limit, err))
        return JUDGED;
    int rc = reel_views_leaderboard(t, (reel_views_board_t)kind, limit, rows, &n);
    if (rc != 0)
        return rc;
    reel_jbuf_adds(b, "{\"items\":[");
    for (size_t i = 0, shown = 0; i < n; i++) {
        reel_user_view_t u;
        if (reel_views_get_user(t, rows[i].user, &u) != 0)
            continue;
        reel_jbuf_addf(b, "%s{\"user_id\":%llu,\"handle\":", shown++ ? "," : "",
                       (unsigned long long)u.id);
        reel_jbuf_str(b, u.handle, u.handle_len);
        reel_jbuf_addf(b, ",\"value\":%llu}", (unsigned long long)rows[i].value);
    }
    reel_jbuf_adds(b, "]}");
    return 0;
}

static int trending(reel_index_t *idx, const reel_route_match_t *m, reel_jbuf_t *b,
                    reel_api_err_t *err)
{
    static _Thread_local reel_trending_tag_t rows[REEL_IX_TRENDING_MAX];
    uint64_t limit, window = 86400000;
    size_t n = 0;
    if (reel_query_limit(m->query, m->query_len, SRV_PAGE_DEFAULT, SRV_PAGE_MAX, &limit, err) ||
        reel_query_u64(m->query, m->query_len, "window_ms", 1, REEL_ID_MAX, &window, err) < 0)
        return JUDGED;
    if (limit > REEL_IX_TRENDING_MAX)
        limit = REEL_IX_TRENDING_MAX;
    int rc = idx ? reel_index_trending(idx, window, (size_t)limit, rows, &n) : 0;
    if (rc != 0)
        return rc;
    reel_jbuf_adds(b, "{\"items\":[");
    for (size_t i = 0; i < n; i++) {
        reel_jbuf_adds(b, i ? ",{\"tag\":" : "{\"tag\":");
        reel_jbuf_str(b, rows[i].tag, strlen(rows[i].tag));
        reel_jbuf_addf(b, ",\"posts\":%llu,\"score\":%.4f}", (unsigned long long)rows[i].posts,
                       rows[i].score);
    }
    reel_jbuf_adds(b, "]}");
    return 0;
}

static int dispatch(reel_views_txn_t *t, const reel_reads_ctx_t *ctx, const reel_route_match_t *m,
                    reel_jbuf_t *b, reel_api_err_t *err)
{
    switch (m->route) {
    case REEL_ROUTE_USER_GET:
    case REEL_ROUTE_HANDLE_GET: return get_user(t, ctx, m, b, err);
    case REEL_ROUTE_FOLLOWERS:
    case REEL_ROUTE_FOLLOWING:
    case REEL_ROUTE_FRIENDS: return follow_list(t, m, b, err);
    case REEL_ROUTE_CAN_USE: return can_use(t, m, b, err);
    case REEL_ROUTE_APPEARANCES: return appearances(t, m, b, err);
    case REEL_ROUTE_GENERATION_GET: return generation(t, m, b, err);
    case REEL_ROUTE_QUOTA: return quota(t, ctx, m, b, err);
    case REEL_ROUTE_POST_GET: return get_post(t, m, b, err);
    case REEL_ROUTE_USER_POSTS:
    case REEL_ROUTE_REMIXES: return post_list(t, m, b, err);
    case REEL_ROUTE_COMMENTS: return comments(t, m, b, err);
    case REEL_ROUTE_FEED: return reel_feed_serve(t, ctx->index, m, b, err);
    case REEL_ROUTE_LEADERBOARD: return leaderboard(t, m, b, err);
    case REEL_ROUTE_TRENDING: return trending(ctx->index, m, b, err);
    default: break;
    }
    reel_api_err_set(err, 404, "not_found", "", "no such endpoint");
    return JUDGED;
}

int reel_reads_serve(const reel_reads_ctx_t *ctx, const reel_route_match_t *m, reel_jbuf_t *out,
                     reel_api_err_t *err)
{
    reel_views_txn_t *t = NULL;
    int rc = reel_engine_read_begin(ctx->engine, &t);
    if (rc == 0) {
        rc = dispatch(t, ctx, m, out, err);
        reel_views_read_end(t);
    }
    if (rc == 0 && out->oom)
        rc = -ENOMEM;
    if (rc == 0 || rc == JUDGED)
        return rc == 0 ? 0 : -1;
    if (rc == REEL_ENOTFOUND) {
        reel_api_err_set(err, 404, "not_found", "", "not found");
    } else {
        reel_api_err_set(err, 503, "unavailable", "", "reading the views failed: %s",
                         reel_strerror(rc));
    }
    return -1;
}
