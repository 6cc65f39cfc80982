/*
 * common.c: error names, the assert handler and byte-order helpers.
 */
#include "engine/common.h"

#include <execinfo.h>
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

void reel_store_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

void reel_store_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void reel_store_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

uint16_t reel_load_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

uint32_t reel_load_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

uint64_t reel_load_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
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
