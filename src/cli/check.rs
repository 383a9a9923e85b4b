//! `check PIPELINE`: validate a pipeline, print its plan and run its pre-flight steps
//! against their targets, changing nothing.

use crate::store::Location;
use std::sync::Arc;

use tokio::sync::broadcast;

use super::args::CheckArgs;
use super::sandbox::embed_sandbox;
use super::{Exit, load_pipeline};
use crate::engine::{self, Emitter, Outcome, RunOptions};
use crate::events::{Envelope, Event, exit};
use crate::pipeline::{Pipeline, StepKind};

/// `check`: the plan, then (unless `--no-preflight`) the pre-flight verdict.
pub(super) async fn check(journal_path: &Location, args: CheckArgs) -> Result<i32, Exit> {
    let CheckArgs {
        pipeline,
        sets,
        no_preflight,
        sandbox,
        scenario,
        context,
    } = args;
    if std::fs::read_to_string(&pipeline).is_ok_and(|t| crate::train::is_train(&t)) {
        let sets = sets.into_iter().collect();
        let train =
            crate::train::load_file(&pipeline, &crate::pipeline::Variables::from_sets(sets))
                .map_err(|e| super::bad_input(e.to_string()))?;
        return check_train(train, no_preflight, sandbox, &scenario, journal_path).await;
    }
    let mut p = load_pipeline(&pipeline, sets)?;
    super::drive::apply_context(&mut p, context.as_deref())?;
    print!("{}", p.plan());
    let valid = format!(
        "{} is valid ({} stages, {} steps)",
        pipeline.display(),
        p.stages.len(),
        p.stages.iter().map(|s| s.steps.len()).sum::<usize>()
    );
    if no_preflight {
        println!("ok: {valid}");
        return Ok(exit::OK);
    }
    check_preflight(p, sandbox, &scenario, journal_path, &valid).await
}

/// A train: its plan (stages, dependency waves), then each member's pre-flight steps
/// (unless `--no-preflight`); the worst member's verdict is the exit code.
async fn check_train(
    train: crate::train::Train,
    no_preflight: bool,
    sandbox: bool,
    scenario: &str,
    journal_path: &Location,
) -> Result<i32, Exit> {
    print!("{}", train.plan());
    let valid = format!(
        "{} is a valid train ({} members, {} stages, {} waves)",
        train.path.display(),
        train.members.len(),
        train.stages.len(),
        train.waves.len()
    );
    if no_preflight {
        println!("ok: {valid}");
        return Ok(exit::OK);
    }
    let mut worst = exit::OK;
    for member in train.members {
        println!("member {}:", member.name);
        let valid = format!(
            "member {} ({})",
            member.name,
            member.pipeline.path.display()
        );
        let code =
            check_preflight(member.pipeline, sandbox, scenario, journal_path, &valid).await?;
        worst = worst.max(code);
    }
    Ok(worst)
}

/// The pipeline's pre-flight steps, and nothing else, against their targets.
async fn check_preflight(
    mut p: Pipeline,
    sandbox: bool,
    scenario: &str,
    journal_path: &Location,
    valid: &str,
) -> Result<i32, Exit> {
    let checked = p
        .stages
        .iter()
        .filter(|s| {
            s.steps
                .iter()
                .any(|st| matches!(st.kind, StepKind::Preflight(_)))
        })
        .count();
    if checked == 0 {
        println!("ok: {valid}; it has no preflight steps, so no cluster was asked");
        return Ok(exit::OK);
    }
    if sandbox {
        target_the_sandbox(&mut p);
    }
    // Every stage's pre-flight runs, whatever an earlier one found.
    for stage in &mut p.stages {
        for step in &mut stage.steps {
            if matches!(step.kind, StepKind::Preflight(_)) {
                step.on_failure = crate::pipeline::model::OnFailure::Continue;
            }
        }
    }
    let (p, _sandbox) = embed_sandbox(p, scenario, journal_path).await?;
    let (outcome, failed) = run_preflight(p).await;
    Ok(verdict(valid, checked, &outcome, &failed))
}

