#define _GNU_SOURCE /* MAP_ANONYMOUS */
/* metrics.c - the host's Prometheus figures in one shared segment.
 *
 * Layout of the segment (one anonymous MAP_SHARED mapping made by the master
 * before it forks, so every worker has it at the same address):
 *   header   a process-shared robust mutex (registrations only); the route
 *            registry (method, escaped route label) and the script series
 *            registry (family, escaped label text), each published by a
 *            count stored with release order after its entry is written, so
 *            readers take no lock; the master's own figures (generation,
 *            reloads by outcome, worker exits).
 *   pages    one per worker slot: per route slot, the request count per
 *            status, the latency histogram (one non-cumulative cell per
 *            bucket, cumulated at scrape) and the latency sum; the C
 *            counters; the gauges; the script series counters.
 * Every cell of a page has one writer, the worker of that slot (the master
 * touches a page only after reaping its worker), so an add is a relaxed
 * atomic load and store: no locked instruction, and a reader in another
 * process never sees a torn value. The histogram's count is the sum of its
 * buckets as read, so bucket, +Inf and _count always agree within a scrape.
 * Registries only grow: a slot keeps its meaning for the life of the host,
 * so a reload that drops a route leaves its counts in place, and one that
 * brings it back finds the same slot. */
#include "metrics.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define METRICS__MAX_WORKERS 256
#define METRICS__METHOD 12       /* bytes of a route's method, NUL included */
#define METRICS__ROUTE_LABEL 240 /* bytes of an escaped route label, NUL included */
#define METRICS__SERIES_LABELS 304 /* bytes of a series' escaped label text, NUL included */
#define METRICS__NBOUNDS 16
#define METRICS__NBUCKETS (METRICS__NBOUNDS + 1) /* the last one: above every bound (+Inf) */

/* Status codes with a series of their own; any other counts as "other". */
static const int metrics__codes[] = {101, 200, 201, 202, 204, 206, 301, 302, 303, 304, 307, 308, 400, 401, 403,
                                     404, 405, 408, 409, 410, 413, 415, 422, 429, 431, 500, 501, 502, 503, 504};
#define METRICS__NCODES (int)(sizeof metrics__codes / sizeof *metrics__codes)
#define METRICS__NSTATUS (METRICS__NCODES + 1)

/* Latency bucket bounds: sub-millisecond routes need the fine low end. */
static const uint64_t metrics__bound_ns[METRICS__NBOUNDS] = {
    100000,    250000,    500000,    1000000,    2500000,    5000000,    10000000,   25000000,
    50000000,  100000000, 250000000, 500000000,  1000000000, 2500000000, 5000000000, 10000000000};
static const char *const metrics__bound_text[METRICS__NBOUNDS] = {
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
    "0.05",   "0.1",     "0.25",   "0.5",   "1",      "2.5",   "5",    "10"};

typedef struct {
    const char *name, *help;
    int counter; /* 1: fed by metrics_series_add; 0: a gauge the scrape reads */
    const char *labels[3];
} metrics__family_t;

/* The families scripts feed (host.metrics.add) or read at scrape time. */
static const metrics__family_t metrics__fams[] = {
    {"cc_login_failures_total", "Refused logins by reason (invalid_credentials, locked_out, inactive).", 1,
     {"reason", NULL}},
    {"cc_crash_db_errors_total",
     "Failed crash_sessions/crash_bets writes outside the money transaction (CRASH_DB_STRICT off).", 1, {NULL}},
    {"cc_game_plays_total", "Committed game plays by game.", 1, {"game", NULL}},
    {"cc_game_bet_tokens_total", "Tokens staked in committed plays by game.", 1, {"game", NULL}},
    {"cc_game_payout_tokens_total", "Tokens credited to plays (payouts and crash refunds) by game.", 1,
     {"game", NULL}},
    {"cc_crash_active_rounds", "Crash rounds in flight (the sweeper's index in Redis), read at scrape.", 0, {NULL}},
    {"cc_outbox_pending", "Outbox events not yet relayed to Redis Streams, read at scrape.", 0, {NULL}},
};
#define METRICS__NFAMS (int)(sizeof metrics__fams / sizeof *metrics__fams)

typedef struct {
    char method[METRICS__METHOD];
    char label[METRICS__ROUTE_LABEL];
} metrics__route_name_t;

