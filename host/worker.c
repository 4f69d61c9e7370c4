/* worker.c - one worker process: loop, listener, VM, control channel.
 *
 * Control messages from the master (one line each):
 *   prepare <gen>                   build the generation from the snapshot
 *                                   memfd that comes with the line
 *                                   (SCM_RIGHTS), answer "prepared <gen>"
 *                                   or "failed <gen> <error>"
 *   commit <gen> <loaded_at_ms>     switch to it ("committed <gen>" or
 *                                   "stale <gen>" when it was not prepared)
 *   abort <gen> <at_ms> <error>     drop it and record the failed reload
 *   reloaded <token> <ok> <gen> <at_ms> <error>   the outcome of a reload
 *                                   this worker asked for ("reload <token>")
 * The services and the first generation come from runtime_start(); the
 * worker adds what only a serving process has: WebSocket fan-out (lua_ws.c,
 * installed as the VM's upgrade handler), the reloader host.scripts.reload()
 * calls, the static folders (static.c, asked before the router), HTTP and
 * the listener.
 * The worker sends "ready" once it serves. SIGTERM drains: the listener
 * closes, idle connections close, in-flight requests finish (up to
 * DRAIN_TIMEOUT_S), then the process exits 0.
 *
 * Fault injection for specs: when fixture scripts are configured and the
 * file named by the environment variable CCHOST_FAULT_WORKER_START exists,
 * the worker reports a failed start instead of serving (how the master's
 * respawn backoff is tested; production refuses fixture scripts). */
#include "worker.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "http.h"
#include "log.h"
#include "lua_host.h"
#include "lua_ws.h"
#include "metrics.h"
#include "pg.h"
#include "runtime.h"
#include "snapshot.h"
#include "static.h"
#include "vm.h"

static uv_loop_t *loop;
static uv_tcp_t listener;
static uv_poll_t ctl;
static uv_timer_t tick_timer, drain_timer;
static uv_signal_t sigterm, sighup, sigint;
static const worker_args_t *args;
static char ctlbuf[8192];
static size_t ctllen;
static int ctl_fds[16], nctl_fds; /* descriptors received, in order, not yet claimed by a line */
static int draining;
static uint64_t drain_deadline;

