/*
 * api.c: requests to reads and commands, answers back (api.h).
 *
 * A command's life: parsed (cmdjson), submitted (inflight + 1), answered
 * by the engine on its writer thread (pushed onto done, async woken),
 * taken on the loop (api_async_cb), then either parked (a claim that
 * found nothing and may wait) or answered (inflight - 1). Nothing else
 * touches a submitted command until its callback ran.
 */
#include "server/api_int.h"
#include "engine/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/problems.h"
#include "server/reads.h"

/* Parked claims are checked this often for their deadline. */
#define CLAIMS_TICK_MS 50u
/* A parked claim runs again at least this often (leases that ran out). */
#define CLAIMS_RETRY_MS 1000u

static void api_handle_close_cb(uv_handle_t *h);
static void claims_timer_cb(uv_timer_t *t);

static uint64_t mono_ms(void)
{
    return reel_mono_ns() / 1000000u;
}

/* ---- metrics hooks ---- */

static int status_slot(int status)
{
    static const int known[API_STATUS_SLOTS - 1] = {200, 201, 202, 400, 401, 403, 404, 405,
                                                    409, 413, 429, 431, 503, 505, 500};
    for (int i = 0; i < API_STATUS_SLOTS - 1; i++) {
        if (known[i] == status)
            return i;
    }
    return API_STATUS_SLOTS - 1;
}

void reel__api_observe(reel_api_t *a, reel_route_t r, int status, uint64_t start_ns)
{
    static const uint64_t bounds_ms[API_LAT_BUCKETS] = {1, 2, 5, 10, 25, 50,
                                                        100, 250, 500, 1000, 2500, 10000};
    uint64_t us = (reel_mono_ns() - start_ns) / 1000u;
    int b = 0;
    REEL_ASSERT((int)r >= 0 && r < REEL_ROUTE_COUNT);
    a->m.requests[r][status_slot(status)]++;
    while (b < API_LAT_BUCKETS && us > bounds_ms[b] * 1000u)
        b++;
    a->m.latency[r][b]++;
    a->m.latency_sum_us[r] += us;
}

void reel__api_reply(reel_api_t *a, reel_http_req_t *req, reel_route_t r, int status,
                     const char *ctype, const char *extra, reel_jbuf_t *body)
{
    if (body->oom) {
        reel_api_err_t err;
        reel_api_err_set(&err, 503, "unavailable", "", "out of memory for the answer");
        reel__api_reply_err(a, req, r, &err);
        return;
    }
    reel__api_observe(a, r, status, req->start_ns);
    reel_http_reply(req, status, ctype, extra, body->ptr ? body->ptr : "", body->len);
}

void reel__api_reply_err(reel_api_t *a, reel_http_req_t *req, reel_route_t r,
                         const reel_api_err_t *err)
{
    reel__api_observe(a, r, err->status, req->start_ns);
    reel_http_reply_error(req, err);
}

/* ---- auth (API.md, "Auth") ---- */

static int load_tokens(reel_api_t *a, const char *path, char *err, size_t len)
{
    char line[512];
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        reel_errf(err, len, "--token-file %s: %s", path, strerror(errno));
        return -errno;
    }
    for (unsigned n = 1; fgets(line, sizeof(line), f) != NULL; n++) {
        char scope[16], token[SRV_TOKEN_LEN_MAX + 2];
        if (line[0] == '#' || strspn(line, " \t\r\n") == strlen(line))
            continue;
        bool ok = sscanf(line, "%15s %129s", scope, token) == 2 &&
                  strlen(token) <= SRV_TOKEN_LEN_MAX && a->ntokens < SRV_TOKENS_MAX &&
                  (strcmp(scope, "admin") == 0 || strcmp(scope, "app") == 0 ||
                   strcmp(scope, "worker") == 0 || strcmp(scope, "reader") == 0);
        if (!ok) {
            reel_errf(err, len, "--token-file %s:%u: expected 'SCOPE TOKEN' with SCOPE admin, "
                      "app, worker or reader (at most %u tokens)", path, n, SRV_TOKENS_MAX);
            fclose(f);
            return REEL_EUSAGE;
        }
        a->tokens[a->ntokens].scope = scope[0] == 'a' && scope[1] == 'd' ? 'A' : scope[0];
        snprintf(a->tokens[a->ntokens].token, sizeof(a->tokens[0].token), "%s", token);
        a->ntokens++;
    }
    fclose(f);
    return 0;
}

