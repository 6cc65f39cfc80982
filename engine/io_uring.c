/*
 * io_uring.c: the io_uring backend.
 *
 * write_durable() submits one WRITE with RWF_DSYNC: the kernel completes it
 * only once the data (and the metadata needed to read it back) is on stable
 * storage, so the completion is the durability result, tied to this write
 * (TigerBeetle relies on O_DSYNC the same way). This replaced a WRITE linked
 * to an FSYNC(DATASYNC): the link made the kernel run the fsync from a
 * worker thread, ~100 us more per batch (bench: reel bench log).
 * A short write completes the rest in the same way; an error is returned
 * as -errno and never retried here (the log makes it sticky).
 * Everything else is the sync backend's.
 */
#include "engine/io.h"
#include "engine/common.h"

#include <liburing.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdlib.h>

void reel_io__sync_ops(reel_io_t *io);

typedef struct io_uring_backend {
    reel_io_t base; /* must be first: the table the log calls */
    struct io_uring ring;
    pthread_mutex_t lock; /* one submitter at a time */
} io_uring_backend_t;

enum { RING_ENTRIES = 8 };

/* Submits one durable write and waits for it; returns the bytes written or
 * -errno. */
static int ring_write_dsync(io_uring_backend_t *b, int fd, const uint8_t *buf, size_t len,
                            uint64_t off)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);
    struct io_uring_cqe *cqe;
    REEL_ASSERT(sqe != NULL);
    io_uring_prep_write(sqe, fd, buf, (unsigned)len, off);
    sqe->rw_flags = RWF_DSYNC;
    int rc;
    do {
        rc = io_uring_submit_and_wait(&b->ring, 1);
    } while (rc == -EINTR);
    if (rc < 0)
        return rc;
    rc = io_uring_wait_cqe(&b->ring, &cqe);
    if (rc < 0)
        return rc;
    rc = cqe->res;
    io_uring_cqe_seen(&b->ring, cqe);
    return rc;
}

static int uring_write_durable(reel_io_t *io, int fd, const void *buf, size_t len, uint64_t off)
{
    io_uring_backend_t *b = (io_uring_backend_t *)io;
    const uint8_t *p = buf;
    int rc = 0;
    REEL_ASSERT(len <= (1u << 30));
    pthread_mutex_lock(&b->lock);
    while (len > 0) {
        int n = ring_write_dsync(b, fd, p, len, off);
        if (n < 0) {
            rc = p == (const uint8_t *)buf ? n : -EIO; /* after progress: io.h */
            break;
        }
        if (n == 0) {
            rc = -EIO; /* no progress: never loop forever */
            break;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    pthread_mutex_unlock(&b->lock);
    return rc;
}

static void uring_destroy(reel_io_t *io)
{
    io_uring_backend_t *b = (io_uring_backend_t *)io;
    io_uring_queue_exit(&b->ring);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

int reel_io_uring_create(reel_io_t **out)
{
    io_uring_backend_t *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return -ENOMEM;
    int rc = io_uring_queue_init(RING_ENTRIES, &b->ring, 0);
    if (rc < 0) {
        free(b);
        return rc; /* -EPERM under sysctl or seccomp, -ENOSYS on old kernels */
    }
    pthread_mutex_init(&b->lock, NULL);
    reel_io__sync_ops(&b->base);
    b->base.name = "uring";
    b->base.write_durable = uring_write_durable;
    b->base.destroy = uring_destroy;
    *out = &b->base;
    return 0;
}
