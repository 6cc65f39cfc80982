/*
 * test_security.c: the security model of reeld (issue 8), checked on the
 * real server over loopback, as an attacker with a token meets it.
 *
 *  - Tokens and scopes: every route of ../shared/API.md against every scope
 *    (admin, app, worker, reader, none, unknown): allowed routes get past
 *    auth, forbidden ones are 403 `forbidden`, no token is 401 (but
 *    /healthz and /metrics); each scope's own work succeeds end to end;
 *    /v1/batch is checked per line against the caller's scope.
 *  - Consent: a cameo whose owner did not consent (only_me, approved
 *    without approving the actor, a block either way, mutuals without
 *    mutual follows) never reaches content, through /v1/posts,
 *    /v1/generations, /v1/batch, `reel import --ndjson`, or a render
 *    completion whose consent was revoked while it ran.
 *  - No input names a file: path-like strings in every string field leave
 *    the data directory holding only log/ and views/, create nothing
 *    outside it, and read nothing (no answer holds /etc/passwd).
 *
 * No sleep synchronises anything: waits are bounded polls and socket
 * reads with deadlines.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/harness.h"

static char tmp[PATH_MAX];
static char data_dir[PATH_MAX + 8];
static pid_t srv_pid = -1;
static int srv_port;

static void setup(void)
{
    reel_test_tmpdir(tmp, sizeof(tmp), "sec");
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

TestSuite(security, .init = setup, .fini = teardown, .timeout = 120);

typedef reel_test_resp_t resp_t;

#define srv_start(...) (srv_pid = reel_test_reeld_start(tmp, data_dir, \
                                                        (const char *const[]){__VA_ARGS__}, \
                                                        &srv_port))

static void srv_stop(void)
{
    cr_assert_eq(reel_test_reeld_stop(srv_pid, SIGTERM), 0, "reeld exits cleanly");
    srv_pid = -1;
}

/* "Authorization: Bearer TOKEN\r\n" for a token, NULL for none. */
static const char *auth_hdr(const char *token, char *buf, size_t len)
{
    if (token == NULL)
        return NULL;
    snprintf(buf, len, "Authorization: Bearer %s\r\n", token);
    return buf;
}

static resp_t req(const char *token, const char *method, const char *path, const char *body)
{
    char h[128];
    return reel_test_http(srv_port, method, path, body, auth_hdr(token, h, sizeof h));
}

static void expect(resp_t r, int status, const char *code)
{
    cr_expect_eq(r.status, status, "status %d, want %d: %s", r.status, status, r.raw);
    if (code != NULL)
        cr_expect_str_eq(reel_test_jerr(&r, "code"), code, "%s", r.body);
    reel_test_resp_free(&r);
}

/* A write or read that must succeed (2xx); returns member key or 0. */
static long long ok_as(const char *token, const char *method, const char *path, const char *body,
                       const char *key)
{
    resp_t r = req(token, method, path, body);
    cr_assert(r.status >= 200 && r.status < 300, "%s %s as %s: %s", method, path,
              token ? token : "-", r.raw);
    long long v = key ? reel_test_jint(&r, key) : 0;
    reel_test_resp_free(&r);
    return v;
}

static long long ok(const char *method, const char *path, const char *body, const char *key)
{
    return ok_as(NULL, method, path, body, key);
}

static long long user(const char *handle)
{
    char body[96];
    snprintf(body, sizeof body, "{\"handle\":\"%s\"}", handle);
    return ok("POST", "/v1/users", body, "user_id");
}

/* GET /v1/log/stream: only the status line and headers come (the stream
 * stays open); for an error answer, its code. Returns the status. */
static int stream_status(const char *token, char *code, size_t code_len)
{
    char h[128], rq[512];
    const char *ah = auth_hdr(token, h, sizeof h);
    int n = snprintf(rq, sizeof rq, "GET /v1/log/stream HTTP/1.1\r\nHost: t\r\n%s\r\n",
                     ah ? ah : "");
    int fd = reel_test_http_connect(srv_port);
    cr_assert_geq(fd, 0);
    cr_assert(reel_test_http_send(fd, rq, (size_t)n));
    char buf[8192];
    size_t got = 0;
    uint64_t deadline = reel_test_now_ms() + 10000;
    int status = 0;
    code[0] = '\0';
    while (got < sizeof buf - 1 && reel_test_now_ms() < deadline) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 200) <= 0)
            continue;
        ssize_t k = read(fd, buf + got, sizeof buf - 1 - got);
        if (k <= 0)
            break;
        got += (size_t)k;
        buf[got] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end == NULL)
            continue;
        sscanf(buf, "HTTP/1.1 %d", &status);
        if (strstr(buf, "text/event-stream") != NULL)
            break;
        if (reel_test_http_answer_len(buf, got) > 0) { /* a whole error answer */
            char *c = strstr(end, "\"code\"");
            if (c != NULL)
                sscanf(c, "\"code\":\"%63[^\"]\"", code), (void)code_len;
            break;
        }
    }
    close(fd);
    cr_assert_neq(status, 0, "an answer to the stream request: %s", got ? buf : "(none)");
    return status;
}

/* ---- tokens and scopes ---- */

/* Every route of the contract: its method and a path with well-formed ids
 * (unknown ones: an allowed caller gets past auth, then 404 or 400). */
typedef struct route_case {
    const char *method, *path, *pattern;
} route_case_t;

