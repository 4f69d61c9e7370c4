/* pg.c - the worker's PostgreSQL pool, fully asynchronous on its libuv loop.
 *
 * After Kore's pgsql.c: one explicit state machine per connection slot and a
 * wait queue for callers when the pool is exhausted.
 *
 *   CLOSED --acquire demand--> RESOLVING --uv_getaddrinfo--> CONNECTING
 *   CONNECTING --PQconnectPoll OK--> IDLE <--release-- BUSY <--acquire-- IDLE
 *   RESOLVING/CONNECTING --failure or connect timeout--> BACKOFF
 *   IDLE --server closed the socket--> BACKOFF; BUSY and broken --release--> BACKOFF
 *   BACKOFF --timer (100 ms doubling to 5 s while attempts fail)--> RESOLVING
 *
 * Libpq never resolves names here: the host is resolved on the thread pool
 * and passed as hostaddr (host stays for TLS and .pgpass). The session gets
 * TimeZone=UTC, DateStyle=ISO, client_encoding=UTF8 and the statement
 * timeout through the startup packet, so no extra round trip is needed.
 *
 * A query is a batch of statements sent as one libpq pipeline: DEALLOCATE
 * ALL first when the statement cache would overflow (it is then cleared,
 * which is simpler than LRU and rare), a PREPARE under a per-connection
 * name for each SQL text c has not prepared yet, each EXECUTE by name, then
 * one sync. The answers come back in that order (c->expect). A single
 * statement is a batch of one; the extended protocol sends a sync after
 * every statement anyway, so it costs what it always did. Everything is
 * sent with the connection in nonblocking mode (PQflush until the output is
 * out, polling for writability meanwhile), and the answers are read with
 * PQconsumeInput/PQisBusy/PQgetResult. A guard timer
 * (statement timeout plus connect timeout) breaks a connection whose server
 * stops answering altogether.
 *
 * Hand-overs to waiting callers run from a uv_idle_t callback ("kick"), never
 * inside pg_release() or pg_acquire(), since those are called from running
 * Lua code and the callbacks resume other coroutines. */
#include "pg.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "metrics.h"

#define PG_BACKOFF_MIN_MS 100.0
#define PG_BACKOFF_MAX_MS 5000.0
#define PG_CACHE_MAX 256     /* prepared statements per connection */
#define PG_CACHE_BUCKETS 128 /* power of two */

typedef enum { PG_CLOSED, PG_RESOLVING, PG_CONNECTING, PG_IDLE, PG_BUSY, PG_BACKOFF } pg_state_t;
/* Answers a batch awaits besides 2*i (PREPARE of statement i) and 2*i+1
 * (its execution). */
enum { PG_EXPECT_DEALLOCATE = -1, PG_EXPECT_SYNC = -2 };

typedef struct pg_stmt {
    struct pg_stmt *next;
    uint32_t hash;
    unsigned id;
    char sql[]; /* NUL-terminated */
} pg_stmt_t;

/* One statement of the query in flight. */
typedef struct {
    const char *sql;
    const char **values;
    int nparams;
    uint32_t hash;
    unsigned id;      /* prepared as cc_s<id> */
    int prepare;      /* its PREPARE goes in this batch */
    int prepared;     /* ... and the server confirmed it */
    PGresult *res;    /* its result */
} pg_item_t;

typedef struct {
    pg_conn_t *conn;
    unsigned attempt;
    uv_getaddrinfo_t req;
} pg_resolve_t;

struct pg_conn {
    int index;
    pg_state_t state;
    int broken;      /* BUSY but the connection is gone */
    unsigned attempt; /* connect attempts; stale resolver answers are ignored */
    int failures;    /* consecutive failed attempts */
    double backoff_ms;
    PGconn *pq;
    uv_poll_t *poll;
    int poll_fd, poll_events;
    unsigned long poll_ino; /* the polled socket's inode (pg__poll_set) */
    uv_timer_t timer; /* connect timeout, backoff, or query guard */
    /* statement cache */
    pg_stmt_t *stmts[PG_CACHE_BUCKETS];
    int nstmts;
    unsigned next_id;
    /* query in flight (items != NULL) */
    pg_item_t *items; /* one block with expect and the copied statements */
    int nitems, flushing;
    int *expect; /* the answers to come, in send order (pg__batch_plan) */
    int nexpect, at;
    PGresult *res;  /* the first error */
    pg_batch_cb cb;
    void *data;
    char errbuf[256];
};

typedef struct pg_waiter {
    struct pg_waiter *next;
    pg_acquire_cb cb;
    void *data;
    uint64_t deadline;
} pg_waiter_t;

