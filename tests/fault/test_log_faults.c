/*
 * test_log_faults.c: the log on a storage layer that fails on purpose
 * (engine/io_fault.h).
 *
 * The central test cuts the power at every write-type operation of a
 * scripted workload (open with recovery, appends, groups, rollovers,
 * compression, close), in three crash models (unsynced writes lost, kept or
 * lost per 512-byte sector, torn sectors), and checks after each that the
 * reopened log holds every acknowledged record, in order, byte for byte,
 * and nothing that was not appended: a prefix of the submitted records,
 * whole groups only. The others check failures: a failed write or sync is
 * sticky, a refusal (no space at rollover, a read-only file system) holds
 * the log until resumed, a short write, and a disk that
 * drops a write (detected as corruption, not skipped).
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/common.h"
#include "engine/io_fault.h"
#include "engine/log.h"
#include "tests/harness.h"

static char dir[PATH_MAX];

static void setup(void)
{
    reel_test_tmpdir(dir, sizeof(dir), "fault");
}

static void teardown(void)
{
    reel_test_rmtree(dir);
}

TestSuite(log_faults, .init = setup, .fini = teardown, .timeout = 300);

/* The scripted workload: record i has a payload derived from i; records
 * are appended singly or in groups of 3 (a group starts where i % 7 == 5). */
enum { PHASE1 = 20, TOTAL = 90 };

static uint32_t payload(uint64_t i, uint8_t *buf)
{
    uint32_t len = (uint32_t)((i * 131) % 900);
    for (uint32_t k = 0; k < len; k++)
        buf[k] = (uint8_t)(i * 7 + k);
    return len;
}

static int open_with(reel_io_t *io, bool no_compress, reel_log_t **log)
{
    reel_log_options_t o = {.segment_size = 64 << 10, .io = io, .no_compress = no_compress};
    return reel_log_open(dir, &o, log, NULL, 0);
}

/* Appends records [from, to); returns how many were acknowledged before the
 * first failure (all of them when none failed). */
static uint64_t run_appends(reel_log_t *log, uint64_t from, uint64_t to, int *err)
{
    static uint8_t bufs[3][1024];
    uint64_t i = from;
    *err = 0;
    while (i < to) {
        uint32_t n = (i % 7 == 5 && i + 3 <= to) ? 3 : 1;
        reel_log_entry_t e[3];
        for (uint32_t k = 0; k < n; k++)
            e[k] = (reel_log_entry_t){(uint16_t)(1 + (i + k) % 9), payload(i + k, bufs[k]), bufs[k]};
        uint64_t first;
        int rc = reel_log_append_group(log, e, n, 0, &first);
        if (rc != 0) {
            *err = rc;
            return i;
        }
        cr_assert_eq(first, i, "offsets are dense");
        i += n;
        if (i == from + 40) {
            rc = reel_log_seal(log); /* rollover plus compression mid-run */
            if (rc != 0) {
                *err = rc;
                return i;
            }
        }
    }
    return i;
}

static void list_dir(void)
{
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof(cmd), "ls -la %s >&2", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "ls failed\n");
}

/* The log on the plain backend must hold records [0, n) for some n with
 * acked <= n <= submitted, whole groups, exact payloads. */
static uint64_t check_log(uint64_t acked, uint64_t submitted, const char *ctx)
{
    reel_log_t *log;
    char err[512];
    reel_log_options_t o = {.segment_size = 64 << 10, .io_kind = REEL_IO_SYNC};
    int rc = reel_log_open(dir, &o, &log, err, sizeof(err));
    if (rc != 0)
        list_dir(); /* what the crash left, for the failure message */
    cr_assert_eq(rc, 0, "%s: reopen: %s: %s", ctx, reel_strerror(rc), err);
    uint64_t end = reel_log_end(log);
    cr_assert_geq(end, acked, "%s: every acknowledged record survives (end %lu, acked %lu)", ctx,
                  (unsigned long)end, (unsigned long)acked);
    cr_assert_leq(end, submitted, "%s: nothing that was not appended", ctx);
    reel_log_iter_t *it;
    reel_record_t rec;
    uint8_t buf[1024];
    cr_assert_eq(reel_log_iter_open(log, 0, &it), 0);
    for (uint64_t i = 0; i < end; i++) {
        rc = reel_log_iter_next(it, &rec);
        cr_assert_eq(rc, 0, "%s: read %lu: %s", ctx, (unsigned long)i, reel_strerror(rc));
        uint32_t len = payload(i, buf);
        cr_assert_eq(rec.length, len, "%s: length of %lu", ctx, (unsigned long)i);
        cr_assert(memcmp(rec.payload, buf, len) == 0, "%s: payload of %lu", ctx, (unsigned long)i);
    }
    cr_assert_eq(reel_log_iter_next(it, &rec), REEL_EEND);
    if (end > 0) /* whole groups: the last record ends its group */
        cr_assert_eq(rec.flags & REEL_RECORD_F_GROUP_CONT, 0, "%s: a partial group", ctx);
    reel_log_iter_close(it);
    cr_assert_eq(reel_log_close(log), 0);
    return end;
}

