/*
 * loadgen_http.c: `reel loadgen --server URL`: the world of
 * tools/loadgen.h sent to a running reeld as API commands, over several
 * keep-alive connections, one thread each (a request, then its answer).
 *
 * Ids are the server's: the world is run three times from its seed, each
 * time sending one phase: users (their ids read from the answers), then
 * follows and posts (post ids read from the answers; a remix whose parent
 * is not answered yet goes without remix_of), then likes, comments,
 * views, feedback and renames. Generations become direct posts (no render
 * worker is simulated). Each phase prints its rate and latency
 * percentiles.
 */
#include "tools/loadgen.h"
#include "tools/bench.h"
#include "tools/tool_util.h"
#include "tools/http_client.h"
#include "engine/common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LGH_REQ_MAX 8192u
#define LGH_RESP_MAX (64u << 10)

typedef struct lgh {
    const lg_opts_t *o;
    char host[256];
    char port[16];
    char token[256];
    int phase;
    tool_progress_t prog;   /* world events walked in this phase (under mu) */
    pthread_mutex_t mu;     /* guards w and the maps' writes */
    lg_world_t *w;
    uint64_t *user_id;      /* [world user] -> server id, 0 unknown */
    uint64_t *post_id;      /* [world post] -> server id, 0 unknown */
    uint64_t sent, failed, skipped;
    uint64_t ok[REEL_EV_MAX + 1]; /* answered 2xx, by the event type sent */
    char first_error[256];
} lgh_t;

typedef struct lgh_conn {
    lgh_t *g;
    int fd;
    uint64_t *lat;          /* ns per request */
    uint32_t nlat, cap;
    char buf[LGH_RESP_MAX];
} lgh_conn_t;

static int conn_open(const lgh_t *g)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int gai = getaddrinfo(g->host, g->port, &hints, &ai);
    if (gai != 0) {
        fprintf(stderr, "reel loadgen: %s: %s\n", g->host, gai_strerror(gai));
        errno = EHOSTUNREACH;
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM, 0), one = 1;
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        close(fd);
        fd = -1;
    }
    if (fd >= 0)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    freeaddrinfo(ai);
    return fd;
}

/* Sends one request and reads its answer into c->buf (NUL-terminated
 * body returned in *body). Returns the HTTP status, or -1. */
