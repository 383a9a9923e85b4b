//! `release`: a canary whose traffic steps the operator can pause, promote or roll back
//! while an SLO analysis runs underneath, over two routers:
//!
//! - `replicas`: a `NAME-canary` Deployment beside the stable one; the Service selects both,
//!   so traffic follows the ratio of ready replicas (canary = weight% of the stable count,
//!   stable scaled down by as many);
//! - `gateway-api`: the canary gets its own Service and the HTTPRoute's `backendRefs`
//!   weights split traffic; the stable Service is pinned to the stable pods' template hash
//!   for the duration, so it never reaches canary pods.
//!
//! Blue-green brings the new colour up beside the old behind a preview Service and switches
//! the active Service's selector.
//!
//! Promotion rolls the new version out on the stable Deployment, moves all traffic back to
//! it and removes the canary. Rollback (a failed analysis, the operator, or a later failure
//! with `onFailure: rollback`) moves traffic to stable first, then removes the canary; it
//! reads only the cluster, so it also works after a crash. Everything glidepath changes is
//! marked with annotations naming the run.
//!
//! Files: `plan` (what the release works on), `routers` (how traffic moves, one interface
//! for all three routers), `observe` (what the cluster shows of traffic), `outside` (traffic
//! changed by another writer mid-release, and who owns the field), `analysis` (the
//! SLO evaluations and the promotion's judgement), `lifecycle` (start and promotion,
//! shared by both strategies), `bake` (the analysis after a promotion),
//! `canary` and `bluegreen` (the strategies), `progress` (where a release stands, for a
//! resume), `rollback` (putting stable back), `error` (why a release failed, as kinds), `tally`
//! (the promotion rules as pure decisions, shared with `glidepath replay`).

mod analysis;
mod bake;
mod baseline;
mod bluegreen;
mod canary;
mod error;
pub mod judgement;
mod lifecycle;
mod observe;
mod outside;
mod plan;
mod progress;
mod rollback;
mod routers;
mod statistical;
pub mod tally;

use std::fmt::Display;
use std::time::Duration;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::Value;

use super::{StepCtx, StepResult};
use crate::kube::workload::{annotation, deployment};
use crate::pipeline::model::ReleaseStep;
use plan::Plan;

pub use error::Error;
pub use rollback::{revert_revision, rollback_service};

/// The label that tells canary pods apart.
pub const TRACK: &str = "glidepath.dev/track";
/// On the stable Deployment during a canary: its replica count before the canary began.
pub const STABLE_REPLICAS: &str = "glidepath.dev/stable-replicas";
/// On the stable Deployment during a release: how traffic is split, so a rollback without
/// the pipeline file (`glidepath rollback`) knows what to undo.
pub const RELEASE: &str = "glidepath.dev/release";
/// On the stable Deployment after a promotion: the pod template it replaced.
pub const PREVIOUS_TEMPLATE: &str = "glidepath.dev/previous-template";
/// On the stable Deployment after a promotion: `RUN/STAGE` that promoted it.
pub const PROMOTED_BY: &str = "glidepath.dev/promoted-by";
/// On the stable Deployment after `glidepath rollback`: `USER@HOST at TIME`, so a run whose
/// release was rolled back under it can say by whom.
pub const ROLLED_BACK_BY: &str = "glidepath.dev/rolled-back-by";
const ROLLOUT_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs a release step.
pub async fn run(step: &ReleaseStep, ctx: &mut StepCtx) -> StepResult {
    let plan = match Plan::new(step, ctx).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if ctx.resumed.is_some()
        && let Some(r) = after_promotion(&plan, step, ctx).await
    {
        return r;
    }
    match &step.canary {
        Some(c) => canary::run(&plan, c, ctx).await,
        None => match &step.blue_green {
            Some(bg) => bluegreen::run(&plan, bg, ctx).await,
            None => fail("a release is exactly one of `canary` or `blueGreen`"),
        },
    }
}