typedef struct {
    int family;
    char labels[METRICS__SERIES_LABELS];
} metrics__series_name_t;

typedef struct {
    pthread_mutex_t lock;
    int nworkers;
    uint32_t nroutes, nseries;
    uint64_t generation, reloads_ok, reloads_failed, worker_exits; /* written by the master only */
    metrics__route_name_t routes[METRICS_MAX_ROUTES];
    metrics__series_name_t series[METRICS_MAX_SERIES];
} metrics__header_t;

typedef struct {
    uint64_t status[METRICS__NSTATUS];
    uint64_t bucket[METRICS__NBUCKETS];
    uint64_t sum_ns;
} metrics__route_cells_t;

typedef struct {
    metrics__route_cells_t routes[METRICS_MAX_ROUTES];
    uint64_t counters[METRICS_NCOUNTERS];
    int64_t gauges[METRICS_NGAUGES];
    uint64_t series[METRICS_MAX_SERIES];
} metrics__page_t;

static metrics__header_t *hdr;
static metrics__page_t *pages, *page; /* every page; this process's own (NULL in the master) */
static uint8_t status_slot[500];       /* status - 100 -> index in metrics__route_cells_t.status */

/* Series already looked up by this process: hash of (family, label text) ->
 * registry index + 1. Registry entries never move, so entries never go
 * stale; a full cache only means more registry scans. */
static struct {
    uint32_t hash;
    int index1;
} series_cache[1024];

