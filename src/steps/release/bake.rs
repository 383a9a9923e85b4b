//! The bake: after a promotion the analysis goes on for a while, and a failure within it
//! puts the previous version back the way `glidepath rollback` does. A rollback from
//! outside the run (the promotion mark gone) stops the bake without touching anything.

use std::time::Duration;

use k8s_openapi::api::core::v1::PodTemplateSpec;

use super::analysis::Analyst;
use super::error::Error;
use super::plan::{Claim, Plan, template_version};
use super::rollback::{restore, rolled_back};
use super::{Cause, PREVIOUS_TEMPLATE, Setback};
use crate::events::{Evidence, Verdict};
use crate::kube::workload::{annotation, deployment};
use crate::steps::{StepCtx, StepResult};
use crate::units::format_duration;

/// Bakes the promotion this run made for `duration`; `promoted` is the promotion's summary
/// and evidence, which the step's result keeps.
pub(super) async fn bake(
    plan: &Plan,
    ctx: &mut StepCtx,
    analyst: &Analyst,
    duration: Duration,
    promoted: (String, Vec<Evidence>),
) -> StepResult {
    let (summary, mut evidence) = promoted;
    let mark = format!("{}/{}", ctx.run, ctx.stage);
    let outcome = tokio::select! {
        r = analyst.bake(ctx, duration) => r.map_err(Setback::judged),
        e = plan.lost(Claim::Promotion(&mark)) => Err(Setback::from(e)),
    };
    let setback = match outcome {
        Ok(cleared) => {
            let baked = format!("{} baked: {}", format_duration(duration), cleared.why);
            ctx.io.log("release", baked.clone());
            evidence.push(Evidence::new("bake", cleared.verdict, baked.clone()));
            return StepResult::judged(cleared.verdict, format!("{summary}; {baked}"), evidence);
        }
        Err(s) => s,
    };
    if setback.cause == Cause::Outside {
        let mut r = rolled_back(plan, ctx, setback).await;
        evidence.append(&mut r.evidence);
        r.evidence = evidence;
        return r;
    }
    let why = format!("the bake failed: {}", setback.why);
    evidence.extend(setback.evidence);
    ctx.io.log("release", format!("{why}; rolling back"));
    match revert(plan, ctx).await {
        Ok(undone) => {
            evidence.push(Evidence::new("rollback", Verdict::Pass, undone.clone()));
            StepResult::judged(
                Verdict::Fail,
                format!("{summary}; {why}; rolled back: {undone}"),
                evidence,
            )
        }
        Err(e) => {
            let undone = format!("rollback failed too: {e}");
            evidence.push(Evidence::new("rollback", Verdict::Error, undone.clone()));
            StepResult {
                infra_error: true,
                ..StepResult::judged(Verdict::Fail, format!("{why}; {undone}"), evidence)
            }
        }
    }
}

/// The promotion undone: the stable Deployment back on the template it replaced.
async fn revert(plan: &Plan, ctx: &StepCtx) -> Result<String, Error> {
    let stable = deployment(&plan.cluster, &plan.name)
        .await?
        .ok_or_else(|| Error::Disappeared {
            what: plan.describe(&plan.name),
        })?;
    let template: PodTemplateSpec = annotation(&stable, PREVIOUS_TEMPLATE)
        .and_then(|t| serde_json::from_str(t).ok())
        .ok_or_else(|| Error::NothingToRollBack {
            name: plan.name.clone(),
        })?;
    let to = template_version(&template)
        .unwrap_or("the previous version")
        .to_owned();
    restore(plan, &ctx.io, &stable, template, None).await?;
    let note = format!("{} is back on {to}", plan.name);
    ctx.io.log("traffic", note.clone());
    plan.report_settled(&ctx.io, false, note.clone()).await;
    Ok(note)
}
