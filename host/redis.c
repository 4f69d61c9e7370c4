/* redis.c - the worker's Redis connections: one for commands, one for pub/sub.
 *
 * Redis holds only what may be lost (DESIGN.md), so the rule here is that a
 * Redis outage must cost the scripts an error value quickly, never a hung
 * request. hiredis 0.14's own libuv adapter ignores libuv's error status, so
 * a refused connect or a reset never reaches hiredis and its callbacks never
 * fire; this file has its own adapter on the async event hooks that hands an
 * error status to hiredis as readable + writable, so hiredis runs into the
 * error itself. hiredis 0.14 has no timeouts at all, so every connection
 * attempt and every command carries a libuv timer.
 *
 * Each connection is a small state machine:
 *
 *   IDLE -> RESOLVING -> CONNECTING -> READY
 *               |            |          |
 *               +------------+----------+--> BACKOFF -> RESOLVING ...
 *
 * RESOLVING runs uv_getaddrinfo on the thread pool (redisAsyncConnect would
 * call a blocking getaddrinfo; numeric addresses skip this state). CONNECTING
 * covers the TCP connect and the handshake: the reply to the first command
 * (AUTH with a password, else PING: a stopped server's kernel still accepts
 * connections, only an answer proves it alive) and, on the command
 * connection, to INFO; the connect deadline covers both states.
 * BACKOFF waits 100 ms, doubling up to 2 s, and is reset by READY. Commands
 * made while RESOLVING wait in a queue, while CONNECTING or READY go to
 * hiredis (which sends them after the connect), and while in BACKOFF fail on
 * the next loop iteration. A command that misses its deadline on a READY
 * connection takes the connection down with it.
 *
 * The server's identity (redis_run_id, redis_repl_id) is what lets Redis stay
 * a cache and never the authority: a cache entry written on one dataset must
 * not count on another, and a restart from a snapshot or a failover to a
 * lagging replica brings back an older dataset at the same address. The
 * run_id is new at every start of redis-server; the master_replid is new
 * whenever a server is promoted, which covers an old master that was demoted,
 * resynced from a lagging replica and promoted again without a restart; and
 * a replica has none here, since a full resync replaces its dataset under the
 * same run_id and the same connection. INFO is sent right after AUTH/PING and
 * the connection becomes READY only on its reply; commands made meanwhile are
 * queued behind it in hiredis, so their replies always arrive once the
 * identity is known. It is cleared the moment the connection goes down, and
 * read again on every connection, never in between: a role change must drop
 * the clients, as Sentinel does (CLIENT KILL TYPE normal) and as an operator
 * who runs REPLICAOF by hand must too. FLUSHALL keeps the identity; it only
 * empties the cache.
 *
 * A command lives in a redis__cmd_t with two references: its timer handle
 * (released when the handle has closed) and hiredis or the wait queue
 * (released when hiredis calls back, with NULL if the context goes away). The
 * user's callback runs once, guarded by `done`, whichever comes first: a
 * reply, the deadline, or the context's end. */
#include "redis.h"

#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "log.h"
#include "metrics.h"

#define REDIS__BACKOFF_MIN_MS 100.0
#define REDIS__BACKOFF_MAX_MS 2000.0

typedef enum {
    RC_IDLE,
    RC_RESOLVING,
    RC_CONNECTING,
    RC_READY,
    RC_BACKOFF,
    RC_CLOSED
} redis__state_t;

typedef struct redis__cmd redis__cmd_t;
struct redis__cmd {
    uv_timer_t timer;      /* the deadline, or a 0 ms deferral of defer_err */
    redis_reply_cb cb;
    void *data;
    const char *defer_err; /* set: the timer delivers this error */
    char *fmt;             /* the command as RESP, until hiredis has it */
    int fmtlen;
    int refs;              /* the timer handle + hiredis or the wait queue */
    int done;              /* cb has run (or is running) */
    int sent;              /* handed to hiredis */
    redis__cmd_t *next;    /* wait queue */
};

typedef struct {
    const char *name;        /* "command" or "subscriber", for the log */
    redis__state_t state;
    redisAsyncContext *ac;   /* while CONNECTING and READY */
    uv_timer_t timer;        /* connect deadline, or the backoff */
    uv_getaddrinfo_t gai;
    int resolving;           /* gai is in flight (may outlive RESOLVING) */
    double backoff_ms;
    int down_logged;         /* an outage was logged and not yet its end */
    redis__cmd_t *wait_head, *wait_tail;
} redis__conn_t;

