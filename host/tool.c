/* tool.c - one-shot Lua tools run from the command line.
 *
 * Same set-up as a worker minus HTTP: crypto, the PostgreSQL pool, Redis, the
 * VM and one generation built from a fresh snapshot of the scripts. The tool
 * ends the loop through lua_host's tool_exit hook. */
#include "tool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "crypto.h"
#include "log.h"
#include "lua_crypto.h"
#include "lua_db.h"
#include "lua_host.h"
#include "pg.h"
#include "redis.h"
#include "snapshot.h"
#include "vm.h"

static int exit_status = -1;

static void on_exit_requested(int status) {
    exit_status = status;
    uv_stop(vm_loop());
}

int tool_run(const char *name, int argc, char **argv, const char *input) {
    char err[2048];
    log_init(config_str("LOG_LEVEL"), "tool", -1);
    uv_loop_t *loop = uv_default_loop();
    const char *secret = config_str("JWT_SECRET_KEY");
    if (crypto_init() < 0) return fprintf(stderr, "cchost: crypto initialisation failed\n"), 1;
    if (*secret) lua_jwt_set_secret((const unsigned char *)secret, strlen(secret));
    pg_options_t po = {
        .conninfo = config_str("DATABASE_URL"),
        .pool_size = 2,
        .wait_timeout_ms = config_num("DB_POOL_TIMEOUT_MS"),
        .statement_timeout_ms = config_num("DB_STATEMENT_TIMEOUT_MS"),
        .connect_timeout_ms = config_num("DB_CONNECT_TIMEOUT_MS"),
    };
    if (pg_init(loop, &po, err, sizeof err) < 0) return fprintf(stderr, "cchost: %s\n", err), 1;
    lua_db_set_tx_retries((int)config_num("DB_TX_RETRIES"));
    redis_init(loop, config_str("REDIS_HOST"), (int)config_num("REDIS_PORT"), config_str("REDIS_PASSWORD"),
               config_num("REDIS_COMMAND_TIMEOUT_MS"), config_num("REDIS_CONNECT_TIMEOUT_MS"));
    char *snap = NULL;
    size_t len = 0;
    const char *config_dir = getenv("CONFIG_DIR") ? getenv("CONFIG_DIR") : "config";
    int fd = snapshot_create(config_str("SCRIPTS_DIR"), config_str("FIXTURE_SCRIPTS"), config_dir, err, sizeof err);
    int rc = fd < 0 ? -1 : snapshot_load(fd, &snap, &len, err, sizeof err);
    if (fd >= 0) close(fd);
    if (rc == 0) rc = vm_init(loop, -1, err, sizeof err);
    if (rc == 0) rc = vm_prepare(snap, len, 1, err, sizeof err);
    free(snap);
    if (rc == 0) rc = vm_commit(1);
    if (rc < 0) return fprintf(stderr, "cchost: cannot load the scripts: %s\n", err), 1;
    lua_host_set_tool_exit(on_exit_requested);
    if (vm_run_tool(name, argc, argv, input, err, sizeof err) < 0) {
        fprintf(stderr, "cchost: %s\n", err);
        return 2;
    }
    uv_run(loop, UV_RUN_DEFAULT);
    fflush(stdout);
    return exit_status < 0 ? 1 : exit_status;
}