static int http_call(lgh_conn_t *c, const char *method, const char *path, const char *json,
                     const char **body)
{
    char req[LGH_REQ_MAX];
    const lgh_t *g = c->g;
    size_t blen = json ? strlen(json) : 0;
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n%s%s%s\r\n%s", method, path, g->host, blen,
                     g->token[0] ? "Authorization: Bearer " : "", g->token,
                     g->token[0] ? "\r\n" : "", json ? json : "");
    if (n <= 0 || (size_t)n >= sizeof(req))
        return -1;
    for (int off = 0; off < n;) {
        ssize_t k = send(c->fd, req + off, (size_t)(n - off), MSG_NOSIGNAL);
        if (k <= 0)
            return -1;
        off += (int)k;
    }
    size_t got = 0, need = 0;
    char *head_end = NULL;
    for (;;) {
        if (got >= sizeof(c->buf) - 1)
            return -1;
        ssize_t k = recv(c->fd, c->buf + got, sizeof(c->buf) - 1 - got, 0);
        if (k <= 0)
            return -1;
        got += (size_t)k;
        c->buf[got] = '\0';
        if (head_end == NULL && (head_end = strstr(c->buf, "\r\n\r\n")) != NULL) {
            const char *cl = strcasestr(c->buf, "\r\ncontent-length:");
            need = (size_t)(head_end + 4 - c->buf) + (cl ? strtoul(cl + 17, NULL, 10) : 0);
            if (need >= sizeof(c->buf))
                return -1;
        }
        if (head_end != NULL && got >= need)
            break;
    }
    *body = head_end + 4;
    c->buf[need] = '\0';
    int status = 0;
    if (sscanf(c->buf, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    return status;
}

/* The id named key in an answer body ({"user_id":5, ...} or with spaces
 * around the colon), 0 when none. */
static uint64_t body_id(const char *body, const char *key)
{
    const char *p = strstr(body, key);
    if (p == NULL)
        return 0;
    p += strlen(key);
    p += strspn(p, " \t");
    if (*p++ != ':')
        return 0;
    p += strspn(p, " \t");
    return *p >= '0' && *p <= '9' ? strtoull(p, NULL, 10) : 0;
}

/* The phase an event belongs to: 0 users, 1 follows and posts, 2 the
 * rest; -1: not sent (generation steps before the post). */
static int phase_of(const reel_event_t *ev)
{
    switch (ev->type) {
    case REEL_EV_USER_CREATED:
        return 0;
    case REEL_EV_FOLLOW_CREATED:
    case REEL_EV_POST_CREATED:
        return 1;
    case REEL_EV_GENERATION_REQUESTED:
    case REEL_EV_GENERATION_CLAIMED:
    case REEL_EV_GENERATION_COMPLETED:
        return -1;
    default:
        return 2;
    }
}

/* The next request of this phase, under g->mu: method, path, body and
 * what to record from the answer (*rec_post: world post id; *rec_user:
 * world user). false when the phase is done. */
static bool next_request(lgh_t *g, char *method, char *path, char *json, size_t cap,
                         uint64_t *rec_user, uint64_t *rec_post, uint16_t *type)
{
    reel_event_t ev;
    uint64_t at;
    bool joined;
    *rec_user = *rec_post = 0;
    for (;;) {
        if (!lg_world_next(g->w, &ev, &at, &joined))
            return false;
        if (phase_of(&ev) != g->phase)
            continue;
        uint64_t u = ev.user ? g->user_id[ev.user] : 0;
        uint64_t p = ev.post && ev.type != REEL_EV_POST_CREATED ? g->post_id[ev.post] : 0;
        if ((ev.user && u == 0 && ev.type != REEL_EV_USER_CREATED) ||
            (ev.post && p == 0 && ev.type != REEL_EV_POST_CREATED) ||
            (ev.target && g->user_id[ev.target] == 0)) {
            g->skipped++; /* what it names failed earlier */
            continue;
        }
        *type = ev.type;
        switch (ev.type) {
        case REEL_EV_USER_CREATED:
            strcpy(method, "POST");
            strcpy(path, "/v1/users");
            snprintf(json, cap, "{\"handle\":\"%.*s\"}", (int)ev.handle.len, ev.handle.ptr);
            *rec_user = ev.user;
            return true;
        case REEL_EV_USER_UPDATED:
            strcpy(method, "PATCH");
            snprintf(path, 128, "/v1/users/%" PRIu64, u);
            snprintf(json, cap, "{\"display_name\":\"%.*s\"}", (int)ev.display_name.len,
                     ev.display_name.ptr);
            return true;
        case REEL_EV_FOLLOW_CREATED:
            strcpy(method, "PUT");
            snprintf(path, 128, "/v1/users/%" PRIu64 "/following/%" PRIu64, u,
                     g->user_id[ev.target]);
            json[0] = '\0';
            return true;
        case REEL_EV_POST_CREATED: {
            uint64_t parent = ev.remix_of ? g->post_id[ev.remix_of] : 0;
            char remix[48] = "";
            if (parent != 0)
                snprintf(remix, sizeof(remix), ",\"remix_of\":%" PRIu64, parent);
            strcpy(method, "POST");
            strcpy(path, "/v1/posts");
            snprintf(json, cap, "{\"author\":%" PRIu64 ",\"video_uri\":\"%.*s\",\"prompt\":\"%.*s\","
                     "\"tags\":[\"%.*s\",\"%.*s\"]%s}", u, (int)ev.video_uri.len, ev.video_uri.ptr,
                     (int)ev.prompt.len, ev.prompt.ptr, (int)ev.tags[0].len, ev.tags[0].ptr,
                     (int)ev.tags[1].len, ev.tags[1].ptr, remix);
            *rec_post = ev.post;
            return true;
        }
        case REEL_EV_LIKE_CREATED:
            strcpy(method, "PUT");
            snprintf(path, 128, "/v1/posts/%" PRIu64 "/likes/%" PRIu64, p, u);
            json[0] = '\0';
            return true;
        case REEL_EV_COMMENT_CREATED:
            strcpy(method, "POST");
            snprintf(path, 128, "/v1/posts/%" PRIu64 "/comments", p);
            snprintf(json, cap, "{\"author\":%" PRIu64 ",\"text\":\"%.*s\"}", u, (int)ev.text.len,
                     ev.text.ptr);
            return true;
        case REEL_EV_VIEW_RECORDED:
            strcpy(method, "POST");
            strcpy(path, "/v1/views");
            snprintf(json, cap, "{\"user\":%" PRIu64 ",\"post\":%" PRIu64 ",\"watch_ms\":%" PRIu64
                     ",\"completed\":%s}", u, p, ev.watch_ms, ev.completed ? "true" : "false");
            return true;
        case REEL_EV_FEEDBACK_RECORDED:
            strcpy(method, "POST");
            strcpy(path, "/v1/feedback");
            snprintf(json, cap, "{\"user\":%" PRIu64 ",\"post\":%" PRIu64 ",\"kind\":\"%.*s\"}", u,
                     p, (int)ev.kind.len, ev.kind.ptr);
            return true;
        default:
            continue;
        }
    }
}

static void *conn_main(void *arg)
{
    lgh_conn_t *c = arg;
    lgh_t *g = c->g;
    char method[8], path[128], json[1024];
    for (;;) {
        uint64_t rec_user, rec_post;
        uint16_t type = 0;
        const char *body = "";
        pthread_mutex_lock(&g->mu);
        bool more = next_request(g, method, path, json, sizeof(json), &rec_user, &rec_post,
                                 &type);
        if (more)
            g->sent++;
        tool_progress(&g->prog, lg_world_made(g->w)); /* under mu */
        pthread_mutex_unlock(&g->mu);
        if (!more)
            break;
        uint64_t t0 = reel_mono_ns();
        int status = http_call(c, method, path, json[0] ? json : NULL, &body);
        uint64_t ns = reel_mono_ns() - t0;
        if (c->nlat == c->cap) {
            uint32_t cap = c->cap ? c->cap * 2 : 4096;
            uint64_t *p = realloc(c->lat, cap * sizeof(*p));
            REEL_ASSERT(p != NULL);
            c->lat = p;
            c->cap = cap;
        }
        c->lat[c->nlat++] = ns;
        pthread_mutex_lock(&g->mu);
        if (status < 200 || status >= 300) {
            if (g->failed++ == 0)
                snprintf(g->first_error, sizeof(g->first_error), "%s %s: %d %.160s", method,
                         path, status, status < 0 ? "(connection failed)" : body);
        } else {
            g->ok[type]++;
            if (rec_user != 0)
                g->user_id[rec_user] = body_id(body, "\"user_id\"");
            else if (rec_post != 0)
                g->post_id[rec_post] = body_id(body, "\"post_id\"");
        }
        pthread_mutex_unlock(&g->mu);
        if (status < 0) {
            close(c->fd);
            if ((c->fd = conn_open(g)) < 0)
                break;
        }
    }
    return NULL;
}

static const char *const phase_names[3] = {"users", "follows+posts", "activity"};

/* Runs one phase over conns connections and prints its figures. */
static int run_phase(lgh_t *g, uint32_t conns)
{
    lgh_conn_t *cs = calloc(conns, sizeof(*cs));
    pthread_t *th = calloc(conns, sizeof(*th));
    int rc = cs && th ? lg_world_new(g->o, &g->w) : -ENOMEM;
    uint32_t started = 0;
    uint64_t sent0 = g->sent, failed0 = g->failed, t0 = reel_mono_ns();
    tool_progress_start(&g->prog, "events", g->o->events);
    for (uint32_t i = 0; rc == 0 && i < conns; i++) {
        cs[i].g = g;
        if ((cs[i].fd = conn_open(g)) < 0) {
            fprintf(stderr, "reel loadgen: cannot connect to %s:%s: %s\n", g->host, g->port,
                    strerror(errno));
            rc = -ECONNREFUSED;
        } else if (pthread_create(&th[i], NULL, conn_main, &cs[i]) == 0) {
            started++;
        }
    }
    for (uint32_t i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    tool_progress_end(&g->prog, g->w != NULL ? lg_world_made(g->w) : 0);
    double secs = (double)(reel_mono_ns() - t0) / 1e9;
    uint64_t n = 0;
    for (uint32_t i = 0; cs != NULL && i < conns; i++)
        n += cs[i].nlat;
    uint64_t *all = n ? malloc(n * sizeof(*all)) : NULL;
    uint64_t k = 0;
    for (uint32_t i = 0; cs != NULL && i < conns; i++) {
        if (all != NULL)
            memcpy(all + k, cs[i].lat, cs[i].nlat * sizeof(*all));
        k += cs[i].nlat;
        free(cs[i].lat);
        if (cs[i].fd > 0)
            close(cs[i].fd);
    }
    if (rc == 0 && all != NULL) {
        reel_bench_sort_u64(all, (uint32_t)n);
        printf("reel loadgen: %-13s %8" PRIu64 " requests in %6.2f s: %8.0f requests/s, %" PRIu64
               " failed; latency ms p50 %.2f p90 %.2f p99 %.2f p99.9 %.2f max %.2f\n",
               phase_names[g->phase], g->sent - sent0, secs, (double)n / secs,
               g->failed - failed0, reel_bench_percentile(all, (uint32_t)n, 0.5) / 1e6,
               reel_bench_percentile(all, (uint32_t)n, 0.9) / 1e6,
               reel_bench_percentile(all, (uint32_t)n, 0.99) / 1e6,
               reel_bench_percentile(all, (uint32_t)n, 0.999) / 1e6, all[n - 1] / 1e6);
    }
    free(all);
    free(cs);
    free(th);
    lg_world_free(g->w);
    g->w = NULL;
    return rc;
}

int lg_run_server(const lg_opts_t *o, const char *url, uint32_t conns, const char *token)
{
    lgh_t g = {.o = o};
    reel_client_t check;
    if (reel_client_init(&check, url, NULL) != 0) { /* the render worker's rules */
        fprintf(stderr, "reel loadgen: --server: '%s' is not http://HOST:PORT\n", url);
        return REEL_EUSAGE;
    }
    const char *hp = url + 7;
    const char *colon = strrchr(hp, ':');
    size_t hlen = colon ? (size_t)(colon - hp) : strcspn(hp, "/");
    if (hlen == 0 || hlen >= sizeof(g.host)) {
        fprintf(stderr, "reel loadgen: --server: expected http://HOST:PORT\n");
        return REEL_EUSAGE;
    }
    memcpy(g.host, hp, hlen);
    snprintf(g.port, sizeof(g.port), "%.*s", colon ? (int)strcspn(colon + 1, "/") : 2,
             colon ? colon + 1 : "80");
    if (token != NULL) {
        FILE *f = fopen(token, "r");
        if (f == NULL || fgets(g.token, sizeof(g.token), f) == NULL) {
            fprintf(stderr, "reel loadgen: --token-file %s: unreadable\n", token);
            if (f)
                fclose(f);
            return REEL_EUSAGE;
        }
        fclose(f);
        g.token[strcspn(g.token, "\r\n")] = '\0';
    }
    g.user_id = calloc(o->users + 1, sizeof(*g.user_id));
    g.post_id = calloc(o->posts + 2, sizeof(*g.post_id));
    pthread_mutex_init(&g.mu, NULL);
    int rc = g.user_id && g.post_id ? 0 : -ENOMEM;
    uint64_t t0 = reel_mono_ns();
    for (g.phase = 0; rc == 0 && g.phase < 3; g.phase++)
        rc = run_phase(&g, conns);
    double secs = (double)(reel_mono_ns() - t0) / 1e9;
    if (rc == 0)
        printf("reel loadgen: %" PRIu64 " requests in %.2f s: %.0f requests/s over %u "
               "connections; %" PRIu64 " failed, %" PRIu64 " skipped (they named a failed one)\n",
               g.sent, secs, (double)g.sent / secs, conns, g.failed, g.skipped);
    if (rc == 0) { /* what the server took, by the event it makes */
        printf("reel loadgen: accepted:");
        for (uint16_t t = 1; t <= REEL_EV_MAX; t++)
            if (g.ok[t] > 0)
                printf(" %s=%" PRIu64, reel_event_type_name(t), g.ok[t]);
        printf("\n");
    }
    if (g.failed > 0)
        fprintf(stderr, "reel loadgen: first failure: %s\n", g.first_error);
    free(g.user_id);
    free(g.post_id);
    pthread_mutex_destroy(&g.mu);
    return rc != 0 ? rc : g.failed > 0 ? REEL_EFAILED : 0;
}
