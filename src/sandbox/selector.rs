//! Label and field selectors as the API server reads them from `?labelSelector=`,
//! `?fieldSelector=` and metav1.LabelSelector objects.

use std::fmt;

use serde_json::{Map, Value};

/// Why a selector could not be used; messages go back to the client as they are.
#[derive(Debug, thiserror::Error)]
pub enum SelectorError {
    /// A `labelSelector` string was malformed.
    #[error("invalid label selector {selector:?}: {reason}")]
    Label {
        /// The selector as received.
        selector: String,
        /// The offending part and why.
        reason: String,
    },
    /// A metav1.LabelSelector object was malformed.
    #[error("invalid label selector object: {0}")]
    LabelObject(String),
    /// A `fieldSelector` string was malformed.
    #[error("invalid field selector {selector:?}: {reason}")]
    Field {
        /// The selector as received.
        selector: String,
        /// The offending part and why.
        reason: String,
    },
}

/// How a label requirement tests a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `k=v` or `k==v`: the label is present with that value.
    Equals,
    /// `k!=v`: the label is absent or has another value.
    NotEquals,
    /// `k in (a,b)`: the label is present with one of the values.
    In,
    /// `k notin (a,b)`: the label is absent or has none of the values.
    NotIn,
    /// `k`: the label is present.
    Exists,
    /// `!k`: the label is absent.
    DoesNotExist,
}

/// One comma-separated term of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The label key, possibly with a DNS prefix.
    pub key: String,
    /// How the label is tested.
    pub operator: Operator,
    /// Sorted and deduplicated, so that equal selectors print the same; empty for
    /// Exists and DoesNotExist.
    pub values: Vec<String>,
}

impl Requirement {
    fn new(key: &str, operator: Operator, mut values: Vec<String>) -> Self {
        values.sort();
        values.dedup();
        Requirement {
            key: key.to_string(),
            operator,
            values,
        }
    }

    /// Whether a labels map satisfies this requirement.
    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        let value = labels.get(&self.key).map(label_text);
        let listed = |v: &str| self.values.iter().any(|x| x == v);
        match (self.operator, value.as_deref()) {
            (Operator::Exists, found) => found.is_some(),
            (Operator::DoesNotExist, found) => found.is_none(),
            (Operator::Equals | Operator::In, Some(v)) => listed(v),
            (Operator::Equals | Operator::In, None) => false,
            (Operator::NotEquals | Operator::NotIn, Some(v)) => !listed(v),
            (Operator::NotEquals | Operator::NotIn, None) => true,
        }
    }
}

/// Labels are strings in valid objects; anything else is compared by its JSON text.
fn label_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = &self.key;
        let first = self.values.first().map(String::as_str).unwrap_or("");
        let list = self.values.join(",");
        match self.operator {
            Operator::Equals => write!(f, "{key}={first}"),
            Operator::NotEquals => write!(f, "{key}!={first}"),
            Operator::In => write!(f, "{key} in ({list})"),
            Operator::NotIn => write!(f, "{key} notin ({list})"),
            Operator::Exists => write!(f, "{key}"),
            Operator::DoesNotExist => write!(f, "!{key}"),
        }
    }
}

/// A label selector: every requirement must hold. Prints in canonical form via Display.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    /// Sorted by key, as the real server does, so Display is canonical.
    requirements: Vec<Requirement>,
    /// A null metav1.LabelSelector selects nothing, unlike an empty one.
    nothing: bool,
}

impl LabelSelector {
    /// The selector that matches every object (an empty string or `{}`).
    pub fn everything() -> Self {
        LabelSelector::default()
    }

