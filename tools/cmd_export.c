/*
 * cmd_export.c: `reel export`, the log's events into one file per event
 * type, as JSON lines or CSV, optionally zstd-compressed: what an analyst
 * loads into a notebook or a warehouse. docs/EXPORTS.md documents the
 * files and the columns.
 *
 * Resumable: a run exports the offsets [--from, end of the log at open)
 * into part files named by their first offset, "<type>.<FROM>.<ext>",
 * and prints the offset to pass as --from next time. A part file is
 * written as "<name>.tmp" and linked to its name only when the whole run
 * succeeded, and link() never replaces a file: an export never overwrites.
 *
 * Read-only on the data directory, and safe beside a running reeld.
 */
#include "tools/cmds.h"
#include "tools/tool_util.h"
#include "engine/common.h"
#include "engine/datadir.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

/* Bytes buffered per part before a write(2) (or a zstd step). */
#define EXPORT_BUF_BYTES (1u << 20)
/* Room kept free in a part's buffer for the next event: its JSON line is
 * under TOOL_EVENT_JSON_MAX (64 KiB) and its CSV row under twice that
 * (quotes doubled), with margin; a writer that would overflow fails. */
#define EXPORT_EVENT_ROOM (192u << 10)
/* Writeback of a part is started (sync_file_range) every this many bytes,
 * so that the fsync at the end has little left to wait for. */
#define EXPORT_SYNC_BYTES (16u << 20)
/* zstd level: fast, as the export must keep up with the log. */
#define EXPORT_ZSTD_LEVEL 3
/* The fast writers are checked against the reference writers on the first
 * events of each part, and then on every EXPORT_CHECK_EVERY-th. */
#define EXPORT_CHECK_FIRST 16u
#define EXPORT_CHECK_EVERY 4096u
/* Columns of a type at most (the schemas have 12 at most). */
#define EXPORT_COLS_MAX 24u

/* An output buffer: writes past cap set full and are dropped. */
typedef struct ob {
    char *p;
    size_t len;
    size_t cap;
    bool full;
} ob_t;

/* How one JSON name of an event is read from reel_event_t. */
typedef enum xkind { X_ID, X_ID_OPT, X_U64, X_BOOL, X_STR, X_IDS, X_STRS, X_VEC } xkind_t;

typedef struct xfield {
    const char *json;
    xkind_t kind;
    uint16_t off; /* offsetof(reel_event_t, ...) */
} xfield_t;

#define XF(json, kind, member) {json, kind, offsetof(reel_event_t, member)}
/* Every field name of engine/event.c's schemas, and where it lives. The
 * column order of a type is not here: it is read from the engine's JSON
 * of the type's first event (reel_event_to_json walks the schema), and the
 * fast writers' output is checked against the reference writers (below),
 * so a schema change can only make a type fall back to them. */
static const xfield_t xfields[] = {
    XF("user_id", X_ID, user),           XF("author", X_ID, user),
    XF("owner", X_ID, user),             XF("target", X_ID, target),
    XF("grantee", X_ID, target),         XF("post_id", X_ID, post),
    XF("generation_id", X_ID_OPT, generation), /* optional in post.created */
    XF("comment_id", X_ID, comment),     XF("reply_to", X_ID_OPT, reply_to),
    XF("remix_of", X_ID_OPT, remix_of),  XF("remix_root", X_ID_OPT, remix_root),
    XF("invited_by", X_ID_OPT, invited_by), XF("watch_ms", X_U64, watch_ms),
    XF("duration_ms", X_U64, duration_ms), XF("lease_until", X_U64, lease_until),
    XF("attempt", X_U64, attempt),       XF("completed", X_BOOL, completed),
    XF("publish", X_BOOL, publish),      XF("retryable", X_BOOL, retryable),
    XF("handle", X_STR, handle),         XF("display_name", X_STR, display_name),
    XF("code", X_STR, code),             XF("invite_code", X_STR, code),
    XF("asset", X_STR, asset),           XF("policy", X_STR, policy),
    XF("prompt", X_STR, prompt),         XF("video_uri", X_STR, video_uri),
    XF("worker", X_STR, worker),         XF("reason", X_STR, reason),
    XF("text", X_STR, text),             XF("kind", X_STR, kind),
    XF("visibility", X_STR, visibility), XF("cameos", X_IDS, cameos),
    XF("tags", X_STRS, tags),            XF("embedding", X_VEC, embedding),
    XF("key", X_STR, key),               XF("fingerprint", X_U64, fingerprint),
    XF("answer", X_STR, answer),
};

typedef struct export_opts {
    const char *data;  /* --data */
    const char *out;   /* --out */
    bool types[REEL_EV_MAX + 1]; /* --types; all when none named */
    bool csv;          /* --format csv */
    bool zstd;         /* --zstd */
    uint64_t from;     /* --from */
    bool check_all;    /* REEL_EXPORT_CHECK=all: every event checked, a difference fails */
} export_opts_t;

typedef struct writer writer_t;

/* One part file being written. The main thread fills buf; a full buffer
 * goes to the writer thread, which alone touches the file, z, written,
 * synced and err until the writer is drained. */
