/*
 * jbuf.c: output buffers and error objects (jbuf.h).
 */
#include "server/jbuf.h"
#include "engine/common.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void reel_jbuf_init(reel_jbuf_t *b)
{
    memset(b, 0, sizeof(*b));
}

void reel_jbuf_free(reel_jbuf_t *b)
{
    free(b->ptr);
    reel_jbuf_init(b);
}

char *reel_jbuf_take(reel_jbuf_t *b, size_t *len)
{
    char *p = b->ptr;
    *len = b->len;
    reel_jbuf_init(b);
    return p;
}

int reel_jbuf_reserve(reel_jbuf_t *b, size_t n)
{
    if (b->oom)
        return -ENOMEM;
    if (b->cap - b->len > n)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len <= n) {
        if (cap > SIZE_MAX / 2)
            goto out_oom;
        cap *= 2;
    }
    char *p = realloc(b->ptr, cap);
    if (p == NULL)
        goto out_oom;
    b->ptr = p;
    b->cap = cap;
    return 0;
out_oom:
    b->oom = true;
    return -ENOMEM;
}

void reel_jbuf_add(reel_jbuf_t *b, const void *p, size_t n)
{
    if (n == 0 || reel_jbuf_reserve(b, n) != 0)
        return;
    memcpy(b->ptr + b->len, p, n);
    b->len += n;
    b->ptr[b->len] = '\0'; /* reserve leaves one byte more: handy for parsers */
}

void reel_jbuf_adds(reel_jbuf_t *b, const char *s)
{
    reel_jbuf_add(b, s, strlen(s));
}

void reel_jbuf_addf(reel_jbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    /* One formatting pass when the text fits the room there is (the
     * usual case: answers are short and the buffer starts at 256 bytes),
     * a second one after growing when it does not. */
    if (b->oom || reel_jbuf_reserve(b, 128) != 0)
        return;
    size_t room = b->cap - b->len;
    va_start(ap, fmt);
    int n = vsnprintf(b->ptr + b->len, room, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->ptr[b->len] = '\0';
        return;
    }
    if ((size_t)n >= room) {
        b->ptr[b->len] = '\0';
        if (reel_jbuf_reserve(b, (size_t)n + 1) != 0)
            return;
        va_start(ap, fmt);
        vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

/* Bytes of the well-formed UTF-8 sequence at s[0..n) (n >= 1, s[0] >=
 * 0x80): 2..4, or 0 when it is not one (a stray continuation byte, an
 * overlong form, a surrogate, past U+10FFFF, or cut short). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    size_t len;
    uint32_t cp;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        len = 2, cp = s[0] & 0x1fu;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        len = 3, cp = s[0] & 0x0fu;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        len = 4, cp = s[0] & 0x07u;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[k] & 0x3fu);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

void reel_jbuf_str(reel_jbuf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    /* Worst case: every byte becomes \u00XX (six bytes). */
    if (n > (SIZE_MAX - 2) / 6 || reel_jbuf_reserve(b, 6 * n + 2) != 0)
        return;
    char *o = b->ptr + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c == '\n') {
            *o++ = '\\';
            *o++ = 'n';
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(o, "\\u00", 4);
            o[4] = hex[c >> 4];
            o[5] = hex[c & 15];
            o += 6;
        } else if (c < 0x80) {
            *o++ = (char)c;
        } else {
            /* Bytes that are not UTF-8 (a client's, echoed in an error
             * message, or a multi-byte character cut by a message's
             * bound) become U+FFFD: the answer stays JSON. */
            size_t k = utf8_seq((const unsigned char *)s + i, n - i);
            if (k == 0) {
                memcpy(o, "\\ufffd", 6);
                o += 6;
            } else {
                memcpy(o, s + i, k);
                o += k;
                i += k - 1;
            }
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->ptr);
    b->ptr[b->len] = '\0';
}

void reel_jbuf_u64(reel_jbuf_t *b, uint64_t v)
{
    char tmp[REEL_U64_DIGITS_MAX];
    size_t i = reel_u64_digits(tmp, v);
    reel_jbuf_add(b, tmp + i, sizeof(tmp) - i);
}

void reel_jbuf_id_or_null(reel_jbuf_t *b, uint64_t v)
{
    if (v == 0)
        reel_jbuf_add(b, "null", 4);
    else
        reel_jbuf_u64(b, v);
}

void reel_api_err_set(reel_api_err_t *err, int status, const char *code, const char *field,
                      const char *fmt, ...)
{
    REEL_ASSERT(status >= 400);
    REEL_ASSERT(code != NULL);
    va_list ap;
    err->status = status;
    err->code = code;
    snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
}

void reel_api_err_json(reel_jbuf_t *b, const reel_api_err_t *err)
{
    REEL_ASSERT(err->code != NULL);
    reel_jbuf_adds(b, "{\"error\":{\"code\":");
    reel_jbuf_str(b, err->code, strlen(err->code));
    reel_jbuf_adds(b, ",\"message\":");
    reel_jbuf_str(b, err->message, strlen(err->message));
    if (err->field[0] != '\0') {
        reel_jbuf_adds(b, ",\"field\":");
        reel_jbuf_str(b, err->field, strlen(err->field));
    }
    reel_jbuf_adds(b, "}}");
}
