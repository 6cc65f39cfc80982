/*
 * event.c: the event schemas, and the encoder, decoder and JSON writer
 * that walk them (event.h has the contract and FORMAT.md the bytes).
 */
#include "engine/event.h"
#include "engine/common.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef enum field_kind {
    K_ID,     /* u64 in 1..REEL_ID_MAX */
    K_ID_OPT, /* u64 in 0..REEL_ID_MAX, 0 written as JSON null */
    K_U64,
    K_BOOL,
    K_STR,
    K_IDS,  /* cameos */
    K_STRS, /* tags */
    K_VEC,  /* embedding */
} field_kind_t;

typedef struct field_def {
    const char *json;   /* name in the JSON form */
    field_kind_t kind;
    uint16_t off;       /* offsetof(reel_event_t, ...) */
    uint16_t len_max;   /* K_STR: bytes */
} field_def_t;

#define FIELD(json, kind, member, len_max) {json, kind, offsetof(reel_event_t, member), len_max}

enum field_id {
    F_USER_ID, F_AUTHOR, F_OWNER, F_TARGET, F_GRANTEE, F_POST, F_GEN, F_GEN_OPT, F_COMMENT,
    F_REPLY_TO, F_REMIX_OF, F_REMIX_ROOT, F_INVITED_BY, F_WATCH_MS, F_DURATION_MS,
    F_LEASE_UNTIL, F_ATTEMPT, F_COMPLETED, F_PUBLISH, F_RETRYABLE, F_HANDLE, F_DISPLAY_NAME,
    F_CODE, F_INVITE_CODE, F_ASSET, F_POLICY, F_PROMPT, F_VIDEO_URI, F_WORKER, F_REASON,
    F_TEXT, F_KIND, F_VISIBILITY, F_CAMEOS, F_TAGS, F_EMBEDDING, F_KEY, F_FINGERPRINT, F_ANSWER,
    F_COUNT
};

static const field_def_t fields[F_COUNT] = {
    [F_USER_ID] = FIELD("user_id", K_ID, user, 0),
    [F_AUTHOR] = FIELD("author", K_ID, user, 0),
    [F_OWNER] = FIELD("owner", K_ID, user, 0),
    [F_TARGET] = FIELD("target", K_ID, target, 0),
    [F_GRANTEE] = FIELD("grantee", K_ID, target, 0),
    [F_POST] = FIELD("post_id", K_ID, post, 0),
    [F_GEN] = FIELD("generation_id", K_ID, generation, 0),
    [F_GEN_OPT] = FIELD("generation_id", K_ID_OPT, generation, 0),
    [F_COMMENT] = FIELD("comment_id", K_ID, comment, 0),
    [F_REPLY_TO] = FIELD("reply_to", K_ID_OPT, reply_to, 0),
    [F_REMIX_OF] = FIELD("remix_of", K_ID_OPT, remix_of, 0),
    [F_REMIX_ROOT] = FIELD("remix_root", K_ID_OPT, remix_root, 0),
    [F_INVITED_BY] = FIELD("invited_by", K_ID_OPT, invited_by, 0),
    [F_WATCH_MS] = FIELD("watch_ms", K_U64, watch_ms, 0),
    [F_DURATION_MS] = FIELD("duration_ms", K_U64, duration_ms, 0),
    [F_LEASE_UNTIL] = FIELD("lease_until", K_U64, lease_until, 0),
    [F_ATTEMPT] = FIELD("attempt", K_U64, attempt, 0),
    [F_COMPLETED] = FIELD("completed", K_BOOL, completed, 0),
    [F_PUBLISH] = FIELD("publish", K_BOOL, publish, 0),
    [F_RETRYABLE] = FIELD("retryable", K_BOOL, retryable, 0),
    [F_HANDLE] = FIELD("handle", K_STR, handle, REEL_HANDLE_LEN_MAX),
    [F_DISPLAY_NAME] = FIELD("display_name", K_STR, display_name, REEL_NAME_LEN_MAX),
    [F_CODE] = FIELD("code", K_STR, code, REEL_SHORT_LEN_MAX),
    [F_INVITE_CODE] = FIELD("invite_code", K_STR, code, REEL_SHORT_LEN_MAX),
    [F_ASSET] = FIELD("asset", K_STR, asset, REEL_URI_LEN_MAX),
    [F_POLICY] = FIELD("policy", K_STR, policy, REEL_SHORT_LEN_MAX),
    [F_PROMPT] = FIELD("prompt", K_STR, prompt, REEL_PROMPT_LEN_MAX),
    [F_VIDEO_URI] = FIELD("video_uri", K_STR, video_uri, REEL_URI_LEN_MAX),
    [F_WORKER] = FIELD("worker", K_STR, worker, REEL_SHORT_LEN_MAX),
    [F_REASON] = FIELD("reason", K_STR, reason, REEL_TEXT_LEN_MAX),
    [F_TEXT] = FIELD("text", K_STR, text, REEL_TEXT_LEN_MAX),
    [F_KIND] = FIELD("kind", K_STR, kind, REEL_SHORT_LEN_MAX),
    [F_VISIBILITY] = FIELD("visibility", K_STR, visibility, REEL_SHORT_LEN_MAX),
    [F_CAMEOS] = FIELD("cameos", K_IDS, cameos, 0),
    [F_TAGS] = FIELD("tags", K_STRS, tags, REEL_TAG_LEN_MAX),
    [F_EMBEDDING] = FIELD("embedding", K_VEC, embedding, 0),
    [F_KEY] = FIELD("key", K_STR, key, REEL_IDEM_KEY_LEN_MAX),
    [F_FINGERPRINT] = FIELD("fingerprint", K_U64, fingerprint, 0),
    [F_ANSWER] = FIELD("answer", K_STR, answer, REEL_ANSWER_LEN_MAX),
};

