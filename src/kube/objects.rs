//! Objects as JSON, on any cluster: manifests read from files and folders (templated with
//! the pipeline's variables), kinds resolved through discovery, server-side apply, reads,
//! patches and deletes, and what "ready" means for each kind.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ::kube::Client;
use ::kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use ::kube::discovery::{Scope, pinned_kind};
use serde_json::Value;

use super::error::transient;
use super::{Error, FIELD_MANAGER};
use crate::pipeline::model::{Target, WaitFor};

/// A cluster a stage delivers to: a client, its namespace and the kinds resolved so far.
pub struct Cluster {
    /// The kube-rs client.
    pub client: Client,
    /// The namespace objects without one go to.
    pub namespace: String,
    kinds: Mutex<HashMap<(String, String), (ApiResource, bool)>>,
}

/// Runs `call` until it succeeds, fails for good, or has failed transiently four times
/// (backing off 200 ms, 400 ms, 800 ms, 1.6 s).
pub(crate) async fn retry<T, F, Fut>(mut call: F) -> Result<T, ::kube::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ::kube::Error>>,
{
    let mut delay = std::time::Duration::from_millis(200);
    let mut attempt = 0;
    loop {
        match call().await {
            Err(e) if transient(&e) && attempt < 4 => {
                tracing::debug!("transient API error, retrying in {delay:?}: {e}");
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// A live object as JSON (an object kube-rs decoded always encodes again).
fn to_json(what: &str, d: DynamicObject) -> Result<Value, Error> {
    serde_json::to_value(d).map_err(|e| Error::Unexpected {
        what: what.to_owned(),
        detail: e.to_string(),
    })
}

/// `Kind namespace/name` for messages.
pub fn describe(o: &Value) -> String {
    let kind = o["kind"].as_str().unwrap_or("object");
    let name = o
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("?");
    match o.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

impl Cluster {
    /// Connects to a stage's target.
    pub async fn connect(target: Option<&Target>) -> Result<Cluster, Error> {
        let client = super::connect(target).await?;
        // The target's namespace, else the kubeconfig context's.
        let namespace = match target {
            Some(Target::Cluster(c)) if c.namespace.is_some() => super::namespace(target),
            _ => client.default_namespace().to_owned(),
        };
        Ok(Cluster {
            client,
            namespace,
            kinds: Mutex::new(HashMap::new()),
        })
    }

    /// The resource of `apiVersion`/`kind` and whether it is namespaced, by discovery.
    pub async fn resource(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<(ApiResource, bool), Error> {
        let key = (api_version.to_owned(), kind.to_owned());
        // The cache holds whole entries only, so one a panicking thread left is still good.
        let cached = |kinds: &Mutex<HashMap<_, _>>| {
            kinds
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&key)
                .cloned()
        };
        if let Some(found) = cached(&self.kinds) {
            return Ok(found);
        }
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let not_served = || Error::NotServed {
            kind: kind.to_owned(),
            api_version: api_version.to_owned(),
        };
        let (ar, caps) = pinned_kind(&self.client, &gvk).await.map_err(|e| match e {
            ::kube::Error::Discovery(_) => not_served(),
            other => match Error::from_kube(format!("discovery of {kind} in {api_version}"), other)
            {
                Error::NotFound { .. } => not_served(),
                e => e,
            },
        })?;
        let found = (ar, caps.scope == Scope::Namespaced);
        self.kinds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, found.clone());
        Ok(found)
    }

    /// The API for `o`'s kind, in `o`'s namespace (or the target's), and `o`'s name.
    async fn api_for(&self, o: &Value) -> Result<(Api<DynamicObject>, String), Error> {
        let api_version = o["apiVersion"]
            .as_str()
            .ok_or_else(|| Error::BadInput(format!("{}: no apiVersion", describe(o))))?;
        let kind = o["kind"]
            .as_str()
            .ok_or_else(|| Error::BadInput("an object without kind".into()))?;
        let name = o
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::BadInput(format!("a {kind} without metadata.name")))?;
        let (ar, namespaced) = self.resource(api_version, kind).await?;
        let api = if namespaced {
            let ns = o
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or(&self.namespace);
            Api::namespaced_with(self.client.clone(), ns, &ar)
        } else {
            Api::all_with(self.client.clone(), &ar)
        };
        Ok((api, name.to_owned()))
    }

    /// Fills in the target's namespace on a namespaced object that names none.
    pub async fn place(&self, o: &mut Value) -> Result<(), Error> {
        let api_version = o["apiVersion"].as_str().unwrap_or_default().to_owned();
        let kind = o["kind"].as_str().unwrap_or_default().to_owned();
        let (_, namespaced) = self.resource(&api_version, &kind).await?;
        if namespaced && o.pointer("/metadata/namespace").is_none() {
            o["metadata"]["namespace"] = Value::String(self.namespace.clone());
        }
        Ok(())
    }

    /// Server-side applies `o` as field manager `glidepath`, unforced: a conflict with
    /// another manager fails, naming it and the fields ([`super::ownership`]); with
    /// `dry_run` the server validates and answers without storing.
    pub async fn apply(&self, o: &Value, dry_run: bool) -> Result<Value, Error> {
        let (api, name) = self.api_for(o).await?;
        let mut params = PatchParams::apply(FIELD_MANAGER);
        params.dry_run = dry_run;
        let body = Patch::Apply(o);
        let what = describe(o);
        let (api, name, body) = (&api, &name, &body);
        super::ownership::apply_unforced(params, |p| async move { api.patch(name, &p, body).await })
            .await
            .map_err(|e| Error::from_kube(&what, e))
            .and_then(|d| to_json(&what, d))
    }

    /// What the object `o` names would be if glidepath took every field `o` sets, fields
    /// other managers hold included: a forced server-side dry run, which stores nothing.
    async fn dry_run_taking_all(&self, o: &Value) -> Result<Value, Error> {
        let (api, name) = self.api_for(o).await?;
        let mut params = PatchParams::apply(FIELD_MANAGER).force();
        params.dry_run = true;
        let body = Patch::Apply(o);
        let what = describe(o);
        retry(|| api.patch(&name, &params, &body))
            .await
            .map_err(|e| Error::from_kube(&what, e))
            .and_then(|d| to_json(&what, d))
    }

    /// An object as kube-rs sends it; a manifest that is no Kubernetes object is bad input.
    fn dynamic(o: &Value) -> Result<DynamicObject, Error> {
        serde_json::from_value(o.clone()).map_err(|e| Error::BadInput(e.to_string()))
    }

    /// Creates `o`.
    pub async fn create(&self, o: &Value) -> Result<Value, Error> {
        let (api, _) = self.api_for(o).await?;
        let obj = Self::dynamic(o)?;
        let what = describe(o);
        api.create(&super::ownership::post_params(), &obj)
            .await
            .map_err(|e| Error::from_kube(&what, e))
            .and_then(|d| to_json(&what, d))
    }

    /// The live object `o` names, if it exists.
    pub async fn get(&self, o: &Value) -> Result<Option<Value>, Error> {
        let (api, name) = self.api_for(o).await?;
        let what = describe(o);
        match retry(|| api.get_opt(&name)).await {
            Ok(found) => found.map(|d| to_json(&what, d)).transpose(),
            Err(e) => Err(Error::from_kube(&what, e)),
        }
    }

    /// A JSON merge patch of the object `o` names.
    pub async fn merge(&self, o: &Value, patch: &Value) -> Result<Value, Error> {
        let (api, name) = self.api_for(o).await?;
        let (params, body) = (super::ownership::update_params(), Patch::Merge(patch));
        let what = describe(o);
        retry(|| api.patch(&name, &params, &body))
            .await
            .map_err(|e| Error::from_kube(&what, e))
            .and_then(|d| to_json(&what, d))
    }

    /// Replaces the object `o` names with `o` (a PUT: fields `o` lacks are gone), failing
    /// with a conflict when it changed since `o`'s resourceVersion was read.
    pub async fn replace(&self, o: &Value) -> Result<Value, Error> {
        let (api, name) = self.api_for(o).await?;
        let obj = Self::dynamic(o)?;
        let what = describe(o);
        api.replace(&name, &super::ownership::post_params(), &obj)
            .await
            .map_err(|e| Error::from_kube(&what, e))
            .and_then(|d| to_json(&what, d))
    }

    /// Deletes the object `o` names (absent is fine).
    pub async fn delete(&self, o: &Value) -> Result<(), Error> {
        let (api, name) = self.api_for(o).await?;
        let params = DeleteParams::background();
        match retry(|| api.delete(&name, &params)).await {
            Ok(_) => Ok(()),
            Err(e) => match Error::from_kube(describe(o), e) {
                Error::NotFound { .. } => Ok(()),
                e => Err(e),
            },
        }
    }

    /// Objects of a kind in the target's namespace matching a label selector.
    pub async fn list(
        &self,
        api_version: &str,
        kind: &str,
        selector: &str,
    ) -> Result<Vec<Value>, Error> {
        let (ar, namespaced) = self.resource(api_version, kind).await?;
        let api: Api<DynamicObject> = if namespaced {
            Api::namespaced_with(self.client.clone(), &self.namespace, &ar)
        } else {
            Api::all_with(self.client.clone(), &ar)
        };
        let params = ListParams::default().labels(selector);
        let what = format!("list {kind}");
        let list = retry(|| api.list(&params))
            .await
            .map_err(|e| Error::from_kube(&what, e))?;
        list.items.into_iter().map(|d| to_json(&what, d)).collect()
    }
}

/// How a manifest compares with the cluster.
#[derive(Debug, Clone, PartialEq)]
pub enum Comparison {
    /// Not in the cluster: applying creates it (the YAML it would have).
    New(String),
    /// Applying changes nothing.
    Same,
    /// Applying changes it: (live YAML, YAML after applying).
    Differs(String, String),
}

/// An object as people compare it: no status, no server bookkeeping.
pub fn comparable(o: &Value) -> Value {
    let mut o = o.clone();
    if let Some(obj) = o.as_object_mut() {
        obj.remove("status");
    }
    if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "managedFields",
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
            "selfLink",
        ] {
            meta.remove(k);
        }
        if let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            a.remove("kubectl.kubernetes.io/last-applied-configuration");
            a.remove("deployment.kubernetes.io/revision");
            a.retain(|k, _| !k.starts_with("sandbox.glidepath.dev/endpoint"));
            if a.is_empty() {
                meta.remove("annotations");
            }
        }
    }
    o
}

