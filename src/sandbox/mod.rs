//! The embedded sandbox: a Kubernetes API server on loopback, with simulated controllers,
//! that kubectl and kube-rs use unchanged. It is what `glidepath demo` and the Kubernetes
//! tests run on. Not a mock: real HTTP, real watch streams, real patch semantics.
//!
//! - [`api`]: routing, CRUD, patches, server-side apply, subresources, watch.
//! - [`discovery`]: `/api`, `/apis` (aggregated and legacy), OpenAPI as kubectl needs it.
//! - [`kinds`]: the served resource types, built-in and CRD-declared.
//! - [`store`]: objects, resourceVersions and the change log watches follow.
//! - [`controllers`]: Deployments, ReplicaSets, Pods, Jobs, CRDs and custom resources.
//! - [`patch`], [`selector`]: merge/strategic/JSON patch and label/field selectors.
//! - [`traffic`]: simulated users, real loopback endpoints, metrics and 30-day history;
//!   [`workload`]: how a version behaves; [`scenario`]: the story the sandbox tells.
//! - [`tsdb`], [`promql`], [`prometheus`]: the metrics store, PromQL with Prometheus 2.42
//!   semantics, and the Prometheus HTTP API on the same port.

pub mod api;
pub mod controllers;
pub mod discovery;
pub mod kinds;
pub mod logs;
pub mod ownership;
pub mod patch;
pub mod preset;
pub mod prometheus;
pub mod promql;
pub mod query_limits;
pub mod rbac;
pub mod scenario;
pub mod selector;
pub mod store;
pub mod table;
pub mod traffic;
pub mod tsdb;
pub mod workload;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::time::Duration;

use serde_json::{Value, json};

use kinds::{Kind, Registry};
use store::{ApiError, Key, Store};

/// The kubeconfig context (and cluster and user) name of every sandbox.
pub const CONTEXT: &str = "glidepath-sandbox";

/// Annotations that shape simulated behaviour (documented in README.md).
pub mod annotations {
    /// On a pod template: containers crash and restart forever (CrashLoopBackOff).
    pub const CRASH_LOOP: &str = "sandbox.glidepath.dev/crash-loop";
    /// On a pod template or custom resource: never becomes Ready.
    pub const NEVER_READY: &str = "sandbox.glidepath.dev/never-ready";
    /// On a pod template or custom resource: becomes Ready after this long (`3s`).
    pub const READY_AFTER: &str = "sandbox.glidepath.dev/ready-after";
    /// On a Job's pod template: the pod fails instead of succeeding.
    pub const JOB_FAIL: &str = "sandbox.glidepath.dev/fail";
    /// On a Job's pod template: how long the pod runs (`2s`).
    pub const JOB_DURATION: &str = "sandbox.glidepath.dev/duration";
    /// On a pod template: log lines the containers write, separated by newlines.
    pub const LOG: &str = "sandbox.glidepath.dev/log";
}

/// How fast the simulated controllers act.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Controller loop period.
    pub tick: Duration,
    /// A pod is scheduled and running after this long.
    pub pod_start: Duration,
    /// A running pod passes readiness after this long (unless annotated otherwise).
    pub pod_ready: Duration,
    /// A custom resource becomes Ready after this long.
    pub resource_ready: Duration,
    /// A Job's pod runs this long.
    pub job_duration: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            tick: Duration::from_millis(100),
            pod_start: Duration::from_millis(300),
            pod_ready: Duration::from_millis(700),
            resource_ready: Duration::from_secs(2),
            job_duration: Duration::from_secs(1),
        }
    }
}

/// The cluster state behind the API.
pub struct Cluster {
    store: Mutex<Store>,
    registry: RwLock<Registry>,
    logs: Mutex<HashMap<(String, String), Vec<String>>>,
    /// Wakes log followers when lines arrive.
    pub log_notify: tokio::sync::Notify,
    /// The Kubernetes minor version `/version` reports (kubectl's dispatcher picks by it).
    pub minor: u32,
    /// Controller timing.
    pub timing: Timing,
    /// Simulated traffic, endpoints and metrics.
    pub telemetry: traffic::Telemetry,
}

