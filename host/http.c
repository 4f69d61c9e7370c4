#define _GNU_SOURCE /* strcasestr */
/* http.c - HTTP/1.1 connections of one worker, parsed with llhttp.
 *
 * Each connection parses at most one request at a time: when llhttp reports a
 * complete message we pause it (HPE_PAUSED) and hand the request to the
 * handler; the bytes after it (a pipelined request) wait in `pending` until
 * the response is queued. That keeps responses in request order without any
 * per-connection queue. Reading stays on (toggling it costs two epoll_ctl
 * calls per request) until `pending` outgrows one maximal request, which is
 * the backpressure.
 * Timers: a fresh connection or a started request must deliver its headers
 * within header_timeout (408), a body must keep arriving at that pace, and an
 * idle keep-alive connection is closed after keepalive_timeout, and a
 * connection that is closing (draining, or the client half-closed) gets
 * finish_write_timeout, one fixed bound, to read the rest of its last answer:
 * the idle timer forgives a reader that keeps making progress, which would
 * let one slow reader of a large answer hold a draining worker. Each
 * connection only records a deadline (cheap to move on every request); one
 * worker-wide sweep timer, ticking at a quarter of the shortest timeout,
 * enforces them. */
#include "http.h"

#include <ctype.h>
#include <stddef.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "metrics.h"
#include "rng.h"
#include "slab.h"

enum { TIMER_NONE, TIMER_HEADER, TIMER_BODY, TIMER_IDLE, TIMER_FINISH };

typedef struct {
    char *p;
    size_t len, cap;
} buf_t;

typedef struct {
    size_t name_off, name_len, value_off, value_len;
} hdr_span_t;

struct http_conn {
    uv_tcp_t *tcp;    /* its own allocation: an upgrade hands it over and frees the rest */
    uint64_t deadline; /* loop time (ms) at which timer_kind fires; 0 = none */
    llhttp_t parser;
    http_conn_t *prev, *next;
    int closing;      /* uv_close started (or pending once the handler answers) */
    int busy;         /* a request is with the handler */
    int processing;   /* inside http__process(): respond must not re-enter it */
    int reading;
    int eof;          /* the client half-closed: finish what is pending, then close */
    int upgraded;     /* handed to another protocol: freed when its last write is done */
    int writes;       /* uv_write requests not yet called back */
    int close_after;  /* close once the queued responses are written */
    int timer_kind;
    size_t idle_queue; /* unsent bytes when the idle deadline was last checked */
    int error_status; /* set by a parser callback that refuses the request */
    int message_done;
    int in_message;   /* a request has begun and is not dispatched yet */
    size_t header_bytes;
    buf_t head, body, pending;
    size_t url_len;
    char remote_addr[64];
    hdr_span_t hdr[HTTP_MAX_HEADERS];
    int nhdr, in_value;
    http_request_t req;
};

static uv_loop_t *loop;
static http_options_t opt;
static http_handler_fn handler;
static llhttp_settings_t settings;
static http_conn_t *conns;
static uv_timer_t sweep_timer;
static int nconns, ninflight, draining;
static uint64_t rejected;
static char readbuf[65536];
static int readbuf_used;

static int http__buf_append(buf_t *b, const char *p, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1) cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) return -1;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

static void http__buf_free(buf_t *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

const char *http_status_text(int s) {
    switch (s) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
    }
}

/* ---- connection lifetime ---- */

static void http__conn_free(http_conn_t *c) {
    http__buf_free(&c->head);
    http__buf_free(&c->body);
    http__buf_free(&c->pending);
    free(c);
}

/* Connection handles come from a slab: an upgraded socket keeps its handle
 * for hours, and from the heap it would pin the pages its short-lived
 * neighbours leave free (slab.h). */
static slab_t tcp_slab = SLAB_INIT(sizeof(uv_tcp_t));

static void http__on_handle_closed(uv_handle_t *h) {
    http__conn_free(h->data);
    slab_free(&tcp_slab, h);
}

