//! Simulated users, real endpoints and the metrics they produce.
//!
//! Every Service that selects pods is an entry point, and so is every Gateway API
//! HTTPRoute; a Service behind a route gets its traffic through the route. Each entry point
//! receives a steady simulated load (`sandbox.glidepath.dev/rps`, optionally shaped like a
//! day) and answers real HTTP on a loopback port (`sandbox.glidepath.dev/endpoint`).
//! Requests are split by the actual weights: `backendRefs` weights of a route, then the
//! ready replicas of each version behind a Service (a blue-green selector switch is just a
//! Service whose selector now matches other pods). A backend with no ready pods answers
//! 503. Every request, simulated or real, is counted in
//! `http_requests_total{namespace,service,version,code}` and
//! `http_request_duration_seconds{namespace,service,version}`; a scrape every second
//! writes them, with `kube_deployment_*` state, into the [`tsdb`](super::tsdb).
//!
//! When an entry point first has ready pods, its store is backfilled with 30 days of
//! history for the versions serving then (the scenario decides how much error budget it
//! spent), so budget and burn-rate views have data from the first second.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::scenario::Scenario;
use super::store::Key;
use super::tsdb::{Db, Labels, Retention, exposition_series, format_value, labels};
use super::view::ClusterView;
use super::workload::{Behaviour, Conditions, Rng, annotation, annotations as ann};

/// Upper bounds of the latency histogram, seconds (the Prometheus client defaults).
pub const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// The `version` label of requests no version served (no ready pods).
pub const NO_VERSION: &str = "none";
/// Simulated requests per second of an entry point that does not say.
pub const DEFAULT_RPS: f64 = 20.0;
/// How often the store records the counters.
pub const SCRAPE_INTERVAL: Duration = Duration::from_secs(1);
/// How much history a new entry point gets.
pub const HISTORY: Duration = Duration::from_secs(30 * 24 * 3600);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One latency histogram.
#[derive(Debug, Clone, Default)]
struct Histogram {
    /// Cumulative counts per bound of [`BUCKETS`], then `+Inf`.
    cumulative: [f64; BUCKETS.len() + 1],
    sum: f64,
}

/// `(namespace, service, version)`.
type VersionKey = (String, String, String);

/// The live counters, as the apps would expose them.
#[derive(Debug, Default)]
struct Counters {
    requests: BTreeMap<(VersionKey, u16), f64>,
    durations: BTreeMap<VersionKey, Histogram>,
}

impl Counters {
    /// Counts one request; the version's error series exists from its first request, as
    /// a well-instrumented service initialises it, so error ratios read 0 rather than no data.
    fn observe(&mut self, key: &VersionKey, code: u16, error_code: u16, secs: f64) {
        self.requests.entry((key.clone(), error_code)).or_default();
        *self.requests.entry((key.clone(), code)).or_default() += 1.0;
        let h = self.durations.entry(key.clone()).or_default();
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                h.cumulative[i] += 1.0;
            }
        }
        h.cumulative[BUCKETS.len()] += 1.0;
        h.sum += secs;
    }

    /// Every series with its current value.
    fn samples(&self) -> Vec<(Labels, f64)> {
        let mut out = Vec::new();
        for (((ns, svc, ver), code), v) in &self.requests {
            let code = code.to_string();
            out.push((
                labels(
                    "http_requests_total",
                    &[
                        ("namespace", ns),
                        ("service", svc),
                        ("version", ver),
                        ("code", &code),
                    ],
                ),
                *v,
            ));
        }
        for ((ns, svc, ver), h) in &self.durations {
            let base = [
                ("namespace", ns.as_str()),
                ("service", svc),
                ("version", ver),
            ];
            for (i, count) in h.cumulative.iter().enumerate() {
                let le = BUCKETS
                    .get(i)
                    .map_or("+Inf".to_owned(), |b| format_value(*b));
                let mut l = base.to_vec();
                l.push(("le", &le));
                out.push((labels("http_request_duration_seconds_bucket", &l), *count));
            }
            out.push((labels("http_request_duration_seconds_sum", &base), h.sum));
            out.push((
                labels("http_request_duration_seconds_count", &base),
                h.cumulative[BUCKETS.len()],
            ));
        }
        out
    }
}

/// A version behind a Service, as traffic sees it.
#[derive(Debug, Clone)]
pub struct VersionTarget {
    /// The app's name (the `service` metric label).
    pub app: String,
    /// Its version (the `version` metric label).
    pub version: String,
    /// Ready pods.
    pub ready: u32,
    /// How it behaves.
    pub behaviour: Behaviour,
    /// When the sandbox first saw it.
    pub started: Instant,
}

/// A Service as a backend of an entry point.
#[derive(Debug, Clone)]
pub struct Backend {
    /// The Service's name.
    pub service: String,
    /// Its share of the entry point's traffic (relative).
    pub weight: f64,
    /// Versions behind it (ready or not).
    pub versions: Vec<VersionTarget>,
}

