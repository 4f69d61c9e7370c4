/* lua_db.c - the Lua module host.db: queries and transactions for scripts.
 *
 * db.query(sql, ...) -> rows, count | nil, err, sqlstate
 *   Parameters are $1, $2… only (SQL is never built from values): nil and
 *   json.null are NULL, booleans "t"/"f", numbers integer text when integral
 *   (else %.17g), tables JSON text, strings as they are. Rows are an array
 *   (json.array_mt) of tables keyed by column name, typed by column type:
 *   int2/int4/int8/oid/float4/float8 -> number (int8 exact up to 2^53),
 *   numeric -> string (no precision lost), bool -> boolean, json/jsonb ->
 *   decoded, timestamptz/timestamp -> "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC; the
 *   session runs with TimeZone=UTC), date -> "YYYY-MM-DD", anything else ->
 *   its text; NULL -> the key is absent. count is the number of rows the
 *   statement returned or affected. err is "SQLSTATE: message" ("pool
 *   timeout" alone when no connection freed up in time).
 * db.tx(fn [, {isolation = "read committed"|"repeatable read"|"serializable",
 *              read_only = false}]) -> fn's results | nil, err, sqlstate
 *   Runs fn in one transaction on one connection pinned to the calling
 *   coroutine (every db.query inside uses it). Commits when fn returns; when
 *   fn raises, rolls back and raises the same error again (a host.error
 *   becomes the HTTP answer with nothing written). When any statement, or the
 *   COMMIT, fails with 40001 (serialization) or 40P01 (deadlock), the whole
 *   function runs again, up to the configured number of retries. A statement
 *   error that fn ignored makes the COMMIT fail with that error. A db.tx
 *   inside a transaction runs fn under a SAVEPOINT: its error rolls back only
 *   its own work (and is raised again), its success releases the savepoint.
 *   A failure return always means nothing was committed, with one exception:
 *   when the answer to COMMIT is lost (connection lost or the server going
 *   down while COMMIT was in flight), db.tx asks the server what became of
 *   the transaction (txid_status on another pooled connection, ending the
 *   old session first if it still runs) for up to COMMIT_OUTCOME_TIMEOUT_MS:
 *   committed -> fn's results as after any COMMIT; aborted -> the connection
 *   error; still not known -> nil, "08007: outcome unknown", "08007"
 *   (SQLSTATE transaction_resolution_unknown): the work may or may not have
 *   been committed. Each such case is logged as a warning with its outcome.
 *   To know its transaction id, db.tx starts with `BEGIN ...` and `SELECT
 *   txid_current()`, queued like db.defer statements (so they travel with
 *   the first statement), which gives every db.tx an xid (and a commit
 *   record to flush): read-only work belongs in db.query, or in read_only =
 *   true, which opens a READ ONLY transaction without an xid (it cannot
 *   move anything, so its lost COMMIT is just the connection error). A
 *   transaction that fails before sending anything costs no round trip.
 * db.defer(sql, ...) -> answer
 *   Inside a transaction, queues sql: it goes to the server with the next
 *   statement whose answer is awaited (db.query, a savepoint, COMMIT) as
 *   one pipeline, in one round trip, in the order queued. answer() ->
 *   rows, count | nil, err, sqlstate, sending the queue first if needed.
 *   For writes whose answer can wait (or is known): a deferred statement
 *   that fails makes the statement it travelled with fail with its error
 *   (the server runs nothing after it), and so the transaction, like any
 *   ignored error. Statements still queued when fn raises, or when a
 *   savepoint rolls back, are dropped (answer: nil, "not run: …").
 *   Outside a transaction it runs at once.
 * db.after_commit(fn): inside a transaction, fn runs once after the COMMIT
 *   succeeded (in the same coroutine, the connection already released;
 *   never for a rolled-back or retried attempt; an error in it is logged);
 *   outside one, fn runs at once.
 * db.tx_local() -> a table that lives as long as the current transaction
 *   (one per attempt: a retried fn starts with an empty one; a savepoint
 *   shares its transaction's), or nil outside one. For what a transaction
 *   learns early and needs again later in other modules (a deferred
 *   answer), without module state shared by concurrent requests.
 * db.read_with_xid(name, sql): registers a one-value read (sql, a query of
 *   one column and at most one row) that every later db.tx with an xid
 *   makes in its xid statement, as a column `name`: a value a module needs
 *   in most transactions then costs no statement of its own. For the worker's
 *   life (registering a name again replaces its sql).
 * db.xid_read(name) -> answer | nil: inside a transaction that read name
 *   with its xid, answer() -> the value (nil for no row) | nil, err,
 *   sqlstate, sending the queue first if needed; nil otherwise (outside
 *   one, read only, or not registered when it began).
 *
 * The C side does the I/O: "query" (take a connection, run, give it back),
 * "acquire", "exec" (one statement) and "batch" (several, one pipeline) on
 * a held connection, "in_tx", "release", plus a clock and a sleep for the
 * COMMIT outcome check. The transaction logic is the small Lua chunk below, kept
 * here with the C it drives. A request whose client went away still
 * completes its queries and transaction. */
