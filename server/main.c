/*
 * main.c: reeld, the HTTP server of reeldb (../shared/API.md).
 *
 * Parses the flags, opens the engine on the data directory, serves until
 * SIGTERM or SIGINT, then stops gracefully: no new connections, in-flight
 * requests finish, the engine closes (everything acknowledged is durable),
 * exit 0. The effective configuration is printed at start, then one line
 * "reeld: listening on http://HOST:PORT" (the bound port, also for
 * --listen HOST:0) that tests and scripts wait for.
 */
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "engine/common.h"
#include "engine/reel.h"
#include "index/index.h"
#include "server/api.h"
#include "server/demo.h"

typedef struct opts {
    char host[256];
    int port;
    const char *data;
    bool demo;
    reel_engine_options_t eng;
    reel_api_config_t api;
} opts_t;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: reeld [options]\n"
            "\n"
            "Serves the reeldb HTTP API v1 (../shared/API.md, docs/API.md).\n"
            "\n"
            "  --listen HOST:PORT        address to listen on (default 127.0.0.1:7070; port 0:\n"
            "                            any free port, printed at start)\n"
            "  --data DIR                data directory (default ./data, created if missing)\n"
            "  --token-file FILE         lines 'SCOPE TOKEN' (admin, app, worker, reader);\n"
            "                            without it only loopback clients are served\n"
            "  --trust-client-time       writes may carry \"at\" (ms) as the events' time\n"
            "  --invite-only             sign-up needs an invite code\n"
            "  --invites-per-user N      invites each user may issue (default 4)\n"
            "  --generations-per-day N   generations per user per rolling 24 h (default 30)\n"
            "  --render-attempts N       attempts before a generation fails (default 3)\n"
            "  --dim N                   embedding dimension (default 64)\n"
            "  --max-connections N       open connections (default %u; one more gets 503)\n"
            "  --header-timeout-ms N     time to send a request's headers (default %u)\n"
            "  --body-timeout-ms N       time to send a request's body once its headers\n"
            "                            arrived (default %u)\n"
            "  --idle-timeout-ms N       keep-alive idle time (default %u)\n"
            "  --max-inflight-writes N   writes waiting for the engine, all clients together\n"
            "                            (default %u; one more gets 503 unavailable)\n"
            "  --sse-heartbeat-ms N      a heartbeat comment on /v1/log/stream this often\n"
            "                            (default %u; a consumer over its buffer that read\n"
            "                            nothing for this long is cut)\n"
            "  --demo                    load a demo world into an empty data directory\n"
            "  --help                    this text\n",
            SRV_CONNECTIONS_MAX, SRV_HEADER_TIMEOUT_MS, SRV_BODY_TIMEOUT_MS,
            SRV_IDLE_TIMEOUT_MS, SRV_WRITES_INFLIGHT_MAX, SRV_SSE_HEARTBEAT_MS);
}

