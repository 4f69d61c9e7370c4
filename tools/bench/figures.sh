# shellcheck shell=bash disable=SC2034,SC2153,SC2154
# (globals are shared with tools/bench.sh and the other files it sources;
# start_host sets <name>_PORT and <name>_PGID by name)
# figures.sh - the figure groups of the benchmark (sourced by
# tools/bench.sh). Each group defines its targets (t_<name>: one measured
# run, one result line), runs them in interleaved rounds, and prints its
# table with the ratios; ratios that belong in the README's table also go to
# the summary. Targets named *_base run against the baseline build (only
# with BENCH_BASELINE).

ROTATE=tools/bench/wrk/rotate.lua
PIPELINE=tools/bench/wrk/pipeline.lua

# The targets of a group, with the baseline's when there is one.
with_base() {
	local t
	for t in "$@"; do
		if [[ $t == *_base ]]; then [[ -n $BASELINE ]] && printf '%s\n' "$t"; else printf '%s\n' "$t"; fi
	done
}

# --------------------------------------------------------------- 1. JSON

# on NAME PATH CONNS [wrk options...]: wrk_run against the server started as
# NAME (new, base, new2, NGINX), its process group's CPU reported beside.
on() {
	local pgid=${1}_PGID port=${1}_PORT
	shift
	SRV_GROUPS=${!pgid} wrk_run "${!port}" "$@"
}

t_json_new() { on new /bench/ping 50; }
t_json_nginx() { on NGINX /bench/ping 50; }
t_json_base() { on base /bench/ping 50; }
t_json4_new() { on new /bench/ping 50 -s "$PIPELINE" -- 4; }
t_json4_nginx() { on NGINX /bench/ping 50 -s "$PIPELINE" -- 4; }
t_json4_base() { on base /bench/ping 50 -s "$PIPELINE" -- 4; }

group_json() {
	say "bench: 1. JSON route GET /bench/ping vs nginx (wrk -t1 -c50, with and without 4-deep pipelining)"
	start_nginx 1 0
	# shellcheck disable=SC2046
	ROUND_RESTART=fixtures rounds json $(with_base json_new json_base json_nginx)
	# shellcheck disable=SC2046
	ROUND_RESTART=fixtures rounds json4 $(with_base json4_new json4_base json4_nginx)
	stop_group "$NGINX_PGID"
	{
		table json "1. JSON route GET /bench/ping, 1 worker on core 0, wrk -t1 -c50 on core 1" "req/s" \
			json_new:"cchost" json_nginx:"nginx (same body)" json_base:"cchost baseline $BASE_SHA"
		ratio json json_new json_nginx "cchost/nginx" "JSON route, 1 worker" "nginx"
		ratio json json_new json_base "new/baseline" "JSON route vs baseline $BASE_SHA" "baseline"
		table json4 "   the same with 4-deep pipelining (wrk script tools/bench/wrk/pipeline.lua)" "req/s" \
			json4_new:"cchost" json4_nginx:"nginx (same body)" json4_base:"cchost baseline $BASE_SHA"
		ratio json4 json4_new json4_nginx "cchost/nginx" "JSON route, 1 worker, pipelined x4" "nginx"
		ratio json4 json4_new json4_base "new/baseline" "JSON route pipelined vs baseline $BASE_SHA" "baseline"
	} >>"$tmp/report"
}

# -------------------------------------------------------------- 2. Redis

redis_incr() { on "$1" /test/redis/incr 50 -s "$ROTATE" -- "$tmp/one" POST "/test/redis/incr?key=bench:incr"; }
t_redis_new() { redis_incr new; }
t_redis_base() { redis_incr base; }
t_redis_ref() { SRV_GROUPS='' redis_run "$REDIS_PORT" 50; }

