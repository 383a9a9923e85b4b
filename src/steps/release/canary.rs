//! The canary strategy: traffic moves to the new version step by step (weights and
//! pauses) while the analysis watches; at the last weight, fresh evaluations judge the
//! canary and only a clear verdict promotes; a bake may follow. Any failure on the way
//! rolls back; a rollback from outside the run stops it where it is.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use super::analysis::{Cleared, Part};
use super::bake::bake;
use super::error::Error;
use super::lifecycle::{Start, begin, promote};
use super::plan::{Claim, Plan, canary_replicas};
use super::progress::{Progress, now_ms};
use super::rollback::rolled_back;
use super::{ROLLOUT_TIMEOUT, Setback};
use crate::events::{Evidence, Verdict};
use crate::pipeline::model::{Canary, PauseStep};
use crate::steps::{Phase, StepCtx, StepResult, pause};
use crate::units::Span;

/// Runs a canary release.
pub(super) async fn run(plan: &Plan, c: &Canary, ctx: &mut StepCtx) -> StepResult {
    let Start {
        analyst,
        previous,
        total,
        progress,
    } = match begin(plan, c.analysis.as_ref(), ctx).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Err(r) = plan.router.prepare(plan, &previous).await {
        return r;
    }
    let io = ctx.io.clone();
    let desired = AtomicU8::new(0);
    // Nothing is compared with the cluster until the first step has set its traffic: a
    // resumed run may find the step it was killed in half done.
    let moving = AtomicBool::new(true);
    let steps = traffic_steps(
        plan,
        c,
        ctx,
        (total, progress),
        (&desired, &moving),
        analyst.as_ref(),
    );
    let watch = async {
        match &analyst {
            Some(a) => a.watch(&io).await,
            None => std::future::pending().await,
        }
    };
    // Traffic changed from outside (a GitOps sync resetting weights or replicas) ends
    // the release whenever it is seen: while the steps run and while the last weight is
    // judged.
    let outside = |change: super::outside::OutsideChange| Setback {
        evidence: vec![change.evidence()],
        ..Setback::broken(change.why())
    };
    let outcome = tokio::select! {
        r = steps => r.map_err(Setback::from),
        refusal = watch => Err(Setback::judged(refusal)),
        e = plan.lost(Claim::Release) => Err(Setback::from(e)),
        change = plan.follow_traffic(&io, (&desired, total), &moving) => Err(outside(change)),
    };
    let cleared = match outcome {
        Ok(()) => match &analyst {
            // At the last weight, judged once more: fresh evidence, a clear verdict.
            Some(a) => tokio::select! {
                r = a.judge(ctx, super::tally::CANARY_FRESH, Part::Judge) => r.map(Some).map_err(Setback::judged),
                e = plan.lost(Claim::Release) => Err(Setback::from(e)),
                change = plan.follow_traffic(&io, (&desired, total), &moving) => Err(outside(change)),
            },
            None => Ok(None),
        },
        Err(setback) => Err(setback),
    };
    let cleared = match cleared {
        Ok(c) => c,
        Err(setback) => return rolled_back(plan, ctx, setback).await,
    };
    let promoted = async {
        plan.holds(Claim::Release).await?;
        promote(plan, ctx, &previous, total).await
    };
    if let Err(e) = promoted.await {
        let setback = match e {
            Error::RolledBackOutside { .. } => Setback::from(e),
            e => Setback::broken(format!("promotion failed: {e}")),
        };
        return rolled_back(plan, ctx, setback).await;
    }
    let evidence = promoted_evidence(cleared.as_ref());
    let summary = format!(
        "canary of {} promoted after {} steps",
        plan.name,
        c.steps.len()
    );
    // Promoted on a warning (approved, or allowed by promoteOn): the step says so.
    let verdict = cleared.as_ref().map_or(Verdict::Pass, |c| c.verdict);
    match (&analyst, &c.bake) {
        (Some(a), Some(b)) => bake(plan, ctx, a, b.value.get(), (summary, evidence)).await,
        _ => StepResult::judged(verdict, summary, evidence),
    }
}

