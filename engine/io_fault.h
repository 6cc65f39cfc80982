/*
 * io_fault.h: a storage backend for tests that fails on purpose and can
 * simulate a power cut.
 *
 * The fault backend wraps another backend (the "inner" one, normally
 * reel_io_sync_create()) and is itself a reel_io_t, so the log runs on it
 * unchanged. Every call reaches REAL files through the inner backend. On
 * top of that it:
 *
 *   1. Numbers the write-type operations. Each call of write,
 *      write_durable, datasync, fsync (of a file or a directory),
 *      truncate, rename and unlink gets the next global sequence number,
 *      starting at 1. open, close and read are not numbered. A test runs a
 *      workload once, reads reel_fault_stats_t.ops, and then knows how many
 *      crash points the workload has.
 *   2. Injects failures by plan (reel_io_fault_set): "op #N fails with
 *      EIO", "the 3rd datasync fails", "every write after op #N fails with
 *      ENOSPC", "each write fails with probability p" (seeded, so
 *      repeatable), "write #N is short", "write #N is silently dropped".
 *   3. Simulates a power cut (reel_io_fault_crash, reel_io_fault_crash_at).
 *      It remembers, for every file, each change that is not yet durable,
 *      with an undo record: the range, the bytes that were there before and
 *      the file size before. A successful datasync or fsync of the file, or
 *      write_durable, makes all of that file's changes durable and drops the
 *      records. Creates, renames and unlinks are remembered per directory
 *      and become durable only when the directory is fsynced. A crash then
 *      rolls the files back to a state that a real disk could have after
 *      losing power now (see reel_fault_crash_mode_t), and the backend goes
 *      dead: the process and the machine are gone.
 *
 * Invariants (cited by number in io_fault.c):
 *   1. Every change to a file since its last successful sync has an undo
 *      record, and the records of one file are ordered newest first.
 *   2. Undoing every record of a file, newest first, gives back exactly the
 *      file as of its last successful sync.
 *   3. A pending namespace operation holds what its undo needs (the inode
 *      it created, or an open fd of the file it unlinked or replaced).
 *   4. Once dead (after a crash), no call but close touches a file, and
 *      every call but close and destroy returns -EIO.
 *
 * What it models, and what it does not:
 *   - The disk writes 512-byte sectors; data that was not synced may reach
 *     the disk in any subset of its sectors, in any order.
 *   - fdatasync makes a file's size durable along with its data, as Linux
 *     does. fsync of a file does not make its directory entry durable; only
 *     fsync of the directory does (POSIX; ext4 is kinder than this).
 *     fdatasync of a directory makes no name durable.
 *   - Namespace operations are lost as a suffix: a crash keeps some prefix
 *     of the pending creates, renames and unlinks (journaling file systems
 *     commit them in order).
 *   - An undone unlink, or an undone rename that replaced a file, brings the
 *     file back as a NEW file with the same name, mode and bytes (a copy
 *     made at crash time from an fd kept open), not as the old inode.
 *   - O_TRUNC at open is modelled as a tracked truncate to 0 (not numbered).
 *     O_APPEND is refused with -EINVAL: pwrite ignores the offset on such an
 *     fd, and the undo records would be wrong.
 *   - Paths are relative to the cwd, as in io.h; the cwd must not change
 *     between an operation and the crash that undoes it.
 *   - Hard links, mmap, O_TMPFILE and directories made or removed outside
 *     this backend are not modelled.
 *
 * Memory is bounded: undo records hold at most REEL_FAULT_UNDO_BYTES_MAX
 * bytes of old data (reel_io_fault_limit_undo changes it); a write or
 * truncate that would pass the bound fails with -ENOMEM and changes
 * nothing. At most REEL_FAULT_FILES_MAX files with pending changes,
 * REEL_FAULT_NS_OPS_MAX pending namespace operations, REEL_FAULT_RULES_MAX
 * rules, and fds below REEL_FAULT_FDS_MAX.
 *
 * Ownership: reel_io_fault_create() borrows the inner backend, which must
 * outlive the fault backend; destroying the fault backend (with
 * reel_io_destroy(reel_io_fault_io(f)) or reel_io_fault_destroy(f)) does
 * not destroy the inner one, and does not roll anything back.
 *
 * Thread-safety: every call is thread-safe. One mutex serializes the
 * numbered operations with each other and with a crash, so the sequence
 * numbers follow the order in which the operations reached the files.
 * Reads are not serialized (only the dead check is).
 */
#ifndef REEL_IO_FAULT_H
#define REEL_IO_FAULT_H

#include <stddef.h>
#include <stdint.h>

#include "engine/io.h"

