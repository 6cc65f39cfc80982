/*
 * reel.h: the embedded API of reeldb: what the server and the tools use,
 * and what an application may link to run the data tier in-process.
 *
 * An engine is a data directory (engine/datadir.h) opened for writing: the
 * log (engine/log.h), the views (engine/views.h) and one command writer
 * thread. Commands are the API's writes in structured form. The writer
 * takes them in order and, for each: checks it against the views as they
 * stand after every command before it (a views write session), turns it
 * into events, applies those to the session, and appends them to the log
 * as one group (atomic on recovery). A batch of commands shares one group
 * commit and one views commit; every command of the batch is answered
 * after its events are durable AND the views that include them are
 * committed, so a read that follows an answer sees it.
 *
 * Lifecycle:  reel_engine_open -> reel_engine_submit* / reads -> reel_engine_close.
 * Threads: submit from any thread; callbacks run on the writer thread and
 * must be short (no submit_sync from a callback: it would wait for itself).
 * Reads: reel_engine_read_begin gives a views snapshot (engine/views.h read
 * functions), never blocked by the writer.
 *
 * Errors of the calls (not of commands, which answer with a status):
 * REEL_EUSAGE, REEL_ELOCKED (another process has the data directory),
 * REEL_ECORRUPT, REEL_EVERSION, REEL_EFULL (queue bound), REEL_ECLOSED,
 * REEL_EFAILED, -errno.
 */
#ifndef REEL_REEL_H
#define REEL_REEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/event.h"
#include "engine/log.h"
#include "engine/views.h"

typedef struct reel_engine reel_engine_t;

/* Called on the command writer thread once per appended group (a
 * command's events, or one chunk of a cascade), in offset order, after the
 * batch's views commit and before its commands are answered: so whatever
 * it updates (the feed index) shows a write to any read that follows the
 * write's answer. evs and the strings they point to live only during the
 * call. It must be short and must not wait for the engine (no
 * reel_engine_run). Events folded at open (catch-up) do not pass here:
 * the consumer reads the views or the log itself when it starts. */
typedef void (*reel_engine_apply_cb)(void *ctx, const reel_event_t *evs, size_t n);

typedef struct reel_engine_options {
    bool trust_client_time;       /* commands may carry "at" (never backwards) */
    bool invite_only;             /* sign-up needs an invite code */
    uint32_t invites_per_user;    /* 0: 4 */
    uint32_t generations_per_day; /* 0: 30 */
    uint32_t render_attempts;     /* 0: 3 */
    uint32_t dim;                 /* embedding dimension; 0: 64 */
    reel_log_options_t log;       /* segment size, I/O backend (read_only ignored) */
    reel_engine_apply_cb on_apply; /* NULL: none */
    void *on_apply_ctx;
} reel_engine_options_t;