uint64_t worker_now_ms(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

int worker_ctl_line(char *line, size_t cap, const char *fmt, va_list ap) {
    int n = vsnprintf(line, cap - 1, fmt, ap);
    if (n < 0) return -1;
    if (n > (int)cap - 2) n = (int)cap - 2;
    for (int i = 0; i < n; i++)
        if (line[i] == '\n') line[i] = ' ';
    line[n++] = '\n';
    return n;
}

static void worker__ctl_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void worker__ctl_send(const char *fmt, ...) {
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = worker_ctl_line(line, sizeof line, fmt, ap);
    va_end(ap);
    /* Blocking write on a socketpair: short lines, the master always reads. */
    if (n > 0 && write(args->ctl_fd, line, (size_t)n) < 0) log_warnf("control write failed: %s", strerror(errno));
}

#define TRIM_GROWTH (1024 * 1024) /* free heap bytes grown since the last trim */

/* Hands the free pages of the heap back to the kernel after a burst.
 * glibc keeps what a burst freed (the HTTP side of thousands of WebSocket
 * upgrades, Redis buffers, Lua's garbage) in its heap, and the holes
 * between long-lived objects count in RSS for as long as the process lives:
 * 10 000 sockets opened at once cost about twice their live bytes. When the
 * free bytes grew by TRIM_GROWTH since the last trim, malloc_trim(0) returns
 * every whole free page (MADV_DONTNEED); pages used again fault back in. A
 * look, every tick, walks the bins (tens of microseconds); a trim, only
 * while a burst frees memory, costs about a millisecond. */
static void worker__return_free_memory(void) {
    static size_t free_after_trim;
    struct mallinfo2 mi = mallinfo2();
    if (mi.fordblks < free_after_trim) free_after_trim = mi.fordblks;
    if (mi.fordblks - free_after_trim < TRIM_GROWTH) return;
    malloc_trim(0);
    free_after_trim = mi.fordblks; /* a trim keeps the chunks free: only their pages go */
}

/* The watchdog tick, the free-memory check, and the gauges other workers
 * may be asked for: a scrape shows them as of the last tick (at most 100 ms
 * old). */
static void worker__on_tick(uv_timer_t *t) {
    (void)t;
    *args->tick = worker_now_ms();
    worker__return_free_memory();
    lua_State *L = vm_main_state();
    metrics_gauge(METRICS_LUA_MEMORY, (int64_t)lua_gc(L, LUA_GCCOUNT, 0) * 1024 + lua_gc(L, LUA_GCCOUNTB, 0));
    metrics_gauge(METRICS_DB_POOL_IN_USE, pg_pool_in_use());
    metrics_gauge(METRICS_DB_POOL_WAITING, pg_pool_waiting());
    metrics_gauge(METRICS_HTTP_CONNECTIONS, http_open_connections());
}

/* The HTTP handler: files under STATIC_MOUNTS, else the scripts. */
static void worker__on_request(http_request_t *req) {
    if (!static_handle(req)) vm_handle_request(req);
}

static void worker__on_connection(uv_stream_t *server, int status) {
    if (status < 0) return;
    http_accept(server);
}

static void worker__on_drain_check(uv_timer_t *t) {
    (void)t;
    if ((http_requests_in_flight() == 0 && http_open_connections() == 0) || worker_now_ms() >= drain_deadline) {
        log_infof("worker drained (%d in flight), exiting", http_requests_in_flight());
        exit(0);
    }
    http_drain();
}

static void worker__start_drain(void) {
    if (draining) return;
    draining = 1;
    drain_deadline = worker_now_ms() + (uint64_t)(config_num("DRAIN_TIMEOUT_S") * 1000);
    uv_close((uv_handle_t *)&listener, NULL);
    http_drain();
    lua_ws_close_all(1001);
    uv_timer_start(&drain_timer, worker__on_drain_check, 0, 20);
}

static void worker__on_signal(uv_signal_t *s, int signum) {
    (void)s;
    if (signum == SIGTERM) worker__start_drain();
    /* SIGINT from a terminal reaches the whole process group: the master
     * turns it into an orderly SIGTERM, so workers ignore it. SIGHUP is the
     * master's to coordinate. */
}

/* Reads a snapshot on the thread pool, then builds the generation on the
 * loop (Lua is single-threaded). */
typedef struct {
    uv_work_t work;
    int gen;
    int fd; /* the snapshot memfd, closed when done */
    char *buf;
    size_t len;
    char err[1024];
    int rc;
} prepare_job_t;

static void worker__prepare_read(uv_work_t *w) {
    prepare_job_t *j = w->data;
    j->rc = snapshot_load(j->fd, &j->buf, &j->len, j->err, sizeof j->err);
}

static void worker__prepare_done(uv_work_t *w, int status) {
    prepare_job_t *j = w->data;
    (void)status;
    if (j->rc == 0) j->rc = vm_prepare(j->buf, j->len, j->gen, j->err, sizeof j->err);
    if (j->rc == 0) worker__ctl_send("prepared %d", j->gen);
    else worker__ctl_send("failed %d %s", j->gen, j->err);
    close(j->fd);
    free(j->buf);
    free(j);
}

/* Coroutines waiting for a reload they asked the master for. */
static struct {
    unsigned token;
    lua_State *co;
} reload_waiters[64];
static int nreload_waiters;
static unsigned reload_token;

/* The reloader lua_host.c calls for host.scripts.reload(). */
static int worker__request_reload(lua_State *co) {
    if (nreload_waiters == (int)(sizeof reload_waiters / sizeof *reload_waiters)) return -1;
    reload_waiters[nreload_waiters].token = ++reload_token;
    reload_waiters[nreload_waiters++].co = co;
    worker__ctl_send("reload %u", reload_token);
    return 0;
}

static void worker__reload_answered(unsigned token, int ok, int gen, double at, const char *error) {
    for (int i = 0; i < nreload_waiters; i++) {
        if (reload_waiters[i].token != token) continue;
        lua_State *co = reload_waiters[i].co;
        reload_waiters[i] = reload_waiters[--nreload_waiters];
        lua_createtable(co, 0, 4);
        lua_pushboolean(co, ok);
        lua_setfield(co, -2, "ok");
        lua_pushinteger(co, gen);
        lua_setfield(co, -2, "generation");
        lua_pushnumber(co, at);
        lua_setfield(co, -2, "at_ms");
        if (!ok) {
            lua_pushstring(co, error);
            lua_setfield(co, -2, "error");
        }
        vm_resume(co, 1);
        return;
    }
}

static void worker__handle_ctl_line(char *line) {
    int gen = 0, off = 0, ok = 0;
    unsigned token = 0;
    double at = 0;
    if (sscanf(line, "prepare %d", &gen) == 1) {
        prepare_job_t *j = calloc(1, sizeof *j);
        if (!j || nctl_fds == 0) {
            worker__ctl_send("failed %d %s", gen, j ? "no snapshot came with prepare" : "out of memory");
            free(j);
            return;
        }
        j->gen = gen;
        j->fd = ctl_fds[0];
        memmove(ctl_fds, ctl_fds + 1, (size_t)--nctl_fds * sizeof *ctl_fds);
        j->work.data = j;
        uv_queue_work(loop, &j->work, worker__prepare_read, worker__prepare_done);
    } else if (sscanf(line, "commit %d %lf", &gen, &at) == 2) {
        if (vm_commit(gen) == 0) {
            vm_set_reload_status(1, at, NULL, at);
            vm_run_hook("on_commit", args->id);
            worker__ctl_send("committed %d", gen);
        } else {
            worker__ctl_send("stale %d", gen);
        }
    } else if (sscanf(line, "reloaded %u %d %d %lf %n", &token, &ok, &gen, &at, &off) == 4 && off > 0) {
        worker__reload_answered(token, ok, gen, at, line + off);
    } else if (sscanf(line, "abort %d %lf %n", &gen, &at, &off) == 2 && off > 0) {
        vm_abort(gen);
        vm_set_reload_status(0, at, line + off, 0);
    } else {
        log_warnf("worker: unknown control message '%s'", line);
    }
}

/* Reads what the master sent: lines, and the descriptors attached to some
 * of them (kept in order until their line claims them). */
static void worker__on_ctl_readable(uv_poll_t *p, int status, int events) {
    (void)events;
    char cbuf[CMSG_SPACE(4 * sizeof(int))];
    struct iovec iov = {.iov_base = ctlbuf + ctllen, .iov_len = sizeof ctlbuf - 1 - ctllen};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    ssize_t n = status < 0 ? -1 : recvmsg(args->ctl_fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n < 0 && status == 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) { /* the master is gone: stop serving */
        uv_poll_stop(p);
        worker__start_drain();
        return;
    }
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
        int count = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (int k = 0; k < count; k++) {
            int fd;
            memcpy(&fd, CMSG_DATA(cm) + (size_t)k * sizeof(int), sizeof fd);
            if (nctl_fds < (int)(sizeof ctl_fds / sizeof *ctl_fds)) ctl_fds[nctl_fds++] = fd;
            else close(fd);
        }
    }
    ctllen += (size_t)n;
    ctlbuf[ctllen] = 0;
    char *nl;
    while ((nl = memchr(ctlbuf, '\n', ctllen))) {
        *nl = 0;
        worker__handle_ctl_line(ctlbuf);
        size_t used = (size_t)(nl - ctlbuf) + 1;
        memmove(ctlbuf, ctlbuf + used, ctllen - used);
        ctllen -= used;
    }
    if (ctllen == sizeof ctlbuf - 1) ctllen = 0; /* a runaway line: drop it */
}

