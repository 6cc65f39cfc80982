/*
 * bench_http.c: `reel bench http` (issue 4, "Speed"): the real reeld over
 * loopback, driven by a load generator written here (epoll, one thread, no
 * external tool), against Redis measured in the same run.
 *
 * Setup. reeld is the binary beside this one (dirname of /proc/self/exe +
 * "/reeld"), started on a free loopback port (--listen 127.0.0.1:0) with a
 * scratch data directory under ctx->dir, and seeded through POST /v1/batch:
 * users, random follows, a few posts (10,000 / 50,000 / 1,000; --quick
 * 2,000 / 5,000 / 200). It runs until the benchmark ends; every exit path
 * stops it (SIGTERM, then SIGKILL after a bound), and it dies with us
 * (PR_SET_PDEATHSIG) if we are killed.
 *
 * Measurements (each ctx->rounds times, medians; 5 s each, --quick 2 s):
 *   get_profile_rps             GET /v1/users/{random id}, 64 keep-alive
 *                               connections, one request in flight on each
 *                               (closed loop, pipelining depth 1): requests/s.
 *   get_profile_p50/p99_latency_at_half_rate_vs_baseline
 *                               the same GETs open loop at half that rate: a
 *                               fixed schedule (request k is due at t0 +
 *                               k/rate), sent on whichever of the 64
 *                               connections is free, latency measured from
 *                               the scheduled time, so that a stall delays
 *                               the clock of every request queued behind it
 *                               (no coordinated omission).
 *   durable_writes_per_s        PUT /v1/posts/{p}/likes/{u} and PUT
 *                               /v1/users/{a}/following/{b} of random pairs,
 *                               half each, 256 connections, closed loop; each
 *                               is answered once fsync'd and applied.
 *   durable_writes_p99_latency_vs_baseline   the p99 of those.
 *
 * Baseline: Redis, started here on loopback with --appendonly yes
 * --appendfsync always --save "" and a scratch --dir: the equivalent GET
 * (256-byte values) and INCR/SADD. Throughputs come from redis-benchmark
 * (-c 64 for GET, -c 256 for INCR and SADD; the write baseline is the rate
 * of a half-INCR, half-SADD mix: 2 / (1/incr + 1/sadd)). Latencies come from
 * this same load generator speaking RESP to Redis with the same schedule
 * (the GET p50/p99 at the same absolute rate as reeld's) and the same
 * closed loop (the write p99, INCR/SADD half each, 256 connections), so
 * that both sides of a latency ratio are measured the same way. Without
 * redis-server and redis-benchmark the baselines are null and stderr says
 * how to install them (apt-get install redis-server redis-tools; `make
 * bench` does).
 *
 * The machine. Load generator, reeld (its loop thread and the engine's
 * writer) and the baseline share the same cores (2 on the reference
 * machine): the generator is one thread, and its CPU is part of what is
 * measured, for reeld and for Redis alike.
 */
#include "tools/bench.h"
#include "engine/common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BENCH "http"
#define ROUNDS_MAX 16u
#define START_TIMEOUT_MS 15000   /* reeld or redis to listen */
#define STOP_TIMEOUT_MS 20000    /* SIGTERM to exit, then SIGKILL */
#define CONNECT_TIMEOUT_MS 5000   /* a full accept backlog must not block us for long */
#define HTTP_TIMEOUT_MS 120000   /* one seeding request (a batch of 10,000 lines) */
#define TOOL_TIMEOUT_MS 120000   /* one redis-benchmark run */
#define DRAIN_NS 3000000000ull   /* open loop: in-flight answers after the schedule ends */
#define CONNS_GET 64u
#define CONNS_WRITE 256u
#define CONNS_MAX 256u
#define IN_CAP 16384u            /* one answer (a profile is ~300 bytes) */
#define OUT_CAP 256u             /* one request */
#define BATCH_LINES 8192u        /* lines of one seeding batch (reeld takes 16384) */
#define LAT_SAMPLES_MAX (8u << 20)
#define RECONNECTS_MAX 1024u
#define ERROR_SHARE_MAX 0.01     /* more failed answers than this: the bench fails */

/* ---- child processes: reeld, redis-server, redis-benchmark ---- */

static uint64_t now_ns(void) { return reel_bench_now_ns(); }

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Forks and execs argv with stdout to out_path (or a pipe when out_fd is
 * not NULL) and stderr to err_path; the child dies with us. */
static pid_t spawn(char *const argv[], const char *out_path, const char *err_path, int *out_fd)
{
    int pfd[2] = {-1, -1};
    if (out_fd != NULL && pipe2(pfd, O_CLOEXEC) != 0)
        return -1;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        if (out_fd != NULL) {
            close(pfd[0]);
            close(pfd[1]);
        }
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int fo = out_fd != NULL ? pfd[1] : open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(err_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int fi = open("/dev/null", O_RDONLY);
        if (fo < 0 || fe < 0 || fi < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0 || dup2(fi, 0) < 0)
            _exit(127);
        execvp(argv[0], argv);
        _exit(127);
    }
    if (out_fd != NULL) {
        close(pfd[1]);
        *out_fd = pfd[0];
    }
    return pid;
}

/* SIGTERM, up to STOP_TIMEOUT_MS for it to exit, then SIGKILL (tools/bench.c). */
static int stop_child(pid_t pid)
{
    return reel_bench_stop(pid, STOP_TIMEOUT_MS);
}

/* Runs argv to completion (at most timeout_ms, then it is killed), its
 * stdout into out (NUL-terminated, at most cap - 1 bytes). Returns its exit
 * status or -1. */
