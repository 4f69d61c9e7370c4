/* ws.c - the server side of the WebSocket protocol (RFC 6455) on libuv.
 *
 * Incoming bytes run through an incremental frame parser: the header (2 to
 * 14 bytes) is gathered in a small array, then the payload is unmasked
 * straight into the message buffer (data frames) or a 125-byte control
 * buffer, so frames split anywhere cost nothing extra and a message is
 * checked against max_message as soon as a header announces its length,
 * before any of it is buffered. Memory per connection is thus bounded by
 * max_message on input and by max_output (plus one close frame) on output:
 * every outgoing frame is one malloc handed to uv_write, counted until its
 * write callback runs, and a send that would pass the limit closes the
 * connection with 1008 instead (the close frame itself is always queued).
 *
 * Closing has three steps. CLOSING: we sent a close frame and wait for the
 * peer's; data frames are dropped. SHUT: the exchange is over (or a protocol
 * error ended it): our write side is shut down once queued frames are out,
 * incoming bytes are discarded, and we wait for the peer's EOF so that
 * closing the socket never resets data in flight. DEAD: the handles are
 * closing. A deadline 2 s after the first close step bounds the wait for a
 * peer that never answers or never reads. One timer per connection serves
 * the ping interval, the idle timeout, that deadline and deferred work; it
 * is re-armed lazily (a read only records its time). */
#include "ws.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"

#define WS_CLOSE_WAIT_MS 2000
#define WS_MAX_REASON 123
#define WS_KEEP_MSG_BUF 65536 /* larger message buffers are freed after use */

enum { ST_OPEN, ST_CLOSING, ST_SHUT, ST_DEAD };

struct ws_conn {
    uv_tcp_t *tcp;
    uv_timer_t timer;
    uv_shutdown_t shutdown_req;
    ws_options_t opt;
    ws_callbacks_t cb;
    void *ud;
    int state;
    int handles;       /* tcp and timer until their close callbacks ran */
    int teardown_now;  /* a write failed: tear down from the timer */
    int shutdown_done; /* our FIN is out */
    int eof;           /* the peer's FIN came while SHUT, before our FIN */
    uint64_t last_rx, next_ping, deadline; /* loop times in ms; deadline 0 = none */
    size_t out_bytes;
    char *leftover;
    size_t leftover_len;
    /* Frame parser. */
    unsigned char hdr[14];
    size_t hdr_len, hdr_need;
    int in_payload, fin, opcode, discard;
    uint64_t plen, pdone;
    unsigned char mask[4];
    /* The message being reassembled (msg_opcode 0 = none open). */
    int msg_opcode;
    char *msg;
    size_t msg_len, msg_cap;
    unsigned char ctl[125];
    /* The close frame that ends the connection (code 0 = none yet). */
    int close_code;
    char close_reason[WS_MAX_REASON];
    size_t close_reason_len;
};

typedef struct {
    uv_write_t req;
    ws_conn_t *ws;
    size_t len;
    char data[];
} ws_write_t;

/* Reads are handled synchronously, so one buffer serves every connection. */
static char readbuf[65536];
static int readbuf_used;

static void schedule(ws_conn_t *ws);
static void start_close(ws_conn_t *ws, int code, const char *reason, size_t reason_len);

/* ---- helpers ---- */

/* Strict UTF-8 (RFC 3629): no overlong forms, surrogates or code points past
 * U+10FFFF. */
static int utf8_valid(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        unsigned lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            k = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            k = 2;
            if (c == 0xE0) lo = 0xA0;
            else if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 3;
            if (c == 0xF0) lo = 0x90;
            else if (c == 0xF4) hi = 0x8F;
        } else {
            return 0;
        }
        if (n - i - 1 < k || s[i + 1] < lo || s[i + 1] > hi) return 0;
        for (size_t j = 2; j <= k; j++)
            if ((s[i + j] & 0xC0) != 0x80) return 0;
        i += k + 1;
    }
    return 1;
}

static int close_code_valid(int c) {
    return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1011) || (c >= 3000 && c <= 4999);
}

/* ---- lifetime ---- */

static void handle_done(ws_conn_t *ws) {
    if (--ws->handles > 0) return;
    free(ws->leftover);
    free(ws->msg);
    free(ws);
}

