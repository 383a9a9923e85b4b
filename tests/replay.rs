//! `glidepath replay`: a recorded bad canary decided again from the journal alone, with the
//! run's own SLO (nothing changes) and with a looser one (the promotion it would have
//! allowed); a subtly slower canary the statistical judge rolled back, judged again with
//! its own settings (nothing changes) and with a looser judge (the promotion); and the
//! errors bad input gets.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

#[path = "support/sandbox_env.rs"]
mod sandbox_env;
use sandbox_env::{BASELINE, env};

const BIN: &str = env!("CARGO_BIN_EXE_glidepath");

fn glidepath(home: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("GLIDEPATH_HOME", home)
        .env_remove("GLIDEPATH_JOURNAL")
        .current_dir(home)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The release step's ending in a replay's JSON.
fn ending<'a>(doc: &'a Value, which: &str) -> &'a Value {
    let steps = doc["steps"].as_array().unwrap();
    let release = steps.iter().find(|s| s["step"] == "prod/release").unwrap();
    &release[which]
}

#[test]
fn a_recorded_bad_canary_with_a_looser_slo_shows_the_promotion_it_would_have_allowed() {
    let home = tempfile::tempdir().unwrap();
    // 2 s pauses: the bad canary reaches its last weight before it degrades, so its
    // judgement is recorded (it fails later, in the judgement or the bake).
    let demo = glidepath(
        home.path(),
        &[
            "demo",
            "--headless",
            "--scenario",
            "bad-canary",
            "--set",
            "pause=2s",
            "--set",
            "soak=3s",
            // The SLO's thresholds judge the canary: a replay re-decides those (the
            // statistical judge's own decisions are kept as recorded).
            "--set",
            "judge=thresholds",
        ],
    );
    assert_eq!(demo.status.code(), Some(1), "{}", text(&demo));

    // The run's own SLO: every decision as recorded, exit 0.
    let same = glidepath(home.path(), &["replay", "1", "--json"]);
    assert_eq!(same.status.code(), Some(0), "{}", text(&same));
    let doc: Value = serde_json::from_slice(&same.stdout).unwrap();
    assert_eq!(doc["changed"], 0, "{doc:#}");
    assert_eq!(ending(&doc, "recorded")["ending"], "stopped", "{doc:#}");
    assert_eq!(ending(&doc, "replayed"), ending(&doc, "recorded"));
    let decisions = doc["decisions"].as_array().unwrap();
    assert!(
        decisions.iter().any(|d| d["part"] == "judge"),
        "the judgement at 100% is journaled as such: {doc:#}"
    );

    // A looser SLO: the judgement would have passed and promoted.
    let slo = home.path().join("demo/config/demo/slo.yaml");
    let loose = std::fs::read_to_string(&slo)
        .unwrap()
        .replace("\"<=0.01\"", "\"<=0.9\"")
        .replace("\"<=0.02\"", "\"<=0.95\"")
        .replace("\"<300\"", "\"<60000\"")
        .replace("\"<400\"", "\"<90000\"");
    let loose_path = home.path().join("loose.yaml");
    std::fs::write(&loose_path, loose).unwrap();
    let replayed = glidepath(
        home.path(),
        &[
            "replay",
            "1",
            "--slo",
            loose_path.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(replayed.status.code(), Some(1), "{}", text(&replayed));
    let doc: Value = serde_json::from_slice(&replayed.stdout).unwrap();
    assert_eq!(ending(&doc, "recorded")["ending"], "stopped", "{doc:#}");
    let promoted = ending(&doc, "replayed");
    assert_eq!(promoted["ending"], "promoted", "{doc:#}");
    assert_eq!(promoted["on"], "pass", "{doc:#}");
    assert!(doc["changed"].as_u64().unwrap() >= 1, "{doc:#}");

    // The same, for a person.
    let shown = glidepath(
        home.path(),
        &["replay", "1", "--slo", loose_path.to_str().unwrap()],
    );
    let out = text(&shown);
    assert!(out.contains("recorded: rolled back at analysis"), "{out}");
    assert!(out.contains("replayed: promoted at analysis"), "{out}");
    assert!(
        out.contains("and the run would have gone otherwise"),
        "{out}"
    );

    // Its analyses were judged by thresholds: there are no samples for --judge.
    let judge = home.path().join("judge.yaml");
    std::fs::write(
        &judge,
        "metrics:\n  latency_mean_ms: { allowedIncrease: 2 }\n",
    )
    .unwrap();
    let refused = glidepath(
        home.path(),
        &["replay", "1", "--judge", judge.to_str().unwrap()],
    );
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("judged by the SLO's thresholds")
            && text(&refused).contains("`--slo FILE` replays thresholds"),
        "{}",
        text(&refused)
    );
}

/// The statistical judge's settings of the recorded run; a judge file holds them without
/// the sampling keys (which a replay refuses).
fn judge_settings() -> Value {
    serde_json::json!({
        "metrics": {
            // 80% confidence: sure of a 30% shift within seconds of samples.
            "latency_mean_ms": { "allowedIncrease": 1.15, "critical": true, "confidence": 0.8 },
            "latency_p95_ms": { "allowedIncrease": 1.2 },
            "error_ratio": { "nanStrategy": "replace", "allowedIncrease": 1.5 }
        },
        "errors": { "requests": "requests", "errors": "errors", "allowedIncrease": 2, "critical": true, "floor": "1%" }
    })
}

/// `settings` with `change` applied, written as a judge file (JSON is YAML).
fn judge_file(dir: &Path, name: &str, change: impl Fn(&mut Value)) -> String {
    let mut settings = judge_settings();
    change(&mut settings);
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(&settings).unwrap()).unwrap();
    path.display().to_string()
}

