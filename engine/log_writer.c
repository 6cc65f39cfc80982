/*
 * log_writer.c: group commit, segment rollover, and the background thread.
 *
 * Group commit. Producers queue append requests (reel_log_submit). The
 * writer thread takes everything queued, up to a batch's bound, encodes the
 * records into one block-aligned buffer (offsets, times, chain), writes it
 * and makes it durable with one write_durable() call (io_uring: one WRITE
 * with RWF_DSYNC; sync: pwrite + fdatasync), then publishes the durable end and
 * runs the callbacks in offset order. While it waits for the disk, new
 * requests fill the queue: the next batch. The writer never starts a batch
 * before the previous one is durable; recovery depends on that (segment.c).
 *
 * State machine of the log's write side:
 *
 *     OPEN --write or sync fails--> FAILED (sticky: every append refused)
 *     OPEN --write refused--> HELD --reel_log_resume--> OPEN
 *     OPEN --close--> CLOSING --queue drained--> CLOSED
 *
 * Refused writes (is_refusal) are those the file system turns down before
 * any byte of them reaches a file: no space (ENOSPC, EDQUOT) or a read-only
 * file system (EROFS) while making a new segment, and EROFS from a batch
 * write. Nothing of the log changed, so HELD fails the queue and refuses
 * appends (the producer resubmits) until the producer resumes, and appends
 * resume once the file system takes writes again, without a restart.
 * ENOSPC or EDQUOT from a batch write stays sticky: write_durable may have
 * got it from the sync, after writeback lost pages (fsyncgate), and
 * segments are preallocated, so a batch write has no blocks to allocate.
 */
#include "engine/log_int.h"
#include "engine/common.h"
#include "engine/limits.h"
#include "engine/zseg.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Bytes the writer may put in one batch, after padding. */
#define BATCH_ROOM (REEL_BATCH_BYTES_MAX)
#define BATCH_INDEX_MAX (REEL_BATCH_BYTES_MAX / REEL_INDEX_INTERVAL_BYTES + 2)
/* Longest group-commit linger: 1 ms, far below what a sync costs on a disk
 * where lingering pays (see linger()). */
#define LINGER_NS_MAX 1000000u
/* Spare segments are zero-filled while batches average less than this, and
 * only allocated (fallocate) above it. Writing into allocated-but-unwritten
 * blocks costs each sync an extent conversion: ~2x the sync time for 4-80
 * KiB batches, nothing measurable for 12 MiB ones (dd oflag=direct,dsync on
 * this ext4), while zero-filling writes every byte twice. */
#define PREALLOC_ZERO_BELOW_BYTES (1u << 20)
/* Zero-fill chunk for preallocation. */
#define PREALLOC_CHUNK (1u << 20)

static uint64_t req_bytes(const reel_log_append_req_t *req)
{
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < req->count; i++)
        bytes += reel_record_stride(req->entries[i].length);
    return bytes;
}

static int check_req(const reel_log_t *log, const reel_log_append_req_t *req)
{
    if (req->cb == NULL || req->entries == NULL || req->count == 0 ||
        req->count > REEL_GROUP_RECORDS_MAX)
        return REEL_EUSAGE;
    for (uint32_t i = 0; i < req->count; i++) {
        if (req->entries[i].type == 0)
            return REEL_EUSAGE;
        if (req->entries[i].length > REEL_RECORD_PAYLOAD_MAX)
            return REEL_ETOOBIG;
        if (req->entries[i].length > 0 && req->entries[i].payload == NULL)
            return REEL_EUSAGE;
    }
    /* A group must fit in one batch and in one empty segment. */
    uint64_t bytes = reel_align_up(req_bytes(req), REEL_BLOCK_SIZE);
    if (bytes > BATCH_ROOM || bytes > log->opts.segment_size - REEL_SEGMENT_HEADER_SIZE)
        return REEL_ETOOBIG;
    return 0;
}

int reel_log_submit(reel_log_t *log, reel_log_append_req_t *req)
{
    return reel_log_submit_many(log, &req, 1);
}