#define SCHEMA_FIELDS_MAX 12
typedef struct schema {
    const char *name;
    uint8_t n;
    uint8_t f[SCHEMA_FIELDS_MAX];
} schema_t;

#define S(...) sizeof((uint8_t[]){__VA_ARGS__}), {__VA_ARGS__}

/* The catalogue. Field order is the encoding order: append new fields at
 * the end of a schema, with a new REEL_EVENT_VERSION. */
static const schema_t schemas[REEL_EV_MAX + 1] = {
    [REEL_EV_USER_CREATED] = {"user.created", S(F_USER_ID, F_HANDLE, F_DISPLAY_NAME, F_INVITED_BY, F_INVITE_CODE)},
    [REEL_EV_USER_UPDATED] = {"user.updated", S(F_USER_ID, F_DISPLAY_NAME)},
    [REEL_EV_USER_DELETED] = {"user.deleted", S(F_USER_ID)},
    [REEL_EV_INVITE_ISSUED] = {"invite.issued", S(F_USER_ID, F_CODE)},
    [REEL_EV_FOLLOW_CREATED] = {"follow.created", S(F_USER_ID, F_TARGET)},
    [REEL_EV_FOLLOW_REMOVED] = {"follow.removed", S(F_USER_ID, F_TARGET, F_REASON)},
    [REEL_EV_BLOCK_CREATED] = {"block.created", S(F_USER_ID, F_TARGET)},
    [REEL_EV_BLOCK_REMOVED] = {"block.removed", S(F_USER_ID, F_TARGET)},
    [REEL_EV_CAMEO_REGISTERED] = {"cameo.registered", S(F_USER_ID, F_ASSET)},
    [REEL_EV_CAMEO_DELETED] = {"cameo.deleted", S(F_USER_ID)},
    [REEL_EV_CAMEO_POLICY_SET] = {"cameo.policy_set", S(F_USER_ID, F_POLICY)},
    [REEL_EV_CONSENT_GRANTED] = {"consent.granted", S(F_OWNER, F_GRANTEE)},
    [REEL_EV_CONSENT_REVOKED] = {"consent.revoked", S(F_OWNER, F_GRANTEE)},
    [REEL_EV_GENERATION_REQUESTED] = {"generation.requested", S(F_GEN, F_USER_ID, F_PROMPT, F_CAMEOS, F_REMIX_OF, F_TAGS)},
    [REEL_EV_GENERATION_CLAIMED] = {"generation.claimed", S(F_GEN, F_WORKER, F_ATTEMPT, F_LEASE_UNTIL)},
    [REEL_EV_GENERATION_HEARTBEAT] = {"generation.heartbeat", S(F_GEN, F_WORKER, F_LEASE_UNTIL)},
    [REEL_EV_GENERATION_COMPLETED] = {"generation.completed", S(F_GEN, F_WORKER, F_POST, F_VIDEO_URI, F_DURATION_MS, F_PUBLISH, F_EMBEDDING)},
    [REEL_EV_GENERATION_FAILED] = {"generation.failed", S(F_GEN, F_WORKER, F_REASON, F_RETRYABLE)},
    [REEL_EV_GENERATION_EXPIRED] = {"generation.expired", S(F_GEN, F_WORKER)},
    [REEL_EV_GENERATION_CANCELLED] = {"generation.cancelled", S(F_GEN, F_REASON)},
    [REEL_EV_POST_CREATED] = {"post.created", S(F_POST, F_AUTHOR, F_VIDEO_URI, F_PROMPT, F_TAGS, F_EMBEDDING, F_CAMEOS, F_REMIX_OF, F_REMIX_ROOT, F_VISIBILITY, F_GEN_OPT)},
    [REEL_EV_POST_PUBLISHED] = {"post.published", S(F_POST)},
    [REEL_EV_POST_DELETED] = {"post.deleted", S(F_POST)},
    [REEL_EV_POST_HIDDEN] = {"post.hidden", S(F_POST, F_REASON)},
    [REEL_EV_LIKE_CREATED] = {"like.created", S(F_USER_ID, F_POST)},
    [REEL_EV_LIKE_REMOVED] = {"like.removed", S(F_USER_ID, F_POST)},
    [REEL_EV_COMMENT_CREATED] = {"comment.created", S(F_COMMENT, F_POST, F_AUTHOR, F_TEXT, F_REPLY_TO)},
    [REEL_EV_COMMENT_DELETED] = {"comment.deleted", S(F_COMMENT)},
    [REEL_EV_VIEW_RECORDED] = {"view.recorded", S(F_USER_ID, F_POST, F_WATCH_MS, F_COMPLETED)},
    [REEL_EV_FEEDBACK_RECORDED] = {"feedback.recorded", S(F_USER_ID, F_POST, F_KIND)},
    [REEL_EV_IDEMPOTENCY_RECORDED] = {"idempotency.recorded", S(F_KEY, F_FINGERPRINT, F_ANSWER)},
};

