//! Kayenta's classifier verdicts (spinnaker/kayenta at a69573b,
//! `kayenta-judge/src/test/scala/com/netflix/kayenta/judge/ClassifierSuite.scala`, every
//! Mann-Whitney test; the samples are in `tests/fixtures/judge/kayenta/classifier/`, one
//! folder per test), then the outcomes Kayenta leaves open.

use super::*;
use crate::judge::config::Direction;
use crate::judge::sample::NanStrategy;

fn sample(text: &str) -> Vec<Option<f64>> {
    serde_json::from_str(text).unwrap()
}

/// A Kayenta case: its samples, the verdict Kayenta's test asserts, the critical flag when
/// the test asserts one, and Kayenta's classifier options as ours.
macro_rules! case {
    ($slug:literal, $class:expr, $critical:expr, $config:expr) => {
        (
            $slug,
            sample(include_str!(concat!(
                "../../tests/fixtures/judge/kayenta/classifier/",
                $slug,
                "/canary.json"
            ))),
            sample(include_str!(concat!(
                "../../tests/fixtures/judge/kayenta/classifier/",
                $slug,
                "/baseline.json"
            ))),
            $class,
            $critical,
            $config,
        )
    };
}

type Case = (
    &'static str,
    Vec<Option<f64>>,
    Vec<Option<f64>>,
    Classification,
    Option<bool>,
    MetricConfig,
);

/// High, low and pass, either way and one way.
fn location_cases() -> Vec<Case> {
    vec![
        // ClassifierSuite, test "Mann-Whitney Classifier Test: Pass Metric".
        case!(
            "pass-metric",
            Classification::Pass,
            None,
            MetricConfig {
                tolerance: 0.1,
                confidence: 0.95,
                direction: Direction::Either,
                ..MetricConfig::default()
            }
        ),
        // ClassifierSuite, test "Mann-Whitney Classifier Test: High Metric".
        case!(
            "high-metric",
            Classification::High,
            None,
            MetricConfig {
                tolerance: 0.1,
                confidence: 0.95,
                direction: Direction::Either,
                ..MetricConfig::default()
            }
        ),
        // ClassifierSuite, test "Mann-Whitney Classifier Test: Low Metric".
        case!(
            "low-metric",
            Classification::Low,
            None,
            MetricConfig {
                tolerance: 0.1,
                confidence: 0.95,
                direction: Direction::Either,
                ..MetricConfig::default()
            }
        ),
        // ClassifierSuite, test "Mann-Whitney Classifier Directional Test: Increase".
        case!(
            "directional-increase",
            Classification::Pass,
            None,
            MetricConfig {
                tolerance: 0.1,
                confidence: 0.95,
                direction: Direction::Increase,
                ..MetricConfig::default()
            }
        ),
    ]
}

/// Directions, and a large input.
fn direction_cases() -> Vec<Case> {
    vec![
        // ClassifierSuite, test "Mann-Whitney Classifier Directional Test: Decrease".
        case!(
            "directional-decrease",
            Classification::Pass,
            None,
            MetricConfig {
                tolerance: 0.1,
                confidence: 0.95,
                direction: Direction::Decrease,
                ..MetricConfig::default()
            }
        ),
        // ClassifierSuite, test "Mann-Whitney Classifier Directional Test: High Metric".
        case!(
            "directional-high-metric",
            Classification::High,
            Some(false),
            MetricConfig {
                tolerance: 0.1,
                confidence: 0.95,
                direction: Direction::Increase,
                ..MetricConfig::default()
            }
        ),
        // ClassifierSuite, test "Mann-Whitney Classifier Directional Test: Low Metric".
        case!(
            "directional-low-metric",
            Classification::Low,
            None,
            MetricConfig {
                tolerance: 0.1,
                confidence: 0.95,
                direction: Direction::Decrease,
                ..MetricConfig::default()
            }
        ),
        // ClassifierSuite, test "Mann-Whitney Classifier Test: High Metric (Large Input)".
        case!(
            "high-metric-large-input",
            Classification::High,
            Some(false),
            MetricConfig {
                tolerance: 0.1,
                confidence: 0.95,
                direction: Direction::Either,
                ..MetricConfig::default()
            }
        ),
    ]
}