/* The caller's scope: 'A' admin, 'a' app, 'w' worker, 'r' reader; 0 with
 * err when refused (401: no or unknown token; 403: not loopback). */
static char caller_scope(const reel_api_t *a, const reel_http_req_t *req, reel_api_err_t *err)
{
    if (a->cfg.token_file == NULL) {
        if (req->loopback)
            return 'A';
        reel_api_err_set(err, 403, "forbidden", "",
                         "without --token-file only loopback clients are served");
        return 0;
    }
    const char *v = req->authorization.value;
    if (req->authorization.present && req->authorization.len < sizeof(req->authorization.value) &&
        strncmp(v, "Bearer ", 7) == 0) {
        for (uint32_t i = 0; i < a->ntokens; i++) {
            if (strcmp(a->tokens[i].token, v + 7) == 0)
                return a->tokens[i].scope;
        }
    }
    reel_api_err_set(err, 401, "unauthorized", "", "a valid Authorization: Bearer token is "
                     "required");
    return 0;
}

/* Whether scope may call route r with method. */
static bool scope_allows(char scope, reel_route_t r, const char *method)
{
    switch (scope) {
    case 'A': return true;
    case 'a': return !reel_route_is_render(r);
    case 'w': return reel_route_is_render(r);
    case 'r': return strcmp(method, "GET") == 0;
    default: return false;
    }
}

/* ---- commands ---- */

/* Writer thread: hand the finished command to the loop. Never touches
 * libuv but uv_async_send, which is thread-safe. */
static void engine_cb(reel_cmd_req_t *req)
{
    api_cmd_t *c = req->data;
    reel_api_t *a = c->api;
    c->next = NULL;
    pthread_mutex_lock(&a->mu);
    if (a->done_tail)
        a->done_tail->next = c;
    else
        a->done_head = c;
    a->done_tail = c;
    pthread_mutex_unlock(&a->mu);
    uv_async_send(&a->async);
}

static api_cmd_t *cmd_new(reel_api_t *a, reel_route_t r)
{
    api_cmd_t *c = calloc(1, sizeof(*c));
    if (c != NULL) {
        c->api = a;
        c->route = r;
    }
    return c;
}

static void cmd_free(api_cmd_t *c)
{
    reel_cmdjson_free(&c->parsed);
    free(c);
}

/* Idempotency-Key (1..64 printable ASCII): 0, 1 when absent, -1 with err. */
static int idem_key(const reel_http_req_t *req, reel_api_err_t *err)
{
    const reel_http_header_t *h = &req->idempotency_key;
    if (!h->present)
        return 1;
    bool ok = h->len >= 1 && h->len <= SRV_IDEM_KEY_LEN_MAX;
    for (size_t i = 0; ok && i < h->len; i++)
        ok = h->value[i] >= 0x20 && h->value[i] <= 0x7e;
    if (!ok) {
        reel_api_err_set(err, 400, "bad_field", "Idempotency-Key",
                         "Idempotency-Key must be 1 to 64 printable ASCII bytes");
        return -1;
    }
    return 0;
}

static void cmd_prepare(api_cmd_t *c)
{
    memset(&c->req.res, 0, sizeof(c->req.res));
    c->req.cmd = c->parsed.cmd;
    c->req.cb = engine_cb;
    c->req.data = c;
    c->req.next = NULL;
}

/* Answers c as if the engine had refused it (overload, queue full,
 * closed), with nothing appended. */
static void cmd_refuse(reel_api_t *a, api_cmd_t *c, bool over, int rc)
{
    a->m.cmds_failed_submit++;
    c->req.res.status = 503;
    c->req.res.error = "unavailable";
    c->req.res.offset = -1;
    if (over || rc == REEL_EFULL)
        snprintf(c->req.res.message, sizeof(c->req.res.message),
                 "overloaded: %llu writes in flight; retry later",
                 (unsigned long long)a->inflight);
    else
        snprintf(c->req.res.message, sizeof(c->req.res.message),
                 "the engine refused the write: %s", reel_strerror(rc));
    if (over || rc == REEL_EFULL)
        reel_problem(REEL_PROBLEM_OVERLOAD, "%s", c->req.res.message);
    a->inflight++;
    engine_cb(&c->req);
}

