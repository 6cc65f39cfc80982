/*
 * views_rows.c: the write txn's row cache (views_int.h, "Rows").
 *
 * Why. Most events read and rewrite a few hot records: the post a view or
 * a like lands on, the counts of its author and of a creator being
 * followed, the users the rules check. Each of those was an LMDB get and
 * put (a B-tree descent, a dirty-page list search) per event, and each
 * counter change moved a leaderboard key (a delete and a put). Kept here
 * for the life of the write txn, a hot record is read once and written
 * once per flush, and its leaderboard keys move once, from the value at
 * load to the value at flush.
 *
 * What. Records of the users, posts and counts DBIs, all keyed by be64 id,
 * and never deleted (a deleted user or post keeps a flagged record). A
 * row holds the record's bytes as the txn sees them (or that it is absent)
 * and, for counts, the bytes it had when loaded. Rows live in a table of
 * REEL_VIEWS_ROWS_MAX entries and an arena of REEL_VIEWS_ROWS_ARENA_BYTES;
 * when either is full, every dirty row goes to the txn and the cache
 * starts over (a flush changes what LMDB holds, never what a read sees).
 *
 * Who sees rows. Only the write txn they belong to (r->txn): a read txn of
 * another thread reads LMDB, which does not hold the txn's changes anyway
 * until commit, and commit flushes first. Cursors (scans, last ids, the
 * leaderboard) see LMDB only, so views.c flushes before a cursor on a
 * cached DBI or the leaderboard (reel__vcursor_open).
 *
 * Index keys. The index DBIs that apply only writes to (empty values) and
 * only scans read (buffered_dbi) get their puts and deletes queued too
 * (REEL_VIEWS_INDEX_OPS_MAX), and applied at flush in key order, the ops
 * on one key in the order they came: a scan of one of them flushes first.
 */
#include "engine/views_int.h"

#include <stdlib.h>
#include <string.h>

#include "engine/common.h"

/* The longest index key written behind: be64 | be64 | be64. */
#define IDX_KEY_MAX 24u

/* The table: open addressing over twice the rows, so probes stay short. */
#define SLOTS (2u * REEL_VIEWS_ROWS_MAX)
_Static_assert((SLOTS & (SLOTS - 1)) == 0, "slots are a power of two");

typedef struct row {
    uint64_t id;
    uint32_t off;      /* value bytes in the arena */
    uint32_t orig_off; /* counts: the bytes at load (orig_len of them) */
    uint16_t len, cap, orig_len, orig_cap;
    uint8_t dbi;       /* DBI_USERS, DBI_POSTS or DBI_COUNTS */
    uint8_t present;   /* the txn holds a record (len bytes) */
    uint8_t dirty;     /* written since load: goes to LMDB at flush */
    uint8_t settle;    /* counts: settle the leaderboard at flush */
    uint8_t orig_present;
} row_t;

/* An index key put (empty value) or deleted, in the order applied (seq). */
typedef struct idx_op {
    uint32_t seq;
    uint8_t dbi, del, kl;
    uint8_t key[IDX_KEY_MAX];
} idx_op_t;

struct reel_views_rows {
    MDB_txn *txn;          /* the write txn cached; NULL: none (atomic) */
    uint32_t nops;         /* index ops waiting (idx_ops) */
    idx_op_t ops[REEL_VIEWS_INDEX_OPS_MAX];
    bool flushing;         /* reads during a flush do not add rows */
    uint32_t n;            /* rows in use */
    uint32_t used;         /* arena bytes in use */
    uint64_t max_id[DBI_COUNT]; /* largest id of a present row, per DBI */
    row_t rows[REEL_VIEWS_ROWS_MAX];
    uint32_t slots[SLOTS]; /* row index + 1; 0: empty */
    uint8_t arena[REEL_VIEWS_ROWS_ARENA_BYTES];
};

static bool cached_dbi(int dbi)
{
    return dbi == DBI_USERS || dbi == DBI_POSTS || dbi == DBI_COUNTS;
}

/* Index DBIs that apply only writes (keys with empty values) and that
 * only scans read: their puts and deletes wait for a flush, sorted. */
static bool buffered_dbi(int dbi)
{
    return dbi == DBI_FOLLOWERS || dbi == DBI_FOLLOWING || dbi == DBI_LIKES_BY_USER ||
           dbi == DBI_POSTS_BY_AUTHOR || dbi == DBI_COMMENTS_BY_POST ||
           dbi == DBI_COMMENTS_BY_AUTHOR;
}

