/*
 * rules_gen.c: generations and the render queue (../shared/API.md,
 * "Generations and the render queue"): the rolling 24 h quota, the queue
 * workers claim from, leases with their heartbeats and expiry, and the
 * completion that turns a generation into a post.
 *
 * Invariants.
 *  1. Time comes from the command only (ctx->now): quota windows and
 *     leases are judged from engine time, never a clock, so a replay of
 *     the log reproduces every transition without any rule.
 *  2. A lease is held by exactly one worker: only that worker, before
 *     lease_until, may heartbeat, complete or fail the generation
 *     (anything else is 409 lease_lost), so a generation completes once.
 *  3. Leases that ran out are expired at the start of the next claim, in
 *     the claim's own group (bounded by REEL_EXPIRE_MAX a claim), so the
 *     log says when each task went back to the queue; that claim may take
 *     them again at once, in queue order (oldest first).
 *  4. The views cannot know --render-attempts, so the rules decide when
 *     the attempts are spent: a retryable failure that spent the last one
 *     is logged with retryable false, and an expiry that spent it is
 *     followed by a final generation.failed "lease_expired".
 *
 * The long poll (wait_ms) is the server's. A completion that finds a
 * cameo no longer allowed is answered 409 lease_lost AND records the
 * generation's end (generation.cancelled, "consent_revoked"): the result
 * is cancelled, not posted, and no worker renders it again. The revoke
 * cascade cancels such generations when consent ends, so only a path the
 * cascade missed gets here: this is the last line of the consent rule.
 */
#include "engine/engine_int.h"
#include "engine/common.h"

#include <stdio.h>
#include <string.h>

#define JUDGED 0
/* The quota's rolling window: 24 h in ms. */
#define QUOTA_WINDOW_MS (24ull * 3600u * 1000u)
/* The API's lease_ms bounds and default. */
#define LEASE_MS_DEFAULT 60000u
#define LEASE_MS_MIN 100u
#define LEASE_MS_MAX 3600000u

_Static_assert(REEL_CLAIM_MAX <= REEL_VIEWS_PAGE_MAX, "a claim reads one queue page");

static reel_str_t lit(const char *s)
{
    return (reel_str_t){s, (uint32_t)strlen(s)};
}

static uint64_t div_ceil(uint64_t a, uint64_t b)
{
    REEL_ASSERT(b > 0);
    return a / b + (a % b != 0);
}

/* A generation's own fields: prompt, tags, cameos within the limits. */
static bool check_gen_body(const reel_event_t *a, reel_cmd_result_t *res)
{
    if (!reel__check_str(a->prompt, 1, REEL_PROMPT_LEN_MAX, "prompt", res))
        return false;
    if (a->ntags > REEL_TAGS_MAX || a->ncameos > REEL_CAMEOS_MAX) {
        reel__res_error(res, 400, "bad_field", a->ntags > REEL_TAGS_MAX ? "tags" : "cameos",
                        "at most %u tags and %u cameos", REEL_TAGS_MAX, REEL_CAMEOS_MAX);
        return false;
    }
    for (uint32_t i = 0; i < a->ntags; i++) {
        char field[16];
        snprintf(field, sizeof(field), "tags[%u]", i);
        if (!reel__check_str(a->tags[i], 1, REEL_TAG_LEN_MAX, field, res))
            return false;
    }
    return true;
}

/* The quota at ctx->now: 1 room left (res->quota as it will be after one
 * more), 0 judged (429 quota_exceeded with retry_after_s), < 0 error. */
static int need_quota(const rules_ctx_t *ctx, uint64_t user, reel_cmd_result_t *res)
{
    uint64_t used, oldest;
    uint64_t limit = ctx->opts->generations_per_day;
    REEL_ASSERT(limit > 0); /* the engine's default applies at open */
    int rc = reel_views_quota(ctx->txn, user, ctx->now, QUOTA_WINDOW_MS, limit, &used, &oldest);
    if (rc < 0)
        return rc;
    if (used >= limit) {
        /* The oldest counted one is inside the window, so this is >= 1 s. */
        uint64_t resets_at = oldest + QUOTA_WINDOW_MS;
        REEL_ASSERT(resets_at > ctx->now);
        reel__res_error(res, 429, "quota_exceeded", "",
                        "%llu generations in the last 24 h (limit %llu)",
                        (unsigned long long)used, (unsigned long long)limit);
        res->retry_after_s = div_ceil(resets_at - ctx->now, 1000);
        res->quota = (reel_quota_t){used, limit, resets_at};
        return JUDGED;
    }
    /* With this one counted, the oldest is the old oldest, or this one. */
    res->quota = (reel_quota_t){used + 1, limit, (used ? oldest : ctx->now) + QUOTA_WINDOW_MS};
    return 1;
}

