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

struct reel_views {
    MDB_env *env;                /* owned */
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

/* views_post.c: a post's contents (post.created) and removal (post.deleted). */
int reel__views_post_body_put(reel_views_t *v, MDB_txn *txn, const reel_event_t *ev);
int reel__views_post_body_del(reel_views_t *v, MDB_txn *txn, uint64_t post);
/* The friends index: a friendship of a and b since `since` begins or ends. */
int reel__views_friend_set(reel_views_t *v, MDB_txn *txn, uint64_t a, uint64_t b, uint64_t since,
                           bool create);

/* views_idem.c: idempotency.recorded. */
int reel__views_apply_idem(reel_views_t *v, MDB_txn *txn, const reel_event_t *ev);

#endif /* REEL_VIEWS_INT_H */
