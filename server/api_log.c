/*
 * api_log.c: GET /v1/log (NDJSON pages), GET /v1/log/stream (SSE) and
 * GET /healthz.
 *
 * A stream keeps its own log iterator (iterators are per thread: all run
 * on the loop thread). It is pumped when commands commit and when its
 * client drained output: events go out while less than
 * SRV_SSE_BUFFER_BYTES are queued, so a catch-up from an old offset is
 * paced by the client, and a live consumer that stops reading is cut at a
 * heartbeat when it is still over the bound with nothing written since the
 * heartbeat before.
 */
#include "server/api_int.h"
#include "engine/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Event types as a bit set (types 1..REEL_EV_MAX). */
typedef uint64_t type_set_t;
_Static_assert(REEL_EV_MAX < 64, "types fit the set");

struct api_stream {
    reel_api_t *api;
    reel_http_req_t *req;
    reel_log_iter_t *it;
    uint64_t next;           /* next offset to send */
    type_set_t types;        /* 0: all */
    uint64_t written_mark;   /* events sent at the last heartbeat */
    uint64_t sent;           /* events sent */
    bool over_at_beat;       /* over the bound at the last heartbeat */
    api_stream_t *prev, *nextp;
};

/* `types` (comma list): 0 with *set (0: all), -1 with err. */
static int parse_types(const reel_route_match_t *m, type_set_t *set, reel_api_err_t *err)
{
    char buf[1024];
    *set = 0;
    int q = reel_query_get(m->query, m->query_len, "types", buf, sizeof(buf));
    if (q == 0 || (q > 0 && buf[0] == '\0'))
        return 0;
    for (char *p = buf, *tok; q > 0 && (tok = strsep(&p, ",")) != NULL;) {
        uint16_t t = reel_event_type_parse(tok, strlen(tok));
        if (t == REEL_EV_NONE) {
            q = -1;
            break;
        }
        *set |= 1ull << t;
    }
    if (q < 0) {
        reel_api_err_set(err, 400, "bad_field", "types", "types is a comma list of event types");
        return -1;
    }
    return 0;
}

/* The JSON of record rec into out (cap bytes): length, or -1 for a
 * record that is not an event. */
static int record_json(const reel_record_t *rec, char *out, size_t cap)
{
    reel_event_t ev;
    if (reel_event_decode(rec->type, rec->payload, rec->length, &ev) != 0)
        return -1;
    ev.offset = rec->offset;
    ev.at = rec->time_ms;
    return reel_event_to_json(&ev, out, cap);
}

static int log_page(reel_api_t *a, uint64_t from, uint64_t limit, type_set_t types,
                    reel_jbuf_t *b)
{
    static char json[SRV_EVENT_JSON_MAX];
    reel_log_t *log = reel_engine_log(a->engine);
    uint64_t end = reel_log_end(log);
    reel_log_iter_t *it = NULL;
    reel_record_t rec;
    if (from >= end)
        return 0;
    int rc = reel_log_iter_open(log, from, &it);
    for (uint64_t shown = 0, scanned = 0; rc == 0 && shown < limit && from + scanned < end &&
                                          scanned < SRV_LOG_SCAN_MAX && b->len < SRV_LOG_BYTES_MAX;
         scanned++) {
        rc = reel_log_iter_next(it, &rec);
        if (rc != 0)
            break;
        if (types != 0 && (rec.type >= 64 || !(types & (1ull << rec.type))))
            continue;
        int n = record_json(&rec, json, sizeof(json));
        if (n < 0)
            continue;
        reel_jbuf_add(b, json, (size_t)n);
        reel_jbuf_add(b, "\n", 1);
        shown++;
    }
    reel_log_iter_close(it);
    return rc == REEL_EEND ? 0 : rc;
}

void reel__api_log(reel_api_t *a, reel_http_req_t *req, const reel_route_match_t *m)
{
    reel_api_err_t err;
    uint64_t from = 0, limit = SRV_LOG_LIMIT_DEFAULT;
    type_set_t types;
    reel_jbuf_t b;
    reel_jbuf_init(&b);
    if (reel_query_u64(m->query, m->query_len, "from", 0, UINT64_MAX / 2, &from, &err) < 0 ||
        reel_query_limit(m->query, m->query_len, SRV_LOG_LIMIT_DEFAULT, SRV_LOG_LIMIT_MAX, &limit,
                         &err) != 0 ||
        parse_types(m, &types, &err) != 0) {
        reel__api_reply_err(a, req, m->route, &err);
        return;
    }
    int rc = log_page(a, from, limit, types, &b);
    if (rc != 0) {
        reel_api_err_set(&err, 503, "unavailable", "", "reading the log: %s", reel_strerror(rc));
        reel__api_reply_err(a, req, m->route, &err);
    } else {
        reel__api_reply(a, req, m->route, 200, "application/x-ndjson", NULL, &b);
    }
    reel_jbuf_free(&b);
}

/* ---- SSE ---- */

static void stream_free(api_stream_t *s)
{
    reel_api_t *a = s->api;
    if (s->prev)
        s->prev->nextp = s->nextp;
    else
        a->streams = s->nextp;
    if (s->nextp)
        s->nextp->prev = s->prev;
    a->nstreams--;
    reel_log_iter_close(s->it);
    reel_http_stream_end(s->req);
    free(s);
}

/* Sends what the log holds past s->next while the output is under its
 * bound. Returns false when the stream ended. */
