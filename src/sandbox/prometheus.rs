//! The Prometheus HTTP API subset the sandbox serves beside the Kubernetes API:
//! `/api/v1/query`, `/api/v1/query_range` (GET and form POST), `/api/v1/status/buildinfo`,
//! `/-/ready`, `/-/healthy`, and `/metrics` (text exposition, so a real Prometheus can
//! scrape the sandbox). Shapes, number formats and error types are Prometheus 2.42's.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::promql::{self, Evaluator, QueryError, Value};
use super::traffic::now_ms;
use super::tsdb::{Labels, format_value};
use super::view::ClusterView;

/// The version `buildinfo` reports: the Prometheus whose semantics the sandbox follows.
pub const VERSION: &str = "2.42.0-glidepath-sandbox";

/// Routes for the Prometheus API, merged into the sandbox's server.
pub fn routes<V: ClusterView>() -> axum::Router<Arc<V>> {
    use axum::routing::get;
    axum::Router::new()
        .route("/api/v1/query", get(query::<V>).post(query::<V>))
        .route(
            "/api/v1/query_range",
            get(query_range::<V>).post(query_range::<V>),
        )
        .route("/api/v1/status/buildinfo", get(buildinfo))
        .route(
            "/-/ready",
            get(|| async { "Prometheus Server is Ready.\n" }),
        )
        .route(
            "/-/healthy",
            get(|| async { "Prometheus Server is Healthy.\n" }),
        )
        .route("/metrics", get(metrics::<V>))
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn error(kind: &str, message: &str) -> Response {
    let status = match kind {
        "bad_data" => StatusCode::BAD_REQUEST,
        "execution" => StatusCode::UNPROCESSABLE_ENTITY,
        "timeout" | "canceled" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let body = serde_json::json!({ "status": "error", "errorType": kind, "error": message });
    json(status, body.to_string())
}

fn query_error(e: &QueryError) -> Response {
    match e {
        QueryError::BadData(m) => error("bad_data", m),
        QueryError::Execution(m) => error("execution", m),
    }
}

/// Query-string and form parameters together (the form wins, as Go's `FormValue` reads it).
fn params(query: Option<String>, headers: &HeaderMap, body: &Bytes) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        out.extend(form_urlencoded::parse(body).into_owned());
    }
    if let Some(q) = query {
        out.extend(form_urlencoded::parse(q.as_bytes()).into_owned());
    }
    out
}

fn param<'a>(p: &'a [(String, String)], name: &str) -> Option<&'a str> {
    p.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A timestamp parameter: Unix seconds (fraction rounded to ms) or RFC 3339.
pub fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>()
        && f.is_finite()
    {
        let secs = f.trunc();
        let frac = ((f - secs) * 1000.0).round();
        return Ok(secs as i64 * 1000 + frac as i64);
    }
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|_| format!("cannot parse {s:?} to a valid timestamp"))
}

/// A duration parameter: float seconds or a Prometheus duration (`15s`, `1m30s`), in ms.
pub fn parse_step(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        if !f.is_finite() || f.abs() > 9.2e9 {
            return Err(format!(
                "cannot parse {s:?} to a valid duration. It overflows int64"
            ));
        }
        return Ok((f * 1000.0) as i64);
    }
    promql_parser::util::parse_duration(s)
        .map(|d| d.as_millis() as i64)
        .map_err(|_| format!("cannot parse {s:?} to a valid duration"))
}

/// A sample timestamp as Prometheus writes it in vectors and matrices: whole seconds, then
/// a three-digit millisecond part when there is one.
fn point_time(t: i64) -> String {
    let (s, ms) = (t.div_euclid(1000), t.rem_euclid(1000));
    if ms == 0 {
        s.to_string()
    } else {
        format!("{s}.{ms:03}")
    }
}

/// A value as Prometheus writes it in vectors and matrices (exponent form when tiny or
/// huge, as Go's `FormatFloat` with `'e'`).
fn point_value(v: f64) -> String {
    if v != 0.0 && v.is_finite() && (v.abs() < 1e-6 || v.abs() >= 1e21) {
        let e = format!("{v:e}");
        if let Some((mantissa, exp)) = e.split_once('e')
            && let Ok(exp) = exp.parse::<i32>()
        {
            let sign = if exp < 0 { '-' } else { '+' };
            return format!("{mantissa}e{sign}{:02}", exp.abs());
        }
        return e;
    }
    format_value(v)
}

fn metric(l: &Labels) -> String {
    let map: serde_json::Map<String, serde_json::Value> = l
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    serde_json::Value::Object(map).to_string()
}