/* Phase 1 without faults: a log with PHASE1 records to recover. */
static void make_base(void)
{
    reel_log_t *log;
    int err;
    cr_assert_eq(open_with(NULL, false, &log), 0);
    cr_assert_eq(run_appends(log, 0, PHASE1, &err), PHASE1);
    cr_assert_eq(reel_log_close(log), 0);
}

/* One run of phase 2 with a power cut armed before operation `op`. Returns
 * whether the crash happened (false: the workload finished first). */
static bool crash_run(uint64_t op, reel_fault_crash_mode_t mode, uint64_t seed)
{
    reel_io_t *inner;
    reel_fault_io_t *fault;
    reel_log_t *log = NULL;
    reel_fault_stats_t st;
    char ctx[96];
    int err = 0;
    uint64_t acked = PHASE1;
    cr_assert_eq(reel_io_create(REEL_IO_AUTO, &inner), 0); /* REEL_IO picks it */
    cr_assert_eq(reel_io_fault_create(inner, &fault), 0);
    cr_assert_eq(reel_io_fault_crash_at(fault, op, seed, mode), 0);
    if (open_with(reel_io_fault_io(fault), false, &log) == 0) {
        acked = run_appends(log, PHASE1, TOTAL, &err);
        reel_log_close(log);
    }
    reel_io_fault_stats(fault, &st);
    reel_io_fault_destroy(fault);
    reel_io_destroy(inner);
    snprintf(ctx, sizeof(ctx), "crash before op %lu, mode %d, seed %lu", (unsigned long)op,
             (int)mode, (unsigned long)seed);
    cr_assert_eq(st.crash_err, 0, "%s: rollback failed", ctx);
    /* Bring the log back to the full workload length for the next run. */
    uint64_t end = check_log(acked, TOTAL, ctx);
    if (end < TOTAL) {
        cr_assert_eq(open_with(NULL, false, &log), 0);
        uint64_t done = run_appends(log, end, TOTAL, &err);
        cr_assert_eq(done, TOTAL, "%s: appends after recovery: %s", ctx, reel_strerror(err));
        reel_log_close(log);
    }
    return st.crashed != 0;
}

static void power_cut_everywhere(reel_fault_crash_mode_t mode)
{
    uint64_t runs = 0;
    make_base();
    /* The log grows back to TOTAL after every run; remove it to restart
     * each run from the same base, so each op number means the same step. */
    for (uint64_t op = 1;; op++, runs++) {
        reel_test_rmtree(dir);
        cr_assert_eq(mkdir(dir, 0755), 0);
        make_base();
        if (!crash_run(op, mode, op * 2654435761u))
            break;
        cr_assert_lt(op, 5000, "the workload ends");
    }
    cr_log_info("mode %d: power cut at each of %lu operations", (int)mode, (unsigned long)runs);
    cr_assert_gt(runs, 50, "the workload has many crash points");
}

Test(log_faults, power_cut_at_every_write_losing_unsynced)
{
    power_cut_everywhere(REEL_FAULT_CRASH_LOSE_UNSYNCED);
}

Test(log_faults, power_cut_at_every_write_sector_granular)
{
    power_cut_everywhere(REEL_FAULT_CRASH_SECTORS);
}

Test(log_faults, power_cut_at_every_write_torn_sectors)
{
    power_cut_everywhere(REEL_FAULT_CRASH_TORN);
}

/* A log on a fault backend, for the failure tests. */
typedef struct faulty {
    reel_io_t *inner;
    reel_fault_io_t *fault;
    reel_log_t *log;
} faulty_t;

static void faulty_open(faulty_t *f)
{
    cr_assert_eq(reel_io_create(REEL_IO_AUTO, &f->inner), 0);
    cr_assert_eq(reel_io_fault_create(f->inner, &f->fault), 0);
    cr_assert_eq(open_with(reel_io_fault_io(f->fault), true, &f->log), 0);
}

