/*
 * test_views.c: the LMDB views (engine/views.h).
 *
 * Method: events are built by hand (offsets and times set as a record would
 * set them) and applied; the read side and reel_views_hash() are checked
 * against what the event semantics of views.h say. The hash is the oracle
 * for "nothing changed" (duplicates, refused batches) and for determinism
 * (the same events in different batchings give the same bytes). Map growth
 * is driven past the initial size while a reader thread opens and closes
 * snapshots, which is the case the growth lock exists for.
 */
#include <criterion/criterion.h>
#include <lmdb.h>

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/common.h"
#include "engine/views.h"
#include "tests/harness.h"

TestSuite(views, .timeout = 300);

/* ---- event builders ---- */

static reel_str_t S(const char *s)
{
    return (reel_str_t){s, (uint32_t)strlen(s)};
}

static reel_event_t ev_user(uint64_t off, uint64_t id, const char *handle, const char *name)
{
    return (reel_event_t){.type = REEL_EV_USER_CREATED, .offset = off, .at = 1000 + off,
                          .user = id, .handle = S(handle), .display_name = S(name)};
}

static reel_event_t ev_ids(uint16_t type, uint64_t off, uint64_t user, uint64_t target,
                           uint64_t post)
{
    return (reel_event_t){.type = type, .offset = off, .at = 1000 + off, .user = user,
                          .target = target, .post = post};
}

static reel_event_t ev_post(uint64_t off, uint64_t post, uint64_t author, const char *vis)
{
    return (reel_event_t){.type = REEL_EV_POST_CREATED, .offset = off, .at = 1000 + off,
                          .user = author, .post = post, .visibility = S(vis)};
}

/* Applies one event at offset applied (sets it), asserting success. */
static void apply1(reel_views_t *v, reel_event_t ev)
{
    ev.offset = reel_views_applied(v);
    int rc = reel_views_apply(v, &ev, 1);
    cr_assert_eq(rc, 0, "apply type %u: %s", ev.type, reel_strerror(rc));
}

static reel_views_t *open_views(const char *dir)
{
    reel_views_t *v = NULL;
    int rc = reel_views_open(dir, &v);
    cr_assert_eq(rc, 0, "open %s: %s", dir, reel_strerror(rc));
    cr_assert_not_null(v);
    return v;
}

static int get_user(reel_views_t *v, uint64_t id, reel_user_view_t *u)
{
    reel_views_txn_t *t;
    cr_assert_eq(reel_views_read_begin(v, &t), 0);
    int rc = reel_views_get_user(t, id, u);
    reel_views_read_end(t);
    return rc;
}

static void hash_of(reel_views_t *v, uint8_t out[16])
{
    cr_assert_eq(reel_views_hash(v, out), 0);
}

/* ---- open, reopen, version ---- */

Test(views, reopen_keeps_applied_and_data)
{
    char dir[256];
    reel_test_tmpdir(dir, sizeof dir, "views");
    char sub[300];
    snprintf(sub, sizeof sub, "%s/v", dir); /* created by open */
    reel_views_t *v = open_views(sub);
    cr_assert_eq(reel_views_applied(v), 0);
    reel_event_t evs[3] = {ev_user(0, 1, "Alice", "Alice A"), ev_user(1, 2, "bob", "Bob"),
                           ev_ids(REEL_EV_FOLLOW_CREATED, 2, 2, 1, 0)};
    cr_assert_eq(reel_views_apply(v, evs, 3), 0);
    cr_assert_eq(reel_views_applied(v), 3);
    uint8_t h1[16], h2[16];
    hash_of(v, h1);
    reel_views_close(v);

    v = open_views(sub);
    cr_assert_eq(reel_views_applied(v), 3);
    hash_of(v, h2);
    cr_assert_arr_eq(h1, h2, 16);
    reel_user_view_t u;
    cr_assert_eq(get_user(v, 1, &u), 0);
    cr_assert_str_eq(u.handle, "Alice");
    cr_assert_str_eq(u.display_name, "Alice A");
    cr_assert_eq(u.created_at, 1000);
    cr_assert_eq(u.followers, 1);
    reel_views_close(v);
    reel_test_rmtree(dir);
}

