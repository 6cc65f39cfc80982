/*
 * test_log.c: the log's contract (engine/log.h) on real files: appends,
 * reads from every offset, rollover and compression, recovery of torn
 * tails, refusal of corruption, the lock. Runs on the backend that REEL_IO
 * names (the Makefile runs it on both).
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/common.h"
#include "engine/log.h"
#include "engine/segment.h"
#include "tests/harness.h"

static char dir[PATH_MAX];

static void setup(void)
{
    reel_test_tmpdir(dir, sizeof(dir), "log");
}

static void teardown(void)
{
    reel_test_rmtree(dir);
}

TestSuite(log, .init = setup, .fini = teardown, .timeout = 60);

static reel_log_t *open_log(uint64_t segment_size, bool no_compress)
{
    reel_log_options_t o = {.segment_size = segment_size, .no_compress = no_compress};
    reel_log_t *log;
    char err[256];
    int rc = reel_log_open(dir, &o, &log, err, sizeof(err));
    cr_assert_eq(rc, 0, "open: %s (%s)", reel_strerror(rc), err);
    return log;
}

/* Payload of record i: deterministic, of varying length (0..600 bytes). */
static uint32_t payload_for(uint64_t i, uint8_t *buf)
{
    uint64_t st = i * 7919 + 1;
    uint32_t len = (uint32_t)(reel_test_rand(&st) % 601);
    for (uint32_t k = 0; k < len; k++)
        buf[k] = (uint8_t)(i + k * 31);
    return len;
}

static void append_n(reel_log_t *log, uint64_t from, uint64_t n)
{
    uint8_t buf[1024];
    for (uint64_t i = from; i < from + n; i++) {
        uint64_t off;
        uint32_t len = payload_for(i, buf);
        int rc = reel_log_append(log, (uint16_t)(1 + i % 30), buf, len, &off);
        cr_assert_eq(rc, 0, "append %lu: %s", (unsigned long)i, reel_strerror(rc));
        cr_assert_eq(off, i);
    }
}

/* Reads [from, end) and checks every record against payload_for. */
static void check_range(reel_log_t *log, uint64_t from, uint64_t end)
{
    reel_log_iter_t *it;
    reel_record_t rec;
    uint8_t buf[1024];
    cr_assert_eq(reel_log_iter_open(log, from, &it), 0);
    for (uint64_t i = from; i < end; i++) {
        int rc = reel_log_iter_next(it, &rec);
        cr_assert_eq(rc, 0, "read %lu: %s", (unsigned long)i, reel_strerror(rc));
        cr_assert_eq(rec.offset, i);
        uint32_t len = payload_for(i, buf);
        cr_assert_eq(rec.length, len, "length at %lu", (unsigned long)i);
        cr_assert_eq(rec.type, 1 + i % 30);
        cr_assert(memcmp(rec.payload, buf, len) == 0, "payload at %lu", (unsigned long)i);
    }
    cr_assert_eq(reel_log_iter_next(it, &rec), REEL_EEND);
    reel_log_iter_close(it);
}

Test(log, empty_log_has_no_records)
{
    reel_log_t *log = open_log(0, false);
    reel_log_iter_t *it;
    reel_record_t rec;
    cr_assert_eq(reel_log_end(log), 0);
    cr_assert_eq(reel_log_iter_open(log, 0, &it), 0);
    cr_assert_eq(reel_log_iter_next(it, &rec), REEL_EEND);
    reel_log_iter_close(it);
    cr_assert_eq(reel_log_close(log), 0);
}

Test(log, append_read_reopen)
{
    reel_log_t *log = open_log(256 << 10, false);
    append_n(log, 0, 500);
    cr_assert_eq(reel_log_end(log), 500);
    check_range(log, 0, 500);
    cr_assert_eq(reel_log_close(log), 0);
    log = open_log(256 << 10, false);
    cr_assert_eq(reel_log_end(log), 500);
    check_range(log, 0, 500);
    append_n(log, 500, 100);
    check_range(log, 0, 600);
    cr_assert_eq(reel_log_close(log), 0);
}

