/*
 * views.c: the materialised views in LMDB (contract and key layouts in
 * views.h).
 *
 * Why LMDB: copy-on-write B+trees give readers a consistent snapshot with
 * no locks, and one write txn per apply makes "views + applied" atomic
 * (invariant 1 of views.h) with no WAL of our own. The log is the source of
 * truth, so MDB_NOMETASYNC is enough: it can only undo the last txn on a
 * system crash, and the log replays it.
 *
 * Map growth (invariant 4). LMDB fails a write with MDB_MAP_FULL when the
 * map is too small, and mdb_env_set_mapsize() may only be called while no
 * txn of this process is active. Every txn (read or write) therefore holds
 * grow_lock in read mode for its life; the grower takes it in write mode,
 * so it runs exactly when no txn is open. The lock prefers writers so that
 * a steady stream of readers cannot starve growth.
 *
 * Apply is written so that rerunning it after an abort is safe: it reads
 * only the txn and the events, so the retry after growth computes the same
 * changes (invariant 3).
 */
#include "engine/views.h"

#include <lmdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "engine/common.h"

/* Named DBIs the environment may hold: 9 today; the rest is headroom for
 * the views later work adds (blocks, cameos, feeds...) without a format
 * change. LMDB scans the DBI table linearly, so keep it small. */
#define MAXDBS 32u
/* LMDB reader slots: one per concurrent read txn across the process. The
 * server's worker threads and the HTTP loop stay far below this; a full
 * table answers REEL_EFULL instead of blocking. */
#define READERS_MAX 512u
/* Reruns of one apply after growth: doubling from 64 MiB reaches the 1 TiB
 * bound in 14 steps, so more than this means a bug. */
#define GROW_RETRIES_MAX 32u
/* Fixed bytes of a users value: created_at u64, flags u8, two u8 lengths. */
#define USER_FIXED_BYTES 11u
#define USER_VALUE_MAX (USER_FIXED_BYTES + REEL_HANDLE_LEN_MAX + REEL_NAME_LEN_MAX)
/* A posts value: author, created_at, likes (u64 each), flags u8. */
#define POST_VALUE_BYTES 25u
/* A counts value: four u64. */
#define COUNTS_VALUE_BYTES 32u
/* Private codes for LMDB conditions apply handles itself; they never leave
 * this file (outside reeldb's range and errno's). */
#define ERR_MAP_FULL (-30900)
#define ERR_MAP_RESIZED (-30901)

#define USER_DELETED 0x01u
#define POST_PUBLIC 0x01u
#define POST_HIDDEN 0x02u
#define POST_DELETED 0x04u

_Static_assert(REEL_HANDLE_LEN_MAX <= 255, "handle length fits a u8");
_Static_assert(REEL_NAME_LEN_MAX <= 255, "name length fits a u8");
_Static_assert(REEL_VIEWS_MAP_BYTES_INITIAL <= REEL_VIEWS_MAP_BYTES_MAX, "map bound");

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
    DBI_COUNT
};
static const char *const dbi_names[DBI_COUNT] = {
    "meta", "users", "handles", "counts", "follows", "followers", "following", "likes", "posts",
};
_Static_assert(DBI_COUNT <= MAXDBS, "DBIs fit maxdbs");

/* Counter slots of a counts value. */
enum { C_FOLLOWERS, C_FOLLOWING, C_POSTS, C_LIKES, C_COUNT };

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
    MDB_txn *txn;     /* read-only; holds grow_lock (read) */
};

/* Maps an LMDB or errno code to reeldb's (views.h, "Errors"). */
static int map_mdb(int rc)
{
    switch (rc) {
    case MDB_SUCCESS: return 0;
    case MDB_NOTFOUND: return REEL_ENOTFOUND;
    case MDB_CORRUPTED:
    case MDB_INVALID:
    case MDB_PAGE_NOTFOUND: return REEL_ECORRUPT;
    case MDB_VERSION_MISMATCH: return REEL_EVERSION;
    case MDB_PANIC: return REEL_EFAILED;
    case MDB_READERS_FULL: return REEL_EFULL;
    case MDB_TXN_FULL: return REEL_ETOOBIG;
    case MDB_MAP_FULL: return ERR_MAP_FULL;
    case MDB_MAP_RESIZED: return ERR_MAP_RESIZED;
    default: return rc > 0 ? -rc : -EIO;
    }
}

static void put_be64(uint8_t *p, uint64_t x)
{
    for (int i = 7; i >= 0; i--, x >>= 8)
        p[i] = (uint8_t)x;
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x = (x << 8) | p[i];
    return x;
}

/* ---- raw access: every LMDB call goes through these three ---- */

static int db_get(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl, MDB_val *out)
{
    MDB_val key = {kl, (void *)k};
    REEL_ASSERT(kl > 0);
    return map_mdb(mdb_get(txn, dbi, &key, out));
}

