/*
 * test_import.c: `reel import` run as a user runs it ($REEL_BIN/reel), on
 * the real data sets of ../shared/data and on small files with bad lines.
 *
 * The replay tests (issue 3, "Proof") import MovieLens 100K and CollegeMsg
 * with their own times, then check the views against counts this file
 * computes from the raw files with a parser of its own (it shares no code
 * with tools/import_read.c): every movie, every user, not a sample. Users
 * and posts are found by their handles (ml_uN, ml_mN, cm_uN), never by ids
 * the importer chose.
 *
 * "Never half-applied", as tested here: a bad line appends no event at
 * all (none of the users it names is created because of it, no follow, no
 * view, no like), the good lines around it are imported in full, and with
 * --strict one bad line anywhere means the run appends nothing (the log's
 * end is what it was before the run).
 *
 * The data folder is ../shared/data relative to the repository root, where
 * the tests run; when it is absent the replay tests say so and skip.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/common.h"
#include "engine/datadir.h"
#include "engine/log.h"
#include "engine/views.h"
#include "tests/harness.h"

#define DATA_ROOT "../shared/data"
#define ML_DIR DATA_ROOT "/ml-100k"
#define CM_FILE DATA_ROOT "/collegemsg/CollegeMsg.txt"
/* The test's own bound on ids in the raw files (MovieLens: 943 users,
 * 1682 movies; CollegeMsg: 1899 users). */
#define RAW_ID_MAX 100000u
#define PAGE 1000u

static char tmp[PATH_MAX];
static char data[PATH_MAX + 8];

static void setup(void)
{
    reel_test_tmpdir(tmp, sizeof(tmp), "import");
    snprintf(data, sizeof(data), "%s/data", tmp);
}

static void teardown(void)
{
    reel_test_rmtree(tmp);
}

TestSuite(import, .init = setup, .fini = teardown, .timeout = 240);

/* ---- running the binary ---- */

typedef reel_test_run_t run_t;
#define run_reel(...) reel_test_reel_run(tmp, __VA_ARGS__)
#define run_free reel_test_run_free

static void write_text(const char *path, const char *text)
{
    cr_assert_eq(reel_test_write_file(path, text, strlen(text)), 0, "%s", path);
}

/* The log's end in dir (0 when there is no log at all). */
static uint64_t log_end(const char *dir)
{
    char log_dir[PATH_MAX], err[256];
    struct stat st;
    reel_log_t *log;
    cr_assert_eq(reel_data_log_path(dir, log_dir, sizeof(log_dir)), 0);
    if (stat(log_dir, &st) != 0)
        return 0;
    reel_log_options_t o = {.read_only = true};
    cr_assert_eq(reel_log_open(log_dir, &o, &log, err, sizeof(err)), 0, "%s", err);
    uint64_t end = reel_log_end(log);
    reel_log_close(log);
    return end;
}

static reel_views_t *views_open(const char *dir)
{
    char views_dir[PATH_MAX];
    reel_views_t *v;
    cr_assert_eq(reel_data_views_path(dir, views_dir, sizeof(views_dir)), 0);
    cr_assert_eq(reel_views_open(views_dir, &v), 0, "%s", views_dir);
    return v;
}

/* The user whose handle is prefix+n; false when there is none. */
static bool user_by(reel_views_txn_t *t, const char *prefix, uint32_t n, reel_user_view_t *u)
{
    char h[40];
    int len = snprintf(h, sizeof(h), "%s%" PRIu32, prefix, n);
    int rc = reel_views_user_by_handle(t, h, (size_t)len, u);
    cr_assert(rc == 0 || rc == REEL_ENOTFOUND, "%s: %s", h, reel_strerror(rc));
    return rc == 0;
}

/* ---- the test's own readers of the raw files ---- */

/* The next line of f split at white space into up to max tokens; returns
 * the token count, or -1 at the end. */
static int raw_fields(FILE *f, char *line, size_t cap, char **tok, int max)
{
    if (fgets(line, (int)cap, f) == NULL)
        return -1;
    int n = 0;
    for (char *s = strtok(line, " \t\r\n"); s != NULL && n < max; s = strtok(NULL, " \t\r\n"))
        tok[n++] = s;
    return n;
}

