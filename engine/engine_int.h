/*
 * engine_int.h: between the command writer (engine.c) and the rules
 * (rules.c, rules_cameo.c). Not part of the contract (reel.h is).
 */
#ifndef REEL_ENGINE_INT_H
#define REEL_ENGINE_INT_H

#include "engine/reel.h"

/* Events one judgement of a command may produce (one log group). A
 * cascade larger than that (a revoke hiding many posts, an account with
 * many follows) is judged in chunks: each chunk is a prefix of the
 * cascade, never its cause, and the writer judges the command again,
 * against the views that now include the chunk, until a judgement fits
 * and ends with the cause (engine.c, "Chunked cascades"). */
#define REEL_CMD_EVENTS_MAX 128u
/* Chunks one command may take: ~1M events, far beyond any account the
 * app has (a top creator's tens of thousands of followers); past it the
 * command answers 503 (its chunks so far stay: each is a valid state). */
#define REEL_CMD_CHUNKS_MAX 8192u
/* Event slots of a command: its rules' events, then the engine's
 * idempotency.recorded when it carries a key (idem.c). */
#define REEL_CMD_SLOTS (REEL_CMD_EVENTS_MAX + 1u)
/* Events of a command besides its cascade: a block, its two follow
 * removals, a policy or consent event, with room to spare. */
#define REEL_CMD_EVENTS_OWN 8u
#define REEL_CASCADE_CHUNK_MAX (REEL_CMD_EVENTS_MAX - REEL_CMD_EVENTS_OWN)
/* Commands the writer takes into one batch: one views session, one group
 * commit and one views commit for all of them. Both commits sync, so the
 * batch must be large: with 256 commands ingest ran 36k events/s (reel
 * bench views). A command slot is ~250 bytes: 4096 is ~1 MiB. */
#define REEL_ENGINE_BATCH_MAX 4096u
/* The batch's events live in one arena (~680 bytes an event): room for two
 * events per command on average plus one worst-case command, ~6 MiB. A
 * command starts only when REEL_CMD_EVENTS_MAX events are free, so the
 * batch ends early when cascades fill it, never midway through one. */
#define REEL_ENGINE_ARENA_EVENTS (2u * REEL_ENGINE_BATCH_MAX + REEL_CMD_SLOTS)
/* Commands waiting for the writer; past it, submit answers REEL_EFULL. */
#define REEL_ENGINE_QUEUE_MAX 65536u

/* What the rules see: the views as the command writer has them (its
 * session), the options and the command's time. */
typedef struct rules_ctx {
    reel_views_txn_t *txn;
    const reel_engine_options_t *opts;
    uint64_t now;       /* engine time of the command's events */
    uint64_t next;      /* offset the command's first event will get */
} rules_ctx_t;

/* The events a command produces, with room for strings they point to
 * that are not the command's own (generated codes, fixed reasons). */
/* Bytes of text a command's own events may copy from the views: a
 * completion's post takes the generation's prompt and tags, a claim's
 * expiries name the workers that held the leases. The views' memory
 * cannot be pointed to: a session may re-apply its events into a new txn
 * (views.h), so these strings must live as long as the command slot. */
#define CMD_TEXT_BYTES (REEL_PROMPT_LEN_MAX + REEL_TAGS_MAX * REEL_TAG_LEN_MAX)
_Static_assert(REEL_EXPIRE_MAX * REEL_SHORT_LEN_MAX <= CMD_TEXT_BYTES, "expiry workers fit");
_Static_assert(2 * REEL_EXPIRE_MAX + REEL_CLAIM_MAX <= REEL_CMD_EVENTS_MAX, "a claim fits");

/* A recorded answer (idem.c): status, id, code, quota, lease, and up to
 * REEL_CLAIM_MAX claimed ids of 16 digits. */
#define CMD_ANSWER_BYTES 1400u
_Static_assert(CMD_ANSWER_BYTES <= REEL_ANSWER_LEN_MAX, "an answer fits its event field");
_Static_assert(200 + REEL_CLAIM_MAX * 17 <= CMD_ANSWER_BYTES, "a claim's answer fits");

typedef struct cmd_out {
    reel_event_t *evs; /* REEL_CMD_SLOTS slots in the batch's arena */
    uint32_t n;
    bool more;         /* a chunk of a cascade: judge the command again */
    bool keep;         /* an error answer whose events are appended all the same (a
                          completion refused for consent cancels its generation) */
    char scratch[64];
    char text[CMD_TEXT_BYTES]; /* see CMD_TEXT_BYTES */
    char answer[CMD_ANSWER_BYTES]; /* the idempotency record's answer */
} cmd_out_t;

/* Checks cmd against ctx and fills out with its events (n 0: a no-op that
 * still succeeds) and res with the answer (status, error, id; not offset);
 * out->more: the events are a chunk of a cascade, judge it again.
 * Returns 0 when the command was judged (accepted or refused: see
 * res->status), or a negative error when the views could not be read. */
int reel__rules_run(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                    reel_cmd_result_t *res);

/* ---- shared by the rule files (rules.c, rules_cameo.c, rules_gen.c) ---- */

/* Appends an event of type to out (zeroed but for the type). */
reel_event_t *reel__emit(cmd_out_t *out, uint16_t type);
/* Loads a live user: 1 found, 0 judged (400 bad id, 404), < 0 read error. */
int reel__need_user(const rules_ctx_t *ctx, uint64_t id, const char *field,
                    reel_cmd_result_t *res, reel_user_view_t *u);
