/*
 * log_iter.c: reading the log from any offset, across plain and compressed
 * segments, up to the durable end; tailing by calling again.
 *
 * Every record read is checked again (header and payload checksums, its
 * offset, and the chain to the record before it): a reader never trusts
 * bytes it did not check, even if they were checked when written.
 *
 * An iterator opens its own file descriptors, so a segment that the
 * background thread compresses and unlinks stays readable until the
 * iterator moves on (the open file keeps the data).
 */
#include "engine/log_int.h"
#include "engine/common.h"
#include "engine/limits.h"
#include "engine/zseg.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define ITER_BUF_BYTES (1u << 20)
#define ITER_BUF_MAX (REEL_RECORD_HEADER_SIZE + REEL_RECORD_PAYLOAD_MAX + REEL_RECORD_ALIGN)
#define ITER_REOPEN_TRIES 4

struct reel_log_iter {
    reel_log_t *log;
    uint64_t next;       /* next offset to return */
    bool chained;        /* chain holds the checksum of record next - 1 */
    uint64_t chain;
    bool positioned;     /* a segment is open */
    seg_kind_t kind;
    /* plain */
    int fd;
    uint8_t *buf;
    size_t cap;
    uint64_t buf_pos;    /* file position of buf[0] */
    size_t buf_len;
    uint64_t pos;        /* file position of the next record */
    /* compressed */
    reel_zseg_t *z;
    uint32_t block;
    uint32_t blocks;
    const uint8_t *raw;
    uint32_t raw_len;
    uint32_t raw_pos;
};

int reel_log_iter_open(reel_log_t *log, uint64_t from, reel_log_iter_t **out)
{
    reel_log_iter_t *it = calloc(1, sizeof(*it));
    if (it == NULL)
        return -ENOMEM;
    it->log = log;
    it->next = from;
    it->fd = -1;
    *out = it;
    return 0;
}

static void iter_unposition(reel_log_iter_t *it)
{
    if (it->fd >= 0)
        it->log->io->close(it->log->io, it->fd);
    it->fd = -1;
    reel_zseg_close(it->z);
    it->z = NULL;
    it->raw = NULL;
    it->buf_len = 0;
    it->positioned = false;
}

void reel_log_iter_close(reel_log_iter_t *it)
{
    if (it == NULL)
        return;
    iter_unposition(it);
    free(it->buf);
    free(it);
}

/* Start position in a plain segment for offset: the last index entry at or
 * before it (mu held). */
static uint64_t index_lookup(const seg_desc_t *d, uint64_t offset)
{
    uint64_t pos = REEL_SEGMENT_HEADER_SIZE;
    uint32_t lo = 0, hi = d->index_len;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (d->index[mid].offset <= offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo > 0)
        pos = d->index[lo - 1].pos;
    return pos;
}

static int position_zseg(reel_log_iter_t *it, const char *path)
{
    reel_zseg_info_t info;
    int rc = reel_zseg_open(it->log->io, path, &it->z);
    if (rc < 0)
        return rc;
    reel_zseg_get_info(it->z, &info);
    it->blocks = info.blocks;
    rc = reel_zseg_find_block(it->z, it->next, &it->block);
    if (rc < 0)
        return rc == REEL_ENOTFOUND ? REEL_ECORRUPT : rc;
    uint64_t first;
    rc = reel_zseg_read_block(it->z, it->block, &it->raw, &it->raw_len, &first);
    it->raw_pos = 0;
    return rc;
}

/* Opens the segment that holds it->next. */
static int iter_position(reel_log_iter_t *it)
{
    char path[PATH_MAX];
    int rc = -ENOENT;
    iter_unposition(it);
    for (int tries = 0; rc == -ENOENT && tries < ITER_REOPEN_TRIES; tries++) {
        pthread_mutex_lock(&it->log->mu);
        seg_desc_t *d = reel__log_seg_find(it->log, it->next);
        if (d == NULL) {
            pthread_mutex_unlock(&it->log->mu);
            return REEL_ENOTFOUND;
        }
        it->kind = d->kind;
        it->pos = d->kind == SEG_PLAIN ? index_lookup(d, it->next) : 0;
        reel__log_seg_path(it->log, path, d->first_offset, d->kind);
        pthread_mutex_unlock(&it->log->mu);
        if (it->kind == SEG_ZSEG) {
            rc = position_zseg(it, path);
        } else {
            it->fd = it->log->io->open(it->log->io, path, O_RDONLY, 0);
            rc = it->fd < 0 ? it->fd : 0;
        }
        if (rc < 0)
            iter_unposition(it);
        /* -ENOENT: compressed and unlinked since we looked: look again. */
    }
    it->positioned = rc == 0;
    it->chained = it->chained && rc == 0;
    return rc;
}

