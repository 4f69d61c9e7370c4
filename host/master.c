#define _GNU_SOURCE /* pipe2 */
/* master.c - the supervising process of `cchost serve`.
 *
 * The master runs no Lua and serves no request, so it uses a plain poll(2)
 * loop (forking from inside a libuv loop would leave the children with the
 * parent's loop state). It owns:
 *   - the listening socket: one, bound and listening before any worker
 *     exists, inherited by every worker, which all accept from it. Its accept
 *     queue belongs to no worker, so a worker that dies loses only the
 *     requests it was serving; connections waiting to be accepted go to the
 *     others. (With one SO_REUSEPORT socket per worker, the kernel resets
 *     the connections queued on a dead worker's socket.) The price is that a
 *     new connection wakes every idle worker and one wins the accept: a few
 *     wasted wake-ups per connection, nothing per request on keep-alive.
 *   - the workers: N slots, each a pid, a control socketpair and a watchdog
 *     tick in shared memory. A worker that dies is started again: at once if
 *     it had served for a while, else with backoff (100 ms doubling to 10 s).
 *     Only a failure before the host ever served ends the host; after that
 *     the master keeps serving with the workers it has and keeps retrying.
 *   - generations: a reload builds a snapshot of the scripts (a sealed
 *     memfd, snapshot.h), sends "prepare" with it to every worker, and only
 *     when all answered "prepared" sends "commit"; any failure sends "abort"
 *     and the old generation stays. Workers forked later inherit the current
 *     snapshot, which nothing outside this process can delete.
 *   - the metrics segment (metrics.h): mapped before any worker exists, like
 *     the ticks, so every worker adds to it and any of them can answer a
 *     scrape; the master records reload outcomes and worker exits there.
 * Files: READY_FILE gets the port once every worker serves; WORKERS_FILE the
 * worker pids (rewritten on every respawn). */
#include "master.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <dirent.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <fcntl.h>

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "snapshot.h"
#include "vm.h"
#include "worker.h"

#define MAX_WORKERS 256

#define RESPAWN_BACKOFF_MIN_MS 100
#define RESPAWN_BACKOFF_MAX_MS 10000
#define SERVED_LONG_ENOUGH_MS 1000 /* a worker that lived less counts as a failed start */

typedef struct {
    pid_t pid;
    int ctl;             /* master's end of the socketpair, -1 when none */
    int ready;
    int answered;        /* answered the reload in progress */
    int fails;           /* failed starts in a row */
    uint64_t started_ms;
    uint64_t respawn_at; /* when the empty slot starts a worker; 0: not planned */
    char buf[4096];
    size_t len;
} slot_t;

static slot_t slots[MAX_WORKERS];
static int nworkers, port, listen_fd = -1, sigpipe_fds[2] = {-1, -1}, inotify_fd = -1;
static volatile uint64_t *ticks;
static int snapshot_fd = -1, pending_fd = -1; /* current and preparing generation */
static int generation, pending_gen, reload_queued, stopping, initial_failed, announced;
static uint64_t reload_started_ms, watch_deadline_ms;
static char reload_error[1024];

/* Workers waiting for the outcome of a reload they asked for (the admin
 * endpoint). `queued`: answered by the reload after the one in progress. */
static struct {
    int slot;
    unsigned token;
    int queued;
} waiters[64];
static int nwaiters;

/* ---- signals: forwarded to the poll loop through a self-pipe ---- */

static void master__on_signal(int sig) {
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    ssize_t w = write(sigpipe_fds[1], &b, 1);
    (void)w;
    errno = saved;
}

static void master__write_file(const char *path, const char *text) {
    if (!path || !*path) return;
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        log_errorf("cannot write %s: %s", tmp, strerror(errno));
        return;
    }
    fputs(text, f);
    fclose(f);
    rename(tmp, path);
}

