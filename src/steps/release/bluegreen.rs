//! Blue-green: the new colour comes up beside the old behind the preview Service, the
//! analysis judges it (at least three evaluations, the latest clear), the active Service
//! switches, and the old colour stays for the scale-down delay so a rollback is one
//! selector change. A bake may follow the promotion; a rollback from outside the run
//! stops it where it is.

use std::time::Duration;

use super::analysis::{Analyst, Cleared, Part};
use super::bake::bake;
use super::error::Error;
use super::lifecycle::{Start, begin, promote};
use super::plan::{Claim, Plan};
use super::progress::{Progress, SWITCHED, now_ms};
use super::rollback::rolled_back;
use super::{ROLLOUT_TIMEOUT, Setback, fail};
use crate::events::{Evidence, Verdict};
use crate::pipeline::model::{BlueGreen, PauseStep};
use crate::steps::{Phase, StepCtx, StepResult, pause};
use crate::units::Span;

/// Evaluations of the new colour before the switch, at least.
const JUDGED_BEFORE_SWITCH: u32 = super::tally::BLUE_GREEN_FRESH;

/// Runs a blue-green release.
pub(super) async fn run(plan: &Plan, bg: &BlueGreen, ctx: &mut StepCtx) -> StepResult {
    let Start {
        analyst,
        previous,
        total,
        progress,
    } = match begin(plan, bg.analysis.as_ref(), ctx).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Err(r) = plan.router.prepare(plan, &previous).await {
        return r;
    }
    let cleared = match switch(plan, bg, analyst.as_ref(), ctx, (total, progress)).await {
        Ok(c) => c,
        Err(setback) => return rolled_back(plan, ctx, setback).await,
    };
    let promoted = async {
        plan.holds(Claim::Release).await?;
        promote(plan, ctx, &previous, total).await
    };
    match promoted.await {
        Ok(()) => {}
        Err(e @ Error::RolledBackOutside { .. }) => {
            return rolled_back(plan, ctx, Setback::from(e)).await;
        }
        Err(e) => return fail(format!("finishing the switch failed: {e}")),
    }
    let summary = format!("blue-green release of {} switched and finished", plan.name);
    let mut evidence = vec![match &cleared {
        Some(c) => Evidence::new("blue-green", c.verdict, format!("switched: {}", c.why)),
        None => Evidence::new("blue-green", Verdict::Pass, "switched (no analysis)"),
    }];
    // The statistical judge's table, when it cleared the switch.
    if let Some(c) = &cleared {
        evidence.extend(
            c.evidence
                .iter()
                .filter(|e| e.comparison.is_some())
                .cloned(),
        );
    }
    let verdict = cleared.as_ref().map_or(Verdict::Pass, |c| c.verdict);
    match (&analyst, &bg.bake) {
        (Some(a), Some(b)) => bake(plan, ctx, a, b.value.get(), (summary, evidence)).await,
        _ => StepResult::judged(verdict, summary, evidence),
    }
}

/// The new colour up with `total` pods, judged, switched to, and the old colour kept for
/// the scale-down delay. Returns what cleared the switch, when an analysis judged it. A
/// resumed release that had switched is not judged again; its delay goes on for the time
/// it had left.
async fn switch(
    plan: &Plan,
    bg: &BlueGreen,
    analyst: Option<&Analyst>,
    ctx: &mut StepCtx,
    (total, from): (i32, Progress),
) -> Result<Option<Cleared>, Setback> {
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
    let judging = from.step < SWITCHED;
    let cleared = match analyst {
        Some(a) if judging => Some(tokio::select! {
            r = a.judge(ctx, JUDGED_BEFORE_SWITCH, Part::Judge) => r.map_err(Setback::judged)?,
            e = plan.lost(Claim::Release) => return Err(Setback::from(e)),
        }),
        _ => None,
    };
    let resumed = (!judging).then_some(from.pause_started_ms).flatten();
    let at = Progress {
        step: SWITCHED,
        pause_started_ms: Some(resumed.unwrap_or_else(now_ms)),
    };
    plan.record(at).await?;
    let note = plan
        .router
        .set_weight(plan, &ctx.io, 100, total)
        .await
        .map_err(Setback::broken)?;
    ctx.io.log("traffic", note.clone());
    plan.report_traffic(&ctx.io, 100, note).await;
    ctx.io
        .set_phase(Phase::Running, "switched; keeping the old colour");
    let delay = bg
        .scale_down_delay
        .unwrap_or(Span(Duration::from_secs(30)))
        .get();
    let interrupted_at = ctx.resumed.as_ref().and_then(|r| r.interrupted_at_ms);
    let delay = PauseStep {
        duration: Some(Span(match resumed {
            Some(_) => at.pause_left(delay, interrupted_at),
            None => delay,
        })),
    };
    let kept = pause::run(&delay, ctx);
    let r = tokio::select! {
        r = kept => r,
        e = plan.lost(Claim::Release) => return Err(Setback::from(e)),
    };
    ctx.io
        .log("release", format!("old colour kept: {}", r.summary));
    Ok(cleared)
}
