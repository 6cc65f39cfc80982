/*
 * views_int.h: between the files of the views module (views.c: the
 * environment, apply, reads; views_post.c: post contents and friends;
 * views_idem.c: idempotency keys). Not part of the contract (views.h is).
 */
#ifndef REEL_VIEWS_INT_H
#define REEL_VIEWS_INT_H

#include <lmdb.h>
#include <pthread.h>

#include "engine/views.h"

/* Named DBIs the environment may hold; LMDB scans the DBI table
 * linearly, so keep it small. */
#define REEL_VIEWS_MAXDBS 40u

/* The DBIs, in the fixed order the hash walks (meta first, not hashed). */
enum {
    DBI_META,
    DBI_USERS,
    DBI_HANDLES,
    DBI_COUNTS,
    DBI_FOLLOWS,
    DBI_FOLLOWERS,
    DBI_FOLLOWING,
    DBI_LIKES,
    DBI_POSTS,
    DBI_POSTS_BY_AUTHOR,
    DBI_REMIXES,
    DBI_BLOCKS,
    DBI_BLOCKED_BY,
    DBI_CAMEOS,
    DBI_APPROVALS,
    DBI_COMMENTS,
    DBI_COMMENTS_BY_POST,
    DBI_INVITES,
    DBI_FEEDBACK,
    DBI_APPEARANCES,
    DBI_GENERATIONS,
    DBI_QUEUE,
    DBI_GEN_BY_USER_TIME,
    DBI_GEN_BY_CAMEO,
    DBI_LEASES,
    DBI_LIKES_BY_USER,
    DBI_COMMENTS_BY_AUTHOR,
    DBI_POST_CAMEOS,
    DBI_LEADERBOARD,
    DBI_POST_BODIES,
    DBI_FRIENDS,
    DBI_IDEM,
    DBI_IDEM_BY_TIME,
    DBI_COUNT
};
_Static_assert(DBI_COUNT <= REEL_VIEWS_MAXDBS, "DBIs fit maxdbs");
/* Their names in the environment, by DBI. */
extern const char *const reel__views_dbi_names[DBI_COUNT];

/* views_rows.c: the write txn's row cache. */
typedef struct reel_views_rows reel_views_rows_t;

struct reel_views {
    MDB_env *env;                /* owned */
    reel_views_rows_t *rows;     /* owned; used under apply_lock */
    MDB_dbi dbi[DBI_COUNT];      /* valid for the env's life */
    pthread_rwlock_t grow_lock;  /* read: any open txn; write: resize */
    pthread_mutex_t apply_lock;  /* one apply at a time */
    uint64_t map_bytes;          /* current map size (atomic access) */
    uint64_t applied;            /* cache of meta "applied" (atomic access) */
};

struct reel_views_txn {
    reel_views_t *v;  /* not owned */
    MDB_txn *txn;     /* read-only (or a session's write txn); holds grow_lock (read) */
};

/* LMDB (or errno) code to reeldb's (views.h, "Errors"); MDB_MAP_FULL and
 * MDB_MAP_RESIZED become private codes that apply handles itself. */
int reel__vmdb(int rc);
/* Big-endian u64 in keys (sorts numerically). */
void reel__vput_be64(uint8_t *p, uint64_t x);
uint64_t reel__vget_be64(const uint8_t *p);
/* Raw access: every LMDB get, put and delete goes through these. del of an
 * absent key is 0. */
int reel__vdb_get(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl, MDB_val *out);
int reel__vdb_put(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl, const void *d, size_t dl);
int reel__vdb_del(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl);
/* put of a key that must be new, in one descent: 0 put, 1 present (nothing
 * changed), < 0 error. */
int reel__vdb_put_new(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl, const void *d,
                      size_t dl);
/* del in one descent: 0 deleted, 1 absent, < 0 error. */
int reel__vdb_del_found(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl);

/* views_post.c: a post's contents (post.created) and removal (post.deleted). */
int reel__views_post_body_put(reel_views_t *v, MDB_txn *txn, const reel_event_t *ev);
int reel__views_post_body_del(reel_views_t *v, MDB_txn *txn, uint64_t post);
/* The friends index: a friendship of a and b since `since` begins or ends. */
int reel__views_friend_set(reel_views_t *v, MDB_txn *txn, uint64_t a, uint64_t b, uint64_t since,
                           bool create);

/* ---- Rows (views_rows.c) ----
 * The write txn (apply or session) keeps the records of users, posts and
 * counts it reads or writes in memory, and writes them at flush: at
 * commit, when the cache is full, and before a cursor on those DBIs or the
 * leaderboard (reel__vcursor_open). Reads through reel__vrow_get in that
 * txn see its writes; any other txn reads LMDB. Counts changes move the
 * leaderboard once per flush (reel__views_lb_settle). Rows that a commit
 * wrote stay as a cache for the next write txn (this process is the only
 * writer: apply_lock); an abort drops them. Begin after the txn begins,
 * end before it is committed or aborted. */
int reel__vrows_new(reel_views_rows_t **out);
void reel__vrows_free(reel_views_rows_t *r);
void reel__vrows_begin(reel_views_t *v, MDB_txn *txn);
/* Detaches the rows from the txn. committing: the txn is about to commit
 * after a flush, so the (clean) rows stay as a cache of what it commits
 * for the next txn; else they are dropped. If the commit then fails, drop
 * them (reel__vrows_drop). */
void reel__vrows_end(reel_views_t *v, bool committing);
void reel__vrows_drop(reel_views_t *v);
bool reel__vrows_active(reel_views_t *v, MDB_txn *txn);
int reel__vrows_flush(reel_views_t *v, MDB_txn *txn);
/* The record of (dbi, id) (DBI_USERS, DBI_POSTS, DBI_COUNTS) as txn sees
 * it; *out is valid until the next rows call. REEL_ENOTFOUND: absent. */
int reel__vrow_get(reel_views_t *v, MDB_txn *txn, int dbi, uint64_t id, MDB_val *out);
int reel__vrow_put(reel_views_t *v, MDB_txn *txn, int dbi, uint64_t id, const void *d, size_t dl);
/* The leaderboard entries of user are settled at the next flush even if
 * the counts do not change (the user was created or deleted). */
int reel__vrow_settle(reel_views_t *v, MDB_txn *txn, uint64_t user);
/* The largest id of a record written or read in txn's rows (0: none). */
uint64_t reel__vrows_max_id(reel_views_t *v, MDB_txn *txn, int dbi);
/* An index key (followers, following, likes_by_user, posts_by_author,
 * comments_by_post, comments_by_author: empty values, read only by scans)
 * put or deleted (del): in the rows' txn it waits for the flush, which
 * applies the txn's index ops sorted by key; elsewhere, at once. */
int reel__vidx_write(reel_views_t *v, MDB_txn *txn, int dbi, const void *k, size_t kl, bool del);
/* mdb_cursor_open, after a flush when dbi is cached, written behind, or
 * the leaderboard. */
int reel__vcursor_open(reel_views_t *v, MDB_txn *txn, int dbi, MDB_cursor **cur);
/* views.c: moves user's leaderboard entries from the counts orig (NULL:
 * none) to cur (NULL: none); live users with a value above 0 are listed.
 * force: even where a value did not change. */
int reel__views_lb_settle(reel_views_t *v, MDB_txn *txn, uint64_t user, const MDB_val *orig,
                          const MDB_val *cur, bool force);

/* views_idem.c: idempotency.recorded. */
int reel__views_apply_idem(reel_views_t *v, MDB_txn *txn, const reel_event_t *ev);

#endif /* REEL_VIEWS_INT_H */
