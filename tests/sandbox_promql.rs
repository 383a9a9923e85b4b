//! The sandbox's PromQL against a real Prometheus (Debian's 2.42, started here): the same
//! synthetic series are backfilled into Prometheus with promtool and loaded into the
//! sandbox's store, and every query of the supported subset must agree within 1e-9
//! relative error, at pinned times, in values, label sets and result types. Plus the API's
//! error shapes, and a real Prometheus scraping the sandbox's `/metrics`.

#[path = "support/prometheus.rs"]
mod prometheus;

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use glidepath::sandbox::workload::Rng;
use glidepath::sandbox::{Cluster, Sandbox, Timing};
use serde_json::Value;

/// Where the synthetic data ends (unix seconds; not aligned to anything on purpose).
const END: i64 = 1_790_003_917;
const DAYS: i64 = 2;

struct Gen {
    series: BTreeMap<String, Vec<(i64, f64)>>,
}

impl Gen {
    fn push(&mut self, head: String, t_ms: i64, v: f64) {
        self.series.entry(head).or_default().push((t_ms, v));
    }

    /// Heads sort by metric name first, so every family is contiguous, as promtool needs.
    fn openmetrics(&self) -> String {
        let mut out = String::new();
        for (head, points) in &self.series {
            for (t, v) in points {
                writeln!(out, "{head} {v} {}.{:03}", t / 1000, t % 1000).unwrap();
            }
        }
        out.push_str("# EOF\n");
        out
    }
}

/// Two services, a canary that appears three hours before the end, a counter reset, a
/// latency histogram, and gauges that stop near the lookback edge. Scrapes are every 60 s
/// (jittered) and every 15 s in the last three hours.
fn synthetic() -> Gen {
    let mut g = Gen {
        series: BTreeMap::new(),
    };
    let mut rng = Rng::new(42);
    let start = (END - DAYS * 86_400) * 1000;
    let end = END * 1000;
    let buckets = ["0.05", "0.1", "0.25", "0.5", "1", "+Inf"];
    for (service, base_rps, err) in [("checkout", 20.0, 0.002), ("payments", 8.0, 0.01)] {
        for (version, from) in [("v1", start), ("v2", end - 3 * 3_600_000)] {
            let mut t = from;
            let (mut ok, mut bad, mut sum) = (0.0, 0.0, 0.0);
            let mut cum = [0.0; 6];
            while t <= end {
                let fine = t > end - 3 * 3_600_000;
                let dt = if fine { 15_000 } else { 60_000 };
                let jitter = (rng.uniform() * 2_000.0) as i64 - 1_000;
                let rps = base_rps * if version == "v2" { 0.25 } else { 1.0 };
                let n = (rps * dt as f64 / 1000.0 * (0.8 + 0.4 * rng.uniform())).round();
                let ratio = if version == "v2" && t > end - 3_600_000 {
                    err * 8.0
                } else {
                    err
                };
                let e = (n * ratio * 2.0 * rng.uniform()).round().min(n);
                ok += n - e;
                bad += e;
                // A restart of payments v1 two hours before the end resets its counters.
                if service == "payments"
                    && version == "v1"
                    && (end - 2 * 3_600_000..end - 2 * 3_600_000 + dt).contains(&t)
                {
                    ok = n - e;
                    bad = e;
                    sum = 0.0;
                    cum = [0.0; 6];
                }
                let slow = if version == "v2" { 2.5 } else { 1.0 };
                for (i, f) in [0.3f64, 0.6, 0.85, 0.95, 0.99, 1.0].iter().enumerate() {
                    let f: f64 = if i < 5 { (*f / slow).min(1.0) } else { 1.0 };
                    cum[i] += (n * f).round();
                }
                for i in 1..6 {
                    if cum[i] < cum[i - 1] {
                        cum[i] = cum[i - 1];
                    }
                }
                sum += n * 0.08 * slow;
                let ts = t + jitter;
                let l = format!("namespace=\"shop\",service=\"{service}\",version=\"{version}\"");
                g.push(format!("http_requests_total{{code=\"200\",{l}}}"), ts, ok);
                g.push(format!("http_requests_total{{code=\"500\",{l}}}"), ts, bad);
                for (i, le) in buckets.iter().enumerate() {
                    g.push(
                        format!("http_request_duration_seconds_bucket{{le=\"{le}\",{l}}}"),
                        ts,
                        cum[i],
                    );
                }
                g.push(format!("http_request_duration_seconds_sum{{{l}}}"), ts, sum);
                g.push(
                    format!("http_request_duration_seconds_count{{{l}}}"),
                    ts,
                    cum[5],
                );
                t += dt;
            }
        }
    }
    // Gauges: one current, one that stopped 4 minutes ago (inside the lookback), one 10
    // minutes ago (outside it).
    for (deployment, stop) in [
        ("checkout", 0),
        ("payments", 4 * 60_000),
        ("legacy", 10 * 60_000),
    ] {
        let mut t = start;
        while t <= end - stop {
            let v = 3.0 + ((t / 3_600_000) % 3) as f64;
            g.push(
                format!("kube_deployment_status_replicas_available{{deployment=\"{deployment}\",namespace=\"shop\"}}"),
                t,
                v,
            );
            t += 30_000;
        }
    }
    g
}