static uint32_t raw_u32(const char *s)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    cr_assert(*end == '\0' && v > 0 && v < RAW_ID_MAX, "bad number '%s' in the raw file", s);
    return (uint32_t)v;
}

/* MovieLens as this test sees it: per movie, per user, per pair. */
typedef struct ml_raw {
    uint32_t users, items;   /* largest ids seen */
    uint32_t ratings;        /* lines */
    uint32_t views[RAW_ID_MAX];       /* per item: ratings */
    uint64_t item_first[RAW_ID_MAX];  /* per item: first rating's time (s) */
    uint64_t user_first[RAW_ID_MAX];  /* per user: first rating's time (s) */
    uint8_t *liked;                   /* [user * (items + 1) + item]: rated 4 or 5 */
} ml_raw_t;

static void ml_raw_read(ml_raw_t *m)
{
    char line[512], *t[5];
    int n;
    FILE *f = fopen(ML_DIR "/u.data", "r");
    cr_assert_not_null(f);
    /* First pass: the extent of the ids, so the like matrix fits. */
    while ((n = raw_fields(f, line, sizeof(line), t, 5)) >= 0) {
        cr_assert_eq(n, 4, "u.data line %" PRIu32 ": %d fields", m->ratings + 1, n);
        uint32_t u = raw_u32(t[0]), i = raw_u32(t[1]);
        m->users = u > m->users ? u : m->users;
        m->items = i > m->items ? i : m->items;
        m->ratings++;
    }
    m->liked = calloc((size_t)(m->users + 1) * (m->items + 1), 1);
    cr_assert_not_null(m->liked);
    rewind(f);
    while (raw_fields(f, line, sizeof(line), t, 5) == 4) {
        uint32_t u = raw_u32(t[0]), i = raw_u32(t[1]), r = raw_u32(t[2]);
        uint64_t at = strtoull(t[3], NULL, 10);
        m->views[i]++;
        if (m->item_first[i] == 0 || at < m->item_first[i])
            m->item_first[i] = at;
        if (m->user_first[u] == 0 || at < m->user_first[u])
            m->user_first[u] = at;
        if (r >= 4)
            m->liked[(size_t)u * (m->items + 1) + i] = 1;
    }
    fclose(f);
}

static bool ml_liked(const ml_raw_t *m, uint32_t u, uint32_t i)
{
    return m->liked[(size_t)u * (m->items + 1) + i] != 0;
}

/* ---- MovieLens 100K ---- */

/* Every movie: its post by its own creator, created at its first rating,
 * likes == distinct users who rated it 4 or 5, views == its ratings.
 * Fills post_item (post id -> movie) for the users' check. */
static void ml_check_movies(reel_views_txn_t *t, const ml_raw_t *m, uint32_t *post_item,
                            size_t post_cap, uint32_t *rated)
{
    for (uint32_t i = 1; i <= m->items; i++) {
        reel_user_view_t creator;
        bool exists = user_by(t, "ml_m", i, &creator);
        cr_assert_eq(exists, m->views[i] > 0, "movie %" PRIu32 ": creator exists %d", i, exists);
        if (!exists)
            continue;
        (*rated)++;
        reel_post_entry_t e[2];
        size_t n;
        cr_assert_eq(reel_views_posts_by_author(t, creator.id, 0, 0, 0, 2, e, &n), 0);
        cr_assert_eq(n, 1, "movie %" PRIu32 ": its creator has %zu posts", i, n);
        reel_post_view_t p;
        cr_assert_eq(reel_views_get_post(t, e[0].post, &p), 0);
        uint32_t likes = 0;
        for (uint32_t u = 1; u <= m->users; u++)
            likes += ml_liked(m, u, i);
        cr_assert_eq(p.views, m->views[i], "movie %" PRIu32 ": views %" PRIu64 " != %" PRIu32,
                     i, p.views, m->views[i]);
        cr_assert_eq(p.likes, likes, "movie %" PRIu32 ": likes %" PRIu64 " != %" PRIu32, i,
                     p.likes, likes);
        cr_assert_eq(p.watch_ms, 30000ull * m->views[i], "movie %" PRIu32 ": watch_ms", i);
        cr_assert_eq(p.created_at, m->item_first[i] * 1000, "movie %" PRIu32 ": created_at", i);
        cr_assert_eq(creator.created_at, p.created_at);
        cr_assert_eq(creator.likes_received, likes);
        cr_assert_lt(p.id, post_cap);
        post_item[p.id] = i;
    }
}