static void http__conn_close(http_conn_t *c) {
    if (c->closing) return;
    c->closing = 1;
    if (c->busy) return; /* finished when the handler answers */
    if (c->prev) c->prev->next = c->next;
    else conns = c->next;
    if (c->next) c->next->prev = c->prev;
    nconns--;
    uv_close((uv_handle_t *)c->tcp, http__on_handle_closed);
}

/* Sets c's one deadline for kind (TIMER_NONE clears it). */
static void http__arm_timer(http_conn_t *c, int kind) {
    uint64_t ms = kind == TIMER_IDLE     ? opt.keepalive_timeout_ms
                  : kind == TIMER_FINISH ? (opt.finish_write_timeout_ms ? opt.finish_write_timeout_ms : opt.header_timeout_ms)
                                         : opt.header_timeout_ms;
    c->timer_kind = kind;
    c->deadline = kind == TIMER_NONE ? 0 : uv_now(loop) + ms;
}

/* Closes c once the answers already queued are on the wire: uv_close would
 * drop a partly written one. http__on_write finishes the job, or the finish
 * deadline cuts a reader too slow to take them. */
static void http__conn_finish(http_conn_t *c) {
    if (c->closing) return;
    if (uv_stream_get_write_queue_size((uv_stream_t *)c->tcp) == 0) {
        http__conn_close(c);
        return;
    }
    c->close_after = 1;
    if (c->reading) uv_read_stop((uv_stream_t *)c->tcp), c->reading = 0;
    http__arm_timer(c, TIMER_FINISH);
}

/* ---- writing ---- */

typedef struct {
    uv_write_t req;
    http_conn_t *conn;
    char data[];
} write_req_t;

static void http__on_write(uv_write_t *w, int status) {
    write_req_t *wr = (write_req_t *)w;
    http_conn_t *c = wr->conn;
    free(wr);
    c->writes--;
    if (c->upgraded) { /* the new protocol owns the handle and its errors */
        if (!c->writes && !c->processing) http__conn_free(c);
        return;
    }
    if (status < 0 || (c->close_after && !c->closing && uv_stream_get_write_queue_size((uv_stream_t *)c->tcp) == 0))
        http__conn_close(c);
}

static int http__raw_write(http_conn_t *c, const char *data, size_t len) {
    if (c->closing) return -1;
    write_req_t *wr = malloc(sizeof *wr + len);
    if (!wr) return -1;
    wr->conn = c;
    memcpy(wr->data, data, len);
    uv_buf_t b = uv_buf_init(wr->data, (unsigned)len);
    if (uv_write(&wr->req, (uv_stream_t *)c->tcp, &b, 1, http__on_write) < 0) {
        free(wr);
        http__conn_close(c);
        return -1;
    }
    c->writes++;
    return 0;
}

static int http__origin_allowed(const char *origin, size_t len) {
    const char *p = opt.cors_origins;
    while (p && *p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        while (n && isspace((unsigned char)*p)) p++, n--;
        while (n && isspace((unsigned char)p[n - 1])) n--;
        if ((n == 1 && *p == '*') || (n == len && memcmp(p, origin, len) == 0)) return 1;
        p = e ? e + 1 : NULL;
    }
    return 0;
}


/* Nanoseconds since r was dispatched: what the access log and the latency
 * histogram report. */
static uint64_t http__elapsed_ns(const http_request_t *r) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec - r->start_ns;
}

static void http__access_log(http_request_t *r, int status, size_t bytes, const char *user_id, uint64_t ns) {
    if (!opt.access_log || !log_enabled(LOG_INFO)) return;
    char path[1024], method[32];
    log_escape(path, sizeof path, r->path, r->path_len);
    log_escape(method, sizeof method, r->method, r->method_len);
    double ms = ns / 1e6;
    char line[1600];
    int n = snprintf(line, sizeof line,
                     "\"msg\":\"request\",\"request_id\":\"%s\",\"method\":\"%s\",\"path\":\"%s\","
                     "\"status\":%d,\"bytes\":%zu,\"duration_ms\":%.3f%s%s",
                     r->request_id, method, path, status, bytes, ms,
                     user_id ? ",\"user_id\":" : "", user_id ? user_id : "");
    if (n > 0) log_raw(LOG_INFO, line, (size_t)(n < (int)sizeof line ? n : (int)sizeof line - 1));
}

