//! A release's start and its successful end, the same for both strategies: the analysis
//! set up, the stable Deployment read and marked; and the promotion that makes the new
//! version stable.

use k8s_openapi::api::apps::v1::Deployment;
use serde_json::{Value, json};

use super::analysis::Analyst;
use super::error::Error;
use super::plan::{Plan, declared_total, deployment_version, recorded_total, to_json};
use super::progress::Progress;
use super::{
    PREVIOUS_TEMPLATE, PROMOTED_BY, RELEASE, ROLLED_BACK_BY, ROLLOUT_TIMEOUT, STABLE_REPLICAS,
    fail, infra_failure,
};
use crate::kube::kinds;
use crate::kube::workload::{annotate, annotation};
use crate::pipeline::model::Analysis;
use crate::steps::{StepCtx, StepResult};

/// What a release starts from.
pub(super) struct Start {
    /// The analysis, when the step asks for one.
    pub analyst: Option<Analyst>,
    /// The live stable Deployment before the release changed anything.
    pub previous: Deployment,
    /// Its replica count before the release (kept across a resume).
    pub total: i32,
    /// Where a resumed release stood; the start for a new one.
    pub progress: Progress,
}

/// Sets up the analysis, applies the manifests the release carries besides its
/// Deployment, and reads the live stable Deployment and its replica count. `Err` ends the
/// step: with the first release rolled out directly (there is nothing to compare it with),
/// or with a failure.
pub(super) async fn begin(
    plan: &Plan,
    analysis: Option<&Analysis>,
    ctx: &StepCtx,
) -> Result<Start, StepResult> {
    // The analysis is set up first: a bad SLO file fails before anything changes.
    let mut analyst = analysis.map(|a| Analyst::new(a, ctx)).transpose()?;
    let live = plan.live_stable().await?;
    let resuming = live
        .as_ref()
        .is_some_and(|l| annotation(l, RELEASE).is_some());
    for o in &plan.others {
        // A release already in progress (a resumed run) keeps the route's current split.
        if resuming && o["kind"] == "HTTPRoute" {
            continue;
        }
        if let Err(e) = plan.cluster.apply(o, false).await {
            return Err(fail(format!("apply failed: {e}")));
        }
    }
    let Some(previous) = live else {
        return Err(first_release(plan, ctx).await);
    };
    if let Some(a) = analyst.as_mut() {
        a.stable_version = deployment_version(&previous).map(str::to_owned);
        if plan.baseline.is_none() {
            a.compare_with_stable();
        }
    }
    let total = recorded_total(&previous).unwrap_or_else(|| declared_total(&previous));
    let progress = if resuming {
        Progress::recorded(&previous).unwrap_or_default()
    } else {
        Progress::default()
    };
    if resuming {
        ctx.io.log(
            "release",
            format!("resuming the release at its step {}", progress.step + 1),
        );
    }
    // Remember the stable size before anything changes, so a rollback after a crash knows it.
    let (replicas, info) = (total.to_string(), plan.info_at(progress).to_string());
    // An earlier incident's rolled-back-by mark would misname who stops this release.
    let marks = [
        (STABLE_REPLICAS, Some(&*replicas)),
        (RELEASE, Some(&*info)),
        (ROLLED_BACK_BY, None),
    ];
    annotate(&plan.cluster, &plan.name, &marks)
        .await
        .map_err(infra_failure)?;
    Ok(Start {
        analyst,
        previous,
        total,
        progress,
    })
}

/// No stable version yet: the Deployment is rolled out as it is.
async fn first_release(plan: &Plan, ctx: &StepCtx) -> StepResult {
    if let Err(e) = plan.cluster.apply(&plan.deployment, false).await {
        return fail(format!("apply failed: {e}"));
    }
    match plan.rolled_out(&ctx.io, &plan.name, ROLLOUT_TIMEOUT).await {
        Ok(()) => StepResult::passed(format!(
            "first release of {}: no stable version to compare with, rolled out directly",
            plan.name
        )),
        Err(e) => fail(e),
    }
}

/// The new version becomes stable (`total` replicas, the template it replaced kept for a
/// later rollback); the second Deployment goes.
pub(super) async fn promote(
    plan: &Plan,
    ctx: &StepCtx,
    previous: &Deployment,
    total: i32,
) -> Result<(), Error> {
    plan.router.hand_over(plan, &ctx.io, total).await?;
    // The baseline has no traffic left (the route sends it all to the canary; with the
    // replicas router the stable Deployment gets its full size below).
    if plan.remove_baseline().await? {
        ctx.io.log("traffic", "baseline removed");
    }
    // The user's manifest, applied as written (JSON keeps every field it carries).
    let mut next = plan.deployment.clone();
    next["spec"]["replicas"] = json!(total);
    let template = match previous.spec.as_ref() {
        Some(s) => to_json(&plan.describe(&plan.name), &s.template)?,
        None => json!({}),
    };
    next["metadata"]["annotations"][PREVIOUS_TEMPLATE] = Value::String(template.to_string());
    next["metadata"]["annotations"][PROMOTED_BY] =
        Value::String(format!("{}/{}", ctx.run, ctx.stage));
    plan.cluster.apply(&next, false).await?;
    plan.rolled_out(&ctx.io, &plan.name, ROLLOUT_TIMEOUT)
        .await?;
    plan.router.settle(plan).await?;
    kinds::delete(
        &plan.cluster.namespaced::<Deployment>(),
        &plan.canary_name(),
    )
    .await?;
    plan.router.drop_service(plan).await?;
    plan.unmark(None).await?;
    let note = format!(
        "promoted: {} runs the new version on {total} replicas",
        plan.name
    );
    ctx.io.log("traffic", note.clone());
    plan.report_settled(&ctx.io, true, note).await;
    Ok(())
}
