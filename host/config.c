/* config.c - the effective settings: config/settings.lua, .env, environment.
 *
 * The declarations live in one Lua table so operators and the README read
 * the same source the host enforces. A plain LuaJIT state (no sandbox needed:
 * the file is part of the deployment, not of the hot-reloaded scripts) reads
 * it once; values are kept as strings plus a parsed number, and the master's
 * copy is inherited by every forked worker. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

static config_setting_t *settings;
static int nsettings;
static int profile_dev;

static char *config__dup_field(lua_State *L, int idx, const char *key) {
    lua_getfield(L, idx, key);
    const char *s = lua_isstring(L, -1) ? lua_tostring(L, -1) : NULL;
    char *r = s ? strdup(s) : NULL;
    lua_pop(L, 1);
    return r;
}

static config_setting_t *config__find(const char *name) {
    for (int i = 0; i < nsettings; i++)
        if (strcmp(settings[i].name, name) == 0) return &settings[i];
    return NULL;
}

static const config_setting_t *config__must_find(const char *name) {
    const config_setting_t *s = config__find(name);
    if (!s) {
        fprintf(stderr, "config: undeclared setting %s\n", name);
        abort();
    }
    return s;
}

/* Per-setting declaration data not exposed in config_setting_t: enum values
 * as "|a|b|", and numeric bounds. */
static char **enum_values;
static double *mins, *maxs;

static int config__parse_bool(const char *v, double *out) {
    static const char *yes[] = {"1", "true", "True", "TRUE", "yes", "on", NULL};
    static const char *no[] = {"0", "false", "False", "FALSE", "no", "off", "", NULL};
    for (int i = 0; yes[i]; i++)
        if (strcmp(v, yes[i]) == 0) return *out = 1, 0;
    for (int i = 0; no[i]; i++)
        if (strcmp(v, no[i]) == 0) return *out = 0, 0;
    return -1;
}

/* Parses and range-checks one value; bounds come from the declaration. */
static int config__set_value(int i, const char *v, const char *source, double lo, double hi, char *err, size_t errlen) {
    config_setting_t *s = &settings[i];
    double num = 0;
    char *end;
    switch (s->type) {
    case CFG_STRING:
        break;
    case CFG_ENUM: {
        char probe[256];
        snprintf(probe, sizeof probe, "|%s|", v);
        if (!*v || !strstr(enum_values[i], probe)) {
            snprintf(err, errlen, "%s=%s (%s): must be one of %s", s->name, v, source, enum_values[i]);
            return -1;
        }
        break;
    }
    case CFG_BOOL:
        if (config__parse_bool(v, &num) < 0) {
            snprintf(err, errlen, "%s=%s (%s): expected a boolean (1/0/true/false)", s->name, v, source);
            return -1;
        }
        break;
    case CFG_INT:
    case CFG_NUMBER:
    case CFG_DURATION:
        errno = 0;
        num = strtod(v, &end);
        while (isspace((unsigned char)*end)) end++;
        if (!*v || *end || errno || num != num) {
            snprintf(err, errlen, "%s=%s (%s): expected a number", s->name, v, source);
            return -1;
        }
        if (s->type == CFG_INT && num != (double)(long long)num) {
            snprintf(err, errlen, "%s=%s (%s): expected a whole number", s->name, v, source);
            return -1;
        }
        if (num < lo || num > hi) {
            snprintf(err, errlen, "%s=%s (%s): must be between %g and %g", s->name, v, source, lo, hi);
            return -1;
        }
        break;
    }
    free(s->value);
    s->value = strdup(v);
    s->source = (char *)source;
    s->num = num;
    return 0;
}

/* Reads KEY=VALUE lines; '#' comments, optional `export `, optional quotes. */
static int config__apply_dotenv(const char *path, char *err, size_t errlen) {
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f) return 0;
    char line[4096];
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        char *p = line;
        while (isspace((unsigned char)*p)) p++;
        if (*p == '#' || !*p) continue;
        if (strncmp(p, "export ", 7) == 0) p += 7;
        char *eq = strchr(p, '=');
        if (!eq) continue;
        *eq = 0;
        char *k = p, *v = eq + 1, *ke = eq;
        while (ke > k && isspace((unsigned char)ke[-1])) *--ke = 0;
        size_t vl = strlen(v);
        while (vl && (v[vl - 1] == '\n' || v[vl - 1] == '\r')) v[--vl] = 0;
        if (vl >= 2 && (v[0] == '"' || v[0] == '\'') && v[vl - 1] == v[0]) v[vl - 1] = 0, v++;
        config_setting_t *s = config__find(k);
        if (s && !getenv(k)) rc = config__set_value((int)(s - settings), v, ".env", mins[s - settings], maxs[s - settings], err, errlen);
    }
    fclose(f);
    return rc;
}