/* Makes buf hold file bytes [pos, pos + need); returns REEL_EEND when the
 * file ends first. */
static int plain_fill(reel_log_iter_t *it, uint64_t pos, size_t need)
{
    if (pos >= it->buf_pos && pos + need <= it->buf_pos + it->buf_len)
        return 0;
    if (need > ITER_BUF_MAX)
        return REEL_ECORRUPT;
    size_t want = need > ITER_BUF_BYTES ? need : ITER_BUF_BYTES;
    if (want > it->cap) {
        uint8_t *buf = realloc(it->buf, want);
        if (buf == NULL)
            return -ENOMEM;
        it->buf = buf;
        it->cap = want;
    }
    ssize_t n = it->log->io->read(it->log->io, it->fd, it->buf, it->cap, pos);
    if (n < 0)
        return (int)n;
    it->buf_pos = pos;
    it->buf_len = (size_t)n;
    return (size_t)n < need ? REEL_EEND : 0;
}

/* Reads the record at it->pos of a plain segment. REEL_EEND: this segment
 * has no more records. */
static int plain_next(reel_log_iter_t *it, reel_record_t *rec)
{
    for (;;) {
        int rc = plain_fill(it, it->pos, REEL_RECORD_HEADER_SIZE);
        if (rc < 0)
            return rc;
        const uint8_t *p = it->buf + (it->pos - it->buf_pos);
        if (reel_record_is_padding(p, it->pos)) {
            it->pos = reel_align_up(it->pos, REEL_BLOCK_SIZE);
            continue;
        }
        if (reel_bytes_zero(p, REEL_RECORD_HEADER_SIZE))
            return REEL_EEND;
        reel_record_header_t h;
        if (reel_record_decode_header(p, &h) != 0)
            return REEL_ECORRUPT;
        rc = plain_fill(it, it->pos, REEL_RECORD_HEADER_SIZE + h.length);
        if (rc < 0)
            return rc == REEL_EEND ? REEL_ECORRUPT : rc;
        p = it->buf + (it->pos - it->buf_pos);
        if (!reel_record_body_ok(&h, p + REEL_RECORD_HEADER_SIZE))
            return REEL_ECORRUPT;
        *rec = (reel_record_t){h.offset, h.time_ms, h.type, h.flags, h.length,
                               p + REEL_RECORD_HEADER_SIZE, h.checksum};
        it->pos += reel_record_stride(h.length);
        return h.prev_checksum == it->chain || !it->chained ? 0 : REEL_ECHAIN;
    }
}

/* Reads the next record of a compressed segment, block after block. */
static int zseg_next(reel_log_iter_t *it, reel_record_t *rec)
{
    for (;;) {
        uint64_t prev;
        int rc = reel_zseg_next_record(it->raw, it->raw_len, &it->raw_pos, rec, &prev);
        if (rc == 0)
            return prev == it->chain || !it->chained ? 0 : REEL_ECHAIN;
        if (rc != REEL_EEND)
            return rc;
        if (it->block + 1 >= it->blocks)
            return REEL_EEND;
        uint64_t first;
        it->block++;
        it->raw_pos = 0;
        rc = reel_zseg_read_block(it->z, it->block, &it->raw, &it->raw_len, &first);
        if (rc < 0)
            return rc;
    }
}

static uint64_t iter_end(reel_log_iter_t *it)
{
    return reel_log_end(it->log);
}

int reel_log_iter_next(reel_log_iter_t *it, reel_record_t *rec)
{
    if (it->next >= iter_end(it))
        return REEL_EEND;
    for (int moves = 0;;) {
        int rc = it->positioned ? 0 : iter_position(it);
        if (rc < 0)
            return rc;
        rc = it->kind == SEG_PLAIN ? plain_next(it, rec) : zseg_next(it, rec);
        if (rc == REEL_EEND) {
            /* This segment is done but the offset is durable: it is in the
             * next one. Two moves without progress mean the table lies. */
            if (++moves > 2)
                return REEL_ECORRUPT;
            iter_unposition(it);
            continue;
        }
        if (rc < 0)
            return rc;
        it->chain = rec->checksum;
        it->chained = true;
        if (rec->offset < it->next)
            continue; /* skipping from the index entry to the offset asked */
        if (rec->offset != it->next)
            return REEL_ECORRUPT;
        it->next++;
        return 0;
    }
}
