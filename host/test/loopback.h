/* loopback.h - the harness of the C tests that drive a server over real
 * loopback sockets (test_http.c, test_ws.c).
 *
 * The server side runs on a libuv loop in the main thread; the cases run in
 * a client thread with blocking POSIX sockets on 127.0.0.1 and reach into the
 * loop only through loopback_call(), so every libuv call stays on the loop
 * thread. One loopback_run() at a time per process. The helpers report
 * failures by their return value and never CHECK: the test files do. */
#ifndef CCHOST_TEST_LOOPBACK_H
#define CCHOST_TEST_LOOPBACK_H

#include <stddef.h>
#include <uv.h>

/* ---- loop thread ---- */

/* Initialises server on loop, binds it to 127.0.0.1 on a port the kernel
 * picks and listens (backlog 64) with on_connection; returns the port, or a
 * negative libuv error code. */
int loopback_listen(uv_loop_t *loop, uv_tcp_t *server, uv_connection_cb on_connection);

/* Runs loop on the calling thread while client() runs on a new thread, and
 * returns once client() has returned, the loop has been stopped (uv_stop)
 * and the thread joined: 0, or a negative error when the thread or the
 * harness's async handle could not be created. The caller's handles stay
 * open and the harness's own is left closing: finish with
 * loopback_close_loop(). */
int loopback_run(uv_loop_t *loop, void (*client)(void));

/* Closes every handle of loop that is not already closing (without a close
 * callback), runs the loop until all close callbacks have fired, then closes
 * it. Returns how many handles it had to close, or a negative libuv error
 * when the loop still cannot be closed. */
int loopback_close_loop(uv_loop_t *loop);

/* ---- client thread ---- */

/* Only inside client() of loopback_run(): runs fn on the loop thread and
 * returns once fn has returned. */
void loopback_call(void (*fn)(void));

/* A blocking TCP socket connected to 127.0.0.1:port with TCP_NODELAY and a
 * 5 s receive timeout (a recv that waits longer fails with EAGAIN); aborts
 * when the connect fails, since no case can go on without it. */
int loopback_connect(int port);

/* Sends all n bytes: 0, or -1 when the peer is gone (never SIGPIPE). */
int loopback_send(int fd, const void *buf, size_t n);

/* Reads exactly n bytes: 0, or -1 on EOF, an error or the receive timeout. */
int loopback_read_exact(int fd, void *buf, size_t n);

/* Calls cond(arg) every 2 ms until it returns nonzero (then 1) or timeout_ms
 * have passed (then 0). cond runs on the calling thread. */
int loopback_wait(int (*cond)(void *), void *arg, int timeout_ms);

/* Sleeps ms milliseconds (resumed after a signal). */
void loopback_sleep_ms(int ms);

/* A monotonic clock in milliseconds, for measuring waits. */
double loopback_now_ms(void);

#endif
