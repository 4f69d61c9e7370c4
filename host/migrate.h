/* migrate.h - the schema migrations runner (`cchost migrate`).
 *
 * A migrations folder holds `NNNN_name.sql` files (four digits, then
 * [a-z0-9_]); a file's version is its name without ".sql". They form one
 * linear history, applied in number order, each file in its own transaction
 * together with its row in `schema_migrations` (version, SHA-256 of the exact
 * file bytes, applied_at). A PostgreSQL advisory lock serialises concurrent
 * runners, so hosts starting together apply each file once. A file changed
 * after it was applied, or a version in the database that the folder lacks,
 * is refused with a message naming it. Files not ending in ".sql" (README)
 * are ignored.
 *
 * Everything here is synchronous libpq: call it from the master before it
 * forks, or from the subcommand, never from a worker's loop. */
#ifndef CCHOST_MIGRATE_H
#define CCHOST_MIGRATE_H

#include <stddef.h>
#include <stdio.h>

/* Applies the pending migrations of dir to the database at conninfo (a URL
 * or key=value string), holding the migrations lock for the whole run.
 * Returns 0 when the database is up to date afterwards, or -1 with a message
 * in err (a bad folder, a refusal, or the first failing file with
 * PostgreSQL's message and line; files before it stay applied). out (may be
 * NULL) receives one progress line per applied file and the notices that
 * migrations raise. */
int migrate_apply(const char *conninfo, const char *dir, FILE *out, char *err, size_t errlen);

/* Prints every file as applied (with its time) or pending, then the problems
 * (changed checksum, unknown version, pending file older than an applied
 * one) to out. Returns 0 when up to date, 1 when migrations are pending, -1
 * on error or inconsistency (err says the first problem). Takes no lock. */
int migrate_status(const char *conninfo, const char *dir, FILE *out, char *err, size_t errlen);

/* Verifies without changing anything: 0 when every file is applied with its
 * checksum and the database has no unknown version; -1 with a message in err
 * otherwise. Waits for a migration run in progress (shared lock) so it never
 * judges a half-migrated database. For a start that does not migrate. */
int migrate_check(const char *conninfo, const char *dir, char *err, size_t errlen);

/* `cchost migrate [--status | --check] [--dir DIR]`; argv holds the
 * arguments after "migrate" (argc of them). Settings must be loaded: the
 * database is config_str("DATABASE_URL"), DIR defaults to "migrations".
 * Returns the exit code: 0 ok, 1 failure or (with --status) pending
 * migrations, 2 usage error. */
int migrate_main(int argc, char **argv);

#endif
