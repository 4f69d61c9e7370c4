/* wsclient.c - the WebSocket broadcast benchmark's client (make bench).
 *
 * Opens many authenticated notification sockets (/ws/notifications/<id>)
 * spread over several host processes, then has an admin broadcast a few
 * times and send to single users, and times how long each message takes to
 * reach the last socket that should get it. One epoll loop holds every
 * socket, so the client is not the limit (LuaSocket's select stops at 1024
 * descriptors); it raises its open-file limit to the hard limit first.
 * Compiled by tools/bench.sh at run time (gcc, no library).
 *
 * Usage: wsclient TOKENS PORTS PER_USER HTTP_PORT ADMIN_TOKEN ROUNDS PIDS
 *   TOKENS     file of "user_id token" lines (one session per user)
 *   PORTS      comma-separated host ports; socket n goes to PORTS[n % count]
 *   PER_USER   sockets per user
 *   HTTP_PORT  the host the admin's requests go to
 *   ROUNDS     broadcasts (and as many targeted sends)
 *   PIDS       comma-separated worker pids whose VmRSS is read before and after
 * Prints one line of key=value figures (milliseconds, kB); exits 1 when a
 * socket fails to open or a message never arrives (10 s).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF 65536

typedef struct {
    int fd, user, upgraded, closed;
    size_t len;
    char *buf;
    long got; /* round number of the last marker seen */
} conn_t;

static conn_t *conns;
static int nconns, epfd;
static char marker[64];
static long round_no;
static int want_user; /* 0: every socket (broadcast) */
static double last_at, first_at;
static int delivered;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *msg) {
    fprintf(stderr, "wsclient: %s\n", msg);
    exit(1);
}

static long rss_kb(int pid) {
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kb) == 1) break;
    fclose(f);
    return kb;
}

static void print_rss(const char *label, const char *pids) {
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", pids);
    printf(" %s=", label);
    int first = 1;
    for (char *p = strtok(copy, ","); p; p = strtok(NULL, ",")) {
        printf("%s%ld", first ? "" : ",", rss_kb(atoi(p)));
        first = 0;
    }
}

static int connect_to(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket failed (open-file limit?)");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect failed");
    return fd;
}

static void send_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR) continue;
            die("send failed");
        }
        p += w;
        n -= (size_t)w;
    }
}

/* A masked client frame (pong or close). */
static void send_frame(conn_t *c, int opcode, const char *payload, size_t n) {
    unsigned char f[2 + 4 + 125];
    if (n > 125) n = 125;
    f[0] = (unsigned char)(0x80 | opcode);
    f[1] = (unsigned char)(0x80 | n);
    memset(f + 2, 0, 4); /* a zero mask keeps the payload as is */
    memcpy(f + 6, payload, n);
    send_all(c->fd, (char *)f, 6 + n);
}

static void on_message(conn_t *c, const char *p, size_t n) {
    if (c->got == round_no || !marker[0] || !memmem(p, n, marker, strlen(marker))) return;
    if (want_user && c->user != want_user) return;
    c->got = round_no;
    double t = now_ms();
    if (!delivered) first_at = t;
    last_at = t;
    delivered++;
}

