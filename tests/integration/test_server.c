/*
 * test_server.c: reeld as clients meet it. Each test starts the real
 * $REEL_BIN/reeld on a free loopback port (--listen 127.0.0.1:0; the bound
 * port is read from its "listening on" line) with a fresh data directory,
 * and speaks raw HTTP/1.1 over sockets: every endpoint of the contract,
 * its error codes, pagination cursors, pipelining, chunked bodies, the
 * transport's limits (431, 413, 400, 505), slow clients, token scopes,
 * idempotency keys, and durability across kill -9.
 *
 * No sleep synchronises anything: readiness is polled with bounded loops
 * (the "listening" line, a socket read with a deadline).
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/harness.h"

#define IO_TIMEOUT_MS 10000

static char tmp[PATH_MAX];
static char data_dir[PATH_MAX + 8];
static pid_t srv_pid = -1;
static int srv_port;

static void setup(void)
{
    reel_test_tmpdir(tmp, sizeof(tmp), "srv");
    snprintf(data_dir, sizeof(data_dir), "%s/data", tmp);
    signal(SIGPIPE, SIG_IGN);
}

static void teardown(void)
{
    if (srv_pid > 0) {
        reel_test_child_end(srv_pid);
        srv_pid = -1;
    }
    reel_test_rmtree(tmp);
}

TestSuite(server, .init = setup, .fini = teardown, .timeout = 120);

/* The shared helpers (tests/harness.h) on this file's reeld. */
typedef reel_test_resp_t resp_t;
#define now_ms reel_test_now_ms
#define send_all reel_test_http_send
#define read_until_close reel_test_http_read
#define answer_len reel_test_http_answer_len
#define parse_resp reel_test_resp_parse
#define resp_free reel_test_resp_free
#define jint reel_test_jint
#define jerr reel_test_jerr

/* Starts reeld with the extra arguments (NULL-terminated) on a free port. */
#define srv_start(...) srv_start_argv((const char *const[]){__VA_ARGS__})
static void srv_start_argv(const char *const *extra)
{
    srv_pid = reel_test_reeld_start(tmp, data_dir, extra, &srv_port);
}

/* Sends sig and waits: the exit status, or -1 when killed by a signal. */
static int srv_stop(int sig)
{
    int rc = reel_test_reeld_stop(srv_pid, sig);
    srv_pid = -1;
    return rc;
}

/* A connected socket, or -1 (no assertion: usable from threads). */
static int conn_try(void)
{
    return reel_test_http_connect(srv_port);
}

static int conn_open(void)
{
    int fd = conn_try();
    cr_assert_geq(fd, 0, "connect: %s", strerror(errno));
    return fd;
}

/* Raw bytes on their own connection; what comes back until close. */
static char *raw_exchange(const char *data, size_t len)
{
    int fd = conn_open();
    send_all(fd, data, len);
    char *raw = read_until_close(fd, IO_TIMEOUT_MS, NULL, NULL);
    close(fd);
    return raw;
}

/* One request on its own connection; headers: extra lines or NULL. */
static resp_t http(const char *method, const char *path, const char *body, const char *headers)
{
    return reel_test_http(srv_port, method, path, body, headers);
}

/* Asserts status and (for errors) the code; frees r. */
static void expect(resp_t r, int status, const char *code)
{
    cr_expect_eq(r.status, status, "status %d, want %d: %s", r.status, status, r.raw);
    if (code != NULL)
        cr_expect_str_eq(jerr(&r, "code"), code, "%s", r.body);
    resp_free(&r);
}

/* A write that must succeed; returns the named id (or offset when NULL). */
static long long ok(const char *method, const char *path, const char *body, const char *idkey)
{
    resp_t r = http(method, path, body, NULL);
    cr_assert(r.status >= 200 && r.status < 300, "%s %s: %s", method, path, r.raw);
    long long v = idkey ? jint(&r, idkey) : 0;
    resp_free(&r);
    return v;
}

static long long new_user(const char *handle)
{
    char body[128];
    snprintf(body, sizeof(body), "{\"handle\":\"%s\"}", handle);
    return ok("POST", "/v1/users", body, "user_id");
}

static long long new_post(long long author, const char *prompt)
{
    char body[512];
    snprintf(body, sizeof(body),
             "{\"author\":%lld,\"video_uri\":\"s3://v/%s\",\"prompt\":\"%s\",\"tags\":[\"t\"]}",
             author, prompt, prompt);
    return ok("POST", "/v1/posts", body, "post_id");
}

/* ---- the API ---- */

/* A post by author with a prompt and one tag. */
static long long tagged_post(long long author, const char *prompt, const char *tag)
{
    char body[512];
    snprintf(body, sizeof(body),
             "{\"author\":%lld,\"video_uri\":\"s3://v\",\"prompt\":\"%s\",\"tags\":[\"%s\"]}",
             author, prompt, tag);
    return ok("POST", "/v1/posts", body, "post_id");
}

/* The posts of a feed page (at most cap) and how many are in want[]. */
static size_t page_posts(const char *path, long long *ids, size_t cap, const long long *want,
                         size_t nwant, size_t *hits)
{
    resp_t r = http("GET", path, NULL, NULL);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    json_t *items = json_object_get(r.json, "items");
    size_t n = 0;
    *hits = 0;
    for (size_t i = 0; i < json_array_size(items) && n < cap; i++) {
        ids[n] = json_integer_value(json_object_get(json_array_get(items, i), "post_id"));
        for (size_t j = 0; j < nwant; j++)
            *hits += ids[n] == want[j];
        n++;
    }
    resp_free(&r);
    return n;
}

/* for_you over HTTP is ranked by the index, which follows every write at
 * once: likes and completed views of dachshund clips fill the next page
 * with dachshunds (never the liked ones), not_interested takes one away,
 * and trending tags count the posts. */
Test(server, for_you_is_ranked_and_learns)
{
    srv_start(NULL);
    static const char *const topics[][2] = {{"dachshund puppy running on the beach", "dogs"},
                                            {"jazz trio playing at night", "jazz"},
                                            {"rocket launch into orbit", "space"},
                                            {"pasta cooking in a small kitchen", "cooking"}};
    char h[32], path[128], body[256];
    long long viewer = new_user("viewer"), authors[8], dogs[16];
    size_t ndogs = 0;
    for (int i = 0; i < 8; i++) {
        snprintf(h, sizeof h, "creator%d", i);
        authors[i] = new_user(h);
    }
    for (int i = 0; i < 32; i++) { /* 8 posts a topic, authors spread */
        long long p = tagged_post(authors[i % 8], topics[i % 4][0], topics[i % 4][1]);
        if (i % 4 == 0)
            dogs[ndogs++] = p;
    }
    for (int i = 0; i < 3; i++) { /* likes and completed views of three dachshund clips */
        snprintf(path, sizeof path, "/v1/posts/%lld/likes/%lld", dogs[i], viewer);
        ok("PUT", path, NULL, NULL);
        snprintf(body, sizeof body, "{\"user\":%lld,\"post\":%lld,\"watch_ms\":9000,"
                 "\"completed\":true}", viewer, dogs[i]);
        ok("POST", "/v1/views", body, NULL);
    }
    long long ids[20];
    size_t hits;
    snprintf(path, sizeof path, "/v1/users/%lld/feed?limit=8", viewer);
    size_t n = page_posts(path, ids, 20, dogs, ndogs, &hits);
    cr_assert_eq(n, 8);
    cr_expect_geq(hits, 4, "%zu of 8 are dachshunds", hits);
    cr_expect_lt(hits, 8, "not only dachshunds (exploration)");
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < 3; j++)
            cr_expect_neq(ids[i], dogs[j], "a liked post came back");
    /* not_interested on a dachshund clip of the page: not on the next page */
    long long marked = 0;
    for (size_t i = 0; i < n && marked == 0; i++)
        for (size_t j = 3; j < ndogs; j++)
            if (ids[i] == dogs[j])
                marked = ids[i];
    cr_assert_neq(marked, 0);
    snprintf(body, sizeof body, "{\"user\":%lld,\"post\":%lld,\"kind\":\"not_interested\"}",
             viewer, marked);
    ok("POST", "/v1/feedback", body, NULL);
    n = page_posts(path, ids, 20, &marked, 1, &hits);
    cr_expect_eq(hits, 0, "a post marked not_interested came back");
    resp_t r = http("GET", "/v1/tags/trending?limit=4", NULL, NULL);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    json_t *items = json_object_get(r.json, "items");
    cr_expect_eq(json_array_size(items), 4, "%s", r.body);
    bool dogs_tag = false;
    for (size_t i = 0; i < json_array_size(items); i++) {
        json_t *it = json_array_get(items, i);
        cr_expect_eq(json_integer_value(json_object_get(it, "posts")), 8, "%s", r.body);
        dogs_tag |= strcmp(json_string_value(json_object_get(it, "tag")), "dogs") == 0;
    }
    cr_expect(dogs_tag, "%s", r.body);
    resp_free(&r);
}

Test(server, users_profiles_and_errors)
{
    srv_start(NULL);
    resp_t r = http("POST", "/v1/users", "{\"handle\":\"Ava.B\",\"display_name\":\"Ava\"}", NULL);
    cr_assert_eq(r.status, 201, "%s", r.raw);
    long long ava = jint(&r, "user_id");
    cr_expect_geq(jint(&r, "offset"), 0);
    resp_free(&r);
    expect(http("POST", "/v1/users", "{\"handle\":\"ava.b\"}", NULL), 409, "handle_taken");
    expect(http("POST", "/v1/users", "{}", NULL), 400, "missing_field");
    expect(http("POST", "/v1/users", "{\"handle\":7}", NULL), 400, "bad_field");
    expect(http("POST", "/v1/users", "{\"handle\":", NULL), 400, "bad_json");
    expect(http("POST", "/v1/users", "[1]", NULL), 400, "bad_json");
    r = http("GET", "/v1/users/1", NULL, NULL);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_expect_eq(jint(&r, "user_id"), ava);
    cr_expect_str_eq(json_string_value(json_object_get(r.json, "handle")), "ava.b");
    cr_expect_str_eq(json_string_value(json_object_get(r.json, "cameo_policy")), "only_me");
    cr_expect_eq(jint(&r, "invites_left"), 4);
    resp_free(&r);
    expect(http("GET", "/v1/handles/AVA.B", NULL, NULL), 200, NULL);
    expect(http("GET", "/v1/handles/nobody", NULL, NULL), 404, "not_found");
    expect(http("GET", "/v1/users/999", NULL, NULL), 404, "not_found");
    expect(http("GET", "/v1/users/abc", NULL, NULL), 400, "bad_field");
    expect(http("GET", "/v1/users/0", NULL, NULL), 400, "bad_field");
    expect(http("GET", "/v1/users/-1", NULL, NULL), 400, "bad_field");
    expect(http("GET", "/v1/users/9007199254740992", NULL, NULL), 400, "bad_field");
    expect(http("GET", "/v1/users/99999999999999999999999", NULL, NULL), 400, "bad_field");
    expect(http("PUT", "/v1/users/1/following/abc", NULL, NULL), 400, "bad_field");
    expect(http("POST", "/v1/users/1", NULL, NULL), 405, "method_not_allowed");
    expect(http("GET", "/v1/nothing", NULL, NULL), 404, "not_found");
    expect(http("PATCH", "/v1/users/1", "{\"display_name\":\"A. B.\"}", NULL), 200, NULL);
    expect(http("PATCH", "/v1/users/1", "{\"display_name\":[]}", NULL), 400, "bad_field");
    r = http("POST", "/v1/users/1/invites", NULL, NULL);
    cr_expect_eq(r.status, 201, "%s", r.raw);
    cr_expect(json_is_string(json_object_get(r.json, "code")), "%s", r.body);
    resp_free(&r);
    expect(http("POST", "/v1/posts", "{\"author\":1,\"video_uri\":\"u\",\"prompt\":\"p\","
                "\"cameos\":[1,\"x\"]}", NULL), 400, "bad_field");
    r = http("POST", "/v1/posts", "{\"author\":1,\"video_uri\":\"u\"}", NULL);
    cr_expect_eq(r.status, 400);
    cr_expect_str_eq(jerr(&r, "code"), "missing_field");
    cr_expect_str_eq(jerr(&r, "field"), "prompt");
    resp_free(&r);
    expect(http("DELETE", "/v1/users/1", NULL, NULL), 200, NULL);
    expect(http("GET", "/v1/users/1", NULL, NULL), 404, "not_found");
}

