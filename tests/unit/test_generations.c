/*
 * test_generations.c: generations and the render queue (engine/rules_gen.c,
 * the generation views in engine/views.c): the rolling quota with its
 * refunds, claims oldest first, leases (heartbeat, expiry, lease_lost),
 * completion into a post, render attempts, the revoke cascade's
 * cancellations, and after each: the live views equal a replay of the log.
 *
 * Method: the engine trusts client time, and every command carries an
 * explicit `at` from a test clock (now_ms) that only moves forward, so the
 * 24 h window and the leases are tested without sleeping.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/common.h"
#include "engine/datadir.h"
#include "engine/engine_int.h"
#include "engine/reel.h"
#include "engine/replay.h"
#include "tests/harness.h"

#define DAY_MS (24ull * 3600u * 1000u)
#define T0 1700000000000ull

static char dir[PATH_MAX];
static reel_engine_t *eng;
static uint64_t now_ms;

/* (Re)opens the engine on dir with these quota and attempt options. */
static void open_with(uint32_t per_day, uint32_t attempts)
{
    char err[256];
    reel_engine_options_t o = {.trust_client_time = true,
                               .generations_per_day = per_day,
                               .render_attempts = attempts,
                               .log = {.segment_size = 256 << 10}};
    if (eng != NULL)
        cr_assert_eq(reel_engine_close(eng), 0);
    int rc = reel_engine_open(dir, &o, &eng, err, sizeof(err));
    cr_assert_eq(rc, 0, "open: %s", err);
}

static void setup(void)
{
    reel_test_tmpdir(dir, sizeof(dir), "generations");
    eng = NULL;
    now_ms = T0;
    open_with(0, 0);
}

static void teardown(void)
{
    reel_engine_close(eng);
    reel_test_rmtree(dir);
}

TestSuite(generations, .init = setup, .fini = teardown, .timeout = 120);

static reel_str_t S(const char *s)
{
    return (reel_str_t){s, (uint32_t)strlen(s)};
}

