/*
 * test_render.c: the render queue through a real reeld, and the reference
 * worker $REEL_BIN/reel-render (issue 7, "Proof"): lease expiry and
 * re-claim, 16 workers racing on 1,000 tasks (each completed exactly
 * once), a worker kill -9'd mid-task (another finishes it), reeld kill
 * -9'd with tasks in every state, a cameo revoked while its generation
 * renders, the quota given back, SIGTERM, and the frame renderer: its GIF
 * decodes to the very frames the renderer computes, and CUDA gives the
 * same frames as C where a GPU is present.
 *
 * No sleep synchronises anything: the engine's clock is moved with
 * --trust-client-time and "at" where a lease must lapse at a known point,
 * and elsewhere states are polled with deadlines (GET a generation, the
 * log), a short pause between polls only to spare the CPU.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/harness.h"
/* The renderer itself, to compare what the binary wrote with what it
 * computes (render.c has no dependency beyond engine/common.h). */
#include "tools/render/render.c"

#define POLL_PAUSE_MS 20
#define WORKERS_MAX 16

static char tmp[PATH_MAX];
static char data_dir[PATH_MAX + 8];
static pid_t srv_pid = -1;
static int srv_port;
static pid_t workers[WORKERS_MAX];
static uint32_t nworkers;

static void setup(void)
{
    reel_test_tmpdir(tmp, sizeof(tmp), "render");
    snprintf(data_dir, sizeof(data_dir), "%s/data", tmp);
    signal(SIGPIPE, SIG_IGN);
    nworkers = 0;
}

static void teardown(void)
{
    for (uint32_t i = 0; i < nworkers; i++) {
        if (workers[i] > 0) {
            reel_test_child_end(workers[i]);
        }
    }
    if (srv_pid > 0) {
        reel_test_child_end(srv_pid);
        srv_pid = -1;
    }
    reel_test_rmtree(tmp);
}

TestSuite(render, .init = setup, .fini = teardown, .timeout = 90);

typedef reel_test_resp_t resp_t;

#define srv_start(...) srv_pid = reel_test_reeld_start(tmp, data_dir, \
                                     (const char *const[]){__VA_ARGS__}, &srv_port)

static void pause_ms(uint32_t ms)
{
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

static resp_t http(const char *method, const char *path, const char *body)
{
    return reel_test_http(srv_port, method, path, body, NULL);
}

/* A request that must answer want; returns the named integer (0: none). */
static long long call(const char *method, const char *path, const char *body, int want,
                      const char *key)
{
    resp_t r = http(method, path, body);
    cr_assert_eq(r.status, want, "%s %s %s: %s", method, path, body ? body : "", r.raw);
    long long v = key ? reel_test_jint(&r, key) : 0;
    reel_test_resp_free(&r);
    return v;
}

static void expect_err(const char *method, const char *path, const char *body, int status,
                       const char *code)
{
    resp_t r = http(method, path, body);
    cr_expect_eq(r.status, status, "%s %s: %s", method, path, r.raw);
    cr_expect_str_eq(reel_test_jerr(&r, "code"), code, "%s", r.body);
    reel_test_resp_free(&r);
}

/* A generation's status ("" when unreadable) and, optionally, fields. */
static const char *gen_status(long long id, char *buf, size_t len, long long *attempts,
                              char *worker, size_t wlen)
{
    char path[64];
    snprintf(path, sizeof(path), "/v1/generations/%lld", id);
    resp_t r = http("GET", path, NULL);
    const char *s = json_string_value(json_object_get(r.json, "status"));
    snprintf(buf, len, "%s", s ? s : "");
    if (attempts)
        *attempts = json_integer_value(json_object_get(r.json, "attempts"));
    if (worker) {
        const char *w = json_string_value(json_object_get(r.json, "worker"));
        snprintf(worker, wlen, "%s", w ? w : "");
    }
    reel_test_resp_free(&r);
    return buf;
}

/* Polls generation id until its status is want, within ms. */
static bool gen_wait(long long id, const char *want, uint32_t ms)
{
    char st[32];
    uint64_t deadline = reel_test_now_ms() + ms;
    while (strcmp(gen_status(id, st, sizeof(st), NULL, NULL, 0), want) != 0) {
        if (reel_test_now_ms() > deadline)
            return false;
        pause_ms(POLL_PAUSE_MS);
    }
    return true;
}

/* Starts reel-render with the extra arguments (NULL-terminated) against
 * this test's reeld; its stderr goes to tmp/worker-<name>.txt. */
#define worker_start(name, ...) worker_start_argv(name, (const char *const[]){__VA_ARGS__})
static pid_t worker_start_argv(const char *name, const char *const *extra)
{
    const char *base = getenv("REEL_BIN");
    char bin[PATH_MAX], url[64], out[PATH_MAX + 32], log[PATH_MAX + 32];
    snprintf(bin, sizeof(bin), "%s/reel-render", base ? base : "build");
    cr_assert_eq(access(bin, X_OK), 0, "%s is not built (set REEL_BIN)", bin);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv_port);
    snprintf(out, sizeof(out), "%s/clips", tmp);
    snprintf(log, sizeof(log), "%s/worker-%s.txt", tmp, name);
    const char *argv[32] = {bin, "--server", url, "--out", out, "--worker", name};
    size_t n = 7;
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 31; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
        }
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    cr_assert_lt(nworkers, WORKERS_MAX);
    workers[nworkers++] = pid;
    return pid;
}

