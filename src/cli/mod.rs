//! The command line: a stable interface that scripts and tests use (DESIGN.md, "CLI").
//!
//! `dispatch` only matches the command and calls the file named after it:
//! - `run`, `resume`: `run.rs`; whether a run's driver is still there: `driver.rs`; both, and `demo`, hand the run to `drive.rs` (cockpit or
//!   headless, run leases, the command inbox, signals, reports).
//! - `demo`: `demo.rs`; `sandbox serve`, and the sandbox a run embeds: `sandbox.rs`.
//! - `check`, `diff`, `rollback`, `contract verify`, `load`, `slo eval|budget|rules`,
//!   `attach`, `history`, `replay`: the file of that name; `approve`, `reject`: `approve.rs`.
//! - `schema`, `completions`, `man`: `docs.rs`; `judge`: `judge.rs`.
//! - Every command's flags and help text: `args.rs`.

mod approve;
mod args;
mod attach;
mod attach_train;
mod check;
mod contract;
mod dataplane;
mod demo;
mod demo_account;
mod demo_clear;
mod demo_cluster;
mod demo_crds;
mod demo_train;
mod diff;
mod docs;
mod drive;
mod driver;
pub mod history;
mod journal;
mod judge;
mod load;
mod replay;
mod rollback;
mod run;
mod sandbox;
mod sender;
mod slo;
mod train;
mod train_cockpit;
mod train_rollback;

use std::collections::BTreeMap;
use std::path::Path;

use clap::Parser;

pub use args::Cli;
use args::{Cmd, ContractCmd, LoadArgs, SandboxCmd, SloCmd};

use crate::events::{CommandKind, exit};
use crate::pipeline::{self, Pipeline, Variables};

/// `run` if given, else the newest run that has not finished, preferring one a live
/// process drives over an interrupted one (`none` says what to do when there is none).
fn run_or_newest_unfinished(
    store: &crate::store::Store,
    run: Option<i64>,
    none: &str,
) -> Result<i64, Exit> {
    if let Some(r) = run {
        return Ok(r);
    }
    let unfinished = store.unfinished().map_err(infra)?;
    unfinished
        .iter()
        .find(|r| !driver::driver_gone(r))
        .or(unfinished.first())
        .map(|r| r.id)
        .ok_or_else(|| bad_input(none))
}

/// A failure with the exit code it maps to.
#[derive(Debug)]
pub struct Exit {
    /// Process exit code.
    pub code: i32,
    /// What to print on stderr.
    pub message: String,
}

/// Exit 2: the flags or a file the user gave are wrong.
fn bad_input(message: impl std::fmt::Display) -> Exit {
    Exit {
        code: exit::BAD_INPUT,
        message: message.to_string(),
    }
}

/// Exit 4: infrastructure failed (a cluster, Prometheus, the journal, this machine).
fn infra(e: impl std::fmt::Display) -> Exit {
    Exit {
        code: exit::INFRA,
        message: e.to_string(),
    }
}

/// Runs the CLI and returns the process exit code.
pub fn main() -> i32 {
    crate::tls::install();
    end_quietly_when_stdout_closes();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::BAD_INPUT
            } else {
                exit::OK
            };
            let _ = e.print();
            return code;
        }
    };
    init_logging();
    let runtime = match runtime_for(&cli.command).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::INFRA;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", e.message);
            e.code
        }
    }
}

/// A reader that stopped early (`glidepath check … | head`) ends glidepath the way it ends
/// `cat`: by SIGPIPE, without a word, instead of `println!`'s panic and its backtrace hint.
/// Only printing to stdout is concerned; every other write keeps its error (SIGPIPE stays
/// ignored, so a closed socket or child pipe is an error the caller handles).
fn end_quietly_when_stdout_closes() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        let epipe = format!("(os error {})", libc::EPIPE);
        if message.starts_with("failed printing to stdout") && message.contains(&epipe) {
            // SAFETY: resetting SIGPIPE to its default and raising it ends the process
            // at once, as a write to a closed pipe ends any program that does not catch it.
            unsafe {
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                libc::raise(libc::SIGPIPE);
            }
        }
        previous(info);
    }));
}

