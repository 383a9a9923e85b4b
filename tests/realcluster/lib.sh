# Helpers for up.sh and down.sh (sourced, not run). Every message goes to stderr so that
# up.sh's standard output stays the one KUBECONFIG line.

say() { echo "realcluster: $*" >&2; }

fail() {
  say "error: $*"
  exit 1
}

need() {
  command -v "$1" >/dev/null 2>&1 || fail "$1 is not on PATH ($2)"
}

# The pid recorded for a component, if that process still runs the binary we started.
live_pid() {
  local state="$1" name="$2" pid cmdline
  [[ -f "$state/pids/$name" ]] || return 1
  pid="$(cat "$state/pids/$name")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline")" || return 1
  [[ "$cmdline" == *"/$name "* ]] || return 1
  echo "$pid"
}

cluster_is_up() {
  local state="$1" name port
  [[ -f "$state/up" && -f "$state/ports" ]] || return 1
  for name in etcd kube-apiserver kube-controller-manager; do
    live_pid "$state" "$name" >/dev/null || return 1
  done
  port="$(awk -F= '$1 == "apiserver" { print $2 }' "$state/ports")"
  curl -fsS --max-time 5 --cacert "$state/pki/ca.crt" --cert "$state/pki/admin.crt" \
    --key "$state/pki/admin.key" "https://127.0.0.1:$port/readyz" >/dev/null 2>&1
}

# Prints the port the caller named after checking that it is free, or a free loopback port
# other than the ones named after the first two arguments.
port_or_free() {
  local wanted="$1" what="$2"
  shift 2
  python3 - "$wanted" "$what" "$@" <<'EOF'
import socket, sys
wanted, what, taken = sys.argv[1], sys.argv[2], set(sys.argv[3:])
for _ in range(50):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", int(wanted) if wanted else 0))
    except (OSError, ValueError) as e:
        sys.exit(f"realcluster: error: port {wanted} for {what} on 127.0.0.1 cannot be used ({e}); "
                 f"free it or choose another port")
    port = str(s.getsockname()[1])
    s.close()
    if wanted or port not in taken:
        print(port)
        break
else:
    sys.exit(f"realcluster: error: found no free loopback port for {what}")
EOF
}

# A CA, the API server's serving certificate, client certificates for the admin
# (system:masters) and the controller manager, and the service-account signing key.
make_pki() {
  local dir="$1" log="$1/openssl.log"
  mkdir -p "$dir"
  : >"$log"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj "/CN=glidepath-realcluster-ca" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" >>"$log" 2>&1 ||
    fail "openssl could not make the CA; see $log"
  sign_cert "$dir" apiserver "/CN=kube-apiserver" serverAuth \
    "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.0.0.1"
  sign_cert "$dir" admin "/O=system:masters/CN=glidepath-admin" clientAuth ""
  sign_cert "$dir" controller-manager "/CN=system:kube-controller-manager" clientAuth ""
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$dir/sa.key" >>"$log" 2>&1 &&
    openssl pkey -in "$dir/sa.key" -pubout -out "$dir/sa.pub" >>"$log" 2>&1 ||
    fail "openssl could not make the service-account key; see $log"
}

sign_cert() {
  local dir="$1" name="$2" subject="$3" usage="$4" san="$5" ext log="$1/openssl.log"
  ext="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=$usage"
  [[ -n "$san" ]] && ext+=$'\n'"subjectAltName=$san"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "$subject" \
    -keyout "$dir/$name.key" -out "$dir/$name.csr" >>"$log" 2>&1 &&
    openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
      -CAcreateserial -days 3650 -extfile <(printf '%s\n' "$ext") -out "$dir/$name.crt" >>"$log" 2>&1 ||
    fail "openssl could not sign the $name certificate; see $log"
}

write_kubeconfig() {
  local file="$1" server="$2" pki="$3" user="$4"
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: realcluster
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 <"$pki/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 <"$pki/$user.crt")
    client-key-data: $(base64 -w0 <"$pki/$user.key")
contexts:
- name: realcluster
  context:
    cluster: realcluster
    user: $user
    namespace: default
current-context: realcluster
EOF
  chmod 600 "$file"
}