static void master__write_workers_file(void) {
    char text[MAX_WORKERS * 12] = "";
    size_t n = 0;
    for (int i = 0; i < nworkers; i++)
        if (slots[i].pid > 0) n += (size_t)snprintf(text + n, sizeof text - n, "%d\n", (int)slots[i].pid);
    master__write_file(config_str("WORKERS_FILE"), text);
}

/* Sends one control line to worker i, with descriptor fd attached
 * (SCM_RIGHTS) unless fd < 0. */
static void master__send_line(int i, int fd, const char *fmt, va_list ap) {
    if (slots[i].ctl < 0) return;
    char line[2048], cbuf[CMSG_SPACE(sizeof(int))] = {0};
    int n = worker_ctl_line(line, sizeof line, fmt, ap);
    if (n <= 0) return;
    struct iovec iov = {.iov_base = line, .iov_len = (size_t)n};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        msg.msg_control = cbuf;
        msg.msg_controllen = sizeof cbuf;
        struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    }
    if (sendmsg(slots[i].ctl, &msg, MSG_NOSIGNAL) < 0)
        log_warnf("control write to worker %d failed: %s", i, strerror(errno));
}

static void master__send_to(int i, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void master__send_to(int i, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    master__send_line(i, -1, fmt, ap);
    va_end(ap);
}

static void master__send_fd_to(int i, int fd, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void master__send_fd_to(int i, int fd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    master__send_line(i, fd, fmt, ap);
    va_end(ap);
}

/* Plans the start of a worker in the empty slot i: at once after a worker
 * that served a while, with backoff after failed starts in a row, so a crash
 * loop neither spins nor stops the host. */
static void master__plan_respawn(int i, int failed) {
    slot_t *s = &slots[i];
    s->fails = failed ? s->fails + 1 : 0;
    uint64_t delay = 0;
    if (s->fails) {
        delay = (uint64_t)RESPAWN_BACKOFF_MIN_MS << (s->fails > 8 ? 7 : s->fails - 1);
        if (delay > RESPAWN_BACKOFF_MAX_MS) delay = RESPAWN_BACKOFF_MAX_MS;
        log_warnf("worker %d: %d failed start%s in a row, next try in %llu ms", i, s->fails,
                  s->fails == 1 ? "" : "s", (unsigned long long)delay);
    }
    s->respawn_at = worker_now_ms() + delay;
}

static void master__spawn(int i) {
    int sv[2];
    slots[i].respawn_at = 0;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        log_errorf("worker %d: socketpair: %s", i, strerror(errno));
        master__plan_respawn(i, 1);
        return;
    }
    ticks[i] = worker_now_ms();
    pid_t pid = fork();
    if (pid < 0) {
        log_errorf("worker %d: fork: %s", i, strerror(errno));
        close(sv[0]);
        close(sv[1]);
        master__plan_respawn(i, 1);
        return;
    }
    if (pid == 0) {
        close(sv[0]);
        close(sigpipe_fds[0]);
        close(sigpipe_fds[1]);
        if (inotify_fd >= 0) close(inotify_fd);
        if (pending_fd >= 0) close(pending_fd);
        for (int k = 0; k < nworkers; k++)
            if (slots[k].ctl >= 0) close(slots[k].ctl);
        signal(SIGHUP, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGCHLD, SIG_DFL);
        worker_args_t a = {.id = i, .ctl_fd = sv[1], .listen_fd = listen_fd, .snapshot_fd = snapshot_fd,
                           .generation = generation, .tick = &ticks[i]};
        worker_run(&a);
    }
    close(sv[1]);
    slots[i] = (slot_t){.pid = pid, .ctl = sv[0], .started_ms = worker_now_ms(), .fails = slots[i].fails};
    log_infof("worker %d started (pid %d, generation %d)", i, (int)pid, generation);
}

/* ---- reload ---- */

static int master__take_snapshot(char *err, size_t errlen) {
    return snapshot_create(config_str("SCRIPTS_DIR"), config_str("FIXTURE_SCRIPTS"),
                           getenv("CONFIG_DIR") ? getenv("CONFIG_DIR") : "config", err, errlen);
}

static void master__finish_reload(int ok) {
    uint64_t now = worker_now_ms();
    metrics_reload(ok, ok ? pending_gen : generation); /* before any worker, or its client, hears of it */
    if (ok) {
        close(snapshot_fd);
        snapshot_fd = pending_fd;
        pending_fd = -1;
        generation = pending_gen;
        for (int i = 0; i < nworkers; i++) master__send_to(i, "commit %d %llu", generation, (unsigned long long)now);
        log_infof("reload: generation %d is live", generation);
    } else {
        for (int i = 0; i < nworkers; i++)
            master__send_to(i, "abort %d %llu %s", pending_gen, (unsigned long long)now, reload_error);
        log_errorf("reload of generation %d failed, generation %d keeps serving: %s", pending_gen, generation,
                   reload_error);
        if (pending_fd >= 0) close(pending_fd);
        pending_fd = -1;
    }
    int kept = 0;
    for (int w = 0; w < nwaiters; w++) {
        if (waiters[w].queued) {
            waiters[w].queued = 0;
            waiters[kept++] = waiters[w];
            continue;
        }
        master__send_to(waiters[w].slot, "reloaded %u %d %d %llu %s", waiters[w].token, ok, generation,
                (unsigned long long)now, ok ? "" : reload_error);
    }
    nwaiters = kept;
    /* Later workers inherit the outcome through their forked memory. */
    vm_set_reload_status(ok, (double)now, ok ? NULL : reload_error, ok ? (double)now : 0);
    pending_gen = 0;
}

static void master__start_reload(void) {
    if (pending_gen) {
        reload_queued = 1;
        return;
    }
    reload_queued = 0;
    reload_error[0] = 0;
    pending_gen = generation + 1;
    reload_started_ms = worker_now_ms();
    char err[1024];
    pending_fd = master__take_snapshot(err, sizeof err);
    if (pending_fd < 0) {
        snprintf(reload_error, sizeof reload_error, "%s", err);
        master__finish_reload(0);
        return;
    }
    log_infof("reload: preparing generation %d", pending_gen);
    for (int i = 0; i < nworkers; i++) {
        slots[i].answered = 0;
        master__send_fd_to(i, pending_fd, "prepare %d", pending_gen);
    }
}

static void master__check_reload_done(void) {
    if (!pending_gen) return;
    for (int i = 0; i < nworkers; i++)
        if (slots[i].pid > 0 && slots[i].ready && !slots[i].answered) {
            if (worker_now_ms() - reload_started_ms < 60000) return;
            snprintf(reload_error, sizeof reload_error, "worker %d did not answer the reload in time", i);
            master__finish_reload(0);
            return;
        }
    master__finish_reload(!reload_error[0]);
}

static void master__on_line(int i, char *line) {
    int gen;
    unsigned token;
    int off = 0;
    if (strcmp(line, "ready") == 0) {
        slots[i].ready = 1;
        slots[i].answered = !pending_gen; /* a respawn during a reload is handled by "stale" */
        return;
    }
    if (sscanf(line, "prepared %d", &gen) == 1 && gen == pending_gen) {
        slots[i].answered = 1;
    } else if (sscanf(line, "failed %d %n", &gen, &off) == 1 && off > 0) {
        if (gen == pending_gen) {
            slots[i].answered = 1;
            if (!reload_error[0]) snprintf(reload_error, sizeof reload_error, "%s", line + off);
        } else if (!slots[i].ready && !announced) {
            log_errorf("worker %d failed to start: %s", i, line + off);
            initial_failed = 1;
            snprintf(reload_error, sizeof reload_error, "%s", line + off);
        } else if (!slots[i].ready) {
            log_errorf("worker %d failed to restart (the others keep serving): %s", i, line + off);
        }
    } else if (sscanf(line, "stale %d", &gen) == 1) {
        log_warnf("worker %d missed generation %d, restarting it", i, gen);
        kill(slots[i].pid, SIGTERM);
    } else if (sscanf(line, "reload %u", &token) == 1) {
        if (nwaiters < (int)(sizeof waiters / sizeof *waiters))
            waiters[nwaiters++] = (typeof(waiters[0])){.slot = i, .token = token, .queued = pending_gen != 0};
        else
            master__send_to(i, "reloaded %u 0 %d 0 too many reloads waiting", token, generation);
        master__start_reload();
    }
}

/* Reads what worker i wrote on its control socket and handles each whole
 * line; closes the socket at its end. Returns the bytes read, 0 at the end
 * or when nothing was waiting (flags may hold MSG_DONTWAIT). */
static ssize_t master__read_ctl(int i, int flags) {
    slot_t *s = &slots[i];
    ssize_t n = recv(s->ctl, s->buf + s->len, sizeof s->buf - 1 - s->len, flags);
    if (n <= 0) {
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            close(s->ctl);
            s->ctl = -1;
        }
        return 0;
    }
    s->len += (size_t)n;
    s->buf[s->len] = 0;
    char *nl;
    while ((nl = memchr(s->buf, '\n', s->len))) {
        *nl = 0;
        master__on_line(i, s->buf);
        size_t used = (size_t)(nl - s->buf) + 1;
        memmove(s->buf, s->buf + used, s->len - used);
        s->len -= used;
    }
    if (s->len == sizeof s->buf - 1) s->len = 0;
    return n;
}

