/* log.h - structured JSON log lines on stdout.
 *
 * Every line is one JSON object written with a single write(2), so lines of
 * several workers sharing stdout never interleave (a pipe keeps writes up to
 * PIPE_BUF atomic; longer lines are truncated to fit). */
#ifndef CCHOST_LOG_H
#define CCHOST_LOG_H

#include <stddef.h>

enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_init(const char *level, const char *role, int worker_id);
int log_enabled(int level);
/* fields: JSON object members without braces (`"a":1,"b":"x"`), trusted. */
void log_raw(int level, const char *fields, size_t len);
/* A message line with printf formatting; the text is JSON-escaped. */
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debugf(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_infof(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warnf(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_errorf(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* Escapes s (n bytes) as JSON string content into out; returns bytes written
 * (always NUL-terminated, truncated to fit cap). */
size_t log_escape(char *out, size_t cap, const char *s, size_t n);

#endif
