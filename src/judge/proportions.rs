//! Error counts compared as proportions: requests and errors of the canary against the
//! baseline's, so sparse errors (a few in thousands of requests) are not lost among ranks of
//! per-interval rates, which are mostly zero.
//!
//! Fisher's exact test when any expected cell count is below 5 (where the normal
//! approximation is poor), else the two-proportion z test with a pooled variance.

use serde::Serialize;
use statrs::function::factorial::ln_binomial;

use super::classifier::Classification;
use super::config::Direction;
use super::mannwhitney::{normal_quantile, normal_upper_tail};
use super::show;

/// Errors among requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Failed requests.
    pub errors: u64,
    /// All requests.
    pub total: u64,
}

/// How the counts are compared.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProportionConfig {
    /// Which way fails.
    pub direction: Direction,
    /// Confidence, in (0, 1).
    pub confidence: f64,
    /// A significant increase fails only when canary rate / baseline rate is at least this.
    pub allowed_increase: f64,
    /// A significant decrease fails only when the ratio is at most this.
    pub allowed_decrease: f64,
    /// A failure or missing data fails the whole judgement.
    pub critical: bool,
    /// An error rate (0 to 1) the canary may have whatever the baseline's: when even the
    /// upper end of the canary's one-sided interval (Wilson score, at `confidence`) lies
    /// under it, the counts pass without a test. Errors that rare never fail or hold a
    /// release; a rate above the floor is compared as usual.
    pub floor: Option<f64>,
}

impl Default for ProportionConfig {
    fn default() -> Self {
        ProportionConfig {
            direction: Direction::Increase,
            confidence: 0.98,
            allowed_increase: 1.0,
            allowed_decrease: 1.0,
            critical: false,
            floor: None,
        }
    }
}

/// Which test decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProportionTest {
    /// Fisher's exact test (two-sided).
    FisherExact,
    /// The two-proportion z test (pooled, two-sided).
    TwoProportionZ,
}

/// The verdict on error counts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProportionVerdict {
    /// The verdict.
    pub classification: Classification,
    /// Whether it fails (or holds) the whole judgement.
    pub critical: bool,
    /// Why.
    pub reason: String,
    /// Canary errors / requests.
    pub canary_rate: Option<f64>,
    /// Baseline errors / requests.
    pub baseline_rate: Option<f64>,
    /// Canary rate / baseline rate (absent when the baseline has no errors).
    pub rate_ratio: Option<f64>,
    /// The test used.
    pub test: Option<ProportionTest>,
    /// Its two-sided p-value.
    pub p_value: Option<f64>,
}

/// Counts or options that cannot be compared.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProportionError {
    /// More errors than requests.
    #[error("the {side} has {errors} errors in {total} requests: errors cannot exceed requests")]
    MoreErrorsThanRequests {
        /// `canary` or `baseline`.
        side: &'static str,
        /// Its errors.
        errors: u64,
        /// Its requests.
        total: u64,
    },
    /// Confidence outside (0, 1).
    #[error("confidence {0}: must be between 0 and 1, exclusive")]
    Confidence(f64),
}

