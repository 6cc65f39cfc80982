/*
 * import_read.h: the readers behind `reel import` (tools/cmd_import.c): they
 * turn a data set's files into a plan, the list of API commands to submit
 * in time order, before anything touches a data directory.
 *
 * Why a plan first. The engine refuses time going backwards, so the input
 * must be sorted by time (stably: ties keep file order), which needs all of
 * it read first. And a bad line must never be half-applied: every line is
 * checked completely while the plan is built, and a bad one adds no
 * command at all (it is reported with its line number, or with --strict
 * it stops the import before the engine is even opened).
 *
 * Ids. A plan names users and posts by their rank of creation (1, 2, ...):
 * the k-th USER_CREATE of the plan makes local user k, the k-th
 * POST_CREATE local post k. The engine gives ids in creation order (one
 * more than the largest so far), so engine id = base + k, where base is the
 * largest id in the data directory before the import; cmd_import.c checks
 * every answer against that.
 *
 * Mapping (../shared/data/README.md):
 *   MovieLens 100K  user N -> user "ml_uN" at their first rating; movie N
 *                   -> user "ml_mN" (its made-up creator) and a post by
 *                   it, both at the movie's first rating, prompt = title
 *                   (Latin-1 in u.item, UTF-8 here), tags = its genres
 *                   (u.genre names), video_uri "movielens-100k:item/N";
 *                   every rating -> a completed view (watch_ms
 *                   REEL_IMPORT_WATCH_MS), then a rating of 4 or 5 -> a like.
 *                   Movies nobody rated are not imported (they have no
 *                   time).
 *   CollegeMsg      message A -> B at t -> user "cm_uA" and "cm_uB" at
 *                   their first appearance (A first), then A follows B
 *                   (repeats are the engine's no-ops); A -> A is skipped.
 * Times: unix seconds * 1000 (ms); 0 is refused (the engine reads at = 0
 * as "no client time").
 */
#ifndef REEL_TOOLS_IMPORT_READ_H
#define REEL_TOOLS_IMPORT_READ_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/event.h"
#include "engine/reel.h"

/* Longest input line: the longest u.item line is ~170 bytes; a line over
 * this is a bad line, so memory per line stays bounded. */
#define REEL_IMPORT_LINE_MAX 4096u
/* Largest user or movie number an input may use: per-id tables are
 * arrays indexed by it (at most 64 MiB at 4 bytes an entry). */
#define REEL_IMPORT_ID_MAX (1u << 24)
/* Data lines one import reads at most: the plan holds up to four
 * commands per line (24 bytes each), ~1.5 GiB at this bound. */
#define REEL_IMPORT_LINES_MAX (16u << 20)
/* Genres u.genre may name (a bit each in a movie's mask). */
#define REEL_IMPORT_GENRES_MAX 32u
/* Bad lines reported one by one; the rest are counted. */
#define REEL_IMPORT_BAD_SHOWN 100u
/* Watch time of an imported view: the ratings say a movie was seen, not
 * for how long, so every view is a completed 30 s clip. */
#define REEL_IMPORT_WATCH_MS 30000u

/* One command of the plan. */
typedef struct reel_import_op {
    uint64_t at_ms; /* client time */
    uint32_t line;  /* line of the data file it comes from */
    uint8_t kind;   /* reel_cmd_kind_t: USER_CREATE, POST_CREATE, FOLLOW, VIEW, LIKE */
    uint32_t a;     /* the local user it creates, or that acts (author, follower, viewer) */
    uint32_t b;     /* the local post it creates, views or likes, or the user followed */
} reel_import_op_t;

/* A post to create: its strings live as long as the plan. */
typedef struct reel_import_post {
    char *prompt;                     /* UTF-8, owned */
    uint32_t prompt_len;
    uint32_t ntags;
    reel_str_t tags[REEL_TAGS_MAX];   /* into the plan's genre names */
    char uri[40];                     /* video_uri, NUL-terminated */
} reel_import_post_t;

