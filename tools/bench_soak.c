/*
 * bench_soak.c: `reel bench soak [--minutes N]` (issue 8, "Load and soak";
 * not in CI, and not part of `reel bench all`): a fresh reeld under a mixed
 * load through HTTP for N minutes (default 10; --quick: half a minute).
 *
 * The load. SK_THREADS client threads, each on its own keep-alive
 * connection (the reference worker's client, tools/http_client.h), pick
 * writes (likes, unlikes, follows, posts, comments, views, generations)
 * and reads (profiles, For You and following feeds, post pages, comment
 * pages) at random over a seeded world; reel-render (beside this binary,
 * --concurrency 4) claims and completes the generations; one thread holds
 * GET /v1/log/stream open and checks that its ids only grow. Generations
 * in flight are capped (SK_GEN_INFLIGHT) so the queue stays bounded.
 * With `--filter steady` the writes that add data (posts, comments,
 * generations) become likes and unlikes: the seeded world's likes, follows
 * and views saturate, so the data in memory stops growing, and reeld's
 * memory should go flat after the warm-up (what a leak would not do).
 *
 * What it checks and reports. Every answer the load did not ask for is an
 * error (a status outside what the route gives to a valid request, a
 * transport error, a stream that breaks or falls behind, a worker or reeld
 * that does not exit 0): any error fails the benchmark. Every minute (or
 * at the end of a shorter run) stderr gets a line per route: requests,
 * p99, errors. stdout gets, per tools/bench.h: rss_start_kib, rss_end_kib
 * (baseline: the start, so ratio is the growth), fds_start, fds_end,
 * sockets_start, sockets_end, errors, requests, generations_completed,
 * stream_events, and the last
 * minute's p99 of each route (p99_<route>_ms).
 *
 * RSS is reeld's VmRSS (/proc/PID/status) and fds the entries of
 * /proc/PID/fd, both taken after seeding with no client connected, and
 * again after the load, once the clients have closed; also the RSS after
 * the first minute (the warm-up: LMDB's map and the feed index fill), the
 * baseline that flat memory is judged against. The load keeps creating
 * posts, users' histories and log, so reeld's memory grows with its data
 * by design: RSS is also split into anonymous (the heap) and file-backed
 * (the views' map, which the kernel can drop), beside the feed index's
 * own byte count (/metrics, reeld_index_bytes: its tables' capacity, which
 * doubles, so it runs ahead of what is resident). Leaks themselves are
 * valgrind's to find (make valgrind). A leaked fd fails the run
 * when it is a socket (a connection reeld never closed); other fds follow
 * the log's segments, which roll over under load.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "tools/bench.h"
#include "tools/http_client.h"

#define SK_THREADS 4u
#define SK_USERS 400u
#define SK_SEED_POSTS 400u
#define SK_GEN_INFLIGHT 32
#define SK_TIMEOUT_MS 30000u
#define SK_SAMPLES_MAX (1u << 22) /* per route per window: beyond, only counted */

/* The routes of the load: name, method. */
#define SK_ROUTES(XX)                       \
    XX(like, "PUT /v1/posts/{id}/likes/{user}")      \
    XX(unlike, "DELETE /v1/posts/{id}/likes/{user}") \
    XX(follow, "PUT /v1/users/{id}/following/{t}")   \
    XX(post, "POST /v1/posts")                       \
    XX(comment, "POST /v1/posts/{id}/comments")      \
    XX(view, "POST /v1/views")                       \
    XX(generation, "POST /v1/generations")           \
    XX(profile, "GET /v1/users/{id}")                \
    XX(feed, "GET /v1/users/{id}/feed")              \
    XX(following_feed, "GET /v1/users/{id}/feed?kind=following") \
    XX(post_page, "GET /v1/posts/{id}")              \
    XX(comments_page, "GET /v1/posts/{id}/comments") \
    XX(missing, "GET /v1/users/{unknown}: 404 asked for")

