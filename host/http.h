/* http.h - HTTP/1.1 connections of one worker, parsed with llhttp.
 *
 * The worker hands every accepted TCP connection to http_accept(). Requests
 * are parsed one at a time per connection (pipelined ones wait their turn,
 * so responses always leave in request order); a complete request goes to
 * the handler given to http_init(), which must eventually call
 * http_respond() exactly once for it. Limits (header bytes 431, body bytes
 * 413, header time 408, idle keep-alive, connections per worker) and CORS
 * preflight are enforced here, before any Lua runs. */
#ifndef CCHOST_HTTP_H
#define CCHOST_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define HTTP_MAX_HEADERS 64

typedef struct http_conn http_conn_t;

typedef struct {
    const char *name; /* lower-cased */
    size_t name_len;
    const char *value;
    size_t value_len;
} http_header_t;

/* One parsed request; valid until http_respond() returns. */
typedef struct {
    http_conn_t *conn;
    const char *method;
    size_t method_len;
    const char *path; /* request target up to '?' */
    size_t path_len;
    const char *query; /* after '?', without it; "" when none */
    size_t query_len;
    http_header_t headers[HTTP_MAX_HEADERS];
    int nheaders;
    const char *body;
    size_t body_len;
    int is_head;
    char request_id[65];
    char remote_addr[64];
    uint64_t start_ns;
    int metrics_route; /* metrics.h route slot it counts under: "unmatched" until a route takes it */
} http_request_t;

typedef struct {
    size_t max_header_bytes, max_body_bytes;
    uint64_t header_timeout_ms, keepalive_timeout_ms;
    uint64_t finish_write_timeout_ms; /* a closing connection's time to read its last answer; 0: header_timeout_ms */
    int max_connections;
    const char *cors_origins; /* comma list */
    int worker_id;
    int access_log;
} http_options_t;

typedef void (*http_handler_fn)(http_request_t *req);

/* Sets up the HTTP layer of this worker; call once per process. */
void http_init(uv_loop_t *loop, const http_options_t *opts, http_handler_fn handler);

/* Takes ownership of an accepted client; returns 0 or a negative libuv error
 * (the connection is then closed, and counted when over the limit). */
int http_accept(uv_stream_t *server);

/* Sends the response to req and finishes it. extra_headers is a block of
 * "Name: value\r\n" lines (may be NULL). The body is copied; for HEAD it is
 * not sent but its length is announced. user_id (may be NULL) goes to the
 * access log. Safe after the client went away: the answer is then dropped. */
void http_respond(http_request_t *req, int status, const char *extra_headers, size_t extra_len,
                  const char *body, size_t body_len, const char *user_id);

/* Hands req's connection to another protocol (WebSocket): queues head (the
 * complete 101 response, written verbatim), stops HTTP processing and leaves
 * the handle to the caller; req and everything else of the HTTP connection
 * are gone when it returns. *leftover gets a malloc'd copy of the bytes
 * already read after the request (NULL when none; the caller frees it).
 * Returns NULL when the client is already gone or memory ran out (the
 * connection is then closed here). The new owner repoints tcp->data, closes
 * the handle and, in its close callback, calls http_free_upgraded(). */
uv_tcp_t *http_upgrade(http_request_t *req, const char *head, size_t head_len, char **leftover,
                       size_t *leftover_len);
void http_free_upgraded(uv_tcp_t *tcp);

/* Same with a {"detail": text} JSON body. */
void http_respond_detail(http_request_t *req, int status, const char *detail, const char *extra_headers);

/* Looks up a header (name lower-case); NULL when absent. */
const char *http_header(const http_request_t *req, const char *name, size_t *len);

/* Stops reading new requests: idle connections close now, busy ones after
 * their response (answered with Connection: close). */
void http_drain(void);

/* Connections open and requests in flight in this worker. */
int http_open_connections(void);
int http_requests_in_flight(void);
uint64_t http_rejected_connections(void);

const char *http_status_text(int status);

#endif
