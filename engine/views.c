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
#include "engine/views_int.h"

#include <lmdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "engine/common.h"

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
/* A posts value: author, created_at, remix_of, remix_root, likes,
 * comments, remixes, views, watch_ms (u64 each), flags u8, then the hidden
 * reason's bytes (the rest of the value). */
#define POST_FIXED_BYTES 73u
#define POST_VALUE_MAX (POST_FIXED_BYTES + REEL_TEXT_LEN_MAX)
/* A counts value: six u64 (C_COUNT). */
#define COUNTS_VALUE_BYTES 64u
/* A comments value: post, author, reply_to, created_at (u64 each), flags
 * u8, then the text's bytes (the rest of the value). */
#define COMMENT_FIXED_BYTES 33u
#define COMMENT_VALUE_MAX (COMMENT_FIXED_BYTES + REEL_TEXT_LEN_MAX)
/* A cameos value: policy u8, then the asset URI's bytes (may be none). */
#define CAMEO_VALUE_MAX (1u + REEL_URI_LEN_MAX)
/* A generations value: user, created_at, attempts, lease_until, post,
 * remix_of (u64 each), status u8, ncameos u8, ntags u8, worker_len u8,
 * prompt_len u16; then the body (cameos, prompt, tags with a u8 length
 * each) and the worker (the rest). */
#define GEN_FIXED_BYTES 54u
#define GEN_BODY_MAX (8u * REEL_CAMEOS_MAX + REEL_PROMPT_LEN_MAX + REEL_TAGS_MAX * (1u + REEL_TAG_LEN_MAX))
#define GEN_VALUE_MAX (GEN_FIXED_BYTES + GEN_BODY_MAX + REEL_SHORT_LEN_MAX)
/* An invites value: issuer u64, used u8, used_by u64 (0: unused). */
#define INVITE_VALUE_BYTES 17u
/* Private codes for LMDB conditions apply handles itself; they never leave
 * this file (outside reeldb's range and errno's). */
#define ERR_MAP_FULL (-30900)
#define ERR_MAP_RESIZED (-30901)

#define USER_DELETED 0x01u
#define POST_PUBLIC 0x01u
#define POST_HIDDEN 0x02u
#define POST_DELETED 0x04u
#define POST_FLAGS_ALL (POST_PUBLIC | POST_HIDDEN | POST_DELETED)
#define COMMENT_DELETED 0x01u

_Static_assert(REEL_HANDLE_LEN_MAX <= 255, "handle length fits a u8");
_Static_assert(REEL_NAME_LEN_MAX <= 255, "name length fits a u8");
_Static_assert(REEL_VIEWS_MAP_BYTES_INITIAL <= REEL_VIEWS_MAP_BYTES_MAX, "map bound");
_Static_assert(REEL_TEXT_LEN_MAX <= UINT16_MAX, "reason length fits a u16");
_Static_assert(REEL_SHORT_LEN_MAX <= 511, "invite codes fit an LMDB key");
_Static_assert(REEL_SHORT_LEN_MAX <= 255, "worker length fits a u8");
_Static_assert(REEL_TAG_LEN_MAX <= 255, "tag length fits a u8");
_Static_assert(GEN_BODY_MAX <= UINT16_MAX, "generation body length fits a u16");

const char *const reel__views_dbi_names[DBI_COUNT] = {
    "meta",      "users",     "handles",  "counts",           "follows",
    "followers", "following", "likes",    "posts",            "posts_by_author",
    "remixes",   "blocks",    "blocked_by", "cameos",         "approvals",
    "comments",  "comments_by_post", "invites", "feedback",         "appearances",
    "generations", "queue",   "gen_by_user_time", "gen_by_cameo", "leases",
    "likes_by_user", "comments_by_author", "post_cameos", "leaderboard", "post_bodies",
    "friends", "idem", "idem_by_time",
};

/* Counter slots of a counts value. */
enum {
    C_FOLLOWERS, C_FOLLOWING, C_POSTS, C_LIKES, C_FRIENDS, C_INVITES, C_REMIXES, C_CAMEO_USES,
    C_COUNT
};
_Static_assert(8 * C_COUNT == COUNTS_VALUE_BYTES, "counts value layout");

/* Maps an LMDB or errno code to reeldb's (views.h, "Errors"). */
int reel__vmdb(int rc)
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

void reel__vput_be64(uint8_t *p, uint64_t x)
{
    for (int i = 7; i >= 0; i--, x >>= 8)
        p[i] = (uint8_t)x;
}

uint64_t reel__vget_be64(const uint8_t *p)
{
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x = (x << 8) | p[i];
    return x;
}

/* ---- raw access: every LMDB call goes through these three ---- */

int reel__vdb_get(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl, MDB_val *out)
{
    MDB_val key = {kl, (void *)k};
    REEL_ASSERT(kl > 0);
    return reel__vmdb(mdb_get(txn, dbi, &key, out));
}

int reel__vdb_put(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl, const void *d, size_t dl)
{
    MDB_val key = {kl, (void *)k};
    MDB_val val = {dl, (void *)d};
    REEL_ASSERT(kl > 0);
    return reel__vmdb(mdb_put(txn, dbi, &key, &val, 0));
}

/* Puts a key that must be new, in one descent of the tree (no get
 * first): 0 put, 1 present already (nothing changed), < 0 error. */
int reel__vdb_put_new(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl, const void *d,
                      size_t dl)
{
    MDB_val key = {kl, (void *)k};
    MDB_val val = {dl, (void *)d};
    REEL_ASSERT(kl > 0);
    int rc = mdb_put(txn, dbi, &key, &val, MDB_NOOVERWRITE);
    return rc == MDB_KEYEXIST ? 1 : reel__vmdb(rc);
}

/* Deletes a key in one descent: 0 deleted, 1 absent, < 0 error. */
int reel__vdb_del_found(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl)
{
    MDB_val key = {kl, (void *)k};
    REEL_ASSERT(kl > 0);
    int rc = mdb_del(txn, dbi, &key, NULL);
    return rc == MDB_NOTFOUND ? 1 : reel__vmdb(rc);
}

/* Deletes a key; an absent key is fine (callers checked or do not care). */
int reel__vdb_del(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl)
{
    MDB_val key = {kl, (void *)k};
    int rc = reel__vmdb(mdb_del(txn, dbi, &key, NULL));
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
        rc = reel__vmdb(mdb_env_set_mapsize(v->env, 0));
    } else if (cur >= REEL_VIEWS_MAP_BYTES_MAX) {
        rc = -ENOSPC;
    } else {
        uint64_t next = cur * 2 < REEL_VIEWS_MAP_BYTES_MAX ? cur * 2 : REEL_VIEWS_MAP_BYTES_MAX;
        rc = reel__vmdb(mdb_env_set_mapsize(v->env, (size_t)next));
    }
    refresh_map_bytes(v);
    grow_unlock(v);
    return rc;
}

/* ---- counts ---- */

/* The leaderboard kind (reel_views_board_t) of counter `which`, or -1. */
static int lb_kind(int which)
{
    switch (which) {
    case C_FOLLOWERS: return REEL_BOARD_FOLLOWERS;
    case C_LIKES: return REEL_BOARD_LIKES;
    case C_REMIXES: return REEL_BOARD_REMIXES;
    case C_CAMEO_USES: return REEL_BOARD_CAMEO_USES;
    default: return -1;
    }
}

static int index16(reel_views_t *v, MDB_txn *txn, int dbi, uint64_t a, uint64_t b, bool create,
                   uint64_t value);

