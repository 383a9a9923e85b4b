//! The journal: every event of every run in SQLite (WAL, `synchronous=FULL`), committed
//! before the engine acts on it; run history; and the command inbox through which
//! `glidepath approve RUN` reaches a run driven by another process.
//!
//! One writer thread owns the write connection. Events that arrive together are committed
//! in one transaction; the engine waits for the commit of state events, not of log lines.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use thiserror::Error;

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

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pipeline TEXT NOT NULL,
    service TEXT NOT NULL,
    path TEXT NOT NULL,
    source TEXT NOT NULL,
    sets TEXT NOT NULL,
    stage TEXT,
    started_ms INTEGER NOT NULL,
    finished_ms INTEGER,
    status TEXT NOT NULL,
    exit_code INTEGER,
    pid INTEGER
);
CREATE TABLE IF NOT EXISTS events (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    seq INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    type TEXT NOT NULL,
    stage TEXT,
    step TEXT,
    body TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    at_ms INTEGER NOT NULL,
    command TEXT NOT NULL,
    who TEXT NOT NULL,
    accepted INTEGER NOT NULL,
    reason TEXT
);
CREATE TABLE IF NOT EXISTS gate_results (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    stage TEXT NOT NULL,
    step TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    verdict TEXT NOT NULL,
    evidence TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS evaluations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    service TEXT NOT NULL,
    stage TEXT NOT NULL,
    step TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    result TEXT NOT NULL,
    score REAL NOT NULL,
    sli_values TEXT NOT NULL,
    invalid INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS evaluations_by_service ON evaluations (service, stage, id);
CREATE TABLE IF NOT EXISTS inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    command TEXT NOT NULL,
    who TEXT NOT NULL,
    taken_ms INTEGER
);
";

fn open_connection(path: &Path) -> Result<Connection> {
    let sql = |source| StoreError::Sql {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Writer(format!("cannot create {}: {e}", dir.display())))?;
    }
    let conn = Connection::open(path).map_err(sql)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(sql)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(sql)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(sql)?;
    conn.execute_batch(SCHEMA).map_err(sql)?;
    Ok(conn)
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
}