/* Submits n commands together (one /v1/batch: they share a group commit);
 * those past the writes in flight allowed are refused, in order. */
static void submit_cmds(reel_api_t *a, api_cmd_t **cs, size_t n, reel_cmd_req_t **reqs)
{
    uint32_t max = a->cfg.max_inflight_writes ? a->cfg.max_inflight_writes
                                              : SRV_WRITES_INFLIGHT_MAX;
    size_t room = a->inflight < max ? max - a->inflight : 0;
    size_t take = n < room ? n : room;
    for (size_t i = 0; i < n; i++) {
        cmd_prepare(cs[i]);
        reqs[i] = &cs[i]->req;
    }
    int rc = take > 0 ? reel_engine_submit_many(a->engine, reqs, take) : REEL_EFULL;
    if (rc == 0)
        a->inflight += take;
    for (size_t i = rc == 0 ? take : 0; i < n; i++)
        cmd_refuse(a, cs[i], i >= take, rc);
}

static void submit_cmd(reel_api_t *a, api_cmd_t *c)
{
    reel_cmd_req_t *req;
    submit_cmds(a, &c, 1, &req);
}

/* One write request: parse, check, submit. */
static void serve_write(reel_api_t *a, reel_http_req_t *req, const reel_route_match_t *m,
                        bool admin)
{
    reel_api_err_t err;
    api_cmd_t *c = cmd_new(a, m->route);
    if (c == NULL) {
        reel_api_err_set(&err, 503, "unavailable", "", "out of memory");
        reel__api_reply_err(a, req, m->route, &err);
        return;
    }
    int idem = idem_key(req, &err);
    if (idem < 0 || reel_cmdjson_parse(m, req->body, req->body_len, a->cfg.trust_client_time,
                                       &c->parsed, &err) != 0) {
        free(c);
        reel__api_reply_err(a, req, m->route, &err);
        return;
    }
    c->http = req;
    c->parsed.cmd.admin = admin;
    if (idem == 0) {
        reel_jbuf_t op;
        reel_jbuf_init(&op);
        reel_jbuf_addf(&op, "%s ", req->method);
        reel_jbuf_add(&op, req->url, req->url_len);
        if (op.oom) {
            reel_jbuf_free(&op);
            cmd_free(c);
            reel_api_err_set(&err, 503, "unavailable", "", "out of memory");
            reel__api_reply_err(a, req, m->route, &err);
            return;
        }
        c->parsed.cmd.idem_key = req->idempotency_key.value;
        c->parsed.cmd.idem_key_len = (uint32_t)req->idempotency_key.len;
        c->parsed.cmd.idem_fp = reel_cmdjson_idem_fp(op.ptr, op.len, c->parsed.root);
        reel_jbuf_free(&op);
    }
    if (c->parsed.cmd.kind == REEL_CMD_RENDER_CLAIM && c->parsed.wait_ms > 0)
        c->deadline_ms = mono_ms() + c->parsed.wait_ms;
    submit_cmd(a, c);
}

/* ---- parked claims ---- */

static void answer_cmd(reel_api_t *a, api_cmd_t *c);

/* The client of a parked claim went away: the claim is dropped now (its
 * answer goes nowhere), so it never leases a task to nobody. */
static void parked_on_close(reel_http_req_t *req)
{
    api_cmd_t *c = req->app;
    reel_api_t *a = c->api;
    for (api_cmd_t **pp = &a->parked; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            a->nparked--;
            break;
        }
    }
    if (a->parked == NULL)
        uv_timer_stop(&a->claims_timer);
    req->on_close = NULL;
    req->app = NULL;
    answer_cmd(a, c); /* frees req: its connection is closed */
    cmd_free(c);
}

static void park(reel_api_t *a, api_cmd_t *c)
{
    c->http->app = c;
    c->http->on_close = parked_on_close;
    c->tried_ms = mono_ms();
    c->next = a->parked;
    a->parked = c;
    a->nparked++;
    if (!uv_is_active((uv_handle_t *)&a->claims_timer))
        uv_timer_start(&a->claims_timer, claims_timer_cb, CLAIMS_TICK_MS, CLAIMS_TICK_MS);
}

/* Runs parked claims again: all of them (new work may be there), or only
 * those past their deadline or retry time. */
