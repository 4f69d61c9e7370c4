/* master.h - the supervising process of `cchost serve`.
 *
 * Binds the port, forks the workers, respawns the ones that die, kills the
 * ones whose loop stopped ticking (watchdog), coordinates two-phase script
 * reloads (SIGHUP, the development file watcher, or a worker's request), and
 * turns SIGTERM/SIGINT into a graceful drain. */
#ifndef CCHOST_MASTER_H
#define CCHOST_MASTER_H

/* Runs until stopped; returns the process exit status. */
int master_run(void);

#endif
