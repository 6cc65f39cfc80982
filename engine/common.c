/*
 * common.c: error names, the assert handler and byte-order helpers.
 */
#include "engine/common.h"

#include <execinfo.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *reel_strerror(int err)
{
    if (err == 0)
        return "success";
    switch (err) {
#define REEL__MSG(name, value, msg) \
    case (value):                   \
        return msg;
        REEL_ERRNO_MAP(REEL__MSG)
#undef REEL__MSG
    default:
        break;
    }
    if (err < 0 && err > -4096)
        return strerror(-err);
    return "unknown error";
}

const char *reel_err_name(int err)
{
    switch (err) {
    case 0:
        return "OK";
#define REEL__NAME(name, value, msg) \
    case (value):                    \
        return #name;
        REEL_ERRNO_MAP(REEL__NAME)
#undef REEL__NAME
    case -EIO:
        return "EIO";
    case -ENOSPC:
        return "ENOSPC";
    case -EROFS:
        return "EROFS";
    case -EINVAL:
        return "EINVAL";
    case -ENOENT:
        return "ENOENT";
    case -ENOMEM:
        return "ENOMEM";
    case -EAGAIN:
        return "EAGAIN";
    default:
        return "ERROR";
    }
}

_Noreturn void reel__assert_fail(const char *expr, const char *file, int line, const char *func)
{
    void *frames[32];
    int depth;

    fprintf(stderr, "reeldb: assertion failed: %s (%s:%d, %s)\n", expr, file, line, func);
    depth = backtrace(frames, (int)REEL_ARRAY_LEN(frames));
    backtrace_symbols_fd(frames, depth, STDERR_FILENO);
    abort();
}

void reel_errf(char *buf, size_t len, const char *fmt, ...)
{
    if (buf == NULL || len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

uint64_t reel_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t reel_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