static struct {
    uv_loop_t *loop;
    pg_conn_t *conns;
    int size, in_use, enabled, nwaiting;
    pg_waiter_t *head, *tail;
    uv_timer_t wait_timer;
    uv_idle_t kick;
    double wait_timeout_ms, statement_timeout_ms, connect_timeout_ms;
    /* PQconnectStartParams arguments; values[hostaddr_at] is set per attempt */
    const char **keywords, **values;
    int hostaddr_at;
    char *host;     /* name to resolve, NULL when libpq needs no resolution */
    char *options;  /* the "options" value: URL options plus ours */
    PQconninfoOption *parsed;
    char last_error[256];
} pool;

static void pg__conn_open(pg_conn_t *c);
static void pg__conn_lost(pg_conn_t *c, const char *why);
static void pg__on_poll(uv_poll_t *p, int status, int events);

static void pg__pool_kick(void);

/* ---- statement cache ------------------------------------------------- */

/* Eight bytes per step: statement texts run to a kilobyte, and a byte-wise
 * hash of every statement of a play was a few per cent of its host CPU. */
static uint32_t pg__hash_sql(const char *s, size_t n) {
    uint64_t h = 14695981039346656037u ^ n, w;
    for (; n >= 8; s += 8, n -= 8) {
        memcpy(&w, s, 8);
        h = (h ^ w) * 1099511628211u;
        h ^= h >> 29;
    }
    w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * 1099511628211u;
    return (uint32_t)(h ^ (h >> 32));
}

static pg_stmt_t **pg__cache_find(pg_conn_t *c, const char *sql, uint32_t h) {
    pg_stmt_t **p = &c->stmts[h & (PG_CACHE_BUCKETS - 1)];
    while (*p && ((*p)->hash != h || strcmp((*p)->sql, sql) != 0)) p = &(*p)->next;
    return p;
}

static void pg__cache_clear(pg_conn_t *c) {
    for (int i = 0; i < PG_CACHE_BUCKETS; i++) {
        while (c->stmts[i]) {
            pg_stmt_t *s = c->stmts[i];
            c->stmts[i] = s->next;
            free(s);
        }
    }
    c->nstmts = 0;
}

static void pg__cache_add(pg_conn_t *c, const char *sql, uint32_t h, unsigned id) {
    size_t n = strlen(sql) + 1;
    pg_stmt_t *s = malloc(sizeof *s + n);
    if (!s) return; /* not cached: prepared again next time under a new name */
    memcpy(s->sql, sql, n);
    s->hash = h;
    s->id = id;
    pg_stmt_t **b = &c->stmts[h & (PG_CACHE_BUCKETS - 1)];
    s->next = *b;
    *b = s;
    c->nstmts++;
}

/* ---- socket polling --------------------------------------------------- */

static void pg__on_poll_closed(uv_handle_t *h) { free(h); }

static void pg__poll_stop(pg_conn_t *c) {
    if (!c->poll) return;
    uv_close((uv_handle_t *)c->poll, pg__on_poll_closed);
    c->poll = NULL;
    c->poll_fd = -1;
}

/* The identity of socket fd: its inode (0 when fstat fails). */
static unsigned long socket_inode(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 ? (unsigned long)st.st_ino : 0;
}

/* Polls the connection's current socket for events, re-creating the handle
 * when libpq moved to another socket. Only while connecting can libpq close
 * its socket and open another (a retry without SSL or GSS encryption), and
 * the new one may reuse the number: the inode tells them apart then, since
 * the old handle's registration died with the old socket. Returns 0, or -1
 * when it cannot. */
static int pg__poll_set(pg_conn_t *c, int events) {
    int fd = PQsocket(c->pq);
    if (fd < 0) return -1;
    unsigned long ino = c->state == PG_CONNECTING ? socket_inode(fd) : c->poll_ino;
    if (c->poll && (c->poll_fd != fd || c->poll_ino != ino)) pg__poll_stop(c);
    if (!c->poll) {
        c->poll = malloc(sizeof *c->poll);
        if (!c->poll || uv_poll_init(pool.loop, c->poll, fd) < 0) {
            free(c->poll);
            c->poll = NULL;
            return -1;
        }
        c->poll->data = c;
        c->poll_fd = fd;
        c->poll_ino = c->state == PG_CONNECTING ? ino : socket_inode(fd);
        c->poll_events = 0;
    }
    if (events != c->poll_events && uv_poll_start(c->poll, events, pg__on_poll) < 0) return -1;
    c->poll_events = events;
    return 0;
}

/* ---- connection lifecycle -------------------------------------------- */