#include "lua_db.h"

#include <errno.h>
#include <lauxlib.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "json.h"
#include "log.h"
#include "pg.h"
#include "vm.h"

enum { DB_QUERY, DB_EXEC, DB_ACQUIRE };

/* One waiting call; the parameters are copied only while waiting for a
 * connection (pg_batch copies them itself). */
typedef struct {
    lua_State *co;
    int mode;
    pg_conn_t *conn;
    int nparams;
    const char **values; /* block: values array, sql, strings */
    const char *sql;
} db_req_t;

static int array_mt_ref = LUA_NOREF;
static int tx_retries = 5;

void lua_db_set_tx_retries(int retries) { tx_retries = retries < 0 ? 0 : retries; }

/* ---- parameters --------------------------------------------------------- */

/* Writes v in decimal into out (at least 21 bytes): what "%.0f" writes for
 * an integral |v| < 1e18 (ids, amounts, nonces: most parameters of every
 * statement), without going through printf's floating-point formatting. */
static void lua_db__int_text(char *out, int64_t v) {
    char tmp[24];
    int n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do tmp[n++] = (char)('0' + u % 10); while ((u /= 10) != 0);
    if (v < 0) *out++ = '-';
    while (n) *out++ = tmp[--n];
    *out = 0;
}

/* Replaces the arguments from index first on with their text form (nil for
 * NULL); raises on a value that has none. Returns how many there are. */
static int lua_db__params_to_text(lua_State *L, int first) {
    int n = lua_gettop(L) - first + 1;
    if (n > 65535) luaL_error(L, "too many parameters");
    for (int i = first; i < first + n; i++) {
        char num[64];
        switch (lua_type(L, i)) {
        case LUA_TNIL: break;
        case LUA_TLIGHTUSERDATA:
            if (lua_touserdata(L, i)) luaL_argerror(L, i, "unsupported parameter type");
            lua_pushnil(L); /* json.null */
            lua_replace(L, i);
            break;
        case LUA_TBOOLEAN:
            lua_pushstring(L, lua_toboolean(L, i) ? "t" : "f");
            lua_replace(L, i);
            break;
        case LUA_TNUMBER: {
            double x = lua_tonumber(L, i);
            if (isnan(x)) snprintf(num, sizeof num, "NaN");
            else if (isinf(x)) snprintf(num, sizeof num, x > 0 ? "Infinity" : "-Infinity");
            else if (x == floor(x) && fabs(x) < 1e18) lua_db__int_text(num, (int64_t)x); /* ids, amounts */
            else snprintf(num, sizeof num, "%.17g", x);
            lua_pushstring(L, num);
            lua_replace(L, i);
            break;
        }
        case LUA_TSTRING: {
            size_t len;
            const char *s = lua_tolstring(L, i, &len);
            if (memchr(s, 0, len)) luaL_argerror(L, i, "string parameter contains a NUL byte");
            break;
        }
        case LUA_TTABLE: {
            char *out;
            size_t len;
            const char *err;
            if (json_encode_lua(L, i, &out, &len, &err) < 0) luaL_argerror(L, i, err);
            lua_pushlstring(L, out, len);
            free(out);
            lua_replace(L, i);
            break;
        }
        default: luaL_argerror(L, i, "unsupported parameter type");
        }
    }
    return n;
}

/* The text parameters at first.. as an array (malloc'd, NULL for NULL);
 * pointers into the Lua strings, valid while they stay on the stack. */
static const char **lua_db__params_array(lua_State *L, int first, int n) {
    const char **v = malloc(((size_t)n + 1) * sizeof *v);
    if (!v) luaL_error(L, "out of memory");
    for (int i = 0; i < n; i++) v[i] = lua_tostring(L, first + i);
    return v;
}

/* A request that outlives this call: sql and values copied in one block. */
static db_req_t *lua_db__req_copy(lua_State *L, int mode, const char *sql, const char **vals, int n) {
    size_t sqllen = sql ? strlen(sql) + 1 : 0, total = sizeof(db_req_t) + (size_t)n * sizeof(char *) + sqllen;
    for (int i = 0; i < n; i++)
        if (vals[i]) total += strlen(vals[i]) + 1;
    db_req_t *r = malloc(total);
    if (!r) return NULL;
    r->co = L;
    r->mode = mode;
    r->conn = NULL;
    r->nparams = n;
    r->values = (const char **)(r + 1);
    char *s = (char *)(r->values + n);
    r->sql = s;
    if (sql) memcpy(s, sql, sqllen);
    s += sqllen;
    for (int i = 0; i < n; i++) {
        r->values[i] = NULL;
        if (!vals[i]) continue;
        size_t len = strlen(vals[i]) + 1;
        memcpy(s, vals[i], len);
        r->values[i] = s;
        s += len;
    }
    return r;
}

/* ---- results ------------------------------------------------------------ */

/* "YYYY-MM-DD HH:MM:SS[.ffffff][+00]" -> "YYYY-MM-DDTHH:MM:SS.mmmZ"; other
 * forms (infinity, BC, years past 9999) stay as PostgreSQL wrote them. */
