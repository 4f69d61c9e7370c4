/* test_metrics.c - metrics.c: nothing without a segment; route labels and
 * their registry; per-status counts and cumulative latency buckets summed
 * over worker pages, including a page written by another process; script
 * series (cache, escaping, overflow); gauges per worker; the master's
 * figures; the route registry's overflow slot. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../metrics.h"
#include "check.h"

/* The current scrape, rendered without scrape gauges. */
static char *render(void) {
    size_t len = 0;
    char *text = metrics_render(NULL, &len);
    if (text) CHECK(strlen(text) == len);
    return text;
}

/* 1 when `line` is a whole line of text. */
static int has_line(const char *text, const char *line) {
    size_t n = strlen(line);
    for (const char *p = text; p && (p = strstr(p, line)); p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n') return 1;
    return 0;
}

static void test_without_segment(void) {
    size_t len;
    CHECK(metrics_render(NULL, &len) == NULL);
    CHECK(metrics_route("GET", "/x") == METRICS_ROUTE_OVERFLOW);
    CHECK(metrics_series(metrics_family("cc_game_plays_total"), NULL, NULL) == -1);
    metrics_attach(0);
    metrics_request(METRICS_ROUTE_OVERFLOW + 1, 200, 1000); /* no page: nothing happens */
    metrics_count(METRICS_REDIS_TIMEOUT);
    metrics_gauge(METRICS_WS_CONNECTIONS, 1);
}

static void test_routes_and_requests(void) {
    int users = metrics_route("GET", "/api/users/{user_id:int}");
    int head = metrics_route("HEAD", "/api/users/{user_id:int}");
    CHECK(users > METRICS_ROUTE_OVERFLOW && head > users);
    CHECK(metrics_route("GET", "/api/users/{user_id:int}") == users);
    CHECK(metrics_route("GET", "/api/users/{user_id}") == users); /* the same label */
    int nested = metrics_route("POST", "/a/{x:int}/b/{y}/c");

    metrics_attach(0);
    for (int i = 0; i < 3; i++) metrics_request(users, 200, 50000); /* 50 us */
    metrics_request(users, 404, 2000000);                            /* 2 ms */
    metrics_request(users, 418, 100000);                             /* a status without its own series */
    metrics_request(head, 200, 100000);                              /* exactly on a bound: le="0.0001" */
    metrics_refused(408);
    metrics_attach(1);
    metrics_request(users, 200, 20000000000ull); /* 20 s: only +Inf */
    metrics_request(users, 200, 20000000000ull);
    metrics_request(METRICS_UNMATCHED_DELETE, 404, 1000);
    metrics_request(nested, 201, 1000);
    metrics_request(-1, 200, 1);                   /* out of range: ignored */
    metrics_request(METRICS_MAX_ROUTES, 200, 1);

    char *t = render();
    CHECK(t != NULL);
    if (!t) return;
    CHECK(has_line(t, "# TYPE cc_http_requests_total counter"));
    CHECK(has_line(t, "cc_http_requests_total{method=\"GET\",route=\"/api/users/{user_id}\",status=\"200\"} 5"));
    CHECK(has_line(t, "cc_http_requests_total{method=\"GET\",route=\"/api/users/{user_id}\",status=\"404\"} 1"));
    CHECK(has_line(t, "cc_http_requests_total{method=\"GET\",route=\"/api/users/{user_id}\",status=\"other\"} 1"));
    CHECK(has_line(t, "cc_http_requests_total{method=\"HEAD\",route=\"/api/users/{user_id}\",status=\"200\"} 1"));
    CHECK(has_line(t, "cc_http_requests_total{method=\"OTHER\",route=\"unmatched\",status=\"408\"} 1"));
    CHECK(has_line(t, "cc_http_requests_total{method=\"DELETE\",route=\"unmatched\",status=\"404\"} 1"));
    CHECK(has_line(t, "cc_http_requests_total{method=\"POST\",route=\"/a/{x}/b/{y}/c\",status=\"201\"} 1"));
    CHECK(strstr(t, "status=\"500\"") == NULL); /* zero cells are left out */

    /* Buckets: 3 x 50 us, 100 us, 2 ms, 2 x 20 s; cumulative. */
    const char *b = "cc_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/users/{user_id}\",le=";
    char line[256];
    static const struct {
        const char *le;
        int n;
    } want[] = {{"0.0001", 4}, {"0.00025", 4}, {"0.001", 4}, {"0.0025", 5}, {"10", 5}, {"+Inf", 7}};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        snprintf(line, sizeof line, "%s\"%s\"} %d", b, want[i].le, want[i].n);
        CHECK(has_line(t, line));
    }
    CHECK(has_line(t, "cc_http_request_duration_seconds_count{method=\"GET\",route=\"/api/users/{user_id}\"} 7"));
    CHECK(has_line(t, "cc_http_request_duration_seconds_sum{method=\"GET\",route=\"/api/users/{user_id}\"} "
                      "40.002250000"));
    CHECK(has_line(t, "cc_http_request_duration_seconds_bucket{method=\"HEAD\",route=\"/api/users/{user_id}\","
                      "le=\"0.0001\"} 1"));
    /* Refused requests are not in the histogram. */
    CHECK(strstr(t, "cc_http_request_duration_seconds_count{method=\"OTHER\"") == NULL);
    free(t);
}

