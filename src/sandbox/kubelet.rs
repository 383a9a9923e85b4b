//! What a simulated kubelet does to a pod that runs on one of its nodes, decided from the
//! pod's annotations and how long it has been on the node: containers start after a delay,
//! pass readiness (or never do, or crash-loop), and a Job's pod ends. The embedded
//! controllers write the result into their store; the [`dataplane`](super::dataplane)
//! writes it to any API server as a status patch.

use std::time::Duration;

use serde_json::{Value, json};

use super::Timing;
use super::annotations as ann;
use super::now_rfc3339;

/// The next change to a pod's status, and the log lines its containers write with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// Top-level fields of `status` to set (each replaces the pod's own).
    pub status: serde_json::Map<String, Value>,
    /// Lines the containers write.
    pub logs: Vec<String>,
}

/// The transition due for pod `p`, first seen on its node `age` ago; None when nothing is
/// due (a settled pod, or not yet time).
pub fn advance(p: &Value, age: Duration, timing: &Timing) -> Option<Transition> {
    let phase = phase(p);
    if matches!(phase, "Succeeded" | "Failed") || (pod_ready(p) && !flag(p, ann::CRASH_LOOP)) {
        return None;
    }
    let containers: Vec<Value> = p
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if phase == "Pending" {
        return (age >= timing.pod_start).then(|| start(p, &containers));
    }
    let running_for = age.saturating_sub(timing.pod_start);
    let is_job = p
        .pointer("/metadata/ownerReferences/0/kind")
        .and_then(Value::as_str)
        == Some("Job");
    if is_job {
        let lasts = duration_annotation(p, ann::JOB_DURATION).unwrap_or(timing.job_duration);
        return (running_for >= lasts).then(|| end_job(p, &containers));
    }
    if flag(p, ann::CRASH_LOOP) {
        return crash_loop(p, &containers, running_for);
    }
    if flag(p, ann::NEVER_READY) {
        return None;
    }
    let ready_after = duration_annotation(p, ann::READY_AFTER).unwrap_or(timing.pod_ready);
    (running_for >= ready_after).then(|| Transition {
        status: status_fields(json!({
            "conditions": [
                condition("PodScheduled", true, "", ""),
                condition("Initialized", true, "", ""),
                condition("ContainersReady", true, "", ""),
                condition("Ready", true, "", ""),
            ],
            "containerStatuses": container_statuses(&containers, true, 0, None),
        })),
        logs: Vec::new(),
    })
}

/// The pod's phase, `Pending` when it has none yet.
pub fn phase(p: &Value) -> &str {
    p.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("Pending")
}

/// Whether the pod's Ready condition is True.
pub fn pod_ready(p: &Value) -> bool {
    p.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

fn status_fields(v: Value) -> serde_json::Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

/// Containers start (not ready yet), with their first log lines.
fn start(p: &Value, containers: &[Value]) -> Transition {
    let logs: Vec<String> = match annotation(p, ann::LOG) {
        Some(text) => text.lines().map(str::to_owned).collect(),
        None => containers
            .iter()
            .map(|c| {
                format!(
                    "{} started from image {}",
                    c["name"].as_str().unwrap_or("app"),
                    c["image"].as_str().unwrap_or("unknown")
                )
            })
            .collect(),
    };
    let n = super::next_random();
    let status = json!({
        "phase": "Running", "podIP": format!("10.244.{}.{}", n % 250 + 1, (n >> 8) % 250 + 1), "hostIP": "192.168.49.2",
        "startTime": now_rfc3339(),
        "conditions": [
            condition("PodScheduled", true, "", ""), condition("Initialized", true, "", ""),
            condition("ContainersReady", false, "ContainersNotReady", "containers with unready status"),
            condition("Ready", false, "ContainersNotReady", "containers with unready status"),
        ],
        "containerStatuses": container_statuses(containers, false, 0, None),
    });
    Transition {
        status: status_fields(status),
        logs,
    }
}

/// A Job's pod that has run its time: it succeeds, or fails when annotated so.
fn end_job(p: &Value, containers: &[Value]) -> Transition {
    let fail = flag(p, ann::JOB_FAIL);
    Transition {
        status: status_fields(json!({
            "phase": if fail { "Failed" } else { "Succeeded" },
            "containerStatuses": container_statuses(containers, false, 0, Some(i32::from(fail))),
            "conditions": [
                condition("Ready", false, "PodCompleted", ""),
                condition("ContainersReady", false, "PodCompleted", ""),
            ],
        })),
        logs: vec![format!(
            "{} with exit code {}",
            if fail { "failed" } else { "completed" },
            u8::from(fail)
        )],
    }
}

/// A crash-looping pod: a restart every two seconds, reported the way kubectl shows it.
fn crash_loop(p: &Value, containers: &[Value], running_for: Duration) -> Option<Transition> {
    let restarts = (running_for.as_secs() / 2) as i64;
    let current = p
        .pointer("/status/containerStatuses/0/restartCount")
        .and_then(Value::as_i64)
        .unwrap_or(-1);
    (restarts != current).then(|| Transition {
        status: status_fields(json!({ "containerStatuses": crash_statuses(containers, restarts) })),
        logs: vec!["panic: cannot connect to the database: connection refused".to_owned()],
    })
}

/// The value of annotation `key` on `o`.
pub fn annotation<'a>(o: &'a Value, key: &str) -> Option<&'a str> {
    o.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