int reel_log_submit_many(reel_log_t *log, reel_log_append_req_t *const *reqs, size_t n)
{
    uint64_t records = 0, bytes = 0;
    if (log->opts.read_only)
        return REEL_ERDONLY;
    if (reqs == NULL || n == 0)
        return REEL_EUSAGE;
    for (size_t i = 0; i < n; i++) {
        int rc = reqs[i] == NULL ? REEL_EUSAGE : check_req(log, reqs[i]);
        if (rc < 0)
            return rc;
        reqs[i]->bytes = req_bytes(reqs[i]);
        reqs[i]->next = i + 1 < n ? reqs[i + 1] : NULL;
        records += reqs[i]->count;
        bytes += reqs[i]->bytes;
    }
    int rc = 0;
    pthread_mutex_lock(&log->mu);
    if (log->closing)
        rc = REEL_ECLOSED;
    else if (log->sticky)
        rc = log->sticky;
    else if (log->held)
        rc = log->held;
    else if (log->q_records + records > REEL_QUEUE_RECORDS_MAX ||
             log->q_bytes + bytes > REEL_QUEUE_BYTES_MAX)
        rc = REEL_EFULL;
    if (rc == 0) {
        if (log->q_tail)
            log->q_tail->next = reqs[0];
        else
            log->q_head = reqs[0];
        log->q_tail = reqs[n - 1];
        log->q_records += records;
        log->q_bytes += bytes;
        /* Wake the writer only when what it waits for is there: with 256
         * appends in flight a wake per submit cost more than the encoding. */
        if (log->writer_wants != 0 && log->q_records >= log->writer_wants) {
            log->writer_wants = 0;
            pthread_cond_signal(&log->cv_writer);
        }
    }
    pthread_mutex_unlock(&log->mu);
    return rc;
}

/* A synchronous append waits on the log's cv_done for its callback. */
typedef struct sync_wait {
    reel_log_t *log;
    int status;
    bool done;
} sync_wait_t;

static void sync_cb(reel_log_append_req_t *req, int status)
{
    sync_wait_t *w = req->data;
    pthread_mutex_lock(&w->log->mu);
    w->status = status;
    w->done = true;
    pthread_cond_broadcast(&w->log->cv_done);
    pthread_mutex_unlock(&w->log->mu);
}

int reel_log_append_group(reel_log_t *log, const reel_log_entry_t *entries, uint32_t count,
                          uint64_t time_ms, uint64_t *first_offset)
{
    sync_wait_t w = {log, 0, false};
    reel_log_append_req_t req = {.entries = entries, .count = count, .time_ms = time_ms,
                                 .cb = sync_cb, .data = &w};
    int rc;
    while ((rc = reel_log_submit(log, &req)) == REEL_EFULL) {
        pthread_mutex_lock(&log->mu); /* wait for the writer to make room */
        if (log->q_head != NULL)
            pthread_cond_wait(&log->cv_done, &log->mu);
        pthread_mutex_unlock(&log->mu);
    }
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&log->mu);
    while (!w.done)
        pthread_cond_wait(&log->cv_done, &log->mu);
    pthread_mutex_unlock(&log->mu);
    if (w.status == 0 && first_offset != NULL)
        *first_offset = req.first_offset;
    return w.status;
}

int reel_log_append(reel_log_t *log, uint16_t type, const void *payload, uint32_t length,
                    uint64_t *offset)
{
    reel_log_entry_t e = {type, length, payload};
    return reel_log_append_group(log, &e, 1, 0, offset);
}

int reel_log_wait(reel_log_t *log, uint64_t offset, int timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    int rc = 0;
    pthread_mutex_lock(&log->mu);
    while (log->end <= offset && rc == 0) {
        if (log->sticky)
            rc = log->sticky;
        else if (log->closing)
            rc = REEL_ECLOSED;
        else if (pthread_cond_timedwait(&log->cv_done, &log->mu, &deadline) != 0)
            rc = log->end > offset ? 0 : REEL_EEND;
    }
    pthread_mutex_unlock(&log->mu);
    return rc;
}

