/*
 * test_cameo.c: cameos and consent (engine/rules_cameo.c): the policy
 * matrix through reel_engine_can_use and through POST_CREATE, the cameo
 * commands, every revoke cascade, idempotency, and after each: the live
 * views equal a replay of the log.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/common.h"
#include "engine/engine_int.h"
#include "engine/reel.h"
#include "engine/replay.h"
#include "tests/harness.h"

static char dir[PATH_MAX];
static reel_engine_t *eng;

static void setup(void)
{
    char err[256];
    reel_engine_options_t o = {.log = {.segment_size = 256 << 10}};
    reel_test_tmpdir(dir, sizeof(dir), "cameo");
    int rc = reel_engine_open(dir, &o, &eng, err, sizeof(err));
    cr_assert_eq(rc, 0, "open: %s", err);
}

static void teardown(void)
{
    reel_engine_close(eng);
    reel_test_rmtree(dir);
}

TestSuite(cameo, .init = setup, .fini = teardown, .timeout = 120);

static reel_str_t S(const char *s)
{
    return (reel_str_t){s, (uint32_t)strlen(s)};
}

static reel_cmd_result_t run(reel_cmd_kind_t kind, reel_event_t args)
{
    return reel_test_cmd(eng, kind, 0, args);
}

static void expect(reel_cmd_result_t r, int status, const char *code)
{
    reel_test_expect(r, status, code);
}

/* Runs a command that must succeed and change nothing (offset null). */
static void expect_noop(reel_cmd_kind_t kind, reel_event_t args)
{
    reel_cmd_result_t r = run(kind, args);
    expect(r, 200, NULL);
    cr_assert_eq(r.offset, -1, "a write that changes nothing appends nothing");
}

static uint64_t user(const char *handle)
{
    reel_cmd_result_t r = run(REEL_CMD_USER_CREATE, (reel_event_t){.handle = S(handle)});
    expect(r, 201, NULL);
    return r.id;
}

/* The live views equal a fold of the log into fresh views. */
static void expect_views_equal_replay(void)
{
    reel_test_views_equal_replay(eng, dir);
}

static void set_cameo(uint64_t owner, const char *policy)
{
    expect(run(REEL_CMD_CAMEO_SET, (reel_event_t){.user = owner, .asset = S("s3://face")}), 200,
           NULL);
    if (strcmp(policy, "only_me") != 0)
        expect(run(REEL_CMD_CAMEO_POLICY, (reel_event_t){.user = owner, .policy = S(policy)}), 200,
               NULL);
}

static void follow(uint64_t a, uint64_t b)
{
    expect(run(REEL_CMD_FOLLOW, (reel_event_t){.user = a, .target = b}), 200, NULL);
}

static void approve(uint64_t owner, uint64_t grantee)
{
    expect(run(REEL_CMD_CAMEO_APPROVE, (reel_event_t){.user = owner, .target = grantee}), 200,
           NULL);
}

/* A post by author featuring cameo (0: none); must be accepted. */
static uint64_t post(uint64_t author, uint64_t cameo, const char *vis)
{
    reel_event_t a = {.user = author, .video_uri = S("file:///v.gif"), .prompt = S("a cameo"),
                      .visibility = S(vis), .ncameos = cameo ? 1 : 0};
    a.cameos[0] = cameo;
    reel_cmd_result_t r = run(REEL_CMD_POST_CREATE, a);
    expect(r, 201, NULL);
    return r.id;
}

static reel_post_view_t get_post(uint64_t id)
{
    reel_views_txn_t *t;
    reel_post_view_t p;
    cr_assert_eq(reel_engine_read_begin(eng, &t), 0);
    cr_assert_eq(reel_views_get_post(t, id, &p), 0);
    reel_views_read_end(t);
    return p;
}

static void expect_visible(uint64_t id)
{
    reel_post_view_t p = get_post(id);
    cr_assert(!p.hidden, "post %llu visible (hidden: %s)", (unsigned long long)id,
              p.hidden_reason);
}