/* Every user: created at their first rating, and the posts they like are
 * exactly the movies they rated 4 or 5 (pages of likes_by_user). */
static void ml_check_users(reel_views_txn_t *t, const ml_raw_t *m, const uint32_t *post_item,
                           size_t post_cap, uint32_t *users)
{
    static uint64_t page[PAGE];
    for (uint32_t u = 1; u <= m->users; u++) {
        reel_user_view_t uv;
        bool exists = user_by(t, "ml_u", u, &uv);
        cr_assert_eq(exists, m->user_first[u] != 0, "user %" PRIu32, u);
        if (!exists)
            continue;
        (*users)++;
        cr_assert_eq(uv.created_at, m->user_first[u] * 1000, "user %" PRIu32 ": created_at", u);
        uint32_t want = 0, got = 0;
        for (uint32_t i = 1; i <= m->items; i++)
            want += ml_liked(m, u, i);
        uint64_t cursor = 0;
        size_t n;
        do {
            cr_assert_eq(reel_views_likes_by_user(t, uv.id, cursor, PAGE, page, &n), 0);
            for (size_t k = 0; k < n; k++) {
                cr_assert_lt(page[k], post_cap);
                uint32_t item = post_item[page[k]];
                cr_assert(item != 0 && ml_liked(m, u, item),
                          "user %" PRIu32 " likes post %" PRIu64 " (movie %" PRIu32 ")", u,
                          page[k], item);
                got++;
                cursor = page[k];
            }
        } while (n == PAGE);
        cr_assert_eq(got, want, "user %" PRIu32 ": %" PRIu32 " liked posts, rated 4+: %" PRIu32,
                     u, got, want);
    }
}

Test(import, movielens_100k_replay)
{
    if (access(ML_DIR "/u.data", R_OK) != 0)
        cr_skip_test("skipped: " ML_DIR " is absent (the MovieLens replay needs ../shared/data)");
    static ml_raw_t m;
    memset(&m, 0, sizeof(m));
    ml_raw_read(&m);
    /* The test's own parser against the data set's published size. */
    cr_assert_eq(m.ratings, 100000u);
    cr_assert_eq(m.users, 943u);
    cr_assert_eq(m.items, 1682u);

    run_t r = run_reel("import", "--data", data, "--movielens", ML_DIR, NULL);
    cr_assert_eq(r.status, 0, "reel import: %d\n%s%s", r.status, r.out, r.err);
    cr_assert_not_null(strstr(r.out, "100000 lines read, 0 bad"), "%s", r.out);
    run_free(&r);

    reel_views_t *v = views_open(data);
    reel_views_txn_t *t;
    cr_assert_eq(reel_views_read_begin(v, &t), 0);
    size_t post_cap = 4 * (size_t)m.items + 1;
    uint32_t *post_item = calloc(post_cap, sizeof(*post_item));
    uint32_t rated = 0, users = 0;
    uint64_t last_user, last_post;
    ml_check_movies(t, &m, post_item, post_cap, &rated);
    ml_check_users(t, &m, post_item, post_cap, &users);
    cr_assert_eq(reel_views_last_id(t, REEL_VIEWS_ID_USER, &last_user), 0);
    cr_assert_eq(reel_views_last_id(t, REEL_VIEWS_ID_POST, &last_post), 0);
    cr_assert_eq(users, 943u);
    cr_assert_eq(rated, 1682u); /* every movie of ml-100k has a rating */
    cr_assert_eq(last_user, 943u + 1682u, "users: %" PRIu64, last_user);
    cr_assert_eq(last_post, 1682u);
    reel_views_read_end(t);
    reel_views_close(v);
    free(post_item);
    free(m.liked);
}

/* ---- CollegeMsg ---- */

static int pair_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static bool has_pair(const uint64_t *pairs, size_t n, uint32_t a, uint32_t b)
{
    uint64_t key = (uint64_t)a << 32 | b;
    return bsearch(&key, pairs, n, sizeof(key), pair_cmp) != NULL;
}

