/*
 * rules_user.c: USER_DELETE (DELETE /v1/users/{id}), the account cascade.
 *
 * The account, its posts, likes, comments, follows, cameo and consents
 * leave every view and feed, in the one group of the command, in this
 * order: follow.removed (reason "user_deleted") for every follow from and
 * to the user, like.removed for the user's likes, comment.deleted for the
 * user's comments, post.deleted for the user's posts (drafts and hidden
 * ones too), cameo.deleted when the user has a cameo record, followed by
 * the cameo's revoke cascade (others' posts featuring it hidden and their
 * generations featuring it cancelled, reason "cameo_deleted", as
 * CAMEO_DELETE does), consent.revoked for every approval the user gave,
 * generation.cancelled (reason "user_deleted") for the user's queued or
 * running generations, then user.deleted last.
 *
 * Every count of the other users follows from the events' view semantics
 * (views.h): followers, following and friends from follow.removed,
 * likes_received from like.removed, the parents' remixes from post.deleted.
 * Left as they are: blocks either way (inert: a deleted user cannot act),
 * approvals others gave the user, others' likes and comments on the
 * user's posts (the posts are gone from every listing).
 *
 * An account whose cascade does not fit one group (REEL_CMD_EVENTS_MAX)
 * is deleted in chunks (out->more, engine.c "Chunked cascades"): each
 * chunk removes a prefix of the above, the cameo's cascade comes before
 * cameo.deleted, and user.deleted comes only in the last chunk, so a crash
 * between chunks leaves a live account with fewer follows, likes and posts
 * (a state its owner could have made), and the retried delete finishes.
 */
#include "engine/engine_int.h"
#include "engine/common.h"

#include <string.h>

#define JUDGED 0
/* Entries read per page while collecting the cascade. */
#define USER_PAGE 64u

static reel_str_t lit(const char *s)
{
    return (reel_str_t){s, (uint32_t)strlen(s)};
}

/* One event of the cascade, keeping room for the cause (cameo.deleted,
 * user.deleted): the event, or NULL when this chunk is full (out->more). */
static reel_event_t *emit_bounded(cmd_out_t *out, uint16_t type, reel_cmd_result_t *res)
{
    (void)res;
    if (out->n >= REEL_CASCADE_CHUNK_MAX) {
        out->more = true;
        return NULL;
    }
    return reel__emit(out, type);
}

/* follow.removed for every follow from (out_edges) or to the user:
 * 1 done, 0 judged (503), < 0 read error. */
static int drop_follows(const rules_ctx_t *ctx, uint64_t user, bool out_edges, cmd_out_t *out,
                        reel_cmd_result_t *res)
{
    reel_follow_entry_t page[USER_PAGE];
    uint64_t since = 0, id = 0;
    size_t n;
    do {
        int rc = out_edges
                     ? reel_views_following(ctx->txn, user, since, id, USER_PAGE, page, &n)
                     : reel_views_followers(ctx->txn, user, since, id, USER_PAGE, page, &n);
        if (rc < 0)
            return rc;
        for (size_t i = 0; i < n; i++) {
            since = page[i].since, id = page[i].user;
            reel_event_t *ev = emit_bounded(out, REEL_EV_FOLLOW_REMOVED, res);
            if (ev == NULL)
                return JUDGED;
            ev->user = out_edges ? user : page[i].user;
            ev->target = out_edges ? page[i].user : user;
            ev->reason = lit("user_deleted");
        }
    } while (n == USER_PAGE);
    return 1;
}

/* The kinds of id lists the cascade walks by ascending id. */
enum { LIST_LIKES, LIST_COMMENTS, LIST_APPROVALS };

/* One event per id of a list (likes, comments, approvals): 1, 0, < 0. */
static int drop_list(const rules_ctx_t *ctx, uint64_t user, int list, cmd_out_t *out,
                     reel_cmd_result_t *res)
{
    static const uint16_t types[] = {REEL_EV_LIKE_REMOVED, REEL_EV_COMMENT_DELETED,
                                     REEL_EV_CONSENT_REVOKED};
    uint64_t page[USER_PAGE], cursor = 0;
    size_t n;
    int rc;
    do {
        if (list == LIST_LIKES)
            rc = reel_views_likes_by_user(ctx->txn, user, cursor, USER_PAGE, page, &n);
        else if (list == LIST_COMMENTS)
            rc = reel_views_comments_by_author(ctx->txn, user, cursor, USER_PAGE, page, &n);
        else
            rc = reel_views_approvals(ctx->txn, user, cursor, USER_PAGE, page, &n);
        if (rc < 0)
            return rc;
        for (size_t i = 0; i < n; i++) {
            cursor = page[i];
            reel_event_t *ev = emit_bounded(out, types[list], res);
            if (ev == NULL)
                return JUDGED;
            if (list == LIST_LIKES)
                ev->user = user, ev->post = page[i];
            else if (list == LIST_COMMENTS)
                ev->comment = page[i];
            else
                ev->user = user, ev->target = page[i];
        }
    } while (n == USER_PAGE);
    return 1;
}

