#!/usr/bin/env bash
# Benchmark suite (`make bench`; not part of the tests): every figure beside
# a reference measured in the same run with the same pinning, printed as a
# ratio, so a figure means something on a shared, noisy machine.
#
#   1. GET /bench/ping (a small JSON body) vs nginx serving the same body,
#      with and without 4-deep pipelining;
#   2. one Redis INCR per request vs redis-benchmark -t incr;
#   3. one autocommit UPDATE … RETURNING per request vs pgbench of it;
#   4. POST /api/games/slot/spin vs pgbench of the SQL a spin runs now
#      (captured from real spins, tools/bench/pgtrace.lua + spinsql.lua) and
#      vs pgbench of a one-statement UPDATE (the floor), with what
#      PostgreSQL does per spin (pg_stat_statements, WAL); both builds'
#      hosts run this group without fixture scripts, as in production;
#   round trips: database round trips and statements per request of every
#      game play and a claim (tools/bench/trips.sh), beside the baseline's;
#   5. logins per second vs the raw argon2id verify rate (GET /bench/argon2);
#   multi-worker: the JSON and spin figures with WORKERS=2, and what limits
#      them on two cores;
#   6. the admin users search over 100 000 users, and the time a broadcast
#      takes to reach every notification socket held by two host processes.
# With BENCH_BASELINE=<commit>, that commit is built in a folder of its own,
# gets its own database (migrated by its own migrations) and Redis, and the
# JSON, Redis, PostgreSQL and spin targets run against both builds in the
# same interleaved rounds (ratio new/baseline).
#
# Method: the server under test, PostgreSQL and Redis are pinned to core 0,
# the load generator (wrk, pgbench, redis-benchmark) to core 1. PostgreSQL
# is durable (fsync, synchronous_commit on). Each target gets a warm-up and a
# fixed duration; the targets of a figure run in interleaved rounds, the
# order reversed every other round (A, B, C; C, B, A; …), and the groups
# that compare the builds restart both hosts before each round; tables print
# the median and the min–max spread, the load generator's CPU share
# (SATURATED above 90 %: the figure is then a floor) and the server side's
# CPU. A summary table in README form closes the run.
#
# Environment:
#   CCHOST            the build under test (default build/cchost)
#   BENCH_DURATION    measured run per target and round (default 4s: a full
#                     run with a baseline takes about 15 minutes)
#   BENCH_WARMUP      warm-up before each run (default 1s)
#   BENCH_ROUNDS      interleaved rounds (default 5; fewer is for trying the
#                     suite out, the figures then say little)
#   BENCH_BASELINE    a commit to compare with (e.g. abb723d); built once
#                     under BENCH_CACHE (default /var/tmp/cc-bench)
#   BENCH_ONLY        groups to run, space-separated, of: json redis pg spin
#                     trips login multi search ws (default: all)
#   BENCH_PLAYERS     pre-funded players: spin players, and the users of the
#                     notification sockets (default 1000)
#   BENCH_CAPTURE_SPINS  real spins captured for the pgbench script (60)
#   BENCH_WS_SOCKETS  notification sockets, 10 per user (default 10000: the
#                     live issue's 1 000 users x 10)
#   BENCH_OUT         a folder to keep the report, summary and the generated
#                     pgbench scripts in
# The services are private and thrown away (tools/services.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

CCHOST=$(realpath -m "${CCHOST:-build/cchost}")
DURATION=${BENCH_DURATION:-4s}
WARMUP=${BENCH_WARMUP:-1s}
ROUNDS=${BENCH_ROUNDS:-5}
BASELINE=${BENCH_BASELINE:-}
ONLY=" ${BENCH_ONLY:-json redis pg spin trips login multi search ws} "
PLAYERS=${BENCH_PLAYERS:-1000}
CAPTURE_SPINS=${BENCH_CAPTURE_SPINS:-60}
WS_SOCKETS=${BENCH_WS_SOCKETS:-10000}
WS_PER_USER=10
WS_ROUNDS=10
LOGIN_USERS=100
LOGIN_CONNS=8
BET=10
ROWS=10000
DB_POOL=10
PG_CLIENTS=$DB_POOL # pgbench clients: as many connections as the host's pool
PING_BODY='{"ok":true,"message":"pong"}'
BASE_SHA=''

