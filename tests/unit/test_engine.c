/*
 * test_engine.c: the command writer and the rules (engine/reel.h): each
 * rule's answers, idempotency, cascades in the log, and the central
 * property: the live views always equal a replay of the log.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/common.h"
#include "engine/datadir.h"
#include "engine/reel.h"
#include "engine/replay.h"
#include "tests/harness.h"

static char dir[PATH_MAX];
static reel_engine_t *eng;

static void open_engine(bool invite_only)
{
    char err[256];
    reel_engine_options_t o = {.invite_only = invite_only, .log = {.segment_size = 256 << 10}};
    int rc = reel_engine_open(dir, &o, &eng, err, sizeof(err));
    cr_assert_eq(rc, 0, "open: %s", err);
}

static void setup(void)
{
    reel_test_tmpdir(dir, sizeof(dir), "engine");
    open_engine(false);
}

static void teardown(void)
{
    reel_engine_close(eng);
    reel_test_rmtree(dir);
}

TestSuite(engine, .init = setup, .fini = teardown, .timeout = 120);

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

static reel_user_view_t profile(uint64_t id)
{
    reel_views_txn_t *t;
    reel_user_view_t u;
    cr_assert_eq(reel_engine_read_begin(eng, &t), 0);
    cr_assert_eq(reel_views_get_user(t, id, &u), 0);
    reel_views_read_end(t);
    return u;
}

/* The live views equal a fold of the log into fresh views. */
static void expect_views_equal_replay(void)
{
    reel_test_views_equal_replay(eng, dir);
}

Test(engine, users_handles_and_updates)
{
    uint64_t a = user("Alice_1.x");
    cr_assert_eq(a, 1);
    reel_user_view_t u = profile(a);
    cr_assert_str_eq(u.handle, "alice_1.x", "folded to lower case");
    cr_assert_str_eq(u.display_name, "Alice_1.x", "display name defaults to the handle");
    expect(run(REEL_CMD_USER_CREATE, (reel_event_t){.handle = S("ALICE_1.X")}), 409, "handle_taken");
    expect(run(REEL_CMD_USER_CREATE, (reel_event_t){.handle = S("a")}), 400, "bad_field");
    expect(run(REEL_CMD_USER_CREATE, (reel_event_t){.handle = S("bad-handle")}), 400, "bad_field");
    expect(run(REEL_CMD_USER_CREATE, (reel_event_t){0}), 400, "missing_field");
    cr_assert_eq(user("bob"), 2, "ids are dense; refused commands take none");
    expect(run(REEL_CMD_USER_UPDATE, (reel_event_t){.user = a, .display_name = S("Alice")}), 200, NULL);
    cr_assert_str_eq(profile(a).display_name, "Alice");
    expect(run(REEL_CMD_USER_UPDATE, (reel_event_t){.user = 99, .display_name = S("x")}), 404, "not_found");
    expect(run(REEL_CMD_USER_UPDATE, (reel_event_t){.user = 0, .display_name = S("x")}), 400, "bad_field");
    expect_views_equal_replay();
}

Test(engine, follows_are_idempotent_and_blocks_cascade)
{
    uint64_t a = user("ann"), b = user("ben");
    reel_cmd_result_t r = run(REEL_CMD_FOLLOW, (reel_event_t){.user = a, .target = b});
    expect(r, 200, NULL);
    cr_assert_geq(r.offset, 0);
    r = run(REEL_CMD_FOLLOW, (reel_event_t){.user = a, .target = b});
    expect(r, 200, NULL);
    cr_assert_eq(r.offset, -1, "following twice appends nothing");
    expect(run(REEL_CMD_FOLLOW, (reel_event_t){.user = b, .target = a}), 200, NULL);
    cr_assert_eq(profile(a).friends, 1);
    expect(run(REEL_CMD_FOLLOW, (reel_event_t){.user = a, .target = a}), 400, "bad_field");
    expect(run(REEL_CMD_FOLLOW, (reel_event_t){.user = a, .target = 77}), 404, "not_found");
    /* A block removes both follows, in the same group as the block. */
    r = run(REEL_CMD_BLOCK, (reel_event_t){.user = b, .target = a});
    expect(r, 200, NULL);
    cr_assert_eq(profile(a).followers, 0);
    cr_assert_eq(profile(a).following, 0);
    cr_assert_eq(profile(b).friends, 0);
    expect(run(REEL_CMD_FOLLOW, (reel_event_t){.user = a, .target = b}), 403, "blocked");
    expect(run(REEL_CMD_FOLLOW, (reel_event_t){.user = b, .target = a}), 403, "blocked");
    cr_assert_eq(run(REEL_CMD_BLOCK, (reel_event_t){.user = b, .target = a}).offset, -1);
    expect(run(REEL_CMD_UNBLOCK, (reel_event_t){.user = b, .target = a}), 200, NULL);
    expect(run(REEL_CMD_FOLLOW, (reel_event_t){.user = a, .target = b}), 200, NULL);
    expect(run(REEL_CMD_UNFOLLOW, (reel_event_t){.user = a, .target = b}), 200, NULL);
    cr_assert_eq(run(REEL_CMD_UNFOLLOW, (reel_event_t){.user = a, .target = b}).offset, -1);
    expect_views_equal_replay();
}

