#!/usr/bin/env bash
# Issue 18's races, counted under ConsoleMonitor --prevention (built-in scanner, EICAR) on a private tmpfs holding an
# include path P and a directory O outside it:
#   fresh:   N tries of  mkdir -p P/tI/a; cp EICAR P/tI/a/e; cat P/tI/a/e      (a directory read from as it appears)
#   move-in: N tries of  mkdir O/mI; cp EICAR O/mI/e; cat O/mI/e (outside: allowed); mv O/mI P/mI; cat P/mI/e
#   link:    N tries of  ln P/in/eI O/lI; cat O/lI   (a hard link outside the tree to an infected file inside it)
# and prints how many cats read EICAR in each (0 means no window). Extra arguments go to ConsoleMonitor (for example
# --tree-marking filesystem). The tries run as root, or with AS_UID=65534 as that user (an attacker's shell: P and O
# are then open to every user, as /tmp is, and the infected files inside are theirs, so fs.protected_hardlinks lets
# them link one). Needs root (fanotify, mount). Usage: [AS_UID=N] bench/NoWindow/run.sh [N] [ConsoleMonitor flags...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
n=${1:-1000}
shift || true
work=$(mktemp -d /tmp/onaccess-nowindow.XXXXXX)
listener=""
cleanup() {
  if [ -n "$listener" ]; then kill "$listener" 2>/dev/null || true; wait "$listener" 2>/dev/null || true; fi
  umount -l "$work/fs" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

dotnet build -c Release "$root/samples/ConsoleMonitor" >/dev/null
mkdir "$work/fs"
mount -t tmpfs -o size=256m onaccess-nowindow "$work/fs"
p="$work/fs/P" o="$work/fs/O"
mkdir -p "$p/in" "$o"
eicar="$work/eicar.com"
printf '%s' 'X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' > "$eicar"
for i in $(seq 1 "$n"); do cp "$eicar" "$p/in/e$i"; done # before the monitor starts
as_uid=${AS_UID:-0}
if [ "$as_uid" != 0 ]; then
  chmod 755 "$work"; chmod 644 "$eicar"; chmod 1777 "$p" "$o"; chown -R "$as_uid" "$p/in"
fi

dotnet "$root/samples/ConsoleMonitor/bin/Release/net10.0/ConsoleMonitor.dll" --include "$p" --prevention --quiet --json "$@" > "$work/monitor.out" 2>&1 & listener=$!
for _ in $(seq 300); do grep -q '"event":"ready"' "$work/monitor.out" 2>/dev/null && break; sleep 0.1; done
grep -q '"event":"ready"' "$work/monitor.out" || { echo "the monitor did not start: $(cat "$work/monitor.out")" >&2; exit 1; }

cat > "$work/tries.sh" <<'SH'
n=$1 p=$2 o=$3 eicar=$4
reads() { if cat "$1" 2>/dev/null | grep -q EICAR-STANDARD; then echo 1; else echo 0; fi; }
fresh=0 movein=0 outside=0 link=0
for i in $(seq 1 "$n"); do
  mkdir -p "$p/t$i/a"; cp "$eicar" "$p/t$i/a/e" 2>/dev/null || true
  fresh=$((fresh + $(reads "$p/t$i/a/e")))
  mkdir "$o/m$i"; cp "$eicar" "$o/m$i/e"
  outside=$((outside + $(reads "$o/m$i/e")))
  mv "$o/m$i" "$p/m$i"
  movein=$((movein + $(reads "$p/m$i/e")))
  ln "$p/in/e$i" "$o/l$i"
  link=$((link + $(reads "$o/l$i")))
done
echo "$fresh $movein $outside $link"
SH
if [ "$as_uid" != 0 ]; then
  read -r fresh movein outside link < <(setpriv --reuid="$as_uid" --regid="$as_uid" --clear-groups sh "$work/tries.sh" "$n" "$p" "$o" "$eicar")
else
  read -r fresh movein outside link < <(sh "$work/tries.sh" "$n" "$p" "$o" "$eicar")
fi
echo "tries: $n as uid $as_uid (ConsoleMonitor --include P --prevention $*)"
echo "fresh directory, read at once: $fresh EICAR reads"
echo "moved into the tree after an open outside: $movein EICAR reads (the open outside read EICAR $outside times: outside is not protected)"
echo "hard link outside the tree to an infected file inside: $link EICAR reads"