static const schema_t *schema_of(uint16_t type)
{
    if (type == 0 || type > REEL_EV_MAX || schemas[type].name == NULL)
        return NULL;
    return &schemas[type];
}

const char *reel_event_type_name(uint16_t type)
{
    const schema_t *s = schema_of(type);
    return s ? s->name : NULL;
}

uint16_t reel_event_type_parse(const char *name, size_t len)
{
    for (uint16_t t = 1; t <= REEL_EV_MAX; t++) {
        if (strlen(schemas[t].name) == len && memcmp(schemas[t].name, name, len) == 0)
            return t;
    }
    return REEL_EV_NONE;
}

/* Field accessors through the table's offsets. */
#define AT(ev, def, type) ((type *)((uint8_t *)(ev) + (def)->off))
#define AT_C(ev, def, type) ((const type *)((const uint8_t *)(ev) + (def)->off))

float reel_event_embedding_at(const reel_event_t *ev, uint32_t i)
{
    float f;
    uint32_t bits;
    REEL_ASSERT(i < ev->dim);
    bits = reel_load_u32(ev->embedding + 4u * i);
    memcpy(&f, &bits, sizeof(f));
    return f;
}

/* ---- validation ---- */

/* True when s is well-formed UTF-8 (no overlongs, surrogates or code
 * points past U+10FFFF). */
