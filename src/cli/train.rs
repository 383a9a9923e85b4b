//! `run TRAIN` and `rollback --train RUN`: a release train driven headless, its members on
//! one shared embedded sandbox (when they target it), each member's stage a journaled run
//! of its own; leases on every member's stage clusters for the whole train; reports with a
//! suite per member.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use super::args::{DriveFlags, RunArgs};
use super::drive::{abort_on_signal, acquire_leases, forward_inbox, interactive, refuse};
use super::sandbox::{EmbeddedSandbox, embed_shared_sandbox, sandbox_addresses};
use super::{Exit, bad_input, infra};
use crate::engine::Emitter;
use crate::events::{Envelope, exit};
use crate::pipeline::{Pipeline, Variables};
use crate::report::train::TrainReport;
use crate::store::{Journal, Location, NewRun, RunRecord, Store};
use crate::train::Train;
use crate::train::drive::{Crew, Settings, TrainOutcome};
use crate::train::resume::{Resumption, TrainResume};

/// `run TRAIN`: a new run of the whole train.
pub(super) async fn run(journal_path: &Location, args: RunArgs) -> Result<i32, Exit> {
    if let Some(stage) = &args.stage {
        return Err(bad_input(format!(
            "--stage {stage}: a train moves all its members through every stage together; run a member's pipeline with --stage to release one service alone"
        )));
    }
    let sets: BTreeMap<String, String> = args.sets.into_iter().collect();
    let mut train = crate::train::load_file(&args.pipeline, &Variables::from_sets(sets.clone()))
        .map_err(|e| bad_input(e.to_string()))?;
    apply_context(&mut train, args.flags.context.as_deref())?;
    let run = new_train_run(journal_path, &train, &args.pipeline, &sets)?;
    let auto_approve = args.flags.auto_approve;
    drive_train(train, journal_path, run, &args.flags, auto_approve, None).await
}

/// `resume RUN` of a train: every member from its last committed event. Members the train
/// had finished stay finished, an interrupted member's run continues where it stood, the
/// stages and waves still to go run as they would have.
pub(super) async fn resume(
    journal_path: &Location,
    record: &RunRecord,
    flags: &DriveFlags,
) -> Result<i32, Exit> {
    let run = record.id;
    let mut train = resumable(record)?;
    apply_context(&mut train, flags.context.as_deref())?;
    eprintln!("{}", super::driver::resuming_line(record));
    let store = Store::open(journal_path).map_err(infra)?;
    let events = store.events(run).map_err(infra)?;
    store.claim_run(run).map_err(|e| match e {
        crate::store::StoreError::Driven { .. } => bad_input(e.to_string()),
        e => infra(e),
    })?;
    let names: Vec<&str> = train.members.iter().map(|m| m.name.as_str()).collect();
    let resume = TrainResume::from_events(&events, &names);
    let auto_approve = flags.auto_approve;
    drive_train_from(
        train,
        journal_path,
        run,
        flags,
        auto_approve,
        Start::Resumed(resume),
    )
    .await
}

/// The train of run `record`, when the run can be resumed: unfinished, no live process
/// driving it, and no member delivered to an embedded sandbox (it ended with its process).
pub(super) fn resumable(record: &RunRecord) -> Result<Train, Exit> {
    super::run::ready_to_resume(record)?;
    let train = crate::train::load_str(
        &record.source,
        Path::new(&record.path),
        &Variables::from_sets(record.sets.clone()),
    )
    .map_err(|e| bad_input(e.to_string()))?;
    let sandboxed = train.members.iter().find(|m| {
        m.pipeline
            .stages
            .iter()
            .any(|s| crate::pipeline::load::is_sandbox(s.target.as_ref()))
    });
    if let Some(m) = sandboxed {
        return Err(bad_input(format!(
            "train run {}: member {} delivered to a sandbox stage (the embedded sandbox, or the simulated nodes of `demo --kubeconfig`), which lived and ended with the process that drove it; start a new run of the train instead",
            record.id, m.name
        )));
    }
    Ok(train)
}

/// The unfinished train run that started `run` as one of its members' sub-runs, and the
/// member's name.
pub(super) fn train_of(store: &Store, run: i64) -> Option<(RunRecord, String)> {
    use crate::events::Event;
    let trains = store.unfinished().ok()?;
    trains
        .into_iter()
        .filter(|r| r.service == "train" && r.id < run)
        .find_map(|r| {
            let member = store
                .events(r.id)
                .ok()?
                .into_iter()
                .find_map(|e| match e.event {
                    Event::Member {
                        member, run: sub, ..
                    } if sub == run => Some(member),
                    _ => None,
                })?;
            Some((r, member))
        })
}

