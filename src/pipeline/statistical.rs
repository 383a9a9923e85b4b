//! `analysis.judge: statistical`: the canary compared with a fresh baseline of the stable
//! version, per metric, by the statistical judge (`crate::judge`), instead of each SLI
//! against a fixed threshold. The file's form and its load-time checks.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::judge::proportions::ProportionConfig;
use crate::judge::score::ScoreThresholds;
use crate::judge::{Direction, EffectSizeMeasure, MetricConfig, NanStrategy, OutlierStrategy};
use crate::units::{Percent, Span};

/// Which judge decides an analysis.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum JudgeKind {
    /// Every SLI against the SLO's fixed targets.
    #[default]
    Thresholds,
    /// The canary against a fresh baseline, per metric, by a Mann-Whitney test.
    Statistical,
}

impl JudgeKind {
    /// Whether this is the default (left out when written back).
    pub fn is_thresholds(&self) -> bool {
        *self == JudgeKind::Thresholds
    }
}

/// The statistical judge's settings (`analysis.statistical`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Statistical {
    /// The `version` label value of the baseline's pods (and so `${version}` in the
    /// baseline's queries). Default `baseline`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_version: Option<String>,
    /// How far back each judgement takes samples. Default 1m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookback: Option<Span>,
    /// Time between two samples of a metric (the range query's step). Default 10s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<Span>,
    /// `${window}` in the queries: the rate window of one sample. Default: `step`. Never
    /// longer than `step`: samples whose windows overlap share requests, and the rank test
    /// would take one slow burst for several independent values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_window: Option<Span>,
    /// The SLIs judged (by the SLO's SLI name) and how. Default: every SLI the SLO's
    /// objectives use, with the judge's defaults and `direction: increase`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, JudgedMetric>,
    /// Group weights in percent (groups without one share what is left).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub groups: BTreeMap<String, f64>,
    /// Score thresholds. Default pass 95, marginal 75 (Kayenta's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<ScoreLimits>,
    /// Error counts compared as two proportions (requests and errors of each side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<ErrorCounts>,
}

/// One judged metric.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JudgedMetric {
    /// The group it counts in (default `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Which way of moving fails (default `increase`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// Missing samples: `remove` (default) or `replace` (by 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nan_strategy: Option<NanStrategy>,
    /// `keep` (default) or `remove` values beyond the IQR fences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outliers: Option<OutlierStrategy>,
    /// `mean-ratio` (default) or `cles`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect_size: Option<EffectSizeMeasure>,
    /// A significant increase fails only at this effect size or above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_increase: Option<f64>,
    /// A significant decrease fails only at this effect size or below.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_decrease: Option<f64>,
    /// A critical metric's increase this large fails the whole judgement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical_increase: Option<f64>,
    /// A critical metric's decrease this large fails the whole judgement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical_decrease: Option<f64>,
    /// Its failure fails the whole judgement.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub critical: bool,
    /// Missing data fails it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub must_have_data: bool,
    /// Confidence of the interval, in (0, 1). Default 0.98.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// Share of |estimate| the interval must clear zero by. Default 0.25.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
    /// A canary spread wider than the baseline's by this ratio (significantly) fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_spread_ratio: Option<f64>,
}

/// Score thresholds, 0-100.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScoreLimits {
    /// Lowest passing score.
    pub pass: f64,
    /// Lowest marginal score (held for the operator).
    pub marginal: f64,
}

/// Error counts of each side over the lookback, compared as two proportions.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ErrorCounts {
    /// The SLO's SLI that counts the requests of `${version}` over `${window}` (filled
    /// with the lookback), e.g. `sum(increase(http_requests_total{...}[${window}]))`.
    pub requests: String,
    /// The SLO's SLI that counts the failed requests of `${version}` over `${window}`.
    pub errors: String,
    /// The group it counts in (default `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// A significant increase fails only when canary rate / baseline rate is at least this
    /// (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_increase: Option<f64>,
    /// Its failure fails the whole judgement.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub critical: bool,
    /// Confidence, in (0, 1). Default 0.98.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// An error rate the canary may have whatever the baseline's (`0.5%`): when even the
    /// top of the canary's interval is under it, the counts pass (errors too rare to
    /// compare never hold a release). Default: none, every rate is compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor: Option<Percent>,
}

/// The name of the metric error counts are judged under.
pub const ERROR_COUNTS: &str = "error-counts";
/// The baseline's `version` label unless the file names another.
pub const DEFAULT_BASELINE_VERSION: &str = "baseline";

impl Statistical {
    /// The baseline's `version` label.
    pub fn baseline_version(&self) -> &str {
        self.baseline_version
            .as_deref()
            .unwrap_or(DEFAULT_BASELINE_VERSION)
    }

    /// How far back samples go.
    pub fn lookback(&self) -> std::time::Duration {
        self.lookback
            .map_or(std::time::Duration::from_secs(60), Span::get)
    }

    /// The range query's step.
    pub fn step(&self) -> std::time::Duration {
        self.step
            .map_or(std::time::Duration::from_secs(10), Span::get)
    }

    /// `${window}` of one sample.
    pub fn rate_window(&self) -> std::time::Duration {
        self.rate_window.map_or(self.step(), Span::get)
    }

    /// The score thresholds.
    pub fn thresholds(&self) -> ScoreThresholds {
        let s = self.score.unwrap_or(ScoreLimits {
            pass: 95.0,
            marginal: 75.0,
        });
        ScoreThresholds {
            pass: s.pass,
            marginal: s.marginal,
        }
    }