static void http__process(http_conn_t *c);
static void http__on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b);
static void http__on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);

static char *http__put(char *p, const char *s, size_t n) {
    memcpy(p, s, n);
    return p + n;
}

#define PUT_LIT(p, lit) http__put((p), (lit), sizeof(lit) - 1)

static char *http__put_uint(char *p, size_t v) {
    char tmp[24];
    int n = 0;
    do tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) > 0);
    while (n) *p++ = tmp[--n];
    return p;
}

/* Builds status line, headers and body straight into one write request (no
 * printf, one allocation, one copy of the body) and queues it. */
static void http__send_response(http_conn_t *c, http_request_t *r, int status, const char *extra, size_t extra_len,
                          const char *body, size_t body_len, int keep_alive) {
    if (c->closing) return;
    size_t olen = 0;
    const char *origin = r ? http_header(r, "origin", &olen) : NULL;
    if (origin && (olen >= 512 || !http__origin_allowed(origin, olen))) origin = NULL;
    int send_body = !(r && r->is_head) && status >= 200 && status != 204 && status != 304;
    size_t cap = 400 + (origin ? olen : 0) + extra_len + (send_body ? body_len : 0);
    write_req_t *wr = malloc(sizeof *wr + cap);
    if (!wr) {
        http__conn_close(c);
        return;
    }
    const char *text = http_status_text(status);
    char *p = PUT_LIT(wr->data, "HTTP/1.1 ");
    p = http__put_uint(p, (size_t)(status > 0 && status < 1000 ? status : 500));
    *p++ = ' ';
    p = http__put(p, text, strlen(text));
    p = PUT_LIT(p, "\r\nContent-Length: ");
    p = http__put_uint(p, body_len);
    p = PUT_LIT(p, "\r\n");
    if (!extra || !strcasestr(extra, "content-type:")) p = PUT_LIT(p, "Content-Type: application/json\r\n");
    if (r && r->request_id[0]) {
        p = PUT_LIT(p, "X-Request-Id: ");
        p = http__put(p, r->request_id, strlen(r->request_id));
        p = PUT_LIT(p, "\r\n");
    }
    if (origin) {
        p = PUT_LIT(p, "Access-Control-Allow-Origin: ");
        p = http__put(p, origin, olen);
        p = PUT_LIT(p, "\r\nAccess-Control-Allow-Credentials: true\r\nVary: Origin\r\n");
    }
    if (!keep_alive) p = PUT_LIT(p, "Connection: close\r\n");
    if (extra_len) p = http__put(p, extra, extra_len);
    p = PUT_LIT(p, "\r\n");
    if (send_body && body_len) p = http__put(p, body, body_len);
    wr->conn = c;
    uv_buf_t b = uv_buf_init(wr->data, (unsigned)(p - wr->data));
    /* Most answers fit the socket buffer: a direct write skips libuv's write
     * queue, its completion callback and an epoll_ctl round trip. */
    int sent = uv_try_write((uv_stream_t *)c->tcp, &b, 1);
    if (sent == (int)b.len) {
        free(wr);
        if (c->close_after) http__conn_close(c);
        return;
    }
    if (sent > 0) b = uv_buf_init(b.base + sent, b.len - (unsigned)sent);
    else if (sent != UV_EAGAIN && sent != UV_ENOSYS) {
        free(wr);
        http__conn_close(c);
        return;
    }
    if (uv_write(&wr->req, (uv_stream_t *)c->tcp, &b, 1, http__on_write) < 0) {
        free(wr);
        http__conn_close(c);
        return;
    }
    c->writes++;
}