/// `--context` for a train: every member stage that delivers to a cluster uses it.
fn apply_context(train: &mut Train, context: Option<&str>) -> Result<(), Exit> {
    let Some(context) = context else {
        return Ok(());
    };
    let mut applied = false;
    for m in &mut train.members {
        let clustered = m
            .pipeline
            .stages
            .iter()
            .any(|s| !crate::pipeline::load::is_sandbox(s.target.as_ref()));
        if clustered {
            super::drive::apply_context(&mut m.pipeline, Some(context))?;
            applied = true;
        }
    }
    if !applied {
        return Err(bad_input(format!(
            "--context {context}: every stage of every member of train {} targets the embedded sandbox; drop --context",
            train.name
        )));
    }
    Ok(())
}

/// Records a new run of the train (its file's text is the run's source).
pub(super) fn new_train_run(
    journal_path: &Location,
    train: &Train,
    path: &Path,
    sets: &BTreeMap<String, String>,
) -> Result<i64, Exit> {
    let source = std::fs::read_to_string(path)
        .map_err(|e| bad_input(format!("cannot read {}: {e}", path.display())))?;
    let path = std::fs::canonicalize(path).unwrap_or(path.to_owned());
    let store = Store::open(journal_path).map_err(infra)?;
    store
        .create_run(&NewRun {
            pipeline: &train.name,
            service: "train",
            path: &path.display().to_string(),
            source: &source,
            sets,
            stage: None,
        })
        .map_err(infra)
}

/// What a train's production runs before the demo releases it (`demo --scenario train`).
pub(super) type Production = Box<dyn FnOnce(&EmbeddedSandbox) -> ProductionStart + Send>;
/// Starting the demo's production, on the train's sandbox.
pub(super) type ProductionStart =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Exit>> + Send>>;

/// What `glidepath demo` adds to a new train run.
pub(super) struct TrainDemo {
    /// Starts production on the train's embedded sandbox (none when the demo runs on a
    /// real cluster, where it started production itself).
    pub(super) production: Option<Production>,
    /// The line under the cockpit's header.
    pub(super) banner: String,
    /// Where the Services of the demo's real cluster answer (`demo --kubeconfig`).
    pub(super) addresses: Option<crate::kube::ServiceAddresses>,
}

/// How a train's driving begins: a new run (maybe the demo's), or an interrupted one
/// resumed.
pub(super) enum Start {
    /// A new run.
    New(Option<TrainDemo>),
    /// An interrupted run, from what it had done.
    Resumed(TrainResume),
}

/// Drives a new train run to its end, in the cockpit (with the demo's banner under its
/// header) or headless; returns its exit code.
pub(super) async fn drive_train(
    train: Train,
    journal_path: &Location,
    run: i64,
    flags: &DriveFlags,
    auto_approve: bool,
    demo: Option<TrainDemo>,
) -> Result<i32, Exit> {
    let start = Start::New(demo);
    drive_train_from(train, journal_path, run, flags, auto_approve, start).await
}

/// Drives a train run to its end, in the cockpit or headless; returns its exit code.
async fn drive_train_from(
    mut train: Train,
    journal_path: &Location,
    run: i64,
    flags: &DriveFlags,
    auto_approve: bool,
    start: Start,
) -> Result<i32, Exit> {
    let (demo, resume) = match start {
        Start::New(demo) => (demo, None),
        Start::Resumed(resume) => (None, Some(resume)),
    };
    let (production, banner, demo_addresses) = match demo {
        Some(d) => (d.production, Some(d.banner), d.addresses),
        None => (None, None, None),
    };
    let cockpit =
        interactive(flags).then(|| super::train_cockpit::options(&train, run, flags, banner));
    let refused = |e: Exit| refuse(journal_path, run, e);
    let pipelines = train.members.iter_mut().map(|m| &mut m.pipeline).collect();
    let sandbox = embed_shared_sandbox(pipelines, &flags.scenario, journal_path)
        .await
        .map_err(refused)?;
    if let (Some(start), Some(sandbox)) = (production, &sandbox) {
        start(sandbox).await.map_err(refused)?;
    }
    let addresses = demo_addresses.or_else(|| {
        train
            .members
            .iter()
            .find_map(|m| sandbox_addresses(&m.pipeline))
    });
    let leases = take_leases(&train, run, journal_path, flags.force_unlock)
        .await
        .map_err(refused)?;
    eprint!("{}", train.plan());
    let first_target = train
        .members
        .iter()
        .flat_map(|m| &m.pipeline.stages)
        .find_map(|s| s.target.clone());
    let settings = Settings {
        auto_approve,
        journal: Some(journal_path.to_owned()),
        service_addresses: addresses,
        resume,
        driver: Some(super::sender::sender_on(first_target.as_ref()).await),
    };
    let outcome = follow(train, journal_path, run, settings, cockpit).await;
    for l in leases {
        l.release().await;
    }
    drop(sandbox);
    let outcome = outcome?;
    report(journal_path, run, flags)?;
    for member in &outcome.members {
        println!("{}", member.line());
    }
    println!(
        "run {run} {}: {}",
        outcome.outcome.status, outcome.outcome.reason
    );
    Ok(outcome.outcome.exit_code)
}

