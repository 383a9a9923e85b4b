//! Driving a run to its end (`run`, `resume`, `demo`): in the cockpit or headless, holding
//! the run leases, taking commands from the journal and from signals, writing the reports.

use crate::store::Location;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use super::args::DriveFlags;
use super::demo::Demo;
use super::sandbox::{embed_sandbox, sandbox_addresses};
use super::{Exit, infra};
use crate::engine::{self, Emitter, Outcome, RunHandle, RunOptions};
use crate::events::{Command, CommandKind, Envelope, Event, Status, exit, whoami};
use crate::pipeline::Pipeline;
use crate::report::Report;
use crate::store::{Journal, Store, Topic};

/// Whether a run opens the cockpit: it needs a terminal on both ends; anything else (CI,
/// a pipe) runs headless.
pub(super) fn interactive(flags: &DriveFlags) -> bool {
    use std::io::IsTerminal;
    !flags.headless && std::io::stdout().is_terminal() && std::io::stdin().is_terminal()
}

/// Runs a pipeline to its end, in the cockpit or headless (`demo`: the demo's production
/// and banner).
pub(super) async fn drive(
    p: Pipeline,
    journal_path: &Location,
    run: i64,
    next_seq: u64,
    options: RunOptions,
    flags: &DriveFlags,
    demo: Option<Demo>,
) -> Result<i32, Exit> {
    let interactive = interactive(flags);
    if !flags.headless && !interactive {
        eprintln!("note: not a terminal, so running headless (--headless says so explicitly)");
    }
    // Named as written (`sandbox/shop`), before the sandbox stages are pointed at it.
    let target = describe_target(&p);
    // A new run turned away here never started: it is journaled as refused, not running.
    let fresh = options.resumed.is_none();
    let refused = |e: Exit| {
        if fresh {
            refuse(journal_path, run, e)
        } else {
            e
        }
    };
    let (p, sandbox) = embed_sandbox(p, &flags.scenario, journal_path)
        .await
        .map_err(refused)?;
    let first_target = p
        .stages
        .iter()
        .filter(|s| options.stage.as_ref().is_none_or(|only| &s.name == only))
        .find_map(|s| s.target.clone());
    let options = RunOptions {
        service_addresses: sandbox_addresses(&p)
            .or_else(|| demo.as_ref().and_then(Demo::service_addresses)),
        driver: Some(super::sender::sender_on(first_target.as_ref()).await),
        ..options
    };
    let mut demo = demo;
    if let Some(demo) = &demo {
        demo.start_production(sandbox.as_ref(), interactive)
            .await
            .map_err(refused)?;
    }
    // The demo's data plane runs until the run ends, whoever takes the banner.
    let _data_plane = demo.as_mut().and_then(|d| d.cluster.take());
    let stage = options.stage.as_deref();
    let leases = acquire_leases(&p, stage, run, journal_path, flags.force_unlock)
        .await
        .map_err(refused)?;
    let journal = Journal::open(journal_path).map_err(infra)?;
    let secrets = crate::redact::Redactor::new(p.secrets());
    let emitter = Emitter::redacting(run, next_seq, Some(journal), secrets);
    let protected = protected_stages(&p);
    let (handle, mut followers) = start(p, emitter, options, interactive);
    let earlier = earlier_events(journal_path, run, next_seq);
    // One driver at a time: this process holds the leases, the header says so.
    let lease = (!leases.is_empty()).then(|| format!("{} (this run)", whoami()));
    let cockpit = followers.cockpit_events.take().map(|rx| {
        let options = crate::ui::Options {
            theme: flags.cockpit.theme.clone(),
            read_only: flags.cockpit.read_only,
            target,
            protected,
            history: Some(super::history::source(journal_path.to_owned())),
            mouse: flags.cockpit.mouse,
            notice: None,
            banner: demo.map(|d| d.banner),
            lease,
            interrupted: !earlier.is_empty(),
            train: None,
        };
        spawn_cockpit(rx, handle.commands.clone(), options, earlier)
    });
    let inbox = tokio::spawn(forward_inbox(
        journal_path.to_owned(),
        run,
        handle.commands.clone(),
    ));
    let signals = tokio::spawn(abort_on_signal(handle.commands.clone()));
    let outcome: Outcome = handle.wait().await;
    for lease in leases {
        lease.release().await;
    }
    inbox.abort();
    signals.abort();
    followers.finish().await;
    if let Some(cockpit) = cockpit {
        match cockpit.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => eprintln!("warning: the cockpit stopped: {e}"),
            Err(e) => eprintln!("warning: the cockpit stopped: {e}"),
        }
    }
    report_outcome(journal_path, run, flags, &outcome)
}

