/*
 * bench_tools.c: `reel bench tools` (issue 5): the tools that move many
 * events at once.
 *
 *   loadgen_data_events_per_s  `reel loadgen --data` (the log part: world
 *                              made, encoded, appended durably), events/s;
 *                              no baseline (the target is 500,000/s)
 *   export_jsonl_events_per_s  `reel export --format jsonl` of that world,
 *                              events/s; baseline: zstd decompression
 *                              (libzstd, what `zstd -d` runs) of the same
 *                              log's record bytes, compressed at level 3,
 *                              counted in the same events per second
 *
 * Each measurement runs ctx->rounds times, the median is kept; the
 * baseline rounds are interleaved with the export's.
 */
#include "tools/bench.h"
#include "tools/cmds.h"
#include "tools/loadgen.h"
#include "engine/common.h"
#include "engine/datadir.h"
#include "engine/log.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#define BT_ROUNDS_MAX 16u

static void world_opts(const reel_bench_ctx_t *ctx, lg_opts_t *o)
{
    lg_opts_default(o);
    o->events = ctx->quick ? 300000 : 2000000;
    o->users = ctx->quick ? 5000 : 50000;
    o->posts = ctx->quick ? 6000 : 40000;
}

/* loadgen straight to a fresh data directory, each round. */
static int bench_loadgen(const reel_bench_ctx_t *ctx, const char *world)
{
    double rate[BT_ROUNDS_MAX];
    uint32_t rounds = ctx->rounds < BT_ROUNDS_MAX ? ctx->rounds : BT_ROUNDS_MAX;
    lg_opts_t o;
    world_opts(ctx, &o);
    for (uint32_t r = 0; r < rounds; r++) {
        char dir[PATH_MAX], name[32];
        uint64_t log_ns, views_ns;
        snprintf(name, sizeof(name), "loadgen%u", r);
        if (reel_bench_mkdir(ctx->dir, name, dir, sizeof(dir)) != 0)
            return 2;
        if (lg_write_data(&o, dir, false, true, &log_ns, &views_ns) != 0)
            return 2;
        rate[r] = (double)o.events / ((double)log_ns / 1e9);
        if (r + 1 < rounds || world == NULL)
            reel_bench_cleanup(ctx, dir);
        else if (rename(dir, world) != 0)
            return 2;
    }
    reel_bench_emit("tools", "loadgen_data_events_per_s", reel_bench_median(rate, rounds),
                    "events/s", -1);
    return 0;
}

/* The log's records (header fields and payload) as one buffer, the bytes
 * zstd gets as the baseline. */
static int log_bytes(const char *world, uint8_t **out, size_t *len, uint64_t *events)
{
    char log_dir[PATH_MAX], err[256];
    reel_log_options_t lo = {.read_only = true};
    reel_log_t *log = NULL;
    reel_log_iter_t *it = NULL;
    reel_record_t rec;
    size_t cap = 64u << 20, used = 0;
    uint8_t *buf = malloc(cap);
    int rc = reel_data_log_path(world, log_dir, sizeof(log_dir));
    if (rc == 0 && buf != NULL)
        rc = reel_log_open(log_dir, &lo, &log, err, sizeof(err));
    if (rc == 0 && buf != NULL)
        rc = reel_log_iter_open(log, 0, &it);
    *events = 0;
    while (rc == 0 && buf != NULL && (rc = reel_log_iter_next(it, &rec)) == 0) {
        size_t need = REEL_RECORD_HEADER_SIZE + rec.length;
        if (used + need > cap) {
            uint8_t *p = realloc(buf, cap * 2);
            if (p == NULL)
                break;
            buf = p;
            cap *= 2;
        }
        memcpy(buf + used, &rec.offset, 8); /* the header's fields that vary */
        memcpy(buf + used + 8, &rec.time_ms, 8);
        memcpy(buf + used + 16, &rec.type, 2);
        memset(buf + used + 18, 0, REEL_RECORD_HEADER_SIZE - 18);
        memcpy(buf + used + REEL_RECORD_HEADER_SIZE, rec.payload, rec.length);
        used += need;
        (*events)++;
    }
    reel_log_iter_close(it);
    if (log != NULL)
        (void)reel_log_close(log);
    *out = buf;
    *len = used;
    return rc == REEL_EEND && buf != NULL ? 0 : (rc ? rc : -ENOMEM);
}

/* One export of the world into a fresh directory: its seconds. */
static double export_once(const reel_bench_ctx_t *ctx, const char *world, uint32_t r)
{
    char out[PATH_MAX], name[32];
    snprintf(name, sizeof(name), "export%u", r);
    if (reel_bench_mkdir(ctx->dir, name, out, sizeof(out)) != 0)
        return -1;
    char *argv[] = {"export", "--data", (char *)world, "--out", out, NULL};
    uint64_t t0 = reel_bench_now_ns();
    int rc = reel_cmd_export(5, argv);
    double secs = (double)(reel_bench_now_ns() - t0) / 1e9;
    reel_bench_cleanup(ctx, out);
    return rc == 0 ? secs : -1;
}

static int bench_export(const reel_bench_ctx_t *ctx, const char *world)
{
    double rate[BT_ROUNDS_MAX], base[BT_ROUNDS_MAX];
    uint32_t rounds = ctx->rounds < BT_ROUNDS_MAX ? ctx->rounds : BT_ROUNDS_MAX;
    uint8_t *raw = NULL;
    size_t len = 0;
    uint64_t events = 0;
    if (log_bytes(world, &raw, &len, &events) != 0 || events == 0) {
        fprintf(stderr, "reel bench tools: reading the world's log failed\n");
        free(raw);
        return 2;
    }
    size_t zcap = ZSTD_compressBound(len);
    uint8_t *z = malloc(zcap), *back = malloc(len);
    size_t zlen = z ? ZSTD_compress(z, zcap, raw, len, 3) : 0;
    int rc = z && back && !ZSTD_isError(zlen) ? 0 : 2;
    for (uint32_t r = 0; rc == 0 && r < rounds; r++) {
        uint64_t t0 = reel_bench_now_ns();
        size_t n = ZSTD_decompress(back, len, z, zlen);
        double zs = (double)(reel_bench_now_ns() - t0) / 1e9;
        if (ZSTD_isError(n) || n != len || memcmp(back, raw, len) != 0) {
            rc = 2;
            break;
        }
        base[r] = (double)events / zs;
        double es = export_once(ctx, world, r);
        if (es <= 0) {
            rc = 2;
            break;
        }
        rate[r] = (double)events / es;
    }
    if (rc == 0) {
        fprintf(stderr, "reel bench tools: export of %llu events (%zu record bytes, %zu as zstd)\n",
                (unsigned long long)events, len, zlen);
        reel_bench_emit("tools", "export_jsonl_events_per_s", reel_bench_median(rate, rounds),
                        "events/s", reel_bench_median(base, rounds));
    } else {
        fprintf(stderr, "reel bench tools: the export or its baseline failed\n");
    }
    free(raw);
    free(z);
    free(back);
    return rc;
}

int reel_bench_tools(const reel_bench_ctx_t *ctx)
{
    char world[PATH_MAX];
    int rc = 0;
    snprintf(world, sizeof(world), "%s/world", ctx->dir);
    bool want_export = reel_bench_want(ctx, "export");
    if (reel_bench_want(ctx, "loadgen") || want_export)
        rc = bench_loadgen(ctx, want_export ? world : NULL);
    if (rc == 0 && want_export)
        rc = bench_export(ctx, world);
    reel_bench_cleanup(ctx, world);
    return rc;
}