/// The train's lease and every member's run lease on each of its stages' clusters; none
/// held when one is refused.
async fn take_leases(
    train: &Train,
    run: i64,
    journal_path: &Location,
    force: bool,
) -> Result<Vec<crate::kube::lease::Held>, Exit> {
    let mut leases = Vec::new();
    leases.extend(train_lease(train, run, journal_path, force).await?);
    for m in &train.members {
        match acquire_leases(&m.pipeline, None, run, journal_path, force).await {
            Ok(held) => leases.extend(held),
            Err(e) => {
                for l in leases {
                    l.release().await;
                }
                return Err(e);
            }
        }
    }
    Ok(leases)
}

/// The train's own lease (`glidepath-train-NAME`), on the first cluster a member's stage
/// delivers to: a second run of the same train is refused with who drives the first.
async fn train_lease(
    train: &Train,
    run: i64,
    journal: &Location,
    force: bool,
) -> Result<Option<crate::kube::lease::Held>, Exit> {
    use crate::pipeline::model::Target;
    let target = train
        .members
        .iter()
        .flat_map(|m| &m.pipeline.stages)
        .find_map(|s| {
            s.target
                .as_ref()
                .filter(|t| matches!(t, Target::Cluster(_)))
        });
    let Some(target) = target else {
        return Ok(None);
    };
    let cluster = match crate::kube::objects::Cluster::connect(Some(target)).await {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("warning: no lease taken for train {} ({e})", train.name);
            return Ok(None);
        }
    };
    let holder = format!(
        "{} (run {run} in {})",
        crate::events::whoami(),
        journal.display()
    );
    let name = crate::kube::lease::name("train", &train.name);
    match crate::kube::lease::acquire(cluster, &name, &holder, force).await {
        Ok(held) => Ok(Some(held)),
        Err(e @ crate::kube::Error::Held { .. }) => Err(Exit {
            code: exit::INFRA,
            message: e.to_string(),
        }),
        Err(e) => {
            eprintln!("warning: no lease taken for train {} ({e})", train.name);
            Ok(None)
        }
    }
}

/// The train's driver, with its printer (or the cockpit), the journal's command inbox and
/// signals.
async fn follow(
    train: Train,
    journal_path: &Location,
    run: i64,
    settings: Settings,
    cockpit: Option<crate::ui::Options>,
) -> Result<TrainOutcome, Exit> {
    let journal = Journal::open(journal_path).map_err(infra)?;
    let secrets: Vec<String> = train
        .members
        .iter()
        .flat_map(|m| m.pipeline.secrets())
        .collect();
    let next_seq = settings.resume.as_ref().map_or(1, |r| r.next_seq);
    let emitter = Emitter::redacting(
        run,
        next_seq,
        Some(journal),
        crate::redact::Redactor::new(secrets),
    );
    let (tx, rx) = mpsc::unbounded_channel();
    let screen =
        cockpit.map(|o| super::train_cockpit::start(&emitter.sender(), tx.clone(), o, run));
    let printer = screen
        .is_none()
        .then(|| tokio::spawn(crate::headless::print(emitter.sender().subscribe())));
    let inbox = tokio::spawn(forward_inbox(journal_path.to_owned(), run, tx.clone()));
    let signals = tokio::spawn(abort_on_signal(tx));
    let crew = Arc::new(Members {
        journal: journal_path.to_owned(),
        pipelines: train.members.iter().map(|m| m.pipeline.clone()).collect(),
        cockpit: screen.as_ref().map(|s| s.events.clone()),
    });
    let outcome = crate::train::drive::drive(Arc::new(train), emitter, rx, settings, crew).await;
    inbox.abort();
    signals.abort();
    if let Some(printer) = printer {
        let _ = printer.await;
    }
    if let Some(screen) = screen {
        screen.finish().await;
    }
    Ok(outcome)
}

