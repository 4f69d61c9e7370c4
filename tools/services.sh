#!/usr/bin/env bash
# Starts and stops a private PostgreSQL 15 and Redis 7 for this project, so
# `make run` and `make test` never depend on (or disturb) a system cluster,
# a system Redis, or the default ports 5432/6379: both bind free loopback
# ports, picked at start, and the connection settings go to an env file.
#
# Usage:
#   tools/services.sh start   <datadir> <envfile>  start both (or rewrite the
#                                                   env file if running)
#   tools/services.sh stop    <datadir>            stop both, keep the data
#   tools/services.sh status  <datadir>            exit 0 if both run
#   tools/services.sh destroy <datadir>            stop and delete the data
#
# Layout under <datadir>: pg/ (cluster), redis/ (dump), redis.pid, redis.log,
# ports (last ports, reused while free so DATABASE_URL stays stable),
# pg-location (where the cluster really lives).
#
# PostgreSQL refuses to run as root, so its cluster is owned by the postgres
# user, which must be able to reach it. When <datadir> is not reachable by
# postgres (a checkout under a 0700 home), the cluster lives under
# /var/lib/casino-club/<sha256 of the datadir path, 12 chars>/pg instead;
# the script says so and records it in <datadir>/pg-location.
#
# Environment: CC_PG_FAST=1 turns fsync off (tests only, data may be lost on
# a crash); CC_REDIS_EPHEMERAL=1 runs Redis without persistence.
# Needs root (runuser) and luajit + lua-socket (tools/setup.sh) to pick ports.
set -euo pipefail

PG_BIN=/usr/lib/postgresql/15/bin
FALLBACK_ROOT=/var/lib/casino-club

die() {
	echo "services: $*" >&2
	exit 1
}

# Runs a command as postgres from a directory it can read (runuser keeps the
# caller's cwd, which may be a 0700 home).
as_pg() { (cd / && runuser -u postgres -- "$@"); }

# Prints n free loopback ports, all different (bound together, then released).
free_ports() {
	luajit -e "local n = $1"'
		local socket = require "socket"
		local held = {}
		for i = 1, n do
			held[i] = assert(socket.bind("127.0.0.1", 0))
			local _, port = held[i]:getsockname()
			print(port)
		end' || die "cannot pick free ports (run tools/setup.sh: needs luajit and lua-socket)"
}

# True when nothing listens on loopback port $1.
port_free() {
	luajit -e "assert(require'socket'.bind('127.0.0.1', $1))" 2>/dev/null
}

# Prints where the cluster of datadir $1 lives: as recorded, else the fallback
# folder if one exists for that path (the datadir may have been deleted while
# the cluster there still runs), else <datadir>/pg.
pg_dir_of() {
	local fallback
	fallback=$FALLBACK_ROOT/$(printf '%s' "$1" | sha256sum | cut -c1-12)/pg
	if [[ -s $1/pg-location ]]; then
		cat "$1/pg-location"
	elif [[ -d $fallback ]]; then
		echo "$fallback"
	else
		echo "$1/pg"
	fi
}

# Gives directory $1 to postgres (mode 0700) and checks postgres can use it.
pg_own() {
	mkdir -p "$1"
	chown postgres:postgres "$1"
	chmod 700 "$1"
	as_pg test -w "$1"
}

# Chooses and prepares the cluster directory for datadir $1, prints it: an
# existing cluster stays where it is; a new one goes to <datadir>/pg when
# postgres can reach it (access(2) on the datadir checks every parent on the
# way), else to the fallback folder.
pg_dir_prepare() {
	local datadir=$1 dir
	dir=$(pg_dir_of "$datadir")
	if [[ -s $dir/PG_VERSION ]] && pg_own "$dir"; then
		echo "$dir"
		return
	fi
	dir=$datadir/pg
	if as_pg test -x "$datadir" && pg_own "$dir"; then
		echo "$dir"
		return
	fi
	rmdir "$dir" 2>/dev/null || true
	local top
	top=$FALLBACK_ROOT/$(printf '%s' "$datadir" | sha256sum | cut -c1-12)
	dir=$top/pg
	mkdir -p "$top"
	chmod 755 "$FALLBACK_ROOT" "$top"
	printf '%s\n' "$datadir" >"$top/origin"
	pg_own "$dir" || die "postgres cannot write $dir"
	echo "$dir"
}

