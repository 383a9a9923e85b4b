//! The Mann-Whitney U test (Wilcoxon rank-sum) with the Hodges-Lehmann estimate of the shift
//! between two samples and its confidence interval.
//!
//! The estimate and the interval bounds are the shifts `mu` at which the normal approximation
//! of the rank-sum statistic of `x - mu` against `y` (with the tie and continuity corrections)
//! equals 0 and the two `z` quantiles: the method of R's `wilcox.test(conf.int = TRUE)` and of
//! Kayenta's Mann-Whitney module, so verdicts agree with theirs. The roots are found with
//! Brent's method to the same absolute tolerance (1e-4) those use, which matters: the
//! function is a step function of `mu`, so where a step straddles zero any point within the
//! tolerance is "the" root and the reference values carry that noise.

use statrs::distribution::{ContinuousCDF, Normal};

/// Brent's method stops when the bracket is this narrow (R's `uniroot(tol = 1e-4)`).
const ROOT_TOLERANCE: f64 = 1e-4;
/// Brent's method gives up after this many steps; it converges in far fewer.
const ROOT_MAX_STEPS: usize = 1000;

/// The test's outcome for samples `x` (canary) and `y` (baseline): shifts are `x - y`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitney {
    /// Lower bound of the confidence interval of the shift.
    pub lower: f64,
    /// Upper bound of the confidence interval of the shift.
    pub upper: f64,
    /// The Hodges-Lehmann estimate of the shift.
    pub estimate: f64,
    /// The U statistic of `x`: how many pairs `(x_i, y_j)` have `x_i > y_j`, ties counting 1/2.
    pub u: f64,
    /// Two-sided p-value of "no shift" (normal approximation, tie- and continuity-corrected).
    pub p_value: f64,
}

/// Why the test has no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MannWhitneyError {
    /// A sample is empty.
    #[error("a sample is empty")]
    Empty,
    /// Every value of `x` is one number and every value of `y` another: the ranks carry no
    /// variance, so there is no interval to find.
    #[error("each sample is constant, so the rank statistic has no variance")]
    Constant,
    /// A value or a difference of values is not a finite number.
    #[error("a value is not a finite number")]
    NotFinite,
    /// The confidence is not between 0 and 1, exclusive.
    #[error("the confidence must be between 0 and 1, exclusive")]
    Confidence,
}

/// The two samples, sorted once; every evaluation of the rank statistic merges them.
struct Sorted {
    x: Vec<f64>,
    y: Vec<f64>,
}

impl Sorted {
    fn new(x: &[f64], y: &[f64]) -> Result<Sorted, MannWhitneyError> {
        if x.is_empty() || y.is_empty() {
            return Err(MannWhitneyError::Empty);
        }
        if x.iter().chain(y).any(|v| !v.is_finite()) {
            return Err(MannWhitneyError::NotFinite);
        }
        let mut x = x.to_vec();
        let mut y = y.to_vec();
        x.sort_by(f64::total_cmp);
        y.sort_by(f64::total_cmp);
        Ok(Sorted { x, y })
    }

    /// The sum of the (tie-averaged) ranks of `x - mu` among `x - mu` and `y`, and the sum of
    /// `t^3 - t` over groups of `t` tied values. Subtracting `mu` keeps `x` sorted (rounding
    /// is monotone), so one merge pass ranks both.
    fn rank_sum(&self, mu: f64) -> (f64, f64) {
        let (x, y) = (&self.x, &self.y);
        let (mut i, mut j) = (0, 0);
        let mut next_rank = 1.0;
        let (mut sum, mut ties) = (0.0, 0.0);
        while i < x.len() || j < y.len() {
            let v = match (x.get(i), y.get(j)) {
                (Some(a), Some(b)) => (a - mu).min(*b),
                (Some(a), None) => a - mu,
                (None, Some(b)) => *b,
                (None, None) => break,
            };
            let mut tied_x = 0.0;
            while x.get(i).is_some_and(|a| a - mu == v) {
                tied_x += 1.0;
                i += 1;
            }
            let mut tied_y = 0.0;
            while y.get(j).is_some_and(|b| *b == v) {
                tied_y += 1.0;
                j += 1;
            }
            let t: f64 = tied_x + tied_y;
            sum += tied_x * (next_rank + (t - 1.0) / 2.0);
            ties += t * t * t - t;
            next_rank += t;
        }
        (sum, ties)
    }

