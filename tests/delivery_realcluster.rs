//! Delivery on a real kube-apiserver and kube-controller-manager (issue 19, item 4): the
//! glidepath binary drives pipelines against the control plane `tests/realcluster/up.sh`
//! starts (`GLIDEPATH_REALCLUSTER_KUBECONFIG`; under `CI=true` its absence fails), with the
//! released Gateway API and prometheus-operator CRDs (`tests/realcluster/crds.sh`), and the
//! sandbox's data plane simulating nodes, pods and traffic for each test's own namespace, so
//! the tests run in parallel on one control plane. Rollouts are the real Deployment
//! controller's; validation, defaults, conflicts and field ownership are the real server's.

use std::time::Duration;

#[path = "support/real_delivery.rs"]
mod real_delivery;
#[path = "support/realcluster.rs"]
mod realcluster;
#[path = "support/wait.rs"]
mod wait;
use real_delivery::{Real, glidepath, real, template_version, weights};
use wait::wait_until_async;

/// The stage every release test starts from: 1.0.0 deployed.
const BASELINE: &str = "    - name: baseline\n      steps:\n        - deploy: { manifests: [{fixtures}/baseline/], waitFor: { timeout: 60s } }\n";

fn release(router: &str, steps: &str) -> String {
    format!(
        "    - name: prod\n      steps:\n        - release:\n            manifests: [{{fixtures}}/app/]\n            canary:\n              router: {router}\n              analysis: {{ slo: {{fixtures}}/slo.yaml, interval: 2s, failureLimit: 0, inconclusiveLimit: 1 }}\n              steps: {steps}\n          onFailure: rollback\n"
    )
}