static void faulty_close(faulty_t *f)
{
    reel_log_close(f->log);
    reel_io_fault_destroy(f->fault);
    reel_io_destroy(f->inner);
}

static int append_one(reel_log_t *log, uint64_t i)
{
    uint8_t buf[1024];
    uint32_t len = payload(i, buf);
    uint64_t off;
    int rc = reel_log_append(log, 1, buf, len, &off);
    if (rc == 0)
        cr_assert_eq(off, i);
    return rc;
}

Test(log_faults, a_failed_sync_is_sticky)
{
    faulty_t f;
    faulty_open(&f);
    for (uint64_t i = 0; i < 5; i++)
        cr_assert_eq(append_one(f.log, i), 0);
    reel_fault_rule_t r = {.ops = REEL_FAULT_OP_WRITE_DURABLE, .action = REEL_FAULT_FAIL_LOSE,
                           .err = EIO, .fire_max = 1};
    cr_assert_geq(reel_io_fault_set(f.fault, &r), 0);
    cr_assert_eq(append_one(f.log, 5), -EIO);
    /* The next sync would succeed, but the log must not trust it. */
    cr_assert_eq(append_one(f.log, 5), -EIO, "sticky");
    cr_assert_eq(reel_log_status(f.log), -EIO);
    cr_assert_eq(reel_log_end(f.log), 5, "nothing acknowledged after the failure");
    faulty_close(&f);
    cr_assert_eq(check_log(5, 5, "after failed sync"), 5);
}

Test(log_faults, a_failed_write_is_sticky_and_named)
{
    faulty_t f;
    faulty_open(&f);
    cr_assert_eq(append_one(f.log, 0), 0);
    reel_fault_rule_t r = {.ops = REEL_FAULT_OP_WRITE_DURABLE, .action = REEL_FAULT_FAIL,
                           .err = EIO};
    cr_assert_geq(reel_io_fault_set(f.fault, &r), 0);
    cr_assert_eq(append_one(f.log, 1), -EIO);
    reel_io_fault_clear(f.fault);
    cr_assert_eq(reel_log_resume(f.log), -EIO, "a resume does not end a failure");
    cr_assert_eq(append_one(f.log, 1), -EIO, "still refused after the disk recovers");
    cr_assert_eq(reel_log_status(f.log), -EIO);
    faulty_close(&f);
    check_log(1, 1, "after failed write");
}

Test(log_faults, a_short_write_fails_and_recovery_cuts_it)
{
    faulty_t f;
    faulty_open(&f);
    for (uint64_t i = 0; i < 3; i++)
        cr_assert_eq(append_one(f.log, i), 0);
    /* A batch of three blocks of which only the first reaches the file
     * (a whole block: O_DIRECT writes whole blocks or nothing). */
    static uint8_t big[3][4000];
    reel_log_entry_t e[3] = {{1, 4000, big[0]}, {1, 4000, big[1]}, {1, 4000, big[2]}};
    reel_fault_rule_t r = {.ops = REEL_FAULT_OP_WRITE_DURABLE, .action = REEL_FAULT_SHORT,
                           .err = EIO, .short_bytes = 4096};
    cr_assert_geq(reel_io_fault_set(f.fault, &r), 0);
    cr_assert_eq(reel_log_append_group(f.log, e, 3, 0, NULL), -EIO);
    faulty_close(&f);
    check_log(3, 3, "after short write");
}

Test(log_faults, no_space_at_rollover_holds_until_resumed)
{
    faulty_t f;
    faulty_open(&f);
    /* Fill the first segment (15 single-record batches of 4 KiB). */
    uint64_t i = 0;
    for (; i < 15; i++)
        cr_assert_eq(append_one(f.log, i), 0);
    /* Preallocation writes zeros (background) or allocates (writer). */
    reel_fault_rule_t r = {.ops = REEL_FAULT_OP_WRITE | REEL_FAULT_OP_TRUNCATE,
                           .action = REEL_FAULT_FAIL, .err = ENOSPC};
    cr_assert_geq(reel_io_fault_set(f.fault, &r), 0);
    /* The spare may be ready; force the need for two new segments. */
    int rc = 0;
    uint64_t tries = 0;
    while (rc == 0 && tries++ < 40)
        if ((rc = append_one(f.log, i)) == 0)
            i++;
    cr_assert_eq(rc, -ENOSPC, "lack of space is reported: %s", reel_strerror(rc));
    cr_assert_eq(reel_log_status(f.log), 0, "and is not sticky");
    cr_assert_eq(reel_log_held(f.log), -ENOSPC, "the log holds");
    reel_io_fault_clear(f.fault); /* space freed */
    cr_assert_eq(append_one(f.log, i), -ENOSPC, "held until the producer resumes");
    cr_assert_eq(reel_log_resume(f.log), 0);
    cr_assert_eq(append_one(f.log, i), 0, "appends resume without a restart");
    i++;
    faulty_close(&f);
    check_log(i, i, "after ENOSPC");
}

