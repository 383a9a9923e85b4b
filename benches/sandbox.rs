//! Sandbox figures for BENCHMARKS.md: list latency with 10,000 pods, and how fast a change
//! reaches 50 concurrent watchers.
//!
//! Run: `cargo bench --bench sandbox` (release build). Prints one line per figure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use glidepath::sandbox::{Cluster, Sandbox, Timing};
use serde_json::json;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn list_latency(sandbox: &Sandbox) {
    let cluster = &sandbox.cluster;
    let pods = cluster
        .registry()
        .by_plural("", "v1", "pods")
        .cloned()
        .unwrap();
    for ns in 0..10 {
        let name = format!("load-{ns}");
        let mut obj =
            json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": name } });
        cluster.create_builtin("Namespace", None, &mut obj).unwrap();
        for i in 0..1000 {
            let mut pod = json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": { "name": format!("web-{i:04}"), "labels": { "app": "web", "shard": (i % 10).to_string() } },
                "spec": { "containers": [{ "name": "web", "image": "registry.example.org/web:1.0.0",
                    "resources": { "requests": { "cpu": "100m", "memory": "128Mi" } } }] },
            });
            cluster
                .create(&pods, Some(&name), &mut pod, false, None)
                .unwrap();
        }
    }
    // Let the controllers start them, so the objects carry full status.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let client = glidepath::tls::http_client().build().unwrap();
    let url = format!("{}/api/v1/pods", sandbox.url());
    let mut times = Vec::new();
    let mut count = 0;
    for _ in 0..30 {
        let t = Instant::now();
        let bytes = client
            .get(&url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        times.push(t.elapsed());
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        count = body["items"].as_array().map(Vec::len).unwrap_or(0);
    }
    times.sort();
    println!(
        "list all pods ({count} pods, request to last byte over HTTP): median {:.1} ms, p90 {:.1} ms, max {:.1} ms over {} lists (target < 100 ms)",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.9)),
        ms(*times.last().unwrap()),
        times.len()
    );
}

async fn watch_fan_out(sandbox: &Sandbox) {
    let watchers = 50;
    let client = glidepath::tls::http_client().build().unwrap();
    let url = format!(
        "{}/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={}",
        sandbox.url(),
        sandbox.cluster.store().rv()
    );
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Instant)>();
    for w in 0..watchers {
        let mut resp = client.get(&url).send().await.unwrap();
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Ok(Some(chunk)) = resp.chunk().await {
                // One event per line; count the ADDED lines this chunk holds.
                for _ in 0..chunk.windows(7).filter(|w| w == b"\"ADDED\"").count() {
                    let _ = tx.send((w, Instant::now()));
                }
            }
        });
    }
    let cms = sandbox
        .cluster
        .registry()
        .by_plural("", "v1", "configmaps")
        .cloned()
        .unwrap();
    let mut worst = Vec::new();
    for round in 0..20 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut obj = json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": format!("fan-{round}") }, "data": { "k": "v" } });
        let sent = Instant::now();
        sandbox
            .cluster
            .create(&cms, Some("default"), &mut obj, false, None)
            .unwrap();
        let mut latest = Duration::ZERO;
        for _ in 0..watchers {
            let (_, at) = rx.recv().await.unwrap();
            latest = latest.max(at - sent);
        }
        worst.push(latest);
    }
    worst.sort();
    println!(
        "watch fan-out, {watchers} watchers: the last of them has the change after median {:.2} ms, max {:.2} ms over {} changes (target < 50 ms)",
        ms(percentile(&worst, 0.5)),
        ms(*worst.last().unwrap()),
        worst.len()
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let sandbox = Sandbox::start(0, Cluster::new(32, Timing::default()))
            .await
            .unwrap();
        watch_fan_out(&sandbox).await;
        list_latency(&sandbox).await;
        let _keep: Arc<Cluster> = sandbox.cluster.clone();
    });
}
