# shellcheck shell=bash disable=SC2034,SC2153,SC2154
# (globals are shared with tools/bench.sh and the other files it sources;
# start_host sets <name>_PORT and <name>_PGID by name)
# common.sh - helpers of the benchmark (sourced by tools/bench.sh): process
# control, CPU accounting, interleaved rounds and the tables they print.
#
# Every measurement prints one result line, "rate p50_ms p99_ms lg host pg
# redis threads": the rate (requests or transactions per second), latency
# percentiles, the load generator's CPU share (% of one core), the CPU
# share of the host, PostgreSQL and Redis processes over the same run, and
# how many cores the load generator could use (its threads).
# `rounds GROUP TARGET...` runs every target once per round, in turn (A, B,
# A, B…), so slow drifts of a shared machine hit every target alike, and
# keeps the lines under $tmp/res/GROUP/TARGET. The tables print medians and
# the min–max spread; ratios are per round (both figures of one round) and
# their median, so the spread of a ratio shows how far to trust it.

say() { printf '%s\n' "$*" >&2; }
die() {
	say "bench: $*"
	exit 1
}

# Stops the process group led by $1 (started with setsid): SIGTERM, then
# SIGKILL after 5 s.
stop_group() {
	local i
	kill -TERM -- "-$1" 2>/dev/null || return 0
	for ((i = 0; i < 50; i++)); do
		kill -0 -- "-$1" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL -- "-$1" 2>/dev/null || true
}

# Prints a free loopback port.
free_port() {
	luajit -e 'local s = assert(require"socket".bind("127.0.0.1", 0))
		local _, port = s:getsockname() print(port)'
}

# Waits until http://127.0.0.1:$1$2 answers 2xx; $3 is the server's pid.
wait_http() {
	local i
	for ((i = 0; i < 150; i++)); do
		curl -fsS -o /dev/null "http://127.0.0.1:$1$2" 2>/dev/null && return 0
		kill -0 "$3" 2>/dev/null || break
		sleep 0.1
	done
	say "bench: no 2xx answer on 127.0.0.1:$1$2"
	return 1
}

# Pins process $1 and all its threads to CPU list $2 (for PostgreSQL: the
# postmaster and its children; backends forked later inherit it).
pin() {
	local pid=$1 cpus=$2 child
	taskset -a -cp "$cpus" "$pid" >/dev/null 2>&1 || true
	for child in $(pgrep -P "$pid" 2>/dev/null); do
		taskset -a -cp "$cpus" "$child" >/dev/null 2>&1 || true
	done
}

CLK_TCK=$(getconf CLK_TCK)

# Prints the CPU ticks used so far by: the processes of the process groups
# in $1 (hosts: master and workers), PostgreSQL (postmaster $2 with its live
# children, and those it reaped), Redis (pids in $3). Exited pgbench
# backends count through the postmaster's reaped-children time.
cpu_ticks() {
	local groups=" $1 " pg=$2 redis=" $3 "
	cat /proc/[0-9]*/stat 2>/dev/null | awk -v groups="$groups" -v pg="$pg" -v redis="$redis" '
		{
			pid = $1
			rest = substr($0, index($0, ") ") + 2)
			split(rest, f, " ")
			# f[2] ppid, f[3] pgrp, f[12] utime, f[13] stime, f[14] cutime, f[15] cstime
			t = f[12] + f[13]
			if (index(groups, " " f[3] " ")) h += t
			if (pid == pg) p += t + f[14] + f[15]
			else if (f[2] == pg) p += t
			if (index(redis, " " pid " ")) r += t
		}
		END { printf "%d %d %d\n", h, p, r }'
}

# Runs the load generator "$@" (stdout to $LG_OUT), timing it: sets LG_CPU
# (its CPU share, % of one core; it may use LG_THREADS cores) and SRV_CPU
# ("host pg redis" shares over the run, for the host groups in $SRV_GROUPS).
LG_OUT=''
LG_THREADS=1
timed_load() {
	local before after t0 t1 times
	before=$(cpu_ticks "$SRV_GROUPS" "$PG_PID" "$REDIS_PIDS")
	t0=$(date +%s.%N)
	{
		TIMEFORMAT='%R %U %S'
		time "$@" >"$LG_OUT" 2>"$LG_OUT.err"
	} 2>"$LG_OUT.time" || {
		cat "$LG_OUT" "$LG_OUT.err" >&2
		return 1
	}
	t1=$(date +%s.%N)
	after=$(cpu_ticks "$SRV_GROUPS" "$PG_PID" "$REDIS_PIDS")
	times=$(tail -n 1 "$LG_OUT.time")
	LG_CPU=$(awk '{ printf "%.0f", ($1 > 0 ? 100 * ($2 + $3) / $1 : 0) }' <<<"$times")
	SRV_CPU=$(awk -v b="$before" -v a="$after" -v w="$(awk -v x="$t0" -v y="$t1" 'BEGIN { print y - x }')" -v hz="$CLK_TCK" '
		BEGIN {
			split(b, x, " "); split(a, y, " ")
			for (i = 1; i <= 3; i++) printf "%.0f ", (w > 0 ? 100 * (y[i] - x[i]) / hz / w : 0)
		}')$LG_THREADS
}

# Duration in seconds of a wrk-style duration ("5s", "1m", "10").
seconds() {
	awk -v d="$1" 'BEGIN {
		n = d + 0
		if (d ~ /ms$/) n /= 1000; else if (d ~ /m$/) n *= 60; else if (d ~ /h$/) n *= 3600
		print n
	}'
}

