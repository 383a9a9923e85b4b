//! What the cockpit shows, folded from the engine's events. Nothing here draws; the view
//! reads this state and the key handlers change only the UI's own part of it (focus,
//! selection, overlays).

use std::collections::VecDeque;

use crate::events::{CommandKind, Envelope, Event, Status, Verdict};

/// Log lines kept for the test output pane; older ones are dropped.
pub const MAX_LOG_LINES: usize = 10_000;

/// One step as the cockpit shows it: the report's own, folded by the same code.
pub type StepView = crate::report::StepReport;

/// One stage.
pub type StageView = crate::report::StageReport;

/// A line of step output.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// The step.
    pub step: String,
    /// Where it came from (`stdout`, `load`, `engine`...).
    pub source: String,
    /// The text.
    pub line: String,
}

/// A message shown for a few seconds (a refused command, a confirmation).
#[derive(Debug, Clone, PartialEq)]
pub struct Toast {
    /// The text.
    pub text: String,
    /// An error (refused) rather than information.
    pub error: bool,
    /// Hidden after this time, ms since the epoch.
    pub until_ms: i64,
}

/// Points kept per chart series.
pub const MAX_POINTS: usize = 1_000;

/// Where a release's traffic goes.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficView {
    /// The release step.
    pub step: String,
    /// Percent on the new version, as the release asked.
    pub weight: u8,
    /// Percent on the new version, as the cluster shows it (`None`: not observed).
    pub actual: Option<u8>,
    /// What `actual` should be: the replica counts' split, else `weight`.
    pub planned: Option<u8>,
    /// Each version's replica readiness.
    pub replicas: Vec<crate::events::VersionReplicas>,
    /// How it got there.
    pub note: String,
    /// When, ms since the epoch.
    pub at_ms: i64,
}

/// One SLI over a release's analyses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    /// (ms since the epoch, value) for the new version; gaps are analyses without data.
    pub points: Vec<(i64, f64)>,
    /// The same for the stable version.
    pub stable_points: Vec<(i64, f64)>,
    /// The stable version's latest value.
    pub stable_last: Option<f64>,
    /// The objective's pass criterion (`<=0.01`).
    pub target: Option<String>,
    /// Its warning criterion (`<=0.02`), if it has one.
    pub warning: Option<String>,
    /// The latest value (None: no data).
    pub last: Option<f64>,
}

/// The run as the cockpit knows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunView {
    /// Pipeline name.
    pub pipeline: String,
    /// Service.
    pub service: String,
    /// Run id.
    pub run: i64,
    /// Where it delivers (`context/namespace`, `sandbox`).
    pub target: String,
    /// Stages in order.
    pub stages: Vec<StageView>,
    /// The run's status.
    pub status: Status,
    /// The operator paused the run.
    pub paused: bool,
    /// Why it ended.
    pub reason: Option<String>,
    /// Its exit code, once ended.
    pub exit_code: Option<i32>,
    /// First event, ms since the epoch.
    pub started_ms: Option<i64>,
    /// Last event, ms since the epoch.
    pub finished_ms: Option<i64>,
    /// Step output, newest last, at most [`MAX_LOG_LINES`].
    pub logs: VecDeque<LogLine>,
    /// Lines dropped from the front so far.
    pub dropped_lines: u64,
    /// The latest refused or accepted operator command, for a toast.
    pub last_operator: Option<(CommandKind, bool, Option<String>)>,
    /// The release's traffic now.
    pub traffic: Option<TrafficView>,
    /// Who holds the run's leases (one driver at a time), when the cockpit knows.
    pub lease: Option<String>,
    /// Each change of the traffic a release asked for, to mark the charts' time axis.
    pub weight_changes: Vec<crate::report::TrafficStep>,
    /// SLI → its values over the analyses.
    pub series: std::collections::BTreeMap<String, Series>,
    /// The latest analysis verdict.
    pub analysis_verdict: Option<Verdict>,
}

