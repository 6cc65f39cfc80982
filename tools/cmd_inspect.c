/*
 * cmd_inspect.c: `reel inspect`, one entity's view record as JSON and,
 * with --history, every event of the log that touched it, in order: how a
 * wrong count gets explained.
 *
 * Read-only and safe beside a running reeld: the views are read through one
 * LMDB read snapshot (LMDB lets other processes read while reeld writes),
 * and the log through a read-only iterator. The views may lag the log by
 * the events reeld has made durable but not yet applied; the record says
 * which offset the views had applied ("applied").
 */
#include "tools/cmds.h"
#include "tools/tool_util.h"
#include "engine/common.h"
#include "engine/datadir.h"
#include "engine/views.h"

#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <sys/stat.h>

typedef enum inspect_kind { KIND_USER, KIND_POST, KIND_GENERATION } inspect_kind_t;

static const char *const kind_names[] = {"user", "post", "generation"};
static const char *const gen_status_names[] = {"queued", "running", "completed", "failed",
                                               "cancelled"};

typedef struct inspect_opts {
    const char *data;    /* --data */
    inspect_kind_t kind; /* user, post or generation */
    uint64_t id;
    bool history;        /* --history */
} inspect_opts_t;

static void inspect_usage(FILE *f)
{
    fprintf(f,
            "usage: reel inspect [--data DIR] user|post|generation ID [--history]\n"
            "       reel inspect DIR user|post|generation ID [--history]\n"
            "\n"
            "Prints the entity's record in the views of DIR as one JSON line: a user's\n"
            "profile and counts, a post's counts and body, or a generation. With\n"
            "--history, then every event of the log that touched it, in log order, one\n"
            "JSON line each (as reel dump --json): a user's when user_id, author,\n"
            "owner, target or grantee is it; a post's when post_id or remix_of is it;\n"
            "a generation's when generation_id is it. Opens the views and the log\n"
            "read-only: it may run beside reeld.\n"
            "\n"
            "  --data DIR   the data directory (default ./data)\n"
            "  --history    also every event that touched the entity\n"
            "\n"
            "exit status: 0 found; 1 not in the views (absent or deleted; with\n"
            "--history its events are printed all the same); 2 bad usage or error\n");
}

/* The kind and id positionals into o; prints why not. */
static int inspect_target(const char *kind, const char *id, inspect_opts_t *o)
{
    size_t k = 0;
    while (k < 3 && strcmp(kind, kind_names[k]) != 0)
        k++;
    if (k == 3) {
        fprintf(stderr, "reel inspect: '%s': expected user, post or generation\n", kind);
        return REEL_EUSAGE;
    }
    o->kind = (inspect_kind_t)k;
    if (tool_parse_u64(id, &o->id) != 0 || o->id == 0 || o->id > REEL_ID_MAX) {
        fprintf(stderr, "reel inspect: '%s' is not an id (1..%llu)\n", id,
                (unsigned long long)REEL_ID_MAX);
        return REEL_EUSAGE;
    }
    return 0;
}

/* Fills o from argv: [--data DIR] KIND ID, or DIR KIND ID (the issue's
 * form). Returns 0, 1 when --help was printed, or REEL_EUSAGE. */
static int inspect_parse(int argc, char **argv, inspect_opts_t *o)
{
    const char *pos[3];
    int positional = 0;
    bool have_data = false;
    *o = (inspect_opts_t){REEL_DATA_DIR_DEFAULT, KIND_USER, 0, false};
    for (int i = 1; i < argc; i++) {
        const char *dir = NULL;
        int rc;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            inspect_usage(stdout);
            return 1;
        } else if (strcmp(argv[i], "--history") == 0) {
            o->history = true;
        } else if ((rc = tool_opt_value(argc, argv, &i, "--data", &dir)) != 0) {
            if (rc < 0 || dir[0] == '\0') {
                fprintf(stderr, "reel inspect: --data needs a directory\n");
                return REEL_EUSAGE;
            }
            o->data = dir;
            have_data = true;
        } else if (argv[i][0] != '-' && argv[i][0] != '\0' && positional < 3) {
            pos[positional++] = argv[i];
        } else {
            fprintf(stderr, "reel inspect: unknown argument '%s' (see reel inspect --help)\n",
                    argv[i]);
            return REEL_EUSAGE;
        }
    }
    if (positional == 3 && !have_data) {
        o->data = pos[0];
        return inspect_target(pos[1], pos[2], o);
    }
    if (positional != 2) {
        fprintf(stderr, "reel inspect: needs a kind and an id: [--data DIR] or DIR, then "
                        "user|post|generation ID (see reel inspect --help)\n");
        return REEL_EUSAGE;
    }
    return inspect_target(pos[0], pos[1], o);
}

static json_t *json_strn(const char *s, size_t len)
{
    json_t *j = json_stringn(s, len);
    return j != NULL ? j : json_null(); /* never: the views hold UTF-8 */
}

