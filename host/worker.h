/* worker.h - one worker process: loop, listener, VM, control channel.
 *
 * Forked by the master. Talks to it over a socketpair with one-line text
 * messages (see master.c for the protocol) and proves it is alive by writing
 * its loop's tick time into the shared watchdog slot. */
#ifndef CCHOST_WORKER_H
#define CCHOST_WORKER_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int id;                 /* slot 0..N-1 */
    int ctl_fd;             /* socketpair end */
    int listen_fd;          /* the master's listening socket, shared by all workers */
    int snapshot_fd;        /* current generation's snapshot (snapshot.h) */
    int generation;
    volatile uint64_t *tick; /* shared watchdog slot, epoch ms */
} worker_args_t;

/* Runs the worker until it is told to stop; never returns (exits). */
void worker_run(const worker_args_t *args) __attribute__((noreturn));

/* Formats one control-channel message: printf into line (cap bytes),
 * newlines inside turned into spaces, one '\n' at the end. Returns its
 * length or -1. Shared by both ends of the channel. */
int worker_ctl_line(char *line, size_t cap, const char *fmt, va_list ap);

/* Epoch milliseconds. */
uint64_t worker_now_ms(void);

#endif