/* The commands (the API's writes). Arguments travel in reel_cmd_t.args,
 * named as the events name them (args.user, args.target, args.post, ...).
 * Cameos (rules_cameo.c): args.user is the cameo's owner; CAMEO_SET takes
 * args.asset (1..2048 bytes), CAMEO_POLICY args.policy (only_me,
 * approved, mutuals, everyone), CAMEO_(UN)APPROVE args.target (the
 * grantee), CAMEO_TAKEDOWN args.post. A change that takes the right to
 * use a cameo from someone (delete, narrower policy, revoked approval, a
 * block either way, a mutual follow ended under mutuals) hides their posts
 * and drafts featuring it, in the same group: reason "cameo_deleted" for a
 * delete, else "consent_revoked"; a takedown hides one post with
 * "removed_by_cameo_owner". Deleting when there is no cameo, setting the
 * same asset or policy, approving twice: 200 with no event. The same
 * change cancels (generation.cancelled, same reason) their queued or
 * running generations featuring the cameo. The cascade comes first in the
 * log and its cause last; a cascade too large for one group is appended as
 * several, cause in the last (see "Chunked cascades" below).
 *
 * Generations (rules_gen.c; API.md, "Generations and the render queue"):
 * GENERATION_CREATE takes args.user, args.prompt (1..2000 bytes),
 * args.cameos, args.remix_of (0: none), args.tags; 202 with res.id (the
 * generation) and res.quota, or 429 quota_exceeded with res.retry_after_s
 * and res.quota. The render commands take args.worker (1..128 bytes) and,
 * for one generation, args.generation. Two API fields have no event field
 * of their own and travel in args fields the events do not use for these
 * commands: `lease_ms` in args.lease_until (RENDER_CLAIM, RENDER_HEARTBEAT;
 * 0: 60000; else 100..3600000) and `max` in args.attempt (RENDER_CLAIM;
 * 0: 1; else 1..REEL_CLAIM_MAX). RENDER_CLAIM first expires up to
 * REEL_EXPIRE_MAX leases that ran out (generation.expired, and a final
 * generation.failed "lease_expired" when the attempts are spent), then
 * claims the oldest queued generations: 200 with res.claimed[0..nclaimed)
 * and res.lease_until (the long poll's wait_ms is the server's).
 * RENDER_HEARTBEAT (res.lease_until), RENDER_COMPLETE (args.video_uri,
 * args.duration_ms, args.dim/embedding, args.publish; 200 with res.id the
 * post) and RENDER_FAIL (args.reason, args.retryable) need the worker to
 * hold an unexpired lease on a running generation, else 409 lease_lost.
 *
 * USER_DELETE (rules_user.c) takes args.user: 404 for an unknown or
 * deleted user, else 200 with the account cascade in one group: the
 * user's follows (both ways, reason "user_deleted"), likes, comments,
 * posts (drafts too), cameo (with its revoke cascade, "cameo_deleted"),
 * approvals given and queued or running generations ("user_deleted")
 * leave every view, then user.deleted; the handle is free again.
 *
 * Chunked cascades. A command whose cascade does not fit one log group
 * (REEL_CMD_EVENTS_MAX events, engine_int.h) is judged in chunks: each
 * chunk, a prefix of the cascade without its cause, is appended as a
 * group of its own and applied, then the command is judged again, until
 * the last chunk ends with the cause; nothing else is judged in between,
 * and the answer (one, after the last chunk is durable) carries the last
 * offset. Each group is atomic, the command as a whole is not: a crash
 * between chunks leaves a prefix of the cascade (posts hidden, follows
 * removed: a state the users could have made; never a cameo in use without
 * consent, since the cause comes last), and the retried command finishes
 * it. Past REEL_CMD_CHUNKS_MAX chunks (~1M events) the command answers 503
 * unavailable and keeps the chunks it appended. */
#define REEL_CMD_MAP(XX)                                                   \
    XX(USER_CREATE, "POST /v1/users")                                      \
    XX(USER_UPDATE, "PATCH /v1/users/{id}")                                \
    XX(USER_DELETE, "DELETE /v1/users/{id}")                               \
    XX(INVITE_CREATE, "POST /v1/users/{id}/invites")                       \
    XX(FOLLOW, "PUT /v1/users/{id}/following/{target}")                    \
    XX(UNFOLLOW, "DELETE /v1/users/{id}/following/{target}")               \
    XX(BLOCK, "PUT /v1/users/{id}/blocks/{target}")                        \
    XX(UNBLOCK, "DELETE /v1/users/{id}/blocks/{target}")                   \
    XX(POST_CREATE, "POST /v1/posts")                                      \
    XX(POST_PUBLISH, "POST /v1/posts/{id}/publish")                        \
    XX(POST_DELETE, "DELETE /v1/posts/{id}")                               \
    XX(LIKE, "PUT /v1/posts/{id}/likes/{user}")                            \
    XX(UNLIKE, "DELETE /v1/posts/{id}/likes/{user}")                       \
    XX(COMMENT_CREATE, "POST /v1/posts/{id}/comments")                     \
    XX(COMMENT_DELETE, "DELETE /v1/comments/{id}")                         \
    XX(VIEW, "POST /v1/views")                                             \
    XX(FEEDBACK, "POST /v1/feedback")                                     \
    XX(CAMEO_SET, "PUT /v1/users/{id}/cameo")                              \
    XX(CAMEO_DELETE, "DELETE /v1/users/{id}/cameo")                        \
    XX(CAMEO_POLICY, "PUT /v1/users/{id}/cameo/policy")                    \
    XX(CAMEO_APPROVE, "PUT /v1/users/{id}/cameo/approvals/{grantee}")      \
    XX(CAMEO_UNAPPROVE, "DELETE /v1/users/{id}/cameo/approvals/{grantee}") \
    XX(CAMEO_TAKEDOWN, "DELETE /v1/posts/{id}/cameos/{owner}")             \
    XX(GENERATION_CREATE, "POST /v1/generations")                          \
    XX(RENDER_CLAIM, "POST /v1/render/claim")                              \
    XX(RENDER_HEARTBEAT, "POST /v1/render/{id}/heartbeat")                 \
    XX(RENDER_COMPLETE, "POST /v1/render/{id}/complete")                   \
    XX(RENDER_FAIL, "POST /v1/render/{id}/fail")

