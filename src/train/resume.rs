//! What an interrupted train had done, read back from its run's events: the members each
//! stage finished (they stay finished), the member sub-runs it started and never saw end
//! (they continue from their own journals), the stages and approvals it passed.

use std::collections::{BTreeMap, BTreeSet};

use super::drive::APPROVAL;
use crate::engine::{Emitter, Outcome, Resumed};
use crate::events::{Envelope, Event, Status, exit};

/// A member's (or the approval's) end in a stage, as the train's run journaled it.
#[derive(Debug, Clone, PartialEq)]
pub struct Prior {
    /// Its status in the train's run.
    pub status: Status,
    /// The summary journaled with it.
    pub summary: String,
}

impl Prior {
    /// The outcome it stands for, as the member's run would have returned it.
    pub fn outcome(&self) -> Outcome {
        let exit_code = match self.status {
            Status::Passed | Status::Warning => exit::OK,
            Status::Aborted => exit::ABORTED,
            _ => exit::FAILED,
        };
        Outcome {
            status: self.status,
            exit_code,
            reason: self.summary.clone(),
        }
    }
}

/// The state a resumed train starts from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrainResume {
    /// The event number the resumed driver journals next.
    pub next_seq: u64,
    /// Each member's last finish per `(stage, member)` (skips left out: they are decided
    /// again).
    pub finished: BTreeMap<(String, String), Prior>,
    /// Member sub-runs started per `(stage, member)` whose end the train never journaled.
    pub running: BTreeMap<(String, String), i64>,
    /// Stages the train started.
    pub started: BTreeSet<String>,
    /// Stages the train passed (their approval too).
    pub passed: BTreeSet<String>,
    /// The approval after each stage, when it was answered.
    pub approvals: BTreeMap<String, Prior>,
}

impl TrainResume {
    /// Folds the train's run events; `members` are the train's member names.
    pub fn from_events(events: &[Envelope], members: &[&str]) -> TrainResume {
        let mut out = TrainResume {
            next_seq: events.last().map(|e| e.seq + 1).unwrap_or(1),
            ..TrainResume::default()
        };
        for env in events {
            match &env.event {
                Event::StageStarted { stage } => {
                    out.started.insert(stage.clone());
                }
                Event::StageFinished {
                    stage,
                    status: Status::Passed,
                } => {
                    out.passed.insert(stage.clone());
                }
                Event::Member {
                    stage, member, run, ..
                } => {
                    out.running.insert((stage.clone(), member.clone()), *run);
                }
                Event::StepFinished {
                    stage,
                    step,
                    status,
                    summary,
                    ..
                } if *status != Status::Skipped => {
                    let key = (stage.clone(), step.clone());
                    let prior = Prior {
                        status: *status,
                        summary: summary.clone(),
                    };
                    if step == APPROVAL && !members.contains(&step.as_str()) {
                        out.approvals.insert(stage.clone(), prior);
                    } else {
                        out.running.remove(&key);
                        out.finished.insert(key, prior);
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// The member's finish in `stage`, when the train journaled it.
    pub fn finished(&self, stage: &str, member: &str) -> Option<&Prior> {
        self.finished.get(&(stage.to_owned(), member.to_owned()))
    }

    /// The member's sub-run in `stage` that the train started and never saw end.
    pub fn running(&self, stage: &str, member: &str) -> Option<i64> {
        self.running
            .get(&(stage.to_owned(), member.to_owned()))
            .copied()
    }
}

/// How a member's interrupted sub-run goes on.
pub enum Resumption {
    /// It had ended (its journal says how) before the train journaled it.
    Ended(Outcome),
    /// It continues from its last committed event.
    Continue {
        /// Its run's emitter, numbering after its last event.
        emitter: Emitter,
        /// What it had done.
        resumed: Resumed,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(seq: u64, event: Event) -> Envelope {
        Envelope {
            run: 1,
            seq,
            at_ms: 0,
            event,
        }
    }

    fn done(stage: &str, step: &str, status: Status) -> Event {
        Event::StepFinished {
            stage: stage.into(),
            step: step.into(),
            status,
            verdict: None,
            summary: format!("{step} {status}"),
            evidence: Vec::new(),
            evaluation: None,
        }
    }

    #[test]
    fn finished_members_stay_and_started_sub_runs_continue() {
        let member = |m: &str, run| Event::Member {
            stage: "prod".into(),
            member: m.into(),
            run,
            wave: 1,
        };
        let events = vec![
            env(
                1,
                Event::StageStarted {
                    stage: "staging".into(),
                },
            ),
            env(2, done("staging", "payments", Status::Passed)),
            env(3, done("staging", APPROVAL, Status::Passed)),
            env(
                4,
                Event::StageFinished {
                    stage: "staging".into(),
                    status: Status::Passed,
                },
            ),
            env(
                5,
                Event::StageStarted {
                    stage: "prod".into(),
                },
            ),
            env(6, member("payments", 7)),
            env(7, member("inventory", 8)),
            env(8, done("prod", "inventory", Status::Skipped)),
        ];
        let r = TrainResume::from_events(&events, &["payments", "inventory"]);
        assert_eq!(r.next_seq, 9);
        assert!(r.passed.contains("staging") && !r.passed.contains("prod"));
        assert_eq!(r.approvals["staging"].status, Status::Passed);
        assert_eq!(
            r.finished("staging", "payments").map(|p| p.status),
            Some(Status::Passed)
        );
        assert_eq!(r.running("prod", "payments"), Some(7));
        assert_eq!(r.running("prod", "inventory"), Some(8));
        assert!(r.finished("prod", "inventory").is_none());
        assert_eq!(
            r.finished("staging", "payments")
                .unwrap()
                .outcome()
                .exit_code,
            exit::OK
        );
    }
}
