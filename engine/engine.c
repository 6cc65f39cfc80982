/*
 * engine.c: the engine: opening a data directory, catching the views up
 * with the log, and the command writer (reel.h).
 *
 * The command writer, one batch at a time:
 *   1. take up to REEL_ENGINE_BATCH_MAX queued commands;
 *   2. open a views write session (views.h): reads inside it see every
 *      event produced so far in the batch;
 *   3. for each command: judge it (rules.c), apply its events to the
 *      session, encode them and submit them to the log as one group;
 *   4. wait until every group of the batch is durable;
 *   5. commit the session (views and applied offset in one LMDB txn);
 *   6. answer the commands in order.
 * Nothing is answered before 4 and 5, so an answered write is durable and
 * visible to every later read. If the log fails, the session is dropped
 * and the batch's writes answer 503: the log refuses writes from then on
 * (sticky) and, at the next open, the views catch up with whatever of the
 * batch did reach the disk.
 *
 * A refusal is not a failure: when the file system turns a write down
 * before any byte reached a file (no space, read-only: log.h 6., and the
 * same errors from the views' LMDB), the engine drops the session, folds
 * what of the batch is durable into the views and the on_apply consumer
 * (catch_up: the log holds after a refusal, so that is a prefix of the
 * batch), answers those commands as judged and the rest 503, and resumes
 * the log. Writes go on without a restart once the file system takes them;
 * until then each batch catches up first and, if that is refused too,
 * answers 503 without judging (a judgement needs views equal to the log).
 *
 * Chunked cascades (reel.h): when the rules say a command's events are a
 * chunk (out.more), the writer judges the same command again in the next
 * slot of the batch, or first in the next batch when this one is full,
 * before any other command. Only the slot of its last chunk is answered.
 *
 * Offsets and times: the writer is the log's only appender, so the events
 * of a batch get offsets views.applied, applied+1, ... before they are
 * written, and it stamps their time itself (the log keeps a given time);
 * both are checked against what the log reports.
 */
#include "engine/engine_int.h"
#include "engine/common.h"
#include "engine/datadir.h"
#include "engine/replay.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct inflight inflight_t;

struct reel_engine {
    reel_engine_options_t opts;
    reel_log_t *log;
    reel_views_t *views;
    pthread_mutex_t mu;
    pthread_cond_t cv;         /* the writer waits for commands */
    pthread_cond_t cv_done;    /* batch appends and sync runs complete */
    reel_cmd_req_t *q_head;
    reel_cmd_req_t *q_tail;
    uint32_t q_len;
    bool closing;
    pthread_t writer;
    bool writer_started;
    uint64_t clock_ms;         /* newest event time (writer) */
    uint32_t pending_appends;  /* of the batch in flight (mu) */
    int append_error;          /* first failed append of the batch (mu) */
    int failed;                /* sticky: writes answer 503 from then on (mu) */
    int refused;               /* the refusal of the last batch that wrote, or 0 (mu) */
    inflight_t *batch;         /* REEL_ENGINE_BATCH_MAX slots (writer) */
    reel_log_append_req_t **append_reqs; /* REEL_ENGINE_BATCH_MAX: a batch's groups (writer) */
    reel_event_t *arena;       /* REEL_ENGINE_ARENA_EVENTS events (writer) */
    reel_log_entry_t *entries; /* one log entry per arena event (writer) */
    reel_engine_stats_t stats; /* (mu) */
};

/* One command in flight in a batch: its events and their encoding. */
struct inflight {
    reel_engine_t *e;
    reel_cmd_req_t *req;
    bool continued;            /* a chunk whose command goes on in a later slot */
    bool judged;               /* judge() ran and returned 0: res is its answer */
    bool appended;             /* its events went to the log (and the session) */
    cmd_out_t out;
    uint8_t *payloads;
    reel_log_entry_t *entries; /* beside out.evs in the batch's arenas */
    reel_log_append_req_t append;
};