enum {
#define SK_ENUM(n, d) SK_##n,
    SK_ROUTES(SK_ENUM)
#undef SK_ENUM
    SK_NROUTES
};
static const char *const sk_names[] = {
#define SK_NAME(n, d) #n,
    SK_ROUTES(SK_NAME)
#undef SK_NAME
};

typedef struct sk_window {
    uint64_t *lat_ns; /* samples (up to SK_SAMPLES_MAX) */
    uint32_t n, cap;
    uint64_t requests, errors;
} sk_window_t;

typedef struct sk_state {
    char url[64];
    int port;
    uint64_t deadline_ns;
    atomic_bool stop;                  /* the load threads */
    atomic_bool stream_stop;           /* the stream consumer */
    atomic_uint_fast64_t max_post;     /* newest post id the load knows */
    atomic_int_fast64_t gens_created;  /* answered 202 */
    atomic_int_fast64_t gens_done;     /* completed, failed or cancelled (the stream) */
    atomic_uint_fast64_t stream_events;
    atomic_int_fast64_t stream_last;   /* last id seen, -1 none */
    atomic_uint_fast64_t errors;       /* unasked-for errors, all causes */
    bool steady;                       /* --filter steady: writes that add no posts */
    pthread_mutex_t mu;                /* guards win */
    sk_window_t win[SK_NROUTES];
} sk_state_t;

static void sk_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static uint64_t sk_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* ---- reeld, reel-render ---- */

/* reeld on dir/reeld-data (tools/bench.c), its port and url into s. */
static int sk_reeld_start(const char *dir, sk_state_t *s, pid_t *pid)
{
    static const char *const extra[] = {"--generations-per-day", "1000000", NULL};
    reel_bench_reeld_t r;
    int rc = reel_bench_reeld_start("soak", dir, extra, &r);
    *pid = r.pid;
    s->port = r.port;
    snprintf(s->url, sizeof s->url, "%s", r.url);
    return rc;
}

/* SIGTERM, then (after 20 s) SIGKILL: the exit status, or -1. */
static int sk_stop(pid_t pid)
{
    return reel_bench_stop(pid, 20000);
}

/* A KiB field of /proc/PID/status ("VmRSS:", "RssAnon:", "RssFile:"). */
static long sk_status_kib(pid_t pid, const char *field)
{
    char path[64], line[256];
    long kib = -1;
    size_t flen = strlen(field);
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, field, flen) == 0)
            kib = strtol(line + flen, NULL, 10);
    }
    fclose(f);
    return kib;
}

static long sk_rss_kib(pid_t pid)
{
    return sk_status_kib(pid, "VmRSS:");
}

/* reeld's memory, split: anonymous (heap: the feed index, buffers) and
 * file-backed (mostly the LMDB views' map, which grows with the data and
 * which the kernel can drop), with the feed index's own count of its
 * bytes (/metrics), so that growth can be told from a leak. */
typedef struct sk_mem {
    long anon_kib, file_kib;
    long long index_bytes;
} sk_mem_t;

static long long sk_metric(const char *url, const char *name)
{
    reel_client_t c;
    reel_client_resp_t r;
    long long v = -1;
    char key[96];
    snprintf(key, sizeof key, "\n%s ", name);
    if (reel_client_init(&c, url, NULL) != 0)
        return -1;
    if (reel_client_request(&c, "GET", "/metrics", NULL, 0, SK_TIMEOUT_MS, &r) == 0 &&
        r.status == 200) {
        const char *p = strstr(r.body, key);
        v = p ? atoll(p + strlen(key)) : -1;
    }
    reel_client_free(&c);
    return v;
}

static sk_mem_t sk_mem(pid_t pid, const char *url)
{
    return (sk_mem_t){sk_status_kib(pid, "RssAnon:"), sk_status_kib(pid, "RssFile:"),
                      sk_metric(url, "reeld_index_bytes")};
}

