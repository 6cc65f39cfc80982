/*
 * rules.c: the rules of the API (../shared/API.md) as the command writer
 * applies them: each command is checked against the views as they stand
 * after every command before it, and turned into events, or refused with
 * the contract's status and code. A refused command produces no event.
 *
 * Checks come in the contract's order of precedence: malformed fields
 * (400), unknown ids (404), forbidden (403: blocked, cameo_not_allowed,
 * invites), conflicts (409). A command that would change nothing (follow
 * twice, like twice) succeeds with no event (offset null).
 *
 * Every rule reads only the views and the command, never a clock (the
 * command's time comes in ctx->now), so replaying the log reproduces the
 * same views and the cascades need no rule to replay (their events are
 * in the log).
 */
#include "engine/engine_int.h"
#include "engine/common.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>

/* Judged: the rule fills res and returns it; a negative value from a
 * views read fails the batch. */
#define JUDGED 0
#define INVITE_CODE_LEN 10u

static reel_event_t *emit(cmd_out_t *out, uint16_t type)
{
    REEL_ASSERT(out->n < REEL_CMD_EVENTS_MAX);
    reel_event_t *ev = &out->evs[out->n++];
    memset(ev, 0, sizeof(*ev));
    ev->type = type;
    return ev;
}

static bool id_ok(uint64_t id)
{
    return id >= 1 && id <= REEL_ID_MAX;
}

/* A field that must be an id: 400 bad_field when it is not. */
static bool check_id(uint64_t id, const char *field, reel_cmd_result_t *res)
{
    if (id_ok(id))
        return true;
    reel__res_error(res, 400, "bad_field", field, "%s must be an integer in 1..2^53-1", field);
    return false;
}

/* A string field: present when required, within its limit, UTF-8. */
static bool check_str(reel_str_t s, uint32_t len_min, uint32_t len_max, const char *field,
                      reel_cmd_result_t *res)
{
    if (s.ptr == NULL && len_min > 0) {
        reel__res_error(res, 400, "missing_field", field, "%s is required", field);
        return false;
    }
    if (s.len < len_min || s.len > len_max || !reel_utf8_valid(s.ptr, s.len)) {
        reel__res_error(res, 400, "bad_field", field, "%s must be %u to %u bytes of UTF-8", field,
                        len_min, len_max);
        return false;
    }
    return true;
}

/* Loads a live user: 1 found, 0 judged (404 or 400), < 0 read error. */
static int need_user(const rules_ctx_t *ctx, uint64_t id, const char *field,
                     reel_cmd_result_t *res, reel_user_view_t *u)
{
    if (!check_id(id, field, res))
        return JUDGED;
    int rc = reel_views_get_user(ctx->txn, id, u);
    if (rc == REEL_ENOTFOUND) {
        reel__res_error(res, 404, "not_found", field, "no user %llu", (unsigned long long)id);
        return JUDGED;
    }
    return rc < 0 ? rc : 1;
}

/* Loads a live post that user may see (public, or the user's own draft):
 * 1 found, 0 judged (404), < 0 read error. */
static int need_post(const rules_ctx_t *ctx, uint64_t id, uint64_t user, const char *field,
                     reel_cmd_result_t *res, reel_post_view_t *p)
{
    if (!check_id(id, field, res))
        return JUDGED;
    int rc = reel_views_get_post(ctx->txn, id, p);
    if (rc == 0 && !p->public && p->author != user)
        rc = REEL_ENOTFOUND; /* someone else's draft does not exist for them */
    if (rc == REEL_ENOTFOUND) {
        reel__res_error(res, 404, "not_found", field, "no post %llu", (unsigned long long)id);
        return JUDGED;
    }
    return rc < 0 ? rc : 1;
}