Test(views, unknown_version_refused)
{
    char dir[256];
    reel_test_tmpdir(dir, sizeof dir, "views");
    reel_views_close(open_views(dir));

    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    uint8_t ver[4] = {99, 0, 0, 0};
    cr_assert_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 32);
    cr_assert_eq(mdb_env_open(env, dir, 0, 0644), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    MDB_val k = {7, "version"}, d = {4, ver};
    cr_assert_eq(mdb_put(txn, dbi, &k, &d, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    reel_views_t *v = (reel_views_t *)1;
    cr_assert_eq(reel_views_open(dir, &v), REEL_EVERSION);
    cr_assert_null(v);
    reel_test_rmtree(dir);
}

/* ---- profiles and counts ---- */

Test(views, profiles_and_counts)
{
    char dir[256];
    reel_test_tmpdir(dir, sizeof dir, "views");
    reel_views_t *v = open_views(dir);
    apply1(v, ev_user(0, 1, "Alice", "Alice A"));
    apply1(v, ev_user(0, 2, "bob", "Bob"));
    apply1(v, ev_user(0, 3, "carol", "Carol"));
    apply1(v, ev_ids(REEL_EV_FOLLOW_CREATED, 0, 2, 1, 0));
    apply1(v, ev_ids(REEL_EV_FOLLOW_CREATED, 0, 3, 1, 0));
    apply1(v, ev_ids(REEL_EV_FOLLOW_CREATED, 0, 1, 2, 0));
    apply1(v, ev_post(0, 100, 1, "public"));
    apply1(v, ev_post(0, 101, 1, "draft"));
    apply1(v, ev_post(0, 102, 2, "public"));
    apply1(v, ev_ids(REEL_EV_LIKE_CREATED, 0, 2, 0, 100));
    apply1(v, ev_ids(REEL_EV_LIKE_CREATED, 0, 3, 0, 100));
    apply1(v, ev_ids(REEL_EV_LIKE_CREATED, 0, 1, 0, 102));
    apply1(v, ev_ids(REEL_EV_INVITE_ISSUED, 0, 1, 0, 0)); /* no code: no-op, counted */
    cr_assert_eq(reel_views_applied(v), 13);

    reel_user_view_t u;
    cr_assert_eq(get_user(v, 1, &u), 0);
    cr_assert_eq(u.followers, 2);
    cr_assert_eq(u.following, 1);
    cr_assert_eq(u.posts, 1, "drafts are not counted");
    cr_assert_eq(u.likes_received, 2);
    cr_assert_eq(get_user(v, 2, &u), 0);
    cr_assert_eq(u.followers, 1);
    cr_assert_eq(u.following, 1);
    cr_assert_eq(u.posts, 1);
    cr_assert_eq(u.likes_received, 1);
    cr_assert_eq(get_user(v, 4, &u), REEL_ENOTFOUND);

    /* Handles fold case; update replaces the name; unlike and delete. */
    apply1(v, (reel_event_t){.type = REEL_EV_USER_UPDATED, .user = 1, .display_name = S("Al")});
    apply1(v, ev_ids(REEL_EV_LIKE_REMOVED, 0, 3, 0, 100));
    apply1(v, ev_ids(REEL_EV_LIKE_REMOVED, 0, 3, 0, 100)); /* absent: no-op */
    apply1(v, (reel_event_t){.type = REEL_EV_POST_DELETED, .post = 100});
    reel_views_txn_t *t;
    cr_assert_eq(reel_views_read_begin(v, &t), 0);
    cr_assert_eq(reel_views_user_by_handle(t, "ALICE", 5, &u), 0);
    cr_assert_eq(u.id, 1);
    cr_assert_str_eq(u.display_name, "Al");
    cr_assert_eq(u.likes_received, 1);
    cr_assert_eq(u.posts, 0);
    cr_assert_eq(reel_views_user_by_handle(t, "nobody", 6, &u), REEL_ENOTFOUND);
    cr_assert_eq(reel_views_user_by_handle(t, "x", 0, &u), REEL_EUSAGE);
    reel_views_read_end(t);

    apply1(v, (reel_event_t){.type = REEL_EV_USER_DELETED, .user = 3});
    cr_assert_eq(get_user(v, 3, &u), REEL_ENOTFOUND);
    cr_assert_eq(reel_views_read_begin(v, &t), 0);
    cr_assert_eq(reel_views_user_by_handle(t, "carol", 5, &u), REEL_ENOTFOUND);
    reel_views_read_end(t);
    reel_views_close(v);
    reel_test_rmtree(dir);
}

/* ---- follows ---- */

Test(views, follow_twice_changes_nothing_and_unfollow_decrements)
{
    char dir[256];
    reel_test_tmpdir(dir, sizeof dir, "views");
    reel_views_t *v = open_views(dir);
    apply1(v, ev_user(0, 1, "a", "A"));
    apply1(v, ev_user(0, 2, "b", "B"));
    apply1(v, ev_ids(REEL_EV_FOLLOW_CREATED, 0, 2, 1, 0));
    uint8_t h1[16], h2[16];
    hash_of(v, h1);
    apply1(v, ev_ids(REEL_EV_FOLLOW_CREATED, 0, 2, 1, 0));
    hash_of(v, h2);
    cr_assert_arr_eq(h1, h2, 16, "a duplicate follow changed the views");
    cr_assert_eq(reel_views_applied(v), 4);

    reel_user_view_t u;
    cr_assert_eq(get_user(v, 1, &u), 0);
    cr_assert_eq(u.followers, 1);
    apply1(v, ev_ids(REEL_EV_FOLLOW_REMOVED, 0, 2, 1, 0));
    cr_assert_eq(get_user(v, 1, &u), 0);
    cr_assert_eq(u.followers, 0);
    cr_assert_eq(get_user(v, 2, &u), 0);
    cr_assert_eq(u.following, 0);
    apply1(v, ev_ids(REEL_EV_FOLLOW_REMOVED, 0, 2, 1, 0)); /* absent: no-op */
    cr_assert_eq(get_user(v, 1, &u), 0);
    cr_assert_eq(u.followers, 0);

    reel_views_txn_t *t;
    reel_follow_entry_t page[4];
    size_t n = 99;
    cr_assert_eq(reel_views_read_begin(v, &t), 0);
    cr_assert_eq(reel_views_followers(t, 1, 0, 0, 4, page, &n), 0);
    cr_assert_eq(n, 0);
    reel_views_read_end(t);
    reel_views_close(v);
    reel_test_rmtree(dir);
}

Test(views, followers_pagination_newest_first)
{
    char dir[256];
    reel_test_tmpdir(dir, sizeof dir, "views");
    reel_views_t *v = open_views(dir);
    enum { N = 25 };
    reel_event_t evs[N + 2];
    evs[0] = ev_user(0, 1, "star", "Star");
    for (uint64_t i = 0; i < N; i++) {
        evs[1 + i] = ev_ids(REEL_EV_FOLLOW_CREATED, 1 + i, 100 + i, 1, 0);
        evs[1 + i].at = 5000 + i / 2; /* pairs share a time: ties by id */
    }
    evs[N + 1] = ev_ids(REEL_EV_FOLLOW_CREATED, N + 1, 7, 2, 0); /* another target */
    cr_assert_eq(reel_views_apply(v, evs, N + 2), 0);

    reel_views_txn_t *t;
    reel_follow_entry_t page[10], all[N];
    size_t total = 0, n;
    uint64_t cs = 0, ci = 0;
    cr_assert_eq(reel_views_read_begin(v, &t), 0);
    do {
        cr_assert_eq(reel_views_followers(t, 1, cs, ci, 10, page, &n), 0);
        cr_assert_leq(total + n, N);
        memcpy(all + total, page, n * sizeof page[0]);
        total += n;
        if (n > 0) {
            cs = page[n - 1].since;
            ci = page[n - 1].user;
        }
    } while (n == 10);
    cr_assert_eq(reel_views_followers(t, 1, 0, 0, 0, page, &n), REEL_EUSAGE);
    cr_assert_eq(reel_views_followers(t, 1, 0, 0, REEL_VIEWS_PAGE_MAX + 1, page, &n), REEL_EUSAGE);
    reel_views_read_end(t);
    cr_assert_eq(total, N);
    cr_assert_eq(all[0].user, 100 + N - 1, "the newest follower comes first");
    cr_assert_eq(all[N - 1].user, 101, "the oldest (tie 100, 101 at 5000) comes last");
    for (size_t i = 0; i < N; i++) {
        /* Expected order: time descending, then follower id ascending. */
        if (i > 0)
            cr_assert_leq(all[i].since, all[i - 1].since, "entry %zu", i);
        if (i > 0 && all[i].since == all[i - 1].since)
            cr_assert_gt(all[i].user, all[i - 1].user, "entry %zu", i);
        cr_assert_eq(all[i].since, 5000 + (all[i].user - 100) / 2);
    }
    reel_views_close(v);
    reel_test_rmtree(dir);
}

/* ---- offsets: gaps and exactly once ---- */

Test(views, gap_refused_and_nothing_changes)
{
    char dir[256];
    reel_test_tmpdir(dir, sizeof dir, "views");
    reel_views_t *v = open_views(dir);
    reel_event_t evs[3] = {ev_user(0, 1, "a", "A"), ev_user(1, 2, "b", "B"),
                           ev_ids(REEL_EV_FOLLOW_CREATED, 2, 1, 2, 0)};
    cr_assert_eq(reel_views_apply(v, evs, 3), 0);
    uint8_t h1[16], h2[16];
    hash_of(v, h1);

    reel_event_t gap = ev_ids(REEL_EV_FOLLOW_CREATED, 4, 2, 1, 0);
    cr_assert_eq(reel_views_apply(v, &gap, 1), REEL_EUSAGE);
    reel_event_t holes[2] = {ev_ids(REEL_EV_FOLLOW_CREATED, 3, 2, 1, 0),
                             ev_ids(REEL_EV_FOLLOW_REMOVED, 5, 1, 2, 0)};
    cr_assert_eq(reel_views_apply(v, holes, 2), REEL_EUSAGE);
    cr_assert_eq(reel_views_apply(v, NULL, 1), REEL_EUSAGE);
    cr_assert_eq(reel_views_apply(v, NULL, 0), 0);
    hash_of(v, h2);
    cr_assert_arr_eq(h1, h2, 16);
    cr_assert_eq(reel_views_applied(v), 3);
    reel_views_close(v);
    reel_test_rmtree(dir);
}

Test(views, reapplied_events_are_skipped)
{
    char dir[256], dir2[256];
    reel_test_tmpdir(dir, sizeof dir, "views");
    reel_test_tmpdir(dir2, sizeof dir2, "views2");
    reel_views_t *v = open_views(dir), *w = open_views(dir2);
    reel_event_t evs[6] = {
        ev_user(0, 1, "a", "A"), ev_user(1, 2, "b", "B"),
        ev_ids(REEL_EV_FOLLOW_CREATED, 2, 1, 2, 0), ev_ids(REEL_EV_FOLLOW_REMOVED, 3, 1, 2, 0),
        ev_ids(REEL_EV_FOLLOW_CREATED, 4, 1, 2, 0), ev_post(5, 50, 2, "public"),
    };
    cr_assert_eq(reel_views_apply(v, evs, 4), 0);
    cr_assert_eq(reel_views_apply(v, evs, 4), 0); /* all old: no-op */
    cr_assert_eq(reel_views_apply(v, evs + 2, 4), 0); /* 2,3 skipped; 4,5 new */
    cr_assert_eq(reel_views_applied(v), 6);
    cr_assert_eq(reel_views_apply(w, evs, 6), 0);
    uint8_t h1[16], h2[16];
    hash_of(v, h1);
    hash_of(w, h2);
    cr_assert_arr_eq(h1, h2, 16);
    reel_user_view_t u;
    cr_assert_eq(get_user(v, 2, &u), 0);
    cr_assert_eq(u.followers, 1);
    cr_assert_eq(u.posts, 1);
    reel_views_close(v);
    reel_views_close(w);
    reel_test_rmtree(dir);
    reel_test_rmtree(dir2);
}

/* ---- map growth under concurrent readers ---- */

enum { GROW_USERS = 1000000, GROW_BATCH = 1000 };

typedef struct reader_arg {
    reel_views_t *v;
    int done;       /* atomic: the writer finished */
    uint64_t reads; /* snapshots taken */
    int failures;   /* users that were applied but not visible */
} reader_arg_t;

static void *reader_main(void *p)
{
    reader_arg_t *a = p;
    uint64_t seed = 42;
    while (!__atomic_load_n(&a->done, __ATOMIC_ACQUIRE)) {
        uint64_t applied = reel_views_applied(a->v);
        reel_views_txn_t *t;
        if (reel_views_read_begin(a->v, &t) != 0) {
            a->failures++;
            continue;
        }
        if (applied > 0) {
            reel_user_view_t u;
            uint64_t id = 1 + reel_test_rand(&seed) % applied; /* offset id-1 */
            if (reel_views_get_user(t, id, &u) != 0 || u.id != id)
                a->failures++;
        }
        reel_views_read_end(t);
        a->reads++;
    }
    return NULL;
}

Test(views, map_grows_under_readers)
{
    char dir[256];
    reel_test_tmpdir(dir, sizeof dir, "views");
    reel_views_t *v = open_views(dir);
    cr_assert_eq(reel_views_map_bytes(v), REEL_VIEWS_MAP_BYTES_INITIAL);
    reader_arg_t arg = {.v = v};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, reader_main, &arg), 0);

    static char handles[GROW_BATCH][32], names[GROW_BATCH][REEL_NAME_LEN_MAX + 1];
    static reel_event_t evs[GROW_BATCH];
    for (uint64_t base = 0; base < GROW_USERS; base += GROW_BATCH) {
        for (uint64_t i = 0; i < GROW_BATCH; i++) {
            uint64_t id = base + i + 1;
            snprintf(handles[i], sizeof handles[i], "user_%llu", (unsigned long long)id);
            memset(names[i], 'n', REEL_NAME_LEN_MAX);
            names[i][REEL_NAME_LEN_MAX] = '\0';
            snprintf(names[i], 24, "Name %llu ", (unsigned long long)id);
            names[i][strlen(names[i])] = 'n';
            evs[i] = ev_user(base + i, id, handles[i], names[i]);
        }
        int rc = reel_views_apply(v, evs, GROW_BATCH);
        cr_assert_eq(rc, 0, "batch at %llu: %s", (unsigned long long)base, reel_strerror(rc));
    }
    __atomic_store_n(&arg.done, 1, __ATOMIC_RELEASE);
    cr_assert_eq(pthread_join(th, NULL), 0);
    cr_assert_eq(arg.failures, 0);
    cr_assert_gt(arg.reads, 0);
    cr_log_info("map %llu MiB after %d users, %llu reader snapshots",
                (unsigned long long)(reel_views_map_bytes(v) >> 20), GROW_USERS,
                (unsigned long long)arg.reads);
    cr_assert_geq(reel_views_map_bytes(v), 4 * REEL_VIEWS_MAP_BYTES_INITIAL,
                  "map grew past the initial size several times");
    cr_assert_eq(reel_views_applied(v), GROW_USERS);

    reel_views_txn_t *t;
    reel_user_view_t u;
    char want[32];
    cr_assert_eq(reel_views_read_begin(v, &t), 0);
    for (uint64_t id = 1; id <= GROW_USERS; id++) {
        cr_assert_eq(reel_views_get_user(t, id, &u), 0, "user %llu", (unsigned long long)id);
        snprintf(want, sizeof want, "user_%llu", (unsigned long long)id);
        cr_assert_str_eq(u.handle, want);
        cr_assert_eq(u.display_name_len, REEL_NAME_LEN_MAX);
    }
    cr_assert_eq(reel_views_user_by_handle(t, "USER_123456", 11, &u), 0);
    cr_assert_eq(u.id, 123456);
    reel_views_read_end(t);
    reel_views_close(v);
    reel_test_rmtree(dir);
}

