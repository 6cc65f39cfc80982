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

#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
            "  --strict          a bad line stops the import before anything is written\n"
            "                    (default: it is reported with its line number and skipped)\n"
            "\n"
            "A bad line is never half-applied: every line is checked before the first\n"
            "command is submitted, and a bad one submits nothing. Each --ndjson line is\n"
            "one command: all its events (one atomic log group) or none. A line the\n"
            "engine refuses (404 unknown user, 409 handle taken...) appends nothing and\n"
            "is reported with its line number; --strict then submits nothing more (lines\n"
            "already in flight behind it are still answered and reported).\n"
            "\n"
            "exit status: 0 imported (bad or refused lines, if any, skipped and reported);\n"
            "1 --strict and a bad line (nothing written) or a refused one (what came\n"
            "before it is applied); 2 bad usage, unreadable input, or the\n"
            "engine refused or failed (the summary says how far it got)\n");
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
static int nd_run(const import_opts_t *o, reel_import_cmds_t *cmds)
{
    reel_engine_options_t eo = {.trust_client_time = true};
    nd_pipe_t p = {.cmds = cmds, .strict = o->strict};
    char err[512] = "";
    int rc = reel_engine_open(o->data, &eo, &p.e, err, sizeof(err));
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
    printf("reel import: %s: %" PRIu64 " lines read, %" PRIu64 " bad (skipped); %" PRIu64
           " commands applied, %" PRIu64 " refused, %" PRIu64 " not submitted; %" PRIu64
           " events appended in %.2f s (%.0f commands/s)\n",
           cmds->path, cmds->lines, cmds->bad, p.applied, p.refused, cmds->n - p.w.answered,
           events, secs, secs > 0 ? (double)p.w.answered / secs : 0.0);
    if (p.w.stop)
        fprintf(stderr, "reel import: --strict: stopped at the first refused line; the last "
                        "line applied is %" PRIu32 "\n", p.last_line);
    free(p.slots);
    free(p.slot_cmd);
    window_destroy(&p.w);
    if (rc != 0 || rc_close != 0)
        return 2;
    return p.w.stop ? 1 : 0;
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
    int status = nd_run(o, &cmds);
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
