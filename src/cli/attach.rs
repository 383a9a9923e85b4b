//! `attach [RUN]`: the cockpit over a run another glidepath process drives. Events already
//! journaled are shown at once, new ones as they are committed; commands go to the
//! journal's inbox, where the driving process picks them up. A release train's run is
//! followed with every member sub-run it names.

use crate::store::Location;
use std::path::Path;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};

use super::args::CockpitFlags;
use super::{Exit, bad_input, infra};
use crate::events::{Command, Envelope, Event, exit};
use crate::pipeline;
use crate::store::{RunRecord, Store, Topic, Watch};

/// `attach`: needs a terminal; a run no process drives is only watched. A release train's
/// run opens the train view, its members' sub-runs followed with it.
pub(super) async fn attach(
    journal_path: &Location,
    run: Option<i64>,
    cockpit: CockpitFlags,
) -> Result<i32, Exit> {
    use std::io::IsTerminal;
    if !(std::io::stdout().is_terminal() && std::io::stdin().is_terminal()) {
        return Err(bad_input(
            "attach opens the cockpit and needs a terminal; `glidepath history RUN` prints a run",
        ));
    }
    let store = Store::open(journal_path).map_err(infra)?;
    let run = match run {
        Some(run) => run,
        None => newest(&store)?,
    };
    let part_of = super::train::train_of(&store, run);
    let record = store.run(run).map_err(|e| bad_input(e.to_string()))?;
    let train = (record.service == "train").then(|| super::attach_train::options(&record));
    // What the journal holds is shown at once; the follower carries on after it.
    let earlier = match train {
        Some(_) => super::attach_train::earlier(&store, run)?,
        None => store.events(run).map_err(infra)?,
    };
    let driven = record.driver_alive();
    let interrupted = record.exit_code.is_none() && !driven;
    let notice = notice(run, part_of, interrupted);
    let protected = match train {
        Some(_) => Vec::new(),
        None => protected_stages(&store, run, &record)?,
    };
    let options = crate::ui::Options {
        theme: cockpit.theme,
        read_only: cockpit.read_only || notice.is_some(),
        target: format!("attached to run {run} ({})", record.path),
        protected,
        history: Some(super::history::source(journal_path.to_owned())),
        mouse: cockpit.mouse,
        interrupted,
        train,
        banner: None,
        lease: driven.then(|| format!("held by the driver, {}", record.driver())),
        notice,
    };
    let (events_tx, events_rx) = broadcast::channel(16_384);
    let (commands_tx, commands_rx) = mpsc::unbounded_channel::<Command>();
    let followed = last_seen(run, &earlier);
    let follower = tokio::spawn(follow(journal_path.to_owned(), followed, events_tx));
    let sender = tokio::spawn(send_commands(journal_path.to_owned(), run, commands_rx));
    let result = crate::ui::run(events_rx, commands_tx, options, &earlier).await;
    follower.abort();
    sender.abort();
    result.map_err(infra)?;
    Ok(exit::OK)
}

/// The run `attach` without RUN opens: the newest unfinished one, or, when that is a
/// release train's member run, its train (what the operator steers).
fn newest(store: &Store) -> Result<i64, Exit> {
    let run = super::run_or_newest_unfinished(
        store,
        None,
        "no unfinished run to attach to; name one: attach RUN",
    )?;
    let record = store.run(run).map_err(|e| bad_input(e.to_string()))?;
    if record.service == "train" {
        return Ok(run);
    }
    if let Some((train, _)) = super::train::train_of(store, run) {
        return Ok(train.id);
    }
    // A member run its train has not named in the journal yet: the train's own process
    // created it.
    let unfinished = store.unfinished().map_err(infra)?;
    let train = unfinished.iter().find(|t| {
        t.service == "train"
            && t.id < run
            && t.pid.is_some()
            && (t.pid, &t.host) == (record.pid, &record.host)
    });
    Ok(train.map_or(run, |t| t.id))
}

/// Why the cockpit only watches `run`: a train member's run (its engine takes commands
/// from the train's driver, never from its own inbox), or a run no process drives.
fn notice(run: i64, part_of: Option<(RunRecord, String)>, interrupted: bool) -> Option<String> {
    match part_of {
        Some((t, member)) => Some(format!(
            "run {run} is member {member}'s run in train run {t}: watching only; `glidepath attach {t}` opens the train",
            t = t.id
        )),
        None => interrupted.then(|| {
            format!(
                "no process drives run {run}: watching only; `glidepath resume {run}` takes it over"
            )
        }),
    }
}

/// `run` and each member sub-run its events name, with the last of its events in
/// `earlier` (0 for none).
fn last_seen(run: i64, earlier: &[Envelope]) -> Vec<(i64, u64)> {
    let own: Vec<Envelope> = earlier.iter().filter(|e| e.run == run).cloned().collect();
    std::iter::once(run)
        .chain(super::attach_train::member_runs(&own))
        .map(|r| {
            let last = earlier.iter().filter(|e| e.run == r).map(|e| e.seq).max();
            (r, last.unwrap_or(0))
        })
        .collect()
}

/// A run the follower reads: the last event it sent, and the journal's watch on it.
struct Followed {
    run: i64,
    last: u64,
    watch: Watch,
}

/// Sends the events of the runs in `followed` (each after the last one shown) as the
/// journal commits them; a member sub-run that the first run (a release train's) names
/// later is followed from its first event.
async fn follow(path: Location, followed: Vec<(i64, u64)>, events: broadcast::Sender<Envelope>) {
    let store = match Store::open(&path) {
        Ok(s) => s,
        Err(e) => return tracing::warn!("cannot follow the run in the journal: {e}"),
    };
    let mut runs = Vec::new();
    for (run, last) in followed {
        match store.watch(run, Topic::Events) {
            Ok(watch) => runs.push(Followed { run, last, watch }),
            Err(e) => return tracing::warn!("cannot follow run {run} in the journal: {e}"),
        }
    }
    loop {
        let named = match send_new(&store, &mut runs, &events) {
            Ok(named) => named,
            Err(e) => {
                // The journal is unreachable (a restarting server): read again shortly.
                tracing::warn!("cannot follow the run in the journal: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut added = false;
        for run in named {
            if runs.iter().any(|f| f.run == run) {
                continue;
            }
            // Watched before its first read, so nothing committed in between is missed.
            match store.watch(run, Topic::Events) {
                Ok(watch) => {
                    runs.push(Followed {
                        run,
                        last: 0,
                        watch,
                    });
                    added = true;
                }
                Err(e) => tracing::warn!("cannot follow member run {run} in the journal: {e}"),
            }
        }
        if !added && !runs.is_empty() {
            let changed = runs.iter_mut().map(|f| Box::pin(f.watch.changed()));
            futures_util::future::select_all(changed).await;
        }
    }
}

/// Sends what each run committed after its last event sent; returns the member sub-runs
/// those events name.
fn send_new(
    store: &Store,
    runs: &mut [Followed],
    events: &broadcast::Sender<Envelope>,
) -> Result<Vec<i64>, crate::store::StoreError> {
    let mut named = Vec::new();
    for f in runs.iter_mut() {
        for env in store.events_after(f.run, f.last)? {
            f.last = env.seq;
            if let Event::Member { run, .. } = &env.event {
                named.push(*run);
            }
            let _ = events.send(env);
        }
    }
    Ok(named)
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
        // A command for one member of a train keeps its member: the train's driver routes it.
        let command = Command::from(c.kind, me.clone()).for_member(c.member);
        if let Err(e) = store.send(run, &command) {
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
