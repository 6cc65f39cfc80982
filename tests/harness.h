/*
 * harness.h: helpers shared by the tests: scratch directories and files.
 */
#ifndef REEL_TESTS_HARNESS_H
#define REEL_TESTS_HARNESS_H

#include <stddef.h>
#include <stdint.h>

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
/* Asserts an answer's status and error code (NULL: a success). */
void reel_test_expect(reel_cmd_result_t r, int status, const char *code);
/* Asserts that e's live views equal a fold of its log into fresh views
 * (made under dir): the views are a function of the log. */
void reel_test_views_equal_replay(reel_engine_t *e, const char *dir);

#endif
