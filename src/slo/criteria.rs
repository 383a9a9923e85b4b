//! Criteria strings, with Keptn's exact meaning: `<=600` is a fixed threshold; a sign or a
//! `%` makes it relative to earlier results (`<+10%`, `<=+5`, `>=-5%`; `%` alone counts as
//! an increase).

use std::fmt;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `=`
    Eq,
    /// `>=`
    Ge,
    /// `>`
    Gt,
}

impl Op {
    /// Whether `measured OP expected` holds.
    pub fn holds(self, measured: f64, expected: f64) -> bool {
        match self {
            Op::Lt => measured < expected,
            Op::Le => measured <= expected,
            Op::Eq => measured == expected,
            Op::Ge => measured >= expected,
            Op::Gt => measured > expected,
        }
    }
}

/// How a relative criterion moves the compared value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Relative {
    /// `%`: the value is a percentage of the compared value.
    pub percent: bool,
    /// `+` (or `%` alone): an increase; `-`: a decrease.
    pub increase: bool,
}

/// One parsed criterion.
#[derive(Debug, Clone, PartialEq)]
pub struct Criterion {
    /// The text as written (kept for evidence).
    pub text: String,
    /// The operator.
    pub op: Op,
    /// The number after the operator (without sign and `%`).
    pub value: f64,
    /// Set for criteria compared with earlier results.
    pub relative: Option<Relative>,
}

impl fmt::Display for Criterion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A number as Go's `strconv.ParseFloat` reads it (Keptn parses criteria and scores with
/// it): an optional sign, decimals with an optional exponent, `inf`/`infinity`; a number
/// too large for a float is an error there too. Two deliberate refusals: `nan` (a threshold
/// no value can meet) and Go's hexadecimal floats (`0x1p4`).
pub fn go_float(text: &str) -> Option<f64> {
    let digits = text.trim_start_matches(['+', '-']);
    let literal_inf = ["inf", "infinity"]
        .iter()
        .any(|w| digits.eq_ignore_ascii_case(w));
    // Rust also reads `nan`, `infinity` and `1e400` (as inf); Go refuses `1e400`.
    let starts_ok = text.len() - digits.len() <= 1
        && (digits.starts_with(|c: char| c.is_ascii_digit() || c == '.') || literal_inf);
    if !starts_ok {
        return None;
    }
    let value: f64 = text.parse().ok()?;
    (value.is_finite() || literal_inf).then_some(value)
}

/// Parses a criterion as Keptn's lighthouse does: spaces (only the space character) are
/// removed; the operator is the first of `<=`, `<`, `=`, `>=`, `>` that starts the text;
/// a trailing `%` makes it relative (an increase unless a `-` follows the operator); a `+`
/// or `-` after the operator makes it relative; the rest is a Go float, which may carry a
/// sign of its own (`<=+-5` is an increase of -5).
pub fn parse(text: &str) -> Result<Criterion, String> {
    let explain = || {
        format!(
            "invalid criterion `{text}`; expected an operator (<, <=, =, >=, >) and a number, such as `<=600`, `<+10%` or `>=-5%`"
        )
    };
    let s: String = text.chars().filter(|c| *c != ' ').collect();
    let (op, mut rest) = if let Some(r) = s.strip_prefix("<=") {
        (Op::Le, r)
    } else if let Some(r) = s.strip_prefix('<') {
        (Op::Lt, r)
    } else if let Some(r) = s.strip_prefix('=') {
        (Op::Eq, r)
    } else if let Some(r) = s.strip_prefix(">=") {
        (Op::Ge, r)
    } else if let Some(r) = s.strip_prefix('>') {
        (Op::Gt, r)
    } else {
        return Err(explain());
    };
    let mut relative = None;
    if let Some(r) = rest.strip_suffix('%') {
        relative = Some(Relative {
            percent: true,
            increase: true,
        });
        rest = r;
    }
    let percent = relative.is_some();
    if let Some(r) = rest.strip_prefix('-') {
        relative = Some(Relative {
            percent,
            increase: false,
        });
        rest = r;
    } else if let Some(r) = rest.strip_prefix('+') {
        relative = Some(Relative {
            percent,
            increase: true,
        });
        rest = r;
    }
    let value = go_float(rest).ok_or_else(explain)?;
    Ok(Criterion {
        text: text.to_owned(),
        op,
        value,
        relative,
    })
}

