//! A release train in the cockpit, drawn into a TestBackend from the events its driver
//! journals (the train's run and each member's sub-run): the members x stages grid while
//! a canary runs, at the approval between stages and after train-bad's rollback, at
//! 120x40 and 80x24 (tests/snapshots/); a member opened from the grid and back; the
//! confirmations naming what a rollback rolls back, in order; the commands keys send; and
//! an interrupted train's replay (as `attach` shows a train nobody drives).

use std::collections::BTreeMap;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use glidepath::events::{CommandKind, Envelope, Event, StagePlan, Status, StepPlan};
use glidepath::ui::app::{App, Overlay};
use glidepath::ui::train::{TrainOptions, TrainView};
use glidepath::ui::{theme, view};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

/// 2026-12-06 09:00:00 UTC.
const T0: i64 = 1_796_547_600_000;

/// The train's own run.
const TRAIN: i64 = 7;

/// The members in the file's order, with their wave.
const MEMBERS: [(&str, usize); 3] = [("payments", 1), ("inventory", 1), ("checkout", 2)];

/// A train's cockpit fed event by event, each run with its own sequence.
struct Train {
    app: App,
    at_ms: i64,
    seqs: BTreeMap<i64, u64>,
    /// Each member's run in each stage, as the driver numbers them.
    runs: BTreeMap<(String, String), i64>,
    /// Every event fed, in order (what an attached cockpit replays from the journal).
    journal: Vec<Envelope>,
}

impl Train {
    fn new() -> Self {
        let theme = theme::load("default", None).unwrap();
        let mut app = App::new(theme, "train of 3 members".into(), false, Vec::new());
        let versions = MEMBERS
            .iter()
            .map(|(m, _)| (m.to_string(), "2.0.0".to_string()))
            .collect();
        app.train = Some(TrainView::new(TrainOptions {
            run: TRAIN,
            versions,
            stop_on_failure: false,
        }));
        let mut t = Train {
            app,
            at_ms: T0,
            seqs: BTreeMap::new(),
            runs: BTreeMap::new(),
            journal: Vec::new(),
        };
        t.emit(
            TRAIN,
            0,
            Event::RunStarted {
                pipeline: "shop-2".into(),
                service: "train".into(),
                stages: vec![plan("staging", true), plan("prod", false)],
                resumed: false,
            },
        );
        t
    }

    fn emit(&mut self, run: i64, seconds: i64, event: Event) -> &mut Self {
        let seq = self.seqs.entry(run).or_insert(0);
        *seq += 1;
        self.at_ms += seconds * 1000;
        let env = Envelope {
            run,
            seq: *seq,
            at_ms: self.at_ms,
            event,
        };
        self.app.apply(&env);
        self.journal.push(env);
        self
    }

    fn stage(&mut self, stage: &str) -> &mut Self {
        self.emit(
            TRAIN,
            1,
            Event::StageStarted {
                stage: stage.into(),
            },
        )
    }

    /// The train starts `member` in `stage`: its step, its sub-run, the sub-run's plan.
    fn start(&mut self, stage: &str, member: &str) -> &mut Self {
        let run = TRAIN + 1 + self.runs.len() as i64;
        self.runs.insert((stage.into(), member.into()), run);
        let wave = MEMBERS.iter().find(|(m, _)| *m == member).unwrap().1;
        self.emit(
            TRAIN,
            0,
            Event::StepStarted {
                stage: stage.into(),
                step: member.into(),
                kind: "member".into(),
            },
        );
        self.emit(
            TRAIN,
            0,
            Event::Member {
                stage: stage.into(),
                member: member.into(),
                run,
                wave,
            },
        );
        let release = if stage == "prod" {
            ("release", "release", "canary 25% → 50% → 100%")
        } else {
            ("deploy", "deploy", "apply app/ and wait for the rollout")
        };
        self.emit(
            run,
            0,
            Event::RunStarted {
                pipeline: member.into(),
                service: member.into(),
                stages: vec![StagePlan {
                    name: stage.into(),
                    steps: vec![step_plan(release.0, release.1, release.2, None)],
                }],
                resumed: false,
            },
        );
        self.emit(
            run,
            0,
            Event::StageStarted {
                stage: stage.into(),
            },
        );
        self.emit(
            run,
            1,
            Event::StepStarted {
                stage: stage.into(),
                step: release.0.into(),
                kind: release.1.into(),
            },
        )
    }

    fn run_of(&self, stage: &str, member: &str) -> i64 {
        self.runs[&(stage.to_string(), member.to_string())]
    }