static const char *const routes[REEL_CMD_COUNT] = {
#define REEL__CMD_ROUTE(name, route) [REEL_CMD_##name] = route,
    REEL_CMD_MAP(REEL__CMD_ROUTE)
#undef REEL__CMD_ROUTE
};

const char *reel_cmd_route(reel_cmd_kind_t kind)
{
    return kind > REEL_CMD_NONE && kind < REEL_CMD_COUNT ? routes[kind] : NULL;
}

void reel__res_error(reel_cmd_result_t *res, int status, const char *code, const char *field,
                     const char *fmt, ...)
{
    va_list ap;
    res->status = status;
    res->error = code;
    snprintf(res->field, sizeof(res->field), "%s", field);
    va_start(ap, fmt);
    vsnprintf(res->message, sizeof(res->message), fmt, ap);
    va_end(ap);
}

static void options_defaults(reel_engine_options_t *o)
{
    o->invites_per_user = o->invites_per_user ? o->invites_per_user : 4;
    o->generations_per_day = o->generations_per_day ? o->generations_per_day : 30;
    o->render_attempts = o->render_attempts ? o->render_attempts : 3;
    o->dim = o->dim ? o->dim : 64;
    o->log.read_only = false;
}

int reel_engine_status(reel_engine_t *e, bool *transient)
{
    pthread_mutex_lock(&e->mu);
    int rc = e->failed, refused = e->refused;
    pthread_mutex_unlock(&e->mu);
    rc = rc != 0 ? rc : reel_log_status(e->log);
    if (transient != NULL)
        *transient = rc == 0 && refused != 0;
    return rc != 0 ? rc : refused;
}

void reel_engine_stats(reel_engine_t *e, reel_engine_stats_t *out)
{
    pthread_mutex_lock(&e->mu);
    *out = e->stats;
    out->queued = e->q_len;
    pthread_mutex_unlock(&e->mu);
}

reel_log_t *reel_engine_log(reel_engine_t *e)
{
    return e->log;
}

reel_views_t *reel_engine_views(reel_engine_t *e)
{
    return e->views;
}

int reel_engine_read_begin(reel_engine_t *e, reel_views_txn_t **out)
{
    return reel_views_read_begin(e->views, out);
}

/* ---- the command writer ---- */

/* The log calls this (on its writer thread) once a group is durable. */
static void append_cb(reel_log_append_req_t *areq, int status)
{
    inflight_t *f = areq->data;
    reel_engine_t *e = f->e;
    pthread_mutex_lock(&e->mu);
    if (status == 0 && (areq->first_offset != f->out.evs[0].offset ||
                        areq->stamped_ms != f->out.evs[0].at))
        status = REEL_ECORRUPT; /* the log disagrees with the writer: a bug */
    if (status != 0 && e->append_error == 0)
        e->append_error = status;
    REEL_ASSERT(e->pending_appends > 0);
    e->pending_appends--;
    pthread_cond_broadcast(&e->cv_done);
    pthread_mutex_unlock(&e->mu);
}

/* The time of a command's events: the client's (trusted imports) or the
 * wall clock, never before the newest event. */
static int command_time(reel_engine_t *e, const reel_cmd_t *cmd, uint64_t *now,
                        reel_cmd_result_t *res)
{
    if (e->opts.trust_client_time && cmd->at != 0) {
        if (cmd->at < e->clock_ms) {
            reel__res_error(res, 400, "time_regression", "at",
                            "at %llu is before the newest event (%llu)",
                            (unsigned long long)cmd->at, (unsigned long long)e->clock_ms);
            return -1;
        }
        *now = cmd->at;
        return 0;
    }
    uint64_t wall = reel_now_ms();
    *now = wall > e->clock_ms ? wall : e->clock_ms;
    return 0;
}

