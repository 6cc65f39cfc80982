/*
 * bench_log.c: the `log` benchmark: what the durable log costs against
 * the best hand-written code doing the same I/O on the same disk.
 *
 * Parts (each a --filter name prefix) and their baselines:
 *
 *   append_<size>_k<K>  Durable appends per second, payloads of 64 B, 256 B
 *       and 4 KiB, one producer keeping exactly K = 1, 16, 256 requests in
 *       flight with reel_log_submit(). Baseline: one pwrite of K records
 *       (K * (size + 56) bytes rounded up to 4 KiB) then fdatasync, in a
 *       loop, on a preallocated zero-filled file: a perfect group commit
 *       of exactly K records with no encoding, checksums or threads.
 *       Also the log's average batch (records / batches from its stats).
 *   large_1MiB_k16  Durable MB/s of 1 MiB records, 16 in flight. Baseline:
 *       1 MiB writes of the same bytes with an fdatasync after as many
 *       writes as the log's average batch in that round (same cadence).
 *   sync_append_256B_*  Latency of one synchronous reel_log_append() of a
 *       256 B record at a time: p50 and p99. Baseline: 4 KiB pwrite +
 *       fdatasync. Lower is better; ratio = value / baseline.
 *   read_*  Sequential reads of the whole log with an iterator, page cache
 *       warm, plain and after reel_log_seal() compressed it; and the zstd
 *       ratio on realistic JSON event bodies. Baseline: read() of the same
 *       plain segment files into a buffer.
 *
 * Every baseline file is opened with O_DIRECT when the file system takes
 * it, as the log's segments are, so both sides pay for the same path to
 * the disk. The write parts open the log with no_compress: otherwise the
 * background compressor competes for the CPUs with what is measured;
 * compression has its own line (seal_compress). Every measurement runs
 * ctx->rounds times, log and baseline interleaved, and the median is
 * reported.
 *
 * Checks. Every callback must see status 0 and offsets dense and in
 * submission order; every read must return every offset once, in order.
 * Any failure prints why and the benchmark returns 2.
 */
#include "tools/bench.h"
#include "engine/common.h"
#include "engine/limits.h"
#include "engine/log.h"
#include "engine/record.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BENCH "log"
#define MIB (1ull << 20)
#define ROUNDS_MAX 99u
/* Baseline file: big enough that writes sweep a segment-sized range. */
#define BASE_FILE_BYTES (256ull << 20)
#define BASE_BUF_BYTES (16ull << 20)
/* Latency samples kept per run; a run stops early when full. */
#define LATENCY_SAMPLES_MAX (1u << 20)
/* Realistic events: a record's payload is at most this many bytes. */
#define EVENT_BYTES_MAX 1024u
/* The read log is filled with requests of this many records. */
#define FILL_GROUP 64u
#define FILL_INFLIGHT 16u
#define LARGE_INFLIGHT 16u
#define TYPE_BENCH 1u

_Static_assert(BASE_BUF_BYTES >= 256 * (4096 + REEL_RECORD_HEADER_SIZE) + REEL_BLOCK_SIZE,
               "the baseline buffer holds the largest group");
_Static_assert(BASE_FILE_BYTES % MIB == 0, "the baseline file is whole 1 MiB writes");

/* How long each part runs: --quick or full. */
typedef struct plan {
    uint64_t cell_ns;        /* one timed run of an append cell */
    uint64_t warm_ns;        /* untimed run before a part's rounds: long enough
                              * for the log's background thread to finish the
                              * spare segment it zero-fills after open (64 MiB,
                              * which stalls syncs by 20+ ms meanwhile) */
    uint64_t large_ns;
    uint64_t latency_ns;
    uint64_t read_log_bytes; /* record bytes in the read log */
    uint32_t rounds;
} plan_t;

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "reel bench log: FAILED: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return 2;
}

static double seconds(uint64_t ns)
{
    return (double)ns / 1e9;
}

/* Fills n bytes with a deterministic non-zero pattern (zeros would let a
 * clever disk or compressor cheat). */
static void fill_pattern(uint8_t *p, uint64_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (uint64_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)(x | 1);
    }
}

static int open_log(const char *dir, bool no_compress, reel_log_t **out)
{
    static bool told;
    char err[256];
    reel_log_options_t opts = {.no_compress = no_compress};
    int rc = reel_log_open(dir, &opts, out, err, sizeof(err));
    if (rc < 0)
        return fail("reel_log_open %s: %s", dir, err);
    if (!told) {
        reel_log_stats_t st;
        reel_log_stats(*out, &st);
        fprintf(stderr, "log: io backend %s, segment size %llu MiB\n", st.io_name,
                (unsigned long long)(REEL_SEGMENT_SIZE_DEFAULT / MIB));
        told = true;
    }
    return 0;
}

static int close_log(reel_log_t *log)
{
    int rc = reel_log_close(log);
    return rc < 0 ? fail("reel_log_close: %s", reel_strerror(rc)) : 0;
}

/* ---- Baseline file: preallocated, zero-filled, O_DIRECT when possible. */

typedef struct base_file {
    int fd;
    bool direct;
    uint64_t pos;  /* next write position; wraps to 0 at the end */
    uint8_t *buf;  /* BASE_BUF_BYTES of pattern, block aligned */
} base_file_t;

static int base_zero_fill(base_file_t *f)
{
    memset(f->buf, 0, MIB);
    for (uint64_t pos = 0; pos < BASE_FILE_BYTES; pos += MIB) {
        if (pwrite(f->fd, f->buf, MIB, (off_t)pos) != (ssize_t)MIB)
            return fail("baseline file: zero-fill: %s", strerror(errno));
    }
    if (fsync(f->fd) < 0)
        return fail("baseline file: fsync: %s", strerror(errno));
    fill_pattern(f->buf, BASE_BUF_BYTES, 42);
    return 0;
}

static int base_open(const char *dir, base_file_t *f)
{
    char path[PATH_MAX];
    *f = (base_file_t){.fd = -1};
    snprintf(path, sizeof(path), "%s/baseline.dat", dir);
    if (posix_memalign((void **)&f->buf, REEL_BLOCK_SIZE, BASE_BUF_BYTES) != 0)
        return fail("baseline file: out of memory");
    int flags = O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC;
    f->fd = open(path, flags | O_DIRECT, 0644);
    f->direct = f->fd >= 0;
    if (f->fd < 0)
        f->fd = open(path, flags, 0644);
    if (f->fd < 0)
        return fail("baseline file %s: %s", path, strerror(errno));
    fprintf(stderr, "log: baseline file %s (%llu MiB, %s)\n", path,
            (unsigned long long)(BASE_FILE_BYTES / MIB), f->direct ? "O_DIRECT" : "buffered");
    return base_zero_fill(f);
}