static void expect_hidden(uint64_t id, const char *reason)
{
    reel_post_view_t p = get_post(id);
    cr_assert(p.hidden, "post %llu hidden", (unsigned long long)id);
    cr_assert_str_eq(p.hidden_reason, reason);
}

static const char *can_use(uint64_t owner, uint64_t grantee, bool *allowed)
{
    reel_views_txn_t *t;
    const char *why = NULL;
    cr_assert_eq(reel_engine_read_begin(eng, &t), 0);
    cr_assert_eq(reel_engine_can_use(t, owner, grantee, allowed, &why), 0);
    reel_views_read_end(t);
    return why;
}

/* ---- the policy matrix ---- */

/* One cell: can-use says (want_allowed, want_reason), and a post by
 * grantee with cameos [grantee, owner] agrees (403 names cameos[1]). */
static void cell(uint64_t owner, uint64_t grantee, bool want_allowed, const char *want_reason)
{
    bool allowed;
    const char *why = can_use(owner, grantee, &allowed);
    cr_assert_eq(allowed, want_allowed, "%llu uses %llu: allowed %d (%s)",
                 (unsigned long long)grantee, (unsigned long long)owner, allowed, why);
    cr_assert_str_eq(why, want_reason);
    reel_event_t a = {.user = grantee, .video_uri = S("v"), .prompt = S("p"), .ncameos = 2};
    a.cameos[0] = grantee;
    a.cameos[1] = owner;
    reel_cmd_result_t r = run(REEL_CMD_POST_CREATE, a);
    if (owner == grantee || want_allowed) {
        expect(r, 201, NULL);
        return;
    }
    expect(r, 403, "cameo_not_allowed");
    cr_assert_str_eq(r.field, "cameos[1]");
}

enum { G_OWNER, G_APPROVED, G_STRANGER, G_MUTUAL, G_ONE_WAY, G_BLOCKED, G_NO_CAMEO, G_COUNT };

static const struct {
    const char *policy;
    const char *reasons[G_COUNT]; /* allowed when one of owner, everyone, mutuals, approved */
} matrix[] = {
    {"only_me", {"owner", "only_me", "only_me", "only_me", "only_me", "blocked", "no_cameo"}},
    {"approved",
     {"owner", "approved", "not_approved", "not_approved", "not_approved", "blocked", "no_cameo"}},
    {"mutuals",
     {"owner", "not_mutual", "not_mutual", "mutuals", "not_mutual", "blocked", "no_cameo"}},
    {"everyone", {"owner", "everyone", "everyone", "everyone", "everyone", "blocked", "no_cameo"}},
};

static bool allowed_reason(const char *r)
{
    return !strcmp(r, "owner") || !strcmp(r, "everyone") || !strcmp(r, "mutuals") ||
           !strcmp(r, "approved");
}

