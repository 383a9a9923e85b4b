//! OpenSLO files against a real Prometheus given 31 days of raw counters and a gauge with
//! promtool: `glidepath slo budget` (the real binary) reports, for every objective, the
//! error ratio, budget and burn rates that Prometheus itself answers for PromQL written
//! here by hand, and, for Occurrences, what the generated series say.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use glidepath::metrics::Client;

#[path = "support/prometheus.rs"]
mod support;

const STEP: u64 = 60;
const DAYS: u64 = 31;
const RPS: f64 = 10.0;

/// checkout's error share at `t`: 6% for the last two hours, 10% from 03:00 to 04:00 UTC
/// every day, 0.05% otherwise.
fn error_share(t: u64, end: u64) -> f64 {
    if t > end - 2 * 3600 {
        0.06
    } else if (t % 86_400) / 3600 == 3 {
        0.10
    } else {
        0.0005
    }
}

/// Latency in seconds: 0.8 s while errors are high, 0.2 s otherwise.
fn latency(t: u64, end: u64) -> f64 {
    if error_share(t, end) > 0.01 { 0.8 } else { 0.2 }
}

struct History {
    end: u64,
    /// code → counter points.
    counters: BTreeMap<&'static str, Vec<(u64, f64)>>,
}

fn generate(end: u64) -> History {
    let (mut ok, mut bad) = (0.0, 0.0);
    let (mut ok_points, mut bad_points) = (Vec::new(), Vec::new());
    let mut t = end - DAYS * 86_400;
    while t <= end {
        let share = error_share(t, end);
        ok += RPS * (1.0 - share) * STEP as f64;
        bad += RPS * share * STEP as f64;
        ok_points.push((t, ok));
        bad_points.push((t, bad));
        t += STEP;
    }
    History {
        end,
        counters: BTreeMap::from([("200", ok_points), ("500", bad_points)]),
    }
}

impl History {
    fn openmetrics(&self) -> String {
        let mut out = String::from("# TYPE http_requests_total counter\n");
        for (code, points) in &self.counters {
            for (t, v) in points {
                out.push_str(&format!(
                    "http_requests_total{{service=\"checkout\",code=\"{code}\"}} {v} {t}\n"
                ));
            }
        }
        out.push_str("# TYPE latency_seconds gauge\n");
        for (t, _) in &self.counters["200"] {
            out.push_str(&format!(
                "latency_seconds{{service=\"checkout\"}} {} {t}\n",
                latency(*t, self.end)
            ));
        }
        for (name, value) in [
            ("replicas_desired", |_| 4.0),
            ("replicas_available", |bad| if bad { 3.0 } else { 4.0 }),
        ] as [(&str, fn(bool) -> f64); 2]
        {
            out.push_str(&format!("# TYPE {name} gauge\n"));
            for (t, _) in &self.counters["200"] {
                let bad = error_share(*t, self.end) > 0.01;
                out.push_str(&format!(
                    "{name}{{service=\"checkout\"}} {} {t}\n",
                    value(bad)
                ));
            }
        }
        out.push_str("# EOF\n");
        out
    }

    /// Bad over all requests between the first and last samples of `[end - window, end]`:
    /// the series share timestamps, so Prometheus's extrapolation cancels in the ratio.
    fn error_ratio(&self, window: u64) -> f64 {
        let increase = |code: &str| {
            let inside: Vec<f64> = self.counters[code]
                .iter()
                .filter(|(t, _)| *t >= self.end - window)
                .map(|(_, v)| *v)
                .collect();
            inside[inside.len() - 1] - inside[0]
        };
        let (bad, ok) = (increase("500"), increase("200"));
        bad / (bad + ok)
    }
}

fn now_minute() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    now - now % STEP - STEP
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/slo")
        .join(name)
}

fn close(a: f64, b: f64) -> bool {
    ((a - b) / b).abs() < 1e-9
}

/// `glidepath slo budget --json` at `at`, for a fixture.
fn budget(file: &str, url: &str, at: u64) -> serde_json::Value {
    budget_of(&fixture(file), url, at)
}