/* Encodes f's events into its log append request (one group). */
static int encode_events(inflight_t *f)
{
    size_t total = 0, used = 0;
    for (uint32_t i = 0; i < f->out.n; i++)
        total += reel_event_encoded_size(&f->out.evs[i]);
    f->payloads = malloc(total ? total : 1);
    if (f->payloads == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i < f->out.n; i++) {
        int n = reel_event_encode(&f->out.evs[i], f->payloads + used, total - used);
        REEL_ASSERT(n > 0); /* the rules produce only valid events */
        f->entries[i] = (reel_log_entry_t){f->out.evs[i].type, (uint32_t)n, f->payloads + used};
        used += (size_t)n;
    }
    f->append = (reel_log_append_req_t){.entries = f->entries, .count = f->out.n,
                                        .time_ms = f->out.evs[0].at, .cb = append_cb, .data = f};
    return 0;
}

/* Submits the n append requests of a batch to the log, together when the
 * queue takes them (one durable write), else one by one as it drains. */
static int submit_appends(reel_engine_t *e, reel_log_append_req_t **reqs, uint32_t n)
{
    int rc = 0;
    pthread_mutex_lock(&e->mu);
    e->pending_appends += n;
    pthread_mutex_unlock(&e->mu);
    uint32_t queued = reel_log_submit_many(e->log, reqs, n) == 0 ? n : 0;
    while (queued < n) {
        rc = reel_log_submit(e->log, reqs[queued]);
        if (rc == REEL_EFULL)
            reel_log_wait(e->log, reel_log_end(e->log), 10); /* the log drains its queue */
        else if (rc != 0)
            break;
        else
            queued++;
    }
    if (queued < n) { /* never queued: their callbacks will not run */
        pthread_mutex_lock(&e->mu);
        e->pending_appends -= n - queued;
        pthread_mutex_unlock(&e->mu);
    }
    return rc;
}

/* Judges one command into the session: its events applied and submitted,
 * or its refusal in res. A negative return fails the whole batch. */
static int judge(reel_engine_t *e, reel_views_session_t *s, uint64_t *next, inflight_t *f)
{
    const reel_cmd_t *cmd = &f->req->cmd;
    reel_cmd_result_t *res = &f->req->res;
    rules_ctx_t ctx = {reel_views_session_reader(s), &e->opts, 0, *next};
    memset(res, 0, sizeof(*res));
    res->offset = -1;
    if (command_time(e, cmd, &ctx.now, res) != 0)
        return 0;
    int rc = cmd->idem_key ? reel__idem_check(&ctx, cmd, res) : 0;
    if (rc != 0)
        return rc > 0 ? 0 : rc; /* answered from the key, or a read error */
    if (f->req->chunks >= REEL_CMD_CHUNKS_MAX) {
        reel__res_error(res, 503, "unavailable", "",
                        "this command's cascade passed %u groups of %u events; the part "
                        "appended stays", REEL_CMD_CHUNKS_MAX, REEL_CMD_EVENTS_MAX);
        return 0;
    }
    rc = reel__rules_run(&ctx, cmd, &f->out, res);
    if (rc != 0 || (res->error != NULL && !f->out.keep) || f->out.n == 0)
        return rc;
    REEL_ASSERT(!f->out.more || f->out.n > 0);
    f->req->chunks += f->out.more;
    if (cmd->idem_key && !f->out.more && res->error == NULL &&
        (rc = reel__idem_record(cmd, res, &f->out)) != 0)
        return rc;
    for (uint32_t i = 0; i < f->out.n && rc == 0; i++) {
        f->out.evs[i].offset = *next + i;
        f->out.evs[i].at = ctx.now;
        rc = reel_views_session_apply(s, &f->out.evs[i]);
    }
    if (rc != 0)
        return rc;
    f->appended = true; /* submitted to the log with the whole batch (run_batch) */
    *next += f->out.n;
    e->clock_ms = ctx.now;
    res->offset = (int64_t)(*next - 1);
    return 0;
}

/* Waits until every group submitted by the batch is durable (or failed). */
static int wait_appends(reel_engine_t *e)
{
    pthread_mutex_lock(&e->mu);
    while (e->pending_appends > 0)
        pthread_cond_wait(&e->cv_done, &e->mu);
    int rc = e->append_error;
    e->append_error = 0;
    pthread_mutex_unlock(&e->mu);
    return rc;
}

