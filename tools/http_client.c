/*
 * http_client.c: the blocking keep-alive HTTP/1.1 client of http_client.h. Sockets
 * are non-blocking underneath so that every wait is a poll() with the
 * request's deadline and the abort descriptor beside the socket.
 */
#include "tools/http_client.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "engine/common.h"

/* The peer closed before the answer was whole (internal: never returned). */
#define CLIENT_EOF 1

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int reel_client_init(reel_client_t *c, const char *url, const char *token)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->abort_fd = -1;
    if (strncmp(url, "http://", 7) != 0)
        return -EINVAL;
    const char *h = url + 7, *colon = strchr(h, ':');
    const char *end = h + strcspn(h, "/");
    if (colon == NULL || colon > end || colon == h || (size_t)(colon - h) >= sizeof(c->host))
        return -EINVAL;
    size_t plen = (size_t)(end - colon - 1);
    if (plen < 1 || plen >= sizeof(c->port) || (*end == '/' && end[1] != '\0'))
        return -EINVAL;
    memcpy(c->host, h, (size_t)(colon - h));
    memcpy(c->port, colon + 1, plen);
    if (strspn(c->port, "0123456789") != plen)
        return -EINVAL;
    if (token != NULL && token[0] != '\0') {
        int n = snprintf(c->auth, sizeof(c->auth), "Authorization: Bearer %s\r\n", token);
        if (n < 0 || (size_t)n >= sizeof(c->auth) || strpbrk(token, "\r\n") != NULL)
            return -EINVAL;
    }
    return 0;
}

static void client_close(reel_client_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

void reel_client_free(reel_client_t *c)
{
    client_close(c);
    free(c->buf);
    c->buf = NULL;
    c->cap = c->len = 0;
}

/* Waits until the socket is ready for events: 0, -ETIMEDOUT, -ECANCELED. */
static int wait_fd(const reel_client_t *c, short events, uint64_t deadline)
{
    for (uint32_t spins = 0; spins < 1000000u; spins++) {
        uint64_t now = mono_ms();
        if (now >= deadline)
            return -ETIMEDOUT;
        struct pollfd pf[2] = {{c->fd, events, 0}, {c->abort_fd, POLLIN, 0}};
        int n = poll(pf, c->abort_fd >= 0 ? 2 : 1, (int)(deadline - now));
        if (n < 0 && errno != EINTR)
            return -errno;
        if (n > 0 && c->abort_fd >= 0 && (pf[1].revents & POLLIN))
            return -ECANCELED;
        if (n > 0 && pf[0].revents != 0)
            return 0;
    }
    return -ETIMEDOUT;
}

static int client_connect(reel_client_t *c, uint64_t deadline)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc = getaddrinfo(c->host, c->port, &hints, &ai);
    if (rc != 0 || ai == NULL)
        return -EHOSTUNREACH;
    c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        rc = -errno;
        freeaddrinfo(ai);
        return rc;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    rc = connect(c->fd, ai->ai_addr, ai->ai_addrlen) == 0 ? 0 : -errno;
    freeaddrinfo(ai);
    if (rc == -EINPROGRESS && (rc = wait_fd(c, POLLOUT, deadline)) == 0) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        rc = -err;
    }
    if (rc != 0)
        client_close(c);
    else
        c->reconnects++;
    return rc;
}

