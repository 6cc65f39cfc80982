/*
 * test_io_fallback.c: when io_uring cannot be set up, the log falls back to
 * the sync backend by itself. The test blocks io_uring_setup the way
 * Docker's default profile does (seccomp, EPERM) in a child process, then
 * opens a log there and appends.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/common.h"
#include "engine/io.h"
#include "engine/log.h"
#include "tests/harness.h"

/* Installs a seccomp filter: io_uring_setup fails with EPERM. */
static int block_io_uring(void)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {(unsigned short)(sizeof(filter) / sizeof(filter[0])), filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -1;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

/* The child's checks; exit code 0 when all hold. */
static int child_main(const char *dir)
{
    reel_io_t *io;
    reel_log_t *log;
    reel_log_stats_t st;
    if (block_io_uring() != 0)
        return 10;
    if (reel_io_uring_create(&io) != -EPERM)
        return 11; /* the filter works: io_uring is refused */
    if (reel_io_create(REEL_IO_AUTO, &io) != 0 || strcmp(io->name, "sync") != 0)
        return 12;
    reel_io_destroy(io);
    if (reel_log_open(dir, NULL, &log, NULL, 0) != 0)
        return 13;
    reel_log_stats(log, &st);
    if (strcmp(st.io_name, "sync") != 0)
        return 14;
    if (reel_log_append(log, 1, "fallback", 8, NULL) != 0)
        return 15;
    return reel_log_close(log) == 0 ? 0 : 16;
}

Test(io_fallback, log_falls_back_to_sync_when_io_uring_is_blocked, .timeout = 60)
{
    char dir[PATH_MAX];
    int status;
    unsetenv("REEL_IO");
    reel_test_tmpdir(dir, sizeof(dir), "fallback");
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0)
        _exit(child_main(dir));
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    reel_test_rmtree(dir);
    cr_assert(WIFEXITED(status), "child died");
    cr_assert_eq(WEXITSTATUS(status), 0, "child check %d failed", WEXITSTATUS(status));
}
