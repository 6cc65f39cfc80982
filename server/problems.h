/*
 * problems.h: one log line per problem, not per request. A class of
 * problem (storage refusing writes, accept errors, the connection limit,
 * slow clients cut, bad requests) is reported on stderr when it starts,
 * then at most once per PROBLEM_REPORT_MS with the count since the last
 * line and the latest detail; a burst of a thousand bad requests is one
 * or two lines, not a thousand.
 *
 * Threads: the loop thread only (no locking).
 */
#ifndef REEL_SERVER_PROBLEMS_H
#define REEL_SERVER_PROBLEMS_H

#include <stdint.h>

typedef enum reel_problem {
    REEL_PROBLEM_STORAGE,     /* writes refused: the log is read-only, the engine failed */
    REEL_PROBLEM_ACCEPT,      /* accepting connections failed */
    REEL_PROBLEM_CONN_LIMIT,  /* connections refused over --max-connections */
    REEL_PROBLEM_SLOW_CLIENT, /* clients cut: header, body or idle timeout, SSE overflow */
    REEL_PROBLEM_BAD_REQUEST, /* 400, 413, 431, 505 from the transport */
    REEL_PROBLEM_OVERLOAD,    /* writes refused with 503: too many in flight, engine queue full */
    REEL_PROBLEM_COUNT
} reel_problem_t;

/* At most one line per class this often. */
#define REEL_PROBLEM_REPORT_MS 10000u

/* Counts one occurrence of p (detail: printf format, one short line) and
 * prints a line when the class starts or its report period has passed. */
void reel_problem(reel_problem_t p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prints the counts held back whose report period has passed (called from
 * a timer, so the tail of a burst is reported too). */
void reel_problems_flush(void);
/* Occurrences of p since start (tests, /metrics). */
uint64_t reel_problem_total(reel_problem_t p);

#endif /* REEL_SERVER_PROBLEMS_H */
