#!/usr/bin/env bash
# build.sh - configures and builds cchost and its C tests with CMake.
#   tools/build.sh          release build with debug info in build/
#   tools/build.sh asan     AddressSanitizer + UBSan build in build-asan/
# Two jobs at most: the project's machines have two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = asan ]; then
  dir=build-asan
  flags=(-DCCHOST_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
else
  dir=build
  flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
fi
cmake -S . -B "$dir" "${flags[@]}" >/dev/null
cmake --build "$dir" -j2 -- --no-print-directory
