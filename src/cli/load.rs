//! `load URL`: a quick load test, a progress line per second, then a table (or JSON).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::args::LoadArgs;
use super::{Exit, bad_input, infra};
use crate::events::exit;
use crate::loadgen::{Progress, Summary};
use crate::pipeline::model::{LoadRequest, LoadTest};
use crate::units::Span;

/// `load`: the same engine as `test: { load }` in pipelines, driven by flags.
pub(super) async fn load(args: LoadArgs) -> Result<i32, Exit> {
    let test = load_test(&args)?;
    let plan = crate::loadgen::plan_for(&test, Path::new(".")).map_err(bad_input)?;
    let summary = crate::loadgen::run(plan, print_progress)
        .await
        .map_err(bad_input)?;
    if args.json {
        let mut out = serde_json::to_value(&summary).map_err(infra)?;
        if summary.answered == 0 {
            // An empty histogram has no latency; 0 ms would read as a fast service.
            out["latency_ms"] = serde_json::Value::Null;
        }
        println!("{}", serde_json::to_string_pretty(&out).map_err(infra)?);
    } else {
        print_summary(&summary);
    }
    // No data never passes: a test nobody answered exits like an unreachable Prometheus.
    Ok(match summary.no_data() {
        Some(why) => {
            eprintln!("error: {why}; check the URL and that the service is up");
            exit::INFRA
        }
        None => exit::OK,
    })
}

/// The flags as the load test a pipeline would write (10 s unless a ramp says otherwise).
fn load_test(args: &LoadArgs) -> Result<LoadTest, Exit> {
    let requests = requests(args)?;
    let duration = match (&args.duration, args.stages.is_empty()) {
        (None, true) => Some(Duration::from_secs(10)),
        (d, _) => *d,
    };
    Ok(LoadTest {
        url: args.url.clone(),
        duration: duration.map(Span),
        rate: args.rate,
        stages: args.stages.clone(),
        connections: args.connections,
        warmup: args.warmup.map(Span),
        timeout: args.timeout.map(Span),
        http2: args.http2,
        ca_file: args.ca_file.as_ref().map(|p| p.display().to_string()),
        insecure_skip_verify: args.insecure,
        requests,
        thresholds: Default::default(),
    })
}

/// `--requests FILE`'s requests with every `-H` header they do not set, else the one
/// request `-X`, `-H` and `--body` describe.
fn requests(args: &LoadArgs) -> Result<Vec<LoadRequest>, Exit> {
    let mut requests: Vec<LoadRequest> = match &args.requests {
        Some(path) => {
            let text = crate::input::read_text(path)
                .map_err(|e| bad_input(format!("{}: {e}", path.display())))?;
            crate::yaml::from_str(&text)
                .map_err(|e: crate::yaml::Error| bad_input(e.in_file(path)))?
        }
        None => Vec::new(),
    };
    let headers = args
        .headers
        .iter()
        .map(|h| {
            h.split_once(':')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| bad_input(format!("header `{h}`: expected `Name: value`")))
        })
        .collect::<Result<BTreeMap<_, _>, _>>()?;
    if requests.is_empty() {
        requests.push(LoadRequest {
            method: Some(args.method.clone()),
            headers,
            body: args.body.clone(),
            ..LoadRequest::default()
        });
    } else {
        for r in &mut requests {
            for (k, v) in &headers {
                r.headers.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
    Ok(requests)
}

/// One line per second on stderr, so stdout keeps only the summary.
fn print_progress(p: Progress) {
    eprintln!(
        "{:>4}s  {:>7} req/s  errors {:>5.2}%  p50 {:>8.2} ms  p95 {:>8.2} ms  p99 {:>8.2} ms",
        p.second,
        p.requests,
        if p.requests == 0 {
            0.0
        } else {
            100.0 * p.errors as f64 / p.requests as f64
        },
        p.p50_ms,
        p.p95_ms,
        p.p99_ms
    );
}

/// Requests, errors by kind and the latency percentiles, as a table.
fn print_summary(summary: &Summary) {
    let l = &summary.latency_ms;
    println!(
        "requests   {:>10}   ({:.1}/s over {:.1} s)",
        summary.requests, summary.rps, summary.seconds
    );
    println!(
        "errors     {:>10}   ({:.3}%)",
        summary.errors.values().sum::<u64>(),
        summary.error_ratio * 100.0
    );
    for (kind, n) in &summary.errors {
        println!("  {kind:<8} {n:>10}");
    }
    if summary.answered == 0 {
        println!("latency ms   no data (no request was answered)");
        return;
    }
    println!("latency ms        min       p50       p90       p95       p99     p99.9       max");
    println!(
        "           {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
        l.min, l.p50, l.p90, l.p95, l.p99, l.p999, l.max
    );
}
