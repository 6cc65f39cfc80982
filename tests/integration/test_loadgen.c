/*
 * test_loadgen.c: `reel loadgen`, `reel dump`'s filters and --follow, and
 * `reel import --ndjson`, run as a user runs them (fork and exec
 * $REEL_BIN/reel).
 *
 *  - loadgen is deterministic: the same seed gives the same views
 *    (views-hash), another seed other views;
 *  - the round trip loadgen -> export -> read back: the lines of each
 *    export file equal what the views count (users, posts, likes,
 *    comments, views, follows);
 *  - dump's filters agree with the export read back, --table prints a
 *    row an event, a corrupt log is an error naming `reel verify`;
 *  - dump --follow prints events appended after it started, and exits 0
 *    on SIGTERM;
 *  - loadgen --server against the real reeld: what it says the server
 *    accepted is what reeld's views count, over HTTP and on disk;
 *  - import --ndjson: good lines applied, bad ones reported by number and
 *    skipped, refusals reported, --strict writes nothing on a bad line.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/common.h"
#include "engine/datadir.h"
#include "engine/event.h"
#include "engine/log.h"
#include "engine/reel.h"
#include "tests/harness.h"

static char tmp[PATH_MAX];

static void setup(void)
{
    reel_test_tmpdir(tmp, sizeof(tmp), "loadgen");
}

static void teardown(void)
{
    if (getenv("REEL_TEST_KEEP") == NULL)
        reel_test_rmtree(tmp);
}

/* One suite timeout, no per-test ones: a per-test .timeout other than the
 * suite's makes Criterion leak 48 bytes, which fails make asan. */
TestSuite(loadgen, .init = setup, .fini = teardown, .timeout = 120);

typedef reel_test_run_t run_t;
#define run_reel(...) reel_test_reel_run(tmp, __VA_ARGS__)
#define run_free reel_test_run_free
#define slurp reel_test_slurp
#define spawn reel_test_reel_spawn

static uint64_t count_lines(const char *s)
{
    uint64_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* A small world: 300 users, 400 posts, 20,000 events. */
static void loadgen(const char *dir, const char *seed)
{
    run_t r = run_reel("loadgen", "--data", dir, "--users", "300", "--posts", "400", "--events",
                       "20000", "--follows", "10", "--seed", seed, NULL);
    cr_assert_eq(r.status, 0, "loadgen: %s", r.err);
    cr_assert(strstr(r.out, "20000 events") != NULL, "%s", r.out);
    run_free(&r);
}

static char *views_hash(const char *dir)
{
    run_t r = run_reel("views-hash", "--data", dir, NULL);
    cr_assert_eq(r.status, 0, "views-hash: %s", r.err);
    free(r.err);
    return r.out;
}

Test(loadgen, same_seed_same_views)
{
    char a[PATH_MAX + 8], b[PATH_MAX + 8], c[PATH_MAX + 8];
    snprintf(a, sizeof(a), "%s/a", tmp);
    snprintf(b, sizeof(b), "%s/b", tmp);
    snprintf(c, sizeof(c), "%s/c", tmp);
    loadgen(a, "42");
    loadgen(b, "42");
    loadgen(c, "43");
    char *ha = views_hash(a), *hb = views_hash(b), *hc = views_hash(c);
    cr_assert_str_eq(ha, hb);
    cr_assert(strstr(ha, "applied=20000") != NULL, "%s", ha);
    cr_assert_str_neq(ha, hc);
    free(ha);
    free(hb);
    free(hc);
    /* a data directory that holds events already is refused */
    run_t r = run_reel("loadgen", "--data", a, "--users", "300", "--events", "20000", NULL);
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err, "holds 20000 events") != NULL, "%s", r.err);
    run_free(&r);
    /* the views folded by loadgen equal a rebuild from its log */
    r = run_reel("rebuild", "--data", a, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    run_free(&r);
    char *again = views_hash(a);
    hb = views_hash(b);
    cr_assert_str_eq(again, hb);
    free(again);
    free(hb);
}