/// `--sandbox`: every stage checks against the embedded sandbox, in the namespace it names.
fn target_the_sandbox(p: &mut Pipeline) {
    use crate::pipeline::model::{SandboxIn, SandboxWord, Target};
    for stage in &mut p.stages {
        stage.target = Some(match stage.target.take() {
            Some(Target::Cluster(c)) => match c.namespace {
                Some(namespace) => Target::SandboxIn(SandboxIn {
                    sandbox: true,
                    namespace,
                }),
                None => Target::Sandbox(SandboxWord::Sandbox),
            },
            Some(t) => t,
            None => Target::Sandbox(SandboxWord::Sandbox),
        });
    }
}

/// Runs the pre-flight steps with progress on stderr; returns the outcome and the stages
/// whose pre-flight failed.
async fn run_preflight(p: Pipeline) -> (Outcome, Vec<String>) {
    let options = RunOptions {
        preflight_only: true,
        ..RunOptions::default()
    };
    let mut printer = None;
    let mut failures = None;
    let handle = engine::start_with(Arc::new(p), Emitter::new(0, 1, None), options, |tx| {
        let (shown_tx, shown_rx) = broadcast::channel(1024);
        tokio::spawn(as_a_check(tx.subscribe(), shown_tx));
        printer = Some(tokio::spawn(crate::headless::print(shown_rx)));
        failures = Some(tokio::spawn(failed_stages(tx.subscribe())));
    });
    let outcome = handle.wait().await;
    if let Some(printer) = printer {
        let _ = printer.await;
    }
    let failed = match failures {
        Some(f) => f.await.unwrap_or_default(),
        None => Vec::new(),
    };
    (outcome, failed)
}

/// The pre-flight's events as a check shows them: a stage whose pre-flight failed is
/// `failed` (the engine, told to go on past it, calls it a warning), and no run lines: a
/// check is not a run, and its own last line gives the verdict.
async fn as_a_check(mut rx: broadcast::Receiver<Envelope>, tx: broadcast::Sender<Envelope>) {
    use crate::events::Status;
    let mut failed: Vec<String> = Vec::new();
    loop {
        let mut env = match rx.recv().await {
            Ok(env) => env,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        match &mut env.event {
            Event::RunStarted { .. } => continue,
            Event::RunFinished { .. } => return,
            Event::StepFinished {
                stage,
                status: Status::Failed,
                ..
            } => failed.push(stage.clone()),
            Event::StageFinished { stage, status } if failed.contains(stage) => {
                *status = Status::Failed;
            }
            _ => {}
        }
        if tx.send(env).is_err() {
            return;
        }
    }
}

/// The stages with a failed step, until the run finishes.
async fn failed_stages(mut rx: broadcast::Receiver<Envelope>) -> Vec<String> {
    let mut failed = Vec::new();
    while let Ok(env) = rx.recv().await {
        match env.event {
            Event::StepFinished {
                stage,
                status: crate::events::Status::Failed,
                ..
            } => failed.push(stage),
            Event::RunFinished { .. } => break,
            _ => {}
        }
    }
    failed
}

/// Prints the check's last line and returns its exit code.
fn verdict(valid: &str, checked: usize, outcome: &Outcome, failed: &[String]) -> i32 {
    if outcome.exit_code != exit::OK && failed.is_empty() {
        println!("not ok: {valid}, but the check stopped: {}", outcome.reason);
        return outcome.exit_code;
    }
    if failed.is_empty() {
        println!("ok: {valid}; pre-flight passed in {checked} stage(s)");
        exit::OK
    } else {
        println!(
            "not ok: {valid}, but pre-flight failed in {} of {checked} stage(s): {}",
            failed.len(),
            failed.join(", ")
        );
        exit::FAILED
    }
}
