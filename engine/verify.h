/*
 * verify.h: a whole-log check that reads every segment and changes nothing.
 *
 * reel_log_verify() answers "is this log whole?" the way recovery would,
 * but without recovering: it lists the segment files of a log directory,
 * checks that they follow one another (offsets and the hash chain across
 * segments), scans every plain segment record by record, and decompresses
 * every block of every compressed segment and checks each record in it.
 * It stops at the first problem and names it: the segment file, the
 * offset, the byte, and why.
 *
 * It takes no lock and writes nothing, so it may run beside a writer (in
 * this process or another). A writer only ever adds to the tail, creates a
 * new last segment, or swaps a sealed X.seg for its X.zseg; the check
 * copes with each (see verify.c, invariants 1-3). What it reports for a
 * live log is a consistent prefix of it: every acknowledged record up to
 * next_offset, as of some moment during the check.
 *
 * Threads: any thread; the call is synchronous and keeps no state after it
 * returns.
 */
#ifndef REEL_VERIFY_H
#define REEL_VERIFY_H

#include <stdint.h>

/* Room for a segment file name ("%020llu.zseg" is 25 bytes) and the text
 * of a finding. */
#define REEL_VERIFY_NAME_MAX 32u
#define REEL_VERIFY_WHY_MAX 256u

typedef struct reel_verify_report {
    /* What was checked, up to the first problem (a torn tail's kept
     * records included). */
    uint64_t segments;        /* segments checked: one per first offset */
    uint64_t plain_segments;  /* of those, plain (*.seg) */
    uint64_t zseg_segments;   /* of those, compressed (*.zseg) */
    uint64_t leftover_plain;  /* X.seg found beside X.zseg: compression
                               * finished, the unlink did not; the next
                               * writable open removes it. Not checked. */
    uint64_t records;         /* whole records checked */
    uint64_t raw_bytes;       /* their bytes: headers, payloads and 8-byte
                               * alignment, without block padding */
    uint64_t file_bytes;      /* bytes of the segment files checked */
    uint64_t zseg_raw_bytes;  /* raw_bytes that sit in compressed segments */
    uint64_t zseg_file_bytes; /* and their file bytes: the compression
                               * ratio is zseg_raw_bytes / zseg_file_bytes */
    uint64_t next_offset;     /* one past the last whole record checked */
    uint64_t last_time_ms;    /* time of that record; 0 if none */
    uint32_t attempts;        /* passes: more than 1 when a finding that a
                               * live writer could explain was looked at again */

    /* The verdict. */
    int status;                       /* 0: whole; see reel_log_verify */
    char file[REEL_VERIFY_NAME_MAX];  /* first bad segment's file name
                                       * (no directory); "" if none */
    uint64_t bad_offset;              /* offset expected at the problem */
    uint64_t bad_pos;                 /* byte of the problem in `file`: a
                                       * record's position (plain), the
                                       * frame's position (compressed), 0
                                       * for a segment header */
    char why[REEL_VERIFY_WHY_MAX];    /* human text; "" when whole */
} reel_verify_report_t;

/* Checks the log in dir and fills *rep (always, also on failure). Reads
 * files through a private sync I/O backend; never writes, never locks.
 *
 * Returns rep->status, which is one of:
 *   0              the log is whole;
 *   REEL_ETORN     the log is whole but for a torn tail in its last
 *                  segment: an unfinished, so never acknowledged, last
 *                  batch. The next writable open cuts it; nothing
 *                  acknowledged is lost. (Beside a writer that stalls in
 *                  the middle of a write for longer than the retries
 *                  wait, its in-flight batch can look the same.)
 *   REEL_ECORRUPT  a damaged segment header, record, block, index or
 *                  footer, an overlap, or a file shorter than its header;
 *   REEL_ECHAIN    the hash chain is broken (between records or across
 *                  segments);
 *   REEL_EMISSING  offsets are missing: a segment file is gone (rep->why
 *                  names the gap), or the log does not start at 0, or the
 *                  last segment is compressed (the active one is gone);
 *   REEL_EVERSION  a segment has a format version this build cannot read;
 *   -errno         the check could not run (-ENOENT: no such directory,
 *                  -EIO, -ENOMEM, -E2BIG: more than REEL_SEGMENTS_MAX
 *                  segment files); rep->why says where.
 * An empty directory is a whole, empty log. */
int reel_log_verify(const char *dir, reel_verify_report_t *rep);

/* Called after each segment checked, with the report so far (for a
 * progress line: rep->file_bytes of the segments' total). */
typedef void (*reel_verify_progress_cb)(void *ctx, const reel_verify_report_t *rep);
/* reel_log_verify with a progress callback (progress may be NULL). */
int reel_log_verify_progress(const char *dir, reel_verify_report_t *rep,
                             reel_verify_progress_cb progress, void *ctx);

#endif /* REEL_VERIFY_H */