/* reeld's open fds; *sockets (may be NULL) those that are sockets (the
 * others follow the log's segments, which may roll over under load). */
static long sk_fds_sock(pid_t pid, long *sockets)
{
    char path[64], lp[320], target[64];
    long n = 0, ns = 0;
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        n++;
        snprintf(lp, sizeof lp, "%s/%s", path, de->d_name);
        ssize_t k = readlink(lp, target, sizeof target - 1);
        ns += k > 7 && strncmp(target, "socket:", 7) == 0;
    }
    closedir(d);
    if (sockets)
        *sockets = ns;
    return n;
}

static long sk_fds(pid_t pid)
{
    return sk_fds_sock(pid, NULL);
}

/* ---- the load ---- */

static void sk_record(sk_state_t *s, int route, uint64_t ns, bool error)
{
    pthread_mutex_lock(&s->mu);
    sk_window_t *w = &s->win[route];
    w->requests++;
    w->errors += error;
    if (w->n == w->cap && w->cap < SK_SAMPLES_MAX) {
        uint32_t cap = w->cap ? w->cap * 2 : 4096;
        uint64_t *p = realloc(w->lat_ns, cap * sizeof *p);
        if (p != NULL) {
            w->lat_ns = p;
            w->cap = cap;
        }
    }
    if (w->n < w->cap)
        w->lat_ns[w->n++] = ns;
    pthread_mutex_unlock(&s->mu);
    if (error)
        atomic_fetch_add(&s->errors, 1);
}

/* One request; the statuses the load asked for are want (and want2). */
static void sk_do(sk_state_t *s, reel_client_t *c, int route, const char *method,
                  const char *path, const char *body, int want, int want2, long long *id_out,
                  const char *id_key)
{
    reel_client_resp_t r;
    uint64_t t0 = reel_bench_now_ns();
    int rc = reel_client_request(c, method, path, body, body ? strlen(body) : 0, SK_TIMEOUT_MS,
                                 &r);
    uint64_t ns = reel_bench_now_ns() - t0;
    bool error = rc != 0 || (r.status != want && r.status != want2);
    if (error) {
        static atomic_int shown;
        if (atomic_fetch_add(&shown, 1) < 20)
            fprintf(stderr, "bench soak: %s %s: %s %d %.200s\n", method, path,
                    rc ? strerror(-rc) : "status", rc ? 0 : r.status, rc ? "" : r.body);
    } else if (id_out != NULL) {
        const char *p = strstr(r.body, id_key);
        *id_out = p ? atoll(p + strlen(id_key)) : 0;
    }
    sk_record(s, route, ns, error);
}

