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
 * closing the socket never resets data in flight. DEAD: the socket is
 * closing. A deadline 2 s after the first close step bounds the wait for a
 * peer that never answers or never reads.
 *
 * Time. A connection has at most one pending deadline, the earliest of its
 * next ping, its idle timeout (counted from the last read), that close
 * deadline and deferred work (leftover bytes, the teardown after a failed
 * write). The deadlines of all connections sit in one binary min-heap per
 * process, driven by one uv_timer started for the heap's top, so a tick
 * touches exactly the connections that are due: 10 000 idle sockets cost
 * nothing until their own deadline comes. Why a heap: the deadlines are
 * arbitrary (options may differ per listener, the close deadline is 2 s,
 * deferred work is due at once) and exact to the millisecond, and a heap
 * orders any mix in O(log n) per change and wakes the loop only when
 * something is due. A hashed timing wheel is O(1) but ticks at its
 * granularity whether or not anything is due, rounds every deadline to it
 * and needs rounds or levels past its span; sorted lists per interval are
 * O(1) too but need a list per distinct interval and a move on every read.
 * The heap's O(log n) is paid about once per ping per connection (10 000
 * sockets pinged every 25 s: 400 sifts of 14 levels a second), never per
 * read: a read only records its time, and the idle entry it made stale is
 * put right when it surfaces (the connection turns out not to be idle and
 * is queued again at its real next due time, so it is neither closed nor
 * pinged early). Each connection knows its heap index, so teardown takes it
 * out in O(log n); the heap has a slot for every connection (made at
 * ws_start, so queueing never allocates). The timer and the heap exist
 * while connections do. */
#include "ws.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "slab.h"

#define WS_CLOSE_WAIT_MS 2000
#define WS_MAX_REASON 123
#define WS_KEEP_MSG_BUF 65536 /* larger message buffers are freed after use */

enum { ST_OPEN, ST_CLOSING, ST_SHUT, ST_DEAD };

/* What only control frames and the close need, allocated on first use: the
 * many sockets that sit open and idle keep 250 bytes less each. */
typedef struct {
    unsigned char ctl[125];           /* a control frame's payload */
    char close_reason[WS_MAX_REASON]; /* of the close frame that ends the connection */
} ws_side_t;

