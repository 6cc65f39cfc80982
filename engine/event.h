/*
 * event.h: the events of reeldb, their compact binary encoding (the payload
 * of a log record) and their JSON form (what /v1/log, reel dump and exports
 * show).
 *
 * One table drives everything: each event type lists its fields in order
 * (event.c, `schemas`), and each field has a kind, a JSON name and a place
 * in reel_event_t. Encode, decode and JSON walk the table, so a new field
 * is one line, and the three can never disagree.
 *
 * Encoding (FORMAT.md, "Events"): the record's type is the event type; the
 * payload is one version byte (REEL_EVENT_VERSION) then each field of the
 * schema in order:
 *   id, u64      unsigned LEB128 varint, minimal form (no trailing 0x00 byte)
 *   bool         one byte, 0 or 1
 *   str          varint byte length, then UTF-8 bytes
 *   ids          varint count, then a varint each
 *   strs         varint count, then a str each
 *   vec          varint dimension, then IEEE-754 float32 little-endian each
 * The event's time and offset are the record's (header), not the payload's.
 *
 * Decoding is zero-copy: strings and the vector point into the payload and
 * live as long as it. Every length and count is checked against the limits
 * below and the payload's end; strings must be UTF-8; trailing bytes are an
 * error. Errors: REEL_ECORRUPT (malformed), REEL_EVERSION (unknown version).
 */
#ifndef REEL_EVENT_H
#define REEL_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REEL_EVENT_VERSION 1u

/* Event types: name, number (the record type: never reused), JSON name. */
#define REEL_EVENT_MAP(XX)                                   \
    XX(USER_CREATED, 1, "user.created")                      \
    XX(USER_UPDATED, 2, "user.updated")                      \
    XX(USER_DELETED, 3, "user.deleted")                      \
    XX(INVITE_ISSUED, 4, "invite.issued")                    \
    XX(FOLLOW_CREATED, 5, "follow.created")                  \
    XX(FOLLOW_REMOVED, 6, "follow.removed")                  \
    XX(BLOCK_CREATED, 7, "block.created")                    \
    XX(BLOCK_REMOVED, 8, "block.removed")                    \
    XX(CAMEO_REGISTERED, 9, "cameo.registered")              \
    XX(CAMEO_DELETED, 10, "cameo.deleted")                   \
    XX(CAMEO_POLICY_SET, 11, "cameo.policy_set")             \
    XX(CONSENT_GRANTED, 12, "consent.granted")               \
    XX(CONSENT_REVOKED, 13, "consent.revoked")               \
    XX(GENERATION_REQUESTED, 14, "generation.requested")     \
    XX(GENERATION_CLAIMED, 15, "generation.claimed")         \
    XX(GENERATION_HEARTBEAT, 16, "generation.heartbeat")     \
    XX(GENERATION_COMPLETED, 17, "generation.completed")     \
    XX(GENERATION_FAILED, 18, "generation.failed")           \
    XX(GENERATION_EXPIRED, 19, "generation.expired")         \
    XX(GENERATION_CANCELLED, 20, "generation.cancelled")     \
    XX(POST_CREATED, 21, "post.created")                     \
    XX(POST_PUBLISHED, 22, "post.published")                 \
    XX(POST_DELETED, 23, "post.deleted")                     \
    XX(POST_HIDDEN, 24, "post.hidden")                       \
    XX(LIKE_CREATED, 25, "like.created")                     \
    XX(LIKE_REMOVED, 26, "like.removed")                     \
    XX(COMMENT_CREATED, 27, "comment.created")               \
    XX(COMMENT_DELETED, 28, "comment.deleted")               \
    XX(VIEW_RECORDED, 29, "view.recorded")                   \
    XX(FEEDBACK_RECORDED, 30, "feedback.recorded")                 \
    XX(IDEMPOTENCY_RECORDED, 31, "idempotency.recorded")

typedef enum reel_event_type {
    REEL_EV_NONE = 0,
#define REEL__EV_ENUM(name, num, json) REEL_EV_##name = (num),
    REEL_EVENT_MAP(REEL__EV_ENUM)
#undef REEL__EV_ENUM
    REEL_EV_MAX = 31,
} reel_event_type_t;

