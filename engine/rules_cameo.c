/*
 * rules_cameo.c: cameos and consent (../shared/API.md, "Cameos and
 * consent"): who may use whose cameo, the cameo commands, and the revoke
 * cascade that other rules (block, unfollow) call too.
 *
 * The rules run before their command's events are applied to the views,
 * so "who loses the right" is decided by overlaying the pending change
 * (cameo_change_t) on the views, never by re-reading after the fact. The
 * cascade's post.hidden events go in the same group as their cause, so a
 * replay folds them like any other event and needs no rule.
 *
 * The cascade cancels the losers' queued or running generations that
 * feature the cameo (generation.cancelled, same reason) before it hides
 * their posts, in the same group, and the commands emit their cause (the
 * policy, the revoked consent, the deleted cameo) after it. A cascade
 * beyond REEL_CASCADE_CHUNK_MAX events is cut into chunks (out->more):
 * each is appended as a group of its own before the cause, so a crash
 * between chunks leaves posts hidden early, never a cameo used without
 * consent; judged again, the command finds those posts hidden and those
 * generations ended, and goes on where it stopped.
 */
#include "engine/engine_int.h"
#include "engine/common.h"

#include <string.h>

#define JUDGED 0
/* Appearances read per page while cascading: one page of the views. */
#define CASCADE_PAGE 64u

_Static_assert(REEL_CMD_EVENTS_OWN < REEL_CMD_EVENTS_MAX, "room for a cascade");

/* The API's policy names, indexed by reel_cameo_policy_t. */
static const char *const policy_names[] = {
    [REEL_CAMEO_ONLY_ME] = "only_me",
    [REEL_CAMEO_APPROVED] = "approved",
    [REEL_CAMEO_MUTUALS] = "mutuals",
    [REEL_CAMEO_EVERYONE] = "everyone",
};

static reel_str_t lit(const char *s)
{
    return (reel_str_t){s, (uint32_t)strlen(s)};
}

/* Whether {x, y} is the pair {a, b} in either order (a 0 pair: never). */
static bool same_pair(uint64_t x, uint64_t y, uint64_t a, uint64_t b)
{
    return a != 0 && ((x == a && y == b) || (x == b && y == a));
}

/* *yes: x follows y once chg is made. */
static int follows_after(reel_views_txn_t *t, const cameo_change_t *chg, uint64_t x, uint64_t y,
                         bool *yes)
{
    if (chg->unfollow_a == x && chg->unfollow_b == y) {
        *yes = false;
        return 0;
    }
    return reel_views_follows(t, x, y, yes);
}

/* The policy's verdict for a grantee who is not the owner and not
 * blocked, once chg is made. */
static int policy_allows(reel_views_txn_t *t, uint64_t owner, uint64_t grantee, int policy,
                         const cameo_change_t *chg, bool *allowed, const char **reason)
{
    bool yes = false, back = false;
    int rc = 0;
    switch (policy) {
    case REEL_CAMEO_EVERYONE:
        *allowed = true, *reason = "everyone";
        return 0;
    case REEL_CAMEO_MUTUALS:
        if ((rc = follows_after(t, chg, owner, grantee, &yes)) == 0 && yes)
            rc = follows_after(t, chg, grantee, owner, &back);
        *allowed = yes && back, *reason = *allowed ? "mutuals" : "not_mutual";
        return rc;
    case REEL_CAMEO_APPROVED:
        rc = reel_views_is_approved(t, owner, grantee, &yes);
        *allowed = yes && chg->unapproved != grantee;
        *reason = *allowed ? "approved" : "not_approved";
        return rc;
    default:
        *allowed = false, *reason = "only_me";
        return 0;
    }
}