typedef enum reel_cmd_kind {
    REEL_CMD_NONE = 0,
#define REEL__CMD_ENUM(name, route) REEL_CMD_##name,
    REEL_CMD_MAP(REEL__CMD_ENUM)
#undef REEL__CMD_ENUM
    REEL_CMD_COUNT
} reel_cmd_kind_t;

/* Idempotency (API.md): a command may carry a key (Idempotency-Key, or a
 * /v1/batch line's idempotency_key) and the fingerprint of the request
 * (the caller's hash of method, path and body; compared on its low 53
 * bits). A repeat of a key within REEL_IDEM_WINDOW_MS (24 h) of engine
 * time gets the first answer again (res.replayed) and appends nothing;
 * across restarts too, since the key and answer are in the log
 * (idempotency.recorded, appended last in the write's group, so its
 * offset is the answer's). The same key with another fingerprint is 409
 * conflict (field "idempotency_key"); a bad key (not 1..64 printable
 * ASCII bytes) 400 bad_field. Only writes that appended events are
 * recorded: a refused write or a no-op is judged again when repeated. */
typedef struct reel_cmd {
    reel_cmd_kind_t kind;
    uint64_t at;        /* client time (ms) with trust_client_time; 0: none */
    bool admin;         /* the caller has the admin scope */
    const char *idem_key;  /* idempotency key, NULL: none; lives until the answer */
    uint32_t idem_key_len; /* bytes */
    uint64_t idem_fp;      /* fingerprint of the request that carried the key */
    reel_event_t args;  /* the arguments; strings must live until the answer */
} reel_cmd_t;

/* Generations one RENDER_CLAIM may claim (the API's `max`): 64 claims and
 * their expiries fit one command's events (engine_int.h). */
#define REEL_CLAIM_MAX 64u
/* Leases one RENDER_CLAIM expires at most before claiming (two events
 * each at worst: expired, then failed); the rest wait for the next claim. */
#define REEL_EXPIRE_MAX 16u

/* A user's rolling 24 h generation quota (API: {"used", "limit",
 * "resets_at"}). */
typedef struct reel_quota {
    uint64_t used;      /* counted generations in the window */
    uint64_t limit;     /* --generations-per-day */
    uint64_t resets_at; /* ms: when the oldest counted one leaves the window */
} reel_quota_t;

/* The answer to a command, as the HTTP API gives it. */
typedef struct reel_cmd_result {
    int status;          /* 200, 201, 202, 400, 403, 404, 409, 429, 503 */
    const char *error;   /* the contract's code ("handle_taken"), NULL: success */
    char message[160];   /* human text for errors */
    char field[32];      /* JSON path of the bad field, "" when none */
    int64_t offset;      /* last event appended, -1: none (JSON null) */
    uint64_t id;         /* id created: user, post or comment; 0: none */
    char code[24];       /* invite code created, "" when none */
    uint64_t retry_after_s;  /* 429 quota_exceeded: the Retry-After seconds */
    reel_quota_t quota;      /* GENERATION_CREATE (202 and 429) */
    uint64_t lease_until;    /* RENDER_CLAIM, RENDER_HEARTBEAT: the new lease's end */
    uint32_t nclaimed;       /* RENDER_CLAIM: ids in claimed, oldest first */
    uint64_t claimed[REEL_CLAIM_MAX];
    bool replayed;           /* the first answer to this idempotency key, again */
} reel_cmd_result_t;

typedef struct reel_cmd_req reel_cmd_req_t;
typedef void (*reel_cmd_cb)(reel_cmd_req_t *req);

/* An asynchronous command: caller-owned, untouched after its callback. */
struct reel_cmd_req {
    reel_cmd_t cmd;          /* in */
    reel_cmd_result_t res;   /* out, valid in cb */
    reel_cmd_cb cb;          /* required; runs on the writer thread */
    void *data;              /* the caller's */
    reel_cmd_req_t *next;    /* private */
    uint32_t chunks;         /* private: chunks of a cascade judged so far */
};

/* Opens (creating when missing) the data directory: takes the log's lock,
 * recovers the log, opens the views and folds into them what they have not
 * applied (exactly once), then starts the command writer.
 * err (err_len bytes, may be NULL) gets a message on failure. */
