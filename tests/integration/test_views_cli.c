/*
 * test_views_cli.c: `reel rebuild`, `reel replay` and `reel views-hash`,
 * run as the real binary ($REEL_BIN/reel) on a data directory.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/common.h"
#include "engine/datadir.h"
#include "engine/event.h"
#include "engine/log.h"
#include "engine/replay.h"
#include "engine/views.h"
#include "tests/harness.h"

static char data[PATH_MAX];
static char log_dir[PATH_MAX + 16];

static void setup(void)
{
    reel_test_tmpdir(data, sizeof(data), "viewscli");
    snprintf(log_dir, sizeof(log_dir), "%s/" REEL_DATA_LOG_SUBDIR, data);
}

static void teardown(void)
{
    reel_test_rmtree(data);
}

TestSuite(views_cli, .init = setup, .fini = teardown, .timeout = 120);

/* Runs reel with the arguments (NULL-terminated); stdout into out. */
static int run_reel(char *out, size_t cap, const char *first, ...)
{
    const char *argv[16];
    char bin[PATH_MAX], path[PATH_MAX + 16];
    const char *base = getenv("REEL_BIN");
    va_list ap;
    int argc = 1, ws;
    snprintf(bin, sizeof(bin), "%s/reel", base && base[0] ? base : "build");
    snprintf(path, sizeof(path), "%s/out.txt", data);
    argv[0] = bin;
    va_start(ap, first);
    for (const char *a = first; a != NULL && argc < 15; a = va_arg(ap, const char *))
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || dup2(fd, 1) < 0)
            _exit(127);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    cr_assert_eq(waitpid(pid, &ws, 0), pid);
    uint8_t *text;
    size_t len;
    cr_assert_eq(reel_test_read_file(path, &text, &len), 0);
    len = len < cap - 1 ? len : cap - 1;
    memcpy(out, text, len);
    out[len] = '\0';
    free(text);
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
}

/* Time of event i in make_log's log: 10 events a second from 2026-01-01
 * 00:00:00 UTC (1767225600000 ms). */
#define T0_MS 1767225600000ull
static uint64_t event_time_ms(uint64_t i)
{
    return T0_MS + (i / 10) * 1000;
}

/* 300 events: users, follows and likes. */
static void make_log(void)
{
    reel_log_t *log;
    uint8_t buf[512];
    cr_assert_eq(reel_log_open(log_dir, NULL, &log, NULL, 0), 0);
    for (uint64_t i = 0; i < 300; i++) {
        char h[16];
        int len = snprintf(h, sizeof(h), "u%lu", (unsigned long)i + 1);
        reel_event_t ev = {.type = REEL_EV_USER_CREATED, .user = i + 1, .handle = {h, (uint32_t)len}};
        if (i >= 100)
            ev = (reel_event_t){.type = REEL_EV_FOLLOW_CREATED, .user = 1 + i % 100,
                                .target = 1 + (i * 7) % 100};
        int n = reel_event_encode(&ev, buf, sizeof(buf));
        reel_log_entry_t ent = {ev.type, (uint32_t)n, buf};
        cr_assert_eq(reel_log_append_group(log, &ent, 1, event_time_ms(i), NULL), 0);
    }
    cr_assert_eq(reel_log_close(log), 0);
}

/* The hash reel_replay gives in-process for events [0, to). */
static void hash_in_process(uint64_t to, char hex[40])
{
    char vdir[PATH_MAX + 32];
    reel_log_t *log;
    reel_views_t *v;
    uint8_t h[16];
    reel_log_options_t o = {.read_only = true};
    snprintf(vdir, sizeof(vdir), "%s/inproc-%lu", data, (unsigned long)to);
    cr_assert_eq(reel_log_open(log_dir, &o, &log, NULL, 0), 0);
    cr_assert_eq(reel_views_open(vdir, &v), 0);
    cr_assert_eq(reel_replay(log, v, to, NULL, NULL, NULL, 0), 0);
    cr_assert_eq(reel_views_hash(v, h), 0);
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
    reel_views_close(v);
    reel_log_close(log);
}

