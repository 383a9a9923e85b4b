//! Simulated users and real endpoints: requests to a Service's loopback endpoint get the
//! declared status codes and real delays and are counted exactly; traffic splits by
//! HTTPRoute weights and follows a blue-green selector switch; a version with no ready pods
//! fails; a real Prometheus scraping `/metrics` sees the sandbox's own totals; scenarios
//! shape new versions and the platform.

#[path = "support/prometheus.rs"]
mod prometheus;

use std::time::{Duration, Instant};

use glidepath::metrics::Client;
use glidepath::sandbox::scenario::Scenario;
use glidepath::sandbox::{Cluster, Sandbox, Timing};
use prometheus::wait::wait_until_async;
use serde_json::{Value, json};

async fn start(scenario: &str) -> Sandbox {
    let cluster = Cluster::with_scenario(32, Timing::default(), Scenario::named(scenario).unwrap());
    glidepath::sandbox::preset::platform(&cluster);
    Sandbox::start(0, cluster).await.unwrap()
}

async fn send(s: &Sandbox, method: &str, path: &str, content_type: &str, body: &Value) -> Value {
    let resp = glidepath::tls::http_client()
        .build()
        .unwrap()
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{}{path}", s.url()),
        )
        .header("content-type", content_type)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert!(
        resp.status().is_success(),
        "{method} {path}: {}",
        resp.status()
    );
    resp.json().await.unwrap()
}

async fn create(s: &Sandbox, path: &str, body: Value) -> Value {
    send(s, "POST", path, "application/json", &body).await
}

fn deployment(name: &str, labels: Value, replicas: u32, annotations: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": name },
        "spec": { "replicas": replicas, "selector": { "matchLabels": labels.clone() },
            "template": { "metadata": { "labels": labels, "annotations": annotations },
                "spec": { "containers": [{ "name": "app", "image": format!("shop/{name}:1") }] } } },
    })
}

fn service(name: &str, selector: Value, rps: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": name, "annotations": { "sandbox.glidepath.dev/rps": rps } },
        "spec": { "selector": selector, "ports": [{ "port": 80 }] },
    })
}

const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/shop/deployments";
const SERVICES: &str = "/api/v1/namespaces/shop/services";
const ROUTES: &str = "/apis/gateway.networking.k8s.io/v1/namespaces/shop/httproutes";