#define X 999999
static const route_case_t routes[] = {
    {"POST", "/v1/users", "POST /v1/users"},
    {"PATCH", "/v1/users/999999", "PATCH /v1/users/{id}"},
    {"DELETE", "/v1/users/999999", "DELETE /v1/users/{id}"},
    {"POST", "/v1/users/999999/invites", "POST /v1/users/{id}/invites"},
    {"PUT", "/v1/users/999999/following/999998", "PUT /v1/users/{id}/following/{target}"},
    {"DELETE", "/v1/users/999999/following/999998", "DELETE /v1/users/{id}/following/{target}"},
    {"PUT", "/v1/users/999999/blocks/999998", "PUT /v1/users/{id}/blocks/{target}"},
    {"DELETE", "/v1/users/999999/blocks/999998", "DELETE /v1/users/{id}/blocks/{target}"},
    {"POST", "/v1/posts", "POST /v1/posts"},
    {"POST", "/v1/posts/999999/publish", "POST /v1/posts/{id}/publish"},
    {"DELETE", "/v1/posts/999999", "DELETE /v1/posts/{id}"},
    {"PUT", "/v1/posts/999999/likes/999998", "PUT /v1/posts/{id}/likes/{user}"},
    {"DELETE", "/v1/posts/999999/likes/999998", "DELETE /v1/posts/{id}/likes/{user}"},
    {"POST", "/v1/posts/999999/comments", "POST /v1/posts/{id}/comments"},
    {"DELETE", "/v1/comments/999999", "DELETE /v1/comments/{id}"},
    {"POST", "/v1/views", "POST /v1/views"},
    {"POST", "/v1/feedback", "POST /v1/feedback"},
    {"PUT", "/v1/users/999999/cameo", "PUT /v1/users/{id}/cameo"},
    {"DELETE", "/v1/users/999999/cameo", "DELETE /v1/users/{id}/cameo"},
    {"PUT", "/v1/users/999999/cameo/policy", "PUT /v1/users/{id}/cameo/policy"},
    {"PUT", "/v1/users/999999/cameo/approvals/999998",
     "PUT /v1/users/{id}/cameo/approvals/{grantee}"},
    {"DELETE", "/v1/users/999999/cameo/approvals/999998",
     "DELETE /v1/users/{id}/cameo/approvals/{grantee}"},
    {"DELETE", "/v1/posts/999999/cameos/999998", "DELETE /v1/posts/{id}/cameos/{owner}"},
    {"POST", "/v1/generations", "POST /v1/generations"},
    {"POST", "/v1/render/claim", "POST /v1/render/claim"},
    {"POST", "/v1/render/999999/heartbeat", "POST /v1/render/{id}/heartbeat"},
    {"POST", "/v1/render/999999/complete", "POST /v1/render/{id}/complete"},
    {"POST", "/v1/render/999999/fail", "POST /v1/render/{id}/fail"},
    {"GET", "/v1/users/999999", NULL},
    {"GET", "/v1/handles/nobody", NULL},
    {"GET", "/v1/users/999999/followers", NULL},
    {"GET", "/v1/users/999999/following", NULL},
    {"GET", "/v1/users/999999/friends", NULL},
    {"GET", "/v1/users/999999/cameo/can-use?user=999998", NULL},
    {"GET", "/v1/users/999999/cameo/appearances", NULL},
    {"GET", "/v1/generations/999999", NULL},
    {"GET", "/v1/users/999999/quota", NULL},
    {"GET", "/v1/posts/999999", NULL},
    {"GET", "/v1/users/999999/posts", NULL},
    {"GET", "/v1/posts/999999/remixes", NULL},
    {"GET", "/v1/posts/999999/comments", NULL},
    {"GET", "/v1/users/999999/feed", NULL},
    {"GET", "/v1/users/999999/feed?kind=following", NULL},
    {"GET", "/v1/leaderboard", NULL},
    {"GET", "/v1/tags/trending", NULL},
    {"GET", "/v1/log?limit=1", NULL},
    {"GET", "/v1/log/stream", NULL},
    {"POST", "/v1/batch", NULL},
    {"GET", "/healthz", NULL},
    {"GET", "/metrics", NULL},
};
#undef X

static const char *const scope_tokens[][2] = {
    {"admin", "adm-1"}, {"app", "app-1"}, {"worker", "wrk-1"}, {"reader", "rdr-1"},
};

static void start_with_tokens(void)
{
    char path[PATH_MAX + 16], text[256] = "";
    for (size_t i = 0; i < 4; i++) {
        size_t l = strlen(text);
        snprintf(text + l, sizeof text - l, "%s %s\n", scope_tokens[i][0], scope_tokens[i][1]);
    }
    snprintf(path, sizeof path, "%s/tokens", tmp);
    cr_assert_eq(reel_test_write_file(path, text, strlen(text)), 0);
    srv_start("--token-file", path, NULL);
}

/* The contract's rule: may scope call method path? */
static bool contract_allows(const char *scope, const char *method, const char *path)
{
    bool render = strncmp(path, "/v1/render/", 11) == 0;
    if (strcmp(scope, "admin") == 0)
        return true;
    if (strcmp(scope, "app") == 0)
        return !render;
    if (strcmp(scope, "worker") == 0)
        return render;
    if (strcmp(scope, "reader") == 0)
        return strcmp(method, "GET") == 0;
    return false;
}

/* The table is the whole contract: every write route of the engine's
 * command map is in it. */
Test(security, route_table_covers_every_write)
{
    static const char *const cmds[] = {
#define REEL__PAT(name, pat) pat,
        REEL_CMD_MAP(REEL__PAT)
#undef REEL__PAT
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        bool found = false;
        for (size_t j = 0; j < sizeof routes / sizeof routes[0]; j++)
            found |= routes[j].pattern && strcmp(routes[j].pattern, cmds[i]) == 0;
        cr_expect(found, "route %s is not in the scope matrix", cmds[i]);
    }
}

/* Every route against every scope: forbidden is 403 `forbidden`, allowed
 * gets past auth (neither 401 nor 403), no or unknown token 401. */
Test(security, every_route_every_scope)
{
    start_with_tokens();
    const char *callers[][2] = {{"admin", "adm-1"}, {"app", "app-1"}, {"worker", "wrk-1"},
                                {"reader", "rdr-1"}, {"none", NULL},  {"unknown", "adm-2"}};
    for (size_t c = 0; c < sizeof callers / sizeof callers[0]; c++) {
        const char *scope = callers[c][0], *token = callers[c][1];
        for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
            const route_case_t *rc = &routes[i];
            bool open = strcmp(rc->path, "/healthz") == 0 || strcmp(rc->path, "/metrics") == 0;
            bool known = token != NULL && strcmp(scope, "unknown") != 0;
            bool allowed = open || (known && contract_allows(scope, rc->method, rc->path));
            int status;
            char code[64] = "";
            if (strcmp(rc->path, "/v1/log/stream") == 0) {
                status = stream_status(token, code, sizeof code);
            } else {
                const char *body = strcmp(rc->method, "GET") == 0 ? NULL
                                   : strcmp(rc->path, "/v1/batch") == 0 ? ""
                                                                         : "{}";
                resp_t r = req(token, rc->method, rc->path, body);
                status = r.status;
                snprintf(code, sizeof code, "%s", reel_test_jerr(&r, "code"));
                reel_test_resp_free(&r);
            }
            if (allowed) {
                cr_expect(status != 401 && status != 403 && status > 0,
                          "%s %s %s: allowed, got %d %s", scope, rc->method, rc->path, status,
                          code);
                if (open || strcmp(rc->path, "/v1/log/stream") == 0)
                    cr_expect_eq(status, 200, "%s %s", scope, rc->path);
            } else if (!known) {
                cr_expect(status == 401 && strcmp(code, "unauthorized") == 0,
                          "%s %s %s: want 401 unauthorized, got %d %s", scope, rc->method,
                          rc->path, status, code);
            } else {
                cr_expect(status == 403 && strcmp(code, "forbidden") == 0,
                          "%s %s %s: want 403 forbidden, got %d %s", scope, rc->method, rc->path,
                          status, code);
            }
        }
    }
}