static json_t *id_or_null(uint64_t id)
{
    return id != 0 ? json_integer((json_int_t)id) : json_null();
}

static json_t *ids_json(const uint64_t *ids, uint32_t n)
{
    json_t *a = json_array();
    for (uint32_t i = 0; i < n; i++)
        json_array_append_new(a, json_integer((json_int_t)ids[i]));
    return a;
}

static json_t *tags_json(const reel_str_t *tags, uint32_t n)
{
    json_t *a = json_array();
    for (uint32_t i = 0; i < n; i++)
        json_array_append_new(a, json_strn(tags[i].ptr, tags[i].len));
    return a;
}

static int user_json(reel_views_txn_t *t, uint64_t id, json_t *out)
{
    reel_user_view_t u;
    int rc = reel_views_get_user(t, id, &u);
    if (rc != 0)
        return rc;
    json_object_set_new(out, "id", json_integer((json_int_t)u.id));
    json_object_set_new(out, "handle", json_strn(u.handle, u.handle_len));
    json_object_set_new(out, "display_name", json_strn(u.display_name, u.display_name_len));
    json_object_set_new(out, "created_at", json_integer((json_int_t)u.created_at));
    json_object_set_new(out, "counts",
                        json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "followers",
                                  (json_int_t)u.followers, "following", (json_int_t)u.following,
                                  "posts", (json_int_t)u.posts, "likes_received",
                                  (json_int_t)u.likes_received, "friends", (json_int_t)u.friends,
                                  "invites", (json_int_t)u.invites, "remixes_received",
                                  (json_int_t)u.remixes_received, "cameo_uses",
                                  (json_int_t)u.cameo_uses));
    return 0;
}

static void post_body_json(reel_views_txn_t *t, uint64_t id, json_t *out)
{
    reel_post_body_t b;
    if (reel_views_get_post_body(t, id, &b) != 0) {
        json_object_set_new(out, "body", json_null());
        return;
    }
    json_t *body = json_object();
    json_object_set_new(body, "video_uri", json_strn(b.video_uri, b.video_uri_len));
    json_object_set_new(body, "prompt", json_strn(b.prompt, b.prompt_len));
    json_object_set_new(body, "tags", tags_json(b.tags, b.ntags));
    json_object_set_new(body, "cameos", ids_json(b.cameos, b.ncameos));
    json_object_set_new(body, "dim", json_integer((json_int_t)b.dim));
    json_object_set_new(out, "body", body);
}

static int post_json(reel_views_txn_t *t, uint64_t id, json_t *out)
{
    reel_post_view_t p;
    int rc = reel_views_get_post(t, id, &p);
    if (rc != 0)
        return rc;
    json_object_set_new(out, "id", json_integer((json_int_t)p.id));
    json_object_set_new(out, "author", json_integer((json_int_t)p.author));
    json_object_set_new(out, "created_at", json_integer((json_int_t)p.created_at));
    json_object_set_new(out, "remix_of", id_or_null(p.remix_of));
    json_object_set_new(out, "remix_root", id_or_null(p.remix_root));
    json_object_set_new(out, "public", json_boolean(p.public));
    json_object_set_new(out, "hidden", json_boolean(p.hidden));
    json_object_set_new(out, "hidden_reason",
                        p.hidden ? json_strn(p.hidden_reason, p.hidden_reason_len) : json_null());
    json_object_set_new(out, "counts",
                        json_pack("{s:I,s:I,s:I,s:I,s:I}", "likes", (json_int_t)p.likes,
                                  "comments", (json_int_t)p.comments, "remixes",
                                  (json_int_t)p.remixes, "views", (json_int_t)p.views,
                                  "watch_ms", (json_int_t)p.watch_ms));
    post_body_json(t, id, out);
    return 0;
}

static int generation_json(reel_views_txn_t *t, uint64_t id, json_t *out)
{
    reel_generation_view_t g;
    int rc = reel_views_get_generation(t, id, &g);
    if (rc != 0)
        return rc;
    json_object_set_new(out, "id", json_integer((json_int_t)g.id));
    json_object_set_new(out, "user_id", json_integer((json_int_t)g.user));
    json_object_set_new(out, "status", g.status <= REEL_GEN_CANCELLED
                                           ? json_string(gen_status_names[g.status])
                                           : json_integer(g.status));
    json_object_set_new(out, "created_at", json_integer((json_int_t)g.created_at));
    json_object_set_new(out, "attempts", json_integer((json_int_t)g.attempts));
    json_object_set_new(out, "lease_until", json_integer((json_int_t)g.lease_until));
    json_object_set_new(out, "post_id", id_or_null(g.post));
    json_object_set_new(out, "remix_of", id_or_null(g.remix_of));
    json_object_set_new(out, "worker", g.worker_len ? json_strn(g.worker, g.worker_len)
                                                    : json_null());
    json_object_set_new(out, "prompt", json_strn(g.prompt, g.prompt_len));
    json_object_set_new(out, "cameos", ids_json(g.cameos, g.ncameos));
    json_object_set_new(out, "tags", tags_json(g.tags, g.ntags));
    return 0;
}