static bool utf8_ok(const uint8_t *s, uint32_t len)
{
    uint32_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        uint32_t n, cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            n = 1, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            n = 2, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            n = 3, cp = c & 0x07;
        else
            return false;
        if (len - i <= n)
            return false;
        for (uint32_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

bool reel_utf8_valid(const char *s, size_t len)
{
    return len <= UINT32_MAX && utf8_ok((const uint8_t *)s, (uint32_t)len);
}

static bool str_ok(reel_str_t s, uint32_t len_max)
{
    if (s.len > len_max || (s.len > 0 && s.ptr == NULL))
        return false;
    return utf8_ok((const uint8_t *)s.ptr, s.len);
}

static bool vec_ok(const reel_event_t *ev)
{
    if (ev->dim > REEL_DIM_MAX || (ev->dim > 0 && ev->embedding == NULL))
        return false;
    for (uint32_t i = 0; i < ev->dim; i++) {
        float f = reel_event_embedding_at(ev, i);
        if (!isfinite(f))
            return false; /* NaN and infinities have no JSON form */
    }
    return true;
}

static bool field_ok(const reel_event_t *ev, const field_def_t *d)
{
    switch (d->kind) {
    case K_ID:
        return *AT_C(ev, d, uint64_t) >= 1 && *AT_C(ev, d, uint64_t) <= REEL_ID_MAX;
    case K_ID_OPT:
        return *AT_C(ev, d, uint64_t) <= REEL_ID_MAX;
    case K_U64:
        /* JSON-safe, as ids: above 2^53 JavaScript loses precision and
         * above 2^63 jansson cannot read the /v1/log line back. */
        return *AT_C(ev, d, uint64_t) <= REEL_ID_MAX;
    case K_BOOL:
        return true;
    case K_STR:
        return str_ok(*AT_C(ev, d, reel_str_t), d->len_max);
    case K_IDS:
        if (ev->ncameos > REEL_CAMEOS_MAX)
            return false;
        for (uint32_t i = 0; i < ev->ncameos; i++)
            if (ev->cameos[i] < 1 || ev->cameos[i] > REEL_ID_MAX)
                return false;
        return true;
    case K_STRS:
        if (ev->ntags > REEL_TAGS_MAX)
            return false;
        for (uint32_t i = 0; i < ev->ntags; i++)
            if (!str_ok(ev->tags[i], d->len_max))
                return false;
        return true;
    case K_VEC:
        return vec_ok(ev);
    }
    return false;
}

static bool event_ok(const reel_event_t *ev, const schema_t *s)
{
    for (uint8_t i = 0; i < s->n; i++)
        if (!field_ok(ev, &fields[s->f[i]]))
            return false;
    return true;
}

/* ---- encoding ---- */

typedef struct wbuf {
    uint8_t *p;
    size_t len;
    size_t cap; /* 0: count only */
    bool full;
} wbuf_t;

static void put_bytes(wbuf_t *w, const void *src, size_t n)
{
    if (n == 0)
        return; /* src may be NULL (an empty string, no embedding): memcpy must not see it */
    if (w->cap != 0 && !w->full && w->len + n <= w->cap)
        memcpy(w->p + w->len, src, n);
    else if (w->cap != 0)
        w->full = true;
    w->len += n;
}

static void put_varint(wbuf_t *w, uint64_t v)
{
    uint8_t b[10];
    size_t n = 0;
    do {
        b[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        b[n] |= v ? 0x80 : 0;
        n++;
    } while (v);
    put_bytes(w, b, n);
}

static void put_str(wbuf_t *w, reel_str_t s)
{
    put_varint(w, s.len);
    put_bytes(w, s.ptr, s.len);
}

static void put_field(wbuf_t *w, const reel_event_t *ev, const field_def_t *d)
{
    uint8_t b;
    switch (d->kind) {
    case K_ID:
    case K_ID_OPT:
    case K_U64:
        put_varint(w, *AT_C(ev, d, uint64_t));
        break;
    case K_BOOL:
        b = *AT_C(ev, d, bool) ? 1 : 0;
        put_bytes(w, &b, 1);
        break;
    case K_STR:
        put_str(w, *AT_C(ev, d, reel_str_t));
        break;
    case K_IDS:
        put_varint(w, ev->ncameos);
        for (uint32_t i = 0; i < ev->ncameos; i++)
            put_varint(w, ev->cameos[i]);
        break;
    case K_STRS:
        put_varint(w, ev->ntags);
        for (uint32_t i = 0; i < ev->ntags; i++)
            put_str(w, ev->tags[i]);
        break;
    case K_VEC:
        put_varint(w, ev->dim);
        put_bytes(w, ev->embedding, 4u * (size_t)ev->dim);
        break;
    }
}

static void put_event(wbuf_t *w, const reel_event_t *ev, const schema_t *s)
{
    uint8_t version = REEL_EVENT_VERSION;
    put_bytes(w, &version, 1);
    for (uint8_t i = 0; i < s->n; i++)
        put_field(w, ev, &fields[s->f[i]]);
}

size_t reel_event_encoded_size(const reel_event_t *ev)
{
    const schema_t *s = schema_of(ev->type);
    wbuf_t w = {NULL, 0, 0, false};
    REEL_ASSERT(s != NULL);
    put_event(&w, ev, s);
    return w.len;
}

int reel_event_encode(const reel_event_t *ev, uint8_t *buf, size_t cap)
{
    const schema_t *s = schema_of(ev->type);
    if (s == NULL || !event_ok(ev, s))
        return REEL_EUSAGE;
    if (cap == 0)
        return -ENOSPC;
    wbuf_t w = {buf, 0, cap, false};
    put_event(&w, ev, s);
    return w.full ? -ENOSPC : (int)w.len;
}

/* ---- decoding ---- */

typedef struct rbuf {
    const uint8_t *p;
    size_t len;
    size_t pos;
    bool bad;
} rbuf_t;

static uint64_t get_varint(rbuf_t *r)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (r->pos >= r->len) {
            r->bad = true;
            return 0;
        }
        uint8_t b = r->p[r->pos++];
        if (shift == 63 && (b & 0x7e) != 0) {
            r->bad = true; /* more than 64 bits */
            return 0;
        }
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            if (b == 0 && shift > 0) {
                r->bad = true; /* not minimal: one value, one encoding */
                return 0;
            }
            return v;
        }
    }
    r->bad = true;
    return 0;
}

