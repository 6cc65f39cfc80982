/*
 * cmd_import.c: `reel import`, a data set replayed into a data directory
 * through the engine, with its own times (trust_client_time).
 *
 * Steps: read and check the whole input into a plan (import_read.h: a bad
 * line adds nothing to it); open the engine; check that the plan can run
 * as planned (no handle of it taken, its first time not before the log's
 * newest event), so that the engine has no reason to refuse any command;
 * then submit the plan's commands in order, asynchronously, up to
 * IMPORT_WINDOW in flight; print a summary.
 *
 * Why asynchronous: the engine answers a command once its batch is durable
 * (one group commit and one views commit per batch of up to 4096
 * commands), so one command at a time would pay two syncs each. With two
 * batches' worth in flight the writer always finds the next batch queued.
 *
 * Ids are predicted (import_read.h, "Ids") so that a like can be submitted
 * before the post's creation is answered; every creation's answer is
 * checked against the prediction. A refused command (which the checks
 * above make a bug or a storage failure) stops the import: nothing more
 * is submitted, what was in flight is answered, and the exit status is 2.
 */
#include "tools/cmds.h"
#include "tools/tool_util.h"
#include "engine/common.h"
#include "engine/datadir.h"
#include "engine/reel.h"
#include "tools/import_read.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Commands in flight: two of the engine's largest batches (engine_int.h:
 * 4096), so one is judged while the next waits queued. ~1.5 KiB each. */
#define IMPORT_WINDOW 8192u

typedef struct import_opts {
    const char *data;       /* --data */
    const char *movielens;  /* --movielens DIR */
    const char *collegemsg; /* --collegemsg FILE */
    const char *ndjson;     /* --ndjson FILE */
    bool strict;            /* --strict */
} import_opts_t;

/* The window of commands in flight, shared by the submitter and the
 * engine's callbacks: at most a bound unanswered, and a stop flag a
 * refusal sets. */
typedef struct import_window {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t answered;       /* commands answered */
    bool waiting;            /* the submitter waits for an answer */
    bool stop;               /* a refusal: submit nothing more */
} import_window_t;

static void window_init(import_window_t *w)
{
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->answered = 0;
    w->waiting = w->stop = false;
}

static void window_destroy(import_window_t *w)
{
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
}

/* One more answer (w->mu held): wakes the submitter when it waits. */
static void window_answered(import_window_t *w)
{
    w->answered++;
    if (w->waiting)
        pthread_cond_signal(&w->cv);
}

/* Waits until fewer than `bound` commands are unanswered; returns
 * whether to go on (no refusal). */
static bool window_wait(import_window_t *w, uint64_t submitted, uint64_t bound)
{
    pthread_mutex_lock(&w->mu);
    while (submitted - w->answered > bound) {
        w->waiting = true;
        pthread_cond_wait(&w->cv, &w->mu);
        w->waiting = false;
    }
    bool go = !w->stop;
    pthread_mutex_unlock(&w->mu);
    return go;
}

/* The submission pipeline; w.mu also guards rejected and first_error. */
typedef struct pipeline {
    reel_engine_t *e;
    const reel_import_plan_t *plan;
    reel_cmd_req_t *slots;   /* IMPORT_WINDOW requests, reused in turn */
    uint64_t *slot_op;       /* the plan op each slot holds */
    uint64_t user_base;      /* largest user id before the import */
    uint64_t post_base;      /* largest post id before the import */
    import_window_t w;       /* commands in flight */
    uint64_t rejected;       /* answers with status >= 400, or a wrong id */
    char first_error[512];   /* the first of them, for the report */
} pipeline_t;

