//! Intended send times of the open model: a constant rate, or a rate that changes linearly
//! over stages (a ramp). The k-th request is due when the expected count of arrivals
//! reaches k, solved exactly per stage, so a ramp sends neither a burst nor a gap at a
//! stage boundary.

use std::time::Duration;

/// A stage of a ramp: the rate moves linearly to `rate` over `duration`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct RampStage {
    /// How long the stage lasts.
    pub duration: Duration,
    /// Requests per second at its end.
    pub rate: f64,
}

/// One linear piece of the rate: from `from` to `to` requests per second over `seconds`.
#[derive(Debug, Clone, Copy)]
struct Piece {
    seconds: f64,
    from: f64,
    to: f64,
}

/// The highest rate a load test may ask for, far beyond what one process can send; a higher
/// one would make the schedule spin instead of sending.
pub const MAX_RATE: f64 = 1_000_000.0;

/// Arrival times (offsets from the start) for rate pieces.
#[derive(Debug, Clone)]
pub(crate) struct Arrivals {
    pieces: Vec<Piece>,
    /// Index of the current piece, its start offset and the arrivals expected before it.
    piece: usize,
    start: f64,
    before: f64,
    next: u64,
}

impl Arrivals {
    /// `warmup` at `start_rate`, then the stages; a constant rate is one flat stage.
    pub fn new(start_rate: f64, warmup: Duration, stages: &[RampStage]) -> Result<Self, String> {
        let ok = |r: f64| (0.0..=MAX_RATE).contains(&r);
        if !ok(start_rate) || stages.iter().any(|s| !ok(s.rate)) {
            return Err(format!(
                "rates must be from 0 to {MAX_RATE} requests per second"
            ));
        }
        if start_rate == 0.0 && stages.iter().all(|s| s.rate == 0.0) {
            return Err("the rate must be above zero somewhere".into());
        }
        let mut pieces = vec![Piece {
            seconds: warmup.as_secs_f64(),
            from: start_rate,
            to: start_rate,
        }];
        let mut rate = start_rate;
        for s in stages {
            pieces.push(Piece {
                seconds: s.duration.as_secs_f64(),
                from: rate,
                to: s.rate,
            });
            rate = s.rate;
        }
        Ok(Arrivals {
            pieces,
            piece: 0,
            start: 0.0,
            before: 0.0,
            next: 0,
        })
    }
}

impl Iterator for Arrivals {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        loop {
            let p = *self.pieces.get(self.piece)?;
            // Arrivals expected t seconds into the piece: from·t + (to − from)·t²/(2T).
            // The next arrival is due when that reaches d = next − before.
            let d = self.next as f64 - self.before;
            let a = if p.seconds > 0.0 {
                (p.to - p.from) / (2.0 * p.seconds)
            } else {
                0.0
            };
            let b = p.from;
            let disc = b * b + 4.0 * a * d;
            let t = if d <= 0.0 {
                Some(0.0)
            } else if disc < 0.0 || b + disc.sqrt() <= 0.0 {
                None
            } else {
                // The smaller root, in a form that stays exact as a tends to zero.
                Some(2.0 * d / (b + disc.sqrt()))
            };
            match t {
                Some(t) if t < p.seconds => {
                    self.next += 1;
                    return Some(Duration::from_secs_f64(self.start + t));
                }
                _ => {
                    self.before += (p.from + p.to) / 2.0 * p.seconds;
                    self.start += p.seconds;
                    self.piece += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(v: &[Duration]) -> Vec<f64> {
        v.iter()
            .map(|d| (d.as_secs_f64() * 1e6).round() / 1e6)
            .collect()
    }

    #[test]
    fn a_constant_rate_is_evenly_spaced() {
        let stages = [RampStage {
            duration: Duration::from_secs(1),
            rate: 4.0,
        }];
        let times: Vec<_> = Arrivals::new(4.0, Duration::ZERO, &stages)
            .unwrap()
            .collect();
        assert_eq!(secs(&times), vec![0.0, 0.25, 0.5, 0.75]);
    }

    #[test]
    fn a_ramp_sends_the_area_under_the_rate() {
        // 0 → 100/s over 10 s is 500 requests, a quarter of them in the first half.
        let stages = [RampStage {
            duration: Duration::from_secs(10),
            rate: 100.0,
        }];
        let times: Vec<_> = Arrivals::new(0.0, Duration::ZERO, &stages)
            .unwrap()
            .collect();
        assert!((499..=501).contains(&times.len()), "{}", times.len());
        let first_half = times.iter().filter(|t| t.as_secs_f64() < 5.0).count();
        assert!((124..=126).contains(&first_half), "{first_half}");
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn warmup_then_a_plateau_then_down_to_zero() {
        let stages = [
            RampStage {
                duration: Duration::from_secs(2),
                rate: 10.0,
            },
            RampStage {
                duration: Duration::from_secs(2),
                rate: 0.0,
            },
        ];
        let times: Vec<_> = Arrivals::new(10.0, Duration::from_secs(1), &stages)
            .unwrap()
            .collect();
        // 10 in the warm-up, 20 on the plateau, 10 on the way down.
        let between = |a: f64, b: f64| {
            times
                .iter()
                .filter(|t| (a..b).contains(&t.as_secs_f64()))
                .count()
        };
        assert_eq!(between(0.0, 1.0), 10);
        assert_eq!(between(1.0, 3.0), 20);
        assert!(
            (9..=10).contains(&between(3.0, 5.0)),
            "{}",
            between(3.0, 5.0)
        );
        assert!(times.last().unwrap().as_secs_f64() < 5.0);
    }

    #[test]
    fn bad_rates_are_refused() {
        assert!(Arrivals::new(f64::NAN, Duration::ZERO, &[]).is_err());
        assert!(Arrivals::new(0.0, Duration::ZERO, &[]).is_err());
        assert!(
            Arrivals::new(
                -1.0,
                Duration::ZERO,
                &[RampStage {
                    duration: Duration::from_secs(1),
                    rate: 5.0
                }]
            )
            .is_err()
        );
    }
}