    /// U of `x` and the two-sided p-value at no shift.
    fn rank_test(&self) -> Result<(f64, f64), MannWhitneyError> {
        let n = self.x.len() as f64;
        let (rank_sum, ties) = self.rank_sum(0.0);
        let z = self.standardised(rank_sum, ties)?;
        let u = rank_sum - n * (n + 1.0) / 2.0;
        Ok((u, (2.0 * normal_upper_tail(z.abs())).min(1.0)))
    }

    /// The standardised rank statistic of `x - mu` against `y`, less `quantile`: zero where
    /// `mu` is the bound of the interval that `quantile` stands for.
    fn wilcoxon_diff(&self, mu: f64, quantile: f64) -> Result<f64, MannWhitneyError> {
        let (rank_sum, ties) = self.rank_sum(mu);
        Ok(self.standardised(rank_sum, ties)? - quantile)
    }

    /// The continuity-corrected normal score of a rank sum of `x` with tie term `ties`.
    fn standardised(&self, rank_sum: f64, ties: f64) -> Result<f64, MannWhitneyError> {
        let n = self.x.len() as f64;
        let m = self.y.len() as f64;
        let dz = rank_sum - n * (n + 1.0) / 2.0 - n * m / 2.0;
        let correction = if dz == 0.0 { 0.0 } else { dz.signum() * 0.5 };
        let sigma = ((n * m / 12.0) * ((n + m + 1.0) - ties / ((n + m) * (n + m - 1.0)))).sqrt();
        if sigma == 0.0 || sigma.is_nan() {
            return Err(MannWhitneyError::Constant);
        }
        Ok((dz - correction) / sigma)
    }
}

/// The U statistic of `x` against `y` and the two-sided p-value of "no shift", without the
/// interval (which constant samples do not have, though they have a p-value).
pub fn rank_test(x: &[f64], y: &[f64]) -> Result<(f64, f64), MannWhitneyError> {
    Sorted::new(x, y)?.rank_test()
}

/// The standardised rank statistic of `x - mu` against `y`, less `quantile` (R's `wdiff`,
/// Kayenta's `wilcoxonDiff`): exposed for the tests that check it against Kayenta's values.
pub fn wilcoxon_diff(
    x: &[f64],
    y: &[f64],
    mu: f64,
    quantile: f64,
) -> Result<f64, MannWhitneyError> {
    Sorted::new(x, y)?.wilcoxon_diff(mu, quantile)
}

/// The standard normal quantile at `p` (NaN for `p` outside [0, 1]).
pub fn normal_quantile(p: f64) -> f64 {
    if !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    standard_normal().inverse_cdf(p)
}

/// The standard normal distribution's upper tail at `z`.
pub(crate) fn normal_upper_tail(z: f64) -> f64 {
    standard_normal().sf(z)
}

fn standard_normal() -> Normal {
    // Mean 0 and standard deviation 1 are always accepted; the fallback is unreachable.
    Normal::new(0.0, 1.0).unwrap_or_else(|_| Normal::standard())
}

/// Runs the test on `x` (canary) against `y` (baseline) at `confidence` (in (0, 1)).
pub fn mann_whitney(
    x: &[f64],
    y: &[f64],
    confidence: f64,
) -> Result<MannWhitney, MannWhitneyError> {
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(MannWhitneyError::Confidence);
    }
    let s = Sorted::new(x, y)?;
    let (x_min, x_max, y_min, y_max) = (s.x[0], s.x[s.x.len() - 1], s.y[0], s.y[s.y.len() - 1]);
    let mu_min = x_min - y_max;
    let mu_max = x_max - y_min;
    if !mu_min.is_finite() || !mu_max.is_finite() {
        return Err(MannWhitneyError::NotFinite);
    }
    // Negative: the lower quantile of the two-sided interval.
    let zq = normal_quantile((1.0 - confidence) / 2.0);
    // The statistic does not depend on the quantile, which is only subtracted: evaluate the
    // ends once for the three roots.
    let at_min = s.wilcoxon_diff(mu_min, 0.0)?;
    let at_max = s.wilcoxon_diff(mu_max, 0.0)?;
    let bound = |q: f64| -> Result<f64, MannWhitneyError> {
        let (f_lower, f_upper) = (at_min - q, at_max - q);
        if f_lower <= 0.0 {
            Ok(mu_min)
        } else if f_upper >= 0.0 {
            Ok(mu_max)
        } else {
            brent(mu_min, mu_max, f_lower, f_upper, |mu| {
                s.wilcoxon_diff(mu, q)
            })
        }
    };
    let lower = bound(-zq)?;
    let upper = bound(zq)?;
    let estimate = brent(mu_min, mu_max, at_min, at_max, |mu| {
        s.wilcoxon_diff(mu, 0.0)
    })?;
    let (u, p_value) = s.rank_test()?;
    Ok(MannWhitney {
        lower,
        upper,
        estimate,
        u,
        p_value,
    })
}

