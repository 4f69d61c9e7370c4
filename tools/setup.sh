#!/usr/bin/env bash
# Installs the Debian 12 packages the project needs to build, run and test
# (and, with --bench, to benchmark). It asks dpkg first and only calls apt
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

case "${1:-}" in
'') ;;
--bench) packages+=(wrk nginx-light) ;;
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
((${#missing[@]} == 0)) && exit 0

echo "setup: installing ${missing[*]}" >&2
if ((EUID != 0)); then
	echo "setup: run as root (or install these packages yourself)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