const QUERIES: &[&str] = &[
    r#"http_requests_total"#,
    r#"http_requests_total{code=~"5.."}"#,
    r#"http_requests_total{code!="200",service!~"pay.*"}"#,
    r#"rate(http_requests_total[5m])"#,
    r#"irate(http_requests_total[5m])"#,
    r#"increase(http_requests_total[1h])"#,
    r#"sum(rate(http_requests_total{code=~"5.."}[5m])) / sum(rate(http_requests_total[5m]))"#,
    r#"sum(rate(http_requests_total{code=~"5.."}[1h])) / sum(rate(http_requests_total[1h]))"#,
    r#"sum(rate(http_requests_total{code=~"5.."}[6h])) / sum(rate(http_requests_total[6h]))"#,
    r#"sum(increase(http_requests_total{code="500"}[1d])) / sum(increase(http_requests_total[1d]))"#,
    r#"(sum(rate(http_requests_total{code=~"5.."}[1h])) / sum(rate(http_requests_total[1h]))) / (1 - 0.999)"#,
    r#"(sum by (service) (rate(http_requests_total{code="500"}[5m])) / sum by (service) (rate(http_requests_total[5m]))) / 0.001 > bool 14.4"#,
    r#"sum by (service) (rate(http_requests_total{code="500"}[1h])) / sum by (service) (rate(http_requests_total[1h]))"#,
    r#"sum by (version) (rate(http_requests_total[5m]))"#,
    r#"sum without (code) (rate(http_requests_total[5m]))"#,
    r#"avg by (service) (rate(http_requests_total[5m]))"#,
    r#"max(rate(http_requests_total[5m]))"#,
    r#"min by (code) (rate(http_requests_total[10m]))"#,
    r#"count by (service) (http_requests_total)"#,
    r#"histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))"#,
    r#"histogram_quantile(0.99, sum by (service, version, le) (rate(http_request_duration_seconds_bucket{service="checkout"}[10m])))"#,
    r#"histogram_quantile(0.5, rate(http_request_duration_seconds_bucket[1h]))"#,
    r#"sum(rate(http_request_duration_seconds_sum[5m])) / sum(rate(http_request_duration_seconds_count[5m]))"#,
    r#"rate(http_requests_total{code="500"}[5m]) / ignoring(code) rate(http_requests_total{code="200"}[5m])"#,
    r#"sum by (service) (rate(http_requests_total[5m])) / on(service) sum by (service) (rate(http_requests_total[1h]))"#,
    r#"clamp_min(sum(rate(http_requests_total{code="500"}[5m])), 0.05)"#,
    r#"abs(delta(kube_deployment_status_replicas_available[1h]))"#,
    r#"vector(1) - sum(rate(http_requests_total{code="500"}[5m])) / sum(rate(http_requests_total[5m]))"#,
    r#"scalar(sum(rate(http_requests_total[5m]))) * 60"#,
    r#"http_requests_total offset 1h"#,
    r#"rate(http_requests_total[5m] offset 30m)"#,
    r#"max_over_time(sum(rate(http_requests_total{code="500"}[5m]))[1h:5m])"#,
    r#"avg_over_time(kube_deployment_status_replicas_available[30m])"#,
    r#"kube_deployment_status_replicas_available"#,
    r#"http_requests_total > 100000"#,
    r#"rate(http_requests_total[5m]) and rate(http_requests_total[5m]) > 1"#,
    r#"sum(rate(http_requests_total{service="nothing"}[5m])) or vector(0)"#,
    r#"count(rate(http_requests_total[5m]) > 0.01)"#,
    r#"sum by (service) (increase(http_requests_total{code="500"}[6h]))"#,
    r#"1 - (sum(increase(http_requests_total{code="500"}[1d])) / sum(increase(http_requests_total[1d])))"#,
    r#"time()"#,
    r#"-sum(rate(http_requests_total[5m]))"#,
];

