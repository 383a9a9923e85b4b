//! Promotion rules on the sandbox, through the glidepath binary: a canary whose latest
//! analysis warns at full weight waits for the operator (or promotes when `promoteOn` lists
//! warnings); a bake rolls a promotion back when the new version fails after it; an
//! incident rollback from another shell wins over a blue-green release that is keeping its
//! old colour, and the run says who rolled it back.

use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "support/sandbox_env.rs"]
mod sandbox_env;
use sandbox_env::{BASELINE, Env, env, step_status, template_version};

/// A gateway-api canary of `app` (a folder of tests/fixtures/delivery) judged by `slo`
/// with `analysis` settings beside the interval, then `extra` lines under `canary:`.
fn canary(app: &str, slo: &str, analysis: &str, steps: &str, extra: &str) -> String {
    format!(
        "    - name: prod\n      steps:\n        - release:\n            manifests: [{{fixtures}}/{app}/]\n            canary:\n              router: gateway-api\n              analysis: {{ slo: {{fixtures}}/{slo}, interval: 2s, {analysis} }}\n              steps: {steps}\n{extra}          onFailure: rollback\n"
    )
}

/// The version the stable Deployment's pods run.
fn stable_version(e: &Env) -> String {
    template_version(&e.get("apps", "deployments", "checkout").unwrap()).to_owned()
}

/// A canary of app-warning/ judged by slo-warning.yaml: every analysis warns.
fn warning_canary(promote_on: &str) -> String {
    // One failed analysis is tolerated: on a starved machine the first sample at a new
    // weight has been seen failing while the canary scaled (twice in many runs, never
    // reproduced); what these tests judge is the warning at full weight after it.
    let analysis = format!("failureLimit: 1, inconclusiveLimit: 2{promote_on}");
    let steps = "[ { weight: 50 }, { weight: 100 } ]";
    format!(
        "{BASELINE}{}",
        canary("app-warning", "slo-warning.yaml", &analysis, steps, "")
    )
}