/* Answers a request refused before it reached the handler, then closes. */
static void http__refuse(http_conn_t *c, int status, const char *detail) {
    char body[128];
    int n = snprintf(body, sizeof body, "{\"detail\":\"%s\"}", detail);
    c->close_after = 1;
    metrics_refused(status);
    http__send_response(c, NULL, status, NULL, 0, body, (size_t)n, 0);
    if (c->reading) uv_read_stop((uv_stream_t *)c->tcp), c->reading = 0;
    http__arm_timer(c, TIMER_NONE);
    log_debugf("http: refused connection with %d (%s)", status, detail);
}

static void http__on_timeout(http_conn_t *c) {
    if (c->busy || c->closing) return;
    if (c->timer_kind == TIMER_FINISH) { /* its last answer took too long to read */
        http__conn_close(c);
        return;
    }
    if (c->timer_kind != TIMER_IDLE) {
        http__refuse(c, 408, "Request Timeout");
        return;
    }
    /* Still sending an answer the client keeps reading: not idle yet. */
    size_t queued = uv_stream_get_write_queue_size((uv_stream_t *)c->tcp);
    if (queued && queued != c->idle_queue) {
        c->idle_queue = queued;
        http__arm_timer(c, TIMER_IDLE);
    } else {
        http__conn_close(c);
    }
}

static void http__on_sweep(uv_timer_t *t) {
    (void)t;
    uint64_t now = uv_now(loop);
    for (http_conn_t *c = conns, *next; c; c = next) {
        next = c->next;
        if (c->deadline && now >= c->deadline) {
            c->deadline = 0;
            http__on_timeout(c);
        }
    }
}

void http_respond(http_request_t *r, int status, const char *extra, size_t extra_len, const char *body,
                  size_t body_len, const char *user_id) {
    http_conn_t *c = r->conn;
    ninflight--;
    uint64_t ns = http__elapsed_ns(r);
    metrics_request(r->metrics_route, status, ns);
    http__access_log(r, status, body_len, user_id, ns);
    c->busy = 0;
    if (c->closing) { /* the client went away meanwhile: drop the answer */
        c->closing = 0;
        http__conn_close(c);
        return;
    }
    int keep = llhttp_should_keep_alive(&c->parser) && !draining;
    if (!keep) {
        c->close_after = 1;
        c->pending.len = 0;
    }
    http__send_response(c, r, status, extra, extra_len, body, body_len, keep);
    if (!keep) {
        if (!c->closing && uv_stream_get_write_queue_size((uv_stream_t *)c->tcp) == 0) http__conn_close(c);
        return;
    }
    llhttp_resume(&c->parser);
    if (!c->processing) http__process(c);
}

uv_tcp_t *http_upgrade(http_request_t *r, const char *head, size_t head_len, char **leftover, size_t *leftover_len) {
    http_conn_t *c = r->conn;
    ninflight--;
    uint64_t ns = http__elapsed_ns(r);
    metrics_request(r->metrics_route, 101, ns);
    http__access_log(r, 101, 0, NULL, ns);
    c->busy = 0;
    *leftover = NULL;
    *leftover_len = 0;
    if (c->closing) { /* the client went away during the handshake */
        c->closing = 0;
        http__conn_close(c);
        return NULL;
    }
    if (c->pending.len) {
        if (!(*leftover = malloc(c->pending.len))) {
            http__conn_close(c);
            return NULL;
        }
        memcpy(*leftover, c->pending.p, c->pending.len);
        *leftover_len = c->pending.len;
    }
    if (c->reading) uv_read_stop((uv_stream_t *)c->tcp), c->reading = 0;
    c->upgraded = 1;
    if (c->prev) c->prev->next = c->next;
    else conns = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
    nconns--;
    http__arm_timer(c, TIMER_NONE);
    uv_tcp_t *tcp = c->tcp;
    tcp->data = NULL; /* the new owner's from here on */
    write_req_t *wr = malloc(sizeof *wr + head_len);
    if (wr) {
        wr->conn = c;
        memcpy(wr->data, head, head_len);
        uv_buf_t b = uv_buf_init(wr->data, (unsigned)head_len);
        if (uv_write(&wr->req, (uv_stream_t *)tcp, &b, 1, http__on_write) < 0) free(wr);
        else c->writes++;
    }
    /* What an open socket keeps of its HTTP past is the handle: the parser,
     * header tables and buffers (several KiB) go once the writes queued on
     * them are done (http__on_write), or now. */
    if (!c->writes && !c->processing) http__conn_free(c);
    return tcp;
}

