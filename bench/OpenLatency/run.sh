#!/usr/bin/env bash
# The cost of one open of a protected file, measured in one run under four listeners:
#   none, a minimal allow-all fanotify responder in C, OnAccess (ConsoleMonitor) with an allow-all scanner and the
#   caches off, and OnAccess with the caches on (filled).
#   A fifth, a C responder that also puts a kernel ignore mark on every file it allows, gives the practical limit of
#   a cached open under a directory mark; a seventh also holds a read lease on each such file, as OnAccess's kernel
#   cache does (the lease is what proves no writer opened the file since), so it is the limit for a cache that can be
#   trusted. A sixth protects the whole filesystem the files are on (its mount point):
#   OnAccess then holds it with one filesystem mark instead of directory marks. In that phase too: files written by
#   another process (cp), closed, and then opened once each: the scan after the writer's close fills the cache.
#   An eighth and ninth protect the files' directory with --tree-marking filesystem (one mark on the filesystem that
#   holds it, no window), caches on and off; in the eighth, files outside the include path on the same filesystem are
#   opened too (steady state, and the first open in each of N fresh directories), and the monitor's RSS and the
#   ignore marks it put are read before it stops.
# A C worker opens, reads 4 KiB of and closes N files M times and reports median and p99 ns per open. Every open of
# a protected file is paired with an open of an identical bare twin on a second filesystem that nothing watches, so
# each ratio compares opens made at the same moments of this shared, noisy machine. Each set of files sits on a fresh
# filesystem of its own: ext4 on a loop image (this machine's root filesystem type; the default) or FS=tmpfs. Every listener is warmed up first
# (steady state: JIT tiering done, caches filled), and the four take turns ROUNDS times; figures are medians over
# the rounds. Needs root (fanotify, mount). Usage: [FS=ext4|tmpfs] bench/OpenLatency/run.sh  # as root [N] [M] [ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
n=${1:-200}
m=${2:-20}
rounds=${3:-5}
fs=${FS:-ext4}
fs_size=64M
work_prefix=onaccess-openlatency
# shellcheck source=common.sh
. "$here/common.sh"
dotnet build -c Release "$root/samples/ConsoleMonitor" >/dev/null
monitor="$root/samples/ConsoleMonitor/bin/Release/net10.0/ConsoleMonitor.dll"
make_fs "$work/protected"
make_fs "$work/bare"
files="$work/protected/files"
twin="$work/bare/files"
mkdir "$files" "$twin"
for i in $(seq 0 $((n - 1))); do head -c 1024 /dev/urandom > "$files/f$i"; cp "$files/f$i" "$twin/f$i"; done

measure() { "$work/opener" "$files" "$n" "$m" 1 "$twin"; } # round 0 is not measured

warm_up() { for _ in 1 2 3; do measure > /dev/null; done; } # steady state: JIT tiering done, caches filled

start_responder() { # extra flags
  "$work/responder" "$files" "$@" > "$work/responder.out" & listener=$!
  wait_ready "$work/responder.out" ready
  warm_up
}

start_monitor() { # include path, extra flags
  local include=$1; shift
  dotnet "$monitor" --include "$include" --prevention --scanner allow-all --quiet --json "$@" > "$work/monitor.out" 2>&1 & listener=$!
  wait_ready "$work/monitor.out" '"event":"ready"'
  warm_up
}

# Written, closed, then opened once by another process: fresh files each time, written by cp from a third directory
# to the protected files and to their twins alike, so under OnAccess the scan after the writer's close is what fills
# the cache.
written_case() {
  rm -rf "$work/protected/fresh" "$work/bare/fresh" "$work/bare/source"
  mkdir "$work/protected/fresh" "$work/bare/fresh" "$work/bare/source"
  for i in $(seq 0 $((n - 1))); do head -c 1024 /dev/urandom > "$work/bare/source/f$i"; done
  cp "$work/bare/source/"f* "$work/bare/fresh/"
  cp "$work/bare/source/"f* "$work/protected/fresh/"
  sleep 1.5 # a scan after a close waits for the file's change time to be 50 ms old on ext4 (2 s more where timestamps have whole seconds)
  "$work/opener" "$work/protected/fresh" "$n" 1 0 "$work/bare/fresh"
}

