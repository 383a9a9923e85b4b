//! The run engine: a state machine over stages and steps that an operator steers.
//!
//! Commands come in on a channel; events go out on a broadcast after the journal has
//! committed them. The engine never draws anything and never imports the UI. Time comes from
//! `tokio::time`, so tests run a ten-minute pipeline on a paused clock in milliseconds.

mod emitter;
mod resume;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, watch};

pub use emitter::Emitter;
pub use resume::Resumed;

use crate::events::{Command, CommandKind, Envelope, Event, StagePlan, Status, StepPlan, exit};
use crate::pipeline::model::OnFailure;
use crate::pipeline::units::format_duration;
use crate::pipeline::{Pipeline, Stage, Step};
use crate::steps::{self, Phase, PriorOutcome, Signal, StepCtx, StepIo, StepResult};

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Final status.
    pub status: Status,
    /// The CLI exit code it maps to.
    pub exit_code: i32,
    /// Why, for a person.
    pub reason: String,
}

/// Settings of one run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Run only this stage.
    pub stage: Option<String>,
    /// Manual approvals pass by themselves.
    pub auto_approve: bool,
    /// What an interrupted run had already done (from the journal).
    pub resumed: Option<Resumed>,
    /// The journal file, where steps find evaluation history.
    pub journal: Option<std::path::PathBuf>,
}

/// A run in progress: send commands, watch events, await the outcome.
pub struct RunHandle {
    /// Operator commands.
    pub commands: mpsc::UnboundedSender<Command>,
    events: broadcast::Sender<Envelope>,
    task: tokio::task::JoinHandle<Outcome>,
}

impl RunHandle {
    /// A new subscriber sees every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Envelope> {
        self.events.subscribe()
    }

    /// Sends a command (as `who`).
    pub fn send(&self, kind: CommandKind, who: &str) {
        let _ = self.commands.send(Command::new(kind, who));
    }

    /// Waits for the run to end.
    pub async fn wait(self) -> Outcome {
        match self.task.await {
            Ok(outcome) => outcome,
            Err(e) => Outcome {
                status: Status::Failed,
                exit_code: exit::INFRA,
                reason: format!("the engine stopped: {e}"),
            },
        }
    }
}

/// Starts a run on the current tokio runtime. Subscribe before events you care about happen:
/// use [`start_with`] to attach subscribers before the first event.
pub fn start(pipeline: Arc<Pipeline>, emitter: Emitter, options: RunOptions) -> RunHandle {
    start_with(pipeline, emitter, options, |_| {})
}

/// Starts a run after `attach` has seen the handle (to subscribe before the first event).
pub fn start_with(
    pipeline: Arc<Pipeline>,
    emitter: Emitter,
    options: RunOptions,
    attach: impl FnOnce(&broadcast::Sender<Envelope>),
) -> RunHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    let events = emitter.sender();
    attach(&events);
    let (paused_tx, paused_rx) = watch::channel(false);
    let engine = Engine {
        pipeline,
        emitter,
        commands: rx,
        _keep_open: tx.clone(),
        options,
        paused: paused_tx,
        paused_rx,
        prior: Vec::new(),
        warnings: 0,
    };
    let task = tokio::spawn(engine.run());
    RunHandle {
        commands: tx,
        events,
        task,
    }
}

/// Why a step stopped early: who aborted, who asked for rollback, or a journal failure.
enum Interrupt {
    Abort(String),
    Rollback(String),
    Journal(String),
}

enum StepEnd {
    Done(StepResult),
    Interrupted(Interrupt),
}

struct Engine {
    pipeline: Arc<Pipeline>,
    emitter: Emitter,
    commands: mpsc::UnboundedReceiver<Command>,
    // Held so the command channel never reports closed while the engine runs.
    _keep_open: mpsc::UnboundedSender<Command>,
    options: RunOptions,
    paused: watch::Sender<bool>,
    paused_rx: watch::Receiver<bool>,
    prior: Vec<PriorOutcome>,
    warnings: usize,
}

