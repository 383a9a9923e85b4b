//! How a simulated app version behaves: its error ratio, its latency distribution, how it
//! degrades over time and under load. Declared with annotations on the pod template
//! (README.md, "Sandbox traffic"); the defaults are a healthy service.

use std::time::Duration;

use serde_json::Value;

use crate::units::parse_duration;

/// The annotations a pod template (or a Service) may carry.
pub mod annotations {
    /// Pod template: the fraction of requests that fail (`0.02`). Default 0.0005.
    pub const ERROR_RATIO: &str = "sandbox.glidepath.dev/error-ratio";
    /// Pod template: the status code failed requests get. Default 500.
    pub const ERROR_CODE: &str = "sandbox.glidepath.dev/error-code";
    /// Pod template: median latency (`40ms`).
    pub const LATENCY_P50: &str = "sandbox.glidepath.dev/latency-p50";
    /// Pod template: 99th percentile latency (`180ms`).
    pub const LATENCY_P99: &str = "sandbox.glidepath.dev/latency-p99";
    /// Pod template: the version starts to degrade this long after its first pod appeared.
    pub const DEGRADE_AFTER: &str = "sandbox.glidepath.dev/degrade-after";
    /// Pod template: how long the degradation takes to reach its full effect. Default 30s.
    pub const DEGRADE_OVER: &str = "sandbox.glidepath.dev/degrade-over";
    /// Pod template: the error ratio once degraded.
    pub const DEGRADED_ERROR_RATIO: &str = "sandbox.glidepath.dev/degraded-error-ratio";
    /// Pod template: latency is multiplied by this once degraded (`3`).
    pub const DEGRADED_LATENCY_FACTOR: &str = "sandbox.glidepath.dev/degraded-latency-factor";
    /// Pod template: requests per second one ready pod serves before latency climbs and,
    /// past it, requests are shed with 503. Unset means unlimited.
    pub const CAPACITY_RPS: &str = "sandbox.glidepath.dev/capacity-rps";
    /// Service or HTTPRoute: simulated user requests per second. Default 20.
    pub const RPS: &str = "sandbox.glidepath.dev/rps";
    /// Service or HTTPRoute: `flat` (default) or `daily` (peaks at 15:00 UTC, quiet at 03:00).
    pub const SHAPE: &str = "sandbox.glidepath.dev/traffic-shape";
    /// Service: availability objective the 30-day history is written against (`99.9`).
    pub const HISTORY_OBJECTIVE: &str = "sandbox.glidepath.dev/history-objective";
    /// Service: fraction of that objective's error budget the history already spent.
    pub const HISTORY_BUDGET_SPENT: &str = "sandbox.glidepath.dev/history-budget-spent";
    /// Set by the sandbox on Services and HTTPRoutes: the loopback URL that answers for it.
    pub const ENDPOINT: &str = "sandbox.glidepath.dev/endpoint";
}

/// A version's declared behaviour.
#[derive(Debug, Clone, PartialEq)]
pub struct Behaviour {
    /// Fraction of requests that fail.
    pub error_ratio: f64,
    /// Status code of a failed request.
    pub error_code: u16,
    /// Median latency, seconds.
    pub p50: f64,
    /// 99th percentile latency, seconds.
    pub p99: f64,
    /// When degradation starts, after the version first appeared.
    pub degrade_after: Option<Duration>,
    /// Ramp to full degradation.
    pub degrade_over: Duration,
    /// Error ratio once degraded.
    pub degraded_error_ratio: Option<f64>,
    /// Latency factor once degraded.
    pub degraded_latency_factor: Option<f64>,
    /// Requests per second per ready pod before saturation.
    pub capacity_rps: Option<f64>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            error_ratio: 0.0005,
            error_code: 500,
            p50: 0.040,
            p99: 0.180,
            degrade_after: None,
            degrade_over: Duration::from_secs(30),
            degraded_error_ratio: None,
            degraded_latency_factor: None,
            capacity_rps: None,
        }
    }
}

/// What one request experiences at a moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conditions {
    /// Probability of an error.
    pub error_ratio: f64,
    /// Probability of being shed for overload (503).
    pub shed_ratio: f64,
    /// Status code of an error.
    pub error_code: u16,
    /// Median latency, seconds.
    pub p50: f64,
    /// 99th percentile latency, seconds.
    pub p99: f64,
}