static void import_usage(FILE *f)
{
    fprintf(f,
            "usage: reel import [--data DIR] (--movielens ML100K_DIR | --collegemsg FILE |\n"
            "                   --ndjson FILE) [--strict]\n"
            "\n"
            "Replays a data set into DIR through the engine, with the data set's own\n"
            "times (unix seconds * 1000), in time order (ties in file order). The\n"
            "mapping is ../shared/data/README.md's:\n"
            "  --movielens DIR   MovieLens 100K (DIR/u.genre, u.item, u.data): user N is\n"
            "                    user ml_uN; movie N a post by its own creator ml_mN,\n"
            "                    prompt its title, tags its genres, at its first rating;\n"
            "                    every rating a completed view, a rating of 4 or 5 a like\n"
            "  --collegemsg FILE CollegeMsg (src dst time): users cm_uN at their first\n"
            "                    message; a message A -> B is A following B\n"
            "  --ndjson FILE     API commands with their times, one a line (the /v1/batch\n"
            "                    line plus \"at\"): {\"op\":\"PUT /v1/users/1/following/2\",\n"
            "                    \"body\":{...},\"at\":MS,\"idempotency_key\":\"k\"}; ids are\n"
            "                    the data directory's own (docs/EXPORTS.md, \"Imports\")\n"
            "  --data DIR        the data directory (default ./data); the import may\n"
            "                    follow earlier data, but not precede it in time\n"
            "  --strict          all or nothing: a bad line, or with --ndjson a line the\n"
            "                    engine refuses, imports nothing (default: it is reported\n"
            "                    with its line number and skipped)\n"
            "\n"
            "A bad line is never half-applied: every line is checked before the first\n"
            "command is submitted, and a bad one submits nothing. Each --ndjson line is\n"
            "one command: all its events (one atomic log group) or none. A line the\n"
            "engine refuses (404 unknown user, 409 handle taken...) appends nothing and\n"
            "is reported with its line number. With --strict the --ndjson import first\n"
            "runs as a trial on a scratch copy of DIR beside it (DIR.strict-PID; it needs\n"
            "that much free space): a refusal there discards the copy and DIR is left as\n"
            "it was; a clean trial into a new or empty DIR becomes DIR, into a DIR with\n"
            "data it is run again on DIR itself.\n"
            "\n"
            "exit status: 0 imported (bad or refused lines, if any, skipped and reported);\n"
            "1 --strict and a bad or refused line (nothing imported); 2 bad usage,\n"
            "unreadable input, or the engine refused or failed (the summary says how\n"
            "far it got)\n");
}

static int parse_opts(int argc, char **argv, import_opts_t *o)
{
    *o = (import_opts_t){REEL_DATA_DIR_DEFAULT, NULL, NULL, NULL, false};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (strcmp(a, "--data") == 0 && has_value) {
            o->data = argv[++i];
        } else if (strcmp(a, "--movielens") == 0 && has_value) {
            o->movielens = argv[++i];
        } else if (strcmp(a, "--collegemsg") == 0 && has_value) {
            o->collegemsg = argv[++i];
        } else if (strcmp(a, "--ndjson") == 0 && has_value) {
            o->ndjson = argv[++i];
        } else if (strcmp(a, "--strict") == 0) {
            o->strict = true;
        } else {
            fprintf(stderr, "reel import: unknown or incomplete argument '%s' (see --help)\n", a);
            return REEL_EUSAGE;
        }
    }
    if ((o->movielens != NULL) + (o->collegemsg != NULL) + (o->ndjson != NULL) != 1) {
        fprintf(stderr, "reel import: give one of --movielens DIR, --collegemsg FILE or "
                        "--ndjson FILE\n");
        return REEL_EUSAGE;
    }
    return 0;
}

/* ---- checks before the first command ---- */

/* Whether the plan can run as planned on e: its handles free, its times
 * not before the log's newest event. Sets the id bases. Prints why not. */
static int preflight(pipeline_t *p)
{
    const reel_import_plan_t *plan = p->plan;
    uint64_t newest = reel_log_last_time_ms(reel_engine_log(p->e));
    if (plan->nops > 0 && plan->first_at_ms < newest) {
        fprintf(stderr,
                "reel import: the data directory's newest event (%" PRIu64 " ms) is later "
                "than this data set's first (%" PRIu64 " ms): time never goes back; import "
                "into a new directory, or data sets in time order\n",
                newest, plan->first_at_ms);
        return REEL_EUSAGE;
    }
    reel_views_txn_t *t;
    reel_user_view_t u;
    int rc = reel_engine_read_begin(p->e, &t);
    if (rc == 0)
        rc = reel_views_last_id(t, REEL_VIEWS_ID_USER, &p->user_base);
    if (rc == 0)
        rc = reel_views_last_id(t, REEL_VIEWS_ID_POST, &p->post_base);
    for (uint32_t i = 1; rc == 0 && i <= plan->nusers; i++) {
        rc = reel_views_user_by_handle(t, plan->handles[i], strlen(plan->handles[i]), &u);
        if (rc == 0) {
            fprintf(stderr, "reel import: handle %s is taken in the data directory "
                            "(is this data set imported already?)\n", plan->handles[i]);
            rc = REEL_EUSAGE;
        } else if (rc == REEL_ENOTFOUND) {
            rc = 0;
        }
    }
    reel_views_read_end(t); /* never held while the writer may grow the map */
    if (rc != 0 && rc != REEL_EUSAGE)
        fprintf(stderr, "reel import: reading the views: %s\n", reel_strerror(rc));
    return rc;
}

