/*
 * io_fault.c: the fault-injecting, crash-simulating backend (io_fault.h).
 *
 * Every numbered operation runs under one mutex in three steps: op_begin()
 * gives it a sequence number, fires an armed crash or picks the rule that
 * fires; the operation then records how to undo itself (an undo_t for a
 * file change, an ns_op_t for a name change) BEFORE it calls the inner
 * backend; and a successful sync drops what it made durable. The numbered
 * invariants are in io_fault.h.
 *
 * The undo state is kept per inode, not per fd or path: two fds of one
 * file share it, and a rename does not lose it. Each tracked inode has a
 * private read-write fd (reopened through /proc/self/fd) that outlives the
 * caller's fds, so the old bytes can be read even from a write-only fd and
 * a crash can roll the file back after the caller closed it.
 *
 * A crash works outside the simulated I/O path: it rolls files back with
 * plain pwrite/ftruncate on the private fds (the inner backend may be
 * broken by then), data first and then names, newest change first.
 */
#include "engine/io_fault.h"
#include "engine/common.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One change to a file that is not durable yet (Invariant 1). */
typedef struct undo {
    struct undo *older;   /* the change before this one in the same file */
    uint64_t off;         /* first byte the change touched */
    uint64_t len;         /* bytes touched from off */
    uint64_t size_before; /* the file size before the change */
    uint64_t old_len;     /* bytes in old[]: the part of the range below size_before */
    bool is_truncate;     /* a truncate is kept or undone whole by a crash */
    uint8_t old[];        /* the bytes [off, off + old_len) before the change */
} undo_t;

/* An inode with pending changes. */
typedef struct file {
    bool used;     /* the slot holds a file */
    dev_t dev;     /* identity of the inode */
    ino_t ino;     /* identity of the inode */
    int fd;        /* private fd of the inode; ours, closed on release */
    undo_t *newest; /* newest pending change, NULL when all is durable */
} file_t;

/* What the backend knows about an fd the caller holds, indexed by fd. */
typedef struct fd_slot {
    bool open;   /* the fd was opened here and not closed yet */
    bool is_dir; /* a directory: fsync of it makes names durable */
    dev_t dev;   /* identity of the inode behind the fd */
    ino_t ino;   /* identity of the inode behind the fd */
} fd_slot_t;

enum ns_kind { NS_CREATE = 1, NS_RENAME = 2, NS_UNLINK = 3 };

/* A create, rename or unlink that no directory fsync made durable yet. */
typedef struct ns_op {
    int kind;            /* enum ns_kind */
    char *path;          /* CREATE and UNLINK: the name; RENAME: the old name; owned */
    char *path_to;       /* RENAME: the new name; owned; NULL otherwise */
    dev_t dir_dev[2];    /* [0]: directory of path, [1]: directory of path_to */
    ino_t dir_ino[2];    /* as dir_dev */
    bool dir_pending[2]; /* true until that directory is fsynced */
    dev_t dev;           /* CREATE: the inode created */
    ino_t ino;           /* CREATE: the inode created */
    int keep_fd;         /* UNLINK: the removed file; RENAME: the file path_to
                          * replaced; -1 if none; ours (Invariant 3) */
    mode_t keep_mode;    /* the mode of keep_fd's file, for the copy back */
} ns_op_t;

/* A rule and its running state. */
typedef struct rule_slot {
    bool used;              /* the slot holds a rule */
    reel_fault_rule_t rule; /* the caller's rule, copied */
    uint64_t matches;       /* operations of its kinds seen since it was set */
    uint64_t fired;         /* firings so far */
    uint64_t rng;           /* PRNG state for chance_ppm */
} rule_slot_t;

/* The action op_begin() chose for the current operation. */
typedef struct act {
    bool fire;                  /* a rule fired */
    reel_fault_action_t action; /* its action */
    int err;                    /* positive errno */
    size_t short_bytes;         /* REEL_FAULT_SHORT: prefix length, 0: half */
} act_t;

struct reel_fault_io {
    reel_io_t base;                            /* must be first: the table callers use */
    reel_io_t *inner;                          /* does the I/O; borrowed */
    pthread_mutex_t lock;                      /* guards every field below */
    bool dead;                                 /* crashed: Invariant 4 */
    int crash_err;                             /* what the rollback returned */
    uint64_t ops;                              /* last sequence number given out */
    uint64_t ops_by_kind[REEL_FAULT_OP_KINDS]; /* per kind, by bit index */
    uint64_t faults;                           /* rule firings */
    uint64_t crash_at_op;                      /* armed crash point, 0: none */
    uint64_t crash_at_seed;                    /* its seed */
    reel_fault_crash_mode_t crash_at_mode;     /* its mode */
    uint64_t crashed_at_op;                    /* where an armed crash fired */
    uint64_t undo_bytes;                       /* old bytes held in undo records */
    uint64_t undo_bytes_max;                   /* bound on undo_bytes */
    uint64_t undo_records;                     /* undo records held */
    uint32_t ns_count;                         /* pending namespace ops in ns[] */
    rule_slot_t rules[REEL_FAULT_RULES_MAX];   /* the failure plan */
    fd_slot_t fds[REEL_FAULT_FDS_MAX];         /* the caller's fds */
    file_t files[REEL_FAULT_FILES_MAX];        /* inodes with pending changes */
    ns_op_t ns[REEL_FAULT_NS_OPS_MAX];         /* pending name changes, oldest first */
};

enum { COPY_CHUNK = 64 * 1024, PPM = 1000000 };

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */
/* ------------------------------------------------------------------ */

