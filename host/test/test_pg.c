/* test_pg.c - pg.c against a fake PostgreSQL server that ends connections
 * the rough way.
 *
 * The pool runs on a libuv loop in the main thread; the fake server runs on
 * the loopback harness's client thread with a blocking socket and speaks
 * just enough of the protocol (startup, AuthenticationOk, ReadyForQuery,
 * then it reads a two-statement pipeline up to its Sync). Its goodbye is
 * what a server shutting down sends: a FATAL ErrorResponse, then a reset.
 * It sends both from inside loopback_call(), so the loop sees them in one
 * readiness report (readable and error at once), the way a busy worker
 * does when PostgreSQL restarts under load. libuv
 * stops a poll handle that reports an error; a pool that believed its handle
 * still armed waited for its query guard ("no answer from the server")
 * instead of failing the query at once. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <uv.h>

#include "../pg.h"
#include "check.h"
#include "loopback.h"

static uv_loop_t *loop;
static int listener = -1, server_fd = -1;
static pg_conn_t *conn;
static volatile int finished; /* the query's callback ran */
static char result_err[256], result_state[8];
static double started_ms, finished_ms;

/* ---- pool side (loop thread) ---- */

static int result_failed = -2;

static void on_result(PGresult *const *res, int n, int failed, const char *err, const char *sqlstate, void *data) {
    (void)res;
    (void)n;
    (void)data;
    result_failed = failed;
    snprintf(result_err, sizeof result_err, "%s", err ? err : "");
    snprintf(result_state, sizeof result_state, "%s", sqlstate ? sqlstate : "");
    finished_ms = loopback_now_ms();
    finished = 1;
}

static void on_acquired(pg_conn_t *c, const char *err, const char *sqlstate, void *data) {
    (void)data;
    if (!c) {
        snprintf(result_err, sizeof result_err, "acquire: %s (%s)", err, sqlstate ? sqlstate : "-");
        finished = 1;
        return;
    }
    conn = c;
    static const char *one[] = {"1"};
    pg_statement_t batch[] = {{"SELECT $1::int", 1, one}, {"SELECT 2", 0, NULL}};
    if (pg_batch(c, batch, 2, on_result, NULL) < 0) {
        snprintf(result_err, sizeof result_err, "pg_batch refused");
        finished = 1;
    }
}

static void start_query(void) {
    const char *err, *sqlstate;
    pg_conn_t *c;
    int rc = pg_acquire(&c, on_acquired, NULL, &err, &sqlstate);
    if (rc == 0) on_acquired(c, NULL, NULL, NULL);
    else if (rc < 0) on_acquired(NULL, err, sqlstate, NULL);
}

static void release_conn(void) {
    if (conn) pg_release(conn);
    conn = NULL;
}

/* The server's last words and a reset, with the loop held (this runs on
 * the loop thread), so both arrive before the loop polls again. */
static void fatal_and_reset(void) {
    static const char fields[] = "SFATAL\0VFATAL\0C57P01\0Mterminating connection due to administrator command\0";
    char msg[128];
    uint32_t len = htonl((uint32_t)(4 + sizeof fields)); /* sizeof counts the closing NUL */
    msg[0] = 'E';
    memcpy(msg + 1, &len, 4);
    memcpy(msg + 5, fields, sizeof fields);
    loopback_send(server_fd, msg, 5 + sizeof fields);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(server_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(server_fd);
    server_fd = -1;
    started_ms = loopback_now_ms();
}

/* ---- fake server (client thread) ---- */

/* Reads one typed message; returns its type, or -1. */
static int read_message(int fd, char *body, size_t cap) {
    char head[5];
    if (loopback_read_exact(fd, head, 5) < 0) return -1;
    uint32_t len;
    memcpy(&len, head + 1, 4);
    len = ntohl(len);
    if (len < 4 || len - 4 > cap || loopback_read_exact(fd, body, len - 4) < 0) return -1;
    return (unsigned char)head[0];
}

static int is_finished(void *arg) {
    (void)arg;
    return finished;
}

static void fake_server(void) {
    loopback_call(start_query);
    server_fd = accept(listener, NULL, NULL);
    CHECK(server_fd >= 0);
    if (server_fd < 0) return;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(server_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    /* StartupMessage: int32 length, then the rest */
    char buf[1024];
    uint32_t len;
    CHECK(loopback_read_exact(server_fd, &len, 4) == 0);
    len = ntohl(len);
    CHECK(len > 8 && len - 4 <= sizeof buf && loopback_read_exact(server_fd, buf, len - 4) == 0);
    static const char hello[] = {'R', 0, 0, 0, 8, 0, 0, 0, 0, 'Z', 0, 0, 0, 5, 'I'};
    CHECK(loopback_send(server_fd, hello, sizeof hello) == 0);
    /* Parse, Bind, Describe, Execute for each statement, then one Sync */
    int type, messages = 0;
    while ((type = read_message(server_fd, buf, sizeof buf)) > 0 && type != 'S') messages++;
    CHECK(type == 'S');
    CHECK(messages == 8);
    loopback_call(fatal_and_reset);
    CHECK(loopback_wait(is_finished, NULL, 10000) == 1);
    loopback_call(release_conn);
}

int main(void) {
    loop = uv_default_loop();
    listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (listener < 0 || bind(listener, (struct sockaddr *)&a, sizeof a) < 0 || listen(listener, 4) < 0 ||
        getsockname(listener, (struct sockaddr *)&a, &al) < 0) {
        perror("test_pg: listen");
        return 1;
    }
    char conninfo[256], err[256];
    snprintf(conninfo, sizeof conninfo,
             "host=127.0.0.1 port=%d user=cc dbname=cc sslmode=disable gssencmode=disable", ntohs(a.sin_port));
    /* The query guard (statement + connect timeout) is what a stale poll
     * handle waits for: 2 s here, so such a regression costs 2 s. */
    pg_options_t o = {.conninfo = conninfo,
                      .pool_size = 1,
                      .wait_timeout_ms = 5000,
                      .statement_timeout_ms = 1000,
                      .connect_timeout_ms = 1000};
    CHECK(pg_init(loop, &o, err, sizeof err) == 0);
    CHECK(loopback_run(loop, fake_server) == 0);

    /* The query failed as a lost connection, from the reset itself. */
    CHECK(finished);
    CHECK_STR(result_state, "08006");
    CHECK(result_failed == 0); /* no statement had an answer */
    CHECK(strstr(result_err, "connection lost") != NULL);
    CHECK(strstr(result_err, "no answer from the server") == NULL);
    printf("test_pg: query failed %.1f ms after the reset: %s\n", finished_ms - started_ms, result_err);
    close(listener);
    loopback_close_loop(loop);
    return check_done("test_pg");
}