void http_free_upgraded(uv_tcp_t *tcp) { slab_free(&tcp_slab, tcp); }

void http_respond_detail(http_request_t *r, int status, const char *detail, const char *extra) {
    char body[512];
    int n = snprintf(body, sizeof body, "{\"detail\":\"%s\"}", detail);
    http_respond(r, status, extra, extra ? strlen(extra) : 0, body, (size_t)n, NULL);
}

const char *http_header(const http_request_t *r, const char *name, size_t *len) {
    size_t nl = strlen(name);
    for (int i = 0; i < r->nheaders; i++)
        if (r->headers[i].name_len == nl && memcmp(r->headers[i].name, name, nl) == 0) {
            if (len) *len = r->headers[i].value_len;
            return r->headers[i].value;
        }
    return NULL;
}

/* ---- parsing ---- */

static int http__header_budget(http_conn_t *c, size_t n) {
    c->header_bytes += n;
    if (c->header_bytes > opt.max_header_bytes) {
        c->error_status = 431;
        return HPE_USER;
    }
    return 0;
}

static int http__on_message_begin(llhttp_t *p) {
    http_conn_t *c = p->data;
    c->head.len = c->body.len = 0;
    c->url_len = 0;
    c->nhdr = 0;
    c->in_value = 0;
    c->header_bytes = 0;
    c->message_done = 0;
    c->in_message = 1;
    if (c->timer_kind != TIMER_HEADER) http__arm_timer(c, TIMER_HEADER);
    return 0;
}

static int http__on_url(llhttp_t *p, const char *at, size_t n) {
    http_conn_t *c = p->data;
    if (http__header_budget(c, n)) return HPE_USER;
    c->url_len += n;
    return http__buf_append(&c->head, at, n) ? HPE_USER : 0;
}

static int http__on_header_field(llhttp_t *p, const char *at, size_t n) {
    http_conn_t *c = p->data;
    if (http__header_budget(c, n)) return HPE_USER;
    if (c->in_value || c->nhdr == 0) {
        if (c->nhdr == HTTP_MAX_HEADERS) {
            c->error_status = 431;
            return HPE_USER;
        }
        hdr_span_t *h = &c->hdr[c->nhdr++];
        h->name_off = c->head.len;
        h->name_len = h->value_len = 0;
        h->value_off = 0;
        c->in_value = 0;
    }
    c->hdr[c->nhdr - 1].name_len += n;
    return http__buf_append(&c->head, at, n) ? HPE_USER : 0;
}

static int http__on_header_value(llhttp_t *p, const char *at, size_t n) {
    http_conn_t *c = p->data;
    if (http__header_budget(c, n)) return HPE_USER;
    hdr_span_t *h = &c->hdr[c->nhdr - 1];
    if (!c->in_value) {
        c->in_value = 1;
        h->value_off = c->head.len;
    }
    h->value_len += n;
    return http__buf_append(&c->head, at, n) ? HPE_USER : 0;
}

static int http__on_headers_complete(llhttp_t *p) {
    http_conn_t *c = p->data;
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > opt.max_body_bytes) {
        c->error_status = 413;
        return HPE_USER;
    }
    http__arm_timer(c, TIMER_BODY);
    for (int i = 0; i < c->nhdr; i++) {
        hdr_span_t *h = &c->hdr[i];
        if (h->name_len == 6 && strncasecmp(c->head.p + h->name_off, "expect", 6) == 0 && h->value_len == 12 &&
            strncasecmp(c->head.p + h->value_off, "100-continue", 12) == 0 && p->http_major == 1 && p->http_minor == 1)
            http__raw_write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    }
    return 0;
}

