//! A limit on brackets in a Rego file, checked before the Rego parser sees it: regorus
//! takes time exponential in the depth of `[` and `{` (18 levels took 9 s) and recurses
//! once per level, so a small file could hang glidepath or overflow its stack.

/// `[` and `{` inside each other.
pub const MAX_BRACKETS: usize = 12;
/// `(` inside each other.
pub const MAX_PARENS: usize = 64;

/// Refuses Rego text past the limits above, naming the limit, the line and the column.
pub fn check(text: &str) -> Result<(), String> {
    let (mut brackets, mut parens) = (0usize, 0usize);
    let (mut line, mut col) = (1usize, 0usize);
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        col += 1;
        match c {
            '\n' => (line, col) = (line + 1, 0),
            // A comment runs to the end of the line.
            '#' if chars.by_ref().any(|c| c == '\n') => (line, col) = (line + 1, 0),
            '"' | '`' => (line, col) = skip_string(&mut chars, c, line, col),
            '[' | '{' => {
                brackets += 1;
                if brackets > MAX_BRACKETS {
                    return Err(format!(
                        "{line}:{col}: `[` and `{{` are nested deeper than the limit of {MAX_BRACKETS} levels of `[` and `{{`; split the expression into rules"
                    ));
                }
            }
            ']' | '}' => brackets = brackets.saturating_sub(1),
            '(' => {
                parens += 1;
                if parens > MAX_PARENS {
                    return Err(format!(
                        "{line}:{col}: parentheses are nested deeper than the limit of {MAX_PARENS} levels of `(`; split the expression into rules"
                    ));
                }
            }
            ')' => parens = parens.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Moves past a string (a backslash escapes in `"`, not in raw `` ` `` strings); returns
/// the line and column after it.
fn skip_string(
    chars: &mut std::str::Chars<'_>,
    quote: char,
    mut line: usize,
    mut col: usize,
) -> (usize, usize) {
    while let Some(c) = chars.next() {
        col += 1;
        match c {
            '\\' if quote == '"' => {
                chars.next();
                col += 1;
            }
            '\n' => (line, col) = (line + 1, 0),
            c if c == quote => break,
            _ => {}
        }
    }
    (line, col)
}