/* Runs the callbacks of a list of requests, in order, with no lock held. */
static void complete_list(reel_log_append_req_t *req, int status)
{
    while (req != NULL) {
        reel_log_append_req_t *next = req->next; /* cb may free req */
        req->cb(req, status);
        req = next;
    }
}

/* Encodes the records of req at dst, which is at file position pos. */
static uint64_t encode_req(reel_log_t *log, reel_log_append_req_t *req, uint8_t *dst, uint64_t pos,
                           uint64_t batch_first, uint32_t *nindex)
{
    uint64_t now = req->time_ms ? req->time_ms : reel_now_ms();
    uint64_t used = 0;
    log->clock_ms = now > log->clock_ms ? now : log->clock_ms; /* never back in time */
    req->first_offset = log->next_offset;
    req->stamped_ms = log->clock_ms;
    for (uint32_t i = 0; i < req->count; i++) {
        const reel_log_entry_t *e = &req->entries[i];
        reel_record_header_t h = {
            .prev_checksum = log->chain,
            .offset = log->next_offset,
            .time_ms = log->clock_ms,
            .length = e->length,
            .type = e->type,
            .flags = i + 1 < req->count ? REEL_RECORD_F_GROUP_CONT : 0,
            .batch_index = (uint32_t)(log->next_offset - batch_first),
        };
        uint32_t n = reel_record_encode(dst + used, &h, e->payload);
        uint64_t stride = reel_record_stride(e->length);
        memset(dst + used + n, 0, stride - n);
        if (log->index_pos == 0 || pos + used >= log->index_pos + REEL_INDEX_INTERVAL_BYTES) {
            REEL_ASSERT(*nindex < BATCH_INDEX_MAX);
            log->batch_index[(*nindex)++] = (seg_index_entry_t){h.offset, pos + used};
            log->index_pos = pos + used;
        }
        log->chain = h.checksum;
        log->next_offset++;
        used += stride;
    }
    return used;
}

/* Publishes a durable batch: the new end, index entries, stats. */
/* The histogram bucket (reel_log_stats_t.sync_hist) of one durable write. */
static uint32_t sync_bucket(uint64_t ns)
{
    static const uint64_t bounds_us[] = REEL_LOG_SYNC_BUCKETS_US;
    _Static_assert(sizeof(bounds_us) / sizeof(bounds_us[0]) + 1 == REEL_LOG_SYNC_BUCKETS,
                   "one bucket per bound, and the rest");
    uint32_t b = 0;
    while (b < REEL_LOG_SYNC_BUCKETS - 1 && ns > bounds_us[b] * 1000u)
        b++;
    return b;
}

/* The histogram bucket (reel_log_stats_t.batch_hist) of a batch's records. */
static uint32_t batch_bucket(uint64_t records)
{
    static const uint64_t bounds[] = REEL_LOG_BATCH_BUCKETS_RECORDS;
    _Static_assert(sizeof(bounds) / sizeof(bounds[0]) + 1 == REEL_LOG_BATCH_BUCKETS,
                   "one bucket per bound, and the rest");
    uint32_t b = 0;
    while (b < REEL_LOG_BATCH_BUCKETS - 1 && records > bounds[b])
        b++;
    return b;
}

static void publish(reel_log_t *log, uint32_t nindex, uint64_t bytes, uint64_t records,
                    uint64_t sync_ns)
{
    pthread_mutex_lock(&log->mu);
    seg_desc_t *d = &log->segs[log->nsegs - 1];
    for (uint32_t i = 0; i < nindex; i++) {
        if (reel__log_index_add(d, log->batch_index[i].offset, log->batch_index[i].pos) < 0)
            break; /* out of memory: the index is sparse anyway, reads scan */
    }
    d->next_offset = log->next_offset;
    log->end = log->next_offset;
    log->last_time_ms = log->clock_ms;
    log->stats.batches++;
    log->stats.records += records;
    log->stats.bytes_written += bytes;
    log->stats.fsync_ns_total += sync_ns;
    log->stats.sync_hist[sync_bucket(sync_ns)]++;
    log->stats.batch_hist[batch_bucket(records)]++;
    log->batch_bytes_avg = (log->batch_bytes_avg * 7 + bytes) / 8;
    pthread_cond_broadcast(&log->cv_done);
    pthread_mutex_unlock(&log->mu);
}