/* Lines of the export file of type under out (0 when absent). */
static uint64_t export_lines(const char *out, const char *type)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof(path), "%s/%s.%020d.jsonl", out, type, 0);
    if (access(path, R_OK) != 0)
        return 0;
    char *s = slurp(path);
    uint64_t n = count_lines(s);
    free(s);
    return n;
}

/* Totals the views hold, summed over every user and post. */
typedef struct totals {
    uint64_t users, posts, likes, comments, views, follows;
} totals_t;

static totals_t view_totals(const char *dir)
{
    char views_dir[PATH_MAX];
    reel_views_t *v = NULL;
    reel_views_txn_t *t = NULL;
    totals_t s = {0};
    cr_assert_eq(reel_data_views_path(dir, views_dir, sizeof(views_dir)), 0);
    cr_assert_eq(reel_views_open(views_dir, &v), 0);
    cr_assert_eq(reel_views_read_begin(v, &t), 0);
    cr_assert_eq(reel_views_last_id(t, REEL_VIEWS_ID_USER, &s.users), 0);
    cr_assert_eq(reel_views_last_id(t, REEL_VIEWS_ID_POST, &s.posts), 0);
    for (uint64_t u = 1; u <= s.users; u++) {
        reel_user_view_t uv;
        cr_assert_eq(reel_views_get_user(t, u, &uv), 0);
        s.follows += uv.followers;
    }
    for (uint64_t p = 1; p <= s.posts; p++) {
        reel_post_view_t pv;
        cr_assert_eq(reel_views_get_post(t, p, &pv), 0);
        s.likes += pv.likes;
        s.comments += pv.comments;
        s.views += pv.views;
    }
    reel_views_read_end(t);
    reel_views_close(v);
    return s;
}

