//! The journal: every event of every run, committed before the engine acts on it; run
//! history; and the command inbox through which `glidepath approve RUN` reaches a run driven
//! by another process. Two backends behind one API: SQLite (the embedded default, one file
//! on this machine) and PostgreSQL (one database shared by a team, see `postgres`).
//!
//! One writer thread owns the write connection. Events that arrive together are committed
//! in one transaction; the engine waits for the commit of state events, not of log lines.

mod driver;
mod location;
pub mod postgres;
mod schema;
mod sqlite;

/// The columns of a run record, in the order both backends read them.
const RUN_COLUMNS: &str = "SELECT id, pipeline, service, path, source, sets, stage, started_ms, finished_ms, status, exit_code, pid, driver_host, driver_user, heartbeat_ms FROM runs";

use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use driver::{Driver, HEARTBEAT_EVERY, STALE_AFTER, process_alive, this_host, this_user};
pub use location::{AsLocation, Location};
pub use schema::LATEST as SCHEMA_VERSION;
pub use transfer::{FORMAT as EXPORT_FORMAT, Imported};

use crate::events::{CommandKind, Envelope, Event, Status};

/// Journal failures. The engine treats them as infrastructure errors (exit 4).
#[derive(Debug, Error)]
pub enum StoreError {
    /// SQLite refused.
    #[error("journal {path}: {source}")]
    Sql {
        /// The database file.
        path: String,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// PostgreSQL refused or could not be reached.
    #[error("journal {target}: {}", pg_text(source))]
    Postgres {
        /// The URL, without its password.
        target: String,
        /// What the driver said.
        source: tokio_postgres::Error,
    },
    /// The journal's URL or its password or TLS files are wrong.
    #[error("{0}")]
    Config(String),
    /// The database was written by a newer glidepath.
    #[error(
        "journal {at} has schema version {found}, newer than this glidepath knows ({supported}); upgrade glidepath, or use another journal with --journal"
    )]
    TooNew {
        /// The journal.
        at: String,
        /// Its schema version.
        found: i64,
        /// The newest this binary knows.
        supported: i64,
    },
    /// Another live process drives the run.
    #[error(
        "run {run} is still being driven ({by}); resume it only after that driver has stopped (a driver on another machine counts as stopped {} s after its last heartbeat)",
        STALE_AFTER.as_secs()
    )]
    Driven {
        /// The run.
        run: i64,
        /// Who drives it and from where.
        by: String,
    },
    /// The writer thread is gone.
    #[error("the journal writer stopped: {0}")]
    Writer(String),
    /// No such run.
    #[error("no run {0} in the journal; `glidepath history` lists the runs")]
    NoRun(i64),
    /// A stored row could not be decoded.
    #[error("journal entry for run {run} is damaged: {detail}")]
    Damaged {
        /// The run.
        run: i64,
        /// What was wrong.
        detail: String,
    },
}

/// The server's own message when there is one (tokio-postgres' `Display` says only "db error").
fn pg_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text = format!("{text}: {s}");
                source = s.source();
            }
            format!(
                "{text} (check that the server runs and that the URL's host, port and sslmode are right)"
            )
        }
    }
}

type Result<T> = std::result::Result<T, StoreError>;

/// Where the journal lives: `$GLIDEPATH_HOME/journal.db`, or the user's data directory.
pub fn default_path() -> PathBuf {
    if let Some(home) = std::env::var_os("GLIDEPATH_HOME") {
        return PathBuf::from(home).join("journal.db");
    }
    directories::ProjectDirs::from("dev", "glidepath", "glidepath")
        .map(|d| d.data_dir().join("journal.db"))
        .unwrap_or_else(|| PathBuf::from(".glidepath/journal.db"))
}

