/* metrics.h - the host's Prometheus figures, in memory every process of one
 * `cchost serve` shares.
 *
 * A scrape of GET /metrics lands on one worker but must show the whole host.
 * So the master maps one shared segment before it forks (metrics_create) and
 * every worker inherits it: a header the master writes (script generation,
 * reloads, worker exits), two registries (route labels and script series)
 * and one page per worker. A worker writes only its own page, so counting a
 * request is a few single-writer atomic stores into memory nobody else
 * writes: no lock, no allocation, no formatting. The answering worker sums
 * every page at scrape time (metrics_render). Counters of a worker that dies
 * stay in its page and its respawn continues them, so sums never go down.
 *
 * Labels are bounded by construction: a request counts under a route slot,
 * registered once per generation for each declared (method, pattern)
 * (metrics_route); requests no route took count under "unmatched" per
 * method; a registry that is full maps what comes next to an "other"
 * overflow slot. Script series (host.metrics.add) belong to the fixed
 * families of metrics.c and take label values from a registry of the same
 * kind. Registering takes a process-shared robust mutex (a worker that dies
 * holding it cannot wedge the others); it happens at generation load and on
 * the first use of a label set, never per request.
 *
 * Without a segment (command-line tools, C unit tests of other files) every
 * call is a no-op and metrics_render returns NULL. */
#ifndef CCHOST_METRICS_H
#define CCHOST_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_MAX_ROUTES 512  /* route slots: (method, pattern) pairs ever registered */
#define METRICS_MAX_SERIES 256  /* script series: (family, label values) ever registered */
#define METRICS_MAX_LABEL 64    /* bytes of one script label value */

/* Route slots registered by metrics_create: requests that no route took,
 * per method (label route="unmatched"), and the overflow slot (method
 * "OTHER", route "other") for routes registered past METRICS_MAX_ROUTES. */
enum {
    METRICS_UNMATCHED_GET,
    METRICS_UNMATCHED_HEAD,
    METRICS_UNMATCHED_POST,
    METRICS_UNMATCHED_PUT,
    METRICS_UNMATCHED_PATCH,
    METRICS_UNMATCHED_DELETE,
    METRICS_UNMATCHED_OPTIONS,
    METRICS_UNMATCHED_OTHER,
    METRICS_ROUTE_OVERFLOW
};

/* Counters of one worker's C code, summed over workers at scrape. */
typedef enum {
    METRICS_REDIS_UNAVAILABLE, /* a command failed: Redis not connected */
    METRICS_REDIS_TIMEOUT,     /* a command missed its deadline */
    METRICS_REDIS_LOST,        /* the connection fell with the command pending */
    METRICS_REDIS_REPLY,       /* the server answered an error reply */
    METRICS_DB_POOL_TIMEOUTS,  /* a caller waited DB_POOL_TIMEOUT_MS in vain */
    METRICS_NCOUNTERS
} metrics_counter_t;

/* Gauges of one worker, shown per worker (label worker="<slot>"). */
typedef enum {
    METRICS_LUA_MEMORY,       /* bytes held by the worker's Lua state */
    METRICS_WS_CONNECTIONS,   /* open WebSocket sessions */
    METRICS_DB_POOL_IN_USE,   /* PostgreSQL connections handed out */
    METRICS_DB_POOL_WAITING,  /* callers queued for one */
    METRICS_HTTP_CONNECTIONS, /* open HTTP connections */
    METRICS_NGAUGES
} metrics_gauge_t;

/* Maps the shared segment for nworkers worker pages (1..256) and registers
 * the fixed route slots. The master calls it once, before forking, so every
 * worker inherits the mapping. 0 or a negative errno. */
int metrics_create(int nworkers);

/* Makes page `worker` this process's own: what the calls below write. A
 * worker calls it first thing after the fork. */
void metrics_attach(int worker);

/* The master, after reaping worker `worker`: zeroes its gauges (its sockets
 * and connections are gone) and counts the exit. Its counters stay. */
void metrics_worker_exit(int worker);

/* The master, when a reload ended: counts it by outcome and records the
 * generation now served (also once at start, with ok < 0: no count). */
void metrics_reload(int ok, int generation);

/* The slot of route (method, pattern) ("GET", "/api/users/{user_id:int}";
 * the label drops the parameter types: "/api/users/{user_id}"), registered
 * on first use; METRICS_ROUTE_OVERFLOW when the registry is full or the text
 * too long. Call at generation load, not per request. */
int metrics_route(const char *method, const char *pattern);

/* Counts one answered request of route slot `route` with `status`, taking
 * `ns` nanoseconds (the latency histogram). The request path: three
 * single-writer atomic adds. */
void metrics_request(int route, int status, uint64_t ns);

/* Counts a request refused before it was complete (400, 408, 413, 431):
 * route "unmatched", method "OTHER", not in the latency histogram. */
void metrics_refused(int status);

void metrics_count(metrics_counter_t c);
void metrics_gauge(metrics_gauge_t g, int64_t value);

/* Script families (the table in metrics.c): the index of family `name`, or
 * -1. A family is a counter fed by metrics_series_add, or a gauge the
 * scrape itself reads (metrics_render's `scraped`). */
int metrics_family(const char *name);
int metrics_family_is_counter(int family);
/* The family's label names, NULL-terminated (at most two). */
const char *const *metrics_family_labels(int family);
/* The family's name; the number of families (the length of
 * metrics_render's `scraped`). */
const char *metrics_family_name(int family);
int metrics_families(void);

/* The series of counter family `family` with these label values (one per
 * label name, in the family's order; at most METRICS_MAX_LABEL bytes each,
 * any bytes), registered on first use and cached per process. When the
 * registry is full, the family's overflow series (every value "other").
 * -1 without a segment or for a bad family. */
int metrics_series(int family, const char *const *values, const size_t *lens);

/* Adds n to a series of this process's page. */
void metrics_series_add(int series, uint64_t n);

/* The whole host's figures as Prometheus text (exposition format 0.0.4),
 * summed over every worker page. scraped[f] is the value of scrape gauge
 * family f (NaN: left out; NULL: all left out). Returns a malloc'ed text
 * (*len bytes, NUL-terminated) the caller frees, or NULL without a segment
 * or memory. */
char *metrics_render(const double *scraped, size_t *len);

#endif
