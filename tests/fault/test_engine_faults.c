/*
 * test_engine_faults.c: the engine (log, views and the on_apply consumer
 * together) under storage faults, through the fault-injecting I/O layer:
 *
 *   - a full disk and a read-only file system: writes answer 503 with the
 *     reason, reads go on, what of a batch reached the log is answered as
 *     judged and is a prefix of it, and once the file system takes writes
 *     again they resume without a restart and nothing is lost;
 *   - a power cut before every numbered write of a scripted workload:
 *     after recovery the log holds exactly a prefix of the workload's
 *     events with every acknowledged one, byte for byte, and the views
 *     equal a replay of that log;
 *   - views deleted, with damaged meta pages or truncated while the engine
 *     is down: the next open says so and rebuilds them from the log.
 *
 * LMDB writes its own files, outside the I/O layer, so a power cut here
 * rolls back the log only; the views are never ahead of the durable log
 * (the engine commits them after the log's sync), and the check that they
 * equal a replay of the recovered log covers the catch-up.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/common.h"
#include "engine/io_fault.h"
#include "engine/reel.h"
#include "tests/harness.h"

static char dir[PATH_MAX], aux[PATH_MAX];

static void setup(void)
{
    reel_test_tmpdir(dir, sizeof(dir), "engfault");
    reel_test_tmpdir(aux, sizeof(aux), "engfault-aux");
}

static void teardown(void)
{
    reel_test_rmtree(dir);
    reel_test_rmtree(aux);
}

TestSuite(engine_faults, .init = setup, .fini = teardown, .timeout = 300);

/* The on_apply consumer: counts events and checks they come in offset
 * order, each once. */
typedef struct consumer {
    pthread_mutex_t mu;
    uint64_t next; /* the offset it expects */
    uint64_t bad;  /* events out of order */
} consumer_t;

static void consume(void *ctx, const reel_event_t *evs, size_t n)
{
    consumer_t *c = ctx;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < n; i++)
        c->bad += evs[i].offset != c->next++;
    pthread_mutex_unlock(&c->mu);
}

typedef struct faulty {
    reel_io_t *inner;
    reel_fault_io_t *fault;
    reel_engine_t *e;
    consumer_t c;
} faulty_t;

static int faulty_open(faulty_t *f, const char *data, uint64_t segment_size)
{
    char err[256];
    memset(f, 0, sizeof(*f));
    pthread_mutex_init(&f->c.mu, NULL);
    cr_assert_eq(reel_io_create(REEL_IO_AUTO, &f->inner), 0);
    cr_assert_eq(reel_io_fault_create(f->inner, &f->fault), 0);
    reel_engine_options_t o = {.trust_client_time = true, .on_apply = consume, .on_apply_ctx = &f->c,
                               .log = {.segment_size = segment_size,
                                       .io = reel_io_fault_io(f->fault)}};
    int rc = reel_engine_open(data, &o, &f->e, err, sizeof(err));
    if (rc == 0) /* what the engine caught up at open does not pass on_apply */
        f->c.next = reel_log_end(reel_engine_log(f->e));
    return rc;
}

static void faulty_close(faulty_t *f)
{
    reel_engine_close(f->e);
    reel_io_fault_destroy(f->fault);
    reel_io_destroy(f->inner);
    pthread_mutex_destroy(&f->c.mu);
}

static reel_cmd_t user_cmd(char *buf, size_t len, const char *tag, uint32_t i)
{
    snprintf(buf, len, "%s%u", tag, i);
    return (reel_cmd_t){.kind = REEL_CMD_USER_CREATE,
                        .args = {.handle = {buf, (uint32_t)strlen(buf)}}};
}

/* The consumer saw exactly the log's events, in order; the views equal a
 * replay of the log. */
static void expect_consistent(faulty_t *f, const char *ctx)
{
    cr_assert_eq(f->c.bad, 0, "%s: on_apply got events out of order", ctx);
    cr_assert_eq(f->c.next, reel_log_end(reel_engine_log(f->e)),
                 "%s: on_apply saw every durable event once (%lu of %lu)", ctx,
                 (unsigned long)f->c.next, (unsigned long)reel_log_end(reel_engine_log(f->e)));
    cr_assert_eq(reel_views_applied(reel_engine_views(f->e)), reel_log_end(reel_engine_log(f->e)),
                 "%s: the views hold every durable event", ctx);
    reel_test_views_equal_replay(f->e, aux);
}