/* The distinct (src << 32 | dst) pairs of non-self messages, sorted, and
 * each user's first appearance (s). */
static size_t cm_raw_read(uint64_t **pairs_out, uint64_t *first, uint32_t *max_id,
                          uint32_t *messages)
{
    char line[512], *t[4];
    size_t n = 0, cap = 1 << 16;
    uint64_t *pairs = malloc(cap * sizeof(*pairs));
    FILE *f = fopen(CM_FILE, "r");
    cr_assert_not_null(f);
    cr_assert_eq(raw_fields(f, line, sizeof(line), t, 4), 3); /* header */
    cr_assert_str_eq(t[0], "src");
    int k;
    while ((k = raw_fields(f, line, sizeof(line), t, 4)) >= 0) {
        cr_assert_eq(k, 3);
        uint32_t a = raw_u32(t[0]), b = raw_u32(t[1]);
        uint64_t at = strtoull(t[2], NULL, 10);
        (*messages)++;
        if (a == b)
            continue;
        for (int s = 0; s < 2; s++) {
            uint32_t id = s ? b : a;
            *max_id = id > *max_id ? id : *max_id;
            if (first[id] == 0 || at < first[id])
                first[id] = at;
        }
        if (n == cap)
            pairs = realloc(pairs, (cap *= 2) * sizeof(*pairs));
        pairs[n++] = (uint64_t)a << 32 | b;
    }
    fclose(f);
    qsort(pairs, n, sizeof(*pairs), pair_cmp);
    size_t d = 0;
    for (size_t i = 0; i < n; i++)
        if (d == 0 || pairs[d - 1] != pairs[i])
            pairs[d++] = pairs[i];
    *pairs_out = pairs;
    return d;
}

Test(import, collegemsg_replay)
{
    if (access(CM_FILE, R_OK) != 0)
        cr_skip_test("skipped: " CM_FILE " is absent (the CollegeMsg replay needs ../shared/data)");
    static uint64_t first[RAW_ID_MAX];
    static uint32_t followers[RAW_ID_MAX], following[RAW_ID_MAX], friends[RAW_ID_MAX];
    static uint64_t ids[RAW_ID_MAX];
    uint64_t *pairs;
    uint32_t max_id = 0, messages = 0, users = 0;
    size_t np = cm_raw_read(&pairs, first, &max_id, &messages);
    cr_assert_eq(messages, 59835u); /* the data set's published size */
    size_t mutual = 0;
    for (size_t i = 0; i < np; i++) {
        uint32_t a = (uint32_t)(pairs[i] >> 32), b = (uint32_t)pairs[i];
        following[a]++;
        followers[b]++;
        if (has_pair(pairs, np, b, a)) {
            friends[a]++; /* each mutual pair is met twice: once from each side */
            mutual += a < b;
        }
    }

    run_t r = run_reel("import", "--data", data, "--collegemsg", CM_FILE, NULL);
    cr_assert_eq(r.status, 0, "reel import: %d\n%s%s", r.status, r.out, r.err);
    cr_assert_not_null(strstr(r.out, "59835 lines read, 0 bad"), "%s", r.out);
    run_free(&r);

    reel_views_t *v = views_open(data);
    reel_views_txn_t *t;
    cr_assert_eq(reel_views_read_begin(v, &t), 0);
    size_t friends_total = 0;
    for (uint32_t id = 1; id <= max_id; id++) {
        reel_user_view_t u;
        bool exists = user_by(t, "cm_u", id, &u);
        cr_assert_eq(exists, first[id] != 0, "user %" PRIu32 ": exists %d", id, exists);
        if (!exists)
            continue;
        users++;
        ids[id] = u.id;
        cr_assert_eq(u.created_at, first[id] * 1000, "user %" PRIu32 ": created_at", id);
        cr_assert_eq(u.followers, followers[id], "user %" PRIu32 ": followers %" PRIu64
                     " != %" PRIu32, id, u.followers, followers[id]);
        cr_assert_eq(u.following, following[id], "user %" PRIu32 ": following %" PRIu64
                     " != %" PRIu32, id, u.following, following[id]);
        cr_assert_eq(u.friends, friends[id], "user %" PRIu32 ": friends %" PRIu64 " != %" PRIu32,
                     id, u.friends, friends[id]);
        friends_total += u.friends;
    }
    /* Counts equal and every raw pair a follow: the follow sets are equal. */
    for (size_t i = 0; i < np; i++) {
        bool f;
        uint32_t a = (uint32_t)(pairs[i] >> 32), b = (uint32_t)pairs[i];
        cr_assert_eq(reel_views_follows(t, ids[a], ids[b], &f), 0);
        cr_assert(f, "cm_u%" PRIu32 " does not follow cm_u%" PRIu32, a, b);
    }
    uint64_t last_user;
    cr_assert_eq(reel_views_last_id(t, REEL_VIEWS_ID_USER, &last_user), 0);
    cr_assert_eq(users, 1899u); /* published: 1,899 users */
    cr_assert_eq(last_user, users);
    cr_assert_eq(friends_total, 2 * mutual, "friends %zu, mutual pairs %zu", friends_total, mutual);
    reel_views_read_end(t);
    reel_views_close(v);
    /* One event per user and per distinct follow: repeats append nothing. */
    cr_assert_eq(log_end(data), users + np);
    free(pairs);
}