/// `glidepath slo budget --json` at `at`.
fn budget_of(file: &std::path::Path, url: &str, at: u64) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_glidepath"))
        .args(["slo", "budget", "--slo"])
        .arg(file)
        .args(["--prometheus", url, "--at", &at.to_string(), "--json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Prometheus's own answer to hand-written PromQL at `at`.
async fn ask(client: &Client, promql: &str, at: u64) -> f64 {
    client
        .value(promql, Some(at as f64))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no data for {promql}"))
}

/// Every burn rate of a budget against hand-written PromQL over the same windows.
async fn check_burn_rates(
    client: &Client,
    objective: &serde_json::Value,
    at: u64,
    ratio: impl Fn(&str) -> String,
) {
    let budget = objective["budget"].as_f64().unwrap();
    let rates = objective["burn_rates"].as_array().unwrap();
    assert_eq!(rates.len(), 4);
    for pair in rates {
        for (window, rate) in [("long", "long_rate"), ("short", "short_rate")] {
            let w = pair[window].as_str().unwrap();
            let expected = ask(client, &ratio(w), at).await / budget;
            let got = pair[rate].as_f64().unwrap();
            assert!(close(got, expected), "{w}: {got} vs {expected}");
        }
    }
}

fn counter_ratio(range: &str) -> String {
    format!(
        "sum(increase(http_requests_total{{service=\"checkout\",code=\"500\"}}[{range}])) / sum(increase(http_requests_total{{service=\"checkout\"}}[{range}]))"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slo_budget_on_openslo_files_agrees_with_prometheus() {
    let history = generate(now_minute());
    let end = history.end;
    let prom = support::start(&history.openmetrics(), None);
    let client = Client::new(&prom.url).unwrap();

    // Raw counters, two objectives: each its own target, one error ratio.
    let doc = budget("openslo-counters.yaml", &prom.url, end);
    let objectives = doc["objectives"].as_array().unwrap();
    assert_eq!(objectives.len(), 2);
    let by_hand = ask(&client, &counter_ratio("30d"), end).await;
    let by_series = history.error_ratio(30 * 86_400);
    assert!(close(by_hand, by_series), "{by_hand} vs {by_series}");
    for (o, name, target) in [
        (&objectives[0], "three nines", 0.999),
        (&objectives[1], "two nines", 0.99),
    ] {
        assert_eq!(o["objective"], name);
        assert_eq!(o["target"].as_f64().unwrap(), target);
        assert_eq!(o["window"], "30d");
        let ratio = o["error_ratio"].as_f64().unwrap();
        assert!(close(ratio, by_hand), "{name}: {ratio} vs {by_hand}");
        let consumed = by_hand / (1.0 - target);
        assert!(close(o["consumed"].as_f64().unwrap(), consumed), "{o}");
        assert!(
            close(o["remaining"].as_f64().unwrap(), 1.0 - consumed),
            "{o}"
        );
        check_burn_rates(&client, o, end, |w| {
            format!(
                "sum(rate(http_requests_total{{service=\"checkout\",code=~\"5..\"}}[{w}])) / sum(rate(http_requests_total{{service=\"checkout\"}}[{w}]))"
            )
        })
        .await;
    }
    // The 1h window burns at 6% / 0.1% = 60x: three nines pages.
    assert_eq!(objectives[0]["burn_rates"][0]["firing"], true);
    assert!(close(
        objectives[0]["burn_rates"][0]["long_rate"]
            .as_f64()
            .unwrap(),
        history.error_ratio(3600) / 0.001
    ));
    // The top level is the objective closest to running out.
    assert_eq!(doc["objective"], "three nines");
    // A counter of errors that never happened has no series yet: no errors, not no data.
    let dir = tempfile::tempdir().unwrap();
    let never = dir.path().join("never.yaml");
    let text = std::fs::read_to_string(fixture("openslo-timeslices.yaml")).unwrap();
    std::fs::write(
        &never,
        text.replace("code=~\"5..\"", "code=\"503\"").replace(
            "budgetingMethod: Timeslices",
            "budgetingMethod: Occurrences",
        ),
    )
    .unwrap();
    let doc = budget_of(&never, &prom.url, end);
    assert_eq!(doc["error_ratio"], 0.0, "{doc}");
    assert_eq!(doc["remaining"], 1.0, "{doc}");

    // The table names every objective with its own target.
    let text = glidepath(&[
        "slo",
        "budget",
        "--slo",
        fixture("openslo-counters.yaml").to_str().unwrap(),
        "--prometheus",
        &prom.url,
        "--at",
        &end.to_string(),
    ]);
    let heads: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(": target "))
        .map(|l| &l[..l.find(" over ").unwrap()])
        .collect();
    assert_eq!(
        heads,
        vec!["three nines: target 99.9%", "two nines: target 99.0%"],
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thresholds_gauges_timeslices_and_calendar_windows_agree_with_prometheus() {
    let history = generate(now_minute());
    let end = history.end;
    let prom = support::start(&history.openmetrics(), None);
    let client = Client::new(&prom.url).unwrap();

    // Threshold: the share of minutes at or above 500 ms.
    let doc = budget("openslo-threshold.yaml", &prom.url, end);
    let o = &doc["objectives"][0];
    let by_hand = ask(
        &client,
        "1 - avg_over_time((latency_seconds{service=\"checkout\"} < bool 0.5)[7d:1m])",
        end,
    )
    .await;
    // Seven daily bad hours and the last two hours (which may overlap one), of a week.
    let week = 7.0 * 1440.0;
    assert!(
        by_hand > 7.0 * 60.0 / week && by_hand < 9.5 * 60.0 / week,
        "{by_hand}"
    );
    assert!(close(o["error_ratio"].as_f64().unwrap(), by_hand), "{o}");
    assert!(
        close(o["consumed"].as_f64().unwrap(), by_hand / 0.05),
        "{o}"
    );
    check_burn_rates(&client, o, end, |w| {
        format!("1 - avg_over_time((latency_seconds{{service=\"checkout\"}} < bool 0.5)[{w}:1m])")
    })
    .await;

    // Gauges: available over desired replicas, each averaged over the window.
    let gauges = |w: &str| {
        format!(
            "1 - sum(avg_over_time(replicas_available{{service=\"checkout\"}}[{w}])) / sum(avg_over_time(replicas_desired{{service=\"checkout\"}}[{w}]))"
        )
    };
    let doc = budget("openslo-gauges.yaml", &prom.url, end);
    let o = &doc["objectives"][0];
    let by_hand = ask(&client, &gauges("7d"), end).await;
    // A quarter of the replicas down for the bad minutes: about a quarter of their share.
    assert!(
        by_hand > 0.25 * 7.0 * 60.0 / week && by_hand < 0.25 * 9.5 * 60.0 / week,
        "{by_hand}"
    );
    assert!(close(o["error_ratio"].as_f64().unwrap(), by_hand), "{o}");
    check_burn_rates(&client, o, end, gauges).await;

    // Timeslices: the share of 5-minute slices under 95% good.
    let slices = |w: &str| {
        format!(
            "avg_over_time((sum(rate(http_requests_total{{service=\"checkout\",code=\"500\"}}[5m])) / sum(rate(http_requests_total{{service=\"checkout\"}}[5m])) > bool 0.05)[{w}:5m])"
        )
    };
    let doc = budget("openslo-timeslices.yaml", &prom.url, end);
    let o = &doc["objectives"][0];
    let by_hand = ask(&client, &slices("7d"), end).await;
    assert!(by_hand > 0.03 && by_hand < 0.06, "{by_hand}");
    assert!(close(o["error_ratio"].as_f64().unwrap(), by_hand), "{o}");
    assert!(
        close(o["consumed"].as_f64().unwrap(), by_hand / 0.01),
        "{o}"
    );
    check_burn_rates(&client, o, end, slices).await;

    // RatioTimeslices: the mean of the 5-minute slices' error shares.
    let mean = |w: &str| {
        format!(
            "avg_over_time((sum(rate(http_requests_total{{service=\"checkout\",code=\"500\"}}[5m])) / sum(rate(http_requests_total{{service=\"checkout\"}}[5m])))[{w}:5m])"
        )
    };
    let doc = budget("openslo-ratio-timeslices.yaml", &prom.url, end);
    let o = &doc["objectives"][0];
    let by_hand = ask(&client, &mean("7d"), end).await;
    assert!(close(o["error_ratio"].as_f64().unwrap(), by_hand), "{o}");
    check_burn_rates(&client, o, end, mean).await;

    // Calendar month in UTC: from the first of the month to `at`.
    let at = calendar_at(end);
    let month_start = first_of_month(at);
    let doc = budget("openslo-calendar.yaml", &prom.url, at);
    let o = &doc["objectives"][0];
    let elapsed = format!("{}s", at - month_start);
    let by_hand = ask(&client, &counter_ratio(&elapsed), at).await;
    assert!(close(o["error_ratio"].as_f64().unwrap(), by_hand), "{o}");
    assert!(
        close(o["consumed"].as_f64().unwrap(), by_hand / 0.005),
        "{o}"
    );
    let start = time::OffsetDateTime::from_unix_timestamp(month_start as i64).unwrap();
    assert_eq!(
        o["period_start"],
        start
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    );
    let days_in_month = start.month().length(start.year()) as u64;
    assert_eq!(o["window"], format!("{days_in_month}d"));
}

/// `end`, or a day earlier when the month is only hours old (so the window holds data).
fn calendar_at(end: u64) -> u64 {
    if end - first_of_month(end) < 6 * 3600 {
        end - 86_400
    } else {
        end
    }
}

/// 00:00 UTC on the first day of `t`'s month.
fn first_of_month(t: u64) -> u64 {
    let d = time::OffsetDateTime::from_unix_timestamp(t as i64).unwrap();
    let first = d.replace_day(1).unwrap().replace_time(time::Time::MIDNIGHT);
    first.unix_timestamp() as u64
}

/// Runs the real binary and returns its stdout, asserting exit 0.
fn glidepath(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_glidepath"))
        .args(args)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_and_eval_cover_every_objective() {
    let dir = tempfile::tempdir().unwrap();
    let mut counter_rules = String::new();
    for file in [
        "openslo-counters.yaml",
        "openslo-threshold.yaml",
        "openslo-timeslices.yaml",
        "openslo-calendar.yaml",
        "openslo-gauges.yaml",
        "openslo-ratio-timeslices.yaml",
    ] {
        let rules = glidepath(&["slo", "rules", fixture(file).to_str().unwrap()]);
        let path = dir.path().join(file);
        std::fs::write(&path, &rules).unwrap();
        let check = Command::new("promtool")
            .args(["check", "rules"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{file}: {}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        if file == "openslo-counters.yaml" {
            counter_rules = rules;
        }
    }
    assert!(
        counter_rules.contains("objective: '1'") || counter_rules.contains("objective: \"1\""),
        "{counter_rules}"
    );

    let history = generate(now_minute());
    let end = history.end;
    let prom = support::start(&history.openmetrics(), Some(&counter_rules));
    let client = Client::new(&prom.url).unwrap();

    // `slo eval`: each objective's good ratio over the window, judged by its own target.
    let out = glidepath(&[
        "slo",
        "eval",
        "--slo",
        fixture("openslo-counters.yaml").to_str().unwrap(),
        "--prometheus",
        &prom.url,
        "--at",
        &end.to_string(),
        "--window",
        "1h",
        "--json",
    ]);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let good = 1.0 - ask(&client, &counter_ratio("1h"), end).await;
    for (i, target) in [(0, 0.999), (1, 0.99)] {
        let o = &doc["objectives"][i];
        assert!(close(o["value"].as_f64().unwrap(), good), "{o}");
        let status = if good >= target { "pass" } else { "fail" };
        assert_eq!(o["status"], status, "{o}");
    }
    assert_eq!(doc["result"], "fail");

    // The rules, evaluated by Prometheus: three nines pages (60x on 1h and 5m); two nines
    // (6x on 1h) does not.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let firing = loop {
        let alerts = client
            .query("ALERTS{alertstate=\"firing\"}", None)
            .await
            .unwrap();
        let labels: Vec<BTreeMap<String, String>> =
            alerts.iter().map(|a| a.labels.clone()).collect();
        let paged = labels.iter().any(|l| {
            l.get("objective").map(String::as_str) == Some("0")
                && l.get("severity").map(String::as_str) == Some("page")
        });
        if paged || std::time::Instant::now() > deadline {
            break labels;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    assert!(
        firing
            .iter()
            .any(|l| l.get("objective").map(String::as_str) == Some("0")),
        "{firing:?}"
    );
    assert!(
        !firing
            .iter()
            .any(|l| l.get("objective").map(String::as_str) == Some("1")),
        "{firing:?}"
    );
}