/* Limits of event fields: the API's, and bounds for the rest. */
#define REEL_HANDLE_LEN_MAX 30u
#define REEL_NAME_LEN_MAX 100u
#define REEL_PROMPT_LEN_MAX 2000u
#define REEL_TEXT_LEN_MAX 2000u
#define REEL_URI_LEN_MAX 2048u
#define REEL_SHORT_LEN_MAX 128u /* codes, workers, policies, kinds, visibilities */
#define REEL_TAGS_MAX 16u
#define REEL_TAG_LEN_MAX 64u
#define REEL_CAMEOS_MAX 8u
#define REEL_DIM_MAX 1024u
#define REEL_IDEM_KEY_LEN_MAX 64u  /* Idempotency-Key: 1..64 printable ASCII */
#define REEL_ANSWER_LEN_MAX 2000u  /* a recorded answer (idempotency.recorded) */
/* Ids, and every other integer of an event, are below 2^53 (the API's
 * JSON-safe integers). */
#define REEL_ID_MAX ((1ull << 53) - 1)

/* A byte string (UTF-8 in events); not NUL-terminated. */
typedef struct reel_str {
    const char *ptr;
    uint32_t len;
} reel_str_t;

/* Every field any event has. A type uses the fields its schema lists; the
 * others are zero. Ids of 0 mean "none" where a field is optional. */
typedef struct reel_event {
    uint16_t type;        /* reel_event_type_t */
    uint64_t offset;      /* from the record; not encoded */
    uint64_t at;          /* engine time from the record; not encoded */
    uint64_t user;        /* the acting or subject user ("user_id") */
    uint64_t target;      /* the other user: followed, blocked, grantee */
    uint64_t post;        /* "post_id" */
    uint64_t generation;  /* "generation_id" */
    uint64_t comment;     /* "comment_id" */
    uint64_t reply_to;    /* comment replied to, 0: none */
    uint64_t remix_of;    /* post remixed, 0: none */
    uint64_t remix_root;  /* original of a remix chain, 0: none */
    uint64_t invited_by;  /* inviter, 0: none */
    uint64_t watch_ms;
    uint64_t duration_ms;
    uint64_t lease_until; /* ms */
    uint64_t attempt;
    bool completed;       /* view watched to the end */
    bool publish;         /* completion publishes the post */
    bool retryable;       /* failed render may be retried */
    reel_str_t handle;
    reel_str_t display_name;
    reel_str_t code;       /* invite code */
    reel_str_t asset;      /* cameo asset URI */
    reel_str_t policy;     /* only_me, approved, mutuals, everyone */
    reel_str_t prompt;
    reel_str_t video_uri;
    reel_str_t worker;
    reel_str_t reason;     /* why: hidden, cancelled, failed, removed */
    reel_str_t text;       /* comment text */
    reel_str_t kind;       /* feedback kind */
    reel_str_t visibility; /* public, draft */
    uint32_t ncameos;
    uint64_t cameos[REEL_CAMEOS_MAX];
    uint32_t ntags;
    reel_str_t tags[REEL_TAGS_MAX];
    reel_str_t key;        /* idempotency key */
    reel_str_t answer;     /* the recorded answer (JSON text) */
    uint64_t fingerprint;  /* of the request that carried key */
    uint32_t dim;             /* embedding dimension, 0: none */
    const uint8_t *embedding; /* dim float32 LE (decoded: into the payload) */
} reel_event_t;

/* JSON name of a type ("follow.created"), or NULL for an unknown one. */
const char *reel_event_type_name(uint16_t type);
/* Type for a JSON name, or REEL_EV_NONE. */
uint16_t reel_event_type_parse(const char *name, size_t len);

/* Bytes the encoding of ev takes (ev must be valid for its type). */
size_t reel_event_encoded_size(const reel_event_t *ev);
/* Encodes ev into buf (cap bytes). Returns the length, or REEL_EUSAGE when
 * ev breaks a limit, or -ENOSPC when cap is too small. */
int reel_event_encode(const reel_event_t *ev, uint8_t *buf, size_t cap);
/* Decodes a record payload of the given type into ev (zeroed first; offset
 * and at are left for the caller). */
int reel_event_decode(uint16_t type, const uint8_t *payload, size_t len, reel_event_t *ev);

/* True when s (len bytes) is well-formed UTF-8, as every string of an
 * event must be. */
bool reel_utf8_valid(const char *s, size_t len);

/* Component i of the embedding. */
float reel_event_embedding_at(const reel_event_t *ev, uint32_t i);

/* Writes the event's JSON object, {"offset", "type", "at", ...fields}, to
 * out (cap bytes, NUL-terminated). ev must be valid (as decode returns it,
 * or as encode accepts it). Returns the length written, or -ENOSPC. */
int reel_event_to_json(const reel_event_t *ev, char *out, size_t cap);

#endif /* REEL_EVENT_H */
