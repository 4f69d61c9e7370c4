/* test_http.c - the HTTP glue (http.c) over real loopback sockets: framing,
 * request ids, keep-alive, pipelining order, bodies, size limits, timeouts,
 * HEAD, CORS, the connection cap, draining and the counters.
 *
 * The server runs in-process on the loopback harness (loopback.h): a libuv
 * loop in the main thread, the cases in a client thread with blocking POSIX
 * sockets that reach into the loop only through loopback_call(), so every
 * libuv and http_* call happens on the loop thread. http.c keeps its state
 * in globals and http_init() is meant to run once, so the timeout cases run
 * first in a forked child whose server has short timeouts; the parent's
 * server has timeouts far beyond any wait, so a scheduler hiccup cannot
 * close a connection under the other cases. Limits are small everywhere;
 * waits are generous (5 s per read). */
#define _GNU_SOURCE /* memmem, strcasestr */
#include "../http.h"

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "loopback.h"

#define SHORT_HEADER_MS 400
#define SHORT_KEEPALIVE_MS 600
#define RELAXED_MS 30000
#define FINISH_WRITE_MS 2000 /* a fast reader takes BIG_BODY well within it, a 20 ms-per-64 KiB one cannot */
#define BIG_BODY (16u << 20) /* more than the loopback socket buffers hold */

/* ---- server side (loop thread) ---- */

static uv_loop_t loop;
static uv_tcp_t server;
static int port;
static char *big_body;

typedef struct {
    char method[16], path[256], query[256], headers[4096], body[128];
    char request_id[65], remote[64], first_dup[32];
    size_t body_len;
    int is_head, nheaders;
} record_t;

#define MAX_RECORDS 512
static record_t records[MAX_RECORDS];
static int nrecords;
static pthread_mutex_t rec_mu = PTHREAD_MUTEX_INITIALIZER;
static http_request_t *held; /* a "/hold" request waiting for release */

static void copy(char *dst, size_t cap, const char *s, size_t n) {
    if (n >= cap) n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = 0;
}

static void record(const http_request_t *r) {
    pthread_mutex_lock(&rec_mu);
    if (nrecords < MAX_RECORDS) {
        record_t *d = &records[nrecords++];
        memset(d, 0, sizeof *d);
        copy(d->method, sizeof d->method, r->method, r->method_len);
        copy(d->path, sizeof d->path, r->path, r->path_len);
        copy(d->query, sizeof d->query, r->query, r->query_len);
        size_t o = 0;
        for (int i = 0; i < r->nheaders && o < sizeof d->headers; i++)
            o += (size_t)snprintf(d->headers + o, sizeof d->headers - o, "%.*s=%.*s\n", (int)r->headers[i].name_len,
                                  r->headers[i].name, (int)r->headers[i].value_len, r->headers[i].value);
        copy(d->body, sizeof d->body, r->body, r->body_len);
        d->body_len = r->body_len;
        d->is_head = r->is_head;
        d->nheaders = r->nheaders;
        copy(d->request_id, sizeof d->request_id, r->request_id, strlen(r->request_id));
        copy(d->remote, sizeof d->remote, r->remote_addr, strlen(r->remote_addr));
        size_t dl = 0;
        const char *dup = http_header(r, "x-dup", &dl);
        if (dup) copy(d->first_dup, sizeof d->first_dup, dup, dl);
    }
    pthread_mutex_unlock(&rec_mu);
}

static int path_is(const http_request_t *r, const char *p) {
    return r->path_len == strlen(p) && memcmp(r->path, p, r->path_len) == 0;
}

static void respond_default(http_request_t *r) {
    char body[300];
    int n = snprintf(body, sizeof body, "{\"path\":\"%.*s\"}", (int)r->path_len, r->path);
    http_respond(r, 200, NULL, 0, body, (size_t)n, NULL);
}

typedef struct {
    uv_timer_t timer; /* first: the handle pointer is the struct pointer */
    http_request_t *req;
} delay_t;

static void on_delay_closed(uv_handle_t *h) { free(h); }

static void on_delay(uv_timer_t *t) {
    delay_t *d = (delay_t *)t;
    respond_default(d->req);
    uv_close((uv_handle_t *)t, on_delay_closed);
}

/* "/slow" answers after 100 ms, "/hold" when the client thread releases it,
 * "/echo" with the body, "/ct" with its own Content-Type, "/detail" through
 * http_respond_detail, "/big" with BIG_BODY bytes; anything else at once
 * with {"path":...}. */
static void handler(http_request_t *r) {
    record(r);
    if (path_is(r, "/slow")) {
        delay_t *d = malloc(sizeof *d);
        d->req = r;
        uv_timer_init(&loop, &d->timer);
        uv_timer_start(&d->timer, on_delay, 100, 0);
    } else if (path_is(r, "/hold")) {
        held = r;
    } else if (path_is(r, "/echo")) {
        http_respond(r, 200, NULL, 0, r->body, r->body_len, NULL);
    } else if (path_is(r, "/ct")) {
        const char *x = "Content-Type: text/plain\r\nX-Extra: 1\r\n";
        http_respond(r, 201, x, strlen(x), "plain", 5, "42");
    } else if (path_is(r, "/detail")) {
        http_respond_detail(r, 404, "Not here", NULL);
    } else if (path_is(r, "/big")) {
        http_respond(r, 200, NULL, 0, big_body, BIG_BODY, NULL);
    } else {
        respond_default(r);
    }
}

static void on_connection(uv_stream_t *s, int status) {
    if (status == 0) http_accept(s);
}

/* ---- bridge from the client thread ---- */

static int st_open, st_inflight, st_held;
static uint64_t st_rejected;

static void do_stats(void) {
    st_open = http_open_connections();
    st_inflight = http_requests_in_flight();
    st_rejected = http_rejected_connections();
    st_held = held != NULL;
}
static void do_release(void) {
    http_request_t *r = held;
    held = NULL;
    if (r) respond_default(r);
}
static void do_drain(void) { http_drain(); }
static void do_nothing(void) {}

