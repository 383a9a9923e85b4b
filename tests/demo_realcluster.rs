//! `glidepath demo --kubeconfig FILE` on a real kube-apiserver and kube-controller-manager
//! (`GLIDEPATH_REALCLUSTER_KUBECONFIG`, printed by `bash tests/realcluster/up.sh`): the
//! demo installs its platform there, simulates the nodes with the sandbox's data plane in
//! its own process, and every scenario ends with the exit code it has on the embedded
//! sandbox. Under `CI=true` a missing real control plane is a failure.

use std::process::Stdio;
use std::time::Duration;

#[path = "support/wait.rs"]
mod wait;
use wait::wait_until_async;

use k8s_openapi::api::apps::v1::Deployment;
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

/// How long one demo may take on a loaded machine before the test gives up on it.
const DEMO_DEADLINE: Duration = Duration::from_secs(900);

/// Runs the demo headless on the real control plane with `--set` `sets`; its exit code,
/// its progress (stderr) and its verdict (stdout).
async fn demo(path: &std::path::Path, scenario: &str, sets: &[&str]) -> (i32, String, String) {
    let home = tempfile::tempdir().unwrap();
    let mut command = tokio::process::Command::new(BIN);
    command
        .args(["demo", "--headless", "--scenario", scenario, "--kubeconfig"])
        .arg(path);
    for set in sets {
        command.args(["--set", set]);
    }
    let out = command
        .env("GLIDEPATH_HOME", home.path())
        // The released Gateway API and prometheus-operator CRDs (tests/realcluster/crds.sh).
        .env("GLIDEPATH_DEMO_CRDS", released_crds(path))
        .env_remove("GLIDEPATH_JOURNAL")
        .current_dir(home.path())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(DEMO_DEADLINE, out)
        .await
        .unwrap_or_else(|_| panic!("demo --scenario {scenario} did not end in {DEMO_DEADLINE:?}"))
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// One demo at a time on the shared control plane: each test clears the namespaces the
/// other's demo runs in.
static CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_ends_on_a_real_control_plane_as_on_the_sandbox() {
    let Some(path) = kubeconfig() else { return };
    let _one = CLUSTER.lock().await;
    let client = client(&path).await;

    clean(&client, None).await;
    let (code, out, _) = demo(&path, "happy", &["pause=1s", "soak=3s"]).await;
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

    // The next scenarios run on what the last one left, as an operator's rerun would: the
    // demo removes checkout's objects first (a version found serving would count as stable).
    let (code, out, _) = demo(&path, "bad-canary", &["pause=2s", "soak=3s"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("an earlier demo left of checkout in shop-staging, shop"),
        "{out}"
    );
    // The statistical judge (against the baseline) or, after a promotion, the bake's key SLI.
    assert!(
        out.contains("key SLI failed: error_ratio") || out.contains("statistical judge: fail"),
        "{out}"
    );
    assert!(
        out.contains("traffic back on stable") || out.contains("checkout is back on 1.0.0"),
        "{out}"
    );

    let (code, out, _) = demo(&path, "slow-canary", &["pause=4s", "soak=3s"]).await;
    assert_eq!(code, 1, "{out}");
    // The statistical judge compares mean latency; the bake's thresholds the p95.
    assert!(
        out.contains("✗ latency_p95_ms") || out.contains("✗ latency_mean_ms"),
        "{out}"
    );

    let (code, out, _) = demo(&path, "budget-exhausted", &["pause=1s", "soak=3s"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("budget remaining 5.0%"), "{out}");

    // The scenario's platform lacks the PrometheusRule CRD: pre-flight stops the run.
    clean(&client, Some("prometheusrules.monitoring.coreos.com")).await;
    let (code, out, _) = demo(&path, "missing-infra", &["pause=1s", "soak=3s"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("CRD prometheusrules.monitoring.coreos.com: missing"),
        "{out}"
    );
}

/// The Deployment `name` in `shop`: its pod template's image and `version` label, and
/// whether its rollout had ended (every replica updated and available).
async fn production(client: &Client, name: &str) -> Option<(String, String, bool)> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    let d = deployments.get_opt(name).await.unwrap()?;
    let template = d.spec.as_ref().map(|s| &s.template);
    let image = template
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default();
    let version = template
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.as_ref())
        .and_then(|l| l.get("version").cloned())
        .unwrap_or_default();
    let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = d.status.unwrap_or_default();
    let rolled_out = status.observed_generation == d.metadata.generation
        && status.updated_replicas == Some(replicas)
        && status.available_replicas == Some(replicas)
        && status.replicas == Some(replicas);
    Some((image, version, rolled_out))
}

/// Asserts what the API server says production runs: each service's stable Deployment on
/// `version`, rolled out, and no canary left.
async fn assert_production(client: &Client, version: &str, out: &str) {
    for service in ["payments", "inventory", "checkout"] {
        let expected = (
            format!("registry.example.org/shop/{service}:{version}"),
            version.to_owned(),
            true,
        );
        assert_eq!(
            production(client, service).await,
            Some(expected),
            "Deployment shop/{service}\n{out}"
        );
        let canary = format!("{service}-canary");
        assert_eq!(
            production(client, &canary).await,
            None,
            "Deployment shop/{canary} is still there\n{out}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_train_scenarios_end_on_a_real_control_plane_as_on_the_sandbox() {
    let Some(path) = kubeconfig() else { return };
    let _one = CLUSTER.lock().await;
    let client = client(&path).await;
    let quick = ["pause=2s", "bake=2s"];

    clean(&client, None).await;
    let (code, out, verdict) = demo(&path, "train", &quick).await;
    assert_eq!(code, 0, "{out}{verdict}");
    assert!(
        out.contains("the release stages run as system:serviceaccount:glidepath:glidepath"),
        "{out}"
    );
    assert!(
        verdict.ends_with(
            "payments: promoted in staging, prod\ninventory: promoted in staging, prod\ncheckout: promoted in staging, prod\nrun 1 passed: every member promoted through staging, prod\n"
        ),
        "{verdict}"
    );
    assert_production(&client, "2.0.0", &out).await;

    // No clean: the second run starts from what the first left (every service on 2.0.0).
    let (code, out, verdict) = demo(&path, "train-bad", &quick).await;
    assert_eq!(code, 1, "{out}{verdict}");
    assert!(
        out.contains("removed ") && out.contains(" objects an earlier demo left of payments, inventory, checkout in shop-staging, shop"),
        "{out}"
    );
    let members: Vec<&str> = verdict.lines().take(3).collect();
    assert_eq!(
        members,
        [
            "payments: rolled back in prod (promoted in staging)",
            "inventory: rolled back in prod (promoted in staging)",
            "checkout: failed in prod (promoted in staging)"
        ],
        "{out}{verdict}"
    );
    assert!(
        out.contains("payments rolled back from 2.0.0 to 1.0.0")
            && out.contains("inventory rolled back from 2.0.0 to 1.0.0"),
        "{out}"
    );
    assert_production(&client, "1.0.0", &out).await;
    // The ServiceAccount's token is never printed.
    assert!(
        !out.contains("eyJ") && !verdict.contains("eyJ"),
        "{out}{verdict}"
    );
}
