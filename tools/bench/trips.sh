# shellcheck shell=bash disable=SC2034,SC2153,SC2154
# (globals are shared with tools/bench.sh and the other files it sources;
# start_host sets <name>_PORT and <name>_PGID by name)
# trips.sh - database round trips per request of every money route
# (sourced by tools/bench.sh; group "trips").
#
# A round trip wakes the host and the server and costs both loopback TCP
# work, so after the rows themselves it is what a money request pays most.
# Each build gets a host of its own whose only database connection goes
# through tools/bench/pgtrace.lua (one pooled connection, the outbox relay
# paused); a player plays every game and claims a mission, and the trace
# lines of each request are counted: statements, and round trips (a
# statement sent while none of the same connection was in flight starts
# one). Each request runs three times (the claim once) and the smallest
# count is kept: a background job (the crash sweeper) may add statements to
# one window. Work done after the response (a crash round's crash_sessions
# rows) counts with its request.

TRIP_REQUESTS=(spin rps gacha crash_bet crash_cashout mission_claim)
declare -A TRIP_LABEL=([spin]="slot spin" [rps]="RPS play" [gacha]="gacha pull (1)" [crash_bet]="crash bet"
	[crash_cashout]="crash cash-out" [mission_claim]="mission claim (daily login)")

# trips_count TRACE FROM TO: "round_trips statements" of trace lines FROM..TO.
trips_count() {
	sed -n "$2,$3p" "$1" | luajit -e '
		local cjson = require "cjson"
		local trips, n = 0, 0
		for line in io.lines() do
			local r = cjson.decode(line)
			n = n + 1
			if (r.inflight or 0) == 0 then trips = trips + 1 end
		end
		print(trips, n)'
}

# trips_post PORT TOKEN PATH [BODY]: one POST as the player, its answer kept in
# $tmp/trips.answer; then a pause, so work done after the response lands in
# this request's window.
trips_post() {
	curl -sS -o "$tmp/trips.answer" -X POST -H "Authorization: Bearer $2" -H 'Content-Type: application/json' \
		${4:+-d "$4"} "http://127.0.0.1:$1$3" || true
	sleep 0.3
}

# trips_of NAME DIR CCHOST DBNAME REDIS_PORT FIXTURES: counts every request
# of TRIP_REQUESTS against that build; writes "request trips statements"
# lines to $tmp/trips.NAME.
trips_of() {
	local name=$1 dir=$2 bin=$3 dbname=$4 redis_port=$5 fixture_dir=$6
	local trace=$tmp/trips.$name.trace
	local proxy_port proxy_pid token req i a b game_id=''
	: >"$trace"
	rm -f "$tmp/pgtrace.$name.port"
	setsid luajit tools/bench/pgtrace.lua "$PGPORT" "$tmp/pgtrace.$name.port" "$trace" 2>"$tmp/pgtrace.$name.err" &
	proxy_pid=$!
	pids+=("$proxy_pid")
	for ((i = 0; i < 50; i++)); do
		[[ -s $tmp/pgtrace.$name.port ]] && break
		sleep 0.1
	done
	proxy_port=$(cat "$tmp/pgtrace.$name.port") || die "the SQL capture proxy did not start"
	start_host "trips$name" "$dir" "$bin" 0 1 DB_POOL_SIZE=1 OUTBOX_RELAY_INTERVAL_MS=600000 \
		REDIS_PORT="$redis_port" FIXTURE_SCRIPTS="$fixture_dir" \
		DATABASE_URL="postgresql://$PGUSER@127.0.0.1:$proxy_port/$dbname?sslmode=disable&gssencmode=disable"
	local port_var=trips${name}_PORT
	local port=${!port_var}
	signup "$port" "bt$name" "$([[ $name == base ]] && echo 95 || echo 94)" 1 "$tmp/trips.$name.tokens" 100000000
	token=$(cut -d' ' -f2 "$tmp/trips.$name.tokens")
	: >"$tmp/trips.$name"
	for ((i = 0; i < 3; i++)); do
		for req in "${TRIP_REQUESTS[@]}"; do
			[[ $req == mission_claim && $i -gt 0 ]] && continue
			a=$(($(wc -l <"$trace") + 1))
			case $req in
			spin) trips_post "$port" "$token" /api/games/slot/spin "{\"bet_amount\":$BET}" ;;
			rps) trips_post "$port" "$token" /api/games/rps/play "{\"choice\":\"rock\",\"bet_amount\":$BET}" ;;
			gacha) trips_post "$port" "$token" /api/games/gacha/pull '{"pull_count":1}' ;;
			crash_bet)
				trips_post "$port" "$token" /api/games/crash/bet "{\"bet_amount\":$BET}"
				game_id=$(luajit -e 'local t = require"cjson".decode(io.read"*a") print(t.game_id or "")' <"$tmp/trips.answer")
				;;
			crash_cashout) trips_post "$port" "$token" /api/games/crash/cashout "{\"game_id\":\"$game_id\"}" ;;
			mission_claim) trips_post "$port" "$token" /api/events/missions/claim/1 ;;
			esac
			b=$(wc -l <"$trace")
			grep -q '"detail"' "$tmp/trips.answer" && say "bench: trips: $name $req answered $(head -c 200 "$tmp/trips.answer")"
			echo "$req $(trips_count "$trace" "$a" "$b")" >>"$tmp/trips.$name"
		done
	done
	stop_host "trips$name"
	kill "$proxy_pid" 2>/dev/null || true
}

# The smallest "trips statements" of request $2 in file $1.
trips_min() {
	awk -v r="$2" '$1 == r && (best == "" || $2 < best) { best = $2; n = $3 } END { print best, n }' "$1"
}

group_trips() {
	say "bench: round trips per request (through the SQL capture proxy, one connection)"
	trips_of new "$PWD" "$CCHOST" casino "$REDIS_PORT" "$fixtures"
	[[ -n $BASELINE ]] && trips_of base "$BASE_DIR" "$BASE_BIN" casino_base "$BASE_REDIS_PORT" "$tmp/base-fixtures"
	local req base new_t new_n base_t base_n
	{
		printf '\nRound trips (and statements) per request, one pooled connection, the fewest of 3 runs\n'
		printf '  %-30s %18s %18s\n' request "cchost" "${BASELINE:+baseline $BASE_SHA}"
		for req in "${TRIP_REQUESTS[@]}"; do
			read -r new_t new_n < <(trips_min "$tmp/trips.new" "$req")
			base=''
			if [[ -n $BASELINE ]]; then
				read -r base_t base_n < <(trips_min "$tmp/trips.base" "$req")
				base="$base_t ($base_n)"
			fi
			printf '  %-30s %18s %18s\n' "${TRIP_LABEL[$req]}" "$new_t ($new_n)" "$base"
		done
	} >>"$tmp/report"
}
