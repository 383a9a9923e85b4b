//! `test: { load }`: the built-in load generator against a URL; its results are SLIs
//! (`load.error_ratio`, `load.rps`, `load.latency_p50_ms` ... `load.latency_p99_ms`) and
//! the step's thresholds judge them: a latency or error limit is a maximum, `rps` a minimum.

use super::{StepCtx, StepResult};
use crate::events::{Evidence, Verdict};
use crate::pipeline::model::LoadTest;

/// Runs a load test step.
pub async fn run(step: &LoadTest, ctx: &mut StepCtx) -> StepResult {
    let plan = match crate::loadgen::plan_for(step, &ctx.base_dir) {
        Ok(p) => p,
        Err(e) => return StepResult::failed(e),
    };
    let io = ctx.io.clone();
    let summary = match crate::loadgen::run(plan, move |p| {
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
    let mut evidence = Vec::new();
    let mut breached = Vec::new();
    for (name, value) in &slis {
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