/// z of the 99th percentile of the standard normal distribution.
const Z99: f64 = 2.326_347_874_040_841;

impl Conditions {
    /// σ of the log-normal latency distribution.
    pub fn sigma(&self) -> f64 {
        ((self.p99 / self.p50).ln() / Z99).max(0.0)
    }

    /// Mean latency, seconds.
    pub fn mean(&self) -> f64 {
        self.p50 * (self.sigma().powi(2) / 2.0).exp()
    }

    /// The fraction of requests faster than `secs`.
    pub fn cdf(&self, secs: f64) -> f64 {
        if secs <= 0.0 {
            return 0.0;
        }
        let sigma = self.sigma();
        if sigma == 0.0 {
            return if secs >= self.p50 { 1.0 } else { 0.0 };
        }
        normal_cdf((secs / self.p50).ln() / sigma)
    }

    /// One request's latency, seconds.
    pub fn sample_latency(&self, rng: &mut Rng) -> f64 {
        self.p50 * (self.sigma() * rng.normal()).exp()
    }

    /// One request's status code.
    pub fn sample_code(&self, rng: &mut Rng) -> u16 {
        let u = rng.uniform();
        if u < self.shed_ratio {
            503
        } else if u < self.shed_ratio + (1.0 - self.shed_ratio) * self.error_ratio {
            self.error_code
        } else {
            200
        }
    }
}

fn parse_ratio(v: &str) -> Option<f64> {
    let v = v.trim();
    let x = match v.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().ok()? / 100.0,
        None => v.parse::<f64>().ok()?,
    };
    (0.0..=1.0).contains(&x).then_some(x)
}

fn secs(v: &str) -> Option<f64> {
    parse_duration(v.trim())
        .ok()
        .map(|d| d.as_secs_f64())
        .filter(|s| *s > 0.0)
}

/// Reads an annotation of an object.
pub fn annotation<'a>(o: &'a Value, key: &str) -> Option<&'a str> {
    o.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

impl Behaviour {
    /// The behaviour declared by `annotations` (of a pod), on top of `base`. Malformed
    /// values are ignored (and the base kept), as a real app ignores a bad flag's default.
    pub fn from_annotations(o: &Value, base: &Behaviour) -> Behaviour {
        use annotations as a;
        let mut b = base.clone();
        if let Some(x) = annotation(o, a::ERROR_RATIO).and_then(parse_ratio) {
            b.error_ratio = x;
        }
        if let Some(x) = annotation(o, a::ERROR_CODE).and_then(|c| c.trim().parse::<u16>().ok())
            && (400..600).contains(&x)
        {
            b.error_code = x;
        }
        if let Some(x) = annotation(o, a::LATENCY_P50).and_then(secs) {
            b.p50 = x;
            if b.p99 < x {
                b.p99 = x * 4.5;
            }
        }
        if let Some(x) = annotation(o, a::LATENCY_P99).and_then(secs) {
            b.p99 = x.max(b.p50);
        }
        if let Some(x) = annotation(o, a::DEGRADE_AFTER).and_then(|d| parse_duration(d.trim()).ok())
        {
            b.degrade_after = Some(x);
        }
        if let Some(x) = annotation(o, a::DEGRADE_OVER).and_then(|d| parse_duration(d.trim()).ok())
        {
            b.degrade_over = x;
        }
        if let Some(x) = annotation(o, a::DEGRADED_ERROR_RATIO).and_then(parse_ratio) {
            b.degraded_error_ratio = Some(x);
        }
        if let Some(x) = annotation(o, a::DEGRADED_LATENCY_FACTOR)
            .and_then(|f| f.trim().parse::<f64>().ok())
            .filter(|f| *f > 0.0)
        {
            b.degraded_latency_factor = Some(x);
        }
        if let Some(x) = annotation(o, a::CAPACITY_RPS)
            .and_then(|f| f.trim().parse::<f64>().ok())
            .filter(|f| *f > 0.0)
        {
            b.capacity_rps = Some(x);
        }
        b
    }