Test(loadgen, round_trip_export_counts_equal_views)
{
    char dir[PATH_MAX + 8], out[PATH_MAX + 8];
    snprintf(dir, sizeof(dir), "%s/w", tmp);
    snprintf(out, sizeof(out), "%s/out", tmp);
    loadgen(dir, "5");
    run_t r = run_reel("export", "--data", dir, "--out", out, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    run_free(&r);
    totals_t s = view_totals(dir);
    cr_assert_eq(s.users, 300);
    cr_assert_eq(export_lines(out, "user.created"), s.users);
    cr_assert_eq(export_lines(out, "post.created"), s.posts);
    cr_assert_eq(s.posts, 400);
    cr_assert_eq(export_lines(out, "like.created"), s.likes);
    cr_assert_eq(export_lines(out, "comment.created"), s.comments);
    cr_assert_eq(export_lines(out, "view.recorded"), s.views);
    cr_assert_eq(export_lines(out, "follow.created"), s.follows);
    cr_assert_gt(s.likes, 0);
    cr_assert_gt(s.views, s.likes, "views are the commonest action");
    /* every generation that completed made its post, in the same group */
    cr_assert_eq(export_lines(out, "generation.requested"),
                 export_lines(out, "generation.completed"));
    cr_assert_gt(export_lines(out, "generation.completed"), 0);
    /* the sum of all files is the log */
    uint64_t all = 0;
    for (uint16_t t = 1; t <= REEL_EV_MAX; t++)
        all += export_lines(out, reel_event_type_name(t));
    cr_assert_eq(all, 20000);
}

/* The count loadgen printed for type on its "accepted:" line (0: absent). */
static uint64_t accepted(const char *out, const char *type)
{
    char key[64];
    const char *line = strstr(out, "reel loadgen: accepted:");
    cr_assert_not_null(line, "no accepted line: %s", out);
    snprintf(key, sizeof(key), " %s=", type);
    const char *p = strstr(line, key);
    return p != NULL ? strtoull(p + strlen(key), NULL, 10) : 0;
}

/* loadgen --server against the real reeld: every request accepted, and
 * what reeld's views count (over HTTP while it runs, then in the views it
 * left after a clean stop) is what loadgen says the server took. */
Test(loadgen, server_counts_equal_views)
{
    char dir[PATH_MAX + 8], url[64];
    int port = 0;
    snprintf(dir, sizeof(dir), "%s/srv", tmp);
    pid_t pid = reel_test_reeld_start(tmp, dir, NULL, &port);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
    run_t r = run_reel("loadgen", "--server", url, "--users", "60", "--posts", "80", "--events",
                       "3000", "--follows", "5", "--seed", "9", "--conns", "4", NULL);
    cr_assert_eq(r.status, 0, "loadgen: %s\n%s", r.out, r.err);
    cr_assert(strstr(r.out, " 0 failed, 0 skipped") != NULL, "%s", r.out);
    /* each phase's rate and latency percentiles */
    const char *phases[] = {"users ", "follows+posts", "activity"};
    for (int i = 0; i < 3; i++) {
        char want[64];
        snprintf(want, sizeof(want), "reel loadgen: %s", phases[i]);
        const char *line = strstr(r.out, want);
        cr_assert_not_null(line, "no %s line: %s", phases[i], r.out);
        const char *eol = strchr(line, '\n');
        const char *lat = strstr(line, "requests/s, 0 failed; latency ms p50 ");
        cr_assert(lat != NULL && lat < eol && strstr(lat, " p99 ") < eol, "%.*s",
                  (int)(eol - line), line);
    }
    uint64_t users = accepted(r.out, "user.created"), posts = accepted(r.out, "post.created");
    uint64_t likes = accepted(r.out, "like.created"), views = accepted(r.out, "view.recorded");
    uint64_t comments = accepted(r.out, "comment.created");
    uint64_t follows = accepted(r.out, "follow.created");
    cr_assert_eq(users, 60);
    cr_assert_eq(posts, 80, "generations are sent as direct posts: %s", r.out);
    cr_assert(likes > 0 && views > likes && comments > 0 && follows > 0, "%s", r.out);
    run_free(&r);
    /* Live, over HTTP: the sums over every user and post. */
    uint64_t h_likes = 0, h_views = 0, h_comments = 0, h_follows = 0;
    for (uint64_t p = 1; p <= posts; p++) {
        char path[64];
        snprintf(path, sizeof(path), "/v1/posts/%llu", (unsigned long long)p);
        reel_test_resp_t a = reel_test_http(port, "GET", path, NULL, NULL);
        cr_assert_eq(a.status, 200, "%s: %s", path, a.body);
        h_likes += (uint64_t)reel_test_jint(&a, "likes");
        h_views += (uint64_t)reel_test_jint(&a, "views");
        h_comments += (uint64_t)reel_test_jint(&a, "comments");
        reel_test_resp_free(&a);
    }
    for (uint64_t u = 1; u <= users; u++) {
        char path[64];
        snprintf(path, sizeof(path), "/v1/users/%llu", (unsigned long long)u);
        reel_test_resp_t a = reel_test_http(port, "GET", path, NULL, NULL);
        cr_assert_eq(a.status, 200, "%s: %s", path, a.body);
        h_follows += (uint64_t)reel_test_jint(&a, "followers");
        reel_test_resp_free(&a);
    }
    reel_test_resp_t none = reel_test_http(port, "GET", "/v1/users/61", NULL, NULL);
    cr_assert_eq(none.status, 404, "no user beyond those loadgen made");
    reel_test_resp_free(&none);
    cr_assert_eq(h_likes, likes);
    cr_assert_eq(h_views, views);
    cr_assert_eq(h_comments, comments);
    cr_assert_eq(h_follows, follows);
    /* After a clean stop, the views on disk say the same. */
    cr_assert_eq(reel_test_reeld_stop(pid, SIGTERM), 0);
    totals_t t = view_totals(dir);
    cr_assert_eq(t.users, users);
    cr_assert_eq(t.posts, posts);
    cr_assert_eq(t.likes, likes);
    cr_assert_eq(t.views, views);
    cr_assert_eq(t.comments, comments);
    cr_assert_eq(t.follows, follows);
}

/* Events of the export's like.created by user u (a check of --user). */
static uint64_t likes_of_user(const char *out, uint64_t u, uint64_t *last_post)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof(path), "%s/like.created.%020d.jsonl", out, 0);
    char *s = slurp(path), *save = NULL;
    uint64_t n = 0;
    for (char *l = strtok_r(s, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        json_t *j = json_loads(l, 0, NULL);
        cr_assert_not_null(j);
        if ((uint64_t)json_integer_value(json_object_get(j, "user_id")) == u) {
            n++;
            *last_post = (uint64_t)json_integer_value(json_object_get(j, "post_id"));
        }
        json_decref(j);
    }
    free(s);
    return n;
}

