//! The sandbox API at the HTTP level: bad input gets a `Status` with a 4xx code and never
//! loses objects or panics the server; state survives a restart with `--state`.

use std::time::Duration;

#[path = "support/wait.rs"]
mod wait;
use wait::wait_until_async;

use glidepath::sandbox::{Cluster, Sandbox, Timing};
use serde_json::{Value, json};

async fn start() -> Sandbox {
    Sandbox::start(0, Cluster::new(32, Timing::default()))
        .await
        .unwrap()
}

async fn call(
    s: &Sandbox,
    method: &str,
    path: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    let resp = CLIENT
        .get_or_init(|| glidepath::tls::http_client().build().unwrap())
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{}{path}", s.url()),
        )
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let code = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn status(v: &Value) -> (&str, &str) {
    assert_eq!(v["kind"], "Status", "{v}");
    (
        v["reason"].as_str().unwrap_or_default(),
        v["message"].as_str().unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_status_errors() {
    let s = start().await;
    let cm = "/api/v1/namespaces/default/configmaps";
    let (code, body) = call(&s, "POST", cm, "application/json", "{not json").await;
    assert_eq!(code, 400);
    assert!(
        status(&body)
            .1
            .starts_with("the request body is not valid JSON"),
        "{body}"
    );

    let (code, body) = call(
        &s,
        "POST",
        cm,
        "application/json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{}}"#,
    )
    .await;
    assert_eq!((code, status(&body).0), (422, "Invalid"));
    assert_eq!(
        status(&body).1,
        "ConfigMap \"\" is invalid: metadata.name: Required value: name or generateName is required"
    );

    let (code, body) = call(
        &s,
        "POST",
        cm,
        "application/json",
        r#"{"apiVersion":"apps/v1","kind":"ConfigMap","metadata":{"name":"x"}}"#,
    )
    .await;
    assert_eq!(
        (code, status(&body).1),
        (
            400,
            "the API version in the data (apps/v1) does not match the expected API version (v1)"
        )
    );

    let (code, body) = call(
        &s,
        "POST",
        cm,
        "application/json",
        r#"{"metadata":{"name":"Bad_Name"}}"#,
    )
    .await;
    assert_eq!((code, status(&body).0), (422, "Invalid"));

    let (code, body) = call(
        &s,
        "GET",
        "/apis/example.com/v1/namespaces/default/widgets",
        "",
        "",
    )
    .await;
    assert_eq!((code, status(&body).0), (404, "NotFound"));

    let (code, body) = call(&s, "GET", &format!("{cm}?labelSelector=a%3Db%3Dc"), "", "").await;
    assert_eq!((code, status(&body).0), (400, "BadRequest"));

    let (code, body) = call(
        &s,
        "POST",
        "/api/v1/namespaces/ghost/configmaps",
        "application/json",
        r#"{"metadata":{"name":"x"}}"#,
    )
    .await;
    assert_eq!(
        (code, status(&body).1),
        (404, "namespaces \"ghost\" not found")
    );

    // The size is refused from the Content-Length alone: the client need not send 4 MiB into
    // a connection the server is about to close (which makes a client error, not a status).
    let status_line = tokio::task::spawn_blocking({
        let addr = s.addr;
        move || {
            use std::io::{Read, Write};
            let mut tcp = std::net::TcpStream::connect(addr).unwrap();
            let head = format!(
                "POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                4 * 1024 * 1024
            );
            tcp.write_all(head.as_bytes()).unwrap();
            let mut buf = [0u8; 64];
            let n = tcp.read(&mut buf).unwrap();
            String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or_default().to_owned()
        }
    })
    .await
    .unwrap();
    assert_eq!(
        status_line, "HTTP/1.1 413 Payload Too Large",
        "oversized bodies are refused"
    );

    let (code, body) = call(
        &s,
        "PATCH",
        &format!("{cm}/missing"),
        "application/merge-patch+json",
        "{}",
    )
    .await;
    assert_eq!((code, status(&body).0), (404, "NotFound"));

    let (code, body) = call(
        &s,
        "PATCH",
        "/apis/apps/v1/namespaces/default/deployments/x",
        "application/apply-patch+yaml",
        "kind: Deployment\n",
    )
    .await;
    assert_eq!(code, 400, "apply needs a field manager: {body}");

    let (code, body) = call(
        &s,
        "POST",
        cm,
        "application/vnd.kubernetes.protobuf",
        vec![0x6b, 0x38, 0x73, 0],
    )
    .await;
    assert_eq!((code, status(&body).0), (415, "UnsupportedMediaType"));

    // The server is still up and lost nothing.
    let (code, body) = call(
        &s,
        "POST",
        cm,
        "application/json",
        r#"{"metadata":{"name":"ok"}}"#,
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = call(&s, "GET", &format!("{cm}/ok"), "", "").await;
    assert_eq!((code, body["metadata"]["name"].as_str()), (200, Some("ok")));
}

/// A deterministic stream of odd requests: none may crash the server or answer 5xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_requests_never_break_the_server() {
    let s = start().await;
    let paths = [
        "/api/v1/namespaces/default/configmaps",
        "/api/v1/namespaces/default/configmaps/x",
        "/api/v1/namespaces/default/configmaps/x/status",
        "/apis/apps/v1/namespaces/default/deployments/x/scale",
        "/api/v1/namespaces/default/pods/x/log",
        "/apis/apps/v1/deployments",
        "/api/v1/namespaces",
        "/apis/nope/v9/things",
        "/api/v1/namespaces/default/configmaps/x/y/z",
        "//api///v1",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
    ];
    let bodies = [
        "",
        "{}",
        "[]",
        "null",
        "42",
        "{\"metadata\":null}",
        "{\"metadata\":{\"name\":7}}",
        "{\"metadata\":{\"name\":\"x\"},\"spec\":{\"replicas\":\"many\",\"selector\":5}}",
        "[{\"op\":\"remove\",\"path\":\"/nope\"}]",
        "[{\"op\":\"bogus\"}]",
        "{\"$patch\":\"delete\"}",
        "{\"metadata\":{\"name\":\"x\"},\"spec\":{\"group\":\"\",\"names\":{}}}",
        "\u{0}\u{1}",
    ];
    let methods = ["GET", "POST", "PUT", "PATCH", "DELETE"];
    let types = [
        "application/json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
        "application/json-patch+json",
        "application/apply-patch+yaml",
        "text/plain",
    ];
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for _ in 0..600 {
        let (m, p, b, t) = (
            methods[next(5)],
            paths[next(paths.len())],
            bodies[next(bodies.len())],
            types[next(types.len())],
        );
        let query = [
            "",
            "?watch=false",
            "?labelSelector=!!",
            "?fieldManager=f",
            "?dryRun=All",
            "?limit=-1&continue=zz",
        ][next(6)];
        let (code, body) = call(&s, m, &format!("{p}{query}"), t, b).await;
        assert!(
            code < 500,
            "{m} {p}{query} [{t}] {b:?} answered {code}: {body}"
        );
    }
    let (code, _) = call(&s, "GET", "/version", "", "").await;
    assert_eq!(code, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.json");
    {
        let s = start().await;
        let crd = glidepath::sandbox::preset::platform_crds().remove(0);
        let (code, _) = call(
            &s,
            "POST",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            "application/json",
            crd.to_string(),
        )
        .await;
        assert_eq!(code, 201);
        // The new resource is served once the CRD is established.
        let claims = "/apis/platform.example.org/v1/namespaces/default/xdatabases";
        let served = wait_until_async(Duration::from_secs(10), async || {
            call(&s, "GET", claims, "application/json", String::new())
                .await
                .0
                == 200
        })
        .await;
        assert!(served, "the XDatabase CRD was never established");
        let claim = json!({ "apiVersion": "platform.example.org/v1", "kind": "XDatabase", "metadata": { "name": "orders" } });
        let (code, body) = call(
            &s,
            "POST",
            "/apis/platform.example.org/v1/namespaces/default/xdatabases",
            "application/json",
            claim.to_string(),
        )
        .await;
        assert_eq!(code, 201, "{body}");
        s.cluster.save(&file).unwrap();
    }
    let cluster = Cluster::new(32, Timing::default());
    assert!(cluster.load(&file).unwrap() > 0);
    let s = Sandbox::start(0, cluster).await.unwrap();
    let (code, body) = call(
        &s,
        "GET",
        "/apis/platform.example.org/v1/namespaces/default/xdatabases/orders",
        "",
        "",
    )
    .await;
    assert_eq!(
        (code, body["metadata"]["name"].as_str()),
        (200, Some("orders")),
        "{body}"
    );
}

/// kube-rs' streaming lists (and kube-apiserver's WatchList) wait for a bookmark annotated
/// `k8s.io/initial-events-end` after the current objects; without it they never start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_list_ends_its_initial_events_with_a_bookmark() {
    let s = start().await;
    for name in ["a", "b"] {
        let cm = json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": name } });
        let (code, body) = call(
            &s,
            "POST",
            "/api/v1/namespaces/default/configmaps",
            "application/json",
            cm.to_string(),
        )
        .await;
        assert_eq!(code, 201, "{body}");
    }
    let url = format!(
        "{}/api/v1/namespaces/default/configmaps?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&resourceVersion=1&timeoutSeconds=10",
        s.url()
    );
    let mut resp = glidepath::tls::http_client()
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut text = String::new();
    let mut lines: Vec<Value> = Vec::new();
    let marked = |e: &Value| {
        e["type"] == "BOOKMARK"
            && e.pointer("/object/metadata/annotations/k8s.io~1initial-events-end")
                == Some(&json!("true"))
    };
    while !lines.last().is_some_and(marked) {
        let chunk = tokio::time::timeout(Duration::from_secs(10), resp.chunk())
            .await
            .expect("no initial-events-end bookmark within 10 s")
            .unwrap()
            .expect("the watch ended before its initial-events-end bookmark");
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find('\n') {
            let line: String = text.drain(..=end).collect();
            lines.push(serde_json::from_str(&line).unwrap());
        }
    }
    let added: Vec<&Value> = lines
        .iter()
        .filter(|e| e["type"] == "ADDED")
        .map(|e| &e["object"]["metadata"]["name"])
        .collect();
    assert_eq!(added, [&json!("a"), &json!("b")], "{lines:?}");
    assert_eq!(
        lines.len(),
        3,
        "the bookmark comes right after the initial objects: {lines:?}"
    );
}
