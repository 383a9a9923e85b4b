//! The cockpit drawn into a TestBackend, in the states an operator meets: snapshots at
//! 120x40 and 80x24 (tests/snapshots/), key handling, and the styles of status glyphs that
//! snapshots do not capture.

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use glidepath::events::{
    AnalysisPart, BudgetFacts, BurnFacts, CommandKind, Envelope, Event, Evidence, StagePlan,
    Status, StepPlan, Verdict, VersionReplicas,
};
use glidepath::ui::app::{App, Overlay, Pane};
use glidepath::ui::{theme, view};
use glidepath::units::Span;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

/// 2026-11-27 12:40:00 UTC.
const T0: i64 = 1_795_783_200_000;

struct Script {
    seq: u64,
    at_ms: i64,
    app: App,
}

impl Script {
    fn new(theme: &str) -> Self {
        let theme = theme::load(theme, None).unwrap();
        Script {
            seq: 0,
            at_ms: T0,
            app: {
                let mut app = App::new(theme, "prod-eu/shop".into(), false, vec!["prod".into()]);
                app.run.lease = Some("ana (this run)".into());
                app
            },
        }
    }

    fn after(&mut self, seconds: i64, event: Event) -> &mut Self {
        self.seq += 1;
        self.at_ms += seconds * 1000;
        self.app.apply(&Envelope {
            run: 42,
            seq: self.seq,
            at_ms: self.at_ms,
            event,
        });
        self
    }

    fn started(&mut self) -> &mut Self {
        let step = |name: &str, kind: &str, description: &str| StepPlan {
            name: name.into(),
            kind: kind.into(),
            description: description.into(),
            group: None,
        };
        self.after(
            0,
            Event::RunStarted {
                pipeline: "checkout".into(),
                service: "checkout".into(),
                resumed: false,
                stages: vec![
                    StagePlan {
                        name: "staging".into(),
                        steps: vec![
                            step("preflight", "preflight", "platform contract and policies"),
                            step("deploy", "deploy", "apply app/ and wait for the rollout"),
                            step("smoke", "test", "12 HTTP checks"),
                            step("evaluate", "evaluate", "SLO checkout over 5m"),
                        ],
                    },
                    StagePlan {
                        name: "prod".into(),
                        steps: vec![
                            step("approval", "approval", "manual approval"),
                            step("release", "release", "canary 10% → 50% → 100%"),
                        ],
                    },
                ],
            },
        )
    }

    fn step(&mut self, seconds: i64, stage: &str, step: &str, kind: &str) -> &mut Self {
        self.after(
            seconds,
            Event::StepStarted {
                stage: stage.into(),
                step: step.into(),
                kind: kind.into(),
            },
        )
    }

    fn done(
        &mut self,
        seconds: i64,
        stage: &str,
        step: &str,
        status: Status,
        summary: &str,
        evidence: Vec<Evidence>,
    ) -> &mut Self {
        self.after(
            seconds,
            Event::StepFinished {
                stage: stage.into(),
                step: step.into(),
                status,
                verdict: None,
                summary: summary.into(),
                evidence,
                evaluation: None,
            },
        )
    }

    fn log(&mut self, step: &str, source: &str, line: &str) -> &mut Self {
        self.after(
            0,
            Event::Log {
                stage: "staging".into(),
                step: step.into(),
                source: source.into(),
                line: line.into(),
            },
        )
    }

    /// The cockpit drawn in a `w` x `h` terminal (which it is told, as the loop does).
    fn render(&mut self, w: u16, h: u16) -> String {
        self.app.resize(w, h);
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| view::draw(f, &self.app)).unwrap();
        let buf = t.backend().buffer().clone();
        let mut out = String::new();
        for y in 0..h {
            for x in 0..w {
                out.push_str(buf[(x, y)].symbol());
            }
            out.push('\n');
        }
        out
    }
}

fn preflight_evidence(broken: bool) -> Vec<Evidence> {
    let mut e = vec![
        Evidence::new("kubernetes version", Verdict::Pass, "v1.32.0").expected(">=1.27"),
        Evidence::new("StorageClass fast-ssd", Verdict::Pass, "present"),
        Evidence::new("policy requests-and-limits", Verdict::Pass, "6 objects"),
    ];
    if broken {
        e.push(
            Evidence::new(
                "CRD xdatabases.platform.example.org",
                Verdict::Fail,
                "not served",
            )
            .expected("Established"),
        );
        e.push(Evidence::new(
            "policy trusted-registries",
            Verdict::Fail,
            "Deployment/checkout: image docker.io/evil/checkout:2 is not from registry.example.org",
        ));
    }
    e
}

