//! `journal export` and `journal import`: runs moved between journals (SQLite and
//! PostgreSQL, either way) as JSON Lines. The first line names the format and its version;
//! each further line is one run: its record (pipeline text, `--set` values, outcome, who
//! drove it) and every event in order (log lines, operator commands with their senders,
//! gate evidence). Events are copied as stored, so what was redacted stays redacted.
//!
//! A run is known in the target by its start time, pipeline, service and file: importing
//! it again adds only the events the copy lacks, so a re-import duplicates nothing. The
//! target numbers imported runs itself; the import says which id became which.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use super::{Db, Journal, Result, RunRecord, Store, StoreError};
use crate::events::Envelope;

/// The format's name, on the first line.
pub const FORMAT: &str = "glidepath-journal";
/// The version this binary writes and reads.
pub const VERSION: u32 = 1;

/// The first line.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    exported_ms: i64,
    runs: usize,
}

/// One run, on one line.
#[derive(Debug, Serialize, Deserialize)]
struct RunCopy {
    run: RunRecord,
    events: Vec<Envelope>,
}

/// What importing one run did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Imported {
    /// The run's id in the exported journal.
    pub from: i64,
    /// Its id in this journal.
    pub to: i64,
    /// Whether the run was new here (else a copy was there already).
    pub new: bool,
    /// Events added (0 when the copy here was complete).
    pub events: usize,
}

impl Store {
    /// Writes the runs `ids` (all, oldest first, when empty) to `out`, each record as
    /// `shown` makes it (the CLI hides the secrets its pipeline text holds); returns how
    /// many.
    pub fn export(
        &self,
        ids: &[i64],
        out: &mut dyn Write,
        shown: &dyn Fn(RunRecord) -> RunRecord,
    ) -> Result<usize> {
        let mut runs = if ids.is_empty() {
            let mut all = self.runs(i64::MAX as usize)?;
            all.reverse();
            all
        } else {
            ids.iter().map(|id| self.run(*id)).collect::<Result<_>>()?
        };
        runs.sort_by_key(|r| r.id);
        let io = |e: std::io::Error| StoreError::Config(format!("cannot write the export: {e}"));
        let header = Header {
            format: FORMAT.into(),
            version: VERSION,
            exported_ms: super::now_ms(),
            runs: runs.len(),
        };
        line(out, &header).map_err(io)?;
        for run in &runs {
            let copy = RunCopy {
                events: self.events(run.id)?,
                run: shown(run.clone()),
            };
            line(out, &copy).map_err(io)?;
        }
        out.flush().map_err(io)?;
        Ok(runs.len())
    }

    /// Reads an export and adds its runs to this journal; `name` says where the text came
    /// from, for errors.
    pub fn import(&self, input: &mut dyn BufRead, name: &str) -> Result<Vec<Imported>> {
        let bad = |n: usize, what: String| {
            StoreError::Config(format!(
                "{name} line {n}: {what}; is it a `glidepath journal export`?"
            ))
        };
        let mut lines = input.lines().enumerate();
        let header: Header = match lines.next() {
            Some((_, Ok(text))) => {
                serde_json::from_str(&text).map_err(|e| bad(1, e.to_string()))?
            }
            Some((_, Err(e))) => return Err(bad(1, e.to_string())),
            None => return Err(bad(1, "the input is empty".into())),
        };
        if header.format != FORMAT || header.version > VERSION {
            return Err(bad(
                1,
                format!(
                    "format {} version {}; this glidepath reads {FORMAT} up to version {VERSION}",
                    header.format, header.version
                ),
            ));
        }
        let journal = Journal::open(&self.location)?;
        let mut done = Vec::new();
        for (i, text) in lines {
            let text = text.map_err(|e| bad(i + 1, e.to_string()))?;
            if text.trim().is_empty() {
                continue;
            }
            let copy: RunCopy =
                serde_json::from_str(&text).map_err(|e| bad(i + 1, e.to_string()))?;
            done.push(self.import_one(&journal, copy)?);
        }
        Ok(done)
    }

    /// One run: its row (found or made), the events it lacks, then its outcome and driver.
    fn import_one(&self, journal: &Journal, copy: RunCopy) -> Result<Imported> {
        let (to, new) = on!(self.import_run(&copy.run))?;
        let have = self.events(to)?.last().map_or(0, |e| e.seq);
        let missing: Vec<Envelope> = copy.events.into_iter().filter(|e| e.seq > have).collect();
        let events = missing.len();
        let mut last = None;
        for env in missing {
            let env = Envelope { run: to, ..env };
            if let Some(prev) = last.replace(env) {
                journal.append(prev)?;
            }
        }
        if let Some(env) = last {
            journal.append_durable(env)?;
        }
        let me = super::Driver::me();
        let held = self.run(to)?;
        let claimed = held.pid == Some(me.pid) && held.host.as_deref() == Some(me.host.as_str());
        if new || events > 0 || claimed {
            let record = RunRecord {
                id: to,
                ..copy.run.clone()
            };
            on!(self.restore_run(&record))?;
        }
        Ok(Imported {
            from: copy.run.id,
            to,
            new,
            events,
        })
    }
}

fn line(out: &mut dyn Write, value: &impl Serialize) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")
}
