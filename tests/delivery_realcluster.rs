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
