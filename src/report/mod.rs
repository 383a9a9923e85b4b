//! Reports built from a run's journaled events, so a report written after a resume is the
//! same as one written by an uninterrupted run: JSON (this module), JUnit XML, a Markdown
//! summary and an SVG chart per SLI (`--report-dir` writes them all).

pub mod junit;
pub mod markdown;
pub mod svg;
pub mod train;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::events::{CommandKind, Envelope, Event, Evidence, StagePlan, Status, Verdict};

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
    /// Each SLI each release step's analyses measured, over time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub analysis: Vec<SliSeries>,
    /// Each change of the traffic a release asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traffic: Vec<TrafficStep>,
    /// The statistical judge's judgements, with their samples (the latest
    /// [`MAX_JUDGEMENTS`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub judgements: Vec<JudgementPoint>,
}

/// The most judgements a report keeps (each carries its samples).
pub const MAX_JUDGEMENTS: usize = 200;

/// One judgement of the statistical judge under a release step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgementPoint {
    /// `stage/step`.
    pub step: String,
    /// When it was made.
    pub at_ms: i64,
    /// The judgement, samples included.
    pub judgement: crate::events::Judgement,
}

/// One SLI over a release's analyses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SliSeries {
    /// The release step (`stage/step`) that measured it.
    pub step: String,
    /// The SLI.
    pub sli: String,
    /// Pass criteria.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass: Option<String>,
    /// Warning criteria.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// The values, oldest first.
    pub points: Vec<SliPoint>,
}

/// One analysis of one SLI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SliPoint {
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// The new version's value (None: no data).
    pub new: Option<f64>,
    /// The stable version's value over the same window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable: Option<f64>,
    /// The analysis verdict.
    pub verdict: Verdict,
}

/// A traffic step of a release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrafficStep {
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// The release step (`stage/step`).
    pub step: String,
    /// Percent asked for on the new version.
    pub weight: u8,
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
    /// What it will do, from the plan.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Its `parallel` group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// While it runs, its latest state message (`canary 25%`, `waiting for approval`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl StepReport {
    /// One line about it: its state message while it runs, else its summary.
    pub fn text(&self) -> &str {
        self.message
            .as_deref()
            .or(self.summary.as_deref())
            .unwrap_or_default()
    }
}

/// Folds the events that concern stages and steps into `stages`: the plan (once; a
/// resumed run keeps what it had), starts, states, ends, evidence and measurements. The
/// report and the cockpit share it, so they never disagree about a step.
pub fn fold_stages(stages: &mut Vec<StageReport>, env: &Envelope) {
    let at = env.at_ms;
    match &env.event {
        Event::RunStarted { stages: plan, .. } if stages.is_empty() => {
            *stages = plan.iter().map(planned_stage).collect();
        }
        Event::StageStarted { stage } => {
            if let Some(s) = stages.iter_mut().find(|s| &s.name == stage) {
                s.status = Status::Running;
                s.started_ms.get_or_insert(at);
            }
        }
        Event::StageFinished { stage, status } => {
            if let Some(s) = stages.iter_mut().find(|s| &s.name == stage) {
                s.status = *status;
                s.finished_ms = Some(at);
            }
        }
        Event::StepStarted { stage, step, .. } => {
            if let Some(s) = find_step(stages, stage, step) {
                s.status = Status::Running;
                s.started_ms = Some(at);
                s.finished_ms = None;
                s.message = None;
            }
        }
        Event::StepState {
            stage,
            step,
            status,
            message,
        } => {
            if let Some(s) = find_step(stages, stage, step) {
                s.status = *status;
                s.message = Some(message.clone());
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
            if let Some(s) = find_step(stages, stage, step) {
                s.status = *status;
                s.verdict = *verdict;
                s.summary = Some(summary.clone());
                s.message = None;
                s.evidence = evidence.clone();
                s.finished_ms = Some(at);
                s.duration_ms = s.started_ms.map(|st| at - st);
            }
        }
        Event::Measured {
            stage,
            step,
            values,
        } => {
            if let Some(s) = find_step(stages, stage, step) {
                s.measured = values.clone();
            }
        }
        _ => {}
    }
}

/// Folds a `Traffic` event into a release's traffic steps. Refreshes of what the cluster
/// shows repeat the weight; only changes of the step's own weight count. The report and
/// the cockpit's chart marks share it.
pub fn fold_traffic(steps: &mut Vec<TrafficStep>, env: &Envelope) {
    if let Event::Traffic {
        stage,
        step,
        weight,
        ..
    } = &env.event
    {
        let step = format!("{stage}/{step}");
        let last = steps.iter().rev().find(|t| t.step == step);
        if last.is_none_or(|t| t.weight != *weight) {
            steps.push(TrafficStep {
                at_ms: env.at_ms,
                step,
                weight: *weight,
            });
        }
    }
}

/// A stage as planned: it and its steps pending.
fn planned_stage(s: &StagePlan) -> StageReport {
    StageReport {
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
                description: st.description.clone(),
                group: st.group.clone(),
                message: None,
            })
            .collect(),
    }
}