/// Log records go to stderr (`GLIDEPATH_LOG`) and to the cockpit's log view.
fn init_logging() {
    use tracing_subscriber::prelude::*;
    // stderr for scripts and CI; while the cockpit is on screen its own log view (L)
    // shows the same records, which would otherwise scribble over the frame.
    let stderr = || -> Box<dyn std::io::Write> {
        if crate::ui::active() {
            Box::new(std::io::sink())
        } else {
            Box::new(std::io::stderr())
        }
    };
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(stderr)
                .with_filter(tracing_subscriber::EnvFilter::from_env("GLIDEPATH_LOG")),
        )
        .with(
            tui_logger::TuiTracingSubscriberLayer
                .with_filter(tracing_subscriber::filter::LevelFilter::INFO),
        )
        .init();
    // No mover thread (init_logger's wakes every 10 ms): the cockpit moves records
    // into view on its own tick.
    tui_logger::set_default_level(tui_logger::LevelFilter::Info);
}

/// The async runtime a command runs on: `load --threads` sizes it, the rest take the default.
fn runtime_for(command: &Cmd) -> tokio::runtime::Builder {
    match command {
        // One thread: a single-threaded runtime wakes tasks without cross-thread hand-offs.
        Cmd::Load(LoadArgs {
            threads: Some(0 | 1),
            ..
        }) => tokio::runtime::Builder::new_current_thread(),
        Cmd::Load(LoadArgs {
            threads: Some(threads),
            ..
        }) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(*threads);
            b
        }
        _ => tokio::runtime::Builder::new_multi_thread(),
    }
}

/// One command, one call.
async fn dispatch(cli: Cli) -> Result<i32, Exit> {
    if let Some(name) = &cli.as_name {
        crate::identity::set_as_name(name);
    }
    let journal = cli.journal.unwrap_or_else(crate::store::default_path);
    let journal = crate::store::Location::parse(&journal).map_err(|e| bad_input(e.to_string()))?;
    let journal = &journal;
    match cli.command {
        Cmd::Run(args) => run::run(journal, args).await,
        Cmd::Check(args) => check::check(journal, args).await,
        Cmd::Resume {
            run,
            pipeline,
            flags,
        } => run::resume(journal, run, pipeline.as_deref(), &flags).await,
        Cmd::Attach { run, cockpit } => attach::attach(journal, run, cockpit).await,
        Cmd::Approve { run } => approve::send(journal, run, CommandKind::Approve).await,
        Cmd::Reject { run } => approve::send(journal, run, CommandKind::Reject).await,
        Cmd::History(args) => history::history(journal, args),
        Cmd::Replay(args) => replay::replay(journal, args),
        Cmd::Schema { train } => docs::schema(train),
        Cmd::Completions { shell } => docs::completions(shell),
        Cmd::Man { dir } => docs::man(dir),
        Cmd::Slo { command } => match command {
            SloCmd::Eval(args) => slo::eval(args).await,
            SloCmd::Budget(args) => slo::budget(args).await,
            SloCmd::Rules { slo, sets } => slo::rules(&slo, sets),
        },
        Cmd::Journal { command } => journal::journal(journal, command),
        Cmd::Rollback(args) => match args.train {
            Some(run) => train_rollback::rollback(journal, run, args.yes).await,
            None => rollback::rollback(args).await,
        },
        Cmd::Diff(args) => diff::diff(journal, args).await,
        Cmd::Load(args) => load::load(args).await,
        Cmd::Contract { command } => match command {
            ContractCmd::Verify(args) => contract::verify(args).await,
        },
        Cmd::Sandbox { command } => match command {
            SandboxCmd::Serve(args) => sandbox::serve(args).await,
        },
        Cmd::Demo {
            sets,
            flags,
            kubeconfig,
            crds,
        } if flags.scenario.starts_with("train") => {
            let on = kubeconfig.as_deref().map(|k| (k, crds.as_deref()));
            demo_train::demo(journal, sets, &flags, on).await
        }
        Cmd::Demo {
            sets,
            flags,
            kubeconfig,
            crds,
        } => {
            let on = kubeconfig.as_deref().map(|k| (k, crds.as_deref()));
            demo::demo(journal, sets, &flags, on).await
        }
        Cmd::Judge(args) => judge::judge(args),
    }
}

/// Loads a pipeline file with `--set` variables; a bad file is bad input.
fn load_pipeline(path: &Path, sets: Vec<(String, String)>) -> Result<Pipeline, Exit> {
    if std::fs::read_to_string(path).is_ok_and(|text| crate::train::is_train(&text)) {
        return Err(bad_input(format!(
            "{} is a release train (kind: Train): `glidepath run {}` runs it and `glidepath check {}` checks it; resume and diff take one pipeline at a time (a member's file)",
            path.display(),
            path.display(),
            path.display()
        )));
    }
    let sets: BTreeMap<String, String> = sets.into_iter().collect();
    pipeline::load_file(path, &Variables::from_sets(sets)).map_err(|e| bad_input(e.to_string()))
}
