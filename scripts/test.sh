#!/usr/bin/env bash
# Runs every test project of OnAccess and ends with one line: "N passed, N failed, N skipped".
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
trap 'rm -f "$log"' EXIT
set +e
dotnet test OnAccess.sln -c Release --max-parallel-test-modules 1 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e

total=$(grep -E '^\s+total: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || echo 0)
failed=$(grep -E '^\s+failed: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || echo 0)
passed=$(grep -E '^\s+succeeded: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || echo 0)
skipped=$(grep -E '^\s+skipped: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || echo 0)
if [ "$rc" != 0 ] && [ "$failed" = 0 ]; then
  failed=1 # the build or a test host failed before reporting
fi
if [ "$total" = 0 ] && [ "$rc" = 0 ]; then
  echo "No test ran." >&2
  rc=1
fi
echo "$passed passed, $failed failed, $skipped skipped"
exit "$rc"
