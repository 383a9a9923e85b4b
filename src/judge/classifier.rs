//! One metric's verdict: canary against baseline, as Kayenta's Mann-Whitney classifier decides
//! it, with the evidence, plus the outcomes Kayenta lacks (inconclusive, spread).

use serde::Serialize;

use super::config::{ConfigError, EffectSizeMeasure, MetricConfig, Thresholds};
use super::mannwhitney::{self, MannWhitneyError};
use super::sample::{self, SampleSummary};
use super::show;
use super::spread::{self, SpreadChange, SpreadEvidence};

/// A metric's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Classification {
    /// No shift that matters.
    Pass,
    /// The canary is higher than the baseline (or, with a spread limit, more spread out).
    High,
    /// The canary is lower.
    Low,
    /// A sample has no data; left out of the score (Kayenta's `Nodata`).
    Nodata,
    /// A sample has no data and the metric must have data: a failure (`NodataFailMetric`).
    NodataFail,
    /// Too few samples (or unusable values) to tell: the release waits for an operator.
    Inconclusive,
}

impl Classification {
    /// Its name as output writes it.
    pub fn name(self) -> &'static str {
        match self {
            Classification::Pass => "pass",
            Classification::High => "high",
            Classification::Low => "low",
            Classification::Nodata => "nodata",
            Classification::NodataFail => "nodata-fail",
            Classification::Inconclusive => "inconclusive",
        }
    }
}

/// The Mann-Whitney test's figures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RankTest {
    /// U of the canary: pairs with the canary value above the baseline's, ties counting 1/2.
    pub u: f64,
    /// Two-sided p-value of "no shift".
    pub p_value: f64,
    /// Confidence of the interval.
    pub confidence: f64,
}

/// A metric's verdict with the evidence that decided it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricVerdict {
    /// The verdict.
    pub classification: Classification,
    /// Whether this verdict fails the whole judgement (a critical metric's failure or missing
    /// data).
    pub critical: bool,
    /// Why, in a sentence with the numbers.
    pub reason: String,
    /// Confidence interval of the shift `canary - baseline`.
    pub interval: Option<[f64; 2]>,
    /// The Hodges-Lehmann estimate of the shift.
    pub estimate: Option<f64>,
    /// The effect size in `effect_size_measure` (absent when undefined, e.g. a mean of 0).
    pub effect_size: Option<f64>,
    /// Which effect size.
    pub effect_size_measure: EffectSizeMeasure,
    /// Canary mean / baseline mean whatever the measure (Kayenta's `deviation`).
    pub mean_ratio: Option<f64>,
    /// The band `±tolerance * |estimate|` the interval must clear.
    pub clearance: Option<f64>,
    /// The rank test's figures.
    pub test: Option<RankTest>,
    /// The thresholds in force.
    pub thresholds: Thresholds,
    /// The canary sample.
    pub canary: SampleSummary,
    /// The baseline sample.
    pub baseline: SampleSummary,
    /// The spread check (absent with fewer than 2 values a side).
    pub spread: Option<SpreadEvidence>,
}

/// Judges `canary` against `baseline` (`None` or NaN: a missing sample) under `config`.
/// Only the configuration can be wrong; every sample, however degenerate, gets a verdict.
pub fn judge_metric(
    canary: &[Option<f64>],
    baseline: &[Option<f64>],
    config: &MetricConfig,
) -> Result<MetricVerdict, ConfigError> {
    let thresholds = config.thresholds()?;
    let c = sample::clean(canary, config.nan_strategy, config.outliers);
    let b = sample::clean(baseline, config.nan_strategy, config.outliers);
    let mean_ratio = mean_ratio(&c.values, &b.values);
    let mut v = MetricVerdict {
        classification: Classification::Pass,
        critical: false,
        reason: String::new(),
        interval: None,
        estimate: None,
        effect_size: None,
        effect_size_measure: config.effect_size,
        mean_ratio,
        clearance: None,
        test: None,
        thresholds,
        canary: c.summary,
        baseline: b.summary,
        spread: None,
    };
    if let Some(side) = [("canary", &c.values), ("baseline", &b.values)]
        .into_iter()
        .find(|(_, values)| values.is_empty())
        .map(|(side, _)| side)
    {
        return Ok(no_data(v, config, side));
    }
    if let Some(side) = [("canary", &c.values), ("baseline", &b.values)]
        .into_iter()
        .find(|(_, values)| values.iter().any(|x| !x.is_finite()))
        .map(|(side, _)| side)
    {
        let reason =
            format!("the {side} has an infinite value; the judge compares finite numbers only");
        return Ok(inconclusive(v, config, reason));
    }
    if let Some(reason) = no_difference(&c.values, &b.values) {
        v.effect_size = Some(config.effect_size.neutral());
        v.mean_ratio = Some(1.0);
        v.reason = reason;
        return Ok(v);
    }
    let alpha = 1.0 - config.confidence;
    let (n, m) = (c.values.len(), b.values.len());
    if min_p_value(n, m) > alpha {
        let reason = format!(
            "too few samples to tell: with {n} canary and {m} baseline values no difference could reach {}% confidence; gather more samples",
            show(config.confidence * 100.0)
        );
        return Ok(inconclusive(v, config, reason));
    }
    v.spread = spread::brown_forsythe(&c.values, &b.values, config.confidence);
    match compare(&c.values, &b.values, config, &thresholds, v.mean_ratio) {
        Ok(comparison) => Ok(decide(v, config, comparison)),
        Err(e) => {
            let reason = format!("the values are too large to compare ({e})");
            Ok(inconclusive(v, config, reason))
        }
    }
}

