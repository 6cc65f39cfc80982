/*
 * cmdjson.h: the API's writes between JSON and engine commands, with no
 * transport attached: reeld, /v1/batch, `reel import` and the tests share
 * it. A request ("METHOD /path" matched by route.h, and its JSON body)
 * becomes a reel_cmd_t, or the contract's error (API.md, "Errors"):
 * bad JSON 400 bad_json; a field of the wrong JSON type 400 bad_field; a
 * required field absent (or null) 400 missing_field with "field". Rules
 * that need the views (unknown ids, handles taken, consent, ...) are the
 * engine's. A command's answer (reel_cmd_result_t) becomes its JSON body.
 *
 * Ownership: the command's strings point into the parsed body, which the
 * reel_cmdjson_t holds until reel_cmdjson_free (after the answer).
 */
#ifndef REEL_SERVER_CMDJSON_H
#define REEL_SERVER_CMDJSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/reel.h"
#include "server/jbuf.h"
#include "server/route.h"

/* A parsed write. */
typedef struct reel_cmdjson {
    reel_cmd_t cmd;      /* the command; its strings point into root */
    json_t *root;        /* the body (a reference held), NULL when none */
    uint8_t *embedding;  /* malloc'd float32 LE of cmd.args.dim, or NULL */
    uint64_t wait_ms;    /* RENDER_CLAIM: the long poll (capped), else 0 */
    uint64_t fp;         /* hash of method, path and body: the idempotency fingerprint */
} reel_cmdjson_t;

/* Parses body (len bytes, may be 0 for routes without one) for the write
 * route m into *out. trust_time: "at" is taken (--trust-client-time).
 * Returns 0, or -1 with *err (nothing to free then). */
int reel_cmdjson_parse(const reel_route_match_t *m, const char *body, size_t len,
                       bool trust_time, reel_cmdjson_t *out, reel_api_err_t *err);
/* The same for a body already parsed (a /v1/batch line; NULL: none); a
 * reference to body is taken. */
int reel_cmdjson_parse_value(const reel_route_match_t *m, json_t *body, bool trust_time,
                             reel_cmdjson_t *out, reel_api_err_t *err);
void reel_cmdjson_free(reel_cmdjson_t *c);

/* A /v1/batch `op` ("POST /v1/posts") matched as a request line: 0 or -1
 * with err (a read route is 400 bad_field "op": a batch holds writes). */
int reel_cmdjson_op(const char *op, size_t len, reel_route_match_t *m, reel_api_err_t *err);

/* The JSON body of an answer: the route's success object (user_id,
 * post_id, comment_id or generation_id; code; quota; lease_until; offset
 * null when -1) or the error object. RENDER_CLAIM's tasks are read from
 * snapshot t (needed then; NULL elsewhere). */
void reel_cmdjson_answer(reel_cmd_kind_t kind, const reel_cmd_result_t *res,
                         reel_views_txn_t *t, reel_jbuf_t *out);

/* XXH3-64 of body_len bytes seeded with XXH3-64 of op. */
uint64_t reel_cmdjson_fp(const char *op, size_t op_len, const char *body, size_t body_len);
/* The idempotency fingerprint of a write, the one definition that a plain
 * request and a /v1/batch line share (docs/API.md, "Idempotency"):
 * reel_cmdjson_fp of op = "METHOD /path" (the request line's method, one
 * space, its target as sent; a batch line's "op" as given) and the body
 * as canonical JSON (jansson's JSON_COMPACT | JSON_SORT_KEYS, so spacing
 * and key order do not matter), or no bytes when there is no body. So the
 * same key on the same write, either way, replays. */
uint64_t reel_cmdjson_idem_fp(const char *op, size_t op_len, const json_t *body);

#endif /* REEL_SERVER_CMDJSON_H */
