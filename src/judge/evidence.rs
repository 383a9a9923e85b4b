//! A judgement as data the journal, the cockpit and the reports read: per metric the
//! queries, both samples (summaries and values), the test and its figures, the threshold
//! that decided and the verdict; the group scores and the total. Every field past the
//! first release of these types has a serde default, so older journals load.

use serde::{Deserialize, Serialize};

use super::classifier::{Classification, MetricVerdict};
use super::proportions::{Counts, ProportionTest, ProportionVerdict};
use super::sample::{self, NanStrategy, OutlierStrategy};
use super::score::{Outcome, ScoreVerdict};
use super::show;
use crate::events::Verdict;

/// The most values of one side a comparison keeps (a range query answers at most 11,000).
pub const MAX_VALUES: usize = 2_000;

/// One side's sample.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SampleFacts {
    /// Values compared (missing values and outliers left out).
    #[serde(default)]
    pub count: usize,
    /// Missing values (NaN, or no sample at a step).
    #[serde(default)]
    pub missing: usize,
    /// Mean of the values compared.
    #[serde(default)]
    pub mean: Option<f64>,
    /// Median.
    #[serde(default)]
    pub median: Option<f64>,
    /// 95th percentile.
    #[serde(default)]
    pub p95: Option<f64>,
    /// The samples as queried, in time order (`null`: missing), at most [`MAX_VALUES`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<Option<f64>>,
    /// Error counts only: the requests counted (the sample is the errors among them), so a
    /// replay can compare the counts again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
}

impl SampleFacts {
    /// The facts of `raw` as the judge cleaned it.
    pub fn of(raw: &[Option<f64>], nan: NanStrategy, outliers: OutlierStrategy) -> SampleFacts {
        let c = sample::clean(raw, nan, outliers);
        SampleFacts {
            count: c.summary.count,
            missing: c.summary.missing,
            mean: c.summary.mean,
            median: c.summary.median,
            p95: sample::percentile_sorted(&c.values, 95.0),
            values: raw.iter().take(MAX_VALUES).copied().collect(),
            requests: None,
        }
    }

    /// Errors among requests as a sample of one value.
    fn count(c: Counts) -> SampleFacts {
        let v = c.errors as f64;
        SampleFacts {
            count: 1,
            missing: 0,
            mean: Some(v),
            median: Some(v),
            p95: Some(v),
            values: vec![Some(v)],
            requests: Some(c.total),
        }
    }
}

/// One metric's comparison of canary and baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricComparison {
    /// The metric (an SLI's name, or `error-counts`).
    pub metric: String,
    /// The group it counts in.
    #[serde(default)]
    pub group: String,
    /// The canary's query as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The baseline's query as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_query: Option<String>,
    /// The canary's sample.
    #[serde(default)]
    pub canary: SampleFacts,
    /// The baseline's sample.
    #[serde(default)]
    pub baseline: SampleFacts,
    /// The test: `mann-whitney`, `fisher-exact`, `two-proportion-z`, or `none`.
    #[serde(default)]
    pub test: String,
    /// Its statistic (U for Mann-Whitney).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statistic: Option<f64>,
    /// Its two-sided p-value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
    /// The confidence interval of the shift canary - baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<[f64; 2]>,
    /// The Hodges-Lehmann estimate of the shift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate: Option<f64>,
    /// The effect size (mean ratio, CLES, or the error-rate ratio).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect_size: Option<f64>,
    /// Which effect size.
    #[serde(default)]
    pub effect_size_measure: String,
    /// The threshold that decided (`allowed increase 1.1`).
    #[serde(default)]
    pub threshold: String,
    /// The judge's classification: pass, high, low, nodata, nodata-fail, inconclusive.
    #[serde(default)]
    pub classification: String,
    /// As a verdict: pass; fail (high, low, nodata-fail); warning (inconclusive); error
    /// (no data).
    pub verdict: Verdict,
    /// Its failure fails (its inconclusive result holds) the whole judgement.
    #[serde(default)]
    pub critical: bool,
    /// Why, in a sentence with the numbers.
    #[serde(default)]
    pub reason: String,
}

/// One group's score.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupFacts {
    /// The group.
    pub name: String,
    /// Its weight in percent, when the file gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
    /// Share of its counted metrics that pass, 0-100.
    #[serde(default)]
    pub score: f64,
    /// No metric of it had data.
    #[serde(default)]
    pub no_data: bool,
}

