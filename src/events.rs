//! The one vocabulary shared by the engine, the steps, the journal, the reports and the UI:
//! events flow out of a run, commands flow in. Nothing here knows who produces or consumes.

pub use crate::judge::evidence::{GroupFacts, Judgement, MetricComparison, SampleFacts};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::units::Span;

/// The state of a run, a stage or a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Not started.
    #[default]
    Pending,
    /// Working.
    Running,
    /// Waiting for `approve` or `reject`.
    WaitingForApproval,
    /// Held by the operator or by a pause step.
    Paused,
    /// Done, good.
    Passed,
    /// Done, acceptable with reservations.
    Warning,
    /// Done, bad.
    Failed,
    /// Not run.
    Skipped,
    /// Stopped by the operator.
    Aborted,
    /// Undone after a failure or on request.
    RolledBack,
    /// A run turned away before it started (another driver holds the lease, the target
    /// could not be reached); nothing was changed.
    Refused,
    /// A run whose driver is gone (killed, crashed) before it finished; `glidepath resume`
    /// continues it. Never journaled: derived when a run is read.
    Interrupted,
}

impl Status {
    /// True once nothing more will happen (an interrupted run can still be resumed).
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            Status::Pending
                | Status::Running
                | Status::WaitingForApproval
                | Status::Paused
                | Status::Interrupted
        )
    }

    /// The glyph that carries the state without colour.
    pub fn glyph(self) -> &'static str {
        match self {
            Status::Pending => "○",
            Status::Running => "▶",
            Status::WaitingForApproval => "?",
            Status::Paused => "⏸",
            Status::Passed => "✓",
            Status::Warning => "⚠",
            Status::Failed => "✗",
            Status::Skipped => "-",
            Status::Aborted => "■",
            Status::RolledBack => "↺",
            Status::Refused => "⊘",
            Status::Interrupted => "↯",
        }
    }

    /// The word used in files and output.
    pub fn word(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Running => "running",
            Status::WaitingForApproval => "waiting-for-approval",
            Status::Paused => "paused",
            Status::Passed => "passed",
            Status::Warning => "warning",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
            Status::Aborted => "aborted",
            Status::RolledBack => "rolled-back",
            Status::Refused => "refused",
            Status::Interrupted => "interrupted",
        }
    }

    /// Parses [`Status::word`].
    pub fn from_word(word: &str) -> Option<Status> {
        ALL_STATUSES.iter().copied().find(|s| s.word() == word)
    }
}

const ALL_STATUSES: [Status; 12] = [
    Status::Pending,
    Status::Running,
    Status::WaitingForApproval,
    Status::Paused,
    Status::Passed,
    Status::Warning,
    Status::Failed,
    Status::Skipped,
    Status::Aborted,
    Status::RolledBack,
    Status::Refused,
    Status::Interrupted,
];

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// A gate's decision. No data is `Error`, never `Pass`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Met the pass criteria.
    Pass,
    /// Met only the warning criteria.
    Warning,
    /// Met neither.
    Fail,
    /// Could not be judged (no data, unreachable source).
    Error,
}