static void stats(void) { loopback_call(do_stats); }

/* Two round trips through the loop: bytes sent before the call have been
 * read and handled by the server when it returns (level-triggered epoll
 * reports the socket no later than the async wake-up). */
static void loop_sync(void) {
    loopback_call(do_nothing);
    loopback_call(do_nothing);
}

static int open_is(void *n) {
    stats();
    return st_open == *(int *)n;
}

static int wait_open(int n) {
    if (loopback_wait(open_is, &n, 5000)) return 1;
    fprintf(stderr, "wait_open(%d): still %d open\n", n, st_open);
    return 0;
}

static int is_held(void *unused) {
    (void)unused;
    stats();
    return st_held;
}

static int wait_held(void) { return loopback_wait(is_held, NULL, 5000); }

static int record_count(void) {
    pthread_mutex_lock(&rec_mu);
    int n = nrecords;
    pthread_mutex_unlock(&rec_mu);
    return n;
}

static int get_record(int i, record_t *out) {
    pthread_mutex_lock(&rec_mu);
    int ok = i < nrecords;
    if (ok) *out = records[i];
    pthread_mutex_unlock(&rec_mu);
    if (!ok) memset(out, 0, sizeof *out);
    return ok;
}

/* ---- client side ---- */

typedef struct {
    int fd;
    size_t len;
    char buf[65536 + 1];
} client_t;

typedef struct {
    int status;
    size_t raw_len, head_len, body_len;
    char raw[16384];
    const char *body;
} resp_t;

static client_t *cl_open(void) {
    client_t *c = calloc(1, sizeof *c);
    c->fd = loopback_connect(port);
    return c;
}

static void cl_close(client_t *c) {
    close(c->fd);
    free(c);
}

static int cl_sendn(client_t *c, const char *s, size_t n) { return loopback_send(c->fd, s, n); }

static int cl_send(client_t *c, const char *s) { return cl_sendn(c, s, strlen(s)); }

/* Reads more bytes: >0, 0 at EOF, -1 on error or the 5 s timeout. */
static ssize_t cl_fill(client_t *c) {
    if (c->len == sizeof c->buf - 1) return -1;
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len, 0);
    if (n > 0) c->len += (size_t)n, c->buf[c->len] = 0;
    return n;
}

/* Reads one complete response (no body for HEAD or 1xx); 0 or -1. */
static int read_resp(client_t *c, resp_t *r, int head_only) {
    memset(r, 0, sizeof *r);
    for (;;) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (end) {
            size_t hl = (size_t)(end + 4 - c->buf), cl = 0;
            if (sscanf(c->buf, "HTTP/1.1 %d ", &r->status) != 1) return -1;
            for (char *p = c->buf; (p = strcasestr(p, "\r\ncontent-length:")) && p < end; p++)
                cl = strtoul(p + 17, NULL, 10);
            size_t need = hl + (head_only || r->status < 200 ? 0 : cl);
            if (hl >= sizeof r->raw) return -1;
            if (need >= sizeof r->raw) need = hl; /* a big body stays in c->buf */
            if (c->len >= need) {
                memcpy(r->raw, c->buf, need);
                r->raw[need] = 0;
                r->raw_len = need;
                r->head_len = hl;
                r->body = r->raw + hl;
                r->body_len = need - hl;
                memmove(c->buf, c->buf + need, c->len - need);
                c->len -= need;
                c->buf[c->len] = 0;
                return 0;
            }
        }
        if (cl_fill(c) <= 0) return -1;
    }
}

/* Sends req and reads the response to it; the status or -1. */
static int roundtrip(client_t *c, const char *req, resp_t *r) {
    if (cl_send(c, req) < 0) return -1;
    return read_resp(c, r, 0) < 0 ? -1 : r->status;
}

/* Counts the response's header `name` and copies the first value. */
static int resp_header(const resp_t *r, const char *name, char *out, size_t cap) {
    int found = 0;
    size_t nl = strlen(name);
    const char *p = strstr(r->raw, "\r\n");
    while (p && p + 4 <= r->raw + r->head_len) {
        const char *line = p + 2, *eol = strstr(line, "\r\n");
        if (!eol || eol == line) break;
        if ((size_t)(eol - line) > nl && line[nl] == ':' && strncasecmp(line, name, nl) == 0) {
            if (!found++ && out) {
                const char *v = line + nl + 1;
                while (*v == ' ') v++;
                copy(out, cap, v, (size_t)(eol - v));
            }
        }
        p = eol;
    }
    return found;
}

/* Reads a "/big" response: its head into r, then counts the body bytes
 * until Content-Length, EOF or error, sleeping pause_ms after each read of
 * at most 64 KiB (a slow reader); returns the count. */
static size_t read_big(client_t *c, resp_t *r, int pause_ms) {
    static char scratch[65536];
    char v[32] = "";
    if (read_resp(c, r, 1) < 0 || !resp_header(r, "content-length", v, sizeof v)) return 0;
    size_t want = strtoul(v, NULL, 10), got = c->len < want ? c->len : want;
    memmove(c->buf, c->buf + got, c->len - got);
    c->len -= got;
    ssize_t n = 1;
    while (got < want) {
        size_t room = want - got < sizeof scratch ? want - got : sizeof scratch;
        if ((n = recv(c->fd, scratch, room, 0)) <= 0) break;
        got += (size_t)n;
        if (pause_ms) loopback_sleep_ms(pause_ms);
    }
    if (got != want)
        fprintf(stderr, "read_big: %zu of %zu body bytes, then %s\n", got, want, n == 0 ? "EOF" : strerror(errno));
    return got;
}

/* Waits for the server to close: 1 when EOF (or a reset) comes with no
 * further bytes, 0 on data or timeout. *ms gets the time it took. */