/* ---- children ---- */

static void master__reap(void) {
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < nworkers; i++) {
            if (slots[i].pid != pid) continue;
            if (WIFSIGNALED(status))
                log_warnf("worker %d (pid %d) was killed by signal %d", i, (int)pid, WTERMSIG(status));
            else
                log_infof("worker %d (pid %d) exited with status %d", i, (int)pid, WEXITSTATUS(status));
            /* The worker's last lines ("failed …") may still wait in its
             * socket when its exit is seen first: handle them before closing. */
            while (slots[i].ctl >= 0 && master__read_ctl(i, MSG_DONTWAIT) > 0) {
            }
            if (slots[i].ctl >= 0) close(slots[i].ctl);
            int was_ready = slots[i].ready;
            uint64_t age = worker_now_ms() - slots[i].started_ms;
            slots[i] = (slot_t){.pid = 0, .ctl = -1, .fails = slots[i].fails};
            metrics_worker_exit(i);
            master__write_workers_file();
            if (stopping || initial_failed) break;
            if (!was_ready && !announced) { /* the host never served: a start failure */
                if (!reload_error[0]) snprintf(reload_error, sizeof reload_error, "worker %d exited while starting", i);
                initial_failed = 1;
                break;
            }
            master__plan_respawn(i, !was_ready || age < SERVED_LONG_ENOUGH_MS);
            break;
        }
    }
}