group_redis() {
	say "bench: 2. Redis route POST /test/redis/incr vs redis-benchmark -t incr (50 connections each)"
	# shellcheck disable=SC2046
	ROUND_RESTART=fixtures rounds redis $(with_base redis_new redis_base redis_ref)
	{
		table redis "2. One Redis INCR per request (host: one Redis connection per worker, requests in flight pipelined on it)" \
			"req/s" redis_new:"cchost POST /test/redis/incr" redis_ref:"redis-benchmark -t incr -c50" \
			redis_base:"cchost baseline $BASE_SHA"
		ratio redis redis_new redis_ref "cchost/redis-benchmark" "Redis INCR route" "redis-benchmark -t incr"
		ratio redis redis_new redis_base "new/baseline" "Redis INCR route vs baseline $BASE_SHA" "baseline"
	} >>"$tmp/report"
}

# --------------------------------------------------------- 3. PostgreSQL

db_update() { on "$1" /bench/db/update 50 -s "$ROTATE" -- "$tmp/rows" POST "/bench/db/update?id={}"; }
t_pg_new() { db_update new; }
t_pg_base() { db_update base; }
t_pg_ref() { update_pgbench "$PG_CLIENTS"; }

# pgbench of POST /bench/db/update's statement with $1 clients.
update_pgbench() {
	SRV_GROUPS='' pgbench_run "$DATABASE_URL" "$1" -f tools/bench/update.sql -D seq=0 -D nrows="$ROWS" \
		-D stride=$((ROWS / $1))
}

group_pg() {
	say "bench: 3. PostgreSQL route POST /bench/db/update vs pgbench of the same statement"
	# shellcheck disable=SC2046
	ROUND_RESTART=fixtures rounds pg $(with_base pg_new pg_base pg_ref)
	{
		table pg "3. One autocommit UPDATE … RETURNING per request (wrk -c50; pgbench -c$PG_CLIENTS = the host's pool)" \
			"req/s" pg_new:"cchost POST /bench/db/update" pg_ref:"pgbench, same statement" \
			pg_base:"cchost baseline $BASE_SHA"
		ratio pg pg_new pg_ref "cchost/pgbench" "PostgreSQL UPDATE route" "pgbench, same statement"
		ratio pg pg_new pg_base "new/baseline" "PostgreSQL UPDATE route vs baseline $BASE_SHA" "baseline"
	} >>"$tmp/report"
}

# ----------------------------------------------------------- 4. the spin

# spin NAME TOKENS: slot spins of the players whose tokens are in TOKENS.
spin() { on "$1" /api/games/slot/spin 50 -s "$ROTATE" -- "$2" POST /api/games/slot/spin "{\"bet_amount\":$BET}" auth; }
t_spin_new() { spin new "$tmp/players.jwt"; }
t_spin_base() { spin base "$tmp/players.base.jwt"; }
t_spinopen_new() { t_spin_new; }
t_spinopen_base() { t_spin_base; }

# What a spin costs depends on the player's missions: while one the spin
# counts for is unfinished, the spin writes its progress; once all are
# finished, the build under test writes nothing for them (missions.lua).
# mission_targets VALUE | restore: sets every mission's target in the
# databases of both builds (the first call keeps the seeded targets in
# bench_targets), or puts the seeded targets back.
mission_targets() {
	local db sql
	if [[ $1 == restore ]]; then
		sql="UPDATE missions m SET target_value = b.target_value FROM bench_targets b WHERE b.id = m.id"
	else
		sql="SET client_min_messages = warning;
			CREATE TABLE IF NOT EXISTS bench_targets AS SELECT id, target_value FROM missions;
			UPDATE missions SET target_value = $1"
	fi
	for db in "$MAIN_DATABASE_URL" ${BASELINE:+"$BASE_DATABASE_URL"}; do
		psql -q -v ON_ERROR_STOP=1 "$db" -c "$sql" >/dev/null || die "cannot set the mission targets"
	done
}

