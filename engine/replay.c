/*
 * replay.c: folding the log into the views (replay.h).
 *
 * Payloads are copied into one fixed arena per batch because an iterator's
 * record is valid only until the next step, and decoded events point into
 * their payload (zero-copy). The arena never moves during a batch, so the
 * pointers stay good until the batch is applied.
 */
#include "engine/replay.h"
#include "engine/common.h"
#include "engine/event.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct batch {
    reel_event_t *evs;
    size_t n;
    uint8_t *arena;
    size_t used;
} batch_t;


/* Adds a record to the batch; false when the batch has no room for it. */
static bool batch_add(batch_t *b, const reel_record_t *rec, int *rc)
{
    if (b->n == REEL_REPLAY_BATCH_EVENTS ||
        (b->used + rec->length > REEL_REPLAY_BATCH_BYTES && b->n > 0))
        return false;
    uint8_t *copy = b->arena + b->used;
    if (rec->length > REEL_REPLAY_BATCH_BYTES) {
        *rc = REEL_ECORRUPT; /* no event is this large (event.h limits) */
        return true;
    }
    memcpy(copy, rec->payload, rec->length);
    reel_event_t *ev = &b->evs[b->n];
    *rc = reel_event_decode(rec->type, copy, rec->length, ev);
    if (*rc != 0)
        return true;
    ev->offset = rec->offset;
    ev->at = rec->time_ms;
    b->used += rec->length;
    b->n++;
    return true;
}

static int batch_flush(batch_t *b, reel_views_t *v, uint64_t to, reel_replay_progress_cb progress,
                       void *ctx)
{
    if (b->n == 0)
        return 0;
    int rc = reel_views_apply(v, b->evs, b->n);
    b->n = 0;
    b->used = 0;
    if (rc == 0 && progress != NULL)
        progress(ctx, reel_views_applied(v), to);
    return rc;
}

/* The iterate-decode-apply loop over [applied, to). */
static int replay_range(reel_log_iter_t *it, reel_views_t *v, batch_t *b, uint64_t from,
                        uint64_t to, reel_replay_progress_cb progress, void *ctx, char *err,
                        size_t err_len)
{
    reel_record_t rec;
    int rc = 0;
    for (uint64_t next = from; next < to && rc == 0; next++) {
        if ((rc = reel_log_iter_next(it, &rec)) != 0) {
            reel_errf(err, err_len, "reading offset %" PRIu64 ": %s", next, reel_strerror(rc));
            break;
        }
        int rc_add = 0;
        if (!batch_add(b, &rec, &rc_add)) {
            rc = batch_flush(b, v, to, progress, ctx);
            if (rc == 0) {
                bool added = batch_add(b, &rec, &rc_add);
                REEL_ASSERT(added); /* an empty batch has room for any record */
            }
        }
        if (rc == 0 && rc_add != 0) {
            /* Apply what came before it, so the views stop exactly there. */
            rc = batch_flush(b, v, to, progress, ctx);
            reel_errf(err, err_len, "offset %" PRIu64 ": not a valid event (type %u): %s", rec.offset,
                (unsigned)rec.type, reel_strerror(rc_add));
            rc = rc != 0 ? rc : rc_add;
            return rc;
        }
    }
    if (rc == 0)
        rc = batch_flush(b, v, to, progress, ctx);
    return rc;
}

int reel_replay(reel_log_t *log, reel_views_t *v, uint64_t to, reel_replay_progress_cb progress,
                void *ctx, char *err, size_t err_len)
{
    uint64_t end = reel_log_end(log);
    uint64_t from = reel_views_applied(v);
    reel_log_iter_t *it = NULL;
    batch_t b = {0};
    int rc;
    to = to < end ? to : end;
    reel_errf(err, err_len, "%s", "");
    if (from > end) {
        reel_errf(err, err_len, "the views have applied offsets up to %" PRIu64
            " but the log ends at %" PRIu64 ": they belong to another log", from, end);
        return REEL_EUSAGE;
    }
    if (from >= to)
        return 0;
    b.evs = calloc(REEL_REPLAY_BATCH_EVENTS, sizeof(*b.evs));
    b.arena = malloc(REEL_REPLAY_BATCH_BYTES);
    rc = b.evs && b.arena ? reel_log_iter_open(log, from, &it) : -ENOMEM;
    if (rc == 0)
        rc = replay_range(it, v, &b, from, to, progress, ctx, err, err_len);
    if (rc != 0 && err != NULL && err[0] == '\0')
        reel_errf(err, err_len, "%s", reel_strerror(rc));
    reel_log_iter_close(it);
    free(b.evs);
    free(b.arena);
    return rc;
}

int reel_replay_offset_at(reel_log_t *log, uint64_t at_ms, uint64_t *out)
{
    reel_log_iter_t *it = NULL;
    reel_record_t rec;
    uint64_t end = reel_log_end(log);
    *out = end;
    int rc = reel_log_iter_open(log, 0, &it);
    /* A scan, not a search: the log has no time index, and reading runs at
     * GB/s (reel bench log); event times never go back, so the first
     * record after at_ms ends the scan. */
    while (rc == 0 && (rc = reel_log_iter_next(it, &rec)) == 0) {
        if (rec.offset >= end || rec.time_ms > at_ms) {
            *out = rec.offset < end ? rec.offset : end;
            break;
        }
    }
    reel_log_iter_close(it);
    return rc == REEL_EEND ? 0 : rc;
}