/// `--report` and `--report-dir` for a train: a suite per member.
fn report(journal_path: &Location, run: i64, flags: &DriveFlags) -> Result<(), Exit> {
    if flags.report.is_none() && flags.report_dir.is_none() {
        return Ok(());
    }
    let store = Store::open(journal_path).map_err(infra)?;
    let events = store.events(run).map_err(infra)?;
    let report = TrainReport::from_events(run, &events, |r| store.events(r).unwrap_or_default());
    if let Some(path) = &flags.report {
        report
            .write_json(path)
            .map_err(|e| infra(format!("writing the report to {}: {e}", path.display())))?;
    }
    if let Some(dir) = &flags.report_dir {
        let written = report
            .write_all(dir)
            .map_err(|e| infra(format!("writing the reports to {}: {e}", dir.display())))?;
        let names: Vec<String> = written
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        eprintln!("reports in {}: {}", dir.display(), names.join(", "));
    }
    Ok(())
}

/// The CLI's side of a train: a journaled run per member stage, a printer per member (or
/// its events into the cockpit's stream).
struct Members {
    journal: Location,
    pipelines: Vec<Pipeline>,
    cockpit: Option<broadcast::Sender<Envelope>>,
}

impl Crew for Members {
    fn member_run(&self, member: usize, stage: &str) -> Result<Emitter, String> {
        let p = self
            .pipelines
            .get(member)
            .ok_or_else(|| format!("no member {member}"))?;
        let store = Store::open(&self.journal).map_err(|e| e.to_string())?;
        let run = store
            .create_run(&NewRun {
                pipeline: &p.name,
                service: &p.service,
                path: &p.path.display().to_string(),
                source: &p.source,
                sets: &p.sets,
                stage: Some(stage),
            })
            .map_err(|e| e.to_string())?;
        let journal = Journal::open(&self.journal).map_err(|e| e.to_string())?;
        let secrets = crate::redact::Redactor::new(p.secrets());
        Ok(Emitter::redacting(run, 1, Some(journal), secrets))
    }

    fn resume_member(&self, member: usize, _stage: &str, run: i64) -> Result<Resumption, String> {
        let p = self
            .pipelines
            .get(member)
            .ok_or_else(|| format!("no member {member}"))?;
        let store = Store::open(&self.journal).map_err(|e| e.to_string())?;
        let record = store.run(run).map_err(|e| e.to_string())?;
        let events = store.events(run).map_err(|e| e.to_string())?;
        if let Some(exit_code) = record.exit_code {
            let reason = events
                .iter()
                .rev()
                .find_map(|e| match &e.event {
                    crate::events::Event::RunFinished { reason, .. } => Some(reason.clone()),
                    _ => None,
                })
                .unwrap_or_else(|| format!("run {run} ended {}", record.status));
            return Ok(Resumption::Ended(crate::engine::Outcome {
                status: record.status,
                exit_code,
                reason,
            }));
        }
        store.claim_run(run).map_err(|e| e.to_string())?;
        let next_seq = events.last().map_or(1, |e| e.seq + 1);
        let journal = Journal::open(&self.journal).map_err(|e| e.to_string())?;
        let secrets = crate::redact::Redactor::new(p.secrets());
        Ok(Resumption::Continue {
            emitter: Emitter::redacting(run, next_seq, Some(journal), secrets),
            resumed: crate::engine::Resumed::from_events(&events),
        })
    }

    fn follow(&self, member: &str, events: &broadcast::Sender<Envelope>) -> Option<JoinHandle<()>> {
        let rx = events.subscribe();
        if let Some(to) = &self.cockpit {
            return Some(tokio::spawn(super::train_cockpit::forward(rx, to.clone())));
        }
        let member = member.to_owned();
        Some(tokio::spawn(async move {
            crate::headless::print_member(rx, &member).await;
        }))
    }
}
