#!/usr/bin/env bash
# Delivery figures on a real control plane (BENCHMARKS.md, "Delivery on a real control
# plane"): the control plane's build (cached) and start, then, with the sandbox's data plane
# simulating nodes for one namespace, failed gate to all traffic on stable (gateway-api and
# replicas routers) and `glidepath rollback`, three runs each; then the same figures on the
# embedded sandbox (`cargo bench --bench delivery`), so both columns of the table come from
# one run on one machine state. Starts its own control plane in a fresh state folder and
# stops it at the end.
#
#   bash benches/delivery-realcluster.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export GLIDEPATH_REALCLUSTER_DIR="${GLIDEPATH_REALCLUSTER_DIR:-/tmp/glidepath-bench-rc-$$}"
trap 'bash tests/realcluster/down.sh >/dev/null 2>&1 || true' EXIT

ms() { date +%s%3N; }
echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%Y-%m-%d)"
t=$(ms); bash tests/realcluster/build.sh >/dev/null 2>&1
echo "control plane build (binaries cached): $(($(ms) - t)) ms"
t=$(ms); line="$(bash tests/realcluster/up.sh 2>/dev/null | tail -n 1)"
echo "control plane start (up.sh to KUBECONFIG=): $(($(ms) - t)) ms"
export GLIDEPATH_REALCLUSTER_KUBECONFIG="${line#KUBECONFIG=}"
cargo test --test delivery_realcluster measure_delivery_figures -- --ignored --nocapture 2>&1 |
  grep -E "^(failed gate|glidepath rollback)|panicked|test result"
bash tests/realcluster/down.sh >/dev/null 2>&1 || true
echo "the embedded sandbox (cargo bench --bench delivery, release build):"
cargo bench --bench delivery 2>/dev/null | grep -E "^(failed verdict|glidepath rollback)"