typedef struct part {
    writer_t *w;
    int fd;             /* -1: not open */
    ZSTD_CCtx *z;       /* NULL: plain */
    char *buf;          /* EXPORT_BUF_BYTES */
    size_t used;
    uint64_t written;   /* bytes written to the file */
    uint64_t synced;    /* writeback started up to here */
    char path[PATH_MAX]; /* final name; the file is path + ".tmp" until done */
    uint64_t events;
    /* the type's columns after offset, type and at, in schema order */
    uint32_t ncols;
    const xfield_t *xcols[EXPORT_COLS_MAX];
    bool fast;          /* the fast writer is used */
    int err;            /* first error (-errno) */
} part_t;

static void export_usage(FILE *f)
{
    fprintf(f,
            "usage: reel export [--data DIR] --out DIR [--types t1,t2] [--format jsonl|csv]\n"
            "                   [--from OFFSET] [--zstd]\n"
            "\n"
            "Exports the events of the log of --data into --out (created when missing), one\n"
            "part file per event type: <type>.<FROM>.jsonl or .csv (FROM: the first offset\n"
            "of the run, 20 digits), with .zst appended under --zstd. JSON lines are the\n"
            "events as reel dump --json prints them; CSV columns are offset, at, then the\n"
            "type's fields in schema order (docs/EXPORTS.md). A type without events in\n"
            "the range gets no file. The last line on stderr names the offset to pass as\n"
            "--from to export the next increment. Files are complete or absent: they are\n"
            "written as .tmp and linked to their name at the end, and an existing file\n"
            "is never overwritten (the run fails instead). The log is opened read-only.\n"
            "\n"
            "  --data DIR       the data directory (default ./data)\n"
            "  --out DIR        where the files go (required)\n"
            "  --types LIST     comma-separated event types (default: all), e.g.\n"
            "                   post.created,like.created\n"
            "  --format F       jsonl (default) or csv\n"
            "  --from OFFSET    first offset to export (default 0)\n"
            "  --zstd           compress each file with zstd (streaming)\n"
            "\n"
            "exit status: 0 done; 2 bad usage or error (no part file of the run is left)\n");
}

/* --types: a comma-separated list of event type names. */
static int parse_types(const char *list, export_opts_t *o)
{
    const char *p = list;
    bool any = false;
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        uint16_t t = reel_event_type_parse(p, len);
        if (t == REEL_EV_NONE) {
            fprintf(stderr, "reel export: --types: unknown event type '%.*s' (e.g. "
                            "post.created; see docs/EXPORTS.md)\n", (int)len, p);
            return REEL_EUSAGE;
        }
        o->types[t] = true;
        any = true;
        p += len + (comma != NULL);
    }
    if (!any) {
        fprintf(stderr, "reel export: --types needs at least one event type\n");
        return REEL_EUSAGE;
    }
    return 0;
}

/* One option that takes a value; returns 1 matched, 0 not, <0 bad. */
static int export_opt(int argc, char **argv, int *i, export_opts_t *o, bool *have_types)
{
    const char *v = NULL;
    int rc;
    if ((rc = tool_opt_value(argc, argv, i, "--data", &v)) != 0 && rc > 0 && v[0] != '\0')
        o->data = v;
    else if (rc == 0 && (rc = tool_opt_value(argc, argv, i, "--out", &v)) > 0 && v[0] != '\0')
        o->out = v;
    else if (rc == 0 && (rc = tool_opt_value(argc, argv, i, "--types", &v)) > 0) {
        *have_types = true;
        return parse_types(v, o) == 0 ? 1 : REEL_EUSAGE;
    } else if (rc == 0 && (rc = tool_opt_value(argc, argv, i, "--format", &v)) > 0) {
        if (strcmp(v, "jsonl") != 0 && strcmp(v, "csv") != 0) {
            fprintf(stderr, "reel export: --format: '%s': expected jsonl or csv\n", v);
            return REEL_EUSAGE;
        }
        o->csv = strcmp(v, "csv") == 0;
    } else if (rc == 0 && (rc = tool_opt_value(argc, argv, i, "--from", &v)) > 0) {
        if (tool_parse_u64(v, &o->from) != 0) {
            fprintf(stderr, "reel export: --from: '%s' is not an offset\n", v);
            return REEL_EUSAGE;
        }
    } else if (rc != 0) {
        fprintf(stderr, "reel export: %s needs a value\n", argv[*i]);
        return REEL_EUSAGE;
    }
    return rc;
}

static int export_parse(int argc, char **argv, export_opts_t *o)
{
    bool have_types = false;
    memset(o, 0, sizeof(*o));
    o->data = REEL_DATA_DIR_DEFAULT;
    for (int i = 1; i < argc; i++) {
        int rc;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            export_usage(stdout);
            return 1;
        } else if (strcmp(argv[i], "--zstd") == 0) {
            o->zstd = true;
        } else if ((rc = export_opt(argc, argv, &i, o, &have_types)) != 0) {
            if (rc < 0)
                return rc;
        } else {
            fprintf(stderr, "reel export: unknown argument '%s' (see reel export --help)\n",
                    argv[i]);
            return REEL_EUSAGE;
        }
    }
    if (o->out == NULL) {
        fprintf(stderr, "reel export: --out DIR is required (see reel export --help)\n");
        return REEL_EUSAGE;
    }
    if (!have_types)
        memset(o->types, 1, sizeof(o->types));
    return 0;
}

