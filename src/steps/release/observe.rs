//! What the cluster shows of a release's traffic, reported as `Event::Traffic`: after each
//! change, and again whenever it changes by itself while the release runs.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use serde_json::Value;

use super::plan::Plan;
use crate::events::VersionReplicas;
use crate::steps::StepIo;

/// What the cluster shows of a release's traffic (`Event::Traffic`).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Observed {
    actual: Option<u8>,
    planned: Option<u8>,
    replicas: Vec<VersionReplicas>,
}

/// A Deployment's version: its pod template's `version` (or `app.kubernetes.io/version`)
/// label, else its first container's image tag.
fn version_of(d: &Value) -> String {
    let labels = d.pointer("/spec/template/metadata/labels");
    for key in ["version", "app.kubernetes.io/version"] {
        if let Some(v) = labels.and_then(|l| l.get(key)).and_then(Value::as_str) {
            return v.to_owned();
        }
    }
    // The tag is in the last path segment (`registry:5000/app:1.2`), before any digest.
    d.pointer("/spec/template/spec/containers/0/image")
        .and_then(Value::as_str)
        .map(|i| i.split('@').next().unwrap_or(i))
        .and_then(|i| i.rsplit('/').next())
        .and_then(|last| last.split_once(':'))
        .map(|(_, tag)| tag.to_owned())
        .unwrap_or_else(|| "?".into())
}

impl Plan {
    /// What the cluster shows now: the percent the router sends to the new version, the
    /// percent the replica counts plan (with replicas as the router), and each version's
    /// readiness. `Err` when a request failed: nothing is known then.
    pub async fn observe(&self) -> Result<Observed, String> {
        let mut replicas = Vec::new();
        let mut ready = [0u32; 2];
        let mut desired = [0u32; 2];
        for (i, (role, o)) in [("stable", self.stable_ref()), ("new", self.canary_ref())]
            .into_iter()
            .enumerate()
        {
            let Some(live) = self.cluster.get(&o).await? else {
                continue;
            };
            let count = |path: &str| {
                live.pointer(path)
                    .and_then(Value::as_u64)
                    .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX))
            };
            ready[i] = count("/status/readyReplicas");
            desired[i] = count("/spec/replicas");
            replicas.push(VersionReplicas {
                role: role.into(),
                version: version_of(&live),
                ready: ready[i],
                desired: desired[i],
            });
        }
        let (actual, planned) = self.router.actual_split(self, ready, desired).await?;
        Ok(Observed {
            actual,
            planned,
            replicas,
        })
    }

    /// Reports the traffic asked for (`weight`) with what the cluster shows.
    pub async fn report_traffic(&self, io: &StepIo, weight: u8, note: impl Into<String>) {
        match self.observe().await {
            Ok(o) => io.traffic(weight, o.actual, o.planned, o.replicas, note),
            Err(_) => io.traffic(weight, None, None, Vec::new(), note),
        }
    }

    /// Reports where traffic ended: after a promotion the stable Deployment runs the new
    /// version and serves everything; after a rollback it runs the old one.
    pub async fn report_settled(&self, io: &StepIo, promoted: bool, note: impl Into<String>) {
        let weight = if promoted { 100 } else { 0 };
        let mut replicas = self.observe().await.map(|o| o.replicas).unwrap_or_default();
        if promoted {
            for r in &mut replicas {
                r.role = "new".into();
            }
        }
        io.traffic(weight, Some(weight), None, replicas, note);
    }

    /// Reports the traffic again whenever what the cluster shows changes (a pod dies, the
    /// route is edited), every two seconds while the release runs. `desired` is the
    /// percent the release last asked for; while `moving` (a weight change in progress)
    /// nothing is reported, and a sample taken across a change is dropped.
    pub async fn follow_traffic(&self, io: &StepIo, desired: &AtomicU8, moving: &AtomicBool) {
        let mut last = None;
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let weight = desired.load(Ordering::SeqCst);
            if moving.load(Ordering::SeqCst) {
                continue;
            }
            let Ok(seen) = self.observe().await else {
                continue;
            };
            if moving.load(Ordering::SeqCst) || desired.load(Ordering::SeqCst) != weight {
                continue;
            }
            let seen = (weight, seen);
            if last.as_ref() != Some(&seen) {
                if last.is_some() {
                    let o = seen.1.clone();
                    io.traffic(
                        weight,
                        o.actual,
                        o.planned,
                        o.replicas,
                        "observed on the cluster",
                    );
                }
                last = Some(seen);
            }
        }
    }
}