static bool stream_pump(api_stream_t *s)
{
    static char json[SRV_EVENT_JSON_MAX];
    reel_jbuf_t b;
    reel_record_t rec;
    reel_log_t *log = reel_engine_log(s->api->engine);
    if (!reel_http_stream_alive(s->req)) {
        stream_free(s);
        return false;
    }
    reel_jbuf_init(&b);
    while (s->next < reel_log_end(log) &&
           reel_http_stream_queued(s->req) + b.len < SRV_SSE_BUFFER_BYTES) {
        if (s->it == NULL && reel_log_iter_open(log, s->next, &s->it) != 0)
            break;
        int rc = reel_log_iter_next(s->it, &rec);
        if (rc != 0)
            break;
        s->next = rec.offset + 1;
        if (s->types != 0 && (rec.type >= 64 || !(s->types & (1ull << rec.type))))
            continue;
        int n = record_json(&rec, json, sizeof(json));
        if (n < 0)
            continue;
        reel_jbuf_addf(&b, "id: %llu\nevent: %s\ndata: ", (unsigned long long)rec.offset,
                       reel_event_type_name(rec.type));
        reel_jbuf_add(&b, json, (size_t)n);
        reel_jbuf_add(&b, "\n\n", 2);
        s->sent++;
    }
    bool ok = b.len == 0 || (!b.oom && reel_http_stream_write(s->req, b.ptr, b.len));
    reel_jbuf_free(&b);
    if (!ok) {
        stream_free(s);
        return false;
    }
    return true;
}

static void stream_on_drain(reel_http_req_t *req)
{
    stream_pump(req->app);
}

static void stream_on_close(reel_http_req_t *req)
{
    stream_free(req->app);
}

void reel__api_stream(reel_api_t *a, reel_http_req_t *req, const reel_route_match_t *m)
{
    reel_api_err_t err;
    uint64_t end = reel_log_end(reel_engine_log(a->engine));
    uint64_t from = end, last;
    type_set_t types;
    if (reel_query_u64(m->query, m->query_len, "from", 0, UINT64_MAX / 2, &from, &err) < 0 ||
        parse_types(m, &types, &err) != 0) {
        reel__api_reply_err(a, req, m->route, &err);
        return;
    }
    if (req->last_event_id.present) {
        if (!reel_parse_id(req->last_event_id.value, strlen(req->last_event_id.value), &last) &&
            strcmp(req->last_event_id.value, "0") != 0) {
            reel_api_err_set(&err, 400, "bad_field", "Last-Event-ID",
                             "Last-Event-ID must be an offset");
            reel__api_reply_err(a, req, m->route, &err);
            return;
        }
        from = strcmp(req->last_event_id.value, "0") == 0 ? 1 : last + 1;
    }
    api_stream_t *s = calloc(1, sizeof(*s));
    if (s == NULL || a->stopping) {
        free(s);
        reel_api_err_set(&err, 503, "unavailable", "", "the server cannot stream now");
        reel__api_reply_err(a, req, m->route, &err);
        return;
    }
    s->api = a;
    s->req = req;
    s->next = from;
    s->types = types;
    req->app = s;
    req->on_drain = stream_on_drain;
    req->on_close = stream_on_close;
    s->nextp = a->streams;
    if (a->streams)
        a->streams->prev = s;
    a->streams = s;
    a->nstreams++;
    reel__api_observe(a, m->route, 200, req->start_ns);
    reel_http_stream_start(req, "text/event-stream");
    if (stream_pump(s))
        reel_http_stream_write(req, ": stream open\n\n", 15);
}

void reel__api_streams_pump(reel_api_t *a)
{
    api_stream_t *s = a->streams;
    while (s != NULL) {
        api_stream_t *next = s->nextp;
        stream_pump(s);
        s = next;
    }
}

void reel__api_streams_heartbeat(reel_api_t *a)
{
    api_stream_t *s = a->streams;
    while (s != NULL) {
        api_stream_t *next = s->nextp;
        bool over = reel_http_stream_queued(s->req) >= SRV_SSE_BUFFER_BYTES;
        if (over && s->over_at_beat && s->sent == s->written_mark) {
            stream_free(s); /* a consumer that stopped reading: cut */
        } else {
            s->over_at_beat = over;
            s->written_mark = s->sent;
            if (!reel_http_stream_write(s->req, ": heartbeat\n\n", 13))
                stream_free(s);
        }
        s = next;
    }
}

void reel__api_streams_end(reel_api_t *a)
{
    while (a->streams != NULL)
        stream_free(a->streams);
}

/* ---- health ---- */

void reel__api_healthz(reel_api_t *a, reel_http_req_t *req)
{
    reel_log_t *log = reel_engine_log(a->engine);
    uint64_t end = reel_log_end(log);
    int st = reel_log_status(log);
    reel_jbuf_t b;
    reel_jbuf_init(&b);
    reel_jbuf_addf(&b, "{\"status\":\"ok\",\"offset\":%lld,\"state\":\"%s\"",
                   end == 0 ? -1LL : (long long)(end - 1), st == 0 ? "writable" : "read_only");
    if (st != 0) {
        reel_jbuf_adds(&b, ",\"reason\":");
        reel_jbuf_str(&b, reel_strerror(st), strlen(reel_strerror(st)));
    }
    reel_jbuf_adds(&b, "}");
    reel__api_reply(a, req, REEL_ROUTE_HEALTHZ, 200, "application/json", NULL, &b);
    reel_jbuf_free(&b);
}