Test(views_cli, rebuild_and_views_hash_agree_with_the_engine)
{
    char out[512], want[40], into[PATH_MAX + 16];
    make_log();
    hash_in_process(UINT64_MAX, want);
    cr_assert_eq(run_reel(out, sizeof(out), "rebuild", "--data", data, NULL), 0);
    cr_assert(strncmp(out, want, 32) == 0 && strstr(out, "applied=300"), "%s vs %s", out, want);
    cr_assert_eq(run_reel(out, sizeof(out), "views-hash", "--data", data, NULL), 0);
    cr_assert(strncmp(out, want, 32) == 0, "%s", out);
    /* A rebuild of rebuilt views gives them again. */
    cr_assert_eq(run_reel(out, sizeof(out), "rebuild", "--data", data, NULL), 0);
    cr_assert(strncmp(out, want, 32) == 0, "%s", out);
    /* replay --to: the views before event 150, in a new directory. */
    hash_in_process(150, want);
    snprintf(into, sizeof(into), "%s/past", data);
    cr_assert_eq(run_reel(out, sizeof(out), "replay", "--data", data, "--to", "150", "--into",
                          into, NULL), 0);
    cr_assert(strncmp(out, want, 32) == 0 && strstr(out, "applied=150"), "%s", out);
    cr_assert_eq(run_reel(out, sizeof(out), "views-hash", "--into", into, NULL), 0);
    cr_assert(strncmp(out, want, 32) == 0, "%s", out);
    /* Never over an existing directory with content. */
    cr_assert_eq(run_reel(out, sizeof(out), "replay", "--data", data, "--to", "10", "--into",
                          into, NULL), 2);
}

/* replay --at TIME: every event of time <= TIME, given in ms or as a UTC
 * date; events 0..9 are in the first second, so 00:00:00Z covers them. */
Test(views_cli, replay_at_a_time)
{
    char out[512], want[40], into[PATH_MAX + 16], at[32];
    make_log();
    hash_in_process(150, want);
    snprintf(at, sizeof(at), "%llu", (unsigned long long)event_time_ms(149));
    snprintf(into, sizeof(into), "%s/at-ms", data);
    cr_assert_eq(run_reel(out, sizeof(out), "replay", "--data", data, "--at", at, "--into", into,
                          NULL), 0);
    cr_assert(strncmp(out, want, 32) == 0 && strstr(out, "applied=150"), "%s", out);
    hash_in_process(10, want);
    snprintf(into, sizeof(into), "%s/at-date", data);
    cr_assert_eq(run_reel(out, sizeof(out), "replay", "--data", data, "--at",
                          "2026-01-01T00:00:00Z", "--into", into, NULL), 0);
    cr_assert(strncmp(out, want, 32) == 0 && strstr(out, "applied=10"), "%s", out);
    /* Before the first event: empty views; after the last: all of them. */
    snprintf(into, sizeof(into), "%s/before", data);
    cr_assert_eq(run_reel(out, sizeof(out), "replay", "--data", data, "--at", "1000", "--into",
                          into, NULL), 0);
    cr_assert(strstr(out, "applied=0"), "%s", out);
    snprintf(into, sizeof(into), "%s/after", data);
    cr_assert_eq(run_reel(out, sizeof(out), "replay", "--data", data, "--at",
                          "2030-01-01T00:00:00Z", "--into", into, NULL), 0);
    cr_assert(strstr(out, "applied=300"), "%s", out);
    /* --to and --at together, or a bad time: refused. */
    cr_assert_eq(run_reel(out, sizeof(out), "replay", "--data", data, "--at", "5", "--to", "5",
                          "--into", into, NULL), 2);
    cr_assert_eq(run_reel(out, sizeof(out), "replay", "--data", data, "--at", "yesterday",
                          "--into", into, NULL), 2);
}

Test(views_cli, rebuild_refuses_while_the_log_has_a_writer)
{
    char out[256];
    reel_log_t *log;
    make_log();
    cr_assert_eq(reel_log_open(log_dir, NULL, &log, NULL, 0), 0);
    cr_assert_eq(run_reel(out, sizeof(out), "rebuild", "--data", data, NULL), 2);
    reel_log_close(log);
    cr_assert_eq(run_reel(out, sizeof(out), "rebuild", "--data", data, NULL), 0);
}

