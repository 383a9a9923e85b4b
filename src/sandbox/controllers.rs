//! Simulated controllers with realistic timing: Deployments roll out through ReplicaSets
//! (maxSurge/maxUnavailable honoured), pods start and pass readiness (or crash-loop, as
//! annotated), Jobs run pods that succeed or fail and write logs, CRDs become Established
//! and their objects Ready. Also the API server's defaulting and validation per kind.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::annotations as ann;
use super::kinds::{self, Kind};
use super::kubelet::{self, annotation, condition, duration_annotation, flag, pod_ready};
use super::selector::from_label_selector_json;
use super::store::{ApiError, Key};
use super::{Cluster, now_rfc3339, random_suffix};

/// Defaulting and validation at create time, as the API server does them.
pub fn default_object(kind: &Kind, obj: &mut Value) -> Result<(), ApiError> {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let invalid = |m: &str| ApiError::invalid(&kind.kind, &name, m.to_owned());
    match (kind.group.as_str(), kind.kind.as_str()) {
        ("", "Namespace") => {
            obj["status"] = json!({ "phase": "Active" });
            obj["spec"] = json!({ "finalizers": ["kubernetes"] });
        }
        ("", "Pod") => {
            if obj
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
            {
                return Err(invalid("spec.containers: Required value"));
            }
            if obj.get("status").is_none_or(|s| s.get("phase").is_none()) {
                obj["status"] = json!({ "phase": "Pending", "conditions": [] });
            }
        }
        ("", "Service") => default_service(obj),
        ("", "PersistentVolumeClaim") => obj["status"] = json!({ "phase": "Pending" }),
        ("apps", "Deployment" | "ReplicaSet") => default_workload(kind, obj, invalid)?,
        ("batch", "Job") => default_job(obj, &name),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            kinds::from_crd(obj).map_err(|e| invalid(&e))?;
            obj["status"] = json!({ "conditions": [], "acceptedNames": { "kind": "", "plural": "" }, "storedVersions": [] });
        }
        _ => {}
    }
    Ok(())
}

/// A Service's type, cluster IP, port protocols and target ports.
fn default_service(obj: &mut Value) {
    if obj.pointer("/spec/type").is_none() {
        obj["spec"]["type"] = json!("ClusterIP");
    }
    if obj.pointer("/spec/clusterIP").is_none() {
        let n = super::next_random();
        obj["spec"]["clusterIP"] = json!(format!("10.96.{}.{}", (n >> 8) % 250 + 1, n % 250 + 1));
    }
    if let Some(ports) = obj.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
        for p in ports {
            if p.get("protocol").is_none() {
                p["protocol"] = json!("TCP");
            }
            if p.get("targetPort").is_none() {
                p["targetPort"] = p["port"].clone();
            }
        }
    }
    obj["status"] = json!({ "loadBalancer": {} });
}

/// A Deployment's or ReplicaSet's replicas (and a Deployment's strategy and limits); its
/// selector must match its pod template's labels.
fn default_workload(
    kind: &Kind,
    obj: &mut Value,
    invalid: impl Fn(&str) -> ApiError,
) -> Result<(), ApiError> {
    if obj.pointer("/spec/replicas").is_none() {
        obj["spec"]["replicas"] = json!(1);
    }
    let selector = obj
        .pointer("/spec/selector")
        .ok_or_else(|| invalid("spec.selector: Required value"))?;
    let selector = from_label_selector_json(selector)
        .map_err(|e| invalid(&format!("spec.selector: Invalid value: {e}")))?;
    let empty = serde_json::Map::new();
    let labels = obj
        .pointer("/spec/template/metadata/labels")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    if !selector.matches(labels) {
        return Err(invalid(
            "spec.template.metadata.labels: Invalid value: `selector` does not match template `labels`",
        ));
    }
    if kind.kind == "Deployment" {
        if obj.pointer("/spec/strategy/type").is_none() {
            obj["spec"]["strategy"] = json!({ "type": "RollingUpdate", "rollingUpdate": { "maxSurge": "25%", "maxUnavailable": "25%" } });
        }
        for (field, v) in [
            ("revisionHistoryLimit", 10),
            ("progressDeadlineSeconds", 600),
        ] {
            if obj["spec"].get(field).is_none() {
                obj["spec"][field] = json!(v);
            }
        }
    }
    Ok(())
}

