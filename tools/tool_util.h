/*
 * tool_util.h: small helpers shared by the read-only `reel` subcommands
 * (stat, inspect, export): argument parsing, opening a data directory's log
 * read-only, and decoding a record into an event with its JSON.
 */
#ifndef REEL_TOOLS_TOOL_UTIL_H
#define REEL_TOOLS_TOOL_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/event.h"
#include "engine/log.h"
#include "engine/record.h"

/* The JSON of one event: the largest (a post.created at every limit, a
 * 1024-dim embedding at ~16 bytes a number, strings escaped six-fold)
 * stays under 64 KiB (as in cmd_dump.c). */
#define TOOL_EVENT_JSON_MAX (64u << 10)

/* A decimal u64, the whole string: no sign, no spaces, no overflow.
 * Returns 0 or REEL_EUSAGE. */
int tool_parse_u64(const char *s, uint64_t *out);

/* Matches argv[*i] against `--name VALUE` or `--name=VALUE`. Returns 1 and
 * the value (advancing *i past it), 0 when it is another option, or
 * REEL_EUSAGE when the value is missing. */
int tool_opt_value(int argc, char **argv, int *i, const char *name, const char **value);

/* Opens DATA_DIR/log read-only (no lock, no recovery writes: safe beside a
 * running reeld). Prints the error itself, naming cmd ("reel stat").
 * Returns 0 or the error. */
int tool_log_open_ro(const char *cmd, const char *data_dir, reel_log_t **out);

/* Decodes rec into ev (offset and at set). Returns 0, or an error when the
 * record is not a reeldb event. */
int tool_event_decode(const reel_record_t *rec, reel_event_t *ev);

/* A time: ms since the epoch, or a UTC date YYYY-MM-DDTHH:MM:SS[Z] (its
 * first ms). Returns 0 or REEL_EUSAGE. */
int tool_parse_time_ms(const char *s, uint64_t *out);

/* Days since the epoch (UTC) of a time in ms, and "YYYY-MM-DD" of a day
 * into buf (at least 16 bytes). */
uint64_t tool_day_of_ms(uint64_t ms);
void tool_day_name(uint64_t day, char *buf, size_t len);

/* A progress line on stderr for work that may take over a second: done /
 * total, the percentage, the rate and the time left, redrawn in place
 * ("\r") at most 4 times a second, first after half a second, and once
 * more at the end with the final figures. Shown only when stderr is a
 * terminal (isatty(2)). REEL_PROGRESS=0 in the environment turns it off;
 * REEL_PROGRESS=1 forces it on without the half-second wait and with the
 * final line always drawn (so tests see it on short runs). */
typedef struct tool_progress {
    const char *unit;   /* "events", "commands", ... */
    uint64_t total;     /* 0: unknown (no percentage, no time left) */
    uint64_t start_ns;
    uint64_t last_ns;   /* last drawn, 0: never */
    uint32_t countdown; /* calls left before the clock is read again */
    bool on;
    bool forced;        /* REEL_PROGRESS=1 */
} tool_progress_t;

void tool_progress_start(tool_progress_t *p, const char *unit, uint64_t total);
void tool_progress_draw(tool_progress_t *p, uint64_t done);
/* Cheap enough to call per item: reads the clock every 256th call. */
static inline void tool_progress(tool_progress_t *p, uint64_t done)
{
    if (p->on && --p->countdown == 0)
        tool_progress_draw(p, done);
}
/* The final line (done of total) and its newline, when a line was drawn
 * (or forced). */
void tool_progress_end(tool_progress_t *p, uint64_t done);

#endif