static void unpark(reel_api_t *a, bool all)
{
    uint64_t now = mono_ms();
    api_cmd_t **pp = &a->parked;
    while (*pp != NULL) {
        api_cmd_t *c = *pp;
        if (all || a->stopping || now >= c->deadline_ms || now >= c->tried_ms + CLAIMS_RETRY_MS) {
            *pp = c->next;
            a->nparked--;
            c->http->on_close = NULL;
            c->http->app = NULL;
            if (!reel_http_req_alive(c->http)) {
                answer_cmd(a, c); /* dropped: never claims for a client that left */
                cmd_free(c);
                continue;
            }
            if (a->stopping || now >= c->deadline_ms)
                c->deadline_ms = 0; /* the last try: answered whatever it finds */
            submit_cmd(a, c);
            continue;
        }
        pp = &c->next;
    }
    if (a->parked == NULL)
        uv_timer_stop(&a->claims_timer);
}

static void claims_timer_cb(uv_timer_t *t)
{
    unpark(t->data, false);
}

/* ---- answers ---- */

static void batch_line_done(reel_api_t *a, api_cmd_t *c);

/* c's answer body into b: a claim's tasks come whole (prompt, cameos,
 * remix_of) from a views snapshot, also on a /v1/batch line, so that a
 * worker can complete and claim in one request. */
static void cmd_answer_body(reel_api_t *a, const api_cmd_t *c, reel_jbuf_t *b)
{
    reel_views_txn_t *t = NULL;
    const reel_cmd_result_t *res = &c->req.res;
    if (c->parsed.cmd.kind == REEL_CMD_RENDER_CLAIM && res->nclaimed > 0 &&
        reel_engine_read_begin(a->engine, &t) != 0)
        t = NULL;
    reel_cmdjson_answer(c->parsed.cmd.kind, res, t, b);
    reel_views_read_end(t);
}

/* Answers c's request (dropped when its client left); c stays the caller's. */
static void answer_cmd(reel_api_t *a, api_cmd_t *c)
{
    reel_jbuf_t b;
    char extra[64] = "";
    const reel_cmd_result_t *res = &c->req.res;
    reel_jbuf_init(&b);
    cmd_answer_body(a, c, &b);
    if (res->status == 429)
        snprintf(extra, sizeof(extra), "Retry-After: %llu\r\n",
                 (unsigned long long)res->retry_after_s);
    else if (res->status == 503 && strncmp(res->message, "overloaded", 10) == 0)
        snprintf(extra, sizeof(extra), "Retry-After: 1\r\n");
    if (res->replayed)
        snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), "Idempotent-Replayed: true\r\n");
    reel__api_reply(a, c->http, c->route, res->status, "application/json", extra, &b);
    reel_jbuf_free(&b);
}

/* Loop thread: a command came back from the engine. */
static void cmd_done(reel_api_t *a, api_cmd_t *c, bool *committed, bool *work)
{
    const reel_cmd_result_t *res = &c->req.res;
    REEL_ASSERT(a->inflight > 0);
    a->inflight--;
    if (res->status == 503 && strncmp(res->message, "overloaded", 10) != 0)
        reel_problem(REEL_PROBLEM_STORAGE, "a write was refused: %s", res->message);
    if (res->error == NULL && res->offset >= 0) {
        *committed = true;
        reel_cmd_kind_t k = c->parsed.cmd.kind;
        *work = *work || k == REEL_CMD_GENERATION_CREATE || k == REEL_CMD_RENDER_FAIL ||
                k == REEL_CMD_RENDER_CLAIM;
    }
    if (c->parsed.cmd.kind == REEL_CMD_RENDER_CLAIM && res->error == NULL && res->nclaimed == 0 &&
        c->deadline_ms != 0 && !a->stopping && a->nparked < SRV_PARKED_CLAIMS_MAX &&
        mono_ms() < c->deadline_ms) {
        park(a, c);
        return;
    }
    if (c->batch != NULL) {
        batch_line_done(a, c);
        return;
    }
    answer_cmd(a, c);
    cmd_free(c);
}

static void api_async_cb(uv_async_t *h)
{
    reel_api_t *a = h->data;
    bool committed = false, work = false;
    pthread_mutex_lock(&a->mu);
    api_cmd_t *c = a->done_head;
    a->done_head = a->done_tail = NULL;
    pthread_mutex_unlock(&a->mu);
    while (c != NULL) {
        api_cmd_t *next = c->next;
        cmd_done(a, c, &committed, &work);
        c = next;
    }
    if (work && a->parked != NULL)
        unpark(a, true);
    if (committed)
        reel__api_streams_pump(a);
}

