//! A 409 on update, retried (issue 19, item 4): `glidepath::kube::kinds::update` (what
//! `glidepath rollback` uses to put a Deployment back on its previous template) reads an
//! object, changes it and replaces it against the resourceVersion it read. Here another
//! writer changes the object between that read and that write, inside the change itself, so
//! the API server answers the write with a real 409 Conflict (a stale resourceVersion):
//! glidepath reads again and writes again, keeping the other writer's change; an object that
//! changes before every write makes it give up after its bound with an error naming the
//! object. Run against the real kube-apiserver (`GLIDEPATH_REALCLUSTER_KUBECONFIG`; under
//! `CI=true` its absence fails) and against the embedded sandbox. A ConfigMap: no controller
//! writes it, so every 409 here is the test's own doing.

use std::collections::BTreeMap;

use glidepath::kube::Error;
use glidepath::kube::kinds::{UPDATE_TRIES, update};
use glidepath::sandbox::{Cluster, Sandbox, Timing};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

#[path = "support/realcluster.rs"]
mod realcluster;

/// What the change saw on each call: the resourceVersion and the data it was given.
type Seen = Vec<(String, BTreeMap<String, String>)>;

/// Another client writes `settings` (its own field manager), from inside a sync change
/// closure: the test runs on a multi-threaded runtime, so it may block this worker.
fn other_writer_bumps(api: &Api<ConfigMap>, n: usize) {
    let patch = json!({ "data": { "bumped": n.to_string() } });
    let params = PatchParams {
        field_manager: Some("other-writer".into()),
        ..PatchParams::default()
    };
    tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current()
            .block_on(api.patch("settings", &params, &Patch::Merge(&patch)))
            .expect("the other writer's patch")
    });
}

/// glidepath's change: `pool` to 20; before the first `bumps` writes, the other writer
/// changes the object first.
async fn run_update(api: &Api<ConfigMap>, bumps: usize) -> (Result<ConfigMap, Error>, Seen) {
    let mut seen: Seen = Vec::new();
    let result = update(api, "settings", |live: Option<ConfigMap>| {
        let mut live = live.expect("settings exists");
        seen.push((
            live.metadata.resource_version.clone().unwrap_or_default(),
            live.data.clone().unwrap_or_default(),
        ));
        if seen.len() <= bumps {
            other_writer_bumps(api, seen.len());
        }
        live.data
            .get_or_insert_with(Default::default)
            .insert("pool".into(), "20".into());
        Ok::<_, Error>(live)
    })
    .await;
    (result, seen)
}

/// Creates `settings` (pool 10) in `ns`.
async fn settings(client: &Client, ns: &str) -> Api<ConfigMap> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let cm = serde_json::from_value(json!({ "metadata": { "name": "settings" },
        "data": { "pool": "10" } }))
    .unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap();
    api
}

/// One 409, then success: the second read sees the other writer's change and keeps it.
async fn one_conflict_is_retried(api: &Api<ConfigMap>) {
    let (result, seen) = run_update(api, 1).await;
    let written = result.unwrap_or_else(|e| panic!("the retry failed: {e}"));
    assert_eq!(seen.len(), 2, "read again after the 409: {seen:?}");
    assert_ne!(seen[0].0, seen[1].0, "the second read is a fresh object");
    assert_eq!(seen[0].1.get("bumped"), None);
    assert_eq!(seen[1].1.get("bumped").map(String::as_str), Some("1"));
    let live = api.get("settings").await.unwrap();
    assert_eq!(
        live.metadata.resource_version,
        written.metadata.resource_version
    );
    let data = live.data.unwrap_or_default();
    assert_eq!(data.get("pool").map(String::as_str), Some("20"));
    assert_eq!(
        data.get("bumped").map(String::as_str),
        Some("1"),
        "{data:?}"
    );
}

/// A 409 before every write: glidepath gives up after UPDATE_TRIES writes and says why.
async fn a_conflict_every_time_gives_up(api: &Api<ConfigMap>, ns: &str) {
    let (result, seen) = run_update(api, usize::MAX).await;
    assert_eq!(seen.len(), UPDATE_TRIES as usize, "{seen:?}");
    let err = result.expect_err("an object that keeps changing is not written");
    let Error::KeptChanging {
        what,
        tries,
        answer,
    } = &err
    else {
        panic!("not KeptChanging: {err:?}");
    };
    assert_eq!(what, &format!("ConfigMap {ns}/settings"));
    assert_eq!(*tries, UPDATE_TRIES);
    assert_eq!((answer.code, answer.reason.as_str()), (409, "Conflict"));
    // The server's own words for a stale resourceVersion.
    assert!(
        answer.message.contains("the object has been modified"),
        "{answer:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "ConfigMap {ns}/settings kept changing while glidepath updated it: the API server refused each of {UPDATE_TRIES} writes"
        )),
        "{text}"
    );
    let live = api.get("settings").await.unwrap();
    let data = live.data.unwrap_or_default();
    assert_eq!(data.get("pool").map(String::as_str), Some("10"), "{data:?}");
    assert_eq!(
        data.get("bumped").map(String::as_str),
        Some(UPDATE_TRIES.to_string().as_str())
    );
}

/// Creates namespace `ns`.
async fn namespace(client: &Client, ns: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace = serde_json::from_value(json!({ "metadata": { "name": ns } })).unwrap();
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_409_from_the_real_api_server_is_read_again_and_retried_within_a_bound() {
    let Some(kubeconfig) = realcluster::kubeconfig() else {
        return;
    };
    let client = realcluster::client(&kubeconfig).await;
    let (one, every) = (
        format!("conflict-one-{}", std::process::id()),
        format!("conflict-every-{}", std::process::id()),
    );
    for ns in [&one, &every] {
        namespace(&client, ns).await;
    }
    one_conflict_is_retried(&settings(&client, &one).await).await;
    a_conflict_every_time_gives_up(&settings(&client, &every).await, &every).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in [&one, &every] {
        let _ = namespaces.delete(ns, &DeleteParams::default()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_409_from_the_sandbox_is_read_again_and_retried_within_a_bound() {
    let sandbox = Sandbox::start(0, Cluster::new(32, Timing::default()))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    sandbox.write_kubeconfig(&path).unwrap();
    let client = realcluster::client(&path).await;
    for ns in ["one", "every"] {
        namespace(&client, ns).await;
    }
    one_conflict_is_retried(&settings(&client, "one").await).await;
    a_conflict_every_time_gives_up(&settings(&client, "every").await, "every").await;
}
