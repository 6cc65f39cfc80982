/*
 * test_io.c: the storage backends of engine/io.h, each against the same
 * checks (as libuv's TEST_FS_IMPL runs one suite per implementation).
 *
 * Every check runs on the sync backend, on io_uring when this machine lets
 * us set it up (a sandbox with kernel.io_uring_disabled or seccomp answers
 * -EPERM or -ENOSYS, and that part is skipped with a message), and on the
 * fault backend over sync with no rules set, which must behave as its inner
 * backend does. Results are checked with plain libc, not with the backend.
 */
#include "engine/common.h"
#include "engine/io.h"
#include "engine/io_fault.h"
#include "tests/harness.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef void (*io_check_fn)(reel_io_t *io, const char *dir);

/* Runs check once per backend, each in a fresh scratch directory. */
static void for_each_backend(const char *tag, io_check_fn check)
{
    char dir[256];
    reel_io_t *io = NULL;
    cr_assert_eq(reel_io_sync_create(&io), 0);
    reel_test_tmpdir(dir, sizeof(dir), tag);
    check(io, dir);
    reel_test_rmtree(dir);

    reel_fault_io_t *fault = NULL;
    cr_assert_eq(reel_io_fault_create(io, &fault), 0);
    reel_test_tmpdir(dir, sizeof(dir), tag);
    check(reel_io_fault_io(fault), dir);
    reel_test_rmtree(dir);
    reel_io_fault_destroy(fault);
    reel_io_destroy(io);

    int rc = reel_io_uring_create(&io);
    if (rc == -EPERM || rc == -ENOSYS) {
        cr_log_warn("%s: io_uring unavailable here (%s): uring part skipped", tag,
                    reel_err_name(rc));
        return;
    }
    cr_assert_eq(rc, 0, "reel_io_uring_create: %d", rc);
    cr_assert_str_eq(io->name, "uring");
    reel_test_tmpdir(dir, sizeof(dir), tag);
    check(io, dir);
    reel_test_rmtree(dir);
    reel_io_destroy(io);
}

static int open_in(reel_io_t *io, const char *dir, const char *name, int flags)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = io->open(io, path, flags, 0644);
    cr_assert_geq(fd, 0, "%s: open %s: %d", io->name, path, fd);
    return fd;
}

static long file_size(const char *dir, const char *name)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return stat(path, &st) < 0 ? -1 : (long)st.st_size;
}

static void fill(uint8_t *buf, size_t len, uint64_t seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)reel_test_rand(&seed);
}

/* ------------------------------------------------------------------ */

static void check_write_durable(reel_io_t *io, const char *dir)
{
    enum { LEN = 3 * 4096 + 123 }; /* not a whole number of blocks */
    static uint8_t in[LEN], out[LEN];
    fill(in, LEN, 1);
    int fd = open_in(io, dir, "wd", O_RDWR | O_CREAT);
    cr_assert_eq(io->write_durable(io, fd, in, LEN, 0), 0, "%s", io->name);
    cr_assert_eq(io->write_durable(io, fd, in, 100, LEN), 0, "%s: append", io->name);
    cr_assert_eq(io->read(io, fd, out, LEN, 0), LEN, "%s", io->name);
    cr_assert_arr_eq(out, in, LEN, "%s: bytes read back", io->name);
    cr_assert_eq(io->read(io, fd, out, 100, LEN), 100);
    cr_assert_arr_eq(out, in, 100);
    cr_assert_eq(io->close(io, fd), 0);
    cr_assert_eq(file_size(dir, "wd"), LEN + 100);
}

Test(io, write_durable_reads_back)
{
    for_each_backend("io", check_write_durable);
}

static void check_write_datasync(reel_io_t *io, const char *dir)
{
    uint8_t in[8192], out[8192];
    fill(in, sizeof(in), 2);
    int fd = open_in(io, dir, "ws", O_RDWR | O_CREAT);
    cr_assert_eq(io->write(io, fd, in + 4096, 4096, 4096), 0, "%s", io->name);
    cr_assert_eq(io->write(io, fd, in, 4096, 0), 0, "%s: out of order", io->name);
    cr_assert_eq(io->datasync(io, fd), 0);
    cr_assert_eq(io->fsync(io, fd), 0);
    cr_assert_eq(io->read(io, fd, out, sizeof(out), 0), (ssize_t)sizeof(out));
    cr_assert_arr_eq(out, in, sizeof(in));
    cr_assert_eq(io->write(io, fd, in, 0, 0), 0, "%s: empty write", io->name);
    cr_assert_eq(io->close(io, fd), 0);
}

Test(io, write_then_datasync)
{
    for_each_backend("io", check_write_datasync);
}