/* splitmix64: tiny, seedable with any value, good enough for test plans. */
static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rng_below(uint64_t *state, uint64_t n)
{
    REEL_ASSERT(n > 0);
    return rng_next(state) % n;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static int fd_size(int fd, uint64_t *out)
{
    struct stat st;
    REEL_ASSERT(fd >= 0);
    if (fstat(fd, &st) < 0)
        return REEL_ERR(errno);
    REEL_ASSERT(st.st_size >= 0);
    *out = (uint64_t)st.st_size;
    return 0;
}

/* Stats the directory that holds path, as rename(2) sees it. */
static int dir_of(const char *path, dev_t *dev, ino_t *ino)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        snprintf(dir, sizeof(dir), ".");
    } else if (slash == path) {
        snprintf(dir, sizeof(dir), "/");
    } else {
        size_t n = (size_t)(slash - path);
        if (n >= sizeof(dir))
            return -ENAMETOOLONG;
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    struct stat st;
    if (stat(dir, &st) < 0)
        return REEL_ERR(errno);
    *dev = st.st_dev;
    *ino = st.st_ino;
    return 0;
}

static reel_fault_io_t *fault_of(reel_io_t *io);

/* ------------------------------------------------------------------ */
/* fds and files                                                        */
/* ------------------------------------------------------------------ */

static fd_slot_t *slot_get(reel_fault_io_t *f, int fd)
{
    if (fd < 0 || (unsigned)fd >= REEL_FAULT_FDS_MAX)
        return NULL;
    return f->fds[fd].open ? &f->fds[fd] : NULL;
}

static file_t *file_find(reel_fault_io_t *f, dev_t dev, ino_t ino)
{
    for (unsigned i = 0; i < REEL_FAULT_FILES_MAX; i++) {
        file_t *file = &f->files[i];
        if (file->used && file->dev == dev && file->ino == ino)
            return file;
    }
    return NULL;
}

/* Opens the private fd of an inode: read-write whatever the caller's mode,
 * so old bytes can be read before a write on a write-only fd. */
static int private_fd(int fd)
{
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    int pfd = open(proc, O_RDWR | O_CLOEXEC);
    if (pfd >= 0)
        return pfd;
    pfd = fcntl(fd, F_DUPFD_CLOEXEC, 0); /* no /proc: share the caller's mode */
    return pfd < 0 ? REEL_ERR(errno) : pfd;
}

/* Finds or starts the pending state of the file behind the caller's fd. */
static int file_for_fd(reel_fault_io_t *f, int fd, file_t **out)
{
    fd_slot_t *slot = slot_get(f, fd);
    if (slot == NULL)
        return -EBADF; /* not opened through this backend */
    if (slot->is_dir)
        return -EISDIR;
    file_t *file = file_find(f, slot->dev, slot->ino);
    if (file == NULL) {
        for (unsigned i = 0; i < REEL_FAULT_FILES_MAX && file == NULL; i++)
            file = f->files[i].used ? NULL : &f->files[i];
        if (file == NULL)
            return -ENOMEM; /* REEL_FAULT_FILES_MAX files pending */
        int pfd = private_fd(fd);
        if (pfd < 0)
            return pfd;
        *file = (file_t){.used = true, .dev = slot->dev, .ino = slot->ino, .fd = pfd};
    }
    REEL_ASSERT(file->fd >= 0);
    *out = file;
    return 0;
}

/* Drops every undo record of a file: its changes are durable (or, after a
 * rollback, gone). Frees the file slot and its private fd. */
static void file_release(reel_fault_io_t *f, file_t *file)
{
    REEL_ASSERT(file->used);
    while (file->newest != NULL) {
        undo_t *u = file->newest;
        REEL_ASSERT(f->undo_bytes >= u->old_len);
        REEL_ASSERT(f->undo_records > 0);
        f->undo_bytes -= u->old_len;
        f->undo_records--;
        file->newest = u->older;
        free(u);
    }
    close(file->fd);
    *file = (file_t){.fd = -1};
}

static void file_release_if_clean(reel_fault_io_t *f, file_t *file)
{
    if (file->newest == NULL)
        file_release(f, file);
}

/* Records the undo of a change of [off, off + len) in a file whose size is
 * size_before, reading the old bytes first (Invariant 1). */
static int undo_push(reel_fault_io_t *f, file_t *file, uint64_t off, uint64_t len,
                     uint64_t size_before, bool is_truncate)
{
    uint64_t old_len = off >= size_before ? 0 : min_u64(len, size_before - off);
    if (old_len > f->undo_bytes_max || f->undo_bytes > f->undo_bytes_max - old_len)
        return -ENOMEM; /* the documented bound */
    undo_t *u = malloc(sizeof(*u) + (size_t)old_len);
    if (u == NULL)
        return -ENOMEM;
    *u = (undo_t){.off = off, .len = len, .size_before = size_before, .old_len = old_len,
                  .is_truncate = is_truncate};
    if (old_len > 0) {
        ssize_t n = f->inner->read(f->inner, file->fd, u->old, (size_t)old_len, off);
        if (n < 0 || (uint64_t)n != old_len) {
            free(u);
            return n < 0 ? (int)n : -EIO; /* the file shrank under us */
        }
    }
    u->older = file->newest;
    file->newest = u;
    f->undo_bytes += old_len;
    f->undo_records++;
    return 0;
}

/* Undoes one change exactly (Invariant 2 when applied newest first). */
static int undo_full(int fd, const undo_t *u)
{
    REEL_ASSERT(fd >= 0);
    REEL_ASSERT(u->old_len <= u->len);
    if (ftruncate(fd, (off_t)u->size_before) < 0)
        return REEL_ERR(errno);
    if (u->old_len == 0)
        return 0;
    return reel_io__pwrite_all(fd, u->old, (size_t)u->old_len, u->off);
}