static int expect_closed(client_t *c, double *ms) {
    double t0 = loopback_now_ms();
    int closed = 0;
    if (c->len == 0) {
        ssize_t n = cl_fill(c);
        closed = n == 0 || (n < 0 && errno == ECONNRESET);
        if (n > 0) fprintf(stderr, "expected close, got: %.200s\n", c->buf);
    }
    if (ms) *ms = loopback_now_ms() - t0;
    return closed;
}

/* No bytes are waiting from the server right now. */
static int nothing_received(client_t *c) {
    char b;
    ssize_t n = recv(c->fd, &b, 1, MSG_DONTWAIT | MSG_PEEK);
    return c->len == 0 && n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static int is_hex32(const char *s) {
    if (strlen(s) != 32) return 0;
    for (int i = 0; i < 32; i++)
        if (!isdigit((unsigned char)s[i]) && !(s[i] >= 'a' && s[i] <= 'f')) return 0;
    return 1;
}

/* The exact bytes of a refusal made before the handler (no request id). */
static void refusal(char *out, size_t cap, int status, const char *reason, const char *detail) {
    char body[128];
    int n = snprintf(body, sizeof body, "{\"detail\":\"%s\"}", detail);
    snprintf(out, cap,
             "HTTP/1.1 %d %s\r\nContent-Length: %d\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n%s",
             status, reason, n, body);
}

/* ---- cases with short timeouts (child process) ---- */

static void test_timeouts(void) {
    client_t *c;
    resp_t r;
    double t0, ms;
    char want[512];
    refusal(want, sizeof want, 408, "Request Timeout", "Request Timeout");
    int n0 = record_count();

    /* Headers that stall, a body that stalls, a connection that says
     * nothing: 408 after header_timeout, then close. */
    const char *stalls[] = {"GET /x HTTP/1.1\r\nHost: a\r\n",
                            "POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc", ""};
    for (int k = 0; k < 3; k++) {
        c = cl_open();
        t0 = loopback_now_ms();
        CHECK(roundtrip(c, stalls[k], &r) == 408);
        ms = loopback_now_ms() - t0;
        CHECK(ms >= SHORT_HEADER_MS - 50 && ms < 4000);
        CHECK_STR(r.raw, want);
        CHECK(expect_closed(c, &ms));
        cl_close(c);
    }
    CHECK(record_count() == n0);

    /* An idle keep-alive connection is closed silently. */
    c = cl_open();
    CHECK(roundtrip(c, "GET /idle HTTP/1.1\r\n\r\n", &r) == 200);
    t0 = loopback_now_ms();
    CHECK(expect_closed(c, &ms));
    ms = loopback_now_ms() - t0;
    CHECK(ms >= SHORT_KEEPALIVE_MS - 100 && ms < 4000);
    cl_close(c);
    CHECK(wait_open(0));

    /* No timeout runs while the handler holds the request. */
    c = cl_open();
    CHECK(cl_send(c, "GET /hold HTTP/1.1\r\n\r\n") == 0);
    CHECK(wait_held());
    loopback_sleep_ms(SHORT_KEEPALIVE_MS + SHORT_HEADER_MS);
    CHECK(nothing_received(c));
    stats();
    CHECK(st_open == 1 && st_inflight == 1);
    loopback_call(do_release);
    CHECK(read_resp(c, &r, 0) == 0 && r.status == 200 && resp_header(&r, "connection", NULL, 0) == 0);
    CHECK(roundtrip(c, "GET /after HTTP/1.1\r\n\r\n", &r) == 200);
    cl_close(c);

    /* A body that keeps coming is not cut off, though it takes longer than
     * header_timeout in total: each read restarts the body timer. */
    c = cl_open();
    CHECK(cl_send(c, "POST /echo HTTP/1.1\r\nContent-Length: 6\r\n\r\n") == 0);
    for (int i = 0; i < 6; i++) {
        loopback_sleep_ms(SHORT_HEADER_MS / 3);
        CHECK(cl_sendn(c, &"abcdef"[i], 1) == 0);
    }
    CHECK(read_resp(c, &r, 0) == 0 && r.status == 200 && r.body_len == 6 && memcmp(r.body, "abcdef", 6) == 0);
    cl_close(c);

    /* A connection still sending a response is not idle: the keep-alive
     * timeout must not cut the body off while a slow client keeps reading
     * (256 reads, 5 ms apart: over twice keepalive_timeout in all). */
    c = cl_open();
    CHECK(cl_send(c, "GET /big HTTP/1.1\r\n\r\n") == 0);
    t0 = loopback_now_ms();
    size_t got = read_big(c, &r, 5);
    CHECK(got == BIG_BODY && r.status == 200);
    CHECK(got < BIG_BODY || loopback_now_ms() - t0 > SHORT_KEEPALIVE_MS * 2);
    cl_close(c);
    CHECK(wait_open(0));
}

/* The child's server allows a list of origins. */
static void test_cors_list(void) {
    client_t *c = cl_open();
    resp_t r;
    CHECK(roundtrip(c, "GET /api HTTP/1.1\r\nOrigin: http://a.example\r\n\r\n", &r) == 200);
    CHECK(resp_header(&r, "access-control-allow-origin", NULL, 0) == 1);
    CHECK(roundtrip(c, "GET /api HTTP/1.1\r\nOrigin: http://ok.example\r\n\r\n", &r) == 200);
    CHECK(resp_header(&r, "access-control-allow-origin", NULL, 0) == 1);
    CHECK(roundtrip(c, "GET /api HTTP/1.1\r\nOrigin: http://b.example\r\n\r\n", &r) == 200);
    CHECK(resp_header(&r, "access-control-allow-origin", NULL, 0) == 0);
    cl_close(c);
}

/* The first bytes of an answer have reached c: the server queued it. */
static int answer_started(client_t *c) {
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    return poll(&p, 1, 5000) == 1;
}

/* Draining: a fast reader of a large answer gets all of it; a reader that
 * keeps taking 64 KiB every 20 ms (progress the idle timer would forgive)
 * is cut at finish_write_timeout instead of holding the worker. Last: the
 * drain cannot be undone. */
static void test_drain_slow_reader(void) {
    resp_t r;
    double ms;
    CHECK(wait_open(0));
    client_t *fast = cl_open(), *slow = cl_open();
    CHECK(cl_send(fast, "GET /big HTTP/1.1\r\n\r\n") == 0);
    CHECK(cl_send(slow, "GET /big HTTP/1.1\r\n\r\n") == 0);
    CHECK(answer_started(fast) && answer_started(slow));
    loopback_call(do_drain);
    CHECK(read_big(fast, &r, 0) == BIG_BODY && r.status == 200);
    CHECK(expect_closed(fast, &ms));
    size_t got = read_big(slow, &r, 20);
    CHECK(r.status == 200 && got < BIG_BODY);
    CHECK(wait_open(0));
    cl_close(fast);
    cl_close(slow);
}

static void child_cases(void) {
    test_timeouts();
    test_cors_list();
    test_drain_slow_reader();
}

/* ---- cases with relaxed timeouts (parent process) ---- */

static void test_basic(void) {
    client_t *c = cl_open();
    resp_t r;
    record_t rec;
    char id[128], id2[128];
    int base = record_count();

    CHECK(roundtrip(c,
                    "GET /hello?x=1&y=%20 HTTP/1.1\r\nHost: t\r\nX-Request-Id: abc-123.X_y\r\nX-Dup: one\r\n"
                    "User-AGENT: T/1\r\nx-dup: two\r\n\r\n",
                    &r) == 200);
    CHECK_STR(r.raw, "HTTP/1.1 200 OK\r\nContent-Length: 17\r\nContent-Type: application/json\r\n"
                     "X-Request-Id: abc-123.X_y\r\n\r\n{\"path\":\"/hello\"}");
    CHECK(get_record(base, &rec));
    CHECK_STR(rec.method, "GET");
    CHECK_STR(rec.path, "/hello");
    CHECK_STR(rec.query, "x=1&y=%20");
    CHECK(rec.nheaders == 5);
    CHECK_STR(rec.headers, "host=t\nx-request-id=abc-123.X_y\nx-dup=one\nuser-agent=T/1\nx-dup=two\n");
    CHECK_STR(rec.first_dup, "one"); /* http_header() returns the first */
    CHECK_STR(rec.request_id, "abc-123.X_y");
    CHECK_STR(rec.remote, "127.0.0.1");
    CHECK(rec.is_head == 0 && rec.body_len == 0);

    /* Same connection (keep-alive); no id: a fresh 32-hex one. */
    CHECK(roundtrip(c, "GET /plain HTTP/1.1\r\n\r\n", &r) == 200);
    CHECK(resp_header(&r, "x-request-id", id, sizeof id) == 1 && is_hex32(id));
    CHECK(resp_header(&r, "connection", NULL, 0) == 0);
    char want[512];
    snprintf(want, sizeof want,
             "HTTP/1.1 200 OK\r\nContent-Length: 17\r\nContent-Type: application/json\r\nX-Request-Id: %s\r\n\r\n"
             "{\"path\":\"/plain\"}",
             id);
    CHECK_STR(r.raw, want);
    CHECK(get_record(base + 1, &rec));
    CHECK_STR(rec.request_id, id);
    CHECK_STR(rec.query, "");
    CHECK(rec.nheaders == 0);

    /* Invalid ids are replaced, never echoed. */
    CHECK(roundtrip(c, "GET /plain HTTP/1.1\r\nX-Request-Id: bad id!\r\n\r\n", &r) == 200);
    CHECK(resp_header(&r, "x-request-id", id2, sizeof id2) == 1 && is_hex32(id2) && strcmp(id, id2) != 0);
    char longid[80], req[256];
    memset(longid, 'a', 65);
    longid[65] = 0;
    snprintf(req, sizeof req, "GET /plain HTTP/1.1\r\nX-Request-Id: %s\r\n\r\n", longid);
    CHECK(roundtrip(c, req, &r) == 200);
    CHECK(resp_header(&r, "x-request-id", id, sizeof id) == 1 && is_hex32(id));
    longid[64] = 0; /* 64 characters is still valid */
    snprintf(req, sizeof req, "GET /plain HTTP/1.1\r\nX-Request-Id: %s\r\n\r\n", longid);
    CHECK(roundtrip(c, req, &r) == 200);
    CHECK(resp_header(&r, "x-request-id", id, sizeof id) == 1 && strcmp(id, longid) == 0);

    /* The handler's Content-Type replaces the default one. */
    CHECK(roundtrip(c, "POST /ct HTTP/1.1\r\nX-Request-Id: k1\r\nContent-Length: 0\r\n\r\n", &r) == 201);
    CHECK_STR(r.raw, "HTTP/1.1 201 Created\r\nContent-Length: 5\r\nX-Request-Id: k1\r\nContent-Type: text/plain\r\n"
                     "X-Extra: 1\r\n\r\nplain");
    CHECK(roundtrip(c, "GET /detail HTTP/1.1\r\nX-Request-Id: d1\r\n\r\n", &r) == 404);
    CHECK_STR(r.raw, "HTTP/1.1 404 Not Found\r\nContent-Length: 21\r\nContent-Type: application/json\r\n"
                     "X-Request-Id: d1\r\n\r\n{\"detail\":\"Not here\"}");

    /* An empty header value does not swallow the next header. */
    int n0 = record_count();
    CHECK(roundtrip(c, "GET /empty HTTP/1.1\r\nX-Empty:\r\nX-After: v\r\n\r\n", &r) == 200);
    CHECK(get_record(n0, &rec));
    CHECK(rec.nheaders == 2);
    CHECK_STR(rec.headers, "x-empty=\nx-after=v\n");

    /* HTTP_MAX_HEADERS headers are accepted. */
    char big[2048];
    size_t o = (size_t)snprintf(big, sizeof big, "GET /many HTTP/1.1\r\n");
    for (int i = 0; i < HTTP_MAX_HEADERS; i++) o += (size_t)snprintf(big + o, sizeof big - o, "h%02d: v\r\n", i);
    snprintf(big + o, sizeof big - o, "\r\n");
    n0 = record_count();
    CHECK(roundtrip(c, big, &r) == 200);
    CHECK(get_record(n0, &rec) && rec.nheaders == HTTP_MAX_HEADERS);
    CHECK(strncmp(rec.headers, "h00=v\nh01=v\n", 12) == 0);
    cl_close(c);
}

static void test_byte_at_a_time(void) {
    client_t *c = cl_open();
    resp_t r;
    record_t rec;
    const char *reqs[] = {
        "POST /echo?q=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
        "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    };
    const char *bodies[] = {"hello", "abcde"};
    for (int k = 0; k < 2; k++) {
        int n0 = record_count();
        for (const char *p = reqs[k]; *p; p++) {
            CHECK(cl_sendn(c, p, 1) == 0);
            loopback_sleep_ms(1);
        }
        CHECK(read_resp(c, &r, 0) == 0 && r.status == 200);
        CHECK(r.body_len == 5 && memcmp(r.body, bodies[k], 5) == 0);
        CHECK(get_record(n0, &rec));
        CHECK_STR(rec.method, "POST");
        CHECK_STR(rec.path, "/echo");
        CHECK_STR(rec.body, bodies[k]);
        if (k == 0) {
            CHECK_STR(rec.query, "q=1");
            CHECK_STR(rec.headers, "host=t\ncontent-length=5\n");
        } else {
            CHECK_STR(rec.headers, "transfer-encoding=chunked\n");
        }
    }
    cl_close(c);
}

static void test_keepalive(void) {
    client_t *c = cl_open();
    resp_t r;
    double ms;
    char v[64] = "";
    int n0 = record_count();

    CHECK(roundtrip(c, "GET /k1 HTTP/1.1\r\n\r\n", &r) == 200);
    CHECK(roundtrip(c, "GET /k2 HTTP/1.1\r\n\r\n", &r) == 200);
    CHECK(r.body_len == 14 && memcmp(r.body, "{\"path\":\"/k2\"}", 14) == 0);
    CHECK(resp_header(&r, "connection", NULL, 0) == 0);
    CHECK(nothing_received(c));
    /* Connection: close on HTTP/1.1 is honoured. */
    CHECK(roundtrip(c, "GET /k3 HTTP/1.1\r\nConnection: close\r\n\r\n", &r) == 200);
    CHECK(resp_header(&r, "connection", v, sizeof v) == 1 && strcmp(v, "close") == 0);
    CHECK(expect_closed(c, &ms));
    cl_close(c);
    CHECK(record_count() == n0 + 3);

    /* HTTP/1.0 without keep-alive: Connection: close, then the socket
     * closes; a request pipelined behind it is never handled. */
    c = cl_open();
    n0 = record_count();
    CHECK(roundtrip(c, "GET /old HTTP/1.0\r\nX-Request-Id: r10\r\n\r\nGET /never HTTP/1.1\r\n\r\n", &r) == 200);
    CHECK_STR(r.raw, "HTTP/1.1 200 OK\r\nContent-Length: 15\r\nContent-Type: application/json\r\nX-Request-Id: r10\r\n"
                     "Connection: close\r\n\r\n{\"path\":\"/old\"}");
    CHECK(expect_closed(c, &ms));
    CHECK(record_count() == n0 + 1);
    cl_close(c);

    /* HTTP/1.0 asking for keep-alive keeps the connection. */
    c = cl_open();
    CHECK(roundtrip(c, "GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &r) == 200);
    CHECK(resp_header(&r, "connection", NULL, 0) == 0);
    CHECK(roundtrip(c, "GET /again HTTP/1.1\r\n\r\n", &r) == 200);
    cl_close(c);

    /* A client that half-closes after its request still gets the whole
     * answer, however large, and then the connection closes. */
    c = cl_open();
    CHECK(cl_send(c, "GET /big HTTP/1.1\r\n\r\n") == 0);
    CHECK(shutdown(c->fd, SHUT_WR) == 0);
    loopback_sleep_ms(50);
    CHECK(read_big(c, &r, 0) == BIG_BODY && r.status == 200);
    CHECK(expect_closed(c, &ms));
    cl_close(c);
}

static void test_pipelining(void) {
    client_t *c = cl_open();
    resp_t r;
    record_t rec;
    char id[64];
    int n0 = record_count();

    /* The slow first answer still leaves first. */
    CHECK(cl_send(c, "GET /slow HTTP/1.1\r\nX-Request-Id: p1\r\n\r\n"
                     "GET /fast HTTP/1.1\r\nX-Request-Id: p2\r\n\r\n") == 0);
    CHECK(read_resp(c, &r, 0) == 0 && r.status == 200);
    CHECK(resp_header(&r, "x-request-id", id, sizeof id) == 1 && strcmp(id, "p1") == 0);
    CHECK(r.body_len == 16 && memcmp(r.body, "{\"path\":\"/slow\"}", 16) == 0);
    CHECK(read_resp(c, &r, 0) == 0 && r.status == 200);
    CHECK(resp_header(&r, "x-request-id", id, sizeof id) == 1 && strcmp(id, "p2") == 0);
    CHECK(r.body_len == 16 && memcmp(r.body, "{\"path\":\"/fast\"}", 16) == 0);
    CHECK(get_record(n0, &rec) && strcmp(rec.path, "/slow") == 0);
    CHECK(get_record(n0 + 1, &rec) && strcmp(rec.path, "/fast") == 0);

    /* One request at a time: while /hold is with the handler, the requests
     * behind it wait unparsed and nothing is answered. */
    n0 = record_count();
    CHECK(cl_send(c, "GET /hold HTTP/1.1\r\n\r\nPOST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz"
                     "HEAD /h HTTP/1.1\r\n\r\nGET /last HTTP/1.1\r\n\r\n") == 0);
    CHECK(wait_held());
    loop_sync();
    stats();
    CHECK(st_inflight == 1);
    CHECK(record_count() == n0 + 1);
    CHECK(nothing_received(c));
    loopback_call(do_release);
    CHECK(read_resp(c, &r, 0) == 0 && r.body_len == 16 && memcmp(r.body, "{\"path\":\"/hold\"}", 16) == 0);
    CHECK(read_resp(c, &r, 0) == 0 && r.body_len == 3 && memcmp(r.body, "xyz", 3) == 0);
    CHECK(read_resp(c, &r, 1) == 0 && r.status == 200 && r.body_len == 0);
    CHECK(read_resp(c, &r, 0) == 0 && r.body_len == 16 && memcmp(r.body, "{\"path\":\"/last\"}", 16) == 0);
    CHECK(record_count() == n0 + 4);
    CHECK(get_record(n0 + 2, &rec) && rec.is_head && strcmp(rec.method, "HEAD") == 0);
    stats();
    CHECK(st_inflight == 0);
    cl_close(c);
}

static void test_bodies(void) {
    client_t *c = cl_open();
    resp_t r;
    record_t rec;
    double ms;
    char req[512], body[65], want[512];
    int n0;

    /* Exactly max_body_bytes is fine. */
    memset(body, 'b', 64);
    body[64] = 0;
    snprintf(req, sizeof req, "POST /echo HTTP/1.1\r\nContent-Length: 64\r\n\r\n%s", body);
    n0 = record_count();
    CHECK(roundtrip(c, req, &r) == 200);
    CHECK(r.body_len == 64 && memcmp(r.body, body, 64) == 0);
    CHECK(get_record(n0, &rec) && rec.body_len == 64);

    /* Chunked, in one write and split across writes. */
    CHECK(roundtrip(c,
                    "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
                    &r) == 200);
    CHECK(r.body_len == 11 && memcmp(r.body, "hello world", 11) == 0);
    CHECK(cl_send(c, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel") == 0);
    loopback_sleep_ms(20);
    CHECK(cl_send(c, "lo\r\n6\r\n world\r\n") == 0);
    loopback_sleep_ms(20);
    CHECK(roundtrip(c, "0\r\n\r\n", &r) == 200);
    CHECK(r.body_len == 11 && memcmp(r.body, "hello world", 11) == 0);

    /* Expect: 100-continue gets the interim answer before the body. */
    CHECK(cl_send(c, "POST /echo HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n") == 0);
    CHECK(read_resp(c, &r, 0) == 0);
    CHECK_STR(r.raw, "HTTP/1.1 100 Continue\r\n\r\n");
    CHECK(roundtrip(c, "hello", &r) == 200);
    CHECK(r.body_len == 5 && memcmp(r.body, "hello", 5) == 0);
    cl_close(c);

    /* Content-Length over the limit: 413 at once (no 100 Continue), close. */
    refusal(want, sizeof want, 413, "Content Too Large", "Request body too large");
    n0 = record_count();
    c = cl_open();
    CHECK(roundtrip(c, "POST /echo HTTP/1.1\r\nContent-Length: 65\r\nExpect: 100-continue\r\n\r\n", &r) == 413);
    CHECK_STR(r.raw, want);
    CHECK(expect_closed(c, &ms));
    cl_close(c);

    /* Chunked growth past the limit. */
    char a40[41], b40[41];
    memset(a40, 'a', 40), a40[40] = 0;
    memset(b40, 'b', 40), b40[40] = 0;
    snprintf(req, sizeof req,
             "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n28\r\n%s\r\n28\r\n%s\r\n0\r\n\r\n", a40, b40);
    c = cl_open();
    CHECK(roundtrip(c, req, &r) == 413);
    CHECK_STR(r.raw, want);
    CHECK(expect_closed(c, &ms));
    cl_close(c);
    CHECK(record_count() == n0);
    stats();
    CHECK(st_inflight == 0);
}

static void test_refusals(void) {
    client_t *c;
    resp_t r;
    double ms;
    char req[4096], want[512];
    int n0 = record_count();

    /* 431: one huge header, a huge URL, one header too many. */
    refusal(want, sizeof want, 431, "Request Header Fields Too Large", "Request Header Fields Too Large");
    char fill[1101];
    memset(fill, 'x', 1100), fill[1100] = 0;
    snprintf(req, sizeof req, "GET /x HTTP/1.1\r\nX-Big: %s\r\n\r\n", fill);
    c = cl_open();
    CHECK(roundtrip(c, req, &r) == 431);
    CHECK_STR(r.raw, want);
    CHECK(expect_closed(c, &ms));
    cl_close(c);
    snprintf(req, sizeof req, "GET /%s HTTP/1.1\r\n\r\n", fill);
    c = cl_open();
    CHECK(roundtrip(c, req, &r) == 431);
    CHECK_STR(r.raw, want);
    CHECK(expect_closed(c, &ms));
    cl_close(c);
    size_t o = (size_t)snprintf(req, sizeof req, "GET /many HTTP/1.1\r\n");
    for (int i = 0; i <= HTTP_MAX_HEADERS; i++) o += (size_t)snprintf(req + o, sizeof req - o, "h%02d: v\r\n", i);
    snprintf(req + o, sizeof req - o, "\r\n");
    c = cl_open();
    CHECK(roundtrip(c, req, &r) == 431);
    CHECK_STR(r.raw, want);
    CHECK(expect_closed(c, &ms));
    cl_close(c);

    /* 400: garbage, a header line without colon, a control character in a
     * value, two Content-Lengths, Content-Length with chunked. */
    refusal(want, sizeof want, 400, "Bad Request", "Bad Request");
    const char *bad[] = {
        "GARBAGE\r\n\r\n",
        "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
        "GET / HTTP/1.1\r\nX: a\x01\r\n\r\n",
        "POST /echo HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        "POST /echo HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    };
    for (int k = 0; k < 5; k++) {
        c = cl_open();
        CHECK(roundtrip(c, bad[k], &r) == 400);
        CHECK_STR(r.raw, want);
        CHECK(expect_closed(c, &ms));
        cl_close(c);
    }
    CHECK(record_count() == n0);
}

static void test_head(void) {
    client_t *c = cl_open();
    resp_t r;
    record_t rec;
    int n0 = record_count();
    /* The GET behind the HEAD would be misread if any body byte leaked. */
    CHECK(cl_send(c, "HEAD /hello HTTP/1.1\r\nX-Request-Id: h1\r\n\r\n"
                     "GET /hello HTTP/1.1\r\nX-Request-Id: h2\r\n\r\n") == 0);
    CHECK(read_resp(c, &r, 1) == 0);
    CHECK_STR(r.raw, "HTTP/1.1 200 OK\r\nContent-Length: 17\r\nContent-Type: application/json\r\n"
                     "X-Request-Id: h1\r\n\r\n");
    CHECK(read_resp(c, &r, 0) == 0);
    CHECK_STR(r.raw, "HTTP/1.1 200 OK\r\nContent-Length: 17\r\nContent-Type: application/json\r\n"
                     "X-Request-Id: h2\r\n\r\n"
                     "{\"path\":\"/hello\"}");
    CHECK(get_record(n0, &rec) && rec.is_head == 1 && strcmp(rec.method, "HEAD") == 0);
    CHECK(get_record(n0 + 1, &rec) && rec.is_head == 0 && strcmp(rec.method, "GET") == 0);
    cl_close(c);
}

static void test_cors(void) {
    client_t *c = cl_open();
    resp_t r;
    record_t rec;
    int n0 = record_count();

    CHECK(roundtrip(c,
                    "OPTIONS /api/x HTTP/1.1\r\nX-Request-Id: c1\r\nOrigin: http://ok.example\r\n"
                    "Access-Control-Request-Method: POST\r\n"
                    "Access-Control-Request-Headers: content-type, authorization\r\n\r\n",
                    &r) == 200);
    CHECK_STR(r.raw, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Request-Id: c1\r\n"
                     "Access-Control-Allow-Origin: http://ok.example\r\nAccess-Control-Allow-Credentials: true\r\n"
                     "Vary: Origin\r\nAccess-Control-Allow-Methods: DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT\r\n"
                     "Access-Control-Max-Age: 600\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     "Access-Control-Allow-Headers: content-type, authorization\r\n\r\nOK");
    CHECK(roundtrip(c,
                    "OPTIONS /api/x HTTP/1.1\r\nOrigin: http://ok.example\r\n"
                    "Access-Control-Request-Method: GET\r\n\r\n",
                    &r) == 200);
    CHECK(resp_header(&r, "access-control-allow-headers", NULL, 0) == 0);
    CHECK(resp_header(&r, "access-control-allow-origin", NULL, 0) == 1);

    /* A disallowed origin (also a prefix or an extension of an allowed one)
     * gets 400, and the connection stays usable. */
    CHECK(roundtrip(c,
                    "OPTIONS /api/x HTTP/1.1\r\nX-Request-Id: c2\r\nOrigin: http://evil.example\r\n"
                    "Access-Control-Request-Method: POST\r\n\r\n",
                    &r) == 400);
    CHECK_STR(r.raw, "HTTP/1.1 400 Bad Request\r\nContent-Length: 22\r\nX-Request-Id: c2\r\n"
                     "Content-Type: text/plain; charset=utf-8\r\n\r\nDisallowed CORS origin");
    const char *near[] = {"http://ok.exampl", "http://ok.example.evil", "https://ok.example"};
    for (int k = 0; k < 3; k++) {
        char req[256];
        snprintf(req, sizeof req, "OPTIONS /a HTTP/1.1\r\nOrigin: %s\r\nAccess-Control-Request-Method: GET\r\n\r\n",
                 near[k]);
        CHECK(roundtrip(c, req, &r) == 400);
        CHECK(resp_header(&r, "access-control-allow-origin", NULL, 0) == 0);
    }
    CHECK(record_count() == n0); /* preflights never reach the handler */
    stats();
    CHECK(st_inflight == 0);

    /* Simple requests: an allowed Origin is echoed, another is not. */
    CHECK(roundtrip(c, "GET /api HTTP/1.1\r\nX-Request-Id: c3\r\nOrigin: http://ok.example\r\n\r\n", &r) == 200);
    CHECK_STR(r.raw, "HTTP/1.1 200 OK\r\nContent-Length: 15\r\nContent-Type: application/json\r\nX-Request-Id: c3\r\n"
                     "Access-Control-Allow-Origin: http://ok.example\r\nAccess-Control-Allow-Credentials: true\r\n"
                     "Vary: Origin\r\n\r\n{\"path\":\"/api\"}");
    CHECK(roundtrip(c, "GET /api HTTP/1.1\r\nOrigin: http://evil.example\r\n\r\n", &r) == 200);
    CHECK(resp_header(&r, "access-control-allow-origin", NULL, 0) == 0);
    /* OPTIONS without Access-Control-Request-Method is an ordinary request. */
    n0 = record_count();
    CHECK(roundtrip(c, "OPTIONS /api HTTP/1.1\r\nOrigin: http://ok.example\r\n\r\n", &r) == 200);
    CHECK(get_record(n0, &rec) && strcmp(rec.method, "OPTIONS") == 0);
    cl_close(c);
}

static void test_max_connections(void) {
    client_t *cs[4];
    resp_t r;
    double ms;
    CHECK(wait_open(0));
    stats();
    uint64_t rej0 = st_rejected;
    for (int i = 0; i < 4; i++) {
        cs[i] = cl_open();
        CHECK(roundtrip(cs[i], "GET /m HTTP/1.1\r\n\r\n", &r) == 200);
    }
    stats();
    CHECK(st_open == 4 && st_rejected == rej0);

    client_t *fifth = cl_open();
    CHECK(expect_closed(fifth, &ms));
    CHECK(ms < 4000);
    cl_close(fifth);
    stats();
    CHECK(st_open == 4 && st_rejected == rej0 + 1);
    for (int i = 0; i < 4; i++) CHECK(roundtrip(cs[i], "GET /m HTTP/1.1\r\n\r\n", &r) == 200);

    /* A freed slot is usable again. */
    cl_close(cs[0]);
    CHECK(wait_open(3));
    cs[0] = cl_open();
    CHECK(roundtrip(cs[0], "GET /m HTTP/1.1\r\n\r\n", &r) == 200);
    stats();
    CHECK(st_open == 4 && st_rejected == rej0 + 1);
    for (int i = 0; i < 4; i++) cl_close(cs[i]);
    CHECK(wait_open(0));
}

static void test_counters(void) {
    resp_t r;
    CHECK(wait_open(0));
    stats();
    CHECK(st_inflight == 0);
    client_t *a = cl_open(), *b = cl_open();
    CHECK(cl_send(a, "GET /hold HTTP/1.1\r\n\r\n") == 0);
    CHECK(wait_held());
    CHECK(roundtrip(b, "GET /x HTTP/1.1\r\n\r\n", &r) == 200);
    stats();
    CHECK(st_open == 2 && st_inflight == 1);
    loopback_call(do_release);
    CHECK(read_resp(a, &r, 0) == 0 && r.status == 200);
    stats();
    CHECK(st_open == 2 && st_inflight == 0);

    /* The client leaves while its request is held: answering is safe and
     * the connection goes away. */
    CHECK(cl_send(a, "GET /hold HTTP/1.1\r\n\r\n") == 0);
    CHECK(wait_held());
    cl_close(a);
    loop_sync();
    loopback_call(do_release);
    CHECK(wait_open(1));
    stats();
    CHECK(st_inflight == 0);
    cl_close(b);
    CHECK(wait_open(0));
}

/* Last: draining cannot be undone. */
static void test_drain(void) {
    resp_t r;
    double ms;
    char v[64];
    CHECK(wait_open(0));
    /* idle: keep-alive, its last (large) answer still being written. */
    client_t *idle = cl_open();
    CHECK(roundtrip(idle, "GET /a HTTP/1.1\r\n\r\n", &r) == 200);
    CHECK(cl_send(idle, "GET /big HTTP/1.1\r\n\r\n") == 0);
    client_t *busy = cl_open();
    CHECK(cl_send(busy, "GET /hold HTTP/1.1\r\n\r\n") == 0);
    CHECK(wait_held());
    client_t *silent = cl_open();
    client_t *partial = cl_open();
    CHECK(cl_send(partial, "GET /late HTTP/1.1\r\nX-Request-Id: late\r\n") == 0);
    CHECK(wait_open(4));
    loop_sync();
    stats();
    CHECK(st_open == 4 && st_inflight == 1);

    loopback_call(do_drain);
    CHECK(expect_closed(silent, &ms));
    CHECK(read_big(idle, &r, 0) == BIG_BODY && r.status == 200);
    CHECK(expect_closed(idle, &ms));
    CHECK(wait_open(2));
    stats();
    CHECK(st_inflight == 1);

    /* Requests under way are still answered, with Connection: close. */
    CHECK(roundtrip(partial, "\r\n", &r) == 200);
    CHECK(resp_header(&r, "connection", v, sizeof v) == 1 && strcmp(v, "close") == 0);
    CHECK(r.body_len == 16 && memcmp(r.body, "{\"path\":\"/late\"}", 16) == 0);
    CHECK(expect_closed(partial, &ms));
    loopback_call(do_release);
    CHECK(read_resp(busy, &r, 0) == 0 && r.status == 200);
    CHECK(resp_header(&r, "connection", v, sizeof v) == 1 && strcmp(v, "close") == 0);
    CHECK(expect_closed(busy, &ms));
    CHECK(wait_open(0));
    stats();
    CHECK(st_inflight == 0);

    /* New connections are turned away. */
    client_t *late = cl_open();
    CHECK(expect_closed(late, &ms));
    CHECK(wait_open(0));
    cl_close(late);
    cl_close(idle);
    cl_close(busy);
    cl_close(silent);
    cl_close(partial);
}

static void parent_cases(void) {
    test_basic();
    test_byte_at_a_time();
    test_keepalive();
    test_pipelining();
    test_bodies();
    test_refusals();
    test_head();
    test_cors();
    test_max_connections();
    test_counters();
    test_drain();
}

/* ---- harness ---- */

/* Serves o on a fresh loop while `cases` run in a client thread. */
static void run_suite(const http_options_t *o, void (*cases)(void)) {
    CHECK(uv_loop_init(&loop) == 0);
    http_init(&loop, o, handler);
    CHECK(http_open_connections() == 0 && http_requests_in_flight() == 0 && http_rejected_connections() == 0);
    CHECK((port = loopback_listen(&loop, &server, on_connection)) > 0);
    CHECK(loopback_run(&loop, cases) == 0);
    CHECK(http_open_connections() == 0 && http_requests_in_flight() == 0);
    uv_close((uv_handle_t *)&server, NULL);
    /* http.c has no shutdown call: only its sweep timer may be left. */
    CHECK(loopback_close_loop(&loop) == 1);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    alarm(120); /* a hang fails the test instead of blocking ctest */
    big_body = malloc(BIG_BODY);
    memset(big_body, 'z', BIG_BODY);
    http_options_t o = {
        .max_header_bytes = 1024,
        .max_body_bytes = 64,
        .header_timeout_ms = SHORT_HEADER_MS,
        .keepalive_timeout_ms = SHORT_KEEPALIVE_MS,
        .finish_write_timeout_ms = FINISH_WRITE_MS,
        .max_connections = 4,
        .cors_origins = " http://a.example , http://ok.example",
    };
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(60);
        run_suite(&o, child_cases);
        free(big_body);
        exit(check_done("test_http (timeouts)"));
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    o.header_timeout_ms = o.keepalive_timeout_ms = RELAXED_MS;
    o.cors_origins = "http://ok.example";
    run_suite(&o, parent_cases);
    free(big_body);
    return check_done("test_http");
}