/* ---- the pipeline ---- */

/* The command of plan op i into c. Strings point into the plan, which
 * outlives every answer. */
static void build_cmd(const pipeline_t *p, const reel_import_op_t *op, reel_cmd_t *c)
{
    const reel_import_plan_t *plan = p->plan;
    memset(c, 0, sizeof(*c));
    c->kind = (reel_cmd_kind_t)op->kind;
    c->at = op->at_ms;
    switch (c->kind) {
    case REEL_CMD_USER_CREATE: {
        const char *h = plan->handles[op->a];
        c->args.handle = (reel_str_t){h, (uint32_t)strlen(h)};
        break;
    }
    case REEL_CMD_POST_CREATE: {
        const reel_import_post_t *post = &plan->posts[op->b];
        c->args.user = p->user_base + op->a;
        c->args.prompt = (reel_str_t){post->prompt, post->prompt_len};
        c->args.video_uri = (reel_str_t){post->uri, (uint32_t)strlen(post->uri)};
        c->args.ntags = post->ntags;
        memcpy(c->args.tags, post->tags, post->ntags * sizeof(post->tags[0]));
        break;
    }
    case REEL_CMD_FOLLOW:
        c->args.user = p->user_base + op->a;
        c->args.target = p->user_base + op->b;
        break;
    case REEL_CMD_VIEW:
        c->args.user = p->user_base + op->a;
        c->args.post = p->post_base + op->b;
        c->args.watch_ms = REEL_IMPORT_WATCH_MS;
        c->args.completed = true;
        break;
    case REEL_CMD_LIKE:
        c->args.user = p->user_base + op->a;
        c->args.post = p->post_base + op->b;
        break;
    default:
        REEL_ASSERT(false); /* the readers plan only the kinds above */
    }
}

/* Runs on the engine's writer thread: short. Answers come in submission
 * order, so counting them is enough to free slots in turn. */
static void import_cb(reel_cmd_req_t *req)
{
    pipeline_t *p = req->data;
    const reel_cmd_result_t *res = &req->res;
    pthread_mutex_lock(&p->w.mu);
    const reel_import_op_t *op = &p->plan->ops[p->slot_op[req - p->slots]];
    uint64_t want = op->kind == REEL_CMD_USER_CREATE   ? p->user_base + op->a
                    : op->kind == REEL_CMD_POST_CREATE ? p->post_base + op->b
                                                       : 0;
    bool refused = res->status >= 400 || res->error != NULL;
    if (refused || (want != 0 && res->id != want)) {
        if (p->rejected++ == 0)
            snprintf(p->first_error, sizeof(p->first_error),
                     "%s:%" PRIu32 ": %s answered %d %s: %s (id %" PRIu64 ", expected %" PRIu64 ")",
                     p->plan->data_path, op->line, reel_cmd_route(req->cmd.kind), res->status,
                     res->error ? res->error : "", res->message, res->id, want);
        p->w.stop = true;
    }
    window_answered(&p->w);
    pthread_mutex_unlock(&p->w.mu);
}