impl Cluster {
    /// An empty cluster with the `default` namespaces and a few nodes, telling the `happy`
    /// scenario.
    pub fn new(minor: u32, timing: Timing) -> Arc<Cluster> {
        Cluster::with_scenario(minor, timing, scenario::Scenario::default())
    }

    /// An empty cluster telling `scenario`.
    pub fn with_scenario(minor: u32, timing: Timing, scenario: scenario::Scenario) -> Arc<Cluster> {
        let cluster = Arc::new(Cluster {
            store: Mutex::new(Store::default()),
            registry: RwLock::new(Registry::default()),
            logs: Mutex::new(HashMap::new()),
            log_notify: tokio::sync::Notify::new(),
            minor,
            timing,
            telemetry: traffic::Telemetry::new(scenario),
        });
        for ns in ["default", "kube-system", "kube-public"] {
            let mut obj =
                json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns } });
            let _ = cluster.create_builtin("Namespace", None, &mut obj);
        }
        for i in 1..=3 {
            let mut node = json!({
                "apiVersion": "v1", "kind": "Node",
                "metadata": { "name": format!("sandbox-node-{i}"), "labels": { "kubernetes.io/hostname": format!("sandbox-node-{i}") } },
                "status": {
                    "capacity": { "cpu": "4", "memory": "16Gi", "pods": "110" },
                    "allocatable": { "cpu": "4", "memory": "16Gi", "pods": "110" },
                    "conditions": [{ "type": "Ready", "status": "True" }],
                },
            });
            let _ = cluster.create_builtin("Node", None, &mut node);
        }
        preset::gateway_api(&cluster);
        cluster
    }

    /// The store, locked. Never held across an await.
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The registry of served kinds.
    pub fn registry(&self) -> RwLockReadGuard<'_, Registry> {
        self.registry.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The served kind `plural` of API group `group` (`""` for the core group).
    pub fn kind(&self, group: &str, plural: &str) -> Option<Kind> {
        self.registry()
            .all()
            .iter()
            .find(|k| k.group == group && k.plural == plural)
            .cloned()
    }

    /// Adds kinds (from an Established CRD).
    pub fn register(&self, kinds: Vec<Kind>) {
        self.registry
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .register(kinds);
    }

    /// One object.
    pub fn get(&self, key: &Key) -> Option<Arc<Value>> {
        self.store().get(key)
    }

    /// Objects of a kind (one namespace or all) and the current resourceVersion.
    pub fn list(&self, kind: &Kind, namespace: Option<&str>) -> (Vec<Arc<Value>>, u64) {
        let store = self.store();
        (store.list(&kind.group, &kind.plural, namespace), store.rv())
    }

    /// Like [`Cluster::list`], with each object's JSON encoding.
    pub fn list_encoded(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
    ) -> (Vec<(Arc<Value>, axum::body::Bytes)>, u64) {
        let store = self.store();
        (
            store.list_encoded(&kind.group, &kind.plural, namespace),
            store.rv(),
        )
    }

    fn kind_named(&self, kind: &str) -> Option<Kind> {
        self.registry()
            .all()
            .iter()
            .find(|k| k.kind == kind && k.group_is_builtin_for(kind))
            .cloned()
    }

    /// Creates a built-in object from code (controllers, presets).
    pub fn create_builtin(
        &self,
        kind: &str,
        namespace: Option<&str>,
        obj: &mut Value,
    ) -> Result<Value, ApiError> {
        let k = self
            .kind_named(kind)
            .ok_or_else(|| ApiError::bad_request(format!("unknown kind {kind}")))?;
        self.create(&k, namespace, obj, false, None)
    }

    /// Creates an object, with the API server's defaulting and validation.
    pub fn create(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        obj: &mut Value,
        dry_run: bool,
        manager: Option<&str>,
    ) -> Result<Value, ApiError> {
        let meta = obj.get("metadata").cloned().unwrap_or(json!({}));
        let name = match meta.get("name").and_then(Value::as_str) {
            Some(n) if !n.is_empty() => n.to_owned(),
            _ => match meta.get("generateName").and_then(Value::as_str) {
                Some(prefix) => format!("{prefix}{}", random_suffix()),
                None => {
                    return Err(ApiError::invalid(
                        &kind.kind,
                        "",
                        "metadata.name: Required value: name or generateName is required",
                    )
                    .in_group(&kind.group));
                }
            },
        };
        if !valid_name(&name) {
            return Err(ApiError::invalid(
                &kind.kind,
                &name,
                format!(
                    "metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
                ),
            )
            .in_group(&kind.group));
        }
        let body_ns = meta
            .get("namespace")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let ns = if kind.namespaced {
            let ns = match (namespace, body_ns.as_deref()) {
                (Some(url), Some(body)) if url != body => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                (Some(url), _) => url.to_owned(),
                (None, Some(body)) => body.to_owned(),
                (None, None) => "default".to_owned(),
            };
            let ns_key = Key {
                group: String::new(),
                plural: "namespaces".into(),
                namespace: String::new(),
                name: ns.clone(),
            };
            if self.get(&ns_key).is_none() {
                return Err(ApiError::not_found("namespaces", &ns));
            }
            ns
        } else {
            String::new()
        };
        obj["metadata"]["name"] = json!(name);
        if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove("generateName");
            m.remove("resourceVersion");
        }
        if kind.namespaced {
            obj["metadata"]["namespace"] = json!(ns);
        }
        obj["apiVersion"] = json!(kind.api_version());
        obj["kind"] = json!(kind.kind);
        obj["metadata"]["uid"] = json!(new_uid());
        obj["metadata"]["creationTimestamp"] = json!(now_rfc3339());
        if kind.has_generation() {
            obj["metadata"]["generation"] = json!(1);
        }
        // An apply that creates owns what it set, not what defaulting adds.
        let applied = ownership::leaves(obj, kind);
        controllers::default_object(kind, obj).map_err(|e| e.in_group(&kind.group))?;
        if let Some(m) = manager {
            ownership::record(obj, m, "Apply", applied, &Default::default(), kind);
        }
        let key = Key {
            group: kind.group.clone(),
            plural: kind.plural.clone(),
            namespace: ns,
            name: name.clone(),
        };
        let mut store = self.store();
        if store.get(&key).is_some() {
            return Err(ApiError::already_exists(&kind.qualified(), &name));
        }
        if dry_run {
            return Ok(obj.clone());
        }
        Ok((*store.put(key, obj.clone())).clone())
    }

    /// Changes an object in place; generation grows when the spec changes. A change that
    /// changes nothing keeps the resourceVersion, as on a real server.
    pub fn modify(
        &self,
        kind: &Kind,
        key: &Key,
        dry_run: bool,
        f: impl FnOnce(&mut Value) -> Result<(), ApiError>,
    ) -> Result<Value, ApiError> {
        let mut store = self.store();
        let live = store
            .get(key)
            .ok_or_else(|| ApiError::not_found(&kind.qualified(), &key.name))?;
        let mut obj = (*live).clone();
        f(&mut obj)?;
        for field in ["uid", "creationTimestamp", "name", "namespace"] {
            if let Some(v) = live.pointer(&format!("/metadata/{field}")) {
                obj["metadata"][field] = v.clone();
            }
        }
        obj["apiVersion"] = json!(kind.api_version());
        obj["kind"] = json!(kind.kind);
        obj["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"].clone();
        if obj == *live {
            return Ok(obj);
        }
        if kind.has_generation() && obj.get("spec") != live.get("spec") {
            let g = live
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            obj["metadata"]["generation"] = json!(g + 1);
        }
        if dry_run {
            return Ok(obj);
        }
        Ok((*store.put(key.clone(), obj)).clone())
    }

    /// Deletes an object and (unless orphaning) everything it owns, and a namespace's content.
    pub fn delete(
        &self,
        key: &Key,
        kind: &Kind,
        orphan: bool,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let live = self
            .get(key)
            .ok_or_else(|| ApiError::not_found(&kind.qualified(), &key.name))?;
        if dry_run {
            return Ok((*live).clone());
        }
        let mut store = self.store();
        let gone = store
            .remove(key)
            .ok_or_else(|| ApiError::not_found(&kind.qualified(), &key.name))?;
        let uid = gone
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut queue = vec![uid];
        while let Some(owner) = queue.pop() {
            let dependents: Vec<(Key, Arc<Value>)> = store
                .all()
                .filter(|(_, o)| {
                    o.pointer("/metadata/ownerReferences")
                        .and_then(Value::as_array)
                        .is_some_and(|refs| refs.iter().any(|r| r["uid"] == owner.as_str()))
                })
                .map(|(k, o)| (k.clone(), o.clone()))
                .collect();
            for (k, o) in dependents {
                if orphan {
                    let mut freed = (*o).clone();
                    if let Some(m) = freed["metadata"].as_object_mut() {
                        m.remove("ownerReferences");
                    }
                    store.put(k, freed);
                } else if let Some(d) = store.remove(&k) {
                    queue.push(
                        d.pointer("/metadata/uid")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                    );
                }
            }
        }
        if kind.kind == "Namespace" {
            let inside: Vec<Key> = store
                .all()
                .filter(|(k, _)| k.namespace == key.name)
                .map(|(k, _)| k.clone())
                .collect();
            for k in inside {
                store.remove(&k);
            }
        }
        if kind.kind == "CustomResourceDefinition"
            && let (Some(group), Some(plural)) = (
                gone.pointer("/spec/group").and_then(Value::as_str),
                gone.pointer("/spec/names/plural").and_then(Value::as_str),
            )
        {
            let instances: Vec<Key> = store
                .all()
                .filter(|(k, _)| k.group == group && k.plural == plural)
                .map(|(k, _)| k.clone())
                .collect();
            for k in instances {
                store.remove(&k);
            }
            drop(store);
            self.registry
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .unregister(group, plural);
        }
        Ok((*gone).clone())
    }

    /// Appends log lines for a pod's containers and wakes followers.
    pub fn append_logs(&self, namespace: &str, pod: &str, lines: impl IntoIterator<Item = String>) {
        self.logs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((namespace.to_owned(), pod.to_owned()))
            .or_default()
            .extend(lines);
        self.log_notify.notify_waiters();
    }

    /// A pod's log lines so far.
    pub fn logs_of(&self, namespace: &str, pod: &str) -> Vec<String> {
        self.logs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(namespace.to_owned(), pod.to_owned()))
            .cloned()
            .unwrap_or_default()
    }
}

