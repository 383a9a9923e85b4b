//! Against a real Prometheus (Debian's package, started here on a loopback port), given 31
//! days of history with `promtool tsdb create-blocks-from openmetrics`: SLI values, burn
//! rates and the remaining budget agree with values computed here from the generated
//! series; the generated rules pass `promtool check rules`, and the page alert fires on the
//! fast burn while the healthy service stays quiet. Bad Prometheus answers never pass.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use glidepath::events::Verdict;
use glidepath::metrics::{Client, QueryError};
use glidepath::slo::{Slo, evaluate, live};

const STEP: u64 = 60;
const DAYS: u64 = 31;
const TOTAL_RPS: f64 = 10.0;

/// Errors per second for a service at a time: a steady 0.05%, and for `checkout` a fast
/// burn of 5% over the last two hours.
fn error_rps(service: &str, t: u64, end: u64) -> f64 {
    if service == "checkout" && t > end - 2 * 3600 {
        0.5
    } else {
        0.005
    }
}

/// `payments` runs two versions for the last three hours: v1 fails 0.1% of requests, v2
/// (the canary) 4%.
/// (version, code, counter points).
type VersionSeries = Vec<(String, String, Vec<(u64, f64)>)>;

fn versions(end: u64) -> VersionSeries {
    let mut out = Vec::new();
    for (version, ratio) in [("v1", 0.001), ("v2", 0.04)] {
        let (mut ok, mut bad) = (0.0, 0.0);
        let (mut good_points, mut bad_points) = (Vec::new(), Vec::new());
        let mut t = end - 3 * 3600;
        while t <= end {
            ok += TOTAL_RPS * (1.0 - ratio) * STEP as f64;
            bad += TOTAL_RPS * ratio * STEP as f64;
            good_points.push((t, ok));
            bad_points.push((t, bad));
            t += STEP;
        }
        out.push((version.to_owned(), "200".to_owned(), good_points));
        out.push((version.to_owned(), "500".to_owned(), bad_points));
    }
    out
}

/// Latency buckets of `checkout` for the last three hours: requests per second at or below
/// each bound (cumulative, as Prometheus histograms are).
const BUCKETS: [(&str, f64); 5] = [
    ("0.1", 6.0),
    ("0.25", 8.5),
    ("0.5", 9.6),
    ("1", 9.9),
    ("+Inf", 10.0),
];

fn buckets(end: u64) -> Vec<(String, Vec<(u64, f64)>)> {
    BUCKETS
        .iter()
        .map(|(le, rps)| {
            let points = (end - 3 * 3600..=end)
                .step_by(STEP as usize)
                .enumerate()
                .map(|(i, t)| (t, rps * STEP as f64 * (i + 1) as f64))
                .collect();
            ((*le).to_owned(), points)
        })
        .collect()
}

/// histogram_quantile as Prometheus defines it: find the bucket holding the rank and
/// interpolate linearly inside it.
fn quantile(q: f64) -> f64 {
    let total = BUCKETS[BUCKETS.len() - 1].1;
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for (le, count) in BUCKETS {
        let upper: f64 = le.parse().unwrap_or(f64::INFINITY);
        if count >= rank {
            return lower.0 + (upper - lower.0) * (rank - lower.1) / (count - lower.1);
        }
        lower = (upper, count);
    }
    f64::NAN
}

struct History {
    /// checkout latency buckets: (le, counter points).
    buckets: Vec<(String, Vec<(u64, f64)>)>,
    /// payments: (version, code, points).
    versions: VersionSeries,
    end: u64,
    /// (service, code) -> counter value at each timestamp.
    counters: BTreeMap<(String, String), Vec<(u64, f64)>>,
}

fn generate(end: u64) -> History {
    let start = end - DAYS * 86_400;
    let mut counters = BTreeMap::new();
    for service in ["checkout", "search"] {
        let (mut ok, mut bad) = (0.0, 0.0);
        let mut good_points = Vec::new();
        let mut bad_points = Vec::new();
        let mut t = start;
        while t <= end {
            let e = error_rps(service, t, end);
            ok += (TOTAL_RPS - e) * STEP as f64;
            bad += e * STEP as f64;
            good_points.push((t, ok));
            bad_points.push((t, bad));
            t += STEP;
        }
        counters.insert((service.to_owned(), "200".to_owned()), good_points);
        counters.insert((service.to_owned(), "500".to_owned()), bad_points);
    }
    History {
        end,
        counters,
        versions: versions(end),
        buckets: buckets(end),
    }
}