/* ---- batch (POST /v1/batch) ---- */

struct api_batch {
    reel_http_req_t *http;
    uint32_t nlines;
    uint32_t pending;            /* lines submitted, not yet answered */
    int *status;                 /* per line */
    reel_jbuf_t *bodies;         /* per line */
};

static void batch_finish(reel_api_t *a, api_batch_t *bt)
{
    reel_jbuf_t out;
    reel_jbuf_init(&out);
    for (uint32_t i = 0; i < bt->nlines; i++) {
        reel_jbuf_addf(&out, "{\"status\":%d,\"body\":", bt->status[i]);
        reel_jbuf_add(&out, bt->bodies[i].ptr ? bt->bodies[i].ptr : "{}",
                      bt->bodies[i].ptr ? bt->bodies[i].len : 2);
        reel_jbuf_adds(&out, "}\n");
        reel_jbuf_free(&bt->bodies[i]);
    }
    reel__api_reply(a, bt->http, REEL_ROUTE_BATCH, 200, "application/x-ndjson", NULL, &out);
    reel_jbuf_free(&out);
    free(bt->status);
    free(bt->bodies);
    free(bt);
}

static void batch_line_done(reel_api_t *a, api_cmd_t *c)
{
    api_batch_t *bt = c->batch;
    REEL_ASSERT(bt->pending > 0);
    bt->status[c->line] = c->req.res.status;
    cmd_answer_body(a, c, &bt->bodies[c->line]);
    cmd_free(c);
    if (--bt->pending == 0)
        batch_finish(a, bt);
}

static void batch_line_err(api_batch_t *bt, uint32_t i, const reel_api_err_t *err)
{
    bt->status[i] = err->status;
    reel_api_err_json(&bt->bodies[i], err);
}

/* Parses one line into a command (NULL with err when the line is bad). */
static api_cmd_t *batch_parse_line(reel_api_t *a, const char *p, size_t n, char scope,
                                   reel_api_err_t *err)
{
    json_error_t jerr;
    reel_route_match_t m;
    json_t *line = json_loadb(p, n, JSON_REJECT_DUPLICATES, &jerr);
    json_t *op = line ? json_object_get(line, "op") : NULL;
    json_t *key = line ? json_object_get(line, "idempotency_key") : NULL;
    api_cmd_t *c = NULL;
    if (line == NULL || !json_is_object(line)) {
        reel_api_err_set(err, 400, "bad_json", "", "a line must be a JSON object");
    } else if (!json_is_string(op)) {
        reel_api_err_set(err, 400, op ? "bad_field" : "missing_field", "op",
                         "op must be \"METHOD /path\"");
    } else if (key != NULL && (!json_is_string(key) || json_string_length(key) < 1 ||
                               json_string_length(key) > SRV_IDEM_KEY_LEN_MAX)) {
        reel_api_err_set(err, 400, "bad_field", "idempotency_key",
                         "idempotency_key must be 1 to 64 printable ASCII bytes");
    } else if (reel_cmdjson_op(json_string_value(op), json_string_length(op), &m, err) == 0) {
        const char *method = json_string_value(op);
        if (!scope_allows(scope, m.route, strncmp(method, "GET", 3) == 0 ? "GET" : "POST")) {
            reel_api_err_set(err, 403, "forbidden", "op", "this token may not call %s", method);
        } else if ((c = cmd_new(a, m.route)) == NULL) {
            reel_api_err_set(err, 503, "unavailable", "", "out of memory");
        } else if (reel_cmdjson_parse_value(&m, json_object_get(line, "body"),
                                            a->cfg.trust_client_time, &c->parsed, err) != 0) {
            free(c);
            c = NULL;
        } else if (key != NULL) {
            c->parsed.cmd.idem_key = json_string_value(key);
            c->parsed.cmd.idem_key_len = (uint32_t)json_string_length(key);
            c->parsed.cmd.idem_fp = reel_cmdjson_idem_fp(method, json_string_length(op),
                                                         json_object_get(line, "body"));
            json_decref(c->parsed.root);
            c->parsed.root = json_incref(line); /* the key lives as long as the command */
        }
    }
    json_decref(line);
    if (c != NULL)
        c->parsed.cmd.admin = scope == 'A';
    return c;
}

