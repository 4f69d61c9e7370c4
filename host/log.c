/* log.c - structured JSON log lines on stdout.
 *
 * Lines carry time (ISO-8601 UTC with milliseconds), level, process role and
 * worker id; callers add the rest. Writing is synchronous: log volume is one
 * line per request, and a blocking write keeps lines whole and ordered. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int min_level = LOG_INFO;
static const char *role = "master";
static int worker = -1;
static const char *names[] = {"debug", "info", "warn", "error"};

void log_init(const char *level, const char *r, int w) {
    for (int i = 0; i < 4; i++)
        if (level && strcmp(level, names[i]) == 0) min_level = i;
    role = r;
    worker = w;
}

int log_enabled(int level) { return level >= min_level; }

size_t log_escape(char *out, size_t cap, const char *s, size_t n) {
    size_t o = 0;
    for (size_t i = 0; i < n && o + 7 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') out[o++] = '\\', out[o++] = (char)c;
        else if (c == '\n') out[o++] = '\\', out[o++] = 'n';
        else if (c == '\t') out[o++] = '\\', out[o++] = 't';
        else if (c < 0x20 || c == 0x7f) o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
        else out[o++] = (char)c;
    }
    if (cap) out[o < cap ? o : cap - 1] = 0;
    return o;
}

void log_raw(int level, const char *fields, size_t len) {
    if (level < min_level) return;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char line[4096];
    int n = snprintf(line, sizeof line,
                     "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\",\"level\":\"%s\",\"role\":\"%s\",\"pid\":%d,",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)(tv.tv_usec / 1000), names[level], role, (int)getpid());
    if (worker >= 0) n += snprintf(line + n, sizeof line - (size_t)n, "\"worker\":%d,", worker);
    size_t room = sizeof line - (size_t)n - 2;
    if (len > room) len = room;
    memcpy(line + n, fields, len);
    n += (int)len;
    line[n++] = '}';
    line[n++] = '\n';
    ssize_t w = write(STDOUT_FILENO, line, (size_t)n);
    (void)w;
}

void log_msg(int level, const char *fmt, ...) {
    if (level < min_level) return;
    char text[2048], esc[3000], fields[3100];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    log_escape(esc, sizeof esc, text, (size_t)n < sizeof text ? (size_t)n : sizeof text - 1);
    int f = snprintf(fields, sizeof fields, "\"msg\":\"%s\"", esc);
    log_raw(level, fields, (size_t)f < sizeof fields ? (size_t)f : sizeof fields - 1);
}