impl Verdict {
    /// The word used in files and output.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Warning => "warning",
            Verdict::Fail => "fail",
            Verdict::Error => "error",
        }
    }

    /// The glyph that carries the verdict without colour (`!` for an error, which a
    /// step's status shows as failed).
    pub fn glyph(self) -> &'static str {
        match self {
            Verdict::Pass => "✓",
            Verdict::Warning => "⚠",
            Verdict::Fail => "✗",
            Verdict::Error => "!",
        }
    }

    /// The step status this verdict gives.
    pub fn status(self) -> Status {
        match self {
            Verdict::Pass => Status::Passed,
            Verdict::Warning => Status::Warning,
            Verdict::Fail | Verdict::Error => Status::Failed,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// One line of evidence behind a verdict: what was checked, found and expected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// What was checked (`GET /healthz`, `error_ratio`, `stage/step`).
    pub check: String,
    /// This check's own verdict.
    pub verdict: Verdict,
    /// The value found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// What was required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// The query that produced the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Anything else a person needs to understand it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// For an SLO objective: how it scored (the gate detail's table).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objective: Option<ObjectiveFacts>,
    /// For an error-budget gate's remaining budget: the budget's figures (the cockpit's
    /// gauge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetFacts>,
    /// For a burn-rate check: the window pair and its rates (the cockpit's burn row).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burn: Option<BurnFacts>,
    /// For a metric the statistical judge compared: canary and baseline samples, the test
    /// and the threshold that decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Box<MetricComparison>>,
}

/// How one SLO objective scored, beside its pass target (`Evidence::expected`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectiveFacts {
    /// The warning target, if the objective has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// Its weight in the total score.
    pub weight: f64,
    /// What it scored: the weight on a pass, half on a warning, else 0.
    pub score: f64,
    /// A key SLI: failing it fails the evaluation whatever the total.
    pub key: bool,
}

/// An error budget as a gate found it, beside its display texts (`Evidence::value`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetFacts {
    /// Share of the budget left (1.0 = all of it; negative once overspent; None: no data).
    pub remaining: Option<f64>,
    /// The SLO target (0.999).
    pub target: f64,
    /// The SLO's rolling window.
    pub window: Span,
    /// When the budget runs out at the current burn rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exhaustion: Option<Span>,
    /// The least share the gate accepts, if it sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_remaining: Option<f64>,
}

/// One multi-window burn-rate check as a gate found it, beside its display texts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BurnFacts {
    /// The long window.
    pub long: Span,
    /// The short window that confirms the burn is still going on.
    pub short: Span,
    /// Burn rate over the long window (None: no data).
    pub long_rate: Option<f64>,
    /// Burn rate over the short window (None: no data).
    pub short_rate: Option<f64>,
    /// The burn rate above which the pair alerts on both windows.
    pub threshold: f64,
    /// The gate's own limit on the long window's rate, if it sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

impl Evidence {
    /// Evidence with the check, its verdict and the value found.
    pub fn new(check: impl Into<String>, verdict: Verdict, value: impl Into<String>) -> Self {
        Evidence {
            check: check.into(),
            verdict,
            value: Some(value.into()),
            expected: None,
            query: None,
            detail: None,
            objective: None,
            budget: None,
            burn: None,
            comparison: None,
        }
    }

    /// Adds what was required.
    pub fn expected(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }

    /// Adds a detail.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Adds an error budget's figures.
    pub fn budget(mut self, facts: BudgetFacts) -> Self {
        self.budget = Some(facts);
        self
    }

    /// Adds a burn-rate check's figures.
    pub fn burn(mut self, facts: BurnFacts) -> Self {
        self.burn = Some(facts);
        self
    }
}

/// Which part of a release an analysis served; the promotion rules differ between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnalysisPart {
    /// While traffic moves: failures past the limit roll back.
    Watch,
    /// Before a promotion (or a blue-green's switch): the latest must pass.
    Judge,
    /// After a promotion: a failure puts the previous version back.
    Bake,
}

impl AnalysisPart {
    /// The word a person reads.
    pub fn word(self) -> &'static str {
        match self {
            AnalysisPart::Watch => "watch",
            AnalysisPart::Judge => "judge",
            AnalysisPart::Bake => "bake",
        }
    }
}

/// An SLO evaluation as the journal keeps it, per service and stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationRecord {
    /// The service evaluated.
    pub service: String,
    /// The result.
    pub result: Verdict,
    /// The total score.
    pub score: f64,
    /// Every SLI value (None: no data).
    pub sli_values: std::collections::BTreeMap<String, Option<f64>>,
}

/// A stage as announced at the start of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StagePlan {
    /// Stage name.
    pub name: String,
    /// Steps as (name, kind, description).
    pub steps: Vec<StepPlan>,
}