/* Rolls a file back to its last successful sync now, and forgets the
 * changes: what a failed sync does to them on Linux (fsyncgate). */
static int file_lose(reel_fault_io_t *f, file_t *file)
{
    int rc = 0;
    for (const undo_t *u = file->newest; u != NULL; u = u->older) {
        int r = undo_full(file->fd, u);
        rc = rc < 0 ? rc : r;
    }
    file_release(f, file);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Namespace operations                                                 */
/* ------------------------------------------------------------------ */

static void ns_free(ns_op_t *op)
{
    free(op->path);
    free(op->path_to);
    if (op->keep_fd >= 0)
        close(op->keep_fd);
    *op = (ns_op_t){.keep_fd = -1};
}

/* Fills the names and directories of an op; the caller frees with ns_free. */
static int ns_init(ns_op_t *op, int kind, const char *path, const char *path_to)
{
    *op = (ns_op_t){.kind = kind, .keep_fd = -1};
    op->path = strdup(path);
    op->path_to = path_to != NULL ? strdup(path_to) : NULL;
    if (op->path == NULL || (path_to != NULL && op->path_to == NULL))
        return -ENOMEM;
    int rc = dir_of(path, &op->dir_dev[0], &op->dir_ino[0]);
    if (rc < 0)
        return rc;
    op->dir_pending[0] = true;
    if (path_to == NULL)
        return 0;
    op->dir_pending[1] = true;
    return dir_of(path_to, &op->dir_dev[1], &op->dir_ino[1]);
}

/* Keeps an fd of the regular file at path, if there is one, so an undo can
 * bring its bytes back (Invariant 3). A file we cannot open stays lost. */
static void ns_keep(ns_op_t *op, const char *path)
{
    struct stat st;
    REEL_ASSERT(op->keep_fd == -1);
    if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
        return;
    op->keep_fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    op->keep_mode = st.st_mode & 07777;
}

static void ns_push(reel_fault_io_t *f, ns_op_t *op)
{
    REEL_ASSERT(f->ns_count < REEL_FAULT_NS_OPS_MAX);
    REEL_ASSERT(op->kind >= NS_CREATE && op->kind <= NS_UNLINK);
    f->ns[f->ns_count++] = *op;
}

/* A directory was fsynced: the names in it are durable. */
static void dir_durable(reel_fault_io_t *f, dev_t dev, ino_t ino)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < f->ns_count; i++) {
        ns_op_t *op = &f->ns[i];
        for (int k = 0; k < 2; k++) {
            if (op->dir_pending[k] && op->dir_dev[k] == dev && op->dir_ino[k] == ino)
                op->dir_pending[k] = false;
        }
        if (op->dir_pending[0] || op->dir_pending[1])
            f->ns[kept++] = *op; /* still pending; the order is kept */
        else
            ns_free(op);
    }
    REEL_ASSERT(kept <= f->ns_count);
    f->ns_count = kept;
}

/* Writes a new file at path with the bytes of src: how an undone unlink
 * or replace brings a file back (a copy, not the old inode). */
static int restore_copy(const char *path, int src, mode_t mode)
{
    REEL_ASSERT(src >= 0);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return errno == EEXIST ? 0 : REEL_ERR(errno); /* a later durable name won */
    uint8_t *buf = malloc(COPY_CHUNK);
    int rc = buf == NULL ? -ENOMEM : 0;
    for (uint64_t off = 0; rc == 0;) {
        ssize_t n = reel_io__pread_all(src, buf, COPY_CHUNK, off);
        if (n <= 0) {
            rc = (int)n;
            break;
        }
        rc = reel_io__pwrite_all(fd, buf, (size_t)n, off);
        off += (uint64_t)n;
    }
    free(buf);
    if (rc == 0 && fchmod(fd, mode) < 0)
        rc = REEL_ERR(errno); /* open() applied the umask */
    close(fd);
    return rc;
}

static int ns_undo(const ns_op_t *op)
{
    struct stat st;
    switch (op->kind) {
    case NS_CREATE:
        /* Only if the name still holds the inode we made. */
        if (lstat(op->path, &st) < 0 || st.st_dev != op->dev || st.st_ino != op->ino)
            return 0;
        return unlink(op->path) < 0 ? REEL_ERR(errno) : 0;
    case NS_RENAME:
        if (rename(op->path_to, op->path) < 0 && errno != ENOENT)
            return REEL_ERR(errno);
        return op->keep_fd < 0 ? 0 : restore_copy(op->path_to, op->keep_fd, op->keep_mode);
    case NS_UNLINK:
        return op->keep_fd < 0 ? 0 : restore_copy(op->path, op->keep_fd, op->keep_mode);
    default:
        REEL_ASSERT(!"unknown namespace op");
        return -EINVAL;
    }
}

/* ------------------------------------------------------------------ */
/* Crash                                                                */
/* ------------------------------------------------------------------ */

enum sector_fate { FATE_NEW, FATE_OLD, FATE_ZERO, FATE_GARBAGE };

static enum sector_fate fate_pick(uint64_t *rng, bool torn)
{
    uint64_t r = rng_below(rng, 10);
    if (!torn)
        return r < 5 ? FATE_NEW : FATE_OLD;
    if (r < 4)
        return FATE_NEW;
    if (r < 8)
        return FATE_OLD;
    return r < 9 ? FATE_ZERO : FATE_GARBAGE;
}

/* Applies a fate to buf, which holds [pos, pos + n) of the file and lies
 * inside change u. */
