//! The kubelet stand-in of the simulated nodes, and their scheduler: a pending pod is
//! bound to the node with the most room (CPU and memory requests and the pod count within
//! the node's allocatable), then advances as [`kubelet`](crate::sandbox::kubelet) decides,
//! written back as a status patch. A pod being deleted from one of its nodes is removed
//! at once, as a kubelet does once its containers have stopped.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PostParams};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::mirror::{Mirror, params};
use super::nodes::SimNode;
use crate::sandbox::Timing;
use crate::sandbox::kubelet;
use crate::sandbox::view::ClusterView;

/// What the kubelet stand-in remembers between ticks.
#[derive(Default)]
pub struct Kubelet {
    /// When each pod (by uid) was first seen.
    seen: HashMap<String, Instant>,
    /// Pods bound here whose binding the mirror has not shown yet, and to which node.
    bound: HashMap<String, String>,
    /// The resourceVersion each pod had when its last transition was written: the pod is
    /// left alone until the mirror shows a newer one.
    written: HashMap<String, String>,
    /// Pods whose removal was asked.
    removed: HashSet<String>,
}

fn str_at<'a>(o: &'a Value, p: &str) -> &'a str {
    o.pointer(p).and_then(Value::as_str).unwrap_or("")
}

impl Kubelet {
    /// One pass over every pod the mirror holds.
    pub async fn tick(&mut self, mirror: &Mirror, nodes: &[SimNode], timing: &Timing) {
        let pods = mirror.objects("", "pods");
        let live: HashSet<String> = pods
            .iter()
            .map(|p| str_at(p, "/metadata/uid").to_owned())
            .collect();
        self.seen.retain(|u, _| live.contains(u));
        self.bound.retain(|u, _| live.contains(u));
        self.written.retain(|u, _| live.contains(u));
        self.removed.retain(|u| live.contains(u));
        for p in &pods {
            let api: Api<Pod> =
                Api::namespaced(mirror.client().clone(), str_at(p, "/metadata/namespace"));
            match str_at(p, "/spec/nodeName") {
                "" => self.schedule(&api, p, &pods, nodes).await,
                node => {
                    if let Some(sim) = nodes.iter().find(|n| n.name == node) {
                        self.run(&api, p, sim, timing).await;
                    }
                }
            }
        }
    }

    /// Binds an unscheduled pod to the node with the most room, once.
    async fn schedule(
        &mut self,
        api: &Api<Pod>,
        p: &Value,
        pods: &[Arc<Value>],
        nodes: &[SimNode],
    ) {
        let uid = str_at(p, "/metadata/uid");
        if self.bound.contains_key(uid) || !schedulable(p) {
            return;
        }
        let Some(target) = self.place(p, pods, nodes) else {
            return;
        };
        let name = str_at(p, "/metadata/name");
        match bind(api, name, &target).await {
            Ok(()) => {
                self.bound.insert(uid.to_owned(), target);
            }
            Err(e) => tracing::warn!("data plane: cannot bind {name} to {target}: {e}"),
        }
    }

    /// What the kubelet of `sim` does to its pod `p` now: remove it when it is being
    /// deleted, else write the transition that is due.
    async fn run(&mut self, api: &Api<Pod>, p: &Value, sim: &SimNode, timing: &Timing) {
        let uid = str_at(p, "/metadata/uid").to_owned();
        let name = str_at(p, "/metadata/name");
        let age = self
            .seen
            .entry(uid.clone())
            .or_insert_with(Instant::now)
            .elapsed();
        self.bound.remove(&uid);
        if p.pointer("/metadata/deletionTimestamp").is_some() {
            if self.removed.insert(uid) {
                let now = DeleteParams {
                    grace_period_seconds: Some(0),
                    ..DeleteParams::default()
                };
                if let Err(e) = api.delete(name, &now).await {
                    tracing::warn!("data plane: cannot remove {name}: {e}");
                }
            }
            return;
        }
        let rv = str_at(p, "/metadata/resourceVersion");
        if self.written.get(&uid).is_some_and(|w| w == rv) {
            return;
        }
        let Some(t) = kubelet::advance(p, age, timing) else {
            return;
        };
        let mut status = t.status;
        if status.contains_key("hostIP") {
            status.insert("hostIP".into(), json!(sim.ip));
            status.insert("hostIPs".into(), json!([{ "ip": sim.ip }]));
        }
        if let Some(ip) = status.get("podIP").cloned() {
            status.insert("podIPs".into(), json!([{ "ip": ip }]));
        }
        let patch = Patch::Merge(json!({ "status": status }));
        match api.patch_status(name, &params(), &patch).await {
            Ok(_) => {
                self.written.insert(uid, rv.to_owned());
            }
            Err(e) => tracing::warn!("data plane: cannot update the status of {name}: {e}"),
        }
    }