/* A decimal in [lo, hi]. */
static bool parse_num(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end = NULL;
    if (s == NULL || *s < '0' || *s > '9')
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static bool parse_listen(const char *s, opts_t *o)
{
    const char *colon = strrchr(s, ':');
    uint64_t port;
    if (colon == NULL || (size_t)(colon - s) >= sizeof(o->host) || colon == s ||
        !parse_num(colon + 1, 0, 65535, &port))
        return false;
    memcpy(o->host, s, (size_t)(colon - s));
    o->host[colon - s] = '\0';
    if (o->host[0] == '[' && o->host[strlen(o->host) - 1] == ']') {
        memmove(o->host, o->host + 1, strlen(o->host) - 2);
        o->host[strlen(o->host) - 2] = '\0';
    }
    o->port = (int)port;
    return true;
}

/* One numeric flag into a u32: 1 matched, 0 not this flag, -1 bad. */
static int num_flag(int argc, char **argv, int *i, const char *name, uint64_t lo, uint64_t hi,
                    uint32_t *out)
{
    uint64_t v;
    if (strcmp(argv[*i], name) != 0)
        return 0;
    if (*i + 1 >= argc || !parse_num(argv[*i + 1], lo, hi, &v)) {
        fprintf(stderr, "reeld: %s needs a number in %" PRIu64 "..%" PRIu64 "\n", name, lo, hi);
        return -1;
    }
    ++*i;
    *out = (uint32_t)v;
    return 1;
}

static int parse_args(int argc, char **argv, opts_t *o)
{
    memset(o, 0, sizeof(*o));
    snprintf(o->host, sizeof(o->host), "127.0.0.1");
    o->port = 7070;
    o->data = "./data";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        int rc;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 1;
        } else if (strcmp(a, "--trust-client-time") == 0) {
            o->eng.trust_client_time = o->api.trust_client_time = true;
        } else if (strcmp(a, "--invite-only") == 0) {
            o->eng.invite_only = true;
        } else if (strcmp(a, "--demo") == 0) {
            o->demo = true;
        } else if (strcmp(a, "--listen") == 0 && next != NULL) {
            if (!parse_listen(next, o)) {
                fprintf(stderr, "reeld: --listen needs HOST:PORT, not '%s'\n", next);
                return -1;
            }
            i++;
        } else if (strcmp(a, "--data") == 0 && next != NULL && next[0] != '\0') {
            o->data = argv[++i];
        } else if (strcmp(a, "--token-file") == 0 && next != NULL) {
            o->api.token_file = argv[++i];
        } else if ((rc = num_flag(argc, argv, &i, "--invites-per-user", 0, 1000000,
                                  &o->eng.invites_per_user)) != 0 ||
                   (rc = num_flag(argc, argv, &i, "--generations-per-day", 1, 1000000,
                                  &o->eng.generations_per_day)) != 0 ||
                   (rc = num_flag(argc, argv, &i, "--render-attempts", 1, 1000,
                                  &o->eng.render_attempts)) != 0 ||
                   (rc = num_flag(argc, argv, &i, "--dim", 1, REEL_DIM_MAX, &o->eng.dim)) != 0 ||
                   (rc = num_flag(argc, argv, &i, "--max-connections", 1, 1000000,
                                  &o->api.http.max_connections)) != 0 ||
                   (rc = num_flag(argc, argv, &i, "--header-timeout-ms", 1, 3600000,
                                  &o->api.http.header_timeout_ms)) != 0 ||
                   (rc = num_flag(argc, argv, &i, "--body-timeout-ms", 1, 3600000,
                                  &o->api.http.body_timeout_ms)) != 0 ||
                   (rc = num_flag(argc, argv, &i, "--idle-timeout-ms", 1, 86400000,
                                  &o->api.http.idle_timeout_ms)) != 0 ||
                   (rc = num_flag(argc, argv, &i, "--sse-heartbeat-ms", 10, 3600000,
                                  &o->api.sse_heartbeat_ms)) != 0 ||
                   (rc = num_flag(argc, argv, &i, "--max-inflight-writes", 1,
                                  SRV_WRITES_INFLIGHT_MAX, &o->api.max_inflight_writes)) != 0) {
            if (rc < 0)
                return -1;
        } else {
            fprintf(stderr, "reeld: unknown or incomplete argument '%s' (see reeld --help)\n", a);
            return -1;
        }
    }
    if (o->eng.invites_per_user == 0 && o->eng.invite_only)
        o->eng.invites_per_user = 4;
    o->api.host = o->host;
    o->api.port = o->port;
    o->api.invites_per_user = o->eng.invites_per_user ? o->eng.invites_per_user : 4;
    o->api.generations_per_day = o->eng.generations_per_day ? o->eng.generations_per_day : 30;
    return 0;
}

static void print_config(const opts_t *o, int port)
{
    const reel_engine_options_t *e = &o->eng;
    printf("reeld: data %s, listen %s:%d, auth %s, trust-client-time %s, invite-only %s, "
           "invites-per-user %u, generations-per-day %u, render-attempts %u, dim %u, "
           "max-connections %u, header-timeout-ms %u, body-timeout-ms %u, idle-timeout-ms %u, "
           "max-inflight-writes %u, sse-heartbeat-ms %u\n",
           o->data, o->host, port, o->api.token_file ? o->api.token_file : "loopback only",
           e->trust_client_time ? "on" : "off", e->invite_only ? "on" : "off",
           e->invites_per_user ? e->invites_per_user : 4,
           e->generations_per_day ? e->generations_per_day : 30,
           e->render_attempts ? e->render_attempts : 3, e->dim ? e->dim : 64,
           o->api.http.max_connections ? o->api.http.max_connections : SRV_CONNECTIONS_MAX,
           o->api.http.header_timeout_ms ? o->api.http.header_timeout_ms : SRV_HEADER_TIMEOUT_MS,
           o->api.http.body_timeout_ms ? o->api.http.body_timeout_ms : SRV_BODY_TIMEOUT_MS,
           o->api.http.idle_timeout_ms ? o->api.http.idle_timeout_ms : SRV_IDLE_TIMEOUT_MS,
           o->api.max_inflight_writes ? o->api.max_inflight_writes : SRV_WRITES_INFLIGHT_MAX,
           o->api.sse_heartbeat_ms ? o->api.sse_heartbeat_ms : SRV_SSE_HEARTBEAT_MS);
}

