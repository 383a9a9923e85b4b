//! Error budgets and multi-window, multi-burn-rate alerts (Google SRE workbook, ch. 5).
//!
//! For a 30-day window the pairs are 14.4x over 1h/5m and 6x over 6h/30m (page), 3x over
//! 1d/2h and 1x over 3d/6h (ticket). Other windows keep the share of budget each pair
//! guards by scaling the windows with the SLO window; the factors stay the same.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ServiceLevel;
use crate::units::format_duration;

/// Who an alert wakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Someone now.
    Page,
    /// Someone in working hours.
    Ticket,
}

/// A long/short window pair with its burn-rate threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowPair {
    /// The long window.
    #[serde(with = "secs")]
    pub long: Duration,
    /// The short window that confirms the burn is still going on.
    #[serde(with = "secs")]
    pub short: Duration,
    /// Burn rate above which the pair alerts.
    pub factor: f64,
    /// Page or ticket.
    pub severity: Severity,
}

mod secs {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::units::format_duration(*d))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        crate::units::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

const THIRTY_DAYS: Duration = Duration::from_secs(30 * 86_400);

/// The SRE workbook's pairs, scaled to `window` (a minute at the least).
pub fn window_pairs(window: Duration) -> Vec<WindowPair> {
    let scale = |d: Duration| {
        let secs = d.as_secs_f64() * window.as_secs_f64() / THIRTY_DAYS.as_secs_f64();
        Duration::from_secs(((secs / 60.0).round().max(1.0) * 60.0) as u64)
    };
    let h = |n: u64| Duration::from_secs(n * 3600);
    let m = |n: u64| Duration::from_secs(n * 60);
    [
        (h(1), m(5), 14.4, Severity::Page),
        (h(6), m(30), 6.0, Severity::Page),
        (h(24), h(2), 3.0, Severity::Ticket),
        (h(72), h(6), 1.0, Severity::Ticket),
    ]
    .into_iter()
    .map(|(long, short, factor, severity)| WindowPair {
        long: scale(long),
        short: scale(short),
        factor,
        severity,
    })
    .collect()
}

/// The pairs for a service level: [`window_pairs`] of its window, no window shorter than
/// what it measures at once (a time slice, or a threshold's sampling minute).
pub fn pairs_for(level: &ServiceLevel) -> Vec<WindowPair> {
    let floor = level.shortest_window();
    window_pairs(level.window)
        .into_iter()
        .map(|p| WindowPair {
            long: p.long.max(floor),
            short: p.short.max(floor),
            ..p
        })
        .collect()
}

/// One pair, checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BurnCheck {
    /// The pair.
    #[serde(flatten)]
    pub pair: WindowPair,
    /// Burn rate over the long window (None: no data).
    pub long_rate: Option<f64>,
    /// Burn rate over the short window.
    pub short_rate: Option<f64>,
    /// Both windows above the factor.
    pub firing: bool,
}

/// The state of an error budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// The objective, when the SLO names it (OpenSLO's displayName).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub objective: String,
    /// The target (0.999).
    pub target: f64,
    /// The rolling window, or the current calendar period's length.
    #[serde(with = "secs")]
    pub window: Duration,
    /// A calendar window's current period start (RFC 3339); the error ratio covers the
    /// period from there to now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_start: Option<String>,
    /// 1 - target.
    pub budget: f64,
    /// The error ratio over the whole window.
    pub error_ratio: Option<f64>,
    /// Share of the budget spent (1.0 = all of it).
    pub consumed: Option<f64>,
    /// Share left; negative once overspent.
    pub remaining: Option<f64>,
    /// Every window pair.
    pub burn_rates: Vec<BurnCheck>,
    /// When the budget runs out at the burn rate of the shortest long window.
    #[serde(default, with = "opt_secs", skip_serializing_if = "Option::is_none")]
    pub exhaustion: Option<Duration>,
}

