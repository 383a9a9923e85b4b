//! What the traffic side sees of a cluster: the objects it routes by and the one thing it
//! writes back (an endpoint's URL). The embedded sandbox answers from its own store; the
//! [`dataplane`](super::dataplane) answers from kube-rs reflectors over any API server.

use std::sync::Arc;

use serde_json::{Value, json};

use super::Cluster;
use super::store::Key;
use super::traffic::Telemetry;
use super::workload::annotation;

/// A cluster as simulated users, endpoints and the Prometheus API see it.
pub trait ClusterView: Send + Sync + 'static {
    /// The telemetry this cluster's traffic writes and its Prometheus API reads.
    fn telemetry(&self) -> &Telemetry;
    /// Every object of a kind (`""` for the core group), empty when the kind is not served.
    fn objects(&self, group: &str, plural: &str) -> Vec<Arc<Value>>;
    /// A number that changes whenever any object changed.
    fn revision(&self) -> u64;
    /// Sets annotation `key` to `value` on the object at `key`, when it differs.
    fn annotate(&self, object: &Key, key: &str, value: &str);
}

impl ClusterView for Cluster {
    fn telemetry(&self) -> &Telemetry {
        &self.telemetry
    }

    fn objects(&self, group: &str, plural: &str) -> Vec<Arc<Value>> {
        self.kind(group, plural)
            .map(|k| self.list(&k, None).0)
            .unwrap_or_default()
    }

    fn revision(&self) -> u64 {
        self.store().rv()
    }

    fn annotate(&self, object: &Key, key: &str, value: &str) {
        let Some(kind) = self.kind(&object.group, &object.plural) else {
            return;
        };
        let current = self
            .get(object)
            .and_then(|o| annotation(&o, key).map(str::to_owned));
        if current.as_deref() == Some(value) {
            return;
        }
        let _ = self.modify(&kind, object, false, |o| {
            if !o["metadata"]["annotations"].is_object() {
                o["metadata"]["annotations"] = json!({});
            }
            o["metadata"]["annotations"][key] = Value::String(value.to_owned());
            Ok(())
        });
    }
}
