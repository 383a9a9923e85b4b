//! The shared journal: PostgreSQL through tokio-postgres, one connection per role (the
//! reader, the writer). The writer commits a batch in one transaction and sends
//! `NOTIFY glidepath_events` with the run's id in it, so followers wake on the commit;
//! `approve` and friends send `NOTIFY glidepath_inbox`. Events are inserted with
//! `ON CONFLICT DO NOTHING`, so a batch tried again after a lost connection whose commit
//! did go through changes nothing twice.

mod config;
mod conn;

use std::sync::Arc;

pub use config::Target;
use conn::Conn;
pub use conn::{RECONNECT_FOR, Wake};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{Batch, Driver, NewRun, Result, RunRecord, StoreError, now_ms, schema};
use crate::events::{Command, Envelope, Event, Status};

/// The channel a commit of a run's events is announced on.
pub const EVENTS: &str = "glidepath_events";
/// The channel a command left for a run is announced on.
pub const INBOX: &str = "glidepath_inbox";

/// A connection to the journal database, migrated.
pub(super) struct Db {
    conn: Conn,
}

use crate::store::RUN_COLUMNS;

fn run_from_row(r: &Row) -> std::result::Result<RunRecord, tokio_postgres::Error> {
    let sets: String = r.try_get(5)?;
    let status: String = r.try_get(9)?;
    Ok(RunRecord {
        id: r.try_get(0)?,
        pipeline: r.try_get(1)?,
        service: r.try_get(2)?,
        path: r.try_get(3)?,
        source: r.try_get(4)?,
        sets: serde_json::from_str(&sets).unwrap_or_default(),
        stage: r.try_get(6)?,
        started_ms: r.try_get(7)?,
        finished_ms: r.try_get(8)?,
        status: Status::from_word(&status).unwrap_or(Status::Running),
        exit_code: r.try_get(10)?,
        pid: r
            .try_get::<_, Option<i64>>(11)?
            .and_then(|p| u32::try_from(p).ok()),
        host: r.try_get(12)?,
        user: r.try_get(13)?,
        heartbeat_ms: r.try_get(14)?,
    })
}

fn records(rows: Vec<Row>) -> std::result::Result<Vec<RunRecord>, tokio_postgres::Error> {
    rows.iter().map(run_from_row).collect()
}

