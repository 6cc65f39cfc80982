/*
 * idem.c: idempotency keys for the command writer (API.md,
 * "Idempotency"). A write that carries a key and appends events also
 * appends, last in its group, an idempotency.recorded event holding the
 * key, the request's fingerprint and the answer; the idem view keeps them
 * (views_idem.c). Because the record is in the log, in the same atomic
 * group as the write, a repeat after any crash or restart finds exactly
 * the writes that were acknowledged (or, for a write that was durable but
 * never answered, its answer: the client retried, it gets it now).
 *
 * A repeat within REEL_IDEM_WINDOW_MS of engine time with the same
 * fingerprint gets the first answer (replayed: true) and appends nothing;
 * with another fingerprint (method, path or body differ: the key is
 * global) it is 409 conflict. Refused writes and writes that change
 * nothing are not recorded: they appended nothing, and a repeat judges
 * again (a rejected request must append nothing, the contract says).
 *
 * The answer is kept as a small JSON object of the result's fields that
 * are set, so that `reel dump` shows it and old answers stay readable when
 * the result grows fields.
 */
#include "engine/engine_int.h"
#include "engine/common.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

bool reel__idem_key_valid(const char *key, size_t len)
{
    if (key == NULL || len == 0 || len > REEL_IDEM_KEY_LEN_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (key[i] < 0x20 || key[i] > 0x7e)
            return false;
    return true;
}

/* Appends "fmt" to buf at *n (cap bytes): false when it did not fit. */
static bool put(char *buf, size_t cap, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool put(char *buf, size_t cap, size_t *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int w = *n < cap ? vsnprintf(buf + *n, cap - *n, fmt, ap) : -1;
    va_end(ap);
    if (w < 0 || (size_t)w >= cap - *n)
        return false;
    *n += (size_t)w;
    return true;
}

int reel__idem_answer_encode(const reel_cmd_result_t *res, char *buf, size_t cap)
{
    size_t n = 0;
    bool ok = put(buf, cap, &n, "{\"status\":%d", res->status);
    if (res->id)
        ok = ok && put(buf, cap, &n, ",\"id\":%llu", (unsigned long long)res->id);
    if (res->code[0])
        ok = ok && put(buf, cap, &n, ",\"code\":\"%s\"", res->code); /* [A-Za-z0-9] */
    if (res->quota.limit)
        ok = ok && put(buf, cap, &n, ",\"quota\":[%llu,%llu,%llu]",
                       (unsigned long long)res->quota.used, (unsigned long long)res->quota.limit,
                       (unsigned long long)res->quota.resets_at);
    if (res->lease_until)
        ok = ok && put(buf, cap, &n, ",\"lease_until\":%llu",
                       (unsigned long long)res->lease_until);
    if (res->nclaimed) {
        ok = ok && put(buf, cap, &n, ",\"claimed\":[");
        for (uint32_t i = 0; i < res->nclaimed && ok; i++)
            ok = put(buf, cap, &n, "%s%llu", i ? "," : "", (unsigned long long)res->claimed[i]);
        ok = ok && put(buf, cap, &n, "]");
    }
    ok = ok && put(buf, cap, &n, "}");
    return ok ? (int)n : -ENOSPC;
}

static uint64_t u64_of(json_t *o, const char *name)
{
    json_t *x = json_object_get(o, name);
    return json_is_integer(x) && json_integer_value(x) >= 0 ? (uint64_t)json_integer_value(x) : 0;
}

/* Fills res from a recorded answer. REEL_ECORRUPT when it is not one. */
static int answer_decode(const char *s, size_t len, reel_cmd_result_t *res)
{
    json_t *o = json_loadb(s, len, JSON_REJECT_DUPLICATES, NULL);
    int rc = json_is_object(o) ? 0 : REEL_ECORRUPT;
    if (rc == 0) {
        res->status = (int)u64_of(o, "status");
        res->id = u64_of(o, "id");
        json_t *code = json_object_get(o, "code"), *q = json_object_get(o, "quota");
        json_t *cl = json_object_get(o, "claimed");
        if (json_is_string(code))
            snprintf(res->code, sizeof res->code, "%s", json_string_value(code));
        if (json_is_array(q) && json_array_size(q) == 3) {
            res->quota.used = (uint64_t)json_integer_value(json_array_get(q, 0));
            res->quota.limit = (uint64_t)json_integer_value(json_array_get(q, 1));
            res->quota.resets_at = (uint64_t)json_integer_value(json_array_get(q, 2));
        }
        res->lease_until = u64_of(o, "lease_until");
        for (size_t i = 0; json_is_array(cl) && i < json_array_size(cl) && i < REEL_CLAIM_MAX; i++)
            res->claimed[res->nclaimed++] = (uint64_t)json_integer_value(json_array_get(cl, i));
        if (res->status < 200 || res->status > 299)
            rc = REEL_ECORRUPT;
    }
    json_decref(o);
    return rc;
}

int reel__idem_check(const rules_ctx_t *ctx, const reel_cmd_t *cmd, reel_cmd_result_t *res)
{
    reel_idem_view_t rec;
    if (!reel__idem_key_valid(cmd->idem_key, cmd->idem_key_len)) {
        reel__res_error(res, 400, "bad_field", "idempotency_key",
                        "an idempotency key is 1 to %u printable ASCII bytes",
                        REEL_IDEM_KEY_LEN_MAX);
        return 1;
    }
    int rc = reel_views_get_idem(ctx->txn, cmd->idem_key, cmd->idem_key_len, &rec);
    if (rc == REEL_ENOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    if (rec.at + REEL_IDEM_WINDOW_MS <= ctx->now)
        return 0; /* expired: the key is free again */
    if (rec.fingerprint != (cmd->idem_fp & REEL_ID_MAX)) {
        reel__res_error(res, 409, "conflict", "idempotency_key",
                        "this idempotency key was used by another request (method, path or body "
                        "differ)");
        return 1;
    }
    if ((rc = answer_decode(rec.answer, rec.answer_len, res)) != 0)
        return rc;
    res->offset = (int64_t)rec.offset;
    res->replayed = true;
    return 1;
}

int reel__idem_record(const reel_cmd_t *cmd, const reel_cmd_result_t *res, cmd_out_t *out)
{
    int n = reel__idem_answer_encode(res, out->answer, sizeof out->answer);
    if (n < 0)
        return n;
    REEL_ASSERT(out->n < REEL_CMD_SLOTS);
    reel_event_t *ev = &out->evs[out->n++];
    memset(ev, 0, sizeof *ev);
    ev->type = REEL_EV_IDEMPOTENCY_RECORDED;
    ev->key = (reel_str_t){cmd->idem_key, cmd->idem_key_len};
    ev->fingerprint = cmd->idem_fp & REEL_ID_MAX;
    ev->answer = (reel_str_t){out->answer, (uint32_t)n};
    return 0;
}