static int send_all(reel_client_t *c, const char *p, size_t n, uint64_t deadline)
{
    while (n > 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno != EAGAIN)
            return errno == EPIPE || errno == ECONNRESET ? CLIENT_EOF : -errno;
        int rc = wait_fd(c, POLLOUT, deadline);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Reads more of the answer into buf: 0, CLIENT_EOF, or an error. */
static int read_more(reel_client_t *c, uint64_t deadline)
{
    if (c->cap - c->len < 4096) {
        size_t cap = c->cap ? c->cap * 2 : 16384;
        if (cap > REEL_CLIENT_HEAD_MAX + REEL_CLIENT_BODY_MAX + 4096)
            return -EMSGSIZE;
        char *b = realloc(c->buf, cap);
        if (b == NULL)
            return -ENOMEM;
        c->buf = b;
        c->cap = cap;
    }
    for (;;) {
        ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
        if (r > 0) {
            c->len += (size_t)r;
            c->buf[c->len] = '\0';
            return 0;
        }
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            return CLIENT_EOF;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return -errno;
        int rc = wait_fd(c, POLLIN, deadline);
        if (rc != 0)
            return rc;
    }
}

/* The framing of an answer, from its head. */
typedef struct head {
    size_t head_len;     /* bytes up to and with the blank line */
    size_t content_len;  /* Content-Length */
    bool has_length;
    bool chunked;
    bool close;          /* Connection: close */
} head_t;

static int parse_head(const reel_client_t *c, head_t *h, reel_client_resp_t *resp)
{
    const char *end = strstr(c->buf, "\r\n\r\n");
    if (end == NULL)
        return c->len > REEL_CLIENT_HEAD_MAX ? -EMSGSIZE : CLIENT_EOF;
    memset(h, 0, sizeof(*h));
    h->head_len = (size_t)(end - c->buf) + 4;
    int status = 0;
    if (sscanf(c->buf, "HTTP/1.%*1[01] %3d", &status) != 1 || status < 100 || status > 599)
        return -EPROTO;
    resp->status = status;
    resp->retry_after_s = 0;
    for (const char *p = strstr(c->buf, "\r\n") + 2; p < end; p = strstr(p, "\r\n") + 2) {
        if (strncasecmp(p, "Content-Length:", 15) == 0) {
            h->content_len = strtoull(p + 15, NULL, 10);
            h->has_length = true;
        } else if (strncasecmp(p, "Transfer-Encoding:", 18) == 0) {
            h->chunked = strstr(p, "chunked") != NULL && strstr(p, "chunked") < strstr(p, "\r\n");
        } else if (strncasecmp(p, "Connection:", 11) == 0) {
            h->close = strncasecmp(p + 11 + strspn(p + 11, " "), "close", 5) == 0;
        } else if (strncasecmp(p, "Retry-After:", 12) == 0) {
            resp->retry_after_s = strtoull(p + 12, NULL, 10);
        }
    }
    if (h->content_len > REEL_CLIENT_BODY_MAX)
        return -EMSGSIZE;
    return 0;
}

/* One walk over the chunked body at p[0..n): moves each chunk's data to
 * p + *out when move. 0 when the body is whole, CLIENT_EOF when more is
 * needed, -EPROTO when it is not chunked encoding. */
static int dechunk_walk(char *p, size_t n, bool move, size_t *out)
{
    size_t at = 0;
    *out = 0;
    for (uint32_t chunks = 0; chunks < 1000000u; chunks++) {
        char *eol = memmem(p + at, n - at, "\r\n", 2);
        if (eol == NULL)
            return CLIENT_EOF;
        char *hex_end;
        unsigned long long size = strtoull(p + at, &hex_end, 16);
        if (hex_end == p + at || size > REEL_CLIENT_BODY_MAX)
            return -EPROTO;
        size_t data = (size_t)(eol - p) + 2;
        if (size == 0)
            return n - data < 2 ? CLIENT_EOF : 0;
        if (n - data < size + 2)
            return CLIENT_EOF;
        if (move)
            memmove(p + *out, p + data, size); /* *out <= data: never overtakes */
        *out += size;
        at = data + size + 2;
    }
    return -EPROTO;
}

/* The chunked body at p[0..n): 0 when whole (its data moved to the front
 * in place, *len its length), CLIENT_EOF when more is needed. Nothing
 * moves until the whole body is there: a pass that moved data and then
 * ran out would leave the next pass reading data as chunk headers (a
 * 2,000-event /v1/log page arriving in several reads failed so). */
static int dechunk(char *p, size_t n, size_t *len)
{
    int rc = dechunk_walk(p, n, false, len);
    return rc == 0 ? dechunk_walk(p, n, true, len) : rc;
}

static int read_answer(reel_client_t *c, uint64_t deadline, reel_client_resp_t *resp, bool *close_after)
{
    head_t h;
    int rc;
    c->len = 0;
    for (;;) {
        rc = (c->len > 0) ? parse_head(c, &h, resp) : CLIENT_EOF;
        if (rc <= 0)
            break;
        if ((rc = read_more(c, deadline)) != 0)
            return rc == CLIENT_EOF && c->len > 0 ? -EPROTO : rc;
    }
    if (rc < 0)
        return rc;
    *close_after = h.close || (!h.has_length && !h.chunked);
    for (uint32_t reads = 0;; reads++) {
        char *body = c->buf + h.head_len;
        size_t have = c->len - h.head_len, blen = 0;
        if (h.chunked) {
            rc = dechunk(body, have, &blen);
        } else if (h.has_length) {
            rc = have >= h.content_len ? 0 : CLIENT_EOF;
            blen = h.content_len;
        } else {
            rc = CLIENT_EOF; /* until the peer closes */
        }
        if (rc == 0) {
            body[blen] = '\0';
            resp->body = body;
            resp->body_len = blen;
            return 0;
        }
        if (rc < 0)
            return rc;
        rc = read_more(c, deadline);
        if (rc == CLIENT_EOF && !h.has_length && !h.chunked) {
            resp->body = body;
            resp->body_len = have;
            return 0;
        }
        if (rc != 0)
            return rc == CLIENT_EOF ? -EPROTO : rc;
    }
}

int reel_client_request(reel_client_t *c, const char *method, const char *path,
                        const char *body, size_t body_len, uint32_t timeout_ms,
                        reel_client_resp_t *resp)
{
    char head[REEL_CLIENT_PATH_MAX + 512];
    uint64_t deadline = mono_ms() + timeout_ms;
    if (strlen(path) > REEL_CLIENT_PATH_MAX || body_len > REEL_CLIENT_BODY_MAX)
        return -EMSGSIZE;
    int hl = snprintf(head, sizeof(head),
                      "%s %s HTTP/1.1\r\nHost: %s:%s\r\n%sContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n", method, path, c->host, c->port, c->auth,
                      body ? body_len : 0);
    REEL_ASSERT(hl > 0 && (size_t)hl < sizeof(head));
    for (int attempt = 0; attempt < 2; attempt++) {
        bool reused = c->fd >= 0, close_after = false;
        int rc = reused ? 0 : client_connect(c, deadline);
        if (rc == 0)
            rc = send_all(c, head, (size_t)hl, deadline);
        if (rc == 0 && body != NULL)
            rc = send_all(c, body, body_len, deadline);
        if (rc == 0)
            rc = read_answer(c, deadline, resp, &close_after);
        if (rc == 0) {
            c->requests++;
            if (close_after)
                client_close(c);
            return 0;
        }
        client_close(c);
        /* A kept-alive connection the server closed (idle timeout) before
         * it answered anything: the request never reached it; once more. */
        if (!(reused && c->len == 0 && (rc == CLIENT_EOF || rc == -EPROTO)))
            return rc == CLIENT_EOF ? -ECONNRESET : rc;
    }
    return -ECONNRESET;
}
