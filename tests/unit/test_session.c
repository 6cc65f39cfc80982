/*
 * test_session.c: views write sessions (engine/views.h): a command writer
 * reads its own uncommitted events, others do not, commit stores applied,
 * abort drops everything, and a map that fills up mid-session grows
 * without the caller noticing.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/common.h"
#include "engine/event.h"
#include "engine/views.h"
#include "tests/harness.h"

static char dir[PATH_MAX];

static void setup(void)
{
    reel_test_tmpdir(dir, sizeof(dir), "session");
}

static void teardown(void)
{
    reel_test_rmtree(dir);
}

TestSuite(session, .init = setup, .fini = teardown, .timeout = 180);

static reel_views_t *open_views(const char *sub)
{
    char path[PATH_MAX + 16];
    reel_views_t *v;
    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    cr_assert_eq(reel_views_open(path, &v), 0);
    return v;
}

/* User i's created event; the handle and name live in the caller's bufs,
 * which must stay as they are until the session ends (views.h). */
static reel_event_t user_event(uint64_t i, char *handle, char *name)
{
    int h = snprintf(handle, 24, "u%llu", (unsigned long long)i);
    memset(name, 'n', REEL_NAME_LEN_MAX);
    return (reel_event_t){.type = REEL_EV_USER_CREATED, .offset = i - 1, .at = 1000 + i,
                          .user = i, .handle = {handle, (uint32_t)h},
                          .display_name = {name, REEL_NAME_LEN_MAX}};
}

Test(session, own_changes_seen_others_only_after_commit)
{
    reel_views_t *v = open_views("a");
    reel_views_session_t *s;
    reel_views_txn_t *other;
    reel_user_view_t u;
    char h[24], n[REEL_NAME_LEN_MAX];
    cr_assert_eq(reel_views_session_begin(v, &s), 0);
    reel_event_t ev = user_event(1, h, n);
    cr_assert_eq(reel_views_session_apply(s, &ev), 0);
    cr_assert_eq(reel_views_get_user(reel_views_session_reader(s), 1, &u), 0, "own write seen");
    reel_event_t follow = {.type = REEL_EV_FOLLOW_CREATED, .offset = 1, .at = 2000, .user = 1,
                           .target = 1};
    cr_assert_eq(reel_views_session_apply(s, &follow), 0);
    ev.offset = 5;
    cr_assert_eq(reel_views_session_apply(s, &ev), REEL_EUSAGE, "offsets are dense");
    cr_assert_eq(reel_views_read_begin(v, &other), 0);
    cr_assert_eq(reel_views_get_user(other, 1, &u), REEL_ENOTFOUND, "not before commit");
    reel_views_read_end(other);
    cr_assert_eq(reel_views_applied(v), 0);
    cr_assert_eq(reel_views_session_commit(s), 0);
    cr_assert_eq(reel_views_applied(v), 2);
    cr_assert_eq(reel_views_read_begin(v, &other), 0);
    cr_assert_eq(reel_views_get_user(other, 1, &u), 0);
    reel_views_read_end(other);
    reel_views_close(v);
}

Test(session, abort_drops_everything)
{
    reel_views_t *v = open_views("b");
    reel_views_session_t *s;
    uint8_t before[16], after[16];
    char h[24], n[REEL_NAME_LEN_MAX];
    cr_assert_eq(reel_views_hash(v, before), 0);
    cr_assert_eq(reel_views_session_begin(v, &s), 0);
    reel_event_t ev = user_event(1, h, n);
    cr_assert_eq(reel_views_session_apply(s, &ev), 0);
    reel_views_session_abort(s);
    cr_assert_eq(reel_views_hash(v, after), 0);
    cr_assert(memcmp(before, after, 16) == 0);
    cr_assert_eq(reel_views_applied(v), 0);
    /* The apply lock was released: a plain apply works. */
    cr_assert_eq(reel_views_apply(v, &ev, 1), 0);
    reel_views_close(v);
}

Test(session, the_map_grows_mid_session_and_equals_plain_applies)
{
    enum { N = 400000 }; /* ~100 MiB of views: past the 64 MiB first map */
    reel_views_t *a = open_views("grow"), *b = open_views("plain");
    reel_views_session_t *s;
    char (*handles)[24] = malloc((size_t)N * 24);
    char name[REEL_NAME_LEN_MAX];
    reel_event_t *evs = malloc((size_t)N * sizeof(*evs));
    uint64_t map_before = reel_views_map_bytes(a);
    cr_assert_eq(reel_views_session_begin(a, &s), 0);
    for (uint64_t i = 1; i <= N; i++) {
        evs[i - 1] = user_event(i, handles[i - 1], name);
        cr_assert_eq(reel_views_session_apply(s, &evs[i - 1]), 0, "event %lu", (unsigned long)i);
    }
    reel_user_view_t u;
    cr_assert_eq(reel_views_get_user(reel_views_session_reader(s), 1, &u), 0, "after regrowth");
    cr_assert_eq(reel_views_session_commit(s), 0);
    cr_assert_gt(reel_views_map_bytes(a), map_before, "the map grew");
    for (size_t off = 0; off < N; off += 50000)
        cr_assert_eq(reel_views_apply(b, evs + off, N - off < 50000 ? N - off : 50000), 0);
    uint8_t ha[16], hb[16];
    cr_assert_eq(reel_views_hash(a, ha), 0);
    cr_assert_eq(reel_views_hash(b, hb), 0);
    cr_assert(memcmp(ha, hb, 16) == 0, "a session and plain applies give the same views");
    cr_assert_eq(reel_views_applied(a), N);
    free(evs);
    free(handles);
    reel_views_close(a);
    reel_views_close(b);
}
