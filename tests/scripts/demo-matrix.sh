#!/usr/bin/env bash
# The demo's verdicts must not depend on how long its pauses are (issue #16): runs every
# scenario that releases with each pause and prints the exit codes it got against the ones
# it expects (happy 0; bad-canary and slow-canary 1).
#   tests/scripts/demo-matrix.sh [BINARY] [PAUSES...]
# Default binary: target/release/glidepath; default pauses: 2s 5s 10s 30s.
set -uo pipefail
bin="$(realpath "${1:-target/release/glidepath}")"
shift || true
pauses=("$@")
[ ${#pauses[@]} -gt 0 ] || pauses=(2s 5s 10s 30s)
declare -A want=([happy]=0 [bad-canary]=1 [slow-canary]=1)
failed=0
printf '%-12s %-6s %-5s %-5s %s\n' scenario pause want got seconds
for scenario in happy bad-canary slow-canary; do
  for pause in "${pauses[@]}"; do
    home="$(mktemp -d)"
    started=$(date +%s)
    (cd "$home" && GLIDEPATH_HOME="$home" "$bin" demo --headless \
      --scenario "$scenario" --set "pause=$pause" --set soak=3s </dev/null >"$home/out" 2>&1)
    got=$?
    printf '%-12s %-6s %-5s %-5s %s\n' "$scenario" "$pause" "${want[$scenario]}" "$got" \
      "$(( $(date +%s) - started ))"
    if [ "$got" != "${want[$scenario]}" ]; then
      failed=1
      tail -n 20 "$home/out"
    fi
    rm -rf "$home"
  done
done
exit $failed