static void *sk_load_main(void *arg)
{
    sk_state_t *s = ((void **)arg)[0];
    uint64_t seed = (uint64_t)(uintptr_t)((void **)arg)[1];
    reel_client_t c;
    char path[256], body[512];
    if (reel_client_init(&c, s->url, NULL) != 0) {
        atomic_fetch_add(&s->errors, 1);
        return NULL;
    }
    while (!atomic_load(&s->stop)) {
        uint64_t r = sk_rand(&seed);
        long long u = (long long)(r % SK_USERS) + 1, t = (long long)((r >> 16) % SK_USERS) + 1;
        long long maxp = (long long)atomic_load(&s->max_post);
        long long p = (long long)((r >> 32) % (uint64_t)maxp) + 1;
        unsigned pick = (unsigned)((r >> 48) % 100);
        long long id;
        /* Steady: posts, comments and generations become likes and unlikes,
         * so the data the index and the views hold stops growing once the
         * likes, follows and views of the seeded world saturate. */
        if (s->steady && ((pick >= 24 && pick < 32) || (pick >= 42 && pick < 45)))
            pick = pick % 18;
        if (pick < 14) {
            snprintf(path, sizeof path, "/v1/posts/%lld/likes/%lld", p, u);
            sk_do(s, &c, SK_like, "PUT", path, NULL, 200, 200, NULL, NULL);
        } else if (pick < 18) {
            snprintf(path, sizeof path, "/v1/posts/%lld/likes/%lld", p, u);
            sk_do(s, &c, SK_unlike, "DELETE", path, NULL, 200, 200, NULL, NULL);
        } else if (pick < 24) {
            if (t == u)
                t = t % SK_USERS + 1;
            snprintf(path, sizeof path, "/v1/users/%lld/following/%lld", u, t);
            sk_do(s, &c, SK_follow, "PUT", path, NULL, 200, 200, NULL, NULL);
        } else if (pick < 28) {
            snprintf(body, sizeof body,
                     "{\"author\":%lld,\"video_uri\":\"s3://soak/%llu\",\"prompt\":\"soak clip %llu"
                     "\",\"tags\":[\"t%llu\",\"soak\"]}",
                     u, (unsigned long long)r, (unsigned long long)(r % 997),
                     (unsigned long long)(r % 31));
            sk_do(s, &c, SK_post, "POST", "/v1/posts", body, 201, 201, &id, "\"post_id\":");
            if (id > 0) {
                uint_fast64_t cur = atomic_load(&s->max_post);
                while ((uint_fast64_t)id > cur &&
                       !atomic_compare_exchange_weak(&s->max_post, &cur, (uint_fast64_t)id)) {
                }
            }
        } else if (pick < 32) {
            snprintf(path, sizeof path, "/v1/posts/%lld/comments", p);
            snprintf(body, sizeof body, "{\"author\":%lld,\"text\":\"soak comment %llu\"}", u,
                     (unsigned long long)r % 1000);
            sk_do(s, &c, SK_comment, "POST", path, body, 201, 201, NULL, NULL);
        } else if (pick < 42) {
            snprintf(body, sizeof body,
                     "{\"user\":%lld,\"post\":%lld,\"watch_ms\":%llu,\"completed\":%s}", u, p,
                     (unsigned long long)(r % 20000), r & 1 ? "true" : "false");
            sk_do(s, &c, SK_view, "POST", "/v1/views", body, 200, 200, NULL, NULL);
        } else if (pick < 45) {
            if (atomic_load(&s->gens_created) - atomic_load(&s->gens_done) >= SK_GEN_INFLIGHT)
                continue;
            snprintf(body, sizeof body,
                     "{\"user\":%lld,\"prompt\":\"a soak render %llu\",\"tags\":[\"gen\"]}", u,
                     (unsigned long long)(r % 1000));
            sk_do(s, &c, SK_generation, "POST", "/v1/generations", body, 202, 202, &id,
                  "\"generation_id\":");
            if (id > 0)
                atomic_fetch_add(&s->gens_created, 1);
        } else if (pick < 60) {
            snprintf(path, sizeof path, "/v1/users/%lld", u);
            sk_do(s, &c, SK_profile, "GET", path, NULL, 200, 200, NULL, NULL);
        } else if (pick < 72) {
            snprintf(path, sizeof path, "/v1/users/%lld/feed?limit=20", u);
            sk_do(s, &c, SK_feed, "GET", path, NULL, 200, 200, NULL, NULL);
        } else if (pick < 78) {
            snprintf(path, sizeof path, "/v1/users/%lld/feed?kind=following&limit=20", u);
            sk_do(s, &c, SK_following_feed, "GET", path, NULL, 200, 200, NULL, NULL);
        } else if (pick < 92) {
            snprintf(path, sizeof path, "/v1/posts/%lld", p);
            /* a post hidden by nothing in this load: always there */
            sk_do(s, &c, SK_post_page, "GET", path, NULL, 200, 200, NULL, NULL);
        } else if (pick < 98) {
            snprintf(path, sizeof path, "/v1/posts/%lld/comments?limit=20", p);
            sk_do(s, &c, SK_comments_page, "GET", path, NULL, 200, 200, NULL, NULL);
        } else {
            snprintf(path, sizeof path, "/v1/users/%llu", 1000000ull + (unsigned long long)u);
            sk_do(s, &c, SK_missing, "GET", path, NULL, 404, 404, NULL, NULL);
        }
    }
    reel_client_free(&c);
    return NULL;
}

