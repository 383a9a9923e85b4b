//! The traffic routers, behind one interface ([`TrafficRouter`]) so the strategies never
//! branch on the kind:
//!
//! - `Replicas`: the Service selects both Deployments; traffic follows the ready replicas;
//! - `HttpRoute`: Gateway API `backendRefs` weights between the stable Service (pinned to
//!   the stable pods' template hash) and the canary's own Service;
//! - `ActiveService`: blue-green; the active Service's selector points at one colour, a
//!   preview Service reaches the new one.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use serde_json::{Value, json};

use super::error::Error;
use super::plan::{Plan, canary_replicas, replicas_split, to_json};
use super::{ROLLOUT_TIMEOUT, TRACK, fail, infra_failure, meta};
use crate::kube::kinds;
use crate::kube::route::{route_share, set_route_shares};
use crate::kube::workload::{TEMPLATE_HASH, deployment, scale, service, set_service_selector};
use crate::pipeline::model::Router;
use crate::steps::{StepIo, StepResult};

/// How a release moves traffic between the stable and the new version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TrafficRouter {
    /// Ratio of canary to stable ready replicas.
    Replicas,
    /// Weights on a Gateway API HTTPRoute's backendRefs.
    HttpRoute,
    /// Blue-green: the active Service's selector.
    ActiveService,
}

impl TrafficRouter {
    /// The router a canary names.
    pub fn for_canary(router: Router) -> Self {
        match router {
            Router::Replicas => TrafficRouter::Replicas,
            Router::GatewayApi => TrafficRouter::HttpRoute,
        }
    }

