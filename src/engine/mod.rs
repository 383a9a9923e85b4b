//! The run engine: a state machine over stages and steps that an operator steers.
//!
//! Commands come in on a channel; events go out on a broadcast after the journal has
//! committed them. The engine never draws anything and never imports the UI. Time comes from
//! `tokio::time`, so tests run a ten-minute pipeline on a paused clock in milliseconds.

mod approvals;
mod commands;
mod emitter;
mod resume;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, watch};

pub use emitter::Emitter;
pub use resume::Resumed;

use crate::events::{Command, CommandKind, Envelope, Event, StagePlan, Status, StepPlan, exit};
use crate::pipeline::model::OnFailure;
use crate::pipeline::{Pipeline, Stage, Step};
use crate::steps::{self, Phase, PriorOutcome, Signal, StepCtx, StepIo, StepResult};
use crate::units::format_duration;

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
    pub journal: Option<crate::store::Location>,
    /// Run only the `preflight` steps (`glidepath check`); every other step is left out.
    pub preflight_only: bool,
    /// Targets whose Services publish a loopback address (the sandbox), for smoke and load
    /// tests that name a Service; set by the CLI, which knows what each target is.
    pub service_addresses: Option<crate::kube::ServiceAddresses>,
    /// Who drives the run: commands without a sender are this one's (the cockpit, a
    /// signal), and approval rules compare approvers with it.
    pub driver: Option<crate::identity::Sender>,
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
        measured: Default::default(),
        resumed_measured: Default::default(),
        resumed: None,
        approvals: HashMap::new(),
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