/* Sends sig to a worker and reaps it within ms: its exit status, -1 when
 * a signal ended it, -2 when it did not end in time. */
static int worker_stop(pid_t pid, int sig, uint32_t ms)
{
    int status;
    kill(pid, sig);
    uint64_t deadline = reel_test_now_ms() + ms;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (reel_test_now_ms() > deadline)
            return -2;
        pause_ms(POLL_PAUSE_MS);
    }
    for (uint32_t i = 0; i < nworkers; i++)
        if (workers[i] == pid)
            workers[i] = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The "N completed" of a worker's final line. */
static long long worker_completed(const char *name)
{
    char path[PATH_MAX + 32];
    uint8_t *data;
    size_t len;
    snprintf(path, sizeof(path), "%s/worker-%s.txt", tmp, name);
    cr_assert_eq(reel_test_read_file(path, &data, &len), 0);
    const char *p = strstr((char *)data, " stopped: ");
    long long n = p ? atoll(p + 10) : -1;
    free(data);
    return n;
}

/* ---- the frame renderer ---- */

/* A minimal GIF decoder, independent of the encoder: the global palette,
 * then every image's LZW data into frames (each width*height). Returns the
 * number of frames, or -1 when the file is not a well-formed GIF89a. */
typedef struct gif_in {
    const uint8_t *p, *end;
} gif_in_t;

static int gif_sub_blocks(gif_in_t *in, uint8_t *data, size_t cap, size_t *len)
{
    *len = 0;
    for (;;) {
        if (in->p >= in->end)
            return -1;
        uint8_t n = *in->p++;
        if (n == 0)
            return 0;
        if (in->end - in->p < n || *len + n > cap)
            return -1;
        memcpy(data + *len, in->p, n);
        *len += n;
        in->p += n;
    }
}

static int lzw_decode(const uint8_t *data, size_t len, uint8_t *out, size_t want)
{
    static uint16_t prefix[4096];
    static uint8_t suffix[4096], first[4096];
    static uint8_t stack[4096];
    uint32_t size = 9, next = 258, prev = 4096, bits = 0, nbits = 0;
    size_t o = 0, i = 0;
    for (uint32_t c = 0; c < 256; c++)
        suffix[c] = first[c] = (uint8_t)c;
    for (;;) {
        while (nbits < size && i < len) {
            bits |= (uint32_t)data[i++] << nbits;
            nbits += 8;
        }
        if (nbits < size)
            return -1; /* no end code */
        uint32_t code = bits & ((1u << size) - 1);
        bits >>= size;
        nbits -= size;
        if (code == 256) {
            size = 9, next = 258, prev = 4096;
            continue;
        }
        if (code == 257)
            return o == want ? 0 : -1;
        uint32_t cur = code, sp = 0;
        if (prev == 4096) {
            if (code > 255)
                return -1;
        } else if (code > next || (code == next && next >= 4096)) {
            return -1;
        } else {
            if (code == next)
                stack[sp++] = first[prev], cur = prev;
            if (next < 4096) {
                prefix[next] = (uint16_t)prev;
                suffix[next] = first[code == next ? prev : code];
                first[next] = first[prev];
                next++;
                if (next == (1u << size) && size < 12)
                    size++;
            }
        }
        for (; cur >= 258 && sp < 4096; cur = prefix[cur])
            stack[sp++] = suffix[cur];
        stack[sp++] = (uint8_t)cur;
        if (o + sp > want)
            return -1;
        while (sp > 0)
            out[o++] = stack[--sp];
        prev = code;
    }
}

