//! The data plane's view of its API server: one kube-rs reflector per kind it reads, so
//! it sees any API server the way a controller does (a list, then a watch).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::reflector::{self, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};

use crate::sandbox::store::Key;
use crate::sandbox::traffic::Telemetry;
use crate::sandbox::view::ClusterView;
use crate::sandbox::workload::annotation;

/// The field manager of everything the data plane writes.
pub const MANAGER: &str = "glidepath-dataplane";

/// Patch parameters naming the data plane as the field manager.
pub fn params() -> PatchParams {
    PatchParams {
        field_manager: Some(MANAGER.to_owned()),
        ..PatchParams::default()
    }
}

struct Mirrored {
    resource: ApiResource,
    store: Store<DynamicObject>,
    task: tokio::task::JoinHandle<()>,
}

/// Reflectors over one API server, by (group, plural), and the telemetry of its traffic.
pub struct Mirror {
    client: kube::Client,
    telemetry: Telemetry,
    kinds: Mutex<HashMap<(String, String), Mirrored>>,
    revision: Arc<AtomicU64>,
    /// The namespaces it shows (all when empty); cluster-scoped objects always show.
    namespaces: Vec<String>,
}

impl Mirror {
    /// A mirror with nothing watched yet.
    pub fn new(client: kube::Client, telemetry: Telemetry) -> Mirror {
        Mirror {
            client,
            telemetry,
            kinds: Mutex::new(HashMap::new()),
            revision: Arc::new(AtomicU64::new(0)),
            namespaces: Vec::new(),
        }
    }

    /// The same mirror showing only the objects of `namespaces` (and cluster-scoped ones),
    /// so that data planes for different namespaces share one API server without running
    /// each other's pods or traffic. Empty shows everything.
    pub fn scoped_to(mut self, namespaces: Vec<String>) -> Mirror {
        self.namespaces = namespaces;
        self
    }

    fn shows(&self, o: &DynamicObject) -> bool {
        match o.metadata.namespace.as_deref() {
            None | Some("") => true,
            Some(ns) => self.namespaces.is_empty() || self.namespaces.iter().any(|n| n == ns),
        }
    }

    /// The client the mirror watches through.
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    fn kinds(&self) -> MutexGuard<'_, HashMap<(String, String), Mirrored>> {
        self.kinds.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts mirroring `resource` (of plural `plural`), once.
    pub fn watch(&self, resource: ApiResource) {
        let key = (resource.group.clone(), resource.plural.clone());
        let mut kinds = self.kinds();
        if kinds.contains_key(&key) {
            return;
        }
        let writer: Writer<DynamicObject> = Writer::new(resource.clone());
        let store = writer.as_reader();
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &resource);
        let revision = self.revision.clone();
        let what = resource.plural.clone();
        let task = tokio::spawn(async move {
            let stream = reflector::reflector(writer, watcher(api, watcher::Config::default()))
                .default_backoff();
            futures_util::pin_mut!(stream);
            while let Some(event) = stream.next().await {
                match event {
                    Ok(_) => {
                        revision.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => tracing::warn!("data plane: watching {what}: {e}"),
                }
            }
        });
        kinds.insert(
            key,
            Mirrored {
                resource,
                store,
                task,
            },
        );
    }

    /// Whether `group`/`plural` is mirrored.
    pub fn watches(&self, group: &str, plural: &str) -> bool {
        self.kinds()
            .contains_key(&(group.to_owned(), plural.to_owned()))
    }

    /// The resource mirrored as `group`/`plural`.
    pub fn resource(&self, group: &str, plural: &str) -> Option<ApiResource> {
        self.kinds()
            .get(&(group.to_owned(), plural.to_owned()))
            .map(|m| m.resource.clone())
    }

    /// Waits until the first list of `group`/`plural` has arrived.
    pub async fn synced(&self, group: &str, plural: &str) {
        let store = self
            .kinds()
            .get(&(group.to_owned(), plural.to_owned()))
            .map(|m| m.store.clone());
        if let Some(store) = store {
            let _ = store.wait_until_ready().await;
        }
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        for m in self.kinds().values() {
            m.task.abort();
        }
    }
}

impl ClusterView for Mirror {
    fn telemetry(&self) -> &Telemetry {
        &self.telemetry
    }

    fn objects(&self, group: &str, plural: &str) -> Vec<Arc<Value>> {
        let Some(store) = self
            .kinds()
            .get(&(group.to_owned(), plural.to_owned()))
            .map(|m| m.store.clone())
        else {
            return Vec::new();
        };
        store
            .state()
            .iter()
            .filter(|o| self.shows(o))
            .filter_map(|o| serde_json::to_value(&**o).ok())
            .map(Arc::new)
            .collect()
    }

    fn revision(&self) -> u64 {
        self.revision.load(Ordering::Relaxed)
    }

    fn annotate(&self, object: &Key, key: &str, value: &str) {
        let current = self
            .objects(&object.group, &object.plural)
            .into_iter()
            .find(|o| {
                o.pointer("/metadata/namespace").and_then(Value::as_str)
                    == Some(object.namespace.as_str())
                    && o.pointer("/metadata/name").and_then(Value::as_str)
                        == Some(object.name.as_str())
            });
        let Some(current) = current else { return };
        if annotation(&current, key) == Some(value) {
            return;
        }
        let Some(resource) = self.resource(&object.group, &object.plural) else {
            return;
        };
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &object.namespace, &resource);
        let patch = json!({ "metadata": { "annotations": { key: value } } });
        let name = object.name.clone();
        tokio::spawn(async move {
            if let Err(e) = api.patch(&name, &params(), &Patch::Merge(patch)).await {
                tracing::warn!("data plane: cannot annotate {name}: {e}");
            }
        });
    }
}