type Flow<T> = Result<T, Interrupt>;

impl Engine {
    fn emit(&self, event: Event) -> Flow<()> {
        self.emitter
            .emit(event)
            .map_err(|e| Interrupt::Journal(e.to_string()))
    }

    fn stages(&self) -> Vec<Stage> {
        self.pipeline
            .stages
            .iter()
            .filter(|s| {
                self.options
                    .stage
                    .as_ref()
                    .is_none_or(|only| &s.name == only)
            })
            .cloned()
            .collect()
    }

    async fn run(mut self) -> Outcome {
        let outcome = match self.drive().await {
            Ok(outcome) => outcome,
            Err(Interrupt::Journal(e)) => Outcome {
                status: Status::Failed,
                exit_code: exit::INFRA,
                reason: format!("cannot write the journal: {e}"),
            },
            Err(Interrupt::Abort(who)) => Outcome {
                status: Status::Aborted,
                exit_code: exit::ABORTED,
                reason: format!("aborted by {who}"),
            },
            Err(Interrupt::Rollback(why)) => Outcome {
                status: Status::RolledBack,
                exit_code: exit::FAILED,
                reason: why,
            },
        };
        let _ = self.emitter.emit(Event::RunFinished {
            status: outcome.status,
            exit_code: outcome.exit_code,
            reason: outcome.reason.clone(),
        });
        outcome
    }

    async fn drive(&mut self) -> Flow<Outcome> {
        let stages = self.stages();
        let resumed = self.options.resumed.take();
        let plans = stages
            .iter()
            .map(|s| StagePlan {
                name: s.name.clone(),
                steps: s
                    .steps
                    .iter()
                    .map(|st| StepPlan {
                        name: st.name.clone(),
                        kind: st.kind.word().into(),
                        description: st.kind.describe(),
                    })
                    .collect(),
            })
            .collect();
        self.emit(Event::RunStarted {
            pipeline: self.pipeline.name.clone(),
            service: self.pipeline.service.clone(),
            stages: plans,
            resumed: resumed.is_some(),
        })?;
        let done: HashMap<(String, String), PriorOutcome> = resumed
            .as_ref()
            .map(|r| {
                r.finished
                    .iter()
                    .map(|p| ((p.stage.clone(), p.step.clone()), p.clone()))
                    .collect()
            })
            .unwrap_or_default();
        if resumed.as_ref().is_some_and(|r| r.paused) {
            self.paused.send_replace(true);
            self.emit(Event::RunState {
                status: Status::Paused,
            })?;
        }
        for (si, stage) in stages.iter().enumerate() {
            match self.run_stage(stage, &done).await? {
                StageEnd::Finished => {}
                StageEnd::Stopped(outcome) => {
                    for later in &stages[si + 1..] {
                        self.skip(later, 0)?;
                    }
                    return Ok(outcome);
                }
            }
        }
        Ok(if self.warnings > 0 {
            Outcome {
                status: Status::Warning,
                exit_code: exit::OK,
                reason: format!("passed with {} warning(s)", self.warnings),
            }
        } else {
            Outcome {
                status: Status::Passed,
                exit_code: exit::OK,
                reason: "every stage passed".into(),
            }
        })
    }