/* The fault-injection hook described at the top of this file. */
static int worker__start_fault_injected(void) {
    const char *path = getenv("CCHOST_FAULT_WORKER_START");
    return path && *path && *config_str("FIXTURE_SCRIPTS") && access(path, F_OK) == 0;
}

void worker_run(const worker_args_t *a) {
    args = a;
    char err[2048];
    log_init(config_str("LOG_LEVEL"), "worker", a->id);
    signal(SIGPIPE, SIG_IGN);
    loop = uv_default_loop();
    *a->tick = worker_now_ms();
    metrics_attach(a->id);
    if (worker__start_fault_injected()) {
        worker__ctl_send("failed %d fault injected: %s exists", a->generation, getenv("CCHOST_FAULT_WORKER_START"));
        exit(3);
    }
    runtime_options_t ro = {.worker_id = a->id,
                            .db_pool_size = (int)config_num("DB_POOL_SIZE"),
                            .snapshot_fd = a->snapshot_fd,
                            .generation = a->generation};
    int rc = runtime_start(loop, &ro, err, sizeof err);
    if (rc < 0) {
        worker__ctl_send("failed %d %s", a->generation, err);
        if (rc == -2) log_errorf("worker %d cannot load generation %d: %s", a->id, a->generation, err);
        else log_errorf("worker %d: %s", a->id, err);
        exit(3);
    }
    ws_options_t wo = {
        .max_message = (size_t)config_num("WS_MAX_MESSAGE_BYTES"),
        .max_output = (size_t)config_num("WS_MAX_OUTPUT_BYTES"),
        .ping_interval_ms = (uint64_t)(config_num("WS_PING_INTERVAL_S") * 1000),
        .idle_timeout_ms = (uint64_t)(config_num("WS_IDLE_TIMEOUT_S") * 1000),
    };
    rc = lua_ws_init(&wo);
    if (rc < 0) {
        worker__ctl_send("failed %d websocket fan-out: %s", a->generation, uv_strerror(rc));
        exit(3);
    }
    vm_set_upgrade_handler(lua_ws_accept);
    lua_host_set_reloader(worker__request_reload);
    http_options_t ho = {
        .max_header_bytes = (size_t)config_num("MAX_HEADER_BYTES"),
        .max_body_bytes = (size_t)config_num("MAX_BODY_BYTES"),
        .header_timeout_ms = (uint64_t)(config_num("HEADER_TIMEOUT_S") * 1000),
        .keepalive_timeout_ms = (uint64_t)(config_num("KEEPALIVE_TIMEOUT_S") * 1000),
        .max_connections = (int)config_num("MAX_CONNECTIONS"),
        .cors_origins = config_str("CORS_ORIGINS"),
        .worker_id = a->id,
        .access_log = 1,
    };
    if (static_init(loop, config_str("STATIC_MOUNTS"), err, sizeof err) < 0) {
        worker__ctl_send("failed %d %s", a->generation, err);
        exit(3);
    }
    http_init(loop, &ho, worker__on_request);
    rc = uv_tcp_init(loop, &listener);
    if (rc == 0) rc = uv_tcp_open(&listener, a->listen_fd);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&listener, 511, worker__on_connection);
    if (rc < 0) {
        worker__ctl_send("failed %d cannot accept on the shared socket: %s", a->generation, uv_strerror(rc));
        exit(3);
    }
    uv_timer_init(loop, &tick_timer);
    uv_timer_start(&tick_timer, worker__on_tick, 100, 100);
    uv_timer_init(loop, &drain_timer);
    uv_signal_init(loop, &sigterm);
    uv_signal_start(&sigterm, worker__on_signal, SIGTERM);
    uv_signal_init(loop, &sigint);
    uv_signal_start(&sigint, worker__on_signal, SIGINT);
    uv_signal_init(loop, &sighup);
    uv_signal_start(&sighup, worker__on_signal, SIGHUP);
    uv_poll_init(loop, &ctl, a->ctl_fd);
    uv_poll_start(&ctl, UV_READABLE, worker__on_ctl_readable);
    worker__ctl_send("ready");
    vm_run_hook("on_commit", a->id);
    vm_run_hook("on_start", a->id);
    uv_run(loop, UV_RUN_DEFAULT);
    exit(0);
}