Test(loadgen, dump_filters)
{
    char dir[PATH_MAX + 8], out[PATH_MAX + 8], num[32];
    snprintf(dir, sizeof(dir), "%s/w", tmp);
    snprintf(out, sizeof(out), "%s/out", tmp);
    loadgen(dir, "9");
    run_t r = run_reel("export", "--data", dir, "--out", out, "--types", "like.created", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    run_free(&r);
    uint64_t post = 0, n = likes_of_user(out, 3, &post);
    cr_assert_gt(n, 0);
    /* --types and --user: user 3's likes, as the export has them */
    r = run_reel("dump", "--data", dir, "--json", "--types", "like.created", "--user", "3", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_eq(count_lines(r.out), n, "%s", r.out);
    run_free(&r);
    /* --post: every line names that post */
    snprintf(num, sizeof(num), "%llu", (unsigned long long)post);
    r = run_reel("dump", "--data", dir, "--json", "--post", num, NULL);
    cr_assert_eq(r.status, 0);
    cr_assert_gt(count_lines(r.out), 1, "post.created and the like at least");
    char want[64];
    snprintf(want, sizeof(want), "\"post_id\":%s", num);
    for (char *l = r.out; *l; l = strchr(l, '\n') + 1)
        cr_assert(strncmp(strstr(l, "\"post_id\":") ?: "", want, strlen(want)) == 0, "%.200s", l);
    run_free(&r);
    /* --from/--to with --table: a header and a row each */
    r = run_reel("dump", "--data", dir, "--table", "--from", "100", "--to", "110", NULL);
    cr_assert_eq(r.status, 0);
    cr_assert_eq(count_lines(r.out), 11, "%s", r.out);
    cr_assert(strstr(r.out, "user_id=") != NULL, "%s", r.out);
    run_free(&r);
    /* --since/--until: the synthetic clock spreads 20000 events over 7 days
     * from 2026-01-01: the first day holds about a seventh of them, and
     * its events (in groups of 256 stamped with their first time) are those
     * of the dump with the day's bounds */
    r = run_reel("dump", "--data", dir, "--json", "--since", "2026-01-01T00:00:00Z", "--until",
                 "2026-01-02T00:00:00Z", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    uint64_t day1 = count_lines(r.out);
    cr_assert(day1 > 2500 && day1 < 3300, "%llu", (unsigned long long)day1);
    run_free(&r);
    r = run_reel("dump", "--data", dir, "--json", "--since", "1767312000000", NULL);
    cr_assert_eq(r.status, 0);
    cr_assert_eq(count_lines(r.out) + day1, 20000);
    run_free(&r);
    /* bad values */
    r = run_reel("dump", "--data", dir, "--types", "nope.created", NULL);
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err, "unknown event type") != NULL, "%s", r.err);
    run_free(&r);
    r = run_reel("dump", "--data", dir, "--since", "yesterday", NULL);
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err, "not a time") != NULL, "%s", r.err);
    run_free(&r);
}

Test(loadgen, dump_corrupt_log_fails_clearly)
{
    char dir[PATH_MAX + 8], seg[PATH_MAX * 2];
    snprintf(dir, sizeof(dir), "%s/w", tmp);
    loadgen(dir, "1");
    snprintf(seg, sizeof(seg), "%s/log/%020d.seg", dir, 0);
    struct stat st;
    if (stat(seg, &st) != 0) /* the naming of segments: find the first */
        snprintf(seg, sizeof(seg), "%s/log/00000000000000000000.seg", dir);
    cr_assert_eq(stat(seg, &st), 0, "%s", seg);
    /* change one byte of a record's payload: user 150's display name
     * (searched for: where records sit depends on the batches' padding) */
    uint8_t *img;
    size_t len;
    cr_assert_eq(reel_test_read_file(seg, &img, &len), 0);
    uint8_t *hit = memmem(img, len, "User 150", 8);
    cr_assert_not_null(hit, "user 150's name is in the first segment");
    int fd = open(seg, O_RDWR);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pwrite(fd, "X", 1, hit - img), 1);
    close(fd);
    free(img);
    run_t r = run_reel("dump", "--data", dir, "--types", "user.created", NULL);
    cr_assert_eq(r.status, 2, "out: %.300s err: %s", r.out, r.err);
    cr_assert(strstr(r.err, "reel verify") != NULL, "%s", r.err);
    run_free(&r);
}