/* The libuv watcher of one hiredis context; freed once its handle closed. */
typedef struct {
    uv_poll_t poll;
    redisAsyncContext *ac; /* NULL once hiredis has cleaned up */
    int events;
    int ready;             /* the connection got READY (errors say "lost") */
} redis__watch_t;

typedef struct {
    char *channel;
    size_t len;
    int pattern;
    redis_message_cb cb;
    void *data;
} redis__sub_t;

static struct {
    uv_loop_t *loop;
    char *host, *password;
    int port;
    uint64_t command_ms, connect_ms;
    redis__conn_t cmd, sub;
    redis__sub_t *subs;
    int nsubs;
    int inited, closed;
    char run_id[48], repl_id[48]; /* of the command connection's server */
    int info_warned;              /* a missing run_id was logged */
} R;

static void redis__conn_start(redis__conn_t *conn);

/* ---- the libuv adapter ------------------------------------------------ */

static void redis__watch_closed(uv_handle_t *h) {
    free(h->data);
}

static void redis__on_poll(uv_poll_t *h, int status, int events) {
    redis__watch_t *w = h->data;
    if (status < 0) {
        /* libuv stopped the watcher (POLLERR: a refused connect, a reset).
         * Let hiredis try both directions so it reads the socket error and
         * fails the connect or the connection, calling back everything. */
        w->events = 0;
        events = UV_READABLE | UV_WRITABLE;
    }
    if (w->ac && (events & UV_READABLE))
        redisAsyncHandleRead(w->ac);
    if (w->ac && (events & UV_WRITABLE))
        redisAsyncHandleWrite(w->ac);
}

static void redis__watch_set(redis__watch_t *w, int events) {
    if (events == w->events)
        return;
    w->events = events;
    if (events)
        uv_poll_start(&w->poll, events, redis__on_poll);
    else
        uv_poll_stop(&w->poll);
}

static void redis__add_read(void *p) {
    redis__watch_t *w = p;
    redis__watch_set(w, w->events | UV_READABLE);
}

static void redis__del_read(void *p) {
    redis__watch_t *w = p;
    redis__watch_set(w, w->events & ~UV_READABLE);
}

static void redis__add_write(void *p) {
    redis__watch_t *w = p;
    redis__watch_set(w, w->events | UV_WRITABLE);
}

static void redis__del_write(void *p) {
    redis__watch_t *w = p;
    redis__watch_set(w, w->events & ~UV_WRITABLE);
}

/* hiredis is freeing the context: it will not call any hook again. */
static void redis__cleanup(void *p) {
    redis__watch_t *w = p;
    w->ac = NULL;
    uv_close((uv_handle_t *)&w->poll, redis__watch_closed);
}

static int redis__attach(redisAsyncContext *ac) {
    redis__watch_t *w = calloc(1, sizeof *w);
    int rc;
    if (!w)
        return UV_ENOMEM;
    rc = uv_poll_init(R.loop, &w->poll, ac->c.fd);
    if (rc < 0) {
        free(w);
        return rc;
    }
    w->poll.data = w;
    w->ac = ac;
    ac->ev.data = w;
    ac->ev.addRead = redis__add_read;
    ac->ev.delRead = redis__del_read;
    ac->ev.addWrite = redis__add_write;
    ac->ev.delWrite = redis__del_write;
    ac->ev.cleanup = redis__cleanup;
    return 0;
}

/* ---- commands --------------------------------------------------------- */

static void redis__cmd_unref(redis__cmd_t *c) {
    if (--c->refs > 0)
        return;
    redisFreeCommand(c->fmt);
    free(c);
}

static void redis__cmd_timer_closed(uv_handle_t *h) {
    redis__cmd_unref(h->data);
}

/* Marks c answered and retires its timer; 0 when it already was. */
static int redis__cmd_claim(redis__cmd_t *c) {
    if (c->done)
        return 0;
    c->done = 1;
    uv_close((uv_handle_t *)&c->timer, redis__cmd_timer_closed);
    return 1;
}

/* Gives c's caller its answer, counting a failure by kind (metrics.h). */
static void redis__cmd_answer(redis__cmd_t *c, redisReply *reply, const char *err) {
    if (err)
        metrics_count(reply                                ? METRICS_REDIS_REPLY
                      : strcmp(err, REDIS_E_TIMEOUT) == 0 ? METRICS_REDIS_TIMEOUT
                      : strcmp(err, REDIS_E_LOST) == 0    ? METRICS_REDIS_LOST
                                                           : METRICS_REDIS_UNAVAILABLE);
    c->cb(reply, err, c->data);
}