/* ---- bad lines ---- */

/* A CollegeMsg file with bad lines among good ones, unsorted. */
static const char cm_mixed[] = "src dst time\n"
                               "1 2 1000\n"   /* 2: good */
                               "3 x 1001\n"   /* 3: bad user */
                               "4 5\n"        /* 4: no time */
                               "6 6 1002\n"   /* 5: a self-message: skipped, not bad */
                               "7 8 0\n"      /* 6: time 0 */
                               "2 1 999\n"    /* 7: good, and the earliest */
                               "9 10 1003 x\n" /* 8: a field too many */
                               "11 12 -5\n";  /* 9: negative time */

Test(import, bad_lines_are_reported_and_append_nothing)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/msgs.txt", tmp);
    write_text(path, cm_mixed);
    run_t r = run_reel("import", "--data", data, "--collegemsg", path, NULL);
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
    static const char *const bad[] = {":3:", ":4:", ":6:", ":8:", ":9:"};
    for (size_t i = 0; i < REEL_ARRAY_LEN(bad); i++)
        cr_assert_not_null(strstr(r.err, bad[i]), "line %s not reported:\n%s", bad[i], r.err);
    cr_assert_null(strstr(r.err, ":2:"), "%s", r.err);
    cr_assert_null(strstr(r.err, ":5:"), "%s", r.err);
    cr_assert_null(strstr(r.err, ":7:"), "%s", r.err);
    cr_assert_not_null(strstr(r.out, "8 lines read, 5 bad (skipped), 1 self-messages"), "%s", r.out);
    run_free(&r);

    /* Exactly the good lines: two users, two follows, nothing else. */
    cr_assert_eq(log_end(data), 4u);
    reel_views_t *v = views_open(data);
    reel_views_txn_t *t;
    reel_user_view_t u1, u2, other;
    cr_assert_eq(reel_views_read_begin(v, &t), 0);
    cr_assert(user_by(t, "cm_u", 1, &u1));
    cr_assert(user_by(t, "cm_u", 2, &u2));
    for (uint32_t id = 3; id <= 12; id++)
        cr_assert(!user_by(t, "cm_u", id, &other), "cm_u%" PRIu32 " exists", id);
    cr_assert_eq(u2.created_at, 999000u); /* line 7 came first in time */
    cr_assert_eq(u1.created_at, 999000u);
    cr_assert_lt(u2.id, u1.id);           /* ...and 2 -> 1 names 2 first */
    cr_assert_eq(u1.friends, 1u);
    cr_assert_eq(u2.friends, 1u);
    reel_views_read_end(t);
    reel_views_close(v);
}

