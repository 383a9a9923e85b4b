//! Run states that stay true, through the binary against a sandbox this test starts (as
//! any cluster, through a kubeconfig): a SIGKILLed run is `interrupted`, a second run the
//! lease turns away is `refused` (never `running`), and `resume` picks the interrupted run
//! and says so.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "support/sandbox_env.rs"]
mod sandbox_env;
use sandbox_env::{Env, env};

const HOLD: &str = "    - name: prod\n      steps:\n        - pause: ${hold}\n";

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn runs(e: &Env) -> Vec<Value> {
    let out = e.glidepath(&["history", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn listed(e: &Env, run: i64) -> Value {
    runs(e)
        .into_iter()
        .find(|r| r["id"] == run)
        .unwrap_or_else(|| panic!("run {run} is not in the history"))
}

/// Starts run 1 holding the lease, waits until its pause is under way, and kills it.
async fn killed_run(e: &Env, path: &std::path::Path) {
    let mut first = Command::new(env!("CARGO_BIN_EXE_glidepath"))
        .args(["run", path.to_str().unwrap(), "--headless"])
        .args(["--set", "hold=5s"])
        .env("GLIDEPATH_HOME", e.dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    e.wait_report(1, Duration::from_secs(30), "run 1's pause to start", |r| {
        r["stages"][0]["steps"].as_array().is_some_and(|steps| {
            steps
                .iter()
                .any(|s| s["kind"] == "pause" && s["status"] == "paused")
        })
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while e
        .get("coordination.k8s.io", "leases", "glidepath-checkout-prod")
        .is_none()
    {
        assert!(Instant::now() < deadline, "run 1 never took its lease");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    first.kill().unwrap(); // SIGKILL: the lease stays, fresh for its 30 s.
    first.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_run_is_refused_and_resume_picks_the_interrupted_one() {
    let e = env("happy").await;
    let path = e.dir.path().join("pipeline.yaml");
    std::fs::write(&path, e.pipeline(HOLD, "1h")).unwrap();
    killed_run(&e, &path).await;

    let refused = e.glidepath(&[
        "run",
        path.to_str().unwrap(),
        "--headless",
        "--set",
        "hold=1s",
    ]);
    assert_eq!(refused.status.code(), Some(4), "{}", text(&refused));
    assert!(
        text(&refused).contains("checkout-prod is being driven by"),
        "{}",
        text(&refused)
    );

    let second = listed(&e, 2);
    assert_eq!(second["status"], "refused", "{second}");
    assert_eq!(second["exit_code"], 4);
    assert!(second.get("resume").is_none(), "{second}");
    let report = e.glidepath(&["history", "2", "--json"]);
    let report: Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(report["status"], "refused");
    assert!(
        report["reason"]
            .as_str()
            .unwrap()
            .starts_with("refused before it started: checkout-prod is being driven by"),
        "{report}"
    );

    let first = listed(&e, 1);
    assert_eq!(first["status"], "interrupted", "{first}");
    assert_eq!(first["resume"], "glidepath resume 1");
    let table = text(&e.glidepath(&["history"]));
    assert!(table.contains("interrupted"), "{table}");
    assert!(table.contains("refused"), "{table}");
    assert!(
        table.contains("run 1 interrupted: its driver (process ")
            && table.contains("is gone; `glidepath resume 1` continues it"),
        "{table}"
    );
    let report = e.glidepath(&["history", "1", "--json"]);
    let report: Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(report["status"], "interrupted");

    let other = e.glidepath(&["resume", "--pipeline", "payments", "--headless"]);
    assert_eq!(other.status.code(), Some(2), "{}", text(&other));
    assert!(
        text(&other).contains("no interrupted run of payments to resume"),
        "{}",
        text(&other)
    );

    let resumed = e.glidepath(&["resume", "--headless"]);
    let out = text(&resumed);
    assert_eq!(resumed.status.code(), Some(0), "{out}");
    assert!(
        out.contains("resuming run 1 of checkout (") && out.contains("interrupted, its driver"),
        "{out}"
    );
    assert!(out.contains("run 1 passed"), "{out}");
    let states: Vec<(i64, String)> = runs(&e)
        .iter()
        .map(|r| {
            (
                r["id"].as_i64().unwrap(),
                r["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        states,
        vec![(2, "refused".into()), (1, "passed".into())],
        "no third run, run 2 stays refused"
    );
    let again = e.glidepath(&["resume"]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(
        text(&again).contains("no interrupted run to resume"),
        "{}",
        text(&again)
    );
}
