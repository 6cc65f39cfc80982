/*
 * test_io_fault.c: the fault backend itself (engine/io_fault.h).
 *
 * Each test works in its own scratch directory with the sync backend as the
 * inner one, and checks the real files afterwards with plain libc reads, so
 * the fault layer never vouches for itself. What is checked: durable data
 * survives every crash mode; unsynced data is rolled back (LOSE), torn at
 * sector granularity (SECTORS, TORN) deterministically per seed; names
 * need a directory fsync; each kind of injected failure; crash_at_op at
 * every point of a small workload; and that the dead backend touches
 * nothing.
 */
#include "engine/common.h"
#include "engine/io.h"
#include "engine/io_fault.h"
#include "tests/harness.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECTOR REEL_FAULT_SECTOR_SIZE

/* One test's world: a scratch dir, the sync backend, the fault one on top. */
typedef struct env {
    char dir[256];           /* scratch directory, removed by env_close */
    reel_io_t *inner;        /* the sync backend */
    reel_fault_io_t *fault;  /* the backend under test */
    reel_io_t *io;           /* fault as a reel_io_t */
} env_t;

static void env_open(env_t *e, const char *tag)
{
    reel_test_tmpdir(e->dir, sizeof(e->dir), tag);
    cr_assert_eq(reel_io_sync_create(&e->inner), 0);
    cr_assert_eq(reel_io_fault_create(e->inner, &e->fault), 0);
    e->io = reel_io_fault_io(e->fault);
    cr_assert_str_eq(e->io->name, "fault");
}

static void env_close(env_t *e)
{
    reel_io_destroy(e->io);
    reel_io_destroy(e->inner);
    reel_test_rmtree(e->dir);
}

static void path_of(const env_t *e, const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", e->dir, name);
}

static int open_rw(env_t *e, const char *name, int extra)
{
    char path[512];
    path_of(e, name, path, sizeof(path));
    int fd = e->io->open(e->io, path, O_RDWR | O_CREAT | extra, 0644);
    cr_assert_geq(fd, 0, "open %s: %d", path, fd);
    return fd;
}

/* A file whose data and name are durable: len bytes of value byte. */
static void make_durable(env_t *e, const char *name, uint8_t byte, size_t len)
{
    uint8_t *buf = malloc(len);
    memset(buf, byte, len);
    int fd = open_rw(e, name, 0);
    cr_assert_eq(e->io->write_durable(e->io, fd, buf, len, 0), 0);
    cr_assert_eq(e->io->close(e->io, fd), 0);
    cr_assert_eq(reel_io_fsync_dir(e->io, e->dir), 0);
    free(buf);
}

static void write_byte(env_t *e, int fd, uint8_t byte, size_t len, uint64_t off, int want)
{
    uint8_t *buf = malloc(len);
    memset(buf, byte, len);
    cr_assert_eq(e->io->write(e->io, fd, buf, len, off), want);
    free(buf);
}

/* Reads the real file; returns its length, or -1 when it does not exist. */
static long slurp(const env_t *e, const char *name, uint8_t **data)
{
    char path[512];
    size_t len = 0;
    path_of(e, name, path, sizeof(path));
    *data = NULL;
    if (reel_test_read_file(path, data, &len) < 0)
        return -1;
    return (long)len;
}

static int exists(const env_t *e, const char *name)
{
    char path[512];
    struct stat st;
    path_of(e, name, path, sizeof(path));
    return stat(path, &st) == 0;
}

static int all_bytes(const uint8_t *p, size_t len, uint8_t byte)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] != byte)
            return 0;
    }
    return 1;
}

static void expect_file(const env_t *e, const char *name, uint8_t byte, long len)
{
    uint8_t *data;
    long got = slurp(e, name, &data);
    cr_assert_eq(got, len, "%s: %ld bytes, want %ld", name, got, len);
    cr_assert(all_bytes(data, (size_t)len, byte), "%s: not all 0x%02x", name, byte);
    free(data);
}

static void expect_bytes(const env_t *e, const char *name, const void *want, long len)
{
    uint8_t *data;
    long got = slurp(e, name, &data);
    cr_assert_eq(got, len, "%s: %ld bytes, want %ld", name, got, len);
    cr_assert_eq(memcmp(data, want, (size_t)len), 0, "%s: bytes differ", name);
    free(data);
}

/* ------------------------------------------------------------------ */

Test(io_fault, durable_write_survives_every_mode)
{
    for (int mode = 0; mode <= REEL_FAULT_CRASH_TORN; mode++) {
        env_t e;
        env_open(&e, "fault");
        make_durable(&e, "wd", 'w', 8192); /* write_durable */
        int fd = open_rw(&e, "ds", 0);     /* write + datasync */
        write_byte(&e, fd, 'd', 8192, 0, 0);
        cr_assert_eq(e.io->datasync(e.io, fd), 0);
        cr_assert_eq(reel_io_fsync_dir(e.io, e.dir), 0);
        reel_fault_stats_t st;
        reel_io_fault_stats(e.fault, &st);
        cr_assert_eq(st.undo_records, 0);
        cr_assert_eq(st.ns_pending, 0);
        cr_assert_eq(reel_io_fault_crash(e.fault, 99, (reel_fault_crash_mode_t)mode), 0);
        cr_assert_eq(e.io->close(e.io, fd), 0);
        expect_file(&e, "wd", 'w', 8192);
        expect_file(&e, "ds", 'd', 8192);
        env_close(&e);
    }
}