/* Submits every op of the plan in order; returns 0, or the submit error. */
static int run_plan(pipeline_t *p)
{
    tool_progress_t prog;
    uint64_t i;
    int rc = 0;
    tool_progress_start(&prog, "commands", p->plan->nops);
    for (i = 0; i < p->plan->nops && rc == 0; i++) {
        if (!window_wait(&p->w, i, IMPORT_WINDOW - 1))
            break;
        uint32_t slot = (uint32_t)(i % IMPORT_WINDOW);
        reel_cmd_req_t *req = &p->slots[slot];
        p->slot_op[slot] = i;
        build_cmd(p, &p->plan->ops[i], &req->cmd);
        req->cb = import_cb;
        req->data = p;
        while ((rc = reel_engine_submit(p->e, req)) == REEL_EFULL)
            sched_yield(); /* only if someone else fills the engine's queue */
        tool_progress(&prog, i);
    }
    if (rc != 0)
        i--; /* not submitted */
    window_wait(&p->w, i, 0);
    tool_progress_end(&prog, i);
    if (rc != 0)
        fprintf(stderr, "reel import: submitting: %s\n", reel_strerror(rc));
    return rc;
}

/* ---- the command ---- */

static int read_plan(const import_opts_t *o, reel_import_plan_t *plan)
{
    if (o->movielens != NULL)
        return reel_import_read_movielens(o->movielens, o->strict, stderr, plan);
    return reel_import_read_collegemsg(o->collegemsg, o->strict, stderr, plan);
}

static void summary(const pipeline_t *p, uint64_t read_ns, uint64_t events, uint64_t ns)
{
    const reel_import_plan_t *plan = p->plan;
    double secs = (double)ns / 1e9;
    printf("reel import: %s: %" PRIu64 " lines read, %" PRIu64 " bad (skipped)", plan->source,
           plan->lines, plan->bad);
    if (plan->skipped > 0)
        printf(", %" PRIu64 " self-messages (skipped)", plan->skipped);
    printf("; %" PRIu32 " users and %" PRIu32 " posts to create (read and sorted in %.2f s)\n",
           plan->nusers, plan->nposts, (double)read_ns / 1e9);
    printf("reel import: %" PRIu64 " of %" PRIu64 " commands answered (%" PRIu64
           " rejected), %" PRIu64 " events appended in %.2f s: %.0f events/s, %.0f commands/s\n",
           p->w.answered, plan->nops, p->rejected, events, secs, secs > 0 ? (double)events / secs : 0.0,
           secs > 0 ? (double)p->w.answered / secs : 0.0);
}

/* Opens the engine, checks, runs the plan, closes: the exit status. */
static int import_plan(const import_opts_t *o, const reel_import_plan_t *plan, uint64_t read_ns)
{
    reel_engine_options_t eo = {.trust_client_time = true, .invite_only = false};
    pipeline_t p = {.plan = plan};
    char err[512];
    int rc = reel_engine_open(o->data, &eo, &p.e, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "reel import: %s\n", err[0] ? err : reel_strerror(rc));
        return 2;
    }
    window_init(&p.w);
    p.slots = calloc(IMPORT_WINDOW, sizeof(*p.slots));
    p.slot_op = calloc(IMPORT_WINDOW, sizeof(*p.slot_op));
    rc = p.slots && p.slot_op ? preflight(&p) : -ENOMEM;
    uint64_t end0 = reel_log_end(reel_engine_log(p.e)), t0 = reel_mono_ns();
    if (rc == 0)
        rc = run_plan(&p);
    uint64_t events = reel_log_end(reel_engine_log(p.e)) - end0, ns = reel_mono_ns() - t0;
    int rc_close = reel_engine_close(p.e);
    if (rc_close != 0)
        fprintf(stderr, "reel import: closing the engine: %s\n", reel_strerror(rc_close));
    if (rc == 0 || p.w.answered > 0)
        summary(&p, read_ns, events, ns);
    if (p.rejected > 0)
        fprintf(stderr, "reel import: stopped at the first refusal: %s\n", p.first_error);
    if (rc == -ENOMEM)
        fprintf(stderr, "reel import: %s\n", reel_strerror(rc));
    free(p.slots);
    free(p.slot_op);
    window_destroy(&p.w);
    return rc == 0 && rc_close == 0 && p.rejected == 0 ? 0 : 2;
}

/* ---- --ndjson: API commands ---- */

/* The NDJSON submission: answers come in submission order. w.mu guards
 * the counters below it. */
typedef struct nd_pipe {
    reel_engine_t *e;
    reel_import_cmds_t *cmds;
    reel_cmd_req_t *slots;  /* IMPORT_WINDOW requests, reused in turn */
    uint64_t *slot_cmd;     /* the command each slot holds */
    bool strict;
    import_window_t w;      /* commands in flight */
    uint64_t applied;       /* answers below 400 */
    uint64_t refused;
    uint32_t last_line;     /* the last line applied */
} nd_pipe_t;