/// A sample with nothing left to compare: Kayenta's NoData rules.
fn no_data(mut v: MetricVerdict, config: &MetricConfig, side: &str) -> MetricVerdict {
    let summary = if side == "canary" {
        &v.canary
    } else {
        &v.baseline
    };
    v.reason = if summary.missing > 0 {
        format!(
            "no {side} data: all {} of its samples are missing",
            summary.missing
        )
    } else {
        format!("no {side} data: the sample is empty")
    };
    if config.must_have_data && !config.critical {
        v.classification = Classification::NodataFail;
        v.reason.push_str("; the metric must have data");
    } else {
        v.classification = Classification::Nodata;
        v.critical = config.critical;
        if config.critical {
            v.reason.push_str("; the metric is critical");
        }
    }
    v
}

/// Inconclusive; a critical metric's inconclusive verdict holds the whole judgement.
fn inconclusive(mut v: MetricVerdict, config: &MetricConfig, reason: String) -> MetricVerdict {
    v.classification = Classification::Inconclusive;
    v.critical = config.critical;
    v.reason = reason;
    v
}

/// Why two samples do not differ at all, if they do not: the same values, or one value
/// throughout.
fn no_difference(c: &[f64], b: &[f64]) -> Option<String> {
    // Both sorted ([`sample::clean`]).
    if c == b {
        return Some(format!(
            "canary and baseline are identical ({} values each)",
            c.len()
        ));
    }
    let first = *c.first()?;
    if c.iter().chain(b).all(|x| *x == first) {
        return Some(format!(
            "every value is {} ({} canary, {} baseline): no difference",
            show(first),
            c.len(),
            b.len()
        ));
    }
    None
}

/// The smallest two-sided p-value the exact rank test can reach with `n` and `m` values:
/// `2 / C(n + m, n)` (every canary value above every baseline value); ties only raise it.
pub fn min_p_value(n: usize, m: usize) -> f64 {
    let (small, total) = (n.min(m), n + m);
    let mut combinations = 1.0f64;
    for i in 0..small {
        combinations = combinations * (total - i) as f64 / (i + 1) as f64;
        if combinations > 1e12 {
            break;
        }
    }
    (2.0 / combinations).min(1.0)
}

fn mean_ratio(canary: &[f64], baseline: &[f64]) -> Option<f64> {
    let (c, b) = (sample::mean(canary)?, sample::mean(baseline)?);
    (c != 0.0 && b != 0.0 && c.is_finite() && b.is_finite()).then(|| c / b)
}

/// What the test found, before the critical rules.
struct Comparison {
    classification: Classification,
    lower: f64,
    upper: f64,
    estimate: f64,
    clearance: f64,
    effect_size: Option<f64>,
    test: RankTest,
    why: String,
}

/// The test and Kayenta's rule: the interval must clear `±tolerance * |estimate|` on the
/// watched side, and the effect size must reach the allowed threshold (when defined).
fn compare(
    canary: &[f64],
    baseline: &[f64],
    config: &MetricConfig,
    t: &Thresholds,
    mean_ratio: Option<f64>,
) -> Result<Comparison, MannWhitneyError> {
    let (lower, upper, estimate, u, p_value) = shift(canary, baseline, config.confidence)?;
    let nm = (canary.len() * baseline.len()) as f64;
    let effect_size = match config.effect_size {
        EffectSizeMeasure::MeanRatio => mean_ratio,
        EffectSizeMeasure::Cles => Some(u / nm),
    };
    let clearance = config.tolerance * estimate.abs();
    let test = RankTest {
        u,
        p_value,
        confidence: config.confidence,
    };
    let mut c = Comparison {
        classification: Classification::Pass,
        lower,
        upper,
        estimate,
        clearance,
        effect_size,
        test,
        why: String::new(),
    };
    (c.classification, c.why) = classify_shift(&c, config, t);
    Ok(c)
}