/* Parses what c has buffered: the HTTP upgrade answer, then frames. */
static void parse(conn_t *c) {
    if (!c->upgraded) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (!end) return;
        if (strncmp(c->buf, "HTTP/1.1 101", 12) != 0) {
            fprintf(stderr, "wsclient: upgrade refused: %.*s\n", (int)(end - c->buf), c->buf);
            exit(1);
        }
        size_t hl = (size_t)(end - c->buf) + 4;
        memmove(c->buf, c->buf + hl, c->len - hl);
        c->len -= hl;
        c->upgraded = 1;
    }
    for (;;) {
        if (c->len < 2) return;
        unsigned char *b = (unsigned char *)c->buf;
        int opcode = b[0] & 0x0f;
        uint64_t n = b[1] & 0x7f;
        size_t h = 2;
        if (n == 126) {
            if (c->len < 4) return;
            n = (uint64_t)b[2] << 8 | b[3];
            h = 4;
        } else if (n == 127) {
            if (c->len < 10) return;
            n = 0;
            for (int i = 0; i < 8; i++) n = n << 8 | b[2 + i];
            h = 10;
        }
        if (h + n > BUF) die("frame larger than the buffer");
        if (c->len < h + n) return;
        char *payload = c->buf + h;
        if (opcode == 0x9) send_frame(c, 0xA, payload, n);
        else if (opcode == 0x8) c->closed = 1;
        else if (opcode == 0x1 || opcode == 0x2 || opcode == 0x0) on_message(c, payload, n);
        memmove(c->buf, c->buf + h + n, c->len - h - n);
        c->len -= h + n;
    }
}

static void pump(int timeout_ms) {
    struct epoll_event ev[256];
    int n = epoll_wait(epfd, ev, 256, timeout_ms);
    for (int i = 0; i < n; i++) {
        conn_t *c = &conns[ev[i].data.u32];
        for (;;) {
            ssize_t r = recv(c->fd, c->buf + c->len, BUF - c->len, 0);
            if (r > 0) {
                c->len += (size_t)r;
                parse(c);
                if (c->len == BUF) die("buffer full");
            } else if (r == 0) {
                c->closed = 1;
                epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
                break;
            } else {
                if (errno != EAGAIN && errno != EINTR) {
                    c->closed = 1;
                    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
                }
                break;
            }
        }
    }
}

/* One admin request on a keep-alive connection; returns the status. */
static void http_post(int *fd, int port, const char *path, const char *token, const char *body) {
    char req[2048];
    if (*fd < 0) *fd = connect_to(port);
    int n = snprintf(req, sizeof req,
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     path, token, strlen(body), body);
    send_all(*fd, req, (size_t)n);
}

static int http_read(int fd) {
    char resp[8192];
    size_t len = 0;
    for (;;) {
        ssize_t r = recv(fd, resp + len, sizeof resp - 1 - len, 0);
        if (r <= 0) die("admin request: connection closed");
        len += (size_t)r;
        resp[len] = 0;
        char *end = strstr(resp, "\r\n\r\n");
        if (!end) continue;
        char *cl = strcasestr(resp, "content-length:");
        size_t want = (size_t)(end - resp) + 4 + (cl ? strtoul(cl + 15, NULL, 10) : 0);
        if (len >= want) break;
    }
    int status = 0;
    sscanf(resp, "HTTP/1.1 %d", &status);
    if (status != 200) fprintf(stderr, "wsclient: admin request answered %s\n", resp);
    return status;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int i = (int)(p * (n - 1) + 0.5);
    return v[i];
}