mod opt_secs {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&crate::units::format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        let text = <Option<String> as serde::Deserialize>::deserialize(d)?;
        text.map(|t| crate::units::parse_duration(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

fn finite(x: Option<f64>) -> Option<f64> {
    x.filter(|v| v.is_finite())
}

/// Computes the budget from error ratios: `over_window` for the SLO window, `ratio(d)` for
/// any other window. Missing or non-finite ratios stay unknown, never zero.
pub fn compute(
    level: &ServiceLevel,
    over_window: Option<f64>,
    ratio: impl Fn(Duration) -> Option<f64>,
) -> Budget {
    let budget = level.budget();
    let error_ratio = finite(over_window);
    let consumed = error_ratio.map(|r| r / budget);
    let remaining = consumed.map(|c| 1.0 - c);
    let burn_rates: Vec<BurnCheck> = pairs_for(level)
        .into_iter()
        .map(|pair| {
            let long_rate = finite(ratio(pair.long)).map(|r| r / budget);
            let short_rate = finite(ratio(pair.short)).map(|r| r / budget);
            let firing = matches!((long_rate, short_rate), (Some(l), Some(s)) if l > pair.factor && s > pair.factor);
            BurnCheck { pair, long_rate, short_rate, firing }
        })
        .collect();
    let current = burn_rates.first().and_then(|b| b.long_rate);
    let exhaustion = match (remaining, current) {
        (Some(r), Some(b)) if r > 0.0 && b > 0.0 => {
            // A tiny burn rate from the server could make this overflow: no estimate then.
            Duration::try_from_secs_f64(r * level.window.as_secs_f64() / b).ok()
        }
        (Some(r), Some(_)) if r <= 0.0 => Some(Duration::ZERO),
        _ => None,
    };
    Budget {
        objective: level.name.clone(),
        target: level.target,
        window: level.window,
        period_start: None,
        budget,
        error_ratio,
        consumed,
        remaining,
        burn_rates,
        exhaustion,
    }
}

/// The budget closest to running out: the least remaining, an unknown one first (a gate
/// never passes on missing data).
pub fn tightest(budgets: &[Budget]) -> Option<&Budget> {
    budgets.iter().min_by(|a, b| {
        let key = |b: &Budget| b.remaining.unwrap_or(f64::NEG_INFINITY);
        key(a).total_cmp(&key(b))
    })
}

impl Budget {
    /// A paragraph for people: remaining share, burn rates, alerts.
    pub fn describe(&self) -> String {
        let pct = |x: Option<f64>| {
            x.map(|v| format!("{:.1}%", v * 100.0))
                .unwrap_or_else(|| "no data".into())
        };
        let mut out = if self.objective.is_empty() {
            String::new()
        } else {
            format!("{}: ", self.objective)
        };
        out.push_str(&format!(
            "target {} over {}: budget {}, error ratio {}, consumed {}, remaining {}",
            pct(Some(self.target)),
            format_duration(self.window),
            pct(Some(self.budget)),
            self.error_ratio
                .map(|r| format!("{:.4}%", r * 100.0))
                .unwrap_or_else(|| "no data".into()),
            pct(self.consumed),
            pct(self.remaining),
        ));
        if let Some(start) = &self.period_start {
            out.push_str(&format!(" (calendar period from {start})"));
        }
        if let Some(e) = self.exhaustion {
            out.push_str(&format!(", exhausted in {}", format_duration(e)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(target: f64, days: u64) -> ServiceLevel {
        ServiceLevel::windowed_ratio(
            None,
            Some("bad".into()),
            "total".into(),
            target,
            Duration::from_secs(days * 86_400),
        )
    }

    #[test]
    fn thirty_day_pairs_are_the_workbooks() {
        let pairs = window_pairs(THIRTY_DAYS);
        let shown: Vec<(String, String, f64)> = pairs
            .iter()
            .map(|p| (format_duration(p.long), format_duration(p.short), p.factor))
            .collect();
        assert_eq!(
            shown,
            vec![
                ("1h".into(), "5m".into(), 14.4),
                ("6h".into(), "30m".into(), 6.0),
                ("1d".into(), "2h".into(), 3.0),
                ("3d".into(), "6h".into(), 1.0),
            ]
        );
        // A 7-day SLO scales the windows by 7/30.
        let week = window_pairs(Duration::from_secs(7 * 86_400));
        assert_eq!(format_duration(week[0].long), "14m");
        assert_eq!(format_duration(week[3].long), "16h48m");
    }

    #[test]
    fn budget_maths_by_hand() {
        // 99.9% over 30 days: budget 0.1%. An error ratio of 0.05% spent half of it.
        let b = compute(&level(0.999, 30), Some(0.0005), |d| {
            if d == Duration::from_secs(3600) {
                Some(0.0144 + 0.0001)
            } else {
                Some(0.0001)
            }
        });
        assert!((b.budget - 0.001).abs() < 1e-12);
        assert!((b.consumed.unwrap() - 0.5).abs() < 1e-9);
        assert!((b.remaining.unwrap() - 0.5).abs() < 1e-9);
        // 1h burn: 0.0145 / 0.001 = 14.5 > 14.4, but the 5m window burns 0.1x: no page.
        assert!((b.burn_rates[0].long_rate.unwrap() - 14.5).abs() < 1e-9);
        assert!(!b.burn_rates[0].firing);
        // Half the budget left at 14.5x: 0.5 * 30d / 14.5 = 24.83h.
        let e = b.exhaustion.unwrap().as_secs_f64() / 3600.0;
        assert!((e - 0.5 * 720.0 / 14.5).abs() < 1e-6, "{e}");
    }

    #[test]
    fn a_fast_burn_pages_and_overspending_goes_negative() {
        let b = compute(&level(0.99, 30), Some(0.02), |_| Some(0.2));
        assert_eq!(b.remaining.map(|r| (r * 1e9).round() / 1e9), Some(-1.0));
        assert!(b.burn_rates.iter().all(|c| c.firing));
        assert_eq!(b.exhaustion, Some(Duration::ZERO));
    }

    #[test]
    fn no_data_stays_unknown() {
        let b = compute(&level(0.999, 30), Some(f64::NAN), |_| None);
        assert_eq!((b.consumed, b.remaining, b.exhaustion), (None, None, None));
        assert!(
            b.burn_rates
                .iter()
                .all(|c| !c.firing && c.long_rate.is_none())
        );
    }
}
