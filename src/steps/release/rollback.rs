//! Putting stable back: an unfinished release aborted (traffic to stable first, then the
//! second Deployment removed), or a promotion reverted to the template it replaced. Both
//! read only the cluster, so they work after a crash and from `glidepath rollback`.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStrategy, RollingUpdateDeployment};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;
use tokio::time::Instant;

use super::error::Error;
use super::plan::{Plan, declared_total, deployment_version, recorded_total, template_version};
use super::routers::TrafficRouter;
use super::{Cause, PREVIOUS_TEMPLATE, PROMOTED_BY, ROLLED_BACK_BY, ROLLOUT_TIMEOUT, Setback};
use crate::events::{Evidence, Verdict};
use crate::kube::kinds;
use crate::kube::objects::Cluster;
use crate::kube::workload::{annotation, deployment, scale};
use crate::steps::{StepCtx, StepIo, StepResult};

/// Traffic back on stable, then the second Deployment removed. Idempotent; reads the
/// cluster only. `by` (`glidepath rollback`'s operator and time) is recorded on the stable
/// Deployment, in the same change that removes the release's mark.
pub(super) async fn abort(plan: &Plan, io: &StepIo, by: Option<&str>) -> Result<String, Error> {
    let canary_name = plan.canary_name();
    let canary = deployment(&plan.cluster, &canary_name).await?;
    let Some(stable) = deployment(&plan.cluster, &plan.name).await? else {
        return Ok("nothing to roll back".into());
    };
    let recorded = recorded_total(&stable);
    if canary.is_none() && recorded.is_none() {
        return Ok("no canary in progress".into());
    }
    let started = Instant::now();
    let total = recorded.unwrap_or_else(|| declared_total(&stable));
    plan.router.restore(plan, io, &stable, total).await?;
    kinds::delete(&plan.cluster.namespaced::<Deployment>(), &canary_name).await?;
    let baseline = plan.remove_baseline().await?;
    let back = started.elapsed();
    scale(&plan.cluster, &plan.name, total).await?;
    plan.unmark(by).await?;
    plan.router.unroute(plan).await?;
    let removed = if baseline {
        format!("{} and baseline", plan.track())
    } else {
        plan.track().to_owned()
    };
    let note = format!(
        "{removed} removed; all traffic on stable after {} ms",
        back.as_millis()
    );
    io.log("traffic", note.clone());
    plan.report_settled(io, false, note).await;
    Ok(format!(
        "traffic back on stable in {} ms, {removed} removed",
        back.as_millis()
    ))
}