/// Kayenta's rule on a computed shift: the verdict and why.
fn classify_shift(
    c: &Comparison,
    config: &MetricConfig,
    t: &Thresholds,
) -> (Classification, String) {
    let above = c.lower > c.clearance;
    let below = c.upper < -c.clearance;
    let big_up = c.effect_size.is_none_or(|e| e >= t.allowed_increase);
    let big_down = c.effect_size.is_none_or(|e| e <= t.allowed_decrease);
    let measure = config.effect_size.name();
    let effect = c.effect_size.map_or_else(|| "undefined".to_owned(), show);
    let clearance = show(c.clearance);
    let watches = (
        config.direction.watches_increase(),
        config.direction.watches_decrease(),
    );
    if above && big_up && watches.0 {
        let why = format!(
            "the canary is higher: the interval lies above +{clearance} and the {measure} {effect} reaches the allowed increase {}",
            show(t.allowed_increase)
        );
        (Classification::High, why)
    } else if below && big_down && watches.1 {
        let why = format!(
            "the canary is lower: the interval lies below -{clearance} and the {measure} {effect} reaches the allowed decrease {}",
            show(t.allowed_decrease)
        );
        (Classification::Low, why)
    } else if above && !watches.0 {
        (
            Classification::Pass,
            "the canary is higher, which the direction (decrease) allows".to_owned(),
        )
    } else if below && !watches.1 {
        (
            Classification::Pass,
            "the canary is lower, which the direction (increase) allows".to_owned(),
        )
    } else if above || below {
        let limit = if above {
            t.allowed_increase
        } else {
            t.allowed_decrease
        };
        let why = format!(
            "the shift is significant but its {measure} {effect} is within the allowed {}",
            show(limit)
        );
        (Classification::Pass, why)
    } else {
        let why = format!(
            "no shift beyond ±{clearance} (tolerance {} of |estimate|)",
            show(config.tolerance)
        );
        (Classification::Pass, why)
    }
}

/// Interval, estimate, U and p-value; samples that are each one number (but not the same
/// one) shift by exactly their difference, where Kayenta adds noise to find an interval.
fn shift(
    canary: &[f64],
    baseline: &[f64],
    confidence: f64,
) -> Result<(f64, f64, f64, f64, f64), MannWhitneyError> {
    match mannwhitney::mann_whitney(canary, baseline, confidence) {
        Ok(r) => Ok((r.lower, r.upper, r.estimate, r.u, r.p_value)),
        Err(MannWhitneyError::Constant) => {
            let (u, p) = mannwhitney::rank_test(canary, baseline)?;
            // rank_test refuses empty samples, so both have a first value.
            let d = match (canary.first(), baseline.first()) {
                (Some(c), Some(b)) => c - b,
                _ => return Err(MannWhitneyError::Empty),
            };
            if d.is_finite() {
                Ok((d, d, d, u, p))
            } else {
                Err(MannWhitneyError::NotFinite)
            }
        }
        Err(e) => Err(e),
    }
}

/// The verdict: Kayenta's critical rules, then the spread limit.
fn decide(mut v: MetricVerdict, config: &MetricConfig, c: Comparison) -> MetricVerdict {
    let t = v.thresholds;
    v.interval = Some([c.lower, c.upper]);
    v.estimate = Some(c.estimate);
    v.effect_size = c.effect_size;
    v.clearance = Some(c.clearance);
    v.test = Some(c.test);
    v.classification = c.classification;
    let interval = format!(
        "{}% interval of the shift [{}, {}], estimate {}",
        show(config.confidence * 100.0),
        show(c.lower),
        show(c.upper),
        show(c.estimate)
    );
    v.reason = format!("{}; {interval}", c.why);
    let severe = match c.classification {
        Classification::High => c.effect_size.is_none_or(|e| e >= t.critical_increase),
        Classification::Low => c.effect_size.is_none_or(|e| e <= t.critical_decrease),
        _ => false,
    };
    if config.critical && severe {
        v.critical = true;
        v.reason.push_str("; the metric is critical");
    }
    if let (Some(limit), Some(s), Classification::Pass) =
        (config.max_spread_ratio, v.spread, v.classification)
        && s.change == SpreadChange::Wider
        && s.ratio.is_none_or(|r| r >= limit)
    {
        v.classification = Classification::High;
        v.critical = config.critical;
        v.reason = format!(
            "the canary is more spread out: mean deviation from the median {} against {} (ratio {}, limit {}), Brown-Forsythe p = {}; {interval}",
            show(s.canary),
            show(s.baseline),
            s.ratio.map_or_else(|| "unbounded".to_owned(), show),
            show(limit),
            show(s.p_value)
        );
    }
    v
}

#[cfg(test)]
#[path = "classifier_tests.rs"]
mod tests;