    /// The selector that matches no object (a null metav1.LabelSelector).
    pub fn nothing() -> Self {
        LabelSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    fn from_requirements(mut requirements: Vec<Requirement>) -> Self {
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        LabelSelector {
            requirements,
            nothing: false,
        }
    }

    /// Parses the `?labelSelector=` syntax (already URL-decoded).
    pub fn parse(s: &str) -> Result<LabelSelector, SelectorError> {
        let fail = |reason: String| SelectorError::Label {
            selector: s.to_string(),
            reason,
        };
        let tokens = lex(s);
        let mut parser = Parser { tokens, pos: 0 };
        let mut requirements = Vec::new();
        if parser.peek().is_none() {
            return Ok(LabelSelector::everything());
        }
        loop {
            requirements.push(parser.requirement().map_err(fail)?);
            match parser.next() {
                None => break,
                Some((_, Token::Comma)) => {}
                Some((at, token)) => {
                    return Err(fail(format!(
                        "unexpected {token} at position {at}; requirements are separated by ','"
                    )));
                }
            }
        }
        Ok(LabelSelector::from_requirements(requirements))
    }

    /// Builds the selector of a plain label map such as a Service's `spec.selector`.
    pub fn from_match_labels(labels: &Map<String, Value>) -> Result<LabelSelector, SelectorError> {
        let mut requirements = Vec::with_capacity(labels.len());
        for (key, value) in labels {
            let Some(value) = value.as_str() else {
                return Err(SelectorError::LabelObject(format!(
                    "matchLabels[{key:?}] must be a string, got {value}"
                )));
            };
            check_key(key).map_err(SelectorError::LabelObject)?;
            check_value(value).map_err(SelectorError::LabelObject)?;
            requirements.push(Requirement::new(
                key,
                Operator::Equals,
                vec![value.to_string()],
            ));
        }
        Ok(LabelSelector::from_requirements(requirements))
    }

    /// Builds a selector from a metav1.LabelSelector object; null selects nothing, as in
    /// Kubernetes, while `{}` selects everything.
    pub fn from_label_selector_json(v: &Value) -> Result<LabelSelector, SelectorError> {
        let object = match v {
            Value::Null => return Ok(LabelSelector::nothing()),
            Value::Object(object) => object,
            other => {
                return Err(SelectorError::LabelObject(format!(
                    "expected an object, got {other}"
                )));
            }
        };
        let mut requirements = match object.get("matchLabels") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(labels)) => LabelSelector::from_match_labels(labels)?.requirements,
            Some(other) => {
                return Err(SelectorError::LabelObject(format!(
                    "matchLabels must be an object, got {other}"
                )));
            }
        };
        match object.get("matchExpressions") {
            None | Some(Value::Null) => {}
            Some(Value::Array(expressions)) => {
                for (index, expression) in expressions.iter().enumerate() {
                    requirements.push(expression_requirement(expression).map_err(|e| {
                        SelectorError::LabelObject(format!("matchExpressions[{index}]: {e}"))
                    })?);
                }
            }
            Some(other) => {
                return Err(SelectorError::LabelObject(format!(
                    "matchExpressions must be a list, got {other}"
                )));
            }
        }
        Ok(LabelSelector::from_requirements(requirements))
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether the selector matches every object, which lets callers skip filtering.
    pub fn is_everything(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// Whether a labels map (as found at `metadata.labels`) satisfies every requirement.
    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Whether an object's `metadata.labels` match; a missing labels map counts as empty.
    pub fn matches_object(&self, object: &Value) -> bool {
        let empty = Map::new();
        let labels = object
            .get("metadata")
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        self.matches(labels)
    }
}

/// Builds a selector from a metav1.LabelSelector object (see [`LabelSelector::from_label_selector_json`]).
pub fn from_label_selector_json(v: &Value) -> Result<LabelSelector, SelectorError> {
    LabelSelector::from_label_selector_json(v)
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, requirement) in self.requirements.iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            write!(f, "{requirement}")?;
        }
        Ok(())
    }
}