/// Waits (60 s at most) until the Deployment `name` reports `n` available replicas of
/// `version`, as the real Deployment controller counts them.
async fn available(r: &Real, name: &str, version: &str, n: i64) -> bool {
    wait_until_async(Duration::from_secs(60), async || {
        r.deployment(name).await.is_some_and(|d| {
            template_version(&d) == version
                && d.pointer("/status/availableReplicas")
                    .and_then(|v| v.as_i64())
                    == Some(n)
                && d.pointer("/status/updatedReplicas")
                    .and_then(|v| v.as_i64())
                    == Some(n)
        })
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_infra_a_replicas_canary_and_glidepath_rollback() {
    let Some(r) = real("promote", "happy").await else {
        return;
    };
    let stages = format!(
        "    - name: staging\n      steps:\n        - preflight: {{}}\n        - infra: {{ manifests: [{{fixtures}}/infra/claim.yaml], waitFor: {{ condition: Ready, timeout: 60s }} }}\n{}{}",
        BASELINE.trim_start_matches("    - name: baseline\n      steps:\n"),
        release(
            "replicas",
            "[ { weight: 25 }, { pause: 2s }, { weight: 50 }, { pause: 2s }, { weight: 100 } ]"
        )
    );
    let (code, out) = r.run(r.pipeline(&stages, "1h"), &[]).await;
    assert_eq!(code, 0, "{out}");
    let ns = &r.ns;
    // Pre-flight asked the real server: discovery, a SelfSubjectAccessReview, dry runs.
    assert!(
        out.contains("✓ Kubernetes version >=1.27, <1.40: v1.37"),
        "{out}"
    );
    assert!(
        out.contains(&format!("may patch deployments.apps in {ns}: allowed")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "Deployment {ns}/checkout: server dry run: accepted"
        )),
        "{out}"
    );
    assert!(
        out.contains("✓ CRD httproutes.gateway.networking.k8s.io"),
        "{out}"
    );
    assert!(
        out.contains(&format!("applied XDatabase {ns}/orders")),
        "{out}"
    );
    assert!(
        out.contains("canary 25%: 1 canary and 3 stable replicas ready"),
        "{out}"
    );
    assert!(
        out.contains("canary 50%: 2 canary and 2 stable replicas ready"),
        "{out}"
    );
    // Promoted by the real Deployment controller's rollout.
    assert!(available(&r, "checkout", "2.0.0", 4).await);
    let stable = r.deployment("checkout").await.unwrap();
    assert!(
        stable
            .pointer("/metadata/annotations/glidepath.dev~1promoted-by")
            .is_some(),
        "{stable}"
    );
    assert!(r.deployment("checkout-canary").await.is_none());

    // An incident: the operator rolls back from the cluster alone.
    let kubeconfig = r.kubeconfig.display().to_string();
    let args: Vec<String> = [
        "rollback",
        "checkout",
        "--kubeconfig",
        &kubeconfig,
        "--context",
        &r.context,
        "-n",
        ns,
        "--yes",
    ]
    .map(String::from)
    .to_vec();
    let (code, text) = glidepath(r.dir.path(), args).await;
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("checkout rolled back from 2.0.0 to 1.0.0"),
        "{text}"
    );
    assert!(available(&r, "checkout", "1.0.0", 4).await);
    r.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_canary_over_gateway_api_rolls_back_with_traffic_on_stable() {
    let Some(r) = real("badcanary", "bad-canary").await else {
        return;
    };
    let stages = format!(
        "{BASELINE}{}",
        release(
            "gateway-api",
            "[ { weight: 25 }, { pause: 10s }, { weight: 50 }, { pause: 10s }, { weight: 100 } ]"
        )
    );
    let (code, out) = r.run(r.pipeline(&stages, "1s"), &[]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("analysis failed"), "{out}");
    assert!(out.contains("all traffic back on stable"), "{out}");
    let route = r.route("checkout").await.unwrap();
    assert_eq!(weights(&route), [("checkout".to_owned(), 100)], "{route}");
    let stable = r.deployment("checkout").await.unwrap();
    assert_eq!(template_version(&stable), "1.0.0");
    assert!(r.deployment("checkout-canary").await.is_none());
    assert!(
        r.get("v1", "Service", "services", "checkout-canary")
            .await
            .is_none()
    );
    r.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_switches_after_its_analysis() {
    let Some(r) = real("bluegreen", "happy").await else {
        return;
    };
    let stages = format!(
        "{BASELINE}    - name: prod\n      steps:\n        - release:\n            manifests: [{{fixtures}}/app/]\n            blueGreen:\n              activeService: checkout\n              previewService: checkout-preview\n              analysis: {{ slo: {{fixtures}}/slo.yaml, interval: 2s, failureLimit: 0, inconclusiveLimit: 1 }}\n              scaleDownDelay: 2s\n          onFailure: rollback\n"
    );
    let (code, out) = r.run(r.pipeline(&stages, "1h"), &[]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("switched Service checkout to the new version"),
        "{out}"
    );
    assert!(available(&r, "checkout", "2.0.0", 4).await);
    assert!(r.deployment("checkout-preview").await.is_none());
    let svc = r
        .get("v1", "Service", "services", "checkout")
        .await
        .unwrap();
    assert_eq!(
        svc.pointer("/spec/selector").unwrap(),
        &serde_json::json!({ "app": "checkout" })
    );
    r.finish().await;
}

/// The baseline's HTTPRoute with only the stable backend, as a GitOps repository holds it.
fn gitops_route(ns: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{ name: checkout, namespace: {ns} }}\nspec:\n  parentRefs: [{{ name: public }}]\n  rules:\n    - backendRefs: [{{ name: checkout, port: 80 }}]\n"
    )
}

/// A GitOps controller's sync: `manifest` server-side applied as `manager`, taking every
/// field it sets from whoever owned it (`--force-conflicts`, as Argo CD's server-side sync).
async fn gitops_sync(r: &Real, manager: &str, manifest: &str) {
    let file = r.dir.path().join(format!("gitops-{manager}.yaml"));
    std::fs::write(&file, manifest).unwrap();
    let path = file.display().to_string();
    let manager = format!("--field-manager={manager}");
    let args = [
        "apply",
        "--server-side",
        "--force-conflicts",
        &manager,
        "-f",
        &path,
    ];
    let (code, text) = r.kubectl(&args).await;
    assert_eq!(code, 0, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gitops_sync_mid_release_that_resets_the_weights_stops_the_release() {
    let Some(r) = real("gitops", "happy").await else {
        return;
    };
    let stages = format!(
        "{BASELINE}{}",
        release(
            "gateway-api",
            "[ { weight: 20 }, { pause: 60s }, { weight: 100 } ]"
        )
    );
    let pipeline = r.pipeline(&stages, "1h");
    let running = r.run(pipeline, &[]);
    let sync = async {
        let split = wait_until_async(Duration::from_secs(120), async || {
            r.route("checkout").await.is_some_and(|route| {
                weights(&route)
                    == [
                        ("checkout".to_owned(), 80),
                        ("checkout-canary".to_owned(), 20),
                    ]
            })
        })
        .await;
        assert!(split, "the canary never reached 20%");
        // The GitOps controller syncs the route from its repository, taking the fields.
        gitops_sync(&r, "argocd-controller", &gitops_route(&r.ns)).await;
    };
    let ((code, out), ()) = tokio::join!(running, sync);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("sends 0% to the new version, not the 20% the release set"),
        "{out}"
    );
    assert!(out.contains("\"argocd-controller\""), "{out}");
    assert!(!out.contains("promoted"), "{out}");
    let evidence = release_evidence(r.dir.path());
    let reset = evidence
        .iter()
        .find(|e| e.check == format!("HTTPRoute {}/checkout .spec.rules", r.ns))
        .unwrap_or_else(|| panic!("no evidence of the reset in {evidence:?}"));
    assert_eq!(
        reset.value.as_deref(),
        Some("0 (managed by argocd-controller)")
    );
    let stable = r.deployment("checkout").await.unwrap();
    assert_eq!(template_version(&stable), "1.0.0");
    assert!(r.deployment("checkout-canary").await.is_none());
    r.finish().await;
}

/// The step evidence run 1's release step gave, from the journal in `home`.
fn release_evidence(home: &std::path::Path) -> Vec<glidepath::events::Evidence> {
    let journal = glidepath::store::Store::open(&home.join("journal.db")).unwrap();
    journal
        .events(1)
        .unwrap()
        .into_iter()
        .filter_map(|env| match env.event {
            glidepath::events::Event::StepFinished { evidence, .. } => Some(evidence),
            _ => None,
        })
        .flatten()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gitops_sync_mid_release_that_resets_the_replicas_stops_the_release() {
    let Some(r) = real("gitopsreplicas", "happy").await else {
        return;
    };
    let stages = format!(
        "{BASELINE}{}",
        release(
            "replicas",
            "[ { weight: 25 }, { pause: 60s }, { weight: 100 } ]"
        )
    );
    let running = r.run(r.pipeline(&stages, "1h"), &[]);
    let sync = async {
        // The release sized stable to 3 and the canary to 1 for 25%.
        let split = wait_until_async(Duration::from_secs(120), async || {
            let replicas = async |name| {
                r.deployment(name)
                    .await
                    .and_then(|d| d.pointer("/spec/replicas").and_then(|v| v.as_i64()))
            };
            replicas("checkout").await == Some(3) && replicas("checkout-canary").await == Some(1)
        })
        .await;
        assert!(split, "the canary never reached 25%");
        // The GitOps controller syncs the original Deployment (4 replicas) from its
        // repository, taking the field.
        let original =
            std::fs::read_to_string(real_delivery::fixtures().join("baseline/checkout.yaml"))
                .unwrap();
        let deployment = original.split("\n---\n").next().unwrap();
        assert!(deployment.contains("replicas: 4"), "{deployment}");
        gitops_sync(&r, "argocd", deployment).await;
    };
    let ((code, out), ()) = tokio::join!(running, sync);
    assert_eq!(code, 1, "{out}");
    let ns = &r.ns;
    let why = format!(
        "Deployment {ns}/checkout has spec.replicas 4, not the 3 the release set at 25%: it was changed outside the release (.spec.replicas now managed by \"argocd\")"
    );
    assert!(out.contains(&why), "{out}");
    assert!(out.contains("rolled back"), "{out}");
    assert!(!out.contains("promoted"), "{out}");
    let evidence = release_evidence(r.dir.path());
    let reset = evidence
        .iter()
        .find(|e| e.check == format!("Deployment {ns}/checkout .spec.replicas"))
        .unwrap_or_else(|| panic!("no evidence of the reset in {evidence:?}"));
    assert_eq!(reset.value.as_deref(), Some("4 (managed by argocd)"));
    assert_eq!(
        reset.expected.as_deref(),
        Some("3 (set by the release at 25%)")
    );
    // Rolled back: stable on the old version at its full size, the canary gone.
    assert!(available(&r, "checkout", "1.0.0", 4).await);
    assert!(r.deployment("checkout-canary").await.is_none());
    r.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_by_another_field_manager_shows_in_diff_and_stops_the_next_apply() {
    let Some(r) = real("ownership", "happy").await else {
        return;
    };
    let (code, out) = r.run(r.pipeline(BASELINE, "1h"), &[]).await;
    assert_eq!(code, 0, "{out}");
    // Someone scales by hand in `kubectl edit` (field manager kubectl-edit); the "editor"
    // changes the replicas line of the file kubectl hands it.
    let editor = "sed -i -e 's/^  replicas: 4$/  replicas: 2/'";
    let (code, text) = r
        .kubectl_with(
            &["edit", "deployment", "checkout"],
            &[("KUBE_EDITOR", editor)],
        )
        .await;
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("deployment.apps/checkout edited"), "{text}");
    let path = r.dir.path().join("diff.yaml");
    std::fs::write(&path, r.pipeline(BASELINE, "1h")).unwrap();
    let (code, diff) = glidepath(
        r.dir.path(),
        vec!["diff".into(), path.display().to_string()],
    )
    .await;
    assert_eq!(code, 1, "{diff}");
    let ns = &r.ns;
    assert!(
        diff.contains(&format!("--- Deployment {ns}/checkout (live)")),
        "{diff}"
    );
    assert!(diff.contains("-  replicas: 2"), "{diff}");
    assert!(diff.contains("+  replicas: 4"), "{diff}");
    assert!(
        diff.contains("1 objects would change, 0 would be created, 2 are unchanged"),
        "{diff}"
    );
    // Deploying again does not take the field back silently: the server's conflict names
    // the other manager and the field, and the hand-made change stays.
    let (code, out) = r.run(r.pipeline(BASELINE, "1h"), &[]).await;
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("conflict with \"kubectl-edit\"") && out.contains(".spec.replicas"),
        "{out}"
    );
    let live = r.deployment("checkout").await.unwrap();
    assert_eq!(live.pointer("/spec/replicas").unwrap(), 2);
    r.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_route_is_refused_by_the_released_crd_with_its_field_named() {
    let Some(r) = real("invalid", "happy").await else {
        return;
    };
    let manifest = r.dir.path().join("route.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: { name: checkout }\nspec:\n  parentRefs: [{ name: public }]\n  rules:\n    - backendRefs: [{ name: checkout, port: 80, weight: -5 }]\n",
    )
    .unwrap();
    let stages = format!(
        "    - name: staging\n      steps:\n        - preflight: {{}}\n        - deploy: {{ manifests: [{}] }}\n",
        manifest.display()
    );
    let (code, out) = r.run(r.pipeline(&stages, "1h"), &[]).await;
    assert_eq!(code, 1, "{out}");
    let ns = &r.ns;
    assert!(
        out.contains(&format!("✗ HTTPRoute {ns}/checkout: server dry run")),
        "{out}"
    );
    assert!(out.contains("spec.rules[0].backendRefs[0].weight"), "{out}");
    assert!(out.contains("nothing was changed"), "{out}");
    assert!(r.route("checkout").await.is_none());
    r.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_driver_at_a_time_through_a_real_lease() {
    let Some(r) = real("lease", "happy").await else {
        return;
    };
    let stages = "    - name: prod\n      steps:\n        - pause: ${hold}\n";
    let path = r.dir.path().join("hold.yaml");
    std::fs::write(&path, r.pipeline(stages, "1h")).unwrap();
    let mut first = std::process::Command::new(real_delivery::BIN)
        .args([
            "run",
            path.to_str().unwrap(),
            "--headless",
            "--set",
            "hold=60s",
        ])
        .env("GLIDEPATH_HOME", r.dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lease = async || {
        r.get(
            "coordination.k8s.io/v1",
            "Lease",
            "leases",
            "glidepath-checkout-prod",
        )
        .await
    };
    let taken = wait_until_async(Duration::from_secs(30), async || lease().await.is_some()).await;
    assert!(taken, "the first run never took its Lease");
    let second = r.dir.path().join("second");
    std::fs::create_dir_all(&second).unwrap();
    let args = [
        "run",
        path.to_str().unwrap(),
        "--headless",
        "--set",
        "hold=1s",
    ];
    let (code, text) = glidepath(&second, args.map(String::from).to_vec()).await;
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(code, 4, "{text}");
    assert!(text.contains("checkout-prod is being driven by"), "{text}");
    assert!(text.contains("(run 1 in "), "{text}");
    r.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infra_prunes_what_left_the_set() {
    let Some(r) = real("prune", "happy").await else {
        return;
    };
    let extra = r.dir.path().join("extra.yaml");
    std::fs::write(&extra, "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: orders-settings }\ndata: { pool: \"10\" }\n").unwrap();
    let stages = |files: &str| {
        format!(
            "    - name: staging\n      steps:\n        - infra: {{ manifests: [{files}], prune: true, waitFor: {{ timeout: 60s }} }}\n"
        )
    };
    let both = format!("{{fixtures}}/infra/claim.yaml, {}", extra.display());
    let (code, out) = r.run(r.pipeline(&stages(&both), "1h"), &[]).await;
    assert_eq!(code, 0, "{out}");
    let cm = || r.get("v1", "ConfigMap", "configmaps", "orders-settings");
    assert!(cm().await.is_some());
    let (code, out) = r
        .run(
            r.pipeline(&stages("{fixtures}/infra/claim.yaml"), "1h"),
            &[],
        )
        .await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "deleted ConfigMap {}/orders-settings, no longer in the set",
            r.ns
        )),
        "{out}"
    );
    let gone = wait_until_async(Duration::from_secs(30), async || cm().await.is_none()).await;
    assert!(gone, "orders-settings is still there");
    assert!(
        r.get(
            "platform.example.org/v1",
            "XDatabase",
            "xdatabases",
            "orders"
        )
        .await
        .is_some()
    );
    r.finish().await;
}

/// A release train rolled back at its approval after a stage that only deploys, on the real
/// Deployment controller: the revision before (the ReplicaSet `kubectl rollout undo` would
/// pick) is rolled out again, and the controller makes it the newest revision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_train_rolled_back_at_its_approval_returns_a_deploy_stage_to_the_revision_before() {
    let Some(r) = real("undo", "happy").await else {
        return;
    };
    let (code, out) = r.run(r.pipeline(BASELINE, "1h"), &[]).await;
    assert_eq!(code, 0, "{out}");
    assert!(available(&r, "checkout", "1.0.0", 4).await);
    let deploy = "      steps:\n        - deploy: { manifests: [{fixtures}/app/], waitFor: { timeout: 60s } }\n";
    let stages = format!("    - name: staging\n{deploy}    - name: prod\n{deploy}");
    std::fs::write(
        r.dir.path().join("checkout.yaml"),
        r.pipeline(&stages, "1h"),
    )
    .unwrap();
    let train = r.dir.path().join("train.yaml");
    std::fs::write(
        &train,
        "apiVersion: glidepath/v1\nkind: Train\nmetadata: { name: undo }\nspec:\n  stages: [staging, prod]\n  members:\n    - { name: checkout, pipeline: checkout.yaml }\n",
    )
    .unwrap();
    let driver = std::process::Command::new(real_delivery::BIN)
        .args(["run", train.to_str().unwrap(), "--headless"])
        .env("GLIDEPATH_HOME", r.dir.path())
        .env_remove("GLIDEPATH_JOURNAL")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let journal = r.dir.path().join("journal.db");
    let waiting = wait_until_async(Duration::from_secs(120), async || {
        let Ok(store) = glidepath::store::Store::open(&journal) else {
            return false;
        };
        let train = store.runs(20).unwrap_or_default().into_iter().find(|t| t.service == "train");
        train.is_some_and(|t| {
            store.events(t.id).unwrap_or_default().iter().any(|e| {
                matches!(&e.event, glidepath::events::Event::StepState { step, status: glidepath::events::Status::WaitingForApproval, .. } if step == "approve")
            })
        })
    })
    .await;
    assert!(waiting, "the train never waited for its approval");
    assert!(available(&r, "checkout", "2.0.0", 4).await);
    let store = glidepath::store::Store::open(&journal).unwrap();
    let run = store
        .runs(20)
        .unwrap()
        .into_iter()
        .find(|t| t.service == "train")
        .unwrap();
    let rollback =
        glidepath::events::Command::new(glidepath::events::CommandKind::Rollback, "test");
    store.send(run.id, &rollback).unwrap();
    let out = tokio::task::spawn_blocking(move || driver.wait_with_output().unwrap())
        .await
        .unwrap();
    let text = real_delivery::text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("checkout: rolled back in staging"), "{text}");
    assert!(
        text.contains("checkout rolled back from 2.0.0 to 1.0.0 (revision 1)"),
        "{text}"
    );
    // Rolled out by the real controller, which made revision 1's ReplicaSet revision 3.
    assert!(available(&r, "checkout", "1.0.0", 4).await);
    let d = r.deployment("checkout").await.unwrap();
    assert_eq!(
        d.pointer("/metadata/annotations/deployment.kubernetes.io~1revision"),
        Some(&serde_json::json!("3")),
        "{d}"
    );
    r.finish().await;
}

/// The milliseconds a run reported from its failed verdict to all traffic on stable.
fn back_on_stable_ms(out: &str) -> u128 {
    let (_, rest) = out
        .split_once("traffic back on stable in ")
        .unwrap_or_else(|| panic!("no rollback time in {out}"));
    rest.split(' ').next().unwrap().parse().unwrap()
}

/// The figures of BENCHMARKS.md ("Delivery on a real control plane"), printed; run by
/// `benches/delivery-realcluster.sh`, not by `cargo test`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: benches/delivery-realcluster.sh runs it"]
async fn measure_delivery_figures() {
    let Some(r) = real("bench", "bad-canary").await else {
        return;
    };
    for router in ["gateway-api", "replicas"] {
        let mut runs = Vec::new();
        for _ in 0..3 {
            let stages = format!(
                "{BASELINE}{}",
                release(
                    router,
                    "[ { weight: 50 }, { pause: 20s }, { weight: 100 } ]"
                )
            );
            let (code, out) = r.run(r.pipeline(&stages, "1s"), &[]).await;
            assert_eq!(code, 1, "{out}");
            runs.push(back_on_stable_ms(&out));
        }
        runs.sort();
        println!(
            "failed gate to all traffic on stable, {router} router: median {} ms, max {} ms ({} runs: {runs:?})",
            runs[runs.len() / 2],
            runs[runs.len() - 1],
            runs.len()
        );
    }
    r.finish().await;
    let Some(r) = real("benchrb", "happy").await else {
        return;
    };
    let mut runs = Vec::new();
    for _ in 0..3 {
        let stages = format!(
            "{BASELINE}{}",
            release(
                "replicas",
                "[ { weight: 50 }, { pause: 2s }, { weight: 100 } ]"
            )
        );
        let (code, out) = r.run(r.pipeline(&stages, "1h"), &[]).await;
        assert_eq!(code, 0, "{out}");
        assert!(available(&r, "checkout", "2.0.0", 4).await);
        let kubeconfig = r.kubeconfig.display().to_string();
        let args: Vec<String> = [
            "rollback",
            "checkout",
            "--kubeconfig",
            &kubeconfig,
            "--context",
            &r.context,
            "-n",
            &r.ns,
            "--yes",
        ]
        .map(String::from)
        .to_vec();
        let started = std::time::Instant::now();
        let (code, text) = glidepath(r.dir.path(), args).await;
        assert_eq!(code, 0, "{text}");
        assert!(available(&r, "checkout", "1.0.0", 4).await);
        runs.push(started.elapsed().as_millis());
    }
    runs.sort();
    println!(
        "glidepath rollback, process start to 1.0.0 available on 4 replicas: median {} ms, max {} ms ({} runs: {runs:?})",
        runs[runs.len() / 2],
        runs[runs.len() - 1],
        runs.len()
    );
    r.finish().await;
}
