/* migrate.c - the schema migrations runner (DESIGN.md "Schema migrations").
 *
 * The schema lives in `migrations/NNNN_name.sql` and the database records
 * what it has applied in `schema_migrations` (CONTRACT.md §18), so any host
 * can bring a database to the code's schema, and a host whose code does not
 * match the database's history refuses to go on instead of running against a
 * schema it does not know. The folder is read and checksummed in full before
 * the database is touched; a run then holds a session-level advisory lock
 * (key: the first 8 bytes of SHA-256("casino-club-migrations")) on its one
 * connection, so two hosts starting together apply each file exactly once:
 * the second waits, then finds nothing pending. Each file's text goes to the
 * server as one simple query between BEGIN and COMMIT, with its
 * schema_migrations row in the same transaction, so multi-statement files
 * work and a failing file leaves no trace. Synchronous libpq on purpose:
 * this runs before workers exist or in the `migrate` subcommand. */
#include "migrate.h"

#include <dirent.h>
#include <errno.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "config.h"
#include "crypto.h"

#define MIGRATE__LOCK_NAME "casino-club-migrations"

typedef enum { MIGRATE__PENDING, MIGRATE__APPLIED, MIGRATE__CHANGED } migrate__state_t;

typedef struct {
    char *version; /* file name without ".sql" */
    int number;
    char *sql; /* the exact file bytes, NUL-terminated */
    char sum[65];
    migrate__state_t state;
    int row; /* its schema_migrations row when applied or changed, else -1 */
} migrate__file_t;

typedef struct {
    migrate__file_t *v;
    size_t n;
} migrate__set_t;

static void migrate__err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void migrate__err(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* 1 when name matches ^[0-9]{4}_[a-z0-9_]+\.sql$. */
static int migrate__valid_name(const char *name) {
    size_t len = strlen(name);
    if (len < 10 || strcmp(name + len - 4, ".sql") != 0 || name[4] != '_')
        return 0;
    for (size_t i = 0; i < 4; i++)
        if (name[i] < '0' || name[i] > '9')
            return 0;
    for (size_t i = 5; i < len - 4; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') || name[i] == '_'))
            return 0;
    return 1;
}

/* Reads the whole file at path into a NUL-terminated buffer. 0 or -errno. */
static int migrate__read(const char *path, char **data, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1)
            break;
        char *more = realloc(buf, cap *= 2);
        if (!more)
            free(buf);
        buf = more;
    }
    int rc = !buf ? -ENOMEM : ferror(f) ? -EIO : 0;
    fclose(f);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

static void migrate__free(migrate__set_t *set) {
    for (size_t i = 0; i < set->n; i++) {
        free(set->v[i].version);
        free(set->v[i].sql);
    }
    free(set->v);
    set->v = NULL;
    set->n = 0;
}

static int migrate__by_number(const void *a, const void *b) {
    const migrate__file_t *x = a, *y = b;
    return x->number != y->number ? (x->number < y->number ? -1 : 1) : strcmp(x->version, y->version);
}

/* Reads every migration of dir, sorted by number, with its checksum. 0, or
 * -1 with err (unreadable folder or file, bad name, duplicate number, NUL
 * byte); set is empty then. */
static int migrate__scan(const char *dir, migrate__set_t *set, char *err, size_t errlen) {
    set->v = NULL;
    set->n = 0;
    DIR *d = opendir(dir);
    if (!d) {
        migrate__err(err, errlen, "cannot open the migrations folder '%s': %s", dir, strerror(errno));
        return -1;
    }
    struct dirent *e;
    char path[4096];
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || len < 4 || strcmp(e->d_name + len - 4, ".sql") != 0)
            continue; /* README and the like */
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (!migrate__valid_name(e->d_name)) {
            migrate__err(err, errlen, "bad migration file name '%s' in %s: expected NNNN_name.sql "
                         "(four digits, '_', then lowercase letters, digits and '_')", e->d_name, dir);
            rc = -1;
        } else if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
            migrate__err(err, errlen, "migration %s is not a readable regular file", path);
            rc = -1;
        } else {
            migrate__file_t *v = realloc(set->v, (set->n + 1) * sizeof *v);
            if (!v) {
                migrate__err(err, errlen, "out of memory");
                rc = -1;
                break;
            }
            set->v = v;
            migrate__file_t *m = &set->v[set->n];
            size_t n = 0;
            int r = migrate__read(path, &m->sql, &n);
            if (r < 0) {
                migrate__err(err, errlen, "cannot read migration %s: %s", path, strerror(-r));
                rc = -1;
                break;
            }
            set->n++;
            m->version = strndup(e->d_name, len - 4);
            m->number = atoi(e->d_name);
            m->state = MIGRATE__PENDING;
            m->row = -1;
            unsigned char digest[32];
            crypto_sha256(m->sql, n, digest);
            crypto_hex(digest, sizeof digest, m->sum);
            if (!m->version) {
                migrate__err(err, errlen, "out of memory");
                rc = -1;
            } else if (memchr(m->sql, '\0', n)) {
                migrate__err(err, errlen, "migration %s contains a NUL byte", path);
                rc = -1;
            }
        }
    }
    closedir(d);
    if (rc == 0 && set->n > 1) {
        qsort(set->v, set->n, sizeof *set->v, migrate__by_number);
        for (size_t i = 1; i < set->n; i++)
            if (set->v[i].number == set->v[i - 1].number) {
                migrate__err(err, errlen, "migrations %s and %s share the number %04d: numbers must be unique",
                             set->v[i - 1].version, set->v[i].version, set->v[i].number);
                rc = -1;
                break;
            }
    }
    if (rc < 0)
        migrate__free(set);
    return rc;
}

