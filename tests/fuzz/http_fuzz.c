/*
 * http_fuzz.c: libFuzzer target for reeld's whole request path: the bytes
 * of one client connection in, answers or a clean close out.
 *
 * The real server runs in this process, as reeld runs it: the engine on a
 * data directory of its own (under /dev/shm when there is one, so group
 * commits cost little) holding the demo world, the feed index following
 * it, and the API (server/api.c on server/http.c) listening on free
 * loopback ports of a libuv loop that this thread drives: once as reeld
 * serves without --token-file (loopback clients have every scope), once
 * with a token file (admin adm1, app app1, worker wrk1, reader rdr1). An
 * input that holds "Authorization" goes to the second. Made once per
 * process; every input then adds to the same world, as real clients do.
 *
 * One input is one connection's bytes. The harness connects, sends them
 * (as fast as the server takes them), reads whatever comes back, and runs
 * the loop until the exchange settles: nothing sent, read or done for a
 * few turns of the loop, the kernel holding none of our bytes, and no
 * command in the engine. Then it half-closes (the server sees the end of
 * the client's bytes: a request left incomplete is dropped, a parked claim
 * answered), reads to the server's close, closes, and lets the loop finish
 * the connection. SSE heartbeats are made frequent so that a stream whose
 * client left ends at once rather than after 15 s.
 *
 * Checked on what came back (http-parser reading it as a client would):
 * only whole HTTP/1.1 answers, each with a status the contract knows;
 * nothing after an answer that said `Connection: close`; the stream ends
 * at an answer's end (a body that runs to the close ends there); every
 * application/json body is JSON and every error body is the contract's
 * error object with one of its codes; every line of an NDJSON answer is
 * JSON; when every answer is an error, the log did not grow (a refused
 * request appends nothing). ASan and UBSan watch the server while it
 * works; an exchange that does not settle in 5 s aborts (a hang).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <jansson.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "engine/common.h"
#include "engine/reel.h"
#include "index/index.h"
#include "server/api.h"
#include "server/api_int.h"
#include "server/demo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Turns of the loop with nothing happening before the exchange counts as
 * settled. */
#define QUIET_TURNS 4
/* An exchange that takes longer is a hang. */
#define EXCHANGE_NS_MAX (5ull * 1000000000ull)
/* SSE heartbeat period in the harness (reeld: SRV_SSE_HEARTBEAT_MS). */
#define HEARTBEAT_MS 5u
/* Answer bytes kept for the checks; past this, an exchange is only read. */
#define RESP_BYTES_MAX (16u << 20)

/* The two servers: without and with a token file. */
enum { SRV_OPEN, SRV_TOKENS, SRV_N };

static struct {
    char dir[256];
    char tokens[300];
    reel_index_t *idx;
    reel_engine_t *engine;
    uv_loop_t loop;
    reel_api_t *api[SRV_N];
    int port[SRV_N];
} g;

/* At exit: the data directory goes (it is in RAM under /dev/shm, and a
 * long run leaves ~100 MB). A crash keeps it, with the input, to look at.
 * The engine's threads still run: their open files outlive the names. */
static void remove_dir(void)
{
    char cmd[300];
    if (g.dir[0] == '\0' || strstr(g.dir, "/reel-http-fuzz-") == NULL)
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g.dir);
    if (system(cmd) != 0)
        fprintf(stderr, "http_fuzz: could not remove %s\n", g.dir);
}

static void start_api(int which, const char *token_file)
{
    char err[512] = "";
    reel_api_config_t cfg = {0};
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    cfg.token_file = token_file;
    cfg.invites_per_user = 4;
    cfg.generations_per_day = 30;
    cfg.index = g.idx;
    if (reel_api_start(&g.loop, g.engine, &cfg, &g.api[which], &g.port[which], err,
                       sizeof(err)) != 0) {
        fprintf(stderr, "http_fuzz: %s\n", err);
        abort();
    }
    /* A stream notices its client left only when it writes: often, here. */
    uv_timer_set_repeat(&g.api[which]->heartbeat_timer, HEARTBEAT_MS);
    REEL_ASSERT(uv_timer_again(&g.api[which]->heartbeat_timer) == 0);
}