/* Bounds of the model. Undo bytes: 256 MiB holds 16 full write batches
 * (REEL_BATCH_BYTES_MAX) of overwritten data, far more than any test keeps
 * unsynced. Files: 1024 with pending changes at once. fds: the table is
 * indexed by fd, 4096 fds (a test process rarely passes a few hundred).
 * Namespace ops: 1024 pending creates, renames and unlinks between
 * directory fsyncs. Rules: 16, plenty for one test plan. */
#define REEL_FAULT_UNDO_BYTES_MAX (256ull << 20)
#define REEL_FAULT_FILES_MAX 1024u
#define REEL_FAULT_FDS_MAX 4096u
#define REEL_FAULT_NS_OPS_MAX 1024u
#define REEL_FAULT_RULES_MAX 16u
/* The sector: the unit a crash keeps, reverts or tears. */
#define REEL_FAULT_SECTOR_SIZE 512u

/* The fault backend; a reel_io_t (reel_io_fault_io) with test controls. */
typedef struct reel_fault_io reel_fault_io_t;

/* The kinds of numbered operation, as bits so a rule can match several. */
typedef enum reel_fault_op {
    REEL_FAULT_OP_WRITE = 1u << 0,
    REEL_FAULT_OP_WRITE_DURABLE = 1u << 1,
    REEL_FAULT_OP_DATASYNC = 1u << 2,
    REEL_FAULT_OP_FSYNC = 1u << 3, /* of a file or of a directory */
    REEL_FAULT_OP_TRUNCATE = 1u << 4,
    REEL_FAULT_OP_RENAME = 1u << 5,
    REEL_FAULT_OP_UNLINK = 1u << 6,
} reel_fault_op_t;

#define REEL_FAULT_OP_KINDS 7u
#define REEL_FAULT_OP_ALL ((1u << REEL_FAULT_OP_KINDS) - 1u)
#define REEL_FAULT_OP_ANY_WRITE (REEL_FAULT_OP_WRITE | REEL_FAULT_OP_WRITE_DURABLE)
#define REEL_FAULT_OP_ANY_SYNC \
    (REEL_FAULT_OP_DATASYNC | REEL_FAULT_OP_FSYNC | REEL_FAULT_OP_WRITE_DURABLE)

/* What a rule does to the operation it fires on. */
typedef enum reel_fault_action {
    /* The operation does nothing and returns -err. A failed datasync or
     * fsync leaves the file's changes pending: a later successful sync
     * makes them durable (a forgiving kernel). */
    REEL_FAULT_FAIL = 0,
    /* Syncs (datasync, fsync of a file, write_durable): the sync fails with
     * -err and the file's pending changes are lost for good, as Linux does
     * after a writeback error (fsyncgate): they are rolled back in the file
     * now, so reads no longer see them and a retried sync that "succeeds"
     * cannot bring them back. write_durable writes its bytes first, so they
     * are lost too. On other kinds it acts as REEL_FAULT_FAIL. */
    REEL_FAULT_FAIL_LOSE = 1,
    /* write and write_durable: the first short_bytes bytes reach the file
     * (not durable), the rest do not, and the call returns -err: io.h never
     * returns a short write as success. On other kinds it acts as
     * REEL_FAULT_FAIL. */
    REEL_FAULT_SHORT = 2,
    /* The operation returns 0 and does nothing: a write never reaches the
     * file, a sync makes nothing durable (a disk that lies), a truncate,
     * rename or unlink is not done. */
    REEL_FAULT_DROP = 3,
} reel_fault_action_t;

/* One rule of a failure plan. Zero-initialize, then set what you need.
 * A rule fires on an operation when ALL of its conditions hold:
 *   - the operation's kind is in ops;
 *   - at_op is 0, or the operation's sequence number is at_op;
 *   - nth is 0, or this is the nth operation (1-based) of a kind in ops
 *     since the rule was set;
 *   - the sequence number is greater than after_op;
 *   - fewer than fire_max firings so far (fire_max 0: no limit);
 *   - chance_ppm is 0 (always), or a draw from the rule's PRNG, seeded with
 *     seed, falls below chance_ppm / 1e6. The draw is made only when every
 *     other condition holds, so the same workload gives the same firings.
 * When several rules fire on one operation, the lowest slot wins. */
typedef struct reel_fault_rule {
    uint32_t ops;               /* REEL_FAULT_OP_* bits; 0 means REEL_FAULT_OP_ALL */
    reel_fault_action_t action; /* what happens when it fires */
    int err;                    /* positive errno to return (EIO, ENOSPC, EROFS); 0: EIO */
    uint64_t at_op;             /* exact global sequence number, 0: any */
    uint64_t nth;               /* nth matching operation, 0: any */
    uint64_t after_op;          /* only operations numbered above this */
    uint64_t fire_max;          /* firings at most, 0: no limit */
    uint32_t chance_ppm;        /* probability in parts per million, 0: always */
    uint64_t seed;              /* PRNG seed for chance_ppm */
    size_t short_bytes;         /* REEL_FAULT_SHORT: bytes written; 0: half of the write */
} reel_fault_rule_t;

