/*
 * http.c: the HTTP/1.1 transport (http.h).
 *
 * A connection is a state machine driven by its bytes and its timer:
 *
 *   IDLE --first byte--> HEADERS --headers done--> BODY --message done--> IDLE
 *     \                    |  431/400/505            |  413/400
 *      \--idle timeout      \--header timeout         \--body timeout
 *                  (close)         (close)                  (close)
 *
 * Invariants:
 *  1. Answers leave in request order: only the head of the queue is
 *     written, and only once it is answered.
 *  2. A connection reads only while it has fewer than SRV_PIPELINE_MAX
 *     unanswered requests, less than SRV_OUTPUT_BYTES_MAX unsent, and is
 *     not closing: every per-connection buffer is bounded.
 *  3. The timer runs only while the connection waits for the client (a
 *     request in progress, or idle with nothing queued); while the
 *     application works on a request, the client is not timed.
 *  4. conn->refs counts the two handles and every request not yet freed;
 *     the memory goes with the last of them.
 */
#include "server/http.h"
#include "engine/common.h"
#include "server/problems.h"

#include <arpa/inet.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Bytes the connection reads into at once; a request's headers fit. */
#define CONN_RBUF_BYTES (32u << 10)
/* After the last answer of a closing connection, unread input is drained
 * this long so the client sees the answer rather than a reset. */
#define LINGER_MS 2000u
/* Answers written with one system call at most (one writev): the answers
 * of one read's pipelined requests leave together. */
#define FLUSH_IOV_MAX 64u
/* Answers held while one read's requests are parsed, at most: past it they
 * are written at once, so the output bound (invariant 2) still holds. */
#define FLUSH_DEFER_BYTES_MAX (256u << 10)

_Static_assert(SRV_HEADER_BYTES_MAX < CONN_RBUF_BYTES, "headers fit the read buffer");

typedef enum conn_phase { PHASE_IDLE, PHASE_HEADERS, PHASE_BODY } conn_phase_t;

/* The request line as it passes, for its protocol token: http-parser as
 * Debian builds it (not HTTP_PARSER_STRICT) takes "HTTX/1.1" for
 * "HTTP/1.1", so the line's last bytes are checked here. */
typedef enum rl_state { RL_START, RL_LINE, RL_DONE } rl_state_t;
/* " HTTP/1.1": the bytes of the line's end that are checked. */
#define RL_TAIL 9

struct reel_http_conn {
    uv_tcp_t tcp;                  /* first: handle->data is not needed */
    uv_timer_t timer;
    uv_shutdown_t shutdown;        /* sends our FIN after a closing answer */
    http_parser parser;
    reel_http_server_t *srv;
    reel_http_conn_t *prev, *next; /* the server's list */
    conn_phase_t phase;
    reel_http_req_t *cur;          /* request being parsed */
    size_t header_bytes;           /* of cur, as far as parsed */
    size_t body_max;               /* of cur */
    int hdr;                       /* header whose value is arriving (HDR_*) */
    bool hdr_in_value;             /* the last callback was a value */
    char hname[32];                /* header name (truncated), lower case */
    size_t hname_len;
    bool saw_length, saw_te;       /* Content-Length, Transfer-Encoding */
    reel_api_err_t err;            /* set by a callback that stops the parser */
    bool has_err;
    reel_http_req_t *head, *tail;  /* unanswered or unwritten, in order */
    uint32_t nreq;
    uint32_t refs;
    bool paused;                   /* parser paused on the pipeline bound */
    bool done;                     /* no more requests are parsed (closing answer, stream) */
    int timer_state;               /* what the timer is armed for (TIMER_*) */
    bool reading;
    bool closing;                  /* handles closing */
    bool lingering;                /* answered and shut down: draining input */
    bool draining;                 /* a stream's connection: input read and dropped */
    bool loopback;
    bool stop;                     /* the message just parsed stops the parser */
    bool parsing;                  /* in conn_parse: answers wait to leave together */
    size_t deferred_bytes;         /* answered while parsing, not yet written */
    rl_state_t rl;                 /* the current request line: where its scan is */
    bool rl_ok;                    /* it ended in " HTTP/d.d" */
    uint8_t rl_len;                /* bytes in rl_tail */
    char rl_tail[RL_TAIL];         /* its last bytes (without CR) */
    char rbuf[CONN_RBUF_BYTES];
    size_t rlen;                   /* bytes in rbuf not yet parsed */
};

struct reel_http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    bool listening;
    reel_http_request_cb cb;
    void *data;
    reel_http_options_t opts;
    http_parser_settings settings;
    reel_http_conn_t *conns;       /* open connections */
    reel_http_stats_t stats;
    bool closing;
};

enum { HDR_NONE, HDR_AUTH, HDR_IDEM, HDR_LAST_ID, HDR_EXPECT, HDR_IGNORE };
enum { TIMER_NONE, TIMER_LINGER, TIMER_HEADERS, TIMER_BODY, TIMER_IDLE };

typedef struct wreq {
    uv_write_t w;
    reel_http_conn_t *conn;
    bool close_after;
    size_t len;
    char data[];                   /* the bytes */
} wreq_t;

static void conn_close(reel_http_conn_t *c);
static void conn_flush(reel_http_conn_t *c);
static void conn_update(reel_http_conn_t *c);
static void conn_parse(reel_http_conn_t *c);
static void conn_resume(reel_http_conn_t *c);

const char *reel_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return status < 500 ? "Error" : "Server Error";
    }
}

/* ---- requests ---- */