# Prints the port of the running cluster in $1, or fails if it is not running.
pg_running_port() {
	as_pg "$PG_BIN/pg_ctl" status -D "$1" >/dev/null 2>&1 || return 1
	sed -n 4p "$1/postmaster.pid"
}

# Starts the cluster in $1 on port $2 (initialising it on first use).
pg_start() {
	local dir=$1 port=$2
	if [[ ! -s $dir/PG_VERSION ]]; then
		as_pg "$PG_BIN/initdb" -D "$dir" -U postgres -A trust -E UTF8 \
			--locale=C.UTF-8 >"$dir.initdb.log" 2>&1 ||
			die "initdb failed, see $dir.initdb.log"
		rm -f "$dir.initdb.log"
	fi
	# The socket lives in the cluster directory (never /var/run/postgresql,
	# which belongs to the system clusters); a path too long for a Unix
	# socket name means TCP only, which is all the project uses.
	local sockdir=$dir
	((${#dir} + 20 > 107)) && sockdir=''
	local opts="-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories='$sockdir'"
	[[ ${CC_PG_FAST:-} == 1 ]] &&
		opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
	as_pg "$PG_BIN/pg_ctl" start -D "$dir" -l "$dir/server.log" -w -t 60 \
		-o "$opts" >/dev/null 9>&-
}

# Creates the casino superuser and database on port $1 when missing.
pg_bootstrap() {
	local psql=("$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$1" -U postgres -d postgres -v ON_ERROR_STOP=1 -tA)
	local i
	for ((i = 0; i < 100; i++)); do
		"$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$1" && break
		sleep 0.1
	done
	[[ -n $("${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname = 'casino'") ]] ||
		"${psql[@]}" -c "CREATE ROLE casino SUPERUSER LOGIN"
	[[ -n $("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = 'casino'") ]] ||
		"${psql[@]}" -c "CREATE DATABASE casino OWNER casino"
}

# Prints the pid of the Redis of datadir $1 if it runs.
redis_pid() {
	local pid
	pid=$(cat "$1/redis.pid" 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ && $(cat "/proc/$pid/comm" 2>/dev/null) == redis-server* ]] || return 1
	echo "$pid"
}

# Stops Redis process $1 and waits for it. SIGTERM shuts Redis down like
# SHUTDOWN: it saves the dump only when persistence is configured.
redis_stop() {
	local i
	kill -TERM "$1" 2>/dev/null || return 0
	for ((i = 0; i < 100; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	die "Redis (pid $1) did not stop"
}

# Starts Redis for datadir $1 on port $2 and waits for PONG.
redis_start() {
	local datadir=$1 port=$2 save=(--save 60 1)
	[[ ${CC_REDIS_EPHEMERAL:-} == 1 ]] && save=(--save '')
	mkdir -p "$datadir/redis"
	redis-server --bind 127.0.0.1 --port "$port" --daemonize yes \
		--dir "$datadir/redis" --pidfile "$datadir/redis.pid" \
		--logfile "$datadir/redis.log" "${save[@]}" --appendonly no 9>&-
	local i
	for ((i = 0; i < 100; i++)); do
		redis_ping "$port" && return 0
		sleep 0.1
	done
	return 1
}

redis_ping() { [[ $(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null) == PONG ]]; }

# Reads the recorded ports of datadir $1 into PG_PORT / REDIS_PORT.
read_ports() {
	PG_PORT='' REDIS_PORT=''
	[[ -s $1/ports ]] || return 0
	local key value
	while IFS='=' read -r key value; do
		[[ $value =~ ^[0-9]+$ ]] || continue
		case $key in
		PG_PORT) PG_PORT=$value ;;
		REDIS_PORT) REDIS_PORT=$value ;;
		esac
	done <"$1/ports"
}

# Prints a free port other than $1: port $2 if free, else a new one.
choose_port() {
	local avoid=$1 want=$2 out a b
	if [[ -n $want && $want != "$avoid" ]] && port_free "$want"; then
		echo "$want"
		return
	fi
	out=$(free_ports 2) || exit 1
	{ read -r a && read -r b; } <<<"$out"
	if [[ $a == "$avoid" ]]; then echo "$b"; else echo "$a"; fi
}

cmd_start() {
	local datadir=$1 envfile=$2 pgdir pg_port redis_port pid
	pgdir=$(pg_dir_prepare "$datadir")
	printf '%s\n' "$pgdir" >"$datadir/pg-location"
	if [[ $pgdir != "$datadir/pg" ]]; then
		echo "services: $datadir is not reachable by the postgres user," >&2
		echo "services: so the PostgreSQL data lives in $pgdir" >&2
	fi
	read_ports "$datadir"

	if ! pg_port=$(pg_running_port "$pgdir"); then
		pg_port=$(choose_port '' "$PG_PORT")
		pg_start "$pgdir" "$pg_port" || die "PostgreSQL did not start, see $pgdir/server.log"
	fi
	pg_bootstrap "$pg_port"

	redis_port=$REDIS_PORT
	if pid=$(redis_pid "$datadir") && ! { [[ -n $redis_port ]] && redis_ping "$redis_port"; }; then
		redis_stop "$pid" # running, but not where recorded: restart it
	fi
	if ! redis_pid "$datadir" >/dev/null; then
		redis_port=$(choose_port "$pg_port" "$REDIS_PORT")
		redis_start "$datadir" "$redis_port" || die "Redis did not start, see $datadir/redis.log"
	fi

	printf 'PG_PORT=%s\nREDIS_PORT=%s\n' "$pg_port" "$redis_port" >"$datadir/ports"
	mkdir -p "$(dirname "$envfile")"
	cat >"$envfile.tmp" <<-EOF
		DATABASE_URL=postgresql://casino@127.0.0.1:$pg_port/casino
		PGHOST=127.0.0.1
		PGPORT=$pg_port
		PGUSER=casino
		REDIS_HOST=127.0.0.1
		REDIS_PORT=$redis_port
		CC_PG_DATA=$pgdir
		CC_PG_BIN=$PG_BIN
	EOF
	mv "$envfile.tmp" "$envfile"
	echo "services: PostgreSQL on 127.0.0.1:$pg_port, Redis on 127.0.0.1:$redis_port (settings in $envfile)" >&2
}

cmd_stop() {
	local datadir=$1 pgdir pid
	pgdir=$(pg_dir_of "$datadir")
	if pg_running_port "$pgdir" >/dev/null; then
		as_pg "$PG_BIN/pg_ctl" stop -D "$pgdir" -m fast -w -t 60 >/dev/null
	fi
	if pid=$(redis_pid "$datadir"); then
		redis_stop "$pid"
	fi
	return 0
}

cmd_status() {
	local datadir=$1 pgdir port pid rc=0
	pgdir=$(pg_dir_of "$datadir")
	read_ports "$datadir"
	if port=$(pg_running_port "$pgdir"); then
		echo "postgresql: running on 127.0.0.1:$port (data: $pgdir)"
	else
		echo "postgresql: stopped (data: $pgdir)"
		rc=3
	fi
	if pid=$(redis_pid "$datadir"); then
		echo "redis: running on 127.0.0.1:$REDIS_PORT (pid $pid, data: $datadir/redis)"
	else
		echo "redis: stopped (data: $datadir/redis)"
		rc=3
	fi
	return "$rc"
}

cmd_destroy() {
	local datadir=$1 pgdir
	cmd_stop "$datadir"
	pgdir=$(pg_dir_of "$datadir")
	[[ $pgdir == "$FALLBACK_ROOT"/*/pg ]] && rm -rf "$(dirname "$pgdir")"
	rm -rf "$datadir"
}

usage() {
	echo "usage: $0 start <datadir> <envfile> | stop <datadir> | status <datadir> | destroy <datadir>" >&2
	exit 2
}

case "${1:-}:$#" in
start:3 | stop:2 | status:2 | destroy:2) ;;
*) usage ;;
esac
((EUID == 0)) || die "must run as root (PostgreSQL is started through runuser)"
[[ -x $PG_BIN/pg_ctl ]] || die "$PG_BIN/pg_ctl not found (run tools/setup.sh)"

datadir=$(realpath -m "$2")
[[ $datadir != / ]] || die "refusing / as datadir"
[[ $1 == start ]] && mkdir -p "$datadir"
# One action at a time per datadir (stop and destroy also work on a deleted
# datadir whose fallback cluster still runs). The servers must not inherit
# fd 9, or they would hold the lock for as long as they run.
if [[ -d $datadir ]]; then
	exec 9>"$datadir/.lock"
	flock 9
fi

case $1 in
start) cmd_start "$datadir" "$3" ;;
stop) cmd_stop "$datadir" ;;
status) cmd_status "$datadir" ;;
destroy) cmd_destroy "$datadir" ;;
esac
