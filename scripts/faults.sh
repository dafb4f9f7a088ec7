#!/usr/bin/env bash
# Run the whole fault-injection matrix (tests/faults, docs/reliability.md) and write a junit report.
# Usage: scripts/faults.sh [REPORT.xml] [extra pytest arguments]   (default report: faults.xml)
# Without DATASAFE_FAULTS=full (what this sets) only the fast subset is collected, as in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
report=${1:-faults.xml}
[ $# -gt 0 ] && shift
export DATASAFE_FAULTS=full
exec scripts/test.sh -q -p no:cacheprovider tests/faults --junitxml="$report" "$@"
