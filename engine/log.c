/*
 * log.c: opening, recovering and closing the log; the segment table.
 *
 * Recovery on open (FORMAT.md, "Recovery"), in order:
 *   1. Take dir/LOCK (flock, exclusive) so one process writes the log.
 *   2. Remove leftover *.tmp files (segments being created or compressed
 *      when the process died: never renamed, so never part of the log).
 *   3. List the segments by first offset. Where X.seg and X.zseg both exist,
 *      compression finished but the unlink did not: keep the .zseg.
 *   4. Check each segment follows the one before: first offset = the
 *      previous next offset (else REEL_EMISSING), entering chain value =
 *      the previous last checksum (else REEL_ECHAIN).
 *   5. Scan each plain segment (segment.c). Only the last may end torn; its
 *      torn tail is zeroed and synced before any new append.
 */
#include "engine/log_int.h"
#include "engine/common.h"
#include "engine/limits.h"
#include "engine/zseg.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void reel__log_path(const reel_log_t *log, char *buf, const char *name)
{
    snprintf(buf, PATH_MAX, "%s/%s", log->dir, name);
}

void reel__log_seg_path(const reel_log_t *log, char *buf, uint64_t first, seg_kind_t kind)
{
    snprintf(buf, PATH_MAX, "%s/%020" PRIu64 "%s", log->dir, first,
             kind == SEG_ZSEG ? ".zseg" : ".seg");
}

int reel__log_open_rw(reel_log_t *log, const char *path, int flags)
{
    if (log->direct_io) {
        int fd = log->io->open(log->io, path, flags | O_DIRECT, 0644);
        if (fd != -EINVAL)
            return fd;
        log->direct_io = false; /* the file system has no O_DIRECT (tmpfs) */
    }
    return log->io->open(log->io, path, flags, 0644);
}

int reel__log_seg_add(reel_log_t *log, uint64_t first, uint64_t next, seg_kind_t kind, bool sealed)
{
    if (log->nsegs == log->segs_cap) {
        uint32_t cap = log->segs_cap ? log->segs_cap * 2 : 16;
        if (cap > REEL_SEGMENTS_MAX)
            return -ENOSPC;
        seg_desc_t *segs = realloc(log->segs, cap * sizeof(*segs));
        if (segs == NULL)
            return -ENOMEM;
        log->segs = segs;
        log->segs_cap = cap;
    }
    REEL_ASSERT(log->nsegs == 0 || log->segs[log->nsegs - 1].next_offset == first);
    seg_desc_t *d = &log->segs[log->nsegs++];
    memset(d, 0, sizeof(*d));
    d->first_offset = first;
    d->next_offset = next;
    d->kind = kind;
    d->sealed = sealed;
    return 0;
}

/* The segment holding offset, or the active one for offset == end. */
seg_desc_t *reel__log_seg_find(reel_log_t *log, uint64_t offset)
{
    uint32_t lo = 0, hi = log->nsegs;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (log->segs[mid].first_offset <= offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    seg_desc_t *d = &log->segs[lo - 1];
    return offset < d->next_offset || lo == log->nsegs ? d : NULL;
}

int reel__log_index_add(seg_desc_t *d, uint64_t offset, uint64_t pos)
{
    if (d->index_len > 0 && pos < d->index_pos_last + REEL_INDEX_INTERVAL_BYTES)
        return 0;
    if (d->index_len == d->index_cap) {
        uint32_t cap = d->index_cap ? d->index_cap * 2 : 64;
        seg_index_entry_t *index = realloc(d->index, cap * sizeof(*index));
        if (index == NULL)
            return -ENOMEM;
        d->index = index;
        d->index_cap = cap;
    }
    d->index[d->index_len].offset = offset;
    d->index[d->index_len].pos = pos;
    d->index_len++;
    d->index_pos_last = pos;
    return 0;
}


/* A segment name found in the directory. */
typedef struct found_seg {
    uint64_t first;
    bool plain;
    bool zseg;
} found_seg_t;

static int found_cmp(const void *a, const void *b)
{
    const found_seg_t *x = a, *y = b;
    return x->first < y->first ? -1 : x->first > y->first;
}

static int found_note(found_seg_t **list, uint32_t *n, uint32_t *cap, uint64_t first, bool zseg)
{
    for (uint32_t i = 0; i < *n; i++) {
        if ((*list)[i].first == first) {
            (*list)[i].zseg |= zseg;
            (*list)[i].plain |= !zseg;
            return 0;
        }
    }
    if (*n == *cap) {
        uint32_t c = *cap ? *cap * 2 : 16;
        if (c > REEL_SEGMENTS_MAX)
            return -ENOSPC;
        found_seg_t *l = realloc(*list, c * sizeof(**list));
        if (l == NULL)
            return -ENOMEM;
        *list = l;
        *cap = c;
    }
    (*list)[(*n)++] = (found_seg_t){first, !zseg, zseg};
    return 0;
}

/* Lists segment files; removes *.tmp when writable. */
static int list_segments(reel_log_t *log, found_seg_t **out, uint32_t *count)
{
    DIR *d = opendir(log->dir);
    uint32_t n = 0, cap = 0;
    int rc = 0;
    *out = NULL;
    if (d == NULL)
        return REEL_ERR(errno);
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        uint64_t first;
        size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".tmp") == 0 && !log->opts.read_only) {
            char path[PATH_MAX];
            reel__log_path(log, path, e->d_name);
            rc = log->io->unlink(log->io, path);
        } else if (reel_segment_parse_name(e->d_name, ".seg", &first)) {
            rc = found_note(out, &n, &cap, first, false);
        } else if (reel_segment_parse_name(e->d_name, ".zseg", &first)) {
            rc = found_note(out, &n, &cap, first, true);
        }
    }
    closedir(d);
    if (rc == 0 && n > 1)
        qsort(*out, n, sizeof(**out), found_cmp);
    *count = n;
    return rc;
}

