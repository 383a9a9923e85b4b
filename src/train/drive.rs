//! Running a train: all members through a stage before the next stage starts; inside a
//! stage, dependency waves, a wave's members side by side (each its own engine run, with
//! its own pre-flight, gates, analysis and error budget). One approval between stages
//! covers the whole train. When a member fails, its partners still running stop, and
//! (`onFailure: rollbackStage`) the members this stage promoted are rolled back in reverse
//! dependency order. The train's own run journals the plan, each member's sub-run
//! ([`Event::Member`]) and each member's state per stage (a step named after the member).

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};
use tokio::task::{JoinHandle, JoinSet};

use super::approval::{Answer, Gate};
use super::model::TrainFailure;
use super::resume::{Prior, Resumption, TrainResume};
use super::rollback::Rolled;
use super::{Train, rollback};
use crate::engine::{self, Emitter, Outcome, RunOptions};
use crate::events::{Command, CommandKind, Envelope, Event, StagePlan, Status, StepPlan, exit};

/// What the train's driver asks of whoever runs it (the CLI): a journaled sub-run for a
/// member's stage, and followers of its events.
pub trait Crew: Send + Sync {
    /// A new run for `member` in `stage`, as an emitter for its events.
    fn member_run(&self, member: usize, stage: &str) -> Result<Emitter, String>;
    /// How `member`'s interrupted sub-run `run` in `stage` goes on (a resumed train).
    fn resume_member(&self, member: usize, stage: &str, run: i64) -> Result<Resumption, String>;
    /// Subscribes followers (a printer) to a member's events before its first one.
    fn follow(&self, member: &str, events: &broadcast::Sender<Envelope>) -> Option<JoinHandle<()>>;
}

/// Settings every member's run shares.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// The approval between stages passes by itself.
    pub auto_approve: bool,
    /// The journal, where members' steps find evaluation history.
    pub journal: Option<crate::store::Location>,
    /// Targets whose Services publish a loopback address (the sandbox).
    pub service_addresses: Option<crate::kube::ServiceAddresses>,
    /// What an interrupted run of this train had done, when it is resumed.
    pub resume: Option<TrainResume>,
    /// Who drives the train: its own cockpit's commands come from them, and approval
    /// rules that forbid self-approval refuse them.
    pub driver: Option<crate::identity::Sender>,
}

/// Where a member ended, as reports and the last lines name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// Never started (the train stopped before its wave).
    NotStarted,
    /// Every stage it reached passed.
    Promoted,
    /// It failed (its own failure handling, such as a canary's rollback, ran).
    Failed,
    /// Stopped while running because a partner failed, or the operator aborted.
    Stopped,
    /// Rolled back: by its own rollback when stopped, or by the train's.
    RolledBack,
    /// The train's rollback of it failed: it still runs the new version.
    RollbackFailed,
}

impl MemberState {
    /// The words reports and output use.
    pub fn word(self) -> &'static str {
        match self {
            MemberState::NotStarted => "not started",
            MemberState::Promoted => "promoted",
            MemberState::Failed => "failed",
            MemberState::Stopped => "stopped",
            MemberState::RolledBack => "rolled back",
            MemberState::RollbackFailed => "rollback failed",
        }
    }

    /// The status the train's run journals for the member's step.
    fn status(self) -> Status {
        match self {
            MemberState::NotStarted => Status::Skipped,
            MemberState::Promoted => Status::Passed,
            MemberState::Failed | MemberState::RollbackFailed => Status::Failed,
            MemberState::Stopped => Status::Aborted,
            MemberState::RolledBack => Status::RolledBack,
        }
    }
}

/// How a train ended, with each member's final state.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// The train's outcome, as a run's.
    pub outcome: Outcome,
    /// Each member's end, in the file's order.
    pub members: Vec<MemberEnd>,
}

/// Where a member ended: its state in each stage the train reached, in order.
#[derive(Debug, Clone)]
pub struct MemberEnd {
    /// Its name in the train.
    pub name: String,
    /// Its state in each stage the train reached.
    pub stages: Vec<(String, MemberState)>,
}