static void on_timer_closed(uv_handle_t *h) { handle_done(h->data); }

static void on_tcp_closed(uv_handle_t *h) {
    ws_conn_t *ws = h->data;
    ws->cb.release(ws->tcp, ws->ud);
    handle_done(ws);
}

/* Closes both handles and reports the end; pending writes are cancelled. */
static void teardown(ws_conn_t *ws) {
    if (ws->state == ST_DEAD) return;
    ws->state = ST_DEAD;
    uv_read_stop((uv_stream_t *)ws->tcp);
    uv_close((uv_handle_t *)ws->tcp, on_tcp_closed);
    uv_close((uv_handle_t *)&ws->timer, on_timer_closed);
    ws->cb.on_close(ws, ws->close_code ? ws->close_code : WS_CLOSE_ABNORMAL, ws->close_reason,
                    ws->close_reason_len, ws->ud);
}

/* ---- writing ---- */

static void on_written(uv_write_t *req, int status) {
    ws_write_t *w = (ws_write_t *)req;
    ws_conn_t *ws = w->ws;
    ws->out_bytes -= w->len;
    free(w);
    if (status < 0) teardown(ws); /* no-op when cancelled by teardown */
}

/* Queues one unmasked frame (b0: FIN and opcode). Frames other than close
 * (limited = 0) that would pass max_output start the 1008 close instead. */
static int send_frame(ws_conn_t *ws, int b0, const void *payload, size_t len, int limited) {
    size_t hl = len < 126 ? 2 : len <= 0xFFFF ? 4 : 10, total = hl + len;
    if (limited && (ws->out_bytes > ws->opt.max_output || total > ws->opt.max_output - ws->out_bytes)) {
        start_close(ws, WS_CLOSE_POLICY, "output buffer limit", 19);
        return UV_ENOBUFS;
    }
    ws_write_t *w = malloc(sizeof *w + total);
    if (!w) return UV_ENOMEM;
    unsigned char *h = (unsigned char *)w->data;
    h[0] = (unsigned char)b0;
    if (hl == 2) {
        h[1] = (unsigned char)len;
    } else if (hl == 4) {
        h[1] = 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++) h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    }
    if (len) memcpy(w->data + hl, payload, len);
    w->ws = ws;
    w->len = total;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)total);
    int rc = uv_write(&w->req, (uv_stream_t *)ws->tcp, &b, 1, on_written);
    if (rc < 0) {
        free(w);
        ws->teardown_now = 1; /* never re-enter the caller with on_close */
        schedule(ws);
        return rc;
    }
    ws->out_bytes += total;
    return 0;
}

/* Records the close that ends the connection and sends its frame. */
static void send_close(ws_conn_t *ws, int code, const char *reason, size_t reason_len) {
    unsigned char p[2 + WS_MAX_REASON];
    ws->close_code = code;
    memcpy(ws->close_reason, reason, reason_len);
    ws->close_reason_len = reason_len;
    p[0] = (unsigned char)(code >> 8);
    p[1] = (unsigned char)code;
    memcpy(p + 2, reason, reason_len);
    send_frame(ws, 0x88, p, 2 + reason_len, 0);
}

/* Our side opens the close handshake and waits for the peer's answer. */
static void start_close(ws_conn_t *ws, int code, const char *reason, size_t reason_len) {
    if (ws->state != ST_OPEN) return;
    ws->state = ST_CLOSING;
    ws->deadline = uv_now(ws->tcp->loop) + WS_CLOSE_WAIT_MS;
    send_close(ws, code, reason, reason_len);
    schedule(ws);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
    ws_conn_t *ws = req->data;
    if (ws->state == ST_DEAD) return;
    ws->shutdown_done = 1;
    if (status < 0 || ws->eof) teardown(ws);
}

/* The exchange is over: half-close once queued frames are out, then wait
 * for the peer's EOF (or the deadline). */
static void shut(ws_conn_t *ws) {
    if (ws->state >= ST_SHUT) return;
    ws->state = ST_SHUT;
    if (!ws->deadline) ws->deadline = uv_now(ws->tcp->loop) + WS_CLOSE_WAIT_MS;
    ws->shutdown_req.data = ws;
    if (uv_shutdown(&ws->shutdown_req, (uv_stream_t *)ws->tcp, on_shutdown) < 0) ws->teardown_now = 1;
    schedule(ws);
}

