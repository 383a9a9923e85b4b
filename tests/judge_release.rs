//! `judge: statistical` under a canary on the sandbox, through the glidepath binary: a
//! canary 30% slower than its baseline (the `subtle-canary` scenario, well within the SLO's
//! latency target) passes the fixed thresholds and is caught by the statistical judge; a
//! healthy canary promotes; too few samples hold the release until `glidepath approve`;
//! the baseline never outlives its canary (promotion, rollback, `glidepath rollback`); the
//! judgement's evidence reaches the JSON, JUnit and Markdown reports.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

#[path = "support/sandbox_env.rs"]
mod sandbox_env;
use sandbox_env::{BASELINE, Env, env, step_status, template_version};

#[path = "support/wait.rs"]
mod wait;
use wait::wait_until_async;

/// The statistical judge's settings of these tests, with `lookback`.
fn statistical(lookback: &str) -> String {
    format!(
        "judge: statistical, statistical: {{ lookback: {lookback}, step: 2s, rateWindow: 2s, metrics: {{ latency_mean_ms: {{ allowedIncrease: 1.15, critical: true }}, latency_p95_ms: {{ allowedIncrease: 1.2 }}, error_ratio: {{ nanStrategy: replace, allowedIncrease: 1.5 }} }}, errors: {{ requests: requests, errors: errors, allowedIncrease: 2, critical: true }} }}"
    )
}

/// A canary of the fixture app over `router` with `judge` settings in its analysis.
fn canary(router: &str, judge: &str, steps: &str) -> String {
    format!(
        "{BASELINE}    - name: prod\n      steps:\n        - release:\n            manifests: [{{fixtures}}/app/]\n            canary:\n              router: {router}\n              analysis: {{ slo: {{fixtures}}/slo-statistical.yaml, interval: 2s, failureLimit: 1, inconclusiveLimit: 2, {judge} }}\n              steps: {steps}\n          onFailure: rollback\n"
    )
}

/// Steps long enough for a few dozen samples a side.
const STEPS: &str = "[ { weight: 25 }, { pause: 12s }, { weight: 50 }, { pause: 12s } ]";

fn stable_version(e: &Env) -> String {
    template_version(&e.get("apps", "deployments", "checkout").unwrap()).to_owned()
}

fn no_baseline_left(e: &Env) {
    assert!(e.get("apps", "deployments", "checkout-baseline").is_none());
    assert!(e.get("", "services", "checkout-baseline").is_none());
    assert!(e.get("apps", "deployments", "checkout-canary").is_none());
}

