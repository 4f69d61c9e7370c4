# shellcheck shell=bash disable=SC2034,SC2153,SC2154
# (globals are shared with tools/bench.sh and the other files it sources;
# start_host sets <name>_PORT and <name>_PGID by name)
# stack.sh - the servers of the benchmark (sourced by tools/bench.sh):
# PostgreSQL and Redis, host processes, nginx, and the baseline build.
#
# PostgreSQL runs durable, as in production: fsync and synchronous_commit
# on (tools/services.sh without CC_PG_FAST), with pg_stat_statements
# preloaded (the per-spin statement and WAL figures come from it). Redis
# keeps no snapshot (CC_REDIS_EPHEMERAL: it is a cache here). Both are pinned
# to core 0 with the host under test; load generators run on core 1.

# Starts PostgreSQL and Redis; sets DATABASE_URL & co, PG_PID, REDIS_PIDS.
start_services() {
	services=$tmp/services
	CC_REDIS_EPHEMERAL=1 tools/services.sh start "$services" "$tmp/services.env" 2>/dev/null
	set -a
	# shellcheck disable=SC1091
	. "$tmp/services.env"
	set +a
	# pg_stat_statements needs a preload, hence a restart (ALTER SYSTEM
	# survives it; services.sh starts the cluster again with its options).
	psql -qAt -c "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'" \
		-c "ALTER SYSTEM SET max_connections = 300" >/dev/null
	tools/services.sh stop "$services" >/dev/null
	CC_REDIS_EPHEMERAL=1 tools/services.sh start "$services" "$tmp/services.env" 2>/dev/null
	psql -qAt -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
	[[ $(psql -qAt -c "SELECT current_setting('fsync') || current_setting('synchronous_commit')") == onon ]] ||
		die "PostgreSQL is not durable (fsync and synchronous_commit must be on)"
	PG_PID=$(head -n 1 "$CC_PG_DATA/postmaster.pid")
	REDIS_PIDS=$(cat "$services/redis.pid")
	pin_services 0
}

# Pins PostgreSQL (every process) and the Redis servers to CPU list $1.
pin_services() {
	local pid
	pin "$PG_PID" "$1"
	for pid in $REDIS_PIDS; do pin "$pid" "$1"; done
}

# A second Redis for the baseline build (its keys must not meet the new
# build's: sessions, presence, streams). Adds its pid to REDIS_PIDS.
start_base_redis() {
	BASE_REDIS_PORT=$(free_port)
	mkdir -p "$tmp/redis-base"
	redis-server --bind 127.0.0.1 --port "$BASE_REDIS_PORT" --daemonize yes --dir "$tmp/redis-base" \
		--pidfile "$tmp/redis-base/pid" --logfile "$tmp/redis-base/log" --save '' --appendonly no
	local i
	for ((i = 0; i < 100; i++)); do
		[[ $(redis-cli -p "$BASE_REDIS_PORT" ping 2>/dev/null) == PONG ]] && break
		sleep 0.1
	done
	BASE_REDIS_PID=$(cat "$tmp/redis-base/pid")
	REDIS_PIDS="$REDIS_PIDS $BASE_REDIS_PID"
	pin "$BASE_REDIS_PID" 0
}

# start_host NAME DIR CCHOST CPUS WORKERS [VAR=value...]: starts a host
# serving from DIR (its scripts/ and migrations/) pinned to CPUS, waits for
# /bench/ping; sets <NAME>_PORT, <NAME>_PGID (also its process group) and
# writes the worker pids to $tmp/NAME.workers.
start_host() {
	local name=$1 dir=$2 bin=$3 cpus=$4 workers=$5 pid port i
	shift 5
	rm -f "$tmp/$name.port"
	(
		cd "$dir" || exit 1
		env PORT=0 WORKERS="$workers" APP_PROFILE=development RELOAD_WATCH=false LOG_LEVEL=warn \
			JWT_SECRET_KEY="$secret" JWT_EXPIRE_MINUTES=600 FIXTURE_SCRIPTS="$fixtures" \
			READY_FILE="$tmp/$name.port" WORKERS_FILE="$tmp/$name.workers" \
			DATABASE_URL="$DATABASE_URL" REDIS_HOST=127.0.0.1 REDIS_PORT="$REDIS_PORT" "$@" \
			setsid taskset -c "$cpus" "$bin" serve >/dev/null 2>"$tmp/$name.err" &
		echo $! >"$tmp/$name.pid"
	)
	pid=$(cat "$tmp/$name.pid")
	pids+=("$pid")
	for ((i = 0; i < 300; i++)); do
		[[ -s $tmp/$name.port ]] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	port=$(cat "$tmp/$name.port" 2>/dev/null) || {
		cat "$tmp/$name.err" >&2
		die "the host $name did not start"
	}
	wait_http "$port" "${READY_PATH:-/bench/ping}" "$pid" || die "the host $name does not answer"
	printf -v "${name}_PORT" '%s' "$port"
	printf -v "${name}_PGID" '%s' "$pid"
}