/* Forwards the server's notices and warnings (RAISE NOTICE in a migration)
 * to the progress stream, if any. */
static void migrate__notice(void *arg, const char *message) {
    if (arg)
        fputs(message, arg);
}

/* The server's message for res (or the connection's), without its trailing
 * newline: *len bytes. */
static const char *migrate__message(PGconn *c, PGresult *res, int *len) {
    const char *m = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!m)
        m = PQerrorMessage(c);
    size_t n = strlen(m);
    while (n && (m[n - 1] == '\n' || m[n - 1] == ' '))
        n--;
    *len = (int)n;
    return m;
}

/* err = "<prefix>: <the server's message for res>". */
static void migrate__pgerr(PGconn *c, PGresult *res, const char *prefix, char *err, size_t errlen) {
    int n;
    const char *m = migrate__message(c, res, &n);
    migrate__err(err, errlen, "%s: %.*s", prefix, n, m);
}

/* Connects; conninfo's own settings win over the defaults given here. */
static PGconn *migrate__connect(const char *conninfo, FILE *notices, char *err, size_t errlen) {
    if (!conninfo || !*conninfo) {
        migrate__err(err, errlen, "DATABASE_URL is empty: no database to migrate");
        return NULL;
    }
    const char *keys[] = {"application_name", "client_encoding", "connect_timeout", "dbname", NULL};
    const char *vals[] = {"cchost migrate", "UTF8", "10", conninfo, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c) {
        migrate__err(err, errlen, "cannot connect to the database: out of memory");
        return NULL;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        migrate__pgerr(c, NULL, "cannot connect to the database", err, errlen);
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, migrate__notice, notices);
    return c;
}

/* Runs sql (with nparams text parameters); 0 when it succeeded, else -1 with
 * err "<what>: <server message>". The result is freed. */
static int migrate__exec(PGconn *c, const char *sql, int nparams, const char *const *params,
                         const char *what, char *err, size_t errlen) {
    PGresult *res = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -1;
    if (rc < 0)
        migrate__pgerr(c, res, what, err, errlen);
    PQclear(res);
    return rc;
}

/* Takes (or releases, with unlock) the migrations lock, exclusive or shared.
 * When another run holds it, says so on out and waits. 0 or -1 with err. */
static int migrate__lock(PGconn *c, int shared, int unlock, FILE *out, char *err, size_t errlen) {
    unsigned char digest[32];
    crypto_sha256(MIGRATE__LOCK_NAME, strlen(MIGRATE__LOCK_NAME), digest);
    uint64_t key = 0;
    for (int i = 0; i < 8; i++)
        key = key << 8 | digest[i];
    char keytext[24], sql[96];
    snprintf(keytext, sizeof keytext, "%lld", (long long)(int64_t)key);
    const char *params[] = {keytext};
    const char *suffix = shared ? "_shared" : "";
    if (unlock) {
        snprintf(sql, sizeof sql, "SELECT pg_advisory_unlock%s($1::bigint)", suffix);
        return migrate__exec(c, sql, 1, params, "releasing the migrations lock", err, errlen);
    }
    snprintf(sql, sizeof sql, "SELECT pg_try_advisory_lock%s($1::bigint)", suffix);
    PGresult *res = PQexecParams(c, sql, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        migrate__pgerr(c, res, "taking the migrations lock", err, errlen);
        PQclear(res);
        return -1;
    }
    int got = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (got)
        return 0;
    if (out)
        fprintf(out, "another host is migrating this database; waiting for it to finish\n");
    snprintf(sql, sizeof sql, "SELECT pg_advisory_lock%s($1::bigint)", suffix);
    return migrate__exec(c, sql, 1, params, "waiting for the migrations lock", err, errlen);
}