/* Adds n to a cell only this process writes (see the top). */
static inline void metrics__bump(uint64_t *cell, uint64_t n) {
    __atomic_store_n(cell, __atomic_load_n(cell, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

static inline uint64_t metrics__read(const uint64_t *cell) { return __atomic_load_n(cell, __ATOMIC_RELAXED); }

/* Takes the registry lock, recovering it from a process that died holding
 * it (its half-written entry was never published, so nothing is lost). */
static int metrics__lock(void) {
    int rc = pthread_mutex_lock(&hdr->lock);
    if (rc == EOWNERDEAD) rc = pthread_mutex_consistent(&hdr->lock);
    return rc;
}

/* Appends src[0..n) to out (cap bytes, NUL kept) escaped as a label value:
 * backslash, quote and newline as the format says; bytes outside printable
 * ASCII become '_' (the text format wants UTF-8, which script values need
 * not be). Returns the new length, or cap when it does not fit. */
static size_t metrics__escape(char *out, size_t len, size_t cap, const char *src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)src[i];
        const char *esc = ch == '\\' ? "\\\\" : ch == '"' ? "\\\"" : ch == '\n' ? "\\n" : NULL;
        size_t k = esc ? 2 : 1;
        if (len + k >= cap) return cap;
        if (esc) memcpy(out + len, esc, 2);
        else out[len] = ch >= 0x20 && ch < 0x7f ? (char)ch : '_';
        len += k;
    }
    out[len] = 0;
    return len;
}

/* Registers (method, label) in the route registry unless there; its slot,
 * or METRICS_ROUTE_OVERFLOW. */
static int metrics__route_slot(const char *method, const char *label) {
    uint32_t n = __atomic_load_n(&hdr->nroutes, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(hdr->routes[i].method, method) == 0 && strcmp(hdr->routes[i].label, label) == 0) return (int)i;
    if (metrics__lock() != 0) return METRICS_ROUTE_OVERFLOW;
    int slot = METRICS_ROUTE_OVERFLOW;
    uint32_t now = hdr->nroutes;
    for (uint32_t i = n; i < now && slot == METRICS_ROUTE_OVERFLOW; i++) /* added meanwhile */
        if (strcmp(hdr->routes[i].method, method) == 0 && strcmp(hdr->routes[i].label, label) == 0) slot = (int)i;
    if (slot == METRICS_ROUTE_OVERFLOW && now < METRICS_MAX_ROUTES) {
        snprintf(hdr->routes[now].method, sizeof hdr->routes[now].method, "%s", method);
        snprintf(hdr->routes[now].label, sizeof hdr->routes[now].label, "%s", label);
        __atomic_store_n(&hdr->nroutes, now + 1, __ATOMIC_RELEASE);
        slot = (int)now;
    }
    pthread_mutex_unlock(&hdr->lock);
    return slot;
}

int metrics_route(const char *method, const char *pattern) {
    if (!hdr) return METRICS_ROUTE_OVERFLOW;
    if (strlen(method) >= METRICS__METHOD) return METRICS_ROUTE_OVERFLOW;
    /* The label is the pattern without parameter types, as OpenAPI writes
     * paths: "{user_id:int}" -> "{user_id}". */
    char label[METRICS__ROUTE_LABEL];
    size_t len = 0;
    int in_param = 0, in_type = 0;
    label[0] = 0;
    for (const char *p = pattern; *p && len < sizeof label; p++) {
        if (*p == '{') in_param = 1;
        else if (*p == '}') in_param = in_type = 0;
        else if (*p == ':' && in_param) in_type = 1;
        if (!in_type) len = metrics__escape(label, len, sizeof label, p, 1);
    }
    if (len >= sizeof label) return METRICS_ROUTE_OVERFLOW;
    return metrics__route_slot(method, label);
}

static int metrics__status_index(int status) {
    unsigned k = (unsigned)(status - 100);
    return k < sizeof status_slot ? status_slot[k] : METRICS__NCODES;
}

void metrics_request(int route, int status, uint64_t ns) {
    metrics__page_t *p = page;
    if (!p || (unsigned)route >= METRICS_MAX_ROUTES) return;
    metrics__route_cells_t *c = &p->routes[route];
    int b = 0;
    while (b < METRICS__NBOUNDS && ns > metrics__bound_ns[b]) b++;
    metrics__bump(&c->status[metrics__status_index(status)], 1);
    metrics__bump(&c->bucket[b], 1);
    metrics__bump(&c->sum_ns, ns);
}

void metrics_refused(int status) {
    if (page) metrics__bump(&page->routes[METRICS_UNMATCHED_OTHER].status[metrics__status_index(status)], 1);
}

void metrics_count(metrics_counter_t c) {
    if (page && (unsigned)c < METRICS_NCOUNTERS) metrics__bump(&page->counters[c], 1);
}

void metrics_gauge(metrics_gauge_t g, int64_t value) {
    if (page && (unsigned)g < METRICS_NGAUGES) __atomic_store_n(&page->gauges[g], value, __ATOMIC_RELAXED);
}

/* ---- script families and series ---- */

int metrics_families(void) { return METRICS__NFAMS; }

const char *metrics_family_name(int family) {
    return family >= 0 && family < METRICS__NFAMS ? metrics__fams[family].name : NULL;
}

int metrics_family(const char *name) {
    for (int f = 0; f < METRICS__NFAMS; f++)
        if (strcmp(metrics__fams[f].name, name) == 0) return f;
    return -1;
}

int metrics_family_is_counter(int family) {
    return family >= 0 && family < METRICS__NFAMS && metrics__fams[family].counter;
}

const char *const *metrics_family_labels(int family) {
    static const char *const none[] = {NULL};
    return family >= 0 && family < METRICS__NFAMS ? metrics__fams[family].labels : none;
}

/* FNV-1a over the family and the label text. */
static uint32_t metrics__hash(int family, const char *text) {
    uint32_t h = 2166136261u ^ (uint32_t)family;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) h = (h ^ *p) * 16777619u;
    return h;
}

/* The registry index of (family, text), registering it when absent and
 * fewer than `limit` series exist; -1 when it cannot. */
static int metrics__series_slot(int family, const char *text, uint32_t limit) {
    uint32_t n = __atomic_load_n(&hdr->nseries, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < n; i++)
        if (hdr->series[i].family == family && strcmp(hdr->series[i].labels, text) == 0) return (int)i;
    if (metrics__lock() != 0) return -1;
    int slot = -1;
    uint32_t now = hdr->nseries;
    for (uint32_t i = n; i < now && slot < 0; i++)
        if (hdr->series[i].family == family && strcmp(hdr->series[i].labels, text) == 0) slot = (int)i;
    if (slot < 0 && now < limit) {
        hdr->series[now].family = family;
        snprintf(hdr->series[now].labels, sizeof hdr->series[now].labels, "%s", text);
        __atomic_store_n(&hdr->nseries, now + 1, __ATOMIC_RELEASE);
        slot = (int)now;
    }
    pthread_mutex_unlock(&hdr->lock);
    return slot;
}

/* Formats the label text `a="x",b="y"` of values (NULL values: "other")
 * into out; 0, or -1 when a value is too long. */