static void base_close(base_file_t *f)
{
    if (f->fd >= 0)
        close(f->fd);
    free(f->buf);
    *f = (base_file_t){.fd = -1};
}

/* Writes len bytes of pattern at the next position, without a sync. */
static int base_write(base_file_t *f, uint64_t len)
{
    REEL_ASSERT(len <= BASE_BUF_BYTES);
    REEL_ASSERT(len % REEL_BLOCK_SIZE == 0);
    if (f->pos + len > BASE_FILE_BYTES)
        f->pos = 0;
    if (pwrite(f->fd, f->buf, len, (off_t)f->pos) != (ssize_t)len)
        return fail("baseline pwrite: %s", strerror(errno));
    f->pos += len;
    return 0;
}

static int base_sync(base_file_t *f)
{
    REEL_ASSERT(f->fd >= 0);
    if (fdatasync(f->fd) < 0)
        return fail("baseline fdatasync: %s", strerror(errno));
    return 0;
}

/* ---- The pipeline: one producer keeps `inflight` requests queued.
 *
 * Request n uses slot n % inflight: callbacks run in offset order, which is
 * submission order with one producer, so slot n % inflight is free exactly
 * when request n - inflight has completed. Callbacks count completions in
 * an atomic and wake the producer at most once per sleep (as uv_async_send
 * coalesces): a wakeup per callback would cost the writer thread a futex
 * call per record and measure the benchmark, not the log. */

typedef struct pipe_slot {
    reel_log_append_req_t req; /* first: a callback's req is its slot */
    reel_log_entry_t *entries; /* `group` of them */
    uint8_t *payload;          /* `group * payload_max` bytes */
} pipe_slot_t;

typedef struct pipe pipe_t;
/* Rewrites a slot's entries and payloads before it is submitted again. */
typedef void (*pipe_fill_fn)(pipe_t *p, pipe_slot_t *slot);

struct pipe {
    reel_log_t *log;
    uint32_t inflight;     /* requests kept in flight */
    uint32_t group;        /* records per request */
    uint32_t payload_max;  /* payload bytes room per record */
    pipe_slot_t *slots;    /* inflight of them; request n uses slot n % inflight */
    pthread_mutex_t mu;    /* with cv: the producer sleeps for a completion */
    pthread_cond_t cv;
    atomic_uint_fast64_t completed; /* requests whose callback ran */
    atomic_bool sleeping;  /* the producer waits on cv: wake it once */
    pipe_fill_fn fill;     /* NULL: resubmit the slot as it is */
    void *fill_arg;
    /* The producer's. */
    uint64_t submitted;    /* requests */
    uint64_t bytes;        /* record bytes (strides) submitted */
    /* The writer thread's (callbacks), read by the producer after a drain. */
    uint64_t next_offset;  /* first offset the next completion must have */
    int error;             /* first bad status or order, 0 if none */
};

/* Callback on the log's writer thread: checks status, order and density. */
static void pipe_cb(reel_log_append_req_t *req, int status)
{
    pipe_t *p = req->data;
    uint64_t completed = atomic_load_explicit(&p->completed, memory_order_relaxed);
    pipe_slot_t *expect = &p->slots[completed % p->inflight];
    if (p->error == 0 && status != 0)
        p->error = status;
    else if (p->error == 0 && (pipe_slot_t *)req != expect)
        p->error = REEL_EUSAGE; /* completed out of submission order */
    else if (p->error == 0 && req->first_offset != p->next_offset)
        p->error = REEL_ECORRUPT; /* offsets not dense */
    p->next_offset = req->first_offset + req->count;
    /* Last touch of req: from here on the producer may reuse the slot. */
    /* seq_cst here and in pipe_wait: each side stores its flag, then reads
     * the other's (Dekker), so one of them must see the other. */
    atomic_store_explicit(&p->completed, completed + 1, memory_order_seq_cst);
    if (atomic_exchange_explicit(&p->sleeping, false, memory_order_seq_cst)) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
}

/* Blocks until at least `count` requests have completed. */
static void pipe_wait(pipe_t *p, uint64_t count)
{
    if (atomic_load_explicit(&p->completed, memory_order_acquire) >= count)
        return;
    pthread_mutex_lock(&p->mu);
    while (atomic_load_explicit(&p->completed, memory_order_acquire) < count) {
        /* Set under mu, so a callback that sees it signals after we wait. */
        atomic_store_explicit(&p->sleeping, true, memory_order_seq_cst);
        if (atomic_load_explicit(&p->completed, memory_order_seq_cst) >= count)
            break;
        pthread_cond_wait(&p->cv, &p->mu);
    }
    atomic_store_explicit(&p->sleeping, false, memory_order_relaxed);
    pthread_mutex_unlock(&p->mu);
}

/* Sets up a pipe of `inflight` slots, each a request of `group` records of
 * payload_max bytes of pattern (a fill function may rewrite them). */
static int pipe_init(pipe_t *p, reel_log_t *log, uint32_t inflight, uint32_t group,
                     uint32_t payload_max)
{
    REEL_ASSERT(inflight >= 1);
    REEL_ASSERT(group >= 1 && group <= REEL_GROUP_RECORDS_MAX);
    *p = (pipe_t){.log = log, .inflight = inflight, .group = group, .payload_max = payload_max,
                  .next_offset = reel_log_end(log)};
    atomic_init(&p->completed, 0);
    atomic_init(&p->sleeping, false);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->slots = calloc(inflight, sizeof(*p->slots));
    if (p->slots == NULL)
        return fail("pipe: out of memory");
    for (uint32_t i = 0; i < inflight; i++) {
        pipe_slot_t *s = &p->slots[i];
        s->entries = calloc(group, sizeof(*s->entries));
        s->payload = malloc((size_t)group * payload_max);
        if (s->entries == NULL || s->payload == NULL)
            return fail("pipe: out of memory");
        fill_pattern(s->payload, (uint64_t)group * payload_max, i + 1);
        for (uint32_t j = 0; j < group; j++)
            s->entries[j] = (reel_log_entry_t){TYPE_BENCH, payload_max,
                                               s->payload + (size_t)j * payload_max};
        s->req = (reel_log_append_req_t){.entries = s->entries, .count = group,
                                         .cb = pipe_cb, .data = p};
    }
    return 0;
}