/* A forked process writes its own page and registers a route: the parent
 * sees both, as the worker answering a scrape sees the others. */
static void test_other_process(void) {
    pid_t pid = fork();
    if (pid == 0) {
        metrics_attach(1);
        int r = metrics_route("PUT", "/from/child");
        for (int i = 0; i < 7; i++) metrics_request(r, 204, 1000);
        metrics_series_add(metrics_series(metrics_family("cc_crash_db_errors_total"), NULL, NULL), 2);
        _exit(0);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status));
    char *t = render();
    CHECK(t && has_line(t, "cc_http_requests_total{method=\"PUT\",route=\"/from/child\",status=\"204\"} 7"));
    CHECK(t && has_line(t, "cc_crash_db_errors_total 2"));
    free(t);
    CHECK(metrics_route("PUT", "/from/child") > METRICS_ROUTE_OVERFLOW); /* found, not added twice */
}

static void test_series(void) {
    int plays = metrics_family("cc_game_plays_total");
    CHECK(plays >= 0 && metrics_family_is_counter(plays));
    CHECK(metrics_family("cc_nope_total") == -1);
    CHECK(!metrics_family_is_counter(metrics_family("cc_outbox_pending")));
    CHECK_STR(metrics_family_labels(plays)[0], "game");
    CHECK(metrics_family_labels(plays)[1] == NULL);
    CHECK(metrics_series(metrics_family("cc_outbox_pending"), NULL, NULL) == -1); /* a gauge: not addable */

    const char *slot[] = {"slot"}, *odd[] = {"a\"b\\c\nd\xff"};
    size_t slot_len[] = {4}, odd_len[] = {8};
    int s = metrics_series(plays, slot, slot_len);
    CHECK(s >= 0 && metrics_series(plays, slot, slot_len) == s);
    metrics_attach(0);
    metrics_series_add(s, 2);
    metrics_attach(1);
    metrics_series_add(s, 3);
    metrics_series_add(metrics_series(plays, odd, odd_len), 1);
    size_t long_len[] = {METRICS_MAX_LABEL + 1};
    CHECK(metrics_series(plays, slot, long_len) == -1);

    double scraped[32];
    for (int f = 0; f < metrics_families(); f++) scraped[f] = NAN;
    scraped[metrics_family("cc_outbox_pending")] = 7;
    size_t len;
    char *t = metrics_render(scraped, &len);
    CHECK(t && has_line(t, "cc_game_plays_total{game=\"slot\"} 5"));
    CHECK(t && has_line(t, "cc_game_plays_total{game=\"a\\\"b\\\\c\\nd_\"} 1"));
    CHECK(t && has_line(t, "# TYPE cc_game_plays_total counter"));
    CHECK(t && has_line(t, "cc_outbox_pending 7"));
    CHECK(t && !strstr(t, "cc_crash_active_rounds")); /* not read: left out */
    free(t);
}

