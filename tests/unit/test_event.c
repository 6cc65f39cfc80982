/*
 * test_event.c: the event codec (engine/event.h).
 *
 * The test keeps its own description of the format, written from
 * FORMAT.md ("Events", drafted in docs/events-format.md) and not from
 * event.c: the fields of every type in
 * encoding order (`expect_schema`; pinned, because reordering a schema
 * makes every existing log unreadable), each field's kind and byte limit
 * (`tfields`), and a small independent encoder (`spec_encode`). Method:
 *  - for every type, populated events (maximal: every string at its limit,
 *    16 tags, 8 cameos, 64 dimensions; edge content: quotes, backslashes,
 *    control bytes, NUL, 2- to 4-byte UTF-8; minimal: empty and null; and
 *    random ones) must encode to exactly the independent encoder's bytes,
 *    decode back field for field, re-encode to the same bytes, and give
 *    JSON that jansson parses back to the same values;
 *  - malformed payloads derived from valid ones (every truncation, every
 *    wrong version byte, trailing bytes, each field replaced by a bad
 *    encoding) are refused with the documented error, as are invalid
 *    events by the encoder;
 *  - buffers that are too small give -ENOSPC and are never written past
 *    their cap;
 *  - random bytes and mutations of valid payloads never crash the decoder
 *    (payloads sit in heap blocks of their exact size, so the sanitizer
 *    build catches any over-read), and whatever it accepts re-encodes to
 *    the same bytes: the encoding is canonical, one event, one byte string.
 */
#include <criterion/criterion.h>
#include <jansson.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/common.h"
#include "engine/event.h"
#include "tests/harness.h"

TestSuite(event, .timeout = 240);

#define BUF_CAP (64u << 10)   /* any valid encoding fits (about 13 KiB at most) */
#define JSON_CAP (256u << 10) /* any valid event's JSON fits (escapes are 6x) */
#define ARENA_BYTES (48u << 10)

/* ---- the test's description of the format ---- */

typedef enum tkind { T_ID, T_ID_OPT, T_U64, T_BOOL, T_STR, T_IDS, T_STRS, T_VEC } tkind_t;

typedef struct tfield {
    const char *json; /* the JSON name */
    tkind_t kind;
    size_t off;       /* offsetof(reel_event_t, member) */
    uint32_t len_max; /* T_STR, T_STRS: bytes of one string */
} tfield_t;

#define TF(json, kind, member, len_max) {json, kind, offsetof(reel_event_t, member), len_max}

static const tfield_t tfields[] = {
    TF("user_id", T_ID, user, 0),
    TF("author", T_ID, user, 0),
    TF("owner", T_ID, user, 0),
    TF("target", T_ID, target, 0),
    TF("grantee", T_ID, target, 0),
    TF("post_id", T_ID, post, 0),
    TF("generation_id", T_ID, generation, 0),
    TF("comment_id", T_ID, comment, 0),
    TF("reply_to", T_ID, reply_to, 0),
    TF("remix_of", T_ID, remix_of, 0),
    TF("remix_root", T_ID, remix_root, 0),
    TF("invited_by", T_ID, invited_by, 0),
    TF("watch_ms", T_U64, watch_ms, 0),
    TF("duration_ms", T_U64, duration_ms, 0),
    TF("lease_until", T_U64, lease_until, 0),
    TF("attempt", T_U64, attempt, 0),
    TF("completed", T_BOOL, completed, 0),
    TF("publish", T_BOOL, publish, 0),
    TF("retryable", T_BOOL, retryable, 0),
    TF("handle", T_STR, handle, REEL_HANDLE_LEN_MAX),
    TF("display_name", T_STR, display_name, REEL_NAME_LEN_MAX),
    TF("code", T_STR, code, REEL_SHORT_LEN_MAX),
    TF("invite_code", T_STR, code, REEL_SHORT_LEN_MAX),
    TF("asset", T_STR, asset, REEL_URI_LEN_MAX),
    TF("policy", T_STR, policy, REEL_SHORT_LEN_MAX),
    TF("prompt", T_STR, prompt, REEL_PROMPT_LEN_MAX),
    TF("video_uri", T_STR, video_uri, REEL_URI_LEN_MAX),
    TF("worker", T_STR, worker, REEL_SHORT_LEN_MAX),
    /* event.c's table gives reasons the text limit (event.h's comment on
     * REEL_SHORT_LEN_MAX lists them as short): the test pins the table. */
    TF("reason", T_STR, reason, REEL_TEXT_LEN_MAX),
    TF("text", T_STR, text, REEL_TEXT_LEN_MAX),
    TF("kind", T_STR, kind, REEL_SHORT_LEN_MAX),
    TF("visibility", T_STR, visibility, REEL_SHORT_LEN_MAX),
    TF("cameos", T_IDS, cameos, 0),
    TF("tags", T_STRS, tags, REEL_TAG_LEN_MAX),
    TF("embedding", T_VEC, embedding, 0),
    TF("key", T_STR, key, REEL_IDEM_KEY_LEN_MAX),
    TF("fingerprint", T_U64, fingerprint, 0),
    TF("answer", T_STR, answer, REEL_ANSWER_LEN_MAX),
};

/* Fields of each type in encoding order; '?' marks an optional id (0 is
 * "none", JSON null). This is the on-disk format: it only ever grows at
 * the end of a schema, with a new REEL_EVENT_VERSION. */
static const char *const expect_schema[REEL_EV_MAX + 1] = {
    [REEL_EV_USER_CREATED] = "user_id handle display_name invited_by? invite_code",
    [REEL_EV_USER_UPDATED] = "user_id display_name",
    [REEL_EV_USER_DELETED] = "user_id",
    [REEL_EV_INVITE_ISSUED] = "user_id code",
    [REEL_EV_FOLLOW_CREATED] = "user_id target",
    [REEL_EV_FOLLOW_REMOVED] = "user_id target reason",
    [REEL_EV_BLOCK_CREATED] = "user_id target",
    [REEL_EV_BLOCK_REMOVED] = "user_id target",
    [REEL_EV_CAMEO_REGISTERED] = "user_id asset",
    [REEL_EV_CAMEO_DELETED] = "user_id",
    [REEL_EV_CAMEO_POLICY_SET] = "user_id policy",
    [REEL_EV_CONSENT_GRANTED] = "owner grantee",
    [REEL_EV_CONSENT_REVOKED] = "owner grantee",
    [REEL_EV_GENERATION_REQUESTED] = "generation_id user_id prompt cameos remix_of? tags",
    [REEL_EV_GENERATION_CLAIMED] = "generation_id worker attempt lease_until",
    [REEL_EV_GENERATION_HEARTBEAT] = "generation_id worker lease_until",
    [REEL_EV_GENERATION_COMPLETED] =
        "generation_id worker post_id video_uri duration_ms publish embedding",
    [REEL_EV_GENERATION_FAILED] = "generation_id worker reason retryable",
    [REEL_EV_GENERATION_EXPIRED] = "generation_id worker",
    [REEL_EV_GENERATION_CANCELLED] = "generation_id reason",
    [REEL_EV_POST_CREATED] = "post_id author video_uri prompt tags embedding cameos remix_of? "
                             "remix_root? visibility generation_id?",
    [REEL_EV_POST_PUBLISHED] = "post_id",
    [REEL_EV_POST_DELETED] = "post_id",
    [REEL_EV_POST_HIDDEN] = "post_id reason",
    [REEL_EV_LIKE_CREATED] = "user_id post_id",
    [REEL_EV_LIKE_REMOVED] = "user_id post_id",
    [REEL_EV_COMMENT_CREATED] = "comment_id post_id author text reply_to?",
    [REEL_EV_COMMENT_DELETED] = "comment_id",
    [REEL_EV_VIEW_RECORDED] = "user_id post_id watch_ms completed",
    [REEL_EV_FEEDBACK_RECORDED] = "user_id post_id kind",
    [REEL_EV_IDEMPOTENCY_RECORDED] = "key fingerprint answer",
};

#define TS_FIELDS_MAX 12

typedef struct tschema {
    uint16_t type;
    const char *name;
    uint32_t n;
    tfield_t f[TS_FIELDS_MAX];
} tschema_t;

static const tfield_t *tfield_named(const char *name, size_t len)
{
    for (size_t i = 0; i < REEL_ARRAY_LEN(tfields); i++) {
        if (strlen(tfields[i].json) == len && memcmp(tfields[i].json, name, len) == 0)
            return &tfields[i];
    }
    cr_assert_fail("expect_schema names an unknown field %.*s", (int)len, name);
    return NULL;
}

/* The test's schema of a known type, parsed from expect_schema. */
static const tschema_t *tschema(uint16_t type)
{
    static tschema_t cache[REEL_EV_MAX + 1];
    cr_assert(type >= 1 && type <= REEL_EV_MAX, "type %u", type);
    tschema_t *s = &cache[type];
    if (s->type == type)
        return s;
    s->type = type;
    s->name = reel_event_type_name(type);
    cr_assert_not_null(s->name, "type %u has no name", type);
    for (const char *p = expect_schema[type]; *p;) {
        size_t len = strcspn(p, " ?");
        cr_assert(s->n < TS_FIELDS_MAX);
        s->f[s->n] = *tfield_named(p, len);
        p += len;
        if (*p == '?') {
            cr_assert_eq(s->f[s->n].kind, T_ID);
            s->f[s->n].kind = T_ID_OPT;
            p++;
        }
        s->n++;
        p += strspn(p, " ");
    }
    return s;
}

/* Whether the schema uses reel_event_t's member at off. */
static bool schema_uses(const tschema_t *s, size_t off)
{
    for (uint32_t i = 0; i < s->n; i++) {
        if (s->f[i].off == off)
            return true;
    }
    return false;
}