impl Cluster {
    /// Writes every object to `path` as JSON (`--state`).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let objects: Vec<Value> = self.store().all().map(|(_, o)| (**o).clone()).collect();
        let text =
            serde_json::to_string(&json!({ "objects": objects })).map_err(std::io::Error::other)?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(tmp, path)
    }

    /// Loads objects saved by [`Cluster::save`]; CRDs first, so their kinds are served.
    pub fn load(&self, path: &Path) -> std::io::Result<usize> {
        // The sandbox's own file, which may hold every object it served: a larger limit.
        let text = crate::input::read_text_limited(path, 8 * crate::input::MAX_FILE_BYTES)?;
        let doc: Value = serde_json::from_str(&text).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })?;
        let objects = doc
            .get("objects")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let (crds, rest): (Vec<Value>, Vec<Value>) = objects
            .into_iter()
            .partition(|o| o["kind"] == "CustomResourceDefinition");
        let mut count = 0;
        for batch in [crds, rest] {
            for o in batch {
                let kind = self
                    .registry()
                    .by_kind(
                        o["apiVersion"].as_str().unwrap_or_default(),
                        o["kind"].as_str().unwrap_or_default(),
                    )
                    .cloned();
                let Some(kind) = kind else { continue };
                let key = Key {
                    group: kind.group.clone(),
                    plural: kind.plural.clone(),
                    namespace: o
                        .pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    name: o
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                };
                self.store().put(key, o);
                count += 1;
            }
            controllers::establish_crds(self);
        }
        Ok(count)
    }
}