int reel_engine_quota(reel_views_txn_t *t, uint64_t user, uint64_t now_ms, uint32_t limit,
                      reel_quota_t *out)
{
    reel_user_view_t u;
    uint64_t used, oldest;
    if (t == NULL || out == NULL || limit == 0)
        return REEL_EUSAGE;
    int rc = reel_views_get_user(t, user, &u);
    if (rc == 0)
        rc = reel_views_quota(t, user, now_ms, QUOTA_WINDOW_MS, limit, &used, &oldest);
    if (rc != 0)
        return rc;
    *out = (reel_quota_t){used, limit, used ? oldest + QUOTA_WINDOW_MS : 0};
    return 0;
}

int reel__gen_create(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                     reel_cmd_result_t *res)
{
    const reel_event_t *a = &cmd->args;
    reel_user_view_t u;
    reel_post_view_t parent;
    uint64_t last;
    int rc = reel__need_user(ctx, a->user, "user", res, &u);
    if (rc <= 0)
        return rc;
    if (!check_gen_body(a, res))
        return JUDGED;
    if (a->remix_of != 0) {
        rc = reel__need_post(ctx, a->remix_of, u.id, "remix_of", res, &parent);
        if (rc > 0)
            rc = reel__need_unblocked(ctx, u.id, parent.author, res);
        if (rc <= 0)
            return rc;
    }
    if ((rc = reel__need_cameos(ctx, u.id, a, res)) <= 0 || (rc = need_quota(ctx, u.id, res)) <= 0)
        return rc;
    if ((rc = reel_views_last_id(ctx->txn, REEL_VIEWS_ID_GENERATION, &last)) < 0)
        return rc;
    reel_event_t *ev = reel__emit(out, REEL_EV_GENERATION_REQUESTED);
    ev->generation = last + 1;
    ev->user = u.id;
    ev->prompt = a->prompt;
    ev->remix_of = a->remix_of;
    ev->ncameos = a->ncameos;
    memcpy(ev->cameos, a->cameos, sizeof(ev->cameos[0]) * a->ncameos);
    ev->ntags = a->ntags;
    memcpy(ev->tags, a->tags, sizeof(ev->tags[0]) * a->ntags);
    res->status = 202;
    res->id = ev->generation;
    return JUDGED;
}

/* ---- leases ---- */

/* The API's lease_ms (args.lease_until, reel.h): true with *lease_ms,
 * false judged (400). */
static bool lease_ms_arg(const reel_cmd_t *cmd, uint64_t *lease_ms, reel_cmd_result_t *res)
{
    uint64_t ms = cmd->args.lease_until;
    *lease_ms = ms ? ms : LEASE_MS_DEFAULT;
    if (*lease_ms >= LEASE_MS_MIN && *lease_ms <= LEASE_MS_MAX)
        return true;
    reel__res_error(res, 400, "bad_field", "lease_ms", "lease_ms must be %u to %u", LEASE_MS_MIN,
                    LEASE_MS_MAX);
    return false;
}

/* Invariant 2: args.generation is running, held by args.worker, and its
 * lease has not run out at ctx->now. 1 held (g loaded), 0 judged (400,
 * 404, 409 lease_lost), < 0 read error. */