static int metrics__series_text(int family, const char *const *values, const size_t *lens, char *out, size_t cap) {
    size_t len = 0;
    out[0] = 0;
    const char *const *names = metrics__fams[family].labels;
    for (int i = 0; names[i]; i++) {
        const char *v = values ? values[i] : "other";
        size_t vl = values ? lens[i] : 5;
        if (vl > METRICS_MAX_LABEL) return -1;
        int k = snprintf(out + len, cap - len, "%s%s=\"", i ? "," : "", names[i]);
        if (k < 0 || (size_t)k >= cap - len) return -1;
        len += (size_t)k;
        len = metrics__escape(out, len, cap, v, vl);
        if (len + 2 >= cap) return -1;
        out[len++] = '"';
        out[len] = 0;
    }
    return 0;
}

int metrics_series(int family, const char *const *values, const size_t *lens) {
    if (!hdr || !metrics_family_is_counter(family)) return -1;
    char text[METRICS__SERIES_LABELS];
    if (metrics__series_text(family, values, lens, text, sizeof text) < 0) return -1;
    uint32_t h = metrics__hash(family, text), mask = sizeof series_cache / sizeof *series_cache - 1;
    uint32_t k = h & mask;
    for (uint32_t probes = 0; probes < 8 && series_cache[k].index1; probes++, k = (k + 1) & mask) {
        const metrics__series_name_t *s = &hdr->series[series_cache[k].index1 - 1];
        if (series_cache[k].hash == h && s->family == family && strcmp(s->labels, text) == 0)
            return series_cache[k].index1 - 1;
    }
    /* Room is kept for every family's overflow series. */
    int slot = metrics__series_slot(family, text, METRICS_MAX_SERIES - METRICS__NFAMS);
    if (slot < 0) {
        metrics__series_text(family, NULL, NULL, text, sizeof text);
        return metrics__series_slot(family, text, METRICS_MAX_SERIES);
    }
    if (!series_cache[k].index1) series_cache[k].hash = h, series_cache[k].index1 = slot + 1;
    return slot;
}

void metrics_series_add(int series, uint64_t n) {
    if (page && series >= 0 && series < METRICS_MAX_SERIES) metrics__bump(&page->series[series], n);
}

/* ---- the master's figures ---- */

void metrics_worker_exit(int worker) {
    if (!hdr || worker < 0 || worker >= hdr->nworkers) return;
    for (int g = 0; g < METRICS_NGAUGES; g++) __atomic_store_n(&pages[worker].gauges[g], 0, __ATOMIC_RELAXED);
    metrics__bump(&hdr->worker_exits, 1);
}

void metrics_reload(int ok, int generation) {
    if (!hdr) return;
    if (ok > 0) metrics__bump(&hdr->reloads_ok, 1);
    else if (ok == 0) metrics__bump(&hdr->reloads_failed, 1);
    __atomic_store_n(&hdr->generation, (uint64_t)generation, __ATOMIC_RELAXED);
}

/* ---- set-up ---- */

int metrics_create(int nworkers) {
    if (hdr) return -EALREADY;
    if (nworkers < 1 || nworkers > METRICS__MAX_WORKERS) return -EINVAL;
    size_t size = sizeof(metrics__header_t) + (size_t)nworkers * sizeof(metrics__page_t);
    void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return -errno;
    metrics__header_t *h = m;
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    int rc = pthread_mutex_init(&h->lock, &attr);
    pthread_mutexattr_destroy(&attr);
    if (rc != 0) {
        munmap(m, size);
        return -rc;
    }
    h->nworkers = nworkers;
    static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER"};
    for (int i = 0; i < 8; i++) {
        snprintf(h->routes[i].method, sizeof h->routes[i].method, "%s", methods[i]);
        snprintf(h->routes[i].label, sizeof h->routes[i].label, "unmatched");
    }
    snprintf(h->routes[METRICS_ROUTE_OVERFLOW].method, sizeof h->routes[0].method, "OTHER");
    snprintf(h->routes[METRICS_ROUTE_OVERFLOW].label, sizeof h->routes[0].label, "other");
    h->nroutes = METRICS_ROUTE_OVERFLOW + 1;
    /* Families without labels have one series: registered now, so they
     * show 0 before their first add. */
    for (int f = 0; f < METRICS__NFAMS; f++)
        if (metrics__fams[f].counter && !metrics__fams[f].labels[0]) h->series[h->nseries++].family = f;
    for (size_t k = 0; k < sizeof status_slot; k++) status_slot[k] = METRICS__NCODES;
    for (int i = 0; i < METRICS__NCODES; i++) status_slot[metrics__codes[i] - 100] = (uint8_t)i;
    pages = (metrics__page_t *)(h + 1);
    hdr = h;
    return 0;
}