static int run_capture(char *const argv[], const char *err_path, char *out, size_t cap,
                       int timeout_ms)
{
    int fd = -1, ws = 0;
    size_t len = 0;
    pid_t pid = spawn(argv, NULL, err_path, &fd);
    if (pid < 0)
        return -1;
    uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;
    for (;;) {
        uint64_t t = now_ns();
        if (t >= deadline)
            break;
        struct pollfd p = {fd, POLLIN, 0};
        int n = poll(&p, 1, (int)((deadline - t) / 1000000ull) + 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        char scratch[4096];
        char *dst = len + 1 < cap ? out + len : scratch;
        size_t room = len + 1 < cap ? cap - 1 - len : sizeof(scratch);
        ssize_t r = read(fd, dst, room);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (dst != scratch)
            len += (size_t)r;
    }
    out[len] = '\0';
    close(fd);
    if (now_ns() >= deadline) {
        fprintf(stderr, "bench http: %s ran past %d ms, killed\n", argv[0], timeout_ms);
        kill(pid, SIGKILL);
        waitpid(pid, &ws, 0);
        return -1;
    }
    for (int i = 0; i < 1000; i++) { /* stdout closed: it is exiting */
        pid_t r = waitpid(pid, &ws, WNOHANG);
        if (r == pid)
            return WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
        sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &ws, 0);
    return -1;
}

/* A TCP connection to 127.0.0.1:port, TCP_NODELAY, blocking (sends time
 * out after CONNECT_TIMEOUT_MS until the caller sets otherwise; the load
 * generator's sockets are non-blocking); -1 on error. */
static int tcp_connect(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    struct timeval tv = {CONNECT_TIMEOUT_MS / 1000, 0}; /* connect honours SO_SNDTIMEO */
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* A free loopback port (bound, read, released: redis-server takes a port
 * number, not 0). */
static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int port = -1;
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* ---- reeld ---- */

typedef reel_bench_reeld_t server_t; /* reeld, started by tools/bench.c */

/* One HTTP request on a fresh connection (Connection: close), the answer's
 * body into *body (malloc'd, NUL-terminated). Bounded by HTTP_TIMEOUT_MS
 * and by 64 MiB of answer. */
static int http_call(int port, const char *method, const char *path, const char *ctype,
                     const char *body, size_t blen, int *status, char **resp)
{
    enum { RESP_MAX = 64 << 20 };
    char head[512];
    size_t cap = 1 << 16, len = 0;
    char *buf = NULL;
    int fd = tcp_connect(port), rc = -1;
    *resp = NULL;
    *status = 0;
    if (fd < 0)
        return -1;
    int hl = snprintf(head, sizeof(head),
                      "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                      method, path, ctype, blen);
    struct timeval tv = {HTTP_TIMEOUT_MS / 1000, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    const char *parts[2] = {head, body};
    size_t sizes[2] = {(size_t)hl, blen};
    for (int i = 0; i < 2; i++) {
        for (size_t off = 0; off < sizes[i];) {
            ssize_t w = send(fd, parts[i] + off, sizes[i] - off, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                goto out;
            off += (size_t)w;
        }
    }
    if ((buf = malloc(cap + 1)) == NULL)
        goto out;
    uint64_t deadline = now_ns() + (uint64_t)HTTP_TIMEOUT_MS * 1000000ull;
    for (;;) {
        if (len == cap) {
            if (cap >= RESP_MAX)
                goto out;
            char *nb = realloc(buf, cap * 2 + 1);
            if (nb == NULL)
                goto out;
            buf = nb;
            cap *= 2;
        }
        ssize_t r = recv(fd, buf + len, cap - len, 0);
        if (r < 0 && errno == EINTR && now_ns() < deadline)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    char *b = strstr(buf, "\r\n\r\n");
    if (b == NULL || sscanf(buf, "HTTP/1.1 %d", status) != 1)
        goto out;
    b += 4;
    memmove(buf, b, len - (size_t)(b - buf) + 1);
    *resp = buf;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    close(fd);
    return rc;
}

/* The engine's writer counters from /metrics (batches, commands, and the
 * seconds of each phase): v[0..4]. Returns 0 or -1. */
static int writer_counters(int port, double v[5])
{
    static const char *const names[5] = {
        "\nreeld_engine_batches_total ", "\nreeld_engine_commands_total ",
        "\nreeld_engine_phase_seconds_total{phase=\"judge\"} ",
        "\nreeld_engine_phase_seconds_total{phase=\"durable_wait\"} ",
        "\nreeld_engine_phase_seconds_total{phase=\"views_commit\"} "};
    int status;
    char *resp;
    if (http_call(port, "GET", "/metrics", "text/plain", NULL, 0, &status, &resp) != 0)
        return -1;
    int rc = status == 200 ? 0 : -1;
    for (int i = 0; rc == 0 && i < 5; i++) {
        const char *p = strstr(resp, names[i]);
        rc = p != NULL ? 0 : -1;
        v[i] = p != NULL ? strtod(p + strlen(names[i]), NULL) : 0;
    }
    free(resp);
    return rc;
}

/* Where reeld's writer spent a run: commands a batch and time a batch per
 * phase, from the counters before (a) and after (b). */
static void writer_report(uint32_t round, const double a[5], const double b[5])
{
    double n = b[0] - a[0];
    if (n <= 0)
        return;
    fprintf(stderr, "  round %u: reeld writer: %.0f batches, %.1f commands a batch; per batch "
            "judging %.0f us, waiting for the log %.0f us, committing the views %.0f us\n",
            round + 1, n, (b[1] - a[1]) / n, (b[2] - a[2]) / n * 1e6, (b[3] - a[3]) / n * 1e6,
            (b[4] - a[4]) / n * 1e6);
}

/* Posts the NDJSON lines to /v1/batch; each answer's id field (id_key, or
 * NULL) goes to ids[*nids] when its status is want. Returns the number of
 * lines answered with want, or -1. */
static int64_t batch(int port, const char *lines, size_t len, int want, const char *id_key,
                     uint64_t *ids, uint64_t *nids, uint64_t ids_cap)
{
    int status;
    char *resp;
    int64_t ok = 0;
    if (http_call(port, "POST", "/v1/batch", "application/x-ndjson", lines, len, &status,
                  &resp) != 0 || status != 200) {
        fprintf(stderr, "bench http: POST /v1/batch failed (status %d)\n", status);
        if (status != 0)
            free(resp);
        return -1;
    }
    for (char *line = resp, *next; line != NULL && *line != '\0'; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        json_t *j = json_loads(line, 0, NULL);
        if (j == NULL)
            continue;
        if (json_integer_value(json_object_get(j, "status")) == want) {
            ok++;
            json_t *id = id_key ? json_object_get(json_object_get(j, "body"), id_key) : NULL;
            if (id != NULL && *nids < ids_cap)
                ids[(*nids)++] = (uint64_t)json_integer_value(id);
        }
        json_decref(j);
    }
    free(resp);
    return ok;
}

static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

typedef struct world {
    uint64_t nusers, nposts;
    uint64_t *users, *posts; /* the ids the server gave */
} world_t;

/* Users, follows among them, posts, all through /v1/batch. */
static int seed(int port, uint64_t nusers, uint64_t nfollows, uint64_t nposts, world_t *w)
{
    size_t cap = (size_t)BATCH_LINES * 160u;
    char *buf = malloc(cap);
    uint64_t rng = 42, follows = 0;
    w->users = calloc(nusers, sizeof(uint64_t));
    w->posts = calloc(nposts, sizeof(uint64_t));
    w->nusers = w->nposts = 0;
    if (buf == NULL || w->users == NULL || w->posts == NULL)
        goto fail;
    uint64_t t0 = now_ns();
    for (int kind = 0; kind < 3; kind++) {
        uint64_t total = kind == 0 ? nusers : kind == 1 ? nfollows : nposts;
        for (uint64_t i = 0; i < total;) {
            size_t len = 0;
            uint32_t k = 0;
            for (; k < BATCH_LINES && i < total; k++, i++) {
                int n;
                if (kind == 0) {
                    n = snprintf(buf + len, cap - len,
                                 "{\"op\":\"POST /v1/users\",\"body\":{\"handle\":\"bench%" PRIu64
                                 "\",\"display_name\":\"Bench User %" PRIu64 "\"}}\n", i, i);
                } else if (kind == 1) {
                    uint64_t a = w->users[rnd(&rng) % w->nusers];
                    uint64_t b = w->users[rnd(&rng) % w->nusers];
                    if (a == b)
                        b = w->users[(rnd(&rng) % w->nusers)];
                    n = snprintf(buf + len, cap - len,
                                 "{\"op\":\"PUT /v1/users/%" PRIu64 "/following/%" PRIu64 "\"}\n",
                                 a, b);
                } else {
                    n = snprintf(buf + len, cap - len,
                                 "{\"op\":\"POST /v1/posts\",\"body\":{\"author\":%" PRIu64
                                 ",\"video_uri\":\"s3://bench/%" PRIu64 ".mp4\",\"prompt\":"
                                 "\"a dachshund surfing at dawn\",\"tags\":[\"dogs\"]}}\n",
                                 w->users[rnd(&rng) % w->nusers], i);
                }
                if (n < 0 || (size_t)n >= cap - len)
                    goto fail;
                len += (size_t)n;
            }
            int64_t ok = kind == 0 ? batch(port, buf, len, 201, "user_id", w->users, &w->nusers,
                                           nusers)
                       : kind == 1 ? batch(port, buf, len, 200, NULL, NULL, NULL, 0)
                                   : batch(port, buf, len, 201, "post_id", w->posts, &w->nposts,
                                           nposts);
            if (ok < 0)
                goto fail;
            if (kind == 1)
                follows += (uint64_t)ok;
        }
        if (kind == 0 && w->nusers < 2) {
            fprintf(stderr, "bench http: seeding made %" PRIu64 " users\n", w->nusers);
            goto fail;
        }
    }
    if (w->nposts == 0) {
        fprintf(stderr, "bench http: seeding made no posts\n");
        goto fail;
    }
    /* the profiles the load asks for are there */
    for (uint64_t i = 0; i < w->nusers; i += w->nusers - 1) {
        char path[64], *resp = NULL;
        int status = 0;
        snprintf(path, sizeof(path), "/v1/users/%" PRIu64, w->users[i]);
        int rc = http_call(port, "GET", path, "application/json", "", 0, &status, &resp);
        bool ok = rc == 0 && status == 200 && strstr(resp, "\"handle\"") != NULL;
        free(resp);
        if (!ok) {
            fprintf(stderr, "bench http: GET %s answered %d, not a profile\n", path, status);
            goto fail;
        }
    }
    fprintf(stderr, "  seeded %" PRIu64 " users, %" PRIu64 " follows, %" PRIu64
            " posts through /v1/batch in %.2f s\n", w->nusers, follows, w->nposts,
            (double)(now_ns() - t0) / 1e9);
    free(buf);
    return 0;
fail:
    free(buf);
    return -1;
}

/* ---- the load generator ---- */

typedef enum { PROTO_HTTP, PROTO_RESP } proto_t;
typedef enum { WL_GET, WL_WRITE } workload_t;

typedef struct conn {
    int fd;
    bool busy;
    uint64_t start;   /* scheduled (open loop) or sent (closed loop) time */
    uint32_t out_len, out_off, in_len;
    char out[OUT_CAP];
    char in[IN_CAP];
} conn_t;

typedef struct load {
    /* in */
    proto_t proto;
    workload_t wl;
    int port;
    uint32_t nconns;
    const world_t *w;
    double rate;       /* requests/s of the open-loop schedule; 0: closed loop */
    uint64_t warmup_ns, dur_ns;
    uint64_t rng;
    /* out */
    uint64_t done;     /* answers counted (completed inside the window) */
    uint64_t errors;   /* answers that were not the expected status */
    uint64_t reconnects;
    double rps;        /* done / window */
    uint64_t p50_ns, p99_ns;
    uint32_t nlat;
} load_t;

typedef struct loadgen {
    load_t *L;
    int ep;
    conn_t *c;
    uint64_t *lat;
    uint32_t lat_cap;
} loadgen_t;

static int conn_open(loadgen_t *g, conn_t *c)
{
    c->fd = tcp_connect(g->L->port);
    if (c->fd < 0)
        return -1;
    int fl = fcntl(c->fd, F_GETFL);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
        epoll_ctl(g->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    c->busy = false;
    c->in_len = c->out_len = c->out_off = 0;
    return 0;
}

static void conn_close(conn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->busy = false;
}

/* The next request of the workload into c->out. */
static void build_request(loadgen_t *g, conn_t *c)
{
    load_t *L = g->L;
    const world_t *w = L->w;
    uint64_t u = w->users[rnd(&L->rng) % w->nusers];
    uint64_t v = w->users[rnd(&L->rng) % w->nusers];
    uint64_t p = w->posts[rnd(&L->rng) % w->nposts];
    bool like = (rnd(&L->rng) & 1) != 0;
    int n;
    if (v == u)
        v = u == w->users[0] ? w->users[1] : w->users[0];
    if (L->proto == PROTO_HTTP) {
        if (L->wl == WL_GET)
            n = snprintf(c->out, OUT_CAP, "GET /v1/users/%" PRIu64 " HTTP/1.1\r\n"
                         "Host: 127.0.0.1\r\n\r\n", u);
        else if (like)
            n = snprintf(c->out, OUT_CAP, "PUT /v1/posts/%" PRIu64 "/likes/%" PRIu64
                         " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n", p, u);
        else
            n = snprintf(c->out, OUT_CAP, "PUT /v1/users/%" PRIu64 "/following/%" PRIu64
                         " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n", u, v);
    } else { /* the keys redis-benchmark uses: key:%012d for -r */
        char key[64];
        int kl;
        if (L->wl == WL_GET) {
            kl = snprintf(key, sizeof(key), "key:%012" PRIu64, u % w->nusers);
            n = snprintf(c->out, OUT_CAP, "*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", kl, key);
        } else if (like) {
            kl = snprintf(key, sizeof(key), "likes:%" PRIu64, p);
            n = snprintf(c->out, OUT_CAP, "*2\r\n$4\r\nINCR\r\n$%d\r\n%s\r\n", kl, key);
        } else {
            char member[32];
            int ml = snprintf(member, sizeof(member), "%" PRIu64, v);
            kl = snprintf(key, sizeof(key), "following:%" PRIu64, u);
            n = snprintf(c->out, OUT_CAP, "*3\r\n$4\r\nSADD\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", kl,
                         key, ml, member);
        }
    }
    REEL_ASSERT(n > 0 && n < (int)OUT_CAP);
    c->out_len = (uint32_t)n;
    c->out_off = 0;
}

/* Sends what is left of c->out; asks for EPOLLOUT while some is left.
 * Returns -1 when the connection failed. */
static int conn_flush(loadgen_t *g, conn_t *c)
{
    while (c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
            return epoll_ctl(g->ep, EPOLL_CTL_MOD, c->fd, &ev);
        }
        if (w <= 0)
            return -1;
        c->out_off += (uint32_t)w;
    }
    return 0;
}

static int conn_send(loadgen_t *g, conn_t *c, uint64_t start)
{
    build_request(g, c);
    c->busy = true;
    c->start = start;
    return conn_flush(g, c);
}

/* One whole answer at the head of c->in: its length, 0 when incomplete,
 * -1 when malformed. *ok: the status is the expected one. */
static int64_t parse_answer(const load_t *L, const conn_t *c, bool *ok)
{
    const char *in = c->in;
    size_t len = c->in_len;
    if (L->proto == PROTO_HTTP) {
        const char *end = memmem(in, len, "\r\n\r\n", 4);
        if (end == NULL)
            return len >= IN_CAP ? -1 : 0;
        size_t head = (size_t)(end - in) + 4, body = 0;
        bool have = false;
        if (head < 13 || memcmp(in, "HTTP/1.1 ", 9) != 0)
            return -1;
        for (const char *p = in; p != NULL && p < end;) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            if (nl == NULL)
                break;
            if (strncasecmp(nl + 1, "content-length:", 15) == 0) {
                body = strtoul(nl + 16, NULL, 10);
                have = true;
                break;
            }
            p = nl + 1;
        }
        if (!have || head + body > IN_CAP)
            return -1;
        *ok = in[9] == '2';
        return head + body <= len ? (int64_t)(head + body) : 0;
    }
    const char *nl = memmem(in, len, "\r\n", 2);
    if (nl == NULL)
        return len >= IN_CAP ? -1 : 0;
    size_t line = (size_t)(nl - in) + 2;
    *ok = in[0] != '-';
    if (in[0] != '$')
        return (int64_t)line;
    long n = strtol(in + 1, NULL, 10);
    if (n < 0)
        return (int64_t)line;
    if (line + (size_t)n + 2 > IN_CAP)
        return -1;
    return line + (size_t)n + 2 <= len ? (int64_t)(line + (size_t)n + 2) : 0;
}

static void record(loadgen_t *g, uint64_t ns)
{
    if (g->L->nlat < g->lat_cap)
        g->lat[g->L->nlat++] = ns;
}

/* Runs one measurement (load_t says which); fills its results. 0, or -1
 * when the generator could not run (connections refused, too many
 * failures). */
static int load_run(load_t *L)
{
    loadgen_t g = {.L = L, .ep = -1};
    int rc = -1;
    bool open_loop = L->rate > 0;
    L->done = L->errors = L->reconnects = 0;
    L->nlat = 0;
    double cap = open_loop ? L->rate * (double)L->dur_ns / 1e9 * 1.1 + 1024
                           : 2e6 * (double)L->dur_ns / 1e9;
    g.lat_cap = cap > LAT_SAMPLES_MAX ? LAT_SAMPLES_MAX : (uint32_t)cap;
    g.lat = malloc((size_t)g.lat_cap * sizeof(uint64_t));
    g.c = calloc(L->nconns, sizeof(conn_t));
    g.ep = epoll_create1(EPOLL_CLOEXEC);
    if (g.lat == NULL || g.c == NULL || g.ep < 0)
        goto out;
    for (uint32_t i = 0; i < L->nconns; i++)
        g.c[i].fd = -1;
    for (uint32_t i = 0; i < L->nconns; i++) {
        if (conn_open(&g, &g.c[i]) != 0) {
            fprintf(stderr, "bench http: connect to port %d: %s\n", L->port, strerror(errno));
            goto out;
        }
    }
    uint64_t t0 = now_ns();
    uint64_t w0 = t0 + L->warmup_ns, w1 = w0 + L->dur_ns;
    uint64_t period = open_loop ? (uint64_t)(1e9 / L->rate) : 0;
    uint64_t next_k = 0; /* open loop: the next request of the schedule to send */
    uint64_t sched_end = open_loop ? (w1 - t0) / (period ? period : 1) : 0;
    if (open_loop && period == 0)
        goto out;
    if (!open_loop) {
        for (uint32_t i = 0; i < L->nconns; i++)
            if (conn_send(&g, &g.c[i], now_ns()) != 0)
                goto out;
    }
    struct epoll_event evs[256];
    for (;;) {
        uint64_t t = now_ns();
        uint32_t busy = 0;
        if (open_loop) {
            /* hand every due request to a free connection, oldest first */
            for (uint32_t i = 0; i < L->nconns && next_k < sched_end; i++) {
                conn_t *c = &g.c[i];
                if (c->busy || c->fd < 0)
                    continue;
                uint64_t due = t0 + next_k * period;
                if (due > t)
                    break;
                if (conn_send(&g, c, due) != 0)
                    conn_close(c);
                next_k++;
            }
            for (uint32_t i = 0; i < L->nconns; i++)
                busy += g.c[i].busy;
            if (t >= w1 && ((busy == 0 && next_k >= sched_end) || t >= w1 + DRAIN_NS))
                break;
        } else if (t >= w1) {
            break;
        }
        /* wait for answers, or for the next due time */
        struct timespec ts = {0, 200000000L};
        if (open_loop && next_k < sched_end && busy < L->nconns) {
            uint64_t due = t0 + next_k * period;
            uint64_t d = due > t ? due - t : 0;
            ts.tv_sec = (time_t)(d / 1000000000ull);
            ts.tv_nsec = (long)(d % 1000000000ull);
        }
        int n = epoll_pwait2(g.ep, evs, (int)REEL_ARRAY_LEN(evs), &ts, NULL);
        if (n < 0 && errno == ENOSYS) {
            int ms = (int)(ts.tv_sec * 1000 + (ts.tv_nsec + 999999) / 1000000);
            n = epoll_wait(g.ep, evs, (int)REEL_ARRAY_LEN(evs), ms);
        }
        if (n < 0 && errno != EINTR)
            goto out;
        for (int e = 0; e < n; e++) {
            conn_t *c = evs[e].data.ptr;
            bool dead = false;
            if (c->fd < 0)
                continue;
            if ((evs[e].events & EPOLLOUT) && c->out_off < c->out_len) {
                if (conn_flush(&g, c) != 0)
                    dead = true;
                else if (c->out_off == c->out_len) {
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(g.ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
            }
            while (!dead && (evs[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
                ssize_t r = recv(c->fd, c->in + c->in_len, IN_CAP - c->in_len, 0);
                if (r < 0 && errno == EINTR)
                    continue;
                if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                    break;
                if (r <= 0) {
                    dead = true;
                    break;
                }
                c->in_len += (uint32_t)r;
                bool ok = false;
                int64_t used = parse_answer(L, c, &ok);
                if (used < 0) {
                    dead = true;
                    break;
                }
                if (used == 0)
                    continue;
                uint64_t done_at = now_ns();
                if (!c->busy) { /* an answer nobody asked for */
                    dead = true;
                    break;
                }
                memmove(c->in, c->in + used, c->in_len - (uint32_t)used);
                c->in_len -= (uint32_t)used;
                c->busy = false;
                if (!ok)
                    L->errors++;
                bool counted = open_loop ? c->start >= w0 && c->start < w1
                                         : done_at >= w0 && done_at < w1 && c->start >= w0;
                if (open_loop ? counted : done_at >= w0 && done_at < w1)
                    L->done++;
                if (counted)
                    record(&g, done_at - c->start);
                if (!open_loop && done_at < w1 && conn_send(&g, c, done_at) != 0)
                    dead = true;
                break;
            }
            if (dead) {
                if (c->busy)
                    L->errors++;
                conn_close(c);
                if (++L->reconnects > RECONNECTS_MAX) {
                    fprintf(stderr, "bench http: connections keep failing\n");
                    goto out;
                }
                if (conn_open(&g, c) != 0) {
                    fprintf(stderr, "bench http: reconnect: %s\n", strerror(errno));
                    goto out;
                }
                if (!open_loop && now_ns() < w1 && conn_send(&g, c, now_ns()) != 0)
                    goto out;
            }
        }
    }
    if (open_loop) {
        /* what never got an answer, or was never sent, counts as late as now */
        uint64_t t = now_ns();
        for (uint32_t i = 0; i < L->nconns; i++)
            if (g.c[i].busy && g.c[i].start >= w0 && g.c[i].start < w1) {
                record(&g, t - g.c[i].start);
                L->errors++;
            }
        for (uint64_t k = next_k; k < sched_end; k++)
            if (t0 + k * period >= w0) {
                record(&g, t - (t0 + k * period));
                L->errors++;
            }
        L->rps = (double)L->done / ((double)L->dur_ns / 1e9);
    } else {
        L->rps = (double)L->done / ((double)L->dur_ns / 1e9);
    }
    if (L->nlat > 0) {
        reel_bench_sort_u64(g.lat, L->nlat);
        L->p50_ns = reel_bench_percentile(g.lat, L->nlat, 0.50);
        L->p99_ns = reel_bench_percentile(g.lat, L->nlat, 0.99);
    }
    rc = 0;
out:
    if (g.c != NULL)
        for (uint32_t i = 0; i < L->nconns; i++)
            conn_close(&g.c[i]);
    if (g.ep >= 0)
        close(g.ep);
    free(g.c);
    free(g.lat);
    return rc;
}

/* ---- Redis ---- */

typedef struct redis {
    pid_t pid;
    int port;
    char err[PATH_MAX];
} redis_t;

static bool have_tool(const char *name)
{
    const char *path = getenv("PATH");
    char buf[PATH_MAX];
    if (path == NULL)
        path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path; *p != '\0';) {
        const char *colon = strchr(p, ':');
        size_t n = colon ? (size_t)(colon - p) : strlen(p);
        if (n > 0 && n < sizeof(buf) - 64) {
            snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, p, name);
            if (access(buf, X_OK) == 0)
                return true;
        }
        p += n + (colon ? 1 : 0);
    }
    return false;
}

static int redis_start(const char *dir, redis_t *r)
{
    char data[PATH_MAX], out[PATH_MAX], port[16];
    snprintf(data, sizeof(data), "%s/redis-data", dir);
    snprintf(out, sizeof(out), "%s/redis.out", dir);
    snprintf(r->err, sizeof(r->err), "%s/redis.err", dir);
    if (mkdir(data, 0755) != 0)
        return -1;
    r->port = free_port();
    if (r->port <= 0)
        return -1;
    snprintf(port, sizeof(port), "%d", r->port);
    char *argv[] = {"redis-server", "--port", port, "--bind", "127.0.0.1",
                    "--appendonly", "yes", "--appendfsync", "always", "--save", "",
                    "--dir", data, "--daemonize", "no", "--protected-mode", "yes", NULL};
    r->pid = spawn(argv, out, r->err, NULL);
    if (r->pid < 0)
        return -1;
    for (int i = 0; i < START_TIMEOUT_MS / 10; i++) {
        int fd = tcp_connect(r->port);
        if (fd >= 0) {
            char buf[64];
            ssize_t n = -1;
            struct timeval tv = {2, 0};
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
            if (send(fd, "PING\r\n", 6, MSG_NOSIGNAL) == 6)
                n = recv(fd, buf, sizeof(buf), 0);
            close(fd);
            if (n >= 5 && memcmp(buf, "+PONG", 5) == 0)
                return 0;
        }
        int ws;
        if (waitpid(r->pid, &ws, WNOHANG) == r->pid) {
            fprintf(stderr, "bench http: redis-server exited at start (see %s)\n", out);
            r->pid = -1;
            return -1;
        }
        sleep_ms(10);
    }
    fprintf(stderr, "bench http: redis-server did not answer within %d ms\n", START_TIMEOUT_MS);
    return -1;
}

typedef struct rb_result {
    double rps[3];  /* GET, INCR, SADD as the csv names them; <0 when absent */
    double p99_ms[3];
} rb_result_t;

/* redis-benchmark -t TESTS -c CONNS -n N -r KEYSPACE [-d 256] --csv:
 * fills the rows it printed. */
static int redis_bench(const redis_t *r, const char *tests, uint32_t conns, uint64_t n,
                       uint64_t keyspace, rb_result_t *res)
{
    static const char *names[3] = {"\"GET\"", "\"INCR\"", "\"SADD\""};
    char port[16], c[16], nn[32], ks[32], out[8192];
    snprintf(port, sizeof(port), "%d", r->port);
    snprintf(c, sizeof(c), "%u", conns);
    snprintf(nn, sizeof(nn), "%" PRIu64, n);
    snprintf(ks, sizeof(ks), "%" PRIu64, keyspace);
    char *argv[] = {"redis-benchmark", "-h", "127.0.0.1", "-p", port, "-t", (char *)tests,
                    "-c", c, "-n", nn, "-r", ks, "-d", "256", "--csv", NULL};
    for (int i = 0; i < 3; i++)
        res->rps[i] = res->p99_ms[i] = -1;
    int rc = run_capture(argv, r->err, out, sizeof(out), TOOL_TIMEOUT_MS);
    if (rc != 0) {
        fprintf(stderr, "bench http: redis-benchmark failed (%d; see %s)\n", rc, r->err);
        return -1;
    }
    for (char *line = out, *next; line != NULL && *line != '\0'; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        for (int i = 0; i < 3; i++) {
            size_t nl = strlen(names[i]);
            double v[7];
            if (strncmp(line, names[i], nl) != 0 ||
                sscanf(line + nl, ",\"%lf\",\"%lf\",\"%lf\",\"%lf\",\"%lf\",\"%lf\",\"%lf\"", &v[0],
                       &v[1], &v[2], &v[3], &v[4], &v[5], &v[6]) != 7)
                continue;
            res->rps[i] = v[0];
            res->p99_ms[i] = v[5];
        }
    }
    return 0;
}

/* ---- the benchmark ---- */

/* CPU seconds used so far by process pid (utime + stime, all threads), or
 * by this process when pid is 0. */
static double cpu_seconds(pid_t pid)
{
    if (pid == 0) {
        struct rusage ru;
        if (getrusage(RUSAGE_SELF, &ru) != 0)
            return 0;
        return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    }
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the name may hold spaces */
    unsigned long long ut = 0, st = 0;
    if (p == NULL ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

typedef struct results {
    uint32_t n;
    double get_rps[ROUNDS_MAX], get_p50[ROUNDS_MAX], get_p99[ROUNDS_MAX];
    double wr_rps[ROUNDS_MAX], wr_p99[ROUNDS_MAX];
    double r_get_rps[ROUNDS_MAX], r_get_p50[ROUNDS_MAX], r_get_p99[ROUNDS_MAX];
    double r_wr_rps[ROUNDS_MAX], r_wr_p99[ROUNDS_MAX];
} results_t;

static bool too_many_errors(const char *what, const load_t *L)
{
    uint64_t all = L->done + L->errors;
    if (L->errors > 0)
        fprintf(stderr, "  %s: %" PRIu64 " of %" PRIu64 " answers failed or late, %" PRIu64
                " reconnects\n", what, L->errors, all, L->reconnects);
    if (all == 0 || (double)L->errors > ERROR_SHARE_MAX * (double)all) {
        fprintf(stderr, "bench http: %s: too many failures (%" PRIu64 " of %" PRIu64 ")\n", what,
                L->errors, all);
        return true;
    }
    return false;
}

/* Median of the first n values, or NAN when any is missing (< 0). */
static double median_or_nan(const double *v, uint32_t n)
{
    double tmp[ROUNDS_MAX];
    for (uint32_t i = 0; i < n; i++) {
        if (!(v[i] >= 0))
            return NAN;
        tmp[i] = v[i];
    }
    return n ? reel_bench_median(tmp, n) : NAN;
}

static int one_round(const reel_bench_ctx_t *ctx, uint32_t round, const server_t *s,
                     const redis_t *rd, const world_t *w, results_t *res)
{
    uint64_t dur = (ctx->quick ? 2ull : 5ull) * 1000000000ull;
    uint64_t warm = ctx->quick ? 300000000ull : 1000000000ull;
    bool redis = rd->pid > 0;
    load_t L = {.proto = PROTO_HTTP, .port = s->port, .w = w, .warmup_ns = warm,
                .dur_ns = dur, .rng = 1000 + round};
    uint32_t i = round;
    res->r_get_rps[i] = res->r_get_p50[i] = res->r_get_p99[i] = -1;
    res->r_wr_rps[i] = res->r_wr_p99[i] = -1;

    if (reel_bench_want(ctx, "get")) {
        /* (a) GET a profile: the most a closed loop of 64 connections gets */
        L.wl = WL_GET;
        L.nconns = CONNS_GET;
        L.rate = 0;
        double cs = cpu_seconds(s->pid), cg = cpu_seconds(0);
        uint64_t t0 = now_ns();
        if (load_run(&L) != 0 || too_many_errors("GET closed loop", &L))
            return -1;
        double secs = (double)(now_ns() - t0) / 1e9;
        res->get_rps[i] = L.rps;
        double half = L.rps / 2;
        fprintf(stderr, "  round %u: reeld GET %.0f req/s (64 conns, closed loop, p99 %.2f ms); "
                "CPU busy: reeld %.2f cores, load generator %.2f cores\n", round + 1, L.rps,
                (double)L.p99_ns / 1e6, (cpu_seconds(s->pid) - cs) / secs,
                (cpu_seconds(0) - cg) / secs);
        if (redis) {
            rb_result_t rb;
            uint64_t n = (uint64_t)(L.rps * (double)dur / 1e9);
            if (redis_bench(rd, "get", CONNS_GET, n < 10000 ? 10000 : n, w->nusers, &rb) == 0)
                res->r_get_rps[i] = rb.rps[0];
            fprintf(stderr, "  round %u: redis GET %.0f req/s (redis-benchmark -c 64)\n",
                    round + 1, rb.rps[0]);
        }
        /* then open loop at half that rate */
        L.rate = half;
        L.rng++;
        cs = cpu_seconds(s->pid);
        cg = cpu_seconds(0);
        t0 = now_ns();
        if (load_run(&L) != 0 || too_many_errors("GET open loop", &L))
            return -1;
        secs = (double)(now_ns() - t0) / 1e9;
        res->get_p50[i] = (double)L.p50_ns / 1e3;
        res->get_p99[i] = (double)L.p99_ns / 1e3;
        fprintf(stderr, "  round %u: reeld GET at %.0f req/s: p50 %.0f us, p99 %.0f us "
                "(%" PRIu32 " samples, %.0f answered/s); CPU busy: reeld %.2f cores, load "
                "generator %.2f cores\n", round + 1, half, res->get_p50[i], res->get_p99[i],
                L.nlat, L.rps, (cpu_seconds(s->pid) - cs) / secs, (cpu_seconds(0) - cg) / secs);
        if (redis) {
            load_t R = L;
            R.proto = PROTO_RESP;
            R.port = rd->port;
            if (load_run(&R) == 0 && !too_many_errors("redis GET open loop", &R)) {
                res->r_get_p50[i] = (double)R.p50_ns / 1e3;
                res->r_get_p99[i] = (double)R.p99_ns / 1e3;
                fprintf(stderr, "  round %u: redis GET at %.0f req/s: p50 %.0f us, p99 %.0f us\n",
                        round + 1, half, res->r_get_p50[i], res->r_get_p99[i]);
            }
        }
    }
    if (reel_bench_want(ctx, "write")) {
        /* (b) durable likes and follows from 256 connections */
        L.wl = WL_WRITE;
        L.nconns = CONNS_WRITE;
        L.rate = 0;
        L.rng += 7;
        double cs = cpu_seconds(s->pid), cg = cpu_seconds(0), wa[5], wb[5];
        bool counted = writer_counters(s->port, wa) == 0;
        uint64_t t0 = now_ns();
        if (load_run(&L) != 0 || too_many_errors("writes", &L))
            return -1;
        if (counted && writer_counters(s->port, wb) == 0)
            writer_report(round, wa, wb);
        double secs = (double)(now_ns() - t0) / 1e9;
        res->wr_rps[i] = L.rps;
        res->wr_p99[i] = (double)L.p99_ns / 1e3;
        fprintf(stderr, "  round %u: reeld writes %.0f /s (256 conns), p50 %.0f us, p99 %.0f us; "
                "CPU busy: reeld %.2f cores, load generator %.2f cores\n", round + 1, L.rps,
                (double)L.p50_ns / 1e3, res->wr_p99[i], (cpu_seconds(s->pid) - cs) / secs,
                (cpu_seconds(0) - cg) / secs);
        if (redis) {
            rb_result_t rb;
            uint64_t n = (uint64_t)(L.rps * (double)dur / 1e9);
            if (redis_bench(rd, "incr,sadd", CONNS_WRITE, n < 10000 ? 10000 : n, w->nusers,
                            &rb) == 0 && rb.rps[1] > 0 && rb.rps[2] > 0) {
                res->r_wr_rps[i] = 2.0 / (1.0 / rb.rps[1] + 1.0 / rb.rps[2]);
                fprintf(stderr, "  round %u: redis INCR %.0f /s (p99 %.2f ms), SADD %.0f /s "
                        "(p99 %.2f ms) (redis-benchmark -c 256): mix %.0f /s\n", round + 1,
                        rb.rps[1], rb.p99_ms[1], rb.rps[2], rb.p99_ms[2], res->r_wr_rps[i]);
            }
            load_t R = L;
            R.proto = PROTO_RESP;
            R.port = rd->port;
            if (load_run(&R) == 0 && !too_many_errors("redis writes", &R)) {
                res->r_wr_p99[i] = (double)R.p99_ns / 1e3;
                fprintf(stderr, "  round %u: redis INCR/SADD through this generator: %.0f /s, "
                        "p99 %.0f us\n", round + 1, R.rps, res->r_wr_p99[i]);
            }
        }
    }
    res->n = round + 1;
    return 0;
}

int reel_bench_http(const reel_bench_ctx_t *ctx)
{
    server_t s = {.pid = -1};
    redis_t rd = {.pid = -1};
    world_t w = {0};
    results_t *res = calloc(1, sizeof(*res));
    uint32_t rounds = ctx->rounds < ROUNDS_MAX ? ctx->rounds : ROUNDS_MAX;
    int rc = 2;
    if (res == NULL)
        return 2;
    if (rounds == 0)
        rounds = 1;
    signal(SIGPIPE, SIG_IGN);
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < 4096) {
        nofile.rlim_cur = nofile.rlim_max < 4096 ? nofile.rlim_max : 4096;
        setrlimit(RLIMIT_NOFILE, &nofile);
    }

    if (reel_bench_reeld_start("http", ctx->dir, NULL, &s) != 0)
        goto out;
    fprintf(stderr, "  reeld pid %d on 127.0.0.1:%d; load generator: 1 thread (epoll) on the "
            "same machine (%ld CPUs online, shared with reeld and the baseline)\n", (int)s.pid,
            s.port, sysconf(_SC_NPROCESSORS_ONLN));
    if (ctx->quick ? seed(s.port, 2000, 5000, 200, &w) : seed(s.port, 10000, 50000, 1000, &w))
        goto out;

    if (!have_tool("redis-server") || !have_tool("redis-benchmark")) {
        fprintf(stderr, "  no Redis baseline: redis-server and redis-benchmark are not installed "
                "(apt-get install redis-server redis-tools, or `make bench` as root); "
                "baselines are null\n");
    } else if (redis_start(ctx->dir, &rd) != 0) {
        fprintf(stderr, "bench http: redis-server did not start; baselines are null\n");
        rd.pid = -1;
    } else {
        /* the GET keys, with values the size of a profile */
        rb_result_t rb;
        char tests[] = "set";
        fprintf(stderr, "  redis-server pid %d on 127.0.0.1:%d (AOF, appendfsync always)\n",
                (int)rd.pid, rd.port);
        if (redis_bench(&rd, tests, 64, w.nusers * 4, w.nusers, &rb) != 0) {
            stop_child(rd.pid);
            rd.pid = -1;
        }
    }

    for (uint32_t r = 0; r < rounds; r++)
        if (one_round(ctx, r, &s, &rd, &w, res) != 0)
            goto out;

    uint32_t n = res->n;
    if (n > 0 && reel_bench_want(ctx, "get")) {
        reel_bench_emit(BENCH, "get_profile_rps", median_or_nan(res->get_rps, n), "req/s",
                        median_or_nan(res->r_get_rps, n));
        reel_bench_emit(BENCH, "get_profile_p50_latency_at_half_rate_vs_baseline",
                        median_or_nan(res->get_p50, n), "us", median_or_nan(res->r_get_p50, n));
        reel_bench_emit(BENCH, "get_profile_p99_latency_at_half_rate_vs_baseline",
                        median_or_nan(res->get_p99, n), "us", median_or_nan(res->r_get_p99, n));
    }
    if (n > 0 && reel_bench_want(ctx, "write")) {
        reel_bench_emit(BENCH, "durable_writes_per_s", median_or_nan(res->wr_rps, n), "writes/s",
                        median_or_nan(res->r_wr_rps, n));
        reel_bench_emit(BENCH, "durable_writes_p99_latency_vs_baseline",
                        median_or_nan(res->wr_p99, n), "us", median_or_nan(res->r_wr_p99, n));
    }
    rc = 0;
out:
    if (s.pid > 0) {
        int st = stop_child(s.pid);
        if (st != 0 && rc == 0) {
            fprintf(stderr, "bench http: reeld did not stop cleanly on SIGTERM (%d; see %s)\n",
                    st, s.err);
            rc = 2;
        }
    }
    if (rd.pid > 0)
        stop_child(rd.pid);
    free(w.users);
    free(w.posts);
    free(res);
    if (ctx->keep)
        fprintf(stderr, "  data left in %s\n", ctx->dir);
    return rc;
}
