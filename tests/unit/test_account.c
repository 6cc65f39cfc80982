/*
 * test_account.c: DELETE /v1/users/{id} (the account cascade, in chunks
 * when it is large) and the leaderboards. Every test ends with live views == a
 * replay of the log.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
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
    reel_test_tmpdir(dir, sizeof(dir), "account");
    cr_assert_eq(reel_engine_open(dir, &o, &eng, err, sizeof(err)), 0, "open: %s", err);
}

static void teardown(void)
{
    reel_engine_close(eng);
    reel_test_rmtree(dir);
}

TestSuite(account, .init = setup, .fini = teardown, .timeout = 120);

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

static uint64_t user(const char *handle)
{
    reel_cmd_result_t r = run(REEL_CMD_USER_CREATE, (reel_event_t){.handle = S(handle)});
    expect(r, 201, NULL);
    return r.id;
}

static void ok(reel_cmd_kind_t kind, reel_event_t args)
{
    expect(run(kind, args), 200, NULL);
}

static void follow(uint64_t a, uint64_t b)
{
    ok(REEL_CMD_FOLLOW, (reel_event_t){.user = a, .target = b});
}

static void like(uint64_t u, uint64_t p)
{
    ok(REEL_CMD_LIKE, (reel_event_t){.user = u, .post = p});
}

/* A post by author, remixing remix_of (0: none), featuring cameo (0: none). */
static uint64_t post(uint64_t author, uint64_t remix_of, uint64_t cameo, const char *vis)
{
    reel_event_t a = {.user = author, .video_uri = S("file:///v.gif"), .prompt = S("p"),
                      .visibility = S(vis), .remix_of = remix_of, .ncameos = cameo ? 1 : 0};
    a.cameos[0] = cameo;
    reel_cmd_result_t r = run(REEL_CMD_POST_CREATE, a);
    expect(r, 201, NULL);
    return r.id;
}

static uint64_t comment(uint64_t author, uint64_t p)
{
    reel_cmd_result_t r =
        run(REEL_CMD_COMMENT_CREATE, (reel_event_t){.user = author, .post = p, .text = S("hi")});
    expect(r, 201, NULL);
    return r.id;
}

static void cameo_everyone(uint64_t owner)
{
    ok(REEL_CMD_CAMEO_SET, (reel_event_t){.user = owner, .asset = S("s3://face")});
    ok(REEL_CMD_CAMEO_POLICY, (reel_event_t){.user = owner, .policy = S("everyone")});
}

static reel_user_view_t profile(uint64_t id)
{
    reel_views_txn_t *t;
    reel_user_view_t u;
    cr_assert_eq(reel_engine_read_begin(eng, &t), 0);
    cr_assert_eq(reel_views_get_user(t, id, &u), 0, "user %llu", (unsigned long long)id);
    reel_views_read_end(t);
    return u;
}

/* The read rc of user id, post id, comment id (REEL_ENOTFOUND: gone). */
static int user_rc(uint64_t id)
{
    reel_views_txn_t *t;
    reel_user_view_t u;
    cr_assert_eq(reel_engine_read_begin(eng, &t), 0);
    int rc = reel_views_get_user(t, id, &u);
    reel_views_read_end(t);
    return rc;
}

static reel_post_view_t get_post(uint64_t id, int *rc)
{
    reel_views_txn_t *t;
    reel_post_view_t p;
    memset(&p, 0, sizeof p);
    cr_assert_eq(reel_engine_read_begin(eng, &t), 0);
    *rc = reel_views_get_post(t, id, &p);
    reel_views_read_end(t);
    return p;
}

static int comment_rc(uint64_t id)
{
    reel_views_txn_t *t;
    reel_comment_view_t c;
    cr_assert_eq(reel_engine_read_begin(eng, &t), 0);
    int rc = reel_views_get_comment(t, id, &c);
    reel_views_read_end(t);
    return rc;
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

static bool liked(uint64_t p, uint64_t u)
{
    reel_views_txn_t *t;
    bool yes;
    cr_assert_eq(reel_engine_read_begin(eng, &t), 0);
    cr_assert_eq(reel_views_liked(t, p, u, &yes), 0);
    reel_views_read_end(t);
    return yes;
}

/* The leaderboard as "user:value,..." into buf. */
static const char *board(reel_views_board_t kind, char *buf, size_t cap)
{
    reel_views_txn_t *t;
    reel_leader_t rows[16];
    size_t n, used = 0;
    cr_assert_eq(reel_engine_read_begin(eng, &t), 0);
    cr_assert_eq(reel_views_leaderboard(t, kind, 16, rows, &n), 0);
    reel_views_read_end(t);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%llu:%llu", i ? "," : "",
                                 (unsigned long long)rows[i].user,
                                 (unsigned long long)rows[i].value);
    return buf;
}

