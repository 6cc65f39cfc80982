/*
 * io.h: the storage I/O layer, the only way the log touches a file.
 *
 * One interface, several backends (a table of function pointers, as
 * SQLite's VFS):
 *   - uring: io_uring; a batch is one WRITE with RWF_DSYNC, so one
 *     submission makes it durable and its completion says so;
 *   - sync: plain pwrite + fdatasync, chosen automatically when io_uring
 *     cannot be set up (kernel.io_uring_disabled, seccomp), and selectable;
 *   - fault (tests only, io_fault.c): wraps another backend and can fail,
 *     shorten or drop writes and syncs, and simulate a power cut.
 *
 * Ownership: a reel_io_t is created by reel_io_create() and freed by
 * reel_io_destroy(). write_durable() and write() may be called from one
 * thread at a time (the log's writer); the other calls are thread-safe.
 *
 * Errors: every call returns 0 (or a byte count) or -errno. A short
 * write is never returned as success: write_durable() either wrote and
 * synced every byte or failed, and then nothing about the range is known,
 * except for -EROFS, -ENOSPC and -EDQUOT from write() or write_durable():
 * those come only from a write that failed before any byte (one that
 * failed after some bytes is -EIO), so the log can take them for the file
 * system's refusal (log_writer.c). -ENOSPC from write_durable() may still
 * come from its sync, which the log treats as a failure.
 */
#ifndef REEL_IO_H
#define REEL_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct reel_io reel_io_t;

typedef enum reel_io_kind {
    REEL_IO_AUTO = 0, /* io_uring when it can be set up, else sync */
    REEL_IO_URING = 1,
    REEL_IO_SYNC = 2,
} reel_io_kind_t;

struct reel_io {
    const char *name; /* "uring", "sync", "fault" */
    /* open(2) relative to the cwd; returns an fd or -errno. */
    int (*open)(reel_io_t *io, const char *path, int flags, mode_t mode);
    int (*close)(reel_io_t *io, int fd);
    /* Writes all of buf at off, without a sync. */
    int (*write)(reel_io_t *io, int fd, const void *buf, size_t len, uint64_t off);
    /* Writes all of buf at off and makes it durable (fdatasync). */
    int (*write_durable)(reel_io_t *io, int fd, const void *buf, size_t len, uint64_t off);
    /* Reads up to len bytes; returns the count read (short only at EOF). */
    ssize_t (*read)(reel_io_t *io, int fd, void *buf, size_t len, uint64_t off);
    int (*datasync)(reel_io_t *io, int fd);
    int (*fsync)(reel_io_t *io, int fd); /* also for directories */
    int (*truncate)(reel_io_t *io, int fd, uint64_t size);
    /* Makes the file size bytes long with its space allocated (reads give
     * zeros): fallocate, or ftruncate where the file system has none. */
    int (*allocate)(reel_io_t *io, int fd, uint64_t size);
    int (*rename)(reel_io_t *io, const char *from, const char *to);
    int (*unlink)(reel_io_t *io, const char *path);
    void (*destroy)(reel_io_t *io);
};

/* Creates a backend. REEL_IO_AUTO tries io_uring and falls back to sync;
 * REEL_IO_URING fails (-EPERM, -ENOSYS, ...) where io_uring cannot be set up.
 * The REEL_IO environment variable ("uring" or "sync") overrides AUTO. */
int reel_io_create(reel_io_kind_t kind, reel_io_t **out);
void reel_io_destroy(reel_io_t *io);

/* The backends, for tests and the fault layer. */
int reel_io_sync_create(reel_io_t **out);
int reel_io_uring_create(reel_io_t **out);

/* Helpers shared by backends: full pwrite and pread loops on a raw fd. */
int reel_io__pwrite_all(int fd, const void *buf, size_t len, uint64_t off);
ssize_t reel_io__pread_all(int fd, void *buf, size_t len, uint64_t off);

/* Opens the directory and fsyncs it: after a create, rename or unlink
 * in it, so the name itself is durable. */
int reel_io_fsync_dir(reel_io_t *io, const char *dir);

#endif /* REEL_IO_H */
