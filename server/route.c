/*
 * route.c: route matching and query strings (route.h).
 *
 * Patterns are the strings of the route maps, split at '/' on each match:
 * a request path has at most ROUTE_SEGMENTS_MAX segments (no pattern has
 * more), so a match costs a few dozen short comparisons and no memory.
 */
#include "server/route.h"
#include "engine/common.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define ROUTE_SEGMENTS_MAX 8

static const char *const route_names[REEL_ROUTE_COUNT] = {
    [REEL_ROUTE_NONE] = "unknown",
#define REEL__ROUTE_NAME(name, route) [REEL_ROUTE_##name] = route,
    REEL_CMD_MAP(REEL__ROUTE_NAME)
    REEL_READ_ROUTE_MAP(REEL__ROUTE_NAME)
#undef REEL__ROUTE_NAME
};

typedef struct seg {
    const char *p;
    size_t n;
} seg_t;

const char *reel_route_name(reel_route_t r)
{
    if ((int)r <= 0 || r >= REEL_ROUTE_COUNT)
        return route_names[REEL_ROUTE_NONE];
    return route_names[r];
}

reel_cmd_kind_t reel_route_cmd(reel_route_t r)
{
    if ((int)r > 0 && (int)r < (int)REEL_CMD_COUNT)
        return (reel_cmd_kind_t)r;
    return REEL_CMD_NONE;
}

bool reel_route_is_render(reel_route_t r)
{
    return strstr(reel_route_name(r), " /v1/render/") != NULL;
}

bool reel_parse_id(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 16)
        return false; /* 2^53 has 16 digits */
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v < 1 || v > REEL_ID_MAX)
        return false;
    *out = v;
    return true;
}

/* Splits path (n bytes, starting with '/') into segs; -1 when it has too
 * many or an empty one. */
static int split(const char *path, size_t n, seg_t *segs)
{
    int count = 0;
    size_t i = 0;
    if (n == 0 || path[0] != '/')
        return -1;
    while (i < n) {
        size_t start = ++i;
        while (i < n && path[i] != '/')
            i++;
        if (count == ROUTE_SEGMENTS_MAX || i == start)
            return -1;
        segs[count++] = (seg_t){path + start, i - start};
    }
    return count;
}

/* A route's pattern split once (route_pats_init), not on every request. */
typedef struct route_pat {
    size_t method_len;              /* the method: route_names[r][0..method_len) */
    int count;                      /* segments of the path pattern */
    seg_t segs[ROUTE_SEGMENTS_MAX]; /* into route_names[r] */
} route_pat_t;

static route_pat_t route_pats[REEL_ROUTE_COUNT];
static pthread_once_t route_pats_once = PTHREAD_ONCE_INIT;

static void route_pats_init(void)
{
    for (int r = 1; r < REEL_ROUTE_COUNT; r++) {
        const char *name = route_names[r];
        const char *sp = strchr(name, ' ');
        REEL_ASSERT(sp != NULL);
        route_pats[r].method_len = (size_t)(sp - name);
        route_pats[r].count = split(sp + 1, strlen(sp + 1), route_pats[r].segs);
        REEL_ASSERT(route_pats[r].count > 0);
    }
}

/* Structural match of a pattern against segs: 1 with the parameters in
 * *m (or a bad_field in *err: returns 2), 0 no match. */
static int match_pattern(const route_pat_t *pat, const seg_t *segs, int count,
                         reel_route_match_t *m, reel_api_err_t *err)
{
    const seg_t *ps = pat->segs;
    if (pat->count != count)
        return 0;
    for (int i = 0; i < count; i++) {
        if (ps[i].p[0] != '{' && (ps[i].n != segs[i].n || memcmp(ps[i].p, segs[i].p, ps[i].n)))
            return 0;
    }
    int bad = 0;
    for (int i = 0; i < count; i++) {
        if (ps[i].p[0] != '{')
            continue;
        if (ps[i].n == 8 && memcmp(ps[i].p, "{handle}", 8) == 0) {
            m->str = segs[i].p;
            m->str_len = segs[i].n;
            continue;
        }
        bool is_id = ps[i].n == 4 && memcmp(ps[i].p, "{id}", 4) == 0;
        uint64_t *dst = is_id ? &m->id : &m->id2;
        if (!bad && !reel_parse_id(segs[i].p, segs[i].n, dst)) {
            reel_api_err_set(err, 400, "bad_field", "", "%.*s in the path must be an integer in "
                             "1..2^53-1", (int)(ps[i].n - 2), ps[i].p + 1);
            snprintf(err->field, sizeof(err->field), "%.*s", (int)(ps[i].n - 2), ps[i].p + 1);
            bad = 1;
        }
    }
    return bad ? 2 : 1;
}

