//! `glidepath demo --kubeconfig FILE` on a real kube-apiserver and kube-controller-manager
//! (`GLIDEPATH_REALCLUSTER_KUBECONFIG`, printed by `bash tests/realcluster/up.sh`): the
//! demo installs its platform there, simulates the nodes with the sandbox's data plane in
//! its own process, and every scenario ends with the exit code it has on the embedded
//! sandbox. Under `CI=true` a missing real control plane is a failure.

use std::process::{Command, Stdio};
use std::time::Duration;

#[path = "support/wait.rs"]
mod wait;
use wait::wait_until_async;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

const BIN: &str = env!("CARGO_BIN_EXE_glidepath");

fn kubeconfig() -> Option<std::path::PathBuf> {
    match std::env::var_os("GLIDEPATH_REALCLUSTER_KUBECONFIG") {
        Some(path) => Some(path.into()),
        None => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "GLIDEPATH_REALCLUSTER_KUBECONFIG is not set: start the control plane with `bash tests/realcluster/up.sh` and export the KUBECONFIG it prints as GLIDEPATH_REALCLUSTER_KUBECONFIG"
            );
            eprintln!(
                "skipped: GLIDEPATH_REALCLUSTER_KUBECONFIG is not set (required under CI=true)"
            );
            None
        }
    }
}

async fn client(path: &std::path::Path) -> Client {
    let config = Config::from_custom_kubeconfig(
        Kubeconfig::read_from(path).unwrap(),
        &KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    Client::try_from(config).unwrap()
}

/// Removes what an earlier demo left (its namespaces; with `crd`, that CRD too), so each
/// scenario starts from the platform alone. Pods on nodes whose data plane has stopped
/// are removed at once, as nobody else would.
async fn clean(client: &Client, crd: Option<&str>) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in ["shop", "shop-staging"] {
        let _ = namespaces.delete(ns, &DeleteParams::default()).await;
    }
    let now = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    if let Some(name) = crd {
        let _ = crds.delete(name, &DeleteParams::default()).await;
    }
    let gone = wait_until_async(Duration::from_secs(120), async || {
        let mut left = false;
        for ns in ["shop", "shop-staging"] {
            let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
            for p in pods
                .list(&ListParams::default())
                .await
                .map(|l| l.items)
                .unwrap_or_default()
            {
                let _ = pods
                    .delete(&p.metadata.name.unwrap_or_default(), &now)
                    .await;
            }
            left |= namespaces.get_opt(ns).await.ok().flatten().is_some();
        }
        if let Some(name) = crd {
            left |= crds.get_opt(name).await.ok().flatten().is_some();
        }
        !left
    })
    .await;
    assert!(
        gone,
        "the namespaces of an earlier demo were not deleted in 120 s"
    );
}

/// The CRDs `tests/realcluster/crds.sh` fetched: `GLIDEPATH_REALCLUSTER_CRDS`, else the
/// `crds` link up.sh left next to the kubeconfig.
fn released_crds(kubeconfig: &std::path::Path) -> std::path::PathBuf {
    let dir = std::env::var_os("GLIDEPATH_REALCLUSTER_CRDS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| kubeconfig.with_file_name("crds"));
    assert!(
        dir.join("gateway.networking.k8s.io_httproutes.yaml")
            .is_file(),
        "no released CRDs in {}: run `bash tests/realcluster/crds.sh` and set GLIDEPATH_REALCLUSTER_CRDS to the folder it prints",
        dir.display()
    );
    dir
}

/// Runs the demo headless on the real control plane; its exit code and output.
async fn demo(path: &std::path::Path, scenario: &str, pause: &str) -> (i32, String) {
    let (path, scenario, pause) = (path.to_owned(), scenario.to_owned(), pause.to_owned());
    tokio::task::spawn_blocking(move || {
        let home = tempfile::tempdir().unwrap();
        let out = Command::new(BIN)
            .args([
                "demo",
                "--headless",
                "--scenario",
                &scenario,
                "--kubeconfig",
            ])
            .arg(&path)
            .args(["--set", &format!("pause={pause}"), "--set", "soak=3s"])
            .env("GLIDEPATH_HOME", home.path())
            // The released Gateway API and prometheus-operator CRDs (tests/realcluster/crds.sh).
            .env("GLIDEPATH_DEMO_CRDS", released_crds(&path))
            .env_remove("GLIDEPATH_JOURNAL")
            .current_dir(home.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_ends_on_a_real_control_plane_as_on_the_sandbox() {
    let Some(path) = kubeconfig() else { return };
    let client = client(&path).await;

    clean(&client, None).await;
    let (code, out) = demo(&path, "happy", "1s").await;
    assert_eq!(code, 0, "{out}");
    // The API server itself says the release ran as the least-privilege ServiceAccount.
    assert!(
        out.contains("the release stages run as system:serviceaccount:glidepath:glidepath"),
        "{out}"
    );
    assert!(
        out.contains("✓ CRD xdatabases.platform.example.org: Established"),
        "{out}"
    );
    assert!(
        out.contains("checkout 2.0.0 is live in production"),
        "{out}"
    );

    clean(&client, None).await;
    let (code, out) = demo(&path, "bad-canary", "2s").await;
    assert_eq!(code, 1, "{out}");
    // The statistical judge (against the baseline) or, after a promotion, the bake's key SLI.
    assert!(
        out.contains("key SLI failed: error_ratio") || out.contains("statistical judge: fail"),
        "{out}"
    );
    assert!(
        out.contains("traffic back on stable") || out.contains("checkout is back on 1.0.0"),
        "{out}"
    );

    clean(&client, None).await;
    let (code, out) = demo(&path, "slow-canary", "4s").await;
    assert_eq!(code, 1, "{out}");
    // The statistical judge compares mean latency; the bake's thresholds the p95.
    assert!(
        out.contains("✗ latency_p95_ms") || out.contains("✗ latency_mean_ms"),
        "{out}"
    );

    clean(&client, None).await;
    let (code, out) = demo(&path, "budget-exhausted", "1s").await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("budget remaining 5.0%"), "{out}");

    // The scenario's platform lacks the PrometheusRule CRD: pre-flight stops the run.
    clean(&client, Some("prometheusrules.monitoring.coreos.com")).await;
    let (code, out) = demo(&path, "missing-infra", "1s").await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("CRD prometheusrules.monitoring.coreos.com: missing"),
        "{out}"
    );
}