impl MemberEnd {
    /// The last line for it: `checkout: not started in prod (promoted in staging)`,
    /// `payments: promoted in staging, prod`.
    pub fn line(&self) -> String {
        let Some((last, state)) = self.stages.last() else {
            return format!("{}: not started", self.name);
        };
        let promoted: Vec<&str> = self
            .stages
            .iter()
            .filter(|(_, s)| *s == MemberState::Promoted)
            .map(|(stage, _)| stage.as_str())
            .collect();
        if *state == MemberState::Promoted {
            return format!("{}: promoted in {}", self.name, promoted.join(", "));
        }
        let mut line = format!("{}: {} in {last}", self.name, state.word());
        if !promoted.is_empty() {
            line.push_str(&format!(" (promoted in {})", promoted.join(", ")));
        }
        line
    }
}

/// The step of each stage but the last where the train waits for its one approval.
pub const APPROVAL: &str = "approve";

/// What went wrong in a wave or a stage, that ends the train.
enum Stop {
    /// The journal failed.
    Journal(String),
    /// The train ends with this outcome.
    Ended(Outcome),
}

type Flow<T> = Result<T, Stop>;

struct Driver {
    train: Arc<Train>,
    emitter: Emitter,
    commands: mpsc::UnboundedReceiver<Command>,
    settings: Settings,
    crew: Arc<dyn Crew>,
    /// Each member's state in each stage the train reached, in order.
    states: Vec<Vec<(String, MemberState)>>,
    followers: Vec<JoinHandle<()>>,
    /// The operator paused the whole train: members that start now start paused.
    paused: bool,
}

/// Drives `train` to its end; its run's events go to `emitter`, operator commands come
/// in on `commands`.
pub async fn drive(
    train: Arc<Train>,
    emitter: Emitter,
    commands: mpsc::UnboundedReceiver<Command>,
    settings: Settings,
    crew: Arc<dyn Crew>,
) -> TrainOutcome {
    let states = vec![Vec::new(); train.members.len()];
    let mut d = Driver {
        train,
        emitter,
        commands,
        settings,
        crew,
        states,
        followers: Vec::new(),
        paused: false,
    };
    let outcome = match d.stages().await {
        Ok(o) | Err(Stop::Ended(o)) => o,
        Err(Stop::Journal(e)) => Outcome {
            status: Status::Failed,
            exit_code: exit::INFRA,
            reason: format!("cannot write the journal: {e}"),
        },
    };
    for f in std::mem::take(&mut d.followers) {
        let _ = f.await;
    }
    let _ = d.emitter.emit(Event::RunFinished {
        status: outcome.status,
        exit_code: outcome.exit_code,
        reason: outcome.reason.clone(),
    });
    let members = d
        .train
        .members
        .iter()
        .zip(std::mem::take(&mut d.states))
        .map(|(m, stages)| MemberEnd {
            name: m.name.clone(),
            stages,
        })
        .collect();
    TrainOutcome { outcome, members }
}

impl Driver {
    fn emit(&self, event: Event) -> Flow<()> {
        self.emitter
            .emit(event)
            .map_err(|e| Stop::Journal(e.to_string()))
    }

    /// The plan: each stage's steps are its members (grouped by wave), then the approval.
    fn plan(&self) -> Vec<StagePlan> {
        let t = &self.train;
        t.stages
            .iter()
            .enumerate()
            .map(|(si, stage)| {
                let mut steps: Vec<StepPlan> = Vec::new();
                for (wi, wave) in t.waves.iter().enumerate() {
                    for m in wave {
                        let member = &t.members[*m];
                        steps.push(StepPlan {
                            name: member.name.clone(),
                            kind: "member".into(),
                            description: format!(
                                "{} ({}) in wave {}",
                                member.pipeline.path.display(),
                                member.pipeline.service,
                                wi + 1
                            ),
                            group: Some(format!("wave {}", wi + 1)),
                        });
                    }
                }
                if si + 1 < t.stages.len() {
                    steps.push(StepPlan {
                        name: APPROVAL.into(),
                        kind: "approval".into(),
                        description: format!(
                            "one approval moves the whole train to {}",
                            t.stages[si + 1]
                        ),
                        group: None,
                    });
                }
                StagePlan {
                    name: stage.clone(),
                    steps,
                }
            })
            .collect()
    }

