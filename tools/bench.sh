#!/usr/bin/env bash
# Benchmark (`make bench`; not part of the tests): how close the host comes
# to nginx on the smallest request. `wrk -t1 -c50 --latency` runs against a
# Lua route that returns a small JSON body without I/O (GET /bench/ping from
# the fixture scripts), served by one host worker pinned to core 0, then
# against a private nginx pinned to core 0 returning the same fixed body;
# wrk runs on core 1. Each target gets a 2 s warm-up, then a measured run.
# Prints requests/s, p50 and p99 latency per target and the host/nginx ratio.
#
# Then the admin users search (CONTRACT.md §13.1) on the same host with
# 100 000 users seeded by SQL (signup's argon2 would take twenty minutes):
# p50/p99 of GET /api/admin/users?search=<fragment>&page=2 for a 3-, 2- and
# 1-character fragment (pg_trgm serves three characters and more), and the
# EXPLAIN ANALYZE execution time of the same two statements (count and page).
#
# Environment: BENCH_DURATION (default 10s), BENCH_PATH (default /bench/ping;
# nginx answers every path with the ping body), CCHOST (default
# build/cchost). The host gets a private, throw-away PostgreSQL and Redis
# (tools/services.sh) unless DATABASE_URL is already set.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${BENCH_DURATION:-10s}
path=${BENCH_PATH:-/bench/ping}
cchost=${CCHOST:-build/cchost}
body='{"ok":true,"message":"pong"}'

tools/setup.sh --bench
[[ -x $cchost ]] || {
	echo "bench: $cchost not found: build first (make build)" >&2
	exit 1
}
(($(nproc) >= 2)) || {
	echo "bench: needs two cores (server on core 0, wrk on core 1)" >&2
	exit 1
}

