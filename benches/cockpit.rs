//! The cockpit's frame cost and memory: `cargo bench --bench cockpit`.
//! - Frame build + draw at 200x60 with every pane full (10,000 log lines, 6 SLO charts of
//!   1,000 points each, traffic and budget), into ratatui's TestBackend: median and p99 of
//!   2,000 frames (target p99 < 2 ms). Each chart has two series (new and stable version)
//!   and the pass line.
//! - Peak RSS after folding 1,000,000 log events into the cockpit's state (the output
//!   keeps the last 10,000; target < 64 MB).

use std::time::Instant;

use glidepath::events::{
    AnalysisPart, Envelope, Event, Evidence, StagePlan, Status, StepPlan, Verdict,
};
use glidepath::ui::app::App;
use glidepath::ui::{theme, view};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn env(seq: u64, event: Event) -> Envelope {
    Envelope {
        run: 1,
        seq,
        at_ms: 1_795_783_200_000 + seq as i64 * 10,
        event,
    }
}

fn rss_peak_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let mut app = App::new(
        theme::load("default", None).unwrap(),
        "prod-eu/shop".into(),
        false,
        vec![],
    );
    let mut seq = 0;
    let mut next = |e: Event| {
        seq += 1;
        env(seq, e)
    };
    app.apply(&next(Event::RunStarted {
        pipeline: "checkout".into(),
        service: "checkout".into(),
        resumed: false,
        stages: (0..4)
            .map(|i| StagePlan {
                name: format!("stage-{i}"),
                steps: (0..6)
                    .map(|j| StepPlan {
                        name: format!("step-{j}"),
                        kind: "command".into(),
                        description: "a step".into(),
                        group: None,
                    })
                    .collect(),
            })
            .collect(),
    }));
    app.apply(&next(Event::StepStarted {
        stage: "stage-3".into(),
        step: "step-5".into(),
        kind: "release".into(),
    }));
    app.apply(&next(Event::Traffic {
        stage: "stage-3".into(),
        step: "step-5".into(),
        weight: 25,
        note: "route 75/25".into(),
        actual: Some(25),
        planned: None,
        replicas: Vec::new(),
    }));
    let mut budget = vec![Evidence::new("budget remaining", Verdict::Pass, "71.0%")];
    for w in ["1h", "6h", "1d", "3d"] {
        budget.push(Evidence::new(
            format!("burn rate {w}"),
            Verdict::Pass,
            "0.80x",
        ));
    }
    app.apply(&next(Event::StepFinished {
        stage: "stage-3".into(),
        step: "step-4".into(),
        status: Status::Passed,
        verdict: Some(Verdict::Pass),
        summary: "budget 71% left".into(),
        evidence: budget,
        evaluation: None,
    }));
    for i in 0..1_000 {
        let values = (0..6)
            .map(|k| {
                (
                    format!("sli_{k}"),
                    Some((i as f64 * 0.01 + k as f64).sin().abs()),
                )
            })
            .collect();
        let targets = (0..6)
            .map(|k| (format!("sli_{k}"), "<=0.9".to_owned()))
            .collect();
        let stable = (0..6)
            .map(|k| {
                (
                    format!("sli_{k}"),
                    Some((i as f64 * 0.01 + k as f64).cos().abs()),
                )
            })
            .collect();
        app.apply(&next(Event::Analysis {
            stage: "stage-3".into(),
            step: "step-5".into(),
            values,
            stable,
            targets,
            warnings: Default::default(),
            verdict: Verdict::Pass,
            judgement: None,
            part: Some(AnalysisPart::Watch),
        }));
    }
    for i in 0..10_000 {
        app.apply(&next(Event::Log {
            stage: "stage-3".into(),
            step: "load".into(),
            source: "load".into(),
            line: format!("{i}s: 412 req/s, 0 errors, p50 12.1 ms, p95 180.4 ms, p99 240.2 ms"),
        }));
    }
    let mut terminal = Terminal::new(TestBackend::new(200, 60)).unwrap();
    let mut times = Vec::new();
    for _ in 0..2_000 {
        let t = Instant::now();
        terminal.draw(|f| view::draw(f, &app)).unwrap();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let q = |p: f64| times[((times.len() as f64 - 1.0) * p) as usize];
    println!(
        "frame 200x60, all panes full: median {:.3} ms, p99 {:.3} ms, max {:.3} ms (target p99 < 2 ms)",
        q(0.5),
        q(0.99),
        q(1.0)
    );
    let before = rss_peak_kb();
    let started = Instant::now();
    for i in 0..1_000_000u64 {
        app.apply(&next(Event::Log {
            stage: "stage-3".into(),
            step: "load".into(),
            source: "stdout".into(),
            line: format!("line {i}: the quick brown fox jumps over the lazy dog"),
        }));
    }
    println!(
        "1,000,000 log events folded in {:.2} s; kept {} lines; peak RSS {:.2} MB (before them {:.2} MB; target < 64 MB)",
        started.elapsed().as_secs_f64(),
        app.run.logs.len(),
        rss_peak_kb() as f64 / 1024.0,
        before as f64 / 1024.0
    );
}