Test(io_fault, unsynced_writes_lost_or_kept)
{
    for (int keep = 0; keep <= 1; keep++) {
        env_t e;
        env_open(&e, "fault");
        make_durable(&e, "f", 'o', 8192);
        int fd = open_rw(&e, "f", 0);
        write_byte(&e, fd, 'n', 8192, 0, 0);    /* overwrite */
        write_byte(&e, fd, 'n', 4096, 8192, 0); /* and grow */
        uint8_t b = 0;
        cr_assert_eq(e.io->read(e.io, fd, &b, 1, 100), 1);
        cr_assert_eq(b, 'n', "the page cache sees the write before the crash");
        reel_fault_crash_mode_t mode =
            keep ? REEL_FAULT_CRASH_KEEP_UNSYNCED : REEL_FAULT_CRASH_LOSE_UNSYNCED;
        cr_assert_eq(reel_io_fault_crash(e.fault, 1, mode), 0);
        e.io->close(e.io, fd);
        if (keep)
            expect_file(&e, "f", 'n', 12288);
        else
            expect_file(&e, "f", 'o', 8192);
        env_close(&e);
    }
}

/* Runs "64 durable sectors of 'o', then an unsynced write of 'n' over them
 * and 16 sectors past the end", crashes, and returns the file. */
static long torn_run(uint64_t seed, reel_fault_crash_mode_t mode, uint8_t **data)
{
    env_t e;
    env_open(&e, "torn");
    make_durable(&e, "f", 'o', 64 * SECTOR);
    int fd = open_rw(&e, "f", 0);
    write_byte(&e, fd, 'n', 80 * SECTOR, 0, 0);
    cr_assert_eq(reel_io_fault_crash(e.fault, seed, mode), 0);
    e.io->close(e.io, fd);
    long len = slurp(&e, "f", data);
    env_close(&e);
    return len;
}

/* Counts sectors by what they hold: [0] old, [1] new, [2] zeros, [3] other. */
static void classify(const uint8_t *data, long len, int counts[4])
{
    memset(counts, 0, 4 * sizeof(int));
    for (long s = 0; s < len / SECTOR; s++) {
        const uint8_t *p = data + s * SECTOR;
        if (all_bytes(p, SECTOR, 'o'))
            counts[0]++;
        else if (all_bytes(p, SECTOR, 'n'))
            counts[1]++;
        else if (all_bytes(p, SECTOR, 0))
            counts[2]++;
        else
            counts[3]++;
    }
}

Test(io_fault, sectors_mode_gives_old_or_new_per_sector)
{
    uint8_t *data;
    long len = torn_run(7, REEL_FAULT_CRASH_SECTORS, &data);
    cr_assert_geq(len, 64 * SECTOR);
    cr_assert_leq(len, 80 * SECTOR);
    cr_assert_eq(len % SECTOR, 0, "growth is cut at a sector boundary");
    int c[4];
    classify(data, 64 * SECTOR, c);
    cr_assert_eq(c[0] + c[1], 64, "each old sector is old or new: %d %d %d %d", c[0], c[1],
                 c[2], c[3]);
    cr_assert_gt(c[0], 0);
    cr_assert_gt(c[1], 0);
    classify(data + 64 * SECTOR, len - 64 * SECTOR, c);
    cr_assert_eq(c[1] + c[2], (int)(len / SECTOR) - 64, "grown sectors are new or a hole");
    free(data);
}

Test(io_fault, growth_may_be_cut_back)
{
    int cut = 0, whole = 0;
    for (uint64_t seed = 1; seed <= 16; seed++) {
        uint8_t *data;
        long len = torn_run(seed, REEL_FAULT_CRASH_SECTORS, &data);
        cr_assert_eq(len % SECTOR, 0);
        cut += len < 80 * SECTOR;
        whole += len == 80 * SECTOR;
        free(data);
    }
    cr_assert_gt(cut, 0, "some seeds lose part of the growth");
    cr_assert_gt(whole, 0, "some seeds keep all of it");
}

Test(io_fault, torn_mode_is_sector_granular_and_deterministic)
{
    uint8_t *a, *b, *c;
    long len_a = torn_run(1234, REEL_FAULT_CRASH_TORN, &a);
    long len_b = torn_run(1234, REEL_FAULT_CRASH_TORN, &b);
    long len_c = torn_run(4321, REEL_FAULT_CRASH_TORN, &c);
    cr_assert_eq(len_a, len_b);
    cr_assert_eq(memcmp(a, b, (size_t)len_a), 0, "same seed, same bytes");
    cr_assert(len_a != len_c || memcmp(a, c, (size_t)len_a) != 0, "another seed differs");
    int n[4];
    classify(a, 64 * SECTOR, n);
    cr_assert_gt(n[0], 0, "some sectors old");
    cr_assert_gt(n[1], 0, "some sectors new");
    cr_assert_gt(n[2] + n[3], 0, "some sectors zeroed or garbage");
    free(a);
    free(b);
    free(c);
}