# shellcheck source=tools/bench/common.sh
. tools/bench/common.sh
# shellcheck source=tools/bench/stack.sh
. tools/bench/stack.sh
# shellcheck source=tools/bench/load.sh
. tools/bench/load.sh
# shellcheck source=tools/bench/players.sh
. tools/bench/players.sh
# shellcheck source=tools/bench/figures.sh
. tools/bench/figures.sh
# shellcheck source=tools/bench/trips.sh
. tools/bench/trips.sh

tools/setup.sh --bench
[[ -x $CCHOST ]] || die "$CCHOST not found: build first (make build)"
(($(nproc) >= 2)) || die "needs two cores (servers on core 0, load generators on core 1)"
((EUID == 0)) || die "must run as root (tools/services.sh)"

tmp=$(mktemp -d /tmp/cc-bench-XXXXXX)
chmod 755 "$tmp" # the postgres user must reach the throw-away cluster
pids=()
services=''
cleanup() {
	local pid
	for pid in "${pids[@]}"; do stop_group "$pid"; done
	[[ -n ${BASE_REDIS_PID:-} ]] && kill "$BASE_REDIS_PID" 2>/dev/null
	[[ -n $services ]] && tools/services.sh destroy "$services" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
secret=$(head -c 36 /dev/urandom | base64 | tr '+/' '-_')
fixtures=$PWD/spec/fixtures/scripts
: >"$tmp/report"
: >"$tmp/summary"
started=$(date +%s)

# ------------------------------------------------------------------ setup
[[ -n $BASELINE ]] && build_baseline
say "bench: starting PostgreSQL (durable, pg_stat_statements) and Redis, pinned to core 0"
start_services
MAIN_DATABASE_URL=$DATABASE_URL
echo x >"$tmp/one"
seq 1 "$ROWS" >"$tmp/rows"
bench_rows() {
	psql -q -v ON_ERROR_STOP=1 "$1" -c "CREATE TABLE bench_rows (id int PRIMARY KEY, n bigint NOT NULL DEFAULT 0)" \
		-c "INSERT INTO bench_rows (id) SELECT generate_series(1, $ROWS)" -c "VACUUM ANALYZE bench_rows" >/dev/null
}

start_host new "$PWD" "$CCHOST" 0 1 MIGRATE_ON_START=true DB_POOL_SIZE="$DB_POOL"
bench_rows "$DATABASE_URL"
say "bench: signing up $PLAYERS players and $LOGIN_USERS login users"
signup "$new_PORT" bp 91 "$PLAYERS" "$tmp/players.tokens" 1000000000
read -r PLAYER_MIN _ < <(contiguous "$tmp/players.tokens") || die "the players' ids are not contiguous"
cut -d' ' -f2 "$tmp/players.tokens" >"$tmp/players.jwt"
signup "$new_PORT" bl 92 "$LOGIN_USERS" "$tmp/login.tokens"
seq 1 "$LOGIN_USERS" | sed 's/^/bl/' >"$tmp/login.sites"
signup "$new_PORT" ba 99 1 "$tmp/admin.tokens"
read -r admin_id ADMIN_TOKEN <"$tmp/admin.tokens"
curl -fsS -o /dev/null -X POST -H 'Content-Type: application/json' -d '{}' \
	"http://127.0.0.1:$new_PORT/test/accounts/$admin_id/admin" || die "cannot make the admin"

if [[ -n $BASELINE ]]; then
	say "bench: baseline $BASELINE ($BASE_SHA): its own database and Redis, its own migrations"
	psql -qAt -c "CREATE DATABASE casino_base OWNER casino" >/dev/null
	start_base_redis
	base_fixtures
	BASE_DATABASE_URL=${DATABASE_URL%/*}/casino_base
	start_host base "$BASE_DIR" "$BASE_BIN" 0 1 MIGRATE_ON_START=true DB_POOL_SIZE="$DB_POOL" \
		DATABASE_URL="$BASE_DATABASE_URL" REDIS_PORT="$BASE_REDIS_PORT" FIXTURE_SCRIPTS="$tmp/base-fixtures"
	bench_rows "$BASE_DATABASE_URL"
	# shellcheck disable=SC2154 # base_PORT is set by start_host (printf -v)
	signup "$base_PORT" bp 91 "$PLAYERS" "$tmp/players.base.tokens" 1000000000
	cut -d' ' -f2 "$tmp/players.base.tokens" >"$tmp/players.base.jwt"
fi

if [[ $ONLY == *" spin "* || $ONLY == *" multi "* ]]; then
	say "bench: capturing the SQL of $CAPTURE_SPINS real spins (missions finished: targets of 1)"
	mission_targets 1
	capture_spin
	mission_targets restore
	# each script must run as is before it is measured
	for ((i = 1; i < ${#SPIN_SCRIPTS[@]}; i += 2)); do
		if ! pgbench -n -M prepared -c 1 -t 3 -f "${SPIN_SCRIPTS[i]%@*}" "${SPIN_DEFS[@]}" -D seq=0 \
			-D umin="$PLAYER_MIN" -D nusers="$PLAYERS" -D stride=1 "$DATABASE_URL" >"$tmp/check.out" 2>&1 ||
			grep -qE 'aborted|error' "$tmp/check.out"; then
			cat "$tmp/check.out" "${SPIN_SCRIPTS[i]%@*}" >&2
			die "the generated pgbench script ${SPIN_SCRIPTS[i]%@*} does not run"
		fi
	done
fi

# ---------------------------------------------------------------- figures
{
	printf 'make bench: %s, %s rounds of %s (warm-up %s) per target, %s\n' "$(git rev-parse --short HEAD)" \
		"$ROUNDS" "$DURATION" "$WARMUP" "$(date -u +%Y-%m-%dT%H:%MZ)"
	printf 'build under test: %s%s\n' "$CCHOST" "${BASELINE:+; baseline: $BASELINE ($BASE_SHA), built from its own tree}"
	printf 'machine: %s cores, load average at start %s\n' "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
	((ROUNDS >= 5)) || printf 'only %s rounds: fewer than 5 is for trying the suite out\n' "$ROUNDS"
	printf 'columns: rate median (min–max over rounds), latency medians, load generator CPU (%% of one core),\n'
	printf 'server CPU: host (or nginx) / PostgreSQL / Redis, %% of one core\n'
} >>"$tmp/report"
printf '| figure | value | reference | ratio (min–max) |\n|---|---|---|---|\n' >"$tmp/summary"
[[ $ONLY == *" json "* ]] && group_json
[[ $ONLY == *" redis "* ]] && group_redis
[[ $ONLY == *" pg "* ]] && group_pg
[[ $ONLY == *" spin "* ]] && group_spin
[[ $ONLY == *" trips "* ]] && group_trips
[[ $ONLY == *" login "* ]] && group_login
[[ $ONLY == *" multi "* ]] && group_multi
[[ $ONLY == *" search "* ]] && group_admin_search
[[ $ONLY == *" ws "* ]] && group_ws
DATABASE_URL=$MAIN_DATABASE_URL

{
	printf '\nSummary (median of %s interleaved rounds; ratio spread = min–max of the per-round ratios):\n\n' "$ROUNDS"
	cat "$tmp/summary"
	printf '\n(%s s in all)\n' "$(($(date +%s) - started))"
} >>"$tmp/report"
cat "$tmp/report"
if [[ -n ${BENCH_OUT:-} ]]; then
	mkdir -p "$BENCH_OUT"
	cp "$tmp/report" "$tmp/summary" "$BENCH_OUT/"
fi
