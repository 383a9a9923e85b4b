//! The fresh baseline of `judge: statistical`: pods of the stable version started beside
//! the canary, sized like it and given the same share of traffic, so the two are compared
//! under the same conditions (pods that have run for days are not a fair comparison).
//!
//! `NAME-baseline` is the stable Deployment's pod template with the `baseline` track label
//! and its own `version` label value (the series the baseline's queries select). With the
//! Gateway API router it gets its own Service, `STABLE-baseline`, and a backendRef with the
//! canary's weight. It goes with the canary on promotion, abort, rollback and
//! `glidepath rollback`; every removal is idempotent, so a resumed run leaves none behind.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use serde_json::{Value, json};

use super::error::Error;
use super::plan::{Plan, to_json};
use super::{ROLLOUT_TIMEOUT, TRACK};
use crate::kube::kinds;
use crate::kube::workload::deployment;
use crate::steps::StepIo;

/// The baseline's track label value.
pub(super) const BASELINE_TRACK: &str = "baseline";

impl Plan {
    /// The baseline Deployment's name.
    pub fn baseline_name(&self) -> String {
        format!("{}-{BASELINE_TRACK}", self.name)
    }

    /// The baseline's Service (Gateway API router).
    pub fn baseline_service(&self) -> String {
        format!(
            "{}-{BASELINE_TRACK}",
            self.stable_service.as_deref().unwrap_or(&self.name)
        )
    }

    /// Sizes the baseline to `replicas` (created from the live stable Deployment's template
    /// the first time) and waits until it is rolled out. Nothing without a baseline.
    pub async fn ensure_baseline(&self, io: &StepIo, replicas: i32) -> Result<(), Error> {
        let Some(version) = &self.baseline else {
            return Ok(());
        };
        let stable = deployment(&self.cluster, &self.name)
            .await?
            .ok_or_else(|| Error::Disappeared {
                what: self.describe(&self.name),
            })?;
        let manifest = baseline_manifest(self, &stable, version, replicas)?;
        self.cluster.apply(&manifest, false).await?;
        self.rolled_out(io, &self.baseline_name(), ROLLOUT_TIMEOUT)
            .await
    }

    /// Removes the baseline Deployment and its Service, whichever exist; an object of the
    /// same name that does not select the baseline track is not glidepath's, and stays.
    /// Returns whether a baseline Deployment was removed.
    pub async fn remove_baseline(&self) -> Result<bool, crate::kube::Error> {
        let deployments = self.cluster.namespaced::<Deployment>();
        let name = self.baseline_name();
        let ours = kinds::get(&deployments, &name).await?.is_some_and(|d| {
            d.spec
                .and_then(|s| s.selector.match_labels)
                .is_some_and(|l| l.get(TRACK).map(String::as_str) == Some(BASELINE_TRACK))
        });
        if ours {
            kinds::delete(&deployments, &name).await?;
        }
        let services = self.cluster.namespaced::<Service>();
        let svc = self.baseline_service();
        let ours_svc = kinds::get(&services, &svc).await?.is_some_and(|s| {
            s.spec
                .and_then(|s| s.selector)
                .is_some_and(|l| l.get(TRACK).map(String::as_str) == Some(BASELINE_TRACK))
        });
        if ours_svc {
            kinds::delete(&services, &svc).await?;
        }
        Ok(ours)
    }
}

/// The baseline Deployment: `stable`'s selector and pod template with the baseline track
/// and `version` label, `replicas` pods.
fn baseline_manifest(
    plan: &Plan,
    stable: &Deployment,
    version: &str,
    replicas: i32,
) -> Result<Value, crate::kube::Error> {
    let what = plan.describe(&plan.name);
    let spec = stable.spec.as_ref();
    let mut selector = to_json(&what, &spec.map(|s| &s.selector))?;
    let mut template = to_json(&what, &spec.map(|s| &s.template))?;
    if let Some(labels) = selector
        .pointer_mut("/matchLabels")
        .and_then(Value::as_object_mut)
    {
        labels.insert(TRACK.into(), json!(BASELINE_TRACK));
    }
    if template.pointer("/metadata/labels").is_none() {
        template["metadata"]["labels"] = json!({});
    }
    if let Some(labels) = template
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.insert(TRACK.into(), json!(BASELINE_TRACK));
        labels.insert("version".into(), json!(version));
        if labels.contains_key("app.kubernetes.io/version") {
            labels.insert("app.kubernetes.io/version".into(), json!(version));
        }
    }
    Ok(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": plan.baseline_name(), "namespace": plan.namespace,
            "labels": stable.metadata.labels.clone().unwrap_or_default() },
        "spec": { "replicas": replicas, "selector": selector, "template": template },
    }))
}