static void pg__conn_close(pg_conn_t *c) {
    pg__poll_stop(c); /* before PQfinish closes the socket */
    if (c->pq) PQfinish(c->pq);
    c->pq = NULL;
    pg__cache_clear(c);
    c->next_id = 0;
}

/* Copies the first line of msg (libpq's messages end with newlines). */
static void pg__set_error(char *buf, size_t cap, const char *prefix, const char *msg) {
    snprintf(buf, cap, "%s%s", prefix, msg && *msg ? msg : "unknown error");
    buf[strcspn(buf, "\n")] = 0;
}

static void pg__on_backoff(uv_timer_t *t) {
    pg_conn_t *c = t->data;
    pg__conn_open(c);
}

/* Closes c and schedules its reopening after the current backoff delay. */
static void pg__conn_backoff(pg_conn_t *c) {
    pg__conn_close(c);
    c->state = PG_BACKOFF;
    c->broken = 0;
    uv_timer_start(&c->timer, pg__on_backoff, (uint64_t)c->backoff_ms, 0);
    pg__pool_kick(); /* waiters may have nothing left to wait for */
}

/* A connect attempt of c failed with message msg. */
static void pg__connect_failed(pg_conn_t *c, const char *msg) {
    pg__set_error(pool.last_error, sizeof pool.last_error, "could not connect to the server: ", msg);
    if (c->failures++ == 0) log_warnf("database connection %d: %s", c->index, pool.last_error);
    if (c->failures > 1) c->backoff_ms = c->backoff_ms * 2 > PG_BACKOFF_MAX_MS ? PG_BACKOFF_MAX_MS : c->backoff_ms * 2;
    pg__conn_backoff(c);
}

static void pg__on_connect_timeout(uv_timer_t *t) { pg__connect_failed(t->data, "timeout expired"); }

static void pg__connect_poll(pg_conn_t *c) {
    switch (PQconnectPoll(c->pq)) {
    case PGRES_POLLING_READING:
        if (pg__poll_set(c, UV_READABLE) < 0) pg__connect_failed(c, "cannot poll the socket");
        return;
    case PGRES_POLLING_WRITING:
        if (pg__poll_set(c, UV_WRITABLE) < 0) pg__connect_failed(c, "cannot poll the socket");
        return;
    case PGRES_POLLING_OK:
        break;
    default:
        pg__connect_failed(c, PQerrorMessage(c->pq));
        return;
    }
    if (PQsetnonblocking(c->pq, 1) != 0 || pg__poll_set(c, UV_READABLE) < 0) {
        pg__connect_failed(c, "cannot switch the connection to nonblocking mode");
        return;
    }
    uv_timer_stop(&c->timer);
    if (c->failures) log_infof("database connection %d: connected again", c->index);
    c->failures = 0;
    c->backoff_ms = PG_BACKOFF_MIN_MS;
    c->state = PG_IDLE;
    pg__pool_kick();
}

/* Server notices and warnings go to the debug log (libpq would print them
 * on stderr). */
static void pg__on_notice(void *arg, const char *msg) {
    pg_conn_t *c = arg;
    char line[256];
    pg__set_error(line, sizeof line, "", msg);
    log_debugf("database connection %d: %s", c->index, line);
}

/* Starts libpq's nonblocking connect, by address when one was resolved. */
static void pg__connect_start(pg_conn_t *c, const char *addr) {
    if (addr) pool.values[pool.hostaddr_at] = addr;
    c->pq = PQconnectStartParams(pool.keywords, pool.values, 0);
    if (addr) pool.values[pool.hostaddr_at] = NULL;
    c->state = PG_CONNECTING;
    if (!c->pq) {
        pg__connect_failed(c, "out of memory");
        return;
    }
    if (PQstatus(c->pq) == CONNECTION_BAD) {
        pg__connect_failed(c, PQerrorMessage(c->pq));
        return;
    }
    PQsetNoticeProcessor(c->pq, pg__on_notice, c);
    /* libpq's first step is to wait for the socket to become writable */
    if (pg__poll_set(c, UV_WRITABLE) < 0) pg__connect_failed(c, "cannot poll the socket");
}

static void pg__on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *ai) {
    pg_resolve_t *r = req->data;
    pg_conn_t *c = r->conn;
    char addr[64] = "";
    if (status == 0 && ai) {
        if (ai->ai_family == AF_INET6)
            uv_ip6_name((struct sockaddr_in6 *)ai->ai_addr, addr, sizeof addr);
        else
            uv_ip4_name((struct sockaddr_in *)ai->ai_addr, addr, sizeof addr);
    }
    uv_freeaddrinfo(ai);
    int current = c->state == PG_RESOLVING && c->attempt == r->attempt;
    free(r);
    if (!current) return; /* the attempt timed out meanwhile */
    if (!*addr) {
        char msg[200];
        snprintf(msg, sizeof msg, "cannot resolve \"%s\": %s", pool.host, uv_strerror(status ? status : UV_EAI_NODATA));
        pg__connect_failed(c, msg);
        return;
    }
    pg__connect_start(c, addr);
}