int reel__consent(reel_views_txn_t *t, uint64_t owner, uint64_t grantee,
                  const cameo_change_t *chg, bool *allowed, const char **reason)
{
    static const cameo_change_t none = {.policy = -1};
    reel_cameo_view_t c;
    bool blocked = false;
    chg = chg ? chg : &none;
    *allowed = false;
    if (owner == grantee) { /* one's own likeness needs no consent, cameo or not */
        *allowed = true, *reason = "owner";
        return 0;
    }
    int rc = reel_views_get_cameo(t, owner, &c);
    if (rc < 0 && rc != REEL_ENOTFOUND)
        return rc;
    if (rc == REEL_ENOTFOUND || c.asset_len == 0 || chg->deleted) {
        *reason = "no_cameo"; /* a policy set before any asset is no cameo */
        return 0;
    }
    if ((rc = reel_views_is_blocked(t, owner, grantee, &blocked)) < 0)
        return rc;
    if (blocked || same_pair(owner, grantee, chg->block_a, chg->block_b)) {
        *reason = "blocked";
        return 0;
    }
    int policy = chg->policy >= 0 ? chg->policy : c.policy;
    return policy_allows(t, owner, grantee, policy, chg, allowed, reason);
}

int reel_engine_can_use(reel_views_txn_t *t, uint64_t owner, uint64_t grantee, bool *allowed,
                        const char **reason)
{
    reel_user_view_t u;
    if (t == NULL || allowed == NULL || reason == NULL)
        return REEL_EUSAGE;
    int rc = reel_views_get_user(t, owner, &u);
    if (rc == 0)
        rc = reel_views_get_user(t, grantee, &u);
    return rc != 0 ? rc : reel__consent(t, owner, grantee, NULL, allowed, reason);
}

/* One step of the cascade: when author may not use owner's cameo once
 * chg is made, the event of type (post.hidden for the post id, or
 * generation.cancelled for the generation id) with reason. 1 fine, 0 the
 * chunk is full (out->more: the command is judged again), < 0 error. */
static int revoke_one(const rules_ctx_t *ctx, uint64_t owner, uint64_t author,
                      const cameo_change_t *chg, uint16_t type, uint64_t id, const char *reason,
                      cmd_out_t *out)
{
    bool allowed;
    const char *why;
    int rc = reel__consent(ctx->txn, owner, author, chg, &allowed, &why);
    if (rc < 0 || allowed)
        return rc < 0 ? rc : 1;
    if (out->n >= REEL_CASCADE_CHUNK_MAX) {
        out->more = true; /* a full chunk is no refusal */
        return JUDGED;
    }
    reel_event_t *ev = reel__emit(out, type);
    if (type == REEL_EV_POST_HIDDEN)
        ev->post = id;
    else
        ev->generation = id;
    ev->reason = lit(reason);
    return 1;
}

/* The generations half of the cascade: every queued or running
 * generation featuring owner's cameo, by author (0: any), whose author
 * loses the right is cancelled, so no worker renders or posts it. */
static int cascade_generations(const rules_ctx_t *ctx, uint64_t owner, uint64_t author,
                               const cameo_change_t *chg, const char *reason, cmd_out_t *out)
{
    reel_gen_entry_t page[REEL_VIEWS_GEN_PAGE_MAX];
    uint64_t cursor = 0;
    size_t n;
    do {
        int rc = reel_views_gen_by_cameo(ctx->txn, owner, cursor, REEL_VIEWS_GEN_PAGE_MAX, page,
                                         &n);
        if (rc < 0)
            return rc;
        for (size_t i = 0; i < n; i++) {
            cursor = page[i].generation;
            if ((author != 0 && page[i].user != author) || page[i].user == owner)
                continue; /* not this cascade's author, or the owner */
            if ((rc = revoke_one(ctx, owner, page[i].user, chg, REEL_EV_GENERATION_CANCELLED,
                                 page[i].generation, reason, out)) <= 0)
                return rc;
        }
    } while (n == REEL_VIEWS_GEN_PAGE_MAX); /* a short page is the last */
    return 1;
}