static void expect_views_equal_replay(void)
{
    reel_test_views_equal_replay(eng, dir);
}

Test(account, delete_cascade_end_to_end)
{
    uint64_t d = user("doomed"), a = user("ann"), b = user("ben");
    follow(d, a), follow(a, d), follow(b, d), follow(d, b), follow(a, b);
    cr_assert_eq(profile(a).friends, 1);
    uint64_t pa = post(a, 0, 0, "public"), pd = post(d, 0, 0, "public");
    uint64_t draft = post(d, 0, 0, "draft"), remix = post(d, pa, 0, "public");
    like(d, pa), like(a, pd), like(d, pd);
    uint64_t ca = comment(d, pa), cb = comment(a, pd);
    cameo_everyone(d);
    ok(REEL_CMD_CAMEO_APPROVE, (reel_event_t){.user = d, .target = a});
    uint64_t pcam = post(b, 0, d, "public"); /* b's post featuring d's cameo */
    reel_cmd_result_t g = run(REEL_CMD_GENERATION_CREATE, (reel_event_t){.user = d, .prompt = S("x")});
    expect(g, 202, NULL);
    cr_assert_eq(profile(a).likes_received, 1);
    cr_assert_eq(profile(a).followers, 1);
    cr_assert_eq(get_post(pa, &(int){0}).remixes, 1);

    reel_cmd_result_t r = run(REEL_CMD_USER_DELETE, (reel_event_t){.user = d});
    expect(r, 200, NULL);
    cr_assert_geq(r.offset, 0);
    cr_assert_eq(user_rc(d), REEL_ENOTFOUND, "get_user is 404");
    reel_user_view_t ua = profile(a), ub = profile(b);
    cr_assert_eq(ua.followers, 0, "d was a's only follower");
    cr_assert_eq(ua.following, 1, "a follows b");
    cr_assert_eq(ua.friends, 0);
    cr_assert_eq(ua.likes_received, 0, "d's like on a's post is gone");
    cr_assert_eq(ua.posts, 1);
    cr_assert_eq(ub.followers, 1);
    cr_assert_eq(ub.following, 0);
    cr_assert_eq(ub.friends, 0);
    int rc;
    get_post(pd, &rc);
    cr_assert_eq(rc, REEL_ENOTFOUND);
    get_post(draft, &rc);
    cr_assert_eq(rc, REEL_ENOTFOUND);
    get_post(remix, &rc);
    cr_assert_eq(rc, REEL_ENOTFOUND);
    reel_post_view_t p = get_post(pa, &rc);
    cr_assert_eq(rc, 0);
    cr_assert_eq(p.remixes, 0);
    cr_assert_eq(p.likes, 0);
    cr_assert_eq(p.comments, 0);
    cr_assert(!liked(pa, d));
    cr_assert_eq(comment_rc(ca), REEL_ENOTFOUND);
    cr_assert_eq(comment_rc(cb), 0, "a's comment on a deleted post stays (unlisted)");
    p = get_post(pcam, &rc);
    cr_assert(p.hidden && strcmp(p.hidden_reason, "cameo_deleted") == 0);
    reel_views_txn_t *t;
    bool approved = true;
    cr_assert_eq(reel_engine_read_begin(eng, &t), 0);
    cr_assert_eq(reel_views_is_approved(t, d, a, &approved), 0);
    reel_cameo_view_t c;
    cr_assert_eq(reel_views_get_cameo(t, d, &c), REEL_ENOTFOUND);
    reel_views_read_end(t);
    cr_assert(!approved);
    cr_assert_eq(gen_status(g.id), REEL_GEN_CANCELLED);
    /* Deleted: 404 again; the handle is free. */
    expect(run(REEL_CMD_USER_DELETE, (reel_event_t){.user = d}), 404, "not_found");
    expect(run(REEL_CMD_USER_DELETE, (reel_event_t){.user = 99}), 404, "not_found");
    expect(run(REEL_CMD_FOLLOW, (reel_event_t){.user = a, .target = d}), 404, "not_found");
    uint64_t again = user("Doomed");
    cr_assert_neq(again, d);
    cr_assert_eq(profile(again).followers, 0);
    expect_views_equal_replay();
}