static void fate_apply(uint8_t *buf, uint64_t pos, size_t n, const undo_t *u,
                       enum sector_fate fate, uint64_t *rng)
{
    REEL_ASSERT(pos >= u->off);
    REEL_ASSERT(pos + n <= u->off + u->len);
    if (fate == FATE_NEW)
        return;
    if (fate == FATE_ZERO || fate == FATE_OLD)
        memset(buf, 0, n); /* beyond the old size the old bytes are a hole */
    if (fate == FATE_GARBAGE) {
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)rng_next(rng);
    }
    uint64_t old_end = u->off + u->old_len;
    if (fate == FATE_OLD && pos < old_end)
        memcpy(buf, u->old + (pos - u->off), (size_t)(min_u64(pos + n, old_end) - pos));
}

/* A change that grew the file may lose some or all of its growth: the new
 * size can end at a sector boundary between the old size and the end. */
static int cut_growth(int fd, const undo_t *u, uint64_t *rng)
{
    uint64_t end = u->off + u->len;
    REEL_ASSERT(end > u->size_before);
    if (rng_below(rng, 2) == 0)
        return 0; /* the size reached the disk */
    uint64_t first = reel_align_up(u->size_before + 1, REEL_FAULT_SECTOR_SIZE);
    uint64_t aligned = first < end ? (end - 1 - first) / REEL_FAULT_SECTOR_SIZE + 1 : 0;
    uint64_t k = rng_below(rng, aligned + 1);
    uint64_t cut = k == 0 ? u->size_before : first + (k - 1) * REEL_FAULT_SECTOR_SIZE;
    uint64_t size;
    int rc = fd_size(fd, &size);
    if (rc < 0 || cut >= size)
        return rc;
    return ftruncate(fd, (off_t)cut) < 0 ? REEL_ERR(errno) : 0;
}

/* Tears one write at sector granularity: each 512-byte sector of its range
 * (aligned in the file, not in the write) keeps the bytes it has now, or
 * gets the old ones back, or (torn) zeros or garbage. */
static int undo_sectors(int fd, const undo_t *u, uint64_t *rng, bool torn)
{
    uint64_t size;
    int rc = fd_size(fd, &size);
    uint64_t lim = min_u64(u->off + u->len, size); /* a newer cut may have shortened it */
    if (rc == 0 && lim > u->off) {
        size_t n = (size_t)(lim - u->off);
        uint8_t *buf = malloc(n);
        if (buf == NULL)
            return -ENOMEM;
        ssize_t got = reel_io__pread_all(fd, buf, n, u->off);
        rc = got < 0 ? (int)got : ((size_t)got == n ? 0 : -EIO);
        for (uint64_t pos = u->off; rc == 0 && pos < lim;) {
            uint64_t next = min_u64(reel_align_up(pos + 1, REEL_FAULT_SECTOR_SIZE), lim);
            fate_apply(buf + (pos - u->off), pos, (size_t)(next - pos), u, fate_pick(rng, torn), rng);
            pos = next;
        }
        if (rc == 0)
            rc = reel_io__pwrite_all(fd, buf, n, u->off);
        free(buf);
    }
    if (rc == 0 && u->off + u->len > u->size_before && !u->is_truncate)
        rc = cut_growth(fd, u, rng);
    return rc;
}

static int crash_file(file_t *file, uint64_t *rng, reel_fault_crash_mode_t mode)
{
    int rc = 0;
    for (const undo_t *u = file->newest; u != NULL; u = u->older) {
        int r = 0;
        if (mode == REEL_FAULT_CRASH_LOSE_UNSYNCED)
            r = undo_full(file->fd, u);
        else if (mode == REEL_FAULT_CRASH_KEEP_UNSYNCED)
            r = 0;
        else if (u->is_truncate)
            r = rng_below(rng, 2) == 0 ? undo_full(file->fd, u) : 0;
        else
            r = undo_sectors(file->fd, u, rng, mode == REEL_FAULT_CRASH_TORN);
        rc = rc < 0 ? rc : r;
    }
    return rc;
}

/* Undoes a suffix of the pending names, newest first: journaling file
 * systems commit name changes in order. */
static int crash_names(reel_fault_io_t *f, uint64_t *rng, reel_fault_crash_mode_t mode)
{
    uint32_t keep = 0;
    if (mode == REEL_FAULT_CRASH_KEEP_UNSYNCED)
        keep = f->ns_count;
    else if (mode != REEL_FAULT_CRASH_LOSE_UNSYNCED)
        keep = (uint32_t)rng_below(rng, (uint64_t)f->ns_count + 1);
    int rc = 0;
    for (uint32_t i = f->ns_count; i-- > keep;) {
        int r = ns_undo(&f->ns[i]);
        rc = rc < 0 ? rc : r;
    }
    return rc;
}

/* Frees every pending record and name without rolling anything back. */
static void forget_all(reel_fault_io_t *f)
{
    for (unsigned i = 0; i < REEL_FAULT_FILES_MAX; i++) {
        if (f->files[i].used)
            file_release(f, &f->files[i]);
    }
    for (uint32_t i = 0; i < f->ns_count; i++)
        ns_free(&f->ns[i]);
    f->ns_count = 0;
    REEL_ASSERT(f->undo_bytes == 0);
    REEL_ASSERT(f->undo_records == 0);
}

/* The power cut: data first (names still point where the private fds
 * do not care), then names, then the backend is dead (Invariant 4). */
