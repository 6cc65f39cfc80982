/*
 * cmd_dump.c: `reel dump`, the log's records as text or JSON lines.
 *
 * The log is opened read-only (no lock, no recovery writes), so dump may
 * run beside a writer and never changes the files: a torn tail is left for
 * the next writable open to cut, and dump shows the records before it. It
 * prints the records durable when it opened the log.
 *
 * Payloads are shown as hex until events have a schema to decode them by.
 * Long payloads are cut to DUMP_PAYLOAD_SHOWN bytes unless --full, so a
 * dump of large records stays readable and bounded.
 */
#include "tools/cmds.h"
#include "engine/common.h"
#include "engine/datadir.h"
#include "engine/event.h"
#include "engine/log.h"

#include <inttypes.h>
#include <stdbool.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Payload bytes shown without --full. */
#define DUMP_PAYLOAD_SHOWN 64u
/* The JSON of one event: the largest (a post.created at every limit, a
 * 1024-dim embedding at ~16 bytes a number, strings escaped six-fold)
 * stays under 64 KiB. */
#define DUMP_EVENT_JSON_MAX (64u << 10)
/* Hex is written through a stack buffer of this many payload bytes. */
#define DUMP_HEX_CHUNK 512u

typedef struct dump_opts {
    const char *dir;  /* --data, default ./data */
    uint64_t from;    /* first offset shown */
    uint64_t to;      /* offsets from `to` on are not shown */
    uint64_t limit;   /* records shown at most */
    bool json;        /* one JSON object per line */
    bool full;        /* whole payloads */
    bool raw;         /* records as stored, even when they hold events */
} dump_opts_t;

static void dump_usage(FILE *f)
{
    fprintf(f,
            "usage: reel dump [--data DIR] [--from N] [--to N] [--limit N] [--json] [--full] [--raw]\n"
            "\n"
            "Prints the log: each event as its JSON ({\"offset\",\"type\",\"at\",...fields},\n"
            "as GET /v1/log gives it), after its offset, type and ISO-8601 UTC time in\n"
            "text mode. A record that is not an event (or with --raw, every record)\n"
            "prints raw: offset, type number, time, payload size, flags and the payload\n"
            "as hex. Opens the log read-only: it may run beside a writer and changes\n"
            "nothing.\n"
            "\n"
            "  --data DIR   the data directory; the log is DIR/log (default ./data)\n"
            "  --from N     start at offset N (default 0)\n"
            "  --to N       stop before offset N (default: the end of the log)\n"
            "  --limit N    print at most N records\n"
            "  --json       one JSON object per line: the event, or for a raw record\n"
            "               {\"offset\",\"type\",\"at\" (ms),\"size\",\"flags\",\"payload_hex\"},\n"
            "               plus \"truncated\":true when the payload was cut\n"
            "  --raw        print every record raw, events too\n"
            "  --full       whole payloads (default: the first %u bytes, then \"...\")\n"
            "\n"
            "exit status: 0 done; 2 bad usage, or the log could not be opened or read\n"
            "(run `reel verify` for the details of a damaged log)\n",
            DUMP_PAYLOAD_SHOWN);
}

/* A decimal u64, the whole string: no sign, no spaces, no overflow. */
static int parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (s == NULL || *s == '\0')
        return REEL_EUSAGE;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return REEL_EUSAGE;
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return REEL_EUSAGE;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* Matches argv[*i] against `--name VALUE` or `--name=VALUE`. Returns 1 and
 * the value (advancing *i past it), 0 when it is another option, or
 * REEL_EUSAGE when the value is missing. */
