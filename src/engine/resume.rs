//! What an interrupted run had done, read back from its journaled events.

use std::collections::BTreeMap;

use crate::events::{Envelope, Event, Status, Verdict};
use crate::steps::{PriorOutcome, StepResume};

/// The state a resumed run starts from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resumed {
    /// Steps that finished, in order. They are not run again.
    pub finished: Vec<PriorOutcome>,
    /// The operator had paused the run.
    pub paused: bool,
    /// Figures steps measured, by stage.
    pub measured: BTreeMap<String, BTreeMap<String, f64>>,
    /// The verdicts of each step's analyses so far, by `(stage, step)`: a resumed
    /// release's analysis goes on counting from them.
    pub analyses: BTreeMap<(String, String), Vec<Verdict>>,
    /// When the interrupted driver journaled its last event (ms since the epoch): a pause
    /// cut short goes on for the time it had left then.
    pub interrupted_at_ms: Option<i64>,
}

impl Resumed {
    /// Folds a run's events. A step that started but did not finish runs again.
    pub fn from_events(events: &[Envelope]) -> Resumed {
        let mut out = Resumed::default();
        let mut kinds = std::collections::HashMap::new();
        for env in events {
            out.interrupted_at_ms = Some(out.interrupted_at_ms.unwrap_or(0).max(env.at_ms));
            match &env.event {
                Event::StepStarted { stage, step, kind } => {
                    kinds.insert((stage.clone(), step.clone()), kind.clone());
                }
                Event::StepFinished {
                    stage,
                    step,
                    status,
                    verdict,
                    ..
                } if *status != Status::Skipped => {
                    out.finished
                        .retain(|p| !(p.stage == *stage && p.step == *step));
                    out.finished.push(PriorOutcome {
                        stage: stage.clone(),
                        step: step.clone(),
                        kind: kinds
                            .get(&(stage.clone(), step.clone()))
                            .cloned()
                            .unwrap_or_default(),
                        status: *status,
                        verdict: *verdict,
                    });
                }
                Event::RunState { status } => out.paused = *status == Status::Paused,
                Event::Analysis {
                    stage,
                    step,
                    verdict,
                    ..
                } => out
                    .analyses
                    .entry((stage.clone(), step.clone()))
                    .or_default()
                    .push(*verdict),
                Event::Measured { stage, values, .. } => out
                    .measured
                    .entry(stage.clone())
                    .or_default()
                    .extend(values.iter().map(|(k, v)| (k.clone(), *v))),
                _ => {}
            }
        }
        out
    }

    /// What step `stage/step` may continue from: its analyses so far and when the run
    /// was interrupted.
    pub fn step(&self, stage: &str, step: &str) -> StepResume {
        StepResume {
            analyses: self
                .analyses
                .get(&(stage.to_owned(), step.to_owned()))
                .cloned()
                .unwrap_or_default(),
            interrupted_at_ms: self.interrupted_at_ms,
        }
    }
}
