//! How one metric is judged: Kayenta's per-metric analysis configuration, checked.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::sample::{NanStrategy, OutlierStrategy};

/// Which way of moving is a regression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Only a higher canary fails (latency, errors).
    Increase,
    /// Only a lower canary fails (throughput, success rate).
    Decrease,
    /// Either way fails.
    #[default]
    Either,
}

impl Direction {
    /// Whether a higher canary can fail.
    pub fn watches_increase(self) -> bool {
        matches!(self, Direction::Increase | Direction::Either)
    }

    /// Whether a lower canary can fail.
    pub fn watches_decrease(self) -> bool {
        matches!(self, Direction::Decrease | Direction::Either)
    }
}

/// How big a shift is, beside whether it is significant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EffectSizeMeasure {
    /// Canary mean / baseline mean (1 is no change; undefined when a mean is 0).
    #[default]
    MeanRatio,
    /// Common-language effect size: the chance a canary value exceeds a baseline value (0.5
    /// is no change), from the U statistic.
    Cles,
}

impl EffectSizeMeasure {
    /// The value that means "no change": the default for every threshold.
    pub fn neutral(self) -> f64 {
        match self {
            EffectSizeMeasure::MeanRatio => 1.0,
            EffectSizeMeasure::Cles => 0.5,
        }
    }

    /// Its name as flags and output write it.
    pub fn name(self) -> &'static str {
        match self {
            EffectSizeMeasure::MeanRatio => "mean ratio",
            EffectSizeMeasure::Cles => "CLES",
        }
    }
}

/// How one metric is judged. [`Default`] is Kayenta's judge: direction either, NaNs removed,
/// outliers kept, mean ratio with every threshold 1, confidence 0.98, tolerance 0.25.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct MetricConfig {
    /// Which way of moving fails.
    pub direction: Direction,
    /// What a missing sample becomes.
    pub nan_strategy: NanStrategy,
    /// Whether outliers are dropped first.
    pub outliers: OutlierStrategy,
    /// How the size of a shift is measured.
    pub effect_size: EffectSizeMeasure,
    /// A significant increase fails only when the effect size is at least this (default:
    /// the measure's neutral value, so every significant increase fails).
    pub allowed_increase: Option<f64>,
    /// A significant decrease fails only when the effect size is at most this.
    pub allowed_decrease: Option<f64>,
    /// A critical metric's increase fails the whole judgement when the effect size is at
    /// least this (default: `allowed_increase`).
    pub critical_increase: Option<f64>,
    /// A critical metric's decrease fails the whole judgement when the effect size is at
    /// most this (default: `allowed_decrease`).
    pub critical_decrease: Option<f64>,
    /// A failure of this metric fails the whole judgement (as does its missing data).
    pub critical: bool,
    /// Missing data fails this metric (Kayenta's `mustHaveData`).
    pub must_have_data: bool,
    /// Confidence of the interval of the shift, in (0, 1).
    pub confidence: f64,
    /// The share of |estimate| by which the interval must clear zero for a shift to count
    /// (so a significant but tiny shift passes).
    pub tolerance: f64,
    /// With a value, a canary whose spread is significantly wider than the baseline's by at
    /// least this ratio is `high` even when its location passes.
    pub max_spread_ratio: Option<f64>,
}

impl Default for MetricConfig {
    fn default() -> Self {
        MetricConfig {
            direction: Direction::Either,
            nan_strategy: NanStrategy::Remove,
            outliers: OutlierStrategy::Keep,
            effect_size: EffectSizeMeasure::MeanRatio,
            allowed_increase: None,
            allowed_decrease: None,
            critical_increase: None,
            critical_decrease: None,
            critical: false,
            must_have_data: false,
            confidence: 0.98,
            tolerance: 0.25,
            max_spread_ratio: None,
        }
    }
}

/// The effect-size thresholds in force, defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholds {
    /// See [`MetricConfig::allowed_increase`].
    pub allowed_increase: f64,
    /// See [`MetricConfig::allowed_decrease`].
    pub allowed_decrease: f64,
    /// See [`MetricConfig::critical_increase`].
    pub critical_increase: f64,
    /// See [`MetricConfig::critical_decrease`].
    pub critical_decrease: f64,
}

/// A configuration that cannot be judged with. Each names the option as the command line
/// spells it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// Confidence outside (0, 1).
    #[error("--confidence {0}: must be between 0 and 1, exclusive (0.98 is Kayenta's default)")]
    Confidence(f64),
    /// Negative or non-finite tolerance.
    #[error("--tolerance {0}: must be a number of at least 0 (0.25 is Kayenta's default)")]
    Tolerance(f64),
    /// A threshold the measure cannot take.
    #[error("--{option} {value}: {expected}")]
    Threshold {
        /// The option.
        option: &'static str,
        /// Its value.
        value: f64,
        /// What it must be.
        expected: &'static str,
    },
    /// The critical threshold is laxer than the allowed one.
    #[error(
        "--critical-{way} {critical} is {laxer} --allowed-{way} {allowed}: a critical {way} must be at least as large a change as an allowed one; raise --critical-{way} or lower --allowed-{way}"
    )]
    CriticalLaxer {
        /// `increase` or `decrease`.
        way: &'static str,
        /// The critical threshold.
        critical: f64,
        /// The allowed threshold.
        allowed: f64,
        /// `below` or `above`.
        laxer: &'static str,
    },
}

