//! The embedded journal: SQLite (WAL, `synchronous=FULL`) in one file on this machine.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use super::schema;
use super::{Batch, Driver, NewRun, Result, RunRecord, StoreError, now_ms};
use crate::events::{Command, Envelope, Event, Status};

/// One connection to a journal file.
pub(super) struct Db {
    conn: Connection,
    path: PathBuf,
}

fn sql_error(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Sql {
        path: path.display().to_string(),
        source,
    }
}

/// Opens the file, creating it and its folder if needed, and migrates its schema.
fn open_connection(path: &Path) -> Result<Connection> {
    let sql = sql_error(path);
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Writer(format!("cannot create {}: {e}", dir.display())))?;
    }
    let mut conn = Connection::open(path).map_err(&sql)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(&sql)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(&sql)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(&sql)?;
    migrate(&mut conn, path)?;
    Ok(conn)
}

/// Applies the migrations this file lacks, in one immediate transaction (so two processes
/// opening a new journal at once do not both apply them).
fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let sql = sql_error(path);
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(&sql)?;
    tx.execute_batch(schema::VERSION_TABLE).map_err(&sql)?;
    let current: i64 = tx
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_version",
            [],
            |r| r.get(0),
        )
        .map_err(&sql)?;
    if current > schema::LATEST {
        return Err(StoreError::TooNew {
            at: path.display().to_string(),
            found: current,
            supported: schema::LATEST,
        });
    }
    for (version, text) in schema::SQLITE.iter().filter(|(v, _)| *v > current) {
        tx.execute_batch(text).map_err(&sql)?;
        tx.execute(
            "INSERT INTO schema_version (version, applied_ms) VALUES (?1, ?2)",
            params![version, now_ms()],
        )
        .map_err(&sql)?;
    }
    tx.commit().map_err(&sql)
}

use super::RUN_COLUMNS;

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
        host: r.get(12)?,
        user: r.get(13)?,
        heartbeat_ms: r.get(14)?,
    })
}

impl Db {
    pub(super) fn open(path: &Path) -> Result<Db> {
        Ok(Db {
            conn: open_connection(path)?,
            path: path.to_owned(),
        })
    }

    fn sql(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        sql_error(&self.path)
    }

    pub(super) fn create_run(&self, r: &NewRun<'_>, me: &Driver) -> Result<i64> {
        let sets = serde_json::to_string(r.sets).unwrap_or_else(|_| "{}".into());
        self.conn
            .execute(
                "INSERT INTO runs (pipeline, service, path, source, sets, stage, started_ms, status, pid, driver_host, driver_user, heartbeat_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?9, ?10, ?7)",
                params![r.pipeline, r.service, r.path, r.source, sets, r.stage, now_ms(), me.pid, me.host, me.user],
            )
            .map_err(self.sql())?;
        Ok(self.conn.last_insert_rowid())
    }

    /// The run with this key (an imported copy of the same run), or a new row for it.
    pub(super) fn import_run(&self, r: &RunRecord) -> Result<(i64, bool)> {
        let found: Option<i64> = self
            .conn
            .query_row(
                "SELECT id FROM runs WHERE started_ms = ?1 AND pipeline = ?2 AND service = ?3 AND path = ?4 ORDER BY id LIMIT 1",
                params![r.started_ms, r.pipeline, r.service, r.path],
                |row| row.get(0),
            )
            .optional()
            .map_err(self.sql())?;
        if let Some(id) = found {
            return Ok((id, false));
        }
        let sets = serde_json::to_string(&r.sets).unwrap_or_else(|_| "{}".into());
        self.conn
            .execute(
                "INSERT INTO runs (pipeline, service, path, source, sets, stage, started_ms, status, pid, driver_host, driver_user, heartbeat_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', NULL, ?8, ?9, ?10)",
                params![r.pipeline, r.service, r.path, r.source, sets, r.stage, r.started_ms, r.host, r.user, r.heartbeat_ms],
            )
            .map_err(self.sql())?;
        Ok((self.conn.last_insert_rowid(), true))
    }

