//! How often the threshold analysis rolls back a healthy canary, and how it treats a bad
//! one, under the release-train demo's schedule: figures for BENCHMARKS.md, and the reason
//! the demo train's members give `failureLimit` room.
//!
//! Each simulated release sends Poisson traffic at `rps` requests a second through the
//! Service: the canary takes half (its replicas equal the stable's) for the pause, then
//! all of it. Each request fails with the sandbox's own model (`sandbox::workload`: one in
//! 2,000 for a healthy version, 15% for `train-bad`'s checkout). Counters are scraped
//! every second; a series' first sample already holds its first second, so that second's
//! requests never show in an increase, as with Prometheus. Every 2 s (the demo's
//! `interval`) the error ratio is the increase of errors over the increase of requests in
//! the window, max(interval, 30 s), as the release measures it, and glidepath's own SLO
//! evaluation (`slo::evaluate`, `config/demo/slo.yaml`) judges it, the p95 held at a
//! passing 120 ms. Failures past `failureLimit` or no data past `inconclusiveLimit: 3`
//! roll back; after the pause, one full interval at 100% later, a `pass` promotes and a
//! `warning` holds for the operator.
//!
//! Run: `cargo bench --bench threshold_calibration` (release build; seconds).

use std::collections::BTreeMap;
use std::path::Path;

use glidepath::events::Verdict;
use glidepath::sandbox::workload::{Behaviour, Conditions, Rng};
use glidepath::slo::{Slo, evaluate, load_file};

/// Releases simulated per row.
const RELEASES: usize = 20_000;
/// Seconds between two analyses (the demo train's `interval`).
const INTERVAL: usize = 2;
/// The window the SLIs are measured over: max(interval, 30 s).
const WINDOW: usize = 30;
/// No data past this many analyses rolls back (the demo train's `inconclusiveLimit`).
const INCONCLUSIVE_LIMIT: usize = 3;
/// Analyses after the pause before a release is counted as held.
const MAX_FINAL: usize = 20;

/// What became of one release.
#[derive(Clone, Copy, PartialEq)]
enum End {
    Promoted,
    RolledBack,
    Held,
}

/// One release; its end and the second it ended.
fn release(
    rng: &mut Rng,
    slo: &Slo,
    version: &Conditions,
    rps: f64,
    pause: usize,
    failure_limit: usize,
) -> (End, usize) {
    let end = pause + INTERVAL * (MAX_FINAL + 1) + 1;
    // Cumulative (requests, errors) scraped at the end of each second.
    let mut counters = Vec::with_capacity(end);
    let (mut n, mut e) = (0u64, 0u64);
    for t in 0..end {
        let share = if t < pause { 0.5 } else { 1.0 };
        for _ in 0..rng.poisson(rps * share) {
            n += 1;
            if version.sample_code(rng) >= 500 {
                e += 1;
            }
        }
        counters.push((n, e));
    }
    let (mut failures, mut inconclusive) = (0, 0);
    let mut t = INTERVAL;
    while t < end {
        // Samples at the ends of seconds 0..t-1 within the window; the first is the
        // series' first.
        let last = t - 1;
        let first = t.saturating_sub(WINDOW);
        let (n0, e0) = counters[first];
        let (n1, e1) = counters[last];
        let ratio = (n1 > n0).then(|| (e1 - e0) as f64 / (n1 - n0) as f64);
        let values = BTreeMap::from([
            ("error_ratio".to_owned(), ratio),
            ("latency_p95_ms".to_owned(), Some(120.0)),
        ]);
        let judging = t >= pause + INTERVAL;
        match evaluate(slo, &values, &[]).result {
            Verdict::Fail => {
                failures += 1;
                if failures > failure_limit {
                    return (End::RolledBack, t);
                }
            }
            Verdict::Error => {
                inconclusive += 1;
                if inconclusive > INCONCLUSIVE_LIMIT {
                    return (End::RolledBack, t);
                }
            }
            Verdict::Pass if judging => return (End::Promoted, t),
            Verdict::Warning if judging => return (End::Held, t),
            _ => {}
        }
        t += INTERVAL;
    }
    (End::Held, end)
}

fn row(slo: &Slo, rps: f64, pause: usize, failure_limit: usize) {
    let mut rng = Rng::new(0x5eed_0002);
    let mut count = |version: &Conditions| {
        let mut ends = [0usize; 3];
        let mut rolled_at = Vec::new();
        for _ in 0..RELEASES {
            let (end, at) = release(&mut rng, slo, version, rps, pause, failure_limit);
            let i = match end {
                End::Promoted => 0,
                End::RolledBack => {
                    rolled_at.push(at);
                    1
                }
                End::Held => 2,
            };
            ends[i] += 1;
        }
        rolled_at.sort_unstable();
        let median = rolled_at.get(rolled_at.len() / 2).copied().unwrap_or(0);
        (ends.map(|n| 100.0 * n as f64 / RELEASES as f64), median)
    };
    let healthy = Behaviour::default().conditions(std::time::Duration::ZERO, 0.0, 1);
    let bad = Conditions {
        error_ratio: 0.15,
        ..healthy
    };
    let (good, _) = count(&healthy);
    let (worse, at) = count(&bad);
    println!(
        "| {failure_limit} | {rps} | {pause} s | {:.2}% | {:.2}% | {:.1}% ({at} s) | {:.1}% |",
        good[1], good[2], worse[1], worse[0]
    );
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let slo = load_file(&root.join("config/demo/slo.yaml"), None).expect("the demo's SLO loads");
    println!(
        "{RELEASES} releases a row; healthy: one request in 2,000 fails; bad: 15% (train-bad's checkout)"
    );
    println!();
    println!(
        "| failureLimit | req/s | pause | healthy rolled back | healthy held | bad rolled back (median second) | bad promoted |"
    );
    println!("|---|---|---|---|---|---|---|");
    for failure_limit in [1, 2, 3] {
        for rps in [20.0, 100.0] {
            for pause in [4, 15] {
                row(&slo, rps, pause, failure_limit);
            }
        }
    }
}