/// Where traffic enters: a Service or an HTTPRoute.
#[derive(Debug, Clone)]
pub struct Entry {
    /// `Service` or `HTTPRoute`.
    pub kind: &'static str,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Simulated requests per second (before shaping).
    pub rps: f64,
    /// Shaped like a day.
    pub daily: bool,
    /// Whether simulated users reach it (false for a Service behind a route).
    pub simulated: bool,
    /// Where it sends traffic.
    pub backends: Vec<Backend>,
    /// The Service's (or route's) annotations that shape history.
    pub objective: Option<f64>,
    /// See [`ann::HISTORY_BUDGET_SPENT`].
    pub budget_spent: Option<f64>,
}

impl Entry {
    fn id(&self) -> EntryId {
        (self.kind, self.namespace.clone(), self.name.clone())
    }

    /// Total ready pods behind it.
    pub fn ready(&self) -> u32 {
        self.backends
            .iter()
            .flat_map(|b| &b.versions)
            .map(|v| v.ready)
            .sum()
    }
}

type EntryId = (&'static str, String, String);

/// What one request got.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// `(namespace, service, version)` it is counted under.
    pub key: (String, String, String),
    /// Status code.
    pub code: u16,
    /// Latency, seconds.
    pub latency: f64,
    /// The status code this version's errors get.
    pub error_code: u16,
}

/// The traffic routing table, rebuilt from cluster state whenever it changes.
#[derive(Debug, Default)]
pub struct Topology {
    /// Every entry point.
    pub entries: Vec<Entry>,
}

impl Topology {
    fn find(&self, id: &EntryId) -> Option<&Entry> {
        self.entries.iter().find(|e| &e.id() == id)
    }
}

/// A listening endpoint.
struct Endpoint {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

/// Per-version requests in the current and the last second.
#[derive(Debug, Default, Clone, Copy)]
struct Meter {
    second: i64,
    current: f64,
    last: f64,
}

/// Versions the sandbox has met.
#[derive(Debug, Default)]
struct Book {
    first_seen: HashMap<VersionKey, Instant>,
    /// The versions an app had when it first served: its stable versions.
    baseline: HashMap<(String, String), HashSet<String>>,
    /// Entry points already given history.
    backfilled: HashSet<EntryId>,
}

/// Everything traffic-related in a cluster.
pub struct Telemetry {
    db: RwLock<Db>,
    counters: Mutex<Counters>,
    topology: RwLock<Arc<Topology>>,
    endpoints: Mutex<HashMap<EntryId, Endpoint>>,
    book: Mutex<Book>,
    meters: Mutex<HashMap<VersionKey, Meter>>,
    rng: Mutex<Rng>,
    /// The story being told.
    pub scenario: Scenario,
    /// How long the store keeps samples.
    pub retention: Retention,
}

impl Telemetry {
    /// Telemetry for a new cluster.
    pub fn new(scenario: Scenario) -> Telemetry {
        Telemetry {
            db: RwLock::new(Db::default()),
            counters: Mutex::new(Counters::default()),
            topology: RwLock::new(Arc::new(Topology::default())),
            endpoints: Mutex::new(HashMap::new()),
            book: Mutex::new(Book::default()),
            meters: Mutex::new(HashMap::new()),
            rng: Mutex::new(Rng::new(now_ms() as u64)),
            scenario,
            retention: Retention::default(),
        }
    }