static int need_lease(const rules_ctx_t *ctx, const reel_cmd_t *cmd, reel_generation_view_t *g,
                      reel_cmd_result_t *res)
{
    uint64_t id = cmd->args.generation;
    reel_str_t w = cmd->args.worker;
    if (id < 1 || id > REEL_ID_MAX) {
        reel__res_error(res, 400, "bad_field", "generation_id",
                        "generation_id must be an integer in 1..2^53-1");
        return JUDGED;
    }
    int rc = reel_views_get_generation(ctx->txn, id, g);
    if (rc == REEL_ENOTFOUND) {
        reel__res_error(res, 404, "not_found", "generation_id", "no generation %llu",
                        (unsigned long long)id);
        return JUDGED;
    }
    if (rc < 0)
        return rc;
    bool mine = g->worker_len == w.len && memcmp(g->worker, w.ptr, w.len) == 0;
    if (g->status == REEL_GEN_RUNNING && mine && g->lease_until > ctx->now)
        return 1;
    if (g->status == REEL_GEN_CANCELLED || g->status == REEL_GEN_COMPLETED)
        reel__res_error(res, 409, "lease_lost", "", "generation %llu is %s",
                        (unsigned long long)id,
                        g->status == REEL_GEN_CANCELLED ? "cancelled" : "completed already");
    else
        reel__res_error(res, 409, "lease_lost", "", "worker %.*s does not hold the lease of %llu",
                        (int)w.len, w.ptr, (unsigned long long)id);
    return JUDGED;
}

/* A generation a claim may take: from the queue, or re-queued by the
 * claim's own expiries (not in the views yet: the events apply after the
 * rules). Claims take them in queue order, (created_at, id). */
typedef struct claim_candidate {
    uint64_t created_at;
    uint64_t id;
    uint64_t attempts;
} claim_candidate_t;

typedef struct claim_candidates {
    claim_candidate_t c[REEL_EXPIRE_MAX + REEL_CLAIM_MAX];
    uint32_t n;
} claim_candidates_t;

/* Inserts g in queue order (insertion sort: at most 80 entries). */
static void candidate_add(claim_candidates_t *cs, const reel_generation_view_t *g)
{
    REEL_ASSERT(cs->n < REEL_ARRAY_LEN(cs->c));
    uint32_t i = cs->n++;
    for (; i > 0; i--) {
        const claim_candidate_t *p = &cs->c[i - 1];
        if (p->created_at < g->created_at || (p->created_at == g->created_at && p->id < g->id))
            break;
        cs->c[i] = *p;
    }
    cs->c[i] = (claim_candidate_t){g->created_at, g->id, g->attempts};
}

/* Invariant 3: expires up to REEL_EXPIRE_MAX leases that ran out by
 * ctx->now (the workers that held them copied into out->text); those with
 * attempts left become claim candidates. */
static int expire_leases(const rules_ctx_t *ctx, cmd_out_t *out, claim_candidates_t *cs)
{
    uint64_t ids[REEL_EXPIRE_MAX];
    reel_generation_view_t g;
    size_t n;
    int rc = reel_views_leases_expired(ctx->txn, ctx->now, REEL_EXPIRE_MAX, ids, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if ((rc = reel_views_get_generation(ctx->txn, ids[i], &g)) < 0)
            return rc;
        char *w = out->text + i * REEL_SHORT_LEN_MAX;
        memcpy(w, g.worker, g.worker_len);
        reel_event_t *ev = reel__emit(out, REEL_EV_GENERATION_EXPIRED);
        ev->generation = g.id;
        ev->worker = (reel_str_t){w, g.worker_len};
        if (g.attempts < ctx->opts->render_attempts) {
            candidate_add(cs, &g);
            continue;
        }
        ev = reel__emit(out, REEL_EV_GENERATION_FAILED); /* invariant 4 */
        ev->generation = g.id;
        ev->worker = (reel_str_t){w, g.worker_len};
        ev->reason = lit("lease_expired");
    }
    return rc;
}

/* Adds the oldest `max` queued generations to the candidates. */
static int queue_candidates(const rules_ctx_t *ctx, uint64_t max, claim_candidates_t *cs)
{
    uint64_t ids[REEL_CLAIM_MAX];
    reel_generation_view_t g;
    size_t n;
    REEL_ASSERT(max >= 1 && max <= REEL_CLAIM_MAX);
    int rc = reel_views_queue(ctx->txn, (size_t)max, ids, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if ((rc = reel_views_get_generation(ctx->txn, ids[i], &g)) == 0)
            candidate_add(cs, &g);
    }
    return rc;
}

