/* tool.c - one-shot Lua tools run from the command line.
 *
 * The same start-up as a worker (runtime.c: crypto, the PostgreSQL pool,
 * Redis, the VM) with a two-connection pool and generation 1 built from a
 * fresh snapshot of the scripts, minus HTTP. The tool ends the loop through
 * lua_host's tool_exit hook. */
#include "tool.h"

#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include "config.h"
#include "log.h"
#include "lua_host.h"
#include "runtime.h"
#include "snapshot.h"
#include "vm.h"

static int exit_status = -1;

static void tool__on_exit_requested(int status) {
    exit_status = status;
    uv_stop(vm_loop());
}

int tool_run(const char *name, int argc, char **argv, const char *input) {
    char err[2048];
    log_init(config_str("LOG_LEVEL"), "tool", -1);
    uv_loop_t *loop = uv_default_loop();
    const char *config_dir = getenv("CONFIG_DIR") ? getenv("CONFIG_DIR") : "config";
    int fd = snapshot_create(config_str("SCRIPTS_DIR"), config_str("FIXTURE_SCRIPTS"), config_dir, err, sizeof err);
    if (fd < 0) return fprintf(stderr, "cchost: cannot load the scripts: %s\n", err), 1;
    runtime_options_t ro = {.worker_id = -1, .db_pool_size = 2, .snapshot_fd = fd, .generation = 1};
    int rc = runtime_start(loop, &ro, err, sizeof err);
    if (rc < 0) return fprintf(stderr, "cchost: %s%s\n", rc == -2 ? "cannot load the scripts: " : "", err), 1;
    lua_host_set_tool_exit(tool__on_exit_requested);
    if (vm_run_tool(name, argc, argv, input, err, sizeof err) < 0) {
        fprintf(stderr, "cchost: %s\n", err);
        return 2;
    }
    uv_run(loop, UV_RUN_DEFAULT);
    fflush(stdout);
    return exit_status < 0 ? 1 : exit_status;
}
