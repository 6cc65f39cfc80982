/*
 * verify.c: the whole-log check (contract in verify.h).
 *
 * A pass lists the directory, sorts the segments by first offset and
 * checks them in order: contiguity and the entering chain value from each
 * segment's header, then every record (reel_segment_scan for plain
 * segments, reel_zseg_verify for compressed ones). The first finding ends
 * the pass. Where X.seg and X.zseg both exist the .zseg is the segment, as
 * in recovery (log.c); the .seg is only counted.
 *
 * No lock is taken, so a writer may be working while we read. What a
 * writer does to the files, and why the check stays sound (cited by
 * number below):
 *   1. A sealed segment never changes, except that X.seg is replaced by
 *      X.zseg holding the same records (written as .tmp, synced, renamed,
 *      then X.seg unlinked). So a listed X.seg that is gone when we open it
 *      is read as X.zseg, and a prefix found whole stays whole.
 *   2. The writer appends to the last segment only, batch after durable
 *      batch at rising file positions, each batch padded to a block. The
 *      last segment is read back to front, one block per read, so a block
 *      is copied no earlier than every block after it: a record we see
 *      was written no later than every earlier record, and a write racing
 *      with the read can make the tail look torn, never corrupt (no false
 *      witness for segment.c's classification).
 *   3. A new segment appears (header written before its name exists) only
 *      once the one before it is complete, and a directory listing is not
 *      a snapshot: a segment being swapped for its .zseg may be missed by
 *      one listing, a new last segment may be missed too.
 * Hence a finding at the tail (in or after the last listed segment), or a
 * missing segment anywhere, may be a moment in a live writer's work rather
 * than damage: the check looks again, from the segment where it stopped,
 * until two passes agree or VERIFY_PASSES_MAX passes have run.
 */
#include "engine/verify.h"
#include "engine/common.h"
#include "engine/io.h"
#include "engine/limits.h"
#include "engine/segment.h"
#include "engine/zseg.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Passes over a moving tail, and the first wait between two; the wait
 * doubles each time: 20 + 40 + 80 + 160 ms at most, longer than a batch's
 * write (16 MiB at 1 GB/s is 16 ms) so a live writer moves on. */
#define VERIFY_PASSES_MAX 5u
#define VERIFY_RETRY_MS 20u
/* Directory entries kept: X.seg and X.zseg for every segment a log may
 * have (limits.h); past that the check refuses to run (-E2BIG). */
#define VERIFY_ENTRIES_MAX (2ull * REEL_SEGMENTS_MAX)

_Static_assert(REEL_VERIFY_NAME_MAX >= 20 + sizeof(".zseg"), "a segment name fits");
_Static_assert(REEL_SEGMENT_SIZE_MAX % REEL_BLOCK_SIZE == 0, "images are whole blocks");

/* One segment of the listing: a first offset and which files hold it. */
typedef struct found {
    uint64_t first; /* from the file name */
    bool plain;     /* X.seg exists */
    bool zseg;      /* X.zseg exists */
} found_t;

/* The state of one verification. */
typedef struct vstate {
    const char *dir;              /* the log directory (borrowed) */
    reel_io_t *io;                /* private sync backend (owned) */
    reel_verify_report_t *rep;    /* the caller's report */
    uint64_t chain;               /* chain value after the last record checked */
    char name[REEL_VERIFY_NAME_MAX]; /* file being checked, "" between files */
    uint8_t *image;               /* one plain segment, image_cap bytes (owned) */
    uint64_t image_cap;
    found_t *found;               /* the listing, sorted by first (owned) */
    uint64_t nfound;
    uint64_t found_cap;
    /* Where the next pass starts, and what was known there. */
    uint64_t resume_first;        /* skip listed segments below this offset */
    reel_verify_report_t cp_rep;  /* the report before the last segment tried */
    uint64_t cp_chain;            /* the chain value then */
    bool retry;                   /* the finding may be a live writer's: look again */
    reel_verify_progress_cb progress; /* after each segment, NULL: none */
    void *progress_ctx;
} vstate_t;

