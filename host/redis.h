/* redis.h - the worker's Redis connections: one for commands, one for pub/sub.
 *
 * hiredis 0.14's async API driven by the project's own libuv adapter (the
 * bundled one drops libuv's error status and hangs while Redis is down, see
 * PLATFORM.md). Every command has a deadline, every connection attempt has
 * one, a lost connection fails everything pending on it and is re-established
 * with backoff (100 ms doubling to 2 s), and a command made while Redis is
 * known to be down fails at once. Nothing here ever blocks the loop: host
 * names are resolved on the thread pool (uv_getaddrinfo) and hiredis only
 * ever sees a numeric address. No TLS, RESP3 or cluster (hiredis 0.14). */
#ifndef CCHOST_REDIS_H
#define CCHOST_REDIS_H

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stddef.h>
#include <uv.h>

/* The error texts a reply callback can get besides a server error reply. */
#define REDIS_E_UNAVAILABLE "redis unavailable"     /* not connected */
#define REDIS_E_TIMEOUT "redis timeout"             /* deadline passed */
#define REDIS_E_LOST "redis connection lost"        /* a ready link fell */

/* Called exactly once per accepted command, always from a loop callback
 * (never from inside redis_command_argv). On success err is NULL and reply
 * is the reply; for a server error reply (REDIS_REPLY_ERROR) reply is that
 * reply and err its text ("ERR ...", "WRONGTYPE ..."); otherwise reply is
 * NULL and err one of the REDIS_E_* texts. reply belongs to hiredis and is
 * valid only during the call. A command that timed out or was lost may or
 * may not have been executed by the server. */
typedef void (*redis_reply_cb)(redisReply *reply, const char *err, void *data);

/* A pub/sub message: channel is the channel it was published on (also for a
 * pattern subscription); neither buffer is NUL-terminated and both are valid
 * only during the call. */
typedef void (*redis_message_cb)(const char *channel, size_t clen, const char *payload,
                                 size_t plen, void *data);

/* Starts the command connection to host:port on loop (host may be a name or
 * a numeric address; password, when non-empty, is sent with AUTH as the first
 * command of every connection). command_timeout_ms bounds every command,
 * connect_timeout_ms every connection attempt (resolution, connect, AUTH or
 * PING, and INFO on the command connection: see redis_run_id).
 * Copies its strings. Returns 0 (the connection proceeds in the background,
 * failures only lead to retries), UV_EINVAL for bad arguments or a second
 * call, UV_ENOMEM. */
int redis_init(uv_loop_t *loop, const char *host, int port, const char *password,
               double command_timeout_ms, double connect_timeout_ms);

/* Sends the command argv[0..argc) (binary-safe, lens[i] bytes each; the
 * buffers are copied before returning). Returns 0 and cb fires exactly once
 * later; or a negative code and cb never fires: UV_ESHUTDOWN before
 * redis_init or after redis_close; UV_EINVAL when argc < 1, cb is NULL or the
 * command would change the connection's mode (SUBSCRIBE, PSUBSCRIBE,
 * UNSUBSCRIBE, PUNSUBSCRIBE, MONITOR: use redis_subscribe); UV_ENOMEM.
 * While a connection attempt is in progress the command waits for it (within
 * its deadline); while Redis is down (backoff) cb gets REDIS_E_UNAVAILABLE on
 * the next loop iteration. A command that misses its deadline on an
 * established connection gets REDIS_E_TIMEOUT and takes the connection down
 * with it (a Redis that does not answer one command answers none of the
 * next): the others pending on it get REDIS_E_LOST, and it is re-made.
 * Blocking commands (BLPOP...) would stall everything behind them: avoid. */
int redis_command_argv(int argc, const char **argv, const size_t *lens, redis_reply_cb cb,
                       void *data);

/* Subscribes to channel (pattern = 0) or to a glob pattern (pattern = 1, as
 * PSUBSCRIBE) on the subscriber connection, which is opened on the first
 * call. cb(data) gets every message until redis_close; subscriptions are
 * renewed on every reconnect (messages published while disconnected are lost:
 * pub/sub is fire-and-forget). Several subscriptions to the same channel all
 * get each message. Copies channel. 0, UV_ESHUTDOWN (before redis_init or
 * after redis_close), UV_EINVAL (empty channel, NULL cb), UV_ENOMEM. */
int redis_subscribe(const char *channel, int pattern, redis_message_cb cb, void *data);

/* 1 when the command connection is established (and authenticated). */
int redis_connected(void);

/* The run_id of the Redis server behind the command connection, as its INFO
 * reported in the connection's handshake: 40 hex digits, drawn anew at every
 * start of redis-server, so a restart (from a snapshot, an AOF, or nothing)
 * and a switch to another server (a failover) change it. "" while the
 * command connection is not READY, and "" when the server refuses INFO (ACL:
 * a warning is logged once). It is known before any reply on its
 * connection, so inside a redis_reply_cb that got a reply it names the
 * server that sent that reply. The buffer is rewritten when the connection
 * goes down or up: copy what must outlive the current loop callback. */
const char *redis_run_id(void);

/* The master_replid that the same INFO reported when it also said
 * role:master; "" otherwise: while redis_run_id() is "", for a replica (any
 * full resync replaces its dataset under the same run_id and connection) and
 * for a Redis older than 4.0. A server takes a new one when it is promoted,
 * so this tells apart the datasets that one server process held before and
 * after a demotion and promotion (a failover and a failback). Same lifetime
 * as redis_run_id(). */
const char *redis_repl_id(void);

/* Closes both connections: pending commands get REDIS_E_LOST (or
 * REDIS_E_UNAVAILABLE if not yet sent), subscriptions are dropped, and the
 * handles close on the next loop iterations so uv_run can end. Later calls
 * return UV_ESHUTDOWN. Called once, at the end. */
void redis_close(void);

#endif