static void set_sticky(reel_log_t *log, int rc)
{
    pthread_mutex_lock(&log->mu);
    if (log->sticky == 0) {
        log->sticky = rc;
        fprintf(stderr, "reeldb: log %s: write failed (%s); refusing all further appends\n",
                log->dir, reel_strerror(rc));
    }
    pthread_cond_broadcast(&log->cv_done);
    pthread_mutex_unlock(&log->mu);
}

/* Writes one batch (reqs that fit in the active segment) durably. A
 * refused write (-EROFS) leaves the writer's state as it was: the batch's
 * offsets, chain and time are given again to what is appended after. */
static int write_chunk(reel_log_t *log, reel_log_append_req_t *head, uint64_t records)
{
    uint64_t batch_first = log->next_offset;
    uint64_t chain = log->chain, clock_ms = log->clock_ms, index_pos = log->index_pos;
    uint64_t used = 0;
    uint32_t nindex = 0;
    for (reel_log_append_req_t *r = head; r != NULL; r = r->next)
        used += encode_req(log, r, log->batch_buf + used, log->write_pos + used, batch_first,
                           &nindex);
    uint64_t padded = reel_align_up(used, REEL_BLOCK_SIZE);
    REEL_ASSERT(padded <= BATCH_ROOM);
    REEL_ASSERT(log->write_pos + padded <= log->opts.segment_size || log->nsegs > 0);
    memset(log->batch_buf + used, 0, padded - used);
    uint64_t t0 = reel_mono_ns();
    int rc = log->io->write_durable(log->io, log->active_fd, log->batch_buf, padded,
                                    log->write_pos);
    if (rc == -EROFS) {
        log->next_offset = batch_first;
        log->chain = chain;
        log->clock_ms = clock_ms;
        log->index_pos = index_pos;
    }
    if (rc < 0)
        return rc;
    log->write_pos += padded;
    log->last_sync_ns = reel_mono_ns() - t0;
    log->last_batch_records = records;
    publish(log, nindex, padded, records, log->last_sync_ns);
    return 0;
}

/* Space left in the active segment for batch bytes. */
static uint64_t segment_room(const reel_log_t *log, uint64_t seg_size)
{
    return log->write_pos < seg_size ? seg_size - log->write_pos : 0;
}

/* Takes from the queue (mu held) the requests that fit in one batch of at
 * most `room` bytes; returns the list and its record count. */
static reel_log_append_req_t *take_batch(reel_log_t *log, uint64_t room, uint64_t *records)
{
    reel_log_append_req_t *head = log->q_head, *last = NULL;
    uint64_t bytes = 0;
    *records = 0;
    for (reel_log_append_req_t *r = head; r != NULL; r = r->next) {
        if (reel_align_up(bytes + r->bytes, REEL_BLOCK_SIZE) > room)
            break;
        bytes += r->bytes;
        *records += r->count;
        last = r;
    }
    if (last == NULL)
        return NULL;
    log->q_head = last->next;
    if (log->q_head == NULL)
        log->q_tail = NULL;
    last->next = NULL;
    log->q_records -= *records;
    log->q_bytes -= bytes;
    pthread_cond_broadcast(&log->cv_done); /* room for blocked appenders */
    return head;
}

/* Pops every queued request (mu held). */
static reel_log_append_req_t *take_all(reel_log_t *log)
{
    reel_log_append_req_t *head = log->q_head;
    log->q_head = log->q_tail = NULL;
    log->q_records = log->q_bytes = 0;
    pthread_cond_broadcast(&log->cv_done);
    return head;
}

