#!/usr/bin/env bash
# The cost of one open of a protected file, measured in one run under four listeners:
#   none (bare open), a minimal allow-all fanotify responder in C, OnAccess with an allow-all scanner and the
#   caches off, and OnAccess with the caches on (second and later rounds).
# A C worker opens, reads 4 KiB of and closes N files M times and reports median and p99 ns per open.
# Needs root (fanotify). Usage: bench/OpenLatency/run.sh  # as root [N] [M]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
n=${1:-200}
m=${2:-20}
work=$(mktemp -d /tmp/onaccess-openlatency.XXXXXX)
listener=""
cleanup() {
  [ -n "$listener" ] && kill "$listener" 2>/dev/null && wait "$listener" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

gcc -O2 -o "$work/opener" "$here/opener.c"
gcc -O2 -o "$work/responder" "$here/responder.c"
dotnet build -c Release "$root/samples/ConsoleMonitor" >/dev/null
monitor="$root/samples/ConsoleMonitor/bin/Release/net10.0/ConsoleMonitor.dll"
mkdir "$work/files"
for i in $(seq 0 $((n - 1))); do head -c 1024 /dev/urandom > "$work/files/f$i"; done

measure() { "$work/opener" "$work/files" "$n" "$m" "$1"; }

wait_ready() { # file pattern
  for _ in $(seq 300); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "listener did not become ready: $(cat "$1")" >&2; exit 1
}

stop_listener() {
  kill -TERM "$listener" 2>/dev/null || true # background jobs of a script ignore SIGINT
  wait "$listener" 2>/dev/null || true
  listener=""
}

bare=$(measure 1)

"$work/responder" "$work/files" > "$work/responder.out" & listener=$!
wait_ready "$work/responder.out" ready
c=$(measure 1)
kill "$listener"; wait "$listener" 2>/dev/null || true; listener=""

dotnet "$monitor" --include "$work/files" --prevention --scanner allow-all --no-cache --quiet --json > "$work/nocache.out" 2>&1 & listener=$!
wait_ready "$work/nocache.out" '"event":"ready"'
nocache=$(measure 1)
stop_listener

dotnet "$monitor" --include "$work/files" --prevention --scanner allow-all --quiet --json > "$work/cache.out" 2>&1 & listener=$!
wait_ready "$work/cache.out" '"event":"ready"'
cached=$(measure 1) # round 0 fills the cache; rounds 1.. are measured
stop_listener

python3 - "$bare" "$c" "$nocache" "$cached" "$n" "$m" <<'PY'
import sys
bare, c, nocache, cached = [tuple(map(int, a.split())) for a in sys.argv[1:5]]
n, m = sys.argv[5], sys.argv[6]
def us(ns): return f"{ns / 1000:.1f}"
rows = [("no listener (bare open)", bare), ("C allow-all responder (one thread)", c),
        ("OnAccess, allow-all scanner, caches off", nocache), ("OnAccess, caches on (rounds 2..)", cached)]
print(f"| listener ({n} files x {m} rounds, open+read 4 KiB+close) | median µs | p99 µs | median / bare |")
print("|---|---:|---:|---:|")
for name, (med, p99) in rows:
    print(f"| {name} | {us(med)} | {us(p99)} | {med / bare[0]:.2f} |")
added_c = c[0] - bare[0]
added_o = nocache[0] - bare[0]
print()
print(f"cached / bare = {cached[0] / bare[0]:.2f} (goal <= 1.15)")
print(f"uncached added latency / C responder's = {added_o / added_c if added_c > 0 else float('nan'):.2f} (goal <= 1.5)")
PY
