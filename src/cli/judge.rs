//! `judge --canary FILE --baseline FILE`: one metric judged offline by the statistical judge.

use std::io::Write;
use std::path::Path;

use super::args::JudgeArgs;
use super::{Exit, bad_input, infra};
use crate::events::exit;
use crate::judge::sample::SampleSummary;
use crate::judge::{
    Classification, Direction, EffectSizeMeasure, MetricConfig, MetricVerdict, NanStrategy,
    OutlierStrategy, judge_metric, show,
};

/// Exit code of a verdict that decides nothing: inconclusive, or no data that is not required.
pub(super) const UNDECIDED: i32 = 5;

/// `judge`: prints the verdict and its evidence; exit 0 pass, 1 fail, 5 undecided.
pub(super) fn judge(args: JudgeArgs) -> Result<i32, Exit> {
    let config = config(&args);
    // Options first: a mistake there is reported without reading any file.
    config.thresholds().map_err(bad_input)?;
    let canary = read_samples(&args.canary, "canary")?;
    let baseline = read_samples(&args.baseline, "baseline")?;
    let verdict = judge_metric(&canary, &baseline, &config).map_err(bad_input)?;
    let out = if args.json {
        serde_json::to_string_pretty(&verdict).map_err(infra)? + "\n"
    } else {
        text(&verdict)
    };
    // A closed pipe (`| head`) is the reader's choice, not an error.
    match std::io::stdout().lock().write_all(out.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(infra(e)),
        _ => {}
    }
    Ok(exit_code(&verdict))
}

fn config(args: &JudgeArgs) -> MetricConfig {
    MetricConfig {
        direction: match args.direction.as_str() {
            "increase" => Direction::Increase,
            "decrease" => Direction::Decrease,
            _ => Direction::Either,
        },
        nan_strategy: match args.nan_strategy.as_str() {
            "replace" => NanStrategy::Replace,
            _ => NanStrategy::Remove,
        },
        outliers: match args.outliers.as_str() {
            "remove" => OutlierStrategy::Remove,
            _ => OutlierStrategy::Keep,
        },
        effect_size: match args.effect_size.as_str() {
            "cles" => EffectSizeMeasure::Cles,
            _ => EffectSizeMeasure::MeanRatio,
        },
        allowed_increase: args.allowed_increase,
        allowed_decrease: args.allowed_decrease,
        critical_increase: args.critical_increase,
        critical_decrease: args.critical_decrease,
        critical: args.critical,
        must_have_data: args.must_have_data,
        confidence: args.confidence,
        tolerance: args.tolerance,
        max_spread_ratio: args.max_spread_ratio,
    }
}

/// A sample file: a JSON array of numbers and nulls, read within the input limits.
fn read_samples(path: &Path, side: &str) -> Result<Vec<Option<f64>>, Exit> {
    let name = path.display();
    let text =
        crate::input::read_text(path).map_err(|e| bad_input(format!("--{side} {name}: {e}")))?;
    let shape = "a sample file is a JSON array of numbers, null for a missing sample, e.g. [12.5, 13.1, null]";
    if text.trim().is_empty() {
        return Err(bad_input(format!("{name}: the file is empty; {shape}")));
    }
    serde_json::from_str(&text).map_err(|e| {
        // serde_json's message ends with the position, which leads here instead.
        let message = e.to_string();
        let what = message.split(" at line ").next().unwrap_or(&message);
        // Column 0 is "before the first character" to serde_json; people count from 1.
        let column = e.column().max(1);
        bad_input(format!("{name}:{}:{column}: {what}; {shape}", e.line()))
    })
}

fn exit_code(v: &MetricVerdict) -> i32 {
    match v.classification {
        Classification::Pass => exit::OK,
        Classification::High | Classification::Low | Classification::NodataFail => exit::FAILED,
        Classification::Nodata if v.critical => exit::FAILED,
        Classification::Nodata | Classification::Inconclusive => UNDECIDED,
    }
}

/// The verdict for a person: one labelled line per piece of evidence.
fn text(v: &MetricVerdict) -> String {
    let mut out = String::new();
    let mut line = |label: &str, value: String| out.push_str(&format!("{label:<15} {value}\n"));
    let critical = if v.critical { " (critical)" } else { "" };
    line(
        "classification",
        format!("{}{critical}", v.classification.name()),
    );
    if let (Some([lower, upper]), Some(test)) = (v.interval, v.test) {
        let confidence = show(test.confidence * 100.0);
        line(
            "interval",
            format!(
                "[{}, {}] ({confidence}% confidence, shift = canary - baseline)",
                show(lower),
                show(upper)
            ),
        );
    }
    if let Some(estimate) = v.estimate {
        line("estimate", format!("{} (Hodges-Lehmann)", show(estimate)));
    }
    let measure = match v.effect_size_measure {
        EffectSizeMeasure::MeanRatio => "mean ratio, canary / baseline",
        EffectSizeMeasure::Cles => "CLES, P(canary > baseline)",
    };
    let effect = v
        .effect_size
        .map_or_else(|| "undefined (a mean is 0)".to_owned(), show);
    line("effect size", format!("{effect} ({measure})"));
    if let Some(test) = v.test {
        line(
            "test",
            format!(
                "Mann-Whitney U = {}, p = {}",
                show(test.u),
                show(test.p_value)
            ),
        );
    }
    line("canary", summary(&v.canary));
    line("baseline", summary(&v.baseline));
    if let Some(s) = v.spread {
        let ratio = s.ratio.map_or_else(|| "unbounded".to_owned(), show);
        let change = s.change.name();
        line(
            "spread",
            format!(
                "{change}: mean deviation from the median {} vs {} (ratio {ratio}), Brown-Forsythe p = {}",
                show(s.canary),
                show(s.baseline),
                show(s.p_value)
            ),
        );
    }
    line("reason", v.reason.clone());
    out
}

fn summary(s: &SampleSummary) -> String {
    let mut text = format!("{} values", s.count);
    if let (Some(median), Some(mean)) = (s.median, s.mean) {
        text.push_str(&format!(" (median {}, mean {})", show(median), show(mean)));
    }
    if s.missing > 0 {
        let fate = if s.replaced > 0 {
            "counted as 0"
        } else {
            "left out"
        };
        text.push_str(&format!(", {} missing {fate}", s.missing));
    }
    if s.outliers > 0 {
        let plural = if s.outliers == 1 { "" } else { "s" };
        text.push_str(&format!(", {} outlier{plural} left out", s.outliers));
    }
    text
}
