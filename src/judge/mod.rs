//! The statistical canary judge: canary and baseline samples compared per metric, as
//! Spinnaker's Kayenta (NetflixACAJudge) does, with evidence a person can check.
//!
//! Everything here is a pure function of samples and configuration; nothing queries, waits
//! or prints. An analysis calls [`judge_metric`] per metric and [`score`] over the verdicts;
//! `glidepath judge` (in `cli`) calls [`judge_metric`] on two files.
//! - [`config`]: a metric's options (direction, thresholds, confidence, tolerance), checked.
//! - [`sample`]: missing values and outliers, summaries, percentiles.
//! - [`mannwhitney`]: the rank test, the Hodges-Lehmann shift and its interval.
//! - [`spread`]: the Brown-Forsythe test for a change in spread.
//! - [`classifier`]: one metric's verdict and its evidence.
//! - [`proportions`]: error counts compared as proportions.
//! - [`score`]: metric verdicts grouped and weighted into a 0-100 score and a verdict.
//! - [`evidence`]: a judgement as data for the journal, the cockpit and the reports.

pub mod classifier;
pub mod config;
pub mod evidence;
pub mod mannwhitney;
pub mod proportions;
pub mod sample;
pub mod score;
pub mod spread;

pub use classifier::{Classification, MetricVerdict, judge_metric};
pub use config::{ConfigError, Direction, EffectSizeMeasure, MetricConfig, Thresholds};
pub use sample::{NanStrategy, OutlierStrategy};
pub use score::{ScoreVerdict, score};

/// A number for a sentence: four significant digits, scientific when very small or large.
pub fn show(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    if v == 0.0 {
        return "0".to_owned();
    }
    let magnitude = v.abs().log10().floor();
    if !(-3.0..6.0).contains(&magnitude) {
        return format!("{v:.3e}");
    }
    let decimals = (3.0 - magnitude).max(0.0) as usize;
    let text = format!("{v:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::show;

    #[test]
    fn numbers_show_four_significant_digits() {
        assert_eq!(show(22.5), "22.5");
        assert_eq!(show(98.0), "98");
        assert_eq!(show(0.00123), "0.00123");
        assert_eq!(show(-1.4808028936386108e-5), "-1.481e-5");
        assert_eq!(show(1.0 / 3.0), "0.3333");
        assert_eq!(show(123456.7), "123457");
        assert_eq!(show(0.0), "0");
        assert_eq!(show(f64::INFINITY), "+Inf");
    }
}
