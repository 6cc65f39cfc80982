/*
 * bench_tools.c: `reel bench tools` (issue 5). Registered ahead of its
 * measurements, which are being written: until then it says so and fails,
 * so that nobody mistakes it for a result.
 */
#include "tools/bench.h"

#include <stdio.h>

int reel_bench_tools(const reel_bench_ctx_t *ctx)
{
    (void)ctx;
    fprintf(stderr, "reel bench tools: not written yet (issue 5)\n");
    return 2;
}
