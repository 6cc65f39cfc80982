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
#include "engine/replay.h"
#include "tools/tool_util.h"

#include <inttypes.h>
#include <stdbool.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <time.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <sys/stat.h>

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
    uint64_t since;   /* events at or after this time (ms); 0: any */
    uint64_t until;   /* events before this time (ms); UINT64_MAX: any */
    uint64_t user;    /* events whose user or target is this id; 0: any */
    uint64_t post;    /* events of this post; 0: any */
    bool types[REEL_EV_MAX + 1]; /* --types, when any_type is false */
    bool any_type;    /* no --types */
    bool json;        /* one JSON object per line */
    bool table;       /* a readable table, one event a row */
    bool full;        /* whole payloads */
    bool raw;         /* records as stored, even when they hold events */
    bool follow;      /* tail the log until SIGINT or SIGTERM */
} dump_opts_t;

static void dump_usage(FILE *f)
{
    fprintf(f,
            "usage: reel dump [--data DIR] [--from N] [--to N] [--since T] [--until T]\n"
            "                 [--types t1,t2] [--user ID] [--post ID] [--limit N]\n"
            "                 [--json | --table] [--full] [--raw] [--follow]\n"
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
            "  --since T    events at or after time T: ms since the epoch, or a UTC\n"
            "               date YYYY-MM-DDTHH:MM:SSZ\n"
            "  --until T    events before time T (same forms)\n"
            "  --types LIST comma-separated event types, e.g. like.created,post.created\n"
            "  --user ID    events whose user_id (author, owner, follower...) or\n"
            "               target (followed, blocked, grantee) is ID\n"
            "  --post ID    events whose post_id is ID\n"
            "  --limit N    print at most N records\n"
            "  --json       one JSON object per line: the event, or for a raw record\n"
            "               {\"offset\",\"type\",\"at\" (ms),\"size\",\"flags\",\"payload_hex\"},\n"
            "               plus \"truncated\":true when the payload was cut\n"
            "  --table      a readable table: offset, time, type, then the fields as\n"
            "               name=value (long strings cut, embeddings as their size)\n"
            "  --raw        print every record raw, events too\n"
            "  --full       whole payloads (default: the first %u bytes, then \"...\")\n"
            "  --follow     at the end, wait for new records and print them as they\n"
            "               become durable (a live reeld's log), until SIGINT or\n"
            "               SIGTERM (exit 0), --to, --until or --limit\n"
            "\n"
            "Filters (--types, --user, --post) select events: records that are not\n"
            "events are then left out. Times never go back in the log, so --since\n"
            "starts at the first event at or after it and --until stops the dump.\n"
            "\n"
            "exit status: 0 done; 2 bad usage, or the log could not be opened or read\n"
            "(run `reel verify` for the details of a damaged log)\n",
            DUMP_PAYLOAD_SHOWN);
}

/* A decimal u64, the whole string: no sign, no spaces, no overflow. */
static int parse_u64(const char *s, uint64_t *out)
{
    return tool_parse_u64(s, out);
}

/* One numeric option; prints the error itself. Returns 1 matched, 0 not
 * this option, REEL_EUSAGE bad. */
static int opt_number(int argc, char **argv, int *i, const char *name, uint64_t *out)
{
    const char *value = NULL;
    int rc = tool_opt_value(argc, argv, i, name, &value);
    if (rc == 1 && parse_u64(value, out) != 0) {
        fprintf(stderr, "reel dump: %s: '%s' is not a number (0..%" PRIu64 ")\n", name, value,
                UINT64_MAX);
        return REEL_EUSAGE;
    }
    if (rc < 0)
        fprintf(stderr, "reel dump: %s needs a value\n", name);
    return rc;
}

