/* main.c - `cchost`: subcommand dispatch.
 *
 * Every subcommand loads the settings first (config/settings.lua, .env, the
 * environment), so `cchost config` shows exactly what `serve` would use.
 * Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "master.h"
#include "migrate.h"
#include "tool.h"

static void main__usage(FILE *out) {
    fprintf(out,
            "usage: cchost [serve|migrate|admin|rtp|verify|routes|openapi|config|help]\n"
            "  serve   run the HTTP host (default): a master and WORKERS worker processes\n"
            "  migrate apply MIGRATIONS_DIR to DATABASE_URL (--status, --check, --dir DIR)\n"
            "  admin create --site-id ID --nickname NAME --phone PHONE\n"
            "          create an admin, or promote an existing site_id; the password comes from\n"
            "          ADMIN_PASSWORD or the first line of standard input (never an argument)\n"
            "  rtp     print each game's exact RTP, hit frequency, deviation and a seeded\n"
            "          simulation (--plays N, --seed S)\n"
            "  verify  re-derive a play's outcome from revealed seeds (--game G --server-seed S\n"
            "          --client-seed C --nonce N)\n"
            "  routes  print the route table of the scripts (--json: all of it, as specs read it)\n"
            "  openapi print the OpenAPI 3.1 document, the bytes GET /openapi.json serves under\n"
            "          the same settings (needs neither PostgreSQL nor Redis)\n"
            "  config  print the effective settings (secrets masked) and exit; --markdown: every\n"
            "          setting with its defaults as the README's table\n"
            "  help    this text\n"
            "Settings come from config/settings.lua defaults, then ./.env, then the environment;\n"
            "CONFIG_DIR names the folder holding settings.lua (default ./config).\n"
            "Signals to the serving master: SIGHUP reloads the scripts, SIGTERM/SIGINT drain and stop.\n"
            "Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.\n");
}

int main(int argc, char **argv) {
    const char *cmd = argc > 1 ? argv[1] : "serve";
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        main__usage(stdout);
        return 0;
    }
    char path[4096], err[2048];
    const char *dir = getenv("CONFIG_DIR") ? getenv("CONFIG_DIR") : "config";
    snprintf(path, sizeof path, "%s/settings.lua", dir);
    if (config_load(path, ".env", err, sizeof err) < 0) {
        fprintf(stderr, "cchost: configuration: %s\n", err);
        return 2;
    }
    if (strcmp(cmd, "config") == 0 && argc > 2 && strcmp(argv[2], "--markdown") == 0)
        return tool_run("config-markdown", 0, argv + 3, NULL);
    if (strcmp(cmd, "config") == 0) {
        config_print(stdout);
        return 0;
    }
    if (strcmp(cmd, "migrate") == 0) return migrate_main(argc - 2, argv + 2);
    if (strcmp(cmd, "rtp") == 0 || strcmp(cmd, "verify") == 0 || strcmp(cmd, "routes") == 0 ||
        strcmp(cmd, "openapi") == 0)
        return tool_run(cmd, argc - 2, argv + 2, NULL);
    if (strcmp(cmd, "admin") == 0 && argc > 2 && strcmp(argv[2], "create") == 0) {
        char pw[1024] = "";
        const char *env = getenv("ADMIN_PASSWORD");
        if (env) snprintf(pw, sizeof pw, "%s", env);
        else if (fgets(pw, sizeof pw, stdin)) pw[strcspn(pw, "\r\n")] = 0;
        int rc = tool_run("admin-create", argc - 3, argv + 3, pw);
        memset(pw, 0, sizeof pw);
        return rc;
    }
    if (strcmp(cmd, "serve") == 0) {
        if (config_check_serve(err, sizeof err) < 0) {
            fprintf(stderr, "cchost: refusing to start: %s\n", err);
            return 2;
        }
        /* Migrate (development) or verify (production) before any worker
         * exists, so no request ever sees a half-migrated schema. Progress
         * goes to stderr: stdout carries the JSON log. */
        const char *url = config_str("DATABASE_URL"), *dir = config_str("MIGRATIONS_DIR");
        if (*url && (config_bool("MIGRATE_ON_START") ? migrate_apply(url, dir, stderr, err, sizeof err)
                                                     : migrate_check(url, dir, err, sizeof err)) < 0) {
            fprintf(stderr, "cchost: refusing to start: %s\n", err);
            return 1;
        }
        return master_run();
    }
    fprintf(stderr, "cchost: unknown command '%s'\n", cmd);
    main__usage(stderr);
    return 2;
}