# settle_spins NAME TOKENS: 4 s of spins, not measured (each player about
# four spins or more): with targets of 1, every player's missions finish.
settle_spins() {
	local port=${1}_PORT
	taskset -c "$LG_CPUS" wrk -t1 -c50 -d4s -s "$ROTATE" "http://127.0.0.1:${!port}/api/games/slot/spin" \
		"$2" POST /api/games/slot/spin "{\"bet_amount\":$BET}" auth >/dev/null 2>&1 || die "the settling spins failed"
}
t_spin_sql() { spin_pgbench "$PG_CLIENTS"; }
t_spin_floor() { update_pgbench "$PG_CLIENTS"; }

# pgbench of the captured spin SQL with $1 clients, over the players.
spin_pgbench() {
	SRV_GROUPS='' pgbench_run "$DATABASE_URL" "$1" "${SPIN_SCRIPTS[@]}" "${SPIN_DEFS[@]}" -D seq=0 \
		-D umin="$PLAYER_MIN" -D nusers="$PLAYERS" -D stride=$((PLAYERS / $1))
}

# What PostgreSQL does per spin, from pg_stat_statements and the WAL position
# over a short run of real spins on the host (no warm-up: the group just ran).
spin_pg_profile() {
	local lsn0 lsn1 n
	psql -qAt -c "SELECT pg_stat_statements_reset()" >/dev/null
	lsn0=$(psql -qAt -c "SELECT pg_current_wal_lsn()")
	taskset -c "$LG_CPUS" wrk -t1 -c50 -d2s -s "$ROTATE" "http://127.0.0.1:$new_PORT/api/games/slot/spin" \
		"$tmp/players.jwt" POST /api/games/slot/spin "{\"bet_amount\":$BET}" auth >"$tmp/spin.profile.run" || return 0
	lsn1=$(psql -qAt -c "SELECT pg_current_wal_lsn()")
	n=$(awk '$2 == "requests" && $3 == "in" { print $1 }' "$tmp/spin.profile.run")
	((${n:-0} > 0)) || return 0
	psql -qAt -F ' ' -v n="$n" -v lsn0="$lsn0" -v lsn1="$lsn1" <<-'EOF' >"$tmp/spin.profile"
		SELECT 'per spin over ' || :n || ' spins: ' || round(sum(calls)::numeric / :n, 2) || ' statements, '
		  || round(pg_wal_lsn_diff(:'lsn1', :'lsn0') / :n) || ' WAL bytes, '
		  || round((sum(total_exec_time) / :n)::numeric, 3) || ' ms statement execution, '
		  || round(sum(shared_blks_dirtied)::numeric / :n, 2) || ' blocks dirtied'
		FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database());
		SELECT '  ' || lpad(round((calls::numeric / :n), 2)::text, 5) || ' x ' || lpad(round((mean_exec_time * 1000)::numeric)::text, 5)
		  || ' us ' || lpad(round(wal_bytes / calls)::text, 6) || ' WAL B  ' || left(regexp_replace(query, '\s+', ' ', 'g'), 90)
		FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND calls >= :n / 4 ORDER BY total_exec_time DESC LIMIT 12;
	EOF
}

