//! Reports built from a run's journaled events, so a report written after a resume is the
//! same as one written by an uninterrupted run.

use serde::{Deserialize, Serialize};

use crate::events::{CommandKind, Envelope, Event, Evidence, Status, Verdict};

/// A run, as the JSON report shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Run id.
    pub run: i64,
    /// Pipeline name.
    pub pipeline: String,
    /// Service name.
    pub service: String,
    /// Final (or current) status.
    pub status: Status,
    /// Exit code, once finished.
    pub exit_code: Option<i32>,
    /// Why it ended so.
    pub reason: Option<String>,
    /// Start, ms since the epoch.
    pub started_ms: Option<i64>,
    /// End, ms since the epoch.
    pub finished_ms: Option<i64>,
    /// How many times the run was resumed.
    pub resumed: u32,
    /// Stages in order.
    pub stages: Vec<StageReport>,
    /// Operator commands, accepted or refused.
    pub operator_actions: Vec<OperatorAction>,
}

/// A stage in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageReport {
    /// Stage name.
    pub name: String,
    /// How it ended.
    pub status: Status,
    /// Start, ms since the epoch.
    pub started_ms: Option<i64>,
    /// End, ms since the epoch.
    pub finished_ms: Option<i64>,
    /// Steps in order.
    pub steps: Vec<StepReport>,
}

/// A step in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// Step name.
    pub name: String,
    /// Step kind.
    pub kind: String,
    /// How it ended.
    pub status: Status,
    /// Gate verdict, for steps that judge.
    pub verdict: Option<Verdict>,
    /// One line.
    pub summary: Option<String>,
    /// Start, ms since the epoch.
    pub started_ms: Option<i64>,
    /// End, ms since the epoch.
    pub finished_ms: Option<i64>,
    /// Milliseconds from start to end.
    pub duration_ms: Option<i64>,
    /// The checks behind the verdict.
    pub evidence: Vec<Evidence>,
    /// Figures the step measured itself (a load test's `load.*` SLIs).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub measured: std::collections::BTreeMap<String, f64>,
}

/// An operator command in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatorAction {
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// The command.
    pub command: CommandKind,
    /// Who sent it.
    pub who: String,
    /// Whether it took effect.
    pub accepted: bool,
    /// Why it was refused.
    pub reason: Option<String>,
}

impl Report {
    /// Folds a run's events into a report.
    pub fn from_events(run: i64, events: &[Envelope]) -> Report {
        let mut r = Report {
            run,
            pipeline: String::new(),
            service: String::new(),
            status: Status::Pending,
            exit_code: None,
            reason: None,
            started_ms: None,
            finished_ms: None,
            resumed: 0,
            stages: Vec::new(),
            operator_actions: Vec::new(),
        };
        for env in events {
            r.apply(env);
        }
        r
    }

    fn step_mut(&mut self, stage: &str, step: &str) -> Option<&mut StepReport> {
        self.stages
            .iter_mut()
            .find(|s| s.name == stage)?
            .steps
            .iter_mut()
            .find(|s| s.name == step)
    }

    /// Applies one event.
    pub fn apply(&mut self, env: &Envelope) {
        let at = env.at_ms;
        match &env.event {
            Event::RunStarted {
                pipeline,
                service,
                stages,
                resumed,
            } => {
                self.pipeline = pipeline.clone();
                self.service = service.clone();
                self.status = Status::Running;
                if *resumed {
                    self.resumed += 1;
                    return;
                }
                self.started_ms = Some(at);
                self.stages = stages
                    .iter()
                    .map(|s| StageReport {
                        name: s.name.clone(),
                        status: Status::Pending,
                        started_ms: None,
                        finished_ms: None,
                        steps: s
                            .steps
                            .iter()
                            .map(|st| StepReport {
                                name: st.name.clone(),
                                kind: st.kind.clone(),
                                status: Status::Pending,
                                verdict: None,
                                summary: None,
                                started_ms: None,
                                finished_ms: None,
                                duration_ms: None,
                                evidence: Vec::new(),
                                measured: Default::default(),
                            })
                            .collect(),
                    })
                    .collect();
            }
            Event::RunState { status } => self.status = *status,
            Event::StageStarted { stage } => {
                if let Some(s) = self.stages.iter_mut().find(|s| &s.name == stage) {
                    s.status = Status::Running;
                    s.started_ms.get_or_insert(at);
                }
            }
            Event::StageFinished { stage, status } => {
                if let Some(s) = self.stages.iter_mut().find(|s| &s.name == stage) {
                    s.status = *status;
                    s.finished_ms = Some(at);
                }
            }
            Event::StepStarted { stage, step, .. } => {
                if let Some(s) = self.step_mut(stage, step) {
                    s.status = Status::Running;
                    s.started_ms = Some(at);
                }
            }
            Event::StepState {
                stage,
                step,
                status,
                ..
            } => {
                if let Some(s) = self.step_mut(stage, step) {
                    s.status = *status;
                }
            }
            Event::StepFinished {
                stage,
                step,
                status,
                verdict,
                summary,
                evidence,
                ..
            } => {
                if let Some(s) = self.step_mut(stage, step) {
                    s.status = *status;
                    s.verdict = *verdict;
                    s.summary = Some(summary.clone());
                    s.evidence = evidence.clone();
                    s.finished_ms = Some(at);
                    s.duration_ms = s.started_ms.map(|st| at - st);
                }
            }
            Event::Operator {
                command,
                who,
                accepted,
                reason,
            } => self.operator_actions.push(OperatorAction {
                at_ms: at,
                command: *command,
                who: who.clone(),
                accepted: *accepted,
                reason: reason.clone(),
            }),
            Event::RunFinished {
                status,
                exit_code,
                reason,
            } => {
                self.status = *status;
                self.exit_code = Some(*exit_code);
                self.reason = Some(reason.clone());
                self.finished_ms = Some(at);
            }
            Event::Measured {
                stage,
                step,
                values,
            } => {
                if let Some(s) = self.step_mut(stage, step) {
                    s.measured = values.clone();
                }
            }
            Event::Log { .. } | Event::Traffic { .. } | Event::Analysis { .. } => {}
        }
    }

    /// Writes the report as pretty JSON.
    pub fn write_json(&self, path: &std::path::Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, text + "\n")
    }
}