/* The applied rows (version, checksum, applied_at as text), ordered by
 * version. A missing table is created when create is set (the caller holds
 * the exclusive lock), else read as zero rows. NULL with err on error. */
static PGresult *migrate__applied(PGconn *c, int create, char *err, size_t errlen) {
    PGresult *res = PQexec(c, "SELECT to_regclass('schema_migrations') IS NOT NULL");
    int ok = PQresultStatus(res) == PGRES_TUPLES_OK;
    int exists = ok && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    if (!ok)
        migrate__pgerr(c, res, "reading schema_migrations", err, errlen);
    PQclear(res);
    if (ok && !exists && create)
        ok = migrate__exec(c, "CREATE TABLE schema_migrations ("
                              " version text PRIMARY KEY,"
                              " checksum text NOT NULL,"
                              " applied_at timestamptz NOT NULL DEFAULT now())",
                           0, NULL, "creating schema_migrations", err, errlen) == 0;
    if (!ok)
        return NULL;
    res = PQexec(c, exists || create ? "SELECT version, checksum, date_trunc('second', applied_at)::text"
                                       " FROM schema_migrations ORDER BY version"
                                     : "SELECT NULL::text, NULL::text, NULL::text WHERE false");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        migrate__pgerr(c, res, "reading schema_migrations", err, errlen);
        PQclear(res);
        return NULL;
    }
    return res;
}

/* Sets each file's state (and row) from the applied rows. */
static void migrate__match(migrate__set_t *set, PGresult *rows) {
    for (int r = 0; r < PQntuples(rows); r++)
        for (size_t i = 0; i < set->n; i++)
            if (strcmp(set->v[i].version, PQgetvalue(rows, r, 0)) == 0) {
                set->v[i].row = r;
                set->v[i].state = strcmp(set->v[i].sum, PQgetvalue(rows, r, 1)) == 0 ? MIGRATE__APPLIED
                                                                                      : MIGRATE__CHANGED;
            }
}

/* After migrate__match: every problem (changed file, unknown version,
 * pending file older than an applied one) goes to report when not NULL, the
 * first to err. 0 when consistent, else -1. */
static int migrate__problems(const migrate__set_t *set, PGresult *rows, const char *dir, FILE *report,
                             char *err, size_t errlen) {
    int problems = 0;
    char line[1024];
    const migrate__file_t *last_applied = NULL;
    for (size_t i = 0; i < set->n; i++)
        if (set->v[i].state != MIGRATE__PENDING)
            last_applied = &set->v[i];
    for (int r = 0; r < PQntuples(rows); r++) {
        size_t i = 0;
        while (i < set->n && set->v[i].row != r)
            i++;
        if (i < set->n)
            continue;
        const char *version = PQgetvalue(rows, r, 0);
        snprintf(line, sizeof line, "database has migration %s that this code does not have (no %s/%s.sql)",
                 version, dir, version);
        if (report)
            fprintf(report, "problem  %s\n", line);
        if (!problems++)
            snprintf(err, errlen, "%s", line);
    }
    for (size_t i = 0; i < set->n; i++) {
        const migrate__file_t *m = &set->v[i];
        if (m->state == MIGRATE__CHANGED)
            snprintf(line, sizeof line, "migration %s was changed after it was applied (checksum %s when applied, "
                     "%s now)", m->version, PQgetvalue(rows, m->row, 1), m->sum);
        else if (m->state == MIGRATE__PENDING && last_applied && m->number < last_applied->number)
            snprintf(line, sizeof line, "migration %s is not applied but the later %s is: one linear history, "
                     "renumber it after %s", m->version, last_applied->version, last_applied->version);
        else
            continue;
        if (report)
            fprintf(report, "problem  %s\n", line);
        if (!problems++)
            snprintf(err, errlen, "%s", line);
    }
    return problems ? -1 : 0;
}

/* The 1-based line of character position pos (as PostgreSQL counts: UTF-8
 * characters from 1) in sql. */
static int migrate__line(const char *sql, long pos) {
    int line = 1;
    for (long ch = 0; *sql; sql++) {
        if (((unsigned char)*sql & 0xC0) != 0x80 && ++ch >= pos)
            break;
        if (*sql == '\n')
            line++;
    }
    return line;
}

/* Applies one file and records it, in one transaction. 0, or -1 with err
 * naming the file and PostgreSQL's message (and line); rolled back then. */
