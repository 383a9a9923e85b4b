//! A release train in the cockpit: the train's own run (its plan names every member, by
//! wave, in every stage, and the approval between stages), each member's sub-runs, the
//! grid's cursor and the member opened from it. While a member is open the cockpit's views
//! draw that member's run; the train's own run waits here until Esc brings it back.

use std::collections::BTreeMap;

use super::state::RunView;
use crate::events::{Envelope, Event, Status};

/// How the cockpit knows it shows a train.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// The train's own run.
    pub run: i64,
    /// Each member's version (its `set: { version }`), for confirmations.
    pub versions: BTreeMap<String, String>,
    /// `onFailure: stop`: a member's failure (or its rollback by the operator) leaves
    /// what the stage promoted, and its running partners stop instead of rolling back.
    pub stop_on_failure: bool,
}

/// A member's sub-run in one stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRun {
    /// The train's stage.
    pub stage: String,
    /// The member.
    pub member: String,
    /// Its own run.
    pub run: i64,
    /// Its dependency wave, from 1.
    pub wave: usize,
}

/// A member row of the grid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    /// The member's name.
    pub name: String,
    /// Its wave, from 1.
    pub wave: usize,
}

/// The member open in the cockpit's views.
#[derive(Debug, Clone)]
pub struct Opened {
    /// The member.
    pub member: String,
    /// Its run shown.
    pub run: i64,
    /// The stage of that run.
    pub stage: String,
}

/// The train's state besides what the views draw.
#[derive(Debug, Clone, Default)]
pub struct TrainView {
    /// The train's run, its members' versions.
    pub options: TrainOptions,
    /// Every member sub-run, as the train started them.
    pub runs: Vec<MemberRun>,
    /// Member runs not shown now, by run.
    pub views: BTreeMap<i64, RunView>,
    /// The train's own run while a member is open.
    pub stash: RunView,
    /// The grid's selected member (index into [`TrainView::members`]).
    pub cursor: usize,
    /// The member open now.
    pub open: Option<Opened>,
}

/// What a grid cell shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    /// The member's status in the stage, as the train journals it.
    pub status: Status,
    /// In words: `pending`, `canary 50%`, `promoted`, `rolled back`.
    pub word: String,
}

impl TrainView {
    /// A train view for `options.run`.
    pub fn new(options: TrainOptions) -> Self {
        TrainView {
            options,
            ..TrainView::default()
        }
    }

    /// Folds an event of the train or of a member into its run's view; `shown` is the run
    /// the cockpit draws now.
    pub fn apply(&mut self, shown: &mut RunView, env: &Envelope) {
        if let Event::Member {
            stage,
            member,
            run,
            wave,
        } = &env.event
            && env.run == self.options.run
        {
            self.runs.push(MemberRun {
                stage: stage.clone(),
                member: member.clone(),
                run: *run,
                wave: *wave,
            });
        }
        self.fold(shown, env);
        // The train's output pane carries its members' lines too, each under its member.
        if let Event::Log {
            stage,
            step,
            source,
            line,
        } = &env.event
            && let Some(m) = self.runs.iter().find(|r| r.run == env.run)
        {
            let line = Envelope {
                run: self.options.run,
                event: Event::Log {
                    stage: stage.clone(),
                    step: format!("{}/{step}", m.member),
                    source: source.clone(),
                    line: line.clone(),
                },
                ..env.clone()
            };
            self.fold(shown, &line);
        }
    }

    /// Folds an event into the view of its run.
    fn fold(&mut self, shown: &mut RunView, env: &Envelope) {
        let showing = self.open.as_ref().map_or(self.options.run, |o| o.run);
        if env.run == showing {
            shown.apply(env);
        } else if env.run == self.options.run {
            self.stash.apply(env);
        } else {
            self.views.entry(env.run).or_default().apply(env);
        }
    }

    /// The train's own run, given the run shown.
    pub fn train<'a>(&'a self, shown: &'a RunView) -> &'a RunView {
        if self.open.is_some() {
            &self.stash
        } else {
            shown
        }
    }

    /// A member's run, given the run shown.
    fn member_run<'a>(&'a self, shown: &'a RunView, run: i64) -> Option<&'a RunView> {
        match &self.open {
            Some(o) if o.run == run => Some(shown),
            _ => self.views.get(&run),
        }
    }