/* Fails the connection: a close frame with code unless one was sent, then
 * shut down without waiting for the peer's close. Returns -1. */
static int fail(ws_conn_t *ws, int code, const char *reason) {
    if (ws->state == ST_OPEN) send_close(ws, code, reason, strlen(reason));
    shut(ws);
    return -1;
}

/* ---- reading ---- */

static void handle_close_frame(ws_conn_t *ws, const unsigned char *p, size_t n) {
    int code = WS_CLOSE_NO_STATUS;
    if (n == 1) {
        fail(ws, WS_CLOSE_PROTOCOL, "close payload of one byte");
        return;
    }
    if (n >= 2) {
        code = p[0] << 8 | p[1];
        if (!close_code_valid(code)) {
            fail(ws, WS_CLOSE_PROTOCOL, "invalid close code");
            return;
        }
        if (!utf8_valid(p + 2, n - 2)) {
            fail(ws, WS_CLOSE_INVALID_DATA, "close reason is not UTF-8");
            return;
        }
    }
    if (ws->state == ST_OPEN) {
        /* Echo the code; report the peer's code and reason. */
        send_close(ws, code == WS_CLOSE_NO_STATUS ? WS_CLOSE_NORMAL : code, "", 0);
        ws->close_code = code;
        ws->close_reason_len = n > 2 ? n - 2 : 0;
        memcpy(ws->close_reason, p + 2, ws->close_reason_len);
    }
    shut(ws);
}

static int msg_reserve(ws_conn_t *ws, size_t need) {
    if (need <= ws->msg_cap) return 0;
    size_t cap = ws->msg_cap * 2 < 256 ? 256 : ws->msg_cap * 2;
    if (cap > ws->opt.max_message) cap = ws->opt.max_message;
    if (cap < need) cap = need;
    char *p = realloc(ws->msg, cap);
    if (!p) return -1;
    ws->msg = p;
    ws->msg_cap = cap;
    return 0;
}

static void frame_done(ws_conn_t *ws) {
    ws->in_payload = 0;
    if (ws->opcode == 9) {
        if (ws->state == ST_OPEN) send_frame(ws, 0x8A, ws->ctl, (size_t)ws->plen, 1);
    } else if (ws->opcode == 8) {
        handle_close_frame(ws, ws->ctl, (size_t)ws->plen);
    } else if (ws->opcode < 8 && !ws->discard && ws->fin) {
        int op = ws->msg_opcode;
        ws->msg_opcode = 0;
        if (op == WS_OP_TEXT && !utf8_valid((unsigned char *)ws->msg, ws->msg_len)) {
            fail(ws, WS_CLOSE_INVALID_DATA, "text message is not UTF-8");
            return;
        }
        ws->cb.on_message(ws, op, ws->msg ? ws->msg : "", ws->msg_len, ws->ud);
        ws->msg_len = 0;
        if (ws->msg_cap > WS_KEEP_MSG_BUF) {
            free(ws->msg);
            ws->msg = NULL;
            ws->msg_cap = 0;
        }
    }
}

/* Called each time the header buffer holds hdr_need bytes: first the two
 * fixed bytes (which tell the full header size), then the whole header.
 * Returns -1 when the connection failed. */