static int db_put(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl, const void *d, size_t dl)
{
    MDB_val key = {kl, (void *)k};
    MDB_val val = {dl, (void *)d};
    REEL_ASSERT(kl > 0);
    return map_mdb(mdb_put(txn, dbi, &key, &val, 0));
}

/* Deletes a key; an absent key is fine (callers checked or do not care). */
static int db_del(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl)
{
    MDB_val key = {kl, (void *)k};
    int rc = map_mdb(mdb_del(txn, dbi, &key, NULL));
    return rc == REEL_ENOTFOUND ? 0 : rc;
}

/* ---- growth lock ---- */

static void grow_rdlock(reel_views_t *v)
{
    int rc = pthread_rwlock_rdlock(&v->grow_lock);
    REEL_ASSERT(rc == 0);
}

static void grow_unlock(reel_views_t *v)
{
    int rc = pthread_rwlock_unlock(&v->grow_lock);
    REEL_ASSERT(rc == 0);
}

static void refresh_map_bytes(reel_views_t *v)
{
    MDB_envinfo info;
    int rc = mdb_env_info(v->env, &info);
    REEL_ASSERT(rc == 0);
    __atomic_store_n(&v->map_bytes, (uint64_t)info.me_mapsize, __ATOMIC_RELAXED);
}

/* Resizes the map with no txn of this process open (write side of
 * grow_lock). adopt: take the size another process set (MDB_MAP_RESIZED);
 * else double, bounded by REEL_VIEWS_MAP_BYTES_MAX (-ENOSPC there). */
static int grow(reel_views_t *v, bool adopt)
{
    int rc = pthread_rwlock_wrlock(&v->grow_lock);
    REEL_ASSERT(rc == 0);
    uint64_t cur = __atomic_load_n(&v->map_bytes, __ATOMIC_RELAXED);
    if (adopt) {
        rc = map_mdb(mdb_env_set_mapsize(v->env, 0));
    } else if (cur >= REEL_VIEWS_MAP_BYTES_MAX) {
        rc = -ENOSPC;
    } else {
        uint64_t next = cur * 2 < REEL_VIEWS_MAP_BYTES_MAX ? cur * 2 : REEL_VIEWS_MAP_BYTES_MAX;
        rc = map_mdb(mdb_env_set_mapsize(v->env, (size_t)next));
    }
    refresh_map_bytes(v);
    grow_unlock(v);
    return rc;
}

/* ---- counts ---- */

/* Adds delta (+1 or -1) to counter `which` of user; saturates at 0. */
static int counts_add(reel_views_t *v, MDB_txn *txn, uint64_t user, int which, int delta)
{
    uint8_t key[8], val[COUNTS_VALUE_BYTES] = {0};
    MDB_val cur;
    REEL_ASSERT(which >= 0 && which < C_COUNT);
    REEL_ASSERT(delta == 1 || delta == -1);
    put_be64(key, user);
    int rc = db_get(txn, v->dbi[DBI_COUNTS], key, sizeof key, &cur);
    if (rc == 0) {
        if (cur.mv_size != COUNTS_VALUE_BYTES)
            return REEL_ECORRUPT;
        memcpy(val, cur.mv_data, sizeof val);
    } else if (rc != REEL_ENOTFOUND) {
        return rc;
    }
    uint64_t c = reel_load_u64(val + 8 * which);
    if (delta < 0 && c == 0)
        return 0;
    reel_store_u64(val + 8 * which, delta > 0 ? c + 1 : c - 1);
    return db_put(txn, v->dbi[DBI_COUNTS], key, sizeof key, val, sizeof val);
}

/* ---- users ---- */

typedef struct user_rec {
    uint64_t created_at;                   /* engine time of creation */
    uint8_t flags;                         /* USER_DELETED */
    uint8_t hlen, nlen;                    /* bytes of handle, name */
    char handle[REEL_HANDLE_LEN_MAX];      /* not NUL-terminated */
    char name[REEL_NAME_LEN_MAX];          /* not NUL-terminated */
} user_rec_t;

/* Loads user id's record. REEL_ENOTFOUND when absent (deleted included). */
static int user_load(reel_views_t *v, MDB_txn *txn, uint64_t id, user_rec_t *u)
{
    uint8_t key[8];
    MDB_val val;
    put_be64(key, id);
    int rc = db_get(txn, v->dbi[DBI_USERS], key, sizeof key, &val);
    if (rc != 0)
        return rc;
    const uint8_t *p = val.mv_data;
    if (val.mv_size < USER_FIXED_BYTES)
        return REEL_ECORRUPT;
    u->created_at = reel_load_u64(p);
    u->flags = p[8];
    u->hlen = p[9];
    u->nlen = p[10];
    if (u->hlen > REEL_HANDLE_LEN_MAX || u->nlen > REEL_NAME_LEN_MAX ||
        val.mv_size != USER_FIXED_BYTES + u->hlen + u->nlen)
        return REEL_ECORRUPT;
    memcpy(u->handle, p + USER_FIXED_BYTES, u->hlen);
    memcpy(u->name, p + USER_FIXED_BYTES + u->hlen, u->nlen);
    return 0;
}