fn find_step<'a>(
    stages: &'a mut [StageReport],
    stage: &str,
    step: &str,
) -> Option<&'a mut StepReport> {
    stages
        .iter_mut()
        .find(|s| s.name == stage)?
        .steps
        .iter_mut()
        .find(|s| s.name == step)
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
    /// Who sent it, in full (OS user and host, `--as`, Kubernetes identity), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<crate::identity::Sender>,
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
            analysis: Vec::new(),
            traffic: Vec::new(),
            judgements: Vec::new(),
        };
        for env in events {
            r.apply(env);
        }
        r
    }

    /// Applies one event.
    pub fn apply(&mut self, env: &Envelope) {
        let at = env.at_ms;
        fold_stages(&mut self.stages, env);
        match &env.event {
            Event::RunStarted {
                pipeline,
                service,
                resumed,
                ..
            } => {
                self.pipeline = pipeline.clone();
                self.service = service.clone();
                self.status = Status::Running;
                if *resumed {
                    self.resumed += 1;
                } else {
                    self.started_ms = Some(at);
                }
            }
            Event::RunState { status } => self.status = *status,
            Event::StageStarted { .. }
            | Event::StageFinished { .. }
            | Event::StepStarted { .. }
            | Event::StepState { .. }
            | Event::StepFinished { .. }
            | Event::Measured { .. } => {}
            Event::Operator {
                command,
                who,
                accepted,
                reason,
                sender,
            } => self.operator_actions.push(OperatorAction {
                at_ms: at,
                command: *command,
                who: who.clone(),
                accepted: *accepted,
                reason: reason.clone(),
                sender: sender.clone(),
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
            Event::Traffic { .. } => fold_traffic(&mut self.traffic, env),
            Event::Analysis { .. } => self.fold_analysis(env),
            Event::Log { .. } | Event::Member { .. } => {}
        }
    }

    /// Adds an analysis's values to each SLI's series of its release step.
    fn fold_analysis(&mut self, env: &Envelope) {
        let Event::Analysis {
            stage,
            step,
            values,
            stable,
            targets,
            warnings,
            verdict,
            judgement,
            ..
        } = &env.event
        else {
            return;
        };
        let step = format!("{stage}/{step}");
        if let Some(j) = judgement {
            if self.judgements.len() >= MAX_JUDGEMENTS {
                self.judgements.remove(0);
            }
            self.judgements.push(JudgementPoint {
                step: step.clone(),
                at_ms: env.at_ms,
                judgement: (**j).clone(),
            });
        }
        for (sli, value) in values {
            let i = match self
                .analysis
                .iter()
                .position(|s| s.step == step && s.sli == *sli)
            {
                Some(i) => i,
                None => {
                    self.analysis.push(SliSeries {
                        step: step.clone(),
                        sli: sli.clone(),
                        ..SliSeries::default()
                    });
                    self.analysis.len() - 1
                }
            };
            let series = &mut self.analysis[i];
            series.pass = targets.get(sli).cloned().or(series.pass.take());
            series.warning = warnings.get(sli).cloned().or(series.warning.take());
            series.points.push(SliPoint {
                at_ms: env.at_ms,
                new: *value,
                stable: stable.get(sli).copied().flatten(),
                verdict: *verdict,
            });
        }
    }

    /// Every step, with its stage.
    pub fn steps(&self) -> impl Iterator<Item = (&StageReport, &StepReport)> {
        self.stages
            .iter()
            .flat_map(|stage| stage.steps.iter().map(move |step| (stage, step)))
    }

    /// Writes every format into `dir` (created if missing): `report.json`, `junit.xml`,
    /// `summary.md` and `slo-SLI.svg` per SLI the release analyses measured. Returns the
    /// files written.
    pub fn write_all(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir)?;
        let mut written = Vec::new();
        let json = dir.join("report.json");
        self.write_json(&json)?;
        written.push(json);
        let names = svg::file_names(&self.analysis);
        for (series, name) in self.analysis.iter().zip(&names) {
            let path = dir.join(name);
            std::fs::write(&path, svg::chart(self, series))?;
            written.push(path);
        }
        let charts: Vec<(String, String)> = self
            .analysis
            .iter()
            .map(|s| s.sli.clone())
            .zip(names)
            .collect();
        let junit = dir.join("junit.xml");
        std::fs::write(&junit, junit::render(self))?;
        written.push(junit);
        let md = dir.join("summary.md");
        std::fs::write(&md, markdown::render(self, &charts))?;
        written.push(md);
        Ok(written)
    }

    /// Writes the report as pretty JSON.
    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, text + "\n")
    }
}