/* The type of the event at offset off. */
static uint16_t event_type_at(uint64_t off)
{
    reel_log_iter_t *it;
    reel_record_t rec;
    cr_assert_eq(reel_log_iter_open(reel_engine_log(eng), off, &it), 0);
    cr_assert_eq(reel_log_iter_next(it, &rec), 0);
    reel_log_iter_close(it);
    return rec.type;
}

/* An account whose cascade is far larger than one group (and than one
 * batch's arena: ~8,300 events): deleted in chunks, each a prefix of the
 * cascade, user.deleted last, with every count of the others moved. */
Test(account, a_heavy_account_is_deleted_in_chunks)
{
    enum { FANS = 9000, COMMENTS = 300, POSTS = 20, USES = 150 };
    uint64_t d = user("creator"), a = user("author");
    cameo_everyone(d);
    reel_cmd_t *cmds = calloc(FANS, sizeof(*cmds));
    reel_cmd_result_t *res = calloc(FANS, sizeof(*res));
    char (*handles)[16] = calloc(FANS, 16);
    cr_assert(cmds && res && handles);
    for (int i = 0; i < FANS; i++) {
        snprintf(handles[i], 16, "fan%d", i);
        cmds[i] = (reel_cmd_t){.kind = REEL_CMD_USER_CREATE, .args = {.handle = S(handles[i])}};
    }
    reel_test_cmds(eng, cmds, FANS, res);
    for (int i = 0; i < FANS; i++)
        cmds[i] = (reel_cmd_t){.kind = REEL_CMD_FOLLOW, .args = {.user = res[i].id, .target = d}};
    reel_test_cmds(eng, cmds, FANS, NULL);
    for (int i = 0; i < 100; i++) /* d follows back 100 of them: friends */
        cmds[i] = (reel_cmd_t){.kind = REEL_CMD_FOLLOW, .args = {.user = d, .target = i + 3}};
    reel_test_cmds(eng, cmds, 100, NULL);
    uint64_t p = post(a, 0, 0, "public");
    for (int i = 0; i < COMMENTS; i++)
        cmds[i] = (reel_cmd_t){.kind = REEL_CMD_COMMENT_CREATE,
                               .args = {.user = d, .post = p, .text = S("hi")}};
    reel_test_cmds(eng, cmds, COMMENTS, NULL);
    like(d, p);
    for (int i = 0; i < POSTS; i++)
        post(d, 0, 0, i % 2 ? "public" : "draft");
    uint64_t used_in[USES];
    for (int i = 0; i < USES; i++)
        used_in[i] = post(a, 0, d, "public"); /* others' posts with d's cameo */
    cr_assert_eq(profile(d).followers, FANS);
    cr_assert_eq(profile(d).friends, 100);

    uint64_t before = reel_log_end(reel_engine_log(eng));
    reel_cmd_result_t r = run(REEL_CMD_USER_DELETE, (reel_event_t){.user = d});
    expect(r, 200, NULL);
    uint64_t end = reel_log_end(reel_engine_log(eng));
    /* follows both ways, comments, the like, posts, hidden uses, cameo.deleted, user.deleted */
    uint64_t want = FANS + 100 + COMMENTS + 1 + POSTS + USES + 2;
    cr_assert_eq(end - before, want, "%llu events", (unsigned long long)(end - before));
    cr_assert_gt(want, REEL_CMD_EVENTS_MAX, "one group could not hold it");
    cr_assert_eq((uint64_t)r.offset, end - 1);
    cr_assert_eq(event_type_at(end - 1), REEL_EV_USER_DELETED, "the cause comes last");
    cr_assert_eq(event_type_at(end - 2), REEL_EV_CAMEO_DELETED, "after its whole cascade");
    cr_assert_eq(user_rc(d), REEL_ENOTFOUND);
    int rc;
    for (int i = 0; i < USES; i++) {
        reel_post_view_t pv = get_post(used_in[i], &rc);
        cr_assert_eq(rc, 0);
        cr_assert(pv.hidden);
        cr_assert_str_eq(pv.hidden_reason, "cameo_deleted");
    }
    cr_assert_eq(get_post(p, &rc).comments, 0);
    cr_assert_eq(get_post(p, &rc).likes, 0);
    for (int i = 0; i < FANS; i++) {
        reel_user_view_t f = profile(res[i].id);
        cr_assert_eq(f.following, 0, "fan %d", i);
        cr_assert_eq(f.followers, 0, "fan %d", i);
        cr_assert_eq(f.friends, 0, "fan %d", i);
    }
    free(cmds);
    free(res);
    free(handles);
    expect_views_equal_replay();
}

