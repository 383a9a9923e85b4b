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
    let target = super::sender::current_target(&store, &record);
    let command = Command::from(kind, super::sender::sender_on(target.as_ref()).await);
    if let Some(answer) = send_and_wait(&store, run, &command, Duration::from_secs(5)).await? {
        return Ok(answer.print(run, kind));
    }
    println!(
        "run {run}: {kind} queued; no process is driving the run right now, it takes effect when the run is resumed"
    );
    Ok(exit::OK)
}

/// A driver's answer to a command: whether it took it, its note, and the answer's place
/// in the run's events.
pub(super) struct Answer {
    pub(super) accepted: bool,
    pub(super) reason: Option<String>,
    pub(super) seq: u64,
}

impl Answer {
    /// `run 5: approve accepted` (with its note) or `... refused: why`; exit 0 or 1.
    pub(super) fn print(&self, run: i64, kind: CommandKind) -> i32 {
        match (&self.reason, self.accepted) {
            (Some(note), true) => println!("run {run}: {kind} accepted: {note}"),
            (None, true) => println!("run {run}: {kind} accepted"),
            (why, false) => println!(
                "run {run}: {kind} refused: {}",
                why.as_deref().unwrap_or_default()
            ),
        }
        if self.accepted {
            exit::OK
        } else {
            exit::FAILED
        }
    }
}

/// Leaves `command` in the run's journal inbox and waits up to `limit` for the driving
/// process's answer to it; `None` when none came.
pub(super) async fn send_and_wait(
    store: &Store,
    run: i64,
    command: &Command,
    limit: Duration,
) -> Result<Option<Answer>, Exit> {
    let mut last = store
        .events(run)
        .map_err(infra)?
        .last()
        .map(|e| e.seq)
        .unwrap_or(0);
    let mut watch = store.watch(run, Topic::Events).map_err(infra)?;
    store.send(run, command).map_err(infra)?;
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::timeout_at(deadline, watch.changed())
        .await
        .is_ok()
    {
        for env in store.events_after(run, last).map_err(infra)? {
            last = env.seq;
            if let Event::Operator {
                command: kind,
                who,
                accepted,
                reason,
                ..
            } = env.event
                && kind == command.kind
                && who == command.who
            {
                return Ok(Some(Answer {
                    accepted,
                    reason,
                    seq: env.seq,
                }));
            }
        }
    }
    Ok(None)
}