Test(cameo, policy_matrix)
{
    for (size_t i = 0; i < REEL_ARRAY_LEN(matrix); i++) {
        char h[32];
        uint64_t g[G_COUNT];
        const char *names[G_COUNT] = {"own", "app", "str", "mut", "one", "blk", "noc"};
        for (int k = 0; k < G_COUNT; k++) {
            snprintf(h, sizeof(h), "%s_%zu", names[k], i);
            g[k] = user(h);
        }
        uint64_t o = g[G_OWNER];
        set_cameo(o, matrix[i].policy);
        approve(o, g[G_APPROVED]);
        follow(o, g[G_MUTUAL]);
        follow(g[G_MUTUAL], o);
        follow(g[G_ONE_WAY], o);
        approve(o, g[G_BLOCKED]); /* approved and mutual, then blocked */
        follow(o, g[G_BLOCKED]);
        follow(g[G_BLOCKED], o);
        expect(run(REEL_CMD_BLOCK, (reel_event_t){.user = g[G_BLOCKED], .target = o}), 200, NULL);
        /* No cameo: a policy set but no asset registered. */
        uint64_t nc = g[G_NO_CAMEO];
        expect(run(REEL_CMD_CAMEO_POLICY, (reel_event_t){.user = nc, .policy = S("everyone")}),
               200, NULL);
        for (int k = 0; k < G_NO_CAMEO; k++) {
            const char *want = matrix[i].reasons[k];
            cell(o, k == G_OWNER ? o : g[k], allowed_reason(want), want);
        }
        cell(nc, g[G_STRANGER], false, matrix[i].reasons[G_NO_CAMEO]);
        cell(nc, nc, true, "owner");
    }
    bool allowed;
    const char *why;
    reel_views_txn_t *t;
    cr_assert_eq(reel_engine_read_begin(eng, &t), 0);
    cr_assert_eq(reel_engine_can_use(t, 1, 9999, &allowed, &why), REEL_ENOTFOUND);
    reel_views_read_end(t);
    expect_views_equal_replay();
}

/* ---- the commands ---- */

Test(cameo, commands_validate_and_are_idempotent)
{
    uint64_t o = user("owner"), g = user("grantee");
    expect(run(REEL_CMD_CAMEO_SET, (reel_event_t){.user = o}), 400, "missing_field");
    expect(run(REEL_CMD_CAMEO_SET, (reel_event_t){.user = o, .asset = S("")}), 400, "bad_field");
    expect(run(REEL_CMD_CAMEO_SET, (reel_event_t){.user = 77, .asset = S("a")}), 404, "not_found");
    reel_cmd_result_t r = run(REEL_CMD_CAMEO_POLICY, (reel_event_t){.user = o, .policy = S("all")});
    expect(r, 400, "bad_field");
    cr_assert_str_eq(r.field, "policy");
    expect(run(REEL_CMD_CAMEO_POLICY, (reel_event_t){.user = o}), 400, "missing_field");
    expect_noop(REEL_CMD_CAMEO_DELETE, (reel_event_t){.user = o}); /* no cameo: nothing */
    expect_noop(REEL_CMD_CAMEO_POLICY, (reel_event_t){.user = o, .policy = S("only_me")});
    set_cameo(o, "everyone");
    expect_noop(REEL_CMD_CAMEO_SET, (reel_event_t){.user = o, .asset = S("s3://face")});
    expect(run(REEL_CMD_CAMEO_SET, (reel_event_t){.user = o, .asset = S("s3://face2")}), 200, NULL);
    expect_noop(REEL_CMD_CAMEO_POLICY, (reel_event_t){.user = o, .policy = S("everyone")});
    approve(o, g);
    expect_noop(REEL_CMD_CAMEO_APPROVE, (reel_event_t){.user = o, .target = g});
    expect(run(REEL_CMD_CAMEO_APPROVE, (reel_event_t){.user = o, .target = o}), 400, "bad_field");
    expect(run(REEL_CMD_CAMEO_APPROVE, (reel_event_t){.user = o, .target = 99}), 404, "not_found");
    expect(run(REEL_CMD_CAMEO_UNAPPROVE, (reel_event_t){.user = o, .target = g}), 200, NULL);
    expect_noop(REEL_CMD_CAMEO_UNAPPROVE, (reel_event_t){.user = o, .target = g});
    expect(run(REEL_CMD_BLOCK, (reel_event_t){.user = g, .target = o}), 200, NULL);
    expect(run(REEL_CMD_CAMEO_APPROVE, (reel_event_t){.user = o, .target = g}), 403, "blocked");
    expect_views_equal_replay();
}