fn expression_requirement(expression: &Value) -> Result<Requirement, String> {
    let key = expression
        .get("key")
        .and_then(Value::as_str)
        .ok_or_else(|| "key must be a string".to_string())?;
    check_key(key)?;
    let operator = match expression.get("operator").and_then(Value::as_str) {
        Some("In") => Operator::In,
        Some("NotIn") => Operator::NotIn,
        Some("Exists") => Operator::Exists,
        Some("DoesNotExist") => Operator::DoesNotExist,
        Some(other) => {
            return Err(format!(
                "operator {other:?} is not one of In, NotIn, Exists, DoesNotExist"
            ));
        }
        None => return Err("operator must be a string".to_string()),
    };
    let values = match expression.get("values") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            let mut values = Vec::with_capacity(items.len());
            for item in items {
                let value = item
                    .as_str()
                    .ok_or_else(|| format!("values must be strings, got {item}"))?;
                check_value(value)?;
                values.push(value.to_string());
            }
            values
        }
        Some(other) => return Err(format!("values must be a list, got {other}")),
    };
    match operator {
        Operator::In | Operator::NotIn if values.is_empty() => Err(format!(
            "values must be non-empty for operator {operator:?} on {key:?}"
        )),
        Operator::Exists | Operator::DoesNotExist if !values.is_empty() => Err(format!(
            "values must be empty for operator {operator:?} on {key:?}"
        )),
        _ => Ok(Requirement::new(key, operator, values)),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    Word(&'a str),
    Equals,
    DoubleEquals,
    NotEquals,
    Bang,
    Open,
    Close,
    Comma,
}

impl fmt::Display for Token<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Word(w) => write!(f, "{w:?}"),
            Token::Equals => f.write_str("'='"),
            Token::DoubleEquals => f.write_str("'=='"),
            Token::NotEquals => f.write_str("'!='"),
            Token::Bang => f.write_str("'!'"),
            Token::Open => f.write_str("'('"),
            Token::Close => f.write_str("')'"),
            Token::Comma => f.write_str("','"),
        }
    }
}

fn is_special(c: char) -> bool {
    c.is_whitespace() || matches!(c, '=' | '!' | '(' | ')' | ',')
}

/// Splits a selector into tokens with their byte offsets; words run until whitespace or a
/// punctuation character, so validation of keys and values happens in the parser.
fn lex(s: &str) -> Vec<(usize, Token<'_>)> {
    let mut tokens = Vec::new();
    let mut chars = s.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let token = match c {
            c if c.is_whitespace() => continue,
            ',' => Token::Comma,
            '(' => Token::Open,
            ')' => Token::Close,
            '=' | '!' => {
                if chars.next_if(|&(_, n)| n == '=').is_some() {
                    if c == '=' {
                        Token::DoubleEquals
                    } else {
                        Token::NotEquals
                    }
                } else if c == '=' {
                    Token::Equals
                } else {
                    Token::Bang
                }
            }
            _ => {
                let mut end = s.len();
                while let Some(&(next_at, n)) = chars.peek() {
                    if is_special(n) {
                        end = next_at;
                        break;
                    }
                    chars.next();
                }
                Token::Word(s.get(at..end).unwrap_or(""))
            }
        };
        tokens.push((at, token));
    }
    tokens
}

