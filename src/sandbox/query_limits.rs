//! Limits on a PromQL query before it is parsed: the parser, the checks and the evaluator
//! all recurse over the expression tree, so a query nested deep enough (`((((...` or
//! `1 + 1 + 1 ...`, whose tree is as deep as it has operators) would overflow the stack.

/// Brackets, parentheses and braces inside each other.
pub const MAX_NESTING: usize = 64;
/// Binary operators (`+`, `==`, `and`...), each of which deepens the tree by one.
pub const MAX_OPERATORS: usize = 200;
/// Bytes in one query.
pub const MAX_LEN: usize = 64 * 1024;

/// Refuses a query past the limits above, saying which and where.
pub fn check(query: &str) -> Result<(), String> {
    if query.len() > MAX_LEN {
        return Err(format!(
            "the query is {} bytes long, over the limit of {MAX_LEN}",
            query.len()
        ));
    }
    let (mut depth, mut operators) = (0usize, 0usize);
    let mut chars = query.char_indices().peekable();
    let mut word = String::new();
    while let Some((at, c)) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        operators += usize::from(is_set_operator(&word));
        word.clear();
        match c {
            '"' | '\'' | '`' => skip_string(&mut chars, c),
            '(' | '[' | '{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(format!(
                        "the query nests brackets deeper than the limit of {MAX_NESTING} levels at byte {at}"
                    ));
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
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
}