/// What a run was started from, so it can be resumed as it began.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Run id.
    pub id: i64,
    /// Pipeline name.
    pub pipeline: String,
    /// Service name.
    pub service: String,
    /// The pipeline file's path.
    pub path: String,
    /// The pipeline file's text when the run started.
    pub source: String,
    /// `--set` values.
    pub sets: std::collections::BTreeMap<String, String>,
    /// `--stage`, when only one stage runs.
    pub stage: Option<String>,
    /// Start, ms since the epoch.
    pub started_ms: i64,
    /// End, when finished.
    pub finished_ms: Option<i64>,
    /// Current or final status.
    pub status: Status,
    /// Exit code, when finished.
    pub exit_code: Option<i32>,
    /// The process that drives (or last drove) the run.
    pub pid: Option<u32>,
    /// The machine that process runs on.
    #[serde(default)]
    pub host: Option<String>,
    /// The OS user it runs as.
    #[serde(default)]
    pub user: Option<String>,
    /// When the driver last said it was alive (ms since the epoch; shared journals).
    #[serde(default)]
    pub heartbeat_ms: Option<i64>,
}

enum Db {
    Sqlite(sqlite::Db),
    Postgres(postgres::Db),
}

/// Calls the same method on either backend.
macro_rules! on {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match &$self.db {
            Db::Sqlite(db) => db.$method($($arg),*),
            Db::Postgres(db) => db.$method($($arg),*),
        }
    };
}

// After `on!`, which it uses.
mod transfer;

/// What a follower waits for: new events of a run, or commands left for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topic {
    /// Events committed.
    Events,
    /// Commands left in the inbox.
    Commands,
}

/// Wakes a follower when something of its run may have changed: on PostgreSQL at the
/// `NOTIFY` of the commit (or a lost connection); SQLite has no notifications, so there
/// it is a short interval.
pub struct Watch {
    inner: WatchInner,
}

enum WatchInner {
    Interval(tokio::time::Interval),
    Notify {
        rx: tokio::sync::broadcast::Receiver<postgres::Wake>,
        channel: &'static str,
        run: String,
    },
}

impl Watch {
    /// Returns when the run may have changed; the caller reads the journal again.
    pub async fn changed(&mut self) {
        match &mut self.inner {
            WatchInner::Interval(tick) => {
                tick.tick().await;
            }
            WatchInner::Notify { rx, channel, run } => loop {
                use tokio::sync::broadcast::error::RecvError;
                match rx.recv().await {
                    Ok(postgres::Wake::Note {
                        channel: c,
                        payload,
                    }) if c == *channel && payload == *run => return,
                    Ok(postgres::Wake::Lost) | Err(RecvError::Lagged(_)) => return,
                    Ok(_) => {}
                    // The connection is gone for good: nothing will wake this watch.
                    Err(RecvError::Closed) => std::future::pending::<()>().await,
                }
            },
        }
    }
}

/// Read access and run bookkeeping.
pub struct Store {
    db: Db,
    location: Location,
}

impl Store {
    /// Opens (creating and migrating if needed) the journal at `location`.
    pub fn open(location: &(impl AsLocation + ?Sized)) -> Result<Store> {
        let location = location.to_location();
        let db = match &location {
            Location::Sqlite(path) => Db::Sqlite(sqlite::Db::open(path)?),
            Location::Postgres(target) => Db::Postgres(postgres::Db::open(target)?),
        };
        Ok(Store { db, location })
    }

    /// Records a new run, `pending` until its first event, driven by this process, and
    /// returns its id.
    pub fn create_run(&self, r: &NewRun<'_>) -> Result<i64> {
        let me = Driver::me();
        on!(self.create_run(r, &me))
    }

    /// Records that this process now drives `run` (on resume); refused while another
    /// driver is alive, and when another process took the run over first.
    pub fn claim_run(&self, run: i64) -> Result<()> {
        let was = self.run(run)?;
        let me = Driver::me();
        let mine = was.pid == Some(me.pid) && was.host.as_deref().is_none_or(|h| h == me.host);
        if !mine && was.driver_alive() {
            return Err(StoreError::Driven {
                run,
                by: was.driver(),
            });
        }
        if on!(self.claim_run(&was, &me))? {
            return Ok(());
        }
        Err(StoreError::Driven {
            run,
            by: self.run(run)?.driver(),
        })
    }