static int opt_value(int argc, char **argv, int *i, const char *name, const char **value)
{
    size_t len = strlen(name);
    const char *arg = argv[*i];
    if (strncmp(arg, name, len) != 0)
        return 0;
    if (arg[len] == '=') {
        *value = arg + len + 1;
        return 1;
    }
    if (arg[len] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return REEL_EUSAGE;
    *value = argv[++*i];
    return 1;
}

/* One numeric option; prints the error itself. Returns 1 matched, 0 not
 * this option, REEL_EUSAGE bad. */
static int opt_number(int argc, char **argv, int *i, const char *name, uint64_t *out)
{
    const char *value = NULL;
    int rc = opt_value(argc, argv, i, name, &value);
    if (rc == 1 && parse_u64(value, out) != 0) {
        fprintf(stderr, "reel dump: %s: '%s' is not a number (0..%" PRIu64 ")\n", name, value,
                UINT64_MAX);
        return REEL_EUSAGE;
    }
    if (rc < 0)
        fprintf(stderr, "reel dump: %s needs a value\n", name);
    return rc;
}

/* Fills o from argv. Returns 0, 1 when --help was printed, or REEL_EUSAGE. */
static int dump_parse(int argc, char **argv, dump_opts_t *o)
{
    *o = (dump_opts_t){"./data", 0, UINT64_MAX, UINT64_MAX, false, false, false};
    for (int i = 1; i < argc; i++) {
        const char *dir = NULL;
        int rc;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            dump_usage(stdout);
            return 1;
        } else if (strcmp(argv[i], "--json") == 0) {
            o->json = true;
        } else if (strcmp(argv[i], "--full") == 0) {
            o->full = true;
        } else if (strcmp(argv[i], "--raw") == 0) {
            o->raw = true;
        } else if ((rc = opt_value(argc, argv, &i, "--data", &dir)) != 0) {
            if (rc < 0 || dir[0] == '\0') {
                fprintf(stderr, "reel dump: --data needs a directory\n");
                return REEL_EUSAGE;
            }
            o->dir = dir;
        } else if ((rc = opt_number(argc, argv, &i, "--from", &o->from)) != 0 ||
                   (rc = opt_number(argc, argv, &i, "--to", &o->to)) != 0 ||
                   (rc = opt_number(argc, argv, &i, "--limit", &o->limit)) != 0) {
            if (rc < 0)
                return rc;
        } else {
            fprintf(stderr, "reel dump: unknown argument '%s' (see reel dump --help)\n", argv[i]);
            return REEL_EUSAGE;
        }
    }
    return 0;
}

/* "2025-10-09T08:53:20.123Z" into buf (at least 32 bytes). */
static void iso_time(char *buf, size_t len, uint64_t ms)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (gmtime_r(&secs, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        snprintf(buf, len, "?"); /* beyond what struct tm holds */
        return;
    }
    size_t used = strlen(buf);
    snprintf(buf + used, len - used, ".%03uZ", (unsigned)(ms % 1000));
}

/* Writes n bytes as lowercase hex, a chunk at a time. */
static void print_hex(FILE *f, const uint8_t *p, uint64_t n)
{
    static const char digits[] = "0123456789abcdef";
    char buf[2 * DUMP_HEX_CHUNK];
    while (n > 0) {
        uint64_t k = n < DUMP_HEX_CHUNK ? n : DUMP_HEX_CHUNK;
        for (uint64_t i = 0; i < k; i++) {
            buf[2 * i] = digits[p[i] >> 4];
            buf[2 * i + 1] = digits[p[i] & 15];
        }
        fwrite(buf, 1, 2 * k, f);
        p += k;
        n -= k;
    }
}

/* A record whose payload is a reeldb event prints as the event: in JSON
 * exactly the line /v1/log gives ({"offset","type","at",...fields}), in
 * text its header then that JSON. Returns false for other records (a log
 * written by a benchmark, say), which print raw. */
