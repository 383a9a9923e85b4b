//! kube-rs, the client glidepath itself uses, against the embedded sandbox: typed Api calls,
//! conflicts, server-side apply, the watcher, scale, cascading deletes and log streams.

use std::time::Duration;

use futures::{AsyncBufReadExt, StreamExt, TryStreamExt};
use glidepath::sandbox::{Cluster, Sandbox, Timing};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Config};
use serde_json::json;

async fn start() -> (Sandbox, Client) {
    let timing = Timing {
        pod_start: Duration::from_millis(100),
        pod_ready: Duration::from_millis(200),
        ..Timing::default()
    };
    let sandbox = Sandbox::start(0, Cluster::new(32, timing)).await.unwrap();
    let kubeconfig = Kubeconfig::from_yaml(&sandbox.kubeconfig("default")).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    let client = Client::try_from(config).unwrap();
    (sandbox, client)
}

fn deployment(image: &str, replicas: i32) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": "web", "namespace": "default", "labels": { "app": "web" } },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": "web" } },
            "template": { "metadata": { "labels": { "app": "web" } },
                "spec": { "containers": [{ "name": "web", "image": image }] } },
        },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_crud_conflicts_and_selectors() {
    let (_sandbox, client) = start().await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({ "metadata": { "name": "kr" } })).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "kr");
    for (name, tier) in [("a", "front"), ("b", "back"), ("c", "front")] {
        let cm: ConfigMap = serde_json::from_value(json!({
            "metadata": { "name": name, "labels": { "tier": tier } }, "data": { "k": "v" }
        }))
        .unwrap();
        cms.create(&PostParams::default(), &cm).await.unwrap();
    }
    let front = cms
        .list(&ListParams::default().labels("tier=front"))
        .await
        .unwrap();
    assert_eq!(
        front
            .items
            .iter()
            .map(|c| c.metadata.name.clone().unwrap())
            .collect::<Vec<_>>(),
        vec!["a", "c"]
    );
    let by_name = cms
        .list(&ListParams::default().fields("metadata.name=b"))
        .await
        .unwrap();
    assert_eq!(by_name.items.len(), 1);
    let page = cms.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(page.items.len(), 2);
    let rest = cms
        .list(
            &ListParams::default()
                .limit(2)
                .continue_token(page.metadata.continue_.as_deref().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(
        rest.items
            .iter()
            .map(|c| c.metadata.name.clone().unwrap())
            .collect::<Vec<_>>(),
        vec!["c"]
    );

    let mut a = cms.get("a").await.unwrap();
    let stale = a.clone();
    a.data
        .get_or_insert_default()
        .insert("k".into(), "v2".into());
    cms.replace("a", &PostParams::default(), &a).await.unwrap();
    match cms.replace("a", &PostParams::default(), &stale).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
            assert!(
                s.message.contains("the object has been modified"),
                "{}",
                s.message
            );
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    match cms.create(&PostParams::default(), &stale).await {
        Err(kube::Error::Api(s)) => assert_eq!((s.code, s.reason.as_str()), (409, "AlreadyExists")),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    match cms.get("nope").await {
        Err(kube::Error::Api(s)) => assert_eq!(
            (s.code, s.message.as_str()),
            (404, "configmaps \"nope\" not found")
        ),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_watcher_scale_and_cascade() {
    let (_sandbox, client) = start().await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let pp = PatchParams::apply("glidepath");
    let first = deployments
        .patch("web", &pp, &Patch::Apply(deployment("nginx:1", 2)))
        .await
        .unwrap();
    let again = deployments
        .patch("web", &pp, &Patch::Apply(deployment("nginx:1", 2)))
        .await
        .unwrap();
    assert_eq!(
        first.metadata.resource_version, again.metadata.resource_version,
        "a repeated apply changes nothing"
    );
    let managers: Vec<String> = again
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(managers, vec!["glidepath"]);

    // The watcher follows the rollout until every replica is available.
    let stream = watcher(
        deployments.clone(),
        watcher::Config::default().fields("metadata.name=web"),
    )
    .applied_objects();
    let ready = tokio::time::timeout(Duration::from_secs(20), async {
        let mut stream = std::pin::pin!(stream);
        while let Some(d) = stream.try_next().await.unwrap() {
            let s = d.status.unwrap_or_default();
            if s.available_replicas == Some(2) && s.updated_replicas == Some(2) {
                return s;
            }
        }
        panic!("the watch ended");
    })
    .await
    .expect("the rollout completes");
    assert_eq!(ready.observed_generation, Some(1));

    let scale = deployments.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(2));
    assert_eq!(scale.status.unwrap().selector.as_deref(), Some("app=web"));
    deployments
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "replicas": 4 } })),
        )
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let ready = pods
                .list(&ListParams::default().labels("app=web"))
                .await
                .unwrap()
                .items
                .len();
            if ready == 4 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("scaled to 4 pods");

    deployments
        .delete("web", &DeleteParams::background())
        .await
        .unwrap();
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    assert!(
        sets.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "ReplicaSets go with their Deployment"
    );
    assert!(
        pods.list(&ListParams::default().labels("app=web"))
            .await
            .unwrap()
            .items
            .is_empty(),
        "and so do their pods"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_logs_stream_through_log_stream() {
    let (_sandbox, client) = start().await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let job: Job = serde_json::from_value(json!({
        "metadata": { "name": "smoke" },
        "spec": { "template": {
            "metadata": { "annotations": { "sandbox.glidepath.dev/log": "GET /healthz 200\nall checks passed", "sandbox.glidepath.dev/duration": "1s" } },
            "spec": { "restartPolicy": "Never", "containers": [{ "name": "smoke", "image": "curl" }] } } },
    }))
    .unwrap();
    let created = jobs.create(&PostParams::default(), &job).await.unwrap();
    let uid = created.metadata.uid.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let selector = format!("batch.kubernetes.io/controller-uid={uid}");
    let pod = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(p) = pods
                .list(&ListParams::default().labels(&selector))
                .await
                .unwrap()
                .items
                .into_iter()
                .next()
            {
                if p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") {
                    return p;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the job's pod runs");
    let name = pod.metadata.name.unwrap();
    let stream = pods
        .log_stream(
            &name,
            &LogParams {
                follow: true,
                ..LogParams::default()
            },
        )
        .await
        .unwrap();
    let lines: Vec<String> =
        tokio::time::timeout(Duration::from_secs(10), stream.lines().try_collect())
            .await
            .expect("the stream ends with the pod")
            .unwrap();
    assert_eq!(
        lines,
        vec![
            "GET /healthz 200",
            "all checks passed",
            "completed with exit code 0"
        ]
    );
    // The Job controller marks the Job complete at its next tick.
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let conditions = jobs
                .get("smoke")
                .await
                .unwrap()
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default();
            if conditions
                .iter()
                .any(|c| c.type_ == "Complete" && c.status == "True")
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the Job completes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_resumes_from_a_resource_version_and_reports_gone() {
    let (sandbox, client) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({ "metadata": { "name": "one" } })).unwrap();
    let created = cms.create(&PostParams::default(), &cm).await.unwrap();
    let rv = created.metadata.resource_version.unwrap();
    let cm2: ConfigMap = serde_json::from_value(json!({ "metadata": { "name": "two" } })).unwrap();
    cms.create(&PostParams::default(), &cm2).await.unwrap();
    // From `rv`, only the later change arrives.
    let mut events = cms
        .watch(&kube::api::WatchParams::default().timeout(1), &rv)
        .await
        .unwrap()
        .boxed();
    match events.next().await {
        Some(Ok(kube::api::WatchEvent::Added(c))) => {
            assert_eq!(c.metadata.name.as_deref(), Some("two"))
        }
        other => panic!("expected two to be added, got {other:?}"),
    }
    drop(events);
    // A version older than the change log reaches is 410 Gone, as a real server says.
    sandbox.cluster.store().set_log_limit(3);
    for i in 0..5 {
        let cm: ConfigMap =
            serde_json::from_value(json!({ "metadata": { "name": format!("n{i}") } })).unwrap();
        cms.create(&PostParams::default(), &cm).await.unwrap();
    }
    let mut events = cms
        .watch(&kube::api::WatchParams::default().timeout(1), &rv)
        .await
        .unwrap()
        .boxed();
    match events.next().await {
        Some(Ok(kube::api::WatchEvent::Error(e))) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"))
        }
        other => panic!("expected 410 Gone, got {other:?}"),
    }
}