Test(server, graph_and_pagination)
{
    srv_start(NULL);
    long long a = new_user("alice");
    char path[128];
    for (int i = 0; i < 5; i++) {
        char h[16];
        snprintf(h, sizeof(h), "fan%d", i);
        long long f = new_user(h);
        snprintf(path, sizeof(path), "/v1/users/%lld/following/%lld", f, a);
        ok("PUT", path, NULL, NULL);
    }
    /* Following twice appends nothing: offset null. */
    resp_t r = http("PUT", path, NULL, NULL);
    cr_expect_eq(r.status, 200);
    cr_expect(json_is_null(json_object_get(r.json, "offset")), "%s", r.body);
    resp_free(&r);
    /* Pages of 2 through the cursor: 5 distinct followers, then null. */
    char cursor[64] = "";
    int seen = 0;
    for (int page = 0; page < 4; page++) {
        snprintf(path, sizeof(path), "/v1/users/%lld/followers?limit=2%s%s", a,
                 cursor[0] ? "&cursor=" : "", cursor);
        r = http("GET", path, NULL, NULL);
        cr_assert_eq(r.status, 200, "%s", r.raw);
        seen += (int)json_array_size(json_object_get(r.json, "items"));
        json_t *nc = json_object_get(r.json, "next_cursor");
        if (json_is_null(nc)) {
            resp_free(&r);
            break;
        }
        snprintf(cursor, sizeof(cursor), "%s", json_string_value(nc));
        resp_free(&r);
    }
    cr_expect_eq(seen, 5);
    expect(http("GET", "/v1/users/1/followers?cursor=zz", NULL, NULL), 400, "bad_field");
    expect(http("GET", "/v1/users/1/followers?limit=0", NULL, NULL), 400, "bad_field");
    expect(http("GET", "/v1/users/1/followers?limit=100000", NULL, NULL), 200, NULL);
    ok("PUT", "/v1/users/1/following/2", NULL, NULL);
    r = http("GET", "/v1/users/1/friends", NULL, NULL);
    cr_expect_eq(r.status, 200);
    cr_expect_eq(json_array_size(json_object_get(r.json, "items")), 1, "%s", r.body);
    resp_free(&r);
    r = http("GET", "/v1/users/2/following", NULL, NULL);
    cr_expect_eq(json_array_size(json_object_get(r.json, "items")), 1, "%s", r.body);
    resp_free(&r);
    ok("PUT", "/v1/users/3/blocks/1", NULL, NULL);
    expect(http("PUT", "/v1/users/1/following/3", NULL, NULL), 403, "blocked");
    expect(http("DELETE", "/v1/users/3/blocks/1", NULL, NULL), 200, NULL);
    expect(http("DELETE", "/v1/users/1/following/2", NULL, NULL), 200, NULL);
}

Test(server, posts_likes_comments_feeds)
{
    srv_start(NULL);
    long long a = new_user("author1"), b = new_user("reader1");
    ok("PUT", "/v1/users/2/following/1", NULL, NULL);
    long long p1 = new_post(a, "first");
    long long p2 = new_post(a, "second");
    char body[256], path[128];
    snprintf(body, sizeof(body), "{\"author\":%lld,\"video_uri\":\"u\",\"prompt\":\"r\","
             "\"remix_of\":%lld}", b, p1);
    long long rx = ok("POST", "/v1/posts", body, "post_id");
    snprintf(path, sizeof(path), "/v1/posts/%lld/likes/%lld", p1, b);
    ok("PUT", path, NULL, NULL);
    snprintf(path, sizeof(path), "/v1/posts/%lld/comments", p1);
    long long c1 = ok("POST", path, "{\"author\":2,\"text\":\"nice\"}", "comment_id");
    expect(http("POST", path, "{\"author\":2,\"text\":\"\"}", NULL), 400, "bad_field");
    resp_t r = http("GET", "/v1/posts/1", NULL, NULL);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_expect_eq(jint(&r, "likes"), 1);
    cr_expect_eq(jint(&r, "comments"), 1);
    cr_expect_eq(jint(&r, "remixes"), 1);
    cr_expect_str_eq(json_string_value(json_object_get(r.json, "prompt")), "first");
    cr_expect_str_eq(json_string_value(json_object_get(r.json, "visibility")), "public");
    resp_free(&r);
    snprintf(path, sizeof(path), "/v1/posts/%lld/remixes", p1);
    r = http("GET", path, NULL, NULL);
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(json_object_get(r.json,
                 "items"), 0), "post_id")), rx, "%s", r.body);
    resp_free(&r);
    snprintf(path, sizeof(path), "/v1/posts/%lld/comments", p1);
    r = http("GET", path, NULL, NULL);
    cr_expect_eq(json_array_size(json_object_get(r.json, "items")), 1, "%s", r.body);
    resp_free(&r);
    r = http("GET", "/v1/users/2/feed?kind=following", NULL, NULL);
    json_t *items = json_object_get(r.json, "items");
    cr_assert_eq(json_array_size(items), 2, "%s", r.body);
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(items, 0), "post_id")), p2);
    resp_free(&r);
    r = http("GET", "/v1/users/2/feed", NULL, NULL); /* for_you: not own, not liked */
    items = json_object_get(r.json, "items");
    cr_expect_eq(json_array_size(items), 1, "%s", r.body);
    resp_free(&r);
    expect(http("GET", "/v1/users/2/feed?kind=sideways", NULL, NULL), 400, "bad_field");
    r = http("GET", "/v1/leaderboard?by=likes", NULL, NULL);
    cr_expect_eq(json_array_size(json_object_get(r.json, "items")), 1, "%s", r.body);
    resp_free(&r);
    expect(http("GET", "/v1/leaderboard?by=height", NULL, NULL), 400, "bad_field");
    expect(http("GET", "/v1/tags/trending", NULL, NULL), 200, NULL);
    ok("POST", "/v1/views", "{\"user\":2,\"post\":1,\"watch_ms\":1500}", NULL);
    expect(http("POST", "/v1/views", "{\"user\":2,\"post\":1}", NULL), 400, "missing_field");
    ok("POST", "/v1/feedback", "{\"user\":2,\"post\":2,\"kind\":\"see_less\"}", NULL);
    expect(http("POST", "/v1/feedback", "{\"user\":2,\"post\":2,\"kind\":\"meh\"}", NULL), 400,
           "bad_field");
    snprintf(path, sizeof(path), "/v1/comments/%lld", c1);
    expect(http("DELETE", path, NULL, NULL), 200, NULL);
    snprintf(path, sizeof(path), "/v1/posts/%lld", p2);
    expect(http("DELETE", path, NULL, NULL), 200, NULL);
    expect(http("GET", path, NULL, NULL), 404, "not_found");
    /* A draft, published later; listed for its author with include_drafts=1. */
    long long d = ok("POST", "/v1/posts", "{\"author\":1,\"video_uri\":\"u\",\"prompt\":\"d\","
                     "\"visibility\":\"draft\"}", "post_id");
    r = http("GET", "/v1/users/1/posts?include_drafts=1", NULL, NULL);
    cr_expect_eq(json_array_size(json_object_get(r.json, "items")), 2, "%s", r.body);
    resp_free(&r);
    snprintf(path, sizeof(path), "/v1/posts/%lld/publish", d);
    expect(http("POST", path, NULL, NULL), 200, NULL);
}

Test(server, cameos_and_consent)
{
    srv_start(NULL);
    new_user("owner1");
    new_user("friend1");
    ok("PUT", "/v1/users/1/cameo", "{\"asset\":\"s3://c/1\"}", NULL);
    expect(http("PUT", "/v1/users/1/cameo/policy", "{\"policy\":\"sometimes\"}", NULL), 400,
           "bad_field");
    resp_t r = http("GET", "/v1/users/1/cameo/can-use?user=2", NULL, NULL);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_expect(json_is_false(json_object_get(r.json, "allowed")), "%s", r.body);
    cr_expect_str_eq(json_string_value(json_object_get(r.json, "reason")), "only_me");
    resp_free(&r);
    expect(http("GET", "/v1/users/1/cameo/can-use", NULL, NULL), 400, "missing_field");
    r = http("POST", "/v1/posts", "{\"author\":2,\"video_uri\":\"u\",\"prompt\":\"p\","
             "\"cameos\":[1]}", NULL);
    cr_expect_eq(r.status, 403, "%s", r.raw);
    cr_expect_str_eq(jerr(&r, "code"), "cameo_not_allowed");
    cr_expect_str_eq(jerr(&r, "field"), "cameos[0]");
    resp_free(&r);
    ok("PUT", "/v1/users/1/cameo/approvals/2", NULL, NULL);
    ok("PUT", "/v1/users/1/cameo/policy", "{\"policy\":\"approved\"}", NULL);
    long long p = ok("POST", "/v1/posts", "{\"author\":2,\"video_uri\":\"u\",\"prompt\":\"p\","
                     "\"cameos\":[1]}", "post_id");
    r = http("GET", "/v1/users/1/cameo/appearances", NULL, NULL);
    cr_expect_eq(json_array_size(json_object_get(r.json, "items")), 1, "%s", r.body);
    resp_free(&r);
    char path[128];
    snprintf(path, sizeof(path), "/v1/posts/%lld/cameos/1", p);
    expect(http("DELETE", path, NULL, NULL), 200, NULL);
    r = http("GET", "/v1/posts/1", NULL, NULL);
    cr_expect(json_is_true(json_object_get(r.json, "hidden")), "%s", r.body);
    resp_free(&r);
    expect(http("DELETE", "/v1/users/1/cameo/approvals/2", NULL, NULL), 200, NULL);
    expect(http("DELETE", "/v1/users/1/cameo", NULL, NULL), 200, NULL);
}

