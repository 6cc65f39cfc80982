/*
 * views_post.c: what a post says (its video, prompt, tags, cameos and
 * embedding: the post_bodies view) and the friends index, kept beside the
 * counters of views.c. Contract in views.h; layouts below and in its
 * key table.
 */
#include "engine/views_int.h"

#include <string.h>

#include "engine/common.h"

/* A post_bodies value: video_uri_len u16, prompt_len u16, ntags u8,
 * ncameos u8, dim u16 (LE); then cameos (u64 LE each), video_uri bytes,
 * prompt bytes, tags (u8 length + bytes each), embedding (dim float32 LE). */
#define BODY_FIXED_BYTES 8u
#define BODY_VALUE_MAX                                                                    \
    (BODY_FIXED_BYTES + 8u * REEL_CAMEOS_MAX + REEL_URI_LEN_MAX + REEL_PROMPT_LEN_MAX + \
     REEL_TAGS_MAX * (1u + REEL_TAG_LEN_MAX) + 4u * REEL_DIM_MAX)
_Static_assert(REEL_URI_LEN_MAX <= UINT16_MAX && REEL_PROMPT_LEN_MAX <= UINT16_MAX,
               "lengths fit a u16");
_Static_assert(REEL_DIM_MAX <= UINT16_MAX, "dim fits a u16");

int reel__views_post_body_put(reel_views_t *v, MDB_txn *txn, const reel_event_t *ev)
{
    static _Thread_local uint8_t val[BODY_VALUE_MAX];
    uint8_t key[8];
    if (ev->video_uri.len > REEL_URI_LEN_MAX || ev->prompt.len > REEL_PROMPT_LEN_MAX ||
        ev->ntags > REEL_TAGS_MAX || ev->ncameos > REEL_CAMEOS_MAX || ev->dim > REEL_DIM_MAX)
        return REEL_EUSAGE;
    reel_store_u16(val, (uint16_t)ev->video_uri.len);
    reel_store_u16(val + 2, (uint16_t)ev->prompt.len);
    val[4] = (uint8_t)ev->ntags;
    val[5] = (uint8_t)ev->ncameos;
    reel_store_u16(val + 6, (uint16_t)ev->dim);
    size_t n = BODY_FIXED_BYTES;
    for (uint32_t i = 0; i < ev->ncameos; i++, n += 8)
        reel_store_u64(val + n, ev->cameos[i]);
    if (ev->video_uri.len)
        memcpy(val + n, ev->video_uri.ptr, ev->video_uri.len);
    n += ev->video_uri.len;
    if (ev->prompt.len)
        memcpy(val + n, ev->prompt.ptr, ev->prompt.len);
    n += ev->prompt.len;
    for (uint32_t i = 0; i < ev->ntags; i++) {
        if (ev->tags[i].len > REEL_TAG_LEN_MAX)
            return REEL_EUSAGE;
        val[n++] = (uint8_t)ev->tags[i].len;
        memcpy(val + n, ev->tags[i].ptr, ev->tags[i].len);
        n += ev->tags[i].len;
    }
    if (ev->dim) {
        memcpy(val + n, ev->embedding, 4u * ev->dim);
        n += 4u * ev->dim;
    }
    REEL_ASSERT(n <= sizeof val);
    reel__vput_be64(key, ev->post);
    return reel__vdb_put(txn, v->dbi[DBI_POST_BODIES], key, sizeof key, val, n);
}

int reel__views_post_body_del(reel_views_t *v, MDB_txn *txn, uint64_t post)
{
    uint8_t key[8];
    reel__vput_be64(key, post);
    return reel__vdb_del(txn, v->dbi[DBI_POST_BODIES], key, sizeof key);
}

/* Reads n bytes at *at of a value of len bytes, or fails. */
static const uint8_t *take(const uint8_t *p, size_t len, size_t *at, size_t n)
{
    if (n > len - *at)
        return NULL;
    const uint8_t *r = p + *at;
    *at += n;
    return r;
}

static int body_decode(const MDB_val *val, reel_post_body_t *out)
{
    const uint8_t *p = val->mv_data, *q;
    size_t len = val->mv_size, at = BODY_FIXED_BYTES;
    if (len < BODY_FIXED_BYTES)
        return REEL_ECORRUPT;
    out->video_uri_len = reel_load_u16(p);
    out->prompt_len = reel_load_u16(p + 2);
    out->ntags = p[4];
    out->ncameos = p[5];
    out->dim = reel_load_u16(p + 6);
    if (out->ntags > REEL_TAGS_MAX || out->ncameos > REEL_CAMEOS_MAX || out->dim > REEL_DIM_MAX)
        return REEL_ECORRUPT;
    for (uint32_t i = 0; i < out->ncameos; i++) {
        if ((q = take(p, len, &at, 8)) == NULL)
            return REEL_ECORRUPT;
        out->cameos[i] = reel_load_u64(q);
    }
    if ((q = take(p, len, &at, out->video_uri_len)) == NULL)
        return REEL_ECORRUPT;
    out->video_uri = (const char *)q;
    if ((q = take(p, len, &at, out->prompt_len)) == NULL)
        return REEL_ECORRUPT;
    out->prompt = (const char *)q;
    for (uint32_t i = 0; i < out->ntags; i++) {
        if ((q = take(p, len, &at, 1)) == NULL)
            return REEL_ECORRUPT;
        uint32_t tl = *q;
        if ((q = take(p, len, &at, tl)) == NULL)
            return REEL_ECORRUPT;
        out->tags[i] = (reel_str_t){(const char *)q, tl};
    }
    if ((q = take(p, len, &at, 4u * out->dim)) == NULL || at != len)
        return REEL_ECORRUPT;
    out->embedding = q;
    return 0;
}

int reel_views_get_post_body(reel_views_txn_t *t, uint64_t id, reel_post_body_t *out)
{
    uint8_t key[8];
    MDB_val val;
    if (t == NULL || out == NULL || id == 0)
        return REEL_EUSAGE;
    memset(out, 0, sizeof *out);
    reel__vput_be64(key, id);
    int rc = reel__vdb_get(t->txn, t->v->dbi[DBI_POST_BODIES], key, sizeof key, &val);
    return rc != 0 ? rc : body_decode(&val, out);
}

float reel_post_body_embedding_at(const reel_post_body_t *b, uint32_t i)
{
    REEL_ASSERT(i < b->dim);
    float f;
    uint32_t u = reel_load_u32(b->embedding + 4u * i);
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ---- friends ---- */

int reel__views_friend_set(reel_views_t *v, MDB_txn *txn, uint64_t a, uint64_t b, uint64_t since,
                           bool create)
{
    uint8_t ka[24], kb[24];
    reel__vput_be64(ka, a);
    reel__vput_be64(ka + 8, ~since);
    reel__vput_be64(ka + 16, b);
    reel__vput_be64(kb, b);
    reel__vput_be64(kb + 8, ~since);
    reel__vput_be64(kb + 16, a);
    MDB_dbi dbi = v->dbi[DBI_FRIENDS];
    int rc;
    if (create) {
        if ((rc = reel__vdb_put(txn, dbi, ka, 24, "", 0)) != 0)
            return rc;
        return reel__vdb_put(txn, dbi, kb, 24, "", 0);
    }
    if ((rc = reel__vdb_del(txn, dbi, ka, 24)) != 0)
        return rc;
    return reel__vdb_del(txn, dbi, kb, 24);
}
