/*
 * cmdjson.c: JSON bodies to engine commands and answers back (cmdjson.h).
 *
 * Each write has one parse function that reads its fields with the typed
 * getters below; a getter records the first error and every later one is
 * a no-op, so a parse function is a flat list of fields.
 */
#include "server/cmdjson.h"
#include "engine/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "server/limits.h"

/* The state of one body's parse. */
typedef struct pctx {
    json_t *obj;          /* the body object, NULL when none */
    reel_api_err_t *err;  /* the first error */
    bool failed;          /* err is set */
    reel_cmdjson_t *out;  /* the command being filled */
} pctx_t;

static void fail(pctx_t *p, int status, const char *code, const char *field, const char *what)
{
    if (p->failed)
        return;
    p->failed = true;
    reel_api_err_set(p->err, status, code, field, "%s %s", field, what);
}

/* The field's value, NULL when absent or null (required: missing_field). */
static json_t *field(pctx_t *p, const char *name, bool required)
{
    json_t *v = p->obj ? json_object_get(p->obj, name) : NULL;
    if (v != NULL && json_is_null(v))
        v = NULL;
    if (v == NULL && required)
        fail(p, 400, "missing_field", name, "is required");
    return p->failed ? NULL : v;
}

static bool id_value(json_t *v, uint64_t *out)
{
    if (!json_is_integer(v))
        return false;
    json_int_t i = json_integer_value(v);
    if (i < 1 || (uint64_t)i > REEL_ID_MAX)
        return false;
    *out = (uint64_t)i;
    return true;
}

static void f_id(pctx_t *p, const char *name, bool required, uint64_t *out)
{
    json_t *v = field(p, name, required);
    if (v != NULL && !id_value(v, out))
        fail(p, 400, "bad_field", name, "must be an integer in 1..2^53-1");
}

static void f_u64(pctx_t *p, const char *name, bool required, uint64_t lo, uint64_t hi,
                  uint64_t *out)
{
    json_t *v = field(p, name, required);
    if (v == NULL)
        return;
    json_int_t i = json_is_integer(v) ? json_integer_value(v) : -1;
    if (i < 0 || (uint64_t)i < lo || (uint64_t)i > hi) {
        char what[96];
        snprintf(what, sizeof(what), "must be an integer in %llu..%llu", (unsigned long long)lo,
                 (unsigned long long)hi);
        fail(p, 400, "bad_field", name, what);
        return;
    }
    *out = (uint64_t)i;
}

static void f_bool(pctx_t *p, const char *name, bool required, bool *out)
{
    json_t *v = field(p, name, required);
    if (v != NULL && !json_is_boolean(v))
        fail(p, 400, "bad_field", name, "must be true or false");
    else if (v != NULL)
        *out = json_is_true(v);
}

static void f_str(pctx_t *p, const char *name, bool required, reel_str_t *out)
{
    json_t *v = field(p, name, required);
    if (v == NULL)
        return;
    if (!json_is_string(v)) {
        fail(p, 400, "bad_field", name, "must be a string");
        return;
    }
    size_t n = json_string_length(v);
    if (n > UINT32_MAX) {
        fail(p, 400, "bad_field", name, "is too long");
        return;
    }
    *out = (reel_str_t){json_string_value(v), (uint32_t)n};
}

/* cameos: an array of at most REEL_CAMEOS_MAX ids. */
static void f_ids(pctx_t *p, const char *name, uint64_t *arr, uint32_t *n)
{
    json_t *v = field(p, name, false);
    char path[64];
    if (v == NULL)
        return;
    if (!json_is_array(v) || json_array_size(v) > REEL_CAMEOS_MAX) {
        fail(p, 400, "bad_field", name, "must be an array of at most 8 user ids");
        return;
    }
    for (size_t i = 0; i < json_array_size(v); i++) {
        if (!id_value(json_array_get(v, i), &arr[i])) {
            snprintf(path, sizeof(path), "%s[%zu]", name, i);
            fail(p, 400, "bad_field", path, "must be an integer in 1..2^53-1");
            return;
        }
    }
    *n = (uint32_t)json_array_size(v);
}