/* ---- part files ---- */

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return k < 0 ? -errno : -EIO;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static void part_out(part_t *p, const char *s, size_t n)
{
    if (p->err == 0 && (p->err = write_all(p->fd, s, n)) == 0)
        p->written += n;
    if (p->err == 0 && p->written - p->synced >= EXPORT_SYNC_BYTES) {
        /* Start the writeback of what is written (no wait): the fsync at
         * the end then finds most of the file on disk already. */
        (void)sync_file_range(p->fd, (off_t)p->synced, (off_t)(p->written - p->synced),
                              SYNC_FILE_RANGE_WRITE);
        p->synced = p->written;
    }
}

/* Writes buf to the part's file (through zstd under --zstd). */
static void part_write_buf(part_t *p, const char *buf, size_t len, ZSTD_EndDirective mode)
{
    if (p->err != 0)
        return;
    if (p->z == NULL) {
        if (len > 0)
            part_out(p, buf, len);
        return;
    }
    static char zout[EXPORT_BUF_BYTES]; /* the writer thread's */
    ZSTD_inBuffer in = {buf, len, 0};
    size_t left;
    do {
        ZSTD_outBuffer out = {zout, sizeof(zout), 0};
        left = ZSTD_compressStream2(p->z, &out, &in, mode);
        if (ZSTD_isError(left)) {
            p->err = -EIO;
            return;
        }
        if (out.pos > 0)
            part_out(p, zout, out.pos);
    } while (p->err == 0 && (mode == ZSTD_e_end ? left != 0 : in.pos < in.size));
}

/* ---- the writer thread: write(2), zstd and writeback off the main
 * thread, which meanwhile reads, decodes and formats the next events.
 * Buffers go to it in one FIFO (so a part's buffers are written in
 * order) and come back to a pool. ---- */

/* Full buffers queued or being written at most: the main thread waits
 * for one to come back beyond this. */
#define EXPORT_SPARE_BUFS 4u
#define EXPORT_BUFS_MAX (REEL_EV_MAX + 1 + EXPORT_SPARE_BUFS)

typedef struct wjob {
    part_t *p;
    char *buf;
    size_t len;
    ZSTD_EndDirective mode;
} wjob_t;

struct writer {
    pthread_t th;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;          /* a job queued, a job done, stop */
    wjob_t q[EXPORT_BUFS_MAX];
    uint32_t head, n;           /* the FIFO */
    bool busy;                  /* a job is being written */
    bool stop;
    char *all[EXPORT_BUFS_MAX]; /* every buffer, to free */
    uint32_t nall;
    char *spare[EXPORT_BUFS_MAX];
    uint32_t nspare;
    int err;                    /* the first write error */
};

static void *writer_main(void *arg)
{
    writer_t *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->n == 0 && !w->stop)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->n == 0)
            break;
        wjob_t j = w->q[w->head];
        w->head = (w->head + 1) % EXPORT_BUFS_MAX;
        w->n--;
        w->busy = true;
        pthread_mutex_unlock(&w->mu);
        part_write_buf(j.p, j.buf, j.len, j.mode);
        pthread_mutex_lock(&w->mu);
        if (j.p->err != 0 && w->err == 0)
            w->err = j.p->err;
        w->spare[w->nspare++] = j.buf;
        w->busy = false;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static int writer_start(writer_t *w)
{
    memset(w, 0, sizeof(*w));
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->th, NULL, writer_main, w) != 0)
        return -EAGAIN;
    w->started = true;
    return 0;
}

/* Waits until every queued buffer is written; returns the first error. */
static int writer_drain(writer_t *w)
{
    pthread_mutex_lock(&w->mu);
    while (w->n > 0 || w->busy)
        pthread_cond_wait(&w->cv, &w->mu);
    int err = w->err;
    pthread_mutex_unlock(&w->mu);
    return err;
}

static void writer_stop(writer_t *w)
{
    if (w->started) {
        pthread_mutex_lock(&w->mu);
        w->stop = true;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->th, NULL);
    }
    for (uint32_t i = 0; i < w->nall; i++)
        free(w->all[i]);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
}

/* An empty buffer (under mu): a spare, a new one while few are out, else
 * the next to come back. NULL: out of memory. */
static char *writer_buf_locked(writer_t *w)
{
    while (w->nspare == 0 && w->nall >= EXPORT_BUFS_MAX)
        pthread_cond_wait(&w->cv, &w->mu);
    if (w->nspare > 0)
        return w->spare[--w->nspare];
    char *b = malloc(EXPORT_BUF_BYTES);
    if (b != NULL)
        w->all[w->nall++] = b;
    return b;
}

