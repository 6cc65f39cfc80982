/*
 * io_sync.c: the portable backend: pwrite, pread and fdatasync.
 *
 * It is the fallback when io_uring cannot be set up, and the base that the
 * io_uring and fault backends reuse for everything but the write path.
 */
#include "engine/io.h"
#include "engine/common.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int reel_io__pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
    const uint8_t *p = buf;
    REEL_ASSERT(fd >= 0);
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            /* Only an error before any byte is the file system's refusal:
             * after a partial write part of buf is in the file (io.h). */
            return p == (const uint8_t *)buf ? REEL_ERR(errno) : -EIO;
        }
        if (n == 0)
            return -EIO; /* no progress: never loop forever */
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

ssize_t reel_io__pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;
    size_t done = 0;
    REEL_ASSERT(fd >= 0);
    while (done < len) {
        ssize_t n = pread(fd, p + done, len - done, (off_t)(off + done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return REEL_ERR(errno);
        }
        if (n == 0)
            break; /* end of file */
        done += (size_t)n;
    }
    return (ssize_t)done;
}

static int sync_open(reel_io_t *io, const char *path, int flags, mode_t mode)
{
    (void)io;
    int fd = open(path, flags | O_CLOEXEC, mode);
    return fd < 0 ? REEL_ERR(errno) : fd;
}

static int sync_close(reel_io_t *io, int fd)
{
    (void)io;
    return close(fd) < 0 ? REEL_ERR(errno) : 0;
}

static int sync_write(reel_io_t *io, int fd, const void *buf, size_t len, uint64_t off)
{
    (void)io;
    return reel_io__pwrite_all(fd, buf, len, off);
}

static int sync_datasync(reel_io_t *io, int fd)
{
    (void)io;
    /* Never retried: after a failed fdatasync the kernel may have marked
     * the pages clean, so a second call can succeed without the data being
     * on disk (fsyncgate). The caller makes the failure sticky. */
    return fdatasync(fd) < 0 ? REEL_ERR(errno) : 0;
}

static int sync_write_durable(reel_io_t *io, int fd, const void *buf, size_t len, uint64_t off)
{
    int rc = sync_write(io, fd, buf, len, off);
    if (rc < 0)
        return rc;
    return sync_datasync(io, fd);
}

static ssize_t sync_read(reel_io_t *io, int fd, void *buf, size_t len, uint64_t off)
{
    (void)io;
    return reel_io__pread_all(fd, buf, len, off);
}

static int sync_fsync(reel_io_t *io, int fd)
{
    (void)io;
    return fsync(fd) < 0 ? REEL_ERR(errno) : 0;
}

static int sync_truncate(reel_io_t *io, int fd, uint64_t size)
{
    (void)io;
    return ftruncate(fd, (off_t)size) < 0 ? REEL_ERR(errno) : 0;
}

static int sync_allocate(reel_io_t *io, int fd, uint64_t size)
{
    if (fallocate(fd, 0, 0, (off_t)size) == 0)
        return 0;
    if (errno != EOPNOTSUPP)
        return REEL_ERR(errno);
    return sync_truncate(io, fd, size);
}

static int sync_rename(reel_io_t *io, const char *from, const char *to)
{
    (void)io;
    return rename(from, to) < 0 ? REEL_ERR(errno) : 0;
}

static int sync_unlink(reel_io_t *io, const char *path)
{
    (void)io;
    return unlink(path) < 0 ? REEL_ERR(errno) : 0;
}

static void sync_destroy(reel_io_t *io)
{
    free(io);
}

/* Fills a table with the sync operations; other backends override some. */
void reel_io__sync_ops(reel_io_t *io);
void reel_io__sync_ops(reel_io_t *io)
{
    io->name = "sync";
    io->open = sync_open;
    io->close = sync_close;
    io->write = sync_write;
    io->write_durable = sync_write_durable;
    io->read = sync_read;
    io->datasync = sync_datasync;
    io->fsync = sync_fsync;
    io->truncate = sync_truncate;
    io->allocate = sync_allocate;
    io->rename = sync_rename;
    io->unlink = sync_unlink;
    io->destroy = sync_destroy;
}

int reel_io_sync_create(reel_io_t **out)
{
    reel_io_t *io = calloc(1, sizeof(*io));
    if (io == NULL)
        return -ENOMEM;
    reel_io__sync_ops(io);
    *out = io;
    return 0;
}

int reel_io_create(reel_io_kind_t kind, reel_io_t **out)
{
    const char *env = getenv("REEL_IO");
    if (kind == REEL_IO_AUTO && env != NULL) {
        if (strcmp(env, "sync") == 0)
            kind = REEL_IO_SYNC;
        else if (strcmp(env, "uring") == 0)
            kind = REEL_IO_URING;
    }
    if (kind == REEL_IO_SYNC)
        return reel_io_sync_create(out);
    int rc = reel_io_uring_create(out);
    if (rc == 0 || kind == REEL_IO_URING)
        return rc;
    /* io_uring is unavailable (sysctl, seccomp, old kernel): fall back. */
    return reel_io_sync_create(out);
}

void reel_io_destroy(reel_io_t *io)
{
    if (io != NULL)
        io->destroy(io);
}

int reel_io_fsync_dir(reel_io_t *io, const char *dir)
{
    int fd = io->open(io, dir, O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0)
        return fd;
    int rc = io->fsync(io, fd);
    int rc_close = io->close(io, fd);
    return rc < 0 ? rc : rc_close;
}