/// A step as announced at the start of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepPlan {
    /// Step name.
    pub name: String,
    /// Step kind word.
    pub kind: String,
    /// What it will do.
    pub description: String,
    /// The `parallel` group it runs in, with the group's other steps at the same time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// What happened. Every event is journaled before the engine acts on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A run began (or was resumed).
    RunStarted {
        /// Pipeline name.
        pipeline: String,
        /// Service name.
        service: String,
        /// What will run.
        stages: Vec<StagePlan>,
        /// True when continuing an interrupted run.
        resumed: bool,
    },
    /// The run as a whole was paused or resumed by the operator.
    RunState {
        /// `paused` or `running`.
        status: Status,
    },
    /// A stage began.
    StageStarted {
        /// Stage name.
        stage: String,
    },
    /// A stage ended.
    StageFinished {
        /// Stage name.
        stage: String,
        /// How it ended.
        status: Status,
    },
    /// A step began.
    StepStarted {
        /// Stage name.
        stage: String,
        /// Step name.
        step: String,
        /// Step kind word.
        kind: String,
    },
    /// A running step changed state (waiting for approval, paused, running again).
    StepState {
        /// Stage name.
        stage: String,
        /// Step name.
        step: String,
        /// The new state.
        status: Status,
        /// Why, for a person.
        message: String,
    },
    /// A step ended.
    StepFinished {
        /// Stage name.
        stage: String,
        /// Step name.
        step: String,
        /// How it ended.
        status: Status,
        /// The gate verdict, for steps that judge.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        verdict: Option<Verdict>,
        /// One line for a person.
        summary: String,
        /// The checks behind the verdict.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        evidence: Vec<Evidence>,
        /// An SLO evaluation's values, kept as history for relative criteria.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        evaluation: Option<EvaluationRecord>,
    },
    /// Figures a step measured itself (a load test's `load.*` SLIs), which later gates of
    /// the stage read like Prometheus SLIs. Journaled, so a resumed run still has them.
    Measured {
        /// Stage name.
        stage: String,
        /// Step name.
        step: String,
        /// SLI name → value.
        values: std::collections::BTreeMap<String, f64>,
    },
    /// Where a release's traffic goes now (the cockpit's traffic pane).
    Traffic {
        /// Stage name.
        stage: String,
        /// Step name.
        step: String,
        /// Percent of requests on the new version (canary or new colour).
        weight: u8,
        /// How it got there, for a person (`4 canary and 2 stable replicas ready`).
        note: String,
        /// The percent the router really sends to the new version, read back from the
        /// cluster (HTTPRoute weights, or ready replicas without a router); `None` when it
        /// cannot be observed (blue-green switches a Service selector at once).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        actual: Option<u8>,
        /// The percent the release's replica counts give, when that is what splits the
        /// traffic (both sides rounded up: coarser than `weight` with few replicas);
        /// `actual` is judged against it, else against `weight`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        planned: Option<u8>,
        /// Replica readiness of each version.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        replicas: Vec<VersionReplicas>,
    },
    /// One release analysis: each SLI's value for the new version, the objectives' pass
    /// targets, and the verdict (the cockpit's SLO charts).
    Analysis {
        /// Stage name.
        stage: String,
        /// Step name.
        step: String,
        /// SLI → value (None: no data).
        values: std::collections::BTreeMap<String, Option<f64>>,
        /// SLI → the stable version's value over the same window, for comparison.
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        stable: std::collections::BTreeMap<String, Option<f64>>,
        /// SLI → its pass criteria (`<=0.01`).
        targets: std::collections::BTreeMap<String, String>,
        /// SLI → its warning criteria (`<=0.02`), for those that have one.
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        warnings: std::collections::BTreeMap<String, String>,
        /// The analysis verdict.
        verdict: Verdict,
        /// The statistical judge's judgement, with every sample it used (`judge:
        /// statistical`); enough to decide again from the journal alone.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        judgement: Option<Box<Judgement>>,
        /// Which part of the release it served (absent in journals older than replay).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        part: Option<AnalysisPart>,
    },
    /// A line of output from a step.
    Log {
        /// Stage name.
        stage: String,
        /// Step name.
        step: String,
        /// Where it came from (`stdout`, `stderr`, `http`, `load`...).
        source: String,
        /// The line.
        line: String,
    },
    /// An operator command, accepted or refused.
    Operator {
        /// The command.
        command: CommandKind,
        /// Who sent it.
        who: String,
        /// Whether it took effect.
        accepted: bool,
        /// Why it was refused, or a note.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// Who sent it, in full (journals from before identities have none).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sender: Option<crate::identity::Sender>,
    },
    /// A release train's member began a stage as a run of its own (journaled in the train's
    /// run): that member's events of the stage are the events of `run`.
    Member {
        /// The train's stage.
        stage: String,
        /// The member's name in the train.
        member: String,
        /// The member's own run for this stage.
        run: i64,
        /// Its dependency wave in the stage, from 1.
        wave: usize,
    },
    /// The run ended.
    RunFinished {
        /// How it ended.
        status: Status,
        /// The process exit code this outcome maps to.
        exit_code: i32,
        /// Why, for a person.
        reason: String,
    },
}

