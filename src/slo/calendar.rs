//! Calendar-aligned SLO windows: periods of days, weeks, months, quarters or years that
//! start at a civil time in an IANA time zone and repeat from there. The budget window is
//! the current period, from its start to now.

use std::time::Duration;

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, Zoned};

/// The length of one calendar period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// N days.
    Days(i64),
    /// N months (a quarter is 3, a year 12).
    Months(i64),
}

impl Period {
    /// Parses OpenSLO's shorthand: `1d`, `2w`, `1M`, `1Q`, `1Y`.
    pub fn parse(text: &str) -> Result<Period, String> {
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let n: i64 = t[..split]
            .parse()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                format!(
                    "calendar window `{text}` needs a count from 1 to 1000 and a unit, such as 1M"
                )
            })?;
        match &t[split..] {
            "d" => Ok(Period::Days(n)),
            "w" => Ok(Period::Days(7 * n)),
            "M" => Ok(Period::Months(n)),
            "Q" => Ok(Period::Months(3 * n)),
            "Y" => Ok(Period::Months(12 * n)),
            unit => Err(format!(
                "calendar window `{text}`: unit `{unit}` is not a calendar unit; use d, w, M (month), Q (quarter) or Y (year)"
            )),
        }
    }

    /// The span of `k` periods (an error when jiff cannot represent it).
    fn times(self, k: i64) -> Result<Span, jiff::Error> {
        match self {
            Period::Days(n) => Span::new().try_days(n.saturating_mul(k)),
            Period::Months(n) => Span::new().try_months(n.saturating_mul(k)),
        }
    }

    /// A typical length, for estimates before exact calendar arithmetic.
    pub fn nominal(self) -> Duration {
        let days = match self {
            Period::Days(n) => n as f64,
            Period::Months(n) => n as f64 * 365.25 / 12.0,
        };
        Duration::from_secs_f64(days * 86_400.0)
    }
}

/// A calendar-aligned window.
#[derive(Debug, Clone, PartialEq)]
pub struct Calendar {
    /// When the first period starts, in `zone`.
    pub start: DateTime,
    /// The IANA time zone name.
    pub zone: String,
    /// Each period's length.
    pub period: Period,
}

/// The period holding an instant: its start and its end, as unix seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Current {
    /// The period's start.
    pub start: f64,
    /// The period's end.
    pub end: f64,
}

impl Calendar {
    /// Reads `startTime` (`2020-01-21 12:30:00`) and `timeZone` (`America/New_York`).
    pub fn new(start: &str, zone: &str, period: Period) -> Result<Calendar, String> {
        let start: DateTime = start.trim().parse().map_err(|e| {
            format!("calendar startTime `{start}` is not a date and time such as 2020-01-21 12:30:00: {e}")
        })?;
        TimeZone::get(zone).map_err(|e| {
            format!("calendar timeZone `{zone}` is not an IANA time zone such as Europe/Paris: {e}")
        })?;
        Ok(Calendar {
            start,
            zone: zone.to_owned(),
            period,
        })
    }

    /// The period holding `at` (unix seconds).
    pub fn current(&self, at: f64) -> Result<Current, String> {
        let problem = |e: jiff::Error| format!("calendar window from {}: {e}", self.start);
        let zone = TimeZone::get(&self.zone).map_err(problem)?;
        let first: Zoned = self.start.to_zoned(zone).map_err(problem)?;
        let at = Timestamp::from_second(at.floor() as i64).map_err(problem)?;
        let nth = |k: i64| -> Result<Timestamp, String> {
            self.period
                .times(k)
                .and_then(|span| first.checked_add(span))
                .map(|z| z.timestamp())
                .map_err(problem)
        };
        let elapsed = (at.as_second() - first.timestamp().as_second()) as f64;
        let mut k = (elapsed / self.period.nominal().as_secs_f64()).floor() as i64;
        // The estimate is off by at most one or two periods (month lengths, DST).
        for _ in 0..8 {
            let (start, end) = (nth(k)?, nth(k + 1)?);
            if start > at {
                k -= 1;
            } else if end <= at {
                k += 1;
            } else {
                return Ok(Current {
                    start: start.as_second() as f64,
                    end: end.as_second() as f64,
                });
            }
        }
        Err(format!("no calendar period from {} holds {at}", self.start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> f64 {
        text.parse::<Timestamp>().unwrap().as_second() as f64
    }

    #[test]
    fn months_start_on_the_calendar_day_in_the_zone() {
        let c = Calendar::new(
            "2020-01-01 00:00:00",
            "America/New_York",
            Period::parse("1M").unwrap(),
        )
        .unwrap();
        let now = c.current(ts("2026-12-06T09:00:00Z")).unwrap();
        assert_eq!(now.start, ts("2026-12-01T05:00:00Z"), "midnight EST");
        assert_eq!(now.end, ts("2027-01-01T05:00:00Z"));
        // Daylight saving time: July starts at midnight EDT.
        let july = c.current(ts("2026-07-15T00:00:00Z")).unwrap();
        assert_eq!(july.start, ts("2026-07-01T04:00:00Z"));
    }

    #[test]
    fn quarters_weeks_and_instants_before_the_start() {
        let q = Calendar::new("2024-01-01 00:00:00", "UTC", Period::parse("1Q").unwrap()).unwrap();
        let now = q.current(ts("2026-05-20T00:00:00Z")).unwrap();
        assert_eq!(
            (now.start, now.end),
            (ts("2026-04-01T00:00:00Z"), ts("2026-07-01T00:00:00Z"))
        );
        let w = Calendar::new("2026-12-07 00:00:00", "UTC", Period::parse("1w").unwrap()).unwrap();
        let before = w.current(ts("2026-12-06T09:00:00Z")).unwrap();
        assert_eq!(before.start, ts("2026-11-30T00:00:00Z"));
    }

    #[test]
    fn bad_units_and_zones_say_what_to_write() {
        assert!(
            Period::parse("1h")
                .unwrap_err()
                .contains("use d, w, M (month), Q (quarter) or Y (year)")
        );
        assert!(Period::parse("M").unwrap_err().contains("needs a count"));
        let e = Calendar::new("2020-01-01 00:00:00", "Mars/Olympus", Period::Days(1)).unwrap_err();
        assert!(e.contains("not an IANA time zone"), "{e}");
        let e = Calendar::new("yesterday", "UTC", Period::Days(1)).unwrap_err();
        assert!(e.contains("not a date and time"), "{e}");
        // Periods too far from the start for jiff are an error, never a panic.
        let far = Calendar::new("-009999-01-01 00:00:00", "UTC", Period::Months(1)).unwrap();
        assert!(far.current(ts("2026-12-06T09:00:00Z")).is_err());
    }
}