Test(engine_faults, a_read_only_file_system_refuses_writes_until_it_takes_them)
{
    faulty_t f;
    char h[32];
    cr_assert_eq(faulty_open(&f, dir, 256 << 10), 0);
    reel_cmd_t c = user_cmd(h, sizeof(h), "before", 0);
    reel_cmd_result_t a;
    reel_test_cmds_answers(f.e, &c, 1, &a);
    reel_test_expect(a, 201, NULL);
    reel_fault_rule_t r = {.ops = REEL_FAULT_OP_ANY_WRITE, .action = REEL_FAULT_FAIL, .err = EROFS};
    cr_assert_geq(reel_io_fault_set(f.fault, &r), 0);
    reel_cmd_result_t b[3];
    reel_cmd_t cs[3] = {user_cmd(h, sizeof(h), "during", 0), user_cmd(h, sizeof(h), "during", 0),
                        user_cmd(h, sizeof(h), "during", 0)};
    reel_test_cmds_answers(f.e, cs, 3, b);
    for (int i = 0; i < 3; i++) {
        reel_test_expect(b[i], 503, "unavailable");
        cr_assert(strstr(b[i].message, "Read-only file system") != NULL, "the reason: %s",
                  b[i].message);
    }
    bool transient = false;
    cr_assert_eq(reel_engine_status(f.e, &transient), -EROFS);
    cr_assert(transient, "a refusal is not a failure");
    reel_views_txn_t *t;
    reel_user_view_t u;
    cr_assert_eq(reel_engine_read_begin(f.e, &t), 0);
    cr_assert_eq(reel_views_get_user(t, a.id, &u), 0, "reads go on");
    reel_views_read_end(t);
    cr_assert_eq(reel_log_end(reel_engine_log(f.e)), 1, "nothing refused reached the log");
    reel_io_fault_clear(f.fault); /* remounted read-write */
    reel_test_cmds_answers(f.e, cs, 1, b);
    reel_test_expect(b[0], 201, NULL);
    cr_assert_eq(reel_engine_status(f.e, &transient), 0, "writes resumed without a restart");
    expect_consistent(&f, "after EROFS");
    faulty_close(&f);
}

/* A burst of commands that needs new segments while the disk is full: the
 * answers are successes then 503s in submission order (the durable part
 * of a refused batch is a prefix of it, answered as judged), the consumer
 * and the views got exactly the durable events, and once space is freed
 * the refused commands go through. */
Test(engine_faults, a_full_disk_keeps_a_durable_prefix_and_writes_resume)
{
    enum { N = 4000 }; /* ~87 bytes a record: 5 segments of 64 KiB */
    static char handles[N][24];
    static reel_cmd_t cmds[N];
    static reel_cmd_result_t res[N];
    faulty_t f;
    cr_assert_eq(faulty_open(&f, dir, 64 << 10), 0);
    for (uint32_t i = 0; i < N; i++)
        cmds[i] = user_cmd(handles[i], sizeof(handles[i]), "u", i);
    /* Making a segment writes zeros (the background spare) or allocates
     * (the writer; planned as a truncate): both fail for lack of space. A
     * spare made before the rule may still serve one rollover. */
    reel_fault_rule_t r = {.ops = REEL_FAULT_OP_WRITE | REEL_FAULT_OP_TRUNCATE,
                           .action = REEL_FAULT_FAIL, .err = ENOSPC};
    cr_assert_geq(reel_io_fault_set(f.fault, &r), 0);
    reel_test_cmds_answers(f.e, cmds, N, res);
    uint32_t ok = 0;
    while (ok < N && res[ok].status == 201)
        ok++;
    for (uint32_t i = ok; i < N; i++) {
        reel_test_expect(res[i], 503, "unavailable");
        cr_assert(strstr(res[i].message, "No space left") != NULL, "%u: %s", i, res[i].message);
    }
    cr_log_info("full disk: %u of %u commands durable before the refusal", ok, (unsigned)N);
    cr_assert_gt(ok, 0, "a segment's worth went through");
    cr_assert_lt(ok, N, "the disk filled up");
    cr_assert_eq(reel_log_end(reel_engine_log(f.e)), ok, "the log holds exactly the successes");
    for (uint32_t i = 0; i < ok; i++)
        cr_assert_eq(res[i].offset, (int64_t)i);
    expect_consistent(&f, "while the disk is full");
    bool transient = false;
    cr_assert_eq(reel_engine_status(f.e, &transient), -ENOSPC);
    cr_assert(transient);
    reel_io_fault_clear(f.fault); /* space freed */
    reel_test_cmds_answers(f.e, cmds + ok, N - ok, res + ok);
    for (uint32_t i = ok; i < N; i++)
        reel_test_expect(res[i], 201, NULL);
    cr_assert_eq(reel_engine_status(f.e, NULL), 0);
    cr_assert_eq(reel_log_end(reel_engine_log(f.e)), N, "nothing lost, nothing twice");
    expect_consistent(&f, "after space was freed");
    faulty_close(&f);
}

