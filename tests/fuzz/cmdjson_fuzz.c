/*
 * cmdjson_fuzz.c: libFuzzer target for the API's writes between JSON and
 * engine commands (server/route.h, server/cmdjson.h), with no transport.
 *
 * Input: a request line "METHOD /path" up to the first '\n', then the
 * body. The line is matched (reel_route_match); a write route's body is
 * parsed (reel_cmdjson_parse). Every answer must be a command or one of
 * the contract's errors (API.md, "Errors"), with the status that goes
 * with its code:
 *   - the parse is deterministic and equals the parse of the same body
 *     already loaded (reel_cmdjson_parse_value, as /v1/batch does);
 *   - trusting client time only adds the check of "at": with it a body
 *     is accepted only if it is without, and then gives the same command
 *     (save cmd.at); a body refused without it is refused with it, with
 *     the same error;
 *   - the same request line as a /v1/batch "op" (reel_cmdjson_op) matches
 *     the same route;
 *   - every error object (as reel_api_err_json writes it) is JSON, even
 *     when its message echoes bytes that are not UTF-8;
 *   - an accepted command's kind is its route's, its strings and its
 *     embedding are readable (ASan checks every byte), its idempotency
 *     fingerprint is stable, and its success answer is one JSON object.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/common.h"
#include "server/cmdjson.h"
#include "server/route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The error object as the server sends it: JSON, whatever bytes the
 * message echoes. */
static void check_err_json(const reel_api_err_t *e)
{
    reel_jbuf_t b;
    json_error_t jerr;
    reel_jbuf_init(&b);
    reel_api_err_json(&b, e);
    REEL_ASSERT(!b.oom);
    json_t *j = json_loadb(b.ptr, b.len, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL) {
        fprintf(stderr, "cmdjson_fuzz: error object is not JSON (%s): %s\n", jerr.text, b.ptr);
        abort();
    }
    REEL_ASSERT(json_is_string(json_object_get(json_object_get(j, "error"), "code")));
    json_decref(j);
    reel_jbuf_free(&b);
}

/* The contract's codes this layer may give, with their status. */
static void check_err(const reel_api_err_t *e)
{
    check_err_json(e);
    static const struct { const char *code; int status; } known[] = {
        {"bad_json", 400},  {"bad_field", 400},          {"missing_field", 400},
        {"not_found", 404}, {"method_not_allowed", 405}, {"unavailable", 503},
    };
    REEL_ASSERT(e->code != NULL);
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (strcmp(e->code, known[i].code) == 0) {
            REEL_ASSERT(e->status == known[i].status);
            REEL_ASSERT(memchr(e->message, '\0', sizeof(e->message)) != NULL);
            REEL_ASSERT(memchr(e->field, '\0', sizeof(e->field)) != NULL);
            return;
        }
    }
    REEL_ASSERT(!"an error code outside the contract");
}

/* Touches every byte a command points to, so ASan sees a dangling or
 * short string. */
static uint64_t touch(const reel_str_t *s)
{
    uint64_t h = 0;
    for (uint32_t i = 0; s->ptr != NULL && i < s->len; i++)
        h += (uint8_t)s->ptr[i];
    return h;
}

static void check_cmd(const reel_route_match_t *m, const reel_cmdjson_t *c)
{
    const reel_event_t *a = &c->cmd.args;
    volatile uint64_t h = 0;
    REEL_ASSERT(c->cmd.kind == reel_route_cmd(m->route));
    REEL_ASSERT(a->ntags <= REEL_TAGS_MAX);
    REEL_ASSERT(a->ncameos <= REEL_CAMEOS_MAX);
    REEL_ASSERT(a->dim <= REEL_DIM_MAX);
    REEL_ASSERT((a->dim == 0) == (c->embedding == NULL));
    REEL_ASSERT(c->cmd.at <= REEL_ID_MAX);
    h += touch(&a->handle) + touch(&a->display_name) + touch(&a->code) + touch(&a->video_uri);
    h += touch(&a->prompt) + touch(&a->visibility) + touch(&a->text) + touch(&a->kind);
    h += touch(&a->asset) + touch(&a->policy) + touch(&a->worker) + touch(&a->reason);
    for (uint32_t i = 0; i < a->ntags; i++) {
        REEL_ASSERT(a->tags[i].len <= REEL_TAG_LEN_MAX);
        h += touch(&a->tags[i]);
    }
    for (uint32_t i = 0; i < a->ncameos; i++)
        REEL_ASSERT(a->cameos[i] >= 1 && a->cameos[i] <= REEL_ID_MAX);
    for (uint32_t i = 0; i < a->dim * 4u; i++)
        h += c->embedding[i];
    (void)h;
}

/* The command without what differs between two parses of one body: the
 * client time and the embedding's buffer. */
static reel_cmd_t comparable(const reel_cmdjson_t *c)
{
    reel_cmd_t cmd = c->cmd;
    cmd.at = 0;
    cmd.args.embedding = NULL;
    return cmd;
}