# Files never seen: created (with their twins) before the listener starts, each opened once; under OnAccess with the
# default caches and every decision printed as ConsoleMonitor prints it by default (text to its output).
never_seen() {
  rm -rf "$files/never" "$twin/never"
  mkdir "$files/never" "$twin/never"
  for i in $(seq 0 $((n - 1))); do head -c 1024 /dev/urandom > "$twin/never/f$i"; done
  cp "$twin/never/"f* "$files/never/"
}

# Outside the include path, on the same filesystem: N files in one directory root made (no user can move it into the
# tree, so it is ignored by the kernel after its first open), and N fresh directories each opened once (the first open
# in a directory: a round trip, the walk up its ancestors, the ignore mark), through links so the opener's loop is the
# same (the twin's links resolve alike).
mkdir "$work/protected/outside" "$work/bare/outside"
cp "$twin/"f* "$work/protected/outside/"; cp "$twin/"f* "$work/bare/outside/"
measure_outside() { "$work/opener" "$work/protected/outside" "$n" "$m" 1 "$work/bare/outside"; }
fresh_directories() { # made before the listener starts: not one open in them has been seen
  local d
  for d in "$work/protected/dirs" "$work/bare/dirs"; do
    rm -rf "$d"; mkdir "$d"
    for i in $(seq 0 $((n - 1))); do mkdir "$d/d$i"; cp "$twin/f$i" "$d/d$i/x"; ln -s "d$i/x" "$d/f$i"; done
  done
}
first_in_directory() { "$work/opener" "$work/protected/dirs" "$n" 1 0 "$work/bare/dirs"; }

none=() c=() nocache=() cached=() ccached=() whole=() cleased=() written=() written_none=() firstseen=() subtree=() outside=() firstdir=() subtree_nocache=() footprint=() coutside=()
for _ in $(seq "$rounds"); do
  measure > /dev/null
  none+=("$(measure)")
  written_none+=("$(written_case)")

  start_responder
  c+=("$(measure)")
  stop_listener

  start_responder --ignore
  ccached+=("$(measure)")
  stop_listener

  start_responder --ignore --lease
  cleased+=("$(measure)")
  stop_listener

  start_monitor "$files" --no-cache
  nocache+=("$(measure)")
  stop_listener

  start_monitor "$files"
  cached+=("$(measure)")
  stop_listener

  never_seen
  dotnet "$monitor" --include "$files" --prevention --scanner allow-all > "$work/monitor.out" 2>&1 & listener=$!
  wait_ready "$work/monitor.out" '^ready: '
  warm_up
  firstseen+=("$("$work/opener" "$files/never" "$n" 1 0 "$twin/never")")
  stop_listener

  start_monitor "$work/protected"
  whole+=("$(measure)")
  written+=("$(written_case)")
  stop_listener

  fresh_directories
  start_monitor "$files" --tree-marking filesystem
  subtree+=("$(measure)")
  measure_outside > /dev/null # the outside directory's first open: ignored by the kernel from then on
  outside+=("$(measure_outside)")
  firstdir+=("$(first_in_directory)")
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$listener/status")
  stop_listener
  footprint+=("$rss $(python3 -c 'import json,sys; s=[json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]; s=[x for x in s if x.get("event")=="stopped"][0]; print(s["ignoredOutsideDirectories"], s["outsideOpens"])' "$work/monitor.out")")

  start_monitor "$files" --tree-marking filesystem --no-cache
  subtree_nocache+=("$(measure)")
  stop_listener

  start_responder --filesystem
  measure_outside > /dev/null
  coutside+=("$(measure_outside)")
  stop_listener
done

