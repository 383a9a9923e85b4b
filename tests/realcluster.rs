//! The differential test between the embedded sandbox and a real kube-apiserver (issue 19,
//! item 5): the same requests go to both, and the status codes, `Status` reasons, causes and
//! the fields glidepath reads must agree. The real control plane is the one
//! `tests/realcluster/up.sh` starts; `.ci/run` starts it and names its kubeconfig in
//! `GLIDEPATH_REALCLUSTER_KUBECONFIG`. Differences that are meant are listed in the README
//! ("What the sandbox simplifies") and are not asked for here.

#[path = "support/differential.rs"]
mod differential;
#[path = "support/realcluster.rs"]
mod realcluster;
use differential::*;

use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use serde_json::{Value, json};

fn configmap(name: &str, data: Value) -> Value {
    json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": name }, "data": data })
}

fn deployment(name: &str, labels: Value, template_labels: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": name, "labels": labels.clone() },
        "spec": {
            "replicas": 2,
            "selector": { "matchLabels": labels },
            "template": { "metadata": { "labels": template_labels },
                "spec": { "containers": [
                    { "name": "web", "image": "nginx:1", "env": [{ "name": "A", "value": "1" }] },
                    { "name": "side", "image": "busybox:1" },
                ] } },
        },
    })
}