int reel__render_claim(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                       reel_cmd_result_t *res)
{
    claim_candidates_t cs = {.n = 0};
    uint64_t lease_ms;
    uint64_t max = cmd->args.attempt ? cmd->args.attempt : 1;
    if (!reel__check_str(cmd->args.worker, 1, REEL_SHORT_LEN_MAX, "worker", res) ||
        !lease_ms_arg(cmd, &lease_ms, res))
        return JUDGED;
    if (max > REEL_CLAIM_MAX) {
        reel__res_error(res, 400, "bad_field", "max", "max must be 1 to %u", REEL_CLAIM_MAX);
        return JUDGED;
    }
    int rc = expire_leases(ctx, out, &cs);
    if (rc == 0)
        rc = queue_candidates(ctx, max, &cs);
    if (rc < 0)
        return rc;
    for (uint32_t i = 0; i < cs.n && i < max; i++) {
        reel_event_t *ev = reel__emit(out, REEL_EV_GENERATION_CLAIMED);
        ev->generation = cs.c[i].id;
        ev->worker = cmd->args.worker;
        ev->attempt = cs.c[i].attempts + 1;
        ev->lease_until = ctx->now + lease_ms;
        res->claimed[res->nclaimed++] = cs.c[i].id;
    }
    res->status = 200;
    res->lease_until = ctx->now + lease_ms;
    return JUDGED;
}

int reel__render_heartbeat(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                           reel_cmd_result_t *res)
{
    reel_generation_view_t g;
    uint64_t lease_ms;
    if (!reel__check_str(cmd->args.worker, 1, REEL_SHORT_LEN_MAX, "worker", res) ||
        !lease_ms_arg(cmd, &lease_ms, res))
        return JUDGED;
    int rc = need_lease(ctx, cmd, &g, res);
    if (rc <= 0)
        return rc;
    reel_event_t *ev = reel__emit(out, REEL_EV_GENERATION_HEARTBEAT);
    ev->generation = g.id;
    ev->worker = cmd->args.worker;
    ev->lease_until = ctx->now + lease_ms;
    res->status = 200;
    res->lease_until = ev->lease_until;
    return JUDGED;
}

/* ---- completion ---- */

/* The completion's own fields: 400 when malformed. */
static bool check_completion(const rules_ctx_t *ctx, const reel_event_t *a, reel_cmd_result_t *res)
{
    if (!reel__check_str(a->worker, 1, REEL_SHORT_LEN_MAX, "worker", res) ||
        !reel__check_str(a->video_uri, 1, REEL_URI_LEN_MAX, "video_uri", res))
        return false;
    if (a->duration_ms > REEL_ID_MAX) {
        reel__res_error(res, 400, "bad_field", "duration_ms", "duration_ms is out of range");
        return false;
    }
    return reel__check_dim(ctx, a, res);
}

/* Every cameo of g still allowed to its author: 1, 0 judged (409 with
 * the generation cancelled: out->keep), < 0. */
static int need_consent(const rules_ctx_t *ctx, const reel_generation_view_t *g, cmd_out_t *out,
                        reel_cmd_result_t *res)
{
    for (uint32_t i = 0; i < g->ncameos; i++) {
        bool allowed;
        const char *why;
        int rc = reel__consent(ctx->txn, g->cameos[i], g->user, NULL, &allowed, &why);
        if (rc < 0)
            return rc;
        if (!allowed) {
            reel__res_error(res, 409, "lease_lost", "",
                            "cancelled: user %llu may no longer use the cameo of user %llu (%s)",
                            (unsigned long long)g->user, (unsigned long long)g->cameos[i], why);
            reel_event_t *ev = reel__emit(out, REEL_EV_GENERATION_CANCELLED);
            ev->generation = g->id;
            ev->reason = lit("consent_revoked");
            out->keep = true; /* refused, and the refusal is an event */
            return JUDGED;
        }
    }
    return 1;
}

/* Copies g's prompt and tags into out->text for ev (the views' memory does
 * not live as long as the event: CMD_TEXT_BYTES). */