/* A write the file system turned down before any byte reached a file (see
 * the top of this file). */
static bool is_refusal(int rc)
{
    return rc == -ENOSPC || rc == -EDQUOT || rc == -EROFS;
}

/* Of a batch write's errors only EROFS is a refusal (see the top). */
static bool is_refusal_of_write(int rc)
{
    return rc == -EROFS;
}

/* Holds the log after a refused write (mu held): the refused requests
 * (failed, possibly NULL) and then every queued one fail with rc, and
 * appends are refused until reel_log_resume. The hold is set before any
 * callback runs, so a producer that resubmits from one is refused. */
static void hold_locked(reel_log_t *log, int rc, reel_log_append_req_t *failed)
{
    if (log->held == 0)
        fprintf(stderr, "reeldb: log %s: the file system refused a write (%s); appends are "
                        "refused until it takes writes again\n", log->dir, reel_strerror(rc));
    log->held = rc;
    reel_log_append_req_t *all = take_all(log);
    pthread_mutex_unlock(&log->mu);
    complete_list(failed, rc);
    complete_list(all, rc);
    pthread_mutex_lock(&log->mu);
}

/* Starts a new segment at the current end; mu held on entry and exit. A
 * failure other than a refusal makes the log fail (sticky). */
static int rollover_locked(reel_log_t *log)
{
    pthread_mutex_unlock(&log->mu);
    int rc = reel__log_segment_create(log, log->next_offset, log->chain);
    pthread_mutex_lock(&log->mu);
    if (rc < 0 && !is_refusal(rc) && log->sticky == 0) {
        log->sticky = rc;
        fprintf(stderr, "reeldb: log %s: creating a segment failed (%s); refusing appends\n",
                log->dir, reel_strerror(rc));
        pthread_cond_broadcast(&log->cv_done);
    }
    return rc;
}

/* The queue's head needs a new segment. A refusal holds the log: nothing
 * reached it, and appends resume after reel_log_resume. */
static void writer_rollover(reel_log_t *log)
{
    int rc = rollover_locked(log);
    if (is_refusal(rc))
        hold_locked(log, rc, NULL);
}

/* Group-commit linger (mu held). Producers with many appends in flight
 * refill the queue from their callbacks, which run after the previous
 * batch: without a pause the writer takes the few that arrived first and
 * batches come out at about half the appends in flight (bench: the avg_batch
 * lines of reel bench log). So when fewer records are queued than the last
 * batch held, wait for that many, at most a quarter of the last sync time:
 * a single appender (last batch of 1) never waits. */
static void linger(reel_log_t *log)
{
    if (log->last_batch_records <= 1 || log->q_records >= log->last_batch_records)
        return;
    uint64_t wait_ns = log->last_sync_ns / 4;
    wait_ns = wait_ns < LINGER_NS_MAX ? wait_ns : LINGER_NS_MAX;
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_nsec += (long)wait_ns;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    while (log->q_records < log->last_batch_records && !log->closing && log->sticky == 0) {
        log->writer_wants = log->last_batch_records;
        int rc = pthread_cond_timedwait(&log->cv_writer, &log->mu, &deadline);
        log->writer_wants = 0;
        if (rc != 0)
            break;
    }
}

/* One turn of the writer; mu held on entry and exit, queue not empty. */
static void writer_step(reel_log_t *log)
{
    uint64_t records;
    if (log->sticky || log->held) {
        int rc = log->sticky ? log->sticky : log->held;
        reel_log_append_req_t *all = take_all(log);
        pthread_mutex_unlock(&log->mu);
        complete_list(all, rc);
        pthread_mutex_lock(&log->mu);
        return;
    }
    linger(log);
    uint64_t room = segment_room(log, log->active_size);
    room = room < BATCH_ROOM ? room : BATCH_ROOM;
    reel_log_append_req_t *batch = take_batch(log, room, &records);
    if (batch == NULL) { /* the head does not fit: a new segment */
        writer_rollover(log);
        return;
    }
    pthread_mutex_unlock(&log->mu);
    int rc = write_chunk(log, batch, records);
    if (is_refusal_of_write(rc)) {
        pthread_mutex_lock(&log->mu);
        hold_locked(log, rc, batch);
        return;
    }
    if (rc < 0)
        set_sticky(log, rc); /* never retried: see io_sync.c, sync_datasync */
    complete_list(batch, rc);
    pthread_mutex_lock(&log->mu);
}