/// What cleared the promotion, as evidence.
fn promoted_evidence(cleared: Option<&Cleared>) -> Vec<Evidence> {
    match cleared {
        Some(c) => {
            let mut out = vec![Evidence::new(
                "canary",
                c.verdict,
                format!("promoted: {}", c.why),
            )];
            // The judgement that cleared it: each metric's comparison, for the reports.
            out.extend(
                c.evidence
                    .iter()
                    .filter(|e| e.comparison.is_some())
                    .cloned(),
            );
            out
        }
        None => vec![Evidence::new(
            "canary",
            Verdict::Pass,
            "promoted (no analysis)",
        )],
    }
}

/// The canary's steps in order from where `from` says the release stands (a resumed run
/// carries out the step it was in, a pause for the time it had left, and never repeats
/// the ones before): weights move traffic, pauses wait. Each step is recorded on the
/// stable Deployment before it begins. `desired` and `moving` tell the traffic follower
/// what was asked for and when a change is under way; the analyst learns when traffic
/// first reached canary and baseline.
async fn traffic_steps(
    plan: &Plan,
    c: &Canary,
    ctx: &mut StepCtx,
    (total, from): (i32, Progress),
    (desired, moving): (&AtomicU8, &AtomicBool),
    analyst: Option<&super::analysis::Analyst>,
) -> Result<(), Error> {
    let interrupted_at = ctx.resumed.as_ref().and_then(|r| r.interrupted_at_ms);
    // The weight the canary had before the step resumed at.
    let before = c.steps[..from.step.min(c.steps.len())]
        .iter()
        .filter_map(|s| s.value.weight)
        .next_back();
    if let Some(w) = before {
        desired.store(w, Ordering::SeqCst);
    }
    for (i, s) in c.steps.iter().enumerate().skip(from.step) {
        if let Some(w) = s.value.weight {
            plan.record(Progress {
                step: i,
                pause_started_ms: None,
            })
            .await?;
            moving.store(true, Ordering::SeqCst);
            desired.store(w, Ordering::SeqCst);
            let r = set_weight(plan, ctx, w, total).await;
            moving.store(false, Ordering::SeqCst);
            r?;
            if let (Some(a), true) = (analyst, w > 0) {
                a.traffic_moved();
            }
        } else if let Some(p) = &s.value.pause {
            // The traffic of the step before holds (set by this run, or before a resume).
            moving.store(false, Ordering::SeqCst);
            let resumed = (i == from.step).then_some(from.pause_started_ms).flatten();
            let at = Progress {
                step: i,
                pause_started_ms: Some(resumed.unwrap_or_else(now_ms)),
            };
            plan.record(at).await?;
            let left = PauseStep {
                duration: p.duration.map(|d| match resumed {
                    Some(_) => Span(at.pause_left(d.get(), interrupted_at)),
                    None => d,
                }),
            };
            let r = pause::run(&left, ctx).await;
            ctx.io.log("release", r.summary);
            ctx.io.set_phase(Phase::Running, "canary running");
        }
    }
    plan.record(Progress {
        step: c.steps.len(),
        pause_started_ms: None,
    })
    .await
}

/// Moves `weight`% of traffic to the canary, out of `total` stable replicas: the canary
/// Deployment sized and rolled out first, then the router.
async fn set_weight(plan: &Plan, ctx: &StepCtx, weight: u8, total: i32) -> Result<(), Error> {
    plan.cluster
        .apply(&plan.canary(canary_replicas(total, weight)), false)
        .await?;
    plan.rolled_out(&ctx.io, &plan.canary_name(), ROLLOUT_TIMEOUT)
        .await?;
    plan.ensure_baseline(&ctx.io, canary_replicas(total, weight))
        .await?;
    let note = plan.router.set_weight(plan, &ctx.io, weight, total).await?;
    ctx.io.log("traffic", format!("canary {weight}%: {note}"));
    plan.report_traffic(&ctx.io, weight, note).await;
    ctx.io
        .set_phase(Phase::Running, format!("canary {weight}%"));
    Ok(())
}