/* tags: an array of at most REEL_TAGS_MAX strings. */
static void f_strs(pctx_t *p, const char *name, reel_str_t *arr, uint32_t *n)
{
    json_t *v = field(p, name, false);
    char path[64];
    if (v == NULL)
        return;
    if (!json_is_array(v) || json_array_size(v) > REEL_TAGS_MAX) {
        fail(p, 400, "bad_field", name, "must be an array of at most 16 strings");
        return;
    }
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *s = json_array_get(v, i);
        if (!json_is_string(s) || json_string_length(s) > REEL_TAG_LEN_MAX) {
            snprintf(path, sizeof(path), "%s[%zu]", name, i);
            fail(p, 400, "bad_field", path, "must be a string of at most 64 bytes");
            return;
        }
        arr[i] = (reel_str_t){json_string_value(s), (uint32_t)json_string_length(s)};
    }
    *n = (uint32_t)json_array_size(v);
}

/* embedding: an array of numbers, stored as float32 LE. */
static void f_vec(pctx_t *p, const char *name, reel_event_t *a)
{
    json_t *v = field(p, name, false);
    if (v == NULL)
        return;
    size_t n = json_is_array(v) ? json_array_size(v) : 0;
    if (n == 0 || n > REEL_DIM_MAX) {
        fail(p, 400, "bad_field", name, "must be an array of 1..1024 numbers");
        return;
    }
    uint8_t *buf = malloc(n * 4);
    if (buf == NULL) {
        fail(p, 503, "unavailable", name, "could not be stored: out of memory");
        return;
    }
    p->out->embedding = buf;
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(v, i);
        if (!json_is_number(x)) {
            fail(p, 400, "bad_field", name, "must hold numbers only");
            return;
        }
        float f = (float)json_number_value(x);
        uint32_t bits;
        memcpy(&bits, &f, 4);
        reel_store_u32(buf + 4 * i, bits);
    }
    a->dim = (uint32_t)n;
    a->embedding = buf;
}

/* ---- one parse function per write (args named as the events name them) ---- */