static void redis__cmd_fail(redis__cmd_t *c, const char *err) {
    if (redis__cmd_claim(c))
        redis__cmd_answer(c, NULL, err);
}

/* hiredis's callback: the reply, or NULL when the context goes away. */
static void redis__on_reply(redisAsyncContext *ac, void *r, void *priv) {
    redis__cmd_t *c = priv;
    redisReply *reply = r;
    if (redis__cmd_claim(c)) {
        redis__watch_t *w = ac->ev.data; /* cleanup runs after these calls */
        if (!reply)
            redis__cmd_answer(c, NULL, w->ready ? REDIS_E_LOST : REDIS_E_UNAVAILABLE);
        else
            redis__cmd_answer(c, reply, reply->type == REDIS_REPLY_ERROR ? reply->str : NULL);
    }
    redis__cmd_unref(c);
}

/* Hands c to conn's context; 0, or -1 when hiredis refuses (going away). */
static int redis__cmd_send(redis__conn_t *conn, redis__cmd_t *c) {
    if (redisAsyncFormattedCommand(conn->ac, redis__on_reply, c, c->fmt, (size_t)c->fmtlen) !=
        REDIS_OK)
        return -1;
    c->sent = 1;
    c->refs++;
    redisFreeCommand(c->fmt);
    c->fmt = NULL;
    return 0;
}

static void redis__conn_drop(redis__conn_t *conn, const char *why);

static void redis__on_deadline(uv_timer_t *t) {
    redis__cmd_t *c = t->data;
    const char *err = c->defer_err ? c->defer_err : REDIS_E_TIMEOUT;
    redis__cmd_claim(c);
    /* A command sent on a ready connection that got no answer in time: the
     * server or the link is stuck, and everything behind it would wait too. */
    if (!c->defer_err && c->sent && R.cmd.state == RC_READY)
        redis__conn_drop(&R.cmd, "a command timed out");
    redis__cmd_answer(c, NULL, err);
}

static void redis__cmd_defer(redis__cmd_t *c, const char *err) {
    c->defer_err = err;
    uv_timer_start(&c->timer, redis__on_deadline, 0, 0);
}

int redis_command_argv(int argc, const char **argv, const size_t *lens, redis_reply_cb cb,
                       void *data) {
    static const char *const modal[] = {"subscribe", "psubscribe", "unsubscribe",
                                        "punsubscribe", "monitor"};
    redis__conn_t *conn = &R.cmd;
    redis__cmd_t *c;

    if (!R.inited || R.closed)
        return UV_ESHUTDOWN;
    if (argc < 1 || !argv || !lens || !cb)
        return UV_EINVAL;
    for (size_t i = 0; i < sizeof modal / sizeof *modal; i++)
        if (lens[0] == strlen(modal[i]) && strncasecmp(argv[0], modal[i], lens[0]) == 0)
            return UV_EINVAL;
    c = calloc(1, sizeof *c);
    if (!c)
        return UV_ENOMEM;
    c->fmtlen = redisFormatCommandArgv(&c->fmt, argc, argv, lens);
    if (c->fmtlen < 0) {
        free(c);
        return UV_ENOMEM;
    }
    c->cb = cb;
    c->data = data;
    c->refs = 1;
    uv_timer_init(R.loop, &c->timer);
    c->timer.data = c;
    if (conn->state == RC_RESOLVING) {
        c->refs++;
        if (conn->wait_tail)
            conn->wait_tail->next = c;
        else
            conn->wait_head = c;
        conn->wait_tail = c;
    } else if (!conn->ac || redis__cmd_send(conn, c) < 0) {
        redis__cmd_defer(c, REDIS_E_UNAVAILABLE);
        return 0;
    }
    uv_timer_start(&c->timer, redis__on_deadline, R.command_ms, 0);
    return 0;
}

/* ---- connections ------------------------------------------------------ */

/* Takes the wait queue off conn: sends each command on conn's context when
 * it has one, else fails it. */
static void redis__conn_flush(redis__conn_t *conn) {
    redis__cmd_t *c = conn->wait_head, *next;
    conn->wait_head = conn->wait_tail = NULL;
    for (; c; c = next) {
        next = c->next;
        if (!c->done && (!conn->ac || redis__cmd_send(conn, c) < 0))
            redis__cmd_fail(c, REDIS_E_UNAVAILABLE);
        redis__cmd_unref(c);
    }
}

