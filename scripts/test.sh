#!/usr/bin/env bash
# Runs every test project of OnAccess, then ConsoleMonitor's tests a second time against its NativeAOT binary, and ends
# with one line that totals both: "N passed, N failed, N skipped".
# Installs what the tests need (Debian's clamav-daemon, clamav-testfiles, inotify-tools, bindfs) when it is missing.
# Kernel tests need root (CAP_SYS_ADMIN); as another user they skip and say why.
# Test projects run one after another: several change machine-wide limits for a moment (the adversity suite lowers
# fs.inotify.max_user_watches and max_queued_events), and the machine has two cores.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v clamd >/dev/null 2>&1 || need+=(clamav-daemon)
[ -d /usr/share/clamav-testfiles ] || need+=(clamav-testfiles)
command -v inotifywait >/dev/null 2>&1 || need+=(inotify-tools)
command -v bindfs >/dev/null 2>&1 || need+=(bindfs)
command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "Installing ${need[*]} ..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "Missing ${need[*]}; tests that need them will fail. Run as root to install them." >&2
  fi
fi

log=$(mktemp)
aotlog=$(mktemp)
trap 'rm -f "$log" "$aotlog"' EXIT
set +e
dotnet test OnAccess.sln -c Release --max-parallel-test-modules 1 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}

# ConsoleMonitor's end-to-end tests again, against the NativeAOT binary (no JIT, no dotnet host).
native=samples/ConsoleMonitor/bin/Release/native
aotrc=0
if dotnet publish samples/ConsoleMonitor -c Release -r linux-x64 -p:PublishAot=true -o "$native" > "$aotlog" 2>&1; then
  ONACCESS_CONSOLEMONITOR="$PWD/$native/ConsoleMonitor" dotnet test tests/ConsoleMonitor.Tests -c Release --no-build 2>&1 | tee -a "$aotlog"
  aotrc=${PIPESTATUS[0]}
else
  cat "$aotlog"
  echo "The NativeAOT publish of ConsoleMonitor failed." >&2
  aotrc=1
fi
set -e

count() { # word, log: the last summary's figure
  grep -E "^\s+$1: [0-9]+" "$2" | tail -1 | grep -oE '[0-9]+' || echo 0
}
total=$(( $(count total "$log") + $(count total "$aotlog") ))
failed=$(( $(count failed "$log") + $(count failed "$aotlog") ))
passed=$(( $(count succeeded "$log") + $(count succeeded "$aotlog") ))
skipped=$(( $(count skipped "$log") + $(count skipped "$aotlog") ))
if [ "$rc" != 0 ] && [ "$(count failed "$log")" = 0 ]; then
  failed=$((failed + 1)) # the build or a test host failed before reporting
fi
if [ "$aotrc" != 0 ] && [ "$(count failed "$aotlog")" = 0 ]; then
  failed=$((failed + 1)) # the NativeAOT publish or its test host failed before reporting
fi
if [ "$rc" = 0 ]; then rc=$aotrc; fi
if [ "$total" = 0 ] && [ "$rc" = 0 ]; then
  echo "No test ran." >&2
  rc=1
fi
echo "$passed passed, $failed failed, $skipped skipped"
exit "$rc"