static uint32_t count_lines(const char *body, size_t len)
{
    uint32_t n = 0;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(body + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - body) : len;
        if (strspn(body + i, " \t\r") < e - i)
            n++;
        if (n > SRV_BATCH_LINES_MAX)
            break;
        i = e + 1;
    }
    return n;
}

static void serve_batch(reel_api_t *a, reel_http_req_t *req, char scope)
{
    reel_api_err_t err;
    uint32_t n = count_lines(req->body, req->body_len);
    if (n > SRV_BATCH_LINES_MAX) {
        reel_api_err_set(&err, 413, "too_large", "", "a batch holds at most %u lines",
                         SRV_BATCH_LINES_MAX);
        reel__api_reply_err(a, req, REEL_ROUTE_BATCH, &err);
        return;
    }
    api_batch_t *bt = calloc(1, sizeof(*bt));
    if (bt != NULL) {
        bt->status = calloc(n + 1, sizeof(*bt->status));
        bt->bodies = calloc(n + 1, sizeof(*bt->bodies));
    }
    if (bt == NULL || bt->status == NULL || bt->bodies == NULL) {
        if (bt != NULL) {
            free(bt->status);
            free(bt->bodies);
        }
        free(bt);
        reel_api_err_set(&err, 503, "unavailable", "", "out of memory");
        reel__api_reply_err(a, req, REEL_ROUTE_BATCH, &err);
        return;
    }
    bt->http = req;
    bt->nlines = n;
    bt->pending = 1; /* held until every line is submitted */
    api_cmd_t **cs = malloc((n + 1) * sizeof(*cs));
    reel_cmd_req_t **reqs = malloc((n + 1) * sizeof(*reqs));
    size_t nc = 0;
    uint32_t i = 0;
    for (size_t off = 0; off < req->body_len && i < n;) {
        const char *nl = memchr(req->body + off, '\n', req->body_len - off);
        size_t e = nl ? (size_t)(nl - req->body) : req->body_len;
        const char *p = req->body + off;
        size_t len = e - off;
        off = e + 1;
        if (strspn(p, " \t\r") >= len)
            continue;
        api_cmd_t *c = batch_parse_line(a, p, len, scope, &err);
        if (c == NULL) {
            batch_line_err(bt, i++, &err);
            continue;
        }
        c->batch = bt;
        c->line = i++;
        bt->pending++;
        if (cs != NULL && reqs != NULL)
            cs[nc++] = c;
        else
            submit_cmd(a, c); /* no memory for the group: one at a time */
    }
    if (nc > 0) /* the lines together: one group commit when they fit a batch */
        submit_cmds(a, cs, nc, reqs);
    free(cs);
    free(reqs);
    if (--bt->pending == 0)
        batch_finish(a, bt);
}

/* ---- dispatch ---- */

static void on_request(reel_http_server_t *srv, reel_http_req_t *req)
{
    reel_api_t *a = reel_http_server_data(srv);
    reel_route_match_t m;
    reel_api_err_t err, route_err;
    int matched = reel_route_match(req->method, req->url, req->url_len, &m, &route_err);
    if (matched == 0 && m.route == REEL_ROUTE_HEALTHZ) {
        reel__api_healthz(a, req);
        return;
    }
    if (matched == 0 && m.route == REEL_ROUTE_METRICS) {
        reel__api_metrics(a, req);
        return;
    }
    /* Every other request needs its token first (API.md, "Auth"): an
     * unknown path, another method or a malformed id tells a caller
     * without one nothing but 401. */
    char scope = caller_scope(a, req, &err);
    if (scope != 0 && matched != 0) {
        reel__api_reply_err(a, req, REEL_ROUTE_NONE, &route_err);
        return;
    }
    if (scope != 0 && !scope_allows(scope, m.route, req->method)) {
        reel_api_err_set(&err, 403, "forbidden", "", "this token's scope may not call %s",
                         reel_route_name(m.route));
        scope = 0;
    }
    if (scope == 0) {
        reel__api_reply_err(a, req, m.route, &err);
        return;
    }
    if (reel_route_cmd(m.route) != REEL_CMD_NONE) {
        serve_write(a, req, &m, scope == 'A');
    } else if (m.route == REEL_ROUTE_BATCH) {
        serve_batch(a, req, scope);
    } else if (m.route == REEL_ROUTE_LOG) {
        reel__api_log(a, req, &m);
    } else if (m.route == REEL_ROUTE_LOG_STREAM) {
        reel__api_stream(a, req, &m);
    } else {
        reel_jbuf_t b;
        reel_reads_ctx_t ctx = {a->engine, a->cfg.invites_per_user, a->cfg.generations_per_day,
                                a->cfg.index};
        reel_jbuf_init(&b);
        if (reel_reads_serve(&ctx, &m, &b, &err) == 0)
            reel__api_reply(a, req, m.route, 200, "application/json", NULL, &b);
        else
            reel__api_reply_err(a, req, m.route, &err);
        reel_jbuf_free(&b);
    }
}