/// Range queries: (query, span before END, step).
const RANGES: &[(&str, i64, &str)] = &[
    (
        r#"sum(rate(http_requests_total{code=~"5.."}[5m])) / sum(rate(http_requests_total[5m]))"#,
        3_600,
        "60",
    ),
    (
        r#"histogram_quantile(0.99, sum by (version, le) (rate(http_request_duration_seconds_bucket[5m])))"#,
        3 * 3_600,
        "5m",
    ),
    (
        r#"sum by (service, version) (rate(http_requests_total[1m]))"#,
        7_200,
        "37s",
    ),
];

async fn post(url: &str, path: &str, form: &[(&str, String)]) -> (u16, Value) {
    let resp = glidepath::tls::http_client()
        .build()
        .unwrap()
        .post(format!("{url}{path}"))
        .form(form)
        .send()
        .await
        .unwrap();
    let code = resp.status().as_u16();
    (code, resp.json().await.unwrap())
}

fn close(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()) || (x - y).abs() < 1e-12,
        _ => false,
    }
}

/// The result as a map from label set to points, for an order-free comparison.
fn keyed(data: &Value) -> (String, BTreeMap<String, Vec<(String, String)>>) {
    let kind = data["resultType"].as_str().unwrap().to_owned();
    let mut out = BTreeMap::new();
    let point = |p: &Value| (p[0].to_string(), p[1].as_str().unwrap().to_owned());
    match kind.as_str() {
        "scalar" | "string" => {
            out.insert(String::new(), vec![point(&data["result"])]);
        }
        _ => {
            for s in data["result"].as_array().unwrap() {
                let points = match s.get("value") {
                    Some(v) => vec![point(v)],
                    None => s["values"].as_array().unwrap().iter().map(point).collect(),
                };
                out.insert(s["metric"].to_string(), points);
            }
        }
    }
    (kind, out)
}