/// Whether `v` is zero or the float next to it (the test for "found a root exactly").
fn is_zero(v: f64) -> bool {
    v.abs() <= f64::from_bits(1)
}

/// Brent's root finder (Brent 1973, "Algorithms for Minimization without Derivatives",
/// ch. 4: bisection, secant steps and inverse quadratic interpolation) on `[a, b]`, where
/// `fa` and `fb` are `f` at the ends; returns the last estimate if it has not converged.
fn brent(
    a: f64,
    b: f64,
    fa: f64,
    fb: f64,
    f: impl Fn(f64) -> Result<f64, MannWhitneyError>,
) -> Result<f64, MannWhitneyError> {
    if is_zero(fa) {
        return Ok(a);
    }
    if is_zero(fb) {
        return Ok(b);
    }
    // `b` is the best estimate, `a` the previous one, `c` the point that brackets the root
    // with `b`.
    let (mut a, mut b, mut c) = (a, b, a);
    let (mut fa, mut fb, mut fc) = (fa, fb, fa);
    for _ in 0..=ROOT_MAX_STEPS {
        let previous_step = b - a;
        if fc.abs() < fb.abs() {
            (a, b, c) = (b, c, b);
            (fa, fb, fc) = (fb, fc, fb);
        }
        let tolerance = 2.0 * f64::EPSILON * b.abs() + ROOT_TOLERANCE / 2.0;
        let mut step = (c - b) / 2.0;
        if step.abs() <= tolerance || is_zero(fb) {
            return Ok(b);
        }
        if previous_step.abs() >= tolerance && fa.abs() > fb.abs() {
            if let Some(s) = interpolated_step(a, b, c, fa, fb, fc, tolerance, previous_step) {
                step = s;
            }
        }
        if step.abs() < tolerance {
            step = if step > 0.0 { tolerance } else { -tolerance };
        }
        (a, fa) = (b, fb);
        b += step;
        fb = f(b)?;
        if (fb > 0.0 && fc > 0.0) || (fb < 0.0 && fc < 0.0) {
            (c, fc) = (a, fa);
        }
    }
    Ok(b)
}

/// The secant (two points) or inverse quadratic (three points) step from `b`, when it stays
/// well inside the bracket and shrinks faster than bisection would; else `None`.
#[allow(clippy::too_many_arguments)]
fn interpolated_step(
    a: f64,
    b: f64,
    c: f64,
    fa: f64,
    fb: f64,
    fc: f64,
    tolerance: f64,
    previous_step: f64,
) -> Option<f64> {
    let cb = c - b;
    let (mut p, mut q);
    if a == c {
        let t1 = fb / fa;
        p = cb * t1;
        q = 1.0 - t1;
    } else {
        let qa = fa / fc;
        let t1 = fb / fc;
        let t2 = fb / fa;
        p = t2 * (cb * qa * (qa - t1) - (b - a) * (t1 - 1.0));
        q = (qa - 1.0) * (t1 - 1.0) * (t2 - 1.0);
    }
    if p > 0.0 {
        q = -q;
    } else {
        p = -p;
    }
    let inside = p < 0.75 * cb * q - (tolerance * q).abs() / 2.0;
    let faster = p < (previous_step * q / 2.0).abs();
    (inside && faster).then(|| p / q)
}

#[cfg(test)]
#[path = "mannwhitney_tests.rs"]
mod tests;
