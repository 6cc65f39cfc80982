/*
 * views_idem.c: idempotency keys (the idem and idem_by_time views). The
 * command writer records the first answer to a write that carried an
 * Idempotency-Key as an idempotency.recorded event in the write's own
 * group; this view keeps key -> answer so a repeat within
 * REEL_IDEM_WINDOW_MS is answered from it, across restarts (it is
 * rebuilt from the log like every view). Contract in views.h.
 *
 * Expiry is folded into apply, so it stays deterministic (views.h,
 * invariant 3): each recorded key removes up to IDEM_PRUNE_PER_EVENT
 * entries older than the window, measured at the event's time. Each new
 * entry pays for the removal of an older one, so expired entries never
 * pile up beyond the ones written since the last record.
 */
#include "engine/views_int.h"

#include <string.h>

#include "engine/common.h"

/* idem value: at u64, fingerprint u64, offset u64 (LE), then the answer. */
#define IDEM_FIXED_BYTES 24u
/* Expired entries one idempotency.recorded event removes at most. */
#define IDEM_PRUNE_PER_EVENT 2u

static void time_key(uint64_t at, const char *key, size_t len, uint8_t *out)
{
    reel__vput_be64(out, at);
    memcpy(out + 8, key, len);
}

/* Removes the oldest entry when it is older than the window at now:
 * 1 removed, 0 none due, < 0 error. */
static int prune_one(reel_views_t *v, MDB_txn *txn, uint64_t now)
{
    MDB_cursor *cur;
    MDB_val k, d;
    uint8_t tk[8 + REEL_IDEM_KEY_LEN_MAX];
    int rc = reel__vmdb(mdb_cursor_open(txn, v->dbi[DBI_IDEM_BY_TIME], &cur));
    if (rc != 0)
        return rc;
    rc = reel__vmdb(mdb_cursor_get(cur, &k, &d, MDB_FIRST));
    size_t kl = k.mv_size;
    if (rc == 0 && (kl <= 8 || kl > sizeof tk))
        rc = REEL_ECORRUPT;
    if (rc == 0)
        memcpy(tk, k.mv_data, kl);
    mdb_cursor_close(cur);
    if (rc != 0)
        return rc == REEL_ENOTFOUND ? 0 : rc;
    uint64_t at = reel__vget_be64(tk);
    if (now < REEL_IDEM_WINDOW_MS || at > now - REEL_IDEM_WINDOW_MS)
        return 0;
    if ((rc = reel__vdb_del(txn, v->dbi[DBI_IDEM_BY_TIME], tk, kl)) != 0 ||
        (rc = reel__vdb_del(txn, v->dbi[DBI_IDEM], tk + 8, kl - 8)) != 0)
        return rc;
    return 1;
}

int reel__views_apply_idem(reel_views_t *v, MDB_txn *txn, const reel_event_t *ev)
{
    static _Thread_local uint8_t val[IDEM_FIXED_BYTES + REEL_ANSWER_LEN_MAX];
    uint8_t tk[8 + REEL_IDEM_KEY_LEN_MAX];
    MDB_val old;
    const char *key = ev->key.ptr;
    size_t kl = ev->key.len;
    if (kl == 0 || kl > REEL_IDEM_KEY_LEN_MAX || ev->answer.len > REEL_ANSWER_LEN_MAX)
        return REEL_EUSAGE;
    int rc = reel__vdb_get(txn, v->dbi[DBI_IDEM], key, kl, &old);
    if (rc == 0) { /* a key recorded again (after its window): drop the old time entry */
        if (old.mv_size < IDEM_FIXED_BYTES)
            return REEL_ECORRUPT;
        time_key(reel_load_u64(old.mv_data), key, kl, tk);
        rc = reel__vdb_del(txn, v->dbi[DBI_IDEM_BY_TIME], tk, 8 + kl);
    } else if (rc == REEL_ENOTFOUND) {
        rc = 0;
    }
    if (rc != 0)
        return rc;
    reel_store_u64(val, ev->at);
    reel_store_u64(val + 8, ev->fingerprint);
    reel_store_u64(val + 16, ev->offset);
    if (ev->answer.len)
        memcpy(val + IDEM_FIXED_BYTES, ev->answer.ptr, ev->answer.len);
    time_key(ev->at, key, kl, tk);
    if ((rc = reel__vdb_put(txn, v->dbi[DBI_IDEM], key, kl, val,
                            IDEM_FIXED_BYTES + ev->answer.len)) != 0 ||
        (rc = reel__vdb_put(txn, v->dbi[DBI_IDEM_BY_TIME], tk, 8 + kl, "", 0)) != 0)
        return rc;
    for (unsigned i = 0; i < IDEM_PRUNE_PER_EVENT; i++)
        if ((rc = prune_one(v, txn, ev->at)) <= 0)
            return rc;
    return 0;
}

int reel_views_get_idem(reel_views_txn_t *t, const char *key, size_t len, reel_idem_view_t *out)
{
    MDB_val val;
    if (t == NULL || key == NULL || out == NULL || len == 0 || len > REEL_IDEM_KEY_LEN_MAX)
        return REEL_EUSAGE;
    int rc = reel__vdb_get(t->txn, t->v->dbi[DBI_IDEM], key, len, &val);
    if (rc != 0)
        return rc;
    if (val.mv_size < IDEM_FIXED_BYTES || val.mv_size > IDEM_FIXED_BYTES + REEL_ANSWER_LEN_MAX)
        return REEL_ECORRUPT;
    const uint8_t *p = val.mv_data;
    out->at = reel_load_u64(p);
    out->fingerprint = reel_load_u64(p + 8);
    out->offset = reel_load_u64(p + 16);
    out->answer_len = (uint32_t)(val.mv_size - IDEM_FIXED_BYTES);
    out->answer = (const char *)p + IDEM_FIXED_BYTES;
    return 0;
}