Test(log, rollover_compress_and_read_from_every_offset)
{
    reel_log_t *log = open_log(64 << 10, false);
    append_n(log, 0, 1500); /* ~480 KiB: several segments */
    reel_log_stats_t st;
    reel_log_stats(log, &st);
    cr_assert_gt(st.segments, 3);
    cr_assert_eq(reel_log_seal(log), 0);
    for (uint64_t from = 0; from < 1500; from += 37)
        check_range(log, from, 1500);
    append_n(log, 1500, 10);
    cr_assert_eq(reel_log_close(log), 0);
    log = open_log(64 << 10, false);
    check_range(log, 0, 1510);
    check_range(log, 1499, 1510);
    cr_assert_eq(reel_log_close(log), 0);
}

Test(log, uncompressed_sealed_segments_read_the_same)
{
    reel_log_t *log = open_log(64 << 10, true);
    append_n(log, 0, 800);
    cr_assert_eq(reel_log_seal(log), 0);
    check_range(log, 0, 800);
    check_range(log, 413, 800);
    cr_assert_eq(reel_log_close(log), 0);
}

Test(log, group_is_contiguous_and_time_is_monotonic)
{
    reel_log_t *log = open_log(0, false);
    reel_log_entry_t e[3] = {{1, 3, "abc"}, {2, 0, NULL}, {3, 2, "zz"}};
    uint64_t first;
    cr_assert_eq(reel_log_append_group(log, e, 3, 5000, &first), 0);
    cr_assert_eq(first, 0);
    cr_assert_eq(reel_log_append_group(log, e, 3, 4000, &first), 0); /* earlier time */
    cr_assert_eq(first, 3);
    reel_log_iter_t *it;
    reel_record_t rec;
    uint64_t last_time = 0;
    cr_assert_eq(reel_log_iter_open(log, 0, &it), 0);
    for (int i = 0; i < 6; i++) {
        cr_assert_eq(reel_log_iter_next(it, &rec), 0);
        cr_assert_eq(rec.type, 1 + i % 3);
        cr_assert_geq(rec.time_ms, last_time, "time never goes back");
        cr_assert_eq(rec.flags & REEL_RECORD_F_GROUP_CONT, i % 3 == 2 ? 0 : REEL_RECORD_F_GROUP_CONT);
        last_time = rec.time_ms;
    }
    cr_assert_eq(last_time, 5000);
    reel_log_iter_close(it);
    reel_log_close(log);
}

Test(log, bad_requests_are_refused_and_change_nothing)
{
    reel_log_t *log = open_log(64 << 10, false);
    static uint8_t big[128 << 10];
    reel_log_entry_t zero_type = {0, 1, "x"};
    cr_assert_eq(reel_log_append_group(log, &zero_type, 1, 0, NULL), REEL_EUSAGE);
    cr_assert_eq(reel_log_append(log, 1, big, sizeof(big), NULL), REEL_ETOOBIG);
    cr_assert_eq(reel_log_append(log, 1, big, REEL_RECORD_PAYLOAD_MAX + 1, NULL), REEL_ETOOBIG);
    cr_assert_eq(reel_log_append_group(log, &zero_type, 0, 0, NULL), REEL_EUSAGE);
    cr_assert_eq(reel_log_end(log), 0);
    reel_log_close(log);
}