impl Cluster {
    /// What applying `o` would change: a server-side dry run against the live object,
    /// showing the manifest's values even where another field manager changed them (the
    /// apply itself then stops on that conflict).
    pub async fn compare(&self, o: &Value) -> Result<Comparison, Error> {
        let after = comparable(&self.dry_run_taking_all(o).await?);
        let desired = crate::yaml::to_yaml_string(&after);
        match self.get(o).await? {
            None => Ok(Comparison::New(desired)),
            Some(live) => {
                let live = crate::yaml::to_yaml_string(&comparable(&live));
                Ok(if live == desired {
                    Comparison::Same
                } else {
                    Comparison::Differs(live, desired)
                })
            }
        }
    }
}

/// A unified diff of two YAML texts, headed with what they are.
pub fn unified_diff(before: &str, after: &str, from: &str, to: &str) -> String {
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(3)
        .header(from, to)
        .to_string()
}

/// A label map (`{app: checkout}`) as a selector string (`app=checkout`), as list calls
/// and kubectl's SELECTOR column write it. Empty when there is no map.
pub fn label_selector(labels: Option<&Value>) -> String {
    labels
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// An object to look up by identity.
pub fn reference(api_version: &str, kind: &str, namespace: &str, name: &str) -> Value {
    serde_json::json!({ "apiVersion": api_version, "kind": kind, "metadata": { "name": name, "namespace": namespace } })
}

/// Reads manifests from files and folders (`.yaml`, `.yml`, `.json`, sorted by name),
/// `${var}` filled from `vars`; `List` objects are flattened and empty documents skipped.
pub fn load_manifests(
    paths: &[String],
    base_dir: &Path,
    vars: &BTreeMap<String, String>,
) -> Result<Vec<Value>, Error> {
    let mut files: Vec<PathBuf> = Vec::new();
    for p in paths {
        let full = base_dir.join(p);
        if full.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(&full)
                .map_err(|e| Error::BadInput(format!("{}: {e}", full.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    matches!(
                        p.extension().and_then(|e| e.to_str()),
                        Some("yaml" | "yml" | "json")
                    )
                })
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(full);
        }
    }
    let mut out = Vec::new();
    for f in files {
        let text = crate::input::read_text(&f)
            .map_err(|e| Error::BadInput(format!("{}: {e}", f.display())))?;
        out.extend(parse_manifests(
            &crate::metrics::render(&text, vars),
            &f.display().to_string(),
        )?);
    }
    Ok(out)
}

/// Parses YAML (or JSON) text holding one or more manifests.
pub fn parse_manifests(text: &str, origin: &str) -> Result<Vec<Value>, Error> {
    let docs = crate::yaml::parse_documents(text)
        .map_err(|e| Error::BadInput(e.in_file(origin).to_string()))?;
    let mut out = Vec::new();
    for doc in docs {
        let v = doc.to_json();
        if v.is_null() {
            continue;
        }
        if !v.is_object() || v.get("kind").is_none() || v.get("apiVersion").is_none() {
            return Err(Error::BadInput(format!(
                "{origin}:{}: a manifest needs apiVersion and kind",
                doc.pos.line
            )));
        }
        if v["kind"].as_str().is_some_and(|k| k.ends_with("List"))
            && let Some(items) = v.get("items").and_then(Value::as_array)
        {
            out.extend(items.iter().cloned());
            continue;
        }
        out.push(v);
    }
    Ok(out)
}

/// Sets `image` on a workload's containers: those of the same repository, else (when
/// `fallback`, for the only workload of a set) its first container.
pub fn set_image(o: &mut Value, image: &str, fallback: bool) {
    let repo = |i: &str| {
        let no_digest = i.split('@').next().unwrap_or(i);
        match no_digest.rsplit_once(':') {
            Some((r, tag)) if !tag.contains('/') => r.to_owned(),
            _ => no_digest.to_owned(),
        }
    };
    let want = repo(image);
    let Some(containers) = o
        .pointer_mut("/spec/template/spec/containers")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    let mut matched = false;
    for c in containers.iter_mut() {
        if c["image"].as_str().is_some_and(|i| repo(i) == want) {
            c["image"] = Value::String(image.to_owned());
            matched = true;
        }
    }
    if !matched
        && fallback
        && let Some(first) = containers.first_mut()
    {
        first["image"] = Value::String(image.to_owned());
    }
}

/// Where an object stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Readiness {
    /// Ready.
    Ready,
    /// Not yet, and why.
    Pending(String),
    /// Will not get ready by waiting (a failed Job), and why.
    Failed(String),
}