    /// The store, for reading.
    pub fn db(&self) -> RwLockReadGuard<'_, Db> {
        self.db.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The store, for writing.
    pub fn db_mut(&self) -> RwLockWriteGuard<'_, Db> {
        self.db.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The routing table as of the last refresh.
    pub fn topology(&self) -> Arc<Topology> {
        self.topology
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// `(kind, namespace, name, url)` of every endpoint, sorted.
    pub fn endpoints(&self) -> Vec<(String, String, String, String)> {
        let mut out: Vec<_> = lock(&self.endpoints)
            .iter()
            .map(|((k, ns, n), e)| ((*k).to_owned(), ns.clone(), n.clone(), e.url.clone()))
            .collect();
        out.sort();
        out
    }

    fn count(&self, o: &Outcome) {
        lock(&self.counters).observe(&o.key, o.code, o.error_code, o.latency);
        let second = now_ms() / 1000;
        let mut meters = lock(&self.meters);
        let m = meters.entry(o.key.clone()).or_default();
        if m.second != second {
            m.last = if m.second == second - 1 {
                m.current
            } else {
                0.0
            };
            m.current = 0.0;
            m.second = second;
        }
        m.current += 1.0;
    }

    fn rate_of(&self, key: &VersionKey) -> f64 {
        let second = now_ms() / 1000;
        lock(&self.meters).get(key).map_or(0.0, |m| {
            if m.second == second {
                m.last.max(m.current)
            } else if m.second == second - 1 {
                m.current
            } else {
                0.0
            }
        })
    }

    /// Routes one request through `entry`, as the cluster stands.
    pub fn route(&self, entry: &Entry, rng: &mut Rng) -> Outcome {
        let total: f64 = entry.backends.iter().map(|b| b.weight).sum();
        let unavailable = |app: &str, version: &str| Outcome {
            key: (entry.namespace.clone(), app.to_owned(), version.to_owned()),
            code: 503,
            latency: 0.001,
            error_code: 503,
        };
        if total <= 0.0 {
            return unavailable(&entry.name, NO_VERSION);
        }
        let mut pick = rng.uniform() * total;
        let backend = entry
            .backends
            .iter()
            .find(|b| {
                pick -= b.weight;
                pick < 0.0 && b.weight > 0.0
            })
            .or_else(|| entry.backends.iter().rev().find(|b| b.weight > 0.0));
        let Some(backend) = backend else {
            return unavailable(&entry.name, NO_VERSION);
        };
        let ready: u32 = backend.versions.iter().map(|v| v.ready).sum();
        if ready == 0 {
            // No version served it: the gateway answered, so it is counted under the app
            // with version "none" (a version's own series count only what it served).
            let app = backend
                .versions
                .first()
                .map_or(backend.service.as_str(), |v| v.app.as_str());
            return unavailable(app, NO_VERSION);
        }
        let mut pick = rng.uniform() * f64::from(ready);
        let target = backend
            .versions
            .iter()
            .find(|v| {
                pick -= f64::from(v.ready);
                pick < 0.0 && v.ready > 0
            })
            .or_else(|| backend.versions.iter().rev().find(|v| v.ready > 0));
        let Some(v) = target else {
            return unavailable(&backend.service, NO_VERSION);
        };
        let key = (entry.namespace.clone(), v.app.clone(), v.version.clone());
        let c = v
            .behaviour
            .conditions(v.started.elapsed(), self.rate_of(&key), v.ready);
        Outcome {
            code: c.sample_code(rng),
            latency: c.sample_latency(rng),
            error_code: c.error_code,
            key,
        }
    }

    /// Gives `entry` 30 days of history ending at `now` (ms), once: what the sandbox does
    /// when an entry point first has ready pods.
    pub fn write_history(&self, entry: &Entry, now: i64) {
        backfill(self, entry, now);
    }

    /// Writes the current counters and cluster state into the store at `t`.
    pub fn scrape(&self, cluster: &dyn ClusterView, t: i64) {
        let mut samples = lock(&self.counters).samples();
        samples.extend(kube_state(cluster));
        let mut db = self.db_mut();
        for (l, v) in samples {
            db.append(&l, t, v);
        }
    }

    /// The metrics in Prometheus text exposition format.
    pub fn exposition(&self, cluster: &dyn ClusterView) -> String {
        let mut samples = lock(&self.counters).samples();
        samples.extend(kube_state(cluster));
        let mut families: BTreeMap<String, Vec<(Labels, f64)>> = BTreeMap::new();
        for (l, v) in samples {
            let name = super::tsdb::label(&l, super::tsdb::NAME).to_owned();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .filter(|f| *f == "http_request_duration_seconds")
                .unwrap_or(&name)
                .to_owned();
            families.entry(family).or_default().push((l, v));
        }
        let mut out = String::new();
        for (family, series) in families {
            let (kind, help) = match family.as_str() {
                "http_requests_total" => ("counter", "HTTP requests by status code."),
                "http_request_duration_seconds" => ("histogram", "HTTP request latency."),
                _ => (
                    "gauge",
                    "Deployment state, as kube-state-metrics reports it.",
                ),
            };
            out.push_str(&format!("# HELP {family} {help}\n# TYPE {family} {kind}\n"));
            for (l, v) in series {
                out.push_str(&format!("{} {}\n", exposition_series(&l), format_value(v)));
            }
        }
        out
    }
}

/// `kube_deployment_*` gauges for every Deployment.
fn kube_state(cluster: &dyn ClusterView) -> Vec<(Labels, f64)> {
    let deployments = cluster.objects("apps", "deployments");
    let mut out = Vec::new();
    for d in deployments {
        let ns = str_at(&d, "/metadata/namespace");
        let name = str_at(&d, "/metadata/name");
        let num = |p: &str| d.pointer(p).and_then(Value::as_f64).unwrap_or(0.0);
        let base = [("namespace", ns), ("deployment", name)];
        for (metric, value) in [
            ("kube_deployment_spec_replicas", num("/spec/replicas")),
            (
                "kube_deployment_status_replicas_available",
                num("/status/availableReplicas"),
            ),
            (
                "kube_deployment_status_replicas_ready",
                num("/status/readyReplicas"),
            ),
            (
                "kube_deployment_status_replicas_updated",
                num("/status/updatedReplicas"),
            ),
        ] {
            out.push((labels(metric, &base), value));
        }
    }
    out
}

fn str_at<'a>(o: &'a Value, p: &str) -> &'a str {
    o.pointer(p).and_then(Value::as_str).unwrap_or("")
}

