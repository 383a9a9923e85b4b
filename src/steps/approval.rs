//! `approval`: Keptn's rule. The previous result decides: pass and warning follow their
//! mode (automatic or manual); a failed previous result is declined without asking.

use super::{Phase, Signal, StepCtx, StepResult, next_signal};
use crate::events::{Evidence, Verdict};
use crate::pipeline::model::{ApprovalMode, ApprovalStep};

/// Runs an approval step.
pub async fn run(a: &ApprovalStep, ctx: &mut StepCtx) -> StepResult {
    // The previous result: the latest step of this stage that produced an outcome.
    let previous = ctx
        .prior
        .iter()
        .rev()
        .find(|p| p.stage == ctx.stage && !matches!(p.kind.as_str(), "approval" | "pause"));
    let (verdict, from) = match previous {
        Some(p) => (
            p.verdict
                .unwrap_or_else(|| super::gate::verdict_of(p.status)),
            format!("{}/{}", p.stage, p.step),
        ),
        None => (Verdict::Pass, "no earlier step in this stage".to_owned()),
    };
    let evidence = vec![Evidence::new(
        format!("previous result ({from})"),
        verdict,
        verdict.word(),
    )];
    let mode = match verdict {
        Verdict::Pass => a.pass,
        Verdict::Warning => a.warning,
        Verdict::Fail | Verdict::Error => {
            return StepResult::judged(
                Verdict::Fail,
                format!("declined automatically: the previous result ({from}) is {verdict}"),
                evidence,
            );
        }
    };
    if mode == ApprovalMode::Automatic {
        return StepResult::judged(
            Verdict::Pass,
            format!("approved automatically (previous result: {verdict})"),
            evidence,
        );
    }
    if ctx.auto_approve {
        return StepResult::judged(
            Verdict::Pass,
            format!("approved by --auto-approve (previous result: {verdict})"),
            evidence,
        );
    }
    let message = match &a.message {
        Some(m) => format!("{m} (previous result: {verdict}); approve or reject"),
        None => format!("waiting for approval (previous result: {verdict}); approve or reject"),
    };
    ctx.io.set_phase(Phase::WaitingForApproval, message);
    loop {
        match next_signal(&mut ctx.signals).await {
            Signal::Approve(who) => {
                ctx.io
                    .set_phase(Phase::Running, format!("approved by {who}"));
                return StepResult::judged(Verdict::Pass, format!("approved by {who}"), evidence);
            }
            Signal::Reject(who) => {
                return StepResult::judged(Verdict::Fail, format!("declined by {who}"), evidence);
            }
            Signal::Continue(_) => {}
        }
    }
}