/// A canary 30% slower than its baseline (the sandbox's `subtle-canary`), watched at 25%
/// long enough for the judge to be sure (its at most 8 failures there are tolerated),
/// then judged at 50% beside a baseline as large: the judgements fail until the limit,
/// and the canary is rolled back.
const SUBTLE: &str = "    - name: prod\n      steps:\n        - release:\n            manifests: [{fixtures}/app/]\n            canary:\n              router: gateway-api\n              analysis: { slo: {fixtures}/slo-statistical.yaml, interval: 3s, failureLimit: 9, inconclusiveLimit: 4, judge: statistical, statistical: SETTINGS }\n              steps: [ { weight: 25 }, { pause: 24s }, { weight: 50 } ]\n          onFailure: rollback\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subtly_slower_canary_judged_again_with_a_looser_judge_shows_the_promotion_it_would_have_allowed()
 {
    let e = env("subtle-canary").await;
    let mut settings = judge_settings();
    for (key, value) in [("lookback", "30s"), ("step", "2s"), ("rateWindow", "2s")] {
        settings[key] = serde_json::json!(value);
    }
    let stages = format!(
        "{BASELINE}{}",
        SUBTLE.replace("SETTINGS", &settings.to_string())
    );
    let (code, out) = e.run(e.pipeline(&stages, "1h"), &[]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("critical metric latency_mean_ms failed"),
        "{out}"
    );
    let home = e.dir.path();
    let glidepath = |args: &[&str]| glidepath(home, args);
    // Run 1 is the release (the baseline stage deploys 1.0.0 first).
    let run = "1";
    // The recorded settings: every judgement as recorded, exit 0.
    let same = judge_file(home, "same.json", |_| {});
    let out = glidepath(&["replay", run, "--judge", &same, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["changed"], 0, "{doc:#}");
    assert_eq!(doc["left_out"], serde_json::json!([]), "{doc:#}");
    assert_eq!(ending(&doc, "recorded")["ending"], "stopped", "{doc:#}");
    assert_eq!(ending(&doc, "replayed"), ending(&doc, "recorded"));
    let judged: Vec<&Value> = doc["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["metrics"].is_array())
        .collect();
    assert!(judged.len() >= 2, "every judgement judged again: {doc:#}");
    assert!(
        judged.iter().any(|d| d["part"] == "judge"),
        "the canary was judged at its last weight: {doc:#}"
    );

    // A looser judge, without the error counts: the canary's 30% would have promoted.
    let loose = judge_file(home, "loose.json", |s| {
        for metric in ["latency_mean_ms", "latency_p95_ms"] {
            s["metrics"][metric]["allowedIncrease"] = serde_json::json!(2.0);
        }
        s.as_object_mut().unwrap().remove("errors");
    });
    let out = glidepath(&["replay", run, "--judge", &loose, "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ending(&doc, "recorded")["ending"], "stopped", "{doc:#}");
    let promoted = ending(&doc, "replayed");
    assert_eq!(promoted["ending"], "promoted", "{doc:#}");
    assert_eq!(
        doc["left_out"],
        serde_json::json!(["error-counts"]),
        "{doc:#}"
    );
    let latency = doc["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["metrics"].as_array().cloned().unwrap_or_default())
        .find(|m| m["metric"] == "latency_mean_ms" && m["recorded"] == "high")
        .expect("a recorded failure of latency_mean_ms");
    assert_eq!(latency["replayed"], "pass", "{doc:#}");
    assert!(latency["effect_size"].as_f64().unwrap() < 2.0, "{doc:#}");

    // The same, for a person.
    let out = text(&glidepath(&["replay", run, "--judge", &loose]));
    assert!(out.contains("recorded: rolled back at analysis"), "{out}");
    assert!(out.contains("replayed: promoted at analysis"), "{out}");
    assert!(out.contains("latency_mean_ms high → pass"), "{out}");
    assert!(
        out.contains(
            "left out of the judgements (the judge file lists other metrics): error-counts"
        ),
        "{out}"
    );

    // The cockpit's history view replays it with the run's own SLO: the statistical
    // judge's judgements as recorded, so nothing changes.
    let view = glidepath::cli::history::source(home.join("journal.db"))
        .replay(1)
        .unwrap();
    assert_eq!((view.run, view.status.as_str()), (1, "rolled-back"));
    assert_eq!(view.replay.changed(), 0, "{:#?}", view.replay);
    assert!(!view.replay.outcome_changed());

    // Bad judge files: exit 2, with where.
    let bad = |name: &str, body: &str| {
        let path = home.join(name);
        std::fs::write(&path, body).unwrap();
        let out = glidepath(&["replay", run, "--judge", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        text(&out)
    };
    let out = bad(
        "step.yaml",
        "metrics:\n  latency_mean_ms: { allowedIncrease: 2 }\nstep: 5s\n",
    );
    assert!(out.contains("step.yaml:3:1: `step` changes"), "{out}");
    let out = bad(
        "order.yaml",
        "metrics:\n  latency_mean_ms:\n    allowedIncrease: 2\n    criticalIncrease: 1.5\n",
    );
    assert!(
        out.contains("order.yaml:2:3: metrics.latency_mean_ms:"),
        "{out}"
    );
    let out = bad("cpu.yaml", "metrics:\n  cpu_seconds: {}\n");
    assert!(
        out.contains("cpu.yaml:2:3: metrics.cpu_seconds: run 1 never sampled `cpu_seconds` (it sampled error_ratio, latency_mean_ms, latency_p95_ms)"),
        "{out}"
    );
    let out = bad(
        "typo.yaml",
        "metrics: { latency_mean_ms: { alowedIncrease: 2 } }\n",
    );
    assert!(out.contains("typo.yaml:1:"), "{out}");
    assert!(out.contains("unknown field `alowedIncrease`"), "{out}");
}

#[test]
fn bad_input_is_refused_with_exit_2() {
    let home = tempfile::tempdir().unwrap();
    let missing = glidepath(home.path(), &["replay", "7"]);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    assert!(text(&missing).contains('7'), "{}", text(&missing));

    let bad = home.path().join("bad.yaml");
    std::fs::write(&bad, "kind: SLO\nspec: [1, 2\n").unwrap();
    let refused = glidepath(
        home.path(),
        &["replay", "1", "--slo", bad.to_str().unwrap()],
    );
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(text(&refused).contains("bad.yaml"), "{}", text(&refused));
}