fn label_of<'a>(o: &'a Value, keys: &[&str]) -> Option<&'a str> {
    let l = o.pointer("/metadata/labels")?;
    keys.iter().find_map(|k| l.get(*k).and_then(Value::as_str))
}

/// The `service` label of a pod: its app name.
fn app_of<'a>(pod: &'a Value, fallback: &'a str) -> &'a str {
    label_of(pod, &["app.kubernetes.io/name", "app"]).unwrap_or(fallback)
}

/// The label glidepath's statistical judge puts on baseline pods (`glidepath.dev/track:
/// baseline`): pods of the stable version under their own `version` label.
fn runs_stable_as_baseline(pod: &Value) -> bool {
    label_of(pod, &["glidepath.dev/track"]) == Some("baseline")
}

/// The `version` label of a pod.
fn version_of(pod: &Value) -> &str {
    label_of(
        pod,
        &["app.kubernetes.io/version", "version", "pod-template-hash"],
    )
    .unwrap_or("unknown")
}

fn is_ready(pod: &Value) -> bool {
    pod.pointer("/metadata/deletionTimestamp").is_none()
        && pod
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
}

fn selects(selector: &serde_json::Map<String, Value>, pod: &Value) -> bool {
    let labels = pod.pointer("/metadata/labels");
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

fn rps_of(o: &Value) -> Option<f64> {
    annotation(o, ann::RPS)
        .and_then(|r| r.trim().parse::<f64>().ok())
        .filter(|r| *r >= 0.0 && r.is_finite())
}

fn number_annotation(o: &Value, key: &str) -> Option<f64> {
    annotation(o, key).and_then(|v| {
        let v = v.trim();
        match v.strip_suffix('%') {
            Some(p) => p.trim().parse::<f64>().ok().map(|p| p / 100.0),
            None => v.parse::<f64>().ok(),
        }
    })
}

/// Builds the routing table from the cluster's Services, pods and HTTPRoutes.
fn build_topology(cluster: &dyn ClusterView, tel: &Telemetry) -> Topology {
    let services = cluster.objects("", "services");
    let pods = cluster.objects("", "pods");
    let routes = cluster.objects("gateway.networking.k8s.io", "httproutes");
    let backends = service_backends(tel, &services, &pods);
    let mut behind_route: HashSet<(String, String)> = HashSet::new();
    let mut entries: Vec<Entry> = routes
        .iter()
        .map(|route| route_entry(route, &backends, &mut behind_route))
        .collect();
    let mut services: Vec<_> = backends.into_iter().collect();
    services.sort_by(|a, b| a.0.cmp(&b.0));
    for ((ns, name), (backend, svc)) in services {
        let simulated = !behind_route.contains(&(ns.clone(), name.clone()));
        entries.push(Entry {
            kind: "Service",
            rps: rps_of(&svc).unwrap_or(DEFAULT_RPS),
            daily: annotation(&svc, ann::SHAPE).is_some_and(|s| s.trim() == "daily"),
            simulated,
            objective: number_annotation(&svc, ann::HISTORY_OBJECTIVE),
            budget_spent: number_annotation(&svc, ann::HISTORY_BUDGET_SPENT),
            namespace: ns,
            name,
            backends: vec![backend],
        });
    }
    Topology { entries }
}

/// Services with a selector, by (namespace, name): each as a backend of the versions
/// its pods run, with the Service object.
type ServiceBackends = HashMap<(String, String), (Backend, Arc<Value>)>;

fn service_backends(
    tel: &Telemetry,
    services: &[Arc<Value>],
    pods: &[Arc<Value>],
) -> ServiceBackends {
    let mut by_ns: HashMap<&str, Vec<&Value>> = HashMap::new();
    for p in pods {
        by_ns
            .entry(str_at(p, "/metadata/namespace"))
            .or_default()
            .push(p);
    }
    let mut book = lock(&tel.book);
    let mut backends = ServiceBackends::new();
    for svc in services {
        let Some(selector) = svc.pointer("/spec/selector").and_then(Value::as_object) else {
            continue;
        };
        if selector.is_empty() {
            continue;
        }
        let ns = str_at(svc, "/metadata/namespace");
        let name = str_at(svc, "/metadata/name");
        let selected = by_ns.get(ns).into_iter().flatten().filter(|pod| {
            selects(selector, pod) && pod.pointer("/metadata/deletionTimestamp").is_none()
        });
        let versions = versions(tel, &mut book, ns, name, selected);
        backends.insert(
            (ns.to_owned(), name.to_owned()),
            (
                Backend {
                    service: name.to_owned(),
                    weight: 1.0,
                    versions,
                },
                svc.clone(),
            ),
        );
    }
    backends
}

/// The app versions a Service's pods run, with their ready pods. A version the app did not
/// first serve with is new and behaves as the scenario's new version does.
fn versions<'p>(
    tel: &Telemetry,
    book: &mut Book,
    ns: &str,
    service: &str,
    pods: impl Iterator<Item = &'p &'p Value>,
) -> Vec<VersionTarget> {
    let mut versions: Vec<VersionTarget> = Vec::new();
    for pod in pods {
        let app = app_of(pod, service).to_owned();
        let version = version_of(pod).to_owned();
        let ready = u32::from(is_ready(pod));
        if let Some(v) = versions
            .iter_mut()
            .find(|v| v.app == app && v.version == version)
        {
            v.ready += ready;
            continue;
        }
        let key = (ns.to_owned(), app.clone(), version.clone());
        let started = *book.first_seen.entry(key).or_insert_with(Instant::now);
        let baseline = book.baseline.get(&(ns.to_owned(), app.clone()));
        // A release's baseline runs the stable version under a label of its own.
        let is_new =
            baseline.is_some_and(|b| !b.contains(&version)) && !runs_stable_as_baseline(pod);
        let base = if is_new {
            tel.scenario.new_version_of(&app)
        } else {
            Behaviour::default()
        };
        versions.push(VersionTarget {
            behaviour: Behaviour::from_annotations(pod, &base),
            app,
            version,
            ready,
            started,
        });
    }
    versions.sort_by(|a, b| (&a.app, &a.version).cmp(&(&b.app, &b.version)));
    // The versions an app first serves with are its stable ones.
    for v in versions.iter().filter(|v| v.ready > 0) {
        let app_key = (ns.to_owned(), v.app.clone());
        book.baseline.entry(app_key).or_insert_with(|| {
            versions
                .iter()
                .filter(|x| x.app == v.app && x.ready > 0)
                .map(|x| x.version.clone())
                .collect()
        });
    }
    versions
}

