/* ws.h - the server side of the WebSocket protocol (RFC 6455) on a libuv TCP
 * handle.
 *
 * The HTTP layer answers the upgrade request (ws_accept_key() computes the
 * Sec-WebSocket-Accept value), queues the 101 response and hands the socket
 * to ws_start(). From then on this engine owns reading: it parses frames
 * split at any byte or packed several to a read, unmasks them, reassembles
 * fragmented messages, answers pings, runs the close handshake, pings the
 * client every ping_interval_ms and closes connections that stay silent for
 * idle_timeout_ms. Violations close the connection with the RFC's codes:
 * 1002 protocol error, 1007 invalid UTF-8, 1009 message too big, 1008 when
 * the client reads too slowly for what is sent to it, 1001 idle.
 *
 * All connections of a process must run on one loop thread: reads share one
 * buffer, and the pings, idle timeouts and close deadlines of every
 * connection share one timer (created with the first connection, closed
 * with the last, so a loop without connections holds no handle of the
 * engine). Callbacks never fire from inside ws_send() or ws_close(). */
#ifndef CCHOST_WS_H
#define CCHOST_WS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

enum {
    WS_OP_TEXT = 1,
    WS_OP_BINARY = 2,
};

/* Close codes the engine sends or reports. */
enum {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,   /* idle timeout; also for a draining server */
    WS_CLOSE_PROTOCOL = 1002,
    WS_CLOSE_NO_STATUS = 1005,    /* reported only: the peer's close had no code */
    WS_CLOSE_ABNORMAL = 1006,     /* reported only: no close frame was exchanged */
    WS_CLOSE_INVALID_DATA = 1007, /* text or close reason not UTF-8 */
    WS_CLOSE_POLICY = 1008,       /* output buffer limit */
    WS_CLOSE_TOO_BIG = 1009,
    WS_CLOSE_INTERNAL = 1011,
};

typedef struct ws_conn ws_conn_t;

typedef struct {
    size_t max_message;        /* reassembled message limit; beyond -> close 1009 */
    size_t max_output;         /* bytes of queued frames (see ws_output_size); beyond -> close 1008 */
    uint64_t ping_interval_ms; /* the server sends an empty ping this often (0 = never) */
    uint64_t idle_timeout_ms;  /* nothing received for this long -> close 1001 (0 = never) */
} ws_options_t;

typedef struct {
    /* A complete message: opcode WS_OP_TEXT (already validated as UTF-8) or
     * WS_OP_BINARY. data is valid during the call only. The callback may call
     * ws_send() and ws_close(). */
    void (*on_message)(ws_conn_t *ws, int opcode, const char *data, size_t len, void *ud);
    /* Exactly once, when the connection is finished: close handshake done,
     * peer vanished, I/O error, or the 2 s close deadline passed. code is the
     * code of the close frame that ended the connection: the peer's when the
     * peer closed first (1005 when its frame carried no code), the engine's
     * own when it closed first (ws_close, protocol error, limit, idle), 1006
     * when no close frame was exchanged. reason is valid during the call. The
     * ws pointer is invalid once the callback returns; ws_send() and
     * ws_close() inside it are refused harmlessly. */
    void (*on_close)(ws_conn_t *ws, int code, const char *reason, size_t reason_len, void *ud);
    /* From the TCP handle's close callback, after on_close: frees the memory
     * that holds the uv_tcp_t (the HTTP connection struct owns it). */
    void (*release)(uv_tcp_t *tcp, void *ud);
} ws_callbacks_t;

/* Computes Sec-WebSocket-Accept for a client's Sec-WebSocket-Key:
 * base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")), 28 characters
 * and a NUL into out. Returns 0, or -1 (out untouched) if key is not 24
 * base64 characters decoding to 16 bytes (22 characters and "=="). */
int ws_accept_key(const char *key, size_t len, char out[29]);

/* Takes over a connected TCP handle whose 101 response has already been
 * queued with uv_write (those writes complete normally). Stops any previous
 * reading, sets tcp->data to the connection, starts its own reading and
 * queues its deadlines on the engine's timer. leftover (may be NULL when
 * leftover_len is 0) holds bytes read after the handshake request; they are
 * copied and parsed on the next loop turn, before newer bytes, so no
 * callback fires inside ws_start(). *opt and *cb are copied. Returns the
 * connection, or NULL on allocation or libuv failure or when connections of
 * another loop are open (the caller then still owns tcp, with reading
 * stopped). After success the engine closes tcp itself and gives it back
 * through cb->release. */
ws_conn_t *ws_start(uv_tcp_t *tcp, const char *leftover, size_t leftover_len, const ws_options_t *opt,
                    const ws_callbacks_t *cb, void *ud);

/* Queues a message (WS_OP_TEXT or WS_OP_BINARY) as one unmasked frame; data
 * is copied. The caller vouches that text is UTF-8. Returns 0;
 * UV_ENOBUFS when the frame would take ws_output_size() past max_output (the
 * message is dropped and the connection is being closed with 1008);
 * UV_ECANCELED once the connection is closing; UV_EINVAL for another opcode;
 * UV_ENOMEM; or the error of uv_write (the connection then ends with 1006 on
 * the next loop turn). */
int ws_send(ws_conn_t *ws, int opcode, const char *data, size_t len);

/* Starts the close handshake: sends a close frame with code (one a close
 * frame may carry: 1000-1003, 1007-1014 or 3000-4999) and reason (NULL or
 * UTF-8; cut to 123 bytes at a character boundary). Later incoming data
 * frames are dropped. The TCP connection closes when the peer answers with
 * its close frame (and then half-closes) or 2 s after the close was sent,
 * whichever comes first; on_close reports code. No-op once closing. */
void ws_close(ws_conn_t *ws, int code, const char *reason);

/* Bytes of frames handed to libuv whose write has not completed: the output
 * memory the connection holds (at most max_output, plus one close frame of
 * at most 127 bytes). A send burst within one loop turn counts in full until
 * libuv reports the writes done on a later turn. */
size_t ws_output_size(const ws_conn_t *ws);

/* The ud given to ws_start(). */
void *ws_userdata(ws_conn_t *ws);

#endif
