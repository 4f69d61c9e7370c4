# shellcheck shell=bash disable=SC2034,SC2153,SC2154
# (globals are shared with tools/bench.sh and the other files it sources;
# start_host sets <name>_PORT and <name>_PGID by name)
# players.sh - accounts of the benchmark and the capture of one spin's SQL
# (sourced by tools/bench.sh).
#
# Players sign up through the host's own API (so each build's database gets
# what its own signup writes) and get tokens with the development grant;
# consecutive wrk requests and pgbench transactions name different players,
# so no two concurrent spins wait on one wallet row.

# signup PORT PREFIX CODE COUNT FILE [GRANT]: signs up COUNT users
# PREFIX1… (four at a time; phone numbers 01<CODE><7 digits>, CODE two
# digits), writes "user_id token" lines to FILE sorted by id, and with GRANT
# mints that many tokens to each.
signup() {
	local port=$1 prefix=$2 code=$3 count=$4 file=$5 grant=${6:-0} n
	for ((n = 1; n <= count; n++)); do
		printf '{"site_id":"%s%d","nickname":"%s%d","phone_number":"01%s%07d","invite_code":"5858","password":"bench-password-1"}' \
			"$prefix" "$n" "$prefix" "$n" "$code" "$n" >"$tmp/su.$prefix.$n.in"
	done
	seq 1 "$count" | xargs -P 4 -I{} curl -sS -H 'Content-Type: application/json' \
		"http://127.0.0.1:$port/api/auth/signup" -d @"$tmp/su.$prefix.{}.in" -o "$tmp/su.$prefix.{}.out" || true
	for ((n = 1; n <= count; n++)); do
		cat "$tmp/su.$prefix.$n.out" 2>/dev/null
		echo
	done | luajit -e '
		local cjson = require "cjson"
		for line in io.lines() do
			local ok, t = pcall(cjson.decode, line)
			if ok and type(t) == "table" and t.user and t.access_token then print(t.user.id .. " " .. t.access_token) end
		end' | sort -n >"$file"
	rm -f "$tmp"/su."$prefix".*
	(($(wc -l <"$file") == count)) || die "only $(wc -l <"$file") of $count signups of $prefix* succeeded"
	if ((grant > 0)); then
		cut -d' ' -f2 "$file" | xargs -P 4 -I{} curl -fsS -o /dev/null -X POST -H 'Authorization: Bearer {}' \
			"http://127.0.0.1:$port/api/users/tokens/add?amount=$grant" || die "the development grant failed"
	fi
}

# contiguous FILE: prints "first_id count" and checks the ids of FILE have no gap
# (pgbench maps client and sequence numbers onto that range).
contiguous() {
	awk 'NR == 1 { first = $1 } { last = $1 } END {
		if (last - first + 1 != NR) { print "gap" ; exit 1 }
		print first, NR }' "$1"
}

# capture_spin: runs a host of the new build whose only
# database connection goes through tools/bench/pgtrace.lua, signs up two
# capture players there, spins CAPTURE_SPINS times, and turns the spins'
# transactions into pgbench scripts (tools/bench/spinsql.lua). Sets
# SPIN_SCRIPTS (pgbench -f arguments with weights) and SPIN_DEFS (-D
# arguments) and prints what was captured.
capture_spin() {
	local trace=$tmp/spin.trace windows=$tmp/spin.windows proxy_port i a b token uid capture
	: >"$trace"
	: >"$windows"
	setsid luajit tools/bench/pgtrace.lua "$PGPORT" "$tmp/pgtrace.port" "$trace" 2>"$tmp/pgtrace.err" &
	pids+=($!)
	local proxy_pid=$!
	for ((i = 0; i < 50; i++)); do
		[[ -s $tmp/pgtrace.port ]] && break
		sleep 0.1
	done
	proxy_port=$(cat "$tmp/pgtrace.port") || die "the SQL capture proxy did not start"
	start_host capture "$PWD" "$CCHOST" 0 1 DB_POOL_SIZE=1 \
		DATABASE_URL="postgresql://$PGUSER@127.0.0.1:$proxy_port/casino?sslmode=disable&gssencmode=disable"
	# Two players; the first one's seed is rotated so its seed id and user id
	# do not move in step as the second one's may (spinsql.lua tells them
	# apart by that). One spin each first: the session cache and prepared
	# statements are warm for the captured ones, as in the steady state.
	signup "$capture_PORT" bc 93 2 "$tmp/capture.tokens" 100000000
	mapfile -t capture <"$tmp/capture.tokens"
	curl -fsS -o /dev/null -X POST -H "Authorization: Bearer ${capture[0]#* }" \
		"http://127.0.0.1:$capture_PORT/api/fairness/rotate" || say "bench: (the seed rotation failed; going on)"
	for ((i = 0; i < CAPTURE_SPINS + 2; i++)); do
		uid=${capture[i % 2]% *} token=${capture[i % 2]#* }
		a=$(($(wc -l <"$trace") + 1))
		curl -fsS -o /dev/null -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
			-d "{\"bet_amount\":$BET}" "http://127.0.0.1:$capture_PORT/api/games/slot/spin" ||
			die "a capture spin failed"
		b=$(wc -l <"$trace")
		((i >= 2)) && echo "$a $b $uid" >>"$windows"
	done
	stop_host capture
	kill "$proxy_pid" 2>/dev/null || true
	luajit tools/bench/spinsql.lua "$trace" "$windows" "$tmp/spin-shape" >"$tmp/spin.shapes" ||
		die "could not turn the captured spins into pgbench scripts"
	SPIN_SCRIPTS=() SPIN_DEFS=()
	local script weight statements trips host_trips defs
	while read -r script weight statements trips host_trips; do
		SPIN_SCRIPTS+=(-f "$script@$weight")
		mapfile -d '' defs <"${script%.sql}.def"
		SPIN_DEFS+=("${defs[@]}")
		printf '%s of %s spins ran %s statements in %s round trips; the script makes %s (%s)\n' "$weight" \
			"$CAPTURE_SPINS" "$statements" "$host_trips" "$trips" "$(basename "$script")"
	done <"$tmp/spin.shapes" >"$tmp/spin.captured"
	sed 's/^/  captured: /' "$tmp/spin.captured" >&2
	[[ -n ${BENCH_OUT:-} ]] && mkdir -p "$BENCH_OUT" && cp "$tmp"/spin-shape* "$BENCH_OUT/"
	return 0
}