tmp=$(mktemp -d /tmp/cc-bench-XXXXXX)
chmod 755 "$tmp" # the postgres user must reach the throw-away cluster
pids=()
services=''
cleanup() {
	local pid
	for pid in "${pids[@]}"; do stop_group "$pid"; done
	[[ -n $services ]] && tools/services.sh destroy "$services" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Stops the process group led by $1 (a server started with setsid): SIGTERM,
# then SIGKILL after 5 s.
stop_group() {
	local i
	kill -TERM -- "-$1" 2>/dev/null || return 0
	for ((i = 0; i < 50; i++)); do
		kill -0 -- "-$1" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL -- "-$1" 2>/dev/null || true
}

# Waits until http://127.0.0.1:$1$path answers 2xx; $2 is the server's pid.
wait_http() {
	local i
	for ((i = 0; i < 100; i++)); do
		curl -fsS -o /dev/null "http://127.0.0.1:$1$path" 2>/dev/null && return 0
		kill -0 "$2" 2>/dev/null || break
		sleep 0.1
	done
	echo "bench: no 2xx answer on 127.0.0.1:$1$path" >&2
	return 1
}

# Prints a free loopback port.
free_port() {
	luajit -e 'local s = assert(require"socket".bind("127.0.0.1", 0))
		local _, port = s:getsockname() print(port)'
}

# Runs wrk against port $1 (path $2, default $path; connections $3, default
# 50; more wrk options after) and prints "req/s p50_ms p99_ms".
measure() {
	local url="http://127.0.0.1:$1${2:-$path}" conns=${3:-50} out
	shift 3 2>/dev/null || shift $#
	taskset -c 1 wrk -t1 -c"$conns" -d2s "$@" "$url" >/dev/null
	out=$(taskset -c 1 wrk -t1 -c"$conns" -d"$duration" --latency "$@" "$url")
	if grep -q 'Non-2xx' <<<"$out"; then
		echo "bench: non-2xx answers from $url:" >&2
		echo "$out" >&2
		return 1
	fi
	grep 'Socket errors' <<<"$out" >&2 || true
	awk '
		function ms(v) {
			if (v ~ /us$/) return v * 0.001
			if (v ~ /ms$/) return v + 0
			if (v ~ /m$/) return v * 60000
			if (v ~ /s$/) return v * 1000
			return v
		}
		$1 == "Requests/sec:" { rps = $2 }
		$1 == "50%" { p50 = ms($2) }
		$1 == "99%" { p99 = ms($2) }
		END { printf "%.1f %.3f %.3f\n", rps, p50, p99 }' <<<"$out"
}

bench_host() {
	if [[ -z ${DATABASE_URL:-} ]]; then
		services=$tmp/services
		CC_PG_FAST=1 CC_REDIS_EPHEMERAL=1 tools/services.sh start "$services" "$tmp/services.env" 2>/dev/null
		set -a
		# shellcheck disable=SC1091
		. "$tmp/services.env"
		set +a
	fi
	local secret i port
	secret=$(head -c 36 /dev/urandom | base64 | tr '+/' '-_')
	PORT=0 WORKERS=1 APP_PROFILE=development JWT_SECRET_KEY=$secret \
		FIXTURE_SCRIPTS=spec/fixtures/scripts READY_FILE=$tmp/host.port \
		LOG_LEVEL=warn setsid taskset -c 0 "$cchost" serve >/dev/null 2>"$tmp/host.err" &
	pids+=($!)
	for ((i = 0; i < 150; i++)); do
		[[ -s $tmp/host.port ]] && break
		kill -0 "${pids[-1]}" 2>/dev/null || break
		sleep 0.1
	done
	port=$(cat "$tmp/host.port" 2>/dev/null) || {
		echo "bench: the host did not start:" >&2
		cat "$tmp/host.err" >&2
		return 1
	}
	wait_http "$port" "${pids[-1]}"
	measure "$port"
	bench_admin_search "$port" >"$tmp/admin.result"
	stop_group "${pids[-1]}"
}

# The admin search figures against the host on port $1 (see the top).
bench_admin_search() {
	local port=$1 token id frag like sql
	psql -q "$DATABASE_URL" -v ON_ERROR_STOP=1 >/dev/null <<-'EOF'
		INSERT INTO users (site_id, nickname, phone_number, password_hash, created_at)
		SELECT 'bench' || g, 'n' || substr(md5(g::text), 1, 12), '010' || lpad(g::text, 8, '0'), 'x',
		       now() - g * interval '1 second'
		FROM generate_series(1, 100000) g;
		INSERT INTO wallet_balances (user_id, currency, balance)
		SELECT id, 'tokens', 200 FROM users WHERE site_id LIKE 'bench%';
		ANALYZE users;
		ANALYZE wallet_balances;
	EOF
	token=$(curl -fsS -H 'Content-Type: application/json' "http://127.0.0.1:$port/api/auth/signup" \
		-d '{"site_id":"benchadmin","nickname":"benchadmin","phone_number":"01099999999","invite_code":"5858","password":"bench-password-1"}' |
		luajit -e 'local t = io.read("*a") io.write((t:match([["access_token":"([^"]+)"]])))')
	id=$(psql -qAt "$DATABASE_URL" -c "SELECT id FROM users WHERE site_id = 'benchadmin'")
	curl -fsS -o /dev/null -X POST -H 'Content-Type: application/json' -d '{}' \
		"http://127.0.0.1:$port/test/accounts/$id/admin"
	for frag in a1b 7f 9; do
		read -r rps p50 p99 < <(measure "$port" "/api/admin/users?search=$frag&page=2" 10 \
			-H "Authorization: Bearer $token")
		like="%$frag%"
		sql="SELECT count(*) FROM users u WHERE u.nickname ILIKE '$like' OR u.site_id ILIKE '$like' OR u.phone_number ILIKE '$like';
			EXPLAIN ANALYZE SELECT u.id FROM users u WHERE u.nickname ILIKE '$like' OR u.site_id ILIKE '$like'
			OR u.phone_number ILIKE '$like' ORDER BY u.created_at DESC, u.id DESC LIMIT 20 OFFSET 20;
			EXPLAIN ANALYZE SELECT count(*) FROM users u WHERE u.nickname ILIKE '$like' OR u.site_id ILIKE '$like'
			OR u.phone_number ILIKE '$like'"
		psql -qAt "$DATABASE_URL" -c "$sql" | awk -v f="$frag" -v rps="$rps" -v p50="$p50" -v p99="$p99" '
			NR == 1 { matches = $1 }
			/Execution Time/ { t += $3 }
			END { printf "%-6s %8d %10.1f %10.3f %10.3f %12.3f\n", f, matches, rps, p50, p99, t }'
	done
}

bench_nginx() {
	local prefix=$tmp/nginx port
	port=$(free_port)
	mkdir -p "$prefix"
	# keepalive_requests: keep connections open as the host does, so both
	# are measured on the same steady keep-alive traffic.
	cat >"$prefix/nginx.conf" <<-EOF
		worker_processes 1;
		daemon off;
		pid $prefix/nginx.pid;
		error_log $prefix/error.log warn;
		events { worker_connections 1024; }
		http {
		    access_log off;
		    keepalive_requests 1000000;
		    client_body_temp_path $prefix/body;
		    proxy_temp_path $prefix/proxy;
		    fastcgi_temp_path $prefix/fastcgi;
		    uwsgi_temp_path $prefix/uwsgi;
		    scgi_temp_path $prefix/scgi;
		    server {
		        listen 127.0.0.1:$port;
		        location / {
		            default_type application/json;
		            return 200 '$body';
		        }
		    }
		}
	EOF
	setsid taskset -c 0 nginx -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log" \
		>/dev/null 2>&1 &
	pids+=($!)
	wait_http "$port" "${pids[-1]}" || {
		cat "$prefix/error.log" >&2
		return 1
	}
	measure "$port"
	stop_group "${pids[-1]}"
}

echo "bench: wrk -t1 -c50 -d$duration on $path (server on core 0, wrk on core 1)"
bench_host >"$tmp/host.result"
bench_nginx >"$tmp/nginx.result"
read -r host_rps host_p50 host_p99 <"$tmp/host.result"
read -r nginx_rps nginx_p50 nginx_p99 <"$tmp/nginx.result"
awk -v hr="$host_rps" -v h50="$host_p50" -v h99="$host_p99" \
	-v nr="$nginx_rps" -v n50="$nginx_p50" -v n99="$nginx_p99" 'BEGIN {
	printf "%-8s %12s %10s %10s\n", "target", "req/s", "p50 ms", "p99 ms"
	printf "%-8s %12.1f %10.3f %10.3f\n", "cchost", hr, h50, h99
	printf "%-8s %12.1f %10.3f %10.3f\n", "nginx", nr, n50, n99
	printf "ratio host/nginx req/s: %.3f\n", hr / nr
}'
echo
echo "admin search, 100 000 users: GET /api/admin/users?search=<fragment>&page=2 (wrk -c10)"
printf "%-6s %8s %10s %10s %10s %12s\n" fragment matches req/s "p50 ms" "p99 ms" "explain ms"
cat "$tmp/admin.result"