# Two regimes, the same players: first every spin advances the player's
# missions (targets out of reach), then the player's missions are finished
# (targets of 1, settled by unmeasured spins), the steady state of an active
# player; the captured SQL (taken with targets of 1, bench.sh) and the
# pg_stat_statements profile are of the second. The seeded targets are put
# back afterwards.
group_spin() {
	# every round restarts both hosts without fixture scripts (ROUND_RESTART)
	say "bench: 4. slot spin: hosts without fixture scripts, as in production (tools/bench/stack.sh restart_hosts)"
	say "bench: 4. slot spin: every spin advancing missions, vs the baseline"
	mission_targets 1000000000
	# shellcheck disable=SC2046
	ROUND_RESTART=production ROUND_QUIESCE=30 rounds spinopen $(with_base spinopen_new spinopen_base)
	say "bench: 4. slot spin, missions finished: vs pgbench of the SQL it runs (captured) and vs the one-statement floor"
	mission_targets 1
	settle_spins new "$tmp/players.jwt"
	[[ -n $BASELINE ]] && settle_spins base "$tmp/players.base.jwt"
	# shellcheck disable=SC2046
	ROUND_RESTART=production ROUND_QUIESCE=30 rounds spin $(with_base spin_new spin_base spin_sql spin_floor)
	spin_pg_profile
	mission_targets restore
	restart_hosts fixtures
	{
		table spinopen "4. POST /api/games/slot/spin, $PLAYERS pre-funded players in turn, every spin advancing their missions (wrk -c50)" \
			"spins/s" spinopen_new:"cchost slot spin" spinopen_base:"cchost baseline $BASE_SHA"
		ratio spinopen spinopen_new spinopen_base "new/baseline" "slot spin vs baseline $BASE_SHA, missions open" "baseline"
		table spin "4. The same players, their missions finished (pgbench -c$PG_CLIENTS = the host's pool)" \
			"spins/s" spin_new:"cchost slot spin" spin_sql:"pgbench, captured spin SQL" \
			spin_floor:"pgbench, one-statement UPDATE" spin_base:"cchost baseline $BASE_SHA"
		ratio spin spin_new spin_sql "cchost/pgbench of its SQL" "slot spin, 1 worker" "pgbench of the spin's SQL"
		ratio spin spin_new spin_floor "cchost/one-statement floor" "slot spin vs the floor" "pgbench one-statement UPDATE"
		ratio spin spin_sql spin_floor "spin SQL/one-statement floor"
		ratio spin spin_new spin_base "new/baseline" "slot spin vs baseline $BASE_SHA, missions finished" "baseline"
		printf '  the captured SQL (%s):\n' "tools/bench/spinsql.lua"
		sed 's/^/    /' "$tmp/spin.captured"
		[[ -s $tmp/spin.profile ]] && printf '  PostgreSQL %s\n' "$(head -n 1 "$tmp/spin.profile")" &&
			printf '  calls/spin x mean time, WAL bytes per call, statement (pg_stat_statements):\n' &&
			tail -n +2 "$tmp/spin.profile" | sed 's/^/  /'
	} >>"$tmp/report"
}

# ----------------------------------------------------------- 5. logins

t_login_new() {
	on new /api/auth/login "$LOGIN_CONNS" --timeout 30s -s "$ROTATE" -- \
		"$tmp/login.sites" POST /api/auth/login '{"site_id":"{}","password":"bench-password-1"}'
}
t_login_argon2() { on new /bench/argon2 "$LOGIN_CONNS" --timeout 30s; }

group_login() {
	say "bench: 5. logins per second vs the raw argon2id rate (GET /bench/argon2)"
	rounds login login_new login_argon2
	{
		table login "5. POST /api/auth/login (argon2id verify on the thread pool) vs one verify per request, wrk -c$LOGIN_CONNS" \
			"req/s" login_new:"cchost login" login_argon2:"GET /bench/argon2 (verify only)"
		ratio login login_new login_argon2 "login/argon2 verify" "logins per second" "argon2id verify per second"
		# CPU per request from the measured CPU (core 0 may be shared): % x 10 / rate
		awk 'NR == FNR { l[FNR] = $5 * 10 / $1; p[FNR] = $6 * 10 / $1; next }
			{ printf "%.2f %.2f %.2f\n", l[FNR], $5 * 10 / $1, p[FNR] }' \
			"$tmp/res/login/login_new" "$tmp/res/login/login_argon2" >"$tmp/login.cpu"
		printf '  CPU per request (core-ms, medians): host per login %.1f, host per verify %.1f, PostgreSQL per login %.1f\n' \
			"$(stat_of "$tmp/login.cpu" 1 | cut -d' ' -f1)" "$(stat_of "$tmp/login.cpu" 2 | cut -d' ' -f1)" \
			"$(stat_of "$tmp/login.cpu" 3 | cut -d' ' -f1)"
	} >>"$tmp/report"
}

