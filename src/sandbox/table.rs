//! Server-side printing: the `meta.k8s.io/v1` Table that `kubectl get` asks for, so it shows
//! READY, STATUS, RESTARTS and the other columns operators read, as with a real cluster.

use serde_json::{Value, json};

use super::kinds::Kind;

/// True when the Accept header asks for a Table.
pub fn wanted(accept: &str) -> bool {
    accept.contains("as=Table")
}

fn column(name: &str, kind: &str, priority: u8) -> Value {
    let format = if name == "Name" { "name" } else { "" };
    json!({ "name": name, "type": kind, "format": format, "description": "", "priority": priority })
}

fn columns(kind: &Kind) -> Vec<Value> {
    let s = |n| column(n, "string", 0);
    let i = |n| column(n, "integer", 0);
    let wide = |n| column(n, "string", 1);
    match (kind.group.as_str(), kind.kind.as_str()) {
        ("", "Pod") => vec![
            s("Name"),
            s("Ready"),
            s("Status"),
            i("Restarts"),
            s("Age"),
            wide("IP"),
            wide("Node"),
        ],
        ("apps", "Deployment") => {
            vec![
                s("Name"),
                s("Ready"),
                i("Up-to-date"),
                i("Available"),
                s("Age"),
                wide("Containers"),
                wide("Images"),
                wide("Selector"),
            ]
        }
        ("apps", "ReplicaSet") => vec![
            s("Name"),
            i("Desired"),
            i("Current"),
            i("Ready"),
            s("Age"),
            wide("Containers"),
            wide("Images"),
        ],
        ("batch", "Job") => vec![
            s("Name"),
            s("Status"),
            s("Completions"),
            s("Duration"),
            s("Age"),
        ],
        ("", "Service") => vec![
            s("Name"),
            s("Type"),
            s("Cluster-IP"),
            s("External-IP"),
            s("Port(s)"),
            s("Age"),
            wide("Selector"),
        ],
        ("", "Node") => vec![s("Name"), s("Status"), s("Roles"), s("Age"), s("Version")],
        ("", "Namespace") => vec![s("Name"), s("Status"), s("Age")],
        _ => vec![s("Name"), s("Age")],
    }
}

fn int(o: &Value, path: &str) -> i64 {
    o.pointer(path).and_then(Value::as_i64).unwrap_or(0)
}

fn text<'a>(o: &'a Value, path: &str) -> &'a str {
    o.pointer(path).and_then(Value::as_str).unwrap_or_default()
}

fn images(o: &Value, path: &str, field: &str) -> String {
    o.pointer(path)
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| c[field].as_str().unwrap_or_default())
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// Seconds since an RFC 3339 timestamp.
fn seconds_since(ts: &str, now: i64) -> i64 {
    time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
        .map(|t| (now - t.unix_timestamp()).max(0))
        .unwrap_or(0)
}

/// Ages as kubectl prints them: `45s`, `3m5s`, `12m`, `1h30m`, `5h`, `3d`.
pub fn human(secs: i64) -> String {
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86_400);
    if secs < 120 {
        format!("{secs}s")
    } else if m < 10 {
        format!("{m}m{}s", secs % 60)
    } else if m < 60 {
        format!("{m}m")
    } else if h < 3 {
        format!("{h}h{}m", m % 60)
    } else if h < 48 {
        format!("{h}h")
    } else {
        format!("{d}d")
    }
}

fn pod_status(o: &Value) -> String {
    if o.pointer("/metadata/deletionTimestamp").is_some() {
        return "Terminating".into();
    }
    let waiting = o
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find_map(|c| c.pointer("/state/waiting/reason").and_then(Value::as_str))
        });
    match (waiting, text(o, "/status/phase")) {
        (Some(reason), _) => reason.into(),
        (None, "Succeeded") => "Completed".into(),
        (None, "Failed") => "Error".into(),
        (None, "") => "Pending".into(),
        (None, phase) => phase.into(),
    }
}

fn has_condition(o: &Value, kind: &str) -> bool {
    o.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| c.iter().any(|c| c["type"] == kind && c["status"] == "True"))
}

/// A row's cells, in the order of the kind's columns (as kubectl prints them).
fn cells(kind: &Kind, o: &Value, now: i64) -> Vec<Value> {
    let name = json!(text(o, "/metadata/name"));
    let age = json!(human(seconds_since(
        text(o, "/metadata/creationTimestamp"),
        now
    )));
    match (kind.group.as_str(), kind.kind.as_str()) {
        ("", "Pod") => pod_cells(o, name, age),
        ("apps", "Deployment") => vec![
            name,
            json!(format!(
                "{}/{}",
                int(o, "/status/readyReplicas"),
                int(o, "/spec/replicas")
            )),
            json!(int(o, "/status/updatedReplicas")),
            json!(int(o, "/status/availableReplicas")),
            age,
            json!(images(o, "/spec/template/spec/containers", "name")),
            json!(images(o, "/spec/template/spec/containers", "image")),
            json!(
                o.pointer("/spec/selector")
                    .and_then(|s| super::selector::from_label_selector_json(s).ok())
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            ),
        ],
        ("apps", "ReplicaSet") => vec![
            name,
            json!(int(o, "/spec/replicas")),
            json!(int(o, "/status/replicas")),
            json!(int(o, "/status/readyReplicas")),
            age,
            json!(images(o, "/spec/template/spec/containers", "name")),
            json!(images(o, "/spec/template/spec/containers", "image")),
        ],
        ("batch", "Job") => job_cells(o, name, age, now),
        ("", "Service") => service_cells(o, name, age),
        ("", "Node") => {
            vec![
                name,
                json!(if has_condition(o, "Ready") {
                    "Ready"
                } else {
                    "NotReady"
                }),
                json!("<none>"),
                age,
                json!("v1.32.0"),
            ]
        }
        ("", "Namespace") => vec![name, json!(text(o, "/status/phase")), age],
        _ => vec![name, age],
    }
}