static void lua_db__push_timestamp(lua_State *L, const char *s, size_t len) {
    if (len < 19 || s[4] != '-' || s[7] != '-' || s[10] != ' ' || s[13] != ':' || s[16] != ':' ||
        (len > 19 && s[19] != '.' && s[19] != '+' && s[19] != '-') || strstr(s, "BC")) {
        lua_pushlstring(L, s, len);
        return;
    }
    char out[25];
    memcpy(out, s, 19);
    out[10] = 'T';
    out[19] = '.';
    size_t i = 0; /* milliseconds: the fraction truncated (rounding could carry) */
    if (s[19] == '.')
        for (; i < 3 && 20 + i < len && s[20 + i] >= '0' && s[20 + i] <= '9'; i++) out[20 + i] = s[20 + i];
    for (; i < 3; i++) out[20 + i] = '0';
    out[23] = 'Z';
    lua_pushlstring(L, out, 24);
}

static void lua_db__push_value(lua_State *L, PGresult *res, int row, int col) {
    const char *s = PQgetvalue(res, row, col);
    size_t len = (size_t)PQgetlength(res, row, col);
    switch (PQftype(res, col)) {
    case 16: lua_pushboolean(L, s[0] == 't'); break; /* bool */
    case 20: case 21: case 23: case 26: case 700: case 701: /* int8 int2 int4 oid float4 float8 */
        lua_pushnumber(L, strtod(s, NULL));
        break;
    case 114: case 3802: { /* json jsonb */
        size_t pos;
        if (json_decode_lua(L, s, len, &pos) < 0) { /* beyond the host's JSON (e.g. 1e400) */
            lua_pop(L, 1);
            lua_pushlstring(L, s, len);
        }
        break;
    }
    case 1114: case 1184: lua_db__push_timestamp(L, s, len); break; /* timestamp timestamptz */
    default: lua_pushlstring(L, s, len);
    }
}

/* Pushes rows and count (and the command tag when tag is set). */
static int lua_db__push_result(lua_State *L, PGresult *res, int tag) {
    int nrows = PQntuples(res), ncols = PQnfields(res);
    lua_checkstack(L, 8);
    lua_createtable(L, nrows, 0);
    lua_rawgeti(L, LUA_REGISTRYINDEX, array_mt_ref);
    lua_setmetatable(L, -2);
    for (int r = 0; r < nrows; r++) {
        lua_createtable(L, 0, ncols);
        for (int c = 0; c < ncols; c++) {
            if (PQgetisnull(res, r, c)) continue;
            lua_db__push_value(L, res, r, c);
            lua_setfield(L, -2, PQfname(res, c));
        }
        lua_rawseti(L, -2, r + 1);
    }
    const char *n = PQcmdTuples(res);
    lua_pushnumber(L, *n ? strtod(n, NULL) : nrows);
    if (!tag) return 2;
    lua_pushstring(L, PQcmdStatus(res));
    return 3;
}

/* Pushes nil, "SQLSTATE: message" (or the message alone), sqlstate. */
static int lua_db__push_error(lua_State *L, const char *err, const char *sqlstate) {
    lua_checkstack(L, 4);
    lua_pushnil(L);
    if (sqlstate) lua_pushfstring(L, "%s: %s", sqlstate, err);
    else lua_pushstring(L, err);
    if (sqlstate) lua_pushstring(L, sqlstate);
    else lua_pushnil(L);
    return 3;
}

static int lua_db__push_lost(lua_State *L) { return lua_db__push_error(L, "connection lost", "08006"); }

/* ---- completions (from the loop) ------------------------------------------ */

/* The answer of one statement (a batch of one). */
static void lua_db__on_result(PGresult *const *res, int n, int failed, const char *err, const char *sqlstate,
                              void *data) {
    (void)n;
    db_req_t *r = data;
    lua_State *co = r->co;
    int nret = failed < 0 ? lua_db__push_result(co, res[0], r->mode == DB_EXEC)
                          : lua_db__push_error(co, err, sqlstate);
    if (r->mode == DB_QUERY) pg_release(r->conn);
    free(r);
    vm_resume(co, nret);
}

/* Sends sql with its values on c as a batch of one; r is resumed with its
 * answer. Returns what pg_batch returns. */
static int lua_db__send_one(pg_conn_t *c, const char *sql, int nparams, const char *const *values, db_req_t *r) {
    pg_statement_t st = {sql, nparams, values};
    return pg_batch(c, &st, 1, lua_db__on_result, r);
}

static void lua_db__on_acquired(pg_conn_t *c, const char *err, const char *sqlstate, void *data) {
    db_req_t *r = data;
    lua_State *co = r->co;
    int n;
    if (!c) {
        n = lua_db__push_error(co, err, sqlstate);
    } else if (r->mode == DB_ACQUIRE) {
        lua_pushlightuserdata(co, c);
        n = 1;
    } else {
        r->conn = c;
        if (lua_db__send_one(c, r->sql, r->nparams, r->values, r) == 0) return;
        pg_release(c);
        n = lua_db__push_lost(co);
    }
    free(r);
    vm_resume(co, n);
}