impl History {
    fn openmetrics(&self) -> String {
        let mut out = String::from(
            "# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\n",
        );
        for ((service, code), points) in &self.counters {
            for (t, v) in points {
                out.push_str(&format!(
                    "http_requests_total{{service=\"{service}\",code=\"{code}\"}} {v} {t}\n"
                ));
            }
        }
        out.push_str("# TYPE http_request_duration_seconds histogram\n");
        for (le, points) in &self.buckets {
            for (t, v) in points {
                out.push_str(&format!("http_request_duration_seconds_bucket{{service=\"checkout\",le=\"{le}\"}} {v} {t}\n"));
            }
        }
        for (version, code, points) in &self.versions {
            for (t, v) in points {
                out.push_str(&format!("http_requests_total{{service=\"payments\",version=\"{version}\",code=\"{code}\"}} {v} {t}\n"));
            }
        }
        out.push_str("# EOF\n");
        out
    }

    /// The error ratio Prometheus computes for `rate(errors[w]) / rate(all[w])` at the end:
    /// extrapolation is the same for both series, so it is the ratio of the increases between
    /// the first and last samples inside the window (closed at both ends in Prometheus 2.x).
    fn ratio(&self, service: &str, window: u64) -> f64 {
        let inc = |code: &str| {
            let pts = &self.counters[&(service.to_owned(), code.to_owned())];
            let inside: Vec<&(u64, f64)> = pts
                .iter()
                .filter(|(t, _)| *t >= self.end - window && *t <= self.end)
                .collect();
            inside.last().unwrap().1 - inside.first().unwrap().1
        };
        let (bad, good) = (inc("500"), inc("200"));
        bad / (bad + good)
    }
}

#[path = "support/prometheus.rs"]
mod support;

use support::{Prom, free_port};

fn start_prometheus(history: &History, rules: Option<&str>) -> Prom {
    support::start(&history.openmetrics(), rules)
}

fn now_minute() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    now - now % STEP - STEP
}

fn close(a: f64, b: f64) -> bool {
    ((a - b) / b).abs() < 1e-9
}

const SLO: &str = r#"apiVersion: glidepath/v1
kind: SLO
metadata:
  name: SERVICE
spec:
  slis:
    error_ratio: sum(rate(http_requests_total{service="${service}",code=~"5.."}[${window}])) / sum(rate(http_requests_total{service="${service}"}[${window}]))
  objectives:
    - sli: error_ratio
      pass: ["<=0.01"]
      key: true
  serviceLevel:
    bad: sum(rate(http_requests_total{service="${service}",code=~"5.."}[${window}]))
    total: sum(rate(http_requests_total{service="${service}"}[${window}]))
    target: 99.9%
    window: 30d
"#;

/// Writes an SLO file and loads it.
fn load_slo(dir: &Path, name: &str, text: &str) -> Slo {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, text).unwrap();
    Slo::load(&path, None).unwrap()
}