static void conn_unref(reel_http_conn_t *c)
{
    REEL_ASSERT(c->refs > 0);
    if (--c->refs == 0)
        free(c);
}

static void req_free(reel_http_req_t *r)
{
    reel_http_conn_t *c = r->conn;
    reel_jbuf_free(&r->body_buf);
    free(r->url);
    free(r->out);
    free(r);
    conn_unref(c);
}

static reel_http_req_t *req_new(reel_http_conn_t *c)
{
    reel_http_req_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->conn = c;
    r->loopback = c->loopback;
    r->start_ns = reel_mono_ns();
    r->body = "";
    c->refs++;
    if (c->tail)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    c->nreq++;
    return r;
}

/* ---- writing ---- */

static void shutdown_cb(uv_shutdown_t *sh, int status)
{
    reel_http_conn_t *c = sh->data;
    if (status != 0)
        conn_close(c);
    conn_unref(c);
}

/* The last answer before a close left: our FIN now (the client sees the
 * end of the answer at once); what it still sends is drained until its FIN
 * or the linger time, so it reads the answer rather than a reset. */
static void conn_linger(reel_http_conn_t *c)
{
    c->lingering = true;
    c->shutdown.data = c;
    if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, shutdown_cb) == 0)
        c->refs++;
    conn_update(c);
}

static void write_cb(uv_write_t *w, int status)
{
    wreq_t *wr = (wreq_t *)w;
    reel_http_conn_t *c = wr->conn;
    bool close_after = wr->close_after;
    free(wr);
    if (status == 0 && close_after && !c->closing) {
        conn_linger(c);
    } else if (status != 0) {
        conn_close(c);
    } else if (!c->closing) {
        if (c->head && c->head->stream && c->head->on_drain &&
            c->tcp.write_queue_size < SRV_SSE_BUFFER_BYTES / 2)
            c->head->on_drain(c->head);
        conn_resume(c); /* paused on the output bound: it drained */
        if (!c->closing)
            conn_update(c);
    }
    conn_unref(c);
}

/* Queues bufs[0..n) from byte skip on (a copy: the caller keeps its
 * buffers) behind what is queued already; write_cb follows. */
static int conn_write_queued(reel_http_conn_t *c, const uv_buf_t *bufs, unsigned n, size_t skip,
                             size_t total, bool close_after)
{
    REEL_ASSERT(skip < total);
    size_t want = total - skip;
    wreq_t *wr = malloc(sizeof(*wr) + want);
    if (wr == NULL) {
        conn_close(c);
        return -1;
    }
    wr->conn = c;
    wr->close_after = close_after;
    wr->len = 0;
    for (unsigned i = 0; i < n; i++) {
        size_t from = skip < bufs[i].len ? skip : bufs[i].len;
        skip -= from;
        memcpy(wr->data + wr->len, bufs[i].base + from, bufs[i].len - from);
        wr->len += bufs[i].len - from;
    }
    REEL_ASSERT(wr->len == want);
    uv_buf_t b = uv_buf_init(wr->data, (unsigned)wr->len);
    c->refs++;
    if (uv_write(&wr->w, (uv_stream_t *)&c->tcp, &b, 1, write_cb) != 0) {
        free(wr);
        c->refs--;
        conn_close(c);
        return -1;
    }
    return 0;
}

/* Writes bufs[0..n) in order: at once with one writev (uv_try_write) when
 * nothing is queued before them, the rest (or all) queued. Fewer system
 * calls than one write a buffer, and no copy, callback or poll change for
 * what leaves at once. 0, or -1 with the connection closing. */
static int conn_writev(reel_http_conn_t *c, const uv_buf_t *bufs, unsigned n, bool close_after)
{
    size_t total = 0, done = 0;
    for (unsigned i = 0; i < n; i++)
        total += bufs[i].len;
    if (c->closing || c->lingering)
        return -1;
    REEL_ASSERT(total > 0);
    if (c->tcp.write_queue_size == 0) {
        int w = uv_try_write((uv_stream_t *)&c->tcp, bufs, n);
        if (w >= 0) {
            done = (size_t)w;
        } else if (w != UV_EAGAIN && w != UV_ENOSYS) {
            conn_close(c); /* the client is gone (EPIPE, ECONNRESET) */
            return -1;
        }
    }
    if (done == total) {
        if (close_after)
            conn_linger(c);
        return 0;
    }
    return conn_write_queued(c, bufs, n, done, total, close_after);
}

static int conn_write(reel_http_conn_t *c, const char *data, size_t len, bool close_after)
{
    if (c->closing || c->lingering)
        return -1;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    return conn_write_queued(c, &b, 1, 0, len, close_after);
}

/* The head's answered requests that are not streams, up to FLUSH_IOV_MAX
 * and up to one that closes the connection: their bytes in bufs; the count
 * of requests (with empty answers) in *nreq. Whether the last one closes. */
static bool flush_gather(reel_http_conn_t *c, uv_buf_t *bufs, unsigned *nbuf, unsigned *nreq)
{
    *nbuf = *nreq = 0;
    for (reel_http_req_t *r = c->head; r != NULL && r->replied && !r->stream; r = r->next) {
        if (*nbuf == FLUSH_IOV_MAX)
            break;
        ++*nreq;
        if (r->out_len > 0)
            bufs[(*nbuf)++] = uv_buf_init(r->out, (unsigned)r->out_len);
        if (r->close_after)
            return true;
    }
    return false;
}

