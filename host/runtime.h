/* runtime.h - what a process needs before it runs scripts: one start-up for
 * a worker and for a command-line tool.
 *
 * Both bring up the same state in the same order: crypto, the JWT secret,
 * the PostgreSQL pool, db.tx's retries, Redis, and the VM with the host's Lua
 * modules and a first generation. Doing it here keeps the two from drifting,
 * and makes this file, not vm.c, the one that knows every binding. */
#ifndef CCHOST_RUNTIME_H
#define CCHOST_RUNTIME_H

#include <stddef.h>
#include <uv.h>

typedef struct {
    int worker_id;    /* the worker's slot, -1 for a tool */
    int db_pool_size; /* PostgreSQL connections of this process */
    int snapshot_fd;  /* the scripts (snapshot.h) of the first generation */
    int generation;   /* its number */
} runtime_options_t;

/* Starts, on loop, from the loaded settings (config.h): libsodium and the
 * CSPRNG; the JWT secret (JWT_SECRET_KEY; an empty one leaves none, so jwt
 * calls raise); the PostgreSQL pool (DATABASE_URL, DB_*: connections are
 * made on demand); DB_TX_RETRIES; Redis (REDIS_*: it connects in the
 * background); then the VM with the modules cc.json, cc.crypto, cc.jwt,
 * cc.host, cc.db, cc.redis, cc.ws and cc.metrics, and the generation built
 * from the snapshot and committed. It closes snapshot_fd in every case. Returns 0;
 * -1 when a service cannot start (err: "crypto initialisation failed", the
 * pool's message or "redis: <reason>"); -2 when the first generation cannot
 * be built (err: the loader's "file:line: message", or why the snapshot
 * could not be read). Nothing is undone after a failure: the caller is
 * expected to exit. Call once per process. */
int runtime_start(uv_loop_t *loop, const runtime_options_t *opts, char *err, size_t errlen);

#endif
