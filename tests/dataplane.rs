//! The sandbox's data plane over an API server through kube-rs: simulated nodes with
//! Lease heartbeats, a scheduler and kubelet stand-in that bring a Deployment to Available
//! with Ready pods, crash-loop and never-ready annotations that behave as on the embedded
//! sandbox, and the Prometheus API answering for those pods, with 30 days of history.
//!
//! Runs against the embedded API server with its own pod simulation handed over, and
//! against a real kube-apiserver and kube-controller-manager when
//! `GLIDEPATH_REALCLUSTER_KUBECONFIG` names one (`bash tests/realcluster/up.sh` prints it);
//! under `CI=true` a missing real control plane is a failure.

use std::time::Duration;

#[path = "support/wait.rs"]
mod wait;
use wait::{stays_async, wait_until_async};

use glidepath::sandbox::dataplane::{DataPlane, Options};
use glidepath::sandbox::{Cluster, Sandbox, Timing};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, ServiceAccount};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};

const CRASH_LOOP: &str = glidepath::sandbox::annotations::CRASH_LOOP;
const NEVER_READY: &str = glidepath::sandbox::annotations::NEVER_READY;

fn timing() -> Timing {
    Timing {
        pod_start: Duration::from_millis(200),
        pod_ready: Duration::from_millis(500),
        resource_ready: Duration::from_millis(300),
        ..Timing::default()
    }
}

async fn client_for(kubeconfig: Kubeconfig) -> Client {
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

fn deployment(name: &str, replicas: i32, annotations: Value) -> Deployment {
    serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name, "version": "v1" }, "annotations": annotations },
                "spec": { "containers": [{ "name": "app", "image": format!("registry.example/{name}:1"),
                    "resources": { "requests": { "cpu": "100m", "memory": "64Mi" } } }] },
            },
        },
    }))
    .unwrap()
}

async fn pods_of(client: &Client, ns: &str, app: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    api.list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .map(|l| l.items)
        .unwrap_or_default()
}

fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn waiting_reason(p: &Pod) -> Option<(String, i32)> {
    let s = p.status.as_ref()?.container_statuses.as_ref()?.first()?;
    let reason = s.state.as_ref()?.waiting.as_ref()?.reason.clone()?;
    Some((reason, s.restart_count))
}

/// The instant value of `query` on the data plane's Prometheus API at `time` (now when None).
async fn prom(url: &str, query: &str, time: Option<f64>) -> Option<f64> {
    let mut form = vec![("query", query.to_owned())];
    if let Some(t) = time {
        form.push(("time", format!("{t:.3}")));
    }
    let body: Value = reqwest::Client::new()
        .post(format!("{url}/api/v1/query"))
        .form(&form)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    body.pointer("/data/result/0/value/1")?
        .as_str()?
        .parse()
        .ok()
}

/// Everything the data plane promises, on whatever API server `client` reaches.
async fn exercise(client: Client, plane: &DataPlane, ns: &str, real: bool) {
    create_namespace(&client, ns, real).await;
    check_nodes(&client, plane).await;
    create_workloads(&client, ns).await;
    check_available(&client, plane, ns).await;
    check_annotations(&client, ns).await;
    check_prometheus(plane, ns).await;
    check_endpoint_slice(&client, ns, real).await;
    delete_namespace(&client, ns).await;
}

async fn create_namespace(client: &Client, ns: &str, real: bool) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace: Namespace =
        serde_json::from_value(json!({ "metadata": { "name": ns } })).unwrap();
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
    // A real API server admits pods once the ServiceAccount controller made `default`.
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    if real {
        assert!(
            wait_until_async(Duration::from_secs(30), async || accounts
                .get_opt("default")
                .await
                .ok()
                .flatten()
                .is_some())
            .await,
            "no default ServiceAccount in {ns} after 30 s: is kube-controller-manager running?"
        );
    }
}

async fn check_nodes(client: &Client, plane: &DataPlane) {
    // Nodes registered with capacity and a Ready condition, and a Lease heartbeat each.
    let nodes: Api<Node> = Api::all(client.clone());
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    for sim in &plane.nodes {
        let node = nodes.get(&sim.name).await.unwrap();
        let status = node.status.unwrap();
        assert_eq!(status.allocatable.unwrap()["pods"].0, "110");
        assert!(
            status
                .conditions
                .unwrap()
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        );
        let lease = leases.get(&sim.name).await.unwrap();
        assert_eq!(
            lease.spec.unwrap().holder_identity.as_deref(),
            Some(sim.name.as_str())
        );
    }
}

async fn create_workloads(client: &Client, ns: &str) {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let pp = PostParams::default();
    deployments
        .create(&pp, &deployment("web", 3, json!({})))
        .await
        .unwrap();
    deployments
        .create(&pp, &deployment("crashy", 1, json!({ CRASH_LOOP: "true" })))
        .await
        .unwrap();
    deployments
        .create(&pp, &deployment("stuck", 1, json!({ NEVER_READY: "true" })))
        .await
        .unwrap();
    let services: Api<k8s_openapi::api::core::v1::Service> = Api::namespaced(client.clone(), ns);
    let svc = serde_json::from_value(json!({
        "metadata": { "name": "web" },
        "spec": { "selector": { "app": "web" }, "ports": [{ "port": 80, "targetPort": 8080 }] },
    }))
    .unwrap();
    services.create(&pp, &svc).await.unwrap();
}