/* Pops and frees the first n requests of the queue (written). */
static void flush_pop(reel_http_conn_t *c, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        reel_http_req_t *r = c->head;
        REEL_ASSERT(r != NULL && r->replied && !r->stream);
        c->head = r->next;
        if (c->head == NULL)
            c->tail = NULL;
        c->nreq--;
        req_free(r);
    }
}

/* Invariant 1: writes the answered requests at the head, in order. */
static void conn_flush_now(reel_http_conn_t *c)
{
    uv_buf_t bufs[FLUSH_IOV_MAX];
    c->deferred_bytes = 0;
    while (c->head != NULL && c->head->replied && !c->closing && !c->lingering) {
        reel_http_req_t *r = c->head;
        if (r->stream) {
            if (r->out_len > 0) {
                conn_write(c, r->out, r->out_len, false);
                free(r->out);
                r->out = NULL;
                r->out_len = 0;
            }
            return; /* holds the connection from now on */
        }
        unsigned nbuf, nreq;
        bool last = flush_gather(c, bufs, &nbuf, &nreq);
        REEL_ASSERT(nreq > 0);
        if (last)
            c->paused = c->done = true; /* nothing more is parsed here */
        int rc = nbuf > 0 ? conn_writev(c, bufs, nbuf, last) : 0;
        if (rc != 0)
            return; /* closing: conn_close freed the queue */
        flush_pop(c, nreq);
    }
}

/* Answers given while a read's requests are parsed leave together once
 * the parse ends (conn_parse), else at once. */
static void conn_flush(reel_http_conn_t *c)
{
    if (c->parsing && c->deferred_bytes < FLUSH_DEFER_BYTES_MAX)
        return;
    conn_flush_now(c);
}

/* ---- timer and reading (invariants 2 and 3) ---- */

static void timer_cb(uv_timer_t *t)
{
    reel_http_conn_t *c = t->data;
    if (!c->lingering) {
        c->srv->stats.timeouts++;
        if (c->timer_state != TIMER_IDLE)
            reel_problem(REEL_PROBLEM_SLOW_CLIENT, "a client did not send its request's %s "
                         "in time", c->timer_state == TIMER_HEADERS ? "headers" : "body");
    }
    conn_close(c);
}

static void conn_arm_timer(reel_http_conn_t *c)
{
    const reel_http_options_t *o = &c->srv->opts;
    uint64_t ms = 0;
    int state = TIMER_NONE;
    if (c->lingering) {
        ms = LINGER_MS;
        state = TIMER_LINGER;
    } else if (c->phase == PHASE_HEADERS) {
        ms = o->header_timeout_ms;
        state = TIMER_HEADERS;
    } else if (c->phase == PHASE_BODY) {
        ms = o->body_timeout_ms;
        state = TIMER_BODY;
    } else if (c->nreq == 0) {
        ms = o->idle_timeout_ms;
        state = TIMER_IDLE;
    }
    /* (Re)started only when the state changes: a trickle of bytes does not
     * extend a header deadline. */
    if (state == c->timer_state)
        return;
    c->timer_state = state;
    if (state == TIMER_NONE)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, timer_cb, ms, 0);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    /* Input that is only dropped (lingering, draining) goes to one scratch
     * buffer: rbuf may be full of unparsed bytes, and a read of 0 bytes'
     * room would fail the connection (UV_ENOBUFS). The loop is one
     * thread, and nobody reads what lands there. */
    static char scratch[4096];
    reel_http_conn_t *c = (reel_http_conn_t *)h;
    (void)suggested;
    if (c->lingering || c->draining) {
        *buf = uv_buf_init(scratch, sizeof(scratch));
        return;
    }
    size_t room = sizeof(c->rbuf) - c->rlen;
    *buf = uv_buf_init(c->rbuf + c->rlen, (unsigned)room);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    reel_http_conn_t *c = (reel_http_conn_t *)s;
    (void)buf;
    if (n < 0) {
        conn_close(c);
        return;
    }
    if (n == 0)
        return;
    if (c->lingering || c->draining)
        return; /* discarded: only watching for the client's close */
    c->rlen += (size_t)n;
    REEL_ASSERT(c->rlen <= sizeof(c->rbuf));
    conn_parse(c);
    conn_update(c);
}

static void conn_update(reel_http_conn_t *c)
{
    if (c->closing)
        return;
    if ((c->lingering || c->draining) && !c->reading) {
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
        c->reading = true;
    }
    if (!c->lingering && !c->draining) {
        size_t queued = c->tcp.write_queue_size;
        bool want = !c->paused && c->nreq < SRV_PIPELINE_MAX && c->rlen < sizeof(c->rbuf) &&
                    queued < (c->reading ? SRV_OUTPUT_BYTES_MAX : SRV_OUTPUT_BYTES_MAX / 2);
        if (want && !c->reading) {
            c->reading = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) == 0;
        } else if (!want && c->reading) {
            uv_read_stop((uv_stream_t *)&c->tcp);
            c->reading = false;
            if (queued >= SRV_OUTPUT_BYTES_MAX)
                c->srv->stats.reads_paused++;
        }
    }
    conn_arm_timer(c);
}

/* ---- closing ---- */

static void handle_close_cb(uv_handle_t *h)
{
    conn_unref(h->data);
}

