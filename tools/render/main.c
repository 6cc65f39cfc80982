/*
 * main.c: build/reel-render, the reference render worker (issue 7). It
 * stands in for the video model: it claims tasks from reeld's render queue
 * (POST /v1/render/claim with a long poll), renders a short deterministic
 * procedural clip from each prompt (render.h), writes it as an animated
 * GIF under --out, and completes the task with the file's URI, the clip's
 * duration and an embedding of the prompt. docs/RENDER.md tells the rest.
 *
 * Threads. --concurrency worker threads, each with its own keep-alive
 * connection, each holding at most one task; one heartbeat thread, with
 * its own connection, renews the lease of every task in hand every third
 * of the lease (well before its half-life). A heartbeat answered 409
 * lease_lost marks the task lost: its worker stops rendering it and never
 * completes it.
 *
 * Stopping. SIGTERM or SIGINT: no new claim (a long poll in progress is
 * cut: the server drops a parked claim whose client left), the tasks in
 * hand are finished and completed; those not finished within --drain-ms
 * are failed as retryable. Then exit 0. A task claimed but never seen
 * (an answer lost to the cut) goes back to the queue when its lease lapses.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/common.h"
#include "tools/http_client.h"
#include "tools/render/render.h"

#define CONCURRENCY_MAX 256u
#define WORKER_NAME_MAX 120u      /* + "/NNN" stays within reeld's 128 */
#define BACKOFF_MS_MAX 5000u      /* between failed claims */
#define REQUEST_SLACK_MS 15000u   /* a request's deadline past its long poll */
#define COMPLETE_TRIES 4u         /* a completion lost to the network, again */

typedef enum backend { BACKEND_AUTO, BACKEND_C, BACKEND_CUDA } backend_t;

typedef struct options {
    const char *server;
    const char *token;
    const char *out_dir;
    char out_abs[PATH_MAX];
    char worker[WORKER_NAME_MAX + 1];
    uint32_t concurrency;
    uint32_t lease_ms;
    uint32_t wait_ms;
    uint32_t dim;             /* 0: no embedding (the engine derives one) */
    uint32_t frame_delay_ms;  /* the stand-in model's time per frame */
    uint32_t drain_ms;        /* after SIGTERM, to finish the tasks in hand */
    bool publish;
    bool verbose;
    backend_t backend;
    reel_render_shape_t shape;
} options_t;

/* One worker thread and the task it holds. */
typedef struct slot {
    uint32_t index;
    char name[WORKER_NAME_MAX + 8];
    pthread_t thread;
    reel_client_t cl;
    uint8_t *pixels;           /* the clip's frames */
    char *path;                /* the clip's file: PATH_MAX */
    /* Shared with the heartbeat thread, under g.mu. */
    uint64_t task;             /* generation in hand, 0: none */
    uint64_t next_beat_ms;     /* monotonic */
    atomic_bool lost;          /* a heartbeat was answered lease_lost */
    /* Counters (this thread's). */
    uint64_t completed, lost_n, failed, errors;
} slot_t;