#define MEMBER(ev, f, T) ((T *)((uint8_t *)(ev) + (f)->off))
#define MEMBER_C(ev, f, T) ((const T *)((const uint8_t *)(ev) + (f)->off))

/* ---- the independent encoder ---- */

typedef struct bytes {
    uint8_t *p;
    size_t len;
    size_t cap;
} bytes_t;

static void put(bytes_t *b, const void *src, size_t n)
{
    cr_assert(b->len + n <= b->cap, "test buffer too small (%zu + %zu)", b->len, n);
    if (n > 0)
        memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void put_u8(bytes_t *b, uint8_t v)
{
    put(b, &v, 1);
}

/* Unsigned LEB128, minimal: 7 bits a byte, low group first, the high bit
 * set on every byte but the last. */
static void put_varint(bytes_t *b, uint64_t v)
{
    while (v >= 0x80) {
        put_u8(b, (uint8_t)(v | 0x80));
        v >>= 7;
    }
    put_u8(b, (uint8_t)v);
}

static void put_str(bytes_t *b, reel_str_t s)
{
    put_varint(b, s.len);
    put(b, s.ptr, s.len);
}

static void put_f32(bytes_t *b, float f)
{
    uint32_t bits;
    memcpy(&bits, &f, 4);
    uint8_t le[4] = {(uint8_t)bits, (uint8_t)(bits >> 8), (uint8_t)(bits >> 16),
                     (uint8_t)(bits >> 24)};
    put(b, le, 4);
}

static void spec_field(bytes_t *b, const reel_event_t *ev, const tfield_t *f)
{
    switch (f->kind) {
    case T_ID:
    case T_ID_OPT:
    case T_U64:
        put_varint(b, *MEMBER_C(ev, f, uint64_t));
        break;
    case T_BOOL:
        put_u8(b, *MEMBER_C(ev, f, bool) ? 1 : 0);
        break;
    case T_STR:
        put_str(b, *MEMBER_C(ev, f, reel_str_t));
        break;
    case T_IDS:
        put_varint(b, ev->ncameos);
        for (uint32_t i = 0; i < ev->ncameos; i++)
            put_varint(b, ev->cameos[i]);
        break;
    case T_STRS:
        put_varint(b, ev->ntags);
        for (uint32_t i = 0; i < ev->ntags; i++)
            put_str(b, ev->tags[i]);
        break;
    case T_VEC:
        put_varint(b, ev->dim);
        put(b, ev->embedding, 4u * (size_t)ev->dim);
        break;
    }
}

/* The payload of ev by the format's rules: the version byte, then each
 * field in schema order; field `swap` (when < s->n) is replaced by the raw
 * bytes, so a test can put any malformed field into a valid payload. */
static size_t spec_encode(const reel_event_t *ev, const tschema_t *s, uint32_t swap,
                          const bytes_t *raw, uint8_t *buf, size_t cap)
{
    bytes_t b = {buf, 0, cap};
    put_u8(&b, REEL_EVENT_VERSION);
    for (uint32_t i = 0; i < s->n; i++) {
        if (i == swap)
            put(&b, raw->p, raw->len);
        else
            spec_field(&b, ev, &s->f[i]);
    }
    return b.len;
}

/* ---- events under test, with storage for their strings ---- */

typedef struct tevent {
    reel_event_t ev;
    size_t used;
    char arena[ARENA_BYTES];
    uint8_t emb[4u * (REEL_DIM_MAX + 1)];
} tevent_t;

typedef struct piece {
    const char *s;
    uint8_t n;
} piece_t;

/* Valid UTF-8 that stresses escaping and validation: JSON specials,
 * control bytes (NUL included), and the boundary code points of each
 * sequence length. */
static const piece_t pieces[] = {
    {"a", 1}, {"Z", 1}, {"0", 1}, {"\"", 1}, {"\\", 1}, {"/", 1}, {"\n", 1}, {"\t", 1},
    {"\r", 1}, {"\b", 1}, {"\f", 1}, {"\x01", 1}, {"\x1f", 1}, {"\x7f", 1}, {"\0", 1},
    {" ", 1}, {"\xc3\xa9", 2} /* é */, {"\xc2\x80", 2} /* U+0080 */,
    {"\xdf\xbf", 2} /* U+07FF */, {"\xe0\xa0\x80", 3} /* U+0800 */,
    {"\xe2\x82\xac", 3} /* € */, {"\xed\x9f\xbf", 3} /* U+D7FF */,
    {"\xee\x80\x80", 3} /* U+E000 */, {"\xef\xbf\xbf", 3} /* U+FFFF */,
    {"\xe6\x97\xa5", 3} /* 日 */, {"\xf0\x90\x80\x80", 4} /* U+10000 */,
    {"\xf0\x9f\x98\x80", 4} /* 😀 */, {"\xf4\x8f\xbf\xbf", 4} /* U+10FFFF */,
};

static tevent_t *tevent_new(void)
{
    tevent_t *t = calloc(1, sizeof(*t));
    cr_assert_not_null(t);
    return t;
}

/* A string of exactly len bytes of valid UTF-8 from `pieces`: in turn from
 * seed, or at random when rng is set; 'a' where a piece would not fit. */
static reel_str_t make_str(tevent_t *t, uint32_t len, uint64_t seed, uint64_t *rng)
{
    char *p = t->arena + t->used;
    uint32_t n = 0;
    cr_assert(t->used + len <= ARENA_BYTES);
    for (uint64_t k = seed; n < len; k++) {
        uint64_t i = rng ? reel_test_rand(rng) : k;
        const piece_t *pc = &pieces[i % REEL_ARRAY_LEN(pieces)];
        if (pc->n <= len - n) {
            memcpy(p + n, pc->s, pc->n);
            n += pc->n;
        } else {
            p[n++] = 'a';
        }
    }
    t->used += len;
    return (reel_str_t){len ? p : NULL, len};
}

static void set_float(tevent_t *t, uint32_t i, float f)
{
    uint32_t bits;
    memcpy(&bits, &f, 4);
    reel_store_u32(t->emb + 4u * i, bits);
}

static uint64_t rand_below(uint64_t *rng, uint64_t n)
{
    return reel_test_rand(rng) % n;
}

/* A value of a random bit length in [0, bits], so small and large ones
 * (1, 2, ... 10-byte varints) all come up. */
static uint64_t rand_width(uint64_t *rng, unsigned bits)
{
    unsigned w = (unsigned)rand_below(rng, bits + 1u);
    uint64_t v = reel_test_rand(rng);
    return w == 0 ? 0 : w >= 64 ? v : v & ((1ull << w) - 1);
}

static uint64_t rand_id(uint64_t *rng)
{
    uint64_t v = rand_width(rng, 53);
    if (rand_below(rng, 16) == 0)
        v = REEL_ID_MAX;
    return v == 0 ? 1 : v;
}

static float rand_float(uint64_t *rng)
{
    static const float special[] = {0.0f, -0.0f, -0.5f, 1e-7f, 3.25f, FLT_MAX, -FLT_MAX,
                                    FLT_MIN, 1e-45f, 1.0f, -1.0f, 0.1f};
    if (rand_below(rng, 4) == 0)
        return special[rand_below(rng, REEL_ARRAY_LEN(special))];
    for (;;) {
        uint32_t bits = (uint32_t)reel_test_rand(rng);
        float f;
        memcpy(&f, &bits, 4);
        if (isfinite(f))
            return f;
    }
}

typedef enum fill { FILL_MAX, FILL_EDGE, FILL_MIN, FILL_RANDOM } fill_t;

static const uint64_t edge_ids[] = {1, 127, 128, 255, 16383, 16384, 0xffffffffull,
                                    0x100000000ull, REEL_ID_MAX - 1, REEL_ID_MAX};
static const uint64_t edge_u64[] = {0, 1, 127, 128, 1ull << 32, REEL_ID_MAX - 1, REEL_ID_MAX};
static const float edge_floats[] = {-0.5f, 1e-7f, 3.25f, 0.0f, -0.0f, 1.0f, -1.0f, FLT_MAX,
                                    -FLT_MAX, FLT_MIN, 1e-45f, 0.1f, 123456.789f, -3e38f};

static uint64_t fill_id(fill_t mode, uint32_t i, uint16_t type, uint64_t *rng, bool opt)
{
    switch (mode) {
    case FILL_MAX:
        return REEL_ID_MAX - i; /* the first id of every type is the largest */
    case FILL_EDGE:
        return edge_ids[(i + type) % REEL_ARRAY_LEN(edge_ids)];
    case FILL_MIN:
        return opt ? 0 : 1;
    case FILL_RANDOM:
        return opt && rand_below(rng, 3) == 0 ? 0 : rand_id(rng);
    }
    return 1;
}

static uint64_t fill_u64(fill_t mode, uint32_t i, uint16_t type, uint64_t *rng)
{
    /* At most 2^53 - 1, the JSON-safe bound the codec enforces (test
     * u64_fields_are_json_safe checks the bound itself). */
    switch (mode) {
    case FILL_MAX:
        return REEL_ID_MAX - i;
    case FILL_EDGE:
        return edge_u64[(i + type) % REEL_ARRAY_LEN(edge_u64)];
    case FILL_MIN:
        return 0;
    case FILL_RANDOM:
        return rand_width(rng, 53);
    }
    return 0;
}

static uint32_t fill_len(fill_t mode, uint32_t len_max, uint64_t *rng)
{
    switch (mode) {
    case FILL_MAX:
        return len_max;
    case FILL_EDGE:
        return len_max < 40 ? len_max : 40;
    case FILL_MIN:
        return 0;
    case FILL_RANDOM:
        if (rand_below(rng, 8) == 0)
            return len_max;
        return (uint32_t)rand_below(rng, (rand_below(rng, 2) ? 17 : len_max + 1u));
    }
    return 0;
}

static void fill_ids(tevent_t *t, fill_t mode, uint64_t *rng)
{
    reel_event_t *ev = &t->ev;
    ev->ncameos = mode == FILL_MAX    ? REEL_CAMEOS_MAX
                  : mode == FILL_EDGE ? 3
                  : mode == FILL_MIN  ? 0
                                      : (uint32_t)rand_below(rng, REEL_CAMEOS_MAX + 1);
    for (uint32_t i = 0; i < ev->ncameos; i++)
        ev->cameos[i] = mode == FILL_RANDOM ? rand_id(rng) : edge_ids[(i * 3) % 10];
    if (mode == FILL_MAX) {
        ev->cameos[0] = 1;
        ev->cameos[REEL_CAMEOS_MAX - 1] = REEL_ID_MAX;
    }
}

static void fill_tags(tevent_t *t, fill_t mode, uint64_t *rng)
{
    reel_event_t *ev = &t->ev;
    ev->ntags = mode == FILL_MAX    ? REEL_TAGS_MAX
                : mode == FILL_EDGE ? 4
                : mode == FILL_MIN  ? 0
                                    : (uint32_t)rand_below(rng, REEL_TAGS_MAX + 1);
    for (uint32_t i = 0; i < ev->ntags; i++) {
        uint32_t len = fill_len(mode, REEL_TAG_LEN_MAX, rng);
        if (mode == FILL_EDGE)
            len = (uint32_t[]){0, 1, 20, REEL_TAG_LEN_MAX}[i];
        ev->tags[i] = make_str(t, len, 5u * i, mode == FILL_RANDOM ? rng : NULL);
    }
}

static void fill_vec(tevent_t *t, fill_t mode, uint64_t *rng)
{
    reel_event_t *ev = &t->ev;
    ev->dim = mode == FILL_MAX ? 64 : mode == FILL_EDGE ? REEL_ARRAY_LEN(edge_floats) : 0;
    if (mode == FILL_RANDOM)
        ev->dim = rand_below(rng, 40) == 0 ? REEL_DIM_MAX : (uint32_t)rand_below(rng, 65);
    for (uint32_t i = 0; i < ev->dim; i++) {
        float f = edge_floats[i % REEL_ARRAY_LEN(edge_floats)];
        set_float(t, i, mode == FILL_RANDOM ? rand_float(rng) : f);
    }
    ev->embedding = ev->dim ? t->emb : NULL;
}

static void fill_field(tevent_t *t, const tschema_t *s, uint32_t i, fill_t mode, uint64_t *rng)
{
    const tfield_t *f = &s->f[i];
    switch (f->kind) {
    case T_ID:
    case T_ID_OPT:
        *MEMBER(&t->ev, f, uint64_t) = fill_id(mode, i, s->type, rng, f->kind == T_ID_OPT);
        break;
    case T_U64:
        *MEMBER(&t->ev, f, uint64_t) = fill_u64(mode, i, s->type, rng);
        break;
    case T_BOOL:
        *MEMBER(&t->ev, f, bool) =
            mode == FILL_MAX || (mode == FILL_RANDOM && rand_below(rng, 2));
        break;
    case T_STR:
        *MEMBER(&t->ev, f, reel_str_t) =
            make_str(t, fill_len(mode, f->len_max, rng), 7u * i + s->type,
                     mode == FILL_RANDOM ? rng : NULL);
        break;
    case T_IDS:
        fill_ids(t, mode, rng);
        break;
    case T_STRS:
        fill_tags(t, mode, rng);
        break;
    case T_VEC:
        fill_vec(t, mode, rng);
        break;
    }
}

/* An event of the type with every field of its schema set (and the
 * others zero), per mode. */
static void fill_event(tevent_t *t, uint16_t type, fill_t mode, uint64_t *rng)
{
    const tschema_t *s = tschema(type);
    memset(&t->ev, 0, sizeof(t->ev));
    t->used = 0;
    t->ev.type = type;
    t->ev.offset = mode == FILL_MAX ? (1ull << 62) + type : 1000u + type;
    t->ev.at = mode == FILL_MIN ? 0 : 1700000000000ull + type;
    for (uint32_t i = 0; i < s->n; i++)
        fill_field(t, s, i, mode, rng);
}

/* ---- checks ---- */

static void check_str_eq(reel_str_t a, reel_str_t b, const char *type, const char *field)
{
    cr_assert_eq(a.len, b.len, "%s.%s: length %u, want %u", type, field, a.len, b.len);
    if (a.len > 0)
        cr_assert(memcmp(a.ptr, b.ptr, a.len) == 0, "%s.%s: bytes differ", type, field);
}

static void check_field_eq(const reel_event_t *got, const reel_event_t *want, const tfield_t *f,
                           const char *type)
{
    switch (f->kind) {
    case T_ID:
    case T_ID_OPT:
    case T_U64:
        cr_assert_eq(*MEMBER_C(got, f, uint64_t), *MEMBER_C(want, f, uint64_t), "%s.%s", type,
                     f->json);
        break;
    case T_BOOL:
        cr_assert_eq(*MEMBER_C(got, f, bool), *MEMBER_C(want, f, bool), "%s.%s", type, f->json);
        break;
    case T_STR:
        check_str_eq(*MEMBER_C(got, f, reel_str_t), *MEMBER_C(want, f, reel_str_t), type, f->json);
        break;
    case T_IDS:
        cr_assert_eq(got->ncameos, want->ncameos, "%s.cameos count", type);
        for (uint32_t i = 0; i < got->ncameos; i++)
            cr_assert_eq(got->cameos[i], want->cameos[i], "%s.cameos[%u]", type, i);
        break;
    case T_STRS:
        cr_assert_eq(got->ntags, want->ntags, "%s.tags count", type);
        for (uint32_t i = 0; i < got->ntags; i++)
            check_str_eq(got->tags[i], want->tags[i], type, "tags[i]");
        break;
    case T_VEC:
        cr_assert_eq(got->dim, want->dim, "%s.embedding dim", type);
        cr_assert_eq(got->embedding == NULL, want->embedding == NULL, "%s.embedding", type);
        if (got->dim > 0)
            cr_assert(memcmp(got->embedding, want->embedding, 4u * got->dim) == 0,
                      "%s.embedding bytes", type);
        break;
    }
}

/* Members the schema does not use must be zero after a decode. */
static void check_unused_zero(const reel_event_t *ev, const tschema_t *s)
{
    for (size_t i = 0; i < REEL_ARRAY_LEN(tfields); i++) {
        const tfield_t *f = &tfields[i];
        if (schema_uses(s, f->off))
            continue;
        if (f->kind == T_IDS)
            cr_assert_eq(ev->ncameos, 0, "%s: unused cameos", s->name);
        else if (f->kind == T_STRS)
            cr_assert_eq(ev->ntags, 0, "%s: unused tags", s->name);
        else if (f->kind == T_VEC)
            cr_assert(ev->dim == 0 && ev->embedding == NULL, "%s: unused embedding", s->name);
        else if (f->kind == T_STR)
            cr_assert(MEMBER_C(ev, f, reel_str_t)->ptr == NULL &&
                          MEMBER_C(ev, f, reel_str_t)->len == 0,
                      "%s: unused %s", s->name, f->json);
        else if (f->kind == T_BOOL)
            cr_assert(!*MEMBER_C(ev, f, bool), "%s: unused %s", s->name, f->json);
        else
            cr_assert_eq(*MEMBER_C(ev, f, uint64_t), 0, "%s: unused %s", s->name, f->json);
    }
}

/* Decoded strings and the vector point into the payload (zero-copy). */
static void check_points_into(const reel_event_t *ev, const tschema_t *s, const uint8_t *p,
                              size_t len)
{
    for (uint32_t i = 0; i < s->n; i++) {
        const tfield_t *f = &s->f[i];
        if (f->kind == T_STR) {
            const reel_str_t *str = MEMBER_C(ev, f, reel_str_t);
            cr_assert((const uint8_t *)str->ptr >= p &&
                      (const uint8_t *)str->ptr + str->len <= p + len, "%s.%s outside payload",
                      s->name, f->json);
        }
    }
    if (ev->dim > 0)
        cr_assert(ev->embedding > p && ev->embedding + 4u * ev->dim <= p + len);
}

static void check_json_str(const json_t *v, reel_str_t s, const char *type, const char *field)
{
    cr_assert(json_is_string(v), "%s.%s: not a JSON string", type, field);
    cr_assert_eq(json_string_length(v), s.len, "%s.%s: JSON length", type, field);
    if (s.len > 0)
        cr_assert(memcmp(json_string_value(v), s.ptr, s.len) == 0, "%s.%s: JSON text", type, field);
}

static void check_json_u64(const json_t *v, uint64_t want, const char *type, const char *field)
{
    cr_assert(json_is_integer(v), "%s.%s: not a JSON integer", type, field);
    cr_assert_eq((uint64_t)json_integer_value(v), want, "%s.%s: JSON value", type, field);
}

static void check_json_vec(const json_t *v, const reel_event_t *ev, const char *type)
{
    if (ev->dim == 0) {
        cr_assert(json_is_null(v), "%s.embedding: dim 0 is null", type);
        return;
    }
    cr_assert(json_is_array(v) && json_array_size(v) == ev->dim, "%s.embedding", type);
    for (uint32_t i = 0; i < ev->dim; i++) {
        const json_t *x = json_array_get(v, i);
        float want = reel_event_embedding_at(ev, i);
        cr_assert(json_is_number(x), "%s.embedding[%u]", type, i);
        /* %.9g gives back the float exactly; "-0" reads as 0, equal to -0.0. */
        cr_assert((float)json_number_value(x) == want, "%s.embedding[%u]: %.9g, want %.9g", type,
                  i, json_number_value(x), (double)want);
    }
}

static void check_json_value(const json_t *v, const reel_event_t *ev, const tfield_t *f,
                             const char *type)
{
    switch (f->kind) {
    case T_ID_OPT:
        if (*MEMBER_C(ev, f, uint64_t) == 0) {
            cr_assert(json_is_null(v), "%s.%s: optional id 0 is null", type, f->json);
            break;
        }
        /* fall through */
    case T_ID:
    case T_U64:
        check_json_u64(v, *MEMBER_C(ev, f, uint64_t), type, f->json);
        break;
    case T_BOOL:
        cr_assert(json_is_boolean(v) && json_is_true(v) == *MEMBER_C(ev, f, bool), "%s.%s", type,
                  f->json);
        break;
    case T_STR:
        check_json_str(v, *MEMBER_C(ev, f, reel_str_t), type, f->json);
        break;
    case T_IDS:
        cr_assert(json_is_array(v) && json_array_size(v) == ev->ncameos, "%s.cameos", type);
        for (uint32_t i = 0; i < ev->ncameos; i++)
            check_json_u64(json_array_get(v, i), ev->cameos[i], type, "cameos[i]");
        break;
    case T_STRS:
        cr_assert(json_is_array(v) && json_array_size(v) == ev->ntags, "%s.tags", type);
        for (uint32_t i = 0; i < ev->ntags; i++)
            check_json_str(json_array_get(v, i), ev->tags[i], type, "tags[i]");
        break;
    case T_VEC:
        check_json_vec(v, ev, type);
        break;
    }
}

/* The JSON form: parses, {"offset","type","at", ...fields} in schema
 * order, every value equal to the event's. Returns the text (malloc'd). */
static char *check_json(const reel_event_t *ev, const tschema_t *s)
{
    char *out = malloc(JSON_CAP);
    json_error_t err;
    cr_assert_not_null(out);
    int n = reel_event_to_json(ev, out, JSON_CAP);
    cr_assert(n > 0, "%s: to_json gave %d", s->name, n);
    cr_assert_eq(strlen(out), (size_t)n, "%s: JSON length", s->name);
    for (int i = 0; i < n; i++)
        cr_assert((unsigned char)out[i] >= 0x20, "%s: raw control byte in JSON", s->name);
    json_t *root = json_loadb(out, (size_t)n, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &err);
    cr_assert_not_null(root, "%s: bad JSON (%s at %d): %s", s->name, err.text, err.position, out);
    cr_assert(json_is_object(root));
    cr_assert_eq(json_object_size(root), 3u + s->n, "%s: JSON keys", s->name);
    void *it = json_object_iter(root);
    cr_assert_str_eq(json_object_iter_key(it), "offset");
    check_json_u64(json_object_iter_value(it), ev->offset, s->name, "offset");
    it = json_object_iter_next(root, it);
    cr_assert_str_eq(json_object_iter_key(it), "type");
    cr_assert_str_eq(json_string_value(json_object_iter_value(it)), s->name);
    it = json_object_iter_next(root, it);
    cr_assert_str_eq(json_object_iter_key(it), "at");
    check_json_u64(json_object_iter_value(it), ev->at, s->name, "at");
    for (uint32_t i = 0; i < s->n; i++) {
        it = json_object_iter_next(root, it);
        cr_assert_str_eq(json_object_iter_key(it), s->f[i].json, "%s: key %u", s->name, i);
        check_json_value(json_object_iter_value(it), ev, &s->f[i], s->name);
    }
    json_decref(root);
    return out;
}

static uint8_t *heap_copy(const uint8_t *p, size_t len)
{
    uint8_t *c = malloc(len ? len : 1);
    cr_assert_not_null(c);
    if (len > 0)
        memcpy(c, p, len);
    return c;
}

/* Re-encodes a decoded event: must give back the payload's exact bytes. */
static void check_canonical(const reel_event_t *dec, const uint8_t *p, size_t len,
                            const char *what)
{
    uint8_t *buf = malloc(BUF_CAP);
    cr_assert_not_null(buf);
    cr_assert_eq(reel_event_encoded_size(dec), len, "%s: encoded_size", what);
    int rc = reel_event_encode(dec, buf, BUF_CAP);
    cr_assert_eq(rc, (int)len, "%s: re-encode gave %d, want %zu", what, rc, len);
    cr_assert(memcmp(buf, p, len) == 0, "%s: re-encoding differs (not canonical)", what);
    free(buf);
}

/* The full round trip of a valid event; returns its encoded length. */
static size_t check_roundtrip(const reel_event_t *ev)
{
    const tschema_t *s = tschema(ev->type);
    uint8_t *enc = malloc(BUF_CAP), *spec = malloc(BUF_CAP);
    cr_assert(enc && spec);
    size_t size = reel_event_encoded_size(ev);
    int rc = reel_event_encode(ev, enc, BUF_CAP);
    cr_assert_eq(rc, (int)size, "%s: encode gave %d, encoded_size %zu", s->name, rc, size);
    size_t spec_len = spec_encode(ev, s, UINT32_MAX, NULL, spec, BUF_CAP);
    cr_assert_eq(spec_len, size, "%s: length differs from the format's", s->name);
    cr_assert(memcmp(enc, spec, size) == 0, "%s: bytes differ from the format's", s->name);
    uint8_t *payload = heap_copy(enc, size);
    reel_event_t dec;
    memset(&dec, 0xa5, sizeof(dec));
    rc = reel_event_decode(ev->type, payload, size, &dec);
    cr_assert_eq(rc, 0, "%s: decode gave %d (%s)", s->name, rc, reel_err_name(rc));
    cr_assert_eq(dec.type, ev->type);
    cr_assert(dec.offset == 0 && dec.at == 0, "%s: decode sets offset/at", s->name);
    for (uint32_t i = 0; i < s->n; i++)
        check_field_eq(&dec, ev, &s->f[i], s->name);
    check_unused_zero(&dec, s);
    check_points_into(&dec, s, payload, size);
    check_canonical(&dec, payload, size, s->name);
    dec.offset = ev->offset;
    dec.at = ev->at;
    char *j1 = check_json(ev, s), *j2 = check_json(&dec, s);
    cr_assert_str_eq(j1, j2, "%s: JSON of the decoded event differs", s->name);
    free(j1), free(j2), free(payload), free(spec), free(enc);
    return size;
}

static void expect_decode(uint16_t type, const uint8_t *p, size_t len, int want, const char *what,
                          const char *detail)
{
    uint8_t *c = heap_copy(p, len);
    reel_event_t ev;
    int rc = reel_event_decode(type, c, len, &ev);
    cr_assert_eq(rc, want, "type %u %s (%s): decode gave %d (%s), want %d (%s)", type, what,
                 detail, rc, reel_err_name(rc), want, reel_err_name(want));
    if (rc == 0)
        check_canonical(&ev, c, len, what);
    free(c);
}

static void expect_encode_usage(const reel_event_t *ev, const char *what, const char *detail)
{
    uint8_t buf[64];
    cr_assert_eq(reel_event_encode(ev, buf, sizeof(buf)), REEL_EUSAGE, "%s.%s: encode accepted",
                 what, detail);
}

/* ---- names ---- */

/* Every type has the JSON name the catalogue gives it, and parse is its
 * exact inverse; anything else parses to REEL_EV_NONE. */
Test(event, type_names_round_trip)
{
    static const struct {
        uint16_t num;
        const char *json;
    } map[] = {
#define XX(name, num, json) {num, json},
        REEL_EVENT_MAP(XX)
#undef XX
    };
    cr_assert_eq(REEL_ARRAY_LEN(map), REEL_EV_MAX);
    for (uint16_t t = 1; t <= REEL_EV_MAX; t++) {
        const char *name = reel_event_type_name(t);
        cr_assert_not_null(name, "type %u", t);
        cr_assert_eq(map[t - 1].num, t);
        cr_assert_str_eq(name, map[t - 1].json);
        cr_assert_eq(reel_event_type_parse(name, strlen(name)), t, "%s", name);
        cr_assert_eq(reel_event_type_parse(name, strlen(name) - 1), REEL_EV_NONE, "%s", name);
        char longer[64];
        snprintf(longer, sizeof(longer), "%sx", name);
        cr_assert_eq(reel_event_type_parse(longer, strlen(longer)), REEL_EV_NONE, "%s", longer);
        /* len, not NUL, ends the name. */
        cr_assert_eq(reel_event_type_parse(longer, strlen(name)), t, "%s", name);
        char upper[64];
        snprintf(upper, sizeof(upper), "%s", name);
        upper[0] = (char)(upper[0] - 'a' + 'A');
        cr_assert_eq(reel_event_type_parse(upper, strlen(upper)), REEL_EV_NONE, "%s", upper);
        for (uint16_t u = 1; u < t; u++)
            cr_assert_str_neq(reel_event_type_name(u), name);
    }
    static const char *const bad[] = {"", "user", "user.", ".created", "post_created",
                                      "follow.created ", " follow.created", "event.unknown"};
    for (size_t i = 0; i < REEL_ARRAY_LEN(bad); i++)
        cr_assert_eq(reel_event_type_parse(bad[i], strlen(bad[i])), REEL_EV_NONE, "%s", bad[i]);
    cr_assert_eq(reel_event_type_parse("user.created\0x", 14), REEL_EV_NONE);
    cr_assert_null(reel_event_type_name(0));
    cr_assert_null(reel_event_type_name(REEL_EV_MAX + 1));
    cr_assert_null(reel_event_type_name(UINT16_MAX));
}

/* The schemas in JSON order are the test's pinned schemas, and no schema
 * uses one member of reel_event_t for two fields. */
Test(event, schemas_are_the_pinned_ones)
{
    tevent_t *t = tevent_new();
    for (uint16_t type = 1; type <= REEL_EV_MAX; type++) {
        const tschema_t *s = tschema(type);
        for (uint32_t i = 0; i < s->n; i++)
            for (uint32_t k = 0; k < i; k++)
                cr_assert_neq(s->f[i].off, s->f[k].off, "%s: %s and %s share a member", s->name,
                              s->f[i].json, s->f[k].json);
        fill_event(t, type, FILL_EDGE, NULL);
        free(check_json(&t->ev, s)); /* asserts the keys in order */
    }
    free(t);
}

/* ---- round trips ---- */

Test(event, every_type_round_trips_maximal_edge_and_minimal_events)
{
    tevent_t *t = tevent_new();
    for (uint16_t type = 1; type <= REEL_EV_MAX; type++) {
        for (int mode = FILL_MAX; mode <= FILL_MIN; mode++) {
            fill_event(t, type, (fill_t)mode, NULL);
            check_roundtrip(&t->ev);
        }
    }
    free(t);
}

Test(event, random_valid_events_round_trip)
{
    tevent_t *t = tevent_new();
    uint64_t rng = 0x5eed0001;
    for (int i = 0; i < 20000; i++) {
        uint16_t type = (uint16_t)(1 + rand_below(&rng, REEL_EV_MAX));
        fill_event(t, type, FILL_RANDOM, &rng);
        t->ev.offset = rand_width(&rng, 63);
        t->ev.at = rand_width(&rng, 63);
        check_roundtrip(&t->ev);
    }
    free(t);
}

/* Fixed bytes, worked out by hand from the format's rules. */
Test(event, golden_encodings)
{
    static const uint8_t follow[] = {1, 0x01, 0xac, 0x02};
    static const uint8_t invite[] = {1, 0x80, 0x01, 0x02, 0xc3, 0xa9};
    static const uint8_t view[] = {1, 0x05, 0x06, 0xe8, 0x07, 0x01};
    static const uint8_t done[] = {1,    0x02, 0x01, 'w',  0x03, 0x00, 0x00,
                                   0x01, 0x01, 0x00, 0x00, 0x00, 0xbf};
    static const uint8_t big_id[] = {1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f};
    reel_event_t ev = {.type = REEL_EV_FOLLOW_CREATED, .user = 1, .target = 300};
    uint8_t buf[64];
    cr_assert_eq(reel_event_encode(&ev, buf, sizeof(buf)), (int)sizeof(follow));
    cr_assert(memcmp(buf, follow, sizeof(follow)) == 0);
    ev = (reel_event_t){.type = REEL_EV_INVITE_ISSUED, .user = 128, .code = {"\xc3\xa9", 2}};
    cr_assert_eq(reel_event_encode(&ev, buf, sizeof(buf)), (int)sizeof(invite));
    cr_assert(memcmp(buf, invite, sizeof(invite)) == 0);
    ev = (reel_event_t){.type = REEL_EV_VIEW_RECORDED, .user = 5, .post = 6, .watch_ms = 1000,
                        .completed = true};
    cr_assert_eq(reel_event_encode(&ev, buf, sizeof(buf)), (int)sizeof(view));
    cr_assert(memcmp(buf, view, sizeof(view)) == 0);
    /* generation.completed: -0.5f is 0xbf000000, stored little-endian. */
    static const uint8_t emb[4] = {0x00, 0x00, 0x00, 0xbf};
    ev = (reel_event_t){.type = REEL_EV_GENERATION_COMPLETED, .generation = 2,
                        .worker = {"w", 1}, .post = 3, .publish = true, .dim = 1,
                        .embedding = emb};
    cr_assert_eq(reel_event_encode(&ev, buf, sizeof(buf)), (int)sizeof(done));
    cr_assert(memcmp(buf, done, sizeof(done)) == 0);
    cr_assert(reel_event_embedding_at(&ev, 0) == -0.5f);
    ev = (reel_event_t){.type = REEL_EV_POST_DELETED, .post = REEL_ID_MAX};
    cr_assert_eq(reel_event_encode(&ev, buf, sizeof(buf)), (int)sizeof(big_id));
    cr_assert(memcmp(buf, big_id, sizeof(big_id)) == 0);
}

Test(event, golden_json)
{
    char out[512];
    reel_event_t ev = {.type = REEL_EV_FOLLOW_CREATED, .offset = 7, .at = 1000, .user = 1,
                       .target = 300};
    int n = reel_event_to_json(&ev, out, sizeof(out));
    static const char want1[] =
        "{\"offset\":7,\"type\":\"follow.created\",\"at\":1000,\"user_id\":1,\"target\":300}";
    cr_assert_str_eq(out, want1);
    cr_assert_eq(n, (int)strlen(want1));
    ev = (reel_event_t){.type = REEL_EV_COMMENT_CREATED, .offset = 0, .at = 5, .comment = 9,
                        .post = 8, .user = 7, .text = {"a\"b\\c\n\x01\xc3\xa9\x7f", 10}};
    n = reel_event_to_json(&ev, out, sizeof(out));
    static const char want2[] = "{\"offset\":0,\"type\":\"comment.created\",\"at\":5,"
                                "\"comment_id\":9,\"post_id\":8,\"author\":7,"
                                "\"text\":\"a\\\"b\\\\c\\u000a\\u0001\xc3\xa9\x7f\","
                                "\"reply_to\":null}";
    cr_assert_str_eq(out, want2);
    cr_assert_eq(n, (int)strlen(want2));
    static const uint8_t emb[8] = {0x00, 0x00, 0x00, 0xbf, 0x00, 0x00, 0x50, 0x40};
    ev = (reel_event_t){.type = REEL_EV_POST_CREATED, .post = 1, .user = 2, .dim = 2,
                        .embedding = emb, .ncameos = 2, .cameos = {3, 4}, .ntags = 1,
                        .tags = {{"x", 1}}, .generation = 5};
    n = reel_event_to_json(&ev, out, sizeof(out));
    static const char want3[] = "{\"offset\":0,\"type\":\"post.created\",\"at\":0,\"post_id\":1,"
                                "\"author\":2,\"video_uri\":\"\",\"prompt\":\"\",\"tags\":[\"x\"],"
                                "\"embedding\":[-0.5,3.25],\"cameos\":[3,4],\"remix_of\":null,"
                                "\"remix_root\":null,\"visibility\":\"\",\"generation_id\":5}";
    cr_assert_str_eq(out, want3);
    cr_assert_eq(n, (int)strlen(want3));
}

/* u64 fields (not ids) take any value; the JSON carries all its digits
 * (readers with 53- or 63-bit integers cannot hold the top of the range). */
Test(event, u64_fields_are_json_safe)
{
    /* Every integer of an event stays below 2^53: accepted up to it,
     * refused above it by the encoder and the decoder alike. */
    static const uint64_t good[] = {0, 1, 1ull << 32, REEL_ID_MAX};
    static const uint64_t bad[] = {REEL_ID_MAX + 1, INT64_MAX, (uint64_t)INT64_MAX + 1, UINT64_MAX};
    for (size_t i = 0; i < REEL_ARRAY_LEN(good); i++) {
        reel_event_t ev = {.type = REEL_EV_GENERATION_CLAIMED, .generation = 1,
                           .attempt = good[i], .lease_until = good[i]};
        uint8_t buf[64];
        char out[256], want[64];
        int n = reel_event_encode(&ev, buf, sizeof(buf));
        cr_assert(n > 0);
        expect_decode(ev.type, buf, (size_t)n, 0, "u64", "JSON-safe range");
        cr_assert(reel_event_to_json(&ev, out, sizeof(out)) > 0);
        snprintf(want, sizeof(want), "\"attempt\":%llu,", (unsigned long long)good[i]);
        cr_assert_not_null(strstr(out, want), "%s", out);
    }
    for (size_t i = 0; i < REEL_ARRAY_LEN(bad); i++) {
        reel_event_t ev = {.type = REEL_EV_GENERATION_CLAIMED, .generation = 1, .attempt = bad[i]};
        uint8_t buf[64];
        cr_assert_eq(reel_event_encode(&ev, buf, sizeof(buf)), REEL_EUSAGE);
    }
}

Test(event, empty_payload_wrong_version_and_unknown_types)
{
    tevent_t *t = tevent_new();
    uint8_t *buf = malloc(BUF_CAP);
    static const uint8_t one = 1;
    for (uint16_t type = 1; type <= REEL_EV_MAX; type++) {
        reel_event_t ev;
        cr_assert_eq(reel_event_decode(type, NULL, 0, &ev), REEL_ECORRUPT);
        expect_decode(type, &one, 0, REEL_ECORRUPT, "empty", "");
        fill_event(t, type, FILL_EDGE, NULL);
        int n = reel_event_encode(&t->ev, buf, BUF_CAP);
        cr_assert(n > 1);
        for (int v = 0; v < 256; v++) {
            if (v == REEL_EVENT_VERSION)
                continue;
            buf[0] = (uint8_t)v;
            expect_decode(type, buf, (size_t)n, REEL_EVERSION, "wrong version", "");
            expect_decode(type, buf, 1, REEL_EVERSION, "wrong version alone", "");
        }
        buf[0] = REEL_EVENT_VERSION;
        for (uint16_t bad = 0; bad < 3; bad++) {
            uint16_t u = bad == 0 ? 0 : bad == 1 ? REEL_EV_MAX + 1 : UINT16_MAX;
            expect_decode(u, buf, (size_t)n, REEL_ECORRUPT, "unknown type", "");
            expect_decode(u, buf, 1, REEL_ECORRUPT, "unknown type", "version only");
        }
    }
    free(buf);
    free(t);
}

Test(event, every_truncation_and_trailing_bytes_are_corrupt)
{
    tevent_t *t = tevent_new();
    uint8_t *buf = malloc(BUF_CAP);
    for (uint16_t type = 1; type <= REEL_EV_MAX; type++) {
        for (int mode = FILL_MAX; mode <= FILL_MIN; mode++) {
            fill_event(t, type, (fill_t)mode, NULL);
            int n = reel_event_encode(&t->ev, buf, BUF_CAP - 1);
            cr_assert(n > 0);
            for (int len = 0; len < n; len++)
                expect_decode(type, buf, (size_t)len, REEL_ECORRUPT, "truncated", "");
            static const uint8_t trail[] = {0x00, 0x01, 0x7f, 0x80, 0xff};
            for (size_t k = 0; k < REEL_ARRAY_LEN(trail); k++) {
                buf[n] = trail[k];
                expect_decode(type, buf, (size_t)n + 1, REEL_ECORRUPT, "trailing byte", "");
            }
            expect_decode(type, buf, (size_t)n, 0, "whole", "");
        }
    }
    free(buf);
    free(t);
}

typedef struct raw_case {
    uint8_t b[12];
    uint8_t n;
    const char *what;
} raw_case_t;

/* Varints no field may hold: not minimal, or longer than 64 bits. */
static const raw_case_t bad_varints[] = {
    {{0x80, 0x00}, 2, "non-minimal 0"},
    {{0x81, 0x00}, 2, "non-minimal 1"},
    {{0xff, 0x80, 0x00}, 3, "non-minimal 127"},
    {{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 10, "10-byte non-minimal 0"},
    {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, 10, "10 bytes over 64 bits"},
    {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, 10, "10 bytes, 70 bits"},
    {{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40}, 10, "10 bytes, bit 69"},
    {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 11, "11 bytes"},
    {{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 11, "11 bytes of 0"},
    {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x81, 0x00}, 11, "11 bytes, 2^64-1"},
};

static const raw_case_t bad_utf8[] = {
    {{0xc0, 0x80}, 2, "overlong NUL"},
    {{0xc1, 0xbf}, 2, "overlong 2-byte"},
    {{0xe0, 0x80, 0x80}, 3, "overlong 3-byte"},
    {{0xe0, 0x9f, 0xbf}, 3, "overlong U+07FF"},
    {{0xf0, 0x80, 0x80, 0x80}, 4, "overlong 4-byte"},
    {{0xf0, 0x8f, 0xbf, 0xbf}, 4, "overlong U+FFFF"},
    {{0xed, 0xa0, 0x80}, 3, "surrogate U+D800"},
    {{0xed, 0xbf, 0xbf}, 3, "surrogate U+DFFF"},
    {{0xf4, 0x90, 0x80, 0x80}, 4, "U+110000"},
    {{0xf5, 0x80, 0x80, 0x80}, 4, "lead F5"},
    {{0xf7, 0xbf, 0xbf, 0xbf}, 4, "lead F7"},
    {{0xf8, 0x88, 0x80, 0x80, 0x80}, 5, "5-byte form"},
    {{0xfe}, 1, "FE"},
    {{0xff}, 1, "FF"},
    {{0x80}, 1, "lone continuation"},
    {{0xbf}, 1, "lone continuation BF"},
    {{0xc3}, 1, "truncated 2-byte"},
    {{0xe2, 0x82}, 2, "truncated 3-byte"},
    {{0xf0, 0x9f, 0x98}, 3, "truncated 4-byte"},
    {{0xc3, 0x28}, 2, "bad continuation"},
    {{0xe2, 0x28, 0xa1}, 3, "bad second continuation"},
    {{0xf0, 0x9f, 0x98, 0x28}, 4, "bad last continuation"},
};

static void field_case(const tschema_t *s, const reel_event_t *ev, uint32_t i, const bytes_t *raw,
                       int want, const char *what)
{
    uint8_t *buf = malloc(BUF_CAP);
    char detail[128];
    cr_assert_not_null(buf);
    size_t len = spec_encode(ev, s, i, raw, buf, BUF_CAP);
    snprintf(detail, sizeof(detail), "%s.%s", s->name, s->f[i].json);
    expect_decode(s->type, buf, len, want, what, detail);
    free(buf);
}

static void varint_field_cases(const tschema_t *s, const reel_event_t *ev, uint32_t i)
{
    uint8_t tmp[16];
    tkind_t k = s->f[i].kind;
    static const struct {
        uint64_t v;
        int id, opt, u64; /* expected result per kind (0 or REEL_ECORRUPT) */
    } vals[] = {
        {0, REEL_ECORRUPT, 0, 0},
        {1, 0, 0, 0},
        {REEL_ID_MAX, 0, 0, 0},
        {REEL_ID_MAX + 1, REEL_ECORRUPT, REEL_ECORRUPT, REEL_ECORRUPT},
        {UINT64_MAX, REEL_ECORRUPT, REEL_ECORRUPT, REEL_ECORRUPT},
    };
    for (size_t c = 0; c < REEL_ARRAY_LEN(vals); c++) {
        bytes_t raw = {tmp, 0, sizeof(tmp)};
        put_varint(&raw, vals[c].v);
        int want = k == T_ID ? vals[c].id : k == T_ID_OPT ? vals[c].opt : vals[c].u64;
        field_case(s, ev, i, &raw, want, "varint value");
    }
    for (size_t c = 0; c < REEL_ARRAY_LEN(bad_varints); c++) {
        bytes_t raw = {(uint8_t *)bad_varints[c].b, bad_varints[c].n, bad_varints[c].n};
        field_case(s, ev, i, &raw, REEL_ECORRUPT, bad_varints[c].what);
    }
}

static void bool_field_cases(const tschema_t *s, const reel_event_t *ev, uint32_t i)
{
    for (int v = 0; v < 256; v++) {
        uint8_t b = (uint8_t)v;
        bytes_t raw = {&b, 1, 1};
        field_case(s, ev, i, &raw, v <= 1 ? 0 : REEL_ECORRUPT, "bool byte");
    }
}

/* A str field's bytes: the length, then the bytes (raw: bad UTF-8 kept). */
static void put_raw_str(bytes_t *b, const uint8_t *p, size_t n)
{
    put_varint(b, n);
    put(b, p, n);
}

/* Bad bytes in a string: alone, between ASCII, and at the end. */
static void utf8_cases(const tschema_t *s, const reel_event_t *ev, uint32_t i, bool in_tags)
{
    uint8_t tmp[64], str[16];
    for (size_t c = 0; c < REEL_ARRAY_LEN(bad_utf8); c++) {
        for (int where = 0; where < 3; where++) {
            size_t n = 0;
            if (where > 0)
                str[n++] = 'x';
            memcpy(str + n, bad_utf8[c].b, bad_utf8[c].n);
            n += bad_utf8[c].n;
            if (where == 1)
                str[n++] = 'y';
            bytes_t raw = {tmp, 0, sizeof(tmp)};
            if (in_tags) {
                put_varint(&raw, 2);
                put_raw_str(&raw, (const uint8_t *)"ok", 2);
            }
            put_raw_str(&raw, str, n);
            field_case(s, ev, i, &raw, REEL_ECORRUPT, bad_utf8[c].what);
        }
    }
    for (size_t c = 0; c < REEL_ARRAY_LEN(pieces); c++) {
        bytes_t raw = {tmp, 0, sizeof(tmp)};
        if (in_tags)
            put_varint(&raw, 1);
        put_raw_str(&raw, (const uint8_t *)pieces[c].s, pieces[c].n);
        field_case(s, ev, i, &raw, 0, "valid boundary code point");
    }
}

static void str_field_cases(const tschema_t *s, const reel_event_t *ev, uint32_t i)
{
    uint32_t max = s->f[i].len_max;
    uint8_t *tmp = malloc(max + 16u), *text = malloc(max + 1u);
    cr_assert(tmp && text);
    memset(text, 'a', max + 1u);
    for (uint32_t len = max - 1; len <= max + 1; len++) {
        bytes_t raw = {tmp, 0, max + 16u};
        put_raw_str(&raw, text, len);
        field_case(s, ev, i, &raw, len <= max ? 0 : REEL_ECORRUPT, "string at its limit");
    }
    static const raw_case_t bad_len[] = {
        {{0x81, 0x00, 'a'}, 3, "non-minimal length"},
        {{0x80, 0x00}, 2, "non-minimal empty"},
        {{0xff, 0xff, 0xff, 0xff, 0x0f, 'a'}, 6, "length 2^32-1"},
        {{0x81, 0x80, 0x80, 0x80, 0x10, 'a'}, 6, "length 2^32+1"},
        {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 10, "length 2^64-1"},
    };
    for (size_t c = 0; c < REEL_ARRAY_LEN(bad_len); c++) {
        bytes_t raw = {(uint8_t *)bad_len[c].b, bad_len[c].n, bad_len[c].n};
        field_case(s, ev, i, &raw, REEL_ECORRUPT, bad_len[c].what);
    }
    utf8_cases(s, ev, i, false);
    free(text);
    free(tmp);
}

static void ids_field_cases(const tschema_t *s, const reel_event_t *ev, uint32_t i)
{
    uint8_t tmp[256];
    for (uint32_t count = 0; count <= REEL_CAMEOS_MAX + 1; count++) {
        bytes_t raw = {tmp, 0, sizeof(tmp)};
        put_varint(&raw, count);
        for (uint32_t k = 0; k < count; k++)
            put_varint(&raw, k == 0 ? REEL_ID_MAX : k);
        field_case(s, ev, i, &raw, count <= REEL_CAMEOS_MAX ? 0 : REEL_ECORRUPT, "cameo count");
    }
    static const uint64_t bad_ids[] = {0, REEL_ID_MAX + 1, UINT64_MAX};
    for (size_t c = 0; c < REEL_ARRAY_LEN(bad_ids); c++) {
        bytes_t raw = {tmp, 0, sizeof(tmp)};
        put_varint(&raw, 3);
        put_varint(&raw, 1);
        put_varint(&raw, bad_ids[c]);
        put_varint(&raw, 2);
        field_case(s, ev, i, &raw, REEL_ECORRUPT, "bad cameo id");
    }
    static const raw_case_t bad[] = {
        {{0x80, 0x00}, 2, "non-minimal count 0"},
        {{0x81, 0x00, 0x01}, 3, "non-minimal count 1"},
        {{0x01, 0x81, 0x00}, 3, "non-minimal cameo id"},
        {{0x81, 0x80, 0x80, 0x80, 0x10, 0x01}, 6, "count 2^32+1"},
        {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 10, "count 2^64-1"},
    };
    for (size_t c = 0; c < REEL_ARRAY_LEN(bad); c++) {
        bytes_t raw = {(uint8_t *)bad[c].b, bad[c].n, bad[c].n};
        field_case(s, ev, i, &raw, REEL_ECORRUPT, bad[c].what);
    }
}

static void tags_field_cases(const tschema_t *s, const reel_event_t *ev, uint32_t i)
{
    uint8_t tmp[2048], text[REEL_TAG_LEN_MAX + 1];
    memset(text, 't', sizeof(text));
    for (uint32_t count = 0; count <= REEL_TAGS_MAX + 1; count++) {
        bytes_t raw = {tmp, 0, sizeof(tmp)};
        put_varint(&raw, count);
        for (uint32_t k = 0; k < count; k++)
            put_raw_str(&raw, text, k % 3);
        field_case(s, ev, i, &raw, count <= REEL_TAGS_MAX ? 0 : REEL_ECORRUPT, "tag count");
    }
    for (uint32_t len = REEL_TAG_LEN_MAX - 1; len <= REEL_TAG_LEN_MAX + 1; len++) {
        bytes_t raw = {tmp, 0, sizeof(tmp)};
        put_varint(&raw, 2);
        put_raw_str(&raw, text, 1);
        put_raw_str(&raw, text, len);
        field_case(s, ev, i, &raw, len <= REEL_TAG_LEN_MAX ? 0 : REEL_ECORRUPT, "tag length");
    }
    static const raw_case_t bad[] = {
        {{0x80, 0x00}, 2, "non-minimal count 0"},
        {{0x01, 0x81, 0x00, 'a'}, 4, "non-minimal tag length"},
        {{0x81, 0x80, 0x80, 0x80, 0x10, 0x00}, 6, "count 2^32+1"},
        {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 10, "count 2^64-1"},
    };
    for (size_t c = 0; c < REEL_ARRAY_LEN(bad); c++) {
        bytes_t raw = {(uint8_t *)bad[c].b, bad[c].n, bad[c].n};
        field_case(s, ev, i, &raw, REEL_ECORRUPT, bad[c].what);
    }
    utf8_cases(s, ev, i, true);
}

static const uint32_t nonfinite[] = {0x7fc00000u, 0xffc00000u, 0x7f800001u, 0x7fffffffu,
                                     0xffffffffu, 0x7f800000u, 0xff800000u};

static void vec_field_cases(const tschema_t *s, const reel_event_t *ev, uint32_t i)
{
    size_t cap = 4u * (REEL_DIM_MAX + 1) + 16;
    uint8_t *tmp = malloc(cap);
    cr_assert_not_null(tmp);
    static const uint32_t dims[] = {0, 1, REEL_DIM_MAX, REEL_DIM_MAX + 1};
    for (size_t c = 0; c < REEL_ARRAY_LEN(dims); c++) {
        bytes_t raw = {tmp, 0, cap};
        put_varint(&raw, dims[c]);
        for (uint32_t k = 0; k < dims[c]; k++)
            put_f32(&raw, k % 2 ? -0.5f : 3.25f);
        field_case(s, ev, i, &raw, dims[c] <= REEL_DIM_MAX ? 0 : REEL_ECORRUPT, "dimension");
    }
    for (size_t c = 0; c < REEL_ARRAY_LEN(nonfinite); c++) {
        for (uint32_t at = 0; at < 3; at++) {
            bytes_t raw = {tmp, 0, cap};
            put_varint(&raw, 3);
            for (uint32_t k = 0; k < 3; k++) {
                uint8_t le[4];
                reel_store_u32(le, k == at ? nonfinite[c] : 0x3f800000u);
                put(&raw, le, 4);
            }
            field_case(s, ev, i, &raw, REEL_ECORRUPT, "NaN or infinity");
        }
    }
    bytes_t raw = {tmp, 0, cap};
    put_varint(&raw, 4);
    put_f32(&raw, FLT_MAX), put_f32(&raw, -FLT_MAX), put_f32(&raw, 1e-45f), put_f32(&raw, -0.0f);
    field_case(s, ev, i, &raw, 0, "largest, smallest and signed-zero floats");
    static const raw_case_t bad[] = {
        {{0x80, 0x00}, 2, "non-minimal dimension 0"},
        {{0x81, 0x00, 0, 0, 0, 0}, 6, "non-minimal dimension 1"},
        {{0x81, 0x80, 0x80, 0x80, 0x10, 0, 0, 0, 0}, 9, "dimension 2^32+1"},
        {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 10, "dimension 2^64-1"},
    };
    for (size_t c = 0; c < REEL_ARRAY_LEN(bad); c++) {
        bytes_t b = {(uint8_t *)bad[c].b, bad[c].n, bad[c].n};
        field_case(s, ev, i, &b, REEL_ECORRUPT, bad[c].what);
    }
    free(tmp);
}

/* Each field of each type, replaced by bad (and boundary-valid) encodings
 * inside an otherwise valid payload. */
Test(event, every_field_refuses_bad_encodings)
{
    tevent_t *t = tevent_new();
    for (uint16_t type = 1; type <= REEL_EV_MAX; type++) {
        const tschema_t *s = tschema(type);
        fill_event(t, type, FILL_EDGE, NULL);
        for (uint32_t i = 0; i < s->n; i++) {
            switch (s->f[i].kind) {
            case T_ID:
            case T_ID_OPT:
            case T_U64:
                varint_field_cases(s, &t->ev, i);
                break;
            case T_BOOL:
                bool_field_cases(s, &t->ev, i);
                break;
            case T_STR:
                str_field_cases(s, &t->ev, i);
                break;
            case T_IDS:
                ids_field_cases(s, &t->ev, i);
                break;
            case T_STRS:
                tags_field_cases(s, &t->ev, i);
                break;
            case T_VEC:
                vec_field_cases(s, &t->ev, i);
                break;
            }
        }
    }
    free(t);
}

/* ---- encoder refusals ---- */

static void encode_bad_strings(const reel_event_t *base, const tfield_t *f, const char *type)
{
    char text[REEL_URI_LEN_MAX + 2];
    memset(text, 'a', sizeof(text));
    reel_event_t ev = *base;
    reel_str_t *s = f->kind == T_STRS ? &ev.tags[0] : MEMBER(&ev, f, reel_str_t);
    if (f->kind == T_STRS)
        ev.ntags = 1;
    *s = (reel_str_t){text, f->len_max};
    cr_assert(reel_event_encode(&ev, (uint8_t[4096]){0}, 4096) > 0, "%s.%s at limit", type,
              f->json);
    *s = (reel_str_t){text, f->len_max + 1};
    expect_encode_usage(&ev, type, f->json);
    *s = (reel_str_t){NULL, 1};
    expect_encode_usage(&ev, type, f->json);
    for (size_t c = 0; c < REEL_ARRAY_LEN(bad_utf8); c++) {
        *s = (reel_str_t){(const char *)bad_utf8[c].b, bad_utf8[c].n};
        expect_encode_usage(&ev, type, bad_utf8[c].what);
    }
}

static void encode_bad_field(const reel_event_t *base, const tfield_t *f, const char *type)
{
    reel_event_t ev = *base;
    switch (f->kind) {
    case T_ID:
        *MEMBER(&ev, f, uint64_t) = 0;
        expect_encode_usage(&ev, type, f->json);
        /* fall through */
    case T_ID_OPT:
        *MEMBER(&ev, f, uint64_t) = REEL_ID_MAX + 1;
        expect_encode_usage(&ev, type, f->json);
        *MEMBER(&ev, f, uint64_t) = UINT64_MAX;
        expect_encode_usage(&ev, type, f->json);
        break;
    case T_U64:
        *MEMBER(&ev, f, uint64_t) = REEL_ID_MAX + 1;
        expect_encode_usage(&ev, type, f->json);
        break;
    case T_BOOL:
        break; /* every value is valid */
    case T_STR:
    case T_STRS:
        encode_bad_strings(base, f, type);
        if (f->kind == T_STRS) {
            ev.ntags = REEL_TAGS_MAX + 1;
            expect_encode_usage(&ev, type, "tags count");
        }
        break;
    case T_IDS:
        ev.ncameos = REEL_CAMEOS_MAX + 1;
        expect_encode_usage(&ev, type, "cameos count");
        ev.ncameos = 2, ev.cameos[0] = 1, ev.cameos[1] = 0;
        expect_encode_usage(&ev, type, "cameo 0");
        ev.cameos[1] = REEL_ID_MAX + 1;
        expect_encode_usage(&ev, type, "cameo 2^53");
        break;
    case T_VEC:
        ev.dim = REEL_DIM_MAX + 1;
        expect_encode_usage(&ev, type, "dimension");
        ev.dim = 1, ev.embedding = NULL;
        expect_encode_usage(&ev, type, "NULL embedding");
        for (size_t c = 0; c < REEL_ARRAY_LEN(nonfinite); c++) {
            uint8_t le[8] = {0, 0, 0x80, 0x3f};
            reel_store_u32(le + 4, nonfinite[c]);
            ev.dim = 2, ev.embedding = le;
            expect_encode_usage(&ev, type, "NaN or infinity");
        }
        break;
    }
}

Test(event, encode_refuses_invalid_events)
{
    tevent_t *t = tevent_new();
    uint8_t buf[64];
    for (uint16_t type = 1; type <= REEL_EV_MAX; type++) {
        const tschema_t *s = tschema(type);
        fill_event(t, type, FILL_EDGE, NULL);
        for (uint32_t i = 0; i < s->n; i++)
            encode_bad_field(&t->ev, &s->f[i], s->name);
    }
    reel_event_t ev = {.type = 0, .user = 1, .post = 1};
    cr_assert_eq(reel_event_encode(&ev, buf, sizeof(buf)), REEL_EUSAGE);
    ev.type = REEL_EV_MAX + 1;
    cr_assert_eq(reel_event_encode(&ev, buf, sizeof(buf)), REEL_EUSAGE);
    ev.type = UINT16_MAX;
    cr_assert_eq(reel_event_encode(&ev, buf, sizeof(buf)), REEL_EUSAGE);
    free(t);
}

/* Every cap below the size is -ENOSPC (cap 0 included) and nothing at or
 * past the cap is written; the exact size and more succeed. */
Test(event, encode_into_small_buffers)
{
    tevent_t *t = tevent_new();
    uint8_t *buf = malloc(BUF_CAP);
    for (uint16_t type = 1; type <= REEL_EV_MAX; type++) {
        for (int mode = FILL_MAX; mode <= FILL_MIN; mode++) {
            fill_event(t, type, (fill_t)mode, NULL);
            size_t size = reel_event_encoded_size(&t->ev);
            for (size_t cap = 0; cap <= size + 8; cap++) {
                memset(buf, 0xee, size + 16);
                int rc = reel_event_encode(&t->ev, buf, cap);
                size_t end = cap < size ? cap : size;
                cr_assert_eq(rc, cap < size ? -ENOSPC : (int)size, "%s cap %zu: %d",
                             reel_event_type_name(type), cap, rc);
                for (size_t k = end; k < size + 16; k++)
                    cr_assert_eq(buf[k], 0xee, "%s cap %zu: byte %zu written",
                                 reel_event_type_name(type), cap, k);
            }
        }
    }
    free(buf);
    free(t);
}

/* The same for the JSON writer: it needs its length plus the NUL. */
Test(event, json_into_small_buffers)
{
    tevent_t *t = tevent_new();
    char *big = malloc(JSON_CAP), *buf = malloc(JSON_CAP);
    for (uint16_t type = 1; type <= REEL_EV_MAX; type++) {
        for (int mode = FILL_MAX; mode <= FILL_MIN; mode++) {
            fill_event(t, type, (fill_t)mode, NULL);
            int need = reel_event_to_json(&t->ev, big, JSON_CAP);
            cr_assert(need > 0);
            for (size_t cap = 0; cap <= (size_t)need + 8; cap++) {
                size_t end = cap <= (size_t)need ? cap : (size_t)need + 1;
                memset(buf + end, 0xee, (size_t)need + 16 - end);
                int rc = reel_event_to_json(&t->ev, buf, cap);
                cr_assert_eq(rc, cap <= (size_t)need ? -ENOSPC : need, "%s cap %zu: %d",
                             reel_event_type_name(type), cap, rc);
                for (size_t k = end; k < (size_t)need + 16; k++)
                    cr_assert_eq((uint8_t)buf[k], 0xee, "%s cap %zu: byte %zu written",
                                 reel_event_type_name(type), cap, k);
            }
            cr_assert_str_eq(buf, big);
        }
    }
    free(buf);
    free(big);
    free(t);
}

/* ---- random input ---- */

/* Decodes arbitrary bytes as a type: only the documented results, and an
 * accepted payload is canonical and has JSON. Returns the result. */
static int decode_any(uint16_t type, const uint8_t *p, size_t len, char *json)
{
    uint8_t *c = heap_copy(p, len);
    reel_event_t ev;
    int rc = reel_event_decode(type, c, len, &ev);
    bool known = type >= 1 && type <= REEL_EV_MAX;
    cr_assert(rc == 0 || rc == REEL_ECORRUPT || rc == REEL_EVERSION, "type %u len %zu: %d", type,
              len, rc);
    if (!known || len == 0)
        cr_assert_eq(rc, REEL_ECORRUPT, "type %u len %zu", type, len);
    else
        cr_assert_eq(rc == REEL_EVERSION, p[0] != REEL_EVENT_VERSION, "type %u", type);
    if (rc == 0) {
        check_canonical(&ev, c, len, "random payload");
        int n = reel_event_to_json(&ev, json, JSON_CAP);
        cr_assert(n > 0 && strlen(json) == (size_t)n);
    }
    free(c);
    return rc;
}

/* Bytes that are small more often than not, so that lengths and counts
 * fit and many payloads get past the first fields. */
static void random_bytes(uint8_t *p, size_t len, uint64_t *rng)
{
    for (size_t i = 0; i < len; i++) {
        uint64_t r = reel_test_rand(rng);
        p[i] = (uint8_t)(r >> 8);
        if ((r & 3) != 0)
            p[i] &= 0x0f;
        if ((r & 0xf0) == 0)
            p[i] |= 0x80;
    }
    if (len > 0 && rand_below(rng, 8) != 0)
        p[0] = REEL_EVENT_VERSION;
}

Test(event, random_bytes_never_crash_and_accepted_ones_are_canonical)
{
    uint8_t buf[300];
    char *json = malloc(JSON_CAP);
    uint64_t rng = 0x5eed0002;
    int accepted = 0;
    for (int i = 0; i < 100000; i++) {
        uint16_t type = (uint16_t)rand_below(&rng, REEL_EV_MAX + 2);
        size_t len = (size_t)rand_below(&rng, rand_below(&rng, 4) ? 24 : sizeof(buf) + 1);
        random_bytes(buf, len, &rng);
        accepted += decode_any(type, buf, len, json) == 0;
    }
    cr_assert_gt(accepted, 500, "random payloads rarely decode (%d): the loop tests little",
                 accepted);
    free(json);
}

/* One random change: flip a bit, set a byte, insert, delete, cut, or
 * append. */
static void mutate(uint8_t *p, size_t *len, size_t cap, uint64_t *rng)
{
    static const uint8_t interesting[] = {0x00, 0x01, 0x02, 0x7f, 0x80, 0x81, 0xff};
    size_t n = *len, at = n ? (size_t)rand_below(rng, n) : 0;
    switch (rand_below(rng, 7)) {
    case 0:
        if (n)
            p[at] ^= (uint8_t)(1u << rand_below(rng, 8));
        break;
    case 1:
        if (n)
            p[at] = interesting[rand_below(rng, REEL_ARRAY_LEN(interesting))];
        break;
    case 2:
        if (n)
            p[at] = (uint8_t)reel_test_rand(rng);
        break;
    case 3:
        if (n < cap) {
            memmove(p + at + 1, p + at, n - at);
            p[at] = (uint8_t)reel_test_rand(rng);
            *len = n + 1;
        }
        break;
    case 4:
        if (n) {
            memmove(p + at, p + at + 1, n - at - 1);
            *len = n - 1;
        }
        break;
    case 5:
        *len = at;
        break;
    default:
        if (n < cap)
            p[(*len)++] = (uint8_t)reel_test_rand(rng);
        break;
    }
}

Test(event, mutated_payloads_never_crash_and_accepted_ones_are_canonical)
{
    enum { POOL = 64 };
    tevent_t *t = tevent_new();
    uint8_t *pool[POOL], *buf = malloc(BUF_CAP);
    size_t pool_len[POOL];
    uint16_t pool_type[POOL];
    char *json = malloc(JSON_CAP);
    uint64_t rng = 0x5eed0003;
    for (int k = 0; k < POOL; k++) {
        pool_type[k] = (uint16_t)(1 + (k % REEL_EV_MAX));
        fill_event(t, pool_type[k], k < 2 * REEL_EV_MAX ? FILL_RANDOM : FILL_EDGE, &rng);
        pool[k] = malloc(BUF_CAP);
        int n = reel_event_encode(&t->ev, pool[k], BUF_CAP);
        cr_assert(n > 0);
        pool_len[k] = (size_t)n;
    }
    int accepted = 0;
    for (int i = 0; i < 100000; i++) {
        int k = (int)rand_below(&rng, POOL);
        size_t len = pool_len[k];
        memcpy(buf, pool[k], len);
        for (uint64_t m = 1 + rand_below(&rng, 4); m > 0; m--)
            mutate(buf, &len, BUF_CAP, &rng);
        uint16_t type = pool_type[k];
        if (rand_below(&rng, 16) == 0) /* the payload under another type */
            type = (uint16_t)rand_below(&rng, REEL_EV_MAX + 2);
        accepted += decode_any(type, buf, len, json) == 0;
    }
    cr_assert_gt(accepted, 5000, "mutants rarely decode (%d): the loop tests little", accepted);
    for (int k = 0; k < POOL; k++)
        free(pool[k]);
    free(json), free(buf), free(t);
}