impl MetricConfig {
    /// Checks the configuration and fills in the thresholds' defaults.
    pub fn thresholds(&self) -> Result<Thresholds, ConfigError> {
        if !(self.confidence > 0.0 && self.confidence < 1.0) {
            return Err(ConfigError::Confidence(self.confidence));
        }
        if !(self.tolerance >= 0.0 && self.tolerance.is_finite()) {
            return Err(ConfigError::Tolerance(self.tolerance));
        }
        let measure = self.effect_size;
        let check = |option: &'static str, value: Option<f64>, default: f64| match value {
            None => Ok(default),
            Some(v) => in_range(measure, option, v),
        };
        let neutral = measure.neutral();
        let allowed_increase = check("allowed-increase", self.allowed_increase, neutral)?;
        let allowed_decrease = check("allowed-decrease", self.allowed_decrease, neutral)?;
        let critical_increase = check(
            "critical-increase",
            self.critical_increase,
            allowed_increase,
        )?;
        let critical_decrease = check(
            "critical-decrease",
            self.critical_decrease,
            allowed_decrease,
        )?;
        if let Some(r) = self.max_spread_ratio
            && !(r >= 1.0 && r.is_finite())
        {
            return Err(ConfigError::Threshold {
                option: "max-spread-ratio",
                value: r,
                expected: "must be a ratio of at least 1 (2 flags a canary twice as spread out)",
            });
        }
        if critical_increase < allowed_increase {
            return Err(ConfigError::CriticalLaxer {
                way: "increase",
                critical: critical_increase,
                allowed: allowed_increase,
                laxer: "below",
            });
        }
        if critical_decrease > allowed_decrease {
            return Err(ConfigError::CriticalLaxer {
                way: "decrease",
                critical: critical_decrease,
                allowed: allowed_decrease,
                laxer: "above",
            });
        }
        Ok(Thresholds {
            allowed_increase,
            allowed_decrease,
            critical_increase,
            critical_decrease,
        })
    }
}

fn in_range(measure: EffectSizeMeasure, option: &'static str, v: f64) -> Result<f64, ConfigError> {
    let ok = match measure {
        EffectSizeMeasure::MeanRatio => v.is_finite() && v >= 0.0,
        EffectSizeMeasure::Cles => (0.0..=1.0).contains(&v),
    };
    if ok {
        return Ok(v);
    }
    Err(ConfigError::Threshold {
        option,
        value: v,
        expected: match measure {
            EffectSizeMeasure::MeanRatio => {
                "a mean ratio must be a number of at least 0 (1.2 allows 20% more than the baseline)"
            }
            EffectSizeMeasure::Cles => {
                "a CLES threshold must be between 0 and 1 (0.5 is no change)"
            }
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_kayentas_judge() {
        let c = MetricConfig::default();
        assert_eq!((c.confidence, c.tolerance), (0.98, 0.25));
        let t = c.thresholds().unwrap();
        assert_eq!(
            (
                t.allowed_increase,
                t.allowed_decrease,
                t.critical_increase,
                t.critical_decrease
            ),
            (1.0, 1.0, 1.0, 1.0)
        );
        let cles = MetricConfig {
            effect_size: EffectSizeMeasure::Cles,
            allowed_increase: Some(0.8),
            ..MetricConfig::default()
        };
        let t = cles.thresholds().unwrap();
        assert_eq!(
            (t.allowed_increase, t.critical_increase, t.allowed_decrease),
            (0.8, 0.8, 0.5)
        );
    }

    #[test]
    fn mismatched_options_are_refused_with_the_option_named() {
        let bad = |c: MetricConfig| c.thresholds().unwrap_err().to_string();
        let base = MetricConfig::default();
        for confidence in [0.0, 1.0, -0.5, 1.5, f64::NAN] {
            let e = bad(MetricConfig {
                confidence,
                ..base.clone()
            });
            assert!(e.starts_with("--confidence"), "{e}");
        }
        let e = bad(MetricConfig {
            tolerance: -0.1,
            ..base.clone()
        });
        assert!(e.starts_with("--tolerance -0.1"), "{e}");
        let e = bad(MetricConfig {
            allowed_increase: Some(1.5),
            critical_increase: Some(1.2),
            ..base.clone()
        });
        assert!(
            e.contains("--critical-increase 1.2 is below --allowed-increase 1.5"),
            "{e}"
        );
        let e = bad(MetricConfig {
            allowed_decrease: Some(0.8),
            critical_decrease: Some(0.9),
            ..base.clone()
        });
        assert!(
            e.contains("--critical-decrease 0.9 is above --allowed-decrease 0.8"),
            "{e}"
        );
        let e = bad(MetricConfig {
            effect_size: EffectSizeMeasure::Cles,
            allowed_increase: Some(1.2),
            ..base.clone()
        });
        assert!(e.contains("between 0 and 1"), "{e}");
        let e = bad(MetricConfig {
            max_spread_ratio: Some(0.5),
            ..base
        });
        assert!(e.starts_with("--max-spread-ratio 0.5"), "{e}");
    }
}