/* reel_log_seal's request: end the active segment if it holds records. */
static void writer_seal(reel_log_t *log)
{
    uint64_t gen = log->seal_requested;
    if (log->write_pos > REEL_SEGMENT_HEADER_SIZE && log->sticky == 0)
        (void)rollover_locked(log);
    log->seal_done = gen;
    pthread_cond_broadcast(&log->cv_done);
}

static void *writer_main(void *arg)
{
    reel_log_t *log = arg;
    pthread_mutex_lock(&log->mu);
    for (;;) {
        while (log->q_head == NULL && !log->closing && log->seal_requested == log->seal_done) {
            log->writer_wants = 1;
            pthread_cond_wait(&log->cv_writer, &log->mu);
        }
        log->writer_wants = 0;
        if (log->seal_requested != log->seal_done)
            writer_seal(log);
        else if (log->q_head != NULL)
            writer_step(log);
        else if (log->closing)
            break;
    }
    pthread_mutex_unlock(&log->mu);
    return NULL;
}

/* Makes a new file of the log's segment size whose bytes read as zeros,
 * and syncs it: zero_fill writes the zeros, else the space is only
 * allocated. Writing into allocated-but-unwritten extents makes each later
 * sync also commit extent metadata: ~2x slower syncs for 4-80 KiB writes on
 * this ext4 (dd oflag=direct,dsync conv=notrunc into a fallocate'd file
 * against a zero-filled one), no difference for 12 MiB writes. See
 * PREALLOC_ZERO_BELOW_BYTES for who chooses which. */
static int prealloc_file(reel_log_t *log, const char *path, bool zero_fill)
{
    uint8_t *zeros = NULL;
    if (posix_memalign((void **)&zeros, REEL_BLOCK_SIZE, PREALLOC_CHUNK) != 0)
        return -ENOMEM;
    memset(zeros, 0, PREALLOC_CHUNK);
    int fd = reel__log_open_rw(log, path, O_RDWR | O_CREAT | O_TRUNC);
    int rc = fd < 0 ? fd : 0;
    /* Without zero_fill (the writer needs a segment and the background
     * spare is not ready): allocate only, a metadata operation instead of
     * writing the whole segment while appends wait. Its first syncs cost
     * more (unwritten extents), which is the lesser evil. */
    if (rc == 0 && !zero_fill)
        rc = log->io->allocate(log->io, fd, log->opts.segment_size);
    for (uint64_t pos = 0; rc == 0 && zero_fill && pos < log->opts.segment_size;
         pos += PREALLOC_CHUNK) {
        uint64_t n = log->opts.segment_size - pos;
        rc = log->io->write(log->io, fd, zeros, n < PREALLOC_CHUNK ? n : PREALLOC_CHUNK, pos);
    }
    if (rc == 0)
        rc = log->io->datasync(log->io, fd);
    if (fd >= 0)
        log->io->close(log->io, fd);
    if (rc < 0 && fd >= 0)
        log->io->unlink(log->io, path);
    free(zeros);
    return rc;
}

/* Takes the background thread's spare file if one is ready, else makes a
 * file now (zero-filled only before the writer starts, i.e. at open; after,
 * allocated, so appends never wait for a whole segment of zeros). Returns
 * the path of the synced file in tmp. */