/* Adds delta (+1 or -1) to counter `which` of user; saturates at 0. */
static int counts_add(reel_views_t *v, MDB_txn *txn, uint64_t user, int which, int delta)
{
    uint8_t val[COUNTS_VALUE_BYTES] = {0};
    MDB_val cur;
    REEL_ASSERT(which >= 0 && which < C_COUNT);
    REEL_ASSERT(delta == 1 || delta == -1);
    REEL_ASSERT(reel__vrows_active(v, txn)); /* the leaderboard moves at flush */
    int rc = reel__vrow_get(v, txn, DBI_COUNTS, user, &cur);
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
    return reel__vrow_put(v, txn, DBI_COUNTS, user, val, sizeof val);
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
    MDB_val val;
    int rc = reel__vrow_get(v, txn, DBI_USERS, id, &val);
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
    uint8_t val[USER_VALUE_MAX];
    REEL_ASSERT(u->hlen <= REEL_HANDLE_LEN_MAX);
    REEL_ASSERT(u->nlen <= REEL_NAME_LEN_MAX);
    reel_store_u64(val, u->created_at);
    val[8] = u->flags;
    val[9] = u->hlen;
    val[10] = u->nlen;
    memcpy(val + USER_FIXED_BYTES, u->handle, u->hlen);
    memcpy(val + USER_FIXED_BYTES + u->hlen, u->name, u->nlen);
    return reel__vrow_put(v, txn, DBI_USERS, id, val, USER_FIXED_BYTES + (size_t)u->hlen + u->nlen);
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

/* Marks invite code used by user (user.created with a code); an unknown or
 * used code is left as it is. */
static int invite_use(reel_views_t *v, MDB_txn *txn, reel_str_t code, uint64_t user)
{
    uint8_t val[INVITE_VALUE_BYTES];
    MDB_val cur;
    if (code.len == 0)
        return 0;
    if (code.len > REEL_SHORT_LEN_MAX)
        return REEL_EUSAGE;
    int rc = reel__vdb_get(txn, v->dbi[DBI_INVITES], code.ptr, code.len, &cur);
    if (rc == REEL_ENOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    if (cur.mv_size != INVITE_VALUE_BYTES)
        return REEL_ECORRUPT;
    memcpy(val, cur.mv_data, sizeof val);
    if (val[8] != 0)
        return 0;
    val[8] = 1;
    reel_store_u64(val + 9, user);
    return reel__vdb_put(txn, v->dbi[DBI_INVITES], code.ptr, code.len, val, sizeof val);
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
    if (rc == 0) /* counts that came before the user are listed now */
        rc = reel__vrow_settle(v, txn, ev->user);
    if (rc != 0)
        return rc;
    handle_key(u.handle, u.hlen, hkey);
    reel_store_u64(idv, ev->user);
    rc = reel__vdb_put(txn, v->dbi[DBI_HANDLES], hkey, u.hlen, idv, sizeof idv);
    if (rc != 0)
        return rc;
    return invite_use(v, txn, ev->code, ev->user);
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

/* ---- leaderboards ---- */

/* The leaderboard key u8 kind | be64 ~value | be64 user. */
#define LB_KEY_BYTES 17u

static void lb_key(int kind, uint64_t value, uint64_t user, uint8_t *key)
{
    key[0] = (uint8_t)kind;
    reel__vput_be64(key + 1, ~value);
    reel__vput_be64(key + 9, user);
}

/* A board's value in a counts record (NULL: none, 0). */
static uint64_t lb_value(const MDB_val *counts, int which)
{
    return counts != NULL ? reel_load_u64((const uint8_t *)counts->mv_data + 8 * which) : 0;
}

/* Only live users with a value above 0 are listed, so a deleted user's
 * counts (which may still move: a remix of theirs deleted later) never
 * bring them back. A user not live now and not forced was not live at orig
 * either (deletion and creation force), so it has no entries to move. */
int reel__views_lb_settle(reel_views_t *v, MDB_txn *txn, uint64_t user, const MDB_val *orig,
                          const MDB_val *cur, bool force)
{
    static const int which[REEL_BOARD_COUNT] = {C_FOLLOWERS, C_LIKES, C_REMIXES, C_CAMEO_USES};
    uint8_t key[LB_KEY_BYTES];
    user_rec_t u;
    if ((orig != NULL && orig->mv_size != COUNTS_VALUE_BYTES) ||
        (cur != NULL && cur->mv_size != COUNTS_VALUE_BYTES))
        return REEL_ECORRUPT;
    int rc = user_load(v, txn, user, &u);
    if (rc != 0 && rc != REEL_ENOTFOUND)
        return rc;
    bool live = rc == 0 && !(u.flags & USER_DELETED);
    if (!live && !force)
        return 0;
    rc = 0;
    for (int i = 0; rc == 0 && i < REEL_BOARD_COUNT; i++) {
        uint64_t from = lb_value(orig, which[i]), to = lb_value(cur, which[i]);
        REEL_ASSERT(lb_kind(which[i]) >= 0);
        if (from == to && !force)
            continue;
        if (from > 0) {
            lb_key(lb_kind(which[i]), from, user, key);
            rc = reel__vdb_del(txn, v->dbi[DBI_LEADERBOARD], key, sizeof key);
        }
        if (rc == 0 && live && to > 0) {
            lb_key(lb_kind(which[i]), to, user, key);
            rc = reel__vdb_put(txn, v->dbi[DBI_LEADERBOARD], key, sizeof key, "", 0);
        }
    }
    return rc;
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
    if ((rc = reel__vrow_settle(v, txn, ev->user)) != 0) /* leaves every board */
        return rc;
    u.flags |= USER_DELETED;
    rc = user_store(v, txn, ev->user, &u);
    if (rc != 0)
        return rc;
    handle_key(u.handle, u.hlen, hkey);
    rc = reel__vdb_get(txn, v->dbi[DBI_HANDLES], hkey, u.hlen, &val);
    if (rc == REEL_ENOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    if (val.mv_size != 8)
        return REEL_ECORRUPT;
    if (reel_load_u64(val.mv_data) != ev->user)
        return 0;
    return reel__vdb_del(txn, v->dbi[DBI_HANDLES], hkey, u.hlen);
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
    reel__vput_be64(k->pair, follower);
    reel__vput_be64(k->pair + 8, target);
    reel__vput_be64(k->followers, target);
    reel__vput_be64(k->followers + 8, ~since);
    reel__vput_be64(k->followers + 16, follower);
    reel__vput_be64(k->following, follower);
    reel__vput_be64(k->following + 8, ~since);
    reel__vput_be64(k->following + 16, target);
}

/* A follow user -> target (since `since`) began (+1) or ended (-1): when
 * target follows user back, the pair is (or was) mutual, so both friends
 * counts move and the friends index gains or loses the pair, dated by the
 * later of the two follows (when the friendship began). */
static int friends_add(reel_views_t *v, MDB_txn *txn, uint64_t user, uint64_t target, int delta,
                       uint64_t since)
{
    uint8_t rev[16];
    MDB_val val;
    REEL_ASSERT(delta == 1 || delta == -1);
    if (user == target)
        return 0; /* a self-follow is no friendship */
    reel__vput_be64(rev, target);
    reel__vput_be64(rev + 8, user);
    int rc = reel__vdb_get(txn, v->dbi[DBI_FOLLOWS], rev, sizeof rev, &val);
    if (rc == REEL_ENOTFOUND)
        return 0;
    if (rc == 0 && val.mv_size != 8)
        rc = REEL_ECORRUPT;
    if (rc != 0 || (rc = counts_add(v, txn, user, C_FRIENDS, delta)) != 0 ||
        (rc = counts_add(v, txn, target, C_FRIENDS, delta)) != 0)
        return rc;
    uint64_t rev_since = reel_load_u64(val.mv_data);
    return reel__views_friend_set(v, txn, user, target, since > rev_since ? since : rev_since,
                                  delta > 0);
}

static int apply_follow_created(reel_views_t *v, MDB_txn *txn, const reel_event_t *ev)
{
    follow_keys_t k;
    uint8_t since[8];
    follow_keys(ev->user, ev->target, ev->at, &k);
    reel_store_u64(since, ev->at);
    int rc = reel__vdb_put_new(txn, v->dbi[DBI_FOLLOWS], k.pair, sizeof k.pair, since, 8);
    if (rc != 0)
        return rc > 0 ? 0 : rc; /* 1: the pair exists; idempotent */
    if ((rc = reel__vidx_write(v, txn, DBI_FOLLOWERS, k.followers, 24, false)) != 0 ||
        (rc = reel__vidx_write(v, txn, DBI_FOLLOWING, k.following, 24, false)) != 0 ||
        (rc = counts_add(v, txn, ev->target, C_FOLLOWERS, 1)) != 0 ||
        (rc = counts_add(v, txn, ev->user, C_FOLLOWING, 1)) != 0)
        return rc;
    return friends_add(v, txn, ev->user, ev->target, 1, ev->at);
}

static int apply_follow_removed(reel_views_t *v, MDB_txn *txn, const reel_event_t *ev)
{
    follow_keys_t k;
    MDB_val val;
    follow_keys(ev->user, ev->target, 0, &k);
    int rc = reel__vdb_get(txn, v->dbi[DBI_FOLLOWS], k.pair, sizeof k.pair, &val);
    if (rc == REEL_ENOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    if (val.mv_size != 8)
        return REEL_ECORRUPT;
    uint64_t since = reel_load_u64(val.mv_data); /* val dies with the deletes */
    follow_keys(ev->user, ev->target, since, &k);
    if ((rc = reel__vdb_del(txn, v->dbi[DBI_FOLLOWS], k.pair, sizeof k.pair)) != 0 ||
        (rc = reel__vidx_write(v, txn, DBI_FOLLOWERS, k.followers, 24, true)) != 0 ||
        (rc = reel__vidx_write(v, txn, DBI_FOLLOWING, k.following, 24, true)) != 0 ||
        (rc = counts_add(v, txn, ev->target, C_FOLLOWERS, -1)) != 0 ||
        (rc = counts_add(v, txn, ev->user, C_FOLLOWING, -1)) != 0)
        return rc;
    return friends_add(v, txn, ev->user, ev->target, -1, since);
}

/* ---- posts, likes, views ---- */

/* Counter slots of a posts value, in value order. */
enum { P_LIKES, P_COMMENTS, P_REMIXES, P_VIEWS, P_WATCH_MS, P_COUNT };
_Static_assert(32 + 8 * P_COUNT + 1 == POST_FIXED_BYTES, "posts value layout");

typedef struct post_rec {
    uint64_t author;                /* user id */
    uint64_t created_at;            /* engine time */
    uint64_t remix_of;              /* direct parent, 0: an original */
    uint64_t remix_root;            /* original of the chain, 0: none */
    uint64_t n[P_COUNT];            /* likes, comments, remixes, views, watch_ms */
    uint8_t flags;                  /* POST_* */
    uint16_t reason_len;            /* bytes of reason */
    char reason[REEL_TEXT_LEN_MAX]; /* hidden reason, not NUL-terminated */
} post_rec_t;

/* Decodes a posts value into p, except the reason, which is left in the
 * value: *reason points into val (valid as long as val). */
static int post_decode(const MDB_val *val, post_rec_t *p, const uint8_t **reason)
{
    const uint8_t *b = val->mv_data;
    if (val->mv_size < POST_FIXED_BYTES || val->mv_size > POST_VALUE_MAX)
        return REEL_ECORRUPT;
    p->author = reel_load_u64(b);
    p->created_at = reel_load_u64(b + 8);
    p->remix_of = reel_load_u64(b + 16);
    p->remix_root = reel_load_u64(b + 24);
    for (int i = 0; i < P_COUNT; i++)
        p->n[i] = reel_load_u64(b + 32 + 8 * i);
    p->flags = b[POST_FIXED_BYTES - 1];
    if ((p->flags & ~POST_FLAGS_ALL) != 0)
        return REEL_ECORRUPT;
    p->reason_len = (uint16_t)(val->mv_size - POST_FIXED_BYTES);
    *reason = b + POST_FIXED_BYTES;
    return 0;
}

/* Loads post id with a copy of its reason (p outlives later puts). */
static int post_load(reel_views_t *v, MDB_txn *txn, uint64_t id, post_rec_t *p)
{
    MDB_val val;
    const uint8_t *reason;
    int rc = reel__vrow_get(v, txn, DBI_POSTS, id, &val);
    if (rc == 0)
        rc = post_decode(&val, p, &reason);
    if (rc == 0)
        memcpy(p->reason, reason, p->reason_len);
    return rc;
}

static int post_store(reel_views_t *v, MDB_txn *txn, uint64_t id, const post_rec_t *p)
{
    uint8_t val[POST_VALUE_MAX];
    REEL_ASSERT((p->flags & ~POST_FLAGS_ALL) == 0);
    REEL_ASSERT(p->reason_len <= REEL_TEXT_LEN_MAX);
    reel_store_u64(val, p->author);
    reel_store_u64(val + 8, p->created_at);
    reel_store_u64(val + 16, p->remix_of);
    reel_store_u64(val + 24, p->remix_root);
    for (int i = 0; i < P_COUNT; i++)
        reel_store_u64(val + 32 + 8 * i, p->n[i]);
    val[POST_FIXED_BYTES - 1] = p->flags;
    memcpy(val + POST_FIXED_BYTES, p->reason, p->reason_len);
    return reel__vrow_put(v, txn, DBI_POSTS, id, val, POST_FIXED_BYTES + (size_t)p->reason_len);
}

/* Whether a post with these flags is in its author's posts count: public
 * and visible (API: `posts` counts public, visible posts). */
static bool post_counted(uint8_t flags)
{
    return (flags & POST_PUBLIC) && !(flags & (POST_HIDDEN | POST_DELETED));
}

/* Stores p (whose flags were old_flags) and moves the author's posts count
 * when the post enters or leaves it. */
static int post_store_counted(reel_views_t *v, MDB_txn *txn, uint64_t id, const post_rec_t *p,
                              uint8_t old_flags)
{
    int rc = post_store(v, txn, id, p);
    if (rc != 0 || post_counted(old_flags) == post_counted(p->flags))
        return rc;
    return counts_add(v, txn, p->author, C_POSTS, post_counted(p->flags) ? 1 : -1);
}

/* Puts (create) or deletes an index key be64 a | be64 ~at | be64 id. */
static int index24(reel_views_t *v, MDB_txn *txn, int dbi, uint64_t a, uint64_t mid, uint64_t id,
                   bool create)
{
    uint8_t key[24];
    REEL_ASSERT(dbi > DBI_META && dbi < DBI_COUNT);
    reel__vput_be64(key, a);
    reel__vput_be64(key + 8, mid);
    reel__vput_be64(key + 16, id);
    return reel__vidx_write(v, txn, dbi, key, sizeof key, !create);
}

/* Adds delta (+1, -1) to counter `which` of a known post (saturating at
 * 0); *author is its author. REEL_ENOTFOUND for an unknown post. */
static int post_counter_add(reel_views_t *v, MDB_txn *txn, uint64_t post, int which, int delta,
                            uint64_t *author)
{
    post_rec_t p;
    REEL_ASSERT(which >= 0 && which < P_COUNT);
    REEL_ASSERT(delta == 1 || delta == -1);
    int rc = post_load(v, txn, post, &p);
    if (rc != 0)
        return rc;
    if (delta > 0)
        p.n[which]++;
    else if (p.n[which] > 0)
        p.n[which]--;
    *author = p.author;
    return post_store(v, txn, post, &p);
}

/* Links (create) or unlinks a remix under its parent: the remixes index
 * entry and the parent's remixes count move together, and only for a
 * known parent, so the count always equals the index's entries. */
static int remix_link(reel_views_t *v, MDB_txn *txn, const post_rec_t *p, uint64_t post,
                      bool create)
{
    uint8_t key[24];
    uint64_t author;
    MDB_val val;
    REEL_ASSERT(p->remix_of != 0);
    reel__vput_be64(key, p->remix_of);
    reel__vput_be64(key + 8, ~p->created_at);
    reel__vput_be64(key + 16, post);
    int rc = reel__vdb_get(txn, v->dbi[DBI_REMIXES], key, sizeof key, &val);
    if (rc != 0 && rc != REEL_ENOTFOUND)
        return rc;
    if ((rc == 0) == create)
        return 0;
    rc = post_counter_add(v, txn, p->remix_of, P_REMIXES, create ? 1 : -1, &author);
    if (rc == REEL_ENOTFOUND)
        return 0; /* unknown parent: neither counted nor indexed */
    if (rc != 0 || (rc = counts_add(v, txn, author, C_REMIXES, create ? 1 : -1)) != 0)
        return rc;
    return index24(v, txn, DBI_REMIXES, p->remix_of, ~p->created_at, post, create);
}

static bool str_is(reel_str_t s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && (n == 0 || memcmp(s.ptr, lit, n) == 0);
}

/* One appearances entry per cameo of a new post (a repeated cameo puts
 * the same key twice: one entry). The author's own cameo is indexed too,
 * so the owner's appearances list is every post that features them. The
 * entries stay when the post is deleted (the post record does not keep
 * its cameos to find them again); readers skip deleted posts. */
static int appearances_put(reel_views_t *v, MDB_txn *txn, const reel_event_t *ev)
{
    uint8_t key[16], author[8];
    int rc = 0;
    REEL_ASSERT(ev->ncameos <= REEL_CAMEOS_MAX);
    reel_store_u64(author, ev->user);
    reel__vput_be64(key + 8, ev->post);
    for (uint32_t i = 0; i < ev->ncameos && rc == 0; i++) {
        reel__vput_be64(key, ev->cameos[i]);
        rc = reel__vdb_put(txn, v->dbi[DBI_APPEARANCES], key, sizeof key, author, sizeof author);
    }
    return rc;
}

/* post.created: one post_cameos entry (post | owner) per distinct cameo
 * owner other than the author, and that owner's cameo uses +1. */
static int cameo_uses_put(reel_views_t *v, MDB_txn *txn, const reel_event_t *ev)
{
    uint8_t key[16];
    MDB_val val;
    int rc = 0;
    reel__vput_be64(key, ev->post);
    for (uint32_t i = 0; i < ev->ncameos && rc == 0; i++) {
        if (ev->cameos[i] == ev->user)
            continue;
        reel__vput_be64(key + 8, ev->cameos[i]);
        rc = reel__vdb_get(txn, v->dbi[DBI_POST_CAMEOS], key, sizeof key, &val);
        if (rc != REEL_ENOTFOUND)
            continue; /* 0: a repeated cameo counts once */
        if ((rc = reel__vdb_put(txn, v->dbi[DBI_POST_CAMEOS], key, sizeof key, "", 0)) == 0)
            rc = counts_add(v, txn, ev->cameos[i], C_CAMEO_USES, 1);
    }
    return rc;
}

/* post.deleted: the post's post_cameos entries leave, each owner's cameo
 * uses -1. */
static int cameo_uses_drop(reel_views_t *v, MDB_txn *txn, uint64_t post)
{
    MDB_cursor *cur;
    MDB_val k, d;
    uint8_t key[16];
    uint64_t owners[REEL_CAMEOS_MAX];
    size_t n = 0;
    reel__vput_be64(key, post);
    reel__vput_be64(key + 8, 0);
    int rc = reel__vcursor_open(v, txn, DBI_POST_CAMEOS, &cur);
    if (rc != 0)
        return rc;
    k = (MDB_val){sizeof key, key};
    rc = reel__vmdb(mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE));
    while (rc == 0 && k.mv_size == 16 && reel__vget_be64(k.mv_data) == post) {
        if (n == REEL_CAMEOS_MAX) {
            rc = REEL_ECORRUPT; /* more owners than a post has cameos */
            break;
        }
        owners[n++] = reel__vget_be64((const uint8_t *)k.mv_data + 8);
        rc = reel__vmdb(mdb_cursor_get(cur, &k, &d, MDB_NEXT));
    }
    mdb_cursor_close(cur);
    rc = rc == REEL_ENOTFOUND ? 0 : rc;
    for (size_t i = 0; i < n && rc == 0; i++) {
        reel__vput_be64(key + 8, owners[i]);
        if ((rc = reel__vdb_del(txn, v->dbi[DBI_POST_CAMEOS], key, sizeof key)) == 0)
            rc = counts_add(v, txn, owners[i], C_CAMEO_USES, -1);
    }
    return rc;
}

static int apply_post_created(reel_views_t *v, MDB_txn *txn, const reel_event_t *ev)
{
    post_rec_t p;
    int rc = post_load(v, txn, ev->post, &p);
    if (rc != REEL_ENOTFOUND)
        return rc; /* 0: exists; first creation wins */
    memset(&p, 0, sizeof p);
    p.author = ev->user;
    p.created_at = ev->at;
    p.remix_of = ev->remix_of;
    p.remix_root = ev->remix_root;
    if (str_is(ev->visibility, "public"))
        p.flags |= POST_PUBLIC;
    if ((rc = post_store_counted(v, txn, ev->post, &p, 0)) != 0 ||
        (rc = reel__views_post_body_put(v, txn, ev)) != 0 ||
        (rc = index24(v, txn, DBI_POSTS_BY_AUTHOR, p.author, ~p.created_at, ev->post, true)) != 0 ||
        (rc = appearances_put(v, txn, ev)) != 0 || (rc = cameo_uses_put(v, txn, ev)) != 0)
        return rc;
    return p.remix_of != 0 ? remix_link(v, txn, &p, ev->post, true) : 0;
}

/* post.published, post.hidden, post.deleted: a flag change on a known,
 * not deleted post, with the posts count moved by post_counted(). A
 * deleted post leaves the author's listing and its parent's remixes. */
static int apply_post_state(reel_views_t *v, MDB_txn *txn, const reel_event_t *ev)
{
    post_rec_t p;
    int rc = post_load(v, txn, ev->post, &p);
    if (rc == REEL_ENOTFOUND || (rc == 0 && (p.flags & POST_DELETED)))
        return 0; /* unknown, or deleted already (deletion is final) */
    if (rc != 0)
        return rc;
    uint8_t old = p.flags;
    if (ev->type == REEL_EV_POST_PUBLISHED) {
        p.flags |= POST_PUBLIC;
    } else if (ev->type == REEL_EV_POST_DELETED) {
        p.flags |= POST_DELETED;
    } else if (!(p.flags & POST_HIDDEN)) { /* the first hidden reason stays */
        if (ev->reason.len > REEL_TEXT_LEN_MAX)
            return REEL_EUSAGE;
        p.flags |= POST_HIDDEN;
        p.reason_len = (uint16_t)ev->reason.len;
        if (p.reason_len)
            memcpy(p.reason, ev->reason.ptr, p.reason_len);
    }
    if (p.flags == old)
        return 0;
    if ((rc = post_store_counted(v, txn, ev->post, &p, old)) != 0 || !(p.flags & POST_DELETED))
        return rc;
    rc = index24(v, txn, DBI_POSTS_BY_AUTHOR, p.author, ~p.created_at, ev->post, false);
    if (rc == 0)
        rc = cameo_uses_drop(v, txn, ev->post);
    if (rc == 0)
        rc = reel__views_post_body_del(v, txn, ev->post);
    if (rc != 0 || p.remix_of == 0)
        return rc;
    return remix_link(v, txn, &p, ev->post, false);
}

/* Adds delta to a known post's like count and its author's likes. */
static int post_likes_add(reel_views_t *v, MDB_txn *txn, uint64_t post, int delta)
{
    uint64_t author;
    int rc = post_counter_add(v, txn, post, P_LIKES, delta, &author);
    if (rc == REEL_ENOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    return counts_add(v, txn, author, C_LIKES, delta);
}

static int apply_like(reel_views_t *v, MDB_txn *txn, const reel_event_t *ev, bool create)
{
    uint8_t key[16], at[8];
    reel__vput_be64(key, ev->post);
    reel__vput_be64(key + 8, ev->user);
    reel_store_u64(at, ev->at);
    int rc = create ? reel__vdb_put_new(txn, v->dbi[DBI_LIKES], key, sizeof key, at, sizeof at)
                    : reel__vdb_del_found(txn, v->dbi[DBI_LIKES], key, sizeof key);
    if (rc == 1)
        return 0; /* like exists (create) or is absent (remove): no-op */
    if (rc == 0) /* likes_by_user: user | post */
        rc = index16(v, txn, DBI_LIKES_BY_USER, ev->user, ev->post, create, 0);
    if (rc != 0)
        return rc;
    return post_likes_add(v, txn, ev->post, create ? 1 : -1);
}

/* view.recorded: a known post's views +1 and watch time (saturating). */
static int apply_view_recorded(reel_views_t *v, MDB_txn *txn, const reel_event_t *ev)
{
    post_rec_t p;
    int rc = post_load(v, txn, ev->post, &p);
    if (rc == REEL_ENOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    p.n[P_VIEWS]++;
    p.n[P_WATCH_MS] = ev->watch_ms > UINT64_MAX - p.n[P_WATCH_MS] ? UINT64_MAX
                                                                   : p.n[P_WATCH_MS] + ev->watch_ms;
    return post_store(v, txn, ev->post, &p);
}

/* feedback.recorded: the kind's bit ORed into the user's feedback on the
 * post; an unknown kind is ignored. */
static int apply_feedback(reel_views_t *v, MDB_txn *txn, const reel_event_t *ev)
{
    static const char *const kinds[] = {"see_less", "see_more", "not_interested", "hide_creator"};
    uint8_t key[16], bit = 0, kind = 0;
    MDB_val val;
    for (unsigned i = 0; i < REEL_ARRAY_LEN(kinds); i++)
        if (str_is(ev->kind, kinds[i]))
            bit = (uint8_t)(1u << i);
    if (bit == 0)
        return 0;
    reel__vput_be64(key, ev->user);
    reel__vput_be64(key + 8, ev->post);
    int rc = reel__vdb_get(txn, v->dbi[DBI_FEEDBACK], key, sizeof key, &val);
    if (rc == 0 && val.mv_size != 1)
        return REEL_ECORRUPT;
    if (rc == 0)
        kind = *(const uint8_t *)val.mv_data;
    else if (rc != REEL_ENOTFOUND)
        return rc;
    if (kind & bit)
        return 0;
    kind |= bit;
    return reel__vdb_put(txn, v->dbi[DBI_FEEDBACK], key, sizeof key, &kind, 1);
}

/* ---- comments ---- */

/* comment.created: the record, its comments_by_post entry and the post's
 * comments count (a known post only); an existing comment id: no-op. */
static int apply_comment_created(reel_views_t *v, MDB_txn *txn, const reel_event_t *ev)
{
    uint8_t key[8], val[COMMENT_VALUE_MAX];
    uint64_t author;
    MDB_val cur;
    if (ev->text.len > REEL_TEXT_LEN_MAX)
        return REEL_EUSAGE;
    reel__vput_be64(key, ev->comment);
    int rc = reel__vdb_get(txn, v->dbi[DBI_COMMENTS], key, sizeof key, &cur);
    if (rc != REEL_ENOTFOUND)
        return rc; /* 0: exists; first creation wins */
    reel_store_u64(val, ev->post);
    reel_store_u64(val + 8, ev->user);
    reel_store_u64(val + 16, ev->reply_to);
    reel_store_u64(val + 24, ev->at);
    val[32] = 0;
    if (ev->text.len)
        memcpy(val + COMMENT_FIXED_BYTES, ev->text.ptr, ev->text.len);
    if ((rc = reel__vdb_put(txn, v->dbi[DBI_COMMENTS], key, sizeof key, val,
                     COMMENT_FIXED_BYTES + (size_t)ev->text.len)) != 0 ||
        (rc = index24(v, txn, DBI_COMMENTS_BY_POST, ev->post, ev->at, ev->comment, true)) != 0 ||
        (rc = index16(v, txn, DBI_COMMENTS_BY_AUTHOR, ev->user, ev->comment, true, 0)) != 0)
        return rc;
    rc = post_counter_add(v, txn, ev->post, P_COMMENTS, 1, &author);
    return rc == REEL_ENOTFOUND ? 0 : rc;
}

/* comment.deleted: the deleted flag set and the text dropped; the entry
 * leaves comments_by_post and the post's count. Absent or deleted: no-op. */
static int apply_comment_deleted(reel_views_t *v, MDB_txn *txn, const reel_event_t *ev)
{
    uint8_t key[8], val[COMMENT_FIXED_BYTES];
    uint64_t author;
    MDB_val cur;
    reel__vput_be64(key, ev->comment);
    int rc = reel__vdb_get(txn, v->dbi[DBI_COMMENTS], key, sizeof key, &cur);
    if (rc == REEL_ENOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    if (cur.mv_size < COMMENT_FIXED_BYTES || cur.mv_size > COMMENT_VALUE_MAX)
        return REEL_ECORRUPT;
    memcpy(val, cur.mv_data, sizeof val);
    if (val[32] & COMMENT_DELETED)
        return 0;
    val[32] |= COMMENT_DELETED;
    uint64_t post = reel_load_u64(val);
    if ((rc = reel__vdb_put(txn, v->dbi[DBI_COMMENTS], key, sizeof key, val, sizeof val)) != 0 ||
        (rc = index24(v, txn, DBI_COMMENTS_BY_POST, post, reel_load_u64(val + 24), ev->comment,
                      false)) != 0 ||
        (rc = index16(v, txn, DBI_COMMENTS_BY_AUTHOR, reel_load_u64(val + 8), ev->comment, false,
                      0)) != 0)
        return rc;
    rc = post_counter_add(v, txn, post, P_COMMENTS, -1, &author);
    return rc == REEL_ENOTFOUND ? 0 : rc;
}

/* ---- blocks, cameos, approvals, invites ---- */

/* Creates (with value at) or removes the pair a | b in dbi; *changed says
 * whether it did (an existing pair on create, an absent one on remove:
 * nothing). */
static int pair_set(reel_views_t *v, MDB_txn *txn, int dbi, uint64_t a, uint64_t b, uint64_t at,
                    bool create, bool *changed)
{
    uint8_t key[16], atb[8];
    MDB_val val;
    REEL_ASSERT(dbi > DBI_META && dbi < DBI_COUNT);
    reel__vput_be64(key, a);
    reel__vput_be64(key + 8, b);
    *changed = false;
    int rc = reel__vdb_get(txn, v->dbi[dbi], key, sizeof key, &val);
    if (rc != 0 && rc != REEL_ENOTFOUND)
        return rc;
    if ((rc == 0) == create)
        return 0;
    *changed = true;
    reel_store_u64(atb, at);
    return create ? reel__vdb_put(txn, v->dbi[dbi], key, sizeof key, atb, sizeof atb)
                  : reel__vdb_del(txn, v->dbi[dbi], key, sizeof key);
}

/* block.created / block.removed: blocks and its reverse blocked_by. */
static int apply_block(reel_views_t *v, MDB_txn *txn, const reel_event_t *ev, bool create)
{
    bool changed;
    int rc = pair_set(v, txn, DBI_BLOCKS, ev->user, ev->target, ev->at, create, &changed);
    if (rc != 0 || !changed)
        return rc;
    return pair_set(v, txn, DBI_BLOCKED_BY, ev->target, ev->user, ev->at, create, &changed);
}

/* consent.granted / consent.revoked: approvals owner | grantee. */
static int apply_consent(reel_views_t *v, MDB_txn *txn, const reel_event_t *ev, bool create)
{
    bool changed;
    return pair_set(v, txn, DBI_APPROVALS, ev->user, ev->target, ev->at, create, &changed);
}

/* Policy byte for a policy name; -1 when unknown. */
static int cameo_policy_parse(reel_str_t s)
{
    static const char *const names[] = {"only_me", "approved", "mutuals", "everyone"};
    _Static_assert(REEL_ARRAY_LEN(names) == REEL_CAMEO_EVERYONE + 1, "policy names");
    for (int i = 0; i < (int)REEL_ARRAY_LEN(names); i++)
        if (str_is(s, names[i]))
            return i;
    return -1;
}

/* cameo.registered, cameo.policy_set, cameo.deleted on the cameos record
 * (policy u8, asset bytes). Registration keeps the policy; a policy may
 * be set before any asset (asset empty); deletion drops the record, so the
 * policy returns to only_me. An unknown policy or an empty asset: no-op. */
static int apply_cameo(reel_views_t *v, MDB_txn *txn, const reel_event_t *ev)
{
    uint8_t key[8], val[CAMEO_VALUE_MAX] = {REEL_CAMEO_ONLY_ME};
    size_t len = 1;
    MDB_val cur;
    reel__vput_be64(key, ev->user);
    if (ev->type == REEL_EV_CAMEO_DELETED)
        return reel__vdb_del(txn, v->dbi[DBI_CAMEOS], key, sizeof key);
    int policy = ev->type == REEL_EV_CAMEO_POLICY_SET ? cameo_policy_parse(ev->policy) : 0;
    if (policy < 0 || (ev->type == REEL_EV_CAMEO_REGISTERED && ev->asset.len == 0))
        return 0;
    if (ev->asset.len > REEL_URI_LEN_MAX)
        return REEL_EUSAGE;
    int rc = reel__vdb_get(txn, v->dbi[DBI_CAMEOS], key, sizeof key, &cur);
    if (rc == 0 && (cur.mv_size < 1 || cur.mv_size > CAMEO_VALUE_MAX))
        return REEL_ECORRUPT;
    if (rc == 0) {
        memcpy(val, cur.mv_data, cur.mv_size);
        len = cur.mv_size;
    } else if (rc != REEL_ENOTFOUND) {
        return rc;
    }
    if (ev->type == REEL_EV_CAMEO_POLICY_SET) {
        val[0] = (uint8_t)policy;
    } else {
        memcpy(val + 1, ev->asset.ptr, ev->asset.len);
        len = 1 + (size_t)ev->asset.len;
    }
    return reel__vdb_put(txn, v->dbi[DBI_CAMEOS], key, sizeof key, val, len);
}

/* invite.issued: invites code -> issuer, unused; the issuer's invites
 * count +1. An existing code, or an empty one: no-op. */
static int apply_invite_issued(reel_views_t *v, MDB_txn *txn, const reel_event_t *ev)
{
    uint8_t val[INVITE_VALUE_BYTES] = {0};
    MDB_val cur;
    if (ev->code.len == 0)
        return 0;
    if (ev->code.len > REEL_SHORT_LEN_MAX)
        return REEL_EUSAGE;
    int rc = reel__vdb_get(txn, v->dbi[DBI_INVITES], ev->code.ptr, ev->code.len, &cur);
    if (rc != REEL_ENOTFOUND)
        return rc;
    reel_store_u64(val, ev->user);
    rc = reel__vdb_put(txn, v->dbi[DBI_INVITES], ev->code.ptr, ev->code.len, val, sizeof val);
    if (rc != 0)
        return rc;
    return counts_add(v, txn, ev->user, C_INVITES, 1);
}

/* ---- generations ---- */

/* A generations value: fixed fields (GEN_FIXED_BYTES), then the body
 * (cameos u64 each, prompt bytes, each tag as u8 length + bytes), then the
 * worker's bytes (the rest). The body never changes after generation.requested;
 * the state events rewrite the fixed fields and the worker only. */
typedef struct gen_rec {
    uint64_t user;                       /* requester */
    uint64_t created_at;                 /* engine time of generation.requested */
    uint64_t attempts;                   /* claims so far */
    uint64_t lease_until;                /* ms while running, else 0 */
    uint64_t post;                       /* post made by the completion, 0: none */
    uint64_t remix_of;                   /* post remixed, 0: none */
    uint8_t status;                      /* reel_gen_status_t */
    uint8_t ncameos;                     /* cameos at the body's start */
    uint8_t ntags;                       /* tags at the body's end */
    uint8_t worker_len;                  /* bytes of worker */
    uint16_t prompt_len;                 /* bytes of the prompt in the body */
    uint16_t body_len;                   /* bytes of body */
    uint8_t body[GEN_BODY_MAX];          /* cameos, prompt, tags */
    char worker[REEL_SHORT_LEN_MAX];     /* last worker to claim it */
} gen_rec_t;

/* Checks a generations value and fills r's fixed fields and lengths;
 * *body points at the body inside val. */
static int gen_decode(const MDB_val *val, gen_rec_t *r, const uint8_t **body)
{
    const uint8_t *b = val->mv_data;
    if (val->mv_size < GEN_FIXED_BYTES || val->mv_size > GEN_VALUE_MAX)
        return REEL_ECORRUPT;
    r->user = reel_load_u64(b);
    r->created_at = reel_load_u64(b + 8);
    r->attempts = reel_load_u64(b + 16);
    r->lease_until = reel_load_u64(b + 24);
    r->post = reel_load_u64(b + 32);
    r->remix_of = reel_load_u64(b + 40);
    r->status = b[48], r->ncameos = b[49], r->ntags = b[50], r->worker_len = b[51];
    r->prompt_len = reel_load_u16(b + 52);
    size_t rest = val->mv_size - GEN_FIXED_BYTES;
    if (r->status > REEL_GEN_CANCELLED || r->ncameos > REEL_CAMEOS_MAX ||
        r->ntags > REEL_TAGS_MAX || r->worker_len > rest)
        return REEL_ECORRUPT;
    r->body_len = (uint16_t)(rest - r->worker_len);
    *body = b + GEN_FIXED_BYTES;
    return 0;
}

/* Loads generation id with copies of its body and worker. */
static int gen_load(reel_views_t *v, MDB_txn *txn, uint64_t id, gen_rec_t *r)
{
    uint8_t key[8];
    MDB_val val;
    const uint8_t *body;
    reel__vput_be64(key, id);
    int rc = reel__vdb_get(txn, v->dbi[DBI_GENERATIONS], key, sizeof key, &val);
    if (rc == 0)
        rc = gen_decode(&val, r, &body);
    if (rc == 0 && r->body_len > GEN_BODY_MAX)
        return REEL_ECORRUPT;
    if (rc == 0) {
        memcpy(r->body, body, r->body_len);
        memcpy(r->worker, body + r->body_len, r->worker_len);
    }
    return rc;
}

static int gen_store(reel_views_t *v, MDB_txn *txn, uint64_t id, const gen_rec_t *r)
{
    uint8_t key[8], val[GEN_VALUE_MAX];
    REEL_ASSERT(r->body_len <= GEN_BODY_MAX);
    REEL_ASSERT(r->worker_len <= REEL_SHORT_LEN_MAX);
    reel__vput_be64(key, id);
    reel_store_u64(val, r->user);
    reel_store_u64(val + 8, r->created_at);
    reel_store_u64(val + 16, r->attempts);
    reel_store_u64(val + 24, r->lease_until);
    reel_store_u64(val + 32, r->post);
    reel_store_u64(val + 40, r->remix_of);
    val[48] = r->status, val[49] = r->ncameos, val[50] = r->ntags, val[51] = r->worker_len;
    reel_store_u16(val + 52, r->prompt_len);
    memcpy(val + GEN_FIXED_BYTES, r->body, r->body_len);
    memcpy(val + GEN_FIXED_BYTES + r->body_len, r->worker, r->worker_len);
    return reel__vdb_put(txn, v->dbi[DBI_GENERATIONS], key, sizeof key, val,
                  GEN_FIXED_BYTES + (size_t)r->body_len + r->worker_len);
}

/* Puts (create) or deletes a 16-byte index key be64 a | be64 b. */
static int index16(reel_views_t *v, MDB_txn *txn, int dbi, uint64_t a, uint64_t b, bool create,
                   uint64_t value)
{
    uint8_t key[16], val[8];
    REEL_ASSERT(dbi > DBI_META && dbi < DBI_COUNT);
    reel__vput_be64(key, a);
    reel__vput_be64(key + 8, b);
    reel_store_u64(val, value);
    if (dbi != DBI_GEN_BY_CAMEO) /* an empty value: written behind (views_rows.c) */
        return reel__vidx_write(v, txn, dbi, key, sizeof key, !create);
    return create ? reel__vdb_put(txn, v->dbi[dbi], key, sizeof key, val, 8)
                  : reel__vdb_del(txn, v->dbi[dbi], key, sizeof key);
}

static bool gen_active(int status)
{
    return status == REEL_GEN_QUEUED || status == REEL_GEN_RUNNING;
}

static bool gen_counted(int status) /* by the quota */
{
    return gen_active(status) || status == REEL_GEN_COMPLETED;
}

/* Which of a transition's index entries stay as they are: their keys
 * (user, created_at, id; cameo, id) never change, so an entry wanted both
 * before and after is neither dropped nor put again. Skipping that churn
 * (a random page of a user-keyed tree per claim and per completion) halved
 * the views commit of `reel bench render` (3.2-4.3 ms a batch against
 * 6-22 ms in a third round). */
typedef struct gen_keep {
    bool user_time; /* counted before and after */
    bool cameos;    /* active before and after, or neither */
} gen_keep_t;

/* Puts (create) or deletes every index entry r's status calls for, but
 * those keep says stay, so a transition is "drop the old entries, change
 * r, put the new ones":
 *   queue             queued only (oldest first: created_at | id)
 *   leases            running only (lease_until | id)
 *   gen_by_user_time  queued, running, completed: the quota's count
 *   gen_by_cameo      queued, running: what the revoke cascade cancels */
static int gen_indexes(reel_views_t *v, MDB_txn *txn, uint64_t id, const gen_rec_t *r, bool create,
                       gen_keep_t keep)
{
    bool active = gen_active(r->status);
    int rc = 0;
    if (r->status == REEL_GEN_QUEUED)
        rc = index16(v, txn, DBI_QUEUE, r->created_at, id, create, 0);
    if (rc == 0 && r->status == REEL_GEN_RUNNING)
        rc = index16(v, txn, DBI_LEASES, r->lease_until, id, create, 0);
    if (rc == 0 && !keep.user_time && gen_counted(r->status))
        rc = index24(v, txn, DBI_GEN_BY_USER_TIME, r->user, r->created_at, id, create);
    for (uint32_t i = 0; rc == 0 && !keep.cameos && active && i < r->ncameos; i++)
        rc = index16(v, txn, DBI_GEN_BY_CAMEO, reel_load_u64(r->body + 8 * i), id, create,
                     r->user);
    return rc;
}

/* Builds the body of a new generation from generation.requested. */
static int gen_body(const reel_event_t *ev, gen_rec_t *r)
{
    if (ev->ncameos > REEL_CAMEOS_MAX || ev->ntags > REEL_TAGS_MAX ||
        ev->prompt.len > REEL_PROMPT_LEN_MAX)
        return REEL_EUSAGE;
    size_t n = 0;
    for (uint32_t i = 0; i < ev->ncameos; i++, n += 8)
        reel_store_u64(r->body + n, ev->cameos[i]);
    if (ev->prompt.len)
        memcpy(r->body + n, ev->prompt.ptr, ev->prompt.len);
    n += ev->prompt.len;
    for (uint32_t i = 0; i < ev->ntags; i++) {
        if (ev->tags[i].len > REEL_TAG_LEN_MAX)
            return REEL_EUSAGE;
        r->body[n++] = (uint8_t)ev->tags[i].len;
        if (ev->tags[i].len)
            memcpy(r->body + n, ev->tags[i].ptr, ev->tags[i].len);
        n += ev->tags[i].len;
    }
    REEL_ASSERT(n <= GEN_BODY_MAX);
    r->ncameos = (uint8_t)ev->ncameos, r->ntags = (uint8_t)ev->ntags;
    r->prompt_len = (uint16_t)ev->prompt.len, r->body_len = (uint16_t)n;
    return 0;
}

/* generation.requested: a queued generation; an existing id: no-op. */
static int apply_gen_requested(reel_views_t *v, MDB_txn *txn, const reel_event_t *ev)
{
    gen_rec_t r;
    int rc = gen_load(v, txn, ev->generation, &r);
    if (rc != REEL_ENOTFOUND)
        return rc; /* 0: exists; first request wins */
    memset(&r, 0, offsetof(gen_rec_t, body));
    r.user = ev->user;
    r.created_at = ev->at;
    r.remix_of = ev->remix_of;
    r.status = REEL_GEN_QUEUED;
    if ((rc = gen_body(ev, &r)) != 0 || (rc = gen_store(v, txn, ev->generation, &r)) != 0)
        return rc;
    return gen_indexes(v, txn, ev->generation, &r, true, (gen_keep_t){false, false});
}

/* The status an event moves a generation in status `from` to, or -1 when
 * the event does not apply to it (a no-op: the rules never emit those, and
 * replay must not fail on them). */
static int gen_next_status(const reel_event_t *ev, uint8_t from)
{
    bool queued = from == REEL_GEN_QUEUED, running = from == REEL_GEN_RUNNING;
    switch (ev->type) {
    case REEL_EV_GENERATION_CLAIMED: return queued ? REEL_GEN_RUNNING : -1;
    case REEL_EV_GENERATION_HEARTBEAT: return running ? REEL_GEN_RUNNING : -1;
    case REEL_EV_GENERATION_COMPLETED: return running ? REEL_GEN_COMPLETED : -1;
    case REEL_EV_GENERATION_EXPIRED: return running ? REEL_GEN_QUEUED : -1;
    case REEL_EV_GENERATION_FAILED:
        /* Retryable: back to the queue (the rules clear retryable once the
         * attempts are spent). Final: from the queue too, as the rules
         * emit after an expiry that spent the last attempt. */
        if (ev->retryable)
            return running ? REEL_GEN_QUEUED : -1;
        return queued || running ? REEL_GEN_FAILED : -1;
    case REEL_EV_GENERATION_CANCELLED: return queued || running ? REEL_GEN_CANCELLED : -1;
    default: return -1;
    }
}

/* Every generation event but requested: a status transition with its
 * index entries moved (gen_indexes), on a known generation. */
static int apply_gen_state(reel_views_t *v, MDB_txn *txn, const reel_event_t *ev)
{
    gen_rec_t r;
    int rc = gen_load(v, txn, ev->generation, &r);
    if (rc != 0)
        return rc == REEL_ENOTFOUND ? 0 : rc;
    int next = gen_next_status(ev, r.status);
    if (next < 0)
        return 0;
    gen_keep_t keep = {gen_counted(r.status) && gen_counted(next),
                       gen_active(r.status) == gen_active(next)};
    if ((rc = gen_indexes(v, txn, ev->generation, &r, false, keep)) != 0)
        return rc;
    if (ev->type == REEL_EV_GENERATION_CLAIMED) {
        if (ev->worker.len > REEL_SHORT_LEN_MAX)
            return REEL_EUSAGE;
        r.worker_len = (uint8_t)ev->worker.len;
        if (r.worker_len)
            memcpy(r.worker, ev->worker.ptr, r.worker_len);
        r.attempts = ev->attempt;
    }
    if (ev->type == REEL_EV_GENERATION_COMPLETED)
        r.post = ev->post;
    r.status = (uint8_t)next;
    r.lease_until = next == REEL_GEN_RUNNING ? ev->lease_until : 0;
    if ((rc = gen_store(v, txn, ev->generation, &r)) != 0)
        return rc;
    return gen_indexes(v, txn, ev->generation, &r, true, keep);
}

/* ---- apply ---- */

static int apply_event(reel_views_t *v, MDB_txn *txn, const reel_event_t *ev)
{
    switch (ev->type) {
    case REEL_EV_USER_CREATED: return apply_user_created(v, txn, ev);
    case REEL_EV_USER_UPDATED: return apply_user_updated(v, txn, ev);
    case REEL_EV_USER_DELETED: return apply_user_deleted(v, txn, ev);
    case REEL_EV_INVITE_ISSUED: return apply_invite_issued(v, txn, ev);
    case REEL_EV_FOLLOW_CREATED: return apply_follow_created(v, txn, ev);
    case REEL_EV_FOLLOW_REMOVED: return apply_follow_removed(v, txn, ev);
    case REEL_EV_BLOCK_CREATED: return apply_block(v, txn, ev, true);
    case REEL_EV_BLOCK_REMOVED: return apply_block(v, txn, ev, false);
    case REEL_EV_CAMEO_REGISTERED:
    case REEL_EV_CAMEO_DELETED:
    case REEL_EV_CAMEO_POLICY_SET: return apply_cameo(v, txn, ev);
    case REEL_EV_CONSENT_GRANTED: return apply_consent(v, txn, ev, true);
    case REEL_EV_CONSENT_REVOKED: return apply_consent(v, txn, ev, false);
    case REEL_EV_POST_CREATED: return apply_post_created(v, txn, ev);
    case REEL_EV_POST_PUBLISHED:
    case REEL_EV_POST_DELETED:
    case REEL_EV_POST_HIDDEN: return apply_post_state(v, txn, ev);
    case REEL_EV_LIKE_CREATED: return apply_like(v, txn, ev, true);
    case REEL_EV_LIKE_REMOVED: return apply_like(v, txn, ev, false);
    case REEL_EV_COMMENT_CREATED: return apply_comment_created(v, txn, ev);
    case REEL_EV_COMMENT_DELETED: return apply_comment_deleted(v, txn, ev);
    case REEL_EV_VIEW_RECORDED: return apply_view_recorded(v, txn, ev);
    case REEL_EV_FEEDBACK_RECORDED: return apply_feedback(v, txn, ev);
    case REEL_EV_GENERATION_REQUESTED: return apply_gen_requested(v, txn, ev);
    case REEL_EV_GENERATION_CLAIMED:
    case REEL_EV_GENERATION_HEARTBEAT:
    case REEL_EV_GENERATION_COMPLETED:
    case REEL_EV_GENERATION_FAILED:
    case REEL_EV_GENERATION_EXPIRED:
    case REEL_EV_GENERATION_CANCELLED: return apply_gen_state(v, txn, ev);
    case REEL_EV_IDEMPOTENCY_RECORDED: return reel__views_apply_idem(v, txn, ev);
    default: return 0; /* unknown types: still applied */
    }
}

/* One attempt: a write txn with every event and the new applied. Returns
 * ERR_MAP_FULL / ERR_MAP_RESIZED for the caller to grow and rerun. */
static int apply_once(reel_views_t *v, const reel_event_t *evs, size_t n)
{
    MDB_txn *txn;
    uint8_t applied[8];
    grow_rdlock(v);
    int rc = reel__vmdb(mdb_txn_begin(v->env, NULL, 0, &txn));
    if (rc != 0)
        goto out_unlock;
    reel__vrows_begin(v, txn);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = apply_event(v, txn, &evs[i]);
    reel_store_u64(applied, evs[n - 1].offset + 1);
    if (rc == 0)
        rc = reel__vrows_flush(v, txn);
    if (rc == 0)
        rc = reel__vdb_put(txn, v->dbi[DBI_META], "applied", 7, applied, sizeof applied);
    reel__vrows_end(v, rc == 0);
    if (rc != 0) {
        mdb_txn_abort(txn);
        goto out_unlock;
    }
    rc = reel__vmdb(mdb_txn_commit(txn)); /* frees txn on failure too */
    if (rc != 0)
        reel__vrows_drop(v);
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
    int rc = reel__vdb_get(txn, v->dbi[DBI_META], "version", 7, &val);
    if (rc == REEL_ENOTFOUND) {
        reel_store_u32(ver, REEL_VIEWS_VERSION);
        rc = reel__vdb_put(txn, v->dbi[DBI_META], "version", 7, ver, sizeof ver);
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
    rc = reel__vdb_get(txn, v->dbi[DBI_META], "applied", 7, &val);
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
    int rc = reel__vmdb(mdb_txn_begin(v->env, NULL, 0, &txn));
    if (rc != 0)
        return rc;
    for (int i = 0; i < DBI_COUNT && rc == 0; i++)
        rc = reel__vmdb(mdb_dbi_open(txn, reel__views_dbi_names[i], MDB_CREATE, &v->dbi[i]));
    if (rc == 0)
        rc = meta_check(v, txn, dir);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    return reel__vmdb(mdb_txn_commit(txn));
}

/* A data file shorter than the pages its meta page counts (a truncated
 * copy, a file system that lost its tail) would fault (SIGBUS) at the
 * first read of a missing page: refused at open as damaged instead. */
static int check_file_size(MDB_env *env)
{
    MDB_envinfo info;
    MDB_stat st;
    mdb_filehandle_t fd;
    struct stat fs;
    int rc = reel__vmdb(mdb_env_info(env, &info));
    if (rc == 0)
        rc = reel__vmdb(mdb_env_stat(env, &st));
    if (rc == 0)
        rc = reel__vmdb(mdb_env_get_fd(env, &fd));
    if (rc == 0 && fstat(fd, &fs) != 0)
        rc = REEL_ERR(errno);
    if (rc == 0 && (uint64_t)fs.st_size < ((uint64_t)info.me_last_pgno + 1) * st.ms_psize)
        rc = REEL_ECORRUPT;
    return rc;
}

static int env_open(reel_views_t *v, const char *dir)
{
    int rc = reel__vmdb(mdb_env_create(&v->env));
    if (rc != 0)
        return rc;
    if ((rc = reel__vmdb(mdb_env_set_maxdbs(v->env, REEL_VIEWS_MAXDBS))) != 0 ||
        (rc = reel__vmdb(mdb_env_set_maxreaders(v->env, READERS_MAX))) != 0 ||
        (rc = reel__vmdb(mdb_env_set_mapsize(v->env, REEL_VIEWS_MAP_BYTES_INITIAL))) != 0 ||
        (rc = reel__vmdb(mdb_env_open(v->env, dir, MDB_NOMETASYNC | MDB_NOTLS, 0644))) != 0 ||
        (rc = check_file_size(v->env)) != 0) {
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
    int rc = reel__vrows_new(&v->rows);
    if (rc != 0)
        goto out_free;
    if ((rc = locks_init(v)) != 0)
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
    reel__vrows_free(v->rows);
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
    reel__vrows_free(v->rows);
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
        int rc = reel__vmdb(mdb_txn_begin(v->env, NULL, MDB_RDONLY, &t->txn));
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
    rc = reel__vrow_get(t->v, t->txn, DBI_COUNTS, id, &val);
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
    out->friends = reel_load_u64((const uint8_t *)val.mv_data + 8 * C_FRIENDS);
    out->invites = reel_load_u64((const uint8_t *)val.mv_data + 8 * C_INVITES);
    out->remixes_received = reel_load_u64((const uint8_t *)val.mv_data + 8 * C_REMIXES);
    out->cameo_uses = reel_load_u64((const uint8_t *)val.mv_data + 8 * C_CAMEO_USES);
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
    int rc = reel__vdb_get(t->txn, t->v->dbi[DBI_HANDLES], key, len, &val);
    if (rc != 0)
        return rc;
    if (val.mv_size != 8)
        return REEL_ECORRUPT;
    return fill_user(t, reel_load_u64(val.mv_data), out);
}

/* A forward scan of the 24-byte keys be64 prefix | be64 mid | be64 last
 * of one index DBI (followers, posts_by_author, remixes, comments_by_post). */
typedef struct scan24 {
    MDB_cursor *cur; /* owned; closed by scan_end */
    MDB_val k;       /* current key (into the snapshot) */
    uint64_t prefix; /* keys of this prefix only */
    int rc;          /* state of the last cursor move */
    bool moved;      /* the current key was returned already */
} scan24_t;

/* Positions s at the first key of prefix after (mid, last), or at the
 * first key of prefix when after is false (mid, last ignored then). */
static int scan_begin(reel_views_txn_t *t, int dbi, uint64_t prefix, uint64_t mid, uint64_t last,
                      bool after, scan24_t *s)
{
    uint8_t buf[24] = {0};
    MDB_val d;
    REEL_ASSERT(dbi > DBI_META && dbi < DBI_COUNT);
    memset(s, 0, sizeof *s);
    s->prefix = prefix;
    int rc = reel__vcursor_open(t->v, t->txn, dbi, &s->cur);
    if (rc != 0)
        return rc;
    reel__vput_be64(buf, prefix);
    if (after) {
        reel__vput_be64(buf + 8, mid);
        reel__vput_be64(buf + 16, last);
    }
    s->k.mv_size = sizeof buf;
    s->k.mv_data = buf;
    rc = mdb_cursor_get(s->cur, &s->k, &d, MDB_SET_RANGE);
    if (rc == 0 && after && s->k.mv_size == sizeof buf && memcmp(s->k.mv_data, buf, sizeof buf) == 0)
        rc = mdb_cursor_get(s->cur, &s->k, &d, MDB_NEXT);
    s->rc = reel__vmdb(rc);
    return 0;
}

/* The next key of the prefix: 1 with *mid and *last, 0 at its end, or an
 * error. */
static int scan_next(scan24_t *s, uint64_t *mid, uint64_t *last)
{
    MDB_val d;
    REEL_ASSERT(s->cur != NULL);
    if (s->moved && s->rc == 0)
        s->rc = reel__vmdb(mdb_cursor_get(s->cur, &s->k, &d, MDB_NEXT));
    s->moved = true;
    if (s->rc != 0)
        return s->rc == REEL_ENOTFOUND ? 0 : s->rc;
    const uint8_t *p = s->k.mv_data;
    if (s->k.mv_size != 24)
        return REEL_ECORRUPT;
    if (reel__vget_be64(p) != s->prefix)
        return 0;
    *mid = reel__vget_be64(p + 8);
    *last = reel__vget_be64(p + 16);
    return 1;
}

static void scan_end(scan24_t *s)
{
    REEL_ASSERT(s->cur != NULL);
    mdb_cursor_close(s->cur);
    s->cur = NULL;
}

static int follow_page(reel_views_txn_t *t, int dbi, uint64_t user, uint64_t cursor_since,
                       uint64_t cursor_id, size_t limit, reel_follow_entry_t *out, size_t *n_out);

int reel_views_followers(reel_views_txn_t *t, uint64_t user, uint64_t cursor_since,
                         uint64_t cursor_id, size_t limit, reel_follow_entry_t *out,
                         size_t *n_out)
{
    return follow_page(t, DBI_FOLLOWERS, user, cursor_since, cursor_id, limit, out, n_out);
}

int reel_views_following(reel_views_txn_t *t, uint64_t user, uint64_t cursor_since,
                         uint64_t cursor_id, size_t limit, reel_follow_entry_t *out,
                         size_t *n_out)
{
    return follow_page(t, DBI_FOLLOWING, user, cursor_since, cursor_id, limit, out, n_out);
}

/* A page of followers or following (same key layout). */
int reel_views_friends(reel_views_txn_t *t, uint64_t user, uint64_t cursor_since,
                       uint64_t cursor_id, size_t limit, reel_follow_entry_t *out,
                       size_t *n_out)
{
    return follow_page(t, DBI_FRIENDS, user, cursor_since, cursor_id, limit, out, n_out);
}

static int follow_page(reel_views_txn_t *t, int dbi, uint64_t user, uint64_t cursor_since,
                       uint64_t cursor_id, size_t limit, reel_follow_entry_t *out, size_t *n_out)
{
    scan24_t s;
    uint64_t mid, id;
    if (t == NULL || out == NULL || n_out == NULL || limit == 0 || limit > REEL_VIEWS_PAGE_MAX)
        return REEL_EUSAGE;
    *n_out = 0;
    int rc = scan_begin(t, dbi, user, ~cursor_since, cursor_id,
                        cursor_since != 0 || cursor_id != 0, &s);
    if (rc != 0)
        return rc;
    while (*n_out < limit && (rc = scan_next(&s, &mid, &id)) == 1) {
        out[*n_out].since = ~mid;
        out[*n_out].user = id;
        (*n_out)++;
    }
    scan_end(&s);
    return rc < 0 ? rc : 0;
}

/* Decodes post id of snapshot t into p; *reason points into the snapshot. */
static int post_read(reel_views_txn_t *t, uint64_t id, post_rec_t *p, const uint8_t **reason)
{
    MDB_val val;
    int rc = reel__vrow_get(t->v, t->txn, DBI_POSTS, id, &val);
    if (rc != 0)
        return rc;
    return post_decode(&val, p, reason);
}

int reel_views_get_post(reel_views_txn_t *t, uint64_t id, reel_post_view_t *out)
{
    post_rec_t p;
    const uint8_t *reason;
    if (t == NULL || out == NULL)
        return REEL_EUSAGE;
    int rc = post_read(t, id, &p, &reason);
    if (rc != 0)
        return rc;
    if (p.flags & POST_DELETED)
        return REEL_ENOTFOUND;
    memset(out, 0, sizeof *out);
    out->id = id;
    out->author = p.author;
    out->created_at = p.created_at;
    out->remix_of = p.remix_of;
    out->remix_root = p.remix_root;
    out->likes = p.n[P_LIKES];
    out->comments = p.n[P_COMMENTS];
    out->remixes = p.n[P_REMIXES];
    out->views = p.n[P_VIEWS];
    out->watch_ms = p.n[P_WATCH_MS];
    out->public = (p.flags & POST_PUBLIC) != 0;
    out->hidden = (p.flags & POST_HIDDEN) != 0;
    out->hidden_reason_len = p.reason_len;
    memcpy(out->hidden_reason, reason, p.reason_len);
    return 0;
}

/* A page of a post index (posts_by_author, remixes), filtered by flags. */
static int post_page(reel_views_txn_t *t, int dbi, uint64_t prefix, uint64_t cursor_at,
                     uint64_t cursor_id, unsigned flags, size_t limit, reel_post_entry_t *out,
                     size_t *n_out)
{
    scan24_t s;
    post_rec_t p;
    const uint8_t *reason;
    uint64_t mid, id;
    if (t == NULL || out == NULL || n_out == NULL || limit == 0 || limit > REEL_VIEWS_PAGE_MAX ||
        (flags & ~(REEL_VIEWS_LIST_DRAFTS | REEL_VIEWS_LIST_HIDDEN)) != 0)
        return REEL_EUSAGE;
    *n_out = 0;
    int rc = scan_begin(t, dbi, prefix, ~cursor_at, cursor_id, cursor_at != 0 || cursor_id != 0,
                        &s);
    if (rc != 0)
        return rc;
    while (*n_out < limit && (rc = scan_next(&s, &mid, &id)) == 1) {
        if ((rc = post_read(t, id, &p, &reason)) != 0)
            break; /* an index entry without its post: REEL_ENOTFOUND */
        if ((!(p.flags & POST_PUBLIC) && !(flags & REEL_VIEWS_LIST_DRAFTS)) ||
            ((p.flags & POST_HIDDEN) && !(flags & REEL_VIEWS_LIST_HIDDEN)))
            continue;
        out[*n_out] = (reel_post_entry_t){.post = id, .created_at = ~mid,
                                          .public = (p.flags & POST_PUBLIC) != 0,
                                          .hidden = (p.flags & POST_HIDDEN) != 0};
        (*n_out)++;
    }
    scan_end(&s);
    if (rc == REEL_ENOTFOUND)
        return REEL_ECORRUPT; /* the index and posts disagree */
    return rc < 0 ? rc : 0;
}

int reel_views_posts_by_author(reel_views_txn_t *t, uint64_t author, uint64_t cursor_at,
                               uint64_t cursor_id, unsigned flags, size_t limit,
                               reel_post_entry_t *out, size_t *n_out)
{
    return post_page(t, DBI_POSTS_BY_AUTHOR, author, cursor_at, cursor_id, flags, limit, out,
                     n_out);
}

int reel_views_remixes(reel_views_txn_t *t, uint64_t parent, uint64_t cursor_at,
                       uint64_t cursor_id, unsigned flags, size_t limit, reel_post_entry_t *out,
                       size_t *n_out)
{
    return post_page(t, DBI_REMIXES, parent, cursor_at, cursor_id, flags, limit, out, n_out);
}

/* Fills out from comment id's record (text into the snapshot); a deleted
 * comment is REEL_ENOTFOUND. */
static int comment_read(reel_views_txn_t *t, uint64_t id, reel_comment_view_t *out)
{
    uint8_t key[8];
    MDB_val val;
    reel__vput_be64(key, id);
    int rc = reel__vdb_get(t->txn, t->v->dbi[DBI_COMMENTS], key, sizeof key, &val);
    if (rc != 0)
        return rc;
    const uint8_t *b = val.mv_data;
    if (val.mv_size < COMMENT_FIXED_BYTES || val.mv_size > COMMENT_VALUE_MAX)
        return REEL_ECORRUPT;
    if (b[32] & COMMENT_DELETED)
        return REEL_ENOTFOUND;
    out->id = id;
    out->post = reel_load_u64(b);
    out->author = reel_load_u64(b + 8);
    out->reply_to = reel_load_u64(b + 16);
    out->created_at = reel_load_u64(b + 24);
    out->text_len = (uint32_t)(val.mv_size - COMMENT_FIXED_BYTES);
    out->text = (const char *)b + COMMENT_FIXED_BYTES;
    return 0;
}

int reel_views_get_comment(reel_views_txn_t *t, uint64_t id, reel_comment_view_t *out)
{
    if (t == NULL || out == NULL)
        return REEL_EUSAGE;
    return comment_read(t, id, out);
}

int reel_views_comments(reel_views_txn_t *t, uint64_t post, uint64_t cursor_at,
                        uint64_t cursor_id, size_t limit, reel_comment_view_t *out,
                        size_t *n_out)
{
    scan24_t s;
    uint64_t mid, id;
    if (t == NULL || out == NULL || n_out == NULL || limit == 0 || limit > REEL_VIEWS_PAGE_MAX)
        return REEL_EUSAGE;
    *n_out = 0;
    int rc = scan_begin(t, DBI_COMMENTS_BY_POST, post, cursor_at, cursor_id,
                        cursor_at != 0 || cursor_id != 0, &s);
    if (rc != 0)
        return rc;
    while (*n_out < limit && (rc = scan_next(&s, &mid, &id)) == 1) {
        if ((rc = comment_read(t, id, &out[*n_out])) != 0)
            break;
        (*n_out)++;
    }
    scan_end(&s);
    if (rc == REEL_ENOTFOUND)
        return REEL_ECORRUPT; /* the index and comments disagree */
    return rc < 0 ? rc : 0;
}

int reel_views_get_cameo(reel_views_txn_t *t, uint64_t owner, reel_cameo_view_t *out)
{
    uint8_t key[8];
    MDB_val val;
    if (t == NULL || out == NULL)
        return REEL_EUSAGE;
    reel__vput_be64(key, owner);
    int rc = reel__vdb_get(t->txn, t->v->dbi[DBI_CAMEOS], key, sizeof key, &val);
    if (rc != 0)
        return rc;
    const uint8_t *b = val.mv_data;
    if (val.mv_size < 1 || val.mv_size > CAMEO_VALUE_MAX || b[0] > REEL_CAMEO_EVERYONE)
        return REEL_ECORRUPT;
    out->owner = owner;
    out->policy = b[0];
    out->asset_len = (uint32_t)(val.mv_size - 1);
    out->asset = (const char *)b + 1;
    return 0;
}

/* *out: whether the pair a | b is in dbi (a pair DBI with u64 values). */
static int pair_exists(reel_views_txn_t *t, int dbi, uint64_t a, uint64_t b, bool *out)
{
    uint8_t key[16];
    MDB_val val;
    REEL_ASSERT(dbi > DBI_META && dbi < DBI_COUNT);
    if (t == NULL || out == NULL)
        return REEL_EUSAGE;
    reel__vput_be64(key, a);
    reel__vput_be64(key + 8, b);
    *out = false;
    int rc = reel__vdb_get(t->txn, t->v->dbi[dbi], key, sizeof key, &val);
    if (rc == REEL_ENOTFOUND)
        return 0;
    if (rc == 0 && val.mv_size != 8)
        return REEL_ECORRUPT;
    *out = rc == 0;
    return rc;
}

int reel_views_is_approved(reel_views_txn_t *t, uint64_t owner, uint64_t grantee, bool *out)
{
    return pair_exists(t, DBI_APPROVALS, owner, grantee, out);
}

int reel_views_appears(reel_views_txn_t *t, uint64_t owner, uint64_t post, bool *out)
{
    return pair_exists(t, DBI_APPEARANCES, owner, post, out);
}

/* Fills e from the posts record of an appearance: 1 listed, 0 skipped
 * (deleted post), or an error (REEL_ECORRUPT: no post for the entry). */
static int appearance_fill(reel_views_txn_t *t, const MDB_val *k, const MDB_val *d,
                           reel_appearance_t *e)
{
    post_rec_t p;
    const uint8_t *reason;
    if (k->mv_size != 16 || d->mv_size != 8)
        return REEL_ECORRUPT;
    e->post = reel__vget_be64((const uint8_t *)k->mv_data + 8);
    e->author = reel_load_u64(d->mv_data);
    int rc = post_read(t, e->post, &p, &reason);
    if (rc != 0)
        return rc == REEL_ENOTFOUND ? REEL_ECORRUPT : rc;
    e->public = (p.flags & POST_PUBLIC) != 0;
    e->hidden = (p.flags & POST_HIDDEN) != 0;
    return (p.flags & POST_DELETED) ? 0 : 1;
}

int reel_views_appearances(reel_views_txn_t *t, uint64_t owner, uint64_t cursor_post,
                           size_t limit, reel_appearance_t *out, size_t *n_out)
{
    MDB_cursor *cur;
    MDB_val k, d;
    uint8_t start[16];
    if (t == NULL || out == NULL || n_out == NULL || limit == 0 || limit > REEL_VIEWS_PAGE_MAX ||
        cursor_post == UINT64_MAX)
        return REEL_EUSAGE;
    *n_out = 0;
    reel__vput_be64(start, owner);
    reel__vput_be64(start + 8, cursor_post + 1); /* just after the cursor; 0 + 1 skips no post */
    int rc = reel__vcursor_open(t->v, t->txn, DBI_APPEARANCES, &cur);
    if (rc != 0)
        return rc;
    k = (MDB_val){sizeof start, start};
    rc = reel__vmdb(mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE));
    while (rc == 0 && *n_out < limit && k.mv_size == 16 &&
           reel__vget_be64(k.mv_data) == owner) {
        int got = appearance_fill(t, &k, &d, &out[*n_out]);
        if (got < 0) {
            rc = got;
            break;
        }
        *n_out += (size_t)got;
        rc = reel__vmdb(mdb_cursor_get(cur, &k, &d, MDB_NEXT));
    }
    mdb_cursor_close(cur);
    return rc == REEL_ENOTFOUND ? 0 : rc;
}

int reel_views_follows(reel_views_txn_t *t, uint64_t a, uint64_t b, bool *out)
{
    return pair_exists(t, DBI_FOLLOWS, a, b, out);
}

/* ---- generations (reads) ---- */

/* Fills out's strings from a body (validated against r's lengths). */
static int gen_fill_body(const gen_rec_t *r, const uint8_t *body, reel_generation_view_t *out)
{
    size_t n = 8u * r->ncameos;
    if (n + r->prompt_len > r->body_len)
        return REEL_ECORRUPT;
    for (uint32_t i = 0; i < r->ncameos; i++)
        out->cameos[i] = reel_load_u64(body + 8 * i);
    out->prompt = (const char *)body + n;
    n += r->prompt_len;
    for (uint32_t i = 0; i < r->ntags; i++) {
        if (n + 1 > r->body_len || n + 1 + body[n] > r->body_len)
            return REEL_ECORRUPT;
        out->tags[i] = (reel_str_t){(const char *)body + n + 1, body[n]};
        n += 1u + body[n];
    }
    return n == r->body_len ? 0 : REEL_ECORRUPT;
}

int reel_views_get_generation(reel_views_txn_t *t, uint64_t id, reel_generation_view_t *out)
{
    uint8_t key[8];
    MDB_val val;
    const uint8_t *body;
    gen_rec_t r;
    if (t == NULL || out == NULL)
        return REEL_EUSAGE;
    reel__vput_be64(key, id);
    int rc = reel__vdb_get(t->txn, t->v->dbi[DBI_GENERATIONS], key, sizeof key, &val);
    if (rc == 0)
        rc = gen_decode(&val, &r, &body);
    if (rc != 0)
        return rc;
    memset(out, 0, sizeof(*out));
    out->id = id, out->user = r.user, out->created_at = r.created_at;
    out->attempts = r.attempts, out->lease_until = r.lease_until, out->post = r.post;
    out->remix_of = r.remix_of, out->status = r.status;
    out->ncameos = r.ncameos, out->ntags = r.ntags, out->prompt_len = r.prompt_len;
    out->worker_len = r.worker_len;
    memcpy(out->worker, body + r.body_len, r.worker_len);
    return gen_fill_body(&r, body, out);
}

int reel_views_quota(reel_views_txn_t *t, uint64_t user, uint64_t now_ms, uint64_t window_ms,
                     uint64_t max, uint64_t *used, uint64_t *oldest_at)
{
    scan24_t s;
    uint64_t at, id;
    if (t == NULL || used == NULL || oldest_at == NULL || window_ms == 0 || max == 0)
        return REEL_EUSAGE;
    *used = 0, *oldest_at = 0;
    /* The window is (now - window, now]: its first instant is now - window + 1. */
    uint64_t from = now_ms >= window_ms ? now_ms - window_ms + 1 : 0;
    int rc = scan_begin(t, DBI_GEN_BY_USER_TIME, user, from, 0, true, &s);
    if (rc != 0)
        return rc;
    while (*used < max && (rc = scan_next(&s, &at, &id)) == 1 && at <= now_ms) {
        if (*used == 0)
            *oldest_at = at;
        (*used)++;
    }
    scan_end(&s);
    return rc < 0 ? rc : 0;
}

/* Collects up to limit keys be64 a | be64 b of a 16-byte index, from
 * (a0, b0) on, while a <= a_max: b into bs, the u64 value (if any) into
 * vals (may be NULL). */
static int scan16(reel_views_txn_t *t, int dbi, uint64_t a0, uint64_t b0, uint64_t a_max,
                  size_t limit, uint64_t *bs, uint64_t *vals, size_t *n_out)
{
    MDB_cursor *cur;
    MDB_val k, d;
    uint8_t start[16];
    REEL_ASSERT(dbi > DBI_META && dbi < DBI_COUNT);
    REEL_ASSERT(limit <= REEL_VIEWS_PAGE_MAX);
    *n_out = 0;
    reel__vput_be64(start, a0);
    reel__vput_be64(start + 8, b0);
    int rc = reel__vcursor_open(t->v, t->txn, dbi, &cur);
    if (rc != 0)
        return rc;
    k = (MDB_val){sizeof start, start};
    rc = reel__vmdb(mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE));
    while (rc == 0 && *n_out < limit) {
        if (k.mv_size != 16 || (vals != NULL && d.mv_size != 8)) {
            rc = REEL_ECORRUPT;
            break;
        }
        if (reel__vget_be64(k.mv_data) > a_max)
            break;
        bs[*n_out] = reel__vget_be64((const uint8_t *)k.mv_data + 8);
        if (vals != NULL)
            vals[*n_out] = reel_load_u64(d.mv_data);
        (*n_out)++;
        rc = reel__vmdb(mdb_cursor_get(cur, &k, &d, MDB_NEXT));
    }
    mdb_cursor_close(cur);
    return rc == REEL_ENOTFOUND ? 0 : rc;
}

int reel_views_queue(reel_views_txn_t *t, size_t limit, uint64_t *out, size_t *n_out)
{
    if (t == NULL || out == NULL || n_out == NULL || limit == 0 || limit > REEL_VIEWS_PAGE_MAX)
        return REEL_EUSAGE;
    return scan16(t, DBI_QUEUE, 0, 0, UINT64_MAX, limit, out, NULL, n_out);
}

int reel_views_leases_expired(reel_views_txn_t *t, uint64_t now_ms, size_t limit, uint64_t *out,
                              size_t *n_out)
{
    if (t == NULL || out == NULL || n_out == NULL || limit == 0 || limit > REEL_VIEWS_PAGE_MAX)
        return REEL_EUSAGE;
    return scan16(t, DBI_LEASES, 0, 0, now_ms, limit, out, NULL, n_out);
}

int reel_views_gen_by_cameo(reel_views_txn_t *t, uint64_t owner, uint64_t cursor_gen,
                            size_t limit, reel_gen_entry_t *out, size_t *n_out)
{
    uint64_t gens[REEL_VIEWS_GEN_PAGE_MAX], users[REEL_VIEWS_GEN_PAGE_MAX];
    if (t == NULL || out == NULL || n_out == NULL || limit == 0 ||
        limit > REEL_VIEWS_GEN_PAGE_MAX || cursor_gen == UINT64_MAX)
        return REEL_EUSAGE;
    int rc = scan16(t, DBI_GEN_BY_CAMEO, owner, cursor_gen + 1, owner, limit, gens, users, n_out);
    for (size_t i = 0; rc == 0 && i < *n_out; i++)
        out[i] = (reel_gen_entry_t){gens[i], users[i]};
    return rc;
}

/* A page of a 16-byte index be64 a | be64 b for one a, from just after
 * b = cursor (0: the first). */
static int page16(reel_views_txn_t *t, int dbi, uint64_t a, uint64_t cursor, size_t limit,
                  uint64_t *out, size_t *n_out)
{
    if (t == NULL || out == NULL || n_out == NULL || limit == 0 || limit > REEL_VIEWS_PAGE_MAX ||
        cursor == UINT64_MAX)
        return REEL_EUSAGE;
    return scan16(t, dbi, a, cursor + 1, a, limit, out, NULL, n_out);
}

int reel_views_likes_by_user(reel_views_txn_t *t, uint64_t user, uint64_t cursor_post,
                             size_t limit, uint64_t *out, size_t *n_out)
{
    return page16(t, DBI_LIKES_BY_USER, user, cursor_post, limit, out, n_out);
}

int reel_views_comments_by_author(reel_views_txn_t *t, uint64_t author, uint64_t cursor_comment,
                                  size_t limit, uint64_t *out, size_t *n_out)
{
    return page16(t, DBI_COMMENTS_BY_AUTHOR, author, cursor_comment, limit, out, n_out);
}

int reel_views_approvals(reel_views_txn_t *t, uint64_t owner, uint64_t cursor_grantee,
                         size_t limit, uint64_t *out, size_t *n_out)
{
    return page16(t, DBI_APPROVALS, owner, cursor_grantee, limit, out, n_out);
}

int reel_views_gens_by_user(reel_views_txn_t *t, uint64_t user, uint64_t cursor_at,
                            uint64_t cursor_id, size_t limit, reel_gen_by_user_t *out,
                            size_t *n_out)
{
    scan24_t s;
    uint64_t at, id;
    if (t == NULL || out == NULL || n_out == NULL || limit == 0 || limit > REEL_VIEWS_PAGE_MAX)
        return REEL_EUSAGE;
    *n_out = 0;
    int rc = scan_begin(t, DBI_GEN_BY_USER_TIME, user, cursor_at, cursor_id,
                        cursor_at != 0 || cursor_id != 0, &s);
    if (rc != 0)
        return rc;
    while (*n_out < limit && (rc = scan_next(&s, &at, &id)) == 1)
        out[(*n_out)++] = (reel_gen_by_user_t){id, at};
    scan_end(&s);
    return rc < 0 ? rc : 0;
}

int reel_views_leaderboard(reel_views_txn_t *t, reel_views_board_t kind, size_t limit,
                           reel_leader_t *out, size_t *n_out)
{
    MDB_cursor *cur;
    MDB_val k, d;
    uint8_t start[1];
    if (t == NULL || out == NULL || n_out == NULL || limit == 0 || limit > REEL_VIEWS_PAGE_MAX ||
        (int)kind < 0 || kind >= REEL_BOARD_COUNT)
        return REEL_EUSAGE;
    *n_out = 0;
    start[0] = (uint8_t)kind;
    int rc = reel__vcursor_open(t->v, t->txn, DBI_LEADERBOARD, &cur);
    if (rc != 0)
        return rc;
    k = (MDB_val){sizeof start, start};
    rc = reel__vmdb(mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE));
    while (rc == 0 && *n_out < limit) {
        const uint8_t *p = k.mv_data;
        if (k.mv_size != LB_KEY_BYTES) {
            rc = REEL_ECORRUPT;
            break;
        }
        if (p[0] != (uint8_t)kind)
            break;
        out[(*n_out)++] = (reel_leader_t){reel__vget_be64(p + 9), ~reel__vget_be64(p + 1)};
        rc = reel__vmdb(mdb_cursor_get(cur, &k, &d, MDB_NEXT));
    }
    mdb_cursor_close(cur);
    return rc == REEL_ENOTFOUND ? 0 : rc;
}

int reel_views_is_blocked(reel_views_txn_t *t, uint64_t a, uint64_t b, bool *out)
{
    int rc = pair_exists(t, DBI_BLOCKS, a, b, out);
    if (rc != 0 || *out)
        return rc;
    return pair_exists(t, DBI_BLOCKS, b, a, out);
}

int reel_views_get_invite(reel_views_txn_t *t, const char *code, size_t len,
                          reel_invite_view_t *out)
{
    MDB_val val;
    if (t == NULL || out == NULL || code == NULL || len == 0 || len > REEL_SHORT_LEN_MAX)
        return REEL_EUSAGE;
    int rc = reel__vdb_get(t->txn, t->v->dbi[DBI_INVITES], code, len, &val);
    if (rc != 0)
        return rc;
    if (val.mv_size != INVITE_VALUE_BYTES)
        return REEL_ECORRUPT;
    const uint8_t *b = val.mv_data;
    out->issuer = reel_load_u64(b);
    out->used = b[8] != 0;
    out->used_by = reel_load_u64(b + 9);
    return 0;
}

int reel_views_get_feedback(reel_views_txn_t *t, uint64_t user, uint64_t post, uint8_t *kinds)
{
    uint8_t key[16];
    MDB_val val;
    if (t == NULL || kinds == NULL)
        return REEL_EUSAGE;
    reel__vput_be64(key, user);
    reel__vput_be64(key + 8, post);
    *kinds = 0;
    int rc = reel__vdb_get(t->txn, t->v->dbi[DBI_FEEDBACK], key, sizeof key, &val);
    if (rc == REEL_ENOTFOUND)
        return 0;
    if (rc == 0 && val.mv_size != 1)
        return REEL_ECORRUPT;
    if (rc == 0)
        *kinds = *(const uint8_t *)val.mv_data;
    return rc;
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
    hash_bytes(st, reel__views_dbi_names[dbi], strlen(reel__views_dbi_names[dbi]));
    int rc = reel__vcursor_open(t->v, t->txn, dbi, &cur);
    if (rc != 0)
        return rc;
    rc = reel__vmdb(mdb_cursor_get(cur, &k, &d, MDB_FIRST));
    while (rc == 0) {
        hash_bytes(st, k.mv_data, k.mv_size);
        hash_bytes(st, d.mv_data, d.mv_size);
        rc = reel__vmdb(mdb_cursor_get(cur, &k, &d, MDB_NEXT));
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

/* ---- write sessions ---- */

/* A write session (views.h): one LMDB write txn that the command writer
 * keeps open across many commands, reading its own changes. It remembers
 * the events it applied so that when the map fills up mid-session it can
 * abort, grow the map and apply them again into a new txn (invariant 4)
 * without the caller noticing: apply is deterministic (invariant 3). */
struct reel_views_session {
    reel_views_t *v;        /* not owned; apply_lock held for the session */
    reel_views_txn_t reader; /* the write txn, seen through the read API */
    reel_event_t *evs;      /* events applied in this session */
    size_t n;
    size_t cap;
    uint64_t next;          /* offset the next event must have */
};

static int session_txn_begin(reel_views_session_t *s)
{
    grow_rdlock(s->v);
    int rc = reel__vmdb(mdb_txn_begin(s->v->env, NULL, 0, &s->reader.txn));
    if (rc != 0) {
        s->reader.txn = NULL;
        grow_unlock(s->v);
    } else {
        reel__vrows_begin(s->v, s->reader.txn);
    }
    return rc;
}

static void session_txn_abort(reel_views_session_t *s)
{
    if (s->reader.txn != NULL) {
        reel__vrows_end(s->v, false);
        mdb_txn_abort(s->reader.txn);
        s->reader.txn = NULL;
        grow_unlock(s->v);
    }
}

/* Grows the map and applies the session's events again in a new txn. */
static int session_regrow(reel_views_session_t *s, int why)
{
    int rc = why;
    for (unsigned tries = 0; tries < GROW_RETRIES_MAX; tries++) {
        session_txn_abort(s);
        rc = grow(s->v, rc == ERR_MAP_RESIZED);
        if (rc == 0)
            rc = session_txn_begin(s);
        for (size_t i = 0; rc == 0 && i < s->n; i++)
            rc = apply_event(s->v, s->reader.txn, &s->evs[i]);
        if (rc != ERR_MAP_FULL && rc != ERR_MAP_RESIZED)
            return rc;
    }
    return -ENOSPC;
}

int reel_views_session_begin(reel_views_t *v, reel_views_session_t **out)
{
    REEL_ASSERT(v != NULL);
    *out = NULL;
    reel_views_session_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    s->v = v;
    s->reader.v = v;
    int rc = pthread_mutex_lock(&v->apply_lock);
    REEL_ASSERT(rc == 0);
    s->next = __atomic_load_n(&v->applied, __ATOMIC_ACQUIRE);
    rc = session_txn_begin(s);
    if (rc == ERR_MAP_RESIZED)
        rc = session_regrow(s, rc);
    if (rc != 0) {
        pthread_mutex_unlock(&v->apply_lock);
        free(s);
        return rc == ERR_MAP_FULL ? -ENOSPC : rc;
    }
    *out = s;
    return 0;
}

reel_views_txn_t *reel_views_session_reader(reel_views_session_t *s)
{
    REEL_ASSERT(s->reader.txn != NULL);
    return &s->reader;
}

int reel_views_session_apply(reel_views_session_t *s, const reel_event_t *ev)
{
    REEL_ASSERT(s->reader.txn != NULL);
    if (ev->offset != s->next)
        return REEL_EUSAGE; /* invariant 2 */
    if (s->n == REEL_VIEWS_SESSION_EVENTS_MAX)
        return REEL_ETOOBIG;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        reel_event_t *evs = realloc(s->evs, cap * sizeof(*evs));
        if (evs == NULL)
            return -ENOMEM;
        s->evs = evs;
        s->cap = cap;
    }
    s->evs[s->n] = *ev;
    int rc = apply_event(s->v, s->reader.txn, ev);
    if (rc == ERR_MAP_FULL || rc == ERR_MAP_RESIZED) {
        s->n++; /* kept: the regrow applies it with the others */
        rc = session_regrow(s, rc);
        if (rc != 0)
            s->n--;
    } else if (rc == 0) {
        s->n++;
    }
    if (rc == 0)
        s->next++;
    return rc;
}

static void session_free(reel_views_session_t *s)
{
    pthread_mutex_unlock(&s->v->apply_lock);
    free(s->evs);
    free(s);
}

/* Stores applied and commits (mu: apply_lock held). */
static int session_commit_once(reel_views_session_t *s)
{
    uint8_t applied[8];
    reel_store_u64(applied, s->next);
    int rc = reel__vrows_flush(s->v, s->reader.txn);
    if (rc == 0)
        rc = reel__vdb_put(s->reader.txn, s->v->dbi[DBI_META], "applied", 7, applied,
                           sizeof(applied));
    if (rc != 0)
        return rc;
    reel__vrows_end(s->v, true);
    rc = reel__vmdb(mdb_txn_commit(s->reader.txn)); /* frees the txn, success or not */
    if (rc != 0)
        reel__vrows_drop(s->v);
    s->reader.txn = NULL;
    grow_unlock(s->v);
    return rc;
}

int reel_views_session_commit(reel_views_session_t *s)
{
    int rc = session_commit_once(s);
    for (unsigned tries = 0; (rc == ERR_MAP_FULL || rc == ERR_MAP_RESIZED) &&
                             tries < GROW_RETRIES_MAX; tries++) {
        rc = session_regrow(s, rc);
        if (rc == 0)
            rc = session_commit_once(s);
    }
    if (rc == 0)
        __atomic_store_n(&s->v->applied, s->next, __ATOMIC_RELEASE);
    session_txn_abort(s); /* only when a failure left it open */
    session_free(s);
    return rc == ERR_MAP_FULL || rc == ERR_MAP_RESIZED ? -ENOSPC : rc;
}

void reel_views_session_abort(reel_views_session_t *s)
{
    if (s == NULL)
        return;
    session_txn_abort(s);
    session_free(s);
}

/* ---- ids ---- */

int reel_views_last_id(reel_views_txn_t *t, reel_views_id_kind_t kind, uint64_t *out)
{
    static const int dbis[] = {[REEL_VIEWS_ID_USER] = DBI_USERS,
                               [REEL_VIEWS_ID_POST] = DBI_POSTS,
                               [REEL_VIEWS_ID_COMMENT] = DBI_COMMENTS,
                               [REEL_VIEWS_ID_GENERATION] = DBI_GENERATIONS};
    MDB_cursor *cur;
    MDB_val k, d;
    REEL_ASSERT((unsigned)kind < REEL_ARRAY_LEN(dbis));
    int dbi = dbis[kind];
    bool rows = dbi == DBI_USERS || dbi == DBI_POSTS;
    *out = 0;
    /* Users and posts: the larger of LMDB's last and the rows' (records are
     * never deleted, so no flush is needed: a create costs no flush). */
    int rc = rows ? reel__vmdb(mdb_cursor_open(t->txn, t->v->dbi[dbi], &cur))
                  : reel__vcursor_open(t->v, t->txn, dbi, &cur);
    if (rc != 0)
        return rc;
    rc = reel__vmdb(mdb_cursor_get(cur, &k, &d, MDB_LAST));
    if (rc == 0 && k.mv_size != 8)
        rc = REEL_ECORRUPT;
    if (rc == 0)
        *out = reel__vget_be64(k.mv_data);
    mdb_cursor_close(cur);
    if (rc != 0 && rc != REEL_ENOTFOUND)
        return rc;
    if (rows && reel__vrows_max_id(t->v, t->txn, dbi) > *out)
        *out = reel__vrows_max_id(t->v, t->txn, dbi);
    return 0;
}

int reel_views_liked(reel_views_txn_t *t, uint64_t post, uint64_t user, bool *out)
{
    uint8_t key[16];
    MDB_val val;
    reel__vput_be64(key, post);
    reel__vput_be64(key + 8, user);
    int rc = reel__vdb_get(t->txn, t->v->dbi[DBI_LIKES], key, sizeof key, &val);
    *out = rc == 0;
    return rc == REEL_ENOTFOUND ? 0 : rc;
}

int reel_views_blocks(reel_views_txn_t *t, uint64_t blocker, uint64_t target, bool *out)
{
    return pair_exists(t, DBI_BLOCKS, blocker, target, out);
}