static void nd_cb(reel_cmd_req_t *req)
{
    nd_pipe_t *p = req->data;
    const reel_cmd_result_t *res = &req->res;
    pthread_mutex_lock(&p->w.mu);
    const reel_import_cmd_t *ic = &p->cmds->cmds[p->slot_cmd[req - p->slots]];
    if (res->status >= 400) {
        if (p->refused++ < REEL_IMPORT_BAD_SHOWN || p->strict)
            fprintf(stderr, "reel import: %s:%" PRIu32 ": refused: %s answered %d %s%s%s: %s\n",
                    p->cmds->path, ic->line, reel_cmd_route(req->cmd.kind), res->status,
                    res->error ? res->error : "", res->field[0] ? " field " : "", res->field,
                    res->message);
        if (p->strict)
            p->w.stop = true;
    } else {
        p->applied++;
        p->last_line = ic->line > p->last_line ? ic->line : p->last_line;
    }
    window_answered(&p->w);
    pthread_mutex_unlock(&p->w.mu);
}

static int nd_submit_all(nd_pipe_t *p)
{
    tool_progress_t prog;
    uint64_t i;
    int rc = 0;
    tool_progress_start(&prog, "commands", p->cmds->n);
    for (i = 0; i < p->cmds->n && rc == 0; i++) {
        if (!window_wait(&p->w, i, IMPORT_WINDOW - 1))
            break;
        uint32_t slot = (uint32_t)(i % IMPORT_WINDOW);
        reel_cmd_req_t *req = &p->slots[slot];
        memset(req, 0, sizeof(*req));
        p->slot_cmd[slot] = i;
        req->cmd = p->cmds->cmds[i].cmd;
        req->cb = nd_cb;
        req->data = p;
        while ((rc = reel_engine_submit(p->e, req)) == REEL_EFULL)
            sched_yield();
        tool_progress(&prog, i);
    }
    if (rc != 0)
        i--;
    window_wait(&p->w, i, 0);
    tool_progress_end(&prog, i);
    if (rc != 0)
        fprintf(stderr, "reel import: submitting: %s\n", reel_strerror(rc));
    return rc;
}

/* Opens the engine (client times trusted), checks the first time against
 * the log, submits every good line in order, closes. */
static int nd_run(const char *data, bool strict, bool summary, reel_import_cmds_t *cmds)
{
    reel_engine_options_t eo = {.trust_client_time = true};
    nd_pipe_t p = {.cmds = cmds, .strict = strict};
    char err[512] = "";
    int rc = reel_engine_open(data, &eo, &p.e, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "reel import: %s\n", err[0] ? err : reel_strerror(rc));
        return 2;
    }
    uint64_t newest = reel_log_last_time_ms(reel_engine_log(p.e));
    window_init(&p.w);
    p.slots = calloc(IMPORT_WINDOW, sizeof(*p.slots));
    p.slot_cmd = calloc(IMPORT_WINDOW, sizeof(*p.slot_cmd));
    uint64_t end0 = reel_log_end(reel_engine_log(p.e)), t0 = reel_mono_ns();
    if (p.slots == NULL || p.slot_cmd == NULL) {
        rc = -ENOMEM;
        fprintf(stderr, "reel import: %s\n", reel_strerror(rc));
    } else if (cmds->n > 0 && cmds->first_at_ms < newest) {
        fprintf(stderr, "reel import: the data directory's newest event (%" PRIu64 " ms) is "
                        "later than the first line's at (%" PRIu64 " ms): time never goes "
                        "back; nothing imported\n", newest, cmds->first_at_ms);
        rc = REEL_EUSAGE;
    } else {
        rc = nd_submit_all(&p);
    }
    uint64_t events = reel_log_end(reel_engine_log(p.e)) - end0, ns = reel_mono_ns() - t0;
    int rc_close = reel_engine_close(p.e);
    if (rc_close != 0)
        fprintf(stderr, "reel import: closing the engine: %s\n", reel_strerror(rc_close));
    double secs = (double)ns / 1e9;
    if (summary)
        printf("reel import: %s: %" PRIu64 " lines read, %" PRIu64 " bad (skipped); %" PRIu64
               " commands applied, %" PRIu64 " refused, %" PRIu64 " not submitted; %" PRIu64
               " events appended in %.2f s (%.0f commands/s)\n",
               cmds->path, cmds->lines, cmds->bad, p.applied, p.refused,
               cmds->n - p.w.answered, events, secs, secs > 0 ? (double)p.w.answered / secs : 0.0);
    free(p.slots);
    free(p.slot_cmd);
    window_destroy(&p.w);
    if (rc != 0 || rc_close != 0)
        return 2;
    return p.w.stop ? 1 : 0;
}