Test(io_fault, unaligned_write_tears_at_file_sectors)
{
    for (uint64_t seed = 1; seed <= 16; seed++) {
        env_t e;
        env_open(&e, "fault");
        make_durable(&e, "f", 'o', 4 * SECTOR);
        int fd = open_rw(&e, "f", 0);
        write_byte(&e, fd, 'n', 1000, 100, 0); /* pieces [100,512) [512,1024) [1024,1100) */
        cr_assert_eq(reel_io_fault_crash(e.fault, seed, REEL_FAULT_CRASH_SECTORS), 0);
        e.io->close(e.io, fd);
        uint8_t *d;
        cr_assert_eq(slurp(&e, "f", &d), 4 * SECTOR);
        cr_assert(all_bytes(d, 100, 'o'));
        cr_assert(all_bytes(d + 100, 412, d[100]), "piece 1 is whole");
        cr_assert(all_bytes(d + 512, 512, d[512]), "piece 2 is whole");
        cr_assert(all_bytes(d + 1024, 76, d[1024]), "piece 3 is whole");
        cr_assert(all_bytes(d + 1100, 4 * SECTOR - 1100, 'o'));
        free(d);
        env_close(&e);
    }
}

/* ------------------------------------------------------------------ */
/* Names                                                                */
/* ------------------------------------------------------------------ */

Test(io_fault, created_file_needs_dir_fsync)
{
    for (int synced = 0; synced <= 1; synced++) {
        env_t e;
        env_open(&e, "fault");
        int fd = open_rw(&e, "new", 0);
        cr_assert_eq(e.io->write_durable(e.io, fd, "hello", 5, 0), 0);
        if (synced)
            cr_assert_eq(reel_io_fsync_dir(e.io, e.dir), 0);
        cr_assert_eq(reel_io_fault_crash(e.fault, 5, REEL_FAULT_CRASH_LOSE_UNSYNCED), 0);
        e.io->close(e.io, fd);
        cr_assert_eq(exists(&e, "new"), synced, "synced=%d", synced);
        if (synced)
            expect_bytes(&e, "new", "hello", 5);
        env_close(&e);
    }
}

Test(io_fault, created_file_may_vanish_in_torn_mode)
{
    int seen[2] = {0, 0};
    for (uint64_t seed = 1; seed <= 32; seed++) {
        env_t e;
        env_open(&e, "fault");
        int fd = open_rw(&e, "new", 0);
        cr_assert_eq(e.io->write_durable(e.io, fd, "hello", 5, 0), 0);
        cr_assert_eq(reel_io_fault_crash(e.fault, seed, REEL_FAULT_CRASH_TORN), 0);
        e.io->close(e.io, fd);
        int there = exists(&e, "new");
        seen[there]++;
        if (there)
            expect_bytes(&e, "new", "hello", 5); /* its data was durable */
        env_close(&e);
    }
    cr_assert_gt(seen[0], 0, "vanished for some seeds");
    cr_assert_gt(seen[1], 0, "kept for some seeds");
}

static void do_rename(env_t *e, const char *from, const char *to, int want)
{
    char a[512], b[512];
    path_of(e, from, a, sizeof(a));
    path_of(e, to, b, sizeof(b));
    cr_assert_eq(e->io->rename(e->io, a, b), want);
}

Test(io_fault, rename_needs_dir_fsync)
{
    for (int synced = 0; synced <= 1; synced++) {
        env_t e;
        env_open(&e, "fault");
        make_durable(&e, "a", 'a', 1000);
        do_rename(&e, "a", "c", 0);
        if (synced)
            cr_assert_eq(reel_io_fsync_dir(e.io, e.dir), 0);
        cr_assert_eq(reel_io_fault_crash(e.fault, 3, REEL_FAULT_CRASH_LOSE_UNSYNCED), 0);
        cr_assert_eq(exists(&e, "a"), !synced);
        cr_assert_eq(exists(&e, "c"), synced);
        expect_file(&e, synced ? "c" : "a", 'a', 1000);
        env_close(&e);
    }
}

Test(io_fault, rename_over_a_file_is_reverted)
{
    env_t e;
    env_open(&e, "fault");
    make_durable(&e, "a", 'a', 1000);
    make_durable(&e, "b", 'b', 3000);
    do_rename(&e, "a", "b", 0);
    expect_file(&e, "b", 'a', 1000);
    cr_assert_eq(reel_io_fault_crash(e.fault, 3, REEL_FAULT_CRASH_LOSE_UNSYNCED), 0);
    expect_file(&e, "a", 'a', 1000);
    expect_file(&e, "b", 'b', 3000);
    env_close(&e);
}