python3 - "$fs" "$n" "$m" "$rounds" "${none[*]}" "${c[*]}" "${nocache[*]}" "${cached[*]}" "${ccached[*]}" "${whole[*]}" "${cleased[*]}" "${written[*]}" "${written_none[*]}" "${firstseen[*]}" "${subtree[*]}" "${outside[*]}" "${firstdir[*]}" "${subtree_nocache[*]}" "${footprint[*]}" "${coutside[*]}" <<'PY'
import statistics, sys
fs, n, m, rounds = sys.argv[1:5]
# per listener, per round: protected median, protected p99, twin median, twin p99 (ns)
runs = [[tuple(v[i:i + 4]) for i in range(0, len(v), 4)] for v in (list(map(int, a.split())) for a in sys.argv[5:19])]
none, c, nocache, cached, ccached, whole, cleased, written, written_none, firstseen, subtree, outside, firstdir, subtree_nocache = runs
footprint = [tuple(map(int, sys.argv[19].split()[i:i + 3])) for i in range(0, len(sys.argv[19].split()), 3)]
coutside = [tuple(map(int, sys.argv[20].split()[i:i + 4])) for i in range(0, len(sys.argv[20].split()), 4)]
med = statistics.median
def us(ns): return f"{ns / 1000:.1f}"
print(f"| listener ({n} files x {m} rounds on {fs}, open + read 4 KiB + close; medians of {rounds} runs) | protected median µs | p99 µs | bare twin median µs | protected / twin |")
print("|---|---:|---:|---:|---:|")
names = ["no listener", "C allow-all responder (one thread)", "OnAccess, allow-all scanner, caches off", "OnAccess, caches on (filled)", "C responder with kernel ignore marks (filled)", "OnAccess, caches on, the whole filesystem protected (filled)", "C responder with kernel ignore marks and read leases (filled)", "OnAccess, whole filesystem: first open of a file another process wrote and closed", "no listener: first open of a file another process wrote and closed", "OnAccess, caches on, decisions printed: first open of a file never seen", "OnAccess --tree-marking filesystem, caches on (filled)", "OnAccess --tree-marking filesystem: a file outside the include path, same filesystem (steady state)", "OnAccess --tree-marking filesystem: the first open in a fresh directory outside the include path", "OnAccess --tree-marking filesystem, caches off"]
for name, rs in zip(names, runs):
    print(f"| {name} | {us(med(r[0] for r in rs))} | {us(med(r[1] for r in rs))} | {us(med(r[2] for r in rs))} | {med(r[0] / r[2] for r in rs):.2f} |")
print()
for name, rs in zip(names, runs):
    print(f"{name}: per-run protected/twin medians (µs) " + ", ".join(f"{us(r[0])}/{us(r[2])}" for r in rs))
cached_ratio = med(k[0] / k[2] for k in cached)
added = med((o[0] - o[2]) / (x[0] - x[2]) for o, x in zip(nocache, c))
added_vs_none = med((o[0] - z[0]) / (x[0] - z[0]) for o, x, z in zip(nocache, c, none))
print()
print(f"cached / bare = {cached_ratio:.2f} (goal <= 1.15; with no listener the same pairing gives {med(z[0] / z[2] for z in none):.2f}; the C responder's ignore marks give {med(k[0] / k[2] for k in ccached):.2f}, with read leases too {med(k[0] / k[2] for k in cleased):.2f})")
print(f"cached / bare with the whole filesystem protected (one filesystem mark) = {med(k[0] / k[2] for k in whole):.2f}")
print(f"first open after another process wrote and closed the file, whole filesystem, / bare = {med(k[0] / k[2] for k in written):.2f} (goal <= 1.15: the scan after the close filled the cache; with no listener the same case gives {med(k[0] / k[2] for k in written_none):.2f})")
print(f"first open of a never-seen file, default caches, every decision printed: added latency / C responder's = {med((o[0] - o[2]) / (x[0] - x[2]) for o, x in zip(firstseen, c)):.2f} (goal <= 1.5 pinned, issue 19)")
print(f"uncached added latency / C responder's = {added:.2f} (goal <= 1.5; against the no-listener phase instead of the twin: {added_vs_none:.2f})")
print(f"tree marking 'filesystem' (issue 18): inside cached / bare = {med(k[0] / k[2] for k in subtree):.2f} (directory marks: {cached_ratio:.2f}, whole filesystem: {med(k[0] / k[2] for k in whole):.2f}); inside uncached added latency / C responder's = {med((o[0] - o[2]) / (x[0] - x[2]) for o, x in zip(subtree_nocache, c)):.2f} (directory marks: {added:.2f}); outside, steady state / bare = {med(k[0] / k[2] for k in outside):.2f} (goal <= 1.10; the C responder's filesystem mark with its ignore marks on the outside directory: {med(k[0] / k[2] for k in coutside):.2f}); first open in a fresh outside directory / bare = {med(k[0] / k[2] for k in firstdir):.2f} ({us(med(k[0] - k[2] for k in firstdir))} µs more)")
print(f"tree marking 'filesystem' footprint (median of rounds): RSS {med(f[0] for f in footprint) / 1024:.1f} MiB, ignore marks put on outside directories {med(f[1] for f in footprint):.0f}, opens outside answered in user space {med(f[2] for f in footprint):.0f}")
PY