    async fn stages(&mut self) -> Flow<Outcome> {
        self.emit(Event::RunStarted {
            pipeline: self.train.name.clone(),
            service: "train".into(),
            stages: self.plan(),
            resumed: self.settings.resume.is_some(),
        })?;
        let stages = self.train.stages.clone();
        for (si, stage) in stages.iter().enumerate() {
            if self.passed_before(stage) {
                continue;
            }
            if !self
                .settings
                .resume
                .as_ref()
                .is_some_and(|r| r.started.contains(stage))
            {
                self.emit(Event::StageStarted {
                    stage: stage.clone(),
                })?;
            }
            let promoted = match self.stage(stage).await {
                Ok(promoted) => promoted,
                Err(stop) => {
                    if let Stop::Ended(o) = &stop {
                        self.emit(Event::StageFinished {
                            stage: stage.clone(),
                            status: o.status,
                        })?;
                    }
                    for later in &stages[si + 1..] {
                        self.skip_stage(later)?;
                    }
                    return Err(stop);
                }
            };
            if let Some(next) = stages.get(si + 1)
                && let Err(stop) = self.approval(stage, next, &promoted).await
            {
                self.emit(Event::StageFinished {
                    stage: stage.clone(),
                    status: Status::Aborted,
                })?;
                for later in &stages[si + 1..] {
                    self.skip_stage(later)?;
                }
                return Err(stop);
            }
            self.emit(Event::StageFinished {
                stage: stage.clone(),
                status: Status::Passed,
            })?;
        }
        Ok(Outcome {
            status: Status::Passed,
            exit_code: exit::OK,
            reason: format!(
                "every member promoted through {}",
                self.train.stages.join(", ")
            ),
        })
    }

    /// Whether an interrupted run of the train had passed `stage`; its members' states
    /// are then what that run journaled.
    fn passed_before(&mut self, stage: &str) -> bool {
        let Some(r) = &self.settings.resume else {
            return false;
        };
        if !r.passed.contains(stage) {
            return false;
        }
        let priors: Vec<(usize, MemberState)> = (self.train.members.iter().enumerate())
            .filter_map(|(m, member)| Some((m, prior_state(r.finished(stage, &member.name)?))))
            .collect();
        for (m, state) in priors {
            self.set_state(m, stage, state);
        }
        true
    }

    /// The member's end in `stage` an interrupted run of the train journaled.
    fn prior(&self, stage: &str, m: usize) -> Option<Prior> {
        let r = self.settings.resume.as_ref()?;
        r.finished(stage, &self.train.members[m].name).cloned()
    }

    /// The member's sub-run in `stage` an interrupted run started and never saw end.
    fn interrupted(&self, stage: &str, m: usize) -> Option<i64> {
        let r = self.settings.resume.as_ref()?;
        r.running(stage, &self.train.members[m].name)
    }

    /// A stage the train never reached: every member skipped.
    fn skip_stage(&self, stage: &str) -> Flow<()> {
        for m in &self.train.members {
            self.finish(
                stage,
                &m.name,
                Status::Skipped,
                "the train stopped before this stage".into(),
            )?;
        }
        Ok(())
    }

    fn finish(&self, stage: &str, step: &str, status: Status, summary: String) -> Flow<()> {
        self.emit(Event::StepFinished {
            stage: stage.into(),
            step: step.into(),
            status,
            verdict: None,
            summary,
            evidence: Vec::new(),
            evaluation: None,
        })
    }