Test(io_fault, unlink_needs_dir_fsync)
{
    for (int synced = 0; synced <= 1; synced++) {
        env_t e;
        char path[512];
        env_open(&e, "fault");
        make_durable(&e, "u", 'u', 70000); /* more than one copy chunk */
        path_of(&e, "u", path, sizeof(path));
        cr_assert_eq(chmod(path, 0600), 0);
        cr_assert_eq(e.io->unlink(e.io, path), 0);
        cr_assert_not(exists(&e, "u"));
        if (synced)
            cr_assert_eq(reel_io_fsync_dir(e.io, e.dir), 0);
        cr_assert_eq(reel_io_fault_crash(e.fault, 3, REEL_FAULT_CRASH_LOSE_UNSYNCED), 0);
        cr_assert_eq(exists(&e, "u"), !synced);
        if (!synced) {
            struct stat st;
            expect_file(&e, "u", 'u', 70000);
            cr_assert_eq(stat(path, &st), 0);
            cr_assert_eq(st.st_mode & 07777, 0600, "the mode comes back too");
        }
        env_close(&e);
    }
}

Test(io_fault, truncate_is_undone_until_synced)
{
    for (int synced = 0; synced <= 1; synced++) {
        env_t e;
        env_open(&e, "fault");
        make_durable(&e, "t", 't', 8192);
        int fd = open_rw(&e, "t", 0);
        cr_assert_eq(e.io->truncate(e.io, fd, 1000), 0);
        cr_assert_eq(e.io->truncate(e.io, fd, 20000), 0);
        if (synced)
            cr_assert_eq(e.io->datasync(e.io, fd), 0);
        cr_assert_eq(reel_io_fault_crash(e.fault, 3, REEL_FAULT_CRASH_LOSE_UNSYNCED), 0);
        e.io->close(e.io, fd);
        if (synced) {
            uint8_t *d;
            cr_assert_eq(slurp(&e, "t", &d), 20000);
            cr_assert(all_bytes(d, 1000, 't'));
            cr_assert(all_bytes(d + 1000, 19000, 0));
            free(d);
        } else {
            expect_file(&e, "t", 't', 8192);
        }
        env_close(&e);
    }
}

Test(io_fault, open_with_o_trunc_is_undone)
{
    env_t e;
    env_open(&e, "fault");
    make_durable(&e, "t", 't', 5000);
    int fd = open_rw(&e, "t", O_TRUNC);
    expect_file(&e, "t", 0, 0);
    cr_assert_eq(reel_io_fault_crash(e.fault, 3, REEL_FAULT_CRASH_LOSE_UNSYNCED), 0);
    e.io->close(e.io, fd);
    expect_file(&e, "t", 't', 5000);
    env_close(&e);
}

/* ------------------------------------------------------------------ */
/* Rules                                                                */
/* ------------------------------------------------------------------ */

Test(io_fault, eio_on_write_n)
{
    env_t e;
    env_open(&e, "fault");
    int fd = open_rw(&e, "f", 0);
    reel_fault_rule_t rule = {.ops = REEL_FAULT_OP_WRITE, .at_op = 2};
    int slot = reel_io_fault_set(e.fault, &rule);
    cr_assert_geq(slot, 0);
    write_byte(&e, fd, '1', 100, 0, 0);
    write_byte(&e, fd, '2', 100, 100, -EIO);
    write_byte(&e, fd, '3', 100, 200, 0);
    cr_assert_eq(reel_io_fault_fired(e.fault, slot), 1);
    uint8_t *d;
    cr_assert_eq(slurp(&e, "f", &d), 300);
    cr_assert(all_bytes(d, 100, '1'));
    cr_assert(all_bytes(d + 100, 100, 0), "the failed write touched nothing");
    cr_assert(all_bytes(d + 200, 100, '3'));
    free(d);
    e.io->close(e.io, fd);
    env_close(&e);
}

Test(io_fault, enospc_after_op_and_erofs_on_nth_rename)
{
    env_t e;
    env_open(&e, "fault");
    int fd = open_rw(&e, "f", 0);
    reel_fault_rule_t full = {.ops = REEL_FAULT_OP_ANY_WRITE, .err = ENOSPC, .after_op = 2};
    reel_fault_rule_t ro = {.ops = REEL_FAULT_OP_RENAME, .err = EROFS, .nth = 2};
    cr_assert_eq(reel_io_fault_set(e.fault, &full), 0);
    cr_assert_eq(reel_io_fault_set(e.fault, &ro), 1);
    write_byte(&e, fd, 'x', 10, 0, 0);  /* op 1 */
    write_byte(&e, fd, 'x', 10, 10, 0); /* op 2 */
    write_byte(&e, fd, 'x', 10, 20, -ENOSPC);
    cr_assert_eq(e.io->write_durable(e.io, fd, "y", 1, 30), -ENOSPC);
    cr_assert_eq(e.io->datasync(e.io, fd), 0, "the rule is for writes only");
    do_rename(&e, "f", "g", 0);       /* first rename */
    do_rename(&e, "g", "h", -EROFS); /* second rename */
    cr_assert(exists(&e, "g"));
    cr_assert_not(exists(&e, "h"));
    do_rename(&e, "g", "h", 0);
    reel_fault_stats_t st;
    reel_io_fault_stats(e.fault, &st);
    cr_assert_eq(st.faults, 3);
    e.io->close(e.io, fd);
    env_close(&e);
}

