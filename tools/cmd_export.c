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
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

/* Progress on a terminal: at most this often. */
#define EXPORT_PROGRESS_NS 250000000ull
/* Bytes buffered before a write (or a zstd step). */
#define EXPORT_BUF_BYTES (256u << 10)
/* zstd level: fast, as the export must keep up with the log. */
#define EXPORT_ZSTD_LEVEL 3

typedef struct export_opts {
    const char *data;  /* --data */
    const char *out;   /* --out */
    bool types[REEL_EV_MAX + 1]; /* --types; all when none named */
    bool csv;          /* --format csv */
    bool zstd;         /* --zstd */
    uint64_t from;     /* --from */
} export_opts_t;

/* One part file being written. */
typedef struct part {
    FILE *f;
    ZSTD_CCtx *z;       /* NULL: plain */
    char *buf;          /* EXPORT_BUF_BYTES */
    size_t used;
    char path[PATH_MAX]; /* final name; the file is path + ".tmp" until done */
    uint64_t events;
    json_t *columns;    /* CSV: the field names after offset and at */
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

/* Writes n bytes of p->buf's content to the file (compressing it). */
static void part_flush(part_t *p, ZSTD_EndDirective mode)
{
    if (p->err != 0)
        return;
    if (p->z == NULL) {
        if (p->used > 0 && fwrite(p->buf, 1, p->used, p->f) != p->used)
            p->err = -EIO;
        p->used = 0;
        return;
    }
    static char zout[EXPORT_BUF_BYTES];
    ZSTD_inBuffer in = {p->buf, p->used, 0};
    size_t left;
    do {
        ZSTD_outBuffer out = {zout, sizeof(zout), 0};
        left = ZSTD_compressStream2(p->z, &out, &in, mode);
        if (ZSTD_isError(left)) {
            p->err = -EIO;
            return;
        }
        if (out.pos > 0 && fwrite(zout, 1, out.pos, p->f) != out.pos) {
            p->err = -EIO;
            return;
        }
    } while (mode == ZSTD_e_end ? left != 0 : in.pos < in.size);
    p->used = 0;
}

static void part_write(part_t *p, const char *s, size_t n)
{
    while (n > 0 && p->err == 0) {
        if (p->used == EXPORT_BUF_BYTES)
            part_flush(p, ZSTD_e_continue);
        size_t k = EXPORT_BUF_BYTES - p->used < n ? EXPORT_BUF_BYTES - p->used : n;
        memcpy(p->buf + p->used, s, k);
        p->used += k;
        s += k;
        n -= k;
    }
}

static void part_puts(part_t *p, const char *s)
{
    part_write(p, s, strlen(s));
}

/* Creates the part file of type t: "<out>/<type>.<from>.<ext>[.zst].tmp". */
static int part_open(const export_opts_t *o, uint16_t t, part_t *p)
{
    char tmp[PATH_MAX + 8];
    struct stat st;
    snprintf(p->path, sizeof(p->path), "%s/%s.%020" PRIu64 ".%s%s", o->out,
             reel_event_type_name(t), o->from, o->csv ? "csv" : "jsonl", o->zstd ? ".zst" : "");
    snprintf(tmp, sizeof(tmp), "%s.tmp", p->path);
    if (stat(p->path, &st) == 0) {
        fprintf(stderr, "reel export: %s exists: this range was exported already (never "
                        "overwritten; pass the next --from, or another --out)\n", p->path);
        return -EEXIST;
    }
    p->f = fopen(tmp, "wb");
    p->buf = malloc(EXPORT_BUF_BYTES);
    p->z = o->zstd ? ZSTD_createCCtx() : NULL;
    if (p->f == NULL || p->buf == NULL || (o->zstd && p->z == NULL)) {
        fprintf(stderr, "reel export: %s: %s\n", tmp, strerror(errno ? errno : ENOMEM));
        return -EIO;
    }
    if (p->z != NULL)
        ZSTD_CCtx_setParameter(p->z, ZSTD_c_compressionLevel, EXPORT_ZSTD_LEVEL);
    return 0;
}

/* Finishes the part: flush, fsync, then link the .tmp to its name (or,
 * when keep is false or anything failed, just removes the .tmp). */
static int part_close(part_t *p, bool keep)
{
    char tmp[PATH_MAX + 8];
    int rc = 0;
    if (p->f == NULL && p->buf == NULL)
        return 0;
    snprintf(tmp, sizeof(tmp), "%s.tmp", p->path);
    if (p->f != NULL && keep) {
        part_flush(p, ZSTD_e_end);
        if (p->err == 0 && (fflush(p->f) != 0 || fsync(fileno(p->f)) != 0))
            p->err = -errno;
    }
    if (p->f != NULL && fclose(p->f) != 0 && p->err == 0)
        p->err = -errno;
    if (keep && p->err == 0 && link(tmp, p->path) != 0)
        p->err = -errno;
    if (keep && p->err != 0) {
        fprintf(stderr, "reel export: %s: %s\n", p->path, strerror(-p->err));
        rc = p->err;
    }
    unlink(tmp);
    ZSTD_freeCCtx(p->z);
    free(p->buf);
    json_decref(p->columns);
    memset(p, 0, sizeof(*p));
    return rc;
}

/* RFC 4180: a cell with a comma, a quote, CR or LF is quoted, and its
 * quotes doubled. An empty string is written "" (empty: JSON null). */
static void csv_cell(part_t *p, const char *s, size_t n)
{
    bool quote = n == 0 || strpbrk(s, ",\"\r\n") != NULL || memchr(s, '\0', n) != NULL;
    if (!quote) {
        part_write(p, s, n);
        return;
    }
    part_write(p, "\"", 1);
    for (const char *q; n > 0 && (q = memchr(s, '"', n)) != NULL;) {
        part_write(p, s, (size_t)(q - s) + 1);
        part_write(p, "\"", 1); /* the quote, doubled */
        n -= (size_t)(q - s) + 1;
        s = q + 1;
    }
    part_write(p, s, n);
    part_write(p, "\"", 1);
}

static void csv_value(part_t *p, json_t *v)
{
    char num[32];
    if (v == NULL || json_is_null(v))
        return;
    if (json_is_string(v)) {
        csv_cell(p, json_string_value(v), json_string_length(v));
    } else if (json_is_integer(v)) {
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        part_puts(p, num);
    } else if (json_is_boolean(v)) {
        part_puts(p, json_is_true(v) ? "true" : "false");
    } else { /* lists (and reals): their JSON text */
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
        if (s == NULL) {
            p->err = -ENOMEM;
            return;
        }
        csv_cell(p, s, strlen(s));
        free(s);
    }
}

/* One CSV row from the event's JSON; the first row of a part writes the
 * header, whose columns every later row follows. */
static int csv_row(part_t *p, const char *json, const reel_event_t *ev)
{
    char num[64];
    json_error_t jerr;
    json_t *obj = json_loads(json, JSON_DECODE_ANY, &jerr);
    if (obj == NULL)
        return REEL_ECORRUPT;
    if (p->columns == NULL) {
        const char *k;
        json_t *v;
        p->columns = json_array();
        part_puts(p, "offset,at");
        json_object_foreach(obj, k, v) {
            if (strcmp(k, "offset") == 0 || strcmp(k, "type") == 0 || strcmp(k, "at") == 0)
                continue;
            json_array_append_new(p->columns, json_string(k));
            part_puts(p, ",");
            csv_cell(p, k, strlen(k));
        }
        part_puts(p, "\r\n");
    }
    snprintf(num, sizeof(num), "%" PRIu64 ",%" PRIu64, ev->offset, ev->at);
    part_puts(p, num);
    size_t i;
    json_t *col;
    json_array_foreach(p->columns, i, col) {
        part_puts(p, ",");
        csv_value(p, json_object_get(obj, json_string_value(col)));
    }
    part_puts(p, "\r\n");
    json_decref(obj);
    return 0;
}

/* Writes one event to its type's part, opening it at the type's first. */
static int export_event(const export_opts_t *o, part_t *parts, const reel_event_t *ev)
{
    static char json[TOOL_EVENT_JSON_MAX];
    part_t *p = &parts[ev->type];
    int len = reel_event_to_json(ev, json, sizeof(json)), rc;
    if (len < 0)
        return len;
    if (p->f == NULL && (rc = part_open(o, ev->type, p)) != 0)
        return rc;
    if (o->csv) {
        if ((rc = csv_row(p, json, ev)) != 0)
            return rc;
    } else {
        part_write(p, json, (size_t)len);
        part_write(p, "\n", 1);
    }
    p->events++;
    return p->err;
}

static void export_progress(uint64_t start_ns, uint64_t done, uint64_t total)
{
    double secs = (double)(reel_mono_ns() - start_ns) / 1e9;
    double rate = secs > 0 ? (double)done / secs : 0;
    fprintf(stderr, "\r  %" PRIu64 " / %" PRIu64 " events (%3.0f%%), %.0f events/s, %.0f s left   ",
            done, total, total ? 100.0 * (double)done / (double)total : 100.0, rate,
            rate > 0 ? (double)(total - done) / rate : 0.0);
}

/* Exports [o->from, end) into parts; *end gets the log's end at open. */
static int export_range(const export_opts_t *o, reel_log_t *log, part_t *parts, uint64_t *end)
{
    reel_log_iter_t *it = NULL;
    reel_record_t rec;
    bool tty = isatty(2) != 0;
    uint64_t start = reel_mono_ns(), last = start;
    int rc = 0;
    *end = reel_log_end(log);
    if (o->from > *end) {
        fprintf(stderr, "reel export: --from %" PRIu64 " is past the end of the log (%" PRIu64
                        ")\n", o->from, *end);
        return REEL_EUSAGE;
    }
    if (o->from < *end && (rc = reel_log_iter_open(log, o->from, &it)) != 0)
        fprintf(stderr, "reel export: %s: %s\n", o->data, reel_strerror(rc));
    for (uint64_t next = o->from; rc == 0 && next < *end; next++) {
        reel_event_t ev;
        rc = reel_log_iter_next(it, &rec);
        if (rc == REEL_EEND)
            rc = REEL_ECORRUPT; /* the log said it holds `next`: it must */
        if (rc != 0) {
            fprintf(stderr, "reel export: reading offset %" PRIu64 ": %s\n", next,
                    reel_strerror(rc));
            break;
        }
        if (tool_event_decode(&rec, &ev) != 0 || !o->types[ev.type])
            continue; /* not an event (a benchmark's record), or not asked for */
        rc = export_event(o, parts, &ev);
        if (rc == -EEXIST || rc == -EIO)
            break; /* printed */
        if (rc != 0)
            fprintf(stderr, "reel export: offset %" PRIu64 ": %s\n", next, reel_strerror(rc));
        if (tty && (next & 4095) == 0 && reel_mono_ns() - last > EXPORT_PROGRESS_NS) {
            last = reel_mono_ns();
            export_progress(start, next - o->from, *end - o->from);
        }
    }
    if (tty && last != start)
        fputs("\n", stderr);
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
    if (mkdir(o.out, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "reel export: --out %s: %s\n", o.out, strerror(errno));
        return 2;
    }
    if ((rc = tool_log_open_ro("reel export", o.data, &log)) != 0)
        return 2;
    parts = calloc(REEL_EV_MAX + 1, sizeof(*parts));
    rc = parts != NULL ? export_range(&o, log, parts, &end) : -ENOMEM;
    (void)reel_log_close(log);
    for (uint16_t t = 0; parts != NULL && t <= REEL_EV_MAX; t++) {
        events += parts[t].events;
        files += parts[t].f != NULL;
        int crc = part_close(&parts[t], rc == 0);
        rc = rc == 0 ? crc : rc;
    }
    free(parts);
    if (rc != 0) {
        fprintf(stderr, "reel export: failed; no part file of this run was kept\n");
        return 2;
    }
    fprintf(stderr, "reel export: %" PRIu64 " events of offsets [%" PRIu64 ", %" PRIu64
                    ") into %" PRIu64 " files in %s\n", events, o.from, end, files, o.out);
    fprintf(stderr, "reel export: next --from %" PRIu64 "\n", end);
    return 0;
}