static int http__on_body(llhttp_t *p, const char *at, size_t n) {
    http_conn_t *c = p->data;
    if (c->body.len + n > opt.max_body_bytes) {
        c->error_status = 413;
        return HPE_USER;
    }
    return http__buf_append(&c->body, at, n) ? HPE_USER : 0;
}

static int http__on_message_complete(llhttp_t *p) {
    http_conn_t *c = p->data;
    c->message_done = 1;
    return HPE_PAUSED;
}

static int http__valid_request_id(const char *s, size_t n) {
    if (n == 0 || n > 64) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.') return 0;
    return 1;
}

static void http__new_request_id(char out[65]) {
    static uint64_t s0, s1;
    if (!s0 && !s1) {
        unsigned char seed[16];
        rng_bytes(seed, sizeof seed);
        memcpy(&s0, seed, 8);
        memcpy(&s1, seed + 8, 8);
        s0 |= 1;
    }
    /* xorshift128+: ids must be unique, not secret. */
    uint64_t a = s0, b = s1;
    s0 = b;
    a ^= a << 23;
    s1 = a ^ b ^ (a >> 17) ^ (b >> 26);
    uint64_t hi = s1 + b;
    a = s0, b = s1;
    s0 = b;
    a ^= a << 23;
    s1 = a ^ b ^ (a >> 17) ^ (b >> 26);
    static const char hex[] = "0123456789abcdef";
    uint64_t lo = s1 + b;
    for (int i = 0; i < 16; i++) {
        out[i] = hex[(hi >> (60 - 4 * i)) & 15];
        out[16 + i] = hex[(lo >> (60 - 4 * i)) & 15];
    }
    out[32] = 0;
}

static void http__answer_preflight(http_conn_t *c, http_request_t *r) {
    size_t olen = 0, hlen = 0;
    const char *origin = http_header(r, "origin", &olen);
    const char *hdrs = http_header(r, "access-control-request-headers", &hlen);
    ninflight++;
    c->busy = 1;
    if (olen >= 512 || !http__origin_allowed(origin, olen)) {
        const char *ct = "Content-Type: text/plain; charset=utf-8\r\n";
        http_respond(r, 400, ct, strlen(ct), "Disallowed CORS origin", 22, NULL);
        return;
    }
    char extra[1024];
    int n = snprintf(extra, sizeof extra,
                     "Access-Control-Allow-Methods: DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT\r\n"
                     "Access-Control-Max-Age: 600\r\nContent-Type: text/plain; charset=utf-8\r\n%s%.*s%s",
                     hdrs ? "Access-Control-Allow-Headers: " : "", hdrs && hlen < 512 ? (int)hlen : 0,
                     hdrs ? hdrs : "", hdrs ? "\r\n" : "");
    http_respond(r, 200, extra, (size_t)n, "OK", 2, NULL);
}

/* The metrics route slot of a request no route takes (yet), by method. */
static int http__metrics_unmatched(uint8_t method) {
    switch (method) {
    case HTTP_GET: return METRICS_UNMATCHED_GET;
    case HTTP_HEAD: return METRICS_UNMATCHED_HEAD;
    case HTTP_POST: return METRICS_UNMATCHED_POST;
    case HTTP_PUT: return METRICS_UNMATCHED_PUT;
    case HTTP_PATCH: return METRICS_UNMATCHED_PATCH;
    case HTTP_DELETE: return METRICS_UNMATCHED_DELETE;
    case HTTP_OPTIONS: return METRICS_UNMATCHED_OPTIONS;
    default: return METRICS_UNMATCHED_OTHER;
    }
}