Test(cameo, appearances_list_posts_and_drafts_not_deleted)
{
    uint64_t o = user("star"), a = user("fan_a"), b = user("fan_b");
    set_cameo(o, "everyone");
    uint64_t p1 = post(a, o, "public"), p2 = post(b, o, "draft"), p3 = post(o, o, "public");
    post(a, 0, "public");
    uint64_t p5 = post(b, o, "public");
    expect(run(REEL_CMD_POST_DELETE, (reel_event_t){.post = p3}), 200, NULL);
    reel_views_txn_t *t;
    reel_appearance_t e[2];
    size_t n;
    cr_assert_eq(reel_engine_read_begin(eng, &t), 0);
    cr_assert_eq(reel_views_appearances(t, o, 0, 2, e, &n), 0);
    cr_assert_eq(n, 2);
    cr_assert(e[0].post == p1 && e[0].author == a && e[0].public);
    cr_assert(e[1].post == p2 && e[1].author == b && !e[1].public);
    cr_assert_eq(reel_views_appearances(t, o, e[1].post, 2, e, &n), 0);
    cr_assert_eq(n, 1, "the deleted post is skipped");
    cr_assert_eq(e[0].post, p5);
    cr_assert_eq(reel_views_appearances(t, o, p5, 2, e, &n), 0);
    cr_assert_eq(n, 0);
    reel_views_read_end(t);
    expect_views_equal_replay();
}

/* ---- the cascades ---- */

Test(cameo, approval_revoked_hides_posts_and_drafts)
{
    uint64_t o = user("owner"), g = user("gina"), h = user("hank");
    set_cameo(o, "approved");
    approve(o, g);
    approve(o, h);
    uint64_t gp = post(g, o, "public"), gd = post(g, o, "draft"), gx = post(g, 0, "public");
    uint64_t hp = post(h, o, "public"), op = post(o, o, "public");
    reel_cmd_result_t r = run(REEL_CMD_CAMEO_UNAPPROVE, (reel_event_t){.user = o, .target = g});
    expect(r, 200, NULL);
    expect_hidden(gp, "consent_revoked");
    expect_hidden(gd, "consent_revoked");
    expect_visible(gx);
    expect_visible(hp);
    expect_visible(op);
    expect_views_equal_replay();
    /* Under everyone, approval does not count: revoking it hides nothing. */
    expect(run(REEL_CMD_CAMEO_POLICY, (reel_event_t){.user = o, .policy = S("everyone")}), 200,
           NULL);
    r = run(REEL_CMD_CAMEO_UNAPPROVE, (reel_event_t){.user = o, .target = h});
    expect(r, 200, NULL);
    expect_visible(hp);
    expect_views_equal_replay();
}

Test(cameo, policy_narrowed_hides_who_lost_the_right)
{
    uint64_t o = user("owner"), m = user("mutual"), a = user("appr"), s = user("stranger");
    set_cameo(o, "everyone");
    follow(o, m);
    follow(m, o);
    approve(o, a);
    uint64_t mp = post(m, o, "public"), ap = post(a, o, "public"), sp = post(s, o, "draft");
    uint64_t op = post(o, o, "public");
    expect(run(REEL_CMD_CAMEO_POLICY, (reel_event_t){.user = o, .policy = S("mutuals")}), 200, NULL);
    expect_visible(mp);
    expect_hidden(ap, "consent_revoked");
    expect_hidden(sp, "consent_revoked");
    expect_views_equal_replay();
    expect(run(REEL_CMD_CAMEO_POLICY, (reel_event_t){.user = o, .policy = S("approved")}), 200,
           NULL);
    expect_hidden(mp, "consent_revoked");
    expect_visible(op);
    /* Widening hides nothing and shows nothing again. */
    uint64_t ap2 = post(a, o, "public");
    expect(run(REEL_CMD_CAMEO_POLICY, (reel_event_t){.user = o, .policy = S("everyone")}), 200,
           NULL);
    expect_visible(ap2);
    expect_hidden(ap, "consent_revoked");
    expect(run(REEL_CMD_CAMEO_POLICY, (reel_event_t){.user = o, .policy = S("only_me")}), 200, NULL);
    expect_hidden(ap2, "consent_revoked");
    expect_visible(op);
    expect_views_equal_replay();
}