    /// One stage: each wave after the one before; a failure ends the stage (and the train).
    /// Returns the members it promoted.
    async fn stage(&mut self, stage: &str) -> Flow<Vec<usize>> {
        let mut promoted: Vec<usize> = Vec::new();
        let waves = self.train.waves.clone();
        for (wi, wave) in waves.iter().enumerate() {
            let end = self.wave(stage, wi, wave).await?;
            for (m, outcome) in &end.ended {
                let state = if outcome.exit_code == exit::OK {
                    promoted.push(*m);
                    MemberState::Promoted
                } else if end.failed == Some(*m) {
                    MemberState::Failed
                } else if outcome.status == Status::RolledBack {
                    MemberState::RolledBack
                } else if outcome.status == Status::Aborted {
                    MemberState::Stopped
                } else {
                    MemberState::Failed
                };
                self.set_state(*m, stage, state);
                if end.prior.contains(m) {
                    continue;
                }
                let name = self.train.members[*m].name.clone();
                let summary = match (state, outcome.status) {
                    (MemberState::Promoted, Status::Warning) => {
                        format!("promoted in {stage}, {}", outcome.reason)
                    }
                    (MemberState::Promoted, _) => format!("promoted in {stage}"),
                    (MemberState::Failed, _) => outcome.reason.clone(),
                    (MemberState::RolledBack, _) => {
                        format!("stopped, its stage rolled back: {}", outcome.reason)
                    }
                    _ => format!("{}: {}", state.word(), outcome.reason),
                };
                self.finish(stage, &name, state.status(), summary)?;
            }
            if let Some(m) = end.failed {
                let name = self.train.members[m].name.clone();
                let outcome = end
                    .ended
                    .iter()
                    .find(|(e, _)| *e == m)
                    .map(|(_, o)| o.clone())
                    .unwrap_or_else(|| Outcome {
                        status: Status::Failed,
                        exit_code: exit::FAILED,
                        reason: "it failed".into(),
                    });
                self.not_started(stage, &waves[wi + 1..], &format!("{name} failed"))?;
                let outcome = self
                    .after_failure(stage, &name, &outcome, &promoted)
                    .await?;
                return Err(Stop::Ended(outcome));
            }
            if let Some(who) = end.aborted {
                self.not_started(stage, &waves[wi + 1..], "the train was aborted")?;
                return Err(Stop::Ended(Outcome {
                    status: Status::Aborted,
                    exit_code: exit::ABORTED,
                    reason: format!("aborted by {who}"),
                }));
            }
            if let Some(who) = end.rolled_back {
                let why = format!("rolled back by {who}");
                self.not_started(stage, &waves[wi + 1..], &why)?;
                let why = format!("{why} in {stage}");
                return Err(Stop::Ended(
                    self.roll_back_stage(stage, why, &promoted).await?,
                ));
            }
        }
        Ok(promoted)
    }

    /// Members of waves the stage never reached.
    fn not_started(&mut self, stage: &str, waves: &[Vec<usize>], why: &str) -> Flow<()> {
        for m in waves.iter().flatten() {
            self.set_state(*m, stage, MemberState::NotStarted);
            let name = &self.train.members[*m].name;
            self.finish(stage, name, Status::Skipped, format!("not started: {why}"))?;
        }
        Ok(())
    }

    /// The member's state in `stage` (the last one it reached).
    fn set_state(&mut self, m: usize, stage: &str, state: MemberState) {
        let stages = &mut self.states[m];
        match stages.last_mut() {
            Some((s, st)) if s == stage => *st = state,
            _ => stages.push((stage.to_owned(), state)),
        }
    }

    /// A member failed: the train's outcome, after rolling back what this stage promoted
    /// (`rollbackStage`).
    async fn after_failure(
        &mut self,
        stage: &str,
        name: &str,
        outcome: &Outcome,
        promoted: &[usize],
    ) -> Flow<Outcome> {
        let why = format!("{name} failed in {stage}: {}", outcome.reason);
        if self.train.on_failure == TrainFailure::Stop || promoted.is_empty() {
            let kept: Vec<&str> = promoted
                .iter()
                .map(|m| self.train.members[*m].name.as_str())
                .collect();
            let reason = if kept.is_empty() {
                why
            } else {
                format!("{why}; promoted members stay ({})", kept.join(", "))
            };
            return Ok(Outcome {
                status: Status::Failed,
                exit_code: exit::FAILED,
                reason,
            });
        }
        self.roll_back_stage(stage, why, promoted).await
    }

    /// Rolls back the members `stage` promoted, in reverse dependency order; the train's
    /// outcome, `why` first.
    async fn roll_back_stage(
        &mut self,
        stage: &str,
        why: String,
        promoted: &[usize],
    ) -> Flow<Outcome> {
        let (mut rolled, mut kept, mut broken) = (Vec::new(), Vec::new(), Vec::new());
        for m in rollback::reverse_order(&self.train, promoted) {
            let member = self.train.members[m].name.clone();
            match self.roll_back(stage, m).await? {
                MemberState::RolledBack => rolled.push(member),
                MemberState::Promoted => kept.push(member),
                _ => broken.push(member),
            }
        }
        let mut reason = why;
        if !rolled.is_empty() {
            reason = format!("{reason}; rolled back {}", rolled.join(", "));
        }
        if !kept.is_empty() {
            reason = format!(
                "{reason}; kept {} ({stage} created them: nothing earlier to return to)",
                kept.join(", ")
            );
        }
        if !broken.is_empty() {
            reason = format!("{reason}; the rollback of {} failed", broken.join(", "));
        }
        Ok(Outcome {
            status: if broken.is_empty() {
                Status::RolledBack
            } else {
                Status::Failed
            },
            exit_code: if broken.is_empty() {
                exit::FAILED
            } else {
                exit::INFRA
            },
            reason,
        })
    }