    async fn run_stage(
        &mut self,
        stage: &Stage,
        done: &HashMap<(String, String), PriorOutcome>,
    ) -> Flow<StageEnd> {
        let all_done = stage
            .steps
            .iter()
            .all(|s| done.contains_key(&(stage.name.clone(), s.name.clone())));
        if !all_done {
            self.emit(Event::StageStarted {
                stage: stage.name.clone(),
            })?;
        }
        let mut stage_status = Status::Passed;
        for (i, step) in stage.steps.iter().enumerate() {
            if let Some(prev) = done.get(&(stage.name.clone(), step.name.clone())) {
                // Completed before the interruption: its events are in the journal already.
                if prev.status == Status::Warning
                    || (prev.status == Status::Failed && step.on_failure == OnFailure::Continue)
                {
                    self.warnings += 1;
                    stage_status = Status::Warning;
                }
                self.prior.push(prev.clone());
                continue;
            }
            let mut started = false;
            let end = match self.wait_while_paused().await {
                Ok(()) => {
                    self.emit(Event::StepStarted {
                        stage: stage.name.clone(),
                        step: step.name.clone(),
                        kind: step.kind.word().into(),
                    })?;
                    started = true;
                    self.execute(stage, step).await
                }
                Err(interrupt) => StepEnd::Interrupted(interrupt),
            };
            let result = match end {
                StepEnd::Done(result) => result,
                StepEnd::Interrupted(Interrupt::Journal(e)) => return Err(Interrupt::Journal(e)),
                StepEnd::Interrupted(Interrupt::Abort(who)) => {
                    self.finish_step(stage, step, Status::Aborted, format!("aborted by {who}"))?;
                    self.skip(stage, i + 1)?;
                    self.emit(Event::StageFinished {
                        stage: stage.name.clone(),
                        status: Status::Aborted,
                    })?;
                    return Ok(StageEnd::Stopped(Outcome {
                        status: Status::Aborted,
                        exit_code: exit::ABORTED,
                        reason: format!("aborted by {who}"),
                    }));
                }
                StepEnd::Interrupted(Interrupt::Rollback(who)) => {
                    let why = format!(
                        "rollback requested by {who} at {}/{}",
                        stage.name, step.name
                    );
                    // A step cancelled mid-way is undone with the others; one never started is not.
                    if started {
                        self.finish_step(stage, step, Status::RolledBack, why.clone())?;
                    }
                    self.rollback_stage(stage, if started { i + 1 } else { i }, &why)
                        .await?;
                    return Ok(StageEnd::Stopped(Outcome {
                        status: Status::RolledBack,
                        exit_code: exit::FAILED,
                        reason: why,
                    }));
                }
            };
            let failed = result.status == Status::Failed;
            let infra = result.infra_error;
            let summary = result.summary.clone();
            self.emit(Event::StepFinished {
                stage: stage.name.clone(),
                step: step.name.clone(),
                status: result.status,
                verdict: result.verdict,
                summary: result.summary,
                evidence: result.evidence,
                evaluation: result.evaluation,
            })?;
            self.prior.push(PriorOutcome {
                stage: stage.name.clone(),
                step: step.name.clone(),
                kind: step.kind.word().into(),
                status: result.status,
                verdict: result.verdict,
            });
            if result.status == Status::Warning {
                self.warnings += 1;
                stage_status = Status::Warning;
            }
            if !failed {
                continue;
            }
            let why = format!("{}/{} failed: {summary}", stage.name, step.name);
            match step.on_failure {
                OnFailure::Continue => {
                    self.warnings += 1;
                    stage_status = Status::Warning;
                }
                OnFailure::Stop => {
                    self.skip(stage, i + 1)?;
                    self.emit(Event::StageFinished {
                        stage: stage.name.clone(),
                        status: Status::Failed,
                    })?;
                    let exit_code = if infra { exit::INFRA } else { exit::FAILED };
                    return Ok(StageEnd::Stopped(Outcome {
                        status: Status::Failed,
                        exit_code,
                        reason: why,
                    }));
                }
                OnFailure::Rollback => {
                    self.rollback_stage(stage, i + 1, &why).await?;
                    return Ok(StageEnd::Stopped(Outcome {
                        status: Status::RolledBack,
                        exit_code: exit::FAILED,
                        reason: format!("rolled back: {why}"),
                    }));
                }
            }
        }
        self.emit(Event::StageFinished {
            stage: stage.name.clone(),
            status: stage_status,
        })?;
        Ok(StageEnd::Finished)
    }

