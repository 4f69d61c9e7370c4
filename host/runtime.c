/* runtime.c - what a process needs before it runs scripts: one start-up for
 * a worker and for a command-line tool.
 *
 * The services come first and the VM last, so no script code (building a
 * generation runs every file's top level) ever runs while a module it calls
 * has nothing behind it. Neither PostgreSQL nor Redis is contacted here
 * (the pool connects on demand, Redis in the background), so a database
 * that is down delays no start: the scripts get the error values then. */
#include "runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "crypto.h"
#include "json.h"
#include "lua_crypto.h"
#include "lua_db.h"
#include "lua_host.h"
#include "lua_metrics.h"
#include "lua_redis.h"
#include "lua_ws.h"
#include "pg.h"
#include "redis.h"
#include "snapshot.h"
#include "vm.h"

/* The modules the scripts can require(); scripts/host/loader.lua wraps them
 * into the documented host.* API. */
static const vm_module_t modules[] = {
    {"cc.json", luaopen_cc_json}, {"cc.crypto", luaopen_cc_crypto}, {"cc.jwt", luaopen_cc_jwt},
    {"cc.host", luaopen_cc_host}, {"cc.db", luaopen_cc_db},         {"cc.redis", luaopen_cc_redis},
    {"cc.ws", luaopen_cc_ws},     {"cc.metrics", luaopen_cc_metrics}, {NULL, NULL},
};

/* Everything but the VM. 0, or -1 with err. */
static int runtime__services(uv_loop_t *loop, const runtime_options_t *o, char *err, size_t errlen) {
    if (crypto_init() < 0) return snprintf(err, errlen, "crypto initialisation failed"), -1;
    const char *secret = config_str("JWT_SECRET_KEY");
    lua_jwt_set_secret((const unsigned char *)secret, strlen(secret));
    pg_options_t po = {
        .conninfo = config_str("DATABASE_URL"),
        .pool_size = o->db_pool_size,
        .wait_timeout_ms = config_num("DB_POOL_TIMEOUT_MS"),
        .statement_timeout_ms = config_num("DB_STATEMENT_TIMEOUT_MS"),
        .connect_timeout_ms = config_num("DB_CONNECT_TIMEOUT_MS"),
    };
    if (pg_init(loop, &po, err, errlen) < 0) return -1;
    lua_db_set_tx_retries((int)config_num("DB_TX_RETRIES"));
    int rc = redis_init(loop, config_str("REDIS_HOST"), (int)config_num("REDIS_PORT"), config_str("REDIS_PASSWORD"),
                        config_num("REDIS_COMMAND_TIMEOUT_MS"), config_num("REDIS_CONNECT_TIMEOUT_MS"));
    if (rc < 0) return snprintf(err, errlen, "redis: %s", uv_strerror(rc)), -1;
    return 0;
}

/* Reads the snapshot, builds its generation and commits it. 0, or -1 with
 * err. */
static int runtime__load(uv_loop_t *loop, const runtime_options_t *o, char *err, size_t errlen) {
    char *snap = NULL;
    size_t len = 0;
    int rc = snapshot_load(o->snapshot_fd, &snap, &len, err, errlen);
    if (rc == 0) rc = vm_init(loop, o->worker_id, modules, err, errlen);
    if (rc == 0) rc = vm_prepare(snap, len, o->generation, err, errlen);
    if (rc == 0 && (rc = vm_commit(o->generation)) < 0)
        snprintf(err, errlen, "generation %d is not the pending one", o->generation);
    free(snap);
    return rc;
}

int runtime_start(uv_loop_t *loop, const runtime_options_t *o, char *err, size_t errlen) {
    int rc = runtime__services(loop, o, err, errlen);
    if (rc == 0 && runtime__load(loop, o, err, errlen) < 0) rc = -2;
    close(o->snapshot_fd);
    return rc;
}
