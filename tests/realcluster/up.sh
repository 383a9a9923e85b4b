#!/usr/bin/env bash
# Starts a real Kubernetes control plane on loopback: etcd, kube-apiserver and
# kube-controller-manager, built from the Go modules pinned in go.mod (build.sh; cached).
# No kubelet: nodes and pods come from `glidepath sandbox serve --control-plane`.
#
#   bash tests/realcluster/up.sh     # prints KUBECONFIG=<path> as its last line
#   bash tests/realcluster/down.sh   # stops it and removes its state
#
# State (certificates, etcd data, logs, pids, the admin kubeconfig) lives in
# ${GLIDEPATH_REALCLUSTER_DIR:-/tmp/glidepath-realcluster}. Running up.sh again while the
# control plane is up prints the same KUBECONFIG line and starts nothing.
# Ports are free loopback ports unless GLIDEPATH_REALCLUSTER_APISERVER_PORT /
# _ETCD_PORT / _ETCD_PEER_PORT / _CONTROLLER_MANAGER_PORT name them.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
state="${GLIDEPATH_REALCLUSTER_DIR:-/tmp/glidepath-realcluster}"
kubeconfig="$state/admin.kubeconfig"
ready_timeout="${GLIDEPATH_REALCLUSTER_READY_TIMEOUT:-180}"
# shellcheck source=lib.sh
source "$here/lib.sh"

if cluster_is_up "$state"; then
  say "the control plane in $state is already up"
  echo "KUBECONFIG=$kubeconfig"
  exit 0
fi
if [[ -e "$state" ]]; then
  say "$state holds a control plane that is not fully up; stopping what is left of it first"
  bash "$here/down.sh" >&2
fi

need openssl "Debian: apt-get install openssl"
need curl "Debian: apt-get install curl"
need python3 "Debian: apt-get install python3"

bin_dir="$(bash "$here/build.sh" | tail -n 1)"
# Released Gateway API and prometheus-operator CRDs for the demo and the delivery tests
# (crds.sh; cached), linked as $state/crds. Without them only those tests fail.
crds_dir="$(bash "$here/crds.sh" | tail -n 1)" || crds_dir=""
start=$(date +%s)
mkdir -p "$state/logs" "$state/pids"
if [[ -d "$crds_dir" ]]; then
  ln -sfn "$crds_dir" "$state/crds"
else
  say "warning: tests/realcluster/crds.sh fetched no CRDs (its error is above); the delivery tests and demo --kubeconfig will ask for them"
fi
mkdir -m 700 -p "$state/etcd-data"

etcd_port="$(port_or_free "${GLIDEPATH_REALCLUSTER_ETCD_PORT:-}" etcd)"
etcd_peer_port="$(port_or_free "${GLIDEPATH_REALCLUSTER_ETCD_PEER_PORT:-}" "etcd peer" "$etcd_port")"
apiserver_port="$(port_or_free "${GLIDEPATH_REALCLUSTER_APISERVER_PORT:-}" kube-apiserver \
  "$etcd_port" "$etcd_peer_port")"
kcm_port="$(port_or_free "${GLIDEPATH_REALCLUSTER_CONTROLLER_MANAGER_PORT:-}" kube-controller-manager \
  "$etcd_port" "$etcd_peer_port" "$apiserver_port")"
printf 'etcd=%s\netcd_peer=%s\napiserver=%s\ncontroller_manager=%s\n' \
  "$etcd_port" "$etcd_peer_port" "$apiserver_port" "$kcm_port" >"$state/ports"

make_pki "$state/pki"
server="https://127.0.0.1:$apiserver_port"
write_kubeconfig "$kubeconfig" "$server" "$state/pki" admin
write_kubeconfig "$state/controller-manager.kubeconfig" "$server" "$state/pki" controller-manager

start_etcd "$bin_dir" "$state" "$etcd_port" "$etcd_peer_port"
wait_for "etcd on 127.0.0.1:$etcd_port" 60 "$state/logs/etcd.log" \
  curl -fsS "http://127.0.0.1:$etcd_port/health"

start_apiserver "$bin_dir" "$state" "$apiserver_port" "$etcd_port"
wait_for "kube-apiserver /readyz on $server" "$ready_timeout" "$state/logs/kube-apiserver.log" \
  curl -fsS --cacert "$state/pki/ca.crt" --cert "$state/pki/admin.crt" --key "$state/pki/admin.key" \
  "$server/readyz"

start_controller_manager "$bin_dir" "$state" "$kcm_port"
wait_for "kube-controller-manager /healthz on 127.0.0.1:$kcm_port" "$ready_timeout" \
  "$state/logs/kube-controller-manager.log" \
  curl -fsSk "https://127.0.0.1:$kcm_port/healthz"
# The service-account controller creating `default` in `default` shows the controllers run.
wait_for "the default ServiceAccount (made by kube-controller-manager)" "$ready_timeout" \
  "$state/logs/kube-controller-manager.log" \
  curl -fsS --cacert "$state/pki/ca.crt" --cert "$state/pki/admin.crt" --key "$state/pki/admin.key" \
  "$server/api/v1/namespaces/default/serviceaccounts/default"

echo up >"$state/up"
say "Kubernetes $(basename "$bin_dir") is up in $(($(date +%s) - start))s: apiserver $server, logs in $state/logs"
echo "KUBECONFIG=$kubeconfig"