/// An HTTPRoute as an entry point: its Service backends by weight, its rate, shape and
/// history from its own annotations or else its backends'. Marks the Services it fronts.
fn route_entry(
    route: &Value,
    backends: &ServiceBackends,
    behind_route: &mut HashSet<(String, String)>,
) -> Entry {
    let ns = str_at(route, "/metadata/namespace");
    let mut refs: Vec<Backend> = Vec::new();
    let mut rps = rps_of(route);
    let mut daily = annotation(route, ann::SHAPE).map(|s| s.trim() == "daily");
    let (mut objective, mut spent) = (None, None);
    let backend_refs = route
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|rule| {
            rule.get("backendRefs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        });
    for r in backend_refs {
        let kind = r.get("kind").and_then(Value::as_str).unwrap_or("Service");
        if kind != "Service" {
            continue;
        }
        let name = r.get("name").and_then(Value::as_str).unwrap_or("");
        let bns = r.get("namespace").and_then(Value::as_str).unwrap_or(ns);
        let weight = r
            .get("weight")
            .and_then(Value::as_f64)
            .unwrap_or(1.0)
            .max(0.0);
        let key = (bns.to_owned(), name.to_owned());
        behind_route.insert(key.clone());
        match backends.get(&key) {
            Some((b, svc)) => {
                rps = rps.or_else(|| rps_of(svc));
                daily = daily.or_else(|| annotation(svc, ann::SHAPE).map(|s| s.trim() == "daily"));
                objective = objective.or_else(|| number_annotation(svc, ann::HISTORY_OBJECTIVE));
                spent = spent.or_else(|| number_annotation(svc, ann::HISTORY_BUDGET_SPENT));
                refs.push(Backend {
                    weight,
                    ..b.clone()
                });
            }
            None => refs.push(Backend {
                service: name.to_owned(),
                weight,
                versions: Vec::new(),
            }),
        }
    }
    Entry {
        kind: "HTTPRoute",
        namespace: ns.to_owned(),
        name: str_at(route, "/metadata/name").to_owned(),
        rps: rps.unwrap_or(DEFAULT_RPS),
        daily: daily.unwrap_or(false),
        simulated: true,
        backends: refs,
        objective: objective.or_else(|| number_annotation(route, ann::HISTORY_OBJECTIVE)),
        budget_spent: spent.or_else(|| number_annotation(route, ann::HISTORY_BUDGET_SPENT)),
    }
}

/// The daily traffic shape: 1.6x at 15:00 UTC, 0.4x at 03:00, 1 on average.
pub fn daily_shape(t_ms: i64) -> f64 {
    let hours = (t_ms.rem_euclid(86_400_000)) as f64 / 3_600_000.0;
    1.0 + 0.6 * (std::f64::consts::TAU * (hours - 9.0) / 24.0).sin()
}

/// Gives `entry`'s versions that have no history yet 30 days of it, ending at `now`.
fn backfill(tel: &Telemetry, entry: &Entry, now: i64) {
    if entry.ready() == 0 || entry.rps <= 0.0 || !entry.simulated {
        return;
    }
    if !lock(&tel.book).backfilled.insert(entry.id()) {
        return;
    }
    let total_weight: f64 = entry
        .backends
        .iter()
        .filter(|b| b.versions.iter().any(|v| v.ready > 0))
        .map(|b| b.weight)
        .sum();
    if total_weight <= 0.0 {
        return;
    }
    let mut parts: Vec<(VersionKey, f64, Conditions, u16)> = Vec::new();
    for b in &entry.backends {
        let b_ready: u32 = b.versions.iter().map(|v| v.ready).sum();
        for v in b.versions.iter().filter(|v| v.ready > 0) {
            let key = (entry.namespace.clone(), v.app.clone(), v.version.clone());
            let share = b.weight / total_weight * f64::from(v.ready) / f64::from(b_ready);
            let c = v.behaviour.conditions(Duration::ZERO, 0.0, v.ready);
            parts.push((key, share, c, v.behaviour.error_code));
        }
    }
    if parts.is_empty() {
        return;
    }
    let objective = entry
        .objective
        .map(|o| if o > 1.0 { o / 100.0 } else { o })
        .filter(|o| (0.0..1.0).contains(o))
        .unwrap_or(tel.scenario.objective);
    let spent = entry
        .budget_spent
        .filter(|s| (0.0..=10.0).contains(s))
        .unwrap_or(tel.scenario.budget_spent);
    let history = History::plan(entry, now, objective, spent);
    let mut db = tel.db_mut();
    let mut counters = lock(&tel.counters);
    for (key, share, c, error_code) in parts {
        history.write(&mut db, &mut counters, &key, share, &c, error_code);
    }
}

/// Synthetic history for one entry point: requests and errors per minute.
struct History {
    /// Minute ends, ms.
    times: Vec<i64>,
    requests: Vec<f64>,
    errors: Vec<f64>,
    /// Samples older than this are written every fifth minute only.
    fine_from: i64,
}

/// `(days ago, minutes, share of the incident budget)`: the outages the history remembers.
const INCIDENTS: [(f64, usize, f64); 3] = [(21.3, 40, 0.25), (9.6, 25, 0.25), (2.2, 15, 0.5)];
/// Share of the spent budget that went to incidents rather than background errors.
const INCIDENT_SHARE: f64 = 0.6;

impl History {
    fn plan(entry: &Entry, now: i64, objective: f64, spent: f64) -> History {
        let minutes = (HISTORY.as_secs() / 60) as usize;
        let end = now - now.rem_euclid(60_000);
        let start = end - minutes as i64 * 60_000;
        let mut rng = Rng::new(
            entry
                .name
                .bytes()
                .chain(entry.namespace.bytes())
                .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                    (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
                }),
        );
        let mut times = Vec::with_capacity(minutes);
        let mut requests = Vec::with_capacity(minutes);
        for m in 1..=minutes {
            let t = start + m as i64 * 60_000;
            let shape = if entry.daily { daily_shape(t) } else { 1.0 };
            let noise = 1.0 + 0.05 * rng.normal().clamp(-3.0, 3.0);
            times.push(t);
            requests.push(entry.rps * 60.0 * shape * noise);
        }
        let total: f64 = requests.iter().sum();
        let budget = spent * (1.0 - objective) * total;
        let background = budget * (1.0 - INCIDENT_SHARE) / total;
        let mut errors: Vec<f64> = requests.iter().map(|r| r * background).collect();
        for (days_ago, len, share) in INCIDENTS {
            let first = minutes.saturating_sub((days_ago * 24.0 * 60.0) as usize);
            let span = first..(first + len).min(minutes);
            let weight: f64 = requests[span.clone()].iter().sum();
            if weight <= 0.0 {
                continue;
            }
            for i in span {
                errors[i] += budget * INCIDENT_SHARE * share * requests[i] / weight;
            }
        }
        for (e, r) in errors.iter_mut().zip(&requests) {
            *e = e.min(*r);
        }
        History {
            times,
            requests,
            errors,
            fine_from: end - 24 * 3_600_000,
        }
    }

    /// Writes one version's share of the history and leaves the live counters where it ends.
    fn write(
        &self,
        db: &mut Db,
        counters: &mut Counters,
        key: &VersionKey,
        share: f64,
        c: &Conditions,
        error_code: u16,
    ) {
        let series = SeriesLabels::of(key, error_code);
        let les = &series.les;
        let fractions: Vec<f64> = BUCKETS.iter().map(|b| c.cdf(*b)).chain([1.0]).collect();
        let mean = c.mean();
        // Whole requests, carried from minute to minute.
        let (mut ok, mut err, mut carry_ok, mut carry_err) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
        let mut buckets = vec![0.0f64; les.len()];
        let mut carry_b = vec![0.0f64; les.len()];
        let mut sum = 0.0;
        let start = self.times.first().map_or(0, |t| t - 60_000);
        // Points per series: ok, errors, sum, count, then the buckets.
        let mut points: Vec<Vec<(i64, f64)>> = vec![vec![(start, 0.0)]; 4 + les.len()];
        for (i, &t) in self.times.iter().enumerate() {
            let want_err = self.errors[i] * share + carry_err;
            let e = want_err.floor();
            carry_err = want_err - e;
            let want_ok = (self.requests[i] - self.errors[i]) * share + carry_ok;
            let o = want_ok.floor();
            carry_ok = want_ok - o;
            ok += o;
            err += e;
            let n = o + e;
            sum += n * mean;
            let mut below = 0.0;
            for (j, f) in fractions.iter().enumerate() {
                let want = n * f + carry_b[j];
                let whole = want.floor().max(below).min(n);
                carry_b[j] = want - whole;
                buckets[j] += whole;
                below = whole;
            }
            let fine = t >= self.fine_from;
            if fine || i % 5 == 4 || i + 1 == self.times.len() {
                for (p, v) in points
                    .iter_mut()
                    .zip([ok, err, sum, ok + err].iter().chain(&buckets))
                {
                    p.push((t, *v));
                }
            }
        }
        // Live requests may have been counted already (a version's first requests fail
        // before its pods are ready): history goes in before them and they continue it.
        let mut points = points.into_iter();
        for l in [&series.ok, &series.err, &series.sum, &series.count]
            .into_iter()
            .chain(&series.buckets)
        {
            db.prepend(l, points.next().unwrap_or_default());
        }
        *counters.requests.entry((key.clone(), 200)).or_default() += ok;
        *counters
            .requests
            .entry((key.clone(), error_code))
            .or_default() += err;
        let h = counters.durations.entry(key.clone()).or_default();
        for (c, b) in h.cumulative.iter_mut().zip(&buckets) {
            *c += b;
        }
        h.sum += sum;
    }
}

/// The labels of one version's request and latency series.
struct SeriesLabels {
    /// `http_requests_total` answered 200, and with the version's error code.
    ok: Labels,
    err: Labels,
    /// The histogram's bucket bounds, `+Inf` last, and each bucket's labels.
    les: Vec<String>,
    buckets: Vec<Labels>,
    sum: Labels,
    count: Labels,
}

impl SeriesLabels {
    fn of(key: &VersionKey, error_code: u16) -> SeriesLabels {
        let (ns, svc, ver) = (key.0.as_str(), key.1.as_str(), key.2.as_str());
        let ok_code = "200".to_owned();
        let err_code = error_code.to_string();
        let base = [("namespace", ns), ("service", svc), ("version", ver)];
        fn with<'a>(
            base: &[(&'a str, &'a str)],
            extra: (&'a str, &'a str),
        ) -> Vec<(&'a str, &'a str)> {
            let mut l = base.to_vec();
            l.push(extra);
            l
        }
        let les: Vec<String> = BUCKETS
            .iter()
            .map(|b| format_value(*b))
            .chain(["+Inf".to_owned()])
            .collect();
        let buckets = les
            .iter()
            .map(|le| {
                labels(
                    "http_request_duration_seconds_bucket",
                    &with(&base, ("le", le)),
                )
            })
            .collect();
        SeriesLabels {
            ok: labels("http_requests_total", &with(&base, ("code", &ok_code))),
            err: labels("http_requests_total", &with(&base, ("code", &err_code))),
            sum: labels("http_request_duration_seconds_sum", &base),
            count: labels("http_request_duration_seconds_count", &base),
            les,
            buckets,
        }
    }
}