static int gif_decode(const uint8_t *file, size_t len, uint32_t w, uint32_t h, uint8_t *frames,
                      uint32_t max_frames, uint8_t palette[768])
{
    gif_in_t in = {file + 13 + 768, file + len};
    static uint8_t data[1u << 21];
    size_t dlen;
    int n = 0;
    if (len < 13 + 768 || memcmp(file, "GIF89a", 6) != 0 || file[6] != (w & 255) ||
        file[8] != (h & 255) || file[10] != 0xf7)
        return -1;
    memcpy(palette, file + 13, 768);
    while (in.p < in.end) {
        uint8_t b = *in.p++;
        if (b == 0x3b)
            return in.p == in.end ? n : -1;
        if (b == 0x21 && in.p < in.end) {
            in.p++; /* the label: GCE, application */
            if (gif_sub_blocks(&in, data, sizeof(data), &dlen) != 0)
                return -1;
            continue;
        }
        if (b != 0x2c || in.end - in.p < 10 || (uint32_t)n >= max_frames)
            return -1;
        if ((in.p[4] | in.p[5] << 8) != (int)w || (in.p[6] | in.p[7] << 8) != (int)h ||
            in.p[8] != 0 || in.p[9] != 8)
            return -1;
        in.p += 10;
        if (gif_sub_blocks(&in, data, sizeof(data), &dlen) != 0 ||
            lzw_decode(data, dlen, frames + (size_t)n * w * h, (size_t)w * h) != 0)
            return -1;
        n++;
    }
    return -1;
}