Test(import, strict_appends_nothing_on_a_bad_line)
{
    char first[PATH_MAX + 16], second[PATH_MAX + 16];
    snprintf(first, sizeof(first), "%s/first.txt", tmp);
    snprintf(second, sizeof(second), "%s/second.txt", tmp);
    write_text(first, "1 2 100\n2 3 101\n");
    /* Later than the first file, with users of its own (an import never
     * reuses handles); the bad line is the last one, after good lines that
     * would create users and follows. */
    write_text(second, "src dst time\n4 5 200\n5 8 201\n6 7 oops\n");

    run_t r = run_reel("import", "--strict", "--data", data, "--collegemsg", first, NULL);
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
    run_free(&r);
    uint64_t before = log_end(data);
    cr_assert_eq(before, 3u + 2u);

    r = run_reel("import", "--strict", "--data", data, "--collegemsg", second, NULL);
    cr_assert_eq(r.status, 1, "%d\n%s%s", r.status, r.out, r.err);
    cr_assert_not_null(strstr(r.err, "second.txt:4:"), "%s", r.err);
    cr_assert_not_null(strstr(r.err, "--strict"), "%s", r.err);
    run_free(&r);
    cr_assert_eq(log_end(data), before, "--strict appended events");

    /* Without --strict the same file imports its good lines. */
    r = run_reel("import", "--data", data, "--collegemsg", second, NULL);
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
    run_free(&r);
    cr_assert_eq(log_end(data), before + 3u + 2u); /* cm_u4, cm_u5, cm_u8; 4->5, 5->8 */
}

/* A small MovieLens folder: Latin-1 titles, a movie nobody rated, bad
 * lines in u.item and u.data. */
static void write_small_movielens(const char *dir)
{
    char p[PATH_MAX + 16];
    cr_assert_eq(mkdir(dir, 0755), 0);
    snprintf(p, sizeof(p), "%s/u.genre", dir);
    write_text(p, "unknown|0\nAction|1\nChildren's|2\n\n");
    snprintf(p, sizeof(p), "%s/u.item", dir);
    write_text(p, "1|Toy Story (1995)|01-Jan-1995||http://x|0|0|1\n"
                  "2|Mis\xe9rables, Les (1995)|01-Jan-1995||http://x|0|1|1\n"
                  "3|Nobody Rated This (1990)|01-Jan-1990||http://x|1|0|0\n"
                  "4|Too Few Fields|01-Jan-1990||http://x|1|0\n"); /* line 4: bad */
    snprintf(p, sizeof(p), "%s/u.data", dir);
    write_text(p, "1\t1\t5\t500\n"   /* 1: like + view */
                  "1\t2\t3\t400\n"   /* 2: view only, the earliest */
                  "2\t2\t4\t600\n"   /* 3: like + view */
                  "2 1 6 700\n"      /* 4: rating 6: bad */
                  "3\t4\t5\t800\n"   /* 5: movie 4's u.item line was bad */
                  "4\t99\t5\t800\n"  /* 6: no movie 99 */
                  "x\t1\t5\t800\n"   /* 7: bad user */
                  "2  1  2  650\n"); /* 8: spaces: good */
}