static void redis__on_conn_timer(uv_timer_t *t) {
    redis__conn_t *conn = t->data;
    if (conn->state == RC_BACKOFF)
        redis__conn_start(conn);
    else
        redis__conn_drop(conn, "connect timeout");
}

/* conn is down (its context, if any, is gone or going): log the outage once,
 * fail what waits, retry after the backoff. */
static void redis__conn_down(redis__conn_t *conn, const char *why) {
    conn->state = RC_BACKOFF;
    if (conn == &R.cmd)
        R.run_id[0] = R.repl_id[0] = '\0'; /* the next server may be another */
    if (!conn->down_logged) {
        conn->down_logged = 1;
        log_warnf("redis %s connection to %s:%d down: %s (retrying)", conn->name, R.host, R.port,
                  why);
    }
    uv_timer_start(&conn->timer, redis__on_conn_timer, (uint64_t)conn->backoff_ms, 0);
    conn->backoff_ms *= 2;
    if (conn->backoff_ms > REDIS__BACKOFF_MAX_MS)
        conn->backoff_ms = REDIS__BACKOFF_MAX_MS;
    redis__conn_flush(conn);
}

/* Frees conn's context, failing every command pending on it, and goes down. */
static void redis__conn_drop(redis__conn_t *conn, const char *why) {
    redisAsyncContext *ac = conn->ac;
    conn->ac = NULL;
    redis__conn_down(conn, why);
    if (ac)
        redisAsyncFree(ac); /* deferred by hiredis when inside its callback */
}

static void redis__on_message(redisAsyncContext *ac, void *r, void *priv) {
    redisReply *reply = r, **e, *name, *chan, *payload;
    int pattern;
    (void)ac;
    (void)priv;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3)
        return; /* the context is going away */
    e = reply->element;
    if (e[0]->len == 7 && memcmp(e[0]->str, "message", 7) == 0)
        pattern = 0;
    else if (e[0]->len == 8 && memcmp(e[0]->str, "pmessage", 8) == 0 && reply->elements == 4)
        pattern = 1;
    else
        return; /* a (p)subscribe confirmation */
    name = e[1];
    chan = e[1 + pattern];
    payload = e[2 + pattern];
    for (int i = 0; i < R.nsubs; i++) {
        redis__sub_t s = R.subs[i]; /* a callback may subscribe (realloc) */
        if (s.pattern == pattern && s.len == name->len && memcmp(s.channel, name->str, s.len) == 0)
            s.cb(chan->str, chan->len, payload->str, payload->len, s.data);
    }
}

static void redis__sub_send(const redis__sub_t *s) {
    redisAsyncCommand(R.sub.ac, redis__on_message, NULL,
                      s->pattern ? "PSUBSCRIBE %b" : "SUBSCRIBE %b", s->channel, s->len);
}

static void redis__conn_ready(redis__conn_t *conn) {
    uv_timer_stop(&conn->timer);
    conn->state = RC_READY;
    ((redis__watch_t *)conn->ac->ev.data)->ready = 1;
    conn->backoff_ms = REDIS__BACKOFF_MIN_MS;
    if (conn->down_logged) {
        conn->down_logged = 0;
        log_infof("redis %s connection to %s:%d restored", conn->name, R.host, R.port);
    }
    if (conn == &R.sub)
        for (int i = 0; i < R.nsubs; i++)
            redis__sub_send(&R.subs[i]);
}

/* The reply to the first command of a connection (AUTH, or PING without a
 * password): it makes the subscriber connection READY; the command
 * connection waits for the INFO sent behind it. */
static void redis__on_handshake(redisAsyncContext *ac, void *r, void *priv) {
    redisReply *reply = r;
    char why[256];
    (void)priv;
    if (!reply)
        return; /* the context is going away: its own path handles it */
    if (reply->type == REDIS_REPLY_ERROR) { /* a bad password, LOADING... */
        snprintf(why, sizeof why, "%s refused: %s", R.password[0] ? "AUTH" : "PING", reply->str);
        redis__conn_drop(ac->data, why);
        return; /* the INFO callback then gets NULL */
    }
    if (ac->data == &R.sub)
        redis__conn_ready(ac->data);
}

/* Copies the value of the line "<field>:<value>" of INFO text s into out
 * (size n); "" when there is no such line or the value does not fit. */
