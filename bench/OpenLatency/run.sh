#!/usr/bin/env bash
# The cost of one open of a protected file, measured in one run under four listeners:
#   none (bare open), a minimal allow-all fanotify responder in C, OnAccess with an allow-all scanner and the
#   caches off, and OnAccess with the caches on (second and later rounds).
# A C worker opens, reads 4 KiB of and closes N files M times and reports median and p99 ns per open.
# Every listener is warmed up first (steady state), and the four take turns ROUNDS times; each figure is the median
# over the rounds. Needs root (fanotify). Usage: bench/OpenLatency/run.sh  # as root [N] [M] [ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
n=${1:-200}
m=${2:-20}
rounds=${3:-5}
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

measure() { "$work/opener" "$work/files" "$n" "$m" 1; } # round 0 is not measured

wait_ready() { # file pattern
  for _ in $(seq 300); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "listener did not become ready: $(cat "$1")" >&2; exit 1
}

stop_listener() {
  kill -TERM "$listener" 2>/dev/null || true # background jobs of a script ignore SIGINT
  wait "$listener" 2>/dev/null || true
  listener=""
}

start_monitor() { # extra flags; starts ConsoleMonitor and warms it up (steady state: JIT tiering done, caches filled)
  dotnet "$monitor" --include "$work/files" --prevention --scanner allow-all --quiet --json "$@" > "$work/monitor.out" 2>&1 & listener=$!
  wait_ready "$work/monitor.out" '"event":"ready"'
  for _ in 1 2 3; do measure > /dev/null; done
}

# The four listeners in turn, $rounds times, so that a slow spell of this shared machine hits all of them alike.
bare=() c=() nocache=() cached=()
for _ in $(seq "$rounds"); do
  measure > /dev/null
  bare+=("$(measure)")

  "$work/responder" "$work/files" > "$work/responder.out" & listener=$!
  wait_ready "$work/responder.out" ready
  measure > /dev/null
  c+=("$(measure)")
  kill "$listener"; wait "$listener" 2>/dev/null || true; listener=""

  start_monitor --no-cache
  nocache+=("$(measure)")
  stop_listener

  start_monitor
  cached+=("$(measure)")
  stop_listener
done

python3 - "$n" "$m" "$rounds" "${bare[*]}" "${c[*]}" "${nocache[*]}" "${cached[*]}" <<'PY'
import statistics, sys
n, m, rounds = sys.argv[1:4]
def median_of(arg):  # each listener: per-round "median p99" pairs; the median of each over the rounds
    values = list(map(int, arg.split()))
    return (int(statistics.median(values[0::2])), int(statistics.median(values[1::2])))
bare, c, nocache, cached = [median_of(a) for a in sys.argv[4:8]]
def us(ns): return f"{ns / 1000:.1f}"
rows = [("no listener (bare open)", bare), ("C allow-all responder (one thread)", c),
        ("OnAccess, allow-all scanner, caches off", nocache), ("OnAccess, caches on (filled)", cached)]
print(f"| listener ({n} files x {m} rounds, open+read 4 KiB+close; median of {rounds} runs) | median µs | p99 µs | median / bare |")
print("|---|---:|---:|---:|")
for name, (med, p99) in rows:
    print(f"| {name} | {us(med)} | {us(p99)} | {med / bare[0]:.2f} |")
print()
for name, arg in zip(["bare", "C responder", "OnAccess caches off", "OnAccess caches on"], sys.argv[4:8]):
    print(f"{name}: per-run medians (µs) " + " ".join(us(v) for v in list(map(int, arg.split()))[0::2]))
added_c = c[0] - bare[0]
added_o = nocache[0] - bare[0]
print()
print(f"cached / bare = {cached[0] / bare[0]:.2f} (goal <= 1.15)")
print(f"uncached added latency / C responder's = {added_o / added_c if added_c > 0 else float('nan'):.2f} (goal <= 1.5)")
PY
