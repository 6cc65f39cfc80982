/*
 * views.h: the materialised views of reeldb, kept in LMDB.
 *
 * The log (engine/log.h) is the source of truth; the views are a cache of
 * it that the read side queries. reel_views_apply() folds events into the
 * views in log order, and the views at "applied" = N always equal a replay
 * of log offsets [0, N) from empty (invariant 1). This module owns one LMDB
 * environment in a directory of its own: the data file, the lock file, and
 * a set of named databases (DBIs), one per view plus `meta`.
 *
 * Invariants.
 *  1. Views == replay(log[0, applied)). Each apply is one LMDB write txn
 *     that holds the view changes of its events AND the new "applied"; a
 *     crash keeps either all of it or none of it, so an event is applied
 *     exactly once (a replay from the log skips offsets below applied).
 *  2. Offsets are applied in order with no gap: apply refuses a batch whose
 *     first new event is not `applied` (REEL_EUSAGE), and changes nothing.
 *  3. Apply is deterministic: it reads only the event and the views, never
 *     a clock or random source, so two environments fed the same events in
 *     any batching hold the same bytes (reel_views_hash equal).
 *  4. The map grows by itself: a write txn that meets MDB_MAP_FULL is
 *     aborted, the map doubles (up to REEL_VIEWS_MAP_BYTES_MAX) with no txn
 *     of this process active, and the whole apply runs again.
 *
 * Durability. MDB_NOMETASYNC: data pages are flushed at commit, the meta
 * page is not, so a system crash may undo the last committed txn (never
 * corrupt: LMDB keeps ACI). The log replays what was lost. MDB_NOSYNC,
 * MDB_WRITEMAP and MDB_MAPASYNC are never used: they can corrupt.
 *
 * Threads. One reel_views_t is shared by every thread. Apply may be called
 * from any thread; calls are serialised inside (one writer at a time, as
 * LMDB requires). Readers open a reel_views_txn_t each (MDB_NOTLS: a read
 * txn is an object, not a thread slot); one txn is used by one thread at a
 * time. A read txn holds the growth lock in read mode for its whole life,
 * so map growth waits for every open snapshot to end: keep snapshots short.
 * The lock prefers the grower, hence two rules (breaking them can
 * deadlock): a thread holds at most one read txn at a time, and never calls
 * reel_views_apply() or reel_views_hash() while it holds one.
 *
 * Keys and values. Ids in keys are big-endian u64 (LMDB compares bytes, so
 * big-endian sorts numerically); numbers in values are little-endian u64
 * (the on-disk convention of reeldb). `~x` is the bitwise complement, so
 * an ascending key scan is a descending time scan. `|` is concatenation.
 *
 *   DBI        key                                    value
 *   meta       "applied"                              u64: next log offset to apply
 *              "version"                              u32: REEL_VIEWS_VERSION
 *   users      be64 user                              created_at u64, flags u8
 *                                                     (bit 0: deleted), handle_len
 *                                                     u8, name_len u8, handle bytes,
 *                                                     display_name bytes
 *   handles    lower-case handle (ASCII A-Z folded)   u64 user
 *   counts     be64 user                              followers, following, posts,
 *                                                     likes_received: u64 each
 *   follows    be64 follower | be64 target            u64 since (event time)
 *   followers  be64 target | be64 ~since | be64 fol.  empty
 *   following  be64 follower | be64 ~since | be64 tgt empty
 *   likes      be64 post | be64 user                  u64 at
 *   posts      be64 post                              author u64, created_at u64,
 *                                                     likes u64, flags u8 (bit 0:
 *                                                     public, bit 1: hidden, bit 2:
 *                                                     deleted)
 *
 * Event semantics (types not listed are ignored but still count as
 * applied):
 *   user.created    users + handles + zero counts; a user id that exists
 *                   already is left as it is (first creation wins).
 *   user.updated    display_name replaced (unknown or deleted user: no-op).
 *   user.deleted    deleted flag set; handle entry removed; counts kept.
 *   follow.created  follows/followers/following + counts; idempotent: an
 *                   existing pair changes nothing (its `since` stays).
 *   follow.removed  removes the three entries and decrements counts; absent
 *                   pair: no-op.
 *   post.created    posts record; the author's posts count +1 when the
 *                   visibility is "public". An existing post id: no-op.
 *   post.deleted    deleted flag set; author's posts count -1 if it was
 *                   public. Likes stay (likes_received is unchanged).
 *   post.hidden     hidden flag set.
 *   post.published  not yet applied (a draft's move to public, and its
 *                   posts count, is later work).
 *   like.created    likes entry; post like count and the author's
 *                   likes_received +1 (only when the post is known);
 *                   idempotent.
 *   like.removed    the reverse; absent like: no-op.
 * Counters never go below zero (a decrement of 0 stays 0).
 *
 * Errors (every function that returns int): 0, or
 *   REEL_EUSAGE     bad arguments (NULL, limit out of range, offset gap,
 *                   a string over its limit, an empty handle);
 *   REEL_ENOTFOUND  a read found nothing (or a deleted user);
 *   REEL_EVERSION   the environment has a views format this build does not
 *                   read (a message names it on stderr), or LMDB's own
 *                   version mismatch;
 *   REEL_ECORRUPT   LMDB reports a damaged file (MDB_CORRUPTED, MDB_INVALID,
 *                   MDB_PAGE_NOTFOUND) or a view value has a bad length;
 *   REEL_EFAILED    MDB_PANIC: the environment must be closed;
 *   REEL_EFULL      all LMDB reader slots are taken (MDB_READERS_FULL);
 *   REEL_ETOOBIG    one apply dirtied more pages than one LMDB txn holds
 *                   (MDB_TXN_FULL, ~512 MiB of changes): apply fewer events;
 *   -ENOSPC         the map reached REEL_VIEWS_MAP_BYTES_MAX;
 *   -ENOMEM, -EIO, -EACCES, ... system errors as -errno;
 *   -EIO            any other LMDB error (a bug or an LMDB limit).
 */
