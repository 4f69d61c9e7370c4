#!/usr/bin/env bash
# drill.sh - `make drill` (not part of the tests; a short one is, in
# spec/integration/drill_spec.lua): the fault drill of tools/drill.lua. It
# starts a private, durable PostgreSQL and Redis in a temporary folder, two
# hosts in the production profile and HAProxy with docker/haproxy.cfg, runs
# DRILL_USERS players through HAProxy for DRILL_DURATION seconds while it
# kills a worker, restarts PostgreSQL, restarts Redis and kills a whole host,
# then checks the money invariants and the answers. It prints throughput and
# p50/p99 per endpoint and exits 1 when an invariant is violated.
#
# Environment: DRILL_DURATION (seconds, default 120), DRILL_USERS (50),
# DRILL_THINK_MS (mean pause between a player's requests, 60), DRILL_WORKERS
# (per host, 2), DRILL_CHECK_INTER (HAProxy health check interval, 500ms),
# DRILL_KEEP=1 (keep the temporary folder: logs, HAProxy log; a failed run
# always keeps it), DRILL_FAULTS (which faults, default
# "worker,pg,redis,host"), DRILL_ON_SLOW (a shell command run once, with
# DRILL_DIR set, when a request has waited 8 s: to inspect a hang while it
# lasts), TMPDIR (where the temporary folder goes), CCHOST_BIN (default
# build/cchost, built when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
if [[ -z ${CCHOST_BIN:-} ]]; then
	tools/build.sh
	export CCHOST_BIN=build/cchost
fi
# The drill brings its own services: the caller's must not leak into the
# hosts it starts.
unset DATABASE_URL PGHOST PGPORT PGUSER REDIS_HOST REDIS_PORT
LUA_PATH="./?.lua;;" exec luajit tools/drill.lua