    /// Rolls one promoted member's stage back, journaled as the member's step; its state
    /// after (still promoted when the stage created what it deployed: nothing to go back to).
    async fn roll_back(&mut self, stage: &str, m: usize) -> Flow<MemberState> {
        let name = self.train.members[m].name.clone();
        self.emit(Event::StepState {
            stage: stage.into(),
            step: name.clone(),
            status: Status::Running,
            message: "rolling back".into(),
        })?;
        let emitter = self.emitter.clone();
        let (st, member) = (stage.to_owned(), name.clone());
        let log: Arc<dyn Fn(Event) + Send + Sync> = Arc::new(move |e| {
            if let Event::Log { source, line, .. } = e {
                emitter.log(Event::Log {
                    stage: st.clone(),
                    step: member.clone(),
                    source,
                    line,
                });
            }
        });
        let who = format!("train {} ({})", self.train.name, crate::events::whoami());
        let p = &self.train.members[m].pipeline;
        let (state, summary) = match rollback::roll_back_member(p, stage, &who, log).await {
            Ok(Rolled::Back(done)) => (MemberState::RolledBack, format!("rolled back: {done}")),
            Ok(Rolled::Kept(why)) => (MemberState::Promoted, format!("kept: {why}")),
            Err(e) => (MemberState::RollbackFailed, format!("rollback failed: {e}")),
        };
        self.set_state(m, stage, state);
        self.finish(stage, &name, state.status(), summary)?;
        Ok(state)
    }
}

/// How a partner's stop is signed, in its journal.
const STOPPED_BY: &str = "the train";

/// How a wave ended: each member's outcome in the order they ended, the member whose
/// failure stopped the others, or who aborted the train.
#[derive(Default)]
struct WaveEnd {
    ended: Vec<(usize, Outcome)>,
    /// Members whose end an interrupted run of the train had journaled already.
    prior: Vec<usize>,
    failed: Option<usize>,
    aborted: Option<String>,
    /// Who rolled the train back while the wave ran.
    rolled_back: Option<String>,
}

impl WaveEnd {
    /// The wave is already stopping (a failure, an abort or a rollback).
    fn stopping(&self) -> bool {
        self.failed.is_some() || self.aborted.is_some() || self.rolled_back.is_some()
    }
}

impl Driver {
    /// Starts one member's engine on `stage`; its handle's commands and its outcome.
    fn start_member(
        &mut self,
        stage: &str,
        wave: usize,
        m: usize,
        running: &mut JoinSet<(usize, Outcome)>,
    ) -> Flow<mpsc::UnboundedSender<Command>> {
        let member = &self.train.members[m];
        let name = member.name.clone();
        self.emit(Event::StepStarted {
            stage: stage.into(),
            step: name.clone(),
            kind: "member".into(),
        })?;
        let emitter = match self.crew.member_run(m, stage) {
            Ok(e) => e,
            Err(e) => {
                return Err(Stop::Ended(Outcome {
                    status: Status::Failed,
                    exit_code: exit::INFRA,
                    reason: format!("cannot start {name}'s run: {e}"),
                }));
            }
        };
        self.emit(Event::Member {
            stage: stage.into(),
            member: name.clone(),
            run: emitter.run(),
            wave: wave + 1,
        })?;
        Ok(self.launch(stage, m, emitter, None, running))
    }

