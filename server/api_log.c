/*
 * api_log.c: GET /v1/log (NDJSON pages), GET /v1/log/stream (SSE) and
 * GET /healthz.
 *
 * A stream keeps its own log iterator (iterators are per thread: all run
 * on the loop thread). It is pumped when commands commit and when its
 * client drained output: events go out while less than
 * SRV_SSE_BUFFER_BYTES are queued, so a catch-up from an old offset is
 * paced by the client. A consumer that falls behind is cut at once: a
 * pump that finds it behind the log with its queue past the bound and
 * nothing taken by the client since the pump before ends it. One that
 * stops reading while nothing commits is cut at a heartbeat when it is
 * still over the bound with nothing written since the heartbeat before.
 *
 * A /v1/log page is a chunked answer built in slices of LOG_SLICE_BYTES,
 * one per drain of the client's output (and only once the answers before
 * it left), so a 32 MiB page neither holds the loop for long nor sits in
 * memory whole, and a client that does not read holds one slice.
 */
#include "server/api_int.h"
#include "engine/common.h"
#include "server/problems.h"

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
    uint64_t bytes;          /* bytes written to the stream */
    uint64_t taken_mark;     /* bytes the client had taken at the end of the last pump */
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

/* Bytes of one slice of a /v1/log page: one chunk, built in one go. */
#define LOG_SLICE_BYTES (256u << 10)

/* A /v1/log page being sent. */
typedef struct api_page {
    reel_api_t *api;
    reel_http_req_t *req;
    reel_log_iter_t *it;     /* NULL: the page is empty */
    uint64_t next;           /* next offset to scan */
    uint64_t end;            /* the log's end when the page was asked for */
    uint64_t limit, shown, scanned;
    size_t bytes;            /* of events sent */
    type_set_t types;
} api_page_t;

static void page_free(api_page_t *pg)
{
    reel_log_iter_close(pg->it);
    free(pg);
}

static bool page_done(const api_page_t *pg)
{
    return pg->it == NULL || pg->shown >= pg->limit || pg->next >= pg->end ||
           pg->scanned >= SRV_LOG_SCAN_MAX || pg->bytes >= SRV_LOG_BYTES_MAX;
}

/* Sends the page's next slice once its client took what came before; the
 * last one ends the answer (and frees pg). */
static void page_pump(api_page_t *pg)
{
    static char json[SRV_EVENT_JSON_MAX];
    reel_http_req_t *req = pg->req;
    reel_record_t rec;
    int rc = 0;
    if (!reel_http_stream_at_head(req) && reel_http_stream_alive(req))
        return; /* on_drain comes once the answers before it left */
    reel_jbuf_t b;
    reel_jbuf_init(&b);
    while (!page_done(pg) && b.len < LOG_SLICE_BYTES) {
        rc = reel_log_iter_next(pg->it, &rec);
        if (rc != 0)
            break;
        pg->scanned++;
        pg->next = rec.offset + 1;
        if (pg->types != 0 && (rec.type >= 64 || !(pg->types & (1ull << rec.type))))
            continue;
        int n = record_json(&rec, json, sizeof(json));
        if (n < 0)
            continue;
        reel_jbuf_add(&b, json, (size_t)n);
        reel_jbuf_add(&b, "\n", 1);
        pg->bytes += (size_t)n + 1;
        pg->shown++;
    }
    if (rc == REEL_EEND) {
        rc = 0;
        pg->next = pg->end;
    }
    bool ok = rc == 0 && !b.oom && reel_http_stream_write(req, b.ptr ? b.ptr : "", b.len);
    reel_jbuf_free(&b);
    if (!ok) {
        /* The head left with 200: a failure now can only cut the answer. */
        req->on_close = NULL;
        reel_http_stream_abort(req);
        page_free(pg);
    } else if (page_done(pg)) {
        reel__api_observe(pg->api, REEL_ROUTE_LOG, 200, req->start_ns);
        req->on_close = NULL;
        reel_http_stream_end(req);
        page_free(pg);
    }
}

static void page_on_drain(reel_http_req_t *req)
{
    page_pump(req->app);
}

