//! Durations (`30s`, `5m`, `1h30m`) and percentages (`25%`) as they are written in files.

use std::fmt;
use std::time::Duration;

use serde::de;

/// A duration written as `500ms`, `30s`, `5m`, `1h30m` or `2d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Span(pub Duration);

impl Span {
    /// The wrapped duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

/// The longest duration glidepath accepts anywhere: 3650 days (ten years). Longer ones are
/// mistakes, and would overflow the clocks they are added to.
pub const MAX_DURATION: Duration = Duration::from_secs(3650 * 86_400);

/// Parses `1h30m`, `500ms`, `2d`, `90s`. A bare number is refused: units are never guessed;
/// a duration over [`MAX_DURATION`] is refused.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    let explain = || {
        format!(
            "invalid duration `{text}`; expected a number with a unit, such as `500ms`, `30s`, `5m`, `1h30m` or `2d`"
        )
    };
    if s.is_empty() {
        return Err(explain());
    }
    let too_long = || {
        format!(
            "duration `{}` is longer than the maximum of {}; give a shorter one",
            shorten(text),
            format_duration(MAX_DURATION)
        )
    };
    let mut total = 0.0_f64;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(explain)?;
        if digits == 0 {
            return Err(explain());
        }
        let number: f64 = rest[..digits].parse().map_err(|_| explain())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            "w" => 604_800.0,
            _ => return Err(explain()),
        };
        rest = &rest[unit_len..];
        total += number * unit;
        if !total.is_finite() || total > MAX_DURATION.as_secs_f64() {
            return Err(too_long());
        }
    }
    Duration::try_from_secs_f64(total).map_err(|_| too_long())
}

/// A value quoted in an error, cut short if someone pasted a novel.
fn shorten(text: &str) -> String {
    if text.chars().count() <= 40 {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(40).collect::<String>())
    }
}

/// Formats a duration the way files write it: `1h30m`, `45s`, `250ms`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let mut secs = d.as_secs();
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    let frac = ms % 1000;
    if secs > 0 || out.is_empty() {
        if frac > 0 && out.is_empty() {
            out.push_str(&format!("{:.1}s", d.as_secs_f64()));
        } else {
            out.push_str(&format!("{secs}s"));
        }
    }
    out
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl<'de> serde::Deserialize<'de> for Span {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text).map(Span).map_err(de::Error::custom)
    }
}

impl serde::Serialize for Span {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl schemars::JsonSchema for Span {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^([0-9]+(\\.[0-9]+)?(ms|s|m|h|d|w))+$",
            "description": "A duration such as 500ms, 30s, 5m, 1h30m or 2d",
            "examples": ["30s", "5m", "1h30m"]
        })
    }
}

/// A percentage written as `25%` (or `25`), kept as a number from 0 to 100.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Percent(pub f64);

impl Percent {
    /// As a fraction from 0 to 1.
    pub fn fraction(self) -> f64 {
        self.0 / 100.0
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

/// Parses `25%`, `99.9%` or `25`; the value must lie within 0..=100.
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let number = t.strip_suffix('%').unwrap_or(t).trim();
    match number.parse::<f64>() {
        Ok(v) if (0.0..=100.0).contains(&v) => Ok(v),
        Ok(_) => Err(format!(
            "percentage `{text}` is out of range; expected a value from 0% to 100%"
        )),
        Err(_) => Err(format!(
            "invalid percentage `{text}`; expected a number followed by %, such as `25%`"
        )),
    }
}

impl<'de> serde::Deserialize<'de> for Percent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_percent(&text).map(Percent).map_err(de::Error::custom)
    }
}

impl serde::Serialize for Percent {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl schemars::JsonSchema for Percent {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Percent".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": ["string", "number"],
            "pattern": "^[0-9]+(\\.[0-9]+)?%?$",
            "description": "A percentage such as 25% or 99.9%"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("m5").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn durations_past_the_maximum_are_refused_by_name() {
        assert_eq!(parse_duration("3650d"), Ok(MAX_DURATION));
        assert_eq!(
            parse_duration("99999999999999999999999d"),
            Err("duration `99999999999999999999999d` is longer than the maximum of 3650d; give a shorter one".into())
        );
        assert!(
            parse_duration("3650d1ms")
                .unwrap_err()
                .contains("maximum of 3650d")
        );
        let long = format!("{}s", "9".repeat(400));
        assert!(
            parse_duration(&long)
                .unwrap_err()
                .contains("maximum of 3650d")
        );
        assert!(parse_duration("1.2.3s").is_err());
        assert!(parse_duration(".s").is_err());
    }

    #[test]
    fn durations_format_back() {
        for s in ["30s", "5m", "1h30m", "250ms", "2d", "1d2h3m4s"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn percentages() {
        assert_eq!(parse_percent("25%"), Ok(25.0));
        assert_eq!(parse_percent("99.9%"), Ok(99.9));
        assert_eq!(parse_percent("7"), Ok(7.0));
        assert!(parse_percent("120%").is_err());
        assert!(parse_percent("lots").is_err());
    }
}