/* Waits (bounded) until path holds needle: the tail's output is the
 * condition waited for, polled. */
static bool wait_for_text(const char *path, const char *needle, int seconds)
{
    struct timespec ts = {0, 20 * 1000 * 1000};
    for (int i = 0; i < seconds * 50; i++) {
        uint8_t *data;
        size_t len;
        if (reel_test_read_file(path, &data, &len) == 0) {
            data[len] = '\0';
            bool found = strstr((char *)data, needle) != NULL;
            free(data);
            if (found)
                return true;
        }
        nanosleep(&ts, NULL);
    }
    return false;
}

Test(loadgen, dump_follow_tails_and_stops_on_sigterm)
{
    char dir[PATH_MAX + 8], out[PATH_MAX + 16], err[PATH_MAX + 16], msg[256];
    reel_engine_t *e = NULL;
    reel_engine_options_t eo = {0};
    snprintf(dir, sizeof(dir), "%s/live", tmp);
    snprintf(out, sizeof(out), "%s/follow.out", tmp);
    snprintf(err, sizeof(err), "%s/follow.err", tmp);
    cr_assert_eq(reel_engine_open(dir, &eo, &e, msg, sizeof(msg)), 0, "%s", msg);
    reel_cmd_result_t res = reel_test_cmd(e, REEL_CMD_USER_CREATE, 0,
                                          (reel_event_t){.handle = {"first", 5}});
    reel_test_expect(res, 201, NULL);
    const char *args[] = {"dump", "--data", dir, "--follow", "--types", "user.created", NULL};
    pid_t pid = spawn(args, out, err);
    cr_assert(wait_for_text(out, "\"handle\":\"first\"", 20), "the dump shows the first");
    res = reel_test_cmd(e, REEL_CMD_USER_CREATE, 0, (reel_event_t){.handle = {"second", 6}});
    reel_test_expect(res, 201, NULL);
    cr_assert(wait_for_text(out, "\"handle\":\"second\"", 20), "the tail shows the new one");
    cr_assert_eq(kill(pid, SIGTERM), 0);
    int ws;
    cr_assert_eq(waitpid(pid, &ws, 0), pid);
    cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "exit on SIGTERM: %d", ws);
    cr_assert_eq(reel_engine_close(e), 0);
}

static void write_text(const char *path, const char *s)
{
    cr_assert_eq(reel_test_write_file(path, s, strlen(s)), 0);
}

static const char *nd_good =
    "{\"op\":\"POST /v1/users\",\"body\":{\"handle\":\"ann\"},\"at\":1700000000000}\n"
    "{\"op\":\"POST /v1/users\",\"body\":{\"handle\":\"ben\"},\"at\":1700000001000,"
    "\"idempotency_key\":\"k1\"}\n"
    "\n"
    "{\"op\":\"PUT /v1/users/2/following/1\",\"at\":1700000002000}\n"
    "{\"op\":\"POST /v1/posts\",\"body\":{\"author\":1,\"video_uri\":\"u\",\"prompt\":\"p\"},"
    "\"at\":1700000003000}\n"
    "{\"op\":\"PUT /v1/posts/1/likes/2\",\"at\":1700000004000}\n";