static void copy_gen_text(const reel_generation_view_t *g, cmd_out_t *out, reel_event_t *ev)
{
    size_t used = g->prompt_len;
    REEL_ASSERT(g->prompt_len <= REEL_PROMPT_LEN_MAX);
    REEL_ASSERT(g->ntags <= REEL_TAGS_MAX);
    memcpy(out->text, g->prompt, g->prompt_len);
    ev->prompt = (reel_str_t){out->text, g->prompt_len};
    for (uint32_t i = 0; i < g->ntags; i++) {
        REEL_ASSERT(used + g->tags[i].len <= CMD_TEXT_BYTES);
        memcpy(out->text + used, g->tags[i].ptr, g->tags[i].len);
        ev->tags[i] = (reel_str_t){out->text + used, g->tags[i].len};
        used += g->tags[i].len;
    }
    ev->ntags = g->ntags;
}

/* The post a completion makes: the generation's prompt, tags, cameos and
 * remix_of (dropped when the parent is gone), the worker's video. */
static int emit_gen_post(const rules_ctx_t *ctx, const reel_event_t *a,
                         const reel_generation_view_t *g, uint64_t post, cmd_out_t *out)
{
    reel_post_view_t parent;
    reel_event_t *ev = reel__emit(out, REEL_EV_POST_CREATED);
    ev->post = post;
    ev->user = g->user;
    ev->generation = g->id;
    ev->video_uri = a->video_uri;
    ev->dim = a->dim;
    ev->embedding = a->embedding;
    ev->visibility = a->publish ? lit("public") : lit("draft");
    ev->ncameos = g->ncameos;
    memcpy(ev->cameos, g->cameos, sizeof(ev->cameos[0]) * g->ncameos);
    copy_gen_text(g, out, ev);
    if (g->remix_of == 0)
        return 0;
    int rc = reel_views_get_post(ctx->txn, g->remix_of, &parent);
    if (rc == REEL_ENOTFOUND)
        return 0;
    if (rc == 0) {
        ev->remix_of = parent.id;
        ev->remix_root = parent.remix_root ? parent.remix_root : parent.id;
    }
    return rc;
}

int reel__render_complete(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                          reel_cmd_result_t *res)
{
    const reel_event_t *a = &cmd->args;
    reel_generation_view_t g;
    uint64_t last;
    if (!check_completion(ctx, a, res))
        return JUDGED;
    int rc = need_lease(ctx, cmd, &g, res);
    if (rc > 0)
        rc = need_consent(ctx, &g, out, res);
    if (rc <= 0)
        return rc;
    if ((rc = reel_views_last_id(ctx->txn, REEL_VIEWS_ID_POST, &last)) < 0)
        return rc;
    reel_event_t *ev = reel__emit(out, REEL_EV_GENERATION_COMPLETED);
    ev->generation = g.id;
    ev->worker = a->worker;
    ev->post = last + 1;
    ev->video_uri = a->video_uri;
    ev->duration_ms = a->duration_ms;
    ev->publish = a->publish;
    ev->dim = a->dim;
    ev->embedding = a->embedding;
    if ((rc = emit_gen_post(ctx, a, &g, last + 1, out)) < 0)
        return rc;
    res->status = 200;
    res->id = last + 1;
    return JUDGED;
}

int reel__render_fail(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                      reel_cmd_result_t *res)
{
    reel_generation_view_t g;
    if (!reel__check_str(cmd->args.worker, 1, REEL_SHORT_LEN_MAX, "worker", res) ||
        !reel__check_str(cmd->args.reason, 1, REEL_TEXT_LEN_MAX, "reason", res))
        return JUDGED;
    int rc = need_lease(ctx, cmd, &g, res);
    if (rc <= 0)
        return rc;
    reel_event_t *ev = reel__emit(out, REEL_EV_GENERATION_FAILED);
    ev->generation = g.id;
    ev->worker = cmd->args.worker;
    ev->reason = cmd->args.reason;
    /* Invariant 4: the attempt just failed was the claim's (attempts). */
    ev->retryable = cmd->args.retryable && g.attempts < ctx->opts->render_attempts;
    res->status = 200;
    return JUDGED;
}