static struct {
    options_t o;
    slot_t *slots;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_bool stopping;      /* SIGTERM: claim no more */
    atomic_bool embed_off;     /* the server refused our embedding's dimension */
    atomic_uint_fast64_t stop_at_ms;
    int stop_pipe[2];          /* written once on SIGTERM: cuts long polls */
    bool use_cuda;
    bool hb_exit;
} g = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(uint32_t ms)
{
    struct timespec ts = {ms / 1000u, (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        continue;
}

static void on_signal(int sig)
{
    (void)sig;
    if (!atomic_exchange(&g.stopping, true)) {
        atomic_store(&g.stop_at_ms, mono_ms());
        ssize_t w = write(g.stop_pipe[1], "x", 1);
        (void)w;
    }
}

/* After SIGTERM, past --drain-ms: the tasks in hand are given up. */
static bool drain_over(void)
{
    return atomic_load(&g.stopping) &&
           mono_ms() > atomic_load(&g.stop_at_ms) + g.o.drain_ms;
}

/* ---- the heartbeat thread ---- */

static void heartbeat_one(reel_client_t *cl, slot_t *s, uint64_t id)
{
    char path[64], body[WORKER_NAME_MAX + 96];
    reel_client_resp_t r;
    snprintf(path, sizeof(path), "/v1/render/%llu/heartbeat", (unsigned long long)id);
    int n = snprintf(body, sizeof(body), "{\"worker\":\"%s\",\"lease_ms\":%u}", s->name,
                     g.o.lease_ms);
    int rc = reel_client_request(cl, "POST", path, body, (size_t)n, g.o.lease_ms + 5000u, &r);
    pthread_mutex_lock(&g.mu);
    if (s->task == id) {
        uint64_t now = mono_ms();
        if (rc == 0 && r.status == 409) {
            atomic_store(&s->lost, true);
            s->next_beat_ms = UINT64_MAX;
        } else {
            /* Answered: the next third of the lease. Not answered: soon. */
            s->next_beat_ms = now + (rc == 0 && r.status == 200 ? g.o.lease_ms / 3u : 100u);
        }
    }
    pthread_mutex_unlock(&g.mu);
    if (g.o.verbose || rc != 0 || (r.status != 200 && r.status != 409))
        fprintf(stderr, "reel-render: heartbeat %llu: %s %d\n", (unsigned long long)id,
                rc == 0 ? "status" : "error", rc == 0 ? r.status : rc);
}

static void *heartbeat_main(void *arg)
{
    reel_client_t *cl = arg;
    pthread_mutex_lock(&g.mu);
    while (!g.hb_exit) {
        uint64_t now = mono_ms(), next = now + 1000u;
        for (uint32_t i = 0; i < g.o.concurrency; i++) {
            slot_t *s = &g.slots[i];
            if (s->task == 0 || s->next_beat_ms > now) {
                if (s->task != 0 && s->next_beat_ms < next)
                    next = s->next_beat_ms;
                continue;
            }
            uint64_t id = s->task;
            s->next_beat_ms = now + g.o.lease_ms; /* in flight */
            pthread_mutex_unlock(&g.mu);
            heartbeat_one(cl, s, id);
            pthread_mutex_lock(&g.mu);
            now = mono_ms();
            next = now; /* look again: time passed */
        }
        if (next <= now)
            continue;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + (next - now) * 1000000u;
        ts.tv_sec += (time_t)(ns / 1000000000u);
        ts.tv_nsec = (long)(ns % 1000000000u);
        pthread_cond_timedwait(&g.cv, &g.mu, &ts);
    }
    pthread_mutex_unlock(&g.mu);
    return NULL;
}

static void task_hold(slot_t *s, uint64_t id)
{
    pthread_mutex_lock(&g.mu);
    s->task = id;
    s->next_beat_ms = mono_ms() + g.o.lease_ms / 3u;
    atomic_store(&s->lost, false);
    pthread_cond_signal(&g.cv);
    pthread_mutex_unlock(&g.mu);
}

/* Takes the task from the heartbeat thread (it may be beating it now:
 * that answer is then ignored). */
static void task_release(slot_t *s)
{
    pthread_mutex_lock(&g.mu);
    s->task = 0;
    pthread_mutex_unlock(&g.mu);
}

/* ---- one task ---- */

typedef struct task {
    uint64_t id;
    uint64_t attempt;
    const char *prompt;
    size_t prompt_len;
    const char *assets[REEL_RENDER_ASSETS_MAX];
    uint32_t nassets;
} task_t;

static int task_parse(json_t *j, task_t *t)
{
    memset(t, 0, sizeof(*t));
    json_t *prompt = json_object_get(j, "prompt");
    t->id = (uint64_t)json_integer_value(json_object_get(j, "generation_id"));
    t->attempt = (uint64_t)json_integer_value(json_object_get(j, "attempt"));
    t->prompt = json_string_value(prompt);
    t->prompt_len = json_string_length(prompt);
    json_t *cameos = json_object_get(j, "cameos");
    for (size_t i = 0; i < json_array_size(cameos) && t->nassets < REEL_RENDER_ASSETS_MAX; i++)
        t->assets[t->nassets++] =
            json_string_value(json_object_get(json_array_get(cameos, i), "asset"));
    return t->id > 0 && t->prompt != NULL ? 0 : -EPROTO;
}

/* The stand-in model's time: frames * --frame-delay-ms, cut short when the
 * lease is lost or the drain is over. */
static int model_time(slot_t *s)
{
    uint64_t end = mono_ms() + (uint64_t)g.o.frame_delay_ms * g.o.shape.frames;
    for (uint64_t now = mono_ms(); now < end; now = mono_ms()) {
        if (atomic_load(&s->lost))
            return -ECANCELED;
        if (drain_over())
            return -ETIMEDOUT;
        sleep_ms((uint32_t)(end - now < 20 ? end - now : 20));
    }
    return 0;
}

/* Renders t into s->path (written to a temporary name, synced, renamed). */
static int task_render(slot_t *s, const task_t *t)
{
    reel_render_params_t p;
    uint8_t palette[768];
    char tmp[PATH_MAX + 16];
    reel_render_params_init(&p, palette, t->prompt, t->prompt_len, t->assets, t->nassets,
                            &g.o.shape);
    int rc = g.use_cuda ? reel_render_frames_cuda(&p, g.o.shape.frames, s->pixels)
                        : reel_render_frames_c(&p, g.o.shape.frames, s->pixels, &s->lost);
    if (rc == 0)
        rc = model_time(s);
    if (rc != 0)
        return rc;
    snprintf(s->path, PATH_MAX, "%s/gen-%llu-a%llu.gif", g.o.out_abs,
             (unsigned long long)t->id, (unsigned long long)t->attempt);
    snprintf(tmp, sizeof(tmp), "%s.tmp", s->path);
    FILE *f = fopen(tmp, "wb");
    if (f == NULL)
        return -errno;
    rc = reel_gif_write(f, &g.o.shape, palette, s->pixels);
    if (rc == 0 && fsync(fileno(f)) != 0)
        rc = -errno;
    if (fclose(f) != 0 && rc == 0)
        rc = -EIO;
    if (rc == 0 && rename(tmp, s->path) != 0)
        rc = -errno;
    if (rc != 0)
        unlink(tmp);
    return rc;
}

/* The completion's body: worker, the file's URI, duration, embedding. */
static char *complete_body(const slot_t *s, const task_t *t, size_t *len)
{
    char uri[PATH_MAX + 8];
    snprintf(uri, sizeof(uri), "file://%s", s->path);
    json_t *j = json_pack("{s:s, s:s, s:I, s:b}", "worker", s->name, "video_uri", uri,
                          "duration_ms", (json_int_t)g.o.shape.frames * g.o.shape.delay_cs * 10,
                          "publish", g.o.publish);
    if (j != NULL && g.o.dim > 0 && !atomic_load(&g.embed_off)) {
        float e[REEL_RENDER_DIM_MAX];
        json_t *arr = json_array();
        reel_render_embedding(t->prompt, t->prompt_len, g.o.dim, e);
        for (uint32_t i = 0; i < g.o.dim; i++)
            json_array_append_new(arr, json_real(e[i]));
        json_object_set_new(j, "embedding", arr);
    }
    char *b = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(7)) : NULL;
    json_decref(j);
    *len = b ? strlen(b) : 0;
    return b;
}

static void task_fail(slot_t *s, uint64_t id, const char *reason)
{
    char path[64], body[WORKER_NAME_MAX + 256];
    reel_client_resp_t r;
    snprintf(path, sizeof(path), "/v1/render/%llu/fail", (unsigned long long)id);
    int n = snprintf(body, sizeof(body), "{\"worker\":\"%s\",\"reason\":\"%s\",\"retryable\":true}",
                     s->name, reason);
    int rc = reel_client_request(&s->cl, "POST", path, body, (size_t)n, REQUEST_SLACK_MS, &r);
    s->failed++;
    fprintf(stderr, "reel-render: %s: task %llu failed as retryable (%s): %s %d\n", s->name,
            (unsigned long long)id, reason, rc == 0 ? "status" : "error", rc == 0 ? r.status : rc);
}

/* Completes t: 200 done, 409 lost (another worker has it, or it was
 * cancelled: the clip is removed), 400 naming the embedding: once more
 * without one. Network errors and 5xx: again, a few times. */
static void task_complete(slot_t *s, const task_t *t)
{
    char path[64];
    snprintf(path, sizeof(path), "/v1/render/%llu/complete", (unsigned long long)t->id);
    for (uint32_t tries = 0; tries < COMPLETE_TRIES; tries++) {
        size_t len;
        reel_client_resp_t r;
        char *body = complete_body(s, t, &len);
        int rc = body ? reel_client_request(&s->cl, "POST", path, body, len, REQUEST_SLACK_MS, &r)
                      : -ENOMEM;
        free(body);
        if (rc == 0 && r.status == 200) {
            s->completed++;
            if (g.o.verbose)
                fprintf(stderr, "reel-render: %s: completed %llu: %s\n", s->name,
                        (unsigned long long)t->id, s->path);
            return;
        }
        if (rc == 0 && r.status == 409) {
            s->lost_n++;
            unlink(s->path);
            fprintf(stderr, "reel-render: %s: task %llu not ours any more: %s\n", s->name,
                    (unsigned long long)t->id, r.body);
            return;
        }
        if (rc == 0 && r.status == 400 && strstr(r.body, "\"embedding\"") != NULL &&
            !atomic_exchange(&g.embed_off, true)) {
            fprintf(stderr, "reel-render: the server refused a %u-float embedding; sending none "
                    "(the engine derives one): %s\n", g.o.dim, r.body);
            continue;
        }
        s->errors++;
        fprintf(stderr, "reel-render: %s: complete %llu: %s %d %s\n", s->name,
                (unsigned long long)t->id, rc == 0 ? "status" : "error", rc == 0 ? r.status : rc,
                rc == 0 ? r.body : "");
        if (rc == 0 && r.status < 500)
            break;
        sleep_ms(200u << tries);
    }
    unlink(s->path);
    task_fail(s, t->id, "complete_failed");
}

static void task_run(slot_t *s, json_t *j)
{
    task_t t;
    if (task_parse(j, &t) != 0) {
        s->errors++;
        fprintf(stderr, "reel-render: %s: a malformed task\n", s->name);
        return;
    }
    task_hold(s, t.id);
    int rc = task_render(s, &t);
    task_release(s);
    if (rc == 0) {
        task_complete(s, &t);
    } else if (rc == -ECANCELED) {
        s->lost_n++; /* a heartbeat said lease_lost: nothing to hand back */
        fprintf(stderr, "reel-render: %s: task %llu lost its lease while rendering\n", s->name,
                (unsigned long long)t.id);
    } else {
        task_fail(s, t.id, rc == -ETIMEDOUT ? "worker_stopping" : "render_error");
    }
}

/* ---- the worker threads ---- */

/* One claim: 0 with tasks handled (maybe none), or an error. */
static int claim_once(slot_t *s)
{
    char body[WORKER_NAME_MAX + 128];
    reel_client_resp_t r;
    int n = snprintf(body, sizeof(body), "{\"worker\":\"%s\",\"lease_ms\":%u,\"max\":1,"
                     "\"wait_ms\":%u}", s->name, g.o.lease_ms, g.o.wait_ms);
    s->cl.abort_fd = g.stop_pipe[0]; /* SIGTERM cuts the long poll */
    int rc = reel_client_request(&s->cl, "POST", "/v1/render/claim", body, (size_t)n,
                                 g.o.wait_ms + REQUEST_SLACK_MS, &r);
    s->cl.abort_fd = -1;
    if (rc != 0)
        return rc;
    if (r.status != 200) {
        fprintf(stderr, "reel-render: %s: claim: status %d: %s\n", s->name, r.status, r.body);
        return -EPROTO;
    }
    json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
    json_t *tasks = json_object_get(j, "tasks");
    if (!json_is_array(tasks)) {
        json_decref(j);
        return -EPROTO;
    }
    for (size_t i = 0; i < json_array_size(tasks); i++)
        task_run(s, json_array_get(tasks, i));
    json_decref(j);
    return 0;
}

static void *worker_main(void *arg)
{
    slot_t *s = arg;
    uint32_t backoff = 0;
    while (!atomic_load(&g.stopping)) {
        int rc = claim_once(s);
        if (rc == 0) {
            backoff = 0;
            continue;
        }
        if (rc == -ECANCELED)
            break;
        s->errors++;
        backoff = backoff ? (backoff * 2 > BACKOFF_MS_MAX ? BACKOFF_MS_MAX : backoff * 2) : 100;
        if (rc != -EPROTO)
            fprintf(stderr, "reel-render: %s: claim: %s; again in %u ms\n", s->name,
                    strerror(-rc), backoff);
        for (uint32_t waited = 0; waited < backoff && !atomic_load(&g.stopping); waited += 20)
            sleep_ms(20);
    }
    return NULL;
}

/* ---- options ---- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: reel-render --server URL [--token T] [--concurrency N] [--out DIR]\n"
            "                   [--worker NAME] [--lease-ms N] [--wait-ms N] [--dim N]\n"
            "                   [--publish] [--frames N] [--size WxH] [--frame-delay-ms N]\n"
            "                   [--drain-ms N] [--backend auto|c|cuda] [--verbose]\n"
            "       reel-render --render PROMPT --file PATH [--asset A]... [--frames N]\n"
            "                   [--size WxH] [--backend auto|c|cuda]\n"
            "\n"
            "The reference render worker of reeldb. It STANDS IN FOR THE VIDEO MODEL: it does\n"
            "not run one. For each task it renders a short deterministic procedural clip from\n"
            "the prompt (cameo assets tint its colours) and writes it as an animated GIF.\n"
            "\n"
            "Worker mode: claims tasks from reeld (POST /v1/render/claim, long poll), renders\n"
            "each under --out, heartbeats its lease every third of --lease-ms while it works,\n"
            "completes with video_uri file://PATH, duration_ms and an embedding of the prompt\n"
            "(--dim floats; 0: none, the engine derives one), or fails as retryable. SIGTERM:\n"
            "claims no more, finishes the tasks in hand (within --drain-ms, else fails them as\n"
            "retryable) and exits 0.\n"
            "\n"
            "  --server URL          reeld, http://HOST:PORT\n"
            "  --token T             bearer token with the worker scope\n"
            "  --concurrency N       tasks in parallel, one thread each (default 1, max %u)\n"
            "  --out DIR             where clips go (default ./renders, created)\n"
            "  --worker NAME         worker name (default reel-render-HOST-PID); thread i is NAME/i\n"
            "  --lease-ms N          lease asked for each claim and heartbeat (default 60000)\n"
            "  --wait-ms N           long poll of a claim (default 30000, max 60000)\n"
            "  --dim N               embedding dimension, the server's --dim (default 64)\n"
            "  --publish             completed posts are public (default: drafts)\n"
            "  --frames N            frames a clip (default 48, max %u)\n"
            "  --size WxH            frame size (default 160x120, max %ux%u)\n"
            "  --frame-delay-ms N    stand-in model time per frame (default 0)\n"
            "  --drain-ms N          after SIGTERM, time to finish the tasks in hand (10000)\n"
            "  --backend B           auto (CUDA when a GPU is present, else C), c or cuda\n"
            "\n"
            "Render mode: one clip to PATH, no server (exit 3: the backend is not available).\n",
            CONCURRENCY_MAX, REEL_RENDER_FRAMES_MAX, REEL_RENDER_WIDTH_MAX,
            REEL_RENDER_HEIGHT_MAX);
}

static int num(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < lo || v > hi)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

typedef struct render_job {
    const char *prompt;
    const char *file;
    const char *assets[REEL_RENDER_ASSETS_MAX];
    uint32_t nassets;
} render_job_t;

/* Parses one option at argv[*i]: 0, or -1 with the complaint printed. */
static int parse_opt(int argc, char **argv, int *i, options_t *o, render_job_t *job)
{
    const char *a = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    bool ok = true;
    if (strcmp(a, "--publish") == 0) {
        o->publish = true;
        return 0;
    }
    if (strcmp(a, "--verbose") == 0) {
        o->verbose = true;
        return 0;
    }
    if (v == NULL) {
        fprintf(stderr, "reel-render: %s needs a value (see --help)\n", a);
        return -1;
    }
    ++*i;
    if (strcmp(a, "--server") == 0) o->server = v;
    else if (strcmp(a, "--token") == 0) o->token = v;
    else if (strcmp(a, "--out") == 0) o->out_dir = v;
    else if (strcmp(a, "--render") == 0) job->prompt = v;
    else if (strcmp(a, "--file") == 0) job->file = v;
    else if (strcmp(a, "--asset") == 0) ok = job->nassets < REEL_RENDER_ASSETS_MAX &&
                                             (job->assets[job->nassets++] = v) != NULL;
    else if (strcmp(a, "--worker") == 0)
        ok = strlen(v) >= 1 && strlen(v) <= WORKER_NAME_MAX &&
             strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") ==
                 strlen(v) && snprintf(o->worker, sizeof(o->worker), "%s", v) > 0;
    else if (strcmp(a, "--concurrency") == 0) ok = num(v, 1, CONCURRENCY_MAX, &o->concurrency) == 0;
    else if (strcmp(a, "--lease-ms") == 0) ok = num(v, 100, 3600000, &o->lease_ms) == 0;
    else if (strcmp(a, "--wait-ms") == 0) ok = num(v, 0, 60000, &o->wait_ms) == 0;
    else if (strcmp(a, "--dim") == 0) ok = num(v, 0, REEL_RENDER_DIM_MAX, &o->dim) == 0;
    else if (strcmp(a, "--frames") == 0)
        ok = num(v, 1, REEL_RENDER_FRAMES_MAX, &o->shape.frames) == 0;
    else if (strcmp(a, "--frame-delay-ms") == 0) ok = num(v, 0, 60000, &o->frame_delay_ms) == 0;
    else if (strcmp(a, "--drain-ms") == 0) ok = num(v, 0, 3600000, &o->drain_ms) == 0;
    else if (strcmp(a, "--size") == 0) {
        unsigned w = 0, h = 0;
        char extra;
        ok = sscanf(v, "%ux%u%c", &w, &h, &extra) == 2 && w >= 1 && h >= 1 &&
             w <= REEL_RENDER_WIDTH_MAX && h <= REEL_RENDER_HEIGHT_MAX;
        o->shape.width = w;
        o->shape.height = h;
    } else if (strcmp(a, "--backend") == 0) {
        ok = strcmp(v, "auto") == 0 || strcmp(v, "c") == 0 || strcmp(v, "cuda") == 0;
        o->backend = v[0] == 'a' ? BACKEND_AUTO : v[1] == '\0' ? BACKEND_C : BACKEND_CUDA;
    } else {
        fprintf(stderr, "reel-render: unknown option %s (see --help)\n", a);
        return -1;
    }
    if (!ok)
        fprintf(stderr, "reel-render: bad value for %s: %s (see --help)\n", a, v);
    return ok ? 0 : -1;
}

/* Picks the renderer: 0, or 3 when --backend cuda cannot run here. */
static int pick_backend(const options_t *o, bool quiet)
{
    char why[160];
    bool have = reel_render_cuda_available(why, sizeof(why));
    if (o->backend == BACKEND_CUDA && !have) {
        fprintf(stderr, "reel-render: --backend cuda: not available: %s\n", why);
        return 3;
    }
    g.use_cuda = o->backend != BACKEND_C && have;
    if (!quiet)
        fprintf(stderr, "reel-render: renderer: %s (%s)\n", g.use_cuda ? "CUDA" : "C", why);
    return 0;
}

/* Render mode: one clip to a file. */
static int render_file(const options_t *o, const render_job_t *job)
{
    int rc = pick_backend(o, true);
    if (rc != 0)
        return rc;
    reel_render_params_t p;
    uint8_t palette[768];
    size_t n = (size_t)o->shape.width * o->shape.height * o->shape.frames;
    uint8_t *px = malloc(n);
    FILE *f = px ? fopen(job->file, "wb") : NULL;
    if (f == NULL) {
        fprintf(stderr, "reel-render: %s: %s\n", job->file, strerror(errno));
        free(px);
        return 1;
    }
    reel_render_params_init(&p, palette, job->prompt, strlen(job->prompt), job->assets,
                            job->nassets, &o->shape);
    rc = g.use_cuda ? reel_render_frames_cuda(&p, o->shape.frames, px)
                    : reel_render_frames_c(&p, o->shape.frames, px, NULL);
    if (rc == 0)
        rc = reel_gif_write(f, &o->shape, palette, px);
    if (fclose(f) != 0 && rc == 0)
        rc = -EIO;
    free(px);
    if (rc != 0)
        fprintf(stderr, "reel-render: render failed: %d\n", rc);
    return rc == 0 ? 0 : 1;
}

static int workers_setup(options_t *o)
{
    if (mkdir(o->out_dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "reel-render: --out %s: %s\n", o->out_dir, strerror(errno));
        return -1;
    }
    if (realpath(o->out_dir, o->out_abs) == NULL || strlen(o->out_abs) > PATH_MAX - 64) {
        fprintf(stderr, "reel-render: --out %s: %s\n", o->out_dir, strerror(errno));
        return -1;
    }
    if (o->worker[0] == '\0') {
        char host[64] = "host";
        gethostname(host, sizeof(host) - 1);
        host[strspn(host, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-")] = 0;
        snprintf(o->worker, sizeof(o->worker), "reel-render-%s-%d", host, (int)getpid());
    }
    if (pipe2(g.stop_pipe, O_CLOEXEC) != 0)
        return -1;
    g.slots = calloc(o->concurrency, sizeof(*g.slots));
    if (g.slots == NULL)
        return -1;
    size_t frames = (size_t)o->shape.width * o->shape.height * o->shape.frames;
    for (uint32_t i = 0; i < o->concurrency; i++) {
        slot_t *s = &g.slots[i];
        s->index = i;
        snprintf(s->name, sizeof(s->name), "%s/%u", o->worker, i);
        s->pixels = malloc(frames);
        s->path = malloc(PATH_MAX);
        if (s->pixels == NULL || s->path == NULL || reel_client_init(&s->cl, o->server, o->token))
            return -1;
    }
    return 0;
}

static int workers_run(const options_t *o)
{
    reel_client_t hb;
    pthread_t hb_thread;
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (reel_client_init(&hb, o->server, o->token) != 0 ||
        pthread_create(&hb_thread, NULL, heartbeat_main, &hb) != 0)
        return 1;
    uint32_t started = 0;
    for (; started < o->concurrency; started++)
        if (pthread_create(&g.slots[started].thread, NULL, worker_main, &g.slots[started]) != 0)
            break;
    fprintf(stderr, "reel-render: %s: %u workers on %s, clips in %s (%ux%u, %u frames)\n",
            o->worker, started, o->server, o->out_abs, o->shape.width, o->shape.height,
            o->shape.frames);
    if (started < o->concurrency)
        on_signal(SIGTERM);
    uint64_t completed = 0, lost = 0, failed = 0, errors = 0;
    for (uint32_t i = 0; i < started; i++) {
        slot_t *s = &g.slots[i];
        pthread_join(s->thread, NULL);
        completed += s->completed;
        lost += s->lost_n;
        failed += s->failed;
        errors += s->errors;
    }
    pthread_mutex_lock(&g.mu);
    g.hb_exit = true;
    pthread_cond_signal(&g.cv);
    pthread_mutex_unlock(&g.mu);
    pthread_join(hb_thread, NULL);
    reel_client_free(&hb);
    fprintf(stderr, "reel-render: %s stopped: %llu completed, %llu lost, %llu failed, %llu "
            "errors\n", o->worker, (unsigned long long)completed, (unsigned long long)lost,
            (unsigned long long)failed, (unsigned long long)errors);
    return 0;
}

int main(int argc, char **argv)
{
    options_t *o = &g.o;
    render_job_t job = {0};
    reel_render_shape_t shape = REEL_RENDER_SHAPE_DEFAULT;
    o->shape = shape;
    o->concurrency = 1;
    o->lease_ms = 60000;
    o->wait_ms = 30000;
    o->dim = 64;
    o->drain_ms = 10000;
    o->out_dir = "./renders";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (parse_opt(argc, argv, &i, o, &job) != 0)
            return 2;
    }
    if (job.prompt != NULL || job.file != NULL) {
        if (job.prompt == NULL || job.file == NULL) {
            fprintf(stderr, "reel-render: --render needs --file (see --help)\n");
            return 2;
        }
        return render_file(o, &job);
    }
    reel_client_t probe;
    if (o->server == NULL || reel_client_init(&probe, o->server, o->token) != 0) {
        fprintf(stderr, "reel-render: --server http://HOST:PORT is required (see --help)\n");
        return 2;
    }
    int rc = pick_backend(o, false);
    if (rc != 0)
        return rc;
    if (workers_setup(o) != 0) {
        fprintf(stderr, "reel-render: setup failed\n");
        return 1;
    }
    rc = workers_run(o);
    for (uint32_t i = 0; i < o->concurrency; i++) {
        reel_client_free(&g.slots[i].cl);
        free(g.slots[i].pixels);
        free(g.slots[i].path);
    }
    free(g.slots);
    return rc;
}
