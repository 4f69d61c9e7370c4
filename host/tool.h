/* tool.h - one-shot Lua tools run from the command line.
 *
 * `cchost admin create`, `cchost rtp`, `cchost verify` and friends are Lua
 * functions declared with host.tool{} under scripts/tools/: they reuse the
 * domain code (wallet, auth, game rules) instead of duplicating it in C. The
 * runner builds one generation of the scripts on a private loop with the
 * configured PostgreSQL and Redis, runs the tool in a coroutine, and exits
 * with the status the tool returned. */
#ifndef CCHOST_TOOL_H
#define CCHOST_TOOL_H

/* Runs tool `name` with argv (becomes args[1..argc]) and input (a secret such
 * as a password read from stdin; args.input, may be NULL). Returns the exit
 * status: the tool's number, 1 when it raised, 2 when it does not exist. */
int tool_run(const char *name, int argc, char **argv, const char *input);

#endif
