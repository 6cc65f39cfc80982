/*
 * replay.h: folding the log into the views: the catch-up after a crash or
 * a restart, `reel rebuild` (views from nothing) and `reel replay --to`
 * (views as of an offset).
 *
 * The views record the next offset they need (reel_views_applied), in the
 * same LMDB transaction as the changes, so replaying from there is exactly
 * once whatever was interrupted. Events are applied in batches of up to
 * REEL_REPLAY_BATCH_EVENTS events or REEL_REPLAY_BATCH_BYTES payload bytes,
 * one LMDB transaction each.
 */
#ifndef REEL_REPLAY_H
#define REEL_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "engine/log.h"
#include "engine/views.h"

/* A batch: 131072 events (~84 MiB of reel_event_t, touched only as far as
 * a batch fills) or 32 MiB of payloads, whichever comes first. Each LMDB
 * commit rewrites every page the batch dirtied, and on a large world a
 * batch of random follows and likes dirties most of the index pages, so
 * bigger batches write less: rebuild ran 217k events/s with 4096 and 379k
 * with 32768 (reel bench views --quick); on the 2M-event world (reel bench
 * views --rounds 1 --filter rebuild, 2 runs each) 32768 wrote 9.4 GB at
 * 107-113k events/s, 65536 3.9 GB at 134-152k, 131072 1.9 GB at 140-176k
 * (peak RSS 487, 558, 621 MB). LMDB spills dirty pages past its dirty list
 * (~512 MiB), so no size meets MDB_TXN_FULL. */
#define REEL_REPLAY_BATCH_EVENTS 131072u
#define REEL_REPLAY_BATCH_BYTES (32u << 20)

/* Called after each applied batch with the views' new applied offset. */
typedef void (*reel_replay_progress_cb)(void *ctx, uint64_t applied, uint64_t to);

/* Applies the log's events from reel_views_applied(v) up to, not including,
 * offset `to` (UINT64_MAX: the durable end). progress may be NULL. A
 * record that is not a valid event stops the replay with REEL_ECORRUPT and
 * a message naming its offset in err (err_len bytes; may be NULL).
 * Errors: REEL_ECORRUPT, REEL_EUSAGE (the views are ahead of the log: they
 * belong to another log), the log iterator's and reel_views_apply's. */
int reel_replay(reel_log_t *log, reel_views_t *v, uint64_t to, reel_replay_progress_cb progress,
                void *ctx, char *err, size_t err_len);

/* The first offset whose engine time is after at_ms (the log's end when
 * none is): replaying up to it gives the views as they stood at at_ms
 * (`reel replay --at`). Errors: the log iterator's. */
int reel_replay_offset_at(reel_log_t *log, uint64_t at_ms, uint64_t *out);

#endif /* REEL_REPLAY_H */