/// A whole judgement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    /// pass, marginal, fail or inconclusive.
    pub outcome: String,
    /// As a verdict: pass, warning (marginal, inconclusive), fail.
    pub verdict: Verdict,
    /// The score, 0-100.
    #[serde(default)]
    pub score: f64,
    /// The scores the inconclusive metrics allow, lowest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<[f64; 2]>,
    /// The lowest passing score.
    #[serde(default)]
    pub pass: f64,
    /// The lowest marginal score.
    #[serde(default)]
    pub marginal: f64,
    /// Why, when something other than the score decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The `version` label of the canary's and the baseline's series.
    #[serde(default)]
    pub versions: [String; 2],
    /// The samples' time range (unix seconds) and step (seconds).
    #[serde(default)]
    pub range_s: [f64; 2],
    /// Seconds between samples.
    #[serde(default)]
    pub step_s: f64,
    /// Per group.
    #[serde(default)]
    pub groups: Vec<GroupFacts>,
    /// Per metric.
    #[serde(default)]
    pub metrics: Vec<MetricComparison>,
}

impl Default for MetricComparison {
    fn default() -> Self {
        MetricComparison {
            metric: String::new(),
            group: String::new(),
            query: None,
            baseline_query: None,
            canary: SampleFacts::default(),
            baseline: SampleFacts::default(),
            test: String::new(),
            statistic: None,
            p_value: None,
            interval: None,
            estimate: None,
            effect_size: None,
            effect_size_measure: String::new(),
            threshold: String::new(),
            classification: String::new(),
            verdict: Verdict::Error,
            critical: false,
            reason: String::new(),
        }
    }
}

/// A classification as a step verdict.
pub fn verdict_of(c: Classification) -> Verdict {
    match c {
        Classification::Pass => Verdict::Pass,
        Classification::High | Classification::Low | Classification::NodataFail => Verdict::Fail,
        Classification::Inconclusive => Verdict::Warning,
        Classification::Nodata => Verdict::Error,
    }
}

/// A judgement's outcome as a step verdict: inconclusive holds like a warning, never passes.
pub fn outcome_verdict(o: Outcome) -> Verdict {
    match o {
        Outcome::Pass => Verdict::Pass,
        Outcome::Marginal | Outcome::Inconclusive => Verdict::Warning,
        Outcome::Fail => Verdict::Fail,
    }
}

/// The outcome's name.
pub fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "pass",
        Outcome::Marginal => "marginal",
        Outcome::Fail => "fail",
        Outcome::Inconclusive => "inconclusive",
    }
}

/// A Mann-Whitney comparison as facts (samples from `raw`, cleaned as the judge did).
pub fn metric_facts(
    v: &MetricVerdict,
    raw: [&[Option<f64>]; 2],
    (nan, outliers): (NanStrategy, OutlierStrategy),
) -> MetricComparison {
    let t = &v.thresholds;
    let threshold = match (v.classification, v.critical) {
        (Classification::High, true) => format!("critical increase {}", show(t.critical_increase)),
        (Classification::High, false) => format!("allowed increase {}", show(t.allowed_increase)),
        (Classification::Low, true) => format!("critical decrease {}", show(t.critical_decrease)),
        (Classification::Low, false) => format!("allowed decrease {}", show(t.allowed_decrease)),
        _ => format!(
            "allowed {}-{}",
            show(t.allowed_decrease),
            show(t.allowed_increase)
        ),
    };
    MetricComparison {
        canary: SampleFacts::of(raw[0], nan, outliers),
        baseline: SampleFacts::of(raw[1], nan, outliers),
        test: if v.test.is_some() {
            "mann-whitney"
        } else {
            "none"
        }
        .into(),
        statistic: v.test.map(|r| r.u),
        p_value: v.test.map(|r| r.p_value),
        interval: v.interval,
        estimate: v.estimate,
        effect_size: v.effect_size,
        effect_size_measure: v.effect_size_measure.name().into(),
        threshold,
        classification: v.classification.name().into(),
        verdict: verdict_of(v.classification),
        critical: v.critical,
        reason: v.reason.clone(),
        ..MetricComparison::default()
    }
}

/// An error-count comparison as facts.
pub fn proportion_facts(
    v: &ProportionVerdict,
    counts: [Counts; 2],
    allowed_increase: f64,
) -> MetricComparison {
    let [c, b] = counts;
    MetricComparison {
        canary: SampleFacts {
            mean: v.canary_rate,
            ..SampleFacts::count(c)
        },
        baseline: SampleFacts {
            mean: v.baseline_rate,
            ..SampleFacts::count(b)
        },
        test: match v.test {
            Some(ProportionTest::FisherExact) => "fisher-exact",
            Some(ProportionTest::TwoProportionZ) => "two-proportion-z",
            None => "none",
        }
        .into(),
        p_value: v.p_value,
        effect_size: v.rate_ratio,
        effect_size_measure: "error-rate ratio".into(),
        threshold: format!("allowed rate ratio {}", show(allowed_increase)),
        classification: v.classification.name().into(),
        verdict: verdict_of(v.classification),
        critical: v.critical,
        reason: format!(
            "{} errors in {} canary requests, {} in {} baseline requests: {}",
            c.errors, c.total, b.errors, b.total, v.reason
        ),
        ..MetricComparison::default()
    }
}

