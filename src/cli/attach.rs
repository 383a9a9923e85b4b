//! `attach [RUN]`: the cockpit over a run another glidepath process drives. Events already
//! journaled are shown at once, new ones as they are committed; commands go to the
//! journal's inbox, where the driving process picks them up.

use crate::store::Location;
use std::path::Path;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};

use super::args::CockpitFlags;
use super::{Exit, bad_input, infra};
use crate::events::{Command, Envelope, Event, exit};
use crate::pipeline;
use crate::store::{RunRecord, Store, Topic};

/// `attach`: needs a terminal; a run no process drives is only watched.
pub(super) async fn attach(
    journal_path: &Location,
    run: Option<i64>,
    cockpit: CockpitFlags,
) -> Result<i32, Exit> {
    let CockpitFlags {
        theme,
        read_only,
        mouse,
    } = cockpit;
    use std::io::IsTerminal;
    if !(std::io::stdout().is_terminal() && std::io::stdin().is_terminal()) {
        return Err(bad_input(
            "attach opens the cockpit and needs a terminal; `glidepath history RUN` prints a run",
        ));
    }
    let store = Store::open(journal_path).map_err(infra)?;
    let run = super::run_or_newest_unfinished(
        &store,
        run,
        "no unfinished run to attach to; name one: attach RUN",
    )?;
    let record = store.run(run).map_err(|e| bad_input(e.to_string()))?;
    // What the journal holds is shown at once; the follower carries on after it.
    let earlier = store.events(run).map_err(infra)?;
    let start_after = earlier.last().map(|e| e.seq).unwrap_or(0);
    let driven = record.driver_alive();
    let notice = (record.exit_code.is_none() && !driven).then(|| {
        format!(
            "no process drives run {run}: watching only; `glidepath resume {run}` takes it over"
        )
    });
    let read_only = read_only || notice.is_some();
    let (events_tx, events_rx) = broadcast::channel(16_384);
    let (commands_tx, commands_rx) = mpsc::unbounded_channel::<Command>();
    let follower = tokio::spawn(follow(journal_path.to_owned(), run, start_after, events_tx));
    let sender = tokio::spawn(send_commands(journal_path.to_owned(), run, commands_rx));
    let protected = protected_stages(&store, run, &record)?;
    let options = crate::ui::Options {
        theme,
        read_only,
        target: format!("attached to run {run} ({})", record.path),
        protected,
        history: Some(super::history::source(journal_path.to_owned())),
        mouse,
        interrupted: notice.is_some(),
        train: None,
        banner: None,
        lease: driven.then(|| format!("held by the driver, {}", record.driver())),
        notice,
    };
    let result = crate::ui::run(events_rx, commands_tx, options, &earlier).await;
    follower.abort();
    sender.abort();
    result.map_err(infra)?;
    Ok(exit::OK)
}

/// Sends the run's events as the journal commits them, after `start_after`.
async fn follow(path: Location, run: i64, start_after: u64, events: broadcast::Sender<Envelope>) {
    let watch = Store::open(&path).and_then(|s| Ok((s.watch(run, Topic::Events)?, s)));
    let (mut watch, store) = match watch {
        Ok(w) => w,
        Err(e) => return tracing::warn!("cannot follow run {run} in the journal: {e}"),
    };
    let mut last = start_after;
    loop {
        match store.events_after(run, last) {
            Ok(new) => {
                for env in new {
                    last = env.seq;
                    let _ = events.send(env);
                }
            }
            Err(e) => {
                // The journal is unreachable (a restarting server): read again shortly.
                tracing::warn!("cannot follow run {run} in the journal: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        }
        watch.changed().await;
    }
}

/// The cockpit's commands into the journal's inbox, for the driving process.
async fn send_commands(path: Location, run: i64, mut commands: mpsc::UnboundedReceiver<Command>) {
    let Ok(store) = Store::open(&path) else {
        return;
    };
    // The cockpit's commands are this process's, not the driver's.
    let target = store
        .run(run)
        .ok()
        .and_then(|r| super::sender::current_target(&store, &r));
    let me = super::sender::sender_on(target.as_ref()).await;
    while let Some(c) = commands.recv().await {
        if let Err(e) = store.send(run, &Command::from(c.kind, me.clone())) {
            tracing::warn!("cannot send {} to run {run}: {e}", c.kind);
        }
    }
}

/// Protected stages as the run's own pipeline text says; if it no longer loads, every
/// stage asks for the service name (the safe side).
fn protected_stages(store: &Store, run: i64, record: &RunRecord) -> Result<Vec<String>, Exit> {
    let vars = pipeline::Variables {
        sets: record.sets.clone(),
        use_env: false,
    };
    Ok(
        match pipeline::load_str(&record.source, Path::new(&record.path), &vars) {
            Ok(p) => p
                .stages
                .iter()
                .filter(|s| s.protected)
                .map(|s| s.name.clone())
                .collect(),
            Err(_) => store
                .events(run)
                .map_err(infra)?
                .iter()
                .find_map(|e| match &e.event {
                    Event::RunStarted { stages, .. } => {
                        Some(stages.iter().map(|s| s.name.clone()).collect())
                    }
                    _ => None,
                })
                .unwrap_or_default(),
        },
    )
}
