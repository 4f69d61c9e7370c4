/* vm.h - the worker's LuaJIT VM: script generations and request coroutines.
 *
 * One lua_State per worker. A generation is everything one load of scripts/
 * produced (route table, handlers, game configs); requests run on the
 * generation that was current when they arrived, so a reload never changes a
 * request half-way. Every Lua entry point that may wait runs in a coroutine
 * from a pool. A host function that starts I/O calls vm_suspend() and returns
 * its value; the libuv/libpq/hiredis completion callback later pushes its
 * results on that coroutine and calls vm_resume() from the loop, never from
 * inside another lua_resume (the OpenResty cosocket rule).
 *
 * Dependencies go one way: the Lua bindings (lua_*.c) call vm, vm calls none
 * of them. Whoever starts the process hands vm the modules to offer and what
 * to do with a WebSocket upgrade; vm keeps the generation number and the
 * reload status, which the bindings read from here. */
#ifndef CCHOST_VM_H
#define CCHOST_VM_H

#include <lua.h>
#include <stddef.h>
#include <uv.h>

#include "http.h"

/* A host module the scripts may require(): its package.preload name and the
 * lua_CFunction that pushes its table. */
typedef struct {
    const char *name;
    lua_CFunction open;
} vm_module_t;

/* Creates the VM of this worker on loop and registers modules (an array
 * ended by {NULL, NULL}; read during the call only) in package.preload, so
 * the loader's require("cc.db") and the like find them. vm knows no module
 * itself: whoever starts the process chooses them (runtime.c). 0, or -1
 * with a message. */
int vm_init(uv_loop_t *loop, int worker_id, const vm_module_t *modules, char *err, size_t errlen);

/* What to do with a request whose dispatch answered 101 with a session
 * table (a WebSocket handshake the route accepted): co's stack holds 101, the
 * chosen subprotocol ("" for none) and the session table. The handler must
 * answer req or take its connection over before it returns, and must not
 * keep co, which goes back to the pool afterwards. */
typedef void (*vm_upgrade_fn)(http_request_t *req, lua_State *co);

/* Installs the upgrade handler (the worker installs lua_ws_accept). Without
 * one, a 101 answer is a programmer error: logged, and the client gets 500. */
void vm_set_upgrade_handler(vm_upgrade_fn fn);

/* The worker's loop. Valid after vm_init(). */
uv_loop_t *vm_loop(void);

/* Suspends the running coroutine L until vm_resume(L, n) is called. Call it
 * as the last statement of a lua_CFunction: `return vm_suspend(L);`. Raises a
 * Lua error when L cannot yield (the main thread, or load-time code). */
int vm_suspend(lua_State *L);

/* Resumes co with the top nargs values of co's stack as the results of the
 * host call that suspended it. Must be called from a loop callback. When the
 * coroutine finishes or fails, its owner's completion callback runs. */
void vm_resume(lua_State *co, int nargs);

/* The worker's main Lua state (for building arguments of vm_spawn). */
lua_State *vm_main_state(void);

/* Runs, as a background task of the current generation, the function that
 * sits below nargs arguments on top of the main state's stack (they are
 * popped). Errors are logged; nobody waits for the result. */
void vm_spawn(int nargs);

/* Runs the current generation's hook `name` (a function of the generation
 * table: "on_start" once when the worker starts serving, "on_commit" each
 * time a generation becomes current) with the worker id, in a background
 * coroutine. */
void vm_run_hook(const char *name, int worker_id);

/* Starts the command-line tool `name` of the current generation (its
 * `tools` table) in a background coroutine with args {argv..., input =
 * input}. 0, or -1 with err when there is no such tool. */
int vm_run_tool(const char *name, int argc, char **argv, const char *input, char *err, size_t errlen);

/* Request id of the request that coroutine L serves, or NULL. */
const char *vm_request_id(lua_State *L);

/* Builds generation gen from a snapshot (the format of snapshot.h) as the
 * pending one, without serving it. 0, or -1 with "file:line: message". */
int vm_prepare(const char *snapshot, size_t len, int gen, char *err, size_t errlen);

/* Makes the pending generation gen current (new requests use it; in-flight
 * ones finish on theirs). Returns -1 if gen is not the pending one. */
int vm_commit(int gen);

/* Drops the pending generation gen, if any. */
void vm_abort(int gen);

/* The outcome of the last reload, shown by /health and the admin endpoint
 * (host.scripts_status()). Times are epoch milliseconds. */
typedef struct {
    int ok;
    double at_ms;        /* when the last reload ended */
    double loaded_at_ms; /* when the current generation was committed */
    const char *error;   /* "file:line: message" of a failed reload, else NULL */
} vm_reload_status_t;

/* Records a reload's outcome; error NULL on success (copied), loaded_at_ms
 * <= 0 keeps the previous one. Valid before vm_init: the master records
 * each outcome in its own memory so that the workers it forks later start
 * with it. */
void vm_set_reload_status(int ok, double at_ms, const char *error, double loaded_at_ms);

/* The last recorded outcome; valid until the next vm_set_reload_status(). */
const vm_reload_status_t *vm_reload_status(void);

/* The http_handler_fn of the worker: routes and runs a request. */
void vm_handle_request(http_request_t *req);

/* Generation currently served (0 before the first commit). */
int vm_generation(void);

#endif