/* What recovery knows after each segment. */
typedef struct recovery {
    uint64_t next;      /* next offset */
    uint64_t chain;     /* chain value after the last record */
    uint64_t time_ms;   /* newest record time */
    uint64_t end_pos;   /* plain: position after the last record */
    uint64_t seg_size;  /* plain: file size from its header */
    char *err;
    size_t err_len;
} recovery_t;

static int recover_zseg(reel_log_t *log, uint64_t first, recovery_t *r)
{
    char path[PATH_MAX];
    reel_zseg_t *z;
    reel_zseg_info_t info;
    reel__log_seg_path(log, path, first, SEG_ZSEG);
    int rc = reel_zseg_open(log->io, path, &z);
    if (rc < 0) {
        reel_errf(r->err, r->err_len, "%s: %s", path, reel_strerror(rc));
        return rc;
    }
    reel_zseg_get_info(z, &info);
    reel_zseg_close(z);
    if (info.first_offset != first || first != r->next) {
        reel_errf(r->err, r->err_len, "%s: starts at offset %" PRIu64 ", expected %" PRIu64
                " (a segment is missing)", path, info.first_offset, r->next);
        return REEL_EMISSING;
    }
    if (info.prev_checksum != r->chain) {
        reel_errf(r->err, r->err_len, "%s: hash chain broken at offset %" PRIu64, path, first);
        return REEL_ECHAIN;
    }
    r->next = info.next_offset;
    r->chain = info.last_checksum;
    r->time_ms = info.last_time_ms > r->time_ms ? info.last_time_ms : r->time_ms;
    return reel__log_seg_add(log, first, info.next_offset, SEG_ZSEG, true);
}

static int index_cb(void *ctx, const reel_record_t *rec, uint64_t pos)
{
    return reel__log_index_add(ctx, rec->offset, pos);
}

/* Zeroes a torn tail [cut, dirty_end) and syncs it, before any append. The
 * block holding `cut` is rewritten with its kept bytes unchanged. */
static int cut_torn_tail(reel_log_t *log, int fd, uint8_t *image, uint64_t cut, uint64_t dirty_end)
{
    uint64_t from = cut - cut % REEL_BLOCK_SIZE;
    uint64_t to = reel_align_up(dirty_end, REEL_BLOCK_SIZE);
    REEL_ASSERT(cut >= REEL_SEGMENT_HEADER_SIZE);
    if (to <= from)
        return 0;
    memset(image + cut, 0, to - cut);
    int rc = log->io->write(log->io, fd, image + from, to - from, from);
    return rc < 0 ? rc : log->io->datasync(log->io, fd);
}

/* Reads a whole segment image. A reader beside a live writer reads the last
 * segment one block at a time from the end: the writer fills blocks in
 * order and starts a batch only after the one before is durable, so a
 * batch seen whole guarantees every earlier block is seen as written too,
 * and a race can only make the tail look torn, never corrupt. */