Test(loadgen, import_ndjson)
{
    char dir[PATH_MAX + 8], file[PATH_MAX + 16], bad[PATH_MAX + 16];
    snprintf(dir, sizeof(dir), "%s/nd", tmp);
    snprintf(file, sizeof(file), "%s/good.ndjson", tmp);
    snprintf(bad, sizeof(bad), "%s/bad.ndjson", tmp);
    write_text(file, nd_good);
    /* --strict on a file with a bad line (6: op is a read; 7: time goes
     * back; 8: not JSON): nothing written at all */
    char *mixed = NULL;
    cr_assert_geq(asprintf(&mixed, "%s%s", nd_good,
                           "{\"op\":\"GET /v1/users/1\",\"at\":1700000005000}\n"
                           "{\"op\":\"PUT /v1/posts/1/likes/1\",\"at\":1600000000000}\n"
                           "not json\n"
                           "{\"op\":\"PUT /v1/posts/9/likes/1\",\"at\":1700000006000}\n"
                           "{\"op\":\"PUT /v1/posts/1/likes/1\",\"at\":1700000007000}\n"), 0);
    write_text(bad, mixed);
    free(mixed);
    run_t r = run_reel("import", "--data", dir, "--ndjson", bad, "--strict", NULL);
    cr_assert_eq(r.status, 1, "%s", r.err);
    cr_assert(strstr(r.err, "bad.ndjson:7:") != NULL, "names the line: %s", r.err);
    cr_assert(strstr(r.err, "nothing imported") != NULL, "%s", r.err);
    run_free(&r);
    r = run_reel("dump", "--data", dir, NULL);
    cr_assert_eq(count_lines(r.out), 0, "nothing written: %s", r.out);
    run_free(&r);
    /* without --strict: bad lines skipped and reported, the refusal (post
     * 9 does not exist) reported, the rest applied with their times */
    r = run_reel("import", "--data", dir, "--ndjson", bad, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.err, "bad.ndjson:7:") != NULL, "%s", r.err);
    cr_assert(strstr(r.err, "bad.ndjson:8:") != NULL, "%s", r.err);
    cr_assert(strstr(r.err, "bad.ndjson:9:") != NULL, "%s", r.err);
    cr_assert(strstr(r.err, "bad.ndjson:10: refused") != NULL, "%s", r.err);
    cr_assert(strstr(r.out, "6 commands applied, 1 refused") != NULL, "%s", r.out);
    run_free(&r);
    r = run_reel("dump", "--data", dir, "--json", "--types", "like.created", NULL);
    cr_assert_eq(count_lines(r.out), 2, "%s", r.out);
    cr_assert(strstr(r.out, "\"at\":1700000004000") != NULL, "the line's own time: %s", r.out);
    cr_assert(strstr(r.out, "\"at\":1700000007000") != NULL, "%s", r.out);
    run_free(&r);
    /* the same file again: every creation's handle is taken now, the key
     * k1 replays; and the times go back, which the import refuses first */
    r = run_reel("import", "--data", dir, "--ndjson", file, NULL);
    cr_assert_eq(r.status, 2, "%s", r.err);
    cr_assert(strstr(r.err, "time never goes back") != NULL, "%s", r.err);
    run_free(&r);
    /* --strict and a refusal: exit 1, the line named, nothing imported:
     * the new data directory does not appear */
    char dir2[PATH_MAX + 8];
    struct stat st;
    snprintf(dir2, sizeof(dir2), "%s/nd2", tmp);
    write_text(file, "{\"op\":\"POST /v1/users\",\"body\":{\"handle\":\"aa\"},\"at\":5}\n"
                     "{\"op\":\"PUT /v1/users/1/following/7\",\"at\":6}\n");
    r = run_reel("import", "--data", dir2, "--ndjson", file, "--strict", NULL);
    cr_assert_eq(r.status, 1, "%s", r.err);
    cr_assert(strstr(r.err, ":2: refused") != NULL, "%s", r.err);
    cr_assert(strstr(r.err, "nothing imported") != NULL, "%s", r.err);
    run_free(&r);
    cr_assert_neq(stat(dir2, &st), 0, "--strict left %s", dir2);
}

/* With REEL_PROGRESS=1 (stderr as if a terminal) loadgen draws its
 * progress line, writing the log then folding the views, and so does
 * import; without it, on a file, neither draws. */
