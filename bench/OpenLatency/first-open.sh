#!/usr/bin/env bash
# The first open of files never seen before (issue 19): what users meet. ConsoleMonitor runs as users run it (default
# caches, every decision printed as it prints by default, text to its output; --scanner allow-all, so the engine is
# measured and not a scanner), NativeAOT and JIT; against the minimal allow-all C responder, in the same run.
# Cases, each pinned (listener and opener on CPU 0, as an independent measurement did) and unpinned:
#   before: N files created (with bare twins on a filesystem nobody watches) before the listener starts, each opened
#           once, paired with its twin's open;
#   during: N files created while the listener runs (each written and closed: ConsoleMonitor scans it after the close),
#           then each opened once.
# Each listener is warmed up on 3 x N other files never seen first. Prints medians and p99s, and the added latency (protected
# median - twin median) over the C responder's in the same pinning and round; p99 over the C responder's p99.
# Needs root (fanotify, mount). Usage: [FS=ext4|tmpfs] bench/OpenLatency/first-open.sh [N] [ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
n=${1:-1000}
rounds=${2:-5}
fs=${FS:-ext4}
fs_size=256M
work_prefix=onaccess-firstopen
# shellcheck source=common.sh
. "$here/common.sh"
dotnet build -c Release "$root/samples/ConsoleMonitor" >/dev/null
dotnet publish "$root/samples/ConsoleMonitor" -c Release -r linux-x64 -p:PublishAot=true -o "$work/native" >/dev/null
dll="$root/samples/ConsoleMonitor/bin/Release/net10.0/ConsoleMonitor.dll"
make_fs "$work/protected"
make_fs "$work/bare"
files="$work/protected/files"
twin="$work/bare/files"
mkdir "$files" "$twin"

sets="before during w1 w2 w3"
empty_sets() { # every set's directory, empty, in both trees (made before a listener starts: the C responder marks each)
  local d
  for d in $sets; do rm -rf "${files:?}/$d" "${twin:?}/$d"; mkdir "$files/$d" "$twin/$d"; done
}

fill() { # set: N new files (new inodes) in files/SET and their twins in twin/SET
  python3 - "$twin/$1" "$files/$1" "$n" <<'PY'
import os, sys
twin, files, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(n):
    data = os.urandom(1024)
    for d in (twin, files):
        with open(f"{d}/f{i}", "wb") as f:
            f.write(data)
PY
}

once() { $pin "$work/opener" "$files/$1" "$n" 1 0 "$twin/$1"; } # median p99 twin-median twin-p99 (ns)

warm_up() { for w in w1 w2 w3; do once "$w" > /dev/null; done; }

case_run() { # name, pattern, command...: prints "before during" figures
  local name=$1 pattern=$2; shift 2
  empty_sets
  for d in before w1 w2 w3; do fill "$d"; done
  $pin "$@" > "$work/$name.out" 2>&1 & listener=$!
  wait_ready "$work/$name.out" "$pattern"
  warm_up
  local before during
  before=$(once before)
  fill during
  sleep 1.5 # the scans after the writers' closes wait until each change is 50 ms old (whole-second timestamps: 2 s)
  during=$(once during)
  stop_listener
  echo "$before $during"
}

declare -A r
for round in $(seq "$rounds"); do
  for mode in unpinned pinned; do
    if [ "$mode" = pinned ]; then pin="taskset -c 0"; else pin=""; fi
    r[c_$mode]+="$(case_run c ready "$work/responder" $(for d in $sets; do echo "$files/$d"; done)) "
    r[aot_$mode]+="$(case_run aot '^ready: ' "$work/native/ConsoleMonitor" --include "$files" --prevention --scanner allow-all) "
    r[jit_$mode]+="$(case_run jit '^ready: ' dotnet "$dll" --include "$files" --prevention --scanner allow-all) "
  done
  echo "round $round done" >&2
done

python3 - "$fs" "$n" "$rounds" "${r[c_unpinned]}" "${r[aot_unpinned]}" "${r[jit_unpinned]}" "${r[c_pinned]}" "${r[aot_pinned]}" "${r[jit_pinned]}" <<'PY'
import statistics, sys
fs, n, rounds = sys.argv[1:4]
def parse(s):  # per round: before (4 numbers), during (4 numbers)
    v = list(map(int, s.split()))
    return [(tuple(v[i:i + 4]), tuple(v[i + 4:i + 8])) for i in range(0, len(v), 8)]
cu, au, ju, cp, ap, jp = (parse(a) for a in sys.argv[4:10])
med = statistics.median
us = lambda ns: f"{ns / 1000:.1f}"
print(f"| first open of a never-seen file ({n} files, {fs}, medians of {rounds} rounds) | when created | median µs | p99 µs | bare twin µs | added / C's added | p99 / C's p99 |")
print("|---|---|---:|---:|---:|---:|---:|")
for mode, c, rows in (("unpinned", cu, (("C allow-all responder", cu), ("ConsoleMonitor NativeAOT, decisions printed", au), ("ConsoleMonitor JIT, decisions printed", ju))),
                      ("pinned to one CPU", cp, (("C allow-all responder", cp), ("ConsoleMonitor NativeAOT, decisions printed", ap), ("ConsoleMonitor JIT, decisions printed", jp)))):
    for name, rs in rows:
        for k, when in ((0, "before the listener"), (1, "while it runs")):
            added = med((x[k][0] - x[k][2]) / (y[k][0] - y[k][2]) for x, y in zip(rs, c))
            p99 = med(x[k][1] / y[k][1] for x, y in zip(rs, c))
            print(f"| {name}, {mode} | {when} | {us(med(x[k][0] for x in rs))} | {us(med(x[k][1] for x in rs))} | {us(med(x[k][2] for x in rs))} | {added:.2f} | {p99:.2f} |")
print()
for name, rs in (("C unpinned", cu), ("AOT unpinned", au), ("JIT unpinned", ju), ("C pinned", cp), ("AOT pinned", ap), ("JIT pinned", jp)):
    print(f"{name}: per round, before / during, median-p99-twin (µs): " + "; ".join(f"{us(b[0])}-{us(b[1])}-{us(b[2])} / {us(d[0])}-{us(d[1])}-{us(d[2])}" for b, d in rs))
PY