/// Rolls back after a failure and says so; a release someone else rolled back is left as
/// they left it.
pub(super) async fn rolled_back(plan: &Plan, ctx: &StepCtx, setback: Setback) -> StepResult {
    let Setback {
        why,
        mut evidence,
        cause,
    } = setback;
    if cause == Cause::Outside {
        ctx.io.log("release", why.clone());
        evidence.push(Evidence::new("rollback", Verdict::Fail, why.clone()));
        return StepResult {
            evidence,
            ..StepResult::failed(why)
        };
    }
    let (undone, rollback_ok) = match abort(plan, &ctx.io, None).await {
        Ok(done) => (done, true),
        Err(e) => (format!("rollback failed too: {e}"), false),
    };
    let rollback_verdict = if rollback_ok {
        Verdict::Pass
    } else {
        Verdict::Error
    };
    evidence.push(Evidence::new("rollback", rollback_verdict, undone.clone()));
    let judged = cause == Cause::Judged;
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

/// `live` on `template`, surging the whole of it at once, without the release's marks.
fn restored(mut live: Deployment, template: PodTemplateSpec, by: Option<&str>) -> Deployment {
    let spec = live.spec.get_or_insert_with(Default::default);
    spec.template = template;
    spec.strategy = Some(DeploymentStrategy {
        type_: Some("RollingUpdate".into()),
        rolling_update: Some(RollingUpdateDeployment {
            max_surge: Some(IntOrString::String("100%".into())),
            max_unavailable: Some(IntOrString::Int(0)),
        }),
    });
    let marks = live
        .metadata
        .annotations
        .get_or_insert_with(Default::default);
    marks.remove(PREVIOUS_TEMPLATE);
    marks.remove(PROMOTED_BY);
    if let Some(by) = by {
        marks.insert(ROLLED_BACK_BY.into(), by.into());
    }
    live
}

/// Puts the stable Deployment back on `template` as fast as the cluster allows: the whole
/// previous version surges at once (no pod of the current one goes before a replacement is
/// ready), then the Deployment's own strategy is restored.
pub(super) async fn restore(
    plan: &Plan,
    io: &StepIo,
    stable: &Deployment,
    template: PodTemplateSpec,
    by: Option<&str>,
) -> Result<(), Error> {
    let strategy = stable.spec.as_ref().and_then(|s| s.strategy.clone());
    let api = plan.cluster.namespaced::<Deployment>();
    // The whole template is replaced (a merge would keep what the newer version added, such
    // as an init container), against the resourceVersion read; a 409 (the Deployment
    // controller wrote its status in between) reads it again.
    kinds::update(&api, &plan.name, |live| {
        let live = live.ok_or_else(|| Error::Disappeared {
            what: plan.describe(&plan.name),
        })?;
        Ok::<_, Error>(restored(live, template.clone(), by))
    })
    .await?;
    let rolled = plan.rolled_out(io, &plan.name, ROLLOUT_TIMEOUT).await;
    // The owner's strategy comes back whatever happened.
    let back = match &strategy {
        None => json!({ "spec": { "strategy": { "rollingUpdate": null } } }),
        Some(s) => json!({ "spec": { "strategy": { "type": s.type_,
            "rollingUpdate": s.rolling_update } } }),
    };
    kinds::merge(&api, &plan.name, &back).await?;
    rolled
}

/// `glidepath rollback SERVICE`: an unfinished canary or blue-green release on Deployment
/// `name` is aborted (traffic to stable first); otherwise the last promotion is reverted to
/// the version it replaced, which had passed its own gates. Needs only the cluster.
/// `who` is recorded on the Deployment with the time, so a run whose release this undoes
/// stops and says by whom.
pub async fn rollback_service(
    cluster: Cluster,
    name: &str,
    io: &StepIo,
    who: &str,
) -> Result<String, Error> {
    let (mut plan, stable) = Plan::from_cluster(cluster, name).await?;
    let by = rolled_back_by(who);
    // Which release is in progress shows in which second Deployment exists.
    for router in [plan.router, TrafficRouter::ActiveService] {
        plan.router = router;
        if deployment(&plan.cluster, &plan.canary_name())
            .await?
            .is_some()
        {
            return abort(&plan, io, Some(&by)).await;
        }
    }
    let template: PodTemplateSpec = annotation(&stable, PREVIOUS_TEMPLATE)
        .and_then(|t| serde_json::from_str(t).ok())
        .ok_or_else(|| Error::NothingToRollBack {
            name: name.to_owned(),
        })?;
    let change = change(name, &stable, &template);
    restore(&plan, io, &stable, template, Some(&by)).await?;
    Ok(change)
}

/// `NAME rolled back from 2.0.0 to 1.0.0`, from the live Deployment and the template it
/// goes back to.
fn change(name: &str, stable: &Deployment, template: &PodTemplateSpec) -> String {
    let from = deployment_version(stable).unwrap_or("the current version");
    let to = template_version(template).unwrap_or("the previous version");
    format!("{name} rolled back from {from} to {to}")
}

/// Undoes a plain deploy of Deployment `name` (one no release of glidepath's marked): its
/// template back to its previous revision's (the ReplicaSet `kubectl rollout undo` would
/// pick), as fast as the cluster allows, `who` marked on it. `Ok(None)` when the current
/// revision is its first: the deploy created it, so there is nothing earlier to return to.
pub async fn revert_revision(
    cluster: Cluster,
    name: &str,
    io: &StepIo,
    who: &str,
) -> Result<Option<String>, Error> {
    let (plan, stable) = Plan::from_cluster(cluster, name).await?;
    let Some((revision, template)) =
        crate::kube::workload::previous_revision(&plan.cluster, &stable).await?
    else {
        return Ok(None);
    };
    let change = change(name, &stable, &template);
    restore(&plan, io, &stable, template, Some(&rolled_back_by(who))).await?;
    Ok(Some(format!("{change} (revision {revision})")))
}

/// `WHO at TIME` (UTC, RFC 3339) for the rolled-back-by mark.
fn rolled_back_by(who: &str) -> String {
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    match now.format(&time::format_description::well_known::Rfc3339) {
        Ok(at) => format!("{who} at {at}"),
        Err(_) => who.to_owned(),
    }
}