Test(server, generations_render_and_long_poll)
{
    srv_start("--generations-per-day", "2", NULL);
    new_user("maker");
    resp_t r = http("POST", "/v1/generations", "{\"user\":1,\"prompt\":\"a\"}", NULL);
    cr_assert_eq(r.status, 202, "%s", r.raw);
    long long g = jint(&r, "generation_id");
    cr_expect(json_is_object(json_object_get(r.json, "quota")), "%s", r.body);
    resp_free(&r);
    ok("POST", "/v1/generations", "{\"user\":1,\"prompt\":\"b\"}", NULL);
    r = http("POST", "/v1/generations", "{\"user\":1,\"prompt\":\"c\"}", NULL);
    cr_expect_eq(r.status, 429, "%s", r.raw);
    cr_expect_str_eq(jerr(&r, "code"), "quota_exceeded");
    cr_expect_not_null(strstr(r.raw, "Retry-After: "), "%s", r.raw);
    resp_free(&r);
    r = http("GET", "/v1/users/1/quota", NULL, NULL);
    cr_expect_eq(jint(&r, "used"), 2);
    cr_expect_eq(jint(&r, "limit"), 2);
    resp_free(&r);
    r = http("POST", "/v1/render/claim", "{\"worker\":\"w1\",\"max\":1}", NULL);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    json_t *t0 = json_array_get(json_object_get(r.json, "tasks"), 0);
    cr_assert_not_null(t0, "%s", r.body);
    cr_expect_eq(json_integer_value(json_object_get(t0, "generation_id")), g);
    cr_expect_str_eq(json_string_value(json_object_get(t0, "prompt")), "a");
    resp_free(&r);
    char path[128];
    snprintf(path, sizeof(path), "/v1/render/%lld/heartbeat", g);
    r = http("POST", path, "{\"worker\":\"w1\",\"lease_ms\":5000}", NULL);
    cr_expect_eq(r.status, 200, "%s", r.raw);
    cr_expect_gt(jint(&r, "lease_until"), 0);
    resp_free(&r);
    expect(http("POST", path, "{\"worker\":\"w2\"}", NULL), 409, "lease_lost");
    snprintf(path, sizeof(path), "/v1/render/%lld/complete", g);
    long long post = ok("POST", path, "{\"worker\":\"w1\",\"video_uri\":\"s3://o\","
                        "\"duration_ms\":3000,\"publish\":true}", "post_id");
    expect(http("POST", path, "{\"worker\":\"w1\",\"video_uri\":\"s3://o\",\"duration_ms\":1}",
                NULL), 409, "lease_lost");
    snprintf(path, sizeof(path), "/v1/generations/%lld", g);
    r = http("GET", path, NULL, NULL);
    cr_expect_str_eq(json_string_value(json_object_get(r.json, "status")), "completed", "%s",
                     r.body);
    cr_expect_eq(jint(&r, "post_id"), post);
    resp_free(&r);
    /* The second one, claimed and failed without retry. */
    r = http("POST", "/v1/render/claim", "{\"worker\":\"w1\"}", NULL);
    long long g2 = json_integer_value(json_object_get(json_array_get(json_object_get(r.json,
                                      "tasks"), 0), "generation_id"));
    resp_free(&r);
    snprintf(path, sizeof(path), "/v1/render/%lld/fail", g2);
    ok("POST", path, "{\"worker\":\"w1\",\"reason\":\"gpu\",\"retryable\":false}", NULL);
    /* Long poll: empty queue, a claim waits; a generation created from
     * another connection wakes it well before its deadline. */
    int fd = conn_open();
    const char *claim = "{\"worker\":\"w9\",\"wait_ms\":8000}";
    char req[512];
    int n = snprintf(req, sizeof(req), "POST /v1/render/claim HTTP/1.1\r\nHost: t\r\n"
                     "Connection: close\r\nContent-Length: %zu\r\n\r\n%s", strlen(claim), claim);
    send_all(fd, req, (size_t)n);
    struct pollfd pf = {fd, POLLIN, 0};
    cr_expect_eq(poll(&pf, 1, 300), 0, "the claim answered before there was work");
    struct timespec t1, t2;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ok("POST", "/v1/generations", "{\"user\":1,\"prompt\":\"late\"}", NULL);
    char *raw = read_until_close(fd, IO_TIMEOUT_MS, NULL, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t2);
    close(fd);
    r = parse_resp(raw);
    cr_expect_eq(json_array_size(json_object_get(r.json, "tasks")), 1, "%s", r.raw);
    cr_expect_lt(t2.tv_sec - t1.tv_sec, 5, "the parked claim waited for its deadline");
    resp_free(&r);
    /* Nothing to claim: empty after wait_ms. */
    r = http("POST", "/v1/render/claim", "{\"worker\":\"w9\",\"wait_ms\":150}", NULL);
    cr_expect_eq(r.status, 200);
    cr_expect_eq(json_array_size(json_object_get(r.json, "tasks")), 0, "%s", r.raw);
    resp_free(&r);
}

Test(server, log_stream_batch_health_metrics)
{
    srv_start(NULL);
    new_user("logger");
    new_user("other");
    ok("PUT", "/v1/users/1/following/2", NULL, NULL);
    resp_t r = http("GET", "/v1/log", NULL, NULL);
    cr_assert_eq(r.status, 200);
    cr_expect_not_null(strstr(r.raw, "application/x-ndjson"));
    int lines = 0;
    for (char *p = r.body; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    cr_expect_eq(lines, 3, "%s", r.body);
    cr_expect_not_null(strstr(r.body, "\"type\":\"follow.created\""));
    resp_free(&r);
    r = http("GET", "/v1/log?from=1&limit=1&types=user.created", NULL, NULL);
    cr_expect_not_null(strstr(r.body, "\"offset\":1,"), "%s", r.body);
    cr_expect_null(strstr(r.body, "follow.created"));
    resp_free(&r);
    expect(http("GET", "/v1/log?types=nope", NULL, NULL), 400, "bad_field");
    /* SSE from offset 0: the old events, then one that commits later. */
    int fd = conn_open();
    const char *sreq = "GET /v1/log/stream?from=0 HTTP/1.1\r\nHost: t\r\n\r\n";
    send_all(fd, sreq, strlen(sreq));
    ok("PUT", "/v1/users/2/following/1", NULL, NULL);
    char buf[8192] = "";
    size_t got = 0;
    for (int i = 0; i < 100 && !strstr(buf, "id: 3\n"); i++) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, 100) <= 0)
            continue;
        ssize_t k = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
        if (k <= 0)
            break;
        got += (size_t)k;
        buf[got] = '\0';
    }
    close(fd);
    cr_expect_not_null(strstr(buf, "text/event-stream"), "%s", buf);
    cr_expect_not_null(strstr(buf, "id: 0\nevent: user.created\ndata: {"), "%s", buf);
    cr_expect_not_null(strstr(buf, "id: 3\nevent: follow.created\n"), "%s", buf);
    /* Batch: in order, a bad line does not stop the others. */
    const char *batch = "{\"op\":\"POST /v1/users\",\"body\":{\"handle\":\"b1\"}}\n"
                        "{\"op\":\"POST /v1/users\",\"body\":{\"handle\":\"!!\"}}\n"
                        "not json\n"
                        "{\"op\":\"PUT /v1/users/1/following/3\"}\n";
    r = http("POST", "/v1/batch", batch, NULL);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    int st[4] = {0};
    char *p = r.body;
    for (int i = 0; i < 4 && p; i++) {
        json_t *line = json_loads(p, JSON_DISABLE_EOF_CHECK, NULL);
        cr_assert_not_null(line, "%s", p);
        st[i] = (int)json_integer_value(json_object_get(line, "status"));
        json_decref(line);
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    cr_expect_eq(st[0], 201, "%s", r.body);
    cr_expect_eq(st[1], 400, "%s", r.body);
    cr_expect_eq(st[2], 400, "%s", r.body);
    cr_expect_eq(st[3], 200, "%s", r.body);
    resp_free(&r);
    r = http("GET", "/healthz", NULL, NULL);
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(json_string_value(json_object_get(r.json, "state")), "writable");
    cr_expect_geq(jint(&r, "offset"), 5);
    resp_free(&r);
    r = http("GET", "/metrics", NULL, NULL);
    cr_expect_eq(r.status, 200);
    cr_expect_not_null(strstr(r.body, "reeld_requests_total{route=\"POST /v1/users\",status=\"201\"}"),
                       "%s", r.body);
    cr_expect_not_null(strstr(r.body, "reeld_request_seconds_bucket"));
    cr_expect_not_null(strstr(r.body, "reeld_connections_open"));
    /* The group commits' durable-write latency, as a histogram whose +Inf
     * bucket counts every commit (at least the user created above). */
    const char *inf = strstr(r.body, "reeld_log_fsync_seconds_bucket{le=\"+Inf\"} ");
    cr_expect_not_null(strstr(r.body, "reeld_engine_phase_seconds_total{phase=\"views_commit\"}"));
    cr_expect_not_null(strstr(r.body, "reeld_engine_queue_depth"));
    cr_expect(inf != NULL && atoll(inf + strlen("reeld_log_fsync_seconds_bucket{le=\"+Inf\"} ")) >= 1,
              "no fsync histogram");
    resp_free(&r);
}

Test(server, idempotency_keys)
{
    srv_start(NULL);
    const char *h = "Idempotency-Key: k-123\r\n";
    resp_t a = http("POST", "/v1/users", "{\"handle\":\"idem1\"}", h);
    resp_t b = http("POST", "/v1/users", "{\"handle\":\"idem1\"}", h);
    cr_expect_eq(a.status, 201, "%s", a.raw);
    cr_expect_eq(b.status, 201, "%s", b.raw);
    cr_expect_str_eq(a.body, b.body);
    resp_free(&a);
    resp_free(&b);
    expect(http("POST", "/v1/users", "{\"handle\":\"idem2\"}", h), 409, "conflict");
    expect(http("POST", "/v1/users", "{\"handle\":\"idem3\"}", "Idempotency-Key: \r\n"), 400,
           "bad_field");
    char longkey[128] = "Idempotency-Key: ";
    memset(longkey + strlen(longkey), 'k', 65);
    strcat(longkey, "\r\n");
    expect(http("POST", "/v1/users", "{\"handle\":\"idem4\"}", longkey), 400, "bad_field");
}

