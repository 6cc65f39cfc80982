/*
 * test_engine_random.c: thousands of random commands from many threads,
 * then the live views equal a replay of the log; and the same after
 * kill -9 of a process in the middle of its commands and a restart (the
 * views catch up from the log exactly once).
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/common.h"
#include "engine/reel.h"
#include "engine/replay.h"
#include "tests/harness.h"

static char dir[PATH_MAX];

static void setup(void)
{
    reel_test_tmpdir(dir, sizeof(dir), "engrand");
}

static void teardown(void)
{
    reel_test_rmtree(dir);
}

TestSuite(engine_random, .init = setup, .fini = teardown, .timeout = 240);

enum { USERS = 60 };
static const char *const handles[] = {"ant", "bee", "cat", "dog", "eel", "fox", "gnu", "hen"};

/* A random command; strings are static. Ids go a little past what exists
 * so that some commands are refused (404), as in life. */
static void random_cmd(uint64_t *rng, reel_cmd_t *cmd, char *handle_buf)
{
    uint64_t a = 1 + reel_test_rand(rng) % USERS, b = 1 + reel_test_rand(rng) % USERS;
    uint64_t p = 1 + reel_test_rand(rng) % 200;
    memset(cmd, 0, sizeof(*cmd));
    cmd->args.user = a;
    cmd->args.target = b;
    cmd->args.post = p;
    switch (reel_test_rand(rng) % 12) {
    case 0:
        snprintf(handle_buf, 24, "%s%u", handles[a % 8], (unsigned)(reel_test_rand(rng) % 100));
        cmd->kind = REEL_CMD_USER_CREATE;
        cmd->args.handle = (reel_str_t){handle_buf, (uint32_t)strlen(handle_buf)};
        break;
    case 1: cmd->kind = REEL_CMD_FOLLOW; break;
    case 2: cmd->kind = REEL_CMD_UNFOLLOW; break;
    case 3: cmd->kind = reel_test_rand(rng) % 4 ? REEL_CMD_FOLLOW : REEL_CMD_BLOCK; break;
    case 4: cmd->kind = REEL_CMD_UNBLOCK; break;
    case 5:
        cmd->kind = REEL_CMD_POST_CREATE;
        cmd->args.video_uri = (reel_str_t){"v", 1};
        cmd->args.prompt = (reel_str_t){"a dachshund", 11};
        cmd->args.remix_of = reel_test_rand(rng) % 3 ? 0 : p;
        break;
    case 6: cmd->kind = REEL_CMD_LIKE; break;
    case 7: cmd->kind = REEL_CMD_UNLIKE; break;
    case 8:
        cmd->kind = REEL_CMD_COMMENT_CREATE;
        cmd->args.text = (reel_str_t){"nice", 4};
        break;
    case 9: cmd->kind = REEL_CMD_VIEW; cmd->args.watch_ms = 1234; break;
    case 10: cmd->kind = REEL_CMD_POST_DELETE; break;
    default: cmd->kind = REEL_CMD_LIKE; break;
    }
}

static void seed_users(reel_engine_t *e)
{
    for (int i = 0; i < USERS; i++) {
        char h[16];
        snprintf(h, sizeof(h), "seed%d", i);
        reel_cmd_t c = {.kind = REEL_CMD_USER_CREATE, .args = {.handle = {h, (uint32_t)strlen(h)}}};
        reel_cmd_result_t r;
        cr_assert_eq(reel_engine_run(e, &c, &r), 0);
    }
}

/* The live views equal a fold of the log into fresh views. */
static void expect_views_equal_replay(reel_engine_t *e, const char *tag)
{
    char vdir[PATH_MAX + 32];
    uint8_t live[16], fresh[16];
    reel_views_t *v;
    snprintf(vdir, sizeof(vdir), "%s/replay-%s", dir, tag);
    cr_assert_eq(reel_views_hash(reel_engine_views(e), live), 0);
    cr_assert_eq(reel_views_open(vdir, &v), 0);
    cr_assert_eq(reel_replay(reel_engine_log(e), v, UINT64_MAX, NULL, NULL, NULL, 0), 0);
    cr_assert_eq(reel_views_hash(v, fresh), 0);
    cr_assert(memcmp(live, fresh, 16) == 0, "%s: live views == replay of the log", tag);
    reel_views_close(v);
    reel_test_rmtree(vdir);
}

/* Submits n random commands with up to 64 in flight; returns how many
 * were answered with a success that appended events. */
typedef struct driver {
    reel_engine_t *e;
    uint64_t seed;
    int n;
    int pipe_fd; /* -1, or where to report acknowledged offsets */
} driver_t;

typedef struct slot {
    reel_cmd_req_t req;
    char handle[24];
    driver_t *d;
} slot_t;

static pthread_mutex_t d_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t d_cv = PTHREAD_COND_INITIALIZER;
static int d_inflight;

