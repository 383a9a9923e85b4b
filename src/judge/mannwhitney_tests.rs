//! Vectors from Kayenta's Mann-Whitney tests (spinnaker/kayenta at a69573b,
//! `kayenta-mannwhitney/src/test/scala/com/netflix/kayenta/mannwhitney/MannWhitneySuite.scala`;
//! the samples are in `tests/fixtures/judge/kayenta/mannwhitney/`). Kayenta's experiment is
//! our canary (`x`), its control our baseline (`y`).

use super::*;

fn sample(text: &str) -> Vec<f64> {
    serde_json::from_str(text).unwrap()
}

macro_rules! fixture {
    ($case:literal) => {
        (
            sample(include_str!(concat!(
                "../../tests/fixtures/judge/kayenta/mannwhitney/",
                $case,
                "/canary.json"
            ))),
            sample(include_str!(concat!(
                "../../tests/fixtures/judge/kayenta/mannwhitney/",
                $case,
                "/baseline.json"
            ))),
        )
    };
}

/// `actual` within 1e-3 of `expected`, relative.
#[track_caller]
fn close(actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() <= 1e-3 * expected.abs(),
        "{actual} is not within 1e-3 relative of {expected}"
    );
}

// MannWhitneySuite, test "Wilcoxon Diff Function".
#[test]
fn wilcoxon_diff_matches_kayenta() {
    let (x, y) = fixture!("wilcoxon-diff-function");
    assert_eq!((x.len(), y.len()), (850, 850));
    close(wilcoxon_diff(&x, &y, 0.0, 0.0).unwrap(), -1.229416);
    close(wilcoxon_diff(&x, &y, 5.0, 0.0).unwrap(), -35.80606);
}

// MannWhitneySuite, test "Test zQuant".
#[test]
fn z_quantile_matches_kayenta() {
    close(normal_quantile(0.01), -2.326348);
}

// MannWhitneySuite, test "Mann-Whitney Confidence Interval & Estimate".
#[test]
fn interval_and_estimate_of_a_clear_shift() {
    let (x, y) = fixture!("ci");
    let r = mann_whitney(&x, &y, 0.95).unwrap();
    close(r.lower, 6.0);
    close(r.upper, 39.0);
    close(r.estimate, 22.5);
    // Every canary value is above every baseline value.
    assert_eq!(r.u, 16.0);
}

// MannWhitneySuite, test "Mann-Whitney Confidence Interval & Estimate: Problem Case".
#[test]
fn interval_and_estimate_of_the_problem_case() {
    let (x, y) = fixture!("ci-problem-case");
    let r = mann_whitney(&x, &y, 0.98).unwrap();
    close(r.lower, -1.4808028936386108E-5);
    close(r.upper, 1.808255910873413E-5);
    close(r.estimate, 1.808255910873413E-5);
}

// MannWhitneySuite, test "Mann-Whitney Confidence Interval & Estimate: Tie out with R Version".
#[test]
fn interval_and_estimate_tie_out_with_r() {
    let (x, y) = fixture!("ci-tie-out-with-r-version");
    let r = mann_whitney(&x, &y, 0.95).unwrap();
    close(r.lower, -0.500002521696696);
    close(r.upper, -3.486287505871302E-5);
    close(r.estimate, -0.4999393907180323);
}

// MannWhitneySuite, test "Mann-Whitney Confidence Interval & Estimate: Tie out with R Version (Large)".
#[test]
fn interval_and_estimate_tie_out_with_r_large() {
    let (x, y) = fixture!("ci-tie-out-with-r-version-large");
    let r = mann_whitney(&x, &y, 0.98).unwrap();
    close(r.lower, -0.4999173250549087);
    close(r.upper, -6.912685789769486E-6);
    // The reference estimate is R's, and Kayenta's own test checks its estimate against it
    // only to 1e-4 absolute (the root finder's tolerance, on a step function whose step
    // straddles zero): so do we.
    assert!((r.estimate - -3.45044082729315E-5).abs() <= 1e-4, "{r:?}");
}

// MannWhitneySuite, test "Mann-Whitney Intermediate Values / Variables".
#[test]
fn intermediate_values_match_kayenta() {
    let (x, y) = fixture!("intermediate-values-variables");
    let s = Sorted::new(&x, &y).unwrap();
    let mu_min = s.x[0] - s.y[s.y.len() - 1];
    let mu_max = s.x[s.x.len() - 1] - s.y[0];
    close(mu_min, -3.124999999999986);
    close(mu_max, 5.555555555555557);
    let zq = -normal_quantile(0.025);
    close(zq, 1.9599639845400536);
    let f = |mu, q| s.wilcoxon_diff(mu, q).unwrap();
    close(f(mu_min, zq), 17.090968923762254);
    close(f(mu_max, zq), -20.997687930433106);
    close(f(mu_min, -zq), 21.01089689284236);
    close(f(mu_max, -zq), -17.077759961353);
    let root = |q: f64| {
        brent(mu_min, mu_max, f(mu_min, q), f(mu_max, q), |mu| {
            s.wilcoxon_diff(mu, q)
        })
        .unwrap()
    };
    close(root(zq), 3.521755377702165E-5);
    close(root(-zq), 2.02456461662334E-5);
    close(root(0.0), 2.6279243045155653E-5);
}