/// The stable Deployment's annotations.
fn annotations(e: &Env) -> Value {
    e.get("apps", "deployments", "checkout")
        .and_then(|d| d.pointer("/metadata/annotations").cloned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_that_warns_at_full_weight_waits_for_the_operator() {
    let e = env("happy").await;
    let stages = warning_canary("");
    let operator = async {
        e.wait_report(1, Duration::from_secs(120), "the warning hold", |r| {
            step_status(r, "prod", "release") == "waiting-for-approval"
        })
        .await;
        // Held, not promoted: the canary still takes all the traffic beside stable 1.0.0.
        assert_eq!(stable_version(&e), "1.0.0");
        let out = e.glidepath(&["approve", "1"]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "run 1: approve accepted",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ((code, out), ()) = tokio::join!(e.run(e.pipeline(&stages, "1h"), &[]), operator);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("held for the operator"), "{out}");
    assert!(
        out.contains("the latest analysis warned; approved by"),
        "{out}"
    );
    assert_eq!(stable_version(&e), "2.0.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stage_names_who_may_promote_a_canary_held_on_a_warning() {
    let e = env("happy").await;
    let stages = warning_canary("").replace(
        "    - name: prod\n",
        "    - name: prod\n      approvers: [alice]\n",
    );
    assert!(stages.contains("approvers: [alice]"), "{stages}");
    let answer = |who: &[&str]| {
        let out = e.glidepath(&[&["approve", "1"], who].concat());
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let operator = async {
        e.wait_report(1, Duration::from_secs(120), "the warning hold", |r| {
            step_status(r, "prod", "release") == "waiting-for-approval"
        })
        .await;
        let outsider = answer(&["--as", "mallory"]);
        assert!(outsider.starts_with("run 1: approve refused"), "{outsider}");
        let driver = answer(&["--as", "ci-bot"]);
        assert!(driver.starts_with("run 1: approve refused"), "{driver}");
        assert!(driver.contains("drives this run"), "{driver}");
        assert_eq!(
            stable_version(&e),
            "1.0.0",
            "a refused answer promotes nothing"
        );
        assert_eq!(answer(&["--as", "alice"]), "run 1: approve accepted");
    };
    let ((code, out), ()) = tokio::join!(
        e.run(e.pipeline(&stages, "1h"), &["--as", "ci-bot"]),
        operator
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("approved by alice"), "{out}");
    assert_eq!(stable_version(&e), "2.0.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warnings_promote_when_the_pipeline_says_so() {
    let e = env("happy").await;
    let stages = warning_canary(", promoteOn: [pass, warning]");
    let (code, out) = e.run(e.pipeline(&stages, "1h"), &[]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("promoteOn lists warning"), "{out}");
    assert!(!out.contains("held for the operator"), "{out}");
    assert_eq!(stable_version(&e), "2.0.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bake_rolls_back_a_promotion_that_fails_after_it() {
    // Healthy through the canary and its judgement; failing 20 s after it first served.
    let e = env("bad-canary").await;
    let stages = format!(
        "{BASELINE}{}",
        canary(
            "app",
            "slo.yaml",
            "failureLimit: 0, inconclusiveLimit: 2",
            "[ { weight: 50 }, { weight: 100 } ]",
            "              bake: 60s\n"
        )
    );
    let (code, out) = e.run(e.pipeline(&stages, "20s"), &[]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("promoted: checkout runs the new version"),
        "{out}"
    );
    assert!(out.contains("the bake failed"), "{out}");
    assert!(out.contains("checkout is back on 1.0.0"), "{out}");
    assert_eq!(stable_version(&e), "1.0.0");
    let marks = annotations(&e);
    assert!(marks.get("glidepath.dev/promoted-by").is_none(), "{marks}");
    assert!(e.get("apps", "deployments", "checkout-canary").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_rollback_wins_over_a_blue_green_keeping_its_old_colour() {
    let e = env("happy").await;
    let stages = format!(
        "{BASELINE}    - name: prod\n      steps:\n        - release:\n            manifests: [{{fixtures}}/app/]\n            blueGreen:\n              activeService: checkout\n              previewService: checkout-preview\n              analysis: {{ slo: {{fixtures}}/slo.yaml, interval: 2s }}\n              scaleDownDelay: 10m\n          onFailure: rollback\n"
    );
    let operator = async {
        // Switched: the active Service selects the new colour's pods.
        let deadline = Instant::now() + Duration::from_secs(120);
        while e
            .get("", "services", "checkout")
            .and_then(|s| s.pointer("/spec/selector/glidepath.dev~1track").cloned())
            .is_none()
        {
            assert!(Instant::now() < deadline, "the release never switched");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let kubeconfig = e.kubeconfig.display().to_string();
        let out = e.glidepath(&[
            "rollback",
            "checkout",
            "-n",
            "shop",
            "--context",
            "glidepath-sandbox",
            "--kubeconfig",
            &kubeconfig,
            "--yes",
        ]);
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ((code, out), ()) = tokio::join!(e.run(e.pipeline(&stages, "1h"), &[]), operator);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("rolled back outside this run by "), "{out}");
    assert!(!out.contains("switched and finished"), "{out}");
    assert!(!out.contains("promoted: checkout"), "{out}");
    // What the operator's rollback left stays: the old colour serves, the new one is gone.
    assert_eq!(stable_version(&e), "1.0.0");
    assert!(e.get("apps", "deployments", "checkout-preview").is_none());
    let svc = e.get("", "services", "checkout").unwrap();
    assert_eq!(
        svc.pointer("/spec/selector").unwrap(),
        &serde_json::json!({ "app": "checkout" })
    );
    let by = annotations(&e)["glidepath.dev/rolled-back-by"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(by.contains(" at 20"), "{by}");
}
