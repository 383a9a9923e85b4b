//! `run PIPELINE` and `resume [RUN]`: start a run, or continue an interrupted one from its
//! last committed event; both hand it to `drive`.

use crate::store::Location;
use std::path::Path;

use super::args::{DriveFlags, RunArgs};
use super::drive::{apply_context, drive};
use super::driver;
use super::{Exit, bad_input, infra, load_pipeline};
use crate::engine::{Resumed, RunOptions};
use crate::pipeline::{self, Pipeline, Variables};
use crate::store::{NewRun, RunRecord, Store};

/// `run`: a new run of the pipeline (or of one `--stage`).
pub(super) async fn run(journal_path: &Location, args: RunArgs) -> Result<i32, Exit> {
    if std::fs::read_to_string(&args.pipeline).is_ok_and(|t| crate::train::is_train(&t)) {
        return super::train::run(journal_path, args).await;
    }
    let mut p = load_pipeline(&args.pipeline, args.sets)?;
    apply_context(&mut p, args.flags.context.as_deref())?;
    if let Some(stage) = &args.stage
        && !p.stages.iter().any(|s| &s.name == stage)
    {
        let names: Vec<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
        return Err(bad_input(format!(
            "--stage {stage}: no such stage; the pipeline has {}",
            names.join(", ")
        )));
    }
    let path = std::fs::canonicalize(&args.pipeline).unwrap_or(args.pipeline.clone());
    let run = new_run(journal_path, &p, &path, args.stage.as_deref())?;
    let options = RunOptions {
        stage: args.stage,
        auto_approve: args.flags.auto_approve,
        resumed: None,
        journal: Some(journal_path.to_owned()),
        preflight_only: false,
        service_addresses: None,
        driver: None,
    };
    drive(p, journal_path, run, 1, options, &args.flags, None).await
}

/// `resume`: the run (default: the newest interrupted one) from its last committed event,
/// with the pipeline text it started with.
pub(super) async fn resume(
    journal_path: &Location,
    run: Option<i64>,
    pipeline: Option<&str>,
    flags: &DriveFlags,
) -> Result<i32, Exit> {
    let store = Store::open(journal_path).map_err(infra)?;
    let record = match run {
        Some(run) => store.run(run).map_err(|e| bad_input(e.to_string()))?,
        None => driver::newest_interrupted(&store, pipeline)?,
    };
    if record.service == "train" {
        return super::train::resume(journal_path, &record, flags).await;
    }
    if let Some((train, member)) = super::train::train_of(&store, record.id) {
        if run.is_some() {
            return Err(bad_input(format!(
                "run {} is member {member}'s run in train run {}; `glidepath resume {}` continues the whole train",
                record.id, train.id, train.id
            )));
        }
        return super::train::resume(journal_path, &train, flags).await;
    }
    let run = record.id;
    let mut p = resumable(run, &record)?;
    apply_context(&mut p, flags.context.as_deref())?;
    eprintln!("{}", driver::resuming_line(&record));
    let events = store.events(run).map_err(infra)?;
    let next_seq = events.last().map(|e| e.seq + 1).unwrap_or(1);
    store.claim_run(run).map_err(|e| match e {
        crate::store::StoreError::Driven { .. } => bad_input(e.to_string()),
        e => infra(e),
    })?;
    let options = RunOptions {
        stage: record.stage.clone(),
        auto_approve: flags.auto_approve,
        resumed: Some(Resumed::from_events(&events)),
        journal: Some(journal_path.to_owned()),
        preflight_only: false,
        service_addresses: None,
        driver: None,
    };
    drive(p, journal_path, run, next_seq, options, flags, None).await
}

/// The run's pipeline, when the run can be resumed: unfinished, no live process driving
/// it, and not delivered to an embedded sandbox (which ended with its process).
pub(super) fn resumable(run: i64, record: &RunRecord) -> Result<Pipeline, Exit> {
    ready_to_resume(record)?;
    let vars = Variables::from_sets(record.sets.clone());
    let p = pipeline::load_str(&record.source, Path::new(&record.path), &vars)
        .map_err(|e| bad_input(e.to_string()))?;
    if p.stages.iter().any(|s| {
        s.target
            .as_ref()
            .is_some_and(crate::pipeline::model::Target::is_sandbox)
    }) {
        return Err(bad_input(format!(
            "run {run} delivered to the embedded sandbox, which lived and ended with the process that drove it; start a new run instead"
        )));
    }
    Ok(p)
}

/// Whether the run can be resumed: unfinished, and no live process drives it.
pub(super) fn ready_to_resume(record: &RunRecord) -> Result<(), Exit> {
    let run = record.id;
    if let Some(code) = record.exit_code {
        return Err(bad_input(format!(
            "run {run} already finished ({}, exit {code}); nothing to resume",
            record.status
        )));
    }
    if record.pid != Some(std::process::id()) && record.driver_alive() {
        return Err(bad_input(format!(
            "run {run} is still being driven ({}); resume it only after that driver has stopped",
            record.driver()
        )));
    }
    Ok(())
}

/// Records a new run of `p` in the journal.
pub(super) fn new_run(
    journal_path: &Location,
    p: &Pipeline,
    path: &Path,
    stage: Option<&str>,
) -> Result<i64, Exit> {
    let store = Store::open(journal_path).map_err(infra)?;
    store
        .create_run(&NewRun {
            pipeline: &p.name,
            service: &p.service,
            path: &path.display().to_string(),
            source: &p.source,
            sets: &p.sets,
            stage,
        })
        .map_err(infra)
}