int config_load(const char *settings_file, const char *dotenv, char *err, size_t errlen) {
    lua_State *L = luaL_newstate();
    if (!L) return snprintf(err, errlen, "out of memory"), -1;
    luaL_openlibs(L);
    if (luaL_dofile(L, settings_file) || !lua_istable(L, -1)) {
        snprintf(err, errlen, "%s: %s", settings_file, lua_isstring(L, -1) ? lua_tostring(L, -1) : "must return a table");
        lua_close(L);
        return -1;
    }
    int n = (int)lua_objlen(L, -1);
    settings = calloc((size_t)n, sizeof *settings);
    enum_values = calloc((size_t)n, sizeof *enum_values);
    mins = calloc((size_t)n, sizeof *mins);
    maxs = calloc((size_t)n, sizeof *maxs);
    nsettings = n;
    static const char *types[] = {"string", "int", "number", "bool", "duration", "enum"};
    /* Pass 1: declarations. */
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, -1, i + 1);
        int t = lua_gettop(L);
        config_setting_t *s = &settings[i];
        s->name = config__dup_field(L, t, "name");
        char *type = config__dup_field(L, t, "type");
        s->unit = config__dup_field(L, t, "unit");
        s->description = config__dup_field(L, t, "description");
        lua_getfield(L, t, "secret");
        s->secret = lua_toboolean(L, -1);
        lua_getfield(L, t, "min");
        mins[i] = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : -1e300;
        lua_getfield(L, t, "max");
        maxs[i] = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : 1e300;
        lua_pop(L, 3);
        int ti = -1;
        for (int k = 0; type && k < 6; k++)
            if (strcmp(type, types[k]) == 0) ti = k;
        free(type);
        if (!s->name || ti < 0 || !s->description) {
            snprintf(err, errlen, "%s: entry %d needs name, a known type and description", settings_file, i + 1);
            lua_close(L);
            return -1;
        }
        s->type = (config_type_t)ti;
        char buf[512] = "|";
        lua_getfield(L, t, "values");
        for (int k = 1; lua_istable(L, -1) && k <= (int)lua_objlen(L, -1); k++) {
            lua_rawgeti(L, -1, k);
            strncat(buf, lua_tostring(L, -1), sizeof buf - strlen(buf) - 2);
            strcat(buf, "|");
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
        enum_values[i] = strdup(buf);
        lua_pop(L, 1);
    }
    /* The profile decides which defaults apply, so it is resolved first. */
    const char *profile = getenv("APP_PROFILE");
    char dotprofile[64] = "";
    if (!profile && dotenv) {
        FILE *f = fopen(dotenv, "r");
        char line[512];
        while (f && fgets(line, sizeof line, f))
            if (sscanf(line, " APP_PROFILE = %63[A-Za-z]", dotprofile) == 1 ||
                sscanf(line, " export APP_PROFILE = %63[A-Za-z]", dotprofile) == 1)
                profile = dotprofile;
        if (f) fclose(f);
    }
    profile_dev = profile && strcmp(profile, "development") == 0;
    /* Pass 2: defaults for the profile. */
    int rc = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        lua_rawgeti(L, -1, i + 1);
        lua_getfield(L, -1, profile_dev ? "development" : "default");
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            lua_getfield(L, -1, "default");
        }
        const char *v;
        if (lua_isboolean(L, -1))
            v = lua_toboolean(L, -1) ? "true" : "false";
        else
            v = lua_isstring(L, -1) ? lua_tostring(L, -1) : "";
        rc = config__set_value(i, v, "default", -1e300, 1e300, err, errlen);
        lua_pop(L, 2);
    }
    lua_close(L);
    if (rc == 0) rc = config__apply_dotenv(dotenv, err, errlen);
    for (int i = 0; rc == 0 && i < n; i++) {
        const char *v = getenv(settings[i].name);
        if (v) rc = config__set_value(i, v, "env", mins[i], maxs[i], err, errlen);
    }
    return rc;
}

int config_check_serve(char *err, size_t errlen) {
    const char *secret = config_str("JWT_SECRET_KEY");
    if (!*secret) return snprintf(err, errlen, "JWT_SECRET_KEY is empty: set a secret"), -1;
    if (!profile_dev) {
        if (strcmp(secret, "your-secret-key-here") == 0)
            return snprintf(err, errlen, "JWT_SECRET_KEY is the placeholder: set a real secret"), -1;
        if (strlen(secret) < 32)
            return snprintf(err, errlen, "JWT_SECRET_KEY is shorter than 32 bytes (production profile)"), -1;
        if (*config_str("FIXTURE_SCRIPTS"))
            return snprintf(err, errlen, "FIXTURE_SCRIPTS is refused in the production profile"), -1;
    }
    return 0;
}

const char *config_str(const char *name) { return config__must_find(name)->value; }
double config_num(const char *name) { return config__must_find(name)->num; }
int config_bool(const char *name) { return config__must_find(name)->num != 0; }
int config_is_production(void) { return !profile_dev; }
int config_count(void) { return nsettings; }
const config_setting_t *config_at(int i) { return i >= 0 && i < nsettings ? &settings[i] : NULL; }

void config_print(FILE *out) {
    static const char *types[] = {"string", "int", "number", "bool", "duration", "enum"};
    for (int i = 0; i < nsettings; i++) {
        const config_setting_t *s = &settings[i];
        const char *v = s->secret && *s->value ? "********" : s->value;
        fprintf(out, "%s=%s\t# %s%s%s%s, %s; %s\n", s->name, v, types[s->type], s->unit ? " (" : "",
                s->unit ? s->unit : "", s->unit ? ")" : "", s->source, s->description);
    }
}