/// Whether annotation `key` on `o` is `"true"`.
pub fn flag(o: &Value, key: &str) -> bool {
    annotation(o, key) == Some("true")
}

/// Annotation `key` on `o` as a duration (`3s`), when it is one.
pub fn duration_annotation(o: &Value, key: &str) -> Option<Duration> {
    annotation(o, key).and_then(|d| crate::units::parse_duration(d).ok())
}

/// A status condition as the controllers write them.
pub fn condition(kind: &str, status: bool, reason: &str, message: &str) -> Value {
    json!({ "type": kind, "status": if status { "True" } else { "False" }, "reason": reason, "message": message,
        "lastTransitionTime": now_rfc3339(), "lastUpdateTime": now_rfc3339() })
}

fn container_statuses(
    containers: &[Value],
    ready: bool,
    restarts: i64,
    exit: Option<i32>,
) -> Value {
    json!(containers
        .iter()
        .map(|c| {
            let state = match exit {
                Some(code) => json!({ "terminated": { "exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" }, "finishedAt": now_rfc3339() } }),
                None => json!({ "running": { "startedAt": now_rfc3339() } }),
            };
            json!({ "name": c["name"], "image": c["image"], "imageID": "", "ready": ready, "started": exit.is_none(),
                "restartCount": restarts, "state": state })
        })
        .collect::<Vec<_>>())
}

fn crash_statuses(containers: &[Value], restarts: i64) -> Value {
    json!(containers
        .iter()
        .map(|c| json!({ "name": c["name"], "image": c["image"], "imageID": "", "ready": false, "started": false,
            "restartCount": restarts,
            "state": { "waiting": { "reason": "CrashLoopBackOff", "message": format!("back-off restarting failed container {}", c["name"].as_str().unwrap_or("app")) } },
            "lastState": { "terminated": { "exitCode": 1, "reason": "Error", "finishedAt": now_rfc3339() } } }))
        .collect::<Vec<_>>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(annotations: Value) -> Value {
        json!({ "metadata": { "name": "web-1", "annotations": annotations },
            "spec": { "containers": [{ "name": "app", "image": "web:1" }] } })
    }

    fn apply(p: &mut Value, t: Transition) {
        for (k, v) in t.status {
            p["status"][k] = v;
        }
    }

    #[test]
    fn a_pod_starts_then_passes_readiness() {
        let timing = Timing::default();
        let mut p = pod(json!({}));
        assert_eq!(advance(&p, Duration::ZERO, &timing), None);
        let started = advance(&p, timing.pod_start, &timing).expect("due to start");
        assert_eq!(started.status["phase"], "Running");
        assert_eq!(started.logs, vec!["app started from image web:1"]);
        apply(&mut p, started);
        assert!(!pod_ready(&p));
        let ready = advance(&p, timing.pod_start + timing.pod_ready, &timing).expect("ready");
        apply(&mut p, ready);
        assert!(pod_ready(&p));
        assert_eq!(advance(&p, Duration::from_secs(60), &timing), None);
    }

    #[test]
    fn never_ready_and_crash_loop_pods_never_pass_readiness() {
        let timing = Timing::default();
        let mut quiet = pod(json!({ ann::NEVER_READY: "true" }));
        let started = advance(&quiet, timing.pod_start, &timing).expect("start");
        apply(&mut quiet, started);
        assert_eq!(advance(&quiet, Duration::from_secs(60), &timing), None);
        let mut crash = pod(json!({ ann::CRASH_LOOP: "true" }));
        let started = advance(&crash, timing.pod_start, &timing).expect("start");
        apply(&mut crash, started);
        let t = advance(&crash, timing.pod_start + Duration::from_secs(4), &timing)
            .expect("a restart is due");
        assert_eq!(t.status["containerStatuses"][0]["restartCount"], 2);
        assert_eq!(
            t.status["containerStatuses"][0]["state"]["waiting"]["reason"],
            "CrashLoopBackOff"
        );
    }
}