/* Fills c->req from the parsed buffers and hands it to the handler. */
static void http__dispatch(http_conn_t *c) {
    http_request_t *r = &c->req;
    char *h = c->head.p ? c->head.p : "";
    memset(r->headers, 0, sizeof r->headers);
    r->conn = c;
    r->method = llhttp_method_name(c->parser.method);
    r->method_len = strlen(r->method);
    const char *q = memchr(h, '?', c->url_len);
    r->path = h;
    r->path_len = q ? (size_t)(q - h) : c->url_len;
    r->query = q ? q + 1 : "";
    r->query_len = q ? c->url_len - r->path_len - 1 : 0;
    r->nheaders = c->nhdr;
    for (int i = 0; i < c->nhdr; i++) {
        char *name = h + c->hdr[i].name_off;
        for (size_t k = 0; k < c->hdr[i].name_len; k++) name[k] = (char)tolower((unsigned char)name[k]);
        r->headers[i] = (http_header_t){name, c->hdr[i].name_len, h + c->hdr[i].value_off, c->hdr[i].value_len};
    }
    r->body = c->body.p ? c->body.p : "";
    r->body_len = c->body.len;
    r->is_head = c->parser.method == HTTP_HEAD;
    size_t idlen;
    const char *id = http_header(r, "x-request-id", &idlen);
    if (id && http__valid_request_id(id, idlen)) memcpy(r->request_id, id, idlen), r->request_id[idlen] = 0;
    else http__new_request_id(r->request_id);
    memcpy(r->remote_addr, c->remote_addr, sizeof r->remote_addr);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    r->start_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    r->metrics_route = http__metrics_unmatched(c->parser.method);
    http__arm_timer(c, TIMER_NONE);
    c->in_message = 0;
    if (c->parser.method == HTTP_OPTIONS && http_header(r, "origin", NULL) &&
        http_header(r, "access-control-request-method", NULL)) {
        http__answer_preflight(c, r);
        return;
    }
    ninflight++;
    c->busy = 1;
    handler(r);
}

/* Parses what is pending until a request is dispatched, more input is
 * needed, or the connection is refused. */
static void http__process(http_conn_t *c) {
    c->processing = 1;
    while (!c->busy && !c->closing && !c->close_after && !c->upgraded) {
        if (c->pending.len == 0) {
            if (draining || c->eof) {
                http__conn_finish(c);
                break;
            }
            if (c->timer_kind == TIMER_NONE) http__arm_timer(c, TIMER_IDLE), c->idle_queue = 0;
            if (!c->reading) uv_read_start((uv_stream_t *)c->tcp, http__on_alloc, http__on_read), c->reading = 1;
            break;
        }
        llhttp_errno_t e = llhttp_execute(&c->parser, c->pending.p, c->pending.len);
        if (e == HPE_OK) {
            c->pending.len = 0;
            continue;
        }
        if (e == HPE_PAUSED && c->message_done) {
            const char *pos = llhttp_get_error_pos(&c->parser);
            size_t used = pos ? (size_t)(pos - c->pending.p) : c->pending.len;
            memmove(c->pending.p, c->pending.p + used, c->pending.len - used);
            c->pending.len -= used;
            http__dispatch(c);
            continue;
        }
        if (c->error_status)
            http__refuse(c, c->error_status,
                   c->error_status == 413 ? "Request body too large" : http_status_text(c->error_status));
        else http__refuse(c, 400, "Bad Request");
        break;
    }
    c->processing = 0;
    if (c->upgraded && !c->writes) http__conn_free(c); /* upgraded inside http__dispatch() */
}

static void http__on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
    (void)h, (void)suggested;
    if (readbuf_used) { /* should not happen: reads are handled synchronously */
        b->base = malloc(65536);
        b->len = b->base ? 65536 : 0;
        return;
    }
    readbuf_used = 1;
    *b = uv_buf_init(readbuf, sizeof readbuf);
}

