//! `pods/NAME/log`: the lines a pod's containers wrote, as text; `follow=true` streams
//! new lines until the pod ends.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::Cluster;
use super::store::{ApiError, Key};

fn pod_key(namespace: &Option<String>, name: &str) -> Key {
    Key {
        group: String::new(),
        plural: "pods".into(),
        namespace: namespace.clone().unwrap_or_default(),
        name: name.to_owned(),
    }
}

fn finished(pod: &Value) -> bool {
    matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    )
}

/// Answers a log request.
pub async fn serve(
    cluster: &Arc<Cluster>,
    follow: bool,
    tail: Option<&str>,
    namespace: &Option<String>,
    name: Option<&str>,
) -> Result<Response, ApiError> {
    let name = name.unwrap_or_default().to_owned();
    let key = pod_key(namespace, &name);
    let pod = cluster
        .get(&key)
        .ok_or_else(|| ApiError::not_found("pods", &name))?;
    let ns = namespace.clone().unwrap_or_default();
    let mut lines = cluster.logs_of(&ns, &name);
    if let Some(n) = tail.and_then(|t| t.parse::<usize>().ok()) {
        let skip = lines.len().saturating_sub(n);
        lines.drain(..skip);
    }
    if !follow || finished(&pod) {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        return Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], text).into_response());
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    let cluster = cluster.clone();
    tokio::spawn(async move {
        let mut sent = cluster.logs_of(&ns, &name).len();
        let first: String = lines.iter().map(|l| format!("{l}\n")).collect();
        if tx.send(Ok(Bytes::from(first))).await.is_err() {
            return;
        }
        loop {
            let notified = cluster.log_notify.notified();
            let all = cluster.logs_of(&ns, &name);
            if all.len() > sent {
                let chunk: String = all[sent..].iter().map(|l| format!("{l}\n")).collect();
                sent = all.len();
                if tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                    return;
                }
            }
            match cluster.get(&key) {
                Some(p) if !finished(&p) => {}
                _ => return,
            }
            // Wake on new lines, and now and then to notice the pod ending.
            let _ = tokio::time::timeout(std::time::Duration::from_millis(500), notified).await;
        }
    });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from_stream(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()))
}
