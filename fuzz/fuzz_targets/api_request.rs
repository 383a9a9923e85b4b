//! Fuzzes the sandbox's request decoding: any method, path, query, content type and body
//! must get an answer below 500, never a panic.
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, Uri, header};
use glidepath::sandbox::{Cluster, Timing, api};
use libfuzzer_sys::fuzz_target;

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];
const TYPES: [&str; 6] = [
    "application/json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/json-patch+json",
    "application/apply-patch+yaml",
    "application/vnd.kubernetes.protobuf",
];

fn state() -> &'static (tokio::runtime::Runtime, Arc<Cluster>) {
    static STATE: OnceLock<(tokio::runtime::Runtime, Arc<Cluster>)> = OnceLock::new();
    STATE.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        (rt, Cluster::new(32, Timing::default()))
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let method = Method::from_bytes(METHODS[data[0] as usize % METHODS.len()].as_bytes()).unwrap();
    let content_type = TYPES[data[1] as usize % TYPES.len()];
    // The rest is "path\nbody": the first line is the URL path and query.
    let rest = &data[2..];
    let split = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
    let Ok(path) = std::str::from_utf8(&rest[..split]) else { return };
    let Ok(uri) = format!("/{}", path.trim_start_matches('/')).parse::<Uri>() else { return };
    let body = Bytes::copy_from_slice(rest.get(split + 1..).unwrap_or_default());
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let (rt, cluster) = state();
    let response = rt.block_on(api::handle(axum::extract::State(cluster.clone()), method, uri, headers, body));
    assert!(response.status().as_u16() < 500, "answered {}", response.status());
});
