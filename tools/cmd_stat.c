/*
 * cmd_stat.c: `reel stat`, what a data directory's log holds: its
 * segments (plain and compressed, bytes on disk, compression ratio), its
 * events by type and by UTC day, and the busiest users.
 *
 * Read-only and safe beside a running reeld: the segment files are listed
 * and stat'ed (compressed ones opened for their footer), and the events are
 * read in one pass through a read-only log iterator, up to the durable end
 * as it stood at open.
 */
#include "tools/cmds.h"
#include "tools/tool_util.h"
#include "engine/common.h"
#include "engine/datadir.h"
#include "engine/io.h"
#include "engine/zseg.h"

#include <dirent.h>
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

/* Users listed as the busiest. */
#define STAT_TOP_USERS 10u

typedef struct stat_opts {
    const char *data; /* --data */
    bool json;        /* --json */
} stat_opts_t;

/* A u64 -> count map, open addressing; key 0 is never stored (user 0 is
 * "none", and day 0 is mapped to key UINT64_MAX by the caller). */
typedef struct counter_map {
    uint64_t *keys;
    uint64_t *counts;
    size_t cap; /* a power of two */
    size_t n;
} counter_map_t;

typedef struct stat_segments {
    uint64_t plain, compressed;             /* counts */
    uint64_t plain_bytes, compressed_bytes; /* file sizes */
    uint64_t disk_bytes;                    /* allocated blocks, all segments */
    uint64_t compressed_raw_bytes;          /* record bytes inside .zseg files */
} stat_segments_t;

typedef struct stat_events {
    uint64_t total;
    uint64_t other;                 /* records that are not reeldb events */
    uint64_t by_type[REEL_EV_MAX + 1];
    uint64_t first_at, last_at;     /* ms, 0 when empty */
    counter_map_t days;             /* day + 1 -> events */
    counter_map_t users;            /* user -> events */
} stat_events_t;

static int map_grow(counter_map_t *m)
{
    size_t cap = m->cap ? m->cap * 2 : 1024;
    uint64_t *keys = calloc(cap, sizeof(*keys));
    uint64_t *counts = calloc(cap, sizeof(*counts));
    if (keys == NULL || counts == NULL) {
        free(keys);
        free(counts);
        return -ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (m->keys[i] == 0)
            continue;
        size_t j = (size_t)(m->keys[i] * 0x9e3779b97f4a7c15ull) & (cap - 1);
        while (keys[j] != 0)
            j = (j + 1) & (cap - 1);
        keys[j] = m->keys[i];
        counts[j] = m->counts[i];
    }
    free(m->keys);
    free(m->counts);
    m->keys = keys;
    m->counts = counts;
    m->cap = cap;
    return 0;
}

static int map_add(counter_map_t *m, uint64_t key)
{
    REEL_ASSERT(key != 0);
    if ((m->n + 1) * 2 > m->cap && map_grow(m) != 0)
        return -ENOMEM;
    size_t j = (size_t)(key * 0x9e3779b97f4a7c15ull) & (m->cap - 1);
    while (m->keys[j] != 0 && m->keys[j] != key)
        j = (j + 1) & (m->cap - 1);
    if (m->keys[j] == 0) {
        m->keys[j] = key;
        m->n++;
    }
    m->counts[j]++;
    return 0;
}

static void map_free(counter_map_t *m)
{
    free(m->keys);
    free(m->counts);
}

/* One (key, count) of a map, for sorting. */
typedef struct kc {
    uint64_t key;
    uint64_t count;
} kc_t;

static int by_count_desc(const void *a, const void *b)
{
    const kc_t *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return x->key < y->key ? -1 : x->key > y->key;
}

static int by_key(const void *a, const void *b)
{
    const kc_t *x = a, *y = b;
    return x->key < y->key ? -1 : x->key > y->key;
}

/* The map's entries, sorted by cmp; the caller frees. NULL when empty or
 * out of memory (*n is 0 then). */
