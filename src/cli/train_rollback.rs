//! `rollback --train RUN`: a release train's last stage rolled back, in reverse dependency
//! order. A finished (or driverless) train is rolled back from its members' clusters; a
//! train a process still drives gets the rollback through the journal, as `r` in its
//! cockpit would give it, and this command follows it to the train's end.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::{Exit, bad_input, infra};
use crate::events::{Command, CommandKind, Envelope, Event, Status, exit};
use crate::pipeline::Variables;
use crate::store::{Location, RunRecord, Store, Topic};
use crate::train::Train;

/// How long the driver of a live train may take to answer the rollback.
const ANSWER_LIMIT: Duration = Duration::from_secs(10);
/// How long this command follows an accepted rollback before it leaves the train to it.
const END_LIMIT: Duration = Duration::from_secs(600);

/// `rollback --train RUN`: the members the train's last stage promoted, rolled back in
/// reverse dependency order, from their clusters; or, while a live process drives the
/// train, by that driver ([`roll_back_live`]).
pub(super) async fn rollback(journal_path: &Location, run: i64, yes: bool) -> Result<i32, Exit> {
    let store = Store::open(journal_path).map_err(infra)?;
    let record = store.run(run).map_err(|e| bad_input(e.to_string()))?;
    if record.service != "train" {
        return Err(bad_input(format!(
            "run {run} is a run of pipeline {}, not a train; `glidepath rollback {}` rolls a service back",
            record.pipeline, record.service
        )));
    }
    let train = crate::train::load_str(
        &record.source,
        Path::new(&record.path),
        &Variables::from_sets(record.sets.clone()),
    )
    .map_err(|e| bad_input(e.to_string()))?;
    if record.exit_code.is_none() && record.driver_alive() {
        return roll_back_live(&store, &record, &train.name, yes).await;
    }
    let events = store.events(run).map_err(infra)?;
    let (stage, promoted) = last_stage_promoted(&train, &events).ok_or_else(|| {
        bad_input(format!(
            "run {run} never started a stage; nothing to roll back"
        ))
    })?;
    if promoted.is_empty() {
        println!(
            "train {} run {run}: no member is promoted in {stage}; nothing to roll back",
            train.name
        );
        return Ok(exit::OK);
    }
    refuse_sandbox(&train, &stage, run)?;
    let order = crate::train::rollback::reverse_order(&train, &promoted);
    let names: Vec<&str> = order
        .iter()
        .map(|m| train.members[*m].name.as_str())
        .collect();
    eprintln!(
        "train {} run {run}: rolls back {} in {stage}, in that order",
        train.name,
        names.join(", ")
    );
    if !yes && !super::rollback::confirmed(&train.name)? {
        return Ok(exit::ABORTED);
    }
    let who = format!("{} (rollback --train {run})", crate::events::whoami());
    let mut failed = 0;
    for m in order {
        let member = &train.members[m];
        let log: Arc<dyn Fn(Event) + Send + Sync> = Arc::new(|e| {
            if let Event::Log { source, line, .. } = e {
                println!("  {source}: {line}");
            }
        });
        match crate::train::rollback::roll_back_member(&member.pipeline, &stage, &who, log).await {
            Ok(crate::train::rollback::Rolled::Back(done)) => {
                println!("{}: rolled back ({done})", member.name)
            }
            Ok(crate::train::rollback::Rolled::Kept(why)) => {
                println!("{}: kept ({why})", member.name)
            }
            Err(e) => {
                failed += 1;
                println!("{}: rollback failed: {e}", member.name);
            }
        }
    }
    Ok(if failed == 0 { exit::OK } else { exit::INFRA })
}