/// Read access and run bookkeeping.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the journal at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        Ok(Store {
            conn: open_connection(path)?,
            path: path.to_owned(),
        })
    }

    fn sql(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Sql {
            path: self.path.display().to_string(),
            source,
        }
    }

    /// Records a new run, `pending` until its first event, and returns its id.
    pub fn create_run(&self, r: &NewRun<'_>) -> Result<i64> {
        let sets = serde_json::to_string(r.sets).unwrap_or_else(|_| "{}".into());
        self.conn
            .execute(
                "INSERT INTO runs (pipeline, service, path, source, sets, stage, started_ms, status, pid) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8)",
                params![r.pipeline, r.service, r.path, r.source, sets, r.stage, now_ms(), std::process::id()],
            )
            .map_err(self.sql())?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records that this process now drives `run` (on resume).
    pub fn claim_run(&self, run: i64) -> Result<()> {
        self.conn
            .execute(
                "UPDATE runs SET pid = ?1 WHERE id = ?2",
                params![std::process::id(), run],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    /// One run.
    pub fn run(&self, id: i64) -> Result<RunRecord> {
        self.conn
            .query_row(&format!("{RUN_COLUMNS} WHERE id = ?1"), [id], run_from_row)
            .optional()
            .map_err(self.sql())?
            .ok_or(StoreError::NoRun(id))
    }

    /// The most recent runs, newest first.
    pub fn runs(&self, limit: usize) -> Result<Vec<RunRecord>> {
        let mut stmt = self
            .conn
            .prepare(&format!("{RUN_COLUMNS} ORDER BY id DESC LIMIT ?1"))
            .map_err(self.sql())?;
        let rows = stmt
            .query_map([limit as i64], run_from_row)
            .map_err(self.sql())?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(self.sql())
    }

    /// The newest run that has not finished, if any.
    pub fn last_unfinished(&self) -> Result<Option<i64>> {
        self.conn
            .query_row(
                "SELECT id FROM runs WHERE finished_ms IS NULL ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.sql())
    }

    /// Every run that has not finished, newest first (driven now, or interrupted).
    pub fn unfinished(&self) -> Result<Vec<RunRecord>> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "{RUN_COLUMNS} WHERE finished_ms IS NULL ORDER BY id DESC"
            ))
            .map_err(self.sql())?;
        let rows = stmt.query_map([], run_from_row).map_err(self.sql())?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(self.sql())
    }

    /// Every event of a run, in order.
    pub fn events(&self, run: i64) -> Result<Vec<Envelope>> {
        self.events_after(run, 0)
    }

    /// The events of a run after `seq`, in order (for following a live run).
    pub fn events_after(&self, run: i64, seq: u64) -> Result<Vec<Envelope>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT seq, at_ms, body FROM events WHERE run_id = ?1 AND seq > ?2 ORDER BY seq",
            )
            .map_err(self.sql())?;
        let rows = stmt
            .query_map(params![run, seq as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(self.sql())?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, at_ms, body) = row.map_err(self.sql())?;
            let event: Event = serde_json::from_str(&body).map_err(|e| StoreError::Damaged {
                run,
                detail: format!("event {seq}: {e}"),
            })?;
            out.push(Envelope {
                run,
                seq: seq as u64,
                at_ms,
                event,
            });
        }
        Ok(out)
    }

    /// Leaves a command for the process driving `run` (from `glidepath approve` and friends).
    pub fn send_command(&self, run: i64, command: CommandKind, who: &str) -> Result<()> {
        self.run(run)?;
        self.conn
            .execute(
                "INSERT INTO inbox (run_id, at_ms, command, who) VALUES (?1, ?2, ?3, ?4)",
                params![run, now_ms(), command.word(), who],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    /// Takes the commands left for `run`, oldest first, marking them taken.
    pub fn take_commands(&self, run: i64) -> Result<Vec<crate::events::Command>> {
        let tx = self.conn.unchecked_transaction().map_err(self.sql())?;
        let mut out = Vec::new();
        {
            let mut stmt = tx
                .prepare("SELECT id, command, who FROM inbox WHERE run_id = ?1 AND taken_ms IS NULL ORDER BY id")
                .map_err(self.sql())?;
            let rows = stmt
                .query_map([run], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .map_err(self.sql())?;
            for row in rows {
                let (id, command, who) = row.map_err(self.sql())?;
                tx.execute(
                    "UPDATE inbox SET taken_ms = ?1 WHERE id = ?2",
                    params![now_ms(), id],
                )
                .map_err(self.sql())?;
                if let Some(kind) = CommandKind::from_word(&command) {
                    out.push(crate::events::Command { kind, who });
                }
            }
        }
        tx.commit().map_err(self.sql())?;
        Ok(out)
    }

    /// Earlier SLO evaluations of a service in a stage, oldest first, invalid ones marked.
    pub fn evaluations(
        &self,
        service: &str,
        stage: &str,
        limit: usize,
    ) -> Result<Vec<crate::slo::HistoryEntry>> {
        let mut stmt = self
            .conn
            .prepare("SELECT result, sli_values, invalid FROM evaluations WHERE service = ?1 AND stage = ?2 ORDER BY id DESC LIMIT ?3")
            .map_err(self.sql())?;
        let rows = stmt
            .query_map(params![service, stage, limit as i64], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, bool>(2)?,
                ))
            })
            .map_err(self.sql())?;
        let mut out = Vec::new();
        for row in rows {
            let (result, values, invalid) = row.map_err(self.sql())?;
            let result = match result.as_str() {
                "pass" => crate::events::Verdict::Pass,
                "warning" => crate::events::Verdict::Warning,
                "fail" => crate::events::Verdict::Fail,
                _ => crate::events::Verdict::Error,
            };
            out.push(crate::slo::HistoryEntry {
                result,
                sli_values: serde_json::from_str(&values).unwrap_or_default(),
                invalid,
            });
        }
        out.reverse();
        Ok(out)
    }

    /// Marks a run's evaluations invalid: comparisons leave them out. Returns how many.
    pub fn invalidate(&self, run: i64) -> Result<usize> {
        self.run(run)?;
        self.conn
            .execute(
                "UPDATE evaluations SET invalid = 1 WHERE run_id = ?1",
                [run],
            )
            .map_err(self.sql())
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
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

const RUN_COLUMNS: &str = "SELECT id, pipeline, service, path, source, sets, stage, started_ms, finished_ms, status, exit_code, pid FROM runs";

fn run_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
    let sets: String = r.get(5)?;
    let status: String = r.get(9)?;
    Ok(RunRecord {
        id: r.get(0)?,
        pipeline: r.get(1)?,
        service: r.get(2)?,
        path: r.get(3)?,
        source: r.get(4)?,
        sets: serde_json::from_str(&sets).unwrap_or_default(),
        stage: r.get(6)?,
        started_ms: r.get(7)?,
        finished_ms: r.get(8)?,
        status: Status::from_word(&status).unwrap_or(Status::Running),
        exit_code: r.get(10)?,
        pid: r.get(11)?,
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

enum Msg {
    Append(Box<Envelope>, Option<Ack>),
    Stop,
}

/// The write side of the journal: a thread that commits events in batches.
pub struct Journal {
    tx: mpsc::Sender<Msg>,
    handle: Option<thread::JoinHandle<()>>,
}

impl Journal {
    /// Starts the writer on the journal at `path`.
    pub fn open(path: &Path) -> Result<Journal> {
        let conn = open_connection(path)?;
        let (tx, rx) = mpsc::channel();
        let display = path.display().to_string();
        let handle = thread::Builder::new()
            .name("journal".into())
            .spawn(move || writer(conn, rx, display))
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

fn writer(mut conn: Connection, rx: mpsc::Receiver<Msg>, path: String) {
    let mut stop = false;
    while !stop {
        let first = match rx.recv() {
            Ok(Msg::Append(env, ack)) => (env, ack),
            Ok(Msg::Stop) | Err(_) => return,
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
        let result = write_batch(&mut conn, &batch).map_err(|e| format!("journal {path}: {e}"));
        for (_, ack) in batch {
            if let Some(ack) = ack {
                let _ = ack.send(result.clone());
            }
        }
    }
}

fn write_batch(
    conn: &mut Connection,
    batch: &[(Box<Envelope>, Option<Ack>)],
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT OR REPLACE INTO events (run_id, seq, at_ms, type, stage, step, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for (env, _) in batch {
            let body = serde_json::to_string(&env.event).unwrap_or_default();
            let (stage, step) = env.event.location();
            insert.execute(params![
                env.run,
                env.seq as i64,
                env.at_ms,
                env.event.type_name(),
                stage,
                step,
                body
            ])?;
            match &env.event {
                Event::Operator {
                    command,
                    who,
                    accepted,
                    reason,
                } => {
                    tx.execute(
                        "INSERT INTO actions (run_id, at_ms, command, who, accepted, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![env.run, env.at_ms, command.word(), who, accepted, reason],
                    )?;
                }
                Event::StepFinished {
                    stage,
                    step,
                    verdict: Some(v),
                    evidence,
                    evaluation,
                    ..
                } => {
                    tx.execute(
                        "INSERT INTO gate_results (run_id, stage, step, at_ms, verdict, evidence) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![env.run, stage, step, env.at_ms, v.word(), serde_json::to_string(evidence).unwrap_or_default()],
                    )?;
                    if let Some(e) = evaluation {
                        tx.execute(
                            "INSERT INTO evaluations (run_id, service, stage, step, at_ms, result, score, sli_values) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                            params![env.run, e.service, stage, step, env.at_ms, e.result.word(), e.score, serde_json::to_string(&e.sli_values).unwrap_or_default()],
                        )?;
                    }
                }
                Event::RunFinished {
                    status, exit_code, ..
                } => {
                    tx.execute(
                        "UPDATE runs SET status = ?1, exit_code = ?2, finished_ms = ?3 WHERE id = ?4",
                        params![status.word(), exit_code, env.at_ms, env.run],
                    )?;
                }
                Event::RunStarted { .. } => {
                    tx.execute("UPDATE runs SET status = 'running', finished_ms = NULL, exit_code = NULL WHERE id = ?1", [env.run])?;
                }
                Event::RunState { status } => {
                    tx.execute(
                        "UPDATE runs SET status = ?1 WHERE id = ?2",
                        params![status.word(), env.run],
                    )?;
                }
                _ => {}
            }
        }
    }
    tx.commit()
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
        assert!(matches!(
            store.send_command(run + 1, CommandKind::Approve, "x"),
            Err(StoreError::NoRun(_))
        ));
    }
}