static kc_t *map_sorted(const counter_map_t *m, int (*cmp)(const void *, const void *), size_t *n)
{
    kc_t *v = m->n ? malloc(m->n * sizeof(*v)) : NULL;
    *n = 0;
    if (v == NULL)
        return NULL;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->keys[i] != 0)
            v[(*n)++] = (kc_t){m->keys[i], m->counts[i]};
    }
    qsort(v, *n, sizeof(*v), cmp);
    return v;
}

static void stat_usage(FILE *f)
{
    fprintf(f,
            "usage: reel stat [--data DIR] [--json]\n"
            "\n"
            "What the log of DIR holds: segments (plain and zstd-compressed, bytes on\n"
            "disk, compression ratio of the compressed ones), events in total and by\n"
            "type, events per UTC day, and the %u busiest users (events whose user_id,\n"
            "author or owner is the user). One pass over the log, opened read-only: it\n"
            "may run beside reeld and changes nothing.\n"
            "\n"
            "  --data DIR   the data directory; the log is DIR/log (default ./data)\n"
            "  --json       one JSON object instead of text\n"
            "\n"
            "exit status: 0 done; 2 bad usage, or the log could not be opened or read\n",
            STAT_TOP_USERS);
}

static int stat_parse(int argc, char **argv, stat_opts_t *o)
{
    *o = (stat_opts_t){REEL_DATA_DIR_DEFAULT, false};
    for (int i = 1; i < argc; i++) {
        const char *dir = NULL;
        int rc;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            stat_usage(stdout);
            return 1;
        } else if (strcmp(argv[i], "--json") == 0) {
            o->json = true;
        } else if ((rc = tool_opt_value(argc, argv, &i, "--data", &dir)) != 0) {
            if (rc < 0 || dir[0] == '\0') {
                fprintf(stderr, "reel stat: --data needs a directory\n");
                return REEL_EUSAGE;
            }
            o->data = dir;
        } else {
            fprintf(stderr, "reel stat: unknown argument '%s' (see reel stat --help)\n", argv[i]);
            return REEL_EUSAGE;
        }
    }
    return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Adds the compressed segment at path to s: its raw bytes from the footer. */
static int stat_zseg(reel_io_t *io, const char *path, stat_segments_t *s)
{
    reel_zseg_t *z = NULL;
    reel_zseg_info_t info;
    int rc = reel_zseg_open(io, path, &z);
    if (rc != 0) {
        fprintf(stderr, "reel stat: %s: %s\n", path, reel_strerror(rc));
        return rc;
    }
    reel_zseg_get_info(z, &info);
    s->compressed_raw_bytes += info.raw_bytes;
    reel_zseg_close(z);
    return 0;
}

/* Lists the segment files of the log in data_dir into s. */
static int stat_segment_files(const char *data_dir, stat_segments_t *s)
{
    char log_dir[PATH_MAX], path[PATH_MAX + 256];
    reel_io_t *io = NULL;
    struct stat st;
    int rc = reel_data_log_path(data_dir, log_dir, sizeof(log_dir));
    DIR *d = rc == 0 ? opendir(log_dir) : NULL;
    if (d == NULL) {
        fprintf(stderr, "reel stat: %s: cannot list the log's segments\n", data_dir);
        return -EIO;
    }
    if ((rc = reel_io_sync_create(&io)) != 0) {
        closedir(d);
        return rc;
    }
    for (struct dirent *e; rc == 0 && (e = readdir(d)) != NULL;) {
        bool plain = ends_with(e->d_name, ".seg"), packed = ends_with(e->d_name, ".zseg");
        if (!plain && !packed)
            continue;
        snprintf(path, sizeof(path), "%s/%s", log_dir, e->d_name);
        if (stat(path, &st) != 0)
            continue; /* removed meanwhile (compressed by the writer) */
        s->disk_bytes += (uint64_t)st.st_blocks * 512u;
        if (plain) {
            s->plain++;
            s->plain_bytes += (uint64_t)st.st_size;
        } else {
            s->compressed++;
            s->compressed_bytes += (uint64_t)st.st_size;
            rc = stat_zseg(io, path, s);
        }
    }
    closedir(d);
    reel_io_destroy(io);
    return rc;
}