Test(import, movielens_small_latin1_and_bad_lines)
{
    char ml[PATH_MAX + 16];
    snprintf(ml, sizeof(ml), "%s/ml", tmp);
    write_small_movielens(ml);

    run_t r = run_reel("import", "--strict", "--data", data, "--movielens", ml, NULL);
    cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
    cr_assert_not_null(strstr(r.err, "u.item:4:"), "%s", r.err);
    run_free(&r);
    cr_assert_eq(log_end(data), 0u, "--strict appended events");

    r = run_reel("import", "--data", data, "--movielens", ml, NULL);
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
    static const char *const bad[] = {"u.item:4:", "u.data:4:", "u.data:5:", "u.data:6:",
                                      "u.data:7:"};
    for (size_t i = 0; i < REEL_ARRAY_LEN(bad); i++)
        cr_assert_not_null(strstr(r.err, bad[i]), "%s not reported:\n%s", bad[i], r.err);
    run_free(&r);

    reel_views_t *v = views_open(data);
    reel_views_txn_t *t;
    reel_user_view_t u, m1, m2;
    reel_post_entry_t e[2];
    reel_post_view_t p1, p2;
    size_t n;
    cr_assert_eq(reel_views_read_begin(v, &t), 0);
    cr_assert(user_by(t, "ml_u", 1, &u));
    cr_assert(user_by(t, "ml_u", 2, &u));
    cr_assert(!user_by(t, "ml_u", 3, &u), "a bad line's user was created");
    cr_assert(!user_by(t, "ml_u", 4, &u), "a bad line's user was created");
    cr_assert(!user_by(t, "ml_m", 3, &u), "a movie nobody rated was created");
    cr_assert(!user_by(t, "ml_m", 4, &u), "a bad u.item line's movie was created");
    cr_assert(user_by(t, "ml_m", 1, &m1));
    cr_assert(user_by(t, "ml_m", 2, &m2));
    cr_assert_eq(reel_views_posts_by_author(t, m1.id, 0, 0, 0, 2, e, &n), 0);
    cr_assert_eq(n, 1u);
    cr_assert_eq(reel_views_get_post(t, e[0].post, &p1), 0);
    cr_assert_eq(reel_views_posts_by_author(t, m2.id, 0, 0, 0, 2, e, &n), 0);
    cr_assert_eq(n, 1u);
    cr_assert_eq(reel_views_get_post(t, e[0].post, &p2), 0);
    cr_assert_eq(p1.views, 2u); /* lines 1 and 8 */
    cr_assert_eq(p1.likes, 1u); /* line 1 (line 8 rates 2) */
    cr_assert_eq(p1.created_at, 500000u);
    cr_assert_eq(p2.views, 2u); /* lines 2 and 3 */
    cr_assert_eq(p2.likes, 1u);
    cr_assert_eq(p2.created_at, 400000u);
    reel_views_read_end(t);
    reel_views_close(v);
    /* 2 users + 2 creators + 2 posts + 4 views + 2 likes. */
    cr_assert_eq(log_end(data), 12u);

    /* The title went from Latin-1 to UTF-8; the genres are the tags. */
    r = run_reel("dump", "--data", data, "--json", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.out, "\"prompt\":\"Mis\xc3\xa9rables, Les (1995)\""), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "\"tags\":[\"Action\",\"Children's\"]"), "%s", r.out);
    run_free(&r);
}

Test(import, usage_errors)
{
    run_t r = run_reel("import", "--data", data, NULL);
    cr_assert_eq(r.status, 2);
    cr_assert_not_null(strstr(r.err, "--movielens"), "%s", r.err);
    run_free(&r);
    r = run_reel("import", "--data", data, "--collegemsg", "/nonexistent/file", NULL);
    cr_assert_eq(r.status, 2);
    cr_assert_not_null(strstr(r.err, "/nonexistent/file"), "%s", r.err);
    run_free(&r);
    r = run_reel("import", "--bogus", NULL);
    cr_assert_eq(r.status, 2);
    run_free(&r);
    r = run_reel("import", "--help", NULL);
    cr_assert_eq(r.status, 0);
    cr_assert_not_null(strstr(r.out, "usage: reel import"), "%s", r.out);
    run_free(&r);
    cr_assert_eq(log_end(data), 0u);
}

/* Data sets go in time order only: an earlier one after a later one is
 * refused before anything is written, and so is a second import of the
 * same handles. */
Test(import, refuses_time_going_back_and_taken_handles)
{
    char a[PATH_MAX + 16], b[PATH_MAX + 16];
    snprintf(a, sizeof(a), "%s/a.txt", tmp);
    snprintf(b, sizeof(b), "%s/b.txt", tmp);
    write_text(a, "1 2 5000\n");
    write_text(b, "1 3 6000\n");
    run_t r = run_reel("import", "--data", data, "--collegemsg", a, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    run_free(&r);
    uint64_t before = log_end(data);
    write_text(a, "3 4 4000\n");
    r = run_reel("import", "--data", data, "--collegemsg", a, NULL);
    cr_assert_eq(r.status, 2);
    cr_assert_not_null(strstr(r.err, "time never goes back"), "%s", r.err);
    run_free(&r);
    r = run_reel("import", "--data", data, "--collegemsg", b, NULL);
    cr_assert_eq(r.status, 2);
    cr_assert_not_null(strstr(r.err, "handle cm_u1 is taken"), "%s", r.err);
    run_free(&r);
    cr_assert_eq(log_end(data), before);
}

/* Whether dir holds an entry whose name contains part. */
static bool dir_has(const char *dir, const char *part)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    bool found = false;
    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL)
        found = found || strstr(e->d_name, part) != NULL;
    closedir(d);
    return found;
}