Test(log, second_writer_is_locked_out_reader_is_not)
{
    reel_log_t *log = open_log(0, false);
    append_n(log, 0, 10);
    reel_log_t *other;
    char err[256];
    reel_log_options_t o = {0};
    cr_assert_eq(reel_log_open(dir, &o, &other, err, sizeof(err)), REEL_ELOCKED);
    cr_assert(strstr(err, "another process") != NULL, "%s", err);
    o.read_only = true;
    cr_assert_eq(reel_log_open(dir, &o, &other, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(reel_log_end(other), 10);
    check_range(other, 0, 10);
    cr_assert_eq(reel_log_append(other, 1, "x", 1, NULL), REEL_ERDONLY);
    reel_log_close(other);
    reel_log_close(log);
}

/* Async appends from several threads, many in flight each. */
typedef struct producer {
    reel_log_t *log;
    int id;
    uint64_t acked;
    uint64_t last_offset;
    int errors;
} producer_t;

static pthread_mutex_t prod_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t prod_cv = PTHREAD_COND_INITIALIZER;

static void prod_cb(reel_log_append_req_t *req, int status)
{
    producer_t *p = req->data;
    pthread_mutex_lock(&prod_mu);
    if (status != 0 || (p->acked > 0 && req->first_offset <= p->last_offset))
        p->errors++;
    p->last_offset = req->first_offset;
    p->acked++;
    pthread_cond_broadcast(&prod_cv);
    pthread_mutex_unlock(&prod_mu);
}

static void *producer_main(void *arg)
{
    producer_t *p = arg;
    enum { N = 2000 };
    static reel_log_entry_t entry = {7, 8, "payload!"};
    reel_log_append_req_t *reqs = calloc(N, sizeof(*reqs));
    for (int i = 0; i < N; i++) {
        reqs[i] = (reel_log_append_req_t){.entries = &entry, .count = 1, .cb = prod_cb, .data = p};
        int rc;
        while ((rc = reel_log_submit(p->log, &reqs[i])) == REEL_EFULL)
            sched_yield();
        cr_assert_eq(rc, 0);
    }
    pthread_mutex_lock(&prod_mu);
    while (p->acked < N)
        pthread_cond_wait(&prod_cv, &prod_mu);
    pthread_mutex_unlock(&prod_mu);
    free(reqs);
    return NULL;
}

Test(log, concurrent_async_producers_get_dense_ordered_offsets)
{
    reel_log_t *log = open_log(256 << 10, false);
    producer_t p[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        p[i] = (producer_t){log, i, 0, 0, 0};
        pthread_create(&th[i], NULL, producer_main, &p[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(p[i].errors, 0);
    }
    cr_assert_eq(reel_log_end(log), 8000);
    reel_log_stats_t st;
    reel_log_stats(log, &st);
    cr_assert_lt(st.batches, 8000, "group commit batched some appends");
    reel_log_close(log);
    log = open_log(256 << 10, false);
    cr_assert_eq(reel_log_end(log), 8000);
    reel_log_close(log);
}

/* A tail reader sees the end, waits, and reads what is appended next. */
static void *late_appender(void *arg)
{
    reel_log_t *log = arg;
    append_n(log, 3, 2);
    return NULL;
}

Test(log, tailing_the_live_end)
{
    reel_log_t *log = open_log(0, false);
    append_n(log, 0, 3);
    reel_log_iter_t *it;
    reel_record_t rec;
    cr_assert_eq(reel_log_iter_open(log, 0, &it), 0);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(reel_log_iter_next(it, &rec), 0);
    cr_assert_eq(reel_log_iter_next(it, &rec), REEL_EEND, "at the live end");
    cr_assert_eq(reel_log_wait(log, 3, 1), REEL_EEND, "nothing new yet: the wait times out");
    pthread_t th;
    pthread_create(&th, NULL, late_appender, log);
    cr_assert_eq(reel_log_wait(log, 4, 30000), 0, "woken by the appends");
    for (uint64_t i = 3; i < 5; i++) {
        cr_assert_eq(reel_log_iter_next(it, &rec), 0);
        cr_assert_eq(rec.offset, i);
    }
    cr_assert_eq(reel_log_iter_next(it, &rec), REEL_EEND);
    pthread_join(th, NULL);
    reel_log_iter_close(it);
    reel_log_close(log);
}
