//! A sandbox for delivery tests: started in the test, reached by the glidepath binary
//! through a kubeconfig as any cluster would be, and read afterwards. Shared by
//! tests/delivery.rs and tests/promotion.rs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use glidepath::sandbox::scenario::Scenario;
use glidepath::sandbox::store::Key;
use glidepath::sandbox::{Cluster, Sandbox, Timing};
use serde_json::Value;

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/delivery")
}

pub struct Env {
    pub sandbox: Sandbox,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

pub async fn env(scenario: &str) -> Env {
    let cluster = Cluster::with_scenario(32, Timing::default(), Scenario::named(scenario).unwrap());
    glidepath::sandbox::preset::platform(&cluster);
    let sandbox = Sandbox::start(0, cluster).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sandbox.write_kubeconfig(&kubeconfig).unwrap();
    Env {
        sandbox,
        dir,
        kubeconfig,
    }
}

impl Env {
    /// The pipeline text with `{target}`, `{prometheus}` and `{fixtures}` filled.
    pub fn pipeline(&self, stages: &str, degrade_after: &str) -> String {
        format!(
            "apiVersion: glidepath/v1\nkind: Pipeline\nmetadata: {{ name: checkout }}\nspec:\n  target: {{ context: glidepath-sandbox, namespace: shop, kubeconfig: {} }}\n  prometheus: {{ url: \"{}\" }}\n  variables: {{ version: \"2.0.0\", degrade_after: {degrade_after} }}\n  contract: {{ file: {}/platform-contract.yaml }}\n  stages:\n{}",
            self.kubeconfig.display(),
            self.sandbox.url(),
            fixtures().display(),
            stages.replace("{fixtures}", &fixtures().display().to_string())
        )
    }

    /// Runs the binary on `pipeline`; (exit code, everything it printed).
    pub async fn run(&self, pipeline: String, args: &[&str]) -> (i32, String) {
        let path = self.dir.path().join("pipeline.yaml");
        std::fs::write(&path, pipeline).unwrap();
        let home = self.dir.path().to_owned();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let out = tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_glidepath"))
                .arg("run")
                .arg(&path)
                .arg("--headless")
                .args(&args)
                .env("GLIDEPATH_HOME", &home)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    pub fn get(&self, group: &str, plural: &str, name: &str) -> Option<Value> {
        self.sandbox
            .cluster
            .get(&Key {
                group: group.into(),
                plural: plural.into(),
                namespace: "shop".into(),
                name: name.into(),
            })
            .map(|o| (*o).clone())
    }

    /// Runs the glidepath binary with `args` against this sandbox's journal.
    pub fn glidepath(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_glidepath"))
            .args(args)
            .env("GLIDEPATH_HOME", self.dir.path())
            .output()
            .unwrap()
    }

    /// Waits (under `within`) until `pred` holds of run `run`'s report in the journal.
    pub async fn wait_report(
        &self,
        run: i64,
        within: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let out = self.glidepath(&["history", &run.to_string(), "--json"]);
            let report = serde_json::from_slice::<Value>(&out.stdout).ok();
            if out.status.success()
                && let Some(report) = &report
            {
                if pred(report) {
                    return report.clone();
                }
                // A run that ended never will: say how it ended, at once.
                assert!(
                    report["exit_code"].is_null(),
                    "run {run} ended before {what}: {report:#}"
                );
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; run {run} stands at {report:#?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The stage every release test starts from: 1.0.0 deployed.
pub const BASELINE: &str = "    - name: baseline\n      steps:\n        - deploy: { manifests: [{fixtures}/baseline/], waitFor: { timeout: 30s } }\n";

/// The status of `stage/step` in a report.
pub fn step_status(report: &Value, stage: &str, step: &str) -> String {
    report["stages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["name"] == stage)
        .and_then(|s| s["steps"].as_array()?.iter().find(|x| x["name"] == step))
        .and_then(|s| s["status"].as_str())
        .unwrap_or("absent")
        .to_owned()
}

pub fn template_version(d: &Value) -> &str {
    d.pointer("/spec/template/metadata/labels/version")
        .and_then(Value::as_str)
        .unwrap_or("")
}
