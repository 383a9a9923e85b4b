//! The traffic routers, behind one interface ([`TrafficRouter`]) so the strategies never
//! branch on the kind:
//!
//! - `Replicas`: the Service selects both Deployments; traffic follows the ready replicas;
//! - `HttpRoute`: Gateway API `backendRefs` weights between the stable Service (pinned to
//!   the stable pods' template hash) and the canary's own Service;
//! - `ActiveService`: blue-green; the active Service's selector points at one colour, a
//!   preview Service reaches the new one.

use serde_json::{Value, json};

use super::plan::{Plan, canary_replicas};
use super::{HASH, ROLLOUT_TIMEOUT, TRACK, fail, infra_failure, meta};
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
    pub async fn prepare(self, plan: &Plan, previous: &Value) -> Result<(), StepResult> {
        match self {
            TrafficRouter::Replicas => Ok(()),
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
        total: i64,
    ) -> Result<String, String> {
        let canary = canary_replicas(total, weight);
        match self {
            TrafficRouter::Replicas => {
                // As Argo Rollouts rounds without a traffic router: both sides rounded up,
                // so stable keeps serving until the canary takes everything.
                let stable = ((total * (100 - i64::from(weight))) as f64 / 100.0).ceil() as i64;
                plan.scale(&plan.stable_ref(), stable).await?;
                plan.rolled_out(io, &plan.stable_ref(), ROLLOUT_TIMEOUT)
                    .await?;
                Ok(format!(
                    "{canary} canary and {stable} stable replicas ready"
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
                let stable = plan.cluster.get(&plan.stable_ref()).await?;
                let hash = match stable {
                    Some(s) => plan.stable_hash(&s).await?,
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
    ) -> Result<(Option<u8>, Option<u8>), String> {
        let share = |of: [u32; 2]| {
            let total = of[0] + of[1];
            (total > 0).then(|| (f64::from(of[1]) * 100.0 / f64::from(total)).round() as u8)
        };
        Ok(match self {
            TrafficRouter::ActiveService => (None, None),
            TrafficRouter::HttpRoute => (route_share(plan).await?, None),
            TrafficRouter::Replicas => (share(ready), share(desired)),
        })
    }

    /// Rollback, first: all traffic back on `stable` as fast as the router allows, with
    /// `total` replicas to serve it.
    pub async fn restore(
        self,
        plan: &Plan,
        io: &StepIo,
        stable: &Value,
        total: i64,
    ) -> Result<(), String> {
        match self {
            TrafficRouter::ActiveService => {
                // The active Service goes back to the old colour's pods at once.
                let hash = plan.stable_hash(stable).await?;
                switch_active(plan, false, hash.as_deref()).await?;
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
                plan.scale(&plan.stable_ref(), total).await?;
                plan.rolled_out(io, &plan.stable_ref(), ROLLOUT_TIMEOUT)
                    .await?;
            }
        }
        Ok(())
    }

    /// Rollback, last: what [`TrafficRouter::prepare`] added is taken away (the stable
    /// Service unpinned, the second Service deleted).
    pub async fn unroute(self, plan: &Plan) -> Result<(), String> {
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
    pub async fn hand_over(self, plan: &Plan, io: &StepIo, total: i64) -> Result<(), String> {
        match self {
            TrafficRouter::HttpRoute => {
                // First give the canary the full replica count.
                plan.scale(&plan.canary_ref(), total).await?;
                plan.rolled_out(io, &plan.canary_ref(), ROLLOUT_TIMEOUT)
                    .await?;
                route_weights(plan, 100).await?;
                pin_stable_service(plan, None).await
            }
            TrafficRouter::Replicas | TrafficRouter::ActiveService => Ok(()),
        }
    }

    /// Promotion, once the stable Deployment runs the new version: traffic back on it
    /// alone.
    pub async fn settle(self, plan: &Plan) -> Result<(), String> {
        match self {
            TrafficRouter::HttpRoute => route_weights(plan, 0).await,
            // The active Service selects the app again, all of it now the new version.
            TrafficRouter::ActiveService => switch_active(plan, false, None).await,
            TrafficRouter::Replicas => Ok(()),
        }
    }

    /// Deletes the second track's Service, when the router made one.
    pub async fn drop_service(self, plan: &Plan) -> Result<(), String> {
        match self {
            TrafficRouter::Replicas => Ok(()),
            TrafficRouter::HttpRoute | TrafficRouter::ActiveService => plan
                .cluster
                .delete(&plan.object("v1", "Service", &plan.canary_service))
                .await
                .map_err(String::from),
        }
    }
}

/// Sets the route's weights: `canary`% to the canary Service, the rest to stable.
async fn route_weights(plan: &Plan, canary: u8) -> Result<(), String> {
    let (Some(route), Some(stable)) = (&plan.route, &plan.stable_service) else {
        return Ok(());
    };
    let r = plan.object("gateway.networking.k8s.io/v1", "HTTPRoute", route);
    let live = plan
        .cluster
        .get(&r)
        .await?
        .ok_or_else(|| format!("HTTPRoute {}/{route} does not exist", plan.namespace))?;
    let mut rules = live
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut found = false;
    for rule in &mut rules {
        let refs = rule
            .get("backendRefs")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if let Some(out) = reweighed(refs, stable, &plan.canary_service, canary) {
            found = true;
            rule["backendRefs"] = Value::Array(out);
        }
    }
    if !found {
        return Err(format!(
            "HTTPRoute {route} has no backendRef to the stable Service {stable}"
        ));
    }
    plan.cluster
        .merge(&r, &json!({ "spec": { "rules": rules } }))
        .await
        .map(drop)
        .map_err(String::from)
}

/// One rule's backendRefs with `canary`% on the canary Service (a copy of the stable
/// backendRef) and the rest on stable; `None` when the rule does not reach stable.
fn reweighed(
    refs: Vec<Value>,
    stable: &str,
    canary_service: &str,
    canary: u8,
) -> Option<Vec<Value>> {
    let stable_ref = refs.iter().find(|b| b["name"] == stable).cloned()?;
    let mut out: Vec<Value> = refs
        .into_iter()
        .filter(|b| b["name"] != stable && b["name"] != canary_service)
        .collect();
    let mut s = stable_ref.clone();
    s["weight"] = json!(100 - i64::from(canary));
    out.push(s);
    if canary > 0 {
        let mut c = stable_ref;
        c["name"] = Value::String(canary_service.to_owned());
        c["weight"] = json!(i64::from(canary));
        out.push(c);
    }
    Some(out)
}

/// The percent the live HTTPRoute sends to the canary Service.
async fn route_share(plan: &Plan) -> Result<Option<u8>, String> {
    let (Some(route), Some(stable)) = (plan.route.as_ref(), plan.stable_service.as_ref()) else {
        return Ok(None);
    };
    let r = plan.object("gateway.networking.k8s.io/v1", "HTTPRoute", route);
    let Some(live) = plan.cluster.get(&r).await? else {
        return Ok(None);
    };
    let refs = live
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|rule| rule.get("backendRefs")?.as_array())
        .find(|refs| refs.iter().any(|b| b["name"] == stable.as_str()));
    let Some(refs) = refs else { return Ok(None) };
    let weight = |name: &str| {
        refs.iter()
            .find(|b| b["name"] == name)
            .map_or(0, |b| b["weight"].as_u64().unwrap_or(1))
    };
    let (s, c) = (weight(stable), weight(&plan.canary_service));
    Ok((s + c > 0).then(|| (c as f64 * 100.0 / (s + c) as f64).round() as u8))
}

/// Pins (or unpins, with `None`) the stable Service to one pod-template hash.
async fn pin_stable_service(plan: &Plan, hash: Option<&str>) -> Result<(), String> {
    let Some(svc) = &plan.stable_service else {
        return Ok(());
    };
    let s = plan.object("v1", "Service", svc);
    if plan.cluster.get(&s).await?.is_none() {
        return Ok(());
    }
    plan.cluster
        .merge(&s, &json!({ "spec": { "selector": { HASH: hash } } }))
        .await
        .map(drop)
        .map_err(String::from)
}

/// Gives the second track its own Service (a copy of the stable one selecting the track's
/// pods) and pins the stable Service to the stable pods.
async fn second_service(plan: &Plan, previous: &Value) -> Result<(), StepResult> {
    let stable_name = plan.stable_service.clone().unwrap_or_default();
    let pinned = plan.stable_hash(previous).await.map_err(infra_failure)?;
    let declared = plan
        .others
        .iter()
        .find(|o| o["kind"] == "Service" && meta(o, "name") == stable_name)
        .cloned();
    let mut svc = match declared {
        Some(s) => s,
        None => match plan
            .cluster
            .get(&plan.object("v1", "Service", &stable_name))
            .await
        {
            Ok(Some(s)) => json!({ "apiVersion": "v1", "kind": "Service",
                "metadata": { "name": stable_name, "namespace": plan.namespace },
                "spec": { "selector": s.pointer("/spec/selector").cloned().unwrap_or(json!({})),
                    "ports": s.pointer("/spec/ports").cloned().unwrap_or(json!([])) } }),
            Ok(None) => return Err(fail(format!("Service {stable_name} does not exist"))),
            Err(e) => return Err(infra_failure(e)),
        },
    };
    svc["metadata"]["name"] = Value::String(plan.canary_service.clone());
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
        sel.remove(HASH);
        sel.insert(TRACK.into(), Value::String(plan.track().into()));
    }
    plan.cluster
        .apply(&svc, false)
        .await
        .map_err(|e| fail(format!("cannot create the {} Service: {e}", plan.track())))?;
    pin_stable_service(plan, pinned.as_deref())
        .await
        .map_err(infra_failure)
}

/// Points the active Service at the preview pods (`true`), or back at the stable pods of
/// template `hash` (`false`).
async fn switch_active(plan: &Plan, to_preview: bool, hash: Option<&str>) -> Result<(), String> {
    let Some(svc) = &plan.stable_service else {
        return Ok(());
    };
    let selector = if to_preview {
        json!({ TRACK: plan.track(), HASH: null })
    } else {
        json!({ TRACK: null, HASH: hash })
    };
    plan.cluster
        .merge(
            &plan.object("v1", "Service", svc),
            &json!({ "spec": { "selector": selector } }),
        )
        .await
        .map(drop)
        .map_err(String::from)
}
