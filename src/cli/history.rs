//! `history [RUN]`: the run list, one run's events or report, and marking a run's SLO
//! evaluations invalid.

use crate::store::Location;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::args::HistoryArgs;
use super::drive::write_reports;
use super::{Exit, bad_input, driver, infra};
use crate::events::{Status, exit};
use crate::report::Report;
use crate::store::{RunRecord, Store};

/// `history`: one call per way the flags combine.
pub(super) fn history(journal_path: &Location, args: HistoryArgs) -> Result<i32, Exit> {
    let store = Store::open(journal_path).map_err(infra)?;
    match args {
        HistoryArgs {
            run: Some(run),
            invalidate: true,
            ..
        } => invalidate(&store, run),
        HistoryArgs {
            run: Some(run),
            report_dir: Some(dir),
            ..
        } => reports(&store, run, &dir),
        HistoryArgs {
            run: Some(run),
            json,
            ..
        } => show(&store, run, json),
        HistoryArgs {
            run: None,
            json,
            limit,
            ..
        } => list(&store, json, limit),
    }
}

/// `--invalidate`: later comparisons leave the run's SLO evaluations out.
fn invalidate(store: &Store, run: i64) -> Result<i32, Exit> {
    let n = store
        .invalidate(run)
        .map_err(|e| bad_input(e.to_string()))?;
    println!("run {run}: {n} evaluation(s) marked invalid; comparisons leave them out");
    Ok(exit::OK)
}

/// `--report-dir`: the run's reports, as `run --report-dir` writes them.
fn reports(store: &Store, run: i64, dir: &Path) -> Result<i32, Exit> {
    store.run(run).map_err(|e| bad_input(e.to_string()))?;
    let events = store.events(run).map_err(infra)?;
    write_reports(&Report::from_events(run, &events), dir)?;
    Ok(exit::OK)
}

/// A run as `history` lists it: its state now (`interrupted` when its driver is gone) and,
/// for an interrupted run, what to do about it.
#[derive(serde::Serialize)]
struct Listed {
    #[serde(flatten)]
    record: RunRecord,
    /// The command that continues an interrupted run.
    #[serde(skip_serializing_if = "Option::is_none")]
    resume: Option<String>,
    /// Why an interrupted run cannot be resumed, when it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    not_resumable: Option<String>,
    /// Who drives (or drove) the run and from where: `process 4242 of ann@ci-7`.
    driver: String,
    /// Seconds since an unfinished run's driver last said it was alive.
    #[serde(skip_serializing_if = "Option::is_none")]
    heartbeat_age_s: Option<i64>,
}

/// A run record as it leaves the journal: its pipeline text and `--set` values with the
/// secrets they hold hidden (`pipeline::journaled_redactor`). The journal keeps them whole,
/// so `resume` can load the pipeline again.
pub(super) fn shown(mut record: RunRecord) -> RunRecord {
    let hide =
        crate::pipeline::journaled_redactor(&record.source, Path::new(&record.path), &record.sets);
    record.source = hide.text(&record.source).into_owned();
    for v in record.sets.values_mut() {
        *v = hide.text(v).into_owned();
    }
    record
}

impl Listed {
    fn new(mut record: RunRecord) -> Listed {
        record.status = driver::state(&record);
        let (mut resume, mut not_resumable) = (None, None);
        if record.status == Status::Interrupted {
            let checked = if record.service == "train" {
                super::train::resumable(&record).map(drop)
            } else {
                super::run::resumable(record.id, &record).map(drop)
            };
            match checked {
                Ok(()) => resume = Some(driver::resume_command(record.id)),
                Err(e) => not_resumable = Some(e.message),
            }
        }
        let heartbeat_age_s = record
            .heartbeat_ms
            .filter(|_| record.finished_ms.is_none())
            .map(|h| (crate::store::now_ms() - h).max(0) / 1000);
        Listed {
            driver: record.driver(),
            record: shown(record),
            resume,
            not_resumable,
            heartbeat_age_s,
        }
    }

    /// An interrupted member's run of an interrupted train is resumed with its train.
    fn in_train(mut self, store: &Store) -> Listed {
        if self.resume.is_some()
            && self.record.service != "train"
            && let Some((train, member)) = super::train::train_of(store, self.record.id)
        {
            self.resume = None;
            self.not_resumable = Some(format!(
                "member {member}'s run in train run {}; `glidepath resume {}` continues the whole train",
                train.id, train.id
            ));
        }
        self
    }

    /// What an interrupted run's row is followed by.
    fn hint(&self) -> Option<String> {
        let r = &self.record;
        let driver = match r.pid {
            Some(_) => format!("its driver ({})", r.driver()),
            None => "its driver".into(),
        };
        match (&self.resume, &self.not_resumable) {
            (Some(command), _) => Some(format!(
                "run {} interrupted: {driver} is gone; `{command}` continues it",
                r.id
            )),
            (None, Some(why)) => Some(format!("run {} interrupted: {why}", r.id)),
            (None, None) => None,
        }
    }
}

