//! Unit tests of `traffic.rs`: the simulated users' metrics as PromQL reads them.

use super::*;
use crate::sandbox::promql::{Evaluator, Value as PValue, parse};

fn entry(rps: f64) -> Entry {
    Entry {
        kind: "Service",
        namespace: "shop".into(),
        name: "checkout".into(),
        rps,
        daily: true,
        simulated: true,
        objective: None,
        budget_spent: None,
        backends: vec![Backend {
            service: "checkout".into(),
            weight: 1.0,
            versions: vec![VersionTarget {
                app: "checkout".into(),
                version: "v1".into(),
                ready: 3,
                behaviour: Behaviour::default(),
                started: Instant::now(),
            }],
        }],
    }
}

fn one(v: PValue) -> f64 {
    match v {
        PValue::Vector(v) if v.len() == 1 => v[0].v,
        other => panic!("{other:?}"),
    }
}

#[test]
fn history_spends_the_scenario_budget() {
    let tel = Telemetry::new(Scenario::named("budget-exhausted").unwrap());
    let now = 1_790_000_000_000;
    backfill(&tel, &entry(20.0), now);
    let db = tel.db();
    let q = parse(r#"sum(increase(http_requests_total{code!="200"}[30d])) / sum(increase(http_requests_total[30d]))"#).unwrap();
    let ratio = one(Evaluator::new(&db).instant(&q, now - now % 60_000).unwrap());
    // 95% of a 0.1% budget.
    assert!((ratio - 0.00095).abs() < 0.00002, "{ratio}");
    let q = parse(
        r#"histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[1h])))"#,
    )
    .unwrap();
    let p99 = one(Evaluator::new(&db).instant(&q, now - now % 60_000).unwrap());
    assert!((0.1..=0.25).contains(&p99), "{p99}");
    // The live counters continue where history ends.
    let c = lock(&tel.counters);
    let total: f64 = c.requests.values().sum();
    assert!(total > 20.0 * 86_400.0 * 29.0, "{total}");
}

#[test]
fn routing_follows_weights_and_readiness() {
    let tel = Telemetry::new(Scenario::default());
    let mut e = entry(0.0);
    let mut canary = e.backends[0].clone();
    canary.service = "checkout-canary".into();
    canary.weight = 0.25;
    canary.versions[0].version = "v2".into();
    canary.versions[0].ready = 1;
    e.backends[0].weight = 0.75;
    e.backends.push(canary);
    let mut rng = Rng::new(1);
    let n = 20_000;
    let v2 = (0..n)
        .filter(|_| tel.route(&e, &mut rng).key.2 == "v2")
        .count();
    let share = v2 as f64 / n as f64;
    assert!((share - 0.25).abs() < 0.02, "{share}");
    e.backends[1].versions[0].ready = 0;
    let codes: Vec<u16> = (0..2_000)
        .map(|_| tel.route(&e, &mut rng))
        .filter(|o| o.key.2 != "v1")
        .map(|o| o.code)
        .collect();
    assert!(!codes.is_empty() && codes.iter().all(|c| *c == 503));
}