#[test]
fn constant_samples_have_no_interval() {
    assert_eq!(
        mann_whitney(&[2.0, 2.0], &[1.0, 1.0, 1.0], 0.95),
        Err(MannWhitneyError::Constant)
    );
    assert_eq!(
        mann_whitney(&[], &[1.0], 0.95),
        Err(MannWhitneyError::Empty)
    );
    assert_eq!(
        mann_whitney(&[1.0, f64::NAN], &[1.0], 0.95),
        Err(MannWhitneyError::NotFinite)
    );
    assert_eq!(
        mann_whitney(&[f64::MAX, 0.0], &[-f64::MAX, 1.0], 0.95),
        Err(MannWhitneyError::NotFinite)
    );
    for confidence in [0.0, 1.0, f64::NAN, 2.0] {
        assert_eq!(
            mann_whitney(&[1.0, 2.0], &[3.0, 4.0], confidence),
            Err(MannWhitneyError::Confidence)
        );
    }
    assert!(normal_quantile(f64::NAN).is_nan() && normal_quantile(-1.0).is_nan());
}

/// A small deterministic generator (xorshift), so the property tests need no crate.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    fn sample(&mut self, len: usize, shift: f64, round: bool) -> Vec<f64> {
        (0..len)
            .map(|_| {
                let v = self.next() * 10.0 + shift;
                if round { v.round() } else { v }
            })
            .collect()
    }
}

#[test]
fn swapping_canary_and_baseline_negates_the_estimate_and_the_interval() {
    let mut rng = Xorshift(0x9e37_79b9_7f4a_7c15);
    for case in 0..60 {
        // Continuous values: the interval's bounds are single points (found to 1e-4). The
        // estimate is not: with the continuity correction the statistic is exactly zero over
        // the one or two steps around the middle, and any shift there is a root (R and
        // Kayenta alike), so the mirrored estimate is only known to lie within them.
        let (n, m) = (3 + 2 * (case % 9), 5 + 2 * ((case * 7) % 11));
        let x = rng.sample(n, (case % 5) as f64, false);
        let y = rng.sample(m, 0.0, false);
        let a = mann_whitney(&x, &y, 0.95).unwrap();
        let b = mann_whitney(&y, &x, 0.95).unwrap();
        let tol = 2e-4;
        assert!((a.lower + b.upper).abs() <= tol, "case {case}: {a:?} {b:?}");
        assert!((a.upper + b.lower).abs() <= tol, "case {case}: {a:?} {b:?}");
        let (lo, hi) = zero_zone(&x, &y);
        assert!(
            a.estimate >= lo - tol && a.estimate <= hi + tol,
            "case {case}: {a:?}"
        );
        assert!(
            -b.estimate >= lo - tol && -b.estimate <= hi + tol,
            "case {case}: {b:?}"
        );
        assert_eq!(a.u + b.u, (n * m) as f64, "case {case}");
        assert!((a.p_value - b.p_value).abs() < 1e-12, "case {case}");
    }
}

/// The shifts where the continuity-corrected statistic is zero: between the pairwise
/// differences `x_i - y_j` that bound |U - nm/2| <= 1/2, found by brute force.
fn zero_zone(x: &[f64], y: &[f64]) -> (f64, f64) {
    let mut d: Vec<f64> = x
        .iter()
        .flat_map(|a| y.iter().map(move |b| a - b))
        .collect();
    d.sort_by(f64::total_cmp);
    let half = d.len() as f64 / 2.0;
    // U(mu) counts the differences above mu; it is within 1/2 of nm/2 between these two.
    let lo = d[(half - 1.0).floor().max(0.0) as usize];
    let hi = d[((half).ceil() as usize).min(d.len() - 1)];
    (lo, hi)
}

#[test]
fn with_ties_swapping_mirrors_the_interval_and_keeps_the_estimate_inside() {
    let mut rng = Xorshift(0x1234_5678_9abc_def1);
    for case in 0..60 {
        let (n, m) = (4 + case % 13, 4 + (case * 5) % 19);
        let x = rng.sample(n, (case % 4) as f64, true);
        let y = rng.sample(m, 0.0, true);
        let (Ok(a), Ok(b)) = (mann_whitney(&x, &y, 0.9), mann_whitney(&y, &x, 0.9)) else {
            continue;
        };
        let tol = 2e-4;
        assert!((a.lower + b.upper).abs() <= tol, "case {case}: {a:?} {b:?}");
        assert!((a.upper + b.lower).abs() <= tol, "case {case}: {a:?} {b:?}");
        assert!(
            -b.estimate >= a.lower - tol && -b.estimate <= a.upper + tol,
            "case {case}"
        );
        assert_eq!(a.u + b.u, (n * m) as f64, "case {case}");
    }
}

#[test]
fn shifting_the_canary_shifts_the_estimate_and_the_interval() {
    let mut rng = Xorshift(0x2545_f491_4f6c_dd1d);
    for case in 0..30 {
        let x = rng.sample(21 + 2 * case, 0.0, false);
        let y = rng.sample(25, 0.0, false);
        let shifted: Vec<f64> = x.iter().map(|v| v + 3.0).collect();
        let a = mann_whitney(&x, &y, 0.98).unwrap();
        let b = mann_whitney(&shifted, &y, 0.98).unwrap();
        assert!((b.estimate - a.estimate - 3.0).abs() <= 2e-4, "case {case}");
        assert!((b.lower - a.lower - 3.0).abs() <= 2e-4, "case {case}");
        assert!((b.upper - a.upper - 3.0).abs() <= 2e-4, "case {case}");
        assert!(
            a.lower <= a.estimate && a.estimate <= a.upper,
            "case {case}: {a:?}"
        );
    }
}