/* ---- power cuts through the engine ---- */

/* The scripted workload: users, follows, posts, likes, views, comments,
 * with client times so that two runs write the same bytes. Submitted in
 * rounds of ROUND commands at once, so batches hold several groups. */
enum { W_USERS = 8, W_CMDS = 150, ROUND = 6 };

/* Long comments, so that the workload's log passes a 64 KiB segment. */
static const char long_text[] =
    "so good " "so good " "so good " "so good " "so good " "so good " "so good " "so good "
    "so good " "so good " "so good " "so good " "so good " "so good " "so good " "so good "
    "so good " "so good " "so good " "so good " "so good " "so good " "so good " "so good "
    "so good " "so good " "so good " "so good " "so good " "so good " "so good " "so good "
    "so good " "so good " "so good " "so good " "so good " "so good " "so good " "so good "
    "so good " "so good " "so good " "so good " "so good " "so good " "so good " "so good "
    "so good " "so good " "so good " "so good " "so good " "so good " "so good " "so good "
    "so good " "so good " "so good " "so good " "so good " "so good " "so good " "so good ";

static void workload(reel_cmd_t *cmds, char handles[][16])
{
    for (uint32_t i = 0; i < W_CMDS; i++) {
        reel_cmd_t *c = &cmds[i];
        memset(c, 0, sizeof(*c));
        c->at = 1700000000000ull + i * 1000u;
        uint64_t a = 1 + i % W_USERS, b = 1 + (i * 5 + 3) % W_USERS, p = 1 + (i * 7) % 12;
        c->args.user = a;
        c->args.target = b;
        c->args.post = p;
        if (i < W_USERS) {
            snprintf(handles[i], 16, "user%u", i);
            c->kind = REEL_CMD_USER_CREATE;
            c->args.handle = (reel_str_t){handles[i], (uint32_t)strlen(handles[i])};
            continue;
        }
        switch (i % 6) {
        case 0: c->kind = REEL_CMD_FOLLOW; break;
        case 1:
        case 4:
            c->kind = REEL_CMD_POST_CREATE;
            c->args.video_uri = (reel_str_t){"v", 1};
            c->args.prompt = (reel_str_t){"a dachshund on a skateboard", 27};
            break;
        case 2: c->kind = REEL_CMD_LIKE; break;
        case 3: c->kind = REEL_CMD_VIEW; c->args.watch_ms = 1500; break;
        default:
            c->kind = REEL_CMD_COMMENT_CREATE;
            c->args.text = (reel_str_t){long_text, sizeof(long_text) - 1};
            break;
        }
    }
}

/* Runs the workload; returns the number of events acknowledged (the
 * end of the last command answered with events before the first 503). */