static void fail_engine(reel_engine_t *e, int rc)
{
    pthread_mutex_lock(&e->mu);
    if (e->failed == 0) {
        e->failed = rc;
        fprintf(stderr, "reeldb: engine: writes stopped: %s (the views catch up with the log "
                        "at the next start)\n", reel_strerror(rc));
    }
    pthread_mutex_unlock(&e->mu);
}

/* Puts a command whose cascade goes on back at the head of the queue:
 * the next batch judges it first. */
static void requeue_front(reel_engine_t *e, reel_cmd_req_t *req)
{
    pthread_mutex_lock(&e->mu);
    req->next = e->q_head;
    e->q_head = req;
    if (e->q_tail == NULL)
        e->q_tail = req;
    e->q_len++;
    pthread_mutex_unlock(&e->mu);
}

/* Pops the next command (or takes req, a cascade's next chunk) into slot n
 * of the batch, its events at arena offset used; NULL when the queue is
 * empty. */
static inflight_t *next_command(reel_engine_t *e, reel_cmd_req_t *req, uint32_t n, uint32_t used)
{
    pthread_mutex_lock(&e->mu);
    if (req == NULL && (req = e->q_head) != NULL) {
        e->q_head = req->next;
        if (e->q_head == NULL)
            e->q_tail = NULL;
        e->q_len--;
        req->next = NULL;
    }
    pthread_mutex_unlock(&e->mu);
    if (req == NULL)
        return NULL;
    inflight_t *f = &e->batch[n];
    memset(f, 0, sizeof(*f));
    f->e = e;
    f->req = req;
    f->out.evs = e->arena + used;
    f->entries = e->entries + used;
    return f;
}

/* A write the file system turned down before any byte reached a file
 * (log.h 6.; LMDB reports the same errnos for its own file): writes go on
 * once it takes them again. */
static bool is_refusal(int rc)
{
    return rc == -ENOSPC || rc == -EDQUOT || rc == -EROFS;
}

/* Hands the log's events [from, to), now in the views, to on_apply. */
static int feed_apply(reel_engine_t *e, uint64_t from, uint64_t to)
{
    reel_log_iter_t *it = NULL;
    int rc = reel_log_iter_open(e->log, from, &it);
    for (uint64_t o = from; rc == 0 && o < to; o++) {
        reel_record_t rec;
        reel_event_t ev;
        if ((rc = reel_log_iter_next(it, &rec)) == 0 &&
            (rc = reel_event_decode(rec.type, rec.payload, rec.length, &ev)) == 0) {
            ev.offset = rec.offset;
            ev.at = rec.time_ms;
            e->opts.on_apply(e->opts.on_apply_ctx, &ev, 1);
        }
    }
    reel_log_iter_close(it);
    return rc;
}

/* Folds the durable events the views lack (what of a refused batch reached
 * the log, or what an earlier catch-up could not write) into the views
 * and the on_apply consumer. The writer is the log's only appender, so
 * the log's end does not move meanwhile. */
static int catch_up(reel_engine_t *e)
{
    char err[256];
    uint64_t from = reel_views_applied(e->views);
    int rc = reel_replay(e->log, e->views, UINT64_MAX, NULL, NULL, err, sizeof(err));
    uint64_t to = reel_views_applied(e->views);
    int rc_feed = e->opts.on_apply != NULL && to > from ? feed_apply(e, from, to) : 0;
    rc = rc != 0 ? rc : rc_feed;
    if (rc != 0 && !is_refusal(rc))
        fprintf(stderr, "reeldb: engine: catching the views up with the log: %s\n", err);
    return rc;
}

/* After a refused batch (session dropped): folds its durable prefix into
 * the views and the consumer and resumes the log. Returns how many of the
 * batch's first slots keep their judged answer: those before the first
 * group that is not in the views (the log holds after a refusal, so no
 * group after it is durable: asserted). *rc becomes a failure when the
 * catch-up fails for another reason than a refusal. */