    /// One run.
    pub fn run(&self, id: i64) -> Result<RunRecord> {
        on!(self.run(id))?.ok_or(StoreError::NoRun(id))
    }

    /// The most recent runs, newest first.
    pub fn runs(&self, limit: usize) -> Result<Vec<RunRecord>> {
        on!(self.runs(limit))
    }

    /// The newest run that has not finished, if any.
    pub fn last_unfinished(&self) -> Result<Option<i64>> {
        Ok(self.unfinished()?.first().map(|r| r.id))
    }

    /// Every run that has not finished, newest first (driven now, or interrupted).
    pub fn unfinished(&self) -> Result<Vec<RunRecord>> {
        on!(self.unfinished())
    }

    /// Every event of a run, in order.
    pub fn events(&self, run: i64) -> Result<Vec<Envelope>> {
        self.events_after(run, 0)
    }

    /// The events of a run after `seq`, in order (for following a live run).
    pub fn events_after(&self, run: i64, seq: u64) -> Result<Vec<Envelope>> {
        let rows = on!(self.events_after(run, seq))?;
        let mut out = Vec::with_capacity(rows.len());
        for (seq, at_ms, body) in rows {
            let event: Event = serde_json::from_str(&body).map_err(|e| StoreError::Damaged {
                run,
                detail: format!("event {seq}: {e}"),
            })?;
            out.push(Envelope {
                run,
                seq: u64::try_from(seq).unwrap_or_default(),
                at_ms,
                event,
            });
        }
        Ok(out)
    }

    /// Leaves a command for the process driving `run` (from `glidepath approve` and friends).
    pub fn send_command(&self, run: i64, command: CommandKind, who: &str) -> Result<()> {
        self.send(run, &crate::events::Command::new(command, who))
    }

    /// Leaves a command, with its sender, for the process driving `run`.
    pub fn send(&self, run: i64, command: &crate::events::Command) -> Result<()> {
        self.run(run)?;
        on!(self.send_command(run, command))
    }

    /// Takes the commands left for `run`, oldest first, marking them taken.
    pub fn take_commands(&self, run: i64) -> Result<Vec<crate::events::Command>> {
        on!(self.take_commands(run))
    }

    /// Earlier SLO evaluations of a service in a stage, oldest first, invalid ones marked.
    pub fn evaluations(
        &self,
        service: &str,
        stage: &str,
        limit: usize,
    ) -> Result<Vec<crate::slo::HistoryEntry>> {
        self.evaluations_before(service, stage, i64::MAX, limit)
    }

    /// The latest `limit` evaluations of `service` in `stage` made by runs before `run`,
    /// oldest first: the history a gate of that run compared with (`glidepath replay`).
    pub fn evaluations_before(
        &self,
        service: &str,
        stage: &str,
        run: i64,
        limit: usize,
    ) -> Result<Vec<crate::slo::HistoryEntry>> {
        let rows = on!(self.evaluations(service, stage, run, limit))?;
        let mut out: Vec<crate::slo::HistoryEntry> = rows
            .into_iter()
            .map(|(result, values, invalid)| crate::slo::HistoryEntry {
                result: match result.as_str() {
                    "pass" => crate::events::Verdict::Pass,
                    "warning" => crate::events::Verdict::Warning,
                    "fail" => crate::events::Verdict::Fail,
                    _ => crate::events::Verdict::Error,
                },
                sli_values: serde_json::from_str(&values).unwrap_or_default(),
                invalid,
            })
            .collect();
        out.reverse();
        Ok(out)
    }

    /// Marks a run's evaluations invalid: comparisons leave them out. Returns how many.
    pub fn invalidate(&self, run: i64) -> Result<usize> {
        self.run(run)?;
        on!(self.invalidate(run))
    }