/* Async appends: each records its status. */
typedef struct held_req {
    reel_log_append_req_t req;
    reel_log_entry_t entry;
    uint8_t buf[1024];
    int status; /* 1: pending */
} held_req_t;

static pthread_mutex_t held_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t held_cv = PTHREAD_COND_INITIALIZER;

static void held_cb(reel_log_append_req_t *req, int status)
{
    held_req_t *h = req->data;
    pthread_mutex_lock(&held_mu);
    h->status = status;
    pthread_cond_broadcast(&held_cv);
    pthread_mutex_unlock(&held_mu);
}

/* A file system gone read-only: the batch write is refused before any byte
 * lands. The refused batch, everything queued behind it and everything
 * submitted until the producer resumes fail with EROFS; none of it is in
 * the log, and the next append takes the refused batch's offset (dense
 * offsets, an unbroken chain: check_log verifies both). */
Test(log_faults, a_read_only_file_system_holds_and_nothing_lands_after_a_refusal)
{
    faulty_t f;
    faulty_open(&f);
    uint64_t i = 0;
    for (; i < 3; i++)
        cr_assert_eq(append_one(f.log, i), 0);
    reel_fault_rule_t r = {.ops = REEL_FAULT_OP_WRITE_DURABLE, .action = REEL_FAULT_FAIL,
                           .err = EROFS, .fire_max = 1};
    cr_assert_geq(reel_io_fault_set(f.fault, &r), 0);
    static held_req_t h[8];
    for (uint32_t k = 0; k < 8; k++) {
        h[k].entry = (reel_log_entry_t){1, payload(i + k, h[k].buf), h[k].buf};
        h[k].req = (reel_log_append_req_t){.entries = &h[k].entry, .count = 1,
                                           .cb = held_cb, .data = &h[k]};
        h[k].status = 1;
        int rc = reel_log_submit(f.log, &h[k].req);
        if (rc != 0)
            h[k].status = rc; /* refused at once: the log already holds */
    }
    pthread_mutex_lock(&held_mu);
    for (uint32_t k = 0; k < 8; k++)
        while (h[k].status == 1)
            pthread_cond_wait(&held_cv, &held_mu);
    pthread_mutex_unlock(&held_mu);
    for (uint32_t k = 0; k < 8; k++)
        cr_assert_eq(h[k].status, -EROFS, "append %u: %s", k, reel_strerror(h[k].status));
    cr_assert_eq(reel_log_end(f.log), 3, "nothing of the refused appends landed");
    cr_assert_eq(reel_log_status(f.log), 0, "not sticky");
    cr_assert_eq(append_one(f.log, i), -EROFS, "held: the rule is spent, yet no append lands");
    cr_assert_eq(reel_log_resume(f.log), 0);
    cr_assert_eq(append_one(f.log, i), 0, "the refused batch's offset is given again");
    i++;
    faulty_close(&f);
    check_log(i, i, "after EROFS");
}

Test(log_faults, a_dropped_write_is_detected_not_skipped)
{
    faulty_t f;
    faulty_open(&f);
    for (uint64_t i = 0; i < 3; i++)
        cr_assert_eq(append_one(f.log, i), 0);
    /* A disk that acknowledges a write it never did. */
    reel_fault_rule_t r = {.ops = REEL_FAULT_OP_WRITE_DURABLE, .action = REEL_FAULT_DROP,
                           .fire_max = 1};
    cr_assert_geq(reel_io_fault_set(f.fault, &r), 0);
    for (uint64_t i = 3; i < 6; i++)
        cr_assert_eq(append_one(f.log, i), 0);
    faulty_close(&f);
    reel_log_t *log;
    char err[512];
    reel_log_options_t o = {.segment_size = 64 << 10};
    int rc = reel_log_open(dir, &o, &log, err, sizeof(err));
    cr_assert_eq(rc, REEL_ECORRUPT, "a hole before durable records: %s (%s)", reel_strerror(rc), err);
    cr_assert(strstr(err, "offset 3") != NULL, "%s", err);
}