/* post.deleted for every post of the user, drafts and hidden ones too. */
static int drop_posts(const rules_ctx_t *ctx, uint64_t user, cmd_out_t *out,
                      reel_cmd_result_t *res)
{
    reel_post_entry_t page[USER_PAGE];
    uint64_t at = 0, id = 0;
    size_t n;
    do {
        int rc = reel_views_posts_by_author(ctx->txn, user, at, id,
                                            REEL_VIEWS_LIST_DRAFTS | REEL_VIEWS_LIST_HIDDEN,
                                            USER_PAGE, page, &n);
        if (rc < 0)
            return rc;
        for (size_t i = 0; i < n; i++) {
            at = page[i].created_at, id = page[i].post;
            reel_event_t *ev = emit_bounded(out, REEL_EV_POST_DELETED, res);
            if (ev == NULL)
                return JUDGED;
            ev->post = page[i].post;
        }
    } while (n == USER_PAGE);
    return 1;
}

/* cameo.deleted and its revoke cascade when the user has a cameo record. */
static int drop_cameo(const rules_ctx_t *ctx, uint64_t user, cmd_out_t *out,
                      reel_cmd_result_t *res)
{
    reel_cameo_view_t c;
    int rc = reel_views_get_cameo(ctx->txn, user, &c);
    if (rc == REEL_ENOTFOUND)
        return 1;
    if (rc < 0)
        return rc;
    cameo_change_t chg = CAMEO_CHANGE_NONE;
    chg.deleted = true;
    if ((rc = reel__cameo_cascade(ctx, user, 0, &chg, "cameo_deleted", out)) <= 0)
        return rc; /* a chunk: cameo.deleted comes after all of its cascade */
    reel_event_t *ev = emit_bounded(out, REEL_EV_CAMEO_DELETED, res);
    if (ev == NULL)
        return JUDGED;
    ev->user = user;
    return 1;
}

/* generation.cancelled for the user's queued or running generations. */
static int drop_generations(const rules_ctx_t *ctx, uint64_t user, cmd_out_t *out,
                            reel_cmd_result_t *res)
{
    reel_gen_by_user_t page[USER_PAGE];
    reel_generation_view_t g;
    uint64_t at = 0, id = 0;
    size_t n;
    do {
        int rc = reel_views_gens_by_user(ctx->txn, user, at, id, USER_PAGE, page, &n);
        if (rc < 0)
            return rc;
        for (size_t i = 0; i < n; i++) {
            at = page[i].created_at, id = page[i].generation;
            if ((rc = reel_views_get_generation(ctx->txn, id, &g)) < 0)
                return rc;
            if (g.status != REEL_GEN_QUEUED && g.status != REEL_GEN_RUNNING)
                continue; /* completed: its post is deleted above */
            reel_event_t *ev = emit_bounded(out, REEL_EV_GENERATION_CANCELLED, res);
            if (ev == NULL)
                return JUDGED;
            ev->generation = id;
            ev->reason = lit("user_deleted");
        }
    } while (n == USER_PAGE);
    return 1;
}

int reel__user_delete(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                      reel_cmd_result_t *res)
{
    reel_user_view_t u;
    int rc = reel__need_user(ctx, cmd->args.user, "user_id", res, &u);
    if (rc <= 0)
        return rc;
    res->status = 200;
    if ((rc = drop_follows(ctx, u.id, true, out, res)) <= 0 ||
        (rc = drop_follows(ctx, u.id, false, out, res)) <= 0 ||
        (rc = drop_list(ctx, u.id, LIST_LIKES, out, res)) <= 0 ||
        (rc = drop_list(ctx, u.id, LIST_COMMENTS, out, res)) <= 0 ||
        (rc = drop_posts(ctx, u.id, out, res)) <= 0 || (rc = drop_cameo(ctx, u.id, out, res)) <= 0 ||
        (rc = drop_list(ctx, u.id, LIST_APPROVALS, out, res)) <= 0 ||
        (rc = drop_generations(ctx, u.id, out, res)) <= 0)
        return rc; /* a read error, or a chunk (out->more) */
    REEL_ASSERT(out->n < REEL_CMD_EVENTS_MAX); /* emit_bounded kept room */
    reel__emit(out, REEL_EV_USER_DELETED)->user = u.id;
    return JUDGED;
}