impl Criterion {
    /// The threshold this criterion sets, given the aggregate of earlier results (for
    /// relative criteria). None means "no earlier result": the criterion is satisfied.
    pub fn target(&self, compared: Option<f64>) -> Option<f64> {
        match self.relative {
            None => Some(self.value),
            Some(r) => {
                let base = compared?;
                Some(match (r.percent, r.increase) {
                    (true, true) => base * (100.0 + self.value) / 100.0,
                    (true, false) => base * (100.0 - self.value) / 100.0,
                    (false, true) => base + self.value,
                    (false, false) => base - self.value,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(percent: bool, increase: bool) -> Option<Relative> {
        Some(Relative { percent, increase })
    }

    #[test]
    fn every_form_parses_as_keptn_reads_it() {
        let cases = [
            ("<=600", Op::Le, 600.0, None),
            ("<600", Op::Lt, 600.0, None),
            ("=0", Op::Eq, 0.0, None),
            (">=99.5", Op::Ge, 99.5, None),
            (">1", Op::Gt, 1.0, None),
            ("<+10%", Op::Lt, 10.0, rel(true, true)),
            ("<=+5", Op::Le, 5.0, rel(false, true)),
            (">=-5%", Op::Ge, 5.0, rel(true, false)),
            (">-8", Op::Gt, 8.0, rel(false, false)),
            ("<10%", Op::Lt, 10.0, rel(true, true)),
            ("< = 3", Op::Le, 3.0, None),
        ];
        for (text, op, value, relative) in cases {
            let c = parse(text).unwrap();
            assert_eq!((c.op, c.value, c.relative), (op, value, relative), "{text}");
        }
    }

    #[test]
    fn bad_criteria_are_refused() {
        for text in [
            "600", "<=", "<=abc", "=>5", "<1.2.3", "", "<=%", "<=5%%", "<\t5", "<=nan", "<=1e400",
            "<=0x1p4", "<=1_000", "|5", "<=5ms",
        ] {
            assert!(parse(text).is_err(), "{text} should not parse");
        }
    }

    // Mirrors Keptn's TestParseCriteriaString (lighthouse-service evaluate_sli_handler_test.go):
    // every operator, relative forms with and without sign, spaces inside and around.
    #[test]
    fn test_parse_criteria_string() {
        let cases = [
            ("<10", Op::Lt, 10.0, None),
            ("<=10", Op::Le, 10.0, None),
            ("=10", Op::Eq, 10.0, None),
            (">=10", Op::Ge, 10.0, None),
            (">10", Op::Gt, 10.0, None),
            (">-10%", Op::Gt, 10.0, rel(true, false)),
            ("<=+10.5%", Op::Le, 10.5, rel(true, true)),
            ("<=+10", Op::Le, 10.0, rel(false, true)),
            ("  <=+10   %", Op::Le, 10.0, rel(true, true)),
            ("  <=10%", Op::Le, 10.0, rel(true, true)),
        ];
        for (text, op, value, relative) in cases {
            let c = parse(text).unwrap();
            assert_eq!((c.op, c.value, c.relative), (op, value, relative), "{text}");
        }
    }

    // Go's ParseFloat after the sign: exponents, a second sign, infinity, as Keptn reads them.
    #[test]
    fn go_float_forms_keptn_accepts() {
        let c = |t: &str| {
            let c = parse(t).unwrap();
            (c.value, c.relative)
        };
        assert_eq!(c("<=1e3"), (1000.0, None));
        assert_eq!(c("<=.5"), (0.5, None));
        assert_eq!(c("<=5."), (5.0, None));
        assert_eq!(c("<=+-5"), (-5.0, rel(false, true)));
        assert_eq!(c("<=--5"), (-5.0, rel(false, false)));
        assert_eq!(c("<=inf"), (f64::INFINITY, None));
        assert_eq!(c("<=Infinity"), (f64::INFINITY, None));
        // `<=+-5` is an increase of -5: the target sits below the compared value.
        assert_eq!(parse("<=+-5").unwrap().target(Some(100.0)), Some(95.0));
        assert_eq!(parse("<=--5").unwrap().target(Some(100.0)), Some(105.0));
    }

    #[test]
    fn relative_targets_follow_the_compared_value() {
        assert_eq!(parse("<+10%").unwrap().target(Some(200.0)), Some(220.0));
        assert_eq!(parse(">=-5%").unwrap().target(Some(200.0)), Some(190.0));
        assert_eq!(parse("<=+5").unwrap().target(Some(200.0)), Some(205.0));
        assert_eq!(parse(">-8").unwrap().target(Some(200.0)), Some(192.0));
        assert_eq!(parse("<=600").unwrap().target(None), Some(600.0));
        assert_eq!(parse("<+10%").unwrap().target(None), None);
    }
}