/// Keeps an endpoint listening for every entry point and its URL on the object.
fn sync_endpoints(cluster: &Arc<dyn ClusterView>, topology: &Topology) {
    let tel = cluster.telemetry();
    let wanted: HashSet<EntryId> = topology.entries.iter().map(Entry::id).collect();
    let mut endpoints = lock(&tel.endpoints);
    endpoints.retain(|id, e| {
        let keep = wanted.contains(id);
        if !keep {
            e.task.abort();
        }
        keep
    });
    for id in wanted {
        if !endpoints.contains_key(&id) {
            match serve_endpoint(cluster.clone(), id.clone()) {
                Ok(e) => {
                    endpoints.insert(id.clone(), e);
                }
                Err(e) => {
                    tracing::warn!("sandbox endpoint for {}/{}: {e}", id.1, id.2);
                    continue;
                }
            }
        }
        let Some(url) = endpoints.get(&id).map(|e| e.url.clone()) else {
            continue;
        };
        let (group, plural) = match id.0 {
            "Service" => ("", "services"),
            _ => ("gateway.networking.k8s.io", "httproutes"),
        };
        let key = Key {
            group: group.to_owned(),
            plural: plural.to_owned(),
            namespace: id.1.clone(),
            name: id.2.clone(),
        };
        cluster.annotate(&key, ann::ENDPOINT, &url);
    }
}

