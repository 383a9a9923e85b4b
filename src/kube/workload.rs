//! Workloads as k8s-openapi types: Deployments (read, scaled, annotated, their current
//! ReplicaSet's pod-template hash), Services (their selector), Pods (listed, deleted, their
//! logs) and Jobs, in the target's namespace, with the error kinds of [`super::Error`].
//! What the release, deploy and test steps read of them, typed.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec, Service};
use serde_json::{Value, json};

use super::Error;
use super::kinds;
use super::objects::{Cluster, Readiness, readiness};

/// The label a Deployment's controller puts on each ReplicaSet and its pods.
pub const TEMPLATE_HASH: &str = "pod-template-hash";
/// The annotation holding a Deployment's (and its ReplicaSets') revision.
pub const REVISION: &str = "deployment.kubernetes.io/revision";

/// A label map as a selector string (`app=checkout,track=canary`).
pub fn selector_of(labels: Option<&BTreeMap<String, String>>) -> String {
    labels
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// The Deployment `name` in the target's namespace, if it exists.
pub async fn deployment(cluster: &Cluster, name: &str) -> Result<Option<Deployment>, Error> {
    kinds::get(&cluster.namespaced::<Deployment>(), name).await
}

/// Sets the replica count of Deployment `name`.
pub async fn scale(cluster: &Cluster, name: &str, replicas: i32) -> Result<(), Error> {
    let patch = json!({ "spec": { "replicas": replicas } });
    kinds::merge(&cluster.namespaced::<Deployment>(), name, &patch)
        .await
        .map(drop)
}

/// A merge-patch map that sets each `Some` value and removes each `None` key.
fn set_or_remove(pairs: &[(&str, Option<&str>)]) -> serde_json::Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect()
}

/// Sets (`Some`) or removes (`None`) annotations on Deployment `name`.
pub async fn annotate(
    cluster: &Cluster,
    name: &str,
    annotations: &[(&str, Option<&str>)],
) -> Result<(), Error> {
    let values = set_or_remove(annotations);
    let patch = json!({ "metadata": { "annotations": values } });
    kinds::merge(&cluster.namespaced::<Deployment>(), name, &patch)
        .await
        .map(drop)
}

/// A Deployment's annotation.
pub fn annotation<'a>(d: &'a Deployment, key: &str) -> Option<&'a str> {
    d.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

/// Where a Deployment's rollout stands (see [`readiness`]).
pub fn deployment_readiness(d: &Deployment) -> Readiness {
    match serde_json::to_value(d) {
        Ok(v) => readiness(&v, None),
        Err(e) => Readiness::Pending(e.to_string()),
    }
}

/// A Deployment's version: its pod template's `version` (or `app.kubernetes.io/version`)
/// label, else its first container's image tag; `?` when it has neither.
pub fn version_of(d: &Deployment) -> String {
    let template = d.spec.as_ref().map(|s| &s.template);
    let labels = template
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.as_ref());
    for key in ["version", "app.kubernetes.io/version"] {
        if let Some(v) = labels.and_then(|l| l.get(key)) {
            return v.clone();
        }
    }
    // The tag is in the last path segment (`registry:5000/app:1.2`), before any digest.
    template
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.as_deref())
        .map(|i| i.split('@').next().unwrap_or(i))
        .and_then(|i| i.rsplit('/').next())
        .and_then(|last| last.split_once(':'))
        .map(|(_, tag)| tag.to_owned())
        .unwrap_or_else(|| "?".into())
}

/// The ReplicaSets Deployment `d` owns (its revisions).
pub async fn owned_replica_sets(
    cluster: &Cluster,
    d: &Deployment,
) -> Result<Vec<ReplicaSet>, Error> {
    let uid = d.metadata.uid.as_deref().unwrap_or_default();
    let namespace = d
        .metadata
        .namespace
        .as_deref()
        .unwrap_or(&cluster.namespace);
    let selector = selector_of(
        d.spec
            .as_ref()
            .and_then(|s| s.selector.match_labels.as_ref()),
    );
    let sets = kinds::list(&cluster.namespaced_in::<ReplicaSet>(namespace), &selector).await?;
    Ok(sets
        .into_iter()
        .filter(|rs| {
            rs.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|r| r.uid == uid)
        })
        .collect())
}

/// The pod template of `d`'s revision before its current one (as `kubectl rollout undo`
/// finds it: the owned ReplicaSet with the highest revision below the Deployment's), with
/// that revision; `None` when the current revision is its first.
pub async fn previous_revision(
    cluster: &Cluster,
    d: &Deployment,
) -> Result<Option<(i64, PodTemplateSpec)>, Error> {
    let revision_of = |a: Option<&BTreeMap<String, String>>| {
        a.and_then(|a| a.get(REVISION))
            .and_then(|r| r.parse::<i64>().ok())
    };
    let Some(current) = revision_of(d.metadata.annotations.as_ref()) else {
        return Ok(None);
    };
    let sets = owned_replica_sets(cluster, d).await?;
    let previous = sets
        .into_iter()
        .filter_map(|rs| {
            let r = revision_of(rs.metadata.annotations.as_ref())?;
            (r < current).then_some((r, rs))
        })
        .max_by_key(|(r, _)| *r);
    Ok(previous.and_then(|(r, rs)| {
        let mut template = rs.spec?.template?;
        if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.remove(TEMPLATE_HASH);
        }
        Some((r, template))
    }))
}