/* Starts a connect attempt on slot c (CLOSED or BACKOFF). */
static void pg__conn_open(pg_conn_t *c) {
    c->attempt++;
    c->state = PG_RESOLVING;
    uv_timer_start(&c->timer, pg__on_connect_timeout, (uint64_t)pool.connect_timeout_ms, 0);
    if (!pool.host) {
        pg__connect_start(c, NULL);
        return;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    pg_resolve_t *r = malloc(sizeof *r);
    if (!r) {
        pg__connect_failed(c, "out of memory");
        return;
    }
    r->conn = c;
    r->attempt = c->attempt;
    r->req.data = r;
    int rc = uv_getaddrinfo(pool.loop, &r->req, pg__on_resolved, pool.host, NULL, &hints);
    if (rc < 0) {
        free(r);
        pg__connect_failed(c, uv_strerror(rc));
    }
}

/* ---- queries ----------------------------------------------------------- */

static void pg__on_guard(uv_timer_t *t) { pg__conn_lost(t->data, "no answer from the server"); }

/* Sends c's batch as one pipeline (c->expect lists the answers to come, in
 * order). Returns 0, or -1 when the connection is lost. */
static int pg__query_send(pg_conn_t *c) {
    char name[24];
    int ok = PQenterPipelineMode(c->pq);
    for (int k = 0; ok && k < c->nexpect; k++) {
        int e = c->expect[k];
        pg_item_t *it = e >= 0 ? &c->items[e / 2] : NULL;
        if (it) snprintf(name, sizeof name, "cc_s%u", it->id);
        if (e == PG_EXPECT_DEALLOCATE)
            ok = PQsendQueryParams(c->pq, "DEALLOCATE ALL", 0, NULL, NULL, NULL, NULL, 0);
        else if (e == PG_EXPECT_SYNC)
            ok = PQpipelineSync(c->pq);
        else if (e % 2 == 0)
            ok = PQsendPrepare(c->pq, name, it->sql, it->nparams, NULL);
        else
            ok = PQsendQueryPrepared(c->pq, name, it->nparams, it->values, NULL, NULL, 0);
    }
    if (!ok) return -1;
    int f = PQflush(c->pq);
    if (f < 0) return -1;
    c->flushing = f == 1;
    return pg__poll_set(c, c->flushing ? UV_READABLE | UV_WRITABLE : UV_READABLE);
}

/* Forgets the cache entries of statements whose PREPARE this batch sent but
 * the server did not confirm (aborted by an earlier error, or lost). */
static void pg__cache_unconfirmed(pg_conn_t *c) {
    for (int i = 0; i < c->nitems; i++) {
        pg_item_t *it = &c->items[i];
        if (!it->prepare || it->prepared) continue;
        pg_stmt_t **p = pg__cache_find(c, it->sql, it->hash), *s = *p;
        if (s && s->id == it->id) {
            *p = s->next;
            free(s);
            c->nstmts--;
        }
    }
}

/* Ends c's query: the callback gets the results, or the first error,
 * exactly once; the results (which err may point into) are freed after. */
static void pg__query_finish(pg_conn_t *c, const char *err, const char *sqlstate) {
    uv_timer_stop(&c->timer);
    if (err) pg__cache_unconfirmed(c);
    pg_item_t *items = c->items;
    int n = c->nitems, failed = -1;
    PGresult *res[PG_BATCH_MAX];
    for (int i = 0; i < n; i++) {
        res[i] = items[i].res;
        if (failed < 0 && !res[i]) failed = i;
    }
    if (!err) failed = -1;
    else if (failed < 0) failed = n - 1; /* every answer came, then the connection was lost */
    pg_batch_cb cb = c->cb;
    void *data = c->data;
    PGresult *errres = c->res;
    c->res = NULL;
    c->items = NULL;
    c->nitems = 0;
    c->cb = NULL;
    cb(res, n, failed, err, sqlstate, data);
    for (int i = 0; i < n; i++) PQclear(res[i]);
    PQclear(errres);
    free(items);
}

/* Takes c's connection out of use and fails its query in flight, if any:
 * an idle slot goes to backoff now, a busy one when it is released. */
static void pg__conn_lost(pg_conn_t *c, const char *why) {
    pg__set_error(c->errbuf, sizeof c->errbuf, "connection lost: ", why);
    snprintf(pool.last_error, sizeof pool.last_error, "%s", c->errbuf);
    log_warnf("database connection %d: %s", c->index, c->errbuf);
    pg__conn_close(c);
    if (c->state != PG_BUSY) {
        c->backoff_ms = PG_BACKOFF_MIN_MS;
        pg__conn_backoff(c);
        return;
    }
    c->broken = 1;
    if (c->items) pg__query_finish(c, c->errbuf, "08006");
}

/* Takes one result of c's query (res is never NULL). Returns 1 when the
 * query is complete, -1 when the connection is lost, else 0. */
static int pg__query_result(pg_conn_t *c, PGresult *res) {
    ExecStatusType st = PQresultStatus(res);
    int e = c->at < c->nexpect ? c->expect[c->at] : PG_EXPECT_SYNC;
    if (st == PGRES_PIPELINE_SYNC) {
        PQclear(res);
        return 1;
    }
    if (st == PGRES_PIPELINE_ABORTED) {
        PQclear(res);
        return 0;
    }
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (!state || !PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) || PQstatus(c->pq) == CONNECTION_BAD) {
            PQclear(res); /* libpq's own error */
            pg__conn_lost(c, PQerrorMessage(c->pq));
            return -1;
        }
        PQclear(c->res); /* one error per pipeline: the rest is aborted */
        c->res = res;
        /* 0A000 "cached plan must not change result type": prepare anew */
        pg_item_t *it = e >= 0 ? &c->items[e / 2] : NULL;
        if (it && e % 2 == 1 && strcmp(state, "0A000") == 0) it->prepared = 0, it->prepare = 1;
        return 0;
    }
    if (e >= 0 && e % 2 == 1) {
        c->items[e / 2].res = res;
        return 0;
    }
    if (e >= 0) c->items[e / 2].prepared = 1;
    PQclear(res);
    return 0;
}

