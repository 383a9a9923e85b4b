//! Delivery figures for BENCHMARKS.md, on the sandbox: the time from a failed analysis
//! verdict to all users' traffic back on stable (gateway-api and replicas routers), and the
//! wall time of `glidepath rollback` after a promoted release.
//!
//! Run: `cargo bench --bench delivery` (release build). Prints one line per figure.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glidepath::engine::{self, Emitter, RunOptions};
use glidepath::events::Event;
use glidepath::pipeline::{self, Variables};
use glidepath::sandbox::scenario::Scenario;
use glidepath::sandbox::{Cluster, Sandbox, Timing};

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/delivery")
}

fn pipeline(sandbox: &Sandbox, kubeconfig: &Path, router: &str, steps: &str) -> String {
    let f = fixtures().display().to_string();
    format!(
        "apiVersion: glidepath/v1\nkind: Pipeline\nmetadata: {{ name: checkout }}\nspec:\n  target: {{ context: glidepath-sandbox, namespace: shop, kubeconfig: {} }}\n  prometheus: {{ url: \"{}\" }}\n  variables: {{ version: \"2.0.0\", degrade_after: 1s }}\n  stages:\n    - name: baseline\n      steps:\n        - deploy: {{ manifests: [{f}/baseline/] }}\n    - name: prod\n      steps:\n        - release:\n            manifests: [{f}/app/]\n            canary:\n              router: {router}\n              analysis: {{ slo: {f}/slo.yaml, interval: 1s, failureLimit: 0, inconclusiveLimit: 2 }}\n              steps: {steps}\n",
        kubeconfig.display(),
        sandbox.url()
    )
}

/// True when no user request can reach the canary any more, as the sandbox routes them.
fn on_stable(cluster: &Cluster) -> bool {
    let topology = cluster.telemetry.topology();
    topology
        .entries
        .iter()
        .filter(|e| e.simulated)
        .flat_map(|e| e.backends.iter().filter(|b| b.weight > 0.0))
        .flat_map(|b| &b.versions)
        .all(|v| v.version != "2.0.0" || v.ready == 0)
}

async fn verdict_to_stable(router: &str) -> Duration {
    let cluster = Cluster::with_scenario(
        32,
        Timing::default(),
        Scenario::named("bad-canary").unwrap(),
    );
    glidepath::sandbox::preset::platform(&cluster);
    let sandbox = Sandbox::start(0, cluster).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sandbox.write_kubeconfig(&kubeconfig).unwrap();
    let path = dir.path().join("p.yaml");
    std::fs::write(
        &path,
        pipeline(
            &sandbox,
            &kubeconfig,
            router,
            "[ { weight: 50 }, { pause: 60s } ]",
        ),
    )
    .unwrap();
    let vars = Variables {
        sets: Default::default(),
        use_env: false,
    };
    let p = Arc::new(pipeline::load_file(&path, &vars).unwrap());
    let mut rx = None;
    let handle = engine::start_with(p, Emitter::new(1, 1, None), RunOptions::default(), |tx| {
        rx = Some(tx.subscribe())
    });
    let mut rx = rx.unwrap();
    loop {
        let env = rx.recv().await.unwrap();
        if let Event::Log { source, line, .. } = &env.event
            && source == "analysis"
            && line.contains(", fail (")
        {
            break;
        }
    }
    let verdict = Instant::now();
    while !on_stable(&sandbox.cluster) {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let took = verdict.elapsed();
    let _ = handle.wait().await;
    took
}

async fn rollback_wall_time() -> Duration {
    let cluster = Cluster::with_scenario(32, Timing::default(), Scenario::named("happy").unwrap());
    glidepath::sandbox::preset::platform(&cluster);
    let sandbox = Sandbox::start(0, cluster).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sandbox.write_kubeconfig(&kubeconfig).unwrap();
    let path = dir.path().join("p.yaml");
    let text = pipeline(&sandbox, &kubeconfig, "replicas", "[ { weight: 100 } ]")
        .replace("degrade_after: 1s", "degrade_after: 1h");
    std::fs::write(&path, text).unwrap();
    let home = dir.path().to_owned();
    let p2 = path.clone();
    let ok = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_glidepath"))
            .args(["run", p2.to_str().unwrap(), "--headless"])
            .env("GLIDEPATH_HOME", &home)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let kc = kubeconfig.display().to_string();
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_glidepath"))
            .args([
                "rollback",
                "checkout",
                "--yes",
                "--kubeconfig",
                &kc,
                "--context",
                "glidepath-sandbox",
                "-n",
                "shop",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn summary(name: &str, mut runs: Vec<Duration>) {
    runs.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{name}: median {:.0} ms, max {:.0} ms over {} runs",
        ms(runs[runs.len() / 2]),
        ms(*runs.last().unwrap()),
        runs.len()
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for router in ["gateway-api", "replicas"] {
            let mut runs = Vec::new();
            for _ in 0..3 {
                runs.push(verdict_to_stable(router).await);
            }
            summary(
                &format!("failed verdict to all traffic on stable ({router})"),
                runs,
            );
        }
        let mut runs = Vec::new();
        for _ in 0..3 {
            runs.push(rollback_wall_time().await);
        }
        summary(
            "glidepath rollback after a promoted release (wall time)",
            runs,
        );
    });
}