static void drive_cb(reel_cmd_req_t *req)
{
    slot_t *s = req->data;
    if (s->d->pipe_fd >= 0 && req->res.error == NULL && req->res.offset >= 0) {
        int64_t off = req->res.offset;
        if (write(s->d->pipe_fd, &off, sizeof(off)) != (ssize_t)sizeof(off))
            _exit(3);
    }
    pthread_mutex_lock(&d_mu);
    d_inflight--;
    pthread_cond_broadcast(&d_cv);
    pthread_mutex_unlock(&d_mu);
    free(s);
}

static void *drive(void *arg)
{
    driver_t *d = arg;
    uint64_t rng = d->seed;
    for (int i = 0; i < d->n; i++) {
        slot_t *s = calloc(1, sizeof(*s));
        s->d = d;
        random_cmd(&rng, &s->req.cmd, s->handle);
        s->req.cb = drive_cb;
        s->req.data = s;
        pthread_mutex_lock(&d_mu);
        while (d_inflight >= 64)
            pthread_cond_wait(&d_cv, &d_mu);
        d_inflight++;
        pthread_mutex_unlock(&d_mu);
        cr_assert_eq(reel_engine_submit(d->e, &s->req), 0);
    }
    return NULL;
}

static void wait_idle(void)
{
    pthread_mutex_lock(&d_mu);
    while (d_inflight > 0)
        pthread_cond_wait(&d_cv, &d_mu);
    pthread_mutex_unlock(&d_mu);
}

Test(engine_random, many_threads_then_views_equal_replay)
{
    reel_engine_t *e;
    char err[256];
    cr_assert_eq(reel_engine_open(dir, NULL, &e, err, sizeof(err)), 0, "%s", err);
    seed_users(e);
    pthread_t th[4];
    driver_t d[4];
    for (int i = 0; i < 4; i++) {
        d[i] = (driver_t){e, 1000 + (uint64_t)i, 2500, -1};
        pthread_create(&th[i], NULL, drive, &d[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    wait_idle();
    cr_assert_gt(reel_log_end(reel_engine_log(e)), 2000, "many commands appended events");
    expect_views_equal_replay(e, "live");
    cr_assert_eq(reel_engine_close(e), 0);
    cr_assert_eq(reel_engine_open(dir, NULL, &e, err, sizeof(err)), 0, "%s", err);
    expect_views_equal_replay(e, "reopened");
    reel_engine_close(e);
}

/* The child: opens the engine and runs random commands until killed,
 * writing each acknowledged offset to fd. */
static void child_run(int fd, uint64_t seed)
{
    reel_engine_t *e;
    if (reel_engine_open(dir, NULL, &e, NULL, 0) != 0)
        _exit(2);
    driver_t d = {e, seed, 1 << 30, fd};
    drive(&d); /* runs until the parent kills us */
    _exit(0);
}

/* Reads acknowledged offsets until the pipe closes; returns the largest. */
static int64_t drain_acks(int fd, uint64_t *count)
{
    int64_t off, max = -1;
    while (read(fd, &off, sizeof(off)) == (ssize_t)sizeof(off)) {
        max = off > max ? off : max;
        (*count)++;
    }
    return max;
}

Test(engine_random, kill_9_mid_commands_then_views_catch_up)
{
    uint64_t seed = 77, total_acked = 0;
    reel_engine_t *e;
    char err[256];
    cr_assert_eq(reel_engine_open(dir, NULL, &e, err, sizeof(err)), 0, "%s", err);
    seed_users(e);
    reel_engine_close(e);
    for (int round = 0; round < 8; round++) {
        int fds[2];
        cr_assert_eq(pipe(fds), 0);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            close(fds[0]);
            child_run(fds[1], seed + (uint64_t)round);
        }
        close(fds[1]);
        /* Wait for the first acknowledgement (bounded), then a random
         * moment: the experiment's input, not a synchronisation. */
        struct pollfd pfd = {fds[0], POLLIN, 0};
        cr_assert_gt(poll(&pfd, 1, 30000), 0, "the child acknowledges writes");
        usleep((useconds_t)(reel_test_rand(&seed) % 40000));
        kill(pid, SIGKILL);
        cr_assert_eq(waitpid(pid, NULL, 0), pid);
        uint64_t acked = 0;
        int64_t max = drain_acks(fds[0], &acked);
        close(fds[0]);
        total_acked += acked;
        cr_assert_eq(reel_engine_open(dir, NULL, &e, err, sizeof(err)), 0, "round %d: %s", round, err);
        cr_assert_gt((int64_t)reel_log_end(reel_engine_log(e)), max,
                     "round %d: every acknowledged write is in the log", round);
        cr_assert_eq(reel_views_applied(reel_engine_views(e)), reel_log_end(reel_engine_log(e)),
                     "round %d: the views caught up", round);
        char tag[16];
        snprintf(tag, sizeof(tag), "kill%d", round);
        expect_views_equal_replay(e, tag);
        reel_engine_close(e);
    }
    cr_log_info("kill -9: 8 rounds, %lu acknowledged writes checked", (unsigned long)total_acked);
    cr_assert_gt(total_acked, 0);
}