/// Journals a new run that was turned away before its first event as `refused`, with the
/// reason and exit code it ends with; returns that failure.
pub(super) fn refuse(journal_path: &Location, run: i64, e: Exit) -> Exit {
    let refusal = Envelope {
        run,
        seq: 1,
        at_ms: crate::store::now_ms(),
        event: Event::RunFinished {
            status: Status::Refused,
            exit_code: e.code,
            reason: format!("refused before it started: {}", e.message),
        },
    };
    let written = Journal::open(journal_path).and_then(|j| j.append_durable(refusal));
    if let Err(j) = written {
        eprintln!("warning: run {run} could not be journaled as refused: {j}");
    }
    e
}

/// `--context` (`run`, `resume`, `demo`, `check`): every stage that delivers to a cluster
/// (or names no target) uses this kubeconfig context. Stages that target the embedded
/// sandbox have no context: when no stage uses it the flag is refused, else a warning on
/// stderr names each stage that ignores it.
pub(super) fn apply_context(p: &mut Pipeline, context: Option<&str>) -> Result<(), Exit> {
    let Some(context) = context else {
        return Ok(());
    };
    let sandboxed: Vec<&str> = p
        .stages
        .iter()
        .filter(|s| crate::pipeline::load::is_sandbox(s.target.as_ref()))
        .map(|s| s.name.as_str())
        .collect();
    if sandboxed.len() == p.stages.len() {
        return Err(super::bad_input(format!(
            "--context {context}: no stage of {} uses a kubeconfig context; every stage ({}) targets the embedded sandbox. Drop --context, or give a stage a cluster target such as {{ context: {context}, namespace: shop }}",
            p.path.display(),
            sandboxed.join(", ")
        )));
    }
    for stage in &sandboxed {
        eprintln!(
            "warning: --context {context} does not apply to stage `{stage}`, which targets the embedded sandbox"
        );
    }
    set_context(p, context);
    Ok(())
}

/// Sets the context of every stage that delivers to a cluster (or names no target).
fn set_context(p: &mut Pipeline, context: &str) {
    use crate::pipeline::model::{ClusterTarget, Target};
    for stage in &mut p.stages {
        match &mut stage.target {
            Some(Target::Cluster(c)) => c.context = Some(context.to_owned()),
            t @ None => {
                *t = Some(Target::Cluster(ClusterTarget {
                    context: Some(context.to_owned()),
                    ..ClusterTarget::default()
                }))
            }
            Some(Target::Sandbox(_) | Target::SandboxIn(_)) => {}
        }
    }
}

/// The stages whose changes the cockpit confirms with the service's name.
fn protected_stages(p: &Pipeline) -> Vec<String> {
    p.stages
        .iter()
        .filter(|s| s.protected)
        .map(|s| s.name.clone())
        .collect()
}

/// What follows a run's events besides the journal: the headless printer or the
/// cockpit's stream, and the webhook notifier.
struct Followers {
    printer: Option<JoinHandle<()>>,
    notifier: Option<JoinHandle<()>>,
    cockpit_events: Option<broadcast::Receiver<Envelope>>,
}

impl Followers {
    /// Waits for the printer to print the last event, and for webhooks a bounded moment.
    async fn finish(self) {
        if let Some(printer) = self.printer {
            let _ = printer.await;
        }
        // The run is over; what it told webhooks gets a moment to arrive, never more (the
        // senders give up at the same deadline; this is the backstop).
        if let Some(notifier) = self.notifier
            && tokio::time::timeout(crate::notify::FLUSH + Duration::from_secs(1), notifier)
                .await
                .is_err()
        {
            notify_warnings().warn(format!(
                "notifications still unsent after {} s were dropped",
                crate::notify::FLUSH.as_secs()
            ));
        }
    }
}