/// What the stage needs to know of a step that ended.
struct Ended {
    status: Status,
    summary: String,
    infra_error: bool,
    bad_input: bool,
    on_failure: OnFailure,
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
    /// The current stage's own measurements.
    measured: steps::Measurements,
    /// Measurements a resumed run's stages had before the interruption.
    resumed_measured: std::collections::BTreeMap<String, std::collections::BTreeMap<String, f64>>,
    /// What a resumed run had done, for the steps that continue.
    resumed: Option<Resumed>,
    /// Principals who approved each step that waits for more (by step name and position).
    approvals: HashMap<String, Vec<String>>,
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
        if let Some(r) = &resumed {
            self.resumed_measured = r.measured.clone();
        }
        self.resumed.clone_from(&resumed);
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
                        group: st.group.clone(),
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
        self.measured = steps::Measurements::with(
            self.resumed_measured
                .remove(&stage.name)
                .unwrap_or_default(),
        );
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
        let mut i = 0;
        while i < stage.steps.len() {
            let end = batch_end(stage, i);
            if let Some(outcome) = self.failed_before(stage, (i, end), done).await? {
                return Ok(StageEnd::Stopped(outcome));
            }
            let todo = self.pending_steps(stage, &stage.steps[i..end], done, &mut stage_status);
            if !todo.is_empty() {
                let batch = Batch {
                    start: i,
                    end,
                    todo,
                };
                if let Some(outcome) = self.run_batch(stage, &batch, &mut stage_status).await? {
                    return Ok(StageEnd::Stopped(outcome));
                }
            }
            i = end;
        }
        self.emit(Event::StageFinished {
            stage: stage.name.clone(),
            status: stage_status,
        })?;
        Ok(StageEnd::Finished)
    }

    /// A resumed run whose driver stopped after a step of this batch had failed (during
    /// the rollback or the stop that failure asked for): the failure's consequence is
    /// carried out again, so a rollback cut short is finished. `None` otherwise.
    async fn failed_before(
        &mut self,
        stage: &Stage,
        (start, end): (usize, usize),
        done: &HashMap<(String, String), PriorOutcome>,
    ) -> Flow<Option<Outcome>> {
        let failed = stage.steps[start..end].iter().find(|s| {
            s.on_failure != OnFailure::Continue
                && done
                    .get(&(stage.name.clone(), s.name.clone()))
                    .is_some_and(|p| p.status == Status::Failed)
        });
        let Some(step) = failed else {
            return Ok(None);
        };
        // Every step of the stage that ended before counts as run, for the rollback.
        for s in &stage.steps[..end] {
            if let Some(prev) = done.get(&(stage.name.clone(), s.name.clone()))
                && !self.ran(stage, s)
            {
                self.prior.push(prev.clone());
            }
        }
        let ended = Ended {
            status: Status::Failed,
            summary: "it failed before the run was interrupted".into(),
            infra_error: false,
            bad_input: false,
            on_failure: step.on_failure,
        };
        self.stop_on_failure(stage, end, step, &ended, &[]).await
    }

    /// The steps of a batch still to run. Those completed before an interruption have
    /// their events in the journal already: they only count (warnings) and are remembered.
    fn pending_steps<'s>(
        &mut self,
        stage: &Stage,
        batch: &'s [Step],
        done: &HashMap<(String, String), PriorOutcome>,
        stage_status: &mut Status,
    ) -> Vec<&'s Step> {
        let mut todo = Vec::new();
        for step in batch {
            match done.get(&(stage.name.clone(), step.name.clone())) {
                Some(prev) => {
                    if prev.status == Status::Warning
                        || (prev.status == Status::Failed && step.on_failure == OnFailure::Continue)
                    {
                        self.warnings += 1;
                        *stage_status = Status::Warning;
                    }
                    self.prior.push(prev.clone());
                }
                None if self.options.preflight_only
                    && !matches!(step.kind, crate::pipeline::StepKind::Preflight(_)) => {}
                None => todo.push(step),
            }
        }
        todo
    }

    /// Runs a batch once the run is not paused; the outcome that stops the run, if any
    /// (an interruption, or a failure that stops or rolls back).
    async fn run_batch(
        &mut self,
        stage: &Stage,
        batch: &Batch<'_>,
        stage_status: &mut Status,
    ) -> Flow<Option<Outcome>> {
        let mut started = false;
        let (results, interrupt) = match self.wait_while_paused().await {
            Ok(()) => {
                for step in &batch.todo {
                    self.emit(Event::StepStarted {
                        stage: stage.name.clone(),
                        step: step.name.clone(),
                        kind: step.kind.word().into(),
                    })?;
                }
                started = true;
                self.execute(stage, &batch.todo).await?
            }
            Err(interrupt) => (Vec::new(), Some(interrupt)),
        };
        let unfinished: Vec<&Step> = batch
            .todo
            .iter()
            .filter(|s| !results.iter().any(|(done, _)| done.name == s.name))
            .copied()
            .collect();
        for (_, result) in &results {
            if result.status == Status::Warning
                || (result.status == Status::Failed && result.on_failure == OnFailure::Continue)
            {
                self.warnings += 1;
                *stage_status = Status::Warning;
            }
        }
        match interrupt {
            None => {}
            Some(Interrupt::Journal(e)) => return Err(Interrupt::Journal(e)),
            Some(Interrupt::Abort(who)) => {
                return self
                    .abort_stage(stage, batch.end, &unfinished, &who)
                    .map(Some);
            }
            Some(Interrupt::Rollback(who)) => {
                let outcome = self
                    .rollback_on_request(stage, batch, started, &unfinished, &who)
                    .await?;
                return Ok(Some(outcome));
            }
        }
        // The first failure (in the order they ended) that stops the run decides.
        let failure = results
            .iter()
            .find(|(_, r)| r.status == Status::Failed && r.on_failure != OnFailure::Continue);
        match failure {
            Some((step, result)) => {
                self.stop_on_failure(stage, batch.end, step, result, &unfinished)
                    .await
            }
            None => Ok(None),
        }
    }

    /// The operator aborted: steps cut short are aborted, the rest of the stage skipped.
    fn abort_stage(
        &mut self,
        stage: &Stage,
        end: usize,
        unfinished: &[&Step],
        who: &str,
    ) -> Flow<Outcome> {
        for step in unfinished {
            self.finish_step(stage, step, Status::Aborted, format!("aborted by {who}"))?;
        }
        self.skip(stage, end)?;
        self.emit(Event::StageFinished {
            stage: stage.name.clone(),
            status: Status::Aborted,
        })?;
        Ok(Outcome {
            status: Status::Aborted,
            exit_code: exit::ABORTED,
            reason: format!("aborted by {who}"),
        })
    }

    /// The operator asked for a rollback during (or before) a batch.
    async fn rollback_on_request(
        &mut self,
        stage: &Stage,
        batch: &Batch<'_>,
        started: bool,
        unfinished: &[&Step],
        who: &str,
    ) -> Flow<Outcome> {
        let at = unfinished
            .first()
            .map(|s| s.name.as_str())
            .unwrap_or(stage.steps[batch.start].name.as_str());
        let why = format!("rollback requested by {who} at {}/{at}", stage.name);
        // Steps cancelled mid-way are undone with the others; ones never
        // started are not.
        if started {
            for step in unfinished {
                self.finish_step(stage, step, Status::RolledBack, why.clone())?;
            }
        }
        // A group partly finished before an interruption is undone too.
        let undo = if started || batch.todo.len() < batch.end - batch.start {
            batch.end
        } else {
            batch.start
        };
        let cancelled = if started { unfinished } else { &[] };
        self.rollback_stage(stage, undo, cancelled, &why).await?;
        Ok(Outcome {
            status: Status::RolledBack,
            exit_code: exit::FAILED,
            reason: why,
        })
    }

    /// A step failed: stop the run (undoing partners cut short that roll back on
    /// failure) or roll the stage back, as the step asks.
    async fn stop_on_failure(
        &mut self,
        stage: &Stage,
        end: usize,
        step: &Step,
        result: &Ended,
        unfinished: &[&Step],
    ) -> Flow<Option<Outcome>> {
        let why = format!("{}/{} failed: {}", stage.name, step.name, result.summary);
        match result.on_failure {
            OnFailure::Continue => Ok(None),
            OnFailure::Stop => {
                // Partners cancelled mid-way that roll back on failure are undone
                // (a release must not stay half-shifted).
                for partner in unfinished {
                    if partner.on_failure == OnFailure::Rollback {
                        self.undo(stage, partner).await;
                    }
                }
                self.skip(stage, end)?;
                self.emit(Event::StageFinished {
                    stage: stage.name.clone(),
                    status: Status::Failed,
                })?;
                let exit_code = if result.bad_input {
                    exit::BAD_INPUT
                } else if result.infra_error {
                    exit::INFRA
                } else {
                    exit::FAILED
                };
                Ok(Some(Outcome {
                    status: Status::Failed,
                    exit_code,
                    reason: why,
                }))
            }
            OnFailure::Rollback => {
                self.rollback_stage(stage, end, unfinished, &why).await?;
                Ok(Some(Outcome {
                    status: Status::RolledBack,
                    exit_code: exit::FAILED,
                    reason: format!("rolled back: {why}"),
                }))
            }
        }
    }

    /// Journals a step's end and remembers it for later gates.
    fn finished(&mut self, stage: &Stage, step: &Step, result: &StepResult) -> Flow<()> {
        self.emit(Event::StepFinished {
            stage: stage.name.clone(),
            step: step.name.clone(),
            status: result.status,
            verdict: result.verdict,
            summary: result.summary.clone(),
            evidence: result.evidence.clone(),
            evaluation: result.evaluation.clone(),
        })?;
        self.prior.push(PriorOutcome {
            stage: stage.name.clone(),
            step: step.name.clone(),
            kind: step.kind.word().into(),
            status: result.status,
            verdict: result.verdict,
        });
        Ok(())
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

    /// Undoes, newest first, the steps among the first `undo` of the stage that ran (or were
    /// cancelled mid-way: `cancelled`), marks the rest skipped and ends the stage as rolled
    /// back.
    async fn rollback_stage(
        &mut self,
        stage: &Stage,
        undo: usize,
        cancelled: &[&Step],
        why: &str,
    ) -> Flow<()> {
        let anchor = &stage.steps[undo.saturating_sub(1).min(stage.steps.len() - 1)];
        self.log(
            stage,
            anchor,
            "engine",
            format!("↺ rolling back stage {}: {why}", stage.name),
        );
        for step in stage.steps.iter().take(undo).rev() {
            if self.ran(stage, step) || cancelled.iter().any(|c| c.name == step.name) {
                self.undo(stage, step).await;
            }
        }
        for step in stage.steps.iter().take(undo) {
            if !self.ran(stage, step) && !cancelled.iter().any(|c| c.name == step.name) {
                self.finish_step(stage, step, Status::Skipped, "not run".into())?;
            }
        }
        self.skip(stage, undo)?;
        self.emit(Event::StageFinished {
            stage: stage.name.clone(),
            status: Status::RolledBack,
        })
    }

    /// Whether the step ended in this run or before its interruption.
    fn ran(&self, stage: &Stage, step: &Step) -> bool {
        self.prior
            .iter()
            .any(|p| p.stage == stage.name && p.step == step.name)
    }

    /// Runs one step's rollback, if its kind has one, and logs what it did.
    async fn undo(&mut self, stage: &Stage, step: &Step) {
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
            measured: self.measured.clone(),
            service_addresses: self.options.service_addresses.clone(),
            resumed: self
                .resumed
                .as_ref()
                .map(|r| r.step(&stage.name, &step.name)),
        };
        (ctx, phase_rx, sig_tx)
    }

    /// Runs a batch of steps (one, or a `parallel` group) at the same time while answering
    /// operator commands; enforces each step's timeout. Each step's end is journaled as it
    /// comes. A failure that stops the run cancels the batch's other steps (journaled as
    /// aborted). Returns the ended steps in the order they ended, and the operator's
    /// interrupt if one came first.
    async fn execute<'s>(
        &mut self,
        stage: &Stage,
        batch: &[&'s Step],
    ) -> Flow<(Vec<(&'s Step, Ended)>, Option<Interrupt>)> {
        use futures_util::stream::{FuturesUnordered, StreamExt};
        let mut work = FuturesUnordered::new();
        let mut running = Vec::new();
        for (index, step) in batch.iter().enumerate() {
            let (mut ctx, phase, signals) = self.context(stage, step);
            let kind = step.kind.clone();
            let timeout = step.timeout;
            running.push((index, phase, signals));
            work.push(async move {
                let result = match timeout {
                    Some(limit) => {
                        match tokio::time::timeout(limit, steps::run(&kind, &mut ctx)).await {
                            Ok(result) => result,
                            Err(_) => StepResult::failed(format!(
                                "timed out after {}; the step was stopped",
                                format_duration(limit)
                            )),
                        }
                    }
                    None => steps::run(&kind, &mut ctx).await,
                };
                (index, result)
            });
        }
        let mut ended = Vec::new();
        while !work.is_empty() {
            tokio::select! {
                Some((index, result)) = work.next() => {
                    let step = batch[index];
                    running.retain(|(i, _, _)| *i != index);
                    self.finished(stage, step, &result)?;
                    let stops = result.status == Status::Failed
                        && step.on_failure != OnFailure::Continue;
                    ended.push((step, Ended {
                        status: result.status,
                        summary: result.summary,
                        infra_error: result.infra_error,
                        bad_input: result.bad_input,
                        on_failure: step.on_failure,
                    }));
                    if stops && !running.is_empty() {
                        drop(work);
                        for (i, _, _) in &running {
                            self.finish_step(
                                stage,
                                batch[*i],
                                Status::Aborted,
                                format!("stopped: `{}` failed beside it", step.name),
                            )?;
                        }
                        return Ok((ended, None));
                    }
                }
                Some(command) = self.commands.recv() => {
                    let now: Vec<(&Step, Phase, &mpsc::UnboundedSender<Signal>)> = running
                        .iter()
                        .map(|(i, phase, tx)| (batch[*i], *phase.borrow(), tx))
                        .collect();
                    if let Err(interrupt) = self.on_command(command, &now) {
                        return Ok((ended, Some(interrupt)));
                    }
                }
            }
        }
        Ok((ended, None))
    }

    /// Holds before a step while the run is paused, still answering commands. Only a
    /// command can end the hold, so waiting on the command channel is enough.
    async fn wait_while_paused(&mut self) -> Flow<()> {
        while *self.paused_rx.borrow() {
            match self.commands.recv().await {
                Some(command) => self.on_command(command, &[])?,
                None => std::future::pending::<()>().await,
            }
        }
        Ok(())
    }
}

enum StageEnd {
    Finished,
    Stopped(Outcome),
}

/// Steps `start..end` of a stage, run together (a `parallel` group, or one step), and
/// those of them still to run.
struct Batch<'s> {
    start: usize,
    end: usize,
    todo: Vec<&'s Step>,
}

/// Where the batch starting at step `i` ends: a `parallel` group runs as one batch; any
/// other step is a batch of one.
fn batch_end(stage: &Stage, i: usize) -> usize {
    match &stage.steps[i].group {
        Some(g) => {
            i + stage.steps[i..]
                .iter()
                .take_while(|s| s.group.as_ref() == Some(g))
                .count()
        }
        None => i + 1,
    }
}
