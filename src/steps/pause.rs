//! `pause`: a countdown that freezes while the operator holds the run, or (`pause: {}`) a
//! wait for the operator. `promote` or `resume` ends either.

use std::time::Duration;

use tokio::time::Instant;

use super::{Phase, Signal, StepCtx, StepResult, next_signal};
use crate::pipeline::model::PauseStep;
use crate::units::format_duration;

/// Runs a pause step.
pub async fn run(p: &PauseStep, ctx: &mut StepCtx) -> StepResult {
    let Some(total) = p.duration.map(|d| d.get()) else {
        ctx.io.set_phase(
            Phase::Paused,
            "paused until the operator resumes or promotes",
        );
        loop {
            if let Signal::Continue(who) = next_signal(&mut ctx.signals).await {
                return StepResult::passed(format!("resumed by {who}"));
            }
        }
    };
    ctx.io
        .set_phase(Phase::Paused, format!("pausing {}", format_duration(total)));
    let mut remaining = total;
    loop {
        if *ctx.paused.borrow_and_update() {
            // Held by the operator: the countdown stands still until the hold ends.
            tokio::select! {
                changed = ctx.paused.changed() => if changed.is_err() { std::future::pending::<()>().await },
                signal = next_signal(&mut ctx.signals) => if let Signal::Continue(who) = signal {
                    return StepResult::passed(format!("pause skipped by {who} with {} left", format_duration(remaining)));
                },
            }
            continue;
        }
        let started = Instant::now();
        tokio::select! {
            _ = tokio::time::sleep(remaining) => return StepResult::passed(format!("paused {}", format_duration(total))),
            changed = ctx.paused.changed() => {
                remaining = remaining.saturating_sub(started.elapsed());
                if changed.is_err() { std::future::pending::<()>().await }
            }
            signal = next_signal(&mut ctx.signals) => {
                remaining = remaining.saturating_sub(started.elapsed());
                if let Signal::Continue(who) = signal {
                    return StepResult::passed(format!("pause skipped by {who} with {} left", format_duration(remaining)));
                }
            }
        }
        if remaining == Duration::ZERO {
            return StepResult::passed(format!("paused {}", format_duration(total)));
        }
    }
}
