/*
 * harness.c: helpers shared by the tests (see harness.h).
 */
#include "tests/harness.h"
#include "engine/replay.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

void reel_test_cmds(reel_engine_t *e, const reel_cmd_t *cmds, size_t n, reel_cmd_result_t *out)
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
    for (size_t i = 0; i < n; i++) {
        cr_assert(reqs[i].res.error == NULL, "command %zu: %d %s: %s", i, reqs[i].res.status,
                  reqs[i].res.error, reqs[i].res.message);
        if (out != NULL)
            out[i] = reqs[i].res;
    }
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
    cr_assert_eq(reel_views_open(vdir, &v), 0);
    cr_assert_eq(reel_replay(reel_engine_log(e), v, UINT64_MAX, NULL, NULL, NULL, 0), 0);
    cr_assert_eq(reel_views_hash(v, fresh), 0);
    cr_assert_eq(reel_views_applied(v), reel_views_applied(reel_engine_views(e)));
    cr_assert(memcmp(live, fresh, 16) == 0, "live views == replay of the log");
    reel_views_close(v);
}