static int read_image(reel_log_t *log, int fd, uint8_t *image, uint64_t size, bool back_to_front)
{
    if (!back_to_front) {
        ssize_t n = log->io->read(log->io, fd, image, size, 0);
        return n < 0 ? (int)n : (uint64_t)n < size ? REEL_ECORRUPT : 0;
    }
    for (uint64_t pos = size; pos > 0; pos -= REEL_BLOCK_SIZE) {
        uint64_t at = pos - REEL_BLOCK_SIZE;
        ssize_t n = log->io->read(log->io, fd, image + at, REEL_BLOCK_SIZE, at);
        if (n < 0)
            return (int)n;
        if (n < REEL_BLOCK_SIZE)
            return REEL_ECORRUPT;
    }
    return 0;
}

static int read_segment(reel_log_t *log, const char *path, bool back_to_front, uint8_t **image,
                        uint64_t *size, reel_segment_header_t *hdr, recovery_t *r)
{
    uint8_t block[REEL_SEGMENT_HEADER_SIZE];
    int fd = log->io->open(log->io, path, O_RDONLY, 0);
    if (fd < 0) {
        reel_errf(r->err, r->err_len, "%s: %s", path, reel_strerror(fd));
        return fd;
    }
    ssize_t n = log->io->read(log->io, fd, block, sizeof(block), 0);
    int rc = n < 0 ? (int)n : n < (ssize_t)sizeof(block) ? REEL_ECORRUPT : 0;
    if (rc == 0)
        rc = reel_segment_header_decode(block, hdr);
    if (rc == 0 && (*image = malloc(hdr->segment_size)) == NULL)
        rc = -ENOMEM;
    if (rc == 0) {
        rc = read_image(log, fd, *image, hdr->segment_size, back_to_front);
        *size = hdr->segment_size;
    }
    log->io->close(log->io, fd);
    if (rc == REEL_EVERSION)
        reel_errf(r->err, r->err_len, "%s: format version %u; this reeldb reads version %u", path,
                hdr->version, REEL_FORMAT_VERSION);
    else if (rc < 0)
        reel_errf(r->err, r->err_len, "%s: %s%s", path, reel_strerror(rc),
                rc == REEL_ECORRUPT ? " (bad segment header or short file)" : "");
    return rc;
}

static int recover_plain(reel_log_t *log, uint64_t first, bool last, recovery_t *r)
{
    char path[PATH_MAX];
    uint8_t *image = NULL;
    uint64_t size = 0;
    reel_segment_header_t hdr;
    reel_scan_t s;
    reel__log_seg_path(log, path, first, SEG_PLAIN);
    int rc = read_segment(log, path, last && log->opts.read_only, &image, &size, &hdr, r);
    if (rc < 0)
        goto out_free;
    if (hdr.first_offset != first || first != r->next) {
        reel_errf(r->err, r->err_len, "%s: starts at offset %" PRIu64 ", expected %" PRIu64
                " (a segment is missing)", path, hdr.first_offset, r->next);
        rc = REEL_EMISSING;
        goto out_free;
    }
    if (hdr.prev_checksum != r->chain) {
        reel_errf(r->err, r->err_len, "%s: hash chain broken at offset %" PRIu64, path, first);
        rc = REEL_ECHAIN;
        goto out_free;
    }
    if ((rc = reel__log_seg_add(log, first, first, SEG_PLAIN, !last)) < 0)
        goto out_free;
    seg_desc_t *d = &log->segs[log->nsegs - 1];
    rc = reel_segment_scan(image, size, &hdr, last, index_cb, d, &s);
    if (rc != 0 && rc != REEL_ETORN) {
        reel_errf(r->err, r->err_len, "%s: offset %" PRIu64 " at byte %" PRIu64 ": %s", path,
                s.bad_offset, s.bad_pos, s.why);
        goto out_free;
    }
    if (rc == REEL_ETORN && !log->opts.read_only) {
        int fd = log->io->open(log->io, path, O_RDWR, 0);
        rc = fd < 0 ? fd : cut_torn_tail(log, fd, image, s.end_pos, s.dirty_end);
        if (fd >= 0)
            log->io->close(log->io, fd);
        if (rc < 0) {
            reel_errf(r->err, r->err_len, "%s: cutting the torn tail: %s", path, reel_strerror(rc));
            goto out_free;
        }
    }
    rc = 0;
    d->next_offset = s.next_offset;
    r->next = s.next_offset;
    r->chain = s.last_checksum;
    r->time_ms = s.last_time_ms > r->time_ms ? s.last_time_ms : r->time_ms;
    r->end_pos = s.end_pos;
    r->seg_size = size;
out_free:
    free(image);
    return rc;
}

