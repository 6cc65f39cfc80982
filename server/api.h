/*
 * api.h: reeld's application: every endpoint of ../shared/API.md on the
 * transport of http.h and the engine of engine/reel.h.
 *
 * Threads. Everything runs on the loop thread except the engine's command
 * callbacks, which run on its writer thread: they only push the finished
 * command onto a mutex-guarded list and wake the loop (uv_async_t); the
 * loop answers. Reads run on the loop thread against short read snapshots.
 *
 * Writes: a request becomes a command (cmdjson.h) submitted to the engine;
 * its answer leaves when the engine answers, i.e. when it is durable and
 * applied. Many connections' writes share the engine's group commits.
 * A render claim with wait_ms and nothing to claim is parked, and run
 * again whenever new work may have appeared (a generation was created, a
 * render failed, a claim expired leases; at the latest every second, for
 * leases that ran out) until its deadline, when it answers empty.
 */
#ifndef REEL_SERVER_API_H
#define REEL_SERVER_API_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "engine/reel.h"
#include "server/http.h"

typedef struct reel_api_config {
    const char *host;             /* --listen HOST */
    int port;                     /* --listen :PORT (0: any free one) */
    const char *token_file;       /* --token-file, NULL: loopback clients only */
    bool trust_client_time;       /* --trust-client-time */
    uint32_t invites_per_user;    /* as the engine's options (0: default) */
    uint32_t generations_per_day;
    uint32_t sse_heartbeat_ms;    /* --sse-heartbeat-ms, 0: SRV_SSE_HEARTBEAT_MS (15 s) */
    uint32_t max_inflight_writes; /* --max-inflight-writes, 0: SRV_WRITES_INFLIGHT_MAX */
    reel_http_options_t http;     /* connection limits and timeouts */
    struct reel_index *index;     /* ranks for_you and trending; NULL: the views fallback */
} reel_api_config_t;

typedef struct reel_api reel_api_t;

/* Starts serving on loop. *port gets the bound port. err (len bytes) gets a
 * message on failure. Errors: -errno or libuv's. */
int reel_api_start(uv_loop_t *loop, reel_engine_t *e, const reel_api_config_t *cfg,
                   reel_api_t **out, int *port, char *err, size_t len);
/* Graceful stop (SIGTERM): stops accepting, answers parked claims, ends
 * streams, lets in-flight requests finish (at most SRV_DRAIN_TIMEOUT_MS),
 * then closes every handle; done runs once all is closed. */
void reel_api_shutdown(reel_api_t *a, void (*done)(void *data), void *data);
/* Frees a after the loop has closed its handles. */
void reel_api_free(reel_api_t *a);

#endif /* REEL_SERVER_API_H */