fn condition<'a>(o: &'a Value, kind: &str) -> Option<&'a Value> {
    o.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| c["type"] == kind))
}

fn int(o: &Value, p: &str) -> i64 {
    o.pointer(p).and_then(Value::as_i64).unwrap_or(0)
}

/// Whether `kind` is ready as soon as it is applied (it reports no readiness).
pub fn ready_on_apply(kind: &str) -> bool {
    readiness(&serde_json::json!({ "kind": kind }), None) == Readiness::Ready
}

/// Kinds that are ready once the API server has stored them (they report no readiness).
const READY_ON_APPLY: &[&str] = &[
    "Namespace",
    "ConfigMap",
    "Secret",
    "Service",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ClusterRole",
    "ClusterRoleBinding",
    "Ingress",
    "HTTPRoute",
    "NetworkPolicy",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
    "PersistentVolumeClaim",
    "StorageClass",
    "IngressClass",
    "PriorityClass",
    "PrometheusRule",
    "ServiceMonitor",
    "PodMonitor",
    "GatewayClass",
    "Gateway",
    "ResourceQuota",
    "LimitRange",
    "CronJob",
    "Endpoints",
    "EndpointSlice",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "ReferenceGrant",
    "GRPCRoute",
    "TCPRoute",
    "TLSRoute",
    "UDPRoute",
    "Lease",
];

