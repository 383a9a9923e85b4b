//! The canary strategy: traffic moves to the new version step by step (weights and
//! pauses) while the analysis watches; at the end, one passing evaluation at least, then
//! promotion. Any failure on the way rolls back.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use super::error::Error;
use super::lifecycle::{Start, begin, promote};
use super::plan::{Plan, canary_replicas};
use super::rollback::rolled_back;
use super::{ROLLOUT_TIMEOUT, Setback};
use crate::events::{Evidence, Verdict};
use crate::pipeline::model::Canary;
use crate::steps::{Phase, StepCtx, StepResult, pause};

/// Runs a canary release.
pub(super) async fn run(plan: &Plan, c: &Canary, ctx: &mut StepCtx) -> StepResult {
    let Start {
        analyst,
        previous,
        total,
    } = match begin(plan, c.analysis.as_ref(), ctx).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Err(r) = plan.router.prepare(plan, &previous).await {
        return r;
    }
    let io = ctx.io.clone();
    let desired = AtomicU8::new(0);
    let moving = AtomicBool::new(false);
    let steps = traffic_steps(plan, c, ctx, total, &desired, &moving);
    let watch = async {
        match &analyst {
            Some(a) => a.watch(&io).await,
            None => std::future::pending().await,
        }
    };
    let mut outcome = tokio::select! {
        r = steps => r.map_err(Setback::broken),
        Err(refusal) = watch => Err(Setback::judged(refusal)),
        () = plan.follow_traffic(&io, &desired, &moving) => unreachable!("following traffic never ends"),
    };
    if outcome.is_ok()
        && let Some(a) = &analyst
    {
        outcome = a.at_least_once(&ctx.io).await.map_err(Setback::judged);
    }
    if let Err(setback) = outcome {
        return rolled_back(plan, ctx, setback).await;
    }
    let promoted = async {
        plan.still_ours().await?;
        promote(plan, ctx, &previous, total).await
    };
    match promoted.await {
        Ok(()) => StepResult::judged(
            Verdict::Pass,
            format!(
                "canary of {} promoted after {} steps",
                plan.name,
                c.steps.len()
            ),
            vec![Evidence::new("canary", Verdict::Pass, "promoted")],
        ),
        Err(e) => rolled_back(plan, ctx, Setback::broken(format!("promotion failed: {e}"))).await,
    }
}

/// The canary's steps in order: weights move traffic, pauses wait. `desired` and `moving`
/// tell the traffic follower what was asked for and when a change is under way.
async fn traffic_steps(
    plan: &Plan,
    c: &Canary,
    ctx: &mut StepCtx,
    total: i32,
    desired: &AtomicU8,
    moving: &AtomicBool,
) -> Result<(), Error> {
    for s in &c.steps {
        if let Some(w) = s.value.weight {
            plan.still_ours().await?;
            moving.store(true, Ordering::SeqCst);
            desired.store(w, Ordering::SeqCst);
            let r = set_weight(plan, ctx, w, total).await;
            moving.store(false, Ordering::SeqCst);
            r?;
        } else if let Some(p) = &s.value.pause {
            let r = pause::run(p, ctx).await;
            ctx.io.log("release", r.summary);
            ctx.io.set_phase(Phase::Running, "canary running");
        }
    }
    Ok(())
}

/// Moves `weight`% of traffic to the canary, out of `total` stable replicas: the canary
/// Deployment sized and rolled out first, then the router.
async fn set_weight(plan: &Plan, ctx: &StepCtx, weight: u8, total: i32) -> Result<(), Error> {
    plan.cluster
        .apply(&plan.canary(canary_replicas(total, weight)), false)
        .await?;
    plan.rolled_out(&ctx.io, &plan.canary_name(), ROLLOUT_TIMEOUT)
        .await?;
    let note = plan.router.set_weight(plan, &ctx.io, weight, total).await?;
    ctx.io.log("traffic", format!("canary {weight}%: {note}"));
    plan.report_traffic(&ctx.io, weight, note).await;
    ctx.io
        .set_phase(Phase::Running, format!("canary {weight}%"));
    Ok(())
}