    /// A member's canary at `weight` percent, as its own run says it.
    fn canary(&mut self, member: &str, weight: u8) -> &mut Self {
        let run = self.run_of("prod", member);
        self.emit(
            run,
            2,
            Event::Traffic {
                stage: "prod".into(),
                step: "release".into(),
                weight,
                note: format!("canary {weight}%: 1 canary and 3 stable replicas ready"),
                actual: Some(weight),
                planned: Some(weight),
                replicas: Vec::new(),
            },
        );
        self.emit(
            run,
            0,
            Event::StepState {
                stage: "prod".into(),
                step: "release".into(),
                status: Status::Running,
                message: format!("canary {weight}%"),
            },
        );
        self.emit(
            run,
            0,
            Event::Log {
                stage: "prod".into(),
                step: "release".into(),
                source: "traffic".into(),
                line: format!("canary {weight}%: 1 canary and 3 stable replicas ready"),
            },
        )
    }

    /// A member's sub-run ends with `status`; the train journals its state in the stage.
    fn end(&mut self, stage: &str, member: &str, status: Status, summary: &str) -> &mut Self {
        let run = self.run_of(stage, member);
        let (own, exit_code) = match status {
            Status::Passed => (Status::Passed, 0),
            _ => (Status::RolledBack, 1),
        };
        let step = if stage == "prod" { "release" } else { "deploy" };
        self.emit(run, 3, finished(stage, step, own, summary));
        self.emit(
            run,
            0,
            Event::RunFinished {
                status: own,
                exit_code,
                reason: summary.into(),
            },
        );
        self.emit(TRAIN, 0, finished(stage, member, status, summary))
    }

    fn through_staging(&mut self) -> &mut Self {
        self.stage("staging");
        self.start("staging", "payments")
            .start("staging", "inventory");
        self.end("staging", "payments", Status::Passed, "promoted in staging");
        self.end(
            "staging",
            "inventory",
            Status::Passed,
            "promoted in staging",
        );
        self.start("staging", "checkout");
        self.end("staging", "checkout", Status::Passed, "promoted in staging")
    }

    /// The train waits for its one approval between staging and prod.
    fn waiting() -> Self {
        let mut t = Train::new();
        t.through_staging();
        t.emit(
            TRAIN,
            1,
            Event::StepStarted {
                stage: "staging".into(),
                step: "approve".into(),
                kind: "approval".into(),
            },
        );
        t.emit(
            TRAIN,
            0,
            Event::StepState {
                stage: "staging".into(),
                step: "approve".into(),
                status: Status::WaitingForApproval,
                message: "every member passed staging; approve to move the whole train to prod"
                    .into(),
            },
        );
        t
    }

    /// In prod: inventory promoted, payments' canary at 25%, checkout not started.
    fn running() -> Self {
        let mut t = Train::waiting();
        t.emit(
            TRAIN,
            5,
            finished("staging", "approve", Status::Passed, "approved by ana"),
        );
        t.emit(
            TRAIN,
            0,
            Event::StageFinished {
                stage: "staging".into(),
                status: Status::Passed,
            },
        );
        t.stage("prod");
        t.start("prod", "payments").start("prod", "inventory");
        t.canary("payments", 25);
        t.end("prod", "inventory", Status::Passed, "promoted in prod");
        t
    }

    /// train-bad: checkout's canary fails in prod, the train rolls back inventory, then
    /// payments.
    fn rolled_back() -> Self {
        let mut t = Train::running();
        t.canary("payments", 100);
        t.end("prod", "payments", Status::Passed, "promoted in prod");
        t.start("prod", "checkout").canary("checkout", 50);
        let why =
            "prod/release failed: analysis failed 2 times (limit 1): key SLI failed: error_ratio";
        t.end("prod", "checkout", Status::Failed, why);
        for m in ["inventory", "payments"] {
            t.emit(
                TRAIN,
                1,
                Event::StepState {
                    stage: "prod".into(),
                    step: m.into(),
                    status: Status::Running,
                    message: "rolling back".into(),
                },
            );
            t.emit(
                TRAIN,
                0,
                Event::Log {
                    stage: "prod".into(),
                    step: m.into(),
                    source: "release".into(),
                    line: format!("Deployment shop/{m} back on 1.0.0"),
                },
            );
            let summary = format!("rolled back: Deployment shop/{m} back on 1.0.0");
            t.emit(TRAIN, 1, finished("prod", m, Status::RolledBack, &summary));
        }
        t.emit(
            TRAIN,
            0,
            Event::StageFinished {
                stage: "prod".into(),
                status: Status::RolledBack,
            },
        );
        t.emit(
            TRAIN,
            0,
            Event::RunFinished {
                status: Status::RolledBack,
                exit_code: 1,
                reason: format!("checkout failed in prod: {why}; rolled back inventory, payments"),
            },
        );
        t
    }