/* ---- --strict: all or nothing ----
 *
 * A line the engine refuses (an unknown id, a handle taken) cannot be
 * known before it is judged, and commands are judged in batches with many
 * in flight, so lines after a refused one may already be applied when its
 * answer comes. --strict therefore runs the whole import first as a
 * trial, on a scratch copy of the data directory beside it (DIR.strict-
 * PID: log and views copied under the writer lock, so no reeld writes
 * meanwhile). A refusal there discards the copy: nothing was imported.
 * A clean trial into a new or empty DIR is the import: the copy is renamed
 * into place. Into a DIR with data, the copy is discarded and the same
 * commands are run on DIR itself, which judges them as the trial did (the
 * same state, the same commands and times). */

/* Copies the regular file from into to (new); 0 or -errno. */
static int copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY | O_CLOEXEC), out = -1, rc = 0;
    struct stat st;
    if (in < 0 || fstat(in, &st) != 0)
        rc = -errno;
    if (rc == 0 && (out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0)
        rc = -errno;
    for (off_t left = rc == 0 ? st.st_size : 0; left > 0;) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
        if (n <= 0) {
            rc = n < 0 ? -errno : -EIO;
            break;
        }
        left -= n;
    }
    if (out >= 0 && close(out) != 0 && rc == 0)
        rc = -errno;
    if (in >= 0)
        close(in);
    return rc;
}

/* Copies DIR/sub's segment files (sub "log") or data.mdb (sub "views")
 * into stage/sub; a missing DIR/sub copies nothing. 0 or -errno. */
static int copy_sub(const char *dir, const char *stage, const char *sub)
{
    char from[PATH_MAX], to[PATH_MAX], f[PATH_MAX * 2], t[PATH_MAX * 2];
    snprintf(from, sizeof(from), "%s/%s", dir, sub);
    snprintf(to, sizeof(to), "%s/%s", stage, sub);
    DIR *d = opendir(from);
    if (d == NULL)
        return errno == ENOENT ? 0 : -errno;
    int rc = mkdir(to, 0755) == 0 ? 0 : -errno;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        bool seg = (n > 4 && strcmp(e->d_name + n - 4, ".seg") == 0 &&
                    strncmp(e->d_name, "spare", 5) != 0) ||
                   (n > 5 && strcmp(e->d_name + n - 5, ".zseg") == 0);
        if (strcmp(sub, "log") == 0 ? !seg : strcmp(e->d_name, "data.mdb") != 0)
            continue; /* LOCK, lock.mdb, *.tmp: made again at open */
        snprintf(f, sizeof(f), "%s/%s", from, e->d_name);
        snprintf(t, sizeof(t), "%s/%s", to, e->d_name);
        rc = copy_file(f, t);
    }
    closedir(d);
    return rc;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* rm -rf of the scratch copy (made by this run). */
