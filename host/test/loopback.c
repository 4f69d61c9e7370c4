/* loopback.c - the loopback harness of the socket-level C tests (see
 * loopback.h): the loop/client-thread split, the bridge that runs a function
 * on the loop thread (a uv_async handle and a semaphore), and the blocking
 * client socket helpers the cases share. */
#define _GNU_SOURCE
#include "loopback.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

static uv_loop_t *run_loop;
static uv_async_t call_async;
static sem_t call_done;
static void (*call_fn)(void);
static void (*run_client)(void);

int loopback_listen(uv_loop_t *loop, uv_tcp_t *server, uv_connection_cb on_connection) {
    struct sockaddr_in sa;
    struct sockaddr_storage bound;
    int rc, len = sizeof bound;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    if ((rc = uv_tcp_init(loop, server)) < 0) return rc;
    if ((rc = uv_tcp_bind(server, (struct sockaddr *)&sa, 0)) < 0 ||
        (rc = uv_listen((uv_stream_t *)server, 64, on_connection)) < 0 ||
        (rc = uv_tcp_getsockname(server, (struct sockaddr *)&bound, &len)) < 0)
        return rc; /* server is initialised: loopback_close_loop() closes it */
    return ntohs(((struct sockaddr_in *)&bound)->sin_port);
}

static void on_call(uv_async_t *a) {
    (void)a;
    call_fn();
    sem_post(&call_done);
}

void loopback_call(void (*fn)(void)) {
    call_fn = fn;
    uv_async_send(&call_async);
    while (sem_wait(&call_done) < 0 && errno == EINTR) {
    }
}

static void stop_loop(void) { uv_stop(run_loop); }

static void *client_main(void *arg) {
    (void)arg;
    run_client();
    loopback_call(stop_loop);
    return NULL;
}

int loopback_run(uv_loop_t *loop, void (*client)(void)) {
    pthread_t th;
    int rc;
    run_loop = loop;
    run_client = client;
    if (sem_init(&call_done, 0, 0) < 0) return -errno;
    if ((rc = uv_async_init(loop, &call_async, on_call)) < 0) {
        sem_destroy(&call_done);
        return rc;
    }
    if ((rc = pthread_create(&th, NULL, client_main, NULL)) != 0) {
        uv_close((uv_handle_t *)&call_async, NULL);
        sem_destroy(&call_done);
        return -rc;
    }
    uv_run(loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    uv_close((uv_handle_t *)&call_async, NULL);
    sem_destroy(&call_done);
    return 0;
}

static void close_open(uv_handle_t *h, void *arg) {
    if (uv_is_closing(h)) return;
    ++*(int *)arg;
    uv_close(h, NULL);
}

int loopback_close_loop(uv_loop_t *loop) {
    int left = 0, rc;
    uv_walk(loop, close_open, &left);
    uv_run(loop, UV_RUN_DEFAULT);
    return (rc = uv_loop_close(loop)) < 0 ? rc : left;
}

int loopback_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval tv = {.tv_sec = 5};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0) {
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        perror("loopback_connect");
        abort();
    }
    return fd;
}

int loopback_send(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int loopback_read_exact(int fd, void *buf, size_t n) {
    char *p = buf;
    while (n > 0) {
        ssize_t r = recv(fd, p, n, 0);
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int loopback_wait(int (*cond)(void *), void *arg, int timeout_ms) {
    double deadline = loopback_now_ms() + timeout_ms;
    for (;;) {
        if (cond(arg)) return 1;
        if (loopback_now_ms() >= deadline) return 0;
        loopback_sleep_ms(2);
    }
}

void loopback_sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

double loopback_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}