/* One time option (ms or a UTC date). */
static int opt_time(int argc, char **argv, int *i, const char *name, uint64_t *out)
{
    const char *value = NULL;
    int rc = tool_opt_value(argc, argv, i, name, &value);
    if (rc == 1 && tool_parse_time_ms(value, out) != 0) {
        fprintf(stderr, "reel dump: %s: '%s' is not a time (ms since the epoch, or "
                        "YYYY-MM-DDTHH:MM:SSZ)\n", name, value);
        return REEL_EUSAGE;
    }
    if (rc < 0)
        fprintf(stderr, "reel dump: %s needs a value\n", name);
    return rc;
}

/* --types: a comma-separated list of event type names. */
static int parse_types(const char *list, dump_opts_t *o)
{
    const char *p = list;
    o->any_type = false;
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        uint16_t t = reel_event_type_parse(p, len);
        if (t == REEL_EV_NONE) {
            fprintf(stderr, "reel dump: --types: unknown event type '%.*s' (e.g. "
                            "like.created; see docs/EXPORTS.md)\n", (int)len, p);
            return REEL_EUSAGE;
        }
        o->types[t] = true;
        p += len + (comma != NULL);
    }
    if (o->any_type || memchr(o->types, 1, sizeof(o->types)) == NULL) {
        fprintf(stderr, "reel dump: --types needs at least one event type\n");
        return REEL_EUSAGE;
    }
    return 0;
}

/* Options with a value other than numbers: 1 matched, 0 not, <0 bad. */
static int opt_other(int argc, char **argv, int *i, dump_opts_t *o)
{
    const char *v = NULL;
    int rc = tool_opt_value(argc, argv, i, "--data", &v);
    if (rc != 0) {
        if (rc < 0 || v[0] == '\0') {
            fprintf(stderr, "reel dump: --data needs a directory\n");
            return REEL_EUSAGE;
        }
        o->dir = v;
        return 1;
    }
    rc = tool_opt_value(argc, argv, i, "--types", &v);
    if (rc < 0)
        fprintf(stderr, "reel dump: --types needs a value\n");
    if (rc == 1 && parse_types(v, o) != 0)
        return REEL_EUSAGE;
    return rc;
}

static int check_id(const char *name, uint64_t v)
{
    if (v == 0 || v > REEL_ID_MAX) {
        fprintf(stderr, "reel dump: %s: ids are 1..%llu\n", name, (unsigned long long)REEL_ID_MAX);
        return REEL_EUSAGE;
    }
    return 0;
}

