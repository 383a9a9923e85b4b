//! A metric's samples as the judge sees them: missing values removed or replaced, outliers
//! optionally removed, and a summary of what is left.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What to do with a missing sample (`null` in a file, NaN from a query).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NanStrategy {
    /// Leave it out (Kayenta's default).
    #[default]
    Remove,
    /// Count it as 0 (for counters where no sample means nothing happened).
    Replace,
}

/// Whether to drop outliers before comparing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OutlierStrategy {
    /// Compare every value.
    #[default]
    Keep,
    /// Drop values beyond the IQR fences (see [`outlier_fences`]).
    Remove,
}

/// How far beyond the quartiles a value is an outlier, in IQRs (Kayenta's judge uses 3).
pub const OUTLIER_FACTOR: f64 = 3.0;

/// A few numbers describing one cleaned sample, for the evidence.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SampleSummary {
    /// Values compared (after removing missing values and outliers).
    pub count: usize,
    /// Missing values (`null` or NaN) in the input.
    pub missing: usize,
    /// Missing values counted as 0 (with [`NanStrategy::Replace`]).
    pub replaced: usize,
    /// Outliers left out.
    pub outliers: usize,
    /// Mean of the values compared (absent when none are).
    pub mean: Option<f64>,
    /// Median of the values compared.
    pub median: Option<f64>,
    /// Smallest value compared.
    pub min: Option<f64>,
    /// Largest value compared.
    pub max: Option<f64>,
}

/// The values to compare and how they were obtained.
#[derive(Debug, Clone, PartialEq)]
pub struct Cleaned {
    /// The values, sorted ascending (every test ranks or sorts them anyway).
    pub values: Vec<f64>,
    /// Their summary.
    pub summary: SampleSummary,
}

/// Applies the NaN and outlier strategies to raw samples (`None` or NaN: missing).
pub fn clean(raw: &[Option<f64>], nan: NanStrategy, outliers: OutlierStrategy) -> Cleaned {
    let missing = raw.iter().filter(|v| v.is_none_or(f64::is_nan)).count();
    let mut values: Vec<f64> = match nan {
        NanStrategy::Remove => raw
            .iter()
            .flatten()
            .copied()
            .filter(|v| !v.is_nan())
            .collect(),
        NanStrategy::Replace => raw
            .iter()
            .map(|v| v.filter(|v| !v.is_nan()).unwrap_or(0.0))
            .collect(),
    };
    values.sort_by(f64::total_cmp);
    let before = values.len();
    if outliers == OutlierStrategy::Remove && !values.is_empty() {
        let (low, high) = outlier_fences(&values, OUTLIER_FACTOR);
        values.retain(|v| *v >= low && *v <= high);
    }
    let summary = SampleSummary {
        count: values.len(),
        missing,
        replaced: if nan == NanStrategy::Replace {
            missing
        } else {
            0
        },
        outliers: before - values.len(),
        mean: mean(&values),
        median: percentile_sorted(&values, 50.0),
        min: values.iter().copied().reduce(f64::min),
        max: values.iter().copied().reduce(f64::max),
    };
    Cleaned { values, summary }
}

/// The arithmetic mean, absent for no values.
pub fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// The `p`th percentile (0-100) by linear interpolation between order statistics (R's type 7,
/// Kayenta's and numpy's default); absent for no values.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    percentile_sorted(&sorted, p)
}

/// [`percentile`] of values already sorted ascending.
pub fn percentile_sorted(sorted: &[f64], p: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let h = last as f64 * (p / 100.0).clamp(0.0, 1.0);
    let below = h.floor() as usize;
    let lo = sorted.get(below).copied()?;
    let hi = sorted.get((below + 1).min(last)).copied()?;
    Some(lo + (h - below as f64) * (hi - lo))
}