static int migrate__apply_one(PGconn *c, const migrate__file_t *m, char *err, size_t errlen) {
    char what[512];
    snprintf(what, sizeof what, "migration %s failed", m->version);
    if (migrate__exec(c, "BEGIN", 0, NULL, what, err, errlen) < 0)
        return -1;
    PGresult *res = PQexec(c, m->sql);
    ExecStatusType st = PQresultStatus(res);
    int rc = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        const char *pos = res ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION) : NULL;
        const char *ctx = res ? PQresultErrorField(res, PG_DIAG_CONTEXT) : NULL;
        char line[32] = "", context[512] = "";
        if (pos)
            snprintf(line, sizeof line, " at line %d", migrate__line(m->sql, atol(pos)));
        for (size_t used = 0, k; ctx && *ctx; ctx += k + strspn(ctx + k, "\n")) { /* " (a; b)" */
            k = strcspn(ctx, "\n");
            used += snprintf(context + used, sizeof context - used - 1, "%s%.*s", used ? "; " : " (", (int)k, ctx);
            if (used >= sizeof context - 2)
                break;
        }
        if (*context)
            strcat(context, ")");
        int n;
        const char *msg = migrate__message(c, res, &n);
        migrate__err(err, errlen, "migration %s failed%s: %.*s%s", m->version, line, n, msg, context);
        rc = -1;
    } else if (PQtransactionStatus(c) != PQTRANS_INTRANS) {
        migrate__err(err, errlen, "migration %s ended the runner's transaction itself (COMMIT or ROLLBACK in the "
                     "file): part of it may be committed and it is not recorded; remove the transaction control "
                     "from the file and repair the database by hand", m->version);
        rc = -1;
    }
    PQclear(res);
    const char *params[] = {m->version, m->sum};
    if (rc == 0)
        rc = migrate__exec(c, "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)", 2, params,
                           what, err, errlen);
    if (rc == 0)
        rc = migrate__exec(c, "COMMIT", 0, NULL, what, err, errlen);
    if (rc < 0 && PQtransactionStatus(c) != PQTRANS_IDLE)
        PQclear(PQexec(c, "ROLLBACK"));
    return rc;
}

