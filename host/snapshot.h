/* snapshot.h - the frozen set of script files one generation is built from.
 *
 * The master reads scripts/ (and the fixture folder, and config/) once per
 * reload into a snapshot; every worker builds its generation from those
 * exact bytes, so all workers run the same code even if files change
 * mid-reload, and a respawned worker rebuilds the current generation from the
 * current snapshot rather than from whatever is on disk now.
 * A snapshot lives in an anonymous, sealed memfd that only the master's
 * descriptor keeps alive: no other program can delete or change it (a /tmp
 * cleaner once took a file-based snapshot away and with it every respawn).
 * Workers inherit the current one when forked and receive a new one over
 * their control socket (SCM_RIGHTS) when a reload prepares it.
 * Format: repeated records "<name>\n<byte length>\n<bytes>\n". Names are
 * relative paths with '/' ("routes/health.lua"); fixture files are prefixed
 * "fixtures/", config files "config/". */
#ifndef CCHOST_SNAPSHOT_H
#define CCHOST_SNAPSHOT_H

#include <stddef.h>

/* Builds the snapshot of every *.lua below the given folders (fixtures and
 * config may be NULL or "") in a new sealed memfd (no write, grow or shrink
 * once built). Returns the descriptor (close-on-exec; the caller owns it),
 * or -1 with err. */
int snapshot_create(const char *scripts_dir, const char *fixtures_dir, const char *config_dir, char *err,
                    size_t errlen);

/* Reads the whole snapshot behind fd into a malloc'd buffer with pread, so
 * the descriptor's shared file offset is never moved. Safe on the thread
 * pool. 0, or -1 with err. */
int snapshot_load(int fd, char **out, size_t *len, char *err, size_t errlen);

/* Iterates records: call with *pos = 0; returns 1 and fills name/data, or 0
 * at the end, or -1 on a malformed snapshot. */
int snapshot_next(const char *buf, size_t len, size_t *pos, const char **name, size_t *name_len,
                  const char **data, size_t *data_len);

#endif