fn serve_endpoint(cluster: Arc<dyn ClusterView>, id: EntryId) -> std::io::Result<Endpoint> {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    std_listener.set_nonblocking(true)?;
    let url = format!("http://{}", std_listener.local_addr()?);
    let listener = tokio::net::TcpListener::from_std(std_listener)?;
    let app = axum::Router::new()
        .fallback(answer)
        .with_state((cluster, Arc::new(id)));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Endpoint { url, task })
}

/// Answers one real request with the declared behaviour: a real delay and a status code.
async fn answer(
    axum::extract::State((cluster, id)): axum::extract::State<(Arc<dyn ClusterView>, Arc<EntryId>)>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let tel = cluster.telemetry();
    let topology = tel.topology();
    let Some(entry) = topology.find(&id) else {
        return (axum::http::StatusCode::NOT_FOUND, "no such entry point\n").into_response();
    };
    let outcome = {
        let mut rng = lock(&tel.rng);
        tel.route(entry, &mut rng)
    };
    tokio::time::sleep(Duration::from_secs_f64(outcome.latency.min(30.0))).await;
    tel.count(&outcome);
    let status = axum::http::StatusCode::from_u16(outcome.code)
        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::json!({
        "namespace": outcome.key.0, "service": outcome.key.1, "version": outcome.key.2,
        "code": outcome.code, "latencySeconds": outcome.latency,
    });
    (
        status,
        [
            ("content-type", "application/json"),
            ("x-sandbox-version", outcome.key.2.as_str()),
        ],
        body.to_string(),
    )
        .into_response()
}