static void master__watchdog(void) {
    uint64_t now = worker_now_ms(), limit = (uint64_t)(config_num("WATCHDOG_S") * 1000);
    for (int i = 0; i < nworkers; i++) {
        if (slots[i].pid <= 0) continue;
        uint64_t t = ticks[i];
        if (now > t && now - t > limit) {
            log_errorf("watchdog: worker %d (pid %d) has not ticked for %llu ms, killing it", i, (int)slots[i].pid,
                       (unsigned long long)(now - t));
            kill(slots[i].pid, SIGKILL);
            ticks[i] = now; /* one kill per stall */
        }
    }
}

/* ---- development file watcher: one inotify watch per folder ---- */

static void master__watch_tree(const char *dir, int depth) {
    if (inotify_add_watch(inotify_fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE) < 0)
        return;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char sub[PATH_MAX];
        struct stat st;
        snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name);
        if (stat(sub, &st) == 0 && S_ISDIR(st.st_mode) && depth < 16) master__watch_tree(sub, depth + 1);
    }
    if (d) closedir(d);
}

static void master__rewatch(void) {
    close(inotify_fd);
    inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    master__watch_tree(config_str("SCRIPTS_DIR"), 0);
    if (*config_str("FIXTURE_SCRIPTS")) master__watch_tree(config_str("FIXTURE_SCRIPTS"), 0);
}

