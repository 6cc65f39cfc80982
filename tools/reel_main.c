/*
 * reel_main.c: the `reel` command line tool: dispatch to subcommands.
 */
#include <stdio.h>
#include <string.h>

#include "engine/common.h"
#include "engine/io.h"
#include "tools/cmds.h"

/* reel io-probe: which storage backend this machine gives the log. Exit 0
 * when io_uring can be set up, 1 when only the sync fallback works. */
static int cmd_io_probe(int argc, char **argv)
{
    reel_io_t *io;
    if (argc > 1 && strcmp(argv[1], "--help") == 0) {
        printf("usage: reel io-probe\n\nSays which I/O backend the log gets on this machine:\n"
               "\"uring\" (exit 0), or \"sync\" and why io_uring cannot be set up (exit 1).\n");
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "reel io-probe: takes no arguments, got '%s' (see --help)\n", argv[1]);
        return 2;
    }
    int rc = reel_io_uring_create(&io);
    if (rc == 0) {
        printf("uring\n");
        reel_io_destroy(io);
        return 0;
    }
    printf("sync (io_uring unavailable: %s)\n", reel_strerror(rc));
    return 1;
}

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} command_t;

static const command_t commands[] = {
    {"dump", reel_cmd_dump, "print the log's records (offset, type, time, size, payload)"},
    {"verify", reel_cmd_verify, "check the whole log: checksums, chain, segments; exit 0 only when whole"},
    {"rebuild", reel_cmd_rebuild, "rebuild the views from the log (reeld stopped)"},
    {"replay", reel_cmd_replay, "build the views as of an offset: replay --to N --into DIR"},
    {"views-hash", reel_cmd_views_hash, "digest of the views' content, to compare with a rebuild"},
    {"import", reel_cmd_import, "NDJSON of API commands, MovieLens 100K or CollegeMsg, with their own times"},
    {"stat", reel_cmd_stat, "what the log holds: segments, sizes, events by type and day, busiest users"},
    {"inspect", reel_cmd_inspect, "one user, post or generation as JSON; --history: its events"},
    {"export", reel_cmd_export, "events into one file per type, JSON lines or CSV, resumable"},
    {"loadgen", reel_cmd_loadgen, "a synthetic world from a seed: into a data dir (fast) or to reeld"},
    {"io-probe", cmd_io_probe, "say which I/O backend the log gets here: uring, or sync and why"},
    {"bench", reel_cmd_bench, "run benchmarks: reel bench NAME|all [--quick]; JSON lines"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: reel COMMAND [ARGS]   (reel COMMAND --help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "reel: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