/// Adds a finite value to a series, dropping the oldest past [`MAX_POINTS`].
fn push_point(points: &mut Vec<(i64, f64)>, at: i64, value: Option<f64>) {
    if let Some(v) = value.filter(|v| v.is_finite()) {
        if points.len() == MAX_POINTS {
            points.remove(0);
        }
        points.push((at, v));
    }
}

impl RunView {
    /// Folds one event in.
    pub fn apply(&mut self, env: &Envelope) {
        let at = env.at_ms;
        self.run = env.run;
        self.started_ms.get_or_insert(at);
        crate::report::fold_stages(&mut self.stages, env);
        crate::report::fold_traffic(&mut self.weight_changes, env);
        match &env.event {
            Event::RunStarted {
                pipeline, service, ..
            } => {
                self.pipeline = pipeline.clone();
                self.service = service.clone();
                self.status = Status::Running;
            }
            Event::RunState { status } => self.paused = *status == Status::Paused,
            // Stages and steps: the report's fold, above.
            Event::StageStarted { .. }
            | Event::StageFinished { .. }
            | Event::StepStarted { .. }
            | Event::StepState { .. }
            | Event::StepFinished { .. } => {}
            Event::Log {
                step, source, line, ..
            } => self.push_log(LogLine {
                at_ms: at,
                step: step.clone(),
                source: source.clone(),
                line: line.clone(),
            }),
            // A train's member runs are followed in their own runs.
            Event::Measured { .. } | Event::Member { .. } => {}
            Event::Traffic {
                step,
                weight,
                note,
                actual,
                planned,
                replicas,
                ..
            } => {
                self.traffic = Some(TrafficView {
                    step: step.clone(),
                    weight: *weight,
                    actual: *actual,
                    planned: *planned,
                    replicas: replicas.clone(),
                    note: note.clone(),
                    at_ms: at,
                });
            }
            Event::Analysis { .. } => self.fold_analysis(at, &env.event),
            Event::Operator {
                command,
                accepted,
                reason,
                ..
            } => self.last_operator = Some((*command, *accepted, reason.clone())),
            Event::RunFinished {
                status,
                exit_code,
                reason,
            } => {
                self.status = *status;
                self.exit_code = Some(*exit_code);
                self.reason = Some(reason.clone());
                self.finished_ms = Some(at);
                self.paused = false;
            }
        }
    }

    /// Keeps a line of output, dropping the oldest past [`MAX_LOG_LINES`].
    fn push_log(&mut self, line: LogLine) {
        if self.logs.len() == MAX_LOG_LINES {
            self.logs.pop_front();
            self.dropped_lines += 1;
        }
        self.logs.push_back(line);
    }

    /// Adds an analysis's values (new and stable) to each SLI's series, with its targets.
    fn fold_analysis(&mut self, at: i64, event: &Event) {
        let Event::Analysis {
            values,
            stable,
            targets,
            warnings,
            verdict,
            ..
        } = event
        else {
            return;
        };
        for (sli, w) in warnings {
            self.series.entry(sli.clone()).or_default().warning = Some(w.clone());
        }
        for (sli, value) in stable {
            let s = self.series.entry(sli.clone()).or_default();
            s.stable_last = *value;
            push_point(&mut s.stable_points, at, *value);
        }
        self.analysis_verdict = Some(*verdict);
        for (sli, value) in values {
            let s = self.series.entry(sli.clone()).or_default();
            s.last = *value;
            s.target = targets.get(sli).cloned().or(s.target.take());
            push_point(&mut s.points, at, *value);
        }
    }

    /// After replaying an interrupted run's journal: what was in flight when it stopped is
    /// pending again (a resumed run runs it again; it has not ended).
    pub fn settle(&mut self) {
        if self.ended() {
            return;
        }
        for stage in &mut self.stages {
            for step in &mut stage.steps {
                if matches!(
                    step.status,
                    Status::Running | Status::WaitingForApproval | Status::Paused
                ) {
                    step.status = Status::Pending;
                    step.finished_ms = None;
                }
            }
        }
    }