/* ---- the C functions the Lua chunk drives ---------------------------------- */

/* Raises unless L may wait: I/O must not start for a caller that cannot. */
static void lua_db__check_yieldable(lua_State *L) {
    if (lua_pushthread(L)) luaL_error(L, "database calls must run in a request or timer coroutine");
    lua_pop(L, 1);
}

/* Runs sql with the values on c; returns vm_suspend's value or the pushed
 * error. On a held connection (DB_EXEC), a lost connection that kept sql
 * from being sent at all adds a fourth result, true ("not sent"): db.tx
 * then knows its COMMIT never reached the server. */
static int lua_db__exec_on(lua_State *L, pg_conn_t *c, int mode, const char *sql, const char **vals, int n) {
    db_req_t *r = lua_db__req_copy(L, mode, NULL, vals, 0);
    if (!r) return luaL_error(L, "out of memory");
    r->conn = c;
    int rc = lua_db__send_one(c, sql, n, vals, r);
    if (rc == 0) return vm_suspend(L);
    free(r);
    if (mode == DB_QUERY) pg_release(c);
    if (rc == -EBUSY) return luaL_error(L, "a query is already running on this connection");
    if (rc == -ENOMEM) return luaL_error(L, "out of memory");
    if (mode != DB_EXEC) return lua_db__push_lost(L);
    lua_db__push_lost(L);
    lua_pushboolean(L, 1);
    return 4;
}

/* query(sql, ...): takes a connection, runs sql, gives the connection back. */
static int lua_db__l_query(lua_State *L) {
    const char *sql = luaL_checkstring(L, 1);
    lua_db__check_yieldable(L);
    int n = lua_db__params_to_text(L, 2);
    const char **vals = lua_db__params_array(L, 2, n);
    pg_conn_t *c;
    const char *err, *state;
    db_req_t *r = lua_db__req_copy(L, DB_QUERY, sql, vals, n);
    if (!r) {
        free(vals);
        return luaL_error(L, "out of memory");
    }
    int rc = pg_acquire(&c, lua_db__on_acquired, r, &err, &state);
    if (rc == PG_QUEUED) {
        free(vals);
        return vm_suspend(L);
    }
    free(r);
    if (rc < 0) {
        free(vals);
        return lua_db__push_error(L, err, state);
    }
    rc = lua_db__exec_on(L, c, DB_QUERY, sql, vals, n);
    free(vals);
    return rc;
}

/* acquire() -> connection (light userdata) | nil, err, sqlstate */
static int lua_db__l_acquire(lua_State *L) {
    lua_db__check_yieldable(L);
    pg_conn_t *c;
    const char *err, *state;
    db_req_t *r = lua_db__req_copy(L, DB_ACQUIRE, NULL, NULL, 0);
    if (!r) return luaL_error(L, "out of memory");
    int rc = pg_acquire(&c, lua_db__on_acquired, r, &err, &state);
    if (rc == PG_QUEUED) return vm_suspend(L);
    free(r);
    if (rc < 0) return lua_db__push_error(L, err, state);
    lua_pushlightuserdata(L, c);
    return 1;
}

/* exec(connection, sql, ...) -> rows, count, tag | nil, err, sqlstate */
static int lua_db__l_exec(lua_State *L) {
    luaL_checktype(L, 1, LUA_TLIGHTUSERDATA);
    pg_conn_t *c = lua_touserdata(L, 1);
    const char *sql = luaL_checkstring(L, 2);
    int n = lua_db__params_to_text(L, 3);
    const char **vals = lua_db__params_array(L, 3, n);
    int rc = lua_db__exec_on(L, c, DB_EXEC, sql, vals, n);
    free(vals);
    return rc;
}

/* The answers of a batch (from the loop): resumes the caller of batch(). */
static void lua_db__on_batch(PGresult *const *res, int n, int failed, const char *err, const char *sqlstate,
                             void *data) {
    db_req_t *r = data;
    lua_State *co = r->co;
    int done = failed < 0 ? n : failed, nret = 1;
    lua_checkstack(co, 10);
    lua_createtable(co, done, 0);
    for (int i = 0; i < done; i++) {
        lua_createtable(co, 3, 0);
        lua_db__push_result(co, res[i], 1);
        lua_rawseti(co, -4, 3);
        lua_rawseti(co, -3, 2);
        lua_rawseti(co, -2, 1);
        lua_rawseti(co, -2, i + 1);
    }
    if (failed >= 0) {
        nret += lua_db__push_error(co, err, sqlstate) - 1; /* err, sqlstate after the nil */
        lua_remove(co, -3);
    }
    free(r);
    vm_resume(co, nret);
}

/* batch(connection, statements) -> answers [, err, sqlstate [, true]]
 * statements: an array of {sql, param1, …, n = 1 + #params}, sent as one
 * pipeline (pg_batch). answers[i] = {rows, count, tag} for each statement
 * that ran; on a failure, err and sqlstate say why (the statement after the
 * last answer failed, the ones after it did not run), and a fourth result
 * true means nothing was sent at all (the connection was gone). */