# ------------------------------------------------------ multi-worker

t_mwjson_new() { on new2 /bench/ping 50; }
t_mwjson_nginx() { on NGINX /bench/ping 50; }
t_mwjson4_new() { on new2 /bench/ping 50 -s "$PIPELINE" -- 4; }
t_mwjson4_nginx() { on NGINX /bench/ping 50 -s "$PIPELINE" -- 4; }
t_mwspin_new() { spin new2 "$tmp/players.jwt"; }
t_mwspin_sql() { spin_pgbench $((PG_CLIENTS * 2)); }

# What limits target $2 of group $1: the CPU shares (medians) of its run.
limits() {
	local f=$tmp/res/$1/$2 lg host pg redis
	read -r lg _ _ < <(stat_of "$f" 4)
	read -r host _ _ < <(stat_of "$f" 5)
	read -r pg _ _ < <(stat_of "$f" 6)
	read -r redis _ _ < <(stat_of "$f" 7)
	awk -v what="$3" -v lg="$lg" -v h="$host" -v p="$pg" -v r="$redis" -v lgname="$4" 'BEGIN {
		total = lg + h + p + r
		big = "the server"; m = h
		if (p > m) { big = "PostgreSQL"; m = p }
		if (lg > m) { big = "the load generator"; m = lg }
		printf "  %s: CPU %s %.0f %% + server %.0f %% + PostgreSQL %.0f %% + Redis %.0f %% = %.0f %% of 200 %%",
			what, lgname, lg, h, p, r, total
		if (total >= 170) printf "; both cores are busy, %s the most: CPU is the limit\n", big
		else printf "; %.0f %% left to other processes of this shared machine or idle: waits and contention limit it\n", 200 - total
	}'
}

group_multi() {
	say "bench: multi-worker: WORKERS=2, everything on both cores"
	pin_services 0,1
	LG_CPUS=0,1
	start_host new2 "$PWD" "$CCHOST" 0,1 2 DB_POOL_SIZE="$DB_POOL"
	start_nginx 2 0,1
	rounds mwjson mwjson_new mwjson_nginx
	rounds mwjson4 mwjson4_new mwjson4_nginx
	stop_group "$NGINX_PGID"
	rounds mwspin mwspin_new mwspin_sql
	stop_host new2
	LG_CPUS=1
	pin_services 0
	{
		table mwjson "Multi-worker: WORKERS=2 (and nginx with 2 workers), unpinned, wrk -t2 -c50 on the same two cores" \
			"req/s" mwjson_new:"cchost 2 workers" mwjson_nginx:"nginx 2 workers"
		ratio mwjson mwjson_new mwjson_nginx "cchost/nginx" "JSON route, 2 workers" "nginx, 2 workers"
		ratio_across mwjson mwjson_new json json_new "2 workers/1 worker"
		table mwjson4 "   the same with 4-deep pipelining" "req/s" mwjson4_new:"cchost 2 workers" \
			mwjson4_nginx:"nginx 2 workers"
		ratio mwjson4 mwjson4_new mwjson4_nginx "cchost/nginx" "JSON route, 2 workers, pipelined x4" "nginx, 2 workers"
		table mwspin "   slot spin, WORKERS=2 (pool 2 x $DB_POOL), pgbench -c$((PG_CLIENTS * 2))" "spins/s" \
			mwspin_new:"cchost 2 workers" mwspin_sql:"pgbench, captured spin SQL"
		ratio mwspin mwspin_new mwspin_sql "cchost/pgbench of its SQL" "slot spin, 2 workers" "pgbench of the spin's SQL"
		ratio_across mwspin mwspin_new spin spin_new "2 workers/1 worker"
		printf '  What limits them on this 2-core machine (the load generator shares the two cores with the\n'
		printf '  servers, so two workers cannot double one worker'"'"'s figure; CPU shares of the median round):\n'
		limits mwjson mwjson_new "JSON, 2 workers" wrk
		limits mwjson4 mwjson4_new "JSON x4, 2 workers" wrk
		limits mwspin mwspin_new "spin, 2 workers" wrk
		limits mwspin mwspin_sql "spin SQL, pgbench" pgbench
	} >>"$tmp/report"
}