    fn key(&mut self, code: KeyCode) -> Option<CommandKind> {
        self.app.key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    /// The cockpit drawn in a `w` x `h` terminal.
    fn render(&mut self, w: u16, h: u16) -> String {
        self.app.resize(w, h);
        let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
        term.draw(|f| view::draw(f, &self.app)).unwrap();
        let buffer = term.backend().buffer().clone();
        (0..h)
            .map(|y| {
                let row: String = (0..w).map(|x| buffer[(x, y)].symbol()).collect();
                row + "\n"
            })
            .collect()
    }
}

fn step_plan(name: &str, kind: &str, description: &str, group: Option<String>) -> StepPlan {
    StepPlan {
        name: name.into(),
        kind: kind.into(),
        description: description.into(),
        group,
    }
}

/// A stage of the train's plan: its members by wave, then (`approval`) the approval.
fn plan(stage: &str, approval: bool) -> StagePlan {
    let mut steps: Vec<StepPlan> = MEMBERS
        .iter()
        .map(|(m, wave)| {
            let what = format!("{m}.yaml ({m}) in wave {wave}");
            step_plan(m, "member", &what, Some(format!("wave {wave}")))
        })
        .collect();
    if approval {
        steps.push(step_plan(
            "approve",
            "approval",
            "one approval moves the train",
            None,
        ));
    }
    StagePlan {
        name: stage.into(),
        steps,
    }
}

fn finished(stage: &str, step: &str, status: Status, summary: &str) -> Event {
    Event::StepFinished {
        stage: stage.into(),
        step: step.into(),
        status,
        verdict: None,
        summary: summary.into(),
        evidence: Vec::new(),
        evaluation: None,
    }
}

/// The grid's row of `member`.
fn row<'a>(screen: &'a str, member: &str) -> &'a str {
    let needle = format!("{member} 2.0.0");
    screen
        .lines()
        .find(|l| l.contains(&needle))
        .unwrap_or_else(|| panic!("no row for {member}:\n{screen}"))
}

#[test]
fn snapshot_the_grid_while_a_canary_runs() {
    let mut t = Train::running();
    let wide = t.render(120, 40);
    assert!(row(&wide, "payments").contains("▶ canary 25%"), "{wide}");
    assert!(row(&wide, "inventory").contains("✓ promoted"), "{wide}");
    assert!(row(&wide, "checkout").contains("○ pending"), "{wide}");
    assert!(wide.contains("wave 1") && wide.contains("wave 2"), "{wide}");
    assert!(
        wide.contains("payments/release traffic canary 25%"),
        "{wide}"
    );
    insta::assert_snapshot!("train_running_120x40", wide);
    insta::assert_snapshot!("train_running_80x24", t.render(80, 24));
}

#[test]
fn snapshot_the_grid_waiting_for_the_trains_approval() {
    let mut t = Train::waiting();
    let wide = t.render(120, 40);
    assert!(wide.contains("? waits · a approves"), "{wide}");
    insta::assert_snapshot!("train_waiting_120x40", wide);
    let small = t.render(80, 24);
    assert!(
        small.contains(" a approve"),
        "the hint bar offers approval:\n{small}"
    );
    insta::assert_snapshot!("train_waiting_80x24", small);
    assert_eq!(t.key(KeyCode::Char('a')), Some(CommandKind::Approve));
    assert_eq!(t.app.command_member(), None, "the approval is the train's");
}

#[test]
fn snapshot_the_grid_after_train_bad_rolled_back() {
    let mut t = Train::rolled_back();
    let wide = t.render(120, 40);
    assert!(row(&wide, "payments").contains("↺ rolled back"), "{wide}");
    assert!(row(&wide, "inventory").contains("↺ rolled back"), "{wide}");
    assert!(row(&wide, "checkout").contains("✗ failed"), "{wide}");
    assert!(
        row(&wide, "checkout").contains("✓ promoted"),
        "staging stays:\n{wide}"
    );
    insta::assert_snapshot!("train_rolled_back_120x40", wide);
    insta::assert_snapshot!("train_rolled_back_80x24", t.render(80, 24));
}