/* ---- the log stream consumer ---- */

/* The stream is not chunked (Connection: close framing): SSE lines as they
 * come. */

static void *sk_stream_main(void *arg)
{
    sk_state_t *s = arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        fprintf(stderr, "bench soak: stream: connect: %s\n", strerror(errno));
        atomic_fetch_add(&s->errors, 1);
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    static const char rq[] = "GET /v1/log/stream?from=0 HTTP/1.1\r\nHost: soak\r\n\r\n";
    if (write(fd, rq, sizeof rq - 1) != (ssize_t)(sizeof rq - 1)) {
        atomic_fetch_add(&s->errors, 1);
        close(fd);
        return NULL;
    }
    size_t cap = 1u << 20, len = 0;
    char *buf = malloc(cap + 1);
    bool head = true;
    while (buf != NULL && !atomic_load(&s->stream_stop)) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t k = read(fd, buf + len, cap - len);
        if (k <= 0) {
            fprintf(stderr, "bench soak: the log stream ended (%s)\n",
                    k == 0 ? "closed" : strerror(errno));
            atomic_fetch_add(&s->errors, 1);
            break;
        }
        len += (size_t)k;
        buf[len] = '\0';
        char *start = buf;
        if (head) {
            char *e = strstr(buf, "\r\n\r\n");
            if (e == NULL)
                continue;
            if (strncmp(buf, "HTTP/1.1 200", 12) != 0) {
                fprintf(stderr, "bench soak: stream answered %.40s\n", buf);
                atomic_fetch_add(&s->errors, 1);
                break;
            }
            head = false;
            start = e + 4;
        }
        /* whole lines only: "id: N", "event: TYPE" (chunk framing lines
         * are neither and are skipped) */
        char *nl;
        while ((nl = memchr(start, '\n', (size_t)(buf + len - start))) != NULL) {
            *nl = '\0';
            if (strncmp(start, "id:", 3) == 0) {
                long long id = atoll(start + 3);
                long long last = atomic_load(&s->stream_last);
                if (id <= last) {
                    fprintf(stderr, "bench soak: stream id %lld after %lld\n", id, last);
                    atomic_fetch_add(&s->errors, 1);
                }
                atomic_store(&s->stream_last, id);
                atomic_fetch_add(&s->stream_events, 1);
            } else if (strncmp(start, "event:", 6) == 0) {
                const char *t = start + 6 + (start[6] == ' ');
                if (strncmp(t, "generation.completed", 20) == 0 ||
                    strncmp(t, "generation.failed", 17) == 0 ||
                    strncmp(t, "generation.cancelled", 20) == 0)
                    atomic_fetch_add(&s->gens_done, 1);
            }
            start = nl + 1;
        }
        len = (size_t)(buf + len - start);
        memmove(buf, start, len);
        if (len == cap) { /* a line longer than the buffer: drop it */
            len = 0;
        }
    }
    free(buf);
    close(fd);
    return NULL;
}

/* ---- reporting ---- */

/* Prints (stderr) and resets the window; last gets each route's p99 (ms). */
static void sk_window_report(sk_state_t *s, unsigned minute, double *p99_ms, uint64_t *reqs)
{
    pthread_mutex_lock(&s->mu);
    fprintf(stderr, "  minute %u:", minute);
    for (int i = 0; i < SK_NROUTES; i++) {
        sk_window_t *w = &s->win[i];
        double p99 = 0;
        if (w->n > 0) {
            reel_bench_sort_u64(w->lat_ns, w->n);
            p99 = (double)reel_bench_percentile(w->lat_ns, w->n, 0.99) / 1e6;
        }
        p99_ms[i] = w->n > 0 ? p99 : -1;
        reqs[i] += w->requests;
        fprintf(stderr, " %s %llu/p99 %.2fms/err %llu;", sk_names[i],
                (unsigned long long)w->requests, p99, (unsigned long long)w->errors);
        w->n = 0;
        w->requests = 0;
        w->errors = 0;
    }
    fprintf(stderr, "\n");
    pthread_mutex_unlock(&s->mu);
}

