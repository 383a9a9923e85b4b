//! `test: { load }`: the built-in load generator; its results are SLIs (`load.error_ratio`,
//! `load.rps`, `load.latency_p50_ms`, `_p90_`, `_p95_`, `_p99_`, `_p999_`, `_max_ms`) that
//! the step's thresholds judge (a latency or error limit is a maximum, `rps` a minimum) and
//! that later `evaluate` steps and canary analyses of the stage read. An SLI without data
//! (no answered request has no latency) is an `error`, and so is a test the target
//! answered none of: no data never passes.

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
    ctx.io.measured(
        slis.iter()
            .filter_map(|(k, v)| Some((k.clone(), (*v)?)))
            .collect(),
    );
    for (kind, n) in &summary.errors {
        ctx.io.log("load", format!("errors {kind}: {n}"));
    }
    let judged = thresholds(step, &slis);
    let headline = match summary.no_data() {
        Some(why) => format!("{} requests, {why}", summary.requests),
        None => format!(
            "{} requests at {:.1}/s, {:.2}% errors, p95 {:.1} ms, p99 {:.1} ms",
            summary.requests,
            summary.rps,
            summary.error_ratio * 100.0,
            summary.latency_ms.p95,
            summary.latency_ms.p99
        ),
    };
    verdict(headline, summary.answered == 0, judged)
}

/// What the thresholds found: evidence, breaches and SLIs without data.
struct Judged {
    evidence: Vec<Evidence>,
    breached: Vec<String>,
    no_data: Vec<String>,
}

/// A breach fails; no data, or a test nobody answered, is an error whatever else passed.
fn verdict(headline: String, unanswered: bool, j: Judged) -> StepResult {
    if !j.no_data.is_empty() || unanswered {
        let named = if j.no_data.is_empty() {
            String::new()
        } else {
            format!("; no data for {}", j.no_data.join(", "))
        };
        return StepResult::judged(
            Verdict::Error,
            format!("{headline}{named}: no data never passes"),
            j.evidence,
        );
    }
    if j.breached.is_empty() {
        StepResult::judged(Verdict::Pass, headline, j.evidence)
    } else {
        StepResult::judged(
            Verdict::Fail,
            format!("{headline}; over the limit: {}", j.breached.join(", ")),
            j.evidence,
        )
    }
}

/// Each result against its threshold (a latency or error limit is a maximum, `rps` a
/// minimum; without one it passes; with one and no data it is an error).
fn thresholds(step: &LoadTest, slis: &std::collections::BTreeMap<String, Option<f64>>) -> Judged {
    let mut j = Judged {
        evidence: Vec::new(),
        breached: Vec::new(),
        no_data: Vec::new(),
    };
    for (name, value) in slis {
        let short = name.trim_start_matches("load.");
        let limit = step
            .thresholds
            .get(short)
            .or_else(|| step.thresholds.get(name.as_str()))
            .copied();
        let expected = limit.map(|l| {
            if short == "rps" {
                format!(">={l}")
            } else {
                format!("<={l}")
            }
        });
        let verdict = match (limit, value) {
            (None, _) => Verdict::Pass,
            (Some(_), None) => Verdict::Error,
            (Some(l), Some(v)) if short == "rps" && *v >= l => Verdict::Pass,
            (Some(l), Some(v)) if short != "rps" && *v <= l => Verdict::Pass,
            (Some(_), Some(_)) => Verdict::Fail,
        };
        let shown = value
            .map(|v| format!("{v:.3}"))
            .unwrap_or_else(|| "no data".to_owned());
        match verdict {
            Verdict::Fail => j.breached.push(format!(
                "{name} = {shown} (limit {})",
                expected.clone().unwrap_or_default()
            )),
            Verdict::Error => j.no_data.push(name.clone()),
            _ => {}
        }
        j.evidence.push(Evidence {
            expected,
            ..Evidence::new(name.clone(), verdict, shown)
        });
    }
    j
}