static int lua_db__l_batch(lua_State *L) {
    luaL_checktype(L, 1, LUA_TLIGHTUSERDATA);
    luaL_checktype(L, 2, LUA_TTABLE);
    pg_conn_t *c = lua_touserdata(L, 1);
    int n = (int)lua_objlen(L, 2), base = lua_gettop(L);
    if (n < 1 || n > PG_BATCH_MAX) return luaL_error(L, "a batch holds 1 to %d statements", PG_BATCH_MAX);
    pg_statement_t st[PG_BATCH_MAX];
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, 2, i + 1);
        int item = lua_gettop(L);
        luaL_checktype(L, item, LUA_TTABLE);
        lua_getfield(L, item, "n");
        int k = (int)lua_tointeger(L, -1);
        lua_pop(L, 1);
        if (k < 1) return luaL_error(L, "batch: statement %d has no SQL", i + 1);
        luaL_checkstack(L, k + 4, "batch: too many parameters");
        for (int j = 1; j <= k; j++) lua_rawgeti(L, item, j);
        int first = item + 1;
        if (lua_type(L, first) != LUA_TSTRING) return luaL_error(L, "batch: statement %d has no SQL", i + 1);
        st[i].sql = lua_tostring(L, first);
        st[i].nparams = lua_db__params_to_text(L, first + 1);
        st[i].values = NULL;
    }
    /* the pointers, once the stack no longer moves */
    const char **vals = malloc(((size_t)(lua_gettop(L) - base) + 1) * sizeof *vals);
    if (!vals) return luaL_error(L, "out of memory");
    for (int i = 0, at = base + 1, v = 0; i < n; i++) {
        at += 2; /* the statement's table and its SQL */
        st[i].values = vals + v;
        for (int k = 0; k < st[i].nparams; k++) vals[v++] = lua_tostring(L, at++);
    }
    db_req_t *r = lua_db__req_copy(L, DB_EXEC, NULL, NULL, 0);
    int rc = r ? pg_batch(c, st, n, lua_db__on_batch, r) : -ENOMEM;
    free(vals);
    lua_settop(L, base);
    if (rc == 0) return vm_suspend(L);
    free(r);
    if (rc == -EBUSY) return luaL_error(L, "a query is already running on this connection");
    if (rc == -ENOMEM) return luaL_error(L, "out of memory");
    lua_newtable(L);
    lua_db__push_lost(L);
    lua_remove(L, -3);
    lua_pushboolean(L, 1);
    return 4;
}

/* in_tx(connection) -> true while its session is inside a transaction
 * block, a failed one included (false once the connection is lost) */
static int lua_db__l_in_tx(lua_State *L) {
    luaL_checktype(L, 1, LUA_TLIGHTUSERDATA);
    lua_pushboolean(L, pg_in_transaction(lua_touserdata(L, 1)));
    return 1;
}

/* pid(connection) -> the server process id of its session (0: none) */
static int lua_db__l_pid(lua_State *L) {
    luaL_checktype(L, 1, LUA_TLIGHTUSERDATA);
    lua_pushinteger(L, pg_backend_pid(lua_touserdata(L, 1)));
    return 1;
}

static int lua_db__l_release(lua_State *L) {
    luaL_checktype(L, 1, LUA_TLIGHTUSERDATA);
    pg_release(lua_touserdata(L, 1));
    return 0;
}

static int lua_db__l_retries(lua_State *L) {
    lua_pushinteger(L, tx_retries);
    return 1;
}

static int lua_db__l_log_error(lua_State *L) {
    const char *rid = vm_request_id(L);
    log_errorf("db.after_commit failed (request %s): %s", rid ? rid : "-", luaL_checkstring(L, 1));
    return 0;
}

static int lua_db__l_log_warn(lua_State *L) {
    const char *rid = vm_request_id(L);
    log_warnf("%s (request %s)", luaL_checkstring(L, 1), rid ? rid : "-");
    return 0;
}

/* outcome_timeout() -> COMMIT_OUTCOME_TIMEOUT_MS (read only when a COMMIT
 * answer was lost, so tools and tests without settings never need it) */
static int lua_db__l_outcome_timeout(lua_State *L) {
    lua_pushnumber(L, config_num("COMMIT_OUTCOME_TIMEOUT_MS"));
    return 1;
}

/* ---- transactions, in Lua ------------------------------------------------- */