    /// The word recorded on the stable Deployment (blue-green has always recorded
    /// `replicas`, its track telling it apart).
    pub fn recorded_as(self) -> &'static str {
        match self {
            TrafficRouter::HttpRoute => "gateway-api",
            TrafficRouter::Replicas | TrafficRouter::ActiveService => "replicas",
        }
    }

    /// The second Deployment's track: `canary`, or `preview` for blue-green.
    pub fn track(self) -> &'static str {
        match self {
            TrafficRouter::ActiveService => "preview",
            TrafficRouter::Replicas | TrafficRouter::HttpRoute => "canary",
        }
    }

    /// Before any traffic moves: the second track gets its own Service, and the stable
    /// Service is pinned to the stable pods.
    pub async fn prepare(self, plan: &Plan, previous: &Deployment) -> Result<(), StepResult> {
        match self {
            TrafficRouter::Replicas => Ok(()),
            TrafficRouter::HttpRoute if plan.baseline.is_some() => {
                let name = plan.baseline_service();
                track_service(plan, &name, super::baseline::BASELINE_TRACK).await?;
                second_service(plan, previous).await
            }
            TrafficRouter::HttpRoute | TrafficRouter::ActiveService => {
                second_service(plan, previous).await
            }
        }
    }

    /// Sends `weight`% of traffic to the new version, whose Deployment is sized for it out
    /// of `total` stable replicas and rolled out; returns what now carries the traffic.
    pub async fn set_weight(
        self,
        plan: &Plan,
        io: &StepIo,
        weight: u8,
        total: i32,
    ) -> Result<String, Error> {
        let canary = canary_replicas(total, weight);
        // A baseline serves beside the canary with as many pods (and so as much traffic),
        // taken from stable.
        let baseline = if plan.baseline.is_some() { canary } else { 0 };
        match self {
            TrafficRouter::Replicas => {
                let [stable, ..] = replicas_split(total, weight, plan.baseline.is_some());
                scale(&plan.cluster, &plan.name, stable).await?;
                plan.rolled_out(io, &plan.name, ROLLOUT_TIMEOUT).await?;
                Ok(if baseline > 0 {
                    format!(
                        "{canary} canary, {baseline} baseline and {stable} stable replicas ready"
                    )
                } else {
                    format!("{canary} canary and {stable} stable replicas ready")
                })
            }
            TrafficRouter::HttpRoute if baseline > 0 => {
                route_weights(plan, weight).await?;
                Ok(format!(
                    "HTTPRoute {} weights {}/{weight}/{weight} (stable/baseline/canary), {canary} canary and {baseline} baseline replicas",
                    plan.route.as_deref().unwrap_or(""),
                    100u8.saturating_sub(weight.saturating_mul(2)),
                ))
            }
            TrafficRouter::HttpRoute => {
                route_weights(plan, weight).await?;
                Ok(format!(
                    "HTTPRoute {} weights {}/{} (stable/canary), {canary} canary replicas",
                    plan.route.as_deref().unwrap_or(""),
                    100 - weight,
                    weight
                ))
            }
            TrafficRouter::ActiveService if weight == 0 => {
                let hash = match deployment(&plan.cluster, &plan.name).await? {
                    Some(s) => Some(plan.stable_hash(&s).await?),
                    None => None,
                };
                switch_active(plan, false, hash.as_deref()).await?;
                Ok(format!(
                    "switched Service {} back to the old colour",
                    plan.stable_service.as_deref().unwrap_or("")
                ))
            }
            TrafficRouter::ActiveService => {
                switch_active(plan, true, None).await?;
                Ok(format!(
                    "switched Service {} to the new version",
                    plan.stable_service.as_deref().unwrap_or("")
                ))
            }
        }
    }

    /// The percent the router sends to the new version now, and the percent the replica
    /// counts plan, given each version's `ready` and `desired` replicas (stable first).
    pub async fn actual_split(
        self,
        plan: &Plan,
        ready: [u32; 2],
        desired: [u32; 2],
    ) -> Result<(Option<u8>, Option<u8>), crate::kube::Error> {
        let share = |of: [u32; 2]| {
            let total = of[0] + of[1];
            (total > 0).then(|| (f64::from(of[1]) * 100.0 / f64::from(total)).round() as u8)
        };
        Ok(match self {
            TrafficRouter::ActiveService => (None, None),
            TrafficRouter::HttpRoute => (share_of_route(plan).await?, None),
            TrafficRouter::Replicas => (share(ready), share(desired)),
        })
    }

    /// Rollback, first: all traffic back on `stable` as fast as the router allows, with
    /// `total` replicas to serve it.
    pub async fn restore(
        self,
        plan: &Plan,
        io: &StepIo,
        stable: &Deployment,
        total: i32,
    ) -> Result<(), Error> {
        match self {
            TrafficRouter::ActiveService => {
                // The active Service goes back to the old colour's pods at once.
                let hash = plan.stable_hash(stable).await?;
                switch_active(plan, false, Some(&hash)).await?;
                io.log(
                    "traffic",
                    "all traffic back on the old colour (active Service switched back)",
                );
                plan.report_traffic(io, 0, "active Service switched back to the old colour")
                    .await;
            }
            TrafficRouter::HttpRoute => {
                route_weights(plan, 0).await?;
                io.log(
                    "traffic",
                    "all traffic back on stable (HTTPRoute weights 100/0)",
                );
                plan.report_traffic(io, 0, "HTTPRoute weights 100/0: all traffic back on stable")
                    .await;
            }
            TrafficRouter::Replicas => {
                // Stable gets its full capacity back before the canary's pods go, so users
                // are never left with fewer pods than they had.
                scale(&plan.cluster, &plan.name, total).await?;
                plan.rolled_out(io, &plan.name, ROLLOUT_TIMEOUT).await?;
            }
        }
        Ok(())
    }

    /// Rollback, last: what [`TrafficRouter::prepare`] added is taken away (the stable
    /// Service unpinned, the second Service deleted).
    pub async fn unroute(self, plan: &Plan) -> Result<(), crate::kube::Error> {
        match self {
            TrafficRouter::Replicas => Ok(()),
            TrafficRouter::HttpRoute | TrafficRouter::ActiveService => {
                pin_stable_service(plan, None).await?;
                self.drop_service(plan).await
            }
        }
    }

    /// Promotion, first: all traffic on the new version while the stable Deployment rolls
    /// to it (`total` replicas).
    pub async fn hand_over(self, plan: &Plan, io: &StepIo, total: i32) -> Result<(), Error> {
        match self {
            TrafficRouter::HttpRoute => {
                // First give the canary the full replica count.
                let canary = plan.canary_name();
                scale(&plan.cluster, &canary, total).await?;
                plan.rolled_out(io, &canary, ROLLOUT_TIMEOUT).await?;
                route_weights(plan, 100).await?;
                Ok(pin_stable_service(plan, None).await?)
            }
            TrafficRouter::Replicas | TrafficRouter::ActiveService => Ok(()),
        }
    }

    /// Promotion, once the stable Deployment runs the new version: traffic back on it
    /// alone.
    pub async fn settle(self, plan: &Plan) -> Result<(), crate::kube::Error> {
        match self {
            TrafficRouter::HttpRoute => route_weights(plan, 0).await,
            // The active Service selects the app again, all of it now the new version.
            TrafficRouter::ActiveService => switch_active(plan, false, None).await,
            TrafficRouter::Replicas => Ok(()),
        }
    }

    /// Deletes the second track's Service, when the router made one.
    pub async fn drop_service(self, plan: &Plan) -> Result<(), crate::kube::Error> {
        match self {
            TrafficRouter::Replicas => Ok(()),
            TrafficRouter::HttpRoute | TrafficRouter::ActiveService => {
                let services = plan.cluster.namespaced::<Service>();
                kinds::delete(&services, &plan.canary_service).await
            }
        }
    }
}