/* A string field, required when len_min > 0: true valid, false judged. */
bool reel__check_str(reel_str_t s, uint32_t len_min, uint32_t len_max, const char *field,
                     reel_cmd_result_t *res);

/* A change about to be made, that consent is judged after: the rules
 * run before their events are applied, so the cascade asks "who may use
 * the cameo once this change is in" by overlaying it on the views. */
typedef struct cameo_change {
    int policy;          /* the new policy (reel_cameo_policy_t), -1: unchanged */
    bool deleted;        /* the cameo is deleted */
    uint64_t unapproved; /* grantee whose approval is revoked, 0: none */
    uint64_t block_a;    /* a block between a and b begins (both 0: none) */
    uint64_t block_b;
    uint64_t unfollow_a; /* a follow a -> b ends (both 0: none) */
    uint64_t unfollow_b;
} cameo_change_t;
#define CAMEO_CHANGE_NONE ((cameo_change_t){.policy = -1})

/* Whether grantee may use owner's cameo once chg is made (NULL: as the
 * views stand), and why (can-use reasons). Returns 0 or a read error. */
int reel__consent(reel_views_txn_t *t, uint64_t owner, uint64_t grantee,
                  const cameo_change_t *chg, bool *allowed, const char **reason);

/* The revoke cascade: cancels (generation.cancelled with reason) every
 * queued or running generation, and hides (post.hidden with reason) every
 * post or draft not hidden yet, featuring owner's cameo, by author (0: any
 * author), whose author may not use the cameo once chg is made. Returns 1
 * done, 0 when the command's events reach REEL_CASCADE_CHUNK_MAX (out->more
 * set: the caller stops and emits no cause; the writer judges the command
 * again), < 0 read error. Callers emit the cause after the cascade, so a
 * chunk never carries it. */
int reel__cameo_cascade(const rules_ctx_t *ctx, uint64_t owner, uint64_t author,
                        const cameo_change_t *chg, const char *reason, cmd_out_t *out);

/* The cameo commands (rules_cameo.c), judged as reel__rules_run says. */
int reel__cameo_set(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                    reel_cmd_result_t *res);
int reel__cameo_delete(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                       reel_cmd_result_t *res);
int reel__cameo_policy(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                       reel_cmd_result_t *res);
int reel__cameo_approve(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                        reel_cmd_result_t *res, bool grant);
int reel__cameo_takedown(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                         reel_cmd_result_t *res);

/* An embedding, when given, has the engine's --dim numbers: true, or
 * false judged (400 bad_field "embedding"). */
bool reel__check_dim(const rules_ctx_t *ctx, const reel_event_t *a, reel_cmd_result_t *res);

/* Loads a post user may see (public, or the user's own draft): 1 found,
 * 0 judged (400, 404), < 0 read error. */
int reel__need_post(const rules_ctx_t *ctx, uint64_t id, uint64_t user, const char *field,
                    reel_cmd_result_t *res, reel_post_view_t *p);
/* 403 blocked when a and b block each other: 1 clear, 0 judged, < 0. */
int reel__need_unblocked(const rules_ctx_t *ctx, uint64_t a, uint64_t b, reel_cmd_result_t *res);
/* Every cameo of a (a->cameos) usable by author: 1, 0 judged (404, 403
 * cameo_not_allowed with field cameos[i]), < 0 read error. */
int reel__need_cameos(const rules_ctx_t *ctx, uint64_t author, const reel_event_t *a,
                      reel_cmd_result_t *res);

/* USER_DELETE (rules_user.c), judged as reel__rules_run says. */
int reel__user_delete(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                      reel_cmd_result_t *res);

/* The generation commands (rules_gen.c), judged as reel__rules_run says. */
int reel__gen_create(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                     reel_cmd_result_t *res);
int reel__render_claim(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                       reel_cmd_result_t *res);
int reel__render_heartbeat(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                           reel_cmd_result_t *res);
int reel__render_complete(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                          reel_cmd_result_t *res);
int reel__render_fail(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                      reel_cmd_result_t *res);

/* ---- idempotency keys (idem.c) ---- */

/* 1..REEL_IDEM_KEY_LEN_MAX bytes of printable ASCII (0x20..0x7e). */
bool reel__idem_key_valid(const char *key, size_t len);
/* A command with a key, before its rules: 1 answered in res (the first
 * answer replayed, 409 conflict, 400 for a bad key), 0 judge it, < 0 a
 * views read failed. */
int reel__idem_check(const rules_ctx_t *ctx, const reel_cmd_t *cmd, reel_cmd_result_t *res);
/* After a command with a key appended events: its idempotency.recorded
 * event (res: the answer) in out's last slot. 0 or -ENOSPC. */
int reel__idem_record(const reel_cmd_t *cmd, const reel_cmd_result_t *res, cmd_out_t *out);
/* The JSON text of res's success fields into buf: its length or -ENOSPC. */
int reel__idem_answer_encode(const reel_cmd_result_t *res, char *buf, size_t cap);

/* Sets an error answer: status, contract code, field ("" for none), text. */
void reel__res_error(reel_cmd_result_t *res, int status, const char *code, const char *field,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif /* REEL_ENGINE_INT_H */