/// Compares the canary's error proportion with the baseline's.
pub fn compare_proportions(
    canary: Counts,
    baseline: Counts,
    config: &ProportionConfig,
) -> Result<ProportionVerdict, ProportionError> {
    for (side, c) in [("canary", canary), ("baseline", baseline)] {
        if c.errors > c.total {
            return Err(ProportionError::MoreErrorsThanRequests {
                side,
                errors: c.errors,
                total: c.total,
            });
        }
    }
    if !(config.confidence > 0.0 && config.confidence < 1.0) {
        return Err(ProportionError::Confidence(config.confidence));
    }
    let rate = |c: Counts| (c.total > 0).then(|| c.errors as f64 / c.total as f64);
    let (cr, br) = (rate(canary), rate(baseline));
    let mut v = ProportionVerdict {
        classification: Classification::Pass,
        critical: false,
        reason: String::new(),
        canary_rate: cr,
        baseline_rate: br,
        rate_ratio: cr.zip(br).and_then(|(c, b)| (b > 0.0).then(|| c / b)),
        test: None,
        p_value: None,
    };
    let (Some(cr), Some(br)) = (cr, br) else {
        let side = if canary.total == 0 {
            "canary"
        } else {
            "baseline"
        };
        v.classification = Classification::Nodata;
        v.critical = config.critical;
        v.reason = format!("no {side} requests");
        return Ok(v);
    };
    if let Some(floor) = config.floor {
        let upper = wilson_upper(canary, config.confidence);
        if upper < floor {
            v.reason = format!(
                "the canary's error rate is under the floor {}% even at the top of its {}% interval ({}%): canary {}/{}, baseline {}/{}",
                show(floor * 100.0),
                show(config.confidence * 100.0),
                show(upper * 100.0),
                canary.errors,
                canary.total,
                baseline.errors,
                baseline.total
            );
            return Ok(v);
        }
    }
    if cr == br {
        v.reason = format!("the same error rate ({}) in canary and baseline", show(cr));
        return Ok(v);
    }
    let alpha = 1.0 - config.confidence;
    let (test, p) = test_counts(canary, baseline);
    v.test = Some(test);
    v.p_value = Some(p);
    let rates = format!(
        "canary {}/{} ({}), baseline {}/{} ({})",
        canary.errors,
        canary.total,
        show(cr),
        baseline.errors,
        baseline.total,
        show(br)
    );
    if test == ProportionTest::FisherExact && min_fisher_p(canary, baseline) >= alpha {
        v.classification = Classification::Inconclusive;
        v.critical = config.critical;
        v.reason = format!(
            "too few requests to tell: {rates}; no split of these errors could reach {}% confidence",
            show(config.confidence * 100.0)
        );
        return Ok(v);
    }
    let (class, why) = classify_rates(&v, config, p);
    v.classification = class;
    v.critical = config.critical && matches!(class, Classification::High | Classification::Low);
    v.reason = format!("{why}: {rates}");
    Ok(v)
}

/// The upper end of the one-sided Wilson score interval of `c`'s error rate at
/// `confidence` (at least one request).
fn wilson_upper(c: Counts, confidence: f64) -> f64 {
    let n = c.total as f64;
    let p = c.errors as f64 / n;
    let z = normal_quantile(confidence);
    let z2 = z * z;
    let centre = p + z2 / (2.0 * n);
    let spread = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre + spread) / (1.0 + z2 / n)).min(1.0)
}

/// High, low or pass for a p-value and the rates in `v`, and why.
fn classify_rates(
    v: &ProportionVerdict,
    config: &ProportionConfig,
    p: f64,
) -> (Classification, String) {
    let (cr, br) = (v.canary_rate.unwrap_or(0.0), v.baseline_rate.unwrap_or(0.0));
    let alpha = 1.0 - config.confidence;
    let ratio_ok = |limit: f64, up: bool| {
        v.rate_ratio
            .is_none_or(|r| if up { r >= limit } else { r <= limit })
    };
    if p >= alpha {
        (
            Classification::Pass,
            format!("no significant difference (p = {})", show(p)),
        )
    } else if cr > br
        && config.direction.watches_increase()
        && ratio_ok(config.allowed_increase, true)
    {
        (
            Classification::High,
            format!("more errors in the canary (p = {})", show(p)),
        )
    } else if cr < br
        && config.direction.watches_decrease()
        && ratio_ok(config.allowed_decrease, false)
    {
        (
            Classification::Low,
            format!("fewer errors in the canary (p = {})", show(p)),
        )
    } else {
        let why = format!(
            "a significant difference (p = {}) that the direction or the allowed ratio permits",
            show(p)
        );
        (Classification::Pass, why)
    }
}