/* ---- hash: batching does not matter, content does ---- */

/* Fills the strings of a random event of type (from static storage). */
static void random_strings(reel_event_t *ev, uint64_t r)
{
    static const char *const policies[] = {"only_me", "approved", "mutuals", "everyone", "bad"};
    static const char *const kinds[] = {"see_less", "see_more", "not_interested", "hide_creator"};
    static const char *const codes[] = {"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7"};
    static const char *const reasons[] = {"consent_revoked", "cameo_deleted", ""};
    ev->policy = S(policies[r % REEL_ARRAY_LEN(policies)]);
    ev->kind = S(kinds[r % REEL_ARRAY_LEN(kinds)]);
    ev->code = S(codes[r % REEL_ARRAY_LEN(codes)]);
    ev->reason = S(reasons[r % REEL_ARRAY_LEN(reasons)]);
    ev->asset = S(r % 2 ? "s3://a" : "s3://b");
    ev->text = S(r % 2 ? "hi" : "a longer comment");
}

/* A deterministic mixed history over 50 users, their posts (some of them
 * remixes), comments, blocks, cameos, consents, invites and signals. */
static size_t random_history(reel_event_t *evs, size_t cap, uint64_t seed)
{
    static char handles[50][16];
    static const uint16_t types[] = {
        REEL_EV_FOLLOW_CREATED,   REEL_EV_FOLLOW_REMOVED,    REEL_EV_LIKE_CREATED,
        REEL_EV_LIKE_REMOVED,     REEL_EV_POST_DELETED,      REEL_EV_VIEW_RECORDED,
        REEL_EV_POST_PUBLISHED,   REEL_EV_POST_HIDDEN,       REEL_EV_BLOCK_CREATED,
        REEL_EV_BLOCK_REMOVED,    REEL_EV_CAMEO_REGISTERED,  REEL_EV_CAMEO_DELETED,
        REEL_EV_CAMEO_POLICY_SET, REEL_EV_CONSENT_GRANTED,   REEL_EV_CONSENT_REVOKED,
        REEL_EV_COMMENT_CREATED,  REEL_EV_COMMENT_DELETED,   REEL_EV_INVITE_ISSUED,
        REEL_EV_FEEDBACK_RECORDED, REEL_EV_USER_DELETED,     REEL_EV_FOLLOW_CREATED,
    };
    size_t n = 0;
    for (uint64_t u = 1; u <= 50; u++) {
        snprintf(handles[u - 1], sizeof handles[0], "h%llu", (unsigned long long)u);
        evs[n] = ev_user(n, u, handles[u - 1], "someone");
        n++;
    }
    while (n < cap) {
        uint64_t r = reel_test_rand(&seed);
        uint64_t a = 1 + r % 50, b = 1 + (r >> 8) % 50, post = 1000 + (r >> 16) % 80;
        uint16_t type = types[(r >> 24) % REEL_ARRAY_LEN(types)];
        if ((r >> 32) % 5 == 0) {
            evs[n] = ev_post(n, post, a, (r >> 40) % 3 ? "public" : "draft");
            evs[n].remix_of = (r >> 44) % 2 ? 1000 + (r >> 48) % 80 : 0;
        } else {
            evs[n] = ev_ids(type, n, a, b, post);
            evs[n].comment = 5000 + (r >> 40) % 200;
            evs[n].watch_ms = (r >> 36) % 10000;
            random_strings(&evs[n], r >> 52);
            if ((type == REEL_EV_USER_DELETED || type == REEL_EV_POST_DELETED) &&
                (r >> 56) % 8 != 0)
                evs[n].type = REEL_EV_LIKE_CREATED; /* keep most users, posts alive */
        }
        n++;
    }
    return n;
}

