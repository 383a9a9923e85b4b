//! What the cluster shows of a release's traffic, reported as `Event::Traffic`: after each
//! change, and again whenever it changes by itself while the release runs.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use super::outside::OutsideChange;
use super::plan::Plan;
use crate::events::VersionReplicas;
use crate::kube::workload::{deployment, version_of};
use crate::steps::StepIo;

/// What the cluster shows of a release's traffic (`Event::Traffic`).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Observed {
    pub actual: Option<u8>,
    planned: Option<u8>,
    replicas: Vec<VersionReplicas>,
}

impl Observed {
    /// The replicas the Deployment of `role` (`stable`, `new`, `baseline`) asks for; 0 when
    /// it does not exist.
    pub fn desired(&self, role: &str) -> u32 {
        self.replicas
            .iter()
            .find(|r| r.role == role)
            .map_or(0, |r| r.desired)
    }
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
    /// percent the release last asked for (out of `total` stable replicas); while `moving`
    /// (a weight change in progress) nothing is reported, and a sample taken across a
    /// change is dropped. Returns, logged, what no longer holds when the router's fields
    /// are not as the release set them: the HTTPRoute's weights, or with the replicas
    /// router the Deployments' `spec.replicas` (a re-apply by someone else, such as a
    /// GitOps controller's sync, or a hand scale reset them).
    pub async fn follow_traffic(
        &self,
        io: &StepIo,
        (desired, total): (&AtomicU8, i32),
        moving: &AtomicBool,
    ) -> OutsideChange {
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
            if let Some(change) = self.changed_outside(weight, total, &seen).await {
                if moving.load(Ordering::SeqCst) || desired.load(Ordering::SeqCst) != weight {
                    continue;
                }
                let why = change.why();
                io.log("traffic", why.clone());
                io.traffic(weight, seen.actual, seen.planned, seen.replicas, why);
                return change;
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