/* How a crash treats what was not durable. */
typedef enum reel_fault_crash_mode {
    /* Everything not durable is lost: each file goes back to its last
     * successful sync, and every pending create, rename and unlink is
     * undone. The seed is not used. This is LazyFS's
     * lose-unfsynced-writes, the worst case for acknowledged data. */
    REEL_FAULT_CRASH_LOSE_UNSYNCED = 0,
    /* Nothing is lost: the files stay as they are. This is kill -9 of the
     * process, with the OS flushing its cache later. */
    REEL_FAULT_CRASH_KEEP_UNSYNCED = 1,
    /* Each 512-byte sector of each pending write independently keeps the
     * new bytes or goes back to the old ones (disks that write sectors
     * atomically); a write that grew the file may be cut back to a sector
     * boundary or to the old size; a truncate is kept or undone; a random
     * prefix of the pending namespace operations is kept. */
    REEL_FAULT_CRASH_SECTORS = 2,
    /* As REEL_FAULT_CRASH_SECTORS, but a sector may also come back as zeros
     * or as garbage (a sector torn in flight). */
    REEL_FAULT_CRASH_TORN = 3,
} reel_fault_crash_mode_t;

/* Counters; a snapshot taken under the lock. */
typedef struct reel_fault_stats {
    uint64_t ops;                              /* last sequence number given out */
    uint64_t ops_by_kind[REEL_FAULT_OP_KINDS]; /* [i] counts kind (1u << i) */
    uint64_t faults;                           /* rule firings */
    uint64_t undo_bytes;                       /* old bytes held by undo records */
    uint64_t undo_records;                     /* pending (not durable) file changes */
    uint64_t ns_pending;                       /* pending creates, renames, unlinks */
    int crashed;                               /* 1 once a crash happened */
    uint64_t crashed_at_op;                    /* the op a crash_at crash preceded, else 0 */
    int crash_err;                             /* the rollback's result: 0 or -errno */
} reel_fault_stats_t;

/* Creates a fault backend over inner.
 *   inner: the backend that does the I/O; borrowed, must outlive *out.
 *   out:   the new backend; free it with reel_io_fault_destroy() or
 *          reel_io_destroy(reel_io_fault_io(*out)).
 * Returns 0, or -ENOMEM. */
int reel_io_fault_create(reel_io_t *inner, reel_fault_io_t **out);

/* The backend as a reel_io_t, to hand to the log. Valid as long as fault. */
reel_io_t *reel_io_fault_io(reel_fault_io_t *fault);

/* Frees the backend and what it tracks. Rolls nothing back (to roll back,
 * crash first), closes no fd of the caller, leaves the inner backend. */
void reel_io_fault_destroy(reel_fault_io_t *fault);

/* Adds a rule (copied) to the plan.
 * Returns the rule's slot (>= 0), -EINVAL for a rule with an unknown
 * action, op bits or a negative err, or -ENOBUFS when REEL_FAULT_RULES_MAX
 * rules are set. */
int reel_io_fault_set(reel_fault_io_t *fault, const reel_fault_rule_t *rule);

/* Removes every rule. Counters and pending changes are kept. */
void reel_io_fault_clear(reel_fault_io_t *fault);

/* How many times the rule in slot has fired; 0 for an empty slot. */
uint64_t reel_io_fault_fired(reel_fault_io_t *fault, int slot);

/* Simulates a power cut now (see reel_fault_crash_mode_t): rolls the real
 * files back to one crash state that seed picks (the same seed after the
 * same operations gives the same bytes), then the backend is dead.
 * Returns 0; -EIO or another -errno if rolling back a file failed (the
 * files are then in some state between, and the backend is dead anyway);
 * 0 and no change when it is already dead; -EINVAL for an unknown mode. */
int reel_io_fault_crash(reel_fault_io_t *fault, uint64_t seed, reel_fault_crash_mode_t mode);

/* Arms a crash just BEFORE operation number op (1-based) runs: that
 * operation does nothing and returns -EIO, and the files are rolled back as
 * reel_io_fault_crash(fault, seed, mode) would. op 0 disarms.
 * Returns 0, or -EINVAL when op is not above the operations done so far or
 * mode is unknown. */
int reel_io_fault_crash_at(reel_fault_io_t *fault, uint64_t op, uint64_t seed,
                           reel_fault_crash_mode_t mode);

/* Sets the bound on undo bytes (default REEL_FAULT_UNDO_BYTES_MAX).
 * Returns 0, or -EINVAL for 0. A lower bound than what is held now only
 * stops new changes. */
int reel_io_fault_limit_undo(reel_fault_io_t *fault, uint64_t bytes_max);

/* Copies the counters into *out. */
void reel_io_fault_stats(reel_fault_io_t *fault, reel_fault_stats_t *out);

#endif /* REEL_IO_FAULT_H */