void metrics_attach(int worker) {
    page = hdr && worker >= 0 && worker < hdr->nworkers ? &pages[worker] : NULL;
}

/* ---- rendering ---- */

typedef struct {
    char *p;
    size_t len, cap;
    int failed;
} metrics__buf_t;

static void metrics__put(metrics__buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void metrics__put(metrics__buf_t *b, const char *fmt, ...) {
    for (;;) {
        if (b->failed) return;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

static void metrics__family_head(metrics__buf_t *b, const char *name, const char *type, const char *help) {
    metrics__put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metrics__render_http(metrics__buf_t *b, uint32_t nroutes) {
    int nw = hdr->nworkers;
    metrics__family_head(b, "cc_http_requests_total", "counter",
                         "HTTP requests answered, by method, route pattern (\"unmatched\": no route) and status.");
    for (uint32_t r = 0; r < nroutes; r++) {
        const metrics__route_name_t *name = &hdr->routes[r];
        for (int s = 0; s < METRICS__NSTATUS; s++) {
            uint64_t v = 0;
            for (int w = 0; w < nw; w++) v += metrics__read(&pages[w].routes[r].status[s]);
            if (!v) continue;
            char code[8];
            if (s < METRICS__NCODES) snprintf(code, sizeof code, "%d", metrics__codes[s]);
            else snprintf(code, sizeof code, "other");
            metrics__put(b, "cc_http_requests_total{method=\"%s\",route=\"%s\",status=\"%s\"} %llu\n", name->method,
                         name->label, code, (unsigned long long)v);
        }
    }
    metrics__family_head(b, "cc_http_request_duration_seconds", "histogram",
                         "Time from a complete request to its answer being queued, by method and route pattern.");
    for (uint32_t r = 0; r < nroutes; r++) {
        const metrics__route_name_t *name = &hdr->routes[r];
        uint64_t bucket[METRICS__NBUCKETS] = {0}, sum_ns = 0, count = 0;
        for (int w = 0; w < nw; w++) {
            for (int k = 0; k < METRICS__NBUCKETS; k++) bucket[k] += metrics__read(&pages[w].routes[r].bucket[k]);
            sum_ns += metrics__read(&pages[w].routes[r].sum_ns);
        }
        for (int k = 0; k < METRICS__NBUCKETS; k++) count += bucket[k];
        if (!count) continue;
        uint64_t cumulative = 0;
        for (int k = 0; k < METRICS__NBUCKETS; k++) {
            cumulative += bucket[k];
            metrics__put(b, "cc_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\",le=\"%s\"} %llu\n",
                         name->method, name->label, k < METRICS__NBOUNDS ? metrics__bound_text[k] : "+Inf",
                         (unsigned long long)cumulative);
        }
        metrics__put(b, "cc_http_request_duration_seconds_sum{method=\"%s\",route=\"%s\"} %llu.%09llu\n", name->method,
                     name->label, (unsigned long long)(sum_ns / 1000000000u),
                     (unsigned long long)(sum_ns % 1000000000u));
        metrics__put(b, "cc_http_request_duration_seconds_count{method=\"%s\",route=\"%s\"} %llu\n", name->method,
                     name->label, (unsigned long long)count);
    }
}

static void metrics__render_workers(metrics__buf_t *b) {
    static const struct {
        metrics_gauge_t g;
        const char *name, *help;
    } gauges[] = {
        {METRICS_HTTP_CONNECTIONS, "cc_http_connections", "Open HTTP connections per worker."},
        {METRICS_WS_CONNECTIONS, "cc_ws_connections", "Open WebSocket sessions per worker."},
        {METRICS_DB_POOL_IN_USE, "cc_db_pool_in_use", "PostgreSQL connections handed out per worker."},
        {METRICS_DB_POOL_WAITING, "cc_db_pool_waiting", "Callers waiting for a PostgreSQL connection per worker."},
        {METRICS_LUA_MEMORY, "cc_lua_memory_bytes", "Memory held by the Lua state per worker."},
    };
    for (size_t i = 0; i < sizeof gauges / sizeof *gauges; i++) {
        metrics__family_head(b, gauges[i].name, "gauge", gauges[i].help);
        for (int w = 0; w < hdr->nworkers; w++)
            metrics__put(b, "%s{worker=\"%d\"} %lld\n", gauges[i].name, w,
                         (long long)__atomic_load_n(&pages[w].gauges[gauges[i].g], __ATOMIC_RELAXED));
    }
    uint64_t c[METRICS_NCOUNTERS] = {0};
    for (int w = 0; w < hdr->nworkers; w++)
        for (int k = 0; k < METRICS_NCOUNTERS; k++) c[k] += metrics__read(&pages[w].counters[k]);
    metrics__family_head(b, "cc_db_pool_timeouts_total", "counter",
                         "Waits for a PostgreSQL connection that ran out (DB_POOL_TIMEOUT_MS).");
    metrics__put(b, "cc_db_pool_timeouts_total %llu\n", (unsigned long long)c[METRICS_DB_POOL_TIMEOUTS]);
    metrics__family_head(b, "cc_redis_errors_total", "counter",
                         "Redis commands that failed, by kind (unavailable, timeout, lost, reply).");
    metrics__put(b,
                 "cc_redis_errors_total{kind=\"unavailable\"} %llu\ncc_redis_errors_total{kind=\"timeout\"} %llu\n"
                 "cc_redis_errors_total{kind=\"lost\"} %llu\ncc_redis_errors_total{kind=\"reply\"} %llu\n",
                 (unsigned long long)c[METRICS_REDIS_UNAVAILABLE], (unsigned long long)c[METRICS_REDIS_TIMEOUT],
                 (unsigned long long)c[METRICS_REDIS_LOST], (unsigned long long)c[METRICS_REDIS_REPLY]);
}

static void metrics__render_host(metrics__buf_t *b) {
    metrics__family_head(b, "cc_script_generation", "gauge", "Script generation the host serves.");
    metrics__put(b, "cc_script_generation %llu\n", (unsigned long long)metrics__read(&hdr->generation));
    metrics__family_head(b, "cc_script_reload_total", "counter", "Script reloads by result (ok, failed).");
    metrics__put(b, "cc_script_reload_total{result=\"ok\"} %llu\ncc_script_reload_total{result=\"failed\"} %llu\n",
                 (unsigned long long)metrics__read(&hdr->reloads_ok),
                 (unsigned long long)metrics__read(&hdr->reloads_failed));
    metrics__family_head(b, "cc_worker_exits_total", "counter",
                         "Worker processes that ended (crash, watchdog kill, drain); the master starts another.");
    metrics__put(b, "cc_worker_exits_total %llu\n", (unsigned long long)metrics__read(&hdr->worker_exits));
}

static void metrics__render_families(metrics__buf_t *b, const double *scraped) {
    uint32_t n = __atomic_load_n(&hdr->nseries, __ATOMIC_ACQUIRE);
    for (int f = 0; f < METRICS__NFAMS; f++) {
        const metrics__family_t *fam = &metrics__fams[f];
        if (!fam->counter) {
            if (!scraped || isnan(scraped[f])) continue;
            metrics__family_head(b, fam->name, "gauge", fam->help);
            metrics__put(b, "%s %.17g\n", fam->name, scraped[f]);
            continue;
        }
        metrics__family_head(b, fam->name, "counter", fam->help);
        for (uint32_t s = 0; s < n; s++) {
            if (hdr->series[s].family != f) continue;
            uint64_t v = 0;
            for (int w = 0; w < hdr->nworkers; w++) v += metrics__read(&pages[w].series[s]);
            const char *labels = hdr->series[s].labels;
            metrics__put(b, "%s%s%s%s %llu\n", fam->name, *labels ? "{" : "", labels, *labels ? "}" : "",
                         (unsigned long long)v);
        }
    }
}

char *metrics_render(const double *scraped, size_t *len) {
    if (!hdr) return NULL;
    metrics__buf_t b = {.cap = 16384};
    b.p = malloc(b.cap);
    if (!b.p) return NULL;
    b.p[0] = 0;
    metrics__render_http(&b, __atomic_load_n(&hdr->nroutes, __ATOMIC_ACQUIRE));
    metrics__render_workers(&b);
    metrics__render_host(&b);
    metrics__render_families(&b, scraped);
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}
