#!/usr/bin/env bash
# Stops the control plane that up.sh started and removes its state folder
# (${GLIDEPATH_REALCLUSTER_DIR:-/tmp/glidepath-realcluster}). Safe to run when nothing runs.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
state="${GLIDEPATH_REALCLUSTER_DIR:-/tmp/glidepath-realcluster}"
# shellcheck source=lib.sh
source "$here/lib.sh"

if [[ ! -e "$state" ]]; then
  say "nothing to stop: $state does not exist"
  exit 0
fi
# Controllers first, etcd last, so that nothing logs a lost backend on the way down.
for name in kube-controller-manager kube-apiserver etcd; do
  pid="$(live_pid "$state" "$name")" || continue
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    live_pid "$state" "$name" >/dev/null || break
    sleep 0.2
  done
  if live_pid "$state" "$name" >/dev/null; then
    say "$name (pid $pid) ignored SIGTERM for 10s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  say "stopped $name (pid $pid)"
done
rm -rf "$state"
say "removed $state"