static const uint8_t *get_bytes(rbuf_t *r, uint64_t n)
{
    if (r->bad || n > r->len - r->pos) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p + r->pos;
    r->pos += n;
    return p;
}

static reel_str_t get_str(rbuf_t *r, uint32_t len_max)
{
    reel_str_t s = {NULL, 0};
    uint64_t n = get_varint(r);
    if (n > len_max) {
        r->bad = true;
        return s;
    }
    s.ptr = (const char *)get_bytes(r, n);
    s.len = s.ptr ? (uint32_t)n : 0;
    if (s.ptr == NULL || !utf8_ok((const uint8_t *)s.ptr, s.len))
        r->bad = true;
    return s;
}

static uint64_t get_count(rbuf_t *r, uint64_t max)
{
    uint64_t n = get_varint(r);
    if (n > max)
        r->bad = true;
    return r->bad ? 0 : n;
}

static void get_field(rbuf_t *r, reel_event_t *ev, const field_def_t *d)
{
    const uint8_t *b;
    switch (d->kind) {
    case K_ID:
    case K_ID_OPT:
    case K_U64:
        *AT(ev, d, uint64_t) = get_varint(r);
        break;
    case K_BOOL:
        b = get_bytes(r, 1);
        if (b != NULL && *b > 1)
            r->bad = true;
        *AT(ev, d, bool) = b != NULL && *b == 1;
        break;
    case K_STR:
        *AT(ev, d, reel_str_t) = get_str(r, d->len_max);
        break;
    case K_IDS:
        ev->ncameos = (uint32_t)get_count(r, REEL_CAMEOS_MAX);
        for (uint32_t i = 0; i < ev->ncameos; i++)
            ev->cameos[i] = get_varint(r);
        break;
    case K_STRS:
        ev->ntags = (uint32_t)get_count(r, REEL_TAGS_MAX);
        for (uint32_t i = 0; i < ev->ntags; i++)
            ev->tags[i] = get_str(r, d->len_max);
        break;
    case K_VEC:
        ev->dim = (uint32_t)get_count(r, REEL_DIM_MAX);
        ev->embedding = ev->dim ? get_bytes(r, 4u * (uint64_t)ev->dim) : NULL;
        break;
    }
}

int reel_event_decode(uint16_t type, const uint8_t *payload, size_t len, reel_event_t *ev)
{
    const schema_t *s = schema_of(type);
    rbuf_t r = {payload, len, 0, false};
    memset(ev, 0, sizeof(*ev));
    if (s == NULL || len == 0)
        return REEL_ECORRUPT;
    if (payload[0] != REEL_EVENT_VERSION)
        return REEL_EVERSION;
    r.pos = 1;
    ev->type = type;
    for (uint8_t i = 0; i < s->n && !r.bad; i++)
        get_field(&r, ev, &fields[s->f[i]]);
    if (r.bad || r.pos != len || !event_ok(ev, s))
        return REEL_ECORRUPT;
    return 0;
}

/* ---- JSON ---- */

typedef struct jbuf {
    char *p;
    size_t len;
    size_t cap;
    bool full;
} jbuf_t;

