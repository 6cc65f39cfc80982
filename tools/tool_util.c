/*
 * tool_util.c: helpers of the read-only `reel` subcommands (tool_util.h).
 */
#include "tools/tool_util.h"
#include "engine/common.h"
#include "engine/datadir.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int tool_parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (s == NULL || *s == '\0')
        return REEL_EUSAGE;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return REEL_EUSAGE;
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return REEL_EUSAGE;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int tool_opt_value(int argc, char **argv, int *i, const char *name, const char **value)
{
    size_t len = strlen(name);
    const char *arg = argv[*i];
    if (strncmp(arg, name, len) != 0)
        return 0;
    if (arg[len] == '=') {
        *value = arg + len + 1;
        return 1;
    }
    if (arg[len] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return REEL_EUSAGE;
    *value = argv[++*i];
    return 1;
}

int tool_log_open_ro(const char *cmd, const char *data_dir, reel_log_t **out)
{
    char log_dir[PATH_MAX], err[512] = "";
    reel_log_options_t lo = {.read_only = true};
    *out = NULL;
    if (reel_data_log_path(data_dir, log_dir, sizeof(log_dir)) != 0) {
        fprintf(stderr, "%s: %s: path too long\n", cmd, data_dir);
        return REEL_EUSAGE;
    }
    int rc = reel_log_open(log_dir, &lo, out, err, sizeof(err));
    if (rc != 0) {
        if (err[0] != '\0' && strstr(err, log_dir) != NULL) /* the message names it */
            fprintf(stderr, "%s: %s\n", cmd, err);
        else
            fprintf(stderr, "%s: %s: %s\n", cmd, log_dir, err[0] != '\0' ? err : reel_strerror(rc));
        if (rc == REEL_ECORRUPT || rc == REEL_ECHAIN || rc == REEL_EMISSING)
            fprintf(stderr, "%s: run `reel verify --data %s` for a full report\n", cmd, data_dir);
    }
    return rc;
}

int tool_event_decode(const reel_record_t *rec, reel_event_t *ev)
{
    int rc = reel_event_decode(rec->type, rec->payload, rec->length, ev);
    if (rc != 0)
        return rc;
    ev->offset = rec->offset;
    ev->at = rec->time_ms;
    return 0;
}

int tool_parse_time_ms(const char *s, uint64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (tool_parse_u64(s, out) == 0)
        return 0;
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (end == NULL || (*end != '\0' && strcmp(end, "Z") != 0))
        return REEL_EUSAGE;
    time_t t = timegm(&tm);
    if (t < 0)
        return REEL_EUSAGE;
    *out = (uint64_t)t * 1000u;
    return 0;
}

uint64_t tool_day_of_ms(uint64_t ms)
{
    return ms / 86400000u;
}

void tool_day_name(uint64_t day, char *buf, size_t len)
{
    time_t secs = (time_t)(day * 86400u);
    struct tm tm;
    if (gmtime_r(&secs, &tm) == NULL || strftime(buf, len, "%Y-%m-%d", &tm) == 0)
        snprintf(buf, len, "?");
}

/* First drawn after this, then at most this often. */
#define PROGRESS_AFTER_NS 500000000ull
#define PROGRESS_EVERY_NS 250000000ull
#define PROGRESS_CALLS 256u

void tool_progress_start(tool_progress_t *p, const char *unit, uint64_t total)
{
    const char *env = getenv("REEL_PROGRESS");
    memset(p, 0, sizeof(*p));
    p->unit = unit;
    p->total = total;
    p->start_ns = reel_mono_ns();
    p->countdown = PROGRESS_CALLS;
    if (env != NULL && (strcmp(env, "1") == 0 || strcmp(env, "0") == 0))
        p->on = p->forced = env[0] == '1';
    else
        p->on = isatty(2) != 0;
}

/* 12345678 -> "12.3M", into buf. */
static void progress_num(double v, char *buf, size_t len)
{
    if (v >= 1e9)
        snprintf(buf, len, "%.2fG", v / 1e9);
    else if (v >= 1e6)
        snprintf(buf, len, "%.2fM", v / 1e6);
    else if (v >= 1e4)
        snprintf(buf, len, "%.1fk", v / 1e3);
    else
        snprintf(buf, len, "%.0f", v);
}

static void progress_line(tool_progress_t *p, uint64_t done, uint64_t now)
{
    char d[32], t[32], r[32], left[48] = "";
    p->last_ns = now;
    double secs = (double)(now - p->start_ns) / 1e9;
    double rate = secs > 0 ? (double)done / secs : 0;
    progress_num((double)done, d, sizeof(d));
    progress_num(rate, r, sizeof(r));
    if (p->total > 0) {
        uint64_t rest = done < p->total ? p->total - done : 0;
        progress_num((double)p->total, t, sizeof(t));
        if (rate > 0)
            snprintf(left, sizeof(left), ", %.0f s left", (double)rest / rate);
        fprintf(stderr, "\r  %s / %s %s (%3.0f%%), %s %s/s%s   ", d, t, p->unit,
                100.0 * (double)(done < p->total ? done : p->total) / (double)p->total, r,
                p->unit, left);
    } else {
        fprintf(stderr, "\r  %s %s, %s %s/s   ", d, p->unit, r, p->unit);
    }
}

void tool_progress_draw(tool_progress_t *p, uint64_t done)
{
    uint64_t now = reel_mono_ns();
    p->countdown = PROGRESS_CALLS;
    if (!p->on || (!p->forced && now - p->start_ns < PROGRESS_AFTER_NS) ||
        (p->last_ns != 0 && now - p->last_ns < PROGRESS_EVERY_NS))
        return;
    progress_line(p, done, now);
}

void tool_progress_end(tool_progress_t *p, uint64_t done)
{
    if (p->on && (p->last_ns != 0 || p->forced)) {
        progress_line(p, done, reel_mono_ns());
        fputs("\n", stderr);
    }
    p->on = false;
    p->last_ns = 0;
}
