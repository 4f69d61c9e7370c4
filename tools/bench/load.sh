# shellcheck shell=bash disable=SC2034,SC2153,SC2154
# (globals are shared with tools/bench.sh and the other files it sources;
# start_host sets <name>_PORT and <name>_PGID by name)
# load.sh - the load generators of the benchmark (sourced by tools/bench.sh).
# Each runs a warm-up (WARMUP), then the measured run (DURATION), and prints
# one result line (see common.sh): wrk for HTTP, pgbench for PostgreSQL,
# redis-benchmark for Redis. LG_CPUS is the CPU list they run on (core 1,
# or both cores for the multi-worker figures); SRV_GROUPS names the host
# process groups whose CPU is reported beside.

LG_CPUS=1

# wrk_run PORT PATH CONNS [wrk options...] [-- script arguments...]: fails
# on any non-2xx answer or socket error.
wrk_run() {
	local port=$1 path=$2 conns=$3 url threads=1 opts=()
	shift 3
	while (($#)) && [[ $1 != -- ]]; do
		opts+=("$1")
		shift
	done
	url="http://127.0.0.1:$port$path"
	[[ $LG_CPUS == *,* ]] && threads=2
	LG_OUT=$tmp/lg.out LG_THREADS=$threads
	taskset -c "$LG_CPUS" wrk -t"$threads" -c"$conns" -d"$WARMUP" "${opts[@]}" "$url" "$@" >/dev/null 2>&1 || true
	timed_load taskset -c "$LG_CPUS" wrk -t"$threads" -c"$conns" -d"$DURATION" --latency "${opts[@]}" "$url" "$@" ||
		return 1
	if grep -qE 'Non-2xx|Socket errors' "$LG_OUT"; then
		say "bench: errors from $url:"
		cat "$LG_OUT" >&2
		return 1
	fi
	awk -v lg="$LG_CPU" -v srv="$SRV_CPU" '
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
		END { printf "%.1f %.3f %.3f %s %s\n", rps, p50, p99, lg, srv }' "$LG_OUT"
}

# pgbench_run DB CLIENTS [pgbench options...]: prepared statements (as the
# host), one thread; latency percentiles from the per-transaction log.
pgbench_run() {
	local db=$1 clients=$2 secs
	shift 2
	secs=$(seconds "$DURATION")
	LG_OUT=$tmp/lg.out LG_THREADS=1
	taskset -c "$LG_CPUS" pgbench -n -M prepared -c "$clients" -j 1 -T "$(seconds "$WARMUP")" "$@" "$db" \
		>/dev/null 2>&1 || true
	rm -f "$tmp"/pglog.*
	timed_load taskset -c "$LG_CPUS" pgbench -n -M prepared -c "$clients" -j 1 -T "${secs%.*}" \
		-l --log-prefix="$tmp/pglog" "$@" "$db" || return 1
	if grep -qE 'aborted|error' "$LG_OUT" "$LG_OUT.err"; then
		say "bench: pgbench failed:"
		cat "$LG_OUT" "$LG_OUT.err" >&2
		return 1
	fi
	local tps
	tps=$(awk '$1 == "tps" { print $3; exit }' "$LG_OUT")
	cat "$tmp"/pglog.* | awk '{ print $3 / 1000 }' | sort -g | awk -v tps="$tps" -v lg="$LG_CPU" -v srv="$SRV_CPU" '
		{ v[NR] = $1 }
		END { printf "%.1f %.3f %.3f %s %s\n", tps, v[int(NR * 0.5) + 1], v[int(NR * 0.99) + 1], lg, srv }'
}

# redis_run PORT CONNS: redis-benchmark -t incr, sized to last DURATION
# from the warm-up's rate.
redis_run() {
	local port=$1 conns=$2 warm n
	LG_OUT=$tmp/lg.out LG_THREADS=1
	warm=$(taskset -c "$LG_CPUS" redis-benchmark -h 127.0.0.1 -p "$port" -c "$conns" -n 50000 -t incr --csv |
		awk -F'"' '$2 == "INCR" { print $4 }')
	n=$(awk -v r="${warm:-50000}" -v d="$(seconds "$DURATION")" 'BEGIN { printf "%d", r * d }')
	timed_load taskset -c "$LG_CPUS" redis-benchmark -h 127.0.0.1 -p "$port" -c "$conns" -n "$n" -t incr --csv ||
		return 1
	awk -F'"' -v lg="$LG_CPU" -v srv="$SRV_CPU" '$2 == "INCR" {
		printf "%.1f %.3f %.3f %s %s\n", $4, $10, $14, lg, srv }' "$LG_OUT"
}