/* The answers of c's query are all in: the callback gets them. */
static void pg__query_complete(pg_conn_t *c) {
    if (!PQexitPipelineMode(c->pq)) {
        pg__conn_lost(c, PQerrorMessage(c->pq));
        return;
    }
    if (!c->res) {
        pg__query_finish(c, NULL, NULL);
        return;
    }
    pg__query_finish(c, PQresultErrorField(c->res, PG_DIAG_MESSAGE_PRIMARY),
                     PQresultErrorField(c->res, PG_DIAG_SQLSTATE));
}

/* Reads what the server sent on c. Returns -1 when the connection is lost
 * (pg__conn_lost has run). */
static int pg__conn_read(pg_conn_t *c) {
    if (!PQconsumeInput(c->pq) || PQstatus(c->pq) == CONNECTION_BAD) {
        pg__conn_lost(c, PQerrorMessage(c->pq));
        return -1;
    }
    PGnotify *n;
    while ((n = PQnotifies(c->pq))) PQfreemem(n);
    return 0;
}

/* Handles the readiness events of c's socket. Each statement's answer ends
 * with a NULL from PQgetResult, the pipeline with its sync result. */
static void pg__conn_events(pg_conn_t *c, int events) {
    if (c->state == PG_CONNECTING) {
        pg__connect_poll(c);
        return;
    }
    if (!c->items) { /* idle or held between queries: a server goodbye */
        pg__conn_read(c);
        return;
    }
    if (c->flushing && (events & UV_WRITABLE)) {
        int f = PQflush(c->pq);
        if (f < 0 || (f == 0 && pg__poll_set(c, UV_READABLE) < 0)) {
            pg__conn_lost(c, PQerrorMessage(c->pq));
            return;
        }
        c->flushing = f == 1;
    }
    if (!(events & UV_READABLE) || pg__conn_read(c) < 0) return;
    while (!PQisBusy(c->pq)) {
        PGresult *res = PQgetResult(c->pq);
        if (!res) {
            if (++c->at > c->nexpect) {
                pg__conn_lost(c, "unexpected end of a pipeline");
                return;
            }
            continue;
        }
        int done = pg__query_result(c, res);
        if (done < 0) return;
        if (done) {
            pg__query_complete(c);
            return;
        }
    }
}

/* libuv reports a socket error (POLLERR) with status < 0 and stops the
 * handle itself. The socket may still hold readable bytes (a server that is
 * shutting down sends a FATAL message, then resets), which libpq reads
 * first; it sees the error only on the next read. So the handle is marked
 * stopped and, if the connection still stands afterwards, armed again:
 * otherwise a query in flight would wait for its guard timer. */
