#!/usr/bin/env bash
# Memory and start-up of the monitor against clamonacc (issue 19), in one run, side by side, ROUNDS times:
#   idle: one empty directory protected (ConsoleMonitor as README runs it: --include DIR --prevention, built-in
#         scanner; and both monitors reading the same clamd.conf, which names a local clamd);
#   tree: DIRS directories protected recursively (the same clamd.conf with OnAccessIncludePath on the tree's root).
# Listeners: clamonacc (Debian's clamav-daemon, --foreground), ConsoleMonitor published as a NativeAOT binary, and the
# JIT build (dotnet ConsoleMonitor.dll) for reference. Start-to-ready is the time from exec until the process's
# last fanotify_mark returns (kernel tracepoints, recorded by perf; every directory's mark is then checked in
# /proc/PID/fdinfo); RSS is VmRSS once the process has been idle for a second. The tree is on a tmpfs of its own;
# clamd runs from a local signature file.
# Needs root. Usage: bench/Footprint/run.sh [DIRS] [ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dirs=${1:-100000}
rounds=${2:-3}
work=$(mktemp -d /tmp/onaccess-footprint.XXXXXX)
clamd_pid=""
cleanup() {
  if [ -n "$clamd_pid" ]; then kill "$clamd_pid" 2>/dev/null || true; wait "$clamd_pid" 2>/dev/null || true; fi
  umount -l "$work/t" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

command -v clamonacc >/dev/null || { echo "clamonacc is missing: apt-get install clamav-daemon" >&2; exit 1; }
command -v perf >/dev/null || { echo "perf is missing: apt-get install linux-perf" >&2; exit 1; }
mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing # perf's tracepoints
dotnet publish "$root/samples/ConsoleMonitor" -c Release -r linux-x64 -p:PublishAot=true -o "$work/native" >/dev/null
dotnet build -c Release "$root/samples/ConsoleMonitor" >/dev/null
dll="$root/samples/ConsoleMonitor/bin/Release/net10.0/ConsoleMonitor.dll"

mkdir "$work/t"
mount -t tmpfs -o size=1g,nr_inodes=0 onaccess-footprint "$work/t"
mkdir "$work/t/one"
python3 - "$work/t/tree" "$dirs" <<'PY'
import os, sys
top, n = sys.argv[1], int(sys.argv[2])
os.mkdir(top)
made, i = 0, 0
while made < n:
    d = os.path.join(top, f"d{i}"); os.mkdir(d); made += 1; i += 1
    for j in range(min(999, n - made)):
        os.mkdir(os.path.join(d, f"e{j}")); made += 1
PY

mkdir -p "$work/clamd/db" "$work/clamd/tmp"
echo "44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test-Signature" > "$work/clamd/db/local.hdb"
conf() { # include path
  cat <<EOF
LocalSocket $work/clamd/clamd.sock
Foreground yes
DatabaseDirectory $work/clamd/db
TemporaryDirectory $work/clamd/tmp
SelfCheck 600
Bytecode no
OnAccessIncludePath $1
OnAccessPrevention yes
OnAccessExcludeUname clamav
EOF
}
conf "$work/t/one" > "$work/one.conf"
conf "$work/t/tree" > "$work/tree.conf"
clamd --config-file="$work/one.conf" > "$work/clamd.out" 2>&1 & clamd_pid=$!
for _ in $(seq 600); do [ -S "$work/clamd/clamd.sock" ] && break; sleep 0.1; done
[ -S "$work/clamd/clamd.sock" ] || { echo "clamd did not start: $(cat "$work/clamd.out")" >&2; exit 1; }

# Runs a listener until every directory is marked; prints "milliseconds-to-ready rss-KiB".
# Ready is read from the kernel's own clock, not by polling: perf records the tracepoints of the return of the listener's execve and
# of each fanotify_mark it returns from, and ready is the last mark's return. (Counting marks in /proc/PID/fdinfo every
# 50 ms, as this bench did first, holds the group's mark lock while 100,000 marks are listed, and slowed ConsoleMonitor
# from 1.7 s to 5.3 s: the listener measured was not the one users run.) The process is left alone until it has used
# no CPU for a second; then its marks are counted once (all must be there) and its RSS read.
measure() { # expected marks, command...
  python3 - "$work/perf.data" "$@" <<'PY'
import os, signal, subprocess, sys, time
data, expected, command = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def marks(pid):
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:[fanotify]":
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                for line in f:
                    if line.startswith("fanotify ino:"):
                        inodes.add(line.split()[1])
        except OSError:
            pass
    return len(inodes)
def cpu(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])
events = "syscalls:sys_exit_execve,syscalls:sys_exit_fanotify_mark"
perf = subprocess.Popen(["perf", "record", "-q", "-e", events, "-o", data, "--", *command], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
start = time.monotonic()
pid = None
while pid is None:
    if perf.poll() is not None or time.monotonic() - start > 30:
        sys.exit(f"{command[0]} did not start under perf")
    kids = open(f"/proc/{perf.pid}/task/{perf.pid}/children").read().split()
    pid = int(kids[0]) if kids else None
    time.sleep(0.01)
try:
    while True:
        last, still = cpu(pid), 0
        while still < 10: # a second without CPU time
            time.sleep(0.1)
            now = cpu(pid)
            still, last = (still + 1 if now == last else 0), now
            if time.monotonic() - start > 300:
                sys.exit(f"{command[0]} not ready after 300 s")
        if marks(pid) >= expected:
            break
    rss = next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS:"))
finally:
    os.kill(pid, signal.SIGTERM) # background jobs of a script ignore SIGINT, and so would their children
    try:
        perf.wait(10)
    except subprocess.TimeoutExpired:
        os.kill(pid, signal.SIGKILL) # clamonacc was seen to ignore SIGTERM
        perf.wait()
script = subprocess.run(["perf", "script", "-i", data, "-F", "time,event"], capture_output=True, text=True, check=True).stdout
execve = last_mark = None
for line in script.splitlines():
    stamp, event = line.split(":", 1)[0].strip(), line.split(":", 1)[1]
    if "sys_exit_execve" in event and execve is None:
        execve = float(stamp)
    elif "sys_exit_fanotify_mark" in event:
        last_mark = float(stamp)
print(f"{(last_mark - execve) * 1000:.0f} {rss}")
PY
}

total=$((dirs + 1))
declare -A results
for round in $(seq "$rounds"); do
  results[idle_builtin_aot]+="$(measure 1 "$work/native/ConsoleMonitor" --include "$work/t/one" --prevention) "
  results[idle_builtin_jit]+="$(measure 1 dotnet "$dll" --include "$work/t/one" --prevention) "
  results[idle_clamonacc]+="$(measure 1 clamonacc --foreground --config-file="$work/one.conf") "
  results[idle_aot]+="$(measure 1 "$work/native/ConsoleMonitor" --config "$work/one.conf") "
  results[tree_clamonacc]+="$(measure "$total" clamonacc --foreground --config-file="$work/tree.conf") "
  results[tree_aot]+="$(measure "$total" "$work/native/ConsoleMonitor" --config "$work/tree.conf") "
  results[tree_jit]+="$(measure "$total" dotnet "$dll" --config "$work/tree.conf") "
  echo "round $round done" >&2
done

python3 - "$dirs" "$rounds" "${results[idle_builtin_aot]}" "${results[idle_builtin_jit]}" "${results[idle_clamonacc]}" "${results[idle_aot]}" "${results[tree_clamonacc]}" "${results[tree_aot]}" "${results[tree_jit]}" <<'PY'
import statistics, sys
dirs, rounds = sys.argv[1:3]
def pairs(s):
    v = list(map(int, s.split()))
    return [(v[i], v[i + 1]) for i in range(0, len(v), 2)]
ib_aot, ib_jit, i_cl, i_aot, t_cl, t_aot, t_jit = (pairs(a) for a in sys.argv[3:10])
med = statistics.median
def row(name, rs, ref=None):
    ms, rss = med(r[0] for r in rs), med(r[1] for r in rs) / 1024
    rel = "" if ref is None else f" | {med(r[0] for r in rs) / med(r[0] for r in ref):.2f} | {med(r[1] for r in rs) / med(r[1] for r in ref):.2f}"
    print(f"| {name} | {ms:.0f} | {rss:.1f}{rel or ' | 1.00 | 1.00'} |")
print(f"| listener (medians of {rounds} rounds; tree: {dirs} directories on tmpfs) | start-to-ready ms | RSS MiB | ready / clamonacc | RSS / clamonacc |")
print("|---|---:|---:|---:|---:|")
row("idle, clamonacc (clamd.conf, one directory)", i_cl)
row("idle, ConsoleMonitor NativeAOT (same clamd.conf)", i_aot, i_cl)
row("idle, ConsoleMonitor NativeAOT --include DIR --prevention (built-in scanner)", ib_aot, i_cl)
row("idle, ConsoleMonitor JIT --include DIR --prevention (built-in scanner)", ib_jit, i_cl)
row(f"tree, clamonacc ({dirs} directories)", t_cl)
row(f"tree, ConsoleMonitor NativeAOT ({dirs} directories)", t_aot, t_cl)
row(f"tree, ConsoleMonitor JIT ({dirs} directories)", t_jit, t_cl)
print()
for name, rs in (("idle clamonacc", i_cl), ("idle NativeAOT", i_aot), ("idle NativeAOT built-in", ib_aot), ("idle JIT built-in", ib_jit), ("tree clamonacc", t_cl), ("tree NativeAOT", t_aot), ("tree JIT", t_jit)):
    print(f"{name}: per round ms/KiB " + ", ".join(f"{a}/{b}" for a, b in rs))
PY