/// Readiness of a live object: `wait` if given, else what its kind means by ready.
pub fn readiness(o: &Value, wait: Option<&WaitFor>) -> Readiness {
    if let Some(r) = wait.and_then(|w| asked_readiness(o, w)) {
        return r;
    }
    let kind = o["kind"].as_str().unwrap_or_default();
    match kind {
        "DaemonSet" => daemon_set_readiness(o),
        "StatefulSet" => stateful_set_readiness(o),
        "Deployment" | "ReplicaSet" => replicas_readiness(o, kind == "Deployment"),
        "Job" => job_readiness(o),
        "CustomResourceDefinition" => match condition(o, "Established") {
            Some(c) if c["status"] == "True" => Readiness::Ready,
            _ => Readiness::Pending("not Established yet".into()),
        },
        k if READY_ON_APPLY.contains(&k) => Readiness::Ready,
        _ => custom_readiness(o),
    }
}

/// What the step's `waitFor` asks: a condition, or a JSONPath and the value it must have.
fn asked_readiness(o: &Value, w: &WaitFor) -> Option<Readiness> {
    if let Some(c) = &w.condition {
        return Some(match condition(o, c) {
            Some(x) if x["status"] == "True" => Readiness::Ready,
            Some(x) => Readiness::Pending(format!(
                "{c} is {}{}",
                x["status"].as_str().unwrap_or("Unknown"),
                condition_message(x)
            )),
            None => Readiness::Pending(format!("no {c} condition yet")),
        });
    }
    let expr = w.jsonpath.as_ref()?;
    let (path, want) = expr.split_once('=').unwrap_or((expr.as_str(), ""));
    let got = jsonpath(o, path);
    Some(
        if got.as_deref() == Some(want.trim()) || (want.is_empty() && got.is_some()) {
            Readiness::Ready
        } else {
            Readiness::Pending(format!(
                "{} is {}",
                path.trim(),
                got.unwrap_or_else(|| "absent".into())
            ))
        },
    )
}

