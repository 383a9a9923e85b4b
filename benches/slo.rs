//! Quality-gate figures for BENCHMARKS.md: scoring an SLO with 50 objectives against 20
//! earlier evaluations (no queries), and a whole gate against a real Prometheus (its
//! queries included).
//!
//! Run: `cargo bench --bench slo` (release build; needs Debian's prometheus and promtool).

use std::collections::BTreeMap;
use std::process::Command;

#[path = "../tests/support/prometheus.rs"]
mod support;
use std::time::{Duration, Instant};

use glidepath::events::Verdict;
use glidepath::slo::{
    Aggregate, CompareWith, Comparison, Format, HistoryEntry, IncludeResults, Objective, Slo,
    TotalScore, criteria, evaluate, live,
};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn big_slo() -> Slo {
    let c = |t: &str| criteria::parse(t).unwrap();
    let objectives = (0..50)
        .map(|i| Objective {
            sli: format!("sli_{i}"),
            display_name: None,
            pass: vec![vec![c("<=+10%"), c("<600")], vec![c("<100")]],
            warning: vec![vec![c("<=800")]],
            weight: 1.0 + (i % 3) as f64,
            key_sli: i % 10 == 0,
        })
        .collect();
    Slo {
        name: "big".into(),
        format: Format::Glidepath,
        slis: BTreeMap::new(),
        objectives,
        total_score: TotalScore {
            pass: 90.0,
            warning: Some(75.0),
        },
        comparison: Comparison {
            compare_with: CompareWith::SeveralResults,
            number_of_results: 20,
            include: IncludeResults::PassOrWarn,
            aggregate: Aggregate::P90,
        },
        service_levels: Vec::new(),
    }
}

fn scoring() {
    let slo = big_slo();
    let values: BTreeMap<String, Option<f64>> = (0..50)
        .map(|i| (format!("sli_{i}"), Some(400.0 + i as f64)))
        .collect();
    let history: Vec<HistoryEntry> = (0..20)
        .map(|h| HistoryEntry {
            result: if h % 4 == 0 {
                Verdict::Warning
            } else {
                Verdict::Pass
            },
            sli_values: (0..50)
                .map(|i| (format!("sli_{i}"), Some(380.0 + (h * i % 40) as f64)))
                .collect(),
            invalid: false,
        })
        .collect();
    let mut times = Vec::new();
    for _ in 0..2000 {
        let t = Instant::now();
        let e = evaluate(&slo, &values, &history);
        times.push(t.elapsed());
        assert_eq!(e.objectives.len(), 50);
    }
    println!(
        "score an SLO: 50 objectives, 20 history entries: median {:.3} ms over {} evaluations (target < 1 ms)",
        ms(median(times.clone())),
        times.len()
    );
}

fn full_gate() {
    if Command::new("prometheus")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("full gate: skipped, prometheus is not installed (apt-get install -y prometheus)");
        return;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let end = now - now % 60 - 60;
    let mut om = String::from("# TYPE http_requests_total counter\n");
    for (code, rps) in [("200", 9.99), ("500", 0.01)] {
        let mut v = 0.0;
        for t in (end - 6 * 3600..=end).step_by(60) {
            v += rps * 60.0;
            om.push_str(&format!(
                "http_requests_total{{service=\"checkout\",code=\"{code}\"}} {v} {t}\n"
            ));
        }
    }
    om.push_str("# EOF\n");
    let prom = support::start(&om, None);
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = glidepath::metrics::Client::new(&prom.url).unwrap();
        let path = dir.path().join("slo.yaml");
        std::fs::write(
            &path,
            "apiVersion: glidepath/v1\nkind: SLO\nmetadata: { name: checkout }\nspec:\n  slis:\n    error_ratio: sum(rate(http_requests_total{service=\"${service}\",code=~\"5..\"}[${window}])) / sum(rate(http_requests_total{service=\"${service}\"}[${window}]))\n    throughput: sum(rate(http_requests_total{service=\"${service}\"}[${window}]))\n  objectives:\n    - sli: error_ratio\n      pass: [\"<=0.01\"]\n    - sli: throughput\n      pass: [\">=1\"]\n",
        )
        .unwrap();
        let slo = Slo::load(&path, None).unwrap();
        let vars = BTreeMap::from([("service".to_owned(), "checkout".to_owned())]);
        let mut times = Vec::new();
        for _ in 0..50 {
            let t = Instant::now();
            let values = live::measure(&slo, live::Sources::only(&client), &vars, Duration::from_secs(300), Some(end as f64)).await.unwrap();
            let e = evaluate(&slo, &values, &[]);
            times.push(t.elapsed());
            assert_eq!(e.result, Verdict::Pass);
        }
        println!("full gate against a local Prometheus (2 SLIs, 2 queries): median {:.2} ms over {} gates", ms(median(times.clone())), times.len());
    });
    drop(prom);
}

fn main() {
    scoring();
    full_gate();
}