/* Fills o from argv. Returns 0, 1 when --help was printed, or REEL_EUSAGE. */
static int dump_parse(int argc, char **argv, dump_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    *o = (dump_opts_t){.dir = "./data", .to = UINT64_MAX, .limit = UINT64_MAX,
                       .until = UINT64_MAX, .any_type = true};
    for (int i = 1; i < argc; i++) {
        int rc;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            dump_usage(stdout);
            return 1;
        } else if (strcmp(argv[i], "--json") == 0) {
            o->json = true;
        } else if (strcmp(argv[i], "--table") == 0) {
            o->table = true;
        } else if (strcmp(argv[i], "--full") == 0) {
            o->full = true;
        } else if (strcmp(argv[i], "--raw") == 0) {
            o->raw = true;
        } else if (strcmp(argv[i], "--follow") == 0) {
            o->follow = true;
        } else if ((rc = opt_other(argc, argv, &i, o)) != 0 ||
                   (rc = opt_number(argc, argv, &i, "--from", &o->from)) != 0 ||
                   (rc = opt_number(argc, argv, &i, "--to", &o->to)) != 0 ||
                   (rc = opt_number(argc, argv, &i, "--limit", &o->limit)) != 0 ||
                   (rc = opt_time(argc, argv, &i, "--since", &o->since)) != 0 ||
                   (rc = opt_time(argc, argv, &i, "--until", &o->until)) != 0) {
            if (rc < 0)
                return rc;
        } else if ((rc = opt_number(argc, argv, &i, "--user", &o->user)) != 0) {
            if (rc < 0 || check_id("--user", o->user) != 0)
                return REEL_EUSAGE;
        } else if ((rc = opt_number(argc, argv, &i, "--post", &o->post)) != 0) {
            if (rc < 0 || check_id("--post", o->post) != 0)
                return REEL_EUSAGE;
        } else {
            fprintf(stderr, "reel dump: unknown argument '%s' (see reel dump --help)\n", argv[i]);
            return REEL_EUSAGE;
        }
    }
    if (o->json && o->table) {
        fprintf(stderr, "reel dump: --json and --table: choose one\n");
        return REEL_EUSAGE;
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

/* Longest string shown in a table cell before it is cut. */
#define DUMP_TABLE_STR_MAX 40

/* One table value: strings quoted and cut, lists of numbers (embeddings)
 * as their length, other lists and scalars as compact JSON. */
static void table_value(const char *key, json_t *v)
{
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        char *q = json_dumps(v, JSON_ENCODE_ANY);
        if (n <= DUMP_TABLE_STR_MAX || q == NULL) {
            fputs(q ? q : "\"?\"", stdout);
        } else {
            json_t *cut = json_stringn_nocheck(s, DUMP_TABLE_STR_MAX);
            char *c = json_dumps(cut, JSON_ENCODE_ANY);
            if (c != NULL)
                printf("%.*s...\"", (int)strlen(c) - 1, c);
            free(c);
            json_decref(cut);
        }
        free(q);
    } else if (json_is_array(v) && strcmp(key, "embedding") == 0) {
        printf("[%zu floats]", json_array_size(v));
    } else if (json_is_null(v)) {
        fputs("-", stdout);
    } else {
        char *q = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        fputs(q ? q : "?", stdout);
        free(q);
    }
}

/* One table row: offset, time, type, then name=value for each field. */
static void table_row(const reel_record_t *rec, const char *json)
{
    char when[48];
    json_error_t jerr;
    json_t *obj = json_loads(json, JSON_DECODE_ANY, &jerr);
    iso_time(when, sizeof(when), rec->time_ms);
    printf("%10" PRIu64 "  %-24s  %-22s", rec->offset, when, reel_event_type_name(rec->type));
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        if (strcmp(k, "offset") == 0 || strcmp(k, "type") == 0 || strcmp(k, "at") == 0)
            continue;
        printf(" %s=", k);
        table_value(k, v);
    }
    putchar('\n');
    json_decref(obj);
}

/* A record whose payload is a reeldb event prints as the event: in JSON
 * exactly the line /v1/log gives ({"offset","type","at",...fields}), in
 * text its header then that JSON, in a table one row. Returns false for
 * other records (a log written by a benchmark, say), which print raw. */
static bool print_event(const dump_opts_t *o, const reel_record_t *rec, const reel_event_t *ev)
{
    static char json[DUMP_EVENT_JSON_MAX];
    if (ev == NULL || reel_event_to_json(ev, json, sizeof(json)) < 0)
        return false;
    if (o->json) {
        puts(json);
        return true;
    }
    if (o->table) {
        table_row(rec, json);
        return true;
    }
    char when[48];
    iso_time(when, sizeof(when), rec->time_ms);
    printf("offset=%" PRIu64 " %s time=%s %s\n", rec->offset, reel_event_type_name(rec->type),
           when, json);
    return true;
}