/* A block by either side hides each one's posts featuring the other. */
static void block_cascade(bool by_owner)
{
    uint64_t o = user(by_owner ? "owner_b" : "owner_g"), g = user(by_owner ? "g_b" : "g_g");
    uint64_t x = user(by_owner ? "x_b" : "x_g");
    set_cameo(o, "everyone");
    set_cameo(g, "everyone");
    uint64_t gp = post(g, o, "public"), op = post(o, g, "draft"), xp = post(x, o, "public");
    uint64_t oo = post(o, o, "public");
    reel_event_t b = by_owner ? (reel_event_t){.user = o, .target = g}
                              : (reel_event_t){.user = g, .target = o};
    expect(run(REEL_CMD_BLOCK, b), 200, NULL);
    expect_hidden(gp, "consent_revoked");
    expect_hidden(op, "consent_revoked");
    expect_visible(xp);
    expect_visible(oo);
    expect_noop(REEL_CMD_BLOCK, b);
    expect_views_equal_replay();
}

Test(cameo, block_by_owner_hides)
{
    block_cascade(true);
}

Test(cameo, block_by_grantee_hides)
{
    block_cascade(false);
}

Test(cameo, mutual_follow_ended_under_mutuals)
{
    uint64_t o = user("owner"), m = user("mia"), n = user("ned"), e = user("eve");
    set_cameo(o, "mutuals");
    set_cameo(e, "everyone");
    follow(o, m);
    follow(m, o);
    follow(o, n);
    follow(n, o);
    follow(o, e);
    follow(e, o);
    uint64_t mp = post(m, o, "public"), np = post(n, o, "public"), oe = post(o, e, "public");
    /* The follower ends it, then the owner ends the other one. */
    expect(run(REEL_CMD_UNFOLLOW, (reel_event_t){.user = m, .target = o}), 200, NULL);
    expect_hidden(mp, "consent_revoked");
    expect_visible(np);
    expect(run(REEL_CMD_UNFOLLOW, (reel_event_t){.user = o, .target = n}), 200, NULL);
    expect_hidden(np, "consent_revoked");
    /* e's cameo is for everyone: ending the follow takes nothing from o. */
    expect(run(REEL_CMD_UNFOLLOW, (reel_event_t){.user = e, .target = o}), 200, NULL);
    expect_visible(oe);
    expect_noop(REEL_CMD_UNFOLLOW, (reel_event_t){.user = e, .target = o});
    expect_views_equal_replay();
}

Test(cameo, cameo_deleted_hides_with_its_reason)
{
    uint64_t o = user("owner"), a = user("ann"), b = user("bob");
    set_cameo(o, "approved");
    approve(o, a);
    approve(o, b);
    uint64_t ap = post(a, o, "public"), ad = post(a, o, "draft"), bp = post(b, o, "public");
    uint64_t op = post(o, o, "public");
    expect(run(REEL_CMD_CAMEO_UNAPPROVE, (reel_event_t){.user = o, .target = b}), 200, NULL);
    expect(run(REEL_CMD_CAMEO_DELETE, (reel_event_t){.user = o}), 200, NULL);
    expect_hidden(ap, "cameo_deleted");
    expect_hidden(ad, "cameo_deleted");
    expect_hidden(bp, "consent_revoked"); /* the first reason stays */
    expect_visible(op); /* the owner never loses the right to their own likeness */
    bool allowed;
    cr_assert_str_eq(can_use(o, a, &allowed), "no_cameo");
    cr_assert(!allowed);
    expect_noop(REEL_CMD_CAMEO_DELETE, (reel_event_t){.user = o});
    expect_views_equal_replay();
}