Test(views_cli, bad_arguments_exit_2)
{
    char out[256], absent[PATH_MAX + 16];
    snprintf(absent, sizeof(absent), "%s/absent", data);
    cr_assert_eq(run_reel(out, sizeof(out), "replay", "--data", data, NULL), 2);
    cr_assert_eq(run_reel(out, sizeof(out), "replay", "--to", "x1", "--into", absent, NULL), 2);
    cr_assert_eq(run_reel(out, sizeof(out), "views-hash", "--data", absent, NULL), 2);
    cr_assert_eq(run_reel(out, sizeof(out), "rebuild", "--bogus", NULL), 2);
}

/* Bad input gets a message naming the problem, and changes nothing: an
 * option a command does not take, --to past the end, a data directory
 * without a log. Neither replay's --into nor a log directory is left
 * behind. */
Test(views_cli, bad_input_is_named_and_changes_nothing)
{
    char into[PATH_MAX + 16], nolog[PATH_MAX + 16], logs[PATH_MAX + 32];
    struct stat st;
    make_log();
    snprintf(into, sizeof(into), "%s/never", data);
    snprintf(nolog, sizeof(nolog), "%s/nolog", data);
    snprintf(logs, sizeof(logs), "%s/log", nolog);
    cr_assert_eq(mkdir(nolog, 0755), 0);
    const struct {
        const char *args[8];
        const char *says;
    } cases[] = {
        {{"rebuild", "--data", data, "--to", "5"}, "--to is not an option of reel rebuild"},
        {{"rebuild", "--data", data, "--into", into}, "--into is not an option"},
        {{"views-hash", "--data", data, "--to", "5"}, "--to is not an option"},
        {{"views-hash", "--data", data, "--at", "5"}, "--at is not an option"},
        {{"replay", "--data", data, "--to", "301", "--into", into},
         "--to 301 is past the end of the log (300 events"},
        {{"replay", "--data", nolog, "--to", "1", "--into", into}, "No such file"},
        {{"rebuild", "--data", nolog}, "no log there"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *const *a = cases[i].args;
        reel_test_run_t r = reel_test_reel_run(data, a[0], a[1], a[2], a[3], a[4], a[5], a[6],
                                               NULL);
        cr_assert_eq(r.status, 2, "case %zu: %s", i, r.err);
        cr_assert(strstr(r.err, cases[i].says) != NULL, "case %zu: %s", i, r.err);
        cr_assert_eq(r.out[0], '\0', "case %zu printed %s", i, r.out);
        reel_test_run_free(&r);
        cr_assert_neq(stat(into, &st), 0, "case %zu made %s", i, into);
        cr_assert_neq(stat(logs, &st), 0, "case %zu made %s", i, logs);
    }
    /* --to at the end is the whole log. */
    char out[512];
    cr_assert_eq(run_reel(out, sizeof(out), "replay", "--data", data, "--to", "300", "--into",
                          into, NULL), 0);
    cr_assert(strstr(out, "applied=300") != NULL, "%s", out);
}

/* rebuild and replay draw the shared progress line (tools/tool_util.h)
 * on a terminal: forced with REEL_PROGRESS=1, it ends at 100% with the
 * rate; on a file (the default here) there is none. */
Test(views_cli, progress_line_with_rate_and_time_left)
{
    char into[PATH_MAX + 16];
    make_log();
    for (int forced = 0; forced < 2; forced++) {
        if (forced)
            setenv("REEL_PROGRESS", "1", 1);
        snprintf(into, sizeof(into), "%s/p%d", data, forced);
        reel_test_run_t r = reel_test_reel_run(data, "replay", "--data", data, "--to", "200",
                                               "--into", into, NULL);
        cr_assert_eq(r.status, 0, "%s", r.err);
        if (forced)
            cr_assert(strstr(r.err, "\r  200 / 200 events (100%), ") != NULL &&
                          strstr(r.err, "events/s, 0 s left") != NULL, "%s", r.err);
        else
            cr_assert(strchr(r.err, '\r') == NULL, "drew on a file: %s", r.err);
        reel_test_run_free(&r);
        r = reel_test_reel_run(data, "rebuild", "--data", data, NULL);
        cr_assert_eq(r.status, 0, "%s", r.err);
        if (forced)
            cr_assert(strstr(r.err, "\r  300 / 300 events (100%), ") != NULL, "%s", r.err);
        else
            cr_assert(strchr(r.err, '\r') == NULL, "drew on a file: %s", r.err);
        reel_test_run_free(&r);
    }
    unsetenv("REEL_PROGRESS");
}
