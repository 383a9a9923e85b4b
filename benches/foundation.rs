//! Foundation figures for BENCHMARKS.md: `glidepath check` wall time on a 20-stage,
//! 200-step pipeline, and journal throughput with `synchronous=FULL`.
//!
//! Run: `cargo bench --bench foundation` (release build). Prints one line per figure.

use std::process::Command;
use std::time::{Duration, Instant};

use glidepath::events::{Envelope, Event};
use glidepath::store::{Journal, NewRun, Store, now_ms};

fn big_pipeline() -> String {
    let mut text = String::from(
        "apiVersion: glidepath/v1\nkind: Pipeline\nmetadata: { name: big }\nspec:\n  variables: { version: \"1.0.0\" }\n  stages:\n",
    );
    for s in 0..20 {
        text.push_str(&format!("    - name: stage-{s}\n      steps:\n"));
        for i in 0..10 {
            let step = match i % 5 {
                0 => format!(
                    "        - name: build-{i}\n          command: {{ run: [echo, \"v${{version}}\"] }}\n          timeout: 5m\n"
                ),
                1 => format!(
                    "        - name: smoke-{i}\n          test:\n            http:\n              baseUrl: http://127.0.0.1:8080\n              checks:\n                - {{ name: health, url: /healthz, expect: {{ status: 200, maxLatency: 300ms }} }}\n"
                ),
                2 => format!(
                    "        - name: gate-{i}\n          gate: {{ steps: [build-{}, smoke-{}] }}\n",
                    i - 2,
                    i - 1
                ),
                3 => format!(
                    "        - name: approve-{i}\n          approval: {{ pass: automatic, warning: manual }}\n"
                ),
                _ => format!(
                    "        - name: soak-{i}\n          pause: 1m\n          onFailure: continue\n"
                ),
            };
            text.push_str(&step);
        }
    }
    text
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn bench_check(dir: &std::path::Path) {
    let path = dir.join("big.yaml");
    std::fs::write(&path, big_pipeline()).unwrap();
    let bin = env!("CARGO_BIN_EXE_glidepath");
    let mut times = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        let out = Command::new(bin).arg("check").arg(&path).output().unwrap();
        times.push(t.elapsed());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    times.sort();
    println!(
        "check 20 stages x 10 steps (200 steps): median {:.1} ms, p90 {:.1} ms, max {:.1} ms wall over {} runs (target < 50 ms)",
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.9).as_secs_f64() * 1e3,
        times.last().unwrap().as_secs_f64() * 1e3,
        times.len()
    );
}

fn log_event(i: u64) -> Event {
    Event::Log {
        stage: "prod".into(),
        step: "load".into(),
        source: "stdout".into(),
        line: format!("line {i}: 412 rps err 0.1% p95 180ms"),
    }
}

fn bench_journal(dir: &std::path::Path) {
    let path = dir.join("journal.db");
    let store = Store::open(&path).unwrap();
    let sets = Default::default();
    let run = store
        .create_run(&NewRun {
            pipeline: "b",
            service: "b",
            path: "b",
            source: "",
            sets: &sets,
            stage: None,
        })
        .unwrap();
    let journal = Journal::open(&path).unwrap();
    let mut seq = 1;
    // Every event durable on its own: one transaction (and fsync) each, the engine's worst case.
    let n = 500;
    let t = Instant::now();
    for _ in 0..n {
        journal
            .append_durable(Envelope {
                run,
                seq,
                at_ms: now_ms(),
                event: log_event(seq),
            })
            .unwrap();
        seq += 1;
    }
    let single = n as f64 / t.elapsed().as_secs_f64();
    // Events arriving together (a step's output): queued, committed in batches by the writer.
    let n = 100_000;
    let t = Instant::now();
    for _ in 0..n - 1 {
        journal
            .append(Envelope {
                run,
                seq,
                at_ms: now_ms(),
                event: log_event(seq),
            })
            .unwrap();
        seq += 1;
    }
    journal
        .append_durable(Envelope {
            run,
            seq,
            at_ms: now_ms(),
            event: log_event(seq),
        })
        .unwrap();
    let batched = n as f64 / t.elapsed().as_secs_f64();
    assert_eq!(store.events(run).unwrap().len() as u64, seq);
    println!(
        "journal synchronous=FULL: {single:.0} events/s committed one per transaction; {batched:.0} events/s when events arrive together (target >= 2,000/s)"
    );
}

fn main() {
    // `cargo bench` passes --bench; there are no options.
    let dir = tempfile::tempdir().unwrap();
    bench_check(dir.path());
    bench_journal(dir.path());
}