int main(int argc, char **argv) {
    if (argc != 8) die("usage: wsclient TOKENS PORTS PER_USER HTTP_PORT ADMIN_TOKEN ROUNDS PIDS");
    int per_user = atoi(argv[3]), http_port = atoi(argv[4]), rounds = atoi(argv[6]);
    const char *admin = argv[5], *pids = argv[7];
    int ports[16], nports = 0;
    char pl[256];
    snprintf(pl, sizeof pl, "%s", argv[2]);
    for (char *p = strtok(pl, ","); p && nports < 16; p = strtok(NULL, ",")) ports[nports++] = atoi(p);
    if (!nports || per_user < 1 || rounds < 1) die("bad arguments");

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);

    FILE *f = fopen(argv[1], "r");
    if (!f) die("cannot read the tokens file");
    int cap = 1024, nusers = 0, *uids = malloc(sizeof(int) * cap);
    char **tokens = malloc(sizeof(char *) * cap), tok[2048];
    int uid;
    while (fscanf(f, "%d %2047s", &uid, tok) == 2) {
        if (nusers == cap) {
            cap *= 2;
            uids = realloc(uids, sizeof(int) * cap);
            tokens = realloc(tokens, sizeof(char *) * cap);
        }
        uids[nusers] = uid;
        tokens[nusers++] = strdup(tok);
    }
    fclose(f);
    if (!nusers) die("no tokens");

    printf("sockets=%d hosts=%d", nusers * per_user, nports);
    print_rss("rss_before_kb", pids);
    fflush(stdout);

    nconns = nusers * per_user;
    conns = calloc((size_t)nconns, sizeof *conns);
    epfd = epoll_create1(0);
    double t0 = now_ms();
    char req[4096];
    for (int i = 0; i < nconns; i++) {
        conn_t *c = &conns[i];
        int u = i % nusers;
        c->user = uids[u];
        c->got = -1;
        c->buf = malloc(BUF);
        /* a blocking connect and upgrade request (tiny), then nonblocking reads */
        c->fd = connect_to(ports[i % nports]);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
        int n = snprintf(req, sizeof req,
                         "GET /ws/notifications/%d?token=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                         c->user, tokens[u]);
        send_all(c->fd, req, (size_t)n);
        fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
        if (i % 64 == 63) pump(0);
    }
    for (;;) {
        int up = 0, closed = 0;
        for (int i = 0; i < nconns; i++) {
            up += conns[i].upgraded;
            closed += conns[i].closed;
        }
        if (closed) {
            fprintf(stderr, "wsclient: %d sockets closed while opening\n", closed);
            exit(1);
        }
        if (up == nconns) break;
        if (now_ms() - t0 > 60000) die("sockets did not all open within 60 s");
        pump(100);
    }
    double open_ms = now_ms() - t0;
    /* let welcome messages and presence updates settle */
    for (double t = now_ms(); now_ms() - t < 1000;) pump(50);
    printf(" open_ms=%.0f", open_ms);
    print_rss("rss_after_kb", pids);
    fflush(stdout);

    double *last = calloc((size_t)rounds, sizeof(double)), *first = calloc((size_t)rounds, sizeof(double));
    double *sendl = calloc((size_t)rounds, sizeof(double));
    int http = -1;
    char body[256];
    for (int r = 0; r < rounds; r++) {
        for (int kind = 0; kind < 2; kind++) {
            round_no = r * 2 + kind;
            snprintf(marker, sizeof marker, "bench-%d-%ld", getpid(), round_no);
            delivered = 0;
            int expect;
            if (kind == 0) {
                want_user = 0;
                expect = nconns;
                snprintf(body, sizeof body, "{\"title\":\"%s\",\"body\":\"broadcast benchmark\"}", marker);
            } else {
                want_user = uids[(r * 7919) % nusers];
                expect = per_user;
                snprintf(body, sizeof body, "{\"title\":\"%s\",\"body\":\"send benchmark\",\"user_id\":%d}", marker,
                         want_user);
            }
            double start = now_ms();
            http_post(&http, http_port,
                      kind == 0 ? "/api/admin/notifications/broadcast" : "/api/admin/notifications/send", admin,
                      body);
            while (delivered < expect && now_ms() - start < 10000) pump(10);
            if (delivered < expect) {
                fprintf(stderr, "wsclient: round %d: %d of %d sockets got the message in 10 s\n", r, delivered,
                        expect);
                exit(1);
            }
            if (http_read(http) != 200) exit(1);
            if (kind == 0) {
                last[r] = last_at - start;
                first[r] = first_at - start;
            } else {
                sendl[r] = last_at - start;
            }
            for (double t = now_ms(); now_ms() - t < 100;) pump(10);
        }
    }
    printf(" broadcast_last_p50_ms=%.1f broadcast_last_p99_ms=%.1f broadcast_first_p50_ms=%.1f"
           " send_p50_ms=%.1f send_p99_ms=%.1f rounds=%d\n",
           pct(last, rounds, 0.5), pct(last, rounds, 0.99), pct(first, rounds, 0.5), pct(sendl, rounds, 0.5),
           pct(sendl, rounds, 0.99), rounds);
    return 0;
}