/// The most simulated time one tick of the users' loop makes up for, in seconds.
const MAX_CATCH_UP: f64 = 0.25;

/// Runs simulated users, the topology refresh, backfills, scrapes and compaction, forever.
pub async fn run(cluster: Arc<dyn ClusterView>) {
    let tick = Duration::from_millis(100);
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut carry: HashMap<EntryId, f64> = HashMap::new();
    let mut last_topology = Instant::now();
    let mut last_rv = u64::MAX;
    let mut last_scrape = Instant::now();
    let mut last_compact = Instant::now();
    let mut last_tick = Instant::now();
    loop {
        interval.tick().await;
        let tel = cluster.telemetry();
        // Rebuilt when anything changed in the cluster, and every second for readiness that
        // changes with time alone.
        let rv = cluster.revision();
        if rv != last_rv || last_topology.elapsed() >= Duration::from_secs(1) {
            last_rv = rv;
            last_topology = Instant::now();
            let topology = Arc::new(build_topology(cluster.as_ref(), tel));
            let now = now_ms();
            for e in &topology.entries {
                backfill(tel, e, now);
            }
            sync_endpoints(&cluster, &topology);
            *tel.topology.write().unwrap_or_else(|p| p.into_inner()) = topology;
        }
        // A loop held up (a busy machine, a debugger) does not send the requests it
        // missed all at once: a burst would read as overload to the capacity model and
        // shed requests no user would have sent, failing a healthy canary's analysis.
        let dt = last_tick.elapsed().as_secs_f64().min(MAX_CATCH_UP);
        last_tick = Instant::now();
        let topology = tel.topology();
        let now = now_ms();
        let mut outcomes = Vec::new();
        {
            let mut rng = lock(&tel.rng);
            for e in topology
                .entries
                .iter()
                .filter(|e| e.simulated && e.rps > 0.0)
            {
                let shape = if e.daily { daily_shape(now) } else { 1.0 };
                let c = carry.entry(e.id()).or_insert(0.0);
                *c += e.rps * shape * dt;
                while *c >= 1.0 {
                    *c -= 1.0;
                    outcomes.push(tel.route(e, &mut rng));
                }
            }
        }
        for o in &outcomes {
            tel.count(o);
        }
        carry.retain(|id, _| topology.find(id).is_some());
        if last_scrape.elapsed() >= SCRAPE_INTERVAL {
            last_scrape = Instant::now();
            tel.scrape(cluster.as_ref(), now_ms());
        }
        if last_compact.elapsed() >= Duration::from_secs(60) {
            last_compact = Instant::now();
            tel.db_mut().compact(now_ms(), &tel.retention);
        }
    }
}

#[cfg(test)]
#[path = "traffic_tests.rs"]
mod tests;