static int get_prealloc(reel_log_t *log, char *tmp, uint64_t first)
{
    pthread_mutex_lock(&log->mu);
    bool spare = log->spare_ready;
    log->spare_ready = false;
    if (spare) /* no new spare under that name until this one is renamed */
        log->spare_wanted = false;
    pthread_mutex_unlock(&log->mu);
    if (spare) {
        reel__log_path(log, tmp, REEL_SPARE_NAME);
        return 0;
    }
    char name[64];
    snprintf(name, sizeof(name), "%020llu.seg.tmp", (unsigned long long)first);
    reel__log_path(log, tmp, name);
    return prealloc_file(log, tmp, !log->writer_started);
}

/* Creates segment `first` (header written and synced under a .tmp name,
 * renamed, directory synced) and makes it the active one. */
int reel__log_segment_create(reel_log_t *log, uint64_t first, uint64_t prev)
{
    char tmp[PATH_MAX], path[PATH_MAX];
    int rc = get_prealloc(log, tmp, first);
    if (rc < 0)
        return rc;
    int fd = reel__log_open_rw(log, tmp, O_RDWR);
    if (fd < 0)
        return fd;
    reel_segment_header_t h = {REEL_FORMAT_VERSION, REEL_BLOCK_SIZE, log->opts.segment_size,
                               first, prev, reel_now_ms()};
    reel_segment_header_encode(log->batch_buf, &h);
    reel__log_seg_path(log, path, first, SEG_PLAIN);
    rc = log->io->write_durable(log->io, fd, log->batch_buf, REEL_SEGMENT_HEADER_SIZE, 0);
    if (rc == 0)
        rc = log->io->rename(log->io, tmp, path);
    if (rc == 0)
        rc = reel_io_fsync_dir(log->io, log->dir);
    if (rc < 0) {
        log->io->close(log->io, fd);
        return rc;
    }
    if (log->active_fd >= 0)
        log->io->close(log->io, log->active_fd);
    log->active_fd = fd;
    log->active_size = log->opts.segment_size;
    log->write_pos = REEL_SEGMENT_HEADER_SIZE;
    log->index_pos = 0;
    pthread_mutex_lock(&log->mu);
    if (log->nsegs > 0)
        log->segs[log->nsegs - 1].sealed = true;
    rc = reel__log_seg_add(log, first, first, SEG_PLAIN, false);
    log->spare_wanted = true;
    log->stats.segments = log->nsegs;
    pthread_cond_signal(&log->cv_bg);
    pthread_mutex_unlock(&log->mu);
    return rc;
}

/* Compresses one sealed plain segment (d->compressing set by the caller)
 * and swaps it for its .zseg in the table. */
static int compress_one(reel_log_t *log, uint64_t first)
{
    char seg[PATH_MAX], zseg[PATH_MAX];
    reel__log_seg_path(log, seg, first, SEG_PLAIN);
    reel__log_seg_path(log, zseg, first, SEG_ZSEG);
    int rc = reel_zseg_compress(log->io, seg, zseg);
    pthread_mutex_lock(&log->mu);
    seg_desc_t *d = reel__log_seg_find(log, first);
    REEL_ASSERT(d != NULL);
    REEL_ASSERT(d->first_offset == first);
    d->compressing = false;
    if (rc == 0) {
        d->kind = SEG_ZSEG;
        free(d->index);
        d->index = NULL;
        d->index_len = d->index_cap = 0;
    } else {
        d->compress_failed = true; /* leave it plain; reads work the same */
    }
    pthread_cond_broadcast(&log->cv_done);
    pthread_mutex_unlock(&log->mu);
    if (rc < 0) {
        fprintf(stderr, "reeldb: log %s: compressing %s failed: %s (left uncompressed)\n",
                log->dir, seg, reel_strerror(rc));
        return rc;
    }
    /* The .zseg is durable and named; the plain file can go. A crash before
     * the unlink leaves both, and open() removes the plain one. */
    rc = log->io->unlink(log->io, seg);
    return rc < 0 ? rc : reel_io_fsync_dir(log->io, log->dir);
}

