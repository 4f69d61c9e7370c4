#!/usr/bin/env bash
# install.sh - installs tools/docs/package.json's packages under var/docs
# (git-ignored) with `npm ci`, exactly as the committed package-lock.json
# pins them:
#   tools/docs/install.sh         what `make run` needs: the assets of /docs,
#                                 /redoc and /console (tools/setup.sh runs it)
#   tools/docs/install.sh --dev   also the test command's OpenAPI tools
#                                 (@redocly/cli, openapi-typescript,
#                                 typescript) and browser driver
#                                 (playwright-core, for Debian's chromium;
#                                 tools/test.sh runs it)
# npm ci wants package.json beside node_modules, so both files are copied
# into var/docs first. The SHA-256 of the two files and the mode are kept
# in var/docs/.installed; when they match (a --dev install also does for the
# plain one) nothing runs, so set-up can call this every time.
# --ignore-scripts: no package here needs an install script (swagger-ui-dist's
# one dependency, @scarf/scarf, only uses one to send install analytics;
# playwright-core never downloads a browser: the specs launch /usr/bin/chromium).
set -euo pipefail
cd "$(dirname "$0")/../.."
mode=runtime
case "${1:-}" in
'') ;;
--dev) mode=dev ;;
*)
	echo "usage: $0 [--dev]" >&2
	exit 2
	;;
esac
dest=var/docs
hash=$(cat tools/docs/package.json tools/docs/package-lock.json | sha256sum | cut -d' ' -f1)
stamp=$(cat "$dest/.installed" 2>/dev/null || true)
if [[ -d $dest/node_modules && ($stamp == "$hash dev" || ($mode == runtime && $stamp == "$hash runtime")) ]]; then
	exit 0
fi
mkdir -p "$dest"
rm -f "$dest/.installed"
cp tools/docs/package.json tools/docs/package-lock.json "$dest/"
flags=(--ignore-scripts --no-audit --no-fund --loglevel=error)
[[ $mode == runtime ]] && flags+=(--omit=dev)
echo "docs: npm ci ($mode) into $dest" >&2
npm ci --prefix "$dest" "${flags[@]}" >&2
echo "$hash $mode" >"$dest/.installed"
