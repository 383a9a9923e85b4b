//! One module per step kind. A step sees the world only through its [`StepCtx`]: it reports
//! progress as events and receives the operator's signals, and never imports the engine.

pub mod apply;
pub mod approval;
pub mod cluster_tests;
pub mod command;
pub mod endpoints;
pub mod evaluate;
pub mod gate;
pub mod http;
pub mod loadtest;
pub mod pause;
pub mod preflight;
pub mod release;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::events::{Event, Evidence, Status, Verdict};
use crate::pipeline::StepKind;

/// What the operator sends to the running step (the engine decides when it applies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// Approve the pending approval.
    Approve(String),
    /// Decline the pending approval.
    Reject(String),
    /// End the current pause (resume or promote).
    Continue(String),
}

/// The phase a running step reports, so the engine knows which commands apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Working.
    Running,
    /// Waiting for approve or reject.
    WaitingForApproval,
    /// In a pause that resume or promote ends.
    Paused,
}

/// How a step reports: events out, its phase for the engine.
#[derive(Clone)]
pub struct StepIo {
    stage: String,
    step: String,
    emit: Arc<dyn Fn(Event) + Send + Sync>,
    phase: Arc<watch::Sender<Phase>>,
}

impl StepIo {
    /// Builds the reporter for one step; `emit` journals and broadcasts.
    pub fn new(
        stage: &str,
        step: &str,
        emit: Arc<dyn Fn(Event) + Send + Sync>,
        phase: watch::Sender<Phase>,
    ) -> Self {
        StepIo {
            stage: stage.to_owned(),
            step: step.to_owned(),
            emit,
            phase: Arc::new(phase),
        }
    }

    /// A line of output.
    pub fn log(&self, source: &str, line: impl Into<String>) {
        let mut line = line.into();
        if line.len() > MAX_LINE {
            let mut cut = MAX_LINE;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
            line.push_str(" …(truncated)");
        }
        (self.emit)(Event::Log {
            stage: self.stage.clone(),
            step: self.step.clone(),
            source: source.to_owned(),
            line,
        });
    }

    /// Journals figures the step measured (they reach reports and resumed runs).
    pub fn measured(&self, values: std::collections::BTreeMap<String, f64>) {
        (self.emit)(Event::Measured {
            stage: self.stage.clone(),
            step: self.step.clone(),
            values,
        });
    }

    /// Reports where a release's traffic goes now: `weight` asked for, `actual` observed.
    pub fn traffic(
        &self,
        weight: u8,
        actual: Option<u8>,
        planned: Option<u8>,
        replicas: Vec<crate::events::VersionReplicas>,
        note: impl Into<String>,
    ) {
        (self.emit)(Event::Traffic {
            stage: self.stage.clone(),
            step: self.step.clone(),
            weight,
            note: note.into(),
            actual,
            planned,
            replicas,
        });
    }

    /// Reports one release analysis.
    pub fn analysis(
        &self,
        values: BTreeMap<String, Option<f64>>,
        stable: BTreeMap<String, Option<f64>>,
        targets: BTreeMap<String, String>,
        warnings: BTreeMap<String, String>,
        verdict: crate::events::Verdict,
        part: crate::events::AnalysisPart,
    ) {
        (self.emit)(Event::Analysis {
            stage: self.stage.clone(),
            step: self.step.clone(),
            values,
            stable,
            targets,
            warnings,
            verdict,
            part: Some(part),
            judgement: None,
        });
    }

    /// Reports one release analysis the statistical judge decided: the canary's and the
    /// baseline's means as the chart's two series, and the whole judgement.
    pub fn judgement(
        &self,
        targets: BTreeMap<String, String>,
        warnings: BTreeMap<String, String>,
        judgement: crate::events::Judgement,
        part: crate::events::AnalysisPart,
    ) {
        let mean = |side: fn(&crate::events::MetricComparison) -> &crate::events::SampleFacts| {
            judgement
                .metrics
                .iter()
                .filter(|m| m.query.is_some())
                .map(|m| (m.metric.clone(), side(m).mean))
                .collect()
        };
        (self.emit)(Event::Analysis {
            stage: self.stage.clone(),
            step: self.step.clone(),
            values: mean(|m| &m.canary),
            stable: mean(|m| &m.baseline),
            targets,
            warnings,
            verdict: judgement.verdict,
            judgement: Some(Box::new(judgement)),
            part: Some(part),
        });
    }