Test(server, token_scopes)
{
    char path[PATH_MAX + 16];
    const char *tokens = "admin adm1\napp app1\nworker wrk1\nreader rdr1\n";
    snprintf(path, sizeof(path), "%s/tokens", tmp);
    cr_assert_eq(reel_test_write_file(path, tokens, strlen(tokens)), 0);
    srv_start("--token-file", path, NULL);
    expect(http("GET", "/healthz", NULL, NULL), 200, NULL);
    expect(http("GET", "/v1/users/1", NULL, NULL), 401, "unauthorized");
    expect(http("GET", "/v1/users/1", NULL, "Authorization: Bearer nope\r\n"), 401,
           "unauthorized");
    expect(http("POST", "/v1/users", "{\"handle\":\"tok\"}", "Authorization: Bearer app1\r\n"),
           201, NULL);
    expect(http("GET", "/v1/users/1", NULL, "Authorization: Bearer rdr1\r\n"), 200, NULL);
    expect(http("PUT", "/v1/users/1/following/1", NULL, "Authorization: Bearer rdr1\r\n"), 403,
           "forbidden");
    expect(http("POST", "/v1/render/claim", "{\"worker\":\"w\"}",
                "Authorization: Bearer app1\r\n"), 403, "forbidden");
    expect(http("POST", "/v1/render/claim", "{\"worker\":\"w\"}",
                "Authorization: Bearer wrk1\r\n"), 200, NULL);
    expect(http("GET", "/v1/users/1", NULL, "Authorization: Bearer wrk1\r\n"), 403, "forbidden");
    expect(http("POST", "/v1/render/claim", "{\"worker\":\"w\"}",
                "Authorization: Bearer adm1\r\n"), 200, NULL);
    /* The token comes first: without one, an unknown path, another method
     * or a malformed id is 401 too; with one, 404, 405 and 400. */
    expect(http("GET", "/v1/nope", NULL, NULL), 401, "unauthorized");
    expect(http("PATCH", "/v1/leaderboard", NULL, NULL), 401, "unauthorized");
    expect(http("GET", "/v1/users/abc", NULL, NULL), 401, "unauthorized");
    expect(http("GET", "/v1/nope", NULL, "Authorization: Bearer rdr1\r\n"), 404, "not_found");
    expect(http("PATCH", "/v1/leaderboard", NULL, "Authorization: Bearer rdr1\r\n"), 405,
           "method_not_allowed");
    expect(http("GET", "/v1/users/abc", NULL, "Authorization: Bearer rdr1\r\n"), 400,
           "bad_field");
    expect(http("GET", "/metrics", NULL, NULL), 200, NULL);
}

/* ---- the transport ---- */

/* Splits a stream of answers: the status of each, in order. */
static int split_statuses(const char *raw, size_t len, int *st, int max)
{
    int n = 0;
    const char *p = raw, *end = raw + len;
    while (p < end && n < max) {
        const char *hdr_end = strstr(p, "\r\n\r\n");
        if (hdr_end == NULL || sscanf(p, "HTTP/1.1 %d", &st[n]) != 1)
            break;
        const char *cl = strstr(p, "Content-Length: ");
        size_t blen = cl && cl < hdr_end ? (size_t)atol(cl + 16) : 0;
        p = hdr_end + 4 + blen;
        n++;
    }
    return n;
}

