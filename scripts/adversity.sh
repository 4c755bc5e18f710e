#!/usr/bin/env bash
# The adversity suite (tests/OnAccess.Adversity.Tests) on its own, as root. With --seconds N, the long-running attacks
# (churn storm, cache poisoning) run for about N seconds each instead of the CI default: a soak.
#   ./scripts/adversity.sh               # as in CI
#   ./scripts/adversity.sh --seconds 600 # a ten-minute soak per attack
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=""
if [ "${1:-}" = "--seconds" ] && [ -n "${2:-}" ]; then
  seconds="$2"
  shift 2
fi

dotnet build tests/OnAccess.Adversity.Tests -c Release -v quiet -nologo
cd tests/OnAccess.Adversity.Tests/bin/Release/net10.0
ONACCESS_ADVERSITY_SECONDS="$seconds" ./OnAccess.Adversity.Tests "$@"