    /// Sets an imported run's outcome and driver as its record says (after its events).
    pub(super) fn restore_run(&self, r: &RunRecord) -> Result<()> {
        self.conn
            .execute(
                "UPDATE runs SET status = ?1, exit_code = ?2, finished_ms = ?3, driver_host = ?4, driver_user = ?5, heartbeat_ms = ?6, pid = NULL WHERE id = ?7",
                params![r.status.word(), r.exit_code, r.finished_ms, r.host, r.user, r.heartbeat_ms, r.id],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    /// Takes the run over from `was` (compare and swap): false when another driver came first.
    pub(super) fn claim_run(&self, was: &RunRecord, me: &Driver) -> Result<bool> {
        let n = self
            .conn
            .execute(
                "UPDATE runs SET pid = ?1, driver_host = ?2, driver_user = ?3, heartbeat_ms = ?4 WHERE id = ?5 AND pid IS ?6 AND driver_host IS ?7",
                params![me.pid, me.host, me.user, now_ms(), was.id, was.pid, was.host],
            )
            .map_err(self.sql())?;
        Ok(n == 1)
    }

    pub(super) fn run(&self, id: i64) -> Result<Option<RunRecord>> {
        self.conn
            .query_row(&format!("{RUN_COLUMNS} WHERE id = ?1"), [id], run_from_row)
            .optional()
            .map_err(self.sql())
    }

    pub(super) fn runs(&self, limit: usize) -> Result<Vec<RunRecord>> {
        self.records(&format!("{RUN_COLUMNS} ORDER BY id DESC LIMIT {limit}"))
    }

    pub(super) fn unfinished(&self) -> Result<Vec<RunRecord>> {
        self.records(&format!(
            "{RUN_COLUMNS} WHERE finished_ms IS NULL ORDER BY id DESC"
        ))
    }

    fn records(&self, query: &str) -> Result<Vec<RunRecord>> {
        let mut stmt = self.conn.prepare(query).map_err(self.sql())?;
        let rows = stmt.query_map([], run_from_row).map_err(self.sql())?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(self.sql())
    }

    pub(super) fn events_after(&self, run: i64, seq: u64) -> Result<Vec<(i64, i64, String)>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT seq, at_ms, body FROM events WHERE run_id = ?1 AND seq > ?2 ORDER BY seq",
            )
            .map_err(self.sql())?;
        let rows = stmt
            .query_map(params![run, seq as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(self.sql())?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(self.sql())
    }

    pub(super) fn send_command(&self, run: i64, command: &Command) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO inbox (run_id, at_ms, command, who, sender, member) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![run, now_ms(), command.kind.word(), command.who, super::sender_text(command), command.member],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    pub(super) fn take_commands(&self, run: i64) -> Result<Vec<Command>> {
        let tx = self.conn.unchecked_transaction().map_err(self.sql())?;
        let mut out = Vec::new();
        {
            let mut stmt = tx
                .prepare("SELECT id, command, who, sender, member FROM inbox WHERE run_id = ?1 AND taken_ms IS NULL ORDER BY id")
                .map_err(self.sql())?;
            let rows = stmt
                .query_map([run], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, Option<String>>(4)?,
                    ))
                })
                .map_err(self.sql())?;
            for row in rows {
                let (id, command, who, sender, member) = row.map_err(self.sql())?;
                tx.execute(
                    "UPDATE inbox SET taken_ms = ?1 WHERE id = ?2",
                    params![now_ms(), id],
                )
                .map_err(self.sql())?;
                out.extend(super::command_of(&command, who, sender, member));
            }
        }
        tx.commit().map_err(self.sql())?;
        Ok(out)
    }

    pub(super) fn evaluations(
        &self,
        service: &str,
        stage: &str,
        before_run: i64,
        limit: usize,
    ) -> Result<Vec<(String, String, bool)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT result, sli_values, invalid FROM evaluations WHERE service = ?1 AND stage = ?2 AND run_id < ?3 ORDER BY id DESC LIMIT ?4")
            .map_err(self.sql())?;
        let rows = stmt
            .query_map(params![service, stage, before_run, limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(self.sql())?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(self.sql())
    }

    pub(super) fn invalidate(&self, run: i64) -> Result<usize> {
        self.conn
            .execute(
                "UPDATE evaluations SET invalid = 1 WHERE run_id = ?1",
                [run],
            )
            .map_err(self.sql())
    }
}

/// The writer's side: commits batches of events on its own connection.
pub(super) struct Writer {
    conn: Connection,
    path: String,
}

impl Writer {
    pub(super) fn open(path: &Path) -> Result<Writer> {
        Ok(Writer {
            conn: open_connection(path)?,
            path: path.display().to_string(),
        })
    }

    pub(super) fn write(&mut self, batch: &Batch) -> std::result::Result<(), String> {
        write_batch(&mut self.conn, batch).map_err(|e| format!("journal {}: {e}", self.path))
    }
}

fn write_batch(conn: &mut Connection, batch: &Batch) -> rusqlite::Result<()> {
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
            apply(&tx, env)?;
        }
    }
    tx.commit()
}

/// What an event changes besides the event table: actions, gate results, evaluations and
/// the run's status.
fn apply(tx: &rusqlite::Transaction<'_>, env: &Envelope) -> rusqlite::Result<()> {
    match &env.event {
        Event::Operator {
            command,
            who,
            accepted,
            reason,
            ..
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
            tx.execute(
                "UPDATE runs SET status = 'running', finished_ms = NULL, exit_code = NULL WHERE id = ?1",
                [env.run],
            )?;
        }
        Event::RunState { status } => {
            tx.execute(
                "UPDATE runs SET status = ?1 WHERE id = ?2",
                params![status.word(), env.run],
            )?;
        }
        _ => {}
    }
    Ok(())
}