static void pg__on_poll(uv_poll_t *p, int status, int events) {
    pg_conn_t *c = p->data;
    if (status < 0) {
        c->poll_events = 0;
        events = UV_READABLE | UV_WRITABLE; /* let libpq find the error */
    }
    pg__conn_events(c, events);
    if (status < 0 && c->poll == p && c->poll_events == 0 && c->pq &&
        pg__poll_set(c, c->flushing && c->items ? UV_READABLE | UV_WRITABLE : UV_READABLE) < 0)
        pg__conn_lost(c, "cannot poll the socket");
}

/* Plans a batch's answers: each statement is executed by name, prepared
 * first when c has no such statement yet (once per batch for one SQL
 * text), with DEALLOCATE ALL first when the cache would overflow. Cache
 * entries are added now and withdrawn if their PREPARE fails. */
static void pg__batch_plan(pg_conn_t *c) {
    int fresh = 0;
    for (int i = 0; i < c->nitems; i++)
        if (!*pg__cache_find(c, c->items[i].sql, c->items[i].hash)) fresh++;
    c->nexpect = 0;
    if (c->nstmts + fresh > PG_CACHE_MAX) {
        pg__cache_clear(c);
        c->expect[c->nexpect++] = PG_EXPECT_DEALLOCATE;
    }
    for (int i = 0; i < c->nitems; i++) {
        pg_item_t *it = &c->items[i];
        pg_stmt_t *st = *pg__cache_find(c, it->sql, it->hash);
        if (st) {
            it->id = st->id;
        } else {
            it->id = c->next_id++;
            it->prepare = 1;
            pg__cache_add(c, it->sql, it->hash, it->id);
            c->expect[c->nexpect++] = 2 * i;
        }
        c->expect[c->nexpect++] = 2 * i + 1;
    }
    c->expect[c->nexpect++] = PG_EXPECT_SYNC;
}

/* Starts the batch of n statements on c, copied into one block. */
int pg_batch(pg_conn_t *c, const pg_statement_t *stmts, int n, pg_batch_cb cb, void *data) {
    if (c->broken || !c->pq) return -EPIPE;
    if (c->items) return -EBUSY;
    if (n < 1 || n > PG_BATCH_MAX) return -EINVAL;
    /* one block: items, expectations, then per statement its values array, sql and values */
    size_t total = (size_t)n * sizeof(pg_item_t) + (size_t)(2 * n + 2) * sizeof(int);
    for (int i = 0; i < n; i++) {
        total += (size_t)stmts[i].nparams * sizeof(char *) + strlen(stmts[i].sql) + 1 + sizeof(char *);
        for (int k = 0; k < stmts[i].nparams; k++)
            if (stmts[i].values[k]) total += strlen(stmts[i].values[k]) + 1;
    }
    char *buf = calloc(1, total);
    if (!buf) return -ENOMEM;
    pg_item_t *items = (pg_item_t *)buf;
    c->expect = (int *)(items + n);
    char *s = (char *)(c->expect + 2 * n + 2);
    for (int i = 0; i < n; i++) {
        pg_item_t *it = &items[i];
        s += (sizeof(char *) - (uintptr_t)s % sizeof(char *)) % sizeof(char *);
        it->values = (const char **)s;
        it->nparams = stmts[i].nparams;
        s += (size_t)it->nparams * sizeof(char *);
        size_t len = strlen(stmts[i].sql) + 1;
        memcpy(s, stmts[i].sql, len);
        it->sql = s;
        it->hash = pg__hash_sql(s, len - 1);
        s += len;
        for (int k = 0; k < it->nparams; k++) {
            const char *v = stmts[i].values[k];
            it->values[k] = NULL;
            if (!v) continue;
            len = strlen(v) + 1;
            memcpy(s, v, len);
            it->values[k] = s;
            s += len;
        }
    }
    c->items = items;
    c->nitems = n;
    c->at = 0;
    c->cb = cb;
    c->data = data;
    pg__batch_plan(c);
    if (pg__query_send(c) < 0) {
        pg__cache_unconfirmed(c);
        c->items = NULL;
        c->nitems = 0;
        c->cb = NULL;
        free(buf);
        pg__conn_lost(c, PQerrorMessage(c->pq)); /* busy: only marks it broken */
        return -EPIPE;
    }
    if (pool.statement_timeout_ms > 0)
        uv_timer_start(&c->timer, pg__on_guard, (uint64_t)(pool.statement_timeout_ms + pool.connect_timeout_ms), 0);
    return 0;
}

int pg_in_transaction(pg_conn_t *c) {
    if (!c->pq || c->broken) return 0;
    PGTransactionStatusType st = PQtransactionStatus(c->pq);
    return st == PQTRANS_INTRANS || st == PQTRANS_INERROR;
}