#ifndef REEL_VIEWS_H
#define REEL_VIEWS_H

#include <stddef.h>
#include <stdint.h>

#include "engine/event.h"

/* Format of the views' keys and values; bumped on any layout change (the
 * views are then rebuilt from the log, never converted). */
#define REEL_VIEWS_VERSION 1u
/* Followers returned by one page at most: a page is one read txn, and a
 * bounded one keeps snapshots short (see Threads). */
#define REEL_VIEWS_PAGE_MAX 1000u
/* Map size at first open: 64 MiB is small enough for tests and tiny
 * deployments, and doubling reaches any size in a few steps. */
#define REEL_VIEWS_MAP_BYTES_INITIAL (64ull << 20)
/* Growth stops here: 1 TiB is far beyond one machine's views, and a bound
 * turns a runaway (a bug that writes without end) into -ENOSPC. */
#define REEL_VIEWS_MAP_BYTES_MAX (1ull << 40)

/* The environment; opaque. */
typedef struct reel_views reel_views_t;
/* A read-only snapshot; opaque. */
typedef struct reel_views_txn reel_views_txn_t;

/* A user's profile with its counts; strings are copied and NUL-terminated. */
typedef struct reel_user_view {
    uint64_t id;                                /* user id */
    uint64_t created_at;                        /* engine time of user.created */
    uint32_t handle_len;                        /* bytes, without the NUL */
    uint32_t display_name_len;                  /* bytes, without the NUL */
    char handle[REEL_HANDLE_LEN_MAX + 1];       /* as created (case kept) */
    char display_name[REEL_NAME_LEN_MAX + 1];   /* latest */
    uint64_t followers;                         /* users following this one */
    uint64_t following;                         /* users this one follows */
    uint64_t posts;                             /* public posts, not deleted */
    uint64_t likes_received;                    /* likes on this user's posts */
} reel_user_view_t;