/// The fences outside which a value is an outlier: Tukey's `Q1 - factor*IQR` and
/// `Q3 + factor*IQR`, widened to the 1st and 99th percentiles when those lie further out (so
/// a long but dense tail is kept, as Kayenta's judge does).
pub fn outlier_fences(values: &[f64], factor: f64) -> (f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let q = |p| percentile_sorted(&sorted, p).unwrap_or(f64::NAN);
    let (q1, q3) = (q(25.0), q(75.0));
    let iqr = q3 - q1;
    let low = (q1 - factor * iqr).min(q(1.0));
    let high = (q3 + factor * iqr).max(q(99.0));
    (low, high)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Kayenta, kayenta-judge/src/test/scala/com/netflix/kayenta/judge/StatisticSuite.scala,
    // tests "Summary Statistics: Basic Percentile", "... (Linear Interpolation)" and
    // "Summary Statistics: Percentile (NIST Data)".
    #[test]
    fn percentiles_match_kayentas() {
        let data = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5];
        assert!((percentile(&data, 5.0).unwrap() - 0.175).abs() < 1e-4);
        assert_eq!(percentile(&data, 50.0), Some(1.75));
        assert_eq!(percentile(&data, 100.0), Some(3.5));
        let tens: Vec<f64> = (0..10).map(f64::from).collect();
        assert_eq!(percentile(&tens, 50.0), Some(4.5));
        let nist = [
            95.1772, 95.1567, 95.1937, 95.1959, 95.1442, 95.0610, 95.1591, 95.1195, 95.1772,
            95.0925, 95.1990, 95.1682,
        ];
        assert!((percentile(&nist, 90.0).unwrap() - 95.19568).abs() < 1e-9);
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[1.0], 100.0), Some(1.0));
    }

    // Kayenta, kayenta-judge/src/test/scala/com/netflix/kayenta/judge/DetectorSuite.scala,
    // test "IQR NIST Test" (factor 1.5; the 1st and 99th percentiles lie inside the fences, so
    // widening them changes nothing here).
    #[test]
    fn the_nist_outlier_is_the_only_one_removed() {
        let data = [
            30., 171., 184., 201., 212., 250., 265., 270., 272., 289., 305., 306., 322., 322.,
            336., 346., 351., 370., 390., 404., 409., 411., 436., 437., 439., 441., 444., 448.,
            451., 453., 470., 480., 482., 487., 494., 495., 499., 503., 514., 521., 522., 527.,
            548., 550., 559., 560., 570., 572., 574., 578., 585., 592., 592., 607., 616., 618.,
            621., 629., 637., 638., 640., 656., 668., 707., 709., 719., 737., 739., 752., 758.,
            766., 792., 792., 794., 802., 818., 830., 832., 843., 858., 860., 869., 918., 925.,
            953., 991., 1000., 1005., 1068., 1441.,
        ];
        let (low, high) = outlier_fences(&data, 1.5);
        let out: Vec<f64> = data
            .iter()
            .copied()
            .filter(|v| *v < low || *v > high)
            .collect();
        assert_eq!(out, vec![1441.0], "fences ({low}, {high})");
    }

    // Kayenta, TransformSuite.scala, tests "Remove Single NaN" and "Replace NANs".
    #[test]
    fn missing_values_are_removed_or_replaced_and_counted() {
        let raw = [Some(0.0), Some(1.0), None, Some(1.0), Some(f64::NAN)];
        let removed = clean(&raw, NanStrategy::Remove, OutlierStrategy::Keep);
        assert_eq!(removed.values, vec![0.0, 1.0, 1.0]);
        assert_eq!(
            clean(
                &[Some(3.0), Some(1.0), Some(2.0)],
                NanStrategy::Remove,
                OutlierStrategy::Keep
            )
            .values,
            vec![1.0, 2.0, 3.0]
        );
        assert_eq!((removed.summary.missing, removed.summary.replaced), (2, 0));
        let replaced = clean(&raw, NanStrategy::Replace, OutlierStrategy::Keep);
        assert_eq!(replaced.values, vec![0.0, 0.0, 0.0, 1.0, 1.0]);
        assert_eq!(
            (replaced.summary.missing, replaced.summary.replaced),
            (2, 2)
        );
        let none = clean(&[None, None], NanStrategy::Remove, OutlierStrategy::Remove);
        assert_eq!((none.summary.count, none.summary.mean), (0, None));
    }

    #[test]
    fn a_far_outlier_is_removed_only_when_asked() {
        let mut raw: Vec<Option<f64>> = (0..50).map(|i| Some(10.0 + f64::from(i % 5))).collect();
        raw.push(Some(1000.0));
        let kept = clean(&raw, NanStrategy::Remove, OutlierStrategy::Keep);
        assert_eq!((kept.summary.count, kept.summary.outliers), (51, 0));
        let removed = clean(&raw, NanStrategy::Remove, OutlierStrategy::Remove);
        assert_eq!((removed.summary.count, removed.summary.outliers), (50, 1));
        assert_eq!(removed.summary.max, Some(14.0));
    }
}
