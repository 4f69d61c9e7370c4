#!/usr/bin/env bash
# deps.sh - proves that the C files of host/ depend on each other one way.
#   tools/deps.sh [BUILD_DIR]    (default: build; ctest runs it as "deps")
#
# Why: a file that calls a second one which calls back into the first (vm.c
# opening every binding while the bindings call vm_resume) can be read,
# tested or replaced only together with it. The files of host/ form layers
# instead: a binding calls vm, the worker calls everything, and where a call
# would go back up a layer, the upper file installs a callback
# (lua_host_set_reloader, vm_set_upgrade_handler).
#
# How: the objects of a build say it exactly. For each host/*.c (of the
# sources that build was configured from), `nm -P -g` on its object lists
# the global symbols it defines and the ones it uses; file A depends on file B
# when A uses a symbol that B defines, whether it calls it or takes its
# address (installing B's function as a callback is still A knowing B). The
# script prints the file graph, by layer (0: calls no other host file), then
# exits 1 if some files form a cycle, printing each cycle's edges with the
# symbols behind them.
#
# The check is at file level on purpose. A circle of calls between functions
# of different files (f in A calls g in B, which calls back h in A) is a
# circle of files too, so it cannot slip through; recursion inside one file
# is no dependency between files. The file level is also stricter: A -> B and
# B -> A through unrelated functions is a cycle here, and that is the point,
# since the rule is about files being layers.
#
# Exit codes: 0 no cycle, 1 a cycle, 2 usage error or an object is missing.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build}
if [[ ! -f $build/CMakeCache.txt ]]; then
  echo "deps.sh: $build is not a CMake build folder (build first, or name one)" >&2
  exit 2
fi
# Judge the sources this build was made from, which need not be this checkout.
src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build/CMakeCache.txt")
src=${src:-$root}

# One object per source; objects of sources that no longer exist are stale
# and ignored.
symbols=$(
  for c in "$src"/host/*.c; do
    name=$(basename "$c" .c)
    mapfile -t objs < <(find "$build" -path "*/CMakeFiles/*.dir/host/$name.c.o" -type f)
    if ((${#objs[@]} != 1)); then
      echo "deps.sh: expected one object of host/$name.c in $build, found ${#objs[@]} (build first)" >&2
      exit 2
    fi
    # -P: "name type [value size]"; U and w are uses, other types definitions.
    nm -P -g "${objs[0]}" | awk -v f="$name" '{ print f, $1, ($2 == "U" || $2 == "w") ? "use" : "def" }'
  done
) || exit 2

awk '
  !($1 in seen) { seen[$1] = 1; name[++n] = $1 }   # files come in name order
  $3 == "def" { owner[$2] = $1 }
  $3 == "use" { nuse++; ufile[nuse] = $1; usym[nuse] = $2 }
  # Tarjan: numbers strongly connected components in reverse topological
  # order, so an edge leaving a component goes to a lower number.
  function strong(v,   i, w) {
    ix[v] = low[v] = ++counter
    stack[++sp] = v
    on[v] = 1
    for (i = 1; i <= nout[v]; i++) {
      w = out[v, i]
      if (!(w in ix)) {
        strong(w)
        if (low[w] < low[v]) low[v] = low[w]
      } else if (on[w] && ix[w] < low[v]) low[v] = ix[w]
    }
    if (low[v] == ix[v]) {
      nscc++
      do {
        w = stack[sp--]
        on[w] = 0
        scc[w] = nscc
        size[nscc]++
      } while (w != v)
    }
  }
  END {
    for (k = 1; k <= nuse; k++) {
      if (!(usym[k] in owner)) continue   # libc, libuv, LuaJIT...
      a = ufile[k]
      b = owner[usym[k]]
      nedges += !((a, b) in why)
      why[a, b] = why[a, b] " " usym[k]
    }
    for (i = 1; i <= n; i++)
      for (j = 1; j <= n; j++)
        if ((name[i], name[j]) in why) out[name[i], ++nout[name[i]]] = name[j]
    for (i = 1; i <= n; i++) if (!(name[i] in ix)) strong(name[i])
    # A layer is one more than the highest layer it calls into; components
    # come sinks first, so the layers they call into are settled first.
    for (c = 1; c <= nscc; c++)
      for (i = 1; i <= n; i++) {
        f = name[i]
        if (scc[f] != c) continue
        for (k = 1; k <= nout[f]; k++) {
          w = out[f, k]
          if (scc[w] != c && layer[scc[w]] + 1 > layer[c]) layer[c] = layer[scc[w]] + 1
        }
        if (layer[c] > top) top = layer[c]
      }
    print "layer  file         calls into"
    for (l = 0; l <= top; l++)
      for (i = 1; i <= n; i++) {
        f = name[i]
        if (layer[scc[f]] != l) continue
        line = sprintf("%-6d %-12s", l, f)
        for (k = 1; k <= nout[f]; k++) line = line " " out[f, k]
        sub(/ +$/, "", line)
        print line
      }
    for (c = 1; c <= nscc; c++) {
      if (size[c] < 2) continue
      cycles++
      line = ""
      for (i = 1; i <= n; i++) if (scc[name[i]] == c) line = line " " name[i]
      printf "\nCYCLE between%s:\n", line
      for (i = 1; i <= n; i++)
        for (k = 1; k <= nout[name[i]]; k++)
          if (scc[name[i]] == c && scc[out[name[i], k]] == c)
            printf "  %s -> %s:%s\n", name[i], out[name[i], k], why[name[i], out[name[i], k]]
    }
    if (cycles) {
      printf "\n%d cycle%s between the files of host/: make the calls go one way (a callback registration inverts one)\n", cycles, cycles == 1 ? "" : "s"
      exit 1
    }
    printf "\nno cycle: %d files, %d edges\n", n, nedges
  }
' <<<"$symbols"