/* One entry of a followers page. */
typedef struct reel_follow_entry {
    uint64_t user;  /* the follower */
    uint64_t since; /* engine time of the follow */
} reel_follow_entry_t;

/* Opens (creating when missing) the views environment in directory dir
 * (created, one level, when missing). The map starts at
 * REEL_VIEWS_MAP_BYTES_INITIAL or the file's size, whichever is larger.
 * On success *out is the environment, to be closed with reel_views_close().
 * Errors: REEL_EUSAGE, REEL_EVERSION, REEL_ECORRUPT, -errno; *out is NULL. */
int reel_views_open(const char *dir, reel_views_t **out);

/* Closes the environment. Every read txn must have ended; no apply may be
 * running. NULL is a no-op. */
void reel_views_close(reel_views_t *v);

/* The next log offset to apply (0 for a fresh environment). */
uint64_t reel_views_applied(reel_views_t *v);

/* Applies evs[0..n) (each with offset and at set from its record). Offsets
 * must be consecutive; events below applied are skipped (exactly once),
 * and the first remaining one must be applied, else REEL_EUSAGE and nothing
 * changes. All remaining events and applied = last offset + 1 commit in one
 * write txn: on any error nothing of the batch is kept. n == 0 is a no-op.
 * The events (and the strings they point to) are read only during the call.
 * Errors: REEL_EUSAGE, -ENOSPC (map at its bound), REEL_ETOOBIG,
 * REEL_ECORRUPT, REEL_EFAILED, -errno. */
int reel_views_apply(reel_views_t *v, const reel_event_t *evs, size_t n);

/* Begins a read-only snapshot of the views; *out is valid until
 * reel_views_read_end(). Errors: REEL_EFULL, REEL_EFAILED, -errno. */
int reel_views_read_begin(reel_views_t *v, reel_views_txn_t **out);
/* Ends a snapshot (frees it). NULL is a no-op. */
void reel_views_read_end(reel_views_txn_t *t);

/* The profile of user id with its counts into *out. Errors: REEL_ENOTFOUND
 * (absent or deleted), REEL_ECORRUPT, -EIO. */
int reel_views_get_user(reel_views_txn_t *t, uint64_t id, reel_user_view_t *out);

/* The profile of the user whose handle (len bytes, any ASCII case) is
 * handle. Errors: as reel_views_get_user, REEL_EUSAGE (len 0 or over
 * REEL_HANDLE_LEN_MAX). */
int reel_views_user_by_handle(reel_views_txn_t *t, const char *handle, size_t len,
                              reel_user_view_t *out);

/* One page of user's followers, newest first (ties: lower follower id
 * first), into out[0..limit); *n_out says how many. With cursor_since and
 * cursor_id both 0 the page starts at the newest; otherwise it starts just
 * after the entry (cursor_since, cursor_id), which is the last entry of the
 * previous page. limit is 1..REEL_VIEWS_PAGE_MAX. A user with no followers
 * gives 0 entries (not an error). Errors: REEL_EUSAGE, REEL_ECORRUPT, -EIO. */
int reel_views_followers(reel_views_txn_t *t, uint64_t user, uint64_t cursor_since,
                         uint64_t cursor_id, size_t limit, reel_follow_entry_t *out,
                         size_t *n_out);

/* XXH3-128 of the content of every view: for each view DBI in the fixed
 * order of the table above (users .. posts), its name, then each key and
 * value with their lengths. meta is excluded ("applied" and "version" are
 * bookkeeping, not content), so a live environment and a rebuild from the
 * log compare equal exactly when their views hold the same bytes. The
 * digest is written big-endian (high 64 bits first) to out.
 * Errors: as reel_views_read_begin, REEL_ECORRUPT, -EIO. */
int reel_views_hash(reel_views_t *v, uint8_t out[16]);

/* Current map size in bytes (for tests and stats). */
uint64_t reel_views_map_bytes(reel_views_t *v);

#endif /* REEL_VIEWS_H */