static uint64_t run_workload(reel_engine_t *e)
{
    static reel_cmd_t cmds[W_CMDS];
    static char handles[W_USERS][16];
    reel_cmd_result_t res[ROUND];
    uint64_t acked = 0;
    bool failed = false;
    workload(cmds, handles);
    for (uint32_t i = 0; i < W_CMDS; i += ROUND) {
        reel_test_cmds_answers(e, cmds + i, ROUND, res);
        for (uint32_t k = 0; k < ROUND; k++) {
            if (res[k].status == 503)
                failed = true;
            else if (!failed && res[k].offset >= 0)
                acked = (uint64_t)res[k].offset + 1;
            cr_assert(res[k].status != 503 || failed);
        }
    }
    return acked;
}

/* Every record of log a below `end` equals log b's: type, time, payload. */
static void expect_same_records(reel_log_t *a, reel_log_t *b, uint64_t end, const char *ctx)
{
    reel_log_iter_t *ia, *ib;
    reel_record_t ra, rb;
    cr_assert_eq(reel_log_iter_open(a, 0, &ia), 0);
    cr_assert_eq(reel_log_iter_open(b, 0, &ib), 0);
    for (uint64_t i = 0; i < end; i++) {
        cr_assert_eq(reel_log_iter_next(ia, &ra), 0, "%s: read %lu", ctx, (unsigned long)i);
        cr_assert_eq(reel_log_iter_next(ib, &rb), 0, "%s: reference %lu", ctx, (unsigned long)i);
        cr_assert(ra.type == rb.type && ra.time_ms == rb.time_ms && ra.length == rb.length &&
                      memcmp(ra.payload, rb.payload, ra.length) == 0,
                  "%s: record %lu differs from the workload's", ctx, (unsigned long)i);
    }
    reel_log_iter_close(ia);
    reel_log_iter_close(ib);
}

/* One run with a power cut armed before op; false when the workload
 * finished first. ref is the engine of a run without faults. */
static bool crash_run(reel_engine_t *ref, uint64_t op, reel_fault_crash_mode_t mode)
{
    char data[PATH_MAX + 16], ctx[96], err[256];
    faulty_t f;
    reel_fault_stats_t st;
    uint64_t acked = 0;
    snprintf(data, sizeof(data), "%s/run", dir);
    snprintf(ctx, sizeof(ctx), "power cut before op %lu, mode %d", (unsigned long)op, (int)mode);
    reel_test_rmtree(data);
    memset(&f, 0, sizeof(f));
    pthread_mutex_init(&f.c.mu, NULL);
    cr_assert_eq(reel_io_create(REEL_IO_AUTO, &f.inner), 0);
    cr_assert_eq(reel_io_fault_create(f.inner, &f.fault), 0);
    cr_assert_eq(reel_io_fault_crash_at(f.fault, op, op * 2654435761u, mode), 0);
    reel_engine_options_t o = {.trust_client_time = true,
                               .log = {.segment_size = 64 << 10, .io = reel_io_fault_io(f.fault)}};
    if (reel_engine_open(data, &o, &f.e, err, sizeof(err)) == 0) {
        acked = run_workload(f.e);
        reel_engine_close(f.e);
    }
    reel_io_fault_stats(f.fault, &st);
    reel_io_fault_destroy(f.fault);
    reel_io_destroy(f.inner);
    pthread_mutex_destroy(&f.c.mu);
    cr_assert_eq(st.crash_err, 0, "%s: rollback failed", ctx);
    /* Recovery on the plain backend. */
    reel_engine_t *e;
    reel_engine_options_t plain = {.trust_client_time = true, .log = {.segment_size = 64 << 10}};
    int rc = reel_engine_open(data, &plain, &e, err, sizeof(err));
    cr_assert_eq(rc, 0, "%s: reopen: %s", ctx, err);
    uint64_t end = reel_log_end(reel_engine_log(e));
    cr_assert_geq(end, acked, "%s: every acknowledged event survives (end %lu, acked %lu)", ctx,
                  (unsigned long)end, (unsigned long)acked);
    cr_assert_leq(end, reel_log_end(reel_engine_log(ref)), "%s: nothing invented", ctx);
    expect_same_records(reel_engine_log(e), reel_engine_log(ref), end, ctx);
    cr_assert_eq(reel_views_applied(reel_engine_views(e)), end, "%s: views caught up", ctx);
    reel_test_views_equal_replay(e, aux);
    reel_engine_close(e);
    return st.crashed != 0;
}