struct Parser<'a> {
    tokens: Vec<(usize, Token<'a>)>,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<Token<'a>> {
        self.tokens.get(self.pos).map(|(_, t)| *t)
    }

    fn next(&mut self) -> Option<(usize, Token<'a>)> {
        let item = self.tokens.get(self.pos).copied();
        self.pos += 1;
        item
    }

    fn found(&self) -> String {
        match self.tokens.get(self.pos) {
            Some((at, token)) => format!("{token} at position {at}"),
            None => "end of selector".to_string(),
        }
    }

    fn key(&mut self) -> Result<&'a str, String> {
        match self.peek() {
            Some(Token::Word(word)) if word != "in" && word != "notin" => {
                self.pos += 1;
                check_key(word)?;
                Ok(word)
            }
            _ => Err(format!("expected a label key, found {}", self.found())),
        }
    }

    /// A missing value before ',' or the end is the empty string, which is a valid label value.
    fn value(&mut self, key: &str) -> Result<String, String> {
        match self.peek() {
            Some(Token::Word(word)) => {
                self.pos += 1;
                check_value(word)?;
                Ok(word.to_string())
            }
            None | Some(Token::Comma | Token::Close) => Ok(String::new()),
            Some(_) => Err(format!(
                "expected a value for {key:?}, found {}",
                self.found()
            )),
        }
    }

    fn value_list(&mut self, key: &str) -> Result<Vec<String>, String> {
        match self.next() {
            Some((_, Token::Open)) => {}
            _ => {
                self.pos -= 1;
                return Err(format!(
                    "expected '(' after the operator of {key:?}, found {}",
                    self.found()
                ));
            }
        }
        if self.peek() == Some(Token::Close) {
            return Err(format!("the value list of {key:?} is empty"));
        }
        let mut values = Vec::new();
        loop {
            values.push(self.value(key)?);
            match self.next() {
                Some((_, Token::Comma)) => {}
                Some((_, Token::Close)) => return Ok(values),
                _ => {
                    self.pos -= 1;
                    return Err(format!(
                        "expected ',' or ')' in the value list of {key:?}, found {}",
                        self.found()
                    ));
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        if self.peek() == Some(Token::Bang) {
            self.pos += 1;
            let key = self.key()?;
            return Ok(Requirement::new(key, Operator::DoesNotExist, Vec::new()));
        }
        let key = self.key()?;
        let operator = match self.peek() {
            None | Some(Token::Comma) => {
                return Ok(Requirement::new(key, Operator::Exists, Vec::new()));
            }
            Some(Token::Equals | Token::DoubleEquals) => Operator::Equals,
            Some(Token::NotEquals) => Operator::NotEquals,
            Some(Token::Word("in")) => Operator::In,
            Some(Token::Word("notin")) => Operator::NotIn,
            Some(_) => {
                return Err(format!(
                    "expected an operator (=, ==, !=, in, notin) after {key:?}, found {}",
                    self.found()
                ));
            }
        };
        self.pos += 1;
        let values = match operator {
            Operator::In | Operator::NotIn => self.value_list(key)?,
            _ => vec![self.value(key)?],
        };
        Ok(Requirement::new(key, operator, values))
    }
}

/// The name part of a qualified name, and any non-empty label value.
fn is_name_part(s: &str) -> bool {
    let bytes = s.as_bytes();
    let alnum = |b: &u8| b.is_ascii_alphanumeric();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum)
        && bytes
            .iter()
            .all(|b| alnum(b) || matches!(b, b'-' | b'_' | b'.'))
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            let bytes = label.as_bytes();
            let edge = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
            bytes.first().is_some_and(edge)
                && bytes.last().is_some_and(edge)
                && bytes.iter().all(|b| edge(b) || *b == b'-')
        })
}

fn check_key(key: &str) -> Result<(), String> {
    let valid = match key.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_name_part(name),
        None => is_name_part(key),
    };
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid label key {key:?}: want an optional DNS subdomain prefix and '/', then 1-63 \
             alphanumerics, '-', '_' or '.', starting and ending alphanumeric"
        ))
    }
}

fn check_value(value: &str) -> Result<(), String> {
    if value.is_empty() || is_name_part(value) {
        Ok(())
    } else {
        Err(format!(
            "invalid label value {value:?}: want at most 63 alphanumerics, '-', '_' or '.', \
             starting and ending alphanumeric"
        ))
    }
}

/// How a field requirement compares a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldOperator {
    /// `f=v` or `f==v`.
    Equals,
    /// `f!=v`.
    NotEquals,
}

/// One comma-separated term of a field selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    /// The dotted path of the field, such as `metadata.name`.
    pub field: String,
    /// How the field is compared.
    pub operator: FieldOperator,
    /// The value compared against, unescaped.
    pub value: String,
}