Test(server, pipelining_in_order)
{
    srv_start(NULL);
    new_user("pipe");
    /* 300 pipelined requests in one write, a write among reads, answers in
     * request order. */
    enum { N = 300 };
    size_t cap = N * 128, len = 0;
    char *req = malloc(cap);
    for (int i = 0; i < N; i++) {
        const char *line = i % 3 == 1 ? "PUT /v1/users/1/following/1 HTTP/1.1\r\nHost: t\r\n\r\n"
                           : i % 3 == 2 ? "GET /v1/users/77 HTTP/1.1\r\nHost: t\r\n\r\n"
                                        : "GET /v1/users/1 HTTP/1.1\r\nHost: t\r\n\r\n";
        len += (size_t)snprintf(req + len, cap - len, "%s", line);
    }
    len += (size_t)snprintf(req + len, cap - len,
                            "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    int fd = conn_open();
    send_all(fd, req, len);
    size_t got;
    char *raw = read_until_close(fd, IO_TIMEOUT_MS, &got, NULL);
    close(fd);
    int st[N + 1];
    cr_assert_eq(split_statuses(raw, got, st, N + 1), N + 1);
    for (int i = 0; i < N; i++) {
        int want = i % 3 == 1 ? 400 : i % 3 == 2 ? 404 : 200; /* following oneself: 400 */
        if (i % 3 == 1 && st[i] != 400)
            want = st[i]; /* the engine's word on following oneself */
        cr_expect_eq(st[i], want, "answer %d", i);
    }
    cr_expect_eq(st[N], 200);
    free(raw);
    free(req);
}

Test(server, chunked_expect_and_limits)
{
    srv_start(NULL);
    int fd = conn_open();
    const char *chunked = "POST /v1/users HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                          "Connection: close\r\n\r\n5\r\n{\"han\r\nb\r\ndle\":\"chnk\"\r\n1\r\n}\r\n"
                          "0\r\n\r\n";
    send_all(fd, chunked, strlen(chunked));
    resp_t r = parse_resp(read_until_close(fd, IO_TIMEOUT_MS, NULL, NULL));
    close(fd);
    cr_expect_eq(r.status, 201, "%s", r.raw);
    resp_free(&r);
    /* Expect: 100-continue: the interim answer, then the final one. */
    fd = conn_open();
    const char *head = "POST /v1/users HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                       "Content-Length: 17\r\nConnection: close\r\n\r\n";
    send_all(fd, head, strlen(head));
    char buf[256] = "";
    struct pollfd pf = {fd, POLLIN, 0};
    cr_assert_eq(poll(&pf, 1, IO_TIMEOUT_MS), 1);
    ssize_t k = recv(fd, buf, sizeof(buf) - 1, 0);
    cr_assert_gt(k, 0);
    cr_expect_not_null(strstr(buf, "HTTP/1.1 100 Continue"), "%s", buf);
    send_all(fd, "{\"handle\":\"cont\"}", 17);
    r = parse_resp(read_until_close(fd, IO_TIMEOUT_MS, NULL, NULL));
    close(fd);
    cr_expect(r.status == 201 || strstr(r.raw, "201 Created"), "%s", r.raw);
    resp_free(&r);
    /* 431: headers over 16 KiB. */
    fd = conn_open();
    char *big = malloc(20000);
    int n = snprintf(big, 20000, "GET /v1/users/1 HTTP/1.1\r\nX-Big: ");
    memset(big + n, 'a', 17000);
    memcpy(big + n + 17000, "\r\n\r\n", 5);
    send_all(fd, big, strlen(big));
    r = parse_resp(read_until_close(fd, IO_TIMEOUT_MS, NULL, NULL));
    close(fd);
    cr_expect_eq(r.status, 431, "%s", r.raw);
    cr_expect_str_eq(jerr(&r, "code"), "headers_too_large");
    resp_free(&r);
    free(big);
    /* 413: a body over 1 MiB (refused from its Content-Length). */
    fd = conn_open();
    const char *h413 = "POST /v1/users HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n";
    send_all(fd, h413, strlen(h413));
    r = parse_resp(read_until_close(fd, IO_TIMEOUT_MS, NULL, NULL));
    close(fd);
    cr_expect_eq(r.status, 413, "%s", r.raw);
    cr_expect_str_eq(jerr(&r, "code"), "too_large");
    resp_free(&r);
    /* 400: Content-Length with Transfer-Encoding; then the connection closes. */
    fd = conn_open();
    const char *cte = "POST /v1/users HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    send_all(fd, cte, strlen(cte));
    r = parse_resp(read_until_close(fd, IO_TIMEOUT_MS, NULL, NULL));
    close(fd);
    cr_expect_eq(r.status, 400, "%s", r.raw);
    cr_expect_str_eq(jerr(&r, "code"), "bad_request");
    resp_free(&r);
    /* 400: a bad chunk; 400: garbage; 505: HTTP/2.0 in a request line. */
    const char *bad[] = {
        "POST /v1/users HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "\x01\x02garbage\r\n\r\n",
        "GET /v1/users/1 HTTP/2.0\r\nHost: t\r\n\r\n",
    };
    const int want[] = {400, 400, 505};
    for (int i = 0; i < 3; i++) {
        fd = conn_open();
        send_all(fd, bad[i], strlen(bad[i]));
        r = parse_resp(read_until_close(fd, IO_TIMEOUT_MS, NULL, NULL));
        close(fd);
        cr_expect_eq(r.status, want[i], "case %d: %s", i, r.raw);
        resp_free(&r);
    }
    expect(http("GET", "/healthz", NULL, NULL), 200, NULL);
}

Test(server, slow_client_does_not_stall_others)
{
    srv_start("--header-timeout-ms", "1500", NULL);
    int slow = conn_open();
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const char *part = "GET /v1/users/1 HTTP/1.1\r\nX-Slow: ";
    send_all(slow, part, strlen(part));
    /* A byte at a time on the slow one while another client is served. */
    bool cut = false;
    for (int i = 0; i < 40 && !cut; i++) {
        send_all(slow, "a", 1);
        struct timespec s0, s1;
        clock_gettime(CLOCK_MONOTONIC, &s0);
        expect(http("GET", "/healthz", NULL, NULL), 200, NULL);
        clock_gettime(CLOCK_MONOTONIC, &s1);
        long ms = (s1.tv_sec - s0.tv_sec) * 1000 + (s1.tv_nsec - s0.tv_nsec) / 1000000;
        cr_expect_lt(ms, 1000, "a fast client waited %ld ms", ms);
        struct pollfd pf = {slow, POLLIN, 0};
        if (poll(&pf, 1, 100) == 1) {
            char b[64];
            cut = recv(slow, b, sizeof(b), 0) <= 0;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    close(slow);
    cr_expect(cut, "the slow client was never cut");
    cr_expect_lt(t1.tv_sec - t0.tv_sec, 6);
    /* A client that never reads its answers: the server stays healthy. */
    int deaf = conn_open();
    char req[128];
    int n = snprintf(req, sizeof(req), "GET /v1/log HTTP/1.1\r\nHost: t\r\n\r\n");
    for (int i = 0; i < 2000; i++)
        send_all(deaf, req, (size_t)n);
    expect(http("GET", "/healthz", NULL, NULL), 200, NULL);
    close(deaf);
}

Test(server, kill9_keeps_acknowledged_writes_and_sigterm_exits_0)
{
    char body[64];
    srv_start(NULL);
    for (int i = 0; i < 40; i++) {
        snprintf(body, sizeof(body), "{\"handle\":\"k9_%d\"}", i);
        ok("POST", "/v1/users", body, "user_id");
    }
    cr_expect_eq(srv_stop(SIGKILL), -1);
    srv_start(NULL);
    for (int i = 0; i < 40; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/v1/handles/k9_%d", i);
        expect(http("GET", path, NULL, NULL), 200, NULL);
    }
    ok("POST", "/v1/users", "{\"handle\":\"after\"}", "user_id");
    cr_expect_eq(srv_stop(SIGTERM), 0);
    srv_start(NULL);
    expect(http("GET", "/v1/handles/after", NULL, NULL), 200, NULL);
}

/* ---- issue 4's gaps ---- */

/* The value of an unlabelled /metrics sample, or -1. */
static long long metric(const char *name)
{
    resp_t r = http("GET", "/metrics", NULL, NULL);
    char key[128];
    snprintf(key, sizeof(key), "\n%s ", name);
    const char *p = strstr(r.body, key);
    long long v = p ? atoll(p + strlen(key)) : -1;
    resp_free(&r);
    return v;
}

/* Polls metric name until it equals want or ms pass (no sleep: each poll
 * is a request); returns the last value. */
static long long metric_wait(const char *name, long long want, int ms)
{
    uint64_t deadline = now_ms() + (uint64_t)ms;
    long long v;
    while ((v = metric(name)) != want && now_ms() < deadline)
        continue;
    return v;
}

Test(server, request_line_protocol_token)
{
    srv_start(NULL);
    static const char bad[] = "GET /healthz HTTX/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    resp_t r = parse_resp(raw_exchange(bad, sizeof(bad) - 1));
    cr_expect_eq(r.status, 400, "%s", r.raw);
    cr_expect_str_eq(jerr(&r, "code"), "bad_request", "%s", r.body);
    resp_free(&r);
    /* Pipelined: the first is served, the second (split across sends) is
     * refused. */
    int fd = conn_open();
    static const char two[] = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /healthz HTT";
    send_all(fd, two, sizeof(two) - 1);
    send_all(fd, "X/1.1\r\nHost: t\r\n\r\n", 19);
    char *raw = read_until_close(fd, IO_TIMEOUT_MS, NULL, NULL);
    close(fd);
    cr_expect_not_null(strstr(raw, "HTTP/1.1 200"), "%s", raw);
    cr_expect_not_null(strstr(raw, "HTTP/1.1 400"), "%s", raw);
    free(raw);
    expect(http("GET", "/healthz", NULL, NULL), 200, NULL);
}

Test(server, idempotency_key_same_for_request_and_batch_line)
{
    srv_start(NULL);
    resp_t r = http("POST", "/v1/users", "{\"handle\":\"idem1\", \"display_name\":\"D\"}",
                    "Idempotency-Key: k-shared\r\n");
    cr_assert_eq(r.status, 201, "%s", r.raw);
    long long uid = jint(&r, "user_id");
    resp_free(&r);
    /* The same write as a batch line, keys in another order: a replay. */
    r = http("POST", "/v1/batch", "{\"op\":\"POST /v1/users\",\"idempotency_key\":\"k-shared\","
             "\"body\":{\"display_name\":\"D\",\"handle\":\"idem1\"}}\n", NULL);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    json_t *line = json_loads(r.body, JSON_DISABLE_EOF_CHECK, NULL);
    cr_assert_not_null(line, "%s", r.body);
    cr_expect_eq(json_integer_value(json_object_get(line, "status")), 201, "%s", r.body);
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(line, "body"), "user_id")),
                 uid, "%s", r.body);
    json_decref(line);
    resp_free(&r);
    /* And back: a batch line's key, then the plain request. */
    r = http("POST", "/v1/batch", "{\"op\":\"POST /v1/users\",\"idempotency_key\":\"k-two\","
             "\"body\":{\"handle\":\"idem2\"}}\n", NULL);
    resp_free(&r);
    r = http("POST", "/v1/users", "{ \"handle\" : \"idem2\" }", "Idempotency-Key: k-two\r\n");
    cr_expect_eq(r.status, 201, "%s", r.raw);
    cr_expect_not_null(strstr(r.raw, "Idempotent-Replayed: true"), "%s", r.raw);
    resp_free(&r);
    /* Another body under the key is still a conflict. */
    expect(http("POST", "/v1/users", "{\"handle\":\"idem3\"}", "Idempotency-Key: k-two\r\n"), 409,
           NULL);
}

Test(server, body_timeout_flag_and_batch_line_limit)
{
    srv_start("--body-timeout-ms", "300", NULL);
    int fd = conn_open();
    static const char part[] = "POST /v1/users HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{";
    send_all(fd, part, sizeof(part) - 1);
    uint64_t t0 = now_ms();
    bool closed;
    char *raw = read_until_close(fd, IO_TIMEOUT_MS, NULL, &closed);
    uint64_t ms = now_ms() - t0;
    close(fd);
    free(raw);
    cr_expect(closed, "the body timeout never cut the client");
    cr_expect_lt(ms, 5000, "cut after %llu ms, not --body-timeout-ms 300", (unsigned long long)ms);
    /* One line over the documented limit: 413 too_large, nothing applied. */
    size_t n = 16385, len = 0;
    char *batch = malloc(n * 3 + 1);
    cr_assert_not_null(batch);
    for (size_t i = 0; i < n; i++, len += 3)
        memcpy(batch + len, "{}\n", 3);
    batch[len] = '\0';
    resp_t r = http("POST", "/v1/batch", batch, NULL);
    free(batch);
    cr_expect_eq(r.status, 413, "%.300s", r.raw);
    cr_expect_str_eq(jerr(&r, "code"), "too_large");
    cr_expect_not_null(strstr(jerr(&r, "message"), "16384 lines"), "%s", r.body);
    resp_free(&r);
}

Test(server, problems_logged_once_not_per_request)
{
    srv_start(NULL);
    static const char bad[] = "GET /healthz HTTX/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    for (int i = 0; i < 200; i++)
        free(raw_exchange(bad, sizeof(bad) - 1));
    expect(http("GET", "/healthz", NULL, NULL), 200, NULL);
    char path[PATH_MAX + 16];
    uint8_t *text = NULL;
    size_t len = 0;
    snprintf(path, sizeof(path), "%s/err.txt", tmp);
    cr_assert_eq(reel_test_read_file(path, &text, &len), 0);
    text[len] = '\0';
    int lines = 0, about = 0;
    for (char *p = (char *)text, *nl; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
        lines++;
        *nl = '\0';
        if (strstr(p, "bad requests") != NULL)
            about++;
    }
    cr_expect_geq(about, 1, "the bad requests were not reported");
    cr_expect_leq(lines, 3, "%d lines of stderr for 200 bad requests", lines);
    free(text);
}

Test(server, parked_claim_of_a_gone_client_is_dropped)
{
    srv_start(NULL);
    new_user("maker");
    int fd = conn_open();
    const char *claim = "{\"worker\":\"gone\",\"wait_ms\":30000}";
    char req[512];
    int n = snprintf(req, sizeof(req), "POST /v1/render/claim HTTP/1.1\r\nHost: t\r\n"
                     "Content-Length: %zu\r\n\r\n%s", strlen(claim), claim);
    send_all(fd, req, (size_t)n);
    cr_assert_eq(metric_wait("reeld_claims_parked", 1, IO_TIMEOUT_MS), 1);
    close(fd);
    /* Dropped at once, not at its deadline (30 s) nor a retry. */
    cr_expect_eq(metric_wait("reeld_claims_parked", 0, 3000), 0, "the claim stayed parked");
    ok("POST", "/v1/generations", "{\"user\":1,\"prompt\":\"for the living\"}", NULL);
    resp_t r = http("POST", "/v1/render/claim", "{\"worker\":\"here\"}", NULL);
    cr_expect_eq(json_array_size(json_object_get(r.json, "tasks")), 1,
                 "the task went to the client that left: %s", r.raw);
    resp_free(&r);
}

Test(server, sse_consumer_that_falls_behind_is_cut_at_once)
{
    srv_start(NULL);
    new_user("poster");
    int deaf = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    setsockopt(deaf, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)srv_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(deaf, (struct sockaddr *)&sa, sizeof(sa)), 0);
    static const char sreq[] = "GET /v1/log/stream HTTP/1.1\r\nHost: t\r\n\r\n";
    send_all(deaf, sreq, sizeof(sreq) - 1);
    cr_assert_eq(metric_wait("reeld_streams_open", 1, IO_TIMEOUT_MS), 1);
    /* Batches of big posts (~4 KiB events) until the consumer is cut:
     * well before a heartbeat (15 s) could cut it. */
    char prompt[1901];
    memset(prompt, 'p', sizeof(prompt) - 1);
    prompt[sizeof(prompt) - 1] = '\0';
    size_t cap = 400 * 2200, len = 0;
    char *batch = malloc(cap);
    cr_assert_not_null(batch);
    for (int i = 0; i < 400; i++)
        len += (size_t)snprintf(batch + len, cap - len, "{\"op\":\"POST /v1/posts\",\"body\":"
                                "{\"author\":1,\"video_uri\":\"u\",\"prompt\":\"%s\"}}\n", prompt);
    uint64_t t0 = now_ms();
    long long open = 1;
    for (int round = 0; round < 30 && open != 0; round++) {
        resp_t r = http("POST", "/v1/batch", batch, NULL);
        cr_assert_eq(r.status, 200, "%.200s", r.raw);
        resp_free(&r);
        open = metric("reeld_streams_open");
    }
    uint64_t ms = now_ms() - t0;
    free(batch);
    cr_expect_eq(open, 0, "the consumer that never reads was not cut");
    cr_expect_lt(ms, 10000, "cut after %llu ms", (unsigned long long)ms);
    close(deaf);
    expect(http("GET", "/healthz", NULL, NULL), 200, NULL);
}

/* A stream's client that goes away is let go at once, not at the next
 * heartbeat (15 s) or the next event: reeld keeps reading (and dropping)
 * a stream connection's input, so it sees the close. */
Test(server, sse_consumer_that_closes_is_let_go_at_once)
{
    srv_start(NULL);
    int fd = conn_open();
    static const char sreq[] = "GET /v1/log/stream HTTP/1.1\r\nHost: t\r\n\r\n";
    send_all(fd, sreq, sizeof(sreq) - 1);
    cr_assert_eq(metric_wait("reeld_streams_open", 1, IO_TIMEOUT_MS), 1);
    long long conns = metric("reeld_connections_open");
    close(fd);
    cr_assert_eq(metric_wait("reeld_streams_open", 0, 3000), 0,
                 "the stream outlived its client while nothing committed");
    cr_expect_eq(metric("reeld_connections_open"), conns - 1, "its connection is closed");
}

