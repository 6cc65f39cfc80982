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
 * Write txns keep the hot records (users, posts, counts) in a row cache
 * (views_rows.c, REEL_VIEWS_ROWS_MAX) and write each once per flush; what
 * any read sees, and what a commit stores, is the same as without it.
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
 *                                                     likes_received, friends,
 *                                                     invites (issued),
 *                                                     remixes_received, cameo_uses:
 *                                                     u64 each
 *   follows    be64 follower | be64 target            u64 since (event time)
 *   followers  be64 target | be64 ~since | be64 fol.  empty
 *   following  be64 follower | be64 ~since | be64 tgt empty
 *   likes      be64 post | be64 user                  u64 at
 *   posts      be64 post                              author, created_at, remix_of,
 *                                                     remix_root, likes, comments,
 *                                                     remixes, views, watch_ms: u64
 *                                                     each; flags u8 (bit 0: public,
 *                                                     bit 1: hidden, bit 2: deleted);
 *                                                     hidden reason bytes (the rest)
 *   posts_by_author  be64 author | be64 ~created_at   empty (every post of the
 *              | be64 post                            author that is not deleted)
 *   remixes    be64 parent | be64 ~created_at         empty (direct remixes, not
 *              | be64 post                            deleted, of a known parent)
 *   blocks     be64 blocker | be64 target             u64 at
 *   blocked_by be64 target | be64 blocker             u64 at (reverse of blocks)
 *   cameos     be64 owner                             policy u8 (enum
 *                                                     reel_cameo_policy), asset URI
 *                                                     bytes (the rest; none: a policy
 *                                                     set before any asset)
 *   approvals  be64 owner | be64 grantee              u64 at
 *   comments   be64 comment                           post, author, reply_to,
 *                                                     created_at: u64 each; flags u8
 *                                                     (bit 0: deleted); text bytes
 *                                                     (the rest; dropped on delete)
 *   comments_by_post  be64 post | be64 created_at     empty (not deleted comments,
 *              | be64 comment                         oldest first)
 *   invites    code bytes (as issued)                 issuer u64, used u8, used_by u64
 *   feedback   be64 user | be64 post                  kinds u8: bit 0 see_less, 1
 *                                                     see_more, 2 not_interested, 3
 *                                                     hide_creator
 *   appearances  be64 cameo owner | be64 post          author u64 (every post that
 *                                                     featured the cameo; entries of
 *                                                     deleted posts stay, unlisted)
 *   generations  be64 generation                      user, created_at, attempts,
 *                                                     lease_until (0 unless running),
 *                                                     post, remix_of: u64 each;
 *                                                     status u8 (reel_gen_status_t),
 *                                                     ncameos u8, ntags u8, worker_len
 *                                                     u8, prompt_len u16; cameos (u64
 *                                                     each), prompt bytes, tags (u8
 *                                                     length + bytes each), worker
 *                                                     bytes (the rest)
 *   queue      be64 created_at | be64 generation      empty (queued only: oldest first)
 *   gen_by_user_time  be64 user | be64 created_at     empty (queued, running and
 *              | be64 generation                      completed: the quota's count)
 *   gen_by_cameo  be64 cameo owner | be64 generation  user u64 (queued and running
 *                                                     only: what a revoke cancels)
 *   leases     be64 lease_until | be64 generation     empty (running only)
 *   likes_by_user  be64 user | be64 post              empty (reverse of likes)
 *   comments_by_author  be64 author | be64 comment    empty (not deleted comments)
 *   post_cameos  be64 post | be64 cameo owner          empty (each distinct owner other
 *                                                     than the author, of a post not
 *                                                     deleted: its cameo uses)
 *   leaderboard  u8 board | be64 ~value | be64 user    empty (reel_views_board_t; live
 *                                                     users whose value is above 0)
 *   post_bodies  be64 post                            video_uri_len u16, prompt_len u16,
 *                                                     ntags u8, ncameos u8, dim u16;
 *                                                     cameos (u64 each), video_uri,
 *                                                     prompt, tags (u8 length + bytes
 *                                                     each), embedding (dim float32)
 *                                                     (posts not deleted)
 *   friends    be64 user | be64 ~since | be64 friend  empty (mutual follows, both
 *                                                     ways; since: the later follow)
 *   idem       idempotency key bytes                  at, fingerprint, offset: u64
 *                                                     each; the answer's bytes (the rest)
 *   idem_by_time  be64 at | key bytes                 empty (expiry order)
 *
 * Leaderboard values (counts): followers and likes_received as above;
 * remixes_received: direct remixes (not deleted, of a known parent) of the
 * user's posts, moved with the parent's remixes count (a deleted parent
 * keeps its remixes counted); cameo_uses: posts, not deleted, by other
 * authors that feature the user's cameo (drafts and hidden posts count:
 * they were made with the cameo; a repeated cameo counts once). After
 * every txn the leaderboard lists exactly the live users whose value is
 * above 0, at that value: a txn moves each user's entry once, from the
 * value before it to the value after (views_rows.c); user.deleted removes
 * the user's entries, and later changes of a deleted user's counts never
 * bring them back.
 *
 * Event semantics (types not listed are ignored but still count as
 * applied):
 *   user.created    users + handles + zero counts; a user id that exists
 *                   already is left as it is (first creation wins). With an
 *                   invite code, a known unused invite becomes used by them.
 *   user.updated    display_name replaced (unknown or deleted user: no-op).
 *   user.deleted    deleted flag set; handle entry removed; counts kept;
 *                   leaderboard entries removed.
 *                   The command layer appends the cascade (follows, posts,
 *                   likes, comments, cameo, consents) as events of its own.
 *   invite.issued   invites entry (unused) and the issuer's invites count
 *                   +1; an existing or empty code: no-op.
 *   follow.created  follows/followers/following + counts; idempotent: an
 *                   existing pair changes nothing (its `since` stays). When
 *                   the reverse follow exists, both friends counts +1 and
 *                   the two friends entries, dated by the later follow.
 *   follow.removed  removes the three entries and decrements counts; absent
 *                   pair: no-op. When the reverse follow exists, both
 *                   friends counts -1 and the friends entries removed.
 *   block.created   blocks + blocked_by; an existing pair: no-op. Follows
 *                   are untouched (the command layer appends follow.removed).
 *   block.removed   the reverse; absent pair: no-op.
 *   cameo.registered  the owner's asset set (replaced), policy kept (a new
 *                   cameo starts at only_me); an empty asset: no-op.
 *   cameo.deleted   the cameos record removed (the policy with it).
 *   cameo.policy_set  the policy byte set (record created when absent); an
 *                   unknown policy name: no-op.
 *   consent.granted  approvals entry; idempotent (its `at` stays).
 *   consent.revoked  the reverse; absent: no-op.
 *   post.created    posts record and post_bodies entry; posts_by_author entry; post_cameos entries
 *                   and cameo_uses of those owners +1; an appearances
 *                   entry per cameo (the author's own included); with remix_of of a
 *                   known post, a remixes entry and the parent's remixes
 *                   +1. The author's posts count +1 when the visibility is
 *                   "public". An existing post id: no-op.
 *   post.published  public flag set. The posts count counts posts that are
 *                   public and neither hidden nor deleted; every flag change
 *                   moves it by that rule (so publishing a draft is +1, and
 *                   a hidden draft is never counted).
 *   post.hidden     hidden flag and reason set (the first reason stays);
 *                   posts count -1 if it was counted.
 *   post.deleted    deleted flag set; posts count -1 if it was counted; the
 *                   post_bodies, posts_by_author, post_cameos and remixes entries
 *                   removed (parent's remixes and its author's
 *                   remixes_received -1; each owner's cameo_uses -1). Likes stay (likes_received is unchanged).
 *                   Every flag event on a deleted or unknown post: no-op.
 *   like.created    likes + likes_by_user entries; post like count and the author's
 *                   likes_received +1 (only when the post is known);
 *                   idempotent.
 *   like.removed    the reverse; absent like: no-op.
 *   comment.created  comments record + comments_by_post entry; the post's
 *                   comments +1 (a known post). An existing id: no-op.
 *   comment.deleted  deleted flag set, text dropped, comments_by_post entry
 *                   removed, the post's comments -1; absent or deleted: no-op.
 *   view.recorded   a known post's views +1 and watch_ms added (saturating).
 *   feedback.recorded  the kind's bit ORed into feedback; unknown kind: no-op.
 *   generation.requested  a queued generation (created_at = the event's
 *                   time, attempts 0) with its index entries; an existing
 *                   id: no-op.
 *   generation.claimed  queued -> running: worker, attempts = attempt,
 *                   lease_until.
 *   generation.heartbeat  running: lease_until replaced.
 *   generation.completed  running -> completed with post (the post itself
 *                   is the post.created of the same group).
 *   generation.failed  retryable: running -> queued; not retryable: queued
 *                   or running -> failed. The rules clear retryable once
 *                   --render-attempts attempts are spent (apply cannot know
 *                   the option), and after an expiry that spent the last one
 *                   they append a final failed to the queued generation.
 *   generation.expired  running -> queued.
 *   generation.cancelled  queued or running -> cancelled.
 *   idempotency.recorded  idem entry key -> (at, fingerprint, offset,
 *                   answer), replacing an older one and its idem_by_time
 *                   entry; then up to 2 entries older than
 *                   REEL_IDEM_WINDOW_MS at the event's time are removed.
 *   Every generation event on an unknown generation, or one in a status
 *   it does not apply to (a second completion, a claim of a running one):
 *   no-op. Each transition moves the index entries (queue, leases,
 *   gen_by_user_time, gen_by_cameo) to what the new status calls for, so
 *   failed and cancelled generations leave the quota's count. Apply
 *   never checks the worker: the rules did (lease_lost).
 * Counters never go below zero (a decrement of 0 stays 0).
 *
 * Errors (every function that returns int): 0, or
 *   REEL_EUSAGE     bad arguments (NULL, limit out of range, offset gap,
 *                   a string over its limit, an empty handle, unknown list
 *                   flags);
 *   REEL_ENOTFOUND  a read found nothing (or a deleted user, post or
 *                   comment);
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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/event.h"

/* Format of the views' keys and values; bumped on any layout change (the
 * views are then rebuilt from the log, never converted). */
#define REEL_VIEWS_VERSION 7u /* 3: appearances; 4: generations; 5: accounts, leaderboards;
                                 6: post bodies, friends, idempotency keys;
                                 7: a user created after counts of theirs is listed */
/* Entries returned by one page at most: a page is one read txn, and a
 * bounded one keeps snapshots short (see Threads). */
#define REEL_VIEWS_PAGE_MAX 1000u
/* Map size at first open: 64 MiB is small enough for tests and tiny
 * deployments, and doubling reaches any size in a few steps. */
#define REEL_VIEWS_MAP_BYTES_INITIAL (64ull << 20)
/* Growth stops here: 1 TiB is far beyond one machine's views, and a bound
 * turns a runaway (a bug that writes without end) into -ENOSPC. */
#define REEL_VIEWS_MAP_BYTES_MAX (1ull << 40)

/* The write txn's row cache (views_rows.c): hot users, posts and counts
 * are read once and written once per flush. 32 Ki rows and 8 MiB of their
 * bytes hold a command batch's or a replay batch's hot records (a user row
 * is under 100 bytes, a counts row 128 with its original); past either,
 * the rows are written to the txn and the cache starts over. */
#define REEL_VIEWS_ROWS_MAX (1u << 15)
#define REEL_VIEWS_ROWS_ARENA_BYTES (8u << 20)
/* Index key writes (views_rows.c) waiting for a flush: 64 Ki of 32 bytes,
 * a replay batch's worth (32 Ki events, about 1.5 index keys each). */
#define REEL_VIEWS_INDEX_OPS_MAX (1u << 16)

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
    uint64_t friends;                           /* mutual follows */
    uint64_t invites;                           /* invites this user issued */
    uint64_t remixes_received;                  /* direct remixes of this user's posts */
    uint64_t cameo_uses;                        /* others' live posts featuring their cameo */
} reel_user_view_t;

/* Cameo policies (the cameos value's policy byte; API names in comments). */
typedef enum reel_cameo_policy {
    REEL_CAMEO_ONLY_ME = 0,  /* "only_me": the default */
    REEL_CAMEO_APPROVED = 1, /* "approved": users in approvals */
    REEL_CAMEO_MUTUALS = 2,  /* "mutuals": friends */
    REEL_CAMEO_EVERYONE = 3, /* "everyone" */
} reel_cameo_policy_t;

/* Feedback kinds (bits of a feedback value). */
#define REEL_FEEDBACK_SEE_LESS 0x01u
#define REEL_FEEDBACK_SEE_MORE 0x02u
#define REEL_FEEDBACK_NOT_INTERESTED 0x04u
#define REEL_FEEDBACK_HIDE_CREATOR 0x08u

/* Flags of post listings (reel_views_posts_by_author, reel_views_remixes):
 * by default only public, visible posts are listed. */
#define REEL_VIEWS_LIST_DRAFTS 0x01u /* drafts too (the author's own listing) */
#define REEL_VIEWS_LIST_HIDDEN 0x02u /* hidden posts too */

/* A post with its counts; the reason is copied and NUL-terminated. */
typedef struct reel_post_view {
    uint64_t id;                                  /* post id */
    uint64_t author;                              /* user id */
    uint64_t created_at;                          /* engine time of post.created */
    uint64_t remix_of;                            /* direct parent, 0: an original */
    uint64_t remix_root;                          /* chain's original, 0: none */
    uint64_t likes;                               /* likes */
    uint64_t comments;                            /* comments not deleted */
    uint64_t remixes;                             /* direct remixes not deleted */
    uint64_t views;                               /* view.recorded events */
    uint64_t watch_ms;                            /* total watch time */
    bool public;                                  /* false: a draft */
    bool hidden;                                  /* hidden (reason below) */
    uint32_t hidden_reason_len;                   /* bytes, without the NUL */
    char hidden_reason[REEL_TEXT_LEN_MAX + 1];    /* "" unless hidden */
} reel_post_view_t;

/* One entry of a post listing. */
typedef struct reel_post_entry {
    uint64_t post;       /* post id */
    uint64_t created_at; /* engine time: the cursor with post */
    bool public;         /* false: a draft */
    bool hidden;         /* hidden */
} reel_post_entry_t;

/* A comment. text points into the snapshot: valid until
 * reel_views_read_end() of the txn that read it; not NUL-terminated. */
typedef struct reel_comment_view {
    uint64_t id;         /* comment id */
    uint64_t post;       /* post commented on */
    uint64_t author;     /* user id */
    uint64_t reply_to;   /* comment replied to, 0: none */
    uint64_t created_at; /* engine time: the cursor with id */
    uint32_t text_len;   /* bytes */
    const char *text;    /* into the snapshot */
} reel_comment_view_t;

/* A cameo record. asset points into the snapshot (valid until
 * reel_views_read_end()); asset_len 0: a policy set but no asset. */
typedef struct reel_cameo_view {
    uint64_t owner;     /* user id */
    uint8_t policy;     /* reel_cameo_policy_t */
    uint32_t asset_len; /* bytes; 0: no cameo registered */
    const char *asset;  /* into the snapshot; not NUL-terminated */
} reel_cameo_view_t;

/* An invite. */
typedef struct reel_invite_view {
    uint64_t issuer;  /* user who issued it */
    bool used;        /* a user.created used it */
    uint64_t used_by; /* that user, 0 while unused */
} reel_invite_view_t;

/* One post that features a cameo (a page of reel_views_appearances). */
typedef struct reel_appearance {
    uint64_t post;   /* post id: the cursor */
    uint64_t author; /* who posted it */
    bool public;     /* false: a draft */
    bool hidden;     /* hidden (by a cascade, a takedown, ...) */
} reel_appearance_t;

/* One entry of a followers page. */
typedef struct reel_follow_entry {
    uint64_t user;  /* the follower */
    uint64_t since; /* engine time of the follow */
} reel_follow_entry_t;

/* Opens (creating when missing) the views environment in directory dir
 * (created, one level, when missing). The map starts at
 * REEL_VIEWS_MAP_BYTES_INITIAL or the file's size, whichever is larger.
 * On success *out is the environment, to be closed with reel_views_close().
 * Errors: REEL_EUSAGE, REEL_EVERSION, REEL_ECORRUPT (LMDB cannot read the
 * file, or it is shorter than the pages its meta page counts), -errno;
 * *out is NULL. LMDB keeps no page checksums: a bit flipped inside a data
 * page is not detected here (`reel views-hash` against `reel rebuild`). */
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

/* One page of the users user follows, as reel_views_followers (entry.user
 * is the followed user). */
int reel_views_following(reel_views_txn_t *t, uint64_t user, uint64_t cursor_since,
                         uint64_t cursor_id, size_t limit, reel_follow_entry_t *out,
                         size_t *n_out);

/* One page of user's friends (mutual follows), newest friendship first,
 * as reel_views_followers (entry.since: when the later of the two follows
 * began). */
int reel_views_friends(reel_views_txn_t *t, uint64_t user, uint64_t cursor_since,
                       uint64_t cursor_id, size_t limit, reel_follow_entry_t *out,
                       size_t *n_out);

/* One page of the posts user likes, by ascending post id, from just after
 * cursor_post (0: the first); limit 1..REEL_VIEWS_PAGE_MAX. Errors:
 * REEL_EUSAGE, REEL_ECORRUPT, -EIO. */
int reel_views_likes_by_user(reel_views_txn_t *t, uint64_t user, uint64_t cursor_post,
                             size_t limit, uint64_t *out, size_t *n_out);
/* One page of author's comments (not deleted), by ascending id; as above. */
int reel_views_comments_by_author(reel_views_txn_t *t, uint64_t author, uint64_t cursor_comment,
                                  size_t limit, uint64_t *out, size_t *n_out);
/* One page of the grantees owner approved, by ascending id; as above. */
int reel_views_approvals(reel_views_txn_t *t, uint64_t owner, uint64_t cursor_grantee,
                         size_t limit, uint64_t *out, size_t *n_out);

/* Leaderboards (GET /v1/leaderboard?by=...). */
typedef enum reel_views_board {
    REEL_BOARD_FOLLOWERS = 0,  /* "followers" */
    REEL_BOARD_LIKES = 1,      /* "likes": likes_received */
    REEL_BOARD_REMIXES = 2,    /* "remixes": remixes_received */
    REEL_BOARD_CAMEO_USES = 3, /* "cameo_uses" */
    REEL_BOARD_COUNT
} reel_views_board_t;

/* One leaderboard row. */
typedef struct reel_leader {
    uint64_t user;  /* user id */
    uint64_t value; /* the board's value, above 0 */
} reel_leader_t;

/* The first limit (1..REEL_VIEWS_PAGE_MAX) rows of a leaderboard, highest
 * value first (ties: lower user id first); live users with a value above
 * 0 only. Errors: REEL_EUSAGE, REEL_ECORRUPT, -EIO. */
int reel_views_leaderboard(reel_views_txn_t *t, reel_views_board_t kind, size_t limit,
                           reel_leader_t *out, size_t *n_out);

/* How long an idempotency key holds its first answer (API: 24 h). */
#define REEL_IDEM_WINDOW_MS (24ull * 3600 * 1000)

/* A recorded first answer (idempotency.recorded). The answer points into
 * the snapshot (valid until reel_views_read_end()), not NUL-terminated. */
typedef struct reel_idem_view {
    uint64_t at;          /* engine time it was recorded */
    uint64_t fingerprint; /* of the request that carried the key */
    uint64_t offset;      /* of the idempotency.recorded event */
    uint32_t answer_len;
    const char *answer;
} reel_idem_view_t;

/* The answer recorded under key (len 1..REEL_IDEM_KEY_LEN_MAX bytes),
 * expired or not (the caller compares at with its clock). Errors:
 * REEL_ENOTFOUND, REEL_EUSAGE, REEL_ECORRUPT, -EIO. */
int reel_views_get_idem(reel_views_txn_t *t, const char *key, size_t len, reel_idem_view_t *out);

/* Post id with its counts into *out. Errors: REEL_ENOTFOUND (absent or
 * deleted), REEL_ECORRUPT, -EIO. */
int reel_views_get_post(reel_views_txn_t *t, uint64_t id, reel_post_view_t *out);

/* What a post says, as post.created gave it. Strings, tags and the
 * embedding point into the snapshot (valid until reel_views_read_end());
 * the embedding is dim float32 LE, unaligned: read it with
 * reel_post_body_embedding_at(). */
typedef struct reel_post_body {
    uint32_t video_uri_len;
    const char *video_uri;
    uint32_t prompt_len;
    const char *prompt;
    uint32_t ntags;
    reel_str_t tags[REEL_TAGS_MAX];
    uint32_t ncameos;
    uint64_t cameos[REEL_CAMEOS_MAX];   /* cameo owners, as posted */
    uint32_t dim;                       /* 0: the post came without one */
    const uint8_t *embedding;
} reel_post_body_t;

/* The contents of post id. Errors: REEL_ENOTFOUND (absent or deleted),
 * REEL_EUSAGE, REEL_ECORRUPT, -EIO. */
int reel_views_get_post_body(reel_views_txn_t *t, uint64_t id, reel_post_body_t *out);
/* Component i (< b->dim) of a post body's embedding. */
float reel_post_body_embedding_at(const reel_post_body_t *b, uint32_t i);

/* One page of author's posts, newest first (ties: lower post id first),
 * into out[0..limit); *n_out says how many. Cursor as for followers:
 * (0, 0) starts at the newest, else just after (cursor_at, cursor_id),
 * the last entry of the previous page. flags: REEL_VIEWS_LIST_*; posts
 * the flags leave out are skipped (a page may then scan past them).
 * Errors: REEL_EUSAGE, REEL_ECORRUPT, -EIO. */
int reel_views_posts_by_author(reel_views_txn_t *t, uint64_t author, uint64_t cursor_at,
                               uint64_t cursor_id, unsigned flags, size_t limit,
                               reel_post_entry_t *out, size_t *n_out);

/* One page of the direct remixes of post parent; as
 * reel_views_posts_by_author. */
int reel_views_remixes(reel_views_txn_t *t, uint64_t parent, uint64_t cursor_at,
                       uint64_t cursor_id, unsigned flags, size_t limit, reel_post_entry_t *out,
                       size_t *n_out);

/* One page of the comments (not deleted) of post, oldest first (ties:
 * lower comment id first): (0, 0) starts at the oldest, else just after
 * (cursor_at, cursor_id). Texts point into t's snapshot. limit is
 * 1..REEL_VIEWS_PAGE_MAX. Errors: REEL_EUSAGE, REEL_ECORRUPT, -EIO. */
int reel_views_comments(reel_views_txn_t *t, uint64_t post, uint64_t cursor_at,
                        uint64_t cursor_id, size_t limit, reel_comment_view_t *out,
                        size_t *n_out);

/* Comment id into *out (text into t's snapshot). Errors: REEL_ENOTFOUND
 * (absent or deleted), REEL_ECORRUPT, -EIO. */
int reel_views_get_comment(reel_views_txn_t *t, uint64_t id, reel_comment_view_t *out);

/* owner's cameo record into *out (asset into t's snapshot). Errors:
 * REEL_ENOTFOUND (no record: no cameo, policy only_me), REEL_ECORRUPT,
 * -EIO. */
int reel_views_get_cameo(reel_views_txn_t *t, uint64_t owner, reel_cameo_view_t *out);

/* *out: whether owner approved grantee for their cameo. Errors:
 * REEL_EUSAGE, REEL_ECORRUPT, -EIO. */
int reel_views_is_approved(reel_views_txn_t *t, uint64_t owner, uint64_t grantee, bool *out);

/* One page of the posts (any author, drafts and hidden ones included,
 * deleted ones not) that feature owner's cameo, by ascending post id, into
 * out[0..limit); *n_out says how many. cursor_post 0 starts at the first,
 * else the page starts just after that post id (the last of the previous
 * page). limit is 1..REEL_VIEWS_PAGE_MAX; a page may scan past deleted
 * posts. Errors: REEL_EUSAGE, REEL_ECORRUPT, -EIO. */
int reel_views_appearances(reel_views_txn_t *t, uint64_t owner, uint64_t cursor_post,
                           size_t limit, reel_appearance_t *out, size_t *n_out);

/* *out: whether post featured owner's cameo when it was created (deleted
 * posts included). Errors: REEL_EUSAGE, REEL_ECORRUPT, -EIO. */
int reel_views_appears(reel_views_txn_t *t, uint64_t owner, uint64_t post, bool *out);

/* *out: whether a follows b. Errors: REEL_EUSAGE, REEL_ECORRUPT, -EIO. */
int reel_views_follows(reel_views_txn_t *t, uint64_t a, uint64_t b, bool *out);

/* *out: whether a blocks b or b blocks a (two gets). Errors: REEL_EUSAGE,
 * REEL_ECORRUPT, -EIO. */
int reel_views_is_blocked(reel_views_txn_t *t, uint64_t a, uint64_t b, bool *out);

/* *out: whether blocker blocks target (one direction). Errors: as above. */
int reel_views_blocks(reel_views_txn_t *t, uint64_t blocker, uint64_t target, bool *out);

/* The invite whose code is code (len bytes) into *out. Errors:
 * REEL_EUSAGE (len 0 or over REEL_SHORT_LEN_MAX), REEL_ENOTFOUND,
 * REEL_ECORRUPT, -EIO. */
int reel_views_get_invite(reel_views_txn_t *t, const char *code, size_t len,
                          reel_invite_view_t *out);

/* *kinds: user's feedback bits on post (REEL_FEEDBACK_*; 0 when none).
 * Errors: REEL_EUSAGE, REEL_ECORRUPT, -EIO. */
int reel_views_get_feedback(reel_views_txn_t *t, uint64_t user, uint64_t post, uint8_t *kinds);

/* Generation statuses (the generations value's status byte; API names). */
typedef enum reel_gen_status {
    REEL_GEN_QUEUED = 0,    /* "queued": waiting for a worker */
    REEL_GEN_RUNNING = 1,   /* "running": a worker holds the lease */
    REEL_GEN_COMPLETED = 2, /* "completed": post made */
    REEL_GEN_FAILED = 3,    /* "failed": final */
    REEL_GEN_CANCELLED = 4, /* "cancelled": final (consent revoked) */
} reel_gen_status_t;

/* A generation. prompt and tags point into the snapshot (valid until
 * reel_views_read_end(), or in a session until its next apply); the worker
 * is copied and NUL-terminated. */
typedef struct reel_generation_view {
    uint64_t id;                            /* generation id */
    uint64_t user;                          /* who asked for it */
    uint64_t created_at;                    /* engine time of generation.requested */
    uint64_t attempts;                      /* claims so far */
    uint64_t lease_until;                   /* ms while running, else 0 */
    uint64_t post;                          /* post made by the completion, 0: none */
    uint64_t remix_of;                      /* post remixed, 0: none */
    uint8_t status;                         /* reel_gen_status_t */
    uint32_t ncameos;                       /* cameo owners in cameos */
    uint64_t cameos[REEL_CAMEOS_MAX];       /* cameo owners, as requested */
    uint32_t worker_len;                    /* bytes, without the NUL */
    char worker[REEL_SHORT_LEN_MAX + 1];    /* last worker to claim it, "" never claimed */
    uint32_t prompt_len;                    /* bytes */
    const char *prompt;                     /* into the snapshot; not NUL-terminated */
    uint32_t ntags;                         /* tags in tags */
    reel_str_t tags[REEL_TAGS_MAX];         /* into the snapshot */
} reel_generation_view_t;

/* One queued or running generation that features a cameo. */
typedef struct reel_gen_entry {
    uint64_t generation; /* generation id: the cursor */
    uint64_t user;       /* who asked for it */
} reel_gen_entry_t;

/* One entry of reel_views_gens_by_user. */
typedef struct reel_gen_by_user {
    uint64_t generation; /* generation id */
    uint64_t created_at; /* the cursor with generation */
} reel_gen_by_user_t;

/* One page of user's queued, running and completed generations, oldest
 * first: (0, 0) starts at the oldest, else just after (cursor_at,
 * cursor_id); limit 1..REEL_VIEWS_PAGE_MAX. Errors: REEL_EUSAGE,
 * REEL_ECORRUPT, -EIO. */
int reel_views_gens_by_user(reel_views_txn_t *t, uint64_t user, uint64_t cursor_at,
                            uint64_t cursor_id, size_t limit, reel_gen_by_user_t *out,
                            size_t *n_out);

/* Entries of one reel_views_gen_by_cameo page at most (the cascade's page). */
#define REEL_VIEWS_GEN_PAGE_MAX 64u

/* Generation id into *out. Errors: REEL_ENOTFOUND, REEL_EUSAGE,
 * REEL_ECORRUPT, -EIO. */
int reel_views_get_generation(reel_views_txn_t *t, uint64_t id, reel_generation_view_t *out);

/* The rolling quota of user at now_ms: *used counts the user's generations
 * created in (now_ms - window_ms, now_ms] that are queued, running or
 * completed (failed and cancelled ones give their place back), and
 * *oldest_at is the creation time of the oldest of them (0 when none):
 * it leaves the window at oldest_at + window_ms. Counting stops at max
 * (the quota's limit: whether the user is at it is all the rules ask), so
 * a check costs at most max steps however many generations the user has.
 * Errors: REEL_EUSAGE (window_ms or max 0), REEL_ECORRUPT, -EIO. */
int reel_views_quota(reel_views_txn_t *t, uint64_t user, uint64_t now_ms, uint64_t window_ms,
                     uint64_t max, uint64_t *used, uint64_t *oldest_at);

/* The oldest queued generations (by creation time, then id), up to limit
 * (1..REEL_VIEWS_PAGE_MAX) ids into out; *n_out says how many. Errors:
 * REEL_EUSAGE, REEL_ECORRUPT, -EIO. */
int reel_views_queue(reel_views_txn_t *t, size_t limit, uint64_t *out, size_t *n_out);

/* Running generations whose lease_until <= now_ms, soonest lease first, up
 * to limit (1..REEL_VIEWS_PAGE_MAX) ids into out. Errors: as
 * reel_views_queue. */
int reel_views_leases_expired(reel_views_txn_t *t, uint64_t now_ms, size_t limit, uint64_t *out,
                              size_t *n_out);

/* One page of the queued or running generations featuring owner's cameo,
 * by ascending generation id, from just after cursor_gen (0: the first),
 * up to limit (1..REEL_VIEWS_GEN_PAGE_MAX). Errors: as reel_views_queue. */
int reel_views_gen_by_cameo(reel_views_txn_t *t, uint64_t owner, uint64_t cursor_gen,
                            size_t limit, reel_gen_entry_t *out, size_t *n_out);

/* XXH3-128 of the content of every view: for each view DBI in the fixed
 * order of the table above (users .. leaderboard), its name, then each key and
 * value with their lengths. meta is excluded ("applied" and "version" are
 * bookkeeping, not content), so a live environment and a rebuild from the
 * log compare equal exactly when their views hold the same bytes. The
 * digest is written big-endian (high 64 bits first) to out.
 * Errors: as reel_views_read_begin, REEL_ECORRUPT, -EIO. */
int reel_views_hash(reel_views_t *v, uint8_t out[16]);

/* ---- Write sessions ----
 * The command writer validates each command against the views as they
 * will be once the events of the commands before it are applied, before
 * any of them is durable. A session is one LMDB write txn held across many
 * commands: it applies events one at a time, its reader sees them at once,
 * other readers see nothing until commit, and commit stores applied (the
 * log offset after its last event) in the same txn (invariant 1). If the
 * map fills up, the session grows it and applies its events again into a
 * new txn, unseen by the caller (invariants 3 and 4): the events (and the
 * strings they point to) must stay valid until commit or abort.
 * A session holds the apply lock: no reel_views_apply and no other session
 * meanwhile; one thread uses it. After any error, abort it. */
typedef struct reel_views_session reel_views_session_t;

/* Events one session may apply at most: 1 Mi (a command writer commits far
 * more often; the bound keeps a regrow's re-apply and its memory finite). */
#define REEL_VIEWS_SESSION_EVENTS_MAX (1u << 20)

/* Begins a session at offset reel_views_applied(v).
 * Errors: -ENOMEM, -ENOSPC, REEL_EFAILED, -errno. */
int reel_views_session_begin(reel_views_t *v, reel_views_session_t **out);
/* The session's txn as a read snapshot, for every read function; valid
 * until commit or abort; do not pass it to reel_views_read_end. */
reel_views_txn_t *reel_views_session_reader(reel_views_session_t *s);
/* Applies ev, whose offset must be the session's next (else REEL_EUSAGE).
 * Errors: REEL_EUSAGE, REEL_ETOOBIG (REEL_VIEWS_SESSION_EVENTS_MAX),
 * -ENOSPC, REEL_ECORRUPT, -errno: then abort the session. */
int reel_views_session_apply(reel_views_session_t *s, const reel_event_t *ev);
/* Commits the session's events and applied, and frees it (also on error,
 * when nothing of it is kept). Errors: -ENOSPC, REEL_EFAILED, -errno. */
int reel_views_session_commit(reel_views_session_t *s);
/* Drops the session's changes and frees it. NULL is a no-op. */
void reel_views_session_abort(reel_views_session_t *s);

/* *out: user likes post now. Errors: REEL_ECORRUPT, -EIO. */
int reel_views_liked(reel_views_txn_t *t, uint64_t post, uint64_t user, bool *out);

/* The largest id ever used for users, posts, comments or generations (deleted ones
 * included: their records stay), 0 when none: the next id is one more. */
typedef enum reel_views_id_kind {
    REEL_VIEWS_ID_USER = 0,
    REEL_VIEWS_ID_POST = 1,
    REEL_VIEWS_ID_COMMENT = 2,
    REEL_VIEWS_ID_GENERATION = 3,
} reel_views_id_kind_t;
int reel_views_last_id(reel_views_txn_t *t, reel_views_id_kind_t kind, uint64_t *out);

/* Current map size in bytes (for tests and stats). */
uint64_t reel_views_map_bytes(reel_views_t *v);

#endif /* REEL_VIEWS_H */