/// `: message` of a condition, or nothing when it has none.
fn condition_message(c: &Value) -> String {
    c["message"]
        .as_str()
        .filter(|m| !m.is_empty())
        .map(|m| format!(": {m}"))
        .unwrap_or_default()
}

/// The generation the controller has seen, when it has seen the latest one.
fn seen_latest(o: &Value) -> bool {
    let generation = int(o, "/metadata/generation");
    o.pointer("/status/observedGeneration")
        .and_then(Value::as_i64)
        .is_some_and(|g| g >= generation)
}

/// `spec.replicas`, 1 when unset (the API server's default).
fn desired_replicas(o: &Value) -> i64 {
    o.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

const NOT_SEEN: &str = "the controller has not seen the change yet";

fn daemon_set_readiness(o: &Value) -> Readiness {
    if !seen_latest(o) {
        return Readiness::Pending(NOT_SEEN.into());
    }
    let want = int(o, "/status/desiredNumberScheduled");
    let updated = int(o, "/status/updatedNumberScheduled");
    let available = int(o, "/status/numberAvailable");
    if updated < want {
        Readiness::Pending(format!("{updated} of {want} nodes updated"))
    } else if available < want {
        Readiness::Pending(format!("{available} of {want} nodes available"))
    } else {
        Readiness::Ready
    }
}

fn stateful_set_readiness(o: &Value) -> Readiness {
    let want = desired_replicas(o);
    if !seen_latest(o) {
        return Readiness::Pending(NOT_SEEN.into());
    }
    let updated = int(o, "/status/updatedReplicas");
    let ready = int(o, "/status/readyReplicas");
    let revisions_match =
        o.pointer("/status/currentRevision") == o.pointer("/status/updateRevision");
    if updated < want || !revisions_match {
        Readiness::Pending(format!("{updated} of {want} replicas updated"))
    } else if ready < want {
        Readiness::Pending(format!("{ready} of {want} replicas ready"))
    } else {
        Readiness::Ready
    }
}

/// A Deployment (updated and available replicas) or a ReplicaSet (ready replicas).
fn replicas_readiness(o: &Value, deployment: bool) -> Readiness {
    let want = desired_replicas(o);
    if !seen_latest(o) {
        return Readiness::Pending(NOT_SEEN.into());
    }
    let (updated, available) = if deployment {
        (
            int(o, "/status/updatedReplicas"),
            int(o, "/status/availableReplicas"),
        )
    } else {
        let ready = int(o, "/status/readyReplicas");
        (ready, ready)
    };
    let total = int(o, "/status/replicas");
    if updated < want {
        Readiness::Pending(format!("{updated} of {want} replicas updated"))
    } else if total > want {
        Readiness::Pending(format!("{} old replicas pending termination", total - want))
    } else if available < want {
        Readiness::Pending(format!("{available} of {want} updated replicas available"))
    } else {
        Readiness::Ready
    }
}

fn job_readiness(o: &Value) -> Readiness {
    if condition(o, "Complete").is_some_and(|c| c["status"] == "True") {
        Readiness::Ready
    } else if let Some(c) = condition(o, "Failed").filter(|c| c["status"] == "True") {
        Readiness::Failed(format!(
            "the Job failed: {}",
            c["message"].as_str().unwrap_or("")
        ))
    } else {
        Readiness::Pending("the Job is running".into())
    }
}

/// A custom resource: its Ready (or Available) condition, for this generation.
fn custom_readiness(o: &Value) -> Readiness {
    let generation = int(o, "/metadata/generation");
    let observed = o
        .pointer("/status/observedGeneration")
        .and_then(Value::as_i64);
    match condition(o, "Ready").or_else(|| condition(o, "Available")) {
        Some(c) if c["status"] == "True" => {
            let seen = c
                .get("observedGeneration")
                .and_then(Value::as_i64)
                .or(observed);
            if seen.is_some_and(|g| g < generation) {
                Readiness::Pending("Ready for an older generation".into())
            } else {
                Readiness::Ready
            }
        }
        Some(c) => Readiness::Pending(format!(
            "{} is {}{}",
            c["type"].as_str().unwrap_or("Ready"),
            c["status"].as_str().unwrap_or("Unknown"),
            condition_message(c)
        )),
        None => Readiness::Pending("no Ready condition yet".into()),
    }
}

/// A small JSONPath: `{.status.phase}` or `.status.conditions[0].type`.
fn jsonpath(o: &Value, path: &str) -> Option<String> {
    let p = path
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim_start_matches('.');
    let mut cur = o;
    for part in p.split('.').filter(|s| !s.is_empty()) {
        let (name, index) = match part.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        cur = cur.get(name)?;
        if let Some(i) = index {
            cur = cur.get(i)?;
        }
    }
    Some(match cur {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn api(code: u16) -> ::kube::Error {
        let status: ::kube::core::Status = serde_json::from_value(
            json!({ "status": "Failure", "message": "m", "reason": "r", "code": code }),
        )
        .unwrap();
        ::kube::Error::Api(Box::new(status))
    }

    #[tokio::test(start_paused = true)]
    async fn transient_errors_are_retried_and_others_are_not() {
        let calls = std::sync::atomic::AtomicU32::new(0);
        let r = retry(|| async {
            match calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 => Err(api(503)),
                1 => Err(api(429)),
                _ => Ok(7),
            }
        })
        .await;
        assert_eq!(r.unwrap(), 7);
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
        let calls = std::sync::atomic::AtomicU32::new(0);
        let r: Result<(), _> = retry(|| async {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err(api(403))
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        let r: Result<(), _> = retry(|| async { Err(api(500)) }).await;
        assert!(
            matches!(r, Err(::kube::Error::Api(s)) if s.code == 500),
            "gives up after five tries"
        );
    }

    #[test]
    fn deployment_readiness_follows_the_rollout() {
        let mut d = json!({ "kind": "Deployment", "metadata": { "generation": 2 }, "spec": { "replicas": 3 },
            "status": { "observedGeneration": 1 } });
        assert!(matches!(readiness(&d, None), Readiness::Pending(_)));
        d["status"] = json!({ "observedGeneration": 2, "updatedReplicas": 3, "replicas": 4, "availableReplicas": 3 });
        assert_eq!(
            readiness(&d, None),
            Readiness::Pending("1 old replicas pending termination".into())
        );
        d["status"]["replicas"] = json!(3);
        assert_eq!(readiness(&d, None), Readiness::Ready);
    }

    #[test]
    fn daemonsets_statefulsets_and_kinds_without_status() {
        let ds = json!({ "kind": "DaemonSet", "metadata": { "generation": 1 },
            "status": { "observedGeneration": 1, "desiredNumberScheduled": 3, "updatedNumberScheduled": 3, "numberAvailable": 2 } });
        assert_eq!(
            readiness(&ds, None),
            Readiness::Pending("2 of 3 nodes available".into())
        );
        let sts = json!({ "kind": "StatefulSet", "metadata": { "generation": 2 }, "spec": { "replicas": 3 },
            "status": { "observedGeneration": 2, "readyReplicas": 3, "updatedReplicas": 0,
                "currentRevision": "web-1", "updateRevision": "web-2" } });
        assert!(
            matches!(readiness(&sts, None), Readiness::Pending(_)),
            "old pods ready is not rolled out"
        );
        assert!(
            ready_on_apply("Secret") && ready_on_apply("CronJob") && !ready_on_apply("XDatabase")
        );
    }

    #[test]
    fn wait_for_a_condition_or_a_jsonpath() {
        let o = json!({ "kind": "XDatabase", "metadata": { "generation": 1 },
            "status": { "phase": "Bound", "conditions": [{ "type": "Ready", "status": "False", "message": "provisioning" }] } });
        assert_eq!(
            readiness(&o, None),
            Readiness::Pending("Ready is False: provisioning".into())
        );
        let w = WaitFor {
            condition: None,
            jsonpath: Some("{.status.phase}=Bound".into()),
            timeout: None,
        };
        assert_eq!(readiness(&o, Some(&w)), Readiness::Ready);
    }

    #[test]
    fn images_replace_the_same_repository() {
        let mut d = json!({ "spec": { "template": { "spec": { "containers": [
            { "name": "proxy", "image": "envoy:1" }, { "name": "app", "image": "registry.example.org:5000/shop/checkout:1.0" } ] } } } });
        set_image(&mut d, "registry.example.org:5000/shop/checkout:2.0", true);
        assert_eq!(
            d.pointer("/spec/template/spec/containers/1/image").unwrap(),
            "registry.example.org:5000/shop/checkout:2.0"
        );
        assert_eq!(
            d.pointer("/spec/template/spec/containers/0/image").unwrap(),
            "envoy:1"
        );
    }

    #[test]
    fn manifests_split_documents_and_lists() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: a }\n---\n---\napiVersion: v1\nkind: List\nitems:\n  - { apiVersion: v1, kind: Secret, metadata: { name: b } }\n";
        let m = parse_manifests(text, "x.yaml").unwrap();
        assert_eq!(m.len(), 2);
        assert!(
            parse_manifests("a: 1\n", "x.yaml")
                .unwrap_err()
                .to_string()
                .contains("apiVersion and kind")
        );
    }
}
