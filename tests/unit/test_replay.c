/*
 * test_replay.c: folding the log into the views (engine/replay.h). The
 * views must equal the same function of the log however the folding is
 * cut up: in one go, in pieces, interrupted and resumed after a reopen.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "engine/common.h"
#include "engine/event.h"
#include "engine/log.h"
#include "engine/replay.h"
#include "engine/views.h"
#include "tests/harness.h"

static char dir[PATH_MAX];
static char log_dir[PATH_MAX + 16];

static void setup(void)
{
    reel_test_tmpdir(dir, sizeof(dir), "replay");
    snprintf(log_dir, sizeof(log_dir), "%s/log", dir);
}

static void teardown(void)
{
    reel_test_rmtree(dir);
}

TestSuite(replay, .init = setup, .fini = teardown, .timeout = 120);

static void append_event(reel_log_t *log, const reel_event_t *ev)
{
    uint8_t buf[4096];
    int n = reel_event_encode(ev, buf, sizeof(buf));
    cr_assert_gt(n, 0, "encode: %s", reel_strerror(n));
    cr_assert_eq(reel_log_append(log, ev->type, buf, (uint32_t)n, NULL), 0);
}

/* A deterministic world: users, then follows, posts and likes at random. */
static uint64_t make_world(uint64_t events)
{
    reel_log_t *log;
    reel_log_options_t o = {.segment_size = 256 << 10};
    uint64_t rng = 42, n = 0;
    enum { USERS = 50 };
    cr_assert_eq(reel_log_open(log_dir, &o, &log, NULL, 0), 0);
    for (uint64_t u = 1; u <= USERS; u++, n++) {
        char handle[16];
        int len = snprintf(handle, sizeof(handle), "user%lu", (unsigned long)u);
        reel_event_t ev = {.type = REEL_EV_USER_CREATED, .user = u, .handle = {handle, (uint32_t)len}};
        append_event(log, &ev);
    }
    for (uint64_t post = 1; n < events; n++) {
        uint64_t a = 1 + reel_test_rand(&rng) % USERS, b = 1 + reel_test_rand(&rng) % USERS;
        reel_event_t ev = {.user = a, .target = b};
        switch (reel_test_rand(&rng) % 5) {
        case 0:
            ev = (reel_event_t){.type = REEL_EV_POST_CREATED, .post = post++, .user = a,
                                .visibility = {"public", 6}};
            break;
        case 1:
            ev.type = REEL_EV_FOLLOW_REMOVED;
            break;
        case 2:
            ev = (reel_event_t){.type = REEL_EV_LIKE_CREATED, .user = a,
                                .post = 1 + reel_test_rand(&rng) % post};
            break;
        default:
            ev.type = REEL_EV_FOLLOW_CREATED;
        }
        append_event(log, &ev);
    }
    cr_assert_eq(reel_log_close(log), 0);
    return n;
}

static reel_log_t *open_ro(void)
{
    reel_log_t *log;
    reel_log_options_t o = {.read_only = true};
    cr_assert_eq(reel_log_open(log_dir, &o, &log, NULL, 0), 0);
    return log;
}

/* Replays into views_sub up to `to` (UINT64_MAX: all); returns the hash. */
static void replay_to(const char *views_sub, uint64_t to, uint8_t hash[16])
{
    char vdir[PATH_MAX + 32], err[256];
    reel_views_t *v;
    reel_log_t *log = open_ro();
    snprintf(vdir, sizeof(vdir), "%s/%s", dir, views_sub);
    cr_assert_eq(reel_views_open(vdir, &v), 0);
    int rc = reel_replay(log, v, to, NULL, NULL, err, sizeof(err));
    cr_assert_eq(rc, 0, "replay: %s", err);
    cr_assert_eq(reel_views_applied(v), to == UINT64_MAX ? reel_log_end(log) : to);
    cr_assert_eq(reel_views_hash(v, hash), 0);
    reel_views_close(v);
    reel_log_close(log);
}

Test(replay, any_cutting_of_the_fold_gives_the_same_views)
{
    uint8_t whole[16], pieces[16], other[16];
    uint64_t n = make_world(12000); /* several batches and segments */
    replay_to("whole", UINT64_MAX, whole);
    /* The same directory folded in pieces, closed and reopened between. */
    replay_to("pieces", 1, pieces);
    replay_to("pieces", 4097, pieces);
    replay_to("pieces", n / 2, pieces);
    replay_to("pieces", UINT64_MAX, pieces);
    cr_assert(memcmp(whole, pieces, 16) == 0, "fold in pieces == fold in one go");
    /* Replaying again is exactly once: nothing changes. */
    replay_to("pieces", UINT64_MAX, pieces);
    cr_assert(memcmp(whole, pieces, 16) == 0);
    /* And the views half-way differ. */
    replay_to("before", n / 2, other);
    cr_assert(memcmp(whole, other, 16) != 0);
}

Test(replay, views_ahead_of_the_log_are_refused)
{
    uint8_t h[16];
    char vdir[PATH_MAX + 32], err[256];
    reel_views_t *v;
    make_world(100);
    replay_to("ahead", UINT64_MAX, h);
    reel_test_rmtree(log_dir);
    make_world(60); /* another, shorter log */
    reel_log_t *log = open_ro();
    snprintf(vdir, sizeof(vdir), "%s/ahead", dir);
    cr_assert_eq(reel_views_open(vdir, &v), 0);
    cr_assert_eq(reel_replay(log, v, UINT64_MAX, NULL, NULL, err, sizeof(err)), REEL_EUSAGE);
    cr_assert(strstr(err, "another log") != NULL, "%s", err);
    reel_views_close(v);
    reel_log_close(log);
}

Test(replay, a_record_that_is_not_an_event_stops_it_by_offset)
{
    reel_log_t *log;
    reel_views_t *v;
    char vdir[PATH_MAX + 32], err[256];
    make_world(100);
    cr_assert_eq(reel_log_open(log_dir, NULL, &log, NULL, 0), 0);
    cr_assert_eq(reel_log_append(log, REEL_EV_LIKE_CREATED, "\x01\xff", 2, NULL), 0);
    cr_assert_eq(reel_log_close(log), 0);
    log = open_ro();
    snprintf(vdir, sizeof(vdir), "%s/bad", dir);
    cr_assert_eq(reel_views_open(vdir, &v), 0);
    cr_assert_eq(reel_replay(log, v, UINT64_MAX, NULL, NULL, err, sizeof(err)), REEL_ECORRUPT);
    cr_assert(strstr(err, "offset 100") != NULL, "%s", err);
    cr_assert_eq(reel_views_applied(v), 100, "everything before it applied");
    reel_views_close(v);
    reel_log_close(log);
}