/// Mean-ratio effect sizes.
fn mean_ratio_cases() -> Vec<Case> {
    vec![
        // ClassifierSuite, test "Mann-Whitney Classifier Test - Mean Ratio Effect Size: High".
        case!(
            "mean-ratio-effect-size-high",
            Classification::High,
            None,
            MetricConfig {
                tolerance: 0.1,
                confidence: 0.95,
                direction: Direction::Either,
                allowed_decrease: Some(0.8),
                allowed_increase: Some(1.2),
                ..MetricConfig::default()
            }
        ),
        // ClassifierSuite, test "Mann-Whitney Classifier Test - Mean Ratio Effect Size: Low".
        case!(
            "mean-ratio-effect-size-low",
            Classification::Low,
            None,
            MetricConfig {
                tolerance: 0.1,
                confidence: 0.95,
                direction: Direction::Decrease,
                allowed_decrease: Some(0.8),
                allowed_increase: Some(1.2),
                ..MetricConfig::default()
            }
        ),
        // ClassifierSuite, test "Mann-Whitney Classifier Test - Mean Ratio Effect Size: Pass".
        case!(
            "mean-ratio-effect-size-pass",
            Classification::Pass,
            None,
            MetricConfig {
                tolerance: 0.1,
                confidence: 0.95,
                direction: Direction::Either,
                allowed_decrease: Some(0.5),
                allowed_increase: Some(1.0),
                ..MetricConfig::default()
            }
        ),
        // ClassifierSuite, test "Mann-Whitney Classifier Test - Mean Ratio Effect Size: Pass (Large Input)".
        case!(
            "mean-ratio-effect-size-pass-large-input",
            Classification::Pass,
            None,
            MetricConfig {
                tolerance: 0.1,
                confidence: 0.95,
                direction: Direction::Either,
                allowed_decrease: Some(1.0),
                allowed_increase: Some(5.0),
                ..MetricConfig::default()
            }
        ),
    ]
}

/// CLES effect sizes.
fn cles_cases() -> Vec<Case> {
    vec![
        // ClassifierSuite, test "Mann-Whitney Classifier Test - CLES Effect Size: Pass".
        case!(
            "cles-effect-size-pass",
            Classification::Pass,
            None,
            MetricConfig {
                tolerance: 0.2,
                confidence: 0.98,
                direction: Direction::Either,
                effect_size: EffectSizeMeasure::Cles,
                allowed_decrease: Some(0.5),
                allowed_increase: Some(0.8),
                ..MetricConfig::default()
            }
        ),
        // ClassifierSuite, test "Mann-Whitney Classifier Test - CLES Effect Size: High".
        case!(
            "cles-effect-size-high",
            Classification::High,
            None,
            MetricConfig {
                tolerance: 0.2,
                confidence: 0.98,
                direction: Direction::Either,
                effect_size: EffectSizeMeasure::Cles,
                allowed_decrease: Some(0.2),
                allowed_increase: Some(0.8),
                ..MetricConfig::default()
            }
        ),
        // ClassifierSuite, test "Mann-Whitney Classifier Test - CLES Effect Size: Low".
        case!(
            "cles-effect-size-low",
            Classification::Low,
            None,
            MetricConfig {
                tolerance: 0.2,
                confidence: 0.98,
                direction: Direction::Either,
                effect_size: EffectSizeMeasure::Cles,
                allowed_decrease: Some(0.2),
                allowed_increase: Some(0.8),
                ..MetricConfig::default()
            }
        ),
    ]
}

/// Critical metrics and their thresholds.
fn critical_cases() -> Vec<Case> {
    vec![
        // ClassifierSuite, test "Mann-Whitney Classifier Test - Critical Effect Size: Critical High".
        case!(
            "critical-effect-size-critical-high",
            Classification::High,
            Some(true),
            MetricConfig {
                tolerance: 0.1,
                confidence: 0.95,
                direction: Direction::Either,
                critical: true,
                critical_decrease: Some(1.0),
                critical_increase: Some(1.2),
                ..MetricConfig::default()
            }
        ),
        // ClassifierSuite, test "Mann-Whitney Classifier Test - Critical Effect Size: Critical Low".
        // Kayenta's criticalDecrease 1.2 is laxer than its allowed decrease 1.0, which we refuse; 1.0 decides the same (every Low is critical).
        case!(
            "critical-effect-size-critical-low",
            Classification::Low,
            Some(true),
            MetricConfig {
                tolerance: 0.1,
                confidence: 0.95,
                direction: Direction::Either,
                critical: true,
                critical_decrease: Some(1.0),
                critical_increase: Some(1.0),
                ..MetricConfig::default()
            }
        ),
        // ClassifierSuite, test "Mann-Whitney Classifier Test - Critical Effect Size: High".
        case!(
            "critical-effect-size-high",
            Classification::High,
            Some(false),
            MetricConfig {
                tolerance: 0.1,
                confidence: 0.95,
                direction: Direction::Either,
                critical: true,
                allowed_decrease: Some(1.0),
                allowed_increase: Some(5.0),
                critical_decrease: Some(1.0),
                critical_increase: Some(13.0),
                ..MetricConfig::default()
            }
        ),
        // ClassifierSuite, test "Mann-Whitney Classifier Test - Critical Effect Size: Pass".
        case!(
            "critical-effect-size-pass",
            Classification::Pass,
            Some(false),
            MetricConfig {
                tolerance: 0.1,
                confidence: 0.95,
                direction: Direction::Either,
                critical: true,
                allowed_decrease: Some(1.0),
                allowed_increase: Some(13.0),
                critical_decrease: Some(1.0),
                critical_increase: Some(15.0),
                ..MetricConfig::default()
            }
        ),
        // ClassifierSuite, test "Mann-Whitney Classifier Test - Critical Effect Size: Critical High (Default Thresholds)".
        case!(
            "critical-effect-size-critical-high-default-thresholds",
            Classification::High,
            Some(true),
            MetricConfig {
                tolerance: 0.1,
                confidence: 0.95,
                direction: Direction::Either,
                critical: true,
                ..MetricConfig::default()
            }
        ),
    ]
}