static void setup(void)
{
    char err[512] = "";
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    snprintf(g.dir, sizeof(g.dir), "%s/reel-http-fuzz-XXXXXX", base ? base : "/tmp");
    REEL_ASSERT(mkdtemp(g.dir) != NULL);
    atexit(remove_dir);
    signal(SIGPIPE, SIG_IGN);
    reel_index_options_t io = {0};
    REEL_ASSERT(reel_index_open(&io, &g.idx) == 0);
    reel_engine_options_t eo = {0};
    eo.on_apply = reel_index_apply;
    eo.on_apply_ctx = g.idx;
    if (reel_engine_open(g.dir, &eo, &g.engine, err, sizeof(err)) != 0) {
        fprintf(stderr, "http_fuzz: %s: %s\n", g.dir, err);
        abort();
    }
    /* As reeld: the index loads before any command, then the demo world
     * comes in through the engine (and on_apply). */
    reel_views_txn_t *t = NULL;
    REEL_ASSERT(reel_engine_read_begin(g.engine, &t) == 0);
    REEL_ASSERT(reel_index_load(g.idx, t, reel_engine_log(g.engine)) == 0);
    reel_views_read_end(t);
    FILE *devnull = fopen("/dev/null", "w");
    REEL_ASSERT(devnull != NULL);
    REEL_ASSERT(reel_demo_load(g.engine, devnull) >= 0);
    fclose(devnull);

    static const char tokens[] = "admin adm1\napp app1\nworker wrk1\nreader rdr1\n";
    snprintf(g.tokens, sizeof(g.tokens), "%s/tokens", g.dir);
    FILE *f = fopen(g.tokens, "w");
    REEL_ASSERT(f != NULL);
    REEL_ASSERT(fwrite(tokens, 1, sizeof(tokens) - 1, f) == sizeof(tokens) - 1);
    REEL_ASSERT(fclose(f) == 0);
    REEL_ASSERT(uv_loop_init(&g.loop) == 0);
    start_api(SRV_OPEN, NULL);
    start_api(SRV_TOKENS, g.tokens);
    /* The engine, index and loop live as long as the process. */
}

/* ---- the answers, read as a client reads them ---- */

typedef struct resp {
    int status;
    bool in_message;
    bool close;          /* Connection: close */
    char hname[32];
    size_t hname_len;
    bool hdr_value;
    int hdr;             /* 1 content-type, 2 connection */
    char ctype[64];
    char conn[32];
    char *body;
    size_t body_len, body_cap;
    uint32_t answers;
    uint32_t accepted;   /* answers (begun) with a status below 400, 100 aside */
} resp_t;

static const char *const contract_codes[] = {
    "bad_json", "bad_field", "missing_field", "too_large", "unauthorized", "forbidden",
    "cameo_not_allowed", "blocked", "invite_required", "invite_invalid", "not_found",
    "method_not_allowed", "conflict", "handle_taken", "invites_exhausted", "lease_lost",
    "quota_exceeded", "unavailable", "time_regression", "bad_request", "headers_too_large",
    "http_version",
};

static bool status_known(int s)
{
    static const int known[] = {100, 200, 201, 202, 400, 401, 403, 404,
                                405, 409, 413, 429, 431, 503, 505};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (known[i] == s)
            return true;
    return false;
}

static void check_error_body(json_t *root)
{
    json_t *e = json_object_get(root, "error");
    REEL_ASSERT(json_is_object(e));
    json_t *code = json_object_get(e, "code");
    REEL_ASSERT(json_is_string(code));
    REEL_ASSERT(json_is_string(json_object_get(e, "message")));
    for (size_t i = 0; i < sizeof(contract_codes) / sizeof(contract_codes[0]); i++)
        if (strcmp(json_string_value(code), contract_codes[i]) == 0)
            return;
    fprintf(stderr, "http_fuzz: error code '%s' is not the contract's\n", json_string_value(code));
    abort();
}

static void check_body(const resp_t *r)
{
    json_error_t jerr;
    if (r->status == 100)
        return;
    if (strncasecmp(r->ctype, "application/json", 16) == 0) {
        json_t *root = json_loadb(r->body ? r->body : "", r->body_len, 0, &jerr);
        if (root == NULL) {
            fprintf(stderr, "http_fuzz: %d answer's body is not JSON (%s): %.*s\n", r->status,
                    jerr.text, (int)(r->body_len > 400 ? 400 : r->body_len), r->body);
            abort();
        }
        REEL_ASSERT(json_is_object(root));
        if (r->status >= 400)
            check_error_body(root);
        json_decref(root);
    } else if (strncasecmp(r->ctype, "application/x-ndjson", 20) == 0) {
        for (size_t i = 0; i < r->body_len;) {
            const char *nl = memchr(r->body + i, '\n', r->body_len - i);
            size_t n = nl ? (size_t)(nl - (r->body + i)) : r->body_len - i;
            if (n > 0) {
                json_t *line = json_loadb(r->body + i, n, 0, &jerr);
                REEL_ASSERT(line != NULL);
                json_decref(line);
            }
            i += n + 1;
        }
    }
}

