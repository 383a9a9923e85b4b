//! `glidepath demo` headless, every scenario: the exit code the README documents and where
//! the release ended. Pauses and soaks are shortened with `--set`; the bad canary keeps its
//! canary long enough for the new version to degrade (it starts failing 10 s in).

use std::process::{Command, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_glidepath");

/// Runs the demo; returns the exit code, stderr and the JSON report.
fn demo(scenario: &str, pause: &str) -> (i32, String, Value) {
    let home = tempfile::tempdir().unwrap();
    let report = home.path().join("report.json");
    let out = Command::new(BIN)
        .args(["demo", "--headless", "--scenario", scenario])
        .args(["--set", &format!("pause={pause}"), "--set", "soak=3s"])
        .arg("--report")
        .arg(&report)
        .env("GLIDEPATH_HOME", home.path())
        .env_remove("GLIDEPATH_JOURNAL")
        .current_dir(home.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report: Value = serde_json::from_slice(&std::fs::read(&report).unwrap_or_default())
        .unwrap_or_else(|e| panic!("no report ({e}): {stderr}"));
    (out.status.code().unwrap_or(-1), stderr, report)
}

/// `stage/step` → status, from the report.
fn status(report: &Value, stage: &str, step: &str) -> String {
    report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == stage)
        .and_then(|s| s["steps"].as_array()?.iter().find(|x| x["name"] == step))
        .map(|s| s["status"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_else(|| "absent".into())
}

#[test]
fn happy_releases_to_production_and_exits_0() {
    let (code, out, report) = demo("happy", "1s");
    assert_eq!(code, 0, "{out}");
    // The banner says what runs; headless, the demo approves its own approval.
    assert!(out.contains("demo · scenario happy"), "{out}");
    assert!(out.contains("approved by --auto-approve"), "{out}");
    assert!(out.contains("production runs checkout 1.0.0"), "{out}");
    assert_eq!(report["status"], "passed");
    for (stage, step) in [
        ("staging", "preflight"),
        ("staging", "database"),
        ("staging", "monitoring"),
        ("staging", "deploy"),
        ("staging", "smoke"),
        ("staging", "load"),
        ("staging", "chaos"),
        ("staging", "evaluate"),
        ("staging", "promote-to-prod"),
        ("prod", "error-budget"),
        ("prod", "release"),
        ("prod", "announce"),
    ] {
        assert_eq!(
            status(&report, stage, step),
            "passed",
            "{stage}/{step}: {out}"
        );
    }
    // The canary went through every traffic step against 1.0.0 in production.
    for step in ["canary 10%", "canary 25%", "canary 50%", "canary 100%"] {
        assert!(out.contains(step), "{step}: {out}");
    }
    assert!(
        out.contains("checkout 2.0.0 is live in production"),
        "{out}"
    );
}

#[test]
fn bad_canary_rolls_back_by_itself_and_exits_1() {
    let (code, out, report) = demo("bad-canary", "8s");
    assert_eq!(code, 1, "{out}");
    assert_eq!(report["status"], "rolled-back", "{out}");
    // Staging is healthy (2.0.0 is the first version there); production's canary is not.
    assert_eq!(status(&report, "staging", "promote-to-prod"), "passed");
    assert_eq!(status(&report, "prod", "release"), "failed");
    assert_eq!(status(&report, "prod", "announce"), "skipped");
    assert!(out.contains("key SLI failed: error_ratio"), "{out}");
    assert!(out.contains("traffic back on stable"), "{out}");
}

#[test]
fn slow_canary_fails_its_latency_objective_and_exits_1() {
    let (code, out, report) = demo("slow-canary", "4s");
    assert_eq!(code, 1, "{out}");
    assert_eq!(report["status"], "rolled-back", "{out}");
    assert_eq!(status(&report, "prod", "release"), "failed");
    assert!(out.contains("✗ latency_p95_ms"), "{out}");
}

#[test]
fn missing_infra_stops_at_pre_flight_and_exits_1() {
    let (code, out, report) = demo("missing-infra", "1s");
    assert_eq!(code, 1, "{out}");
    assert_eq!(report["status"], "failed");
    assert_eq!(status(&report, "staging", "preflight"), "failed");
    // Nothing was applied: the database step never ran.
    assert_eq!(status(&report, "staging", "database"), "skipped");
    assert!(
        out.contains("CRD prometheusrules.monitoring.coreos.com: missing"),
        "{out}"
    );
}

#[test]
fn budget_exhausted_holds_the_release_before_the_canary_and_exits_1() {
    let (code, out, report) = demo("budget-exhausted", "1s");
    assert_eq!(code, 1, "{out}");
    assert_eq!(report["status"], "failed");
    assert_eq!(status(&report, "prod", "error-budget"), "failed");
    assert_eq!(status(&report, "prod", "release"), "skipped");
    assert!(out.contains("budget remaining 5.0%"), "{out}");
}
