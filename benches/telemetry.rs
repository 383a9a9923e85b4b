//! Sandbox metrics figures for BENCHMARKS.md: memory held by 30 days of history for 10
//! services x 3 versions, and the latency of error-ratio queries over 30 days.
//!
//! Run: `cargo bench --bench telemetry` (release build). Prints one line per figure.

use std::time::{Duration, Instant};

use glidepath::sandbox::promql::{Evaluator, parse};
use glidepath::sandbox::scenario::Scenario;
use glidepath::sandbox::traffic::{Backend, Entry, Telemetry, VersionTarget};
use glidepath::sandbox::tsdb::{Db, labels};
use glidepath::sandbox::workload::Behaviour;

/// Resident memory of this process, bytes.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn entry(i: usize) -> Entry {
    let versions = (1..=3)
        .map(|v| VersionTarget {
            app: format!("svc-{i}"),
            version: format!("v{v}"),
            ready: 2,
            behaviour: Behaviour::default(),
            started: Instant::now(),
        })
        .collect();
    Entry {
        kind: "Service",
        namespace: "shop".into(),
        name: format!("svc-{i}"),
        rps: 50.0,
        daily: true,
        simulated: true,
        objective: None,
        budget_spent: None,
        backends: vec![Backend {
            service: format!("svc-{i}"),
            weight: 1.0,
            versions,
        }],
    }
}

fn time_query(db: &Db, q: &str, at: i64, runs: usize) -> (Duration, Duration) {
    let expr = parse(q).unwrap();
    let ev = Evaluator::new(db);
    let mut took: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(ev.instant(&expr, at).unwrap());
            start.elapsed()
        })
        .collect();
    took.sort();
    (took[runs / 2], took[runs - 1])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let now = 1_790_000_000_000;
    let before = rss();
    let tel = Telemetry::new(Scenario::default());
    let start = Instant::now();
    for i in 0..10 {
        tel.write_history(&entry(i), now);
    }
    let built = start.elapsed();
    let after = rss();
    let db = tel.db();
    println!(
        "history, 10 services x 3 versions x 30 days: {} series, {} samples, {:.1} MB held by samples and labels, RSS +{:.1} MB, written in {:.0} ms",
        db.series().len(),
        db.samples(),
        db.memory_bytes() as f64 / 1e6,
        (after.saturating_sub(before)) as f64 / 1e6,
        ms(built)
    );
    let at = now - now % 60_000;
    let one = r#"sum(rate(http_requests_total{service="svc-3",code=~"5.."}[30d])) / sum(rate(http_requests_total{service="svc-3"}[30d]))"#;
    let (median, max) = time_query(&db, one, at, 200);
    println!(
        "error ratio of one service over 30d (history store): median {:.2} ms, max {:.2} ms",
        ms(median),
        ms(max)
    );
    let all = r#"sum by (service) (rate(http_requests_total{code=~"5.."}[30d])) / sum by (service) (rate(http_requests_total[30d]))"#;
    let (median, max) = time_query(&db, all, at, 50);
    println!(
        "error ratio of all 10 services over 30d (history store): median {:.2} ms, max {:.2} ms",
        ms(median),
        ms(max)
    );
    drop(db);

    // The same query over a store holding every minute of the 30 days.
    let mut full = Db::default();
    for v in 1..=3 {
        let version = format!("v{v}");
        for code in ["200", "500"] {
            let l = labels(
                "http_requests_total",
                &[
                    ("namespace", "shop"),
                    ("service", "svc-3"),
                    ("version", &version),
                    ("code", code),
                ],
            );
            let per_min = if code == "200" { 2_997.0 } else { 3.0 };
            for m in 0..=(30 * 24 * 60) {
                full.append(&l, at - (30 * 24 * 60 - m) * 60_000, per_min * m as f64);
            }
        }
    }
    let (median, max) = time_query(&full, one, at, 200);
    println!(
        "error ratio of one service over 30d at 1m resolution ({} samples): median {:.2} ms, max {:.2} ms",
        full.samples(),
        ms(median),
        ms(max)
    );
}
