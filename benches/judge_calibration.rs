//! How often the statistical judge rolls back a healthy canary, and how often it catches a
//! slower one, under the demo's schedule: figures for BENCHMARKS.md, and the reason the
//! judge's samples never share requests (`rateWindow` at most `step`).
//!
//! Each simulated release sends Poisson traffic at `rps` requests a second through the
//! route; canary and baseline each take the canary's weight (10%, 25%, 50%, each held for
//! the pause), their requests' latencies drawn from the sandbox's own log-normal model
//! (`sandbox::workload`, p50 40 ms, p99 180 ms; the slower canary 1.3 times both). Every
//! 3 s an analysis range-queries the mean latency of each side (sum over count in each
//! sample's rate window) over the lookback and judges it as the release does:
//! `latency_mean_ms` with `allowedIncrease: 1.15`, critical, `failureLimit: 1`. After the
//! last pause, judgements go on until one passes (promoted) or the failures pass the limit
//! (rolled back). The rank test, interval and effect size are glidepath's own
//! (`judge::judge_metric`); only the traffic is simulated.
//!
//! Run: `cargo bench --bench judge_calibration` (release build; about two minutes on 2 cores).

use std::time::Duration;

use glidepath::judge::{Classification, Direction, MetricConfig, judge_metric};
use glidepath::sandbox::workload::{Behaviour, Conditions, Rng};

/// Releases simulated per row.
const RELEASES: usize = 2000;
/// Seconds between two analyses (the demo's `interval`).
const INTERVAL: usize = 3;
/// Judgements after the last pause before a release is counted as held.
const MAX_FINAL: usize = 20;

/// The judge's settings under test.
#[derive(Clone, Copy)]
struct Settings {
    lookback: usize,
    step: usize,
    rate_window: usize,
    /// Samples start once both sides have served a whole rate window.
    after_traffic: bool,
}

/// What became of one release.
#[derive(Clone, Copy, PartialEq)]
enum End {
    Promoted,
    RolledBack,
    Held,
}

/// Requests of one side in each second: (count, latency sum in ms).
struct Side {
    seconds: Vec<(u32, f64)>,
}

impl Side {
    /// The mean latency over the `window` seconds ending with second `t`.
    fn mean(&self, t: usize, window: usize) -> Option<f64> {
        let from = (t + 1).saturating_sub(window);
        let (n, sum) = self.seconds[from..=t]
            .iter()
            .fold((0u32, 0.0), |(n, s), (c, x)| (n + c, s + x));
        (n > 0).then(|| sum / f64::from(n))
    }
}

/// `seconds` of one side's traffic at `rps(t)` requests a second.
fn traffic(rng: &mut Rng, c: &Conditions, rps: impl Fn(usize) -> f64, seconds: usize) -> Side {
    let seconds = (0..seconds)
        .map(|t| {
            let n = rng.poisson(rps(t));
            let sum: f64 = (0..n).map(|_| c.sample_latency(rng) * 1e3).sum();
            (n, sum)
        })
        .collect();
    Side { seconds }
}

/// One release of a canary `slower` times the baseline's latency.
fn release(rng: &mut Rng, s: Settings, rps: f64, pause: usize, slower: f64) -> End {
    let base = Behaviour::default().conditions(Duration::ZERO, 0.0, 1);
    let canary = Conditions {
        p50: base.p50 * slower,
        p99: base.p99 * slower,
        ..base
    };
    let weights = [10.0, 25.0, 50.0];
    let end = weights.len() * pause + INTERVAL * (MAX_FINAL + 1) + 1;
    let share = |t: usize| rps * weights[(t / pause.max(1)).min(weights.len() - 1)] / 100.0;
    let sides = [
        traffic(rng, &canary, share, end),
        traffic(rng, &base, share, end),
    ];
    let config = MetricConfig {
        direction: Direction::Increase,
        allowed_increase: Some(1.15),
        critical: true,
        ..MetricConfig::default()
    };
    let mut failures = 0;
    let last_pause_ends = weights.len() * pause;
    let mut t = INTERVAL;
    while t < end {
        let first = if s.after_traffic { s.rate_window } else { 0 };
        let start = t.saturating_sub(s.lookback).max(first);
        let samples: [Vec<Option<f64>>; 2] = sides.each_ref().map(|side| {
            (start..=t)
                .step_by(s.step)
                .map(|u| side.mean(u, s.rate_window))
                .collect()
        });
        let v = judge_metric(&samples[0], &samples[1], &config).expect("valid settings");
        let judging = t > last_pause_ends;
        match v.classification {
            Classification::High => {
                failures += 1;
                if failures > 1 {
                    return End::RolledBack;
                }
            }
            Classification::Pass if judging => return End::Promoted,
            _ => {}
        }
        t += INTERVAL;
    }
    End::Held
}

fn row(label: &str, s: Settings, rps: f64, pause: usize) {
    let mut rng = Rng::new(0x5eed_0001);
    let mut count = |slower: f64| {
        let mut ends = [0usize; 3];
        for _ in 0..RELEASES {
            let i = match release(&mut rng, s, rps, pause, slower) {
                End::Promoted => 0,
                End::RolledBack => 1,
                End::Held => 2,
            };
            ends[i] += 1;
        }
        ends.map(|n| 100.0 * n as f64 / RELEASES as f64)
    };
    let healthy = count(1.0);
    let slower = count(1.3);
    println!(
        "| {label} | {rps} | {pause} s | {:.2}% | {:.1}% | {:.1}% | {:.1}% |",
        healthy[1], healthy[2], slower[1], slower[0]
    );
}

fn main() {
    let overlapping = Settings {
        lookback: 30,
        step: 1,
        rate_window: 5,
        after_traffic: false,
    };
    let disjoint = Settings {
        lookback: 30,
        step: 2,
        rate_window: 2,
        after_traffic: true,
    };
    println!("{RELEASES} releases a row; healthy: canary = baseline; slower: canary latency x1.3");
    println!();
    println!(
        "| samples | req/s | pause | healthy rolled back | healthy held | slower rolled back | slower promoted |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (label, s) in [
        ("step 1 s, window 5 s (overlapping)", overlapping),
        ("step 2 s, window 2 s, after traffic", disjoint),
    ] {
        for rps in [20.0, 100.0] {
            for pause in [1, 15] {
                row(label, s, rps, pause);
            }
        }
    }
}
