//! `approve RUN` and `reject RUN`: an operator's command, left in the journal for the
//! process that drives the run (for a release train's member, its train's run).

use crate::store::Location;
use std::time::Duration;

use super::{Exit, bad_input, infra};
use crate::events::{Command, CommandKind, Event, exit};
use crate::store::{Store, Topic};

/// Leaves a command for a run and reports whether the engine took it.
pub(super) async fn send(
    journal_path: &Location,
    run: i64,
    kind: CommandKind,
) -> Result<i32, Exit> {
    let store = Store::open(journal_path).map_err(infra)?;
    let record = store.run(run).map_err(|e| bad_input(e.to_string()))?;
    if let Some((train, member)) = super::train::train_of(&store, run) {
        return Err(bad_input(format!(
            "run {run} is member {member}'s run in train run {t}, whose driver takes the commands: `glidepath {kind} {t}` answers the train's approval between stages, which stands for the members' own approvals",
            t = train.id
        )));
    }
    if record.exit_code.is_some() {
        return Err(bad_input(format!(
            "run {run} has already finished ({})",
            record.status
        )));
    }
    let last = store
        .events(run)
        .map_err(infra)?
        .last()
        .map(|e| e.seq)
        .unwrap_or(0);
    let target = super::sender::current_target(&store, &record);
    let command = Command::from(kind, super::sender::sender_on(target.as_ref()).await);
    let who = command.who.clone();
    let mut watch = store.watch(run, Topic::Events).map_err(infra)?;
    store.send(run, &command).map_err(infra)?;
    // Wait a little for the engine's answer, so the operator knows it took effect.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::timeout_at(deadline, watch.changed())
        .await
        .is_ok()
    {
        for env in store.events_after(run, last).map_err(infra)? {
            if let Event::Operator {
                command,
                who: w,
                accepted,
                reason,
                ..
            } = env.event
                && command == kind
                && w == who
            {
                return if accepted {
                    match reason {
                        Some(note) => println!("run {run}: {kind} accepted: {note}"),
                        None => println!("run {run}: {kind} accepted"),
                    }
                    Ok(exit::OK)
                } else {
                    println!("run {run}: {kind} refused: {}", reason.unwrap_or_default());
                    Ok(exit::FAILED)
                };
            }
        }
    }
    println!(
        "run {run}: {kind} queued; no process is driving the run right now, it takes effect when the run is resumed"
    );
    Ok(exit::OK)
}