static void print_record(const dump_opts_t *o, const reel_record_t *rec, const reel_event_t *ev)
{
    if (!o->raw && print_event(o, rec, ev))
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

/* Whether the event filters are on: records that are not events are then
 * left out. */
static bool filtering(const dump_opts_t *o)
{
    return !o->any_type || o->user != 0 || o->post != 0;
}

/* Whether rec passes the filters; *ev_out is its event (NULL: not one). */
static bool wanted(const dump_opts_t *o, const reel_record_t *rec, reel_event_t *ev,
                   const reel_event_t **ev_out)
{
    *ev_out = NULL;
    if (rec->time_ms < o->since)
        return false;
    if (tool_event_decode(rec, ev) == 0)
        *ev_out = ev;
    if (!filtering(o))
        return true;
    if (*ev_out == NULL)
        return false;
    if (!o->any_type && !o->types[ev->type])
        return false;
    if (o->user != 0 && ev->user != o->user && ev->target != o->user)
        return false;
    return o->post == 0 || ev->post == o->post;
}

/* Where a dump stands across re-opens of the log (--follow). */
typedef struct dump_pos {
    uint64_t first; /* the first offset of the dump */
    uint64_t next;  /* next offset to read */
    uint64_t shown; /* records printed */
    bool done;      /* --to, --until or --limit reached */
} dump_pos_t;

/* Prints the wanted records in [pos->next, min(to, end)). */
static int dump_records(reel_log_t *log, const dump_opts_t *o, dump_pos_t *pos)
{
    uint64_t end = reel_log_end(log);
    uint64_t to = o->to < end ? o->to : end;
    reel_log_iter_t *it = NULL;
    reel_record_t rec;
    reel_event_t ev;
    int rc = 0;
    if (pos->shown >= o->limit || pos->next >= o->to)
        pos->done = true;
    if (pos->done || pos->next >= to)
        return 0;
    if ((rc = reel_log_iter_open(log, pos->next, &it)) != 0) {
        fprintf(stderr, "reel dump: %s: %s\n", o->dir, reel_strerror(rc));
        return rc;
    }
    /* A progress line over the records read (not the shown ones): a
     * filtered dump of a big log reads for a long time and prints little.
     * Under --follow only the first pass, the one that catches up. */
    tool_progress_t prog;
    uint64_t first = pos->next;
    tool_progress_start(&prog, "records", to - first);
    prog.on = prog.on && first == pos->first &&
              (isatty(1) == 0 || getenv("REEL_PROGRESS") != NULL); /* not across the rows */
    for (; pos->shown < o->limit && pos->next < to; pos->next++) {
        const reel_event_t *evp;
        tool_progress(&prog, pos->next - first);
        rc = reel_log_iter_next(it, &rec);
        if (rc == REEL_EEND)
            rc = REEL_ECORRUPT; /* the log said it holds `next`: it must */
        if (rc != 0) {
            fprintf(stderr, "reel dump: %s: reading offset %" PRIu64 ": %s\n", o->dir,
                    pos->next, reel_strerror(rc));
            fprintf(stderr, "reel dump: run `reel verify --data %s` for a full report\n",
                    o->dir);
            break;
        }
        if (rec.time_ms >= o->until) {
            pos->done = true; /* times never go back: nothing later is before it */
            break;
        }
        if (wanted(o, &rec, &ev, &evp)) {
            print_record(o, &rec, evp);
            pos->shown++;
        }
    }
    if (pos->shown >= o->limit || pos->next >= o->to)
        pos->done = true;
    tool_progress_end(&prog, pos->next - first);
    reel_log_iter_close(it);
    return rc;
}

/* ---- --follow ---- */

static volatile sig_atomic_t dump_stop;

static void dump_on_signal(int sig)
{
    (void)sig;
    dump_stop = 1;
}

/* How often --follow looks for new records: a tail, not a
 * synchronisation (a read-only open cannot be woken by another process's
 * writer; the log has no notification file). */
#define DUMP_FOLLOW_POLL_MS 100

/* A summary of the log directory's segments (names, sizes, modification
 * times): it changes when the writer appends. */
static uint64_t log_signature(const char *log_dir)
{
    DIR *d = opendir(log_dir);
    uint64_t sig = 1469598103934665603ull;
    struct dirent *e;
    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        char path[PATH_MAX];
        struct stat st;
        if (e->d_name[0] == '.' || strstr(e->d_name, "seg") == NULL)
            continue;
        snprintf(path, sizeof(path), "%s/%s", log_dir, e->d_name);
        if (stat(path, &st) != 0)
            continue;
        uint64_t parts[4] = {(uint64_t)st.st_size, (uint64_t)st.st_mtim.tv_sec,
                             (uint64_t)st.st_mtim.tv_nsec, (uint64_t)st.st_ino};
        for (int i = 0; i < 4; i++)
            sig = (sig ^ parts[i]) * 1099511628211ull;
        for (const char *c = e->d_name; *c != '\0'; c++)
            sig = (sig ^ (uint8_t)*c) * 1099511628211ull;
    }
    closedir(d);
    return sig;
}