    /// Where the journal is.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// A watch on `run`'s events or commands. Made before reading what is there already,
    /// so nothing committed in between is missed.
    pub fn watch(&self, run: i64, topic: Topic) -> Result<Watch> {
        let inner = match &self.db {
            Db::Sqlite(_) => {
                let every = match topic {
                    Topic::Events => Duration::from_millis(200),
                    Topic::Commands => Duration::from_millis(250),
                };
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                WatchInner::Interval(tick)
            }
            Db::Postgres(db) => {
                let channel = match topic {
                    Topic::Events => postgres::EVENTS,
                    Topic::Commands => postgres::INBOX,
                };
                WatchInner::Notify {
                    rx: db.listen(channel)?,
                    channel,
                    run: run.to_string(),
                }
            }
        };
        Ok(Watch { inner })
    }
}

/// What `create_run` records.
pub struct NewRun<'a> {
    /// Pipeline name.
    pub pipeline: &'a str,
    /// Service name.
    pub service: &'a str,
    /// Pipeline file path.
    pub path: &'a str,
    /// Pipeline file text.
    pub source: &'a str,
    /// `--set` values.
    pub sets: &'a std::collections::BTreeMap<String, String>,
    /// `--stage`.
    pub stage: Option<&'a str>,
}

/// A command's sender as the inbox stores it (JSON), when known.
fn sender_text(command: &crate::events::Command) -> Option<String> {
    command
        .sender
        .as_ref()
        .and_then(|s| serde_json::to_string(s).ok())
}

