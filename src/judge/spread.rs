//! Did the canary's spread change? The Brown-Forsythe test (Levene's test on absolute
//! deviations from each sample's median).
//!
//! Why this test: latency and error-rate samples are skewed and heavy-tailed, where an F test
//! of variances (or Levene's with means) mistakes non-normality for a change in spread;
//! deviations from the median keep the test's level on such data (Brown & Forsythe 1974). A
//! rank test for location, like Mann-Whitney, misses a canary that is as fast on the median
//! but far more erratic: this check catches that. The spread it reports is each sample's mean
//! absolute deviation from its median, the quantity the test compares.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, FisherSnedecor};

use super::sample::percentile;

/// How the canary's spread compares with the baseline's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpreadChange {
    /// Significantly wider than the baseline's.
    Wider,
    /// Significantly narrower.
    Narrower,
    /// No significant difference.
    Same,
}

impl SpreadChange {
    /// Its name as output writes it.
    pub fn name(self) -> &'static str {
        match self {
            SpreadChange::Wider => "wider",
            SpreadChange::Narrower => "narrower",
            SpreadChange::Same => "same",
        }
    }
}

/// The evidence of the spread check.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SpreadEvidence {
    /// The canary's mean absolute deviation from its median.
    pub canary: f64,
    /// The baseline's.
    pub baseline: f64,
    /// `canary / baseline`; absent when the baseline has no spread at all.
    pub ratio: Option<f64>,
    /// The Brown-Forsythe F statistic (1 and N-2 degrees of freedom); absent when infinite.
    pub statistic: Option<f64>,
    /// Its p-value.
    pub p_value: f64,
    /// The verdict at the judge's confidence.
    pub change: SpreadChange,
}

/// The Brown-Forsythe test of `canary` against `baseline` at `confidence`; absent when a
/// sample has fewer than 2 values (a spread needs two).
pub fn brown_forsythe(canary: &[f64], baseline: &[f64], confidence: f64) -> Option<SpreadEvidence> {
    if canary.len() < 2 || baseline.len() < 2 {
        return None;
    }
    let zc = deviations(canary)?;
    let zb = deviations(baseline)?;
    let (nc, nb) = (zc.len() as f64, zb.len() as f64);
    let n = nc + nb;
    let (mc, mb) = (mean(&zc), mean(&zb));
    let grand = (mc * nc + mb * nb) / n;
    let between = nc * (mc - grand).powi(2) + nb * (mb - grand).powi(2);
    let within: f64 = zc.iter().map(|z| (z - mc).powi(2)).sum::<f64>()
        + zb.iter().map(|z| (z - mb).powi(2)).sum::<f64>();
    let (statistic, p_value) = if between == 0.0 {
        // The same mean deviation (both samples constant, say): no evidence of a change.
        (Some(0.0), 1.0)
    } else if within == 0.0 {
        // Every deviation equals its sample's mean, and the means differ: certain.
        (None, 0.0)
    } else {
        let f = (n - 2.0) * between / within;
        // Values near the largest floats overflow the deviations: no spread to speak of.
        if !f.is_finite() {
            return None;
        }
        let p = FisherSnedecor::new(1.0, n - 2.0).ok()?.sf(f);
        (Some(f), p)
    };
    let change = if p_value < 1.0 - confidence {
        if mc > mb {
            SpreadChange::Wider
        } else {
            SpreadChange::Narrower
        }
    } else {
        SpreadChange::Same
    };
    Some(SpreadEvidence {
        canary: mc,
        baseline: mb,
        ratio: (mb > 0.0).then(|| mc / mb),
        statistic,
        p_value,
        change,
    })
}

fn deviations(values: &[f64]) -> Option<Vec<f64>> {
    let median = percentile(values, 50.0)?;
    Some(values.iter().map(|v| (v - median).abs()).collect())
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wider_canary_with_the_same_median_is_caught() {
        // The same median (10); the canary swings four times as far.
        let baseline: Vec<f64> = (0..40).map(|i| 10.0 + f64::from(i % 5 - 2)).collect();
        let canary: Vec<f64> = (0..40).map(|i| 10.0 + 4.0 * f64::from(i % 5 - 2)).collect();
        let s = brown_forsythe(&canary, &baseline, 0.98).unwrap();
        assert_eq!(s.change, SpreadChange::Wider);
        assert!((s.ratio.unwrap() - 4.0).abs() < 1e-12, "{s:?}");
        assert!(s.p_value < 1e-6, "{s:?}");
        let back = brown_forsythe(&baseline, &canary, 0.98).unwrap();
        assert_eq!(back.change, SpreadChange::Narrower);
        assert!((back.p_value - s.p_value).abs() < 1e-12);
    }

    #[test]
    fn equal_spreads_are_the_same() {
        let baseline: Vec<f64> = (0..28).map(|i| f64::from(i % 7)).collect();
        let canary: Vec<f64> = (0..28).map(|i| 100.0 + f64::from((i * 3) % 7)).collect();
        let s = brown_forsythe(&canary, &baseline, 0.98).unwrap();
        assert_eq!(s.change, SpreadChange::Same);
        assert_eq!(s.ratio, Some(1.0));
    }

    // The F statistic and p-value checked against the textbook computation by hand: canary
    // [1, 2, 3, 10] (median 2.5, deviations 1.5, .5, .5, 7.5) and baseline [4, 5, 6]
    // (median 5, deviations 1, 0, 1).
    #[test]
    fn statistic_matches_a_hand_computation() {
        let s = brown_forsythe(&[1.0, 2.0, 3.0, 10.0], &[4.0, 5.0, 6.0], 0.95).unwrap();
        // Means 2.5 and 2/3, grand 12/7; between = 4*(2.5-12/7)^2 + 3*(2/3-12/7)^2;
        // within = 1 + 4 + 4 + 25 + 1/9 + 4/9 + 1/9; F = 5 * between / within.
        let grand = 12.0 / 7.0;
        let between = 4.0 * (2.5f64 - grand).powi(2) + 3.0 * (2.0f64 / 3.0 - grand).powi(2);
        let within = 34.0 + 6.0 / 9.0;
        let f = 5.0 * between / within;
        assert!((s.statistic.unwrap() - f).abs() < 1e-12, "{s:?}");
        assert!(s.p_value > 0.05 && s.p_value < 1.0, "{s:?}");
        assert_eq!(s.change, SpreadChange::Same);
    }

    #[test]
    fn degenerate_samples_have_defined_outcomes() {
        assert_eq!(brown_forsythe(&[1.0], &[1.0, 2.0], 0.95), None);
        let constant = brown_forsythe(&[3.0, 3.0], &[5.0, 5.0, 5.0], 0.95).unwrap();
        assert_eq!(
            (constant.change, constant.p_value, constant.ratio),
            (SpreadChange::Same, 1.0, None)
        );
        let huge = brown_forsythe(&[f64::MAX, -f64::MAX, 0.0], &[1.0, 2.0, 3.0], 0.95);
        assert_eq!(huge, None);
        let certain = brown_forsythe(&[0.0, 10.0], &[0.0, 2.0], 0.95).unwrap();
        assert_eq!(
            (certain.change, certain.statistic),
            (SpreadChange::Wider, None)
        );
    }
}