static void master__read_inotify(void) {
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    ssize_t n;
    int new_dir = 0;
    while ((n = read(inotify_fd, buf, sizeof buf)) > 0) {
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            if ((ev->mask & IN_ISDIR) && (ev->mask & (IN_CREATE | IN_MOVED_TO))) new_dir = 1;
            p += sizeof *ev + ev->len;
        }
    }
    if (new_dir) master__rewatch();
    watch_deadline_ms = worker_now_ms() + (uint64_t)config_num("RELOAD_DEBOUNCE_MS");
}

/* ---- main loop ---- */

/* Starts the workers of slots whose planned respawn time has come. */
static void master__respawn_due(void) {
    uint64_t now = worker_now_ms();
    for (int i = 0; i < nworkers; i++)
        if (slots[i].pid <= 0 && slots[i].respawn_at && now >= slots[i].respawn_at) {
            master__spawn(i);
            master__write_workers_file();
        }
}

/* The one listening socket (SO_REUSEADDR only: a second host on the same
 * port is an error, not a silent share). Returns the fd or a negative errno. */
static int master__listen_on(const char *host, int port_wanted) {
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port_wanted);
        sl = sizeof *a4;
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port_wanted);
        sl = sizeof *a6;
    } else {
        return -EINVAL;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 511) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

/* Raises the soft limit of open files to the hard one and logs the figure.
 * Every WebSocket holds a descriptor for as long as it is open, so the
 * default soft limit (often 1024) would cap a worker's sockets far below
 * what its memory allows; the master does it once, before forking, and the
 * workers inherit the limit. */
static void master__raise_open_files(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        log_warnf("open files: cannot read the limit: %s", strerror(errno));
        return;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit raised = {.rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
        else log_warnf("open files: cannot raise the soft limit: %s", strerror(errno));
    }
    log_infof("open files: soft limit %llu (hard %llu)", (unsigned long long)rl.rlim_cur,
              (unsigned long long)rl.rlim_max);
}

static int master__live_workers(void) {
    int n = 0;
    for (int i = 0; i < nworkers; i++) n += slots[i].pid > 0;
    return n;
}

