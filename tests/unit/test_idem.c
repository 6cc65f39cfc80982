/*
 * test_idem.c: idempotency keys (a repeat gets the first answer and
 * appends nothing, across a restart; another request under the same key
 * is 409; the 24 h window in engine time), and the views the API's reads
 * need beside the counters: a post's contents and the friends list.
 * Every test ends with live views == a replay of the log.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "engine/common.h"
#include "engine/io.h"
#include "engine/io_fault.h"
#include "engine/reel.h"
#include "tests/harness.h"

static char dir[PATH_MAX];
static reel_engine_t *eng;
static const reel_engine_options_t opts = {.trust_client_time = true,
                                           .log = {.segment_size = 256 << 10}};

static void open_engine(void)
{
    char err[256];
    cr_assert_eq(reel_engine_open(dir, &opts, &eng, err, sizeof(err)), 0, "open: %s", err);
}

static void setup(void)
{
    reel_test_tmpdir(dir, sizeof(dir), "idem");
    open_engine();
}

static void teardown(void)
{
    reel_test_views_equal_replay(eng, dir);
    reel_engine_close(eng);
    reel_test_rmtree(dir);
}

TestSuite(idem, .init = setup, .fini = teardown, .timeout = 60);

static reel_str_t S(const char *s)
{
    return (reel_str_t){s, (uint32_t)strlen(s)};
}

/* Runs kind with args at time at under key (NULL: none) and fingerprint. */
static reel_cmd_result_t run_key(reel_cmd_kind_t kind, uint64_t at, const char *key, uint64_t fp,
                                 reel_event_t args)
{
    reel_cmd_t c = {.kind = kind, .at = at, .idem_key = key,
                    .idem_key_len = key ? (uint32_t)strlen(key) : 0, .idem_fp = fp, .args = args};
    reel_cmd_result_t r;
    cr_assert_eq(reel_engine_run(eng, &c, &r), 0);
    return r;
}

static uint64_t log_end(void)
{
    return reel_log_end(reel_engine_log(eng));
}

static uint64_t user(const char *handle, uint64_t at)
{
    reel_cmd_result_t r = run_key(REEL_CMD_USER_CREATE, at, NULL, 0,
                                  (reel_event_t){.handle = S(handle)});
    reel_test_expect(r, 201, NULL);
    return r.id;
}

Test(idem, repeat_gets_the_first_answer_and_appends_nothing)
{
    reel_cmd_result_t a = run_key(REEL_CMD_USER_CREATE, 1000, "k-1", 77,
                                  (reel_event_t){.handle = S("ann")});
    reel_test_expect(a, 201, NULL);
    cr_assert_not(a.replayed);
    uint64_t end = log_end();
    cr_assert_eq((uint64_t)a.offset, end - 1, "the record is the group's last event");
    reel_cmd_result_t b = run_key(REEL_CMD_USER_CREATE, 2000, "k-1", 77,
                                  (reel_event_t){.handle = S("ann")});
    reel_test_expect(b, 201, NULL);
    cr_assert(b.replayed);
    cr_assert_eq(b.id, a.id);
    cr_assert_eq(b.offset, a.offset);
    cr_assert_eq(log_end(), end, "a repeat appends nothing");
    /* Without the key the same request is judged: the handle is taken. */
    reel_test_expect(run_key(REEL_CMD_USER_CREATE, 2000, NULL, 0,
                             (reel_event_t){.handle = S("ann")}),
                     409, "handle_taken");
}

Test(idem, another_request_under_the_key_is_a_conflict)
{
    uint64_t u = user("bob", 1000);
    reel_cmd_result_t a = run_key(REEL_CMD_INVITE_CREATE, 1000, "inv", 5,
                                  (reel_event_t){.user = u});
    reel_test_expect(a, 201, NULL);
    cr_assert_gt(strlen(a.code), 0);
    uint64_t end = log_end();
    reel_cmd_result_t c = run_key(REEL_CMD_INVITE_CREATE, 1001, "inv", 6,
                                  (reel_event_t){.user = u});
    reel_test_expect(c, 409, "conflict");
    cr_assert_str_eq(c.field, "idempotency_key");
    cr_assert_eq(log_end(), end);
    reel_cmd_result_t d = run_key(REEL_CMD_INVITE_CREATE, 1002, "inv", 5,
                                  (reel_event_t){.user = u});
    reel_test_expect(d, 201, NULL);
    cr_assert_str_eq(d.code, a.code, "the same invite code, not a new one");
    cr_assert_eq(log_end(), end);
}