/* One batch line per op, as token; the answers' statuses into st. */
static int batch(const char *token, const char *body, int *st, int max, resp_t *keep)
{
    resp_t r = req(token, "POST", "/v1/batch", body);
    int n = 0;
    if (r.status == 200) {
        for (char *p = r.body; p && *p && n < max; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
            json_t *j = json_loads(p, JSON_DISABLE_EOF_CHECK, NULL);
            if (j == NULL)
                break;
            st[n++] = (int)json_integer_value(json_object_get(j, "status"));
            json_decref(j);
        }
    }
    int status = r.status;
    if (keep)
        *keep = r;
    else
        reel_test_resp_free(&r);
    return n > 0 ? n : -status;
}

/* Each scope's own work succeeds end to end; the scope rules hold for
 * real resources, and /v1/batch lines are judged against the caller. */
Test(security, scopes_do_their_work_and_no_more)
{
    start_with_tokens();
    const char *adm = "adm-1", *app = "app-1", *wrk = "wrk-1", *rdr = "rdr-1";
    long long a = ok_as(app, "POST", "/v1/users", "{\"handle\":\"ann\"}", "user_id");
    long long b = ok_as(adm, "POST", "/v1/users", "{\"handle\":\"bob\"}", "user_id");
    char p[256], body[512];
    snprintf(p, sizeof p, "/v1/users/%lld/following/%lld", a, b);
    ok_as(app, "PUT", p, NULL, NULL);
    expect(req(rdr, "PUT", p, NULL), 403, "forbidden");
    expect(req(wrk, "PUT", p, NULL), 403, "forbidden");
    snprintf(p, sizeof p, "/v1/users/%lld/cameo", b);
    ok_as(app, "PUT", p, "{\"asset\":\"s3://c/bob\"}", NULL);
    snprintf(p, sizeof p, "/v1/users/%lld/cameo/policy", b);
    ok_as(app, "PUT", p, "{\"policy\":\"everyone\"}", NULL);
    snprintf(body, sizeof body,
             "{\"author\":%lld,\"video_uri\":\"s3://v/1\",\"prompt\":\"cat\",\"tags\":[\"cats\"]}",
             a);
    long long post = ok_as(app, "POST", "/v1/posts", body, "post_id");
    expect(req(rdr, "POST", "/v1/posts", body), 403, "forbidden");
    expect(req(wrk, "POST", "/v1/posts", body), 403, "forbidden");
    snprintf(p, sizeof p, "/v1/posts/%lld/likes/%lld", post, b);
    ok_as(adm, "PUT", p, NULL, NULL);
    expect(req(rdr, "DELETE", p, NULL), 403, "forbidden");
    snprintf(p, sizeof p, "/v1/posts/%lld/comments", post);
    ok_as(app, "POST", p, "{\"author\":2,\"text\":\"nice\"}", "comment_id");
    snprintf(body, sizeof body, "{\"user\":%lld,\"post\":%lld,\"watch_ms\":900}", b, post);
    ok_as(app, "POST", "/v1/views", body, NULL);
    expect(req(rdr, "POST", "/v1/views", body), 403, "forbidden");
    snprintf(body, sizeof body, "{\"user\":%lld,\"post\":%lld,\"kind\":\"see_more\"}", b, post);
    ok_as(app, "POST", "/v1/feedback", body, NULL);
    snprintf(body, sizeof body, "{\"user\":%lld,\"prompt\":\"dog\",\"cameos\":[%lld]}", a, b);
    long long g = ok_as(app, "POST", "/v1/generations", body, "generation_id");
    expect(req(wrk, "POST", "/v1/generations", body), 403, "forbidden");

    /* the render queue: worker and admin only */
    const char *claim = "{\"worker\":\"w1\",\"max\":4,\"wait_ms\":0}";
    expect(req(app, "POST", "/v1/render/claim", claim), 403, "forbidden");
    expect(req(rdr, "POST", "/v1/render/claim", claim), 403, "forbidden");
    resp_t r = req(wrk, "POST", "/v1/render/claim", claim);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    json_t *tasks = json_object_get(r.json, "tasks");
    cr_assert_eq(json_array_size(tasks), 1, "%s", r.body);
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(tasks, 0), "generation_id")), g);
    reel_test_resp_free(&r);
    snprintf(p, sizeof p, "/v1/render/%lld/heartbeat", g);
    ok_as(wrk, "POST", p, "{\"worker\":\"w1\"}", NULL);
    snprintf(p, sizeof p, "/v1/render/%lld/complete", g);
    const char *done = "{\"worker\":\"w1\",\"video_uri\":\"s3://r/1\",\"duration_ms\":900,"
                       "\"publish\":true}";
    expect(req(app, "POST", p, done), 403, "forbidden");
    long long gpost = ok_as(wrk, "POST", p, done, "post_id");
    cr_assert_gt(gpost, 0);

    /* every read family: reader gets 200, worker 403 */
    char reads[16][160];
    int nr = 0;
    snprintf(reads[nr++], 160, "/v1/users/%lld", a);
    snprintf(reads[nr++], 160, "/v1/handles/ann");
    snprintf(reads[nr++], 160, "/v1/users/%lld/followers", b);
    snprintf(reads[nr++], 160, "/v1/users/%lld/friends", b);
    snprintf(reads[nr++], 160, "/v1/users/%lld/cameo/can-use?user=%lld", b, a);
    snprintf(reads[nr++], 160, "/v1/users/%lld/cameo/appearances", b);
    snprintf(reads[nr++], 160, "/v1/generations/%lld", g);
    snprintf(reads[nr++], 160, "/v1/users/%lld/quota", a);
    snprintf(reads[nr++], 160, "/v1/posts/%lld", post);
    snprintf(reads[nr++], 160, "/v1/users/%lld/posts", a);
    snprintf(reads[nr++], 160, "/v1/posts/%lld/comments", post);
    snprintf(reads[nr++], 160, "/v1/users/%lld/feed?kind=for_you", b);
    snprintf(reads[nr++], 160, "/v1/leaderboard?by=likes");
    snprintf(reads[nr++], 160, "/v1/tags/trending");
    snprintf(reads[nr++], 160, "/v1/log?limit=5");
    for (int i = 0; i < nr; i++) {
        ok_as(rdr, "GET", reads[i], NULL, NULL);
        ok_as(app, "GET", reads[i], NULL, NULL);
        ok_as(adm, "GET", reads[i], NULL, NULL);
        expect(req(wrk, "GET", reads[i], NULL), 403, "forbidden");
    }
    char code[64];
    cr_expect_eq(stream_status(rdr, code, sizeof code), 200);
    cr_expect_eq(stream_status(wrk, code, sizeof code), 403);
    cr_expect_str_eq(code, "forbidden");

    /* /v1/batch: a reader or worker may not send one at all; an app's line
     * that calls /v1/render/... is refused on its own (403 forbidden) while
     * the app's other lines apply; admin may do both */
    snprintf(body, sizeof body,
             "{\"op\":\"POST /v1/users\",\"body\":{\"handle\":\"viaapp\"}}\n"
             "{\"op\":\"POST /v1/render/claim\",\"body\":{\"worker\":\"w9\",\"wait_ms\":0}}\n"
             "{\"op\":\"PUT /v1/users/%lld/following/%lld\"}\n",
             b, a);
    int st[8];
    resp_t br;
    cr_assert_eq(batch(app, body, st, 8, &br), 3);
    cr_expect_eq(st[0], 201, "%s", br.body);
    cr_expect_eq(st[1], 403, "%s", br.body);
    cr_expect(strstr(br.body, "\"forbidden\"") != NULL, "%s", br.body);
    cr_expect_eq(st[2], 200, "%s", br.body);
    reel_test_resp_free(&br);
    const char *rb = "{\"op\":\"POST /v1/users\",\"body\":{\"handle\":\"viareader\"}}\n"
                     "{\"op\":\"PUT /v1/users/1/blocks/2\"}\n";
    cr_expect_eq(batch(rdr, rb, st, 8, NULL), -403, "a reader's batch is refused");
    const char *wb = "{\"op\":\"POST /v1/users\",\"body\":{\"handle\":\"viaworker\"}}\n"
                     "{\"op\":\"POST /v1/render/claim\",\"body\":{\"worker\":\"w9\"}}\n";
    cr_expect_eq(batch(wrk, wb, st, 8, NULL), -403, "a worker's batch is refused");
    cr_expect_eq(batch(NULL, rb, st, 8, NULL), -401);
    /* reads are not batch lines, for any scope */
    cr_assert_eq(batch(app, "{\"op\":\"GET /v1/users/1\"}\n", st, 8, NULL), 1);
    cr_expect_eq(st[0], 400);
    const char *ab = "{\"op\":\"POST /v1/users\",\"body\":{\"handle\":\"viaadmin\"}}\n"
                     "{\"op\":\"POST /v1/render/claim\",\"body\":{\"worker\":\"w9\",\"wait_ms\":0}}\n";
    cr_assert_eq(batch(adm, ab, st, 8, NULL), 2);
    cr_expect_eq(st[0], 201);
    cr_expect_eq(st[1], 200);
    /* what the refused callers tried left nothing behind */
    expect(req(adm, "GET", "/v1/handles/viareader", NULL), 404, "not_found");
    expect(req(adm, "GET", "/v1/handles/viaworker", NULL), 404, "not_found");
    ok_as(adm, "GET", "/v1/handles/viaapp", NULL, NULL);
    snprintf(p, sizeof p, "/v1/users/%lld/friends", a);
    r = req(rdr, "GET", p, NULL);
    cr_expect_eq(json_array_size(json_object_get(r.json, "items")), 1, "the app's follow: %s",
                 r.body);
    reel_test_resp_free(&r);
    /* a token is the whole header value: no prefix, suffix or case games */
    expect(req("adm-1 ", "GET", "/v1/users/1", NULL), 401, "unauthorized");
    expect(req("adm-", "GET", "/v1/users/1", NULL), 401, "unauthorized");
    expect(reel_test_http(srv_port, "GET", "/v1/users/1", NULL, "Authorization: adm-1\r\n"), 401,
           "unauthorized");
    expect(reel_test_http(srv_port, "GET", "/v1/users/1", NULL,
                          "Authorization: bearer adm-1\r\n"), 401, "unauthorized");
}

