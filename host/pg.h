/* pg.h - the worker's PostgreSQL pool, fully asynchronous on its libuv loop.
 *
 * Each worker owns one pool of up to pool_size libpq connections, opened on
 * demand. A connection is an explicit state machine (closed, resolving,
 * connecting, idle, busy, backoff) driven by a uv_poll_t on its socket; host
 * names are resolved with uv_getaddrinfo and libpq gets the address, since
 * PQconnectStart would resolve them with a blocking call (PLATFORM.md).
 * Statements run as prepared statements, cached per connection by SQL text,
 * alone or several in one pipeline (pg_batch: one round trip).
 * When every connection is busy, callers wait in a FIFO queue up to the wait
 * timeout ("pool timeout"); a connection that breaks is reopened with
 * exponential backoff (100 ms doubling to 5 s), and requests on it fail at
 * once instead of hanging.
 *
 * Every callback runs from the loop, never from inside a pg_* call, so a
 * callback may resume a Lua coroutine (vm.h). Errors come as a message and
 * an SQLSTATE: the server's for statement errors, 08001 when no connection
 * can be made, 08006 when a connection is lost, NULL for "pool timeout". */
#ifndef CCHOST_PG_H
#define CCHOST_PG_H

#include <stddef.h>

#include <libpq-fe.h>
#include <uv.h>

typedef struct {
    const char *conninfo;        /* URL or key=value string; "" disables the pool */
    int pool_size;               /* connections per worker, >= 1 */
    double wait_timeout_ms;      /* longest wait for a free connection */
    double statement_timeout_ms; /* server-side statement_timeout; 0 = none */
    double connect_timeout_ms;   /* resolve + connect + authenticate */
} pg_options_t;

typedef struct pg_conn pg_conn_t;

/* Gets a connection (c) or fails (c NULL, err and sqlstate set; err is
 * "pool timeout" with sqlstate NULL after the wait timeout). */
typedef void (*pg_acquire_cb)(pg_conn_t *c, const char *err, const char *sqlstate, void *data);

/* Returned by pg_acquire when the request was queued. */
#define PG_QUEUED 1

/* Sets up the pool on loop (no connection is opened yet). Call once per
 * worker. Returns 0, or -1 with a message in err (bad conninfo, several
 * hosts, pool_size < 1). */
int pg_init(uv_loop_t *loop, const pg_options_t *opts, char *err, size_t errlen);

/* Takes a connection for the caller's exclusive use until pg_release().
 * Returns 0 with *out set when one is free now (cb is not called);
 * PG_QUEUED when the request waits: cb then fires exactly once from the loop;
 * or a negative errno when no connection can be had now (pool disabled, or
 * every connection is in reconnect backoff): *err and *sqlstate then describe
 * why (static text, valid until the next pg_* call). */
int pg_acquire(pg_conn_t **out, pg_acquire_cb cb, void *data, const char **err, const char **sqlstate);

/* Gives c back to the pool. No query may be in flight on c. A connection
 * that broke, or that is still inside a transaction, is closed and reopened
 * rather than handed to the next caller. */
void pg_release(pg_conn_t *c);

/* The most statements one pg_batch may carry. */
#define PG_BATCH_MAX 64

typedef struct {
    const char *sql;
    int nparams;
    const char *const *values; /* NULL = SQL NULL */
} pg_statement_t;

/* res[0..n-1]: each statement's result (PGRES_TUPLES_OK or
 * PGRES_COMMAND_OK), or NULL from the failed one on. failed is the index of
 * the first statement that failed (-1 when all ran); err and sqlstate then
 * say why: the server's error for that statement, or 08006 when the
 * connection was lost (failed is then the first statement without an
 * answer, or the last one when all answers came before the sync; a
 * statement without an answer may have run or not). Everything belongs to
 * pg.c and is valid during the call. */
typedef void (*pg_batch_cb)(PGresult *const *res, int n, int failed, const char *err, const char *sqlstate,
                            void *data);

/* Runs n statements (1..PG_BATCH_MAX; everything is copied) on c as one
 * pipeline: all are sent at once, followed by one sync, so the batch costs
 * one round trip; the server runs them in order and, after an error, skips
 * the rest. Each statement is prepared on first use on c (cached by SQL
 * text) and then executed by name. Outside a transaction block the batch is
 * one implicit transaction; inside one, an error leaves it aborted. Returns
 * 0 and cb fires once from the loop; -EPIPE when c's connection is lost
 * (cb is not called; release c); -EBUSY when a query is already in flight
 * on c; -EINVAL for a bad n; -ENOMEM. */
int pg_batch(pg_conn_t *c, const pg_statement_t *stmts, int n, pg_batch_cb cb, void *data);

/* 1 while c's session is inside a transaction block (a failed one too),
 * else 0 (also when c has no working connection). */
int pg_in_transaction(pg_conn_t *c);

/* The server process id of c's session (PQbackendPID), 0 when c has no
 * working connection. */
int pg_backend_pid(pg_conn_t *c);

/* Connections handed out now, callers waiting for one, and the configured
 * pool size. */
int pg_pool_in_use(void);
int pg_pool_waiting(void);
int pg_pool_size(void);

#endif