static double migrate__ms_since(const struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1e3 + (t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* How a run holds the migrations lock. */
typedef enum { MIGRATE__UNLOCKED, MIGRATE__SHARED, MIGRATE__EXCLUSIVE } migrate__mode_t;

/* What every sub-command works on: the folder's files matched to the
 * database's applied rows, over one connection. */
typedef struct {
    migrate__set_t set;
    PGconn *c;
    PGresult *rows;
    migrate__mode_t mode;
} migrate__run_t;

/* Scans dir, connects, takes the lock in mode (EXCLUSIVE also creates a
 * missing schema_migrations), reads the applied rows and matches them to the
 * files. progress (may be NULL) gets the server's notices and the line about
 * waiting for another run's lock. 0, or -1 with err; either way run holds
 * what was acquired until migrate__close. */
static int migrate__open(migrate__run_t *run, const char *conninfo, const char *dir, migrate__mode_t mode,
                         FILE *progress, char *err, size_t errlen) {
    *run = (migrate__run_t){.mode = mode};
    if (migrate__scan(dir, &run->set, err, errlen) < 0 || !(run->c = migrate__connect(conninfo, progress, err, errlen)))
        return -1;
    if (mode != MIGRATE__UNLOCKED && migrate__lock(run->c, mode == MIGRATE__SHARED, 0, progress, err, errlen) < 0)
        return -1;
    if (!(run->rows = migrate__applied(run->c, mode == MIGRATE__EXCLUSIVE, err, errlen)))
        return -1;
    migrate__match(&run->set, run->rows);
    return 0;
}

/* Ends a run whose outcome is rc: releases the lock when rc is 0 (after a
 * failure, closing the connection releases it), then the connection and the
 * files. Returns rc, or -1 with err when releasing the lock failed. */
static int migrate__close(migrate__run_t *run, int rc, char *err, size_t errlen) {
    if (rc == 0 && run->mode != MIGRATE__UNLOCKED)
        rc = migrate__lock(run->c, run->mode == MIGRATE__SHARED, 1, NULL, err, errlen);
    PQclear(run->rows);
    PQfinish(run->c);
    migrate__free(&run->set);
    return rc;
}

int migrate_apply(const char *conninfo, const char *dir, FILE *out, char *err, size_t errlen) {
    migrate__run_t run;
    int rc = migrate__open(&run, conninfo, dir, MIGRATE__EXCLUSIVE, out, err, errlen);
    if (rc == 0)
        rc = migrate__problems(&run.set, run.rows, dir, NULL, err, errlen);
    int applied = 0;
    for (size_t i = 0; rc == 0 && i < run.set.n; i++) {
        if (run.set.v[i].state != MIGRATE__PENDING)
            continue;
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        rc = migrate__apply_one(run.c, &run.set.v[i], err, errlen);
        if (rc == 0 && out)
            fprintf(out, "applied %s (%.0f ms)\n", run.set.v[i].version, migrate__ms_since(&t0));
        applied += rc == 0;
    }
    if (rc == 0 && out) {
        if (run.set.n)
            fprintf(out, "%s: %d applied, database at %s\n", applied ? "migrated" : "up to date", applied,
                    run.set.v[run.set.n - 1].version);
        else
            fprintf(out, "no migrations in %s\n", dir);
    }
    return migrate__close(&run, rc, err, errlen);
}

int migrate_status(const char *conninfo, const char *dir, FILE *out, char *err, size_t errlen) {
    migrate__run_t run;
    int rc = migrate__open(&run, conninfo, dir, MIGRATE__UNLOCKED, NULL, err, errlen);
    size_t pending = 0;
    for (size_t i = 0; rc == 0 && i < run.set.n; i++) {
        const migrate__file_t *m = &run.set.v[i];
        if (m->state == MIGRATE__PENDING) {
            fprintf(out, "pending  %s\n", m->version);
            pending++;
        } else {
            fprintf(out, "%s  %s  %s\n", m->state == MIGRATE__APPLIED ? "applied" : "changed", m->version,
                    PQgetvalue(run.rows, m->row, 2));
        }
    }
    if (rc == 0)
        rc = migrate__problems(&run.set, run.rows, dir, out, err, errlen);
    if (rc == 0) {
        if (pending)
            fprintf(out, "%zu pending\n", pending);
        else
            fprintf(out, "up to date\n");
        rc = pending ? 1 : 0;
    }
    return migrate__close(&run, rc, err, errlen);
}

int migrate_check(const char *conninfo, const char *dir, char *err, size_t errlen) {
    migrate__run_t run;
    int rc = migrate__open(&run, conninfo, dir, MIGRATE__SHARED, NULL, err, errlen);
    if (rc == 0)
        rc = migrate__problems(&run.set, run.rows, dir, NULL, err, errlen);
    size_t pending = 0;
    const char *first = NULL;
    for (size_t i = 0; rc == 0 && i < run.set.n; i++)
        if (run.set.v[i].state == MIGRATE__PENDING && !pending++)
            first = run.set.v[i].version;
    if (pending) {
        migrate__err(err, errlen, "the database lacks %zu migration%s (first: %s): run `cchost migrate`", pending,
                     pending == 1 ? "" : "s", first);
        rc = -1;
    }
    return migrate__close(&run, rc, err, errlen);
}

static void migrate__usage(FILE *out) {
    fprintf(out,
            "usage: cchost migrate [--status | --check] [--dir DIR]\n"
            "  (no option)  apply the pending migrations of DIR to DATABASE_URL\n"
            "  --status     list applied and pending migrations and any problem\n"
            "  --check      verify the database is up to date without changing it\n"
            "  --dir DIR    the migrations folder (default: migrations)\n"
            "Exit codes: 0 ok, 1 failure or (--status) migrations pending, 2 usage error.\n");
}

int migrate_main(int argc, char **argv) {
    const char *dir = config_str("MIGRATIONS_DIR");
    int status = 0, check = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--status") == 0) {
            status = 1;
        } else if (strcmp(argv[i], "--check") == 0) {
            check = 1;
        } else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            migrate__usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "cchost migrate: unexpected argument '%s'\n", argv[i]);
            migrate__usage(stderr);
            return 2;
        }
    }
    if (status && check) {
        fprintf(stderr, "cchost migrate: --status and --check exclude each other\n");
        migrate__usage(stderr);
        return 2;
    }
    const char *url = config_str("DATABASE_URL");
    char err[2048];
    int rc;
    if (status)
        rc = migrate_status(url, dir, stdout, err, sizeof err);
    else if (check)
        rc = migrate_check(url, dir, err, sizeof err);
    else
        rc = migrate_apply(url, dir, stdout, err, sizeof err);
    fflush(stdout);
    if (rc < 0) {
        fprintf(stderr, "cchost migrate: %s\n", err);
        return 1;
    }
    if (check)
        printf("up to date\n");
    return rc == 1 ? 1 : 0;
}