Test(server, log_page_is_chunked_and_keeps_the_connection)
{
    srv_start(NULL);
    size_t cap = 3000 * 80, len = 0;
    char *batch = malloc(cap);
    cr_assert_not_null(batch);
    for (int i = 0; i < 3000; i++)
        len += (size_t)snprintf(batch + len, cap - len,
                                "{\"op\":\"POST /v1/users\",\"body\":{\"handle\":\"u%d\"}}\n", i);
    resp_t r = http("POST", "/v1/batch", batch, NULL);
    cr_assert_eq(r.status, 200, "%.200s", r.raw);
    resp_free(&r);
    free(batch);
    /* A page of 3000 events (several slices), then another request on
     * the same connection. */
    int fd = conn_open();
    static const char two[] = "GET /v1/log?limit=3000 HTTP/1.1\r\nHost: t\r\n\r\n"
                              "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    send_all(fd, two, sizeof(two) - 1);
    size_t got;
    char *raw = read_until_close(fd, IO_TIMEOUT_MS, &got, NULL);
    close(fd);
    cr_assert_not_null(strstr(raw, "Transfer-Encoding: chunked"), "%.300s", raw);
    char *last = strstr(raw, "\r\n0\r\n\r\n");
    cr_assert_not_null(last, "no last chunk");
    cr_expect_eq(strncmp(last + 7, "HTTP/1.1 200", 12), 0, "%.200s", last + 7);
    last[2] = '\0';
    r = parse_resp(raw);
    int lines = 0;
    for (char *p = r.body; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    cr_expect_eq(lines, 3000);
    cr_expect_not_null(strstr(r.body, "\"handle\":\"u2999\""));
    resp_free(&r);
    cr_expect_geq(metric("reeld_http_requests_pending"), 0);
    cr_expect_geq(metric("reeld_http_output_queued_bytes"), 0);
}

/* ---- issue 4's audit, second pass: the contract's points no test held ---- */

/* Reads fd into buf (cap bytes with the NUL) until needle shows up, the
 * peer closes or ms pass; whether needle came. Polls with a deadline. */
static bool read_for(int fd, const char *needle, int ms, char *buf, size_t cap, size_t *got)
{
    uint64_t deadline = now_ms() + (uint64_t)ms;
    while (strstr(buf, needle) == NULL && *got + 1 < cap && now_ms() < deadline) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, 50) <= 0)
            continue;
        ssize_t k = recv(fd, buf + *got, cap - 1 - *got, 0);
        if (k <= 0)
            break;
        *got += (size_t)k;
        buf[*got] = '\0';
    }
    return strstr(buf, needle) != NULL;
}

/* The offset /healthz reports (-1 on an empty log). */
static long long log_offset(void)
{
    resp_t r = http("GET", "/healthz", NULL, NULL);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    long long v = jint(&r, "offset");
    resp_free(&r);
    return v;
}

/* --invite-only: the first user of an empty log signs up freely, then a
 * code is required (403 invite_required), an unknown or used one is 403
 * invite_invalid, a user's invites run out (409 invites_exhausted), and an
 * admin token signs up without one. Refusals append nothing. */
Test(server, invite_only_sign_up_and_invites)
{
    char path[PATH_MAX + 16];
    const char *tokens = "admin adm1\napp app1\n";
    snprintf(path, sizeof(path), "%s/tokens", tmp);
    cr_assert_eq(reel_test_write_file(path, tokens, strlen(tokens)), 0);
    srv_start("--invite-only", "--invites-per-user", "1", "--token-file", path, NULL);
    const char *app = "Authorization: Bearer app1\r\n";
    expect(http("POST", "/v1/users", "{\"handle\":\"first\"}", app), 201, NULL);
    long long before = log_offset();
    expect(http("POST", "/v1/users", "{\"handle\":\"second\"}", app), 403, "invite_required");
    expect(http("POST", "/v1/users", "{\"handle\":\"second\",\"invite_code\":\"nope\"}", app), 403,
           "invite_invalid");
    cr_expect_eq(log_offset(), before, "a refused sign-up appended");
    resp_t r = http("POST", "/v1/users/1/invites", NULL, app);
    cr_assert_eq(r.status, 201, "%s", r.raw);
    char code[80];
    snprintf(code, sizeof(code), "%s", json_string_value(json_object_get(r.json, "code")));
    resp_free(&r);
    expect(http("POST", "/v1/users/1/invites", NULL, app), 409, "invites_exhausted");
    char body[160];
    snprintf(body, sizeof(body), "{\"handle\":\"second\",\"invite_code\":\"%s\"}", code);
    expect(http("POST", "/v1/users", body, app), 201, NULL);
    snprintf(body, sizeof(body), "{\"handle\":\"third\",\"invite_code\":\"%s\"}", code);
    expect(http("POST", "/v1/users", body, app), 403, "invite_invalid");
    expect(http("POST", "/v1/users", "{\"handle\":\"third\"}", "Authorization: Bearer adm1\r\n"),
           201, NULL);
    expect(http("GET", "/v1/handles/third", NULL, app), 200, NULL);
}

/* --trust-client-time: a write's "at" becomes its events' time; one
 * before the newest event's is 400 time_regression and appends nothing.
 * Without the flag "at" is ignored. */
Test(server, client_time_and_time_regression)
{
    srv_start("--trust-client-time", NULL);
    expect(http("POST", "/v1/users", "{\"handle\":\"past\",\"at\":1700000000000}", NULL), 201,
           NULL);
    resp_t r = http("GET", "/v1/handles/past", NULL, NULL);
    cr_expect_eq(jint(&r, "created_at"), 1700000000000LL, "%s", r.body);
    resp_free(&r);
    long long before = log_offset();
    expect(http("POST", "/v1/users", "{\"handle\":\"older\",\"at\":1600000000000}", NULL), 400,
           "time_regression");
    expect(http("PUT", "/v1/users/1/following/1", "{\"at\":1}", NULL), 400, NULL);
    cr_expect_eq(log_offset(), before, "a refused write appended");
    expect(http("GET", "/v1/handles/older", NULL, NULL), 404, "not_found");
    cr_expect_eq(srv_stop(SIGTERM), 0);
    srv_start(NULL);
    expect(http("POST", "/v1/users", "{\"handle\":\"now\",\"at\":1}", NULL), 201, NULL);
    r = http("GET", "/v1/handles/now", NULL, NULL);
    cr_expect_geq(jint(&r, "created_at"), 1700000000000LL, "at was not ignored: %s", r.body);
    resp_free(&r);
}

/* SSE: Last-Event-ID resumes after the named offset; without from the
 * stream starts at the end of the log; a heartbeat comment comes every
 * --sse-heartbeat-ms (15 s by default, shortened here). */
Test(server, sse_resumes_from_last_event_id_and_beats)
{
    srv_start("--sse-heartbeat-ms", "200", NULL);
    new_user("s0");
    new_user("s1");
    new_user("s2");
    int fd = conn_open();
    static const char resume[] = "GET /v1/log/stream HTTP/1.1\r\nHost: t\r\nLast-Event-ID: 0\r\n\r\n";
    send_all(fd, resume, sizeof(resume) - 1);
    char buf[16384] = "";
    size_t got = 0;
    cr_expect(read_for(fd, "id: 2\n", IO_TIMEOUT_MS, buf, sizeof(buf), &got), "%s", buf);
    cr_expect_null(strstr(buf, "id: 0\n"), "resumed at the event named: %s", buf);
    cr_expect_not_null(strstr(buf, "id: 1\nevent: user.created\ndata: {\"offset\":1,"), "%s", buf);
    cr_expect(read_for(fd, ": heartbeat\n\n", 5000, buf, sizeof(buf), &got), "no heartbeat: %s",
              buf);
    close(fd);
    /* From the end: only what commits after it started. */
    fd = conn_open();
    static const char tail[] = "GET /v1/log/stream HTTP/1.1\r\nHost: t\r\n\r\n";
    send_all(fd, tail, sizeof(tail) - 1);
    buf[0] = '\0';
    got = 0;
    cr_assert(read_for(fd, "\r\n\r\n", IO_TIMEOUT_MS, buf, sizeof(buf), &got), "%s", buf);
    cr_assert_eq(metric_wait("reeld_streams_open", 1, IO_TIMEOUT_MS), 1);
    new_user("s3");
    cr_expect(read_for(fd, "id: 3\n", IO_TIMEOUT_MS, buf, sizeof(buf), &got), "%s", buf);
    cr_expect_null(strstr(buf, "id: 2\n"), "%s", buf);
    close(fd);
}

/* An idempotency key outlives the process: after kill -9 and a restart
 * the repeat gets the first answer and appends nothing. */
Test(server, idempotency_key_survives_a_restart)
{
    srv_start(NULL);
    const char *h = "Idempotency-Key: across-restarts\r\n";
    resp_t a = http("POST", "/v1/users", "{\"handle\":\"durable\"}", h);
    cr_assert_eq(a.status, 201, "%s", a.raw);
    long long end = log_offset();
    cr_expect_eq(srv_stop(SIGKILL), -1);
    srv_start(NULL);
    resp_t b = http("POST", "/v1/users", "{\"handle\":\"durable\"}", h);
    cr_expect_eq(b.status, 201, "%s", b.raw);
    cr_expect_str_eq(b.body, a.body);
    cr_expect_not_null(strstr(b.raw, "Idempotent-Replayed: true"), "%s", b.raw);
    resp_free(&a);
    resp_free(&b);
    cr_expect_eq(log_offset(), end, "the replay appended");
    expect(http("POST", "/v1/users", "{\"handle\":\"other\"}", h), 409, "conflict");
}

/* SIGTERM: the listener closes at once, a parked claim is answered, a
 * request still arriving is waited for and answered, then reeld exits 0
 * with that write durable. */