/// Identical and tied samples.
fn identical_cases() -> Vec<Case> {
    vec![
        // ClassifierSuite, test "Mann-Whitney Tied Observations".
        case!(
            "tied-observations",
            Classification::Pass,
            None,
            MetricConfig {
                tolerance: 0.1,
                confidence: 0.95,
                direction: Direction::Decrease,
                ..MetricConfig::default()
            }
        ),
        // ClassifierSuite, test "Mann-Whitney Identical Populations".
        case!(
            "identical-populations",
            Classification::Pass,
            None,
            MetricConfig {
                tolerance: 0.1,
                confidence: 0.95,
                direction: Direction::Decrease,
                ..MetricConfig::default()
            }
        ),
        // ClassifierSuite, test "Mann-Whitney Leading Zero Identical Population".
        case!(
            "leading-zero-identical-population",
            Classification::Pass,
            None,
            MetricConfig {
                tolerance: 0.1,
                confidence: 0.95,
                direction: Direction::Decrease,
                ..MetricConfig::default()
            }
        ),
    ]
}

/// Missing data.
fn missing_cases() -> Vec<Case> {
    vec![
        // ClassifierSuite, test "Mann-Whitney Missing Experiment Data".
        case!(
            "missing-experiment-data",
            Classification::Nodata,
            None,
            MetricConfig {
                tolerance: 0.1,
                confidence: 0.95,
                direction: Direction::Decrease,
                ..MetricConfig::default()
            }
        ),
        // ClassifierSuite, test "Mann-Whitney Missing Experiment Data: Critical Metric".
        case!(
            "missing-experiment-data-critical-metric",
            Classification::Nodata,
            Some(true),
            MetricConfig {
                tolerance: 0.1,
                confidence: 0.95,
                direction: Direction::Decrease,
                critical: true,
                ..MetricConfig::default()
            }
        ),
        // ClassifierSuite, test "Mann-Whitney Missing Experiment Data with NaN Replacement".
        // Kayenta passes an empty sample under NaN replacement; we call it Nodata (never a silent pass on no data).
        case!(
            "missing-experiment-data-with-nan-replacement",
            Classification::Nodata,
            None,
            MetricConfig {
                tolerance: 0.1,
                confidence: 0.95,
                direction: Direction::Decrease,
                nan_strategy: NanStrategy::Replace,
                ..MetricConfig::default()
            }
        ),
        // ClassifierSuite, test "Mann-Whitney Missing Data: Reason String".
        case!(
            "missing-data-reason-string",
            Classification::Nodata,
            None,
            MetricConfig {
                tolerance: 0.1,
                confidence: 0.95,
                direction: Direction::Decrease,
                critical: true,
                ..MetricConfig::default()
            }
        ),
    ]
}

/// Mostly tied samples.
fn tied_cases() -> Vec<Case> {
    vec![
        // ClassifierSuite, test "Mann-Whitney Majority Tied Observations".
        case!(
            "majority-tied-observations",
            Classification::Pass,
            None,
            MetricConfig {
                tolerance: 0.1,
                confidence: 0.95,
                direction: Direction::Either,
                ..MetricConfig::default()
            }
        ),
        // ClassifierSuite, test "Mann-Whitney Tied Ranks".
        case!(
            "tied-ranks",
            Classification::High,
            None,
            MetricConfig {
                tolerance: 0.1,
                confidence: 0.95,
                direction: Direction::Either,
                ..MetricConfig::default()
            }
        ),
        // ClassifierSuite, test "Mann-Whitney Tied Ranks With Zeros".
        case!(
            "tied-ranks-with-zeros",
            Classification::High,
            None,
            MetricConfig {
                tolerance: 0.1,
                confidence: 0.95,
                direction: Direction::Either,
                ..MetricConfig::default()
            }
        ),
    ]
}