/// Sets the route's weights: `canary`% to the canary Service, as much to the baseline's
/// while the canary takes part of the traffic and the release has one, the rest to stable.
/// Without a baseline (or at 0% and 100%) any baseline backend is taken out.
async fn route_weights(plan: &Plan, canary: u8) -> Result<(), crate::kube::Error> {
    let (Some(route), Some(stable)) = (&plan.route, &plan.stable_service) else {
        return Ok(());
    };
    let baseline = if plan.baseline.is_some() && canary < 100 {
        canary.min(100 - canary)
    } else {
        0
    };
    let baseline_service = plan.baseline_service();
    let shares = [
        (plan.canary_service.as_str(), canary),
        (baseline_service.as_str(), baseline),
    ];
    set_route_shares(&plan.cluster, route, stable, &shares).await
}

/// The percent the live HTTPRoute sends to the canary Service.
async fn share_of_route(plan: &Plan) -> Result<Option<u8>, crate::kube::Error> {
    let (Some(route), Some(stable)) = (&plan.route, &plan.stable_service) else {
        return Ok(None);
    };
    route_share(&plan.cluster, route, stable, &plan.canary_service).await
}

/// Pins (or unpins, with `None`) the stable Service to one pod-template hash.
async fn pin_stable_service(plan: &Plan, hash: Option<&str>) -> Result<(), crate::kube::Error> {
    let Some(svc) = &plan.stable_service else {
        return Ok(());
    };
    if service(&plan.cluster, svc).await?.is_none() {
        return Ok(());
    }
    set_service_selector(&plan.cluster, svc, &[(TEMPLATE_HASH, hash)]).await
}

/// Gives the second track its own Service (a copy of the stable one selecting the track's
/// pods) and pins the stable Service to the stable pods.
async fn second_service(plan: &Plan, previous: &Deployment) -> Result<(), StepResult> {
    let pinned = plan.stable_hash(previous).await.map_err(infra_failure)?;
    track_service(plan, &plan.canary_service, plan.track()).await?;
    pin_stable_service(plan, Some(&pinned))
        .await
        .map_err(infra_failure)
}

/// Creates Service `name`: a copy of the stable one selecting the pods of `track`.
async fn track_service(plan: &Plan, name: &str, track: &str) -> Result<(), StepResult> {
    let stable_name = plan.stable_service.clone().unwrap_or_default();
    let mut svc = match plan
        .others
        .iter()
        .find(|o| o["kind"] == "Service" && meta(o, "name") == stable_name)
    {
        // The user's manifest stays JSON: it is applied as written, whatever it carries.
        Some(declared) => declared.clone(),
        None => match service(&plan.cluster, &stable_name).await {
            Ok(Some(live)) => copy_of(plan, &stable_name, &live).map_err(infra_failure)?,
            Ok(None) => return Err(fail(format!("Service {stable_name} does not exist"))),
            Err(e) => return Err(infra_failure(e)),
        },
    };
    svc["metadata"]["name"] = Value::String(name.to_owned());
    // The copy is another Service: the address the target published for the original is
    // not its own.
    if let (Some(a), Some(published)) = (
        svc.pointer_mut("/metadata/annotations")
            .and_then(Value::as_object_mut),
        &plan.address_annotation,
    ) {
        a.remove(published);
    }
    if let Some(sel) = svc
        .pointer_mut("/spec/selector")
        .and_then(Value::as_object_mut)
    {
        sel.remove(TEMPLATE_HASH);
        sel.insert(TRACK.into(), Value::String(track.into()));
    }
    plan.cluster
        .apply(&svc, false)
        .await
        .map_err(|e| fail(format!("cannot create the {track} Service: {e}")))
        .map(drop)
}

/// A Service named `name` with the selector and ports of the live `s`, as JSON: it takes
/// the path a Service declared in the manifests takes (edited and applied as written).
fn copy_of(plan: &Plan, name: &str, s: &Service) -> Result<Value, crate::kube::Error> {
    let what = format!("Service {}/{name}", plan.namespace);
    let spec = s.spec.as_ref();
    let selector = to_json(&what, &spec.and_then(|s| s.selector.as_ref()))?;
    let ports = to_json(&what, &spec.and_then(|s| s.ports.as_ref()))?;
    Ok(json!({ "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": name, "namespace": plan.namespace },
        "spec": { "selector": if selector.is_null() { json!({}) } else { selector },
            "ports": if ports.is_null() { json!([]) } else { ports } } }))
}

/// Points the active Service at the preview pods (`true`), or back at the stable pods of
/// template `hash` (`false`).
async fn switch_active(
    plan: &Plan,
    to_preview: bool,
    hash: Option<&str>,
) -> Result<(), crate::kube::Error> {
    let Some(svc) = &plan.stable_service else {
        return Ok(());
    };
    let selector = if to_preview {
        [(TRACK, Some(plan.track())), (TEMPLATE_HASH, None)]
    } else {
        [(TRACK, None), (TEMPLATE_HASH, hash)]
    };
    set_service_selector(&plan.cluster, svc, &selector).await
}