/// Applies the migrations the database lacks, under an advisory lock so two first uses at
/// once do not race; refuses a database newer than this binary.
async fn migrate(
    c: Arc<tokio_postgres::Client>,
) -> std::result::Result<i64, tokio_postgres::Error> {
    // Read first, without the lock: a migrated database needs no CREATE right at all.
    let exists: bool = c
        .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])
        .await?
        .try_get(0)?;
    if exists {
        let v: i64 = c
            .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
            .await?
            .try_get(0)?;
        if v >= schema::LATEST {
            return Ok(v);
        }
    }
    c.batch_execute("BEGIN; SELECT pg_advisory_xact_lock(7279001)")
        .await?;
    let result = async {
        c.batch_execute(schema::VERSION_TABLE).await?;
        let current: i64 = c
            .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
            .await?
            .try_get(0)?;
        if current > schema::LATEST {
            return Ok(current);
        }
        for (version, text) in schema::POSTGRES.iter().filter(|(v, _)| *v > current) {
            c.batch_execute(text).await?;
            c.execute(
                "INSERT INTO schema_version (version, applied_ms) VALUES ($1, $2)",
                &[version, &now_ms()],
            )
            .await?;
        }
        Ok(current)
    }
    .await;
    match result {
        Ok(v) if v > schema::LATEST => {
            c.batch_execute("ROLLBACK").await?;
            Ok(v)
        }
        Ok(v) => {
            c.batch_execute("COMMIT").await?;
            Ok(v)
        }
        Err(e) => {
            let _ = c.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

fn open_conn(target: &Arc<Target>) -> Result<Conn> {
    let conn = Conn::open(target.clone())?;
    let found = conn.call(migrate)?;
    if found > schema::LATEST {
        return Err(StoreError::TooNew {
            at: conn.shown(),
            found,
            supported: schema::LATEST,
        });
    }
    Ok(conn)
}

impl Db {
    pub(super) fn open(target: &Arc<Target>) -> Result<Db> {
        Ok(Db {
            conn: open_conn(target)?,
        })
    }

    pub(super) fn create_run(&self, r: &NewRun<'_>, me: &Driver) -> Result<i64> {
        let sets = serde_json::to_string(r.sets).unwrap_or_else(|_| "{}".into());
        let values: (String, String, String, String, Option<String>) = (
            r.pipeline.to_owned(),
            r.service.to_owned(),
            r.path.to_owned(),
            r.source.to_owned(),
            r.stage.map(str::to_owned),
        );
        let me = me.clone();
        self.conn.call(move |c| {
            let (pipeline, service, path, source, stage) = values.clone();
            let (sets, me) = (sets.clone(), me.clone());
            async move {
                let row = c.query_one(
                    "INSERT INTO runs (pipeline, service, path, source, sets, stage, started_ms, status, pid, driver_host, driver_user, heartbeat_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9, $10, $7) RETURNING id",
                    &[&pipeline, &service, &path, &source, &sets, &stage, &now_ms(), &i64::from(me.pid), &me.host, &me.user],
                ).await?;
                row.try_get(0)
            }
        })
    }

    /// The run with this key (an imported copy of the same run), or a new row for it.
    pub(super) fn import_run(&self, r: &RunRecord) -> Result<(i64, bool)> {
        let r = r.clone();
        let sets = serde_json::to_string(&r.sets).unwrap_or_else(|_| "{}".into());
        let me = Driver::me();
        self.conn.call(move |c| {
            let (r, sets, me) = (r.clone(), sets.clone(), me.clone());
            async move {
                let found = c
                    .query_opt(
                        "SELECT id FROM runs WHERE started_ms = $1 AND pipeline = $2 AND service = $3 AND path = $4 ORDER BY id LIMIT 1",
                        &[&r.started_ms, &r.pipeline, &r.service, &r.path],
                    )
                    .await?;
                // The importer writes the events, so it drives an imported run (pid NULL)
                // until `restore_run`; a run driven here is left alone.
                if let Some(row) = found {
                    let id: i64 = row.try_get(0)?;
                    c.execute(
                        "UPDATE runs SET pid = $1, driver_host = $2 WHERE id = $3 AND pid IS NULL",
                        &[&i64::from(me.pid), &me.host, &id],
                    )
                    .await?;
                    return Ok((id, false));
                }
                let row = c.query_one(
                    "INSERT INTO runs (pipeline, service, path, source, sets, stage, started_ms, status, pid, driver_host, driver_user, heartbeat_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $11, $8, $9, $10) RETURNING id",
                    &[&r.pipeline, &r.service, &r.path, &r.source, &sets, &r.stage, &r.started_ms, &me.host, &r.user, &r.heartbeat_ms, &i64::from(me.pid)],
                ).await?;
                Ok((row.try_get(0)?, true))
            }
        })
    }

    /// Sets an imported run's outcome and driver as its record says (after its events).
    pub(super) fn restore_run(&self, r: &RunRecord) -> Result<()> {
        let r = r.clone();
        self.conn.call(move |c| {
            let r = r.clone();
            async move {
                c.execute(
                    "UPDATE runs SET status = $1, exit_code = $2, finished_ms = $3, driver_host = $4, driver_user = $5, heartbeat_ms = $6, pid = NULL WHERE id = $7",
                    &[&r.status.word(), &r.exit_code, &r.finished_ms, &r.host, &r.user, &r.heartbeat_ms, &r.id],
                )
                .await
                .map(|_| ())
            }
        })
    }

    pub(super) fn claim_run(&self, was: &RunRecord, me: &Driver) -> Result<bool> {
        let (id, pid, host) = (was.id, was.pid.map(i64::from), was.host.clone());
        let me = me.clone();
        self.conn.call(move |c| {
            let (host, me) = (host.clone(), me.clone());
            async move {
                let n = c.execute(
                    "UPDATE runs SET pid = $1, driver_host = $2, driver_user = $3, heartbeat_ms = $4 WHERE id = $5 AND pid IS NOT DISTINCT FROM $6 AND driver_host IS NOT DISTINCT FROM $7",
                    &[&i64::from(me.pid), &me.host, &me.user, &now_ms(), &id, &pid, &host],
                ).await?;
                Ok(n == 1)
            }
        })
    }

    pub(super) fn run(&self, id: i64) -> Result<Option<RunRecord>> {
        self.conn.call(move |c| async move {
            let rows = c
                .query(&format!("{RUN_COLUMNS} WHERE id = $1"), &[&id])
                .await?;
            Ok(records(rows)?.into_iter().next())
        })
    }

    pub(super) fn runs(&self, limit: usize) -> Result<Vec<RunRecord>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.conn.call(move |c| async move {
            records(
                c.query(
                    &format!("{RUN_COLUMNS} ORDER BY id DESC LIMIT $1"),
                    &[&limit],
                )
                .await?,
            )
        })
    }

    pub(super) fn unfinished(&self) -> Result<Vec<RunRecord>> {
        self.conn.call(|c| async move {
            records(
                c.query(
                    &format!("{RUN_COLUMNS} WHERE finished_ms IS NULL ORDER BY id DESC"),
                    &[],
                )
                .await?,
            )
        })
    }

    pub(super) fn events_after(&self, run: i64, seq: u64) -> Result<Vec<(i64, i64, String)>> {
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        self.conn.call(move |c| async move {
            c.query(
                "SELECT seq, at_ms, body FROM events WHERE run_id = $1 AND seq > $2 ORDER BY seq",
                &[&run, &seq],
            )
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
        })
    }

    pub(super) fn send_command(&self, run: i64, command: &Command) -> Result<()> {
        let who = command.who.clone();
        let kind = command.kind;
        let sender = super::sender_text(command);
        let member = command.member.clone();
        self.conn.call(move |c| {
            let (who, sender, member) = (who.clone(), sender.clone(), member.clone());
            async move {
                c.execute(
                    "WITH sent AS (INSERT INTO inbox (run_id, at_ms, command, who, sender, member) VALUES ($1, $2, $3, $4, $6, $7)) SELECT pg_notify($5, $1::text)",
                    &[&run, &now_ms(), &kind.word(), &who, &INBOX, &sender, &member],
                )
                .await
                .map(|_| ())
            }
        })
    }

    pub(super) fn take_commands(&self, run: i64) -> Result<Vec<Command>> {
        self.conn.call(move |c| async move {
            let rows = c
                .query(
                    "UPDATE inbox SET taken_ms = $2 WHERE id IN (SELECT id FROM inbox WHERE run_id = $1 AND taken_ms IS NULL ORDER BY id FOR UPDATE SKIP LOCKED) RETURNING id, command, who, sender, member",
                    &[&run, &now_ms()],
                )
                .await?;
            type Taken = (i64, String, String, Option<String>, Option<String>);
            let mut taken: Vec<Taken> = rows
                .iter()
                .map(|r| {
                    let (id, command, who) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
                    Ok((id, command, who, r.try_get(3)?, r.try_get(4)?))
                })
                .collect::<std::result::Result<_, tokio_postgres::Error>>()?;
            taken.sort_by_key(|t| t.0);
            Ok(taken
                .into_iter()
                .filter_map(|(_, command, who, sender, member)| {
                    super::command_of(&command, who, sender, member)
                })
                .collect())
        })
    }

    pub(super) fn evaluations(
        &self,
        service: &str,
        stage: &str,
        before_run: i64,
        limit: usize,
    ) -> Result<Vec<(String, String, bool)>> {
        let (service, stage) = (service.to_owned(), stage.to_owned());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.conn.call(move |c| {
            let (service, stage) = (service.clone(), stage.clone());
            async move {
                c.query(
                    "SELECT result, sli_values, invalid FROM evaluations WHERE service = $1 AND stage = $2 AND run_id < $3 ORDER BY id DESC LIMIT $4",
                    &[&service, &stage, &before_run, &limit],
                )
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                .collect()
            }
        })
    }

    pub(super) fn invalidate(&self, run: i64) -> Result<usize> {
        self.conn.call(move |c| async move {
            c.execute(
                "UPDATE evaluations SET invalid = TRUE WHERE run_id = $1",
                &[&run],
            )
            .await
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
        })
    }

    /// Wakes for `channel`, subscribed before the `LISTEN` is in force.
    pub(super) fn listen(
        &self,
        channel: &'static str,
    ) -> Result<tokio::sync::broadcast::Receiver<Wake>> {
        self.conn.listen(channel)
    }
}

/// The writer's connection.
pub(super) struct Writer {
    conn: Conn,
    me: Driver,
}

impl Writer {
    pub(super) fn open(target: &Arc<Target>, me: Driver) -> Result<Writer> {
        Ok(Writer {
            conn: open_conn(target)?,
            me,
        })
    }

    /// Commits a batch (trying again over a lost connection, see [`RECONNECT_FOR`]).
    pub(super) fn write(&mut self, batch: &Batch) -> std::result::Result<(), String> {
        let envs: Arc<Vec<Envelope>> = Arc::new(batch.iter().map(|(e, _)| (**e).clone()).collect());
        let me = self.me.clone();
        self.conn
            .call(move |c| write_batch(c, envs.clone(), me.clone()))
            .map_err(|e| e.to_string())?
    }

    /// Says this driver is alive: the heartbeat of the unfinished runs it drives.
    pub(super) fn heartbeat(&mut self, runs: &[i64]) -> std::result::Result<(), String> {
        let runs = runs.to_vec();
        let me = self.me.clone();
        self.conn
            .call(move |c| {
                let (runs, me) = (runs.clone(), me.clone());
                async move {
                    c.execute(
                        "UPDATE runs SET heartbeat_ms = $1 WHERE id = ANY($2) AND finished_ms IS NULL AND pid = $3 AND driver_host = $4",
                        &[&now_ms(), &runs, &i64::from(me.pid), &me.host],
                    )
                    .await
                    .map(|_| ())
                }
            })
            .map_err(|e| e.to_string())
    }
}

/// A statement parameter.
type Param<'a> = &'a (dyn ToSql + Sync);

async fn write_batch(
    c: Arc<tokio_postgres::Client>,
    envs: Arc<Vec<Envelope>>,
    me: Driver,
) -> std::result::Result<std::result::Result<(), String>, tokio_postgres::Error> {
    use futures_util::future::{try_join, try_join_all, try_join3};
    // Statements that do not wait on each other's answers are sent together (tokio-postgres
    // pipelines futures polled at once): a batch costs a handful of round trips, not one per
    // event. The server runs them in the order sent.
    const INSERT: &str = "INSERT INTO events (run_id, seq, at_ms, type, stage, step, body) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (run_id, seq) DO NOTHING";
    let (_, taken, insert) = try_join3(
        c.batch_execute("BEGIN"),
        taken_over(&c, &envs, &me),
        c.prepare(INSERT),
    )
    .await?;
    if let Some(taken) = taken {
        c.batch_execute("ROLLBACK").await?;
        return Ok(Err(taken));
    }
    let result = async {
        let rows: Vec<_> = envs
            .iter()
            .map(|env| {
                let body = serde_json::to_string(&env.event).unwrap_or_default();
                let (stage, step) = env.event.location();
                let seq = i64::try_from(env.seq).unwrap_or(i64::MAX);
                (env, seq, env.event.type_name(), stage, step, body)
            })
            .collect();
        let inserted = try_join_all(rows.iter().map(|(env, seq, kind, stage, step, body)| {
            let params: [Param<'_>; 7] = [&env.run, seq, &env.at_ms, kind, stage, step, body];
            c.execute_raw(&insert, params)
        }))
        .await?;
        // What an event changes besides the event table, in order, once (not on a retry).
        for (env, n) in envs.iter().zip(inserted) {
            if n == 1 {
                apply(&c, env).await?;
            }
        }
        let mut runs: Vec<i64> = envs.iter().map(|e| e.run).collect();
        runs.sort_unstable();
        runs.dedup();
        let names: Vec<String> = runs.iter().map(i64::to_string).collect();
        let (now, pid) = (now_ms(), i64::from(me.pid));
        let beats = runs.iter().map(|run| {
            let params: [Param<'_>; 4] = [&now, run, &pid, &me.host];
            c.execute_raw(
                "UPDATE runs SET heartbeat_ms = $1 WHERE id = $2 AND finished_ms IS NULL AND pid = $3 AND driver_host = $4",
                params,
            )
        });
        let notes = names.iter().map(|run| {
            let params: [Param<'_>; 2] = [&EVENTS, run];
            c.execute_raw("SELECT pg_notify($1, $2::text)", params)
        });
        try_join(try_join_all(beats), try_join_all(notes)).await?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => c.batch_execute("COMMIT").await.map(Ok),
        Err(e) => {
            let _ = c.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

/// Whether another driver took one of the batch's runs over (`resume` elsewhere, while this
/// one was cut off): then this one must not write another event of it. The rows stay
/// locked until the batch commits, so a takeover waits for it or comes before it.
async fn taken_over(
    c: &tokio_postgres::Client,
    envs: &[Envelope],
    me: &Driver,
) -> std::result::Result<Option<String>, tokio_postgres::Error> {
    let mut runs: Vec<i64> = envs.iter().map(|e| e.run).collect();
    runs.sort_unstable();
    runs.dedup();
    let rows = c
        .query(
            "SELECT id, pid, driver_host, driver_user FROM runs WHERE id = ANY($1) ORDER BY id FOR UPDATE",
            &[&runs],
        )
        .await?;
    for row in rows {
        let (id, pid, host): (i64, Option<i64>, Option<String>) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        if pid != Some(i64::from(me.pid)) || host.as_deref() != Some(me.host.as_str()) {
            let user: Option<String> = row.try_get(3)?;
            let by = RunRecord::driver_of(pid.and_then(|p| u32::try_from(p).ok()), user, host);
            return Ok(Some(format!(
                "run {id} is now driven by {by}, which took it over: this process stops driving it"
            )));
        }
    }
    Ok(None)
}

/// What an event changes besides the event table (as the SQLite journal does).
async fn apply(
    c: &tokio_postgres::Client,
    env: &Envelope,
) -> std::result::Result<(), tokio_postgres::Error> {
    let (sql, params): (&str, Vec<Box<dyn ToSql + Sync + Send>>) = match &env.event {
        Event::Operator {
            command,
            who,
            accepted,
            reason,
            ..
        } => (
            "INSERT INTO actions (run_id, at_ms, command, who, accepted, reason) VALUES ($1, $2, $3, $4, $5, $6)",
            vec![
                Box::new(env.run),
                Box::new(env.at_ms),
                Box::new(command.word()),
                Box::new(who.clone()),
                Box::new(*accepted),
                Box::new(reason.clone()),
            ],
        ),
        Event::StepFinished {
            stage,
            step,
            verdict: Some(v),
            evidence,
            evaluation,
            ..
        } => {
            if let Some(e) = evaluation {
                c.execute(
                    "INSERT INTO evaluations (run_id, service, stage, step, at_ms, result, score, sli_values) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    &[&env.run, &e.service, stage, step, &env.at_ms, &e.result.word(), &e.score, &serde_json::to_string(&e.sli_values).unwrap_or_default()],
                )
                .await?;
            }
            (
                "INSERT INTO gate_results (run_id, stage, step, at_ms, verdict, evidence) VALUES ($1, $2, $3, $4, $5, $6)",
                vec![
                    Box::new(env.run),
                    Box::new(stage.clone()),
                    Box::new(step.clone()),
                    Box::new(env.at_ms),
                    Box::new(v.word()),
                    Box::new(serde_json::to_string(evidence).unwrap_or_default()),
                ],
            )
        }
        Event::RunFinished {
            status, exit_code, ..
        } => (
            "UPDATE runs SET status = $1, exit_code = $2, finished_ms = $3 WHERE id = $4",
            vec![
                Box::new(status.word()),
                Box::new(*exit_code),
                Box::new(env.at_ms),
                Box::new(env.run),
            ],
        ),
        Event::RunStarted { .. } => (
            "UPDATE runs SET status = 'running', finished_ms = NULL, exit_code = NULL WHERE id = $1",
            vec![Box::new(env.run)],
        ),
        Event::RunState { status } => (
            "UPDATE runs SET status = $1 WHERE id = $2",
            vec![Box::new(status.word()), Box::new(env.run)],
        ),
        _ => return Ok(()),
    };
    let refs: Vec<&(dyn ToSql + Sync)> = params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect();
    c.execute(sql, &refs).await.map(|_| ())
}