static void page_on_close(reel_http_req_t *req)
{
    api_page_t *pg = req->app;
    req->on_close = NULL;
    reel_http_stream_end(req);
    page_free(pg);
}

void reel__api_log(reel_api_t *a, reel_http_req_t *req, const reel_route_match_t *m)
{
    reel_api_err_t err;
    uint64_t from = 0, limit = SRV_LOG_LIMIT_DEFAULT;
    type_set_t types;
    if (reel_query_u64(m->query, m->query_len, "from", 0, UINT64_MAX / 2, &from, &err) < 0 ||
        reel_query_limit(m->query, m->query_len, SRV_LOG_LIMIT_DEFAULT, SRV_LOG_LIMIT_MAX, &limit,
                         &err) != 0 ||
        parse_types(m, &types, &err) != 0) {
        reel__api_reply_err(a, req, m->route, &err);
        return;
    }
    reel_log_t *log = reel_engine_log(a->engine);
    api_page_t *pg = calloc(1, sizeof(*pg));
    int rc = pg == NULL ? -ENOMEM : 0;
    if (pg != NULL) {
        *pg = (api_page_t){.api = a, .req = req, .next = from, .end = reel_log_end(log),
                           .limit = limit, .types = types};
        if (from < pg->end)
            rc = reel_log_iter_open(log, from, &pg->it);
    }
    if (rc != 0) {
        if (pg != NULL)
            page_free(pg);
        reel_api_err_set(&err, 503, "unavailable", "", "reading the log: %s", reel_strerror(rc));
        reel__api_reply_err(a, req, m->route, &err);
        return;
    }
    req->app = pg;
    req->on_drain = page_on_drain;
    req->on_close = page_on_close;
    reel_http_chunked_start(req, 200, "application/x-ndjson");
    page_pump(pg);
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
    size_t queued = reel_http_stream_queued(s->req);
    if (s->next < reel_log_end(log) && queued >= SRV_SSE_BUFFER_BYTES &&
        s->bytes - queued == s->taken_mark) {
        /* Behind the log, the queue past its bound, and nothing taken
         * since the last pump: a consumer that fell behind is cut now. */
        reel_problem(REEL_PROBLEM_SLOW_CLIENT, "an SSE consumer fell behind the log by more "
                     "than %u bytes: cut", SRV_SSE_BUFFER_BYTES);
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
    s->bytes += b.len;
    reel_jbuf_free(&b);
    if (!ok) {
        stream_free(s);
        return false;
    }
    s->taken_mark = s->bytes - reel_http_stream_queued(s->req);
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
    if (stream_pump(s) && reel_http_stream_write(req, ": stream open\n\n", 15))
        s->bytes += 15;
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
            reel_problem(REEL_PROBLEM_SLOW_CLIENT, "an SSE consumer stopped reading: cut");
            stream_free(s);
        } else {
            s->over_at_beat = over;
            s->written_mark = s->sent;
            if (reel_http_stream_write(s->req, ": heartbeat\n\n", 13))
                s->bytes += 13;
            else
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
    bool transient;
    int st = reel_engine_status(a->engine, &transient); /* reel.h */
    reel_jbuf_t b;
    reel_jbuf_init(&b);
    reel_jbuf_addf(&b, "{\"status\":\"ok\",\"offset\":%lld,\"state\":\"%s\"",
                   end == 0 ? -1LL : (long long)(end - 1), st == 0 ? "writable" : "read_only");
    if (st != 0) {
        char reason[160];
        int len = snprintf(reason, sizeof(reason), "%s%s", reel_strerror(st),
                           transient ? " (writes resume once the file system takes them)"
                                     : " (writes stopped until restart)");
        reel_jbuf_adds(&b, ",\"reason\":");
        reel_jbuf_str(&b, reason, (size_t)len < sizeof(reason) ? (size_t)len : sizeof(reason) - 1);
    }
    reel_jbuf_adds(&b, "}");
    reel__api_reply(a, req, REEL_ROUTE_HEALTHZ, 200, "application/json", NULL, &b);
    reel_jbuf_free(&b);
}