static void test_gauges_and_master(void) {
    metrics_attach(0);
    metrics_gauge(METRICS_WS_CONNECTIONS, 3);
    metrics_count(METRICS_REDIS_TIMEOUT);
    metrics_attach(1);
    metrics_gauge(METRICS_WS_CONNECTIONS, 4);
    metrics_gauge(METRICS_LUA_MEMORY, 123456789);
    metrics_count(METRICS_REDIS_TIMEOUT);
    metrics_count(METRICS_DB_POOL_TIMEOUTS);
    metrics_reload(-1, 1);
    metrics_reload(1, 2);
    metrics_reload(0, 2);
    metrics_reload(0, 2);
    char *t = render();
    CHECK(t && has_line(t, "cc_ws_connections{worker=\"0\"} 3"));
    CHECK(t && has_line(t, "cc_ws_connections{worker=\"1\"} 4"));
    CHECK(t && has_line(t, "cc_lua_memory_bytes{worker=\"1\"} 123456789"));
    CHECK(t && has_line(t, "cc_redis_errors_total{kind=\"timeout\"} 2"));
    CHECK(t && has_line(t, "cc_redis_errors_total{kind=\"lost\"} 0"));
    CHECK(t && has_line(t, "cc_db_pool_timeouts_total 1"));
    CHECK(t && has_line(t, "cc_script_generation 2"));
    CHECK(t && has_line(t, "cc_script_reload_total{result=\"ok\"} 1"));
    CHECK(t && has_line(t, "cc_script_reload_total{result=\"failed\"} 2"));
    free(t);
    metrics_worker_exit(1);
    t = render();
    CHECK(t && has_line(t, "cc_ws_connections{worker=\"1\"} 0"));
    CHECK(t && has_line(t, "cc_ws_connections{worker=\"0\"} 3"));
    CHECK(t && has_line(t, "cc_worker_exits_total 1"));
    CHECK(t && has_line(t, "cc_redis_errors_total{kind=\"timeout\"} 2")); /* counters stay */
    free(t);
}

/* Last: these fill the registries for good. */
static void test_overflow(void) {
    int plays = metrics_family("cc_game_plays_total"), last = -1;
    char value[16];
    const char *v[] = {value};
    for (int i = 0; i < METRICS_MAX_SERIES + 10; i++) {
        size_t len = (size_t)snprintf(value, sizeof value, "g%d", i);
        last = metrics_series(plays, v, &len);
    }
    const char *other[] = {"other"};
    size_t other_len[] = {5};
    CHECK(last >= 0 && metrics_series(plays, other, other_len) == last);
    /* Every family keeps room for its overflow series. */
    int bets = metrics_family("cc_game_bet_tokens_total");
    size_t len = 2;
    value[0] = 'x', value[1] = 'y';
    int b = metrics_series(bets, v, &len);
    CHECK(b >= 0 && b != last);

    int r = 0;
    for (int i = 0; i < METRICS_MAX_ROUTES + 10; i++) {
        char path[32];
        snprintf(path, sizeof path, "/r/%d", i);
        r = metrics_route("GET", path);
    }
    CHECK(r == METRICS_ROUTE_OVERFLOW);
    CHECK(metrics_route("TOOLONGMETHOD", "/x") == METRICS_ROUTE_OVERFLOW);
    metrics_request(r, 200, 1000);
    char *t = render();
    CHECK(t && has_line(t, "cc_http_requests_total{method=\"OTHER\",route=\"other\",status=\"200\"} 1"));
    free(t);
}

int main(void) {
    test_without_segment();
    CHECK(metrics_create(0) == -EINVAL);
    CHECK(metrics_create(2) == 0);
    CHECK(metrics_create(2) == -EALREADY);
    test_routes_and_requests();
    test_other_process();
    test_series();
    test_gauges_and_master();
    test_overflow();
    return check_done("test_metrics");
}