    /// Continues the member's interrupted sub-run `run` in `stage` from its last committed
    /// event (or takes its end, when it had ended).
    fn continue_member(
        &mut self,
        stage: &str,
        m: usize,
        run: i64,
        running: &mut JoinSet<(usize, Outcome)>,
    ) -> Flow<mpsc::UnboundedSender<Command>> {
        let name = self.train.members[m].name.clone();
        let resumption = self.crew.resume_member(m, stage, run).map_err(|e| {
            Stop::Ended(Outcome {
                status: Status::Failed,
                exit_code: exit::INFRA,
                reason: format!("cannot resume {name}'s run {run}: {e}"),
            })
        })?;
        match resumption {
            Resumption::Ended(outcome) => {
                running.spawn(async move { (m, outcome) });
                // Nobody is left to command: the member's run had ended.
                Ok(mpsc::unbounded_channel().0)
            }
            Resumption::Continue { emitter, resumed } => {
                self.emit(Event::StepState {
                    stage: stage.into(),
                    step: name,
                    status: Status::Running,
                    message: format!("run {run} resumed from its last committed event"),
                })?;
                Ok(self.launch(stage, m, emitter, Some(resumed), running))
            }
        }
    }

    /// Starts the member's engine on `stage` (from where it stood, when `resumed`).
    fn launch(
        &mut self,
        stage: &str,
        m: usize,
        emitter: Emitter,
        resumed: Option<engine::Resumed>,
        running: &mut JoinSet<(usize, Outcome)>,
    ) -> mpsc::UnboundedSender<Command> {
        let member = &self.train.members[m];
        let name = member.name.clone();
        let options = RunOptions {
            stage: Some(stage.into()),
            // The train's one approval between stages covers the member's own.
            auto_approve: true,
            resumed,
            journal: self.settings.journal.clone(),
            preflight_only: false,
            service_addresses: self.settings.service_addresses.clone(),
            driver: None,
        };
        let mut follower = None;
        let crew = self.crew.clone();
        let pipeline = Arc::new(member.pipeline.clone());
        let handle = engine::start_with(pipeline, emitter, options, |tx| {
            follower = crew.follow(&name, tx);
        });
        self.followers.extend(follower);
        let commands = handle.commands.clone();
        if self.paused {
            let _ = commands.send(Command::new(CommandKind::Pause, STOPPED_BY));
        }
        running.spawn(async move { (m, handle.wait().await) });
        commands
    }

    /// One wave: its members side by side until each ends; the first failure stops the
    /// partners still running. Returns each member's outcome, in the order they ended.
    async fn wave(&mut self, stage: &str, wi: usize, wave: &[usize]) -> Flow<WaveEnd> {
        let mut running = JoinSet::new();
        let mut commands: BTreeMap<usize, mpsc::UnboundedSender<Command>> = BTreeMap::new();
        let mut end = WaveEnd::default();
        for &m in wave {
            if let Some(prior) = self.prior(stage, m) {
                end.prior.push(m);
                end.ended.push((m, prior.outcome()));
                continue;
            }
            let started = match self.interrupted(stage, m) {
                Some(run) => self.continue_member(stage, m, run, &mut running),
                None => self.start_member(stage, wi, m, &mut running),
            };
            match started {
                Ok(tx) => {
                    commands.insert(m, tx);
                }
                Err(stop) => {
                    for tx in commands.values() {
                        let _ = tx.send(Command::new(CommandKind::Abort, STOPPED_BY));
                    }
                    while running.join_next().await.is_some() {}
                    return Err(stop);
                }
            }
        }
        self.prior_failure(&mut end, &commands);
        while !running.is_empty() {
            tokio::select! {
                next = running.join_next() => {
                    let Some(Ok((m, outcome))) = next else { continue };
                    commands.remove(&m);
                    if outcome.exit_code != exit::OK && !end.stopping() {
                        end.failed = Some(m);
                        self.stop_partners(&commands, &self.train.members[m].name);
                    }
                    end.ended.push((m, outcome));
                }
                Some(c) = self.commands.recv() => self.wave_command(c, &commands, &mut end)?,
            }
        }
        Ok(end)
    }

    /// A failure or an abort among the wave's ends an interrupted run had journaled: the
    /// partners still running stop as they would have then.
    fn prior_failure(
        &self,
        end: &mut WaveEnd,
        running: &BTreeMap<usize, mpsc::UnboundedSender<Command>>,
    ) {
        for (m, outcome) in &end.ended {
            if outcome.exit_code == exit::OK || end.failed.is_some() || end.aborted.is_some() {
                continue;
            }
            if outcome.status == Status::Aborted {
                end.aborted = Some(format!("{} before the train was resumed", STOPPED_BY));
                for tx in running.values() {
                    let _ = tx.send(Command::new(CommandKind::Abort, STOPPED_BY));
                }
            } else {
                end.failed = Some(*m);
                self.stop_partners(running, &self.train.members[*m].name);
            }
        }
    }