static int recover_all(reel_log_t *log, recovery_t *r)
{
    found_seg_t *found = NULL;
    uint32_t n = 0;
    int rc = list_segments(log, &found, &n);
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        bool last = i + 1 == n;
        if (last && !found[i].plain) {
            /* Only sealed segments are compressed, and a segment is sealed
             * after its successor exists: that successor is gone. */
            reel_errf(r->err, r->err_len, "%s: the active segment after %020" PRIu64
                    ".zseg is missing", log->dir, found[i].first);
            rc = REEL_EMISSING;
        } else if (found[i].zseg) {
            rc = recover_zseg(log, found[i].first, r);
            if (rc == 0 && found[i].plain && !log->opts.read_only) {
                char path[PATH_MAX];
                reel__log_seg_path(log, path, found[i].first, SEG_PLAIN);
                rc = log->io->unlink(log->io, path); /* compression was done */
            }
        } else {
            rc = recover_plain(log, found[i].first, last, r);
            if (rc == -ENOENT && !last && log->opts.read_only) {
                /* A writer compressed and removed it since we listed it. */
                rc = recover_zseg(log, found[i].first, r);
            }
        }
    }
    free(found);
    return rc;
}

int reel_log_lock(const char *dir)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/LOCK", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return REEL_ERR(errno);
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int rc = errno == EWOULDBLOCK ? REEL_ELOCKED : REEL_ERR(errno);
        close(fd);
        return rc;
    }
    return fd;
}

static int take_lock(reel_log_t *log, char *err, size_t err_len)
{
    int fd = reel_log_lock(log->dir);
    if (fd < 0) {
        reel_errf(err, err_len, "%s/LOCK: %s", log->dir,
                fd == REEL_ELOCKED ? "another process is writing this log" : reel_strerror(fd));
        return fd;
    }
    log->lock_fd = fd;
    return 0;
}

/* Opens the newest plain segment for appends, or starts a new one. */
static int open_active(reel_log_t *log, const recovery_t *r)
{
    seg_desc_t *last = log->nsegs ? &log->segs[log->nsegs - 1] : NULL;
    log->chain = r->chain;
    log->clock_ms = r->time_ms;
    if (last == NULL || last->kind != SEG_PLAIN ||
        reel_align_up(r->end_pos, REEL_BLOCK_SIZE) >= r->seg_size) {
        if (last != NULL)
            last->sealed = true;
        return reel__log_segment_create(log, r->next, r->chain);
    }
    char path[PATH_MAX];
    reel__log_seg_path(log, path, last->first_offset, SEG_PLAIN);
    int fd = reel__log_open_rw(log, path, O_RDWR);
    if (fd < 0)
        return fd;
    log->active_fd = fd;
    log->active_size = r->seg_size;
    log->write_pos = reel_align_up(r->end_pos, REEL_BLOCK_SIZE);
    log->index_pos = last->index_pos_last;
    return 0;
}

static int log_alloc(const char *dir, const reel_log_options_t *opts, reel_log_t **out)
{
    reel_log_t *log = calloc(1, sizeof(*log));
    if (log == NULL)
        return -ENOMEM;
    log->opts = *opts;
    if (log->opts.segment_size == 0)
        log->opts.segment_size = REEL_SEGMENT_SIZE_DEFAULT;
    log->dir = strdup(dir);
    log->lock_fd = -1;
    log->active_fd = -1;
    log->direct_io = !opts->no_direct_io;
    pthread_mutex_init(&log->mu, NULL);
    pthread_condattr_t mono;
    pthread_condattr_init(&mono);
    pthread_condattr_setclock(&mono, CLOCK_MONOTONIC); /* the linger's deadline */
    pthread_cond_init(&log->cv_writer, &mono);
    pthread_condattr_destroy(&mono);
    pthread_cond_init(&log->cv_done, NULL);
    pthread_cond_init(&log->cv_bg, NULL);
    *out = log;
    if (log->dir == NULL)
        return -ENOMEM;
    if (!opts->read_only) {
        size_t index_max = REEL_BATCH_BYTES_MAX / REEL_INDEX_INTERVAL_BYTES + 2;
        if (posix_memalign((void **)&log->batch_buf, REEL_BLOCK_SIZE,
                           REEL_BATCH_BYTES_MAX + REEL_BLOCK_SIZE) != 0)
            return -ENOMEM;
        log->batch_index = calloc(index_max, sizeof(*log->batch_index));
        if (log->batch_index == NULL)
            return -ENOMEM;
    }
    if (opts->io != NULL) {
        log->io = opts->io;
        return 0;
    }
    log->own_io = true;
    return reel_io_create(opts->io_kind, &log->io);
}

