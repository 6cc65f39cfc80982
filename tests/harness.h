/*
 * harness.h: helpers shared by the tests: scratch directories and files,
 * engine commands, and reeld driven over raw HTTP/1.1.
 */
#ifndef REEL_TESTS_HARNESS_H
#define REEL_TESTS_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Makes a fresh scratch directory under $TMPDIR (or /tmp) and returns its
 * path in buf. Aborts the test process on failure. */
void reel_test_tmpdir(char *buf, size_t len, const char *tag);
/* rm -rf path. */
void reel_test_rmtree(const char *path);
/* Deterministic PRNG (splitmix64) for tests that must be repeatable. */
uint64_t reel_test_rand(uint64_t *state);
/* Reads or writes a whole file; return 0 or -errno. */
int reel_test_read_file(const char *path, uint8_t **data, size_t *len);
int reel_test_write_file(const char *path, const void *data, size_t len);

/* ---- running the project's binaries ---- */

/* What one run of a binary did. */
typedef struct reel_test_run {
    int status; /* exit status, or -1 when it did not exit */
    char *out;  /* stdout, NUL-terminated */
    char *err;  /* stderr */
} reel_test_run_t;

/* $REEL_BIN/name (build/name when unset) into bin; asserts it is built. */
void reel_test_bin(const char *name, char *bin, size_t len);
/* Starts $REEL_BIN/reel with args (NULL-terminated, at most 38), stdout
 * and stderr into the files out and err; returns its pid. */
pid_t reel_test_reel_spawn(const char *const *args, const char *out, const char *err);
/* Runs `reel ARGS...` (NULL-terminated) to its end, stdout and stderr
 * through files in dir; free the result with reel_test_run_free. */
reel_test_run_t reel_test_reel_run(const char *dir, const char *first, ...);
void reel_test_run_free(reel_test_run_t *r);
/* A whole file, NUL-terminated (free it); asserts it can be read. */
char *reel_test_slurp(const char *path);

/* For engine tests (engine/reel.h). */
#include "engine/reel.h"

/* Runs one command on e (at: its client time, 0 for none) and returns the
 * answer; the submission itself must succeed. */
reel_cmd_result_t reel_test_cmd(reel_engine_t *e, reel_cmd_kind_t kind, uint64_t at,
                                reel_event_t args);
/* Submits cmds[0..n) at once (they share batches, as a server's would) and
 * waits for every answer; each must succeed. out (may be NULL) gets the
 * answers in order. At most REEL_ENGINE_QUEUE_MAX (65536) at a time. */
void reel_test_cmds(reel_engine_t *e, const reel_cmd_t *cmds, size_t n, reel_cmd_result_t *out);
/* The same, whatever the answers are (refusals, 503s): out[0..n) gets them. */
void reel_test_cmds_answers(reel_engine_t *e, const reel_cmd_t *cmds, size_t n,
                            reel_cmd_result_t *out);
/* Asserts an answer's status and error code (NULL: a success). */
void reel_test_expect(reel_cmd_result_t r, int status, const char *code);
/* Asserts that e's live views equal a fold of its log into fresh views
 * (made under dir): the views are a function of the log. */
void reel_test_views_equal_replay(reel_engine_t *e, const char *dir);

/* ---- reeld and raw HTTP/1.1, for the server's integration tests ---- */
#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

/* Milliseconds of CLOCK_MONOTONIC. */
uint64_t reel_test_now_ms(void);
/* Starts $REEL_BIN/reeld (default build/reeld) with --data data_dir
 * --listen 127.0.0.1:0 and extra (NULL-terminated, may be NULL); its
 * stdout goes to dir/out.txt, its stderr is appended to dir/err.txt.
 * Waits (bounded) for its "listening on" line; *port gets the bound port.
 * Returns the pid; asserts on failure. */
pid_t reel_test_reeld_start(const char *dir, const char *data_dir, const char *const *extra,
                            int *port);
/* Sends sig to pid and reaps it: the exit status, or -1 when a signal
 * ended it. */
int reel_test_reeld_stop(pid_t pid, int sig);
/* Ends a spawned binary (reeld, reel-render) at a test's teardown and reaps
 * it. SIGKILL, except under `make valgrind` (REEL_TEST_VALGRIND set): then
 * SIGTERM and up to 60 s for a clean exit before SIGKILL, so that valgrind's
 * leak check runs in the child; a killed child reports no leaks. */
void reel_test_child_end(pid_t pid);
/* A socket connected to 127.0.0.1:port with 10 s send/receive timeouts,
 * or -1 (no assertion: usable from threads). */
int reel_test_http_connect(int port);
/* Sends all of p; false when the peer closed or the send timed out. */
bool reel_test_http_send(int fd, const void *p, size_t n);
/* Reads until the peer closes (or resets) or timeout_ms pass; *closed
 * (may be NULL) says which. NUL-terminated, malloc'd. */
char *reel_test_http_read(int fd, int timeout_ms, size_t *len, bool *closed);
/* Length of the first complete answer (Content-Length framed) in
 * p[0..n), or 0 when incomplete. */
size_t reel_test_http_answer_len(const char *p, size_t n);

/* An answer: status, the raw bytes, the body in them, the body as JSON. */
typedef struct reel_test_resp {
    int status;
    char *raw;    /* malloc'd */
    char *body;   /* into raw */
    json_t *json; /* the body parsed, or NULL */
} reel_test_resp_t;
/* Decodes a chunked body in place (NUL-terminated); returns its length.
 * Stops at the last chunk or where the body is malformed or cut short. */
size_t reel_test_http_dechunk(char *p);
/* Parses raw (taken: freed by reel_test_resp_free); a chunked body is
 * decoded in place. */
reel_test_resp_t reel_test_resp_parse(char *raw);
void reel_test_resp_free(reel_test_resp_t *r);
/* One request on its own connection (Connection: close); headers: extra
 * "Name: v\r\n" lines or NULL; body NULL for none. The answer until the
 * server closes (expected within 10 s). */
reel_test_resp_t reel_test_http(int port, const char *method, const char *path,
                                const char *body, const char *headers);
/* The body's integer member key (asserted present). */
long long reel_test_jint(const reel_test_resp_t *r, const char *key);
/* The error object's member key ("code", "field", ...), "" when absent. */
const char *reel_test_jerr(const reel_test_resp_t *r, const char *key);

#endif