    /// The proportion test's options, when error counts are judged.
    pub fn proportions(&self) -> Option<ProportionConfig> {
        self.errors.as_ref().map(|e| ProportionConfig {
            direction: Direction::Increase,
            confidence: e.confidence.unwrap_or(0.98),
            allowed_increase: e.allowed_increase.unwrap_or(1.0),
            allowed_decrease: 1.0,
            critical: e.critical,
            floor: e.floor.map(Percent::fraction),
        })
    }

    /// Every setting that cannot work, as `(field path, what is wrong)`; checked when the
    /// pipeline loads.
    pub fn check(&self) -> Result<(), (String, String)> {
        for (name, m) in &self.metrics {
            m.config()
                .thresholds()
                .map_err(|e| (format!("statistical.metrics.{name}"), e.to_string()))?;
        }
        crate::judge::score(&[], &self.groups, self.thresholds())
            .map_err(|e| ("statistical".to_owned(), e.to_string()))?;
        if let Some(p) = self.proportions() {
            let probe = crate::judge::proportions::Counts {
                errors: 0,
                total: 0,
            };
            crate::judge::proportions::compare_proportions(probe, probe, &p)
                .map_err(|e| ("statistical.errors".to_owned(), e.to_string()))?;
            if !(p.allowed_increase.is_finite() && p.allowed_increase >= 1.0) {
                return Err((
                    "statistical.errors.allowedIncrease".into(),
                    format!("{}: a rate ratio of at least 1", p.allowed_increase),
                ));
            }
        }
        for (field, span) in [
            ("lookback", self.lookback),
            ("step", self.step),
            ("rateWindow", self.rate_window),
        ] {
            if span.is_some_and(|s| s.get().is_zero()) {
                return Err((
                    format!("statistical.{field}"),
                    "0s: give it a duration".into(),
                ));
            }
        }
        if self.step() > self.lookback() {
            return Err((
                "statistical.step".into(),
                "a step longer than the lookback takes at most one sample: shorten it".into(),
            ));
        }
        if self.rate_window() > self.step() {
            return Err((
                "statistical.rateWindow".into(),
                format!(
                    "{} is longer than the step ({}): consecutive samples would share requests, and the rank test would count one slow burst as several independent values (a healthy canary fails on noise); make the step at least the rate window",
                    crate::units::format_duration(self.rate_window()),
                    crate::units::format_duration(self.step())
                ),
            ));
        }
        Ok(())
    }
}

impl JudgedMetric {
    /// The judge's options for this metric.
    pub fn config(&self) -> MetricConfig {
        let d = MetricConfig::default();
        MetricConfig {
            direction: self.direction.unwrap_or(Direction::Increase),
            nan_strategy: self.nan_strategy.unwrap_or(d.nan_strategy),
            outliers: self.outliers.unwrap_or(d.outliers),
            effect_size: self.effect_size.unwrap_or(d.effect_size),
            allowed_increase: self.allowed_increase,
            allowed_decrease: self.allowed_decrease,
            critical_increase: self.critical_increase,
            critical_decrease: self.critical_decrease,
            critical: self.critical,
            must_have_data: self.must_have_data,
            confidence: self.confidence.unwrap_or(d.confidence),
            tolerance: self.tolerance.unwrap_or(d.tolerance),
            max_spread_ratio: self.max_spread_ratio,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Statistical {
        serde_json::from_value(serde_yaml_ng_free(yaml)).unwrap()
    }

    /// YAML's flow style for these tests is JSON.
    fn serde_yaml_ng_free(json: &str) -> serde_json::Value {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn defaults_follow_kayenta_with_increase_as_the_direction() {
        let s = parse("{}");
        assert_eq!(s.baseline_version(), "baseline");
        assert_eq!(s.lookback().as_secs(), 60);
        assert_eq!(s.rate_window().as_secs(), 10);
        assert_eq!(s.thresholds().pass, 95.0);
        let c = JudgedMetric::default().config();
        assert_eq!(c.direction, Direction::Increase);
        assert_eq!(c.confidence, 0.98);
        assert!(s.check().is_ok());
    }

    #[test]
    fn settings_that_cannot_work_name_their_field() {
        let s =
            parse(r#"{"metrics": {"latency": {"allowedIncrease": 1.5, "criticalIncrease": 1.2}}}"#);
        let (field, why) = s.check().unwrap_err();
        assert_eq!(field, "statistical.metrics.latency");
        assert!(why.contains("critical"), "{why}");
        let s = parse(r#"{"score": {"pass": 50, "marginal": 80}}"#);
        assert_eq!(s.check().unwrap_err().0, "statistical");
        let s = parse(r#"{"errors": {"requests": "r", "errors": "e", "confidence": 1.5}}"#);
        assert_eq!(s.check().unwrap_err().0, "statistical.errors");
        let s = parse(r#"{"step": "2m"}"#);
        assert_eq!(s.check().unwrap_err().0, "statistical.step");
        let s = parse(r#"{"step": "1s", "rateWindow": "5s"}"#);
        let (field, why) = s.check().unwrap_err();
        assert_eq!(field, "statistical.rateWindow");
        assert!(why.contains("5s is longer than the step (1s)"), "{why}");
        assert!(
            parse(r#"{"step": "5s", "rateWindow": "5s"}"#)
                .check()
                .is_ok()
        );
        assert!(
            parse(r#"{"step": "5s", "rateWindow": "2s"}"#)
                .check()
                .is_ok()
        );
    }
}