static void parse_fields(pctx_t *p, const reel_route_match_t *m)
{
    reel_event_t *a = &p->out->cmd.args;
    uint64_t v = 0;
    switch (reel_route_cmd(m->route)) {
    case REEL_CMD_USER_CREATE:
        f_str(p, "handle", true, &a->handle);
        f_str(p, "display_name", false, &a->display_name);
        f_str(p, "invite_code", false, &a->code);
        break;
    case REEL_CMD_USER_UPDATE:
        a->user = m->id;
        f_str(p, "display_name", true, &a->display_name);
        break;
    case REEL_CMD_USER_DELETE:
    case REEL_CMD_INVITE_CREATE:
    case REEL_CMD_CAMEO_DELETE:
        a->user = m->id;
        break;
    case REEL_CMD_FOLLOW:
    case REEL_CMD_UNFOLLOW:
    case REEL_CMD_BLOCK:
    case REEL_CMD_UNBLOCK:
    case REEL_CMD_CAMEO_APPROVE:
    case REEL_CMD_CAMEO_UNAPPROVE:
        a->user = m->id;
        a->target = m->id2;
        break;
    case REEL_CMD_POST_CREATE:
        f_id(p, "author", true, &a->user);
        f_str(p, "video_uri", true, &a->video_uri);
        f_str(p, "prompt", true, &a->prompt);
        f_strs(p, "tags", a->tags, &a->ntags);
        f_ids(p, "cameos", a->cameos, &a->ncameos);
        f_id(p, "remix_of", false, &a->remix_of);
        f_str(p, "visibility", false, &a->visibility);
        f_vec(p, "embedding", a);
        break;
    case REEL_CMD_POST_PUBLISH:
    case REEL_CMD_POST_DELETE:
        a->post = m->id;
        break;
    case REEL_CMD_LIKE:
    case REEL_CMD_UNLIKE:
    case REEL_CMD_CAMEO_TAKEDOWN:
        a->post = m->id;
        a->user = m->id2;
        break;
    case REEL_CMD_COMMENT_CREATE:
        a->post = m->id;
        f_id(p, "author", true, &a->user);
        f_str(p, "text", true, &a->text);
        f_id(p, "reply_to", false, &a->reply_to);
        break;
    case REEL_CMD_COMMENT_DELETE:
        a->comment = m->id;
        break;
    case REEL_CMD_VIEW:
        f_id(p, "user", true, &a->user);
        f_id(p, "post", true, &a->post);
        f_u64(p, "watch_ms", true, 0, REEL_ID_MAX, &a->watch_ms);
        f_bool(p, "completed", false, &a->completed);
        break;
    case REEL_CMD_FEEDBACK:
        f_id(p, "user", true, &a->user);
        f_id(p, "post", true, &a->post);
        f_str(p, "kind", true, &a->kind);
        break;
    case REEL_CMD_CAMEO_SET:
        a->user = m->id;
        f_str(p, "asset", true, &a->asset);
        break;
    case REEL_CMD_CAMEO_POLICY:
        a->user = m->id;
        f_str(p, "policy", true, &a->policy);
        break;
    case REEL_CMD_GENERATION_CREATE:
        f_id(p, "user", true, &a->user);
        f_str(p, "prompt", true, &a->prompt);
        f_ids(p, "cameos", a->cameos, &a->ncameos);
        f_id(p, "remix_of", false, &a->remix_of);
        f_strs(p, "tags", a->tags, &a->ntags);
        break;
    case REEL_CMD_RENDER_CLAIM:
        f_str(p, "worker", true, &a->worker);
        f_u64(p, "lease_ms", false, 100, 3600000, &a->lease_until);
        f_u64(p, "max", false, 1, REEL_CLAIM_MAX, &a->attempt);
        f_u64(p, "wait_ms", false, 0, REEL_ID_MAX, &v);
        p->out->wait_ms = v > SRV_CLAIM_WAIT_MS_MAX ? SRV_CLAIM_WAIT_MS_MAX : v;
        break;
    case REEL_CMD_RENDER_HEARTBEAT:
        a->generation = m->id;
        f_str(p, "worker", true, &a->worker);
        f_u64(p, "lease_ms", false, 100, 3600000, &a->lease_until);
        break;
    case REEL_CMD_RENDER_COMPLETE:
        a->generation = m->id;
        f_str(p, "worker", true, &a->worker);
        f_str(p, "video_uri", true, &a->video_uri);
        f_u64(p, "duration_ms", true, 0, REEL_ID_MAX, &a->duration_ms);
        f_vec(p, "embedding", a);
        f_bool(p, "publish", false, &a->publish);
        break;
    case REEL_CMD_RENDER_FAIL:
        a->generation = m->id;
        f_str(p, "worker", true, &a->worker);
        f_str(p, "reason", true, &a->reason);
        f_bool(p, "retryable", true, &a->retryable);
        break;
    case REEL_CMD_NONE:
    case REEL_CMD_COUNT:
        REEL_ASSERT(false); /* callers pass write routes only */
        break;
    }
}