Test(views, hash_independent_of_batching)
{
    enum { N = 5000 };
    static reel_event_t evs[N + 1];
    size_t n = random_history(evs, N, 7);
    char d1[256], d2[256];
    reel_test_tmpdir(d1, sizeof d1, "views");
    reel_test_tmpdir(d2, sizeof d2, "views2");
    reel_views_t *a = open_views(d1), *b = open_views(d2);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(reel_views_apply(a, &evs[i], 1), 0);
    uint64_t seed = 3;
    for (size_t i = 0; i < n;) {
        size_t k = 1 + reel_test_rand(&seed) % 300;
        k = k > n - i ? n - i : k;
        cr_assert_eq(reel_views_apply(b, evs + i, k), 0);
        i += k;
    }
    uint8_t ha[16], hb[16];
    hash_of(a, ha);
    hash_of(b, hb);
    cr_assert_arr_eq(ha, hb, 16);

    /* The history reaches the new views (else the equality proves little). */
    reel_views_txn_t *t;
    reel_post_view_t p;
    uint64_t comments = 0, remixes = 0, views = 0, hidden = 0;
    cr_assert_eq(reel_views_read_begin(b, &t), 0);
    for (uint64_t id = 1000; id < 1080; id++) {
        int rc = reel_views_get_post(t, id, &p);
        cr_assert(rc == 0 || rc == REEL_ENOTFOUND, "%s", reel_strerror(rc));
        if (rc == 0) {
            comments += p.comments;
            remixes += p.remixes;
            views += p.views;
            hidden += p.hidden;
        }
    }
    reel_views_read_end(t);
    cr_assert_gt(comments, 0);
    cr_assert_gt(remixes, 0);
    cr_assert_gt(views, 0);
    cr_assert_gt(hidden, 0);

    apply1(b, ev_ids(REEL_EV_FOLLOW_CREATED, 0, 1, 1000, 0)); /* a new pair */
    hash_of(b, hb);
    cr_assert_arr_neq(ha, hb, 16);
    reel_views_close(a);
    reel_views_close(b);
    reel_test_rmtree(d1);
    reel_test_rmtree(d2);
}

/* ---- v2 views: builders and helpers ---- */

static reel_event_t ev_remix(uint64_t off, uint64_t post, uint64_t author, uint64_t parent,
                             const char *vis)
{
    reel_event_t ev = ev_post(off, post, author, vis);
    ev.remix_of = parent;
    ev.remix_root = parent;
    ev.at = 1000 + post; /* later ids are newer */
    return ev;
}

static reel_event_t ev_str(uint16_t type, uint64_t user, uint64_t post, reel_str_t s)
{
    reel_event_t ev = {.type = type, .user = user, .post = post};
    switch (type) {
    case REEL_EV_POST_HIDDEN: ev.reason = s; break;
    case REEL_EV_CAMEO_REGISTERED: ev.asset = s; break;
    case REEL_EV_CAMEO_POLICY_SET: ev.policy = s; break;
    case REEL_EV_INVITE_ISSUED: ev.code = s; break;
    case REEL_EV_FEEDBACK_RECORDED: ev.kind = s; break;
    default: cr_assert_fail("type %u takes no string here", type);
    }
    return ev;
}

static reel_event_t ev_comment(uint64_t comment, uint64_t post, uint64_t author,
                               uint64_t reply_to, const char *text)
{
    return (reel_event_t){.type = REEL_EV_COMMENT_CREATED, .comment = comment, .post = post,
                          .user = author, .reply_to = reply_to, .text = S(text)};
}

/* Applies ev and asserts the views' hash did not change (a no-op). */
static void apply_noop(reel_views_t *v, reel_event_t ev)
{
    uint8_t h1[16], h2[16];
    hash_of(v, h1);
    apply1(v, ev);
    hash_of(v, h2);
    cr_assert_arr_eq(h1, h2, 16, "event type %u changed the views", ev.type);
}

static int get_post(reel_views_t *v, uint64_t id, reel_post_view_t *p)
{
    reel_views_txn_t *t;
    cr_assert_eq(reel_views_read_begin(v, &t), 0);
    int rc = reel_views_get_post(t, id, p);
    reel_views_read_end(t);
    return rc;
}

static uint64_t user_count(reel_views_t *v, uint64_t id, size_t offset)
{
    reel_user_view_t u;
    cr_assert_eq(get_user(v, id, &u), 0, "user %llu", (unsigned long long)id);
    uint64_t c;
    memcpy(&c, (const char *)&u + offset, sizeof c);
    return c;
}
#define COUNT(v, id, field) user_count((v), (id), offsetof(reel_user_view_t, field))

static bool pair_read(reel_views_t *v, int (*fn)(reel_views_txn_t *, uint64_t, uint64_t, bool *),
                      uint64_t a, uint64_t b)
{
    reel_views_txn_t *t;
    bool out = true;
    cr_assert_eq(reel_views_read_begin(v, &t), 0);
    cr_assert_eq(fn(t, a, b, &out), 0);
    reel_views_read_end(t);
    return out;
}

/* ---- friends ---- */

Test(views, friends_count_mutual_follows_both_ways)
{
    char dir[256];
    reel_test_tmpdir(dir, sizeof dir, "views");
    reel_views_t *v = open_views(dir);
    apply1(v, ev_user(0, 1, "a", "A"));
    apply1(v, ev_user(0, 2, "b", "B"));
    apply1(v, ev_user(0, 3, "c", "C"));
    apply1(v, ev_ids(REEL_EV_FOLLOW_CREATED, 0, 1, 2, 0));
    cr_assert_eq(COUNT(v, 1, friends), 0);
    cr_assert(pair_read(v, reel_views_follows, 1, 2));
    cr_assert_not(pair_read(v, reel_views_follows, 2, 1));
    apply1(v, ev_ids(REEL_EV_FOLLOW_CREATED, 0, 2, 1, 0));
    cr_assert_eq(COUNT(v, 1, friends), 1);
    cr_assert_eq(COUNT(v, 2, friends), 1);
    apply_noop(v, ev_ids(REEL_EV_FOLLOW_CREATED, 0, 2, 1, 0)); /* follow twice */
    apply_noop(v, ev_ids(REEL_EV_FOLLOW_CREATED, 0, 1, 2, 0));
    apply1(v, ev_ids(REEL_EV_FOLLOW_CREATED, 0, 3, 1, 0));
    apply1(v, ev_ids(REEL_EV_FOLLOW_CREATED, 0, 1, 3, 0));
    apply1(v, ev_ids(REEL_EV_FOLLOW_CREATED, 0, 3, 3, 0)); /* self: no friendship */
    cr_assert_eq(COUNT(v, 1, friends), 2);
    cr_assert_eq(COUNT(v, 3, friends), 1);

    /* Either side ending the follow ends the friendship for both. */
    apply1(v, ev_ids(REEL_EV_FOLLOW_REMOVED, 0, 1, 2, 0));
    cr_assert_eq(COUNT(v, 1, friends), 1);
    cr_assert_eq(COUNT(v, 2, friends), 0);
    cr_assert_eq(COUNT(v, 2, following), 1);
    apply_noop(v, ev_ids(REEL_EV_FOLLOW_REMOVED, 0, 1, 2, 0));
    apply1(v, ev_ids(REEL_EV_FOLLOW_REMOVED, 0, 2, 1, 0)); /* not mutual any more */
    cr_assert_eq(COUNT(v, 1, friends), 1);
    apply1(v, ev_ids(REEL_EV_FOLLOW_REMOVED, 0, 3, 1, 0));
    cr_assert_eq(COUNT(v, 1, friends), 0);
    cr_assert_eq(COUNT(v, 3, friends), 0);
    cr_assert_not(pair_read(v, reel_views_follows, 3, 1));
    reel_views_close(v);
    reel_test_rmtree(dir);
}

/* ---- posts: drafts, publish, hidden, deleted ---- */