# rounds GROUP TARGET...: runs target functions `t_<TARGET>` once per round,
# interleaved, appending their result lines under $tmp/res/GROUP/. Even
# rounds run the targets in reverse order, so that no target always comes
# first (after the previous group's work, or a quiet spell) or always last.
# With ROUND_RESTART=fixtures|production, both builds' hosts are restarted
# before every round (stack.sh restart_hosts): one process of a build can be
# 5-10 % faster or slower than the next for the whole of its life (memory
# layout), which a run with one process per build would show as a bias in
# every round. Two A/A runs (the baseline the same commit, one process each)
# gave pipelined JSON ratios of 0.94 (0.91-1.00) and 1.10 (1.00-1.14).
# With ROUND_QUIESCE=SECONDS, every target waits (up to SECONDS) for the
# outbox to be relayed and autovacuum to finish (figures.sh quiesce).
# Groups list the baseline right after the build under test, so the ratio
# that decides a regression (and the spin's 3x) comes from runs seconds
# apart in every round, whichever comes first: this machine's speed moves
# by a fifth within a minute.
rounds() {
	local group=$1 r t line i
	local -a reversed order
	shift
	for ((i = $#; i >= 1; i--)); do reversed+=("${!i}"); done
	mkdir -p "$tmp/res/$group"
	for ((r = 1; r <= ROUNDS; r++)); do
		[[ -n ${ROUND_RESTART:-} ]] && restart_hosts "$ROUND_RESTART"
		if ((r % 2)); then order=("$@"); else order=("${reversed[@]}"); fi
		for t in "${order[@]}"; do
			[[ -n ${ROUND_QUIESCE:-} ]] && quiesce "$ROUND_QUIESCE"
			line=$("t_$t") || die "$group/$t failed in round $r"
			printf '%s\n' "$line" >>"$tmp/res/$group/$t"
			say "  round $r/$ROUNDS $t: $(awk '{ printf "%.1f/s p50 %.2f ms, load generator %s %%", $1, $2, $4 }' <<<"$line")"
		done
	done
}

# Median, min and max of column $2 (1-based) of file $1: "med min max".
stat_of() {
	awk -v c="$2" '{ print $c }' "$1" | sort -g | awk '{ v[NR] = $1 } END {
		n = NR
		if (n == 0) { print "0 0 0"; exit }
		m = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
		print m, v[1], v[n]
	}'
}

# Per-round ratios of column 1 of files $1 / $2: "median min max".
ratio_of() {
	paste -d' ' <(cut -d' ' -f1 "$1") <(cut -d' ' -f1 "$2") | awk '{ print ($2 > 0 ? $1 / $2 : 0) }' >"$tmp/ratio"
	stat_of "$tmp/ratio" 1
}

# table GROUP TITLE UNIT TARGET:LABEL...: one line per target.
table() {
	local group=$1 title=$2 unit=$3 spec t label f rate rmin rmax p50 p99 lg lgmax host pg redis threads sat
	shift 3
	printf '\n%s\n' "$title"
	printf '  %-34s %22s %9s %9s %7s %16s\n' target "$unit median (min–max)" "p50 ms" "p99 ms" "lg cpu" "host/pg/redis %"
	for spec in "$@"; do
		t=${spec%%:*} label=${spec#*:}
		f=$tmp/res/$group/$t
		[[ -s $f ]] || continue
		read -r rate rmin rmax < <(stat_of "$f" 1)
		read -r p50 _ _ < <(stat_of "$f" 2)
		read -r p99 _ _ < <(stat_of "$f" 3)
		read -r lg _ lgmax < <(stat_of "$f" 4)
		read -r host _ _ < <(stat_of "$f" 5)
		read -r pg _ _ < <(stat_of "$f" 6)
		read -r redis _ _ < <(stat_of "$f" 7)
		read -r threads _ _ < <(stat_of "$f" 8)
		sat=''
		((${lgmax%.*} > 90 * ${threads%.*})) && sat=' SATURATED'
		printf '  %-34s %9.0f (%.0f–%.0f) %9.2f %9.2f %6.0f%% %16s%s\n' "$label" "$rate" "$rmin" "$rmax" \
			"$p50" "$p99" "$lg" "$(printf '%.0f/%.0f/%.0f' "$host" "$pg" "$redis")" "$sat"
		[[ -z $sat ]] || printf '  %-34s the load generator used %s %% of its %s core(s): this figure is a floor\n' \
			'' "$lgmax" "${threads%.*}"
	done
	return 0
}

# ratio GROUP A B LABEL [SUMMARY_FIGURE SUMMARY_REFERENCE]: prints the
# per-round ratio A/B; with the last two, adds a summary row.
ratio() {
	local group=$1 a=$2 b=$3 label=$4 med rmin rmax va vb
	[[ -s $tmp/res/$group/$a && -s $tmp/res/$group/$b ]] || return 0
	read -r med rmin rmax < <(ratio_of "$tmp/res/$group/$a" "$tmp/res/$group/$b")
	printf '  ratio %-40s %.3f (%.3f–%.3f over %d rounds)\n' "$label" "$med" "$rmin" "$rmax" "$ROUNDS"
	if (($# >= 6)); then
		read -r va _ _ < <(stat_of "$tmp/res/$group/$a" 1)
		read -r vb _ _ < <(stat_of "$tmp/res/$group/$b" 1)
		printf '| %s | %.0f/s | %s: %.0f/s | %.2f (%.2f–%.2f) |\n' "$5" "$va" "$6" "$vb" "$med" "$rmin" "$rmax" \
			>>"$tmp/summary"
	fi
}
