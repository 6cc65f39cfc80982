/*
 * engine_int.h: between the command writer (engine.c) and the rules
 * (rules.c). Not part of the contract (reel.h is).
 */
#ifndef REEL_ENGINE_INT_H
#define REEL_ENGINE_INT_H

#include "engine/reel.h"

/* Events one command may produce: a block and its two follow removals is
 * 3, the largest today. Cascades over many posts (account deletion, cameo
 * revocation) will need more than one group per command; until then the
 * bound stays small because every batch slot holds this many events. */
#define REEL_CMD_EVENTS_MAX 16u
/* Commands the writer takes into one batch: one views session and one
 * group commit for all of them (slots of ~11 KiB: ~2.8 MiB in all). */
#define REEL_ENGINE_BATCH_MAX 256u
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
typedef struct cmd_out {
    reel_event_t evs[REEL_CMD_EVENTS_MAX];
    uint32_t n;
    char scratch[64];
} cmd_out_t;

/* Checks cmd against ctx and fills out with its events (n 0: a no-op that
 * still succeeds) and res with the answer (status, error, id; not offset).
 * Returns 0 when the command was judged (accepted or refused: see
 * res->status), or a negative error when the views could not be read. */
int reel__rules_run(const rules_ctx_t *ctx, const reel_cmd_t *cmd, cmd_out_t *out,
                    reel_cmd_result_t *res);

/* Sets an error answer: status, contract code, field ("" for none), text. */
void reel__res_error(reel_cmd_result_t *res, int status, const char *code, const char *field,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif /* REEL_ENGINE_INT_H */
