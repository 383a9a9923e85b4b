//! What an interrupted run had done, read back from its journaled events.

use crate::events::{Envelope, Event, Status};
use crate::steps::PriorOutcome;

/// The state a resumed run starts from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resumed {
    /// Steps that finished, in order. They are not run again.
    pub finished: Vec<PriorOutcome>,
    /// The operator had paused the run.
    pub paused: bool,
    /// Figures steps measured, by stage.
    pub measured: std::collections::BTreeMap<String, std::collections::BTreeMap<String, f64>>,
}

impl Resumed {
    /// Folds a run's events. A step that started but did not finish runs again.
    pub fn from_events(events: &[Envelope]) -> Resumed {
        let mut out = Resumed::default();
        let mut kinds = std::collections::HashMap::new();
        for env in events {
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
}