/// Staging done, prod's canary paused at 10% waiting for approval.
fn canary_paused() -> Script {
    let mut s = Script::new("default");
    s.started()
        .after(
            0,
            Event::StageStarted {
                stage: "staging".into(),
            },
        )
        .step(0, "staging", "preflight", "preflight")
        .done(
            2,
            "staging",
            "preflight",
            Status::Passed,
            "9 checks passed",
            preflight_evidence(false),
        )
        .step(0, "staging", "deploy", "deploy")
        .log("deploy", "deploy", "deployment/checkout: 4/4 ready")
        .done(
            31,
            "staging",
            "deploy",
            Status::Passed,
            "checkout 4/4 ready",
            vec![],
        )
        .step(0, "staging", "smoke", "test")
        .log("smoke", "http", "GET /healthz → 200 in 12 ms")
        .done(
            3,
            "staging",
            "smoke",
            Status::Passed,
            "12/12 checks passed",
            vec![],
        )
        .step(0, "staging", "evaluate", "evaluate")
        .done(
            1,
            "staging",
            "evaluate",
            Status::Passed,
            "checkout over 5m: score 100.0, pass",
            vec![],
        )
        .after(
            0,
            Event::StageFinished {
                stage: "staging".into(),
                status: Status::Passed,
            },
        )
        .after(
            0,
            Event::StageStarted {
                stage: "prod".into(),
            },
        )
        .step(0, "prod", "approval", "approval")
        .done(
            1,
            "prod",
            "approval",
            Status::Passed,
            "approved automatically (pass)",
            vec![],
        )
        .step(0, "prod", "release", "release")
        .log("release", "release", "canary weight 10% (route 90/10)")
        .after(
            1,
            Event::Traffic {
                stage: "prod".into(),
                step: "release".into(),
                weight: 10,
                note: "HTTPRoute checkout weights 90/10 (stable/canary)".into(),
                actual: Some(10),
                planned: None,
                replicas: vec![
                    VersionReplicas {
                        role: "stable".into(),
                        version: "1.0.0".into(),
                        ready: 4,
                        desired: 4,
                    },
                    VersionReplicas {
                        role: "new".into(),
                        version: "2.0.0".into(),
                        ready: 0,
                        desired: 1,
                    },
                ],
            },
        );
    for (i, (errors, p95)) in [(0.0011, 182.0), (0.0009, 176.0), (0.0014, 190.0)]
        .into_iter()
        .enumerate()
    {
        s.after(
            if i == 0 { 0 } else { 2 },
            Event::Analysis {
                stage: "prod".into(),
                step: "release".into(),
                values: [
                    ("error_ratio".to_owned(), Some(errors)),
                    ("latency_p95_ms".to_owned(), Some(p95)),
                ]
                .into(),
                stable: [
                    ("error_ratio".to_owned(), Some(0.0010)),
                    ("latency_p95_ms".to_owned(), Some(p95 - 8.0)),
                ]
                .into(),
                targets: [
                    ("error_ratio".to_owned(), "<=0.01".to_owned()),
                    ("latency_p95_ms".to_owned(), "<300".to_owned()),
                ]
                .into(),
                warnings: [("latency_p95_ms".to_owned(), "<350".to_owned())].into(),
                verdict: Verdict::Pass,
                judgement: None,
                part: Some(AnalysisPart::Watch),
            },
        );
    }
    s.after(
        2,
        Event::StepState {
            stage: "prod".into(),
            step: "release".into(),
            status: Status::WaitingForApproval,
            message: "canary 10%: waiting for approval".into(),
        },
    );
    s.app.now_ms = s.at_ms + 5_000;
    s
}

/// The staging gate failed: the SLO's latency objective broke, error ratio held.
fn gate_failed() -> Script {
    let mut s = Script::new("default");
    s.started()
        .after(
            0,
            Event::StageStarted {
                stage: "staging".into(),
            },
        )
        .step(0, "staging", "preflight", "preflight")
        .done(
            2,
            "staging",
            "preflight",
            Status::Passed,
            "9 checks passed",
            preflight_evidence(false),
        )
        .step(0, "staging", "deploy", "deploy")
        .done(
            20,
            "staging",
            "deploy",
            Status::Passed,
            "checkout 4/4 ready",
            vec![],
        )
        .step(0, "staging", "smoke", "test")
        .done(
            3,
            "staging",
            "smoke",
            Status::Passed,
            "12/12 checks passed",
            vec![],
        )
        .step(0, "staging", "evaluate", "evaluate");
    // The evidence an `evaluate` step really records: the SLO of the delivery fixtures
    // (queries for service checkout over 5m), scored for these values.
    let slo = glidepath::slo::Slo::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/delivery/slo.yaml"),
        None,
    )
    .unwrap();
    let values = std::collections::BTreeMap::from([
        ("error_ratio".to_owned(), Some(0.0009)),
        ("latency_p95_ms".to_owned(), Some(412.7)),
    ]);
    let mut evaluation = glidepath::slo::score::evaluate(&slo, &values, &[]);
    let vars = std::collections::BTreeMap::from([
        ("service".to_owned(), "checkout".to_owned()),
        ("version".to_owned(), "2.0.0".to_owned()),
        ("window".to_owned(), "5m".to_owned()),
    ]);
    for o in &mut evaluation.objectives {
        o.query = slo
            .slis
            .get(&o.sli)
            .map(|q| glidepath::metrics::render(q, &vars));
    }
    let evidence = evaluation.evidence();
    s.after(
        1,
        Event::StepFinished {
            stage: "staging".into(),
            step: "evaluate".into(),
            status: Status::Failed,
            verdict: Some(Verdict::Fail),
            summary: "checkout over 5m: score 50.0, fail (score 50 below 75)".into(),
            evidence,
            evaluation: None,
        },
    )
    .after(
        0,
        Event::StageFinished {
            stage: "staging".into(),
            status: Status::Failed,
        },
    )
    .after(
        0,
        Event::RunFinished {
            status: Status::Failed,
            exit_code: 1,
            reason: "staging/evaluate failed: checkout over 5m: score 50.0, fail".into(),
        },
    );
    s
}

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