static int idx_cmp(const void *pa, const void *pb)
{
    const idx_op_t *a = pa, *b = pb;
    if (a->dbi != b->dbi)
        return a->dbi < b->dbi ? -1 : 1;
    size_t n = a->kl < b->kl ? a->kl : b->kl;
    int c = memcmp(a->key, b->key, n);
    if (c != 0 || a->kl != b->kl)
        return c != 0 ? c : (a->kl < b->kl ? -1 : 1);
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Applies the waiting index ops in key order (the order of ops on one key
 * kept) through one cursor per DBI: LMDB's cursor searches the leaf it is
 * on first, so neighbouring keys skip the descent from the root, and the
 * pages they touch are hot. */
static int idx_flush(reel_views_t *v, reel_views_rows_t *r)
{
    MDB_cursor *cur = NULL;
    int rc = 0, dbi = -1;
    qsort(r->ops, r->nops, sizeof(r->ops[0]), idx_cmp);
    for (uint32_t i = 0; i < r->nops && rc == 0; i++) {
        idx_op_t *o = &r->ops[i];
        MDB_val k = {o->kl, o->key}, d = {0, ""};
        if (o->dbi != dbi) {
            if (cur != NULL)
                mdb_cursor_close(cur);
            cur = NULL;
            dbi = o->dbi;
            if ((rc = reel__vmdb(mdb_cursor_open(r->txn, v->dbi[dbi], &cur))) != 0)
                break;
        }
        if (!o->del) {
            rc = reel__vmdb(mdb_cursor_put(cur, &k, &d, 0));
        } else {
            rc = reel__vmdb(mdb_cursor_get(cur, &k, &d, MDB_SET));
            rc = rc == 0 ? reel__vmdb(mdb_cursor_del(cur, 0)) : rc == REEL_ENOTFOUND ? 0 : rc;
        }
    }
    if (cur != NULL)
        mdb_cursor_close(cur);
    r->nops = 0; /* applied, or the txn is lost (the caller aborts it) */
    return rc;
}

int reel__vidx_write(reel_views_t *v, MDB_txn *txn, int dbi, const void *k, size_t kl, bool del)
{
    reel_views_rows_t *r = v->rows;
    REEL_ASSERT(kl > 0 && kl <= IDX_KEY_MAX);
    if (!buffered_dbi(dbi) || !reel__vrows_active(v, txn))
        return del ? reel__vdb_del(txn, v->dbi[dbi], k, kl)
                   : reel__vdb_put(txn, v->dbi[dbi], k, kl, "", 0);
    if (r->nops == REEL_VIEWS_INDEX_OPS_MAX) {
        int rc = idx_flush(v, r);
        if (rc != 0)
            return rc;
    }
    idx_op_t *o = &r->ops[r->nops];
    o->seq = r->nops++;
    o->dbi = (uint8_t)dbi;
    o->del = del;
    o->kl = (uint8_t)kl;
    memcpy(o->key, k, kl);
    return 0;
}

int reel__vrows_new(reel_views_rows_t **out)
{
    *out = calloc(1, sizeof(**out));
    return *out != NULL ? 0 : -ENOMEM;
}

void reel__vrows_free(reel_views_rows_t *r)
{
    free(r);
}

static void rows_clear(reel_views_rows_t *r)
{
    if (r->n > 0)
        memset(r->slots, 0, sizeof(r->slots));
    r->n = 0;
    r->used = 0;
}

void reel__vrows_begin(reel_views_t *v, MDB_txn *txn)
{
    reel_views_rows_t *r = v->rows;
    REEL_ASSERT(__atomic_load_n(&r->txn, __ATOMIC_RELAXED) == NULL);
    __atomic_store_n(&r->txn, txn, __ATOMIC_RELAXED);
}

void reel__vrows_end(reel_views_t *v, bool committing)
{
    reel_views_rows_t *r = v->rows;
    bool clean = !committing || r->nops == 0;
    for (uint32_t i = 0; i < r->n && committing && clean; i++)
        clean = !r->rows[i].dirty && !r->rows[i].settle;
    REEL_ASSERT(clean); /* committing: flushed first */
    if (!committing)
        reel__vrows_drop(v);
    __atomic_store_n(&r->txn, NULL, __ATOMIC_RELAXED);
}

void reel__vrows_drop(reel_views_t *v)
{
    v->rows->nops = 0;
    rows_clear(v->rows);
    memset(v->rows->max_id, 0, sizeof(v->rows->max_id));
}

bool reel__vrows_active(reel_views_t *v, MDB_txn *txn)
{
    return __atomic_load_n(&v->rows->txn, __ATOMIC_RELAXED) == txn;
}

static uint32_t slot_of(int dbi, uint64_t id)
{
    uint64_t h = (id ^ ((uint64_t)dbi << 56)) * 0x9e3779b97f4a7c15ull;
    return (uint32_t)(h >> 40) & (SLOTS - 1);
}

/* The row of (dbi, id), or NULL; *slot: where it is or would go. */
static row_t *row_find(reel_views_rows_t *r, int dbi, uint64_t id, uint32_t *slot)
{
    uint32_t s = slot_of(dbi, id);
    for (uint32_t probes = 0; probes < SLOTS; probes++, s = (s + 1) & (SLOTS - 1)) {
        uint32_t i = r->slots[s];
        if (i == 0) {
            *slot = s;
            return NULL;
        }
        row_t *w = &r->rows[i - 1];
        if (w->id == id && w->dbi == dbi) {
            *slot = s;
            return w;
        }
    }
    REEL_ASSERT(!"row table has a free slot"); /* n < ROWS_MAX < SLOTS */
    return NULL;
}

/* Arena bytes for len, or UINT32_MAX when full. */
static uint32_t arena_take(reel_views_rows_t *r, size_t len)
{
    size_t need = (len + 7u) & ~(size_t)7u;
    if (need > sizeof(r->arena) - r->used)
        return UINT32_MAX;
    uint32_t off = r->used;
    r->used += (uint32_t)need;
    return off;
}

static bool rows_full(const reel_views_rows_t *r, size_t bytes)
{
    return r->n == REEL_VIEWS_ROWS_MAX || 2 * bytes + 16 > sizeof(r->arena) - r->used;
}

/* A written row is clean: for counts, what it holds now is its original
 * (the leaderboard entries are at these values once the txn commits).
 * false: no arena left for that copy. */
static bool row_clean(reel_views_rows_t *r, row_t *w)
{
    w->dirty = 0;
    w->settle = 0;
    if (w->dbi != DBI_COUNTS)
        return true;
    if (w->len > w->orig_cap) {
        uint32_t off = arena_take(r, w->len);
        if (off == UINT32_MAX)
            return false;
        w->orig_off = off;
        w->orig_cap = w->len;
    }
    memcpy(r->arena + w->orig_off, r->arena + w->off, w->len);
    w->orig_len = w->len;
    w->orig_present = w->present;
    return true;
}

/* Writes every dirty row to the txn (the leaderboard settled first); the
 * rows stay, clean, unless the cache is full or keeping them would not fit
 * (then it starts over). */
static int rows_flush(reel_views_t *v, reel_views_rows_t *r, bool keep)
{
    int rc = 0;
    r->flushing = true;
    for (uint32_t i = 0; i < r->n && rc == 0; i++) {
        row_t *w = &r->rows[i];
        if (w->dbi != DBI_COUNTS || !(w->settle || w->dirty))
            continue;
        MDB_val orig = {w->orig_len, r->arena + w->orig_off};
        MDB_val cur = {w->len, r->arena + w->off};
        rc = reel__views_lb_settle(v, r->txn, w->id, w->orig_present ? &orig : NULL,
                                   w->present ? &cur : NULL, w->settle);
    }
    for (uint32_t i = 0; i < r->n && rc == 0; i++) {
        row_t *w = &r->rows[i];
        uint8_t key[8];
        if (!w->dirty)
            continue;
        REEL_ASSERT(w->present);
        reel__vput_be64(key, w->id);
        rc = reel__vdb_put(r->txn, v->dbi[w->dbi], key, sizeof key, r->arena + w->off, w->len);
    }
    r->flushing = false;
    for (uint32_t i = 0; i < r->n && rc == 0 && keep; i++)
        keep = row_clean(r, &r->rows[i]);
    if (rc != 0 || !keep)
        rows_clear(r);
    return rc;
}

int reel__vrows_flush(reel_views_t *v, MDB_txn *txn)
{
    reel_views_rows_t *r = v->rows;
    if (!reel__vrows_active(v, txn))
        return 0;
    int rc = r->nops > 0 ? idx_flush(v, r) : 0;
    return rc != 0 || r->n == 0 ? rc : rows_flush(v, r, true);
}

/* Loads (dbi, id) from LMDB into a new row at slot. */
static int row_load(reel_views_t *v, reel_views_rows_t *r, int dbi, uint64_t id, uint32_t slot,
                    row_t **out)
{
    uint8_t key[8];
    MDB_val val;
    reel__vput_be64(key, id);
    int rc = reel__vdb_get(r->txn, v->dbi[dbi], key, sizeof key, &val);
    if (rc != 0 && rc != REEL_ENOTFOUND)
        return rc;
    bool present = rc == 0;
    size_t len = present ? val.mv_size : 0;
    if (len > UINT16_MAX)
        return REEL_ECORRUPT;
    if (rows_full(r, len)) {
        if ((rc = rows_flush(v, r, false)) != 0)
            return rc;
        row_find(r, dbi, id, &slot); /* the table is empty now */
    }
    row_t *w = &r->rows[r->n];
    *w = (row_t){.id = id, .dbi = (uint8_t)dbi, .present = present, .len = (uint16_t)len,
                 .cap = (uint16_t)len, .orig_present = present, .orig_len = (uint16_t)len,
                 .orig_cap = dbi == DBI_COUNTS ? (uint16_t)len : 0};
    w->off = arena_take(r, len);
    REEL_ASSERT(w->off != UINT32_MAX); /* rows_full checked */
    if (len > 0)
        memcpy(r->arena + w->off, val.mv_data, len);
    if (dbi == DBI_COUNTS) {
        w->orig_off = arena_take(r, len);
        REEL_ASSERT(w->orig_off != UINT32_MAX);
        if (len > 0)
            memcpy(r->arena + w->orig_off, val.mv_data, len);
    }
    if (present && id > r->max_id[dbi])
        r->max_id[dbi] = id;
    r->slots[slot] = ++r->n;
    *out = w;
    return 0;
}

/* The row of (dbi, id), loaded when missing. */
static int row_get(reel_views_t *v, int dbi, uint64_t id, row_t **out)
{
    reel_views_rows_t *r = v->rows;
    uint32_t slot;
    REEL_ASSERT(cached_dbi(dbi));
    REEL_ASSERT(!r->flushing);
    *out = row_find(r, dbi, id, &slot);
    return *out != NULL ? 0 : row_load(v, r, dbi, id, slot, out);
}

int reel__vrow_get(reel_views_t *v, MDB_txn *txn, int dbi, uint64_t id, MDB_val *out)
{
    reel_views_rows_t *r = v->rows;
    uint8_t key[8];
    row_t *w;
    uint32_t slot;
    int rc;
    if (!reel__vrows_active(v, txn)) /* another txn: LMDB */
        goto lmdb;
    if (r->flushing) { /* the leaderboard's settling reads users: no new rows */
        if ((w = row_find(r, dbi, id, &slot)) == NULL)
            goto lmdb;
    } else if ((rc = row_get(v, dbi, id, &w)) != 0) {
        return rc;
    }
    if (!w->present)
        return REEL_ENOTFOUND;
    *out = (MDB_val){w->len, r->arena + w->off};
    return 0;
lmdb:
    reel__vput_be64(key, id);
    return reel__vdb_get(txn, v->dbi[dbi], key, sizeof key, out);
}

int reel__vrow_put(reel_views_t *v, MDB_txn *txn, int dbi, uint64_t id, const void *d, size_t dl)
{
    reel_views_rows_t *r = v->rows;
    uint8_t key[8];
    row_t *w;
    if (!reel__vrows_active(v, txn)) {
        reel__vput_be64(key, id);
        return reel__vdb_put(txn, v->dbi[dbi], key, sizeof key, d, dl);
    }
    if (dl > UINT16_MAX)
        return REEL_EUSAGE;
    int rc = row_get(v, dbi, id, &w);
    if (rc != 0)
        return rc;
    if (dl > w->cap) {
        if (rows_full(r, dl)) { /* flush, then load the row again */
            if ((rc = rows_flush(v, r, false)) != 0 || (rc = row_get(v, dbi, id, &w)) != 0)
                return rc;
        }
        if (dl > w->cap) {
            uint32_t off = arena_take(r, dl);
            REEL_ASSERT(off != UINT32_MAX); /* rows_full checked */
            w->off = off;
            w->cap = (uint16_t)dl;
        }
    }
    memcpy(r->arena + w->off, d, dl);
    w->len = (uint16_t)dl;
    w->present = 1;
    w->dirty = 1;
    if (id > r->max_id[dbi])
        r->max_id[dbi] = id;
    return 0;
}

int reel__vrow_settle(reel_views_t *v, MDB_txn *txn, uint64_t user)
{
    row_t *w;
    REEL_ASSERT(reel__vrows_active(v, txn));
    int rc = row_get(v, DBI_COUNTS, user, &w);
    if (rc == 0)
        w->settle = 1;
    return rc;
}

uint64_t reel__vrows_max_id(reel_views_t *v, MDB_txn *txn, int dbi)
{
    REEL_ASSERT(cached_dbi(dbi));
    return reel__vrows_active(v, txn) ? v->rows->max_id[dbi] : 0;
}

int reel__vcursor_open(reel_views_t *v, MDB_txn *txn, int dbi, MDB_cursor **cur)
{
    REEL_ASSERT(dbi >= DBI_META && dbi < DBI_COUNT);
    if (cached_dbi(dbi) || buffered_dbi(dbi) || dbi == DBI_LEADERBOARD) {
        int rc = reel__vrows_flush(v, txn);
        if (rc != 0)
            return rc;
    }
    return reel__vmdb(mdb_cursor_open(txn, v->dbi[dbi], cur));
}