Test(idem, answers_survive_a_restart)
{
    uint64_t u = user("cat", 1000);
    reel_event_t g = {.user = u, .prompt = S("a dachshund surfing")};
    reel_cmd_result_t a = run_key(REEL_CMD_GENERATION_CREATE, 2000, "gen-1", 9, g);
    reel_test_expect(a, 202, NULL);
    reel_engine_close(eng);
    open_engine();
    uint64_t end = log_end();
    reel_cmd_result_t b = run_key(REEL_CMD_GENERATION_CREATE, 3000, "gen-1", 9, g);
    reel_test_expect(b, 202, NULL);
    cr_assert(b.replayed);
    cr_assert_eq(b.id, a.id);
    cr_assert_eq(b.offset, a.offset);
    cr_assert_eq(b.quota.used, a.quota.used);
    cr_assert_eq(b.quota.limit, a.quota.limit);
    cr_assert_eq(b.quota.resets_at, a.quota.resets_at);
    cr_assert_eq(log_end(), end);
}

Test(idem, the_window_is_24_hours_of_engine_time)
{
    uint64_t u = user("dan", 1000), v = user("eve", 1000);
    reel_cmd_result_t a = run_key(REEL_CMD_FOLLOW, 5000, "f", 1,
                                  (reel_event_t){.user = u, .target = v});
    reel_test_expect(a, 200, NULL);
    reel_test_expect(run_key(REEL_CMD_UNFOLLOW, 6000, NULL, 0,
                             (reel_event_t){.user = u, .target = v}),
                     200, NULL);
    /* Just inside the window: replayed, the follow is not made again. */
    reel_cmd_result_t b = run_key(REEL_CMD_FOLLOW, 5000 + REEL_IDEM_WINDOW_MS - 1, "f", 1,
                                  (reel_event_t){.user = u, .target = v});
    cr_assert(b.replayed);
    reel_views_txn_t *t;
    bool f = true;
    cr_assert_eq(reel_engine_read_begin(eng, &t), 0);
    cr_assert_eq(reel_views_follows(t, u, v, &f), 0);
    reel_views_read_end(t);
    cr_assert_not(f);
    /* At the window's end the key is free: judged and recorded again. */
    reel_cmd_result_t c = run_key(REEL_CMD_FOLLOW, 5000 + REEL_IDEM_WINDOW_MS, "f", 2,
                                  (reel_event_t){.user = u, .target = v});
    reel_test_expect(c, 200, NULL);
    cr_assert_not(c.replayed);
    cr_assert_gt(c.offset, a.offset);
}

Test(idem, refusals_and_no_ops_are_not_recorded)
{
    uint64_t u = user("fay", 1000), v = user("gus", 1000);
    reel_event_t fol = {.user = u, .target = v};
    reel_test_expect(run_key(REEL_CMD_FOLLOW, 1000, "x", 1, (reel_event_t){.user = u,
                                                                          .target = 999}),
                     404, "not_found");
    uint64_t end = log_end();
    reel_cmd_result_t a = run_key(REEL_CMD_FOLLOW, 1000, "x", 2, fol); /* another fp: judged */
    reel_test_expect(a, 200, NULL);
    cr_assert_eq(log_end(), end + 2, "follow.created and the record");
    reel_cmd_result_t b = run_key(REEL_CMD_FOLLOW, 1000, "y", 3, fol); /* a no-op */
    reel_test_expect(b, 200, NULL);
    cr_assert_eq(b.offset, -1);
    cr_assert_eq(log_end(), end + 2, "a no-op appends nothing, not even a record");
}

Test(idem, bad_keys_are_refused)
{
    static const char *const bad[] = {"", "tab\there", "\x7f",
                                      "0123456789012345678901234567890123456789012345678901234567890123X"};
    for (size_t i = 0; i < REEL_ARRAY_LEN(bad); i++) {
        reel_cmd_t c = {.kind = REEL_CMD_USER_CREATE, .idem_key = bad[i],
                        .idem_key_len = (uint32_t)strlen(bad[i]), .args = {.handle = S("hal")}};
        reel_cmd_result_t r;
        cr_assert_eq(reel_engine_run(eng, &c, &r), 0);
        reel_test_expect(r, 400, "bad_field");
        cr_assert_str_eq(r.field, "idempotency_key");
    }
    cr_assert_eq(log_end(), 0);
}

/* Two commands with one key in one batch: the second sees the first's
 * record through the session. */
typedef struct two {
    int done;
} two_t;
static void two_cb(reel_cmd_req_t *req)
{
    __atomic_add_fetch(&((two_t *)req->data)->done, 1, __ATOMIC_SEQ_CST);
}