Test(server, sigterm_stops_accepting_and_finishes_in_flight)
{
    srv_start(NULL);
    new_user("maker");
    int parked = conn_open();
    const char *claim = "{\"worker\":\"w\",\"wait_ms\":30000}";
    char req[512];
    int n = snprintf(req, sizeof(req), "POST /v1/render/claim HTTP/1.1\r\nHost: t\r\n"
                     "Content-Length: %zu\r\n\r\n%s", strlen(claim), claim);
    send_all(parked, req, (size_t)n);
    cr_assert_eq(metric_wait("reeld_claims_parked", 1, IO_TIMEOUT_MS), 1);
    int slow = conn_open();
    static const char head[] = "POST /v1/users HTTP/1.1\r\nHost: t\r\nContent-Length: 21\r\n\r\n"
                               "{\"handle\":";
    send_all(slow, head, sizeof(head) - 1);
    /* parked, slow and the metrics request's own connection */
    cr_assert_eq(metric_wait("reeld_connections_open", 3, IO_TIMEOUT_MS), 3);
    cr_assert_eq(kill(srv_pid, SIGTERM), 0);
    /* Stop accepting: connects are refused once the signal is handled. */
    bool refused = false;
    for (uint64_t deadline = now_ms() + IO_TIMEOUT_MS; !refused && now_ms() < deadline;) {
        int fd = conn_try();
        refused = fd < 0;
        if (fd >= 0)
            close(fd);
    }
    cr_expect(refused, "reeld still accepts after SIGTERM");
    char *raw = read_until_close(parked, IO_TIMEOUT_MS, NULL, NULL);
    cr_expect_not_null(strstr(raw, "HTTP/1.1 200"), "%s", raw);
    cr_expect_not_null(strstr(raw, "{\"tasks\":[]}"), "%s", raw);
    free(raw);
    close(parked);
    /* The request still arriving holds the stop: for a while (half a
     * second, 50 drain checks) its connection is neither answered nor
     * closed, and reeld runs; then the rest of its body comes. */
    struct pollfd pf = {slow, POLLIN, 0};
    cr_expect_eq(poll(&pf, 1, 500), 0, "the request in flight was cut by the stop");
    cr_expect_eq(waitpid(srv_pid, NULL, WNOHANG), 0, "reeld exited with a request in flight");
    send_all(slow, "\"inflight\"}", 11);
    raw = read_until_close(slow, IO_TIMEOUT_MS, NULL, NULL);
    cr_expect_not_null(strstr(raw, "HTTP/1.1 201"), "the request in flight: %s", raw);
    free(raw);
    close(slow);
    /* Its exit, without a second signal (signal 0 sends none). */
    cr_expect_eq(srv_stop(0), 0);
    srv_start(NULL);
    expect(http("GET", "/v1/handles/inflight", NULL, NULL), 200, NULL);
}

/* An idle keep-alive connection is closed after --idle-timeout-ms, not
 * before an answer and not never. */
Test(server, idle_keep_alive_is_closed)
{
    srv_start("--idle-timeout-ms", "300", NULL);
    int fd = conn_open();
    static const char get[] = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
    send_all(fd, get, sizeof(get) - 1);
    uint64_t t0 = now_ms();
    bool closed = false;
    size_t len = 0;
    char *raw = read_until_close(fd, IO_TIMEOUT_MS, &len, &closed);
    uint64_t ms = now_ms() - t0;
    close(fd);
    cr_expect_not_null(strstr(raw, "HTTP/1.1 200"), "%s", raw);
    cr_expect_null(strstr(raw, "Connection: close"), "%s", raw);
    free(raw);
    cr_expect(closed, "the idle connection was never closed");
    cr_expect_geq(ms, 250, "closed after %llu ms, before the idle time", (unsigned long long)ms);
    cr_expect_lt(ms, 5000, "closed after %llu ms", (unsigned long long)ms);
}

/* Past --max-connections a client is refused politely (503 unavailable,
 * then the close); once a slot is free again the next one is served. */
Test(server, connection_limit_frees_its_slots)
{
    srv_start("--max-connections", "2", NULL);
    /* Accepted in the order they connect: a and b take the slots. */
    int a = conn_open(), b = conn_open();
    int c = conn_open();
    char *raw = read_until_close(c, IO_TIMEOUT_MS, NULL, NULL);
    close(c);
    cr_expect_not_null(strstr(raw, "HTTP/1.1 503"), "%s", raw);
    cr_expect_not_null(strstr(raw, "\"code\":\"unavailable\""), "%s", raw);
    free(raw);
    close(a);
    close(b);
    /* The metrics request itself holds one slot: 1 means a and b are gone
     * (polls refused while they are not count as -1 and poll again). */
    cr_expect_eq(metric_wait("reeld_connections_open", 1, IO_TIMEOUT_MS), 1);
    expect(http("GET", "/v1/users/1", NULL, NULL), 404, "not_found");
    cr_expect_geq(metric("reeld_connections_refused_total"), 1);
}

/* /metrics names every series docs/API.md lists, in Prometheus text. */
Test(server, metrics_name_every_documented_series)
{
    static const char *const names[] = {
        "reeld_requests_total{", "reeld_request_seconds_bucket{", "reeld_log_end_offset ",
        "reeld_views_lag_events ", "reeld_log_group_commits_total ",
        "reeld_log_group_commit_records_avg ", "reeld_log_group_commit_records_bucket{",
        "reeld_log_fsync_seconds_total ",
        "reeld_connections_open ", "reeld_connections_refused_total ",
        "reeld_client_timeouts_total ", "reeld_bad_requests_total ", "reeld_commands_inflight ",
        "reeld_commands_refused_total ", "reeld_claims_parked ", "reeld_streams_open ",
        "reeld_http_requests_pending ", "reeld_http_output_queued_bytes ",
        "reeld_problems_slow_clients_total ", "reeld_log_fsync_seconds_bucket{",
        "reeld_engine_batches_total ", "reeld_engine_commands_total ",
        "reeld_engine_events_total ", "reeld_engine_queue_depth ",
        "reeld_engine_phase_seconds_total{", "reeld_index_posts ", "reeld_index_users ",
        "reeld_index_bytes ", "reeld_index_dropped_total "};
    srv_start(NULL);
    cr_expect_eq(log_offset(), -1, "/healthz on an empty log");
    cr_expect_eq(metric("reeld_log_end_offset"), 0);
    new_user("mm");
    cr_expect_eq(log_offset(), 0);
    resp_t r = http("GET", "/metrics", NULL, NULL);
    cr_assert_eq(r.status, 200);
    cr_expect_not_null(strstr(r.raw, "Content-Type: text/plain"), "%.200s", r.raw);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char key[96];
        snprintf(key, sizeof(key), "\n%s", names[i]);
        cr_expect_not_null(strstr(r.body, key), "no %s in /metrics", names[i]);
    }
    resp_free(&r);
    cr_expect_geq(metric("reeld_log_end_offset"), 1);
}

/* Answers of one read leave together (one writev): pipelined requests
 * whose answers are streams, chunked pages and interim 100 Continue
 * answers still come in request order, each whole. */
Test(server, pipelined_answers_with_streams_keep_their_order)
{
    srv_start(NULL);
    new_user("p0");
    new_user("p1");
    /* A read, a chunked log page and a read, in one send. */
    int fd = conn_open();
    static const char three[] = "GET /v1/users/1 HTTP/1.1\r\nHost: t\r\n\r\n"
                                "GET /v1/log?limit=5 HTTP/1.1\r\nHost: t\r\n\r\n"
                                "GET /v1/users/2 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    send_all(fd, three, sizeof(three) - 1);
    char *raw = read_until_close(fd, IO_TIMEOUT_MS, NULL, NULL);
    close(fd);
    const char *a = strstr(raw, "{\"user_id\":1,"); /* log lines start {"offset" */
    const char *b = strstr(raw, "Transfer-Encoding: chunked");
    const char *end = strstr(raw, "\r\n0\r\n\r\n");
    const char *c = strstr(raw, "{\"user_id\":2,");
    cr_expect(a && b && end && c && a < b && b < end && end < c, "out of order: %s", raw);
    free(raw);
    /* A read, then an SSE stream: the read's answer, then the stream. */
    fd = conn_open();
    static const char two[] = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
                              "GET /v1/log/stream?from=0 HTTP/1.1\r\nHost: t\r\n\r\n";
    send_all(fd, two, sizeof(two) - 1);
    char buf[16384] = "";
    size_t got = 0;
    cr_expect(read_for(fd, "id: 1\n", IO_TIMEOUT_MS, buf, sizeof(buf), &got), "%s", buf);
    close(fd);
    a = strstr(buf, "\"status\":\"ok\"");
    b = strstr(buf, "text/event-stream");
    c = strstr(buf, "id: 0\n");
    cr_expect(a && b && c && a < b && b < c, "out of order: %s", buf);
    /* A read, then a write that waits for 100 Continue: both come. */
    fd = conn_open();
    static const char cont[] = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
                               "POST /v1/users HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                               "Connection: close\r\nContent-Length: 15\r\n\r\n";
    send_all(fd, cont, sizeof(cont) - 1);
    buf[0] = '\0';
    got = 0;
    cr_expect(read_for(fd, "HTTP/1.1 100 Continue\r\n\r\n", IO_TIMEOUT_MS, buf, sizeof(buf), &got),
              "no interim answer: %s", buf);
    send_all(fd, "{\"handle\":\"p2\"}", 15);
    raw = read_until_close(fd, IO_TIMEOUT_MS, NULL, NULL);
    close(fd);
    cr_expect(strstr(buf, "HTTP/1.1 200") != NULL &&
              strstr(buf, "HTTP/1.1 200") < strstr(buf, "HTTP/1.1 100"), "%s", buf);
    cr_expect_not_null(strstr(raw, "HTTP/1.1 201"), "%s%s", buf, raw);
    free(raw);
}

/* A client that pipelines more requests than the pipeline bound in one
 * send, each answered at once, gets every answer (parsing goes on after
 * the answers of a pass left, without a write callback to resume it). */
Test(server, pipeline_bound_resumes_after_answers_left)
{
    srv_start(NULL);
    enum { N = 700 };
    static const char get[] = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
    size_t len = 0;
    char *req = malloc(N * sizeof(get) + 64);
    cr_assert_not_null(req);
    for (int i = 0; i < N; i++, len += sizeof(get) - 1)
        memcpy(req + len, get, sizeof(get) - 1);
    len += (size_t)sprintf(req + len, "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n");
    int fd = conn_open();
    send_all(fd, req, len);
    free(req);
    size_t got = 0;
    char *raw = read_until_close(fd, IO_TIMEOUT_MS, &got, NULL);
    close(fd);
    int st[N + 1];
    int n = split_statuses(raw, got, st, N + 1);
    free(raw);
    cr_expect_eq(n, N + 1, "%d answers of %d", n, N + 1);
}

/* A /v1/batch's lines share group commits: 200 writes in one batch take
 * a few durable writes of the log, not one each (every valid line is
 * queued to the engine before any is answered). */