int master_run(void) {
    log_init(config_str("LOG_LEVEL"), "master", -1);
    nworkers = (int)config_num("WORKERS");
    if (nworkers <= 0) nworkers = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (nworkers <= 0) nworkers = 1;
    if (nworkers > MAX_WORKERS) nworkers = MAX_WORKERS;
    master__raise_open_files();

    listen_fd = master__listen_on(config_str("HOST"), (int)config_num("PORT"));
    if (listen_fd < 0) {
        fprintf(stderr, "cchost: cannot listen on %s:%d: %s\n", config_str("HOST"), (int)config_num("PORT"),
                strerror(-listen_fd));
        return 1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(listen_fd, (struct sockaddr *)&ss, &sl);
    port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);

    char err[1024];
    generation = 1;
    snapshot_fd = master__take_snapshot(err, sizeof err);
    if (snapshot_fd < 0) {
        fprintf(stderr, "cchost: %s\n", err);
        return 1;
    }
    ticks = mmap(NULL, sizeof(uint64_t) * MAX_WORKERS, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (ticks == MAP_FAILED || pipe2(sigpipe_fds, O_CLOEXEC | O_NONBLOCK) < 0) {
        fprintf(stderr, "cchost: %s\n", strerror(errno));
        return 1;
    }
    int mrc = metrics_create(nworkers); /* shared with the workers, like the ticks */
    if (mrc < 0) {
        fprintf(stderr, "cchost: metrics: %s\n", strerror(-mrc));
        return 1;
    }
    metrics_reload(-1, generation);
    struct sigaction sa = {0};
    sa.sa_handler = master__on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    vm_set_reload_status(1, (double)worker_now_ms(), NULL, (double)worker_now_ms());

    for (int i = 0; i < nworkers; i++) slots[i].ctl = -1;
    for (int i = 0; i < nworkers; i++) master__spawn(i);
    master__write_workers_file();
    if (config_bool("RELOAD_WATCH")) master__rewatch();

    uint64_t start = worker_now_ms();
    for (;;) {
        struct pollfd pfd[MAX_WORKERS + 2];
        int map[MAX_WORKERS + 2], n = 0;
        pfd[n] = (struct pollfd){.fd = sigpipe_fds[0], .events = POLLIN};
        map[n++] = -1;
        if (inotify_fd >= 0) {
            pfd[n] = (struct pollfd){.fd = inotify_fd, .events = POLLIN};
            map[n++] = -2;
        }
        for (int i = 0; i < nworkers; i++)
            if (slots[i].ctl >= 0) {
                pfd[n] = (struct pollfd){.fd = slots[i].ctl, .events = POLLIN};
                map[n++] = i;
            }
        int rc = poll(pfd, (nfds_t)n, 100);
        if (rc < 0 && errno != EINTR) break;
        for (int k = 0; rc > 0 && k < n; k++) {
            if (!(pfd[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            if (map[k] == -1) {
                unsigned char sig;
                while (read(sigpipe_fds[0], &sig, 1) == 1) {
                    if (sig == SIGCHLD) {
                        master__reap();
                    } else if (sig == SIGHUP) {
                        if (!stopping) master__start_reload();
                    } else if (sig == SIGTERM || sig == SIGINT) {
                        if (stopping) { /* second request: stop waiting */
                            for (int i = 0; i < nworkers; i++)
                                if (slots[i].pid > 0) kill(slots[i].pid, SIGKILL);
                        } else {
                            stopping = 1;
                            log_infof("stopping: draining %d workers", master__live_workers());
                            close(listen_fd);
                            listen_fd = -1;
                            for (int i = 0; i < nworkers; i++)
                                if (slots[i].pid > 0) kill(slots[i].pid, SIGTERM);
                        }
                    }
                }
            } else if (map[k] == -2) {
                master__read_inotify();
            } else {
                master__read_ctl(map[k], 0);
            }
        }
        master__reap();
        if (initial_failed) {
            fprintf(stderr, "cchost: cannot start: %s\n", reload_error);
            for (int i = 0; i < nworkers; i++)
                if (slots[i].pid > 0) kill(slots[i].pid, SIGKILL);
            while (wait(NULL) > 0) {
            }
            return 1;
        }
        if (stopping && master__live_workers() == 0) break;
        if (!announced) {
            int ready = 0;
            for (int i = 0; i < nworkers; i++) ready += slots[i].ready;
            if (ready == nworkers) {
                char text[32];
                snprintf(text, sizeof text, "%d\n", port);
                master__write_file(config_str("READY_FILE"), text);
                log_infof("serving on %s:%d with %d workers (generation %d)", config_str("HOST"), port, nworkers,
                          generation);
                announced = 1;
            } else if (worker_now_ms() - start > 60000) {
                fprintf(stderr, "cchost: workers did not become ready\n");
                stopping = 1;
                for (int i = 0; i < nworkers; i++)
                    if (slots[i].pid > 0) kill(slots[i].pid, SIGKILL);
            }
        }
        if (!stopping) {
            master__respawn_due();
            master__watchdog();
            master__check_reload_done();
            if (!pending_gen && reload_queued) master__start_reload();
            if (watch_deadline_ms && worker_now_ms() >= watch_deadline_ms) {
                watch_deadline_ms = 0;
                master__start_reload();
            }
        }
    }
    log_infof("stopped");
    return 0;
}