Test(idem, a_repeat_in_the_same_batch_is_replayed)
{
    two_t w = {0};
    reel_cmd_req_t r[2];
    for (int i = 0; i < 2; i++) {
        r[i] = (reel_cmd_req_t){.cmd = {.kind = REEL_CMD_USER_CREATE, .idem_key = "same",
                                        .idem_key_len = 4, .idem_fp = 4,
                                        .args = {.handle = S("ivy")}},
                                .cb = two_cb, .data = &w};
    }
    cr_assert_eq(reel_engine_submit(eng, &r[0]), 0);
    cr_assert_eq(reel_engine_submit(eng, &r[1]), 0);
    /* A synchronous command after both is answered after them (in order). */
    user("jon", 0);
    cr_assert_eq(__atomic_load_n(&w.done, __ATOMIC_SEQ_CST), 2);
    reel_test_expect(r[0].res, 201, NULL);
    reel_test_expect(r[1].res, 201, NULL);
    cr_assert_eq(r[1].res.id, r[0].res.id);
    cr_assert(r[1].res.replayed);
}

Test(idem, post_bodies_and_friends)
{
    uint64_t a = user("kim", 1000), b = user("lee", 1000), c = user("max", 1000);
    uint8_t emb[64 * 4] = {0}; /* the engine's --dim, 64 by default */
    float vals[64] = {0.5f, -1.0f, 2.25f};
    for (int i = 0; i < 64; i++) {
        uint32_t x;
        memcpy(&x, &vals[i], 4);
        reel_store_u32(emb + 4 * i, x);
    }
    reel_event_t p = {.user = a, .video_uri = S("file:///a.gif"), .prompt = S("dachshund surfing"),
                      .ntags = 2, .tags = {S("dogs"), S("surf")}, .dim = 64, .embedding = emb,
                      .visibility = S("public")};
    reel_cmd_result_t r = run_key(REEL_CMD_POST_CREATE, 2000, NULL, 0, p);
    reel_test_expect(r, 201, NULL);
    run_key(REEL_CMD_FOLLOW, 3000, NULL, 0, (reel_event_t){.user = a, .target = b});
    run_key(REEL_CMD_FOLLOW, 4000, NULL, 0, (reel_event_t){.user = b, .target = a});
    run_key(REEL_CMD_FOLLOW, 5000, NULL, 0, (reel_event_t){.user = a, .target = c});
    run_key(REEL_CMD_FOLLOW, 6000, NULL, 0, (reel_event_t){.user = c, .target = a});
    run_key(REEL_CMD_FOLLOW, 7000, NULL, 0, (reel_event_t){.user = b, .target = c});

    reel_views_txn_t *t;
    reel_post_body_t body;
    reel_follow_entry_t fr[4];
    size_t n;
    cr_assert_eq(reel_engine_read_begin(eng, &t), 0);
    cr_assert_eq(reel_views_get_post_body(t, r.id, &body), 0);
    cr_assert_eq(body.video_uri_len, 13);
    cr_assert_eq(memcmp(body.video_uri, "file:///a.gif", 13), 0);
    cr_assert_eq(body.prompt_len, 17);
    cr_assert_eq(body.ntags, 2);
    cr_assert_eq(memcmp(body.tags[1].ptr, "surf", 4), 0);
    cr_assert_eq(body.dim, 64);
    for (uint32_t i = 0; i < 64; i++)
        cr_assert_float_eq(reel_post_body_embedding_at(&body, i), vals[i], 0);
    cr_assert_eq(reel_views_friends(t, a, 0, 0, 4, fr, &n), 0);
    cr_assert_eq(n, 2);
    cr_assert_eq(fr[0].user, c, "newest friendship first");
    cr_assert_eq(fr[0].since, 6000, "dated by the later follow");
    cr_assert_eq(fr[1].user, b);
    cr_assert_eq(fr[1].since, 4000);
    cr_assert_eq(reel_views_friends(t, a, fr[0].since, fr[0].user, 4, fr, &n), 0);
    cr_assert_eq(n, 1, "the cursor continues after the first page's last entry");
    cr_assert_eq(fr[0].user, b);
    cr_assert_eq(reel_views_friends(t, b, 0, 0, 4, fr, &n), 0);
    cr_assert_eq(n, 1, "b follows c but c does not follow b");
    reel_views_read_end(t);

    run_key(REEL_CMD_UNFOLLOW, 8000, NULL, 0, (reel_event_t){.user = c, .target = a});
    run_key(REEL_CMD_POST_DELETE, 8000, NULL, 0, (reel_event_t){.post = r.id, .user = a});
    cr_assert_eq(reel_engine_read_begin(eng, &t), 0);
    cr_assert_eq(reel_views_friends(t, a, 0, 0, 4, fr, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(fr[0].user, b);
    cr_assert_eq(reel_views_friends(t, c, 0, 0, 4, fr, &n), 0);
    cr_assert_eq(n, 0);
    cr_assert_eq(reel_views_get_post_body(t, r.id, &body), REEL_ENOTFOUND);
    reel_views_read_end(t);
}

/* on_apply (reel.h) sees every appended event once, in offset order,
 * before the answer, and nothing of a refused command. */
typedef struct seen {
    uint64_t next;    /* offset expected next */
    uint64_t n;
    bool gap;
} seen_t;

static void on_apply(void *ctx, const reel_event_t *evs, size_t n)
{
    seen_t *s = ctx;
    for (size_t i = 0; i < n; i++) {
        if (evs[i].offset != s->next)
            s->gap = true;
        s->next = evs[i].offset + 1;
        s->n++;
    }
}

Test(idem, on_apply_sees_every_appended_event_in_order)
{
    char err[256], d2[PATH_MAX];
    seen_t s = {0};
    reel_engine_t *e2;
    reel_engine_options_t o = {.log = {.segment_size = 256 << 10}, .on_apply = on_apply,
                               .on_apply_ctx = &s};
    reel_test_tmpdir(d2, sizeof d2, "onapply");
    cr_assert_eq(reel_engine_open(d2, &o, &e2, err, sizeof err), 0, "%s", err);
    reel_cmd_result_t a = reel_test_cmd(e2, REEL_CMD_USER_CREATE, 0,
                                        (reel_event_t){.handle = S("one")});
    cr_assert_eq(s.n, 1, "applied before the answer");
    reel_test_expect(reel_test_cmd(e2, REEL_CMD_USER_CREATE, 0, (reel_event_t){.handle = S("one")}),
                     409, "handle_taken");
    reel_cmd_t cmds[300];
    char h[300][12];
    for (int i = 0; i < 300; i++) {
        snprintf(h[i], sizeof h[i], "u%d", i);
        cmds[i] = (reel_cmd_t){.kind = REEL_CMD_USER_CREATE, .args = {.handle = S(h[i])}};
    }
    reel_test_cmds(e2, cmds, 300, NULL);
    for (int i = 0; i < 300; i++) /* 300 followers: their deletion takes 3 chunks */
        cmds[i] = (reel_cmd_t){.kind = REEL_CMD_FOLLOW, .args = {.user = (uint64_t)i + 2,
                                                                 .target = a.id}};
    reel_test_cmds(e2, cmds, 300, NULL);
    reel_test_expect(reel_test_cmd(e2, REEL_CMD_USER_DELETE, 0, (reel_event_t){.user = a.id}), 200,
                     NULL);
    cr_assert_not(s.gap);
    cr_assert_eq(s.next, reel_log_end(reel_engine_log(e2)));
    cr_assert_eq(s.n, s.next);
    reel_engine_close(e2);
    reel_test_rmtree(d2);
}

/* A failed sync under the engine: the write in flight answers 503, every
 * later write too (sticky, even once the disk works again), reads keep
 * working, reel_engine_status says why, and nothing after the failure is
 * in the log. */
Test(idem, failed_sync_stops_writes_reads_go_on)
{
    char err[256], d2[PATH_MAX];
    reel_io_t *inner;
    reel_fault_io_t *fault;
    reel_engine_t *e2;
    cr_assert_eq(reel_io_sync_create(&inner), 0);
    cr_assert_eq(reel_io_fault_create(inner, &fault), 0);
    reel_engine_options_t o = {.log = {.segment_size = 256 << 10, .io = reel_io_fault_io(fault)}};
    reel_test_tmpdir(d2, sizeof d2, "engfault");
    cr_assert_eq(reel_engine_open(d2, &o, &e2, err, sizeof err), 0, "%s", err);
    reel_cmd_result_t a = reel_test_cmd(e2, REEL_CMD_USER_CREATE, 0,
                                        (reel_event_t){.handle = S("before")});
    reel_test_expect(a, 201, NULL);
    cr_assert_eq(reel_engine_status(e2, NULL), 0);
    reel_fault_rule_t r = {.ops = REEL_FAULT_OP_WRITE_DURABLE, .action = REEL_FAULT_FAIL_LOSE,
                           .err = EIO, .fire_max = 1};
    cr_assert_geq(reel_io_fault_set(fault, &r), 0);
    reel_test_expect(reel_test_cmd(e2, REEL_CMD_USER_CREATE, 0, (reel_event_t){.handle = S("lost")}),
                     503, "unavailable");
    reel_io_fault_clear(fault);
    reel_test_expect(reel_test_cmd(e2, REEL_CMD_USER_CREATE, 0, (reel_event_t){.handle = S("after")}),
                     503, "unavailable");
    cr_assert_eq(reel_engine_status(e2, NULL), -EIO);
    reel_views_txn_t *t;
    reel_user_view_t u;
    cr_assert_eq(reel_engine_read_begin(e2, &t), 0);
    cr_assert_eq(reel_views_get_user(t, a.id, &u), 0, "reads go on");
    reel_views_read_end(t);
    cr_assert_eq(reel_log_end(reel_engine_log(e2)), 1, "nothing after the failure");
    reel_engine_close(e2);
    reel_io_fault_destroy(fault);
    reel_io_destroy(inner);
    reel_test_rmtree(d2);
}