static const char tx_chunk[] =
    "local C, running = ...\n"
    "local RETRY = { ['40001'] = true, ['40P01'] = true }\n"
    "local ISOLATION = {\n"
    "  ['read committed'] = 'BEGIN ISOLATION LEVEL READ COMMITTED',\n"
    "  ['repeatable read'] = 'BEGIN ISOLATION LEVEL REPEATABLE READ',\n"
    "  serializable = 'BEGIN ISOLATION LEVEL SERIALIZABLE',\n"
    "}\n"
    "-- Queued with BEGIN: the transaction id that lets a lost COMMIT be looked\n"
    "-- up. It assigns an xid at once (in repeatable read and serializable it also\n"
    "-- takes the snapshot there).\n"
    "local XID = 'SELECT txid_current()::text AS xid'\n"
    "-- db.read_with_xid: name -> sql; the xid statement with them, and its names\n"
    "local with_xid, XID_READS, xid_names = {}, XID, {}\n"
    "-- A COMMIT that failed with one of these may still have committed: the\n"
    "-- answer was lost with the connection (class 08), or a shutdown or crash\n"
    "-- ended the session as the COMMIT ran (57P0x can come after the commit\n"
    "-- itself). Any other error is the server's definite answer (23xxx, 40001).\n"
    "-- A COMMIT that was never sent (the connection was already gone) is none.\n"
    "local DOUBT = { ['57P01'] = true, ['57P02'] = true, ['57P03'] = true }\n"
    "local STATUS = 'SELECT txid_status($1) AS status'\n"
    "-- Ends the session that still runs the transaction, and never another one\n"
    "-- that took its pid since (backend_xid is the 32-bit part of the xid).\n"
    "local TERMINATE = 'SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity '\n"
    "  .. 'WHERE pid = $1 AND backend_xid::text::bigint = ($2::bigint & 4294967295)'\n"
    "-- The answer of a deferred statement thrown away with its rolled-back work.\n"
    "local NOT_RUN = { nil, 'not run: its transaction or savepoint rolled back first' }\n"
    "-- Deferred statements wait in a queue of at most this many.\n"
    "local QUEUE_MAX = 48\n"
    "local txs = setmetatable({}, { __mode = 'k' }) -- coroutine -> its open transaction\n"
    "local function pack(...) return { n = select('#', ...), ... } end\n"
    "\n"
    "-- Sends t's queued statements, then sql when given, as one pipeline (one\n"
    "-- round trip). Each queued statement gets its answer ({rows, count, tag},\n"
    "-- or {nil, err, sqlstate} from a failure on: the server runs none after a\n"
    "-- failed one), and its `on` hook the rows. Returns the answer of the last\n"
    "-- statement: rows, count, tag | nil, err, sqlstate, unsent (true: nothing\n"
    "-- was sent, the connection was gone). Remembers the first failure and the\n"
    "-- first one that calls for running the whole transaction again.\n"
    "local function exec(t, sql, ...)\n"
    "  local q = t.queue\n"
    "  if sql then q[#q + 1] = pack(sql, ...) end\n"
    "  if #q == 0 then return {}, 0 end\n"
    "  local answers, err, state, unsent = C.batch(t.conn, q) -- raises before sending on misuse\n"
    "  t.queue = {}\n"
    "  for i, item in ipairs(q) do\n"
    "    item.answer = answers[i] or { nil, err, state }\n"
    "    if item.on and answers[i] then item.on(answers[i][1]) end\n"
    "  end\n"
    "  if not err then\n"
    "    local a = answers[#q]\n"
    "    return a[1], a[2], a[3]\n"
    "  end\n"
    "  t.failed = t.failed or { err, state }\n"
    "  if RETRY[state] then t.retry = t.retry or { err, state } end\n"
    "  return nil, err, state, unsent\n"
    "end\n"
    "\n"
    "-- Throws away t's queued statements (their work is being rolled back).\n"
    "local function discard(t)\n"
    "  for i = #t.queue, 1, -1 do\n"
    "    t.queue[i].answer = NOT_RUN\n"
    "    t.queue[i] = nil\n"
    "  end\n"
    "end\n"
    "\n"
    "-- The answer to t's COMMIT was lost (err): asks the server, on pooled\n"
    "-- connections, until COMMIT_OUTCOME_TIMEOUT_MS has passed (checked between\n"
    "-- attempts: one wait for a connection or one query may run past it).\n"
    "-- Returns 'committed', 'aborted' or 'unknown'.\n"
    "local function outcome(t, err)\n"
    "  local clock = require 'cc.host' -- monotonic_ms and the yielding sleep\n"
    "  local start = clock.monotonic_ms()\n"
    "  local deadline = start + C.outcome_timeout()\n"
    "  C.log_warn(string.format('db.tx: no answer to COMMIT of transaction %s (server pid %d): %s; '\n"
    "    .. 'asking the server', t.xid, t.pid, tostring(err)))\n"
    "  local fate\n"
    "  repeat\n"
    "    local conn = C.acquire() -- fails while the server restarts: wait and retry\n"
    "    if conn then\n"
    "      local rows = C.exec(conn, STATUS, t.xid)\n"
    "      if rows then fate = rows[1].status or 'unknown' end -- NULL: too old to tell\n"
    "      if fate == 'in progress' then -- the old session has not finished it: end it\n"
    "        rows = C.exec(conn, TERMINATE, t.pid, t.xid)\n"
    "        C.log_warn(string.format('db.tx: transaction %s still in progress: %s server pid %d', t.xid,\n"
    "          rows and rows[1] and rows[1].ended and 'terminated' or 'could not terminate', t.pid))\n"
    "        fate = nil\n"
    "      end\n"
    "      C.release(conn)\n"
    "    end\n"
    "    local left = deadline - clock.monotonic_ms()\n"
    "    if not fate and left > 0 then clock.sleep(math.min(left, 100) / 1000) end\n"
    "  until fate or clock.monotonic_ms() >= deadline\n"
    "  fate = fate or 'unknown'\n"
    "  C.log_warn(string.format('db.tx: transaction %s %s (learned in %.0f ms)', t.xid,\n"
    "    fate == 'unknown' and 'outcome unknown' or fate, clock.monotonic_ms() - start))\n"
    "  return fate\n"
    "end\n"
    "\n"
    "-- Sends what is queued and COMMIT. A lost COMMIT is looked up by the xid,\n"
    "-- so the xid must be known before COMMIT is sent: when fn only deferred,\n"
    "-- that is a round trip of its own.\n"
    "local function send_commit(t, read_only)\n"
    "  if not (read_only or t.xid) then\n"
    "    local ok, err, state, unsent = exec(t)\n"
    "    if not ok then return ok, err, state, unsent end\n"
    "  end\n"
    "  return exec(t, 'COMMIT') -- ends the transaction, even failing\n"
    "end\n"
    "\n"
    "local db = {}\n"
    "\n"
    "function db.query(sql, ...)\n"
    "  local t = txs[running()]\n"
    "  if not t then return C.query(sql, ...) end\n"
    "  local rows, a, b = exec(t, sql, ...)\n"
    "  if rows then return rows, a end\n"
    "  return nil, a, b\n"
    "end\n"
    "\n"
    "function db.defer(sql, ...)\n"
    "  local t = txs[running()]\n"
    "  if not t then\n"
    "    local a = pack(C.query(sql, ...))\n"
    "    return function() return a[1], a[2], a[3] end\n"
    "  end\n"
    "  local item = pack(sql, ...)\n"
    "  t.queue[#t.queue + 1] = item\n"
    "  if #t.queue >= QUEUE_MAX then exec(t) end\n"
    "  return function()\n"
    "    if not item.answer then exec(t) end -- still queued: send it now\n"
    "    return item.answer[1], item.answer[2], item.answer[3]\n"
    "  end\n"
    "end\n"
    "\n"
    "function db.tx_local()\n"
    "  local t = txs[running()]\n"
    "  if not t then return nil end\n"
    "  t.vars = t.vars or {}\n"
    "  return t.vars\n"
    "end\n"
    "\n"
    "function db.read_with_xid(name, sql)\n"
    "  if type(name) ~= 'string' or not name:find('^[%a_][%w_]*$') or type(sql) ~= 'string' then\n"
    "    error('db.read_with_xid expects a column name and a query', 2)\n"
    "  end\n"
    "  with_xid[name] = sql\n"
    "  local names, cols = {}, { XID }\n"
    "  for n in pairs(with_xid) do names[#names + 1] = n end\n"
    "  table.sort(names) -- one text, so one prepared statement\n"
    "  xid_names = {}\n"
    "  for _, n in ipairs(names) do\n"
    "    cols[#cols + 1] = '(' .. with_xid[n] .. ') AS ' .. n\n"
    "    xid_names[n] = true\n"
    "  end\n"
    "  XID_READS = table.concat(cols, ', ')\n"
    "end\n"
    "\n"
    "function db.xid_read(name)\n"
    "  local t = txs[running()]\n"
    "  local item = t and t.xid_item\n"
    "  if not (item and item.reads[name]) then return nil end\n"
    "  return function()\n"
    "    if not item.answer then exec(t) end\n"
    "    local rows, err, state = item.answer[1], item.answer[2], item.answer[3]\n"
    "    if not rows then return nil, err, state end\n"
    "    return rows[1][name]\n"
    "  end\n"
    "end\n"
    "\n"
    "function db.after_commit(fn)\n"
    "  if type(fn) ~= 'function' then error('db.after_commit expects a function', 2) end\n"
    "  local t = txs[running()]\n"
    "  if t then t.after[#t.after + 1] = fn else fn() end\n"
    "end\n"
    "\n"
    "-- A db.tx inside a transaction: fn runs under a savepoint.\n"
    "local function nested(t, fn)\n"
    "  t.depth = t.depth + 1\n"
    "  local sp = 'cc_sp' .. t.depth\n"
    "  local ok, err, state = exec(t, 'SAVEPOINT ' .. sp)\n"
    "  if not ok then t.depth = t.depth - 1 return nil, err, state end\n"
    "  local mark, failed = #t.after, t.failed\n"
    "  local res = pack(pcall(fn))\n"
    "  t.depth = t.depth - 1\n"
    "  if t.retry then -- the outer transaction runs again\n"
    "    if not res[1] then error(res[2], 0) end\n"
    "    return nil, t.retry[1], t.retry[2]\n"
    "  end\n"
    "  if res[1] then\n"
    "    ok, err, state = exec(t, 'RELEASE SAVEPOINT ' .. sp)\n"
    "    if ok then return unpack(res, 2, res.n) end\n"
    "    if t.failed ~= failed then err, state = t.failed[1], t.failed[2] end\n"
    "  end\n"
    "  discard(t)\n"
    "  exec(t, 'ROLLBACK TO SAVEPOINT ' .. sp)\n"
    "  for i = #t.after, mark + 1, -1 do t.after[i] = nil end\n"
    "  t.failed = failed\n"
    "  if not res[1] then error(res[2], 0) end\n"
    "  return nil, err, state\n"
    "end\n"
    "\n"
    "function db.tx(fn, opts)\n"
    "  if type(fn) ~= 'function' then error('db.tx expects a function', 2) end\n"
    "  local co = running()\n"
    "  if txs[co] then return nested(txs[co], fn) end\n"
    "  local begin = ISOLATION[opts and opts.isolation or 'read committed']\n"
    "  if not begin then error('db.tx: unknown isolation ' .. tostring(opts.isolation), 2) end\n"
    "  local read_only = opts and opts.read_only\n"
    "  if read_only then begin = begin .. ', READ ONLY' end\n"
    "  local err, state\n"
    "  for _ = 0, C.retries() do\n"
    "    local conn, res, ok, unsent\n"
    "    conn, err, state = C.acquire()\n"
    "    if not conn then return nil, err, state end\n"
    "    -- BEGIN (and the xid) wait in the queue for the first statement\n"
    "    local t = { conn = conn, after = {}, depth = 0, queue = { pack(begin) }, pid = C.pid(conn) }\n"
    "    if not read_only then\n"
    "      t.xid_item = pack(XID_READS)\n"
    "      t.xid_item.reads = xid_names\n"
    "      t.xid_item.on = function(rows) t.xid = rows[1].xid end\n"
    "      t.queue[2] = t.xid_item\n"
    "    end\n"
    "    txs[co] = t\n"
    "    res = pack(pcall(fn))\n"
    "    txs[co] = nil\n"
    "    if res[1] and not t.retry then\n"
    "      local sent = pack(pcall(send_commit, t, read_only))\n"
    "      ok, err, state, unsent = unpack(sent, 2, 5)\n"
    "      if not sent[1] then -- a queued statement's parameters could not be sent: raised below\n"
    "        ok, res = nil, pack(false, sent[2])\n"
    "      elseif ok and state == 'ROLLBACK' then -- an ignored error had aborted it\n"
    "        ok, err, state = nil, t.failed[1], t.failed[2]\n"
    "      end\n"
    "      if not ok and res[1] and t.xid and not unsent and not C.in_tx(conn) and state\n"
    "        and (state:sub(1, 2) == '08' or DOUBT[state]) then\n"
    "        C.release(conn)\n"
    "        conn = nil\n"
    "        local fate = outcome(t, err)\n"
    "        if fate == 'committed' then ok = true end\n"
    "        if fate == 'unknown' then err, state = '08007: outcome unknown', '08007' end\n"
    "      end\n"
    "      if ok then\n"
    "        if conn then C.release(conn) end\n"
    "        for _, f in ipairs(t.after) do\n"
    "          local fok, ferr = pcall(f)\n"
    "          if not fok then C.log_error(tostring(ferr)) end\n"
    "        end\n"
    "        return unpack(res, 2, res.n)\n"
    "      end\n"
    "    end\n"
    "    discard(t)\n"
    "    -- still open: fn raised, or a deferred statement failed before COMMIT\n"
    "    if conn and C.in_tx(conn) then exec(t, 'ROLLBACK') end\n"
    "    if conn then C.release(conn) end\n"
    "    if res and not res[1] and not t.retry then error(res[2], 0) end\n"
    "    if not t.retry then return nil, err, state end\n"
    "    err, state = t.retry[1], t.retry[2]\n"
    "  end\n"
    "  return nil, err, state\n"
    "end\n"
    "\n"
    "return db\n";

int luaopen_cc_db(lua_State *L) {
    static const luaL_Reg fns[] = {
        {"query", lua_db__l_query},       {"acquire", lua_db__l_acquire},
        {"exec", lua_db__l_exec},         {"batch", lua_db__l_batch},
        {"in_tx", lua_db__l_in_tx},
        {"pid", lua_db__l_pid},           {"release", lua_db__l_release},
        {"retries", lua_db__l_retries},   {"log_error", lua_db__l_log_error},
        {"log_warn", lua_db__l_log_warn}, {"outcome_timeout", lua_db__l_outcome_timeout},
        {NULL, NULL},
    };
    if (array_mt_ref == LUA_NOREF) {
        luaopen_cc_json(L); /* json.array_mt is one table per state, kept by json.c */
        lua_getfield(L, -1, "array_mt");
        array_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        lua_pop(L, 1);
    }
    if (luaL_loadbuffer(L, tx_chunk, sizeof tx_chunk - 1, "=host.db")) return lua_error(L);
    lua_newtable(L);
    luaL_register(L, NULL, fns);
    lua_getglobal(L, "coroutine");
    lua_getfield(L, -1, "running");
    lua_remove(L, -2);
    lua_call(L, 2, 1);
    return 1;
}