Test(cameo, takedown_by_the_cameo_owner)
{
    uint64_t o = user("owner"), g = user("gus");
    set_cameo(o, "everyone");
    uint64_t gp = post(g, o, "public"), gd = post(g, o, "draft"), gx = post(g, 0, "public");
    expect(run(REEL_CMD_CAMEO_TAKEDOWN, (reel_event_t){.user = o, .post = gp}), 200, NULL);
    expect_hidden(gp, "removed_by_cameo_owner");
    expect(run(REEL_CMD_CAMEO_TAKEDOWN, (reel_event_t){.user = o, .post = gd}), 200, NULL);
    expect_hidden(gd, "removed_by_cameo_owner");
    expect_noop(REEL_CMD_CAMEO_TAKEDOWN, (reel_event_t){.user = o, .post = gp});
    expect(run(REEL_CMD_CAMEO_TAKEDOWN, (reel_event_t){.user = o, .post = gx}), 404, "not_found");
    expect(run(REEL_CMD_CAMEO_TAKEDOWN, (reel_event_t){.user = o, .post = 999}), 404, "not_found");
    expect(run(REEL_CMD_CAMEO_TAKEDOWN, (reel_event_t){.user = o, .post = 0}), 400, "bad_field");
    expect(run(REEL_CMD_CAMEO_TAKEDOWN, (reel_event_t){.user = 999, .post = gp}), 404,
           "not_found");
    expect_visible(gx);
    expect_views_equal_replay();
}

static uint8_t gen_status(uint64_t id)
{
    reel_views_txn_t *t;
    reel_generation_view_t g;
    cr_assert_eq(reel_engine_read_begin(eng, &t), 0);
    cr_assert_eq(reel_views_get_generation(t, id, &g), 0);
    reel_views_read_end(t);
    return g.status;
}

/* A cascade larger than one group is appended in chunks, its cause (the
 * narrower policy) last: every post hidden, every generation cancelled. */
Test(cameo, cascade_in_chunks)
{
    enum { POSTS = 3 * REEL_CMD_EVENTS_MAX, GENS = 20 };
    uint64_t o = user("owner"), g = user("greg");
    set_cameo(o, "everyone");
    uint64_t first = post(g, o, "public"), gens[GENS];
    for (uint32_t i = 1; i < POSTS; i++)
        post(g, o, i % 3 ? "public" : "draft");
    for (uint32_t i = 0; i < GENS; i++) {
        reel_event_t a = {.user = g, .prompt = S("p"), .ncameos = 1, .cameos = {o}};
        reel_cmd_result_t r = run(REEL_CMD_GENERATION_CREATE, a);
        expect(r, 202, NULL);
        gens[i] = r.id;
    }
    uint64_t before = reel_log_end(reel_engine_log(eng));
    reel_cmd_result_t r = run(REEL_CMD_CAMEO_POLICY, (reel_event_t){.user = o,
                                                                    .policy = S("only_me")});
    expect(r, 200, NULL);
    uint64_t end = reel_log_end(reel_engine_log(eng));
    cr_assert_eq(end - before, POSTS + GENS + 1);
    cr_assert_eq((uint64_t)r.offset, end - 1);
    reel_log_iter_t *it;
    reel_record_t rec;
    cr_assert_eq(reel_log_iter_open(reel_engine_log(eng), end - 1, &it), 0);
    cr_assert_eq(reel_log_iter_next(it, &rec), 0);
    reel_log_iter_close(it);
    cr_assert_eq(rec.type, REEL_EV_CAMEO_POLICY_SET, "the cause comes last");
    for (uint32_t i = 0; i < POSTS; i++)
        expect_hidden(first + i, "consent_revoked");
    for (uint32_t i = 0; i < GENS; i++)
        cr_assert_eq(gen_status(gens[i]), REEL_GEN_CANCELLED);
    bool allowed;
    cr_assert_str_eq(can_use(o, g, &allowed), "only_me");
    expect_views_equal_replay();
}