async fn check_available(client: &Client, plane: &DataPlane, ns: &str) {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    // The Deployment becomes Available with three Ready pods on the simulated nodes.
    let available = wait_until_async(Duration::from_secs(60), async || {
        let Ok(d) = deployments.get("web").await else {
            return false;
        };
        let s = d.status.unwrap_or_default();
        s.available_replicas == Some(3)
            && s.conditions
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Available" && c.status == "True")
    })
    .await;
    assert!(
        available,
        "web never became Available: {:?}",
        deployments.get("web").await.ok().and_then(|d| d.status)
    );
    let pods = pods_of(client, ns, "web").await;
    assert_eq!(pods.len(), 3);
    for p in &pods {
        assert!(ready(p), "{:?} is not Ready", p.metadata.name);
        let node = p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap();
        assert!(
            plane.nodes.iter().any(|n| n.name == node),
            "{node} is no simulated node"
        );
        let ip = p.status.as_ref().and_then(|s| s.pod_ip.clone()).unwrap();
        assert!(ip.starts_with("10.244."), "pod IP {ip}");
    }
}

async fn check_annotations(client: &Client, ns: &str) {
    // Crash loops restart and never pass readiness, as on the embedded sandbox.
    let crashing = wait_until_async(Duration::from_secs(30), async || {
        pods_of(client, ns, "crashy").await.iter().any(|p| {
            waiting_reason(p).is_some_and(|(r, n)| r == "CrashLoopBackOff" && n >= 1) && !ready(p)
        })
    })
    .await;
    assert!(
        crashing,
        "crashy never reported CrashLoopBackOff with a restart"
    );

    // Never-ready pods run and stay unready past the time a pod takes to become Ready.
    let running = wait_until_async(Duration::from_secs(30), async || {
        pods_of(client, ns, "stuck")
            .await
            .iter()
            .any(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
    })
    .await;
    assert!(running, "stuck never started");
    let window = timing().pod_ready * 3;
    assert!(
        stays_async(window, async || pods_of(client, ns, "stuck")
            .await
            .iter()
            .all(|p| !ready(p)))
        .await,
        "a never-ready pod became Ready"
    );
}

async fn check_prometheus(plane: &DataPlane, ns: &str) {
    // The Prometheus API answers for those pods: deployment state, live traffic through
    // the Service, and 30 days of history behind it.
    let url = plane.prometheus_url();
    let ready_query =
        format!("kube_deployment_status_replicas_ready{{namespace=\"{ns}\",deployment=\"web\"}}");
    assert!(
        wait_until_async(Duration::from_secs(30), async || prom(
            &url,
            &ready_query,
            None
        )
        .await
            == Some(3.0))
        .await,
        "Prometheus never reported 3 ready replicas of web"
    );
    let traffic =
        format!("sum(http_requests_total{{namespace=\"{ns}\",service=\"web\",version=\"v1\"}})");
    assert!(
        wait_until_async(Duration::from_secs(30), async || prom(&url, &traffic, None)
            .await
            .is_some_and(|v| v > 0.0))
        .await,
        "no requests counted for web"
    );
    let week_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        - 7.0 * 86400.0;
    let history = prom(&url, &traffic, Some(week_ago)).await;
    assert!(
        history.is_some_and(|v| v > 0.0),
        "no history a week back: {history:?}"
    );
}

async fn check_endpoint_slice(client: &Client, ns: &str, real: bool) {
    if real {
        // The real EndpointSlice controller lists the Ready pods the kubelet stand-in reported.
        let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
        let served = wait_until_async(Duration::from_secs(30), async || {
            let lp = ListParams::default().labels("kubernetes.io/service-name=web");
            let Ok(list) = slices.list(&lp).await else {
                return false;
            };
            let ready = list
                .items
                .iter()
                .flat_map(|s| s.endpoints.iter())
                .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
                .count();
            ready == 3
        })
        .await;
        assert!(
            served,
            "the EndpointSlice of web never listed 3 ready endpoints"
        );
    }
}

async fn delete_namespace(client: &Client, ns: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    // Deleting the namespace completes: pods being deleted from simulated nodes go.
    namespaces
        .delete(ns, &DeleteParams::default())
        .await
        .unwrap();
    let gone = wait_until_async(Duration::from_secs(60), async || {
        namespaces.get_opt(ns).await.is_ok_and(|n| n.is_none())
    })
    .await;
    assert!(gone, "namespace {ns} was never deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_plane_drives_the_embedded_api_server() {
    let cluster = Cluster::new(32, timing());
    cluster.hand_over_data_plane();
    let sandbox = Sandbox::start(0, cluster).await.unwrap();
    let kubeconfig = Kubeconfig::from_yaml(&sandbox.kubeconfig("default")).unwrap();
    let client = client_for(kubeconfig).await;
    let options = Options {
        timing: timing(),
        ..Options::default()
    };
    let plane = DataPlane::start(client.clone(), options).await.unwrap();
    exercise(client, &plane, "dataplane", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_plane_drives_a_real_control_plane() {
    let Some(path) = std::env::var_os("GLIDEPATH_REALCLUSTER_KUBECONFIG") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "GLIDEPATH_REALCLUSTER_KUBECONFIG is not set: start the control plane with `bash tests/realcluster/up.sh` and export the KUBECONFIG it prints as GLIDEPATH_REALCLUSTER_KUBECONFIG"
        );
        eprintln!("skipped: GLIDEPATH_REALCLUSTER_KUBECONFIG is not set (required under CI=true)");
        return;
    };
    let kubeconfig = Kubeconfig::read_from(&path).unwrap();
    let client = client_for(kubeconfig).await;
    let options = Options {
        timing: timing(),
        node_prefix: "glidepath-test-node".into(),
        ..Options::default()
    };
    let plane = DataPlane::start(client.clone(), options).await.unwrap();
    let ns = format!("dataplane-{}", std::process::id());
    exercise(client, &plane, &ns, true).await;
}
