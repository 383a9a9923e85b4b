//! `gate` on the outcome of earlier steps: every referenced step must reach `atLeast`.

use super::{StepCtx, StepResult};
use crate::events::{Evidence, Status, Verdict};
use crate::pipeline::model::{GateStep, MinVerdict};

/// The verdict a finished step's status stands for. Anything that did not run is no data.
pub fn verdict_of(status: Status) -> Verdict {
    match status {
        Status::Passed => Verdict::Pass,
        Status::Warning => Verdict::Warning,
        Status::Failed | Status::RolledBack => Verdict::Fail,
        _ => Verdict::Error,
    }
}

/// Judges the referenced steps (default: every earlier step of this stage).
pub fn run(g: &GateStep, ctx: &StepCtx) -> StepResult {
    let wanted: Vec<(String, String)> = if g.steps.is_empty() {
        ctx.prior
            .iter()
            .filter(|p| p.stage == ctx.stage && !matches!(p.kind.as_str(), "pause" | "approval"))
            .map(|p| (p.stage.clone(), p.step.clone()))
            .collect()
    } else {
        g.steps
            .iter()
            .map(|r| match r.value.split_once('/') {
                Some((stage, step)) => (stage.to_owned(), step.to_owned()),
                None => (ctx.stage.clone(), r.value.clone()),
            })
            .collect()
    };
    if wanted.is_empty() {
        return StepResult::judged(
            Verdict::Error,
            "no earlier step to judge: a gate needs evidence",
            Vec::new(),
        );
    }
    let expected = match g.at_least {
        MinVerdict::Pass => "pass",
        MinVerdict::Warning => "pass or warning",
    };
    let mut evidence = Vec::new();
    for (stage, step) in &wanted {
        let found = ctx
            .prior
            .iter()
            .rev()
            .find(|p| &p.stage == stage && &p.step == step);
        let (v, value) = match found {
            Some(p) => {
                let v = p.verdict.unwrap_or_else(|| verdict_of(p.status));
                (v, p.status.word().to_owned())
            }
            None => (Verdict::Error, "did not run".to_owned()),
        };
        let ok = match g.at_least {
            MinVerdict::Pass => v == Verdict::Pass,
            MinVerdict::Warning => matches!(v, Verdict::Pass | Verdict::Warning),
        };
        let own = if ok {
            v
        } else if v == Verdict::Error {
            Verdict::Error
        } else {
            Verdict::Fail
        };
        evidence.push(Evidence::new(format!("{stage}/{step}"), own, value).expected(expected));
    }
    let failing: Vec<&str> = evidence
        .iter()
        .filter(|e| matches!(e.verdict, Verdict::Fail | Verdict::Error))
        .map(|e| e.check.as_str())
        .collect();
    let worst = evidence
        .iter()
        .map(|e| e.verdict)
        .max()
        .unwrap_or(Verdict::Error);
    let summary = if failing.is_empty() {
        format!(
            "{} of {} steps at least {expected}",
            evidence.len(),
            evidence.len()
        )
    } else {
        format!("{} below {expected}: {}", failing.len(), failing.join(", "))
    };
    StepResult::judged(worst, summary, evidence)
}