/* Runs a command at the test clock. */
static reel_cmd_result_t run(reel_cmd_kind_t kind, reel_event_t args)
{
    return reel_test_cmd(eng, kind, now_ms, args);
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

/* The live views equal a fold of the log into fresh views. */
static void expect_views_equal_replay(void)
{
    reel_test_views_equal_replay(eng, dir);
}

/* A generation by u featuring cameo (0: none), accepted. */
static uint64_t generate(uint64_t u, uint64_t cameo)
{
    reel_event_t a = {.user = u, .prompt = S("a cat on a skateboard"), .ncameos = cameo ? 1 : 0};
    a.cameos[0] = cameo;
    reel_cmd_result_t r = run(REEL_CMD_GENERATION_CREATE, a);
    expect(r, 202, NULL);
    return r.id;
}

/* Claims up to max for worker with lease_ms (0: the default). */
static reel_cmd_result_t claim(const char *worker, uint64_t max, uint64_t lease_ms)
{
    reel_cmd_result_t r = run(REEL_CMD_RENDER_CLAIM, (reel_event_t){.worker = S(worker),
                                                                     .attempt = max,
                                                                     .lease_until = lease_ms});
    expect(r, 200, NULL);
    return r;
}

static reel_cmd_result_t complete(uint64_t gen, const char *worker, bool publish)
{
    return run(REEL_CMD_RENDER_COMPLETE,
               (reel_event_t){.generation = gen, .worker = S(worker),
                              .video_uri = S("s3://out.mp4"), .duration_ms = 4000,
                              .publish = publish});
}

static reel_cmd_result_t fail(uint64_t gen, const char *worker, bool retryable)
{
    return run(REEL_CMD_RENDER_FAIL, (reel_event_t){.generation = gen, .worker = S(worker),
                                                     .reason = S("gpu oom"),
                                                     .retryable = retryable});
}

static reel_generation_view_t get_gen(uint64_t id)
{
    reel_views_txn_t *t;
    reel_generation_view_t g;
    cr_assert_eq(reel_engine_read_begin(eng, &t), 0);
    cr_assert_eq(reel_views_get_generation(t, id, &g), 0);
    g.prompt = NULL; /* into the snapshot, which ends here */
    g.ntags = 0;
    reel_views_read_end(t);
    return g;
}

static void expect_status(uint64_t gen, reel_gen_status_t status)
{
    reel_generation_view_t g = get_gen(gen);
    cr_assert_eq(g.status, status, "generation %lu status %u, want %u", (unsigned long)gen,
                 g.status, status);
}

/* The JSON of the event at offset, from the log. */
static void event_json(uint64_t offset, char *json, size_t cap)
{
    reel_log_iter_t *it;
    reel_record_t rec;
    reel_event_t ev;
    cr_assert_eq(reel_log_iter_open(reel_engine_log(eng), offset, &it), 0);
    cr_assert_eq(reel_log_iter_next(it, &rec), 0);
    cr_assert_eq(reel_event_decode(rec.type, rec.payload, rec.length, &ev), 0);
    ev.offset = rec.offset;
    ev.at = rec.time_ms;
    cr_assert_gt(reel_event_to_json(&ev, json, cap), 0);
    reel_log_iter_close(it);
}

static uint64_t last_post_id(void)
{
    reel_views_txn_t *t;
    uint64_t last;
    cr_assert_eq(reel_engine_read_begin(eng, &t), 0);
    cr_assert_eq(reel_views_last_id(t, REEL_VIEWS_ID_POST, &last), 0);
    reel_views_read_end(t);
    return last;
}

static void set_cameo(uint64_t owner, const char *policy)
{
    expect(run(REEL_CMD_CAMEO_SET, (reel_event_t){.user = owner, .asset = S("s3://face")}), 200,
           NULL);
    expect(run(REEL_CMD_CAMEO_POLICY, (reel_event_t){.user = owner, .policy = S(policy)}), 200,
           NULL);
}

/* ---- the quota ---- */

/* Goal: 30 generations fit in 24 h, the 31st is 429 with Retry-After until
 * the oldest leaves the window, and it leaves exactly 24 h after. Method:
 * one generation a second, then step the clock to the window's edge. */
Test(generations, quota_rolls_over_24_hours)
{
    uint64_t u = user("maker");
    for (uint64_t i = 0; i < 30; i++, now_ms += 1000) {
        reel_cmd_result_t r = run(REEL_CMD_GENERATION_CREATE,
                                  (reel_event_t){.user = u, .prompt = S("p")});
        expect(r, 202, NULL);
        cr_assert_eq(r.id, i + 1);
        cr_assert_eq(r.quota.used, i + 1);
        cr_assert_eq(r.quota.limit, 30);
        cr_assert_eq(r.quota.resets_at, T0 + DAY_MS);
    }
    now_ms = T0 + 40000;
    reel_cmd_result_t r = run(REEL_CMD_GENERATION_CREATE, (reel_event_t){.user = u, .prompt = S("p")});
    expect(r, 429, "quota_exceeded");
    cr_assert_eq(r.retry_after_s, (DAY_MS - 40000) / 1000);
    cr_assert_eq(r.quota.used, 30);
    cr_assert_eq(r.offset, -1, "a refused generation appends nothing");
    now_ms = T0 + DAY_MS - 1; /* the oldest is still inside: 1 ms rounds up to 1 s */
    r = run(REEL_CMD_GENERATION_CREATE, (reel_event_t){.user = u, .prompt = S("p")});
    expect(r, 429, "quota_exceeded");
    cr_assert_eq(r.retry_after_s, 1);
    now_ms = T0 + DAY_MS; /* the window is (now - 24 h, now]: the first one left */
    r = run(REEL_CMD_GENERATION_CREATE, (reel_event_t){.user = u, .prompt = S("p")});
    expect(r, 202, NULL);
    cr_assert_eq(r.quota.used, 30);
    cr_assert_eq(r.quota.resets_at, T0 + 1000 + DAY_MS);
    expect_views_equal_replay();
}

/* Goal: the create command validates its fields in the contract's order.
 * Method: one bad field at a time. */
Test(generations, create_validates)
{
    uint64_t u = user("maker"), o = user("owner");
    expect(run(REEL_CMD_GENERATION_CREATE, (reel_event_t){.user = u}), 400, "missing_field");
    expect(run(REEL_CMD_GENERATION_CREATE, (reel_event_t){.user = 99, .prompt = S("p")}), 404,
           "not_found");
    reel_event_t a = {.user = u, .prompt = S("p"), .remix_of = 42};
    expect(run(REEL_CMD_GENERATION_CREATE, a), 404, "not_found");
    a = (reel_event_t){.user = u, .prompt = S("p"), .ncameos = 2, .cameos = {u, o}};
    reel_cmd_result_t r = run(REEL_CMD_GENERATION_CREATE, a);
    expect(r, 403, "cameo_not_allowed");
    cr_assert_str_eq(r.field, "cameos[1]");
    expect_views_equal_replay();
}

/* Goal: failed and cancelled generations give their place back. Method: a
 * quota of 2; fail one (not retryable) and cancel one (approval revoked),
 * and a new one fits after each. */
Test(generations, failed_and_cancelled_refund_the_quota)
{
    open_with(2, 0);
    uint64_t u = user("maker"), o = user("owner");
    set_cameo(o, "approved");
    expect(run(REEL_CMD_CAMEO_APPROVE, (reel_event_t){.user = o, .target = u}), 200, NULL);
    uint64_t g1 = generate(u, 0), g2 = generate(u, o);
    expect(run(REEL_CMD_GENERATION_CREATE, (reel_event_t){.user = u, .prompt = S("p")}), 429,
           "quota_exceeded");
    cr_assert_eq(claim("w1", 1, 0).claimed[0], g1);
    expect(fail(g1, "w1", false), 200, NULL);
    expect_status(g1, REEL_GEN_FAILED);
    uint64_t g3 = generate(u, 0);
    expect(run(REEL_CMD_GENERATION_CREATE, (reel_event_t){.user = u, .prompt = S("p")}), 429,
           "quota_exceeded");
    expect(run(REEL_CMD_CAMEO_UNAPPROVE, (reel_event_t){.user = o, .target = u}), 200, NULL);
    expect_status(g2, REEL_GEN_CANCELLED);
    expect_status(g3, REEL_GEN_QUEUED);
    generate(u, 0);
    expect_views_equal_replay();
}

/* ---- claims and leases ---- */

/* Goal: claims take the oldest queued first, at most max, and an empty
 * queue answers no task and appends nothing. */
Test(generations, claim_takes_oldest_first)
{
    uint64_t a = user("ann"), b = user("bob");
    uint64_t g1 = generate(a, 0), g2 = generate(b, 0), g3 = generate(a, 0);
    reel_cmd_result_t r = claim("w1", 2, 5000);
    cr_assert_eq(r.nclaimed, 2);
    cr_assert_eq(r.claimed[0], g1);
    cr_assert_eq(r.claimed[1], g2);
    cr_assert_eq(r.lease_until, now_ms + 5000);
    reel_generation_view_t g = get_gen(g1);
    cr_assert_eq(g.status, REEL_GEN_RUNNING);
    cr_assert_str_eq(g.worker, "w1");
    cr_assert_eq(g.attempts, 1);
    cr_assert_eq(g.lease_until, now_ms + 5000);
    r = claim("w2", 5, 0);
    cr_assert_eq(r.nclaimed, 1);
    cr_assert_eq(r.claimed[0], g3);
    cr_assert_eq(r.lease_until, now_ms + 60000, "lease_ms defaults to 60 s");
    r = claim("w2", 5, 0);
    cr_assert_eq(r.nclaimed, 0);
    cr_assert_eq(r.offset, -1);
    expect(run(REEL_CMD_RENDER_CLAIM, (reel_event_t){.worker = S("w"), .lease_until = 99}), 400,
           "bad_field");
    expect(run(REEL_CMD_RENDER_CLAIM, (reel_event_t){.worker = S("w"), .attempt = 65}), 400,
           "bad_field");
    expect(run(REEL_CMD_RENDER_CLAIM, (reel_event_t){.lease_until = 1000}), 400, "missing_field");
    expect_views_equal_replay();
}

/* Goal: a lease that runs out goes back to the queue at the next claim,
 * which may take it again; the old worker has lost it. Method: lease 1 s,
 * heartbeat, then let it run out. */
Test(generations, lease_expiry_requeues_and_reclaims)
{
    uint64_t u = user("maker");
    uint64_t g1 = generate(u, 0);
    claim("w1", 1, 1000);
    now_ms += 500;
    reel_cmd_result_t r = run(REEL_CMD_RENDER_HEARTBEAT,
                              (reel_event_t){.generation = g1, .worker = S("w1"),
                                             .lease_until = 1000});
    expect(r, 200, NULL);
    cr_assert_eq(r.lease_until, now_ms + 1000);
    now_ms += 1000; /* lease_until == now: run out */
    expect(run(REEL_CMD_RENDER_HEARTBEAT, (reel_event_t){.generation = g1, .worker = S("w1")}),
           409, "lease_lost");
    expect_status(g1, REEL_GEN_RUNNING); /* until a claim expires it */
    r = claim("w2", 4, 0);
    cr_assert_eq(r.nclaimed, 1);
    cr_assert_eq(r.claimed[0], g1);
    reel_generation_view_t g = get_gen(g1);
    cr_assert_eq(g.status, REEL_GEN_RUNNING);
    cr_assert_str_eq(g.worker, "w2");
    cr_assert_eq(g.attempts, 2);
    expect(complete(g1, "w1", false), 409, "lease_lost");
    expect(complete(g1, "w2", false), 200, NULL);
    expect_views_equal_replay();
}

/* Goal: heartbeat, complete and fail from a worker without the lease are
 * 409 lease_lost; an unknown generation is 404. */
Test(generations, wrong_worker_is_lease_lost)
{
    uint64_t u = user("maker");
    uint64_t g1 = generate(u, 0);
    expect(complete(g1, "w1", false), 409, "lease_lost"); /* queued: nobody holds it */
    claim("w1", 1, 0);
    expect(run(REEL_CMD_RENDER_HEARTBEAT, (reel_event_t){.generation = g1, .worker = S("w2")}),
           409, "lease_lost");
    expect(complete(g1, "w2", false), 409, "lease_lost");
    expect(fail(g1, "w2", true), 409, "lease_lost");
    expect(complete(77, "w1", false), 404, "not_found");
    expect(run(REEL_CMD_RENDER_FAIL, (reel_event_t){.generation = g1, .worker = S("w1")}), 400,
           "missing_field");
    expect_status(g1, REEL_GEN_RUNNING);
    expect_views_equal_replay();
}

/* ---- completion ---- */

/* Goal: a completion makes one post with the generation's prompt, tags,
 * cameos and lineage, a draft unless publish; a second completion is 409
 * and changes nothing. Method: read the post back and the post.created
 * event from the log. */
Test(generations, completion_creates_the_post_once)
{
    uint64_t u = user("maker"), o = user("owner");
    set_cameo(o, "everyone");
    reel_cmd_result_t r = run(REEL_CMD_POST_CREATE,
                              (reel_event_t){.user = o, .video_uri = S("v"), .prompt = S("orig")});
    expect(r, 201, NULL);
    uint64_t parent = r.id;
    reel_event_t a = {.user = u, .prompt = S("a dog surfing"), .remix_of = parent, .ncameos = 1,
                      .cameos = {o}, .ntags = 2, .tags = {S("dogs"), S("surf")}};
    r = run(REEL_CMD_GENERATION_CREATE, a);
    expect(r, 202, NULL);
    uint64_t g1 = r.id;
    claim("w1", 1, 0);
    r = complete(g1, "w1", false);
    expect(r, 200, NULL);
    uint64_t post = r.id;
    cr_assert_eq(post, parent + 1);
    char json[4096];
    event_json((uint64_t)r.offset, json, sizeof(json));
    cr_assert(strstr(json, "\"prompt\":\"a dog surfing\"") != NULL, "%s", json);
    cr_assert(strstr(json, "\"tags\":[\"dogs\",\"surf\"]") != NULL, "%s", json);
    cr_assert(strstr(json, "\"visibility\":\"draft\"") != NULL, "%s", json);
    reel_views_txn_t *t;
    reel_post_view_t p;
    bool appears;
    cr_assert_eq(reel_engine_read_begin(eng, &t), 0);
    cr_assert_eq(reel_views_get_post(t, post, &p), 0);
    cr_assert_eq(reel_views_appears(t, o, post, &appears), 0);
    reel_views_read_end(t);
    cr_assert_eq(p.author, u);
    cr_assert(!p.public);
    cr_assert_eq(p.remix_of, parent);
    cr_assert_eq(p.remix_root, parent);
    cr_assert(appears);
    reel_generation_view_t g = get_gen(g1);
    cr_assert_eq(g.status, REEL_GEN_COMPLETED);
    cr_assert_eq(g.post, post);
    int64_t end = r.offset;
    r = complete(g1, "w1", true);
    expect(r, 409, "lease_lost");
    cr_assert_eq(r.offset, -1);
    expect(fail(g1, "w1", true), 409, "lease_lost");
    cr_assert_eq(last_post_id(), post);
    uint64_t g2 = generate(u, 0);
    claim("w1", 1, 0);
    r = complete(g2, "w1", true);
    expect(r, 200, NULL);
    cr_assert_gt(r.offset, end);
    cr_assert_eq(reel_engine_read_begin(eng, &t), 0);
    cr_assert_eq(reel_views_get_post(t, r.id, &p), 0);
    reel_views_read_end(t);
    cr_assert(p.public, "publish makes it public");
    expect_views_equal_replay();
}

/* Goal: a cameo revoked while rendering cancels the generation (its
 * completion is 409, no post), and a deleted cameo cancels queued ones. */
Test(generations, revoke_cancels_queued_and_running)
{
    uint64_t u = user("maker"), o = user("owner"), k = user("keeper");
    set_cameo(o, "approved");
    expect(run(REEL_CMD_CAMEO_APPROVE, (reel_event_t){.user = o, .target = u}), 200, NULL);
    expect(run(REEL_CMD_CAMEO_APPROVE, (reel_event_t){.user = o, .target = k}), 200, NULL);
    uint64_t g1 = generate(u, o), g2 = generate(k, o), g3 = generate(k, o);
    cr_assert_eq(claim("w1", 1, 0).claimed[0], g1);
    uint64_t posts = last_post_id();
    expect(run(REEL_CMD_CAMEO_UNAPPROVE, (reel_event_t){.user = o, .target = u}), 200, NULL);
    expect_status(g1, REEL_GEN_CANCELLED);
    expect_status(g2, REEL_GEN_QUEUED); /* another grantee keeps the right */
    reel_cmd_result_t r = complete(g1, "w1", false);
    expect(r, 409, "lease_lost");
    cr_assert(strstr(r.message, "cancelled") != NULL, "%s", r.message);
    cr_assert_eq(last_post_id(), posts, "no post");
    cr_assert_eq(claim("w2", 1, 0).claimed[0], g2);
    expect(run(REEL_CMD_CAMEO_DELETE, (reel_event_t){.user = o}), 200, NULL);
    expect_status(g2, REEL_GEN_CANCELLED);
    expect_status(g3, REEL_GEN_CANCELLED);
    cr_assert_eq(claim("w2", 4, 0).nclaimed, 0, "cancelled ones leave the queue");
    expect_views_equal_replay();
}

/* ---- attempts ---- */

/* Goal: retryable failures re-queue until --render-attempts attempts are
 * spent, then the generation is failed; a lease running out on the last
 * attempt fails it too. */
Test(generations, render_attempts_bound_retries)
{
    uint64_t u = user("maker");
    uint64_t g1 = generate(u, 0);
    for (uint64_t attempt = 1; attempt <= 3; attempt++) {
        reel_cmd_result_t r = claim("w1", 1, 0);
        cr_assert_eq(r.nclaimed, 1);
        cr_assert_eq(get_gen(g1).attempts, attempt);
        expect(fail(g1, "w1", true), 200, NULL);
        expect_status(g1, attempt < 3 ? REEL_GEN_QUEUED : REEL_GEN_FAILED);
    }
    open_with(0, 1);
    uint64_t g2 = generate(u, 0);
    claim("w1", 1, 1000);
    now_ms += 1000;
    cr_assert_eq(claim("w2", 1, 0).nclaimed, 0);
    expect_status(g2, REEL_GEN_FAILED);
    reel_views_txn_t *t;
    uint64_t used, oldest;
    cr_assert_eq(reel_engine_read_begin(eng, &t), 0);
    cr_assert_eq(reel_views_quota(t, u, now_ms, DAY_MS, 30, &used, &oldest), 0);
    reel_views_read_end(t);
    cr_assert_eq(used, 0, "failed ones leave the count");
    expect_views_equal_replay();
}

/* Goal: the quota read (GET /v1/users/{id}/quota) agrees with what the
 * create command answered, and an unknown user is 404. */
Test(generations, quota_read_matches_create)
{
    uint64_t u = user("maker");
    reel_cmd_result_t r = run(REEL_CMD_GENERATION_CREATE, (reel_event_t){.user = u, .prompt = S("p")});
    expect(r, 202, NULL);
    reel_views_txn_t *t;
    reel_quota_t q;
    cr_assert_eq(reel_engine_read_begin(eng, &t), 0);
    cr_assert_eq(reel_engine_quota(t, u, now_ms, 30, &q), 0);
    cr_assert_eq(q.used, r.quota.used);
    cr_assert_eq(q.resets_at, r.quota.resets_at);
    cr_assert_eq(reel_engine_quota(t, 99, now_ms, 30, &q), REEL_ENOTFOUND);
    cr_assert_eq(reel_engine_quota(t, u, now_ms + DAY_MS, 30, &q), 0);
    cr_assert_eq(q.used, 0);
    cr_assert_eq(q.resets_at, 0);
    reel_views_read_end(t);
    expect_views_equal_replay();
}

/* The last line of the consent rule: a completion that finds a cameo no
 * longer allowed (here consent ended by an event appended straight to the
 * log, with no cascade: a path the rules would never take) is 409
 * lease_lost, and the generation is cancelled in the log, not posted. */
Test(generations, completion_without_consent_cancels)
{
    uint64_t o = user("owner"), u = user("maker");
    set_cameo(o, "everyone");
    uint64_t g = generate(u, o);
    claim("w1", 1, 0);
    cr_assert_eq(reel_engine_close(eng), 0);
    eng = NULL;
    char log_dir[PATH_MAX + 8];
    reel_log_t *log;
    uint8_t buf[64];
    snprintf(log_dir, sizeof log_dir, "%s/" REEL_DATA_LOG_SUBDIR, dir);
    cr_assert_eq(reel_log_open(log_dir, NULL, &log, NULL, 0), 0);
    reel_event_t ev = {.type = REEL_EV_CAMEO_POLICY_SET, .user = o, .policy = S("only_me")};
    int n = reel_event_encode(&ev, buf, sizeof buf);
    reel_log_entry_t ent = {ev.type, (uint32_t)n, buf};
    cr_assert_eq(reel_log_append_group(log, &ent, 1, now_ms, NULL), 0);
    cr_assert_eq(reel_log_close(log), 0);
    open_with(0, 0);
    uint64_t end = reel_log_end(reel_engine_log(eng));
    reel_cmd_result_t r = complete(g, "w1", true);
    expect(r, 409, "lease_lost");
    cr_assert_eq(reel_log_end(reel_engine_log(eng)), end + 1, "the cancellation is recorded");
    expect_status(g, REEL_GEN_CANCELLED);
    cr_assert_eq(get_gen(g).post, 0, "no post");
    expect(complete(g, "w1", true), 409, "lease_lost");
    cr_assert_eq(reel_log_end(reel_engine_log(eng)), end + 1, "once");
    expect_views_equal_replay();
}

/* The quota's count stops at the limit: with a high limit and many
 * generations, each check costs at most `limit` steps, and the answer is
 * the same as counting all of them up to the limit. */
Test(generations, quota_count_stops_at_its_bound)
{
    uint64_t u = user("heavy");
    for (int i = 0; i < 12; i++)
        generate(u, 0);
    reel_views_txn_t *t;
    uint64_t used, oldest;
    cr_assert_eq(reel_engine_read_begin(eng, &t), 0);
    cr_assert_eq(reel_views_quota(t, u, now_ms, DAY_MS, 5, &used, &oldest), 0);
    cr_assert_eq(used, 5, "counting stops at max");
    cr_assert_eq(reel_views_quota(t, u, now_ms, DAY_MS, 100, &used, &oldest), 0);
    cr_assert_eq(used, 12);
    cr_assert_eq(reel_views_quota(t, u, now_ms, DAY_MS, 0, &used, &oldest), REEL_EUSAGE);
    reel_views_read_end(t);
}