struct ws_conn {
    uv_tcp_t *tcp;
    uv_shutdown_t shutdown_req;
    ws_options_t opt;
    ws_callbacks_t cb;
    void *ud;
    int state;
    int teardown_now;  /* a write failed: tear down from the timer */
    int shutdown_done; /* our FIN is out */
    int eof;           /* the peer's FIN came while SHUT, before our FIN */
    uint64_t last_rx, next_ping, deadline; /* loop times in ms; deadline 0 = none */
    uint64_t due;  /* when the timer next looks at it (valid while queued) */
    size_t slot;   /* its index in the deadline heap + 1; 0 = not queued */
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
    ws_side_t *side; /* NULL until a control frame with a payload or a close */
    /* The close frame that ends the connection (code 0 = none yet). */
    int close_code;
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

static void ws__schedule(ws_conn_t *ws);
static void ws__start_close(ws_conn_t *ws, int code, const char *reason, size_t reason_len);

/* ---- helpers ---- */

/* Strict UTF-8 (RFC 3629): no overlong forms, surrogates or code points past
 * U+10FFFF. */
static int ws__utf8_valid(const unsigned char *s, size_t n) {
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

static int ws__close_code_valid(int c) {
    return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1011) || (c >= 3000 && c <= 4999);
}

/* ---- deadlines: one heap and one timer for every connection ---- */

static struct {
    ws_conn_t **heap;  /* binary min-heap on due; heap[i]->slot == i + 1 */
    size_t len, cap;   /* cap >= conns: queueing never allocates */
    size_t conns;      /* connections from ws_start to teardown */
    uv_timer_t *timer; /* exists while conns > 0 */
    uint64_t armed;    /* the due time the timer is started for; UINT64_MAX: stopped */
    int ticking;       /* inside ws__on_tick, which arms the timer once at its end */
} sched = {.armed = UINT64_MAX};

static void ws__on_tick(uv_timer_t *t);

static void ws__heap_put(size_t i, ws_conn_t *ws) {
    sched.heap[i] = ws;
    ws->slot = i + 1;
}

static void ws__heap_up(size_t i) {
    ws_conn_t *ws = sched.heap[i];
    while (i > 0 && sched.heap[(i - 1) / 2]->due > ws->due) {
        ws__heap_put(i, sched.heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    ws__heap_put(i, ws);
}

static void ws__heap_down(size_t i) {
    ws_conn_t *ws = sched.heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= sched.len) break;
        if (c + 1 < sched.len && sched.heap[c + 1]->due < sched.heap[c]->due) c++;
        if (ws->due <= sched.heap[c]->due) break;
        ws__heap_put(i, sched.heap[c]);
        i = c;
    }
    ws__heap_put(i, ws);
}

static void ws__heap_remove(ws_conn_t *ws) {
    if (!ws->slot) return;
    size_t i = ws->slot - 1;
    ws_conn_t *last = sched.heap[--sched.len];
    ws->slot = 0;
    if (last == ws) return;
    ws__heap_put(i, last);
    if (i > 0 && sched.heap[(i - 1) / 2]->due > last->due) ws__heap_up(i);
    else ws__heap_down(i);
}

/* Queues ws at due, moving it when it is queued already; UINT64_MAX takes
 * it out. */
static void ws__heap_set(ws_conn_t *ws, uint64_t due) {
    if (due == UINT64_MAX) {
        ws__heap_remove(ws);
    } else if (!ws->slot) {
        ws->due = due;
        sched.heap[sched.len] = ws;
        ws__heap_up(sched.len++);
    } else if (due != ws->due) {
        int earlier = due < ws->due;
        ws->due = due;
        if (earlier) ws__heap_up(ws->slot - 1);
        else ws__heap_down(ws->slot - 1);
    }
}

/* Starts the timer for the earliest due time (stops it when none is). */
static void ws__arm(void) {
    if (sched.ticking || !sched.timer) return;
    if (!sched.len) {
        if (sched.armed != UINT64_MAX) uv_timer_stop(sched.timer);
        sched.armed = UINT64_MAX;
        return;
    }
    uint64_t due = sched.heap[0]->due, now = uv_now(sched.timer->loop);
    if (due == sched.armed) return;
    uv_timer_start(sched.timer, ws__on_tick, due > now ? due - now : 0, 0);
    sched.armed = due;
}

/* Counts a new connection: creates the timer for the first one and makes
 * room in the heap. 0, UV_EINVAL (connections of another loop are open) or
 * UV_ENOMEM. */
static int ws__sched_join(uv_loop_t *loop) {
    if (sched.timer && sched.timer->loop != loop) return UV_EINVAL;
    if (sched.conns == sched.cap) {
        size_t cap = sched.cap ? sched.cap * 2 : 64;
        ws_conn_t **heap = realloc(sched.heap, cap * sizeof *heap);
        if (!heap) return UV_ENOMEM;
        sched.heap = heap;
        sched.cap = cap;
    }
    if (!sched.timer) {
        uv_timer_t *t = malloc(sizeof *t);
        if (!t) return UV_ENOMEM;
        uv_timer_init(loop, t);
        sched.timer = t;
        sched.armed = UINT64_MAX;
    }
    sched.conns++;
    return 0;
}

static void ws__on_timer_closed(uv_handle_t *h) { free(h); }

/* Uncounts a connection that is out of the heap: the last one closes the
 * timer and frees the heap, so an engine without connections holds no
 * handle and no memory (the timer may be closed from its own callback). */
static void ws__sched_leave(void) {
    if (--sched.conns > 0) return;
    uv_close((uv_handle_t *)sched.timer, ws__on_timer_closed);
    sched.timer = NULL;
    sched.armed = UINT64_MAX;
    free(sched.heap);
    sched.heap = NULL;
    sched.cap = 0;
}

/* ---- lifetime ---- */

/* Connection states live in a slab, apart from the heap (slab.h). */
static slab_t conn_slab = SLAB_INIT(sizeof(ws_conn_t));

static void ws__on_tcp_closed(uv_handle_t *h) {
    ws_conn_t *ws = h->data;
    ws->cb.release(ws->tcp, ws->ud);
    free(ws->leftover);
    free(ws->msg);
    free(ws->side);
    slab_free(&conn_slab, ws);
}

/* ws's side block, allocated on first use; NULL when memory is short. */
static ws_side_t *ws__side(ws_conn_t *ws) {
    if (!ws->side) ws->side = malloc(sizeof *ws->side);
    return ws->side;
}

/* Closes the socket, drops the connection's deadlines and reports the end;
 * pending writes are cancelled. */
static void ws__teardown(ws_conn_t *ws) {
    if (ws->state == ST_DEAD) return;
    ws->state = ST_DEAD;
    ws__heap_remove(ws);
    ws__sched_leave();
    uv_read_stop((uv_stream_t *)ws->tcp);
    uv_close((uv_handle_t *)ws->tcp, ws__on_tcp_closed);
    ws->cb.on_close(ws, ws->close_code ? ws->close_code : WS_CLOSE_ABNORMAL, ws->side ? ws->side->close_reason : "",
                    ws->side ? ws->close_reason_len : 0, ws->ud);
}

/* ---- writing ---- */

static void ws__on_written(uv_write_t *req, int status) {
    ws_write_t *w = (ws_write_t *)req;
    ws_conn_t *ws = w->ws;
    ws->out_bytes -= w->len;
    free(w);
    if (status < 0) ws__teardown(ws); /* no-op when cancelled by teardown */
}

/* Queues one unmasked frame (b0: FIN and opcode). Frames other than close
 * (limited = 0) that would pass max_output start the 1008 close instead. */
static int ws__send_frame(ws_conn_t *ws, int b0, const void *payload, size_t len, int limited) {
    size_t hl = len < 126 ? 2 : len <= 0xFFFF ? 4 : 10, total = hl + len;
    if (limited && (ws->out_bytes > ws->opt.max_output || total > ws->opt.max_output - ws->out_bytes)) {
        ws__start_close(ws, WS_CLOSE_POLICY, "output buffer limit", 19);
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
    int rc = uv_write(&w->req, (uv_stream_t *)ws->tcp, &b, 1, ws__on_written);
    if (rc < 0) {
        free(w);
        ws->teardown_now = 1; /* never re-enter the caller with on_close */
        ws__schedule(ws);
        return rc;
    }
    ws->out_bytes += total;
    return 0;
}

/* Records the close that ends the connection and sends its frame. */
static void ws__send_close(ws_conn_t *ws, int code, const char *reason, size_t reason_len) {
    unsigned char p[2 + WS_MAX_REASON];
    ws->close_code = code;
    ws->close_reason_len = 0;
    if (reason_len && ws__side(ws)) {
        memcpy(ws->side->close_reason, reason, reason_len);
        ws->close_reason_len = reason_len;
    }
    p[0] = (unsigned char)(code >> 8);
    p[1] = (unsigned char)code;
    memcpy(p + 2, reason, reason_len);
    ws__send_frame(ws, 0x88, p, 2 + reason_len, 0);
}

/* Our side opens the close handshake and waits for the peer's answer. */
static void ws__start_close(ws_conn_t *ws, int code, const char *reason, size_t reason_len) {
    if (ws->state != ST_OPEN) return;
    ws->state = ST_CLOSING;
    ws->deadline = uv_now(ws->tcp->loop) + WS_CLOSE_WAIT_MS;
    ws__send_close(ws, code, reason, reason_len);
    ws__schedule(ws);
}

static void ws__on_shutdown(uv_shutdown_t *req, int status) {
    ws_conn_t *ws = req->data;
    if (ws->state == ST_DEAD) return;
    ws->shutdown_done = 1;
    if (status < 0 || ws->eof) ws__teardown(ws);
}

/* The exchange is over: half-close once queued frames are out, then wait
 * for the peer's EOF (or the deadline). */
static void ws__shut(ws_conn_t *ws) {
    if (ws->state >= ST_SHUT) return;
    ws->state = ST_SHUT;
    if (!ws->deadline) ws->deadline = uv_now(ws->tcp->loop) + WS_CLOSE_WAIT_MS;
    ws->shutdown_req.data = ws;
    if (uv_shutdown(&ws->shutdown_req, (uv_stream_t *)ws->tcp, ws__on_shutdown) < 0) ws->teardown_now = 1;
    ws__schedule(ws);
}

/* Fails the connection: a close frame with code unless one was sent, then
 * shut down without waiting for the peer's close. Returns -1. */
static int ws__fail(ws_conn_t *ws, int code, const char *reason) {
    if (ws->state == ST_OPEN) ws__send_close(ws, code, reason, strlen(reason));
    ws__shut(ws);
    return -1;
}

/* ---- reading ---- */

static void ws__handle_close_frame(ws_conn_t *ws, const unsigned char *p, size_t n) {
    int code = WS_CLOSE_NO_STATUS;
    if (n == 1) {
        ws__fail(ws, WS_CLOSE_PROTOCOL, "close payload of one byte");
        return;
    }
    if (n >= 2) {
        code = p[0] << 8 | p[1];
        if (!ws__close_code_valid(code)) {
            ws__fail(ws, WS_CLOSE_PROTOCOL, "invalid close code");
            return;
        }
        if (!ws__utf8_valid(p + 2, n - 2)) {
            ws__fail(ws, WS_CLOSE_INVALID_DATA, "close reason is not UTF-8");
            return;
        }
    }
    if (ws->state == ST_OPEN) {
        /* Echo the code; report the peer's code and reason. */
        ws__send_close(ws, code == WS_CLOSE_NO_STATUS ? WS_CLOSE_NORMAL : code, "", 0);
        ws->close_code = code;
        ws->close_reason_len = n > 2 ? n - 2 : 0;
        if (ws->close_reason_len) memcpy(ws->side->close_reason, p + 2, ws->close_reason_len); /* n > 0: a side block */
    }
    ws__shut(ws);
}

static int ws__msg_reserve(ws_conn_t *ws, size_t need) {
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

static void ws__frame_done(ws_conn_t *ws) {
    ws->in_payload = 0;
    if (ws->opcode == 9) {
        if (ws->state == ST_OPEN) ws__send_frame(ws, 0x8A, ws->plen ? ws->side->ctl : NULL, (size_t)ws->plen, 1);
    } else if (ws->opcode == 8) {
        ws__handle_close_frame(ws, ws->plen ? ws->side->ctl : NULL, (size_t)ws->plen);
    } else if (ws->opcode < 8 && !ws->discard && ws->fin) {
        int op = ws->msg_opcode;
        ws->msg_opcode = 0;
        if (op == WS_OP_TEXT && !ws__utf8_valid((unsigned char *)ws->msg, ws->msg_len)) {
            ws__fail(ws, WS_CLOSE_INVALID_DATA, "text message is not UTF-8");
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
static int ws__header_step(ws_conn_t *ws) {
    const unsigned char *h = ws->hdr;
    int op = h[0] & 0x0F, len7 = h[1] & 0x7F;
    if (ws->hdr_need == 2) {
        if (h[0] & 0x70) return ws__fail(ws, WS_CLOSE_PROTOCOL, "reserved bits set");
        if (!(h[1] & 0x80)) return ws__fail(ws, WS_CLOSE_PROTOCOL, "client frame not masked");
        if ((op > 2 && op < 8) || op > 10) return ws__fail(ws, WS_CLOSE_PROTOCOL, "unknown opcode");
        if (op >= 8 && !(h[0] & 0x80)) return ws__fail(ws, WS_CLOSE_PROTOCOL, "fragmented control frame");
        if (op >= 8 && len7 > 125) return ws__fail(ws, WS_CLOSE_PROTOCOL, "control frame too long");
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
        if (len >> 63) return ws__fail(ws, WS_CLOSE_PROTOCOL, "frame length has the top bit set");
    }
    memcpy(ws->mask, h + at, 4);
    ws->discard = 0;
    if (op >= 8 && len > 0 && !ws__side(ws)) return ws__fail(ws, WS_CLOSE_INTERNAL, "out of memory");
    if (op < 8) {
        if (ws->state != ST_OPEN) {
            ws->discard = 1; /* after our close frame */
        } else if (op == 0 && !ws->msg_opcode) {
            return ws__fail(ws, WS_CLOSE_PROTOCOL, "continuation without a message");
        } else if (op != 0 && ws->msg_opcode) {
            return ws__fail(ws, WS_CLOSE_PROTOCOL, "new message inside a fragmented one");
        } else {
            if (op != 0) {
                ws->msg_opcode = op;
                ws->msg_len = 0;
            }
            if (len > ws->opt.max_message - ws->msg_len)
                return ws__fail(ws, WS_CLOSE_TOO_BIG, "message too big");
            if (ws__msg_reserve(ws, ws->msg_len + (size_t)len) < 0)
                return ws__fail(ws, WS_CLOSE_INTERNAL, "out of memory");
        }
    }
    ws->opcode = op;
    ws->fin = h[0] >> 7;
    ws->plen = len;
    ws->pdone = 0;
    ws->in_payload = 1;
    ws->hdr_len = 0;
    ws->hdr_need = 2;
    if (len == 0) ws__frame_done(ws);
    return 0;
}

static void ws__payload(ws_conn_t *ws, const unsigned char *p, size_t n) {
    unsigned char *dst = NULL;
    if (ws->opcode >= 8) dst = ws->side->ctl + ws->pdone;
    else if (!ws->discard) dst = (unsigned char *)ws->msg + ws->msg_len;
    if (dst) {
        for (size_t i = 0; i < n; i++) dst[i] = p[i] ^ ws->mask[(ws->pdone + i) & 3];
        if (ws->opcode < 8) ws->msg_len += n;
    }
    ws->pdone += n;
}

/* Parses n received bytes; stops as soon as the exchange is over. */
static void ws__feed(ws_conn_t *ws, const unsigned char *p, size_t n) {
    while (n > 0 && ws->state < ST_SHUT) {
        size_t take;
        if (!ws->in_payload) {
            take = ws->hdr_need - ws->hdr_len;
            if (take > n) take = n;
            memcpy(ws->hdr + ws->hdr_len, p, take);
            ws->hdr_len += take;
            if (ws->hdr_len == ws->hdr_need && ws__header_step(ws) < 0) return;
        } else {
            take = ws->plen - ws->pdone < n ? (size_t)(ws->plen - ws->pdone) : n;
            ws__payload(ws, p, take);
            if (ws->pdone == ws->plen) ws__frame_done(ws);
        }
        p += take;
        n -= take;
    }
}

static void ws__take_leftover(ws_conn_t *ws) {
    char *p = ws->leftover;
    if (!p) return;
    ws->leftover = NULL;
    ws__feed(ws, (unsigned char *)p, ws->leftover_len);
    free(p);
}

static void ws__on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
    (void)h, (void)suggested;
    if (readbuf_used) { /* should not happen: reads are handled synchronously */
        b->base = malloc(sizeof readbuf);
        b->len = b->base ? sizeof readbuf : 0;
        return;
    }
    readbuf_used = 1;
    *b = uv_buf_init(readbuf, sizeof readbuf);
}

static void ws__on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
    ws_conn_t *ws = s->data;
    if (n > 0) {
        ws->last_rx = uv_now(s->loop);
        ws__take_leftover(ws);
        ws__feed(ws, (unsigned char *)b->base, (size_t)n);
    } else if (n < 0) {
        if (ws->state == ST_SHUT && !ws->shutdown_done) {
            /* Let our last frames and FIN go out first (on_shutdown). */
            uv_read_stop(s);
            ws->eof = 1;
        } else {
            ws__teardown(ws);
        }
    }
    if (b->base == readbuf) readbuf_used = 0;
    else free(b->base);
}

/* ---- timer ---- */

/* Does what is due for ws at now and queues it again, always later than
 * now unless it must be torn down (then on the same tick), so a tick ends. */
static void ws__run_due(ws_conn_t *ws, uint64_t now) {
    ws__take_leftover(ws);
    if (ws->teardown_now || (ws->deadline && now >= ws->deadline)) {
        ws__teardown(ws);
        return;
    }
    if (ws->state == ST_OPEN) {
        if (ws->opt.idle_timeout_ms && now - ws->last_rx >= ws->opt.idle_timeout_ms) {
            ws__start_close(ws, WS_CLOSE_GOING_AWAY, "idle timeout", 12);
        } else if (ws->opt.ping_interval_ms && now >= ws->next_ping) {
            ws->next_ping = now + ws->opt.ping_interval_ms;
            ws__send_frame(ws, 0x89, NULL, 0, 1);
        }
    }
    ws__schedule(ws);
}

/* Runs every connection that is due, earliest first, and nothing else. */
static void ws__on_tick(uv_timer_t *t) {
    uint64_t now = uv_now(t->loop);
    sched.armed = UINT64_MAX;
    sched.ticking = 1;
    while (sched.len && sched.heap[0]->due <= now) ws__run_due(sched.heap[0], now);
    sched.ticking = 0;
    ws__arm();
}

/* Queues ws for the earliest thing due: deferred work (now), the close
 * deadline, the idle timeout from the last read, the next ping. A read
 * moves nothing: the idle entry it makes stale is put right when it comes
 * due (ws__run_due finds the connection not idle and queues it again). */
static void ws__schedule(ws_conn_t *ws) {
    if (ws->state == ST_DEAD) return;
    uint64_t now = uv_now(ws->tcp->loop), at = UINT64_MAX;
    if (ws->teardown_now || ws->leftover) at = now;
    if (ws->deadline && ws->deadline < at) at = ws->deadline;
    if (ws->state == ST_OPEN) {
        if (ws->opt.idle_timeout_ms && ws->last_rx + ws->opt.idle_timeout_ms < at)
            at = ws->last_rx + ws->opt.idle_timeout_ms;
        if (ws->opt.ping_interval_ms && ws->next_ping < at) at = ws->next_ping;
    }
    ws__heap_set(ws, at);
    ws__arm();
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
    uv_read_stop((uv_stream_t *)tcp);
    ws_conn_t *ws = slab_alloc(&conn_slab);
    if (!ws) return NULL;
    if (leftover_len) {
        ws->leftover = malloc(leftover_len);
        if (!ws->leftover) {
            slab_free(&conn_slab, ws);
            return NULL;
        }
        memcpy(ws->leftover, leftover, leftover_len);
        ws->leftover_len = leftover_len;
    }
    if (ws__sched_join(tcp->loop) < 0) {
        free(ws->leftover);
        slab_free(&conn_slab, ws);
        return NULL;
    }
    ws->tcp = tcp;
    ws->opt = *opt;
    ws->cb = *cb;
    ws->ud = ud;
    ws->hdr_need = 2;
    ws->last_rx = uv_now(tcp->loop);
    ws->next_ping = ws->last_rx + opt->ping_interval_ms;
    void *old = tcp->data;
    tcp->data = ws;
    if (uv_read_start((uv_stream_t *)tcp, ws__on_alloc, ws__on_read) < 0) {
        tcp->data = old;
        ws__sched_leave();
        free(ws->leftover);
        slab_free(&conn_slab, ws);
        return NULL;
    }
    ws__schedule(ws);
    return ws;
}

int ws_send(ws_conn_t *ws, int opcode, const char *data, size_t len) {
    if (ws->state != ST_OPEN) return UV_ECANCELED;
    if (opcode != WS_OP_TEXT && opcode != WS_OP_BINARY) return UV_EINVAL;
    return ws__send_frame(ws, 0x80 | opcode, data, len, 1);
}

void ws_close(ws_conn_t *ws, int code, const char *reason) {
    size_t n = reason ? strlen(reason) : 0;
    if (n > WS_MAX_REASON) {
        n = WS_MAX_REASON;
        while (n > 0 && ((unsigned char)reason[n] & 0xC0) == 0x80) n--; /* keep whole characters */
    }
    ws__start_close(ws, code, reason ? reason : "", n);
}

size_t ws_output_size(const ws_conn_t *ws) { return ws->out_bytes; }

void *ws_userdata(ws_conn_t *ws) { return ws->ud; }