/* GET /healthz's offset, or -2. */
static long long sk_head(reel_client_t *c)
{
    reel_client_resp_t r;
    if (reel_client_request(c, "GET", "/healthz", NULL, 0, SK_TIMEOUT_MS, &r) != 0 ||
        r.status != 200)
        return -2;
    const char *p = strstr(r.body, "\"offset\":");
    return p ? atoll(p + 9) : -2;
}

static int sk_seed(sk_state_t *s)
{
    reel_client_t c;
    char body[256];
    reel_client_resp_t r;
    if (reel_client_init(&c, s->url, NULL) != 0)
        return -1;
    int rc = 0;
    for (unsigned i = 1; i <= SK_USERS && rc == 0; i++) {
        snprintf(body, sizeof body, "{\"handle\":\"soak%u\"}", i);
        rc = reel_client_request(&c, "POST", "/v1/users", body, strlen(body), SK_TIMEOUT_MS, &r);
        if (rc == 0 && r.status != 201)
            rc = -1;
    }
    for (unsigned i = 1; i <= SK_SEED_POSTS && rc == 0; i++) {
        snprintf(body, sizeof body,
                 "{\"author\":%u,\"video_uri\":\"s3://seed/%u\",\"prompt\":\"seed clip %u\","
                 "\"tags\":[\"t%u\"]}",
                 i % SK_USERS + 1, i, i, i % 31);
        rc = reel_client_request(&c, "POST", "/v1/posts", body, strlen(body), SK_TIMEOUT_MS, &r);
        if (rc == 0 && r.status != 201)
            rc = -1;
    }
    reel_client_free(&c);
    atomic_store(&s->max_post, SK_SEED_POSTS);
    return rc;
}