/// Notification warnings: in glidepath's log, and on stderr unless the cockpit owns the
/// screen (its log view shows them then).
fn notify_warnings() -> crate::notify::Warnings {
    crate::notify::Warnings::new(|message| {
        if !crate::ui::active() {
            eprintln!("warning: {message}");
        }
    })
}

/// Starts the engine, with its followers subscribed before the first event.
fn start(
    p: Pipeline,
    emitter: Emitter,
    options: RunOptions,
    interactive: bool,
) -> (RunHandle, Followers) {
    let hooks: Vec<_> = p.file.spec.notify.iter().map(|n| n.value.clone()).collect();
    let mut followers = Followers {
        printer: None,
        notifier: None,
        cockpit_events: None,
    };
    let handle = engine::start_with(Arc::new(p), emitter, options, |tx| {
        if !hooks.is_empty() {
            followers.notifier = Some(tokio::spawn(crate::notify::follow(
                tx.subscribe(),
                hooks,
                notify_warnings(),
            )));
        }
        if interactive {
            followers.cockpit_events = Some(tx.subscribe());
        } else {
            followers.printer = Some(tokio::spawn(crate::headless::print(tx.subscribe())));
        }
    });
    (handle, followers)
}

/// A resumed run's cockpit starts from what the journal already holds (a new run: nothing).
fn earlier_events(journal_path: &Location, run: i64, next_seq: u64) -> Vec<Envelope> {
    if next_seq <= 1 {
        return Vec::new();
    }
    Store::open(journal_path)
        .and_then(|s| s.events_after(run, 0))
        .map(|events| {
            events
                .into_iter()
                .filter(|e| e.seq < next_seq)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
}

/// The cockpit on the run's events.
fn spawn_cockpit(
    rx: broadcast::Receiver<Envelope>,
    commands: mpsc::UnboundedSender<Command>,
    options: crate::ui::Options,
    earlier: Vec<Envelope>,
) -> JoinHandle<std::io::Result<()>> {
    tokio::spawn(async move {
        match crate::ui::run(rx, commands, options, &earlier).await {
            // Left while the run goes on: its progress continues on stderr, from the
            // first event the cockpit had not shown.
            Ok(ended) if !ended.run_ended => {
                if let Some(what) = &ended.left_behind {
                    eprintln!("{what}");
                }
                crate::headless::print(ended.events).await;
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        }
    })
}

/// The reports `--report` and `--report-dir` ask for, then the run's last line; returns
/// the run's exit code.
fn report_outcome(
    journal_path: &Location,
    run: i64,
    flags: &DriveFlags,
    outcome: &Outcome,
) -> Result<i32, Exit> {
    let store = Store::open(journal_path).map_err(infra)?;
    let events = store.events(run).map_err(infra)?;
    let report = Report::from_events(run, &events);
    if let Some(path) = &flags.report {
        report
            .write_json(path)
            .with_context(|| format!("writing the report to {}", path.display()))
            .map_err(infra)?;
    }
    if let Some(dir) = &flags.report_dir {
        write_reports(&report, dir)?;
    }
    println!("run {run} {}: {}", outcome.status, outcome.reason);
    Ok(outcome.exit_code)
}

/// `--report-dir`: every format, and where they went.
pub(super) fn write_reports(report: &Report, dir: &Path) -> Result<(), Exit> {
    let written = report
        .write_all(dir)
        .with_context(|| format!("writing the reports to {}", dir.display()))
        .map_err(infra)?;
    let names: Vec<String> = written
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    eprintln!("reports in {}: {}", dir.display(), names.join(", "));
    Ok(())
}

/// One driver at a time: the run's lease on every stage's cluster (see `kube::lease`).
pub(super) async fn acquire_leases(
    p: &Pipeline,
    only: Option<&str>,
    run: i64,
    journal: &Location,
    force: bool,
) -> Result<Vec<crate::kube::lease::Held>, Exit> {
    use crate::pipeline::model::Target;
    // The journal and run id name the driver: a resumed run is the same driver.
    let holder = format!("{} (run {run} in {})", whoami(), journal.display());
    let mut held = Vec::new();
    for stage in p.stages.iter().filter(|s| only.is_none_or(|o| s.name == o)) {
        let Some(target @ Target::Cluster(_)) = &stage.target else {
            continue;
        };
        let cluster = match crate::kube::objects::Cluster::connect(Some(target)).await {
            Ok(c) => Arc::new(c),
            Err(e) => {
                eprintln!("warning: stage {}: no run lease taken ({e})", stage.name);
                continue;
            }
        };
        let name = crate::kube::lease::name(&p.service, &stage.name);
        match crate::kube::lease::acquire(cluster, &name, &holder, force).await {
            Ok(h) => held.push(h),
            Err(e @ crate::kube::Error::Held { .. }) => {
                for h in held {
                    h.release().await;
                }
                return Err(Exit {
                    code: exit::INFRA,
                    message: e.to_string(),
                });
            }
            Err(e) => eprintln!("warning: stage {}: no run lease taken ({e})", stage.name),
        }
    }
    Ok(held)
}

/// Where a pipeline delivers, for the cockpit's header: `context/namespace`, with the
/// namespaces of one context together (`prod-eu/shop-staging,shop`), or `sandbox`.
fn describe_target(p: &Pipeline) -> String {
    use crate::pipeline::model::Target;
    let mut seen: Vec<(String, Vec<String>)> = Vec::new();
    for stage in &p.stages {
        let (context, namespace) = match &stage.target {
            Some(Target::Cluster(c)) => (
                c.context.as_deref().unwrap_or("current context").to_owned(),
                c.namespace.as_deref().unwrap_or("default").to_owned(),
            ),
            Some(Target::Sandbox(_)) => ("sandbox".to_owned(), String::new()),
            Some(Target::SandboxIn(t)) => ("sandbox".to_owned(), t.namespace.clone()),
            None => continue,
        };
        match seen.iter_mut().find(|(c, _)| *c == context) {
            Some((_, namespaces)) => {
                if !namespaces.contains(&namespace) {
                    namespaces.push(namespace);
                }
            }
            None => seen.push((context, vec![namespace])),
        }
    }
    seen.iter()
        .map(|(context, namespaces)| {
            let namespaces: Vec<&str> = namespaces
                .iter()
                .map(String::as_str)
                .filter(|n| !n.is_empty())
                .collect();
            if namespaces.is_empty() {
                context.clone()
            } else {
                format!("{context}/{}", namespaces.join(","))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Commands left in the journal by `glidepath approve` and friends reach the engine here.
pub(super) async fn forward_inbox(path: Location, run: i64, tx: mpsc::UnboundedSender<Command>) {
    let watch = Store::open(&path).and_then(|s| Ok((s.watch(run, Topic::Commands)?, s)));
    let (mut watch, store) = match watch {
        Ok(w) => w,
        Err(e) => return tracing::warn!("cannot read commands from the journal: {e}"),
    };
    loop {
        match store.take_commands(run) {
            Ok(commands) => {
                for c in commands {
                    if tx.send(c).is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                // The journal is unreachable (a restarting server): read again shortly.
                tracing::warn!("cannot read commands from the journal: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        }
        watch.changed().await;
    }
}

/// Ctrl-C or SIGTERM aborts the run cleanly (journaled); a second one exits at once.
pub(super) async fn abort_on_signal(tx: mpsc::UnboundedSender<Command>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    let mut seen = 0;
    loop {
        let name = tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        };
        seen += 1;
        if seen > 1 {
            // Out at once, but not with the terminal left in the cockpit's modes.
            if crate::ui::active() {
                crate::ui::restore_terminal(true);
            }
            std::process::exit(exit::ABORTED);
        }
        let _ = tx.send(Command::new(
            CommandKind::Abort,
            format!("{name} ({})", whoami()),
        ));
    }
}