/* The first sealed plain segment nobody is compressing (mu held). */
static seg_desc_t *next_to_compress(reel_log_t *log)
{
    if (log->opts.no_compress)
        return NULL;
    for (uint32_t i = 0; i < log->nsegs; i++) {
        seg_desc_t *d = &log->segs[i];
        if (d->kind == SEG_PLAIN && d->sealed && !d->compressing && !d->compress_failed &&
            d->next_offset > d->first_offset)
            return d;
    }
    return NULL;
}

int reel__log_compress_sealed(reel_log_t *log)
{
    int rc = 0;
    pthread_mutex_lock(&log->mu);
    for (;;) {
        seg_desc_t *d = next_to_compress(log);
        if (d != NULL) {
            uint64_t first = d->first_offset;
            d->compressing = true;
            pthread_mutex_unlock(&log->mu);
            int rc1 = compress_one(log, first);
            rc = rc < 0 ? rc : rc1;
            pthread_mutex_lock(&log->mu);
            continue;
        }
        bool busy = false; /* wait for the background thread's work too */
        for (uint32_t i = 0; i < log->nsegs; i++)
            busy |= log->segs[i].compressing;
        if (!busy)
            break;
        pthread_cond_wait(&log->cv_done, &log->mu);
    }
    pthread_mutex_unlock(&log->mu);
    return rc;
}

/* Background thread: keeps one preallocated spare segment ready and
 * compresses sealed segments, so the writer never waits for either. */
static void *bg_main(void *arg)
{
    reel_log_t *log = arg;
    char spare[PATH_MAX];
    reel__log_path(log, spare, REEL_SPARE_NAME);
    pthread_mutex_lock(&log->mu);
    while (!log->closing) {
        seg_desc_t *d;
        if (log->spare_wanted && !log->spare_ready) {
            bool zero_fill = log->batch_bytes_avg < PREALLOC_ZERO_BELOW_BYTES;
            log->spare_wanted = false;
            pthread_mutex_unlock(&log->mu);
            int rc = prealloc_file(log, spare, zero_fill);
            pthread_mutex_lock(&log->mu);
            log->spare_ready = rc == 0; /* on failure the writer makes its own */
        } else if ((d = next_to_compress(log)) != NULL) {
            uint64_t first = d->first_offset;
            d->compressing = true;
            pthread_mutex_unlock(&log->mu);
            (void)compress_one(log, first);
            pthread_mutex_lock(&log->mu);
        } else {
            pthread_cond_wait(&log->cv_bg, &log->mu);
        }
    }
    pthread_mutex_unlock(&log->mu);
    return NULL;
}

int reel_log_seal(reel_log_t *log)
{
    if (log->opts.read_only)
        return REEL_ERDONLY;
    pthread_mutex_lock(&log->mu);
    uint64_t gen = ++log->seal_requested;
    pthread_cond_signal(&log->cv_writer);
    while (log->seal_done < gen && !log->closing)
        pthread_cond_wait(&log->cv_done, &log->mu);
    int rc = log->sticky;
    pthread_mutex_unlock(&log->mu);
    if (rc < 0)
        return rc;
    return reel__log_compress_sealed(log);
}

int reel__log_writer_start(reel_log_t *log)
{
    pthread_mutex_lock(&log->mu);
    log->spare_wanted = true;
    pthread_mutex_unlock(&log->mu);
    if (pthread_create(&log->writer, NULL, writer_main, log) != 0)
        return -EAGAIN;
    log->writer_started = true;
    if (pthread_create(&log->bg, NULL, bg_main, log) != 0)
        return -EAGAIN;
    log->bg_started = true;
    return 0;
}

void reel__log_writer_stop(reel_log_t *log)
{
    pthread_mutex_lock(&log->mu);
    log->closing = true;
    pthread_cond_broadcast(&log->cv_writer);
    pthread_cond_broadcast(&log->cv_bg);
    pthread_cond_broadcast(&log->cv_done);
    pthread_mutex_unlock(&log->mu);
    if (log->writer_started)
        pthread_join(log->writer, NULL);
    if (log->bg_started)
        pthread_join(log->bg, NULL);
    log->writer_started = log->bg_started = false;
}