# Medians of target $2 of group $1 over target $4 of group $3 (when both ran).
ratio_across() {
	local a b
	[[ -s $tmp/res/$1/$2 && -s $tmp/res/$3/$4 ]] || return 0
	read -r a _ _ < <(stat_of "$tmp/res/$1/$2" 1)
	read -r b _ _ < <(stat_of "$tmp/res/$3/$4" 1)
	awk -v a="$a" -v b="$b" -v l="$5" 'BEGIN { if (b > 0) printf "  ratio %-40s %.3f (medians)\n", l, a / b }'
}

# ------------------------------------------------------ 6. admin search

# quiesce SECONDS: waits (up to SECONDS) until both builds' outbox rows are
# relayed and no autovacuum worker runs. The earlier groups may leave such
# work behind on core 0: in one full run, the searches measured right after
# them ran 2 to 20 times slower than alone. The spin groups quiesce before
# every target (ROUND_QUIESCE): pgbench of the spin's SQL leaves about
# 20 000 outbox rows for the new build's host to relay, and the tables'
# autovacuum runs for seconds, on whatever target comes next.
quiesce() {
	local i busy db
	for ((i = 0; i < $1; i++)); do
		busy=0
		for db in "$MAIN_DATABASE_URL" ${BASELINE:+"$BASE_DATABASE_URL"}; do
			busy=$((busy + $(psql -qAt "$db" -c "SELECT count(*) FROM outbox_events WHERE relayed_at IS NULL"))) ||
				die "cannot read the outbox"
		done
		busy=$((busy + $(psql -qAt -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'")))
		((busy == 0)) && break
		sleep 1
	done
	if ((busy == 0)); then
		say "  quiet after $i s (outbox relayed, no autovacuum running)"
	else
		say "  not quiet after $i s ($busy outbox rows and autovacuum workers left): measuring anyway"
	fi
}

# The users are vacuumed, not only analyzed, so every run measures the state
# autovacuum leaves (the trigram indexes' pending list merged, the visibility
# map set).
group_admin_search() {
	say "bench: 6. admin search over 100 000 users"
	local frag like match matches reltuples page rps p50 p99
	quiesce 180
	psql -q -v ON_ERROR_STOP=1 >/dev/null <<-'EOF'
		INSERT INTO users (site_id, nickname, phone_number, password_hash, created_at)
		SELECT 'bench' || g, 'n' || substr(md5(g::text), 1, 12), '010' || lpad(g::text, 8, '0'), 'x',
		       now() - g * interval '1 second'
		FROM generate_series(1, 100000) g;
		INSERT INTO wallet_balances (user_id, currency, balance)
		SELECT id, 'tokens', 200 FROM users WHERE site_id LIKE 'bench%';
		VACUUM ANALYZE users;
		VACUUM ANALYZE wallet_balances;
	EOF
	{
		printf '\n6. Admin search, 100 000 users: GET /api/admin/users?search=<fragment>&page=2 (wrk -c10, one run each)\n'
		printf '  %-8s %8s %10s %10s %10s %12s\n' fragment matches req/s "p50 ms" "p99 ms" "explain ms"
	} >>"$tmp/report"
	for frag in a1b 7f 9; do
		read -r rps p50 p99 _ < <(on new "/api/admin/users?search=$frag&page=2" 10 \
			-H "Authorization: Bearer $ADMIN_TOKEN")
		like="%$frag%"
		match="u.nickname ILIKE '$like' OR u.site_id ILIKE '$like' OR u.phone_number ILIKE '$like'"
		# the page as domain/backoffice.lua reads it: few matches collected
		# first, many walked newest first (its collect_first, offset 20 + 20)
		read -r matches reltuples < <(psql -qAt -F ' ' -c "SELECT count(*),
			(SELECT reltuples FROM pg_class WHERE oid = 'users'::regclass) FROM users u WHERE $match")
		if awk -v m="$matches" -v n="$reltuples" 'BEGIN { exit !(m * m <= 40 * (n > m ? n : m) / 2) }'; then
			page="WITH m AS MATERIALIZED (SELECT u.id, u.created_at FROM users u WHERE $match)
				SELECT id FROM m ORDER BY created_at DESC, id DESC LIMIT 20 OFFSET 20"
		else
			page="SELECT u.id FROM users u WHERE $match ORDER BY u.created_at DESC, u.id DESC LIMIT 20 OFFSET 20"
		fi
		psql -qAt -c "EXPLAIN ANALYZE SELECT count(*) FROM users u WHERE $match; EXPLAIN ANALYZE $page" |
			awk -v f="$frag" -v matches="$matches" -v rps="$rps" -v p50="$p50" -v p99="$p99" '
			/Execution Time/ { t += $3 }
			END { printf "  %-8s %8d %10.1f %10.3f %10.3f %12.3f\n", f, matches, rps, p50, p99, t }' >>"$tmp/report"
		printf '| admin search "%s", 100 000 users | p50 %.1f ms, %.0f/s | — | — |\n' "$frag" "$p50" "$rps" >>"$tmp/summary"
	done
}

# ------------------------------------------------------ 6. WebSocket

group_ws() {
	local users out pids
	say "bench: 6. WebSocket broadcast: $WS_SOCKETS sockets over two host processes"
	start_host ws2 "$PWD" "$CCHOST" 0 1
	users=$(((WS_SOCKETS + WS_PER_USER - 1) / WS_PER_USER))
	((users <= PLAYERS)) || die "BENCH_WS_SOCKETS needs more players (BENCH_PLAYERS)"
	head -n "$users" "$tmp/players.tokens" >"$tmp/ws.tokens"
	gcc -O2 -o "$tmp/wsclient" tools/bench/wsclient.c || die "cannot compile tools/bench/wsclient.c"
	pids=$(cat "$tmp/new.workers" "$tmp/ws2.workers" | paste -sd,)
	out=$(taskset -c 1 "$tmp/wsclient" "$tmp/ws.tokens" "$new_PORT,$ws2_PORT" "$WS_PER_USER" "$new_PORT" \
		"$ADMIN_TOKEN" "$WS_ROUNDS" "$pids") || die "the WebSocket client failed"
	stop_host ws2
	{
		printf '\n6. WebSocket: %s notification sockets (%s users x %s) over two host processes (1 worker each, core 0),\n' \
			"$((users * WS_PER_USER))" "$users" "$WS_PER_USER"
		printf '   an epoll client on core 1 (tools/bench/wsclient.c); %s broadcasts and %s targeted sends\n' \
			"$WS_ROUNDS" "$WS_ROUNDS"
		tr ' ' '\n' <<<"$out" | sed 's/^/  /'
		awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
			END {
				nb = split(v["rss_before_kb"], b, ","); split(v["rss_after_kb"], a, ",")
				for (i = 1; i <= nb; i++) grow += a[i] - b[i]
				if (v["sockets"] > 0) printf "  RSS growth: %.1f MB per 10 000 sockets (goal < 40 MB)\n", grow / v["sockets"] * 10000 / 1024
			}' <<<"$out"
	} >>"$tmp/report"
	awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
		END { printf "| broadcast to %s sockets, 2 hosts: last delivery | p50 %s ms, p99 %s ms | goal < 250 ms | — |\n", v["sockets"], v["broadcast_last_p50_ms"], v["broadcast_last_p99_ms"] }' \
		<<<"$out" >>"$tmp/summary"
}
