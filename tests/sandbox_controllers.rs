//! The simulated controllers: rolling updates stay within maxSurge/maxUnavailable, the
//! sandbox annotations make pods crash-loop or fail readiness and Jobs fail, and custom
//! resources become Ready unless told otherwise.

use std::time::Duration;

#[path = "support/wait.rs"]
mod wait;
use wait::stays_async;

use glidepath::sandbox::{Cluster, Sandbox, Timing};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, Config};
use serde_json::{Value, json};

async fn start() -> (Sandbox, Client) {
    let timing = Timing {
        pod_start: Duration::from_millis(100),
        pod_ready: Duration::from_millis(300),
        resource_ready: Duration::from_millis(300),
        ..Timing::default()
    };
    let sandbox = Sandbox::start(0, Cluster::new(32, timing)).await.unwrap();
    glidepath::sandbox::preset::platform(&sandbox.cluster);
    let kubeconfig = Kubeconfig::from_yaml(&sandbox.kubeconfig("default")).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    (sandbox, Client::try_from(config).unwrap())
}

fn deployment(image: &str, annotations: Value, strategy: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "web" },
        "spec": {
            "replicas": 4, "strategy": strategy,
            "selector": { "matchLabels": { "app": "web" } },
            "template": { "metadata": { "labels": { "app": "web" }, "annotations": annotations },
                "spec": { "containers": [{ "name": "web", "image": image }] } },
        },
    })
}