/* Queues the part's buffer (mode: ZSTD_e_end for its last) and, unless it
 * is the last, gives the part an empty one. Returns 0 or the writer's
 * first error (or -ENOMEM). */
static int part_flush(part_t *p, ZSTD_EndDirective mode)
{
    writer_t *w = p->w;
    pthread_mutex_lock(&w->mu);
    /* Keep at most EXPORT_SPARE_BUFS full buffers waiting. */
    while (w->n >= EXPORT_SPARE_BUFS && w->err == 0)
        pthread_cond_wait(&w->cv, &w->mu);
    int err = w->err;
    if (err == 0) {
        w->q[(w->head + w->n) % EXPORT_BUFS_MAX] = (wjob_t){p, p->buf, p->used, mode};
        w->n++;
        pthread_cond_broadcast(&w->cv);
        p->buf = mode == ZSTD_e_end ? NULL : writer_buf_locked(w);
        p->used = 0;
        if (mode != ZSTD_e_end && p->buf == NULL)
            err = -ENOMEM;
    }
    pthread_mutex_unlock(&w->mu);
    return err;
}

/* ---- writing: small pieces into an ob_t ---- */

static inline void ob_raw(ob_t *o, const void *s, size_t n)
{
    if (n > o->cap - o->len) {
        o->full = true;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static inline void ob_c(ob_t *o, char c)
{
    if (o->len == o->cap) {
        o->full = true;
        return;
    }
    o->p[o->len++] = c;
}

static inline void ob_lit(ob_t *o, const char *s)
{
    ob_raw(o, s, strlen(s));
}

/* Decimal, as printf's %llu writes it. */
static void ob_u64(ob_t *o, uint64_t v)
{
    static const char pairs[] = "00010203040506070809101112131415161718192021222324252627282930"
                                "31323334353637383940414243444546474849505152535455565758596061"
                                "62636465666768697071727374757677787980818283848586878889909192"
                                "939495969798990";
    char b[24];
    char *e = b + sizeof(b), *q = e;
    while (v >= 100) {
        unsigned d = (unsigned)(v % 100) * 2;
        v /= 100;
        *--q = pairs[d + 1];
        *--q = pairs[d];
    }
    if (v >= 10) {
        *--q = pairs[v * 2 + 1];
        *--q = pairs[v * 2];
    } else {
        *--q = (char)('0' + v);
    }
    ob_raw(o, q, (size_t)(e - q));
}

/* A JSON string as engine/event.c writes it: '"' and '\' escaped with a
 * backslash, control characters as \u00xx, the rest as it is. */
static void ob_jstr(ob_t *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0;
    ob_c(o, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        ob_raw(o, s + run, i - run);
        run = i + 1;
        if (c < 0x20) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            ob_raw(o, esc, 6);
        } else {
            char esc[2] = {'\\', (char)c};
            ob_raw(o, esc, 2);
        }
    }
    ob_raw(o, s + run, n - run);
    ob_c(o, '"');
}

/* A JSON string as jansson's json_dumps writes it (the reference CSV
 * writer's list cells): \b \f \n \r \t short, other controls as \u00XX. */
static void ob_jansson_str(ob_t *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t run = 0;
    ob_c(o, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        ob_raw(o, s + run, i - run);
        run = i + 1;
        char esc[6] = {'\\', (char)c, 0, 0, 0, 0};
        size_t k = 2;
        switch (c) {
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '"': case '\\': break;
        default:
            esc[1] = 'u', esc[2] = '0', esc[3] = '0', esc[4] = hex[c >> 4], esc[5] = hex[c & 15];
            k = 6;
        }
        ob_raw(o, esc, k);
    }
    ob_raw(o, s + run, n - run);
    ob_c(o, '"');
}

/* A component of an embedding in JSON, as engine/event.c writes it. */
static void ob_float9(ob_t *o, float f)
{
    char b[32];
    int n = snprintf(b, sizeof(b), "%.9g", (double)f);
    ob_raw(o, b, (size_t)n);
}

/* The same component as the reference CSV writer's cell has it: the
 * engine's "%.9g" text read back by jansson (an integer when it has no
 * '.' or exponent, else a double) and dumped with 17 digits (jansson's
 * real format: ".0" added to a bare integer, '+' and leading exponent
 * zeros dropped). */
static void ob_float17(ob_t *o, float f)
{
    char b[40];
    snprintf(b, sizeof(b), "%.9g", (double)f);
    if (strpbrk(b, ".eE") == NULL) {
        ob_lit(o, strcmp(b, "-0") == 0 ? "0" : b); /* jansson reads "-0" as the integer 0 */
        return;
    }
    int n = snprintf(b, sizeof(b), "%.17g", strtod(b, NULL));
    size_t len = (size_t)n;
    if (strchr(b, '.') == NULL && strchr(b, 'e') == NULL) {
        memcpy(b + len, ".0", 3);
        len += 2;
    }
    char *e = strchr(b, 'e');
    if (e != NULL) {
        char *start = e + 1, *end = start + 1;
        if (*start == '-')
            start++;
        while (*end == '0')
            end++;
        if (end != start) {
            memmove(start, end, len - (size_t)(end - b) + 1);
            len -= (size_t)(end - start);
        }
    }
    ob_raw(o, b, len);
}

/* ---- CSV cells ---- */

/* RFC 4180: a cell with a comma, a quote, CR, LF (or NUL) is quoted, and
 * its quotes doubled. An empty string is written "" (empty: JSON null). */
static void csv_cell(ob_t *o, const char *s, size_t n)
{
    bool quote = n == 0;
    for (size_t i = 0; i < n && !quote; i++) {
        char c = s[i];
        quote = c == ',' || c == '"' || c == '\r' || c == '\n' || c == '\0';
    }
    if (!quote) {
        ob_raw(o, s, n);
        return;
    }
    ob_c(o, '"');
    for (const char *q; n > 0 && (q = memchr(s, '"', n)) != NULL;) {
        ob_raw(o, s, (size_t)(q - s) + 1);
        ob_c(o, '"'); /* the quote, doubled */
        n -= (size_t)(q - s) + 1;
        s = q + 1;
    }
    ob_raw(o, s, n);
    ob_c(o, '"');
}

/* ---- the reference writers: the engine's JSON, and CSV through jansson ---- */

static void csv_value(ob_t *o, json_t *v)
{
    if (v == NULL || json_is_null(v))
        return;
    if (json_is_string(v)) {
        csv_cell(o, json_string_value(v), json_string_length(v));
    } else if (json_is_integer(v)) {
        char num[32];
        int n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        ob_raw(o, num, (size_t)n);
    } else if (json_is_boolean(v)) {
        ob_lit(o, json_is_true(v) ? "true" : "false");
    } else { /* lists (and reals): their JSON text */
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
        if (s == NULL) {
            o->full = true;
            return;
        }
        csv_cell(o, s, strlen(s));
        free(s);
    }
}

/* The event's JSON line (without the newline) from reel_event_to_json. */
static int ref_json(const reel_event_t *ev, char *json, size_t cap)
{
    return reel_event_to_json(ev, json, cap);
}

/* The event's CSV row (CRLF ended) from its JSON, parsed by jansson; the
 * column order is the JSON's. With header, the header row comes first. */
static int ref_csv(ob_t *o, const reel_event_t *ev, bool header)
{
    static char json[TOOL_EVENT_JSON_MAX];
    json_error_t jerr;
    const char *k;
    json_t *v;
    if (reel_event_to_json(ev, json, sizeof(json)) < 0)
        return -ENOSPC;
    json_t *obj = json_loads(json, JSON_DECODE_ANY, &jerr);
    if (obj == NULL)
        return REEL_ECORRUPT;
    if (header) {
        ob_lit(o, "offset,at");
        json_object_foreach(obj, k, v) {
            if (strcmp(k, "offset") == 0 || strcmp(k, "type") == 0 || strcmp(k, "at") == 0)
                continue;
            ob_c(o, ',');
            csv_cell(o, k, strlen(k));
        }
        ob_lit(o, "\r\n");
    }
    ob_u64(o, ev->offset);
    ob_c(o, ',');
    ob_u64(o, ev->at);
    json_object_foreach(obj, k, v) {
        if (strcmp(k, "offset") == 0 || strcmp(k, "type") == 0 || strcmp(k, "at") == 0)
            continue;
        ob_c(o, ',');
        csv_value(o, v);
    }
    ob_lit(o, "\r\n");
    json_decref(obj);
    return 0;
}

/* ---- the fast writers: straight from the decoded event ---- */

#define XAT(ev, f, T) ((const T *)(const void *)((const char *)(ev) + (f)->off))

static void fast_json(ob_t *o, const part_t *p, const reel_event_t *ev)
{
    const char *name = reel_event_type_name(ev->type);
    ob_raw(o, "{\"offset\":", 10);
    ob_u64(o, ev->offset);
    ob_raw(o, ",\"type\":", 8);
    ob_jstr(o, name, strlen(name));
    ob_raw(o, ",\"at\":", 6);
    ob_u64(o, ev->at);
    for (uint32_t i = 0; i < p->ncols; i++) {
        const xfield_t *f = p->xcols[i];
        ob_raw(o, ",\"", 2);
        ob_lit(o, f->json);
        ob_raw(o, "\":", 2);
        switch (f->kind) {
        case X_ID_OPT:
            if (*XAT(ev, f, uint64_t) == 0) {
                ob_raw(o, "null", 4);
                break;
            }
            /* fall through */
        case X_ID:
        case X_U64:
            ob_u64(o, *XAT(ev, f, uint64_t));
            break;
        case X_BOOL:
            ob_lit(o, *XAT(ev, f, bool) ? "true" : "false");
            break;
        case X_STR: {
            const reel_str_t *s = XAT(ev, f, reel_str_t);
            ob_jstr(o, s->ptr ? s->ptr : "", s->len);
            break;
        }
        case X_IDS:
            ob_c(o, '[');
            for (uint32_t k = 0; k < ev->ncameos; k++) {
                if (k)
                    ob_c(o, ',');
                ob_u64(o, ev->cameos[k]);
            }
            ob_c(o, ']');
            break;
        case X_STRS:
            ob_c(o, '[');
            for (uint32_t k = 0; k < ev->ntags; k++) {
                if (k)
                    ob_c(o, ',');
                ob_jstr(o, ev->tags[k].ptr ? ev->tags[k].ptr : "", ev->tags[k].len);
            }
            ob_c(o, ']');
            break;
        case X_VEC:
            if (ev->dim == 0) {
                ob_raw(o, "null", 4);
                break;
            }
            ob_c(o, '[');
            for (uint32_t k = 0; k < ev->dim; k++) {
                if (k)
                    ob_c(o, ',');
                ob_float9(o, reel_event_embedding_at(ev, k));
            }
            ob_c(o, ']');
            break;
        }
    }
    ob_c(o, '}');
}

/* A list cell: its JSON text (jansson's form) built aside, then quoted. */
static void fast_csv_list(ob_t *o, const xfield_t *f, const reel_event_t *ev)
{
    static char scratch[TOOL_EVENT_JSON_MAX];
    ob_t l = {scratch, 0, sizeof(scratch), false};
    ob_c(&l, '[');
    if (f->kind == X_IDS) {
        for (uint32_t k = 0; k < ev->ncameos; k++) {
            if (k)
                ob_c(&l, ',');
            ob_u64(&l, ev->cameos[k]);
        }
    } else if (f->kind == X_STRS) {
        for (uint32_t k = 0; k < ev->ntags; k++) {
            if (k)
                ob_c(&l, ',');
            ob_jansson_str(&l, ev->tags[k].ptr ? ev->tags[k].ptr : "", ev->tags[k].len);
        }
    } else {
        for (uint32_t k = 0; k < ev->dim; k++) {
            if (k)
                ob_c(&l, ',');
            ob_float17(&l, reel_event_embedding_at(ev, k));
        }
    }
    ob_c(&l, ']');
    if (l.full)
        o->full = true;
    else
        csv_cell(o, l.p, l.len);
}

static void fast_csv(ob_t *o, const part_t *p, const reel_event_t *ev)
{
    ob_u64(o, ev->offset);
    ob_c(o, ',');
    ob_u64(o, ev->at);
    for (uint32_t i = 0; i < p->ncols; i++) {
        const xfield_t *f = p->xcols[i];
        ob_c(o, ',');
        switch (f->kind) {
        case X_ID_OPT:
            if (*XAT(ev, f, uint64_t) == 0)
                break; /* null: an empty cell */
            /* fall through */
        case X_ID:
        case X_U64:
            ob_u64(o, *XAT(ev, f, uint64_t));
            break;
        case X_BOOL:
            ob_lit(o, *XAT(ev, f, bool) ? "true" : "false");
            break;
        case X_STR: {
            const reel_str_t *s = XAT(ev, f, reel_str_t);
            csv_cell(o, s->ptr ? s->ptr : "", s->len);
            break;
        }
        case X_VEC:
            if (ev->dim == 0)
                break; /* null */
            /* fall through */
        case X_IDS:
        case X_STRS:
            fast_csv_list(o, f, ev);
            break;
        }
    }
    ob_raw(o, "\r\n", 2);
}

/* The type's columns, from the engine's JSON of its first event; the fast
 * writers serve the type when every column is one of xfields. */
static int part_plan(part_t *p, const reel_event_t *ev)
{
    static char json[TOOL_EVENT_JSON_MAX];
    json_error_t jerr;
    const char *k;
    json_t *v, *obj;
    p->fast = true;
    if (reel_event_to_json(ev, json, sizeof(json)) < 0 ||
        (obj = json_loads(json, JSON_DECODE_ANY, &jerr)) == NULL) {
        p->fast = false; /* the reference writers say why */
        return 0;
    }
    json_object_foreach(obj, k, v) {
        if (strcmp(k, "offset") == 0 || strcmp(k, "type") == 0 || strcmp(k, "at") == 0)
            continue;
        const xfield_t *f = NULL;
        for (size_t i = 0; i < sizeof(xfields) / sizeof(xfields[0]) && f == NULL; i++)
            if (strcmp(xfields[i].json, k) == 0)
                f = &xfields[i];
        if (f == NULL || p->ncols == EXPORT_COLS_MAX) {
            p->fast = false;
            break;
        }
        p->xcols[p->ncols++] = f;
    }
    json_decref(obj);
    return 0;
}

/* Creates the part file of type t: "<out>/<type>.<from>.<ext>[.zst].tmp". */
static int part_open(const export_opts_t *o, const reel_event_t *ev, part_t *p)
{
    char tmp[PATH_MAX + 8];
    struct stat st;
    snprintf(p->path, sizeof(p->path), "%s/%s.%020" PRIu64 ".%s%s", o->out,
             reel_event_type_name(ev->type), o->from, o->csv ? "csv" : "jsonl",
             o->zstd ? ".zst" : "");
    snprintf(tmp, sizeof(tmp), "%s.tmp", p->path);
    if (stat(p->path, &st) == 0) {
        fprintf(stderr, "reel export: %s exists: this range was exported already (never "
                        "overwritten; pass the next --from, or another --out)\n", p->path);
        return -EEXIST;
    }
    p->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int e = errno;
    pthread_mutex_lock(&p->w->mu);
    p->buf = writer_buf_locked(p->w);
    pthread_mutex_unlock(&p->w->mu);
    p->z = o->zstd ? ZSTD_createCCtx() : NULL;
    if (p->fd < 0 || p->buf == NULL || (o->zstd && p->z == NULL)) {
        fprintf(stderr, "reel export: %s: %s\n", tmp, strerror(p->fd < 0 ? e : ENOMEM));
        return -EIO;
    }
    if (p->z != NULL)
        ZSTD_CCtx_setParameter(p->z, ZSTD_c_compressionLevel, EXPORT_ZSTD_LEVEL);
    return part_plan(p, ev);
}

/* Finishes the part, its last buffer written and the writer drained:
 * fsync, then link the .tmp to its name (or, when keep is false or
 * anything failed, just removes the .tmp). */
static int part_close(part_t *p, bool keep)
{
    char tmp[PATH_MAX + 8];
    int rc = 0;
    if (p->fd < 0 && p->buf == NULL)
        return 0;
    snprintf(tmp, sizeof(tmp), "%s.tmp", p->path);
    if (p->fd >= 0 && keep && p->err == 0 && fsync(p->fd) != 0)
        p->err = -errno;
    if (p->fd >= 0 && close(p->fd) != 0 && p->err == 0)
        p->err = -errno;
    if (keep && p->err == 0 && link(tmp, p->path) != 0)
        p->err = -errno;
    if (keep && p->err != 0) {
        fprintf(stderr, "reel export: %s: %s\n", p->path, strerror(-p->err));
        rc = p->err;
    }
    unlink(tmp);
    ZSTD_freeCCtx(p->z);
    writer_t *w = p->w; /* the buffers are the writer's */
    memset(p, 0, sizeof(*p));
    p->w = w;
    p->fd = -1;
    return rc;
}

/* The reference line of an event (JSON + "\n", or the CSV row, with the
 * header when it is the part's first) into o. */
static int ref_line(const export_opts_t *o, ob_t *out, const reel_event_t *ev, bool header)
{
    if (o->csv)
        return ref_csv(out, ev, header);
    int len = ref_json(ev, out->p + out->len, out->cap - out->len);
    if (len < 0)
        return len;
    out->len += (size_t)len;
    ob_c(out, '\n');
    return 0;
}

/* Checks the fast writer's line against the reference's; on a difference
 * the type falls back to the reference writer (and, under check_all, the
 * export fails). Returns 0 or the error. */
static int check_line(const export_opts_t *o, part_t *p, ob_t *line, const reel_event_t *ev,
                      bool header)
{
    static char ref[2 * EXPORT_EVENT_ROOM];
    ob_t r = {ref, 0, sizeof(ref), false};
    if (ref_line(o, &r, ev, header) != 0 || r.full)
        return 0; /* no reference to compare with: the fast line stands */
    if (r.len == line->len && memcmp(r.p, line->p, r.len) == 0)
        return 0;
    fprintf(stderr, "reel export: offset %" PRIu64 ": the fast %s writer of %s differs from "
                    "the reference%s\n", ev->offset, o->csv ? "CSV" : "JSON",
            reel_event_type_name(ev->type),
            o->check_all ? "" : "; the rest of the type uses the reference");
    if (o->check_all)
        return REEL_ECORRUPT;
    p->fast = false;
    line->len = 0;
    return ref_line(o, line, ev, header);
}

/* Writes one event to its type's part, opening it at the type's first. */
static int export_event(const export_opts_t *o, part_t *parts, const reel_event_t *ev)
{
    part_t *p = &parts[ev->type];
    int rc;
    bool header = false;
    if (p->fd < 0) {
        if ((rc = part_open(o, ev, p)) != 0)
            return rc;
        header = o->csv;
    }
    if (EXPORT_BUF_BYTES - p->used < EXPORT_EVENT_ROOM &&
        (rc = part_flush(p, ZSTD_e_continue)) != 0) {
        fprintf(stderr, "reel export: %s: %s\n", p->path, strerror(-rc));
        return -EIO;
    }
    ob_t line = {p->buf + p->used, 0, EXPORT_BUF_BYTES - p->used, false};
    if (p->fast) {
        if (header) { /* the header's names: the JSON keys, which are the xfields' */
            ob_lit(&line, "offset,at");
            for (uint32_t i = 0; i < p->ncols; i++) {
                ob_c(&line, ',');
                ob_lit(&line, p->xcols[i]->json);
            }
            ob_lit(&line, "\r\n");
        }
        if (o->csv) {
            fast_csv(&line, p, ev);
        } else {
            fast_json(&line, p, ev);
            ob_c(&line, '\n');
        }
        if (!line.full && (o->check_all || p->events < EXPORT_CHECK_FIRST ||
                           p->events % EXPORT_CHECK_EVERY == 0) &&
            (rc = check_line(o, p, &line, ev, header)) != 0)
            return rc;
    } else if ((rc = ref_line(o, &line, ev, header)) != 0) {
        return rc;
    }
    if (line.full)
        return -ENOSPC; /* cannot be: an event's line is under EXPORT_EVENT_ROOM */
    p->used += line.len;
    p->events++;
    return 0;
}

/* Exports [o->from, end) into parts; *end gets the log's end at open. */
static int export_range(const export_opts_t *o, reel_log_t *log, part_t *parts, uint64_t *end)
{
    reel_log_iter_t *it = NULL;
    reel_record_t rec;
    tool_progress_t prog;
    int rc = 0;
    *end = reel_log_end(log);
    if (o->from > *end) {
        fprintf(stderr, "reel export: --from %" PRIu64 " is past the end of the log (%" PRIu64
                        ")\n", o->from, *end);
        return REEL_EUSAGE;
    }
    tool_progress_start(&prog, "events", *end - o->from);
    if (o->from < *end && (rc = reel_log_iter_open(log, o->from, &it)) != 0)
        fprintf(stderr, "reel export: %s: %s\n", o->data, reel_strerror(rc));
    uint64_t next = o->from;
    for (; rc == 0 && next < *end; next++) {
        reel_event_t ev;
        rc = reel_log_iter_next(it, &rec);
        if (rc == REEL_EEND)
            rc = REEL_ECORRUPT; /* the log said it holds `next`: it must */
        if (rc != 0) {
            fprintf(stderr, "reel export: reading offset %" PRIu64 ": %s\n", next,
                    reel_strerror(rc));
            break;
        }
        tool_progress(&prog, next - o->from);
        if (tool_event_decode(&rec, &ev) != 0 || !o->types[ev.type])
            continue; /* not an event (a benchmark's record), or not asked for */
        rc = export_event(o, parts, &ev);
        if (rc == -EEXIST || rc == -EIO)
            break; /* printed */
        if (rc != 0)
            fprintf(stderr, "reel export: offset %" PRIu64 ": %s\n", next, reel_strerror(rc));
    }
    tool_progress_end(&prog, next - o->from);
    reel_log_iter_close(it);
    return rc;
}

int reel_cmd_export(int argc, char **argv)
{
    export_opts_t o;
    reel_log_t *log = NULL;
    part_t *parts = NULL;
    uint64_t end = 0, events = 0, files = 0;
    int rc = export_parse(argc, argv, &o);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    const char *check = getenv("REEL_EXPORT_CHECK");
    o.check_all = check != NULL && strcmp(check, "all") == 0;
    if ((rc = tool_log_open_ro("reel export", o.data, &log)) != 0)
        return 2;
    /* Bad input changes nothing: --from is checked before --out is made. */
    if (o.from > reel_log_end(log)) {
        fprintf(stderr, "reel export: --from %" PRIu64 " is past the end of the log (%" PRIu64
                        ")\n", o.from, reel_log_end(log));
        (void)reel_log_close(log);
        return 2;
    }
    bool created = mkdir(o.out, 0755) == 0;
    if (!created && errno != EEXIST) {
        fprintf(stderr, "reel export: --out %s: %s\n", o.out, strerror(errno));
        (void)reel_log_close(log);
        return 2;
    }
    writer_t w;
    parts = calloc(REEL_EV_MAX + 1, sizeof(*parts));
    rc = parts != NULL ? writer_start(&w) : -ENOMEM;
    for (uint16_t t = 0; parts != NULL && t <= REEL_EV_MAX; t++)
        parts[t] = (part_t){.w = &w, .fd = -1};
    if (rc == 0)
        rc = export_range(&o, log, parts, &end);
    (void)reel_log_close(log);
    /* The last buffer of each part, then everything written. */
    for (uint16_t t = 0; rc == 0 && t <= REEL_EV_MAX; t++)
        if (parts[t].fd >= 0 && (rc = part_flush(&parts[t], ZSTD_e_end)) != 0)
            fprintf(stderr, "reel export: %s: %s\n", parts[t].path, strerror(-rc));
    if (parts != NULL && w.started) {
        int wrc = writer_drain(&w);
        rc = rc == 0 ? wrc : rc;
    }
    for (uint16_t t = 0; parts != NULL && t <= REEL_EV_MAX; t++) {
        events += parts[t].events;
        files += parts[t].fd >= 0;
        int crc = part_close(&parts[t], rc == 0);
        rc = rc == 0 ? crc : rc;
    }
    if (parts != NULL)
        writer_stop(&w);
    free(parts);
    if (rc != 0) {
        if (created)
            (void)rmdir(o.out); /* empty again: made by this run */
        fprintf(stderr, "reel export: failed; no part file of this run was kept\n");
        return 2;
    }
    fprintf(stderr, "reel export: %" PRIu64 " events of offsets [%" PRIu64 ", %" PRIu64
                    ") into %" PRIu64 " files in %s\n", events, o.from, end, files, o.out);
    fprintf(stderr, "reel export: next --from %" PRIu64 "\n", end);
    return 0;
}