/* ---- consent ---- */

/* The NDJSON lines of GET /v1/log?types=... as JSON (caller frees). */
static json_t *log_events(const char *types)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/log?limit=100000&types=%s", types);
    resp_t r = req(NULL, "GET", path, NULL);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    json_t *all = json_array();
    for (char *p = r.body; p && *p;) {
        json_t *j = json_loads(p, JSON_DISABLE_EOF_CHECK, NULL);
        if (j != NULL)
            json_array_append_new(all, j);
        char *nl = strchr(p, '\n');
        p = nl ? nl + 1 : NULL;
    }
    reel_test_resp_free(&r);
    return all;
}

static bool has_id(json_t *arr, long long id)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (json_integer_value(v) == id)
            return true;
    }
    return false;
}

/* No content features owner's cameo: appearances empty, and no
 * post.created (nor generation.completed) in the log names it. */
static void assert_no_appearance(long long owner)
{
    char p[128];
    snprintf(p, sizeof p, "/v1/users/%lld/cameo/appearances", owner);
    resp_t r = req(NULL, "GET", p, NULL);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_expect_eq(json_array_size(json_object_get(r.json, "items")), 0,
                 "owner %lld's cameo appears: %s", owner, r.body);
    reel_test_resp_free(&r);
    json_t *ev = log_events("post.created");
    size_t i;
    json_t *e;
    json_array_foreach(ev, i, e) {
        cr_expect(!has_id(json_object_get(e, "cameos"), owner), "a post with %lld's cameo: %s",
                  owner, json_string_value(json_object_get(e, "type")));
    }
    json_decref(ev);
}

static bool denied(int status, const char *code)
{
    return status == 403 &&
           (strcmp(code, "cameo_not_allowed") == 0 || strcmp(code, "blocked") == 0);
}

static void set_policy(long long u, const char *policy)
{
    char p[128], b[64];
    snprintf(p, sizeof p, "/v1/users/%lld/cameo/policy", u);
    snprintf(b, sizeof b, "{\"policy\":\"%s\"}", policy);
    ok("PUT", p, b, NULL);
}

static long long cameo_user(const char *handle, const char *policy)
{
    long long u = user(handle);
    char p[128];
    snprintf(p, sizeof p, "/v1/users/%lld/cameo", u);
    ok("PUT", p, "{\"asset\":\"s3://cameo/x\"}", NULL);
    if (policy)
        set_policy(u, policy);
    return u;
}

#define pathf(buf, ...) snprintf(buf, 160, __VA_ARGS__)

/* Every way of putting a cameo into content is refused when its owner did
 * not consent; and a render whose consent is revoked mid-flight never
 * completes. Then `reel import --ndjson` (the engine, as admin) tries the
 * same and is refused too. */
