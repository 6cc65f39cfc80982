/*
 * io_uring.c: the io_uring backend.
 *
 * write_durable() puts a WRITE and an FSYNC(DATASYNC) in the ring as one
 * linked chain (IOSQE_IO_LINK) and enters the kernel once for both. The
 * link matters: without it the kernel may run the fsync before the write
 * (io_uring_enter(2)). A short write breaks the chain, the fsync then
 * completes with -ECANCELED, and we write the rest and sync again.
 * Everything else is the sync backend's.
 */
#include "engine/io.h"
#include "engine/common.h"

#include <liburing.h>
#include <pthread.h>
#include <stdlib.h>

void reel_io__sync_ops(reel_io_t *io);

typedef struct io_uring_backend {
    reel_io_t base; /* must be first: the table the log calls */
    struct io_uring ring;
    pthread_mutex_t lock; /* one submitter at a time */
} io_uring_backend_t;

enum { RING_ENTRIES = 8 };

/* Waits for the two completions of one chain; returns the write's and the
 * fsync's results through the out-params. */
static int ring_reap2(io_uring_backend_t *b, int *res_write, int *res_sync)
{
    for (int i = 0; i < 2; i++) {
        struct io_uring_cqe *cqe;
        int rc = io_uring_wait_cqe(&b->ring, &cqe);
        if (rc < 0)
            return rc;
        if (io_uring_cqe_get_data64(cqe) == 1)
            *res_write = cqe->res;
        else
            *res_sync = cqe->res;
        io_uring_cqe_seen(&b->ring, cqe);
    }
    return 0;
}

static int ring_write_chain(io_uring_backend_t *b, int fd, const uint8_t *buf, size_t len,
                            uint64_t off, int *res_write, int *res_sync)
{
    struct io_uring_sqe *sqe_write = io_uring_get_sqe(&b->ring);
    struct io_uring_sqe *sqe_sync = io_uring_get_sqe(&b->ring);
    REEL_ASSERT(sqe_write != NULL);
    REEL_ASSERT(sqe_sync != NULL);
    io_uring_prep_write(sqe_write, fd, buf, (unsigned)len, off);
    io_uring_sqe_set_data64(sqe_write, 1);
    sqe_write->flags |= IOSQE_IO_LINK;
    io_uring_prep_fsync(sqe_sync, fd, IORING_FSYNC_DATASYNC);
    io_uring_sqe_set_data64(sqe_sync, 2);
    int rc;
    do {
        rc = io_uring_submit_and_wait(&b->ring, 2);
    } while (rc == -EINTR);
    if (rc < 0)
        return rc;
    return ring_reap2(b, res_write, res_sync);
}

static int uring_write_durable(reel_io_t *io, int fd, const void *buf, size_t len, uint64_t off)
{
    io_uring_backend_t *b = (io_uring_backend_t *)io;
    const uint8_t *p = buf;
    int rc = 0;
    REEL_ASSERT(len <= (1u << 30));
    pthread_mutex_lock(&b->lock);
    while (len > 0) {
        int res_write = 0, res_sync = 0;
        rc = ring_write_chain(b, fd, p, len, off, &res_write, &res_sync);
        if (rc < 0)
            break;
        if (res_write < 0) {
            rc = res_write;
            break;
        }
        if (res_write == 0) {
            rc = -EIO; /* no progress */
            break;
        }
        p += res_write;
        len -= (size_t)res_write;
        off += (uint64_t)res_write;
        if (len == 0 && res_sync < 0) {
            rc = res_sync; /* the sync itself failed: sticky upstream */
            break;
        }
        /* Short write: the sync was cancelled; go round for the rest. */
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