/* Reads the record from the views of o->data and prints it. Returns 0,
 * REEL_ENOTFOUND, or another error (printed). */
static int inspect_record(const inspect_opts_t *o)
{
    char views_dir[PATH_MAX], mdb[PATH_MAX + 16];
    reel_views_t *v = NULL;
    reel_views_txn_t *t = NULL;
    struct stat st;
    int rc = reel_data_views_path(o->data, views_dir, sizeof(views_dir));
    snprintf(mdb, sizeof(mdb), "%s/data.mdb", views_dir);
    if (rc != 0 || stat(mdb, &st) != 0) { /* never create views that are not there */
        fprintf(stderr, "reel inspect: %s: no views (run reeld or `reel rebuild` first)\n",
                views_dir);
        return REEL_EUSAGE;
    }
    if ((rc = reel_views_open(views_dir, &v)) != 0 || (rc = reel_views_read_begin(v, &t)) != 0) {
        fprintf(stderr, "reel inspect: %s: %s\n", views_dir, reel_strerror(rc));
        reel_views_close(v);
        return rc;
    }
    json_t *rec = json_object();
    json_object_set_new(rec, "kind", json_string(kind_names[o->kind]));
    json_object_set_new(rec, "applied", json_integer((json_int_t)reel_views_applied(v)));
    rc = o->kind == KIND_USER   ? user_json(t, o->id, rec)
         : o->kind == KIND_POST ? post_json(t, o->id, rec)
                                : generation_json(t, o->id, rec);
    if (rc == 0) {
        json_dumpf(rec, stdout, JSON_COMPACT);
        fputs("\n", stdout);
    } else if (rc == REEL_ENOTFOUND) {
        fprintf(stderr, "reel inspect: %s %" PRIu64 ": not found (absent or deleted)\n",
                kind_names[o->kind], o->id);
    } else {
        fprintf(stderr, "reel inspect: reading %s %" PRIu64 ": %s\n", kind_names[o->kind], o->id,
                reel_strerror(rc));
    }
    json_decref(rec);
    reel_views_read_end(t);
    reel_views_close(v);
    return rc;
}

static bool touches(const inspect_opts_t *o, const reel_event_t *ev)
{
    switch (o->kind) {
    case KIND_USER:
        return ev->user == o->id || ev->target == o->id;
    case KIND_POST:
        return ev->post == o->id || ev->remix_of == o->id;
    case KIND_GENERATION:
        return ev->generation == o->id;
    }
    return false;
}

/* Prints every event of the log that touched the entity, in order. */
static int inspect_history(const inspect_opts_t *o)
{
    static char json[TOOL_EVENT_JSON_MAX];
    reel_log_t *log = NULL;
    reel_log_iter_t *it = NULL;
    reel_record_t rec;
    int rc = tool_log_open_ro("reel inspect", o->data, &log);
    if (rc != 0)
        return rc;
    uint64_t end = reel_log_end(log), next = 0;
    tool_progress_t prog; /* a whole-log scan; not drawn across rows on a terminal */
    tool_progress_start(&prog, "events", end);
    prog.on = prog.on && (isatty(1) == 0 || getenv("REEL_PROGRESS") != NULL);
    if (end > 0 && (rc = reel_log_iter_open(log, 0, &it)) != 0)
        fprintf(stderr, "reel inspect: %s: %s\n", o->data, reel_strerror(rc));
    for (; rc == 0 && next < end; next++) {
        reel_event_t ev;
        tool_progress(&prog, next);
        rc = reel_log_iter_next(it, &rec);
        if (rc == REEL_EEND)
            rc = REEL_ECORRUPT; /* the log said it holds `next`: it must */
        if (rc != 0) {
            fprintf(stderr, "reel inspect: reading offset %" PRIu64 ": %s\n", next,
                    reel_strerror(rc));
            break;
        }
        if (tool_event_decode(&rec, &ev) != 0 || !touches(o, &ev))
            continue;
        if (reel_event_to_json(&ev, json, sizeof(json)) >= 0)
            puts(json);
    }
    tool_progress_end(&prog, next);
    reel_log_iter_close(it);
    (void)reel_log_close(log);
    return rc;
}

int reel_cmd_inspect(int argc, char **argv)
{
    inspect_opts_t o;
    int rc = inspect_parse(argc, argv, &o);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    rc = inspect_record(&o);
    int status = rc == 0 ? 0 : rc == REEL_ENOTFOUND ? 1 : 2;
    if (status != 2 && o.history && inspect_history(&o) != 0)
        status = 2;
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "reel inspect: writing the output failed\n");
        return 2;
    }
    return status;
}