    /// An operator's command while a wave runs: one for a named member goes to its engine
    /// (whose run journals the answer); the train takes abort, rollback (the running
    /// members roll their stage back, then the train rolls back what the stage promoted),
    /// and pause or resume (every running member, and those that start while paused).
    fn wave_command(
        &mut self,
        c: Command,
        running: &BTreeMap<usize, mpsc::UnboundedSender<Command>>,
        end: &mut WaveEnd,
    ) -> Flow<()> {
        if let Some(name) = c.member.clone() {
            let target = running
                .iter()
                .find(|(m, _)| self.train.members[**m].name == name);
            return match target {
                Some((_, tx)) => {
                    let _ = tx.send(c.for_member(None));
                    Ok(())
                }
                None => self.answer(&c, false, &format!("member {name} is not running now")),
            };
        }
        let forward = |kind: CommandKind| {
            for tx in running.values() {
                let _ = tx.send(Command::new(kind, c.who.clone()));
            }
        };
        match c.kind {
            CommandKind::Abort if !end.stopping() => {
                end.aborted = Some(c.who.clone());
                forward(CommandKind::Abort);
            }
            CommandKind::Rollback if !end.stopping() => {
                end.rolled_back = Some(c.who.clone());
                forward(CommandKind::Rollback);
            }
            CommandKind::Pause | CommandKind::Resume => {
                forward(c.kind);
                self.hold(c.kind == CommandKind::Pause)?;
            }
            _ => {
                let why = if end.stopping() {
                    "the train is already stopping"
                } else {
                    "while members run, the train takes abort, rollback, pause and resume; approve and reject answer its approval between stages; promote acts on one member"
                };
                return self.answer(&c, false, why);
            }
        }
        self.answer(&c, true, "")
    }

    /// Pauses (or resumes) the train: members that start now start paused.
    fn hold(&mut self, paused: bool) -> Flow<()> {
        self.paused = paused;
        let status = if paused {
            Status::Paused
        } else {
            Status::Running
        };
        self.emit(Event::RunState { status })
    }

    /// Stops the partners still running: each rolls its own stage back (`rollbackStage`)
    /// or stops where it is (`stop`).
    fn stop_partners(
        &self,
        running: &BTreeMap<usize, mpsc::UnboundedSender<Command>>,
        failed: &str,
    ) {
        let kind = match self.train.on_failure {
            TrainFailure::RollbackStage => CommandKind::Rollback,
            TrainFailure::Stop => CommandKind::Abort,
        };
        for tx in running.values() {
            let _ = tx.send(Command::new(
                kind,
                format!("{STOPPED_BY} ({failed} failed)"),
            ));
        }
    }

    /// Journals whether a command took effect, so `glidepath approve` learns it.
    fn answer(&self, c: &Command, accepted: bool, refusal: &str) -> Flow<()> {
        self.emit(Event::Operator {
            command: c.kind,
            who: c.who.clone(),
            sender: c.sender.clone(),
            accepted,
            reason: (!accepted).then(|| refusal.to_owned()),
        })
    }