/// One version's Deployment during a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionReplicas {
    /// `stable` or `new`.
    pub role: String,
    /// Its version (the `version` label, else the image tag).
    pub version: String,
    /// Ready pods.
    pub ready: u32,
    /// Pods asked for.
    pub desired: u32,
}

impl Event {
    /// The snake_case type tag, as stored in the journal.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::RunStarted { .. } => "run_started",
            Event::RunState { .. } => "run_state",
            Event::StageStarted { .. } => "stage_started",
            Event::StageFinished { .. } => "stage_finished",
            Event::StepStarted { .. } => "step_started",
            Event::StepState { .. } => "step_state",
            Event::StepFinished { .. } => "step_finished",
            Event::Log { .. } => "log",
            Event::Measured { .. } => "measured",
            Event::Traffic { .. } => "traffic",
            Event::Analysis { .. } => "analysis",
            Event::Operator { .. } => "operator",
            Event::Member { .. } => "member",
            Event::RunFinished { .. } => "run_finished",
        }
    }

    /// The stage and step the event concerns, if any.
    pub fn location(&self) -> (Option<&str>, Option<&str>) {
        match self {
            Event::StageStarted { stage } | Event::StageFinished { stage, .. } => {
                (Some(stage), None)
            }
            Event::StepStarted { stage, step, .. }
            | Event::StepState { stage, step, .. }
            | Event::StepFinished { stage, step, .. }
            | Event::Measured { stage, step, .. }
            | Event::Traffic { stage, step, .. }
            | Event::Analysis { stage, step, .. }
            | Event::Log { stage, step, .. } => (Some(stage), Some(step)),
            Event::Member { stage, member, .. } => (Some(stage), Some(member)),
            _ => (None, None),
        }
    }
}

/// An event with its place in the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The run.
    pub run: i64,
    /// Position in the run's event sequence, from 1.
    pub seq: u64,
    /// Wall-clock time, milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The event.
    #[serde(flatten)]
    pub event: Event,
}

/// `HH:MM:SS` in UTC, for an event's or a log line's time.
pub fn clock(at_ms: i64) -> String {
    let secs = at_ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// What an operator can ask of a running pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommandKind {
    /// Hold the run before its next step, and freeze pause countdowns.
    Pause,
    /// Undo `pause`, or end a `pause: {}` step.
    Resume,
    /// Approve what waits for approval.
    Approve,
    /// Decline what waits for approval.
    Reject,
    /// Stop the run now.
    Abort,
    /// Undo the current stage and stop.
    Rollback,
    /// Skip the current pause.
    Promote,
}