static void print_demo_help(int port)
{
    printf("reeld: try\n"
           "  curl -s http://127.0.0.1:%d/v1/users/1\n"
           "  curl -s http://127.0.0.1:%d/v1/handles/chloe\n"
           "  curl -s 'http://127.0.0.1:%d/v1/users/1/feed?kind=following'\n"
           "  curl -s http://127.0.0.1:%d/v1/posts/3\n"
           "  curl -s 'http://127.0.0.1:%d/v1/leaderboard?by=likes'\n"
           "  curl -s 'http://127.0.0.1:%d/v1/log?limit=5'\n"
           "  curl -s -X PUT http://127.0.0.1:%d/v1/posts/2/likes/4\n",
           port, port, port, port, port, port, port);
}

typedef struct main_state {
    uv_signal_t sigterm, sigint;
    reel_api_t *api;
} main_state_t;

static void stopped_cb(void *data)
{
    main_state_t *st = data;
    uv_close((uv_handle_t *)&st->sigterm, NULL);
    uv_close((uv_handle_t *)&st->sigint, NULL);
}

static void signal_cb(uv_signal_t *h, int signum)
{
    main_state_t *st = h->data;
    fprintf(stderr, "reeld: %s: stopping (in-flight requests finish)\n",
            signum == SIGTERM ? "SIGTERM" : "SIGINT");
    reel_api_shutdown(st->api, stopped_cb, st);
}

static int serve(const opts_t *o, reel_engine_t *e)
{
    uv_loop_t loop;
    main_state_t st;
    char err[512] = "";
    int port = 0;
    uv_loop_init(&loop);
    int rc = reel_api_start(&loop, e, &o->api, &st.api, &port, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "reeld: %s\n", err);
        uv_loop_close(&loop);
        return rc;
    }
    uv_signal_init(&loop, &st.sigterm);
    uv_signal_init(&loop, &st.sigint);
    st.sigterm.data = st.sigint.data = &st;
    uv_signal_start(&st.sigterm, signal_cb, SIGTERM);
    uv_signal_start(&st.sigint, signal_cb, SIGINT);
    print_config(o, port);
    if (o->demo)
        print_demo_help(port);
    printf("reeld: listening on http://%s:%d\n", o->host, port);
    fflush(stdout);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    reel_api_free(st.api);
    return 0;
}

/* Opens the feed index and the engine with the index following it, then
 * loads the index from the views and the log before any command is taken
 * (index.h: an event is then neither lost nor counted twice). */
static int open_parts(opts_t *o, reel_index_t **idx, reel_engine_t **e)
{
    char err[512] = "";
    reel_views_txn_t *t = NULL;
    reel_index_options_t io = {.dim = o->eng.dim};
    uint64_t t0 = reel_mono_ns();
    int rc = reel_index_open(&io, idx);
    if (rc != 0) {
        fprintf(stderr, "reeld: feed index: %s\n", reel_strerror(rc));
        return rc;
    }
    o->eng.on_apply = reel_index_apply;
    o->eng.on_apply_ctx = *idx;
    rc = reel_engine_open(o->data, &o->eng, e, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "reeld: %s: %s\n", o->data, err[0] ? err : reel_strerror(rc));
        return rc;
    }
    if ((rc = reel_engine_read_begin(*e, &t)) == 0)
        rc = reel_index_load(*idx, t, reel_engine_log(*e));
    reel_views_read_end(t);
    if (rc != 0) {
        fprintf(stderr, "reeld: loading the feed index: %s\n", reel_strerror(rc));
        return rc;
    }
    reel_index_stats_t st;
    reel_index_stats(*idx, &st);
    fprintf(stderr, "reeld: feed index: %llu posts, %llu users loaded in %.2f s\n",
            (unsigned long long)st.posts, (unsigned long long)st.users,
            (double)(reel_mono_ns() - t0) / 1e9);
    return 0;
}

int main(int argc, char **argv)
{
    opts_t o;
    reel_engine_t *e = NULL;
    reel_index_t *idx = NULL;
    int rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    signal(SIGPIPE, SIG_IGN); /* a client gone mid-answer is an error code, not a signal */
    rc = open_parts(&o, &idx, &e);
    if (rc == 0 && o.demo && reel_demo_load(e, stdout) < 0)
        rc = -1;
    if (rc != 0) {
        reel_engine_close(e);
        reel_index_close(idx);
        return 1;
    }
    o.api.index = idx;
    rc = serve(&o, e);
    int crc = reel_engine_close(e); /* the writer stops: no apply after this */
    reel_index_close(idx);
    if (crc != 0)
        fprintf(stderr, "reeld: closing the engine: %s\n", reel_strerror(crc));
    fprintf(stderr, "reeld: stopped\n");
    return rc == 0 && crc == 0 ? 0 : 1;
}