static int crash_now(reel_fault_io_t *f, uint64_t seed, reel_fault_crash_mode_t mode)
{
    REEL_ASSERT(!f->dead);
    REEL_ASSERT(mode >= REEL_FAULT_CRASH_LOSE_UNSYNCED && mode <= REEL_FAULT_CRASH_TORN);
    uint64_t rng = seed;
    int rc = 0;
    f->dead = true;
    for (unsigned i = 0; i < REEL_FAULT_FILES_MAX; i++) {
        if (!f->files[i].used)
            continue;
        int r = crash_file(&f->files[i], &rng, mode);
        rc = rc < 0 ? rc : r;
    }
    int r = crash_names(f, &rng, mode);
    rc = rc < 0 ? rc : r;
    forget_all(f);
    f->crash_err = rc;
    return rc;
}

/* ------------------------------------------------------------------ */
/* Rules and numbering                                                  */
/* ------------------------------------------------------------------ */

static bool rule_fires(rule_slot_t *r, uint64_t seq)
{
    const reel_fault_rule_t *rule = &r->rule;
    if (rule->at_op != 0 && seq != rule->at_op)
        return false;
    if (rule->nth != 0 && r->matches != rule->nth)
        return false;
    if (seq <= rule->after_op)
        return false;
    if (rule->fire_max != 0 && r->fired >= rule->fire_max)
        return false;
    if (rule->chance_ppm == 0 || rule->chance_ppm >= PPM)
        return true;
    return rng_below(&r->rng, PPM) < rule->chance_ppm;
}

static void rules_eval(reel_fault_io_t *f, uint32_t kind, uint64_t seq, act_t *act)
{
    for (unsigned i = 0; i < REEL_FAULT_RULES_MAX; i++) {
        rule_slot_t *r = &f->rules[i];
        if (!r->used || (r->rule.ops & kind) == 0)
            continue;
        r->matches++; /* every rule counts, so nth does not depend on slots */
        if (act->fire || !rule_fires(r, seq))
            continue;
        r->fired++;
        f->faults++;
        *act = (act_t){.fire = true, .action = r->rule.action, .err = r->rule.err,
                       .short_bytes = r->rule.short_bytes};
        if (act->err == 0)
            act->err = EIO;
    }
}

/* Starts a numbered operation: gives it its sequence number, runs an armed
 * crash, and picks the rule that fires. Called with the lock held.
 * Returns 0 to go on (see act), or -EIO: dead, or the crash point. */
static int op_begin(reel_fault_io_t *f, uint32_t kind, act_t *act)
{
    REEL_ASSERT((kind & REEL_FAULT_OP_ALL) != 0);
    REEL_ASSERT((kind & (kind - 1)) == 0);
    *act = (act_t){.fire = false};
    if (f->dead)
        return -EIO; /* Invariant 4; the dead are not counted */
    uint64_t seq = ++f->ops;
    f->ops_by_kind[__builtin_ctz(kind)]++;
    if (f->crash_at_op == seq) {
        f->crashed_at_op = seq;
        crash_now(f, f->crash_at_seed, f->crash_at_mode);
        return -EIO; /* the operation never ran */
    }
    rules_eval(f, kind, seq, act);
    return 0;
}

/* An action that ends the operation before it touches anything: returns
 * the value to give back, or 1 to go on. */
static int act_early(const act_t *act, bool short_ok, bool lose_ok)
{
    if (!act->fire)
        return 1;
    if (act->action == REEL_FAULT_DROP)
        return 0;
    if ((act->action == REEL_FAULT_SHORT && short_ok) ||
        (act->action == REEL_FAULT_FAIL_LOSE && lose_ok))
        return 1;
    REEL_ASSERT(act->err > 0);
    return -act->err;
}

/* ------------------------------------------------------------------ */
/* The backend's table                                                  */
/* ------------------------------------------------------------------ */

/* Registers an fd the inner backend opened. */
static int slot_open(reel_fault_io_t *f, int fd)
{
    struct stat st;
    REEL_ASSERT(fd >= 0);
    if ((unsigned)fd >= REEL_FAULT_FDS_MAX)
        return -EMFILE; /* the documented bound */
    /* A slot still open means the caller closed the fd behind our back
     * (close(2) instead of io->close): a bug in the caller. */
    REEL_ASSERT(!f->fds[fd].open);
    if (fstat(fd, &st) < 0)
        return REEL_ERR(errno);
    f->fds[fd] = (fd_slot_t){.open = true, .is_dir = S_ISDIR(st.st_mode) != 0,
                             .dev = st.st_dev, .ino = st.st_ino};
    return 0;
}

/* Records a file the open created; not numbered, but a name change. */
static int note_create(reel_fault_io_t *f, const char *path, int fd)
{
    ns_op_t op;
    int rc = ns_init(&op, NS_CREATE, path, NULL);
    if (rc < 0) {
        ns_free(&op);
        return rc;
    }
    op.dev = f->fds[fd].dev;
    op.ino = f->fds[fd].ino;
    ns_push(f, &op);
    return 0;
}

static int do_truncate(reel_fault_io_t *f, int fd, uint64_t size);