static void check_answer(reel_cmd_kind_t kind, const uint8_t *data, size_t size)
{
    reel_cmd_result_t res;
    reel_jbuf_t b;
    json_error_t jerr;
    memset(&res, 0, sizeof(res));
    res.status = 200;
    res.offset = size & 1 ? -1 : (int64_t)size;
    res.id = size;
    memcpy(res.code, data, size < sizeof(res.code) ? size : sizeof(res.code)); /* any bytes */
    reel_jbuf_init(&b);
    reel_cmdjson_answer(kind, &res, NULL, &b);
    REEL_ASSERT(!b.oom);
    json_t *j = json_loadb(b.ptr, b.len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    REEL_ASSERT(j != NULL);
    REEL_ASSERT(json_is_object(j));
    json_decref(j);
    reel_jbuf_free(&b);
}

static void fuzz_write(const reel_route_match_t *m, const char *line, size_t line_len,
                       const char *body, size_t len, const uint8_t *data, size_t size)
{
    reel_cmdjson_t c1, c2, v1, v2;
    reel_api_err_t e1, e2, ev1, ev2;
    json_error_t jerr;
    int r1 = reel_cmdjson_parse(m, body, len, false, &c1, &e1);
    int r2 = reel_cmdjson_parse(m, body, len, true, &c2, &e2);
    REEL_ASSERT(r1 == 0 || r1 == -1);
    REEL_ASSERT(r2 == 0 || r2 == -1);
    if (r1 != 0) {
        check_err(&e1);
        REEL_ASSERT(r2 != 0);
        REEL_ASSERT(e1.status == e2.status && strcmp(e1.code, e2.code) == 0);
        REEL_ASSERT(strcmp(e1.field, e2.field) == 0);
    }
    if (r2 != 0)
        check_err(&e2);
    else
        REEL_ASSERT(r1 == 0);

    /* The same body already loaded, as a /v1/batch line gives it. */
    json_t *root = len > 0 ? json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr)
                           : NULL;
    if (len == 0 || root != NULL) {
        int rv1 = reel_cmdjson_parse_value(m, root, false, &v1, &ev1);
        int rv2 = reel_cmdjson_parse_value(m, root, true, &v2, &ev2);
        REEL_ASSERT(rv1 == r1);
        REEL_ASSERT(rv2 == r2);
        if (rv1 != 0)
            REEL_ASSERT(strcmp(ev1.code, e1.code) == 0 && strcmp(ev1.field, e1.field) == 0);
        if (rv1 == 0 && rv2 == 0) {
            reel_cmd_t a = comparable(&v1), b = comparable(&v2);
            REEL_ASSERT(memcmp(&a, &b, sizeof(a)) == 0);
            REEL_ASSERT(v1.wait_ms == v2.wait_ms);
            REEL_ASSERT(v1.cmd.at == 0);
            REEL_ASSERT(v1.cmd.args.dim == 0 ||
                        memcmp(v1.embedding, v2.embedding, v1.cmd.args.dim * 4u) == 0);
        }
        if (rv1 == 0)
            reel_cmdjson_free(&v1);
        if (rv2 == 0)
            reel_cmdjson_free(&v2);
        uint64_t fp = reel_cmdjson_idem_fp(line, line_len, root);
        REEL_ASSERT(fp == reel_cmdjson_idem_fp(line, line_len, root));
    } else {
        REEL_ASSERT(r1 != 0); /* jansson refused it: bad_json or a too big integer */
    }
    json_decref(root);

    if (r1 == 0) {
        check_cmd(m, &c1);
        REEL_ASSERT(c1.cmd.at == 0);
        check_answer(c1.cmd.kind, data, size);
        reel_cmdjson_free(&c1);
        REEL_ASSERT(c1.root == NULL && c1.embedding == NULL);
    }
    if (r2 == 0) {
        check_cmd(m, &c2);
        reel_cmdjson_free(&c2);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char method[16];
    reel_route_match_t m, mo;
    reel_api_err_t err;
    const char *in = (const char *)data;
    const char *nl = memchr(in, '\n', size);
    size_t line_len = nl ? (size_t)(nl - in) : size;
    const char *body = nl ? nl + 1 : in + size;
    size_t len = nl ? size - line_len - 1 : 0;

    /* The request line, copied so that the url's end is where ASan
     * watches. */
    char *line = malloc(line_len + 1);
    REEL_ASSERT(line != NULL);
    memcpy(line, in, line_len);
    line[line_len] = '\0';
    const char *sp = memchr(line, ' ', line_len);
    size_t mlen = sp ? (size_t)(sp - line) : 0;
    if (sp == NULL || mlen == 0 || mlen >= sizeof(method) || memchr(line, '\0', mlen) != NULL) {
        int rc = reel_cmdjson_op(line, line_len, &mo, &err);
        if (rc != 0)
            check_err(&err);
        free(line);
        return 0;
    }
    memcpy(method, line, mlen);
    method[mlen] = '\0';
    const char *url = sp + 1;
    size_t url_len = line_len - mlen - 1;

    int rc = reel_route_match(method, url, url_len, &m, &err);
    if (rc != 0) {
        check_err(&err);
    } else {
        REEL_ASSERT(m.route > REEL_ROUTE_NONE && m.route < REEL_ROUTE_COUNT);
        REEL_ASSERT(m.id <= REEL_ID_MAX && m.id2 <= REEL_ID_MAX);
        REEL_ASSERT(m.query_len <= url_len);
        if (m.str != NULL)
            REEL_ASSERT(m.str >= url && m.str + m.str_len <= url + url_len);
    }

    /* The same line as a /v1/batch op. */
    int rco = reel_cmdjson_op(line, line_len, &mo, &err);
    if (rco != 0)
        check_err(&err);
    if (rc == 0 && reel_route_cmd(m.route) != REEL_CMD_NONE && mlen < 8) {
        REEL_ASSERT(rco == 0);
        REEL_ASSERT(mo.route == m.route && mo.id == m.id && mo.id2 == m.id2);
    }
    if (rco == 0)
        REEL_ASSERT(reel_route_cmd(mo.route) != REEL_CMD_NONE);

    if (rc == 0 && reel_route_cmd(m.route) != REEL_CMD_NONE) {
        /* The body in a block of its own size: a read past it is caught. */
        char *b = malloc(len + 1);
        REEL_ASSERT(b != NULL);
        memcpy(b, body, len);
        fuzz_write(&m, line, line_len, b, len, data, size);
        free(b);
    }
    free(line);
    return 0;
}