    /// The members, wave by wave, as the train's plan lists them.
    pub fn members(&self, shown: &RunView) -> Vec<MemberRow> {
        let Some(stage) = self.train(shown).stages.first() else {
            return Vec::new();
        };
        stage
            .steps
            .iter()
            .filter(|s| s.kind == "member")
            .map(|s| MemberRow {
                name: s.name.clone(),
                wave: s
                    .group
                    .as_deref()
                    .and_then(|g| g.strip_prefix("wave "))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1),
            })
            .collect()
    }

    /// The member's cell in `stage`.
    pub fn cell(&self, shown: &RunView, stage: &str, member: &str) -> Cell {
        let train = self.train(shown);
        let step = train
            .stages
            .iter()
            .find(|s| s.name == stage)
            .and_then(|s| s.steps.iter().find(|st| st.name == member));
        let Some(step) = step else {
            return Cell {
                status: Status::Pending,
                word: "pending".into(),
            };
        };
        let word = match step.status {
            Status::Running => self.phase(shown, stage, member, step.message.as_deref()),
            Status::Passed | Status::Warning => "promoted".into(),
            Status::Aborted => "stopped".into(),
            other => other.word().replace('-', " "),
        };
        Cell {
            status: step.status,
            word,
        }
    }

    /// What a running member does now: the train's own message (`rolling back`), else its
    /// run's: paused, waiting, its release's phase (`canary 50%`) or its step.
    fn phase(&self, shown: &RunView, stage: &str, member: &str, message: Option<&str>) -> String {
        if let Some(m) = message {
            return m.to_owned();
        }
        let run = self
            .runs
            .iter()
            .rfind(|r| r.stage == stage && r.member == member)
            .and_then(|r| self.member_run(shown, r.run));
        let Some(run) = run else {
            return "starting".into();
        };
        if run.paused {
            return "paused".into();
        }
        let active = run.active_steps();
        let Some((_, step)) = active.first() else {
            return "running".into();
        };
        if step.status == Status::WaitingForApproval {
            return format!("{} waits for approval", step.name);
        }
        let text = step.text();
        match &run.traffic {
            Some(t) if step.kind == "release" => {
                let how = if step.description.contains("blue") {
                    "blue-green"
                } else {
                    "canary"
                };
                let phase = format!("{how} {}%", t.weight);
                if text.is_empty() || text.starts_with(how) {
                    phase
                } else {
                    format!("{phase} · {text}")
                }
            }
            _ if step.kind == "release" && !text.is_empty() => text.to_owned(),
            _ => step.name.clone(),
        }
    }

    /// The approval step of `stage`, if the train waits for one there.
    pub fn approval<'a>(
        &'a self,
        shown: &'a RunView,
        stage: &str,
    ) -> Option<&'a crate::report::StepReport> {
        self.train(shown)
            .stages
            .iter()
            .find(|s| s.name == stage)?
            .steps
            .iter()
            .find(|s| s.kind == "approval")
    }

    /// The member under the cursor.
    pub fn selected(&self, shown: &RunView) -> Option<MemberRow> {
        let members = self.members(shown);
        members
            .get(self.cursor.min(members.len().saturating_sub(1)))
            .cloned()
    }

    /// Moves the cursor `up` or down one member.
    pub fn move_cursor(&mut self, shown: &RunView, up: bool) {
        let last = self.members(shown).len().saturating_sub(1);
        self.cursor = if up {
            self.cursor.saturating_sub(1)
        } else {
            (self.cursor + 1).min(last)
        };
    }

    /// Opens the selected member's latest run in `shown`'s place; false when it has none.
    pub fn open_selected(&mut self, shown: &mut RunView) -> bool {
        let Some(row) = self.selected(shown) else {
            return false;
        };
        let Some(latest) = self.runs.iter().rfind(|r| r.member == row.name).cloned() else {
            return false;
        };
        let view = self.views.remove(&latest.run).unwrap_or_default();
        self.stash = std::mem::replace(shown, view);
        self.open = Some(Opened {
            member: latest.member,
            run: latest.run,
            stage: latest.stage,
        });
        true
    }

    /// Back to the grid: the train's run is shown again.
    pub fn close(&mut self, shown: &mut RunView) {
        if let Some(o) = self.open.take() {
            let member = std::mem::replace(shown, std::mem::take(&mut self.stash));
            self.views.insert(o.run, member);
        }
    }

    /// What a rollback now would roll back, in the order it would: `first` (a member
    /// rolled back by the operator) and the members running in the current stage (each
    /// rolls its own stage back), then the members the stage promoted, later waves first
    /// and inside a wave the plan's order reversed. Each with its version. A member's
    /// rollback under `onFailure: stop` rolls back that member alone.
    pub fn rollback_plan(&self, shown: &RunView, first: Option<&str>) -> RollbackPlan {
        let train = self.train(shown);
        let stage = train
            .current_stage()
            .map(|s| s.name.clone())
            .unwrap_or_default();
        let members = self.members(shown);
        let status = |m: &str| self.cell(shown, &stage, m).status;
        let mut running: Vec<String> = first.map(str::to_owned).into_iter().collect();
        if first.is_some() && self.options.stop_on_failure {
            return RollbackPlan {
                stage,
                running: running.iter().map(|m| self.named(m)).collect(),
                promoted: Vec::new(),
            };
        }
        running.extend(
            members
                .iter()
                .filter(|r| status(&r.name) == Status::Running && Some(r.name.as_str()) != first)
                .map(|r| r.name.clone()),
        );
        let mut promoted: Vec<&MemberRow> = members
            .iter()
            .filter(|r| matches!(status(&r.name), Status::Passed | Status::Warning))
            .filter(|r| !running.contains(&r.name))
            .collect();
        promoted.sort_by_key(|r| std::cmp::Reverse(r.wave));
        let mut order: Vec<&MemberRow> = Vec::new();
        for wave in promoted.chunk_by(|a, b| a.wave == b.wave) {
            order.extend(wave.iter().rev());
        }
        RollbackPlan {
            stage,
            running: running.iter().map(|m| self.named(m)).collect(),
            promoted: order.iter().map(|r| self.named(&r.name)).collect(),
        }
    }

    /// A member with its version: `payments 2.0.0`.
    pub fn named(&self, member: &str) -> String {
        match self.options.versions.get(member) {
            Some(v) => format!("{member} {v}"),
            None => member.to_owned(),
        }
    }
}

/// What a rollback of the train (or of one member) would roll back, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackPlan {
    /// The stage rolled back.
    pub stage: String,
    /// Members that roll their own stage back first (running now, or the one asked for).
    pub running: Vec<String>,
    /// Then the members the stage promoted, in reverse dependency order.
    pub promoted: Vec<String>,
}