static int user_store(reel_views_t *v, MDB_txn *txn, uint64_t id, const user_rec_t *u)
{
    uint8_t key[8], val[USER_VALUE_MAX];
    REEL_ASSERT(u->hlen <= REEL_HANDLE_LEN_MAX);
    REEL_ASSERT(u->nlen <= REEL_NAME_LEN_MAX);
    put_be64(key, id);
    reel_store_u64(val, u->created_at);
    val[8] = u->flags;
    val[9] = u->hlen;
    val[10] = u->nlen;
    memcpy(val + USER_FIXED_BYTES, u->handle, u->hlen);
    memcpy(val + USER_FIXED_BYTES + u->hlen, u->name, u->nlen);
    return db_put(txn, v->dbi[DBI_USERS], key, sizeof key, val,
                  USER_FIXED_BYTES + (size_t)u->hlen + u->nlen);
}

/* The handles key: ASCII letters folded to lower case. */
static void handle_key(const char *h, size_t len, uint8_t *out)
{
    REEL_ASSERT(len <= REEL_HANDLE_LEN_MAX);
    for (size_t i = 0; i < len; i++) {
        char c = h[i];
        out[i] = (uint8_t)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
}

static int apply_user_created(reel_views_t *v, MDB_txn *txn, const reel_event_t *ev)
{
    user_rec_t u = {0};
    uint8_t hkey[REEL_HANDLE_LEN_MAX], idv[8];
    if (ev->handle.len == 0 || ev->handle.len > REEL_HANDLE_LEN_MAX ||
        ev->display_name.len > REEL_NAME_LEN_MAX)
        return REEL_EUSAGE;
    int rc = user_load(v, txn, ev->user, &u);
    if (rc != REEL_ENOTFOUND)
        return rc; /* 0: exists already, first creation wins */
    u.created_at = ev->at;
    u.hlen = (uint8_t)ev->handle.len;
    u.nlen = (uint8_t)ev->display_name.len;
    memcpy(u.handle, ev->handle.ptr, u.hlen);
    if (u.nlen)
        memcpy(u.name, ev->display_name.ptr, u.nlen);
    rc = user_store(v, txn, ev->user, &u);
    if (rc != 0)
        return rc;
    handle_key(u.handle, u.hlen, hkey);
    reel_store_u64(idv, ev->user);
    return db_put(txn, v->dbi[DBI_HANDLES], hkey, u.hlen, idv, sizeof idv);
}

static int apply_user_updated(reel_views_t *v, MDB_txn *txn, const reel_event_t *ev)
{
    user_rec_t u;
    if (ev->display_name.len > REEL_NAME_LEN_MAX)
        return REEL_EUSAGE;
    int rc = user_load(v, txn, ev->user, &u);
    if (rc == REEL_ENOTFOUND || (rc == 0 && (u.flags & USER_DELETED)))
        return 0;
    if (rc != 0)
        return rc;
    u.nlen = (uint8_t)ev->display_name.len;
    if (u.nlen)
        memcpy(u.name, ev->display_name.ptr, u.nlen);
    return user_store(v, txn, ev->user, &u);
}

/* Marks the user deleted and frees the handle if it still names them. */
static int apply_user_deleted(reel_views_t *v, MDB_txn *txn, const reel_event_t *ev)
{
    user_rec_t u;
    uint8_t hkey[REEL_HANDLE_LEN_MAX];
    MDB_val val;
    int rc = user_load(v, txn, ev->user, &u);
    if (rc == REEL_ENOTFOUND || (rc == 0 && (u.flags & USER_DELETED)))
        return 0;
    if (rc != 0)
        return rc;
    u.flags |= USER_DELETED;
    rc = user_store(v, txn, ev->user, &u);
    if (rc != 0)
        return rc;
    handle_key(u.handle, u.hlen, hkey);
    rc = db_get(txn, v->dbi[DBI_HANDLES], hkey, u.hlen, &val);
    if (rc == REEL_ENOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    if (val.mv_size != 8)
        return REEL_ECORRUPT;
    if (reel_load_u64(val.mv_data) != ev->user)
        return 0;
    return db_del(txn, v->dbi[DBI_HANDLES], hkey, u.hlen);
}

/* ---- follows ---- */

/* The three keys of one follow edge. */
typedef struct follow_keys {
    uint8_t pair[16];      /* follows: follower | target */
    uint8_t followers[24]; /* target | ~since | follower */
    uint8_t following[24]; /* follower | ~since | target */
} follow_keys_t;

static void follow_keys(uint64_t follower, uint64_t target, uint64_t since, follow_keys_t *k)
{
    put_be64(k->pair, follower);
    put_be64(k->pair + 8, target);
    put_be64(k->followers, target);
    put_be64(k->followers + 8, ~since);
    put_be64(k->followers + 16, follower);
    put_be64(k->following, follower);
    put_be64(k->following + 8, ~since);
    put_be64(k->following + 16, target);
}

static int apply_follow_created(reel_views_t *v, MDB_txn *txn, const reel_event_t *ev)
{
    follow_keys_t k;
    uint8_t since[8];
    MDB_val val;
    follow_keys(ev->user, ev->target, ev->at, &k);
    int rc = db_get(txn, v->dbi[DBI_FOLLOWS], k.pair, sizeof k.pair, &val);
    if (rc != REEL_ENOTFOUND)
        return rc; /* 0: the pair exists; idempotent */
    reel_store_u64(since, ev->at);
    if ((rc = db_put(txn, v->dbi[DBI_FOLLOWS], k.pair, sizeof k.pair, since, 8)) != 0 ||
        (rc = db_put(txn, v->dbi[DBI_FOLLOWERS], k.followers, 24, "", 0)) != 0 ||
        (rc = db_put(txn, v->dbi[DBI_FOLLOWING], k.following, 24, "", 0)) != 0 ||
        (rc = counts_add(v, txn, ev->target, C_FOLLOWERS, 1)) != 0)
        return rc;
    return counts_add(v, txn, ev->user, C_FOLLOWING, 1);
}

static int apply_follow_removed(reel_views_t *v, MDB_txn *txn, const reel_event_t *ev)
{
    follow_keys_t k;
    MDB_val val;
    follow_keys(ev->user, ev->target, 0, &k);
    int rc = db_get(txn, v->dbi[DBI_FOLLOWS], k.pair, sizeof k.pair, &val);
    if (rc == REEL_ENOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    if (val.mv_size != 8)
        return REEL_ECORRUPT;
    follow_keys(ev->user, ev->target, reel_load_u64(val.mv_data), &k);
    if ((rc = db_del(txn, v->dbi[DBI_FOLLOWS], k.pair, sizeof k.pair)) != 0 ||
        (rc = db_del(txn, v->dbi[DBI_FOLLOWERS], k.followers, 24)) != 0 ||
        (rc = db_del(txn, v->dbi[DBI_FOLLOWING], k.following, 24)) != 0 ||
        (rc = counts_add(v, txn, ev->target, C_FOLLOWERS, -1)) != 0)
        return rc;
    return counts_add(v, txn, ev->user, C_FOLLOWING, -1);
}

/* ---- posts and likes ---- */

typedef struct post_rec {
    uint64_t author;     /* user id */
    uint64_t created_at; /* engine time */
    uint64_t likes;      /* like count */
    uint8_t flags;       /* POST_* */
} post_rec_t;

static int post_load(reel_views_t *v, MDB_txn *txn, uint64_t id, post_rec_t *p)
{
    uint8_t key[8];
    MDB_val val;
    put_be64(key, id);
    int rc = db_get(txn, v->dbi[DBI_POSTS], key, sizeof key, &val);
    if (rc != 0)
        return rc;
    if (val.mv_size != POST_VALUE_BYTES)
        return REEL_ECORRUPT;
    const uint8_t *b = val.mv_data;
    p->author = reel_load_u64(b);
    p->created_at = reel_load_u64(b + 8);
    p->likes = reel_load_u64(b + 16);
    p->flags = b[24];
    return 0;
}

static int post_store(reel_views_t *v, MDB_txn *txn, uint64_t id, const post_rec_t *p)
{
    uint8_t key[8], val[POST_VALUE_BYTES];
    REEL_ASSERT((p->flags & ~(POST_PUBLIC | POST_HIDDEN | POST_DELETED)) == 0);
    put_be64(key, id);
    reel_store_u64(val, p->author);
    reel_store_u64(val + 8, p->created_at);
    reel_store_u64(val + 16, p->likes);
    val[24] = p->flags;
    return db_put(txn, v->dbi[DBI_POSTS], key, sizeof key, val, sizeof val);
}

static int apply_post_created(reel_views_t *v, MDB_txn *txn, const reel_event_t *ev)
{
    post_rec_t p = {.author = ev->user, .created_at = ev->at};
    post_rec_t old;
    int rc = post_load(v, txn, ev->post, &old);
    if (rc != REEL_ENOTFOUND)
        return rc; /* 0: exists; first creation wins */
    if (ev->visibility.len == 6 && memcmp(ev->visibility.ptr, "public", 6) == 0)
        p.flags |= POST_PUBLIC;
    if ((rc = post_store(v, txn, ev->post, &p)) != 0)
        return rc;
    return (p.flags & POST_PUBLIC) ? counts_add(v, txn, p.author, C_POSTS, 1) : 0;
}

/* Sets flag on a post; a public post leaving the count (deleted) drops it. */
static int apply_post_flag(reel_views_t *v, MDB_txn *txn, const reel_event_t *ev, uint8_t flag)
{
    post_rec_t p;
    int rc = post_load(v, txn, ev->post, &p);
    if (rc == REEL_ENOTFOUND || (rc == 0 && (p.flags & flag)))
        return 0;
    if (rc != 0)
        return rc;
    p.flags |= flag;
    if ((rc = post_store(v, txn, ev->post, &p)) != 0)
        return rc;
    if (flag == POST_DELETED && (p.flags & POST_PUBLIC))
        return counts_add(v, txn, p.author, C_POSTS, -1);
    return 0;
}

/* Adds delta to a known post's like count and its author's likes. */
static int post_likes_add(reel_views_t *v, MDB_txn *txn, uint64_t post, int delta)
{
    post_rec_t p;
    int rc = post_load(v, txn, post, &p);
    if (rc == REEL_ENOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    if (delta > 0)
        p.likes++;
    else if (p.likes > 0)
        p.likes--;
    if ((rc = post_store(v, txn, post, &p)) != 0)
        return rc;
    return counts_add(v, txn, p.author, C_LIKES, delta);
}

static int apply_like(reel_views_t *v, MDB_txn *txn, const reel_event_t *ev, bool create)
{
    uint8_t key[16], at[8];
    MDB_val val;
    put_be64(key, ev->post);
    put_be64(key + 8, ev->user);
    int rc = db_get(txn, v->dbi[DBI_LIKES], key, sizeof key, &val);
    if (rc != 0 && rc != REEL_ENOTFOUND)
        return rc;
    if ((rc == 0) == create)
        return 0; /* like exists (create) or is absent (remove): no-op */
    reel_store_u64(at, ev->at);
    rc = create ? db_put(txn, v->dbi[DBI_LIKES], key, sizeof key, at, sizeof at)
                : db_del(txn, v->dbi[DBI_LIKES], key, sizeof key);
    if (rc != 0)
        return rc;
    return post_likes_add(v, txn, ev->post, create ? 1 : -1);
}

/* ---- apply ---- */

static int apply_event(reel_views_t *v, MDB_txn *txn, const reel_event_t *ev)
{
    switch (ev->type) {
    case REEL_EV_USER_CREATED: return apply_user_created(v, txn, ev);
    case REEL_EV_USER_UPDATED: return apply_user_updated(v, txn, ev);
    case REEL_EV_USER_DELETED: return apply_user_deleted(v, txn, ev);
    case REEL_EV_FOLLOW_CREATED: return apply_follow_created(v, txn, ev);
    case REEL_EV_FOLLOW_REMOVED: return apply_follow_removed(v, txn, ev);
    case REEL_EV_POST_CREATED: return apply_post_created(v, txn, ev);
    case REEL_EV_POST_DELETED: return apply_post_flag(v, txn, ev, POST_DELETED);
    case REEL_EV_POST_HIDDEN: return apply_post_flag(v, txn, ev, POST_HIDDEN);
    case REEL_EV_LIKE_CREATED: return apply_like(v, txn, ev, true);
    case REEL_EV_LIKE_REMOVED: return apply_like(v, txn, ev, false);
    default: return 0; /* not materialised yet; still applied */
    }
}

/* One attempt: a write txn with every event and the new applied. Returns
 * ERR_MAP_FULL / ERR_MAP_RESIZED for the caller to grow and rerun. */
static int apply_once(reel_views_t *v, const reel_event_t *evs, size_t n)
{
    MDB_txn *txn;
    uint8_t applied[8];
    grow_rdlock(v);
    int rc = map_mdb(mdb_txn_begin(v->env, NULL, 0, &txn));
    if (rc != 0)
        goto out_unlock;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = apply_event(v, txn, &evs[i]);
    reel_store_u64(applied, evs[n - 1].offset + 1);
    if (rc == 0)
        rc = db_put(txn, v->dbi[DBI_META], "applied", 7, applied, sizeof applied);
    if (rc != 0) {
        mdb_txn_abort(txn);
        goto out_unlock;
    }
    rc = map_mdb(mdb_txn_commit(txn)); /* frees txn on failure too */
    if (rc == 0)
        __atomic_store_n(&v->applied, evs[n - 1].offset + 1, __ATOMIC_RELEASE);
out_unlock:
    grow_unlock(v);
    return rc;
}

/* Runs apply_once, growing the map (invariant 4) until it fits. */
static int apply_retry(reel_views_t *v, const reel_event_t *evs, size_t n)
{
    for (unsigned tries = 0; tries < GROW_RETRIES_MAX; tries++) {
        int rc = apply_once(v, evs, n);
        if (rc != ERR_MAP_FULL && rc != ERR_MAP_RESIZED)
            return rc;
        rc = grow(v, rc == ERR_MAP_RESIZED);
        if (rc != 0)
            return rc;
    }
    return -ENOSPC;
}

int reel_views_apply(reel_views_t *v, const reel_event_t *evs, size_t n)
{
    REEL_ASSERT(v != NULL);
    if (n == 0)
        return 0;
    if (evs == NULL || evs[0].offset > UINT64_MAX - n)
        return REEL_EUSAGE;
    for (size_t i = 1; i < n; i++)
        if (evs[i].offset != evs[0].offset + i)
            return REEL_EUSAGE;
    int rc = pthread_mutex_lock(&v->apply_lock);
    REEL_ASSERT(rc == 0);
    uint64_t applied = __atomic_load_n(&v->applied, __ATOMIC_ACQUIRE);
    if (evs[0].offset > applied)
        rc = REEL_EUSAGE; /* invariant 2: a gap */
    else if (applied - evs[0].offset < n)
        rc = apply_retry(v, evs + (applied - evs[0].offset), n - (size_t)(applied - evs[0].offset));
    pthread_mutex_unlock(&v->apply_lock);
    REEL_ASSERT(rc != ERR_MAP_FULL && rc != ERR_MAP_RESIZED);
    return rc;
}

uint64_t reel_views_applied(reel_views_t *v)
{
    REEL_ASSERT(v != NULL);
    return __atomic_load_n(&v->applied, __ATOMIC_ACQUIRE);
}

uint64_t reel_views_map_bytes(reel_views_t *v)
{
    REEL_ASSERT(v != NULL);
    return __atomic_load_n(&v->map_bytes, __ATOMIC_RELAXED);
}

/* ---- open and close ---- */

/* Checks (or, on a fresh environment, writes) the format version and loads
 * applied. */
static int meta_check(reel_views_t *v, MDB_txn *txn, const char *dir)
{
    MDB_val val;
    uint8_t ver[4];
    int rc = db_get(txn, v->dbi[DBI_META], "version", 7, &val);
    if (rc == REEL_ENOTFOUND) {
        reel_store_u32(ver, REEL_VIEWS_VERSION);
        rc = db_put(txn, v->dbi[DBI_META], "version", 7, ver, sizeof ver);
    } else if (rc == 0 && val.mv_size != 4) {
        rc = REEL_ECORRUPT;
    } else if (rc == 0 && reel_load_u32(val.mv_data) != REEL_VIEWS_VERSION) {
        fprintf(stderr, "reel views: %s has views format version %u; this build reads %u "
                "(remove it and rebuild the views from the log)\n",
                dir, reel_load_u32(val.mv_data), REEL_VIEWS_VERSION);
        rc = REEL_EVERSION;
    }
    if (rc != 0)
        return rc;
    rc = db_get(txn, v->dbi[DBI_META], "applied", 7, &val);
    if (rc == REEL_ENOTFOUND)
        return 0;
    if (rc == 0 && val.mv_size != 8)
        return REEL_ECORRUPT;
    if (rc == 0)
        v->applied = reel_load_u64(val.mv_data);
    return rc;
}

/* Opens (creating) every DBI in one write txn and checks meta. */
static int open_dbis(reel_views_t *v, const char *dir)
{
    MDB_txn *txn;
    int rc = map_mdb(mdb_txn_begin(v->env, NULL, 0, &txn));
    if (rc != 0)
        return rc;
    for (int i = 0; i < DBI_COUNT && rc == 0; i++)
        rc = map_mdb(mdb_dbi_open(txn, dbi_names[i], MDB_CREATE, &v->dbi[i]));
    if (rc == 0)
        rc = meta_check(v, txn, dir);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    return map_mdb(mdb_txn_commit(txn));
}

static int env_open(reel_views_t *v, const char *dir)
{
    int rc = map_mdb(mdb_env_create(&v->env));
    if (rc != 0)
        return rc;
    if ((rc = map_mdb(mdb_env_set_maxdbs(v->env, MAXDBS))) != 0 ||
        (rc = map_mdb(mdb_env_set_maxreaders(v->env, READERS_MAX))) != 0 ||
        (rc = map_mdb(mdb_env_set_mapsize(v->env, REEL_VIEWS_MAP_BYTES_INITIAL))) != 0 ||
        (rc = map_mdb(mdb_env_open(v->env, dir, MDB_NOMETASYNC | MDB_NOTLS, 0644))) != 0) {
        mdb_env_close(v->env);
        v->env = NULL;
        return rc;
    }
    refresh_map_bytes(v);
    return 0;
}

static int locks_init(reel_views_t *v)
{
    pthread_rwlockattr_t attr;
    int rc = pthread_rwlockattr_init(&attr);
    if (rc != 0)
        return -rc;
    /* Growth must not starve behind overlapping readers. */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    rc = pthread_rwlock_init(&v->grow_lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (rc != 0)
        return -rc;
    rc = pthread_mutex_init(&v->apply_lock, NULL);
    if (rc != 0) {
        pthread_rwlock_destroy(&v->grow_lock);
        return -rc;
    }
    return 0;
}

int reel_views_open(const char *dir, reel_views_t **out)
{
    if (out == NULL)
        return REEL_EUSAGE;
    *out = NULL;
    if (dir == NULL || dir[0] == '\0')
        return REEL_EUSAGE;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return REEL_ERR(errno);
    reel_views_t *v = calloc(1, sizeof *v);
    if (v == NULL)
        return -ENOMEM;
    int rc = locks_init(v);
    if (rc != 0)
        goto out_free;
    if ((rc = env_open(v, dir)) != 0)
        goto out_locks;
    if ((rc = open_dbis(v, dir)) != 0)
        goto out_env;
    *out = v;
    return 0;
out_env:
    mdb_env_close(v->env);
out_locks:
    pthread_mutex_destroy(&v->apply_lock);
    pthread_rwlock_destroy(&v->grow_lock);
out_free:
    free(v);
    REEL_ASSERT(rc != ERR_MAP_FULL && rc != ERR_MAP_RESIZED);
    return rc;
}

void reel_views_close(reel_views_t *v)
{
    if (v == NULL)
        return;
    mdb_env_close(v->env);
    pthread_mutex_destroy(&v->apply_lock);
    int rc = pthread_rwlock_destroy(&v->grow_lock);
    REEL_ASSERT(rc == 0); /* EBUSY: a read txn is still open */
    free(v);
}

/* ---- read side ---- */

int reel_views_read_begin(reel_views_t *v, reel_views_txn_t **out)
{
    REEL_ASSERT(v != NULL);
    REEL_ASSERT(out != NULL);
    *out = NULL;
    reel_views_txn_t *t = malloc(sizeof *t);
    if (t == NULL)
        return -ENOMEM;
    t->v = v;
    for (unsigned tries = 0; tries < GROW_RETRIES_MAX; tries++) {
        grow_rdlock(v);
        int rc = map_mdb(mdb_txn_begin(v->env, NULL, MDB_RDONLY, &t->txn));
        if (rc == 0) {
            *out = t;
            return 0;
        }
        grow_unlock(v);
        if (rc == ERR_MAP_RESIZED)
            rc = grow(v, true);
        if (rc != 0) {
            free(t);
            return rc == ERR_MAP_FULL ? -ENOSPC : rc;
        }
    }
    free(t);
    return -EIO;
}

void reel_views_read_end(reel_views_txn_t *t)
{
    if (t == NULL)
        return;
    REEL_ASSERT(t->txn != NULL);
    mdb_txn_abort(t->txn);
    grow_unlock(t->v);
    free(t);
}

/* Fills out from the users record and counts of id (snapshot t). */
static int fill_user(reel_views_txn_t *t, uint64_t id, reel_user_view_t *out)
{
    user_rec_t u;
    uint8_t key[8];
    MDB_val val;
    int rc = user_load(t->v, t->txn, id, &u);
    if (rc != 0)
        return rc;
    if (u.flags & USER_DELETED)
        return REEL_ENOTFOUND;
    memset(out, 0, sizeof *out);
    out->id = id;
    out->created_at = u.created_at;
    out->handle_len = u.hlen;
    out->display_name_len = u.nlen;
    memcpy(out->handle, u.handle, u.hlen);
    memcpy(out->display_name, u.name, u.nlen);
    put_be64(key, id);
    rc = db_get(t->txn, t->v->dbi[DBI_COUNTS], key, sizeof key, &val);
    if (rc == REEL_ENOTFOUND)
        return 0;
    if (rc == 0 && val.mv_size != COUNTS_VALUE_BYTES)
        return REEL_ECORRUPT;
    if (rc != 0)
        return rc;
    out->followers = reel_load_u64((const uint8_t *)val.mv_data + 8 * C_FOLLOWERS);
    out->following = reel_load_u64((const uint8_t *)val.mv_data + 8 * C_FOLLOWING);
    out->posts = reel_load_u64((const uint8_t *)val.mv_data + 8 * C_POSTS);
    out->likes_received = reel_load_u64((const uint8_t *)val.mv_data + 8 * C_LIKES);
    return 0;
}

int reel_views_get_user(reel_views_txn_t *t, uint64_t id, reel_user_view_t *out)
{
    if (t == NULL || out == NULL)
        return REEL_EUSAGE;
    return fill_user(t, id, out);
}

int reel_views_user_by_handle(reel_views_txn_t *t, const char *handle, size_t len,
                              reel_user_view_t *out)
{
    uint8_t key[REEL_HANDLE_LEN_MAX];
    MDB_val val;
    if (t == NULL || out == NULL || handle == NULL || len == 0 || len > REEL_HANDLE_LEN_MAX)
        return REEL_EUSAGE;
    handle_key(handle, len, key);
    int rc = db_get(t->txn, t->v->dbi[DBI_HANDLES], key, len, &val);
    if (rc != 0)
        return rc;
    if (val.mv_size != 8)
        return REEL_ECORRUPT;
    return fill_user(t, reel_load_u64(val.mv_data), out);
}

/* Positions cur at the first followers key after the cursor. */
static int followers_seek(MDB_cursor *cur, uint64_t user, uint64_t since, uint64_t id,
                          MDB_val *k)
{
    uint8_t buf[24] = {0};
    bool after = since != 0 || id != 0;
    put_be64(buf, user);
    if (after) {
        put_be64(buf + 8, ~since);
        put_be64(buf + 16, id);
    }
    k->mv_size = sizeof buf;
    k->mv_data = buf;
    MDB_val d;
    int rc = mdb_cursor_get(cur, k, &d, MDB_SET_RANGE);
    if (rc == 0 && after && k->mv_size == sizeof buf && memcmp(k->mv_data, buf, sizeof buf) == 0)
        rc = mdb_cursor_get(cur, k, &d, MDB_NEXT);
    return map_mdb(rc);
}

int reel_views_followers(reel_views_txn_t *t, uint64_t user, uint64_t cursor_since,
                         uint64_t cursor_id, size_t limit, reel_follow_entry_t *out,
                         size_t *n_out)
{
    MDB_cursor *cur;
    MDB_val k, d;
    if (t == NULL || out == NULL || n_out == NULL || limit == 0 || limit > REEL_VIEWS_PAGE_MAX)
        return REEL_EUSAGE;
    *n_out = 0;
    int rc = map_mdb(mdb_cursor_open(t->txn, t->v->dbi[DBI_FOLLOWERS], &cur));
    if (rc != 0)
        return rc;
    rc = followers_seek(cur, user, cursor_since, cursor_id, &k);
    while (rc == 0 && *n_out < limit) {
        const uint8_t *p = k.mv_data;
        if (k.mv_size != 24) {
            rc = REEL_ECORRUPT;
            break;
        }
        if (get_be64(p) != user)
            break;
        out[*n_out].since = ~get_be64(p + 8);
        out[*n_out].user = get_be64(p + 16);
        (*n_out)++;
        rc = map_mdb(mdb_cursor_get(cur, &k, &d, MDB_NEXT));
    }
    mdb_cursor_close(cur);
    return rc == REEL_ENOTFOUND ? 0 : rc;
}

/* ---- hash ---- */

static void hash_bytes(XXH3_state_t *st, const void *p, size_t len)
{
    uint8_t lenb[4];
    REEL_ASSERT(len <= UINT32_MAX);
    reel_store_u32(lenb, (uint32_t)len);
    XXH3_128bits_update(st, lenb, sizeof lenb);
    XXH3_128bits_update(st, p, len);
}

/* Feeds one DBI's name, then every key and value in key order. */
static int hash_dbi(reel_views_txn_t *t, int dbi, XXH3_state_t *st)
{
    MDB_cursor *cur;
    MDB_val k, d;
    REEL_ASSERT(dbi > DBI_META && dbi < DBI_COUNT);
    hash_bytes(st, dbi_names[dbi], strlen(dbi_names[dbi]));
    int rc = map_mdb(mdb_cursor_open(t->txn, t->v->dbi[dbi], &cur));
    if (rc != 0)
        return rc;
    rc = map_mdb(mdb_cursor_get(cur, &k, &d, MDB_FIRST));
    while (rc == 0) {
        hash_bytes(st, k.mv_data, k.mv_size);
        hash_bytes(st, d.mv_data, d.mv_size);
        rc = map_mdb(mdb_cursor_get(cur, &k, &d, MDB_NEXT));
    }
    mdb_cursor_close(cur);
    return rc == REEL_ENOTFOUND ? 0 : rc;
}

int reel_views_hash(reel_views_t *v, uint8_t out[16])
{
    reel_views_txn_t *t;
    REEL_ASSERT(v != NULL);
    REEL_ASSERT(out != NULL);
    XXH3_state_t *st = XXH3_createState();
    if (st == NULL)
        return -ENOMEM;
    XXH3_128bits_reset(st);
    int rc = reel_views_read_begin(v, &t);
    for (int i = DBI_META + 1; i < DBI_COUNT && rc == 0; i++)
        rc = hash_dbi(t, i, st);
    if (t != NULL)
        reel_views_read_end(t);
    if (rc == 0) {
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits_digest(st));
        memcpy(out, c.digest, 16);
    }
    XXH3_freeState(st);
    return rc;
}