Test(views, post_counting_rules)
{
    char dir[256];
    reel_test_tmpdir(dir, sizeof dir, "views");
    reel_views_t *v = open_views(dir);
    reel_post_view_t p;
    apply1(v, ev_user(0, 1, "a", "A"));
    apply1(v, ev_post(0, 10, 1, "draft"));
    cr_assert_eq(COUNT(v, 1, posts), 0);
    cr_assert_eq(get_post(v, 10, &p), 0);
    cr_assert_not(p.public);
    apply1(v, (reel_event_t){.type = REEL_EV_POST_PUBLISHED, .post = 10});
    cr_assert_eq(COUNT(v, 1, posts), 1, "publishing a draft counts it");
    apply_noop(v, (reel_event_t){.type = REEL_EV_POST_PUBLISHED, .post = 10});
    apply_noop(v, (reel_event_t){.type = REEL_EV_POST_PUBLISHED, .post = 99}); /* unknown */
    cr_assert_eq(COUNT(v, 1, posts), 1);

    apply1(v, ev_str(REEL_EV_POST_HIDDEN, 0, 10, S("consent_revoked")));
    cr_assert_eq(COUNT(v, 1, posts), 0, "a hidden post is not counted");
    apply_noop(v, ev_str(REEL_EV_POST_HIDDEN, 0, 10, S("cameo_deleted")));
    cr_assert_eq(get_post(v, 10, &p), 0);
    cr_assert(p.public);
    cr_assert(p.hidden);
    cr_assert_str_eq(p.hidden_reason, "consent_revoked", "the first reason stays");
    cr_assert_eq(p.hidden_reason_len, 15);
    apply1(v, (reel_event_t){.type = REEL_EV_POST_DELETED, .post = 10});
    cr_assert_eq(COUNT(v, 1, posts), 0, "deleting a hidden post decrements nothing");
    cr_assert_eq(get_post(v, 10, &p), REEL_ENOTFOUND);
    apply_noop(v, (reel_event_t){.type = REEL_EV_POST_PUBLISHED, .post = 10});

    /* A hidden draft stays uncounted when published. */
    apply1(v, ev_post(0, 11, 1, "draft"));
    apply1(v, ev_str(REEL_EV_POST_HIDDEN, 0, 11, S("x")));
    apply1(v, (reel_event_t){.type = REEL_EV_POST_PUBLISHED, .post = 11});
    cr_assert_eq(COUNT(v, 1, posts), 0);
    cr_assert_eq(get_post(v, 11, &p), 0);
    cr_assert(p.public && p.hidden);

    /* Public, then deleted: -1 once; a draft deleted: nothing. */
    apply1(v, ev_post(0, 12, 1, "public"));
    apply1(v, ev_post(0, 13, 1, "public"));
    apply1(v, ev_post(0, 14, 1, "draft"));
    apply_noop(v, ev_post(0, 12, 1, "draft")); /* existing id */
    cr_assert_eq(COUNT(v, 1, posts), 2);
    apply1(v, (reel_event_t){.type = REEL_EV_POST_DELETED, .post = 12});
    apply_noop(v, (reel_event_t){.type = REEL_EV_POST_DELETED, .post = 12});
    apply1(v, (reel_event_t){.type = REEL_EV_POST_DELETED, .post = 14});
    cr_assert_eq(COUNT(v, 1, posts), 1);
    apply_noop(v, ev_str(REEL_EV_POST_HIDDEN, 0, 12, S("late")));
    cr_assert_eq(get_post(v, 13, &p), 0);
    cr_assert_not(p.hidden);
    cr_assert_str_eq(p.hidden_reason, "");
    reel_views_close(v);
    reel_test_rmtree(dir);
}

Test(views, likes_views_feedback_on_posts)
{
    char dir[256];
    reel_test_tmpdir(dir, sizeof dir, "views");
    reel_views_t *v = open_views(dir);
    reel_post_view_t p;
    apply1(v, ev_user(0, 1, "a", "A"));
    apply1(v, ev_user(0, 2, "b", "B"));
    apply1(v, ev_post(0, 10, 1, "public"));
    apply1(v, ev_ids(REEL_EV_LIKE_CREATED, 0, 2, 0, 10));
    apply_noop(v, ev_ids(REEL_EV_LIKE_CREATED, 0, 2, 0, 10)); /* like twice */
    reel_event_t view = ev_ids(REEL_EV_VIEW_RECORDED, 0, 2, 0, 10);
    view.watch_ms = 1500;
    apply1(v, view);
    view.watch_ms = 500;
    apply1(v, view);
    view.post = 77; /* unknown post */
    apply_noop(v, view);
    cr_assert_eq(get_post(v, 10, &p), 0);
    cr_assert_eq(p.likes, 1);
    cr_assert_eq(p.views, 2);
    cr_assert_eq(p.watch_ms, 2000);
    cr_assert_eq(p.author, 1);
    cr_assert_eq(COUNT(v, 1, likes_received), 1);

    apply1(v, ev_str(REEL_EV_FEEDBACK_RECORDED, 2, 10, S("see_less")));
    apply_noop(v, ev_str(REEL_EV_FEEDBACK_RECORDED, 2, 10, S("see_less")));
    apply1(v, ev_str(REEL_EV_FEEDBACK_RECORDED, 2, 10, S("hide_creator")));
    apply_noop(v, ev_str(REEL_EV_FEEDBACK_RECORDED, 2, 10, S("bogus")));
    reel_views_txn_t *t;
    uint8_t kinds = 0xff;
    cr_assert_eq(reel_views_read_begin(v, &t), 0);
    cr_assert_eq(reel_views_get_feedback(t, 2, 10, &kinds), 0);
    cr_assert_eq(kinds, REEL_FEEDBACK_SEE_LESS | REEL_FEEDBACK_HIDE_CREATOR);
    cr_assert_eq(reel_views_get_feedback(t, 1, 10, &kinds), 0);
    cr_assert_eq(kinds, 0);
    reel_views_read_end(t);
    reel_views_close(v);
    reel_test_rmtree(dir);
}

/* ---- listings: posts by author, remixes ---- */

/* All entries of a post listing, in pages of 3. */
static size_t list_all(reel_views_t *v, bool remixes, uint64_t id, unsigned flags,
                       reel_post_entry_t *all, size_t cap)
{
    reel_views_txn_t *t;
    reel_post_entry_t page[3];
    size_t total = 0, n;
    uint64_t ca = 0, ci = 0;
    cr_assert_eq(reel_views_read_begin(v, &t), 0);
    do {
        int rc = remixes ? reel_views_remixes(t, id, ca, ci, flags, 3, page, &n)
                         : reel_views_posts_by_author(t, id, ca, ci, flags, 3, page, &n);
        cr_assert_eq(rc, 0, "%s", reel_strerror(rc));
        cr_assert_leq(total + n, cap);
        memcpy(all + total, page, n * sizeof page[0]);
        total += n;
        if (n > 0) {
            ca = page[n - 1].created_at;
            ci = page[n - 1].post;
        }
    } while (n == 3);
    reel_views_read_end(t);
    return total;
}

Test(views, posts_by_author_newest_first_with_filters)
{
    char dir[256];
    reel_test_tmpdir(dir, sizeof dir, "views");
    reel_views_t *v = open_views(dir);
    enum { N = 10 };
    reel_event_t evs[N + 2];
    evs[0] = ev_user(0, 1, "a", "A");
    for (uint64_t i = 0; i < N; i++) {
        evs[1 + i] = ev_post(1 + i, 100 + i, 1, i % 3 == 0 ? "draft" : "public");
        evs[1 + i].at = 5000 + i / 2; /* pairs share a time: ties by id */
    }
    evs[N + 1] = ev_post(N + 1, 500, 2, "public"); /* another author */
    cr_assert_eq(reel_views_apply(v, evs, N + 2), 0);
    apply1(v, ev_str(REEL_EV_POST_HIDDEN, 0, 101, S("r")));
    apply1(v, (reel_event_t){.type = REEL_EV_POST_DELETED, .post = 102});

    reel_post_entry_t all[N];
    size_t n = list_all(v, false, 1, REEL_VIEWS_LIST_DRAFTS | REEL_VIEWS_LIST_HIDDEN, all, N);
    cr_assert_eq(n, N - 1, "every post but the deleted one");
    for (size_t i = 1; i < n; i++) {
        cr_assert_leq(all[i].created_at, all[i - 1].created_at, "entry %zu", i);
        if (all[i].created_at == all[i - 1].created_at)
            cr_assert_gt(all[i].post, all[i - 1].post, "entry %zu", i);
    }
    cr_assert_eq(all[0].post, 108, "newest first, lower id first on a tie");
    cr_assert_eq(all[n - 1].post, 101);
    cr_assert(all[n - 1].hidden);
    n = list_all(v, false, 1, 0, all, N);
    cr_assert_eq(n, 4, "public, visible: 108 107 105 104 (not 101 hidden, 102 deleted)");
    for (size_t i = 0; i < n; i++)
        cr_assert(all[i].public && !all[i].hidden);
    cr_assert_eq(COUNT(v, 1, posts), n);
    n = list_all(v, false, 3, 0, all, N);
    cr_assert_eq(n, 0);

    reel_views_txn_t *t;
    cr_assert_eq(reel_views_read_begin(v, &t), 0);
    cr_assert_eq(reel_views_posts_by_author(t, 1, 0, 0, 4, 3, all, &n), REEL_EUSAGE);
    cr_assert_eq(reel_views_posts_by_author(t, 1, 0, 0, 0, 0, all, &n), REEL_EUSAGE);
    reel_views_read_end(t);
    reel_views_close(v);
    reel_test_rmtree(dir);
}