# Starts a program in its own session, logging to $state/logs/<name>.log.
launch() {
  local state="$1" name="$2" bin="$3"
  shift 3
  setsid "$bin" "$@" >"$state/logs/$name.log" 2>&1 </dev/null &
  local pid=$! deadline=$((SECONDS + 10))
  echo "$pid" >"$state/pids/$name"
  # Until it execs, the child is a copy of this shell: a check of the process made in that
  # moment (a loaded machine stretches it) would take the server for one that exited.
  until live_pid "$state" "$name" >/dev/null || ! kill -0 "$pid" 2>/dev/null ||
    ((SECONDS >= deadline)); do
    sleep 0.05
  done
}

start_etcd() {
  local bin_dir="$1" state="$2" port="$3" peer="$4"
  launch "$state" etcd "$bin_dir/etcd" --name=realcluster --data-dir="$state/etcd-data" \
    --listen-client-urls="http://127.0.0.1:$port" --advertise-client-urls="http://127.0.0.1:$port" \
    --listen-peer-urls="http://127.0.0.1:$peer" --initial-advertise-peer-urls="http://127.0.0.1:$peer" \
    --initial-cluster="realcluster=http://127.0.0.1:$peer" --unsafe-no-fsync \
    --log-level=warn
}

# etcd is compacted every 30 s (managed clusters: 5 min), and IngressClasses are watched
# from etcd rather than the watch cache (which replays a quiet resource from any old
# resourceVersion), so that a watch from a compacted resourceVersion meets its 410 Expired
# within a test's patience.
# Admission plugins as a managed cluster enables them (most are on by default; named here
# so that the list is explicit).
admission_plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,DefaultStorageClass,DefaultTolerationSeconds,DefaultIngressClass,ResourceQuota,NodeRestriction,Priority,PodSecurity,RuntimeClass,StorageObjectInUseProtection,PersistentVolumeClaimResize,TaintNodesByCondition,CertificateApproval,CertificateSigning,CertificateSubjectRestriction,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy

start_apiserver() {
  local bin_dir="$1" state="$2" port="$3" etcd_port="$4" pki="$2/pki"
  launch "$state" kube-apiserver "$bin_dir/kube-apiserver" \
    --bind-address=127.0.0.1 --secure-port="$port" \
    --etcd-servers="http://127.0.0.1:$etcd_port" \
    --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" \
    --authorization-mode=Node,RBAC \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
    --service-cluster-ip-range=10.0.0.0/24 \
    --enable-admission-plugins="$admission_plugins" \
    --allow-privileged=true --profiling=false --v=1 \
    --etcd-compaction-interval=30s --watch-cache-sizes=ingressclasses.networking.k8s.io#0 \
    ${GLIDEPATH_REALCLUSTER_ADVERTISE_ADDRESS:+--advertise-address="$GLIDEPATH_REALCLUSTER_ADVERTISE_ADDRESS"}
}

start_controller_manager() {
  local bin_dir="$1" state="$2" port="$3" pki="$2/pki" kc="$2/controller-manager.kubeconfig"
  launch "$state" kube-controller-manager "$bin_dir/kube-controller-manager" \
    --bind-address=127.0.0.1 --secure-port="$port" \
    --kubeconfig="$kc" --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc" \
    --leader-elect=false --use-service-account-credentials=true \
    --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
    --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
    --controllers='*' --profiling=false --v=1
}

# Runs a probe until it succeeds, the component's process dies, or the deadline passes.
wait_for() {
  local what="$1" timeout="$2" log="$3" deadline name
  shift 3
  name="$(basename "$log" .log)"
  deadline=$(($(date +%s) + timeout))
  until "$@" >/dev/null 2>&1; do
    if ! live_pid "$state" "$name" >/dev/null; then
      say "error: $name exited while waiting for $what; last lines of $log:"
      tail -n 25 "$log" >&2
      fail "$name did not start; state is in $state (bash $here/down.sh removes it)"
    fi
    if (($(date +%s) >= deadline)); then
      say "error: $what was not ready after ${timeout}s; last lines of $log:"
      tail -n 25 "$log" >&2
      fail "not ready; state and logs are in $state (bash $here/down.sh removes them)"
    fi
    sleep 0.5
  done
  say "$what is ready"
}
