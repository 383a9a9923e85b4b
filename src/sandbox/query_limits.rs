//! Limits on a PromQL query before it is parsed: the parser, the checks and the evaluator
//! all recurse over the expression tree, so a query nested deep enough (`((((...` or
//! `1 + 1 + 1 ...`, whose tree is as deep as it has operators) would overflow the stack.

/// Brackets, parentheses and braces inside each other.
pub const MAX_NESTING: usize = 64;
/// Binary operators (`+`, `==`, `and`...), each of which deepens the tree by one.
pub const MAX_OPERATORS: usize = 200;
/// Bytes in one query.
pub const MAX_LEN: usize = 64 * 1024;
/// The longest range, step or offset written as a bare number of seconds (ten years): the
/// parser turns such numbers into durations and panics on ones too large, infinite or NaN.
pub const MAX_SECONDS: f64 = 3650.0 * 86_400.0;

/// Refuses a query past the limits above, saying which and where.
pub fn check(query: &str) -> Result<(), String> {
    if query.len() > MAX_LEN {
        return Err(format!(
            "the query is {} bytes long, over the limit of {MAX_LEN}",
            query.len()
        ));
    }
    let mut open: Vec<char> = Vec::new();
    let mut operators = 0usize;
    let mut chars = query.char_indices().peekable();
    let mut word = String::new();
    while let Some((at, c)) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        operators += usize::from(is_set_operator(&word));
        if word.eq_ignore_ascii_case("offset") {
            seconds_literal(query, at)?;
        }
        word.clear();
        match c {
            '"' | '\'' | '`' => skip_string(&mut chars, c),
            '(' | '[' | '{' => {
                open.push(c);
                if open.len() > MAX_NESTING {
                    return Err(format!(
                        "the query nests brackets deeper than the limit of {MAX_NESTING} levels at byte {at}"
                    ));
                }
                if c == '[' {
                    seconds_literal(query, at + 1)?;
                }
            }
            ':' if open.last() == Some(&'[') => seconds_literal(query, at + 1)?,
            ')' | ']' | '}' => {
                open.pop();
            }
            '+' | '-' | '*' | '/' | '%' | '^' | '<' | '>' | '=' | '!' => operators += 1,
            _ => {}
        }
        if operators > MAX_OPERATORS {
            return Err(format!(
                "the query has more than the limit of {MAX_OPERATORS} operators (at byte {at})"
            ));
        }
    }
    Ok(())
}

/// Where a range, a subquery step or an offset starts (`from`): a bare number there is a
/// count of seconds, which must be finite and at most [`MAX_SECONDS`].
fn seconds_literal(query: &str, from: usize) -> Result<(), String> {
    let rest = query.get(from..).unwrap_or_default().trim_start();
    let rest = rest.strip_prefix(['+', '-']).unwrap_or(rest).trim_start();
    let mut end = 0;
    let mut prev = ' ';
    for (i, c) in rest.char_indices() {
        let exponent_sign = (c == '+' || c == '-') && matches!(prev, 'e' | 'E');
        if !(c.is_ascii_alphanumeric() || c == '.' || c == '_' || exponent_sign) {
            break;
        }
        end = i + c.len_utf8();
        prev = c;
    }
    let token = &rest[..end];
    let hex = token
        .strip_prefix("0x")
        .or_else(|| token.strip_prefix("0X"))
        .map(|h| u64::from_str_radix(h, 16).map(|v| v as f64));
    let value = match hex {
        Some(v) => v.ok(),
        None => token.parse::<f64>().ok(),
    };
    match value {
        Some(v) if v.is_nan() || v.abs() > MAX_SECONDS => Err(format!(
            "the duration `{token}` is out of range; at most {MAX_SECONDS} seconds (3650d)"
        )),
        _ => Ok(()),
    }
}

fn is_set_operator(word: &str) -> bool {
    matches!(word, "and" | "or" | "unless" | "atan2")
}

/// Moves past a quoted string; a backslash escapes the next character (not in backticks).
fn skip_string(chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>, quote: char) {
    while let Some((_, c)) = chars.next() {
        if c == '\\' && quote != '`' {
            chars.next();
        } else if c == quote {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_queries_pass() {
        for q in [
            r#"sum(rate(http_requests_total{code=~"5..", path="/a(b"}[5m])) / sum(rate(x[5m]))"#,
            "histogram_quantile(0.95, sum by (le) (rate(b[5m]))) * 1000",
            "a and b or c unless d",
        ] {
            assert_eq!(check(q), Ok(()), "{q}");
        }
    }

    #[test]
    fn deep_or_long_queries_are_refused() {
        let parens = format!("{}1{}", "(".repeat(20_000), ")".repeat(20_000));
        assert!(check(&parens).unwrap_err().contains("limit of 64 levels"));
        let chain = vec!["1"; 5000].join(" + ");
        assert!(
            check(&chain)
                .unwrap_err()
                .contains("limit of 200 operators")
        );
        let ors = vec!["a"; 500].join(" or ");
        assert!(check(&ors).unwrap_err().contains("limit of 200 operators"));
        // Brackets inside label values do not count.
        let quoted = format!("x{{a=\"{}\"}}", "(".repeat(500));
        assert_eq!(check(&quoted), Ok(()));
        assert!(
            check(&"x".repeat(MAX_LEN + 1))
                .unwrap_err()
                .contains("over the limit")
        );
    }

    #[test]
    fn bare_numbers_as_durations_are_range_checked() {
        for q in [
            "rate(x[999999999999999999999999999999999999999999: 9999999d])",
            "rate(x[1e400])",
            "max_over_time(x[5m:NaN])",
            "x offset 1e30",
            "x offset -Inf",
            "rate(x[0xffffffffffffffff])",
        ] {
            assert!(check(q).unwrap_err().contains("out of range"), "{q}");
        }
        for q in [
            "rate(x[300])",
            "x offset 5m",
            "max_over_time(x[1h:30s])",
            "x{a=\":1e400\"}",
        ] {
            assert_eq!(check(q), Ok(()), "{q}");
        }
    }
}