/// The reports of run 1, written by `glidepath history 1 --report-dir`.
fn reports(e: &Env) -> std::path::PathBuf {
    let dir = e.dir.path().join("reports");
    let out = e.glidepath(&["history", "1", "--report-dir", &dir.display().to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subtly_slower_canary_passes_the_thresholds_but_not_the_statistical_judge() {
    // Thresholds alone: p95 well under 300 ms, so the slower canary is promoted.
    let e = env("subtle-canary").await;
    let (code, out) = e
        .run(e.pipeline(&canary("gateway-api", "", STEPS), "1h"), &[])
        .await;
    assert_eq!(code, 0, "thresholds alone miss it: {out}");
    assert_eq!(stable_version(&e), "2.0.0");

    // The statistical judge, against a fresh baseline of 1.0.0: rolled back.
    let e = env("subtle-canary").await;
    let pipeline = e.pipeline(&canary("gateway-api", &statistical("20s"), STEPS), "1h");
    let (code, out) = e.run(pipeline, &[]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("statistical judge: fail"), "{out}");
    assert!(
        out.contains("critical metric latency_mean_ms failed"),
        "{out}"
    );
    assert!(
        out.contains("(stable/baseline/canary)"),
        "the baseline took the canary's share: {out}"
    );
    assert!(out.contains("canary and baseline removed"), "{out}");
    assert_eq!(stable_version(&e), "1.0.0");
    no_baseline_left(&e);

    // The evidence, in every report: the samples in JSON, the table in JUnit and Markdown.
    let dir = reports(&e);
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    let release = report["stages"][1]["steps"][0].clone();
    assert_eq!(release["status"], "failed");
    let latency = release["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["check"] == "latency_mean_ms")
        .expect("latency evidence")
        .clone();
    let c = &latency["comparison"];
    assert_eq!(c["test"], "mann-whitney");
    assert_eq!(c["classification"], "high");
    assert!(c["effect_size"].as_f64().unwrap() >= 1.15, "{c}");
    let canary_mean = c["canary"]["mean"].as_f64().unwrap();
    let baseline_mean = c["baseline"]["mean"].as_f64().unwrap();
    assert!(canary_mean > baseline_mean, "{c}");
    assert!(canary_mean < 300.0, "within the SLO's target: {c}");
    assert!(c["canary"]["values"].as_array().unwrap().len() >= 5, "{c}");
    assert!(c["query"].as_str().unwrap().contains("version=\"2.0.0\""));
    assert!(
        c["baseline_query"]
            .as_str()
            .unwrap()
            .contains("version=\"baseline\"")
    );
    let judgements = report["judgements"].as_array().unwrap();
    assert!(!judgements.is_empty());
    assert!(
        judgements
            .iter()
            .any(|j| j["judgement"]["outcome"] == "fail")
    );
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(junit.contains("latency_mean_ms: canary"), "{junit}");
    assert!(junit.contains("mann-whitney"), "{junit}");
    let md = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(md.contains("| latency_mean_ms |"), "{md}");
    assert!(md.contains("baseline"), "{md}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_canary_promotes_and_its_baseline_goes_with_it() {
    let e = env("happy").await;
    let pipeline = e.pipeline(&canary("replicas", &statistical("20s"), STEPS), "1h");
    let (code, out) = e.run(pipeline, &[]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("canary 25%: 1 canary, 1 baseline and 2 stable replicas ready"),
        "{out}"
    );
    assert!(out.contains("statistical judge: pass"), "{out}");
    assert!(out.contains("baseline removed"), "{out}");
    assert_eq!(stable_version(&e), "2.0.0");
    no_baseline_left(&e);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_few_samples_hold_the_release_until_the_operator_approves() {
    let e = env("happy").await;
    // Four samples a side can never reach 98% confidence: inconclusive, never a pass.
    let pipeline = e.pipeline(
        &canary("gateway-api", &statistical("3s"), "[ { weight: 25 } ]"),
        "1h",
    );
    let operator = async {
        e.wait_report(1, Duration::from_secs(120), "the inconclusive hold", |r| {
            step_status(r, "prod", "release") == "waiting-for-approval"
        })
        .await;
        assert_eq!(stable_version(&e), "1.0.0", "held, not promoted");
        assert!(e.get("apps", "deployments", "checkout-baseline").is_some());
        let out = e.glidepath(&["approve", "1"]);
        assert!(out.status.success());
    };
    let ((code, out), ()) = tokio::join!(e.run(pipeline, &[]), operator);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("inconclusive: the outcome could be pass"),
        "{out}"
    );
    assert!(out.contains("cannot tell yet (inconclusive)"), "{out}");
    // The promotion's evidence says why: the samples were too few.
    let report: Value =
        serde_json::from_slice(&e.glidepath(&["history", "1", "--json"]).stdout).unwrap();
    let release = &report["stages"][1]["steps"][0];
    assert_eq!(release["status"], "warning", "approved, not passed");
    let latency = release["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["check"] == "latency_mean_ms")
        .expect("latency evidence");
    let reason = latency["comparison"]["reason"].as_str().unwrap();
    assert!(reason.contains("too few samples to tell"), "{reason}");
    assert!(
        out.contains("the statistical judge was inconclusive; approved by"),
        "{out}"
    );
    assert_eq!(stable_version(&e), "2.0.0");
    no_baseline_left(&e);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_rollback_removes_the_baseline_too() {
    let e = env("happy").await;
    let steps = "[ { weight: 25 }, { pause: {} } ]";
    let pipeline = e.pipeline(&canary("gateway-api", &statistical("20s"), steps), "1h");
    let operator = async {
        let up = wait_until_async(Duration::from_secs(120), async || {
            e.get("apps", "deployments", "checkout-baseline").is_some()
                && e.get("", "services", "checkout-baseline").is_some()
        })
        .await;
        assert!(up, "the baseline never started");
        let kubeconfig = e.kubeconfig.display().to_string();
        let out = Command::new(env!("CARGO_BIN_EXE_glidepath"))
            .args(["rollback", "checkout", "--kubeconfig", &kubeconfig])
            .args(["--context", "glidepath-sandbox", "-n", "shop", "--yes"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{text}");
        assert!(text.contains("canary and baseline removed"), "{text}");
    };
    let ((code, out), ()) = tokio::join!(e.run(pipeline, &[]), operator);
    assert_eq!(code, 1, "{out}");
    assert_eq!(stable_version(&e), "1.0.0");
    no_baseline_left(&e);
    let route = e
        .get("gateway.networking.k8s.io", "httproutes", "checkout")
        .unwrap();
    let refs = route
        .pointer("/spec/rules/0/backendRefs")
        .and_then(Value::as_array)
        .unwrap();
    assert!(
        refs.iter().all(|r| r["name"] == "checkout"),
        "only stable is routed: {refs:?}"
    );
}