    /// The run has ended.
    pub fn ended(&self) -> bool {
        self.exit_code.is_some()
    }

    /// The stage running now (or the last one that ran).
    pub fn current_stage(&self) -> Option<&StageView> {
        self.stages
            .iter()
            .rev()
            .find(|s| s.status != Status::Pending && s.status != Status::Skipped)
    }

    /// The steps running now (a `parallel` group runs several).
    pub fn active_steps(&self) -> Vec<(&StageView, &StepView)> {
        self.stages
            .iter()
            .flat_map(|s| s.steps.iter().map(move |st| (s, st)))
            .filter(|(_, st)| {
                matches!(
                    st.status,
                    Status::Running | Status::WaitingForApproval | Status::Paused
                )
            })
            .collect()
    }

    /// What the engine waits for from the operator, in words, if anything.
    pub fn waiting_for(&self) -> Option<String> {
        if self.ended() {
            return None;
        }
        if self.paused {
            return Some("run paused · p resumes".into());
        }
        let active = self.active_steps();
        if let Some((_, s)) = active
            .iter()
            .find(|(_, s)| s.status == Status::WaitingForApproval)
        {
            return Some(format!(
                "{} waits for approval · a approve · d decline",
                s.name
            ));
        }
        if let Some((_, s)) = active.iter().find(|(_, s)| s.status == Status::Paused) {
            return Some(format!("{} paused · P promote / p resume", s.name));
        }
        None
    }

    /// What to tell an operator who leaves the cockpit while the run goes on: what the run
    /// waits for, and the command that answers it from any terminal.
    pub fn left_behind(&self) -> Option<String> {
        if self.ended() {
            return None;
        }
        let run = self.run;
        let attach = format!("`glidepath attach {run}` brings the cockpit back");
        let active = self.active_steps();
        let find = |status: Status| active.iter().find(|(_, s)| s.status == status);
        let now = if let Some((stage, s)) = find(Status::WaitingForApproval) {
            format!(
                "{}/{} waits for approval: `glidepath approve {run}` or `glidepath reject {run}` answers it from any terminal; {attach}",
                stage.name, s.name
            )
        } else if self.paused {
            format!("it is paused: {attach}, where p resumes it")
        } else if let Some((stage, s)) = find(Status::Paused) {
            format!(
                "{}/{} pauses: {attach}, where P promotes it now",
                stage.name, s.name
            )
        } else if let Some((stage, s)) = active.first() {
            format!("{}/{} is running; {attach}", stage.name, s.name)
        } else {
            attach
        };
        Some(format!(
            "left the cockpit; run {run} goes on here: {now}; Ctrl-C aborts it"
        ))
    }

    /// The latest pre-flight step's checks, with its stage and step names.
    pub fn preflight(&self) -> Option<(&StageView, &StepView)> {
        self.stages
            .iter()
            .flat_map(|s| s.steps.iter().map(move |st| (s, st)))
            .rfind(|(_, st)| st.kind == "preflight" && st.status != Status::Pending)
    }

    /// The release step running or last run, for the header ("canary 25% - paused").
    pub fn release_state(&self) -> Option<String> {
        let (_, step) = self
            .stages
            .iter()
            .flat_map(|s| s.steps.iter().map(move |st| (s, st)))
            .rfind(|(_, st)| st.kind == "release" && st.status != Status::Pending)?;
        let what = if step.text().is_empty() {
            step.description.clone()
        } else {
            step.text().to_owned()
        };
        Some(format!("{} {what}", step.status.glyph()))
    }

    /// Every step, flattened, as (stage index, step index).
    pub fn step_indices(&self) -> Vec<(usize, usize)> {
        self.stages
            .iter()
            .enumerate()
            .flat_map(|(i, s)| (0..s.steps.len()).map(move |j| (i, j)))
            .collect()
    }
}