static int fault_open(reel_io_t *io, const char *path, int flags, mode_t mode)
{
    reel_fault_io_t *f = fault_of(io);
    struct stat st;
    if (flags & O_APPEND)
        return -EINVAL; /* pwrite would ignore the offset: see io_fault.h */
    pthread_mutex_lock(&f->lock);
    bool creating = (flags & O_CREAT) && lstat(path, &st) < 0 && errno == ENOENT;
    int rc = f->dead ? -EIO : (creating && f->ns_count == REEL_FAULT_NS_OPS_MAX ? -ENOMEM : 0);
    int fd = rc < 0 ? rc : f->inner->open(f->inner, path, flags & ~O_TRUNC, mode);
    if (fd < 0) {
        rc = fd;
        goto out;
    }
    rc = slot_open(f, fd);
    if (rc < 0)
        goto out_close;
    if (creating) {
        rc = note_create(f, path, fd);
        if (rc < 0)
            goto out_clear;
    }
    if ((flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY && !f->fds[fd].is_dir) {
        rc = do_truncate(f, fd, 0); /* tracked, so a crash can undo it */
        if (rc < 0)
            goto out_clear;
    }
    rc = fd;
    goto out;
out_clear:
    f->fds[fd].open = false;
out_close:
    f->inner->close(f->inner, fd);
out:
    pthread_mutex_unlock(&f->lock);
    return rc;
}

/* close works after a crash too: the caller must be able to let go. */
static int fault_close(reel_io_t *io, int fd)
{
    reel_fault_io_t *f = fault_of(io);
    pthread_mutex_lock(&f->lock);
    fd_slot_t *slot = slot_get(f, fd);
    if (slot != NULL)
        slot->open = false;
    int rc = f->inner->close(f->inner, fd);
    pthread_mutex_unlock(&f->lock);
    return rc;
}

/* A tracked plain write of buf[0, n) at off. */
static int do_write(reel_fault_io_t *f, int fd, const void *buf, size_t n, uint64_t off)
{
    if (n > 0) {
        file_t *file;
        uint64_t size;
        int rc = file_for_fd(f, fd, &file);
        if (rc < 0)
            return rc;
        rc = fd_size(file->fd, &size);
        if (rc == 0)
            rc = undo_push(f, file, off, n, size, false);
        if (rc < 0) {
            file_release_if_clean(f, file);
            return rc;
        }
    }
    return f->inner->write(f->inner, fd, buf, n, off);
}

static size_t short_len(const act_t *act, size_t len)
{
    size_t n = act->short_bytes != 0 ? act->short_bytes : len / 2;
    return n < len ? n : (len > 0 ? len - 1 : 0); /* short means short */
}

static int fault_write(reel_io_t *io, int fd, const void *buf, size_t len, uint64_t off)
{
    reel_fault_io_t *f = fault_of(io);
    act_t act;
    pthread_mutex_lock(&f->lock);
    int rc = op_begin(f, REEL_FAULT_OP_WRITE, &act);
    if (rc == 0)
        rc = act_early(&act, true, false);
    if (rc == 1 && act.fire) {
        REEL_ASSERT(act.action == REEL_FAULT_SHORT);
        rc = do_write(f, fd, buf, short_len(&act, len), off);
        rc = rc < 0 ? rc : -act.err;
    } else if (rc == 1) {
        rc = do_write(f, fd, buf, len, off);
    }
    pthread_mutex_unlock(&f->lock);
    return rc;
}

/* The sync made every pending change of the file durable. */
static void sync_done(reel_fault_io_t *f, dev_t dev, ino_t ino)
{
    file_t *file = file_find(f, dev, ino);
    if (file != NULL)
        file_release(f, file);
}

/* write_durable without a rule, or with FAIL_LOSE (act->fire). */
static int write_durable_normal(reel_fault_io_t *f, int fd, const void *buf, size_t len,
                                uint64_t off, const act_t *act)
{
    file_t *file;
    uint64_t size;
    int rc = file_for_fd(f, fd, &file);
    if (rc < 0)
        return rc;
    rc = fd_size(file->fd, &size);
    if (rc == 0 && len > 0)
        rc = undo_push(f, file, off, len, size, false);
    if (rc < 0) {
        file_release_if_clean(f, file);
        return rc;
    }
    if (act->fire) {
        REEL_ASSERT(act->action == REEL_FAULT_FAIL_LOSE);
        rc = f->inner->write(f->inner, fd, buf, len, off);
        int lost = file_lose(f, file);
        return rc < 0 ? rc : (lost < 0 ? lost : -act->err);
    }
    rc = f->inner->write_durable(f->inner, fd, buf, len, off);
    if (rc == 0)
        file_release(f, file); /* the datasync covered the whole file */
    else
        file_release_if_clean(f, file);
    return rc;
}

static int fault_write_durable(reel_io_t *io, int fd, const void *buf, size_t len, uint64_t off)
{
    reel_fault_io_t *f = fault_of(io);
    act_t act;
    pthread_mutex_lock(&f->lock);
    int rc = op_begin(f, REEL_FAULT_OP_WRITE_DURABLE, &act);
    if (rc == 0)
        rc = act_early(&act, true, true);
    if (rc == 1 && act.fire && act.action == REEL_FAULT_SHORT) {
        rc = do_write(f, fd, buf, short_len(&act, len), off); /* and no sync */
        rc = rc < 0 ? rc : -act.err;
    } else if (rc == 1) {
        rc = write_durable_normal(f, fd, buf, len, off, &act);
    }
    pthread_mutex_unlock(&f->lock);
    return rc;
}

static ssize_t fault_read(reel_io_t *io, int fd, void *buf, size_t len, uint64_t off)
{
    reel_fault_io_t *f = fault_of(io);
    pthread_mutex_lock(&f->lock);
    bool dead = f->dead;
    pthread_mutex_unlock(&f->lock);
    if (dead)
        return -EIO; /* Invariant 4 */
    return f->inner->read(f->inner, fd, buf, len, off);
}

/* datasync and fsync, of files and directories. */
static int sync_common(reel_io_t *io, int fd, uint32_t kind)
{
    reel_fault_io_t *f = fault_of(io);
    act_t act;
    pthread_mutex_lock(&f->lock);
    int rc = op_begin(f, kind, &act);
    fd_slot_t *slot = rc == 0 ? slot_get(f, fd) : NULL;
    if (rc == 0 && slot == NULL)
        rc = -EBADF;
    if (rc == 0)
        rc = act_early(&act, false, !slot->is_dir);
    if (rc == 1 && act.fire) {
        REEL_ASSERT(act.action == REEL_FAULT_FAIL_LOSE);
        file_t *file = file_find(f, slot->dev, slot->ino);
        int lost = file != NULL ? file_lose(f, file) : 0;
        rc = lost < 0 ? lost : -act.err;
    } else if (rc == 1) {
        rc = kind == REEL_FAULT_OP_DATASYNC ? f->inner->datasync(f->inner, fd)
                                            : f->inner->fsync(f->inner, fd);
        if (rc == 0 && slot->is_dir && kind == REEL_FAULT_OP_FSYNC)
            dir_durable(f, slot->dev, slot->ino);
        else if (rc == 0 && !slot->is_dir)
            sync_done(f, slot->dev, slot->ino);
    }
    pthread_mutex_unlock(&f->lock);
    return rc;
}

static int fault_datasync(reel_io_t *io, int fd)
{
    return sync_common(io, fd, REEL_FAULT_OP_DATASYNC);
}

static int fault_fsync(reel_io_t *io, int fd)
{
    return sync_common(io, fd, REEL_FAULT_OP_FSYNC);
}

/* A tracked truncate: a shrink keeps the bytes it cuts, a growth only the
 * old size. */
static int do_truncate(reel_fault_io_t *f, int fd, uint64_t size)
{
    file_t *file;
    uint64_t before;
    int rc = file_for_fd(f, fd, &file);
    if (rc < 0)
        return rc;
    rc = fd_size(file->fd, &before);
    if (rc == 0 && before != size) {
        uint64_t lo = min_u64(before, size);
        uint64_t hi = before > size ? before : size;
        rc = undo_push(f, file, lo, hi - lo, before, true);
    }
    if (rc < 0) {
        file_release_if_clean(f, file);
        return rc;
    }
    rc = f->inner->truncate(f->inner, fd, size);
    if (rc < 0)
        file_release_if_clean(f, file);
    return rc;
}

static int fault_truncate(reel_io_t *io, int fd, uint64_t size)
{
    reel_fault_io_t *f = fault_of(io);
    act_t act;
    pthread_mutex_lock(&f->lock);
    int rc = op_begin(f, REEL_FAULT_OP_TRUNCATE, &act);
    if (rc == 0)
        rc = act_early(&act, false, false);
    if (rc == 1)
        rc = do_truncate(f, fd, size);
    pthread_mutex_unlock(&f->lock);
    return rc;
}

/* allocate is numbered and planned as a truncate: for what a crash can do
 * to the file, growing it to size with zeros is the same change. */
static int fault_allocate(reel_io_t *io, int fd, uint64_t size)
{
    return fault_truncate(io, fd, size);
}

/* The start every numbered namespace operation shares (f->lock held): its
 * number and plan (op_begin, act_early), the bound on pending operations,
 * then its undo record in *op. Returns 0 to go on, or what the operation
 * returns without touching anything. */
static int ns_begin(reel_fault_io_t *f, reel_fault_op_t kind, int ns_kind, const char *path,
                    const char *path_to, ns_op_t *op)
{
    act_t act;
    int rc = op_begin(f, kind, &act);
    if (rc == 0)
        rc = act_early(&act, false, false);
    if (rc == 1 && f->ns_count == REEL_FAULT_NS_OPS_MAX)
        rc = -ENOMEM; /* the documented bound */
    if (rc == 1)
        rc = ns_init(op, ns_kind, path, path_to);
    return rc;
}

static int fault_rename(reel_io_t *io, const char *from, const char *to)
{
    reel_fault_io_t *f = fault_of(io);
    ns_op_t op = {.keep_fd = -1};
    pthread_mutex_lock(&f->lock);
    int rc = ns_begin(f, REEL_FAULT_OP_RENAME, NS_RENAME, from, to, &op);
    if (rc == 0 && op.kind == NS_RENAME) {
        ns_keep(&op, to); /* the file it replaces, if any */
        rc = f->inner->rename(f->inner, from, to);
        if (rc == 0)
            ns_push(f, &op);
    }
    if (rc < 0)
        ns_free(&op);
    pthread_mutex_unlock(&f->lock);
    return rc;
}

static int fault_unlink(reel_io_t *io, const char *path)
{
    reel_fault_io_t *f = fault_of(io);
    ns_op_t op = {.keep_fd = -1};
    pthread_mutex_lock(&f->lock);
    int rc = ns_begin(f, REEL_FAULT_OP_UNLINK, NS_UNLINK, path, NULL, &op);
    if (rc == 0 && op.kind == NS_UNLINK) {
        ns_keep(&op, path); /* so an undo can bring the bytes back */
        rc = f->inner->unlink(f->inner, path);
        if (rc == 0)
            ns_push(f, &op);
    }
    if (rc < 0)
        ns_free(&op);
    pthread_mutex_unlock(&f->lock);
    return rc;
}

static void fault_destroy_io(reel_io_t *io)
{
    reel_io_fault_destroy(fault_of(io));
}

static reel_fault_io_t *fault_of(reel_io_t *io)
{
    REEL_ASSERT(io != NULL);
    REEL_ASSERT(io->open == fault_open);
    return (reel_fault_io_t *)io;
}

/* ------------------------------------------------------------------ */
/* Public API                                                           */
/* ------------------------------------------------------------------ */

int reel_io_fault_create(reel_io_t *inner, reel_fault_io_t **out)
{
    REEL_ASSERT(inner != NULL);
    REEL_ASSERT(out != NULL);
    reel_fault_io_t *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -ENOMEM;
    if (pthread_mutex_init(&f->lock, NULL) != 0) {
        free(f);
        return -ENOMEM;
    }
    f->inner = inner;
    f->undo_bytes_max = REEL_FAULT_UNDO_BYTES_MAX;
    for (unsigned i = 0; i < REEL_FAULT_FILES_MAX; i++)
        f->files[i].fd = -1;
    for (unsigned i = 0; i < REEL_FAULT_NS_OPS_MAX; i++)
        f->ns[i].keep_fd = -1;
    f->base = (reel_io_t){
        .name = "fault", .open = fault_open, .close = fault_close, .write = fault_write,
        .write_durable = fault_write_durable, .read = fault_read, .datasync = fault_datasync,
        .fsync = fault_fsync, .truncate = fault_truncate, .allocate = fault_allocate, .rename = fault_rename,
        .unlink = fault_unlink, .destroy = fault_destroy_io,
    };
    *out = f;
    return 0;
}

reel_io_t *reel_io_fault_io(reel_fault_io_t *fault)
{
    REEL_ASSERT(fault != NULL);
    return &fault->base;
}

void reel_io_fault_destroy(reel_fault_io_t *fault)
{
    if (fault == NULL)
        return;
    pthread_mutex_lock(&fault->lock);
    forget_all(fault);
    pthread_mutex_unlock(&fault->lock);
    pthread_mutex_destroy(&fault->lock);
    free(fault);
}

int reel_io_fault_set(reel_fault_io_t *fault, const reel_fault_rule_t *rule)
{
    REEL_ASSERT(fault != NULL);
    REEL_ASSERT(rule != NULL);
    if ((rule->ops & ~REEL_FAULT_OP_ALL) != 0 || rule->err < 0 ||
        (unsigned)rule->action > (unsigned)REEL_FAULT_DROP)
        return -EINVAL;
    int rc = -ENOBUFS;
    pthread_mutex_lock(&fault->lock);
    for (unsigned i = 0; i < REEL_FAULT_RULES_MAX; i++) {
        rule_slot_t *r = &fault->rules[i];
        if (r->used)
            continue;
        *r = (rule_slot_t){.used = true, .rule = *rule, .rng = rule->seed};
        if (r->rule.ops == 0)
            r->rule.ops = REEL_FAULT_OP_ALL;
        rc = (int)i;
        break;
    }
    pthread_mutex_unlock(&fault->lock);
    return rc;
}

void reel_io_fault_clear(reel_fault_io_t *fault)
{
    REEL_ASSERT(fault != NULL);
    pthread_mutex_lock(&fault->lock);
    memset(fault->rules, 0, sizeof(fault->rules));
    pthread_mutex_unlock(&fault->lock);
}

uint64_t reel_io_fault_fired(reel_fault_io_t *fault, int slot)
{
    REEL_ASSERT(fault != NULL);
    if (slot < 0 || (unsigned)slot >= REEL_FAULT_RULES_MAX)
        return 0;
    pthread_mutex_lock(&fault->lock);
    uint64_t fired = fault->rules[slot].used ? fault->rules[slot].fired : 0;
    pthread_mutex_unlock(&fault->lock);
    return fired;
}

int reel_io_fault_crash(reel_fault_io_t *fault, uint64_t seed, reel_fault_crash_mode_t mode)
{
    REEL_ASSERT(fault != NULL);
    if ((unsigned)mode > (unsigned)REEL_FAULT_CRASH_TORN)
        return -EINVAL;
    pthread_mutex_lock(&fault->lock);
    int rc = fault->dead ? 0 : crash_now(fault, seed, mode);
    pthread_mutex_unlock(&fault->lock);
    return rc;
}

int reel_io_fault_crash_at(reel_fault_io_t *fault, uint64_t op, uint64_t seed,
                           reel_fault_crash_mode_t mode)
{
    REEL_ASSERT(fault != NULL);
    if ((unsigned)mode > (unsigned)REEL_FAULT_CRASH_TORN)
        return -EINVAL;
    int rc = 0;
    pthread_mutex_lock(&fault->lock);
    if (op != 0 && op <= fault->ops) {
        rc = -EINVAL; /* that operation already ran */
    } else {
        fault->crash_at_op = op;
        fault->crash_at_seed = seed;
        fault->crash_at_mode = mode;
    }
    pthread_mutex_unlock(&fault->lock);
    return rc;
}

int reel_io_fault_limit_undo(reel_fault_io_t *fault, uint64_t bytes_max)
{
    REEL_ASSERT(fault != NULL);
    if (bytes_max == 0)
        return -EINVAL;
    pthread_mutex_lock(&fault->lock);
    fault->undo_bytes_max = bytes_max;
    pthread_mutex_unlock(&fault->lock);
    return 0;
}

void reel_io_fault_stats(reel_fault_io_t *fault, reel_fault_stats_t *out)
{
    REEL_ASSERT(fault != NULL);
    REEL_ASSERT(out != NULL);
    pthread_mutex_lock(&fault->lock);
    *out = (reel_fault_stats_t){
        .ops = fault->ops, .faults = fault->faults, .undo_bytes = fault->undo_bytes,
        .undo_records = fault->undo_records, .ns_pending = fault->ns_count,
        .crashed = fault->dead ? 1 : 0, .crashed_at_op = fault->crashed_at_op,
        .crash_err = fault->crash_err,
    };
    memcpy(out->ops_by_kind, fault->ops_by_kind, sizeof(out->ops_by_kind));
    pthread_mutex_unlock(&fault->lock);
}
