//! `test: { load }`: the built-in load generator; its results are SLIs (`load.error_ratio`,
//! `load.rps`, `load.latency_p50_ms`, `_p90_`, `_p95_`, `_p99_`, `_p999_`, `_max_ms`) that
//! the step's thresholds judge (a latency or error limit is a maximum, `rps` a minimum) and
//! that later `evaluate` steps and canary analyses of the stage read.

use super::{StepCtx, StepResult};
use crate::events::{Evidence, Verdict};
use crate::pipeline::model::LoadTest;

/// Runs a load test step.
pub async fn run(step: &LoadTest, ctx: &mut StepCtx) -> StepResult {
    let mut plan = match crate::loadgen::plan_for(step, &ctx.base_dir) {
        Ok(p) => p,
        Err(e) => return StepResult::failed(e),
    };
    if ctx.target.is_some() {
        let mut endpoints = super::endpoints::ServiceEndpoints::new(ctx, "load").await;
        for r in &mut plan.requests {
            if let Some(url) = endpoints.rewrite(&r.url).await {
                r.url = url;
            }
        }
    }
    let io = ctx.io.clone();
    let board = ctx.measured.clone();
    let summary = match crate::loadgen::run(plan, move |p| {
        // Gates running beside the test (a canary's analysis) see its figures so far.
        board.publish(&p.so_far.slis());
        io.log(
            "load",
            format!(
                "{}s: {} req/s, {} errors, p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms",
                p.second, p.requests, p.errors, p.p50_ms, p.p95_ms, p.p99_ms
            ),
        );
    })
    .await
    {
        Ok(s) => s,
        Err(e) => return StepResult::failed(e),
    };
    let slis = summary.slis();
    ctx.measured.publish(&slis);
    ctx.io.measured(slis.clone());
    let (evidence, breached) = thresholds(step, &slis);
    for (kind, n) in &summary.errors {
        ctx.io.log("load", format!("errors {kind}: {n}"));
    }
    let headline = format!(
        "{} requests at {:.1}/s, {:.2}% errors, p95 {:.1} ms, p99 {:.1} ms",
        summary.requests,
        summary.rps,
        summary.error_ratio * 100.0,
        summary.latency_ms.p95,
        summary.latency_ms.p99
    );
    if breached.is_empty() {
        StepResult::judged(Verdict::Pass, headline, evidence)
    } else {
        StepResult::judged(
            Verdict::Fail,
            format!("{headline}; over the limit: {}", breached.join(", ")),
            evidence,
        )
    }
}

/// Each result against its threshold (a latency or error limit is a maximum, `rps` a
/// minimum; without one it passes): the evidence, and a line per breach.
fn thresholds(
    step: &LoadTest,
    slis: &std::collections::BTreeMap<String, f64>,
) -> (Vec<Evidence>, Vec<String>) {
    let mut evidence = Vec::new();
    let mut breached = Vec::new();
    for (name, value) in slis {
        let short = name.trim_start_matches("load.");
        let limit = step
            .thresholds
            .get(short)
            .or_else(|| step.thresholds.get(name.as_str()))
            .copied();
        let (verdict, expected) = match limit {
            Some(l) if short == "rps" => (
                if *value >= l {
                    Verdict::Pass
                } else {
                    Verdict::Fail
                },
                Some(format!(">={l}")),
            ),
            Some(l) => (
                if *value <= l {
                    Verdict::Pass
                } else {
                    Verdict::Fail
                },
                Some(format!("<={l}")),
            ),
            None => (Verdict::Pass, None),
        };
        if verdict == Verdict::Fail {
            breached.push(format!(
                "{name} = {value:.3} (limit {})",
                expected.clone().unwrap_or_default()
            ));
        }
        evidence.push(Evidence {
            expected,
            ..Evidence::new(name.clone(), verdict, format!("{value:.3}"))
        });
    }
    (evidence, breached)
}