static void conn_close(reel_http_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    reel_http_server_t *srv = c->srv;
    srv->stats.connections_open--;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    /* Answered requests go now; unanswered ones when the application
     * answers them; a stream is told to end. */
    reel_http_req_t *r = c->head;
    c->head = c->tail = NULL;
    c->nreq = 0;
    if (c->cur && c->phase != PHASE_IDLE && !c->cur->replied) {
        c->cur->replied = true; /* never handed to the application */
    }
    while (r != NULL) {
        reel_http_req_t *next = r->next;
        r->next = NULL;
        if (r->on_close && (r->stream || !r->replied))
            r->on_close(r); /* a stream ends; a waiting request is dropped */
        else if (r->replied && !r->stream)
            req_free(r);
        r = next;
    }
    uv_close((uv_handle_t *)&c->tcp, handle_close_cb);
    uv_close((uv_handle_t *)&c->timer, handle_close_cb);
}

/* ---- parsing ---- */

/* Answers the request being parsed with err and stops parsing. */
static void conn_fail(reel_http_conn_t *c, const reel_api_err_t *err)
{
    c->srv->stats.bad_requests++;
    reel_problem(REEL_PROBLEM_BAD_REQUEST, "%d %s: %s", err->status, err->code, err->message);
    reel_http_req_t *r = c->cur;
    if (r == NULL || c->phase == PHASE_IDLE)
        r = req_new(c);
    c->cur = NULL;
    c->phase = PHASE_IDLE;
    c->paused = c->done = true;
    if (r == NULL) {
        conn_close(c);
        return;
    }
    reel_http_reply_error(r, err);
}

static reel_http_conn_t *pconn(http_parser *p)
{
    return p->data;
}

static int on_message_begin(http_parser *p)
{
    reel_http_conn_t *c = pconn(p);
    c->cur = req_new(c);
    if (c->cur == NULL) {
        reel_api_err_set(&c->err, 503, "unavailable", "", "out of memory");
        c->has_err = true;
        return -1;
    }
    c->phase = PHASE_HEADERS;
    c->header_bytes = 0;
    c->hdr = HDR_NONE;
    c->hdr_in_value = false;
    c->hname_len = 0;
    c->saw_length = c->saw_te = false;
    conn_arm_timer(c);
    return 0;
}