static void pipe_free(pipe_t *p)
{
    for (uint32_t i = 0; p->slots != NULL && i < p->inflight; i++) {
        free(p->slots[i].entries);
        free(p->slots[i].payload);
    }
    free(p->slots);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
}

static uint64_t slot_bytes(const pipe_slot_t *s)
{
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < s->req.count; i++)
        bytes += reel_record_stride(s->entries[i].length);
    return bytes;
}

/* What one run of a pipe did. */
typedef struct pipe_result {
    uint64_t requests;
    uint64_t records;
    uint64_t bytes;        /* record bytes (strides) */
    uint64_t ns;           /* first submit to last callback */
    uint64_t batches;      /* the log's, during the run */
    uint64_t fsync_ns;     /* the log's write_durable time, during the run */
    uint64_t segments;     /* segments added during the run */
} pipe_result_t;

/* Keeps p->inflight requests in flight until duration_ns has passed or
 * bytes_max record bytes were submitted, then waits for all of them. */
static int pipe_run(pipe_t *p, uint64_t duration_ns, uint64_t bytes_max, pipe_result_t *res)
{
    reel_log_stats_t st0, st1;
    uint64_t requests0 = p->submitted, bytes0 = p->bytes;
    int rc = 0;
    reel_log_stats(p->log, &st0);
    uint64_t t0 = reel_bench_now_ns();
    while (reel_bench_now_ns() - t0 < duration_ns && p->bytes - bytes0 < bytes_max) {
        if (p->submitted >= p->inflight)
            pipe_wait(p, p->submitted - p->inflight + 1); /* slot's last request done */
        pipe_slot_t *s = &p->slots[p->submitted % p->inflight];
        if (p->fill != NULL)
            p->fill(p, s);
        rc = reel_log_submit(p->log, &s->req);
        if (rc < 0)
            break;
        p->submitted++;
        p->bytes += slot_bytes(s);
    }
    pipe_wait(p, p->submitted); /* drain: every callback ran */
    uint64_t t1 = reel_bench_now_ns();
    reel_log_stats(p->log, &st1);
    if (rc < 0)
        return fail("reel_log_submit: %s", reel_strerror(rc));
    if (p->error != 0)
        return fail("append callback: %s (status, order or dense offsets)",
                    reel_strerror(p->error));
    REEL_ASSERT(atomic_load(&p->completed) == p->submitted);
    *res = (pipe_result_t){.requests = p->submitted - requests0,
                           .records = (p->submitted - requests0) * p->group,
                           .bytes = p->bytes - bytes0, .ns = t1 - t0,
                           .batches = st1.batches - st0.batches,
                           .fsync_ns = st1.fsync_ns_total - st0.fsync_ns_total,
                           .segments = st1.segments - st0.segments};
    if (res->records != st1.records - st0.records)
        return fail("log stats count %" PRIu64 " records, callbacks %" PRIu64,
                    st1.records - st0.records, res->records);
    return 0;
}

static double avg_batch(const pipe_result_t *r)
{
    return r->batches ? (double)r->records / (double)r->batches : 0.0;
}

/* ---- Part 1: durable appends per second. */

/* Baseline of a cell: K records per pwrite, one fdatasync each. */
static int base_group_run(base_file_t *f, uint32_t size, uint32_t k, uint64_t duration_ns,
                          double *rate)
{
    uint64_t len = reel_align_up((uint64_t)k * (size + REEL_RECORD_HEADER_SIZE), REEL_BLOCK_SIZE);
    uint64_t groups = 0;
    uint64_t t0 = reel_bench_now_ns(), t1;
    REEL_ASSERT(k >= 1);
    do {
        int rc = base_write(f, len);
        if (rc == 0)
            rc = base_sync(f);
        if (rc != 0)
            return rc;
        groups++;
        t1 = reel_bench_now_ns();
    } while (t1 - t0 < duration_ns);
    *rate = (double)(groups * k) / seconds(t1 - t0);
    return 0;
}

static void size_name(char *buf, size_t n, uint32_t size)
{
    if (size >= 1024 && size % 1024 == 0)
        snprintf(buf, n, "%uKiB", (unsigned)(size / 1024));
    else
        snprintf(buf, n, "%uB", (unsigned)size);
}

/* Medians of one cell's rounds. */
typedef struct cell_rounds {
    double log_rate[ROUNDS_MAX];
    double base_rate[ROUNDS_MAX];
    double batch[ROUNDS_MAX];
    double sync_ms[ROUNDS_MAX];
    double ratio[ROUNDS_MAX]; /* log / baseline of the same round */
    uint64_t segments;
} cell_rounds_t;

static int cell_rounds(pipe_t *p, base_file_t *base, const plan_t *plan, uint32_t size,
                       cell_rounds_t *c)
{
    pipe_result_t r;
    double warm_base;
    int rc = pipe_run(p, plan->warm_ns, UINT64_MAX, &r);
    if (rc == 0)
        rc = base_group_run(base, size, p->inflight, plan->warm_ns / 8, &warm_base);
    for (uint32_t i = 0; rc == 0 && i < plan->rounds; i++) {
        rc = pipe_run(p, plan->cell_ns, UINT64_MAX, &r);
        if (rc == 0)
            rc = base_group_run(base, size, p->inflight, plan->cell_ns, &c->base_rate[i]);
        if (rc != 0)
            break;
        c->log_rate[i] = (double)r.records / seconds(r.ns);
        c->batch[i] = avg_batch(&r);
        c->sync_ms[i] = r.batches ? (double)r.fsync_ns / (double)r.batches / 1e6 : 0.0;
        c->ratio[i] = c->log_rate[i] / c->base_rate[i];
        c->segments += r.segments;
        fprintf(stderr, "  round %u: log %.0f/s (batch %.1f, cycle %.3f ms of which write+sync "
                "%.3f ms, %" PRIu64 " new segments), baseline %.0f/s\n", (unsigned)i + 1,
                c->log_rate[i], c->batch[i], r.batches ? seconds(r.ns) * 1e3 / (double)r.batches
                : 0.0, c->sync_ms[i], r.segments, c->base_rate[i]);
    }
    return rc;
}