    /// The node with the most room left for `p`, counting pods this kubelet bound that
    /// the mirror does not show on a node yet; None when none fits.
    fn place(&self, p: &Value, pods: &[Arc<Value>], nodes: &[SimNode]) -> Option<String> {
        let want = requests(p);
        let mut used: HashMap<&str, (u64, u64, u64)> = HashMap::new();
        for q in pods {
            if matches!(kubelet::phase(q), "Succeeded" | "Failed") {
                continue;
            }
            let uid = str_at(q, "/metadata/uid");
            let on = match str_at(q, "/spec/nodeName") {
                "" => match self.bound.get(uid) {
                    Some(n) => n.as_str(),
                    None => continue,
                },
                n => n,
            };
            let (cpu, mem) = requests(q);
            let u = used.entry(on).or_default();
            *u = (u.0 + cpu, u.1 + mem, u.2 + 1);
        }
        nodes
            .iter()
            .filter_map(|n| {
                let (cpu, mem, count) = used.get(n.name.as_str()).copied().unwrap_or_default();
                let fits =
                    cpu + want.0 <= n.cpu_milli && mem + want.1 <= n.memory && count < n.pods;
                fits.then_some((count, n))
            })
            .min_by_key(|(count, n)| (*count, n.name.clone()))
            .map(|(_, n)| n.name.clone())
    }
}

/// Whether the default scheduler (this one) is the pod's scheduler.
fn schedulable(p: &Value) -> bool {
    matches!(str_at(p, "/spec/schedulerName"), "" | "default-scheduler")
        && p.pointer("/metadata/deletionTimestamp").is_none()
}

/// The pod's CPU (millicores) and memory (bytes) requests, summed over its containers.
pub fn requests(p: &Value) -> (u64, u64) {
    let containers = p
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    containers.iter().fold((0, 0), |(cpu, mem), c| {
        let r = |k: &str| {
            c.pointer(&format!("/resources/requests/{k}"))
                .and_then(Value::as_str)
        };
        (
            cpu + r("cpu").and_then(cpu_millis).unwrap_or(0),
            mem + r("memory").and_then(bytes).unwrap_or(0),
        )
    })
}

/// A CPU quantity (`250m`, `1`, `0.5`) in millicores.
pub fn cpu_millis(q: &str) -> Option<u64> {
    match q.strip_suffix('m') {
        Some(m) => m.parse().ok(),
        None => q
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map(|v| (v * 1000.0).ceil() as u64),
    }
}

/// A memory quantity (`128Mi`, `1G`, `1000`) in bytes.
pub fn bytes(q: &str) -> Option<u64> {
    const UNITS: [(&str, u64); 12] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("Pi", 1 << 50),
        ("Ei", 1 << 60),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
        ("P", 1_000_000_000_000_000),
        ("E", 1_000_000_000_000_000_000),
    ];
    let (number, factor) = UNITS
        .iter()
        .find_map(|(suffix, f)| q.strip_suffix(suffix).map(|n| (n, *f)))
        .unwrap_or((q, 1));
    let v = number
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)?;
    let total = v * factor as f64;
    (total < u64::MAX as f64).then_some(total.ceil() as u64)
}

/// Binds the pod to `node` through the binding subresource; an API server without it
/// (the embedded one) takes `spec.nodeName` instead.
async fn bind(api: &Api<Pod>, name: &str, node: &str) -> Result<(), kube::Error> {
    let binding = json!({
        "apiVersion": "v1", "kind": "Binding",
        "metadata": { "name": name },
        "target": { "apiVersion": "v1", "kind": "Node", "name": node },
    });
    match api
        .create_subresource::<Value, Value>("binding", name, &PostParams::default(), &binding)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if matches!(s.code, 404 | 405) => api
            .patch(
                name,
                &params(),
                &Patch::Merge(json!({ "spec": { "nodeName": node } })),
            )
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_read_as_kubernetes_writes_them() {
        assert_eq!(cpu_millis("250m"), Some(250));
        assert_eq!(cpu_millis("1.5"), Some(1500));
        assert_eq!(cpu_millis("-1"), None);
        assert_eq!(bytes("128Mi"), Some(128 << 20));
        assert_eq!(bytes("1G"), Some(1_000_000_000));
        assert_eq!(bytes("lots"), None);
    }

    #[test]
    fn pods_go_where_they_fit() {
        let nodes = vec![SimNode::numbered("n", 1), SimNode::numbered("n", 2)];
        let pod = |name: &str, node: &str, cpu: &str| {
            Arc::new(json!({
                "metadata": { "name": name, "uid": name },
                "spec": { "nodeName": node, "containers": [{ "name": "app", "resources": { "requests": { "cpu": cpu } } }] },
            }))
        };
        let pods = vec![pod("a", "n-1", "3500m"), pod("b", "n-2", "1")];
        let k = Kubelet::default();
        assert_eq!(
            k.place(&pod("c", "", "1"), &pods, &nodes),
            Some("n-2".into())
        );
        assert_eq!(k.place(&pod("d", "", "3500m"), &pods, &nodes), None);
    }
}