static void http__on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
    http_conn_t *c = s->data;
    if (n > 0 && !c->closing) {
        if (c->timer_kind == TIMER_BODY) http__arm_timer(c, TIMER_BODY);
        if (http__buf_append(&c->pending, b->base, (size_t)n) < 0) {
            http__conn_close(c);
        } else if (!c->busy) {
            http__process(c);
        } else if (c->pending.len > opt.max_header_bytes + opt.max_body_bytes + 65536) {
            uv_read_stop(s); /* resumed by http__process() once the handler answered */
            c->reading = 0;
        }
    } else if (n == UV_EOF) {
        uv_read_stop(s);
        c->reading = 0;
        c->eof = 1;
        if (!c->busy && !c->pending.len) http__conn_finish(c);
    } else if (n < 0) {
        http__conn_close(c);
    }
    if (b->base == readbuf) readbuf_used = 0;
    else free(b->base);
}

void http_init(uv_loop_t *l, const http_options_t *o, http_handler_fn h) {
    loop = l;
    opt = *o;
    handler = h;
    /* Strict parsing: llhttp's defaults, no llhttp_set_lenient_*. Lenient
     * headers, chunk extensions, transfer-encoding or keep-alive let two
     * parsers disagree on where a message ends, which is request smuggling
     * once a load balancer (HAProxy, README "Scaling out") sits in front;
     * our clients (browsers, the console, HTTP libraries) send conformant
     * requests, so strictness costs nothing but a 400 for broken ones. */
    llhttp_settings_init(&settings);
    settings.on_message_begin = http__on_message_begin;
    settings.on_url = http__on_url;
    settings.on_header_field = http__on_header_field;
    settings.on_header_value = http__on_header_value;
    settings.on_headers_complete = http__on_headers_complete;
    settings.on_body = http__on_body;
    settings.on_message_complete = http__on_message_complete;
    uint64_t shortest = opt.header_timeout_ms < opt.keepalive_timeout_ms ? opt.header_timeout_ms : opt.keepalive_timeout_ms;
    uint64_t tick = shortest / 4 < 10 ? 10 : shortest / 4 > 250 ? 250 : shortest / 4;
    uv_timer_init(loop, &sweep_timer);
    uv_timer_start(&sweep_timer, http__on_sweep, tick, tick);
    uv_unref((uv_handle_t *)&sweep_timer);
}

int http_accept(uv_stream_t *server) {
    http_conn_t *c = calloc(1, sizeof *c);
    if (!c) return UV_ENOMEM;
    if (!(c->tcp = slab_alloc(&tcp_slab))) {
        free(c);
        return UV_ENOMEM;
    }
    uv_tcp_init(loop, c->tcp);
    c->tcp->data = c;
    int rc = uv_accept(server, (uv_stream_t *)c->tcp);
    if (rc < 0 || nconns >= opt.max_connections || draining) {
        if (rc == 0) rejected++;
        uv_close((uv_handle_t *)c->tcp, http__on_handle_closed);
        return rc < 0 ? rc : UV_EBUSY;
    }
    uv_tcp_nodelay(c->tcp, 1);
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    if (uv_tcp_getpeername(c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET6) uv_ip6_name((struct sockaddr_in6 *)&ss, c->remote_addr, sizeof c->remote_addr);
        else uv_ip4_name((struct sockaddr_in *)&ss, c->remote_addr, sizeof c->remote_addr);
    }
    llhttp_init(&c->parser, HTTP_REQUEST, &settings);
    c->parser.data = c;
    c->next = conns;
    if (conns) conns->prev = c;
    conns = c;
    nconns++;
    http__arm_timer(c, TIMER_HEADER);
    uv_read_start((uv_stream_t *)c->tcp, http__on_alloc, http__on_read);
    c->reading = 1;
    return 0;
}

void http_drain(void) {
    draining = 1;
    for (http_conn_t *c = conns, *next; c; c = next) {
        next = c->next;
        if (!c->busy && !c->in_message && c->pending.len == 0)
            http__conn_finish(c);
    }
}

int http_open_connections(void) { return nconns; }
int http_requests_in_flight(void) { return ninflight; }
uint64_t http_rejected_connections(void) { return rejected; }
