//! The operator's commands to a running engine (pause, resume, promote, approve, reject,
//! abort, rollback): each accepted or refused, and journaled either way with its sender.

use tokio::sync::mpsc;

use super::{Engine, Flow, Interrupt, approvals};
use crate::events::{Command, CommandKind, Event, Status};
use crate::identity::Sender;
use crate::pipeline::Step;
use crate::steps::{Phase, Signal};

/// The steps running now, each with its phase and the channel that signals it.
pub(super) type Running<'a> = [(&'a Step, Phase, &'a mpsc::UnboundedSender<Signal>)];

/// A command being answered: what was asked, by whom, and the answer as an event.
struct Sent {
    kind: CommandKind,
    who: String,
    sender: Option<Sender>,
}

impl Sent {
    fn answer(&self, accepted: bool, reason: Option<String>) -> Event {
        Event::Operator {
            command: self.kind,
            who: self.who.clone(),
            accepted,
            reason,
            sender: self.sender.clone(),
        }
    }

    fn refuse(&self, reason: String) -> Event {
        self.answer(false, Some(reason))
    }

    fn accept(&self, note: Option<String>) -> Event {
        self.answer(true, note)
    }
}

/// The running step in phase `want`, with its signal channel.
fn in_phase<'a>(
    running: &Running<'a>,
    want: Phase,
) -> Option<(&'a Step, &'a mpsc::UnboundedSender<Signal>)> {
    running
        .iter()
        .find(|(_, p, _)| *p == want)
        .map(|(s, _, tx)| (*s, *tx))
}

/// Sends `signal` to the running step in phase `want`, if there is one.
fn forward(running: &Running<'_>, want: Phase, signal: Signal) {
    if let Some((_, tx)) = in_phase(running, want) {
        let _ = tx.send(signal);
    }
}

/// What the engine is doing, for a refusal's reason.
fn busy(running: &Running<'_>) -> String {
    match running {
        [] => "the run is paused between steps".to_owned(),
        [(s, _, _)] => format!("step `{}` is running", s.name),
        many => format!(
            "steps {} are running",
            many.iter()
                .map(|(s, _, _)| format!("`{}`", s.name))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

impl Engine {
    /// Applies a command if it fits the current state, or refuses it with a reason.
    /// The decision is journaled before it takes effect.
    pub(super) fn on_command(&mut self, command: Command, running: &Running<'_>) -> Flow<()> {
        let Command {
            kind, who, sender, ..
        } = command;
        let sent = Sent {
            kind,
            who,
            sender: sender.or_else(|| self.options.driver.clone()),
        };
        match kind {
            CommandKind::Pause | CommandKind::Resume | CommandKind::Promote => {
                self.on_pause(&sent, running)
            }
            CommandKind::Approve | CommandKind::Reject => self.on_answer(&sent, running),
            CommandKind::Abort => {
                self.emit(sent.accept(None))?;
                Err(Interrupt::Abort(sent.who))
            }
            CommandKind::Rollback if running.is_empty() && self.prior.is_empty() => self
                .emit(sent.refuse("nothing has run yet, so there is nothing to roll back".into())),
            CommandKind::Rollback => {
                self.emit(sent.accept(None))?;
                Err(Interrupt::Rollback(sent.who))
            }
        }
    }

    /// Pause and resume the whole run, or end a pause step (resume, promote).
    fn on_pause(&mut self, sent: &Sent, running: &Running<'_>) -> Flow<()> {
        let paused = *self.paused_rx.borrow();
        let pausing = in_phase(running, Phase::Paused).is_some();
        let what = busy(running);
        match sent.kind {
            CommandKind::Pause if paused => {
                self.emit(sent.refuse("the run is already paused".into()))
            }
            CommandKind::Pause => {
                self.emit(sent.accept(None))?;
                self.paused.send_replace(true);
                self.emit(Event::RunState {
                    status: Status::Paused,
                })
            }
            CommandKind::Resume if paused => {
                self.emit(sent.accept(None))?;
                self.paused.send_replace(false);
                self.emit(Event::RunState {
                    status: Status::Running,
                })
            }
            CommandKind::Resume if pausing => {
                self.emit(sent.accept(Some("ends the current pause".into())))?;
                forward(running, Phase::Paused, Signal::Continue(sent.who.clone()));
                Ok(())
            }
            CommandKind::Resume => self.emit(sent.refuse(format!("the run is not paused; {what}"))),
            _ if pausing => {
                self.emit(sent.accept(None))?;
                forward(running, Phase::Paused, Signal::Continue(sent.who.clone()));
                Ok(())
            }
            _ => self.emit(sent.refuse(format!("there is no pause to skip; {what}"))),
        }
    }

    /// Approve or reject the step waiting for approval, under its approval rules.
    fn on_answer(&mut self, sent: &Sent, running: &Running<'_>) -> Flow<()> {
        let Some((step, _)) = in_phase(running, Phase::WaitingForApproval) else {
            let what = busy(running);
            return self.emit(sent.refuse(format!("nothing is waiting for approval; {what}")));
        };
        let by = match self.answer(sent.kind, step, sent.sender.as_ref()) {
            Err(reason) => return self.emit(sent.refuse(reason)),
            Ok(approvals::Answer::Pending(note)) => return self.emit(sent.accept(Some(note))),
            Ok(approvals::Answer::Decided(by)) if sent.sender.is_some() => by,
            Ok(approvals::Answer::Decided(_)) => sent.who.clone(),
        };
        self.emit(sent.accept(None))?;
        let signal = if sent.kind == CommandKind::Approve {
            Signal::Approve(by)
        } else {
            Signal::Reject(by)
        };
        forward(running, Phase::WaitingForApproval, signal);
        Ok(())
    }
}