static resp_t *presp(http_parser *p)
{
    return p->data;
}

static int on_message_begin(http_parser *p)
{
    resp_t *r = presp(p);
    r->in_message = true;
    r->status = 0;
    r->ctype[0] = r->conn[0] = '\0';
    r->hname_len = 0;
    r->hdr_value = false;
    r->body_len = 0;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    resp_t *r = presp(p);
    if (r->hdr_value) {
        r->hname_len = 0;
        r->hdr_value = false;
    }
    for (size_t i = 0; i < n && r->hname_len < sizeof(r->hname) - 1; i++)
        r->hname[r->hname_len++] = at[i];
    r->hname[r->hname_len] = '\0';
    return 0;
}

static void append(char *dst, size_t cap, const char *at, size_t n)
{
    size_t len = strlen(dst);
    size_t k = n < cap - 1 - len ? n : cap - 1 - len;
    memcpy(dst + len, at, k);
    dst[len + k] = '\0';
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    resp_t *r = presp(p);
    r->hdr_value = true;
    if (strcasecmp(r->hname, "content-type") == 0)
        append(r->ctype, sizeof(r->ctype), at, n);
    else if (strcasecmp(r->hname, "connection") == 0)
        append(r->conn, sizeof(r->conn), at, n);
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    resp_t *r = presp(p);
    r->status = (int)p->status_code;
    if (r->status != 100 && r->status < 400)
        r->accepted++;
    if (!status_known(r->status)) {
        fprintf(stderr, "http_fuzz: status %d is not the contract's\n", r->status);
        abort();
    }
    REEL_ASSERT(p->http_major == 1 && p->http_minor == 1);
    REEL_ASSERT(r->status == 100 || r->ctype[0] != '\0');
    if (strcasecmp(r->conn, "close") == 0)
        r->close = true;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    resp_t *r = presp(p);
    if (r->body_len + n > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 4096;
        while (cap < r->body_len + n)
            cap *= 2;
        char *b = realloc(r->body, cap);
        REEL_ASSERT(b != NULL);
        r->body = b;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, at, n);
    r->body_len += n;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    resp_t *r = presp(p);
    check_body(r);
    r->in_message = false;
    r->answers++;
    return 0;
}

