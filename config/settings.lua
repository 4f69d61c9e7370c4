-- Every setting of Casino-Club F2P, in one place.
--
-- A setting's key is its environment name. The host reads this table at
-- start (`cchost config` prints the effective values, secrets masked), then
-- applies `.env` (if present in the working folder) and the environment, in
-- that order, so a real environment variable always wins.
--   type:        string | int | number | bool | duration (fractions allowed,
--                in `unit`) | enum (with `values`)
--   default:     the production default; `development` overrides it in the
--                development profile (APP_PROFILE=development).
--   secret:      masked when printed and never logged.
-- Game rules are not here: they live in scripts/games/*.lua (CONTRACT.md §17).
return {
  -- Profile and process model
  { name = "APP_PROFILE", type = "enum", values = { "development", "production" }, default = "production",
    description = "development: dev defaults, file watcher, fixtures allowed; production: strict secrets" },
  { name = "WORKERS", type = "int", default = 0, min = 0, max = 256,
    description = "worker processes (0 = one per CPU core)" },
  { name = "HOST", type = "string", default = "0.0.0.0", development = "127.0.0.1",
    description = "address the HTTP listeners bind" },
  { name = "PORT", type = "int", default = 8000, min = 0, max = 65535,
    description = "HTTP port (0 = any free port, see READY_FILE)" },
  { name = "READY_FILE", type = "string", default = "",
    description = "file the master writes the bound port to once every worker accepts" },
  { name = "WORKERS_FILE", type = "string", default = "",
    description = "file the master keeps the worker pids in, one per line" },
  { name = "SCRIPTS_DIR", type = "string", default = "scripts",
    description = "folder of the Lua scripts (routes/, domain/, games/, lib/, host/)" },
  { name = "FIXTURE_SCRIPTS", type = "string", default = "",
    description = "test-only scripts folder loaded on top of SCRIPTS_DIR (refused in production)" },
  { name = "WATCHDOG_S", type = "duration", unit = "s", default = 10, min = 0.5,
    description = "a worker whose event loop has not ticked this long is killed and respawned" },
  { name = "DRAIN_TIMEOUT_S", type = "duration", unit = "s", default = 30, min = 0,
    description = "on SIGTERM, how long in-flight requests may take before workers exit" },
  { name = "RELOAD_WATCH", type = "bool", default = false, development = true,
    description = "reload the scripts when a file under SCRIPTS_DIR changes" },
  { name = "RELOAD_DEBOUNCE_MS", type = "duration", unit = "ms", default = 200, min = 0,
    description = "quiet time after the last file change before the watcher reloads" },
  { name = "LOG_LEVEL", type = "enum", values = { "debug", "info", "warn", "error" }, default = "info",
    description = "lowest level of log line written (access lines are info)" },

  -- HTTP limits
  { name = "MAX_HEADER_BYTES", type = "int", unit = "bytes", default = 16384, min = 1024,
    description = "request line and headers larger than this get 431" },
  { name = "MAX_BODY_BYTES", type = "int", unit = "bytes", default = 1048576, min = 0,
    description = "request bodies larger than this get 413" },
  { name = "HEADER_TIMEOUT_S", type = "duration", unit = "s", default = 10, min = 0.01,
    description = "time to receive a request's headers before 408 and close" },
  { name = "KEEPALIVE_TIMEOUT_S", type = "duration", unit = "s", default = 60, min = 0.01,
    description = "idle keep-alive connections are closed after this" },
  { name = "MAX_CONNECTIONS", type = "int", default = 10000, min = 1,
    description = "open connections per worker; beyond it new ones are closed at once" },
  { name = "CORS_ORIGINS", type = "string",
    default = "http://localhost:3000,https://localhost:3000,http://127.0.0.1:3000,https://127.0.0.1:3000",
    description = "comma-separated origins allowed by CORS (credentials allowed)" },
  { name = "TRUSTED_PROXIES", type = "string", default = "",
    description = "comma-separated proxy addresses whose X-Forwarded-For is trusted" },
  { name = "STATIC_MOUNTS", type = "string",
    default = "/docs=tools/docs/swagger,/redoc=tools/docs/redoc,/docs/vendor=var/docs/node_modules;immutable,"
      .. "/console=scripts/console;csp,/console/vendor=var/docs/node_modules;immutable",
    description = "folders the host serves as static files, without Lua: comma list of "
      .. "URL_PREFIX=FOLDER[;immutable][;csp] (relative to the working folder; ;immutable: versioned files that "
      .. "browsers may cache for a year; ;csp: an application served with a strict Content-Security-Policy)" },

  -- Connections
  { name = "DATABASE_URL", type = "string", default = "", secret = true,
    description = "PostgreSQL connection URI" },
  { name = "DB_POOL_SIZE", type = "int", default = 10, min = 1,
    description = "PostgreSQL connections per worker" },
  { name = "DB_POOL_TIMEOUT_MS", type = "duration", unit = "ms", default = 5000, min = 1,
    description = "how long a query waits for a free pooled connection before 'pool timeout'" },
  { name = "DB_STATEMENT_TIMEOUT_MS", type = "duration", unit = "ms", default = 30000, min = 0,
    description = "PostgreSQL statement_timeout of every pooled connection (0 = none)" },
  { name = "DB_CONNECT_TIMEOUT_MS", type = "duration", unit = "ms", default = 5000, min = 1,
    description = "time allowed to open one PostgreSQL connection" },
  { name = "DB_TX_RETRIES", type = "int", default = 5, min = 0, max = 100,
    description = "retries of a transaction after a serialization failure or deadlock" },
  { name = "COMMIT_OUTCOME_TIMEOUT_MS", type = "duration", unit = "ms", default = 5000, min = 0,
    description = "how long db.tx asks whether a COMMIT whose answer was lost committed, before 'outcome unknown'" },
  { name = "MIGRATIONS_DIR", type = "string", default = "migrations",
    description = "folder of the NNNN_name.sql migrations" },
  { name = "MIGRATE_ON_START", type = "bool", default = false, development = true,
    description = "apply pending migrations when serve starts (production checks only)" },
  { name = "REDIS_HOST", type = "string", default = "redis", description = "Redis host" },
  { name = "REDIS_PORT", type = "int", default = 6379, min = 1, max = 65535, description = "Redis port" },
  { name = "REDIS_PASSWORD", type = "string", default = "", secret = true, description = "Redis password" },
  { name = "REDIS_COMMAND_TIMEOUT_MS", type = "duration", unit = "ms", default = 1000, min = 1,
    description = "deadline of one Redis command; past it the call fails with 'redis timeout'" },
  { name = "REDIS_CONNECT_TIMEOUT_MS", type = "duration", unit = "ms", default = 1000, min = 1,
    description = "time allowed to connect to Redis before backing off" },

  -- Tokens
  { name = "JWT_SECRET_KEY", type = "string", default = "", secret = true,
    description = "HS256 key; required (production: 32+ bytes, not the placeholder)" },
  { name = "JWT_EXPIRE_MINUTES", type = "duration", unit = "min", default = 30, min = 0.01,
    description = "access token lifetime" },
  { name = "REFRESH_TOKEN_EXPIRE_DAYS", type = "duration", unit = "d", default = 30, min = 0.0001,
    description = "refresh token lifetime from issue" },
  { name = "MAX_CONCURRENT_SESSIONS", type = "int", default = 1, min = 0,
    description = "active sessions per user (0 = unlimited); the oldest are superseded" },

  -- Passwords and lockout
  { name = "PASSWORD_MIN_LENGTH", type = "int", default = 8, min = 1, max = 128,
    description = "shortest accepted password, in characters" },
  { name = "ARGON2_MEMORY_KIB", type = "int", unit = "KiB", default = 19456, min = 8,
    description = "argon2id memory cost" },
  { name = "ARGON2_ITERATIONS", type = "int", default = 2, min = 1, description = "argon2id passes" },
  { name = "LOGIN_MAX_FAILED_ATTEMPTS", type = "int", default = 5, min = 1,
    description = "failed logins per site_id before the lockout" },
  { name = "LOGIN_LOCKOUT_MINUTES", type = "duration", unit = "min", default = 10, min = 0,
    description = "window of counted failures per site_id" },
  { name = "LOGIN_IP_MAX_FAILED_ATTEMPTS", type = "int", default = 50, min = 1,
    description = "failed logins per client IP before 429" },
  { name = "LOGIN_IP_WINDOW_MINUTES", type = "duration", unit = "min", default = 10, min = 0,
    description = "window of counted failures per client IP" },

  -- Wallet
  { name = "INITIAL_TOKENS", type = "int", default = 200, min = 0, description = "tokens granted at signup" },
  { name = "INITIAL_GOLD", type = "int", default = 0, min = 0, description = "gold granted at signup" },
  { name = "INITIAL_GEMS", type = "int", default = 0, min = 0, description = "gems granted at signup" },
  { name = "INITIAL_EXP", type = "int", default = 0, min = 0, description = "experience granted at signup" },
  { name = "LEVEL_EXP_STEP", type = "int", default = 1000, min = 1, description = "experience per level" },
  { name = "IDEMPOTENCY_TTL_HOURS", type = "duration", unit = "h", default = 24, min = 0.001,
    description = "how long Idempotency-Key records are kept" },

  -- Switches
  { name = "DEV_TOKEN_GRANT", type = "bool", default = false, development = true,
    description = "enables POST /api/users/tokens/add" },
  { name = "DEBUG_ROUTES", type = "bool", default = false, development = true,
    description = "enables debug routes such as /api/games/crash/debug/current" },

  -- Crash
  { name = "CRASH_DB_STRICT", type = "bool", default = false,
    description = "crash_sessions/crash_bets rows are part of the money transaction" },
  { name = "CRASH_SWEEP_INTERVAL_MS", type = "duration", unit = "ms", default = 1000, min = 1,
    description = "how often the crash sweeper runs" },
  { name = "CRASH_SWEEP_GRACE_MS", type = "duration", unit = "ms", default = 2000, min = 0,
    description = "time after the crash before the sweeper settles a round" },
  { name = "CRASH_RESULT_TTL_S", type = "duration", unit = "s", default = 300, min = 1,
    description = "how long a sweeper result waits to be reported" },

  -- Admin console
  { name = "ADMIN_STATS_CACHE_S", type = "duration", unit = "s", default = 5, min = 0,
    description = "how long GET /api/admin/stats answers from its Redis copy (0: always computed)" },

  -- Missions
  { name = "DAILY_RESET_TIME", type = "string", default = "00:00", description = "daily mission reset (HH:MM)" },
  { name = "RESET_UTC_OFFSET", type = "string", default = "+09:00", description = "zone of the reset times" },
  { name = "WEEKLY_RESET_WEEKDAY", type = "int", default = 1, min = 1, max = 7,
    description = "weekly reset day (1 = Monday)" },

  -- WebSocket
  { name = "WS_PING_INTERVAL_S", type = "duration", unit = "s", default = 25, min = 0.01,
    description = "server ping interval" },
  { name = "WS_IDLE_TIMEOUT_S", type = "duration", unit = "s", default = 60, min = 0.01,
    description = "sockets silent this long are closed with 1001" },
  { name = "WS_MAX_SOCKETS_PER_USER", type = "int", default = 10, min = 1,
    description = "sockets per user; opening another closes the oldest" },
  { name = "WS_MAX_MESSAGE_BYTES", type = "int", unit = "bytes", default = 4096, min = 125,
    description = "largest client message after reassembly; beyond it the socket closes with 1009" },
  { name = "WS_MAX_OUTPUT_BYTES", type = "int", unit = "bytes", default = 1048576, min = 4096,
    description = "bytes queued to one slow socket before it is closed with 1008" },

  -- Event stream
  { name = "OUTBOX_RELAY_INTERVAL_MS", type = "duration", unit = "ms", default = 200, min = 1,
    description = "outbox relay period" },
  { name = "STREAM_MAXLEN", type = "int", default = 100000, min = 1, description = "approximate stream length cap" },

  -- Bootstrap
  { name = "BOOTSTRAP_ADMIN_SITE_ID", type = "string", default = "", description = "first admin's site_id" },
  { name = "BOOTSTRAP_ADMIN_PASSWORD", type = "string", default = "", secret = true,
    description = "first admin's password" },
  { name = "BOOTSTRAP_ADMIN_NICKNAME", type = "string", default = "", description = "first admin's nickname (site_id when empty)" },
  { name = "BOOTSTRAP_ADMIN_PHONE", type = "string", default = "0000000000", description = "first admin's phone" },
}