/* Counts one record into ev. */
static int stat_count(stat_events_t *st, const reel_record_t *rec)
{
    reel_event_t ev;
    st->total++;
    if (st->first_at == 0)
        st->first_at = rec->time_ms;
    st->last_at = rec->time_ms;
    if (tool_event_decode(rec, &ev) != 0) {
        st->other++;
        return 0;
    }
    st->by_type[rec->type]++;
    if (map_add(&st->days, tool_day_of_ms(rec->time_ms) + 1) != 0)
        return -ENOMEM;
    if (ev.user != 0 && map_add(&st->users, ev.user) != 0)
        return -ENOMEM;
    return 0;
}

/* One pass over the log of data_dir into st. */
static int stat_events(const char *data_dir, stat_events_t *st)
{
    reel_log_t *log = NULL;
    reel_log_iter_t *it = NULL;
    reel_record_t rec;
    tool_progress_t prog;
    int rc = tool_log_open_ro("reel stat", data_dir, &log);
    if (rc != 0)
        return rc;
    uint64_t end = reel_log_end(log);
    tool_progress_start(&prog, "events", end);
    if (end > 0 && (rc = reel_log_iter_open(log, 0, &it)) != 0)
        fprintf(stderr, "reel stat: %s: %s\n", data_dir, reel_strerror(rc));
    uint64_t next = 0;
    for (; rc == 0 && next < end; next++) {
        rc = reel_log_iter_next(it, &rec);
        if (rc == REEL_EEND)
            rc = REEL_ECORRUPT; /* the log said it holds `next`: it must */
        if (rc != 0) {
            fprintf(stderr, "reel stat: %s: reading offset %" PRIu64 ": %s\n", data_dir, next,
                    reel_strerror(rc));
            break;
        }
        rc = stat_count(st, &rec);
        tool_progress(&prog, next);
    }
    tool_progress_end(&prog, next);
    reel_log_iter_close(it);
    (void)reel_log_close(log); /* read only: nothing to lose */
    return rc;
}

static double ratio_of(const stat_segments_t *s)
{
    return s->compressed_bytes ? (double)s->compressed_raw_bytes / (double)s->compressed_bytes
                               : 0.0;
}

static json_t *stat_json(const stat_segments_t *s, const stat_events_t *st)
{
    json_t *root = json_object(), *segs = json_object(), *types = json_object();
    json_t *days = json_object(), *users = json_array();
    size_t n;
    json_object_set_new(segs, "count", json_integer((json_int_t)(s->plain + s->compressed)));
    json_object_set_new(segs, "plain", json_integer((json_int_t)s->plain));
    json_object_set_new(segs, "compressed", json_integer((json_int_t)s->compressed));
    json_object_set_new(segs, "plain_bytes", json_integer((json_int_t)s->plain_bytes));
    json_object_set_new(segs, "compressed_bytes", json_integer((json_int_t)s->compressed_bytes));
    json_object_set_new(segs, "compressed_raw_bytes",
                        json_integer((json_int_t)s->compressed_raw_bytes));
    json_object_set_new(segs, "disk_bytes", json_integer((json_int_t)s->disk_bytes));
    json_object_set_new(segs, "compression_ratio",
                        s->compressed ? json_real(ratio_of(s)) : json_null());
    for (uint16_t t = 1; t <= REEL_EV_MAX; t++) {
        if (st->by_type[t] != 0)
            json_object_set_new(types, reel_event_type_name(t),
                                json_integer((json_int_t)st->by_type[t]));
    }
    kc_t *v = map_sorted(&st->days, by_key, &n);
    for (size_t i = 0; i < n; i++) {
        char day[32];
        tool_day_name(v[i].key - 1, day, sizeof(day));
        json_object_set_new(days, day, json_integer((json_int_t)v[i].count));
    }
    free(v);
    v = map_sorted(&st->users, by_count_desc, &n);
    for (size_t i = 0; i < n && i < STAT_TOP_USERS; i++)
        json_array_append_new(users, json_pack("{s:I,s:I}", "user_id", (json_int_t)v[i].key,
                                               "events", (json_int_t)v[i].count));
    free(v);
    json_object_set_new(root, "segments", segs);
    json_object_set_new(root, "events", json_integer((json_int_t)st->total));
    json_object_set_new(root, "other_records", json_integer((json_int_t)st->other));
    json_object_set_new(root, "first_at", json_integer((json_int_t)st->first_at));
    json_object_set_new(root, "last_at", json_integer((json_int_t)st->last_at));
    json_object_set_new(root, "by_type", types);
    json_object_set_new(root, "by_day", days);
    json_object_set_new(root, "users", json_integer((json_int_t)st->users.n));
    json_object_set_new(root, "top_users", users);
    return root;
}