Test(security, consent_holds_on_every_path)
{
    srv_start(NULL);
    long long actor = user("actor"), friend = user("friend");
    char p[160], body[1024];
    /* owners who did not consent to actor */
    long long deny[5];
    deny[0] = cameo_user("onlyme", NULL); /* default only_me */
    deny[1] = cameo_user("approver", "approved");
    pathf(p, "/v1/users/%lld/cameo/approvals/%lld", deny[1], friend);
    ok("PUT", p, NULL, NULL); /* approves someone else */
    deny[2] = cameo_user("blocker", "everyone");
    pathf(p, "/v1/users/%lld/blocks/%lld", deny[2], actor);
    ok("PUT", p, NULL, NULL);
    deny[3] = cameo_user("blocked", "everyone");
    pathf(p, "/v1/users/%lld/blocks/%lld", actor, deny[3]);
    ok("PUT", p, NULL, NULL);
    deny[4] = cameo_user("mutual", "mutuals");
    pathf(p, "/v1/users/%lld/following/%lld", actor, deny[4]);
    ok("PUT", p, NULL, NULL); /* one way only */
    for (int i = 0; i < 5; i++) {
        long long o = deny[i];
        pathf(p, "/v1/users/%lld/cameo/can-use?user=%lld", o, actor);
        resp_t r = req(NULL, "GET", p, NULL);
        cr_expect(json_is_false(json_object_get(r.json, "allowed")), "%s", r.body);
        reel_test_resp_free(&r);
        const char *vis[] = {"public", "draft"};
        for (int v = 0; v < 2; v++) {
            snprintf(body, sizeof body,
                     "{\"author\":%lld,\"video_uri\":\"s3://v\",\"prompt\":\"p\","
                     "\"cameos\":[%lld,%lld],\"visibility\":\"%s\"}",
                     actor, actor, o, vis[v]);
            r = req(NULL, "POST", "/v1/posts", body);
            cr_expect(denied(r.status, reel_test_jerr(&r, "code")), "post with %lld: %s", o,
                      r.raw);
            if (strcmp(reel_test_jerr(&r, "code"), "cameo_not_allowed") == 0)
                cr_expect_str_eq(reel_test_jerr(&r, "field"), "cameos[1]");
            reel_test_resp_free(&r);
        }
        snprintf(body, sizeof body, "{\"user\":%lld,\"prompt\":\"p\",\"cameos\":[%lld]}", actor,
                 o);
        r = req(NULL, "POST", "/v1/generations", body);
        cr_expect(denied(r.status, reel_test_jerr(&r, "code")), "generation with %lld: %s", o,
                  r.raw);
        reel_test_resp_free(&r);
        /* the same through /v1/batch, with a key, beside a good line */
        snprintf(body, sizeof body,
                 "{\"op\":\"POST /v1/posts\",\"body\":{\"author\":%lld,\"video_uri\":\"s3://v\","
                 "\"prompt\":\"p\",\"cameos\":[%lld]}}\n"
                 "{\"op\":\"POST /v1/generations\",\"body\":{\"user\":%lld,\"prompt\":\"p\","
                 "\"cameos\":[%lld]},\"idempotency_key\":\"g-%lld\"}\n"
                 "{\"op\":\"POST /v1/posts\",\"body\":{\"author\":%lld,\"video_uri\":\"s3://v\","
                 "\"prompt\":\"mine\",\"cameos\":[%lld]}}\n",
                 actor, o, actor, o, o, actor, actor);
        int st[4];
        cr_assert_eq(batch(NULL, body, st, 4, NULL), 3);
        cr_expect_eq(st[0], 403, "batch post with %lld", o);
        cr_expect_eq(st[1], 403, "batch generation with %lld", o);
        cr_expect_eq(st[2], 201, "the actor's own cameo line applies");
    }
    /* an only_me owner may use their own cameo (the check is not just "no") */
    long long self = cameo_user("selfie", NULL);
    snprintf(body, sizeof body,
             "{\"author\":%lld,\"video_uri\":\"s3://v\",\"prompt\":\"me\",\"cameos\":[%lld]}",
             self, self);
    ok("POST", "/v1/posts", body, "post_id");

    /* render completion after consent is revoked while the task runs: by
     * policy, by approval, by a block, by the end of mutual follows, by
     * the cameo's deletion */
    long long rev[5];
    rev[0] = cameo_user("r_policy", "everyone");
    rev[1] = cameo_user("r_approval", "approved");
    pathf(p, "/v1/users/%lld/cameo/approvals/%lld", rev[1], actor);
    ok("PUT", p, NULL, NULL);
    rev[2] = cameo_user("r_block", "everyone");
    rev[3] = cameo_user("r_mutual", "mutuals");
    pathf(p, "/v1/users/%lld/following/%lld", actor, rev[3]);
    ok("PUT", p, NULL, NULL);
    pathf(p, "/v1/users/%lld/following/%lld", rev[3], actor);
    ok("PUT", p, NULL, NULL);
    rev[4] = cameo_user("r_delete", "everyone");
    long long gen[5];
    for (int i = 0; i < 5; i++) {
        snprintf(body, sizeof body, "{\"user\":%lld,\"prompt\":\"run\",\"cameos\":[%lld]}", actor,
                 rev[i]);
        gen[i] = ok("POST", "/v1/generations", body, "generation_id");
    }
    resp_t r = req(NULL, "POST", "/v1/render/claim", "{\"worker\":\"w\",\"max\":10,\"wait_ms\":0}");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert_eq(json_array_size(json_object_get(r.json, "tasks")), 5, "%s", r.body);
    reel_test_resp_free(&r);
    set_policy(rev[0], "only_me");
    pathf(p, "/v1/users/%lld/cameo/approvals/%lld", rev[1], actor);
    ok("DELETE", p, NULL, NULL);
    pathf(p, "/v1/users/%lld/blocks/%lld", rev[2], actor);
    ok("PUT", p, NULL, NULL);
    pathf(p, "/v1/users/%lld/following/%lld", rev[3], actor);
    ok("DELETE", p, NULL, NULL);
    pathf(p, "/v1/users/%lld/cameo", rev[4]);
    ok("DELETE", p, NULL, NULL);
    /* consent given back afterwards does not revive the task */
    pathf(p, "/v1/users/%lld/cameo/approvals/%lld", rev[1], actor);
    ok("PUT", p, NULL, NULL);
    const char *done = "{\"worker\":\"w\",\"video_uri\":\"s3://r\",\"duration_ms\":500,"
                       "\"publish\":true}";
    for (int i = 0; i < 5; i++) {
        pathf(p, "/v1/generations/%lld", gen[i]);
        r = req(NULL, "GET", p, NULL);
        cr_expect_str_eq(json_string_value(json_object_get(r.json, "status")), "cancelled", "%s",
                         r.body);
        reel_test_resp_free(&r);
        pathf(p, "/v1/render/%lld/heartbeat", gen[i]);
        expect(req(NULL, "POST", p, "{\"worker\":\"w\"}"), 409, "lease_lost");
        pathf(p, "/v1/render/%lld/complete", gen[i]);
        expect(req(NULL, "POST", p, done), 409, "lease_lost");
        snprintf(body, sizeof body,
                 "{\"op\":\"POST /v1/render/%lld/complete\",\"body\":%s}\n", gen[i], done);
        int st[2];
        cr_assert_eq(batch(NULL, body, st, 2, NULL), 1);
        cr_expect_eq(st[0], 409, "batch completion of a revoked task");
    }
    /* a task revoked while queued is never handed out */
    long long late = cameo_user("r_queued", "everyone");
    snprintf(body, sizeof body, "{\"user\":%lld,\"prompt\":\"q\",\"cameos\":[%lld]}", actor, late);
    long long gq = ok("POST", "/v1/generations", body, "generation_id");
    set_policy(late, "only_me");
    r = req(NULL, "POST", "/v1/render/claim", "{\"worker\":\"w\",\"max\":10,\"wait_ms\":0}");
    cr_expect_eq(json_array_size(json_object_get(r.json, "tasks")), 0, "%s", r.body);
    reel_test_resp_free(&r);

    for (int i = 0; i < 5; i++) {
        assert_no_appearance(deny[i]);
        assert_no_appearance(rev[i]);
    }
    assert_no_appearance(late);
    json_t *ev = log_events("generation.requested,generation.completed");
    size_t i;
    json_t *e;
    json_array_foreach(ev, i, e) {
        const char *t = json_string_value(json_object_get(e, "type"));
        for (int k = 0; k < 5; k++) {
            if (strcmp(t, "generation.requested") == 0)
                cr_expect(!has_id(json_object_get(e, "cameos"), deny[k]), "requested with %lld",
                          deny[k]);
            else
                cr_expect(json_integer_value(json_object_get(e, "generation_id")) != gen[k],
                          "a revoked generation completed");
        }
        if (strcmp(t, "generation.completed") == 0)
            cr_expect(json_integer_value(json_object_get(e, "generation_id")) != gq);
    }
    json_decref(ev);

    /* `reel import --ndjson` goes through the engine as admin: the same
     * attempts are refused there, line by line, while a good line applies */
    srv_stop();
    char file[PATH_MAX + 16], out[PATH_MAX + 16], err[PATH_MAX + 16];
    snprintf(file, sizeof file, "%s/cmds.ndjson", tmp);
    snprintf(out, sizeof out, "%s/import.out", tmp);
    snprintf(err, sizeof err, "%s/import.err", tmp);
    FILE *f = fopen(file, "w");
    cr_assert(f != NULL);
    long long at = 4000000000000LL; /* later than anything the engine stamped */
    int line = 0, refused_lines[32], nref = 0;
    for (int k = 0; k < 5; k++) {
        fprintf(f, "{\"op\":\"POST /v1/posts\",\"body\":{\"author\":%lld,\"video_uri\":\"s3://i\","
                   "\"prompt\":\"i\",\"cameos\":[%lld]},\"at\":%lld}\n", actor, deny[k], at++);
        refused_lines[nref++] = ++line;
        fprintf(f, "{\"op\":\"POST /v1/generations\",\"body\":{\"user\":%lld,\"prompt\":\"i\","
                   "\"cameos\":[%lld]},\"at\":%lld}\n", actor, deny[k], at++);
        refused_lines[nref++] = ++line;
        fprintf(f, "{\"op\":\"POST /v1/render/%lld/complete\",\"body\":{\"worker\":\"w\","
                   "\"video_uri\":\"s3://i\",\"duration_ms\":5},\"at\":%lld}\n", gen[k], at++);
        refused_lines[nref++] = ++line;
    }
    fprintf(f, "{\"op\":\"POST /v1/posts\",\"body\":{\"author\":%lld,\"video_uri\":\"s3://i\","
               "\"prompt\":\"ok\"},\"at\":%lld}\n", actor, at++);
    line++;
    fclose(f);
    const char *base = getenv("REEL_BIN");
    char bin[PATH_MAX];
    snprintf(bin, sizeof bin, "%s/reel", base != NULL && base[0] != '\0' ? base : "build");
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0)
            _exit(127);
        execl(bin, bin, "import", "--data", data_dir, "--ndjson", file, (char *)NULL);
        _exit(127);
    }
    int ws;
    cr_assert_eq(waitpid(pid, &ws, 0), pid);
    uint8_t *etext, *otext;
    size_t elen, olen;
    cr_assert_eq(reel_test_read_file(err, &etext, &elen), 0);
    cr_assert_eq(reel_test_read_file(out, &otext, &olen), 0);
    etext[elen] = '\0';
    otext[olen] = '\0';
    cr_expect(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "import: %s", (char *)etext);
    for (int k = 0; k < nref; k++) {
        char want[64];
        snprintf(want, sizeof want, "cmds.ndjson:%d: refused", refused_lines[k]);
        cr_expect(strstr((char *)etext, want) != NULL, "line %d refused: %s", refused_lines[k],
                  (char *)etext);
    }
    char applied[64];
    snprintf(applied, sizeof applied, "1 commands applied, %d refused", nref);
    cr_expect(strstr((char *)otext, applied) != NULL, "%s", (char *)otext);
    free(etext);
    free(otext);
    srv_start(NULL);
    for (int k = 0; k < 5; k++) {
        assert_no_appearance(deny[k]);
        assert_no_appearance(rev[k]);
    }
}