static void power_cut_everywhere(reel_fault_crash_mode_t mode)
{
    char ref_dir[PATH_MAX + 16], err[256];
    reel_engine_t *ref;
    snprintf(ref_dir, sizeof(ref_dir), "%s/ref", aux);
    reel_engine_options_t plain = {.trust_client_time = true, .log = {.segment_size = 64 << 10}};
    cr_assert_eq(reel_engine_open(ref_dir, &plain, &ref, err, sizeof(err)), 0, "%s", err);
    uint64_t total = run_workload(ref);
    cr_assert_eq(total, reel_log_end(reel_engine_log(ref)), "the reference run has no failure");
    uint64_t runs = 0;
    for (uint64_t op = 1;; op++, runs++) {
        if (!crash_run(ref, op, mode))
            break;
        cr_assert_lt(op, 2000, "the workload ends");
    }
    cr_log_info("mode %d: power cut at each of %lu operations", (int)mode, (unsigned long)runs);
    cr_assert_gt(runs, 20, "the workload has many crash points");
    reel_engine_close(ref);
}

Test(engine_faults, power_cut_at_every_write_losing_unsynced)
{
    power_cut_everywhere(REEL_FAULT_CRASH_LOSE_UNSYNCED);
}

Test(engine_faults, power_cut_at_every_write_torn_sectors)
{
    power_cut_everywhere(REEL_FAULT_CRASH_TORN);
}

/* ---- damaged views ---- */

typedef enum damage { VIEWS_DELETED, VIEWS_META_GARBAGE, VIEWS_TRUNCATED } damage_t;

/* A world, its views damaged while the engine is down: the next open says
 * so, rebuilds them from the log, and they hold what they held before. */
static void views_rebuilt_after(damage_t how)
{
    enum { N = 600 };
    static char handles[N][24];
    static reel_cmd_t cmds[N];
    static reel_cmd_result_t res[N];
    char err[256], path[PATH_MAX + 32];
    uint8_t before[16], after[16];
    reel_engine_t *e;
    reel_engine_options_t o = {.log = {.segment_size = 1 << 20}};
    cr_assert_eq(reel_engine_open(dir, &o, &e, err, sizeof(err)), 0, "%s", err);
    for (uint32_t i = 0; i < N; i++)
        cmds[i] = user_cmd(handles[i], sizeof(handles[i]), "v", i);
    reel_test_cmds_answers(e, cmds, N, res);
    for (uint32_t i = 0; i < N; i++)
        reel_test_expect(res[i], 201, NULL);
    cr_assert_eq(reel_views_hash(reel_engine_views(e), before), 0);
    reel_engine_close(e);
    snprintf(path, sizeof(path), "%s/views/data.mdb", dir);
    if (how == VIEWS_DELETED) {
        snprintf(path, sizeof(path), "%s/views", dir);
        reel_test_rmtree(path);
    } else if (how == VIEWS_META_GARBAGE) {
        FILE *fp = fopen(path, "r+b");
        cr_assert_not_null(fp);
        for (int i = 0; i < 8192; i++) /* both meta pages */
            fputc("garbage!"[i % 8], fp);
        fclose(fp);
    } else {
        cr_assert_eq(truncate(path, 16384), 0);
    }
    cr_assert_eq(reel_engine_open(dir, &o, &e, err, sizeof(err)), 0, "damage %d: %s", (int)how, err);
    cr_assert_eq(reel_views_applied(reel_engine_views(e)), reel_log_end(reel_engine_log(e)));
    cr_assert_eq(reel_views_hash(reel_engine_views(e), after), 0);
    cr_assert(memcmp(before, after, 16) == 0, "damage %d: the rebuilt views hold what they held",
              (int)how);
    reel_engine_close(e);
}

Test(engine_faults, deleted_views_are_rebuilt_from_the_log)
{
    views_rebuilt_after(VIEWS_DELETED);
}

Test(engine_faults, views_with_damaged_meta_pages_are_rebuilt_from_the_log)
{
    views_rebuilt_after(VIEWS_META_GARBAGE);
}

Test(engine_faults, truncated_views_are_rebuilt_from_the_log)
{
    views_rebuilt_after(VIEWS_TRUNCATED);
}
