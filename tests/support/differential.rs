//! The two API servers of the differential test (tests/realcluster.rs): the embedded
//! sandbox and the real kube-apiserver, sent the same raw requests, and the record of where
//! their answers differ. Included with `#[path = "support/differential.rs"]`.
#![allow(dead_code)]

use glidepath::sandbox::{Cluster, Sandbox, Timing};
use http_body_util::BodyExt;
use kube::Client;
use serde_json::{Value, json};

use super::realcluster;

/// One API server under test: the sandbox or the real one.
#[derive(Clone)]
pub struct Target {
    pub name: &'static str,
    pub client: Client,
    /// Sent as `Impersonate-User`: the admin acting as this user, as `kubectl --as` does.
    pub user: Option<String>,
}

/// A reply: the HTTP status code and the JSON body (Null when it was not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    pub code: u16,
    pub body: Value,
}

impl Target {
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        ct: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let response = self.send(method, path, ct, body).await;
        let code = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .unwrap_or_else(|e| panic!("{}: reading {method} {path}: {e}", self.name))
            .to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply { code, body }
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        ct: Option<&str>,
        body: Option<Value>,
    ) -> http::Response<kube::client::Body> {
        let mut request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("accept", "application/json");
        if let Some(ct) = ct {
            request = request.header("content-type", ct);
        }
        if let Some(user) = &self.user {
            request = request.header("impersonate-user", user);
        }
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let request = request.body(kube::client::Body::from(bytes)).unwrap();
        self.client
            .send(request)
            .await
            .unwrap_or_else(|e| panic!("{}: {method} {path}: {e}", self.name))
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call("GET", path, None, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call("POST", path, Some("application/json"), Some(body))
            .await
    }
    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.call("PUT", path, Some("application/json"), Some(body))
            .await
    }
    pub async fn patch(&self, path: &str, ct: &str, body: Value) -> Reply {
        self.call("PATCH", path, Some(ct), Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> Reply {
        self.call("DELETE", path, Some("application/json"), Some(json!({})))
            .await
    }
}

/// The two servers, the namespace each test works in, and the differences found so far.
pub struct Pair {
    pub sandbox: Sandbox,
    pub targets: [Target; 2],
    /// The kubeconfig of each target, for kubectl.
    pub kubeconfigs: [std::path::PathBuf; 2],
    pub dir: tempfile::TempDir,
    pub ns: String,
    pub differences: Vec<String>,
}

pub const MERGE: &str = "application/merge-patch+json";
pub const STRATEGIC: &str = "application/strategic-merge-patch+json";
pub const JSON_PATCH: &str = "application/json-patch+json";
pub const APPLY: &str = "application/apply-patch+yaml";

/// The pointers compared for a `Status` reply.
pub const STATUS: &[&str] = &[
    "/kind",
    "/status",
    "/reason",
    "/code",
    "/message",
    "/details/name",
    "/details/group",
    "/details/kind",
];

/// Starts a sandbox beside the real control plane and makes namespace `<tag>-<n>` on both;
/// None outside CI when no control plane runs.
pub async fn pair(tag: &str) -> Option<Pair> {
    let real = realcluster::kubeconfig()?;
    let sandbox = Sandbox::start(0, Cluster::new(32, Timing::default()))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sandbox_kubeconfig = dir.path().join("kubeconfig");
    sandbox.write_kubeconfig(&sandbox_kubeconfig).unwrap();
    let targets = [
        Target {
            name: "sandbox",
            client: realcluster::client(&sandbox_kubeconfig).await,
            user: None,
        },
        Target {
            name: "kube-apiserver",
            client: realcluster::client(&real).await,
            user: None,
        },
    ];
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let ns = format!("{tag}-{}", nanos % 1_000_000);
    let pair = Pair {
        sandbox,
        targets,
        kubeconfigs: [sandbox_kubeconfig, real],
        dir,
        ns: ns.clone(),
        differences: Vec::new(),
    };
    let body = json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns } });
    let created = pair.both_post("/api/v1/namespaces", body).await;
    pair.expect("create namespace", &created, 201);
    Some(pair)
}

impl Pair {
    pub fn path(&self, template: &str) -> String {
        template.replace("{ns}", &self.ns)
    }

    pub async fn both_get(&self, path: &str) -> [Reply; 2] {
        let path = self.path(path);
        [
            self.targets[0].get(&path).await,
            self.targets[1].get(&path).await,
        ]
    }
    pub async fn both_post(&self, path: &str, body: Value) -> [Reply; 2] {
        let path = self.path(path);
        [
            self.targets[0].post(&path, body.clone()).await,
            self.targets[1].post(&path, body).await,
        ]
    }
    pub async fn both_patch(&self, path: &str, ct: &str, body: Value) -> [Reply; 2] {
        let path = self.path(path);
        [
            self.targets[0].patch(&path, ct, body.clone()).await,
            self.targets[1].patch(&path, ct, body).await,
        ]
    }
    pub async fn both_delete(&self, path: &str) -> [Reply; 2] {
        let path = self.path(path);
        [
            self.targets[0].delete(&path).await,
            self.targets[1].delete(&path).await,
        ]
    }

    /// Both replies must carry `code` (a setup step: the test cannot go on otherwise).
    pub fn expect(&self, step: &str, replies: &[Reply; 2], code: u16) {
        for (t, r) in self.targets.iter().zip(replies) {
            assert_eq!(
                r.code, code,
                "{step}: {} answered {}: {}",
                t.name, r.code, r.body
            );
        }
    }

    /// Records where the two replies differ: the code, and the value at each pointer.
    pub fn compare(&mut self, step: &str, replies: &[Reply; 2], pointers: &[&str]) {
        let [a, b] = replies;
        if a.code != b.code {
            self.differences.push(format!(
                "{step}: code {} vs {}\n  sandbox: {}\n  kube-apiserver: {}",
                a.code, b.code, a.body, b.body
            ));
            return;
        }
        for p in pointers {
            let (x, y) = (a.body.pointer(p), b.body.pointer(p));
            if x != y {
                self.differences.push(format!(
                    "{step}: {p} is {} in the sandbox, {} in kube-apiserver",
                    show(x),
                    show(y)
                ));
            }
        }
    }

    /// Records where the two replies' `details.causes` differ in their fields and reasons.
    pub fn compare_causes(&mut self, step: &str, replies: &[Reply; 2]) {
        let [a, b] = replies.each_ref().map(|r| causes(&r.body));
        if a != b {
            self.differences.push(format!(
                "{step}: causes {a:?} in the sandbox, {b:?} in kube-apiserver"
            ));
        }
    }

    /// Fails the test with every difference found.
    pub fn finish(self) {
        assert!(
            self.differences.is_empty(),
            "the sandbox differs from kube-apiserver in {} place(s):\n{}",
            self.differences.len(),
            self.differences.join("\n")
        );
    }
}

pub fn show(v: Option<&Value>) -> String {
    v.map_or_else(|| "absent".into(), Value::to_string)
}

/// (field, reason) of each cause, sorted.
pub fn causes(status: &Value) -> Vec<(String, String)> {
    let mut list: Vec<(String, String)> = status
        .pointer("/details/causes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            let text = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            (text("field"), text("reason"))
        })
        .collect();
    list.sort();
    list
}