/* Returns a bit per write of 64: whether it failed under a 30% rule. */
static uint64_t chance_pattern(uint64_t seed)
{
    env_t e;
    env_open(&e, "fault");
    reel_fault_rule_t rule = {.ops = REEL_FAULT_OP_WRITE, .chance_ppm = 300000, .seed = seed};
    cr_assert_eq(reel_io_fault_set(e.fault, &rule), 0);
    int fd = open_rw(&e, "f", 0);
    uint64_t failed = 0;
    for (int i = 0; i < 64; i++) {
        int rc = e.io->write(e.io, fd, "z", 1, (uint64_t)i);
        cr_assert(rc == 0 || rc == -EIO);
        failed |= (uint64_t)(rc < 0) << i;
    }
    e.io->close(e.io, fd);
    env_close(&e);
    return failed;
}

Test(io_fault, chance_is_seeded)
{
    uint64_t a = chance_pattern(42);
    cr_assert_eq(a, chance_pattern(42), "same seed, same failures");
    cr_assert_neq(a, chance_pattern(43));
    int n = __builtin_popcountll(a);
    cr_assert(n >= 8 && n <= 32, "about 30%% of 64 failed: %d", n);
}

Test(io_fault, short_write_writes_a_prefix_and_fails)
{
    env_t e;
    env_open(&e, "fault");
    make_durable(&e, "f", 'o', 4096);
    int fd = open_rw(&e, "f", 0);
    reel_fault_rule_t rule = {.ops = REEL_FAULT_OP_ANY_WRITE, .action = REEL_FAULT_SHORT,
                              .nth = 1, .short_bytes = 1000};
    reel_fault_rule_t half = {.ops = REEL_FAULT_OP_WRITE_DURABLE, .action = REEL_FAULT_SHORT};
    cr_assert_eq(reel_io_fault_set(e.fault, &rule), 0);
    write_byte(&e, fd, 'n', 4096, 0, -EIO);
    uint8_t *d;
    cr_assert_eq(slurp(&e, "f", &d), 4096);
    cr_assert(all_bytes(d, 1000, 'n'));
    cr_assert(all_bytes(d + 1000, 3096, 'o'));
    free(d);
    reel_io_fault_clear(e.fault);
    cr_assert_eq(reel_io_fault_set(e.fault, &half), 0);
    uint8_t buf[4096];
    memset(buf, 'h', sizeof(buf));
    cr_assert_eq(e.io->write_durable(e.io, fd, buf, sizeof(buf), 4096), -EIO);
    cr_assert_eq(slurp(&e, "f", &d), 4096 + 2048, "half of it reached the file");
    free(d);
    /* Nothing of either was synced: a crash takes it all back. */
    cr_assert_eq(reel_io_fault_crash(e.fault, 1, REEL_FAULT_CRASH_LOSE_UNSYNCED), 0);
    e.io->close(e.io, fd);
    expect_file(&e, "f", 'o', 4096);
    env_close(&e);
}

Test(io_fault, failed_datasync_keeps_changes_pending)
{
    for (int retry = 0; retry <= 1; retry++) {
        env_t e;
        env_open(&e, "fault");
        make_durable(&e, "f", 'o', 4096);
        int fd = open_rw(&e, "f", 0);
        reel_fault_rule_t rule = {.ops = REEL_FAULT_OP_DATASYNC, .nth = 1};
        cr_assert_eq(reel_io_fault_set(e.fault, &rule), 0);
        write_byte(&e, fd, 'n', 4096, 0, 0);
        cr_assert_eq(e.io->datasync(e.io, fd), -EIO);
        expect_file(&e, "f", 'n', 4096); /* still in the cache */
        if (retry)
            cr_assert_eq(e.io->datasync(e.io, fd), 0); /* a forgiving kernel */
        cr_assert_eq(reel_io_fault_crash(e.fault, 1, REEL_FAULT_CRASH_LOSE_UNSYNCED), 0);
        e.io->close(e.io, fd);
        expect_file(&e, "f", retry ? 'n' : 'o', 4096);
        env_close(&e);
    }
}

Test(io_fault, fail_lose_is_fsyncgate)
{
    env_t e;
    env_open(&e, "fault");
    make_durable(&e, "f", 'o', 4096);
    int fd = open_rw(&e, "f", 0);
    reel_fault_rule_t rule = {.ops = REEL_FAULT_OP_ANY_SYNC, .action = REEL_FAULT_FAIL_LOSE,
                              .fire_max = 2};
    cr_assert_eq(reel_io_fault_set(e.fault, &rule), 0);
    write_byte(&e, fd, 'n', 4096, 0, 0);
    cr_assert_eq(e.io->datasync(e.io, fd), -EIO);
    expect_file(&e, "f", 'o', 4096); /* the pages were dropped */
    cr_assert_eq(e.io->datasync(e.io, fd), -EIO); /* fire 2: nothing pending */
    cr_assert_eq(e.io->datasync(e.io, fd), 0, "a retry succeeds ...");
    expect_file(&e, "f", 'o', 4096); /* ... and the data is gone anyway */
    reel_io_fault_clear(e.fault);
    cr_assert_eq(reel_io_fault_set(e.fault, &rule), 0);
    uint8_t buf[100];
    memset(buf, 'w', sizeof(buf));
    cr_assert_eq(e.io->write_durable(e.io, fd, buf, sizeof(buf), 4096), -EIO);
    expect_file(&e, "f", 'o', 4096);
    e.io->close(e.io, fd);
    env_close(&e);
}

