#!/usr/bin/env bash
# run.sh - `make run`: install what is missing, build, start the local
# PostgreSQL and Redis (data kept under var/, or in the folder that
# var/data/pg-location names when postgres cannot reach the checkout), and
# serve the API on PORT (default 8000) in the development profile.
# Ctrl-C drains the host, then stops the services this script started.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
tools/build.sh
mkdir -p var
tools/services.sh start var/data var/services.env
trap 'tools/services.sh stop var/data' EXIT
set -a
# shellcheck disable=SC1091
. var/services.env
set +a
# The development profile needs a JWT secret: generate one once and keep it.
if [ ! -s var/jwt_secret ]; then
  umask 077
  head -c 48 /dev/urandom | base64 | tr -d '\n/+=' > var/jwt_secret
fi
export APP_PROFILE="${APP_PROFILE:-development}"
export JWT_SECRET_KEY="${JWT_SECRET_KEY:-$(cat var/jwt_secret)}"
export PORT="${PORT:-8000}"
echo "serving on http://127.0.0.1:${PORT}, API docs on /docs and /redoc (Ctrl-C stops)"
# Not exec: the trap must stop the services after the host exits.
build/cchost serve &
host=$!
trap 'kill -TERM "$host" 2>/dev/null || true' INT TERM
wait "$host" || true
wait "$host" 2>/dev/null || true