static void redis__info_field(const char *s, size_t len, const char *field, char *out, size_t n) {
    size_t flen = strlen(field);
    const char *end = s + len;
    out[0] = '\0';
    for (const char *line = s; line < end;) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        const char *stop = eol ? eol : end;
        if (stop > line && stop[-1] == '\r')
            stop--;
        if ((size_t)(stop - line) > flen && memcmp(line, field, flen) == 0 && line[flen] == ':') {
            size_t vlen = (size_t)(stop - line) - flen - 1;
            if (vlen < n) {
                memcpy(out, line + flen + 1, vlen);
                out[vlen] = '\0';
            }
            return;
        }
        line = eol ? eol + 1 : end;
    }
}

/* The reply to the command connection's INFO: records the server's identity
 * and makes the connection READY. A refusal (ACL) leaves the identity empty,
 * which the scripts must treat as "unknown server": the connection still
 * serves, only what depends on the identity (the session cache) is off. */
static void redis__on_info(redisAsyncContext *ac, void *r, void *priv) {
    redisReply *reply = r;
    (void)priv;
    if (!reply)
        return; /* the context is going away: its own path handles it */
    R.run_id[0] = R.repl_id[0] = '\0';
    if (reply->type == REDIS_REPLY_STRING) {
        char role[16];
        redis__info_field(reply->str, reply->len, "run_id", R.run_id, sizeof R.run_id);
        redis__info_field(reply->str, reply->len, "role", role, sizeof role);
        if (R.run_id[0] && strcmp(role, "master") == 0)
            redis__info_field(reply->str, reply->len, "master_replid", R.repl_id, sizeof R.repl_id);
    }
    if (!R.run_id[0] && !R.info_warned) {
        R.info_warned = 1;
        log_warnf("redis at %s:%d: INFO gave no run_id (%s); the server cannot be told apart "
                  "from a restarted or failed-over one, so nothing that depends on it is cached",
                  R.host, R.port, reply->type == REDIS_REPLY_ERROR ? reply->str : "no run_id line");
    }
    redis__conn_ready(ac->data);
}

static void redis__on_connect(const redisAsyncContext *ac, int status) {
    if (status != REDIS_OK) {
        redis__conn_t *conn = ac->data;
        conn->ac = NULL; /* hiredis frees it when this returns */
        redis__conn_down(conn, ac->errstr);
    }
}

static void redis__on_disconnect(const redisAsyncContext *ac, int status) {
    redis__conn_t *conn = ac->data;
    (void)status;
    if (conn->ac != ac)
        return; /* freed by redis__conn_drop or redis_close */
    conn->ac = NULL;
    redis__conn_down(conn, ac->err ? ac->errstr : "closed");
}

/* Connects conn to the numeric address addr (the deadline already runs). */
static void redis__conn_connect(redis__conn_t *conn, const char *addr) {
    redisAsyncContext *ac = redisAsyncConnect(addr, R.port);
    char why[160];
    if (!ac) {
        redis__conn_down(conn, "out of memory");
        return;
    }
    if (ac->err || redis__attach(ac) < 0) {
        snprintf(why, sizeof why, "%s", ac->err ? ac->errstr : "cannot watch the socket");
        redisAsyncFree(ac);
        redis__conn_down(conn, why);
        return;
    }
    ac->data = conn;
    conn->ac = ac;
    conn->state = RC_CONNECTING;
    redisEnableKeepAlive(&ac->c); /* notices a silent peer on the subscriber */
    redisAsyncSetDisconnectCallback(ac, redis__on_disconnect);
    redisAsyncSetConnectCallback(ac, redis__on_connect); /* watches for writable */
    if (R.password[0])
        redisAsyncCommand(ac, redis__on_handshake, NULL, "AUTH %s", R.password);
    else
        redisAsyncCommand(ac, redis__on_handshake, NULL, "PING");
    if (conn == &R.cmd) /* the default sections hold both run_id and master_replid */
        redisAsyncCommand(ac, redis__on_info, NULL, "INFO");
    redis__conn_flush(conn);
}

static void redis__on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
    redis__conn_t *conn = req->data;
    char addr[INET6_ADDRSTRLEN] = "";
    conn->resolving = 0;
    if (status == 0 && res->ai_family == AF_INET6)
        uv_ip6_name((const struct sockaddr_in6 *)res->ai_addr, addr, sizeof addr);
    else if (status == 0)
        uv_ip4_name((const struct sockaddr_in *)res->ai_addr, addr, sizeof addr);
    uv_freeaddrinfo(res);
    if (conn->state != RC_RESOLVING)
        return; /* timed out or closed meanwhile */
    if (status < 0) {
        char why[160];
        snprintf(why, sizeof why, "cannot resolve %s: %s", R.host, uv_strerror(status));
        redis__conn_down(conn, why);
        return;
    }
    redis__conn_connect(conn, addr);
}