/* ---- no input names a file ---- */

/* Appends every path under dir (relative to root) to list, one a line. */
static void list_tree(const char *root, const char *rel, char *list, size_t cap)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s%s%s", root, rel[0] ? "/" : "", rel);
    DIR *d = opendir(path);
    if (d == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char sub[PATH_MAX];
        snprintf(sub, sizeof sub, "%s%s%s", rel, rel[0] ? "/" : "", de->d_name);
        size_t l = strlen(list);
        snprintf(list + l, cap - l, "%s\n", sub);
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", root, sub);
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
            list_tree(root, sub, list, cap);
    }
    closedir(d);
}

/* Whether every entry of a data dir listing is log/... or views/... */
static bool only_log_and_views(const char *list, char *bad, size_t bad_len)
{
    for (const char *p = list; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        bool okp = (n == 3 && strncmp(p, "log", 3) == 0) || (n == 5 && strncmp(p, "views", 5) == 0) ||
                   strncmp(p, "log/", 4) == 0 || strncmp(p, "views/", 6) == 0;
        if (!okp) {
            snprintf(bad, bad_len, "%.*s", (int)n, p);
            return false;
        }
        p = nl ? nl + 1 : p + n;
    }
    return true;
}

Test(security, no_input_names_a_file, .timeout = 120)
{
    srv_start(NULL);
    /* path-like values: relative escapes out of the data dir (which is
     * tmp/data: ../pwned would be tmp/pwned), absolute, file: URIs */
    char abs_target[PATH_MAX + 16], uri_target[PATH_MAX + 32];
    snprintf(abs_target, sizeof abs_target, "%s/pwned_abs", tmp);
    snprintf(uri_target, sizeof uri_target, "file://%s/pwned_uri", tmp);
    const char *vals[] = {"../pwned_rel", "../../pwned_rel2", "../../etc/passwd", "/etc/passwd",
                          "/tmp/x", "file:///etc/passwd", abs_target, uri_target,
                          "views/data.mdb", "log/00000000000000000000.seg"};
    enum { NV = sizeof vals / sizeof vals[0] };
    long long u = user("pathuser"), v = user("viewer");
    char p[512], body[2048], before[8192] = "", after[8192] = "", bad[512];
    list_tree(data_dir, "", before, sizeof before);
    cr_assert(only_log_and_views(before, bad, sizeof bad), "before: %s", bad);
    long long post = 0;
    for (int i = 0; i < NV; i++) {
        char s[PATH_MAX + 64];
        json_t *js = json_string(vals[i]);
        char *q = json_dumps(js, JSON_ENCODE_ANY);
        snprintf(s, sizeof s, "%s", q); /* the value as a JSON string */
        free(q);
        json_decref(js);
        /* handle (refused: not [A-Za-z0-9_.]) and display_name */
        snprintf(body, sizeof body, "{\"handle\":%s,\"display_name\":%s}", s, s);
        resp_t r = req(NULL, "POST", "/v1/users", body);
        cr_expect_eq(r.status, 400, "%s", r.raw);
        reel_test_resp_free(&r);
        snprintf(p, sizeof p, "/v1/users/%lld", u);
        snprintf(body, sizeof body, "{\"display_name\":%s}", s);
        ok("PATCH", p, body, NULL);
        /* cameo asset */
        snprintf(p, sizeof p, "/v1/users/%lld/cameo", u);
        snprintf(body, sizeof body, "{\"asset\":%s}", s);
        ok("PUT", p, body, NULL);
        snprintf(p, sizeof p, "/v1/users/%lld/cameo/policy", u);
        snprintf(body, sizeof body, "{\"policy\":%s}", s);
        expect(req(NULL, "PUT", p, body), 400, NULL);
        /* a post: video_uri, prompt, tags; with an Idempotency-Key */
        snprintf(body, sizeof body,
                 "{\"author\":%lld,\"video_uri\":%s,\"prompt\":%s,\"tags\":[%s,\"ok\"]}", u, s, s,
                 s);
        char hdr[PATH_MAX + 64];
        snprintf(hdr, sizeof hdr, "Idempotency-Key: %.64s\r\n", vals[i]);
        r = reel_test_http(srv_port, "POST", "/v1/posts", body, hdr);
        cr_expect(r.status == 201 || r.status == 400, "%s", r.raw);
        if (r.status == 201)
            post = reel_test_jint(&r, "post_id");
        reel_test_resp_free(&r);
        if (post) {
            snprintf(p, sizeof p, "/v1/posts/%lld/comments", post);
            snprintf(body, sizeof body, "{\"author\":%lld,\"text\":%s}", v, s);
            ok("POST", p, body, NULL);
            snprintf(body, sizeof body, "{\"user\":%lld,\"post\":%lld,\"kind\":%s}", v, post, s);
            expect(req(NULL, "POST", "/v1/feedback", body), 400, NULL);
        }
        /* a generation: prompt, tags; a worker name; a completion's
         * video_uri; a failure's reason */
        snprintf(body, sizeof body, "{\"user\":%lld,\"prompt\":%s,\"tags\":[%s]}", u, s, s);
        long long g = ok("POST", "/v1/generations", body, "generation_id");
        snprintf(body, sizeof body, "{\"worker\":%s,\"max\":1,\"wait_ms\":0}", s);
        r = req(NULL, "POST", "/v1/render/claim", body);
        cr_expect_eq(r.status, 200, "%s", r.raw);
        reel_test_resp_free(&r);
        snprintf(p, sizeof p, "/v1/render/%lld/%s", g, i % 2 ? "complete" : "fail");
        snprintf(body, sizeof body,
                 i % 2 ? "{\"worker\":%s,\"video_uri\":%s,\"duration_ms\":100}"
                       : "{\"worker\":%s,\"reason\":%s,\"retryable\":false}",
                 s, s);
        ok("POST", p, body, NULL);
        /* batch: the same strings as an op path and a key */
        snprintf(body, sizeof body,
                 "{\"op\":\"POST %s\",\"body\":{}}\n"
                 "{\"op\":\"POST /v1/users\",\"body\":{\"handle\":%s},\"idempotency_key\":%s}\n",
                 vals[i], s, s);
        r = req(NULL, "POST", "/v1/batch", body);
        cr_expect_eq(r.status, 200, "%s", r.raw);
        cr_expect(strstr(r.body, "root:") == NULL, "%s", r.body);
        reel_test_resp_free(&r);
        /* query strings: cursor, types, handle in a path, kind */
        char enc[PATH_MAX * 3 + 1];
        size_t e = 0;
        for (const char *c = vals[i]; *c && e + 4 < sizeof enc; c++)
            e += (size_t)snprintf(enc + e, sizeof enc - e, "%%%02X", (unsigned char)*c);
        const char *qs[] = {"/v1/users/%lld/posts?cursor=", "/v1/log?types=",
                            "/v1/users/%lld/feed?cursor=", "/v1/posts/%lld/comments?cursor=",
                            "/v1/handles/", "/v1/leaderboard?by=", "/v1/users/%lld/feed?kind="};
        for (size_t k = 0; k < sizeof qs / sizeof qs[0]; k++) {
            char pre[128];
            const char *pct = strstr(qs[k], "%lld");
            long long id = strstr(qs[k], "comments") && post ? post : u;
            if (pct != NULL)
                snprintf(pre, sizeof pre, "%.*s%lld%s", (int)(pct - qs[k]), qs[k], id, pct + 4);
            else
                snprintf(pre, sizeof pre, "%s", qs[k]);
            snprintf(p, sizeof p, "%s%s", pre, enc);
            r = req(NULL, "GET", p, NULL);
            cr_expect(r.status == 200 || r.status == 400 || r.status == 404, "%s: %s", p, r.raw);
            cr_expect(strstr(r.body, "root:") == NULL, "%s: %s", p, r.body);
            reel_test_resp_free(&r);
        }
    }
    /* the server holds no file open outside the data dir (but its
     * stdout/stderr files, /dev/null and the like) */
    char fddir[64], reeld_bin[PATH_MAX], reeld_real[PATH_MAX];
    reel_test_bin("reeld", reeld_bin, sizeof reeld_bin);
    if (realpath(reeld_bin, reeld_real) != NULL)
        snprintf(reeld_bin, sizeof reeld_bin, "%s", reeld_real);
    snprintf(fddir, sizeof fddir, "/proc/%d/fd", (int)srv_pid);
    DIR *d = opendir(fddir);
    cr_assert(d != NULL);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char lp[128], target[PATH_MAX];
        snprintf(lp, sizeof lp, "%s/%s", fddir, de->d_name);
        ssize_t n = readlink(lp, target, sizeof target - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        if (target[0] != '/' || strncmp(target, "/dev/", 5) == 0 ||
            strncmp(target, "/proc/", 6) == 0)
            continue;
        bool in_data = strncmp(target, data_dir, strlen(data_dir)) == 0;
        bool std = strncmp(target, tmp, strlen(tmp)) == 0 &&
                   (strstr(target, "/out.txt") || strstr(target, "/err.txt"));
        /* under make valgrind: valgrind's own files (its log, its /proc
         * stand-ins, vgdb pipes, the program it runs), not reeld's */
        bool vg = getenv("REEL_TEST_VALGRIND") != NULL &&
                  (strstr(target, "valgrind") != NULL || strstr(target, "vgdb") != NULL ||
                   strcmp(target, reeld_bin) == 0);
        cr_expect(in_data || std || vg, "reeld holds %s open", target);
    }
    closedir(d);
    srv_stop(); /* what it wrote is all on disk now */
    list_tree(data_dir, "", after, sizeof after);
    cr_expect(only_log_and_views(after, bad, sizeof bad), "data dir holds %s:\n%s", bad, after);
    /* nothing outside the data dir: tmp holds what it held */
    char top[4096] = "";
    list_tree(tmp, "", top, sizeof top);
    for (const char *q = top; *q;) {
        const char *nl = strchr(q, '\n');
        size_t n = (size_t)(nl - q);
        bool okp = (n >= 4 && strncmp(q, "data", 4) == 0) ||
                   (n == 7 && strncmp(q, "out.txt", 7) == 0) ||
                   (n == 7 && strncmp(q, "err.txt", 7) == 0);
        cr_expect(okp, "created outside the data dir: %.*s", (int)n, q);
        q = nl + 1;
    }
    struct stat st;
    cr_expect_neq(stat(abs_target, &st), 0, "%s exists", abs_target);
    char rel[PATH_MAX + 16];
    snprintf(rel, sizeof rel, "%s/pwned_uri", tmp);
    cr_expect_neq(stat(rel, &st), 0);
    snprintf(rel, sizeof rel, "%s/pwned_rel", tmp);
    cr_expect_neq(stat(rel, &st), 0);
    cr_expect_neq(stat("pwned_rel", &st), 0, "relative to reeld's cwd");
    cr_expect_neq(stat("../pwned_rel", &st), 0);
}