Test(loadgen, progress_lines)
{
    char dir[PATH_MAX + 8], file[PATH_MAX + 16], nd[PATH_MAX + 8];
    snprintf(dir, sizeof(dir), "%s/p", tmp);
    snprintf(nd, sizeof(nd), "%s/pnd", tmp);
    snprintf(file, sizeof(file), "%s/p.ndjson", tmp);
    write_text(file, nd_good);
    setenv("REEL_PROGRESS", "1", 1);
    run_t r = run_reel("loadgen", "--data", dir, "--users", "50", "--posts", "40", "--events",
                       "2000", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.err, "\r  2000 / 2000 events (100%)") != NULL, "%s", r.err);
    cr_assert(strstr(r.err, "events folded/s") != NULL, "%s", r.err);
    run_free(&r);
    r = run_reel("import", "--data", nd, "--ndjson", file, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.err, "commands/s") != NULL && strstr(r.err, "(100%)") != NULL, "%s",
              r.err);
    run_free(&r);
    unsetenv("REEL_PROGRESS");
    r = run_reel("stat", "--data", dir, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strchr(r.err, '\r') == NULL, "%s", r.err);
    run_free(&r);
}

/* The world at loadgen's default sizes (100,000 users, 1,000,000
 * events; --no-views: only the log is looked at): followers are Zipf-
 * distributed, so a few creators have tens of thousands of followers
 * while the typical user has a handful. Counted from the log's
 * follow.created events. */
Test(loadgen, default_world_has_creators_with_tens_of_thousands)
{
    char dir[PATH_MAX + 8], log_dir[PATH_MAX + 16];
    snprintf(dir, sizeof(dir), "%s/def", tmp);
    run_t r = run_reel("loadgen", "--data", dir, "--no-views", NULL);
    cr_assert_eq(r.status, 0, "loadgen: %s", r.err);
    cr_assert(strstr(r.out, "1000000 events (100000 users,") != NULL, "%s", r.out);
    run_free(&r);
    enum { USERS = 100000 };
    uint32_t *followers = calloc(USERS + 1, sizeof(*followers));
    cr_assert_not_null(followers);
    snprintf(log_dir, sizeof(log_dir), "%s/log", dir);
    reel_log_t *log = NULL;
    reel_log_iter_t *it = NULL;
    reel_log_options_t lo = {.read_only = true};
    reel_record_t rec;
    cr_assert_eq(reel_log_open(log_dir, &lo, &log, NULL, 0), 0);
    cr_assert_eq(reel_log_iter_open(log, 0, &it), 0);
    int rc;
    while ((rc = reel_log_iter_next(it, &rec)) == 0) {
        reel_event_t ev;
        cr_assert_eq(reel_event_decode(rec.type, rec.payload, rec.length, &ev), 0);
        if (ev.type == REEL_EV_FOLLOW_CREATED) {
            cr_assert(ev.target >= 1 && ev.target <= USERS);
            followers[ev.target]++;
        }
    }
    cr_assert_eq(rc, REEL_EEND);
    reel_log_iter_close(it);
    cr_assert_eq(reel_log_close(log), 0);
    /* The three largest counts, and how many users have at most 5. */
    uint32_t top[3] = {0, 0, 0}, few = 0;
    for (uint32_t u = 1; u <= USERS; u++) {
        uint32_t n = followers[u];
        few += n <= 5;
        for (int k = 0; k < 3; k++) {
            if (n > top[k]) {
                uint32_t t = top[k];
                top[k] = n;
                n = t;
            }
        }
    }
    free(followers);
    cr_assert_geq(top[0], 20000, "the first creator has %u followers", top[0]);
    cr_assert_geq(top[2], 10000, "the third creator has %u followers", top[2]);
    cr_assert_gt(few, USERS / 2, "most users have a handful: %u of %u have at most 5", few,
                 (unsigned)USERS);
}

/* Options out of range or a bad --server are refused before anything is
 * made or sent: no data directory appears. */