int pg_backend_pid(pg_conn_t *c) { return c->pq && !c->broken ? PQbackendPID(c->pq) : 0; }

/* ---- the pool and its wait queue --------------------------------------- */

static pg_conn_t *pg__pool_find(pg_state_t state) {
    for (int i = 0; i < pool.size; i++)
        if (pool.conns[i].state == state) return &pool.conns[i];
    return NULL;
}

static int pg__pool_count(pg_state_t state) {
    int n = 0;
    for (int i = 0; i < pool.size; i++) n += pool.conns[i].state == state;
    return n;
}

static pg_waiter_t *pg__waiter_pop(void) {
    pg_waiter_t *w = pool.head;
    pool.head = w->next;
    if (!pool.head) pool.tail = NULL;
    pool.nwaiting--;
    return w;
}

static void pg__on_wait_timeout(uv_timer_t *t);

/* Arms the wait timer for the oldest waiter (all waits are equally long,
 * so the head's deadline is the earliest). */
static void pg__wait_timer_arm(void) {
    if (!pool.head) {
        uv_timer_stop(&pool.wait_timer);
        return;
    }
    uint64_t now = uv_now(pool.loop);
    uv_timer_start(&pool.wait_timer, pg__on_wait_timeout, pool.head->deadline > now ? pool.head->deadline - now : 0, 0);
}

static void pg__on_wait_timeout(uv_timer_t *t) {
    (void)t;
    uint64_t now = uv_now(pool.loop);
    while (pool.head && pool.head->deadline <= now) {
        pg_waiter_t *w = pg__waiter_pop();
        metrics_count(METRICS_DB_POOL_TIMEOUTS);
        w->cb(NULL, "pool timeout", NULL, w->data);
        free(w);
    }
    pg__wait_timer_arm();
}

/* Serves waiters from idle connections, opens closed slots for the rest,
 * and fails them all when no connection could ever serve them (every slot
 * is in reconnect backoff). */
static void pg__on_kick(uv_idle_t *h) {
    uv_idle_stop(h);
    pg_conn_t *c;
    while (pool.head && (c = pg__pool_find(PG_IDLE))) {
        pg_waiter_t *w = pg__waiter_pop();
        c->state = PG_BUSY;
        pool.in_use++;
        w->cb(c, NULL, NULL, w->data);
        free(w);
    }
    int opening = pg__pool_count(PG_RESOLVING) + pg__pool_count(PG_CONNECTING);
    while (opening < pool.nwaiting && (c = pg__pool_find(PG_CLOSED))) {
        pg__conn_open(c);
        opening++;
    }
    if (pool.head && pg__pool_count(PG_BACKOFF) == pool.size) {
        while (pool.head) {
            pg_waiter_t *w = pg__waiter_pop();
            w->cb(NULL, pool.last_error, "08001", w->data);
            free(w);
        }
    }
    pg__wait_timer_arm();
}

static void pg__pool_kick(void) { uv_idle_start(&pool.kick, pg__on_kick); }

int pg_acquire(pg_conn_t **out, pg_acquire_cb cb, void *data, const char **err, const char **sqlstate) {
    *out = NULL;
    if (!pool.enabled) {
        *err = "DATABASE_URL is not set";
        *sqlstate = "08001";
        return -ENOTCONN;
    }
    pg_conn_t *c = pool.head ? NULL : pg__pool_find(PG_IDLE);
    if (c) {
        c->state = PG_BUSY;
        pool.in_use++;
        *out = c;
        return 0;
    }
    if (pg__pool_count(PG_BACKOFF) == pool.size) {
        *err = pool.last_error;
        *sqlstate = "08001";
        return -ECONNREFUSED;
    }
    pg_waiter_t *w = malloc(sizeof *w);
    if (!w) {
        *err = "out of memory";
        *sqlstate = "53200";
        return -ENOMEM;
    }
    w->next = NULL;
    w->cb = cb;
    w->data = data;
    w->deadline = uv_now(pool.loop) + (uint64_t)pool.wait_timeout_ms;
    if (pool.tail) pool.tail->next = w;
    else pool.head = w;
    pool.tail = w;
    pool.nwaiting++;
    if (pool.head == w) pg__wait_timer_arm();
    pg__pool_kick();
    return PG_QUEUED;
}

void pg_release(pg_conn_t *c) {
    pool.in_use--;
    if (c->broken || !c->pq || PQtransactionStatus(c->pq) != PQTRANS_IDLE) {
        if (!c->broken) log_warnf("database connection %d released inside a transaction: reopening it", c->index);
        c->backoff_ms = PG_BACKOFF_MIN_MS;
        pg__conn_backoff(c);
        return;
    }
    c->state = PG_IDLE;
    if (pool.head) pg__pool_kick();
}

