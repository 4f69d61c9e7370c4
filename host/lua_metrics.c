/* lua_metrics.c - the host's metrics for Lua (module "cc.metrics").
 *
 *   add(name, labels, n)    adds n (an integer >= 0, default 1) to the
 *                           series of counter family `name` (the table in
 *                           metrics.c) with the values of `labels`: nil for
 *                           a family without labels, else a table with
 *                           exactly the family's label names, each a string
 *                           or number of at most METRICS_MAX_LABEL bytes.
 *                           Raises on anything else (a script bug: an
 *                           unknown family, a missing or extra label). In a
 *                           process without the shared segment (a tool) it
 *                           checks its arguments and counts nothing.
 *   render([values]) -> text  the Prometheus text of the whole host;
 *                           values holds what the scrape read itself for the
 *                           gauge families ({cc_outbox_pending = 3}; an
 *                           absent one is left out). Raises without the
 *                           segment.
 * add does no I/O and allocates nothing in Lua; its first call for a label
 * set registers the series (metrics_series), later ones hit a cache. */
#include "lua_metrics.h"

#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>

#include "metrics.h"

static int lua_metrics__add(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    int family = metrics_family(name);
    if (!metrics_family_is_counter(family)) return luaL_error(L, "metrics.add: no counter family '%s'", name);
    lua_Number n = luaL_optnumber(L, 3, 1);
    luaL_argcheck(L, n >= 0 && n == floor(n) && n <= 9007199254740992.0, 3, "must be an integer >= 0");
    if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
    const char *const *names = metrics_family_labels(family);
    const char *values[2];
    size_t lens[2];
    int nlabels = 0;
    for (; names[nlabels]; nlabels++) {
        int t = lua_istable(L, 2) ? (lua_getfield(L, 2, names[nlabels]), lua_type(L, -1)) : LUA_TNIL;
        if (t != LUA_TSTRING && t != LUA_TNUMBER)
            return luaL_error(L, "metrics.add: %s needs label '%s' (a string)", name, names[nlabels]);
        values[nlabels] = lua_tolstring(L, -1, &lens[nlabels]); /* converts the stack copy, not the table */
        if (lens[nlabels] > METRICS_MAX_LABEL)
            return luaL_error(L, "metrics.add: label '%s' is longer than %d bytes", names[nlabels], METRICS_MAX_LABEL);
    }
    if (lua_istable(L, 2)) {
        int keys = 0;
        for (lua_pushnil(L); lua_next(L, 2); lua_pop(L, 1)) keys++;
        if (keys != nlabels) return luaL_error(L, "metrics.add: %s takes %d label(s), got %d", name, nlabels, keys);
    }
    metrics_series_add(metrics_series(family, values, lens), (uint64_t)n);
    return 0;
}

static int lua_metrics__render(lua_State *L) {
    double scraped[32];
    int nf = metrics_families();
    if (nf > (int)(sizeof scraped / sizeof *scraped)) return luaL_error(L, "metrics.render: too many families");
    if (!lua_isnoneornil(L, 1)) luaL_checktype(L, 1, LUA_TTABLE);
    for (int f = 0; f < nf; f++) {
        scraped[f] = NAN;
        if (metrics_family_is_counter(f) || !lua_istable(L, 1)) continue;
        lua_getfield(L, 1, metrics_family_name(f));
        if (lua_type(L, -1) == LUA_TNUMBER) scraped[f] = lua_tonumber(L, -1);
        lua_pop(L, 1);
    }
    size_t len = 0;
    char *text = metrics_render(scraped, &len);
    if (!text) return luaL_error(L, "metrics.render: no metrics in this process (or out of memory)");
    lua_pushlstring(L, text, len);
    free(text);
    return 1;
}

int luaopen_cc_metrics(lua_State *L) {
    static const luaL_Reg fns[] = {{"add", lua_metrics__add}, {"render", lua_metrics__render}, {NULL, NULL}};
    lua_newtable(L);
    luaL_register(L, NULL, fns);
    return 1;
}