    /// The one approval between `stage` and `next`: the whole train waits for it. A
    /// rollback there rolls back what `stage` promoted.
    async fn approval(&mut self, stage: &str, next: &str, promoted: &[usize]) -> Flow<()> {
        if let Some(prior) = self
            .settings
            .resume
            .as_ref()
            .and_then(|r| r.approvals.get(stage))
        {
            let outcome = prior.outcome();
            return match outcome.exit_code {
                exit::OK => Ok(()),
                _ => Err(Stop::Ended(outcome)),
            };
        }
        self.emit(Event::StepStarted {
            stage: stage.into(),
            step: APPROVAL.into(),
            kind: "approval".into(),
        })?;
        if self.settings.auto_approve {
            return self.finish(
                stage,
                APPROVAL,
                Status::Passed,
                "approved by --auto-approve".into(),
            );
        }
        let mut gate = Gate::before(&self.train, next);
        self.emit(Event::StepState {
            stage: stage.into(),
            step: APPROVAL.into(),
            status: Status::WaitingForApproval,
            message: format!(
                "every member passed {stage}; approve to move the whole train to {next}{}",
                gate.rules_note()
            ),
        })?;
        let (status, exit_code, reason) = loop {
            let Some(c) = self.commands.recv().await else {
                return Err(Stop::Ended(Outcome {
                    status: Status::Aborted,
                    exit_code: exit::ABORTED,
                    reason: "nobody is left to approve the train".into(),
                }));
            };
            if let Some(decided) = self.at_approval(&mut gate, &c, next)? {
                break decided;
            }
        };
        let approval = if status == Status::RolledBack {
            Status::Aborted
        } else {
            status
        };
        self.finish(stage, APPROVAL, approval, reason.clone())?;
        if exit_code == exit::OK {
            return Ok(());
        }
        if status == Status::RolledBack {
            let why = reason.clone();
            return Err(Stop::Ended(
                self.roll_back_stage(stage, why, promoted).await?,
            ));
        }
        Err(Stop::Ended(Outcome {
            status,
            exit_code,
            reason,
        }))
    }
}

impl Driver {
    /// One command while the train waits for its approval before `next`: the approval's
    /// end (status, exit code, reason) when it decides it, journaled as accepted or
    /// refused either way.
    fn at_approval(
        &mut self,
        gate: &mut Gate,
        c: &Command,
        next: &str,
    ) -> Flow<Option<(Status, i32, String)>> {
        let (status, exit_code, word) = match c.kind {
            _ if c.member.is_some() => {
                self.answer(c, false, "no member runs while the train waits for its approval; approve, reject, abort or roll back the train")?;
                return Ok(None);
            }
            CommandKind::Approve | CommandKind::Reject => {
                let Some(by) = self.admit(gate, c)? else {
                    return Ok(None);
                };
                let (status, exit_code, word) = match c.kind {
                    CommandKind::Approve => (Status::Passed, exit::OK, "approved"),
                    _ => (Status::Failed, exit::FAILED, "rejected"),
                };
                return Ok(Some((
                    status,
                    exit_code,
                    format!("{word} by {by} before {next}"),
                )));
            }
            CommandKind::Abort => (Status::Aborted, exit::ABORTED, "aborted"),
            CommandKind::Rollback => (Status::RolledBack, exit::FAILED, "rolled back"),
            // Paused, the next stage's members start paused.
            CommandKind::Pause | CommandKind::Resume => {
                self.hold(c.kind == CommandKind::Pause)?;
                self.answer(c, true, "")?;
                return Ok(None);
            }
            _ => {
                self.answer(
                    c,
                    false,
                    "the train waits for approve, reject, abort or rollback",
                )?;
                return Ok(None);
            }
        };
        self.answer(c, true, "")?;
        Ok(Some((
            status,
            exit_code,
            format!("{word} by {} before {next}", c.who),
        )))
    }

    /// Applies the approval's rules to an approve or reject: who decided it, or None when
    /// the answer was refused or more approvers are needed (journaled either way). A
    /// command without a sender is the train's own cockpit's: its driver's.
    fn admit(&self, gate: &mut Gate, c: &Command) -> Flow<Option<String>> {
        let sender = c.sender.as_ref().or(self.settings.driver.as_ref());
        let by = match gate.answer(c.kind, sender, self.settings.driver.as_ref()) {
            Err(reason) => {
                self.answer(c, false, &reason)?;
                return Ok(None);
            }
            Ok(Answer::Pending(note)) => {
                self.emit(Event::Operator {
                    command: c.kind,
                    who: c.who.clone(),
                    sender: c.sender.clone(),
                    accepted: true,
                    reason: Some(note),
                })?;
                return Ok(None);
            }
            Ok(Answer::Decided(by)) if sender.is_some() => by,
            Ok(Answer::Decided(_)) => c.who.clone(),
        };
        self.answer(c, true, "")?;
        Ok(Some(by))
    }
}

/// A member's state from its end an interrupted run journaled.
fn prior_state(prior: &Prior) -> MemberState {
    match prior.status {
        Status::Passed | Status::Warning => MemberState::Promoted,
        Status::RolledBack => MemberState::RolledBack,
        Status::Aborted => MemberState::Stopped,
        Status::Skipped => MemberState::NotStarted,
        _ => MemberState::Failed,
    }
}
