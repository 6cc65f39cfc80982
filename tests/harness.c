/*
 * harness.c: helpers shared by the tests (see harness.h).
 */
#include "tests/harness.h"
#include "engine/replay.h"

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void reel_test_tmpdir(char *buf, size_t len, const char *tag)
{
    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    snprintf(buf, len, "%s/reeltest-%s-XXXXXX", base, tag);
    if (mkdtemp(buf) == NULL) {
        perror("mkdtemp");
        abort();
    }
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void reel_test_rmtree(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

uint64_t reel_test_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

int reel_test_read_file(const char *path, uint8_t **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -errno;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    *data = malloc((size_t)size + 1);
    *len = fread(*data, 1, (size_t)size, f);
    fclose(f);
    return 0;
}

int reel_test_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -errno;
    size_t n = fwrite(data, 1, len, f);
    fclose(f);
    return n == len ? 0 : -EIO;
}

reel_cmd_result_t reel_test_cmd(reel_engine_t *e, reel_cmd_kind_t kind, uint64_t at,
                                reel_event_t args)
{
    reel_cmd_t cmd = {.kind = kind, .at = at, .args = args};
    reel_cmd_result_t res;
    cr_assert_eq(reel_engine_run(e, &cmd, &res), 0);
    return res;
}

/* ---- running the project's binaries ---- */

void reel_test_bin(const char *name, char *bin, size_t len)
{
    const char *base = getenv("REEL_BIN");
    snprintf(bin, len, "%s/%s", base != NULL && base[0] != '\0' ? base : "build", name);
    cr_assert_eq(access(bin, X_OK), 0, "%s is not built (set REEL_BIN)", bin);
}

pid_t reel_test_reel_spawn(const char *const *args, const char *out, const char *err)
{
    const char *argv[40];
    char bin[PATH_MAX];
    int argc = 1;
    reel_test_bin("reel", bin, sizeof(bin));
    argv[0] = bin;
    for (; args[argc - 1] != NULL && argc < 39; argc++)
        argv[argc] = args[argc - 1];
    argv[argc] = NULL;
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0)
            _exit(127);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

char *reel_test_slurp(const char *path)
{
    uint8_t *data;
    size_t len;
    cr_assert_eq(reel_test_read_file(path, &data, &len), 0, "%s", path);
    data[len] = '\0'; /* reel_test_read_file allocates one byte more */
    return (char *)data;
}

reel_test_run_t reel_test_reel_run(const char *dir, const char *first, ...)
{
    const char *args[40];
    char out[PATH_MAX + 16], err[PATH_MAX + 16];
    va_list ap;
    int n = 0, ws;
    va_start(ap, first);
    for (const char *a = first; a != NULL && n < 38; a = va_arg(ap, const char *))
        args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    snprintf(out, sizeof(out), "%s/stdout.txt", dir);
    snprintf(err, sizeof(err), "%s/stderr.txt", dir);
    pid_t pid = reel_test_reel_spawn(args, out, err);
    cr_assert_eq(waitpid(pid, &ws, 0), pid);
    return (reel_test_run_t){WIFEXITED(ws) ? WEXITSTATUS(ws) : -1, reel_test_slurp(out), reel_test_slurp(err)};
}

void reel_test_run_free(reel_test_run_t *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

typedef struct bulk_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t left;
} bulk_wait_t;

static void bulk_cb(reel_cmd_req_t *req)
{
    bulk_wait_t *w = req->data;
    pthread_mutex_lock(&w->mu);
    if (--w->left == 0)
        pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Submits cmds[0..n) at once and waits for every answer; the requests
 * (answers in .res) are the caller's to free. */
static reel_cmd_req_t *cmds_run(reel_engine_t *e, const reel_cmd_t *cmds, size_t n)
{
    reel_cmd_req_t *reqs = calloc(n ? n : 1, sizeof(*reqs));
    bulk_wait_t w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, n};
    cr_assert_not_null(reqs);
    for (size_t i = 0; i < n; i++) {
        reqs[i] = (reel_cmd_req_t){.cmd = cmds[i], .cb = bulk_cb, .data = &w};
        cr_assert_eq(reel_engine_submit(e, &reqs[i]), 0, "submit %zu of %zu", i, n);
    }
    pthread_mutex_lock(&w.mu);
    while (w.left > 0)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    return reqs;
}

void reel_test_cmds(reel_engine_t *e, const reel_cmd_t *cmds, size_t n, reel_cmd_result_t *out)
{
    reel_cmd_req_t *reqs = cmds_run(e, cmds, n);
    for (size_t i = 0; i < n; i++) {
        cr_assert(reqs[i].res.error == NULL, "command %zu: %d %s: %s", i, reqs[i].res.status,
                  reqs[i].res.error, reqs[i].res.message);
        if (out != NULL)
            out[i] = reqs[i].res;
    }
    free(reqs);
}

void reel_test_cmds_answers(reel_engine_t *e, const reel_cmd_t *cmds, size_t n,
                            reel_cmd_result_t *out)
{
    reel_cmd_req_t *reqs = cmds_run(e, cmds, n);
    for (size_t i = 0; i < n; i++)
        out[i] = reqs[i].res;
    free(reqs);
}

void reel_test_expect(reel_cmd_result_t r, int status, const char *code)
{
    cr_assert_eq(r.status, status, "status %d (%s: %s), want %d", r.status,
                 r.error ? r.error : "ok", r.message, status);
    if (code == NULL)
        cr_assert_null(r.error, "%s", r.error);
    else
        cr_assert(r.error != NULL && strcmp(r.error, code) == 0, "error %s, want %s", r.error, code);
}

void reel_test_views_equal_replay(reel_engine_t *e, const char *dir)
{
    char vdir[PATH_MAX + 32];
    uint8_t live[16], fresh[16];
    reel_views_t *v;
    snprintf(vdir, sizeof(vdir), "%s/replayed-%lu", dir,
             (unsigned long)reel_views_applied(reel_engine_views(e)));
    cr_assert_eq(reel_views_hash(reel_engine_views(e), live), 0);
    reel_test_rmtree(vdir); /* fresh views, also when a check before used the name */
    cr_assert_eq(reel_views_open(vdir, &v), 0);
    cr_assert_eq(reel_replay(reel_engine_log(e), v, UINT64_MAX, NULL, NULL, NULL, 0), 0);
    cr_assert_eq(reel_views_hash(v, fresh), 0);
    cr_assert_eq(reel_views_applied(v), reel_views_applied(reel_engine_views(e)));
    cr_assert(memcmp(live, fresh, 16) == 0, "live views == replay of the log");
    reel_views_close(v);
    reel_test_rmtree(vdir);
}

/* ---- reeld and raw HTTP/1.1 ---- */

#define HTTP_IO_TIMEOUT_MS 10000
/* reeld gets this long to print its "listening on" line (ASan included). */
#define REELD_START_MS 20000

uint64_t reel_test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The port of a complete "listening on" line in dir/out.txt, or 0. */
static int reeld_port(const char *out)
{
    static const char mark[] = "listening on http://"; /* then HOST:PORT */
    uint8_t *text = NULL;
    size_t len = 0;
    int port = 0;
    if (reel_test_read_file(out, &text, &len) != 0)
        return 0;
    text[len] = '\0';
    const char *p = strstr((char *)text, mark);
    const char *eol = p != NULL ? strchr(p, '\n') : NULL;
    const char *colon = eol != NULL ? memrchr(p, ':', (size_t)(eol - p)) : NULL;
    if (colon != NULL)
        port = atoi(colon + 1);
    free(text);
    return port;
}

pid_t reel_test_reeld_start(const char *dir, const char *data_dir, const char *const *extra,
                            int *port)
{
    const char *argv[48];
    char bin[PATH_MAX], out[PATH_MAX + 16], err[PATH_MAX + 16];
    const char *base = getenv("REEL_BIN");
    int argc = 0;
    snprintf(bin, sizeof(bin), "%s/reeld", base && base[0] ? base : "build");
    cr_assert_eq(access(bin, X_OK), 0, "%s is not built (set REEL_BIN)", bin);
    argv[argc++] = bin;
    argv[argc++] = "--data";
    argv[argc++] = data_dir;
    argv[argc++] = "--listen";
    argv[argc++] = "127.0.0.1:0";
    for (int i = 0; extra != NULL && extra[i] != NULL; i++) {
        cr_assert_lt(argc, 47, "too many reeld arguments");
        argv[argc++] = extra[i];
    }
    argv[argc] = NULL;
    snprintf(out, sizeof(out), "%s/out.txt", dir);
    snprintf(err, sizeof(err), "%s/err.txt", dir);
    unlink(out);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(err, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0)
            _exit(127);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    uint64_t deadline = reel_test_now_ms() + REELD_START_MS;
    while (reel_test_now_ms() < deadline) {
        int p = reeld_port(out);
        if (p > 0) {
            *port = p;
            return pid;
        }
        int ws;
        cr_assert_eq(waitpid(pid, &ws, WNOHANG), 0, "reeld exited at start (see %s)", err);
        /* Polling reeld's output for its port, not synchronising. */
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    cr_assert_fail("reeld did not start listening");
    return -1;
}

int reel_test_reeld_stop(pid_t pid, int sig)
{
    int ws;
    kill(pid, sig);
    cr_assert_eq(waitpid(pid, &ws, 0), pid);
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
}

void reel_test_child_end(pid_t pid)
{
    const char *vg = getenv("REEL_TEST_VALGRIND");
    if (vg != NULL && vg[0] != '\0' && kill(pid, SIGTERM) == 0) {
        uint64_t deadline = reel_test_now_ms() + 60000;
        while (reel_test_now_ms() < deadline) {
            if (waitpid(pid, NULL, WNOHANG) != 0)
                return;
            /* Polling the child's exit, not synchronising. */
            struct timespec ts = {0, 20 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

int reel_test_http_connect(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {HTTP_IO_TIMEOUT_MS / 1000, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

bool reel_test_http_send(int fd, const void *data, size_t n)
{
    const char *p = data;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

char *reel_test_http_read(int fd, int timeout_ms, size_t *len_out, bool *closed)
{
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    cr_assert_not_null(buf);
    uint64_t deadline = reel_test_now_ms() + (uint64_t)timeout_ms;
    bool eof = false;
    for (;;) {
        uint64_t t = reel_test_now_ms();
        if (t >= deadline)
            break;
        struct pollfd p = {fd, POLLIN, 0};
        int k = poll(&p, 1, (int)(deadline - t));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            cr_assert_not_null(buf);
        }
        ssize_t r = recv(fd, buf + len, cap - len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            eof = true; /* FIN or reset: the server is done with us */
            break;
        }
        len += (size_t)r;
    }
    buf[len] = '\0';
    if (len_out)
        *len_out = len;
    if (closed)
        *closed = eof;
    return buf;
}

size_t reel_test_http_answer_len(const char *p, size_t n)
{
    const char *h = memmem(p, n, "\r\n\r\n", 4);
    if (h == NULL)
        return 0;
    size_t head = (size_t)(h - p) + 4, blen = 0;
    const char *cl = memmem(p, head, "Content-Length: ", 16);
    if (cl != NULL)
        blen = (size_t)strtoull(cl + 16, NULL, 10);
    return head + blen <= n ? head + blen : 0;
}

size_t reel_test_http_dechunk(char *p)
{
    char *out = p, *in = p;
    for (;;) {
        char *end = NULL;
        unsigned long long n = strtoull(in, &end, 16);
        if (end == in || strncmp(end, "\r\n", 2) != 0)
            break; /* malformed or cut short: what came so far */
        in = end + 2;
        if (n == 0 || strlen(in) < n + 2)
            break;
        memmove(out, in, n);
        out += n;
        in += n + 2;
    }
    *out = '\0';
    return (size_t)(out - p);
}

reel_test_resp_t reel_test_resp_parse(char *raw)
{
    reel_test_resp_t r = {0, raw, NULL, NULL};
    if (sscanf(raw, "HTTP/1.1 %d", &r.status) != 1)
        r.status = 0;
    char *b = strstr(raw, "\r\n\r\n");
    r.body = b ? b + 4 : raw + strlen(raw);
    if (b != NULL && memmem(raw, (size_t)(b - raw), "Transfer-Encoding: chunked", 26) != NULL)
        reel_test_http_dechunk(r.body);
    r.json = json_loads(r.body, JSON_DECODE_ANY, NULL);
    return r;
}

void reel_test_resp_free(reel_test_resp_t *r)
{
    json_decref(r->json);
    free(r->raw);
    r->json = NULL;
    r->raw = NULL;
}

reel_test_resp_t reel_test_http(int port, const char *method, const char *path,
                                const char *body, const char *headers)
{
    char head[4096];
    size_t blen = body ? strlen(body) : 0;
    int n = snprintf(head, sizeof(head),
                     "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%sContent-Length: %zu\r\n"
                     "\r\n",
                     method, path, headers ? headers : "", blen);
    cr_assert(n > 0 && (size_t)n < sizeof(head), "request head too long");
    int fd = reel_test_http_connect(port);
    cr_assert_geq(fd, 0, "connect: %s", strerror(errno));
    /* The server may close early (413, 431): the answer tells. */
    if (reel_test_http_send(fd, head, (size_t)n) && blen > 0)
        reel_test_http_send(fd, body, blen);
    bool closed;
    char *raw = reel_test_http_read(fd, HTTP_IO_TIMEOUT_MS, NULL, &closed);
    close(fd);
    cr_expect(closed, "the server neither answered nor closed: %s", raw);
    return reel_test_resp_parse(raw);
}

long long reel_test_jint(const reel_test_resp_t *r, const char *key)
{
    json_t *v = r->json ? json_object_get(r->json, key) : NULL;
    cr_assert(json_is_integer(v), "%s missing in %s", key, r->body);
    return json_integer_value(v);
}

const char *reel_test_jerr(const reel_test_resp_t *r, const char *key)
{
    json_t *e = r->json ? json_object_get(r->json, "error") : NULL;
    json_t *v = e ? json_object_get(e, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : "";
}