    /// Announces a new phase (waiting for approval, paused, running again).
    pub fn set_phase(&self, phase: Phase, message: impl Into<String>) {
        self.phase.send_replace(phase);
        let status = match phase {
            Phase::Running => Status::Running,
            Phase::WaitingForApproval => Status::WaitingForApproval,
            Phase::Paused => Status::Paused,
        };
        (self.emit)(Event::StepState {
            stage: self.stage.clone(),
            step: self.step.clone(),
            status,
            message: message.into(),
        });
    }
}

/// Log lines longer than this are cut, so one runaway line cannot fill memory.
const MAX_LINE: usize = 8 * 1024;

/// An earlier step's outcome, as gates and approvals see it.
#[derive(Debug, Clone, PartialEq)]
pub struct PriorOutcome {
    /// Stage name.
    pub stage: String,
    /// Step name.
    pub step: String,
    /// Step kind word.
    pub kind: String,
    /// How it ended.
    pub status: Status,
    /// Its verdict, when it judged.
    pub verdict: Option<Verdict>,
}

/// The stage's own measurements (a load test's `load.*` SLIs), which `evaluate` and canary
/// `analysis` read beside Prometheus. A running load test keeps them current every second
/// (its figures so far); a finished one leaves its whole-test summary.
#[derive(Debug, Clone, Default)]
pub struct Measurements(Arc<std::sync::Mutex<BTreeMap<String, (f64, tokio::time::Instant)>>>);

impl Measurements {
    /// Starts from figures measured before an interruption (a resumed run's): they count for
    /// `evaluate`, but are never fresh for a canary analysis.
    pub fn with(values: BTreeMap<String, f64>) -> Self {
        let now = tokio::time::Instant::now();
        let long_ago = now.checked_sub(Duration::from_secs(86_400)).unwrap_or(now);
        Measurements(Arc::new(std::sync::Mutex::new(
            values
                .into_iter()
                .map(|(k, v)| (k, (v, long_ago)))
                .collect(),
        )))
    }

    /// Replaces the figures of the same names; a name without a value (no data) is
    /// removed, so an older figure never stands in for it.
    pub fn publish(&self, values: &BTreeMap<String, Option<f64>>) {
        let now = tokio::time::Instant::now();
        if let Ok(mut m) = self.0.lock() {
            for (k, v) in values {
                match v {
                    Some(v) => {
                        m.insert(k.clone(), (*v, now));
                    }
                    None => {
                        m.remove(k);
                    }
                }
            }
        }
    }

    /// Every figure, however old (an `evaluate` after the load test).
    pub fn snapshot(&self) -> BTreeMap<String, f64> {
        self.fresh(Duration::MAX)
    }