/* Records a finding (or an error that stopped the check) in the report;
 * returns status. The file is the one being checked (v->name). */
__attribute__((format(printf, 5, 6))) static int fail(vstate_t *v, int status, uint64_t offset,
                                                      uint64_t pos, const char *fmt, ...)
{
    va_list ap;
    REEL_ASSERT(status != 0);
    v->rep->status = status;
    v->rep->bad_offset = offset;
    v->rep->bad_pos = pos;
    snprintf(v->rep->file, sizeof(v->rep->file), "%s", v->name);
    va_start(ap, fmt);
    vsnprintf(v->rep->why, sizeof(v->rep->why), fmt, ap);
    va_end(ap);
    return status;
}

static void set_name(vstate_t *v, uint64_t first, bool zseg)
{
    snprintf(v->name, sizeof(v->name), "%020" PRIu64 "%s", first, zseg ? ".zseg" : ".seg");
}

/* dir/name into buf (PATH_MAX bytes). */
static int make_path(const vstate_t *v, char *buf, const char *name)
{
    int n = snprintf(buf, PATH_MAX, "%s/%s", v->dir, name);
    return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

/* ---- the listing ---- */

static int found_cmp(const void *a, const void *b)
{
    const found_t *x = a, *y = b;
    return x->first < y->first ? -1 : x->first > y->first;
}

static int found_push(vstate_t *v, uint64_t first, bool zseg)
{
    if (v->nfound == v->found_cap) {
        uint64_t cap = v->found_cap ? v->found_cap * 2 : 64;
        if (v->nfound >= VERIFY_ENTRIES_MAX)
            return -E2BIG;
        cap = cap < VERIFY_ENTRIES_MAX ? cap : VERIFY_ENTRIES_MAX;
        found_t *grown = realloc(v->found, cap * sizeof(*grown));
        if (grown == NULL)
            return -ENOMEM;
        v->found = grown;
        v->found_cap = cap;
    }
    v->found[v->nfound++] = (found_t){first, !zseg, zseg};
    return 0;
}

/* Sorts the entries and folds X.seg and X.zseg into one. Sorting first
 * keeps it O(n log n) for a million segments. */
static int found_merge(vstate_t *v)
{
    uint64_t out = 0;
    if (v->nfound > 1)
        qsort(v->found, v->nfound, sizeof(*v->found), found_cmp);
    for (uint64_t i = 0; i < v->nfound; i++) {
        if (out > 0 && v->found[out - 1].first == v->found[i].first) {
            v->found[out - 1].plain |= v->found[i].plain;
            v->found[out - 1].zseg |= v->found[i].zseg;
        } else {
            v->found[out++] = v->found[i];
        }
    }
    v->nfound = out;
    return out > REEL_SEGMENTS_MAX ? -E2BIG : 0;
}

/* Lists the segment files of the directory. *.tmp files (a segment being
 * created or compressed) are not part of the log and are skipped. */
static int list_segments(vstate_t *v)
{
    DIR *d = opendir(v->dir);
    struct dirent *e;
    int rc = 0;
    v->nfound = 0;
    if (d == NULL) {
        rc = REEL_ERR(errno);
        return fail(v, rc, 0, 0, "%s: %s", v->dir, reel_strerror(rc));
    }
    while (rc == 0 && (errno = 0, e = readdir(d)) != NULL) {
        uint64_t first;
        if (reel_segment_parse_name(e->d_name, ".seg", &first))
            rc = found_push(v, first, false);
        else if (reel_segment_parse_name(e->d_name, ".zseg", &first))
            rc = found_push(v, first, true);
    }
    if (rc == 0 && errno != 0)
        rc = REEL_ERR(errno); /* readdir failed, not the end */
    closedir(d);
    if (rc == 0)
        rc = found_merge(v);
    if (rc != 0)
        return fail(v, rc, 0, 0, "%s: listing the segments: %s%s", v->dir, reel_strerror(rc),
                    rc == -E2BIG ? " (more segment files than REEL_SEGMENTS_MAX)" : "");
    return 0;
}

/* ---- counting ---- */

/* Record bytes of a plain segment, by whole append groups: a torn tail's
 * unfinished group is not kept by the scan, so it is not counted either. */
typedef struct raw_count {
    uint64_t pending; /* bytes of the group being read */
    uint64_t kept;    /* bytes of the whole groups so far */
} raw_count_t;

static int count_cb(void *ctx, const reel_record_t *rec, uint64_t pos)
{
    raw_count_t *c = ctx;
    (void)pos;
    c->pending += reel_record_stride(rec->length);
    if (!(rec->flags & REEL_RECORD_F_GROUP_CONT)) {
        c->kept += c->pending;
        c->pending = 0;
    }
    return 0;
}

/* Adds what a segment's check kept to the report and moves the chain on. */
static void account(vstate_t *v, const reel_scan_t *s, uint64_t raw, uint64_t file_bytes,
                    bool zseg)
{
    reel_verify_report_t *r = v->rep;
    REEL_ASSERT(s->next_offset >= r->next_offset);
    r->segments++;
    r->plain_segments += !zseg;
    r->zseg_segments += zseg;
    r->records += s->records;
    r->raw_bytes += raw;
    r->file_bytes += file_bytes;
    r->zseg_raw_bytes += zseg ? raw : 0;
    r->zseg_file_bytes += zseg ? file_bytes : 0;
    r->next_offset = s->next_offset;
    if (s->records > 0)
        r->last_time_ms = s->last_time_ms;
    v->chain = s->last_checksum;
}

/* ---- compressed segments ---- */

static int zseg_open_fail(vstate_t *v, const found_t *f, int rc)
{
    if (rc == -ENOENT) /* nothing unlinks a .zseg; a pass may have raced */
        return fail(v, REEL_EMISSING, f->first, 0, "the file vanished during the check");
    if (rc == REEL_ECORRUPT)
        return fail(v, rc, f->first, 0, "bad header, block index or footer");
    if (rc == REEL_EVERSION)
        return fail(v, rc, f->first, 0, "a format version this build (version %u) cannot read",
                    REEL_FORMAT_VERSION);
    return fail(v, rc, f->first, 0, "opening: %s", reel_strerror(rc));
}

/* The header's extent and entering chain value against the name and the
 * segment before. */
static int zseg_check_info(vstate_t *v, const found_t *f, const reel_zseg_info_t *info)
{
    if (info->first_offset != f->first)
        return fail(v, REEL_ECORRUPT, f->first, 0,
                    "the header says the first offset is %" PRIu64 ", the file name says %" PRIu64,
                    info->first_offset, f->first);
    if (info->prev_checksum != v->chain)
        return fail(v, REEL_ECHAIN, f->first, 0,
                    "hash chain broken: entering chain value %016" PRIx64
                    " is not the previous segment's last checksum %016" PRIx64,
                    info->prev_checksum, v->chain);
    return 0;
}

/* Opens the .zseg and decompresses and checks every block of it. */
static int check_zseg(vstate_t *v, const found_t *f)
{
    char path[PATH_MAX];
    reel_zseg_t *z = NULL;
    reel_zseg_info_t info;
    reel_scan_t s;
    set_name(v, f->first, true);
    int rc = make_path(v, path, v->name);
    if (rc != 0)
        return fail(v, rc, f->first, 0, "%s", reel_strerror(rc));
    rc = reel_zseg_open(v->io, path, &z);
    if (rc != 0)
        return zseg_open_fail(v, f, rc);
    reel_zseg_get_info(z, &info);
    rc = zseg_check_info(v, f, &info);
    if (rc == 0) {
        rc = reel_zseg_verify(z, &s);
        account(v, &s, s.end_pos, info.file_bytes, true);
        if (rc != 0)
            fail(v, rc, s.bad_offset, s.bad_pos, "%s%s", s.why,
                 f->plain ? "; its .seg is still present" : "");
    }
    reel_zseg_close(z);
    return rc;
}

/* ---- plain segments ---- */

/* Reads and checks the segment header: format, extent, entering chain. */
static int plain_header(vstate_t *v, int fd, uint64_t first, reel_segment_header_t *hdr)
{
    uint8_t block[REEL_SEGMENT_HEADER_SIZE];
    ssize_t n = v->io->read(v->io, fd, block, sizeof(block), 0);
    if (n < 0)
        return fail(v, (int)n, first, 0, "reading the header: %s", reel_strerror((int)n));
    if ((size_t)n < sizeof(block))
        return fail(v, REEL_ECORRUPT, first, 0, "short file: %zd bytes, no whole segment header",
                    n);
    int rc = reel_segment_header_decode(block, hdr);
    if (rc == REEL_EVERSION)
        return fail(v, rc, first, 0, "format version %" PRIu32 "; this build reads version %u",
                    hdr->version, REEL_FORMAT_VERSION);
    if (rc != 0)
        return fail(v, rc, first, 0, "bad segment header (magic, checksum or sizes)");
    if (hdr->first_offset != first)
        return fail(v, REEL_ECORRUPT, first, 0,
                    "the header says the first offset is %" PRIu64 ", the file name says %" PRIu64,
                    hdr->first_offset, first);
    if (hdr->prev_checksum != v->chain)
        return fail(v, REEL_ECHAIN, first, 0,
                    "hash chain broken: entering chain value %016" PRIx64
                    " is not the previous segment's last checksum %016" PRIx64,
                    hdr->prev_checksum, v->chain);
    return 0;
}

/* Reads the whole file into v->image (size bytes, from the checked
 * header: at most REEL_SEGMENT_SIZE_MAX). The last segment is read back to
 * front, a block at a time (invariant 2). */
static int plain_load(vstate_t *v, int fd, uint64_t first, uint64_t size, bool last)
{
    REEL_ASSERT(size <= REEL_SEGMENT_SIZE_MAX);
    REEL_ASSERT(size % REEL_BLOCK_SIZE == 0);
    if (v->image_cap < size) {
        free(v->image);
        v->image_cap = 0;
        if ((v->image = malloc(size)) == NULL)
            return fail(v, -ENOMEM, first, 0, "no memory for a %" PRIu64 "-byte segment", size);
        v->image_cap = size;
    }
    uint64_t step = last ? REEL_BLOCK_SIZE : size;
    for (uint64_t pos = size; pos > 0; pos -= step) {
        ssize_t n = v->io->read(v->io, fd, v->image + pos - step, step, pos - step);
        if (n < 0)
            return fail(v, (int)n, first, pos - step, "reading: %s", reel_strerror((int)n));
        if ((uint64_t)n < step)
            return fail(v, REEL_ECORRUPT, first, pos - step + (uint64_t)n,
                        "short file: it ends before the %" PRIu64 " bytes its header says", size);
    }
    return 0;
}

/* Scans every record of the loaded image. */
static int plain_scan(vstate_t *v, const reel_segment_header_t *hdr, bool last)
{
    reel_scan_t s;
    raw_count_t count = {0, 0};
    int rc = reel_segment_scan(v->image, hdr->segment_size, hdr, last, count_cb, &count, &s);
    account(v, &s, count.kept, hdr->segment_size, false);
    if (rc != 0)
        return fail(v, rc, s.bad_offset, s.bad_pos, "%s", s.why);
    return 0;
}

static int check_plain(vstate_t *v, const found_t *f, bool last)
{
    char path[PATH_MAX];
    reel_segment_header_t hdr;
    set_name(v, f->first, false);
    int rc = make_path(v, path, v->name);
    if (rc != 0)
        return fail(v, rc, f->first, 0, "%s", reel_strerror(rc));
    int fd = v->io->open(v->io, path, O_RDONLY, 0);
    if (fd == -ENOENT) { /* invariant 1: compressed since the listing */
        found_t z = {f->first, false, true};
        return check_zseg(v, &z);
    }
    if (fd < 0)
        return fail(v, fd, f->first, 0, "opening: %s", reel_strerror(fd));
    rc = plain_header(v, fd, f->first, &hdr);
    if (rc == 0)
        rc = plain_load(v, fd, f->first, hdr.segment_size, last);
    (void)v->io->close(v->io, fd); /* read only: nothing to lose */
    return rc == 0 ? plain_scan(v, &hdr, last) : rc;
}

/* ---- passes ---- */

/* Checks one listed segment: it must start where the one before ended. */
static int check_one(vstate_t *v, const found_t *f, bool last)
{
    uint64_t next = v->rep->next_offset;
    set_name(v, f->first, f->zseg);
    if (f->first > next)
        return fail(v, REEL_EMISSING, next, 0,
                    "offsets %" PRIu64 "..%" PRIu64 " are missing: no segment starts at %" PRIu64
                    " (this is the next one found)", next, f->first - 1, next);
    if (f->first < next)
        return fail(v, REEL_ECORRUPT, f->first, 0,
                    "starts at offset %" PRIu64 ", inside the segment before, which ends at %" PRIu64,
                    f->first, next);
    if (!f->zseg)
        return check_plain(v, f, last);
    v->rep->leftover_plain += f->plain;
    int rc = check_zseg(v, f);
    /* Only sealed segments are compressed, and a segment is sealed once
     * its successor exists (log.c, recover_all): that successor is gone. */
    if (rc == 0 && last && !f->plain)
        return fail(v, REEL_EMISSING, v->rep->next_offset, 0,
                    "the last segment is compressed: the active segment after it is missing");
    return rc;
}

/* Lists the directory and checks the segments from v->resume_first on.
 * Before each segment it notes what is known, for a next pass. */
static int verify_pass(vstate_t *v)
{
    v->name[0] = '\0';
    int rc = list_segments(v);
    if (rc != 0)
        return rc;
    for (uint64_t i = 0; i < v->nfound; i++) {
        const found_t *f = &v->found[i];
        bool last = i + 1 == v->nfound;
        if (f->first < v->resume_first)
            continue; /* checked by an earlier pass; unchanged (invariant 1) */
        v->cp_rep = *v->rep;
        v->cp_chain = v->chain;
        /* A gap's missing segment starts below f->first: resume there. */
        v->resume_first = f->first < v->rep->next_offset ? f->first : v->rep->next_offset;
        rc = check_one(v, f, last);
        if (rc != 0) {
            v->retry = last || rc == REEL_EMISSING; /* invariants 2, 3 */
            return rc;
        }
        if (v->progress != NULL)
            v->progress(v->progress_ctx, v->rep);
    }
    return 0;
}

static bool same_finding(const reel_verify_report_t *a, const reel_verify_report_t *b)
{
    return a->status == b->status && a->bad_offset == b->bad_offset &&
           a->bad_pos == b->bad_pos && strcmp(a->file, b->file) == 0;
}

static void sleep_ms(uint32_t ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int reel_log_verify(const char *dir, reel_verify_report_t *rep)
{
    return reel_log_verify_progress(dir, rep, NULL, NULL);
}

int reel_log_verify_progress(const char *dir, reel_verify_report_t *rep,
                             reel_verify_progress_cb progress, void *ctx)
{
    REEL_ASSERT(dir != NULL);
    REEL_ASSERT(rep != NULL);
    vstate_t v = {.dir = dir, .rep = rep, .progress = progress, .progress_ctx = ctx};
    reel_verify_report_t prev;
    memset(rep, 0, sizeof(*rep));
    int rc = reel_io_sync_create(&v.io);
    if (rc != 0)
        return fail(&v, rc, 0, 0, "creating an I/O backend: %s", reel_strerror(rc));
    for (uint32_t pass = 1;; pass++) {
        rep->attempts = pass;
        v.retry = false;
        rc = verify_pass(&v);
        if (rc == 0 || !v.retry || pass == VERIFY_PASSES_MAX ||
            (pass > 1 && same_finding(&prev, rep)))
            break;
        prev = *rep;
        sleep_ms(VERIFY_RETRY_MS << (pass - 1));
        *rep = v.cp_rep; /* back to before the segment where it stopped */
        v.chain = v.cp_chain;
    }
    REEL_ASSERT(rc == rep->status);
    reel_io_destroy(v.io);
    free(v.image);
    free(v.found);
    return rc;
}