/// A Job's selector and pod labels (by its uid and name), counts and restart policy.
fn default_job(obj: &mut Value, name: &str) {
    let uid = obj.pointer("/metadata/uid").cloned().unwrap_or(json!(""));
    if obj.pointer("/spec/selector").is_none() {
        obj["spec"]["selector"] =
            json!({ "matchLabels": { "batch.kubernetes.io/controller-uid": uid } });
    }
    let labels = &mut obj["spec"]["template"]["metadata"]["labels"];
    for (k, v) in [
        ("batch.kubernetes.io/controller-uid", uid.clone()),
        ("controller-uid", uid),
        ("batch.kubernetes.io/job-name", json!(name)),
        ("job-name", json!(name)),
    ] {
        labels[k] = v;
    }
    for (field, v) in [("backoffLimit", 6), ("completions", 1), ("parallelism", 1)] {
        if obj["spec"].get(field).is_none() {
            obj["spec"][field] = json!(v);
        }
    }
    if obj.pointer("/spec/template/spec/restartPolicy").is_none() {
        obj["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
    }
}

/// Runs every controller, forever, at the cluster's tick.
pub async fn run(cluster: Arc<Cluster>) {
    let mut state = State::default();
    let mut tick = tokio::time::interval(cluster.timing.tick);
    loop {
        tick.tick().await;
        state.reconcile(&cluster);
    }
}

#[derive(Default)]
struct State {
    /// When each object (by uid) was first seen, for time-based transitions.
    seen: HashMap<String, Instant>,
    next_node: usize,
    ticks: u64,
}

fn uid(o: &Value) -> String {
    o.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn name(o: &Value) -> String {
    o.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn namespace(o: &Value) -> String {
    o.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn owned_by(o: &Value, owner_uid: &str) -> bool {
    o.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| refs.iter().any(|r| r["uid"] == owner_uid))
}

fn owner_ref(owner: &Value, kind: &str, api_version: &str) -> Value {
    json!([{ "apiVersion": api_version, "kind": kind, "name": name(owner), "uid": uid(owner), "controller": true, "blockOwnerDeletion": true }])
}

fn key_of(kind: &Kind, o: &Value) -> Key {
    Key {
        group: kind.group.clone(),
        plural: kind.plural.clone(),
        namespace: namespace(o),
        name: name(o),
    }
}

/// Resolves an int-or-percent (`25%` or `1`) against a total; percentages round as asked.
fn int_or_percent(v: Option<&Value>, total: i64, default: &str, round_up: bool) -> i64 {
    let text = match v {
        Some(Value::Number(n)) => return n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => s.clone(),
        _ => default.to_owned(),
    };
    match text.strip_suffix('%').and_then(|p| p.parse::<f64>().ok()) {
        Some(p) => {
            let x = p * total as f64 / 100.0;
            (if round_up { x.ceil() } else { x.floor() }) as i64
        }
        None => text.parse().unwrap_or(0),
    }
}

fn template_hash(template: &Value) -> String {
    let text = template.to_string();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..10)
        .map(|_| {
            let c = ALPHABET[(h % ALPHABET.len() as u64) as usize] as char;
            h /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// One Deployment's rollout step: its ReplicaSet for the current template (made if
/// missing), scaled up within the surge, old ones scaled down as far as availability
/// allows, and the status from what the ReplicaSets report.
fn roll_out(cluster: &Cluster, dk: &Kind, rk: &Kind, d: &Value) {
    let ns = namespace(d);
    let (all_rs, _) = cluster.list(rk, Some(&ns));
    let owned: Vec<Arc<Value>> = all_rs
        .into_iter()
        .filter(|rs| owned_by(rs, &uid(d)))
        .collect();
    let desired = d
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let Some(new_rs) = current_replica_set(cluster, rk, d, &owned) else {
        return;
    };
    // The Deployment carries its current ReplicaSet's revision, as the controller writes it.
    if let Some(r) = annotation(&new_rs, REVISION)
        && annotation(d, REVISION) != Some(r)
    {
        let r = r.to_owned();
        let _ = cluster.modify(dk, &key_of(dk, d), false, |o| {
            o["metadata"]["annotations"][REVISION] = json!(r);
            Ok(())
        });
    }
    let olds: Vec<&Arc<Value>> = owned.iter().filter(|rs| uid(rs) != uid(&new_rs)).collect();
    // Readiness from the pods themselves: a ReplicaSet's status may lag a tick, and
    // a stale count would let a rollout take down pods that are serving.
    let pods_in_ns = cluster
        .kind("", "pods")
        .map(|pk| cluster.list(&pk, Some(&ns)).0)
        .unwrap_or_default();
    let ready_of = |rs: &Value| {
        pods_in_ns
            .iter()
            .filter(|p| owned_by(p, &uid(rs)) && pod_ready(p))
            .count() as i64
    };
    let total: i64 = owned.iter().map(|rs| spec_replicas(rs)).sum::<i64>()
        + if owned.iter().any(|rs| uid(rs) == uid(&new_rs)) {
            0
        } else {
            spec_replicas(&new_rs)
        };
    let limits = Limits::of(d, desired);
    let old_total: i64 = olds.iter().map(|rs| spec_replicas(rs)).sum();
    scale_up(cluster, rk, &new_rs, desired, &limits, total, old_total);
    // Scale old ReplicaSets down as far as availability allows.
    let ready_total: i64 = owned.iter().map(|rs| ready_of(rs)).sum();
    let min_available = desired - limits.max_unavailable;
    // Unready old pods can always go; ready ones only while enough stay available.
    let mut budget = (ready_total - min_available).max(0);
    for rs in &olds {
        let replicas = spec_replicas(rs);
        let ready = ready_of(rs).min(replicas);
        let ready_cut = budget.min(ready);
        budget -= ready_cut;
        let cut = replicas - ready + ready_cut;
        if cut > 0 {
            let _ = cluster.modify(rk, &key_of(rk, rs), false, |o| {
                o["spec"]["replicas"] = json!(replicas - cut);
                Ok(())
            });
        }
    }
    let status = deployment_status(cluster, rk, d, &new_rs, desired, min_available);
    set_status(cluster, dk, d, status);
}

fn spec_replicas(rs: &Value) -> i64 {
    rs.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// The annotation holding a Deployment's (and its ReplicaSets') revision.
const REVISION: &str = "deployment.kubernetes.io/revision";

/// The Deployment's ReplicaSet for its current pod template (by `pod-template-hash`),
/// created at the next revision when there is none; None when it cannot be made.
fn current_replica_set(
    cluster: &Cluster,
    rk: &Kind,
    d: &Value,
    owned: &[Arc<Value>],
) -> Option<Arc<Value>> {
    let ns = namespace(d);
    let template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let hash = template_hash(&template);
    let current = owned.iter().find(|rs| {
        rs.pointer("/metadata/labels/pod-template-hash")
            .and_then(Value::as_str)
            == Some(hash.as_str())
    });
    let revision_of = |rs: &Value| annotation(rs, REVISION).and_then(|r| r.parse::<i64>().ok());
    let revision = owned
        .iter()
        .filter_map(|rs| revision_of(rs))
        .max()
        .unwrap_or(0);
    if let Some(rs) = current {
        // As the Deployment controller does: a template back on an older ReplicaSet makes
        // that one the newest revision again (what `kubectl rollout undo` relies on).
        if revision_of(rs).unwrap_or(0) < revision {
            let bumped = cluster.modify(rk, &key_of(rk, rs), false, |o| {
                o["metadata"]["annotations"][REVISION] = json!((revision + 1).to_string());
                Ok(())
            });
            return Some(bumped.map(Arc::new).unwrap_or_else(|_| rs.clone()));
        }
        return Some(rs.clone());
    }
    let mut t = template.clone();
    t["metadata"]["labels"]["pod-template-hash"] = json!(hash);
    let mut selector = d.pointer("/spec/selector").cloned().unwrap_or(json!({}));
    selector["matchLabels"]["pod-template-hash"] = json!(hash);
    let mut labels = t["metadata"]["labels"].clone();
    labels["pod-template-hash"] = json!(hash);
    let mut rs = json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {
            "name": format!("{}-{hash}", name(d)), "namespace": ns, "labels": labels,
            "annotations": { REVISION: (revision + 1).to_string() },
            "ownerReferences": owner_ref(d, "Deployment", "apps/v1"),
        },
        "spec": { "replicas": 0, "selector": selector, "template": t },
    });
    match cluster.create(rk, Some(&ns), &mut rs, false, None) {
        Ok(rs) => Some(Arc::new(rs)),
        Err(e) => {
            tracing::warn!(
                "sandbox: cannot create a ReplicaSet for {}: {}",
                name(d),
                e.message
            );
            None
        }
    }
}

/// How far a rollout may go over and under the desired count.
struct Limits {
    recreate: bool,
    max_surge: i64,
    max_unavailable: i64,
}

impl Limits {
    /// From the strategy: Recreate takes everything down first; a rolling update honours
    /// maxSurge and maxUnavailable (25% each by default), never both zero.
    fn of(d: &Value, desired: i64) -> Limits {
        let recreate = d.pointer("/spec/strategy/type").and_then(Value::as_str) == Some("Recreate");
        let (max_surge, mut max_unavailable) = if recreate {
            (0, desired)
        } else {
            (
                int_or_percent(
                    d.pointer("/spec/strategy/rollingUpdate/maxSurge"),
                    desired,
                    "25%",
                    true,
                ),
                int_or_percent(
                    d.pointer("/spec/strategy/rollingUpdate/maxUnavailable"),
                    desired,
                    "25%",
                    false,
                ),
            )
        };
        if max_surge == 0 && max_unavailable == 0 {
            max_unavailable = 1;
        }
        Limits {
            recreate,
            max_surge,
            max_unavailable,
        }
    }
}

/// Scales the new ReplicaSet up within the surge (Recreate waits for the old to go).
fn scale_up(
    cluster: &Cluster,
    rk: &Kind,
    new_rs: &Value,
    desired: i64,
    limits: &Limits,
    total: i64,
    old_total: i64,
) {
    let new_replicas = spec_replicas(new_rs);
    let mut target_new = new_replicas;
    if new_replicas > desired {
        target_new = desired;
    } else if !(limits.recreate && old_total > 0) {
        let room = desired + limits.max_surge - total;
        target_new = (new_replicas + room.max(0)).min(desired);
    }
    if target_new != new_replicas {
        let _ = cluster.modify(rk, &key_of(rk, new_rs), false, |o| {
            o["spec"]["replicas"] = json!(target_new);
            Ok(())
        });
    }
}

/// A Deployment's status, from what its ReplicaSets report now.
fn deployment_status(
    cluster: &Cluster,
    rk: &Kind,
    d: &Value,
    new_rs: &Value,
    desired: i64,
    min_available: i64,
) -> Value {
    let status_of = |rs: &Value, f: &str| {
        rs.pointer(&format!("/status/{f}"))
            .and_then(Value::as_i64)
            .unwrap_or(0)
    };
    let fresh: Vec<Arc<Value>> = cluster
        .list(rk, Some(&namespace(d)))
        .0
        .into_iter()
        .filter(|rs| owned_by(rs, &uid(d)))
        .collect();
    let replicas: i64 = fresh.iter().map(|rs| status_of(rs, "replicas")).sum();
    let ready: i64 = fresh.iter().map(|rs| status_of(rs, "readyReplicas")).sum();
    let available: i64 = fresh
        .iter()
        .map(|rs| status_of(rs, "availableReplicas"))
        .sum();
    let updated: i64 = fresh
        .iter()
        .filter(|rs| uid(rs) == uid(new_rs))
        .map(|rs| status_of(rs, "replicas"))
        .sum();
    let complete = updated == desired && replicas == desired && available == desired;
    let generation = d
        .pointer("/metadata/generation")
        .cloned()
        .unwrap_or(json!(1));
    let rs_name = name(new_rs);
    json!({
        "observedGeneration": generation,
        "replicas": replicas, "updatedReplicas": updated, "readyReplicas": ready,
        "availableReplicas": available, "unavailableReplicas": (desired - available).max(0),
        "conditions": [
            condition("Available", available >= min_available, if available >= min_available { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" },
                if available >= min_available { "Deployment has minimum availability." } else { "Deployment does not have minimum availability." }),
            condition("Progressing", true, if complete { "NewReplicaSetAvailable" } else { "ReplicaSetUpdated" },
                &if complete { format!("ReplicaSet \"{rs_name}\" has successfully progressed.") } else { format!("ReplicaSet \"{rs_name}\" is progressing.") }),
        ],
    })
}

impl State {
    fn age(&mut self, o: &Value) -> Duration {
        self.seen
            .entry(uid(o))
            .or_insert_with(Instant::now)
            .elapsed()
    }

    fn reconcile(&mut self, cluster: &Cluster) {
        establish_crds(cluster);
        self.deployments(cluster);
        self.replicasets(cluster);
        self.jobs(cluster);
        if !cluster.has_external_data_plane() {
            self.pods(cluster);
            self.custom_resources(cluster);
        }
        // Forget objects that are gone, so the map stays bounded; now and then is enough.
        self.ticks += 1;
        if self.ticks % 50 == 0 {
            let live: std::collections::HashSet<String> =
                cluster.store().all().map(|(_, o)| uid(o)).collect();
            self.seen.retain(|u, _| live.contains(u));
        }
    }

    fn deployments(&mut self, cluster: &Cluster) {
        let (Some(dk), Some(rk)) = (
            cluster.kind("apps", "deployments"),
            cluster.kind("apps", "replicasets"),
        ) else {
            return;
        };
        let (deployments, _) = cluster.list(&dk, None);
        for d in deployments {
            roll_out(cluster, &dk, &rk, &d);
        }
    }

    fn replicasets(&mut self, cluster: &Cluster) {
        let (Some(rk), Some(pk)) = (
            cluster.kind("apps", "replicasets"),
            cluster.kind("", "pods"),
        ) else {
            return;
        };
        let (sets, _) = cluster.list(&rk, None);
        for rs in sets {
            let ns = namespace(&rs);
            let pods: Vec<Arc<Value>> = cluster
                .list(&pk, Some(&ns))
                .0
                .into_iter()
                .filter(|p| owned_by(p, &uid(&rs)))
                .collect();
            let want = rs
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let have = pods.len() as i64;
            if have < want {
                for _ in 0..(want - have) {
                    let template = rs.pointer("/spec/template").cloned().unwrap_or(json!({}));
                    let mut pod = json!({
                        "apiVersion": "v1", "kind": "Pod",
                        "metadata": {
                            "name": format!("{}-{}", name(&rs), random_suffix()), "namespace": ns,
                            "labels": template.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
                            "annotations": template.pointer("/metadata/annotations").cloned().unwrap_or(json!({})),
                            "ownerReferences": owner_ref(&rs, "ReplicaSet", "apps/v1"),
                        },
                        "spec": template.get("spec").cloned().unwrap_or(json!({})),
                    });
                    if let Err(e) = cluster.create(&pk, Some(&ns), &mut pod, false, None) {
                        tracing::warn!(
                            "sandbox: cannot create a pod for {}: {}",
                            name(&rs),
                            e.message
                        );
                    }
                }
            } else if have > want {
                // Unready and newest pods go first, as the ReplicaSet controller prefers.
                let mut victims = pods.clone();
                victims.sort_by_key(|p| {
                    (
                        pod_ready(p),
                        std::cmp::Reverse(
                            p.pointer("/metadata/resourceVersion")
                                .and_then(Value::as_str)
                                .and_then(|r| r.parse::<u64>().ok())
                                .unwrap_or(0),
                        ),
                    )
                });
                for p in victims.into_iter().take((have - want) as usize) {
                    let _ = cluster.delete(&key_of(&pk, &p), &pk, false, false);
                }
            }
            let pods: Vec<Arc<Value>> = cluster
                .list(&pk, Some(&ns))
                .0
                .into_iter()
                .filter(|p| owned_by(p, &uid(&rs)))
                .collect();
            let ready = pods.iter().filter(|p| pod_ready(p)).count();
            let status = json!({
                "replicas": pods.len(), "fullyLabeledReplicas": pods.len(), "readyReplicas": ready,
                "availableReplicas": ready, "observedGeneration": rs.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
            });
            set_status(cluster, &rk, &rs, status);
        }
    }

    fn jobs(&mut self, cluster: &Cluster) {
        let (Some(jk), Some(pk)) = (cluster.kind("batch", "jobs"), cluster.kind("", "pods")) else {
            return;
        };
        let (jobs, _) = cluster.list(&jk, None);
        for job in jobs {
            let done = job
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|c| {
                    c.iter().any(|c| {
                        (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True"
                    })
                });
            if !done {
                run_job(cluster, &jk, &pk, &job);
            }
        }
    }

    /// Runs the embedded kubelet: pods start on the next node and advance as annotated.
    fn pods(&mut self, cluster: &Cluster) {
        let Some(pk) = cluster.kind("", "pods") else {
            return;
        };
        let timing = cluster.timing;
        let (pods, _) = cluster.list(&pk, None);
        for p in pods {
            // Settled pods (ended, or ready and not crash-looping) need nothing: skip them
            // before any bookkeeping, so a cluster of 10,000 quiet pods costs little.
            if matches!(kubelet::phase(&p), "Succeeded" | "Failed")
                || (pod_ready(&p) && !flag(&p, ann::CRASH_LOOP))
            {
                continue;
            }
            let age = self.age(&p);
            let Some(t) = kubelet::advance(&p, age, &timing) else {
                continue;
            };
            let node = (kubelet::phase(&p) == "Pending").then(|| {
                self.next_node += 1;
                format!("sandbox-node-{}", (self.next_node - 1) % 3 + 1)
            });
            cluster.append_logs(&namespace(&p), &name(&p), t.logs);
            let _ = cluster.modify(&pk, &key_of(&pk, &p), false, |o| {
                if let Some(node) = node {
                    o["spec"]["nodeName"] = json!(node);
                    o["status"] = json!({});
                }
                for (k, v) in t.status {
                    o["status"][k] = v;
                }
                Ok(())
            });
        }
    }

    fn custom_resources(&mut self, cluster: &Cluster) {
        let builtins = kinds::builtins();
        let custom: Vec<Kind> = cluster
            .registry()
            .all()
            .iter()
            .filter(|k| {
                !builtins
                    .iter()
                    .any(|b| b.group == k.group && b.plural == k.plural)
            })
            .cloned()
            .collect();
        for kind in custom {
            let (objects, _) = cluster.list(&kind, None);
            for o in objects {
                let age = self.age(&o);
                let Some(conditions) = resource_conditions(
                    &o,
                    &kind.kind,
                    &cluster.telemetry.scenario,
                    &cluster.timing,
                    age,
                ) else {
                    continue;
                };
                let _ = cluster.modify(&kind, &key_of(&kind, &o), false, |x| {
                    x["status"]["conditions"] = conditions;
                    Ok(())
                });
            }
        }
    }
}

/// The conditions a custom resource of kind `kind`, first seen `age` ago, gets when it
/// becomes Ready; None while it is not due (or never: as annotated, as the scenario says,
/// or when it already has a Ready condition).
pub fn resource_conditions(
    o: &Value,
    kind: &str,
    scenario: &super::scenario::Scenario,
    timing: &super::Timing,
    age: Duration,
) -> Option<Value> {
    let mut conditions = o
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if conditions.iter().any(|c| c["type"] == "Ready")
        || flag(o, ann::NEVER_READY)
        || scenario.never_ready_kinds.contains(&kind)
    {
        return None;
    }
    let after = duration_annotation(o, ann::READY_AFTER).unwrap_or(timing.resource_ready);
    if age < after {
        return None;
    }
    let generation = o
        .pointer("/metadata/generation")
        .cloned()
        .unwrap_or(json!(1));
    let mut ready = condition(
        "Ready",
        true,
        "Available",
        "provisioned by the glidepath sandbox",
    );
    ready["observedGeneration"] = generation;
    conditions.push(ready);
    Some(json!(conditions))
}

/// One unfinished Job: its status from its pods, complete on a success, failed past its
/// backoff limit, and a new pod when none is active.
fn run_job(cluster: &Cluster, jk: &Kind, pk: &Kind, job: &Value) {
    let ns = namespace(job);
    let pods: Vec<Arc<Value>> = cluster
        .list(pk, Some(&ns))
        .0
        .into_iter()
        .filter(|p| owned_by(p, &uid(job)))
        .collect();
    let phase = |p: &Value| {
        p.pointer("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let succeeded = pods.iter().filter(|p| phase(p) == "Succeeded").count();
    let failed = pods.iter().filter(|p| phase(p) == "Failed").count();
    let active = pods.len() - succeeded - failed;
    let backoff = job
        .pointer("/spec/backoffLimit")
        .and_then(Value::as_u64)
        .unwrap_or(6) as usize;
    let mut status = json!({
        "active": active, "succeeded": succeeded, "failed": failed,
        "startTime": job.pointer("/status/startTime").cloned().unwrap_or(json!(now_rfc3339())),
    });
    if succeeded > 0 {
        status["completionTime"] = json!(now_rfc3339());
        status["conditions"] = json!([
            condition(
                "SuccessCriteriaMet",
                true,
                "CompletionsReached",
                "Reached expected number of succeeded pods"
            ),
            condition(
                "Complete",
                true,
                "CompletionsReached",
                "Reached expected number of succeeded pods"
            ),
        ]);
    } else if failed > backoff {
        status["conditions"] = json!([
            condition(
                "FailureTarget",
                true,
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit"
            ),
            condition(
                "Failed",
                true,
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit"
            ),
        ]);
    } else if active == 0 {
        start_job_pod(cluster, pk, job);
        status["active"] = json!(1);
    }
    set_status(cluster, jk, job, status);
}

/// A pod from the Job's template, owned by the Job.
fn start_job_pod(cluster: &Cluster, pk: &Kind, job: &Value) {
    let ns = namespace(job);
    let template = job.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": format!("{}-{}", name(job), random_suffix()), "namespace": ns,
            "labels": template.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
            "annotations": template.pointer("/metadata/annotations").cloned().unwrap_or(json!({})),
            "ownerReferences": owner_ref(job, "Job", "batch/v1"),
        },
        "spec": template.get("spec").cloned().unwrap_or(json!({})),
    });
    if let Err(e) = cluster.create(pk, Some(&ns), &mut pod, false, None) {
        tracing::warn!(
            "sandbox: cannot create a pod for job {}: {}",
            name(job),
            e.message
        );
    }
}

fn set_status(cluster: &Cluster, kind: &Kind, o: &Value, mut status: Value) {
    // Keep transition times stable when nothing changed, so updates are true no-ops.
    if let (Some(old), Some(new)) = (
        o.pointer("/status/conditions").and_then(Value::as_array),
        status.get_mut("conditions").and_then(Value::as_array_mut),
    ) {
        for c in new.iter_mut() {
            if let Some(prev) = old.iter().find(|p| {
                p["type"] == c["type"] && p["status"] == c["status"] && p["reason"] == c["reason"]
            }) {
                c["lastTransitionTime"] = prev["lastTransitionTime"].clone();
                c["lastUpdateTime"] = prev["lastUpdateTime"].clone();
            }
        }
    }
    if let Some(start) = o.pointer("/status/startTime") {
        status["startTime"] = start.clone();
    }
    if o.get("status") == Some(&status) {
        return;
    }
    let _ = cluster.modify(kind, &key_of(kind, o), false, |x| {
        x["status"] = status;
        Ok(())
    });
}

/// Whether a CRD's `Established` condition is True.
pub fn is_established(crd: &Value) -> bool {
    crd.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Established" && c["status"] == "True")
        })
}

/// Establishes new CRDs and serves their kinds (also run synchronously by presets).
pub fn establish_crds(cluster: &Cluster) {
    let Some(kind) = cluster.kind("apiextensions.k8s.io", "customresourcedefinitions") else {
        return;
    };
    let (crds, _) = cluster.list(&kind, None);
    for crd in crds {
        let established = is_established(&crd);
        let Ok(kinds) = kinds::from_crd(&crd) else {
            continue;
        };
        if established {
            // A sandbox restored from a state file re-registers what it served.
            if cluster
                .registry()
                .by_plural(&kinds[0].group, &kinds[0].version, &kinds[0].plural)
                .is_none()
            {
                cluster.register(kinds);
            }
            continue;
        }
        cluster.register(kinds);
        let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
        let versions: Vec<Value> = crd
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .map(|v| {
                v.iter()
                    .filter(|v| v["storage"] == true)
                    .map(|v| v["name"].clone())
                    .collect()
            })
            .unwrap_or_default();
        let _ = cluster.modify(&kind, &key_of(&kind, &crd), false, |o| {
            o["status"] = json!({
                "conditions": [
                    condition("NamesAccepted", true, "NoConflicts", "no conflicts found"),
                    condition("Established", true, "InitialNamesAccepted", "the initial names have been accepted"),
                ],
                "acceptedNames": names,
                "storedVersions": versions,
            });
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surge_and_unavailability_resolve_like_kubernetes() {
        assert_eq!(int_or_percent(Some(&json!("25%")), 10, "25%", true), 3);
        assert_eq!(int_or_percent(Some(&json!("25%")), 10, "25%", false), 2);
        assert_eq!(int_or_percent(Some(&json!(2)), 10, "25%", true), 2);
        assert_eq!(int_or_percent(None, 4, "25%", true), 1);
    }

    #[test]
    fn template_hash_is_stable_and_sensitive() {
        let a = template_hash(&json!({"spec": {"containers": [{"image": "a"}]}}));
        assert_eq!(
            a,
            template_hash(&json!({"spec": {"containers": [{"image": "a"}]}}))
        );
        assert_ne!(
            a,
            template_hash(&json!({"spec": {"containers": [{"image": "b"}]}}))
        );
        assert_eq!(a.len(), 10);
    }
}