/// The total as facts.
pub fn judgement_facts(
    s: &ScoreVerdict,
    weights: &std::collections::BTreeMap<String, f64>,
    thresholds: super::score::ScoreThresholds,
    metrics: Vec<MetricComparison>,
) -> Judgement {
    Judgement {
        outcome: outcome_name(s.outcome).into(),
        verdict: outcome_verdict(s.outcome),
        score: s.score,
        range: s.range,
        pass: thresholds.pass,
        marginal: thresholds.marginal,
        reason: s.reason.clone(),
        groups: s
            .groups
            .iter()
            .map(|g| GroupFacts {
                name: g.name.clone(),
                weight: weights.get(&g.name).copied(),
                score: g.score,
                no_data: g.no_data,
            })
            .collect(),
        metrics,
        versions: Default::default(),
        range_s: [0.0; 2],
        step_s: 0.0,
    }
}

impl MetricComparison {
    /// `canary mean X vs baseline mean Y` for a line of evidence.
    pub fn value_line(&self) -> String {
        let m = |s: &SampleFacts| s.mean.map_or("no data".into(), show);
        format!(
            "canary {} vs baseline {} (n {}/{})",
            m(&self.canary),
            m(&self.baseline),
            self.canary.count,
            self.baseline.count
        )
    }

    /// The test's figures in a few words: `U 812, p 0.003, shift [1.2, 4.5], est 2.9, mean ratio 1.31`.
    pub fn test_line(&self) -> String {
        let mut parts = vec![self.test.clone()];
        if let Some(u) = self.statistic {
            parts.push(format!("U {}", show(u)));
        }
        if let Some(p) = self.p_value {
            parts.push(format!("p {}", show(p)));
        }
        if let Some([lo, hi]) = self.interval {
            parts.push(format!("interval [{}, {}]", show(lo), show(hi)));
        }
        if let Some(e) = self.estimate {
            parts.push(format!("estimate {}", show(e)));
        }
        if let Some(e) = self.effect_size {
            parts.push(format!("{} {}", self.effect_size_measure, show(e)));
        }
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::{MetricConfig, judge_metric};

    #[test]
    fn a_slower_canary_s_facts_name_the_test_the_threshold_and_the_samples() {
        let baseline: Vec<Option<f64>> = (0..30).map(|i| Some(100.0 + f64::from(i % 7))).collect();
        let canary: Vec<Option<f64>> = (0..30).map(|i| Some(130.0 + f64::from(i % 7))).collect();
        let config = MetricConfig {
            allowed_increase: Some(1.1),
            ..MetricConfig::default()
        };
        let v = judge_metric(&canary, &baseline, &config).unwrap();
        let f = metric_facts(
            &v,
            [&canary, &baseline],
            (config.nan_strategy, config.outliers),
        );
        assert_eq!(f.classification, "high");
        assert_eq!(f.verdict, Verdict::Fail);
        assert_eq!(f.test, "mann-whitney");
        assert_eq!(f.threshold, "allowed increase 1.1");
        assert_eq!(f.canary.count, 30);
        assert_eq!(f.canary.values.len(), 30);
        assert!(f.canary.p95.unwrap() > f.canary.median.unwrap());
        assert!(f.effect_size.unwrap() > 1.25);
        // Journaled and read back with its samples; an old record without the new fields
        // loads.
        let back: MetricComparison =
            serde_json::from_str(&serde_json::to_string(&f).unwrap()).unwrap();
        assert_eq!(back.canary.values, f.canary.values);
        assert_eq!(back.baseline.values, f.baseline.values);
        assert_eq!(
            (back.classification, back.verdict),
            ("high".to_owned(), Verdict::Fail)
        );
        let old: MetricComparison =
            serde_json::from_str(r#"{"metric":"latency","verdict":"pass"}"#).unwrap();
        assert_eq!(old.canary.count, 0);
    }

    #[test]
    fn inconclusive_holds_like_a_warning_and_never_passes() {
        assert_eq!(outcome_verdict(Outcome::Inconclusive), Verdict::Warning);
        assert_eq!(verdict_of(Classification::Inconclusive), Verdict::Warning);
        assert_eq!(verdict_of(Classification::NodataFail), Verdict::Fail);
    }
}