    /// Conditions for a version this `age` old, serving `rps` on `ready` pods.
    pub fn conditions(&self, age: Duration, rps: f64, ready: u32) -> Conditions {
        let mut c = Conditions {
            error_ratio: self.error_ratio,
            shed_ratio: 0.0,
            error_code: self.error_code,
            p50: self.p50,
            p99: self.p99,
        };
        if let Some(after) = self.degrade_after
            && age > after
        {
            let ramp = self.degrade_over.as_secs_f64();
            let f = if ramp <= 0.0 {
                1.0
            } else {
                ((age - after).as_secs_f64() / ramp).min(1.0)
            };
            if let Some(e) = self.degraded_error_ratio {
                c.error_ratio += (e - c.error_ratio) * f;
            }
            if let Some(k) = self.degraded_latency_factor {
                let m = 1.0 + (k - 1.0) * f;
                c.p50 *= m;
                c.p99 *= m;
            }
        }
        if let Some(cap) = self.capacity_rps {
            let rho = rps / (cap * f64::from(ready.max(1)));
            // Queueing: latency grows as 1/(1-ρ), capped; past capacity the excess is shed.
            let m = 1.0 / (1.0 - rho.min(0.9));
            c.p50 *= m;
            c.p99 *= m;
            if rho > 1.0 {
                c.shed_ratio = 1.0 - 1.0 / rho;
            }
        }
        c
    }
}

/// The standard normal CDF (erfc after W. J. Cody's rational approximations; absolute
/// error below 1e-14, far below what a latency histogram can show).
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

fn erfc(x: f64) -> f64 {
    // Numerical Recipes' erfc (Chebyshev), fractional error < 1.2e-7 is not enough for
    // tails; use the continued complement with exp for |x| and a series near zero.
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// A small, seedable generator (SplitMix64): deterministic history, cheap live traffic.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(f64::MIN_POSITIVE);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// A Poisson count of mean `mean` (Knuth's method: for the small means of a second's
    /// requests; its cost grows with the mean).
    pub fn poisson(&mut self, mean: f64) -> u32 {
        let limit = (-mean).exp();
        let (mut k, mut p) = (0u32, 1.0);
        loop {
            p *= self.uniform();
            if p <= limit {
                return k;
            }
            k += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn annotations_override_the_base() {
        let pod = json!({ "metadata": { "annotations": {
            annotations::ERROR_RATIO: "2%", annotations::LATENCY_P50: "100ms",
            annotations::LATENCY_P99: "1s", annotations::DEGRADE_AFTER: "60s",
            annotations::DEGRADED_ERROR_RATIO: "0.3", annotations::ERROR_CODE: "503",
        } } });
        let b = Behaviour::from_annotations(&pod, &Behaviour::default());
        assert_eq!(b.error_ratio, 0.02);
        assert_eq!(b.error_code, 503);
        assert_eq!((b.p50, b.p99), (0.1, 1.0));
        let early = b.conditions(Duration::from_secs(10), 10.0, 1);
        assert_eq!(early.error_ratio, 0.02);
        let mid = b.conditions(Duration::from_secs(75), 10.0, 1);
        assert!(
            (mid.error_ratio - 0.16).abs() < 1e-12,
            "{}",
            mid.error_ratio
        );
        let late = b.conditions(Duration::from_secs(600), 10.0, 1);
        assert_eq!(late.error_ratio, 0.3);
    }

    #[test]
    fn latency_distribution_has_the_declared_percentiles() {
        let c = Behaviour::default().conditions(Duration::ZERO, 1.0, 1);
        assert!((c.cdf(0.040) - 0.5).abs() < 1e-6);
        assert!((c.cdf(0.180) - 0.99).abs() < 1e-6);
        let mut rng = Rng::new(7);
        let mut xs: Vec<f64> = (0..20_000).map(|_| c.sample_latency(&mut rng)).collect();
        xs.sort_by(f64::total_cmp);
        let p50 = xs[10_000];
        let p99 = xs[19_800];
        assert!((p50 - 0.040).abs() < 0.002, "{p50}");
        assert!((p99 - 0.180).abs() < 0.02, "{p99}");
    }

    #[test]
    fn overload_sheds_and_slows() {
        let b = Behaviour {
            capacity_rps: Some(10.0),
            ..Behaviour::default()
        };
        let c = b.conditions(Duration::ZERO, 40.0, 2);
        assert!((c.shed_ratio - 0.5).abs() < 1e-12);
        assert!(c.p50 > b.p50 * 5.0);
    }
}