static bool print_event(const dump_opts_t *o, const reel_record_t *rec)
{
    static char json[DUMP_EVENT_JSON_MAX];
    reel_event_t ev;
    if (reel_event_decode(rec->type, rec->payload, rec->length, &ev) != 0)
        return false;
    ev.offset = rec->offset;
    ev.at = rec->time_ms;
    if (reel_event_to_json(&ev, json, sizeof(json)) < 0)
        return false;
    if (o->json) {
        puts(json);
        return true;
    }
    char when[48];
    iso_time(when, sizeof(when), rec->time_ms);
    printf("offset=%" PRIu64 " %s time=%s %s\n", rec->offset, reel_event_type_name(rec->type),
           when, json);
    return true;
}

static void print_record(const dump_opts_t *o, const reel_record_t *rec)
{
    if (!o->raw && print_event(o, rec))
        return;
    bool cut = !o->full && rec->length > DUMP_PAYLOAD_SHOWN;
    uint64_t shown = cut ? DUMP_PAYLOAD_SHOWN : rec->length;
    if (o->json) {
        printf("{\"offset\":%" PRIu64 ",\"type\":%u,\"at\":%" PRIu64
               ",\"size\":%" PRIu32 ",\"flags\":%u,\"payload_hex\":\"",
               rec->offset, (unsigned)rec->type, rec->time_ms, rec->length, (unsigned)rec->flags);
        print_hex(stdout, rec->payload, shown);
        fputs(cut ? "\",\"truncated\":true}\n" : "\"}\n", stdout);
        return;
    }
    char when[48];
    iso_time(when, sizeof(when), rec->time_ms);
    printf("offset=%" PRIu64 " type=%u at=%" PRIu64 " time=%s size=%" PRIu32
           " flags=0x%04x payload=",
           rec->offset, (unsigned)rec->type, rec->time_ms, when, rec->length,
           (unsigned)rec->flags);
    print_hex(stdout, rec->payload, shown);
    fputs(cut ? "...\n" : "\n", stdout);
}

/* Prints the records in [from, min(to, end)), at most limit of them. */
static int dump_records(reel_log_t *log, const dump_opts_t *o)
{
    uint64_t end = reel_log_end(log);
    uint64_t to = o->to < end ? o->to : end;
    reel_log_iter_t *it = NULL;
    reel_record_t rec;
    int rc = 0;
    if (o->from >= to || o->limit == 0)
        return 0;
    if ((rc = reel_log_iter_open(log, o->from, &it)) != 0) {
        fprintf(stderr, "reel dump: %s: %s\n", o->dir, reel_strerror(rc));
        return rc;
    }
    for (uint64_t shown = 0, next = o->from; shown < o->limit && next < to; shown++, next++) {
        rc = reel_log_iter_next(it, &rec);
        if (rc == REEL_EEND)
            rc = REEL_ECORRUPT; /* the log said it holds `next`: it must */
        if (rc != 0) {
            fprintf(stderr, "reel dump: %s: reading offset %" PRIu64 ": %s\n", o->dir, next,
                    reel_strerror(rc));
            break;
        }
        print_record(o, &rec);
    }
    reel_log_iter_close(it);
    return rc;
}

int reel_cmd_dump(int argc, char **argv)
{
    dump_opts_t o;
    reel_log_t *log = NULL;
    char err[512];
    int rc = dump_parse(argc, argv, &o);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    reel_log_options_t lo = {.read_only = true};
    char log_dir[PATH_MAX];
    if (reel_data_log_path(o.dir, log_dir, sizeof(log_dir)) != 0) {
        fprintf(stderr, "reel dump: %s: path too long\n", o.dir);
        return 2;
    }
    rc = reel_log_open(log_dir, &lo, &log, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "reel dump: %s\n", err[0] != '\0' ? err : reel_strerror(rc));
        if (rc == REEL_ECORRUPT || rc == REEL_ECHAIN || rc == REEL_EMISSING)
            fprintf(stderr, "reel dump: run `reel verify --data %s` for a full report\n", o.dir);
        return 2;
    }
    rc = dump_records(log, &o);
    (void)reel_log_close(log); /* read only: nothing to lose */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "reel dump: writing the output failed\n");
        return 2;
    }
    return rc == 0 ? 0 : 2;
}
