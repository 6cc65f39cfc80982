/*
 * problems.c: rate-limited problem reports on stderr (problems.h).
 */
#include "server/problems.h"
#include "engine/common.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

typedef struct problem_class {
    const char *name;
    uint64_t total;       /* since start */
    uint64_t held;        /* counted since the last line */
    uint64_t last_ms;     /* when the last line was printed */
    bool printed;         /* a line was printed once */
    char latest[160];     /* the latest detail */
} problem_class_t;

static problem_class_t classes[REEL_PROBLEM_COUNT] = {
    [REEL_PROBLEM_STORAGE] = {.name = "storage"},
    [REEL_PROBLEM_ACCEPT] = {.name = "accept"},
    [REEL_PROBLEM_CONN_LIMIT] = {.name = "connection limit"},
    [REEL_PROBLEM_SLOW_CLIENT] = {.name = "slow clients cut"},
    [REEL_PROBLEM_BAD_REQUEST] = {.name = "bad requests"},
    [REEL_PROBLEM_OVERLOAD] = {.name = "overload"},
};

static uint64_t now_ms(void)
{
    return reel_mono_ns() / 1000000u;
}

static void report(problem_class_t *k, uint64_t now)
{
    if (!k->printed)
        fprintf(stderr, "reeld: problem: %s: %s (repeats are counted, reported at most every "
                "%u s)\n", k->name, k->latest, REEL_PROBLEM_REPORT_MS / 1000u);
    else
        fprintf(stderr, "reeld: problem: %s: %llu more since the last report (latest: %s)\n",
                k->name, (unsigned long long)k->held, k->latest);
    fflush(stderr);
    k->printed = true;
    k->held = 0;
    k->last_ms = now;
}

void reel_problem(reel_problem_t p, const char *fmt, ...)
{
    REEL_ASSERT((int)p >= 0 && p < REEL_PROBLEM_COUNT);
    problem_class_t *k = &classes[p];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(k->latest, sizeof(k->latest), fmt, ap);
    va_end(ap);
    k->total++;
    k->held++;
    uint64_t now = now_ms();
    if (!k->printed || now - k->last_ms >= REEL_PROBLEM_REPORT_MS)
        report(k, now);
}

void reel_problems_flush(void)
{
    uint64_t now = now_ms();
    for (int i = 0; i < REEL_PROBLEM_COUNT; i++) {
        problem_class_t *k = &classes[i];
        if (k->held > 0 && now - k->last_ms >= REEL_PROBLEM_REPORT_MS)
            report(k, now);
    }
}

uint64_t reel_problem_total(reel_problem_t p)
{
    REEL_ASSERT((int)p >= 0 && p < REEL_PROBLEM_COUNT);
    return classes[p].total;
}