static void j_raw(jbuf_t *j, const char *s, size_t n)
{
    if (j->full || j->len + n + 1 > j->cap) {
        j->full = true;
        return;
    }
    memcpy(j->p + j->len, s, n);
    j->len += n;
    j->p[j->len] = '\0';
}

/* Decimal digits of v (every integer of every event that /v1/log, reel
 * dump and exports write). */
static void j_fmt_u64(jbuf_t *j, uint64_t v)
{
    char b[REEL_U64_DIGITS_MAX];
    size_t i = reel_u64_digits(b, v);
    j_raw(j, b + i, sizeof(b) - i);
}

static void j_str(jbuf_t *j, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    j_raw(j, "\"", 1);
    size_t run = 0; /* bytes that need no escape, copied in one go */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        j_raw(j, s + run, i - run);
        run = i + 1;
        char esc[6] = {'\\', (char)c, 0, 0, 0, 0};
        if (c < 0x20) {
            esc[1] = 'u', esc[2] = '0', esc[3] = '0', esc[4] = hex[c >> 4], esc[5] = hex[c & 15];
            j_raw(j, esc, 6);
        } else {
            j_raw(j, esc, 2);
        }
    }
    j_raw(j, s + run, n - run);
    j_raw(j, "\"", 1);
}

static void j_key(jbuf_t *j, const char *key)
{
    j_raw(j, ",\"", 2);
    j_raw(j, key, strlen(key));
    j_raw(j, "\":", 2);
}

static void j_vec(jbuf_t *j, const reel_event_t *ev)
{
    j_raw(j, "[", 1);
    for (uint32_t i = 0; i < ev->dim; i++) {
        char b[32];
        int n = snprintf(b, sizeof(b), "%s%.9g", i ? "," : "", (double)reel_event_embedding_at(ev, i));
        j_raw(j, b, (size_t)n);
    }
    j_raw(j, "]", 1);
}

static void j_field(jbuf_t *j, const reel_event_t *ev, const field_def_t *d)
{
    uint64_t v;
    reel_str_t s;
    j_key(j, d->json);
    switch (d->kind) {
    case K_ID_OPT:
        if ((v = *AT_C(ev, d, uint64_t)) == 0) {
            j_raw(j, "null", 4);
            break;
        }
        j_fmt_u64(j, v);
        break;
    case K_ID:
    case K_U64:
        j_fmt_u64(j, *AT_C(ev, d, uint64_t));
        break;
    case K_BOOL:
        j_raw(j, *AT_C(ev, d, bool) ? "true" : "false", *AT_C(ev, d, bool) ? 4 : 5);
        break;
    case K_STR:
        s = *AT_C(ev, d, reel_str_t);
        j_str(j, s.ptr ? s.ptr : "", s.len);
        break;
    case K_IDS:
        j_raw(j, "[", 1);
        for (uint32_t i = 0; i < ev->ncameos; i++) {
            if (i)
                j_raw(j, ",", 1);
            j_fmt_u64(j, ev->cameos[i]);
        }
        j_raw(j, "]", 1);
        break;
    case K_STRS:
        j_raw(j, "[", 1);
        for (uint32_t i = 0; i < ev->ntags; i++) {
            if (i)
                j_raw(j, ",", 1);
            j_str(j, ev->tags[i].ptr ? ev->tags[i].ptr : "", ev->tags[i].len);
        }
        j_raw(j, "]", 1);
        break;
    case K_VEC:
        if (ev->dim == 0)
            j_raw(j, "null", 4);
        else
            j_vec(j, ev);
        break;
    }
}

int reel_event_to_json(const reel_event_t *ev, char *out, size_t cap)
{
    const schema_t *s = schema_of(ev->type);
    jbuf_t j = {out, 0, cap, cap == 0};
    REEL_ASSERT(s != NULL);
    j_raw(&j, "{\"offset\":", 10);
    j_fmt_u64(&j, ev->offset);
    j_raw(&j, ",\"type\":", 8);
    j_str(&j, s->name, strlen(s->name));
    j_raw(&j, ",\"at\":", 6);
    j_fmt_u64(&j, ev->at);
    for (uint8_t i = 0; i < s->n; i++)
        j_field(&j, ev, &fields[s->f[i]]);
    j_raw(&j, "}", 1);
    return j.full ? -ENOSPC : (int)j.len;
}