    fn finish_step(&self, stage: &Stage, step: &Step, status: Status, summary: String) -> Flow<()> {
        self.emit(Event::StepFinished {
            stage: stage.name.clone(),
            step: step.name.clone(),
            status,
            verdict: None,
            summary,
            evidence: Vec::new(),
            evaluation: None,
        })
    }

    /// Marks the steps of `stage` from `from` on as skipped.
    fn skip(&self, stage: &Stage, from: usize) -> Flow<()> {
        for step in stage.steps.iter().skip(from) {
            self.finish_step(stage, step, Status::Skipped, "not run".into())?;
        }
        Ok(())
    }

    /// Undoes the first `undo` steps of the stage, newest first, marks the steps after them
    /// skipped and ends the stage as rolled back.
    async fn rollback_stage(&mut self, stage: &Stage, undo: usize, why: &str) -> Flow<()> {
        let anchor = &stage.steps[undo.saturating_sub(1).min(stage.steps.len() - 1)];
        self.log(
            stage,
            anchor,
            "engine",
            format!("↺ rolling back stage {}: {why}", stage.name),
        );
        for step in stage.steps.iter().take(undo).rev() {
            let (mut ctx, _phase, _signals) = self.context(stage, step);
            if let Some(result) = steps::rollback(&step.kind, &mut ctx).await {
                let mark = if result.status == Status::Failed {
                    "✗"
                } else {
                    "✓"
                };
                self.log(
                    stage,
                    step,
                    "engine",
                    format!("{mark} rollback of {}: {}", step.name, result.summary),
                );
            }
        }
        self.skip(stage, undo)?;
        self.emit(Event::StageFinished {
            stage: stage.name.clone(),
            status: Status::RolledBack,
        })
    }

    fn log(&self, stage: &Stage, step: &Step, source: &str, line: String) {
        self.emitter.log(Event::Log {
            stage: stage.name.clone(),
            step: step.name.clone(),
            source: source.into(),
            line,
        });
    }

    /// The context a step runs with, plus the engine's ends of its phase and signal channels.
    fn context(
        &self,
        stage: &Stage,
        step: &Step,
    ) -> (
        StepCtx,
        watch::Receiver<Phase>,
        mpsc::UnboundedSender<Signal>,
    ) {
        let (phase_tx, phase_rx) = watch::channel(Phase::Running);
        let (sig_tx, sig_rx) = mpsc::unbounded_channel();
        let emitter = self.emitter.clone();
        let emit: Arc<dyn Fn(Event) + Send + Sync> = Arc::new(move |event| match event {
            Event::Log { .. } => emitter.log(event),
            other => {
                if let Err(e) = emitter.emit(other) {
                    tracing::error!("cannot journal a step event: {e}");
                }
            }
        });
        let ctx = StepCtx {
            stage: stage.name.clone(),
            step: step.name.clone(),
            base_dir: self.pipeline.base_dir.clone(),
            io: StepIo::new(&stage.name, &step.name, emit, phase_tx),
            signals: sig_rx,
            paused: self.paused_rx.clone(),
            auto_approve: self.options.auto_approve,
            prior: self.prior.clone(),
            service: self.pipeline.service.clone(),
            target: stage.target.clone(),
            prometheus: stage.prometheus.clone(),
            vars: self.pipeline.query_vars(stage),
            journal: self.options.journal.clone(),
            run: self.emitter.run(),
            pipeline: self.pipeline.clone(),
        };
        (ctx, phase_rx, sig_tx)
    }

    /// Runs one step while answering operator commands; enforces the step's timeout.
    async fn execute(&mut self, stage: &Stage, step: &Step) -> StepEnd {
        let (mut ctx, phase, signals) = self.context(stage, step);
        let kind = step.kind.clone();
        let timeout = step.timeout;
        let work = async move {
            match timeout {
                Some(limit) => match tokio::time::timeout(limit, steps::run(&kind, &mut ctx)).await
                {
                    Ok(result) => result,
                    Err(_) => StepResult::failed(format!(
                        "timed out after {}; the step was stopped",
                        format_duration(limit)
                    )),
                },
                None => steps::run(&kind, &mut ctx).await,
            }
        };
        tokio::pin!(work);
        loop {
            tokio::select! {
                result = &mut work => return StepEnd::Done(result),
                Some(command) = self.commands.recv() => {
                    let current = *phase.borrow();
                    match self.on_command(command, Some((step, current, &signals))) {
                        Ok(()) => {}
                        Err(interrupt) => return StepEnd::Interrupted(interrupt),
                    }
                }
            }
        }
    }

