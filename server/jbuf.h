/*
 * jbuf.h: growable output buffers for answers (JSON, NDJSON, SSE, HTTP
 * heads) and the contract's error object.
 *
 * A buffer that fails to grow turns sticky (oom set): later appends are
 * dropped, and the caller answers 503 instead of a truncated body. Nothing
 * here is thread-bound; one buffer is used by one thread at a time.
 */
#ifndef REEL_SERVER_JBUF_H
#define REEL_SERVER_JBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct reel_jbuf {
    char *ptr;  /* malloc'd bytes, NULL when empty */
    size_t len; /* bytes used */
    size_t cap; /* bytes allocated */
    bool oom;   /* an append failed: the content is incomplete */
} reel_jbuf_t;

/* A contract error (API.md, "Errors"): {"error": {"code", "message", "field"?}}. */
typedef struct reel_api_err {
    int status;        /* 400, 401, 403, 404, 405, 409, 413, 429, 431, 503, 505 */
    const char *code;  /* static: "bad_field", ... */
    char message[200]; /* human text */
    char field[64];    /* JSON path, "" when none */
} reel_api_err_t;

void reel_jbuf_init(reel_jbuf_t *b);
void reel_jbuf_free(reel_jbuf_t *b);
/* Hands the bytes over (the caller frees them) and empties b. */
char *reel_jbuf_take(reel_jbuf_t *b, size_t *len);
/* Room for n more bytes: 0 or -ENOMEM (then oom is set). */
int reel_jbuf_reserve(reel_jbuf_t *b, size_t n);
void reel_jbuf_add(reel_jbuf_t *b, const void *p, size_t n);
void reel_jbuf_adds(reel_jbuf_t *b, const char *s);
void reel_jbuf_addf(reel_jbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string: quotes, escapes (control bytes, ", \); a byte that does not
 * start well-formed UTF-8 becomes \ufffd, so any bytes give valid JSON. */
void reel_jbuf_str(reel_jbuf_t *b, const char *s, size_t n);
void reel_jbuf_u64(reel_jbuf_t *b, uint64_t v);
/* An id or null when 0. */
void reel_jbuf_id_or_null(reel_jbuf_t *b, uint64_t v);

/* Fills err. */
void reel_api_err_set(reel_api_err_t *err, int status, const char *code, const char *field,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Appends err as the contract's error object. */
void reel_api_err_json(reel_jbuf_t *b, const reel_api_err_t *err);

#endif /* REEL_SERVER_JBUF_H */