int reel_engine_open(const char *data_dir, const reel_engine_options_t *opts,
                     reel_engine_t **out, char *err, size_t err_len);
/* Answers everything queued, stops the writer, closes. NULL is a no-op.
 * Returns the log's sticky error, if any. */
int reel_engine_close(reel_engine_t *e);

/* Queues a command: 0 (the callback will run once) or REEL_EFULL,
 * REEL_ECLOSED, REEL_EUSAGE (then it never runs). */
int reel_engine_submit(reel_engine_t *e, reel_cmd_req_t *req);
/* Queues n commands at once, in order (POST /v1/batch): the writer sees
 * them together, so they share one batch, one group commit and one views
 * commit when they fit one (REEL_ENGINE_BATCH_MAX commands; a longer group
 * spans as few batches as it must). 0 (every callback will run once), or
 * REEL_EFULL (the queue cannot take all n), REEL_ECLOSED, REEL_EUSAGE (a
 * bad request): then none is queued and no callback runs. */
int reel_engine_submit_many(reel_engine_t *e, reel_cmd_req_t *const *reqs, size_t n);
/* Runs one command and waits for its answer in *res. Returns 0 (see
 * res->status), or the submit errors. */
int reel_engine_run(reel_engine_t *e, const reel_cmd_t *cmd, reel_cmd_result_t *res);

/* A read snapshot of the views (end it with reel_views_read_end). */
int reel_engine_read_begin(reel_engine_t *e, reel_views_txn_t **out);
/* GET /v1/users/{owner}/cameo/can-use?user={grantee}: whether grantee may
 * put owner's cameo in a video, as the rules judge it, from snapshot t.
 * *reason (static) is one of owner, everyone, mutuals, approved (allowed)
 * or only_me, not_mutual, not_approved, no_cameo, blocked (denied).
 * Errors: REEL_ENOTFOUND (owner or grantee is not a live user: 404),
 * REEL_EUSAGE, REEL_ECORRUPT, -EIO. */
int reel_engine_can_use(reel_views_txn_t *t, uint64_t owner, uint64_t grantee, bool *allowed,
                        const char **reason);
/* GET /v1/users/{user}/quota: the rolling 24 h generation quota at now_ms
 * (the caller's clock, ms) from snapshot t, with limit the engine's
 * --generations-per-day. resets_at is 0 (JSON null) when nothing counts.
 * Errors: REEL_ENOTFOUND (not a live user: 404), REEL_EUSAGE,
 * REEL_ECORRUPT, -EIO. */
int reel_engine_quota(reel_views_txn_t *t, uint64_t user, uint64_t now_ms, uint32_t limit,
                      reel_quota_t *out);
/* What the command writer has done since open (for /metrics): each batch
 * is judged, waits for its groups to be durable, commits the views, then
 * answers; the three phases' times add up to where a write's latency goes. */
typedef struct reel_engine_stats {
    uint64_t batches;          /* batches run */
    uint64_t commands;         /* commands judged (answered) */
    uint64_t events;           /* events appended */
    uint64_t judge_ns;         /* judging and applying to the session */
    uint64_t durable_wait_ns;  /* waiting for the batch's log groups to be durable */
    uint64_t views_commit_ns;  /* committing the views (LMDB, with its data sync) */
    uint64_t queued;           /* commands waiting for the writer now */
} reel_engine_stats_t;
void reel_engine_stats(reel_engine_t *e, reel_engine_stats_t *out);

/* 0 while the engine takes writes; else why it does not, and *transient
 * (may be NULL) says which kind:
 *  - false: the sticky error that stopped writes (a failed log write or
 *    sync, a failed views commit): every write answers 503 from then on;
 *  - true: the file system refused the last batch that wrote (no space,
 *    read-only: engine.c); writes answer 503 until it takes them again,
 *    then go on without a restart.
 * Reads keep working either way (GET /healthz: read_only, with the reason). */
int reel_engine_status(reel_engine_t *e, bool *transient);

/* The engine's parts, for tools and tests. */
reel_log_t *reel_engine_log(reel_engine_t *e);
reel_views_t *reel_engine_views(reel_engine_t *e);
/* JSON route of a command kind ("POST /v1/users"), or NULL. */
const char *reel_cmd_route(reel_cmd_kind_t kind);

#endif /* REEL_REEL_H */