/* ---- life ---- */

static void heartbeat_cb(uv_timer_t *t)
{
    reel__api_streams_heartbeat(t->data);
    reel_problems_flush(); /* the tail of a burst of problems */
}

int reel_api_start(uv_loop_t *loop, reel_engine_t *e, const reel_api_config_t *cfg,
                   reel_api_t **out, int *port, char *err, size_t len)
{
    reel_api_t *a = calloc(1, sizeof(*a));
    int rc;
    if (a == NULL)
        return -ENOMEM;
    a->loop = loop;
    a->engine = e;
    a->cfg = *cfg;
    if (cfg->token_file != NULL && (rc = load_tokens(a, cfg->token_file, err, len)) != 0) {
        free(a);
        return rc;
    }
    rc = reel_http_server_start(loop, cfg->host, cfg->port, &cfg->http, on_request, a, &a->http,
                                port);
    if (rc != 0) {
        reel_errf(err, len, "listening on %s:%d: %s", cfg->host, cfg->port, uv_strerror(rc));
        free(a);
        return rc;
    }
    pthread_mutex_init(&a->mu, NULL);
    uv_async_init(loop, &a->async, api_async_cb);
    uv_timer_init(loop, &a->claims_timer);
    uv_timer_init(loop, &a->heartbeat_timer);
    uv_timer_init(loop, &a->drain_timer);
    a->async.data = a->claims_timer.data = a->heartbeat_timer.data = a->drain_timer.data = a;
    uint32_t beat_ms = cfg->sse_heartbeat_ms ? cfg->sse_heartbeat_ms : SRV_SSE_HEARTBEAT_MS;
    uv_timer_start(&a->heartbeat_timer, heartbeat_cb, beat_ms, beat_ms);
    *out = a;
    return 0;
}

static void api_handle_close_cb(uv_handle_t *h)
{
    reel_api_t *a = h->data;
    if (--a->handles_open == 0 && a->done_cb != NULL)
        a->done_cb(a->done_data);
}

static void close_all(reel_api_t *a)
{
    reel_http_server_close(a->http);
    a->handles_open = 4;
    uv_close((uv_handle_t *)&a->async, api_handle_close_cb);
    uv_close((uv_handle_t *)&a->claims_timer, api_handle_close_cb);
    uv_close((uv_handle_t *)&a->heartbeat_timer, api_handle_close_cb);
    uv_close((uv_handle_t *)&a->drain_timer, api_handle_close_cb);
}

static void drain_cb(uv_timer_t *t)
{
    reel_api_t *a = t->data;
    bool idle = a->inflight == 0 && a->parked == NULL && reel_http_server_idle(a->http);
    if (idle || mono_ms() >= a->drain_deadline_ms) {
        uv_timer_stop(t);
        close_all(a);
    }
}

void reel_api_shutdown(reel_api_t *a, void (*done)(void *data), void *data)
{
    if (a->stopping)
        return;
    a->stopping = true;
    a->done_cb = done;
    a->done_data = data;
    a->drain_deadline_ms = mono_ms() + SRV_DRAIN_TIMEOUT_MS;
    reel_http_server_stop_accepting(a->http);
    unpark(a, true);
    reel__api_streams_end(a);
    uv_timer_start(&a->drain_timer, drain_cb, 10, 10);
}

void reel_api_free(reel_api_t *a)
{
    if (a == NULL)
        return;
    reel_http_server_free(a->http);
    pthread_mutex_destroy(&a->mu);
    free(a);
}