const OBJECT: &[&str] = &[
    "/kind",
    "/apiVersion",
    "/metadata/name",
    "/metadata/namespace",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_get_replace_delete_and_their_status_reasons() {
    let Some(mut p) = pair("crud").await else {
        return;
    };
    let cms = "/api/v1/namespaces/{ns}/configmaps";
    let created = p
        .both_post(cms, configmap("cfg", json!({ "k": "v" })))
        .await;
    p.compare("create", &created, &[OBJECT, &["/data"]].concat());
    for r in &created {
        for field in [
            "/metadata/uid",
            "/metadata/resourceVersion",
            "/metadata/creationTimestamp",
        ] {
            assert!(
                r.body.pointer(field).is_some(),
                "create: no {field} in {}",
                r.body
            );
        }
    }
    let again = p.both_post(cms, configmap("cfg", json!({}))).await;
    p.compare("create a taken name", &again, STATUS);
    let missing = p.both_get("/api/v1/namespaces/{ns}/configmaps/nope").await;
    p.compare("get a missing object", &missing, STATUS);
    let missing_ns = p
        .both_get("/api/v1/namespaces/ghost-ns/configmaps/nope")
        .await;
    p.compare("get in a missing namespace", &missing_ns, STATUS);
    let deploy_missing = p
        .both_get("/apis/apps/v1/namespaces/{ns}/deployments/nope")
        .await;
    p.compare("get a missing Deployment", &deploy_missing, STATUS);

    let mut stale = configmap("cfg", json!({ "k": "v2" }));
    stale["metadata"]["resourceVersion"] = json!("1");
    let path = p.path("/api/v1/namespaces/{ns}/configmaps/cfg");
    let conflict = [
        p.targets[0].put(&path, stale.clone()).await,
        p.targets[1].put(&path, stale).await,
    ];
    p.compare("replace with a stale resourceVersion", &conflict, STATUS);
    let mut fresh = [
        Reply {
            code: 0,
            body: Value::Null,
        },
        Reply {
            code: 0,
            body: Value::Null,
        },
    ];
    for (i, (t, c)) in p.targets.iter().zip(&created).enumerate() {
        let mut body = configmap("cfg", json!({ "k": "v3" }));
        body["metadata"]["resourceVersion"] = c.body["metadata"]["resourceVersion"].clone();
        fresh[i] = t.put(&path, body).await;
    }
    p.compare(
        "replace with the current resourceVersion",
        &fresh,
        &[OBJECT, &["/data"]].concat(),
    );
    let deleted = p
        .both_delete("/api/v1/namespaces/{ns}/configmaps/cfg")
        .await;
    p.compare("delete", &deleted, &["/kind"]);
    let gone = p
        .both_delete("/api/v1/namespaces/{ns}/configmaps/cfg")
        .await;
    p.compare("delete again", &gone, STATUS);
    p.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_strategic_and_json_patches() {
    let Some(mut p) = pair("patch").await else {
        return;
    };
    let labels = json!({ "app": "web" });
    let created = p
        .both_post(
            "/apis/apps/v1/namespaces/{ns}/deployments",
            deployment("web", labels.clone(), labels),
        )
        .await;
    p.expect("create Deployment", &created, 201);
    p.compare(
        "create Deployment",
        &created,
        &["/metadata/generation", "/spec/replicas"],
    );
    let web = "/apis/apps/v1/namespaces/{ns}/deployments/web";
    let merged = p
        .both_patch(
            web,
            MERGE,
            json!({ "metadata": { "labels": { "tier": "front" } } }),
        )
        .await;
    p.compare(
        "merge patch",
        &merged,
        &["/metadata/labels", "/metadata/generation"],
    );
    let smp = json!({ "spec": { "template": { "spec": {
        "$setElementOrder/containers": [{ "name": "web" }, { "name": "side" }],
        "containers": [{ "name": "web", "image": "nginx:2",
            "$setElementOrder/env": [{ "name": "A" }, { "name": "B" }],
            "env": [{ "name": "B", "value": "2" }] }],
    } } } });
    let strategic = p.both_patch(web, STRATEGIC, smp).await;
    // Containers merged by name; kube-apiserver also defaults fields glidepath does not read
    // (imagePullPolicy, terminationMessagePath...), so only those it sets are compared.
    let c = "/spec/template/spec/containers";
    let merged_fields = [0, 1].map(|i| ["name", "image", "env"].map(|f| format!("{c}/{i}/{f}")));
    let mut pointers: Vec<&str> = merged_fields.iter().flatten().map(String::as_str).collect();
    pointers.push("/metadata/generation");
    p.compare("strategic merge patch", &strategic, &pointers);
    let ops = json!([{ "op": "replace", "path": "/spec/replicas", "value": 3 }]);
    let json_patch = p.both_patch(web, JSON_PATCH, ops).await;
    p.compare(
        "JSON patch",
        &json_patch,
        &["/spec/replicas", "/metadata/generation"],
    );
    let failing = json!([{ "op": "test", "path": "/spec/replicas", "value": 9 }]);
    let failed = p.both_patch(web, JSON_PATCH, failing).await;
    p.compare(
        "JSON patch whose test fails",
        &failed,
        &["/kind", "/status", "/reason", "/code"],
    );
    let cm = p
        .both_post(
            "/api/v1/namespaces/{ns}/configmaps",
            configmap("c", json!({ "a": "1" })),
        )
        .await;
    p.expect("create ConfigMap", &cm, 201);
    let stale = json!({ "metadata": { "resourceVersion": "1" }, "data": { "a": "2" } });
    let precondition = p
        .both_patch("/api/v1/namespaces/{ns}/configmaps/c", MERGE, stale)
        .await;
    p.compare(
        "merge patch with a stale resourceVersion",
        &precondition,
        STATUS,
    );
    let missing = p
        .both_patch("/api/v1/namespaces/{ns}/configmaps/nope", MERGE, json!({}))
        .await;
    p.compare("patch a missing object", &missing, STATUS);
    p.finish();
}

/// Who manages what, as `(manager, operation)` pairs sorted.
fn managers(reply: &Reply) -> Vec<(String, String)> {
    let mut list: Vec<(String, String)> = reply
        .body
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| {
            let text = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            (text("manager"), text("operation"))
        })
        .collect();
    list.sort();
    list
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_conflicts_name_the_fields_and_the_manager() {
    let Some(mut p) = pair("ssa").await else {
        return;
    };
    let cfg = "/api/v1/namespaces/{ns}/configmaps/cfg";
    let as_alpha = format!("{cfg}?fieldManager=alpha&force=false");
    let created = p
        .both_patch(
            &as_alpha,
            APPLY,
            configmap("cfg", json!({ "k": "a", "x": "1" })),
        )
        .await;
    p.compare("apply creates", &created, &[OBJECT, &["/data"]].concat());
    let [m0, m1] = created.each_ref().map(managers);
    if m0 != m1 {
        p.differences
            .push(format!("apply creates: managers {m0:?} vs {m1:?}"));
    }
    let again = p
        .both_patch(
            &as_alpha,
            APPLY,
            configmap("cfg", json!({ "k": "a", "x": "1" })),
        )
        .await;
    p.compare("the same apply again", &again, &["/data"]);
    let rv = |r: &Reply| r.body.pointer("/metadata/resourceVersion").cloned();
    let unchanged = [0, 1].map(|i| rv(&created[i]) == rv(&again[i]));
    if unchanged[0] != unchanged[1] {
        p.differences.push(format!(
            "the same apply again: the resourceVersion stayed in the sandbox: {}, in kube-apiserver: {}",
            unchanged[0], unchanged[1]
        ));
    }
    let beta = configmap("cfg", json!({ "k": "b" }));
    let conflict = p
        .both_patch(
            &format!("{cfg}?fieldManager=beta&force=false"),
            APPLY,
            beta.clone(),
        )
        .await;
    let said = ["/kind", "/reason", "/code", "/message", "/details/causes"];
    p.compare("apply by a second manager", &conflict, &said);
    let real = &conflict[1].body;
    assert_eq!(
        real["message"], "Apply failed with 1 conflict: conflict with \"alpha\": .data.k",
        "kube-apiserver worded the conflict otherwise: {real}"
    );
    let forced = p
        .both_patch(&format!("{cfg}?fieldManager=beta&force=true"), APPLY, beta)
        .await;
    p.compare("forced apply", &forced, &["/data"]);
    let [f0, f1] = forced.each_ref().map(managers);
    if f0 != f1 {
        p.differences
            .push(format!("forced apply: managers {f0:?} vs {f1:?}"));
    }
    let update = p
        .both_patch(
            &format!("{cfg}?fieldManager=editor"),
            MERGE,
            json!({ "data": { "x": "2" } }),
        )
        .await;
    p.compare("merge patch by another manager", &update, &["/data"]);
    let [u0, u1] = update.each_ref().map(managers);
    if u0 != u1 {
        p.differences.push(format!(
            "merge patch by another manager: managers {u0:?} vs {u1:?}"
        ));
    }
    p.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_manifests_are_rejected_with_the_field_named() {
    let Some(mut p) = pair("invalid").await else {
        return;
    };
    let bad_name = p
        .both_post(
            "/api/v1/namespaces/{ns}/configmaps",
            configmap("Bad_Name", json!({})),
        )
        .await;
    p.compare(
        "a ConfigMap named Bad_Name",
        &bad_name,
        &[
            "/kind",
            "/reason",
            "/code",
            "/details/name",
            "/details/kind",
        ],
    );
    p.compare_causes("a ConfigMap named Bad_Name", &bad_name);
    let mismatch = deployment("web", json!({ "app": "web" }), json!({ "app": "other" }));
    let rejected = p
        .both_post("/apis/apps/v1/namespaces/{ns}/deployments", mismatch)
        .await;
    p.compare(
        "a Deployment whose selector misses its template",
        &rejected,
        &[
            "/kind",
            "/reason",
            "/code",
            "/details/name",
            "/details/group",
            "/details/kind",
        ],
    );
    p.compare_causes("a Deployment whose selector misses its template", &rejected);
    let wrong_kind = json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "s" } });
    let mismatched = p
        .both_post("/api/v1/namespaces/{ns}/configmaps", wrong_kind)
        .await;
    p.compare(
        "a Secret posted to configmaps",
        &mismatched,
        &["/kind", "/reason", "/code"],
    );
    p.finish();
}