static uint32_t settle_refused(reel_engine_t *e, uint32_t n, int *rc)
{
    int rc_up = catch_up(e);
    uint64_t visible = reel_views_applied(e->views);
    uint32_t ok = 0;
    while (ok < n && e->batch[ok].judged &&
           (!e->batch[ok].appended || e->batch[ok].out.evs[0].offset < visible))
        ok++;
    for (uint32_t i = ok; i < n; i++)
        REEL_ASSERT(!e->batch[i].appended || e->batch[i].out.evs[0].offset >= visible);
    int rc_resume = reel_log_resume(e->log);
    if (rc_up != 0 && !is_refusal(rc_up))
        *rc = rc_up;
    else if (rc_resume != 0)
        *rc = rc_resume;
    return is_refusal(*rc) ? ok : 0;
}

/* Answers the batch's n commands in order: the first ok as judged, the
 * others 503 when the batch failed (rc) or was refused. */
static void answer_batch(reel_engine_t *e, uint32_t n, uint32_t ok, int rc)
{
    for (uint32_t i = 0; i < n; i++) {
        inflight_t *f = &e->batch[i];
        if (rc != 0 && i >= ok && is_refusal(rc))
            reel__res_error(&f->req->res, 503, "unavailable", "",
                            "the file system refused the write (%s); writes resume once it "
                            "takes them again", reel_strerror(rc));
        else if (rc != 0 && i >= ok)
            reel__res_error(&f->req->res, 503, "unavailable", "", "storage has failed: %s",
                            reel_strerror(rc));
        free(f->payloads);
        f->payloads = NULL;
        if (!f->continued) /* a chunk: its command is answered by its last slot */
            f->req->cb(f->req);
    }
}

/* Runs one batch: takes queued commands while the batch has room (slots,
 * and arena for a worst-case command), judges them into one session,
 * waits for their durability, commits, answers. */
static void run_batch(reel_engine_t *e)
{
    reel_views_session_t *s = NULL;
    uint32_t n = 0, used = 0;
    reel_cmd_req_t *carry = NULL; /* a command whose cascade goes on */
    uint64_t t0 = reel_mono_ns(), t1, t2, t3;
    int rc = e->failed;
    if (rc == 0 && reel_views_applied(e->views) != reel_log_end(e->log))
        rc = catch_up(e); /* after a refusal: judging needs views equal to the log */
    uint64_t next = reel_views_applied(e->views), first = next; /* after the catch-up */
    if (rc == 0)
        rc = reel_views_session_begin(e->views, &s);
    while (n < REEL_ENGINE_BATCH_MAX && used + REEL_CMD_SLOTS <= REEL_ENGINE_ARENA_EVENTS) {
        inflight_t *f = next_command(e, carry, n, used);
        if (f == NULL)
            break;
        n++;
        carry = NULL;
        if (rc == 0)
            f->judged = (rc = judge(e, s, &next, f)) == 0;
        used += f->out.n;
        if (rc == 0 && f->out.more && f->req->res.error == NULL)
            carry = f->req, f->continued = true;
    }
    if (carry != NULL)
        requeue_front(e, carry); /* the batch is full: first in the next one */
    /* The groups go to the log together, after judging: the log writer
     * then takes the batch in one durable write, where groups submitted
     * one by one while judging went on made it sync a first few on their
     * own (1.33 syncs a batch with 64 clients, reeld /metrics). */
    uint32_t nreqs = 0;
    for (uint32_t i = 0; i < n && rc == 0; i++)
        if (e->batch[i].appended && (rc = encode_events(&e->batch[i])) == 0)
            e->append_reqs[nreqs++] = &e->batch[i].append;
    if (rc == 0 && nreqs > 0)
        rc = submit_appends(e, e->append_reqs, nreqs);
    t1 = reel_mono_ns();
    int rc_wait = wait_appends(e); /* even after a failure: groups in flight */
    rc = rc != 0 ? rc : rc_wait;
    t2 = reel_mono_ns();
    if (rc == 0)
        rc = reel_views_session_commit(s);
    else
        reel_views_session_abort(s); /* NULL when begin or the catch-up failed */
    t3 = reel_mono_ns();
    pthread_mutex_lock(&e->mu);
    e->stats.batches++;
    e->stats.commands += n;
    e->stats.events += rc == 0 ? next - first : 0;
    e->stats.judge_ns += t1 - t0;
    e->stats.durable_wait_ns += t2 - t1;
    e->stats.views_commit_ns += t3 - t2;
    pthread_mutex_unlock(&e->mu);
    for (uint32_t i = 0; rc == 0 && e->opts.on_apply != NULL && i < n; i++)
        if (e->batch[i].appended)
            e->opts.on_apply(e->opts.on_apply_ctx, e->batch[i].out.evs, e->batch[i].out.n);
    uint32_t ok = rc == 0 ? n : 0;
    if (rc != 0 && is_refusal(rc) && !e->failed)
        ok = settle_refused(e, n, &rc);
    if (rc != 0 && !is_refusal(rc) && !e->failed)
        fail_engine(e, rc);
    pthread_mutex_lock(&e->mu);
    if (rc != 0 || next > first) /* a batch that wrote says whether writes work */
        e->refused = is_refusal(rc) ? rc : 0;
    pthread_mutex_unlock(&e->mu);
    answer_batch(e, n, ok, rc);
}