int reel_bench_soak(const reel_bench_ctx_t *ctx)
{
    double minutes = ctx->minutes > 0 ? ctx->minutes : ctx->quick ? 0.5 : 10.0;
    sk_state_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return 2;
    pthread_mutex_init(&s->mu, NULL);
    atomic_store(&s->stream_last, -1);
    s->steady = ctx->filter != NULL && strstr(ctx->filter, "steady") != NULL;
    pid_t reeld = -1, render = -1;
    int status = 2;
    if (sk_reeld_start(ctx->dir, s, &reeld) != 0)
        goto out;
    if (sk_seed(s) != 0) {
        fprintf(stderr, "bench soak: seeding the world failed\n");
        goto out;
    }
    long sock0, sock1, rss_w1 = -1;
    long rss0 = sk_rss_kib(reeld), fds0 = sk_fds_sock(reeld, &sock0);
    sk_mem_t mem0 = sk_mem(reeld, s->url);
    fprintf(stderr, "  reeld pid %d on %s: %u users, %u posts; RSS %ld KiB, %ld fds; %.1f min%s\n",
            (int)reeld, s->url, SK_USERS, SK_SEED_POSTS, rss0, fds0, minutes,
            s->steady ? "; steady: no new posts, comments or generations" : "");

    char exe[PATH_MAX], bin[PATH_MAX + 16], outdir[PATH_MAX], rout[PATH_MAX], rerr[PATH_MAX];
    if (reel_bench_exe_dir(exe, sizeof exe) != 0)
        goto out;
    snprintf(bin, sizeof bin, "%s/reel-render", exe);
    snprintf(outdir, sizeof outdir, "%s/renders", ctx->dir);
    snprintf(rout, sizeof rout, "%s/render.out", ctx->dir);
    snprintf(rerr, sizeof rerr, "%s/render.err", ctx->dir);
    if (access(bin, X_OK) != 0) {
        fprintf(stderr, "bench soak: %s is not built\n", bin);
        goto out;
    }
    const char *rargv[] = {bin, "--server", s->url, "--concurrency", "4", "--out", outdir,
                           "--wait-ms", "1000", "--publish", "--frames", "8", "--size", "64x48",
                           "--worker", "soak", NULL};
    render = reel_bench_spawn(rargv, rout, rerr);
    if (render < 0)
        goto out;

    pthread_t stream, load[SK_THREADS];
    void *args[SK_THREADS][2];
    pthread_create(&stream, NULL, sk_stream_main, s);
    for (unsigned i = 0; i < SK_THREADS; i++) {
        args[i][0] = s;
        args[i][1] = (void *)(uintptr_t)(0x50a4 + i);
        pthread_create(&load[i], NULL, sk_load_main, args[i]);
    }
    uint64_t t0 = reel_bench_now_ns(), total_ns = (uint64_t)(minutes * 60e9);
    uint64_t win_ns = total_ns < 60000000000ull ? total_ns : 60000000000ull, next = t0 + win_ns;
    double p99[SK_NROUTES];
    uint64_t reqs[SK_NROUTES] = {0};
    unsigned minute = 0;
    for (;;) {
        uint64_t now = reel_bench_now_ns();
        if (now >= next) {
            sk_window_report(s, ++minute, p99, reqs);
            sk_mem_t mem = sk_mem(reeld, s->url);
            fprintf(stderr, "    reeld RSS %ld KiB (anon %ld, file %ld; feed index %lld KiB), "
                    "%ld fds; stream %llu events; generations %lld requested, %lld done; "
                    "errors %llu\n", sk_rss_kib(reeld), mem.anon_kib, mem.file_kib,
                    mem.index_bytes / 1024, sk_fds(reeld),
                    (unsigned long long)atomic_load(&s->stream_events),
                    (long long)atomic_load(&s->gens_created), (long long)atomic_load(&s->gens_done),
                    (unsigned long long)atomic_load(&s->errors));
            if (minute == 1)
                rss_w1 = sk_rss_kib(reeld);
            next += win_ns;
        }
        if (now - t0 >= total_ns)
            break;
        sk_sleep_ms(100);
    }
    atomic_store(&s->stop, true);
    for (unsigned i = 0; i < SK_THREADS; i++)
        pthread_join(load[i], NULL);

    /* the stream catches up with the log's head (bounded); generations
     * finish (bounded) */
    reel_client_t c;
    long long head = -2;
    uint64_t until = reel_bench_now_ns() + 30000000000ull;
    if (reel_client_init(&c, s->url, NULL) == 0) {
        while (reel_bench_now_ns() < until &&
               atomic_load(&s->gens_done) < atomic_load(&s->gens_created))
            sk_sleep_ms(50);
        head = sk_head(&c);
        reel_client_free(&c);
    }
    int rst = sk_stop(render);
    render = -1;
    if (rst != 0) {
        fprintf(stderr, "bench soak: reel-render exited %d (see %s)\n", rst, rerr);
        atomic_fetch_add(&s->errors, 1);
    }
    /* the stream sees the log's head (bounded), then stops */
    until = reel_bench_now_ns() + 10000000000ull;
    while (reel_bench_now_ns() < until && atomic_load(&s->stream_last) < head)
        sk_sleep_ms(20);
    atomic_store(&s->stream_stop, true);
    pthread_join(stream, NULL);
    if (atomic_load(&s->stream_last) < head) {
        fprintf(stderr, "bench soak: the stream reached %lld, the log %lld\n",
                (long long)atomic_load(&s->stream_last), head);
        atomic_fetch_add(&s->errors, 1);
    }
    long long created = atomic_load(&s->gens_created), done = atomic_load(&s->gens_done);
    if ((created == 0 && !s->steady) || done < created) {
        fprintf(stderr, "bench soak: %lld generations requested, %lld done\n", created, done);
        atomic_fetch_add(&s->errors, 1);
    }
    /* every client has closed; reeld notices within a moment (bounded) */
    long fds1 = sk_fds_sock(reeld, &sock1);
    for (int i = 0; i < 200 && sock1 > sock0; i++) {
        sk_sleep_ms(10);
        fds1 = sk_fds_sock(reeld, &sock1);
    }
    long rss1 = sk_rss_kib(reeld);
    sk_mem_t mem1 = sk_mem(reeld, s->url);
    if (minute == 0)
        sk_window_report(s, ++minute, p99, reqs);
    int dst = sk_stop(reeld);
    reeld = -1;
    if (dst != 0) {
        fprintf(stderr, "bench soak: reeld exited %d on SIGTERM\n", dst);
        atomic_fetch_add(&s->errors, 1);
    }
    uint64_t errors = atomic_load(&s->errors), total = 0;
    for (int i = 0; i < SK_NROUTES; i++)
        total += reqs[i];
    reel_bench_emit("soak", "minutes", minutes, "min", -1);
    reel_bench_emit("soak", "rss_start_kib", (double)rss0, "KiB", -1);
    reel_bench_emit("soak", "rss_end_kib", (double)rss1, "KiB", (double)rss0);
    reel_bench_emit("soak", "rss_after_minute1_kib", (double)rss_w1, "KiB", -1);
    reel_bench_emit("soak", "rss_anon_start_kib", (double)mem0.anon_kib, "KiB", -1);
    reel_bench_emit("soak", "rss_anon_end_kib", (double)mem1.anon_kib, "KiB",
                    (double)mem0.anon_kib);
    reel_bench_emit("soak", "rss_file_end_kib", (double)mem1.file_kib, "KiB",
                    (double)mem0.file_kib);
    reel_bench_emit("soak", "index_end_kib", (double)mem1.index_bytes / 1024.0, "KiB",
                    (double)mem0.index_bytes / 1024.0);

    reel_bench_emit("soak", "fds_start", (double)fds0, "fds", -1);
    reel_bench_emit("soak", "fds_end", (double)fds1, "fds", (double)fds0);
    reel_bench_emit("soak", "sockets_start", (double)sock0, "fds", -1);
    reel_bench_emit("soak", "sockets_end", (double)sock1, "fds", (double)sock0);
    reel_bench_emit("soak", "errors", (double)errors, "errors", -1);
    reel_bench_emit("soak", "requests", (double)total, "requests", -1);
    reel_bench_emit("soak", "requests_per_s", (double)total / (minutes * 60.0), "req/s", -1);
    reel_bench_emit("soak", "generations_completed", (double)done, "generations", -1);
    reel_bench_emit("soak", "stream_events", (double)atomic_load(&s->stream_events), "events",
                    -1);
    for (int i = 0; i < SK_NROUTES; i++) {
        char m[64];
        snprintf(m, sizeof m, "p99_%s_ms", sk_names[i]);
        reel_bench_emit("soak", m, p99[i] >= 0 ? p99[i] : NAN, "ms", -1);
    }
    if (sock1 > sock0) { /* a connection reeld never closed */
        fprintf(stderr, "bench soak: reeld holds %ld sockets after the load, %ld before\n",
                sock1, sock0);
        errors++;
    }
    if (fds1 > fds0)
        fprintf(stderr, "  fds %ld -> %ld, not sockets (%ld -> %ld): files of the log\n", fds0, fds1,
                sock0, sock1);
    status = errors == 0 ? 0 : 2;
    if (errors != 0)
        fprintf(stderr, "bench soak: %llu errors the load did not ask for\n",
                (unsigned long long)errors);
out:
    if (render > 0)
        sk_stop(render);
    if (reeld > 0)
        sk_stop(reeld);
    for (int i = 0; i < SK_NROUTES; i++)
        free(s->win[i].lat_ns);
    pthread_mutex_destroy(&s->mu);
    free(s);
    return status;
}