Test(account, leaderboards_order_and_deletes)
{
    char buf[256];
    uint64_t a = user("aa"), b = user("bb"), c = user("cc"), d = user("dd");
    follow(b, a), follow(c, a), follow(d, a), follow(a, b), follow(c, b), follow(a, c);
    cr_assert_str_eq(board(REEL_BOARD_FOLLOWERS, buf, sizeof buf), "1:3,2:2,3:1");
    uint64_t pa = post(a, 0, 0, "public"), pb = post(b, 0, 0, "public");
    like(b, pb), like(c, pb), like(d, pb), like(c, pa);
    cr_assert_str_eq(board(REEL_BOARD_LIKES, buf, sizeof buf), "2:3,1:1");
    uint64_t r1 = post(c, pa, 0, "public");
    post(d, pa, 0, "public"), post(b, pb, 0, "public");
    cr_assert_str_eq(board(REEL_BOARD_REMIXES, buf, sizeof buf), "1:2,2:1");
    ok(REEL_CMD_POST_DELETE, (reel_event_t){.post = r1});
    cr_assert_str_eq(board(REEL_BOARD_REMIXES, buf, sizeof buf), "1:1,2:1", "tie: lower id first");
    cr_assert_eq(profile(a).remixes_received, 1);
    cameo_everyone(c), cameo_everyone(d);
    uint64_t u1 = post(a, 0, c, "public");
    post(b, 0, c, "draft"), post(c, 0, c, "public"); /* the owner's own: not a use */
    post(a, 0, d, "public");
    cr_assert_str_eq(board(REEL_BOARD_CAMEO_USES, buf, sizeof buf), "3:2,4:1");
    ok(REEL_CMD_POST_DELETE, (reel_event_t){.post = u1});
    cr_assert_str_eq(board(REEL_BOARD_CAMEO_USES, buf, sizeof buf), "3:1,4:1");
    cr_assert_eq(profile(c).cameo_uses, 1);
    /* Unfollow and unlike move the boards. */
    ok(REEL_CMD_UNFOLLOW, (reel_event_t){.user = d, .target = a});
    ok(REEL_CMD_UNLIKE, (reel_event_t){.user = d, .post = pb});
    cr_assert_str_eq(board(REEL_BOARD_FOLLOWERS, buf, sizeof buf), "1:2,2:2,3:1");
    cr_assert_str_eq(board(REEL_BOARD_LIKES, buf, sizeof buf), "2:2,1:1");
    /* Deleting a leaves every board; its followers' and likers' counts
     * follow, and b's remix (of pb) still counts for b. */
    expect(run(REEL_CMD_USER_DELETE, (reel_event_t){.user = a}), 200, NULL);
    cr_assert_str_eq(board(REEL_BOARD_FOLLOWERS, buf, sizeof buf), "2:1");
    cr_assert_str_eq(board(REEL_BOARD_LIKES, buf, sizeof buf), "2:2");
    cr_assert_str_eq(board(REEL_BOARD_REMIXES, buf, sizeof buf), "2:1");
    cr_assert_str_eq(board(REEL_BOARD_CAMEO_USES, buf, sizeof buf), "3:1");
    /* Deleting c (the cameo owner) drops c; d's remix of pa (a's, deleted)
     * is d's own post: removing d's content leaves no entry behind. */
    expect(run(REEL_CMD_USER_DELETE, (reel_event_t){.user = c}), 200, NULL);
    cr_assert_str_eq(board(REEL_BOARD_CAMEO_USES, buf, sizeof buf), "");
    cr_assert_str_eq(board(REEL_BOARD_FOLLOWERS, buf, sizeof buf), "");
    expect_views_equal_replay();
}