/* A non-loopback IPv4 address of this machine into *out; false when it
 * has none (then the rule cannot be driven from here). */
static bool non_loopback_v4(struct in_addr *out)
{
    struct ifaddrs *ifs, *i;
    bool found = false;
    if (getifaddrs(&ifs) != 0)
        return false;
    for (i = ifs; i != NULL && !found; i = i->ifa_next) {
        if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET)
            continue;
        struct in_addr a = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
        if ((ntohl(a.s_addr) >> 24) != 127) {
            *out = a;
            found = true;
        }
    }
    freeifaddrs(ifs);
    return found;
}

/* One request to addr:port from addr itself (so the server sees a
 * non-loopback peer); the raw answer, NUL-terminated (free it). */
static char *request_from(struct in_addr addr, int port, const char *req)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr = addr};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect: %s",
                 strerror(errno));
    cr_assert(reel_test_http_send(fd, req, strlen(req)));
    size_t len = 0;
    bool closed = false;
    char *raw = reel_test_http_read(fd, 10000, &len, &closed);
    close(fd);
    cr_assert_not_null(raw);
    return raw;
}

/* Without a token file only loopback clients are served (API.md, "Auth"):
 * reeld listening on every address answers a request that comes from
 * another address of the machine with 403 and changes nothing; /healthz
 * needs no token and stays open. With a token file the same peer is
 * served when it shows a token. */