#[test]
fn a_member_opens_into_its_own_views_and_esc_returns_to_the_grid() {
    let mut t = Train::running();
    assert_eq!(t.key(KeyCode::Enter), None);
    let member = t.render(120, 40);
    assert!(
        member.contains("train shop-2 › payments in prod"),
        "{member}"
    );
    assert!(member.contains("Traffic"), "its traffic pane:\n{member}");
    assert_eq!(t.app.run.run, t.run_of("prod", "payments"));
    insta::assert_snapshot!("train_member_120x40", member);
    let small = t.render(80, 24);
    insta::assert_snapshot!("train_member_80x24", small);
    // A member's events still arrive while it is open, and keys act on it alone.
    t.canary("payments", 50);
    assert_eq!(t.app.run.traffic.as_ref().map(|tr| tr.weight), Some(50));
    assert_eq!(t.key(KeyCode::Char('p')), Some(CommandKind::Pause));
    assert_eq!(t.app.command_member().as_deref(), Some("payments"));
    assert_eq!(t.key(KeyCode::Esc), None);
    assert!(!t.app.quit, "Esc goes back to the train, it does not quit");
    let grid = t.render(120, 40);
    assert!(row(&grid, "payments").contains("▶ canary 50%"), "{grid}");
    assert_eq!(t.app.command_member(), None);
    assert_eq!(t.app.run.run, TRAIN);
    // Down to inventory, which opens its own run.
    t.key(KeyCode::Char('j'));
    t.key(KeyCode::Enter);
    assert_eq!(t.app.run.run, t.run_of("prod", "inventory"));
}

#[test]
fn snapshot_the_confirmations_name_what_a_rollback_rolls_back_in_order() {
    let mut t = Train::running();
    assert_eq!(t.key(KeyCode::Char('r')), None, "a rollback asks first");
    assert!(matches!(t.app.overlay, Some(Overlay::Confirm { .. })));
    let train = t.render(120, 40);
    let running = train.find("1. payments 2.0.0: rolls its own prod back");
    let promoted = train.find("2. inventory 2.0.0: promoted in prod, rolled back");
    assert!(running.is_some() && promoted.is_some(), "{train}");
    assert!(
        !train.contains("checkout 2.0.0:"),
        "checkout never started:\n{train}"
    );
    insta::assert_snapshot!("train_confirm_rollback_120x40", train);
    insta::assert_snapshot!("train_confirm_rollback_80x24", t.render(80, 24));
    assert_eq!(t.key(KeyCode::Char('y')), Some(CommandKind::Rollback));
    assert_eq!(t.app.command_member(), None, "the whole train rolls back");

    // payments promoted too: at the approval of a later stage all of a wave roll back,
    // later members first.
    let mut t = Train::waiting();
    t.key(KeyCode::Char('r'));
    let all = t.render(120, 40);
    let order: Vec<usize> = [
        "1. checkout 2.0.0",
        "2. inventory 2.0.0",
        "3. payments 2.0.0",
    ]
    .iter()
    .map(|s| all.find(s).unwrap_or_else(|| panic!("no {s}:\n{all}")))
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{all}");

    // One member's rollback: it first, then what the train rolls back after it.
    let mut t = Train::running();
    t.key(KeyCode::Enter);
    t.key(KeyCode::Char('r'));
    let member = t.render(80, 24);
    assert!(
        member.contains("Roll back member payments 2.0.0 in prod?"),
        "{member}"
    );
    insta::assert_snapshot!("train_confirm_member_80x24", member);
    assert_eq!(t.key(KeyCode::Char('y')), Some(CommandKind::Rollback));
    assert_eq!(t.app.command_member().as_deref(), Some("payments"));
}

#[test]
fn the_help_lists_the_trains_keys() {
    let mut t = Train::running();
    t.key(KeyCode::Char('?'));
    // Tall enough for the whole help, the train's section last.
    let help = t.render(120, 80);
    assert!(help.contains("Release train"), "{help}");
    assert!(help.contains("open the member: its stages"), "{help}");
    assert!(
        help.contains("pause (or resume) every running member"),
        "{help}"
    );
    let hints = {
        t.key(KeyCode::Esc);
        t.render(120, 40)
    };
    let bar = hints.lines().last().unwrap_or_default();
    assert!(
        bar.contains("open member") && bar.contains("pause all"),
        "{bar}"
    );
}

#[test]
fn a_grid_on_tiny_terminals_never_panics() {
    let mut t = Train::rolled_back();
    for (w, h) in [(1, 1), (20, 5), (40, 10), (80, 24), (200, 60)] {
        t.render(w, h);
    }
    t.key(KeyCode::Enter);
    t.render(30, 8);
}

/// `attach` on a train nobody drives replays its journal as interrupted: what was in
/// flight in the train and in each member's run shows as pending, as a resume starts it.
#[test]
fn an_interrupted_trains_replay_shows_its_members_steps_in_flight_as_pending() {
    let mut t = Train::new();
    t.stage("staging").start("staging", "payments");
    let mut replayed = Train::new();
    replayed.app.replay(&t.journal, true);
    let grid = replayed.render(120, 40);
    assert!(row(&grid, "payments").contains("○ pending"), "{grid}");
    replayed.key(KeyCode::Enter);
    assert_eq!(replayed.app.run.run, t.run_of("staging", "payments"));
    let deploy = &replayed.app.run.stages[0].steps[0];
    assert_eq!(
        (deploy.name.as_str(), deploy.status),
        ("deploy", Status::Pending)
    );
}