/// Who drives (or drove) a run and from where, and whether that driver still lives:
/// `ann@ci-7 (alive 3 s ago)`, `ann@ci-7 (gone, last heard 95 s ago)`, or `ann@ci-7` for a
/// finished run. `None` when the journal does not know (a run journaled before drivers were).
fn driver_text(r: &RunRecord, heartbeat_age_s: Option<i64>) -> Option<String> {
    let (Some(u), Some(h)) = (&r.user, &r.host) else {
        return None;
    };
    Some(match (r.status, heartbeat_age_s) {
        (Status::Interrupted, Some(age)) => format!("{u}@{h} (gone, last heard {age} s ago)"),
        (Status::Interrupted, None) => format!("{u}@{h} (gone)"),
        (_, Some(age)) => format!("{u}@{h} (alive {age} s ago)"),
        (_, None) => format!("{u}@{h}"),
    })
}

/// The newest runs, as a table or JSON.
fn list(store: &Store, json: bool, limit: usize) -> Result<i32, Exit> {
    let runs: Vec<Listed> = store
        .runs(limit)
        .map_err(infra)?
        .into_iter()
        .map(Listed::new)
        .map(|l| l.in_train(store))
        .collect();
    if json {
        return print(serde_json::to_string_pretty(&runs).map_err(infra)? + "\n");
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>5}  {:<20} {:<20} {:<14} {:>9}  DRIVER",
        "RUN", "PIPELINE", "STARTED (UTC)", "OUTCOME", "DURATION"
    );
    for Listed {
        record: r,
        heartbeat_age_s,
        ..
    } in &runs
    {
        let duration = r
            .finished_ms
            .map(|f| {
                crate::units::format_duration(Duration::from_millis(
                    (f - r.started_ms).max(0) as u64
                ))
            })
            .unwrap_or_else(|| "-".into());
        // Who drove the run and from where: on a shared journal, runs of other machines.
        let driver = driver_text(r, *heartbeat_age_s).unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "{:>5}  {:<20} {:<20} {:<14} {:>9}  {driver}",
            r.id,
            r.pipeline,
            timestamp(r.started_ms),
            r.status.word(),
            duration
        );
    }
    for hint in runs.iter().filter_map(Listed::hint) {
        let _ = writeln!(out, "{hint}");
    }
    print(out)
}

/// Writes `text` to stdout; a reader that stopped early (`history | head`) is no error.
fn print(text: String) -> Result<i32, Exit> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => Ok(exit::OK),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(exit::OK),
        Err(e) => Err(infra(e)),
    }
}

/// One run: its events as the headless printer showed them, or its report as JSON; an
/// interrupted run says so, and how to continue it.
fn show(store: &Store, id: i64, json: bool) -> Result<i32, Exit> {
    let record = store.run(id).map_err(|e| bad_input(e.to_string()))?;
    let listed = Listed::new(record);
    let events = store.events(id).map_err(infra)?;
    if json {
        let mut report = Report::from_events(id, &events);
        if listed.record.status == Status::Interrupted {
            report.status = Status::Interrupted;
            report.reason = listed.hint();
        }
        return print(serde_json::to_string_pretty(&report).map_err(infra)? + "\n");
    }
    let mut out = String::new();
    for env in &events {
        if let Some(line) = crate::headless::line(env) {
            let _ = writeln!(out, "{line}");
        }
    }
    if let Some(hint) = listed.hint() {
        let _ = writeln!(out, "{hint}");
    }
    print(out)
}

/// `YYYY-MM-DD HH:MM:SS` in UTC.
fn timestamp(ms: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// The cockpit's history view, read from the journal at `journal` when the operator opens
/// it: the newest runs and this service's evaluations in the stage on screen.
pub fn source(journal: impl Into<Location>) -> crate::ui::HistorySource {
    let journal: Location = journal.into();
    let replays = journal.clone();
    crate::ui::HistorySource::new(move |service, stage| cockpit_history(&journal, service, stage))
        .with_replay(move |run| super::replay::for_cockpit(&replays, run))
}

fn cockpit_history(
    journal: &Location,
    service: &str,
    stage: &str,
) -> Result<crate::ui::app::History, String> {
    let store = Store::open(journal).map_err(|e| e.to_string())?;
    let runs = store
        .runs(20)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(Listed::new)
        .map(|l| crate::ui::app::HistoryRun {
            interrupted: l.hint(),
            driver: driver_text(&l.record, l.heartbeat_age_s),
            id: l.record.id,
            pipeline: l.record.pipeline,
            status: l.record.status,
            started_ms: l.record.started_ms,
            finished_ms: l.record.finished_ms,
            exit_code: l.record.exit_code,
        })
        .collect();
    let evaluations = store
        .evaluations(service, stage, 20)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|e| {
            let values = e
                .sli_values
                .iter()
                .map(|(k, v)| match v {
                    Some(v) => format!("{k} {v}"),
                    None => format!("{k} no data"),
                })
                .collect::<Vec<_>>()
                .join(", ");
            let mark = if e.invalid { " (invalidated)" } else { "" };
            (e.result, format!("{values}{mark}"))
        })
        .collect();
    Ok(crate::ui::app::History {
        runs,
        evaluations,
        stage: stage.to_owned(),
    })
}
