//! No data never passes: a load test nobody answered, and every way Prometheus can answer
//! without a number (empty vector, NaN, a stale series, a refused query), end as
//! `error` naming the SLI, never as 0 or a pass.

#[path = "support/prometheus.rs"]
mod prometheus;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use glidepath::engine::{self, Emitter, RunOptions};
use glidepath::events::{Event, Evidence, Verdict};
use glidepath::loadgen::{Model, Plan, run};

/// A loopback port nobody listens on.
fn dead_url() -> String {
    format!("http://127.0.0.1:{}/", prometheus::free_port())
}

/// A server that answers every request 200 at once.
async fn live_url() -> String {
    let app = axum::Router::new().fallback(|| async { "ok" });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_answered_requests_give_no_latency_not_zero_ms() {
    let plan = Plan {
        timeout: Duration::from_millis(300),
        ..Plan::get(
            dead_url(),
            Model::Closed { connections: 2 },
            Duration::from_millis(500),
        )
    };
    let s = run(plan, |_| {}).await.unwrap();
    assert!(s.requests > 0 && s.answered == 0, "{s:?}");
    let slis = s.slis();
    for name in [
        "load.latency_p50_ms",
        "load.latency_p95_ms",
        "load.latency_max_ms",
    ] {
        assert_eq!(slis[name], None, "{name} must be no data, not 0 ms");
    }
    // Every request failed: that is a measured error ratio, not missing data.
    assert_eq!(slis["load.error_ratio"], Some(1.0));
    assert!(
        s.no_data().unwrap().contains("answered none of"),
        "{:?}",
        s.no_data()
    );
}

/// Runs a pipeline and returns each judged step's verdict, summary and evidence.
async fn run_pipeline(
    dir: &std::path::Path,
    text: &str,
) -> Vec<(String, Verdict, String, Vec<Evidence>)> {
    let vars = glidepath::pipeline::Variables {
        sets: Default::default(),
        use_env: false,
    };
    let p = Arc::new(glidepath::pipeline::load_str(text, &dir.join("p.yaml"), &vars).unwrap());
    let mut rx = None;
    let handle = engine::start_with(p, Emitter::new(1, 1, None), RunOptions::default(), |tx| {
        rx = Some(tx.subscribe())
    });
    let mut rx = rx.unwrap();
    handle.wait().await;
    let mut out = Vec::new();
    while let Ok(env) = rx.try_recv() {
        if let Event::StepFinished {
            step,
            verdict: Some(v),
            summary,
            evidence,
            ..
        } = env.event
        {
            out.push((step, v, summary, evidence));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_step_nobody_answers_is_an_error_and_so_is_the_gate_after_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("perf.yaml"),
        "apiVersion: glidepath/v1\nkind: SLO\nmetadata: { name: perf }\nspec:\n  objectives:\n    - sli: load.latency_p95_ms\n      pass: [\"<500\"]\n",
    )
    .unwrap();
    // A first test that was answered publishes a p95; the second, unanswered one must not
    // let that older figure stand in for its own missing one.
    let text = format!(
        "apiVersion: glidepath/v1\nkind: Pipeline\nmetadata: {{ name: shop }}\nspec:\n  stages:\n    - name: perf\n      steps:\n        - name: answered\n          test: {{ load: {{ url: \"{live}\", duration: 1s, rate: 20 }} }}\n        - name: silent\n          test: {{ load: {{ url: \"{dead}\", duration: 1s, connections: 1, timeout: 300ms, thresholds: {{ latency_p95_ms: 500 }} }} }}\n          onFailure: continue\n        - name: gate\n          evaluate: {{ slo: perf.yaml }}\n",
        live = live_url().await,
        dead = dead_url()
    );
    let steps = run_pipeline(dir.path(), &text).await;
    let find = |name: &str| {
        steps
            .iter()
            .find(|s| s.0 == name)
            .unwrap_or_else(|| panic!("{name} in {steps:?}"))
    };
    let silent = find("silent");
    assert_eq!(silent.1, Verdict::Error, "{}", silent.2);
    assert!(
        silent.2.contains("no data for load.latency_p95_ms"),
        "{}",
        silent.2
    );
    let p95 = silent
        .3
        .iter()
        .find(|e| e.check == "load.latency_p95_ms")
        .unwrap();
    assert_eq!(
        (p95.verdict, p95.value.as_deref()),
        (Verdict::Error, Some("no data"))
    );
    let gate = find("gate");
    assert_eq!(gate.1, Verdict::Error, "{}", gate.2);
    assert!(
        gate.2.contains("no data for load.latency_p95_ms"),
        "{}",
        gate.2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_step_without_thresholds_nobody_answers_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "apiVersion: glidepath/v1\nkind: Pipeline\nmetadata: {{ name: shop }}\nspec:\n  stages:\n    - name: perf\n      steps:\n        - name: silent\n          test: {{ load: {{ url: \"{}\", duration: 1s, connections: 1 }} }}\n",
        dead_url()
    );
    let steps = run_pipeline(dir.path(), &text).await;
    assert_eq!(steps[0].1, Verdict::Error, "{}", steps[0].2);
    assert!(steps[0].2.contains("answered none of"), "{}", steps[0].2);
}

#[test]
fn glidepath_load_against_nobody_says_no_data_and_exits_4() {
    let url = dead_url();
    let out = Command::new(env!("CARGO_BIN_EXE_glidepath"))
        .args(["load", &url, "--duration", "1s", "--json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["latency_ms"], serde_json::Value::Null, "{json}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("answered none of"));
    let out = Command::new(env!("CARGO_BIN_EXE_glidepath"))
        .args(["load", &url, "--duration", "1s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stdout).contains("latency ms   no data"));
}

/// A Keptn slo.yaml whose objectives are `ok` (met) and `bad` (the SLI under test), and
/// its sli.yaml with `bad`'s query.
fn keptn_files(dir: &std::path::Path, bad_query: &str) -> (String, String) {
    let slo = dir.join("slo.yaml");
    std::fs::write(
        &slo,
        "objectives:\n  - sli: ok\n    pass: [ { criteria: [\"<=0.05\"] } ]\n    weight: 9\n  - sli: bad\n    pass: [ { criteria: [\"<=0.05\"] } ]\ntotal_score: { pass: \"90%\", warning: \"75%\" }\n",
    )
    .unwrap();
    let sli = dir.join("sli.yaml");
    std::fs::write(
        &sli,
        format!("spec_version: \"1.0\"\nindicators:\n  ok: ok_metric\n  bad: '{bad_query}'\n"),
    )
    .unwrap();
    (slo.display().to_string(), sli.display().to_string())
}

fn slo_eval(prom: &str, at: f64, bad_query: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let (slo, sli) = keptn_files(dir.path(), bad_query);
    Command::new(env!("CARGO_BIN_EXE_glidepath"))
        .args([
            "slo",
            "eval",
            "--slo",
            &slo,
            "--sli",
            &sli,
            "--prometheus",
            prom,
        ])
        .args(["--at", &at.to_string(), "--json", "--fail-on", "fail"])
        .output()
        .unwrap()
}

// Without `bad` the score would be 9/10 = 90%, a pass: each way of having no number must
// turn it into `error`, naming the SLI, never a pass or a 0.
#[test]
fn prometheus_empty_nan_and_infinite_values_are_errors_naming_the_sli() {
    let t = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 60
        - 60)
        * 60;
    let om = format!(
        "# TYPE ok_metric gauge\nok_metric 0.01 {t}\n# TYPE nan_metric gauge\nnan_metric NaN {t}\n# TYPE pinf_metric gauge\npinf_metric +Inf {t}\n# TYPE ninf_metric gauge\nninf_metric -Inf {t}\n# TYPE zero_metric gauge\nzero_metric 0 {t}\n# EOF\n"
    );
    let prom = prometheus::start(&om, None);
    let at = t as f64 + 1.0;
    // ±Inf is a value that never passes (tests/helpful_errors.rs), not no data.
    for bad in [
        "nan_metric",
        "absent_metric",
        "sum(absent_metric)",
        "zero_metric / zero_metric",
    ] {
        let out = slo_eval(&prom.url, at, bad);
        let e: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{bad}: {}", String::from_utf8_lossy(&out.stderr)));
        assert_eq!(e["result"], "error", "{bad}: {e}");
        assert_eq!(e["objectives"][1]["status"], "error", "{bad}: {e}");
        assert_eq!(
            e["objectives"][1]["value"],
            serde_json::Value::Null,
            "{bad}: {e}"
        );
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .starts_with("no data for bad:"),
            "{bad}: {e}"
        );
        assert_eq!(
            out.status.code(),
            Some(1),
            "{bad}: --fail-on fail exits 1 on error"
        );
    }
    // A stored ±Inf is a value that fails, shown as Prometheus writes it.
    for (metric, shown) in [("pinf_metric", "+Inf"), ("ninf_metric", "-Inf")] {
        let out = slo_eval(&prom.url, at, metric);
        let e: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(e["objectives"][1]["value"], shown, "{metric}: {e}");
        assert_eq!(e["result"], "fail", "{metric}: {e}");
        assert_eq!(out.status.code(), Some(1), "{metric}");
    }
    // The same SLO with a real value passes: the test above can fail.
    let out = slo_eval(&prom.url, at, "ok_metric");
    let e: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (e["result"].as_str(), out.status.code()),
        (Some("pass"), Some(0)),
        "{e}"
    );
    // A query that is not PromQL is bad input, naming the SLI, refused before Prometheus
    // is asked.
    let out = slo_eval(&prom.url, at, "sum(");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("SLI `bad`: the query is not valid PromQL"),
        "{err}"
    );
}

/// A /metrics page that shows `flaky_metric` while `shown` is set.
async fn flaky_exporter(shown: Arc<std::sync::atomic::AtomicBool>) -> String {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let shown = shown.clone();
            async move {
                let mut body = String::from("# TYPE steady_metric gauge\nsteady_metric 0.01\n");
                if shown.load(std::sync::atomic::Ordering::SeqCst) {
                    body.push_str("# TYPE flaky_metric gauge\nflaky_metric 0.01\n");
                }
                body
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Polls `promql` until `done` holds for its value, for at most `secs` seconds.
async fn wait_for(
    client: &glidepath::metrics::Client,
    promql: &str,
    secs: u64,
    done: impl Fn(Option<f64>) -> bool,
) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if done(client.value(promql, None).await.unwrap()) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

// A series that stopped is marked stale at the next scrape: from then on an instant query
// has no sample for it (long before the 5-minute lookback would end), and the gate says
// `error` naming the SLI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_series_is_no_data_and_the_gate_is_an_error() {
    let shown = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let target = flaky_exporter(shown.clone()).await;
    let prom = tokio::task::spawn_blocking(move || prometheus::start_scraping(&target))
        .await
        .unwrap();
    let client = glidepath::metrics::Client::new(&prom.url).unwrap();
    assert!(
        wait_for(&client, "flaky_metric", 30, |v| v == Some(0.01)).await,
        "never scraped"
    );
    let dir = tempfile::tempdir().unwrap();
    let (slo, sli) = keptn_files(dir.path(), "flaky_metric");
    let slo_text = std::fs::read_to_string(&slo).unwrap();
    std::fs::write(&slo, slo_text.replace("sli: ok", "sli: steady")).unwrap();
    let sli_text = std::fs::read_to_string(&sli)
        .unwrap()
        .replace("ok: ok_metric", "steady: steady_metric");
    std::fs::write(&sli, sli_text).unwrap();
    let model =
        glidepath::slo::Slo::load(std::path::Path::new(&slo), Some(std::path::Path::new(&sli)))
            .unwrap();
    let gate = |client: glidepath::metrics::Client, model: glidepath::slo::Slo| async move {
        let values = glidepath::slo::live::measure(
            &model,
            glidepath::slo::live::Sources::only(&client),
            &Default::default(),
            Duration::from_secs(60),
            None,
        )
        .await
        .unwrap();
        glidepath::slo::evaluate(&model, &values, &[])
    };
    assert_eq!(
        gate(client.clone(), model.clone()).await.result,
        Verdict::Pass
    );
    shown.store(false, std::sync::atomic::Ordering::SeqCst);
    assert!(
        wait_for(&client, "flaky_metric", 30, |v| v.is_none()).await,
        "flaky_metric never went stale"
    );
    let e = gate(client.clone(), model).await;
    assert_eq!(e.result, Verdict::Error, "{}", e.message);
    assert!(e.message.starts_with("no data for bad:"), "{}", e.message);
    // The steady series is still there: only the stale one is missing.
    assert_eq!(
        client.value("steady_metric", None).await.unwrap(),
        Some(0.01)
    );
}
