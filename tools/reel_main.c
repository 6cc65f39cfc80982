/*
 * reel_main.c: the `reel` command line tool: dispatch to subcommands.
 */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    (void)argv;
    if (argc < 2) {
        fprintf(stderr, "usage: reel COMMAND [ARGS]\n");
        return 2;
    }
    fprintf(stderr, "reel: unknown command\n");
    return 2;
}