    /// The figures published within `max_age` (a canary analysis wants a load test that is
    /// still running, not the summary of one that ended).
    pub fn fresh(&self, max_age: Duration) -> BTreeMap<String, f64> {
        let now = tokio::time::Instant::now();
        self.0
            .lock()
            .map(|m| {
                m.iter()
                    .filter(|(_, (_, at))| now.saturating_duration_since(*at) <= max_age)
                    .map(|(k, (v, _))| (k.clone(), *v))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Everything a step may use.
pub struct StepCtx {
    /// Stage name.
    pub stage: String,
    /// Step name.
    pub step: String,
    /// Relative paths are relative to this folder (the pipeline file's).
    pub base_dir: PathBuf,
    /// Reporting.
    pub io: StepIo,
    /// Operator signals the engine forwards.
    pub signals: mpsc::UnboundedReceiver<Signal>,
    /// True while the operator holds the run.
    pub paused: watch::Receiver<bool>,
    /// Manual approvals pass by themselves (`--auto-approve`).
    pub auto_approve: bool,
    /// Outcomes of the steps that ran before this one, in order.
    pub prior: Vec<PriorOutcome>,
    /// The service the pipeline releases.
    pub service: String,
    /// The stage's target, if any.
    pub target: Option<crate::pipeline::model::Target>,
    /// The stage's Prometheus, if any.
    pub prometheus: Option<crate::pipeline::model::Prometheus>,
    /// Query variables: `service`, `namespace`, `stage` and the pipeline's variables.
    pub vars: std::collections::BTreeMap<String, String>,
    /// The journal, for evaluation history (None in engine tests).
    pub journal: Option<crate::store::Location>,
    /// The run's id, recorded on what the step changes so a rollback undoes only its own.
    pub run: i64,
    /// The whole pipeline (pre-flight checks what later steps will apply).
    pub pipeline: Arc<crate::pipeline::Pipeline>,
    /// What the stage's steps measured themselves.
    pub measured: Measurements,
    /// Targets whose Services are reachable from here at a published address (the
    /// sandbox's loopback endpoints), as the CLI resolved them; `None` on other runs.
    pub service_addresses: Option<crate::kube::ServiceAddresses>,
    /// In a resumed run: what this step had done before the interruption.
    pub resumed: Option<StepResume>,
}

/// What a step of a resumed run had done before the driver stopped, from the journal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepResume {
    /// The verdicts of its analyses, in order.
    pub analyses: Vec<Verdict>,
    /// When the interrupted driver journaled its last event (ms since the epoch).
    pub interrupted_at_ms: Option<i64>,
}

/// How a step ended, as the step reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct StepResult {
    /// Passed, warning or failed.
    pub status: Status,
    /// The verdict, for steps that judge.
    pub verdict: Option<Verdict>,
    /// One line for a person.
    pub summary: String,
    /// The checks behind the verdict.
    pub evidence: Vec<Evidence>,
    /// The failure came from the platform (cluster, Prometheus), not from the release.
    pub infra_error: bool,
    /// The failure came from the pipeline's own files (a query Prometheus calls bad):
    /// the run exits 2, as the command line does for the same file.
    pub bad_input: bool,
    /// An SLO evaluation to keep as history.
    pub evaluation: Option<crate::events::EvaluationRecord>,
}

impl StepResult {
    /// A step that passed.
    pub fn passed(summary: impl Into<String>) -> Self {
        StepResult {
            status: Status::Passed,
            verdict: None,
            summary: summary.into(),
            evidence: Vec::new(),
            infra_error: false,
            bad_input: false,
            evaluation: None,
        }
    }

    /// A step that failed.
    pub fn failed(summary: impl Into<String>) -> Self {
        StepResult {
            status: Status::Failed,
            verdict: None,
            summary: summary.into(),
            evidence: Vec::new(),
            infra_error: false,
            bad_input: false,
            evaluation: None,
        }
    }

    /// A step whose outcome is a verdict.
    pub fn judged(verdict: Verdict, summary: impl Into<String>, evidence: Vec<Evidence>) -> Self {
        StepResult {
            status: verdict.status(),
            verdict: Some(verdict),
            summary: summary.into(),
            evidence,
            infra_error: false,
            bad_input: false,
            evaluation: None,
        }
    }
}

/// Runs a step to its end. The engine owns timeouts and cancellation (by dropping this).
pub async fn run(kind: &StepKind, ctx: &mut StepCtx) -> StepResult {
    match kind {
        StepKind::Command(c) => command::run(c, ctx).await,
        StepKind::Http(suite) => http::run(suite, ctx).await,
        StepKind::Approval(a) => approval::run(a, ctx).await,
        StepKind::Gate(g) => match &g.error_budget {
            Some(b) => evaluate::budget_gate(b, ctx).await,
            None => gate::run(g, ctx),
        },
        StepKind::Evaluate(e) => evaluate::run(e, ctx).await,
        StepKind::Monitoring(m) => evaluate::monitoring(m, ctx).await,
        StepKind::Pause(p) => pause::run(p, ctx).await,
        StepKind::Infra(i) => apply::infra(i, ctx).await,
        StepKind::Deploy(d) => apply::deploy(d, ctx).await,
        StepKind::Preflight(p) => preflight::run(p, ctx).await,
        StepKind::Chaos(c) => cluster_tests::chaos(c, ctx).await,
        StepKind::Test(t) => match (&t.job, &t.load) {
            (Some(j), _) => cluster_tests::job(j, ctx).await,
            (None, Some(l)) => loadtest::run(l, ctx).await,
            (None, None) => StepResult::failed("a test step with nothing to run"),
        },
        StepKind::Release(r) => release::run(r, ctx).await,
    }
}

/// Undoes a step that had succeeded, when its stage is rolled back. Returns what was done.
pub async fn rollback(kind: &StepKind, ctx: &mut StepCtx) -> Option<StepResult> {
    match kind {
        StepKind::Command(c) => command::rollback(c, ctx).await,
        StepKind::Release(r) => release::rollback(r, ctx).await,
        _ => None,
    }
}

/// Waits for the next operator signal; a closed channel means nobody will ever send one.
pub(crate) async fn next_signal(signals: &mut mpsc::UnboundedReceiver<Signal>) -> Signal {
    match signals.recv().await {
        Some(signal) => signal,
        None => std::future::pending().await,
    }
}