/// Waits for `cond` on the object at `path`.
async fn wait_for(s: &Sandbox, path: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let resp = glidepath::tls::http_client()
            .build()
            .unwrap()
            .get(format!("{}{path}", s.url()))
            .send()
            .await
            .unwrap();
        if resp.status().is_success() {
            let v: Value = resp.json().await.unwrap();
            if cond(&v) {
                return v;
            }
        }
        assert!(Instant::now() < deadline, "timed out waiting on {path}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn endpoint(s: &Sandbox, path: &str) -> String {
    let v = wait_for(s, path, |v| {
        v.pointer("/metadata/annotations/sandbox.glidepath.dev~1endpoint")
            .is_some()
    })
    .await;
    v.pointer("/metadata/annotations/sandbox.glidepath.dev~1endpoint")
        .and_then(Value::as_str)
        .unwrap()
        .to_owned()
}

async fn available(s: &Sandbox, name: &str, n: u64) {
    wait_for(s, &format!("{DEPLOYMENTS}/{name}"), |v| {
        v.pointer("/status/availableReplicas")
            .and_then(Value::as_u64)
            == Some(n)
    })
    .await;
}

/// The value of a one-series query at the sandbox's Prometheus API (0 when empty).
async fn value(s: &Sandbox, q: &str) -> f64 {
    Client::new(&s.url())
        .unwrap()
        .value(q, None)
        .await
        .unwrap()
        .unwrap_or(0.0)
}

/// Whether the routing table requests follow has entry `entry` with `n` ready pods of
/// `version` behind it.
fn routed(s: &Sandbox, entry: &str, version: &str, n: u32) -> bool {
    s.cluster.telemetry.topology().entries.iter().any(|e| {
        e.name == entry
            && e.backends
                .iter()
                .flat_map(|b| &b.versions)
                .any(|v| v.version == version && v.ready >= n)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_requests_get_the_declared_behaviour_and_are_counted() {
    let s = start("happy").await;
    let ann = json!({
        "sandbox.glidepath.dev/error-ratio": "0.3",
        "sandbox.glidepath.dev/latency-p50": "20ms",
        "sandbox.glidepath.dev/latency-p99": "60ms",
    });
    create(
        &s,
        DEPLOYMENTS,
        deployment("web", json!({ "app": "web", "version": "v7" }), 2, ann),
    )
    .await;
    // No simulated users: every request counted is one of ours.
    create(&s, SERVICES, service("web", json!({ "app": "web" }), "0")).await;
    available(&s, "web", 2).await;
    let url = endpoint(&s, &format!("{SERVICES}/web")).await;
    // Readiness reaches the endpoint with the next refresh of the routing table.
    assert!(
        wait_until_async(Duration::from_secs(10), || std::future::ready(routed(
            &s, "web", "v7", 2
        )))
        .await,
        "the ready pods of web never reached its endpoint"
    );
    let client = glidepath::tls::http_client().build().unwrap();
    let n = 600;
    let mut tasks = Vec::new();
    for i in 0..n {
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let start = Instant::now();
            let resp = client
                .get(format!("{url}/checkout/{i}"))
                .send()
                .await
                .unwrap();
            let version = resp.headers()["x-sandbox-version"]
                .to_str()
                .unwrap()
                .to_owned();
            (resp.status().as_u16(), version, start.elapsed())
        }));
    }
    let mut errors = 0;
    let mut latencies = Vec::new();
    for t in tasks {
        let (code, version, took) = t.await.unwrap();
        assert_eq!(version, "v7");
        assert!(code == 200 || code == 500, "{code}");
        errors += usize::from(code == 500);
        latencies.push(took);
    }
    latencies.sort();
    // Real delays: the median request took at least most of the declared median.
    assert!(
        latencies[n / 2] >= Duration::from_millis(15),
        "{:?}",
        latencies[n / 2]
    );
    let ratio = errors as f64 / n as f64;
    // 0.3 declared; four standard deviations of a binomial of 600 is 0.075.
    assert!((ratio - 0.3).abs() < 0.075, "{ratio}");
    let sel = r#"namespace="shop",service="web",version="v7""#;
    // The next scrape records them all.
    let total = format!("sum(http_requests_total{{{sel}}})");
    let (sr, tr) = (&s, &total);
    wait_until_async(Duration::from_secs(10), || async move {
        value(sr, tr).await == n as f64
    })
    .await;
    assert_eq!(
        value(&s, &format!("sum(http_requests_total{{{sel}}})")).await,
        n as f64
    );
    assert_eq!(
        value(
            &s,
            &format!(r#"sum(http_requests_total{{{sel},code="500"}})"#)
        )
        .await,
        errors as f64
    );
    let p50 = value(
        &s,
        &format!(
            "histogram_quantile(0.5, sum by (le) (http_request_duration_seconds_bucket{{{sel}}}))"
        ),
    )
    .await;
    assert!((0.01..=0.03).contains(&p50), "{p50}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_follows_route_weights_and_fails_without_ready_pods() {
    let s = start("happy").await;
    create(
        &s,
        DEPLOYMENTS,
        deployment(
            "shop-v1",
            json!({ "app": "shop", "version": "v1" }),
            3,
            json!({}),
        ),
    )
    .await;
    let never = json!({ "sandbox.glidepath.dev/never-ready": "true" });
    create(
        &s,
        DEPLOYMENTS,
        deployment(
            "shop-v2",
            json!({ "app": "shop", "version": "v2" }),
            1,
            never,
        ),
    )
    .await;
    create(
        &s,
        SERVICES,
        service(
            "shop-stable",
            json!({ "app": "shop", "version": "v1" }),
            "0",
        ),
    )
    .await;
    create(
        &s,
        SERVICES,
        service(
            "shop-canary",
            json!({ "app": "shop", "version": "v2" }),
            "0",
        ),
    )
    .await;
    available(&s, "shop-v1", 3).await;
    create(
        &s,
        ROUTES,
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": { "name": "shop", "annotations": { "sandbox.glidepath.dev/rps": "300" } },
            "spec": { "rules": [{ "backendRefs": [
                { "name": "shop-stable", "port": 80, "weight": 75 },
                { "name": "shop-canary", "port": 80, "weight": 25 } ] }] },
        }),
    )
    .await;
    endpoint(&s, &format!("{ROUTES}/shop")).await;
    let q = |v: &str, code: &str| {
        format!(r#"sum(http_requests_total{{service="shop",version="{v}",code=~"{code}"}})"#)
    };
    let before = [
        value(&s, &q("v1", ".*")).await,
        value(&s, &q("none", "503")).await,
    ];
    // Enough requests for the share to be measured (300 rps: about 2 s on a quiet machine).
    let counts = || async {
        let v1 = value(&s, &q("v1", ".*")).await - before[0];
        let none = value(&s, &q("none", "503")).await - before[1];
        (v1, none)
    };
    wait_until_async(Duration::from_secs(30), || async {
        let (v1, none) = counts().await;
        v1 + none > 500.0
    })
    .await;
    // The canary has no ready pod: its share failed with 503, answered by the gateway
    // (version "none"), and v2 itself served nothing.
    let (v1, none) = counts().await;
    let share = none / (v1 + none);
    assert!(v1 + none > 500.0, "{v1} + {none}");
    assert!((share - 0.25).abs() < 0.06, "canary share {share}");
    assert_eq!(value(&s, &q("v2", ".*")).await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_switch_moves_real_requests() {
    let s = start("happy").await;
    for color in ["blue", "green"] {
        let labels = json!({ "app": "pay", "color": color, "version": color });
        create(
            &s,
            DEPLOYMENTS,
            deployment(
                &format!("pay-{color}"),
                labels,
                1,
                json!({ "sandbox.glidepath.dev/latency-p50": "1ms" }),
            ),
        )
        .await;
    }
    create(
        &s,
        SERVICES,
        service("pay", json!({ "app": "pay", "color": "blue" }), "0"),
    )
    .await;
    available(&s, "pay-blue", 1).await;
    available(&s, "pay-green", 1).await;
    let url = endpoint(&s, &format!("{SERVICES}/pay")).await;
    let version = |url: String| async move {
        glidepath::tls::http_client()
            .build()
            .unwrap()
            .get(url)
            .send()
            .await
            .unwrap()
            .headers()["x-sandbox-version"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(version(url.clone()).await, "blue");
    send(
        &s,
        "PATCH",
        &format!("{SERVICES}/pay"),
        "application/merge-patch+json",
        &json!({ "spec": { "selector": { "color": "green" } } }),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while version(url.clone()).await != "green" {
        assert!(
            Instant::now() < deadline,
            "the switch never reached the endpoint"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scraping_the_sandbox_sees_the_same_totals() {
    let s = start("happy").await;
    create(
        &s,
        DEPLOYMENTS,
        deployment(
            "cart",
            json!({ "app": "cart", "version": "v1" }),
            2,
            json!({ "sandbox.glidepath.dev/error-ratio": "0.05" }),
        ),
    )
    .await;
    create(
        &s,
        SERVICES,
        service("cart", json!({ "app": "cart" }), "200"),
    )
    .await;
    available(&s, "cart", 2).await;
    let prom = prometheus::start_scraping(&s.addr.to_string());
    let theirs = Client::new(&prom.url).unwrap();
    // Prometheus sees live traffic as increases, not just the backfilled history...
    let live = r#"sum(increase(http_requests_total{service="cart"}[3s]))"#;
    let deadline = Instant::now() + Duration::from_secs(20);
    while theirs.value(live, None).await.ok().flatten().unwrap_or(0.0) < 100.0 {
        assert!(
            Instant::now() < deadline,
            "Prometheus never saw live traffic"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // ...and once the users stop, the totals settle and agree exactly.
    send(
        &s,
        "PATCH",
        &format!("{SERVICES}/cart"),
        "application/merge-patch+json",
        &json!({ "metadata": { "annotations": { "sandbox.glidepath.dev/rps": "0" } } }),
    )
    .await;
    let queries = [
        r#"sum(http_requests_total{service="cart"})"#,
        r#"sum(http_requests_total{service="cart",code="500"})"#,
        r#"sum(http_request_duration_seconds_count{service="cart"})"#,
        r#"sum(kube_deployment_status_replicas_available{deployment="cart"})"#,
    ];
    let (sr, tr) = (&s, &theirs);
    wait_until_async(Duration::from_secs(20), || async move {
        for q in queries {
            if Some(value(sr, q).await) != tr.value(q, None).await.ok().flatten() {
                return false;
            }
        }
        true
    })
    .await;
    for q in queries {
        let ours = value(&s, q).await;
        let seen = theirs.value(q, None).await.unwrap().unwrap_or(-1.0);
        assert_eq!(ours, seen, "{q}");
        assert!(ours > 0.0, "{q}: {ours}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenarios_shape_new_versions_and_the_platform() {
    let s = start("bad-canary").await;
    create(
        &s,
        DEPLOYMENTS,
        deployment(
            "api",
            json!({ "app": "api", "version": "v1" }),
            1,
            json!({}),
        ),
    )
    .await;
    create(&s, SERVICES, service("api", json!({ "app": "api" }), "10")).await;
    available(&s, "api", 1).await;
    endpoint(&s, &format!("{SERVICES}/api")).await;
    create(
        &s,
        DEPLOYMENTS,
        deployment(
            "api-canary",
            json!({ "app": "api", "version": "v2" }),
            1,
            json!({}),
        ),
    )
    .await;
    available(&s, "api-canary", 1).await;
    assert!(
        wait_until_async(Duration::from_secs(10), || std::future::ready(routed(
            &s, "api", "v2", 1
        )))
        .await,
        "the canary never joined the routing table"
    );
    let topology = s.cluster.telemetry.topology();
    let entry = topology.entries.iter().find(|e| e.name == "api").unwrap();
    let version = |v: &str| {
        entry.backends[0]
            .versions
            .iter()
            .find(|x| x.version == v)
            .unwrap()
            .behaviour
            .clone()
    };
    assert_eq!(
        version("v1").degraded_error_ratio,
        None,
        "the first version is the stable one"
    );
    assert_eq!(
        version("v2"),
        Scenario::named("bad-canary").unwrap().new_version
    );
    // History: the stable version has 30 days, spent as the scenario says (20% of 0.1%).
    let ratio = value(&s, r#"sum(increase(http_requests_total{service="api",code!="200"}[30d])) / sum(increase(http_requests_total{service="api"}[30d]))"#).await;
    assert!((0.00015..0.00030).contains(&ratio), "{ratio}");

    let s = start("missing-infra").await;
    let crds: Value = glidepath::tls::http_client()
        .build()
        .unwrap()
        .get(format!(
            "{}/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            s.url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = crds["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c.pointer("/metadata/name").and_then(Value::as_str))
        .collect();
    assert!(
        names.contains(&"xdatabases.platform.example.org"),
        "{names:?}"
    );
    assert!(
        !names.contains(&"prometheusrules.monitoring.coreos.com"),
        "{names:?}"
    );
    let db = "/apis/platform.example.org/v1/namespaces/shop/xdatabases";
    create(&s, db, json!({ "apiVersion": "platform.example.org/v1", "kind": "XDatabase", "metadata": { "name": "orders" }, "spec": {} })).await;
    // Nothing may happen: watched for 3 s, failing as soon as a condition appears.
    let claim = || async {
        glidepath::tls::http_client()
            .build()
            .unwrap()
            .get(format!("{}{db}/orders", s.url()))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let provisioned = wait_until_async(Duration::from_secs(3), || async {
        claim().await.pointer("/status/conditions").is_some()
    })
    .await;
    assert!(!provisioned, "{}", claim().await);
}