/* Renders prompt with the binary (backend c or cuda) into tmp/name. */
static int render_with(const char *prompt, const char *backend, const char *name,
                       const char *size, const char *frames)
{
    const char *base = getenv("REEL_BIN");
    char cmd[PATH_MAX * 2 + 256];
    snprintf(cmd, sizeof(cmd), "%s/reel-render --render '%s' --file %s/%s --backend %s "
             "--size %s --frames %s --asset s3://c/a.bin 2>>%s/render-err.txt",
             base ? base : "build", prompt, tmp, name, backend, size, frames, tmp);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The GIF the binary writes decodes to exactly the frames render.c
 * computes (palette included), the same prompt gives the same bytes, and
 * another prompt another clip. */
Test(render, gif_decodes_to_the_rendered_frames)
{
    static const struct { uint32_t w, h, frames; const char *size, *nframes; } shapes[] = {
        {160, 120, 48, "160x120", "48"}, {33, 7, 3, "33x7", "3"}, {640, 480, 2, "640x480", "2"}};
    for (size_t s = 0; s < REEL_ARRAY_LEN(shapes); s++) {
        reel_render_shape_t shape = {shapes[s].w, shapes[s].h, shapes[s].frames, 4};
        size_t n = (size_t)shape.width * shape.height * shape.frames;
        cr_assert_eq(render_with("a paper boat in a storm", "c", "a.gif", shapes[s].size,
                                 shapes[s].nframes), 0);
        cr_assert_eq(render_with("a paper boat in a storm", "c", "b.gif", shapes[s].size,
                                 shapes[s].nframes), 0);
        char pa[PATH_MAX + 8], pb[PATH_MAX + 8];
        uint8_t *fa, *fb, pal[768], want_pal[768];
        size_t la, lb;
        snprintf(pa, sizeof(pa), "%s/a.gif", tmp);
        snprintf(pb, sizeof(pb), "%s/b.gif", tmp);
        cr_assert_eq(reel_test_read_file(pa, &fa, &la), 0);
        cr_assert_eq(reel_test_read_file(pb, &fb, &lb), 0);
        cr_expect(la == lb && memcmp(fa, fb, la) == 0, "the same prompt, another file");
        uint8_t *got = calloc(n, 1), *want = malloc(n);
        reel_render_params_t p;
        const char *assets[1] = {"s3://c/a.bin"};
        reel_render_params_init(&p, want_pal, "a paper boat in a storm", 23, assets, 1, &shape);
        cr_assert_eq(reel_render_frames_c(&p, shape.frames, want, NULL), 0);
        int frames = gif_decode(fa, la, shape.width, shape.height, got, shape.frames, pal);
        cr_expect_eq(frames, (int)shape.frames, "%ux%u: the GIF does not decode", shape.width,
                     shape.height);
        cr_expect(memcmp(got, want, n) == 0, "%ux%u: decoded frames differ", shape.width,
                  shape.height);
        cr_expect(memcmp(pal, want_pal, 768) == 0, "the palette differs");
        free(fb);
        cr_assert_eq(render_with("a dachshund on a skateboard", "c", "b.gif", shapes[s].size,
                                 shapes[s].nframes), 0);
        cr_assert_eq(reel_test_read_file(pb, &fb, &lb), 0);
        cr_expect(la != lb || memcmp(fa, fb, la) != 0, "another prompt, the same clip");
        free(fa);
        free(fb);
        free(got);
        free(want);
    }
}

/* C and CUDA give the same frames; skipped (saying so) without a GPU. */
Test(render, cuda_frames_equal_c_frames)
{
    int rc = render_with("neon koi in the rain", "cuda", "cuda.gif", "160x120", "48");
    if (rc == 3) {
        cr_skip_test("no CUDA renderer here (no nvcc at build time, or no GPU): "
                     "C and CUDA frames not compared");
        return;
    }
    cr_assert_eq(rc, 0);
    cr_assert_eq(render_with("neon koi in the rain", "c", "c.gif", "160x120", "48"), 0);
    char pa[PATH_MAX + 16], pb[PATH_MAX + 16];
    uint8_t *fa, *fb;
    size_t la, lb;
    snprintf(pa, sizeof(pa), "%s/cuda.gif", tmp);
    snprintf(pb, sizeof(pb), "%s/c.gif", tmp);
    cr_assert_eq(reel_test_read_file(pa, &fa, &la), 0);
    cr_assert_eq(reel_test_read_file(pb, &fb, &lb), 0);
    cr_expect(la == lb && memcmp(fa, fb, la) == 0, "CUDA and C frames differ");
    free(fa);
    free(fb);
}

/* ---- the queue through reeld ---- */

/* The first task of a claim's answer: its generation_id (0: none) and
 * attempt. */
static long long claim(const char *body, long long *attempt)
{
    resp_t r = http("POST", "/v1/render/claim", body);
    cr_assert_eq(r.status, 200, "claim %s: %s", body, r.raw);
    json_t *t = json_array_get(json_object_get(r.json, "tasks"), 0);
    long long id = t ? json_integer_value(json_object_get(t, "generation_id")) : 0;
    if (attempt)
        *attempt = t ? json_integer_value(json_object_get(t, "attempt")) : 0;
    reel_test_resp_free(&r);
    return id;
}

/* A lease lapses at the engine's clock: with --trust-client-time each
 * command carries "at", so the test says when time passes. Before the
 * lease ends another worker claims nothing; after it, the holder's
 * heartbeat and completion are 409 lease_lost, and the next claim takes
 * the task again (attempt 2), which that worker completes. */
Test(render, lease_expiry_and_reclaim)
{
    srv_start("--trust-client-time", NULL);
    const long long t0 = 1800000000000LL;
    char body[256], path[64];
    snprintf(body, sizeof(body), "{\"handle\":\"maker\",\"at\":%lld}", t0);
    call("POST", "/v1/users", body, 201, NULL);
    snprintf(body, sizeof(body), "{\"user\":1,\"prompt\":\"slow tide\",\"at\":%lld}", t0 + 1);
    long long g = call("POST", "/v1/generations", body, 202, "generation_id");
    long long attempt;
    snprintf(body, sizeof(body), "{\"worker\":\"w1\",\"lease_ms\":100,\"at\":%lld}", t0 + 10);
    cr_assert_eq(claim(body, &attempt), g);
    cr_expect_eq(attempt, 1);
    /* Within the lease (ends at t0 + 110): nothing for w2, w1 may beat. */
    snprintf(body, sizeof(body), "{\"worker\":\"w2\",\"lease_ms\":100,\"at\":%lld}", t0 + 60);
    cr_expect_eq(claim(body, NULL), 0);
    snprintf(path, sizeof(path), "/v1/render/%lld/heartbeat", g);
    snprintf(body, sizeof(body), "{\"worker\":\"w1\",\"lease_ms\":100,\"at\":%lld}", t0 + 100);
    cr_expect_eq(call("POST", path, body, 200, "lease_until"), t0 + 200);
    /* Past it (t0 + 200): the holder has lost it. */
    snprintf(body, sizeof(body), "{\"worker\":\"w1\",\"at\":%lld}", t0 + 200);
    expect_err("POST", path, body, 409, "lease_lost");
    snprintf(path, sizeof(path), "/v1/render/%lld/complete", g);
    snprintf(body, sizeof(body), "{\"worker\":\"w1\",\"video_uri\":\"file:///x\","
             "\"duration_ms\":1,\"at\":%lld}", t0 + 201);
    expect_err("POST", path, body, 409, "lease_lost");
    char st[32];
    cr_expect_str_eq(gen_status(g, st, sizeof(st), NULL, NULL, 0), "running",
                     "expiry is appended by the next claim");
    snprintf(body, sizeof(body), "{\"worker\":\"w2\",\"lease_ms\":5000,\"at\":%lld}", t0 + 300);
    cr_assert_eq(claim(body, &attempt), g);
    cr_expect_eq(attempt, 2);
    snprintf(body, sizeof(body), "{\"worker\":\"w1\",\"video_uri\":\"file:///x\","
             "\"duration_ms\":1,\"at\":%lld}", t0 + 301);
    expect_err("POST", path, body, 409, "lease_lost");
    snprintf(body, sizeof(body), "{\"worker\":\"w2\",\"video_uri\":\"file:///y\","
             "\"duration_ms\":1920,\"at\":%lld}", t0 + 302);
    long long post = call("POST", path, body, 200, "post_id");
    long long attempts;
    char worker[64];
    cr_expect_str_eq(gen_status(g, st, sizeof(st), &attempts, worker, sizeof(worker)),
                     "completed");
    cr_expect_eq(attempts, 2);
    cr_expect_str_eq(worker, "w2");
    resp_t r = http("GET", "/v1/log?types=generation.expired", NULL);
    cr_expect_eq(r.status, 200);
    cr_expect_not_null(strstr(r.body, "\"worker\":\"w1\""), "%s", r.body);
    reel_test_resp_free(&r);
    cr_expect_gt(post, 0);
}

/* Creates n generations for user through /v1/batch (one group commit). */
static void seed_generations(long long user, uint32_t n)
{
    size_t cap = (size_t)n * 96 + 64, len = 0;
    char *lines = malloc(cap);
    for (uint32_t i = 0; i < n; i++)
        len += (size_t)snprintf(lines + len, cap - len,
                                "{\"op\":\"POST /v1/generations\",\"body\":{\"user\":%lld,"
                                "\"prompt\":\"clip number %u\"}}\n", user, i);
    resp_t r = http("POST", "/v1/batch", lines);
    cr_assert_eq(r.status, 200, "%.300s", r.raw);
    size_t accepted = 0;
    for (const char *p = r.body; (p = strstr(p, "\"status\":202")) != NULL; p++)
        accepted++;
    cr_assert_eq(accepted, n, "%.300s", r.body);
    reel_test_resp_free(&r);
    free(lines);
}

/* A claim on a /v1/batch line answers what POST /v1/render/claim does:
 * whole tasks (prompt, cameos, attempt, lease), so that a worker can send
 * its completions and its next claim in one request. */
Test(render, a_claim_in_a_batch_answers_whole_tasks)
{
    srv_start(NULL);
    call("POST", "/v1/users", "{\"handle\":\"maker\"}", 201, NULL);
    seed_generations(1, 2);
    resp_t r = http("POST", "/v1/batch",
                    "{\"op\":\"POST /v1/render/claim\",\"body\":{\"worker\":\"b\",\"max\":1}}\n"
                    "{\"op\":\"POST /v1/render/claim\",\"body\":{\"worker\":\"b\",\"max\":1}}\n");
    cr_assert_eq(r.status, 200, "%.300s", r.raw);
    cr_expect_not_null(strstr(r.body, "\"prompt\":\"clip number 0\""), "%s", r.body);
    cr_expect_not_null(strstr(r.body, "\"prompt\":\"clip number 1\""), "%s", r.body);
    size_t with_cameos = 0, with_lease = 0;
    for (const char *p = r.body; (p = strstr(p, "\"cameos\":[")) != NULL; p++)
        with_cameos++;
    for (const char *p = r.body; (p = strstr(p, "\"lease_until\":")) != NULL; p++)
        with_lease++;
    cr_expect_eq(with_cameos, 2, "%s", r.body);
    cr_expect_eq(with_lease, 2, "%s", r.body);
    reel_test_resp_free(&r);
}

/* The generation_id of every generation.completed in the log (ids[] of
 * cap), and how many there are. */
static size_t completions(long long *ids, size_t cap)
{
    resp_t r = http("GET", "/v1/log?types=generation.completed&limit=100000", NULL);
    cr_assert_eq(r.status, 200);
    size_t n = 0;
    for (const char *p = r.body; (p = strstr(p, "\"generation_id\":")) != NULL; p++) {
        if (n < cap)
            ids[n] = atoll(p + 16);
        n++;
    }
    reel_test_resp_free(&r);
    return n;
}

/* 16 reel-render processes race on 1,000 tasks: every generation ends
 * completed, the log holds exactly 1,000 completions of 1,000 distinct
 * generations (no second completion succeeded), the workers' own counts
 * add up to 1,000, and SIGTERM ends each (idle in a long poll) at once
 * with exit 0. */
Test(render, sixteen_workers_race_on_a_thousand_tasks)
{
    enum { TASKS = 1000, NW = 16 };
    srv_start("--generations-per-day", "1000", NULL);
    call("POST", "/v1/users", "{\"handle\":\"maker\"}", 201, NULL);
    seed_generations(1, TASKS);
    pid_t pids[NW];
    char names[NW][16];
    for (int i = 0; i < NW; i++) {
        snprintf(names[i], sizeof(names[i]), "race%d", i);
        pids[i] = worker_start(names[i], "--size", "16x12", "--frames", "2", "--wait-ms", "30000",
                               "--lease-ms", "30000", NULL);
    }
    static long long ids[2 * TASKS];
    uint64_t deadline = reel_test_now_ms() + 60000;
    size_t n;
    while ((n = completions(ids, 2 * TASKS)) < TASKS && reel_test_now_ms() < deadline)
        pause_ms(50);
    cr_assert_eq(n, TASKS, "%zu completions", n);
    static bool seen[TASKS + 1];
    for (size_t i = 0; i < n; i++) {
        cr_assert(ids[i] >= 1 && ids[i] <= TASKS, "generation %lld", ids[i]);
        cr_expect(!seen[ids[i]], "generation %lld completed twice", ids[i]);
        seen[ids[i]] = true;
    }
    uint64_t t = reel_test_now_ms();
    long long total = 0;
    for (int i = 0; i < NW; i++) {
        cr_expect_eq(worker_stop(pids[i], SIGTERM, 10000), 0, "worker %d", i);
        total += worker_completed(names[i]);
    }
    cr_expect_lt(reel_test_now_ms() - t, 5000, "SIGTERM did not cut the long polls");
    cr_expect_eq(total, TASKS, "the workers say they completed %lld", total);
    char st[32];
    for (long long g = 1; g <= TASKS; g++)
        cr_expect_str_eq(gen_status(g, st, sizeof(st), NULL, NULL, 0), "completed", "gen %lld",
                         g);
}

/* A worker kill -9'd mid-task (its stand-in model is slow, and it
 * heartbeats, so it held the task): the lease lapses and another worker
 * finishes the task on attempt 2. */
Test(render, killed_worker_task_finished_by_another)
{
    srv_start(NULL);
    call("POST", "/v1/users", "{\"handle\":\"maker\"}", 201, NULL);
    long long g = call("POST", "/v1/generations", "{\"user\":1,\"prompt\":\"a slow one\"}", 202,
                       "generation_id");
    pid_t a = worker_start("slow", "--lease-ms", "600", "--frame-delay-ms", "500", "--wait-ms",
                           "5000", NULL);
    cr_assert(gen_wait(g, "running", 10000));
    /* Three heartbeats' worth: the lease outlived its first term. */
    uint64_t until = reel_test_now_ms() + 1000;
    char st[32], worker[64];
    while (reel_test_now_ms() < until) {
        cr_assert_str_eq(gen_status(g, st, sizeof(st), NULL, NULL, 0), "running");
        pause_ms(50);
    }
    cr_expect_eq(worker_stop(a, SIGKILL, 5000), -1);
    worker_start("fast", "--lease-ms", "5000", "--wait-ms", "5000", NULL);
    cr_assert(gen_wait(g, "completed", 20000), "the task was not finished by another");
    long long attempts;
    gen_status(g, st, sizeof(st), &attempts, worker, sizeof(worker));
    cr_expect_eq(attempts, 2);
    cr_expect_str_eq(worker, "fast/0");
}

/* The JSON of every generation 1..n, as GET answers it. */
static void snapshot(long long n, char **out)
{
    for (long long g = 1; g <= n; g++) {
        char path[64];
        snprintf(path, sizeof(path), "/v1/generations/%lld", g);
        resp_t r = http("GET", path, NULL);
        cr_assert_eq(r.status, 200);
        out[g - 1] = strdup(r.body);
        reel_test_resp_free(&r);
    }
}

/* reeld kill -9'd with tasks queued, running, completed, failed and
 * cancelled: after the restart each is where it was (the same JSON), and
 * the queue still hands out the oldest queued first. */
Test(render, reeld_kill9_keeps_every_task_state)
{
    srv_start("--generations-per-day", "100", NULL);
    call("POST", "/v1/users", "{\"handle\":\"maker\"}", 201, NULL);
    call("POST", "/v1/users", "{\"handle\":\"face\"}", 201, NULL);
    call("PUT", "/v1/users/2/cameo", "{\"asset\":\"s3://c/face.bin\"}", 200, NULL);
    call("PUT", "/v1/users/2/cameo/policy", "{\"policy\":\"everyone\"}", 200, NULL);
    for (int i = 0; i < 8; i++)
        call("POST", "/v1/generations", "{\"user\":1,\"prompt\":\"p\"}", 202, NULL);
    call("POST", "/v1/generations", "{\"user\":1,\"prompt\":\"with face\",\"cameos\":[2]}", 202,
         NULL);
    char path[64];
    for (long long g = 1; g <= 6; g++)
        cr_assert_eq(claim("{\"worker\":\"w\",\"lease_ms\":3600000}", NULL), g);
    for (long long g = 1; g <= 2; g++) {
        snprintf(path, sizeof(path), "/v1/render/%lld/complete", g);
        call("POST", path, "{\"worker\":\"w\",\"video_uri\":\"file:///v\",\"duration_ms\":1}",
             200, NULL);
        snprintf(path, sizeof(path), "/v1/render/%lld/fail", g + 2);
        call("POST", path, "{\"worker\":\"w\",\"reason\":\"oom\",\"retryable\":false}", 200,
             NULL);
    }
    /* 5, 6 running; 7, 8 queued; 9 cancelled (its cameo's consent ended). */
    call("PUT", "/v1/users/2/cameo/policy", "{\"policy\":\"only_me\"}", 200, NULL);
    char *before[9], *after[9], st[32];
    snapshot(9, before);
    cr_expect_str_eq(gen_status(9, st, sizeof(st), NULL, NULL, 0), "cancelled");
    cr_expect_str_eq(gen_status(5, st, sizeof(st), NULL, NULL, 0), "running");
    cr_expect_str_eq(gen_status(3, st, sizeof(st), NULL, NULL, 0), "failed");
    cr_expect_eq(reel_test_reeld_stop(srv_pid, SIGKILL), -1);
    srv_start("--generations-per-day", "100", NULL);
    snapshot(9, after);
    for (int i = 0; i < 9; i++) {
        cr_expect_str_eq(after[i], before[i], "generation %d", i + 1);
        free(before[i]);
        free(after[i]);
    }
    cr_expect_eq(claim("{\"worker\":\"w2\"}", NULL), 7);
    cr_expect_eq(claim("{\"worker\":\"w2\"}", NULL), 8);
    cr_expect_eq(claim("{\"worker\":\"w2\"}", NULL), 0);
    snprintf(path, sizeof(path), "/v1/render/5/heartbeat");
    call("POST", path, "{\"worker\":\"w\"}", 200, NULL);
}

/* The cameo's owner narrows the policy while the generation renders: the
 * running generation is cancelled, its worker's heartbeat and completion
 * are 409 lease_lost, and no post (or draft) is made. */
Test(render, revoke_during_rendering_cancels_without_a_post)
{
    srv_start(NULL);
    call("POST", "/v1/users", "{\"handle\":\"face\"}", 201, NULL);
    call("POST", "/v1/users", "{\"handle\":\"maker\"}", 201, NULL);
    call("PUT", "/v1/users/1/cameo", "{\"asset\":\"s3://c/face.bin\"}", 200, NULL);
    call("PUT", "/v1/users/1/cameo/policy", "{\"policy\":\"everyone\"}", 200, NULL);
    long long g = call("POST", "/v1/generations",
                       "{\"user\":2,\"prompt\":\"me and face\",\"cameos\":[1]}", 202,
                       "generation_id");
    resp_t r = http("POST", "/v1/render/claim", "{\"worker\":\"w\"}");
    json_t *cameo = json_array_get(json_object_get(json_array_get(json_object_get(r.json,
                                   "tasks"), 0), "cameos"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(cameo, "asset")), "s3://c/face.bin",
                     "%s", r.body);
    reel_test_resp_free(&r);
    call("PUT", "/v1/users/1/cameo/policy", "{\"policy\":\"only_me\"}", 200, NULL);
    char path[64], st[32];
    snprintf(path, sizeof(path), "/v1/render/%lld/heartbeat", g);
    expect_err("POST", path, "{\"worker\":\"w\"}", 409, "lease_lost");
    snprintf(path, sizeof(path), "/v1/render/%lld/complete", g);
    expect_err("POST", path, "{\"worker\":\"w\",\"video_uri\":\"file:///v\",\"duration_ms\":1}",
               409, "lease_lost");
    cr_expect_str_eq(gen_status(g, st, sizeof(st), NULL, NULL, 0), "cancelled");
    r = http("GET", "/v1/users/2/posts?include_drafts=1", NULL);
    cr_expect_eq(json_array_size(json_object_get(r.json, "items")), 0, "%s", r.body);
    reel_test_resp_free(&r);
    r = http("GET", "/v1/log?types=post.created,generation.completed", NULL);
    cr_expect_eq(r.body[0], '\0', "%s", r.body);
    reel_test_resp_free(&r);
}

/* Failed and cancelled generations give their quota back: with 2 a day,
 * a third is 429 until one fails (not retryable), and again until one
 * fails retryable with its attempts spent (--render-attempts 1). */
Test(render, quota_refund_after_failure)
{
    srv_start("--generations-per-day", "2", "--render-attempts", "1", NULL);
    call("POST", "/v1/users", "{\"handle\":\"maker\"}", 201, NULL);
    const char *gen = "{\"user\":1,\"prompt\":\"again\"}";
    call("POST", "/v1/generations", gen, 202, NULL);
    call("POST", "/v1/generations", gen, 202, NULL);
    expect_err("POST", "/v1/generations", gen, 429, "quota_exceeded");
    long long g = claim("{\"worker\":\"w\"}", NULL);
    char path[64];
    snprintf(path, sizeof(path), "/v1/render/%lld/fail", g);
    call("POST", path, "{\"worker\":\"w\",\"reason\":\"bad\",\"retryable\":false}", 200, NULL);
    cr_expect_eq(call("GET", "/v1/users/1/quota", NULL, 200, "used"), 1);
    call("POST", "/v1/generations", gen, 202, NULL);
    expect_err("POST", "/v1/generations", gen, 429, "quota_exceeded");
    g = claim("{\"worker\":\"w\"}", NULL);
    snprintf(path, sizeof(path), "/v1/render/%lld/fail", g);
    call("POST", path, "{\"worker\":\"w\",\"reason\":\"oom\",\"retryable\":true}", 200, NULL);
    char st[32];
    cr_expect_str_eq(gen_status(g, st, sizeof(st), NULL, NULL, 0), "failed",
                     "the only attempt was spent");
    cr_expect_eq(call("GET", "/v1/users/1/quota", NULL, 200, "used"), 1);
    call("POST", "/v1/generations", gen, 202, NULL);
}

/* The worker end to end: a clip under --out, completed with its file URI,
 * the clip's duration and an embedding of --dim floats; SIGTERM while it
 * renders a slow task finishes that task first, then exits 0. */
Test(render, worker_completes_with_file_uri_and_stops_on_sigterm)
{
    srv_start(NULL);
    call("POST", "/v1/users", "{\"handle\":\"maker\"}", 201, NULL);
    long long g = call("POST", "/v1/generations", "{\"user\":1,\"prompt\":\"koi pond\"}", 202,
                       "generation_id");
    pid_t w = worker_start("one", "--frame-delay-ms", "20", "--wait-ms", "5000", NULL);
    cr_assert(gen_wait(g, "running", 10000));
    cr_expect_eq(worker_stop(w, SIGTERM, 10000), 0);
    char st[32];
    cr_expect_str_eq(gen_status(g, st, sizeof(st), NULL, NULL, 0), "completed");
    resp_t r = http("GET", "/v1/log?types=generation.completed", NULL);
    json_t *ev = json_loads(r.body, 0, NULL);
    cr_assert_not_null(ev, "%s", r.body);
    const char *uri = json_string_value(json_object_get(ev, "video_uri"));
    cr_assert_not_null(uri, "%s", r.body);
    cr_expect_eq(strncmp(uri, "file:///", 8), 0, "%s", uri);
    cr_expect_eq(json_integer_value(json_object_get(ev, "duration_ms")), 1920);
    cr_expect_eq(json_array_size(json_object_get(ev, "embedding")), 64, "%s", r.body);
    struct stat sb;
    cr_expect_eq(stat(uri + 7, &sb), 0, "%s", uri);
    cr_expect_gt(sb.st_size, 1000);
    json_decref(ev);
    reel_test_resp_free(&r);
    cr_expect_eq(worker_completed("one"), 1);
}