static int header_step(ws_conn_t *ws) {
    const unsigned char *h = ws->hdr;
    int op = h[0] & 0x0F, len7 = h[1] & 0x7F;
    if (ws->hdr_need == 2) {
        if (h[0] & 0x70) return fail(ws, WS_CLOSE_PROTOCOL, "reserved bits set");
        if (!(h[1] & 0x80)) return fail(ws, WS_CLOSE_PROTOCOL, "client frame not masked");
        if ((op > 2 && op < 8) || op > 10) return fail(ws, WS_CLOSE_PROTOCOL, "unknown opcode");
        if (op >= 8 && !(h[0] & 0x80)) return fail(ws, WS_CLOSE_PROTOCOL, "fragmented control frame");
        if (op >= 8 && len7 > 125) return fail(ws, WS_CLOSE_PROTOCOL, "control frame too long");
        ws->hdr_need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;
        return 0;
    }
    uint64_t len = (uint64_t)len7;
    size_t at = 2;
    if (len7 == 126) {
        len = (uint64_t)h[2] << 8 | h[3];
        at = 4;
    } else if (len7 == 127) {
        len = 0;
        for (int i = 0; i < 8; i++) len = len << 8 | h[2 + i];
        at = 10;
        if (len >> 63) return fail(ws, WS_CLOSE_PROTOCOL, "frame length has the top bit set");
    }
    memcpy(ws->mask, h + at, 4);
    ws->discard = 0;
    if (op < 8) {
        if (ws->state != ST_OPEN) {
            ws->discard = 1; /* after our close frame */
        } else if (op == 0 && !ws->msg_opcode) {
            return fail(ws, WS_CLOSE_PROTOCOL, "continuation without a message");
        } else if (op != 0 && ws->msg_opcode) {
            return fail(ws, WS_CLOSE_PROTOCOL, "new message inside a fragmented one");
        } else {
            if (op != 0) {
                ws->msg_opcode = op;
                ws->msg_len = 0;
            }
            if (len > ws->opt.max_message - ws->msg_len)
                return fail(ws, WS_CLOSE_TOO_BIG, "message too big");
            if (msg_reserve(ws, ws->msg_len + (size_t)len) < 0)
                return fail(ws, WS_CLOSE_INTERNAL, "out of memory");
        }
    }
    ws->opcode = op;
    ws->fin = h[0] >> 7;
    ws->plen = len;
    ws->pdone = 0;
    ws->in_payload = 1;
    ws->hdr_len = 0;
    ws->hdr_need = 2;
    if (len == 0) frame_done(ws);
    return 0;
}

static void payload(ws_conn_t *ws, const unsigned char *p, size_t n) {
    unsigned char *dst = NULL;
    if (ws->opcode >= 8) dst = ws->ctl + ws->pdone;
    else if (!ws->discard) dst = (unsigned char *)ws->msg + ws->msg_len;
    if (dst) {
        for (size_t i = 0; i < n; i++) dst[i] = p[i] ^ ws->mask[(ws->pdone + i) & 3];
        if (ws->opcode < 8) ws->msg_len += n;
    }
    ws->pdone += n;
}

/* Parses n received bytes; stops as soon as the exchange is over. */
static void feed(ws_conn_t *ws, const unsigned char *p, size_t n) {
    while (n > 0 && ws->state < ST_SHUT) {
        size_t take;
        if (!ws->in_payload) {
            take = ws->hdr_need - ws->hdr_len;
            if (take > n) take = n;
            memcpy(ws->hdr + ws->hdr_len, p, take);
            ws->hdr_len += take;
            if (ws->hdr_len == ws->hdr_need && header_step(ws) < 0) return;
        } else {
            take = ws->plen - ws->pdone < n ? (size_t)(ws->plen - ws->pdone) : n;
            payload(ws, p, take);
            if (ws->pdone == ws->plen) frame_done(ws);
        }
        p += take;
        n -= take;
    }
}

