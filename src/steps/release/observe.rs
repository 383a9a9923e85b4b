//! What the cluster shows of a release's traffic, reported as `Event::Traffic`: after each
//! change, and again whenever it changes by itself while the release runs.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use super::plan::Plan;
use crate::events::VersionReplicas;
use crate::kube::FIELD_MANAGER;
use crate::kube::objects::reference;
use crate::kube::route;
use crate::kube::workload::{deployment, version_of};
use crate::steps::StepIo;
use serde_json::Value;

/// What the cluster shows of a release's traffic (`Event::Traffic`).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Observed {
    actual: Option<u8>,
    planned: Option<u8>,
    replicas: Vec<VersionReplicas>,
}

/// A replica count as reported (a negative count, which the API never gives, as 0).
fn count(n: Option<i32>) -> u32 {
    n.and_then(|n| u32::try_from(n).ok()).unwrap_or(0)
}

impl Plan {
    /// What the cluster shows now: the percent the router sends to the new version, the
    /// percent the replica counts plan (with replicas as the router), and each version's
    /// readiness. `Err` when a request failed: nothing is known then.
    pub async fn observe(&self) -> Result<Observed, crate::kube::Error> {
        let mut replicas = Vec::new();
        let mut ready = [0u32; 2];
        let mut desired = [0u32; 2];
        for (i, (role, name)) in [("stable", self.name.clone()), ("new", self.canary_name())]
            .into_iter()
            .enumerate()
        {
            let Some(live) = deployment(&self.cluster, &name).await? else {
                continue;
            };
            ready[i] = count(live.status.as_ref().and_then(|s| s.ready_replicas));
            desired[i] = count(live.spec.as_ref().and_then(|s| s.replicas));
            replicas.push(VersionReplicas {
                role: role.into(),
                version: version_of(&live),
                ready: ready[i],
                desired: desired[i],
            });
        }
        // A baseline serves the stable version beside the canary: on the stable side.
        if self.baseline.is_some()
            && let Some(live) = deployment(&self.cluster, &self.baseline_name()).await?
        {
            let (r, d) = (
                count(live.status.as_ref().and_then(|s| s.ready_replicas)),
                count(live.spec.as_ref().and_then(|s| s.replicas)),
            );
            ready[0] += r;
            desired[0] += d;
            replicas.push(VersionReplicas {
                role: "baseline".into(),
                version: version_of(&live),
                ready: r,
                desired: d,
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
    /// nothing is reported, and a sample taken across a change is dropped. Returns why the
    /// release must stop when its HTTPRoute no longer splits traffic as the release set it
    /// (a re-apply by someone else, such as a GitOps controller's sync, reset its weights).
    pub async fn follow_traffic(
        &self,
        io: &StepIo,
        desired: &AtomicU8,
        moving: &AtomicBool,
    ) -> String {
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
            if let Some(why) = self.changed_outside(weight, &seen).await {
                io.traffic(
                    weight,
                    seen.actual,
                    seen.planned,
                    seen.replicas,
                    why.clone(),
                );
                return why;
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

    /// Why the live HTTPRoute's split is not the `weight` the release set, naming the other
    /// field managers of the route; None while it is.
    async fn changed_outside(&self, weight: u8, seen: &Observed) -> Option<String> {
        if self.router != super::routers::TrafficRouter::HttpRoute {
            return None;
        }
        let actual = seen.actual?;
        if actual == weight {
            return None;
        }
        let route = self.route.as_deref()?;
        let ns = &self.cluster.namespace;
        let reference = reference(route::API_VERSION, "HTTPRoute", ns, route);
        let live = self.cluster.get(&reference).await.ok().flatten();
        let others: Vec<String> = live
            .as_ref()
            .and_then(|l| l.pointer("/metadata/managedFields"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|m| m["manager"].as_str())
            .filter(|m| *m != FIELD_MANAGER)
            .map(|m| format!("\"{m}\""))
            .collect();
        let by = if others.is_empty() {
            String::new()
        } else {
            format!(" (its other field managers: {})", others.join(", "))
        };
        Some(format!(
            "HTTPRoute {ns}/{route} sends {actual}% to the new version, not the {weight}% the release set: it was changed outside the release{by}; stop the other writer (a GitOps sync of the route) while glidepath releases, then run again"
        ))
    }
}