/* Starts a connection attempt under the connect deadline. */
static void redis__conn_start(redis__conn_t *conn) {
    struct in6_addr probe;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int rc;
    uv_timer_start(&conn->timer, redis__on_conn_timer, R.connect_ms, 0);
    if (uv_inet_pton(AF_INET, R.host, &probe) == 0 || uv_inet_pton(AF_INET6, R.host, &probe) == 0) {
        redis__conn_connect(conn, R.host);
        return;
    }
    conn->state = RC_RESOLVING;
    if (conn->resolving)
        return; /* the lookup of an earlier attempt still runs: use it */
    conn->gai.data = conn;
    rc = uv_getaddrinfo(R.loop, &conn->gai, redis__on_resolved, R.host, NULL, &hints);
    if (rc < 0) {
        redis__conn_down(conn, uv_strerror(rc));
        return;
    }
    conn->resolving = 1;
}

static void redis__conn_init(redis__conn_t *conn, const char *name) {
    memset(conn, 0, sizeof *conn);
    conn->name = name;
    conn->state = RC_IDLE;
    conn->backoff_ms = REDIS__BACKOFF_MIN_MS;
    uv_timer_init(R.loop, &conn->timer);
    conn->timer.data = conn;
}

static uint64_t redis__ms(double ms) {
    return ms < 1 ? 1 : (uint64_t)(ms + 0.5);
}

int redis_init(uv_loop_t *loop, const char *host, int port, const char *password,
               double command_timeout_ms, double connect_timeout_ms) {
    if (R.inited || !loop || !host || !host[0] || port < 1 || port > 65535 ||
        !(command_timeout_ms > 0) || !(connect_timeout_ms > 0))
        return UV_EINVAL;
    R.host = strdup(host);
    R.password = strdup(password ? password : "");
    if (!R.host || !R.password) {
        free(R.host);
        free(R.password);
        return UV_ENOMEM;
    }
    R.loop = loop;
    R.port = port;
    R.command_ms = redis__ms(command_timeout_ms);
    R.connect_ms = redis__ms(connect_timeout_ms);
    redis__conn_init(&R.cmd, "command");
    redis__conn_init(&R.sub, "subscriber");
    R.inited = 1;
    redis__conn_start(&R.cmd);
    return 0;
}

int redis_subscribe(const char *channel, int pattern, redis_message_cb cb, void *data) {
    redis__sub_t *subs, *s;
    char *copy;
    if (!R.inited || R.closed)
        return UV_ESHUTDOWN;
    if (!channel || !channel[0] || !cb)
        return UV_EINVAL;
    copy = strdup(channel);
    subs = copy ? realloc(R.subs, (size_t)(R.nsubs + 1) * sizeof *subs) : NULL;
    if (!subs) {
        free(copy);
        return UV_ENOMEM;
    }
    R.subs = subs;
    s = &subs[R.nsubs++];
    s->channel = copy;
    s->len = strlen(copy);
    s->pattern = pattern != 0;
    s->cb = cb;
    s->data = data;
    if (R.sub.state == RC_IDLE)
        redis__conn_start(&R.sub);
    else if (R.sub.state == RC_READY)
        redis__sub_send(s);
    return 0;
}

int redis_connected(void) {
    return R.inited && R.cmd.state == RC_READY;
}

const char *redis_run_id(void) {
    return R.run_id;
}

const char *redis_repl_id(void) {
    return R.repl_id;
}

static void redis__conn_close(redis__conn_t *conn) {
    redisAsyncContext *ac = conn->ac;
    conn->state = RC_CLOSED;
    conn->ac = NULL;
    if (conn->resolving)
        uv_cancel((uv_req_t *)&conn->gai);
    uv_close((uv_handle_t *)&conn->timer, NULL);
    redis__conn_flush(conn);
    if (ac)
        redisAsyncFree(ac);
}

void redis_close(void) {
    if (!R.inited || R.closed)
        return;
    R.closed = 1;
    R.run_id[0] = R.repl_id[0] = '\0';
    redis__conn_close(&R.cmd);
    redis__conn_close(&R.sub);
    for (int i = 0; i < R.nsubs; i++)
        free(R.subs[i].channel);
    free(R.subs);
    free(R.host);
    free(R.password);
    R.subs = NULL;
    R.nsubs = 0;
    R.host = R.password = NULL;
}