int reel__cameo_cascade(const rules_ctx_t *ctx, uint64_t owner, uint64_t author,
                        const cameo_change_t *chg, const char *reason, cmd_out_t *out)
{
    int rc = cascade_generations(ctx, owner, author, chg, reason, out);
    if (rc <= 0)
        return rc;
    reel_appearance_t page[CASCADE_PAGE];
    uint64_t cursor = 0;
    size_t n;
    do {
        rc = reel_views_appearances(ctx->txn, owner, cursor, CASCADE_PAGE, page, &n);
        if (rc < 0)
            return rc;
        for (size_t i = 0; i < n; i++) {
            const reel_appearance_t *e = &page[i];
            cursor = e->post;
            /* Hidden already (its first reason stays), or not this
             * cascade's author, or the owner (who never loses the right). */
            if (e->hidden || (author != 0 && e->author != author) || e->author == owner)
                continue;
            if ((rc = revoke_one(ctx, owner, e->author, chg, REEL_EV_POST_HIDDEN, e->post, reason,
                                 out)) <= 0)
                return rc;
        }
    } while (n == CASCADE_PAGE); /* a short page is the last */
    return 1;
}

/* ---- the commands ---- */

int reel__cameo_set(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                    reel_cmd_result_t *res)
{
    reel_user_view_t u;
    reel_cameo_view_t c;
    reel_str_t asset = cmd->args.asset;
    int rc = reel__need_user(ctx, cmd->args.user, "user_id", res, &u);
    if (rc <= 0)
        return rc;
    if (!reel__check_str(asset, 1, REEL_URI_LEN_MAX, "asset", res))
        return JUDGED;
    res->status = 200;
    rc = reel_views_get_cameo(ctx->txn, u.id, &c);
    if (rc < 0 && rc != REEL_ENOTFOUND)
        return rc;
    if (rc == 0 && c.asset_len == asset.len && memcmp(c.asset, asset.ptr, asset.len) == 0)
        return JUDGED; /* the same asset again changes nothing */
    reel_event_t *ev = reel__emit(out, REEL_EV_CAMEO_REGISTERED);
    ev->user = u.id;
    ev->asset = asset;
    return JUDGED;
}

/* Deleting takes the cameo from everyone but its owner: their posts and
 * drafts featuring it are hidden as "cameo_deleted". No cameo (or only a
 * policy set before any asset): 200 with no event. */
int reel__cameo_delete(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                       reel_cmd_result_t *res)
{
    reel_user_view_t u;
    reel_cameo_view_t c;
    int rc = reel__need_user(ctx, cmd->args.user, "user_id", res, &u);
    if (rc <= 0)
        return rc;
    res->status = 200;
    rc = reel_views_get_cameo(ctx->txn, u.id, &c);
    if (rc == REEL_ENOTFOUND || (rc == 0 && c.asset_len == 0))
        return JUDGED;
    if (rc < 0)
        return rc;
    cameo_change_t chg = CAMEO_CHANGE_NONE;
    chg.deleted = true;
    rc = reel__cameo_cascade(ctx, u.id, 0, &chg, "cameo_deleted", out);
    if (rc <= 0)
        return rc; /* a read error, or a chunk (out->more): the cause comes last */
    reel__emit(out, REEL_EV_CAMEO_DELETED)->user = u.id;
    return JUDGED;
}

/* The policy named s: its value, or -1. */
static int policy_parse(reel_str_t s)
{
    for (size_t i = 0; i < REEL_ARRAY_LEN(policy_names); i++) {
        if (s.ptr != NULL && s.len == strlen(policy_names[i]) &&
            memcmp(s.ptr, policy_names[i], s.len) == 0)
            return (int)i;
    }
    return -1;
}

int reel__cameo_policy(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                       reel_cmd_result_t *res)
{
    reel_user_view_t u;
    reel_cameo_view_t c;
    int rc = reel__need_user(ctx, cmd->args.user, "user_id", res, &u);
    if (rc <= 0)
        return rc;
    int policy = policy_parse(cmd->args.policy);
    if (policy < 0) {
        reel__res_error(res, 400, cmd->args.policy.ptr ? "bad_field" : "missing_field", "policy",
                        "policy is only_me, approved, mutuals or everyone");
        return JUDGED;
    }
    res->status = 200;
    rc = reel_views_get_cameo(ctx->txn, u.id, &c);
    if (rc < 0 && rc != REEL_ENOTFOUND)
        return rc;
    int cur = rc == REEL_ENOTFOUND ? REEL_CAMEO_ONLY_ME : c.policy; /* the default */
    if (cur == policy)
        return JUDGED;
    /* A wider policy takes nobody's right; a narrower one is checked
     * against every appearance. */
    cameo_change_t chg = CAMEO_CHANGE_NONE;
    chg.policy = policy;
    rc = reel__cameo_cascade(ctx, u.id, 0, &chg, "consent_revoked", out);
    if (rc <= 0)
        return rc;
    reel_event_t *ev = reel__emit(out, REEL_EV_CAMEO_POLICY_SET);
    ev->user = u.id;
    ev->policy = lit(policy_names[policy]);
    return JUDGED;
}