/* The text report: the JSON's content, one fact a line. */
static void stat_text(json_t *root)
{
    json_t *segs = json_object_get(root, "segments"), *v;
    const char *k;
    size_t i;
    printf("segments      %" JSON_INTEGER_FORMAT " (%" JSON_INTEGER_FORMAT " plain, %"
           JSON_INTEGER_FORMAT " compressed)\n",
           json_integer_value(json_object_get(segs, "count")),
           json_integer_value(json_object_get(segs, "plain")),
           json_integer_value(json_object_get(segs, "compressed")));
    printf("bytes         %" JSON_INTEGER_FORMAT " plain, %" JSON_INTEGER_FORMAT
           " compressed, %" JSON_INTEGER_FORMAT " on disk\n",
           json_integer_value(json_object_get(segs, "plain_bytes")),
           json_integer_value(json_object_get(segs, "compressed_bytes")),
           json_integer_value(json_object_get(segs, "disk_bytes")));
    v = json_object_get(segs, "compression_ratio");
    if (json_is_real(v))
        printf("compression   %.2fx (records %" JSON_INTEGER_FORMAT " bytes before)\n",
               json_real_value(v), json_integer_value(json_object_get(segs, "compressed_raw_bytes")));
    printf("events        %" JSON_INTEGER_FORMAT "\n",
           json_integer_value(json_object_get(root, "events")));
    printf("\nby type\n");
    json_object_foreach(json_object_get(root, "by_type"), k, v)
        printf("  %-24s %" JSON_INTEGER_FORMAT "\n", k, json_integer_value(v));
    printf("\nby day (UTC)\n");
    json_object_foreach(json_object_get(root, "by_day"), k, v)
        printf("  %-24s %" JSON_INTEGER_FORMAT "\n", k, json_integer_value(v));
    printf("\nbusiest users (of %" JSON_INTEGER_FORMAT ")\n",
           json_integer_value(json_object_get(root, "users")));
    json_array_foreach(json_object_get(root, "top_users"), i, v)
        printf("  user %-19" JSON_INTEGER_FORMAT " %" JSON_INTEGER_FORMAT " events\n",
               json_integer_value(json_object_get(v, "user_id")),
               json_integer_value(json_object_get(v, "events")));
}

int reel_cmd_stat(int argc, char **argv)
{
    stat_opts_t o;
    stat_segments_t segs = {0};
    stat_events_t *st = calloc(1, sizeof(*st));
    int rc = stat_parse(argc, argv, &o);
    if (rc != 0 || st == NULL) {
        free(st);
        return rc > 0 ? 0 : 2;
    }
    rc = stat_events(o.data, st);
    if (rc == 0)
        rc = stat_segment_files(o.data, &segs);
    if (rc == -ENOMEM)
        fprintf(stderr, "reel stat: out of memory\n");
    if (rc == 0) {
        json_t *root = stat_json(&segs, st);
        if (o.json) {
            json_dumpf(root, stdout, JSON_COMPACT);
            fputs("\n", stdout);
        } else {
            stat_text(root);
        }
        json_decref(root);
    }
    map_free(&st->days);
    map_free(&st->users);
    free(st);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "reel stat: writing the output failed\n");
        return 2;
    }
    return rc == 0 ? 0 : 2;
}
