#!/usr/bin/env bash
# Fetches released CRDs through the Go module proxy into the control plane's cache, for
# the demo and the tests on a real control plane (`glidepath demo --crds DIR`):
#
# - Gateway API: config/crd/standard/*.yaml of sigs.k8s.io/gateway-api at GATEWAY_API
#   (the YAML the project publishes with each release, as its module carries it);
# - PrometheusRule and ServiceMonitor: the proxy refuses the root module of
#   github.com/prometheus-operator/prometheus-operator (403 "This module version is not
#   available"), so its example/prometheus-operator-crd/ YAML cannot be fetched; the CRDs
#   are generated from its released API types (pkg/apis/monitoring at PROMETHEUS_OPERATOR)
#   with controller-gen, the generator prometheus-operator's own Makefile runs.
#
# Prints the folder holding the CRD files as its last line; a second run reuses it.
set -euo pipefail

GATEWAY_API="${GATEWAY_API:-v1.6.3}"
PROMETHEUS_OPERATOR="${PROMETHEUS_OPERATOR:-v0.95.2}"
CONTROLLER_TOOLS="${CONTROLLER_TOOLS:-v0.23.0}"
cache_root="${GLIDEPATH_REALCLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/glidepath/realcluster}"
out="$cache_root/crds/gateway-api-$GATEWAY_API+prometheus-operator-$PROMETHEUS_OPERATOR"
say() { echo "crds.sh: $*" >&2; }

if [[ -f "$out/complete" ]]; then
  say "released CRDs already in $out"
  echo "$out"
  exit 0
fi
command -v go >/dev/null 2>&1 || { say "the go command is not on PATH; install Go 1.26 or newer"; exit 1; }
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/crds"

# Module directory of `module@version`, or the proxy's exact refusal.
module_dir() {
  local json dir
  json="$(cd "$tmp" && go mod download -json "$1" 2>&1)" || true
  dir="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$json")"
  if [[ -z "$dir" || ! -d "$dir" ]]; then
    say "the Go module proxy did not give $1: $(sed -n 's/^[[:space:]]*"Error": "\(.*\)"$/\1/p' <<<"$json")"
    exit 1
  fi
  echo "$dir"
}

gw="$(module_dir "sigs.k8s.io/gateway-api@$GATEWAY_API")"
for kind in gatewayclasses gateways httproutes; do
  cp "$gw/config/crd/standard/gateway.networking.k8s.io_$kind.yaml" "$tmp/crds/"
done
cp "$gw/LICENSE" "$tmp/crds/LICENSE.gateway-api"

# controller-gen over the released monitoring types, in a throwaway module.
mon_module="github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring"
mon="$(module_dir "$mon_module@$PROMETHEUS_OPERATOR")"
cp "$mon/LICENSE" "$tmp/crds/LICENSE.prometheus-operator"
mkdir -p "$tmp/gen"
(
  cd "$tmp/gen"
  go mod init glidepath.dev/crdgen >/dev/null 2>&1
  go get "$mon_module@$PROMETHEUS_OPERATOR" "sigs.k8s.io/controller-tools/cmd/controller-gen@$CONTROLLER_TOOLS" >&2
  printf 'package crdgen\n\nimport _ "%s/v1"\n' "$mon_module" >gen.go
  go run sigs.k8s.io/controller-tools/cmd/controller-gen \
    crd:crdVersions=v1,maxDescLen=0,allowDangerousTypes=true \
    paths="$mon_module/v1" output:crd:dir="$tmp/gen/out" >&2
)
for kind in prometheusrules servicemonitors; do
  src="$tmp/gen/out/monitoring.coreos.com_$kind.yaml"
  [[ -f "$src" ]] || { say "controller-gen wrote no $src"; exit 1; }
  # prometheus-operator labels its published CRDs with the release they come from.
  sed "0,/^  annotations:/s//  annotations:\n    operator.prometheus.io\/version: ${PROMETHEUS_OPERATOR#v}/" "$src" \
    >"$tmp/crds/monitoring.coreos.com_$kind.yaml"
done
printf 'gateway-api %s (config/crd/standard)\nprometheus-operator %s (pkg/apis/monitoring, controller-gen %s)\n' \
  "$GATEWAY_API" "$PROMETHEUS_OPERATOR" "$CONTROLLER_TOOLS" >"$tmp/crds/SOURCES"
mkdir -p "$(dirname "$out")"
rm -rf "$out"
cp -r "$tmp/crds" "$out"
chmod -R u+w "$out"
touch "$out/complete"
say "released CRDs in $out"
echo "$out"
