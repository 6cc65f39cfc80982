/*
 * log.h: the durable event log, reeldb's source of truth.
 *
 * The log is an append-only sequence of records with offsets 0, 1, 2, ...
 * kept in a directory of segment files (segment.h) and, once sealed,
 * zstd-compressed segments (zseg.h). It is the contract of the engine:
 *
 *   1. An append is acknowledged (its callback gets status 0) only after
 *      its records are on stable storage: written and fdatasync'd.
 *   2. Offsets are dense and in acknowledgement order; records of one
 *      append request are contiguous, and recovery keeps all or none of
 *      them (an append group).
 *   3. Every record is checksummed (header and payload) and chained to the
 *      one before it, across segments.
 *   4. After a crash, open() cuts a torn tail back to the last whole group
 *      and refuses to open a log with a bad record before its tail
 *      (REEL_ECORRUPT / REEL_ECHAIN, naming the segment and offset).
 *   5. A failed write or fdatasync makes the log refuse every later append
 *      with the first error (sticky): nothing after it is acknowledged.
 *   6. A write the file system refuses before any byte of it reaches the
 *      file (-ENOSPC/-EDQUOT making a new segment, -EROFS) is not sticky:
 *      the log HOLDS. It fails every queued append with that error and
 *      refuses new ones with it until reel_log_resume(), so the appends that
 *      succeeded before it are a prefix of those submitted: an append never
 *      lands after one submitted before it that failed.
 *
 * Threads. One writer thread per log owns the active segment and does all
 * writes (group commit). reel_log_submit() and the synchronous appends may
 * be called from any thread; callbacks run on the writer thread, in offset
 * order, and must not block for long: a callback that calls a synchronous
 * append deadlocks (the writer would wait for itself). Iterators are
 * per-thread objects; any number may run at once, also in other processes
 * opening read-only.
 */
#ifndef REEL_LOG_H
#define REEL_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/io.h"
#include "engine/record.h"

typedef struct reel_log reel_log_t;

typedef struct reel_log_iter reel_log_iter_t;

typedef struct reel_log_options {
    uint64_t segment_size; /* bytes per segment; 0: REEL_SEGMENT_SIZE_DEFAULT */
    reel_io_kind_t io_kind; /* backend when io is NULL */
    reel_io_t *io;          /* backend to use (not owned); NULL: create one */
    bool read_only;         /* no lock, no recovery writes, no appends */
    bool no_direct_io;      /* buffered writes instead of O_DIRECT */
    bool no_compress;       /* leave sealed segments uncompressed */
} reel_log_options_t;

/* One record of an append request. payload must stay valid until the
 * request's callback has run. */
typedef struct reel_log_entry {
    uint16_t type; /* never 0 */
    uint32_t length;
    const void *payload;
} reel_log_entry_t;

typedef struct reel_log_append_req reel_log_append_req_t;
typedef void (*reel_log_append_cb)(reel_log_append_req_t *req, int status);

/* An append request: allocated and owned by the caller, untouched by the
 * log after its callback. */
struct reel_log_append_req {
    /* in */
    const reel_log_entry_t *entries; /* 1..REEL_GROUP_RECORDS_MAX records */
    uint32_t count;
    uint64_t time_ms;      /* engine time; 0: the writer stamps its clock */
    reel_log_append_cb cb; /* required */
    void *data;            /* the caller's */
    /* out, valid in cb when status is 0 */
    uint64_t first_offset;
    uint64_t stamped_ms; /* time written to the records */
    /* private */
    reel_log_append_req_t *next;
    uint64_t bytes;
};

/* Opens (creating if needed) the log in dir. A writable open takes an
 * exclusive lock on dir/LOCK and recovers the tail.
 * Errors: REEL_ELOCKED, REEL_ECORRUPT, REEL_ECHAIN, REEL_EMISSING,
 * REEL_EVERSION, REEL_EUSAGE, -errno. On failure *out is NULL and
 * reel_log_last_error() is not available: the message goes to err_msg when
 * given (err_len bytes). */
int reel_log_open(const char *dir, const reel_log_options_t *opts, reel_log_t **out,
                  char *err_msg, size_t err_len);

/* Takes the writer lock of the log in dir (an exclusive flock on dir/LOCK,
 * created when missing) without waiting: what reel_log_open takes, for tools
 * that must not run beside a writer. Returns an fd (close it to release),
 * REEL_ELOCKED while another process holds it, or -errno. */