/* Waits until the log's files change or a signal asks to stop. Returns
 * false when stopping. */
static bool follow_wait(const char *log_dir, uint64_t *sig)
{
    while (!dump_stop) {
        struct timespec ts = {0, DUMP_FOLLOW_POLL_MS * 1000000L};
        uint64_t now = log_signature(log_dir);
        if (now != *sig) {
            *sig = now;
            return true;
        }
        nanosleep(&ts, NULL); /* a signal ends it early */
    }
    return false;
}

static int open_log(const dump_opts_t *o, const char *log_dir, reel_log_t **log)
{
    char err[512] = "";
    reel_log_options_t lo = {.read_only = true};
    int rc = reel_log_open(log_dir, &lo, log, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "reel dump: %s\n", err[0] != '\0' ? err : reel_strerror(rc));
        if (rc == REEL_ECORRUPT || rc == REEL_ECHAIN || rc == REEL_EMISSING)
            fprintf(stderr, "reel dump: run `reel verify --data %s` for a full report\n", o->dir);
    }
    return rc;
}

/* The first offset to read: --from, or later when --since skips ahead. */
static int first_offset(reel_log_t *log, const dump_opts_t *o, uint64_t *out)
{
    uint64_t at = o->from;
    if (o->since > 0) {
        int rc = reel_replay_offset_at(log, o->since - 1, &at);
        if (rc != 0) {
            fprintf(stderr, "reel dump: %s: looking for --since: %s\n", o->dir,
                    reel_strerror(rc));
            return rc;
        }
    }
    *out = at > o->from ? at : o->from;
    return 0;
}

/* The dump, following the log when asked: re-opens it read-only whenever
 * its files change and prints what became durable. */
static int dump_run(const dump_opts_t *o, const char *log_dir)
{
    reel_log_t *log = NULL;
    dump_pos_t pos = {0};
    uint64_t sig = o->follow ? log_signature(log_dir) : 0;
    int rc = open_log(o, log_dir, &log);
    if (rc == 0)
        rc = first_offset(log, o, &pos.next);
    pos.first = pos.next;
    for (;;) {
        if (rc == 0)
            rc = dump_records(log, o, &pos);
        (void)reel_log_close(log); /* read only: nothing to lose */
        log = NULL;
        if (fflush(stdout) != 0 || ferror(stdout)) {
            fprintf(stderr, "reel dump: writing the output failed\n");
            return REEL_EUSAGE;
        }
        if (rc != 0 || !o->follow || pos.done || !follow_wait(log_dir, &sig))
            return rc;
        if ((rc = open_log(o, log_dir, &log)) != 0)
            return rc;
    }
}

int reel_cmd_dump(int argc, char **argv)
{
    dump_opts_t o;
    int rc = dump_parse(argc, argv, &o);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    char log_dir[PATH_MAX];
    if (reel_data_log_path(o.dir, log_dir, sizeof(log_dir)) != 0) {
        fprintf(stderr, "reel dump: %s: path too long\n", o.dir);
        return 2;
    }
    if (o.follow) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = dump_on_signal; /* no SA_RESTART: the sleep ends at once */
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
    }
    if (o.table)
        printf("%10s  %-24s  %-22s fields\n", "offset", "time (UTC)", "type");
    rc = dump_run(&o, log_dir);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "reel dump: writing the output failed\n");
        return 2;
    }
    return rc == 0 ? 0 : 2;
}