static void *writer_main(void *arg)
{
    reel_engine_t *e = arg;
    pthread_mutex_lock(&e->mu);
    for (;;) {
        while (e->q_head == NULL && !e->closing)
            pthread_cond_wait(&e->cv, &e->mu);
        if (e->q_head == NULL)
            break; /* closing with nothing left */
        pthread_mutex_unlock(&e->mu);
        run_batch(e);
        pthread_mutex_lock(&e->mu);
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

/* ---- submitting ---- */

int reel_engine_submit(reel_engine_t *e, reel_cmd_req_t *req)
{
    return reel_engine_submit_many(e, &req, 1);
}

int reel_engine_submit_many(reel_engine_t *e, reel_cmd_req_t *const *reqs, size_t n)
{
    if (reqs == NULL || n == 0)
        return REEL_EUSAGE;
    for (size_t i = 0; i < n; i++) {
        if (reqs[i] == NULL || reqs[i]->cb == NULL || reel_cmd_route(reqs[i]->cmd.kind) == NULL)
            return REEL_EUSAGE;
        reqs[i]->next = i + 1 < n ? reqs[i + 1] : NULL;
    }
    int rc = 0;
    pthread_mutex_lock(&e->mu);
    if (e->closing)
        rc = REEL_ECLOSED;
    else if (n > REEL_ENGINE_QUEUE_MAX - e->q_len)
        rc = REEL_EFULL;
    if (rc == 0) { /* one link and one wake-up: the writer takes them together */
        if (e->q_tail)
            e->q_tail->next = reqs[0];
        else
            e->q_head = reqs[0];
        e->q_tail = reqs[n - 1];
        e->q_len += (uint32_t)n;
        pthread_cond_signal(&e->cv);
    }
    pthread_mutex_unlock(&e->mu);
    return rc;
}

typedef struct run_wait {
    reel_engine_t *e;
    bool done;
} run_wait_t;

static void run_cb(reel_cmd_req_t *req)
{
    run_wait_t *w = req->data;
    pthread_mutex_lock(&w->e->mu);
    w->done = true;
    pthread_cond_broadcast(&w->e->cv_done);
    pthread_mutex_unlock(&w->e->mu);
}

int reel_engine_run(reel_engine_t *e, const reel_cmd_t *cmd, reel_cmd_result_t *res)
{
    run_wait_t w = {e, false};
    reel_cmd_req_t req = {.cmd = *cmd, .cb = run_cb, .data = &w};
    int rc = reel_engine_submit(e, &req);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&e->mu);
    while (!w.done)
        pthread_cond_wait(&e->cv_done, &e->mu);
    pthread_mutex_unlock(&e->mu);
    *res = req.res;
    return 0;
}

/* ---- open and close ---- */

static void engine_free(reel_engine_t *e)
{
    reel_views_close(e->views);
    reel_log_close(e->log);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    pthread_cond_destroy(&e->cv_done);
    free(e->batch);
    free(e->append_reqs);
    free(e->arena);
    free(e->entries);
    free(e);
}

/* Opens the log and the views of data_dir and folds the log's new events
 * into the views. */
static int open_parts(reel_engine_t *e, const char *data_dir, char *err, size_t err_len)
{
    char log_dir[PATH_MAX], views_dir[PATH_MAX];
    int rc = reel_data_log_path(data_dir, log_dir, sizeof(log_dir));
    if (rc == 0)
        rc = reel_data_views_path(data_dir, views_dir, sizeof(views_dir));
    if (rc == 0 && mkdir(data_dir, 0755) != 0 && errno != EEXIST)
        rc = REEL_ERR(errno);
    if (rc != 0) {
        snprintf(err, err_len, "%s: %s", data_dir, reel_strerror(rc));
        return rc;
    }
    if ((rc = reel_log_open(log_dir, &e->opts.log, &e->log, err, err_len)) != 0)
        return rc;
    rc = reel_views_open(views_dir, &e->views);
    if (rc == REEL_EVERSION || rc == REEL_ECORRUPT) {
        /* Views of another format, or views LMDB cannot read (a damaged
         * meta page, a truncated file): they are a cache of the log, so
         * they are rebuilt from it, never converted or repaired (views.h). */
        fprintf(stderr, "reeldb: %s: %s: rebuilding them from the log\n", views_dir,
                rc == REEL_EVERSION ? "views of another format"
                                    : "the views are damaged (unreadable or truncated)");
        rc = reel_data_views_remove(views_dir);
        if (rc == 0)
            rc = reel_views_open(views_dir, &e->views);
    }
    if (rc != 0) {
        snprintf(err, err_len, "%s: %s", views_dir, reel_strerror(rc));
        return rc;
    }
    rc = reel_replay(e->log, e->views, UINT64_MAX, NULL, NULL, err, err_len);
    if (rc == 0 && reel_views_applied(e->views) != reel_log_end(e->log)) {
        snprintf(err, err_len, "%s: the views could not catch up with the log", data_dir);
        rc = REEL_ECORRUPT;
    }
    e->clock_ms = reel_log_last_time_ms(e->log);
    return rc;
}

int reel_engine_open(const char *data_dir, const reel_engine_options_t *opts,
                     reel_engine_t **out, char *err, size_t err_len)
{
    static const reel_engine_options_t defaults;
    char scratch[256];
    if (err == NULL || err_len == 0) {
        err = scratch;
        err_len = sizeof(scratch);
    }
    err[0] = '\0';
    *out = NULL;
    reel_engine_t *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return -ENOMEM;
    e->opts = opts ? *opts : defaults;
    options_defaults(&e->opts);
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    pthread_cond_init(&e->cv_done, NULL);
    e->batch = calloc(REEL_ENGINE_BATCH_MAX, sizeof(*e->batch));
    e->append_reqs = calloc(REEL_ENGINE_BATCH_MAX, sizeof(*e->append_reqs));
    e->arena = calloc(REEL_ENGINE_ARENA_EVENTS, sizeof(*e->arena));
    e->entries = calloc(REEL_ENGINE_ARENA_EVENTS, sizeof(*e->entries));
    int rc = e->batch && e->append_reqs && e->arena && e->entries
                 ? open_parts(e, data_dir, err, err_len)
                 : -ENOMEM;
    if (rc == 0 && pthread_create(&e->writer, NULL, writer_main, e) != 0)
        rc = -EAGAIN;
    if (rc != 0) {
        engine_free(e);
        return rc;
    }
    e->writer_started = true;
    *out = e;
    return 0;
}

int reel_engine_close(reel_engine_t *e)
{
    if (e == NULL)
        return 0;
    pthread_mutex_lock(&e->mu);
    e->closing = true;
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    if (e->writer_started)
        pthread_join(e->writer, NULL);
    int rc = reel_log_status(e->log);
    engine_free(e);
    return rc;
}