int reel_cmdjson_parse_value(const reel_route_match_t *m, json_t *body, bool trust_time,
                             reel_cmdjson_t *out, reel_api_err_t *err)
{
    REEL_ASSERT(reel_route_cmd(m->route) != REEL_CMD_NONE);
    memset(out, 0, sizeof(*out));
    if (body != NULL && !json_is_object(body)) {
        reel_api_err_set(err, 400, "bad_json", "", "the body must be a JSON object");
        return -1;
    }
    pctx_t p = {.obj = body, .err = err, .failed = false, .out = out};
    out->cmd.kind = reel_route_cmd(m->route);
    out->root = body ? json_incref(body) : NULL;
    parse_fields(&p, m);
    if (trust_time)
        f_u64(&p, "at", false, 1, REEL_ID_MAX, &out->cmd.at);
    if (p.failed) {
        reel_cmdjson_free(out);
        return -1;
    }
    return 0;
}

int reel_cmdjson_parse(const reel_route_match_t *m, const char *body, size_t len,
                       bool trust_time, reel_cmdjson_t *out, reel_api_err_t *err)
{
    json_error_t jerr;
    json_t *root = NULL;
    if (len > 0) {
        root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
        if (root == NULL) {
            /* jansson refuses integers beyond 64 bits at parse time: for
             * the contract such an id is a bad field, not bad JSON. */
            bool big = strstr(jerr.text, "too big") != NULL;
            reel_api_err_set(err, 400, big ? "bad_field" : "bad_json", "",
                             "%s at line %d column %d", jerr.text, jerr.line, jerr.column);
            return -1;
        }
    }
    int rc = reel_cmdjson_parse_value(m, root, trust_time, out, err);
    json_decref(root);
    return rc;
}

void reel_cmdjson_free(reel_cmdjson_t *c)
{
    json_decref(c->root);
    free(c->embedding);
    c->root = NULL;
    c->embedding = NULL;
}

int reel_cmdjson_op(const char *op, size_t len, reel_route_match_t *m, reel_api_err_t *err)
{
    char method[8];
    const char *sp = memchr(op, ' ', len);
    if (sp == NULL || sp == op || (size_t)(sp - op) >= sizeof(method)) {
        reel_api_err_set(err, 400, "bad_field", "op", "op must be \"METHOD /path\"");
        return -1;
    }
    memcpy(method, op, (size_t)(sp - op));
    method[sp - op] = '\0';
    if (reel_route_match(method, sp + 1, len - (size_t)(sp - op) - 1, m, err) != 0)
        return -1;
    if (reel_route_cmd(m->route) == REEL_CMD_NONE) {
        reel_api_err_set(err, 400, "bad_field", "op", "a batch holds writes only");
        return -1;
    }
    return 0;
}

/* ---- answers ---- */

static const char *id_name(reel_cmd_kind_t kind)
{
    switch (kind) {
    case REEL_CMD_USER_CREATE: return "user_id";
    case REEL_CMD_POST_CREATE:
    case REEL_CMD_RENDER_COMPLETE: return "post_id";
    case REEL_CMD_COMMENT_CREATE: return "comment_id";
    case REEL_CMD_GENERATION_CREATE: return "generation_id";
    default: return NULL;
    }
}

static void quota_json(reel_jbuf_t *b, const reel_quota_t *q)
{
    reel_jbuf_addf(b, "{\"used\":%llu,\"limit\":%llu,\"resets_at\":",
                   (unsigned long long)q->used, (unsigned long long)q->limit);
    reel_jbuf_id_or_null(b, q->resets_at);
    reel_jbuf_adds(b, "}");
}