int reel_log_lock(const char *dir);

/* Waits for every submitted append to finish, stops the writer and frees
 * the log. Returns the sticky error, if any. */
int reel_log_close(reel_log_t *log);

/* Queues req. Returns 0 (the callback will run, exactly once), or at once:
 * REEL_EFULL (queue bound reached), REEL_ETOOBIG, REEL_EUSAGE, REEL_ERDONLY,
 * REEL_ECLOSED, the sticky error, or the refusal the log holds (6.); then
 * the callback never runs. */
int reel_log_submit(reel_log_t *log, reel_log_append_req_t *req);
/* Queues n requests at once, in order, so that the writer takes them
 * together (one durable write when they fit one batch and the segment).
 * Returns as reel_log_submit, for all of them: 0 (every callback will run)
 * or an error with none queued. */
int reel_log_submit_many(reel_log_t *log, reel_log_append_req_t *const *reqs, size_t n);

/* Ends a hold (6.): appends are taken again (and fail again, with a new
 * hold, while the file system still refuses them). The producer calls it
 * once it has seen every append it submitted before the hold complete, so
 * that nothing it submitted after a failed append can land before it is
 * resubmitted. Returns 0, or the sticky error. */
int reel_log_resume(reel_log_t *log);

/* Synchronous append of one group; waits for room in the queue. */
int reel_log_append_group(reel_log_t *log, const reel_log_entry_t *entries, uint32_t count,
                          uint64_t time_ms, uint64_t *first_offset);
int reel_log_append(reel_log_t *log, uint16_t type, const void *payload, uint32_t length,
                    uint64_t *offset);

/* Offsets below this are durable; it is the next offset to be assigned
 * after everything in flight. */
uint64_t reel_log_end(reel_log_t *log);
/* Time of the newest durable record (0 on an empty log). */
uint64_t reel_log_last_time_ms(reel_log_t *log);
/* 0, or the sticky error that stopped writes. */
int reel_log_status(reel_log_t *log);
/* 0, or the refusal the log holds (6.). */
int reel_log_held(reel_log_t *log);
/* Blocks until reel_log_end() > offset (0), or timeout_ms (>= 0) passes
 * (REEL_EEND), or the log fails (its sticky error) or closes (REEL_ECLOSED). */
int reel_log_wait(reel_log_t *log, uint64_t offset, int timeout_ms);

/* Ends the active segment now (the next append opens a new one) and, unless
 * no_compress, compresses every sealed segment before returning. */
int reel_log_seal(reel_log_t *log);

/* Iterator from offset `from` up to the durable end as it stands at each
 * step: reel_log_iter_next() returns 0 with a record, REEL_EEND at the end
 * (call again later to tail), or an error (REEL_ECORRUPT...). The record's
 * payload is valid until the next call. */
int reel_log_iter_open(reel_log_t *log, uint64_t from, reel_log_iter_t **out);
int reel_log_iter_next(reel_log_iter_t *it, reel_record_t *rec);
void reel_log_iter_close(reel_log_iter_t *it);

/* Counters since open. */
/* Upper bounds (µs) of the durable-write latency histogram's buckets; the
 * last bucket counts everything slower. Prometheus-style: /metrics adds
 * them up into cumulative `le` buckets. */
#define REEL_LOG_SYNC_BUCKETS_US {100, 250, 500, 1000, 2500, 5000, 10000, 25000, 100000}
#define REEL_LOG_SYNC_BUCKETS 10u
/* Bounds of the records-per-batch histogram (group-commit sizes), and the
 * rest above the last. */
#define REEL_LOG_BATCH_BUCKETS_RECORDS {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096}
#define REEL_LOG_BATCH_BUCKETS 13u

typedef struct reel_log_stats {
    uint64_t batches;
    uint64_t records;
    uint64_t bytes_written;
    uint64_t fsync_ns_total;
    uint64_t sync_hist[REEL_LOG_SYNC_BUCKETS]; /* batches by durable-write latency */
    uint64_t batch_hist[REEL_LOG_BATCH_BUCKETS]; /* batches by records */
    uint64_t segments;
    const char *io_name;
} reel_log_stats_t;
void reel_log_stats(reel_log_t *log, reel_log_stats_t *out);

#endif /* REEL_LOG_H */