static void check_short_files(reel_io_t *io, const char *dir)
{
    uint8_t out[256];
    int fd = open_in(io, dir, "short", O_RDWR | O_CREAT);
    cr_assert_eq(io->read(io, fd, out, sizeof(out), 0), 0, "%s: empty file", io->name);
    cr_assert_eq(io->write_durable(io, fd, "0123456789", 10, 0), 0);
    cr_assert_eq(io->read(io, fd, out, sizeof(out), 0), 10, "%s: short at EOF", io->name);
    cr_assert_eq(memcmp(out, "0123456789", 10), 0);
    cr_assert_eq(io->read(io, fd, out, sizeof(out), 7), 3);
    cr_assert_eq(io->read(io, fd, out, sizeof(out), 10), 0);
    cr_assert_eq(io->read(io, fd, out, sizeof(out), 1u << 20), 0, "%s: past EOF", io->name);
    cr_assert_eq(io->close(io, fd), 0);
}

Test(io, reads_are_short_only_at_eof)
{
    for_each_backend("io", check_short_files);
}

static void check_rename_fsync_dir(reel_io_t *io, const char *dir)
{
    char from[512], to[512];
    snprintf(from, sizeof(from), "%s/tmp", dir);
    snprintf(to, sizeof(to), "%s/final", dir);
    int fd = open_in(io, dir, "tmp", O_RDWR | O_CREAT | O_EXCL);
    cr_assert_eq(io->write_durable(io, fd, "abc", 3, 0), 0);
    cr_assert_eq(io->close(io, fd), 0);
    cr_assert_eq(io->rename(io, from, to), 0, "%s", io->name);
    cr_assert_eq(reel_io_fsync_dir(io, dir), 0, "%s", io->name);
    cr_assert_eq(file_size(dir, "tmp"), -1);
    cr_assert_eq(file_size(dir, "final"), 3);
    cr_assert_eq(io->rename(io, from, to), -ENOENT, "%s: -errno", io->name);
    cr_assert_eq(io->unlink(io, to), 0);
    cr_assert_eq(io->unlink(io, to), -ENOENT);
    cr_assert_eq(reel_io_fsync_dir(io, dir), 0);
    char missing[512];
    snprintf(missing, sizeof(missing), "%s/no-such-dir", dir);
    cr_assert_eq(reel_io_fsync_dir(io, missing), -ENOENT);
}

Test(io, rename_and_fsync_dir)
{
    for_each_backend("io", check_rename_fsync_dir);
}

static void check_truncate(reel_io_t *io, const char *dir)
{
    uint8_t in[4096], out[8192];
    fill(in, sizeof(in), 3);
    int fd = open_in(io, dir, "tr", O_RDWR | O_CREAT);
    cr_assert_eq(io->write_durable(io, fd, in, sizeof(in), 0), 0);
    cr_assert_eq(io->truncate(io, fd, 1000), 0, "%s: shrink", io->name);
    cr_assert_eq(file_size(dir, "tr"), 1000);
    cr_assert_eq(io->truncate(io, fd, 8192), 0, "%s: grow", io->name);
    cr_assert_eq(io->datasync(io, fd), 0);
    cr_assert_eq(io->read(io, fd, out, sizeof(out), 0), 8192);
    cr_assert_arr_eq(out, in, 1000);
    for (size_t i = 1000; i < sizeof(out); i++)
        cr_assert_eq(out[i], 0, "%s: grown bytes are zero", io->name);
    cr_assert_eq(io->close(io, fd), 0);
}

Test(io, truncate_shrinks_and_grows)
{
    for_each_backend("io", check_truncate);
}

static void check_errors(reel_io_t *io, const char *dir)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/absent/x", dir);
    cr_assert_eq(io->open(io, path, O_RDONLY, 0), -ENOENT, "%s", io->name);
    int fd = open_in(io, dir, "ro", O_RDWR | O_CREAT);
    cr_assert_eq(io->close(io, fd), 0);
    fd = open_in(io, dir, "ro", O_RDONLY);
    cr_assert_lt(io->write(io, fd, "x", 1, 0), 0, "%s: write on O_RDONLY", io->name);
    cr_assert_eq(io->close(io, fd), 0);
}

Test(io, errors_are_negative_errno)
{
    for_each_backend("io", check_errors);
}

/* ------------------------------------------------------------------ */

Test(io, env_reel_io_sync_selects_sync)
{
    reel_io_t *io = NULL;
    cr_assert_eq(setenv("REEL_IO", "sync", 1), 0); /* each test is its own process */
    cr_assert_eq(reel_io_create(REEL_IO_AUTO, &io), 0);
    cr_assert_str_eq(io->name, "sync");
    reel_io_destroy(io);
    unsetenv("REEL_IO");
}

Test(io, explicit_kinds)
{
    reel_io_t *io = NULL;
    cr_assert_eq(reel_io_create(REEL_IO_SYNC, &io), 0);
    cr_assert_str_eq(io->name, "sync");
    reel_io_destroy(io);
    int rc = reel_io_create(REEL_IO_URING, &io);
    if (rc == 0) {
        cr_assert_str_eq(io->name, "uring");
        reel_io_destroy(io);
    } else {
        cr_assert(rc == -EPERM || rc == -ENOSYS, "uring create: %d", rc);
    }
    cr_assert_eq(reel_io_create(REEL_IO_AUTO, &io), 0, "AUTO always gets a backend");
    cr_assert(strcmp(io->name, "uring") == 0 || strcmp(io->name, "sync") == 0);
    reel_io_destroy(io);
    reel_io_destroy(NULL);
}