async fn until<T>(what: &str, secs: u64, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_update_stays_within_surge_and_unavailability() {
    let (_sandbox, client) = start().await;
    let deployments: Api<Deployment> = Api::default_namespaced(client.clone());
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let pp = PatchParams::apply("test");
    let strategy =
        json!({ "type": "RollingUpdate", "rollingUpdate": { "maxSurge": 1, "maxUnavailable": 0 } });
    deployments
        .patch(
            "web",
            &pp,
            &Patch::Apply(deployment("web:1", json!({}), strategy.clone())),
        )
        .await
        .unwrap();
    until("4 ready pods", 20, async || {
        let l = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .unwrap();
        (l.items.iter().filter(|p| ready(p)).count() == 4).then_some(())
    })
    .await;
    deployments
        .patch(
            "web",
            &pp,
            &Patch::Apply(deployment("web:2", json!({}), strategy)),
        )
        .await
        .unwrap();
    let mut most = 0;
    let mut fewest_ready = usize::MAX;
    until("the rollout to finish", 30, async || {
        let l = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .unwrap();
        most = most.max(l.items.len());
        let r = l.items.iter().filter(|p| ready(p)).count();
        fewest_ready = fewest_ready.min(r);
        let d = deployments.get("web").await.unwrap();
        let s = d.status.unwrap_or_default();
        let new_pods = l
            .items
            .iter()
            .filter(|p| {
                p.spec.as_ref().unwrap().containers[0].image.as_deref() == Some("web:2") && ready(p)
            })
            .count();
        (s.updated_replicas == Some(4)
            && s.available_replicas == Some(4)
            && s.replicas == Some(4)
            && new_pods == 4
            && l.items.len() == 4)
            .then_some(())
    })
    .await;
    assert!(most <= 5, "maxSurge 1: never more than 5 pods, saw {most}");
    assert!(
        fewest_ready >= 4,
        "maxUnavailable 0: never fewer than 4 ready, saw {fewest_ready}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_looping_and_unready_pods_hold_the_rollout() {
    let (_sandbox, client) = start().await;
    let deployments: Api<Deployment> = Api::default_namespaced(client.clone());
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let pp = PatchParams::apply("test");
    let crash = json!({ "sandbox.glidepath.dev/crash-loop": "true" });
    deployments
        .patch(
            "web",
            &pp,
            &Patch::Apply(deployment(
                "web:bad",
                crash,
                json!({ "type": "RollingUpdate" }),
            )),
        )
        .await
        .unwrap();
    let restarts = until("a pod restarting in CrashLoopBackOff", 20, async || {
        let l = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .unwrap();
        l.items.iter().find_map(|p| {
            let cs = p
                .status
                .as_ref()?
                .container_statuses
                .as_ref()?
                .first()?
                .clone();
            let waiting = cs.state?.waiting?;
            (waiting.reason.as_deref() == Some("CrashLoopBackOff") && cs.restart_count >= 1)
                .then_some(cs.restart_count)
        })
    })
    .await;
    assert!(restarts >= 1);
    let status = async || {
        deployments
            .get("web")
            .await
            .unwrap()
            .status
            .unwrap_or_default()
    };
    let available = async || status().await.available_replicas.unwrap_or(0);
    assert!(
        stays_async(Duration::from_secs(1), async || available().await == 0).await,
        "crash-looping pods are never available, yet {} are",
        available().await
    );
    let progressing = status()
        .await
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Available")
        .unwrap();
    assert_eq!(progressing.status, "False");

    let never = json!({ "sandbox.glidepath.dev/never-ready": "true" });
    deployments
        .patch(
            "web",
            &pp,
            &Patch::Apply(deployment(
                "web:slow",
                never,
                json!({ "type": "RollingUpdate" }),
            )),
        )
        .await
        .unwrap();
    until("pods of the new template to run", 20, async || {
        let l = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .unwrap();
        l.items
            .iter()
            .any(|p| {
                p.spec.as_ref().unwrap().containers[0].image.as_deref() == Some("web:slow")
                    && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
            })
            .then_some(())
    })
    .await;
    let none_ready = async || {
        let l = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .unwrap();
        l.items.iter().all(|p| !ready(p))
    };
    assert!(
        stays_async(Duration::from_secs(1), none_ready).await,
        "never-ready pods stay unready"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_job_fails_after_its_backoff_limit() {
    let (_sandbox, client) = start().await;
    let jobs: Api<Job> = Api::default_namespaced(client.clone());
    let job: Job = serde_json::from_value(json!({
        "metadata": { "name": "migrate" },
        "spec": { "backoffLimit": 1, "template": {
            "metadata": { "annotations": { "sandbox.glidepath.dev/fail": "true", "sandbox.glidepath.dev/duration": "200ms" } },
            "spec": { "restartPolicy": "Never", "containers": [{ "name": "migrate", "image": "migrate:1" }] } } },
    }))
    .unwrap();
    jobs.create(&PostParams::default(), &job).await.unwrap();
    let status = until("the job to fail", 20, async || {
        let s = jobs.get("migrate").await.unwrap().status?;
        s.conditions
            .as_ref()?
            .iter()
            .any(|c| c.type_ == "Failed" && c.status == "True")
            .then_some(s)
    })
    .await;
    assert_eq!(status.failed, Some(2), "one try and one retry");
    assert_eq!(status.succeeded.unwrap_or(0), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_resources_become_ready_unless_annotated() {
    let (_sandbox, client) = start().await;
    let gvk = GroupVersionKind::gvk("platform.example.org", "v1", "XDatabase");
    let claims: Api<DynamicObject> = Api::default_namespaced_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(&gvk, "xdatabases"),
    );
    let make = |name: &str, annotations: Value| -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "platform.example.org/v1", "kind": "XDatabase",
            "metadata": { "name": name, "annotations": annotations }, "spec": { "size": "small" },
        }))
        .unwrap()
    };
    claims
        .create(&PostParams::default(), &make("orders", json!({})))
        .await
        .unwrap();
    claims
        .create(
            &PostParams::default(),
            &make(
                "stuck",
                json!({ "sandbox.glidepath.dev/never-ready": "true" }),
            ),
        )
        .await
        .unwrap();
    let is_ready = |o: &DynamicObject| {
        o.data
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
    };
    until("orders to be Ready", 10, async || {
        is_ready(&claims.get("orders").await.unwrap()).then_some(())
    })
    .await;
    assert!(
        stays_async(Duration::from_secs(1), async || !is_ready(
            &claims.get("stuck").await.unwrap()
        ))
        .await,
        "a claim annotated never-ready stays pending"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_send_bookmarks_when_asked() {
    let (sandbox, _client) = start().await;
    let url = format!(
        "{}/api/v1/namespaces/default/configmaps?watch=true&allowWatchBookmarks=true&timeoutSeconds=2",
        sandbox.url()
    );
    let text = glidepath::tls::http_client()
        .build()
        .unwrap()
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let bookmark = text
        .lines()
        .find(|l| l.contains("\"BOOKMARK\""))
        .expect("a bookmark within two seconds");
    let event: Value = serde_json::from_str(bookmark).unwrap();
    assert!(
        event["object"]["metadata"]["resourceVersion"]
            .as_str()
            .is_some_and(|rv| !rv.is_empty())
    );
}
