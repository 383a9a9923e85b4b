//! Putting stable back: an unfinished release aborted (traffic to stable first, then the
//! second Deployment removed), or a promotion reverted to the template it replaced. Both
//! read only the cluster, so they work after a crash and from `glidepath rollback`.

use serde_json::{Value, json};
use tokio::time::Instant;

use super::plan::{Plan, declared_total, recorded_total};
use super::routers::TrafficRouter;
use super::{PREVIOUS_TEMPLATE, PROMOTED_BY, ROLLOUT_TIMEOUT, Setback, annotation};
use crate::events::{Evidence, Verdict};
use crate::kube::objects::{Cluster, describe};
use crate::steps::{StepCtx, StepIo, StepResult};

/// Traffic back on stable, then the second Deployment removed. Idempotent; reads the
/// cluster only.
pub(super) async fn abort(plan: &Plan, io: &StepIo) -> Result<String, String> {
    let canary = plan.cluster.get(&plan.canary_ref()).await?;
    let Some(stable) = plan.cluster.get(&plan.stable_ref()).await? else {
        return Ok("nothing to roll back".into());
    };
    let recorded = recorded_total(&stable);
    if canary.is_none() && recorded.is_none() {
        return Ok("no canary in progress".into());
    }
    let started = Instant::now();
    let total = recorded.unwrap_or_else(|| declared_total(&stable));
    plan.router.restore(plan, io, &stable, total).await?;
    plan.cluster.delete(&plan.canary_ref()).await?;
    let back = started.elapsed();
    plan.scale(&plan.stable_ref(), total).await?;
    plan.unmark().await?;
    plan.router.unroute(plan).await?;
    let note = format!(
        "{} removed; all traffic on stable after {} ms",
        plan.track(),
        back.as_millis()
    );
    io.log("traffic", note.clone());
    plan.report_settled(io, false, note).await;
    Ok(format!(
        "traffic back on stable in {} ms, {} removed",
        back.as_millis(),
        plan.track()
    ))
}

/// Rolls back after a failure and says so.
pub(super) async fn rolled_back(plan: &Plan, ctx: &StepCtx, setback: Setback) -> StepResult {
    let Setback {
        why,
        mut evidence,
        judged,
    } = setback;
    let (undone, rollback_ok) = match abort(plan, &ctx.io).await {
        Ok(done) => (done, true),
        Err(e) => (format!("rollback failed too: {e}"), false),
    };
    let rollback_verdict = if rollback_ok {
        Verdict::Pass
    } else {
        Verdict::Error
    };
    evidence.push(Evidence::new("rollback", rollback_verdict, undone.clone()));
    let verdict = if judged {
        Verdict::Fail
    } else {
        Verdict::Error
    };
    StepResult {
        infra_error: !judged || !rollback_ok,
        ..StepResult::judged(verdict, format!("{why}; rolled back: {undone}"), evidence)
    }
}

/// Puts the stable Deployment back on `template` as fast as the cluster allows: the whole
/// previous version surges at once (no pod of the current one goes before a replacement is
/// ready), then the Deployment's own strategy is restored.
pub(super) async fn restore(
    plan: &Plan,
    io: &StepIo,
    stable: &Value,
    template: Value,
) -> Result<(), String> {
    let strategy = stable
        .pointer("/spec/strategy")
        .cloned()
        .unwrap_or(Value::Null);
    // The whole template is replaced (a merge would keep what the newer version added, such
    // as an init container), against the resourceVersion read.
    let mut live = plan
        .cluster
        .get(&plan.stable_ref())
        .await?
        .ok_or_else(|| format!("{} disappeared", describe(&plan.stable_ref())))?;
    live["spec"]["template"] = template;
    live["spec"]["strategy"] = json!({ "type": "RollingUpdate", "rollingUpdate": { "maxSurge": "100%", "maxUnavailable": 0 } });
    if let Some(a) = live
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        a.remove(PREVIOUS_TEMPLATE);
        a.remove(PROMOTED_BY);
    }
    if let Some(meta) = live.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    plan.cluster.replace(&live).await?;
    let rolled = plan
        .rolled_out(io, &plan.stable_ref(), ROLLOUT_TIMEOUT)
        .await;
    // The owner's strategy comes back whatever happened.
    let back = match &strategy {
        Value::Null => json!({ "spec": { "strategy": { "rollingUpdate": null } } }),
        s => json!({ "spec": { "strategy": { "type": s.get("type").cloned().unwrap_or(Value::Null),
            "rollingUpdate": s.get("rollingUpdate").cloned().unwrap_or(Value::Null) } } }),
    };
    plan.cluster.merge(&plan.stable_ref(), &back).await?;
    rolled
}

/// `glidepath rollback SERVICE`: an unfinished canary or blue-green release on Deployment
/// `name` is aborted (traffic to stable first); otherwise the last promotion is reverted to
/// the version it replaced, which had passed its own gates. Needs only the cluster.
pub async fn rollback_service(cluster: Cluster, name: &str, io: &StepIo) -> Result<String, String> {
    let (mut plan, stable) = Plan::from_cluster(cluster, name).await?;
    // Which release is in progress shows in which second Deployment exists.
    for router in [plan.router, TrafficRouter::ActiveService] {
        plan.router = router;
        if plan.cluster.get(&plan.canary_ref()).await?.is_some() {
            return abort(&plan, io).await;
        }
    }
    let template: Value = annotation(&stable, PREVIOUS_TEMPLATE)
        .and_then(|t| serde_json::from_str(t).ok())
        .ok_or_else(|| {
            format!(
                "{name} has no release in progress and no earlier version recorded by glidepath"
            )
        })?;
    let from = stable
        .pointer("/spec/template/metadata/labels/version")
        .and_then(Value::as_str)
        .unwrap_or("the current version")
        .to_owned();
    let to = template
        .pointer("/metadata/labels/version")
        .and_then(Value::as_str)
        .unwrap_or("the previous version")
        .to_owned();
    restore(&plan, io, &stable, template).await?;
    Ok(format!("{name} rolled back from {from} to {to}"))
}