/// A resumed run whose release this run had already promoted: only its bake is left (run
/// again in full), or nothing. `None` when the release had not been promoted.
async fn after_promotion(plan: &Plan, step: &ReleaseStep, ctx: &mut StepCtx) -> Option<StepResult> {
    let stable = match plan.live_stable().await {
        Ok(s) => s?,
        Err(r) => return Some(r),
    };
    let mark = format!("{}/{}", ctx.run, ctx.stage);
    if annotation(&stable, PROMOTED_BY) != Some(mark.as_str())
        || annotation(&stable, RELEASE).is_some()
    {
        return None;
    }
    let promoted = format!(
        "{} was promoted by this run before it was interrupted",
        plan.name
    );
    // A promotion interrupted after its baseline's removal began leaves none behind.
    if let Err(e) = plan.remove_baseline().await {
        return Some(infra_failure(e));
    }
    ctx.io.log("release", promoted.clone());
    let (analysis, bake) = match (&step.canary, &step.blue_green) {
        (Some(c), _) => (c.analysis.as_ref(), c.bake.as_ref()),
        (_, Some(bg)) => (bg.analysis.as_ref(), bg.bake.as_ref()),
        _ => (None, None),
    };
    let evidence = vec![crate::events::Evidence::new(
        "release",
        crate::events::Verdict::Pass,
        promoted.clone(),
    )];
    Some(match (analysis, bake) {
        (Some(a), Some(b)) => match analysis::Analyst::new(a, ctx) {
            Ok(analyst) => {
                bake::bake(plan, ctx, &analyst, b.value.get(), (promoted, evidence)).await
            }
            Err(r) => r,
        },
        _ => StepResult::judged(crate::events::Verdict::Pass, promoted, evidence),
    })
}

/// Undoes a release when its stage is rolled back: an unfinished canary is aborted; a
/// promotion this run made is reverted to the template it replaced.
pub async fn rollback(step: &ReleaseStep, ctx: &mut StepCtx) -> Option<StepResult> {
    let plan = match Plan::new(step, ctx).await {
        Ok(p) => p,
        Err(r) => return Some(r),
    };
    match deployment(&plan.cluster, &plan.canary_name()).await {
        Ok(Some(_)) => {
            return Some(match rollback::abort(&plan, &ctx.io, None).await {
                Ok(s) => StepResult::passed(s),
                Err(e) => fail(e),
            });
        }
        Ok(None) => {}
        Err(e) => return Some(infra_failure(e)),
    }
    let stable = match plan.live_stable().await {
        Ok(Some(s)) => s,
        Ok(None) => return None,
        Err(r) => return Some(r),
    };
    if annotation(&stable, PROMOTED_BY) != Some(format!("{}/{}", ctx.run, ctx.stage).as_str()) {
        return None;
    }
    let template: PodTemplateSpec =
        annotation(&stable, PREVIOUS_TEMPLATE).and_then(|t| serde_json::from_str(t).ok())?;
    Some(
        match rollback::restore(&plan, &ctx.io, &stable, template, None).await {
            Ok(()) => StepResult::passed(format!(
                "{} restored to the version before this run",
                plan.name
            )),
            Err(e) => fail(e),
        },
    )
}

/// Why a release stopped short: the reason, the evidence, and what stopped it.
struct Setback {
    why: String,
    evidence: Vec<crate::events::Evidence>,
    cause: Cause,
}

/// What stopped a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    /// A request or a rollout failed: an infrastructure error; the release is rolled back.
    Broken,
    /// The analysis (or the operator, judging it) refused the new version; rolled back.
    Judged,
    /// Someone else rolled the release back: nothing more is touched.
    Outside,
}

impl Setback {
    /// A request or a rollout failed.
    fn broken(why: impl Display) -> Self {
        Setback {
            why: why.to_string(),
            evidence: Vec::new(),
            cause: Cause::Broken,
        }
    }

    /// The analysis refused the new version.
    fn judged((why, evidence): analysis::Refusal) -> Self {
        Setback {
            why,
            evidence,
            cause: Cause::Judged,
        }
    }
}

impl From<Error> for Setback {
    fn from(e: Error) -> Self {
        let cause = match e {
            Error::RolledBackOutside { .. } => Cause::Outside,
            _ => Cause::Broken,
        };
        Setback {
            cause,
            ..Setback::broken(e)
        }
    }
}

/// A metadata field of a manifest, `""` when absent.
fn meta<'a>(o: &'a Value, field: &str) -> &'a str {
    o.pointer(&format!("/metadata/{field}"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The step failed; `summary` is what the operator reads.
fn fail(summary: impl Display) -> StepResult {
    StepResult::failed(summary.to_string())
}

/// A failure of the platform (the cluster), not of the release.
fn infra_failure(e: impl Display) -> StepResult {
    StepResult {
        infra_error: true,
        ..StepResult::failed(e.to_string())
    }
}