Test(views, remixes_counted_listed_and_unlinked)
{
    char dir[256];
    reel_test_tmpdir(dir, sizeof dir, "views");
    reel_views_t *v = open_views(dir);
    reel_post_view_t p;
    reel_post_entry_t all[8];
    apply1(v, ev_post(0, 10, 1, "public"));
    apply1(v, ev_remix(0, 11, 2, 10, "public"));
    apply1(v, ev_remix(0, 12, 3, 10, "draft"));
    apply1(v, ev_remix(0, 13, 3, 11, "public")); /* a remix of a remix */
    apply1(v, ev_remix(0, 14, 3, 999, "public")); /* unknown parent */
    apply_noop(v, ev_remix(0, 11, 2, 10, "public"));
    cr_assert_eq(get_post(v, 10, &p), 0);
    cr_assert_eq(p.remixes, 2, "direct remixes only");
    cr_assert_eq(get_post(v, 13, &p), 0);
    cr_assert_eq(p.remix_of, 11);
    cr_assert_eq(p.remix_root, 11);
    cr_assert_eq(list_all(v, true, 10, REEL_VIEWS_LIST_DRAFTS, all, 8), 2);
    cr_assert_eq(all[0].post, 12);
    cr_assert_eq(all[1].post, 11);
    cr_assert_eq(list_all(v, true, 10, 0, all, 8), 1);
    cr_assert_eq(list_all(v, true, 999, REEL_VIEWS_LIST_DRAFTS, all, 8), 0);

    apply1(v, (reel_event_t){.type = REEL_EV_POST_DELETED, .post = 11});
    cr_assert_eq(get_post(v, 10, &p), 0);
    cr_assert_eq(p.remixes, 1);
    cr_assert_eq(list_all(v, true, 10, REEL_VIEWS_LIST_DRAFTS, all, 8), 1);
    apply1(v, (reel_event_t){.type = REEL_EV_POST_DELETED, .post = 14});
    apply1(v, (reel_event_t){.type = REEL_EV_POST_DELETED, .post = 12});
    cr_assert_eq(get_post(v, 10, &p), 0);
    cr_assert_eq(p.remixes, 0);
    reel_views_close(v);
    reel_test_rmtree(dir);
}

/* ---- blocks ---- */

Test(views, blocks_either_direction_and_idempotent)
{
    char dir[256];
    reel_test_tmpdir(dir, sizeof dir, "views");
    reel_views_t *v = open_views(dir);
    apply1(v, ev_user(0, 1, "a", "A"));
    apply1(v, ev_user(0, 2, "b", "B"));
    apply1(v, ev_ids(REEL_EV_FOLLOW_CREATED, 0, 2, 1, 0));
    cr_assert_not(pair_read(v, reel_views_is_blocked, 1, 2));
    apply1(v, ev_ids(REEL_EV_BLOCK_CREATED, 0, 1, 2, 0));
    apply_noop(v, ev_ids(REEL_EV_BLOCK_CREATED, 0, 1, 2, 0)); /* block twice */
    cr_assert(pair_read(v, reel_views_is_blocked, 1, 2));
    cr_assert(pair_read(v, reel_views_is_blocked, 2, 1));
    cr_assert_not(pair_read(v, reel_views_is_blocked, 1, 3));
    cr_assert(pair_read(v, reel_views_follows, 2, 1), "the command layer removes follows");
    apply1(v, ev_ids(REEL_EV_BLOCK_CREATED, 0, 2, 1, 0)); /* both ways */
    apply1(v, ev_ids(REEL_EV_BLOCK_REMOVED, 0, 1, 2, 0));
    cr_assert(pair_read(v, reel_views_is_blocked, 1, 2), "2 still blocks 1");
    apply1(v, ev_ids(REEL_EV_BLOCK_REMOVED, 0, 2, 1, 0));
    apply_noop(v, ev_ids(REEL_EV_BLOCK_REMOVED, 0, 2, 1, 0));
    cr_assert_not(pair_read(v, reel_views_is_blocked, 1, 2));
    cr_assert_not(pair_read(v, reel_views_is_blocked, 2, 1));
    reel_views_close(v);
    reel_test_rmtree(dir);
}

/* ---- cameos and consent ---- */

static int get_cameo(reel_views_t *v, uint64_t owner, reel_cameo_view_t *c, char *asset,
                     size_t cap)
{
    reel_views_txn_t *t;
    cr_assert_eq(reel_views_read_begin(v, &t), 0);
    int rc = reel_views_get_cameo(t, owner, c);
    if (rc == 0) {
        cr_assert_lt(c->asset_len, cap);
        memcpy(asset, c->asset, c->asset_len); /* the pointer dies with t */
        asset[c->asset_len] = '\0';
    }
    reel_views_read_end(t);
    return rc;
}

Test(views, cameos_policies_and_approvals)
{
    char dir[256], asset[64];
    reel_test_tmpdir(dir, sizeof dir, "views");
    reel_views_t *v = open_views(dir);
    reel_cameo_view_t c;
    cr_assert_eq(get_cameo(v, 1, &c, asset, sizeof asset), REEL_ENOTFOUND);
    apply1(v, ev_str(REEL_EV_CAMEO_POLICY_SET, 1, 0, S("mutuals")));
    cr_assert_eq(get_cameo(v, 1, &c, asset, sizeof asset), 0);
    cr_assert_eq(c.policy, REEL_CAMEO_MUTUALS);
    cr_assert_eq(c.asset_len, 0, "a policy, no cameo yet");
    apply1(v, ev_str(REEL_EV_CAMEO_REGISTERED, 1, 0, S("s3://c/1")));
    cr_assert_eq(get_cameo(v, 1, &c, asset, sizeof asset), 0);
    cr_assert_eq(c.policy, REEL_CAMEO_MUTUALS, "registration keeps the policy");
    cr_assert_str_eq(asset, "s3://c/1");
    apply_noop(v, ev_str(REEL_EV_CAMEO_POLICY_SET, 1, 0, S("friends"))); /* unknown */
    apply_noop(v, ev_str(REEL_EV_CAMEO_REGISTERED, 1, 0, S("s3://c/1")));
    apply1(v, ev_str(REEL_EV_CAMEO_REGISTERED, 1, 0, S("s3://c/1b")));
    apply1(v, ev_str(REEL_EV_CAMEO_POLICY_SET, 1, 0, S("approved")));
    cr_assert_eq(get_cameo(v, 1, &c, asset, sizeof asset), 0);
    cr_assert_eq(c.policy, REEL_CAMEO_APPROVED);
    cr_assert_str_eq(asset, "s3://c/1b");
    cr_assert_eq(c.owner, 1);

    reel_event_t grant = {.type = REEL_EV_CONSENT_GRANTED, .user = 1, .target = 2};
    cr_assert_not(pair_read(v, reel_views_is_approved, 1, 2));
    apply1(v, grant);
    apply_noop(v, grant);
    cr_assert(pair_read(v, reel_views_is_approved, 1, 2));
    cr_assert_not(pair_read(v, reel_views_is_approved, 2, 1));
    grant.type = REEL_EV_CONSENT_REVOKED;
    apply1(v, grant);
    apply_noop(v, grant);
    cr_assert_not(pair_read(v, reel_views_is_approved, 1, 2));

    apply1(v, (reel_event_t){.type = REEL_EV_CAMEO_DELETED, .user = 1});
    cr_assert_eq(get_cameo(v, 1, &c, asset, sizeof asset), REEL_ENOTFOUND);
    apply_noop(v, (reel_event_t){.type = REEL_EV_CAMEO_DELETED, .user = 1});
    apply1(v, ev_str(REEL_EV_CAMEO_REGISTERED, 1, 0, S("s3://c/2")));
    cr_assert_eq(get_cameo(v, 1, &c, asset, sizeof asset), 0);
    cr_assert_eq(c.policy, REEL_CAMEO_ONLY_ME, "a new cameo starts at only_me");
    reel_views_close(v);
    reel_test_rmtree(dir);
}

/* ---- comments ---- */