/* Owner (args.user) and grantee (args.target): both live, not the same,
 * and for a grant not blocked either way. 1, 0 judged, < 0 error. */
static int need_grantee(const rules_ctx_t *ctx, const reel_cmd_t *cmd, bool grant,
                        reel_cmd_result_t *res)
{
    reel_user_view_t o, g;
    bool blocked = false;
    int rc = reel__need_user(ctx, cmd->args.user, "user_id", res, &o);
    if (rc > 0)
        rc = reel__need_user(ctx, cmd->args.target, "grantee", res, &g);
    if (rc <= 0)
        return rc;
    if (o.id == g.id) {
        reel__res_error(res, 400, "bad_field", "grantee", "the owner needs no approval");
        return JUDGED;
    }
    if (grant && (rc = reel_views_is_blocked(ctx->txn, o.id, g.id, &blocked)) < 0)
        return rc;
    if (blocked) {
        reel__res_error(res, 403, "blocked", "", "user %llu and user %llu block each other",
                        (unsigned long long)o.id, (unsigned long long)g.id);
        return JUDGED;
    }
    return 1;
}

int reel__cameo_approve(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                        reel_cmd_result_t *res, bool grant)
{
    uint64_t owner = cmd->args.user, grantee = cmd->args.target;
    bool approved;
    int rc = need_grantee(ctx, cmd, grant, res);
    if (rc <= 0)
        return rc;
    res->status = 200;
    if ((rc = reel_views_is_approved(ctx->txn, owner, grantee, &approved)) < 0)
        return rc;
    if (approved == grant)
        return JUDGED; /* approving twice, or revoking what is not there */
    if (!grant) {
        /* Under `approved` the grantee loses the right; under the other
         * policies approval does not count, and consent says so. */
        cameo_change_t chg = CAMEO_CHANGE_NONE;
        chg.unapproved = grantee;
        rc = reel__cameo_cascade(ctx, owner, grantee, &chg, "consent_revoked", out);
        if (rc <= 0)
            return rc;
    }
    reel_event_t *ev = reel__emit(out, grant ? REEL_EV_CONSENT_GRANTED : REEL_EV_CONSENT_REVOKED);
    ev->user = owner;
    ev->target = grantee;
    return JUDGED;
}

/* The cameo's owner takes down a post (any author, draft or public) that
 * features the cameo; 404 when it does not feature it. */
int reel__cameo_takedown(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                         reel_cmd_result_t *res)
{
    reel_user_view_t u;
    reel_post_view_t p;
    bool appears = false;
    int rc = reel__need_user(ctx, cmd->args.user, "owner", res, &u);
    if (rc <= 0)
        return rc;
    uint64_t id = cmd->args.post;
    if (id < 1 || id > REEL_ID_MAX) {
        reel__res_error(res, 400, "bad_field", "post_id", "post_id must be an integer in 1..2^53-1");
        return JUDGED;
    }
    rc = reel_views_get_post(ctx->txn, id, &p);
    if (rc == 0)
        rc = reel_views_appears(ctx->txn, u.id, id, &appears);
    if (rc < 0 && rc != REEL_ENOTFOUND)
        return rc;
    if (!appears) {
        reel__res_error(res, 404, "not_found", "post_id", "no post %llu featuring user %llu",
                        (unsigned long long)id, (unsigned long long)u.id);
        return JUDGED;
    }
    res->status = 200;
    if (p.hidden)
        return JUDGED; /* hidden already: its first reason stays */
    reel_event_t *ev = reel__emit(out, REEL_EV_POST_HIDDEN);
    ev->post = id;
    ev->reason = lit("removed_by_cameo_owner");
    return JUDGED;
}