    /// Holds before a step while the run is paused, still answering commands. Only a
    /// command can end the hold, so waiting on the command channel is enough.
    async fn wait_while_paused(&mut self) -> Flow<()> {
        while *self.paused_rx.borrow() {
            match self.commands.recv().await {
                Some(command) => self.on_command(command, None)?,
                None => std::future::pending::<()>().await,
            }
        }
        Ok(())
    }

    /// Applies a command if it fits the current state, or refuses it with a reason.
    /// The decision is journaled before it takes effect.
    fn on_command(
        &mut self,
        command: Command,
        step: Option<(&Step, Phase, &mpsc::UnboundedSender<Signal>)>,
    ) -> Flow<()> {
        let Command { kind, who } = command;
        let paused = *self.paused_rx.borrow();
        let what = step
            .map(|(s, _, _)| format!("step `{}` is running", s.name))
            .unwrap_or_else(|| "the run is paused between steps".into());
        let refuse = |reason: String| Event::Operator {
            command: kind,
            who: who.clone(),
            accepted: false,
            reason: Some(reason),
        };
        let accept = |note: Option<String>| Event::Operator {
            command: kind,
            who: who.clone(),
            accepted: true,
            reason: note,
        };
        let phase = step.map(|(_, p, _)| p);
        let forward = |signal: Signal| {
            if let Some((_, _, tx)) = step {
                let _ = tx.send(signal);
            }
        };
        match kind {
            CommandKind::Pause if paused => self.emit(refuse("the run is already paused".into())),
            CommandKind::Pause => {
                self.emit(accept(None))?;
                self.paused.send_replace(true);
                self.emit(Event::RunState {
                    status: Status::Paused,
                })
            }
            CommandKind::Resume if paused => {
                self.emit(accept(None))?;
                self.paused.send_replace(false);
                self.emit(Event::RunState {
                    status: Status::Running,
                })
            }
            CommandKind::Resume if phase == Some(Phase::Paused) => {
                self.emit(accept(Some("ends the current pause".into())))?;
                forward(Signal::Continue(who.clone()));
                Ok(())
            }
            CommandKind::Resume => self.emit(refuse(format!("the run is not paused; {what}"))),
            CommandKind::Promote if phase == Some(Phase::Paused) => {
                self.emit(accept(None))?;
                forward(Signal::Continue(who.clone()));
                Ok(())
            }
            CommandKind::Promote => self.emit(refuse(format!("there is no pause to skip; {what}"))),
            CommandKind::Approve | CommandKind::Reject
                if phase == Some(Phase::WaitingForApproval) =>
            {
                self.emit(accept(None))?;
                forward(if kind == CommandKind::Approve {
                    Signal::Approve(who.clone())
                } else {
                    Signal::Reject(who.clone())
                });
                Ok(())
            }
            CommandKind::Approve | CommandKind::Reject => {
                self.emit(refuse(format!("nothing is waiting for approval; {what}")))
            }
            CommandKind::Abort => {
                self.emit(accept(None))?;
                Err(Interrupt::Abort(who))
            }
            CommandKind::Rollback if step.is_none() && self.prior.is_empty() => self.emit(refuse(
                "nothing has run yet, so there is nothing to roll back".into(),
            )),
            CommandKind::Rollback => {
                self.emit(accept(None))?;
                Err(Interrupt::Rollback(who))
            }
        }
    }
}

enum StageEnd {
    Finished,
    Stopped(Outcome),
}
