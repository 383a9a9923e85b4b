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

/// Parses a criterion; spaces are ignored, as Keptn does.
pub fn parse(text: &str) -> Result<Criterion, String> {
    let explain = || {
        format!(
            "invalid criterion `{text}`; expected an operator (<, <=, =, >=, >) and a number, such as `<=600`, `<+10%` or `>=-5%`"
        )
    };
    let s: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let (op, mut rest) = if let Some(r) = s.strip_prefix("<=") {
        (Op::Le, r)
    } else if let Some(r) = s.strip_prefix(">=") {
        (Op::Ge, r)
    } else if let Some(r) = s.strip_prefix('<') {
        (Op::Lt, r)
    } else if let Some(r) = s.strip_prefix('>') {
        (Op::Gt, r)
    } else if let Some(r) = s.strip_prefix('=') {
        (Op::Eq, r)
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
    if let Some(r) = rest.strip_prefix('-') {
        relative = Some(Relative {
            percent: relative.is_some(),
            increase: false,
        });
        rest = r;
    } else if let Some(r) = rest.strip_prefix('+') {
        relative = Some(Relative {
            percent: relative.is_some(),
            increase: true,
        });
        rest = r;
    }
    let digits_ok = !rest.is_empty()
        && rest.chars().all(|c| c.is_ascii_digit() || c == '.')
        && rest.matches('.').count() <= 1;
    if !digits_ok {
        return Err(explain());
    }
    let value: f64 = rest.parse().map_err(|_| explain())?;
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
        for text in ["600", "<=", "<=abc", "=>5", "<1.2.3", "<+-5", ""] {
            assert!(parse(text).is_err(), "{text} should not parse");
        }
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