/// Zero means (an undefined mean ratio).
fn zero_mean_cases() -> Vec<Case> {
    vec![
        // ClassifierSuite, test "Mann-Whitney Zero Mean: High Metric with Effect Size".
        case!(
            "zero-mean-high-metric-with-effect-size",
            Classification::High,
            None,
            MetricConfig {
                tolerance: 0.1,
                confidence: 0.95,
                direction: Direction::Either,
                allowed_decrease: Some(0.8),
                allowed_increase: Some(1.2),
                ..MetricConfig::default()
            }
        ),
        // ClassifierSuite, test "Mann-Whitney Zero Mean: Low Metric with Effect Size".
        case!(
            "zero-mean-low-metric-with-effect-size",
            Classification::Low,
            None,
            MetricConfig {
                tolerance: 0.1,
                confidence: 0.95,
                direction: Direction::Either,
                allowed_decrease: Some(0.8),
                allowed_increase: Some(1.2),
                ..MetricConfig::default()
            }
        ),
        // ClassifierSuite, test "Mann-Whitney Zero Mean: Critical Metric".
        case!(
            "zero-mean-critical-metric",
            Classification::High,
            Some(true),
            MetricConfig {
                tolerance: 0.1,
                confidence: 0.95,
                direction: Direction::Either,
                nan_strategy: NanStrategy::Replace,
                critical: true,
                critical_decrease: Some(0.8),
                critical_increase: Some(1.2),
                ..MetricConfig::default()
            }
        ),
        // ClassifierSuite, test "Mann-Whitney Zero Mean: Pass Metric".
        case!(
            "zero-mean-pass-metric",
            Classification::Pass,
            None,
            MetricConfig {
                tolerance: 0.1,
                confidence: 0.95,
                direction: Direction::Either,
                allowed_decrease: Some(0.8),
                allowed_increase: Some(1.2),
                ..MetricConfig::default()
            }
        ),
    ]
}

fn kayenta_cases() -> Vec<Case> {
    [
        location_cases(),
        direction_cases(),
        mean_ratio_cases(),
        cles_cases(),
        critical_cases(),
        identical_cases(),
        missing_cases(),
        tied_cases(),
        zero_mean_cases(),
    ]
    .concat()
}

#[test]
fn kayentas_classifier_verdicts_are_reproduced() {
    let cases = kayenta_cases();
    assert_eq!(cases.len(), 34);
    for (slug, canary, baseline, class, critical, config) in cases {
        let v = judge_metric(&canary, &baseline, &config).unwrap();
        assert_eq!(v.classification, class, "{slug}: {}", v.reason);
        if let Some(critical) = critical {
            assert_eq!(v.critical, critical, "{slug}: {}", v.reason);
        }
        assert!(!v.reason.is_empty(), "{slug}");
    }
}

// ClassifierSuite, tests "Mann-Whitney Zero Mean: High Metric with Effect Size" and
// "Mann-Whitney Zero Mean: Pass Metric": the deviation (mean ratio) is undefined beside a zero
// mean, and 1 for identical samples.
#[test]
fn the_mean_ratio_is_undefined_beside_a_zero_mean() {
    let config = MetricConfig {
        tolerance: 0.1,
        confidence: 0.95,
        ..MetricConfig::default()
    };
    let v = judge_metric(
        &[Some(54.9), Some(54.5), Some(55.1), Some(55.6), Some(57.4)],
        &[Some(0.0); 5],
        &config,
    )
    .unwrap();
    assert_eq!(
        (v.classification, v.mean_ratio, v.effect_size),
        (Classification::High, None, None)
    );
    let v = judge_metric(&[Some(0.0); 5], &[Some(0.0); 5], &config).unwrap();
    assert_eq!(
        (v.classification, v.mean_ratio),
        (Classification::Pass, Some(1.0))
    );
}

fn values(v: &[f64]) -> Vec<Option<f64>> {
    v.iter().copied().map(Some).collect()
}