/// A field selector: every requirement must hold. Prints in canonical form via Display.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses the `?fieldSelector=` syntax (already URL-decoded); `\,`, `\=` and `\\` escape
    /// those characters in values.
    pub fn parse(s: &str) -> Result<FieldSelector, SelectorError> {
        let fail = |reason: String| SelectorError::Field {
            selector: s.to_string(),
            reason,
        };
        let mut requirements = Vec::new();
        for term in split_unescaped(s) {
            if term.trim().is_empty() {
                continue;
            }
            let Some((at, operator, width)) = find_operator(term) else {
                return Err(fail(format!("term {term:?} has no operator (=, == or !=)")));
            };
            let field = term.get(..at).unwrap_or("").trim();
            let raw_value = term.get(at + width..).unwrap_or("").trim();
            if field.is_empty() {
                return Err(fail(format!("term {term:?} has no field name")));
            }
            let value = unescape(raw_value).map_err(|e| fail(format!("term {term:?}: {e}")))?;
            requirements.push(FieldRequirement {
                field: field.to_string(),
                operator,
                value,
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// The requirements in the order given.
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// Whether the selector matches every object, which lets callers skip filtering.
    pub fn is_everything(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether an object satisfies every requirement; a missing field compares as "".
    pub fn matches(&self, object: &Value) -> bool {
        self.requirements.iter().all(|r| {
            let actual = field_text(object, &r.field);
            match r.operator {
                FieldOperator::Equals => actual == r.value,
                FieldOperator::NotEquals => actual != r.value,
            }
        })
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, r) in self.requirements.iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            let op = match r.operator {
                FieldOperator::Equals => "=",
                FieldOperator::NotEquals => "!=",
            };
            write!(f, "{}{op}", r.field)?;
            for c in r.value.chars() {
                if matches!(c, '\\' | ',' | '=') {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// Splits on commas that are not escaped with a backslash.
fn split_unescaped(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (at, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            parts.push(s.get(start..at).unwrap_or(""));
            start = at + 1;
        }
    }
    parts.push(s.get(start..).unwrap_or(""));
    parts
}

/// The first unescaped operator in a term: its byte offset, kind and width.
fn find_operator(term: &str) -> Option<(usize, FieldOperator, usize)> {
    let bytes = term.as_bytes();
    let mut escaped = false;
    for (at, &b) in bytes.iter().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        let next = bytes.get(at + 1).copied();
        match (b, next) {
            (b'\\', _) => escaped = true,
            (b'!', Some(b'=')) => return Some((at, FieldOperator::NotEquals, 2)),
            (b'=', Some(b'=')) => return Some((at, FieldOperator::Equals, 2)),
            (b'=', _) => return Some((at, FieldOperator::Equals, 1)),
            _ => {}
        }
    }
    None
}

fn unescape(raw: &str) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(e @ ('\\' | ',' | '=')) => out.push(e),
            Some(other) => return Err(format!("invalid escape sequence \\{other}")),
            None => return Err("value ends with a lone backslash".to_string()),
        }
    }
    Ok(out)
}

/// The text of a dotted field path; missing and null fields read as "".
fn field_text(object: &Value, path: &str) -> String {
    let found = path
        .split('.')
        .try_fold(object, |current, segment| current.get(segment));
    match found {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn sel(s: &str) -> LabelSelector {
        LabelSelector::parse(s).unwrap()
    }

    #[test]
    fn empty_selector_matches_everything() {
        let s = sel("");
        assert!(s.is_everything());
        assert!(s.matches(&Map::new()));
        assert!(sel("   ").matches(&labels(json!({"a": "b"}))));
        assert_eq!(s.to_string(), "");
    }

    #[test]
    fn equality_operators() {
        let l = labels(json!({"app": "web", "tier": "front"}));
        assert!(sel("app=web").matches(&l));
        assert!(sel("app==web").matches(&l));
        assert!(!sel("app=db").matches(&l));
        assert!(sel("app!=db").matches(&l));
        assert!(!sel("app!=web").matches(&l));
        assert!(sel("missing!=x").matches(&l));
        assert!(!sel("missing=x").matches(&l));
        assert!(sel(" app = web , tier==front ").matches(&l));
        assert!(!sel("app=web,tier=back").matches(&l));
    }

    #[test]
    fn set_operators() {
        let l = labels(json!({"env": "prod"}));
        assert!(sel("env in (prod,staging)").matches(&l));
        assert!(sel("env in ( prod , staging )").matches(&l));
        assert!(!sel("env in (dev)").matches(&l));
        assert!(!sel("other in (prod)").matches(&l));
        assert!(sel("env notin (dev,qa)").matches(&l));
        assert!(!sel("env notin (prod)").matches(&l));
        assert!(sel("other notin (prod)").matches(&l));
    }

    #[test]
    fn existence_operators() {
        let l = labels(json!({"app.kubernetes.io/name": "web", "empty": ""}));
        assert!(sel("app.kubernetes.io/name").matches(&l));
        assert!(sel("empty").matches(&l));
        assert!(sel("empty=").matches(&l));
        assert!(!sel("missing").matches(&l));
        assert!(sel("!missing").matches(&l));
        assert!(sel("! missing").matches(&l));
        assert!(!sel("!empty").matches(&l));
        assert!(sel("app.kubernetes.io/name=web,!missing,empty").matches(&l));
    }

    #[test]
    fn matches_object_reads_metadata_labels() {
        let s = sel("app=web");
        assert!(s.matches_object(&json!({"metadata": {"labels": {"app": "web"}}})));
        assert!(!s.matches_object(&json!({"metadata": {}})));
        assert!(sel("!app").matches_object(&json!({"metadata": {}})));
    }

    #[test]
    fn invalid_syntax_names_the_selector_and_part() {
        let cases = [
            ("a=b=c", "'='"),
            ("in (x", "expected a label key"),
            ("=x", "expected a label key, found '='"),
            ("a=b c", "\"c\""),
            ("a b", "expected an operator"),
            ("a in (b", "expected ',' or ')'"),
            ("a in b", "expected '('"),
            ("a in ()", "empty"),
            ("a=b,", "expected a label key, found end of selector"),
            (",a", "expected a label key"),
            ("a=(b)", "expected a value"),
            ("-bad=x", "invalid label key \"-bad\""),
            ("a=bad-", "invalid label value \"bad-\""),
            ("Bad.Prefix/a=x", "invalid label key"),
            ("a/b/c=x", "invalid label key"),
            ("!", "expected a label key, found end of selector"),
        ];
        for (input, part) in cases {
            let err = LabelSelector::parse(input).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("invalid label selector {input:?}: ")),
                "{input}: {err}"
            );
            assert!(err.contains(part), "{input}: {err}");
        }
    }

    #[test]
    fn display_is_canonical_and_round_trips() {
        let s = sel("tier notin (b,a,a), app==web, !gone, env in (prod,dev), has, x!=y, z=");
        let text = s.to_string();
        assert_eq!(
            text,
            "app=web,env in (dev,prod),!gone,has,tier notin (a,b),x!=y,z="
        );
        assert_eq!(LabelSelector::parse(&text).unwrap(), s);
    }

    #[test]
    fn match_labels_json_prints_sorted() {
        let s = from_label_selector_json(&json!({"matchLabels": {"tier": "front", "app": "web"}}))
            .unwrap();
        assert_eq!(s.to_string(), "app=web,tier=front");
        assert!(s.matches(&labels(json!({"app": "web", "tier": "front", "x": "y"}))));
        assert!(!s.matches(&labels(json!({"app": "web"}))));
    }

    #[test]
    fn match_expressions_json() {
        let s = LabelSelector::from_label_selector_json(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "staging"]},
                {"key": "canary", "operator": "NotIn", "values": ["true"]},
                {"key": "team", "operator": "Exists"},
                {"key": "legacy", "operator": "DoesNotExist", "values": []}
            ]
        }))
        .unwrap();
        assert_eq!(
            s.to_string(),
            "app=web,canary notin (true),env in (prod,staging),!legacy,team"
        );
        assert!(s.matches(&labels(json!({"app": "web", "env": "prod", "team": "a"}))));
        assert!(!s.matches(&labels(
            json!({"app": "web", "env": "prod", "team": "a", "canary": "true"})
        )));
        assert!(!s.matches(&labels(
            json!({"app": "web", "env": "prod", "team": "a", "legacy": "1"})
        )));
        assert!(!s.matches(&labels(json!({"app": "web", "env": "dev", "team": "a"}))));
        assert!(!s.matches(&labels(json!({"app": "web", "env": "prod"}))));
    }

    #[test]
    fn label_selector_json_empty_null_and_errors() {
        assert!(
            from_label_selector_json(&json!({}))
                .unwrap()
                .matches(&Map::new())
        );
        let nothing = from_label_selector_json(&Value::Null).unwrap();
        assert!(!nothing.matches(&Map::new()));
        assert!(!nothing.is_everything());
        let cases = [
            (json!([]), "expected an object"),
            (json!({"matchLabels": {"a": 1}}), "must be a string"),
            (json!({"matchLabels": []}), "matchLabels must be an object"),
            (json!({"matchExpressions": {}}), "must be a list"),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "In"}]}),
                "matchExpressions[0]: values must be non-empty",
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
                "values must be empty",
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}),
                "\"Gt\" is not one of",
            ),
            (
                json!({"matchExpressions": [{"operator": "Exists"}]}),
                "key must be a string",
            ),
            (
                json!({"matchExpressions": [{"key": "a b", "operator": "Exists"}]}),
                "invalid label key",
            ),
        ];
        for (input, part) in cases {
            let err = from_label_selector_json(&input).unwrap_err().to_string();
            assert!(err.starts_with("invalid label selector object: "), "{err}");
            assert!(err.contains(part), "{input}: {err}");
        }
    }

    #[test]
    fn field_selector_operators() {
        let pod = json!({
            "metadata": {"name": "web-1", "namespace": "default"},
            "spec": {"nodeName": "node-a", "replicas": 2},
            "status": {"phase": "Running"}
        });
        let fs = |s: &str| FieldSelector::parse(s).unwrap();
        assert!(fs("metadata.name=web-1").matches(&pod));
        assert!(fs("metadata.name==web-1").matches(&pod));
        assert!(!fs("metadata.name=web-2").matches(&pod));
        assert!(fs("metadata.namespace!=kube-system,status.phase=Running").matches(&pod));
        assert!(!fs("metadata.namespace!=default").matches(&pod));
        assert!(fs("spec.nodeName=node-a").matches(&pod));
        assert!(fs("spec.replicas=2").matches(&pod));
        assert!(fs("").is_everything());
        assert!(fs("").matches(&pod));
        let event = json!({"involvedObject": {"name": "web-1", "kind": "Pod"}});
        assert!(fs("involvedObject.name=web-1,involvedObject.kind=Pod").matches(&event));
    }

    #[test]
    fn field_selector_missing_field_is_empty_string() {
        let pending = json!({"metadata": {"name": "p"}, "spec": {}});
        assert!(
            FieldSelector::parse("spec.nodeName=")
                .unwrap()
                .matches(&pending)
        );
        assert!(
            !FieldSelector::parse("spec.nodeName!=")
                .unwrap()
                .matches(&pending)
        );
        assert!(
            FieldSelector::parse("status.phase!=Running")
                .unwrap()
                .matches(&pending)
        );
    }

    #[test]
    fn field_selector_escapes_and_display() {
        let s = FieldSelector::parse("metadata.name=a\\,b\\=c, status.phase != Failed").unwrap();
        assert_eq!(s.requirements()[0].value, "a,b=c");
        assert_eq!(s.requirements()[1].operator, FieldOperator::NotEquals);
        assert!(s.matches(&json!({"metadata": {"name": "a,b=c"}})));
        assert_eq!(
            s.to_string(),
            "metadata.name=a\\,b\\=c,status.phase!=Failed"
        );
        assert_eq!(FieldSelector::parse(&s.to_string()).unwrap(), s);
    }

    #[test]
    fn field_selector_errors() {
        let cases = [
            ("metadata.name", "has no operator"),
            ("=x", "has no field name"),
            ("metadata.name=a\\x", "invalid escape"),
            ("a=b\\", "lone backslash"),
        ];
        for (input, part) in cases {
            let err = FieldSelector::parse(input).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("invalid field selector {input:?}: ")),
                "{err}"
            );
            assert!(err.contains(part), "{input}: {err}");
        }
    }
}
