//! `journal export`, `journal import` and `journal copy`: runs moved between journals, for
//! a team adopting the shared journal and for a post-mortem copy.

use std::io::{BufReader, Write};
use std::path::Path;

use super::args::JournalCmd;
use super::{Exit, bad_input, infra};
use crate::events::exit;
use crate::store::{Imported, Location, Store};

/// Runs one `journal` subcommand against `journal` (the global `--journal`).
pub(super) fn journal(journal: &Location, command: JournalCmd) -> Result<i32, Exit> {
    match command {
        JournalCmd::Export { runs, output } => {
            let store = Store::open(journal).map_err(infra)?;
            let n = match &output {
                Some(path) => {
                    let file = std::fs::File::create(path)
                        .map_err(|e| bad_input(format!("cannot write {}: {e}", path.display())))?;
                    let mut out = std::io::BufWriter::new(file);
                    store
                        .export(&runs, &mut out, &super::history::shown)
                        .map_err(export_error)?
                }
                None => {
                    let mut out = std::io::stdout().lock();
                    store
                        .export(&runs, &mut out, &super::history::shown)
                        .map_err(export_error)?
                }
            };
            if let Some(path) = output {
                eprintln!("exported {n} run(s) to {}", path.display());
            }
            Ok(exit::OK)
        }
        JournalCmd::Import { file } => {
            let store = Store::open(journal).map_err(infra)?;
            let done = match file.filter(|f| f != Path::new("-")) {
                Some(path) => {
                    let f = std::fs::File::open(&path)
                        .map_err(|e| bad_input(format!("cannot read {}: {e}", path.display())))?;
                    let name = path.display().to_string();
                    store.import(&mut BufReader::new(f), &name)
                }
                None => store.import(&mut std::io::stdin().lock(), "standard input"),
            }
            .map_err(import_error)?;
            say(&done);
            Ok(exit::OK)
        }
        JournalCmd::Copy { from, to, runs } => {
            let from = match from {
                Some(f) => Location::parse(&f).map_err(|e| bad_input(e.to_string()))?,
                None => journal.clone(),
            };
            let to = Location::parse(&to).map_err(|e| bad_input(e.to_string()))?;
            let source = Store::open(&from).map_err(infra)?;
            let target = Store::open(&to).map_err(infra)?;
            let mut text = Vec::new();
            source
                .export(&runs, &mut text, &super::history::shown)
                .map_err(export_error)?;
            let done = target
                .import(&mut text.as_slice(), "the copy")
                .map_err(import_error)?;
            say(&done);
            Ok(exit::OK)
        }
    }
}

/// One line per run: which id it has here, and what was added.
fn say(done: &[Imported]) {
    let mut out = std::io::stdout().lock();
    for i in done {
        let what = match (i.new, i.events) {
            (true, n) => format!("added with {n} event(s)"),
            (false, 0) => "already here; nothing added".to_owned(),
            (false, n) => format!("already here; {n} missing event(s) added"),
        };
        let _ = writeln!(out, "run {} -> run {}: {what}", i.from, i.to);
    }
    let added = done.iter().filter(|i| i.new).count();
    let _ = writeln!(
        out,
        "{added} run(s) added, {} already here",
        done.len() - added
    );
}

fn export_error(e: crate::store::StoreError) -> Exit {
    match e {
        crate::store::StoreError::NoRun(_) => bad_input(e.to_string()),
        e => infra(e),
    }
}

fn import_error(e: crate::store::StoreError) -> Exit {
    match e {
        crate::store::StoreError::Config(_) => bad_input(e.to_string()),
        e => infra(e),
    }
}