impl Kind {
    /// Built-in kinds are looked up by name from code; a CRD may not shadow them.
    fn group_is_builtin_for(&self, kind: &str) -> bool {
        kinds::builtins()
            .iter()
            .any(|b| b.kind == kind && b.group == self.group)
    }
}

/// Records a field manager in `metadata.managedFields` (one entry per manager and
/// operation). An existing entry is kept as it is, so repeating an apply changes nothing.
pub fn record_manager(obj: &mut Value, manager: &str, operation: &str, kind: &Kind) {
    let known = obj
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .is_some_and(|l| {
            l.iter()
                .any(|e| e["manager"] == manager && e["operation"] == operation)
        });
    if known {
        return;
    }
    let entry = json!({
        "manager": manager, "operation": operation, "apiVersion": kind.api_version(),
        "time": now_rfc3339(), "fieldsType": "FieldsV1", "fieldsV1": {},
    });
    let fields = &mut obj["metadata"]["managedFields"];
    if !fields.is_array() {
        *fields = json!([]);
    }
    if let Some(list) = fields.as_array_mut() {
        list.push(entry);
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn mix(mut x: u64) -> u64 {
    // splitmix64: enough spread for names and uids that only need to be unique here.
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn next_random() -> u64 {
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    mix(n ^ (crate::store::now_ms() as u64).rotate_left(17) ^ u64::from(std::process::id()))
}

/// Five characters as Kubernetes uses for generated names.
pub fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut r = next_random();
    (0..5)
        .map(|_| {
            let c = ALPHABET[(r % ALPHABET.len() as u64) as usize] as char;
            r /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

fn new_uid() -> String {
    let (a, b) = (next_random(), next_random());
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}

/// Now, as Kubernetes writes timestamps.
pub fn now_rfc3339() -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_default()
}

/// A running sandbox API server.
pub struct Sandbox {
    /// The cluster behind it.
    pub cluster: Arc<Cluster>,
    /// Where it listens.
    pub addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
    controllers: tokio::task::JoinHandle<()>,
    traffic: tokio::task::JoinHandle<()>,
}

impl Sandbox {
    /// Starts the API server on 127.0.0.1:`port` (0 picks a free port) and the controllers.
    pub async fn start(port: u16, cluster: Arc<Cluster>) -> std::io::Result<Sandbox> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let app = prometheus::routes()
            .fallback(api::handle)
            .with_state(cluster.clone())
            .layer(axum::extract::DefaultBodyLimit::max(api::MAX_BODY))
            .layer(axum::middleware::from_fn(api::refuse_oversized));
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!("sandbox API server stopped: {e}");
            }
        });
        let controllers = tokio::spawn(controllers::run(cluster.clone()));
        let traffic = tokio::spawn(traffic::run(cluster.clone()));
        Ok(Sandbox {
            cluster,
            addr,
            server,
            controllers,
            traffic,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig with the `glidepath-sandbox` context.
    pub fn kubeconfig(&self, namespace: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: glidepath-sandbox\n  cluster:\n    server: {}\ncontexts:\n- name: glidepath-sandbox\n  context:\n    cluster: glidepath-sandbox\n    user: glidepath-sandbox\n    namespace: {namespace}\ncurrent-context: glidepath-sandbox\nusers:\n- name: glidepath-sandbox\n  user: {{}}\n",
            self.url()
        )
    }

    /// Writes the kubeconfig to `path`.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, self.kubeconfig("default"))
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.server.abort();
        self.controllers.abort();
        self.traffic.abort();
    }
}
