//! Kubernetes access for pipeline targets, through kube-rs: a client from the target's
//! kubeconfig context (or the current context, or in-cluster config), discovery checks, and
//! server-side apply with the field manager `glidepath`. Credentials are never printed.
//!
//! - [`error`]: why a call failed, as a kind ([`Error`]);
//! - [`objects`]: manifests and objects of any kind, as JSON, and what "ready" means;
//! - [`kinds`]: kinds known at compile time, as k8s-openapi types;
//! - [`workload`]: Deployments, ReplicaSets, Services, Pods and Jobs;
//! - [`route`]: Gateway API HTTPRoute weights, a traffic router;
//! - [`lease`]: one driver at a time;
//! - [`addresses`]: where a target's Services answer on loopback (the embedded sandbox).

pub mod addresses;
pub mod error;
pub mod kinds;
pub mod lease;
pub mod objects;
pub mod ownership;
pub mod route;
pub mod whoami;
pub mod workload;

pub use error::Error;

use ::kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use ::kube::config::{KubeConfigOptions, Kubeconfig};
use ::kube::{Client, Config};
use serde_json::Value;

pub use addresses::ServiceAddresses;

use crate::pipeline::model::Target;

/// The field manager glidepath applies with.
pub const FIELD_MANAGER: &str = "glidepath";

/// A client for a pipeline target. `None` infers: in-cluster, else the current context.
pub async fn connect(target: Option<&Target>) -> Result<Client, Error> {
    let config = match target {
        Some(Target::Sandbox(_) | Target::SandboxIn(_)) => {
            return Err(Error::BadInput("the `sandbox` target is started by `glidepath run`, which points the stage at it; here, name a kubeconfig context instead".into()));
        }
        Some(Target::Cluster(c)) => {
            let kubeconfig = match &c.kubeconfig {
                Some(path) if !std::path::Path::new(path).exists() => {
                    return Err(Error::BadInput(format!(
                        "the stage's target.kubeconfig {path} does not exist; {POINT_AT_A_CLUSTER}"
                    )));
                }
                Some(path) => Kubeconfig::read_from(path)
                    .map_err(|e| Error::BadInput(format!("kubeconfig {path}: {e}")))?,
                None => Kubeconfig::read().map_err(|e| match missing_kubeconfig() {
                    Some(missing) => Error::BadInput(missing),
                    None => Error::BadInput(format!("kubeconfig: {e}")),
                })?,
            };
            let options = KubeConfigOptions {
                context: c.context.clone(),
                ..KubeConfigOptions::default()
            };
            Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| Error::BadInput(format!("kubeconfig context: {e}")))?
        }
        None => Config::infer().await.map_err(|e| {
            Error::BadInput(
                missing_kubeconfig()
                    .unwrap_or_else(|| format!("no cluster configuration found: {e}")),
            )
        })?,
    };
    crate::tls::install();
    Client::try_from(config)
        .map_err(|e| Error::BadInput(format!("cannot build a Kubernetes client: {e}")))
}

/// How to point glidepath at a cluster, for errors about a kubeconfig it cannot find.
const POINT_AT_A_CLUSTER: &str = "point glidepath at a cluster with KUBECONFIG=FILE, a stage's `target: { kubeconfig: FILE, context: NAME }`, or --kubeconfig FILE where a command takes it (demo, rollback, contract verify); or try the pipeline on the embedded sandbox: `glidepath check --sandbox PIPELINE`, `glidepath demo`";

/// When no kubeconfig file exists where kube-rs looks (the files in `$KUBECONFIG`, else
/// `~/.kube/config`): where it looked, and how to point glidepath at a cluster.
fn missing_kubeconfig() -> Option<String> {
    let (looked, source): (Vec<std::path::PathBuf>, String) =
        match std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
            Some(list) => (
                std::env::split_paths(&list).collect(),
                "from KUBECONFIG".into(),
            ),
            None => (
                directories::BaseDirs::new()
                    .map(|d| d.home_dir().join(".kube").join("config"))
                    .into_iter()
                    .collect(),
                "the default; KUBECONFIG is not set".into(),
            ),
        };
    if looked.iter().any(|p| p.exists()) {
        return None;
    }
    let names: Vec<String> = looked.iter().map(|p| p.display().to_string()).collect();
    let names = if names.is_empty() {
        "no home folder to look in".to_owned()
    } else {
        names.join(", ")
    };
    Some(format!(
        "no kubeconfig found: looked in {names} ({source}) and found no file; {POINT_AT_A_CLUSTER}"
    ))
}

/// The namespace a target names (default `default`).
pub fn namespace(target: Option<&Target>) -> String {
    match target {
        Some(Target::Cluster(c)) => c.namespace.clone().unwrap_or_else(|| "default".into()),
        _ => "default".into(),
    }
}

/// Whether the cluster serves `plural` in `group/version`.
pub async fn serves(client: &Client, api_version: &str, plural: &str) -> Result<bool, Error> {
    match client.list_api_group_resources(api_version).await {
        Ok(list) => Ok(list.resources.iter().any(|r| r.name == plural)),
        Err(e) => match Error::from_kube(format!("discovery of {api_version}"), e) {
            Error::NotFound { .. } => Ok(false),
            e => Err(e),
        },
    }
}

/// Server-side applies one object (namespaced by `namespace` when its kind is).
pub async fn apply_object(
    client: &Client,
    object: &Value,
    plural: &str,
    namespace: Option<&str>,
) -> Result<(), Error> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::BadInput("the object has no metadata.name".into()))?;
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let resource = ApiResource {
        group: group.to_owned(),
        version: version.to_owned(),
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
        plural: plural.to_owned(),
    };
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER),
        &Patch::Apply(object),
    )
    .await
    .map(drop)
    .map_err(|e| Error::from_kube(format!("{kind} {name}"), e))
}
