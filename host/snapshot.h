/* snapshot.h - the frozen set of script files one generation is built from.
 *
 * The master reads scripts/ (and the fixture folder, and config/) once per
 * reload into a snapshot file; every worker builds its generation from those
 * exact bytes, so all workers run the same code even if files change
 * mid-reload, and a respawned worker rebuilds the current generation from the
 * current snapshot rather than from whatever is on disk now.
 * Format: repeated records "<name>\n<byte length>\n<bytes>\n". Names are
 * relative paths with '/' ("routes/health.lua"); fixture files are prefixed
 * "fixtures/", config files "config/". */
#ifndef CCHOST_SNAPSHOT_H
#define CCHOST_SNAPSHOT_H

#include <stddef.h>

/* Writes the snapshot of every *.lua below the given folders (fixtures and
 * config may be NULL or "") to path atomically. 0, or -1 with err. */
int snapshot_write(const char *scripts_dir, const char *fixtures_dir, const char *config_dir, const char *path,
                   char *err, size_t errlen);

/* Reads a whole file into a malloc'd buffer. 0, or -1 with err. */
int snapshot_read(const char *path, char **out, size_t *len, char *err, size_t errlen);

/* Iterates records: call with *pos = 0; returns 1 and fills name/data, or 0
 * at the end, or -1 on a malformed snapshot. */
int snapshot_next(const char *buf, size_t len, size_t *pos, const char **name, size_t *name_len,
                  const char **data, size_t *data_len);

#endif