# restart_hosts production|fixtures: restarts the new host (and the
# baseline's) on the same databases, without fixture scripts or with them.
# The groups that compare the builds restart them before every round
# (common.sh rounds, ROUND_RESTART). The spin figures are
# measured as production runs a play: with fixture scripts, every play of
# either build also reads the specs' clock shift from Redis
# (domain/clock.lua), a round trip production never makes (it refuses
# fixtures). The other figures need the fixture bench routes.
restart_hosts() {
	local new_fx=$fixtures base_fx=$tmp/base-fixtures ready=/bench/ping
	if [[ $1 == production ]]; then new_fx='' base_fx='' ready=/health; fi
	stop_host new
	READY_PATH=$ready start_host new "$PWD" "$CCHOST" 0 1 DB_POOL_SIZE="$DB_POOL" FIXTURE_SCRIPTS="$new_fx"
	if [[ -n $BASELINE ]]; then
		stop_host base
		READY_PATH=$ready start_host base "$BASE_DIR" "$BASE_BIN" 0 1 DB_POOL_SIZE="$DB_POOL" \
			DATABASE_URL="$BASE_DATABASE_URL" REDIS_PORT="$BASE_REDIS_PORT" FIXTURE_SCRIPTS="$base_fx"
	fi
}

stop_host() {
	local pgid_var=${1}_PGID
	stop_group "${!pgid_var}"
}

# Starts nginx with $1 workers on CPU list $2 answering every path with the
# ping body; sets NGINX_PORT, NGINX_PGID.
start_nginx() {
	local workers=$1 cpus=$2 prefix=$tmp/nginx-$1 pid
	NGINX_PORT=$(free_port)
	mkdir -p "$prefix"
	# keepalive_requests: keep connections open as the host does, so both
	# are measured on the same steady keep-alive traffic.
	cat >"$prefix/nginx.conf" <<-EOF
		worker_processes $workers;
		daemon off;
		pid $prefix/nginx.pid;
		error_log $prefix/error.log warn;
		events { worker_connections 4096; }
		http {
		    access_log off;
		    keepalive_requests 100000000;
		    client_body_temp_path $prefix/body;
		    proxy_temp_path $prefix/proxy;
		    fastcgi_temp_path $prefix/fastcgi;
		    uwsgi_temp_path $prefix/uwsgi;
		    scgi_temp_path $prefix/scgi;
		    server {
		        listen 127.0.0.1:$NGINX_PORT;
		        location / {
		            default_type application/json;
		            return 200 '$PING_BODY';
		        }
		    }
		}
	EOF
	setsid taskset -c "$cpus" nginx -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log" \
		>/dev/null 2>&1 &
	pid=$!
	pids+=("$pid")
	NGINX_PGID=$pid
	wait_http "$NGINX_PORT" / "$pid" || {
		cat "$prefix/error.log" >&2
		die "nginx did not start"
	}
}

# Builds commit $BASELINE in a cache folder of its own (git archive: the
# work tree and .git stay untouched) unless built there already; sets
# BASE_DIR (its sources) and BASE_BIN.
build_baseline() {
	local sha cache
	sha=$(git rev-parse --verify "$BASELINE^{commit}") || die "BENCH_BASELINE=$BASELINE is not a commit"
	cache=${BENCH_CACHE:-/var/tmp/cc-bench}/$sha
	BASE_DIR=$cache/src BASE_BIN=$cache/build/cchost
	if [[ ! -x $BASE_BIN ]]; then
		say "bench: building the baseline $BASELINE ($sha) in $cache"
		rm -rf "$cache"
		mkdir -p "$BASE_DIR"
		git archive "$sha" | tar -x -C "$BASE_DIR"
		if ! { cmake -S "$BASE_DIR" -B "$cache/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
			cmake --build "$cache/build" -j2 --target cchost; } >"$cache/build.log" 2>&1; then
			tail -n 30 "$cache/build.log" >&2
			die "the baseline did not build (log: $cache/build.log)"
		fi
	fi
	BASE_SHA=${sha:0:12}
}

# The baseline's own fixture scripts, plus the bench routes it predates
# (tools/bench/compat/), in $tmp/base-fixtures.
base_fixtures() {
	rm -rf "$tmp/base-fixtures"
	cp -r "$BASE_DIR/spec/fixtures/scripts" "$tmp/base-fixtures"
	grep -rqF '"/bench/db/update"' "$tmp/base-fixtures" ||
		cp tools/bench/compat/bench_db.lua "$tmp/base-fixtures/routes/bench_compat_db.lua"
}