/// NAME READY STATUS RESTARTS AGE IP NODE.
fn pod_cells(o: &Value, name: Value, age: Value) -> Vec<Value> {
    let statuses = o
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let total = o
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(Vec::len)
        .unwrap_or(0);
    let ready = statuses.iter().filter(|c| c["ready"] == true).count();
    let restarts: i64 = statuses
        .iter()
        .map(|c| c["restartCount"].as_i64().unwrap_or(0))
        .sum();
    let ip = text(o, "/status/podIP");
    let node = text(o, "/spec/nodeName");
    vec![
        name,
        json!(format!("{ready}/{total}")),
        json!(pod_status(o)),
        json!(restarts),
        age,
        json!(if ip.is_empty() { "<none>" } else { ip }),
        json!(if node.is_empty() { "<none>" } else { node }),
    ]
}

/// NAME STATUS COMPLETIONS DURATION AGE.
fn job_cells(o: &Value, name: Value, age: Value, now: i64) -> Vec<Value> {
    let status = if has_condition(o, "Complete") {
        "Complete"
    } else if has_condition(o, "Failed") {
        "Failed"
    } else {
        "Running"
    };
    let start = text(o, "/status/startTime");
    let end = text(o, "/status/completionTime");
    let duration = if start.is_empty() {
        String::new()
    } else if end.is_empty() {
        human(seconds_since(start, now))
    } else {
        human(seconds_since(start, now) - seconds_since(end, now))
    };
    vec![
        name,
        json!(status),
        json!(format!(
            "{}/{}",
            int(o, "/status/succeeded"),
            o.pointer("/spec/completions")
                .and_then(Value::as_i64)
                .unwrap_or(1)
        )),
        json!(duration),
        age,
    ]
}

/// NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE SELECTOR.
fn service_cells(o: &Value, name: Value, age: Value) -> Vec<Value> {
    let ports = o
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .map(|p| format!("{}/{}", p["port"], p["protocol"].as_str().unwrap_or("TCP")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let selector = crate::kube::objects::label_selector(o.pointer("/spec/selector"));
    vec![
        name,
        json!(text(o, "/spec/type")),
        json!(text(o, "/spec/clusterIP")),
        json!("<none>"),
        json!(ports),
        age,
        json!(selector),
    ]
}

fn row(kind: &Kind, o: &Value, now: i64) -> Value {
    let meta = &o["metadata"];
    let mut partial = json!({});
    for field in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "labels",
        "annotations",
        "generation",
    ] {
        if let Some(v) = meta.get(field) {
            partial[field] = v.clone();
        }
    }
    json!({
        "cells": cells(kind, o, now),
        "object": { "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": partial },
    })
}

/// A Table of `objects`.
pub fn table<'a>(kind: &Kind, objects: impl Iterator<Item = &'a Value>, metadata: Value) -> Value {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata,
        "columnDefinitions": columns(kind),
        "rows": objects.map(|o| row(kind, o, now)).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(human(45), "45s");
        assert_eq!(human(185), "3m5s");
        assert_eq!(human(12 * 60 + 5), "12m");
        assert_eq!(human(90 * 60), "1h30m");
        assert_eq!(human(5 * 3600), "5h");
        assert_eq!(human(3 * 86_400), "3d");
    }

    #[test]
    fn pod_rows_show_readiness_status_and_restarts() {
        let kind = super::super::kinds::builtins()
            .into_iter()
            .find(|k| k.kind == "Pod")
            .unwrap();
        let pod = json!({
            "metadata": { "name": "web-1", "creationTimestamp": "2026-01-01T00:00:00Z" },
            "spec": { "containers": [{ "name": "web" }], "nodeName": "sandbox-node-1" },
            "status": { "phase": "Running", "podIP": "10.244.1.2", "containerStatuses": [
                { "ready": false, "restartCount": 3, "state": { "waiting": { "reason": "CrashLoopBackOff" } } }] },
        });
        let t = table(&kind, [&pod].into_iter(), json!({}));
        let cells = &t["rows"][0]["cells"];
        assert_eq!(cells[1], "0/1");
        assert_eq!(cells[2], "CrashLoopBackOff");
        assert_eq!(cells[3], 3);
        assert_eq!(t["rows"][0]["object"]["metadata"]["name"], "web-1");
    }
}