static void log_free(reel_log_t *log)
{
    for (uint32_t i = 0; i < log->nsegs; i++)
        free(log->segs[i].index);
    free(log->segs);
    if (log->active_fd >= 0)
        log->io->close(log->io, log->active_fd);
    if (log->own_io)
        reel_io_destroy(log->io);
    if (log->lock_fd >= 0)
        close(log->lock_fd);
    pthread_mutex_destroy(&log->mu);
    pthread_cond_destroy(&log->cv_writer);
    pthread_cond_destroy(&log->cv_done);
    pthread_cond_destroy(&log->cv_bg);
    free(log->batch_buf);
    free(log->batch_index);
    free(log->dir);
    free(log);
}

static int check_options(const reel_log_options_t *opts)
{
    uint64_t size = opts->segment_size;
    if (size == 0)
        return 0;
    if (size < REEL_SEGMENT_SIZE_MIN || size > REEL_SEGMENT_SIZE_MAX || size % REEL_BLOCK_SIZE)
        return REEL_EUSAGE;
    return 0;
}

int reel_log_open(const char *dir, const reel_log_options_t *opts, reel_log_t **out,
                  char *err, size_t err_len)
{
    static const reel_log_options_t defaults;
    reel_log_t *log = NULL;
    recovery_t r = {0};
    opts = opts ? opts : &defaults;
    *out = NULL;
    reel_errf(err, err_len, "%s", "");
    int rc = check_options(opts);
    if (rc < 0) {
        reel_errf(err, err_len, "segment size must be %llu..%llu bytes, a multiple of %u",
                REEL_SEGMENT_SIZE_MIN, REEL_SEGMENT_SIZE_MAX, REEL_BLOCK_SIZE);
        return rc;
    }
    if (!opts->read_only && mkdir(dir, 0755) < 0 && errno != EEXIST) {
        reel_errf(err, err_len, "%s: %s", dir, strerror(errno));
        return REEL_ERR(errno);
    }
    rc = log_alloc(dir, opts, &log);
    if (rc == 0 && !opts->read_only)
        rc = take_lock(log, err, err_len);
    r.err = err;
    r.err_len = err_len;
    if (rc == 0)
        rc = recover_all(log, &r);
    if (rc == 0) {
        log->end = log->next_offset = r.next;
        log->last_time_ms = r.time_ms;
    }
    if (rc == 0 && !opts->read_only)
        rc = open_active(log, &r);
    if (rc == 0 && !opts->read_only)
        rc = reel__log_writer_start(log);
    if (rc < 0) {
        if (err != NULL && err[0] == '\0')
            reel_errf(err, err_len, "%s: %s", dir, reel_strerror(rc));
        reel__log_writer_stop(log);
        log_free(log);
        return rc;
    }
    *out = log;
    return 0;
}

int reel_log_close(reel_log_t *log)
{
    if (log == NULL)
        return 0;
    reel__log_writer_stop(log);
    int rc = log->sticky;
    log_free(log);
    return rc;
}

uint64_t reel_log_end(reel_log_t *log)
{
    pthread_mutex_lock(&log->mu);
    uint64_t end = log->end;
    pthread_mutex_unlock(&log->mu);
    return end;
}

uint64_t reel_log_last_time_ms(reel_log_t *log)
{
    pthread_mutex_lock(&log->mu);
    uint64_t t = log->last_time_ms;
    pthread_mutex_unlock(&log->mu);
    return t;
}

int reel_log_status(reel_log_t *log)
{
    pthread_mutex_lock(&log->mu);
    int rc = log->sticky;
    pthread_mutex_unlock(&log->mu);
    return rc;
}

int reel_log_held(reel_log_t *log)
{
    pthread_mutex_lock(&log->mu);
    int rc = log->held;
    pthread_mutex_unlock(&log->mu);
    return rc;
}

int reel_log_resume(reel_log_t *log)
{
    pthread_mutex_lock(&log->mu);
    log->held = 0;
    int rc = log->sticky;
    pthread_mutex_unlock(&log->mu);
    return rc;
}

void reel_log_stats(reel_log_t *log, reel_log_stats_t *out)
{
    pthread_mutex_lock(&log->mu);
    *out = log->stats;
    out->segments = log->nsegs;
    out->io_name = log->io->name;
    pthread_mutex_unlock(&log->mu);
}