/* NDJSON creating users y1..yN from time t0 on, with `bad` (may be NULL)
 * as line 2: a command the engine refuses, judged in the same batches as
 * the good lines behind it. */
static void write_users_file(const char *path, uint32_t n, uint64_t t0, const char *bad)
{
    size_t cap = (size_t)n * 96 + 256, len = 0;
    char *s = malloc(cap);
    cr_assert_not_null(s);
    for (uint32_t i = 1; i <= n; i++) {
        len += (size_t)snprintf(s + len, cap - len,
                                "{\"op\":\"POST /v1/users\",\"body\":{\"handle\":\"y%" PRIu32
                                "\"},\"at\":%" PRIu64 "}\n", i, t0 + i);
        if (i == 1 && bad != NULL)
            len += (size_t)snprintf(s + len, cap - len, "%s\n", bad);
    }
    write_text(path, s);
    free(s);
}

/* --strict is all or nothing, refusals included: a line the engine
 * refuses (line 2: a follow of a user that does not exist), with 2000
 * good lines behind it in flight, leaves a data directory that holds data
 * exactly as it was, and leaves no scratch copy behind; the same file
 * without the bad line then imports whole (a trial on a copy, then the
 * real run). Into a new directory a refusal leaves no directory at all. */
Test(import, strict_refused_line_imports_nothing)
{
    char first[PATH_MAX + 16], second[PATH_MAX + 16], fresh[PATH_MAX + 16];
    snprintf(first, sizeof(first), "%s/first.txt", tmp);
    snprintf(second, sizeof(second), "%s/second.ndjson", tmp);
    snprintf(fresh, sizeof(fresh), "%s/fresh", tmp);
    write_text(first, "1 2 100\n2 3 101\n");
    run_t r = run_reel("import", "--data", data, "--collegemsg", first, NULL);
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
    run_free(&r);
    uint64_t before = log_end(data);
    cr_assert_eq(before, 5u);

    const char *bad = "{\"op\":\"PUT /v1/users/1/following/99999\",\"at\":200001}";
    write_users_file(second, 2000, 200000, bad);
    r = run_reel("import", "--strict", "--data", data, "--ndjson", second, NULL);
    cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
    cr_assert_not_null(strstr(r.err, "second.ndjson:2: refused"), "%s", r.err);
    cr_assert_not_null(strstr(r.err, "nothing imported"), "%s", r.err);
    run_free(&r);
    cr_assert_eq(log_end(data), before, "--strict applied lines around a refused one");
    cr_assert(!dir_has(tmp, "strict-"), "a scratch copy was left");

    /* Into a new directory: it does not appear. */
    r = run_reel("import", "--strict", "--data", fresh, "--ndjson", second, NULL);
    cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
    run_free(&r);
    struct stat st;
    cr_assert_neq(stat(fresh, &st), 0, "--strict left %s", fresh);
    cr_assert(!dir_has(tmp, "strict-"), "a scratch copy was left");

    /* Without the bad line: the whole file, into both. */
    write_users_file(second, 2000, 200000, NULL);
    r = run_reel("import", "--strict", "--data", data, "--ndjson", second, NULL);
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
    cr_assert_not_null(strstr(r.out, "2000 commands applied, 0 refused"), "%s", r.out);
    run_free(&r);
    cr_assert_eq(log_end(data), before + 2000u);
    r = run_reel("import", "--strict", "--data", fresh, "--ndjson", second, NULL);
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
    cr_assert_not_null(strstr(r.out, "2000 commands applied, 0 refused"), "%s", r.out);
    run_free(&r);
    cr_assert_eq(log_end(fresh), 2000u);
    cr_assert(!dir_has(tmp, "strict-"), "a scratch copy was left");
    reel_views_t *v = views_open(fresh);
    reel_views_txn_t *t;
    reel_user_view_t u;
    cr_assert_eq(reel_views_read_begin(v, &t), 0);
    cr_assert(user_by(t, "y", 2000, &u), "the last line's user exists");
    reel_views_read_end(t);
    reel_views_close(v);
}
