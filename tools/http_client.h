/*
 * http_client.h: a small blocking HTTP/1.1 client for reel-render and
 * `reel bench render`: one keep-alive connection to reeld, one request at
 * a time, a deadline on every request (connect, send and the whole
 * answer), and an optional abort descriptor that cuts a request short
 * (SIGTERM during a long poll).
 *
 * A client belongs to one thread. Answers are framed by Content-Length or
 * chunked; the body (at most REEL_CLIENT_BODY_MAX bytes) lives in the
 * client's buffer until its next request.
 */
#ifndef REEL_TOOLS_HTTP_CLIENT_H
#define REEL_TOOLS_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An answer's headers at most (reeld's are a few hundred bytes). */
#define REEL_CLIENT_HEAD_MAX (16u << 10)
/* An answer's body at most: a claim of 64 tasks with 8 cameos each is
 * under 1.5 MiB. */
#define REEL_CLIENT_BODY_MAX (4u << 20)
/* A request's path and headers at most. */
#define REEL_CLIENT_PATH_MAX 1024u

typedef struct reel_client {
    char host[256];      /* numeric or a name, resolved at each connect */
    char port[8];        /* decimal */
    char auth[320];      /* "Authorization: Bearer T\r\n" or "" */
    int fd;              /* the connection, -1 when none */
    int abort_fd;        /* readable: stop waiting (-ECANCELED); -1: none */
    char *buf;           /* the answer being read (malloc'd, grows to cap) */
    size_t len;          /* bytes in buf */
    size_t cap;          /* bytes allocated */
    uint64_t requests;   /* requests answered, over every connection */
    uint64_t reconnects; /* connections opened */
} reel_client_t;

/* An answer: status and body (into the client's buffer, NUL-terminated). */
typedef struct reel_client_resp {
    int status;
    const char *body;
    size_t body_len;
    uint64_t retry_after_s; /* Retry-After, 0: none */
} reel_client_resp_t;

/* Sets c up for url ("http://HOST:PORT", an optional trailing '/') and
 * token (NULL or "": none). Connects lazily. Returns 0 or -EINVAL. */
int reel_client_init(reel_client_t *c, const char *url, const char *token);
/* Closes the connection and frees the buffer. */
void reel_client_free(reel_client_t *c);
/* Sends method path with body (body_len bytes, JSON; NULL: none) and
 * reads the answer within timeout_ms. A request on a kept-alive
 * connection that the server had closed before answering a byte is sent
 * once more on a new one. Returns 0 (resp filled; any status), or
 * -ETIMEDOUT, -ECANCELED (abort_fd), -ECONNREFUSED and other -errno of the
 * socket, -EPROTO (a malformed answer), -EMSGSIZE (over the limits). After
 * an error the connection is closed. */
int reel_client_request(reel_client_t *c, const char *method, const char *path,
                        const char *body, size_t body_len, uint32_t timeout_ms,
                        reel_client_resp_t *resp);

#endif /* REEL_TOOLS_HTTP_CLIENT_H */