Test(views, comments_oldest_first_and_counted)
{
    char dir[256];
    reel_test_tmpdir(dir, sizeof dir, "views");
    reel_views_t *v = open_views(dir);
    reel_post_view_t p;
    apply1(v, ev_post(0, 10, 1, "public"));
    for (uint64_t i = 0; i < 7; i++)
        apply1(v, ev_comment(200 + i, 10, 2, i == 3 ? 201 : 0, i % 2 ? "odd" : "even text"));
    apply_noop(v, ev_comment(200, 10, 3, 0, "again")); /* existing id */
    apply1(v, ev_comment(300, 77, 2, 0, "on an unknown post"));
    cr_assert_eq(get_post(v, 10, &p), 0);
    cr_assert_eq(p.comments, 7);
    apply1(v, (reel_event_t){.type = REEL_EV_COMMENT_DELETED, .comment = 202});
    apply_noop(v, (reel_event_t){.type = REEL_EV_COMMENT_DELETED, .comment = 202});
    apply_noop(v, (reel_event_t){.type = REEL_EV_COMMENT_DELETED, .comment = 999});
    cr_assert_eq(get_post(v, 10, &p), 0);
    cr_assert_eq(p.comments, 6);

    reel_views_txn_t *t;
    reel_comment_view_t page[4], c;
    uint64_t got[8], ca = 0, ci = 0;
    size_t total = 0, n;
    cr_assert_eq(reel_views_read_begin(v, &t), 0);
    do {
        cr_assert_eq(reel_views_comments(t, 10, ca, ci, 4, page, &n), 0);
        for (size_t i = 0; i < n; i++) {
            cr_assert_lt(total, 8);
            got[total++] = page[i].id;
            cr_assert_eq(page[i].post, 10);
            cr_assert_eq(page[i].author, 2);
        }
        if (n > 0) {
            ca = page[n - 1].created_at;
            ci = page[n - 1].id;
        }
    } while (n == 4);
    cr_assert_eq(total, 6);
    static const uint64_t want[] = {200, 201, 203, 204, 205, 206};
    cr_assert_arr_eq(got, want, sizeof want);
    cr_assert_eq(reel_views_get_comment(t, 203, &c), 0);
    cr_assert_eq(c.reply_to, 201);
    cr_assert_eq(c.text_len, 3);
    cr_assert_eq(memcmp(c.text, "odd", 3), 0);
    cr_assert_eq(reel_views_get_comment(t, 202, &c), REEL_ENOTFOUND);
    cr_assert_eq(reel_views_get_comment(t, 300, &c), 0);
    cr_assert_eq(reel_views_comments(t, 10, 0, 0, 0, page, &n), REEL_EUSAGE);
    reel_views_read_end(t);
    reel_views_close(v);
    reel_test_rmtree(dir);
}

/* ---- invites ---- */

Test(views, invites_issued_and_used_once)
{
    char dir[256];
    reel_test_tmpdir(dir, sizeof dir, "views");
    reel_views_t *v = open_views(dir);
    apply1(v, ev_user(0, 1, "a", "A"));
    apply1(v, ev_str(REEL_EV_INVITE_ISSUED, 1, 0, S("CODE1")));
    apply1(v, ev_str(REEL_EV_INVITE_ISSUED, 1, 0, S("CODE2")));
    apply_noop(v, ev_str(REEL_EV_INVITE_ISSUED, 1, 0, S("CODE1")));
    apply_noop(v, ev_str(REEL_EV_INVITE_ISSUED, 1, 0, S("")));
    cr_assert_eq(COUNT(v, 1, invites), 2);

    reel_event_t u2 = ev_user(0, 2, "b", "B");
    u2.code = S("CODE1");
    apply1(v, u2);
    reel_event_t u3 = ev_user(0, 3, "c", "C");
    u3.code = S("CODE1"); /* used already: stays with 2 */
    apply1(v, u3);
    reel_views_txn_t *t;
    reel_invite_view_t inv;
    cr_assert_eq(reel_views_read_begin(v, &t), 0);
    cr_assert_eq(reel_views_get_invite(t, "CODE1", 5, &inv), 0);
    cr_assert(inv.used);
    cr_assert_eq(inv.used_by, 2);
    cr_assert_eq(inv.issuer, 1);
    cr_assert_eq(reel_views_get_invite(t, "CODE2", 5, &inv), 0);
    cr_assert_not(inv.used);
    cr_assert_eq(inv.used_by, 0);
    cr_assert_eq(reel_views_get_invite(t, "code1", 5, &inv), REEL_ENOTFOUND);
    cr_assert_eq(reel_views_get_invite(t, "x", 0, &inv), REEL_EUSAGE);
    reel_views_read_end(t);
    reel_views_close(v);
    reel_test_rmtree(dir);
}

/* ---- the write txn's row cache (views_rows.c) ---- */

/* A board's value in a profile. */
static uint64_t board_value(const reel_user_view_t *u, reel_views_board_t kind)
{
    switch (kind) {
    case REEL_BOARD_FOLLOWERS: return u->followers;
    case REEL_BOARD_LIKES: return u->likes_received;
    case REEL_BOARD_REMIXES: return u->remixes_received;
    default: return u->cameo_uses;
    }
}

/* Every board lists exactly the live users (1..users) whose value is above
 * 0, at that value: checked against their profiles. Returns the rows seen. */
static size_t check_boards(reel_views_t *v, uint64_t users)
{
    static reel_leader_t rows[REEL_VIEWS_PAGE_MAX];
    reel_views_txn_t *t;
    size_t seen = 0;
    cr_assert_eq(reel_views_read_begin(v, &t), 0);
    for (int kind = 0; kind < REEL_BOARD_COUNT; kind++) {
        size_t n, want = 0;
        cr_assert_eq(reel_views_leaderboard(t, (reel_views_board_t)kind, REEL_VIEWS_PAGE_MAX,
                                            rows, &n), 0);
        for (uint64_t id = 1; id <= users; id++) {
            reel_user_view_t u;
            int rc = reel_views_get_user(t, id, &u);
            cr_assert(rc == 0 || rc == REEL_ENOTFOUND);
            want += rc == 0 && board_value(&u, (reel_views_board_t)kind) > 0;
        }
        cr_assert_eq(n, want, "board %d lists %zu users, %zu have a value", kind, n, want);
        for (size_t i = 0; i < n; i++) {
            reel_user_view_t u;
            cr_assert_eq(reel_views_get_user(t, rows[i].user, &u), 0, "listed user is live");
            cr_assert_eq(rows[i].value, board_value(&u, (reel_views_board_t)kind));
        }
        seen += n;
    }
    reel_views_read_end(t);
    return seen;
}

Test(views, leaderboards_list_live_users_at_their_counts_in_any_batching)
{
    enum { N = 5000 };
    static reel_event_t evs[N];
    size_t n = random_history(evs, N, 11);
    char d1[256], d2[256];
    reel_test_tmpdir(d1, sizeof d1, "views");
    reel_test_tmpdir(d2, sizeof d2, "views2");
    reel_views_t *a = open_views(d1), *b = open_views(d2);
    cr_assert_eq(reel_views_apply(a, evs, n), 0); /* one txn */
    for (size_t i = 0; i < n; i += 7)              /* many */
        cr_assert_eq(reel_views_apply(b, evs + i, n - i < 7 ? n - i : 7), 0);
    cr_assert_gt(check_boards(a, 50), 0);
    cr_assert_gt(check_boards(b, 50), 0);
    uint8_t ha[16], hb[16];
    hash_of(a, ha);
    hash_of(b, hb);
    cr_assert_arr_eq(ha, hb, 16);
    reel_views_close(a);
    reel_views_close(b);
    reel_test_rmtree(d1);
    reel_test_rmtree(d2);
}

/* More users than the cache holds rows and more index keys than wait for a
 * flush, in one txn: both go to LMDB mid-txn and start over, with the same
 * views as small txns. */
