//! Blue-green: the new colour comes up beside the old behind the preview Service, the
//! analysis runs against it, the active Service switches, and the old colour stays for the
//! scale-down delay so a rollback is one selector change.

use std::time::Duration;

use super::analysis::Analyst;
use super::lifecycle::{Start, begin, promote};
use super::plan::Plan;
use super::rollback::rolled_back;
use super::{ROLLOUT_TIMEOUT, Setback, fail};
use crate::events::{Evidence, Verdict};
use crate::pipeline::model::{BlueGreen, PauseStep};
use crate::steps::{Phase, StepCtx, StepResult, pause};
use crate::units::Span;

/// Runs a blue-green release.
pub(super) async fn run(plan: &Plan, bg: &BlueGreen, ctx: &mut StepCtx) -> StepResult {
    let Start {
        analyst,
        previous,
        total,
    } = match begin(plan, bg.analysis.as_ref(), ctx).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Err(r) = plan.router.prepare(plan, &previous).await {
        return r;
    }
    if let Err(setback) = switch(plan, bg, analyst.as_ref(), ctx, total).await {
        return rolled_back(plan, ctx, setback).await;
    }
    match promote(plan, ctx, &previous, total).await {
        Ok(()) => StepResult::judged(
            Verdict::Pass,
            format!("blue-green release of {} switched and finished", plan.name),
            vec![Evidence::new("blue-green", Verdict::Pass, "switched")],
        ),
        Err(e) => fail(format!("finishing the switch failed: {e}")),
    }
}

/// The new colour up with `total` pods, judged, switched to, and the old colour kept for
/// the scale-down delay.
async fn switch(
    plan: &Plan,
    bg: &BlueGreen,
    analyst: Option<&Analyst>,
    ctx: &mut StepCtx,
    total: i32,
) -> Result<(), Setback> {
    plan.cluster
        .apply(&plan.canary(total), false)
        .await
        .map_err(Setback::broken)?;
    plan.rolled_out(&ctx.io, &plan.canary_name(), ROLLOUT_TIMEOUT)
        .await
        .map_err(Setback::broken)?;
    ctx.io.log(
        "traffic",
        format!(
            "preview: {total} pods of the new version behind Service {}",
            plan.canary_service
        ),
    );
    if let Some(a) = analyst {
        a.pre_promotion(&ctx.io).await.map_err(Setback::judged)?;
    }
    plan.still_ours().await.map_err(Setback::broken)?;
    let note = plan
        .router
        .set_weight(plan, &ctx.io, 100, total)
        .await
        .map_err(Setback::broken)?;
    ctx.io.log("traffic", note.clone());
    plan.report_traffic(&ctx.io, 100, note).await;
    ctx.io
        .set_phase(Phase::Running, "switched; keeping the old colour");
    let delay = bg.scale_down_delay.unwrap_or(Span(Duration::from_secs(30)));
    let r = pause::run(
        &PauseStep {
            duration: Some(delay),
        },
        ctx,
    )
    .await;
    ctx.io
        .log("release", format!("old colour kept: {}", r.summary));
    Ok(())
}