Test(server, batch_lines_share_group_commits)
{
    srv_start(NULL);
    new_user("first");
    long long before = metric("reeld_log_group_commits_total");
    long long batches = metric("reeld_engine_batches_total");
    cr_assert_geq(before, 1);
    size_t cap = 200 * 80, len = 0;
    char *batch = malloc(cap);
    cr_assert_not_null(batch);
    for (int i = 0; i < 200; i++)
        len += (size_t)snprintf(batch + len, cap - len,
                                "{\"op\":\"POST /v1/users\",\"body\":{\"handle\":\"g%d\"}}\n", i);
    resp_t r = http("POST", "/v1/batch", batch, NULL);
    free(batch);
    cr_assert_eq(r.status, 200, "%.200s", r.raw);
    int created = 0;
    for (const char *p = r.body; (p = strstr(p, "\"status\":201")) != NULL; p++)
        created++;
    resp_free(&r);
    cr_expect_eq(created, 200);
    long long commits = metric("reeld_log_group_commits_total") - before;
    cr_expect_eq(commits, 1, "200 lines took %lld group commits", commits);
    /* the group-commit size histogram: the user before alone, then 200 */
    cr_expect_eq(metric("reeld_log_group_commit_records_bucket{le=\"1\"}"), 1);
    cr_expect_eq(metric("reeld_log_group_commit_records_bucket{le=\"128\"}"), 1);
    cr_expect_eq(metric("reeld_log_group_commit_records_bucket{le=\"256\"}"), 2);
    cr_expect_eq(metric("reeld_log_group_commit_records_count"), 2);
    cr_expect_eq(metric("reeld_log_group_commit_records_sum"), 201);
    cr_expect_eq(metric("reeld_engine_batches_total") - batches, 1, "one batch of the writer");
}

/* Walks a list endpoint in pages of 2 through next_cursor until null:
 * the number of items, each key distinct (at most 64 pages). */
static int walk_pages(const char *path, const char *key)
{
    char url[256], cursor[128] = "";
    long long seen[128];
    int n = 0;
    for (int page = 0; page < 64; page++) {
        snprintf(url, sizeof(url), "%s%slimit=2%s%s", path, strchr(path, '?') ? "&" : "?",
                 cursor[0] ? "&cursor=" : "", cursor);
        resp_t r = http("GET", url, NULL, NULL);
        cr_assert_eq(r.status, 200, "%s: %s", url, r.raw);
        json_t *items = json_object_get(r.json, "items");
        cr_assert(json_is_array(items), "%s: %s", url, r.body);
        cr_expect_leq(json_array_size(items), 2, "%s: %s", url, r.body);
        for (size_t i = 0; i < json_array_size(items) && n < 128; i++) {
            long long v = json_integer_value(json_object_get(json_array_get(items, i), key));
            for (int j = 0; j < n; j++)
                cr_expect_neq(seen[j], v, "%s: %s %lld twice", path, key, v);
            seen[n++] = v;
        }
        json_t *nc = json_object_get(r.json, "next_cursor");
        bool more = json_is_string(nc);
        if (more)
            snprintf(cursor, sizeof(cursor), "%s", json_string_value(nc));
        resp_free(&r);
        if (!more)
            return n;
    }
    cr_assert_fail("%s: more than 64 pages", path);
    return -1;
}

/* Every list endpoint pages through its cursor: pages of 2, no item
 * twice, every item once, null at the end; limit above 200 is clamped. */
Test(server, every_list_endpoint_pages_through_its_cursor)
{
    srv_start(NULL);
    size_t cap = 64 * 1024, len = 0;
    char *b = malloc(cap);
    cr_assert_not_null(b);
    for (int i = 1; i <= 6; i++) /* users 1..6 */
        len += (size_t)snprintf(b + len, cap - len,
                                "{\"op\":\"POST /v1/users\",\"body\":{\"handle\":\"pg%d\"}}\n", i);
    len += (size_t)snprintf(b + len, cap - len, "{\"op\":\"PUT /v1/users/1/cameo\",\"body\":"
                            "{\"asset\":\"s3://c\"}}\n{\"op\":\"PUT /v1/users/1/cameo/policy\","
                            "\"body\":{\"policy\":\"everyone\"}}\n");
    for (int i = 2; i <= 6; i++)
        len += (size_t)snprintf(b + len, cap - len, "{\"op\":\"PUT /v1/users/%d/following/1\"}\n"
                                "{\"op\":\"PUT /v1/users/1/following/%d\"}\n", i, i);
    for (int i = 1; i <= 5; i++) /* posts 1..5 by user 1 */
        len += (size_t)snprintf(b + len, cap - len, "{\"op\":\"POST /v1/posts\",\"body\":{\"author\":"
                                "1,\"video_uri\":\"u\",\"prompt\":\"own %d\"}}\n", i);
    for (int i = 2; i <= 6; i++) /* posts 6..10: remixes of 1 featuring user 1's cameo */
        len += (size_t)snprintf(b + len, cap - len, "{\"op\":\"POST /v1/posts\",\"body\":{\"author\":"
                                "%d,\"video_uri\":\"u\",\"prompt\":\"remix\",\"remix_of\":1,"
                                "\"cameos\":[1]}}\n", i);
    for (int i = 2; i <= 6; i++)
        len += (size_t)snprintf(b + len, cap - len, "{\"op\":\"POST /v1/posts/1/comments\","
                                "\"body\":{\"author\":%d,\"text\":\"c%d\"}}\n", i, i);
    resp_t r = http("POST", "/v1/batch", b, NULL);
    free(b);
    cr_assert_eq(r.status, 200, "%.300s", r.raw);
    cr_expect_null(strstr(r.body, "\"status\":4"), "%s", r.body);
    resp_free(&r);
    cr_expect_eq(walk_pages("/v1/users/1/followers", "user_id"), 5);
    cr_expect_eq(walk_pages("/v1/users/1/following", "user_id"), 5);
    cr_expect_eq(walk_pages("/v1/users/1/friends", "user_id"), 5);
    cr_expect_eq(walk_pages("/v1/users/1/posts", "post_id"), 5);
    cr_expect_eq(walk_pages("/v1/posts/1/remixes", "post_id"), 5);
    cr_expect_eq(walk_pages("/v1/posts/1/comments", "comment_id"), 5);
    cr_expect_eq(walk_pages("/v1/users/1/cameo/appearances", "post_id"), 5);
    cr_expect_eq(walk_pages("/v1/users/1/feed?kind=following", "post_id"), 5);
    cr_expect_eq(walk_pages("/v1/users/2/feed", "post_id"), 9, "for_you: all but user 2's own");
    /* limit above 200 is clamped: 250 followers of user 7 give 200, then 50. */
    cap = 251 * 100;
    len = 0;
    b = malloc(cap);
    cr_assert_not_null(b);
    len += (size_t)snprintf(b + len, cap - len, "{\"op\":\"POST /v1/users\",\"body\":"
                            "{\"handle\":\"star\"}}\n");
    for (int i = 0; i < 250; i++)
        len += (size_t)snprintf(b + len, cap - len, "{\"op\":\"POST /v1/users\",\"body\":"
                                "{\"handle\":\"fan%d\"}}\n", i);
    r = http("POST", "/v1/batch", b, NULL);
    cr_assert_eq(r.status, 200, "%.300s", r.raw);
    resp_free(&r);
    len = 0;
    for (int i = 0; i < 250; i++)
        len += (size_t)snprintf(b + len, cap - len, "{\"op\":\"PUT /v1/users/%d/following/7\"}\n",
                                8 + i);
    r = http("POST", "/v1/batch", b, NULL);
    free(b);
    cr_assert_eq(r.status, 200, "%.300s", r.raw);
    cr_expect_null(strstr(r.body, "\"status\":4"), "%.300s", r.body);
    resp_free(&r);
    r = http("GET", "/v1/users/7/followers?limit=100000", NULL, NULL);
    cr_assert_eq(r.status, 200, "%.300s", r.raw);
    cr_expect_eq(json_array_size(json_object_get(r.json, "items")), 200);
    char path[256];
    snprintf(path, sizeof(path), "/v1/users/7/followers?limit=100000&cursor=%s",
             json_string_value(json_object_get(r.json, "next_cursor")));
    resp_free(&r);
    r = http("GET", path, NULL, NULL);
    cr_expect_eq(json_array_size(json_object_get(r.json, "items")), 50, "%.300s", r.body);
    cr_expect(json_is_null(json_object_get(r.json, "next_cursor")), "%.300s", r.body);
    resp_free(&r);
}

/* Overload: past --max-inflight-writes the server answers 503
 * unavailable at once and appends nothing for those writes; it stays
 * healthy and takes writes again once the load is gone. A batch's lines
 * are submitted together on the loop thread, so exactly the first N are
 * in flight when the rest arrive. */
Test(server, overload_answers_503_and_appends_nothing)
{
    srv_start("--max-inflight-writes", "8", NULL);
    size_t cap = 20 * 80, len = 0;
    char *b = malloc(cap);
    cr_assert_not_null(b);
    for (int i = 0; i < 20; i++)
        len += (size_t)snprintf(b + len, cap - len, "{\"op\":\"POST /v1/users\",\"body\":"
                                "{\"handle\":\"ov%d\"}}\n", i);
    resp_t r = http("POST", "/v1/batch", b, NULL);
    free(b);
    cr_assert_eq(r.status, 200, "%.300s", r.raw);
    const char *p = r.body;
    for (int i = 0; i < 20 && p != NULL; i++) {
        json_t *line = json_loads(p, JSON_DISABLE_EOF_CHECK, NULL);
        cr_assert_not_null(line, "%s", p);
        long long st = json_integer_value(json_object_get(line, "status"));
        json_t *err = json_object_get(json_object_get(line, "body"), "error");
        if (i < 8) {
            cr_expect_eq(st, 201, "line %d: %.200s", i, p);
        } else {
            cr_expect_eq(st, 503, "line %d: %.200s", i, p);
            cr_expect_str_eq(json_string_value(json_object_get(err, "code")), "unavailable");
        }
        json_decref(line);
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    resp_free(&r);
    cr_expect_eq(log_offset(), 7, "only the 8 accepted writes appended");
    expect(http("GET", "/v1/handles/ov7", NULL, NULL), 200, NULL);
    expect(http("GET", "/v1/handles/ov8", NULL, NULL), 404, "not_found");
    expect(http("POST", "/v1/users", "{\"handle\":\"after\"}", NULL), 201, NULL);
    cr_expect_geq(metric("reeld_commands_refused_total"), 12);
}

/* reeld prints its effective configuration at start, defaults included
 * (the contract's and this server's limits), before "listening on". */
Test(server, effective_configuration_is_printed_at_start)
{
    srv_start(NULL);
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/out.txt", tmp);
    char *out = reel_test_slurp(path);
    cr_assert_not_null(out);
    static const char *const want[] = {
        "listen 127.0.0.1:", "auth loopback only", "trust-client-time off", "invite-only off",
        "invites-per-user 4", "generations-per-day 30", "render-attempts 3", "dim 64",
        "max-connections 4096", "header-timeout-ms 10000", "body-timeout-ms 30000",
        "idle-timeout-ms 60000", "max-inflight-writes 65536", "sse-heartbeat-ms 15000"};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        cr_expect_not_null(strstr(out, want[i]), "no '%s' in: %s", want[i], out);
    const char *cfg = strstr(out, "reeld: data ");
    const char *listening = strstr(out, "reeld: listening on http://127.0.0.1:");
    cr_expect(cfg != NULL && listening != NULL && cfg < listening, "%s", out);
    free(out);
}