int pg_pool_in_use(void) { return pool.in_use; }
int pg_pool_waiting(void) { return pool.nwaiting; }
int pg_pool_size(void) { return pool.size; }

/* ---- set-up ------------------------------------------------------------- */

static const char *pg__conninfo_get(const char *keyword) {
    for (PQconninfoOption *o = pool.parsed; o->keyword; o++)
        if (strcmp(o->keyword, keyword) == 0) return o->val && *o->val ? o->val : NULL;
    return NULL;
}

int pg_init(uv_loop_t *loop, const pg_options_t *o, char *err, size_t errlen) {
    pool.loop = loop;
    pool.size = o->pool_size;
    pool.wait_timeout_ms = o->wait_timeout_ms;
    pool.statement_timeout_ms = o->statement_timeout_ms;
    pool.connect_timeout_ms = o->connect_timeout_ms;
    uv_timer_init(loop, &pool.wait_timer);
    uv_idle_init(loop, &pool.kick);
    if (!o->conninfo || !*o->conninfo) return 0;
    if (o->pool_size < 1) return snprintf(err, errlen, "the pool size must be at least 1"), -1;
    char *perr = NULL;
    pool.parsed = PQconninfoParse(o->conninfo, &perr);
    if (!pool.parsed) {
        snprintf(err, errlen, "DATABASE_URL: %s", perr ? perr : "out of memory");
        err[strcspn(err, "\n")] = 0;
        PQfreemem(perr);
        return -1;
    }
    const char *host = pg__conninfo_get("host"), *port = pg__conninfo_get("port");
    const char *hostaddr = pg__conninfo_get("hostaddr"), *opts = pg__conninfo_get("options");
    if (!host) host = getenv("PGHOST"); /* libpq's own default, which it would resolve itself */
    if ((host && strchr(host, ',')) || (port && strchr(port, ',')) || (hostaddr && strchr(hostaddr, ',')))
        return snprintf(err, errlen, "DATABASE_URL: several hosts are not supported"), -1;
    int n = 0;
    for (PQconninfoOption *p = pool.parsed; p->keyword; p++) n++;
    pool.keywords = calloc((size_t)n + 6, sizeof(char *));
    pool.values = calloc((size_t)n + 6, sizeof(char *));
    char extra[160];
    snprintf(extra, sizeof extra, "-c TimeZone=UTC -c DateStyle=ISO -c statement_timeout=%.0f",
             o->statement_timeout_ms > 0 ? o->statement_timeout_ms : 0);
    size_t olen = (opts ? strlen(opts) + 1 : 0) + strlen(extra) + 1;
    pool.options = malloc(olen);
    pool.conns = calloc((size_t)o->pool_size, sizeof *pool.conns);
    if (!pool.keywords || !pool.values || !pool.options || !pool.conns)
        return snprintf(err, errlen, "out of memory"), -1;
    snprintf(pool.options, olen, "%s%s%s", opts ? opts : "", opts ? " " : "", extra);
    int k = 0;
    for (PQconninfoOption *p = pool.parsed; p->keyword; p++) {
        if (!p->val || !*p->val || strcmp(p->keyword, "options") == 0 || strcmp(p->keyword, "client_encoding") == 0 ||
            strcmp(p->keyword, "hostaddr") == 0)
            continue;
        pool.keywords[k] = p->keyword;
        pool.values[k++] = p->val;
    }
    pool.keywords[k] = "options";
    pool.values[k++] = pool.options;
    pool.keywords[k] = "client_encoding";
    pool.values[k++] = "UTF8";
    if (!pg__conninfo_get("application_name")) {
        pool.keywords[k] = "application_name";
        pool.values[k++] = "cchost";
    }
    pool.hostaddr_at = k;
    pool.keywords[k++] = "hostaddr";
    pool.host = NULL;
    if (hostaddr)
        pool.values[pool.hostaddr_at] = hostaddr; /* pg__connect_start leaves it alone */
    else if (host && host[0] != '/' && host[0] != '@')
        pool.host = strdup(host);
    for (int i = 0; i < o->pool_size; i++) {
        pg_conn_t *c = &pool.conns[i];
        c->index = i;
        c->state = PG_CLOSED;
        c->backoff_ms = PG_BACKOFF_MIN_MS;
        c->poll_fd = -1;
        uv_timer_init(loop, &c->timer);
        c->timer.data = c;
    }
    pool.enabled = 1;
    return 0;
}
