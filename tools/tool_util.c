/*
 * tool_util.c: helpers of the read-only `reel` subcommands (tool_util.h).
 */
#include "tools/tool_util.h"
#include "engine/common.h"
#include "engine/datadir.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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