static int append_cell(const reel_bench_ctx_t *ctx, const plan_t *plan, base_file_t *base,
                       uint32_t size, uint32_t k)
{
    char sname[16], metric[96], dir[PATH_MAX];
    size_name(sname, sizeof(sname), size);
    snprintf(metric, sizeof(metric), "append_%s_k%u", sname, (unsigned)k);
    if (!reel_bench_want(ctx, metric))
        return 0;
    fprintf(stderr, "%s: %u B payloads, %u in flight, %.1f s x %u rounds\n", metric,
            (unsigned)size, (unsigned)k, seconds(plan->cell_ns), (unsigned)plan->rounds);
    if (reel_bench_mkdir(ctx->dir, metric, dir, sizeof(dir)) < 0)
        return fail("mkdir %s/%s", ctx->dir, metric);
    reel_log_t *log;
    pipe_t p;
    cell_rounds_t c = {0};
    int rc = open_log(dir, true, &log);
    if (rc != 0)
        return rc;
    rc = pipe_init(&p, log, k, 1, size);
    if (rc == 0)
        rc = cell_rounds(&p, base, plan, size, &c);
    pipe_free(&p);
    int rc_close = close_log(log);
    rc = rc != 0 ? rc : rc_close;
    reel_bench_cleanup(ctx, dir);
    if (rc != 0)
        return rc;
    uint32_t n = plan->rounds;
    reel_bench_emit(BENCH, metric, reel_bench_median(c.log_rate, n), "appends/s",
                    reel_bench_median(c.base_rate, n));
    strncat(metric, "_avg_batch", sizeof(metric) - strlen(metric) - 1);
    reel_bench_emit(BENCH, metric, reel_bench_median(c.batch, n), "records/batch", NAN);
    fprintf(stderr, "  median write+sync per batch %.3f ms; %" PRIu64 " segments rolled; "
            "median of per-round ratios %.3f\n", reel_bench_median(c.sync_ms, n), c.segments,
            reel_bench_median(c.ratio, n));
    return 0;
}