fn string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// The `data` of a successful answer.
fn render(value: &Value, t: i64) -> String {
    let ts = (t as f64 / 1000.0).to_string();
    let (kind, result) = match value {
        Value::Scalar(v) => ("scalar", format!("[{ts},{}]", string(&format_value(*v)))),
        Value::Str(s) => ("string", format!("[{ts},{}]", string(s))),
        Value::Vector(samples) => (
            "vector",
            format!(
                "[{}]",
                samples
                    .iter()
                    .map(|s| format!(
                        "{{\"metric\":{},\"value\":[{},\"{}\"]}}",
                        metric(&s.labels),
                        point_time(t),
                        point_value(s.v)
                    ))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        ),
        Value::Matrix(series) => ("matrix", render_matrix(series)),
    };
    format!("{{\"status\":\"success\",\"data\":{{\"resultType\":\"{kind}\",\"result\":{result}}}}}")
}

fn render_matrix(series: &[promql::RangeSeries]) -> String {
    let items: Vec<String> = series
        .iter()
        .map(|s| {
            let points: Vec<String> = s
                .points
                .iter()
                .map(|(t, v)| format!("[{},\"{}\"]", point_time(*t), point_value(*v)))
                .collect();
            format!(
                "{{\"metric\":{},\"values\":[{}]}}",
                metric(&s.labels),
                points.join(",")
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

async fn query<V: ClusterView>(
    State(cluster): State<Arc<V>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = params(raw, &headers, &body);
    let t = match param(&p, "time") {
        None | Some("") => now_ms(),
        Some(s) => match parse_time(s) {
            Ok(t) => t,
            Err(e) => return error("bad_data", &format!("invalid parameter \"time\": {e}")),
        },
    };
    let expr = match promql::parse(param(&p, "query").unwrap_or("")) {
        Ok(e) => e,
        Err(QueryError::BadData(m)) => {
            return error("bad_data", &format!("invalid parameter \"query\": {m}"));
        }
        Err(e) => return query_error(&e),
    };
    let db = cluster.telemetry().db();
    match Evaluator::new(&db).instant(&expr, t) {
        Ok(v) => json(StatusCode::OK, render(&v, t)),
        Err(e) => query_error(&e),
    }
}

async fn query_range<V: ClusterView>(
    State(cluster): State<Arc<V>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = params(raw, &headers, &body);
    let time_param = |name: &str| parse_time(param(&p, name).unwrap_or(""));
    let start = match time_param("start") {
        Ok(t) => t,
        Err(e) => return error("bad_data", &format!("invalid parameter \"start\": {e}")),
    };
    let end = match time_param("end") {
        Ok(t) => t,
        Err(e) => return error("bad_data", &format!("invalid parameter \"end\": {e}")),
    };
    if end < start {
        return error(
            "bad_data",
            "invalid parameter \"end\": end timestamp must not be before start time",
        );
    }
    let step = match parse_step(param(&p, "step").unwrap_or("")) {
        Ok(s) => s,
        Err(e) => return error("bad_data", &format!("invalid parameter \"step\": {e}")),
    };
    if step <= 0 {
        return error(
            "bad_data",
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer",
        );
    }
    let expr = match promql::parse(param(&p, "query").unwrap_or("")) {
        Ok(e) => e,
        Err(e) => return query_error(&e),
    };
    let db = cluster.telemetry().db();
    match Evaluator::new(&db).range(&expr, start, end, step) {
        Ok(series) => json(
            StatusCode::OK,
            format!(
                "{{\"status\":\"success\",\"data\":{{\"resultType\":\"matrix\",\"result\":{}}}}}",
                render_matrix(&series)
            ),
        ),
        Err(e) => query_error(&e),
    }
}

async fn buildinfo() -> Response {
    let body = serde_json::json!({ "status": "success", "data": {
        "version": VERSION, "revision": env!("CARGO_PKG_VERSION"), "branch": "glidepath",
        "buildUser": "glidepath", "buildDate": "", "goVersion": "none (Rust)",
    }});
    json(StatusCode::OK, body.to_string())
}

async fn metrics<V: ClusterView>(State(cluster): State<Arc<V>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        cluster.telemetry().exposition(cluster.as_ref()),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_as_prometheus_writes_them() {
        assert_eq!(point_value(1e-7), "1e-07");
        assert_eq!(point_value(0.000001), "0.000001");
        assert_eq!(point_value(1e21), "1e+21");
        assert_eq!(point_value(0.25), "0.25");
        assert_eq!(point_value(f64::NAN), "NaN");
        assert_eq!(point_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(point_time(1_000_060_500), "1000060.500");
        assert_eq!(point_time(1_000_000_000), "1000000");
        assert_eq!(parse_time("1.0015").unwrap(), 1_002);
        assert_eq!(parse_time("2026-01-01T00:00:01.0019Z").unwrap() % 1000, 1);
        assert_eq!(parse_step("1m30s").unwrap(), 90_000);
        assert_eq!(parse_step("0.5").unwrap(), 500);
        assert!(parse_step("abc").is_err());
    }
}