int reel_route_match(const char *method, const char *url, size_t url_len, reel_route_match_t *m,
                     reel_api_err_t *err)
{
    seg_t segs[ROUTE_SEGMENTS_MAX];
    const char *q = memchr(url, '?', url_len);
    size_t path_len = q ? (size_t)(q - url) : url_len;
    size_t mlen = strlen(method);
    bool other_method = false;
    memset(m, 0, sizeof(*m));
    m->query = q ? q + 1 : "";
    m->query_len = q ? url_len - path_len - 1 : 0;
    int count = split(url, path_len, segs);
    pthread_once(&route_pats_once, route_pats_init);
    for (int r = 1; count > 0 && r < REEL_ROUTE_COUNT; r++) {
        const char *name = route_names[r];
        if (route_pats[r].count != count)
            continue;
        reel_route_match_t t = *m;
        int rc = match_pattern(&route_pats[r], segs, count, &t, err);
        if (rc == 0)
            continue;
        if (route_pats[r].method_len != mlen || memcmp(name, method, mlen) != 0) {
            other_method = true;
            continue;
        }
        if (rc == 2)
            return -1;
        *m = t;
        m->route = (reel_route_t)r;
        return 0;
    }
    if (other_method)
        reel_api_err_set(err, 405, "method_not_allowed", "", "%s is not allowed on this path",
                         method);
    else
        reel_api_err_set(err, 404, "not_found", "", "no such endpoint");
    return -1;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into buf (cap with the NUL): length or -1. */
static int decode(const char *s, size_t n, char *buf, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = hexval(s[i + 1]);
            int lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (o + 1 >= cap)
            return -1;
        buf[o++] = c;
    }
    buf[o] = '\0';
    return (int)o;
}

int reel_query_get(const char *query, size_t len, const char *name, char *buf, size_t cap)
{
    size_t nlen = strlen(name);
    size_t i = 0;
    REEL_ASSERT(cap > 0);
    while (i < len) {
        const char *p = query + i;
        const char *amp = memchr(p, '&', len - i);
        size_t plen = amp ? (size_t)(amp - p) : len - i;
        i += plen + 1;
        const char *eq = memchr(p, '=', plen);
        size_t klen = eq ? (size_t)(eq - p) : plen;
        if (klen != nlen || memcmp(p, name, nlen) != 0)
            continue;
        const char *v = eq ? eq + 1 : p + plen;
        size_t vlen = (size_t)(p + plen - v);
        return decode(v, vlen, buf, cap) < 0 ? -1 : 1;
    }
    return 0;
}

int reel_query_u64(const char *query, size_t len, const char *name, uint64_t lo, uint64_t hi,
                   uint64_t *out, reel_api_err_t *err)
{
    char buf[32];
    uint64_t v = 0;
    int rc = reel_query_get(query, len, name, buf, sizeof(buf));
    if (rc == 0)
        return 0;
    bool ok = rc > 0 && buf[0] != '\0' && strlen(buf) <= 19;
    for (const char *p = buf; ok && *p; p++) {
        ok = *p >= '0' && *p <= '9';
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (!ok || v < lo || v > hi) {
        reel_api_err_set(err, 400, "bad_field", name, "%s must be an integer in %llu..%llu", name,
                         (unsigned long long)lo, (unsigned long long)hi);
        return -1;
    }
    *out = v;
    return 1;
}

int reel_query_limit(const char *query, size_t len, uint64_t def, uint64_t max, uint64_t *out,
                     reel_api_err_t *err)
{
    /* Any run of digits is a limit: one too long for a u64 is above the
     * max and clamped too (saturating), not refused. */
    char buf[64];
    uint64_t v = def;
    int rc = reel_query_get(query, len, "limit", buf, sizeof(buf));
    if (rc != 0) {
        bool ok = rc > 0 && buf[0] != '\0';
        v = 0;
        for (const char *p = buf; ok && *p; p++) {
            ok = *p >= '0' && *p <= '9';
            if (v <= max)
                v = v * 10 + (uint64_t)(*p - '0');
        }
        if (!ok || v == 0) {
            reel_api_err_set(err, 400, "bad_field", "limit",
                             "limit must be an integer of 1 or more");
            return -1;
        }
    }
    *out = v > max ? max : v;
    return 0;
}

void reel_cursor_encode(reel_jbuf_t *b, uint64_t a, uint64_t c)
{
    reel_jbuf_addf(b, "\"%016llx%016llx\"", (unsigned long long)a, (unsigned long long)c);
}

int reel_cursor_get(const char *query, size_t len, uint64_t *a, uint64_t *c, reel_api_err_t *err)
{
    char buf[40];
    int rc = reel_query_get(query, len, "cursor", buf, sizeof(buf));
    *a = 0;
    *c = 0;
    if (rc == 0 || (rc > 0 && buf[0] == '\0'))
        return 0;
    bool ok = rc > 0 && strlen(buf) == 32;
    for (int i = 0; ok && i < 32; i++) {
        int h = hexval(buf[i]);
        ok = h >= 0;
        uint64_t *dst = i < 16 ? a : c;
        *dst = (*dst << 4) | (uint64_t)(h < 0 ? 0 : h);
    }
    if (!ok) {
        reel_api_err_set(err, 400, "bad_field", "cursor", "cursor is not one this server gave");
        return -1;
    }
    return 0;
}