Test(loadgen, bad_options_create_nothing)
{
    char dir[PATH_MAX + 8];
    struct stat st;
    snprintf(dir, sizeof(dir), "%s/never", tmp);
    const char *cases[][8] = {
        {"--data", dir, "--users", "1", NULL},
        {"--data", dir, "--users", "100", "--events", "50", NULL},
        {"--data", dir, "--users", "10", "--events", "100", "--group", "0"},
        {"--data", dir, "--mix", "view=0", "--users", "10", "--events", "100"},
        {"--data", dir, "--users", "ten", NULL},
        {"--server", "notaurl", "--users", "10", "--events", "100", NULL},
        {"--server", "http://127.0.0.1", "--users", "10", "--events", "100", NULL},
    };
    const char *says[] = {"out of range", "out of range", "out of range", "out of range",
                          "--users needs a number", "is not http://HOST:PORT",
                          "is not http://HOST:PORT"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *const *a = cases[i];
        run_t r = run_reel("loadgen", a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], NULL);
        cr_assert_eq(r.status, 2, "case %zu: %s", i, r.err);
        cr_assert(strstr(r.err, says[i]) != NULL, "case %zu: %s", i, r.err);
        run_free(&r);
        cr_assert_neq(stat(dir, &st), 0, "case %zu made %s", i, dir);
    }
}

/* Generation bursts stay within the API's quota (30 a user in any 24 h):
 * two users, every post through a generation, 2,000 posts in two days,
 * so the cap (not the world's size) is what bounds them; the posts past
 * it are direct posts. And inspect, in the form `reel inspect DIR
 * generation ID --history`: the record and every event of the generation. */
Test(loadgen, generations_within_the_quota_and_inspect_generation)
{
    char dir[PATH_MAX + 8], out[PATH_MAX + 8], path[PATH_MAX * 2];
    snprintf(dir, sizeof(dir), "%s/q", tmp);
    snprintf(out, sizeof(out), "%s/qout", tmp);
    run_t r = run_reel("loadgen", "--data", dir, "--users", "2", "--posts", "2000", "--events",
                       "20000", "--days", "2", "--gen-pct", "100", "--seed", "4", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    run_free(&r);
    r = run_reel("export", "--data", dir, "--out", out, "--types",
                 "generation.requested,post.created", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    run_free(&r);
    snprintf(path, sizeof(path), "%s/generation.requested.%020d.jsonl", out, 0);
    char *s = slurp(path), *save = NULL;
    enum { MAXG = 4096 };
    static uint64_t at[3][MAXG];
    uint32_t n[3] = {0, 0, 0}, worst = 0;
    for (char *l = strtok_r(s, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        json_t *j = json_loads(l, 0, NULL);
        cr_assert_not_null(j);
        uint64_t u = (uint64_t)json_integer_value(json_object_get(j, "user_id"));
        cr_assert(u == 1 || u == 2);
        cr_assert_lt(n[u], MAXG);
        at[u][n[u]++] = (uint64_t)json_integer_value(json_object_get(j, "at"));
        json_decref(j);
    }
    free(s);
    for (int u = 1; u <= 2; u++) /* the most requests in any 24 h window */
        for (uint32_t i = 0, k = 0; i < n[u]; i++) {
            while (at[u][i] - at[u][k] >= 86400000ull)
                k++;
            worst = i - k + 1 > worst ? i - k + 1 : worst;
        }
    cr_assert_leq(worst, 30, "a user requested %u generations in 24 h", worst);
    cr_assert_geq(worst, 15, "the cap binds: %u", worst);
    snprintf(path, sizeof(path), "%s/post.created.%020d.jsonl", out, 0);
    s = slurp(path);
    cr_assert_eq(count_lines(s), 2000);
    cr_assert_lt(n[1] + n[2], 2000, "past the quota, posts are direct");
    free(s);

    r = run_reel("inspect", dir, "generation", "1", "--history", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strncmp(r.out, "{\"kind\":\"generation\"", 20) == 0, "%s", r.out);
    cr_assert(strstr(r.out, "\"status\":\"completed\"") != NULL, "%s", r.out);
    const char *steps[] = {"generation.requested", "generation.claimed", "generation.completed",
                           "post.created"};
    const char *p = strchr(r.out, '\n');
    for (int i = 0; i < 4; i++) { /* in log order */
        char want[64];
        snprintf(want, sizeof(want), "\"type\":\"%s\"", steps[i]);
        p = strstr(p, want);
        cr_assert_not_null(p, "%s missing or out of order: %s", steps[i], r.out);
    }
    run_free(&r);
    r = run_reel("inspect", dir, "widget", "1", NULL);
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err, "expected user, post or generation") != NULL, "%s", r.err);
    run_free(&r);
}