fn slo_for(dir: &Path, service: &str) -> Slo {
    load_slo(dir, service, &SLO.replace("SERVICE", service))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sli_values_budget_burn_rates_and_alerts_match_the_generated_history() {
    let history = generate(now_minute());
    let dir = tempfile::tempdir().unwrap();
    let checkout = slo_for(dir.path(), "checkout");
    let search = slo_for(dir.path(), "search");
    let mut groups = Vec::new();
    for (slo, service) in [(&checkout, "checkout"), (&search, "search")] {
        let vars = BTreeMap::from([("service".to_owned(), service.to_owned())]);
        groups.push(live::rules(slo, &vars).unwrap()["groups"][0].clone());
    }
    let rules = glidepath::yaml::to_yaml_string(&serde_json::json!({ "groups": groups }));
    let rules_path = dir.path().join("rules.yaml");
    std::fs::write(&rules_path, &rules).unwrap();
    let check = Command::new("promtool")
        .arg("check")
        .arg("rules")
        .arg(&rules_path)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "promtool check rules: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    let prom = start_prometheus(&history, Some(&rules));
    let client = Client::new(&prom.url).unwrap();
    let at = Some(history.end as f64);
    let vars = BTreeMap::from([("service".to_owned(), "checkout".to_owned())]);

    // The SLI over 5m: the fast burn, 5%.
    let values = live::measure(
        &checkout,
        live::Sources::only(&client),
        &vars,
        Duration::from_secs(300),
        at,
    )
    .await
    .unwrap();
    let measured = values["error_ratio"].unwrap();
    assert!(
        close(measured, history.ratio("checkout", 300)),
        "{measured} vs {}",
        history.ratio("checkout", 300)
    );
    let evaluation = evaluate(&checkout, &values, &[]);
    assert_eq!(evaluation.result, Verdict::Fail);

    // Budget and every burn-rate window.
    let budget = live::budget_at(&checkout, &client, &vars, at)
        .await
        .unwrap();
    let expected_consumed = history.ratio("checkout", 30 * 86_400) / 0.001;
    assert!(
        close(budget.consumed.unwrap(), expected_consumed),
        "{:?} vs {expected_consumed}",
        budget.consumed
    );
    assert!(close(budget.remaining.unwrap(), 1.0 - expected_consumed));
    for check in &budget.burn_rates {
        for (rate, window) in [
            (check.long_rate, check.pair.long),
            (check.short_rate, check.pair.short),
        ] {
            let expected = history.ratio("checkout", window.as_secs()) / 0.001;
            assert!(
                close(rate.unwrap(), expected),
                "{window:?}: {rate:?} vs {expected}"
            );
        }
    }
    assert!(budget.burn_rates[0].firing, "1h/5m burn at 50x pages");

    let quiet = live::budget_at(
        &search,
        &client,
        &BTreeMap::from([("service".to_owned(), "search".to_owned())]),
        at,
    )
    .await
    .unwrap();
    assert!(
        quiet.burn_rates.iter().all(|b| !b.firing),
        "a steady 0.05% burns at 0.5x"
    );
    assert!(close(quiet.remaining.unwrap(), 0.5));

    // The rules, evaluated live by Prometheus, fire the page for checkout only.
    let deadline = Instant::now() + Duration::from_secs(20);
    let firing = loop {
        let alerts = client
            .query("ALERTS{alertstate=\"firing\"}", None)
            .await
            .unwrap();
        let names: Vec<String> = alerts
            .iter()
            .filter_map(|a| a.labels.get("alertname").cloned())
            .collect();
        if names.iter().any(|n| n == "CheckoutErrorBudgetBurnPage") || Instant::now() > deadline {
            break names;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(
        firing.contains(&"CheckoutErrorBudgetBurnPage".to_owned()),
        "{firing:?}"
    );
    assert!(
        !firing.iter().any(|n| n.starts_with("Search")),
        "{firing:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_data_and_bad_queries_never_pass() {
    let history = generate(now_minute());
    let prom = start_prometheus(&history, None);
    let client = Client::new(&prom.url).unwrap();
    let at = Some(history.end as f64);
    assert_eq!(
        client
            .value("sum(rate(http_requests_total{service=\"ghost\"}[5m]))", at)
            .await
            .unwrap(),
        None,
        "empty vector"
    );
    assert_eq!(
        client.value("vector(0) / vector(0)", at).await.unwrap(),
        None,
        "NaN"
    );
    assert_eq!(
        client.value("vector(1) / vector(0)", at).await.unwrap(),
        Some(f64::INFINITY),
        "+Inf is a value (one that never passes a gate)"
    );
    match client.value("sum(rate(http_requests_total[5m]", at).await {
        Err(QueryError::Api {
            status, error_type, ..
        }) => assert_eq!((status, error_type.as_str()), (400, "bad_data")),
        other => panic!("expected bad_data, got {other:?}"),
    }
    match client.value("rate(http_requests_total[5m])", at).await {
        Err(QueryError::BadResponse { detail, .. }) => {
            assert!(
                detail.contains("series; an SLI must return one (aggregate it with sum or max)"),
                "{detail}"
            )
        }
        other => panic!("expected too many series, got {other:?}"),
    }
    let dir = tempfile::tempdir().unwrap();
    let slo = slo_for(dir.path(), "ghost");
    let values = live::measure(
        &slo,
        live::Sources::only(&client),
        &BTreeMap::from([("service".to_owned(), "ghost".to_owned())]),
        Duration::from_secs(300),
        at,
    )
    .await
    .unwrap();
    assert_eq!(evaluate(&slo, &values, &[]).result, Verdict::Error);
}

/// A server that answers like a broken Prometheus: HTML, 500s, or nothing.
async fn broken(behaviour: &'static str) -> String {
    use axum::http::StatusCode;
    let app = axum::Router::new().fallback(move || async move {
        match behaviour {
            "html" => (StatusCode::OK, "<html><body>Login</body></html>").into_response_parts(),
            "500" => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "{\"status\":\"error\",\"errorType\":\"internal\",\"error\":\"boom\"}",
            )
                .into_response_parts(),
            _ => {
                tokio::time::sleep(Duration::from_secs(30)).await;
                (StatusCode::OK, "late").into_response_parts()
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

trait Parts {
    fn into_response_parts(self) -> axum::response::Response;
}

impl Parts for (axum::http::StatusCode, &'static str) {
    fn into_response_parts(self) -> axum::response::Response {
        axum::response::IntoResponse::into_response(self)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_prometheus_is_a_clear_error() {
    let html = Client::new(&broken("html").await).unwrap();
    match html.value("up", None).await {
        Err(QueryError::BadResponse { detail, .. }) => assert!(
            detail.starts_with("not the Prometheus API (the body starts \"<html>"),
            "{detail}"
        ),
        other => panic!("{other:?}"),
    }
    let failing = Client::new(&broken("500").await).unwrap();
    let started = Instant::now();
    match failing.value("up", None).await {
        Err(QueryError::Api {
            status: 500, error, ..
        }) => assert_eq!(error, "boom"),
        other => panic!("{other:?}"),
    }
    assert!(
        started.elapsed() >= Duration::from_millis(200 + 400 + 800),
        "5xx answers are retried with backoff"
    );
    let down = Client::new(&format!("http://127.0.0.1:{}", free_port())).unwrap();
    assert!(matches!(
        down.value("up", None).await,
        Err(QueryError::Unreachable { .. })
    ));
    let settings = glidepath::pipeline::model::Prometheus {
        url: broken("slow").await,
        bearer_token_env: None,
        bearer_token_file: None,
        basic_auth: None,
        retries: Some(0),
        headers: BTreeMap::new(),
        timeout: Some(glidepath::units::Span(Duration::from_millis(300))),
        ca_file: None,
        insecure_skip_verify: false,
    };
    let slow = Client::from_settings(&settings).unwrap();
    match slow.value("up", None).await {
        Err(QueryError::Unreachable { reason, .. }) => assert_eq!(reason, "no answer in time"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_pipeline_gates_on_slos_and_the_error_budget_and_keeps_history() {
    let history = generate(now_minute());
    let prom = start_prometheus(&history, None);
    let home = tempfile::tempdir().unwrap();
    for service in ["checkout", "search"] {
        let slo = SLO
            .replace("SERVICE", service)
            .replace("${service}", service);
        std::fs::write(home.path().join(format!("{service}.yaml")), slo).unwrap();
    }
    let pipeline = format!(
        r#"apiVersion: glidepath/v1
kind: Pipeline
metadata: {{ name: shop }}
spec:
  prometheus: {{ url: "{url}" }}
  stages:
    - name: search
      steps:
        - name: rules
          monitoring: {{ slo: search.yaml, output: search-rules.yaml }}
        - name: slo
          evaluate: {{ slo: search.yaml, window: 5m }}
        - name: budget
          gate: {{ errorBudget: {{ slo: search.yaml, minRemaining: 25%, maxBurnRate: 10 }} }}
    - name: checkout
      steps:
        - name: budget
          gate: {{ errorBudget: {{ slo: checkout.yaml, minRemaining: 25%, maxBurnRate: 10 }} }}
"#,
        url = prom.url
    );
    let path = home.path().join("shop.yaml");
    std::fs::write(&path, pipeline).unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_glidepath"))
            .args(args)
            .env("GLIDEPATH_HOME", home.path())
            .output()
            .unwrap()
    };
    let out = run(&["run", path.to_str().unwrap(), "--headless"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the checkout budget burns too fast: {stderr}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&run(&["history", "1", "--json"]).stdout).unwrap();
    let step = |stage: usize, i: usize| report["stages"][stage]["steps"][i].clone();
    assert_eq!(step(0, 0)["status"], "passed", "{}", step(0, 0));
    let check = Command::new("promtool")
        .arg("check")
        .arg("rules")
        .arg(home.path().join("search-rules.yaml"))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    // The monitoring step came first in the search stage.
    let step = |stage: usize, i: usize| {
        report["stages"][stage]["steps"][i + usize::from(stage == 0)].clone()
    };
    assert_eq!(step(0, 0)["verdict"], "pass", "{}", step(0, 0));
    assert!(
        step(0, 0)["evidence"][0]["query"]
            .as_str()
            .is_some_and(|q| q.contains("service=\"search\"")),
        "{}",
        step(0, 0)
    );
    assert_eq!(step(0, 1)["verdict"], "pass", "{}", step(0, 1));
    let held = step(1, 0);
    assert_eq!(held["verdict"], "fail", "{held}");
    assert!(
        held["summary"]
            .as_str()
            .is_some_and(|s| s.starts_with("release held: burn rate 1h 50.00x")),
        "{held}"
    );
    let out = run(&["history", "1", "--invalidate"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "run 1: 1 evaluation(s) marked invalid; comparisons leave them out"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_and_stable_are_measured_side_by_side() {
    let history = generate(now_minute());
    let prom = start_prometheus(&history, None);
    let client = Client::new(&prom.url).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let slo = load_slo(
        dir.path(),
        "payments",
        "apiVersion: glidepath/v1\nkind: SLO\nmetadata: { name: payments }\nspec:\n  slis:\n    error_ratio: sum(rate(http_requests_total{service=\"payments\",version=\"${version}\",code=~\"5..\"}[${window}])) / sum(rate(http_requests_total{service=\"payments\",version=\"${version}\"}[${window}]))\n  objectives:\n    - sli: error_ratio\n      pass: [\"<=0.01\"]\n",
    );
    let cmp = live::compare_versions(
        &slo,
        &client,
        &BTreeMap::new(),
        Duration::from_secs(300),
        "v2",
        "v1",
        Some(history.end as f64),
    )
    .await
    .unwrap();
    assert_eq!(cmp.len(), 1);
    assert!(close(cmp[0].canary.unwrap(), 0.04), "{cmp:?}");
    assert!(close(cmp[0].stable.unwrap(), 0.001), "{cmp:?}");
}

#[test]
fn slo_eval_and_budget_commands_read_prometheus() {
    let history = generate(now_minute());
    let prom = start_prometheus(&history, None);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkout.yaml");
    std::fs::write(&path, SLO.replace("SERVICE", "checkout")).unwrap();
    let at = history.end.to_string();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_glidepath"))
            .args(args)
            .output()
            .unwrap()
    };
    let p = path.to_str().unwrap();
    let out = run(&[
        "slo",
        "eval",
        "--slo",
        p,
        "--prometheus",
        &prom.url,
        "--at",
        &at,
        "--set",
        "service=checkout",
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["result"], "fail");
    assert!(close(
        doc["objectives"][0]["value"].as_f64().unwrap(),
        history.ratio("checkout", 300)
    ));
    let out = run(&[
        "slo",
        "budget",
        "--slo",
        p,
        "--prometheus",
        &prom.url,
        "--at",
        &at,
        "--set",
        "service=checkout",
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["window"], "30d");
    assert_eq!(doc["burn_rates"][0]["long"], "1h");
    assert_eq!(doc["burn_rates"][0]["firing"], true);
    let out = run(&[
        "slo",
        "budget",
        "--slo",
        p,
        "--prometheus",
        &format!("http://127.0.0.1:{}", free_port()),
        "--set",
        "service=checkout",
    ]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "Prometheus down is an infrastructure error"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach Prometheus"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p95_and_p99_from_histograms_match_the_buckets() {
    let history = generate(now_minute());
    let prom = start_prometheus(&history, None);
    let client = Client::new(&prom.url).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let slo = load_slo(
        dir.path(),
        "latency",
        "apiVersion: glidepath/v1\nkind: SLO\nmetadata: { name: latency }\nspec:\n  slis:\n    p95: histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{service=\"checkout\"}[${window}])))\n    p99: histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{service=\"checkout\"}[${window}])))\n  objectives:\n    - sli: p95\n      pass: [\"<0.3\"]\n    - sli: p99\n      pass: [\"<0.5\"]\n",
    );
    let values = live::measure(
        &slo,
        live::Sources::only(&client),
        &BTreeMap::new(),
        Duration::from_secs(300),
        Some(history.end as f64),
    )
    .await
    .unwrap();
    // 95% of 10 rps is rank 9.5: inside (0.25, 0.5], 1.0 of 1.1 into it.
    assert!(
        close(values["p95"].unwrap(), quantile(0.95)),
        "{values:?} vs {}",
        quantile(0.95)
    );
    assert!(
        close(values["p99"].unwrap(), quantile(0.99)),
        "{values:?} vs {}",
        quantile(0.99)
    );
    let e = evaluate(&slo, &values, &[]);
    assert_eq!(
        e.result,
        Verdict::Fail,
        "p99 is {:?}, above 0.5",
        values["p99"]
    );
}
