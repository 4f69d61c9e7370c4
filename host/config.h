/* config.h - the effective settings: config/settings.lua, .env, environment.
 *
 * Loaded once by the master before it forks, so every worker inherits the
 * same values. A setting's key is its environment name. Values are validated
 * against their declared type at load; accessors never fail for a declared
 * name and abort on an undeclared one (a programming error). */
#ifndef CCHOST_CONFIG_H
#define CCHOST_CONFIG_H

#include <stdio.h>

typedef enum { CFG_STRING, CFG_INT, CFG_NUMBER, CFG_BOOL, CFG_DURATION, CFG_ENUM } config_type_t;

typedef struct {
    char *name, *unit, *description, *value, *source;
    config_type_t type;
    int secret;
    double num; /* parsed value of int, number, duration and bool settings */
} config_setting_t;

/* Loads the declarations from settings_file, then dotenv (skipped when NULL
 * or absent), then the environment. Returns 0, or -1 with a message in err
 * naming the setting and the problem. */
int config_load(const char *settings_file, const char *dotenv, char *err, size_t errlen);

/* Checks what serving needs (a usable JWT secret for the profile, fixtures
 * only outside production). 0, or -1 with a message in err. */
int config_check_serve(char *err, size_t errlen);

const char *config_str(const char *name);
double config_num(const char *name);
int config_bool(const char *name);
int config_is_production(void);

int config_count(void);
const config_setting_t *config_at(int i);

/* Prints NAME=value (source, type, description) lines, secrets masked. */
void config_print(FILE *out);

#endif