Test(views, more_rows_than_the_cache_holds_in_one_txn)
{
    enum { USERS = REEL_VIEWS_ROWS_MAX * 3 / 4 };
    static reel_event_t evs[4 * USERS];
    _Static_assert(2 * 3 * (USERS - 1) > REEL_VIEWS_INDEX_OPS_MAX, "index ops overflow too");
    static char handles[USERS][12];
    size_t n = 0;
    for (uint64_t u = 1; u <= USERS; u++) {
        snprintf(handles[u - 1], sizeof handles[0], "u%llu", (unsigned long long)u);
        evs[n] = ev_user(n, u, handles[u - 1], "x");
        n++;
    }
    for (uint64_t u = 2; u <= USERS; u++, n++) /* everyone follows a few */
        evs[n] = ev_ids(REEL_EV_FOLLOW_CREATED, n, u, 1 + u % 7, 0);
    for (uint64_t u = 2; u <= USERS; u++, n++) /* and someone more, then unfollows */
        evs[n] = ev_ids(REEL_EV_FOLLOW_CREATED, n, u, 100 + u % 13, 0);
    for (uint64_t u = 2; u <= USERS; u++, n++)
        evs[n] = ev_ids(REEL_EV_FOLLOW_REMOVED, n, u, 100 + u % 13, 0);
    char d1[256], d2[256];
    reel_test_tmpdir(d1, sizeof d1, "views");
    reel_test_tmpdir(d2, sizeof d2, "views2");
    reel_views_t *a = open_views(d1), *b = open_views(d2);
    cr_assert_eq(reel_views_apply(a, evs, n), 0);
    for (size_t i = 0; i < n; i += 1000)
        cr_assert_eq(reel_views_apply(b, evs + i, n - i < 1000 ? n - i : 1000), 0);
    uint8_t ha[16], hb[16];
    hash_of(a, ha);
    hash_of(b, hb);
    cr_assert_arr_eq(ha, hb, 16);
    reel_user_view_t u;
    cr_assert_eq(get_user(a, USERS, &u), 0);
    cr_assert_eq(get_user(a, 1, &u), 0);
    cr_assert_eq(u.followers, USERS / 7, "user 1: every 7th follows");
    cr_assert_eq(check_boards(a, 8), 7, "users 1..7 have followers");
    reel_views_close(a);
    reel_views_close(b);
    reel_test_rmtree(d1);
    reel_test_rmtree(d2);
}

/* An aborted session's rows are not kept: the next txn reads what LMDB
 * holds, not the aborted counts. A committed session's are. */
Test(views, aborted_session_leaves_no_cached_rows)
{
    char dir[256];
    reel_test_tmpdir(dir, sizeof dir, "views");
    reel_views_t *v = open_views(dir);
    apply1(v, ev_user(0, 1, "a", "A"));
    apply1(v, ev_user(0, 2, "b", "B"));
    reel_views_session_t *s;
    reel_user_view_t u;
    reel_event_t f = ev_ids(REEL_EV_FOLLOW_CREATED, reel_views_applied(v), 1, 2, 0);
    cr_assert_eq(reel_views_session_begin(v, &s), 0);
    cr_assert_eq(reel_views_session_apply(s, &f), 0);
    cr_assert_eq(reel_views_get_user(reel_views_session_reader(s), 2, &u), 0);
    cr_assert_eq(u.followers, 1, "the session sees its own follow");
    reel_views_session_abort(s);

    cr_assert_eq(reel_views_session_begin(v, &s), 0);
    cr_assert_eq(reel_views_get_user(reel_views_session_reader(s), 2, &u), 0);
    cr_assert_eq(u.followers, 0, "the aborted follow is gone from the next txn");
    cr_assert_eq(reel_views_session_apply(s, &f), 0);
    cr_assert_eq(reel_views_session_commit(s), 0);

    cr_assert_eq(reel_views_session_begin(v, &s), 0);
    cr_assert_eq(reel_views_get_user(reel_views_session_reader(s), 2, &u), 0);
    cr_assert_eq(u.followers, 1, "the committed follow stays");
    reel_views_session_abort(s);
    cr_assert_eq(get_user(v, 2, &u), 0);
    cr_assert_eq(u.followers, 1);
    reel_views_close(v);
    reel_test_rmtree(dir);
}

/* Scans in a session see the rows it has not written yet: the last ids and
 * the leaderboard (a cursor on them flushes the rows first). */
Test(views, session_scans_see_its_cached_rows)
{
    char dir[256];
    reel_test_tmpdir(dir, sizeof dir, "views");
    reel_views_t *v = open_views(dir);
    apply1(v, ev_user(0, 1, "a", "A"));
    reel_views_session_t *s;
    cr_assert_eq(reel_views_session_begin(v, &s), 0);
    reel_event_t evs[] = {ev_user(0, 2, "b", "B"), ev_user(0, 3, "c", "C"),
                          ev_ids(REEL_EV_FOLLOW_CREATED, 0, 1, 3, 0),
                          ev_ids(REEL_EV_FOLLOW_CREATED, 0, 2, 3, 0),
                          ev_post(0, 9, 2, "public")};
    for (size_t i = 0; i < REEL_ARRAY_LEN(evs); i++) {
        evs[i].offset = 1 + i;
        cr_assert_eq(reel_views_session_apply(s, &evs[i]), 0);
    }
    reel_views_txn_t *t = reel_views_session_reader(s);
    uint64_t last;
    cr_assert_eq(reel_views_last_id(t, REEL_VIEWS_ID_USER, &last), 0);
    cr_assert_eq(last, 3);
    cr_assert_eq(reel_views_last_id(t, REEL_VIEWS_ID_POST, &last), 0);
    cr_assert_eq(last, 9);
    reel_leader_t rows[4];
    size_t n;
    cr_assert_eq(reel_views_leaderboard(t, REEL_BOARD_FOLLOWERS, 4, rows, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(rows[0].user, 3);
    cr_assert_eq(rows[0].value, 2);
    reel_event_t more = ev_ids(REEL_EV_FOLLOW_CREATED, 6, 3, 2, 0); /* after the flush */
    cr_assert_eq(reel_views_session_apply(s, &more), 0);
    cr_assert_eq(reel_views_leaderboard(t, REEL_BOARD_FOLLOWERS, 4, rows, &n), 0);
    cr_assert_eq(n, 2);
    cr_assert_eq(rows[1].user, 2);
    cr_assert_eq(rows[1].value, 1);
    cr_assert_eq(reel_views_session_commit(s), 0);
    cr_assert_eq(check_boards(v, 3), 2);
    reel_views_close(v);
    reel_test_rmtree(dir);
}

/* Index keys of one txn go to LMDB sorted, but the ops on one key keep
 * their order: follow, unfollow, follow again ends followed; the reverse
 * ends not followed; the lists agree with the counts. */
Test(views, index_writes_of_one_txn_keep_their_order_per_key)
{
    char dir[256];
    reel_test_tmpdir(dir, sizeof dir, "views");
    reel_views_t *v = open_views(dir);
    reel_event_t evs[] = {
        ev_user(0, 1, "a", "A"), ev_user(0, 2, "b", "B"), ev_user(0, 3, "c", "C"),
        ev_ids(REEL_EV_FOLLOW_CREATED, 0, 1, 2, 0), ev_ids(REEL_EV_FOLLOW_REMOVED, 0, 1, 2, 0),
        ev_ids(REEL_EV_FOLLOW_CREATED, 0, 1, 2, 0), ev_ids(REEL_EV_FOLLOW_CREATED, 0, 3, 2, 0),
        ev_ids(REEL_EV_FOLLOW_REMOVED, 0, 3, 2, 0), ev_ids(REEL_EV_FOLLOW_CREATED, 0, 2, 3, 0),
    };
    for (size_t i = 0; i < REEL_ARRAY_LEN(evs); i++) {
        evs[i].offset = i;
        evs[i].at = i >= 3 && i <= 5 ? 1003 : 1000 + i; /* 1 -> 2: put, del, put of one key */
    }
    cr_assert_eq(reel_views_apply(v, evs, REEL_ARRAY_LEN(evs)), 0);
    reel_views_txn_t *t;
    reel_follow_entry_t rows[8];
    size_t n;
    cr_assert_eq(reel_views_read_begin(v, &t), 0);
    cr_assert_eq(reel_views_followers(t, 2, 0, 0, 8, rows, &n), 0);
    cr_assert_eq(n, 1, "user 2: only 1 follows (3 unfollowed)");
    cr_assert_eq(rows[0].user, 1);
    cr_assert_eq(rows[0].since, 1003);
    cr_assert_eq(reel_views_following(t, 3, 0, 0, 8, rows, &n), 0);
    cr_assert_eq(n, 0);
    cr_assert_eq(reel_views_following(t, 2, 0, 0, 8, rows, &n), 0);
    cr_assert_eq(n, 1);
    reel_views_read_end(t);
    reel_user_view_t u;
    cr_assert_eq(get_user(v, 2, &u), 0);
    cr_assert_eq(u.followers, 1);
    reel_views_close(v);
    reel_test_rmtree(dir);
}