static int count_header_bytes(reel_http_conn_t *c, size_t n)
{
    c->header_bytes += n;
    if (c->header_bytes <= SRV_HEADER_BYTES_MAX)
        return 0;
    reel_api_err_set(&c->err, 431, "headers_too_large", "",
                     "request line and headers exceed %u bytes", SRV_HEADER_BYTES_MAX);
    c->has_err = true;
    return -1;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    reel_http_conn_t *c = pconn(p);
    if (count_header_bytes(c, n) != 0)
        return -1;
    reel_jbuf_add(&c->cur->body_buf, at, n); /* the url, until headers end */
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    reel_http_conn_t *c = pconn(p);
    if (count_header_bytes(c, n + 4) != 0)
        return -1;
    if (c->hdr_in_value) {
        c->hname_len = 0;
        c->hdr_in_value = false;
    }
    for (size_t i = 0; i < n && c->hname_len < sizeof(c->hname) - 1; i++) {
        char ch = at[i];
        c->hname[c->hname_len++] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    c->hname[c->hname_len] = '\0';
    return 0;
}

static reel_http_header_t *header_slot(reel_http_req_t *r, const char *name)
{
    if (strcmp(name, "authorization") == 0)
        return &r->authorization;
    if (strcmp(name, "idempotency-key") == 0)
        return &r->idempotency_key;
    if (strcmp(name, "last-event-id") == 0)
        return &r->last_event_id;
    if (strcmp(name, "expect") == 0)
        return &r->expect;
    return NULL;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    reel_http_conn_t *c = pconn(p);
    if (count_header_bytes(c, n) != 0)
        return -1;
    if (!c->hdr_in_value) {
        c->hdr_in_value = true;
        if (strcmp(c->hname, "content-length") == 0)
            c->saw_length = true;
        if (strcmp(c->hname, "transfer-encoding") == 0)
            c->saw_te = true;
    }
    reel_http_header_t *h = header_slot(c->cur, c->hname);
    if (h == NULL)
        return 0;
    h->present = true;
    for (size_t i = 0; i < n; i++, h->len++) {
        if (h->len < sizeof(h->value) - 1)
            h->value[h->len] = at[i];
    }
    h->value[h->len < sizeof(h->value) ? h->len : sizeof(h->value) - 1] = '\0';
    return 0;
}

static int headers_check(reel_http_conn_t *c, http_parser *p)
{
    if (c->rl != RL_DONE || !c->rl_ok) {
        reel_api_err_set(&c->err, 400, "bad_request", "",
                         "malformed request line: it must end in HTTP/1.1 or HTTP/1.0");
        return -1;
    }
    bool v10 = p->http_major == 1 && p->http_minor == 0;
    bool v11 = p->http_major == 1 && p->http_minor == 1;
    if (!v10 && !v11) {
        reel_api_err_set(&c->err, 505, "http_version", "", "HTTP/%u.%u is not supported",
                         p->http_major, p->http_minor);
        return -1;
    }
    if (c->saw_length && c->saw_te) {
        reel_api_err_set(&c->err, 400, "bad_request", "",
                         "Content-Length together with Transfer-Encoding");
        return -1;
    }
    bool batch = strncmp(c->cur->url, "/v1/batch", 9) == 0 &&
                 (c->cur->url[9] == '\0' || c->cur->url[9] == '?');
    c->body_max = batch ? SRV_BATCH_BODY_BYTES_MAX : SRV_BODY_BYTES_MAX;
    if (c->saw_length && p->content_length != ULLONG_MAX && p->content_length > c->body_max) {
        reel_api_err_set(&c->err, 413, "too_large", "", "the body exceeds %zu bytes",
                         c->body_max);
        return -1;
    }
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    reel_http_conn_t *c = pconn(p);
    reel_http_req_t *r = c->cur;
    size_t ulen;
    r->url = reel_jbuf_take(&r->body_buf, &ulen);
    r->url_len = ulen;
    if (r->url == NULL && (r->url = strdup("")) == NULL)
        goto out_oom;
    snprintf(r->method, sizeof(r->method), "%s", http_method_str((enum http_method)p->method));
    if (headers_check(c, p) != 0) {
        c->has_err = true;
        return -1;
    }
    r->keep_alive = http_should_keep_alive(p) != 0;
    c->phase = PHASE_BODY;
    conn_arm_timer(c);
    bool has_body = (p->flags & F_CHUNKED) || (c->saw_length && p->content_length > 0);
    if (has_body && r->expect.present && strcasecmp(r->expect.value, "100-continue") == 0) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        conn_flush_now(c); /* answers held for this read leave first */
        if (c->head == r && !c->closing && !c->lingering)
            conn_write(c, cont, sizeof(cont) - 1, false);
        /* A write that failed closed the connection and freed r: the
         * parser must not call back about it again (conn_parse_once sees
         * closing and reports nothing). */
        if (c->closing)
            return -1;
    }
    return 0;
out_oom:
    reel_api_err_set(&c->err, 503, "unavailable", "", "out of memory");
    c->has_err = true;
    return -1;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    reel_http_conn_t *c = pconn(p);
    reel_http_req_t *r = c->cur;
    if (r->body_buf.len + n > c->body_max) {
        reel_api_err_set(&c->err, 413, "too_large", "", "the body exceeds %zu bytes",
                         c->body_max);
        c->has_err = true;
        return -1;
    }
    reel_jbuf_add(&r->body_buf, at, n);
    if (r->body_buf.oom) {
        reel_api_err_set(&c->err, 503, "unavailable", "", "out of memory for the body");
        c->has_err = true;
        return -1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    reel_http_conn_t *c = pconn(p);
    reel_http_req_t *r = c->cur;
    c->cur = NULL;
    c->phase = PHASE_IDLE;
    if (r->body_buf.len > 0) {
        r->body = r->body_buf.ptr;
        r->body_len = r->body_buf.len;
    }
    if (!r->keep_alive)
        r->close_after = true;
    /* The parser pauses after every message, so that the next request
     * line is scanned from its first byte (conn_parse); c->stop says
     * whether parsing really stops here. */
    http_parser_pause(p, 1);
    c->rl = RL_START;
    c->stop = r->close_after || c->nreq >= SRV_PIPELINE_MAX || c->srv->closing;
    if (r->close_after)
        c->paused = c->done = true; /* nothing after a closing request is read */
    c->srv->cb(c->srv, r);
    /* Answers built at once (reads) may fill the output bound within one
     * read's worth of pipelined requests: stop parsing here, not after
     * the read, so a client that never reads holds at most the bound plus
     * one answer (invariant 2); the write callback resumes. */
    if (c->closing || c->tcp.write_queue_size + c->deferred_bytes >= SRV_OUTPUT_BYTES_MAX)
        c->stop = true;
    return 0;
}

/* Maps a parser error to the contract's answer. */
static void parse_error(reel_http_conn_t *c, enum http_errno e)
{
    reel_api_err_t err;
    if (c->has_err) {
        err = c->err;
        c->has_err = false;
    } else if (e == HPE_HEADER_OVERFLOW) {
        reel_api_err_set(&err, 431, "headers_too_large", "", "headers too large");
    } else if (e == HPE_INVALID_VERSION) {
        reel_api_err_set(&err, 505, "http_version", "", "unsupported HTTP version");
    } else {
        reel_api_err_set(&err, 400, "bad_request", "", "malformed request: %s",
                         http_errno_description(e));
    }
    conn_fail(c, &err);
}

/* Scans the request line's bytes in p[0..n) (those before its end that
 * the parser is about to see: it stops after each message, so they are
 * the current request's); blank lines before a request are skipped, as
 * the parser does. Bounded by the line (the parser bounds that). */
static void scan_request_line(reel_http_conn_t *c, const char *p, size_t n)
{
    for (size_t i = 0; i < n && c->rl != RL_DONE; i++) {
        char ch = p[i];
        if (c->rl == RL_START) {
            if (ch == '\r' || ch == '\n')
                continue;
            c->rl = RL_LINE;
            c->rl_len = 0;
        }
        if (ch == '\n') {
            const char *t = c->rl_tail;
            c->rl = RL_DONE;
            c->rl_ok = c->rl_len == RL_TAIL && memcmp(t, " HTTP/", 6) == 0 && t[6] >= '0' &&
                       t[6] <= '9' && t[7] == '.' && t[8] >= '0' && t[8] <= '9';
        } else if (ch != '\r') {
            if (c->rl_len == RL_TAIL) {
                memmove(c->rl_tail, c->rl_tail + 1, RL_TAIL - 1);
                c->rl_len--;
            }
            c->rl_tail[c->rl_len++] = ch;
        }
    }
}

/* One pass of the parser over the unparsed input: until it is used up,
 * the connection pauses (a bound, a closing answer) or fails. */
static void conn_parse_once(reel_http_conn_t *c)
{
    size_t off = 0;
    while (off < c->rlen && !c->paused && !c->closing) {
        scan_request_line(c, c->rbuf + off, c->rlen - off);
        size_t n = http_parser_execute(&c->parser, &c->srv->settings, c->rbuf + off,
                                       c->rlen - off);
        off += n;
        if (c->closing)
            break; /* a write failed inside a callback: the connection is gone */
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e == HPE_PAUSED) {
            http_parser_pause(&c->parser, 0);
            if (!c->stop)
                continue; /* only the pause after each message */
            c->stop = false;
            c->paused = true;
            break;
        }
        if (e != HPE_OK) {
            off = c->rlen; /* nothing more of this connection is parsed */
            parse_error(c, e);
            break;
        }
        if (n == 0)
            break;
    }
    if (off > 0 && !c->closing) {
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
    }
}

