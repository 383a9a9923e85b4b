//! Custom-resource readiness: every kind an Established CRD serves is mirrored, and each of
//! its objects gets a Ready condition when the sandbox would give it one
//! ([`resource_conditions`](crate::sandbox::controllers::resource_conditions)): the
//! platform's databases, caches and queues "provisioned" with no operator behind them.

use std::collections::HashMap;

use kube::api::{Api, ApiResource, DynamicObject, Patch};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::mirror::{Mirror, params};
use crate::sandbox::Timing;
use crate::sandbox::controllers::resource_conditions;
use crate::sandbox::view::ClusterView;

/// The group and plural of CustomResourceDefinitions.
pub const CRDS: (&str, &str) = ("apiextensions.k8s.io", "customresourcedefinitions");

/// A served custom kind: what to watch, and whether its status is a subresource.
#[derive(Debug, Clone)]
pub struct CustomKind {
    /// The kind's resource (its storage version).
    pub resource: ApiResource,
    /// Whether `status` is written through the status subresource.
    pub status_subresource: bool,
}

/// The kinds an Established CRD serves (its storage version), from the CRD object.
pub fn custom_kind(crd: &Value) -> Option<CustomKind> {
    if !crate::sandbox::controllers::is_established(crd) {
        return None;
    }
    let spec = crd.get("spec")?;
    let group = spec.get("group")?.as_str()?;
    let version = spec
        .get("versions")?
        .as_array()?
        .iter()
        .find(|v| v["storage"] == true)?;
    let name = version.get("name")?.as_str()?;
    Some(CustomKind {
        resource: ApiResource {
            group: group.to_owned(),
            version: name.to_owned(),
            api_version: format!("{group}/{name}"),
            kind: spec.pointer("/names/kind")?.as_str()?.to_owned(),
            plural: spec.pointer("/names/plural")?.as_str()?.to_owned(),
        },
        status_subresource: version.pointer("/subresources/status").is_some(),
    })
}

/// What the readiness loop remembers between ticks.
#[derive(Default)]
pub struct Readiness {
    seen: HashMap<String, Instant>,
}

impl Readiness {
    /// One pass: mirrors newly Established kinds and makes due objects Ready.
    pub async fn tick(&mut self, mirror: &Mirror, timing: &Timing) {
        let kinds: Vec<CustomKind> = mirror
            .objects(CRDS.0, CRDS.1)
            .iter()
            .filter_map(|crd| custom_kind(crd))
            .collect();
        let mut live = std::collections::HashSet::new();
        for kind in kinds {
            mirror.watch(kind.resource.clone());
            for o in mirror.objects(&kind.resource.group, &kind.resource.plural) {
                let uid = o
                    .pointer("/metadata/uid")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                live.insert(uid.clone());
                let age = self.seen.entry(uid).or_insert_with(Instant::now).elapsed();
                let scenario = &mirror.telemetry().scenario;
                let Some(conditions) =
                    resource_conditions(&o, &kind.resource.kind, scenario, timing, age)
                else {
                    continue;
                };
                if let Err(e) = write_conditions(mirror, &kind, &o, conditions).await {
                    let name = o.pointer("/metadata/name").and_then(Value::as_str);
                    let name = name.unwrap_or_default();
                    let kind = &kind.resource.kind;
                    tracing::warn!("data plane: cannot mark {kind} {name} Ready: {e}");
                }
            }
        }
        self.seen.retain(|u, _| live.contains(u));
    }
}

async fn write_conditions(
    mirror: &Mirror,
    kind: &CustomKind,
    o: &Value,
    conditions: Value,
) -> Result<(), kube::Error> {
    let name = o
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let api: Api<DynamicObject> = match o.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(ns) => Api::namespaced_with(mirror.client().clone(), ns, &kind.resource),
        None => Api::all_with(mirror.client().clone(), &kind.resource),
    };
    let patch = Patch::Merge(json!({ "status": { "conditions": conditions } }));
    if kind.status_subresource {
        api.patch_status(name, &params(), &patch).await?;
    } else {
        api.patch(name, &params(), &patch).await?;
    }
    Ok(())
}