/// The pod-template hash of `d`'s current ReplicaSet: the one of the Deployment's
/// revision, else the one with pods (mid-rollout an old one may still have some, so the
/// revision comes first). `None` when no ReplicaSet it owns has a hash yet.
pub async fn current_template_hash(
    cluster: &Cluster,
    d: &Deployment,
) -> Result<Option<String>, Error> {
    let sets = owned_replica_sets(cluster, d).await?;
    let owned: Vec<&ReplicaSet> = sets.iter().collect();
    let revision = annotation(d, REVISION);
    let revision_of = |rs: &ReplicaSet| {
        rs.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION))
            .cloned()
    };
    let current = owned
        .iter()
        .find(|rs| revision.is_some() && revision_of(rs).as_deref() == revision)
        .or_else(|| {
            owned
                .iter()
                .find(|rs| rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0) > 0)
        });
    Ok(current.and_then(|rs| {
        rs.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(TEMPLATE_HASH))
            .cloned()
    }))
}

/// The Service `name` in the target's namespace, if it exists.
pub async fn service(cluster: &Cluster, name: &str) -> Result<Option<Service>, Error> {
    kinds::get(&cluster.namespaced::<Service>(), name).await
}

/// Sets (`Some`) or removes (`None`) labels of Service `name`'s selector; the others stay.
pub async fn set_service_selector(
    cluster: &Cluster,
    name: &str,
    labels: &[(&str, Option<&str>)],
) -> Result<(), Error> {
    let values = set_or_remove(labels);
    let patch = json!({ "spec": { "selector": values } });
    kinds::merge(&cluster.namespaced::<Service>(), name, &patch)
        .await
        .map(drop)
}

/// The pods in the target's namespace matching a label selector.
pub async fn pods(cluster: &Cluster, selector: &str) -> Result<Vec<Pod>, Error> {
    kinds::list(&cluster.namespaced::<Pod>(), selector).await
}

/// Deletes pod `name` in the target's namespace (gone already is fine).
pub async fn delete_pod(cluster: &Cluster, name: &str) -> Result<(), Error> {
    kinds::delete(&cluster.namespaced::<Pod>(), name).await
}

/// The log of pod `name`'s container so far.
pub async fn pod_log(cluster: &Cluster, name: &str) -> Result<String, Error> {
    let api = cluster.namespaced::<Pod>();
    api.logs(name, &Default::default())
        .await
        .map_err(|e| Error::from_kube(format!("log of pod {}/{name}", cluster.namespace), e))
}

/// Creates `job` in the target's namespace.
pub async fn create_job(cluster: &Cluster, job: &Job) -> Result<Job, Error> {
    kinds::create(&cluster.namespaced::<Job>(), job).await
}

/// The Job `name` in the target's namespace, if it exists.
pub async fn job(cluster: &Cluster, name: &str) -> Result<Option<Job>, Error> {
    kinds::get(&cluster.namespaced::<Job>(), name).await
}

/// Where a Job stands: ready when Complete, failed when Failed (see [`readiness`]).
pub fn job_readiness(job: &Job) -> Readiness {
    match serde_json::to_value(job) {
        Ok(v) => readiness(&v, None),
        Err(e) => Readiness::Pending(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(v: Value) -> Deployment {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn versions_come_from_labels_then_the_image_tag() {
        let d = deployment(json!({ "metadata": { "name": "a" }, "spec": {
            "selector": { "matchLabels": { "app": "a" } },
            "template": { "metadata": { "labels": { "app": "a" } },
                "spec": { "containers": [{ "name": "a", "image": "registry:5000/shop/a:1.2@sha256:00" }] } } } }));
        assert_eq!(version_of(&d), "1.2");
        let d = deployment(json!({ "metadata": { "name": "a" }, "spec": {
            "selector": { "matchLabels": { "app": "a" } },
            "template": { "metadata": { "labels": { "app": "a", "version": "2.0.0" } },
                "spec": { "containers": [{ "name": "a", "image": "a:1" }] } } } }));
        assert_eq!(version_of(&d), "2.0.0");
        assert_eq!(
            selector_of(d.spec.as_ref().unwrap().selector.match_labels.as_ref()),
            "app=a"
        );
    }

    #[test]
    fn a_typed_deployment_is_ready_as_its_json_is() {
        let d = deployment(
            json!({ "metadata": { "name": "a", "generation": 2 }, "spec": {
            "replicas": 3, "selector": {}, "template": {} },
            "status": { "observedGeneration": 2, "updatedReplicas": 3, "replicas": 3, "availableReplicas": 2 } }),
        );
        assert_eq!(
            deployment_readiness(&d),
            Readiness::Pending("2 of 3 updated replicas available".into())
        );
    }
}