typedef struct reel_import_plan {
    const char *source;       /* "movielens" or "collegemsg" */
    char data_path[PATH_MAX]; /* the file whose lines `line` counts */
    reel_import_op_t *ops;    /* in submission order (time order) */
    uint64_t nops;
    uint64_t ops_cap;
    char (*handles)[REEL_HANDLE_LEN_MAX + 1]; /* [local user], 1-based */
    uint32_t nusers;
    uint32_t users_cap;       /* entries of handles */
    reel_import_post_t *posts; /* [local post], 1-based */
    uint32_t nposts;
    uint32_t posts_cap;       /* entries of posts */
    char *genres[REEL_IMPORT_GENRES_MAX]; /* u.genre names (UTF-8), owned */
    uint64_t lines;           /* data lines read (headers not counted) */
    uint64_t bad;             /* bad lines, in any file of the data set */
    uint64_t skipped;         /* good lines that mean nothing (self-messages) */
    uint64_t first_at_ms;     /* time of the first op (0: no ops) */
} reel_import_plan_t;

/* Reads MovieLens 100K from dir (u.genre, u.item, u.data) into *plan
 * (zeroed first). Bad lines go to err with their file and line number and
 * are skipped; with strict the first one stops the read. Returns 0 (see
 * plan->bad), REEL_EUSAGE (strict and a bad line; a message was printed),
 * REEL_ECORRUPT (a file is unusable as a whole, e.g. no genres), -ENOMEM,
 * -errno (a file could not be read). On error the plan is freed. */
int reel_import_read_movielens(const char *dir, bool strict, FILE *err,
                               reel_import_plan_t *plan);
/* Reads CollegeMsg (`src dst time` lines, an optional header first) from
 * path into *plan; as reel_import_read_movielens. */
int reel_import_read_collegemsg(const char *path, bool strict, FILE *err,
                                reel_import_plan_t *plan);
/* ---- NDJSON of API commands (reel import --ndjson; docs/EXPORTS.md) ----
 * One command a line, the /v1/batch line plus its time:
 *   {"op": "METHOD /path", "body"?: {...}, "at": MS, "idempotency_key"?: "k"}
 * parsed as reeld parses a request (server/cmdjson.h) into an engine
 * command with cmd.at = at. Blank lines are skipped. A line is bad when it
 * is not such an object, its op is not a write route, its body breaks the
 * route's fields, "at" is not an integer in 1..2^53-1 or is earlier than
 * the line before's (the engine's time never goes back), or it is longer
 * than REEL_IMPORT_NDJSON_LINE_MAX bytes. */

/* Longest NDJSON line: the API's largest body (1 MiB) and its envelope. */
#define REEL_IMPORT_NDJSON_LINE_MAX ((1u << 20) + 4096u)

/* One parsed line: the command's strings point into root. */
typedef struct reel_import_cmd {
    reel_cmd_t cmd;     /* at set, admin set (an import is the operator's) */
    void *root;         /* json_t *: the line, owning the strings */
    uint8_t *embedding; /* malloc'd float32 LE for cmd.args.embedding, or NULL */
    uint32_t line;      /* 1-based line number in the file */
} reel_import_cmd_t;

typedef struct reel_import_cmds {
    char path[PATH_MAX];
    reel_import_cmd_t *cmds; /* good lines, in file order */
    uint64_t n;
    uint64_t cap;
    uint64_t lines;          /* non-blank lines read */
    uint64_t bad;            /* bad lines (skipped) */
    uint64_t first_at_ms;    /* at of the first command (0: none) */
} reel_import_cmds_t;

/* Reads path into *out (zeroed first). Bad lines go to err with their line
 * number and the API's error (code, field, message) and are skipped; with
 * strict the first one stops the read. Returns 0 (see out->bad),
 * REEL_EUSAGE (strict and a bad line), -ENOMEM, -errno (unreadable). On
 * error *out is freed. */
int reel_import_read_ndjson(const char *path, bool strict, FILE *err, reel_import_cmds_t *out);
void reel_import_cmds_free(reel_import_cmds_t *c);

/* Frees what the plan owns. NULL is a no-op. */
void reel_import_plan_free(reel_import_plan_t *plan);

#endif /* REEL_TOOLS_IMPORT_READ_H */