Test(io_fault, dropped_write_and_lying_datasync)
{
    env_t e;
    env_open(&e, "fault");
    make_durable(&e, "f", 'o', 4096);
    int fd = open_rw(&e, "f", 0);
    reel_fault_rule_t drop_w = {.ops = REEL_FAULT_OP_WRITE, .action = REEL_FAULT_DROP,
                                .fire_max = 1};
    reel_fault_rule_t drop_s = {.ops = REEL_FAULT_OP_DATASYNC, .action = REEL_FAULT_DROP};
    cr_assert_eq(reel_io_fault_set(e.fault, &drop_w), 0);
    cr_assert_eq(reel_io_fault_set(e.fault, &drop_s), 1);
    write_byte(&e, fd, 'n', 4096, 0, 0); /* "succeeds" */
    expect_file(&e, "f", 'o', 4096);
    write_byte(&e, fd, 'm', 4096, 0, 0); /* really written */
    cr_assert_eq(e.io->datasync(e.io, fd), 0); /* but the disk lies */
    expect_file(&e, "f", 'm', 4096);
    cr_assert_eq(reel_io_fault_crash(e.fault, 1, REEL_FAULT_CRASH_LOSE_UNSYNCED), 0);
    e.io->close(e.io, fd);
    expect_file(&e, "f", 'o', 4096);
    env_close(&e);
}

Test(io_fault, rule_table_is_bounded_and_checked)
{
    env_t e;
    env_open(&e, "fault");
    reel_fault_rule_t rule = {.ops = REEL_FAULT_OP_FSYNC, .at_op = 1000};
    for (unsigned i = 0; i < REEL_FAULT_RULES_MAX; i++)
        cr_assert_eq(reel_io_fault_set(e.fault, &rule), (int)i);
    cr_assert_eq(reel_io_fault_set(e.fault, &rule), -ENOBUFS);
    reel_io_fault_clear(e.fault);
    reel_fault_rule_t bad_ops = {.ops = 1u << 20};
    reel_fault_rule_t bad_err = {.err = -5};
    reel_fault_rule_t bad_act = {.action = (reel_fault_action_t)9};
    cr_assert_eq(reel_io_fault_set(e.fault, &bad_ops), -EINVAL);
    cr_assert_eq(reel_io_fault_set(e.fault, &bad_err), -EINVAL);
    cr_assert_eq(reel_io_fault_set(e.fault, &bad_act), -EINVAL);
    cr_assert_eq(reel_io_fault_set(e.fault, &rule), 0);
    cr_assert_eq(reel_io_fault_fired(e.fault, 0), 0);
    cr_assert_eq(reel_io_fault_fired(e.fault, 99), 0);
    env_close(&e);
}

/* ------------------------------------------------------------------ */
/* Crash points                                                         */
/* ------------------------------------------------------------------ */

/* A small durable workload: create a log, make its name durable, append
 * three acknowledged blocks, then rename it durably. Sets *acked to the
 * number of steps acknowledged; returns 0 or the first error. */
static int workload(env_t *e, int *acked)
{
    char log[512], log2[512];
    uint8_t buf[4096];
    path_of(e, "log", log, sizeof(log));
    path_of(e, "log2", log2, sizeof(log2));
    *acked = 0;
    int fd = e->io->open(e->io, log, O_RDWR | O_CREAT, 0644);
    if (fd < 0)
        return fd;
    int rc = reel_io_fsync_dir(e->io, e->dir); /* op 1 */
    for (int i = 0; rc == 0 && i < 3; i++) {
        memset(buf, 'a' + i, sizeof(buf));
        if (i < 2) { /* ops 2-5: write + datasync */
            rc = e->io->write(e->io, fd, buf, sizeof(buf), (uint64_t)i * sizeof(buf));
            rc = rc < 0 ? rc : e->io->datasync(e->io, fd);
        } else { /* op 6 */
            rc = e->io->write_durable(e->io, fd, buf, sizeof(buf), (uint64_t)i * sizeof(buf));
        }
        *acked += rc == 0;
    }
    rc = rc < 0 ? rc : e->io->rename(e->io, log, log2); /* op 7 */
    rc = rc < 0 ? rc : reel_io_fsync_dir(e->io, e->dir); /* op 8 */
    *acked += rc == 0;
    e->io->close(e->io, fd);
    return rc;
}