impl CommandKind {
    /// The word used on the command line and in the journal.
    pub fn word(self) -> &'static str {
        match self {
            CommandKind::Pause => "pause",
            CommandKind::Resume => "resume",
            CommandKind::Approve => "approve",
            CommandKind::Reject => "reject",
            CommandKind::Abort => "abort",
            CommandKind::Rollback => "rollback",
            CommandKind::Promote => "promote",
        }
    }

    /// Parses [`CommandKind::word`].
    pub fn from_word(word: &str) -> Option<CommandKind> {
        [
            CommandKind::Pause,
            CommandKind::Resume,
            CommandKind::Approve,
            CommandKind::Reject,
            CommandKind::Abort,
            CommandKind::Rollback,
            CommandKind::Promote,
        ]
        .into_iter()
        .find(|c| c.word() == word)
    }
}

impl fmt::Display for CommandKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// An operator command with who sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// What is asked.
    pub kind: CommandKind,
    /// Who asked (`user@host`, `tui`, `test`).
    pub who: String,
    /// Who asked, in full, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<crate::identity::Sender>,
    /// A release train's member the command is for (none: the whole train, or a
    /// pipeline's run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
}

impl Command {
    /// A command from `who`.
    pub fn new(kind: CommandKind, who: impl Into<String>) -> Self {
        Command {
            kind,
            who: who.into(),
            sender: None,
            member: None,
        }
    }

    /// A command from a known sender (`who` is its label).
    pub fn from(kind: CommandKind, sender: crate::identity::Sender) -> Self {
        Command {
            kind,
            who: sender.label(),
            sender: Some(sender),
            member: None,
        }
    }

    /// The same command, for one member of a release train.
    pub fn for_member(self, member: Option<String>) -> Self {
        Command { member, ..self }
    }
}

/// The exit codes of the CLI (DESIGN.md).
pub mod exit {
    /// Released or passed.
    pub const OK: i32 = 0;
    /// A gate failed, or the run was rolled back.
    pub const FAILED: i32 = 1;
    /// Bad input: config or flags.
    pub const BAD_INPUT: i32 = 2;
    /// Aborted by the operator.
    pub const ABORTED: i32 = 3;
    /// Infrastructure error: cluster, Prometheus, journal.
    pub const INFRA: i32 = 4;
}

/// `user@host`, for operator actions.
pub fn whoami() -> String {
    let user = crate::store::this_user();
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into());
    format!("{user}@{host}")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn evidence_journaled_before_typed_figures_still_loads() {
        let old = r#"{"check":"budget remaining","verdict":"fail","value":"-12.4%"}"#;
        let e: Evidence = serde_json::from_str(old).unwrap();
        assert_eq!(e.value.as_deref(), Some("-12.4%"));
        assert_eq!((e.budget, e.burn), (None, None));
    }

    #[test]
    fn budget_and_burn_figures_round_trip_with_windows_as_durations() {
        let hours = |h: u64| Span(Duration::from_secs(h * 3600));
        let budget =
            Evidence::new("budget remaining", Verdict::Fail, "-12.4%").budget(BudgetFacts {
                remaining: Some(-0.124),
                target: 0.999,
                window: hours(720),
                exhaustion: None,
                min_remaining: Some(0.25),
            });
        let burn = Evidence::new("burn rate 1h", Verdict::Fail, "16.20x").burn(BurnFacts {
            long: hours(1),
            short: Span(Duration::from_secs(300)),
            long_rate: Some(16.2),
            short_rate: None,
            threshold: 14.4,
            max: Some(10.0),
        });
        let json = serde_json::to_string(&[&budget, &burn]).unwrap();
        assert!(json.contains(r#""window":"30d""#), "{json}");
        assert!(json.contains(r#""long":"1h","short":"5m""#), "{json}");
        assert!(!json.contains("exhaustion"), "{json}");
        let back: Vec<Evidence> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, vec![budget, burn]);
    }
}