/* 403 blocked when a blocks b or b blocks a: 1 clear, 0 judged, < 0 error. */
static int need_unblocked(const rules_ctx_t *ctx, uint64_t a, uint64_t b, reel_cmd_result_t *res)
{
    bool blocked = false;
    int rc = a == b ? 0 : reel_views_is_blocked(ctx->txn, a, b, &blocked);
    if (rc < 0)
        return rc;
    if (blocked) {
        reel__res_error(res, 403, "blocked", "", "user %llu and user %llu block each other",
                        (unsigned long long)a, (unsigned long long)b);
        return JUDGED;
    }
    return 1;
}

/* ---- users ---- */

/* 2-30 of [A-Za-z0-9_.], folded to lower case into buf. */
static bool handle_fold(reel_str_t h, char *buf, reel_cmd_result_t *res)
{
    if (h.ptr == NULL) {
        reel__res_error(res, 400, "missing_field", "handle", "handle is required");
        return false;
    }
    bool ok = h.len >= 2 && h.len <= REEL_HANDLE_LEN_MAX;
    for (uint32_t i = 0; ok && i < h.len; i++) {
        char c = h.ptr[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '.';
        buf[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }
    if (!ok)
        reel__res_error(res, 400, "bad_field", "handle", "handle must be 2-30 of [A-Za-z0-9_.]");
    return ok;
}

/* Invite-only sign-up: 1 allowed (*issuer set, 0 without a code), 0
 * judged, < 0 read error. The first user of an empty log and an admin
 * need no code. */
static int check_invite(const rules_ctx_t *ctx, const reel_cmd_t *cmd, uint64_t first_user,
                        uint64_t *issuer, reel_cmd_result_t *res)
{
    reel_invite_view_t inv;
    reel_str_t code = cmd->args.code;
    *issuer = 0;
    if (code.ptr == NULL) {
        if (!ctx->opts->invite_only || cmd->admin || first_user)
            return 1;
        reel__res_error(res, 403, "invite_required", "invite_code", "sign-up needs an invite code");
        return JUDGED;
    }
    if (!check_str(code, 1, REEL_SHORT_LEN_MAX, "invite_code", res))
        return JUDGED;
    int rc = reel_views_get_invite(ctx->txn, code.ptr, code.len, &inv);
    if (rc < 0 && rc != REEL_ENOTFOUND)
        return rc;
    if (rc == REEL_ENOTFOUND || inv.used) {
        reel__res_error(res, 403, "invite_invalid", "invite_code", "unknown or used invite code");
        return JUDGED;
    }
    *issuer = inv.issuer;
    return 1;
}

static int user_create(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                       reel_cmd_result_t *res)
{
    const reel_event_t *a = &cmd->args;
    reel_user_view_t u;
    uint64_t last, issuer;
    if (!handle_fold(a->handle, out->scratch, res))
        return JUDGED;
    reel_str_t name = a->display_name.ptr ? a->display_name : a->handle;
    if (!check_str(name, 0, REEL_NAME_LEN_MAX, "display_name", res))
        return JUDGED;
    int rc = reel_views_user_by_handle(ctx->txn, out->scratch, a->handle.len, &u);
    if (rc == 0) {
        reel__res_error(res, 409, "handle_taken", "handle", "handle %.*s is taken",
                        (int)a->handle.len, out->scratch);
        return JUDGED;
    }
    if (rc != REEL_ENOTFOUND)
        return rc;
    if ((rc = reel_views_last_id(ctx->txn, REEL_VIEWS_ID_USER, &last)) < 0)
        return rc;
    if ((rc = check_invite(ctx, cmd, last == 0, &issuer, res)) <= 0)
        return rc;
    reel_event_t *ev = emit(out, REEL_EV_USER_CREATED);
    ev->user = last + 1;
    ev->handle = (reel_str_t){out->scratch, a->handle.len};
    ev->display_name = name;
    ev->invited_by = issuer;
    ev->code = issuer ? a->code : (reel_str_t){NULL, 0};
    res->status = 201;
    res->id = ev->user;
    return JUDGED;
}

static int user_update(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                       reel_cmd_result_t *res)
{
    reel_user_view_t u;
    int rc = need_user(ctx, cmd->args.user, "user_id", res, &u);
    if (rc <= 0)
        return rc;
    if (!check_str(cmd->args.display_name, 1, REEL_NAME_LEN_MAX, "display_name", res))
        return JUDGED;
    reel_event_t *ev = emit(out, REEL_EV_USER_UPDATED);
    ev->user = u.id;
    ev->display_name = cmd->args.display_name;
    res->status = 200;
    return JUDGED;
}

static int invite_create(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                         reel_cmd_result_t *res)
{
    static const char alphabet[] = "abcdefghjkmnpqrstuvwxyz23456789"; /* no look-alikes */
    reel_user_view_t u;
    uint8_t rnd[INVITE_CODE_LEN];
    int rc = need_user(ctx, cmd->args.user, "user_id", res, &u);
    if (rc <= 0)
        return rc;
    if (u.invites >= ctx->opts->invites_per_user) {
        reel__res_error(res, 409, "invites_exhausted", "", "user %llu has issued all %u invites",
                        (unsigned long long)u.id, ctx->opts->invites_per_user);
        return JUDGED;
    }
    /* Unguessable: from the kernel's CSPRNG. The code is in the event, so
     * replay does not need to draw it again. */
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        return REEL_ERR(errno);
    for (uint32_t i = 0; i < INVITE_CODE_LEN; i++)
        out->scratch[i] = alphabet[rnd[i] % (sizeof(alphabet) - 1)];
    reel_event_t *ev = emit(out, REEL_EV_INVITE_ISSUED);
    ev->user = u.id;
    ev->code = (reel_str_t){out->scratch, INVITE_CODE_LEN};
    memcpy(res->code, out->scratch, INVITE_CODE_LEN);
    res->code[INVITE_CODE_LEN] = '\0';
    res->status = 201;
    return JUDGED;
}

/* ---- the social graph ---- */

/* Both users of a pair command live, not the same: 1, 0 judged, < 0. */
static int need_pair(const rules_ctx_t *ctx, const reel_cmd_t *cmd, reel_cmd_result_t *res)
{
    reel_user_view_t a, b;
    int rc = need_user(ctx, cmd->args.user, "user_id", res, &a);
    if (rc > 0)
        rc = need_user(ctx, cmd->args.target, "target", res, &b);
    if (rc > 0 && a.id == b.id) {
        reel__res_error(res, 400, "bad_field", "target", "a user cannot do that to themselves");
        return JUDGED;
    }
    return rc;
}

static int follow(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                  reel_cmd_result_t *res)
{
    bool follows;
    int rc = need_pair(ctx, cmd, res);
    if (rc > 0)
        rc = need_unblocked(ctx, cmd->args.user, cmd->args.target, res);
    if (rc <= 0)
        return rc;
    res->status = 200;
    if ((rc = reel_views_follows(ctx->txn, cmd->args.user, cmd->args.target, &follows)) < 0)
        return rc;
    if (!follows) {
        reel_event_t *ev = emit(out, REEL_EV_FOLLOW_CREATED);
        ev->user = cmd->args.user;
        ev->target = cmd->args.target;
    }
    return JUDGED;
}

/* Emits follow.removed a -> b with reason when a follows b. */
static int unfollow_if(const rules_ctx_t *ctx, uint64_t a, uint64_t b, const char *reason,
                       cmd_out_t *out)
{
    bool follows;
    int rc = reel_views_follows(ctx->txn, a, b, &follows);
    if (rc < 0 || !follows)
        return rc;
    reel_event_t *ev = emit(out, REEL_EV_FOLLOW_REMOVED);
    ev->user = a;
    ev->target = b;
    ev->reason = (reel_str_t){reason, (uint32_t)strlen(reason)};
    return 0;
}

/* The revoke cascade both ways between user and target (an unfollow or
 * a block: each may lose the other's cameo): 1 done, 0 a chunk (out->more:
 * the caller emits no cause), < 0 a read error. */
static int cascade_pair(const rules_ctx_t *ctx, uint64_t a, uint64_t b, const cameo_change_t *chg,
                        cmd_out_t *out)
{
    int rc = reel__cameo_cascade(ctx, a, b, chg, "consent_revoked", out);
    if (rc > 0)
        rc = reel__cameo_cascade(ctx, b, a, chg, "consent_revoked", out);
    return rc;
}

static int unfollow(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                    reel_cmd_result_t *res)
{
    bool follows;
    int rc = need_pair(ctx, cmd, res);
    if (rc <= 0)
        return rc;
    res->status = 200;
    if ((rc = reel_views_follows(ctx->txn, cmd->args.user, cmd->args.target, &follows)) < 0)
        return rc;
    if (!follows)
        return JUDGED;
    /* A mutual follow ends: under `mutuals` each loses the other's cameo.
     * The cascade first, the cause last (a chunk never carries it). */
    cameo_change_t chg = CAMEO_CHANGE_NONE;
    chg.unfollow_a = cmd->args.user;
    chg.unfollow_b = cmd->args.target;
    if ((rc = cascade_pair(ctx, chg.unfollow_a, chg.unfollow_b, &chg, out)) <= 0)
        return rc;
    return unfollow_if(ctx, cmd->args.user, cmd->args.target, "unfollow", out);
}

/* A block removes follows both ways, in the same batch as its cause, so a
 * replay needs no rule to reproduce them. */
static int block(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                 reel_cmd_result_t *res)
{
    uint64_t a = cmd->args.user, b = cmd->args.target;
    bool blocked;
    int rc = need_pair(ctx, cmd, res);
    if (rc <= 0)
        return rc;
    res->status = 200;
    if ((rc = reel_views_is_blocked(ctx->txn, a, b, &blocked)) < 0)
        return rc;
    bool mine = false;
    if (blocked && (rc = reel_views_blocks(ctx->txn, a, b, &mine)) < 0)
        return rc;
    if (mine)
        return JUDGED; /* a blocks b already */
    /* A block either way takes each one's right to the other's cameo:
     * the cascade first, then the block and its follow removals. */
    cameo_change_t chg = CAMEO_CHANGE_NONE;
    chg.block_a = a;
    chg.block_b = b;
    if ((rc = cascade_pair(ctx, a, b, &chg, out)) <= 0)
        return rc;
    reel_event_t *ev = emit(out, REEL_EV_BLOCK_CREATED);
    ev->user = a;
    ev->target = b;
    if ((rc = unfollow_if(ctx, a, b, "blocked", out)) == 0)
        rc = unfollow_if(ctx, b, a, "blocked", out);
    return rc < 0 ? rc : JUDGED;
}

static int unblock(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                   reel_cmd_result_t *res)
{
    bool mine;
    int rc = need_pair(ctx, cmd, res);
    if (rc <= 0)
        return rc;
    res->status = 200;
    if ((rc = reel_views_blocks(ctx->txn, cmd->args.user, cmd->args.target, &mine)) < 0)
        return rc;
    if (mine) {
        reel_event_t *ev = emit(out, REEL_EV_BLOCK_REMOVED);
        ev->user = cmd->args.user;
        ev->target = cmd->args.target;
    }
    return JUDGED;
}

/* ---- consent (the rule itself is in rules_cameo.c) ---- */

/* Every cameo of a post or generation must be usable by its author:
 * 1 all allowed, 0 judged (404 unknown user, 403 cameo_not_allowed with
 * field cameos[i]), < 0 read error. */
static int need_cameos(const rules_ctx_t *ctx, uint64_t author, const reel_event_t *a,
                       reel_cmd_result_t *res)
{
    for (uint32_t i = 0; i < a->ncameos; i++) {
        char field[24];
        reel_user_view_t u;
        bool allowed;
        const char *why;
        snprintf(field, sizeof(field), "cameos[%u]", i);
        int rc = need_user(ctx, a->cameos[i], field, res, &u);
        if (rc <= 0)
            return rc;
        if ((rc = reel__consent(ctx->txn, u.id, author, NULL, &allowed, &why)) < 0)
            return rc;
        if (!allowed) {
            reel__res_error(res, 403, "cameo_not_allowed", field,
                            "user %llu may not use the cameo of user %llu (%s)",
                            (unsigned long long)author, (unsigned long long)u.id, why);
            return JUDGED;
        }
    }
    return 1;
}

/* ---- posts ---- */

/* The body of a post: 1 valid, 0 judged. */
static bool check_post_body(const rules_ctx_t *ctx, const reel_event_t *a, bool *draft,
                            reel_cmd_result_t *res)
{
    if (!check_str(a->video_uri, 1, REEL_URI_LEN_MAX, "video_uri", res) ||
        !check_str(a->prompt, 1, REEL_PROMPT_LEN_MAX, "prompt", res))
        return false;
    *draft = false;
    if (a->visibility.ptr != NULL) {
        bool pub = a->visibility.len == 6 && memcmp(a->visibility.ptr, "public", 6) == 0;
        *draft = a->visibility.len == 5 && memcmp(a->visibility.ptr, "draft", 5) == 0;
        if (!pub && !*draft) {
            reel__res_error(res, 400, "bad_field", "visibility", "visibility is public or draft");
            return false;
        }
    }
    if (a->ntags > REEL_TAGS_MAX || a->ncameos > REEL_CAMEOS_MAX) {
        reel__res_error(res, 400, "bad_field", a->ntags > REEL_TAGS_MAX ? "tags" : "cameos",
                        "at most %u tags and %u cameos", REEL_TAGS_MAX, REEL_CAMEOS_MAX);
        return false;
    }
    for (uint32_t i = 0; i < a->ntags; i++) {
        char field[16];
        snprintf(field, sizeof(field), "tags[%u]", i);
        if (!check_str(a->tags[i], 1, REEL_TAG_LEN_MAX, field, res))
            return false;
    }
    return reel__check_dim(ctx, a, res);
}

bool reel__check_dim(const rules_ctx_t *ctx, const reel_event_t *a, reel_cmd_result_t *res)
{
    if (a->dim != 0 && a->dim != ctx->opts->dim) {
        reel__res_error(res, 400, "bad_field", "embedding", "embedding must have %u numbers",
                        ctx->opts->dim);
        return false;
    }
    return true;
}

/* remix_of: a post the author may see and is not blocked from; sets the
 * lineage. 1 fine (or none), 0 judged, < 0 read error. */
static int need_remix(const rules_ctx_t *ctx, const reel_event_t *a, reel_event_t *ev,
                      reel_cmd_result_t *res)
{
    reel_post_view_t parent;
    if (a->remix_of == 0)
        return 1;
    int rc = need_post(ctx, a->remix_of, a->user, "remix_of", res, &parent);
    if (rc > 0)
        rc = need_unblocked(ctx, a->user, parent.author, res);
    if (rc > 0) {
        ev->remix_of = parent.id;
        ev->remix_root = parent.remix_root ? parent.remix_root : parent.id;
    }
    return rc;
}

static int post_create(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                       reel_cmd_result_t *res)
{
    const reel_event_t *a = &cmd->args;
    reel_user_view_t u;
    reel_event_t lineage = {0};
    uint64_t last;
    bool draft;
    int rc = need_user(ctx, a->user, "author", res, &u);
    if (rc <= 0)
        return rc;
    if (!check_post_body(ctx, a, &draft, res))
        return JUDGED;
    if ((rc = need_remix(ctx, a, &lineage, res)) <= 0 || (rc = need_cameos(ctx, u.id, a, res)) <= 0)
        return rc;
    if ((rc = reel_views_last_id(ctx->txn, REEL_VIEWS_ID_POST, &last)) < 0)
        return rc;
    reel_event_t *ev = emit(out, REEL_EV_POST_CREATED);
    uint16_t type = ev->type;
    *ev = *a; /* tags, cameos, embedding, strings: the command's */
    ev->type = type;
    ev->post = last + 1;
    ev->remix_of = lineage.remix_of;
    ev->remix_root = lineage.remix_root;
    ev->visibility = draft ? (reel_str_t){"draft", 5} : (reel_str_t){"public", 6};
    ev->generation = 0;
    res->status = 201;
    res->id = ev->post;
    return JUDGED;
}

/* A live post (any visibility) for publish and delete: 1, 0, < 0. */
static int need_any_post(const rules_ctx_t *ctx, uint64_t id, reel_cmd_result_t *res,
                         reel_post_view_t *p)
{
    if (!check_id(id, "post_id", res))
        return JUDGED;
    int rc = reel_views_get_post(ctx->txn, id, p);
    if (rc == REEL_ENOTFOUND) {
        reel__res_error(res, 404, "not_found", "post_id", "no post %llu", (unsigned long long)id);
        return JUDGED;
    }
    return rc < 0 ? rc : 1;
}

static int post_publish(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                        reel_cmd_result_t *res)
{
    reel_post_view_t p;
    int rc = need_any_post(ctx, cmd->args.post, res, &p);
    if (rc <= 0)
        return rc;
    res->status = 200;
    if (!p.public)
        emit(out, REEL_EV_POST_PUBLISHED)->post = p.id;
    return JUDGED;
}

static int post_delete(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                       reel_cmd_result_t *res)
{
    reel_post_view_t p;
    int rc = need_any_post(ctx, cmd->args.post, res, &p);
    if (rc <= 0)
        return rc;
    res->status = 200;
    emit(out, REEL_EV_POST_DELETED)->post = p.id;
    return JUDGED;
}

/* ---- likes, comments, signals ---- */

/* A live user acting on a post they may see, not blocked from its
 * author: 1, 0 judged, < 0 read error. */
static int need_user_post(const rules_ctx_t *ctx, uint64_t user, uint64_t post,
                          const char *user_field, reel_cmd_result_t *res, reel_post_view_t *p)
{
    reel_user_view_t u;
    int rc = need_user(ctx, user, user_field, res, &u);
    if (rc > 0)
        rc = need_post(ctx, post, user, "post_id", res, p);
    if (rc > 0)
        rc = need_unblocked(ctx, user, p->author, res);
    return rc;
}

static int like(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                reel_cmd_result_t *res, bool create)
{
    reel_post_view_t p;
    bool liked;
    int rc = need_user_post(ctx, cmd->args.user, cmd->args.post, "user_id", res, &p);
    if (rc <= 0)
        return rc;
    res->status = 200;
    if ((rc = reel_views_liked(ctx->txn, p.id, cmd->args.user, &liked)) < 0)
        return rc;
    if (liked != create) { /* liking twice, or unliking what is not liked: nothing */
        reel_event_t *ev = emit(out, create ? REEL_EV_LIKE_CREATED : REEL_EV_LIKE_REMOVED);
        ev->user = cmd->args.user;
        ev->post = p.id;
    }
    return JUDGED;
}

static int comment_create(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                          reel_cmd_result_t *res)
{
    const reel_event_t *a = &cmd->args;
    reel_post_view_t p;
    reel_comment_view_t parent;
    uint64_t last;
    int rc = need_user_post(ctx, a->user, a->post, "author", res, &p);
    if (rc <= 0)
        return rc;
    if (!check_str(a->text, 1, REEL_TEXT_LEN_MAX, "text", res))
        return JUDGED;
    if (a->reply_to != 0) {
        if (!check_id(a->reply_to, "reply_to", res))
            return JUDGED;
        rc = reel_views_get_comment(ctx->txn, a->reply_to, &parent);
        if (rc < 0 && rc != REEL_ENOTFOUND)
            return rc;
        if (rc == REEL_ENOTFOUND || parent.post != p.id) {
            reel__res_error(res, 404, "not_found", "reply_to", "no comment %llu on this post",
                            (unsigned long long)a->reply_to);
            return JUDGED;
        }
    }
    if ((rc = reel_views_last_id(ctx->txn, REEL_VIEWS_ID_COMMENT, &last)) < 0)
        return rc;
    reel_event_t *ev = emit(out, REEL_EV_COMMENT_CREATED);
    ev->comment = last + 1;
    ev->post = p.id;
    ev->user = a->user;
    ev->text = a->text;
    ev->reply_to = a->reply_to;
    res->status = 201;
    res->id = ev->comment;
    return JUDGED;
}

static int comment_delete(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                          reel_cmd_result_t *res)
{
    reel_comment_view_t c;
    if (!check_id(cmd->args.comment, "comment_id", res))
        return JUDGED;
    int rc = reel_views_get_comment(ctx->txn, cmd->args.comment, &c);
    if (rc == REEL_ENOTFOUND) {
        reel__res_error(res, 404, "not_found", "comment_id", "no comment %llu",
                        (unsigned long long)cmd->args.comment);
        return JUDGED;
    }
    if (rc < 0)
        return rc;
    res->status = 200;
    emit(out, REEL_EV_COMMENT_DELETED)->comment = c.id;
    return JUDGED;
}

static int view(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                reel_cmd_result_t *res)
{
    reel_post_view_t p;
    int rc = need_user_post(ctx, cmd->args.user, cmd->args.post, "user", res, &p);
    if (rc <= 0)
        return rc;
    if (cmd->args.watch_ms > REEL_ID_MAX) {
        reel__res_error(res, 400, "bad_field", "watch_ms", "watch_ms is out of range");
        return JUDGED;
    }
    reel_event_t *ev = emit(out, REEL_EV_VIEW_RECORDED);
    ev->user = cmd->args.user;
    ev->post = p.id;
    ev->watch_ms = cmd->args.watch_ms;
    ev->completed = cmd->args.completed;
    res->status = 200;
    return JUDGED;
}

static int feedback(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                    reel_cmd_result_t *res)
{
    static const char *const kinds[] = {"see_less", "see_more", "not_interested", "hide_creator"};
    reel_post_view_t p;
    reel_str_t k = cmd->args.kind;
    int rc = need_user_post(ctx, cmd->args.user, cmd->args.post, "user", res, &p);
    if (rc <= 0)
        return rc;
    for (size_t i = 0; i < REEL_ARRAY_LEN(kinds); i++) {
        if (k.ptr != NULL && k.len == strlen(kinds[i]) && memcmp(k.ptr, kinds[i], k.len) == 0) {
            reel_event_t *ev = emit(out, REEL_EV_FEEDBACK_RECORDED);
            ev->user = cmd->args.user;
            ev->post = p.id;
            ev->kind = (reel_str_t){kinds[i], k.len};
            res->status = 200;
            return JUDGED;
        }
    }
    reel__res_error(res, 400, k.ptr ? "bad_field" : "missing_field", "kind",
                    "kind is see_less, see_more, not_interested or hide_creator");
    return JUDGED;
}

/* ---- helpers shared with rules_cameo.c and rules_gen.c ---- */

reel_event_t *reel__emit(cmd_out_t *out, uint16_t type)
{
    return emit(out, type);
}

int reel__need_user(const rules_ctx_t *ctx, uint64_t id, const char *field,
                    reel_cmd_result_t *res, reel_user_view_t *u)
{
    return need_user(ctx, id, field, res, u);
}

bool reel__check_str(reel_str_t s, uint32_t len_min, uint32_t len_max, const char *field,
                     reel_cmd_result_t *res)
{
    return check_str(s, len_min, len_max, field, res);
}

int reel__need_post(const rules_ctx_t *ctx, uint64_t id, uint64_t user, const char *field,
                    reel_cmd_result_t *res, reel_post_view_t *p)
{
    return need_post(ctx, id, user, field, res, p);
}

int reel__need_unblocked(const rules_ctx_t *ctx, uint64_t a, uint64_t b, reel_cmd_result_t *res)
{
    return need_unblocked(ctx, a, b, res);
}

int reel__need_cameos(const rules_ctx_t *ctx, uint64_t author, const reel_event_t *a,
                      reel_cmd_result_t *res)
{
    return need_cameos(ctx, author, a, res);
}

int reel__rules_run(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                    reel_cmd_result_t *res)
{
    out->n = 0;
    switch (cmd->kind) {
    case REEL_CMD_USER_CREATE: return user_create(ctx, cmd, out, res);
    case REEL_CMD_USER_UPDATE: return user_update(ctx, cmd, out, res);
    case REEL_CMD_USER_DELETE: return reel__user_delete(ctx, cmd, out, res);
    case REEL_CMD_INVITE_CREATE: return invite_create(ctx, cmd, out, res);
    case REEL_CMD_FOLLOW: return follow(ctx, cmd, out, res);
    case REEL_CMD_UNFOLLOW: return unfollow(ctx, cmd, out, res);
    case REEL_CMD_BLOCK: return block(ctx, cmd, out, res);
    case REEL_CMD_UNBLOCK: return unblock(ctx, cmd, out, res);
    case REEL_CMD_POST_CREATE: return post_create(ctx, cmd, out, res);
    case REEL_CMD_POST_PUBLISH: return post_publish(ctx, cmd, out, res);
    case REEL_CMD_POST_DELETE: return post_delete(ctx, cmd, out, res);
    case REEL_CMD_LIKE: return like(ctx, cmd, out, res, true);
    case REEL_CMD_UNLIKE: return like(ctx, cmd, out, res, false);
    case REEL_CMD_COMMENT_CREATE: return comment_create(ctx, cmd, out, res);
    case REEL_CMD_COMMENT_DELETE: return comment_delete(ctx, cmd, out, res);
    case REEL_CMD_VIEW: return view(ctx, cmd, out, res);
    case REEL_CMD_FEEDBACK: return feedback(ctx, cmd, out, res);
    case REEL_CMD_CAMEO_SET: return reel__cameo_set(ctx, cmd, out, res);
    case REEL_CMD_CAMEO_DELETE: return reel__cameo_delete(ctx, cmd, out, res);
    case REEL_CMD_CAMEO_POLICY: return reel__cameo_policy(ctx, cmd, out, res);
    case REEL_CMD_CAMEO_APPROVE: return reel__cameo_approve(ctx, cmd, out, res, true);
    case REEL_CMD_CAMEO_UNAPPROVE: return reel__cameo_approve(ctx, cmd, out, res, false);
    case REEL_CMD_CAMEO_TAKEDOWN: return reel__cameo_takedown(ctx, cmd, out, res);
    case REEL_CMD_GENERATION_CREATE: return reel__gen_create(ctx, cmd, out, res);
    case REEL_CMD_RENDER_CLAIM: return reel__render_claim(ctx, cmd, out, res);
    case REEL_CMD_RENDER_HEARTBEAT: return reel__render_heartbeat(ctx, cmd, out, res);
    case REEL_CMD_RENDER_COMPLETE: return reel__render_complete(ctx, cmd, out, res);
    case REEL_CMD_RENDER_FAIL: return reel__render_fail(ctx, cmd, out, res);
    case REEL_CMD_NONE:
    case REEL_CMD_COUNT:
        break;
    }
    REEL_ASSERT(false); /* submit refuses unknown kinds */
    return REEL_EUSAGE;
}