static int part_append(const reel_bench_ctx_t *ctx, const plan_t *plan, base_file_t *base)
{
    static const uint32_t sizes[] = {64, 256, 4096};
    static const uint32_t ks[] = {1, 16, 256};
    for (uint32_t i = 0; i < REEL_ARRAY_LEN(sizes); i++) {
        for (uint32_t j = 0; j < REEL_ARRAY_LEN(ks); j++) {
            int rc = append_cell(ctx, plan, base, sizes[i], ks[j]);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

/* ---- Part 2: 1 MiB records. */

/* Baseline: 1 MiB writes, an fdatasync after every `cadence` of them. */
static int base_large_run(base_file_t *f, uint32_t cadence, uint64_t duration_ns, double *mb_s)
{
    uint64_t writes = 0;
    uint64_t t0 = reel_bench_now_ns(), t1;
    REEL_ASSERT(cadence >= 1);
    do {
        int rc = 0;
        for (uint32_t i = 0; rc == 0 && i < cadence; i++)
            rc = base_write(f, MIB);
        if (rc == 0)
            rc = base_sync(f);
        if (rc != 0)
            return rc;
        writes += cadence;
        t1 = reel_bench_now_ns();
    } while (t1 - t0 < duration_ns);
    *mb_s = (double)(writes * MIB) / 1e6 / seconds(t1 - t0);
    return 0;
}

static int large_rounds(pipe_t *p, base_file_t *base, const plan_t *plan, double *log_mb_s,
                        double *base_mb_s)
{
    pipe_result_t r;
    int rc = pipe_run(p, plan->warm_ns, UINT64_MAX, &r);
    for (uint32_t i = 0; rc == 0 && i < plan->rounds; i++) {
        rc = pipe_run(p, plan->large_ns, UINT64_MAX, &r);
        if (rc != 0)
            break;
        /* The baseline syncs as often as the log did: once per batch. */
        uint32_t cadence = (uint32_t)lround(avg_batch(&r));
        cadence = cadence < 1 ? 1 : cadence;
        rc = base_large_run(base, cadence, plan->large_ns, &base_mb_s[i]);
        log_mb_s[i] = (double)(r.records * MIB) / 1e6 / seconds(r.ns);
        fprintf(stderr, "  round %u: log %.0f MB/s (batch %.1f records, write+sync %.2f ms, "
                "%" PRIu64 " new segments), baseline %.0f MB/s (sync every %u MiB)\n",
                (unsigned)i + 1, log_mb_s[i], avg_batch(&r),
                r.batches ? (double)r.fsync_ns / (double)r.batches / 1e6 : 0.0, r.segments,
                base_mb_s[i], (unsigned)cadence);
    }
    return rc;
}

static int part_large(const reel_bench_ctx_t *ctx, const plan_t *plan, base_file_t *base)
{
    const char *metric = "large_1MiB_k16";
    char dir[PATH_MAX];
    double log_mb_s[ROUNDS_MAX], base_mb_s[ROUNDS_MAX];
    if (!reel_bench_want(ctx, metric))
        return 0;
    fprintf(stderr, "%s: 1 MiB payloads, %u in flight, %.1f s x %u rounds\n", metric,
            LARGE_INFLIGHT, seconds(plan->large_ns), (unsigned)plan->rounds);
    if (reel_bench_mkdir(ctx->dir, metric, dir, sizeof(dir)) < 0)
        return fail("mkdir %s/%s", ctx->dir, metric);
    reel_log_t *log;
    pipe_t p;
    int rc = open_log(dir, true, &log);
    if (rc != 0)
        return rc;
    rc = pipe_init(&p, log, LARGE_INFLIGHT, 1, (uint32_t)MIB);
    if (rc == 0)
        rc = large_rounds(&p, base, plan, log_mb_s, base_mb_s);
    pipe_free(&p);
    int rc_close = close_log(log);
    rc = rc != 0 ? rc : rc_close;
    reel_bench_cleanup(ctx, dir);
    if (rc != 0)
        return rc;
    reel_bench_emit(BENCH, metric, reel_bench_median(log_mb_s, plan->rounds), "MB/s",
                    reel_bench_median(base_mb_s, plan->rounds));
    return 0;
}

/* ---- Part 3: synchronous append latency. */

typedef struct latency {
    uint64_t *samples; /* LATENCY_SAMPLES_MAX */
    uint32_t n;
    double p50_us;
    double p99_us;
} latency_t;

static void latency_summarize(latency_t *l)
{
    REEL_ASSERT(l->n >= 1);
    REEL_ASSERT(l->n <= LATENCY_SAMPLES_MAX);
    reel_bench_sort_u64(l->samples, l->n);
    l->p50_us = (double)reel_bench_percentile(l->samples, l->n, 0.50) / 1e3;
    l->p99_us = (double)reel_bench_percentile(l->samples, l->n, 0.99) / 1e3;
}

static int latency_log_run(reel_log_t *log, const uint8_t *payload, uint64_t duration_ns,
                           latency_t *l)
{
    uint64_t expect = reel_log_end(log);
    uint64_t start = reel_bench_now_ns();
    l->n = 0;
    while (l->n < LATENCY_SAMPLES_MAX && reel_bench_now_ns() - start < duration_ns) {
        uint64_t offset;
        uint64_t t0 = reel_bench_now_ns();
        int rc = reel_log_append(log, TYPE_BENCH, payload, 256, &offset);
        uint64_t t1 = reel_bench_now_ns();
        if (rc < 0)
            return fail("reel_log_append: %s", reel_strerror(rc));
        if (offset != expect)
            return fail("reel_log_append: offset %" PRIu64 ", expected %" PRIu64, offset,
                        expect);
        expect++;
        l->samples[l->n++] = t1 - t0;
    }
    latency_summarize(l);
    return 0;
}

static int latency_base_run(base_file_t *f, uint64_t duration_ns, latency_t *l)
{
    uint64_t start = reel_bench_now_ns();
    l->n = 0;
    while (l->n < LATENCY_SAMPLES_MAX && reel_bench_now_ns() - start < duration_ns) {
        uint64_t t0 = reel_bench_now_ns();
        int rc = base_write(f, REEL_BLOCK_SIZE);
        if (rc == 0)
            rc = base_sync(f);
        if (rc != 0)
            return rc;
        l->samples[l->n++] = reel_bench_now_ns() - t0;
    }
    latency_summarize(l);
    return 0;
}

typedef struct latency_rounds {
    double log_p50[ROUNDS_MAX], log_p99[ROUNDS_MAX];
    double base_p50[ROUNDS_MAX], base_p99[ROUNDS_MAX];
} latency_rounds_t;

static int latency_rounds(reel_log_t *log, base_file_t *base, const plan_t *plan,
                          latency_rounds_t *out)
{
    latency_t l = {.samples = malloc(LATENCY_SAMPLES_MAX * sizeof(uint64_t))};
    uint8_t payload[256];
    if (l.samples == NULL)
        return fail("latency: out of memory");
    fill_pattern(payload, sizeof(payload), 7);
    int rc = latency_log_run(log, payload, plan->warm_ns, &l);
    for (uint32_t i = 0; rc == 0 && i < plan->rounds; i++) {
        rc = latency_log_run(log, payload, plan->latency_ns, &l);
        if (rc != 0)
            break;
        out->log_p50[i] = l.p50_us;
        out->log_p99[i] = l.p99_us;
        uint32_t log_n = l.n;
        rc = latency_base_run(base, plan->latency_ns, &l);
        out->base_p50[i] = l.p50_us;
        out->base_p99[i] = l.p99_us;
        fprintf(stderr, "  round %u: log p50 %.1f us p99 %.1f us (%u ops); baseline p50 %.1f "
                "us p99 %.1f us (%u ops)\n", (unsigned)i + 1, out->log_p50[i],
                out->log_p99[i], (unsigned)log_n, l.p50_us, l.p99_us, (unsigned)l.n);
    }
    free(l.samples);
    return rc;
}

static int part_latency(const reel_bench_ctx_t *ctx, const plan_t *plan, base_file_t *base)
{
    const char *name = "sync_append_256B";
    char dir[PATH_MAX];
    latency_rounds_t r;
    if (!reel_bench_want(ctx, name))
        return 0;
    fprintf(stderr, "%s: one reel_log_append at a time, %.1f s x %u rounds\n", name,
            seconds(plan->latency_ns), (unsigned)plan->rounds);
    if (reel_bench_mkdir(ctx->dir, name, dir, sizeof(dir)) < 0)
        return fail("mkdir %s/%s", ctx->dir, name);
    reel_log_t *log;
    int rc = open_log(dir, true, &log);
    if (rc != 0)
        return rc;
    rc = latency_rounds(log, base, plan, &r);
    int rc_close = close_log(log);
    rc = rc != 0 ? rc : rc_close;
    reel_bench_cleanup(ctx, dir);
    if (rc != 0)
        return rc;
    uint32_t n = plan->rounds;
    reel_bench_emit(BENCH, "sync_append_256B_p50_latency_vs_baseline",
                    reel_bench_median(r.log_p50, n), "us", reel_bench_median(r.base_p50, n));
    reel_bench_emit(BENCH, "sync_append_256B_p99_latency_vs_baseline",
                    reel_bench_median(r.log_p99, n), "us", reel_bench_median(r.base_p99, n));
    return 0;
}

/* ---- Realistic events: JSON bodies like the app's, from a seed. */

typedef struct gen {
    uint64_t state;    /* xorshift64* */
    uint64_t at_ms;    /* event time, increasing */
    uint64_t next_id;  /* ids of new posts, comments, generations */
} gen_t;

static uint64_t gen_u64(gen_t *g)
{
    g->state ^= g->state >> 12;
    g->state ^= g->state << 25;
    g->state ^= g->state >> 27;
    return g->state * 0x2545F4914F6CDD1Dull;
}

static uint32_t gen_below(gen_t *g, uint32_t n)
{
    REEL_ASSERT(n >= 1);
    return (uint32_t)(gen_u64(g) % n);
}

/* Skewed ids in [1, n]: a few popular users and posts, a long tail. */
static uint32_t gen_skewed(gen_t *g, uint32_t n)
{
    return 1 + gen_below(g, 1 + gen_below(g, n));
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

/* A string builder over a fixed buffer; overflowing is a bug here. */
typedef struct sb {
    char *p;
    uint32_t len;
    uint32_t cap;
} sb_t;

static void sb_printf(sb_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sb_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    REEL_ASSERT(n >= 0);
    REEL_ASSERT((uint32_t)n < b->cap - b->len);
    b->len += (uint32_t)n;
}

static const char *const words[] = {
    "a", "the", "cat", "dog", "astronaut", "robot", "city", "neon", "forest", "ocean",
    "surfing", "dancing", "running", "flying", "slow", "motion", "cinematic", "drone", "shot",
    "over", "under", "at", "night", "sunset", "sunrise", "rain", "snow", "desert", "mountain",
    "golden", "hour", "vintage", "film", "anime", "style", "pixel", "art", "portrait", "close",
    "up", "wide", "angle", "tracking", "camera", "glowing", "tiny", "giant", "underwater",
    "space", "station", "market", "street", "food", "coffee", "jazz", "band", "skateboard",
    "park", "train", "window", "reflection", "mirror", "storm", "clouds"};
static const char *const tags[] = {"ai", "sora", "cats", "dogs", "anime", "travel", "music",
                                   "dance", "comedy", "food", "scifi", "nature", "cinematic",
                                   "fyp", "art", "gaming"};
static const char *const devices[] = {"ios", "android", "web"};
static const char *const apps[] = {"3.14.2", "3.14.1", "3.13.0", "3.15.0-beta"};
static const char *const locales[] = {"en-US", "en-GB", "ja-JP", "pt-BR",
                                      "de-DE", "fr-FR", "es-MX", "ko-KR"};
/* Two user agents per device of `devices`, in that order. */
static const char *const agents[] = {
    "Reel/3.14.2 (iPhone15,3; iOS 18.1; Scale/3.00)",
    "Reel/3.14.2 (iPad13,18; iPadOS 18.0; Scale/2.00)",
    "Reel/3.14.1 (Pixel 8 Pro; Android 15; okhttp/4.12.0)",
    "Reel/3.13.0 (SM-S928B; Android 14; okhttp/4.12.0)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/18.1 Safari/605.1.15"};
_Static_assert(REEL_ARRAY_LEN(agents) == 2 * REEL_ARRAY_LEN(devices), "two agents a device");
static const char *const sources[] = {"for_you", "following", "profile", "search", "share"};
static const char *const feedback[] = {"see_less", "see_more", "not_interested",
                                       "hide_creator"};

#define PICK(g, a) ((a)[gen_below((g), REEL_ARRAY_LEN(a))])

static void gen_words(gen_t *g, sb_t *b, uint32_t lo, uint32_t hi)
{
    uint32_t n = lo + gen_below(g, hi - lo + 1);
    for (uint32_t i = 0; i < n; i++)
        sb_printf(b, "%s%s", i ? " " : "", words[gen_skewed(g, REEL_ARRAY_LEN(words)) - 1]);
}

static void gen_tags(gen_t *g, sb_t *b)
{
    uint32_t n = gen_below(g, 5);
    sb_printf(b, "\"tags\":[");
    for (uint32_t i = 0; i < n; i++)
        sb_printf(b, "%s\"%s\"", i ? "," : "", PICK(g, tags));
    sb_printf(b, "],");
}

/* The request context a client event carries; fixed per user, the session
 * changes every 30 minutes. */
static void gen_ctx(const gen_t *g, sb_t *b, uint32_t user)
{
    uint64_t h = mix64(user);
    uint64_t session = mix64(h ^ (g->at_ms / 1800000));
    sb_printf(b, "\"ctx\":{\"session\":\"%016" PRIx64 "\",\"device\":\"%s\",\"app\":\"%s\","
              "\"locale\":\"%s\",\"ip\":\"%u.%u.%u.%u\",\"ua\":\"%s\"}}",
              session, devices[h % 3], apps[(h >> 8) % 4], locales[(h >> 16) % 8],
              (unsigned)(h >> 24) & 0xff, (unsigned)(h >> 32) & 0xff,
              (unsigned)(h >> 40) & 0xff, (unsigned)(h >> 48) & 0xff,
              agents[(h % 3) * 2 + (h >> 56) % 2]);
}

static void gen_post(gen_t *g, sb_t *b, uint32_t user)
{
    uint64_t post = g->next_id++;
    sb_printf(b, "\"post_id\":%" PRIu64 ",\"author\":%u,\"video_uri\":\"s3://reel-media/v/"
              "%016" PRIx64 ".mp4\",\"prompt\":\"", post, (unsigned)user, mix64(post));
    gen_words(g, b, 4, 36);
    sb_printf(b, "\",");
    gen_tags(g, b);
    if (gen_below(g, 4) == 0)
        sb_printf(b, "\"remix_of\":%u,", (unsigned)gen_skewed(g, 5000000));
    sb_printf(b, "\"visibility\":\"public\",");
}

/* Writes one event into buf (at most EVENT_BYTES_MAX); returns its length
 * and its type (a record type) in *type. */
static uint32_t gen_event(gen_t *g, char *buf, uint16_t *type)
{
    sb_t b = {buf, 0, EVENT_BYTES_MAX};
    uint32_t user = gen_skewed(g, 200000), post = gen_skewed(g, 5000000);
    uint32_t roll = gen_below(g, 100);
    g->at_ms += gen_below(g, 40);
    static const char *const names[] = {"view.recorded", "like.created", "follow.created",
                                        "comment.created", "post.created", "feedback.recorded",
                                        "like.removed"};
    uint32_t kind = roll < 55 ? 0 : roll < 75 ? 1 : roll < 82 ? 2 : roll < 89 ? 3
                  : roll < 95 ? 4 : roll < 98 ? 5 : 6;
    *type = (uint16_t)(kind + 1);
    sb_printf(&b, "{\"type\":\"%s\",\"at\":%" PRIu64 ",", names[kind], g->at_ms);
    if (kind == 0)
        sb_printf(&b, "\"user\":%u,\"post\":%u,\"watch_ms\":%u,\"completed\":%s,"
                  "\"source\":\"%s\",", (unsigned)user, (unsigned)post,
                  (unsigned)gen_below(g, 60000), gen_below(g, 3) ? "false" : "true",
                  PICK(g, sources));
    else if (kind == 1 || kind == 6)
        sb_printf(&b, "\"user\":%u,\"post\":%u,", (unsigned)user, (unsigned)post);
    else if (kind == 2)
        sb_printf(&b, "\"follower\":%u,\"followee\":%u,", (unsigned)user,
                  (unsigned)gen_skewed(g, 200000));
    else if (kind == 3) {
        sb_printf(&b, "\"comment_id\":%" PRIu64 ",\"post\":%u,\"author\":%u,\"text\":\"",
                  g->next_id++, (unsigned)post, (unsigned)user);
        gen_words(g, &b, 2, 30);
        sb_printf(&b, "\",");
    } else if (kind == 4)
        gen_post(g, &b, user);
    else
        sb_printf(&b, "\"user\":%u,\"post\":%u,\"kind\":\"%s\",", (unsigned)user,
                  (unsigned)post, PICK(g, feedback));
    gen_ctx(g, &b, user);
    return b.len;
}

/* pipe_fill_fn of the read log: fresh events in every slot reuse. */
static void fill_events(pipe_t *p, pipe_slot_t *slot)
{
    gen_t *g = p->fill_arg;
    REEL_ASSERT(p->payload_max >= EVENT_BYTES_MAX);
    for (uint32_t i = 0; i < p->group; i++) {
        uint8_t *dst = slot->payload + (size_t)i * p->payload_max;
        uint16_t type;
        uint32_t len = gen_event(g, (char *)dst, &type);
        REEL_ASSERT(len <= EVENT_BYTES_MAX);
        slot->entries[i] = (reel_log_entry_t){type, len, dst};
    }
}

/* ---- Part 4: sequential reads and compression. */

/* What a full read of the log saw. */
typedef struct read_stats {
    uint64_t records;
    uint64_t record_bytes;  /* strides: what the log holds */
    uint64_t payload_bytes;
    uint32_t payload_min;
    uint32_t payload_max;
    uint64_t ns;
} read_stats_t;

/* Reads every record from offset 0 and checks they come dense and in
 * order, expect_records of them. */
static int read_pass(reel_log_t *log, uint64_t expect_records, read_stats_t *s)
{
    reel_log_iter_t *it;
    reel_record_t rec;
    int rc = reel_log_iter_open(log, 0, &it);
    if (rc < 0)
        return fail("reel_log_iter_open: %s", reel_strerror(rc));
    *s = (read_stats_t){.payload_min = UINT32_MAX};
    uint64_t t0 = reel_bench_now_ns();
    while ((rc = reel_log_iter_next(it, &rec)) == 0) {
        if (rec.offset != s->records)
            break;
        s->records++;
        s->record_bytes += reel_record_stride(rec.length);
        s->payload_bytes += rec.length;
        s->payload_min = rec.length < s->payload_min ? rec.length : s->payload_min;
        s->payload_max = rec.length > s->payload_max ? rec.length : s->payload_max;
    }
    s->ns = reel_bench_now_ns() - t0;
    reel_log_iter_close(it);
    if (rc != REEL_EEND)
        return rc == 0 ? fail("read: offset %" PRIu64 " where %" PRIu64 " was due", rec.offset,
                              s->records)
                       : fail("read at offset %" PRIu64 ": %s", s->records, reel_strerror(rc));
    if (s->records != expect_records)
        return fail("read %" PRIu64 " records, the log has %" PRIu64, s->records, expect_records);
    return 0;
}

static bool has_suffix(const char *name, const char *suffix)
{
    size_t n = strlen(name), m = strlen(suffix);
    return n > m && strcmp(name + n - m, suffix) == 0;
}

/* read() of every plain segment file of dir into buf (1 MiB at a time). */
static int raw_read_pass(const char *dir, uint8_t *buf, uint64_t *bytes, uint64_t *ns)
{
    char path[PATH_MAX];
    struct dirent *e;
    DIR *d = opendir(dir);
    if (d == NULL)
        return fail("opendir %s: %s", dir, strerror(errno));
    *bytes = 0;
    uint64_t t0 = reel_bench_now_ns();
    while ((e = readdir(d)) != NULL) {
        if (!has_suffix(e->d_name, ".seg"))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            closedir(d);
            return fail("open %s: %s", path, strerror(errno));
        }
        ssize_t n;
        while ((n = read(fd, buf, MIB)) > 0)
            *bytes += (uint64_t)n;
        close(fd);
        if (n < 0) {
            closedir(d);
            return fail("read %s: %s", path, strerror(errno));
        }
    }
    *ns = reel_bench_now_ns() - t0;
    closedir(d);
    return 0;
}

/* Bytes of the files in dir whose names end with suffix. */
static uint64_t dir_bytes(const char *dir, const char *suffix)
{
    char path[PATH_MAX];
    struct dirent *e;
    struct stat st;
    uint64_t total = 0;
    DIR *d = opendir(dir);
    while (d != NULL && (e = readdir(d)) != NULL) {
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (has_suffix(e->d_name, suffix) && stat(path, &st) == 0)
            total += (uint64_t)st.st_size;
    }
    if (d != NULL)
        closedir(d);
    return total;
}

static double gb_s(uint64_t bytes, uint64_t ns)
{
    return (double)bytes / 1e9 / seconds(ns);
}

/* Appends realistic events until the log holds `bytes` record bytes. */
static int read_fill(reel_log_t *log, uint64_t bytes, uint64_t *records)
{
    gen_t g = {.state = 0x5EEDF00DCAFEull, .at_ms = 1732550000000ull, .next_id = 1};
    pipe_t p;
    pipe_result_t r;
    int rc = pipe_init(&p, log, FILL_INFLIGHT, FILL_GROUP, EVENT_BYTES_MAX);
    p.fill = fill_events;
    p.fill_arg = &g;
    if (rc == 0)
        rc = pipe_run(&p, UINT64_MAX, bytes, &r);
    pipe_free(&p);
    if (rc != 0)
        return rc;
    *records = r.records;
    fprintf(stderr, "  filled %" PRIu64 " records, %.0f MiB, in %.2f s (%.0f MB/s, batch %.0f "
            "records, %" PRIu64 " segments)\n", r.records, (double)r.bytes / MIB, seconds(r.ns),
            (double)r.bytes / 1e6 / seconds(r.ns), avg_batch(&r), r.segments);
    return 0;
}

/* Medians of the read part's rounds. */
typedef struct read_rounds {
    double plain[ROUNDS_MAX];
    double raw[ROUNDS_MAX];
    double zstd[ROUNDS_MAX];
    uint64_t records;
    read_stats_t s;
} read_rounds_t;

/* Plain reads and the raw baseline, each warmed once, then interleaved. */
static int read_plain_rounds(reel_log_t *log, const char *dir, const plan_t *plan,
                             read_rounds_t *r)
{
    uint64_t raw_bytes, raw_ns;
    uint8_t *buf = malloc(MIB);
    if (buf == NULL)
        return fail("read: out of memory");
    int rc = read_pass(log, r->records, &r->s);
    if (rc == 0)
        rc = raw_read_pass(dir, buf, &raw_bytes, &raw_ns);
    if (rc == 0)
        fprintf(stderr, "  cold pass %.2f GB/s; payloads %u..%u B, mean %.0f B\n",
                gb_s(r->s.record_bytes, r->s.ns), (unsigned)r->s.payload_min,
                (unsigned)r->s.payload_max, (double)r->s.payload_bytes / (double)r->records);
    for (uint32_t i = 0; rc == 0 && i < plan->rounds; i++) {
        rc = read_pass(log, r->records, &r->s);
        if (rc == 0)
            rc = raw_read_pass(dir, buf, &raw_bytes, &raw_ns);
        if (rc != 0)
            break;
        r->plain[i] = gb_s(r->s.record_bytes, r->s.ns);
        r->raw[i] = gb_s(raw_bytes, raw_ns);
        fprintf(stderr, "  round %u: iterator %.2f GB/s (%.0f ns/record), raw read() %.2f GB/s\n",
                (unsigned)i + 1, r->plain[i], (double)r->s.ns / (double)r->records, r->raw[i]);
    }
    free(buf);
    return rc;
}

/* Reopens the log with compression, seals it (compressing every segment)
 * and reads it back. */
static int read_zstd_rounds(const char *dir, const plan_t *plan, read_rounds_t *r,
                            double *seal_mb_s)
{
    reel_log_t *log;
    read_stats_t s;
    uint64_t t0 = reel_bench_now_ns();
    int rc = open_log(dir, false, &log);
    if (rc != 0)
        return rc;
    uint64_t t1 = reel_bench_now_ns();
    rc = reel_log_seal(log);
    uint64_t t2 = reel_bench_now_ns();
    if (rc < 0) {
        (void)close_log(log);
        return fail("reel_log_seal: %s", reel_strerror(rc));
    }
    *seal_mb_s = (double)r->s.record_bytes / 1e6 / seconds(t2 - t1);
    fprintf(stderr, "  reopen (recovery scan) %.2f s; seal+compress %.2f s\n", seconds(t1 - t0),
            seconds(t2 - t1));
    rc = read_pass(log, r->records, &s);
    for (uint32_t i = 0; rc == 0 && i < plan->rounds; i++) {
        rc = read_pass(log, r->records, &s);
        r->zstd[i] = rc == 0 ? gb_s(s.record_bytes, s.ns) : 0.0;
        if (rc == 0)
            fprintf(stderr, "  round %u: compressed iterator %.2f GB/s (%.0f ns/record)\n",
                    (unsigned)i + 1, r->zstd[i], (double)s.ns / (double)r->records);
    }
    int rc_close = close_log(log);
    return rc != 0 ? rc : rc_close;
}

static void read_emit(const plan_t *plan, read_rounds_t *r, const char *dir, double seal_mb_s)
{
    uint32_t n = plan->rounds;
    uint64_t zbytes = dir_bytes(dir, ".zseg");
    double raw = reel_bench_median(r->raw, n);
    reel_bench_emit(BENCH, "read_plain", reel_bench_median(r->plain, n), "GB/s", raw);
    reel_bench_emit(BENCH, "read_zstd", reel_bench_median(r->zstd, n), "GB/s", raw);
    reel_bench_emit(BENCH, "zstd_compression_ratio",
                    zbytes ? (double)r->s.record_bytes / (double)zbytes : 0.0, "x", NAN);
    reel_bench_emit(BENCH, "seal_compress", seal_mb_s, "MB/s", NAN);
    fprintf(stderr, "  %.0f MiB of records (%.0f MiB payload) -> %.1f MiB of .zseg; "
            "payload-only ratio %.2f\n", (double)r->s.record_bytes / MIB,
            (double)r->s.payload_bytes / MIB, (double)zbytes / MIB,
            zbytes ? (double)r->s.payload_bytes / (double)zbytes : 0.0);
}

static int part_read(const reel_bench_ctx_t *ctx, const plan_t *plan)
{
    char dir[PATH_MAX];
    read_rounds_t *r = calloc(1, sizeof(*r));
    double seal_mb_s = 0.0;
    if (!reel_bench_want(ctx, "read_") || r == NULL) {
        free(r);
        return r == NULL ? fail("read: out of memory") : 0;
    }
    fprintf(stderr, "read: %llu MiB of JSON events, %u timed passes\n",
            (unsigned long long)(plan->read_log_bytes / MIB), (unsigned)plan->rounds);
    if (reel_bench_mkdir(ctx->dir, "read", dir, sizeof(dir)) < 0) {
        free(r);
        return fail("mkdir %s/read", ctx->dir);
    }
    reel_log_t *log;
    int rc = open_log(dir, true, &log);
    if (rc == 0) {
        rc = read_fill(log, plan->read_log_bytes, &r->records);
        if (rc == 0)
            rc = read_plain_rounds(log, dir, plan, r);
        int rc_close = close_log(log);
        rc = rc != 0 ? rc : rc_close;
    }
    if (rc == 0)
        rc = read_zstd_rounds(dir, plan, r, &seal_mb_s);
    if (rc == 0)
        read_emit(plan, r, dir, seal_mb_s);
    reel_bench_cleanup(ctx, dir);
    free(r);
    return rc;
}

/* ---- The benchmark. */

static void plan_make(const reel_bench_ctx_t *ctx, plan_t *plan)
{
    uint64_t ms = 1000000ull;
    if (ctx->quick)
        *plan = (plan_t){.cell_ns = 250 * ms, .warm_ns = 400 * ms, .large_ns = 400 * ms,
                         .latency_ns = 400 * ms, .read_log_bytes = 128 * MIB};
    else
        *plan = (plan_t){.cell_ns = 1000 * ms, .warm_ns = 500 * ms, .large_ns = 1500 * ms,
                         .latency_ns = 1500 * ms, .read_log_bytes = 1024 * MIB};
    plan->rounds = ctx->rounds < ROUNDS_MAX ? ctx->rounds : ROUNDS_MAX;
    REEL_ASSERT(plan->rounds >= 1);
    REEL_ASSERT(plan->warm_ns >= 400 * ms);
}

int reel_bench_log(const reel_bench_ctx_t *ctx)
{
    plan_t plan;
    base_file_t base;
    REEL_ASSERT(ctx != NULL);
    REEL_ASSERT(ctx->dir != NULL);
    plan_make(ctx, &plan);
    int rc = base_open(ctx->dir, &base);
    if (rc == 0)
        rc = part_append(ctx, &plan, &base);
    if (rc == 0)
        rc = part_large(ctx, &plan, &base);
    if (rc == 0)
        rc = part_latency(ctx, &plan, &base);
    base_close(&base);
    if (rc == 0)
        rc = part_read(ctx, &plan);
    return rc == 0 ? 0 : 2;
}