Test(security, without_a_token_file_only_loopback_clients_are_served)
{
    struct in_addr addr;
    if (!non_loopback_v4(&addr))
        cr_skip_test("this machine has no non-loopback IPv4 address");
    srv_start("--listen", "0.0.0.0:0", NULL);
    char *raw = request_from(addr, srv_port,
                             "POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             "Content-Length: 16\r\nConnection: close\r\n\r\n{\"handle\":\"eve\"}");
    cr_assert(strncmp(raw, "HTTP/1.1 403", 12) == 0, "a remote peer is refused: %.80s", raw);
    cr_assert_not_null(strstr(raw, "loopback"), "and told why: %s", raw);
    free(raw);
    raw = request_from(addr, srv_port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    cr_assert(strncmp(raw, "HTTP/1.1 200", 12) == 0, "/healthz is open: %.80s", raw);
    cr_assert_not_null(strstr(raw, "\"offset\":-1"), "nothing was written: %s", raw);
    free(raw);
    resp_t r = reel_test_http(srv_port, "GET", "/v1/users/1", NULL, NULL);
    cr_assert_eq(r.status, 404, "the refused write changed nothing");
    reel_test_resp_free(&r);
    srv_stop();

    char tokens[PATH_MAX + 16];
    snprintf(tokens, sizeof(tokens), "%s/tokens", tmp);
    static const char line[] = "app remote-app-token\n";
    cr_assert_eq(reel_test_write_file(tokens, line, sizeof(line) - 1), 0);
    srv_start("--listen", "0.0.0.0:0", "--token-file", tokens, NULL);
    raw = request_from(addr, srv_port,
                       "POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Authorization: Bearer remote-app-token\r\n"
                       "Content-Length: 16\r\nConnection: close\r\n\r\n{\"handle\":\"eve\"}");
    cr_assert(strncmp(raw, "HTTP/1.1 201", 12) == 0, "with a token a remote peer is served: %.80s",
              raw);
    free(raw);
    srv_stop();
}