/// `rollback --train RUN` while a live process drives the train: the rollback goes to that
/// driver through the journal's inbox. It stops the members running now (each rolls its
/// own stage back, traffic first) and rolls back the members it promoted in that stage, in
/// reverse dependency order; at its approval between stages, the stage just passed. This
/// prints the driver's answer, then the train's end: exit 0 when it ended rolled back, 1
/// when the driver refused, 4 when a member's rollback failed or nothing answered.
async fn roll_back_live(
    store: &Store,
    record: &RunRecord,
    name: &str,
    yes: bool,
) -> Result<i32, Exit> {
    let run = record.id;
    eprintln!(
        "train {name} run {run} is being driven ({}): its driver rolls it back, the members running now first, then those it promoted in this stage, in reverse dependency order",
        record.driver()
    );
    if !yes && !super::rollback::confirmed(name)? {
        return Ok(exit::ABORTED);
    }
    let command = Command::from(CommandKind::Rollback, super::sender::sender_on(None).await);
    let answer = super::approve::send_and_wait(store, run, &command, ANSWER_LIMIT).await?;
    let Some(answer) = answer else {
        println!(
            "run {run}: its driver did not answer in {}; the rollback waits in the journal for it: follow it with `glidepath attach {run}`",
            crate::units::format_duration(ANSWER_LIMIT)
        );
        return Ok(exit::INFRA);
    };
    if !answer.accepted {
        return Ok(answer.print(run, CommandKind::Rollback));
    }
    println!("run {run}: rollback accepted; following the train to its end");
    let mut last = answer.seq;
    let mut watch = store.watch(run, Topic::Events).map_err(infra)?;
    let deadline = tokio::time::Instant::now() + END_LIMIT;
    loop {
        for env in store.events_after(run, last).map_err(infra)? {
            last = env.seq;
            match env.event {
                Event::StepFinished {
                    stage,
                    step,
                    status,
                    summary,
                    ..
                } => println!("  {stage}/{step}: {status}: {summary}"),
                Event::RunFinished { status, reason, .. } => {
                    println!("run {run} {status}: {reason}");
                    return Ok(match status {
                        Status::RolledBack => exit::OK,
                        _ => exit::INFRA,
                    });
                }
                _ => {}
            }
        }
        if tokio::time::timeout_at(deadline, watch.changed())
            .await
            .is_err()
        {
            println!(
                "run {run}: still rolling back after {}: follow it with `glidepath attach {run}`",
                crate::units::format_duration(END_LIMIT)
            );
            return Ok(exit::INFRA);
        }
    }
}

/// The last stage the train's run started, and the members it promoted there.
fn last_stage_promoted(train: &Train, events: &[Envelope]) -> Option<(String, Vec<usize>)> {
    use crate::events::{Event, Status};
    let stage = events.iter().rev().find_map(|e| match &e.event {
        Event::StageStarted { stage } => Some(stage.clone()),
        _ => None,
    })?;
    let mut promoted = Vec::new();
    for env in events {
        if let Event::StepFinished {
            stage: s,
            step,
            status,
            ..
        } = &env.event
            && *s == stage
            && let Some(m) = train.members.iter().position(|m| m.name == *step)
        {
            promoted.retain(|p| *p != m);
            if matches!(status, Status::Passed | Status::Warning) {
                promoted.push(m);
            }
        }
    }
    Some((stage, promoted))
}

/// A train delivered to the embedded sandbox cannot be rolled back later: it ended with
/// the process that drove it.
fn refuse_sandbox(train: &Train, stage: &str, run: i64) -> Result<(), Exit> {
    let sandboxed = train.members.iter().any(|m| {
        m.pipeline
            .stages
            .iter()
            .any(|s| s.name == stage && crate::pipeline::load::is_sandbox(s.target.as_ref()))
    });
    if sandboxed {
        return Err(bad_input(format!(
            "run {run} delivered {stage} to a sandbox stage (the embedded sandbox, or the simulated nodes of `demo --kubeconfig`), which ended with the process that drove it; `glidepath rollback SERVICE` rolls back a member still on a cluster"
        )));
    }
    Ok(())
}