fn compare(what: &str, ours: &Value, theirs: &Value) -> Result<(), String> {
    if theirs["status"] != "success" {
        return Err(format!("{what}: Prometheus refused it: {theirs}"));
    }
    if ours["status"] != "success" {
        return Err(format!("{what}: the sandbox refused it: {ours}"));
    }
    let (ka, a) = keyed(&ours["data"]);
    let (kb, b) = keyed(&theirs["data"]);
    if ka != kb {
        return Err(format!("{what}: resultType {ka} vs {kb}"));
    }
    if a.keys().collect::<Vec<_>>() != b.keys().collect::<Vec<_>>() {
        return Err(format!(
            "{what}: series differ:\n  ours   {:?}\n  theirs {:?}",
            a.keys(),
            b.keys()
        ));
    }
    for (k, pa) in &a {
        let pb = &b[k];
        if pa.len() != pb.len() {
            return Err(format!("{what} {k}: {} points vs {}", pa.len(), pb.len()));
        }
        for ((ta, va), (tb, vb)) in pa.iter().zip(pb) {
            if ta != tb || !close(va, vb) {
                return Err(format!("{what} {k}: ({ta}, {va}) vs ({tb}, {vb})"));
            }
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_agree_with_real_prometheus() {
    let data = synthetic().openmetrics();
    let prom = prometheus::start(&data, None);
    let sandbox = Sandbox::start(0, Cluster::new(32, Timing::default()))
        .await
        .unwrap();
    let loaded = sandbox
        .cluster
        .telemetry
        .db_mut()
        .load_openmetrics(&data)
        .unwrap();
    assert!(loaded > 90_000, "{loaded}");
    let mut failures = Vec::new();
    let mut compared = 0;
    for at in [END as f64, (END - 433) as f64 + 0.25] {
        for q in QUERIES {
            let form = [("query", q.to_string()), ("time", at.to_string())];
            let (_, ours) = post(&sandbox.url(), "/api/v1/query", &form).await;
            let (_, theirs) = post(&prom.url, "/api/v1/query", &form).await;
            match compare(&format!("{q} @ {at}"), &ours, &theirs) {
                Ok(()) => compared += 1,
                Err(e) => failures.push(e),
            }
        }
    }
    for (q, span, step) in RANGES {
        let form = [
            ("query", q.to_string()),
            ("start", (END - span).to_string()),
            ("end", END.to_string()),
            ("step", step.to_string()),
        ];
        let (_, ours) = post(&sandbox.url(), "/api/v1/query_range", &form).await;
        let (_, theirs) = post(&prom.url, "/api/v1/query_range", &form).await;
        match compare(&format!("range {q}"), &ours, &theirs) {
            Ok(()) => compared += 1,
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} disagree:\n{}",
        failures.len(),
        compared + failures.len(),
        failures.join("\n")
    );
    assert!(compared >= 60, "{compared}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_have_prometheus_shapes() {
    let sandbox = Sandbox::start(0, Cluster::new(32, Timing::default()))
        .await
        .unwrap();
    let url = sandbox.url();
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], u16, &'a str, &'a str);
    let cases: &[Case] = &[
        (
            "/api/v1/query",
            &[("query", "sum(")],
            400,
            "bad_data",
            "invalid parameter \"query\"",
        ),
        (
            "/api/v1/query",
            &[("query", "topk(3, up)")],
            400,
            "bad_data",
            "aggregation topk is not supported",
        ),
        (
            "/api/v1/query",
            &[("query", "predict_linear(up[5m], 60)")],
            400,
            "bad_data",
            "function predict_linear() is not supported",
        ),
        (
            "/api/v1/query",
            &[("query", "up"), ("time", "yesterday")],
            400,
            "bad_data",
            "invalid parameter \"time\"",
        ),
        (
            "/api/v1/query_range",
            &[
                ("query", "up"),
                ("start", "0"),
                ("end", "100000"),
                ("step", "1"),
            ],
            400,
            "bad_data",
            "11,000 points",
        ),
        (
            "/api/v1/query_range",
            &[
                ("query", "up"),
                ("start", "10"),
                ("end", "0"),
                ("step", "1"),
            ],
            400,
            "bad_data",
            "end timestamp must not be before start time",
        ),
        (
            "/api/v1/query_range",
            &[
                ("query", "up"),
                ("start", "0"),
                ("end", "10"),
                ("step", "0"),
            ],
            400,
            "bad_data",
            "zero or negative",
        ),
        (
            "/api/v1/query_range",
            &[
                ("query", "up[5m]"),
                ("start", "0"),
                ("end", "10"),
                ("step", "1"),
            ],
            400,
            "bad_data",
            "range vector",
        ),
    ];
    for (path, form, code, kind, text) in cases {
        let form: Vec<(&str, String)> = form.iter().map(|(k, v)| (*k, v.to_string())).collect();
        let (status, body) = post(&url, path, &form).await;
        assert_eq!(status, *code, "{form:?}: {body}");
        assert_eq!(body["status"], "error");
        assert_eq!(body["errorType"], *kind, "{body}");
        assert!(
            body["error"].as_str().unwrap().contains(text),
            "{form:?}: {body}"
        );
    }
    // Many-to-many matching is an execution error (422).
    {
        let mut db = sandbox.cluster.telemetry.db_mut();
        let l =
            |code: &str| glidepath::sandbox::tsdb::labels("x_total", &[("code", code), ("s", "a")]);
        db.append(&l("200"), 1_000, 1.0);
        db.append(&l("500"), 1_000, 1.0);
    }
    let form = [
        ("query", "x_total / on(s) x_total".to_string()),
        ("time", "2".to_string()),
    ];
    let (status, body) = post(&url, "/api/v1/query", &form).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errorType"], "execution");
    // GET works too, and the readiness and build endpoints answer as Prometheus's do.
    let text = glidepath::tls::http_client()
        .build()
        .unwrap()
        .get(format!("{url}/api/v1/query?query=vector(2)&time=10"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        text,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[10,"2"]}]}}"#
    );
    let ready = glidepath::tls::http_client()
        .build()
        .unwrap()
        .get(format!("{url}/-/ready"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(ready, "Prometheus Server is Ready.\n");
    let info: Value = glidepath::tls::http_client()
        .build()
        .unwrap()
        .get(format!("{url}/api/v1/status/buildinfo"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        info["data"]["version"]
            .as_str()
            .unwrap()
            .starts_with("2.42")
    );
    // glidepath's own client reads it like any Prometheus.
    let client = glidepath::metrics::Client::new(&url).unwrap();
    assert_eq!(
        client.value("vector(0.25)", Some(10.0)).await.unwrap(),
        Some(0.25)
    );
    tokio::time::sleep(Duration::from_millis(1)).await;
}