/* Whether a connection paused on the pipeline or output bound may parse
 * again (answers left). */
static bool conn_can_resume(const reel_http_conn_t *c)
{
    return !c->closing && !c->lingering && !c->done && c->paused &&
           c->nreq < SRV_PIPELINE_MAX / 2 && c->tcp.write_queue_size < SRV_OUTPUT_BYTES_MAX / 2;
}

/* Parses what was read; the answers given meanwhile leave together at the
 * end of each pass (one writev). A pass that paused on the pipeline bound
 * goes on once they left. Each pass consumes at least one request or
 * ends the loop, so the passes are bounded by the input buffer. */
static void conn_parse(reel_http_conn_t *c)
{
    if (c->parsing) {
        conn_parse_once(c); /* a reply inside a pass resumed parsing: same pass */
        return;
    }
    for (size_t pass = 0; pass <= sizeof(c->rbuf); pass++) {
        c->parsing = true;
        conn_parse_once(c);
        c->parsing = false;
        if (c->closing)
            return;
        conn_flush_now(c); /* the answers of this pass, together */
        if (!conn_can_resume(c))
            return;
        c->paused = false;
    }
    REEL_ASSERT(!"conn_parse: more passes than input bytes");
}

/* Resumes a connection paused on the pipeline or output bound once
 * answers left. */
static void conn_resume(reel_http_conn_t *c)
{
    if (!conn_can_resume(c))
        return;
    c->paused = false;
    conn_parse(c);
}

/* ---- answering ---- */

/* Decimal digits of v into p (at least REEL_U64_DIGITS_MAX bytes): their
 * count. */
static size_t put_u64(char *p, uint64_t v)
{
    char tmp[REEL_U64_DIGITS_MAX];
    size_t i = reel_u64_digits(tmp, v);
    memcpy(p, tmp + i, sizeof(tmp) - i);
    return sizeof(tmp) - i;
}

#define PUT(p, s, n) (memcpy((p), (s), (n)), (p) += (n))

/* The answer's bytes, head and body, in one allocation (no formatting
 * pass: this runs once per request). NULL when out of memory. */
static char *answer_build(int status, const char *ctype, const char *extra, bool close,
                          const char *body, size_t len, size_t *out_len)
{
    static const char close_line[] = "Connection: close\r\n";
    const char *reason = reel_http_reason(status);
    size_t reason_len = strlen(reason), ctype_len = strlen(ctype);
    size_t extra_len = extra ? strlen(extra) : 0;
    char num[20], code[20];
    size_t num_len = put_u64(num, len);
    REEL_ASSERT(status >= 100 && status <= 599);
    REEL_ASSERT(put_u64(code, (uint64_t)status) == 3);
    size_t need = 9 + 3 + 1 + reason_len + 16 + ctype_len + 18 + num_len + 2 + extra_len +
                  (close ? sizeof(close_line) - 1 : 0) + 2 + len;
    char *out = malloc(need), *p = out;
    if (out == NULL)
        return NULL;
    PUT(p, "HTTP/1.1 ", 9);
    PUT(p, code, 3);
    PUT(p, " ", 1);
    PUT(p, reason, reason_len);
    PUT(p, "\r\nContent-Type: ", 16);
    PUT(p, ctype, ctype_len);
    PUT(p, "\r\nContent-Length: ", 18);
    PUT(p, num, num_len);
    PUT(p, "\r\n", 2);
    if (extra_len > 0)
        PUT(p, extra, extra_len);
    if (close)
        PUT(p, close_line, sizeof(close_line) - 1);
    PUT(p, "\r\n", 2);
    if (len > 0)
        PUT(p, body, len);
    REEL_ASSERT((size_t)(p - out) == need);
    *out_len = need;
    return out;
}

void reel_http_reply(reel_http_req_t *r, int status, const char *ctype, const char *extra,
                     const char *body, size_t len)
{
    REEL_ASSERT(!r->replied);
    reel_http_conn_t *c = r->conn;
    r->replied = true;
    if (c->closing) {
        req_free(r);
        return;
    }
    if (c->srv->closing)
        r->close_after = true;
    r->out = answer_build(status, ctype, extra, r->close_after, body, len, &r->out_len);
    if (r->out == NULL) {
        r->close_after = true;
        conn_close(c);
        return;
    }
    if (c->parsing)
        c->deferred_bytes += r->out_len;
    conn_flush(c);
    if (!c->closing) {
        conn_resume(c);
        conn_update(c);
    }
}

void reel_http_reply_error(reel_http_req_t *r, const reel_api_err_t *err)
{
    reel_jbuf_t b;
    reel_jbuf_init(&b);
    reel_api_err_json(&b, err);
    int s = err->status;
    if (s == 400 ? strcmp(err->code, "bad_request") == 0 : (s == 413 || s == 431 || s == 505))
        r->close_after = true;
    reel_http_reply(r, s, "application/json", NULL, b.ptr ? b.ptr : "", b.len);
    reel_jbuf_free(&b);
}

