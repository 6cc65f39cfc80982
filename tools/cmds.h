/*
 * cmds.h: the subcommands of `reel`. Each takes the arguments after its
 * name (argv[0] is the subcommand's name) and returns the process exit
 * status: 0 success, 1 the check failed (verify: the log is not whole),
 * 2 bad usage or an error that stopped the command.
 */
#ifndef REEL_TOOLS_CMDS_H
#define REEL_TOOLS_CMDS_H

int reel_cmd_dump(int argc, char **argv);
int reel_cmd_verify(int argc, char **argv);
int reel_cmd_bench(int argc, char **argv);
int reel_cmd_rebuild(int argc, char **argv);
int reel_cmd_replay(int argc, char **argv);
int reel_cmd_views_hash(int argc, char **argv);
int reel_cmd_import(int argc, char **argv);
int reel_cmd_stat(int argc, char **argv);
int reel_cmd_inspect(int argc, char **argv);
int reel_cmd_export(int argc, char **argv);
int reel_cmd_loadgen(int argc, char **argv);

#endif