/* What survived a crash after `acked` acknowledged steps. */
static void check_recovered(const env_t *e, int acked)
{
    int at_old = exists(e, "log"), at_new = exists(e, "log2");
    cr_assert(!(at_old && at_new), "one name only");
    if (acked == 0)
        return; /* not even the name was durable */
    cr_assert(at_old || at_new, "the durable name survived (acked %d)", acked);
    if (acked == 4)
        cr_assert(at_new, "the durable rename survived");
    uint8_t *d;
    long len = slurp(e, at_new ? "log2" : "log", &d);
    cr_assert_geq(len, (long)(acked > 3 ? 3 : acked) * 4096);
    for (int i = 0; i < acked && i < 3; i++)
        cr_assert(all_bytes(d + i * 4096, 4096, (uint8_t)('a' + i)), "block %d", i);
    free(d);
}

Test(io_fault, crash_at_every_op_of_a_workload)
{
    env_t e;
    int acked;
    env_open(&e, "fault");
    cr_assert_eq(workload(&e, &acked), 0);
    cr_assert_eq(acked, 4);
    reel_fault_stats_t st;
    reel_io_fault_stats(e.fault, &st);
    env_close(&e);
    cr_assert_eq(st.ops, 8, "the workload has 8 numbered ops");
    for (uint64_t n = 1; n <= st.ops; n++) {
        for (int mode = 0; mode <= REEL_FAULT_CRASH_TORN; mode++) {
            env_open(&e, "crashat");
            cr_assert_eq(reel_io_fault_crash_at(e.fault, n, n * 31 + (uint64_t)mode,
                                                (reel_fault_crash_mode_t)mode), 0);
            cr_assert_eq(workload(&e, &acked), -EIO, "op %lu", (unsigned long)n);
            reel_fault_stats_t s;
            reel_io_fault_stats(e.fault, &s);
            cr_assert_eq(s.crashed, 1);
            cr_assert_eq(s.crashed_at_op, n);
            cr_assert_eq(s.crash_err, 0);
            cr_assert_eq(s.ops, n, "nothing is numbered after the crash");
            check_recovered(&e, acked);
            env_close(&e);
        }
    }
}

Test(io_fault, crash_at_rejects_the_past)
{
    env_t e;
    env_open(&e, "fault");
    int fd = open_rw(&e, "f", 0);
    write_byte(&e, fd, 'x', 10, 0, 0);
    cr_assert_eq(reel_io_fault_crash_at(e.fault, 1, 0, REEL_FAULT_CRASH_TORN), -EINVAL);
    cr_assert_eq(reel_io_fault_crash_at(e.fault, 2, 0, (reel_fault_crash_mode_t)77), -EINVAL);
    cr_assert_eq(reel_io_fault_crash_at(e.fault, 0, 0, REEL_FAULT_CRASH_TORN), 0);
    e.io->close(e.io, fd);
    env_close(&e);
}

Test(io_fault, dead_backend_touches_nothing)
{
    env_t e;
    char path[512], other[512];
    env_open(&e, "fault");
    make_durable(&e, "f", 'o', 1000);
    path_of(&e, "f", path, sizeof(path));
    path_of(&e, "g", other, sizeof(other));
    int fd = open_rw(&e, "f", 0);
    cr_assert_eq(reel_io_fault_crash(e.fault, 1, REEL_FAULT_CRASH_TORN), 0);
    cr_assert_eq(reel_io_fault_crash(e.fault, 2, REEL_FAULT_CRASH_TORN), 0, "idempotent");
    reel_fault_stats_t before, after;
    reel_io_fault_stats(e.fault, &before);
    uint8_t b[10] = {0};
    cr_assert_eq(e.io->write(e.io, fd, "xx", 2, 0), -EIO);
    cr_assert_eq(e.io->write_durable(e.io, fd, "xx", 2, 0), -EIO);
    cr_assert_eq(e.io->read(e.io, fd, b, sizeof(b), 0), -EIO);
    cr_assert_eq(e.io->datasync(e.io, fd), -EIO);
    cr_assert_eq(e.io->fsync(e.io, fd), -EIO);
    cr_assert_eq(e.io->truncate(e.io, fd, 0), -EIO);
    cr_assert_eq(e.io->rename(e.io, path, other), -EIO);
    cr_assert_eq(e.io->unlink(e.io, path), -EIO);
    cr_assert_eq(e.io->open(e.io, other, O_RDWR | O_CREAT, 0644), -EIO);
    cr_assert_eq(reel_io_fsync_dir(e.io, e.dir), -EIO);
    cr_assert_eq(e.io->close(e.io, fd), 0, "close still closes");
    reel_io_fault_stats(e.fault, &after);
    cr_assert_eq(after.ops, before.ops);
    expect_file(&e, "f", 'o', 1000);
    cr_assert_not(exists(&e, "g"));
    env_close(&e);
}

Test(io_fault, misuse_is_refused)
{
    env_t e;
    char path[512];
    env_open(&e, "fault");
    path_of(&e, "f", path, sizeof(path));
    cr_assert_eq(e.io->open(e.io, path, O_WRONLY | O_CREAT | O_APPEND, 0644), -EINVAL);
    int raw = open(path, O_RDWR | O_CREAT, 0644); /* not through the backend */
    cr_assert_geq(raw, 0);
    cr_assert_eq(e.io->write(e.io, raw, "x", 1, 0), -EBADF);
    cr_assert_eq(e.io->datasync(e.io, raw), -EBADF);
    close(raw);
    env_close(&e);
}