void reel_http_stream_start(reel_http_req_t *r, const char *ctype)
{
    REEL_ASSERT(!r->replied);
    reel_http_conn_t *c = r->conn;
    r->replied = true;
    r->stream = true;
    if (c->closing)
        return; /* the application ends it; it sees stream_alive false */
    reel_jbuf_t b;
    reel_jbuf_init(&b);
    reel_jbuf_addf(&b,
                   "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nCache-Control: no-cache\r\n"
                   "Connection: close\r\n\r\n",
                   ctype);
    r->out = reel_jbuf_take(&b, &r->out_len);
    c->paused = c->done = true; /* a stream is the connection's last request */
    /* Nothing after it is parsed, so its input is read and dropped: that
     * is how a client's close is seen at once. Without it a stream whose
     * client went away held its connection until the next heartbeat
     * (reel bench soak: one socket more after the load). */
    c->draining = true;
    conn_flush(c);
    conn_update(c);
}

void reel_http_chunked_start(reel_http_req_t *r, int status, const char *ctype)
{
    REEL_ASSERT(!r->replied);
    reel_http_conn_t *c = r->conn;
    r->replied = true;
    r->stream = true;
    r->chunked = true;
    if (c->closing)
        return; /* the application ends it; it sees stream_alive false */
    if (c->srv->closing)
        r->close_after = true;
    reel_jbuf_t b;
    reel_jbuf_init(&b);
    reel_jbuf_addf(&b, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n"
                   "%s\r\n",
                   status, reel_http_reason(status), ctype,
                   r->close_after ? "Connection: close\r\n" : "");
    r->out = reel_jbuf_take(&b, &r->out_len);
    if (r->out == NULL) {
        conn_close(c);
        return;
    }
    conn_flush(c);
    conn_update(c);
}

bool reel_http_stream_alive(reel_http_req_t *r)
{
    return !r->conn->closing && !r->conn->lingering;
}

bool reel_http_req_alive(const reel_http_req_t *r)
{
    return !r->conn->closing;
}

/* Appends len bytes to r->out (an answer not yet at the head). */
static bool out_append(reel_http_req_t *r, const char *data, size_t len)
{
    char *p = realloc(r->out, r->out_len + len);
    if (p == NULL)
        return false;
    memcpy(p + r->out_len, data, len);
    r->out = p;
    r->out_len += len;
    return true;
}

bool reel_http_stream_write(reel_http_req_t *r, const char *data, size_t len)
{
    REEL_ASSERT(r->stream);
    reel_http_conn_t *c = r->conn;
    if (!reel_http_stream_alive(r))
        return false;
    if (len == 0)
        return true;
    if (r->chunked) {
        /* One chunk: its size line, the bytes, CRLF. */
        char *frame = malloc(len + 24);
        if (frame == NULL)
            return false;
        int n = snprintf(frame, 24, "%zx\r\n", len);
        memcpy(frame + n, data, len);
        memcpy(frame + n + len, "\r\n", 2);
        bool ok = c->head == r && r->out_len == 0
                      ? conn_write(c, frame, (size_t)n + len + 2, false) == 0
                      : out_append(r, frame, (size_t)n + len + 2);
        free(frame);
        return ok;
    }
    if (c->head == r && r->out_len == 0)
        return conn_write(c, data, len, false) == 0;
    /* Earlier answers (or its own head, held while a read is parsed) are
     * still due: kept until they left. */
    return out_append(r, data, len);
}

size_t reel_http_stream_queued(reel_http_req_t *r)
{
    if (!reel_http_stream_alive(r))
        return 0;
    return r->conn->tcp.write_queue_size + r->out_len;
}

void reel_http_stream_end(reel_http_req_t *r)
{
    REEL_ASSERT(r->stream);
    reel_http_conn_t *c = r->conn;
    if (r->chunked && !c->closing && !c->lingering && out_append(r, "0\r\n\r\n", 5)) {
        /* The last chunk: from here it is an answered request like any
         * other, written (and freed) in order; the connection goes on. */
        r->stream = false;
        r->on_close = r->on_drain = NULL;
        conn_flush(c);
        if (!c->closing) {
            conn_resume(c);
            conn_update(c);
        }
        return;
    }
    r->on_close = NULL; /* conn_close below must not call back into the application */
    if (!c->closing) {
        if (c->head == r) {
            c->head = r->next;
            if (c->head == NULL)
                c->tail = NULL;
            c->nreq--;
        }
        conn_close(c);
    }
    req_free(r);
}

/* ---- accepting ---- */

static void refuse(reel_http_conn_t *c)
{
    static const char body[] =
        "{\"error\":{\"code\":\"unavailable\",\"message\":\"too many connections\"}}";
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s",
                     sizeof(body) - 1, body);
    c->srv->stats.connections_refused++;
    reel_problem(REEL_PROBLEM_CONN_LIMIT, "%llu connections open: refusing more with 503",
                 (unsigned long long)c->srv->opts.max_connections);
    c->paused = c->done = true;
    conn_write(c, head, (size_t)n, true);
}

static bool peer_loopback(uv_tcp_t *tcp)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len) != 0)
        return false;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
    }
    if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
        static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a->sin6_addr.s6_addr, v4mapped, 12) == 0)
            return a->sin6_addr.s6_addr[12] == 127;
        return IN6_IS_ADDR_LOOPBACK(&a->sin6_addr);
    }
    return false;
}