/* One claimed task: {"generation_id","prompt","cameos","remix_of","attempt","lease_until"}. */
static void task_json(reel_jbuf_t *b, reel_views_txn_t *t, uint64_t id, uint64_t lease_until)
{
    reel_generation_view_t g;
    if (t == NULL || reel_views_get_generation(t, id, &g) != 0) {
        reel_jbuf_addf(b, "{\"generation_id\":%llu,\"lease_until\":%llu}",
                       (unsigned long long)id, (unsigned long long)lease_until);
        return;
    }
    reel_jbuf_addf(b, "{\"generation_id\":%llu,\"prompt\":", (unsigned long long)id);
    reel_jbuf_str(b, g.prompt, g.prompt_len);
    reel_jbuf_adds(b, ",\"cameos\":[");
    for (uint32_t i = 0; i < g.ncameos; i++) {
        reel_cameo_view_t c;
        bool has = reel_views_get_cameo(t, g.cameos[i], &c) == 0 && c.asset_len > 0;
        reel_jbuf_addf(b, "%s{\"user_id\":%llu,\"asset\":", i ? "," : "",
                       (unsigned long long)g.cameos[i]);
        if (has)
            reel_jbuf_str(b, c.asset, c.asset_len);
        else
            reel_jbuf_adds(b, "null");
        reel_jbuf_adds(b, "}");
    }
    reel_jbuf_adds(b, "],\"tags\":[");
    for (uint32_t i = 0; i < g.ntags; i++) {
        reel_jbuf_adds(b, i ? "," : "");
        reel_jbuf_str(b, g.tags[i].ptr, g.tags[i].len);
    }
    reel_jbuf_adds(b, "],\"remix_of\":");
    reel_jbuf_id_or_null(b, g.remix_of);
    reel_jbuf_addf(b, ",\"attempt\":%llu,\"lease_until\":%llu}", (unsigned long long)g.attempts,
                   (unsigned long long)(g.lease_until ? g.lease_until : lease_until));
}

void reel_cmdjson_answer(reel_cmd_kind_t kind, const reel_cmd_result_t *res,
                         reel_views_txn_t *t, reel_jbuf_t *out)
{
    if (res->error != NULL) {
        reel_api_err_t e;
        reel_api_err_set(&e, res->status >= 400 ? res->status : 500, res->error, res->field,
                         "%s", res->message);
        reel_api_err_json(out, &e);
        return;
    }
    if (kind == REEL_CMD_RENDER_CLAIM) {
        reel_jbuf_adds(out, "{\"tasks\":[");
        for (uint32_t i = 0; i < res->nclaimed && i < REEL_CLAIM_MAX; i++) {
            reel_jbuf_adds(out, i ? "," : "");
            task_json(out, t, res->claimed[i], res->lease_until);
        }
        reel_jbuf_adds(out, "]}");
        return;
    }
    if (kind == REEL_CMD_RENDER_HEARTBEAT) {
        reel_jbuf_addf(out, "{\"lease_until\":%llu}", (unsigned long long)res->lease_until);
        return;
    }
    reel_jbuf_adds(out, "{");
    const char *idn = id_name(kind);
    if (idn != NULL)
        reel_jbuf_addf(out, "\"%s\":%llu,", idn, (unsigned long long)res->id);
    if (kind == REEL_CMD_INVITE_CREATE) {
        reel_jbuf_adds(out, "\"code\":");
        reel_jbuf_str(out, res->code, strnlen(res->code, sizeof(res->code)));
        reel_jbuf_adds(out, ",");
    }
    if (kind == REEL_CMD_GENERATION_CREATE) {
        reel_jbuf_adds(out, "\"quota\":");
        quota_json(out, &res->quota);
        reel_jbuf_adds(out, ",");
    }
    if (res->offset < 0)
        reel_jbuf_adds(out, "\"offset\":null}");
    else
        reel_jbuf_addf(out, "\"offset\":%lld}", (long long)res->offset);
}

uint64_t reel_cmdjson_fp(const char *op, size_t op_len, const char *body, size_t body_len)
{
    /* The op's hash seeds the body's: a different op or body changes it. */
    return XXH3_64bits_withSeed(body, body_len, XXH3_64bits(op, op_len));
}

uint64_t reel_cmdjson_idem_fp(const char *op, size_t op_len, const json_t *body)
{
    char *canon = body ? json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)
                       : NULL;
    uint64_t fp = reel_cmdjson_fp(op, op_len, canon ? canon : "", canon ? strlen(canon) : 0);
    free(canon);
    return fp;
}