fn code(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

#[test]
fn snapshot_canary_paused_awaiting_approval() {
    let mut s = canary_paused();
    insta::assert_snapshot!("canary_paused_120x40", s.render(120, 40));
    insta::assert_snapshot!("canary_paused_80x24", s.render(80, 24));
}

#[test]
fn snapshot_budget_exhausted() {
    let mut s = Script::new("default");
    s.started()
        .after(
            0,
            Event::StageStarted {
                stage: "prod".into(),
            },
        )
        .step(0, "prod", "approval", "approval")
        .done(
            0,
            "prod",
            "approval",
            Status::Passed,
            "approved automatically (pass)",
            vec![],
        )
        .step(0, "prod", "release", "release");
    let hours = |h: u64| Span(Duration::from_secs(h * 3600));
    let remaining = Evidence::new("budget remaining", Verdict::Fail, "-12.4%")
        .expected(">= 25%")
        .detail("99.9% over 30d: 50.5 of 43.2 bad minutes spent; exhausted")
        .budget(BudgetFacts {
            remaining: Some(-0.124),
            target: 0.999,
            window: hours(720),
            exhaustion: Some(Span(Duration::ZERO)),
            min_remaining: Some(0.25),
        });
    let burns = [
        ("1h", "16.20x", Verdict::Fail, (1, 16.2, 14.4)),
        ("6h", "7.10x", Verdict::Warning, (6, 7.1, 6.0)),
        ("1d", "2.40x", Verdict::Pass, (24, 2.4, 3.0)),
        ("3d", "1.10x", Verdict::Pass, (72, 1.1, 1.0)),
    ]
    .into_iter()
    .map(|(w, v, verdict, (long, rate, threshold))| {
        Evidence::new(format!("burn rate {w}"), verdict, v).burn(BurnFacts {
            long: hours(long),
            short: Span(Duration::from_secs(long * 300)),
            long_rate: Some(rate),
            short_rate: Some(rate),
            threshold,
            max: None,
        })
    })
    .collect::<Vec<_>>();
    let mut evidence = vec![remaining];
    evidence.extend(burns);
    s.after(
        1,
        Event::StepFinished {
            stage: "prod".into(),
            step: "release".into(),
            status: Status::Failed,
            verdict: Some(Verdict::Fail),
            summary: "release held: budget remaining -12.4%, burn rate 1h 16.20x".into(),
            evidence,
            evaluation: None,
        },
    )
    .after(
        0,
        Event::RunFinished {
            status: Status::Failed,
            exit_code: 1,
            reason: "prod/release failed: release held".into(),
        },
    );
    let screen = s.render(120, 40);
    assert!(screen.contains("Error budget"), "{screen}");
    assert!(screen.contains("-12.4%"));
    insta::assert_snapshot!("budget_exhausted_120x40", screen);
    insta::assert_snapshot!("budget_exhausted_80x24", s.render(80, 24));
}

#[test]
fn snapshot_preflight_failure() {
    let mut s = Script::new("default");
    s.started()
        .after(
            0,
            Event::StageStarted {
                stage: "staging".into(),
            },
        )
        .step(0, "staging", "preflight", "preflight")
        .done(
            3,
            "staging",
            "preflight",
            Status::Failed,
            "2 of 5 checks failed; nothing was changed",
            preflight_evidence(true),
        )
        .after(
            0,
            Event::StageFinished {
                stage: "staging".into(),
                status: Status::Failed,
            },
        )
        .after(
            0,
            Event::RunFinished {
                status: Status::Failed,
                exit_code: 1,
                reason: "staging/preflight failed: 2 of 5 checks failed".into(),
            },
        );
    insta::assert_snapshot!("preflight_failure_120x40", s.render(120, 40));
    // Compact: 6 shows the pre-flight view in place of the stages.
    s.app.key(key('6'));
    assert_eq!(s.app.focus, Pane::Preflight);
    insta::assert_snapshot!("preflight_failure_80x24", s.render(80, 24));
}

#[test]
fn snapshot_gate_failed_with_its_detail_open() {
    let mut s = gate_failed();
    // The selection follows the last step that ran: the failed gate.
    s.app.key(code(KeyCode::Enter));
    assert_eq!(s.app.overlay, Some(Overlay::Detail));
    insta::assert_snapshot!("gate_detail_120x40", s.render(120, 40));
    insta::assert_snapshot!("gate_detail_80x24", s.render(80, 24));
}

#[test]
fn snapshot_rollback_in_progress() {
    let mut s = canary_paused();
    s.after(
        0,
        Event::Operator {
            command: CommandKind::Rollback,
            who: "ana".into(),
            accepted: true,
            reason: None,
            sender: None,
        },
    )
    .log(
        "release",
        "engine",
        "↺ rolling back stage prod: rollback requested by ana at prod/release",
    )
    .log(
        "release",
        "release",
        "route checkout: 100/0 (all traffic on stable)",
    )
    .after(
        1,
        Event::StepFinished {
            stage: "prod".into(),
            step: "release".into(),
            status: Status::RolledBack,
            verdict: None,
            summary: "rollback requested by ana at prod/release".into(),
            evidence: vec![],
            evaluation: None,
        },
    );
    insta::assert_snapshot!("rollback_in_progress_120x40", s.render(120, 40));
    insta::assert_snapshot!("rollback_in_progress_80x24", s.render(80, 24));
}

#[test]
fn snapshot_help_and_confirmation() {
    let mut s = canary_paused();
    s.app.key(key('?'));
    insta::assert_snapshot!("help_120x40", s.render(120, 40));
    insta::assert_snapshot!("help_80x24", s.render(80, 24));
    s.app.key(code(KeyCode::Esc));
    assert_eq!(s.app.overlay, None);
    // Rollback on a protected stage asks for the service name.
    assert_eq!(s.app.key(key('r')), None);
    insta::assert_snapshot!("confirm_protected_120x40", s.render(120, 40));
    for c in "checkou".chars() {
        assert_eq!(s.app.key(key(c)), None);
    }
    // Not yet the name: refused with a hint, still asking.
    assert_eq!(s.app.key(code(KeyCode::Enter)), None);
    assert!(
        s.app
            .toast
            .as_ref()
            .unwrap()
            .text
            .contains("type `checkout`")
    );
    s.app.key(key('t'));
    assert_eq!(s.app.key(code(KeyCode::Enter)), Some(CommandKind::Rollback));
    assert_eq!(s.app.overlay, None);
    insta::assert_snapshot!("confirm_protected_80x24", {
        s.app.key(key('x'));
        s.render(80, 24)
    });
}

/// The canary of [`canary_paused`] with an error budget gate's evidence and four SLIs, so
/// that every view has something to show.
fn canary_with_every_view() -> Script {
    let mut s = canary_paused();
    let budget = Evidence::new("budget remaining", Verdict::Pass, "62.0%")
        .expected(">= 25%")
        .detail("99.9% over 30d: 16.4 of 43.2 bad minutes spent")
        .budget(BudgetFacts {
            remaining: Some(0.62),
            target: 0.999,
            window: Span(Duration::from_secs(720 * 3600)),
            exhaustion: None,
            min_remaining: Some(0.25),
        });
    s.after(
        0,
        Event::StepFinished {
            stage: "prod".into(),
            step: "approval".into(),
            status: Status::Passed,
            verdict: Some(Verdict::Pass),
            summary: "approved automatically (pass)".into(),
            evidence: vec![budget],
            evaluation: None,
        },
    );
    for (i, saturation) in [0.41, 0.44, 0.43].into_iter().enumerate() {
        s.after(
            if i == 0 { 0 } else { 2 },
            Event::Analysis {
                stage: "prod".into(),
                step: "release".into(),
                values: [
                    ("cpu_saturation".to_owned(), Some(saturation)),
                    ("availability".to_owned(), Some(0.9995)),
                ]
                .into(),
                stable: [("cpu_saturation".to_owned(), Some(0.40))].into(),
                targets: [
                    ("cpu_saturation".to_owned(), "<0.8".to_owned()),
                    ("availability".to_owned(), ">=0.999".to_owned()),
                ]
                .into(),
                warnings: Default::default(),
                verdict: Verdict::Pass,
                judgement: None,
                part: Some(AnalysisPart::Watch),
            },
        );
    }
    s.app.now_ms = s.at_ms + 5_000;
    s
}

/// At 80x24 during a canary, every pane is a single key away: 1 to 6 show one view at a
/// time under the status strip (weight, verdict, budget), Tab cycles them, and the SLO
/// charts page rather than flatten.
#[test]
fn snapshot_compact_views_reach_every_pane_at_80x24() {
    let mut s = canary_with_every_view();
    // Until the operator picks a view, a small terminal shows the canary's traffic.
    let traffic = s.render(80, 24);
    assert_eq!(s.app.focus, Pane::Traffic);
    assert!(
        traffic.contains(" ? new 10% · analysis ✓ pass · budget ✓ 62.0%"),
        "{traffic}"
    );
    insta::assert_snapshot!("compact_traffic_80x24", traffic);
    for (key_char, pane, name) in [
        ('1', Pane::Stages, "compact_stages_80x24"),
        ('2', Pane::Output, "compact_output_80x24"),
        ('4', Pane::Budget, "compact_budget_80x24"),
        ('5', Pane::Charts, "compact_charts_80x24"),
        ('6', Pane::Preflight, "compact_preflight_80x24"),
    ] {
        s.app.key(key(key_char));
        assert_eq!(s.app.focus, pane);
        let screen = s.render(80, 24);
        assert!(
            screen.contains("budget ✓ 62.0%"),
            "the strip stays:\n{screen}"
        );
        insta::assert_snapshot!(name, screen);
    }
    // Four charts at a readable height take two pages at 80x24: ] and 5 again turn them.
    s.app.key(key('5'));
    let first = s.render(80, 24);
    assert!(
        first.contains("availability") && first.contains("cpu_saturation"),
        "{first}"
    );
    assert!(!first.contains("error_ratio"), "{first}");
    assert!(first.contains("charts 1–2 of 4 · ] next"), "{first}");
    assert!(
        first.contains("] more charts"),
        "the hint says how:\n{first}"
    );
    s.app.key(key(']'));
    let second = s.render(80, 24);
    assert!(
        second.contains("error_ratio") && second.contains("latency_p95_ms"),
        "{second}"
    );
    insta::assert_snapshot!("compact_charts_page2_80x24", second);
    s.app.key(key('5'));
    assert_eq!(s.app.chart_page, 0, "round again to the first page");
    // Each chart keeps at least its readable height.
    let chart_tops = first.lines().filter(|l| l.starts_with('┌')).count();
    assert_eq!(chart_tops, 2, "{first}");
    // Tab cycles the views with something to show; from the last it comes round.
    s.app.key(key('6'));
    s.app.key(code(KeyCode::Tab));
    assert_eq!(s.app.focus, Pane::Stages);
    s.app.key(code(KeyCode::BackTab));
    assert_eq!(s.app.focus, Pane::Preflight);
    // The same keys move the focus in the wide layout, where every pane is drawn.
    s.app.key(key('3'));
    let wide = s.render(120, 40);
    assert!(
        wide.contains("Stages") && wide.contains("Traffic"),
        "{wide}"
    );
    assert_eq!(s.app.focus, Pane::Traffic);
}

/// The hint bar offers the keys that act now: approve and decline only while something
/// waits for an approval, promote while a release runs, none of them once the run ended.
#[test]
fn the_hint_bar_offers_only_the_keys_that_act_now() {
    let mut s = canary_paused();
    let waiting = s.render(120, 40);
    let bar = waiting.lines().last().unwrap().to_owned();
    assert!(
        bar.contains("a approve") && bar.contains("d decline"),
        "{bar}"
    );
    assert!(bar.contains("P promote"), "{bar}");
    s.after(
        1,
        Event::StepState {
            stage: "prod".into(),
            step: "release".into(),
            status: Status::Running,
            message: "canary 10%: analysing".into(),
        },
    );
    let running = s.render(120, 40);
    let bar = running.lines().last().unwrap().to_owned();
    assert!(
        !bar.contains("approve") && !bar.contains("decline"),
        "{bar}"
    );
    assert!(
        bar.contains("P promote") && bar.contains("p pause"),
        "{bar}"
    );
    s.after(
        0,
        Event::RunState {
            status: Status::Paused,
        },
    );
    let paused = s.render(120, 40);
    assert!(
        paused.lines().last().unwrap().contains("p resume"),
        "{paused}"
    );
    let mut s = gate_failed();
    let ended = s.render(120, 40);
    let bar = ended.lines().last().unwrap().to_owned();
    assert!(
        !bar.contains("promote") && !bar.contains("rollback"),
        "{bar}"
    );
}

/// The help wraps to the terminal's width (no description cut at the border) and
/// scrolls when it is taller than the terminal.
#[test]
fn snapshot_help_wraps_and_scrolls_on_small_terminals() {
    let mut s = canary_paused();
    s.app.key(key('?'));
    let small = s.render(60, 20);
    insta::assert_snapshot!("help_60x20", small);
    assert!(
        small.contains(" of ") && small.contains("j k scroll"),
        "a scroll position is shown:\n{small}"
    );
    // Every word of every description is on screen somewhere as the help scrolls.
    let mut seen = String::new();
    for _ in 0..40 {
        seen.push_str(&s.render(60, 20));
        s.app.key(key('j'));
    }
    for b in glidepath::ui::keys::KEYS {
        for word in b.help.split_whitespace() {
            assert!(seen.contains(word), "`{word}` of `{}` never shown", b.help);
        }
    }
    assert_eq!(
        s.app.overlay,
        Some(Overlay::Help),
        "j scrolls; it does not close"
    );
    s.app.key(key('G'));
    insta::assert_snapshot!("help_80x24_bottom", s.render(80, 24));
    s.app.key(key('g'));
    assert_eq!(s.app.help_scroll, 0);
}

#[test]
fn keys_send_the_commands_the_state_allows() {
    let mut s = canary_paused();
    assert_eq!(s.app.key(key('a')), Some(CommandKind::Approve));
    assert_eq!(s.app.key(key('d')), Some(CommandKind::Reject));
    assert_eq!(s.app.key(key('P')), Some(CommandKind::Promote));
    assert_eq!(s.app.key(key('p')), Some(CommandKind::Pause));
    s.after(
        0,
        Event::RunState {
            status: Status::Paused,
        },
    );
    assert_eq!(s.app.key(key('p')), Some(CommandKind::Resume));
    // A refused command is shown with the engine's reason.
    s.after(
        0,
        Event::Operator {
            command: CommandKind::Promote,
            who: "ana".into(),
            accepted: false,
            reason: Some("there is no pause to skip; step `release` is running".into()),
            sender: None,
        },
    );
    let toast = s.app.toast.clone().unwrap();
    assert!(toast.error);
    assert_eq!(
        toast.text,
        "promote refused: there is no pause to skip; step `release` is running"
    );
    // Read-only: nothing that changes the release gets through.
    s.app.read_only = true;
    for c in ['a', 'd', 'P', 'p', 'r', 'x'] {
        assert_eq!(s.app.key(key(c)), None, "{c}");
    }
    assert!(!s.render(120, 40).contains(" approve "));
    // Search filters the output; Esc clears it.
    s.app.read_only = false;
    s.app.key(key('/'));
    for c in "healthz".chars() {
        s.app.key(key(c));
    }
    s.app.key(code(KeyCode::Enter));
    assert_eq!(s.app.visible_logs().len(), 1);
    s.app.key(code(KeyCode::Esc));
    assert_eq!(s.app.visible_logs().len(), 3);
    // :theme switches the theme by name (the loop loads it).
    s.app.key(key(':'));
    for c in "theme light".chars() {
        s.app.key(key(c));
    }
    s.app.key(code(KeyCode::Enter));
    assert_eq!(s.app.theme_request.as_deref(), Some("light"));
}

#[test]
fn status_glyphs_carry_their_colours_and_mono_still_reads() {
    use ratatui::style::{Color, Modifier};
    let find = |s: &Script, glyph: &str, row_text: &str| {
        let mut t = Terminal::new(TestBackend::new(120, 40)).unwrap();
        t.draw(|f| view::draw(f, &s.app)).unwrap();
        let buf = t.backend().buffer().clone();
        for y in 0..40 {
            let row: String = (0..120).map(|x| buf[(x, y)].symbol().to_owned()).collect();
            if row.contains(row_text) {
                for x in 0..120 {
                    if buf[(x, y)].symbol() == glyph {
                        return buf[(x, y)].style();
                    }
                }
            }
        }
        panic!("no {glyph} on the row of {row_text}");
    };
    let s = gate_failed();
    let failed = find(&s, "✗", "evaluate ");
    assert_eq!(failed.fg, Some(Color::LightRed));
    assert!(failed.add_modifier.contains(Modifier::BOLD));
    assert_eq!(find(&s, "✓", "deploy ").fg, Some(Color::Green));
    let s = canary_paused();
    assert_eq!(find(&s, "?", "release ").fg, Some(Color::Magenta));

    // Mono: no colours at all, and the failure is still marked beyond its glyph.
    let mut s = gate_failed();
    s.app.theme = theme::load("mono", None).unwrap();
    let failed = find(&s, "✗", "evaluate ");
    assert!(matches!(failed.fg, None | Some(Color::Reset)));
    assert!(failed.add_modifier.contains(Modifier::BOLD));
}

#[test]
fn traffic_shows_desired_against_actual_and_readiness_per_version() {
    let mut s = canary_paused();
    let screen = s.render(120, 40);
    assert!(screen.contains("desired"), "{screen}");
    assert!(screen.contains("stable 1.0.0 ●●●● 4/4"), "{screen}");
    assert!(screen.contains("new 2.0.0 ○ 0/1 ◌"), "{screen}");
    assert!(!screen.contains("≠ desired"), "{screen}");
    let marks = s.app.run.weight_changes.len();
    // A pod of the stable version died: the router still sends 10% to the new version by
    // its weights, but with replicas as the router the actual split moves.
    s.after(
        2,
        Event::Traffic {
            stage: "prod".into(),
            step: "release".into(),
            weight: 10,
            note: "observed on the cluster".into(),
            actual: Some(25),
            planned: None,
            replicas: vec![
                VersionReplicas {
                    role: "stable".into(),
                    version: "1.0.0".into(),
                    ready: 3,
                    desired: 4,
                },
                VersionReplicas {
                    role: "new".into(),
                    version: "2.0.0".into(),
                    ready: 1,
                    desired: 1,
                },
            ],
        },
    );
    let screen = s.render(120, 40);
    assert!(
        screen.contains("new  25% · stable  75% ≠ desired"),
        "{screen}"
    );
    assert!(screen.contains("stable 1.0.0 ●●●○ 3/4 ◌"), "{screen}");
    // Only a change of the asked weight marks the charts' time axis.
    assert_eq!(s.app.run.weight_changes.len(), marks);
    // The mismatch is marked in words and in the warning colour.
    let mut t = Terminal::new(TestBackend::new(120, 40)).unwrap();
    t.draw(|f| view::draw(f, &s.app)).unwrap();
    let buf = t.backend().buffer().clone();
    let y = (0..40)
        .find(|&y| {
            (0..120)
                .map(|x| buf[(x, y)].symbol().to_owned())
                .collect::<String>()
                .contains("≠ desired")
        })
        .unwrap();
    let x = (0..120).find(|&x| buf[(x, y)].symbol() == "≠").unwrap();
    assert_eq!(buf[(x, y)].style().fg, s.app.theme.fg("warning").fg);
    // With replicas as the router, 10% of four replicas is one canary beside four stable
    // (both rounded up): 20% is the plan, not a mismatch; anything else is.
    let replicas_router = |actual: u8| Event::Traffic {
        stage: "prod".into(),
        step: "release".into(),
        weight: 10,
        note: "1 canary and 4 stable replicas ready".into(),
        actual: Some(actual),
        planned: Some(20),
        replicas: Vec::new(),
    };
    s.after(1, replicas_router(20));
    let screen = s.render(120, 40);
    assert!(!screen.contains('≠'), "{screen}");
    s.after(1, replicas_router(25));
    let screen = s.render(120, 40);
    assert!(
        screen.contains("new  25% · stable  75% ≠ planned 20%"),
        "{screen}"
    );
}

#[test]
fn the_layout_from_the_config_file_is_followed() {
    use glidepath::ui::config::{LayoutMode, Optional, PaneLayout};
    let mut s = canary_paused();
    s.app.layout = PaneLayout {
        mode: LayoutMode::Compact,
        ..PaneLayout::default()
    };
    // Compact on a large terminal too: one view (the traffic, as a release runs) under
    // the status strip.
    let compact = s.render(120, 40);
    assert!(
        compact.contains("Traffic")
            && !compact.contains("Stages")
            && !compact.contains("Test output"),
        "compact at 120x40:\n{compact}"
    );
    assert!(
        compact.contains(" ? new 10% · analysis ✓ pass"),
        "{compact}"
    );
    s.app.layout = PaneLayout {
        mode: LayoutMode::Wide,
        stages_width: 30,
        hide: vec![Optional::Preflight, Optional::Budget],
    };
    let wide = s.render(90, 26);
    assert!(wide.contains("Traffic"), "wide at 90x26:\n{wide}");
    assert!(!wide.contains("Pre-flight"), "{wide}");
    // The stages column is 30% of 90 columns: its right border sits at column 26.
    let first = wide.lines().nth(1).unwrap();
    assert_eq!(first.chars().nth(26), Some('┐'), "{first}");
    // A hidden pane takes no focus, from Tab or from its number.
    s.app.focus = Pane::Stages;
    s.app.key(code(KeyCode::Tab));
    assert_eq!(s.app.focus, Pane::Output);
    s.app.key(key('6'));
    assert_eq!(s.app.focus, Pane::Output);
    assert!(
        s.app
            .toast
            .as_ref()
            .unwrap()
            .text
            .contains("pre-flight view is hidden"),
        "{:?}",
        s.app.toast
    );
}

#[test]
fn tiny_and_resized_terminals_never_crash() {
    let mut s = canary_paused();
    for (w, h) in [(40, 10), (20, 5), (1, 1), (200, 60), (99, 29)] {
        s.render(w, h);
        s.app.key(key('?'));
        s.render(w, h);
        s.app.key(code(KeyCode::Esc));
        s.app.key(key('r'));
        s.render(w, h);
        s.app.key(code(KeyCode::Esc));
    }
}

/// Regenerates the README's screenshot: `cargo test --test cockpit -- --ignored screenshot`.
#[test]
#[ignore = "writes assets/cockpit.svg; run it when the cockpit's look changes"]
fn screenshot() {
    let mut s = canary_paused();
    s.log(
        "release",
        "analysis",
        "analysis 1: score 100.0, pass (error_ratio 0.0011 <= 0.01, latency_p95_ms 182 < 300)",
    );
    let mut t = Terminal::new(TestBackend::new(120, 32)).unwrap();
    t.draw(|f| view::draw(f, &s.app)).unwrap();
    let svg = view::svg(t.backend().buffer());
    std::fs::write(
        concat!(env!("CARGO_MANIFEST_DIR"), "/assets/cockpit.svg"),
        svg,
    )
    .unwrap();
}

#[test]
fn the_screenshot_is_an_svg_of_the_buffer() {
    let s = canary_paused();
    let mut t = Terminal::new(TestBackend::new(120, 40)).unwrap();
    t.draw(|f| view::draw(f, &s.app)).unwrap();
    let svg = view::svg(t.backend().buffer());
    assert!(svg.starts_with("<svg"));
    assert!(svg.contains("release waits for approval"));
    // Status colours survive: the green of a passed step's glyph.
    assert!(svg.contains("fill=\"#8abf6a\""));
}

#[test]
fn history_lists_runs_and_the_stages_evaluations_from_the_journal() {
    use glidepath::store::{NewRun, Store};
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.db");
    let store = Store::open(&journal).unwrap();
    let source = "apiVersion: glidepath/v1\nkind: Pipeline\nmetadata: { name: checkout }\nspec:\n  stages:\n    - name: prod\n      steps:\n        - name: hi\n          command: { run: [echo, hi] }\n";
    for _ in 0..2 {
        store
            .create_run(&NewRun {
                pipeline: "checkout",
                service: "checkout",
                path: "pipeline.yaml",
                source,
                sets: &Default::default(),
                stage: None,
            })
            .unwrap();
    }
    // Run 1's driver is gone: a process that has ended, reaped.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    rusqlite::Connection::open(&journal)
        .unwrap()
        .execute("UPDATE runs SET pid = ?1 WHERE id = 1", [gone.id()])
        .unwrap();
    let mut s = canary_paused();
    s.app.key(key('H'));
    assert!(s.app.history_request);
    let stage = s.app.run.current_stage().map(|st| st.name.clone()).unwrap();
    let read = glidepath::cli::history::source(journal.clone());
    s.app.history = Some(read.read(&s.app.run.service, &stage).unwrap());
    s.app.overlay = Some(Overlay::History);
    let screen = s.render(120, 40);
    assert!(screen.contains("run 2"), "{screen}");
    assert!(screen.contains("run 1"), "{screen}");
    assert!(screen.contains("interrupted"), "{screen}");
    assert!(
        screen.contains("run 1 interrupted: its driver (process ")
            && screen.contains("is gone; `glidepath resume 1` continues it"),
        "{screen}"
    );
    assert!(
        !screen.contains("run 2 interrupted"),
        "run 2's driver (this test) is alive: {screen}"
    );
    assert!(
        screen.contains("evaluations of checkout in stage prod"),
        "{screen}"
    );
}

#[test]
fn history_shows_who_drives_runs_of_other_machines_and_whether_they_live() {
    use glidepath::store::{NewRun, STALE_AFTER, Store, now_ms};
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.db");
    let store = Store::open(&journal).unwrap();
    for _ in 0..3 {
        store
            .create_run(&NewRun {
                pipeline: "checkout",
                service: "checkout",
                path: "pipeline.yaml",
                source: "apiVersion: glidepath/v1\nkind: Pipeline\nmetadata: { name: checkout }\nspec:\n  stages:\n    - name: prod\n      steps:\n        - name: hi\n          command: { run: [echo, hi] }\n",
                sets: &Default::default(),
                stage: None,
            })
            .unwrap();
    }
    // Run 1 was driven from ci-7 by ann, whose heartbeat stopped long ago; run 2 is driven
    // from bob's laptop, alive 3 s ago; run 3 is this test's own (this host, this process).
    let db = rusqlite::Connection::open(&journal).unwrap();
    let stale = now_ms() - 2 * STALE_AFTER.as_millis() as i64;
    let other = |id: i64, user: &str, host: &str, heartbeat: i64| {
        db.execute(
            "UPDATE runs SET driver_user = ?1, driver_host = ?2, heartbeat_ms = ?3, pid = 4242 WHERE id = ?4",
            rusqlite::params![user, host, heartbeat, id],
        )
        .unwrap();
    };
    other(1, "ann", "ci-7.build.example", stale);
    other(2, "bob", "bobs-laptop", now_ms() - 3_000);
    let mut s = canary_paused();
    let stage = s.app.run.current_stage().map(|st| st.name.clone()).unwrap();
    let read = glidepath::cli::history::source(journal.clone());
    let history = read.read(&s.app.run.service, &stage).unwrap();
    let driver = |id: i64| {
        history
            .runs
            .iter()
            .find(|r| r.id == id)
            .and_then(|r| r.driver.clone())
            .unwrap_or_default()
    };
    assert!(
        driver(1).starts_with("ann@ci-7.build.example (gone, last heard "),
        "{}",
        driver(1)
    );
    // The heartbeat is 3 s old when read; a slow machine may read it a second or two later.
    assert!(
        driver(2).starts_with("bob@bobs-laptop (alive ") && driver(2).ends_with(" s ago)"),
        "{}",
        driver(2)
    );
    let me = glidepath::store::this_host();
    assert!(
        driver(3).contains(&format!("@{me} (alive ")),
        "{}",
        driver(3)
    );
    s.app.history = Some(history);
    s.app.overlay = Some(Overlay::History);
    let screen = s.render(160, 40);
    assert!(
        screen.contains("by ann@ci-7.build.example (gone, last heard"),
        "{screen}"
    );
    assert!(screen.contains("by bob@bobs-laptop (alive"), "{screen}");
    assert!(
        screen.contains(
            "run 1 interrupted: its driver (process 4242 of ann@ci-7.build.example) is gone"
        ),
        "{screen}"
    );
    assert!(!screen.contains("run 2 interrupted"), "{screen}");
}

/// A bad canary's run decided again: fine at 10%, failing twice at 50% as recorded, and
/// passing under the replayed SLO, so it would have gone on.
fn replayed_run() -> glidepath::ui::app::ReplayView {
    use glidepath::replay::{Decision, Ending, Replay, StepReplay};
    let decision =
        |n: i64, weight: u8, value: f64, recorded: Verdict, replayed: Verdict| Decision {
            at_ms: T0 + n * 3_000,
            step: "prod/release".into(),
            what: format!("analysis {n}"),
            part: Some(AnalysisPart::Watch),
            weight: Some(weight),
            values: [("error_ratio".to_owned(), Some(value))].into(),
            recorded,
            replayed,
            why: "error_ratio 0.03 <= 0.05: pass".into(),
            metrics: Vec::new(),
            left_out: Vec::new(),
        };
    let mut decisions = vec![Decision {
        what: "gate".into(),
        step: "staging/evaluate".into(),
        part: None,
        weight: None,
        ..decision(0, 0, 0.001, Verdict::Pass, Verdict::Pass)
    }];
    for n in 1..=6 {
        decisions.push(decision(n, 10, 0.001, Verdict::Pass, Verdict::Pass));
    }
    decisions.push(decision(7, 50, 0.03, Verdict::Fail, Verdict::Pass));
    decisions.push(decision(8, 50, 0.04, Verdict::Fail, Verdict::Pass));
    glidepath::ui::app::ReplayView {
        run: 41,
        status: "rolled-back".into(),
        slos: vec!["config/slo.yaml".into()],
        replay: Replay {
            decisions,
            steps: vec![StepReplay {
                step: "prod/release".into(),
                kind: "canary",
                recorded_outcome: Some("failed: analysis failed 2 times (limit 1)".into()),
                recorded: Some(Ending::Stopped {
                    n: 8,
                    at_ms: T0 + 24_000,
                    weight: Some(50),
                    why: "analysis failed 2 times (limit 1)".into(),
                    in_bake: false,
                }),
                replayed: Some(Ending::Open {
                    analyses: 8,
                    weight: Some(50),
                }),
            }],
        },
    }
}

/// The history view selects a run (j k) and its replay key asks the loop for a replay;
/// the replay overlay shows each decision recorded and replayed, which changed and where
/// the release would have ended, scrolls when taller than the terminal, and Esc goes
/// back to the history.
#[test]
fn snapshot_the_history_opens_a_replay_of_the_selected_run() {
    use glidepath::ui::app::{History, HistoryRun};
    let mut s = canary_paused();
    let run = |id: i64, status: Status| HistoryRun {
        id,
        pipeline: "checkout".into(),
        status,
        started_ms: T0 - id * 60_000,
        finished_ms: Some(T0 - id * 60_000 + 50_000),
        exit_code: Some(1),
        interrupted: None,
        driver: None,
    };
    s.app.key(key('R'));
    assert_eq!(
        s.app.replay_request, None,
        "no run selected outside the history"
    );
    let hint = s.app.toast.take().map(|t| t.text).unwrap_or_default();
    assert!(hint.contains("open the history (H)"), "{hint}");
    s.app.history = Some(History {
        runs: vec![run(42, Status::Running), run(41, Status::RolledBack)],
        evaluations: Vec::new(),
        stage: "prod".into(),
    });
    s.app.overlay = Some(Overlay::History);
    s.app.key(key('j'));
    s.app.key(key('j'));
    assert_eq!(
        s.app.history_selected, 1,
        "the selection stops at the last run"
    );
    let history = s.render(120, 40);
    assert!(history.contains("▸↺ run 41"), "{history}");
    assert!(
        history.lines().last().unwrap().contains("R replay"),
        "{history}"
    );
    s.app.key(key('R'));
    assert_eq!(s.app.replay_request, Some(41));
    // The loop reads it from the journal and opens the overlay.
    s.app.replay = Some(replayed_run());
    s.app.overlay = Some(Overlay::Replay);
    let wide = s.render(120, 40);
    insta::assert_snapshot!("replay_120x40", wide);
    assert!(wide.contains("replayed: no limit passed"), "{wide}");
    let small = s.render(80, 24);
    insta::assert_snapshot!("replay_80x24", small);
    assert!(small.contains("j k scroll"), "{small}");
    s.app.key(key('G'));
    let bottom = s.render(80, 24);
    assert!(
        bottom.contains("2 of 9 decisions change, and the run would have gone otherwise"),
        "{bottom}"
    );
    assert!(s.app.replay_scroll > 0);
    s.app.key(code(KeyCode::Esc));
    assert_eq!(s.app.overlay, Some(Overlay::History));
    s.app.key(code(KeyCode::Esc));
    assert_eq!(s.app.overlay, None);
}

#[test]
fn the_output_filters_by_source_and_the_mouse_finds_panes() {
    let mut s = canary_paused();
    // Sources in the output: deploy, http, release; `s` cycles through them, then all.
    s.app.key(key('s'));
    assert_eq!(s.app.source.as_deref(), Some("deploy"));
    assert_eq!(s.app.visible_logs().len(), 1);
    s.app.key(key('s'));
    s.app.key(key('s'));
    assert_eq!(s.app.source.as_deref(), Some("release"));
    assert!(s.render(120, 40).contains("source release (s: next)"));
    s.app.key(key('s'));
    assert_eq!(s.app.source, None);
    use glidepath::ui::view::pane_at;
    let app = &mut s.app;
    assert_eq!(pane_at(app, 120, 40, 5, 5), Some(Pane::Stages));
    assert_eq!(pane_at(app, 120, 40, 5, 35), Some(Pane::Preflight));
    assert_eq!(pane_at(app, 120, 40, 100, 30), Some(Pane::Output));
    assert_eq!(pane_at(app, 120, 40, 5, 0), None);
    // A banner takes the row under the header.
    app.banner = Some("demo".into());
    assert_eq!(pane_at(app, 120, 40, 5, 1), None);
    assert_eq!(pane_at(app, 120, 40, 5, 2), Some(Pane::Stages));
    // Compact: the status strip, then the one view shown.
    app.focus = Pane::Preflight;
    assert_eq!(pane_at(app, 80, 24, 5, 2), None);
    assert_eq!(pane_at(app, 80, 24, 5, 5), Some(Pane::Preflight));
    assert_eq!(pane_at(app, 80, 24, 5, 20), Some(Pane::Preflight));
}

#[test]
fn glidepaths_own_log_is_a_view_of_its_own() {
    use tracing_subscriber::prelude::*;
    let _guard = tracing_subscriber::registry()
        .with(tui_logger::TuiTracingSubscriberLayer)
        .set_default();
    tui_logger::set_default_level(tui_logger::LevelFilter::Info);
    tracing::warn!("cannot read commands from the journal: disk full");
    tui_logger::move_events();
    let mut s = canary_paused();
    s.app.key(key('L'));
    assert_eq!(s.app.overlay, Some(Overlay::AppLog));
    let screen = s.render(120, 40);
    assert!(screen.contains("glidepath's own log"), "{screen}");
    assert!(
        screen.contains("cannot read commands from the journal: disk full"),
        "{screen}"
    );
}

#[test]
fn a_resumed_runs_journal_is_shown_and_a_stale_confirmation_closes() {
    // The journal of a run interrupted while its release waited: replayed, that step is
    // pending again (the resumed run starts it anew); the finished ones keep their marks.
    let mut app = App::new(
        theme::load("default", None).unwrap(),
        String::new(),
        false,
        vec![],
    );
    let mut all = Vec::new();
    let run_started = Envelope {
        run: 42,
        seq: 1,
        at_ms: T0,
        event: Event::RunStarted {
            pipeline: "checkout".into(),
            service: "checkout".into(),
            resumed: false,
            stages: vec![StagePlan {
                name: "prod".into(),
                steps: vec![
                    StepPlan {
                        name: "approval".into(),
                        kind: "approval".into(),
                        description: "manual".into(),
                        group: None,
                    },
                    StepPlan {
                        name: "release".into(),
                        kind: "release".into(),
                        description: "canary".into(),
                        group: None,
                    },
                ],
            }],
        },
    };
    all.push(run_started);
    all.push(Envelope {
        run: 42,
        seq: 2,
        at_ms: T0,
        event: Event::StageStarted {
            stage: "prod".into(),
        },
    });
    all.push(Envelope {
        run: 42,
        seq: 3,
        at_ms: T0,
        event: Event::StepFinished {
            stage: "prod".into(),
            step: "approval".into(),
            status: Status::Passed,
            verdict: None,
            summary: "approved".into(),
            evidence: vec![],
            evaluation: None,
        },
    });
    all.push(Envelope {
        run: 42,
        seq: 4,
        at_ms: T0,
        event: Event::StepState {
            stage: "prod".into(),
            step: "release".into(),
            status: Status::WaitingForApproval,
            message: "canary 10%".into(),
        },
    });
    app.replay(&all, true);
    assert_eq!(app.run.stages[0].steps[0].status, Status::Passed);
    assert_eq!(app.run.stages[0].steps[1].status, Status::Pending);
    assert!(app.toast.is_none(), "a replay shows no toasts");
    // Attached to a live driver, the wait is real.
    let mut live = App::new(
        theme::load("default", None).unwrap(),
        String::new(),
        false,
        vec![],
    );
    live.replay(&all, false);
    assert_eq!(
        live.run.stages[0].steps[1].status,
        Status::WaitingForApproval
    );

    // A confirmation opened in one stage closes when another takes over.
    let mut s = gate_failed();
    s.app.run.exit_code = None;
    s.app.key(key('r'));
    assert!(matches!(s.app.overlay, Some(Overlay::Confirm { .. })));
    s.after(
        0,
        Event::StageStarted {
            stage: "prod".into(),
        },
    );
    assert_eq!(s.app.overlay, None);
    assert_eq!(
        s.app.toast.as_ref().unwrap().text,
        "the stage changed; ask again"
    );
}

#[test]
fn leaving_the_cockpit_mid_run_says_what_the_run_waits_for_and_how_to_answer_it() {
    let mut s = canary_paused();
    assert_eq!(
        s.app.run.left_behind().as_deref(),
        Some(
            "left the cockpit; run 42 goes on here: prod/release waits for approval: `glidepath approve 42` or `glidepath reject 42` answers it from any terminal; `glidepath attach 42` brings the cockpit back; Ctrl-C aborts it"
        )
    );
    // A run that has ended leaves nothing behind to say.
    s.after(
        60,
        Event::RunFinished {
            status: Status::RolledBack,
            exit_code: 1,
            reason: "rolled back".into(),
        },
    );
    assert_eq!(s.app.run.left_behind(), None);
}
