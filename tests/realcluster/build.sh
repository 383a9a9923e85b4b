#!/usr/bin/env bash
# Builds etcd, kube-apiserver and kube-controller-manager from the Go modules pinned in
# go.mod (next to this script) into ~/.cache/glidepath/realcluster/<version>/, unless all
# three are there already. Prints the folder holding the binaries as its last line.
#
# The build runs at `nice -n 10` so that it leaves room for other work on a small machine.
# Its full output goes to <cache>/<version>/build.log; on failure the tail is printed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# The module's go.mod names Go 1.26; a machine with an older Go takes the approved newer
# one from the module proxy (set GOTOOLCHAIN yourself to override).
export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

k8s_version="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ { print $2; exit }' "$here/go.mod")"
if [[ -z "$k8s_version" ]]; then
  echo "build.sh: $here/go.mod names no k8s.io/kubernetes version (a line 'k8s.io/kubernetes vX.Y.Z' in its require block)" >&2
  exit 2
fi
etcd_version="$(awk '$1 == "go.etcd.io/etcd/server/v3" { print $2; exit }' "$here/go.mod")"
cache_root="${GLIDEPATH_REALCLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/glidepath/realcluster}"
bin_dir="$cache_root/$k8s_version"
binaries=(etcd kube-apiserver kube-controller-manager)

have_all() {
  local b
  for b in "${binaries[@]}"; do
    [[ -x "$bin_dir/$b" ]] || return 1
  done
}

if have_all; then
  echo "build.sh: Kubernetes $k8s_version and etcd $etcd_version already built in $bin_dir" >&2
  echo "$bin_dir"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "build.sh: the go command is not on PATH; install Go 1.26 or newer (Debian: golang-go) and retry" >&2
  exit 2
fi

mkdir -p "$bin_dir"
staging="$(mktemp -d "$bin_dir/.build.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
log="$bin_dir/build.log"

# The same -X flags as Kubernetes' hack/lib/version.sh sets, so that `kubectl version`
# and /version show the release. The module proxy carries no commit, so gitCommit says so.
minor="${k8s_version#v1.}"
minor="${minor%%.*}"
build_date="$(date -u +'%Y-%m-%dT%H:%M:%SZ')"
ldflags="-s -w"
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  ldflags+=" -X '$pkg.gitVersion=$k8s_version'"
  ldflags+=" -X '$pkg.gitMajor=1'"
  ldflags+=" -X '$pkg.gitMinor=$minor'"
  ldflags+=" -X '$pkg.gitCommit=unknown'"
  ldflags+=" -X '$pkg.gitTreeState=archive'"
  ldflags+=" -X '$pkg.buildDate=$build_date'"
done
ldflags+=" -X 'go.etcd.io/etcd/api/v3/version.GitSHA=$etcd_version'"

echo "build.sh: building Kubernetes $k8s_version (kube-apiserver, kube-controller-manager) and etcd $etcd_version into $bin_dir; log: $log" >&2
start=$(date +%s)
if ! (cd "$here" && CGO_ENABLED=0 nice -n 10 go build -trimpath -ldflags "$ldflags" -o "$staging/" \
  go.etcd.io/etcd/server/v3 \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager) >"$log" 2>&1; then
  echo "build.sh: go build failed in $here after $(($(date +%s) - start))s; last lines of $log:" >&2
  tail -n 30 "$log" >&2
  exit 1
fi
# go build names the etcd server's program after its module folder ("server").
for name in server v3; do
  if [[ -x "$staging/$name" ]]; then mv "$staging/$name" "$staging/etcd"; fi
done
for b in "${binaries[@]}"; do
  mv -f "$staging/$b" "$bin_dir/$b"
done
echo "build.sh: built in $(($(date +%s) - start))s" | tee -a "$log" >&2
echo "$bin_dir"