fn lease(name: &str, holder: &str) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": { "name": name },
        "spec": { "holderIdentity": holder, "leaseDurationSeconds": 15 },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_are_taken_with_resource_version_preconditions() {
    let Some(mut p) = pair("lease").await else {
        return;
    };
    let leases = "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases";
    let created = p.both_post(leases, lease("driver", "one")).await;
    p.compare("create Lease", &created, &[OBJECT, &["/spec"]].concat());
    let taken = p.both_post(leases, lease("driver", "two")).await;
    p.compare("create a held Lease", &taken, STATUS);
    let path = p.path("/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/driver");
    let mut renewed = Vec::new();
    let mut stale = Vec::new();
    for (t, c) in p.targets.iter().zip(&created) {
        let mut body = lease("driver", "one");
        body["metadata"]["resourceVersion"] = c.body["metadata"]["resourceVersion"].clone();
        renewed.push(t.put(&path, body.clone()).await);
        body["spec"]["holderIdentity"] = json!("two");
        stale.push(t.put(&path, body).await);
    }
    let renewed: [Reply; 2] = renewed.try_into().unwrap();
    let stale: [Reply; 2] = stale.try_into().unwrap();
    p.compare("renew the Lease", &renewed, &["/spec/holderIdentity"]);
    p.compare(
        "take the Lease with the old resourceVersion",
        &stale,
        STATUS,
    );
    p.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_roles_is_refused_and_told_so() {
    let Some(mut p) = pair("rbac").await else {
        return;
    };
    let user = format!("system:serviceaccount:{}:nobody", p.ns);
    let as_nobody = p.targets.clone().map(|t| Target {
        user: Some(user.clone()),
        ..t
    });
    let review = json!({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": { "resourceAttributes": {
            "namespace": p.ns, "verb": "patch", "group": "apps", "resource": "deployments" } },
    });
    let path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
    let mut answered = Vec::new();
    let mut listed = Vec::new();
    for t in &as_nobody {
        answered.push(t.post(path, review.clone()).await);
        listed.push(t.get(&p.path("/api/v1/namespaces/{ns}/configmaps")).await);
    }
    let answered: [Reply; 2] = answered.try_into().unwrap();
    let listed: [Reply; 2] = listed.try_into().unwrap();
    p.compare(
        "SelfSubjectAccessReview as a user without roles",
        &answered,
        &["/kind", "/status/allowed"],
    );
    p.compare("list ConfigMaps as a user without roles", &listed, STATUS);
    p.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_reviews_and_dry_runs() {
    let Some(mut p) = pair("review").await else {
        return;
    };
    let review = json!({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": { "resourceAttributes": {
            "namespace": p.ns, "verb": "patch", "group": "apps", "resource": "deployments" } },
    });
    let answered = p
        .both_post(
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            review,
        )
        .await;
    p.compare(
        "SelfSubjectAccessReview",
        &answered,
        &["/kind", "/apiVersion", "/status/allowed"],
    );
    let cms = "/api/v1/namespaces/{ns}/configmaps";
    let dry = p
        .both_post(
            &format!("{cms}?dryRun=All"),
            configmap("dry", json!({ "k": "v" })),
        )
        .await;
    p.compare(
        "create with dryRun=All",
        &dry,
        &[OBJECT, &["/data"]].concat(),
    );
    let after = p.both_get("/api/v1/namespaces/{ns}/configmaps/dry").await;
    p.compare("get after a dry run", &after, STATUS);
    let bad_dry = p
        .both_post(
            &format!("{cms}?dryRun=All"),
            configmap("Bad_Name", json!({})),
        )
        .await;
    p.compare(
        "invalid object with dryRun=All",
        &bad_dry,
        &["/kind", "/reason", "/code"],
    );
    p.finish();
}

