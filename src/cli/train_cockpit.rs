//! A release train in the cockpit: the train's events and every member's, merged into
//! the one stream the cockpit reads. Its keys go to the train's driver on the channel the
//! journal's inbox feeds (`glidepath approve/reject RUN`) and Ctrl-C aborts through.

use std::collections::BTreeMap;

use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use super::args::DriveFlags;
use crate::events::{Command, Envelope, Event};
use crate::train::Train;

/// Events the merged stream holds for a cockpit that falls behind (then it says so).
const CAPACITY: usize = 16_384;

/// The cockpit over a train's run.
pub(super) struct Screen {
    /// Where members' followers send their events.
    pub(super) events: broadcast::Sender<Envelope>,
    task: JoinHandle<()>,
}

/// How the cockpit opens on `train`'s run `run`.
pub(super) fn options(
    train: &Train,
    run: i64,
    flags: &DriveFlags,
    banner: Option<String>,
) -> crate::ui::Options {
    crate::ui::Options {
        theme: flags.cockpit.theme.clone(),
        read_only: flags.cockpit.read_only,
        target: format!("train of {} members", train.members.len()),
        mouse: flags.cockpit.mouse,
        banner,
        train: Some(train_options(train, run)),
        ..crate::ui::Options::default()
    }
}

/// The train view of `train`'s run `run`: its members' versions, its failure rule.
pub(super) fn train_options(train: &Train, run: i64) -> crate::ui::train::TrainOptions {
    let versions: BTreeMap<String, String> = train
        .members
        .iter()
        .filter_map(|m| Some((m.name.clone(), m.pipeline.sets.get("version")?.clone())))
        .collect();
    crate::ui::train::TrainOptions {
        run,
        versions,
        stop_on_failure: train.on_failure == crate::train::model::TrainFailure::Stop,
    }
}

/// Opens the cockpit on the train's events (`train`), sending its commands on `commands`.
pub(super) fn start(
    train: &broadcast::Sender<Envelope>,
    commands: mpsc::UnboundedSender<Command>,
    options: crate::ui::Options,
    run: i64,
) -> Screen {
    let (events, rx) = broadcast::channel(CAPACITY);
    tokio::spawn(forward(train.subscribe(), events.clone()));
    let task = tokio::spawn(async move {
        match crate::ui::run(rx, commands, options, &[]).await {
            // Left while the train goes on: its own progress continues on stderr.
            Ok(ended) if !ended.run_ended => {
                if let Some(what) = &ended.left_behind {
                    eprintln!("{what}");
                }
                carry_on(ended.events, run).await;
            }
            Ok(_) => {}
            Err(e) => eprintln!("warning: the cockpit stopped: {e}"),
        }
    });
    Screen { events, task }
}

impl Screen {
    /// Waits for the operator to leave the cockpit.
    pub(super) async fn finish(self) {
        drop(self.events);
        let _ = self.task.await;
    }
}

/// Copies a run's events into the merged stream until the run's stream closes.
pub(super) async fn forward(
    mut rx: broadcast::Receiver<Envelope>,
    to: broadcast::Sender<Envelope>,
) {
    loop {
        match rx.recv().await {
            Ok(env) => {
                let _ = to.send(env);
            }
            // The cockpit says when it missed events; the journal has them all.
            Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
}

/// The train's own events, printed headless, until it finishes.
async fn carry_on(mut rx: broadcast::Receiver<Envelope>, run: i64) {
    let (tx, out) = broadcast::channel(CAPACITY);
    let printer = tokio::spawn(crate::headless::print(out));
    loop {
        match rx.recv().await {
            Ok(env) if env.run == run => {
                let last = matches!(env.event, Event::RunFinished { .. });
                let _ = tx.send(env);
                if last {
                    break;
                }
            }
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
    drop(tx);
    let _ = printer.await;
}