/// A command read back from the inbox (its sender, the train member it is for); an
/// unknown word (from a newer glidepath) is left out.
fn command_of(
    word: &str,
    who: String,
    sender: Option<String>,
    member: Option<String>,
) -> Option<crate::events::Command> {
    let kind = CommandKind::from_word(word)?;
    Some(crate::events::Command {
        kind,
        who,
        sender: sender.and_then(|s| serde_json::from_str(&s).ok()),
        member,
    })
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

type Ack = mpsc::SyncSender<std::result::Result<(), String>>;

/// Events committed together, each with whoever waits for its commit.
type Batch = [(Box<Envelope>, Option<Ack>)];

enum Msg {
    Append(Box<Envelope>, Option<Ack>),
    Stop,
}

enum WriterDb {
    Sqlite(sqlite::Writer),
    Postgres(postgres::Writer),
}

impl WriterDb {
    fn write(&mut self, batch: &Batch) -> std::result::Result<(), String> {
        match self {
            WriterDb::Sqlite(w) => w.write(batch),
            WriterDb::Postgres(w) => w.write(batch),
        }
    }
}

/// The write side of the journal: a thread that commits events in batches.
pub struct Journal {
    tx: mpsc::Sender<Msg>,
    handle: Option<thread::JoinHandle<()>>,
}

impl Journal {
    /// Starts the writer on the journal at `location`.
    pub fn open(location: &(impl AsLocation + ?Sized)) -> Result<Journal> {
        let db = match location.to_location() {
            Location::Sqlite(path) => WriterDb::Sqlite(sqlite::Writer::open(&path)?),
            Location::Postgres(target) => {
                WriterDb::Postgres(postgres::Writer::open(&target, Driver::me())?)
            }
        };
        let (tx, rx) = mpsc::channel();
        let handle = thread::Builder::new()
            .name("journal".into())
            .spawn(move || writer(db, rx))
            .map_err(|e| StoreError::Writer(e.to_string()))?;
        Ok(Journal {
            tx,
            handle: Some(handle),
        })
    }

    /// Commits an event and waits until it is durable.
    pub fn append_durable(&self, env: Envelope) -> Result<()> {
        let (ack_tx, ack_rx) = mpsc::sync_channel(1);
        self.tx
            .send(Msg::Append(Box::new(env), Some(ack_tx)))
            .map_err(|e| StoreError::Writer(e.to_string()))?;
        // Blocking on purpose: the engine must not act before the commit, and an async wait
        // would let paused test clocks jump ahead while the disk works.
        match ack_rx.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::Writer(e)),
            Err(e) => Err(StoreError::Writer(e.to_string())),
        }
    }

    /// Queues an event; it is committed with the next batch.
    pub fn append(&self, env: Envelope) -> Result<()> {
        self.tx
            .send(Msg::Append(Box::new(env), None))
            .map_err(|e| StoreError::Writer(e.to_string()))
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The next message; on a shared journal, a quiet writer beats the heartbeat of its runs
/// while it waits.
fn next(db: &mut WriterDb, rx: &mpsc::Receiver<Msg>, runs: &[i64]) -> Option<Msg> {
    let WriterDb::Postgres(pg) = db else {
        return rx.recv().ok();
    };
    loop {
        match rx.recv_timeout(HEARTBEAT_EVERY) {
            Ok(msg) => return Some(msg),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Err(e) = pg.heartbeat(runs) {
                    tracing::warn!("cannot beat the driver's heartbeat: {e}");
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return None,
        }
    }
}

fn writer(mut db: WriterDb, rx: mpsc::Receiver<Msg>) {
    let mut stop = false;
    let mut runs: Vec<i64> = Vec::new();
    while !stop {
        let first = match next(&mut db, &rx, &runs) {
            Some(Msg::Append(env, ack)) => (env, ack),
            Some(Msg::Stop) | None => return,
        };
        let mut batch = vec![first];
        // Everything already queued goes into the same transaction.
        while batch.len() < 4096 {
            match rx.try_recv() {
                Ok(Msg::Append(env, ack)) => batch.push((env, ack)),
                Ok(Msg::Stop) => {
                    stop = true;
                    break;
                }
                Err(_) => break,
            }
        }
        for (env, _) in &batch {
            if !runs.contains(&env.run) {
                runs.push(env.run);
            }
        }
        let result = db.write(&batch);
        for (_, ack) in batch {
            if let Some(ack) = ack {
                let _ = ack.send(result.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(run: i64, seq: u64, event: Event) -> Envelope {
        Envelope {
            run,
            seq,
            at_ms: now_ms(),
            event,
        }
    }

    #[test]
    fn events_round_trip_and_finish_updates_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        let store = Store::open(&path).unwrap();
        let sets = Default::default();
        let run = store
            .create_run(&NewRun {
                pipeline: "p",
                service: "s",
                path: "p.yaml",
                source: "x",
                sets: &sets,
                stage: None,
            })
            .unwrap();
        let journal = Journal::open(&path).unwrap();
        journal
            .append(env(
                run,
                1,
                Event::StageStarted {
                    stage: "dev".into(),
                },
            ))
            .unwrap();
        journal
            .append_durable(env(
                run,
                2,
                Event::RunFinished {
                    status: Status::Passed,
                    exit_code: 0,
                    reason: "ok".into(),
                },
            ))
            .unwrap();
        let events = store.events(run).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(
            events[0].event,
            Event::StageStarted {
                stage: "dev".into()
            }
        );
        let record = store.run(run).unwrap();
        assert_eq!(record.status, Status::Passed);
        assert_eq!(record.exit_code, Some(0));
        assert!(store.last_unfinished().unwrap().is_none());
    }

    #[test]
    fn inbox_commands_are_taken_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("j.db")).unwrap();
        let sets = Default::default();
        let run = store
            .create_run(&NewRun {
                pipeline: "p",
                service: "s",
                path: "p.yaml",
                source: "x",
                sets: &sets,
                stage: None,
            })
            .unwrap();
        store
            .send_command(run, CommandKind::Approve, "ann@host")
            .unwrap();
        let taken = store.take_commands(run).unwrap();
        assert_eq!(
            taken,
            vec![crate::events::Command::new(
                CommandKind::Approve,
                "ann@host"
            )]
        );
        assert!(store.take_commands(run).unwrap().is_empty());
        // A command for one member of a release train keeps its member through the inbox.
        let rollback = crate::events::Command::new(CommandKind::Rollback, "bob@host")
            .for_member(Some("payments".into()));
        store.send(run, &rollback).unwrap();
        assert_eq!(store.take_commands(run).unwrap(), vec![rollback]);
        assert!(matches!(
            store.send_command(run + 1, CommandKind::Approve, "x"),
            Err(StoreError::NoRun(_))
        ));
    }
}