/// The test the counts call for, and its two-sided p-value.
fn test_counts(c: Counts, b: Counts) -> (ProportionTest, f64) {
    let n = (c.total + b.total) as f64;
    let k = (c.errors + b.errors) as f64;
    let pooled = k / n;
    let smallest_expected = [c.total as f64, b.total as f64]
        .into_iter()
        .flat_map(|t| [t * pooled, t * (1.0 - pooled)])
        .fold(f64::INFINITY, f64::min);
    let span = c.total.min(b.total).min(c.errors + b.errors);
    if smallest_expected < 5.0 && span <= 1_000_000 {
        return (ProportionTest::FisherExact, fisher_exact(c, b));
    }
    let (p1, p2) = (
        c.errors as f64 / c.total as f64,
        b.errors as f64 / b.total as f64,
    );
    let se = (pooled * (1.0 - pooled) * (1.0 / c.total as f64 + 1.0 / b.total as f64)).sqrt();
    let z = (p1 - p2) / se;
    (
        ProportionTest::TwoProportionZ,
        (2.0 * normal_upper_tail(z.abs())).min(1.0),
    )
}

/// ln P(canary errors = a) with the margins fixed (hypergeometric).
fn ln_table(a: u64, c: Counts, b: Counts) -> f64 {
    let k = c.errors + b.errors;
    let n = c.total + b.total;
    ln_binomial(k, a) + ln_binomial(n - k, c.total - a) - ln_binomial(n, c.total)
}

/// The canary error counts the margins allow.
fn table_range(c: Counts, b: Counts) -> (u64, u64) {
    let k = c.errors + b.errors;
    (k.saturating_sub(b.total), k.min(c.total))
}

/// Fisher's exact two-sided p-value: the probability of every table no likelier than the one
/// observed.
fn fisher_exact(c: Counts, b: Counts) -> f64 {
    let observed = ln_table(c.errors, c, b);
    let (lo, hi) = table_range(c, b);
    // Relative slack for rounding, as R's fisher.test allows.
    let limit = observed + 1e-7f64.ln_1p();
    let p: f64 = (lo..=hi)
        .map(|a| ln_table(a, c, b))
        .filter(|l| *l <= limit)
        .map(f64::exp)
        .sum();
    p.min(1.0)
}

/// The smallest p-value Fisher's test can give with these margins (every error on one side).
fn min_fisher_p(c: Counts, b: Counts) -> f64 {
    let (lo, hi) = table_range(c, b);
    let at = |a| {
        fisher_exact(
            Counts {
                errors: a,
                total: c.total,
            },
            Counts {
                errors: c.errors + b.errors - a,
                total: b.total,
            },
        )
    };
    at(lo).min(at(hi))
}