static const http_parser_settings resp_settings = {
    .on_message_begin = on_message_begin,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* The bytes came back whole (reset: the connection was reset, so the end
 * may be missing). */
static uint32_t check_answers(const char *buf, size_t len, bool reset, uint32_t *accepted)
{
    http_parser p;
    resp_t r;
    memset(&r, 0, sizeof(r));
    http_parser_init(&p, HTTP_RESPONSE);
    p.data = &r;
    size_t n = http_parser_execute(&p, &resp_settings, buf, len);
    if (HTTP_PARSER_ERRNO(&p) == HPE_OK && !reset)
        http_parser_execute(&p, &resp_settings, NULL, 0); /* the close ends a body */
    enum http_errno e = HTTP_PARSER_ERRNO(&p);
    if (e != HPE_OK || (n != len && !reset)) {
        fprintf(stderr, "http_fuzz: the answers do not parse at byte %zu of %zu: %s\n%.*s\n", n,
                len, http_errno_description(e), (int)(len > 2000 ? 2000 : len), buf);
        abort();
    }
    if (r.in_message && !reset) {
        fprintf(stderr, "http_fuzz: the connection closed inside an answer (status %d)\n",
                r.status);
        abort();
    }
    free(r.body);
    *accepted = r.accepted;
    return r.answers;
}

/* ---- one exchange ---- */

typedef struct client {
    int fd;
    char *buf;        /* what came back (up to RESP_BYTES_MAX) */
    size_t len, cap;
    size_t total;     /* bytes read */
    bool eof, reset;
} client_t;

/* Reads what is there; true when something was read or the end came. */
static bool client_read(client_t *c)
{
    char tmp[64 << 10];
    bool any = false;
    while (!c->eof) {
        ssize_t n = recv(c->fd, tmp, sizeof(tmp), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        any = true;
        if (n <= 0) {
            c->eof = true;
            c->reset = n < 0;
            break;
        }
        c->total += (size_t)n;
        if (c->len + (size_t)n <= RESP_BYTES_MAX) {
            if (c->len + (size_t)n > c->cap) {
                size_t cap = c->cap ? c->cap : (64 << 10);
                while (cap < c->len + (size_t)n)
                    cap *= 2;
                c->buf = realloc(c->buf, cap);
                REEL_ASSERT(c->buf != NULL);
                c->cap = cap;
            }
            memcpy(c->buf + c->len, tmp, (size_t)n);
            c->len += (size_t)n;
        }
    }
    return any;
}

static int client_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    REEL_ASSERT(fd >= 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    REEL_ASSERT(rc == 0 || errno == EINPROGRESS);
    return fd;
}

/* Our bytes the server's kernel has not acknowledged yet. */
static int unacked(int fd)
{
    int n = 0;
    if (ioctl(fd, SIOCOUTQ, &n) != 0)
        return 0;
    return n;
}

/* Commands of both servers in the engine, not yet answered. */
static uint64_t inflight(void)
{
    return g.api[SRV_OPEN]->inflight + g.api[SRV_TOKENS]->inflight;
}

static void exchange(const uint8_t *data, size_t size, client_t *c)
{
    uint64_t deadline = reel_mono_ns() + EXCHANGE_NS_MAX;
    size_t sent = 0;
    bool shut = false;
    int quiet = 0;
    while (!c->eof) {
        bool progress = false;
        if (sent < size) {
            ssize_t n = send(c->fd, data + sent, size - sent, MSG_NOSIGNAL);
            if (n > 0) {
                sent += (size_t)n;
                progress = true;
            } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                       errno != ENOTCONN) {
                sent = size; /* the server closed: the rest is not taken */
            }
        }
        bool busy = inflight() > 0;
        if (uv_run(&g.loop, busy ? UV_RUN_ONCE : UV_RUN_NOWAIT) != 0 && busy)
            progress = true;
        progress = client_read(c) || progress;
        quiet = progress || busy || unacked(c->fd) > 0 ? 0 : quiet + 1;
        if (quiet >= QUIET_TURNS && sent == size && !shut) {
            shutdown(c->fd, SHUT_WR); /* the end of our bytes */
            shut = true;
            quiet = 0;
        } else if (quiet >= QUIET_TURNS && shut && inflight() == 0) {
            break; /* a stream holds it: the server only writes from now on */
        }
        if (reel_mono_ns() > deadline) {
            fprintf(stderr, "http_fuzz: the exchange did not settle in 5 s (sent %zu of %zu, "
                    "read %zu, inflight %llu)\n", sent, size, c->total,
                    (unsigned long long)inflight());
            abort();
        }
    }
}

/* After the client left: the server closes its side (a stream at its next
 * heartbeat, a lingering connection at our close). */
static void settle(void)
{
    uint64_t deadline = reel_mono_ns() + EXCHANGE_NS_MAX;
    reel_http_stats_t st, st2;
    for (;;) {
        reel_http_server_stats(g.api[SRV_OPEN]->http, &st);
        reel_http_server_stats(g.api[SRV_TOKENS]->http, &st2);
        st.connections_open += st2.connections_open;
        if (st.connections_open == 0 && inflight() == 0 && g.api[SRV_OPEN]->parked == NULL &&
            g.api[SRV_TOKENS]->parked == NULL)
            break;
        uv_run(&g.loop, UV_RUN_ONCE);
        if (reel_mono_ns() > deadline) {
            fprintf(stderr, "http_fuzz: the server kept %llu connections after the client "
                    "left\n", (unsigned long long)st.connections_open);
            abort();
        }
    }
    uv_run(&g.loop, UV_RUN_NOWAIT); /* close callbacks */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (g.engine == NULL)
        setup();
    bool auth = memmem(data, size, "Authorization", 13) != NULL;
    client_t c = {.fd = client_connect(g.port[auth ? SRV_TOKENS : SRV_OPEN])};
    uint64_t end0 = reel_log_end(reel_engine_log(g.engine));
    uint32_t accepted = 1, n = 0;
    exchange(data, size, &c);
    if (c.total == c.len) /* all of it kept */
        n = check_answers(c.buf ? c.buf : "", c.len, c.reset || !c.eof, &accepted);
    close(c.fd);
    settle();
    /* A refused request appends nothing (API.md): when every answer was
     * an error, the log (and so the views) did not move. Every command
     * submitted was answered: the exchange waits for them before the
     * client leaves. */
    uint64_t end1 = reel_log_end(reel_engine_log(g.engine));
    if (accepted == 0 && end1 != end0) {
        fprintf(stderr, "http_fuzz: only errors came back, yet the log grew from %llu to %llu\n",
                (unsigned long long)end0, (unsigned long long)end1);
        abort();
    }
    if (getenv("HTTP_FUZZ_VERBOSE") != NULL)
        fprintf(stderr, "http_fuzz: %zu bytes in, %zu out: %u answers, %u accepted, log +%llu%s%s\n",
                size, c.len, n, accepted, (unsigned long long)(end1 - end0),
                c.reset ? ", reset" : "", c.eof ? "" : ", still open");
    free(c.buf);
    return 0;
}
