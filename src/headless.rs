//! The headless printer: a subscriber that writes a run's progress to stderr, one line an
//! event (with a spinner line when stderr is a terminal), for CI logs and scripts.

use std::io::{IsTerminal, Write};

use tokio::sync::broadcast;

use crate::events::{Envelope, Event, Evidence, Status, Verdict, clock};

/// Formats one event as a progress line, or None for events that print nothing.
pub fn line(env: &Envelope) -> Option<String> {
    let time = clock(env.at_ms);
    let text = match &env.event {
        Event::RunStarted {
            pipeline, resumed, ..
        } => {
            if *resumed {
                format!("↻ run {} of {pipeline} resumed", env.run)
            } else {
                format!("▶ run {} of {pipeline} started", env.run)
            }
        }
        Event::RunState {
            status: Status::Paused,
        } => "⏸ run paused".into(),
        Event::RunState { .. } => "▶ run resumed".into(),
        Event::StageStarted { stage } => format!("▶ stage {stage}"),
        Event::StageFinished { stage, status } => {
            format!("{} stage {stage} {status}", status.glyph())
        }
        Event::StepStarted { step, kind, .. } => format!("  ▶ {step} ({kind})"),
        Event::StepState {
            step,
            status,
            message,
            ..
        } => {
            let hint = if *status == Status::WaitingForApproval {
                approve_hint(env.run)
            } else {
                String::new()
            };
            format!("  {} {step}: {message}{hint}", status.glyph())
        }
        Event::StepFinished {
            status: Status::Skipped,
            ..
        } => return None,
        Event::StepFinished {
            step,
            status,
            summary,
            evidence,
            ..
        } => {
            let mut out = format!("  {} {step} {status}: {summary}", status.glyph());
            out.push_str(&failing_checks(evidence));
            out
        }
        Event::Log {
            step, source, line, ..
        } => format!("    │ {step} {source}: {line}"),
        // The step's evidence and log lines show the same figures.
        Event::Measured { .. } | Event::Traffic { .. } | Event::Analysis { .. } => return None,
        Event::Operator {
            command,
            who,
            accepted: true,
            ..
        } => format!("» {command} by {who}"),
        Event::Operator {
            command,
            who,
            accepted: false,
            reason,
            ..
        } => {
            format!(
                "» {command} by {who} refused: {}",
                reason.as_deref().unwrap_or("")
            )
        }
        Event::Member {
            member, run, wave, ..
        } => format!("  ↳ {member}: run {run} (wave {wave})"),
        Event::RunFinished { status, reason, .. } => {
            format!("{} run {} {status}: {reason}", status.glyph(), env.run)
        }
    };
    Some(format!("{time} {text}"))
}

/// How to answer an approval from another terminal.
fn approve_hint(run: i64) -> String {
    format!(" — `glidepath approve {run}` or `glidepath reject {run}`")
}

/// A line under a step for each check that did not pass: what, found, expected.
fn failing_checks(evidence: &[Evidence]) -> String {
    let mut out = String::new();
    for e in evidence.iter().filter(|e| e.verdict != Verdict::Pass) {
        out.push_str(&format!(
            "\n      ✗ {}: {}{}",
            e.check,
            e.value.as_deref().unwrap_or("no value"),
            e.expected
                .as_deref()
                .map(|x| format!(" (expected {x})"))
                .unwrap_or_default()
        ));
    }
    out
}

/// Prints events until the run finishes.
pub async fn print(rx: broadcast::Receiver<Envelope>) {
    print_as(rx, None).await;
}

/// Prints a release train member's events until its run finishes, each line after
/// `[member]`, with no spinner (the train's own printer has it).
pub async fn print_member(rx: broadcast::Receiver<Envelope>, member: &str) {
    print_as(rx, Some(member)).await;
}

async fn print_as(mut rx: broadcast::Receiver<Envelope>, member: Option<&str>) {
    let tty = member.is_none() && std::io::stderr().is_terminal();
    let spinner = tty.then(|| {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.enable_steady_tick(std::time::Duration::from_millis(120));
        pb
    });
    loop {
        let env = match rx.recv().await {
            Ok(env) => env,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                eprintln!(
                    "(skipped {n} events: output could not keep up; the journal has them all)"
                );
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => break,
        };
        if let (Some(pb), Event::StepStarted { stage, step, .. }) = (&spinner, &env.event) {
            pb.set_message(format!("{stage}/{step}"));
        }
        if let Some(text) = line(&env) {
            let text = match member {
                Some(m) => format!("[{m}] {text}"),
                None => text,
            };
            match &spinner {
                Some(pb) => pb.println(text),
                None => {
                    let mut err = std::io::stderr().lock();
                    let _ = writeln!(err, "{text}");
                }
            }
        }
        if matches!(env.event, Event::RunFinished { .. }) {
            break;
        }
    }
    if let Some(pb) = spinner {
        pb.finish_and_clear();
    }
}