static void take_leftover(ws_conn_t *ws) {
    char *p = ws->leftover;
    if (!p) return;
    ws->leftover = NULL;
    feed(ws, (unsigned char *)p, ws->leftover_len);
    free(p);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
    (void)h, (void)suggested;
    if (readbuf_used) { /* should not happen: reads are handled synchronously */
        b->base = malloc(sizeof readbuf);
        b->len = b->base ? sizeof readbuf : 0;
        return;
    }
    readbuf_used = 1;
    *b = uv_buf_init(readbuf, sizeof readbuf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
    ws_conn_t *ws = s->data;
    if (n > 0) {
        ws->last_rx = uv_now(s->loop);
        take_leftover(ws);
        feed(ws, (unsigned char *)b->base, (size_t)n);
    } else if (n < 0) {
        if (ws->state == ST_SHUT && !ws->shutdown_done) {
            /* Let our last frames and FIN go out first (on_shutdown). */
            uv_read_stop(s);
            ws->eof = 1;
        } else {
            teardown(ws);
        }
    }
    if (b->base == readbuf) readbuf_used = 0;
    else free(b->base);
}

/* ---- timer ---- */

static void on_tick(uv_timer_t *t) {
    ws_conn_t *ws = t->data;
    uint64_t now = uv_now(t->loop);
    take_leftover(ws);
    if (ws->teardown_now || (ws->deadline && now >= ws->deadline)) {
        teardown(ws);
        return;
    }
    if (ws->state == ST_OPEN) {
        if (ws->opt.idle_timeout_ms && now - ws->last_rx >= ws->opt.idle_timeout_ms) {
            start_close(ws, WS_CLOSE_GOING_AWAY, "idle timeout", 12);
        } else if (ws->opt.ping_interval_ms && now >= ws->next_ping) {
            ws->next_ping = now + ws->opt.ping_interval_ms;
            send_frame(ws, 0x89, NULL, 0, 1);
        }
    }
    schedule(ws);
}

/* Arms the timer for the earliest thing due. */
static void schedule(ws_conn_t *ws) {
    if (ws->state == ST_DEAD) return;
    uint64_t now = uv_now(ws->tcp->loop), at = UINT64_MAX;
    if (ws->teardown_now || ws->leftover) at = now;
    if (ws->deadline && ws->deadline < at) at = ws->deadline;
    if (ws->state == ST_OPEN) {
        if (ws->opt.idle_timeout_ms && ws->last_rx + ws->opt.idle_timeout_ms < at)
            at = ws->last_rx + ws->opt.idle_timeout_ms;
        if (ws->opt.ping_interval_ms && ws->next_ping < at) at = ws->next_ping;
    }
    if (at == UINT64_MAX) uv_timer_stop(&ws->timer);
    else uv_timer_start(&ws->timer, on_tick, at > now ? at - now : 0, 0);
}

/* ---- API ---- */

int ws_accept_key(const char *key, size_t len, char out[29]) {
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    char buf[24 + sizeof guid];
    unsigned char md[20];
    if (len != 24 || key[22] != '=' || key[23] != '=') return -1;
    for (size_t i = 0; i < 22; i++) {
        char c = key[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/'))
            return -1;
    }
    memcpy(buf, key, 24);
    memcpy(buf + 24, guid, sizeof guid - 1);
    crypto_sha1(buf, 24 + sizeof guid - 1, md);
    EVP_EncodeBlock((unsigned char *)out, md, sizeof md);
    return 0;
}

ws_conn_t *ws_start(uv_tcp_t *tcp, const char *leftover, size_t leftover_len, const ws_options_t *opt,
                    const ws_callbacks_t *cb, void *ud) {
    ws_conn_t *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    if (leftover_len) {
        ws->leftover = malloc(leftover_len);
        if (!ws->leftover) {
            free(ws);
            return NULL;
        }
        memcpy(ws->leftover, leftover, leftover_len);
        ws->leftover_len = leftover_len;
    }
    ws->tcp = tcp;
    ws->opt = *opt;
    ws->cb = *cb;
    ws->ud = ud;
    ws->hdr_need = 2;
    ws->last_rx = uv_now(tcp->loop);
    ws->next_ping = ws->last_rx + opt->ping_interval_ms;
    uv_timer_init(tcp->loop, &ws->timer);
    ws->timer.data = ws;
    void *old = tcp->data;
    tcp->data = ws;
    uv_read_stop((uv_stream_t *)tcp);
    if (uv_read_start((uv_stream_t *)tcp, on_alloc, on_read) < 0) {
        tcp->data = old;
        ws->handles = 1;
        uv_close((uv_handle_t *)&ws->timer, on_timer_closed);
        return NULL;
    }
    ws->handles = 2;
    schedule(ws);
    return ws;
}

int ws_send(ws_conn_t *ws, int opcode, const char *data, size_t len) {
    if (ws->state != ST_OPEN) return UV_ECANCELED;
    if (opcode != WS_OP_TEXT && opcode != WS_OP_BINARY) return UV_EINVAL;
    return send_frame(ws, 0x80 | opcode, data, len, 1);
}

void ws_close(ws_conn_t *ws, int code, const char *reason) {
    size_t n = reason ? strlen(reason) : 0;
    if (n > WS_MAX_REASON) {
        n = WS_MAX_REASON;
        while (n > 0 && ((unsigned char)reason[n] & 0xC0) == 0x80) n--; /* keep whole characters */
    }
    start_close(ws, code, reason ? reason : "", n);
}

size_t ws_output_size(const ws_conn_t *ws) { return ws->out_bytes; }

void *ws_userdata(ws_conn_t *ws) { return ws->ud; }
