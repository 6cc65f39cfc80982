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

#endif