static uint64_t post(uint64_t author, const char *vis, uint64_t remix_of)
{
    reel_event_t a = {.user = author, .video_uri = S("file:///v.gif"), .prompt = S("a dachshund"),
                      .visibility = S(vis), .remix_of = remix_of, .ntags = 1};
    a.tags[0] = S("dogs");
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

Test(engine, posts_likes_comments_and_signals)
{
    uint64_t a = user("amy"), b = user("bo");
    uint64_t p1 = post(a, "public", 0), p2 = post(b, "public", p1), p3 = post(b, "public", p2);
    cr_assert_eq(get_post(p3).remix_of, p2);
    cr_assert_eq(get_post(p3).remix_root, p1, "the root of a chain is its original");
    cr_assert_eq(get_post(p1).remixes, 1, "direct remixes only");
    uint64_t draft = post(a, "draft", 0);
    cr_assert_eq(profile(a).posts, 1, "drafts do not count");
    reel_event_t bad = {.user = a, .video_uri = S("v"), .prompt = S("p"), .visibility = S("secret")};
    expect(run(REEL_CMD_POST_CREATE, bad), 400, "bad_field");
    bad.visibility = (reel_str_t){0};
    bad.prompt = (reel_str_t){0};
    expect(run(REEL_CMD_POST_CREATE, bad), 400, "missing_field");
    /* Likes: idempotent, on what the liker may see. */
    expect(run(REEL_CMD_LIKE, (reel_event_t){.user = b, .post = p1}), 200, NULL);
    cr_assert_eq(run(REEL_CMD_LIKE, (reel_event_t){.user = b, .post = p1}).offset, -1);
    cr_assert_eq(get_post(p1).likes, 1);
    cr_assert_eq(profile(a).likes_received, 1);
    expect(run(REEL_CMD_LIKE, (reel_event_t){.user = b, .post = draft}), 404, "not_found");
    expect(run(REEL_CMD_UNLIKE, (reel_event_t){.user = b, .post = p1}), 200, NULL);
    cr_assert_eq(run(REEL_CMD_UNLIKE, (reel_event_t){.user = b, .post = p1}).offset, -1);
    /* Comments and replies on the same post only. */
    reel_cmd_result_t c = run(REEL_CMD_COMMENT_CREATE,
                              (reel_event_t){.user = b, .post = p1, .text = S("wow")});
    expect(c, 201, NULL);
    expect(run(REEL_CMD_COMMENT_CREATE,
               (reel_event_t){.user = a, .post = p1, .text = S("thanks"), .reply_to = c.id}),
           201, NULL);
    expect(run(REEL_CMD_COMMENT_CREATE,
               (reel_event_t){.user = a, .post = p2, .text = S("x"), .reply_to = c.id}),
           404, "not_found");
    expect(run(REEL_CMD_COMMENT_CREATE, (reel_event_t){.user = a, .post = p1, .text = S("")}), 400,
           "bad_field");
    cr_assert_eq(get_post(p1).comments, 2);
    expect(run(REEL_CMD_COMMENT_DELETE, (reel_event_t){.comment = c.id}), 200, NULL);
    cr_assert_eq(get_post(p1).comments, 1);
    expect(run(REEL_CMD_VIEW, (reel_event_t){.user = b, .post = p1, .watch_ms = 900}), 200, NULL);
    expect(run(REEL_CMD_FEEDBACK, (reel_event_t){.user = b, .post = p1, .kind = S("see_less")}),
           200, NULL);
    expect(run(REEL_CMD_FEEDBACK, (reel_event_t){.user = b, .post = p1, .kind = S("meh")}), 400,
           "bad_field");
    /* Publish and delete. */
    expect(run(REEL_CMD_POST_PUBLISH, (reel_event_t){.post = draft}), 200, NULL);
    cr_assert_eq(profile(a).posts, 2);
    expect(run(REEL_CMD_POST_DELETE, (reel_event_t){.post = draft}), 200, NULL);
    expect(run(REEL_CMD_POST_DELETE, (reel_event_t){.post = draft}), 404, "not_found");
    cr_assert_eq(profile(a).posts, 1);
    expect_views_equal_replay();
}

Test(engine, cameos_need_consent)
{
    uint64_t a = user("cam"), b = user("dan");
    reel_event_t p = {.user = a, .video_uri = S("v"), .prompt = S("p"), .ncameos = 2};
    p.cameos[0] = a;
    p.cameos[1] = b;
    reel_cmd_result_t r = run(REEL_CMD_POST_CREATE, p);
    expect(r, 403, "cameo_not_allowed");
    cr_assert_str_eq(r.field, "cameos[1]", "the field names the cameo");
    p.ncameos = 1; /* one's own cameo */
    expect(run(REEL_CMD_POST_CREATE, p), 201, NULL);
    p.cameos[0] = 999;
    expect(run(REEL_CMD_POST_CREATE, p), 404, "not_found");
}

Test(engine, invite_only_sign_up)
{
    reel_engine_close(eng);
    open_engine(true);
    uint64_t first = user("founder"); /* the first user of an empty log needs no code */
    expect(run(REEL_CMD_USER_CREATE, (reel_event_t){.handle = S("nocode")}), 403, "invite_required");
    expect(run(REEL_CMD_USER_CREATE, (reel_event_t){.handle = S("bogus"), .code = S("zzzz")}), 403,
           "invite_invalid");
    reel_cmd_result_t inv = run(REEL_CMD_INVITE_CREATE, (reel_event_t){.user = first});
    expect(inv, 201, NULL);
    cr_assert_eq(strlen(inv.code), 10);
    expect(run(REEL_CMD_USER_CREATE, (reel_event_t){.handle = S("guest"), .code = S(inv.code)}),
           201, NULL);
    expect(run(REEL_CMD_USER_CREATE, (reel_event_t){.handle = S("again"), .code = S(inv.code)}),
           403, "invite_invalid");
    for (int i = 1; i < 4; i++)
        expect(run(REEL_CMD_INVITE_CREATE, (reel_event_t){.user = first}), 201, NULL);
    expect(run(REEL_CMD_INVITE_CREATE, (reel_event_t){.user = first}), 409, "invites_exhausted");
    reel_cmd_t admin = {.kind = REEL_CMD_USER_CREATE, .admin = true, .args = {.handle = S("staff")}};
    reel_cmd_result_t res;
    cr_assert_eq(reel_engine_run(eng, &admin, &res), 0);
    expect(res, 201, NULL);
    expect_views_equal_replay();
}

Test(engine, answered_writes_survive_a_restart)
{
    uint64_t a = user("keep"), b = user("safe");
    expect(run(REEL_CMD_FOLLOW, (reel_event_t){.user = a, .target = b}), 200, NULL);
    uint8_t before[16], after[16];
    cr_assert_eq(reel_views_hash(reel_engine_views(eng), before), 0);
    reel_engine_close(eng);
    open_engine(false);
    cr_assert_eq(reel_views_hash(reel_engine_views(eng), after), 0);
    cr_assert(memcmp(before, after, 16) == 0);
    cr_assert_eq(profile(b).followers, 1);
    cr_assert_eq(user("third"), 3);
}

/* Views of another format are rebuilt from the log at open, not refused:
 * they are a cache of the log. */
Test(engine, views_of_another_format_are_rebuilt)
{
    char vdir[PATH_MAX + 16];
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    uint64_t a = user("old"), b = user("fmt");
    expect(run(REEL_CMD_FOLLOW, (reel_event_t){.user = a, .target = b}), 200, NULL);
    reel_engine_close(eng);
    snprintf(vdir, sizeof(vdir), "%s/" REEL_DATA_VIEWS_SUBDIR, dir);
    cr_assert_eq(mdb_env_create(&env), 0);
    cr_assert_eq(mdb_env_set_maxdbs(env, 64), 0);
    cr_assert_eq(mdb_env_open(env, vdir, 0, 0644), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    uint8_t v99[4] = {99, 0, 0, 0};
    MDB_val k = {7, (void *)"version"}, d = {4, v99};
    cr_assert_eq(mdb_put(txn, dbi, &k, &d, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    open_engine(false);
    cr_assert_eq(profile(b).followers, 1, "rebuilt from the log");
    expect_views_equal_replay();
}
