/*
 * limits.h: every limit of the HTTP server, in one place, with the reason
 * for its value. The contract's limits (../shared/API.md, "Limits") are
 * marked (API); the rest bound memory and time so that a hostile or slow
 * client costs the server a known, small amount and never stalls others.
 */
#ifndef REEL_SERVER_LIMITS_H
#define REEL_SERVER_LIMITS_H

/* (API) Request line and headers together: past it, 431 headers_too_large. */
#define SRV_HEADER_BYTES_MAX (16u << 10)
/* (API) A request body: past it, 413 too_large. */
#define SRV_BODY_BYTES_MAX (1u << 20)
/* (API) The body of POST /v1/batch. */
#define SRV_BATCH_BODY_BYTES_MAX (64u << 20)
/* Lines of one /v1/batch: each holds a command request (~2 KiB) until the
 * batch is answered, and all are queued at once for one group commit, so
 * the bound is a quarter of the engine's queue (REEL_ENGINE_QUEUE_MAX). */
#define SRV_BATCH_LINES_MAX 16384u
/* Open connections; one more is answered 503 and closed. */
#define SRV_CONNECTIONS_MAX 4096u
/* Writes submitted to the engine and not yet answered, all connections
 * and batch lines together (--max-inflight-writes): one more is answered
 * 503 unavailable at once (overload) with Retry-After, instead of queueing.
 * The engine's own queue holds as many (REEL_ENGINE_QUEUE_MAX), so by
 * default the server refuses first, with the same answer; each pending
 * write holds ~2 KiB (its parsed command and request), 128 MiB at most. */
#define SRV_WRITES_INFLIGHT_MAX 65536u
/* Requests of one connection parsed but not yet answered (pipelining):
 * past it the server stops reading that connection until answers leave. */
#define SRV_PIPELINE_MAX 256u
/* Bytes queued to a client that does not read: past it the server stops
 * reading its requests until the output drains below the half. */
#define SRV_OUTPUT_BYTES_MAX (4u << 20)
/* Bytes read from a socket at once (the connection's input buffer): a
 * request's headers fit (SRV_HEADER_BYTES_MAX) with room for a body chunk. */
#define SRV_READ_BUFFER_BYTES (64u << 10)
/* Headers the server keeps from a request (the rest are parsed, not kept):
 * only a few matter (Authorization, Expect, Idempotency-Key, ...). */
#define SRV_HEADER_VALUE_MAX 256u
/* Time a client has to send a request's line and headers once it started
 * (slowloris): then the connection is cut. */
#define SRV_HEADER_TIMEOUT_MS 10000u
/* Time a client has to send a body once its headers arrived
 * (--body-timeout-ms). */
#define SRV_BODY_TIMEOUT_MS 30000u
/* An idle keep-alive connection is closed after this. */
#define SRV_IDLE_TIMEOUT_MS 60000u
/* (API) SSE: a heartbeat comment this often on /v1/log/stream. */
#define SRV_SSE_HEARTBEAT_MS 15000u
/* SSE output queued to one consumer: the catch-up from the log pauses
 * here and resumes as the client reads. A consumer behind the log with
 * its queue past it, that took nothing since the last pump (a commit or a
 * drain), is cut at once; one that stays above it for a whole heartbeat
 * period without reading anything (nothing committing) is cut then. */
#define SRV_SSE_BUFFER_BYTES (1u << 20)
/* (API) /v1/log page: default and largest `limit`. */
#define SRV_LOG_LIMIT_DEFAULT 1000u
#define SRV_LOG_LIMIT_MAX 100000u
/* Bytes of one /v1/log answer: a page stops early here (the client goes
 * on from the last offset + 1), so a page never needs more memory. */
#define SRV_LOG_BYTES_MAX (32u << 20)
/* Records one /v1/log page scans when filtering by types: keeps one
 * request's time on the loop bounded. */
#define SRV_LOG_SCAN_MAX 1000000u
/* JSON of one event (see tools/cmd_dump.c: the largest is under 64 KiB). */
#define SRV_EVENT_JSON_MAX (64u << 10)
/* (API) list pages: default and largest `limit`. */
#define SRV_PAGE_DEFAULT 20u
#define SRV_PAGE_MAX 200u
/* Followed users one feed page merges at most (newest follows first). */
#define SRV_FEED_FOLLOWEES_MAX 500u
/* Posts the for_you fallback scans (newest ids first) for one page. */
#define SRV_FEED_SCAN_MAX 5000u
/* Follow entries a friends page scans for mutual ones. */
#define SRV_FRIENDS_SCAN_MAX 10000u
/* Render claims parked in a long poll at once; past it, a claim answers
 * at once (empty) instead of waiting. */
#define SRV_PARKED_CLAIMS_MAX 1024u
/* (API) wait_ms of a claim at most: a long poll is cut to this. */
#define SRV_CLAIM_WAIT_MS_MAX 60000u
/* Tokens of a --token-file; lines longer than this are refused. */
#define SRV_TOKENS_MAX 256u
#define SRV_TOKEN_LEN_MAX 128u
/* (API) Idempotency-Key length. */
#define SRV_IDEM_KEY_LEN_MAX 64u
/* Graceful stop: in-flight requests get this long to finish. */
#define SRV_DRAIN_TIMEOUT_MS 10000u

_Static_assert(SRV_HEADER_BYTES_MAX < SRV_READ_BUFFER_BYTES, "headers fit one read buffer");
_Static_assert(SRV_PAGE_MAX <= 1000u, "a page fits REEL_VIEWS_PAGE_MAX");

#endif /* REEL_SERVER_LIMITS_H */