/// The Wald interval of `canary rate - baseline rate` at `confidence`.
pub fn difference_interval(c: Counts, b: Counts, confidence: f64) -> Option<[f64; 2]> {
    if c.total == 0 || b.total == 0 {
        return None;
    }
    let (p1, p2) = (
        c.errors as f64 / c.total as f64,
        b.errors as f64 / b.total as f64,
    );
    let se = (p1 * (1.0 - p1) / c.total as f64 + p2 * (1.0 - p2) / b.total as f64).sqrt();
    let z = -normal_quantile((1.0 - confidence) / 2.0);
    Some([p1 - p2 - z * se, p1 - p2 + z * se])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(errors: u64, total: u64) -> Counts {
        Counts { errors, total }
    }

    // Fisher's exact test on the dieting example (1 of 12 against 9 of 12), whose two-sided
    // p-value R's fisher.test gives as 0.002759.
    #[test]
    fn fisher_matches_r_on_a_textbook_table() {
        let p = fisher_exact(counts(1, 12), counts(9, 12));
        assert!((p - 0.002759).abs() < 1e-6, "{p}");
        // The lady tasting tea: 3 of 4 against 1 of 4, p = 0.4857.
        let p = fisher_exact(counts(3, 4), counts(1, 4));
        assert!((p - 0.4857).abs() < 1e-4, "{p}");
    }

    // R: prop.test(c(15, 25), c(50, 50), correct = FALSE) gives X-squared 4.1667, p 0.04123.
    #[test]
    fn z_test_matches_r_prop_test() {
        let (test, p) = test_counts(counts(15, 50), counts(25, 50));
        assert_eq!(test, ProportionTest::TwoProportionZ);
        assert!((p - 0.04123).abs() < 1e-5, "{p}");
    }

    #[test]
    fn sparse_errors_in_the_canary_are_high() {
        // 9 errors in 1000 canary requests against none in 1000 baseline requests: per-interval
        // rates would be mostly zero on both sides.
        let v = compare_proportions(
            counts(9, 1000),
            counts(0, 1000),
            &ProportionConfig::default(),
        )
        .unwrap();
        assert_eq!(
            (v.classification, v.test),
            (Classification::High, Some(ProportionTest::FisherExact))
        );
        assert!(v.p_value.unwrap() < 0.01, "{v:?}");
        assert_eq!(v.rate_ratio, None);
        assert!(v.reason.contains("canary 9/1000"), "{}", v.reason);
        // Fewer errors pass when only an increase fails.
        let v = compare_proportions(
            counts(0, 1000),
            counts(9, 1000),
            &ProportionConfig::default(),
        )
        .unwrap();
        assert_eq!(v.classification, Classification::Pass);
    }

    #[test]
    fn too_few_requests_are_inconclusive_and_no_requests_nodata() {
        let v =
            compare_proportions(counts(2, 3), counts(0, 3), &ProportionConfig::default()).unwrap();
        assert_eq!(v.classification, Classification::Inconclusive, "{v:?}");
        let critical = ProportionConfig {
            critical: true,
            ..ProportionConfig::default()
        };
        let v = compare_proportions(counts(0, 0), counts(0, 10), &critical).unwrap();
        assert_eq!(
            (v.classification, v.critical),
            (Classification::Nodata, true)
        );
        let v = compare_proportions(counts(0, 50), counts(0, 80), &critical).unwrap();
        assert_eq!(
            (v.classification, v.critical),
            (Classification::Pass, false)
        );
        let e = compare_proportions(counts(5, 3), counts(0, 3), &critical).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the canary has 5 errors in 3 requests: errors cannot exceed requests"
        );
    }

    #[test]
    fn errors_under_the_floor_pass_however_few_or_however_significant() {
        let floor = ProportionConfig {
            critical: true,
            floor: Some(0.01),
            ..ProportionConfig::default()
        };
        // 2 errors against none in 1,500 requests: no split could be significant, so
        // without a floor the counts cannot tell; the canary's rate is at most about 0.5%.
        let (c, b) = (counts(2, 1500), counts(0, 1500));
        let v = compare_proportions(c, b, &ProportionConfig::default()).unwrap();
        assert_eq!(v.classification, Classification::Inconclusive, "{v:?}");
        let v = compare_proportions(c, b, &floor).unwrap();
        assert_eq!(v.classification, Classification::Pass, "{v:?}");
        assert!(v.reason.contains("under the floor 1%"), "{}", v.reason);
        // 0.1% against none in a million: significant, but under the floor.
        let v = compare_proportions(counts(1000, 1_000_000), counts(0, 1_000_000), &floor).unwrap();
        assert_eq!(v.classification, Classification::Pass, "{v:?}");
        // Few requests: the interval reaches past the floor, so they are compared.
        let v = compare_proportions(counts(0, 20), counts(0, 20), &floor).unwrap();
        assert!(v.reason.contains("the same error rate"), "{}", v.reason);
        // 12% against 0.05%: far above the floor, a failure.
        let v = compare_proportions(counts(180, 1500), counts(1, 1500), &floor).unwrap();
        assert_eq!((v.classification, v.critical), (Classification::High, true));
        // The Wilson bound: 0 of 1,500 at 98% is z^2/(n+z^2), about 0.28%.
        let upper = wilson_upper(counts(0, 1500), 0.98);
        assert!((upper - 0.0028).abs() < 0.0001, "{upper}");
    }

    #[test]
    fn the_allowed_ratio_lets_a_small_significant_increase_pass() {
        let config = ProportionConfig {
            allowed_increase: 1.5,
            ..ProportionConfig::default()
        };
        // 1.3% against 1.0% over 100k requests each: significant, ratio 1.3.
        let v = compare_proportions(counts(1300, 100_000), counts(1000, 100_000), &config).unwrap();
        assert_eq!(
            (v.classification, v.test),
            (Classification::Pass, Some(ProportionTest::TwoProportionZ))
        );
        let interval =
            difference_interval(counts(1300, 100_000), counts(1000, 100_000), 0.98).unwrap();
        assert!(interval[0] > 0.0 && interval[1] < 0.006, "{interval:?}");
    }
}