/// Reads watch events from `response` until `done` holds of one, under `within`.
async fn watch_until(
    name: &str,
    response: http::Response<kube::client::Body>,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    let mut body = response.into_body();
    let (mut buf, mut events) = (Vec::<u8>::new(), Vec::new());
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(Ok(frame))) = tokio::time::timeout(left, body.frame()).await else {
            break;
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        while let Some(end) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            let Ok(event) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            let stop = done(&event);
            events.push(event);
            if stop {
                return events;
            }
        }
    }
    panic!("{name}: the watch did not deliver the awaited event within {within:?}: {events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_send_bookmarks_and_expire_old_resource_versions() {
    let Some(mut p) = pair("watch").await else {
        return;
    };
    let cms = "/api/v1/namespaces/{ns}/configmaps";
    let created = p.both_post(cms, configmap("w", json!({ "k": "v" }))).await;
    p.expect("create ConfigMap", &created, 201);
    let listed = p.both_get(cms).await;
    p.compare("list", &listed, &["/kind", "/apiVersion"]);
    let path = p.path(cms);
    for (t, l) in p.targets.iter().zip(&listed) {
        let rv = l.body["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default();
        let url = format!(
            "{path}?watch=true&allowWatchBookmarks=true&resourceVersion={rv}&timeoutSeconds=60"
        );
        let response = t.send("GET", &url, None, None).await;
        let body = configmap("w2", json!({}));
        let posted = t.post(&path, body).await;
        assert_eq!(posted.code, 201, "{}: {}", t.name, posted.body);
        // Only what comes after the listed resourceVersion: w2, not w again.
        let events = watch_until(t.name, response, Duration::from_secs(30), |e| {
            e["type"] == "ADDED" && e["object"]["metadata"]["name"] == "w2"
        })
        .await;
        let replayed = events
            .iter()
            .any(|e| e["object"]["metadata"]["name"] == "w");
        assert!(
            !replayed,
            "{}: a watch from the list's resourceVersion sent w again: {events:?}",
            t.name
        );
    }
    let initial = format!(
        "{path}?watch=true&allowWatchBookmarks=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=60"
    );
    let mut seen = Vec::new();
    for t in &p.targets {
        let response = t.send("GET", &initial, None, None).await;
        seen.push(response.status().as_u16());
        let events = watch_until(t.name, response, Duration::from_secs(30), |e| {
            e["type"] == "BOOKMARK"
                && e.pointer("/object/metadata/annotations/k8s.io~1initial-events-end")
                    == Some(&json!("true"))
        })
        .await;
        // kube-controller-manager also puts kube-root-ca.crt in every namespace.
        let ours = |e: &&Value| e["object"]["metadata"]["name"] != "kube-root-ca.crt";
        let added: Vec<&Value> = events
            .iter()
            .filter(|e| e["type"] == "ADDED")
            .filter(ours)
            .map(|e| &e["object"]["metadata"]["name"])
            .collect();
        assert_eq!(
            added,
            [&json!("w"), &json!("w2")],
            "{}: initial events {events:?}",
            t.name
        );
    }
    if seen[0] != seen[1] {
        p.differences.push(format!(
            "sendInitialEvents watch: code {} vs {}",
            seen[0], seen[1]
        ));
    }
    p.finish();
}

/// The code of a watch request, with the object of its ERROR event if one came before the
/// stream ended (Null otherwise).
async fn error_event(t: &Target, url: &str) -> Reply {
    let response = t.send("GET", url, None, None).await;
    let code = response.status().as_u16();
    let mut body = response.into_body();
    let mut text = Vec::new();
    while let Ok(Some(Ok(frame))) =
        tokio::time::timeout(Duration::from_secs(10), body.frame()).await
    {
        if let Ok(data) = frame.into_data() {
            text.extend_from_slice(&data);
        }
    }
    let error = text
        .split(|b| *b == b'\n')
        .filter_map(|line| serde_json::from_slice::<Value>(line).ok())
        .find(|e| e["type"] == "ERROR");
    Reply {
        code,
        body: error.map(|e| e["object"].clone()).unwrap_or(Value::Null),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_from_a_too_old_resource_version_ends_in_410_expired() {
    let Some(mut p) = pair("gone").await else {
        return;
    };
    let classes = "/apis/networking.k8s.io/v1/ingressclasses";
    for n in ["a", "b"] {
        let class = json!({ "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
            "metadata": { "name": format!("{}-{n}", p.ns) }, "spec": { "controller": "example.com/x" } });
        let created = p.both_post(classes, class).await;
        p.expect("create IngressClass", &created, 201);
    }
    // kube-apiserver serves a watch from any resourceVersion etcd still holds; up.sh has it
    // compact etcd every 30 s and watch IngressClasses from etcd, so resourceVersion 1 goes.
    // The sandbox keeps a count of changes: cut to one, resourceVersion 1 is out of it too.
    p.sandbox.cluster.store().set_log_limit(1);
    let url = format!("{classes}?watch=true&resourceVersion=1&timeoutSeconds=2");
    let mut replies = Vec::new();
    for t in &p.targets {
        let deadline = Instant::now() + Duration::from_secs(120);
        let reply = loop {
            let reply = error_event(t, &url).await;
            if reply.code != 200 || !reply.body.is_null() || Instant::now() >= deadline {
                break reply;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        replies.push(reply);
    }
    let replies: [Reply; 2] = replies.try_into().unwrap();
    p.compare(
        "watch from resourceVersion 1",
        &replies,
        &["/kind", "/status", "/reason", "/code"],
    );
    p.finish();
}

/// The release that tests/realcluster/go.mod pins, as `v1.N.P`.
fn pinned_release() -> String {
    let go_mod = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/realcluster/go.mod"),
    )
    .unwrap();
    go_mod
        .lines()
        .filter_map(|l| l.trim().strip_prefix("k8s.io/kubernetes "))
        .find_map(|rest| {
            rest.split_whitespace()
                .next()
                .filter(|v| v.starts_with('v'))
        })
        .expect("tests/realcluster/go.mod requires no k8s.io/kubernetes version")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_server_reports_the_pinned_release() {
    let Some(path) = realcluster::kubeconfig() else {
        return;
    };
    let real = Target {
        name: "kube-apiserver",
        client: realcluster::client(&path).await,
        user: None,
    };
    let version = real.get("/version").await;
    let release = pinned_release();
    assert_eq!(version.code, 200, "{}", version.body);
    assert_eq!(
        version.body["gitVersion"],
        json!(release),
        "{}",
        version.body
    );
    let minor = release
        .trim_start_matches("v1.")
        .split('.')
        .next()
        .unwrap_or_default();
    assert_eq!(version.body["major"], "1", "{}", version.body);
    assert_eq!(version.body["minor"], json!(minor), "{}", version.body);
}

/// kubectl 1.33 (the newest the kubectl package ships) on `kubeconfig`, with a discovery
/// cache of its own in `dir` (keyed by server address inside): (exit code, output).
async fn kubectl(
    dir: &std::path::Path,
    kubeconfig: &std::path::Path,
    args: &[&str],
) -> (i32, String) {
    let sdk = std::path::Path::new("/usr/lib/google-cloud-sdk/bin/kubectl.1.33");
    let bin = if sdk.exists() {
        sdk.to_path_buf()
    } else {
        "kubectl".into()
    };
    let mut cmd = std::process::Command::new(bin);
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(dir.join("kubectl-cache"));
    cmd.args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("kubectl does not run: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_flows_print_the_same_on_both() {
    let Some(mut p) = pair("kubectl").await else {
        return;
    };
    let files = p.dir.path().to_path_buf();
    let write = |name: &str, text: String| {
        let path = files.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let ns = p.ns.clone();
    let manifest = write(
        "app.yaml",
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{ name: cfg, namespace: {ns} }}\ndata: {{ k: v }}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{ name: web, namespace: {ns} }}\nspec:\n  replicas: 1\n  selector: {{ matchLabels: {{ app: web }} }}\n  template:\n    metadata: {{ labels: {{ app: web }} }}\n    spec: {{ containers: [{{ name: web, image: nginx:1 }}] }}\n"
        ),
    );
    let ssa = write(
        "ssa.yaml",
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{ name: ssa, namespace: {ns} }}\ndata: {{ k: one }}\n"
        ),
    );
    let ssa2 = write(
        "ssa2.yaml",
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{ name: ssa, namespace: {ns} }}\ndata: {{ k: two }}\n"
        ),
    );
    let bad = write(
        "bad.yaml",
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{ name: Bad_Name, namespace: {ns} }}\n"
        ),
    );
    let stale = write("stale.json", json!({ "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": "cfg", "namespace": ns, "resourceVersion": "1" }, "data": { "k": "x" } }).to_string());
    let steps: Vec<(&str, Vec<&str>)> = vec![
        ("apply", vec!["apply", "-f", &manifest]),
        ("apply again", vec!["apply", "-f", &manifest]),
        (
            "server-side apply",
            vec!["apply", "--server-side", "-f", &ssa],
        ),
        (
            "server-side apply by another manager",
            vec![
                "apply",
                "--server-side",
                "--field-manager=other",
                "-f",
                &ssa2,
            ],
        ),
        (
            "forced server-side apply",
            vec![
                "apply",
                "--server-side",
                "--field-manager=other",
                "--force-conflicts",
                "-f",
                &ssa2,
            ],
        ),
        (
            "get a missing object",
            vec!["get", "configmap", "nope", "-n", &ns],
        ),
        (
            "merge patch",
            vec![
                "patch",
                "configmap",
                "cfg",
                "-n",
                &ns,
                "--type=merge",
                "-p",
                "{\"data\":{\"k2\":\"v2\"}}",
            ],
        ),
        (
            "replace with a stale resourceVersion",
            vec!["replace", "-f", &stale],
        ),
        ("create an invalid object", vec!["create", "-f", &bad]),
        (
            "scale",
            vec!["scale", "deployment/web", "-n", &ns, "--replicas=2"],
        ),
        (
            "who owns the replicas after a scale (the User-Agent names the manager)",
            vec![
                "get",
                "deployment/web",
                "-n",
                &ns,
                "-o",
                "jsonpath={.metadata.managedFields[?(@.subresource==\"scale\")].manager} {.metadata.managedFields[?(@.subresource==\"scale\")].fieldsV1}",
            ],
        ),
        (
            "delete",
            vec!["delete", "configmap", "cfg", "-n", &ns, "--wait=false"],
        ),
    ];
    for (step, args) in steps {
        let sandbox = kubectl(p.dir.path(), &p.kubeconfigs[0], &args).await;
        let real = kubectl(p.dir.path(), &p.kubeconfigs[1], &args).await;
        if sandbox != real {
            p.differences.push(format!(
                "kubectl {step}: exit {} vs {}\n  sandbox: {}\n  kube-apiserver: {}",
                sandbox.0,
                real.0,
                sandbox.1.trim(),
                real.1.trim()
            ));
        }
    }
    p.finish();
}
