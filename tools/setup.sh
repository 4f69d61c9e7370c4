#!/usr/bin/env bash
# Installs the Debian 12 packages the project needs to build, run and test
# (and, with --bench, to benchmark: wrk, nginx, redis-benchmark; pgbench and
# pg_stat_statements come with postgresql). It asks dpkg first and only calls apt
# when something is missing, so `make run` / `make test` can call it every
# time at no cost on a machine that is already set up.
#
# Installing `postgresql` lets Debian create and start its default cluster
# ("main"; pg_createcluster moves to the next free port if 5432 is taken).
# The project never uses that cluster and leaves it alone: tools/services.sh
# runs a private cluster of its own.
#
# Usage: tools/setup.sh [--bench]
set -euo pipefail

packages=(
	build-essential cmake pkg-config
	libluajit-5.1-dev libuv1-dev node-llhttp libpq-dev libhiredis-dev
	libjwt-dev libjansson-dev libssl-dev libsodium-dev lua-cjson-dev
	luajit lua-busted lua-cjson lua-socket lua-posix
	postgresql redis-server curl
)
# Test only: promtool, which spec/integration/metrics_spec.lua runs on GET
# /metrics. It comes with the Prometheus server, whose package would start
# it on :9090; nothing of it may run here (see the install below).
# Also haproxy (spec/integration/deploy_spec.lua and the fault drill run
# docker/haproxy.cfg in front of two hosts; its service is held back the
# same way) and docker-compose (deploy_spec validates docker/compose.yml
# with `docker-compose config`: no Docker engine needed).
# Also chromium, the headless browser of the console's journeys
# (spec/integration/console_spec.lua drives /usr/bin/chromium with
# playwright-core, which never downloads a browser of its own), with fonts
# for the Korean texts and the slot's emoji symbols of its screenshots.
test_packages=(prometheus haproxy docker-compose chromium fonts-nanum fonts-noto-color-emoji)
packages+=("${test_packages[@]}")

# Node and npm install the assets of /docs and /redoc (tools/docs/install.sh:
# npm ci from the committed lock, skipped when that lock is what is
# installed). Use the ones on PATH when there are: these machines ship
# Node 20 with npm 11 from outside Debian, which Debian's npm package
# conflicts with; else Debian's.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then packages+=(nodejs npm); fi
docs_assets() { "$(dirname "$0")/docs/install.sh"; }

case "${1:-}" in
'') ;;
--bench) packages+=(wrk nginx-light redis-tools) ;;
*)
	echo "usage: $0 [--bench]" >&2
	exit 2
	;;
esac

# One dpkg-query for all packages; unknown ones print nothing on stdout.
declare -A installed=()
while IFS=$'\t' read -r name status; do
	[[ $status == "install ok installed" ]] && installed[$name]=1
done < <(dpkg-query -W -f='${Package}\t${Status}\n' "${packages[@]}" 2>/dev/null || true)

missing=()
for p in "${packages[@]}"; do
	[[ -n ${installed[$p]:-} ]] || missing+=("$p")
done
((${#missing[@]} == 0)) && { docs_assets; exit 0; }

echo "setup: installing ${missing[*]}" >&2
if ((EUID != 0)); then
	echo "setup: run as root (or install these packages yourself)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# A package of test_packages ships a server: install it without starting it
# (a policy-rc.d that answers 101 is Debian's switch for that, unless the
# machine has its own; it holds back every service of this install, also
# PostgreSQL's default cluster, which the project does not use), and mask
# its unit so no boot starts it either.
if [[ " ${missing[*]} " == *" prometheus "* || " ${missing[*]} " == *" haproxy "* ]]; then
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		trap 'rm -f /usr/sbin/policy-rc.d' EXIT
	fi
	if command -v systemctl >/dev/null; then systemctl mask prometheus.service haproxy.service >/dev/null 2>&1 || true; fi
fi
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
docs_assets
