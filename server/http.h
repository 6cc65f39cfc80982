/*
 * http.h: reeld's HTTP/1.1 transport on libuv: connections, parsing
 * (http-parser), keep-alive, pipelining, chunked request bodies, `Expect:
 * 100-continue`, and the limits of server/limits.h with the answers the
 * contract gives (431, 413, 400 bad_request, 505, 503 for one connection
 * too many). What a request means is the application's (api.h).
 *
 * Ordering. Each parsed request gets a slot in its connection's queue, in
 * arrival order; the application answers a slot whenever it likes (a
 * write answers later, from the engine), and answers leave strictly in
 * request order. A slot may instead become a stream (SSE): it holds the
 * connection for the rest of its life.
 *
 * Lifetime. A request stays valid until the application answers it (or
 * ends its stream), even when its connection closed meanwhile: the answer
 * is then dropped. The connection's memory lives until its last request
 * is answered.
 *
 * Threads: everything here runs on the loop thread.
 */
#ifndef REEL_SERVER_HTTP_H
#define REEL_SERVER_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "server/jbuf.h"
#include "server/limits.h"

typedef struct reel_http_server reel_http_server_t;
typedef struct reel_http_conn reel_http_conn_t;
typedef struct reel_http_req reel_http_req_t;

typedef void (*reel_http_request_cb)(reel_http_server_t *srv, reel_http_req_t *req);
typedef void (*reel_http_stream_cb)(reel_http_req_t *req);

/* A header kept from the request: value truncated to its buffer, with the
 * length as sent (so a caller can tell a too long value). */
typedef struct reel_http_header {
    bool present;
    size_t len;                         /* bytes as sent */
    char value[SRV_HEADER_VALUE_MAX];   /* NUL-terminated, truncated */
} reel_http_header_t;

struct reel_http_req {
    /* The request (valid until the answer). */
    char method[16];              /* "GET", ... */
    char *url;                    /* the request target, NUL-terminated */
    size_t url_len;
    char *body;                   /* NUL-terminated (may hold NULs), "" when none */
    size_t body_len;
    reel_http_header_t authorization;
    reel_http_header_t idempotency_key;
    reel_http_header_t last_event_id;
    reel_http_header_t expect;
    bool loopback;                /* the peer is 127.0.0.0/8 or ::1 */
    uint64_t start_ns;            /* when its first byte was parsed (monotonic) */
    void *app;                    /* the application's */
    reel_http_stream_cb on_drain; /* stream: the output queue drained below the half */
    reel_http_stream_cb on_close; /* stream: the connection closed; end the stream. A request
                                   * not yet answered: its client is gone; answer it now
                                   * (the answer is dropped), e.g. a parked long poll */
    /* private */
    reel_http_conn_t *conn;
    reel_http_req_t *next;
    bool replied;                 /* answer (or stream head) given */
    bool stream;                  /* an open-ended answer */
    bool chunked;                 /* the stream is a chunked answer (the connection goes on) */
    bool close_after;             /* close the connection after this answer */
    bool keep_alive;              /* the client wants the connection kept */
    char *out;                    /* the answer's bytes, until written */
    size_t out_len;
    reel_jbuf_t body_buf;         /* the body as it arrives */
};

typedef struct reel_http_options {
    uint32_t max_connections;   /* 0: SRV_CONNECTIONS_MAX */
    uint32_t header_timeout_ms; /* 0: SRV_HEADER_TIMEOUT_MS */
    uint32_t body_timeout_ms;   /* 0: SRV_BODY_TIMEOUT_MS */
    uint32_t idle_timeout_ms;   /* 0: SRV_IDLE_TIMEOUT_MS */
} reel_http_options_t;

/* Counters for /metrics. */
typedef struct reel_http_stats {
    uint64_t connections_open;
    uint64_t connections_total;
    uint64_t connections_refused;  /* over max_connections */
    uint64_t timeouts;             /* cut for a slow request or an idle keep-alive */
    uint64_t bad_requests;         /* 400, 413, 431, 505 from the transport */
    uint64_t reads_paused;         /* times a client's output bound stopped reading */
    uint64_t requests_pending;     /* now: parsed, not yet answered or written */
    uint64_t output_queued_bytes;  /* now: answer bytes the clients have not taken */
} reel_http_stats_t;

/* Listens on host:port (port 0: any free one; *bound_port gets it).
 * Errors: libuv's (negative). */
int reel_http_server_start(uv_loop_t *loop, const char *host, int port,
                           const reel_http_options_t *opts, reel_http_request_cb cb, void *data,
                           reel_http_server_t **out, int *bound_port);
/* Stops accepting; keeps the connections. */
void reel_http_server_stop_accepting(reel_http_server_t *srv);
/* Closes every connection (streams get on_close) and the listener; free
 * the server with reel_http_server_free once the loop has closed them. */
void reel_http_server_close(reel_http_server_t *srv);
/* Frees srv once the loop has run every close callback (after close, when
 * uv_run returned). NULL is a no-op. */
void reel_http_server_free(reel_http_server_t *srv);
/* Requests parsed but not answered, and bytes not yet written. */
bool reel_http_server_idle(reel_http_server_t *srv);
void *reel_http_server_data(reel_http_server_t *srv);
void reel_http_server_stats(reel_http_server_t *srv, reel_http_stats_t *out);

/* Answers req: status, content type, extra header lines ("Name: v\r\n"...,
 * or NULL), and the body (copied). req may be freed on return. */
void reel_http_reply(reel_http_req_t *req, int status, const char *ctype, const char *extra,
                     const char *body, size_t len);
/* Answers with the contract's error object; 400 bad_request, 413, 431 and
 * 505 close the connection. */
void reel_http_reply_error(reel_http_req_t *req, const reel_api_err_t *err);

/* Turns req into a stream: the head (200, ctype, no length, the
 * connection closes at its end) is queued now. */
void reel_http_stream_start(reel_http_req_t *req, const char *ctype);
/* Turns req into a chunked answer (Transfer-Encoding: chunked) of status:
 * a stream whose writes are chunks and whose end (reel_http_stream_end)
 * sends the last chunk and lets the connection go on (keep-alive and
 * pipelining as for any answer). on_drain paces it as for a stream. */
void reel_http_chunked_start(reel_http_req_t *req, int status, const char *ctype);
/* Queues bytes on a stream (a chunk of a chunked answer). Returns false
 * when the connection is gone. */
bool reel_http_stream_write(reel_http_req_t *req, const char *data, size_t len);
/* Bytes of the stream's connection not yet written (0 when gone). */
size_t reel_http_stream_queued(reel_http_req_t *req);
/* Whether the stream's connection is still open. */
bool reel_http_stream_alive(reel_http_req_t *req);
/* Ends the stream (the connection closes) and frees req; a chunked answer
 * gets its last chunk instead and the connection goes on (req is freed
 * once written). */
void reel_http_stream_end(reel_http_req_t *req);
/* Ends a stream or a chunked answer by closing its connection (an error
 * after the head left: the client sees the answer cut short); frees req. */
void reel_http_stream_abort(reel_http_req_t *req);
/* Whether the stream's earlier answers and its own queued bytes are all
 * handed to the socket (a chunked answer behind others waits for this). */
bool reel_http_stream_at_head(const reel_http_req_t *req);
/* Whether req's connection is still open (a request not yet answered). */
bool reel_http_req_alive(const reel_http_req_t *req);

/* Reason phrase of a status ("Not Found"). */
const char *reel_http_reason(int status);

#endif /* REEL_SERVER_HTTP_H */
