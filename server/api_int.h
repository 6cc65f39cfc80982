/*
 * api_int.h: what api.c, api_log.c and api_metrics.c share.
 */
#ifndef REEL_SERVER_API_INT_H
#define REEL_SERVER_API_INT_H

#include <pthread.h>

#include "server/api.h"
#include "server/cmdjson.h"
#include "server/http.h"
#include "server/jbuf.h"
#include "server/limits.h"
#include "server/route.h"

typedef struct api_batch api_batch_t;
typedef struct api_stream api_stream_t;

/* A command in flight: one write request, one batch line or one claim. */
typedef struct api_cmd {
    reel_cmd_req_t req;        /* submitted to the engine (req.data = this) */
    struct reel_api *api;
    reel_cmdjson_t parsed;     /* the command's strings live here */
    reel_http_req_t *http;     /* the request to answer, NULL for a batch line */
    api_batch_t *batch;        /* the batch of a line */
    uint32_t line;             /* its index in the batch */
    reel_route_t route;
    uint64_t deadline_ms;      /* parked claim: when it answers empty (monotonic ms) */
    uint64_t tried_ms;         /* parked claim: last run */
    struct api_cmd *next;      /* done list, parked list */
} api_cmd_t;

/* Latency buckets (ms) of the request histograms. */
#define API_LAT_BUCKETS 12
/* Status codes counted apart; the rest count as "other". */
#define API_STATUS_SLOTS 16

typedef struct api_metrics {
    uint64_t requests[REEL_ROUTE_COUNT][API_STATUS_SLOTS];
    uint64_t latency[REEL_ROUTE_COUNT][API_LAT_BUCKETS + 1]; /* last: +Inf */
    uint64_t latency_sum_us[REEL_ROUTE_COUNT];
    uint64_t cmds_failed_submit;   /* REEL_EFULL and others: 503 */
} api_metrics_t;

struct reel_api {
    uv_loop_t *loop;
    reel_engine_t *engine;
    reel_api_config_t cfg;
    reel_http_server_t *http;
    uv_async_t async;              /* wakes the loop for finished commands */
    uv_timer_t claims_timer;       /* parked claims: deadlines and retries */
    uv_timer_t heartbeat_timer;    /* SSE heartbeats */
    uv_timer_t drain_timer;        /* graceful stop */
    pthread_mutex_t mu;            /* guards done */
    api_cmd_t *done_head, *done_tail;
    api_cmd_t *parked;             /* parked claims */
    uint32_t nparked;
    uint64_t inflight;             /* commands submitted, not yet answered */
    api_stream_t *streams;
    uint32_t nstreams;
    struct { char scope; char token[SRV_TOKEN_LEN_MAX + 1]; } tokens[SRV_TOKENS_MAX];
    uint32_t ntokens;
    bool stopping;
    uint64_t drain_deadline_ms;
    void (*done_cb)(void *);
    void *done_data;
    int handles_open;
    api_metrics_t m;
};

/* api.c */
void reel__api_observe(reel_api_t *a, reel_route_t r, int status, uint64_t start_ns);
void reel__api_reply_err(reel_api_t *a, reel_http_req_t *req, reel_route_t r,
                         const reel_api_err_t *err);
void reel__api_reply(reel_api_t *a, reel_http_req_t *req, reel_route_t r, int status,
                     const char *ctype, const char *extra, reel_jbuf_t *body);

/* api_log.c: /v1/log, /v1/log/stream, /healthz. */
void reel__api_log(reel_api_t *a, reel_http_req_t *req, const reel_route_match_t *m);
void reel__api_stream(reel_api_t *a, reel_http_req_t *req, const reel_route_match_t *m);
void reel__api_streams_pump(reel_api_t *a);
void reel__api_streams_heartbeat(reel_api_t *a);
void reel__api_streams_end(reel_api_t *a);
void reel__api_healthz(reel_api_t *a, reel_http_req_t *req);
/* api_metrics.c */
void reel__api_metrics(reel_api_t *a, reel_http_req_t *req);

#endif /* REEL_SERVER_API_INT_H */