static void connection_cb(uv_stream_t *listener, int status)
{
    reel_http_server_t *srv = listener->data;
    if (status != 0) {
        reel_problem(REEL_PROBLEM_ACCEPT, "accepting a connection: %s", uv_strerror(status));
        return;
    }
    reel_http_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return; /* the kernel keeps it in the backlog; retried on the next event */
    c->srv = srv;
    c->refs = 2;
    uv_tcp_init(srv->loop, &c->tcp);
    uv_timer_init(srv->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    int rc = uv_accept(listener, (uv_stream_t *)&c->tcp);
    if (rc != 0) {
        reel_problem(REEL_PROBLEM_ACCEPT, "accepting a connection: %s", uv_strerror(rc));
        c->closing = true;
        uv_close((uv_handle_t *)&c->tcp, handle_close_cb);
        uv_close((uv_handle_t *)&c->timer, handle_close_cb);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->loopback = peer_loopback(&c->tcp);
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->stats.connections_open++;
    srv->stats.connections_total++;
    if (srv->stats.connections_open > srv->opts.max_connections || srv->closing) {
        refuse(c);
        conn_update(c);
        return;
    }
    conn_update(c);
}

int reel_http_server_start(uv_loop_t *loop, const char *host, int port,
                           const reel_http_options_t *opts, reel_http_request_cb cb, void *data,
                           reel_http_server_t **out, int *bound_port)
{
    struct sockaddr_storage ss;
    int rc;
    reel_http_server_t *srv = calloc(1, sizeof(*srv));
    if (srv == NULL)
        return UV_ENOMEM;
    srv->loop = loop;
    srv->cb = cb;
    srv->data = data;
    srv->opts = opts ? *opts : (reel_http_options_t){0};
    if (srv->opts.max_connections == 0)
        srv->opts.max_connections = SRV_CONNECTIONS_MAX;
    if (srv->opts.header_timeout_ms == 0)
        srv->opts.header_timeout_ms = SRV_HEADER_TIMEOUT_MS;
    if (srv->opts.body_timeout_ms == 0)
        srv->opts.body_timeout_ms = SRV_BODY_TIMEOUT_MS;
    if (srv->opts.idle_timeout_ms == 0)
        srv->opts.idle_timeout_ms = SRV_IDLE_TIMEOUT_MS;
    srv->settings = (http_parser_settings){
        .on_message_begin = on_message_begin,
        .on_url = on_url,
        .on_header_field = on_header_field,
        .on_header_value = on_header_value,
        .on_headers_complete = on_headers_complete,
        .on_body = on_body,
        .on_message_complete = on_message_complete,
    };
    if ((rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss)) != 0 &&
        (rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss)) != 0)
        goto out_free;
    uv_tcp_init(loop, &srv->listener);
    srv->listener.data = srv;
    if ((rc = uv_tcp_bind(&srv->listener, (struct sockaddr *)&ss, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&srv->listener, 1024, connection_cb)) != 0) {
        uv_close((uv_handle_t *)&srv->listener, NULL);
        uv_run(loop, UV_RUN_NOWAIT);
        goto out_free;
    }
    srv->listening = true;
    int len = sizeof(ss);
    uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &len);
    *bound_port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                                : ((struct sockaddr_in6 *)&ss)->sin6_port);
    *out = srv;
    return 0;
out_free:
    free(srv);
    return rc;
}

static void listener_close_cb(uv_handle_t *h)
{
    (void)h;
}

void reel_http_server_stop_accepting(reel_http_server_t *srv)
{
    srv->closing = true;
    if (srv->listening) {
        srv->listening = false;
        uv_close((uv_handle_t *)&srv->listener, listener_close_cb);
    }
    /* Idle keep-alive connections go now; busy ones after their answer. */
    reel_http_conn_t *c = srv->conns;
    while (c != NULL) {
        reel_http_conn_t *next = c->next;
        if (c->nreq == 0 && c->phase == PHASE_IDLE)
            conn_close(c);
        c = next;
    }
}

void reel_http_server_close(reel_http_server_t *srv)
{
    reel_http_server_stop_accepting(srv);
    while (srv->conns != NULL)
        conn_close(srv->conns);
}

void reel_http_server_free(reel_http_server_t *srv)
{
    if (srv == NULL)
        return;
    REEL_ASSERT(srv->conns == NULL && !srv->listening);
    free(srv);
}

bool reel_http_server_idle(reel_http_server_t *srv)
{
    for (reel_http_conn_t *c = srv->conns; c != NULL; c = c->next) {
        for (reel_http_req_t *r = c->head; r != NULL; r = r->next) {
            if (!r->replied || r->chunked)
                return false; /* a chunked answer in progress is in flight */
        }
        if (c->tcp.write_queue_size > 0)
            return false;
    }
    return true;
}

void *reel_http_server_data(reel_http_server_t *srv)
{
    return srv->data;
}

void reel_http_server_stats(reel_http_server_t *srv, reel_http_stats_t *out)
{
    *out = srv->stats;
    out->requests_pending = 0;
    out->output_queued_bytes = 0;
    for (reel_http_conn_t *c = srv->conns; c != NULL; c = c->next) {
        out->requests_pending += c->nreq;
        out->output_queued_bytes += c->tcp.write_queue_size;
    }
}

void reel_http_stream_abort(reel_http_req_t *r)
{
    r->chunked = false; /* no last chunk: the client sees the answer cut short */
    reel_http_stream_end(r);
}

bool reel_http_stream_at_head(const reel_http_req_t *r)
{
    return r->conn->head == r && r->out_len == 0 && !r->conn->closing;
}