static void stage_remove(const char *stage)
{
    (void)nftw(stage, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Whether dir is absent or an empty directory (*fresh); -errno when it
 * cannot be read or is not a directory. */
static int data_fresh(const char *dir, bool *fresh)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    *fresh = true;
    if (d == NULL)
        return errno == ENOENT ? 0 : -errno;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            *fresh = false;
    closedir(d);
    return 0;
}

/* The scratch copy of dir (a new directory beside it). Prints why not. */
static int stage_make(const char *dir, bool fresh, const char *stage)
{
    if (mkdir(stage, 0755) != 0) {
        fprintf(stderr, "reel import: --strict: %s: %s\n", stage, strerror(errno));
        return 2;
    }
    if (fresh)
        return 0;
    int lock = reel_data_lock(dir), rc = 0;
    if (lock < 0) {
        fprintf(stderr, "reel import: %s: %s\n", dir,
                lock == REEL_ELOCKED ? "the log is in use by a writer (stop reeld first)"
                                     : reel_strerror(lock));
        stage_remove(stage);
        return 2;
    }
    if ((rc = copy_sub(dir, stage, REEL_DATA_LOG_SUBDIR)) == 0)
        rc = copy_sub(dir, stage, REEL_DATA_VIEWS_SUBDIR);
    reel_data_unlock(lock);
    if (rc != 0) {
        fprintf(stderr, "reel import: --strict: copying %s for the trial: %s\n", dir,
                reel_strerror(rc));
        stage_remove(stage);
        return 2;
    }
    return 0;
}

/* Renames the trial's directory to dir (absent or empty) and syncs the
 * parent, so the import is there whole or not at all. */
static int stage_install(const char *stage, const char *dir)
{
    char parent[PATH_MAX];
    snprintf(parent, sizeof(parent), "%s", dir);
    char *slash = strrchr(parent, '/');
    if (slash == NULL)
        snprintf(parent, sizeof(parent), ".");
    else
        slash[slash == parent ? 1 : 0] = '\0';
    if ((rmdir(dir) != 0 && errno != ENOENT) || rename(stage, dir) != 0) {
        fprintf(stderr, "reel import: --strict: moving %s to %s: %s (the import is in %s)\n",
                stage, dir, strerror(errno), stage);
        return 2;
    }
    int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    return 0;
}

static int nd_strict(const import_opts_t *o, reel_import_cmds_t *cmds)
{
    char dir[PATH_MAX], stage[PATH_MAX + 32];
    bool fresh;
    snprintf(dir, sizeof(dir), "%s", o->data);
    for (size_t n = strlen(dir); n > 1 && dir[n - 1] == '/'; n--)
        dir[n - 1] = '\0';
    snprintf(stage, sizeof(stage), "%s.strict-%ld", dir, (long)getpid());
    int rc = data_fresh(dir, &fresh);
    if (rc != 0) {
        fprintf(stderr, "reel import: %s: %s\n", dir, reel_strerror(rc));
        return 2;
    }
    if ((rc = stage_make(dir, fresh, stage)) != 0)
        return rc;
    int status = nd_run(stage, true, fresh, cmds);
    if (status != 0) {
        stage_remove(stage);
        if (status == 1)
            fprintf(stderr, "reel import: --strict: a refused line; nothing imported\n");
        return status;
    }
    if (fresh)
        return stage_install(stage, dir);
    stage_remove(stage);
    fprintf(stderr, "reel import: --strict: the trial on a copy of %s applied every line; "
                    "importing\n", dir);
    status = nd_run(dir, true, true, cmds);
    if (status == 1)
        fprintf(stderr, "reel import: --strict: a line the trial applied was refused: %s "
                        "changed after the trial (a writer between the two runs)\n", dir);
    return status;
}

static int import_ndjson(const import_opts_t *o)
{
    reel_import_cmds_t cmds;
    int rc = reel_import_read_ndjson(o->ndjson, o->strict, stderr, &cmds);
    if (rc == REEL_EUSAGE) {
        fprintf(stderr, "reel import: --strict: a bad line; nothing imported\n");
        return 1;
    }
    if (rc != 0)
        return 2;
    int status = o->strict ? nd_strict(o, &cmds) : nd_run(o->data, false, true, &cmds);
    reel_import_cmds_free(&cmds);
    return status;
}

int reel_cmd_import(int argc, char **argv)
{
    import_opts_t o;
    reel_import_plan_t plan;
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        import_usage(stdout);
        return 0;
    }
    if (parse_opts(argc, argv, &o) != 0)
        return 2;
    if (o.ndjson != NULL)
        return import_ndjson(&o);
    uint64_t t0 = reel_mono_ns();
    int rc = read_plan(&o, &plan);
    if (rc == REEL_EUSAGE)
        return 1; /* --strict and a bad line: reported, nothing written */
    if (rc != 0) {
        if (rc == -ENOMEM)
            fprintf(stderr, "reel import: %s\n", reel_strerror(rc));
        return 2;
    }
    int status = import_plan(&o, &plan, reel_mono_ns() - t0);
    reel_import_plan_free(&plan);
    return status;
}