Test(io_fault, undo_bytes_are_bounded)
{
    env_t e;
    env_open(&e, "fault");
    make_durable(&e, "f", 'o', 16384);
    cr_assert_eq(reel_io_fault_limit_undo(e.fault, 0), -EINVAL);
    cr_assert_eq(reel_io_fault_limit_undo(e.fault, 8192), 0);
    int fd = open_rw(&e, "f", 0);
    write_byte(&e, fd, 'a', 4096, 0, 0);          /* 4096 old bytes held */
    write_byte(&e, fd, 'b', 8192, 4096, -ENOMEM); /* would hold 12288 */
    write_byte(&e, fd, 'c', 65536, 16384, 0);     /* growth holds no old bytes */
    uint8_t *d;
    cr_assert_eq(slurp(&e, "f", &d), 16384 + 65536);
    cr_assert(all_bytes(d, 4096, 'a'));
    cr_assert(all_bytes(d + 4096, 12288, 'o'), "the refused write changed nothing");
    free(d);
    reel_fault_stats_t st;
    reel_io_fault_stats(e.fault, &st);
    cr_assert_eq(st.undo_bytes, 4096);
    cr_assert_eq(st.undo_records, 2);
    cr_assert_eq(e.io->datasync(e.io, fd), 0); /* frees the records */
    write_byte(&e, fd, 'b', 8192, 4096, 0);
    e.io->close(e.io, fd);
    env_close(&e);
}

Test(io_fault, stats_count_each_kind)
{
    env_t e;
    char a[512], b[512];
    env_open(&e, "fault");
    path_of(&e, "a", a, sizeof(a));
    path_of(&e, "b", b, sizeof(b));
    int fd = open_rw(&e, "a", 0);
    uint8_t x[8] = {0};
    cr_assert_eq(e.io->write(e.io, fd, "1", 1, 0), 0);
    cr_assert_eq(e.io->write(e.io, fd, "2", 1, 1), 0);
    cr_assert_eq(e.io->write_durable(e.io, fd, "3", 1, 2), 0);
    cr_assert_eq(e.io->read(e.io, fd, x, sizeof(x), 0), 3); /* not numbered */
    cr_assert_eq(e.io->datasync(e.io, fd), 0);
    cr_assert_eq(e.io->fsync(e.io, fd), 0);
    cr_assert_eq(e.io->truncate(e.io, fd, 2), 0);
    cr_assert_eq(e.io->rename(e.io, a, b), 0);
    cr_assert_eq(e.io->unlink(e.io, b), 0);
    cr_assert_eq(reel_io_fsync_dir(e.io, e.dir), 0);
    e.io->close(e.io, fd);
    reel_fault_stats_t st;
    reel_io_fault_stats(e.fault, &st);
    cr_assert_eq(st.ops, 9);
    const uint64_t want[REEL_FAULT_OP_KINDS] = {2, 1, 1, 2, 1, 1, 1};
    for (unsigned i = 0; i < REEL_FAULT_OP_KINDS; i++)
        cr_assert_eq(st.ops_by_kind[i], want[i], "kind %u", i);
    cr_assert_eq(st.ns_pending, 0);
    cr_assert_eq(st.undo_records, 1, "the truncate after the last sync");
    cr_assert_eq(st.crashed, 0);
    env_close(&e);
}

/* One thread's share of the concurrency test: appends 512-byte blocks to
 * its own file, syncing every 7th, and records how many were synced. */
typedef struct worker {
    env_t *e;     /* shared world */
    int fd;       /* this worker's file */
    int synced;   /* blocks known durable */
    uint8_t byte; /* this worker's fill byte */
} worker_t;

static void *worker_run(void *arg)
{
    worker_t *w = arg;
    uint8_t buf[512];
    memset(buf, w->byte, sizeof(buf));
    for (int i = 0; i < 100; i++) {
        if (w->e->io->write(w->e->io, w->fd, buf, sizeof(buf), (uint64_t)i * 512) != 0)
            break;
        if (i % 7 == 6 && w->e->io->datasync(w->e->io, w->fd) == 0)
            w->synced = i + 1;
    }
    return NULL;
}

Test(io_fault, threads_share_one_backend)
{
    env_t e;
    env_open(&e, "fault");
    worker_t w[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof(name), "w%d", i);
        w[i] = (worker_t){.e = &e, .fd = open_rw(&e, name, 0), .byte = (uint8_t)('A' + i)};
    }
    cr_assert_eq(reel_io_fsync_dir(e.io, e.dir), 0);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    cr_assert_eq(reel_io_fault_crash(e.fault, 1, REEL_FAULT_CRASH_LOSE_UNSYNCED), 0);
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof(name), "w%d", i);
        cr_assert_eq(w[i].synced, 98);
        expect_file(&e, name, w[i].byte, (long)w[i].synced * 512);
        e.io->close(e.io, w[i].fd);
    }
    env_close(&e);
}
