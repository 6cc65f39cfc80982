/*
 * log_int.h: the log's internals, shared by log.c (open, recovery, the
 * segment table), log_writer.c (group commit, rollover, preallocation,
 * compression) and log_iter.c (readers). Not part of the contract: see
 * log.h for that.
 *
 * Locking. log->mu guards the queue, the segment table, the durable end
 * and the sticky status. The writer thread owns the active segment's fd,
 * write position and chain value without a lock. Callbacks run with no
 * lock held.
 */
#ifndef REEL_LOG_INT_H
#define REEL_LOG_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/log.h"
#include "engine/segment.h"

typedef enum seg_kind {
    SEG_PLAIN = 1, /* "%020llu.seg" */
    SEG_ZSEG = 2,  /* "%020llu.zseg" */
} seg_kind_t;

/* One entry of a plain segment's sparse index: a record start. */
typedef struct seg_index_entry {
    uint64_t offset;
    uint64_t pos;
} seg_index_entry_t;

typedef struct seg_desc {
    uint64_t first_offset;
    uint64_t next_offset;  /* one past the last durable record */
    seg_kind_t kind;
    bool sealed;           /* no more appends: may be compressed */
    bool compressing;      /* taken by the compressor */
    bool compress_failed;  /* compression failed once: leave it plain */
    seg_index_entry_t *index; /* plain only: sorted by offset */
    uint32_t index_len;
    uint32_t index_cap;
    uint64_t index_pos_last; /* file position of the last entry */
} seg_desc_t;

struct reel_log {
    char *dir;
    reel_log_options_t opts;
    reel_io_t *io;
    bool own_io;
    int lock_fd;
    bool direct_io; /* O_DIRECT worked on this file system */

    pthread_mutex_t mu;
    pthread_cond_t cv_writer; /* the writer waits for work */
    pthread_cond_t cv_done;   /* appenders wait for durability or room */
    pthread_cond_t cv_bg;     /* the background thread waits for work */

    /* Queue of submitted requests, guarded by mu. */
    reel_log_append_req_t *q_head;
    reel_log_append_req_t *q_tail;
    uint64_t q_records;
    uint64_t q_bytes;
    bool closing;
    int sticky;            /* first write/sync error; writes refused after */
    int held;              /* a refused write (no space, read-only file system):
                            * appends refused until reel_log_resume (log_writer.c) */
    uint64_t seal_requested; /* generation counters for reel_log_seal */
    uint64_t seal_done;

    /* Durable state, guarded by mu. */
    uint64_t end;          /* offsets below are durable */
    uint64_t last_time_ms; /* time of the newest durable record */

    /* Segment table, guarded by mu, sorted by first_offset. */
    seg_desc_t *segs;
    uint32_t nsegs;
    uint32_t segs_cap;

    /* Writer state: the writer thread's alone after open. */
    pthread_t writer;
    bool writer_started;
    int active_fd;
    uint64_t write_pos;    /* next byte to write in the active segment */
    uint64_t active_size;  /* the active segment's file size */
    uint64_t chain;        /* checksum of the newest record written */
    uint64_t next_offset;  /* offset the next record written gets */
    uint64_t index_pos;    /* position of the active segment's last index entry */
    seg_index_entry_t *batch_index; /* index entries of the batch in flight */
    uint64_t clock_ms;     /* newest time stamped */
    uint64_t last_batch_records; /* size of the previous batch, for the linger */
    uint64_t last_sync_ns;       /* its write_durable time */
    uint64_t batch_bytes_avg;    /* moving average of batch bytes (mu) */
    uint64_t writer_wants;       /* queued records that wake the waiting writer, 0: not waiting */
    uint8_t *batch_buf;    /* REEL_BATCH_BYTES_MAX + a block, aligned */

    /* Background thread: preallocates the spare segment, compresses sealed
     * ones. Spare state guarded by mu. */
    pthread_t bg;
    bool bg_started;
    bool spare_ready;      /* REEL_SPARE_NAME is preallocated and synced */
    bool spare_wanted;     /* the writer took the spare: make another */

    reel_log_stats_t stats; /* guarded by mu */
};

/* Paths under the log's directory into buf (PATH_MAX). */
void reel__log_path(const reel_log_t *log, char *buf, const char *name);
void reel__log_seg_path(const reel_log_t *log, char *buf, uint64_t first, seg_kind_t kind);
#define REEL_SPARE_NAME "spare.seg.tmp"

/* Segment table (mu held). */
int reel__log_seg_add(reel_log_t *log, uint64_t first, uint64_t next, seg_kind_t kind, bool sealed);
seg_desc_t *reel__log_seg_find(reel_log_t *log, uint64_t offset);
int reel__log_index_add(seg_desc_t *d, uint64_t offset, uint64_t pos);

/* Opens a segment file for writing, with O_DIRECT when the log uses it. */
int reel__log_open_rw(reel_log_t *log, const char *path, int flags);

/* Writer and background threads (log_writer.c). */
int reel__log_writer_start(reel_log_t *log);
void reel__log_writer_stop(reel_log_t *log);
/* Creates segment `first` with entering chain `prev` and makes it active. */
int reel__log_segment_create(reel_log_t *log, uint64_t first, uint64_t prev);
/* Compresses every sealed plain segment now. */
int reel__log_compress_sealed(reel_log_t *log);

#endif /* REEL_LOG_INT_H */