#[test]
fn degenerate_samples_have_defined_outcomes() {
    let config = MetricConfig::default();
    // All equal: a pass that says so.
    let v = judge_metric(&values(&[3.0; 4]), &values(&[3.0; 7]), &config).unwrap();
    assert_eq!(v.classification, Classification::Pass);
    assert_eq!(
        v.reason,
        "every value is 3 (4 canary, 7 baseline): no difference"
    );
    // All missing: no data, a failure when the metric must have data.
    let v = judge_metric(&[None, Some(f64::NAN)], &values(&[1.0, 2.0]), &config).unwrap();
    assert_eq!(
        (v.classification, v.critical),
        (Classification::Nodata, false)
    );
    assert_eq!(v.reason, "no canary data: all 2 of its samples are missing");
    let must = MetricConfig {
        must_have_data: true,
        ..MetricConfig::default()
    };
    let v = judge_metric(&[None, None], &values(&[1.0, 2.0]), &must).unwrap();
    assert_eq!(v.classification, Classification::NodataFail);
    // ...replaced by zeros, they are compared as zeros.
    let replace = MetricConfig {
        nan_strategy: NanStrategy::Replace,
        ..MetricConfig::default()
    };
    let v = judge_metric(&[None; 10], &values(&[5.0; 10]), &replace).unwrap();
    assert_eq!(
        (v.classification, v.estimate),
        (Classification::Low, Some(-5.0))
    );
    // A single sample each, different: too few to tell, never a pass.
    let v = judge_metric(&values(&[10.0]), &values(&[1.0]), &config).unwrap();
    assert_eq!(v.classification, Classification::Inconclusive);
    assert!(
        v.reason
            .starts_with("too few samples to tell: with 1 canary and 1 baseline"),
        "{}",
        v.reason
    );
    // A single canary sample far above 120 baseline samples: the rank test can tell.
    let baseline: Vec<f64> = (0..120).map(|i| f64::from(i % 10)).collect();
    let v = judge_metric(&values(&[100.0]), &values(&baseline), &config).unwrap();
    assert_eq!(v.classification, Classification::High, "{}", v.reason);
    // Each sample constant but different: the shift is exactly the difference.
    let v = judge_metric(&values(&[10.0; 6]), &values(&[4.0; 6]), &config).unwrap();
    assert_eq!(
        (v.classification, v.interval, v.estimate),
        (Classification::High, Some([6.0, 6.0]), Some(6.0))
    );
    // Infinite values are never compared, nor passed.
    let v = judge_metric(
        &values(&[1.0, f64::INFINITY]),
        &values(&[1.0, 2.0]),
        &config,
    )
    .unwrap();
    assert_eq!(v.classification, Classification::Inconclusive);
}

#[test]
fn a_critical_inconclusive_metric_is_critical() {
    let config = MetricConfig {
        critical: true,
        ..MetricConfig::default()
    };
    let v = judge_metric(&values(&[1.0, 2.0]), &values(&[3.0, 4.0]), &config).unwrap();
    assert_eq!(
        (v.classification, v.critical),
        (Classification::Inconclusive, true)
    );
}

#[test]
fn the_minimum_p_value_is_the_exact_tests() {
    assert_eq!(min_p_value(1, 1), 1.0);
    assert!((min_p_value(5, 5) - 2.0 / 252.0).abs() < 1e-15);
    assert!((min_p_value(3, 4) - 2.0 / 35.0).abs() < 1e-15);
    assert!(min_p_value(1000, 1000) < 1e-11);
}

#[test]
fn a_wider_canary_fails_only_with_a_spread_limit() {
    let baseline: Vec<f64> = (0..60).map(|i| 100.0 + f64::from(i % 5 - 2)).collect();
    let canary: Vec<f64> = (0..60)
        .map(|i| 100.0 + 6.0 * f64::from(i % 5 - 2))
        .collect();
    let v = judge_metric(
        &values(&canary),
        &values(&baseline),
        &MetricConfig::default(),
    )
    .unwrap();
    assert_eq!(v.classification, Classification::Pass, "{}", v.reason);
    assert_eq!(
        v.spread.unwrap().change,
        crate::judge::spread::SpreadChange::Wider
    );
    let limited = MetricConfig {
        max_spread_ratio: Some(2.0),
        ..MetricConfig::default()
    };
    let v = judge_metric(&values(&canary), &values(&baseline), &limited).unwrap();
    assert_eq!(v.classification, Classification::High);
    assert!(
        v.reason.starts_with("the canary is more spread out"),
        "{}",
        v.reason
    );
}

#[test]
fn bad_options_are_refused_before_any_sample_is_read() {
    let config = MetricConfig {
        confidence: 1.0,
        ..MetricConfig::default()
    };
    assert_eq!(
        judge_metric(&[], &[], &config),
        Err(ConfigError::Confidence(1.0))
    );
}
